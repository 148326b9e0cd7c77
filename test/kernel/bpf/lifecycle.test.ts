/**
 * Handles must survive any order of close, double close, and process exit,
 * and what the kernel keeps afterwards must be exactly what was pinned.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BpfObjectSpec, BpfMap, Link, Program, objectPath, BpfArgumentError, native } from '../../../src/bpf';
import { ScratchCgroup } from '../../../src/platform/cgroup';
import { runInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { loadRingbench, produceArgs, producerTotals } from '../../helpers/ringbench';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';

/** Program ids attached to a cgroup, as bpftool sees them. */
function attachedIds(cgroupDir: string): number[] {
  const out = execFileSync('bpftool', ['-j', 'cgroup', 'show', cgroupDir], { encoding: 'utf8' });
  return (JSON.parse(out.trim() || '[]') as { id: number }[]).map((p) => p.id);
}

test('close twice and out of order: link after program after collection', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-order`), (c) => c.remove());
    const coll = BpfObjectSpec.open(objectPath('selftest')).only(['selftest_connect4']).load();
    const prog = coll.program('selftest_connect4');
    const progId = prog.info().id;
    const link = cleanup.add('link', prog.attachCgroup(cg.path), (l) => l.close());
    coll.close();
    coll.close();
    prog.close();
    assert.ok(prog.closed);
    assert.throws(() => prog.info(), BpfArgumentError, 'a closed handle refuses calls');
    assert.deepEqual(attachedIds(cg.path), [progId], 'the link keeps the program attached after everything else closed');
    link.close();
    link.close();
    assert.deepEqual(attachedIds(cg.path), [], 'closing the unpinned link detached it');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a process that exits without closing leaves nothing; one that pinned leaves exactly its pin', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-exit`), (c) => c.remove());
    const pinDir = cleanup.add('pin dir', fs.mkdtempSync('/sys/fs/bpf/sockmesh-test-'), (d) => fs.rmSync(d, { recursive: true, force: true }));

    await runInCgroup(undefined, 'attach-and-exit', [cg.path]);
    assert.deepEqual(await waitUntil(() => attachedIds(cg.path), (ids) => ids.length === 0), [],
      'an unpinned cgroup link dies with its process');

    const pin = path.join(pinDir, 'connect4');
    const r = await runInCgroup<{ linkId: number; progId: number }>(undefined, 'attach-and-exit', [cg.path, pin]);
    const { progId, linkId } = r.messages[0]!;
    assert.deepEqual(attachedIds(cg.path), [progId], 'a pinned link outlives its process');

    // Re-adopt the pinned link, as a restarted agent would.
    const link = cleanup.add('adopted link', Link.fromPin(pin), (l) => l.close());
    assert.equal(link.info().id, linkId);
    assert.equal(link.info().progId, progId);
    assert.throws(() => Program.fromPin(pin), /holds a BPF link, not a program/);
    assert.throws(() => BpfMap.fromPin(pin), /holds a BPF link, not a map/);

    link.unpin();
    assert.equal(fs.existsSync(pin), false);
    assert.deepEqual(attachedIds(cg.path), [progId], 'still attached while our fd is open');
    link.close();
    assert.deepEqual(attachedIds(cg.path), [], 'unpin + close detaches');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('detach() ends a pinned attachment for every holder', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-detach`), (c) => c.remove());
    const pinDir = cleanup.add('pin dir', fs.mkdtempSync('/sys/fs/bpf/sockmesh-test-'), (d) => fs.rmSync(d, { recursive: true, force: true }));
    const coll = cleanup.add('collection', BpfObjectSpec.open(objectPath('selftest')).only(['selftest_sockops']).load(), (c) => c.close());
    const link = coll.program('selftest_sockops').attachCgroup(cg.path);
    link.pin(path.join(pinDir, 'sockops'));
    const other = cleanup.add('second holder', Link.fromPin(path.join(pinDir, 'sockops')), (l) => l.close());
    link.detach();
    assert.ok(link.closed);
    assert.equal(fs.existsSync(path.join(pinDir, 'sockops')), false, 'detach removes our pin');
    assert.deepEqual(attachedIds(cg.path), [], 'detached although another fd is open');
    assert.equal(other.info().cgroupId, 0n, 'the other holder sees a defunct link');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('maps pinned by one handle are the same map when re-opened', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const pinDir = cleanup.add('pin dir', fs.mkdtempSync('/sys/fs/bpf/sockmesh-test-'), (d) => fs.rmSync(d, { recursive: true, force: true }));
    const coll = cleanup.add('collection', BpfObjectSpec.open(objectPath('selftest')).only(['selftest_connect4']).load(), (c) => c.close());
    const counters = coll.map('counters');
    const pin = path.join(pinDir, 'counters');
    counters.pin(pin);
    const again = cleanup.add('re-opened', BpfMap.fromPin(pin), (m) => m.close());
    assert.equal(again.info.id, counters.info.id);
    const key = Buffer.from([3, 0, 0, 0]);
    counters.update(key, Buffer.from([42, 0, 0, 0, 0, 0, 0, 0]));
    assert.equal(again.lookup(key)?.readBigUInt64LE(0), 42n);
    counters.unpin();
    assert.equal(fs.existsSync(pin), false);
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

async function waitUntil<T>(get: () => T, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = get();
  while (!ok(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    v = get();
  }
  return v;
}

test('sk_skb and sk_msg attach to a sockhash and detach when their Link closes', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = BpfObjectSpec.open(objectPath('selftest')).only(['selftest_sk_skb', 'selftest_sk_msg']).load();
  const pinDir = fs.mkdtempSync('/sys/fs/bpf/sockmesh-test-');
  try {
    const A = native().constants.attachType;
    const hash = coll.map('sock_hash');
    const skb = coll.program('selftest_sk_skb');
    const msg = coll.program('selftest_sk_msg');
    assert.deepEqual(hash.attachedPrograms(A.SK_SKB_STREAM_VERDICT!), []);
    const l1 = skb.attachToMap(hash); // attach type from the section: sk_skb/stream_verdict
    const l2 = msg.attachToMap(hash);
    assert.deepEqual(hash.attachedPrograms(A.SK_SKB_STREAM_VERDICT!), [skb.info().id]);
    assert.deepEqual(hash.attachedPrograms(A.SK_MSG_VERDICT!), [msg.info().id]);
    assert.throws(() => l1.pin(path.join(pinDir, 'skb')), /pin the map instead/);
    l1.close();
    l1.close();
    assert.deepEqual(hash.attachedPrograms(A.SK_SKB_STREAM_VERDICT!), []);
    assert.deepEqual(hash.attachedPrograms(A.SK_MSG_VERDICT!), [msg.info().id], 'the other attachment stays');
    l2.detach();
    assert.deepEqual(hash.attachedPrograms(A.SK_MSG_VERDICT!), []);
  } finally {
    coll.close();
    fs.rmSync(pinDir, { recursive: true, force: true });
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a program re-opened from its pin is the same program and runs', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const pinDir = cleanup.add('pin dir', fs.mkdtempSync('/sys/fs/bpf/sockmesh-test-'), (d) => fs.rmSync(d, { recursive: true, force: true }));
    const coll = cleanup.add('collection', loadRingbench(64 * 1024), (c) => c.close());
    const produce = coll.program('produce');
    produce.pin(path.join(pinDir, 'produce'));
    const again = cleanup.add('re-opened', Program.fromPin(path.join(pinDir, 'produce')), (p) => p.close());
    assert.equal(again.info().id, produce.info().id);
    assert.equal(again.info().tag, produce.info().tag);
    produce.close();
    const r = again.testRun({ ctx: produceArgs(0, 10) });
    assert.equal(r.retval, 10, 'the re-opened handle runs the program');
    assert.equal(producerTotals(coll).produced, 10);
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
