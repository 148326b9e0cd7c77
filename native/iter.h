#pragma once
#include "fd_handle.h"

namespace sockmesh {

// One walk of an iterator link (bpf_iter_create), read in parts: each read()
// walks on until the program has written maxBytes, so a caller can act
// between parts - drain the ring buffer the program fills - and the walk
// resumes where it stopped.
class Iter : public FdHandle<Iter> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Iter(const Napi::CallbackInfo& info);

 private:
  Napi::Value Read(const Napi::CallbackInfo& info);
};

}  // namespace sockmesh
