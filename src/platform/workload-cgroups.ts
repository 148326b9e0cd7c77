/**
 * Which workload a socket's cgroup belongs to. A workload's cgroup holds its
 * processes, and they are often one level down or more: a pod's containers
 * each get a cgroup below the pod's, a service may fork into child cgroups.
 * And a workload's cgroup may appear after the mesh file was applied (a pod
 * scheduled later). So the index maps every cgroup in a workload's subtree to
 * that workload (the deepest workload wins where they nest), and an id it
 * does not know makes it walk the subtrees again: a socket's cgroup exists
 * before the socket, so that walk finds it if any workload holds it. Each
 * unknown id costs one walk, not one per lookup.
 *
 * A walk cannot find a cgroup that is already gone, and records come after
 * their sockets closed: a short-lived container (a Job, a crash-looping
 * one) is often removed before the agent reads its records. follow() keeps
 * the index current as cgroups are made (inotify on the directories that
 * are or lead to workloads), and ids stay known for a while after their
 * cgroup went, for the records still on their way.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface WorkloadCgroup<W> {
  /** relative to the cgroup v2 mount */
  cgroup: string;
  workload: W;
}

export interface WorkloadCgroupsOptions {
  /**
   * How long an id stays known once its cgroup is gone. An orphaned socket
   * (its process exited mid-close) reports when it closes, up to
   * tcp_fin_timeout (60 s by default) later.
   */
  keepGoneMs?: number;
  now?: () => number;
  /** How a directory is watched (tests make it fail): fs.watch by default. */
  watch?: (dir: string, onRename: (name: string | null) => void) => fs.FSWatcher;
}

/** fs.watch, for renames only: an entry made or removed. 'change' (cgroup.events and the like) says nothing of cgroups. */
function watchRenames(dir: string, onRename: (name: string | null) => void): fs.FSWatcher {
  // Not persistent: following cgroups must not keep a stopping agent alive.
  return fs.watch(dir, { persistent: false }, (event, name) => {
    if (event === 'rename') onRename(name);
  });
}

/** Ids found in no workload by a walk made after they were asked for; bounded, as cgroups come and go. */
const MAX_OUTSIDE = 10_000;
/** Ids of removed cgroups kept at most (oldest go first). */
const MAX_GONE = 10_000;

interface Entry<W> {
  workload: W;
  dir: string;
  /** when the cgroup was seen gone (now() ms); 0 while it exists */
  goneAt: number;
}

export class WorkloadCgroups<W> {
  private readonly byId = new Map<number, Entry<W>>();
  private readonly idByDir = new Map<string, number>();
  private readonly outside = new Set<number>();
  /** Absolute paths, deepest first: the first that holds a directory is its workload. */
  private readonly ordered: readonly { dir: string; workload: W }[];
  private readonly keepGoneMs: number;
  private readonly now: () => number;
  private readonly watchDir: NonNullable<WorkloadCgroupsOptions['watch']>;
  private watchers: Map<string, fs.FSWatcher> | undefined;
  private onWatchError: ((err: Error) => void) | undefined;
  private watchFailed = false;
  /** Walks made so far (for tests and status). */
  scans = 0;

  constructor(private readonly mount: string, workloads: readonly WorkloadCgroup<W>[], opts: WorkloadCgroupsOptions = {}) {
    const depth = (c: string): number => c.split('/').length;
    this.ordered = [...workloads].sort((a, b) => depth(b.cgroup) - depth(a.cgroup))
      .map((w) => ({ dir: path.join(mount, w.cgroup), workload: w.workload }));
    this.keepGoneMs = opts.keepGoneMs ?? 120_000;
    this.now = opts.now ?? Date.now;
    this.watchDir = opts.watch ?? watchRenames;
    // No walk yet: the agent follows right after compiling, and that walk
    // (which also sets the watches) is the first; otherwise the first lookup walks.
  }

  /** The workload holding cgroup `id`, or undefined (outside every workload, or gone for longer than keepGoneMs). */
  lookup(id: number): W | undefined {
    const e = this.byId.get(id);
    if (e !== undefined && e.goneAt !== 0 && this.now() - e.goneAt > this.keepGoneMs) {
      this.byId.delete(id);
      return undefined; // gone long ago: no walk will find it
    }
    if (e !== undefined || this.ordered.length === 0 || this.outside.has(id)) return e?.workload;
    // Unknown: a cgroup made since the last walk (or none was made yet).
    this.scan();
    const found = this.byId.get(id);
    if (found === undefined) {
      if (this.outside.size >= MAX_OUTSIDE) this.outside.clear();
      this.outside.add(id);
    }
    return found?.workload;
  }

  /**
   * From now on, index cgroups as they are made, not when a record asks for
   * them. onError hears once why a directory could not be watched (such as
   * the inotify watch limit); lookups then still walk on a miss.
   */
  follow(onError?: (err: Error) => void): void {
    if (this.watchers || this.ordered.length === 0) return;
    this.watchers = new Map();
    this.onWatchError = onError;
    this.scan();
  }

  /** Stops following; lookups go on, walking on a miss. Idempotent. */
  close(): void {
    if (!this.watchers) return;
    for (const w of this.watchers.values()) w.close();
    this.watchers = undefined;
    this.onWatchError = undefined;
  }

  /** Cgroups indexed now (gone ones still kept included). */
  get size(): number {
    return this.byId.size;
  }

  /** Directories followed now. */
  get followed(): number {
    return this.watchers?.size ?? 0;
  }

  private ownerOf(dir: string): W | undefined {
    for (const w of this.ordered) if (dir === w.dir || dir.startsWith(`${w.dir}/`)) return w.workload;
    return undefined;
  }

  private leadsToWorkload(dir: string): boolean {
    return this.ordered.some((w) => w.dir.startsWith(`${dir}/`));
  }

  /** The deepest existing directory on the way to dir (dir itself if it exists), not above the mount. */
  private existingAncestor(dir: string): string {
    let d = dir;
    while (d !== this.mount && d.startsWith(`${this.mount}/`) && !isDir(d)) d = path.dirname(d);
    return d;
  }

  /** Walks every workload's subtree; what it no longer finds is gone from now on. */
  private scan(): void {
    const seen = new Set<number>();
    for (const w of this.ordered) this.index(this.existingAncestor(w.dir), seen);
    for (const [id, e] of this.byId) {
      if (e.goneAt === 0 && !seen.has(id)) this.markGone(id, e);
    }
    this.prune();
    this.scans++;
  }

  /** dir and what lies below it in a workload; followed directories also get a watch, and so do those on the way to a workload. */
  private index(dir: string, seen?: Set<number>): void {
    const stack = [dir];
    while (stack.length) {
      const d = stack.pop()!;
      const owner = this.ownerOf(d);
      if (owner === undefined && !this.leadsToWorkload(d)) continue;
      let entries: fs.Dirent[];
      try {
        const id = Number(fs.statSync(d, { bigint: true }).ino);
        // Watched before it is read: a child made in between is then either listed or reported.
        this.watch(d);
        entries = fs.readdirSync(d, { withFileTypes: true });
        if (owner !== undefined) {
          this.remember(id, d, owner);
          seen?.add(id);
        }
      } catch {
        continue; // gone meanwhile: cgroups come and go with their processes
      }
      for (const e of entries) if (e.isDirectory()) stack.push(path.join(d, e.name));
    }
  }

  private remember(id: number, dir: string, workload: W): void {
    const prev = this.idByDir.get(dir);
    if (prev !== undefined && prev !== id) {
      const e = this.byId.get(prev);
      if (e) this.markGone(prev, e); // removed and made again under the same name
    }
    this.byId.set(id, { workload, dir, goneAt: 0 });
    this.idByDir.set(dir, id);
    this.outside.delete(id);
  }

  private markGone(id: number, e: Entry<W>): void {
    e.goneAt = this.now();
    if (this.idByDir.get(e.dir) === id) this.idByDir.delete(e.dir);
  }

  /** dir and everything below it is gone: ids stay known for keepGoneMs, watches go. */
  private forget(dir: string): void {
    const below = (d: string): boolean => d === dir || d.startsWith(`${dir}/`);
    for (const [d, id] of [...this.idByDir]) {
      const e = this.byId.get(id);
      if (below(d) && e) this.markGone(id, e);
    }
    if (this.watchers) {
      for (const [d, w] of [...this.watchers]) {
        if (below(d)) {
          w.close();
          this.watchers.delete(d);
        }
      }
    }
    this.prune();
  }

  private prune(): void {
    const cutoff = this.now() - this.keepGoneMs;
    const gone: number[] = [];
    for (const [id, e] of this.byId) {
      if (e.goneAt === 0) continue;
      if (e.goneAt < cutoff) this.byId.delete(id);
      else gone.push(id);
    }
    // Map order is insertion order: the first gone ones are the oldest entries.
    for (let i = 0; i < gone.length - MAX_GONE; i++) this.byId.delete(gone[i]!);
  }

  private watch(dir: string): void {
    if (!this.watchers || this.watchers.has(dir)) return;
    let w: fs.FSWatcher;
    try {
      w = this.watchDir(dir, (name) => this.changed(dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // gone meanwhile
      if (!this.watchFailed) {
        this.watchFailed = true;
        this.onWatchError?.(err instanceof Error ? err : new Error(String(err)));
      }
      return;
    }
    w.on('error', () => {
      w.close();
      if (this.watchers?.get(dir) === w) this.watchers.delete(dir);
    });
    this.watchers.set(dir, w);
  }

  /** An entry of a followed directory was made or removed (or the directory itself went). */
  private changed(dir: string, name: string | null): void {
    if (!this.watchers) return;
    if (!isDir(dir)) {
      this.forget(dir);
      // What leads to a workload is followed again from what is left of the way.
      if (this.ownerOf(dir) !== undefined || this.leadsToWorkload(dir)) this.index(this.existingAncestor(dir));
      return;
    }
    const target = name ? path.join(dir, name) : dir;
    if (isDir(target)) this.index(target);
    else this.forget(target);
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
