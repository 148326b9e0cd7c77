#include "map.h"

#include <bpf/bpf.h>
#include <cstring>

namespace sockmesh {

Napi::Function Map::Init(Napi::Env env) {
  std::vector<PropertyDescriptor> props = {
    InstanceMethod("info", &Map::Info),
    InstanceMethod("lookup", &Map::Lookup),
    InstanceMethod("update", &Map::Update),
    InstanceMethod("delete", &Map::Delete),
    InstanceMethod("nextKey", &Map::NextKey),
    InstanceMethod("lookupBatch", &Map::LookupBatch),
    InstanceMethod("updateBatch", &Map::UpdateBatch),
    InstanceMethod("deleteBatch", &Map::DeleteBatch),
    InstanceMethod("freeze", &Map::Freeze),
    InstanceMethod("queryPrograms", &Map::QueryPrograms),
  };
  BaseMethods(props);
  return DefineClass(env, "Map", props);
}

// new Map(fd): takes ownership of a map fd.
Map::Map(const Napi::CallbackInfo& info) : FdHandle<Map>(info) {
  Adopt(static_cast<int>(ArgInt(info, 0, "fd")));
}

// -> { id, type, name, keySize, valueSize, maxEntries, flags }
Napi::Value Map::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "map info");
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) < 0) ThrowErrno(env, errno, "map info");
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, mi.id));
  o.Set("type", Napi::Number::New(env, mi.type));
  o.Set("name", Napi::String::New(env, mi.name));
  o.Set("keySize", Napi::Number::New(env, mi.key_size));
  o.Set("valueSize", Napi::Number::New(env, mi.value_size));
  o.Set("maxEntries", Napi::Number::New(env, mi.max_entries));
  o.Set("flags", Napi::Number::New(env, mi.map_flags));
  return o;
}

// lookup(key, out) -> true, or false when there is no such key.
Napi::Value Map::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "map lookup");
  auto key = ArgBuffer(info, 0, "key");
  auto out = ArgBuffer(info, 1, "value");
  if (bpf_map_lookup_elem(fd, key.Data(), out.Data()) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, errno, "map lookup");
  }
  return Napi::Boolean::New(env, true);
}

// update(key, value, flags)
Napi::Value Map::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "map update");
  auto key = ArgBuffer(info, 0, "key");
  auto val = ArgBuffer(info, 1, "value");
  auto flags = static_cast<uint64_t>(ArgInt(info, 2, "flags"));
  if (bpf_map_update_elem(fd, key.Data(), val.Data(), flags) < 0) ThrowErrno(env, errno, "map update");
  return env.Undefined();
}

// delete(key) -> true if it was there.
Napi::Value Map::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "map delete");
  auto key = ArgBuffer(info, 0, "key");
  if (bpf_map_delete_elem(fd, key.Data()) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, errno, "map delete");
  }
  return Napi::Boolean::New(env, true);
}

// nextKey(key | null, out) -> false at the end.
Napi::Value Map::NextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "map next key");
  const void* key = nullptr;
  if (!ArgIsNullish(info, 0)) key = ArgBuffer(info, 0, "key").Data();
  auto out = ArgBuffer(info, 1, "next key");
  if (bpf_map_get_next_key(fd, key, out.Data()) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, errno, "map next key");
  }
  return Napi::Boolean::New(env, true);
}

// lookupBatch(inToken | null, outToken, keys, values, maxCount) -> { count, done }
Napi::Value Map::LookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "map lookup batch");
  void* in = nullptr;
  if (!ArgIsNullish(info, 0)) in = ArgBuffer(info, 0, "in token").Data();
  auto outTok = ArgBuffer(info, 1, "out token");
  auto keys = ArgBuffer(info, 2, "keys");
  auto vals = ArgBuffer(info, 3, "values");
  auto count = static_cast<uint32_t>(ArgInt(info, 4, "count"));
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  bool done = false;
  if (bpf_map_lookup_batch(fd, in, outTok.Data(), keys.Data(), vals.Data(), &count, &opts) < 0) {
    if (errno != ENOENT) ThrowErrno(env, errno, "map lookup batch");
    done = true;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("count", Napi::Number::New(env, count));
  o.Set("done", Napi::Boolean::New(env, done));
  return o;
}

// updateBatch(keys, values, count, elemFlags) -> count written
Napi::Value Map::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "map update batch");
  auto keys = ArgBuffer(info, 0, "keys");
  auto vals = ArgBuffer(info, 1, "values");
  auto count = static_cast<uint32_t>(ArgInt(info, 2, "count"));
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  opts.elem_flags = static_cast<uint64_t>(ArgInt(info, 3, "elem flags"));
  if (bpf_map_update_batch(fd, keys.Data(), vals.Data(), &count, &opts) < 0) {
    Napi::Error e = ErrnoError(env, errno, "map update batch");
    e.Set("done", Napi::Number::New(env, count));
    throw e;
  }
  return Napi::Number::New(env, count);
}

// deleteBatch(keys, count) -> count deleted
Napi::Value Map::DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "map delete batch");
  auto keys = ArgBuffer(info, 0, "keys");
  auto count = static_cast<uint32_t>(ArgInt(info, 1, "count"));
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_delete_batch(fd, keys.Data(), &count, &opts) < 0) {
    Napi::Error e = ErrnoError(env, errno, "map delete batch");
    e.Set("done", Napi::Number::New(env, count));
    throw e;
  }
  return Napi::Number::New(env, count);
}

// queryPrograms(attachType) -> ids of the programs attached to this map
// (sk_msg / sk_skb on a sockmap or sockhash).
Napi::Value Map::QueryPrograms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "query attached programs");
  auto type = static_cast<enum bpf_attach_type>(ArgInt(info, 0, "attach type"));
  uint32_t ids[64];
  uint32_t cnt = 64;
  if (bpf_prog_query(fd, type, 0, nullptr, ids, &cnt) < 0) ThrowErrno(env, errno, "query attached programs");
  Napi::Array out = Napi::Array::New(env, cnt);
  for (uint32_t i = 0; i < cnt; i++) out.Set(i, Napi::Number::New(env, ids[i]));
  return out;
}

Napi::Value Map::Freeze(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (bpf_map_freeze(RequireFd(env, "map freeze")) < 0) ThrowErrno(env, errno, "map freeze");
  return env.Undefined();
}

}  // namespace sockmesh
