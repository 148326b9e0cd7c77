/**
 * The node agent: one Dataplane, the mesh file applied to it, the telemetry
 * pipeline (ring buffer -> decode -> aggregate -> exporters) and the views the
 * local API serves. start() and stop() are idempotent; signals are handled by
 * the CLI command (src/cli/commands/agent.ts), in one place.
 *
 * State lives in the kernel, pinned: stop() closes our handles and leaves the
 * programs attached and the maps intact, so traffic through VIPs keeps flowing
 * while the agent is down and the next start() adopts it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BpfError, RunTimeStats } from '../bpf';
import type { BpfMap } from '../bpf';
import { MappedRingReader } from '../bpf/mapped-ring';
import { MeshCounter, MESH_VERDICT_NAMES } from '../bpf/layouts/mesh';
import { ConfigError } from '../config/errors';
import type { AgentSettings, MeshConfig } from '../config/model';
import { SETTINGS } from '../config/settings';
import { MonotonicClock } from '../telemetry/clock';
import { serviceKey } from '../config/model';
import { Dataplane, OpenOutcome } from '../dataplane/dataplane';
import { refusingPorts, type DesiredService } from '../dataplane/desired';
import { applyDesired, ApplyReport, MeshMaps } from '../dataplane/writer';
import { cgroup2Root } from '../platform/cgroup';
import type { WorkloadCgroups } from '../platform/workload-cgroups';
import { Aggregator, Edge, EdgeLabels } from '../telemetry/aggregator';
import { Directory, type WorkloadName } from '../telemetry/directory';
import { ConnectionRecord, decodeRecord, RecordDecodeError } from '../telemetry/record';
import { VERSION } from '../version';
import { compile } from './compile';
import { InstanceLock, LockHolder } from './instance-lock';
import { LoadedMesh, loadMeshOffThread } from './load-mesh';
import type { Logger } from './log';
import type { AgentStatus, AgentView, BackendView, ConnectionFilter, NamedRecord, ServiceView } from './view';

export interface AgentOptions {
  settings: AgentSettings;
  meshFile: string;
  log: Logger;
  /** Watch the mesh file and reload on change (SIGHUP always reloads). Default true. */
  watch?: boolean;
  /** How long start() waits for another agent of the instance to exit. Default LOCK_WAIT_MS. */
  lockWaitMs?: number;
  /**
   * The mesh file as the caller already read it (the CLI parses it for its
   * agent settings): the first start() applies it instead of parsing the
   * file again - seconds for a big mesh, while the ring is not drained yet.
   */
  initialMesh?: LoadedMesh;
  /**
   * The mesh file's agent: section as the agent started with it (the CLI
   * reads it even when the rest of the file is invalid); default: that of
   * the first mesh applied. A reload that changes it applies the mesh but
   * not the settings, and says so.
   */
  fileSettings?: Partial<AgentSettings>;
}

/**
 * Long enough for an agent that was just stopped or killed to be gone; short
 * enough that an operator who started a second agent by mistake hears at once.
 */
export const LOCK_WAIT_MS = 3000;

/** What start() and reload() can end in, as data rather than exceptions. */
export type ApplyOutcome =
  | { kind: 'applied'; report: ApplyReport }
  | { kind: 'rejected'; errors: string[] };

type Follower = { filter: ConnectionFilter; fn: (rec: NamedRecord) => void };

export class Agent implements AgentView {
  private dp: Dataplane | undefined;
  private reader: MappedRingReader | undefined;
  /** Held while the agent runs with bpfStats on: the kernel counts while it is open. */
  private runStats: RunTimeStats | undefined;
  private lock: InstanceLock | undefined;
  private runStatsSince = '';
  /** When the current ring drain started: the last-seen time of what it reads. */
  private drainNowMs = 0;
  private watcher: fs.FSWatcher | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private expireTimer: NodeJS.Timeout | undefined;
  private config: MeshConfig | undefined;
  private desired: DesiredService[] = [];
  private directory = new Directory();
  /** The applied directory's workload subtrees, followed as cgroups come and go. */
  private cgroups: WorkloadCgroups<WorkloadName> | undefined;
  readonly aggregator = new Aggregator(this.directory);
  private readonly followers = new Set<Follower>();
  private decodeErrors = 0;
  /** Tracked connections open at the kernel's last report run. */
  private openCount = 0;
  private appliedAt: string | undefined;
  private rejected: { at: string; errors: string[] } | undefined;
  private configWarnings: string[] = [];
  private startedAt = new Date().toISOString();
  private starting: Promise<void> | undefined;
  private reloads: Promise<unknown> = Promise.resolve();
  private initialMesh: LoadedMesh | undefined;
  private startFileSettings: Partial<AgentSettings> | undefined;
  private readonly clock = new MonotonicClock();
  private clockSyncedAt = Date.now();
  /** Extra stop steps registered by add-ons (exporters, servers), run in reverse. */
  private readonly onStop: (() => Promise<void> | void)[] = [];
  otlpStats: (() => { endpoint: string; exported: number; failed: number; dropped: number }) | undefined;

  constructor(readonly opts: AgentOptions) {
    this.initialMesh = opts.initialMesh;
    this.startFileSettings = opts.fileSettings ?? opts.initialMesh?.config.agent;
    // The edge already carries the record's names: no second lookup per follower.
    this.aggregator.onRecord((rec, edge) => {
      if (this.followers.size === 0) return;
      const time = this.timeOf(rec);
      for (const f of this.followers) if (labelsMatch(edge.labels, f.filter)) f.fn({ ...rec, labels: edge.labels, time });
    });
  }

  get settings(): AgentSettings {
    return this.opts.settings;
  }

  get dataplane(): Dataplane {
    if (!this.dp) throw new Error('agent not started');
    return this.dp;
  }

  get ready(): { ready: boolean; reason?: string } {
    if (!this.dp) return { ready: false, reason: 'dataplane not attached' };
    if (!this.appliedAt) return { ready: false, reason: 'no valid configuration applied yet' };
    return { ready: true };
  }

  /** Idempotent: a second call waits for the first. */
  start(): Promise<void> {
    this.starting ??= this.doStart().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const { settings, log } = this.opts;
    const mount = cgroup2Root();
    if (!mount) throw new Error('no cgroup v2 mount found: run `sockmesh doctor`');
    // Before anything else: a second agent of the instance must not touch its pins at all.
    this.lock = await InstanceLock.acquire(settings.bpffsDir, this.lockHolder(), {
      waitMs: this.opts.lockWaitMs ?? LOCK_WAIT_MS,
      onWait: (holder) => log.warn('instance in use by another agent; waiting for it to exit', { bpffsDir: settings.bpffsDir, holder }),
    });
    try {
      // Validate first: a fresh install with a bad file must not touch the kernel.
      const initial = this.initialMesh;
      this.initialMesh = undefined;
      const first = initial ? { kind: 'loaded' as const, mesh: initial } : await this.load();
      if (first.kind === 'rejected' && !Dataplane.pinned(settings.bpffsDir)) throw first.error;
      // Before the dataplane, so a refusal changes nothing in the kernel.
      if (settings.bpfStats === 'on') {
        this.runStats = enableRunTimeStats();
        this.runStatsSince = new Date().toISOString();
      }
      this.attach(first, mount);
    } catch (err) {
      // Nothing half-started: a fresh install goes whole, adopted state keeps serving.
      await this.shutdown({ uninstallFresh: true });
      throw err;
    }
  }

  /** What this agent answers a second one that finds the instance taken. */
  private lockHolder(): LockHolder {
    return { pid: process.pid, instance: this.settings.instance, version: VERSION, startedAt: this.startedAt, apiSocket: this.settings.apiSocket };
  }

  /** Opens (installs or adopts) the dataplane, applies the loaded config, starts reading and reporting. */
  private attach(first: Awaited<ReturnType<Agent['load']>>, mount: string): void {
    const { settings, log } = this.opts;
    const t0 = Date.now();
    this.dp = Dataplane.open({
      bpffsDir: settings.bpffsDir,
      cgroupPath: path.join(mount, settings.cgroupRoot),
      reportIntervalMs: settings.reportIntervalMs,
      trackRtt: settings.rttSamples === 'all',
      ringBytes: settings.ringBytes,
      // An upgrade that replaces services/slots with maps it cannot copy
      // writes them from the mesh file before any hook uses them.
      ...(first.kind === 'loaded' ? { populate: (maps: MeshMaps) => applyDesired(maps, first.mesh.desired) } : {}),
      log: (msg, fields) => log.info(msg, fields),
    });
    log.info('dataplane ready', { outcome: this.dp.outcome.kind, cgroup: settings.cgroupRoot, bpffsDir: settings.bpffsDir, ms: Date.now() - t0 });
    if (first.kind === 'rejected') {
      log.error('configuration rejected; running state kept', { file: this.opts.meshFile, errors: first.errors });
    } else {
      try {
        this.applyLoaded(first.mesh);
      } catch (err) {
        // A fresh install has no running state to keep: start fails and is rolled back.
        if (this.dp.outcome.kind === 'installed') throw err;
        this.notApplied('start', err);
      }
    }

    // Zero-copy: a connection record is 176 bytes, and reading it in place
    // beats copying it out (bench/ringbuf: 1.6x at 128-byte records). The
    // programs submit with BPF_RB_NO_WAKEUP and wake us only once a quarter of
    // the ring waits, so the ring is drained every 100 ms or at that mark.
    this.reader = this.ringReader(this.dp.maps.events);
    this.readRetiredRing();
    // Open connections report every interval, idle ones included: run the
    // kernel's iterator at half the interval so no report is more than 1.5 late.
    // Once now as well: status has its open-connection count from the start.
    const dp = this.dp;
    const report = (): void => {
      try {
        // Drained as the run goes: on a busy node it reports more than the ring holds.
        this.openCount = dp.reportOpenConnections(() => this.reader?.drain());
      } catch (err) {
        log.warn('reporting open connections failed', { err });
      }
    };
    report();
    this.reportTimer = setInterval(report, Math.max(50, Math.floor(settings.reportIntervalMs / 2)));
    this.reportTimer.unref();
    const ttl = settings.edgeTtlMs;
    if (ttl > 0) {
      this.expireTimer = setInterval(() => {
        const n = this.aggregator.expire(Date.now() - ttl);
        if (n > 0) log.debug('edges expired', { edges: n, ttlMs: ttl });
      }, Math.min(60_000, Math.max(250, Math.floor(ttl / 4))));
      this.expireTimer.unref();
    }
    if (this.opts.watch ?? true) this.watch();
  }

  /**
   * After an upgrade that replaced the ring: what the old programs wrote
   * before the swap is read too. A program that started before the swap may
   * still be finishing, so the old ring is read on the timer for a moment,
   * then once more and closed.
   */
  private readRetiredRing(): void {
    const old = this.dp?.takeRetiredRing();
    if (!old) return;
    const reader = this.ringReader(old);
    const retire = async (): Promise<void> => {
      clearTimeout(timer);
      const i = this.onStop.indexOf(retire);
      if (i >= 0) this.onStop.splice(i, 1);
      await reader.close({ drain: true });
      old.close();
      this.opts.log.info('replaced ring buffer read and closed', { records: reader.stats().records });
    };
    const timer = setTimeout(() => void retire(), 1000);
    this.onStop.push(retire);
  }

  /**
   * A reader of connection records into the aggregator, drained every 100 ms
   * (or when the kernel wakes it: Dataplane's wakeBytes). Batches of that
   * size cost the agent ~12% less CPU per record than every 10 ms did, and
   * nothing a person reads needs records sooner.
   */
  private ringReader(map: BpfMap): MappedRingReader {
    return new MappedRingReader(map, (buf, off, len) => this.onRecord(buf, off, len),
      { intervalMs: 100, onDrain: () => (this.drainNowMs = Date.now()) }, (err) => this.opts.log.error('record handler failed', { err }));
  }

  private onRecord(buf: Buffer, off: number, len: number): void {
    let rec: ConnectionRecord;
    try {
      rec = decodeRecord(buf, off, len);
    } catch (err) {
      if (!(err instanceof RecordDecodeError)) throw err;
      if (this.decodeErrors++ === 0) this.opts.log.warn('malformed telemetry record skipped', { err });
      return;
    }
    this.aggregator.ingest(rec, this.drainNowMs);
  }

  /** Reads, validates and compiles the mesh file off this thread (./load-mesh.ts); a rejection is kept for status. */
  private async load(): Promise<{ kind: 'loaded'; mesh: LoadedMesh } | { kind: 'rejected'; errors: string[]; error: Error }> {
    const t0 = Date.now();
    try {
      const mesh = await loadMeshOffThread(this.opts.meshFile);
      this.opts.log.debug('configuration loaded', { file: this.opts.meshFile, services: mesh.config.services.length, ms: Date.now() - t0 });
      return { kind: 'loaded', mesh };
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const errors = err instanceof ConfigError ? err.message.split('\n').filter(Boolean) : [`${this.opts.meshFile}: ${error.message}`];
      this.rejected = { at: new Date().toISOString(), errors };
      return { kind: 'rejected', errors, error };
    }
  }

  /** Writes a loaded mesh to the kernel; the agent's view follows only once the kernel has it. */
  private applyLoaded(mesh: LoadedMesh): ApplyReport {
    // Timed: with many services this is what holds the agent's thread (loading runs in a worker).
    const t0 = Date.now();
    const mount = cgroup2Root()!;
    const c = compile(mesh.config, mount, this.settings.cgroupRoot, mesh.desired);
    const report = applyDesired(this.dataplane.maps, c.desired);
    this.config = mesh.config;
    this.desired = c.desired;
    this.directory = c.directory;
    this.aggregator.setDirectory(c.directory);
    this.appliedAt = new Date().toISOString();
    this.rejected = undefined;
    this.startFileSettings ??= mesh.config.agent;
    const unapplied = changedSettings(this.startFileSettings, mesh.config.agent);
    this.configWarnings = [
      ...refusingPorts(c.desired),
      ...c.missingCgroups.map((cg) => `workload cgroup ${cg} does not exist yet: its records are attributed once it appears`),
      ...c.outsideRoot.map((cg) => `workload cgroup ${cg} is outside the cgroup root ${this.settings.cgroupRoot}: not enrolled (no VIPs, no telemetry)`),
      ...(unapplied.length ? [`agent settings changed in the mesh file (${unapplied.map((k) => `agent.${k}`).join(', ')}): ` +
        'the agent runs on with the ones it started with; restart it to apply them (a flag or SOCKMESH_* variable still wins over the file)'] : []),
    ];
    if (unapplied.length) this.opts.log.warn('agent settings changed in the mesh file take effect at the next start', { settings: unapplied });
    this.cgroups?.close();
    this.cgroups = c.cgroups;
    this.cgroups.follow((err) => {
      // Shown in status with the config's warnings: they last until the next apply, as this does.
      const fix = 'raise fs.inotify.max_user_watches (sysctl) if the limit was reached, then reload';
      this.configWarnings.push(`workload cgroups are not all followed as they come and go (${err.message}): ` +
        `connections of a container removed before its records are read may count as unknown; ${fix}`);
      this.opts.log.warn('workload cgroups not followed as they come and go', { err, fix });
    });
    this.opts.log.info('configuration applied', {
      file: this.opts.meshFile, ...report, services: c.desired.length, cgroups: c.cgroups.size, followed: c.cgroups.followed, ms: Date.now() - t0,
    });
    if (c.missingCgroups.length) this.opts.log.warn('workload cgroups not found', { cgroups: c.missingCgroups });
    if (c.outsideRoot.length) {
      this.opts.log.warn('workload cgroups outside the agent\'s cgroup root: their sockets get no VIPs and no telemetry', {
        cgroupRoot: this.settings.cgroupRoot, cgroups: c.outsideRoot,
        fix: 'move these workloads below cgroupRoot, or set cgroupRoot (--cgroup-root / SOCKMESH_CGROUP_ROOT) to a common ancestor',
      });
    }
    return report;
  }

  /**
   * Re-reads the mesh file. An invalid file is rejected, logged and shown in
   * status; the running state stays. Reloads run one at a time, in order.
   */
  reload(reason: string): Promise<ApplyOutcome> {
    const next = this.reloads.then(() => this.doReload(reason));
    this.reloads = next.catch(() => undefined);
    return next;
  }

  private async doReload(reason: string): Promise<ApplyOutcome> {
    const r = await this.load();
    if (r.kind === 'rejected') {
      this.opts.log.error('configuration rejected; running state kept', { reason, file: this.opts.meshFile, errors: r.errors });
      return { kind: 'rejected', errors: r.errors };
    }
    if (!this.dp) return { kind: 'rejected', errors: ['the agent stopped while the file was read: nothing applied'] };
    try {
      return { kind: 'applied', report: this.applyLoaded(r.mesh) };
    } catch (err) {
      return { kind: 'rejected', errors: this.notApplied(reason, err) };
    }
  }

  /** A valid file the kernel refused (applyDesired changes nothing then): shown in status like an invalid one. */
  private notApplied(reason: string, err: unknown): string[] {
    const errors = [`applying to the kernel failed: ${err instanceof Error ? err.message : String(err)}`];
    this.rejected = { at: new Date().toISOString(), errors };
    this.opts.log.error('configuration not applied; running state kept', { reason, err });
    return errors;
  }

  private watch(): void {
    const file = path.resolve(this.opts.meshFile);
    // Watch the directory: editors replace files, which ends a watch on the file itself.
    this.watcher = fs.watch(path.dirname(file), (_ev, name) => {
      if (name !== path.basename(file)) return;
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => void this.reload('file changed'), 200);
    });
  }

  addStopStep(step: () => Promise<void> | void): void {
    this.onStop.push(step);
  }

  /** Idempotent. Closes our handles; pinned state keeps serving traffic. */
  async stop(): Promise<void> {
    const starting = this.starting;
    if (!starting) return;
    await starting.catch(() => undefined);
    this.starting = undefined;
    await this.shutdown();
  }

  /** Closes whatever is open; with uninstallFresh, a dataplane this agent installed is removed too. */
  private async shutdown(opts: { uninstallFresh?: boolean } = {}): Promise<void> {
    this.watcher?.close();
    this.cgroups?.close();
    clearTimeout(this.reloadTimer);
    clearInterval(this.reportTimer);
    clearInterval(this.expireTimer);
    while (this.onStop.length) await this.onStop.pop()!();
    await this.reader?.close();
    this.reader = undefined;
    if (opts.uninstallFresh && this.dp?.outcome.kind === 'installed') this.dp.uninstall();
    else this.dp?.close();
    this.dp = undefined;
    this.runStats?.close();
    this.runStats = undefined;
    this.followers.clear();
    await this.lock?.release();
    this.lock = undefined;
  }

  /** Stops and removes every program, link, map and pin this instance made. */
  async uninstall(): Promise<string[]> {
    // Held until the pins are gone: no other agent adopts them halfway.
    const lock = this.lock;
    this.lock = undefined;
    try {
      await this.stop();
      return Dataplane.pinned(this.settings.bpffsDir) ? Dataplane.uninstallPinned(this.settings.bpffsDir) : [];
    } finally {
      await lock?.release();
    }
  }

  // ---- AgentView ----------------------------------------------------------

  status(): AgentStatus {
    const st = this.reader?.stats();
    return {
      instance: this.settings.instance,
      version: VERSION,
      pid: process.pid,
      startedAt: this.startedAt,
      dataplane: this.dp?.outcome.kind ?? 'installed',
      dataplaneChanges: this.dp ? describeChanges(this.dp.outcome, this.settings.cgroupRoot) : [],
      cgroup: this.settings.cgroupRoot,
      bpffsDir: this.settings.bpffsDir,
      config: {
        file: this.opts.meshFile,
        ...(this.appliedAt ? { appliedAt: this.appliedAt } : {}),
        ...(this.rejected ? { rejected: this.rejected } : {}),
        warnings: [...this.configWarnings],
      },
      services: this.config?.services.length ?? 0,
      workloads: this.config?.workloads.length ?? 0,
      frontends: this.desired.reduce((a, s) => a + s.frontends.length, 0),
      records: this.aggregator.records,
      openConnections: this.openCount,
      edges: { live: this.aggregator.edgeCount, expired: this.aggregator.expired, ttlMs: this.settings.edgeTtlMs, unattributed: this.aggregator.unattributed },
      ringbuf: { records: st?.records ?? 0, dropped: this.dp?.counter(MeshCounter.EVENTS_DROPPED) ?? 0, decodeErrors: this.decodeErrors },
      ...(this.otlpStats ? { otlp: this.otlpStats() } : {}),
      ...(this.runStats && this.dp ? { bpfStats: { since: this.runStatsSince, programs: this.dp.programCosts().map((c) => ({ hook: c.name, runs: c.runs, runNs: c.ns })) } } : {}),
    };
  }

  /** Connect-time verdicts per dataplane service, from the kernel. */
  verdicts(): { service: string; verdict: string; count: number }[] {
    if (!this.dp) return [];
    const names = new Map(this.desired.map((s) => [s.id, s.name]));
    return this.dp.verdicts().map((v) => ({
      service: names.get(v.svc) ?? `id ${v.svc}`, verdict: MESH_VERDICT_NAMES[v.verdict] ?? String(v.verdict), count: v.count,
    }));
  }

  services(): ServiceView[] {
    const verdicts = this.verdicts();
    return (this.config?.services ?? []).map((svc) => {
      const key = serviceKey(svc);
      const v: Record<string, number> = {};
      for (const x of verdicts) if (x.service.startsWith(`${key}:`)) v[x.verdict] = (v[x.verdict] ?? 0) + x.count;
      return {
        name: key,
        namespace: svc.namespace,
        ports: svc.ports.map((p) => ({ name: p.name ?? String(p.port), port: p.port, protocol: p.protocol, targetPort: p.targetPort })),
        vips: svc.vips.map((x) => x.text),
        backends: svc.backends.length,
        verdicts: v,
      };
    });
  }

  backends(service: string): BackendView[] | undefined {
    const name = service.includes('/') ? service : `default/${service}`;
    const ports = this.desired.filter((s) => s.service === name);
    if (!this.config?.services.some((s) => serviceKey(s) === name)) return undefined;
    const edges = this.aggregator.edges().filter((e) => e.labels.side === 'client');
    // Recent client connections of each port, by backend (refused connects have none: they are no part of the split).
    const recent = new Map<string, Map<string, number>>();
    for (const rec of this.aggregator.recent()) {
      if (rec.side !== 'client' || rec.serviceId === 0) continue;
      const l = this.aggregator.labelsOf(rec);
      if (!l.backend) continue;
      const byBackend = recent.get(l.service) ?? new Map<string, number>();
      byBackend.set(l.backend, (byBackend.get(l.backend) ?? 0) + 1);
      recent.set(l.service, byBackend);
    }
    return ports.flatMap((s) => {
      const total = s.backends.reduce((a, b) => a + b.weight, 0);
      const portRecent = recent.get(s.name);
      const recentOf = portRecent ? [...portRecent.values()].reduce((a, n) => a + n, 0) : 0;
      return s.backends.map((b) => {
        const mine = edges.filter((e) => e.labels.service === s.name && e.labels.backend === b.endpoint);
        return {
          service: s.service,
          port: s.portName,
          endpoint: b.endpoint,
          weight: b.weight,
          labels: { ...b.labels },
          share: total ? b.weight / total : 0,
          connections: mine.reduce((a, e) => a + e.opened, 0),
          failed: mine.reduce((a, e) => a + e.failed, 0),
          recent: portRecent?.get(b.endpoint) ?? 0,
          recentOf,
        };
      });
    });
  }

  edges(): Edge[] {
    return this.aggregator.edges();
  }

  connections(filter: ConnectionFilter): NamedRecord[] {
    return this.named(this.aggregator.recent(), filter);
  }

  openConnections(filter: ConnectionFilter): NamedRecord[] {
    // An open connection reports every interval: three missed mean its close record was lost.
    return this.named(this.aggregator.open(Date.now() - 3 * this.settings.reportIntervalMs), filter);
  }

  /** The records the filter takes, each with the names of its ids and when it happened. */
  private named(records: readonly ConnectionRecord[], filter: ConnectionFilter): NamedRecord[] {
    const out: NamedRecord[] = [];
    for (const rec of records) {
      const labels = this.aggregator.labelsOf(rec);
      if (labelsMatch(labels, filter)) out.push({ ...rec, labels, time: this.timeOf(rec) });
    }
    return out;
  }

  /** The record's event (its start plus its duration) on the wall clock, the offset re-read every 10 s. */
  private timeOf(rec: ConnectionRecord): string {
    const now = Date.now();
    if (now - this.clockSyncedAt > 10_000) {
      this.clock.sync();
      this.clockSyncedAt = now;
    }
    return this.clock.toIso(rec.startNs + rec.durationNs);
  }

  follow(filter: ConnectionFilter, fn: (rec: NamedRecord) => void): () => void {
    const f: Follower = { filter, fn };
    this.followers.add(f);
    return () => this.followers.delete(f);
  }
}

/**
 * workload: "ns/name" exactly, or a bare "name" in any namespace. service:
 * "ns/name" (a bare "name" is default/name), any of its ports: the label is
 * "ns/name:port", so "default/web" matches neither "default/webapp:http" nor
 * '' (no service) or 'unknown'.
 */
function labelsMatch(l: EdgeLabels, filter: ConnectionFilter): boolean {
  const { workload, service } = filter;
  if (workload) {
    if (workload.includes('/')) {
      if (l.workload !== workload) return false;
    } else {
      const slash = l.workload.indexOf('/');
      if (slash < 0 || l.workload.slice(slash + 1) !== workload) return false;
    }
  }
  if (service) {
    const name = service.includes('/') ? service : `default/${service}`;
    if (!l.service.startsWith(`${name}:`)) return false;
  }
  return true;
}

/** One line per change an adopting start made to the pinned state. */
export function describeChanges(o: OpenOutcome, cgroupRoot: string): string[] {
  if (o.kind !== 'adopted') return [];
  const copied = (c?: { copied: number; dropped: number }): string =>
    c ? `: ${c.copied} entries carried over${c.dropped ? `, ${c.dropped} did not fit` : ''}` : '';
  return [
    ...o.replacedMaps.map((m) => `map ${m.name}: ${m.action} (${m.reason})${copied(m.copy)}${m.migrated !== undefined ? `: ${m.migrated} open connections carried over` : ''}`),
    ...o.attached.map((h) => `hook ${h}: attached (not pinned before)`),
    ...o.moved.map((h) => `hook ${h}: moved to cgroup ${cgroupRoot}`),
    ...o.removed.map((p) => `${p}: removed (not part of this version)`),
  ];
}

/** BPF run-time stats for bpfStats on, or why not and what to do. */
function enableRunTimeStats(): RunTimeStats {
  try {
    return RunTimeStats.enable();
  } catch (err) {
    if (!(err instanceof BpfError)) throw err;
    throw new Error(`bpfStats is on but the kernel refused BPF run-time stats (${err.code}: ${err.message}): ` +
      'run the agent with CAP_SYS_ADMIN, or set bpfStats off');
  }
}

/** The agent: keys (as the file spells them) two sections set differently, one of them unset included. */
export function changedSettings(before: Partial<AgentSettings>, after: Partial<AgentSettings>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]) as Set<keyof AgentSettings>;
  return [...keys].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).map((k) => SETTINGS[k].name).sort();
}
