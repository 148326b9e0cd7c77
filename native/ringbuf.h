#pragma once
#include <napi.h>
#include <bpf/libbpf.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace sockmesh {

// Consumes a BPF ring buffer on its own thread and hands JS batches of raw
// records: one Buffer per batch, each record framed as
//   u32 length | u32 reserved (0) | data, padded to 8 bytes.
// Backpressure: at most maxInFlight batches are queued to JS; while that many
// are pending the thread stops consuming, records stay in the kernel ring and
// the producer counts its own drops once the ring is full. The queue to JS is
// unbounded and the limit explicit, so stop() can join the thread from the JS
// thread without deadlock (the thread never blocks on JS).
class RingBuffer : public Napi::ObjectWrap<RingBuffer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit RingBuffer(const Napi::CallbackInfo& info);
  ~RingBuffer() override;

 private:
  struct Batch {
    uint8_t* data;
    size_t used;
    uint32_t count;
  };

  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);

  static int OnSample(void* ctx, void* data, size_t len);
  static void CallJs(Napi::Env env, Napi::Function cb, RingBuffer* self, Batch* b);
  void Run();
  void ConsumeOnce();
  bool Saturated();
  void Flush();
  void Append(const void* data, size_t len, size_t need);
  void StopThread(bool drain);

  struct ring_buffer* rb_ = nullptr;
  int mapFd_ = -1;
  int epfd_ = -1;
  int evfd_ = -1;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
  Napi::FunctionReference onClose_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint32_t> inFlight_{0};  // batches handed to JS, not yet processed
  uint32_t maxInFlight_;
  size_t maxBatchBytes_;
  int intervalMs_;
  std::atomic<bool> stopping_{false};
  bool unlimited_ = false;  // draining at stop: ignore maxInFlight
  bool running_ = false;

  Batch cur_{nullptr, 0, 0};
  size_t curCap_ = 0;

  std::atomic<uint64_t> records_{0}, batches_{0}, bytes_{0}, waits_{0};
  std::atomic<int> lastErr_{0};
};

}  // namespace sockmesh
