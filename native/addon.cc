// sockmesh's native addon: a thin, mechanical wrapper over libbpf. Handles
// own kernel fds and nothing else; validation, defaults and policy live in
// TypeScript (src/bpf/).
#include <napi.h>

#include "errors.h"
#include "iter.h"
#include "link.h"
#include "map.h"
#include "mapped_ring.h"
#include "object.h"
#include "probe.h"
#include "program.h"
#include "ringbuf.h"

namespace sockmesh {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  exports.Set("BpfObject", BpfObject::Init(env));
  exports.Set("Program", Program::Init(env));
  exports.Set("Map", Map::Init(env));
  exports.Set("Link", Link::Init(env));
  exports.Set("Iter", Iter::Init(env));
  exports.Set("RingBuffer", RingBuffer::Init(env));
  exports.Set("MappedRing", MappedRing::Init(env));
  InitFunctions(env, exports);
  return exports;
}

}  // namespace sockmesh

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return sockmesh::Init(env, exports);
}

NODE_API_MODULE(sockmesh_native, InitAddon)
