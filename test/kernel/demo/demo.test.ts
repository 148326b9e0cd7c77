/**
 * The README's first command, end to end: the demo builds its pods, the
 * agent balances and measures their traffic through the VIPs, and stopping
 * leaves nothing behind.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../../src/bpf/native';
import type { DemoSummary } from '../../../src/demo/demo';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';

test('sockmesh demo: traffic through every VIP, both reviews versions, nothing left afterwards', { timeout: 120_000 }, async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const netnsBefore = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const out = execFileSync(process.execPath, [path.join(repoRoot, 'dist/src/cli/main.js'), 'demo', '--duration', '6', '-o', 'json', '--metrics-address', '127.0.0.1:0'],
    { encoding: 'utf8', timeout: 100_000 });
  const summary = JSON.parse(out.trim().split('\n').at(-1)!) as DemoSummary;
  const edge = (workload: string, service: string, backend: string) =>
    summary.edges.find((e) => e.side === 'client' && e.workload === `default/${workload}` && e.service === service && e.backend === backend);
  for (const [w, s, b] of [
    ['loadgen', 'default/frontend:http', '198.18.0.11:8080'],
    ['frontend', 'default/reviews:http', '198.18.0.21:9080'],
    ['frontend', 'default/reviews:http', '198.18.0.22:9080'],
    ['reviews-v2', 'default/ratings:http', '198.18.0.31:9080'],
  ] as const) {
    const e = edge(w, s, b);
    assert.ok(e && e.opened > 10, `${w} -> ${s} -> ${b}: ${JSON.stringify(e)}`);
    assert.equal(e.failed, 0);
    assert.ok(e.bytesSent > 0 && e.bytesReceived > 0);
  }
  assert.ok(!edge('reviews-v1', 'default/ratings:http', '198.18.0.31:9080'), 'reviews v1 calls nobody');
  assert.ok(summary.edges.some((e) => e.side === 'server' && e.workload === 'default/ratings' && e.service === 'default/ratings:http'),
    'server side attributed to its service');
  assert.deepEqual(await waitForNoLeftovers(before), []);
  assert.equal(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), netnsBefore, 'every demo netns removed');
});
