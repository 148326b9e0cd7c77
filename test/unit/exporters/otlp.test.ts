/**
 * OtlpConnectionExporter against a real gRPC OTLP receiver on loopback: what
 * arrives is decoded from the wire, and the exporter's counters are checked
 * against what the receiver actually got.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { OtlpConnectionExporter, errnoName, type OtlpExporterOptions } from '../../../src/exporters/otlp';
import { MonotonicClock } from '../../../src/telemetry/clock';
import type { Connection } from '../../../src/telemetry/record';
import type { EdgeLabels } from '../../../src/telemetry/aggregator';
import { OtlpReceiver, WireSpanKind, WireStatusCode, type ReceivedSpan } from '../../helpers/otlp-receiver';
import { freePort, waitFor } from '../../helpers/wait';

type RecordFields = Omit<Extract<Connection, { kind: 'interim' }>, 'kind'>;

const MS = 1_000_000;
/** Start of a test connection: 50 ms ago on CLOCK_MONOTONIC, a multiple of 1000 so sums stay exact doubles. */
function monoAgo(ms: number): number {
  return Math.floor(Number(process.hrtime.bigint()) / 1000) * 1000 - ms * MS;
}

function fields(over: Partial<RecordFields> = {}): RecordFields {
  return {
    cookie: 42n,
    cgroupId: 7,
    side: 'client',
    family: 4,
    local: { address: '10.0.0.5', port: 40001 },
    remote: { address: '10.0.1.9', port: 8080 },
    vip: { address: '10.96.0.10', port: 80 },
    serviceId: 3,
    backendId: 11,
    startNs: monoAgo(50),
    durationNs: 40 * MS,
    bytesSent: 1234,
    bytesReceived: 56789,
    connectUs: 87,
    srttUs: { last: 120, min: 90, max: 300 },
    retransmits: 2,
    ...over,
  };
}

const WEB: EdgeLabels = { side: 'client', workload: 'shop/frontend', service: 'shop/web:http', backend: '10.0.1.9:8080' };

function options(receiverOrEndpoint: OtlpReceiver | string, over: Partial<OtlpExporterOptions> = {}): OtlpExporterOptions {
  const endpoint = typeof receiverOrEndpoint === 'string' ? receiverOrEndpoint : receiverOrEndpoint.endpoint;
  return { endpoint, instance: 'node-a', scheduledDelayMillis: 50, exportTimeoutMillis: 4000, ...over };
}

function byPort(spans: ReceivedSpan[], port: number): ReceivedSpan {
  const s = spans.find((sp) => sp.attributes['network.local.port'] === BigInt(port));
  assert.ok(s, `span with local port ${port}`);
  return s;
}

/** Wall-clock ns of a CLOCK_MONOTONIC time, measured independently of the exporter. */
function wallNs(monoNs: number): bigint {
  const mono = process.hrtime.bigint();
  return BigInt(Date.now()) * BigInt(MS) - mono + BigInt(monoNs);
}

function assertNear(actual: bigint, expected: bigint, toleranceNs: bigint, what: string): void {
  const d = actual > expected ? actual - expected : expected - actual;
  assert.ok(d <= toleranceNs, `${what}: ${actual} is ${d} ns from ${expected}`);
}

/** Every span handed over is accounted for exactly once, and "exported" is what the receiver holds. */
function assertBooks(exp: OtlpConnectionExporter, receiver: OtlpReceiver | undefined, spans: number): void {
  const s = exp.stats();
  assert.equal(s.exported + s.failed + s.dropped + s.pending, spans, `books: ${JSON.stringify(s)}`);
  if (receiver) assert.equal(receiver.spans.length, s.exported, 'received = exported');
}

test('closed connections arrive as spans: names, kinds, times, attributes, resource', { timeout: 10_000 }, async (t) => {
  const receiver = await OtlpReceiver.start();
  t.after(() => receiver.close());
  const exp = new OtlpConnectionExporter(options(receiver, { serviceName: 'sockmesh-test' }));

  const client: Connection = { ...fields(), kind: 'close', closeCause: 'fin', error: 0 };
  const server: Connection = {
    ...fields({
      side: 'server', family: 6, vip: undefined, serviceId: 0, connectUs: 0,
      local: { address: 'fd00::2', port: 8443 }, remote: { address: 'fd00::1', port: 51000 },
      durationNs: 1_234_567_001, startNs: monoAgo(2000),
    }),
    kind: 'close', closeCause: 'rst_sent', error: 0,
  };
  const plain: Connection = {
    ...fields({ vip: undefined, serviceId: 0, backendId: 0, local: { address: '10.0.0.5', port: 40002 }, remote: { address: '1.1.1.1', port: 443 } }),
    kind: 'close', closeCause: 'fin', error: 0,
  };
  exp.record(client, WEB);
  exp.record(server, { side: 'server', workload: 'shop/web', service: 'shop/web:https', backend: '[fd00::2]:8443' });
  exp.record(plain, { side: 'client', workload: 'shop/frontend', service: '', backend: '' });

  await waitFor(() => receiver.spans.length >= 3, '3 spans at the receiver');
  await exp.shutdown();
  assert.equal(receiver.spans.length, 3);
  assert.deepEqual(exp.stats(), { exported: 3, failed: 0, dropped: 0, pending: 0, retries: 0 });

  const c = byPort(receiver.spans, 40001);
  assert.equal(c.name, 'tcp shop/web:http');
  assert.equal(c.kind, WireSpanKind.CLIENT);
  assert.equal(c.parentSpanId, '', 'a root span');
  assert.match(c.traceId, /^[0-9a-f]{32}$/);
  assert.deepEqual(c.status, { code: WireStatusCode.UNSET, message: '' });
  // Date.now() has ms resolution on both sides: allow a few ms; the duration is exact.
  assertNear(c.startTimeUnixNano, wallNs(client.startNs), 5n * BigInt(MS), 'client start');
  assert.equal(c.endTimeUnixNano - c.startTimeUnixNano, BigInt(client.durationNs));
  assert.deepEqual(c.attributes, {
    'network.transport': 'tcp',
    'network.type': 'ipv4',
    'network.peer.address': '10.0.1.9',
    'network.peer.port': 8080n,
    'network.local.address': '10.0.0.5',
    'network.local.port': 40001n,
    'server.address': '10.96.0.10', // the VIP the client dialled
    'server.port': 80n,
    'sockmesh.workload': 'shop/frontend',
    'sockmesh.service': 'shop/web:http',
    'sockmesh.backend': '10.0.1.9:8080',
    'sockmesh.close_cause': 'fin',
    'sockmesh.connect_latency_us': 87n,
    'sockmesh.srtt_us': 120n,
    'sockmesh.srtt_min_us': 90n,
    'sockmesh.srtt_max_us': 300n,
    'sockmesh.bytes_sent': 1234n,
    'sockmesh.bytes_received': 56789n,
    'sockmesh.retransmits': 2n,
  });
  assert.equal(c.resource['service.name'], 'sockmesh-test');
  assert.equal(c.resource['service.instance.id'], 'node-a');
  assert.equal(c.scope.name, 'sockmesh');

  const s = byPort(receiver.spans, 8443);
  assert.equal(s.name, 'tcp shop/web:https');
  assert.equal(s.kind, WireSpanKind.SERVER);
  assertNear(s.startTimeUnixNano, wallNs(server.startNs), 5n * BigInt(MS), 'server start');
  assert.equal(s.endTimeUnixNano - s.startTimeUnixNano, 1_234_567_001n);
  assert.deepEqual(s.attributes, {
    'network.transport': 'tcp',
    'network.type': 'ipv6',
    'network.peer.address': 'fd00::1',
    'network.peer.port': 51000n,
    'network.local.address': 'fd00::2',
    'network.local.port': 8443n,
    'server.address': 'fd00::2', // server side: ourselves
    'server.port': 8443n,
    'client.address': 'fd00::1',
    'client.port': 51000n,
    'sockmesh.workload': 'shop/web',
    'sockmesh.service': 'shop/web:https',
    'sockmesh.backend': '[fd00::2]:8443',
    'sockmesh.close_cause': 'rst_sent',
    'sockmesh.srtt_us': 120n,
    'sockmesh.srtt_min_us': 90n,
    'sockmesh.srtt_max_us': 300n,
    'sockmesh.bytes_sent': 1234n,
    'sockmesh.bytes_received': 56789n,
    'sockmesh.retransmits': 2n,
  });

  const p = byPort(receiver.spans, 40002);
  assert.equal(p.name, 'tcp', 'no service: a bare name, not one per remote address');
  assert.equal(p.attributes['server.address'], '1.1.1.1', 'no VIP: the remote');
  assert.equal(p.attributes['sockmesh.service'], undefined);
  assert.equal(p.attributes['sockmesh.backend'], undefined);
});

test('a failed connect is an error span with error.type from errno; an error close too', { timeout: 10_000 }, async (t) => {
  const receiver = await OtlpReceiver.start();
  t.after(() => receiver.close());
  const exp = new OtlpConnectionExporter(options(receiver));
  const failed: Connection = {
    ...fields({ connectUs: 0, durationNs: 3 * MS, bytesSent: 0, bytesReceived: 0, srttUs: { last: 0, min: 0, max: 0 } }),
    kind: 'connect_failed', error: 111,
  };
  const reset: Connection = {
    ...fields({ local: { address: '10.0.0.5', port: 40003 } }),
    kind: 'close', closeCause: 'rst_received', error: 104,
  };
  // Closed by its application while connecting: no errno, still a failed connect.
  const abandoned: Connection = { ...failed, local: { address: '10.0.0.5', port: 40004 }, error: 0 };
  exp.record(failed, WEB);
  exp.record(reset, WEB);
  exp.record(abandoned, WEB);
  await exp.shutdown();

  assert.equal(receiver.spans.length, 3);
  const a = byPort(receiver.spans, 40004);
  assert.equal(a.status.code, WireStatusCode.ERROR);
  assert.equal(a.attributes['error.type'], 'connect_abandoned', 'semconv: an error span names its error');
  assert.match(a.status.message, /connect failed: the socket was closed before the handshake finished/);
  const f = byPort(receiver.spans, 40001);
  assert.equal(f.name, 'tcp shop/web:http');
  assert.equal(f.kind, WireSpanKind.CLIENT);
  assert.equal(f.status.code, WireStatusCode.ERROR);
  assert.match(f.status.message, /ECONNREFUSED/);
  assert.equal(f.attributes['error.type'], 'ECONNREFUSED');
  assert.equal(f.attributes['sockmesh.close_cause'], undefined, 'never closed');
  assert.equal(f.attributes['sockmesh.connect_latency_us'], undefined, 'never connected');
  assert.equal(f.endTimeUnixNano - f.startTimeUnixNano, 3_000_000n);

  const r = byPort(receiver.spans, 40003);
  assert.equal(r.status.code, WireStatusCode.ERROR);
  assert.equal(r.attributes['error.type'], 'ECONNRESET');
  assert.equal(r.attributes['sockmesh.close_cause'], 'rst_received');

  assert.equal(errnoName(110), 'ETIMEDOUT');
  assert.equal(errnoName(-111), 'ECONNREFUSED');
  assert.equal(errnoName(100_000), 'errno 100000');
});

test('interim records make no span', { timeout: 10_000 }, async (t) => {
  const receiver = await OtlpReceiver.start();
  t.after(() => receiver.close());
  const exp = new OtlpConnectionExporter(options(receiver));
  exp.record({ ...fields(), kind: 'interim' }, WEB);
  exp.record({ ...fields(), kind: 'interim' }, WEB);
  exp.record({ ...fields(), kind: 'close', closeCause: 'fin', error: 0 }, WEB);
  await exp.shutdown();
  assert.equal(receiver.spans.length, 1);
  assert.equal(receiver.spans[0]?.attributes['sockmesh.close_cause'], 'fin');
  assert.deepEqual(exp.stats(), { exported: 1, failed: 0, dropped: 0, pending: 0, retries: 0 });
});

test('collector down at first, then up: the batch is retried and delivered', { timeout: 15_000 }, async (t) => {
  const port = await freePort();
  const exp = new OtlpConnectionExporter(options(`http://127.0.0.1:${port}`, { exportTimeoutMillis: 8000 }));
  for (let i = 0; i < 3; i++) exp.record({ ...fields({ local: { address: '10.0.0.5', port: 41000 + i } }), kind: 'close', closeCause: 'fin', error: 0 }, WEB);
  assert.deepEqual(exp.stats(), { exported: 0, failed: 0, dropped: 0, pending: 3, retries: 0 });

  // The first attempt (after scheduledDelayMillis) finds nobody listening.
  await waitFor(() => exp.stats().lastError !== undefined, 'a failed first attempt', 3000);
  const receiver = await OtlpReceiver.start(port);
  t.after(() => receiver.close());

  await waitFor(() => exp.stats().pending === 0, 'the batch to settle', 10_000);
  const s = exp.stats();
  assert.ok(s.retries >= 1, `retried: ${JSON.stringify(s)}`);
  assert.equal(s.exported, 3, `delivered after the collector came up: ${JSON.stringify(s)}`);
  assertBooks(exp, receiver, 3);
  await exp.shutdown();
  assertBooks(exp, receiver, 3);
});

test('collector never up: spans are counted failed once the budget is spent, and nothing hangs', { timeout: 10_000 }, async () => {
  const port = await freePort();
  const exp = new OtlpConnectionExporter(options(`http://127.0.0.1:${port}`, { exportTimeoutMillis: 1500 }));
  for (let i = 0; i < 5; i++) exp.record({ ...fields(), kind: 'close', closeCause: 'fin', error: 0 }, WEB);
  await waitFor(() => exp.stats().pending === 0, 'the batch to be given up', 5000);
  const s = exp.stats();
  assert.equal(s.failed, 5);
  assert.equal(s.exported, 0);
  assert.ok(s.retries >= 1, 'UNAVAILABLE is retried before giving up');
  assert.match(s.lastError ?? '', /UNAVAILABLE|ECONNREFUSED|connect/i);
  assertBooks(exp, undefined, 5);
  const t0 = Date.now();
  await exp.shutdown();
  assert.ok(Date.now() - t0 < 1000, 'nothing left to flush');
});

test('transient gRPC errors are retried; non-retryable ones fail the batch at once', { timeout: 10_000 }, async (t) => {
  const receiver = await OtlpReceiver.start();
  t.after(() => receiver.close());

  receiver.failNext(2, grpc.status.UNAVAILABLE);
  const exp = new OtlpConnectionExporter(options(receiver, { exportTimeoutMillis: 6000 }));
  exp.record({ ...fields(), kind: 'close', closeCause: 'fin', error: 0 }, WEB);
  await waitFor(() => exp.stats().pending === 0, 'the batch to settle', 6000);
  assert.equal(receiver.requests, 3, 'two failures, then the one that was accepted');
  assert.deepEqual(exp.stats().exported, 1);
  assert.equal(exp.stats().retries, 2);
  assertBooks(exp, receiver, 1);

  receiver.failNext(1, grpc.status.INVALID_ARGUMENT);
  exp.record({ ...fields(), kind: 'close', closeCause: 'fin', error: 0 }, WEB);
  await waitFor(() => exp.stats().pending === 0, 'the batch to settle', 3000);
  assert.equal(receiver.requests, 4, 'not retried');
  const s = exp.stats();
  assert.equal(s.failed, 1);
  assert.equal(s.retries, 2);
  assert.match(s.lastError ?? '', /injected failure/);
  assertBooks(exp, receiver, 2);
  await exp.shutdown();
});

test('a full queue drops spans and counts them; the processor itself drops none', { timeout: 10_000 }, async (t) => {
  const receiver = await OtlpReceiver.start();
  t.after(() => receiver.close());
  const exp = new OtlpConnectionExporter(options(receiver, { maxQueueSize: 4, scheduledDelayMillis: 60_000 }));
  // A full batch (4) is handed to the exporter at once; 4 more fill the queue again while it is sent; 2 are dropped.
  for (let i = 0; i < 10; i++) exp.record({ ...fields({ local: { address: '10.0.0.5', port: 42000 + i } }), kind: 'close', closeCause: 'fin', error: 0 }, WEB);
  assert.equal(exp.stats().dropped, 2);
  assert.equal(exp.stats().pending, 8);
  await exp.shutdown();
  assert.deepEqual(exp.stats(), { exported: 8, failed: 0, dropped: 2, pending: 0, retries: 0 });
  assertBooks(exp, receiver, 10);
  const ports = receiver.spans.map((s) => Number(s.attributes['network.local.port'])).sort((a, b) => a - b);
  assert.deepEqual(ports, [42000, 42001, 42002, 42003, 42004, 42005, 42006, 42007], 'the newest were dropped');
});

test('shutdown flushes what is queued, is idempotent, and later records are dropped without throwing', { timeout: 10_000 }, async (t) => {
  const receiver = await OtlpReceiver.start();
  t.after(() => receiver.close());
  const exp = new OtlpConnectionExporter(options(receiver, { scheduledDelayMillis: 60_000 }));
  for (let i = 0; i < 5; i++) exp.record({ ...fields(), kind: 'close', closeCause: 'fin', error: 0 }, WEB);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(receiver.spans.length, 0, 'still batched');
  await Promise.all([exp.shutdown(), exp.shutdown()]);
  await exp.shutdown();
  assert.equal(receiver.spans.length, 5);
  exp.record({ ...fields(), kind: 'close', closeCause: 'fin', error: 0 }, WEB);
  assert.deepEqual(exp.stats(), { exported: 5, failed: 0, dropped: 1, pending: 0, retries: 0 });
  assertBooks(exp, receiver, 6);
});

test('record never throws: a bad record is counted dropped, bad times are clamped', { timeout: 10_000 }, async (t) => {
  const receiver = await OtlpReceiver.start();
  t.after(() => receiver.close());
  const exp = new OtlpConnectionExporter(options(receiver));
  const hostile = { ...WEB };
  Object.defineProperty(hostile, 'workload', { get(): string { throw new Error('directory gone'); } });
  assert.doesNotThrow(() => exp.record({ ...fields(), kind: 'close', closeCause: 'fin', error: 0 }, hostile));
  assert.equal(exp.stats().dropped, 1);
  assert.match(exp.stats().lastError ?? '', /directory gone/);
  exp.record({ ...fields({ startNs: Number.NaN }), kind: 'close', closeCause: 'fin', error: 0 }, WEB);
  await exp.shutdown();
  assert.equal(receiver.spans.length, 1);
  assert.equal(exp.stats().exported, 1);
});

test('span times follow a step of the wall clock once the clock syncs again', () => {
  let wall = Date.now();
  const clock = new MonotonicClock(() => wall);
  const mono = Number(process.hrtime.bigint());
  const before = clock.toHrTime(mono);
  wall += 3_600_000; // NTP's first sync on a node that booted an hour behind
  assert.deepEqual(clock.toHrTime(mono), before, 'one offset until it is taken again');
  clock.sync();
  const after = clock.toHrTime(mono);
  const sec = after[0] - before[0] + (after[1] - before[1]) / 1e9;
  assert.ok(Math.abs(sec - 3600) < 0.05, `the same instant an hour later on the wall clock, got ${sec} s`);
});
