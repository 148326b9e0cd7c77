/**
 * A Link owns one attachment. Closing an unpinned link detaches it; a pinned
 * link stays attached after close() (and after this process exits) until
 * unpinned or detach()ed.
 */
import fs from 'node:fs';
import { call, BpfArgumentError } from './errors';
import { native, NativeLink, NativeLinkInfo } from './native';

export type LinkKind = 'cgroup' | 'tracepoint' | 'map' | 'iterator' | 'pinned';

export class Link {
  readonly kind: LinkKind;
  /** Human description for logs and errors, e.g. "connect4 on /sys/fs/cgroup/x". */
  readonly target: string;
  private handle: NativeLink | undefined;
  private pinnedAt: string | undefined;

  /** @internal use Program.attach* or Link.fromPin. */
  constructor(handle: NativeLink, kind: LinkKind, target: string) {
    this.handle = handle;
    this.kind = kind;
    this.target = target;
  }

  /** Re-opens a link pinned by this or an earlier process. */
  static fromPin(pinPath: string): Link {
    const fd = call(() => native().objGet(pinPath));
    const kind = native().fdKind(fd);
    if (kind !== 'link') {
      native().closeFd(fd);
      throw new BpfArgumentError(`${pinPath} holds a BPF ${kind}, not a link`);
    }
    const link = new Link(new (native().Link)(fd), 'pinned', pinPath);
    link.pinnedAt = pinPath;
    return link;
  }

  get closed(): boolean {
    return this.handle === undefined;
  }

  get pinPath(): string | undefined {
    return this.pinnedAt;
  }

  info(): NativeLinkInfo {
    return call(() => this.live('info').info());
  }

  pin(pinPath: string): void {
    call(() => this.live('pin').pin(pinPath));
    this.pinnedAt = pinPath;
  }

  /** Removes the pin; the attachment ends when the last fd closes. Idempotent. */
  unpin(): void {
    if (this.pinnedAt === undefined) return;
    fs.rmSync(this.pinnedAt, { force: true });
    this.pinnedAt = undefined;
  }

  /** Runs an iterator link over all its elements; returns the bytes its program wrote. */
  runIterator(): number {
    const h = this.live('run iterator');
    return call(() => h.readIter());
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
