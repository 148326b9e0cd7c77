#pragma once
#include "fd_handle.h"

namespace sockmesh {

// A loaded program, owning its fd. Attach methods return the new link's fd
// for a Link to own.
class Program : public FdHandle<Program> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Program(const Napi::CallbackInfo& info);

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value AttachCgroup(const Napi::CallbackInfo& info);
  Napi::Value AttachRawTracepoint(const Napi::CallbackInfo& info);
  Napi::Value AttachMapIter(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value TestRunAsync(const Napi::CallbackInfo& info);
};

}  // namespace sockmesh
