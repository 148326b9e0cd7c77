/**
 * What `sockmesh doctor` probes: everything the agent needs from this node,
 * each as one typed result with a fix for every failure. Probes ask the
 * kernel, never a version table: a version row only frames the others.
 *
 * Attach types are proven, not probed: bpf/selftest.bpf.o is loaded and each
 * program attached to a cgroup doctor itself creates (never the root, never a
 * cgroup it did not make), to the tracepoints and to the object's sockhash,
 * then everything is detached, closed and removed in a finally.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BpfError, BpfObjectSpec, Collection, Link, native, objectPath, VerifierError } from '../bpf';
import type { NativeAddon } from '../bpf/native';
import { lockHeld } from '../agent/instance-lock';
import { DEFAULT_BPFFS, bpffsMounted, ensureBpffs } from '../platform/bpffs';
import { Mount, ScratchCgroup, readMounts } from '../platform/cgroup';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';
export type CheckGroup = 'system' | 'program-type' | 'map-type' | 'attach' | 'helpers';

interface ResultBase {
  name: string;
  group: CheckGroup;
  detail: string;
}

/** A failure always carries a fix: the type makes "a fix for each failure" hold. */
export type CheckResult =
  | (ResultBase & { status: 'ok' })
  | (ResultBase & { status: 'skip' })
  | (ResultBase & { status: 'warn'; fix?: string })
  | (ResultBase & { status: 'fail'; fix: string });

export type ProgressFn = (step: string) => void;

export interface DoctorOptions {
  /** Mount bpffs at /sys/fs/bpf if it is missing (needs CAP_SYS_ADMIN). */
  mountBpffs?: boolean;
  /** Called before each slow step (loads and attaches). */
  progress?: ProgressFn;
  /** For tests: a mount table instead of /proc/self/mounts. */
  mounts?: Mount[];
}

// ---------------------------------------------------------------------------
// What the agent uses. One place to update when the agent's programs change.

/** Program types the agent loads, with what a kernel lacking one needs. */
export const AGENT_PROG_TYPES = {
  CGROUP_SOCK_ADDR: 'CONFIG_CGROUP_BPF=y and kernel >= 4.17',
  SOCK_OPS: 'CONFIG_CGROUP_BPF=y and kernel >= 4.13',
  SK_MSG: 'CONFIG_BPF_STREAM_PARSER=y and kernel >= 4.17',
  TRACING: 'CONFIG_DEBUG_INFO_BTF=y and kernel >= 5.5',
  RAW_TRACEPOINT: 'kernel >= 4.17',
  SYSCALL: 'kernel >= 5.14',
  SCHED_CLS: 'CONFIG_NET_CLS_BPF and CONFIG_NET_CLS_ACT',
} as const;
export type AgentProgType = keyof typeof AGENT_PROG_TYPES;

/** Fix hints for program types probed on request but not used by the agent. */
const OTHER_PROG_TYPE_NEEDS: Readonly<Record<string, string>> = {
  LSM: 'CONFIG_BPF_LSM=y and "bpf" in the lsm= boot parameter',
};

export const AGENT_MAP_TYPES = {
  HASH: 'kernel >= 3.19',
  ARRAY: 'kernel >= 3.19',
  PERCPU_ARRAY: 'kernel >= 4.6',
  LRU_HASH: 'kernel >= 4.10',
  RINGBUF: 'kernel >= 5.8',
  SOCKHASH: 'CONFIG_BPF_STREAM_PARSER=y and kernel >= 4.18',
  SK_STORAGE: 'kernel >= 5.2',
  HASH_OF_MAPS: 'kernel >= 4.12',
  ARRAY_OF_MAPS: 'kernel >= 4.12',
} as const;
export type AgentMapType = keyof typeof AGENT_MAP_TYPES;

/** Helpers (names as in native().constants.helper) per program type that calls them. */
export const AGENT_HELPERS: Readonly<Record<AgentProgType, readonly string[]>> = {
  CGROUP_SOCK_ADDR: ['map_lookup_elem', 'map_update_elem', 'get_socket_cookie', 'sk_storage_get', 'set_retval'],
  SOCK_OPS: ['map_lookup_elem', 'get_socket_cookie', 'sk_storage_get', 'sock_ops_cb_flags_set',
    'ringbuf_reserve', 'ringbuf_submit', 'ktime_get_ns'],
  SK_MSG: ['map_lookup_elem', 'msg_redirect_hash'],
  TRACING: ['map_lookup_elem'],
  RAW_TRACEPOINT: ['map_lookup_elem', 'get_current_pid_tgid'],
  SYSCALL: ['map_lookup_elem', 'map_update_elem'],
  SCHED_CLS: ['map_lookup_elem', 'get_socket_cookie'],
};

type AttachHow =
  | { kind: 'cgroup'; attachType: string }
  | { kind: 'map'; map: string; attachType: string }
  | { kind: 'tp_btf' }
  | { kind: 'raw_tp'; tracepoint: string };

interface SelftestProgram {
  program: string;
  check: string;
  progType: AgentProgType;
  how: AttachHow;
  /** Helpers its C code calls: loading it proves them. Mirror of bpf/selftest.bpf.c. */
  helpers: readonly string[];
}

/** The selftest object's programs, one per hook kind the agent uses. */
export const SELFTEST_PROGRAMS: readonly SelftestProgram[] = [
  { program: 'selftest_connect4', check: 'attach cgroup/connect4', progType: 'CGROUP_SOCK_ADDR',
    how: { kind: 'cgroup', attachType: 'CGROUP_INET4_CONNECT' },
    helpers: ['map_lookup_elem', 'map_update_elem', 'get_socket_cookie'] },
  { program: 'selftest_sockops', check: 'attach sockops', progType: 'SOCK_OPS',
    how: { kind: 'cgroup', attachType: 'CGROUP_SOCK_OPS' },
    helpers: ['map_lookup_elem', 'get_socket_cookie', 'ringbuf_reserve', 'ringbuf_submit', 'sock_ops_cb_flags_set', 'sock_hash_update'] },
  { program: 'selftest_sk_msg', check: 'attach sk_msg -> sockhash', progType: 'SK_MSG',
    how: { kind: 'map', map: 'sock_hash', attachType: 'SK_MSG_VERDICT' },
    helpers: ['map_lookup_elem'] },
  { program: 'selftest_state', check: 'attach tp_btf/inet_sock_set_state', progType: 'TRACING',
    how: { kind: 'tp_btf' },
    helpers: ['map_lookup_elem'] },
  { program: 'selftest_sys_enter', check: 'attach raw_tp/sys_enter', progType: 'RAW_TRACEPOINT',
    how: { kind: 'raw_tp', tracepoint: 'sys_enter' },
    helpers: ['map_lookup_elem', 'get_current_pid_tgid'] },
];

/** Oldest LTS with every feature above (SYSCALL programs came in 5.14). */
const MIN_KERNEL: readonly [number, number] = [5, 15];
/** From 5.11 BPF memory is charged to the memory cgroup, not RLIMIT_MEMLOCK. */
const MEMCG_ACCOUNTING_KERNEL: readonly [number, number] = [5, 11];
/** Below 5.11, a memlock limit under this is likely too small for the agent's maps. */
const MEMLOCK_FLOOR = 64 * 1024 * 1024;

const PRIVILEGE_FIX = 'run as root, or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (before kernel 5.8: CAP_SYS_ADMIN); ' +
  'in a DaemonSet: securityContext.capabilities.add, or privileged: true';
const DEBUG_HINT = 'rerun with SOCKMESH_LIBBPF_DEBUG=1 to see libbpf\'s log';

// ---------------------------------------------------------------------------
// Small builders.

function ok(group: CheckGroup, name: string, detail: string): CheckResult {
  return { status: 'ok', group, name, detail };
}
function skip(group: CheckGroup, name: string, detail: string): CheckResult {
  return { status: 'skip', group, name, detail };
}
function warn(group: CheckGroup, name: string, detail: string, fix?: string): CheckResult {
  return fix === undefined ? { status: 'warn', group, name, detail } : { status: 'warn', group, name, detail, fix };
}
function fail(group: CheckGroup, name: string, detail: string, fix: string): CheckResult {
  return { status: 'fail', group, name, detail, fix };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function atLeast(v: readonly [number, number], min: readonly [number, number]): boolean {
  return v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]);
}

function size(bytes: number): string {
  const [n, unit] = bytes >= 1024 * 1024 ? [bytes / (1024 * 1024), 'MiB'] : [bytes / 1024, 'KiB'];
  return `${n.toFixed(1).replace(/\.0$/, '')} ${unit}`;
}

// ---------------------------------------------------------------------------
// System checks: pure where they can be, so they read the same from a test.

export function parseKernelRelease(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function checkKernel(release: string = os.release()): CheckResult {
  const v = parseKernelRelease(release);
  if (!v) return warn('system', 'kernel', `cannot parse kernel release "${release}"; the rows below decide`);
  if (atLeast(v, MIN_KERNEL)) return ok('system', 'kernel', release);
  return warn('system', 'kernel', `${release} is older than ${MIN_KERNEL.join('.')}; the rows below show what is missing`,
    `upgrade to a kernel >= ${MIN_KERNEL.join('.')}`);
}

/** Capability bits we care about (linux/capability.h). */
const CAP = { NET_ADMIN: 12, SYS_ADMIN: 21, SYS_RESOURCE: 24, PERFMON: 38, BPF: 39 } as const;
type CapName = keyof typeof CAP;

export function effectiveCaps(statusText: string = fs.readFileSync('/proc/self/status', 'utf8')): Set<CapName> {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText)?.[1];
  const bits = hex ? BigInt(`0x${hex}`) : 0n;
  const caps = new Set<CapName>();
  for (const [name, bit] of Object.entries(CAP) as [CapName, number][]) {
    if ((bits >> BigInt(bit)) & 1n) caps.add(name);
  }
  return caps;
}

/**
 * Loading needs CAP_BPF, tracing hooks CAP_PERFMON (CAP_SYS_ADMIN stands in
 * for both, and is the only option before 5.8), networking hooks and cgroup
 * attach CAP_NET_ADMIN. Mounting bpffs needs CAP_SYS_ADMIN, but only when it
 * is missing: the bpffs row says so then, not this one.
 */
export function checkPrivileges(caps: Set<CapName> = effectiveCaps(), euid: number = process.geteuid?.() ?? -1,
  release: string = os.release()): CheckResult {
  const v = parseKernelRelease(release);
  const hasCapBpf = v !== undefined && atLeast(v, [5, 8]);
  const missing: string[] = [];
  if (!caps.has('SYS_ADMIN')) {
    if (!hasCapBpf) missing.push('CAP_SYS_ADMIN (kernel < 5.8 has no CAP_BPF)');
    else {
      if (!caps.has('BPF')) missing.push('CAP_BPF');
      if (!caps.has('PERFMON')) missing.push('CAP_PERFMON');
    }
  }
  if (!caps.has('NET_ADMIN')) missing.push('CAP_NET_ADMIN');
  const who = euid === 0 ? 'root' : `uid ${euid}`;
  if (missing.length) return fail('system', 'privileges', `${who}, missing ${missing.join(', ')}`, PRIVILEGE_FIX);
  return ok('system', 'privileges', `${who}, effective caps include ${[...caps].sort().map((c) => `CAP_${c}`).join(', ')}`);
}

export function checkBtf(file = '/sys/kernel/btf/vmlinux'): CheckResult {
  try {
    const st = fs.statSync(file);
    fs.accessSync(file, fs.constants.R_OK);
    return ok('system', 'BTF', `${file} (${size(st.size)})`);
  } catch (err) {
    return fail('system', 'BTF', `${file}: ${(err as NodeJS.ErrnoException).code ?? errorText(err)}`,
      'tp_btf programs and CO-RE need kernel BTF: use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distro kernels >= 5.4)');
  }
}

export function checkBpffs(mountIt: boolean, mounts: Mount[] = readMounts(), dir: string = DEFAULT_BPFFS): CheckResult {
  if (bpffsMounted(dir, mounts)) return ok('system', 'bpffs', `mounted at ${dir}`);
  const elsewhere = mounts.filter((m) => m.fstype === 'bpf').map((m) => m.target);
  const also = elsewhere.length ? ` (bpffs is mounted at ${elsewhere.join(', ')}, but pins live under ${dir})` : '';
  if (!mountIt) {
    return fail('system', 'bpffs', `not mounted at ${dir}${also}`,
      `run \`sockmesh doctor --mount-bpffs\` or mount -t bpf bpf ${dir}`);
  }
  try {
    ensureBpffs(dir);
  } catch (err) {
    return fail('system', 'bpffs', `mounting at ${dir} failed: ${errorText(err).split('\n')[0]}`,
      `mount -t bpf bpf ${dir} as root (needs CAP_SYS_ADMIN; in a container, mount the host's ${dir} as a hostPath)`);
  }
  return ok('system', 'bpffs', `was not mounted: mounted now at ${dir}`);
}

/** The cgroup v2 mount point from the mount table; hybrid hosts also have v1 hierarchies. */
export function cgroup2Mount(mounts: Mount[]): string | undefined {
  return mounts.find((m) => m.fstype === 'cgroup2')?.target;
}

export function checkCgroup2(mounts: Mount[] = readMounts()): CheckResult {
  const root = cgroup2Mount(mounts);
  if (!root) {
    return fail('system', 'cgroup v2', 'no cgroup2 mount in /proc/self/mounts',
      'mount -t cgroup2 none /sys/fs/cgroup (or boot with systemd.unified_cgroup_hierarchy=1)');
  }
  const hybrid = mounts.some((m) => m.fstype === 'cgroup');
  return ok('system', 'cgroup v2', `mounted at ${root}${hybrid ? ' (hybrid: cgroup v1 hierarchies mounted too)' : ''}`);
}

/** "Max locked memory" soft limit in bytes; Infinity for unlimited; undefined if absent. */
export function memlockSoftLimit(limitsText: string): number | undefined {
  const m = /^Max locked memory\s+(\S+)\s+(\S+)/m.exec(limitsText);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

export function checkMemlock(limitsText: string = fs.readFileSync('/proc/self/limits', 'utf8'),
  release: string = os.release(), caps: Set<CapName> = effectiveCaps()): CheckResult {
  const limit = memlockSoftLimit(limitsText);
  const shown = limit === undefined ? 'unknown' : limit === Infinity ? 'unlimited' : size(limit);
  const v = parseKernelRelease(release);
  if (v && atLeast(v, MEMCG_ACCOUNTING_KERNEL)) {
    return ok('system', 'memlock', `rlimit ${shown}: irrelevant on ${release} (>= 5.11 charges BPF memory to the memory cgroup)`);
  }
  if (limit === Infinity) return ok('system', 'memlock', 'rlimit unlimited');
  // libbpf >= 1.0 raises the limit to infinity itself before loading, which
  // needs CAP_SYS_RESOURCE to go past the hard limit.
  if (caps.has('SYS_RESOURCE')) return ok('system', 'memlock', `rlimit ${shown}; libbpf raises it at load (CAP_SYS_RESOURCE held)`);
  if (limit !== undefined && limit >= MEMLOCK_FLOOR) return ok('system', 'memlock', `rlimit ${shown}`);
  return fail('system', 'memlock', `rlimit ${shown} on a kernel < 5.11 (BPF maps count against it) and no CAP_SYS_RESOURCE to raise it`,
    'ulimit -l unlimited, LimitMEMLOCK=infinity in the systemd unit, or grant CAP_SYS_RESOURCE');
}

/**
 * kernel.bpf_stats_enabled=1 makes every BPF program of the node read the
 * clock twice per run, for as long as nobody turns it off: a profiling
 * switch left on costs the mesh (and Cilium, and anyone) on every packet or
 * connect. The agent's own bpfStats holds the accounting by an fd instead.
 */
export function checkBpfStatsSysctl(read: () => string = () => fs.readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8')): CheckResult {
  let value: string;
  try {
    value = read().trim();
  } catch (err) {
    return skip('system', 'bpf stats', `cannot read kernel.bpf_stats_enabled: ${errorText(err)}`);
  }
  if (value === '0') return ok('system', 'bpf stats', 'kernel.bpf_stats_enabled=0 (run-time accounting only while someone holds it, e.g. the agent with bpfStats on)');
  return warn('system', 'bpf stats', `kernel.bpf_stats_enabled=${value}: every BPF program on this node reads the clock twice per run`,
    'sysctl -w kernel.bpf_stats_enabled=0 unless someone is measuring; for the mesh programs alone use the agent\'s bpfStats: on');
}

/**
 * Pinned instances without an agent. A stopped agent leaves its programs
 * attached on purpose (traffic goes on while it restarts) - but an agent
 * that is never coming back, say a deleted DaemonSet, leaves VIPs translated
 * to the backends of its last mesh file for good, and nobody reading the
 * records. Each agent holds its instance's lock while it runs, so a pinned
 * directory whose lock nobody holds is one of those.
 */
export function checkInstances(dir: string = path.join(DEFAULT_BPFFS, 'sockmesh'),
  held: (bpffsDir: string) => boolean = (d) => lockHeld(d)): CheckResult {
  let names: string[];
  try {
    names = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch {
    names = [];
  }
  if (names.length === 0) return ok('system', 'instances', `no sockmesh instance pinned under ${dir}`);
  let orphans: string[];
  try {
    orphans = names.filter((n) => !held(path.join(dir, n)));
  } catch (err) {
    return skip('system', 'instances', `pinned: ${names.join(', ')}; cannot tell which have an agent: ${errorText(err)}`);
  }
  const running = names.filter((n) => !orphans.includes(n));
  const runningText = running.length ? `agent running: ${running.join(', ')}` : 'no agent running';
  if (orphans.length === 0) return ok('system', 'instances', runningText);
  return warn('system', 'instances',
    `pinned with no agent: ${orphans.join(', ')} (their programs still translate VIPs by their last mesh file; nothing reads their records)${running.length ? `; ${runningText}` : ''}`,
    'start the agent again (`sockmesh agent --instance NAME ...`), or remove what it left: `sockmesh agent --instance NAME --uninstall` (in a cluster: daemonset/uninstall.yaml)');
}

// ---------------------------------------------------------------------------
// Kernel probes through the addon.

/** The addon, or the reason it cannot load (not built, missing libbpf). */
export function loadAddon(): NativeAddon | Error {
  try {
    return native();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

export function checkLibbpf(addon: NativeAddon | Error): CheckResult {
  if (addon instanceof Error) {
    return fail('system', 'libbpf', `native addon not loadable: ${addon.message.split('. ')[0]}`,
      'npm run build:native (needs libbpf-dev, libelf-dev and zlib1g-dev)');
  }
  return ok('system', 'libbpf', `${addon.libbpfVersion} (native addon loaded)`);
}

/**
 * Evidence from the selftest load: which programs the kernel accepted. The
 * libbpf 1.1 probe cannot load TRACING programs (they need a BTF target), so
 * a loaded tp_btf program is the only proof for that type.
 */
export interface LoadEvidence {
  loaded: ReadonlySet<string>;
  /** Selftest programs whose load the kernel refused (not: object missing). */
  refused: ReadonlyMap<string, BpfError>;
}

const NO_EVIDENCE: LoadEvidence = { loaded: new Set(), refused: new Map() };

/** Types libbpf 1.1 cannot probe: they need a BTF target, so its probe always says no. */
const UNPROBEABLE_PROG_TYPES: ReadonlySet<string> = new Set(['TRACING']);

function selftestOfType(progType: string, evidence: LoadEvidence): SelftestProgram | undefined {
  return SELFTEST_PROGRAMS.find((p) => p.progType === progType && evidence.loaded.has(p.program));
}

/** Any program type the addon names: the agent's, or e.g. LSM to see a refusal. */
export function checkProgramType(name: string, evidence: LoadEvidence = NO_EVIDENCE, addon: NativeAddon = native()): CheckResult {
  const row = `prog ${name}`;
  const type = addon.constants.progType[name];
  if (type === undefined) return skip('program-type', row, `the addon has no constant for BPF_PROG_TYPE_${name}`);
  const needs = (AGENT_PROG_TYPES as Readonly<Record<string, string>>)[name] ?? OTHER_PROG_TYPE_NEEDS[name] ?? 'a newer kernel';
  const proof = selftestOfType(name, evidence);
  let supported: boolean;
  try {
    supported = addon.probeProgType(type);
  } catch (err) {
    if (proof) return ok('program-type', row, `${proof.program} loaded (libbpf probe failed: ${errorText(err)})`);
    return fail('program-type', row, `probe failed: ${errorText(err)}`, `needs ${needs}; ${DEBUG_HINT}`);
  }
  if (supported) return ok('program-type', row, proof ? `supported; ${proof.program} loaded` : 'supported (probe load)');
  if (proof) {
    return ok('program-type', row, `${proof.program} loaded (libbpf ${addon.libbpfVersion} cannot probe this type without a BTF target)`);
  }
  if (UNPROBEABLE_PROG_TYPES.has(name)) {
    // The probe's "no" means nothing here; only the selftest load can tell.
    const tried = SELFTEST_PROGRAMS.find((p) => p.progType === name && evidence.refused.has(p.program));
    const refusal = tried && evidence.refused.get(tried.program);
    if (refusal) return fail('program-type', row, `${tried.program} refused: ${refusal.message}`, `needs ${needs}`);
    return skip('program-type', row, `libbpf ${addon.libbpfVersion} cannot probe this type and no selftest program of it loaded (see the attach rows)`);
  }
  return fail('program-type', row, `BPF_PROG_TYPE_${name} refused by the kernel`, `needs ${needs}`);
}

export function checkMapType(name: string, addon: NativeAddon = native()): CheckResult {
  const row = `map ${name}`;
  const type = addon.constants.mapType[name];
  if (type === undefined) return skip('map-type', row, `the addon has no constant for BPF_MAP_TYPE_${name}`);
  const needs = (AGENT_MAP_TYPES as Readonly<Record<string, string>>)[name] ?? 'a newer kernel';
  try {
    if (addon.probeMapType(type)) return ok('map-type', row, 'supported (probe create)');
    return fail('map-type', row, `BPF_MAP_TYPE_${name} refused by the kernel`, `needs ${needs}`);
  } catch (err) {
    return fail('map-type', row, `probe failed: ${errorText(err)}`, `needs ${needs}; ${DEBUG_HINT}`);
  }
}

/**
 * A pair no kernel allows: if the helper probe says yes to it, its yes means
 * nothing here (libbpf 1.1's own probe did that on this kernel, hence the
 * addon's own; this guards against the next message change).
 */
export function helperProbeTrustworthy(addon: NativeAddon = native()): boolean {
  const { progType, helper } = addon.constants;
  const filter = progType.SOCKET_FILTER;
  const onlySockops = helper.sock_ops_cb_flags_set;
  if (filter === undefined || onlySockops === undefined) return false;
  try {
    return !addon.probeHelper(filter, onlySockops, 0);
  } catch {
    return false;
  }
}

export function checkHelpers(progType: AgentProgType, evidence: LoadEvidence, trustProbe: boolean,
  addon: NativeAddon = native()): CheckResult {
  const row = `helpers ${progType}`;
  const proven = new Set(SELFTEST_PROGRAMS.filter((p) => p.progType === progType && evidence.loaded.has(p.program)).flatMap((p) => p.helpers));
  const probed: string[] = [];
  const missing: string[] = [];
  const unverified: string[] = [];
  const typeId = addon.constants.progType[progType];
  for (const h of AGENT_HELPERS[progType]) {
    if (proven.has(h)) continue;
    const id = addon.constants.helper[h];
    // libbpf cannot probe helpers of TRACING programs (they need a BTF target).
    if (id === undefined || typeId === undefined || UNPROBEABLE_PROG_TYPES.has(progType)) {
      unverified.push(h);
      continue;
    }
    let yes: boolean;
    try {
      yes = addon.probeHelper(typeId, id, progType === 'CGROUP_SOCK_ADDR' ? addon.constants.attachType.CGROUP_INET4_CONNECT ?? 0 : 0);
    } catch {
      unverified.push(h);
      continue;
    }
    if (!yes) missing.push(h); // a "no" is always real: the probe only errs towards yes
    else if (trustProbe) probed.push(h);
    else unverified.push(h);
  }
  const parts: string[] = [];
  const provenUsed = AGENT_HELPERS[progType].filter((h) => proven.has(h));
  if (provenUsed.length) parts.push(`proven by load: ${provenUsed.join(', ')}`);
  if (probed.length) parts.push(`probed: ${probed.join(', ')}`);
  if (missing.length) parts.push(`MISSING: ${missing.join(', ')}`);
  if (unverified.length) parts.push(`unverified: ${unverified.join(', ')}`);
  const detail = parts.join('; ');
  if (missing.length) {
    return fail('helpers', row, detail, `the kernel lacks ${missing.map((h) => `bpf_${h}`).join(', ')} for ${progType} programs: upgrade the kernel`);
  }
  if (unverified.length) {
    const why = UNPROBEABLE_PROG_TYPES.has(progType)
      ? `libbpf ${addon.libbpfVersion} cannot probe helpers of ${progType} programs (they need a BTF target)`
      : `libbpf ${addon.libbpfVersion}'s helper probe cannot see refusals on this kernel (it says yes to helpers no kernel allows)`;
    return warn('helpers', row, detail, `${why}; a missing helper shows as a verifier error when the agent loads`);
  }
  return ok('helpers', row, detail);
}

// ---------------------------------------------------------------------------
// Attach proofs.

export interface AttachOutcome {
  results: CheckResult[];
  evidence: LoadEvidence;
}

function attachFix(err: unknown, program: SelftestProgram): string {
  if (err instanceof VerifierError) {
    return `the verifier refused ${program.program}: rebuild with \`npm run build:bpf\` on this kernel; ${DEBUG_HINT}`;
  }
  if (err instanceof BpfError) {
    if (err.code === 'ENOENT' && err.op.startsWith('open cgroup')) {
      return `the cgroup directory is missing: check the cgroup v2 row; doctor attaches only to a cgroup it creates`;
    }
    if (err.code === 'EPERM' || err.code === 'EACCES') return PRIVILEGE_FIX;
    if (program.how.kind === 'tp_btf' || program.how.kind === 'raw_tp') {
      return `the tracepoint is not available for BPF: needs ${AGENT_PROG_TYPES[program.progType]}; ${DEBUG_HINT}`;
    }
    return `${err.op} failed with ${err.code}: needs ${AGENT_PROG_TYPES[program.progType]}; ${DEBUG_HINT}`;
  }
  if (errorText(err).includes('does not exist: build the BPF objects')) return 'npm run build:bpf';
  return DEBUG_HINT;
}

/**
 * Loads the selftest programs: all at once (the common case, one load), or on
 * failure one by one so each row names its own cause.
 */
function loadSelftest(progress: ProgressFn): Map<string, Collection | Error> {
  const out = new Map<string, Collection | Error>();
  const names = SELFTEST_PROGRAMS.map((p) => p.program);
  progress('loading bpf/selftest.bpf.o');
  try {
    const all = BpfObjectSpec.open(objectPath('selftest')).only(names).load();
    for (const n of names) out.set(n, all);
    return out;
  } catch {
    // Fall through: find out which program (or map) the kernel refuses.
  }
  for (const n of names) {
    progress(`loading ${n} alone`);
    try {
      out.set(n, BpfObjectSpec.open(objectPath('selftest')).only([n]).load());
    } catch (err) {
      out.set(n, err instanceof Error ? err : new Error(String(err)));
    }
  }
  return out;
}

function attachOne(p: SelftestProgram, coll: Collection, cgroupDir: string | undefined, addon: NativeAddon): Link {
  const prog = coll.program(p.program);
  const how = p.how;
  switch (how.kind) {
    case 'cgroup': {
      if (cgroupDir === undefined) throw new Error('no cgroup to attach to');
      return prog.attachCgroup(cgroupDir, requireConst(addon.constants.attachType, how.attachType));
    }
    case 'map':
      return prog.attachToMap(coll.map(how.map), requireConst(addon.constants.attachType, how.attachType));
    case 'tp_btf':
      return prog.attachTracepoint();
    case 'raw_tp':
      return prog.attachTracepoint(how.tracepoint);
  }
}

function requireConst(table: Record<string, number>, name: string): number {
  const v = table[name];
  if (v === undefined) throw new Error(`the addon has no constant ${name}`);
  return v;
}

function targetOf(p: SelftestProgram, cgroupDir: string | undefined): string {
  switch (p.how.kind) {
    case 'cgroup': return cgroupDir ?? '(no cgroup)';
    case 'map': return `map ${p.how.map}`;
    case 'tp_btf': return 'its BTF tracepoint';
    case 'raw_tp': return `raw tracepoint ${p.how.tracepoint}`;
  }
}

/**
 * Loads the selftest programs and attaches each to `cgroupDir` (cgroup hooks),
 * the tracepoints or the object's sockhash; detaches and closes everything
 * before returning, whatever happened. `cgroupDir` must be a cgroup the caller
 * created: this function refuses a cgroup v2 root outright. undefined skips
 * the cgroup hooks.
 */
export function proveAttachments(cgroupDir: string | undefined, progress: ProgressFn = () => {},
  addon: NativeAddon = native(), mounts: Mount[] = readMounts()): AttachOutcome {
  if (cgroupDir !== undefined && mounts.some((m) => m.fstype === 'cgroup2' && path.resolve(m.target) === path.resolve(cgroupDir))) {
    throw new Error(`refusing to attach to the cgroup v2 root ${cgroupDir}`);
  }
  const results: CheckResult[] = [];
  const loaded = new Set<string>();
  const refused = new Map<string, BpfError>();
  const links: Link[] = [];
  let collections = new Map<string, Collection | Error>();
  try {
    try {
      collections = loadSelftest(progress);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      for (const p of SELFTEST_PROGRAMS) collections.set(p.program, e);
    }
    for (const p of SELFTEST_PROGRAMS) {
      const coll = collections.get(p.program);
      if (coll === undefined || coll instanceof Error) {
        if (coll instanceof BpfError) refused.set(p.program, coll);
        results.push(fail('attach', p.check, `load failed: ${errorText(coll)}`, attachFix(coll, p)));
        continue;
      }
      loaded.add(p.program);
      const meta = coll.program(p.program).meta;
      if (meta.type !== addon.constants.progType[p.progType]) {
        results.push(fail('attach', p.check, `${p.program} loaded as program type ${meta.type}, expected ${p.progType}`,
          'bpf/selftest.bpf.c and SELFTEST_PROGRAMS in src/doctor/checks.ts disagree: update the table'));
        continue;
      }
      if (p.how.kind === 'cgroup' && cgroupDir === undefined) {
        results.push(skip('attach', p.check, 'no scratch cgroup to attach to (see the cgroup v2 and scratch cgroup rows)'));
        continue;
      }
      progress(`attaching ${p.program} to ${targetOf(p, cgroupDir)}`);
      try {
        links.push(attachOne(p, coll, cgroupDir, addon));
        results.push(ok('attach', p.check, `${p.program} attached to ${targetOf(p, cgroupDir)}, then detached`));
      } catch (err) {
        results.push(fail('attach', p.check, `${p.program}: ${errorText(err)}`, attachFix(err, p)));
      }
    }
  } finally {
    // Links first (detach), then programs and maps; a close never throws past here.
    for (const l of links) {
      try { l.close(); } catch { /* already gone */ }
    }
    for (const c of new Set(collections.values())) {
      if (c instanceof Collection) c.close();
    }
  }
  return { results, evidence: { loaded, refused } };
}

/** Creates the scratch cgroup under the detected root, proves attachments, removes it. */
function attachPhase(cgroupRoot: string | undefined, progress: ProgressFn, addon: NativeAddon, mounts: Mount[]): AttachOutcome {
  let scratch: ScratchCgroup | undefined;
  const pre: CheckResult[] = [];
  if (cgroupRoot !== undefined) {
    try {
      scratch = ScratchCgroup.create(`sockmesh-doctor-${process.pid}`, cgroupRoot);
    } catch (err) {
      // EEXIST included: a cgroup we did not just make is never attached to.
      pre.push(fail('attach', 'scratch cgroup', `cannot create a cgroup under ${cgroupRoot}: ${errorText(err)}`,
        (err as NodeJS.ErrnoException).code === 'EEXIST'
          ? `remove the stale ${path.join(cgroupRoot, `sockmesh-doctor-${process.pid}`)} (rmdir) and rerun`
          : PRIVILEGE_FIX));
    }
  }
  let outcome: AttachOutcome;
  try {
    outcome = proveAttachments(scratch?.path, progress, addon, mounts);
  } finally {
    if (scratch) {
      progress(`removing ${scratch.path}`);
      try {
        scratch.remove();
        pre.push(ok('attach', 'cleanup', `links detached, programs and maps closed, ${scratch.path} removed`));
      } catch (err) {
        pre.push(fail('attach', 'cleanup', `could not remove ${scratch.path}: ${errorText(err)}`, `rmdir ${scratch.path}`));
      }
    }
  }
  return { results: [...outcome.results, ...pre], evidence: outcome.evidence };
}

// ---------------------------------------------------------------------------

/** Every check, in display order. Never throws for a kernel refusal: that is a row. */
/**
 * The real thing: every program of the agent's own objects (bpf/mesh.bpf.o,
 * and bpf/mesh_migrate.bpf.o that an upgrade runs) through the verifier of
 * this kernel. Nothing is attached.
 */
export function checkMeshLoads(): CheckResult {
  const row = 'load mesh programs';
  const objects = ['mesh', 'mesh_migrate'];
  let programs = 0;
  for (const name of objects) {
    let coll: Collection | undefined;
    try {
      coll = BpfObjectSpec.open(objectPath(name)).load();
      programs += coll.programs.length;
    } catch (err) {
      const fix = err instanceof VerifierError
        ? `the verifier refused ${err.program}: ${err.log.trim().split('\n').slice(-2).join(' | ')}; report it with \`sockmesh doctor -o json\``
        : `${errorText(err)}; ${DEBUG_HINT}`;
      return fail('attach', row, `bpf/${name}.bpf.o did not load: ${errorText(err)}`, fix);
    } finally {
      coll?.close();
    }
  }
  return ok('attach', row, `${programs} programs of ${objects.map((o) => `bpf/${o}.bpf.o`).join(' and ')} verified and loaded, then closed`);
}

export function runDoctor(opts: DoctorOptions = {}): CheckResult[] {
  const progress = opts.progress ?? (() => {});
  const mounts = opts.mounts ?? readMounts();
  const caps = effectiveCaps();
  const privileges = checkPrivileges(caps);
  const addon = loadAddon();
  const system: CheckResult[] = [
    checkKernel(), privileges, checkLibbpf(addon), checkBtf(), checkBpffs(opts.mountBpffs ?? false, mounts),
    checkCgroup2(mounts), checkMemlock(undefined, undefined, caps), checkBpfStatsSysctl(), checkInstances(),
  ];

  const progNames = Object.keys(AGENT_PROG_TYPES) as AgentProgType[];
  const mapNames = Object.keys(AGENT_MAP_TYPES) as AgentMapType[];
  // Without the addon or the privileges every kernel row would fail the same
  // way; one clear cause above beats forty echoes of it.
  if (addon instanceof Error || privileges.status === 'fail') {
    const why = addon instanceof Error ? 'needs the native addon (see libbpf)' : 'needs privileges (see privileges)';
    return [
      ...system,
      ...progNames.map((n) => skip('program-type', `prog ${n}`, why)),
      ...mapNames.map((n) => skip('map-type', `map ${n}`, why)),
      ...SELFTEST_PROGRAMS.map((p) => skip('attach', p.check, why)),
      skip('attach', 'load mesh programs', why),
      ...progNames.map((n) => skip('helpers', `helpers ${n}`, why)),
    ];
  }

  // Attach first: its loads are the evidence the type and helper rows use.
  const attach = attachPhase(cgroup2Mount(mounts), progress, addon, mounts);
  const trust = helperProbeTrustworthy(addon);
  const progRows = progNames.map((n) => checkProgramType(n, attach.evidence, addon));
  const helperRows = progNames.map((n, i) => progRows[i]?.status === 'fail'
    ? skip('helpers', `helpers ${n}`, `the program type is unavailable (see prog ${n})`)
    : checkHelpers(n, attach.evidence, trust, addon));
  progress('loading the mesh programs');
  return [...system, ...progRows, ...mapNames.map((n) => checkMapType(n, addon)), ...attach.results, checkMeshLoads(), ...helperRows];
}
