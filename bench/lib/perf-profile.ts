/**
 * Where the mesh's cost lands on the thread that bounds a benchmark, from a
 * `perf record -a -g` taken during a run: every sample of that thread is put
 * in the first category its stack matches. Ratios of req/s between variants
 * move by a few percent with this machine's scheduling; the share of one
 * thread's samples in one run does not, so this is how the components of the
 * kernel path are told apart (bench service --profile).
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';

export interface PerfSample {
  comm: string;
  tid: number;
  /** function names, innermost first */
  stack: string[];
}

/** `perf script -F comm,tid,ip,sym` output: a header line per sample, then one frame per line, blank line between. */
export function parsePerfScript(text: string): PerfSample[] {
  const out: PerfSample[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    const head = /^\s*(.+?)\s+(\d+)\s*$/.exec(lines[0]!);
    if (!head) continue;
    const stack = lines.slice(1).map((l) => {
      const f = l.trim().split(/\s+/);
      return (f[1] ?? '[unknown]').replace(/\+0x[0-9a-f]+$/, '');
    });
    out.push({ comm: head[1]!, tid: Number(head[2]), stack });
  }
  return out;
}

export interface CostCategory {
  name: string;
  what: string;
  matches(stack: readonly string[]): boolean;
}

const has = (stack: readonly string[], fn: string): boolean => stack.includes(fn);
const hasPrefix = (stack: readonly string[], prefix: string): boolean => stack.some((f) => f.startsWith(prefix));

/** The kernel function that ran the sockops program: the frame that called into the cgroup dispatch. */
function sockopsCaller(stack: readonly string[]): string | undefined {
  const i = stack.indexOf('__cgroup_bpf_run_filter_sock_ops');
  if (i < 0) return undefined;
  for (let j = i + 1; j < stack.length; j++) {
    const f = stack[j]!;
    if (!f.startsWith('tcp_call_bpf') && !f.startsWith('bpf_skops') && !f.startsWith('__bpf')) return f;
  }
  return undefined;
}

const sockopsFrom = (...callers: string[]) => (s: readonly string[]): boolean => {
  const c = sockopsCaller(s);
  return c !== undefined && callers.includes(c);
};

/** The mesh's kernel path, most specific first: a sample counts in the first category that matches. */
export const MESH_COST_CATEGORIES: readonly CostCategory[] = [
  {
    name: 'storage_create_connect4',
    what: 'socket storage made at connect4 (the VIP, client side): kmallocs, memcg charge',
    matches: (s) => has(s, 'bpf_local_storage_update') && has(s, '__cgroup_bpf_run_filter_sock_addr'),
  },
  {
    name: 'storage_create_sockops',
    what: 'socket storage made in sockops (the accepted side, and clients not through a VIP)',
    matches: (s) => has(s, 'bpf_local_storage_update') && has(s, '__cgroup_bpf_run_filter_sock_ops'),
  },
  {
    name: 'storage_free',
    what: 'socket storage freed with the socket (both sides)',
    matches: (s) => has(s, 'bpf_sk_storage_free'),
  },
  {
    name: 'connect4',
    what: 'connect4 otherwise: service lookup, slot pick, verdict counter, rewrite',
    matches: (s) => has(s, '__cgroup_bpf_run_filter_sock_addr'),
  },
  {
    name: 'sockops_state',
    what: 'sockops state callbacks: every transition, the close record (ring buffer) at CLOSE',
    matches: sockopsFrom('tcp_set_state'),
  },
  {
    name: 'sockops_rtt',
    what: 'sockops RTT callbacks: one per RTT sample',
    matches: sockopsFrom('tcp_ack_update_rtt'),
  },
  {
    name: 'sockops_established',
    what: 'sockops ACTIVE/PASSIVE_ESTABLISHED (storage lookups, callbacks enabled)',
    matches: sockopsFrom('tcp_init_transfer'),
  },
  {
    name: 'sockops_connect',
    what: 'sockops TCP_CONNECT_CB',
    matches: sockopsFrom('tcp_connect'),
  },
  {
    name: 'sockops_other',
    what: 'sockops callbacks the kernel makes whatever the program wants (timeout, rwnd, ECN init)',
    matches: (s) => has(s, '__cgroup_bpf_run_filter_sock_ops'),
  },
  {
    name: 'other_bpf',
    what: 'in a BPF program perf could not walk out of (the mesh\'s sockops, by name): caller unknown',
    matches: (s) => hasPrefix(s, 'bpf_prog_'),
  },
];

export interface Attribution {
  /** samples counted (of the thread, or the machine's busy ones) */
  samples: number;
  /** samples per category, in order; categories with none included */
  byCategory: { name: string; what: string; samples: number }[];
  /** samples in any category of the kernel path */
  mesh: number;
  /** samples of the agent's own threads (machine-wide only) */
  agent: number;
}

function count(samples: readonly PerfSample[], pick: (s: PerfSample) => boolean, categories: readonly CostCategory[],
  agentTids: ReadonlySet<number> = new Set()): Attribution {
  const counts = new Map<string, number>(categories.map((c) => [c.name, 0]));
  let total = 0;
  let mesh = 0;
  let agent = 0;
  for (const s of samples) {
    if (!pick(s)) continue;
    total++;
    if (agentTids.has(s.tid)) {
      agent++;
      continue;
    }
    const c = categories.find((x) => x.matches(s.stack));
    if (c) {
      counts.set(c.name, counts.get(c.name)! + 1);
      mesh++;
    }
  }
  return { samples: total, mesh, agent, byCategory: categories.map((c) => ({ name: c.name, what: c.what, samples: counts.get(c.name)! })) };
}

/** The samples of the busiest thread of `comm` (the load generator's one thread), by category. */
export function attribute(samples: readonly PerfSample[], comm: string, categories: readonly CostCategory[] = MESH_COST_CATEGORIES): Attribution {
  const perTid = new Map<number, number>();
  for (const s of samples) if (s.comm === comm) perTid.set(s.tid, (perTid.get(s.tid) ?? 0) + 1);
  const tid = [...perTid].sort((a, b) => b[1] - a[1])[0]?.[0];
  return count(samples, (s) => s.comm === comm && s.tid === tid, categories);
}

/**
 * Every busy sample of the machine (idle left out), by category; the
 * agent's threads apart. When every CPU is busy (keep-alive here) no one
 * thread bounds the run: the machine does.
 */
export function attributeMachine(samples: readonly PerfSample[], agentTids: ReadonlySet<number>,
  categories: readonly CostCategory[] = MESH_COST_CATEGORIES): Attribution {
  return count(samples, (s) => s.tid !== 0, categories, agentTids);
}

/** perf on PATH, or why not. */
export function perfMissing(): string | undefined {
  const r = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'perf not found: apt-get install linux-perf (needed only for --profile)';
}

/** A system-wide `perf record` running for `seconds`; stop() waits for it and returns the parsed samples. */
export class PerfRecording {
  private readonly child: ChildProcess;
  private readonly done: Promise<number | null>;
  private stderr = '';

  constructor(private readonly file: string, seconds: number, readonly frequency = 999) {
    this.child = spawn('perf', ['record', '-a', '-g', '-e', 'cpu-clock', '-F', String(frequency), '-o', file, '--', 'sleep', String(seconds)],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.done = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  async samples(): Promise<PerfSample[]> {
    const code = await this.done;
    if (code !== 0) throw new Error(`perf record exited ${code}: ${this.stderr.trim()}`);
    const r = spawnSync('perf', ['script', '-i', this.file, '-F', 'comm,tid,ip,sym'], { encoding: 'utf8', maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`perf script failed: ${r.stderr.trim()}`);
    return parsePerfScript(r.stdout);
  }

  kill(): void {
    this.child.kill('SIGINT');
  }
}
