/**
 * BPF run-time statistics: while a RunTimeStats is open the kernel counts,
 * for every program, how many times it ran and for how long (Program.info()
 * runTimeNs / runCount). The accounting costs a clock read per run and is
 * machine-wide, so it is held by an fd (BPF_ENABLE_STATS) rather than the
 * kernel.bpf_stats_enabled sysctl: it ends when the fd closes, also when the
 * process dies.
 */
import { call } from './errors';
import { native } from './native';
import type { Program } from './program';

export class RunTimeStats {
  private fd: number | undefined;

  private constructor(fd: number) {
    this.fd = fd;
  }

  static enable(): RunTimeStats {
    return new RunTimeStats(call(() => native().enableRunTimeStats()));
  }

  /** Idempotent. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    native().closeFd(fd);
  }
}

export interface ProgramCost {
  name: string;
  runs: number;
  ns: number;
}

/** Counters of a set of programs now; subtract two snapshots for an interval. */
export function programCosts(programs: readonly Program[]): ProgramCost[] {
  return programs.map((p) => {
    const i = p.info();
    return { name: p.name, runs: i.runCount, ns: i.runTimeNs };
  });
}

export function costDelta(after: readonly ProgramCost[], before: readonly ProgramCost[]): ProgramCost[] {
  return after.map((a, i) => {
    const b = before[i];
    if (!b || b.name !== a.name) throw new Error(`costDelta: snapshots of different programs (${a.name})`);
    return { name: a.name, runs: a.runs - b.runs, ns: a.ns - b.ns };
  });
}
