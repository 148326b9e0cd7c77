#include "link.h"

#include <bpf/bpf.h>
#include <cstring>

namespace sockmesh {

Napi::Function Link::Init(Napi::Env env) {
  std::vector<PropertyDescriptor> props = {
    InstanceMethod("info", &Link::Info),
    InstanceMethod("detach", &Link::Detach),
    InstanceMethod("update", &Link::Update),
  };
  // Not BaseMethods: pin must refuse map attachments, so it is PinLink here.
  props.push_back(InstanceMethod("close", &Link::Close));
  props.push_back(InstanceMethod("pin", &Link::PinLink));
  props.push_back(InstanceAccessor("fd", &Link::GetFd, nullptr));
  return DefineClass(env, "Link", props);
}

// new Link(linkFd): owns a BPF link fd.
// new Link(progFd, mapFd, attachType): attaches with bpf_prog_attach; the
// caller keeps its own fds (they are duplicated here).
Link::Link(const Napi::CallbackInfo& info) : FdHandle<Link>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2) {
    Adopt(static_cast<int>(ArgInt(info, 0, "link fd")));
    return;
  }
  int prog = static_cast<int>(ArgInt(info, 0, "program fd"));
  int target = static_cast<int>(ArgInt(info, 1, "map fd"));
  int type = static_cast<int>(ArgInt(info, 2, "attach type"));
  if (bpf_prog_attach(prog, target, static_cast<enum bpf_attach_type>(type), 0) < 0)
    ThrowErrno(env, errno, "attach program to map");
  Adopt(DupFd(env, prog, "program fd"));
  targetFd_ = DupFd(env, target, "map fd");
  attachType_ = type;
}

void Link::CloseFd() {
  if (targetFd_ >= 0 && fd_ >= 0) {
    bpf_prog_detach2(fd_, targetFd_, static_cast<enum bpf_attach_type>(attachType_));
    ::close(targetFd_);
    targetFd_ = -1;
  }
  FdHandle<Link>::CloseFd();
}

// -> { id, type, progId, cgroupId?, attachType? } ; { attachType, mapAttached: true } in prog_attach mode
Napi::Value Link::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "link info");
  Napi::Object o = Napi::Object::New(env);
  if (targetFd_ >= 0) {
    o.Set("mapAttached", Napi::Boolean::New(env, true));
    o.Set("attachType", Napi::Number::New(env, attachType_));
    return o;
  }
  struct bpf_link_info li;
  memset(&li, 0, sizeof(li));
  uint32_t len = sizeof(li);
  if (bpf_obj_get_info_by_fd(fd, &li, &len) < 0) ThrowErrno(env, errno, "link info");
  o.Set("id", Napi::Number::New(env, li.id));
  o.Set("type", Napi::Number::New(env, li.type));
  o.Set("progId", Napi::Number::New(env, li.prog_id));
  if (li.type == BPF_LINK_TYPE_CGROUP) {
    o.Set("cgroupId", Napi::BigInt::New(env, static_cast<uint64_t>(li.cgroup.cgroup_id)));
    o.Set("attachType", Napi::Number::New(env, li.cgroup.attach_type));
  }
  return o;
}

// detach(): ends the attachment even if the link is pinned elsewhere.
Napi::Value Link::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "link detach");
  if (targetFd_ >= 0) {
    CloseFd();
    return env.Undefined();
  }
  if (bpf_link_detach(fd) < 0) ThrowErrno(env, errno, "link detach");
  return env.Undefined();
}

// update(newProgFd): swaps the attached program in one step; the hook is
// never empty, so an agent upgrade drops no connection.
Napi::Value Link::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "link update");
  int prog = static_cast<int>(ArgInt(info, 0, "program fd"));
  if (targetFd_ >= 0) ThrowErrno(env, EOPNOTSUPP, "update a map attachment");
  if (bpf_link_update(fd, prog, nullptr) < 0) ThrowErrno(env, errno, "link update");
  return env.Undefined();
}

Napi::Value Link::PinLink(const Napi::CallbackInfo& info) {
  if (targetFd_ >= 0)
    ThrowErrno(info.Env(), EOPNOTSUPP, "pin a map attachment (pin the map instead: the attachment lives as long as the map)");
  return Pin(info);
}

}  // namespace sockmesh
