/**
 * bench service: HTTP requests/s and latency through a service VIP with the
 * agent's full telemetry on, side by side with what a VIP costs otherwise.
 *
 * Variants, interleaved in every round (order rotated), each in both modes -
 * short connections (`Connection: close`: one TCP connection per request)
 * and keep-alive - with wrk -t1 -c32 against nginx (1 worker, small static
 * body, its own prefix and config):
 *
 *   direct        wrk -> nginx, no programs, no NAT: the baseline
 *   mesh          wrk -> VIP 127.77.0.10:80, rewritten at connect() by the
 *                 real Agent (src/agent/agent.ts) attached to a cgroup holding
 *                 wrk and nginx; every connection's records (client and server
 *                 side) go through the ring buffer into the agent's JS
 *                 (decodeRecord + Aggregator + the Prometheus series, with
 *                 /metrics served and scraped once per run) during the run
 *   iptables      wrk -> VIP, DNAT by kube-proxy-style rules (OUTPUT ->
 *                 KUBE-SERVICES -> KUBE-SVC -> KUBE-SEP -> DNAT), loaded with
 *                 iptables-restore of the backend `iptables` uses here (nft on
 *                 Debian 12; --iptables legacy for the other)
 *   iptables_10k  the same rule behind 10 000 unrelated service rules
 *   haproxy       wrk -> HAProxy (TCP mode, 1 thread) -> nginx
 *
 * With --breakdown, short-connection runs of eight more variants say where
 * the mesh's cost goes, each adding one thing (each on a cgroup and nginx of
 * its own, no agent). First two with no mesh program at all
 * (bpf/sockopsbench.bpf.c), what the kernel charges with no per-socket state:
 *   rewrite_bare       a connect4 that rewrites the VIP from rodata: no map,
 *                      no socket storage - the bare rewrite
 *   callbacks_bare     rewrite_bare + the state and RTT callbacks enabled as
 *                      the mesh does, nothing done in them
 * then the mesh object, step by step:
 *   connect4_only      the mesh's connect4 alone (rewrite, verdict counter,
 *                      socket storage for the VIP): sockops detached, no records
 *   sockops_floor      connect4_only + a sockops program that enables the
 *                      state and RTT callbacks and does nothing in them: the
 *                      kernel's price for any sockops telemetry
 *   sockops_storage    the same + socket storage on the accepted socket too
 *   sockops_norec      all programs, a 4 KiB ring nobody reads: every record
 *                      fails at reserve (callbacks and socket storage only)
 *   mesh_paused_nortt  records written to a ring nobody reads during the
 *                      runs, track_rtt=0 (no sockops call per RTT sample)
 *   mesh_paused        the same with RTT callbacks: the kernel side of mesh
 * The steps are single percents, inside this machine's noise between runs.
 * --profile measures the same thing within one run instead: perf samples of
 * wrk's thread (what bounds short-connection runs) and of the whole machine
 * during one more mesh run, each put in the part of the kernel path its stack
 * is in (bench/lib/perf-profile.ts).
 *
 * Isolation: everything runs in network namespaces the bench creates (lo
 * only, no route out). NAT turns conntrack on for all traffic of a
 * namespace, so each iptables variant has a namespace (and nginx) of its own;
 * direct, mesh and haproxy share one without NAT. Programs attach only to a
 * cgroup the bench creates under the cgroup v2 root. Before every run:
 * TIME_WAIT sockets of that namespace are destroyed (ss -K) and its conntrack
 * table is flushed, so no run inherits another's state. Everything (netns,
 * cgroups, pins, processes, temp files) is removed at exit, also on failure
 * or signal.
 *
 * Each run also records the machine's busy CPU time (/proc/stat): CPU per
 * request says what a path costs independently of how the host schedules the
 * two vCPUs, which moves req/s by up to 25% between runs of the same variant.
 *
 * stdout: tables of medians and ratios; last line one JSON object.
 * stderr: progress. Options: see USAGE.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent } from '../src/agent/agent';
import { lockPath } from '../src/agent/instance-lock';
import { createLogger } from '../src/agent/log';
import { startAddons } from '../src/agent/addons';
import { MeshCounter, MeshVerdict } from '../src/bpf/layouts/mesh';
import { defaultSettings } from '../src/config/settings';
import type { AgentSettings, RttSamples } from '../src/config/model';
import { parseAddr } from '../src/dataplane/addr';
import { BpfObjectSpec, RunTimeStats, objectPath, costDelta } from '../src/bpf';
import type { ProgramCost } from '../src/bpf';
import { Dataplane } from '../src/dataplane/dataplane';
import { desiredState, ServicePortSpec } from '../src/dataplane/desired';
import { applyDesired } from '../src/dataplane/writer';
import { cgroup2Root, ScratchCgroup } from '../src/platform/cgroup';
import { DEFAULT_BPFFS, ensureBpffs } from '../src/platform/bpffs';
import { median, medianInterval, printTable, ratio, si, sig, summarize } from './lib/stats';
import { cleanupOnExit, MissingToolsError, Netns, Proc, requireTools, scratchCgroup, sleep, spawnIn, Tool, Undo, until, waitListening, which } from './lib/sandbox';
import { errorCount, runWrk, WrkResult } from './lib/wrk';
import { attribute, attributeMachine, Attribution, perfMissing, PerfRecording } from './lib/perf-profile';

// ---------------------------------------------------------------- options

const USAGE = `usage: npm run bench -- service [--rounds N] [--seconds S] [--warmup S] [--connections N]
       [--iptables nft|legacy] [--breakdown] [--profile] [--rules N] [--rtt-samples all|none]
  --rounds N       interleaved rounds (default 5; medians are over rounds)
  --seconds S      seconds per wrk run (default 5)
  --warmup S       seconds of one unmeasured run per variant and mode first (default 1; 0: none)
  --connections N  wrk connections (default 32; one wrk thread)
  --iptables B     iptables backend for the DNAT variants (default: what \`iptables\` is here)
  --rules N        unrelated service rules in front of ours for iptables_10k (default 10000)
  --only A,B       run only these variants (diagnostics; ratios that need the others print as -/null)
  --modes M,N      short, keepalive or both (default both)
  --rtt-samples M  the agent's rttSamples for the mesh variant: all (default: the full telemetry the
                   targets are about) or none (no sockops run per RTT sample)
  --bpf-stats      count each mesh program's runs and run time during the mesh runs (kernel
                   BPF_ENABLE_STATS while the bench runs; adds a clock read per program run)
  --breakdown      also run rewrite_bare, callbacks_bare, connect4_only, sockops_floor,
                   sockops_storage, sockops_norec, mesh_paused_nortt and mesh_paused (short
                   connections) to show where the mesh's cost goes (about 4 min more at the defaults)
  --profile        after the rounds, one more mesh run per mode under \`perf record -a -g\` (not in the
                   ratios): the share of wrk's thread - the bottleneck - that each part of the mesh's
                   kernel path takes, and its ns per request (needs perf: apt-get install linux-perf)`;

class UsageError extends Error {}

interface Options {
  rounds: number;
  seconds: number;
  warmup: number;
  connections: number;
  iptables: 'nft' | 'legacy';
  rules: number;
  breakdown: boolean;
  profile: boolean;
  bpfStats: boolean;
  rttSamples: RttSamples;
  only: string[] | undefined;
  modes: Mode[];
}

function defaultIptablesBackend(): 'nft' | 'legacy' {
  const r = spawnSync('iptables', ['-V'], { encoding: 'utf8' });
  return /legacy/.test(r.stdout ?? '') ? 'legacy' : 'nft';
}

function readArgs(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        rounds: { type: 'string', default: '5' },
        seconds: { type: 'string', default: '5' },
        warmup: { type: 'string', default: '1' },
        connections: { type: 'string', default: '32' },
        iptables: { type: 'string' },
        rules: { type: 'string', default: '10000' },
        breakdown: { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        'bpf-stats': { type: 'boolean', default: false },
        'rtt-samples': { type: 'string', default: 'all' },
        only: { type: 'string' },
        modes: { type: 'string', default: 'short,keepalive' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`); // unknown option, missing value
  }
}

function parseOptions(argv: string[]): Options {
  const values = readArgs(argv);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const num = (name: string, v: string | undefined, lo: number, hi: number, integer = true): number => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isFinite(n) || n < lo || n > hi || (integer && !Number.isInteger(n))) {
      throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}], got ${v}\n${USAGE}`);
    }
    return n;
  };
  const backend = values.iptables ?? (which('iptables') ? defaultIptablesBackend() : 'nft');
  if (backend !== 'nft' && backend !== 'legacy') throw new UsageError(`--iptables must be nft or legacy, got ${backend}\n${USAGE}`);
  const list = (v: string | undefined): string[] => (v ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');
  const known: readonly string[] = [...MAIN_VARIANTS, ...BREAKDOWN_VARIANTS];
  const only = values.only === undefined ? undefined : list(values.only);
  for (const n of only ?? []) if (!known.includes(n)) throw new UsageError(`--only: unknown variant ${n} (known: ${known.join(', ')})\n${USAGE}`);
  const rttSamples = values['rtt-samples'];
  if (rttSamples !== 'all' && rttSamples !== 'none') throw new UsageError(`--rtt-samples must be all or none, got ${rttSamples}\n${USAGE}`);
  const modes = list(values.modes);
  const profile = values.profile ?? false;
  const noPerf = profile ? perfMissing() : undefined;
  if (noPerf) throw new UsageError(`--profile: ${noPerf}`);
  if (profile && only && !only.includes('mesh')) throw new UsageError(`--profile profiles the mesh variant: add mesh to --only\n${USAGE}`);
  if (modes.length === 0 || modes.some((m) => !MODES.includes(m as Mode))) throw new UsageError(`--modes must list short and/or keepalive, got ${values.modes}\n${USAGE}`);
  return {
    only,
    modes: MODES.filter((m) => modes.includes(m)),
    rounds: num('rounds', values.rounds, 1, 100),
    // wrk takes whole seconds
    seconds: num('seconds', values.seconds, 1, 600),
    warmup: num('warmup', values.warmup, 0, 60),
    connections: num('connections', values.connections, 1, 10_000),
    iptables: backend,
    rules: num('rules', values.rules, 1, 200_000),
    bpfStats: values['bpf-stats'] ?? false,
    profile,
    rttSamples,
    breakdown: (values.breakdown ?? false) || (only ?? []).some((n) => (BREAKDOWN_VARIANTS as readonly string[]).includes(n)),
  };
}

// ---------------------------------------------------------------- constants

const TAG = '[service]';
function progress(msg: string): void {
  process.stderr.write(`${TAG} ${msg}\n`);
}

const TOOLS: readonly Tool[] = [
  { bin: 'nginx', apt: 'nginx' },
  { bin: 'wrk', apt: 'wrk' },
  { bin: 'haproxy', apt: 'haproxy' },
  { bin: 'iptables-restore', apt: 'iptables' },
  { bin: 'conntrack', apt: 'conntrack' },
  { bin: 'ip', apt: 'iproute2' },
  { bin: 'ss', apt: 'iproute2' },
];

const VIP = '127.77.0.10';
const VIP_PORT = 80;
const BACKEND_PORT = 8080;
/** nginx behind direct and haproxy */
const PLAIN_ADDR = '127.0.0.11';
/** nginx behind the mesh VIP (and, in their own namespaces, behind the DNAT rules) */
const MESH_BACKEND = '127.0.0.21';
const HAPROXY_ADDR = '127.0.0.31';
/** HAProxy's source address towards nginx: its connections never share a 4-tuple with direct's */
const HAPROXY_SOURCE = '127.0.0.32';
/** The breakdown variants, in the order each adds one thing; one nginx each. */
const BREAKDOWN_VARIANTS = ['rewrite_bare', 'callbacks_bare', 'connect4_only', 'sockops_floor', 'sockops_storage', 'sockops_norec', 'mesh_paused_nortt', 'mesh_paused'] as const;
type BreakdownVariant = (typeof BREAKDOWN_VARIANTS)[number];
const PAUSED_RING = 256 * 1024 * 1024;
const BREAKDOWN: Record<BreakdownVariant, { backend: string; what: string }> = {
  rewrite_bare: { backend: '127.0.0.47', what: 'no mesh program: a connect4 rewriting the VIP to its backend from rodata, no map, no socket storage (bare_connect4, bpf/sockopsbench.bpf.c)' },
  callbacks_bare: { backend: '127.0.0.48', what: 'rewrite_bare + the state and RTT callbacks enabled as the mesh does, nothing done in them, no per-socket state anywhere (floor_callbacks)' },
  connect4_only: { backend: '127.0.0.41', what: 'mesh programs with sockops detached: connect4 alone (rewrite, verdict counter, socket storage), no records' },
  sockops_floor: { backend: '127.0.0.45', what: 'connect4_only + a sockops program that enables the state and RTT callbacks as the mesh does and does nothing in them (bpf/sockopsbench.bpf.c)' },
  sockops_storage: { backend: '127.0.0.46', what: "sockops_floor + the mesh's socket storage on the accepted socket too (both sides then have one, as in the mesh)" },
  sockops_norec: { backend: '127.0.0.42', what: 'all mesh programs, a 4 KiB ring nobody reads: full, so every record fails at reserve (callbacks and socket storage, no record written)' },
  mesh_paused_nortt: { backend: '127.0.0.43', what: `as mesh_paused, loaded with track_rtt=0: no sockops call per RTT sample` },
  mesh_paused: { backend: '127.0.0.44', what: `all mesh programs, records into a ${PAUSED_RING >> 20} MiB ring nobody reads during the runs: the kernel side of the telemetry` },
};
const BODY = 'sockmesh bench: a small static body of sixty-four bytes........\n';

type Mode = 'short' | 'keepalive';
const MODES: readonly Mode[] = ['short', 'keepalive'];
const MAIN_VARIANTS = ['direct', 'mesh', 'iptables', 'iptables_10k', 'haproxy'] as const;
type MainVariant = (typeof MAIN_VARIANTS)[number];
type VariantName = MainVariant | BreakdownVariant;

// ---------------------------------------------------------------- servers

function nginxConf(dir: string, name: string, addr: string, port: number): string {
  const t = (x: string): string => path.join(dir, `${name}-${x}`);
  return `# written by bench/service.ts
daemon off;
master_process on;
worker_processes 1;
pid ${t('nginx.pid')};
error_log ${t('error.log')} warn;
events {
    worker_connections 16384;
    accept_mutex off;
}
http {
    access_log off;
    default_type text/plain;
    keepalive_timeout 120s;
    keepalive_requests 100000000;
    client_body_temp_path ${t('client_body')};
    proxy_temp_path ${t('proxy')};
    fastcgi_temp_path ${t('fastcgi')};
    uwsgi_temp_path ${t('uwsgi')};
    scgi_temp_path ${t('scgi')};
    server {
        listen ${addr}:${port} backlog=4096;
        location / {
            return 200 "${BODY.replace(/\n/g, '\\n')}";
        }
    }
}
`;
}

async function startNginx(name: string, ns: Netns, cg: ScratchCgroup, addr: string, dir: string, undo: Undo): Promise<Proc> {
  const conf = path.join(dir, `${name}.conf`);
  fs.writeFileSync(conf, nginxConf(dir, name, addr, BACKEND_PORT));
  const errLog = path.join(dir, `${name}-error.log`);
  const p = spawnIn(name, cg, ns, ['nginx', '-p', dir, '-c', conf, '-e', errLog], undo);
  servers.push(p);
  await waitListening(p, ns, addr, BACKEND_PORT, 5000, () => (fs.existsSync(errLog) ? fs.readFileSync(errLog, 'utf8') : ''));
  return p;
}

async function startHaproxy(ns: Netns, cg: ScratchCgroup, dir: string, undo: Undo): Promise<Proc> {
  const conf = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(conf, `# written by bench/service.ts: TCP mode, one thread (nginx has one worker too)
global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend web
    bind ${HAPROXY_ADDR}:${BACKEND_PORT}
    default_backend nginx
backend nginx
    server plain ${PLAIN_ADDR}:${BACKEND_PORT} source ${HAPROXY_SOURCE}
`);
  const p = spawnIn('haproxy', cg, ns, ['haproxy', '-db', '-f', conf], undo);
  servers.push(p);
  await waitListening(p, ns, HAPROXY_ADDR, BACKEND_PORT);
  return p;
}

/**
 * kube-proxy's iptables mode for one service, as iptables-restore input:
 * OUTPUT -> KUBE-SERVICES -> (`unrelated` other services' rules first) ->
 * KUBE-SVC-BENCH -> KUBE-SEP-BENCH -> DNAT to the backend.
 */
function kubeProxyRules(unrelated: number): string {
  const lines = ['*nat', ':KUBE-SERVICES - [0:0]', ':KUBE-SVC-BENCH - [0:0]', ':KUBE-SEP-BENCH - [0:0]'];
  const id = (i: number): string => String(i).padStart(6, '0');
  for (let i = 0; i < unrelated; i++) lines.push(`:KUBE-SVC-U${id(i)} - [0:0]`, `:KUBE-SEP-U${id(i)} - [0:0]`);
  lines.push('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  for (let i = 0; i < unrelated; i++) {
    // Unrelated VIPs in 127.96.0.0/12 - 127/8 like ours, never connected to.
    const a = `127.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    lines.push(
      `-A KUBE-SERVICES -d ${a}/32 -p tcp -m comment --comment "bench/unrelated-${i}:http cluster IP" -m tcp --dport ${VIP_PORT} -j KUBE-SVC-U${id(i)}`,
      `-A KUBE-SVC-U${id(i)} -m comment --comment "bench/unrelated-${i}:http -> 127.0.0.99:${BACKEND_PORT}" -j KUBE-SEP-U${id(i)}`,
      `-A KUBE-SEP-U${id(i)} -p tcp -m comment --comment "bench/unrelated-${i}:http" -m tcp -j DNAT --to-destination 127.0.0.99:${BACKEND_PORT}`,
    );
  }
  lines.push(
    `-A KUBE-SERVICES -d ${VIP}/32 -p tcp -m comment --comment "bench/web:http cluster IP" -m tcp --dport ${VIP_PORT} -j KUBE-SVC-BENCH`,
    `-A KUBE-SVC-BENCH -m comment --comment "bench/web:http -> ${MESH_BACKEND}:${BACKEND_PORT}" -j KUBE-SEP-BENCH`,
    `-A KUBE-SEP-BENCH -p tcp -m comment --comment "bench/web:http" -m tcp -j DNAT --to-destination ${MESH_BACKEND}:${BACKEND_PORT}`,
    'COMMIT', '');
  return lines.join('\n');
}

function loadRules(ns: Netns, backend: 'nft' | 'legacy', unrelated: number): number {
  ns.exec([`iptables-${backend}-restore`], kubeProxyRules(unrelated));
  const n = ns.exec([`iptables-${backend}`, '-t', 'nat', '-S', 'KUBE-SERVICES']).split('\n').filter((l) => l.startsWith('-A')).length;
  if (n !== unrelated + 1) throw new Error(`netns ${ns.name}: KUBE-SERVICES has ${n} rules, expected ${unrelated + 1}`);
  return n;
}

// ---------------------------------------------------------------- mesh

function meshFile(cgroupRoot: string): string {
  return `# written by bench/service.ts
apiVersion: sockmesh.io/v1alpha1
kind: Mesh
network:
  vipCIDRs: [127.77.0.0/16]
services:
  - name: web
    namespace: bench
    vips: [${VIP}]
    ports:
      - { name: http, port: ${VIP_PORT}, protocol: TCP, targetPort: ${BACKEND_PORT} }
    backends:
      - { address: ${MESH_BACKEND}, labels: { app: web } }
workloads:
  - { name: wrk, namespace: bench, labels: { app: wrk }, cgroup: ${cgroupRoot}/client }
  - { name: web, namespace: bench, labels: { app: web }, cgroup: ${cgroupRoot}/server }
`;
}

function servicePortSpec(backend: string): ServicePortSpec {
  return {
    service: 'bench/web',
    portName: 'http',
    frontends: [{ vip: parseAddr(VIP), port: VIP_PORT, protocol: 'TCP' }],
    backends: [{ addr: parseAddr(backend), port: BACKEND_PORT, weight: 1, labels: {} }],
  };
}

/** VIP connects rewritten to a backend, from the kernel's per-service verdict counters. */
function rewritten(dp: Dataplane): number {
  return dp.verdicts().filter((v) => v.verdict === MeshVerdict.REWRITTEN).reduce((a, v) => a + v.count, 0);
}

/**
 * The mesh programs on a breakdown variant's cgroup, serving the VIP with its
 * own backend, no agent.
 */
interface Probe {
  name: BreakdownVariant;
  /** records the kernel put in the ring, and could not */
  counters(): { emitted: number; dropped: number };
}

function loadProbe(name: BreakdownVariant, cgroupPath: string, pinName: string, reportIntervalMs: number): Probe {
  if (name === 'rewrite_bare' || name === 'callbacks_bare') return loadBare(name, cgroupPath);
  const desired = desiredState([servicePortSpec(BREAKDOWN[name].backend)]);
  const bpffsDir = path.join(DEFAULT_BPFFS, pinName);
  undo.add(`${name} pins ${bpffsDir}`, () => {
    if (Dataplane.pinned(bpffsDir)) Dataplane.uninstallPinned(bpffsDir);
    fs.rmSync(bpffsDir, { recursive: true, force: true });
  });
  const dp = Dataplane.open({
    bpffsDir, cgroupPath, reportIntervalMs, ringBytes: name === 'sockops_norec' ? 4096 : PAUSED_RING, trackRtt: name !== 'mesh_paused_nortt',
  });
  undo.add(`${name} dataplane`, () => dp.close());
  applyDesired(dp.maps, desired);
  const floor: string | undefined = FLOOR_PROGRAMS[name as keyof typeof FLOOR_PROGRAMS];
  if (name === 'connect4_only' || floor) dp.links.get('sockops')?.detach();
  if (floor) {
    // The mesh's own socket storage map: the client socket's storage is the one connect4 made.
    const coll = BpfObjectSpec.open(objectPath('sockopsbench')).reuseMap('sock_info', dp.maps.sock_info).only([floor]).load();
    undo.add(`${name} programs`, () => coll.close());
    const link = coll.program(floor).attachCgroup(cgroupPath);
    undo.add(`${name} sockops link`, () => link.close());
  }
  return { name, counters: () => ({ emitted: dp.counter(MeshCounter.EVENTS), dropped: dp.counter(MeshCounter.EVENTS_DROPPED) }) };
}

/** The bare variants: bpf/sockopsbench.bpf.c's programs alone, the rewrite given as rodata (network order). */
function loadBare(name: 'rewrite_bare' | 'callbacks_bare', cgroupPath: string): Probe {
  const ip = (a: string): number => Buffer.from(a.split('.').map(Number)).readUInt32LE(0);
  const port = (p: number): number => ((p & 0xff) << 8) | (p >> 8);
  const programs = name === 'rewrite_bare' ? ['bare_connect4'] : ['bare_connect4', 'floor_callbacks'];
  const coll = BpfObjectSpec.open(objectPath('sockopsbench'))
    .setConstants({ bare_vip: ip(VIP), bare_vport: port(VIP_PORT), bare_backend: ip(BREAKDOWN[name].backend), bare_bport: port(BACKEND_PORT) })
    .only(programs).load();
  undo.add(`${name} programs`, () => coll.close());
  for (const p of programs) {
    const link = coll.program(p).attachCgroup(cgroupPath);
    undo.add(`${name} ${p} link`, () => link.close());
  }
  return { name, counters: () => ({ emitted: 0, dropped: 0 }) };
}

/** The floor variants' sockops programs (bpf/sockopsbench.bpf.c), in place of the mesh's. */
const FLOOR_PROGRAMS = { sockops_floor: 'floor_callbacks', sockops_storage: 'floor_storage' } as const;

/** Telemetry counted over the measured mesh runs. */
interface Telemetry {
  /** records decoded and aggregated by the agent */
  records: number;
  /** records the kernel put in the ring */
  emitted: number;
  /** records the kernel could not put in the ring */
  dropped: number;
  /** connects through the VIP (= client connections) */
  connections: number;
  /** CPU time of this process (the agent's JS and its ring reader thread), ns */
  cpuNs: number;
  /** wall time of those runs, ns */
  wallNs: number;
}

// ---------------------------------------------------------------- runs

interface Variant {
  name: VariantName;
  what: string;
  ns: Netns;
  cg: ScratchCgroup;
  url: string;
  modes: readonly Mode[];
  /** flushes state a run could leave behind for the next one (conntrack) */
  conntrack: boolean;
}

interface Run {
  variant: VariantName;
  mode: Mode;
  round: number;
  wrk: WrkResult;
  /** this process's CPU during the run, ns */
  cpuNs: number;
  /** busy CPU time of the whole machine during the run (all CPUs, steal excluded), ns */
  machineNs: number;
  wallNs: number;
  /** mesh only: records and connections of this run */
  records?: number;
  connections?: number;
}

function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/**
 * Busy time of every CPU of the machine so far (user, nice, system, irq,
 * softirq; idle, iowait and steal left out), ns. Per request it says what a
 * path costs in CPU however the scheduler placed wrk and nginx, which moves
 * req/s more than any program does on two vCPUs.
 */
function machineBusyNs(): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  return ((user! + nice! + system! + irq! + softirq!) * 1e9) / CLK_TCK;
}

/** Removes what earlier runs left in a namespace: TIME_WAIT sockets and conntrack entries. */
function resetNetns(v: Pick<Variant, 'ns' | 'conntrack'>): void {
  // ss -K destroys the sockets it lists (the kernel needs INET_DIAG_DESTROY;
  // the check after the warm-up says whether it works here).
  spawnSync('ip', ['netns', 'exec', v.ns.name, 'ss', '-H', '-K', '-t', 'state', 'time-wait'], { stdio: 'ignore' });
  if (v.conntrack) spawnSync('ip', ['netns', 'exec', v.ns.name, 'conntrack', '-F'], { stdio: 'ignore' });
}

/** `git describe --always --dirty` of the tree being measured, if it is a git checkout. */
function revision(): string | undefined {
  const r = spawnSync('git', ['describe', '--always', '--dirty'], { cwd: path.join(__dirname, '..', '..'), encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function timeWaitCount(ns: Netns): number {
  return ns.exec(['ss', '-H', '-t', '-n', 'state', 'time-wait']).split('\n').filter(Boolean).length;
}

// ---------------------------------------------------------------- main

/** Everything made, undone newest first at the end, on failure, on signals and at exit. */
const undo = new Undo(progress);
/** The running agent: stopped (its ring reader thread joined) before the undo steps run. */
let agent: Agent | undefined;

/** nginx and HAProxy: stopped gracefully first, so nginx's master reaps its worker. */
const servers: Proc[] = [];

async function stopAgent(): Promise<void> {
  const a = agent;
  agent = undefined;
  await a?.stop();
}

async function stopServers(): Promise<void> {
  await Promise.all(servers.splice(0).map(async (p) => {
    p.kill('SIGTERM');
    await Promise.race([p.wait(), sleep(2000)]);
  }));
}

async function stopAll(): Promise<void> {
  const errors: string[] = [];
  await stopAgent().catch((err: unknown) => errors.push(`stopping the agent: ${(err as Error).message}`));
  await stopServers().catch((err: unknown) => errors.push(`stopping servers: ${(err as Error).message}`));
  if (errors.length) throw new Error(errors.join('; '));
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const started = performance.now();
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new UsageError('run as root: the bench creates network namespaces and cgroups and loads BPF programs');
  }
  requireTools(opts.iptables === 'legacy'
    ? [...TOOLS, { bin: 'iptables-legacy-restore', apt: 'iptables' }]
    : [...TOOLS, { bin: 'iptables-nft-restore', apt: 'iptables' }]);
  const cgRoot = cgroup2Root();
  if (!cgRoot) throw new Error('no cgroup v2 mount in /proc/self/mounts: the mesh needs cgroup v2 (mount -t cgroup2 none /sys/fs/cgroup)');
  ensureBpffs(DEFAULT_BPFFS);

  cleanupOnExit(undo, progress, stopAll);

  const id = `${process.pid}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-bench-service-'));
  undo.add(`temp dir ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));

  // ---- cgroups: <root>/sockmesh-bench-<pid>/{plain, mesh/{client,server}, <breakdown>/{client,server}}
  const topName = `sockmesh-bench-${id}`;
  const top = scratchCgroup(topName, cgRoot, undo);
  const plain = scratchCgroup('plain', top.path, undo);
  const meshCg = scratchCgroup('mesh', top.path, undo);
  const meshClient = scratchCgroup('client', meshCg.path, undo);
  const meshServer = scratchCgroup('server', meshCg.path, undo);

  // ---- namespaces
  const nsMain = Netns.create(`smb-${id}-main`, undo);
  const nsIpt = Netns.create(`smb-${id}-ipt`, undo);
  const nsIpt10k = Netns.create(`smb-${id}-ipt10k`, undo);
  for (const ns of [nsMain, nsIpt, nsIpt10k]) {
    ns.sysctl('net.ipv4.tcp_tw_reuse', 1);
    ns.sysctl('net.core.somaxconn', 4096);
  }
  progress(`namespaces ${nsMain.name} (direct, mesh, haproxy), ${nsIpt.name} (iptables), ${nsIpt10k.name} (iptables_10k); cgroups under ${top.path}`);

  // ---- iptables, inside their namespaces only
  loadRules(nsIpt, opts.iptables, 0);
  const t0 = performance.now();
  loadRules(nsIpt10k, opts.iptables, opts.rules);
  progress(`iptables-${opts.iptables}: DNAT ${VIP}:${VIP_PORT} -> ${MESH_BACKEND}:${BACKEND_PORT} alone in ${nsIpt.name}, ` +
    `behind ${opts.rules} unrelated service rules in ${nsIpt10k.name} (loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  // ---- servers
  await startNginx('nginx-plain', nsMain, plain, PLAIN_ADDR, dir, undo);
  await startNginx('nginx-mesh', nsMain, meshServer, MESH_BACKEND, dir, undo);
  await startHaproxy(nsMain, plain, dir, undo);
  await startNginx('nginx-iptables', nsIpt, plain, MESH_BACKEND, dir, undo);
  await startNginx('nginx-iptables-10k', nsIpt10k, plain, MESH_BACKEND, dir, undo);

  // ---- the agent
  const meshRel = path.relative(cgRoot, meshCg.path);
  const meshPath = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(meshPath, meshFile(meshRel));
  const bpffsDir = path.join(DEFAULT_BPFFS, `sockmesh-bench-${id}`);
  undo.add(`pins ${bpffsDir}`, () => {
    if (Dataplane.pinned(bpffsDir)) Dataplane.uninstallPinned(bpffsDir);
    fs.rmSync(bpffsDir, { recursive: true, force: true });
    fs.rmSync(lockPath(bpffsDir), { force: true }); // the agent's instance lock file
  });
  const settings: AgentSettings = {
    ...defaultSettings(`bench-${id}`),
    bpffsDir,
    cgroupRoot: meshRel,
    apiSocket: path.join(dir, 'agent.sock'),
    // Any free port: the bench scrapes it as Prometheus would.
    metricsAddress: { host: '127.0.0.1', port: 0 },
    rttSamples: opts.rttSamples,
    logLevel: 'warn',
  };
  const agentLog = createLogger('warn', { component: 'agent' });
  agent = new Agent({ settings, meshFile: meshPath, log: agentLog, watch: false });
  await agent.start();
  const theAgent = agent;
  // What `sockmesh agent` runs around the core: /metrics (every record feeds
  // the Prometheus series), health, the local API. The agent's stop() ends them.
  const { metricsPort } = await startAddons(theAgent, agentLog);
  let scrapes = 0;
  const scrape = async (): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
    scrapes++;
    return res.text();
  };
  const dp = theAgent.dataplane;
  // --bpf-stats: the agent's own programs, by hook (Dataplane.programCosts).
  if (opts.bpfStats) {
    const stats = RunTimeStats.enable();
    undo.add('BPF run-time stats', () => stats.close());
  }
  const programTotals = new Map<Mode, { requests: number; wallNs: number; costs: Map<string, ProgramCost> }>();
  progress(`measuring ${revision() ?? 'a tree outside git'}`);
  progress(`agent: programs on ${meshCg.path}, pins ${bpffsDir}, report interval ${settings.reportIntervalMs} ms; ` +
    `VIP ${VIP}:${VIP_PORT} -> ${MESH_BACKEND}:${BACKEND_PORT}`);

  // ---- variants
  const variants: Variant[] = [
    { name: 'direct', what: `wrk -> nginx ${PLAIN_ADDR}:${BACKEND_PORT}, no programs, no NAT`, ns: nsMain, cg: plain, url: `http://${PLAIN_ADDR}:${BACKEND_PORT}/`, modes: MODES, conntrack: false },
    { name: 'mesh', what: `wrk -> VIP ${VIP}:${VIP_PORT}, connect4 rewrite + sockops telemetry, agent consuming`, ns: nsMain, cg: meshClient, url: `http://${VIP}:${VIP_PORT}/`, modes: MODES, conntrack: false },
    { name: 'iptables', what: 'wrk -> VIP, kube-proxy-style DNAT', ns: nsIpt, cg: plain, url: `http://${VIP}:${VIP_PORT}/`, modes: MODES, conntrack: true },
    { name: 'iptables_10k', what: `wrk -> VIP, DNAT behind ${opts.rules} unrelated service rules`, ns: nsIpt10k, cg: plain, url: `http://${VIP}:${VIP_PORT}/`, modes: MODES, conntrack: true },
    { name: 'haproxy', what: `wrk -> HAProxy ${HAPROXY_ADDR}:${BACKEND_PORT} (TCP mode, 1 thread) -> nginx ${PLAIN_ADDR}`, ns: nsMain, cg: plain, url: `http://${HAPROXY_ADDR}:${BACKEND_PORT}/`, modes: MODES, conntrack: false },
  ];

  // ---- breakdown: the same programs on cgroups of their own, without the agent
  const probes: Probe[] = [];
  if (opts.breakdown) {
    for (const name of BREAKDOWN_VARIANTS) {
      const b = BREAKDOWN[name];
      const cg = scratchCgroup(name.replace(/_/g, '-'), top.path, undo);
      const client = scratchCgroup('client', cg.path, undo);
      const server = scratchCgroup('server', cg.path, undo);
      const probe = loadProbe(name, cg.path, `sockmesh-bench-${id}-${name}`, settings.reportIntervalMs);
      probes.push(probe);
      await startNginx(`nginx-${name}`, nsMain, server, b.backend, dir, undo);
      // Short connections only, unless named in --only: the telemetry's cost is per connection.
      const modes: readonly Mode[] = opts.only?.includes(name) ? MODES : ['short'];
      variants.push({ name, what: b.what, ns: nsMain, cg: client, url: `http://${VIP}:${VIP_PORT}/`, modes, conntrack: false });
    }
    progress(`breakdown: ${probes.map((p) => p.name).join(', ')}, each with its own cgroup and nginx`);
  }

  // ---- what runs: --only and --modes narrow it down (for diagnostics)
  const selected = variants.filter((v) => !opts.only || opts.only.includes(v.name))
    .map((v) => ({ ...v, modes: v.modes.filter((m) => opts.modes.includes(m)) }))
    .filter((v) => v.modes.length > 0);
  variants.splice(0, variants.length, ...selected);
  if (variants.length === 0) throw new UsageError('--only/--modes leave nothing to run');

  // ---- runs
  const telemetry: Telemetry = { records: 0, emitted: 0, dropped: 0, connections: 0, cpuNs: 0, wallNs: 0 };
  const decodeErrorsAtStart = theAgent.status().ringbuf.decodeErrors;
  const runs: Run[] = [];

  /** round < 0: not counted (warm-up, profile). onStart: called as wrk is started. */
  const runOne = async (v: Variant, mode: Mode, seconds: number, round: number, onStart?: () => void): Promise<Run> => {
    resetNetns(v);
    if (typeof global.gc === 'function') global.gc();
    await sleep(200);
    const mesh = v.name === 'mesh';
    const rec0 = theAgent.aggregator.records;
    const emit0 = dp.counter(MeshCounter.EVENTS);
    const drop0 = dp.counter(MeshCounter.EVENTS_DROPPED);
    const conn0 = mesh ? rewritten(dp) : 0;
    const p0 = mesh && opts.bpfStats ? dp.programCosts() : undefined;
    const c0 = cpuNs();
    const m0 = machineBusyNs();
    const w0 = process.hrtime.bigint();
    onStart?.();
    const wrk = await runWrk({ url: v.url, seconds, connections: opts.connections, threads: 1, close: mode === 'short' }, v.cg, v.ns, dir, undo);
    const run: Run = {
      variant: v.name, mode, round, wrk, cpuNs: cpuNs() - c0, machineNs: machineBusyNs() - m0, wallNs: Number(process.hrtime.bigint() - w0),
    };
    if (p0 && round >= 0) {
      const t = programTotals.get(mode) ?? { requests: 0, wallNs: 0, costs: new Map<string, ProgramCost>() };
      programTotals.set(mode, t);
      t.requests += wrk.requests;
      t.wallNs += run.wallNs;
      for (const d of costDelta(dp.programCosts(), p0)) {
        const c = t.costs.get(d.name) ?? { name: d.name, runs: 0, ns: 0 };
        c.runs += d.runs;
        c.ns += d.ns;
        t.costs.set(d.name, c);
      }
    }
    if (mesh) {
      // The last connections close as wrk exits: wait until the agent has every record the kernel emitted.
      await until(() => theAgent.aggregator.records - rec0 >= dp.counter(MeshCounter.EVENTS) - emit0, 3000, 10);
      await sleep(50);
      run.records = theAgent.aggregator.records - rec0;
      await scrape(); // one scrape per run, as a Prometheus server would every few seconds
      run.connections = rewritten(dp) - conn0;
      if (round >= 0) {
        telemetry.records += run.records;
        telemetry.emitted += dp.counter(MeshCounter.EVENTS) - emit0;
        telemetry.dropped += dp.counter(MeshCounter.EVENTS_DROPPED) - drop0;
        telemetry.connections += run.connections;
        telemetry.cpuNs += run.cpuNs;
        telemetry.wallNs += run.wallNs;
      }
    }
    return run;
  };

  const describeRun = (r: Run): string => {
    const errs = errorCount(r.wrk);
    const tele = r.records !== undefined ? `, ${r.records} records / ${r.connections} connections` : '';
    return `${r.variant} ${si(r.wrk.rps)}/s p99 ${(r.wrk.p99Us / 1000).toFixed(2)}ms${errs ? ` ERRORS ${errs}` : ''}${tele}`;
  };

  if (opts.warmup > 0) {
    for (const mode of opts.modes) {
      const line: string[] = [];
      for (const v of variants.filter((x) => x.modes.includes(mode))) {
        const r = await runOne(v, mode, opts.warmup, -1);
        if (r.wrk.requests === 0 || errorCount(r.wrk) > 0) {
          throw new Error(`warm-up ${v.name} ${mode}: ${r.wrk.requests} requests, errors ${JSON.stringify(r.wrk.errors)}: is ${v.url} reachable?`);
        }
        line.push(describeRun(r));
      }
      progress(`warm-up ${mode} (${opts.warmup}s, not counted): ${line.join('; ')}`);
      if (mode === 'short') {
        const ns = variants.filter((v) => v.modes.includes('short')).pop()?.ns ?? nsMain; // the namespace of the last run
        const before = timeWaitCount(ns);
        resetNetns({ ns, conntrack: false });
        const after = timeWaitCount(ns);
        progress(`TIME_WAIT sockets in ${ns.name}: ${before} after a run, ${after} after ss -K` +
          `${after > 0 ? ' (this kernel cannot destroy them: runs rely on tcp_tw_reuse and distinct server addresses per variant)' : ''}`);
      }
    }
  }
  if (variants.some((v) => v.name === 'mesh') && rewritten(dp) === 0 && opts.warmup > 0) {
    throw new Error('the mesh rewrote no connect: the VIP reached nothing through the agent');
  }

  const perRound = variants.reduce((a, v) => a + v.modes.length, 0);
  progress(`${opts.rounds} rounds x ${perRound} runs x ${opts.seconds}s (wrk -t1 -c${opts.connections}); ` +
    `estimated ${Math.ceil((opts.rounds * perRound * (opts.seconds + 0.7)) / 60)} min`);
  for (let round = 0; round < opts.rounds; round++) {
    const modes = round % 2 === 0 ? opts.modes : [...opts.modes].reverse();
    for (const mode of modes) {
      const vs = variants.filter((x) => x.modes.includes(mode));
      const order = vs.map((_, i) => vs[(i + round) % vs.length] as Variant);
      const line: string[] = [];
      for (const v of order) {
        const r = await runOne(v, mode, opts.seconds, round);
        runs.push(r);
        line.push(describeRun(r));
      }
      progress(`round ${round + 1}/${opts.rounds} ${mode}: ${line.join('; ')}`);
    }
  }

  // ---- --profile: one more mesh run per mode under perf, not counted
  const profiles: { mode: Mode; a: Attribution; machine: Attribution; nsPerRequestPerSample: number; rps: number }[] = [];
  for (const mode of opts.profile ? opts.modes : []) {
    const v = variants.find((x) => x.name === 'mesh' && x.modes.includes(mode));
    if (!v) continue;
    const seconds = Math.max(5, opts.seconds);
    // perf samples for seconds-1 from wrk's start: wholly inside wrk's run, so requests in it = rps x (seconds-1).
    const window = seconds - 1;
    const hz = 1999;
    progress(`profile ${mode}: one more mesh run of ${seconds}s, perf record -a -g at ${hz} Hz for ${window}s of it (not counted in the ratios)`);
    let rec: PerfRecording | undefined;
    const stopPerf = undo.add('perf record', () => rec?.kill());
    const r = await runOne(v, mode, seconds, -2, () => (rec = new PerfRecording(path.join(dir, `perf-${mode}.data`), window, hz)));
    const samples = await rec!.samples();
    stopPerf();
    const a = attribute(samples, 'wrk');
    if (a.samples === 0) throw new Error(`--profile: perf recorded no sample of wrk (${samples.length} samples in all): is perf allowed to sample the whole machine?`);
    // The agent runs in this process: its threads are ours.
    const machine = attributeMachine(samples, new Set(fs.readdirSync('/proc/self/task').map(Number)));
    profiles.push({ mode, a, machine, nsPerRequestPerSample: 1e9 / hz / (r.wrk.rps * window), rps: r.wrk.rps });
    progress(`profile ${mode}: ${si(r.wrk.rps)}/s; the mesh's kernel path is ${((a.mesh / a.samples) * 100).toFixed(1)}% of wrk's thread, ` +
      `${((machine.mesh / machine.samples) * 100).toFixed(1)}% of the machine's busy time (the agent ${((machine.agent / machine.samples) * 100).toFixed(1)}%)`);
  }

  // ---- checks after the runs
  const twLeft = timeWaitCount(nsMain);
  const ctMain = nsMain.readSysctl('net.netfilter.nf_conntrack_count');
  const ctIpt = nsIpt.readSysctl('net.netfilter.nf_conntrack_count');
  const decodeErrors = theAgent.status().ringbuf.decodeErrors - decodeErrorsAtStart;
  const edges = theAgent.edges().filter((e) => e.labels.service !== '');
  progress(`after the runs: ${twLeft} TIME_WAIT sockets in ${nsMain.name} (destroyed before every run); conntrack entries: ` +
    `${ctMain ?? 'n/a'} in ${nsMain.name} (no NAT there: conntrack never on), ${ctIpt ?? 'n/a'} in ${nsIpt.name}`);
  for (const e of edges) {
    progress(`agent edge ${e.labels.side} ${e.labels.workload} -> ${e.labels.service} -> ${e.labels.backend}: ` +
      `opened ${e.opened}, closed ${e.closed}, failed ${e.failed}, bytes sent ${si(e.bytesSent)}, received ${si(e.bytesReceived)}`);
  }
  for (const p of probes) {
    const c = p.counters();
    progress(`${p.name}: ${c.emitted} records into its ring, ${c.dropped} dropped (nobody reads it)`);
  }

  // The records reached /metrics, not only the aggregator: client-side opened
  // connections through the service, as exposed, against the agent's edges.
  const exposition = await scrape();
  const exposedOpened = exposition.split('\n')
    .filter((l) => l.startsWith('sockmesh_connections_opened_total{') && l.includes('side="client"') && !l.includes('service=""'))
    .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const edgeOpened = edges.filter((e) => e.labels.side === 'client').reduce((a, e) => a + e.opened, 0);
  if (exposedOpened !== edgeOpened) {
    throw new Error(`/metrics shows ${exposedOpened} client connections opened through the service, the agent's edges ${edgeOpened}`);
  }

  // ---- report
  await theAgent.uninstall();
  agent = undefined;

  const out = process.stdout;
  const of = (v: VariantName, m: Mode): Run[] => runs.filter((r) => r.variant === v && r.mode === m);
  const med = (v: VariantName, m: Mode, f: (r: Run) => number): number => median(of(v, m).map(f));
  const rps = (v: VariantName, m: Mode): number => med(v, m, (r) => r.wrk.rps);
  /** (v / base) within each round. */
  const pairs = (v: VariantName, base: VariantName, m: Mode): number[] => {
    const xs: number[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      const a = runs.find((r) => r.variant === v && r.mode === m && r.round === round);
      const b = runs.find((r) => r.variant === base && r.mode === m && r.round === round);
      if (a && b && b.wrk.rps > 0) xs.push(a.wrk.rps / b.wrk.rps);
    }
    return xs;
  };
  /** Median over rounds of the ratio within each round: the paired ratio. */
  const paired = (v: VariantName, base: VariantName, m: Mode): number => median(pairs(v, base, m));
  /** Median over rounds of the machine's busy CPU per request, us. */
  const usPerRequest = (v: VariantName, m: Mode): number => med(v, m, (r) => (r.wrk.requests > 0 ? r.machineNs / r.wrk.requests / 1000 : NaN));
  const ms = (us: number): string => (Number.isFinite(us) ? `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)}ms` : '-');
  const names = variants.map((v) => v.name);

  out.write(`\nservice: nginx (1 worker, ${Buffer.byteLength(BODY)} B body) via each path; wrk -t1 -c${opts.connections}, ${opts.seconds} s per run, ` +
    `medians of ${opts.rounds} interleaved rounds (min-max); ${revision() ?? ''}\n` +
    `${opts.rttSamples === 'none' ? 'mesh agent with rttSamples none: no RTT callback per ACK (the targets are about full telemetry, rttSamples all)\n' : ''}`);
  printTable(undefined, ['variant', 'path'], variants.map((v) => [v.name, v.what]));
  for (const m of MODES) {
    const rows = names.filter((n) => of(n, m).length > 0).map((n) => {
      const s = summarize(of(n, m).map((r) => r.wrk.rps));
      return [n, `${si(s.median)} (${si(s.min, 2)}-${si(s.max, 2)})`, ms(med(n, m, (r) => r.wrk.p50Us)), ms(med(n, m, (r) => r.wrk.p99Us)),
        ratio(rps(n, m) / rps('direct', m)), ratio(paired(n, 'direct', m)), `${(s.spread * 100).toFixed(0)}%`,
        usPerRequest(n, m).toFixed(1), ratio(usPerRequest(n, m) / usPerRequest('direct', m)),
        String(of(n, m).reduce((a, r) => a + errorCount(r.wrk), 0))];
    });
    printTable(`\n${m === 'short' ? 'short connections (Connection: close; one TCP connection per request)' : 'keep-alive (32 connections for the whole run)'}`,
      ['variant', 'req/s', 'p50', 'p99', 'vs direct', 'paired', 'spread', 'CPU us/req', 'CPU vs direct', 'errors'], rows);
  }
  out.write('\nvs direct: ratio of the medians; paired: median over rounds of the ratio within each round; spread: (max-min)/median of req/s.\n' +
    'CPU us/req: busy time of all CPUs of the machine during a run (wrk, nginx, the proxy or the agent, the kernel), per request;\n' +
    'median over rounds. Below 1x in req/s but near 1x in CPU means the path waits, not that it works harder.\n' +
    'Latency is wrk\'s: from the first write of a request to its response. With Connection: close it leaves connect() out\n' +
    '(the handshake, where connect4 and DNAT act), so short-connection costs show in req/s more than in p50/p99.\n');

  const r = (a: VariantName, b: VariantName, m: Mode = 'short'): number => rps(a, m) / rps(b, m);
  /** Each headline ratio: variant, baseline, mode. */
  const HEADLINE_PAIRS = {
    mesh_vs_direct_short: ['mesh', 'direct', 'short'],
    mesh_vs_direct_keepalive: ['mesh', 'direct', 'keepalive'],
    mesh_vs_iptables: ['mesh', 'iptables', 'short'],
    mesh_vs_iptables_10k: ['mesh', 'iptables_10k', 'short'],
    mesh_vs_haproxy: ['mesh', 'haproxy', 'short'],
  } as const satisfies Record<string, readonly [VariantName, VariantName, Mode]>;
  type Headline = keyof typeof HEADLINE_PAIRS;
  const headline = <T>(f: (v: VariantName, base: VariantName, m: Mode) => T): Record<Headline, T> =>
    Object.fromEntries(Object.entries(HEADLINE_PAIRS).map(([k, [v, base, m]]) => [k, f(v, base, m)])) as Record<Headline, T>;
  const ratios = headline(r);
  const pairedOf = headline(paired);
  // Where the paired ratio's median lies, from the rounds alone.
  const intervals = headline((v, base, m) => medianInterval(pairs(v, base, m)));
  const targets: { key: Headline; what: string; min: number }[] = [
    { key: 'mesh_vs_direct_short', what: 'mesh / direct, short connections', min: 0.95 },
    { key: 'mesh_vs_direct_keepalive', what: 'mesh / direct, keep-alive', min: 0.98 },
    { key: 'mesh_vs_iptables', what: 'mesh / iptables DNAT, short', min: 1.3 },
    { key: 'mesh_vs_iptables_10k', what: `mesh / DNAT behind ${opts.rules} rules, short`, min: 4 },
    { key: 'mesh_vs_haproxy', what: 'mesh / HAProxy, short', min: 1.7 },
  ];
  const interval = (k: Headline): string => {
    const i = intervals[k];
    return Number.isFinite(i.lo) ? `${i.lo.toFixed(3)}-${i.hi.toFixed(3)}x (${(i.coverage * 100).toFixed(1)}%)` : '-';
  };
  /**
   * What a target asks of the mesh against direct, with the baseline as this
   * run measured it: a path through the mesh does all that the direct one
   * does and more, so a target that needs more than 1x direct cannot be met
   * on this machine by any mesh, whatever its kernel path costs.
   */
  const needs = (t: (typeof targets)[number]): number => {
    const [, base, m] = HEADLINE_PAIRS[t.key];
    return base === 'direct' ? t.min : t.min * r(base, 'direct', m);
  };
  const needed = (t: (typeof targets)[number]): string => {
    const x = needs(t);
    return !Number.isFinite(x) ? '-' : x > 1 ? `${ratio(x)} (above direct)` : ratio(x);
  };
  printTable('\nheadline ratios (req/s)', ['ratio', 'value', 'paired', 'paired, interval of its median', 'target', 'needs mesh/direct', 'met'],
    targets.map((t) => [t.what, ratio(ratios[t.key]), ratio(pairedOf[t.key]), interval(t.key), `>= ${t.min}x`, needed(t),
      !Number.isFinite(ratios[t.key]) ? '-' : ratios[t.key] >= t.min ? 'yes' : 'NO']));
  out.write('paired, interval: where the median of the per-round ratios lies, at the coverage shown (order statistics: no\n' +
    'assumption about the shape of the noise). A target outside it is met or missed beyond the noise; inside it, undecided.\n' +
    'needs mesh/direct: the target against direct, with its baseline as measured in this run. Above 1x ("above direct"), no\n' +
    'mesh can meet it here: that baseline is too close to direct on this machine for the ratio the target asks.\n');
  const otherRatios = [
    ['iptables / direct, short', r('iptables', 'direct')],
    ['iptables_10k / direct, short', r('iptables_10k', 'direct')],
    ['haproxy / direct, short', r('haproxy', 'direct')],
    ['mesh / haproxy, keep-alive', r('mesh', 'haproxy', 'keepalive')],
  ] as const;
  printTable('\nbaselines (measured here with a bare connect4 rewrite: iptables 0.73x, 10k rules 0.2x, HAProxy 0.55x of direct)',
    ['ratio', 'value'], otherRatios.map(([what, x]) => [what, ratio(x)]));

  const perConn = telemetry.connections ? telemetry.records / telemetry.connections : NaN;
  if (Number.isFinite(perConn) && Math.abs(perConn - 2) > 0.01) {
    progress(`WARNING: ${perConn.toFixed(3)} records per VIP connection, expected 2 (client and server side)`);
  }
  const agentCores = telemetry.wallNs ? telemetry.cpuNs / telemetry.wallNs : NaN;
  out.write(`\ntelemetry (mesh runs): ${telemetry.records} records decoded and aggregated by the agent, ${telemetry.emitted} emitted by the kernel, ` +
    `${telemetry.dropped} dropped, ${decodeErrors} malformed; ${telemetry.connections} connections through the VIP = ` +
    `${Number.isFinite(perConn) ? perConn.toFixed(3) : '-'} records per connection (2 expected: wrk and nginx are both enrolled); ` +
    `agent process CPU ${(agentCores * 100).toFixed(1)}% of a core during mesh runs, /metrics on and scraped ${scrapes} times ` +
    `(client connections opened through the VIP: ${exposedOpened} exposed = ${edgeOpened} aggregated)` +
    `${telemetry.records ? ` (${((telemetry.cpuNs / telemetry.records) / 1000).toFixed(2)} us per record)` : ''}\n`);

  type N = number | null;
  const bpfReport: Record<string, { ns_per_request: N; cpu_share: N; programs: Record<string, { runs_per_request: N; ns_per_run: N }> }> = {};
  for (const [m, t] of programTotals) {
    const costs = [...t.costs.values()].filter((c) => c.runs > 0).sort((a, b) => b.ns - a.ns);
    const total = costs.reduce((a, c) => a + c.ns, 0);
    const cpus = os.cpus().length;
    printTable(`\nmesh programs in the kernel, ${m === 'short' ? 'short connections' : 'keep-alive'} (--bpf-stats; run time excludes the hook's own call overhead)`,
      ['program', 'runs/request', 'ns/run', 'ns/request', 'share'],
      [...costs.map((c) => [c.name, (c.runs / t.requests).toFixed(2), (c.ns / c.runs).toFixed(0), (c.ns / t.requests).toFixed(0), `${((c.ns / total) * 100).toFixed(0)}%`]),
        ['all', '', '', (total / t.requests).toFixed(0), `${((total / (t.wallNs * cpus)) * 100).toFixed(2)}% of ${cpus} CPUs`]]);
    bpfReport[m] = {
      ns_per_request: sig(total / t.requests),
      cpu_share: sig(total / (t.wallNs * cpus), 3),
      programs: Object.fromEntries(costs.map((c) => [c.name, { runs_per_request: sig(c.runs / t.requests, 3), ns_per_run: sig(c.ns / c.runs) }])),
    };
  }

  type Shares = { samples: number; mesh_share: N; mesh_ns_per_request: N; agent_share?: N; parts: Record<string, { share: N; ns_per_request: N }> };
  const profileReport: Record<string, { wrk_thread: Shares; machine: Shares }> = {};
  for (const p of profiles) {
    const pct = (n: number, of: Attribution): string => `${((n / of.samples) * 100).toFixed(2)}%`;
    const ns = (n: number): string => (n * p.nsPerRequestPerSample).toFixed(0);
    printTable(`\nwhere the mesh's cost lands, ${p.mode === 'short' ? 'short connections' : 'keep-alive'}: perf record -a -g during one more mesh run at ${si(p.rps)}/s ` +
      `(--profile; ${p.a.samples} samples of wrk's thread, ${p.machine.samples} busy samples of the machine).\n` +
      `wrk's thread bounds short-connection runs (it also runs both handshake sides in its softirqs): req/s loses about its share there.\n` +
      `With every CPU busy (keep-alive) the machine bounds them: the share of its busy time counts.`,
      ['part', "wrk's thread", 'ns/req', 'machine', 'ns/req', 'what'],
      [...p.a.byCategory.map((c, i) => [c.name, pct(c.samples, p.a), ns(c.samples), pct(p.machine.byCategory[i]!.samples, p.machine), ns(p.machine.byCategory[i]!.samples), c.what]),
        ['kernel path', pct(p.a.mesh, p.a), ns(p.a.mesh), pct(p.machine.mesh, p.machine), ns(p.machine.mesh), "all of the above: the mesh's programs and what they make the kernel do"],
        ['agent', '-', '-', pct(p.machine.agent, p.machine), ns(p.machine.agent), "the agent's threads: ring buffer, decoding, aggregation, /metrics"]]);
    const shares = (a: Attribution, agent: boolean): Shares => ({
      samples: a.samples,
      mesh_share: sig(a.mesh / a.samples, 3),
      mesh_ns_per_request: sig(a.mesh * p.nsPerRequestPerSample),
      ...(agent ? { agent_share: sig(a.agent / a.samples, 3) } : {}),
      parts: Object.fromEntries(a.byCategory.map((c) => [c.name, { share: sig(c.samples / a.samples, 3), ns_per_request: sig(c.samples * p.nsPerRequestPerSample) }])),
    });
    profileReport[p.mode] = { wrk_thread: shares(p.a, false), machine: shares(p.machine, true) };
  }

  if (opts.breakdown) {
    const signedUs = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(1)}` : '-');
    const chain: [string, VariantName, VariantName][] = [
      ['bare connect4 rewrite, no map, no state: rewrite_bare / direct', 'rewrite_bare', 'direct'],
      ['sockops callbacks, no per-socket state anywhere: callbacks_bare / rewrite_bare', 'callbacks_bare', 'rewrite_bare'],
      ["the mesh's connect4 (maps, verdict, the VIP's socket storage): connect4_only / rewrite_bare", 'connect4_only', 'rewrite_bare'],
      ['connect4 rewrite: connect4_only / direct', 'connect4_only', 'direct'],
      ['sockops callbacks enabled, nothing done in them: sockops_floor / connect4_only', 'sockops_floor', 'connect4_only'],
      ['socket storage on the accepted side too: sockops_storage / sockops_floor', 'sockops_storage', 'sockops_floor'],
      ["the mesh's sockops logic, no records: sockops_norec / sockops_storage", 'sockops_norec', 'sockops_storage'],
      ['records written to the ring (RTT callbacks off): mesh_paused_nortt / sockops_norec', 'mesh_paused_nortt', 'sockops_norec'],
      ['RTT callback per ACK: mesh_paused / mesh_paused_nortt', 'mesh_paused', 'mesh_paused_nortt'],
      ['agent consuming (reader + decode + aggregate): mesh / mesh_paused', 'mesh', 'mesh_paused'],
      ['all of it: mesh / direct', 'mesh', 'direct'],
      ['kernel side only: mesh_paused / direct', 'mesh_paused', 'direct'],
    ];
    for (const m of MODES.filter((x) => of('mesh_paused', x).length > 0 || of('connect4_only', x).length > 0)) {
      printTable(`\nwhere the mesh's ${m === 'short' ? 'short-connection' : 'keep-alive'} cost goes (req/s ratios; each step adds one thing)`,
        ['step', 'ratio', 'paired', 'CPU us/req added'],
        chain.map(([what, a, b]) => [what, ratio(r(a, b, m)), ratio(paired(a, b, m)), signedUs(usPerRequest(a, m) - usPerRequest(b, m))]));
    }
  }

  const variantRps = (m: Mode): Record<MainVariant, number | null> => {
    const o = {} as Record<MainVariant, number | null>;
    for (const v of MAIN_VARIANTS) o[v] = sig(rps(v, m));
    return o;
  };
  const latency = (m: Mode): Record<string, { p50_ms: number | null; p99_ms: number | null }> => {
    const o: Record<string, { p50_ms: number | null; p99_ms: number | null }> = {};
    for (const v of MAIN_VARIANTS) o[v] = { p50_ms: sig(med(v, m, (x) => x.wrk.p50Us) / 1000, 3), p99_ms: sig(med(v, m, (x) => x.wrk.p99Us) / 1000, 3) };
    return o;
  };
  const cpuPerRequest = (m: Mode): Record<MainVariant, number | null> => {
    const o = {} as Record<MainVariant, number | null>;
    for (const v of MAIN_VARIANTS) o[v] = sig(usPerRequest(v, m), 3);
    return o;
  };
  const met = Object.fromEntries(targets.map((t) => [t.key, Number.isFinite(ratios[t.key]) ? ratios[t.key] >= t.min : null]));
  const summary = {
    bench: 'service',
    short: variantRps('short'),
    keepalive: variantRps('keepalive'),
    ratios: Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, sig(v, 3)])),
    ratios_paired: Object.fromEntries(Object.entries(pairedOf).map(([k, v]) => [k, sig(v, 3)])),
    ratios_paired_interval: Object.fromEntries(Object.entries(intervals).map(([k, i]) => [k, { lo: sig(i.lo, 3), hi: sig(i.hi, 3), coverage: sig(i.coverage, 3) }])),
    telemetry: {
      records: telemetry.records,
      dropped: telemetry.dropped,
      emitted: telemetry.emitted,
      connections: telemetry.connections,
      records_per_connection: sig(perConn, 4),
      agent_cpu_cores: sig(agentCores, 3),
    },
    latency: { short: latency('short'), keepalive: latency('keepalive') },
    cpu_us_per_request: { short: cpuPerRequest('short'), keepalive: cpuPerRequest('keepalive') },
    ...(opts.breakdown ? {
      breakdown: {
        ...Object.fromEntries(BREAKDOWN_VARIANTS.map((v) => [`${v}_vs_direct`, sig(r(v, 'direct'), 3)])),
        cpu_us_per_request: Object.fromEntries((['direct', ...BREAKDOWN_VARIANTS, 'mesh'] as const).map((v) => [v, sig(usPerRequest(v, 'short'), 3)])),
      },
    } : {}),
    ...(opts.bpfStats ? { bpf: bpfReport } : {}),
    ...(opts.profile ? { profile: profileReport } : {}),
    targets_met: met,
    targets_need_vs_direct: Object.fromEntries(targets.map((t) => [t.key, Number.isFinite(needs(t)) ? sig(needs(t), 3) : null])),
    config: {
      rounds: opts.rounds, seconds: opts.seconds, connections: opts.connections, iptables: opts.iptables, rules: opts.rules,
      rtt_samples: opts.rttSamples, bpf_stats: opts.bpfStats, profile: opts.profile, git: revision() ?? null,
    },
    errors: runs.reduce((a, x) => a + errorCount(x.wrk), 0),
    seconds: sig((performance.now() - started) / 1000, 3),
  };
  out.write(`${JSON.stringify(summary)}\n`);
  return 0;
}

async function cleanup(): Promise<void> {
  try {
    await stopAll();
  } catch (err) {
    progress(`cleanup: ${(err as Error).message}`);
  }
  undo.runAll();
}

main().then(
  async (code) => {
    await cleanup();
    process.exitCode = code;
  },
  async (err: unknown) => {
    await cleanup();
    const usage = err instanceof UsageError || err instanceof MissingToolsError;
    progress(`failed: ${usage ? (err as Error).message : err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exitCode = usage ? 2 : 1;
  },
);
