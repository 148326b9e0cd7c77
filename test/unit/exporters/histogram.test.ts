import test from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { BucketHistogram } from '../../../src/exporters/histogram';

/** The same observations through prom-client's own Histogram and through ours: identical exposition. */
test('BucketHistogram exposes exactly what a prom-client Histogram would, as text and as JSON', async () => {
  const buckets = [0.001, 0.01, 0.1, 1];
  const samples: [string, number][] = [['a', 0.0005], ['a', 0.001], ['a', 0.05], ['b', 3], ['a', 0.01], ['b', 0.1]];
  const theirs = new Registry();
  const ours = new Registry();
  const ref = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['side'], buckets, registers: [theirs] });
  const h = new BucketHistogram({ name: 'x_seconds', help: 'h', labelNames: ['side'] as const, buckets, registers: [ours] });
  const series = { a: h.series('a', { side: 'a' }), b: h.series('b', { side: 'b' }) };
  for (const [side, v] of samples) {
    ref.observe({ side }, v);
    series[side as 'a' | 'b'].observe(v);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
  // A series exists from its creation, at zero, and reset() zeroes it.
  h.reset();
  assert.match(await ours.metrics(), /^x_seconds_count\{side="a"\} 0$/m);
});
