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
import { TestNetns } from '../../helpers/netns';
import { ScratchCgroup } from '../../../src/platform/cgroup';

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

test('bare_connect4 rewrites its one VIP with no map and no socket storage; floor_callbacks beside it keeps connections whole', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const ns = cleanup.add('netns', TestNetns.create('bare'), (n) => n.remove());
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-bare`), (c) => c.remove());
    const be16 = (p: number): number => ((p & 0xff) << 8) | (p >> 8);
    const ip = (a: string): number => Buffer.from(a.split('.').map(Number)).readUInt32LE(0); // network order, as the context holds it
    const coll = cleanup.add('bare object', BpfObjectSpec.open(objectPath('sockopsbench'))
      .setConstants({ bare_vip: ip('127.77.0.52'), bare_vport: be16(80), bare_backend: ip('127.0.0.1'), bare_bport: be16(18092) })
      .only(['bare_connect4', 'floor_callbacks']).load(), (c) => c.close());
    cleanup.add('connect4 link', coll.program('bare_connect4').attachCgroup(cg.path), (l) => l.close());
    cleanup.add('sockops link', coll.program('floor_callbacks').attachCgroup(cg.path), (l) => l.close());
    // The fixture serves 18092 and dials the VIP: it only connects if the rewrite happened.
    const out = await collect<{ localPort?: number; done?: boolean }>(spawnInCgroup(cg.path, 'idle', ['18092', '127.77.0.52:80', '100'], ns.prefix()), 20_000);
    assert.equal(out.code, 0, out.stderr);
    assert.ok(out.messages.some((m) => m.localPort !== undefined), 'connected through the VIP');
    assert.ok(out.messages.some((m) => m.done), 'and closed cleanly');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
