/**
 * Sandboxes for benches that run real servers and clients: an undo stack
 * that also runs on failure, signals and exit; loopback-only network
 * namespaces; scratch cgroups; processes started inside both (joining the
 * cgroup before `ip netns exec`, which remounts /sys and hides the cgroup
 * tree). Everything here is made by the bench and removed by it: processes
 * are stopped by PID - the ones it spawned, and the ones inside cgroups it
 * created, which only it can have put there.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ScratchCgroup } from '../../src/platform/cgroup';

// ---------------------------------------------------------------- undo stack

interface Step {
  what: string;
  fn: () => void;
}

/**
 * Undo steps, run newest first. Synchronous on purpose: the same steps run
 * from `process.on('exit')`, where nothing asynchronous completes.
 */
export class Undo {
  private readonly steps: Step[] = [];
  private running = false;

  constructor(private readonly log: (msg: string) => void) {}

  /** Registers `fn`; the returned function runs it now (once) and unregisters it. */
  add(what: string, fn: () => void): () => void {
    const step: Step = { what, fn };
    this.steps.push(step);
    return () => {
      const i = this.steps.indexOf(step);
      if (i < 0) return;
      this.steps.splice(i, 1);
      this.runStep(step);
    };
  }

  /** Runs every step, newest first; never throws (failures are logged). Idempotent. */
  runAll(): void {
    if (this.running) return;
    this.running = true;
    try {
      while (this.steps.length) this.runStep(this.steps.pop() as Step);
    } finally {
      this.running = false;
    }
  }

  get pending(): number {
    return this.steps.length;
  }

  private runStep(s: Step): void {
    try {
      s.fn();
    } catch (err) {
      this.log(`cleanup: ${s.what}: ${(err as Error).message}`);
    }
  }
}

/**
 * Runs `undo` on exit and on SIGINT/SIGTERM/SIGHUP (then exits 128+n).
 * `beforeSync` gets a bounded chance to finish asynchronous work (closing a
 * ring buffer reader) before the synchronous steps run.
 */
export function cleanupOnExit(undo: Undo, log: (msg: string) => void, beforeSync?: () => Promise<void>): void {
  process.on('exit', () => undo.runAll());
  const signals: [NodeJS.Signals, number][] = [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]];
  let exiting = false;
  for (const [sig, num] of signals) {
    process.on(sig, () => {
      if (exiting) return; // a second Ctrl-C while cleaning up: keep cleaning
      exiting = true;
      log(`${sig}: cleaning up`);
      const finish = (): void => {
        undo.runAll();
        process.exit(128 + num);
      };
      if (!beforeSync) return finish();
      const timer = setTimeout(finish, 3000);
      beforeSync().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`)).finally(() => {
        clearTimeout(timer);
        finish();
      });
    });
  }
}

// ---------------------------------------------------------------- tools

export interface Tool {
  /** Executable looked up in PATH (and the sbin directories). */
  bin: string;
  /** The Debian package that provides it. */
  apt: string;
}

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of an executable, or undefined. */
export function which(bin: string): string | undefined {
  const dirs = [...new Set([...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH])];
  for (const d of dirs) {
    const p = path.join(d, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/** Throws one message naming the exact apt-get command for whatever is missing. */
export function requireTools(tools: readonly Tool[]): void {
  const missing = tools.filter((t) => !which(t.bin));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((t) => t.apt))];
  throw new MissingToolsError(
    `missing ${missing.map((t) => t.bin).join(', ')}. Install with:\n` +
    `  apt-get install -y --no-install-recommends ${pkgs.join(' ')}\n` +
    '(scripts/setup.sh installs them too)');
}

export class MissingToolsError extends Error {}

// ---------------------------------------------------------------- netns

/** A network namespace with loopback only: no other interface, no route out. */
export class Netns {
  private constructor(readonly name: string) {}

  static create(name: string, undo: Undo): Netns {
    if (name.length > 30 || !/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`bad netns name ${name}`);
    execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
    const ns = new Netns(name);
    undo.add(`netns ${name}`, () => ns.remove());
    ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    const links = ns.exec(['ip', '-o', 'link', 'show']).split('\n').filter(Boolean);
    if (links.length !== 1 || !/: lo:/.test(links[0] ?? '')) throw new Error(`netns ${name}: expected only lo, found:\n${links.join('\n')}`);
    return ns;
  }

  /** Runs a command inside; returns stdout; throws with stderr on failure. */
  exec(argv: readonly string[], input?: string): string {
    const r = spawnSync('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8', input, maxBuffer: 64 * 1024 * 1024 });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`in netns ${this.name}: ${argv.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  }

  sysctl(name: string, value: string | number): void {
    this.exec(['sysctl', '-q', '-w', `${name}=${value}`]);
  }

  readSysctl(name: string): string | undefined {
    try {
      return this.exec(['sysctl', '-n', name]).trim();
    } catch {
      return undefined;
    }
  }

  prefix(): string[] {
    return ['ip', 'netns', 'exec', this.name];
  }

  /** Idempotent. */
  remove(): void {
    spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
  }
}

// ---------------------------------------------------------------- cgroups

/** SIGKILLs every process in the cgroup (by PID: only this bench puts processes there), until it is empty. */
export function emptyCgroup(cg: ScratchCgroup, timeoutMs = 3000): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = cg.pids();
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
    }
    if (Date.now() > deadline) throw new Error(`${cg.path}: processes ${pids.join(', ')} do not go away`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

/** A scratch cgroup registered for removal (its processes killed first). */
export function scratchCgroup(name: string, parent: string | undefined, undo: Undo): ScratchCgroup {
  const cg = ScratchCgroup.create(name, parent);
  undo.add(`cgroup ${cg.path}`, () => {
    emptyCgroup(cg);
    cg.remove();
  });
  return cg;
}

// ---------------------------------------------------------------- processes

/** A process started by the bench, with the tail of its output kept for error messages. */
export class Proc {
  private out = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;

  constructor(readonly name: string, readonly child: ChildProcess, private readonly keep = 64 * 1024) {
    const add = (d: Buffer): void => {
      this.out += d.toString();
      if (this.out.length > this.keep * 2) this.out = this.out.slice(-this.keep);
    };
    child.stdout?.on('data', add);
    child.stderr?.on('data', add);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve({ code, signal });
      });
      child.on('error', (err) => {
        this.out += `\nspawn failed: ${err.message}`;
        this.exitCode = -1;
        resolve({ code: -1, signal: null });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  get output(): string {
    return this.out;
  }

  wait(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }

  /** Signals this process (by its PID) if it still runs. */
  kill(sig: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running && this.pid > 0) {
      try {
        process.kill(this.pid, sig);
      } catch { /* gone */ }
    }
  }
}

/**
 * Starts argv inside `cg` and `ns`: the shell joins the cgroup first (so every
 * socket the command creates belongs to it), then execs `ip netns exec`,
 * which execs the command: one PID throughout.
 */
export function spawnIn(name: string, cg: ScratchCgroup, ns: Netns, argv: readonly string[], undo: Undo): Proc {
  const child = spawn('sh', ['-c', 'echo $$ > "$BENCH_CGROUP/cgroup.procs" && exec "$@"', 'sh', ...ns.prefix(), ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_CGROUP: cg.path },
  });
  const p = new Proc(name, child);
  const done = undo.add(`process ${name} (${p.pid})`, () => p.kill('SIGKILL'));
  void p.wait().then(() => done());
  return p;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every `everyMs` until it returns true; false on timeout. */
export async function until(check: () => boolean, timeoutMs: number, everyMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

/** True when something listens on TCP addr:port inside the namespace. */
export function listening(ns: Netns, addr: string, port: number): boolean {
  const out = ns.exec(['ss', '-Hltn', `src ${addr}:${port}`]);
  return out.trim() !== '';
}

/** Waits until `proc` listens on addr:port; throws with its output if it exits or never does. */
export async function waitListening(proc: Proc, ns: Netns, addr: string, port: number, timeoutMs = 5000, extra?: () => string): Promise<void> {
  const ok = await until(() => !proc.running || listening(ns, addr, port), timeoutMs);
  if (ok && proc.running) return;
  proc.kill();
  const why = proc.running ? `not listening on ${addr}:${port} after ${timeoutMs} ms` : `exited (${proc.exitCode ?? proc.exitSignal})`;
  throw new Error(`${proc.name} ${why}:\n${proc.output.trim()}${extra ? `\n${extra()}` : ''}`);
}
