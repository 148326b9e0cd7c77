import test from 'node:test';
import assert from 'node:assert/strict';
import { MapDefinition, MapPlan, planMaps } from '../../../src/dataplane/upgrade';

const TYPES: Record<number, string> = { 1: 'HASH', 6: 'PERCPU_ARRAY', 5: 'PERCPU_HASH', 9: 'LRU_HASH', 24: 'SK_STORAGE', 27: 'RINGBUF' };
const typeName = (t: number): string => TYPES[t] ?? `type ${t}`;

/** The mesh's maps as this version defines them. */
const NOW: Record<string, MapDefinition> = {
  services: { type: 1, keySize: 20, valueSize: 12, maxEntries: 65536, flags: 1 },
  slots: { type: 1, keySize: 12, valueSize: 24, maxEntries: 262144, flags: 1 },
  svc_verdicts: { type: 5, keySize: 8, valueSize: 8, maxEntries: 262144, flags: 0 },
  udp_rev: { type: 9, keySize: 32, valueSize: 20, maxEntries: 65536, flags: 0 },
  events: { type: 27, keySize: 0, valueSize: 0, maxEntries: 4 << 20, flags: 0 },
  counters: { type: 6, keySize: 4, valueSize: 8, maxEntries: 8, flags: 0 },
  sock_info: { type: 24, keySize: 4, valueSize: 96, maxEntries: 0, flags: 1 },
};

function plan(pinned: Record<string, MapDefinition | undefined>): MapPlan {
  const was = new Map<string, MapDefinition>();
  for (const [name, def] of Object.entries({ ...NOW, ...pinned })) if (def) was.set(name, def);
  return planMaps(new Map(Object.entries(NOW)), was, typeName);
}

/** name -> "action: reason" for every map not adopted. */
function changes(p: MapPlan): Record<string, string> {
  return Object.fromEntries(p.steps.filter((s) => s.action !== 'adopt').map((s) => [s.name, `${s.action}: ${s.reason}`]));
}

test('a plain restart adopts every map', () => {
  const p = plan({});
  assert.deepEqual(changes(p), {});
  assert.deepEqual(p.steps.map((s) => s.name), Object.keys(NOW));
  assert.deepEqual(p.stale, []);
});

test('a table redefined with the same key and value sizes is copied, whatever changed around them', () => {
  assert.deepEqual(changes(plan({
    slots: { ...NOW.slots!, maxEntries: 4096 },
    counters: { ...NOW.counters!, maxEntries: 6 },
    udp_rev: { ...NOW.udp_rev!, flags: 0x10 },
  })), {
    slots: 'copy: definition changed: maxEntries 4096 -> 262144',
    counters: 'copy: definition changed: maxEntries 6 -> 8',
    udp_rev: 'copy: definition changed: flags 16 -> 0',
  });
});

test('a table whose values or type changed starts empty, as does socket storage of a layout with no migration', () => {
  assert.deepEqual(changes(plan({
    svc_verdicts: { ...NOW.svc_verdicts!, valueSize: 16 },
    udp_rev: { ...NOW.udp_rev!, type: 1 },
    sock_info: { ...NOW.sock_info!, valueSize: 56 },
  })), {
    svc_verdicts: 'fresh: definition changed: valueSize 16 -> 8',
    udp_rev: 'fresh: definition changed: type HASH -> LRU_HASH',
    sock_info: 'fresh: definition changed: valueSize 56 -> 96',
  });
});

test('socket storage of a layout an earlier release pinned is migrated by its program', () => {
  const p = plan({ sock_info: { ...NOW.sock_info!, valueSize: 64 } });
  assert.deepEqual(changes(p), { sock_info: 'migrate: definition changed: valueSize 64 -> 96' });
  assert.equal(p.steps.find((s) => s.name === 'sock_info')!.via, 'mesh_migrate_sock_v1');
});

test('socket storage of a newer release (a rollback) is taken over by the part this release knows', () => {
  const p = plan({ sock_info: { ...NOW.sock_info!, valueSize: 112 } });
  assert.deepEqual(changes(p), { sock_info: 'migrate: definition changed: valueSize 112 -> 96' });
  assert.equal(p.steps.find((s) => s.name === 'sock_info')!.via, 'mesh_migrate_sock_newer');
  // Only socket storage has such a program; a longer value elsewhere still starts empty.
  assert.deepEqual(changes(plan({ slots: { ...NOW.slots!, valueSize: 32 } })),
    { services: 'rebuild: rebuilt with slots', slots: 'rebuild: definition changed: valueSize 32 -> 24' });
});

test('a resized ring is replaced and the old one drained; a map new in this version starts empty', () => {
  assert.deepEqual(changes(plan({ events: { ...NOW.events!, maxEntries: 1 << 20 }, counters: undefined })), {
    events: 'drain: definition changed: maxEntries 1048576 -> 4194304',
    counters: 'fresh: not pinned (new in this version)',
  });
});

test('services and slots are rebuilt from the mesh file together when either cannot be kept', () => {
  assert.deepEqual(changes(plan({ slots: { ...NOW.slots!, valueSize: 20 } })), {
    services: 'rebuild: rebuilt with slots',
    slots: 'rebuild: definition changed: valueSize 20 -> 24',
  });
  assert.deepEqual(changes(plan({ services: undefined, slots: { ...NOW.slots!, maxEntries: 1024 } })), {
    services: 'rebuild: not pinned (new in this version)',
    slots: 'rebuild: definition changed: maxEntries 1024 -> 262144',
  });
});

test('pins of maps this version does not define are stale, in name order', () => {
  const p = planMaps(new Map(Object.entries(NOW)), new Map(Object.entries({ ...NOW, zeta: NOW.counters!, alpha: NOW.services! })), typeName);
  assert.deepEqual(p.stale, ['alpha', 'zeta']);
  assert.deepEqual(changes(p), {});
});
