/**
 * Gate for tests that need the real kernel. Outside CI they skip, saying why;
 * under CI=true a missing capability is a failure, so CI cannot pass by
 * skipping its kernel tests.
 */
import fs from 'node:fs';
import type { TestContext } from 'node:test';
import { cgroup2Root } from '../../src/platform/cgroup';
import { ensureBpffs } from '../../src/platform/bpffs';
import { BPF_OUTPUT_DIR } from '../../src/bpf/objects';

export function kernelUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (BPF programs need CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)';
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) return 'no kernel BTF at /sys/kernel/btf/vmlinux';
  if (!cgroup2Root()) return 'no cgroup v2 mount';
  if (!fs.existsSync(`${BPF_OUTPUT_DIR}/selftest.bpf.o`)) return 'BPF objects not built (npm run build:bpf)';
  try {
    ensureBpffs();
  } catch (err) {
    return `bpffs not mounted and cannot be mounted: ${(err as Error).message}`;
  }
  return undefined;
}

/** Call first in every kernel test: returns false (and skips) when it cannot run. */
export function needsKernel(t: TestContext): boolean {
  const why = kernelUnavailable();
  if (!why) return true;
  if (process.env.CI === 'true') throw new Error(`kernel test cannot run under CI: ${why}`);
  t.skip(why);
  return false;
}
