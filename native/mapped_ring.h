#pragma once
#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace sockmesh {

// The mappings of one BPF ring buffer, unmapped when the last holder (the
// MappedRing or a Buffer handed to JS) lets go: JS can never read unmapped
// memory, whatever it keeps.
struct RingMapping {
  void* consumer = nullptr;  // 1 page, read-write: consumer_pos at offset 0
  void* producer = nullptr;  // 1 page + 2 x data, read-only: producer_pos, then data twice
  size_t page = 0;
  size_t dataSize = 0;
  ~RingMapping();
};

// Zero-copy ring-buffer consumption: JS reads records in place from the
// mapped ring and advances consumer_pos itself. A native thread only waits
// for data (epoll, or a timer for BPF_RB_NO_WAKEUP producers) and tells JS
// once; it waits again only after JS has drained and called ack(), so it
// never spins on a level-triggered fd and never blocks on JS.
class MappedRing : public Napi::ObjectWrap<MappedRing> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit MappedRing(const Napi::CallbackInfo& info);
  ~MappedRing() override;

 private:
  Napi::Value Buffers(const Napi::CallbackInfo& info);
  Napi::Value Ack(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Wakeups(const Napi::CallbackInfo& info);
  void Run();
  void StopThread();
  bool DataReady() const;

  std::shared_ptr<RingMapping> map_;
  int mapFd_ = -1;
  int epfd_ = -1;
  int evfd_ = -1;
  int intervalMs_ = 0;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;  // guarded by mu_: JS was told and has not acked yet
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> wakeups_{0};
  bool running_ = false;
};

}  // namespace sockmesh
