/** bpffs: where pins live. Detected from /proc/mounts; mounted on request. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { readMounts, Mount } from './cgroup';

export const DEFAULT_BPFFS = '/sys/fs/bpf';

export function bpffsMounted(dir = DEFAULT_BPFFS, mounts: Mount[] = readMounts()): boolean {
  return mounts.some((m) => m.fstype === 'bpf' && m.target === dir);
}

/** Mounts bpffs at dir if it is not there yet. Needs CAP_SYS_ADMIN. */
export function ensureBpffs(dir = DEFAULT_BPFFS): void {
  if (bpffsMounted(dir)) return;
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'bpf', 'bpf', dir], { stdio: 'pipe' });
}
