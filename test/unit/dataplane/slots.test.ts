import test from 'node:test';
import assert from 'node:assert/strict';
import { slotTable, weightsToSlots } from '../../../src/dataplane/slots';
import { assignIds, fnv1a32 } from '../../../src/dataplane/ids';
import { formatAddr, parseAddr, addrFromWords, wordsFromAddr } from '../../../src/dataplane/addr';

test('weights reduce by their GCD; zero weights get no slot', () => {
  assert.deepEqual(weightsToSlots([2, 4, 0, 6], 4096), [1, 2, 0, 3]);
  assert.deepEqual(weightsToSlots([0, 0], 4096), [0, 0]);
  assert.deepEqual(weightsToSlots([7], 4096), [1]);
});

test('past the slot limit, shares stay proportional and every positive weight keeps a slot', () => {
  const counts = weightsToSlots([1000, 999, 1, 500], 64);
  assert.equal(counts.reduce((a, b) => a + b, 0), 64);
  assert.ok(counts.every((c) => c >= 1));
  const share = (i: number): number => counts[i]! / 64;
  assert.ok(Math.abs(share(0) - 1000 / 2500) < 0.03, `share ${share(0)}`);
  assert.ok(Math.abs(share(3) - 500 / 2500) < 0.03);
  assert.throws(() => weightsToSlots(Array(5).fill(1), 4), /exceed 4 slots/);
});

test('the slot table interleaves backends and holds each exactly its count', () => {
  const t = slotTable([1, 3, 2]);
  assert.deepEqual(t, [0, 1, 2, 1, 2, 1]);
});

test('ids are stable, distinct, never 0, and independent of input order', () => {
  const a = assignIds(['default/web:80', 'default/db:5432', 'shop/cart:http']);
  const b = assignIds(['shop/cart:http', 'default/web:80', 'default/db:5432']);
  assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort());
  assert.equal(new Set(a.values()).size, 3);
  assert.ok([...a.values()].every((v) => v > 0));
  assert.equal(a.get('default/web:80'), fnv1a32('default/web:80'));
});

test('addresses: IPv4 is stored v4-mapped; IPv6 text is canonical; words round-trip', () => {
  const v4 = parseAddr('127.77.0.10');
  assert.equal(v4.bytes.toString('hex'), '00000000000000000000ffff7f4d000a');
  assert.equal(formatAddr(v4.bytes), '127.77.0.10');
  const v6 = parseAddr('fd77:0:0:0::10');
  assert.equal(v6.text, 'fd77::10');
  assert.equal(formatAddr(parseAddr('2001:db8::1:0:0:1').bytes), '2001:db8::1:0:0:1');
  assert.equal(formatAddr(Buffer.from('00000000000000000000ffff01020304', 'hex')), '1.2.3.4');
  assert.deepEqual(addrFromWords(wordsFromAddr(v6.bytes)), v6.bytes);
  assert.throws(() => parseAddr('300.1.1.1'), /not an IP address/);
});
