/**
 * Prometheus exposition of the agent's telemetry: per-edge connection metrics
 * fed record by record from the Aggregator, agent-level metrics read from the
 * agent at scrape time, and the Node.js process metrics.
 *
 * The exporter owns its Registry (never prom-client's global one), so two
 * exporters in one process (tests, two agents) never share or clash on series.
 *
 * Hot path: a record costs one WeakMap lookup (object identity, no string
 * work) and a few number additions on the edge's series. prom-client's own
 * children are no good for that: even a bound child (counter.labels(...))
 * re-hashes and re-validates its label set on every inc(). So per-edge
 * counters live in plain fields here and reach prom-client only when scraped,
 * through collect() callbacks: label hashing is paid once per series per
 * scrape, not per record. Histograms likewise keep their buckets in plain
 * per-edge series (./histogram.ts) that prom-client reads at scrape time.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { BucketHistogram, HistogramSeries } from './histogram';
import type { Aggregator, Edge, EdgeLabels } from '../telemetry/aggregator';
import { opens, type ConnectionRecord } from '../telemetry/record';
import { VERSION } from '../version';

type EdgeLabelName = keyof EdgeLabels;
const EDGE_LABELS: readonly EdgeLabelName[] = ['side', 'workload', 'service', 'backend'];
/**
 * Histograms leave the backend out. Each histogram series is ~20 buckets:
 * labelled by backend (a pod address) they would multiply by every backend a
 * workload reaches - a node of 20 workloads on a 200-pod service, 300 000
 * series. Counters keep it (failures, resets, the split, per backend).
 */
type HistogramLabelName = Exclude<EdgeLabelName, 'backend'>;
const HISTOGRAM_LABELS: readonly HistogramLabelName[] = ['side', 'workload', 'service'];
type ResetLabelName = EdgeLabelName | 'direction';

/**
 * SYN -> established, 10µs (same host) .. 10s. Past 1s a handshake has lost
 * its SYN: with the kernel's 1s initial RTO a connect lands near 1s, 3s or 7s
 * after one, two or three retransmitted SYNs, so the 2.5/5/10 buckets count
 * how many retries connects needed.
 */
export const CONNECT_BUCKETS_SECONDS: readonly number[] = [
  1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Smoothed RTT: 10µs (loopback, same rack) .. 1s (a badly congested path). */
export const SRTT_BUCKETS_SECONDS: readonly number[] = [
  1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
/** Connection lifetime: 1ms (one request on a fresh connection) .. 1h (pooled, long-lived). */
export const CONNECTION_DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800, 3600,
];

/** What the agent reports about itself, read once per scrape. Cumulative values are kernel/agent counters since start. */
export interface AgentMetricsSnapshot {
  /** records read from the kernel ring buffer */
  records: number;
  /** records the kernel could not put in the ring (it was full) */
  ringDropped: number;
  /** records read but not decodable */
  decodeErrors: number;
  openConnections: number;
  /** services in the applied config */
  services: number;
  /** workloads in the applied config */
  workloads: number;
  /** true while a newer config file is rejected and the previous one still runs */
  configRejected: boolean;
  /** when the running config was applied (Unix ms); absent before the first apply */
  configAppliedAtMs?: number;
  /** span counts of the OTLP exporter; absent when OTLP export is off: then no sockmesh_otlp_* series are exposed */
  otlp?: { endpoint: string; exported: number; failed: number; dropped: number };
  /** connect-time verdicts from the kernel, per service (namespace/name) */
  verdicts: ReadonlyArray<{ service: string; verdict: string; count: number }>;
  /** each mesh program's runs and run time (ns) by hook, while bpfStats is on; empty otherwise: then no sockmesh_bpf_program_* series */
  programs: ReadonlyArray<{ hook: string; runs: number; runNs: number }>;
}

export type AgentCollector = () => AgentMetricsSnapshot;

export interface PrometheusExporterOptions {
  /** Node.js process metrics (sockmesh_agent_*); default true. */
  defaultMetrics?: boolean;
}

/** One edge's series: counters as plain fields, histograms as cached bound children. */
interface EdgeSeries {
  readonly labels: Readonly<Record<EdgeLabelName, string>>;
  readonly resetsSentLabels: Readonly<Record<ResetLabelName, string>>;
  readonly resetsReceivedLabels: Readonly<Record<ResetLabelName, string>>;
  opened: number;
  closed: number;
  failed: number;
  sentBytes: number;
  receivedBytes: number;
  retransmits: number;
  resetsSent: number;
  resetsReceived: number;
  timeouts: number;
  /** The histograms' series: shared by the edges of every backend of one side, workload and service. */
  readonly histogramKey: string;
  readonly connectDuration: HistogramSeries | undefined; // client side only
  readonly srtt: HistogramSeries;
  readonly connectionDuration: HistogramSeries;
  /** The scrape that first exposed this series (0: none yet); it exposes zeros. */
  firstScrape: number;
  /** Exposed as zeros in the scrape in progress. */
  fresh: boolean;
}

type EdgeCounterField = 'opened' | 'closed' | 'failed' | 'sentBytes' | 'receivedBytes' | 'retransmits' | 'timeouts';

const EDGE_COUNTERS: ReadonlyArray<{ name: string; help: string; field: EdgeCounterField }> = [
  { name: 'sockmesh_connections_opened_total', help: 'TCP connections seen established (or first reported while open).', field: 'opened' },
  { name: 'sockmesh_connections_closed_total', help: 'TCP connections closed, for any cause.', field: 'closed' },
  { name: 'sockmesh_connections_failed_total', help: 'TCP connects that never got established.', field: 'failed' },
  { name: 'sockmesh_sent_bytes_total', help: 'Payload bytes sent (acknowledged by the peer).', field: 'sentBytes' },
  { name: 'sockmesh_received_bytes_total', help: 'Payload bytes received.', field: 'receivedBytes' },
  { name: 'sockmesh_retransmits_total', help: 'TCP segments retransmitted.', field: 'retransmits' },
  { name: 'sockmesh_timeouts_total', help: 'TCP connections closed by a retransmission or keepalive timeout.', field: 'timeouts' },
];

const US_PER_S = 1e6;
const NS_PER_S = 1e9;

export class PrometheusExporter {
  private readonly registry = new Registry();
  /** Hot-path lookup: by object identity, so no key string is built per record. */
  private readonly byEdge = new WeakMap<Edge, EdgeSeries>();
  /** Every series by edge key, for scrapes; an edge the aggregator expires leaves it (forget()). */
  private readonly byKey = new Map<string, EdgeSeries>();
  private expired = 0;
  /** Scrapes begun: metrics() calls. */
  private scrapes = 0;
  /** Verdict series (service|verdict) by the scrape that first exposed them, at zero as edge series are. */
  private readonly verdictsFirst = new Map<string, number>();
  private readonly attached = new WeakSet<Aggregator>();
  private readonly connectDuration: BucketHistogram<HistogramLabelName>;
  private readonly srtt: BucketHistogram<HistogramLabelName>;
  private readonly connectionDuration: BucketHistogram<HistogramLabelName>;
  /** Edge series per histogram series (histogramKey): the last to go takes the histograms with it. */
  private readonly histogramRefs = new Map<string, number>();
  private agentCollector: AgentCollector | undefined;
  /** The agent's values for the scrape in progress: read once, so all agent metrics of a scrape agree. */
  private agentSnapshot: AgentMetricsSnapshot | undefined;

  constructor(opts: PrometheusExporterOptions = {}) {
    const registers = [this.registry];
    for (const def of EDGE_COUNTERS) {
      const counter: Counter<EdgeLabelName> = new Counter({
        name: def.name, help: def.help, labelNames: EDGE_LABELS, registers,
        collect: () => {
          // Rebuilt from the series at every scrape: reset, then one inc per edge.
          counter.reset();
          for (const s of this.byKey.values()) counter.inc(s.labels, s.fresh ? 0 : s[def.field]);
        },
      });
    }
    const resets: Counter<ResetLabelName> = new Counter({
      name: 'sockmesh_resets_total',
      help: 'TCP connections closed by a reset, by who sent it: direction="sent" (this side) or "received" (the peer).',
      labelNames: [...EDGE_LABELS, 'direction'], registers,
      collect: () => {
        resets.reset();
        for (const s of this.byKey.values()) {
          resets.inc(s.resetsSentLabels, s.fresh ? 0 : s.resetsSent);
          resets.inc(s.resetsReceivedLabels, s.fresh ? 0 : s.resetsReceived);
        }
      },
    });
    this.connectDuration = new BucketHistogram({
      name: 'sockmesh_connect_duration_seconds',
      help: 'Client side: SYN sent to connection established.',
      labelNames: HISTOGRAM_LABELS, buckets: CONNECT_BUCKETS_SECONDS, registers, scrape: () => this.scrapes,
    });
    this.srtt = new BucketHistogram({
      name: 'sockmesh_srtt_seconds',
      help: 'Smoothed round-trip time of a connection when it closed (connections without an RTT sample are left out).',
      labelNames: HISTOGRAM_LABELS, buckets: SRTT_BUCKETS_SECONDS, registers, scrape: () => this.scrapes,
    });
    this.connectionDuration = new BucketHistogram({
      name: 'sockmesh_connection_duration_seconds',
      help: 'Lifetime of closed connections: from the SYN sent on the client side (the handshake included), from established on the server side.',
      labelNames: HISTOGRAM_LABELS, buckets: CONNECTION_DURATION_BUCKETS_SECONDS, registers, scrape: () => this.scrapes,
    });
    const edges: Gauge = new Gauge({
      name: 'sockmesh_edges', help: 'Edges (side, workload, service, backend) with series here now: the per-edge metrics\' cardinality.', registers,
      collect: () => edges.set(this.byKey.size),
    });
    const expired: Counter = new Counter({
      name: 'sockmesh_edges_expired_total', help: 'Edges dropped, with their series, after edgeTtl without a record.', registers,
      collect: () => {
        expired.reset();
        expired.inc(this.expired);
      },
    });
    // The usual *_build_info: which release each node runs, for joins and for a rollout's progress.
    new Gauge({ name: 'sockmesh_build_info', help: 'Always 1: the agent\'s release, and the Node.js it runs on, as labels.', labelNames: ['version', 'nodejs'], registers })
      .set({ version: VERSION, nodejs: process.versions.node }, 1);
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'sockmesh_agent_' });
  }

  /** Content-Type of what metrics() returns (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Feeds every record the aggregator ingests from now on into the metrics.
   * An aggregator is attached at most once: twice would count every record twice.
   */
  attach(aggregator: Aggregator): void {
    if (this.attached.has(aggregator)) throw new Error('PrometheusExporter: this aggregator is already attached');
    this.attached.add(aggregator);
    aggregator.onRecord((rec, edge) => this.record(rec, edge));
    aggregator.onExpire((edges) => this.forget(edges));
  }

  /**
   * Expired edges leave the exposition: a backend gone with its pod must not
   * stay a series forever. If one comes back, its counters start again at 0,
   * which rate() and increase() read as a reset.
   */
  private forget(edges: readonly Edge[]): void {
    for (const e of edges) {
      const s = this.byKey.get(e.key);
      if (!s) continue;
      this.byKey.delete(e.key);
      const refs = (this.histogramRefs.get(s.histogramKey) ?? 1) - 1;
      if (refs > 0) this.histogramRefs.set(s.histogramKey, refs);
      else {
        this.histogramRefs.delete(s.histogramKey);
        this.connectDuration.dropSeries(s.histogramKey);
        this.srtt.dropSeries(s.histogramKey);
        this.connectionDuration.dropSeries(s.histogramKey);
      }
      this.expired++;
    }
  }

  /**
   * Agent-level metrics, read through `fn` once per scrape. The first call
   * registers them; a later call replaces the function.
   */
  setAgentCollector(fn: AgentCollector): void {
    if (!this.agentCollector) this.registerAgentMetrics();
    this.agentCollector = fn;
  }

  /**
   * The exposition text; one call per scrape. Rejects when the agent
   * collector throws or reports nonsense.
   *
   * A series first appears at zero, its counts from the next scrape on:
   * rate() and increase() need a sample before the first increment, and a
   * series created by the record that counts it would never give one - an
   * edge with less than a connection per edgeTtl (a CronJob, a health
   * check), expired and made again each time, would read as no traffic.
   * The cost: counts of a new edge show one scrape late. With two scrapers
   * (an HA pair), the one that scrapes second sees the counts first.
   */
  async metrics(): Promise<string> {
    const scrape = ++this.scrapes;
    // Histogram series keep their own first scrape (BucketHistogram): they outlive a backend's edge.
    for (const s of this.byKey.values()) {
      if (s.firstScrape === 0) s.firstScrape = scrape;
      s.fresh = s.firstScrape === scrape;
    }
    this.agentSnapshot = this.agentCollector?.();
    try {
      // registry.metrics() runs every collect() synchronously before its first
      // await, so they all see this scrape's snapshot even when scrapes overlap.
      return await this.registry.metrics();
    } finally {
      this.agentSnapshot = undefined;
    }
  }

  private record(rec: ConnectionRecord, edge: Edge): void {
    const s = this.byEdge.get(edge) ?? this.addSeries(edge);
    if (opens(rec)) {
      s.opened++;
      // connectUs is only ever set on the client side; 0 means no measurement.
      if (rec.connectUs > 0) s.connectDuration?.observe(rec.connectUs / US_PER_S);
    }
    // A counter never goes down: a negative delta (kernel counters that went
    // backwards for a cookie) is dropped rather than subtracted.
    if (rec.newBytesSent > 0) s.sentBytes += rec.newBytesSent;
    if (rec.newBytesReceived > 0) s.receivedBytes += rec.newBytesReceived;
    if (rec.newRetransmits > 0) s.retransmits += rec.newRetransmits;
    switch (rec.kind) {
      case 'interim':
        break;
      case 'close':
        s.closed++;
        if (rec.closeCause === 'rst_sent') s.resetsSent++;
        else if (rec.closeCause === 'rst_received') s.resetsReceived++;
        else if (rec.closeCause === 'timeout') s.timeouts++;
        // srtt 0 means the kernel never took an RTT sample: not a 0s RTT.
        if (rec.srttUs.last > 0) s.srtt.observe(rec.srttUs.last / US_PER_S);
        s.connectionDuration.observe(rec.durationNs / NS_PER_S);
        break;
      case 'connect_failed':
        s.failed++;
        break;
    }
  }

  private addSeries(edge: Edge): EdgeSeries {
    let s = this.byKey.get(edge.key);
    if (!s) {
      // Copied: the series outlives the Edge, and prom-client keeps the object it is given.
      const labels = { side: edge.labels.side, workload: edge.labels.workload, service: edge.labels.service, backend: edge.labels.backend };
      const histogramLabels = { side: labels.side, workload: labels.workload, service: labels.service };
      const histogramKey = `${labels.side}|${labels.workload}|${labels.service}`;
      this.histogramRefs.set(histogramKey, (this.histogramRefs.get(histogramKey) ?? 0) + 1);
      s = {
        labels,
        resetsSentLabels: { ...labels, direction: 'sent' },
        resetsReceivedLabels: { ...labels, direction: 'received' },
        opened: 0, closed: 0, failed: 0, sentBytes: 0, receivedBytes: 0, retransmits: 0, resetsSent: 0, resetsReceived: 0, timeouts: 0,
        // Declared at 0 from the start, like the counters, so rate() and ratios
        // work from the first observation. Server sides never measure a connect:
        // no 20 always-empty buckets for them.
        histogramKey,
        connectDuration: labels.side === 'client' ? this.connectDuration.series(histogramKey, histogramLabels) : undefined,
        srtt: this.srtt.series(histogramKey, histogramLabels),
        connectionDuration: this.connectionDuration.series(histogramKey, histogramLabels),
        firstScrape: 0,
        fresh: false,
      };
      this.byKey.set(edge.key, s);
    }
    this.byEdge.set(edge, s);
    return s;
  }

  private registerAgentMetrics(): void {
    const registers = [this.registry];
    // Cumulative values come from kernel/agent counters that already count
    // since start: a Counter is re-set to them at each scrape (reset, then inc
    // by the absolute value), which keeps TYPE counter for rate(). A Gauge
    // named *_total would be the wrong type; a Counter incremented by deltas
    // would need state here that could drift from the source.
    const absolute = (name: string, help: string, read: (a: AgentMetricsSnapshot) => number): void => {
      const c: Counter = new Counter({
        name, help, registers,
        collect: () => {
          const a = this.agentSnapshot;
          if (!a) return;
          c.reset();
          c.inc(checkCount(name, read(a)));
        },
      });
    };
    const gauge = (name: string, help: string, read: (a: AgentMetricsSnapshot) => number): void => {
      const g: Gauge = new Gauge({
        name, help, registers,
        collect: () => {
          const a = this.agentSnapshot;
          if (a) g.set(read(a));
        },
      });
    };
    absolute('sockmesh_ring_records_total', 'Connection records read from the kernel ring buffer.', (a) => a.records);
    absolute('sockmesh_ring_dropped_total', 'Connection records lost in the kernel because the ring buffer was full.', (a) => a.ringDropped);
    absolute('sockmesh_record_decode_errors_total', 'Connection records read from the ring buffer that could not be decoded.', (a) => a.decodeErrors);
    gauge('sockmesh_open_connections', 'TCP connections of enrolled workloads open now (client and server sides), counted by the kernel at the last report run.', (a) => a.openConnections);
    gauge('sockmesh_services', 'Services in the applied config.', (a) => a.services);
    gauge('sockmesh_workloads', 'Workloads in the applied config: with none, every connection counts under workload "unknown".', (a) => a.workloads);
    gauge('sockmesh_config_rejected', '1 while the latest config file is rejected and the previous config keeps running, else 0.', (a) => (a.configRejected ? 1 : 0));
    gauge('sockmesh_config_applied_timestamp_seconds',
      'When the running config was applied (Unix seconds; 0 before the first): time() minus it is how long the node has run it.',
      (a) => (a.configAppliedAtMs ?? 0) / 1000);

    const verdicts: Counter<'service' | 'verdict'> = new Counter({
      name: 'sockmesh_connect_verdicts_total',
      help: 'Connect-time verdicts of the kernel, per service.',
      labelNames: ['service', 'verdict'], registers,
      collect: () => {
        const a = this.agentSnapshot;
        if (!a) return;
        // Labelled: reset() empties it, so a service gone from the config stops being exposed.
        verdicts.reset();
        const now = new Set<string>();
        for (const v of a.verdicts) {
          const key = `${v.service}|${v.verdict}`;
          now.add(key);
          // The kernel makes a verdict's counter at its first connect: a first outage must still show in increase().
          const first = this.verdictsFirst.get(key) ?? this.scrapes;
          this.verdictsFirst.set(key, first);
          verdicts.inc({ service: v.service, verdict: v.verdict }, first === this.scrapes ? 0 : checkCount('sockmesh_connect_verdicts_total', v.count));
        }
        for (const key of this.verdictsFirst.keys()) if (!now.has(key)) this.verdictsFirst.delete(key);
      },
    });

    // One label, series as the snapshot lists them now: reset() at each scrape,
    // so with OTLP or bpfStats off there is no series, where a label-less
    // counter would show a misleading 0.
    const listed = <L extends string>(name: string, help: string, label: L,
      series: (a: AgentMetricsSnapshot) => ReadonlyArray<readonly [string, number]>): void => {
      const c: Counter<L> = new Counter({
        name, help, labelNames: [label], registers,
        collect: () => {
          const a = this.agentSnapshot;
          if (!a) return;
          c.reset();
          for (const [value, n] of series(a)) c.inc({ [label]: value } as Record<L, string>, checkCount(name, n));
        },
      });
    };
    listed('sockmesh_bpf_program_runs_total', 'Runs of each mesh program since it was loaded (bpfStats on).', 'hook',
      (a) => a.programs.map((p) => [p.hook, p.runs] as const));
    listed('sockmesh_bpf_program_run_seconds_total', 'Time each mesh program ran since it was loaded, as the kernel measures it (bpfStats on).', 'hook',
      (a) => a.programs.map((p) => [p.hook, p.runNs / 1e9] as const));
    const otlp = (name: string, help: string, read: (o: NonNullable<AgentMetricsSnapshot['otlp']>) => number): void =>
      listed(name, help, 'endpoint', (a) => (a.otlp ? [[a.otlp.endpoint, read(a.otlp)] as const] : []));
    otlp('sockmesh_otlp_exported_total', 'Connection spans exported to the OTLP collector.', (o) => o.exported);
    otlp('sockmesh_otlp_failed_total', 'Connection spans whose OTLP export failed (after retries).', (o) => o.failed);
    otlp('sockmesh_otlp_dropped_total', 'Connection spans dropped before OTLP export (export queue full).', (o) => o.dropped);
  }
}

/** Counters only accept finite values >= 0: anything else is a bug in the agent's collector, named here. */
function checkCount(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`agent collector: ${name} must be a finite number >= 0, got ${v}`);
  return v;
}
