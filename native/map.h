#pragma once
#include "fd_handle.h"

namespace sockmesh {

// A map, owning its fd. Keys and values are raw Buffers whose sizes
// TypeScript checks against info() (per-CPU values included).
class Map : public FdHandle<Map> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Map(const Napi::CallbackInfo& info);

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value NextKey(const Napi::CallbackInfo& info);
  Napi::Value LookupBatch(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value Freeze(const Napi::CallbackInfo& info);
  Napi::Value QueryPrograms(const Napi::CallbackInfo& info);
};

}  // namespace sockmesh
