/**
 * The programs write records without waking the reader, which drains on a
 * timer - but once wakeBytes wait they wake it anyway, so a burst cannot fill
 * the ring between two drains. Checked with a reader whose timer is a minute:
 * records arrive at once with a small mark, and not at all (until a drain by
 * hand finds them there) with a mark the ring never reaches.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { MappedRingReader } from '../../../src/bpf/mapped-ring';
import { desiredState } from '../../../src/dataplane/desired';
import { applyDesired } from '../../../src/dataplane/writer';
import { runInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { meshEnv, servicePort, startBackends } from '../../helpers/mesh';
import { waitFor } from '../../helpers/wait';

const CONNECTIONS = 20;

for (const [tag, wakeBytes, wakes] of [['wake-low', 1, true], ['wake-never', 1 << 30, false]] as const) {
  test(`wakeBytes ${wakeBytes}: ${wakes ? 'the programs wake the reader' : 'records wait for the reader\'s timer'}`, async (t) => {
    if (!needsKernel(t)) return;
    const before = snapshot();
    const cleanup = new Cleanup();
    try {
      const env = meshEnv(cleanup, tag, 10_000, { wakeBytes });
      const [port] = await startBackends(cleanup, env, '127.0.0.1', 1);
      applyDesired(env.dp.maps, desiredState([servicePort(tag, ['127.77.0.52'], 80, 'TCP', [{ host: '127.0.0.1', port: port! }])]));
      let records = 0;
      const reader = cleanup.add('reader', new MappedRingReader(env.dp.maps.events, () => records++, { intervalMs: 60_000 }), (r) => r.close());
      await runInCgroup(env.cg.path, 'vip-client', ['tcp', '127.77.0.52', '80', String(CONNECTIONS)], 20_000, env.ns.prefix());
      // The backends are outside the cgroup: one close record per connection, the client's.
      if (wakes) {
        await waitFor(() => records === CONNECTIONS, `${CONNECTIONS} records, woken by the programs`, 3000);
        assert.ok(reader.stats().wakeups >= 1);
      } else {
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(records, 0, 'no wake-up below the mark');
        assert.equal(reader.drain(), CONNECTIONS, 'the records were there, unsignalled');
      }
    } finally {
      await cleanup.run();
    }
    assert.deepEqual(await waitForNoLeftovers(before), []);
  });
}
