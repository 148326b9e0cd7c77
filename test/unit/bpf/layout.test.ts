import test from 'node:test';
import assert from 'node:assert/strict';
import { struct } from '../../../src/bpf/layout';

const L = struct('t', {
  a: 'u8',
  b: 'u32', // aligned to 4
  c: 'u64n',
  d: ['u16', 3],
  e: 'u64',
  _pad0: 'u32',
});

test('offsets follow C natural alignment and the size rounds to the largest member', () => {
  assert.deepEqual(L.fields.map((f) => [f.name, f.offset, f.size]), [
    ['a', 0, 1], ['b', 4, 4], ['c', 8, 8], ['d', 16, 6], ['e', 24, 8], ['_pad0', 32, 4],
  ]);
  assert.equal(L.size, 40);
});

test('decode and view read the same values; padding is not exposed', () => {
  const b = Buffer.alloc(L.size + 8);
  const o = 8;
  b[o] = 7;
  b.writeUInt32LE(0xdeadbeef, o + 4);
  b.writeBigUInt64LE(2n ** 52n + 3n, o + 8);
  b.writeUInt16LE(1, o + 16);
  b.writeUInt16LE(2, o + 18);
  b.writeUInt16LE(65535, o + 20);
  b.writeBigUInt64LE(2n ** 64n - 1n, o + 24);
  const d = L.decode(b, o);
  assert.deepEqual(d, { a: 7, b: 0xdeadbeef, c: 2 ** 52 + 3, d: [1, 2, 65535], e: 2n ** 64n - 1n });
  const v = L.view().at(b, o);
  assert.equal(v.a, 7);
  assert.equal(v.b, 0xdeadbeef);
  assert.equal(v.c, 2 ** 52 + 3);
  assert.deepEqual(v.d, [1, 2, 65535]);
  assert.equal(v.e, 2n ** 64n - 1n);
  assert.equal('_pad0' in d, false);
});

test('a view is a flyweight: re-pointing it reads the next record', () => {
  const S = struct('s', { x: 'u32' });
  const b = Buffer.alloc(8);
  b.writeUInt32LE(1, 0);
  b.writeUInt32LE(2, 4);
  const v = S.view();
  assert.equal(v.at(b, 0).x, 1);
  assert.equal(v.at(b, 4).x, 2);
});

test('reads past the end of the buffer throw instead of returning garbage', () => {
  assert.throws(() => L.decode(Buffer.alloc(10), 0), RangeError);
});

test('encode writes the C bytes decode reads back; padding and omitted fields are zero', () => {
  const b = L.encode({ a: 7, b: 0xdeadbeef, c: 2 ** 52 + 3, d: [1, 2, 65535], e: 2n ** 64n - 1n });
  assert.equal(b.length, L.size);
  assert.deepEqual(L.decode(b, 0), { a: 7, b: 0xdeadbeef, c: 2 ** 52 + 3, d: [1, 2, 65535], e: 2n ** 64n - 1n });
  assert.equal(b.readUInt32LE(32), 0, '_pad0');
  assert.deepEqual([...b.subarray(1, 4)], [0, 0, 0], 'alignment gap');
  assert.deepEqual(L.decode(L.encode({ b: 5 }), 0), { a: 0, b: 5, c: 0, d: [0, 0, 0], e: 0n });
  assert.throws(() => L.encode({ d: [1, 2] }), /t\.d: 2 values for 3/);
});
