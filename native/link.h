#pragma once
#include "fd_handle.h"

namespace sockmesh {

// One attachment. Either a BPF link fd (cgroup, tracepoint), or - for
// sk_msg/sk_skb on a sockmap, which libbpf 1.1 cannot make a link - a
// bpf_prog_attach() of duplicated program and map fds that close() detaches.
class Link : public FdHandle<Link> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Link(const Napi::CallbackInfo& info);

 protected:
  void CloseFd() override;

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value PinLink(const Napi::CallbackInfo& info);

  int targetFd_ = -1;  // prog_attach mode: the map
  int attachType_ = -1;
};

}  // namespace sockmesh
