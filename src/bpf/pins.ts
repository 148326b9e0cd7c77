/**
 * What maps, programs and links share about bpffs pins: opening one with a
 * check of what it holds, and remembering where a handle is pinned.
 */
import fs from 'node:fs';
import { BpfArgumentError, call } from './errors';
import { native } from './native';

/** Marks a pin made to be renamed over another; one left behind is a replacement cut short. */
export const REPLACING_SUFFIX = '-replacing';

const NOUN = { map: 'a map', prog: 'a program', link: 'a link' } as const;

/** An fd for the object pinned at pinPath; throws (fd closed) if it is not a `want`. */
export function openPinned(pinPath: string, want: keyof typeof NOUN): number {
  const fd = call(() => native().objGet(pinPath));
  const kind = native().fdKind(fd);
  if (kind !== want) {
    native().closeFd(fd);
    throw new BpfArgumentError(`${pinPath} holds a BPF ${kind}, not ${NOUN[want]}`);
  }
  return fd;
}

/** Where one handle is pinned, if anywhere. */
export class PinState {
  path: string | undefined;

  pin(handle: { pin(path: string): void }, pinPath: string): void {
    call(() => handle.pin(pinPath));
    this.path = pinPath;
  }

  /**
   * Pins at pinPath, atomically replacing whatever is pinned there: pinned
   * beside it first (REPLACING_SUFFIX; bpffs refuses names with a dot), then
   * renamed over it, so the path never goes missing.
   */
  replace(handle: { pin(path: string): void }, pinPath: string): void {
    const tmp = `${pinPath}${REPLACING_SUFFIX}`;
    fs.rmSync(tmp, { force: true });
    call(() => handle.pin(tmp));
    try {
      fs.renameSync(tmp, pinPath);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    this.path = pinPath;
  }

  /** Removes the pin (the object lives on while an fd holds it). Idempotent. */
  unpin(): void {
    if (this.path === undefined) return;
    fs.rmSync(this.path, { force: true });
    this.path = undefined;
  }
}
