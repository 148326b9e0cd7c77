/**
 * What a test left in the kernel: BPF programs and links by id, pins under
 * bpffs, cgroups under the cgroup v2 root. Snapshot before, compare after.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cgroup2Root } from '../../src/platform/cgroup';

export interface KernelSnapshot {
  progIds: Set<number>;
  linkIds: Set<number>;
  pins: Set<string>;
  cgroups: Set<string>;
}

function ids(kind: 'prog' | 'link'): Set<number> {
  const out = execFileSync('bpftool', ['-j', kind, 'list'], { encoding: 'utf8' });
  const list = JSON.parse(out.trim() || '[]') as { id: number }[];
  return new Set(list.map((x) => x.id));
}

function walk(dir: string, depth: number, out: Set<string>, dirsOnly: boolean): void {
  if (depth < 0) return;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      out.add(p);
      walk(p, depth - 1, out, dirsOnly);
    } else if (!dirsOnly) out.add(p);
  }
}

export function snapshot(): KernelSnapshot {
  const pins = new Set<string>();
  walk('/sys/fs/bpf', 3, pins, false);
  const cgroups = new Set<string>();
  const root = cgroup2Root();
  if (root) walk(root, 1, cgroups, true);
  return { progIds: ids('prog'), linkIds: ids('link'), pins, cgroups };
}

/** Lists what exists now and did not before; empty when the test cleaned up. */
export function leftoversSince(before: KernelSnapshot): string[] {
  const now = snapshot();
  const out: string[] = [];
  for (const id of now.progIds) if (!before.progIds.has(id)) out.push(`BPF program id ${id}`);
  for (const id of now.linkIds) if (!before.linkIds.has(id)) out.push(`BPF link id ${id}`);
  for (const p of now.pins) if (!before.pins.has(p)) out.push(`pin ${p}`);
  for (const c of now.cgroups) if (!before.cgroups.has(c)) out.push(`cgroup ${c}`);
  return out;
}

/**
 * Programs are freed by the kernel asynchronously (RCU) after their last fd
 * closes: wait briefly before calling something a leak.
 */
export async function waitForNoLeftovers(before: KernelSnapshot, timeoutMs = 3000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = leftoversSince(before);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}
