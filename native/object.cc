#include "object.h"

#include <bpf/btf.h>
#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"
#include "fd_handle.h"

namespace sockmesh {

Napi::Function BpfObject::Init(Napi::Env env) {
  return DefineClass(env, "BpfObject", {
    InstanceMethod("programs", &BpfObject::Programs),
    InstanceMethod("maps", &BpfObject::Maps),
    InstanceMethod("datasecVars", &BpfObject::DatasecVars),
    InstanceMethod("setInitialValue", &BpfObject::SetInitialValue),
    InstanceMethod("setMaxEntries", &BpfObject::SetMaxEntries),
    InstanceMethod("setAutoload", &BpfObject::SetAutoload),
    InstanceMethod("reuseMap", &BpfObject::ReuseMap),
    InstanceMethod("load", &BpfObject::Load),
    InstanceMethod("programFd", &BpfObject::ProgramFd),
    InstanceMethod("mapFd", &BpfObject::MapFd),
    InstanceMethod("close", &BpfObject::Close),
  });
}

// new BpfObject(path)
BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  std::string path = ArgString(info, 0, "path");
  LibbpfLogCapture cap;
  struct bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
  int err = libbpf_get_error(obj);
  if (err) ThrowErrno(info.Env(), -err, "open BPF object " + path, cap.Text());
  obj_ = obj;
}

BpfObject::~BpfObject() {
  if (obj_) bpf_object__close(obj_);
}

struct bpf_object* BpfObject::Require(Napi::Env env, const char* op) const {
  if (!obj_) ThrowErrno(env, EBADF, std::string(op) + " on a closed BPF object");
  return obj_;
}

struct bpf_program* BpfObject::FindProgram(Napi::Env env, const std::string& name) const {
  struct bpf_program* p = bpf_object__find_program_by_name(Require(env, "find program"), name.c_str());
  if (!p) ThrowErrno(env, ENOENT, "no program named '" + name + "' in " + bpf_object__name(obj_));
  return p;
}

struct bpf_map* BpfObject::FindMap(Napi::Env env, const std::string& name) const {
  struct bpf_map* m = bpf_object__find_map_by_name(Require(env, "find map"), name.c_str());
  if (!m) ThrowErrno(env, ENOENT, "no map named '" + name + "' in " + bpf_object__name(obj_));
  return m;
}

// -> [{ name, section, type, expectedAttachType, autoload }]
Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Require(env, "list programs");
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  struct bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_program__name(p));
    o.Set("section", bpf_program__section_name(p));
    o.Set("type", Napi::Number::New(env, bpf_program__type(p)));
    o.Set("expectedAttachType", Napi::Number::New(env, bpf_program__expected_attach_type(p)));
    o.Set("autoload", Napi::Boolean::New(env, bpf_program__autoload(p)));
    out.Set(i++, o);
  }
  return out;
}

// -> [{ name, type, keySize, valueSize, maxEntries, internal }]
Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Require(env, "list maps");
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  struct bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_map__name(m));
    o.Set("type", Napi::Number::New(env, bpf_map__type(m)));
    o.Set("keySize", Napi::Number::New(env, bpf_map__key_size(m)));
    o.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(m)));
    o.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(m)));
    o.Set("flags", Napi::Number::New(env, bpf_map__map_flags(m)));
    o.Set("internal", Napi::Boolean::New(env, bpf_map__is_internal(m)));
    out.Set(i++, o);
  }
  return out;
}

// datasecVars(section) -> [{ name, offset, size }] from the object's BTF, so
// TypeScript can place rodata tunables by name.
Napi::Value BpfObject::DatasecVars(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string sec = ArgString(info, 0, "section");
  struct btf* btf = bpf_object__btf(Require(env, "read BTF"));
  if (!btf) ThrowErrno(env, ENODATA, "object has no BTF");
  int id = btf__find_by_name_kind(btf, sec.c_str(), BTF_KIND_DATASEC);
  Napi::Array out = Napi::Array::New(env);
  if (id < 0) return out;
  const struct btf_type* t = btf__type_by_id(btf, id);
  const struct btf_var_secinfo* v = btf_var_secinfos(t);
  for (uint16_t i = 0; i < btf_vlen(t); i++, v++) {
    const struct btf_type* var = btf__type_by_id(btf, v->type);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", btf__name_by_offset(btf, var->name_off));
    o.Set("offset", Napi::Number::New(env, v->offset));
    o.Set("size", Napi::Number::New(env, v->size));
    out.Set(i, o);
  }
  return out;
}

// setInitialValue(mapName, offset, bytes): writes into a global-data map's
// initial image (".rodata", ".bss", ".data") before load.
Napi::Value BpfObject::SetInitialValue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "map name");
  int64_t off = ArgInt(info, 1, "offset");
  Napi::Buffer<uint8_t> bytes = ArgBuffer(info, 2, "bytes");
  if (loaded_) ThrowErrno(env, EBUSY, "set initial value of " + name + " after load");
  struct bpf_map* m = FindMap(env, name);
  size_t size = 0;
  const void* data = bpf_map__initial_value(m, &size);
  if (!data) ThrowErrno(env, EINVAL, "map " + name + " has no initial value");
  if (off < 0 || static_cast<size_t>(off) + bytes.Length() > size)
    ThrowErrno(env, ERANGE, "write past the end of " + name);
  // libbpf 1.1 hands out the image read-only: patch a copy and set it whole.
  std::string image(static_cast<const char*>(data), size);
  memcpy(image.data() + off, bytes.Data(), bytes.Length());
  int err = bpf_map__set_initial_value(m, image.data(), size);
  if (err) ThrowErrno(env, -err, "set initial value of " + name);
  return env.Undefined();
}

// setMaxEntries(mapName, n) before load.
Napi::Value BpfObject::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "map name");
  int64_t n = ArgInt(info, 1, "max entries");
  struct bpf_map* m = FindMap(env, name);
  int err = bpf_map__set_max_entries(m, static_cast<uint32_t>(n));
  if (err) ThrowErrno(env, -err, "set max_entries of " + name);
  return env.Undefined();
}

// setAutoload(programName, bool) before load.
Napi::Value BpfObject::SetAutoload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "program name");
  if (info.Length() < 2 || !info[1].IsBoolean()) ThrowType(env, "autoload must be a boolean");
  int err = bpf_program__set_autoload(FindProgram(env, name), info[1].As<Napi::Boolean>());
  if (err) ThrowErrno(env, -err, "set autoload of " + name);
  return env.Undefined();
}

// reuseMap(mapName, fd) before load: the object's programs use an existing map
// (e.g. a pinned one after an agent restart or upgrade) instead of a new one.
// libbpf checks that type, key/value sizes and max entries agree.
Napi::Value BpfObject::ReuseMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "map name");
  int fd = static_cast<int>(ArgInt(info, 1, "map fd"));
  if (loaded_) ThrowErrno(env, EBUSY, "reuse map " + name + " after load");
  LibbpfLogCapture cap;
  int err = bpf_map__reuse_fd(FindMap(env, name), fd);
  if (err) ThrowErrno(env, -err, "reuse map " + name, cap.Text());
  return env.Undefined();
}

// load(): on failure throws with `libbpfLog` (libbpf's messages, including the
// verifier log between its BEGIN/END PROG LOAD LOG markers).
Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Require(env, "load");
  if (loaded_) ThrowErrno(env, EALREADY, "load: object already loaded");
  LibbpfLogCapture cap;
  int err = bpf_object__load(obj);
  if (err) ThrowErrno(env, -err, std::string("load BPF object ") + bpf_object__name(obj), cap.Text());
  loaded_ = true;
  return env.Undefined();
}

Napi::Value BpfObject::ProgramFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "program name");
  struct bpf_program* p = FindProgram(env, name);
  int fd = bpf_program__fd(p);
  if (fd < 0) ThrowErrno(env, EBADF, "program " + name + " is not loaded");
  return Napi::Number::New(env, DupFd(env, fd, "program fd"));
}

Napi::Value BpfObject::MapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "map name");
  int fd = bpf_map__fd(FindMap(env, name));
  if (fd < 0) ThrowErrno(env, EBADF, "map " + name + " is not loaded");
  return Napi::Number::New(env, DupFd(env, fd, "map fd"));
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  if (obj_) {
    bpf_object__close(obj_);
    obj_ = nullptr;
  }
  return info.Env().Undefined();
}

}  // namespace sockmesh
