// Base of every handle that owns one kernel file descriptor (program, map,
// link). close() is idempotent and the destructor calls it, so a handle that is
// garbage-collected, closed twice, or closed after its object never leaks or
// double-closes.
#pragma once
#include <napi.h>
#include <fcntl.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <cerrno>
#include <string>

#include "errors.h"

namespace sockmesh {

template <typename T>
class FdHandle : public Napi::ObjectWrap<T> {
 public:
  explicit FdHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info) {}
  ~FdHandle() override { CloseFd(); }

 protected:
  // Takes ownership of fd.
  void Adopt(int fd) { fd_ = fd; }

  int RequireFd(Napi::Env env, const char* op) const {
    if (fd_ < 0) ThrowErrno(env, EBADF, std::string(op) + " on a closed handle");
    return fd_;
  }

  virtual void CloseFd() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseFd();
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), fd_);
  }

  Napi::Value Pin(const Napi::CallbackInfo& info) {
    std::string path = ArgString(info, 0, "path");
    int fd = RequireFd(info.Env(), "pin");
    if (bpf_obj_pin(fd, path.c_str()) < 0) ThrowErrno(info.Env(), errno, "pin to " + path);
    return info.Env().Undefined();
  }

  static void BaseMethods(std::vector<typename Napi::ObjectWrap<T>::PropertyDescriptor>& props) {
    props.push_back(Napi::ObjectWrap<T>::InstanceMethod("close", &T::Close));
    props.push_back(Napi::ObjectWrap<T>::InstanceMethod("pin", &T::Pin));
    props.push_back(Napi::ObjectWrap<T>::InstanceAccessor("fd", &T::GetFd, nullptr));
  }

  int fd_ = -1;
};

// Duplicates fd with close-on-exec; throws on failure.
inline int DupFd(Napi::Env env, int fd, const char* what) {
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (nfd < 0) ThrowErrno(env, errno, std::string("dup ") + what);
  return nfd;
}

}  // namespace sockmesh
