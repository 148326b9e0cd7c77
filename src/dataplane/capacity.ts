/**
 * Whether a mesh fits the kernel's tables. The writer checks the apply's
 * peak against the live maps before it writes anything; `sockmesh validate`
 * checks a fresh apply against the object's map sizes, before a file ever
 * reaches a node. Pure.
 */
import { MESH_MAX_SLOTS } from '../bpf/layouts/mesh';
import type { DesiredService } from './desired';
import { DataplaneError } from './errors';

/** max_entries of the services (frontends) and slots tables. */
export interface TableRoom {
  frontends: number;
  slots: number;
}

/** What the tables hold at an apply's peak: until its last step the old state is there beside the new. */
export interface ApplyPeak {
  liveFrontends: number;
  addedFrontends: number;
  liveSlots: number;
  /** slots of the changed services' new generations */
  newSlots: number;
}

/** A fresh apply of `desired`: nothing live. */
export function freshPeak(desired: readonly DesiredService[]): ApplyPeak {
  return {
    liveFrontends: 0,
    addedFrontends: desired.reduce((n, s) => n + s.frontends.length, 0),
    liveSlots: 0,
    newSlots: desired.reduce((n, s) => n + s.slots.length, 0),
  };
}

/** One line per table that would overflow; empty if it fits. */
export function overflows(peak: ApplyPeak, room: TableRoom): string[] {
  const out: string[] = [];
  const frontends = peak.liveFrontends + peak.addedFrontends;
  if (frontends > room.frontends) {
    out.push(`${frontends} frontends (VIP:port pairs; ${peak.liveFrontends} in the kernel, ${peak.addedFrontends} new) for a table of ${room.frontends}`);
  }
  const slots = peak.liveSlots + peak.newSlots;
  if (slots > room.slots) {
    out.push(`${slots} backend slots (${peak.liveSlots} live, ${peak.newSlots} for the new generations of changed services) for a table of ${room.slots}`);
  }
  return out;
}

export function capacityError(over: readonly string[]): DataplaneError {
  return new DataplaneError('ECAPACITY', `the mesh does not fit the kernel tables: ${over.join('; ')}. Nothing was changed. ` +
    'Removals free their room only after the new state is live: apply them in a step of their own first. ' +
    `A service port takes as many slots as its weights reduced by their common divisor (at most ${MESH_MAX_SLOTS}): coarser weights take fewer.`);
}
