import test from 'node:test';
import assert from 'node:assert/strict';
import { Aggregator } from '../../../src/telemetry/aggregator';
import { Directory } from '../../../src/telemetry/directory';
import { opens, type Connection, type ConnectionRecord } from '../../../src/telemetry/record';
import { after, whole } from '../../helpers/records';

let cookie = 1n;
function conn(over: Partial<Connection> & { side: 'client' | 'server' }): Connection {
  return {
    kind: 'close', closeCause: 'fin', error: 0, cookie: cookie++, cgroupId: 11, family: 4,
    local: { address: '10.0.0.1', port: 40000 }, remote: { address: '10.0.0.2', port: 8080 },
    serviceId: 0, backendId: 0, startNs: 0, durationNs: 1000, bytesSent: 10, bytesReceived: 20, connectUs: 0,
    srttUs: { last: 5, min: 5, max: 5 }, retransmits: 0, ...over,
  } as Connection;
}

/** A connection's only record: closed, all of it new. */
function close(over: Partial<Connection> & { side: 'client' | 'server' }): ConnectionRecord {
  return whole(conn(over));
}

function directory(): Directory {
  const d = new Directory();
  d.workloads.set(11, { name: 'web', namespace: 'shop' });
  d.workloads.set(12, { name: 'api', namespace: 'shop' });
  d.services.set(7, { service: 'shop/api', portName: 'http' });
  d.addBackend(70, { endpoint: '10.0.0.2:8080', labels: {}, serviceId: 7 });
  d.addBackend(71, { endpoint: '10.0.0.3:8080', labels: {}, serviceId: 7 });
  return d;
}

test('records of one side, workload, service and backend share one edge; any difference makes another', () => {
  const agg = new Aggregator(directory());
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70 }));
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70 }));
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 71 }));
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70, cgroupId: 12 }));
  const edges = new Map(agg.edges().map((e) => [e.key, e.closed]));
  assert.deepEqual(Object.fromEntries(edges), {
    'client|shop/web|shop/api:http|10.0.0.2:8080': 2,
    'client|shop/web|shop/api:http|10.0.0.3:8080': 1,
    'client|shop/api|shop/api:http|10.0.0.2:8080': 1,
  });
});

test('server records without a VIP are attributed by their own endpoint, each endpoint apart', () => {
  const agg = new Aggregator(directory());
  const srv = (address: string, port: number): ConnectionRecord =>
    close({ side: 'server', cgroupId: 12, local: { address, port }, remote: { address: '10.0.0.1', port: 40000 } });
  agg.ingest(srv('10.0.0.2', 8080));
  agg.ingest(srv('10.0.0.2', 8080));
  agg.ingest(srv('10.0.0.3', 8080));
  agg.ingest(srv('10.0.0.2', 9090)); // no backend there: no service
  const edges = Object.fromEntries(agg.edges().map((e) => [e.key, e.closed]));
  assert.deepEqual(edges, {
    'server|shop/api|shop/api:http|10.0.0.2:8080': 2,
    'server|shop/api|shop/api:http|10.0.0.3:8080': 1,
    'server|shop/api||': 1,
  });
});

test('a record whose cgroup no one knows (a container already gone) is its parent\'s workload, else its grandparent\'s', () => {
  const d = directory();
  const asked: number[] = [];
  d.setWorkloadFallback((id) => (asked.push(id), id === 13 ? { name: 'job', namespace: 'batch' } : undefined));
  const agg = new Aggregator(d);
  const rec = (cgroupId: number, cgroupParentId: number, cgroupGrandparentId: number): ConnectionRecord =>
    ({ ...close({ side: 'client', cgroupId }), cgroupParentId, cgroupGrandparentId });
  agg.ingest(rec(901, 11, 1));   // a removed container of the pod whose cgroup is web's
  agg.ingest(rec(902, 903, 12)); // one level deeper below api's
  agg.ingest(rec(904, 13, 12));  // the parent found by the fallback (the index), before the grandparent
  agg.ingest(rec(12, 11, 1));    // a known cgroup is its own workload, whatever is above it
  agg.ingest(rec(905, 906, 907));
  agg.ingest(rec(908, 0, 0));    // a record of release 0.2: no ancestry
  const edges = Object.fromEntries(agg.edges().map((e) => [e.key, e.closed]));
  assert.deepEqual(edges, { 'client|shop/web||': 1, 'client|shop/api||': 2, 'client|batch/job||': 1, 'client|unknown||': 2 });
  assert.equal(agg.unattributed, 2, 'the connections opened under workload unknown, for status');
  agg.ingest(after(rec(905, 906, 907), rec(905, 906, 907)));
  assert.equal(agg.unattributed, 2, 'a later record of the same connection opens nothing');
  assert.ok(!asked.includes(0), 'no lookup for an absent ancestor');
});

test('a new directory re-resolves names: cached ids do not keep old names', () => {
  const agg = new Aggregator(directory());
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70 }));
  const d = directory();
  d.workloads.set(11, { name: 'web-v2', namespace: 'shop' });
  agg.setDirectory(d);
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70 }));
  assert.deepEqual(agg.edges().map((e) => e.key).sort(), [
    'client|shop/web-v2|shop/api:http|10.0.0.2:8080',
    'client|shop/web|shop/api:http|10.0.0.2:8080',
  ]);
});

test('an interim record and its close count a connection once; each listener call sees that record\'s delta', () => {
  const agg = new Aggregator(directory());
  const seen: { kind: string; opened: boolean; sent: number; received: number }[] = [];
  agg.onRecord((rec) => seen.push({ kind: rec.kind, opened: opens(rec), sent: rec.newBytesSent, received: rec.newBytesReceived }));
  const c = cookie++;
  const base = { side: 'client' as const, serviceId: 7, backendId: 70, cookie: c };
  const first = conn({ ...base, kind: 'interim', bytesSent: 10, bytesReceived: 100 });
  agg.ingest(whole(first));
  agg.ingest(after(conn({ ...base, bytesSent: 25, bytesReceived: 160 }), first));
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70, bytesSent: 5, bytesReceived: 6 }));
  assert.deepEqual(seen, [
    { kind: 'interim', opened: true, sent: 10, received: 100 },
    { kind: 'close', opened: false, sent: 15, received: 60 },
    { kind: 'close', opened: true, sent: 5, received: 6 },
  ]);
  const [edge] = agg.edges();
  assert.equal(edge!.opened, 2);
  assert.equal(edge!.closed, 2);
  assert.equal(edge!.bytesSent, 30);
  assert.equal(edge!.bytesReceived, 166);
});

test('a connection first reported before this process started adds only what is new, and is not opened twice', () => {
  // An agent restarted: the connection's earlier records went to the previous
  // process, whose counters Prometheus already has; the kernel says what is new.
  const agg = new Aggregator(directory());
  const base = { side: 'client' as const, serviceId: 7, backendId: 70, cookie: cookie++ };
  const before = conn({ ...base, kind: 'interim', bytesSent: 1000, bytesReceived: 5000, retransmits: 2 });
  agg.ingest(after(conn({ ...base, kind: 'interim', bytesSent: 1500, bytesReceived: 5100, retransmits: 3 }), before));
  const [edge] = agg.edges();
  assert.deepEqual([edge!.opened, edge!.bytesSent, edge!.bytesReceived, edge!.retransmits], [0, 500, 100, 1]);
});

test('the last-seen time is the one the caller read for its batch, else the clock now', () => {
  const agg = new Aggregator(directory());
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70 }), 1_700_000_000_000);
  assert.equal(agg.edges()[0]!.lastSeenMs, 1_700_000_000_000);
  const before = Date.now();
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70 }));
  const seen = agg.edges()[0]!.lastSeenMs;
  assert.ok(seen >= before && seen <= Date.now(), `last seen ${seen} is now`);
});

test('expire drops the edges without a record since the cutoff, tells its listeners, and a later record starts one again', () => {
  const agg = new Aggregator(directory());
  const told: string[][] = [];
  agg.onExpire((edges) => told.push(edges.map((e) => e.key)));
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70 }), 1000);
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 71 }), 1000);
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 71 }), 5000);
  assert.equal(agg.expire(1000), 0, 'last seen at the cutoff stays');
  assert.equal(agg.expire(2000), 1);
  assert.deepEqual(told, [['client|shop/web|shop/api:http|10.0.0.2:8080']]);
  assert.deepEqual(agg.edges().map((e) => [e.key, e.closed]), [['client|shop/web|shop/api:http|10.0.0.3:8080', 2]]);
  // Through the id cache, which must not hand back the dropped edge.
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70 }), 6000);
  const again = agg.edges().find((e) => e.key.endsWith('10.0.0.2:8080'))!;
  assert.deepEqual([again.closed, again.opened], [1, 1], 'counted from zero');
  assert.equal(agg.expire(2000), 0);
  assert.equal(told.length, 1, 'no call when nothing expired');
});

test('open connections: each one\'s latest interim record until its close; stale and overflowing ones go', () => {
  const agg = new Aggregator(directory(), { openLimit: 3 });
  const interim = (c: bigint, sent: number): ConnectionRecord =>
    whole(conn({ side: 'client', cookie: c, kind: 'interim', bytesSent: sent } as Partial<Connection> & { side: 'client' }));
  agg.ingest(interim(100n, 1), 1000);
  agg.ingest(interim(101n, 1), 1000);
  agg.ingest(interim(100n, 2), 2000); // reported again: its latest record, now the most recent
  assert.deepEqual(agg.open(0).map((r) => [r.cookie, r.bytesSent]), [[101n, 1], [100n, 2]]);
  // A later record of a connection reported before: not its first.
  agg.ingest(after(conn({ side: 'client', cookie: 101n } as Partial<Connection> & { side: 'client' }), { bytesSent: 1, bytesReceived: 20, retransmits: 0 }), 2100);
  assert.deepEqual(agg.open(0).map((r) => r.cookie), [100n], 'closed: no longer open');
  agg.ingest(after(conn({ side: 'client', cookie: 100n, kind: 'connect_failed', error: 111 } as Partial<Connection> & { side: 'client' }), { bytesSent: 2, bytesReceived: 20, retransmits: 0 }), 2200);
  assert.deepEqual(agg.open(0), []);
  for (const c of [1n, 2n, 3n, 4n]) agg.ingest(interim(c, 1), 3000);
  assert.deepEqual(agg.open(0).map((r) => r.cookie), [2n, 3n, 4n], 'bounded: the least recently reported goes first');
  agg.ingest(interim(4n, 2), 9000);
  assert.deepEqual(agg.open(5000).map((r) => r.cookie), [4n], 'not reported since the cutoff: its close was lost');
  assert.deepEqual(agg.open(0).map((r) => r.cookie), [4n], 'and dropped');
});

test('edges count as /metrics does: no negative deltas, no RTT from a connection without a sample', () => {
  const agg = new Aggregator(directory());
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70, srttUs: { last: 300, min: 300, max: 300 } }));
  agg.ingest(close({ side: 'client', serviceId: 7, backendId: 70, srttUs: { last: 0, min: 0, max: 0 } }));
  // Counters that went backwards for a cookie: a record whose totals are below its prior ones.
  agg.ingest(after(conn({ side: 'client', serviceId: 7, backendId: 70, bytesSent: 5, bytesReceived: 5, retransmits: 0, srttUs: { last: 0, min: 0, max: 0 } }), { bytesSent: 8, bytesReceived: 9, retransmits: 2 }));
  const [e] = agg.edges();
  assert.deepEqual([e!.closed, e!.srttUsSum, e!.srttUsCount], [3, 300, 1], 'the average RTT is over the connections that had one');
  assert.deepEqual([e!.bytesSent, e!.bytesReceived, e!.retransmits], [20, 40, 0], 'what the other two moved; nothing subtracted');
});
