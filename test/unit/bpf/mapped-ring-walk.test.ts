import test from 'node:test';
import assert from 'node:assert/strict';
import { compileRingWalk, MAX_MAPPED_RING_BYTES } from '../../../src/bpf/mapped-ring';
import { BpfArgumentError } from '../../../src/bpf/errors';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;

/**
 * A ring laid out as the kernel lays it out: a data area of `size` bytes seen
 * twice back to back (here a copy: the kernel maps the same pages twice),
 * 8-byte headers {len | flags, page offset}, records padded to 8.
 */
class FakeRing {
  readonly data: Buffer;
  prod: number;
  constructor(readonly size: number, readonly start: number) {
    this.data = Buffer.alloc(size * 2);
    this.prod = start;
  }

  /** Appends a record whose payload is `payload`; returns its position. */
  push(payload: Buffer, flags = 0): number {
    const at = this.prod;
    const off = at % this.size;
    const rec = Buffer.alloc(8 + payload.length);
    rec.writeUInt32LE((payload.length | flags) >>> 0, 0);
    payload.copy(rec, 8);
    for (let i = 0; i < rec.length; i++) {
      const o = (off + i) % this.size;
      this.data[o] = rec[i]!;
      this.data[o + this.size] = rec[i]!;
    }
    this.prod += (8 + payload.length + 7) & ~7;
    return at;
  }
}

function collect(ring: FakeRing) {
  const seen: string[] = [];
  const errors = { handlerErrors: 0 };
  const walk = compileRingWalk({
    data: ring.data, size: ring.size, errors,
    onRecord: (buf, off, len) => { seen.push(buf.toString('utf8', off, off + len)); },
  });
  return { walk, seen, errors };
}

test('positions past 2^31 and 2^32 walk like small ones, across the wrap', () => {
  for (const start of [0, 2 ** 31 - 24, 2 ** 32 + 4096 - 16, 2 ** 40 + 40]) {
    const ring = new FakeRing(4096, start);
    const words = Array.from({ length: 300 }, (_, i) => `record-${i}`);
    const { walk, seen } = collect(ring);
    let cons = start;
    let total = 0;
    // Several drains, each a chunk that fits the ring: the data area is reused.
    for (let i = 0; i < words.length; i += 100) {
      for (const w of words.slice(i, i + 100)) ring.push(Buffer.from(w));
      const r = walk(cons, ring.prod);
      assert.equal(r.cons, ring.prod, `start ${start}: walked to the producer`);
      total += r.n;
      cons = r.cons;
    }
    assert.equal(total, words.length);
    assert.deepEqual(seen, words, `start ${start}`);
  }
});

test('stops at a busy record and skips discarded ones', () => {
  const ring = new FakeRing(1024, 2 ** 33);
  const { walk, seen } = collect(ring);
  ring.push(Buffer.from('a'));
  ring.push(Buffer.from('dropped'), DISCARD);
  ring.push(Buffer.from('b'));
  const busyAt = ring.push(Buffer.from('pending'), BUSY);
  ring.push(Buffer.from('after'));
  const r = walk(2 ** 33, ring.prod);
  assert.deepEqual(seen, ['a', 'b']);
  assert.equal(r.n, 2);
  assert.equal(r.cons, busyAt, 'the consumer position stays on the busy record');
});

test('a throwing handler is counted and the walk goes on', () => {
  const ring = new FakeRing(1024, 0);
  for (const w of ['x', 'boom', 'y']) ring.push(Buffer.from(w));
  const errors = { handlerErrors: 0 };
  const seen: string[] = [];
  const thrown: unknown[] = [];
  const walk = compileRingWalk({
    data: ring.data, size: ring.size, errors, onError: (e) => thrown.push(e),
    onRecord: (buf, off, len) => {
      const s = buf.toString('utf8', off, off + len);
      if (s === 'boom') throw new Error(s);
      seen.push(s);
    },
  });
  assert.equal(walk(0, ring.prod).n, 3);
  assert.deepEqual(seen, ['x', 'y']);
  assert.equal(errors.handlerErrors, 1);
  assert.equal((thrown[0] as Error).message, 'boom');
});

test('refuses a data area it cannot address', () => {
  const errors = { handlerErrors: 0 };
  const onRecord = () => undefined;
  assert.throws(() => compileRingWalk({ data: Buffer.alloc(3000 * 2), size: 3000, onRecord, errors }), BpfArgumentError);
  assert.throws(() => compileRingWalk({ data: Buffer.alloc(4096), size: 4096, onRecord, errors }), /mapped twice/);
  assert.equal(MAX_MAPPED_RING_BYTES, 2 ** 30);
});
