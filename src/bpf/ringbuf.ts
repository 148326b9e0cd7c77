/**
 * Ring buffer consumer. The addon's poll thread hands over batches of raw
 * records; this module walks the framing and never copies a record. Decode
 * with a StructLayout (layout.ts) in the callback.
 */
import { BpfArgumentError, call } from './errors';
import type { BpfMap } from './map';
import { native, NativeRingBuffer, NativeRingBufferStats } from './native';

export interface RingBufferOptions {
  /** Bytes per batch handed to JS. Default 256 KiB. */
  maxBatchBytes?: number;
  /** Batches handed to JS and not yet processed before the thread pauses. Default 8. */
  maxInFlight?: number;
  /** Also drain every N ms (producers using BPF_RB_NO_WAKEUP). 0: on wake-up only. */
  intervalMs?: number;
}

/** One record: `len` bytes at `offset` of `buf` (the batch, shared by its records). */
export type RecordHandler = (buf: Buffer, offset: number, len: number) => void;

export interface RingBufferStats extends NativeRingBufferStats {
  /** Errors thrown by the handler (each costs its record; counted, not rethrown). */
  handlerErrors: number;
}

/** Walks one batch: u32 length | u32 reserved | data padded to 8. */
export function forEachRecord(batch: Buffer, fn: RecordHandler): number {
  let off = 0;
  let n = 0;
  const end = batch.length;
  while (off + 8 <= end) {
    const len = batch.readUInt32LE(off);
    fn(batch, off + 8, len);
    off += 8 + ((len + 7) & ~7);
    n++;
  }
  return n;
}

export class RingBufferReader {
  readonly map: BpfMap;
  private rb: NativeRingBuffer | undefined;
  private handlerErrors = 0;
  private lastError: unknown;
  private readonly closed: Promise<void>;
  private finalStats: NativeRingBufferStats | undefined;

  /**
   * Starts consuming at once. `onRecord` runs on the JS thread for every
   * record; `onError` (default: keep the first error for stats()) sees handler
   * failures, which never stop the consumer.
   */
  constructor(map: BpfMap, onRecord: RecordHandler, opts: RingBufferOptions = {}, onError?: (err: unknown) => void) {
    if (map.typeName !== 'RINGBUF') throw new BpfArgumentError(`map ${map.name} is ${map.typeName}, not RINGBUF`);
    const maxBatchBytes = opts.maxBatchBytes ?? 256 * 1024;
    const maxInFlight = opts.maxInFlight ?? 8;
    const intervalMs = opts.intervalMs ?? 0;
    if (!Number.isInteger(maxBatchBytes) || maxBatchBytes < 64 || maxBatchBytes > 64 * 1024 * 1024) {
      throw new BpfArgumentError(`maxBatchBytes must be an integer in [64, 64 MiB], got ${maxBatchBytes}`);
    }
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 1024) {
      throw new BpfArgumentError(`maxInFlight must be an integer in [1, 1024], got ${maxInFlight}`);
    }
    if (!Number.isInteger(intervalMs) || intervalMs < 0 || intervalMs > 60_000) {
      throw new BpfArgumentError(`intervalMs must be an integer in [0, 60000], got ${intervalMs}`);
    }
    this.map = map;
    let resolveClosed!: () => void;
    this.closed = new Promise((r) => (resolveClosed = r));
    // A failing handler costs its own record, not the rest of the batch.
    const guarded: RecordHandler = (buf, off, len) => {
      try {
        onRecord(buf, off, len);
      } catch (err) {
        this.handlerErrors++;
        if (onError) onError(err);
        else this.lastError ??= err;
      }
    };
    const onBatch = (batch: Buffer): void => {
      forEachRecord(batch, guarded);
    };
    const N = native();
    this.rb = call(() => new N.RingBuffer(map.fd, onBatch, resolveClosed, maxBatchBytes, maxInFlight, intervalMs));
  }

  stats(): RingBufferStats {
    const s = this.rb ? this.rb.stats() : this.finalStats;
    return { ...(s as NativeRingBufferStats), handlerErrors: this.handlerErrors };
  }

  /** First handler error seen when no onError was given. */
  get firstHandlerError(): unknown {
    return this.lastError;
  }

  /**
   * Stops the poll thread (drain: first take everything the ring holds) and
   * resolves once every batch already handed over has been processed.
   * Idempotent.
   */
  async close(opts: { drain?: boolean } = {}): Promise<void> {
    if (this.rb) {
      const rb = this.rb;
      rb.stop(opts.drain ?? false);
      this.finalStats = rb.stats();
      this.rb = undefined;
    }
    await this.closed;
    this.finalStats = { ...(this.finalStats as NativeRingBufferStats), inFlight: 0 };
  }
}
