import test from 'node:test';
import { VERSION } from '../../../src/version';
import assert from 'node:assert/strict';
import { register as globalRegister } from 'prom-client';
import { PrometheusExporter, type AgentMetricsSnapshot } from '../../../src/exporters/prometheus';
import { Aggregator } from '../../../src/telemetry/aggregator';
import { Directory } from '../../../src/telemetry/directory';
import type { Connection, ConnectionRecord } from '../../../src/telemetry/record';
import { after, whole } from '../../helpers/records';

// ---- fixtures: a directory with one workload, one service port, two backends ----

const FRONTEND_CG = 100;
const API_CG = 200;
const SVC = 1;
const B1 = 7;
const B2 = 8;

function directory(): Directory {
  const d = new Directory();
  d.workloads.set(FRONTEND_CG, { name: 'frontend', namespace: 'demo' });
  d.workloads.set(API_CG, { name: 'api', namespace: 'demo' });
  d.services.set(SVC, { service: 'demo/api', portName: 'http' });
  d.addBackend(B1, { endpoint: '10.0.0.7:8080', labels: {}, serviceId: SVC });
  d.addBackend(B2, { endpoint: '10.0.0.8:8080', labels: {}, serviceId: SVC });
  return d;
}

const CLIENT = { side: 'client', workload: 'demo/frontend', service: 'demo/api:http', backend: '10.0.0.7:8080' } as const;

interface Counters {
  bytesSent?: number;
  bytesReceived?: number;
  retransmits?: number;
  connectUs?: number;
  srttUs?: number;
  durationNs?: number;
}

/** A client connection frontend -> demo/api via its VIP, to backend B1 unless told. */
function base(cookie: bigint, c: Counters, backendId = B1) {
  return {
    cookie,
    cgroupId: FRONTEND_CG,
    side: 'client' as const,
    family: 4 as const,
    local: { address: '10.1.0.5', port: 40000 + Number(cookie) },
    remote: { address: backendId === B1 ? '10.0.0.7' : '10.0.0.8', port: 8080 },
    vip: { address: '10.96.0.10', port: 80 },
    serviceId: SVC,
    backendId,
    startNs: 1_000_000,
    durationNs: c.durationNs ?? 0,
    bytesSent: c.bytesSent ?? 0,
    bytesReceived: c.bytesReceived ?? 0,
    connectUs: c.connectUs ?? 0,
    srttUs: { last: c.srttUs ?? 0, min: c.srttUs ?? 0, max: c.srttUs ?? 0 },
    retransmits: c.retransmits ?? 0,
  };
}

/** What the kernel remembers per connection: the totals of its last record. */
const reported = new Map<bigint, Connection>();

/** The connection's next record, counted from its previous one as the kernel does. */
function next(c: Connection): ConnectionRecord {
  const prior = reported.get(c.cookie);
  if (c.kind === 'interim') reported.set(c.cookie, c);
  else reported.delete(c.cookie);
  return prior ? after(c, prior) : whole(c);
}

function interim(cookie: bigint, c: Counters, backendId = B1): ConnectionRecord {
  return next({ ...base(cookie, c, backendId), kind: 'interim' });
}

function close(cookie: bigint, c: Counters, cause: 'fin' | 'rst_sent' | 'rst_received' | 'timeout' | 'error' = 'fin', backendId = B1): ConnectionRecord {
  return next({ ...base(cookie, c, backendId), kind: 'close', closeCause: cause, error: 0 });
}

function failed(cookie: bigint, backendId = B1): ConnectionRecord {
  return next({ ...base(cookie, {}, backendId), kind: 'connect_failed', error: 111 });
}

function setup(): { agg: Aggregator; exp: PrometheusExporter } {
  const agg = new Aggregator(directory());
  // No process metrics: each set would add a GC observer and an event loop monitor per test.
  const exp = new PrometheusExporter({ defaultMetrics: false });
  exp.attach(agg);
  return { agg, exp };
}

// ---- a small parser for the text format, strict enough to catch malformed output ----

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `malformed sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/g;
    let consumed = 0;
    for (let l = re.exec(body); l; l = re.exec(body)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, ch: string) => (ch === 'n' ? '\n' : ch));
      consumed = re.lastIndex;
    }
    assert.equal(consumed, body.length, `malformed labels: ${line}`);
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** The value of the one sample with exactly these labels; undefined when absent. */
function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const hits = samples.filter((s) => s.name === name && sameLabels(s.labels, labels));
  assert.ok(hits.length <= 1, `${name}${JSON.stringify(labels)} appears ${hits.length} times`);
  return hits[0]?.value;
}

/** An edge's labels as its histograms carry them: without the backend. */
function hist(labels: Record<string, string>): Record<string, string> {
  const { backend: _b, ...rest } = labels;
  return rest;
}

function typeOf(text: string, name: string): string | undefined {
  return new RegExp(`^# TYPE ${name} (\\S+)$`, 'm').exec(text)?.[1];
}

/**
 * What a Prometheus server that scraped before sees: new series show zeros
 * in their first scrape (tested on its own below), so this scrapes twice.
 */
async function scrape(exp: PrometheusExporter): Promise<{ text: string; samples: Sample[] }> {
  await exp.metrics();
  const text = await exp.metrics();
  return { text, samples: parse(text) };
}

// ---- edge metrics ----

test('a new series is exposed at zero first, its counts from the next scrape: rate() sees its first connections', async () => {
  const { agg, exp } = setup();
  const opened = (text: string, labels: Record<string, string> = CLIENT): number | undefined => value(parse(text), 'sockmesh_connections_opened_total', labels);
  agg.ingest(close(1n, { bytesSent: 10, bytesReceived: 20, retransmits: 0, connectUs: 100 }));
  const first = await exp.metrics();
  assert.equal(opened(first), 0, 'the series exists, at zero');
  assert.equal(value(parse(first), 'sockmesh_connect_duration_seconds_count', hist(CLIENT)), 0, 'histograms too');
  assert.equal(value(parse(first), 'sockmesh_sent_bytes_total', CLIENT), 0);
  const second = await exp.metrics();
  assert.equal(opened(second), 1);
  assert.equal(value(parse(second), 'sockmesh_connect_duration_seconds_count', hist(CLIENT)), 1);
  // A known series counts at once; a new one (another backend) starts at zero again.
  agg.ingest(close(2n, { bytesSent: 10, bytesReceived: 20, retransmits: 0, connectUs: 100 }));
  agg.ingest(close(3n, { bytesSent: 10, bytesReceived: 20, retransmits: 0, connectUs: 100 }, 'fin', B2));
  const third = await exp.metrics();
  assert.equal(opened(third), 2);
  assert.equal(opened(third, { ...CLIENT, backend: '10.0.0.8:8080' }), 0);
  assert.equal(opened(await exp.metrics(), { ...CLIENT, backend: '10.0.0.8:8080' }), 1);
});


test('interim records then the close of the same connection count bytes, retransmits and the connection once', async () => {
  const { agg, exp } = setup();
  agg.ingest(interim(1n, { bytesSent: 100, bytesReceived: 200, retransmits: 1, connectUs: 250 }));
  agg.ingest(interim(1n, { bytesSent: 300, bytesReceived: 500, retransmits: 2, connectUs: 250 }));
  agg.ingest(close(1n, { bytesSent: 1000, bytesReceived: 2000, retransmits: 3, connectUs: 250, srttUs: 1500, durationNs: 2_000_000_000 }));
  const { samples } = await scrape(exp);
  assert.equal(value(samples, 'sockmesh_connections_opened_total', CLIENT), 1);
  assert.equal(value(samples, 'sockmesh_connections_closed_total', CLIENT), 1);
  assert.equal(value(samples, 'sockmesh_connections_failed_total', CLIENT), 0);
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', CLIENT), 1000);
  assert.equal(value(samples, 'sockmesh_received_bytes_total', CLIENT), 2000);
  assert.equal(value(samples, 'sockmesh_retransmits_total', CLIENT), 3);
  // connectUs rides on every record of the connection: observed once, when it opened.
  assert.equal(value(samples, 'sockmesh_connect_duration_seconds_count', hist(CLIENT)), 1);
  assert.equal(value(samples, 'sockmesh_connection_duration_seconds_count', hist(CLIENT)), 1);
  assert.equal(value(samples, 'sockmesh_srtt_seconds_count', hist(CLIENT)), 1);
  // The exporter agrees with the aggregator's own edge.
  const edge = agg.edges()[0]!;
  assert.deepEqual([edge.opened, edge.bytesSent, edge.bytesReceived, edge.retransmits], [1, 1000, 2000, 3]);
});

test('a scrape between interim records sees the running totals, and the next one only adds the rest', async () => {
  const { agg, exp } = setup();
  agg.ingest(interim(1n, { bytesSent: 100, bytesReceived: 10 }));
  let { samples } = await scrape(exp);
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', CLIENT), 100);
  assert.equal(value(samples, 'sockmesh_connections_opened_total', CLIENT), 1);
  assert.equal(value(samples, 'sockmesh_connections_closed_total', CLIENT), 0);
  agg.ingest(close(1n, { bytesSent: 150, bytesReceived: 10 }));
  ({ samples } = await scrape(exp));
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', CLIENT), 150);
  assert.equal(value(samples, 'sockmesh_received_bytes_total', CLIENT), 10);
  assert.equal(value(samples, 'sockmesh_connections_opened_total', CLIENT), 1);
  assert.equal(value(samples, 'sockmesh_connections_closed_total', CLIENT), 1);
});

test('several connections on one edge add up; another backend is its own series', async () => {
  const { agg, exp } = setup();
  agg.ingest(close(1n, { bytesSent: 10, bytesReceived: 1 }));
  agg.ingest(close(2n, { bytesSent: 20, bytesReceived: 2 }));
  agg.ingest(interim(3n, { bytesSent: 5 }));
  agg.ingest(close(4n, { bytesSent: 7, bytesReceived: 3 }, 'fin', B2));
  const { samples } = await scrape(exp);
  assert.equal(value(samples, 'sockmesh_connections_opened_total', CLIENT), 3);
  assert.equal(value(samples, 'sockmesh_connections_closed_total', CLIENT), 2);
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', CLIENT), 35);
  assert.equal(value(samples, 'sockmesh_received_bytes_total', CLIENT), 3);
  const b2 = { ...CLIENT, backend: '10.0.0.8:8080' };
  assert.equal(value(samples, 'sockmesh_connections_opened_total', b2), 1);
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', b2), 7);
});

test('a failed connect counts as failed, never as opened or closed', async () => {
  const { agg, exp } = setup();
  agg.ingest(failed(1n));
  agg.ingest(failed(2n));
  const { samples } = await scrape(exp);
  assert.equal(value(samples, 'sockmesh_connections_failed_total', CLIENT), 2);
  assert.equal(value(samples, 'sockmesh_connections_opened_total', CLIENT), 0);
  assert.equal(value(samples, 'sockmesh_connections_closed_total', CLIENT), 0);
  assert.equal(value(samples, 'sockmesh_connect_duration_seconds_count', hist(CLIENT)), 0);
  assert.equal(value(samples, 'sockmesh_connection_duration_seconds_count', hist(CLIENT)), 0);
});

test('resets by direction and timeouts come from the close cause; every direction is exposed, 0 included', async () => {
  const { agg, exp } = setup();
  agg.ingest(close(1n, {}, 'rst_sent'));
  agg.ingest(close(2n, {}, 'rst_received'));
  agg.ingest(close(3n, {}, 'rst_received'));
  agg.ingest(close(4n, {}, 'timeout'));
  agg.ingest(close(5n, {}, 'error'));
  agg.ingest(close(6n, {}, 'fin', B2));
  const { samples } = await scrape(exp);
  assert.equal(value(samples, 'sockmesh_resets_total', { ...CLIENT, direction: 'sent' }), 1);
  assert.equal(value(samples, 'sockmesh_resets_total', { ...CLIENT, direction: 'received' }), 2);
  assert.equal(value(samples, 'sockmesh_timeouts_total', CLIENT), 1);
  assert.equal(value(samples, 'sockmesh_connections_closed_total', CLIENT), 5);
  const b2 = { ...CLIENT, backend: '10.0.0.8:8080' };
  assert.equal(value(samples, 'sockmesh_resets_total', { ...b2, direction: 'sent' }), 0);
  assert.equal(value(samples, 'sockmesh_resets_total', { ...b2, direction: 'received' }), 0);
  assert.equal(value(samples, 'sockmesh_timeouts_total', b2), 0);
});

test('histograms: buckets are cumulative, in seconds, with exact sum and count', async () => {
  const { agg, exp } = setup();
  // connect 250µs and 3ms; srtt 1.5ms and none (0: no sample); lifetimes 2s and 40ms.
  agg.ingest(close(1n, { connectUs: 250, srttUs: 1500, durationNs: 2_000_000_000 }));
  agg.ingest(close(2n, { connectUs: 3000, srttUs: 0, durationNs: 40_000_000 }));
  const { text, samples } = await scrape(exp);
  const bucket = (name: string, le: string): number | undefined => value(samples, `${name}_bucket`, { ...hist(CLIENT), le });

  assert.equal(typeOf(text, 'sockmesh_connect_duration_seconds'), 'histogram');
  assert.equal(bucket('sockmesh_connect_duration_seconds', '0.00001'), 0);
  assert.equal(bucket('sockmesh_connect_duration_seconds', '0.0001'), 0);
  assert.equal(bucket('sockmesh_connect_duration_seconds', '0.00025'), 1, 'a bound is inclusive (le)');
  assert.equal(bucket('sockmesh_connect_duration_seconds', '0.0025'), 1);
  assert.equal(bucket('sockmesh_connect_duration_seconds', '0.005'), 2);
  assert.equal(bucket('sockmesh_connect_duration_seconds', '10'), 2);
  assert.equal(bucket('sockmesh_connect_duration_seconds', '+Inf'), 2);
  assert.equal(value(samples, 'sockmesh_connect_duration_seconds_count', hist(CLIENT)), 2);
  assert.ok(Math.abs(value(samples, 'sockmesh_connect_duration_seconds_sum', hist(CLIENT))! - 0.00325) < 1e-12);

  // 10µs..10s and 10µs..1s, as documented.
  const les = (name: string): string[] =>
    samples.filter((s) => s.name === `${name}_bucket` && s.labels.workload === CLIENT.workload).map((s) => s.labels.le!);
  assert.deepEqual(les('sockmesh_connect_duration_seconds').slice(0, 1), ['0.00001']);
  assert.deepEqual(les('sockmesh_connect_duration_seconds').slice(-2), ['10', '+Inf']);
  assert.deepEqual(les('sockmesh_srtt_seconds').slice(0, 1), ['0.00001']);
  assert.deepEqual(les('sockmesh_srtt_seconds').slice(-2), ['1', '+Inf']);

  // The 0 srtt is no sample, not a 0s RTT: only 1.5ms is observed.
  assert.equal(value(samples, 'sockmesh_srtt_seconds_count', hist(CLIENT)), 1);
  assert.equal(bucket('sockmesh_srtt_seconds', '0.001'), 0);
  assert.equal(bucket('sockmesh_srtt_seconds', '0.0025'), 1);
  assert.equal(value(samples, 'sockmesh_srtt_seconds_sum', hist(CLIENT)), 0.0015);

  assert.equal(value(samples, 'sockmesh_connection_duration_seconds_count', hist(CLIENT)), 2);
  assert.equal(bucket('sockmesh_connection_duration_seconds', '0.025'), 0);
  assert.equal(bucket('sockmesh_connection_duration_seconds', '0.05'), 1);
  assert.equal(bucket('sockmesh_connection_duration_seconds', '1'), 1);
  assert.equal(bucket('sockmesh_connection_duration_seconds', '2.5'), 2);
  assert.equal(value(samples, 'sockmesh_connection_duration_seconds_sum', hist(CLIENT)), 2.04);
});

test('names follow Prometheus conventions: counters end in _total, with TYPE counter', async () => {
  const { agg, exp } = setup();
  agg.ingest(close(1n, { bytesSent: 1 }));
  const { text } = await scrape(exp);
  for (const name of [
    'sockmesh_connections_opened_total', 'sockmesh_connections_closed_total', 'sockmesh_connections_failed_total',
    'sockmesh_sent_bytes_total', 'sockmesh_received_bytes_total', 'sockmesh_retransmits_total',
    'sockmesh_resets_total', 'sockmesh_timeouts_total',
  ]) {
    assert.equal(typeOf(text, name), 'counter', name);
    assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'));
  }
  for (const name of ['sockmesh_connect_duration_seconds', 'sockmesh_srtt_seconds', 'sockmesh_connection_duration_seconds']) {
    assert.equal(typeOf(text, name), 'histogram', name);
  }
});

test('a server-side record without a VIP is attributed to the service through its own endpoint', async () => {
  const { agg, exp } = setup();
  const rec: Connection = {
    ...base(9n, { bytesSent: 64, bytesReceived: 32, durationNs: 1_000_000 }),
    cgroupId: API_CG,
    side: 'server',
    local: { address: '10.0.0.7', port: 8080 },
    remote: { address: '10.1.0.5', port: 40009 },
    vip: undefined,
    serviceId: 0,
    backendId: 0,
    kind: 'close',
    closeCause: 'fin',
    error: 0,
  };
  agg.ingest(next(rec));
  const { samples } = await scrape(exp);
  const server = { side: 'server', workload: 'demo/api', service: 'demo/api:http', backend: '10.0.0.7:8080' };
  assert.equal(value(samples, 'sockmesh_connections_closed_total', server), 1);
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', server), 64);
  // The server side never measures a connect: no such series at all.
  assert.equal(value(samples, 'sockmesh_connect_duration_seconds_count', hist(server)), undefined);
  assert.equal(value(samples, 'sockmesh_connection_duration_seconds_count', hist(server)), 1);
});

test('label values with quotes, backslashes and newlines are escaped', async () => {
  const d = directory();
  d.workloads.set(FRONTEND_CG, { name: 'we"ird\\na\nme', namespace: 'demo' });
  const agg = new Aggregator(d);
  const exp = new PrometheusExporter({ defaultMetrics: false });
  exp.attach(agg);
  agg.ingest(close(1n, { bytesSent: 5 }));
  const { text, samples } = await scrape(exp);
  assert.match(text, /workload="demo\/we\\"ird\\\\na\\nme"/);
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', { ...CLIENT, workload: 'demo/we"ird\\na\nme' }), 5);
});

test('a directory change that renames an edge starts a new series; the old one keeps its totals', async () => {
  const { agg, exp } = setup();
  agg.ingest(close(1n, { bytesSent: 10 }));
  const d = directory();
  d.workloads.set(FRONTEND_CG, { name: 'frontend-v2', namespace: 'demo' });
  agg.setDirectory(d);
  agg.ingest(close(2n, { bytesSent: 20 }));
  const { samples } = await scrape(exp);
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', CLIENT), 10);
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', { ...CLIENT, workload: 'demo/frontend-v2' }), 20);
});

test('attaching the same aggregator twice is refused: it would count every record twice', () => {
  const { agg, exp } = setup();
  assert.throws(() => exp.attach(agg), /already attached/);
});

test('with nothing ingested, the metrics are declared but have no series (only the edge count, 0, and the build)', async () => {
  const { exp } = setup();
  const { text, samples } = await scrape(exp);
  assert.equal(typeOf(text, 'sockmesh_connections_opened_total'), 'counter');
  assert.deepEqual(samples, [
    { name: 'sockmesh_edges', labels: {}, value: 0 },
    { name: 'sockmesh_edges_expired_total', labels: {}, value: 0 },
    { name: 'sockmesh_build_info', labels: { version: VERSION, nodejs: process.versions.node }, value: 1 },
  ]);
});

test('an expired edge leaves every metric; the others stay; it comes back from zero', async () => {
  const { agg, exp } = setup();
  agg.ingest(close(1n, { bytesSent: 10, connectUs: 50, srttUs: 40, durationNs: 1e6 }), 1000);
  agg.ingest(close(2n, { bytesSent: 20 }, 'fin', B2), 9000);
  const b2 = { ...CLIENT, backend: '10.0.0.8:8080' };
  let { samples } = await scrape(exp);
  assert.equal(value(samples, 'sockmesh_edges', {}), 2);
  assert.equal(agg.expire(5000), 1);
  ({ samples } = await scrape(exp));
  const left = samples.filter((x) => x.labels.backend === CLIENT.backend);
  assert.deepEqual(left, [], 'no series of the expired edge, histograms included');
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', b2), 20);
  // The histograms are the service's, not the backend's: the edge still there keeps them, whole.
  assert.equal(value(samples, 'sockmesh_srtt_seconds_count', hist(CLIENT)), 1, 'the expired edge\'s one RTT sample included');
  assert.equal(value(samples, 'sockmesh_edges', {}), 1);
  assert.equal(value(samples, 'sockmesh_edges_expired_total', {}), 1);
  agg.ingest(close(3n, { bytesSent: 3 }), 10_000);
  ({ samples } = await scrape(exp));
  assert.equal(value(samples, 'sockmesh_sent_bytes_total', CLIENT), 3, 'from zero: rate() reads it as a reset');
  // The last edge of a service gone, its histograms go too; back, they start from zero.
  assert.equal(agg.expire(20_000), 2);
  ({ samples } = await scrape(exp));
  assert.deepEqual(samples.filter((x) => x.name.startsWith('sockmesh_srtt_seconds')), []);
  agg.ingest(close(4n, { bytesSent: 3, connectUs: 70 }), 30_000);
  ({ samples } = await scrape(exp));
  assert.equal(value(samples, 'sockmesh_connect_duration_seconds_count', hist(CLIENT)), 1);
});

test('histograms are per side, workload and service: every backend of a service adds to the same series', async () => {
  const { agg, exp } = setup();
  agg.ingest(close(1n, { connectUs: 100 }));
  agg.ingest(close(2n, { connectUs: 300 }, 'fin', B2));
  const { samples } = await scrape(exp);
  assert.deepEqual(samples.filter((x) => x.name === 'sockmesh_connect_duration_seconds_count').map((x) => [x.labels, x.value]), [[hist(CLIENT), 2]]);
  assert.ok(samples.filter((x) => x.name.startsWith('sockmesh_connect_duration_seconds')).every((x) => !('backend' in x.labels)));
  assert.equal(samples.filter((x) => x.name === 'sockmesh_connections_opened_total').length, 2, 'counters keep the backend');
});

// ---- agent metrics ----

function snapshot(over: Partial<AgentMetricsSnapshot> = {}): AgentMetricsSnapshot {
  return {
    records: 1234,
    ringDropped: 5,
    decodeErrors: 1,
    openConnections: 17,
    services: 3,
    workloads: 4,
    configRejected: false,
    verdicts: [
      { service: 'demo/api', verdict: 'translated', count: 40 },
      { service: 'demo/api', verdict: 'no_backend', count: 2 },
      { service: 'demo/db', verdict: 'translated', count: 9 },
    ],
    programs: [],
    ...over,
  };
}

test('agent metrics: the collector is read once per scrape and its current values are exposed', async () => {
  const { exp } = setup();
  let calls = 0;
  let current = snapshot();
  exp.setAgentCollector(() => {
    calls++;
    return current;
  });
  // A new verdict series shows 0 in its first scrape (the kernel makes it at its first connect).
  const first = parse(await exp.metrics());
  assert.equal(value(first, 'sockmesh_connect_verdicts_total', { service: 'demo/api', verdict: 'no_backend' }), 0);
  assert.equal(value(first, 'sockmesh_ring_records_total', {}), 1234, 'agent-wide counters live as long as the agent');
  let { text, samples } = await scrape(exp);
  assert.equal(calls, 3);
  assert.equal(value(samples, 'sockmesh_ring_records_total', {}), 1234);
  assert.equal(value(samples, 'sockmesh_ring_dropped_total', {}), 5);
  assert.equal(value(samples, 'sockmesh_record_decode_errors_total', {}), 1);
  assert.equal(value(samples, 'sockmesh_open_connections', {}), 17);
  assert.equal(value(samples, 'sockmesh_services', {}), 3);
  assert.equal(value(samples, 'sockmesh_workloads', {}), 4);
  assert.equal(value(samples, 'sockmesh_config_rejected', {}), 0);
  assert.equal(value(samples, 'sockmesh_connect_verdicts_total', { service: 'demo/api', verdict: 'translated' }), 40);
  assert.equal(value(samples, 'sockmesh_connect_verdicts_total', { service: 'demo/api', verdict: 'no_backend' }), 2);
  assert.equal(value(samples, 'sockmesh_connect_verdicts_total', { service: 'demo/db', verdict: 'translated' }), 9);
  for (const c of ['sockmesh_ring_records_total', 'sockmesh_ring_dropped_total', 'sockmesh_record_decode_errors_total', 'sockmesh_connect_verdicts_total']) {
    assert.equal(typeOf(text, c), 'counter', c);
  }
  for (const g of ['sockmesh_open_connections', 'sockmesh_services', 'sockmesh_workloads', 'sockmesh_config_rejected']) assert.equal(typeOf(text, g), 'gauge', g);
  assert.equal(value(samples, 'sockmesh_config_applied_timestamp_seconds', {}), 0, 'nothing applied yet');
  assert.deepEqual(samples.filter((x) => x.name === 'sockmesh_build_info').map((x) => [x.labels.version, x.value]), [[VERSION, 1]]);
  // OTLP off, bpfStats off: the metrics exist but have no series (not a misleading 0).
  assert.equal(samples.filter((s) => s.name.startsWith('sockmesh_otlp_')).length, 0);
  assert.equal(samples.filter((s) => s.name.startsWith('sockmesh_bpf_program_')).length, 0);

  // Absolute values, not increments: the next scrape shows the new totals, and
  // a service gone from the verdicts is gone from the output.
  current = snapshot({
    records: 2000, configRejected: true, openConnections: 4, configAppliedAtMs: 1_800_000_000_500,
    verdicts: [{ service: 'demo/api', verdict: 'translated', count: 41 }],
    otlp: { endpoint: 'http://127.0.0.1:4317', exported: 90, failed: 2, dropped: 1 },
    programs: [{ hook: 'connect4', runs: 1000, runNs: 1_500_000 }, { hook: 'sockops', runs: 22_000, runNs: 3_000_000 }],
  });
  ({ text, samples } = await scrape(exp));
  assert.equal(value(samples, 'sockmesh_config_applied_timestamp_seconds', {}), 1_800_000_000.5);
  assert.equal(value(samples, 'sockmesh_bpf_program_runs_total', { hook: 'sockops' }), 22_000);
  assert.equal(value(samples, 'sockmesh_bpf_program_run_seconds_total', { hook: 'connect4' }), 0.0015, 'seconds, from ns');
  assert.equal(typeOf(text, 'sockmesh_bpf_program_run_seconds_total'), 'counter');
  assert.equal(calls, 5);
  assert.equal(value(samples, 'sockmesh_ring_records_total', {}), 2000);
  assert.equal(value(samples, 'sockmesh_open_connections', {}), 4);
  assert.equal(value(samples, 'sockmesh_config_rejected', {}), 1);
  assert.equal(value(samples, 'sockmesh_connect_verdicts_total', { service: 'demo/api', verdict: 'translated' }), 41);
  assert.equal(value(samples, 'sockmesh_connect_verdicts_total', { service: 'demo/db', verdict: 'translated' }), undefined);
  const ep = { endpoint: 'http://127.0.0.1:4317' };
  assert.equal(value(samples, 'sockmesh_otlp_exported_total', ep), 90);
  assert.equal(value(samples, 'sockmesh_otlp_failed_total', ep), 2);
  assert.equal(value(samples, 'sockmesh_otlp_dropped_total', ep), 1);
  assert.equal(typeOf(text, 'sockmesh_otlp_exported_total'), 'counter');
});

test('without an agent collector there are no agent metrics at all', async () => {
  const { exp } = setup();
  const { text } = await scrape(exp);
  assert.doesNotMatch(text, /sockmesh_ring_|sockmesh_services|sockmesh_workloads|sockmesh_config_rejected|sockmesh_connect_verdicts/);
});

test('a collector reporting a negative or non-finite count fails the scrape, naming the metric', async () => {
  const { exp } = setup();
  exp.setAgentCollector(() => snapshot({ ringDropped: -1 }));
  await assert.rejects(exp.metrics(), /sockmesh_ring_dropped_total must be a finite number >= 0, got -1/);
  exp.setAgentCollector(() => snapshot({ verdicts: [{ service: 'demo/api', verdict: 'translated', count: Number.NaN }] }));
  await assert.rejects(exp.metrics(), /sockmesh_connect_verdicts_total .* got NaN/);
  // The exporter recovers once the values are sane again.
  exp.setAgentCollector(() => snapshot());
  const { samples } = await scrape(exp);
  assert.equal(value(samples, 'sockmesh_ring_dropped_total', {}), 5);
});

// ---- registry ownership and process metrics ----

test('process metrics go to the exporter\'s own registry, prefixed sockmesh_agent_; the global registry stays empty', async () => {
  const exp = new PrometheusExporter();
  const text = await exp.metrics();
  assert.match(text, /^sockmesh_agent_process_cpu_user_seconds_total \S+$/m);
  assert.match(text, /^sockmesh_agent_nodejs_heap_size_total_bytes \S+$/m);
  assert.equal(exp.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(await globalRegister.metrics(), '\n');
  assert.equal(globalRegister.getMetricsAsArray().length, 0);
});

test('two exporters do not share series', async () => {
  const a = setup();
  const b = setup();
  a.agg.ingest(close(1n, { bytesSent: 10 }));
  b.agg.ingest(close(1n, { bytesSent: 99 }));
  assert.equal(value((await scrape(a.exp)).samples, 'sockmesh_sent_bytes_total', CLIENT), 10);
  assert.equal(value((await scrape(b.exp)).samples, 'sockmesh_sent_bytes_total', CLIENT), 99);
});
