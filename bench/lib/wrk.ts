/**
 * wrk runs with machine-readable results: a Lua `done()` hook prints one
 * line of JSON (requests, duration, errors, latency percentiles in
 * microseconds), so nothing depends on wrk's human output.
 *
 * wrk's latency starts at the first write of a request: with
 * `Connection: close`, connect() is not in it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ScratchCgroup } from '../../src/platform/cgroup';
import { Netns, Proc, spawnIn, Undo } from './sandbox';

const MARK = 'WRK_RESULT ';

const SCRIPT = `-- written by bench/lib/wrk.ts: one JSON line with the results
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '${MARK}{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f,' ..
    '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"mean_us":%.1f,"max_us":%.0f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
`;

export interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  p50Us: number;
  p90Us: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
  /** requests per second */
  rps: number;
}

export interface WrkOptions {
  url: string;
  seconds: number;
  connections: number;
  threads: number;
  /** Send `Connection: close`: one connection per request. */
  close: boolean;
  /** wrk's per-request timeout, seconds. */
  timeoutS?: number;
}

/** Writes the Lua script once into `dir`; returns its path. */
export function wrkScript(dir: string): string {
  const p = path.join(dir, 'wrk-result.lua');
  if (!fs.existsSync(p)) fs.writeFileSync(p, SCRIPT);
  return p;
}

interface RawResult {
  requests: number;
  duration_us: number;
  bytes: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  mean_us: number;
  max_us: number;
}

function isRaw(x: unknown): x is RawResult {
  if (typeof x !== 'object' || x === null) return false;
  const keys: (keyof RawResult)[] = ['requests', 'duration_us', 'bytes', 'connect', 'read', 'write', 'status', 'timeout', 'p50_us', 'p90_us', 'p99_us', 'mean_us', 'max_us'];
  return keys.every((k) => typeof (x as Record<string, unknown>)[k] === 'number');
}

export function parseWrkOutput(out: string): WrkResult {
  const line = out.split('\n').find((l) => l.startsWith(MARK));
  if (!line) throw new Error(`no result line in wrk output:\n${out.trim()}`);
  const raw: unknown = JSON.parse(line.slice(MARK.length));
  if (!isRaw(raw)) throw new Error(`unexpected wrk result: ${line}`);
  return {
    requests: raw.requests,
    durationUs: raw.duration_us,
    bytes: raw.bytes,
    errors: { connect: raw.connect, read: raw.read, write: raw.write, status: raw.status, timeout: raw.timeout },
    p50Us: raw.p50_us,
    p90Us: raw.p90_us,
    p99Us: raw.p99_us,
    meanUs: raw.mean_us,
    maxUs: raw.max_us,
    rps: raw.duration_us > 0 ? (raw.requests / raw.duration_us) * 1e6 : 0,
  };
}

export function errorCount(r: WrkResult): number {
  const e = r.errors;
  return e.connect + e.read + e.write + e.status + e.timeout;
}

/** Runs wrk inside `cg` and `ns`; kills it (by PID) if it overruns. */
export async function runWrk(o: WrkOptions, cg: ScratchCgroup, ns: Netns, scriptDir: string, undo: Undo): Promise<WrkResult> {
  const argv = ['wrk', `-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', `${o.timeoutS ?? 5}s`,
    '-s', wrkScript(scriptDir), ...(o.close ? ['-H', 'Connection: close'] : []), o.url];
  const p: Proc = spawnIn('wrk', cg, ns, argv, undo);
  const timer = setTimeout(() => p.kill('SIGKILL'), (o.seconds + 20) * 1000);
  const { code, signal } = await p.wait();
  clearTimeout(timer);
  if (code !== 0) throw new Error(`wrk ${o.url} exited ${code ?? signal}:\n${p.output.trim()}`);
  return parseWrkOutput(p.output);
}
