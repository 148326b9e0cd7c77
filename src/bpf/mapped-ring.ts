/**
 * Zero-copy ring buffer consumer: records are read in place from the ring's
 * own memory (mapped read-only into this process) and the consumer position
 * is advanced from JS. Nothing is copied and nothing is allocated per record
 * unless the handler does; while JS is busy, records wait in the kernel ring
 * and the producer counts its own drops once it is full - the backpressure is
 * the ring itself.
 *
 * Same handler contract as RingBufferReader: (buf, offset, len) with buf the
 * mapped data area. The handler must not keep buf beyond its call: the
 * kernel reuses the space once the consumer position moves past it.
 */
import os from 'node:os';
import { BpfArgumentError, call } from './errors';
import type { BpfMap } from './map';
import { native, NativeMappedRing } from './native';
import type { RecordHandler } from './ringbuf';

const BUSY = 0x80000000; // BPF_RINGBUF_BUSY_BIT: reserved, not yet committed
const DISCARD = 0x40000000; // BPF_RINGBUF_DISCARD_BIT
const HDR = 8; // BPF_RINGBUF_HDR_SZ
/**
 * The producer writes a record, then clears BUSY in its header with a
 * release store; reading the header must order the data reads after it. On
 * x86 (TSO) every load already has acquire order, and a plain DataView read
 * is several times cheaper than Atomics.load (bench/ringbuf: 45M -> 120M
 * records/s for the bare walk). Elsewhere, Atomics.load.
 */
const PLAIN_HEADER_LOADS = os.arch() === 'x64' || os.arch() === 'ia32';

/** Makes each reader's walk source unique (see `compileRingWalk`). */
let walkSerial = 0;

/** Largest data area the walk's int32 arithmetic covers (the kernel allows more). */
export const MAX_MAPPED_RING_BYTES = 1 << 30;

/** Walks records from consumer position `cons` up to `prod`; returns the new position and the records handed out. */
export type RingWalk = (cons: number, prod: number) => { cons: number; n: number };

export interface RingWalkTarget {
  /** The data area, mapped twice back to back: a record that wraps reads as one piece. */
  data: Buffer;
  /** Data area size (half of data.length), a power of two <= MAX_MAPPED_RING_BYTES. */
  size: number;
  onRecord: RecordHandler;
  /** Called with what a handler threw; counted in `errors.handlerErrors` either way. */
  onError?: (err: unknown) => void;
  errors: { handlerErrors: number };
}

/**
 * The hot loop, compiled once per reader: each reader's handler call site
 * then sees one function and V8 can inline it (a loop shared by every reader
 * turns megamorphic and costs a full call per record). The source carries a
 * serial: V8 caches compiled sources, and readers sharing one cached walk
 * would share its call feedback, the very thing this avoids.
 *
 * Positions are the kernel's 64-bit byte counters and pass 2^31 after 2 GiB of
 * records; arithmetic on them in the loop turns V8's integers into doubles
 * (measured: 156M -> 91M records/s). The loop therefore counts in int32 - the
 * offset in the ring and the bytes walked, both below the ring size - and
 * adds the walked bytes to the position once at the end.
 */
export function compileRingWalk(t: RingWalkTarget): RingWalk {
  const { data, size } = t;
  if (!Number.isInteger(size) || size <= 0 || (size & (size - 1)) !== 0 || size > MAX_MAPPED_RING_BYTES || data.length !== size * 2) {
    throw new BpfArgumentError(`ring data area must be a power of two <= ${MAX_MAPPED_RING_BYTES} bytes mapped twice, got ${size} bytes (${data.length} mapped)`);
  }
  // Headers are 8-byte aligned in a page-aligned mapping: Int32 views line up.
  const hdr = new Int32Array(data.buffer, data.byteOffset, data.length >> 2);
  const dv = new DataView(data.buffer, data.byteOffset, data.length);
  return new Function(
    'dv', 'hdr', 'data', 'mask', 'onRecord', 'onError', 'errors',
    `// walk ${++walkSerial}
    return function walk(cons, prod) {
      let n = 0;
      let off = cons & mask;
      const end = (prod - cons) | 0;
      let pos = 0;
      while (pos < end) {
        const h = ${PLAIN_HEADER_LOADS ? 'dv.getUint32(off, true)' : '(Atomics.load(hdr, off >> 2) >>> 0)'};
        if (h & ${BUSY}) break;
        const len = h & ${~(BUSY | DISCARD)};
        if (!(h & ${DISCARD})) {
          try { onRecord(data, off + ${HDR}, len); } catch (err) { errors.handlerErrors++; if (onError) onError(err); }
          n++;
        }
        const step = (len + ${HDR + 7}) & ~7;
        pos += step;
        off = (off + step) & mask;
      }
      return { cons: cons + pos, n };
    };`,
  )(dv, hdr, data, size - 1, t.onRecord, t.onError, t.errors) as RingWalk;
}

export interface MappedRingOptions {
  /** Also drain every N ms (producers using BPF_RB_NO_WAKEUP). 0: on wake-up only. */
  intervalMs?: number;
  /** Called before a drain hands out records: per-batch work, such as reading a clock once. */
  onDrain?: () => void;
}

export interface MappedRingStats {
  records: number;
  bytes: number;
  /** times the native thread signalled data */
  wakeups: number;
  handlerErrors: number;
}

export class MappedRingReader {
  readonly map: BpfMap;
  private ring: NativeMappedRing | undefined;
  private readonly cons: BigInt64Array;
  private readonly prod: BigInt64Array;
  private readonly walk: RingWalk;
  private records = 0;
  private bytes = 0;
  private readonly errors = { handlerErrors: 0 };
  private finalWakeups = 0;
  private readonly onDrain: (() => void) | undefined;

  constructor(map: BpfMap, private readonly onRecord: RecordHandler, opts: MappedRingOptions = {},
    private readonly onError?: (err: unknown) => void) {
    if (map.typeName !== 'RINGBUF') throw new BpfArgumentError(`map ${map.name} is ${map.typeName}, not RINGBUF`);
    const intervalMs = opts.intervalMs ?? 0;
    if (!Number.isInteger(intervalMs) || intervalMs < 0 || intervalMs > 60_000) {
      throw new BpfArgumentError(`intervalMs must be an integer in [0, 60000], got ${intervalMs}`);
    }
    if (opts.onDrain !== undefined && typeof opts.onDrain !== 'function') throw new BpfArgumentError('onDrain must be a function');
    this.map = map;
    this.onDrain = opts.onDrain;
    const N = native();
    this.ring = call(() => new N.MappedRing(map.fd, () => this.drain(), intervalMs));
    const b = this.ring.buffers();
    this.cons = new BigInt64Array(b.consumer.buffer, b.consumer.byteOffset, 1);
    this.prod = new BigInt64Array(b.producer.buffer, b.producer.byteOffset, 1);
    try {
      this.walk = compileRingWalk({ data: b.data, size: b.data.length / 2, onRecord: this.onRecord, onError: this.onError, errors: this.errors });
    } catch (err) {
      this.ring.stop();
      throw err;
    }
    // Records already waiting (e.g. written while the agent was down).
    setImmediate(() => this.drain());
  }

  /** Reads every committed record up to the producer position seen on entry. */
  drain(): number {
    if (!this.ring) return 0;
    const start = Number(Atomics.load(this.cons, 0));
    const prod = Number(Atomics.load(this.prod, 0));
    if (prod !== start && this.onDrain) this.onDrain();
    const r = this.walk(start, prod);
    if (r.cons !== start) Atomics.store(this.cons, 0, BigInt(r.cons));
    this.records += r.n;
    this.bytes += r.cons - start;
    this.ring.ack();
    return r.n;
  }

  stats(): MappedRingStats {
    return { records: this.records, bytes: this.bytes, wakeups: this.ring?.wakeups() ?? this.finalWakeups, handlerErrors: this.errors.handlerErrors };
  }

  /** Stops the wait thread, then drains what the ring still holds if asked. Idempotent. */
  async close(opts: { drain?: boolean } = {}): Promise<void> {
    if (!this.ring) return;
    const ring = this.ring;
    if (opts.drain) this.drain();
    this.finalWakeups = ring.wakeups();
    this.ring = undefined;
    ring.stop();
  }
}
