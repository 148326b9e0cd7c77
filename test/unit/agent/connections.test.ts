/**
 * The agent's connections() and follow() without the kernel: an Agent that is
 * never started, its aggregator fed records directly over a Directory built
 * here (what a config apply would build). Checks the names attached to each
 * record and the filter semantics on those names.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from '../../../src/agent/agent';
import { createLogger } from '../../../src/agent/log';
import type { ConnectionFilter, NamedRecord } from '../../../src/agent/view';
import { defaultSettings } from '../../../src/config/settings';
import { Directory } from '../../../src/telemetry/directory';
import type { ConnectionRecord } from '../../../src/telemetry/record';
import { whole } from '../../helpers/records';

/** cgroups, services (per port) and backends of a small mesh, by id. */
function directory(): Directory {
  const d = new Directory();
  d.workloads.set(11, { namespace: 'default', name: 'client' });
  d.workloads.set(12, { namespace: 'shop', name: 'client' });
  d.workloads.set(13, { namespace: 'default', name: 'web' });
  d.workloads.set(14, { namespace: 'default', name: 'webapp' });
  d.services.set(1, { service: 'default/web', portName: 'http' });
  d.services.set(2, { service: 'default/web', portName: 'grpc' });
  d.services.set(3, { service: 'default/webapp', portName: 'http' });
  d.services.set(4, { service: 'shop/web', portName: 'http' });
  d.addBackend(21, { endpoint: '10.0.0.1:8080', labels: {}, serviceId: 1 });
  d.addBackend(22, { endpoint: '10.0.0.1:9090', labels: {}, serviceId: 2 });
  d.addBackend(23, { endpoint: '10.0.0.2:8080', labels: {}, serviceId: 3 });
  d.addBackend(24, { endpoint: '10.0.1.1:8080', labels: {}, serviceId: 4 });
  return d;
}

let cookie = 0n;

/** A client record (closed, or still open with `open`) of cgroup `cgroupId` to service/backend ids (0: no service). */
function rec(cgroupId: number, serviceId: number, backendId: number, open = false): ConnectionRecord {
  const base = {
    cookie: ++cookie, cgroupId, side: 'client', family: 4, local: { address: '10.0.0.9', port: 40000 }, remote: { address: '10.0.0.1', port: 8080 },
    ...(serviceId ? { vip: { address: '10.96.0.1', port: 80 } } : {}), serviceId, backendId, startNs: 1, durationNs: 2, bytesSent: 3, bytesReceived: 4,
    connectUs: 5, srttUs: { last: 6, min: 6, max: 6 }, retransmits: 0,
  } as const;
  return whole(open ? { ...base, kind: 'interim' } : { ...base, kind: 'close', closeCause: 'fin', error: 0 });
}

function agent(): Agent {
  const a = new Agent({ settings: defaultSettings('unit'), meshFile: '/nonexistent/mesh.yaml', log: createLogger('error', {}, () => undefined), watch: false });
  a.aggregator.setDirectory(directory());
  return a;
}

/** default/client -> default/web:http, shop/client -> default/web:grpc, default/web -> default/webapp:http, default/webapp -> shop/web:http, unknown cgroup, plain traffic. */
function feed(a: Agent): ConnectionRecord[] {
  const recs = [rec(11, 1, 21), rec(12, 2, 22), rec(13, 3, 23), rec(14, 4, 24), rec(99, 1, 21), rec(11, 0, 0)];
  for (const r of recs) a.aggregator.ingest(r);
  return recs;
}

const who = (rs: NamedRecord[]): string[] => rs.map((r) => `${r.labels.workload}>${r.labels.service || '-'}`);

test('connections(): every record carries its names; ids and counters unchanged', () => {
  const a = agent();
  const recs = feed(a);
  const all = a.connections({});
  assert.equal(all.length, recs.length);
  all.forEach((r, i) => {
    const { labels, time, ...rest } = r;
    assert.deepEqual(rest, recs[i], 'the record itself is untouched');
    assert.equal(labels.side, r.side);
    // Its event (start + duration on CLOCK_MONOTONIC, as the kernel's) on the wall clock: near boot here.
    const bootMs = Date.now() - Number(process.hrtime.bigint() / 1_000_000n); // CLOCK_MONOTONIC 0
    assert.ok(time && Math.abs(Date.parse(time) - bootMs) < 2000, `${time} near the boot time ${new Date(bootMs).toISOString()}`);
  });
  assert.deepEqual(all[0]!.labels, { side: 'client', workload: 'default/client', service: 'default/web:http', backend: '10.0.0.1:8080' });
  assert.deepEqual(all[4]!.labels, { side: 'client', workload: 'unknown', service: 'default/web:http', backend: '10.0.0.1:8080' });
  assert.deepEqual(all[5]!.labels, { side: 'client', workload: 'default/client', service: '', backend: '' });
  assert.ok(!('labels' in a.aggregator.recent()[0]!), 'the aggregator\'s own records are not modified');
});

test('connections(): workload filter is "ns/name" exactly, or a bare name in any namespace', () => {
  const a = agent();
  feed(a);
  const cases: [ConnectionFilter, string[]][] = [
    [{ workload: 'default/client' }, ['default/client>default/web:http', 'default/client>-']],
    [{ workload: 'shop/client' }, ['shop/client>default/web:grpc']],
    [{ workload: 'client' }, ['default/client>default/web:http', 'shop/client>default/web:grpc', 'default/client>-']],
    // not a prefix or suffix match: "web" is not "webapp", "default/web" is not "default/webapp"
    [{ workload: 'web' }, ['default/web>default/webapp:http']],
    [{ workload: 'default/web' }, ['default/web>default/webapp:http']],
    [{ workload: 'ent' }, []],
    [{ workload: 'default' }, []],
    [{ workload: 'other/client' }, []],
  ];
  for (const [filter, want] of cases) assert.deepEqual(who(a.connections(filter)), want, JSON.stringify(filter));
});

test('connections(): service filter is "ns/name" or a bare name in default, any port, never a prefix of another service', () => {
  const a = agent();
  feed(a);
  const web = ['default/client>default/web:http', 'shop/client>default/web:grpc', 'unknown>default/web:http'];
  const cases: [ConnectionFilter, string[]][] = [
    [{ service: 'default/web' }, web],
    [{ service: 'web' }, web],
    [{ service: 'shop/web' }, ['default/webapp>shop/web:http']],
    [{ service: 'webapp' }, ['default/web>default/webapp:http']],
    [{ service: 'default/we' }, []],
    [{ service: 'default' }, []],
    // both at once: and
    [{ service: 'web', workload: 'client' }, ['default/client>default/web:http', 'shop/client>default/web:grpc']],
    [{ service: 'web', workload: 'shop/client' }, ['shop/client>default/web:grpc']],
    [{ service: 'webapp', workload: 'client' }, []],
  ];
  for (const [filter, want] of cases) assert.deepEqual(who(a.connections(filter)), want, JSON.stringify(filter));
});

test('connections(): names follow the directory in force; ids it does not know read unknown', () => {
  const a = agent();
  feed(a);
  a.aggregator.setDirectory(new Directory());
  const all = a.connections({});
  assert.deepEqual(all[0]!.labels, { side: 'client', workload: 'unknown', service: 'unknown', backend: 'unknown' });
  assert.deepEqual(a.connections({ workload: 'client' }), []);
  assert.deepEqual(a.connections({ service: 'web' }), []);
});

test('follow(): named live records (interim ones too), with the same filter; unsubscribe stops them', () => {
  const a = agent();
  const byName: NamedRecord[] = [];
  const all: NamedRecord[] = [];
  const stop = a.follow({ workload: 'client', service: 'web' }, (r) => byName.push(r));
  a.follow({}, (r) => all.push(r));
  const recs = feed(a);
  a.aggregator.ingest(rec(12, 2, 22, true));
  assert.equal(all.length, recs.length + 1);
  assert.deepEqual(who(byName), ['default/client>default/web:http', 'shop/client>default/web:grpc', 'shop/client>default/web:grpc']);
  assert.equal(byName.at(-1)!.kind, 'interim');
  assert.deepEqual(byName.at(-1)!.labels, { side: 'client', workload: 'shop/client', service: 'default/web:grpc', backend: '10.0.0.1:9090' });
  const { labels: _l, time, ...bare } = byName[0]!;
  assert.deepEqual(bare, recs[0]);
  assert.equal(time, a.connections({})[0]!.time, 'the same time as listed');

  stop();
  a.aggregator.ingest(rec(11, 1, 21));
  assert.equal(byName.length, 3, 'unsubscribed');
  assert.equal(all.length, recs.length + 2);
});
