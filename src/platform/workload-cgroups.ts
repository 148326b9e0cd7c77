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
 */
import fs from 'node:fs';
import path from 'node:path';

export interface WorkloadCgroup<W> {
  /** relative to the cgroup v2 mount */
  cgroup: string;
  workload: W;
}

/** Ids found in no workload by a walk made after they were asked for; bounded, as cgroups come and go. */
const MAX_OUTSIDE = 10_000;

export class WorkloadCgroups<W> {
  private byId = new Map<number, W>();
  private readonly outside = new Set<number>();
  /** Deepest last: a nested workload's subtree overrides its ancestor's. */
  private readonly ordered: readonly WorkloadCgroup<W>[];
  /** Walks made so far (for tests and status). */
  scans = 0;

  constructor(private readonly mount: string, workloads: readonly WorkloadCgroup<W>[]) {
    const depth = (c: string): number => c.split('/').length;
    this.ordered = [...workloads].sort((a, b) => depth(a.cgroup) - depth(b.cgroup));
    this.scan();
  }

  /** The workload holding cgroup `id`, or undefined (outside every workload, or already gone). */
  lookup(id: number): W | undefined {
    const w = this.byId.get(id);
    if (w !== undefined || this.ordered.length === 0 || this.outside.has(id)) return w;
    this.scan();
    const found = this.byId.get(id);
    if (found === undefined) {
      if (this.outside.size >= MAX_OUTSIDE) this.outside.clear();
      this.outside.add(id);
    }
    return found;
  }

  /** Cgroups indexed now. */
  get size(): number {
    return this.byId.size;
  }

  private scan(): void {
    const next = new Map<number, W>();
    for (const w of this.ordered) walk(path.join(this.mount, w.cgroup), (id) => next.set(id, w.workload));
    this.byId = next;
    this.scans++;
  }
}

/** Every directory at and below `dir` by its cgroup id (the inode number); nothing if it does not exist. */
function walk(dir: string, visit: (id: number) => void): void {
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      visit(Number(fs.statSync(d, { bigint: true }).ino));
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue; // gone meanwhile: cgroups come and go with their processes
    }
    for (const e of entries) if (e.isDirectory()) stack.push(path.join(d, e.name));
  }
}
