import test from 'node:test';
import assert from 'node:assert/strict';
import { BpfObjectSpec, BpfError, BpfArgumentError, objectPath, native } from '../../../src/bpf';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';

const u64 = (n: number | bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

test('hash map: update modes, lookup, delete, keys, batch update/dump/delete', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = BpfObjectSpec.open(objectPath('selftest')).only(['selftest_connect4']).load();
  try {
    const m = coll.map('connect_dst');
    assert.equal(m.typeName, 'LRU_HASH');
    assert.equal(m.lookup(u64(1)), undefined);
    m.update(u64(1), u64(100), 'noexist');
    assert.equal(m.lookup(u64(1))?.readBigUInt64LE(0), 100n);
    assert.throws(() => m.update(u64(1), u64(5), 'noexist'), (e: unknown) => e instanceof BpfError && e.code === 'EEXIST');
    assert.throws(() => m.update(u64(2), u64(5), 'exist'), (e: unknown) => e instanceof BpfError && e.code === 'ENOENT');
    assert.equal(m.delete(u64(1)), true);
    assert.equal(m.delete(u64(1)), false);

    const entries = Array.from({ length: 1000 }, (_, i) => ({ key: u64(i + 10), value: u64(i * 3) }));
    m.updateBatch(entries);
    const dumped = m.entries(64); // several batch calls
    assert.equal(dumped.length, 1000);
    const got = new Map(dumped.map((e) => [e.key.readBigUInt64LE(0), e.value.readBigUInt64LE(0)]));
    for (let i = 0; i < 1000; i++) assert.equal(got.get(BigInt(i + 10)), BigInt(i * 3));
    assert.equal([...m.keys()].length, 1000);
    assert.equal(m.deleteBatch(entries.slice(0, 400).map((e) => e.key)), 400);
    assert.equal(m.entries().length, 600);
  } finally {
    coll.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('array and per-CPU maps dump and read per CPU', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const sel = BpfObjectSpec.open(objectPath('selftest')).only(['selftest_connect4']).load();
  const rb = BpfObjectSpec.open(objectPath('ringbench')).load();
  try {
    const counters = sel.map('counters');
    assert.equal(counters.entries().length, 8, 'an array has all its slots');
    const stats = rb.map('stats');
    assert.equal(stats.perCpu, true);
    const cpus = native().numPossibleCpus();
    const slots = stats.lookupPerCpu(Buffer.alloc(4));
    assert.equal(slots?.length, cpus);
    // Write a distinct value per CPU and read each back.
    const value = Buffer.alloc(stats.valueBytes);
    for (let c = 0; c < cpus; c++) value.writeBigUInt64LE(BigInt(c + 1), c * 16);
    stats.update(Buffer.alloc(4), value);
    stats.lookupPerCpu(Buffer.alloc(4))!.forEach((s, c) => assert.equal(s.readBigUInt64LE(0), BigInt(c + 1)));
  } finally {
    sel.close();
    rb.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('wrong key or value sizes are refused before the kernel, naming the map', (t) => {
  if (!needsKernel(t)) return;
  const coll = BpfObjectSpec.open(objectPath('selftest')).only(['selftest_connect4']).load();
  try {
    const m = coll.map('connect_dst');
    assert.throws(() => m.lookup(Buffer.alloc(4)), (e: unknown) =>
      e instanceof BpfArgumentError && /lookup on map connect_dst: key is 4 bytes, the map's keys are 8/.test(e.message));
    assert.throws(() => m.update(u64(1), Buffer.alloc(3)), /value is 3 bytes, the map's values are 8/);
    assert.throws(() => m.updateBatch([{ key: u64(1), value: u64(1) }, { key: Buffer.alloc(2), value: u64(1) }]), /update batch \[1\]/);
    assert.equal(m.entries().length, 0, 'a refused batch wrote nothing');
    assert.throws(() => coll.map('events').entries(), /RINGBUF\) cannot be dumped/);
    m.close();
    assert.throws(() => m.lookup(u64(1)), /closed map connect_dst/);
  } finally {
    coll.close();
  }
});
