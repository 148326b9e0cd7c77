/**
 * bench service's floor variants stand for what they claim: floor_callbacks
 * keeps no state of its own, floor_storage gives both sides of a connection
 * the mesh's socket storage, and neither writes a record of its own. Checked
 * with the mesh's own report run, which counts the tracked sockets it walks.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { BpfObjectSpec, objectPath } from '../../../src/bpf';
import { MeshCounter } from '../../../src/bpf/layouts/mesh';
import { desiredState } from '../../../src/dataplane/desired';
import { applyDesired } from '../../../src/dataplane/writer';
import { collect, spawnInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { meshEnv, servicePort } from '../../helpers/mesh';
import { waitFor } from '../../helpers/wait';

for (const [program, tracked] of [['floor_callbacks', 0], ['floor_storage', 2]] as const) {
  test(`${program}: ${tracked} tracked sockets per connection through a VIP, no records`, async (t) => {
    if (!needsKernel(t)) return;
    const before = snapshot();
    const cleanup = new Cleanup();
    try {
      const env = meshEnv(cleanup, program.replace('_', '-'));
      applyDesired(env.dp.maps, desiredState([servicePort(program, ['127.77.0.51'], 80, 'TCP', [{ host: '127.0.0.1', port: 18091 }])]));
      // As the bench sets it up: the mesh's connect4, the floor program in place of its sockops.
      env.dp.links.get('sockops')!.detach();
      const coll = cleanup.add('floor object', BpfObjectSpec.open(objectPath('sockopsbench'))
        .reuseMap('sock_info', env.dp.maps.sock_info).only([program]).load(), (c) => c.close());
      cleanup.add('floor link', coll.program(program).attachCgroup(env.cg.path), (l) => l.close());

      const child = spawnInCgroup(env.cg.path, 'idle', ['18091', '127.77.0.51:80', '1000'], env.ns.prefix());
      let connected = false;
      const done = collect<{ localPort?: number }>(child, 20_000, (m) => { connected ||= m.localPort !== undefined; });
      await waitFor(() => connected, 'the client connected through the VIP');
      assert.equal(env.dp.counter(MeshCounter.EVENTS), 0, 'no record at connect');
      assert.equal(env.dp.reportOpenConnections(), tracked, 'tracked sockets of the open connection');
      // The report run itself writes an interim record per tracked socket; the close writes none.
      const reported = env.dp.counter(MeshCounter.EVENTS);
      await done;
      assert.equal(env.dp.counter(MeshCounter.EVENTS), reported, 'no record at close');
      assert.equal(env.dp.counter(MeshCounter.STORAGE_FAILED), 0);
    } finally {
      await cleanup.run();
    }
    assert.deepEqual(await waitForNoLeftovers(before), []);
  });
}
