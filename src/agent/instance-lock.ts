/**
 * One agent per instance. Two agents on one set of pins would both apply
 * their mesh file, both run the report iterator, and both consume the one
 * ring buffer - whose consumer position they share, so each loses records to
 * the other - and a newer one would swap programs under the older one.
 *
 * The lock is flock(2) on a file named after the instance's bpffs directory,
 * in a directory only root can write (default /run/sockmesh/locks, which the
 * DaemonSet shares with the host): taking it is atomic, the kernel drops it
 * with its holder however that exits (a SIGKILLed agent's successor starts at
 * once, nothing stale to judge), it holds across network and PID namespaces,
 * and nobody who cannot write that directory can take it first. The holder
 * writes who it is into the file, for whoever finds the instance taken.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BpfError, native } from '../bpf';
import { call } from '../bpf/errors';

export const DEFAULT_LOCK_DIR = '/run/sockmesh/locks';

/** What the holder tells whoever finds the instance taken. */
export interface LockHolder {
  pid: number;
  instance: string;
  version: string;
  startedAt: string;
  apiSocket: string;
}

export class InstanceLockedError extends Error {
  override readonly name = 'InstanceLockedError';
  readonly code = 'EINSTANCELOCKED';

  constructor(readonly bpffsDir: string, readonly holder: LockHolder | undefined, waitedMs: number) {
    const who = holder
      ? `agent pid ${holder.pid} (instance ${holder.instance}, ${holder.version}, running since ${holder.startedAt})`
      : 'another agent (it has not said which yet)';
    const waited = waitedMs > 0 ? ` and did not exit within ${waitedMs / 1000} s` : '';
    const look = holder ? `; look at it with \`sockmesh status --socket ${holder.apiSocket}\`` : '';
    super(`${bpffsDir} is in use by ${who}${waited}: stop that agent first (its programs stay attached and keep serving)${look}`);
  }
}

/** The lock file of the agent of `bpffsDir`: its path, escaped into one readable file name. */
export function lockPath(bpffsDir: string, lockDir: string = DEFAULT_LOCK_DIR): string {
  const dir = path.resolve(bpffsDir);
  const readable = encodeURIComponent(dir);
  const name = readable.length <= 200 ? readable : `sha256-${createHash('sha256').update(dir).digest('hex')}`;
  return path.join(lockDir, `${name}.lock`);
}

function isHolder(v: unknown): v is LockHolder {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.pid === 'number' && typeof o.instance === 'string' && typeof o.version === 'string' &&
    typeof o.startedAt === 'string' && typeof o.apiSocket === 'string';
}

/** What the lock file says; undefined while its holder has not written it yet (or the file is not there). */
export function readHolder(file: string): LockHolder | undefined {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return isHolder(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The agents that say they run on this machine: holders in the lock
 * directory whose process is alive and whose API socket is there. What a
 * client that found no agent at its socket can suggest instead.
 */
export function runningAgents(lockDir: string = DEFAULT_LOCK_DIR): LockHolder[] {
  let names: string[];
  try {
    names = fs.readdirSync(lockDir).filter((n) => n.endsWith('.lock'));
  } catch {
    return [];
  }
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  return names.map((n) => readHolder(path.join(lockDir, n)))
    .filter((h): h is LockHolder => h !== undefined && alive(h.pid) && fs.existsSync(h.apiSocket))
    .sort((a, b) => a.instance.localeCompare(b.instance));
}

/** The lock, or undefined while another open file holds it. */
function tryLock(file: string): number | undefined {
  try {
    return call(() => native().lockFile(file));
  } catch (err) {
    if (err instanceof BpfError && (err.code === 'EAGAIN' || err.code === 'EWOULDBLOCK')) return undefined;
    throw err;
  }
}

/** Whether an agent holds the lock of `bpffsDir` now (doctor). Takes it for an instant when nobody does. */
export function lockHeld(bpffsDir: string, lockDir: string = DEFAULT_LOCK_DIR): boolean {
  const file = lockPath(bpffsDir, lockDir);
  // No file: no agent has ever locked it - and none is made here.
  if (!fs.existsSync(file)) return false;
  const fd = tryLock(file);
  if (fd === undefined) return true;
  native().closeFd(fd);
  return false;
}

export interface AcquireOptions {
  /** How long to wait for a holder to exit (one that was just stopped or killed). Default 0: fail at once. */
  waitMs?: number;
  /** Called once, when the instance is found taken and waitMs > 0. */
  onWait?: (holder: LockHolder | undefined) => void;
  /** Where lock files live (tests); default DEFAULT_LOCK_DIR. */
  lockDir?: string;
}

export class InstanceLock {
  private constructor(private fd: number | undefined) {}

  static async acquire(bpffsDir: string, me: LockHolder, opts: AcquireOptions = {}): Promise<InstanceLock> {
    const lockDir = opts.lockDir ?? DEFAULT_LOCK_DIR;
    const file = lockPath(bpffsDir, lockDir);
    try {
      fs.mkdirSync(lockDir, { recursive: true, mode: 0o700 });
      fs.accessSync(lockDir, fs.constants.W_OK);
    } catch (err) {
      throw new Error(`cannot take the instance lock in ${lockDir}: ${(err as Error).message}; ` +
        'the agent needs it writable, shared by every agent of the node (the DaemonSet mounts the host\'s /run/sockmesh); run as root');
    }
    const waitMs = opts.waitMs ?? 0;
    const deadline = Date.now() + waitMs;
    let told = false;
    for (;;) {
      const fd = tryLock(file);
      if (fd !== undefined) {
        // Ours: say who we are (the file is never removed, so a successor finds it where we did).
        fs.ftruncateSync(fd);
        fs.writeSync(fd, JSON.stringify(me), 0);
        return new InstanceLock(fd);
      }
      const holder = readHolder(file);
      if (Date.now() >= deadline) throw new InstanceLockedError(bpffsDir, holder, waitMs);
      if (!told) {
        told = true;
        opts.onWait?.(holder);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Idempotent. */
  release(): Promise<void> {
    if (this.fd !== undefined) {
      native().closeFd(this.fd);
      this.fd = undefined;
    }
    return Promise.resolve();
  }
}
