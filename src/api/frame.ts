/**
 * Splitting a byte stream into length-delimited frames: a varint length, then
 * that many bytes (what protobufjs encodeDelimited writes). The length is
 * checked against the limit as soon as the prefix is in, so an oversized
 * frame is refused before any of it is buffered.
 */

/** Requests are small; anything bigger is a broken or hostile client. */
export const MAX_REQUEST_FRAME = 1 << 20;
/** Responses carry lists (edges, records): generous, but still bounded. */
export const MAX_RESPONSE_FRAME = 64 << 20;

export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly reason: 'too_large' | 'bad_prefix' | 'truncated',
    message: string,
  ) {
    super(message);
  }
}

/** A 32-bit length takes at most 5 varint bytes; more is not a length we accept. */
const MAX_PREFIX_BYTES = 5;

/** Parses a varint at the start of `buf`: its value and size, or undefined if incomplete. */
function readPrefix(buf: Buffer): { value: number; size: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < buf.length; i++) {
    if (i >= MAX_PREFIX_BYTES) break;
    const b = buf[i]!;
    // Multiplication, not shifts: the 5th byte would overflow a 32-bit shift.
    value += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) return { value, size: i + 1 };
  }
  if (buf.length >= MAX_PREFIX_BYTES) throw new FrameError('bad_prefix', `frame length prefix longer than ${MAX_PREFIX_BYTES} bytes`);
  return undefined;
}

export class FrameReader {
  /** Chunks not yet consumed; joined only when a whole frame is in, so big frames cost one copy. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Prefix + payload size of the frame being read, once its prefix is known. */
  private frameSize: number | undefined;

  constructor(private readonly maxFrame: number) {}

  /** Bytes held that do not yet make a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  /**
   * Takes the next chunk from the stream and returns every frame it
   * completes, each including its length prefix (for decodeDelimited).
   * Throws FrameError on an oversized or malformed prefix: the stream cannot
   * be resynchronised after that, so the caller drops the connection.
   */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.frameSize === undefined) {
        const head = this.head(MAX_PREFIX_BYTES);
        const prefix = readPrefix(head);
        if (!prefix) return frames;
        if (prefix.value > this.maxFrame) {
          throw new FrameError('too_large', `frame of ${prefix.value} bytes exceeds the ${this.maxFrame}-byte limit`);
        }
        this.frameSize = prefix.size + prefix.value;
      }
      if (this.buffered < this.frameSize) return frames;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      frames.push(all.subarray(0, this.frameSize));
      const rest = all.subarray(this.frameSize);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.frameSize = undefined;
      if (this.buffered === 0) return frames;
    }
  }

  /** Call at end of stream: leftover bytes mean the peer stopped mid-frame. */
  end(): void {
    if (this.buffered > 0) throw new FrameError('truncated', `stream ended inside a frame (${this.buffered} bytes buffered)`);
  }

  /** The first n bytes (or fewer, if fewer are buffered). */
  private head(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) return first;
    return Buffer.concat(this.chunks, Math.min(n, this.buffered)).subarray(0, n);
  }
}
