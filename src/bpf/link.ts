/**
 * A Link owns one attachment. Closing an unpinned link detaches it; a pinned
 * link stays attached after close() (and after this process exits) until
 * unpinned or detach()ed.
 */
import { call, BpfArgumentError } from './errors';
import { native, NativeIter, NativeLink, NativeLinkInfo } from './native';
import { openPinned, PinState } from './pins';

export type LinkKind = 'cgroup' | 'tracepoint' | 'map' | 'iterator' | 'pinned';

export class Link {
  readonly kind: LinkKind;
  /** Human description for logs and errors, e.g. "connect4 on /sys/fs/cgroup/x". */
  readonly target: string;
  private handle: NativeLink | undefined;
  private readonly pins = new PinState();

  /** @internal use Program.attach* or Link.fromPin. */
  constructor(handle: NativeLink, kind: LinkKind, target: string) {
    this.handle = handle;
    this.kind = kind;
    this.target = target;
  }

  /** Re-opens a link pinned by this or an earlier process. */
  static fromPin(pinPath: string): Link {
    const link = new Link(new (native().Link)(openPinned(pinPath, 'link')), 'pinned', pinPath);
    link.pins.path = pinPath;
    return link;
  }

  get closed(): boolean {
    return this.handle === undefined;
  }

  get pinPath(): string | undefined {
    return this.pins.path;
  }

  info(): NativeLinkInfo {
    return call(() => this.live('info').info());
  }

  pin(pinPath: string): void {
    this.pins.pin(this.live('pin'), pinPath);
  }

  /**
   * Pins in place of `previous` at its pin path, atomically: the hook's pin
   * never goes missing. previous keeps running until detached or closed.
   */
  pinReplacing(previous: Link): void {
    const at = previous.pins.path;
    if (at === undefined) throw new BpfArgumentError(`pin replacing ${previous.target}: it is not pinned`);
    this.pins.replace(this.live('pin'), at);
    previous.pins.path = undefined;
  }

  /** Removes the pin; the attachment ends when the last fd closes. Idempotent. */
  unpin(): void {
    this.pins.unpin();
  }

  /** Runs an iterator link over all its elements; returns the bytes its program wrote. */
  runIterator(): number {
    const walk = this.walkIterator();
    try {
      let total = 0;
      for (let n = walk.read(4096); n > 0; n = walk.read(4096)) total += n;
      return total;
    } finally {
      walk.close();
    }
  }

  /** Starts a walk of an iterator link to be read in parts (IteratorWalk.read); close it when done. */
  walkIterator(): IteratorWalk {
    const h = this.live('walk iterator');
    return new IteratorWalk(call(() => new (native().Iter)(h.fd)), this.target);
  }

  /** Replaces the attached program in one step (no gap in which the hook is empty). */
  update(program: { fd: number }): void {
    const h = this.live('update');
    call(() => h.update(program.fd));
  }

  /** Ends the attachment now, pinned or not, then closes. */
  detach(): void {
    if (!this.handle) return;
    call(() => this.live('detach').detach());
    this.unpin();
    this.close();
  }

  /** Idempotent. An unpinned link detaches here. */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  private live(op: string): NativeLink {
    if (!this.handle) throw new BpfArgumentError(`${op} on closed link (${this.target})`);
    return this.handle;
  }
}

/**
 * One walk of an iterator link, read in parts: each read() walks on until
 * the program has written up to maxBytes, and the next resumes there - the
 * caller acts in between (drains the ring buffer the program fills).
 */
export class IteratorWalk {
  private handle: NativeIter | undefined;

  /** @internal use Link.walkIterator. */
  constructor(handle: NativeIter, private readonly target: string) {
    this.handle = handle;
  }

  /** Bytes the program wrote in this part, at most maxBytes (an integer >= 1); 0 once the walk is done. */
  read(maxBytes: number): number {
    if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > 1 << 24) {
      throw new BpfArgumentError(`read ${this.target}: maxBytes must be an integer in [1, ${1 << 24}], got ${maxBytes}`);
    }
    const h = this.handle;
    if (!h) throw new BpfArgumentError(`read ${this.target}: the walk is closed`);
    return call(() => h.read(maxBytes));
  }

  /** Idempotent. */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }
}
