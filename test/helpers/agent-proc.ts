/**
 * The real agent as a child process (node dist/src/cli/main.js agent ...),
 * with its JSON log lines collected, for tests that kill and restart it.
 */
import { spawn, ChildProcess, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../src/bpf/native';
import { waitFor } from './wait';

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export class AgentProc {
  readonly logs: LogLine[] = [];
  private constructor(readonly child: ChildProcess) {}

  static start(args: string[]): AgentProc {
    const child = spawn(process.execPath, [CLI, 'agent', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const a = new AgentProc(child);
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          a.logs.push(JSON.parse(line) as LogLine);
        } catch {
          a.logs.push({ level: 'raw', msg: line });
        }
      }
    });
    return a;
  }

  async waitForLog(msg: string, timeoutMs = 10_000): Promise<LogLine> {
    await waitFor(() => this.logs.some((l) => l.msg === msg) || this.child.exitCode !== null, `agent log "${msg}"`, timeoutMs);
    const l = this.logs.find((x) => x.msg === msg);
    if (!l) throw new Error(`agent exited (${this.child.exitCode}) before "${msg}": ${JSON.stringify(this.logs.slice(-5))}`);
    return l;
  }

  /** Stops (SIGSTOP) or continues (SIGCONT) the agent's process, by PID: its programs run on meanwhile. */
  freeze(stopped: boolean): void {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.child.pid!, stopped ? 'SIGSTOP' : 'SIGCONT');
  }

  /** By PID, as the safety rules ask. */
  kill(signal: NodeJS.Signals): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      process.kill(this.child.pid!, signal);
    });
  }
}

export function agentCli(args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A mesh file for one test, in a temp dir. */
export function writeMesh(yaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-test-'));
  const file = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}
