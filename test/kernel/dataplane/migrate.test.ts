/**
 * An upgrade from release 0.1, whose socket storage had another layout: the
 * adopting dataplane converts each open connection's state into the new map
 * (bpf/mesh_migrate.bpf.c), so a connection open across the upgrade is still
 * reported - with the VIP, service and start the old programs recorded - and
 * its bytes are counted once: all of them for a connection never reported
 * before, only those since the upgrade for one that was.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BpfObjectSpec, native } from '../../../src/bpf';
import { BPF_OUTPUT_DIR } from '../../../src/bpf/objects';
import { RingBufferReader } from '../../../src/bpf/ringbuf';
import { Dataplane } from '../../../src/dataplane/dataplane';
import { ScratchCgroup } from '../../../src/platform/cgroup';
import { ConnectionRecord, decodeRecord } from '../../../src/telemetry/record';
import { collect, spawnInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { TestNetns } from '../../helpers/netns';
import { waitFor } from '../../helpers/wait';

test('an upgrade from the 0.1 socket-storage layout carries open connections over', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const ns = cleanup.add('netns', TestNetns.create('mig'), (n) => n.remove());
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-mig`), (c) => c.remove());
    const dir = `/sys/fs/bpf/sockmesh-test-${process.pid}-mig`;
    cleanup.defer('pins', () => {
      if (fs.existsSync(dir)) Dataplane.uninstallPinned(dir);
    });
    // The old release's socket state, kept by its own sockops program.
    const v1 = cleanup.add('v1 object', BpfObjectSpec.open(path.join(BPF_OUTPUT_DIR, 'sock_v1.bpf.o')).load(), (c) => c.close());
    const v1ops = cleanup.add('v1 link', v1.program('sock_v1_ops').attachCgroup(cg.path, native().constants.attachType.CGROUP_SOCK_OPS),
      (l) => l.close());

    const client = spawnInCgroup(cg.path, 'steps', ['18095', '127.0.0.1:18095'], ns.prefix());
    cleanup.defer('client', () => void client.kill('SIGKILL'));
    const msgs: { localPort?: number; sent?: number; done?: boolean }[] = [];
    const done = collect<{ localPort?: number; sent?: number; done?: boolean }>(client, 30_000, (m) => msgs.push(m));
    await waitFor(() => msgs.some((m) => m.localPort), 'the client connected');
    const localPort = msgs.find((m) => m.localPort)!.localPort!;
    client.stdin!.write('send 3000\n');
    await waitFor(() => msgs.some((m) => m.sent === 3000), '3000 bytes written');

    // Pinned state as the old release left it: its sock_info at the pin.
    const base = { bpffsDir: dir, cgroupPath: cg.path, reportIntervalMs: 60_000 };
    Dataplane.open(base).close();
    v1.map('sock_info').pinReplacing(path.join(dir, 'maps', 'sock_info'));
    const dp = cleanup.add('dataplane', Dataplane.open(base), (d) => d.close());
    if (dp.outcome.kind !== 'adopted') assert.fail('adopted');
    assert.deepEqual(dp.outcome.replacedMaps.map((m) => [m.name, m.action, m.via, m.migrated]),
      [['sock_info', 'migrate', 'mesh_migrate_sock_v1', 2]], 'both sides of the open connection carried over');
    v1ops.detach(); // the old release's programs are gone

    const records: ConnectionRecord[] = [];
    cleanup.add('reader', new RingBufferReader(dp.maps.events, (b, o, l) => records.push(decodeRecord(b, o, l)), { intervalMs: 10 }), (r) => r.close());
    client.stdin!.write('send 1000\n');
    await waitFor(() => msgs.some((m) => m.sent === 4000), '1000 more bytes written');
    client.stdin!.write('close\n');
    await done;
    await waitFor(() => records.filter((r) => r.kind === 'close').length >= 2, 'both close records', 5000);

    const c = records.find((r) => r.kind === 'close' && r.side === 'client')!;
    assert.equal(c.local.port, localPort);
    assert.deepEqual(c.vip, { address: '127.77.0.99', port: 80 }, 'the VIP the old programs recorded');
    assert.deepEqual([c.serviceId, c.backendId], [77, 7]);
    assert.ok(c.durationNs > 0 && c.startNs > 0, 'the start the old programs recorded');
    assert.deepEqual([c.first, c.bytesSent, c.newBytesSent], [true, 4000, 4000], 'never reported before: everything is new');
    const s = records.find((r) => r.kind === 'close' && r.side === 'server')!;
    assert.equal(s.remote.port, localPort);
    assert.deepEqual([s.first, s.bytesReceived, s.newBytesReceived], [false, 4000, 1000], 'reported before the upgrade: only what came since');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
