/**
 * Child processes placed in a cgroup before they create any socket (sockets
 * keep the cgroup they were created in), speaking JSON lines on stdout.
 */
import { spawn, ChildProcess } from 'node:child_process';
import path from 'node:path';

export interface ChildResult<T> {
  code: number | null;
  signal: NodeJS.Signals | null;
  messages: T[];
  stderr: string;
}

export const FIXTURES = path.join(__dirname, '..', 'kernel', 'fixtures');

/**
 * Runs `node FIXTURES/<script>.js args...` inside `cgroupDir` (or where we are,
 * if undefined): the shell joins the cgroup, then execs node.
 */
export function spawnInCgroup(cgroupDir: string | undefined, script: string, args: string[], prefix: string[] = []): ChildProcess {
  const file = path.join(FIXTURES, `${script}.js`);
  const join = cgroupDir ? `echo $$ > "${cgroupDir}/cgroup.procs" && ` : '';
  // Join the cgroup first: `ip netns exec` (a prefix) remounts /sys, hiding the cgroup tree.
  return spawn('sh', ['-c', `${join}exec "$@"`, 'sh', ...prefix, process.execPath, file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Collects JSON lines until exit; kills the child (by its PID) on timeout. */
export function collect<T>(child: ChildProcess, timeoutMs = 20_000, onMessage?: (m: T) => void): Promise<ChildResult<T>> {
  return new Promise((resolve, reject) => {
    const messages: T[] = [];
    let buf = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${child.pid} timed out after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.trim()) continue;
        const m = JSON.parse(line) as T;
        messages.push(m);
        onMessage?.(m);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // let stdout flush
      setImmediate(() => resolve({ code, signal, messages, stderr }));
    });
  });
}

export async function runInCgroup<T>(cgroupDir: string | undefined, script: string, args: string[], timeoutMs?: number, prefix: string[] = []): Promise<ChildResult<T>> {
  const child = spawnInCgroup(cgroupDir, script, args, prefix);
  const r = await collect<T>(child, timeoutMs);
  if (r.code !== 0) throw new Error(`${script} ${args.join(' ')} exited with ${r.code ?? r.signal}: ${r.stderr}`);
  return r;
}

/** Starts a long-running fixture and resolves with its first JSON line (its "ready"). */
export function startFixture<T>(cgroupDir: string | undefined, script: string, args: string[], prefix: string[] = [], timeoutMs = 10_000): Promise<{ child: ChildProcess; ready: T; stop: () => Promise<void> }> {
  const child = spawnInCgroup(cgroupDir, script, args, prefix);
  return new Promise((resolve, reject) => {
    let buf = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} not ready after ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i < 0) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      const stop = (): Promise<void> => new Promise((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
      });
      resolve({ child, ready: JSON.parse(buf.slice(0, i)) as T, stop });
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before ready: ${stderr}`));
    });
  });
}
