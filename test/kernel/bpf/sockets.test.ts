/**
 * The addon against real sockets: the self-test programs attached to a cgroup
 * this test makes, a child process in it moving known bytes over loopback TCP,
 * and the ring-buffer records and map counters checked against that ground
 * truth.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { BpfObjectSpec, objectPath, RingBufferReader } from '../../../src/bpf';
import { SelftestConnEvent, SelftestConnectDst, SelftestCounter } from '../../../src/bpf/layouts/selftest';
import type { Collection } from '../../../src/bpf';
import { ScratchCgroup } from '../../../src/platform/cgroup';
import { runInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { freePort, ipv4, waitFor } from '../../helpers/wait';

type ConnEvent = ReturnType<typeof SelftestConnEvent.decode>;
interface ClientLine { localPort?: number; remotePort?: number; done?: boolean; serverPort?: number }

function counter(coll: Collection, idx: number): number {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(idx);
  const v = coll.map('counters').lookup(key);
  assert.ok(v, `counter ${idx} missing`);
  return Number(v.readBigUInt64LE(0));
}

test('connect4 + sockops + tp_btf + raw_tp report a child process\'s loopback TCP exactly', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  const CONNS = 3;
  const CLIENT_BYTES = 10_000;
  const SERVER_BYTES = 250_000;
  try {
    const port = await freePort();
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-sockets`), (c) => c.remove());
    const coll = cleanup.add('collection', BpfObjectSpec.open(objectPath('selftest'))
      .setConstants({ trace_port: port, trace_tgid: process.pid })
      .load(), (c) => c.close());

    const events: ConnEvent[] = [];
    cleanup.add('reader', new RingBufferReader(coll.map('events'), (b, o) => events.push(SelftestConnEvent.decode(b, o))), (r) => r.close());
    for (const name of ['selftest_connect4', 'selftest_sockops']) {
      cleanup.add(name, coll.program(name).attachCgroup(cg.path), (l) => l.close());
    }
    cleanup.add('tp_btf', coll.program('selftest_state').attachTracepoint(), (l) => l.close());
    cleanup.add('raw_tp', coll.program('selftest_sys_enter').attachTracepoint('sys_enter'), (l) => l.close());

    const run = await runInCgroup<ClientLine>(cg.path, 'tcp-peer', [String(CONNS), String(CLIENT_BYTES), String(SERVER_BYTES), String(port)]);
    const clients = run.messages.filter((m) => m.localPort !== undefined);
    assert.equal(clients.length, CONNS);
    await waitFor(() => events.length >= 2 * CONNS, `${2 * CONNS} close records (have ${events.length})`);

    const active = events.filter((e) => e.active === 1);
    const passive = events.filter((e) => e.active === 0);
    assert.equal(active.length, CONNS, 'one client-side record per connection');
    assert.equal(passive.length, CONNS, 'one server-side record per connection');

    const connectDst = coll.map('connect_dst');
    for (const c of clients) {
      const a = active.find((e) => e.sport === c.localPort);
      assert.ok(a, `client record for local port ${c.localPort}`);
      assert.equal(a.family, 2);
      assert.equal(ipv4(a.saddr[0]!), '127.0.0.1');
      assert.equal(ipv4(a.daddr[0]!), '127.0.0.1');
      assert.equal(a.dport, port);
      assert.equal(a.bytes_acked, CLIENT_BYTES, 'client bytes sent and acked');
      assert.equal(a.bytes_received, SERVER_BYTES, 'client bytes received');
      // The cookie joins hooks: connect4 stored this socket's destination under it.
      const key = Buffer.alloc(8);
      key.writeBigUInt64LE(a.cookie);
      const dst = connectDst.lookup(key);
      assert.ok(dst, `connect4 saw cookie ${a.cookie}`);
      const d = SelftestConnectDst.decode(dst, 0);
      assert.equal(d.dport, port);
      assert.equal(ipv4(d.daddr), '127.0.0.1');

      const p = passive.find((e) => e.dport === c.localPort);
      assert.ok(p, `server record for peer port ${c.localPort}`);
      assert.equal(p.sport, port);
      assert.equal(p.bytes_acked, SERVER_BYTES, `server bytes sent and acked (old state ${p.old_state})`);
      assert.equal(p.bytes_received, CLIENT_BYTES, 'server bytes received');
      assert.notEqual(p.cookie, a.cookie);
    }

    assert.equal(counter(coll, SelftestCounter.CONNECT4), CONNS, 'connect4 ran once per client connect');
    assert.equal(counter(coll, SelftestCounter.ESTABLISHED), 2 * CONNS);
    assert.equal(counter(coll, SelftestCounter.CLOSED), 2 * CONNS);
    assert.equal(counter(coll, SelftestCounter.RB_DROPS), 0);
    // Every client socket alone goes SYN_SENT, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE.
    assert.ok(counter(coll, SelftestCounter.TP_STATE) >= 5 * CONNS, 'tp_btf saw the state changes on the test port');
    assert.ok(counter(coll, SelftestCounter.RAW_SYSCALLS) > 0, 'raw_tp saw this process\'s syscalls');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), [], 'nothing left in the kernel');
});

test('sk_msg attached to a sockhash sees every byte sent on enrolled sockets', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  const CLIENT_BYTES = 3000;
  const SERVER_BYTES = 7000;
  try {
    const port = await freePort();
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-skmsg`), (c) => c.remove());
    const coll = cleanup.add('collection', BpfObjectSpec.open(objectPath('selftest'))
      .setConstants({ sockmap_port: port })
      .only(['selftest_sockops', 'selftest_sk_msg'])
      .load(), (c) => c.close());
    cleanup.add('sk_msg', coll.program('selftest_sk_msg').attachToMap(coll.map('sock_hash')), (l) => l.close());
    cleanup.add('sockops', coll.program('selftest_sockops').attachCgroup(cg.path), (l) => l.close());

    await runInCgroup(cg.path, 'tcp-peer', ['1', String(CLIENT_BYTES), String(SERVER_BYTES), String(port)]);
    await waitFor(() => counter(coll, SelftestCounter.SK_MSG_BYTES) >= CLIENT_BYTES + SERVER_BYTES, 'sk_msg byte count');
    assert.equal(counter(coll, SelftestCounter.SK_MSG_BYTES), CLIENT_BYTES + SERVER_BYTES);
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
