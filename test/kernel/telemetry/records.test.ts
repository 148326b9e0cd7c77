/**
 * Telemetry against ground truth on the same sockets: bytes the test moved,
 * connect latency inside the client's own measurement, SRTT next to `ss -ti`,
 * retransmits equal to the namespace's own TCP counter under injected loss,
 * resets and refused connects classified.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { RingBufferReader } from '../../../src/bpf';
import { MappedRingReader } from '../../../src/bpf/mapped-ring';
import { MeshCounter } from '../../../src/bpf/layouts/mesh';
import { BPF_OUTPUT_DIR } from '../../../src/bpf/objects';
import { desiredState } from '../../../src/dataplane/desired';
import { cgroup2Root } from '../../../src/platform/cgroup';
import { applyDesired } from '../../../src/dataplane/writer';
import { decodeRecord, ConnectionRecord } from '../../../src/telemetry/record';
import { collect, runInCgroup, spawnInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { meshEnv, servicePort, MeshEnv } from '../../helpers/mesh';
import { waitFor } from '../../helpers/wait';

interface PeerLine { localPort?: number; remotePort?: number; remoteAddress?: string; connectUs?: number; done?: boolean }

function recordsOf(cleanup: Cleanup, env: MeshEnv): ConnectionRecord[] {
  const out: ConnectionRecord[] = [];
  cleanup.add('reader', new RingBufferReader(env.dp.maps.events, (b, o, l) => out.push(decodeRecord(b, o, l)), { intervalMs: 10 }), (r) => r.close());
  return out;
}

function netnsRetransSegs(env: MeshEnv): number {
  const snmp = env.ns.exec(['cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Tcp:'));
  const names = snmp[0]!.split(/\s+/);
  const values = snmp[1]!.split(/\s+/);
  return Number(values[names.indexOf('RetransSegs')]);
}

test('bytes, connect latency and endpoints match what the client and server saw', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'tele');
    const records = recordsOf(cleanup, env);
    const [svc] = desiredState([servicePort('reviews', ['127.77.0.40'], 80, 'TCP', [{ host: '127.0.0.1', port: 18080 }])]);
    applyDesired(env.dp.maps, [svc!]);
    const CONNS = 5;
    const run = await runInCgroup<PeerLine>(env.cg.path, 'tcp-peer', [String(CONNS), '12345', '543210', '18080', '127.77.0.40:80'], 30_000, env.ns.prefix());
    const clients = run.messages.filter((m) => m.localPort !== undefined);
    assert.equal(clients.length, CONNS);
    await waitFor(() => records.filter((r) => r.kind === 'close').length >= 2 * CONNS, 'close records');
    for (const c of clients) {
      assert.equal(c.remoteAddress, '127.77.0.40', 'the client saw the VIP');
      const cr = records.find((r) => r.kind === 'close' && r.side === 'client' && r.local.port === c.localPort);
      assert.ok(cr && cr.kind === 'close', `client record for ${c.localPort}`);
      assert.equal(cr.bytesSent, 12345);
      assert.equal(cr.bytesReceived, 543210);
      assert.deepEqual(cr.vip, { address: '127.77.0.40', port: 80 });
      assert.deepEqual(cr.remote, { address: '127.0.0.1', port: 18080 });
      assert.equal(cr.serviceId, svc!.id);
      assert.equal(cr.backendId, svc!.backends[0]!.id);
      assert.equal(cr.closeCause, 'fin');
      assert.ok(cr.connectUs > 0 && cr.connectUs <= c.connectUs! + 50, `kernel connect ${cr.connectUs} us within the client's ${c.connectUs} us`);
      assert.ok(cr.srttUs.min > 0 && cr.srttUs.min <= cr.srttUs.last && cr.srttUs.last <= cr.srttUs.max, JSON.stringify(cr.srttUs));
      assert.ok(cr.durationNs > 0);
      // The cgroup v2 id is the cgroup directory's inode number: the agent names workloads by it.
      const ino = (dir: string): number => Number(fs.statSync(dir, { bigint: true }).ino);
      assert.equal(cr.cgroupId, ino(env.cg.path), 'the socket\'s own cgroup');
      // Above the cgroup v2 root (id 1) there is no cgroup: 0.
      const above = (dir: string): number => (dir === cgroup2Root() ? 0 : ino(path.dirname(dir)));
      assert.deepEqual([cr.cgroupParentId, cr.cgroupGrandparentId], [above(env.cg.path), above(path.dirname(env.cg.path))],
        'and the two cgroups above it');
      const sr = records.find((r) => r.kind === 'close' && r.side === 'server' && r.remote.port === c.localPort);
      assert.ok(sr, `server record for peer ${c.localPort}`);
      assert.equal(sr.bytesSent, 543210);
      assert.equal(sr.bytesReceived, 12345);
      assert.equal(sr.cgroupId, cr.cgroupId, 'both sockets belong to the client\'s cgroup');
    }
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('retransmits under injected loss equal the namespace\'s own RetransSegs', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'loss', 200);
    const records = recordsOf(cleanup, env);
    applyDesired(env.dp.maps, desiredState([servicePort('lossy', ['127.77.0.41'], 80, 'TCP', [{ host: '127.0.0.1', port: 18081 }])]));
    env.ns.exec(['tc', 'qdisc', 'add', 'dev', 'lo', 'clsact']);
    // Explicitly, before the namespace goes: its teardown frees the program only later.
    cleanup.defer('tc', () => env.ns.exec(['tc', 'qdisc', 'del', 'dev', 'lo', 'clsact']));
    env.ns.exec(['tc', 'filter', 'add', 'dev', 'lo', 'ingress', 'bpf', 'direct-action', 'obj', path.join(BPF_OUTPUT_DIR, 'lossy.bpf.o'), 'sec', 'tc']);
    const base = netnsRetransSegs(env);
    await runInCgroup<PeerLine>(env.cg.path, 'tcp-peer', ['3', '400000', '400000', '18081', '127.77.0.41:80'], 60_000, env.ns.prefix());
    await waitFor(() => records.filter((r) => r.kind === 'close').length >= 6, 'close records');
    const retrans = records.filter((r) => r.kind === 'close').reduce((a, r) => a + r.retransmits, 0);
    const truth = netnsRetransSegs(env) - base;
    assert.ok(truth > 0, 'the loss produced retransmissions');
    assert.equal(retrans, truth, 'every retransmitted segment is in some record');
    const closes = records.filter((r) => r.kind === 'close');
    const sent = closes.filter((r) => r.side === 'client').reduce((a, r) => a + r.bytesSent, 0);
    assert.equal(sent, 3 * 400000, 'bytes exact despite loss');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a long-lived connection reports interim records; its SRTT is consistent with ss -ti', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'srtt', 100);
    const records = recordsOf(cleanup, env);
    applyDesired(env.dp.maps, desiredState([servicePort('srtt', ['127.77.0.42'], 80, 'TCP', [{ host: '127.0.0.1', port: 18082 }])]));
    // What the agent does on a timer: have the kernel report open connections.
    const timer = setInterval(() => env.dp.reportOpenConnections(), 50);
    cleanup.defer('report timer', () => clearInterval(timer));
    // A trickle keeps one connection open with RTT samples for 3 s.
    const child = spawnInCgroup(env.cg.path, 'trickle', ['18082', '127.77.0.42:80', '3000'], env.ns.prefix());
    const done = collect<PeerLine>(child, 30_000);
    await waitFor(() => records.filter((r) => r.kind === 'interim' && r.side === 'client').length >= 3, 'interim records', 10_000);
    const ss = env.ns.exec(['ss', '-tinH', 'dst', '127.0.0.1:18082']);
    const rec = records.filter((r) => r.kind === 'interim' && r.side === 'client').at(-1)!;
    await done;
    const m = /rtt:([\d.]+)\//.exec(ss);
    assert.ok(m, `ss shows the connection: ${ss}`);
    const ssUs = Number(m[1]) * 1000;
    assert.ok(rec.srttUs.min <= ssUs + 1000 && Math.abs(rec.srttUs.last - ssUs) < 2000,
      `srtt last ${rec.srttUs.last} us (min ${rec.srttUs.min}, max ${rec.srttUs.max}) vs ss ${ssUs} us`);
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('refused connects and resets are classified', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'rst');
    const records = recordsOf(cleanup, env);
    // Nothing listens on 18083: the backend answers SYN with RST.
    applyDesired(env.dp.maps, desiredState([servicePort('closed', ['127.77.0.43'], 80, 'TCP', [{ host: '127.0.0.1', port: 18083 }])]));
    const out = (await runInCgroup<{ errors: Record<string, number> }>(env.cg.path, 'vip-client', ['tcp', '127.77.0.43', '80', '3'], 30_000, env.ns.prefix())).messages[0]!;
    assert.deepEqual(out.errors, { ECONNREFUSED: 3 });
    await waitFor(() => records.filter((r) => r.kind === 'connect_failed').length >= 3, 'failed-connect records');
    for (const r of records.filter((x) => x.kind === 'connect_failed')) {
      assert.equal(r.kind === 'connect_failed' && r.error, 111, 'ECONNREFUSED');
      assert.equal(r.side, 'client');
    }
    execFileSync('true');
    // Each way a connection ends in a reset, and who says what of it.
    for (const [mode, want] of [
      ['abort', ['client:rst_received', 'server:rst_sent']],
      // The keep-alive race: the client's RST arrives in CLOSE_WAIT (the kernel says EPIPE, not ECONNRESET).
      ['late-write', ['client:rst_received', 'server:fin']],
      // An abort after shutdown(): from FIN_WAIT2, yet no graceful close.
      ['shutdown-abort', ['client:rst_received', 'server:rst_sent']],
    ] as const) {
      const run = (await runInCgroup<{ ok: boolean; code?: string; serverPort: number; clientPort: number }>(env.cg.path, 'rst-pair', [mode], 30_000, env.ns.prefix())).messages[0]!;
      assert.ok(run.ok, `${mode}: the client saw the reset (${run.code})`);
      const mine = (): ConnectionRecord[] => records.filter((r) => r.kind === 'close' &&
        (r.side === 'client' ? r.local.port === run.clientPort && r.remote.port === run.serverPort : r.local.port === run.serverPort && r.remote.port === run.clientPort));
      await waitFor(() => mine().length >= 2, `${mode}: both sides' close records`);
      assert.deepEqual(mine().map((r) => `${r.side}:${r.kind === 'close' ? r.closeCause : ''}`).sort(), want, mode);
    }
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a connect the mesh refuses (no usable backend) is a failed connection of the client, not a silent one', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'refd');
    const records = recordsOf(cleanup, env);
    const svcs = desiredState([
      servicePort('empty', ['127.77.0.45'], 80, 'TCP', []),
      servicePort('dns', ['127.77.0.45'], 53, 'UDP', []),
    ]);
    applyDesired(env.dp.maps, svcs);
    const tcp = (await runInCgroup<{ errors: Record<string, number> }>(env.cg.path, 'vip-client', ['tcp', '127.77.0.45', '80', '3'], 30_000, env.ns.prefix())).messages[0]!;
    assert.deepEqual(tcp.errors, { ECONNREFUSED: 3 });
    await runInCgroup(env.cg.path, 'vip-client', ['udp-connected', '127.77.0.45', '53', '2'], 30_000, env.ns.prefix()).catch(() => undefined);
    await waitFor(() => records.length >= 3, 'failed-connect records of the refused connects');
    await new Promise((r) => setTimeout(r, 200)); // a record for the UDP sends would be here by now
    assert.equal(records.length, 3, 'one per refused TCP connect; UDP has no connection records');
    const cg = Number(fs.statSync(env.cg.path, { bigint: true }).ino);
    for (const r of records) {
      assert.equal(r.kind, 'connect_failed');
      assert.equal(r.kind === 'connect_failed' && r.error, 111, 'ECONNREFUSED, as the client saw it');
      assert.deepEqual([r.side, r.first, r.cgroupId, r.serviceId, r.backendId], ['client', true, cg, svcs[0]!.id, 0]);
      assert.deepEqual([r.vip, r.remote], [{ address: '127.77.0.45', port: 80 }, { address: '127.77.0.45', port: 80 }], 'the VIP it dialled');
    }
    assert.equal(new Set(records.map((r) => r.cookie)).size, 3, 'three sockets');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a peer that vanishes: the retransmission timeout is the close cause', { timeout: 60_000 }, async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'rto');
    const records = recordsOf(cleanup, env);
    applyDesired(env.dp.maps, desiredState([servicePort('stall', ['127.77.0.44'], 80, 'TCP', [{ host: '127.0.0.1', port: 18082 }])]));
    // Give up after two retransmissions instead of fifteen (per namespace).
    env.ns.exec(['sysctl', '-q', '-w', 'net.ipv4.tcp_retries2=2']);
    env.ns.exec(['tc', 'qdisc', 'add', 'dev', 'lo', 'clsact']);
    cleanup.defer('tc', () => env.ns.exec(['tc', 'qdisc', 'del', 'dev', 'lo', 'clsact']));
    const child = spawnInCgroup(env.cg.path, 'stall', ['18082', '127.77.0.44:80'], env.ns.prefix());
    const done = collect<{ connected?: boolean; localPort?: number; error?: string }>(child, 50_000, (m) => {
      if (m.connected) {
        env.ns.exec(['tc', 'filter', 'add', 'dev', 'lo', 'ingress', 'bpf', 'direct-action', 'obj', path.join(BPF_OUTPUT_DIR, 'lossy.bpf.o'), 'sec', 'classifier']);
      }
    });
    const out = await done;
    const client = out.messages.find((m) => m.localPort !== undefined)!;
    assert.deepEqual(out.messages.find((m) => m.error), { error: 'ETIMEDOUT' });
    await waitFor(() => records.some((r) => r.kind === 'close' && r.side === 'client' && r.local.port === client.localPort), 'the client\'s close record');
    const rec = records.find((r) => r.kind === 'close' && r.side === 'client' && r.local.port === client.localPort)!;
    assert.ok(rec.kind === 'close');
    assert.equal(rec.closeCause, 'timeout');
    assert.equal(rec.error, 110, 'ETIMEDOUT');
    assert.ok(rec.retransmits >= 2, `retransmits ${rec.retransmits}`);
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('an idle connection reports on the interval with its bytes so far, then closes once', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'idle', 200);
    const records = recordsOf(cleanup, env);
    applyDesired(env.dp.maps, desiredState([servicePort('idle', ['127.77.0.45'], 80, 'TCP', [{ host: '127.0.0.1', port: 18085 }])]));
    const child = spawnInCgroup(env.cg.path, 'idle', ['18085', '127.77.0.45:80', '1500'], env.ns.prefix());
    let localPort = 0;
    const done = collect<{ localPort?: number; done?: boolean }>(child, 20_000, (m) => {
      if (m.localPort) localPort = m.localPort;
    });
    await waitFor(() => localPort > 0, 'the client connected');
    // No packet moves now: only the iterator can report this connection.
    const timer = setInterval(() => env.dp.reportOpenConnections(), 100);
    cleanup.defer('report timer', () => clearInterval(timer));
    await waitFor(() => records.filter((r) => r.kind === 'interim' && r.side === 'client' && r.local.port === localPort).length >= 2,
      'two interim reports of the idle client', 5000);
    const interim = records.filter((r) => r.kind === 'interim' && r.side === 'client' && r.local.port === localPort);
    assert.equal(interim[0]!.bytesSent, 1000, 'bytes so far');
    assert.deepEqual(interim[0]!.vip, { address: '127.77.0.45', port: 80 });
    assert.ok(interim[1]!.durationNs > interim[0]!.durationNs);
    assert.ok(records.some((r) => r.kind === 'interim' && r.side === 'server' && r.remote.port === localPort), 'the server side too');
    // Each record says what is new since the connection's previous one.
    assert.deepEqual(interim.slice(0, 2).map((r) => [r.first, r.newBytesSent]), [[true, 1000], [false, 0]]);
    assert.equal(env.dp.reportOpenConnections(), 2, 'the report run counts both sides as open');
    await done;
    await waitFor(() => records.some((r) => r.kind === 'close' && r.side === 'client' && r.local.port === localPort), 'close record');
    const closes = records.filter((r) => r.kind === 'close' && r.side === 'client' && r.local.port === localPort);
    assert.equal(closes.length, 1);
    assert.equal(closes[0]!.bytesSent, 1000);
    assert.equal(closes[0]!.first, false);
    const mine = records.filter((r) => r.side === 'client' && r.local.port === localPort);
    assert.equal(mine.reduce((a, r) => a + r.newBytesSent, 0), 1000, 'summed over its records, each byte counted once');
    await waitFor(() => env.dp.reportOpenConnections() === 0, 'no open connection counted after both sides closed', 3000);
    const after = records.length;
    env.dp.reportOpenConnections();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(records.filter((r, i) => i >= after && r.local.port === localPort).length, 0, 'a closed connection is not reported again');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a report run with more open connections than the ring holds: each reported once, none dropped', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    // 64 KiB: room for ~390 records; 600 idle connections are 1200 tracked sockets (both ends enrolled).
    const env = meshEnv(cleanup, 'many', 500, { ringBytes: 64 * 1024 });
    const interim: ConnectionRecord[] = [];
    // Drained only when asked: the report run is what the agent does on its thread.
    const reader = cleanup.add('reader', new MappedRingReader(env.dp.maps.events, (b, o, l) => {
      const r = decodeRecord(b, o, l);
      if (r.kind === 'interim') interim.push(r);
    }, { intervalMs: 0 }), (r) => r.close());
    const CONNS = 600;
    const child = spawnInCgroup(env.cg.path, 'idle', ['18090', '127.0.0.1:18090', '30000', String(CONNS)], env.ns.prefix());
    cleanup.defer('idle connections', () => child.kill('SIGKILL'));
    let connected = false;
    void collect<{ localPort?: number }>(child, 60_000, (m) => (connected ||= m.localPort !== undefined)).catch(() => undefined);
    await waitFor(() => connected, `${CONNS} connections open`, 20_000);
    await new Promise((r) => setTimeout(r, 600)); // every one of them due: older than the report interval
    const dropped = env.dp.counter(MeshCounter.EVENTS_DROPPED);
    // Nobody drains during this run: it stops at 3/4 of the ring and leaves the rest due.
    env.dp.reportOpenConnections();
    reader.drain();
    const firstRun = interim.length;
    assert.ok(firstRun > 0 && firstRun < 2 * CONNS, `one run reported ${firstRun} of ${2 * CONNS}`);
    assert.equal(env.dp.counter(MeshCounter.REPORTS_DEFERRED), 2 * CONNS - firstRun, 'the rest left due, not dropped');
    // As the agent runs it: read in parts of half a ring, drained after each.
    const open = env.dp.reportOpenConnections(() => reader.drain());
    reader.drain();
    assert.equal(env.dp.reportRuns, 1, 'one walk: the ring never filled, nothing was left due');
    assert.equal(open, 2 * CONNS, 'the run counts every open socket');
    assert.equal(env.dp.counter(MeshCounter.EVENTS_DROPPED) - dropped, 0, 'no record dropped');
    const ports = new Set(interim.map((r) => `${r.side}:${r.side === 'client' ? r.local.port : r.remote.port}`)); // the client's port names both ends
    assert.equal(interim.length, 2 * CONNS, 'one interim record per socket');
    assert.equal(ports.size, 2 * CONNS, 'no socket twice');
    assert.ok(interim.every((r) => r.bytesSent + r.bytesReceived === 1000), 'each with its bytes');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
