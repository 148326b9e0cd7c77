/**
 * Per-edge aggregation: source workload -> destination service -> backend,
 * per side (client or server). Records arrive once per connection (close or
 * failed connect) and, for long-lived connections, as interim records with
 * counters so far: the aggregator adds only what changed since the last
 * record of the same connection, so nothing is counted twice.
 */
import { formatEndpoint } from '../config/model';
import { opens, type ConnectionRecord } from './record';
import { Directory } from './directory';

export interface EdgeLabels {
  side: 'client' | 'server';
  workload: string;
  service: string;
  backend: string;
}

export interface Edge {
  readonly key: string;
  readonly labels: EdgeLabels;
  opened: number;
  closed: number;
  failed: number;
  bytesSent: number;
  bytesReceived: number;
  retransmits: number;
  resetsSent: number;
  resetsReceived: number;
  timeouts: number;
  connectUsSum: number;
  connectUsCount: number;
  srttUsSum: number;
  srttUsCount: number;
  lastSeenMs: number;
}

/** Called for every record after its edge is updated; what the record adds to counters is in the record itself. */
export type RecordListener = (rec: ConnectionRecord, edge: Edge) => void;

/** Called with the edges expire() dropped. */
export type ExpireListener = (edges: readonly Edge[]) => void;

export interface AggregatorOptions {
  /** Closed connections kept for `sockmesh connections`. */
  recentLimit?: number;
  /** Open connections kept (their latest interim record) for `sockmesh connections --open`. */
  openLimit?: number;
}

export class Aggregator {
  private readonly edgeMap = new Map<string, Edge>();
  /**
   * Record ids -> edge (cgroup id, then backend id and side, then service id),
   * so the hot path resolves names once per edge, not per record.
   */
  private readonly byIds = new Map<number, Map<number, Map<number | string, Edge>>>();
  private byIdsSize = 0;
  /** Edges expire() dropped, in all. */
  expired = 0;
  /**
   * Connections opened under workload "unknown": their sockets' cgroups lie
   * in no workload of the mesh file (or came and went unseen with their pod's).
   * Above zero, the mesh file's workloads miss cgroups that hold traffic.
   */
  unattributed = 0;
  private readonly listeners: RecordListener[] = [];
  private readonly expireListeners: ExpireListener[] = [];
  private readonly recentRing: ConnectionRecord[] = [];
  private recentNext = 0;
  private readonly recentLimit: number;
  /** Each open connection's latest interim record, by socket cookie, least recently reported first. */
  private readonly openByCookie = new Map<bigint, { rec: ConnectionRecord; atMs: number }>();
  private readonly openLimit: number;
  records = 0;

  constructor(private directory: Directory, opts: AggregatorOptions = {}) {
    this.recentLimit = opts.recentLimit ?? 1000;
    this.openLimit = opts.openLimit ?? 10_000;
  }

  setDirectory(d: Directory): void {
    this.directory = d;
    this.byIds.clear();
    this.byIdsSize = 0;
  }

  onRecord(l: RecordListener): void {
    this.listeners.push(l);
  }

  onExpire(l: ExpireListener): void {
    this.expireListeners.push(l);
  }

  /**
   * Drops the edges with no record since cutoffMs (on the clock ingest() is
   * given) and tells the expire listeners. Returns how many went. A record
   * for a dropped edge later starts it again from zero.
   */
  expire(cutoffMs: number): number {
    const gone: Edge[] = [];
    for (const [key, edge] of this.edgeMap) {
      if (edge.lastSeenMs < cutoffMs) {
        this.edgeMap.delete(key);
        gone.push(edge);
      }
    }
    if (gone.length === 0) return 0;
    // The id cache may lead to them; it refills from the records that follow.
    this.byIds.clear();
    this.byIdsSize = 0;
    this.expired += gone.length;
    for (const l of this.expireListeners) l(gone);
    return gone.length;
  }

  labelsOf(rec: ConnectionRecord): EdgeLabels {
    const d = this.directory;
    let serviceId = rec.serviceId;
    let backendId = rec.backendId;
    if (rec.side === 'server' && serviceId === 0) {
      // The server never saw the VIP: attribute by its own endpoint.
      const ids = d.byEndpoint.get(formatEndpoint(rec.local.address, rec.family, rec.local.port));
      if (ids && ids.length === 1) {
        backendId = ids[0]!;
        serviceId = d.backends.get(backendId)?.serviceId ?? 0;
      }
    }
    return { side: rec.side, workload: d.workload(rec.cgroupId, rec.cgroupParentId, rec.cgroupGrandparentId), service: d.service(serviceId), backend: d.backend(backendId) };
  }

  private edgeOf(rec: ConnectionRecord): Edge {
    // Keyed by numbers where possible: building a string key per record cost
    // more than the rest of ingest() together. Server-side records without a
    // service are attributed by local endpoint, so that is part of their id.
    const byLocal = rec.serviceId === 0 && rec.side === 'server';
    const k2 = byLocal ? -1 - rec.local.port : rec.backendId * 2 + (rec.side === 'client' ? 0 : 1);
    const k3: number | string = byLocal ? rec.local.address : rec.serviceId;
    let m2 = this.byIds.get(rec.cgroupId);
    if (!m2) this.byIds.set(rec.cgroupId, (m2 = new Map()));
    let m3 = m2.get(k2);
    if (!m3) m2.set(k2, (m3 = new Map()));
    let edge = m3.get(k3);
    if (edge) return edge;
    const labels = this.labelsOf(rec);
    const key = `${labels.side}|${labels.workload}|${labels.service}|${labels.backend}`;
    edge = this.edgeMap.get(key);
    if (!edge) {
      edge = {
        key, labels, opened: 0, closed: 0, failed: 0, bytesSent: 0, bytesReceived: 0, retransmits: 0,
        resetsSent: 0, resetsReceived: 0, timeouts: 0, connectUsSum: 0, connectUsCount: 0, srttUsSum: 0, srttUsCount: 0, lastSeenMs: 0,
      };
      this.edgeMap.set(key, edge);
    }
    if (++this.byIdsSize > 100_000) {
      this.byIds.clear();
      this.byIdsSize = 0;
    }
    m3.set(k3, edge);
    return edge;
  }

  /**
   * nowMs: when the record was read, for the edge's last-seen time. A caller
   * that handles records in batches reads the clock once per batch (a clock
   * read per record was a fifth of this method's cost).
   */
  ingest(rec: ConnectionRecord, nowMs: number = Date.now()): void {
    this.records++;
    const edge = this.edgeOf(rec);
    // What to add comes with the record (the kernel remembers what each
    // connection reported last): exact across restarts of this process.
    if (opens(rec)) {
      edge.opened++;
      if (edge.labels.workload === Directory.UNKNOWN) this.unattributed++;
      if (rec.connectUs > 0) {
        edge.connectUsSum += rec.connectUs;
        edge.connectUsCount++;
      }
    }
    // As /metrics counts them (src/exporters/prometheus.ts): totals never go
    // down, so a negative delta (counters that went backwards for a cookie) is dropped.
    if (rec.newBytesSent > 0) edge.bytesSent += rec.newBytesSent;
    if (rec.newBytesReceived > 0) edge.bytesReceived += rec.newBytesReceived;
    if (rec.newRetransmits > 0) edge.retransmits += rec.newRetransmits;
    edge.lastSeenMs = nowMs;
    switch (rec.kind) {
      case 'interim':
        this.rememberOpen(rec, nowMs);
        break;
      case 'close':
        edge.closed++;
        // 0: the kernel never took an RTT sample - not a 0 s RTT (as in /metrics).
        if (rec.srttUs.last > 0) {
          edge.srttUsSum += rec.srttUs.last;
          edge.srttUsCount++;
        }
        if (rec.closeCause === 'rst_sent') edge.resetsSent++;
        else if (rec.closeCause === 'rst_received') edge.resetsReceived++;
        else if (rec.closeCause === 'timeout') edge.timeouts++;
        this.remember(rec);
        this.forgetOpen(rec);
        break;
      case 'connect_failed':
        edge.failed++;
        this.remember(rec);
        this.forgetOpen(rec);
        break;
    }
    for (const l of this.listeners) l(rec, edge);
  }

  edges(): Edge[] {
    return [...this.edgeMap.values()];
  }

  get edgeCount(): number {
    return this.edgeMap.size;
  }

  /** Most recent closed or failed connections, oldest first. */
  recent(): ConnectionRecord[] {
    const n = this.recentRing.length;
    if (n < this.recentLimit) return [...this.recentRing];
    return [...this.recentRing.slice(this.recentNext), ...this.recentRing.slice(0, this.recentNext)];
  }

  /**
   * Open connections as of their latest report, least recently reported
   * first. One whose latest report is older than sinceMs is dropped: it would
   * have reported again if still open (its close record was lost).
   */
  open(sinceMs: number): ConnectionRecord[] {
    const out: ConnectionRecord[] = [];
    for (const [cookie, o] of this.openByCookie) {
      if (o.atMs < sinceMs) this.openByCookie.delete(cookie);
      else out.push(o.rec);
    }
    return out;
  }

  /** A connection's first record (every short one's close) cannot have been reported open: no map work on the hot path. */
  private forgetOpen(rec: ConnectionRecord): void {
    if (!rec.first) this.openByCookie.delete(rec.cookie);
  }

  private rememberOpen(rec: ConnectionRecord, nowMs: number): void {
    this.openByCookie.delete(rec.cookie); // to the end: the most recently reported
    this.openByCookie.set(rec.cookie, { rec, atMs: nowMs });
    if (this.openByCookie.size > this.openLimit) this.openByCookie.delete(this.openByCookie.keys().next().value!);
  }

  private remember(rec: ConnectionRecord): void {
    if (this.recentRing.length < this.recentLimit) this.recentRing.push(rec);
    else {
      this.recentRing[this.recentNext] = rec;
      this.recentNext = (this.recentNext + 1) % this.recentLimit;
    }
  }
}
