/**
 * The ring-buffer consumer against a real in-kernel producer (ringbench's
 * SEC("syscall") program run through test_run): exact accounting under
 * overflow, backpressure, handler failures and stop while producing.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { RingBufferReader, BpfArgumentError } from '../../../src/bpf';
import { RingbenchRecord } from '../../../src/bpf/layouts/ringbench';
import { needsKernel } from '../../helpers/kernel';
import { loadRingbench, produceArgs, producerTotals } from '../../helpers/ringbench';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { waitFor } from '../../helpers/wait';




/** Records as seen by the consumer, checked for tearing and order. */
class Seen {
  seqs: number[] = [];
  onRecord = (buf: Buffer, off: number, len: number): void => {
    const r = RingbenchRecord.decode(buf, off);
    assert.equal(len, r.size, 'framing length equals the record\'s own size field');
    assert.equal(r.check, ((r.seq ^ 0x5eed5eed) >>> 0), `record ${r.seq} intact`);
    this.seqs.push(r.seq);
  };
  assertStrictlyIncreasing(): void {
    for (let i = 1; i < this.seqs.length; i++) {
      if (!(this.seqs[i]! > this.seqs[i - 1]!)) assert.fail(`seq ${this.seqs[i]} after ${this.seqs[i - 1]} at ${i}`);
    }
  }
}

test('a full ring: the producer counts every drop and the consumer gets every record that was kept', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = loadRingbench(16 * 1024);
  try {
    const r = coll.program('produce').testRun({ ctx: produceArgs(0, 10_000) });
    assert.equal(r.retval, 10_000, 'bpf_loop ran every iteration');
    const { produced, dropped } = producerTotals(coll);
    assert.equal(produced + dropped, 10_000);
    // 64-byte records plus the 8-byte kernel header fill 16 KiB after 227.
    assert.equal(produced, Math.floor(16 * 1024 / 72));
    const seen = new Seen();
    const reader = new RingBufferReader(coll.map('records'), seen.onRecord);
    await waitFor(() => seen.seqs.length >= produced, `${produced} records`);
    await reader.close();
    assert.equal(seen.seqs.length, produced, 'nothing consumed twice');
    assert.deepEqual(seen.seqs, Array.from({ length: produced }, (_, i) => i), 'the kept records are the first ones, in order');
    assert.equal(reader.stats().records, produced);
  } finally {
    coll.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a slow consumer with one batch in flight: produced = consumed + dropped, exactly', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = loadRingbench(64 * 1024);
  const seen = new Seen();
  let reader: RingBufferReader | undefined;
  let maxInFlight = 0;
  let closing = false; // stop(drain) ignores the limit by design: sample before it
  try {
    reader = new RingBufferReader(coll.map('records'), (b, o, l) => {
      seen.onRecord(b, o, l);
      if (!closing && seen.seqs.length % 64 === 0) maxInFlight = Math.max(maxInFlight, reader!.stats().inFlight);
      const until = process.hrtime.bigint() + 2000n; // 2 µs a record: slower than the kernel
      while (process.hrtime.bigint() < until);
    }, { maxBatchBytes: 4096, maxInFlight: 1 });
    const prog = coll.program('produce');
    let seq = 0;
    for (let i = 0; i < 20; i++) {
      await prog.testRunAsync({ ctx: produceArgs(seq, 5000) });
      seq += 5000;
    }
    const { produced, dropped } = producerTotals(coll);
    assert.equal(produced + dropped, 100_000);
    assert.ok(dropped > 0, 'the consumer was slow enough to fill the ring');
    closing = true;
    await reader.close({ drain: true });
    assert.equal(seen.seqs.length, produced, 'every record the kernel kept was delivered once');
    seen.assertStrictlyIncreasing();
    const st = reader.stats();
    assert.equal(st.records, produced);
    assert.ok(st.backpressureWaits > 0, 'the in-flight limit held the poll thread back');
    assert.ok(maxInFlight <= 1, `never more than maxInFlight batches handed to JS (saw ${maxInFlight})`);
  } finally {
    await reader?.close();
    coll.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('handler errors are counted and never stop the consumer', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = loadRingbench(1024 * 1024);
  try {
    let ok = 0;
    const errors: unknown[] = [];
    const reader = new RingBufferReader(coll.map('records'), (b, o) => {
      if (RingbenchRecord.decode(b, o).seq % 100 === 7) throw new Error('bad record');
      ok++;
    }, { maxBatchBytes: 64 }, (e) => errors.push(e));
    // One record per batch (64-byte batches) so each error costs only its record.
    coll.program('produce').testRun({ ctx: produceArgs(0, 1000) });
    await waitFor(() => reader.stats().records === 1000 && ok + errors.length === 1000, 'all records handled');
    await reader.close();
    assert.equal(errors.length, 10);
    assert.equal(reader.stats().handlerErrors, 10);
    assert.equal(ok, 990);
  } finally {
    coll.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('close while the kernel is producing returns promptly; close is idempotent', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = loadRingbench(1024 * 1024);
  try {
    for (let round = 0; round < 5; round++) {
      let n = 0;
      const reader = new RingBufferReader(coll.map('records'), () => void n++, { maxInFlight: 2, maxBatchBytes: 8192 });
      const producing = coll.program('produce').testRunAsync({ ctx: produceArgs(0, 200_000) });
      await new Promise((r) => setTimeout(r, round * 3));
      const t0 = Date.now();
      await reader.close();
      await reader.close();
      assert.ok(Date.now() - t0 < 2000, 'stop joined the poll thread without waiting on JS');
      await producing;
      const st = reader.stats();
      assert.equal(st.records, n, 'every record taken from the ring reached the handler');
    }
  } finally {
    coll.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('reader options and map type are validated', (t) => {
  if (!needsKernel(t)) return;
  const coll = loadRingbench(16 * 1024);
  try {
    assert.throws(() => new RingBufferReader(coll.map('stats'), () => undefined), /stats is PERCPU_ARRAY, not RINGBUF/);
    assert.throws(() => new RingBufferReader(coll.map('records'), () => undefined, { maxInFlight: 0 }), BpfArgumentError);
    assert.throws(() => new RingBufferReader(coll.map('records'), () => undefined, { maxBatchBytes: 1.5 }), /maxBatchBytes/);
  } finally {
    coll.close();
  }
});
