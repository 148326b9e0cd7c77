#include "iter.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <vector>

namespace sockmesh {

Napi::Function Iter::Init(Napi::Env env) {
  std::vector<PropertyDescriptor> props = {
    InstanceMethod("read", &Iter::Read),
    InstanceMethod("close", &Iter::Close),
    InstanceAccessor("fd", &Iter::GetFd, nullptr),
  };
  return DefineClass(env, "Iter", props);
}

// new Iter(linkFd): a new walk of the iterator link; owns its fd.
Iter::Iter(const Napi::CallbackInfo& info) : FdHandle<Iter>(info) {
  int link = static_cast<int>(ArgInt(info, 0, "iterator link fd"));
  int fd = bpf_iter_create(link);
  if (fd < 0) ThrowErrno(info.Env(), errno, "create iterator");
  Adopt(fd);
}

// read(maxBytes) -> bytes the program wrote in this part (<= maxBytes); 0: the walk is done.
Napi::Value Iter::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t max = ArgInt(info, 0, "maxBytes");
  int fd = RequireFd(env, "read iterator");
  std::vector<char> buf(static_cast<size_t>(max));
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno != EINTR && errno != EAGAIN) ThrowErrno(env, errno, "read iterator");
  }
}

}  // namespace sockmesh
