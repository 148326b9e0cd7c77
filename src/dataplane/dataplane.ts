/**
 * The mesh programs in the kernel, owned through pins under one bpffs
 * directory per agent instance:
 *   <dir>/maps/<name>   every map (state survives the agent)
 *   <dir>/links/<name>  every attachment (traffic keeps flowing while the
 *                       agent is down or restarting)
 * open() adopts what is pinned - same links, and every map whose definition
 * has not changed - and swaps in freshly loaded programs with
 * bpf_link_update, so a restart or an upgrade never leaves a hook empty. Maps
 * an upgrade (or a changed size) redefines are replaced as ./upgrade.ts plans,
 * filled before any hook switches to them. uninstall() removes everything it
 * made.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap, BpfObjectSpec, Collection, Link, mapTypeName, objectPath, native, Program, programCosts } from '../bpf';
import type { ProgramCost } from '../bpf';
import { MeshConnEvent, MeshCounter, MeshVerdictKey } from '../bpf/layouts/mesh';
import { REPLACING_SUFFIX } from '../bpf/pins';
import { cgroup2Root } from '../platform/cgroup';
import type { TableRoom } from './capacity';
import { DataplaneError } from './errors';
import { copyEntries, CopyResult, definitionOf, MapDefinition, MapStep, planMaps, SocketStorageMigration } from './upgrade';
import type { MeshMaps } from './writer';

/** Report runs per reportOpenConnections() at most: more are needed only while close records keep filling the ring. */
const MAX_REPORT_RUNS = 64;

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
  /** Ring buffer bytes (power of two, >= 4096). A change replaces the pinned ring (the old one is drained). */
  ringBytes?: number;
  /**
   * Records go to the ring without waking its reader, which drains on a
   * timer; once this many bytes wait, the programs wake it anyway, so a burst
   * cannot fill the ring between two drains. Default: a quarter of the ring.
   */
  wakeBytes?: number;
  /**
   * Writes the mesh file's services into new services/slots maps, when an
   * upgrade replaces them with maps that cannot be copied. Without it such an
   * upgrade is refused and the running programs stay.
   */
  populate?: (maps: MeshMaps) => void;
  /** The mesh object to load; default the built bpf/.output/mesh.bpf.o (tests load an older version's). */
  object?: string;
  /** Log of what open() did, for the agent's structured log. */
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** A replaced map: how its contents were carried over. */
export interface ReplacedMap extends MapStep {
  /** copy: entries carried over and those the new map could not hold */
  copy?: CopyResult;
  /** migrate: open connections whose state was converted */
  migrated?: number;
}

export type OpenOutcome =
  | { kind: 'installed' }
  | {
      kind: 'adopted';
      upgradedPrograms: number;
      /** Maps not adopted as pinned (empty on a plain restart). */
      replacedMaps: ReplacedMap[];
      /** Pins of maps and hooks this version no longer has, removed. */
      removed: string[];
      /** Hooks that had no pinned link (a new hook, or an install cut short), attached now. */
      attached: string[];
      /** Hooks moved from another cgroup (cgroupRoot changed): attached here first, then detached there. */
      moved: string[];
    };

export class Dataplane {
  private constructor(
    readonly opts: DataplaneOptions,
    readonly maps: Readonly<Record<MeshMapName, BpfMap>>,
    readonly links: ReadonlyMap<string, Link>,
    readonly outcome: OpenOutcome,
    /** Iterator over open connections' socket storage; not pinned, made per agent. */
    private readonly reporter: Link,
    /** The ring an upgrade replaced, still holding records the old programs wrote. */
    private retired?: BpfMap,
  ) {}

  /** The sizes of the service and slot tables this build installs (read from the object, nothing loaded). */
  static tableRoom(object = objectPath('mesh')): TableRoom {
    const spec = BpfObjectSpec.open(object);
    try {
      const size = (name: string): number => spec.mapDefinitions().find((m) => m.name === name)!.maxEntries;
      return { frontends: size('services'), slots: size('slots') };
    } finally {
      spec.close();
    }
  }

  static pinned(bpffsDir: string): boolean {
    return fs.existsSync(path.join(bpffsDir, 'links')) || fs.existsSync(path.join(bpffsDir, 'maps'));
  }

  /** Installs, or adopts what an earlier agent pinned. */
  static open(opts: DataplaneOptions): Dataplane {
    const root = cgroup2Root();
    if (!root) throw new DataplaneError('ENOCGROUP2', 'no cgroup v2 mount: sockmesh needs cgroup v2 (see `sockmesh doctor`)');
    if (path.resolve(opts.cgroupPath) === path.resolve(root)) {
      throw new DataplaneError('EROOTCGROUP', `refusing to attach to the cgroup v2 root ${root}: give the cgroup that holds the mesh's workloads`);
    }
    if (!fs.existsSync(opts.cgroupPath)) throw new DataplaneError('ENOCGROUP', `cgroup ${opts.cgroupPath} does not exist: create it or fix agent.cgroupRoot`);
    return Dataplane.pinned(opts.bpffsDir) ? Dataplane.adopt(opts) : Dataplane.install(opts);
  }

  private static spec(opts: DataplaneOptions): BpfObjectSpec {
    const spec = BpfObjectSpec.open(opts.object ?? objectPath('mesh'));
    if (opts.ringBytes) spec.setMaxEntries('events', opts.ringBytes);
    const ringBytes = spec.mapDefinitions().find((m) => m.name === 'events')!.maxEntries;
    return spec.setConstants({
      report_interval_ns: BigInt(opts.reportIntervalMs) * 1_000_000n,
      rb_flags: BigInt(native().constants.ringbufFlag.NO_WAKEUP),
      wake_bytes: BigInt(opts.wakeBytes ?? ringBytes / 4),
      track_rtt: opts.trackRtt === false ? 0 : 1,
    });
  }

  private static install(opts: DataplaneOptions): Dataplane {
    const spec = Dataplane.spec(opts);
    const coll = spec.load();
    const made: (() => void)[] = [];
    const links = new Map<string, Link>();
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
      made.push(() => links.forEach((l) => l.detach()));
      Dataplane.swapHooks(coll, opts, links, []); // nothing pinned: every hook attached and pinned
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
    const spec = Dataplane.spec(opts);
    const wanted = new Map<string, MapDefinition>();
    for (const m of spec.mapDefinitions()) if ((MESH_MAPS as readonly string[]).includes(m.name)) wanted.set(m.name, definitionOf(m));
    const old = new Map<string, BpfMap>();
    for (const name of pinNames(path.join(dir, 'maps'))) old.set(name, BpfMap.fromPin(path.join(dir, 'maps', name)));
    const plan = planMaps(wanted, new Map([...old].map(([n, m]) => [n, definitionOf(m.info)])), mapTypeName);
    const step = new Map(plan.steps.map((s) => [s.name, s]));
    const closeOld = (keep: (name: string) => boolean = () => false): void => {
      for (const [name, m] of old) if (!keep(name)) m.close();
    };
    const rebuilt = plan.steps.filter((s) => s.action === 'rebuild');
    if (rebuilt.length && !opts.populate) {
      closeOld();
      spec.close();
      throw new DataplaneError('EUPGRADE', `upgrading ${dir} rebuilds ${rebuilt.map((s) => `${s.name} (${s.reason})`).join(', ')} from the mesh file, ` +
        'and there is no valid mesh file: the running programs are unchanged; fix the mesh file and start the agent again');
    }
    for (const s of plan.steps) if (s.action === 'adopt') spec.reuseMap(s.name, old.get(s.name)!);

    let coll: Collection | undefined;
    const maps = {} as Record<MeshMapName, BpfMap>;
    const links = new Map<string, Link>();
    const leaving: Link[] = [];
    const migrations: [ReplacedMap, SocketStorageMigration][] = [];
    try {
      coll = spec.load();
      for (const name of MESH_MAPS) maps[name] = step.get(name)!.action === 'adopt' ? old.get(name)! : coll.map(name);
      // Every replacement is filled before any hook runs a program that uses it.
      const replaced: ReplacedMap[] = [];
      for (const s of plan.steps) {
        if (s.action === 'adopt') continue;
        replaced.push(s.action === 'copy' ? { ...s, copy: copyEntries(old.get(s.name)!, maps[s.name as MeshMapName]) } : { ...s });
      }
      if (rebuilt.length) opts.populate!({ services: maps.services, slots: maps.slots });
      // Socket-state migrations pass the verifier now, while nothing has changed yet.
      for (const r of replaced) {
        if (r.action === 'migrate') migrations.push([r, SocketStorageMigration.prepare(old.get(r.name)!, maps[r.name as MeshMapName], r.name, r.via!)]);
      }

      const { attached, moved } = Dataplane.swapHooks(coll, opts, links, leaving);
      for (const l of leaving) l.detach();
      // Socket state converts now that no old program changes it; sockets the
      // new programs met in between (new ones) keep what those wrote.
      for (const [r, m] of migrations) r.migrated = m.run();
      // Now no program uses a replaced map: re-point the pins, drop the stale ones.
      for (const s of replaced) maps[s.name as MeshMapName].pinReplacing(path.join(dir, 'maps', s.name));
      const removed = Dataplane.removeStalePins(dir, plan.stale);
      const reporter = coll.program('mesh_report_open').attachIterator(maps.sock_info);
      for (const p of coll.programs) p.close(); // links hold them
      for (const s of plan.steps) if (s.action === 'adopt') coll.map(s.name).close(); // a second fd of an adopted map
      const retired = step.get('events')!.action === 'drain' ? old.get('events') : undefined;
      closeOld((name) => step.get(name)?.action === 'adopt' || (name === 'events' && retired !== undefined));
      for (const s of replaced) opts.log?.('map replaced', { map: s.name, action: s.action, reason: s.reason, ...s.copy, ...(s.migrated !== undefined ? { migrated: s.migrated } : {}) });
      opts.log?.('dataplane adopted', { bpffsDir: dir, programs: MESH_HOOKS.length, replacedMaps: replaced.length, removed, attached, moved });
      return new Dataplane(opts, maps, links, { kind: 'adopted', upgradedPrograms: MESH_HOOKS.length, replacedMaps: replaced, removed, attached, moved },
        reporter, retired);
    } catch (err) {
      // Pins still name the old maps: the next start plans the same upgrade again.
      coll?.close();
      closeOld();
      for (const l of [...links.values(), ...leaving]) l.close();
      throw err;
    } finally {
      for (const [, m] of migrations) m.close();
    }
  }

  /**
   * Moves every hook to the new programs, each in one step: bpf_link_update
   * where a link is pinned on our cgroup; where it sits on another cgroup
   * (cgroupRoot changed), a new link here whose pin replaces it, the old one
   * left in `leaving` for the caller to detach once all hooks are here; a
   * hook with no pin (new in this version, or a fresh install) attached and
   * pinned. `links` holds every hook's link as it goes, for the caller's undo.
   */
  private static swapHooks(coll: Collection, opts: DataplaneOptions, links: Map<string, Link>, leaving: Link[]):
    { attached: string[]; moved: string[] } {
    const A = native().constants.attachType;
    const attached: string[] = [];
    const moved: string[] = [];
    const cgroupId = BigInt(fs.statSync(opts.cgroupPath).ino); // a cgroup v2 id is its directory's inode
    for (const [prog, pin, type] of MESH_HOOKS) {
      const at = path.join(opts.bpffsDir, 'links', pin);
      if (!fs.existsSync(at)) {
        fs.mkdirSync(path.dirname(at), { recursive: true });
        const link = coll.program(prog).attachCgroup(opts.cgroupPath, A[type]);
        links.set(pin, link);
        link.pin(at);
        attached.push(pin);
        continue;
      }
      const link = Link.fromPin(at);
      links.set(pin, link);
      const on = link.info().cgroupId;
      if (on === undefined || on === cgroupId) {
        link.update(coll.program(prog));
        continue;
      }
      // Both attached for a moment (a socket below both runs both; the
      // second finds no VIP left to rewrite), never neither.
      const fresh = coll.program(prog).attachCgroup(opts.cgroupPath, A[type]);
      links.set(pin, fresh);
      leaving.push(link);
      fresh.pinReplacing(link);
      moved.push(pin);
    }
    return { attached, moved };
  }

  /** Removes pins of maps and hooks this version does not have; returns them. */
  private static removeStalePins(dir: string, staleMaps: string[]): string[] {
    const removed: string[] = [];
    for (const name of staleMaps) {
      fs.rmSync(path.join(dir, 'maps', name), { force: true });
      removed.push(`maps/${name}`);
    }
    const hooks = new Set<string>(MESH_HOOKS.map(([, pin]) => pin));
    for (const pin of pinNames(path.join(dir, 'links')).filter((p) => !hooks.has(p))) {
      Link.fromPin(path.join(dir, 'links', pin)).detach();
      removed.push(`links/${pin}`);
    }
    return removed;
  }

  /**
   * The ring an upgrade replaced, if any, handed to the caller to read what
   * the old programs left in it (and close). Once.
   */
  takeRetiredRing(): BpfMap | undefined {
    const r = this.retired;
    this.retired = undefined;
    return r;
  }

  /**
   * Has the kernel report every open connection whose last report is older
   * than the report interval (interim records on the ring buffer). Returns
   * how many tracked connections are open: each run counts them.
   *
   * A busy node has more open connections than the ring holds. A run is
   * read in parts of half a ring of records and, with `drain` (the ring's
   * reader, on this thread), drained after each, so it never fills the ring. A run
   * also stops writing at 3/4 of the ring (close records from sockops fill
   * it too) and leaves the rest due: then, with `drain`, it is made again
   * while each run leaves less than the one before, at most MAX_REPORT_RUNS;
   * without, what is left waits for the next call. `reportRuns` says how
   * many runs the last call made.
   */
  reportOpenConnections(drain?: () => void): number {
    const zero = Buffer.alloc(this.maps.counters.valueBytes);
    let open = 0;
    let left = Infinity;
    for (let run = 0; run < MAX_REPORT_RUNS; run++) {
      this.maps.counters.update(counterKey(MeshCounter.OPEN), zero);
      this.maps.counters.update(counterKey(MeshCounter.REPORTS_DEFERRED), zero);
      this.reportRuns = run + 1;
      this.walkReports(drain);
      open = this.counter(MeshCounter.OPEN);
      const deferred = this.counter(MeshCounter.REPORTS_DEFERRED);
      if (deferred === 0 || !drain || deferred >= left) break;
      left = deferred;
      drain();
    }
    return open;
  }

  /** Runs made by the last reportOpenConnections(). */
  reportRuns = 0;

  /** One run of the report iterator, read in parts of half a ring of records (the program writes a byte per record), drained after each. */
  private walkReports(drain: (() => void) | undefined): void {
    // A record's footprint in the ring: its 8-byte header and the record, 8-byte aligned (MESH_REC_FOOTPRINT).
    const footprint = Math.ceil((MeshConnEvent.size + 8) / 8) * 8;
    const part = Math.max(1, Math.min(16_384, Math.floor(this.maps.events.info.maxEntries / 2 / footprint)));
    const walk = this.reporter.walkIterator();
    try {
      while (walk.read(part) > 0) drain?.();
    } finally {
      walk.close();
    }
  }

  /** One of the kernel's per-CPU `counters` (MeshCounter), summed over CPUs. */
  counter(idx: number): number {
    return (this.maps.counters.lookupPerCpu(counterKey(idx)) ?? []).reduce((a, b) => a + Number(b.readBigUInt64LE(0)), 0);
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

  /**
   * Each hook's program (and the report run's, as `report`): runs and run
   * time so far as the kernel counts them - only while BPF run-time stats are
   * on (RunTimeStats), zeros otherwise. Since the program was loaded: an
   * agent start swaps in new programs, so these restart from zero with it.
   */
  programCosts(): ProgramCost[] {
    const hooks: [string, Link][] = [...this.links, ['report', this.reporter]];
    const out: ProgramCost[] = [];
    for (const [name, link] of hooks) {
      const id = link.closed ? undefined : link.info().progId;
      if (id === undefined) continue;
      const p = Program.fromId(id);
      try {
        out.push({ ...programCosts([p])[0]!, name });
      } finally {
        p.close();
      }
    }
    return out;
  }

  /** Closes our fds; everything pinned stays attached and running. Idempotent. */
  close(): void {
    this.retired?.close();
    this.reporter.close();
    for (const l of this.links.values()) l.close();
    for (const m of Object.values(this.maps)) m.close();
  }

  /** Detaches every program and removes every pin this instance made. */
  uninstall(): void {
    this.retired?.close();
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

function counterKey(idx: number): Buffer {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(idx);
  return key;
}

/** Names pinned in dir (none if it does not exist); a replacement cut short is removed. */
function pinNames(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const names = fs.readdirSync(dir);
  for (const n of names.filter((x) => x.endsWith(REPLACING_SUFFIX))) fs.rmSync(path.join(dir, n), { force: true });
  return names.filter((x) => !x.endsWith(REPLACING_SUFFIX)).sort();
}

/** The shared parent (/sys/fs/bpf/sockmesh) goes with its last instance. */
function removeIfEmpty(dir: string): void {
  try {
    if (fs.readdirSync(dir).length === 0 && dir !== '/sys/fs/bpf') fs.rmdirSync(dir);
  } catch { /* not ours to worry about */ }
}
