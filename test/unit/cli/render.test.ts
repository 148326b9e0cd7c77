import test from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { errnoName, hostPort, humanAge, humanBytes, humanDuration, humanMicros, humanShare } from '../../../src/cli/render/format';
import { OUTPUT_FORMATS, plain, toJson } from '../../../src/cli/render/output';
import { StreamTable, renderFields, renderTable } from '../../../src/cli/render/table';
import { renderStatus } from '../../../src/cli/render/status';
import { renderServices } from '../../../src/cli/render/services';
import { renderBackends } from '../../../src/cli/render/backends';
import { ConnectionStream, renderConnections, timeOfDay } from '../../../src/cli/render/connections';
import { renderEdges } from '../../../src/cli/render/edges';
import { watchFrame } from '../../../src/cli/commands/edges';
import { BACKENDS, CLIENT_LABELS, EDGES, NAMED_RECORDS, RECORD_TIME, SERVICES, STATUS, STATUS_MINIMAL, named, record } from '../api/fake-view';

const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');

/** Cells of a rendered row, split at the header's column starts. */
function cells(header: string, row: string): string[] {
  const starts = [...header.matchAll(/\S+/g)].map((m) => m.index);
  return starts.map((s, i) => row.slice(s, starts[i + 1] ?? undefined).trim());
}

// ---- humanized values -------------------------------------------------------

test('humanBytes: bytes below 1 KiB, one decimal below 10 units, binary units', () => {
  assert.deepEqual(
    [0, 1023, 1024, 1536, 10 * 1024, 3 * 1024 * 1024, 5.5 * 1024 ** 3, 2 * 1024 ** 4].map(humanBytes),
    ['0B', '1023B', '1.0KiB', '1.5KiB', '10KiB', '3.0MiB', '5.5GiB', '2.0TiB'],
  );
});

test('humanDuration: ns to days, at reading precision', () => {
  const cases: [number, string][] = [
    [0, '0ns'], [999, '999ns'], [1_500, '1.5µs'], [12_000, '12µs'], [1_500_000, '1.5ms'], [250_000_000, '250ms'],
    [1_500_000_000, '1.5s'], [59e9, '59s'], [60e9, '1m'], [125e9, '2m5s'], [3_600e9, '1h'], [3 * 3_600e9 + 12 * 60e9, '3h12m'],
    [86_400e9, '1d'], [2 * 86_400e9 + 3 * 3_600e9, '2d3h'],
  ];
  for (const [ns, want] of cases) assert.equal(humanDuration(ns), want, `${ns} ns`);
  assert.equal(humanMicros(0), '-', '0 µs means not measured');
  assert.equal(humanMicros(150), '150µs');
});

test('humanAge, humanShare, errnoName, hostPort', () => {
  const now = Date.parse('2024-05-01T13:12:00Z');
  assert.equal(humanAge('2024-05-01T10:00:00Z', now), '3h12m');
  assert.equal(humanAge('2024-05-01T14:00:00Z', now), '0ns', 'a clock skewed into the future is not negative');
  assert.equal(humanAge('yesterday', now), 'yesterday');
  assert.equal(humanShare(2 / 3), '66.7%');
  assert.equal(errnoName(111), 'ECONNREFUSED');
  assert.equal(errnoName(-104), 'ECONNRESET');
  assert.equal(errnoName(99999), 'errno 99999');
  assert.equal(hostPort({ address: '10.0.0.1', port: 80 }), '10.0.0.1:80');
  assert.equal(hostPort({ address: 'fd00::1', port: 80 }), '[fd00::1]:80');
});

// ---- tables -----------------------------------------------------------------------

test('renderTable: columns padded to the widest cell, three spaces apart, no trailing blanks', () => {
  const out = renderTable(['NAME', 'X', 'LAST'], [['a', 'long-cell', ''], ['longer-name', 'b', 'z']]);
  assert.equal(out, ['NAME          X           LAST', 'a             long-cell', 'longer-name   b           z', ''].join('\n'));
  assert.equal(renderTable(['A', 'B'], []), 'A   B\n');
});

test('StreamTable: widths fixed by the header, first rows and minimums; later rows reuse them', () => {
  const t = new StreamTable(['A', 'BB', 'C'], [['xxxx', 'y', 'z']], [0, 5]);
  assert.equal(t.head(), 'A      BB      C\n');
  assert.equal(t.row(['1', '2', '3']), '1      2       3\n');
  // Too wide for its column: the rest of the row moves right, nothing is cut.
  assert.equal(t.row(['123456', '2', '3']), '123456   2       3\n');
});

test('renderFields: aligned values, continuation lines under the value', () => {
  assert.equal(renderFields([['A', '1'], ['Longer', 'x\ny']]), 'A:       1\nLonger:  x\n         y\n');
});

// ---- resources -----------------------------------------------------------------------

test('every renderer handles every format', () => {
  for (const f of OUTPUT_FORMATS) {
    for (const out of [renderServices(f, SERVICES), renderBackends(f, BACKENDS['default/web']!), renderConnections(f, NAMED_RECORDS), renderStatus(f, STATUS)]) {
      assert.ok(out.endsWith('\n') && out.length > 10, `${f}: ${out}`);
    }
  }
});

test('services: table is compact, wide adds port names/targets and verdicts', () => {
  const t = lines(renderServices('table', SERVICES));
  assert.match(t[0]!, /^NAMESPACE\s+NAME\s+VIPS\s+PORTS\s+BACKENDS$/);
  assert.deepEqual(cells(t[0]!, t[1]!), ['default', 'web', '10.96.0.10,fd00::10', '80/TCP,53/UDP,81/TCP', '3']);
  assert.deepEqual(cells(t[0]!, t[2]!), ['shop', 'cart', '-', '-', '0']);
  const w = lines(renderServices('wide', SERVICES));
  assert.match(w[0]!, /PORTS\s+BACKENDS\s+VERDICTS$/);
  assert.deepEqual(cells(w[0]!, w[1]!).slice(3), ['http:80->8080/TCP,dns:53->5353/UDP,admin:81->admin/TCP', '3', 'no_backend=4,rewritten=1200']);
});

test('services: json and yaml are the full objects in { items }', () => {
  assert.deepEqual(JSON.parse(renderServices('json', SERVICES)), { items: SERVICES });
  assert.deepEqual(YAML.parse(renderServices('yaml', SERVICES)), { items: SERVICES });
});

test('backends: share as a percentage; wide adds the service and sorted labels', () => {
  const list = BACKENDS['default/web']!;
  const t = lines(renderBackends('table', list));
  assert.match(t[0]!, /^PORT\s+ENDPOINT\s+WEIGHT\s+SHARE\s+RECENT\s+CONNECTIONS\s+FAILED$/);
  assert.deepEqual(cells(t[0]!, t[1]!), ['http', '10.0.0.1:8080', '2', '66.7%', '75.0% of 200', '1000', '3'], 'asked for, and done lately');
  const none = lines(renderBackends('table', [{ ...list[0]!, recent: 0, recentOf: 0 }]));
  assert.equal(cells(none[0]!, none[1]!)[4], '-', 'no recent connection');
  const w = lines(renderBackends('wide', list));
  assert.match(w[0]!, /^SERVICE\s+PORT\s+.*\s+LABELS$/);
  assert.deepEqual(cells(w[0]!, w[1]!).at(-1), 'version=v2,zone=a');
  assert.deepEqual(cells(w[0]!, w[2]!).at(-1), '-');
  assert.deepEqual(JSON.parse(renderBackends('json', list)), { items: list });
});

test('connections: humanized in table/wide, raw numbers and exact cookies in json/yaml', () => {
  const t = lines(renderConnections('table', NAMED_RECORDS));
  assert.match(t[0]!, /^TIME\s+KIND\s+SIDE\s+WORKLOAD\s+SERVICE\s+LOCAL\s+REMOTE\s+VIP\s+DURATION\s+SENT\s+RECEIVED\s+RESULT$/);
  assert.deepEqual(cells(t[0]!, t[1]!), [
    timeOfDay(RECORD_TIME), 'closed', 'client', 'default/client', 'default/web:http', '10.0.0.9:40000', '10.0.0.1:8080', '10.96.0.10:80', '1.5s', '2.0KiB', '3.0MiB', 'fin',
  ]);
  assert.equal(cells(t[0]!, t[2]!).at(-1), 'rst_received ECONNRESET');
  assert.deepEqual(cells(t[0]!, t[3]!), [timeOfDay(RECORD_TIME), 'open', 'server', 'shop/cart', '-', '[fd00::2]:8080', '[fd00::9]:51000', '-', '750ns', '0B', '10B', '-']);
  assert.equal(cells(t[0]!, t[4]!).at(-1), 'ECONNREFUSED');

  const w = lines(renderConnections('wide', NAMED_RECORDS));
  const header = w[0]!;
  assert.match(header, /^TIME\s+COOKIE\s+KIND\s+SIDE\s+CGROUP\s+WORKLOAD\s+LOCAL\s+REMOTE\s+VIP\s+SVC-ID\s+SERVICE\s+BACKEND-ID\s+BACKEND\s+DURATION\s+CONNECT\s+SRTT\s+RETRANS\s+SENT\s+RECEIVED\s+RESULT$/);
  const row = cells(header, w[1]!);
  assert.equal(row[1], '18446744073709551361');
  assert.deepEqual(row.slice(4, 6), ['1001', 'default/client']);
  assert.deepEqual(row.slice(9, 13), ['7', 'default/web:http', '3', '10.0.0.1:8080']);
  assert.deepEqual(row.slice(14, 17), ['150µs', '80µs', '1']);
  assert.deepEqual(cells(header, w[3]!).slice(9, 13), ['0', '-', '0', '-'], 'non-service traffic: ids 0, no names');

  const json = JSON.parse(renderConnections('json', NAMED_RECORDS)) as { items: Record<string, unknown>[] };
  assert.deepEqual(json, plain({ items: NAMED_RECORDS }));
  assert.equal(json.items[0]!.cookie, '18446744073709551361');
  assert.equal(json.items[0]!.durationNs, 1_500_000_000);
  assert.equal(json.items[0]!.bytesReceived, 3 * 1024 * 1024);
  assert.deepEqual(json.items[0]!.labels, CLIENT_LABELS);
  assert.deepEqual(json.items[2]!.labels, { side: 'server', workload: 'shop/cart', service: '', backend: '' });
  assert.ok(!('vip' in json.items[2]!), 'no vip key for non-service traffic');
  const yaml = YAML.parse(renderConnections('yaml', NAMED_RECORDS)) as { items: Record<string, unknown>[] };
  assert.deepEqual(yaml, json);
});

test('connections: ids the agent cannot name print as unknown', () => {
  const t = lines(renderConnections('table', [named({ ...record(1), cgroupId: 4242, serviceId: 99, backendId: 98 })]));
  assert.deepEqual(cells(t[0]!, t[1]!).slice(3, 5), ['unknown', 'unknown']);
  const w = lines(renderConnections('wide', [named({ ...record(1), cgroupId: 4242, serviceId: 99, backendId: 98 })]));
  assert.deepEqual(cells(w[0]!, w[1]!).slice(9, 13), ['99', 'unknown', '98', 'unknown']);
});

test('connections --follow: header and replay aligned, live rows share the columns; json lines; yaml documents', () => {
  const s = new ConnectionStream('table');
  const start = lines(s.start(NAMED_RECORDS.slice(0, 2)));
  const next = lines(s.next(named(record(9))))[0]!;
  assert.equal(start.length, 3);
  assert.deepEqual(cells(start[0]!, next), cells(start[0]!, start[1]!));
  // An empty replay still prints the header, wide enough for names and addresses.
  const empty = new ConnectionStream('table');
  const head = empty.start([]);
  assert.match(head, /^TIME\s+KIND\s+SIDE\s+WORKLOAD\s+SERVICE\s+LOCAL\s+REMOTE/);
  assert.deepEqual(cells(head.trimEnd(), empty.next(named(record(9))).trimEnd()).slice(0, 8), [
    timeOfDay(RECORD_TIME), 'closed', 'client', 'default/client', 'default/web:http', '10.0.0.9:40000', '10.0.0.1:8080', '10.96.0.10:80',
  ]);
  const emptyWide = new ConnectionStream('wide');
  const wideHead = emptyWide.start([]);
  assert.deepEqual(cells(wideHead.trimEnd(), emptyWide.next(named(record(9))).trimEnd()).slice(5, 13), [
    'default/client', '10.0.0.9:40000', '10.0.0.1:8080', '10.96.0.10:80', '7', 'default/web:http', '3', '10.0.0.1:8080',
  ]);

  const j = new ConnectionStream('json');
  const jl = lines(j.start(NAMED_RECORDS.slice(0, 2)) + j.next(named(record(9))));
  assert.deepEqual(jl.map((l) => JSON.parse(l) as unknown), plain([NAMED_RECORDS[0], NAMED_RECORDS[1], named(record(9))]));

  const y = new ConnectionStream('yaml');
  const docs = YAML.parseAllDocuments(y.start([NAMED_RECORDS[0]!]) + y.next(NAMED_RECORDS[2]!)).map((d) => d.toJS() as unknown);
  assert.deepEqual(docs, plain([NAMED_RECORDS[0], NAMED_RECORDS[2]]));
});

test('status: fields with ages in table, more in wide, the object in json/yaml', () => {
  const now = Date.parse('2024-05-01T13:12:00Z');
  const t = renderStatus('table', STATUS, now);
  assert.match(t, /^Instance: {5}default$/m);
  assert.match(t, /^Uptime: {7}3h12m$/m);
  assert.match(t, /^Config: {7}\/etc\/sockmesh\/mesh\.yaml, applied 3h11m ago$/m);
  assert.match(t, /^ {14}newer file REJECTED 2h12m ago, running state kept:$/m);
  assert.match(t, /^ {16}backends: duplicate endpoint$/m);
  assert.match(t, /^ {14}warning: workload cgroup kubepods\/x is outside the cgroup root sockmesh: not enrolled/m);
  assert.match(t, /^OTLP: {9}http:\/\/collector:4317: 100 exported, 2 failed, 0 dropped$/m);
  assert.match(t, /^Edges: {8}12 \(3 expired after 10m without a record\); 2 connection\(s\) under workload "unknown": their cgroups are in no workload of the mesh file$/m);
  assert.match(t, /^Services: {5}2 \(3 frontends\), 5 workload\(s\)$/m);
  assert.match(renderStatus('table', { ...STATUS, edges: { live: 4, expired: 0, ttlMs: 0 } }, now), /^Edges: +4 \(never expire\)$/m);
  assert.match(renderStatus('table', { ...STATUS, edges: { live: 4, expired: 0, ttlMs: 0, unattributed: 0 } }, now),
    /^Edges: +4 \(never expire\); every connection under its workload$/m);
  assert.doesNotMatch(t, /PID|Cgroup/);
  assert.match(t, /^Dataplane: {4}adopted, 2 change\(s\) to the pinned state \(-o wide lists them\)$/m);
  // 406 s of program time in 3h12m, the costliest hook first, idle hooks left out.
  assert.match(t, /^BPF stats: {4}on for 3h12m: 3\.5% of one CPU in the mesh programs\n {16}sockops 148ns\/run\n {16}connect4 1\.1µs\/run$/m);
  assert.doesNotMatch(t, /sendmsg4/);
  const w = renderStatus('wide', STATUS, now);
  assert.match(w, /^ +sockops 148ns\/run x 2000000000 runs$/m);
  assert.match(w, /^PID: +4242$/m);
  assert.match(w, /^BPF fs: +\/sys\/fs\/bpf\/sockmesh\/default$/m);
  assert.match(w, /applied 3h11m ago \(2024-05-01T10:00:01\.000Z\)/);
  assert.match(w, /^Dataplane: +adopted, 2 change\(s\) to the pinned state:\n +map events: drain \(definition changed: maxEntries 4194304 -> 8388608\)\n +hook getpeername6: attached/m);

  const m = renderStatus('table', STATUS_MINIMAL, now);
  assert.match(m, /^OTLP: +off$/m);
  assert.doesNotMatch(m, /BPF stats/);
  assert.doesNotMatch(m, /^Edges/m, 'an older agent does not say');
  assert.match(m, /^Dataplane: +installed$/m);
  assert.match(m, /^Config: +\/etc\/sockmesh\/mesh\.yaml, not applied yet$/m);
  assert.doesNotMatch(m, /REJECTED|warning/);

  assert.deepEqual(JSON.parse(renderStatus('json', STATUS)), STATUS);
  assert.deepEqual(YAML.parse(renderStatus('yaml', STATUS_MINIMAL)), STATUS_MINIMAL);
});

test('plain/toJson: bigints become exact decimal strings, undefined members vanish', () => {
  assert.equal(toJson({ a: 2n ** 64n - 1n, b: undefined, c: [1n] }), '{\n  "a": "18446744073709551615",\n  "c": [\n    "1"\n  ]\n}\n');
});

test('edges: a SIDE column whenever both sides are listed, so their rows tell apart', () => {
  const [plainHeader] = lines(renderEdges('table', EDGES));
  assert.doesNotMatch(plainHeader!, /SIDE/);
  const both = lines(renderEdges('table', EDGES, 0, true));
  assert.match(both[0]!, /^SIDE +WORKLOAD +SERVICE/);
  assert.deepEqual(both.slice(1).map((r) => cells(both[0]!, r)[0]).sort(), ['client', 'client', 'server']);
});

test('edges --watch: json frames are one object per line, yaml frames one document each, with their time', () => {
  const at = new Date(1_714_557_600_000);
  const json = watchFrame('json', EDGES, false, at) + watchFrame('json', EDGES.slice(1), false, at);
  const objs = lines(json).map((l) => JSON.parse(l) as { time: string; items: unknown[] });
  assert.deepEqual(objs.map((o) => [o.time, o.items.length]), [[at.toISOString(), 3], [at.toISOString(), 2]]);
  const docs = YAML.parseAllDocuments(watchFrame('yaml', EDGES, false, at) + watchFrame('yaml', [], false, at)).map((d) => d.toJS() as { time: string; items: unknown[] });
  assert.deepEqual(docs.map((d) => d.items.length), [3, 0]);
  assert.match(watchFrame('table', EDGES, true, at), /^2024-05-01T10:00:00.000Z\nSIDE +WORKLOAD/);
});

test('connections: TIME is the record\'s time of day on this terminal\'s clock, - from an agent that does not say', () => {
  const d = new Date(RECORD_TIME);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  assert.equal(timeOfDay(RECORD_TIME), `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.250`);
  assert.equal(timeOfDay(undefined), '-');
  assert.equal(timeOfDay('garbage'), '-');
  const { time: _t, ...old } = named(record(1));
  const t = lines(renderConnections('table', [old]));
  assert.equal(cells(t[0]!, t[1]!)[0], '-');
});
