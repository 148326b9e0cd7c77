#include "mapped_ring.h"

#include <bpf/bpf.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "errors.h"
#include "fd_handle.h"

namespace sockmesh {

RingMapping::~RingMapping() {
  if (producer) munmap(producer, page + 2 * dataSize);
  if (consumer) munmap(consumer, page);
}

Napi::Function MappedRing::Init(Napi::Env env) {
  return DefineClass(env, "MappedRing", {
    InstanceMethod("buffers", &MappedRing::Buffers),
    InstanceMethod("ack", &MappedRing::Ack),
    InstanceMethod("stop", &MappedRing::Stop),
    InstanceMethod("wakeups", &MappedRing::Wakeups),
  });
}

// new MappedRing(mapFd, onReady(), intervalMs)
MappedRing::MappedRing(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MappedRing>(info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0, "map fd"));
  if (!info[1].IsFunction()) ThrowType(env, "onReady must be a function");
  intervalMs_ = static_cast<int>(ArgInt(info, 2, "interval ms"));

  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) < 0) ThrowErrno(env, errno, "ring buffer map info");
  if (mi.type != BPF_MAP_TYPE_RINGBUF) ThrowErrno(env, EINVAL, "map is not a ring buffer");
  mapFd_ = DupFd(env, fd, "ring buffer map fd");

  auto m = std::make_shared<RingMapping>();
  m->page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  m->dataSize = mi.max_entries;
  // The layout libbpf uses: consumer page (rw), then producer page + data
  // mapped twice back to back (ro), so a record that wraps reads contiguously.
  void* c = mmap(nullptr, m->page, PROT_READ | PROT_WRITE, MAP_SHARED, mapFd_, 0);
  if (c == MAP_FAILED) {
    int err = errno;
    ::close(mapFd_);
    ThrowErrno(env, err, "mmap ring buffer consumer page");
  }
  m->consumer = c;
  void* p = mmap(nullptr, m->page + 2 * m->dataSize, PROT_READ, MAP_SHARED, mapFd_, static_cast<off_t>(m->page));
  if (p == MAP_FAILED) {
    int err = errno;
    ::close(mapFd_);
    ThrowErrno(env, err, "mmap ring buffer data");
  }
  m->producer = p;
  map_ = m;

  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  evfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  int ok = (epfd_ >= 0 && evfd_ >= 0) ? epoll_ctl(epfd_, EPOLL_CTL_ADD, mapFd_, &ev) : -1;
  if (ok == 0) ok = epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev);
  if (ok < 0) {
    int err = errno;
    if (epfd_ >= 0) ::close(epfd_);
    if (evfd_ >= 0) ::close(evfd_);
    ::close(mapFd_);
    epfd_ = evfd_ = mapFd_ = -1;
    ThrowErrno(env, err, "set up ring buffer polling");
  }
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "sockmesh:mapped-ring", 0, 1);
  running_ = true;
  thread_ = std::thread(&MappedRing::Run, this);
}

MappedRing::~MappedRing() {
  StopThread();
  if (epfd_ >= 0) ::close(epfd_);
  if (evfd_ >= 0) ::close(evfd_);
  if (mapFd_ >= 0) ::close(mapFd_);
}

bool MappedRing::DataReady() const {
  auto* cons = static_cast<volatile uint64_t*>(map_->consumer);
  auto* prod = static_cast<volatile uint64_t*>(map_->producer);
  return __atomic_load_n(prod, __ATOMIC_ACQUIRE) != __atomic_load_n(cons, __ATOMIC_ACQUIRE);
}

void MappedRing::Run() {
  struct epoll_event evs[2];
  while (!stopping_.load()) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stopping_.load() || !pending_; });
    }
    if (stopping_.load()) break;
    int n = epoll_wait(epfd_, evs, 2, intervalMs_ > 0 ? intervalMs_ : -1);
    if (n < 0 && errno != EINTR) break;
    if (stopping_.load()) break;
    if (!DataReady()) continue;
    {
      std::lock_guard<std::mutex> lk(mu_);
      pending_ = true;
    }
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    if (tsfn_.NonBlockingCall() != napi_ok) break;
  }
}

// buffers() -> { consumer: Buffer(8), producer: Buffer(8), data: Buffer(2 x size) }
// over the mappings; each holds the mapping alive until it is collected.
Napi::Value MappedRing::Buffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!map_) ThrowErrno(env, EBADF, "buffers of a stopped ring");
  auto wrap = [&](void* ptr, size_t len) {
    auto* hold = new std::shared_ptr<RingMapping>(map_);
    return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(ptr), len,
                                      [](Napi::Env, uint8_t*, std::shared_ptr<RingMapping>* h) { delete h; }, hold);
  };
  uint8_t* prodPage = static_cast<uint8_t*>(map_->producer);
  Napi::Object o = Napi::Object::New(env);
  o.Set("consumer", wrap(map_->consumer, 8));
  o.Set("producer", wrap(prodPage, 8));
  o.Set("data", wrap(prodPage + map_->page, 2 * map_->dataSize));
  return o;
}

// ack(): JS has drained; the thread may wait for more.
Napi::Value MappedRing::Ack(const Napi::CallbackInfo& info) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    pending_ = false;
  }
  cv_.notify_one();
  return info.Env().Undefined();
}

void MappedRing::StopThread() {
  if (!running_) return;
  running_ = false;
  stopping_.store(true);
  uint64_t one = 1;
  if (write(evfd_, &one, sizeof(one)) < 0) { /* the flag ends the loop at the next wake-up */ }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  tsfn_.Release();
}

// stop(): idempotent; Buffers already handed out stay valid until collected.
Napi::Value MappedRing::Stop(const Napi::CallbackInfo& info) {
  StopThread();
  map_.reset();
  return info.Env().Undefined();
}

Napi::Value MappedRing::Wakeups(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(wakeups_.load()));
}

}  // namespace sockmesh
