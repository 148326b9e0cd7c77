/**
 * Another release's socket state under open connections: release 0.1's
 * (another layout: an upgrade) or a newer one's (this layout with fields
 * appended: a rollback). The adopting dataplane converts each open
 * connection's state into its map (bpf/mesh_migrate.bpf.c), so a connection
 * open across the change is still reported - with the VIP, service and start
 * the other programs recorded - and its bytes are counted once: all of them
 * for a connection never reported before, only those since for one that was.
 */
import test, { TestContext } from 'node:test';
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

interface Scenario {
  tag: string;
  /** test/bpf object and its sockops program keeping the other release's socket state */
  object: string;
  program: string;
  via: string;
  /** what that program recorded for the client (bpf/ fixture) */
  vip: string;
  ids: [number, number];
}

/**
 * A connection opened under another release's socket state (its own sockops
 * program), 3000 bytes sent; then this release's dataplane adopts those pins
 * and that state, the old program goes, 1000 more bytes and the close.
 */
async function acrossRelease(t: TestContext, sc: Scenario): Promise<{ client: ConnectionRecord; server: ConnectionRecord; localPort: number } | undefined> {
  if (!needsKernel(t)) return undefined;
  const cleanup = new Cleanup();
  try {
    const ns = cleanup.add('netns', TestNetns.create(sc.tag), (n) => n.remove());
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-${sc.tag}`), (c) => c.remove());
    const dir = `/sys/fs/bpf/sockmesh-test-${process.pid}-${sc.tag}`;
    cleanup.defer('pins', () => {
      if (fs.existsSync(dir)) Dataplane.uninstallPinned(dir);
    });
    // The other release's socket state, kept by its own sockops program.
    const other = cleanup.add('other object', BpfObjectSpec.open(path.join(BPF_OUTPUT_DIR, `${sc.object}.bpf.o`)).load(), (c) => c.close());
    const otherOps = cleanup.add('other link', other.program(sc.program).attachCgroup(cg.path, native().constants.attachType.CGROUP_SOCK_OPS),
      (l) => l.close());

    const child = spawnInCgroup(cg.path, 'steps', ['18095', '127.0.0.1:18095'], ns.prefix());
    cleanup.defer('client', () => void child.kill('SIGKILL'));
    const msgs: { localPort?: number; sent?: number; done?: boolean }[] = [];
    const done = collect<{ localPort?: number; sent?: number; done?: boolean }>(child, 30_000, (m) => msgs.push(m));
    await waitFor(() => msgs.some((m) => m.localPort), 'the client connected');
    const localPort = msgs.find((m) => m.localPort)!.localPort!;
    child.stdin!.write('send 3000\n');
    await waitFor(() => msgs.some((m) => m.sent === 3000), '3000 bytes written');

    // Pinned state as the other release left it: its sock_info at the pin.
    const base = { bpffsDir: dir, cgroupPath: cg.path, reportIntervalMs: 60_000 };
    Dataplane.open(base).close();
    other.map('sock_info').pinReplacing(path.join(dir, 'maps', 'sock_info'));
    const dp = cleanup.add('dataplane', Dataplane.open(base), (d) => d.close());
    if (dp.outcome.kind !== 'adopted') assert.fail('adopted');
    assert.deepEqual(dp.outcome.replacedMaps.map((m) => [m.name, m.action, m.via, m.migrated]),
      [['sock_info', 'migrate', sc.via, 2]], 'both sides of the open connection carried over');
    otherOps.detach(); // the other release's programs are gone

    const records: ConnectionRecord[] = [];
    cleanup.add('reader', new RingBufferReader(dp.maps.events, (b, o, l) => records.push(decodeRecord(b, o, l)), { intervalMs: 10 }), (r) => r.close());
    child.stdin!.write('send 1000\n');
    await waitFor(() => msgs.some((m) => m.sent === 4000), '1000 more bytes written');
    child.stdin!.write('close\n');
    await done;
    await waitFor(() => records.filter((r) => r.kind === 'close').length >= 2, 'both close records', 5000);

    const client = records.find((r) => r.kind === 'close' && r.side === 'client')!;
    assert.equal(client.local.port, localPort);
    assert.deepEqual(client.vip, { address: sc.vip, port: 80 }, 'the VIP the other release\'s programs recorded');
    assert.deepEqual([client.serviceId, client.backendId], sc.ids);
    assert.ok(client.durationNs > 0 && client.startNs > 0, 'the start the other release\'s programs recorded');
    assert.deepEqual([client.first, client.bytesSent, client.newBytesSent], [true, 4000, 4000], 'never reported before: everything is new');
    const server = records.find((r) => r.kind === 'close' && r.side === 'server')!;
    assert.equal(server.remote.port, localPort);
    return { client, server, localPort };
  } finally {
    await cleanup.run();
  }
}

test('an upgrade from the 0.1 socket-storage layout carries open connections over', async (t) => {
  const before = snapshot();
  const r = await acrossRelease(t, { tag: 'mig', object: 'sock_v1', program: 'sock_v1_ops', via: 'mesh_migrate_sock_v1', vip: '127.77.0.99', ids: [77, 7] });
  if (!r) return;
  // 0.1 kept no totals per socket: a connection it had reported continues from its totals at the upgrade.
  assert.deepEqual([r.server.first, r.server.bytesReceived, r.server.newBytesReceived], [false, 4000, 1000], 'reported before the upgrade: only what came since');
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a rollback onto a newer release\'s socket state (fields appended) carries open connections over by the part it knows', async (t) => {
  const before = snapshot();
  const r = await acrossRelease(t, { tag: 'back', object: 'sock_next', program: 'sock_next_ops', via: 'mesh_migrate_sock_newer', vip: '127.77.0.98', ids: [78, 8] });
  if (!r) return;
  // The newer release's own totals: it had reported 3000 bytes received, so 1000 are new.
  assert.deepEqual([r.server.first, r.server.bytesReceived, r.server.newBytesReceived], [false, 4000, 1000], 'counted once across the rollback');
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
