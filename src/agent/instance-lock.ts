/**
 * One agent per instance. Two agents on one set of pins would both apply
 * their mesh file, both run the report iterator, and both consume the one
 * ring buffer - whose consumer position they share, so each loses records to
 * the other - and a newer one would swap programs under the older one.
 *
 * The lock is an abstract unix socket named after the instance's bpffs
 * directory: binding it is atomic, the kernel releases it when the holder
 * exits however it exits (a SIGKILLed agent's successor starts at once, no
 * stale file to judge), and it answers who holds it. Abstract names belong
 * to a network namespace: agents of one node share the host's (the
 * DaemonSet runs with hostNetwork). Node binds an abstract name NUL-padded
 * to the whole sun_path (/proc/net/unix shows the padding as "@"s): anything
 * else that takes or probes the lock must use the same padded name.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** What the holder tells whoever finds the instance taken. */
export interface LockHolder {
  pid: number;
  instance: string;
  version: string;
  startedAt: string;
  apiSocket: string;
}

/** Who really listens on the lock, as the kernel tells (/proc): what a holder says of itself can be anything. */
export interface LockOwner {
  pid: number;
  /** its pid in each PID namespace it is in, outermost first (a containerized agent says the innermost) */
  nspids: number[];
  uid: number;
  command: string;
}

export class InstanceLockedError extends Error {
  override readonly name = 'InstanceLockedError';
  readonly code = 'EINSTANCELOCKED';

  constructor(readonly bpffsDir: string, readonly holder: LockHolder | undefined, waitedMs: number, readonly owner?: LockOwner) {
    // The kernel's word first: anything on the node may bind the name, and say what it likes.
    const agent = holder && (!owner || owner.nspids.includes(holder.pid));
    const who = agent
      ? `agent pid ${holder.pid} (instance ${holder.instance}, ${holder.version}, running since ${holder.startedAt})`
      : owner
        ? `pid ${owner.pid} (uid ${owner.uid}: ${owner.command}), which does not answer as a sockmesh agent of this instance`
        : 'another process (it did not say which)';
    const waited = waitedMs > 0 ? ` and did not exit within ${waitedMs / 1000} s` : '';
    const todo = agent
      ? `stop that agent first (its programs stay attached and keep serving); look at it with \`sockmesh status --socket ${holder.apiSocket}\``
      : 'it holds the name of this instance\'s lock (an abstract unix socket of the node\'s network namespace): stop it, then start again';
    super(`${bpffsDir} is in use by ${who}${waited}: ${todo}`);
  }
}

/** The abstract socket name for the agent of `bpffsDir` (sun_path holds 108 bytes, the leading NUL included). */
export function lockName(bpffsDir: string): string {
  const dir = path.resolve(bpffsDir);
  const readable = `sockmesh-agent:${dir}`;
  if (Buffer.byteLength(readable) <= 100) return `\0${readable}`;
  return `\0sockmesh-agent:sha256:${createHash('sha256').update(dir).digest('hex').slice(0, 32)}`;
}

/** The holder's answer, or undefined if it does not give one within a second (an agent on its way out). */
function askHolder(name: string): Promise<LockHolder | undefined> {
  return new Promise((resolve) => {
    let data = '';
    const sock = net.createConnection(name);
    const done = (h: LockHolder | undefined): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(h);
    };
    const timer = setTimeout(() => done(undefined), 1000);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', () => done(undefined));
    sock.on('end', () => {
      try {
        const v: unknown = JSON.parse(data);
        done(isHolder(v) ? v : undefined);
      } catch {
        done(undefined);
      }
    });
  });
}

function isHolder(v: unknown): v is LockHolder {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.pid === 'number' && typeof o.instance === 'string' && typeof o.version === 'string' &&
    typeof o.startedAt === 'string' && typeof o.apiSocket === 'string';
}

function tryBind(name: string, me: LockHolder): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((c) => c.end(JSON.stringify(me)));
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(undefined);
      else reject(err);
    });
    server.listen(name, () => {
      // Holding the lock must not keep a process alive that is otherwise done.
      server.unref();
      resolve(server);
    });
  });
}

export interface AcquireOptions {
  /** How long to wait for a holder to exit (one that was just stopped or killed). Default 0: fail at once. */
  waitMs?: number;
  /** Called once, when the instance is found taken and waitMs > 0. */
  onWait?: (holder: LockHolder | undefined) => void;
}

export class InstanceLock {
  private constructor(private server: net.Server | undefined) {}

  static async acquire(bpffsDir: string, me: LockHolder, opts: AcquireOptions = {}): Promise<InstanceLock> {
    const name = lockName(bpffsDir);
    const waitMs = opts.waitMs ?? 0;
    const deadline = Date.now() + waitMs;
    let told = false;
    for (;;) {
      const server = await tryBind(name, me);
      if (server) return new InstanceLock(server);
      const holder = await askHolder(name);
      if (Date.now() >= deadline) throw new InstanceLockedError(bpffsDir, holder, waitMs, lockOwner(name));
      if (!told) {
        told = true;
        opts.onWait?.(holder);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Idempotent. */
  release(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}

/**
 * The process listening on abstract socket `name`: its inode from
 * /proc/net/unix, then the process holding that socket among /proc/<pid>/fd.
 * Undefined when it cannot be told (gone meanwhile, /proc unreadable).
 */
export function lockOwner(name: string, proc = '/proc'): LockOwner | undefined {
  try {
    const want = `@${name.slice(1)}`;
    const line = fs.readFileSync(path.join(proc, 'net', 'unix'), 'utf8').split('\n').find((l) => {
      const f = l.trim().split(/\s+/);
      // Node pads abstract names with NULs, shown as "@".
      return f[3] === '00010000' && f[7] !== undefined && f.slice(7).join(' ').replace(/@+$/, '') === want;
    });
    const inode = line?.trim().split(/\s+/)[6];
    if (!inode) return undefined;
    const target = `socket:[${inode}]`;
    for (const pid of fs.readdirSync(proc).filter((d) => /^\d+$/.test(d))) {
      let fds: string[];
      try {
        fds = fs.readdirSync(path.join(proc, pid, 'fd'));
      } catch {
        continue;
      }
      if (!fds.some((fd) => { try { return fs.readlinkSync(path.join(proc, pid, 'fd', fd)) === target; } catch { return false; } })) continue;
      const status = fs.readFileSync(path.join(proc, pid, 'status'), 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
      const nspids = (/^NSpid:\s+(.*)$/m.exec(status)?.[1] ?? pid).trim().split(/\s+/).map(Number);
      const command = fs.readFileSync(path.join(proc, pid, 'cmdline'), 'utf8').split('\0').filter(Boolean).join(' ').replace(/\s+/g, ' ').slice(0, 200);
      return { pid: Number(pid), nspids, uid, command };
    }
  } catch {
    // best effort: the refusal stands without it
  }
  return undefined;
}
