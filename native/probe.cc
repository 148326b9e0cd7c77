#include "probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <climits>
#include <cstring>
#include <string>

#include "errors.h"

namespace sockmesh {

namespace {

// objGet(path) -> fd of the pinned object (program, map or link).
Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(info.Env(), errno, "open pinned object " + path);
  return Napi::Number::New(info.Env(), fd);
}

// progGetFdById(id) -> fd of a loaded program (CAP_SYS_ADMIN).
Napi::Value ProgGetFdById(const Napi::CallbackInfo& info) {
  uint32_t id = static_cast<uint32_t>(ArgInt(info, 0, "program id"));
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) ThrowErrno(info.Env(), errno, "open program by id " + std::to_string(id));
  return Napi::Number::New(info.Env(), fd);
}

// enableRunTimeStats() -> fd: BPF_ENABLE_STATS(BPF_STATS_RUN_TIME). The kernel
// counts run time and runs of every program while any such fd is open, so a
// crash cannot leave the (machine-wide) accounting on, unlike the sysctl.
Napi::Value EnableRunTimeStats(const Napi::CallbackInfo& info) {
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) ThrowErrno(info.Env(), errno, "enable BPF run-time stats");
  return Napi::Number::New(info.Env(), fd);
}

// fdKind(fd) -> "map" | "prog" | "link" | "other": what a pinned path holds.
Napi::Value FdKind(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0, "fd"));
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  if (n < 0) ThrowErrno(info.Env(), errno, "inspect fd");
  target[n] = '\0';
  const char* kind = "other";
  if (!strcmp(target, "anon_inode:bpf-map")) kind = "map";
  else if (!strcmp(target, "anon_inode:bpf-prog")) kind = "prog";
  else if (!strcmp(target, "anon_inode:bpf_link") || !strcmp(target, "anon_inode:bpf-link")) kind = "link";  // the name differs by how the fd was made
  return Napi::String::New(info.Env(), kind);
}

// lockFile(path) -> fd: the file (created 0600 if missing) with an exclusive
// flock(2) on it, or EWOULDBLOCK while another open file description holds
// one. The kernel drops the lock with the fd, so with the process too.
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) ThrowErrno(info.Env(), errno, "open lock file " + path);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    ::close(fd);
    ThrowErrno(info.Env(), err, "lock " + path);
  }
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0, "fd"));
  if (fd >= 0) ::close(fd);
  return info.Env().Undefined();
}

// Probes return 1 (supported), 0 (not), or throw.
Napi::Value ProbeResult(Napi::Env env, int r, const char* what) {
  if (r < 0) ThrowErrno(env, -r, what);
  return Napi::Boolean::New(env, r == 1);
}

Napi::Value ProbeProgType(const Napi::CallbackInfo& info) {
  auto t = static_cast<enum bpf_prog_type>(ArgInt(info, 0, "program type"));
  return ProbeResult(info.Env(), libbpf_probe_bpf_prog_type(t, nullptr), "probe program type");
}

Napi::Value ProbeMapType(const Napi::CallbackInfo& info) {
  auto t = static_cast<enum bpf_map_type>(ArgInt(info, 0, "map type"));
  return ProbeResult(info.Env(), libbpf_probe_bpf_map_type(t, nullptr), "probe map type");
}

// probeHelper(progType, helperId, expectedAttachType) -> bool. Loads
// "call helper; r0 = 0; exit" and reads the verifier's verdict. libbpf 1.1's
// libbpf_probe_bpf_helper only knows the old "unknown func"/"invalid func"
// messages and takes this kernel's "program of this type cannot use helper"
// for success, so it says yes to everything here.
Napi::Value ProbeHelper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto type = static_cast<enum bpf_prog_type>(ArgInt(info, 0, "program type"));
  auto helper = static_cast<int32_t>(ArgInt(info, 1, "helper id"));
  auto attach = static_cast<enum bpf_attach_type>(ArgInt(info, 2, "expected attach type"));
  struct bpf_insn insns[3];
  memset(insns, 0, sizeof(insns));
  insns[0].code = BPF_JMP | BPF_CALL;
  insns[0].imm = helper;
  insns[1].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[2].code = BPF_JMP | BPF_EXIT;
  static thread_local char log[8192];
  log[0] = '\0';
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  opts.log_buf = log;
  opts.log_size = sizeof(log);
  opts.log_level = 1;
  opts.expected_attach_type = attach;
  int fd = bpf_prog_load(type, nullptr, "GPL", insns, 3, &opts);
  if (fd >= 0) {
    ::close(fd);
    return Napi::Boolean::New(env, true);
  }
  int err = errno;
  if (strstr(log, "invalid func ") || strstr(log, "unknown func ") || strstr(log, "cannot use helper"))
    return Napi::Boolean::New(env, false);
  // Refused for another reason (e.g. argument types): the helper itself exists.
  if (err == EACCES || err == EINVAL) return Napi::Boolean::New(env, log[0] != '\0');
  ThrowErrno(env, err, "probe helper");
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), -n, "count possible CPUs");
  return Napi::Number::New(info.Env(), n);
}

#define C(obj, prefix, name) obj.Set(#name, Napi::Number::New(env, prefix##name))

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  Napi::Object pt = Napi::Object::New(env);
  C(pt, BPF_PROG_TYPE_, SOCKET_FILTER); C(pt, BPF_PROG_TYPE_, KPROBE); C(pt, BPF_PROG_TYPE_, SCHED_CLS);
  C(pt, BPF_PROG_TYPE_, CGROUP_SKB); C(pt, BPF_PROG_TYPE_, CGROUP_SOCK); C(pt, BPF_PROG_TYPE_, SOCK_OPS);
  C(pt, BPF_PROG_TYPE_, SK_SKB); C(pt, BPF_PROG_TYPE_, SK_MSG); C(pt, BPF_PROG_TYPE_, RAW_TRACEPOINT);
  C(pt, BPF_PROG_TYPE_, CGROUP_SOCK_ADDR); C(pt, BPF_PROG_TYPE_, SK_LOOKUP); C(pt, BPF_PROG_TYPE_, TRACING);
  C(pt, BPF_PROG_TYPE_, LSM); C(pt, BPF_PROG_TYPE_, SYSCALL); C(pt, BPF_PROG_TYPE_, TRACEPOINT);
  c.Set("progType", pt);

  Napi::Object at = Napi::Object::New(env);
  C(at, BPF_, CGROUP_INET_INGRESS); C(at, BPF_, CGROUP_INET_EGRESS); C(at, BPF_, CGROUP_INET_SOCK_CREATE);
  C(at, BPF_, CGROUP_SOCK_OPS); C(at, BPF_, SK_SKB_STREAM_PARSER); C(at, BPF_, SK_SKB_STREAM_VERDICT);
  C(at, BPF_, SK_SKB_VERDICT); C(at, BPF_, SK_MSG_VERDICT);
  C(at, BPF_, CGROUP_INET4_CONNECT); C(at, BPF_, CGROUP_INET6_CONNECT);
  C(at, BPF_, CGROUP_UDP4_SENDMSG); C(at, BPF_, CGROUP_UDP6_SENDMSG);
  C(at, BPF_, CGROUP_UDP4_RECVMSG); C(at, BPF_, CGROUP_UDP6_RECVMSG);
  C(at, BPF_, CGROUP_INET4_GETPEERNAME); C(at, BPF_, CGROUP_INET6_GETPEERNAME);
  C(at, BPF_, CGROUP_INET4_POST_BIND); C(at, BPF_, CGROUP_INET6_POST_BIND);
  C(at, BPF_, TRACE_RAW_TP); C(at, BPF_, TRACE_FENTRY); C(at, BPF_, SK_LOOKUP);
  c.Set("attachType", at);

  Napi::Object mt = Napi::Object::New(env);
  C(mt, BPF_MAP_TYPE_, HASH); C(mt, BPF_MAP_TYPE_, ARRAY); C(mt, BPF_MAP_TYPE_, PERCPU_HASH);
  C(mt, BPF_MAP_TYPE_, PERCPU_ARRAY); C(mt, BPF_MAP_TYPE_, LRU_HASH); C(mt, BPF_MAP_TYPE_, LRU_PERCPU_HASH);
  C(mt, BPF_MAP_TYPE_, LPM_TRIE); C(mt, BPF_MAP_TYPE_, ARRAY_OF_MAPS); C(mt, BPF_MAP_TYPE_, HASH_OF_MAPS);
  C(mt, BPF_MAP_TYPE_, SOCKMAP); C(mt, BPF_MAP_TYPE_, SOCKHASH); C(mt, BPF_MAP_TYPE_, SK_STORAGE);
  C(mt, BPF_MAP_TYPE_, RINGBUF);
  c.Set("mapType", mt);

  Napi::Object h = Napi::Object::New(env);
  C(h, BPF_FUNC_, map_lookup_elem); C(h, BPF_FUNC_, map_update_elem); C(h, BPF_FUNC_, ktime_get_ns);
  C(h, BPF_FUNC_, get_socket_cookie); C(h, BPF_FUNC_, get_current_cgroup_id); C(h, BPF_FUNC_, sk_storage_get);
  C(h, BPF_FUNC_, sock_hash_update); C(h, BPF_FUNC_, msg_redirect_hash); C(h, BPF_FUNC_, sock_ops_cb_flags_set);
  C(h, BPF_FUNC_, ringbuf_reserve); C(h, BPF_FUNC_, ringbuf_submit); C(h, BPF_FUNC_, ringbuf_output);
  C(h, BPF_FUNC_, set_retval); C(h, BPF_FUNC_, loop); C(h, BPF_FUNC_, get_current_pid_tgid);
  c.Set("helper", h);

  Napi::Object lt = Napi::Object::New(env);
  C(lt, BPF_LINK_TYPE_, RAW_TRACEPOINT); C(lt, BPF_LINK_TYPE_, TRACING); C(lt, BPF_LINK_TYPE_, CGROUP);
  C(lt, BPF_LINK_TYPE_, ITER); C(lt, BPF_LINK_TYPE_, NETNS);
  c.Set("linkType", lt);

  Napi::Object uf = Napi::Object::New(env);
  C(uf, BPF_, ANY); C(uf, BPF_, NOEXIST); C(uf, BPF_, EXIST);
  c.Set("updateFlag", uf);

  Napi::Object rb = Napi::Object::New(env);
  C(rb, BPF_RB_, NO_WAKEUP); C(rb, BPF_RB_, FORCE_WAKEUP);
  c.Set("ringbufFlag", rb);
  return c;
}

#undef C

}  // namespace

void InitFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("objGet", Napi::Function::New(env, ObjGet, "objGet"));
  exports.Set("fdKind", Napi::Function::New(env, FdKind, "fdKind"));
  exports.Set("progGetFdById", Napi::Function::New(env, ProgGetFdById, "progGetFdById"));
  exports.Set("enableRunTimeStats", Napi::Function::New(env, EnableRunTimeStats, "enableRunTimeStats"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
  exports.Set("probeProgType", Napi::Function::New(env, ProbeProgType, "probeProgType"));
  exports.Set("probeMapType", Napi::Function::New(env, ProbeMapType, "probeMapType"));
  exports.Set("probeHelper", Napi::Function::New(env, ProbeHelper, "probeHelper"));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus, "numPossibleCpus"));
  exports.Set("constants", Constants(env));
  exports.Set("libbpfVersion", Napi::String::New(env, libbpf_version_string()));
}

}  // namespace sockmesh
