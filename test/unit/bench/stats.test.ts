/**
 * The benches' interval for a median: order statistics chosen by the
 * binomial distribution, checked against values worked out by hand.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { medianInterval } from '../../../bench/lib/stats';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => n - i); // n..1, unsorted on purpose

test('few values: the interval is their whole range, with the coverage it really has', () => {
  const r = medianInterval(range(5));
  assert.deepEqual([r.lo, r.hi], [1, 5]);
  assert.equal(r.coverage, 1 - 2 / 32); // 93.75%: five values cannot give 95%
});

test('more values: the innermost order statistics that still cover 95%', () => {
  // n = 10: [x(2), x(9)] covers 1 - 2 * 11/1024 = 97.9%; [x(3), x(8)] only 89.1%.
  const r10 = medianInterval(range(10));
  assert.deepEqual([r10.lo, r10.hi], [2, 9]);
  assert.ok(Math.abs(r10.coverage - (1 - 22 / 1024)) < 1e-12);
  // n = 20: P(B < 6) = 0.0207 -> [x(6), x(15)] covers 95.9%; k = 7 would cover 88.5%.
  const r20 = medianInterval(range(20));
  assert.deepEqual([r20.lo, r20.hi], [6, 15]);
  assert.ok(r20.coverage >= 0.95 && r20.coverage < 0.96);
  // A lower confidence narrows it.
  const r20w = medianInterval(range(20), 0.8);
  assert.ok(r20w.hi - r20w.lo < r20.hi - r20.lo);
});

test('NaN values are left out; none at all give NaN bounds', () => {
  assert.deepEqual(medianInterval([NaN, 3, 1, 2, NaN]).lo, 1);
  const r = medianInterval([]);
  assert.ok(Number.isNaN(r.lo) && Number.isNaN(r.hi) && Number.isNaN(r.coverage));
});
