#pragma once
#include <napi.h>
#include <bpf/libbpf.h>

namespace sockmesh {

// One bpf_object: opened from an ELF file, adjusted (rodata, map sizes,
// autoload), loaded. Programs and maps leave it as duplicated fds, so they
// outlive close() of the object.
class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;

 private:
  struct bpf_object* Require(Napi::Env env, const char* op) const;
  struct bpf_program* FindProgram(Napi::Env env, const std::string& name) const;
  struct bpf_map* FindMap(Napi::Env env, const std::string& name) const;

  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value DatasecVars(const Napi::CallbackInfo& info);
  Napi::Value SetInitialValue(const Napi::CallbackInfo& info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info);
  Napi::Value SetAutoload(const Napi::CallbackInfo& info);
  Napi::Value ReuseMap(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value ProgramFd(const Napi::CallbackInfo& info);
  Napi::Value MapFd(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  struct bpf_object* obj_ = nullptr;
  bool loaded_ = false;
};

}  // namespace sockmesh
