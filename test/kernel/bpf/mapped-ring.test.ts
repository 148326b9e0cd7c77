/**
 * The zero-copy reader against the same in-kernel producer as ringbuf.test:
 * every record the kernel kept is read once, intact and in order, also across
 * the ring's wrap-around; a slow reader leaves records in the ring, where the
 * producer counts its drops.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { MappedRingReader } from '../../../src/bpf/mapped-ring';
import { RingbenchRecord } from '../../../src/bpf/layouts/ringbench';
import { needsKernel } from '../../helpers/kernel';
import { loadRingbench, produceArgs, producerTotals } from '../../helpers/ringbench';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { waitFor } from '../../helpers/wait';




function collector(): { seqs: number[]; onRecord: (b: Buffer, o: number, l: number) => void } {
  const seqs: number[] = [];
  const view = RingbenchRecord.view();
  return {
    seqs,
    onRecord: (b, o, l) => {
      const r = view.at(b, o);
      assert.equal(l, r.size);
      assert.equal(r.check, ((r.seq ^ 0x5eed5eed) >>> 0), `record ${r.seq} intact`);
      seqs.push(r.seq);
    },
  };
}

test('mapped reader: a full ring, then many wrap-arounds, every record once and in order', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = loadRingbench(16 * 1024, 56); // 64-byte slots do not divide the ring evenly with 56+8: records wrap
  try {
    coll.program('produce').testRun({ ctx: produceArgs(0, 1000) });
    const first = producerTotals(coll);
    const c = collector();
    // The per-batch hook runs before each drain that has records to hand out.
    const order: ('drain' | 'record')[] = [];
    const reader = new MappedRingReader(coll.map('records'), (b, o, l) => {
      order.push('record');
      c.onRecord(b, o, l);
    }, { onDrain: () => order.push('drain') });
    await waitFor(() => c.seqs.length >= first.produced, `${first.produced} pre-filled records`);
    assert.equal(order[0], 'drain');
    assert.ok(order.lastIndexOf('drain') < order.length - 1, 'no drain without records after it');
    assert.deepEqual(c.seqs, Array.from({ length: first.produced }, (_, i) => i));
    // Many rounds through the 16 KiB ring while the reader keeps up.
    let seq = 1000;
    for (let i = 0; i < 200; i++) {
      coll.program('produce').testRun({ ctx: produceArgs(seq, 100) });
      seq += 100;
      await waitFor(() => c.seqs.length === producerTotals(coll).produced, 'reader caught up', 2000);
    }
    await reader.close({ drain: true });
    const { produced, dropped } = producerTotals(coll);
    assert.equal(produced + dropped, 1000 + 200 * 100);
    assert.equal(c.seqs.length, produced);
    for (let i = 1; i < c.seqs.length; i++) assert.ok(c.seqs[i]! > c.seqs[i - 1]!, `order at ${i}`);
    assert.equal(reader.stats().records, produced);
  } finally {
    coll.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('mapped reader: a slow handler leaves records in the ring; produced = consumed + dropped', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = loadRingbench(64 * 1024);
  try {
    const c = collector();
    let errors = 0;
    const reader = new MappedRingReader(coll.map('records'), (b, o, l) => {
      c.onRecord(b, o, l);
      if (c.seqs.length % 1000 === 0) throw new Error('every thousandth record fails');
      const until = process.hrtime.bigint() + 2000n;
      while (process.hrtime.bigint() < until);
    }, {}, () => errors++);
    let seq = 0;
    for (let i = 0; i < 20; i++) {
      await coll.program('produce').testRunAsync({ ctx: produceArgs(seq, 5000) });
      seq += 5000;
    }
    const { produced, dropped } = producerTotals(coll);
    assert.equal(produced + dropped, 100_000);
    assert.ok(dropped > 0, 'the handler was slow enough to fill the ring');
    await waitFor(() => c.seqs.length === produced, 'all kept records read', 20_000);
    await reader.close();
    assert.equal(errors, Math.floor(produced / 1000), 'a throwing handler costs only its record');
    for (let i = 1; i < c.seqs.length; i++) assert.ok(c.seqs[i]! > c.seqs[i - 1]!, `order at ${i}`);
  } finally {
    coll.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('mapped reader: close during production returns promptly and is idempotent', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = loadRingbench(1024 * 1024);
  try {
    for (let round = 0; round < 5; round++) {
      const reader = new MappedRingReader(coll.map('records'), () => undefined, { intervalMs: round });
      const producing = coll.program('produce').testRunAsync({ ctx: produceArgs(0, 100_000) });
      await new Promise((r) => setTimeout(r, round * 3));
      const t0 = Date.now();
      await reader.close();
      await reader.close();
      assert.ok(Date.now() - t0 < 1000);
      await producing;
    }
  } finally {
    coll.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
