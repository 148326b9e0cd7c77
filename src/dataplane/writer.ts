/**
 * Writes desired services into the kernel maps so that no connect ever sees a
 * half-written backend set:
 *   1. for every changed service, write its slots under a new generation
 *      (invisible: no frontend points there yet); on any failure, delete what
 *      was written and stop - nothing live has changed;
 *   2. flip each frontend's value to the new generation, one map update each;
 *   3. delete the old generation's slots and the frontends no longer wanted.
 * Before step 1, both tables are checked to have room for the peak of all three.
 * A connect racing step 3 finds its slot gone, re-reads the frontend (already
 * flipped) and lands on the new set.
 */
import type { BpfMap } from '../bpf';
import { MeshBackend, MeshSlotKey, MeshSvc, MeshSvcKey } from '../bpf/layouts/mesh';
import { wordsFromAddr } from './addr';
import { capacityError, overflows } from './capacity';
import type { DesiredService, FrontendSpec } from './desired';

const PROTO: Record<FrontendSpec['protocol'], number> = { TCP: 6, UDP: 17 };
const AF = { 4: 2, 6: 10 } as const;

export interface MeshMaps {
  services: BpfMap;
  slots: BpfMap;
}

export interface LiveFrontend {
  key: Buffer;
  id: number;
  gen: number;
  slots: number;
}

export interface ApplyReport {
  /** frontends whose backend set changed (flipped to a new generation) */
  flipped: number;
  added: number;
  removed: number;
  unchanged: number;
}

export function frontendKey(f: FrontendSpec): Buffer {
  return MeshSvcKey.encode({ addr: wordsFromAddr(f.vip.bytes), port: f.port, proto: PROTO[f.protocol] });
}

function svcValue(id: number, gen: number, slots: number): Buffer {
  return MeshSvc.encode({ id, gen, slots });
}

function slotKey(svc: number, gen: number, slot: number): Buffer {
  return MeshSlotKey.encode({ svc, gen, slot });
}

function backendValue(s: DesiredService, slot: number): Buffer {
  const be = s.backends[s.slots[slot]!]!;
  return MeshBackend.encode({ addr: wordsFromAddr(be.addr.bytes), port: be.port, family: AF[be.addr.family], id: be.id });
}

/** Every frontend in the kernel now. */
export function readFrontends(maps: MeshMaps): LiveFrontend[] {
  return maps.services.entries().map(({ key, value }) => {
    const v = MeshSvc.decode(value, 0);
    return { key: Buffer.from(key), id: v.id, gen: v.gen, slots: v.slots };
  });
}

/**
 * Every slot in the kernel by key (hex), read with batch lookups: one lookup
 * per slot cost a syscall each, most of an unchanged 10 000-service reload.
 */
function readAllSlots(maps: MeshMaps): { keys: Buffer[]; byKey: Map<string, Buffer> } {
  const entries = maps.slots.entries();
  return { keys: entries.map((e) => e.key), byKey: new Map(entries.map((e) => [e.key.toString('hex'), e.value])) };
}

function sameSlots(slotsNow: ReadonlyMap<string, Buffer>, live: LiveFrontend, s: DesiredService): boolean {
  if (live.id !== s.id || live.slots !== s.slots.length) return false;
  for (let i = 0; i < live.slots; i++) {
    const v = slotsNow.get(slotKey(live.id, live.gen, i).toString('hex'));
    if (v === undefined || !v.equals(backendValue(s, i))) return false;
  }
  return true;
}

export function applyDesired(maps: MeshMaps, desired: readonly DesiredService[]): ApplyReport {
  const live = new Map(readFrontends(maps).map((f) => [f.key.toString('hex'), f]));
  const slotsBefore = readAllSlots(maps);
  const report: ApplyReport = { flipped: 0, added: 0, removed: 0, unchanged: 0 };

  // Decide, per service, whether it needs a new generation: any frontend new,
  // pointing elsewhere, or with different slots.
  const plans = desired.map((s) => {
    const keys = s.frontends.map(frontendKey);
    const lives = keys.map((k) => live.get(k.toString('hex')));
    const current = lives.find((l) => l !== undefined && l.id === s.id);
    const unchanged = lives.every((l) => l !== undefined && sameSlots(slotsBefore.byKey, l, s) && l.gen === lives[0]!.gen);
    const gens = lives.filter((l): l is LiveFrontend => l !== undefined).map((l) => l.gen);
    const gen = unchanged ? current!.gen : (Math.max(0, current?.gen ?? 0, ...gens) + 1) >>> 0 || 1;
    return { s, keys, lives, unchanged, gen };
  });

  checkRoom(maps, live, plans);

  // 1. New generations' slots, all or nothing.
  const written: Buffer[] = [];
  try {
    for (const p of plans) {
      if (p.unchanged || p.s.slots.length === 0) continue;
      const entries = p.s.slots.map((_, i) => ({ key: slotKey(p.s.id, p.gen, i), value: backendValue(p.s, i) }));
      maps.slots.updateBatch(entries);
      written.push(...entries.map((e) => e.key));
    }
  } catch (err) {
    try {
      maps.slots.deleteBatch(written);
    } catch { /* best effort: unreferenced slots are collected on the next apply */ }
    throw err;
  }

  // 2. Flip frontends.
  const keep = new Set<string>();
  for (const p of plans) {
    p.keys.forEach((key, i) => {
      keep.add(key.toString('hex'));
      const l = p.lives[i];
      if (p.unchanged) {
        report.unchanged++;
        return;
      }
      maps.services.update(key, svcValue(p.s.id, p.gen, p.s.slots.length));
      if (l) report.flipped++;
      else report.added++;
    });
  }

  // 3. Frontends no longer wanted, then every generation no frontend uses.
  for (const [hex, l] of live) {
    if (keep.has(hex)) continue;
    maps.services.delete(l.key);
    report.removed++;
  }
  // What is live now is what the plans point at; the slots written in step 1 are all theirs.
  collectSlots(maps, slotsBefore.keys, new Set(plans.map((p) => `${p.s.id}/${p.gen}`)));
  return report;
}

/**
 * Checked before anything is written: a services table found full halfway
 * through step 2 would leave some frontends flipped and others not.
 */
function checkRoom(maps: MeshMaps, live: ReadonlyMap<string, LiveFrontend>,
  plans: readonly { s: DesiredService; keys: Buffer[]; unchanged: boolean }[]): void {
  const liveGens = new Map([...live.values()].map((l) => [`${l.id}/${l.gen}`, l.slots]));
  const over = overflows({
    liveFrontends: live.size,
    addedFrontends: plans.reduce((n, p) => n + p.keys.filter((k) => !live.has(k.toString('hex'))).length, 0),
    liveSlots: [...liveGens.values()].reduce((a, b) => a + b, 0),
    newSlots: plans.reduce((n, p) => n + (p.unchanged ? 0 : p.s.slots.length), 0),
  }, { frontends: maps.services.info.maxEntries, slots: maps.slots.info.maxEntries });
  if (over.length) throw capacityError(over);
}

/**
 * Deletes the slots, among those there before the apply, whose (service,
 * generation) no frontend points at now - earlier generations, and leftovers
 * of an apply cut short - without reading either table again.
 */
function collectSlots(maps: MeshMaps, keysBefore: readonly Buffer[], liveGens: ReadonlySet<string>): number {
  const dead = keysBefore.filter((k) => !liveGens.has(`${k.readUInt32LE(0)}/${k.readUInt32LE(4)}`));
  if (dead.length === 0) return 0;
  return maps.slots.deleteBatch(dead);
}
