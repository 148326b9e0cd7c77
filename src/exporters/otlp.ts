/**
 * OTLP trace export: one span per finished TCP connection (closed or failed
 * connect), sent over gRPC to an OpenTelemetry collector.
 *
 * Pipeline: record() -> Tracer span (ended at once, times from the record)
 *   -> QueueGate (bounded queue, exact drop count) -> BatchSpanProcessor
 *   -> RetryingCountingExporter (retries, exact exported/failed counts)
 *   -> OTLPTraceExporter (gRPC).
 *
 * Why the two wrappers:
 * - BatchSpanProcessor drops spans when its queue is full but exposes no
 *   count (only a diag log). QueueGate keeps the number of spans the processor
 *   holds (forwarded minus handed to the exporter) below maxQueueSize, so the
 *   processor itself never drops and every drop is ours, counted.
 * - The OTLP gRPC exporter does NOT retry (0.223.x): its GrpcExporterTransport
 *   maps every gRPC error, UNAVAILABLE included, to status 'failure', and only
 *   the HTTP delegates are wrapped in createRetryingTransport
 *   (node_modules/@opentelemetry/otlp-grpc-exporter-base/build/src/grpc-exporter-transport.js,
 *   otlp-exporter-base/build/src/otlp-http-export-delegate.js). So retrying of
 *   transient errors happens here, bounded by exportTimeoutMillis per batch.
 */
import os from 'node:os';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { MonotonicClock } from '../telemetry/clock';
import type { Connection } from '../telemetry/record';
import type { EdgeLabels } from '../telemetry/aggregator';

export interface OtlpExporterOptions {
  /** Collector gRPC endpoint, e.g. http://127.0.0.1:4317 (http: plaintext, https: TLS) */
  endpoint: string;
  /** resource service.name; default 'sockmesh-agent' */
  serviceName?: string;
  /** resource service.instance.id: this agent (node name) */
  instance: string;
  /** Spans waiting for an export at most (not counting the batches being sent); more are dropped and counted. Default 2048. */
  maxQueueSize?: number;
  /** Spans per export request at most; default min(512, maxQueueSize). */
  maxExportBatchSize?: number;
  /** Delay before a partial batch is sent; default 5000 ms. */
  scheduledDelayMillis?: number;
  /** Time budget of one batch, retries included; the batch counts as failed after it. Default 30000 ms. */
  exportTimeoutMillis?: number;
}

export interface OtlpExporterStats {
  /** spans the collector accepted */
  exported: number;
  /** spans given up on: retries exhausted, non-retryable error, or budget spent */
  failed: number;
  /** spans never sent: queue full, after shutdown, or could not be built */
  dropped: number;
  /** spans queued or in an export right now: spans = exported + failed + dropped + pending */
  pending: number;
  /** export attempts repeated after a transient error */
  retries: number;
  /** last export or record error, for `status` output */
  lastError?: string;
}

/** The SDK's export result type, taken from SpanExporter so that @opentelemetry/core (not a direct dependency) isn't imported. */
type ExportResult = Parameters<Parameters<SpanExporter['export']>[1]>[0];
// ExportResultCode.SUCCESS / FAILED of @opentelemetry/core (a numeric enum: 0 and 1).
const RESULT_SUCCESS: ExportResult['code'] = 0;
const RESULT_FAILED: ExportResult['code'] = 1;

/**
 * gRPC codes worth retrying, per the OTLP spec's "Failures" section:
 * CANCELLED 1, DEADLINE_EXCEEDED 4, RESOURCE_EXHAUSTED 8 (backpressure),
 * ABORTED 10, OUT_OF_RANGE 11, UNAVAILABLE 14 (collector down), DATA_LOSS 15.
 */
const RETRYABLE_GRPC_CODES: ReadonlySet<number> = new Set([1, 4, 8, 10, 11, 14, 15]);

function grpcCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code: unknown = err.code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** Transient: a retryable gRPC status, or a local error with no status (e.g. the exporter's concurrent-export limit). */
export function isRetryableExportError(err: unknown): boolean {
  const code = grpcCode(err);
  return code === undefined || RETRYABLE_GRPC_CODES.has(code);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// Not unref'd: an export waiting to retry should keep the process (and a shutdown flush) alive.
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface RetryPolicy {
  /** whole budget of one batch */
  budgetMs: number;
  /** gRPC deadline of one attempt (fixed in the OTLP exporter at construction) */
  attemptTimeoutMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

/**
 * SpanExporter delegate: retries transient failures with jittered
 * exponential backoff within a per-batch budget, counts every span exactly
 * once as exported or failed, and closes the inner exporter only after the
 * last export settled.
 */
class RetryingCountingExporter implements SpanExporter {
  /** spans handed to export(): they have left the BatchSpanProcessor's queue */
  received = 0;
  exported = 0;
  failed = 0;
  retries = 0;
  lastError: string | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private shutdownOnce: Promise<void> | undefined;

  constructor(private readonly inner: SpanExporter, private readonly policy: RetryPolicy) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const n = spans.length;
    this.received += n;
    const settle = (result: ExportResult): void => {
      if (result.code === RESULT_SUCCESS) this.exported += n;
      else {
        this.failed += n;
        if (result.error) this.lastError = errorText(result.error);
      }
      // The BatchSpanProcessor's callback: a throw here must not turn into an unhandled rejection.
      try {
        resultCallback(result);
      } catch {
        /* the processor's business */
      }
    };
    const done = this.exportWithRetry(spans)
      // Not expected to reject; if it ever does, the spans still get counted (as failed) and nothing goes unhandled.
      .catch((e: unknown): ExportResult => ({ code: RESULT_FAILED, error: e instanceof Error ? e : new Error(String(e)) }))
      .then(settle);
    this.inflight.add(done);
    void done.finally(() => this.inflight.delete(done));
  }

  private async exportWithRetry(spans: ReadableSpan[]): Promise<ExportResult> {
    const { budgetMs, attemptTimeoutMs, initialBackoffMs, maxBackoffMs } = this.policy;
    const deadline = Date.now() + budgetMs;
    let backoff = initialBackoffMs;
    for (;;) {
      const result = await this.attempt(spans);
      if (result.code === RESULT_SUCCESS || !isRetryableExportError(result.error)) return result;
      this.lastError = errorText(result.error);
      // +-20% jitter so that agents on many nodes don't retry in lockstep after a collector restart.
      const wait = Math.min(backoff, maxBackoffMs) * (0.8 + Math.random() * 0.4);
      backoff *= 1.5;
      // Start another attempt only if it can finish (its gRPC deadline) within the budget:
      // then the batch always settles before the BatchSpanProcessor's own timeout.
      if (Date.now() + wait + attemptTimeoutMs > deadline) return result;
      await sleep(wait);
      this.retries++;
    }
  }

  /** One export by the inner exporter, which may throw or (in theory) call back twice. */
  private attempt(spans: ReadableSpan[]): Promise<ExportResult> {
    return new Promise<ExportResult>((resolve) => {
      try {
        this.inner.export(spans, resolve);
      } catch (e) {
        resolve({ code: RESULT_FAILED, error: e instanceof Error ? e : new Error(String(e)) });
      }
    });
  }

  async forceFlush(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Idempotent: also called by OtlpConnectionExporter, since the processor skips it when its final flush fails. */
  shutdown(): Promise<void> {
    this.shutdownOnce ??= (async () => {
      await this.forceFlush();
      await this.inner.shutdown();
    })();
    return this.shutdownOnce;
  }
}

/**
 * SpanProcessor in front of the BatchSpanProcessor that bounds what it holds.
 * The processor hands spans to the exporter synchronously when a batch starts
 * (our resource has no async attributes), so forwarded - received is exactly
 * its queue length; keeping that below maxQueueSize means it never drops.
 */
class QueueGate implements SpanProcessor {
  forwarded = 0;
  dropped = 0;
  closed = false;

  constructor(
    private readonly next: SpanProcessor,
    private readonly exporter: RetryingCountingExporter,
    private readonly maxQueueSize: number,
  ) {}

  onStart(): void {}

  /** Would the next span be dropped? record() asks first, so that a full queue costs no span building. */
  full(): boolean {
    return this.closed || this.forwarded - this.exporter.received >= this.maxQueueSize;
  }

  onEnd(span: ReadableSpan): void {
    if (this.full()) {
      this.dropped++;
      return;
    }
    this.forwarded++;
    this.next.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.next.forceFlush();
  }

  shutdown(): Promise<void> {
    this.closed = true;
    return this.next.shutdown();
  }
}

/** errno -> name, e.g. 111 -> 'ECONNREFUSED'; the first name wins for aliases (EAGAIN before EWOULDBLOCK). */
const ERRNO_NAMES: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>();
  for (const [name, value] of Object.entries(os.constants.errno)) if (!m.has(value)) m.set(value, name);
  return m;
})();

export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

/** How often span times re-read the wall clock's offset: a step shows within this long. */
const CLOCK_SYNC_MS = 10_000;

export class OtlpConnectionExporter {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly exporter: RetryingCountingExporter;
  private readonly gate: QueueGate;
  private readonly clock = new MonotonicClock();
  private readonly clockSync = setInterval(() => this.clock.sync(), CLOCK_SYNC_MS).unref();
  /** records that failed before reaching the gate */
  private buildErrors = 0;
  private lastRecordError: string | undefined;
  private shutdownOnce: Promise<void> | undefined;

  constructor(opts: OtlpExporterOptions) {
    const maxQueueSize = Math.max(1, opts.maxQueueSize ?? 2048);
    const budgetMs = Math.max(1, opts.exportTimeoutMillis ?? 30_000);
    // A third of the budget per attempt (at most 10 s, the OTLP default) leaves room for retries.
    const attemptTimeoutMs = Math.max(1, Math.min(10_000, Math.floor(budgetMs / 3)));
    const otlp = new OTLPTraceExporter({ url: opts.endpoint, timeoutMillis: attemptTimeoutMs });
    this.exporter = new RetryingCountingExporter(otlp, { budgetMs, attemptTimeoutMs, initialBackoffMs: 500, maxBackoffMs: 5_000 });
    const batch = new BatchSpanProcessor({
      exporter: this.exporter,
      maxQueueSize,
      maxExportBatchSize: Math.max(1, Math.min(opts.maxExportBatchSize ?? 512, maxQueueSize)),
      scheduledDelayMillis: opts.scheduledDelayMillis ?? 5_000,
      // Our exporter settles within the budget; the processor's timeout is only a backstop.
      exportTimeoutMillis: budgetMs + 5_000,
    });
    this.gate = new QueueGate(batch, this.exporter, maxQueueSize);
    const resource = defaultResource().merge(
      resourceFromAttributes({ 'service.name': opts.serviceName ?? 'sockmesh-agent', 'service.instance.id': opts.instance }),
    );
    this.provider = new TracerProvider({ resource, spanProcessors: [this.gate] });
    this.tracer = this.provider.getTracer('sockmesh');
  }

  /** Hot path: builds and queues one span; never throws, never waits. Interim records make no span. */
  record(rec: Connection, labels: EdgeLabels): void {
    if (rec.kind === 'interim') return;
    if (this.gate.full()) {
      this.gate.dropped++;
      return;
    }
    let span: Span | undefined;
    try {
      span = this.build(rec, labels);
    } catch (e) {
      this.buildErrors++;
      this.lastRecordError = errorText(e);
      return;
    }
    try {
      span.end(this.clock.toHrTime(rec.startNs + rec.durationNs));
    } catch (e) {
      // Reaching here means a processor threw; whether the gate counted the span is unknown, so count nothing more.
      this.lastRecordError = errorText(e);
    }
  }

  private build(rec: Exclude<Connection, { kind: 'interim' }>, labels: EdgeLabels): Span {
    const client = rec.side === 'client';
    const server = client ? rec.vip ?? rec.remote : rec.local;
    const attributes: Attributes = {
      'network.transport': 'tcp',
      'network.type': rec.family === 6 ? 'ipv6' : 'ipv4',
      'network.peer.address': rec.remote.address,
      'network.peer.port': rec.remote.port,
      'network.local.address': rec.local.address,
      'network.local.port': rec.local.port,
      'server.address': server.address,
      'server.port': server.port,
      'sockmesh.workload': labels.workload,
      'sockmesh.bytes_sent': rec.bytesSent,
      'sockmesh.bytes_received': rec.bytesReceived,
      'sockmesh.retransmits': rec.retransmits,
      'sockmesh.srtt_us': rec.srttUs.last,
      'sockmesh.srtt_min_us': rec.srttUs.min,
      'sockmesh.srtt_max_us': rec.srttUs.max,
    };
    if (!client) {
      attributes['client.address'] = rec.remote.address;
      attributes['client.port'] = rec.remote.port;
    }
    // Empty labels mean "not service traffic": leave them out rather than send "".
    if (labels.service) attributes['sockmesh.service'] = labels.service;
    if (labels.backend) attributes['sockmesh.backend'] = labels.backend;
    // Only the client side measures SYN -> established.
    if (client && rec.kind === 'close') attributes['sockmesh.connect_latency_us'] = rec.connectUs;
    if (rec.kind === 'close') attributes['sockmesh.close_cause'] = rec.closeCause;
    if (rec.error !== 0) attributes['error.type'] = errnoName(rec.error);
    // The socket was closed while connecting (the application gave up): no errno, still an error.
    else if (rec.kind === 'connect_failed') attributes['error.type'] = 'connect_abandoned';

    const span = this.tracer.startSpan(
      labels.service ? `tcp ${labels.service}` : 'tcp',
      { kind: client ? SpanKind.CLIENT : SpanKind.SERVER, startTime: this.clock.toHrTime(rec.startNs), attributes, root: true },
      ROOT_CONTEXT,
    );
    // Semconv: a span with error.type has status Error. A connect that failed, or a
    // connection the socket closed with an error (reset, timeout), is one; FIN and
    // our own RST (no socket error) are not.
    if (rec.kind === 'connect_failed') {
      const why = rec.error !== 0 ? errnoName(rec.error) : 'the socket was closed before the handshake finished';
      span.setStatus({ code: SpanStatusCode.ERROR, message: `connect failed: ${why}` });
    } else if (rec.error !== 0) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: `${rec.closeCause}: ${errnoName(rec.error)}` });
    }
    return span;
  }

  stats(): OtlpExporterStats {
    const e = this.exporter;
    const dropped = this.gate.dropped + this.buildErrors;
    const s: OtlpExporterStats = {
      exported: e.exported,
      failed: e.failed,
      dropped,
      pending: this.gate.forwarded - e.exported - e.failed,
      retries: e.retries,
    };
    const lastError = e.lastError ?? this.lastRecordError;
    if (lastError !== undefined) s.lastError = lastError;
    return s;
  }

  /** Sends everything queued (retrying within the budget), then closes the gRPC channel. Idempotent. */
  shutdown(): Promise<void> {
    this.shutdownOnce ??= (async () => {
      clearInterval(this.clockSync);
      try {
        await this.provider.shutdown();
      } catch (e) {
        // The final flush failed: already counted as failed by the exporter.
        this.exporter.lastError ??= errorText(e);
      }
      // The BatchSpanProcessor skips exporter.shutdown() when its final flush rejects; ours is idempotent.
      await this.exporter.shutdown();
    })();
    return this.shutdownOnce;
  }
}
