/**
 * What an agent does with the maps an earlier agent pinned, when the programs
 * it loads now may define them differently (an upgrade, or a changed setting
 * such as the ring size). planMaps decides, as data, before anything is
 * loaded; copyEntries and SocketStorageMigration carry contents over:
 *
 *   adopt    same definition: the new programs use the pinned map itself
 *   copy     changed definition, same key and value sizes: a new map, filled
 *            with the old one's entries before any hook switches to it
 *   rebuild  services/slots that cannot be copied: new maps written from the
 *            mesh file; both together, since a frontend in one names a
 *            generation in the other
 *   fresh    nothing to carry over (new map, socket storage, or a table whose
 *            values changed size): starts empty
 *   drain    the ring buffer: a new ring; the agent reads what is left in the
 *            old one once no program writes to it
 *   migrate  socket storage of a layout an earlier release pinned: a new map,
 *            each open connection's state converted into it by a program of
 *            bpf/mesh_migrate.bpf.c (verified before the swap, run right
 *            after it, when no old program changes the old state any more)
 *
 * Pins under maps/ that this version no longer has are `stale`: removed once
 * every hook runs the new programs.
 */
import { BpfObjectSpec, Collection, Link, objectPath } from '../bpf';
import { BpfError } from '../bpf/errors';
import type { BpfMap } from '../bpf/map';
import type { NativeMapSpec } from '../bpf/native';

export interface MapDefinition {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export type MapAction = 'adopt' | 'copy' | 'rebuild' | 'fresh' | 'drain' | 'migrate';

export interface MapStep {
  name: string;
  action: MapAction;
  /** Why it is not adopted; empty for adopt. */
  reason: string;
  /** migrate: the program of bpf/mesh_migrate.bpf.c that converts the old layout */
  via?: string;
}

export interface MapPlan {
  steps: MapStep[];
  /** Pinned maps this version does not define. */
  stale: string[];
}

/** Tables whose entries user space can read and write one by one. */
const COPYABLE = new Set(['HASH', 'LRU_HASH', 'ARRAY', 'PERCPU_HASH', 'PERCPU_ARRAY', 'LRU_PERCPU_HASH']);
/** Written from the mesh file: rebuilt as a pair when either cannot be kept. */
const CONFIG_MAPS = ['services', 'slots'];

/**
 * Earlier releases' socket-storage layouts this one converts: map -> value
 * size it had -> program in bpf/mesh_migrate.bpf.c. Keep one release back.
 */
export const MIGRATIONS: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  sock_info: { 64: 'mesh_migrate_sock_v1' },
};

/**
 * Per map, the program that takes over a newer release's longer values by
 * the part this release knows (fields are only appended from 0.2 on): an
 * agent rolled back onto the newer pins keeps its open connections' state.
 */
export const NEWER_MIGRATIONS: Readonly<Record<string, string>> = {
  sock_info: 'mesh_migrate_sock_newer',
};

const FIELDS: readonly (keyof MapDefinition)[] = ['type', 'keySize', 'valueSize', 'maxEntries', 'flags'];

export function definitionOf(m: Pick<NativeMapSpec, keyof MapDefinition>): MapDefinition {
  return { type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags };
}

function differences(was: MapDefinition, now: MapDefinition, typeName: (t: number) => string): string[] {
  return FIELDS.filter((f) => was[f] !== now[f]).map((f) =>
    f === 'type' ? `type ${typeName(was.type)} -> ${typeName(now.type)}` : `${f} ${was[f]} -> ${now[f]}`);
}

/**
 * wanted: every map the new programs define, by name; pinned: what is pinned
 * now (undefined: nothing pinned under that name). typeName renders map types
 * in reasons.
 */
export function planMaps(wanted: ReadonlyMap<string, MapDefinition>, pinned: ReadonlyMap<string, MapDefinition>,
  typeName: (t: number) => string, migrations: typeof MIGRATIONS = MIGRATIONS): MapPlan {
  const steps = new Map<string, MapStep>();
  for (const [name, now] of wanted) {
    const was = pinned.get(name);
    const kind = typeName(now.type);
    if (!was) {
      steps.set(name, { name, action: CONFIG_MAPS.includes(name) ? 'rebuild' : 'fresh', reason: 'not pinned (new in this version)' });
      continue;
    }
    const diff = differences(was, now, typeName);
    if (diff.length === 0) {
      steps.set(name, { name, action: 'adopt', reason: '' });
      continue;
    }
    const reason = `definition changed: ${diff.join(', ')}`;
    const via = was.type !== now.type ? undefined
      : migrations[name]?.[was.valueSize] ?? (was.valueSize > now.valueSize && was.keySize === now.keySize ? NEWER_MIGRATIONS[name] : undefined);
    if (kind === 'RINGBUF' && was.type === now.type) steps.set(name, { name, action: 'drain', reason });
    else if (via) steps.set(name, { name, action: 'migrate', reason, via });
    else if (was.type === now.type && was.keySize === now.keySize && was.valueSize === now.valueSize && COPYABLE.has(kind)) {
      steps.set(name, { name, action: 'copy', reason });
    } else steps.set(name, { name, action: CONFIG_MAPS.includes(name) ? 'rebuild' : 'fresh', reason });
  }
  // A rebuilt services map with an adopted (or copied) slots map, or the other
  // way round, would let the old programs - still attached until the swap -
  // see frontends naming generations their slots map does not have.
  if (CONFIG_MAPS.some((n) => steps.get(n)?.action === 'rebuild')) {
    for (const n of CONFIG_MAPS) {
      const s = steps.get(n);
      if (s && s.action !== 'rebuild') steps.set(n, { name: n, action: 'rebuild', reason: s.reason || `rebuilt with ${CONFIG_MAPS.find((o) => o !== n)}` });
    }
  }
  const stale = [...pinned.keys()].filter((n) => !wanted.has(n)).sort();
  return { steps: [...steps.values()], stale };
}

/** Entries copied, and those the new map refused (smaller than the old one). */
export interface CopyResult {
  copied: number;
  dropped: number;
}

const CHUNK = 4096;

/**
 * Copies every entry of `from` into `to` (same key and value sizes). Entries
 * a smaller `to` cannot hold are counted, not fatal: an array's indices past
 * its end, a hash table's overflow.
 */
export function copyEntries(from: BpfMap, to: BpfMap): CopyResult {
  const isArray = to.typeName === 'ARRAY' || to.typeName === 'PERCPU_ARRAY';
  const all = from.entries();
  const fits = isArray ? all.filter((e) => e.key.readUInt32LE(0) < to.info.maxEntries) : all;
  const result: CopyResult = { copied: 0, dropped: all.length - fits.length };
  for (let i = 0; i < fits.length; i += CHUNK) {
    const chunk = fits.slice(i, i + CHUNK);
    try {
      to.updateBatch(chunk);
      result.copied += chunk.length;
    } catch (err) {
      if (!(err instanceof BpfError) || !['E2BIG', 'ENOSPC', 'ENOMEM'].includes(err.code)) throw err;
      for (const e of chunk) {
        try {
          to.update(e.key, e.value);
          result.copied++;
        } catch (inner) {
          if (!(inner instanceof BpfError) || !['E2BIG', 'ENOSPC', 'ENOMEM'].includes(inner.code)) throw inner;
          result.dropped++;
        }
      }
    }
  }
  return result;
}

/**
 * Converts socket storage `from` (an earlier layout) into `to` with a
 * program of bpf/mesh_migrate.bpf.c. Loaded and attached - verifier and
 * attach checks passed - before any hook switches, so a refusal changes
 * nothing; run once the hooks use `to`. Sockets `to` already tracks are left
 * as they are.
 */
export class SocketStorageMigration {
  private constructor(private readonly coll: Collection, private readonly iter: Link) {}

  static prepare(from: BpfMap, to: BpfMap, name: string, program: string): SocketStorageMigration {
    const spec = BpfObjectSpec.open(objectPath('mesh_migrate')).only([program]);
    spec.reuseMap(name, to);
    const coll = spec.load();
    try {
      return new SocketStorageMigration(coll, coll.program(program).attachIterator(from));
    } catch (err) {
      coll.close();
      throw err;
    }
  }

  /** How many sockets it carried over (the program writes one byte per socket). */
  run(): number {
    return this.iter.runIterator();
  }

  /** Idempotent. */
  close(): void {
    this.iter.close();
    this.coll.close();
  }
}
