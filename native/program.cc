#include "program.h"

#include <fcntl.h>
#include <bpf/bpf.h>
#include <cstring>
#include <string>

namespace sockmesh {

Napi::Function Program::Init(Napi::Env env) {
  std::vector<PropertyDescriptor> props = {
    InstanceMethod("info", &Program::Info),
    InstanceMethod("attachCgroup", &Program::AttachCgroup),
    InstanceMethod("attachRawTracepoint", &Program::AttachRawTracepoint),
    InstanceMethod("attachMapIter", &Program::AttachMapIter),
    InstanceMethod("testRun", &Program::TestRun),
    InstanceMethod("testRunAsync", &Program::TestRunAsync),
  };
  BaseMethods(props);
  return DefineClass(env, "Program", props);
}

// new Program(fd): takes ownership of a program fd (from BpfObject.programFd
// or objGet).
Program::Program(const Napi::CallbackInfo& info) : FdHandle<Program>(info) {
  Adopt(static_cast<int>(ArgInt(info, 0, "fd")));
}

// -> { id, type, name, tag, runTimeNs, runCount, recursionMisses }
// (the run counters move only while run-time stats are on: enableRunTimeStats)
Napi::Value Program::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "program info");
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  uint32_t len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) < 0) ThrowErrno(env, errno, "program info");
  char tag[2 * sizeof(pi.tag) + 1];
  for (size_t i = 0; i < sizeof(pi.tag); i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, pi.id));
  o.Set("type", Napi::Number::New(env, pi.type));
  o.Set("name", Napi::String::New(env, pi.name));
  o.Set("tag", Napi::String::New(env, tag));
  o.Set("runTimeNs", Napi::Number::New(env, static_cast<double>(pi.run_time_ns)));
  o.Set("runCount", Napi::Number::New(env, static_cast<double>(pi.run_cnt)));
  o.Set("recursionMisses", Napi::Number::New(env, static_cast<double>(pi.recursion_misses)));
  return o;
}

// attachCgroup(cgroupPath, attachType) -> link fd
Napi::Value Program::AttachCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "cgroup path");
  auto type = static_cast<enum bpf_attach_type>(ArgInt(info, 1, "attach type"));
  int fd = RequireFd(env, "attach to cgroup");
  int cg = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) ThrowErrno(env, errno, "open cgroup " + path);
  int link = bpf_link_create(fd, cg, type, nullptr);
  int err = errno;
  close(cg);
  if (link < 0) ThrowErrno(env, err, "attach to cgroup " + path);
  return Napi::Number::New(env, link);
}

// attachRawTracepoint(name | null) -> link fd. null: a tp_btf program, whose
// target was fixed at load.
Napi::Value Program::AttachRawTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "attach tracepoint");
  std::string name;
  bool named = !ArgIsNullish(info, 0);
  if (named) name = ArgString(info, 0, "tracepoint name");
  int link = bpf_raw_tracepoint_open(named ? name.c_str() : nullptr, fd);
  if (link < 0) ThrowErrno(env, errno, "attach tracepoint " + (named ? name : std::string("(BTF)")));
  return Napi::Number::New(env, link);
}

// attachMapIter(mapFd) -> link fd of an iterator over the map's elements
// (e.g. iter/bpf_sk_storage_map); Link.readIter() runs it.
Napi::Value Program::AttachMapIter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(env, "attach iterator");
  union bpf_iter_link_info linfo;
  memset(&linfo, 0, sizeof(linfo));
  linfo.map.map_fd = static_cast<uint32_t>(ArgInt(info, 0, "map fd"));
  LIBBPF_OPTS(bpf_link_create_opts, opts);
  opts.iter_info = &linfo;
  opts.iter_info_len = sizeof(linfo);
  int link = bpf_link_create(fd, 0, BPF_TRACE_ITER, &opts);
  if (link < 0) ThrowErrno(env, errno, "attach map iterator");
  return Napi::Number::New(env, link);
}

namespace {

struct TestRunArgs {
  int fd;
  uint8_t* ctx = nullptr;
  size_t ctxLen = 0;
  uint8_t* data = nullptr;
  size_t dataLen = 0;
  uint32_t repeat = 1;
  // results
  uint32_t retval = 0;
  uint32_t duration = 0;
  int err = 0;

  void Run() {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.ctx_in = ctx;
    opts.ctx_size_in = static_cast<uint32_t>(ctxLen);
    opts.data_in = data;
    opts.data_size_in = static_cast<uint32_t>(dataLen);
    opts.repeat = repeat;
    if (bpf_prog_test_run_opts(fd, &opts) < 0) {
      err = errno;
      return;
    }
    retval = opts.retval;
    duration = opts.duration;
  }

  Napi::Object Result(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("retval", Napi::Number::New(env, static_cast<int32_t>(retval)));
    o.Set("durationNs", Napi::Number::New(env, duration));
    return o;
  }
};

TestRunArgs ReadTestRunArgs(const Napi::CallbackInfo& info, int fd) {
  TestRunArgs a;
  a.fd = fd;
  if (!ArgIsNullish(info, 0)) {
    auto b = ArgBuffer(info, 0, "ctx");
    a.ctx = b.Data();
    a.ctxLen = b.Length();
  }
  if (!ArgIsNullish(info, 1)) {
    auto b = ArgBuffer(info, 1, "data");
    a.data = b.Data();
    a.dataLen = b.Length();
  }
  a.repeat = static_cast<uint32_t>(ArgInt(info, 2, "repeat"));
  return a;
}

// Runs test_run on a libuv worker thread so an in-kernel producer can run
// while the JS thread consumes. The buffers are kept referenced until done.
class TestRunWorker : public Napi::AsyncWorker {
 public:
  TestRunWorker(Napi::Env env, TestRunArgs args, Napi::Value ctx, Napi::Value data)
      : Napi::AsyncWorker(env, "sockmesh:testRun"), args_(args), deferred_(env) {
    if (ctx.IsBuffer()) ctxRef_ = Napi::Persistent(ctx.As<Napi::Object>());
    if (data.IsBuffer()) dataRef_ = Napi::Persistent(data.As<Napi::Object>());
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { args_.Run(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (args_.err) deferred_.Reject(ErrnoError(env, args_.err, "test_run").Value());
    else deferred_.Resolve(args_.Result(env));
  }

 private:
  TestRunArgs args_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference ctxRef_, dataRef_;
};

}  // namespace

// testRun(ctx | null, data | null, repeat) -> { retval, durationNs }
Napi::Value Program::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TestRunArgs a = ReadTestRunArgs(info, RequireFd(env, "test_run"));
  a.Run();
  if (a.err) ThrowErrno(env, a.err, "test_run");
  return a.Result(env);
}

// testRunAsync(ctx | null, data | null, repeat) -> Promise<{ retval, durationNs }>
Napi::Value Program::TestRunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TestRunArgs a = ReadTestRunArgs(info, RequireFd(env, "test_run"));
  // The worker must not outlive the fd: dup it for the run.
  a.fd = DupFd(env, a.fd, "program fd");
  struct Owned : TestRunWorker {
    using TestRunWorker::TestRunWorker;
    int ownedFd = -1;
    ~Owned() override { if (ownedFd >= 0) ::close(ownedFd); }
  };
  auto* w = new Owned(env, a, info[0], info[1]);
  w->ownedFd = a.fd;
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace sockmesh
