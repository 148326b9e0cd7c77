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
export function spawnInCgroup(cgroupDir: string | undefined, script: string, args: string[]): ChildProcess {
  const file = path.join(FIXTURES, `${script}.js`);
  const join = cgroupDir ? `echo $$ > "${cgroupDir}/cgroup.procs" && ` : '';
  return spawn('sh', ['-c', `${join}exec "$0" "$@"`, process.execPath, file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
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

export async function runInCgroup<T>(cgroupDir: string | undefined, script: string, args: string[], timeoutMs?: number): Promise<ChildResult<T>> {
  const child = spawnInCgroup(cgroupDir, script, args);
  const r = await collect<T>(child, timeoutMs);
  if (r.code !== 0) throw new Error(`${script} ${args.join(' ')} exited with ${r.code ?? r.signal}: ${r.stderr}`);
  return r;
}
