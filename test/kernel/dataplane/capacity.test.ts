/**
 * A mesh larger than the kernel's tables is refused whole, before anything
 * is written: the services table filling up halfway through the flips would
 * leave some frontends on the new generation and some on the old.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { desiredState, ServicePortSpec } from '../../../src/dataplane/desired';
import { DataplaneError } from '../../../src/dataplane/errors';
import { applyDesired } from '../../../src/dataplane/writer';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { meshEnv, servicePort } from '../../helpers/mesh';
import { dumpPinned } from '../../helpers/pinned';

/** n distinct VIPs in 127.78.0.0/16 and on: one frontend each. */
const vips = (n: number): string[] => Array.from({ length: n }, (_, i) => `127.${78 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);

test('a mesh that does not fit the services or slot table is refused before any write, saying by how much', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'cap');
    const web = (port: number): ServicePortSpec => servicePort('web', ['127.77.0.60'], 80, 'TCP', [{ host: '127.0.0.1', port }, { host: '127.0.0.1', port: port + 1 }]);
    applyDesired(env.dp.maps, desiredState([web(8000)]));
    const state = (): string[][] => [dumpPinned(env.bpffsDir, 'services'), dumpPinned(env.bpffsDir, 'slots')];
    const applied = state();
    const frontendRoom = env.dp.maps.services.info.maxEntries;
    const slotRoom = env.dp.maps.slots.info.maxEntries;

    // web changes (so it would flip first) and a service with one VIP too many for the table comes in.
    const tooManyVips = desiredState([web(9000), servicePort('wide', vips(frontendRoom), 80, 'TCP', [{ host: '127.0.0.1', port: 9100 }])]);
    assert.throws(() => applyDesired(env.dp.maps, tooManyVips), (err: unknown) => {
      assert.ok(err instanceof DataplaneError);
      assert.equal(err.code, 'ECAPACITY');
      assert.match(err.message, new RegExp(`${frontendRoom + 1} frontends \\(VIP:port pairs; 1 in the kernel, ${frontendRoom} new\\) for a table of ${frontendRoom}`));
      assert.match(err.message, /Nothing was changed/);
      return true;
    });
    assert.deepEqual(state(), applied, 'services and slots exactly as before');

    // Weights 1 and 4095 take 4096 slots per service port: one service port more than the table holds.
    const ports = Math.floor(slotRoom / 4096) + 1;
    const heavy = Array.from({ length: ports }, (_, i) =>
      servicePort(`heavy${i}`, ['127.77.1.1'], 1000 + i, 'TCP', [{ host: '127.0.0.1', port: 9200, weight: 1 }, { host: '127.0.0.1', port: 9201, weight: 4095 }]));
    assert.throws(() => applyDesired(env.dp.maps, desiredState([web(8000), ...heavy])), (err: unknown) => {
      assert.ok(err instanceof DataplaneError && err.code === 'ECAPACITY');
      assert.match(err.message, new RegExp(`${2 + ports * 4096} backend slots \\(2 live, ${ports * 4096} for the new generations of changed services\\) for a table of ${slotRoom}`));
      return true;
    });
    assert.deepEqual(state(), applied);

    // What fits still applies: the check counts what is there, not a guess.
    const fits = desiredState([web(8000), ...heavy.slice(0, ports - 2)]);
    const rep = applyDesired(env.dp.maps, fits);
    assert.equal(rep.added, ports - 2);
    assert.equal(dumpPinned(env.bpffsDir, 'slots').length, 2 + (ports - 2) * 4096);
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
