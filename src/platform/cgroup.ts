/**
 * cgroup v2: where it is mounted (detected from /proc/mounts, never assumed:
 * /sys/fs/cgroup on nodes, /sys/fs/cgroup/unified on hybrid hosts) and
 * scratch cgroups for tests, the demo and doctor.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface Mount {
  source: string;
  target: string;
  fstype: string;
  options: string;
}

export function readMounts(file = '/proc/self/mounts'): Mount[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => {
    const [source = '', target = '', fstype = '', options = ''] = line.split(' ');
    // /proc/mounts escapes spaces and friends as octal.
    const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    return { source, target: unescape(target), fstype, options };
  });
}

/** The cgroup v2 mount point, or undefined if there is none. */
export function cgroup2Root(mounts: Mount[] = readMounts()): string | undefined {
  return mounts.find((m) => m.fstype === 'cgroup2')?.target;
}

/** The cgroup v2 path (relative to the root) of a process. */
export function cgroupOfPid(pid: number | 'self' = 'self'): string {
  const text = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  if (!line) throw new Error(`process ${pid} has no cgroup v2 membership (is cgroup v2 mounted?)`);
  return line.slice(3);
}

/** A cgroup that this process made and must remove. */
export class ScratchCgroup {
  private constructor(readonly path: string) {}

  /** mkdir under the cgroup v2 root (never attaches anything to the root itself). */
  static create(name: string, root: string | undefined = cgroup2Root()): ScratchCgroup {
    if (!root) throw new Error('no cgroup v2 mount found in /proc/self/mounts: mount one (mount -t cgroup2 none /sys/fs/cgroup)');
    const dir = path.join(root, name);
    fs.mkdirSync(dir);
    return new ScratchCgroup(dir);
  }

  /** Moves a process in; its sockets created from now on belong here. */
  addProcess(pid: number): void {
    fs.writeFileSync(path.join(this.path, 'cgroup.procs'), String(pid));
  }

  pids(): number[] {
    try {
      return fs.readFileSync(path.join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /**
   * Removes the cgroup. Processes still inside are moved to `evacuateTo`
   * (default: the root) first, since a populated cgroup cannot be removed.
   * Idempotent.
   */
  remove(evacuateTo: string | undefined = path.dirname(this.path)): void {
    if (!fs.existsSync(this.path)) return;
    for (const pid of this.pids()) {
      try {
        fs.writeFileSync(path.join(evacuateTo, 'cgroup.procs'), String(pid));
      } catch { /* exited meanwhile */ }
    }
    for (let i = 0; i < 50; i++) {
      try {
        fs.rmdirSync(this.path);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // exiting tasks linger briefly
      }
    }
    fs.rmdirSync(this.path);
  }
}
