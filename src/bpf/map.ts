/**
 * A BPF map as raw Buffers. Sizes are checked here, before the kernel sees
 * them; per-CPU maps take and return one value slot per possible CPU, each
 * rounded up to 8 bytes as the kernel lays them out.
 */
import { call, BpfArgumentError, BpfError } from './errors';
import { native, NativeMap, NativeMapInfo } from './native';
import { openPinned, PinState } from './pins';

export type UpdateMode = 'any' | 'noexist' | 'exist';

export interface MapEntry {
  key: Buffer;
  value: Buffer;
}

const PERCPU_TYPES = new Set(['PERCPU_HASH', 'PERCPU_ARRAY', 'LRU_PERCPU_HASH']);
const NO_LOOKUP_TYPES = new Set(['RINGBUF', 'SOCKMAP', 'SOCKHASH', 'SK_STORAGE', 'ARRAY_OF_MAPS', 'HASH_OF_MAPS']);

export class BpfMap {
  readonly name: string;
  readonly info: NativeMapInfo;
  /** Bytes of one value as seen from user space (all CPUs for per-CPU maps). */
  readonly valueBytes: number;
  readonly perCpu: boolean;
  readonly cpus: number;
  private handle: NativeMap | undefined;
  private readonly pins = new PinState();
  private batchUnsupported = false;

  /** @internal use BpfObjectSpec.load() or BpfMap.fromPin. */
  constructor(handle: NativeMap, name?: string) {
    this.handle = handle;
    this.info = call(() => handle.info());
    this.name = name ?? this.info.name;
    this.perCpu = PERCPU_TYPES.has(mapTypeName(this.info.type));
    this.cpus = this.perCpu ? native().numPossibleCpus() : 1;
    this.valueBytes = this.perCpu ? roundUp8(this.info.valueSize) * this.cpus : this.info.valueSize;
  }

  static fromPin(pinPath: string): BpfMap {
    const m = new BpfMap(new (native().Map)(openPinned(pinPath, 'map')));
    m.pins.path = pinPath;
    return m;
  }

  get typeName(): string {
    return mapTypeName(this.info.type);
  }

  get closed(): boolean {
    return this.handle === undefined;
  }

  /** @internal */
  get fd(): number {
    return this.live('fd').fd;
  }

  get pinPath(): string | undefined {
    return this.pins.path;
  }

  lookup(key: Buffer): Buffer | undefined {
    const h = this.live('lookup');
    this.checkKey(key, 'lookup');
    const out = Buffer.allocUnsafe(this.valueBytes);
    return call(() => h.lookup(key, out)) ? out : undefined;
  }

  /** Per-CPU maps: one Buffer per possible CPU. */
  lookupPerCpu(key: Buffer): Buffer[] | undefined {
    if (!this.perCpu) throw new BpfArgumentError(`map ${this.name} is not per-CPU`);
    const all = this.lookup(key);
    if (!all) return undefined;
    const stride = roundUp8(this.info.valueSize);
    return Array.from({ length: this.cpus }, (_, i) => all.subarray(i * stride, i * stride + this.info.valueSize));
  }

  update(key: Buffer, value: Buffer, mode: UpdateMode = 'any'): void {
    const h = this.live('update');
    this.checkKey(key, 'update');
    this.checkValue(value, 'update');
    call(() => h.update(key, value, updateFlag(mode)));
  }

  /** true if the key was there. */
  delete(key: Buffer): boolean {
    const h = this.live('delete');
    this.checkKey(key, 'delete');
    return call(() => h.delete(key));
  }

  *keys(): IterableIterator<Buffer> {
    const h = this.live('keys');
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.info.keySize);
      if (!call(() => h.nextKey(prev, next))) return;
      yield next;
      prev = next;
    }
  }

  /**
   * Every entry. Uses the kernel's batch lookup where the map type has it (one
   * syscall per `chunk` entries), key-by-key iteration elsewhere.
   */
  entries(chunk = 256): MapEntry[] {
    if (NO_LOOKUP_TYPES.has(this.typeName)) throw new BpfArgumentError(`map ${this.name} (${this.typeName}) cannot be dumped from user space`);
    if (!this.batchUnsupported) {
      try {
        return this.entriesBatched(chunk);
      } catch (err) {
        if (!(err instanceof BpfError) || (err.code !== 'EINVAL' && err.code !== 'ENOTSUPP' && err.code !== 'EOPNOTSUPP')) throw err;
        this.batchUnsupported = true;
      }
    }
    const out: MapEntry[] = [];
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value) out.push({ key, value }); // deleted meanwhile: skip
    }
    return out;
  }

  /** Writes many entries with one syscall per call. */
  updateBatch(entries: MapEntry[], mode: UpdateMode = 'any'): void {
    if (entries.length === 0) return;
    const h = this.live('update batch');
    entries.forEach((e, i) => {
      this.checkKey(e.key, `update batch [${i}]`);
      this.checkValue(e.value, `update batch [${i}]`);
    });
    const keys = Buffer.concat(entries.map((e) => e.key));
    const values = Buffer.concat(entries.map((e) => e.value));
    call(() => h.updateBatch(keys, values, entries.length, updateFlag(mode)));
  }

  deleteBatch(keys: Buffer[]): number {
    if (keys.length === 0) return 0;
    const h = this.live('delete batch');
    keys.forEach((k, i) => this.checkKey(k, `delete batch [${i}]`));
    return call(() => h.deleteBatch(Buffer.concat(keys), keys.length));
  }

  pin(pinPath: string): void {
    this.pins.pin(this.live('pin'), pinPath);
  }

  /** Pins at pinPath in place of what is pinned there now, atomically. */
  pinReplacing(pinPath: string): void {
    this.pins.replace(this.live('pin'), pinPath);
  }

  unpin(): void {
    this.pins.unpin();
  }

  /** Ids of the programs attached to this map with attachType (sk_msg / sk_skb on a sockmap). */
  attachedPrograms(attachType: number): number[] {
    const h = this.live('query attached programs');
    return call(() => h.queryPrograms(attachType));
  }

  freeze(): void {
    call(() => this.live('freeze').freeze());
  }

  /** Idempotent. */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  private entriesBatched(chunk: number): MapEntry[] {
    const h = this.live('entries');
    const { keySize } = this.info;
    const tokenSize = Math.max(keySize, 8);
    const out: MapEntry[] = [];
    let inTok: Buffer | null = null;
    for (;;) {
      const outTok = Buffer.alloc(tokenSize);
      const keys = Buffer.alloc(keySize * chunk);
      const values = Buffer.alloc(this.valueBytes * chunk);
      const r = call(() => h.lookupBatch(inTok, outTok, keys, values, chunk));
      for (let i = 0; i < r.count; i++) {
        out.push({
          key: keys.subarray(i * keySize, (i + 1) * keySize),
          value: values.subarray(i * this.valueBytes, (i + 1) * this.valueBytes),
        });
      }
      if (r.done) return out;
      inTok = outTok;
    }
  }

  private checkKey(key: Buffer, op: string): void {
    if (key.length !== this.info.keySize) {
      throw new BpfArgumentError(`${op} on map ${this.name}: key is ${key.length} bytes, the map's keys are ${this.info.keySize}`);
    }
  }

  private checkValue(value: Buffer, op: string): void {
    if (value.length !== this.valueBytes) {
      throw new BpfArgumentError(`${op} on map ${this.name}: value is ${value.length} bytes, the map's values are ${this.valueBytes}` +
        (this.perCpu ? ` (${this.cpus} CPUs x ${roundUp8(this.info.valueSize)})` : ''));
    }
  }

  private live(op: string): NativeMap {
    if (!this.handle) throw new BpfArgumentError(`${op} on closed map ${this.name}`);
    return this.handle;
  }
}

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

function updateFlag(mode: UpdateMode): number {
  const f = native().constants.updateFlag;
  switch (mode) {
    case 'any': return f.ANY;
    case 'noexist': return f.NOEXIST;
    case 'exist': return f.EXIST;
  }
}

export function mapTypeName(type: number): string {
  for (const [name, v] of Object.entries(native().constants.mapType)) if (v === type) return name;
  return `type ${type}`;
}
