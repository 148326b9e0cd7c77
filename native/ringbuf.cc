#include "ringbuf.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "errors.h"
#include "fd_handle.h"

namespace sockmesh {

namespace {
constexpr int kSaturated = -EAGAIN;  // from OnSample: stop consuming for now
inline size_t Framed(size_t len) { return 8 + ((len + 7) & ~size_t(7)); }
}  // namespace

Napi::Function RingBuffer::Init(Napi::Env env) {
  return DefineClass(env, "RingBuffer", {
    InstanceMethod("stop", &RingBuffer::Stop),
    InstanceMethod("stats", &RingBuffer::Stats),
  });
}

// new RingBuffer(mapFd, onBatch(buf, count), onClose(), maxBatchBytes, maxInFlight, intervalMs)
// intervalMs > 0 also drains on a timer (for producers using BPF_RB_NO_WAKEUP).
RingBuffer::RingBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBuffer>(info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0, "map fd"));
  if (!info[1].IsFunction() || !info[2].IsFunction()) ThrowType(env, "onBatch and onClose must be functions");
  maxBatchBytes_ = static_cast<size_t>(ArgInt(info, 3, "max batch bytes"));
  maxInFlight_ = static_cast<uint32_t>(ArgInt(info, 4, "max in flight"));
  intervalMs_ = static_cast<int>(ArgInt(info, 5, "interval ms"));

  mapFd_ = DupFd(env, fd, "ring buffer map fd");
  LibbpfLogCapture cap;
  rb_ = ring_buffer__new(mapFd_, &RingBuffer::OnSample, this, nullptr);
  if (!rb_) {
    int err = errno;
    ::close(mapFd_);
    mapFd_ = -1;
    ThrowErrno(env, err, "open ring buffer", cap.Text());
  }
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  evfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u32 = 0;
  int ok = (epfd_ >= 0 && evfd_ >= 0) ? epoll_ctl(epfd_, EPOLL_CTL_ADD, ring_buffer__epoll_fd(rb_), &ev) : -1;
  ev.data.u32 = 1;
  if (ok == 0) ok = epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev);
  if (ok < 0) {
    int err = errno;
    if (epfd_ >= 0) ::close(epfd_);
    if (evfd_ >= 0) ::close(evfd_);
    ring_buffer__free(rb_);
    ::close(mapFd_);
    rb_ = nullptr;
    mapFd_ = epfd_ = evfd_ = -1;
    ThrowErrno(env, err, "set up ring buffer polling");
  }

  onClose_ = Napi::Persistent(info[2].As<Napi::Function>());
  tsfn_ = Napi::ThreadSafeFunction::New(
      env, info[1].As<Napi::Function>(), "sockmesh:ringbuf", 0 /* unbounded */, 1, this,
      [](Napi::Env env, RingBuffer* self, RingBuffer*) {
        // All queued batches have been delivered: tell JS, then allow GC.
        if (!self->onClose_.IsEmpty()) self->onClose_.Call({});
        self->Unref();
      },
      this);
  Ref();  // kept alive while the thread runs; released by the finalizer above
  running_ = true;
  thread_ = std::thread(&RingBuffer::Run, this);
}

RingBuffer::~RingBuffer() {
  StopThread(false);
  if (rb_) ring_buffer__free(rb_);
  if (epfd_ >= 0) ::close(epfd_);
  if (evfd_ >= 0) ::close(evfd_);
  if (mapFd_ >= 0) ::close(mapFd_);
  free(cur_.data);
}

bool RingBuffer::Saturated() {
  return !unlimited_ && inFlight_.load(std::memory_order_acquire) >= maxInFlight_;
}

void RingBuffer::Flush() {
  if (!cur_.data || cur_.count == 0) return;
  auto* b = new Batch(cur_);
  cur_ = {nullptr, 0, 0};
  curCap_ = 0;
  inFlight_.fetch_add(1, std::memory_order_acq_rel);
  batches_.fetch_add(1, std::memory_order_relaxed);
  if (tsfn_.NonBlockingCall(b, [this](Napi::Env env, Napi::Function cb, Batch* batch) { CallJs(env, cb, this, batch); }) != napi_ok) {
    // The environment is going away: nobody will read this batch.
    free(b->data);
    delete b;
    inFlight_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void RingBuffer::Append(const void* data, size_t len, size_t need) {
  if (!cur_.data) {
    curCap_ = need > maxBatchBytes_ ? need : maxBatchBytes_;
    cur_.data = static_cast<uint8_t*>(malloc(curCap_));
  } else if (cur_.used + need > curCap_) {
    curCap_ = cur_.used + need;  // JS is full: hold one record more, then stop
    cur_.data = static_cast<uint8_t*>(realloc(cur_.data, curCap_));
  }
  if (!cur_.data) abort();  // out of memory: nothing sane to do
  uint8_t* p = cur_.data + cur_.used;
  uint32_t hdr[2] = {static_cast<uint32_t>(len), 0};
  memcpy(p, hdr, 8);
  memcpy(p + 8, data, len);
  if (need > 8 + len) memset(p + 8 + len, 0, need - 8 - len);
  cur_.used += need;
  cur_.count++;
}

// libbpf has already consumed a record when it calls us, so every record is
// kept; what we control is whether to take the next one. With maxInFlight
// batches in JS we never flush, and stop consuming: the rest stays in the
// kernel ring (where the producer counts its own drops if it fills).
int RingBuffer::OnSample(void* ctx, void* data, size_t len) {
  auto* self = static_cast<RingBuffer*>(ctx);
  size_t need = Framed(len);
  if (self->cur_.data && self->cur_.used + need > self->curCap_ && !self->Saturated()) self->Flush();
  self->Append(data, len, need);
  self->records_.fetch_add(1, std::memory_order_relaxed);
  self->bytes_.fetch_add(len, std::memory_order_relaxed);
  return self->Saturated() ? kSaturated : 0;
}

void RingBuffer::ConsumeOnce() {
  int r = ring_buffer__consume(rb_);
  if (r < 0 && r != kSaturated) lastErr_ = -r;
  if (!Saturated()) Flush();
}

void RingBuffer::Run() {
  struct epoll_event evs[2];
  while (!stopping_.load()) {
    if (Saturated()) {
      std::unique_lock<std::mutex> lk(mu_);
      waits_.fetch_add(1, std::memory_order_relaxed);
      cv_.wait(lk, [this] { return stopping_.load() || !Saturated(); });
    }
    if (stopping_.load()) break;
    // A batch left partial while JS was full goes out as soon as there is room:
    // a quiet producer may never wake us again.
    if (cur_.count) Flush();
    int n = epoll_wait(epfd_, evs, 2, intervalMs_ > 0 ? intervalMs_ : -1);
    if (n < 0 && errno != EINTR) {
      lastErr_ = errno;
      break;
    }
    if (stopping_.load()) break;
    ConsumeOnce();
  }
  if (unlimited_) ConsumeOnce();  // stop(drain): take what the ring still holds
  Flush();                         // records already copied out must reach JS
}

// JS thread: deliver one batch as an external Buffer, then free its slot.
void RingBuffer::CallJs(Napi::Env env, Napi::Function cb, RingBuffer* self, Batch* b) {
  struct Release {
    RingBuffer* self;
    ~Release() {
      self->inFlight_.fetch_sub(1, std::memory_order_acq_rel);
      { std::lock_guard<std::mutex> lk(self->mu_); }  // no lost wake-up between check and wait
      self->cv_.notify_one();
    }
  } release{self};
  if (!env) {
    free(b->data);
    delete b;
    return;
  }
  auto buf = Napi::Buffer<uint8_t>::New(env, b->data, b->used, [](Napi::Env, uint8_t* d) { free(d); });
  uint32_t count = b->count;
  delete b;
  cb.Call({buf, Napi::Number::New(env, count)});
}

void RingBuffer::StopThread(bool drain) {
  if (!running_) return;
  running_ = false;
  unlimited_ = drain;
  stopping_.store(true);
  uint64_t one = 1;
  if (write(evfd_, &one, sizeof(one)) < 0) { /* the flag alone ends the wait on the next wake */ }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  tsfn_.Release();
}

// stop(drain): idempotent. Returns after the thread has ended; batches already
// queued are still delivered, then onClose runs.
Napi::Value RingBuffer::Stop(const Napi::CallbackInfo& info) {
  bool drain = info.Length() > 0 && info[0].ToBoolean();
  StopThread(drain);
  return info.Env().Undefined();
}

Napi::Value RingBuffer::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("records", Napi::Number::New(env, static_cast<double>(records_.load())));
  o.Set("batches", Napi::Number::New(env, static_cast<double>(batches_.load())));
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_.load())));
  o.Set("backpressureWaits", Napi::Number::New(env, static_cast<double>(waits_.load())));
  o.Set("inFlight", Napi::Number::New(env, inFlight_.load()));
  o.Set("lastErrno", Napi::Number::New(env, lastErr_.load()));
  return o;
}

}  // namespace sockmesh
