/**
 * The mesh programs in the kernel, owned through pins under one bpffs
 * directory per agent instance:
 *   <dir>/maps/<name>   every map (state survives the agent)
 *   <dir>/links/<name>  every attachment (traffic keeps flowing while the
 *                       agent is down or restarting)
 * open() adopts what is pinned - same maps, same links - and swaps in freshly
 * loaded programs with bpf_link_update, so a restart or an upgrade never
 * leaves a hook empty. uninstall() removes everything it made.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap, BpfObjectSpec, Collection, Link, objectPath, native } from '../bpf';
import { MeshVerdictKey } from '../bpf/layouts/mesh';
import { cgroup2Root } from '../platform/cgroup';

export const MESH_MAPS = ['services', 'slots', 'svc_verdicts', 'udp_rev', 'events', 'counters', 'sock_info'] as const;
export type MeshMapName = (typeof MESH_MAPS)[number];

/** Program, pin name, attach type (native constants name). */
export const MESH_HOOKS = [
  ['mesh_connect4', 'connect4', 'CGROUP_INET4_CONNECT'],
  ['mesh_connect6', 'connect6', 'CGROUP_INET6_CONNECT'],
  ['mesh_sendmsg4', 'sendmsg4', 'CGROUP_UDP4_SENDMSG'],
  ['mesh_sendmsg6', 'sendmsg6', 'CGROUP_UDP6_SENDMSG'],
  ['mesh_recvmsg4', 'recvmsg4', 'CGROUP_UDP4_RECVMSG'],
  ['mesh_recvmsg6', 'recvmsg6', 'CGROUP_UDP6_RECVMSG'],
  ['mesh_getpeername4', 'getpeername4', 'CGROUP_INET4_GETPEERNAME'],
  ['mesh_getpeername6', 'getpeername6', 'CGROUP_INET6_GETPEERNAME'],
  ['mesh_sockops', 'sockops', 'CGROUP_SOCK_OPS'],
] as const;

export interface DataplaneOptions {
  /** bpffs directory of this agent instance, e.g. /sys/fs/bpf/sockmesh/default */
  bpffsDir: string;
  /** Absolute cgroup v2 directory whose sockets the mesh serves (never the root). */
  cgroupPath: string;
  reportIntervalMs: number;
  /** A sockops callback per RTT sample (exact SRTT min/max); default true. Applies to connections established from now on. */
  trackRtt?: boolean;
  /** Ring buffer bytes (power of two, >= 4096); only used on a fresh install. */
  ringBytes?: number;
  /** Log of what open() did, for the agent's structured log. */
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export type OpenOutcome = { kind: 'installed' } | { kind: 'adopted'; upgradedPrograms: number };

export class Dataplane {
  private constructor(
    readonly opts: DataplaneOptions,
    readonly maps: Readonly<Record<MeshMapName, BpfMap>>,
    readonly links: ReadonlyMap<string, Link>,
    readonly outcome: OpenOutcome,
    /** Iterator over open connections' socket storage; not pinned, made per agent. */
    private readonly reporter: Link,
  ) {}

  static pinned(bpffsDir: string): boolean {
    return fs.existsSync(path.join(bpffsDir, 'links')) || fs.existsSync(path.join(bpffsDir, 'maps'));
  }

  /** Installs, or adopts what an earlier agent pinned. */
  static open(opts: DataplaneOptions): Dataplane {
    const root = cgroup2Root();
    if (!root) throw new Error('no cgroup v2 mount: sockmesh needs cgroup v2 (see `sockmesh doctor`)');
    if (path.resolve(opts.cgroupPath) === path.resolve(root)) {
      throw new Error(`refusing to attach to the cgroup v2 root ${root}: give the cgroup that holds the mesh's workloads`);
    }
    if (!fs.existsSync(opts.cgroupPath)) throw new Error(`cgroup ${opts.cgroupPath} does not exist: create it or fix agent.cgroupRoot`);
    return Dataplane.pinned(opts.bpffsDir) ? Dataplane.adopt(opts) : Dataplane.install(opts);
  }

  private static spec(opts: DataplaneOptions): BpfObjectSpec {
    return BpfObjectSpec.open(objectPath('mesh')).setConstants({
      report_interval_ns: BigInt(opts.reportIntervalMs) * 1_000_000n,
      rb_flags: BigInt(native().constants.ringbufFlag.NO_WAKEUP),
      track_rtt: opts.trackRtt === false ? 0 : 1,
    });
  }

  private static install(opts: DataplaneOptions): Dataplane {
    const spec = Dataplane.spec(opts);
    if (opts.ringBytes) spec.setMaxEntries('events', opts.ringBytes);
    const coll = spec.load();
    const made: (() => void)[] = [];
    try {
      fs.mkdirSync(path.join(opts.bpffsDir, 'maps'), { recursive: true });
      fs.mkdirSync(path.join(opts.bpffsDir, 'links'), { recursive: true });
      made.push(() => fs.rmSync(opts.bpffsDir, { recursive: true, force: true }));
      const maps = {} as Record<MeshMapName, BpfMap>;
      for (const name of MESH_MAPS) {
        const m = coll.map(name);
        m.pin(path.join(opts.bpffsDir, 'maps', name));
        made.push(() => m.unpin());
        maps[name] = m;
      }
      const links = new Map<string, Link>();
      const A = native().constants.attachType;
      for (const [prog, pin, type] of MESH_HOOKS) {
        const link = coll.program(prog).attachCgroup(opts.cgroupPath, A[type]);
        made.push(() => link.detach());
        link.pin(path.join(opts.bpffsDir, 'links', pin));
        links.set(pin, link);
      }
      const reporter = coll.program('mesh_report_open').attachIterator(maps.sock_info);
      for (const p of coll.programs) p.close(); // links hold them
      opts.log?.('dataplane installed', { bpffsDir: opts.bpffsDir, cgroup: opts.cgroupPath });
      return new Dataplane(opts, maps, links, { kind: 'installed' }, reporter);
    } catch (err) {
      for (const undo of made.reverse()) {
        try { undo(); } catch { /* keep undoing */ }
      }
      coll.close();
      throw err;
    }
  }

  private static adopt(opts: DataplaneOptions): Dataplane {
    const dir = opts.bpffsDir;
    const missing = [
      ...MESH_MAPS.filter((m) => !fs.existsSync(path.join(dir, 'maps', m))).map((m) => `maps/${m}`),
      ...MESH_HOOKS.filter(([, pin]) => !fs.existsSync(path.join(dir, 'links', pin))).map(([, pin]) => `links/${pin}`),
    ];
    if (missing.length) {
      throw new Error(`partial state under ${dir} (missing ${missing.join(', ')}): run \`sockmesh agent --uninstall\` and start again`);
    }
    const maps = {} as Record<MeshMapName, BpfMap>;
    for (const name of MESH_MAPS) maps[name] = BpfMap.fromPin(path.join(dir, 'maps', name));
    const links = new Map<string, Link>();
    for (const [, pin] of MESH_HOOKS) links.set(pin, Link.fromPin(path.join(dir, 'links', pin)));
    // New programs over the adopted maps, swapped in link by link.
    const spec = Dataplane.spec(opts);
    for (const name of MESH_MAPS) spec.reuseMap(name, maps[name]);
    let coll: Collection | undefined;
    let reporter: Link;
    try {
      coll = spec.load();
      for (const [prog, pin] of MESH_HOOKS) links.get(pin)!.update(coll.program(prog));
      reporter = coll.program('mesh_report_open').attachIterator(maps.sock_info);
    } finally {
      coll?.close();
    }
    opts.log?.('dataplane adopted', { bpffsDir: dir, programs: MESH_HOOKS.length });
    return new Dataplane(opts, maps, links, { kind: 'adopted', upgradedPrograms: MESH_HOOKS.length }, reporter);
  }

  /**
   * Has the kernel report every open connection whose last report is older
   * than the report interval (interim records on the ring buffer).
   */
  reportOpenConnections(): void {
    this.reporter.runIterator();
  }

  /** One of the kernel's per-CPU `counters` (MeshCounter), summed over CPUs. */
  counter(idx: number): number {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(idx);
    return (this.maps.counters.lookupPerCpu(key) ?? []).reduce((a, b) => a + Number(b.readBigUInt64LE(0)), 0);
  }

  /** Connect-time verdict counts (MeshVerdict) per service id, summed over CPUs. */
  verdicts(): { svc: number; verdict: number; count: number }[] {
    const out: { svc: number; verdict: number; count: number }[] = [];
    for (const { key, value } of this.maps.svc_verdicts.entries()) {
      const k = MeshVerdictKey.decode(key, 0);
      let count = 0;
      for (let off = 0; off + 8 <= value.length; off += 8) count += Number(value.readBigUInt64LE(off));
      out.push({ svc: k.svc, verdict: k.verdict, count });
    }
    return out;
  }

  /** Closes our fds; everything pinned stays attached and running. Idempotent. */
  close(): void {
    this.reporter.close();
    for (const l of this.links.values()) l.close();
    for (const m of Object.values(this.maps)) m.close();
  }

  /** Detaches every program and removes every pin this instance made. */
  uninstall(): void {
    this.reporter.close();
    for (const l of this.links.values()) {
      if (!l.closed) l.detach();
    }
    for (const m of Object.values(this.maps)) {
      m.unpin();
      m.close();
    }
    fs.rmSync(this.opts.bpffsDir, { recursive: true, force: true });
    removeIfEmpty(path.dirname(this.opts.bpffsDir));
  }

  /** Uninstalls from pins alone (no running agent needed). Returns what it removed. */
  static uninstallPinned(bpffsDir: string): string[] {
    const removed: string[] = [];
    const linksDir = path.join(bpffsDir, 'links');
    for (const name of fs.existsSync(linksDir) ? fs.readdirSync(linksDir) : []) {
      const l = Link.fromPin(path.join(linksDir, name));
      l.detach();
      removed.push(`links/${name}`);
    }
    const mapsDir = path.join(bpffsDir, 'maps');
    for (const name of fs.existsSync(mapsDir) ? fs.readdirSync(mapsDir) : []) removed.push(`maps/${name}`);
    fs.rmSync(bpffsDir, { recursive: true, force: true });
    removeIfEmpty(path.dirname(bpffsDir));
    return removed;
  }
}

/** The shared parent (/sys/fs/bpf/sockmesh) goes with its last instance. */
function removeIfEmpty(dir: string): void {
  try {
    if (fs.readdirSync(dir).length === 0 && dir !== '/sys/fs/bpf') fs.rmdirSync(dir);
  } catch { /* not ours to worry about */ }
}
