/**
 * Upgrades that redefine pinned maps, under load: an older version's smaller
 * slot table is copied into a new one, a changed ring size replaces the ring
 * (and what the old programs wrote there is still read), a map or hook new in
 * this version is created or attached, a pin this version no longer has is
 * removed, and services/slots that cannot be copied are rebuilt from the mesh
 * file - or, with no mesh file, the upgrade is refused and nothing changes;
 * a changed cgroupRoot moves every hook. Clients loop through the VIP the whole time: no connect may fail.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap, BpfObjectSpec, Link, native } from '../../../src/bpf';
import { MappedRingReader } from '../../../src/bpf/mapped-ring';
import { BPF_OUTPUT_DIR } from '../../../src/bpf/objects';
import { Dataplane, DataplaneOptions, MESH_HOOKS, ReplacedMap } from '../../../src/dataplane/dataplane';
import { desiredState } from '../../../src/dataplane/desired';
import { DataplaneError } from '../../../src/dataplane/errors';
import { applyDesired, readFrontends } from '../../../src/dataplane/writer';
import { ScratchCgroup } from '../../../src/platform/cgroup';
import { collect, spawnInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { startBackends, servicePort } from '../../helpers/mesh';
import { TestNetns } from '../../helpers/netns';

interface LoopOut {
  errors: Record<string, number>;
  log: [string, number][];
}

function pinned(dir: string, map: string): BpfMap {
  return BpfMap.fromPin(path.join(dir, 'maps', map));
}

function mapInfo(dir: string, map: string): { id: number; maxEntries: number } {
  const m = pinned(dir, map);
  try {
    return { id: m.info.id, maxEntries: m.info.maxEntries };
  } finally {
    m.close();
  }
}

/** link pin -> [link id, program id] */
function linkIds(dir: string): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const name of fs.readdirSync(path.join(dir, 'links'))) {
    const l = Link.fromPin(path.join(dir, 'links', name));
    const info = l.info();
    out[name] = [info.id!, info.progId!];
    l.close();
  }
  return out;
}

function steps(replaced: ReplacedMap[]): Record<string, string> {
  return Object.fromEntries(replaced.map((r) => [r.name, r.action]));
}

test('upgrades that redefine pinned maps keep every connect working and carry the state over', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const ns = cleanup.add('netns', TestNetns.create('upg'), (n) => n.remove());
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-upg`), (c) => c.remove());
    // The workloads' cgroup, below the one a later step moves the mesh to.
    const sub = cleanup.add('cgroup', ScratchCgroup.create('pods', cg.path), (c) => c.remove());
    const dir = `/sys/fs/bpf/sockmesh-test-${process.pid}-upg`;
    cleanup.defer('pins', () => {
      if (fs.existsSync(dir)) Dataplane.uninstallPinned(dir);
    });
    const base: DataplaneOptions = { bpffsDir: dir, cgroupPath: sub.path, reportIntervalMs: 60_000 };
    const ports = await startBackends(cleanup, { ns }, '127.0.0.1', 2);
    const desired = desiredState([servicePort('upg', ['127.77.0.60'], 80, 'TCP', ports.map((p) => ({ host: '127.0.0.1', port: p })))]);
    let populated = 0;
    const populate = (maps: Parameters<NonNullable<DataplaneOptions['populate']>>[0]): void => {
      populated++;
      applyDesired(maps, desired);
    };

    // The older version, installed and serving, with a 1 MiB ring nobody reads.
    const v0 = Dataplane.open({ ...base, object: path.join(BPF_OUTPUT_DIR, 'mesh_v0.bpf.o'), ringBytes: 1 << 20 });
    applyDesired(v0.maps, desired);
    const slotsBefore = v0.maps.slots.entries().map((e) => e.key.toString('hex') + e.value.toString('hex')).sort();
    assert.equal(v0.maps.slots.info.maxEntries, 4096);
    v0.close();

    const client = spawnInCgroup(sub.path, 'vip-client', ['tcp-loop', '127.77.0.60', '80', '5000', '4'], ns.prefix());
    const done = collect<LoopOut>(client, 60_000);
    await new Promise((r) => setTimeout(r, 500)); // records pile up in the old ring

    // 1. This version over it: a map it adds (udp_rev's pin gone stands for
    //    one), a map and a hook it no longer has, a hook it adds, a bigger
    //    ring and slot table.
    fs.rmSync(path.join(dir, 'maps', 'udp_rev'));
    const legacy = spawnSync('bpftool', ['map', 'create', path.join(dir, 'maps', 'legacy_stats'), 'type', 'array', 'key', '4', 'value', '8', 'entries', '1', 'name', 'legacy_stats'], { encoding: 'utf8' });
    assert.equal(legacy.status, 0, legacy.stderr);
    const legacyObj = BpfObjectSpec.open(path.join(BPF_OUTPUT_DIR, 'sock_v1.bpf.o')).load();
    const legacyHook = legacyObj.program('sock_v1_ops').attachCgroup(sub.path, native().constants.attachType.CGROUP_SOCK_OPS);
    legacyHook.pin(path.join(dir, 'links', 'legacy_sockops'));
    const legacyProg = legacyHook.info().progId!;
    legacyHook.close();
    legacyObj.close();
    const gp6 = Link.fromPin(path.join(dir, 'links', 'getpeername6'));
    gp6.detach(); // an empty hook the new version fills
    const linksBefore = linkIds(dir);
    const servicesId = mapInfo(dir, 'services').id;

    const v1 = Dataplane.open({ ...base, ringBytes: 2 << 20, populate });
    assert.equal(v1.outcome.kind, 'adopted');
    if (v1.outcome.kind !== 'adopted') return;
    assert.deepEqual(steps(v1.outcome.replacedMaps), { slots: 'copy', udp_rev: 'fresh', events: 'drain' });
    assert.deepEqual(v1.outcome.replacedMaps.find((r) => r.name === 'slots')!.copy, { copied: 2, dropped: 0 });
    assert.deepEqual(v1.outcome.removed, ['maps/legacy_stats', 'links/legacy_sockops']);
    const onSub = spawnSync('bpftool', ['cgroup', 'show', sub.path, '-j'], { encoding: 'utf8' });
    assert.ok(!(JSON.parse(onSub.stdout.trim() || '[]') as { id: number }[]).some((p) => p.id === legacyProg), 'the hook this version lacks is detached');
    assert.deepEqual(v1.outcome.attached, ['getpeername6']);
    assert.equal(populated, 0, 'nothing rebuilt: everything could be adopted or copied');
    assert.equal(mapInfo(dir, 'slots').maxEntries, 262144, 'the pin names the new slot table');
    assert.equal(mapInfo(dir, 'events').maxEntries, 2 << 20);
    assert.equal(mapInfo(dir, 'services').id, servicesId, 'services adopted as pinned');
    assert.equal(readFrontends(v1.maps).length, 1, 'adopted maps stay open for the new dataplane');
    assert.ok(fs.existsSync(path.join(dir, 'maps', 'udp_rev')));
    assert.ok(!fs.existsSync(path.join(dir, 'maps', 'legacy_stats')));
    assert.deepEqual(v1.maps.slots.entries().map((e) => e.key.toString('hex') + e.value.toString('hex')).sort(), slotsBefore);
    const linksAfter = linkIds(dir);
    for (const [, pin] of MESH_HOOKS.filter(([, p]) => p !== 'getpeername6')) {
      assert.equal(linksAfter[pin]![0], linksBefore[pin]![0], `${pin}: the same link`);
      assert.notEqual(linksAfter[pin]![1], linksBefore[pin]![1], `${pin}: a new program`);
    }
    // What the old programs wrote before the swap is still there to read.
    const old = v1.takeRetiredRing();
    assert.ok(old, 'the replaced ring is handed over');
    let leftover = 0;
    const reader = new MappedRingReader(old, () => void leftover++);
    await reader.close({ drain: true });
    old.close();
    assert.ok(leftover > 0, `records of the old programs read from the replaced ring (${leftover})`);
    await new Promise((r) => setTimeout(r, 300));
    v1.close();

    // 2. services/slots that cannot be copied (slots' pin gone stands for a
    //    new layout) need the mesh file: refused without it, nothing touched.
    fs.rmSync(path.join(dir, 'maps', 'slots'));
    const beforeRefusal = linkIds(dir);
    assert.throws(() => Dataplane.open({ ...base, ringBytes: 2 << 20 }), (err: unknown) => err instanceof DataplaneError && err.code === 'EUPGRADE' &&
      /rebuilds services \(rebuilt with slots\), slots \(not pinned \(new in this version\)\) from the mesh file, and there is no valid mesh file: the running programs are unchanged/.test(err.message));
    assert.deepEqual(linkIds(dir), beforeRefusal, 'the running programs stay');
    assert.equal(mapInfo(dir, 'services').id, servicesId);

    // 3. With it, both are rebuilt before any hook switches to them.
    const v2 = Dataplane.open({ ...base, ringBytes: 2 << 20, populate });
    assert.equal(populated, 1);
    if (v2.outcome.kind !== 'adopted') assert.fail('adopted');
    assert.deepEqual(steps(v2.outcome.replacedMaps), { services: 'rebuild', slots: 'rebuild' });
    assert.notEqual(mapInfo(dir, 'services').id, servicesId);
    assert.equal(readFrontends(v2.maps).length, 1);
    assert.equal(v2.takeRetiredRing(), undefined, 'the ring was adopted this time');
    await new Promise((r) => setTimeout(r, 300));

    // 4. A plain restart replaces nothing.
    v2.close();
    const v3 = Dataplane.open({ ...base, ringBytes: 2 << 20, populate });
    if (v3.outcome.kind !== 'adopted') assert.fail('adopted');
    assert.deepEqual(v3.outcome.replacedMaps, []);
    assert.deepEqual(v3.outcome.removed, []);
    assert.deepEqual(v3.outcome.moved, []);
    v3.close();

    // 5. cgroupRoot changed to the parent: every hook attached there, then detached here.
    const beforeMove = linkIds(dir);
    const v4 = Dataplane.open({ ...base, cgroupPath: cg.path, ringBytes: 2 << 20, populate });
    if (v4.outcome.kind !== 'adopted') assert.fail('adopted');
    assert.deepEqual(v4.outcome.moved, MESH_HOOKS.map(([, pin]) => pin));
    const parentId = BigInt(fs.statSync(cg.path).ino);
    for (const [pin, link] of v4.links) {
      const info = link.info();
      assert.equal(info.cgroupId, parentId, `${pin} attached to the new root`);
      assert.notEqual(info.id, beforeMove[pin]![0], `${pin}: a new link`);
    }
    assert.deepEqual(Object.keys(linkIds(dir)).sort(), Object.keys(beforeMove).sort(), 'one pin per hook');
    const left = spawnSync('bpftool', ['cgroup', 'show', sub.path, '-j'], { encoding: 'utf8' });
    assert.equal(left.status, 0, left.stderr);
    assert.deepEqual(JSON.parse(left.stdout.trim() || '[]'), [], 'nothing left attached to the old root');
    await new Promise((r) => setTimeout(r, 300));
    v4.close();

    const out = (await done).messages[0]!;
    assert.deepEqual(out.errors, {}, 'no connect failed across three upgrades');
    assert.ok(out.log.length > 200, `connections kept flowing (${out.log.length})`);
    assert.deepEqual(new Set(out.log.map(([, p]) => p)), new Set(ports), 'every connect reached a backend of the service');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
