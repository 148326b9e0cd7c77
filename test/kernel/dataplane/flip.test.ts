/**
 * Backend sets swapped 100 times while clients loop through the VIP: no
 * connect may fail and none may reach a backend after it was removed.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { desiredState } from '../../../src/dataplane/desired';
import { applyDesired, readFrontends } from '../../../src/dataplane/writer';
import { collect, spawnInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { meshEnv, servicePort, startBackends } from '../../helpers/mesh';

interface LoopOut {
  errors: Record<string, number>;
  log: [string, number][];
}

test('100 generation flips under load: zero failed connects, zero connects to a removed backend', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  const FLIPS = 100;
  try {
    const env = meshEnv(cleanup, 'flip');
    const ports = await startBackends(cleanup, env, '127.0.0.1', 2 * (FLIPS + 1));
    const set = (k: number): number[] => [ports[2 * k]!, ports[2 * k + 1]!];
    const desired = (k: number) => desiredState([servicePort('flip', ['127.77.0.30'], 80, 'TCP', set(k).map((p) => ({ host: '127.0.0.1', port: p })))]);
    applyDesired(env.dp.maps, desired(0));

    const child = spawnInCgroup(env.cg.path, 'vip-client', ['tcp-loop', '127.77.0.30', '80', '4000', '4'], env.ns.prefix());
    const done = collect<LoopOut>(child, 60_000);
    await new Promise((r) => setTimeout(r, 300));
    const removedAt = new Map<number, bigint>();
    for (let k = 1; k <= FLIPS; k++) {
      const rep = applyDesired(env.dp.maps, desired(k));
      assert.equal(rep.flipped, 1);
      const now = process.hrtime.bigint();
      for (const p of set(k - 1)) removedAt.set(p, now);
      await new Promise((r) => setTimeout(r, 25));
    }
    const out = (await done).messages[0]!;
    assert.deepEqual(out.errors, {}, 'no connect failed');
    assert.ok(out.log.length > 500, `enough connections raced the flips (${out.log.length})`);
    const late = out.log.filter(([start, port]) => {
      const r = removedAt.get(port);
      return r !== undefined && BigInt(start) > r;
    });
    assert.deepEqual(late, [], 'connects that began after their backend was removed');
    const used = new Set(out.log.map(([, p]) => p));
    assert.ok(used.size > 50, `traffic followed the flips across generations (${used.size} backends used)`);
    // Only the live generation's slots remain.
    const [live] = readFrontends(env.dp.maps);
    assert.equal(live!.gen, FLIPS + 1);
    assert.equal([...env.dp.maps.slots.keys()].length, 2);
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
