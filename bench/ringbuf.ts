/**
 * bench ringbuf: ring buffer -> decoded records in JS, against a C consumer of
 * the same ring as the limit.
 *
 * 1. Drain: for each record size, the `produce` SEC("syscall") program
 *    (bpf/ringbench.bpf.c, run with test_run) pre-fills the ring while nobody
 *    consumes; then one consumer drains it and is timed. Consumers, interleaved
 *    in every round (order rotated): the copying RingBufferReader and the
 *    zero-copy MappedRingReader (the agent's), each with decode() (a plain
 *    object per record) and view() (flyweight); the copying walk alone (no
 *    decoding: that transport's floor); and bench/ringbuf_consumer.c (libbpf
 *    ring_buffer__consume on the pinned map). Every consumer checks every
 *    record (seq order, `check`, `size`, ts order), so decoding is real.
 *    JS readers and handlers live for the whole bench, as the agent's do (a
 *    ring each), and are warmed up first: the runs measure steady-state
 *    throughput, not V8 compiling. The headline JS figure is zero-copy view().
 * 2. Paced: a producer thread (worker_threads, test_run every 10 ms adding
 *    what the wall clock says is due) runs at a fixed rate while the JS
 *    reader (default options, the object's own 16 MiB ring) decodes on the
 *    main thread; produced and dropped come from the program's own counters,
 *    consumed from the handler: consumed + dropped must equal attempted.
 *    Runs at --paced-rate (the target: zero loss), then at --stress-rates
 *    (informational: where loss starts, and what the queue to JS does).
 *
 * stdout: tables, then one last line of JSON with the headline figures.
 * stderr: progress. Options: see USAGE.
 *
 * Nothing is attached anywhere: test_run only. Pins live under
 * /sys/fs/bpf/sockmesh-bench-<pid>/ and are removed at exit, also on failure
 * or signal.
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MessagePort, Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BpfObjectSpec, Program, RingBufferReader, objectPath } from '../src/bpf';
import { MappedRingReader } from '../src/bpf/mapped-ring';
import type { BpfMap, Collection, RecordHandler } from '../src/bpf';
import { repoRoot } from '../src/bpf/native';
import { RingbenchArgs, RingbenchRecord, RingbenchStats, RINGBENCH_MAX_RECORD } from '../src/bpf/layouts/ringbench';
import { DEFAULT_BPFFS, ensureBpffs } from '../src/platform/bpffs';
import { Summary, bytes, duration, median, percentile, printTable, ratio, si, siRange, sig, summarize } from './lib/stats';

// ---------------------------------------------------------------- options

const USAGE = `usage: npm run bench -- ringbuf [--rounds N] [--records N] [--sizes 32,64,128]
       [--paced-rate R] [--paced-seconds S] [--paced-runs N] [--stress-rates R,R ('' for none)]`;

/** Bad command line: reported without a stack. */
class UsageError extends Error {}

interface Options {
  rounds: number;
  records: number;
  sizes: number[];
  pacedRate: number;
  pacedSeconds: number;
  pacedRuns: number;
  stressRates: number[];
}

function parseOptions(argv: string[]): Options {
  try {
    return readOptions(argv);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${(err as Error).message}\n${USAGE}`); // parseArgs: unknown option, missing value
  }
}

function readOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: 'string', default: '7' },
      records: { type: 'string', default: '1000000' },
      sizes: { type: 'string', default: '32,64,128' },
      'paced-rate': { type: 'string', default: '1000000' },
      'paced-seconds': { type: 'string', default: '2' },
      'paced-runs': { type: 'string', default: '3' },
      'stress-rates': { type: 'string', default: '4000000,8000000' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const num = (name: string, v: string | undefined, lo: number, hi: number, integer = true): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < lo || n > hi || (integer && !Number.isInteger(n))) {
      throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}], got ${v}\n${USAGE}`);
    }
    return n;
  };
  const list = (v: string | undefined): string[] => (v ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');
  const sizes = list(values.sizes).map((s) => num('sizes', s, 24, RINGBENCH_MAX_RECORD));
  if (sizes.length === 0) throw new UsageError(`--sizes is empty\n${USAGE}`);
  return {
    rounds: num('rounds', values.rounds, 1, 1000),
    records: num('records', values.records, 1000, 8_000_000),
    sizes,
    pacedRate: num('paced-rate', values['paced-rate'], 1000, 100e6),
    pacedSeconds: num('paced-seconds', values['paced-seconds'], 0.1, 60, false),
    pacedRuns: num('paced-runs', values['paced-runs'], 0, 100),
    stressRates: list(values['stress-rates']).map((r) => num('stress-rates', r, 1000, 100e6)),
  };
}

// ---------------------------------------------------------------- cleanup

const cleanups: (() => void)[] = [];
const children = new Set<ChildProcess>();

/** Runs every registered cleanup once, newest first; never throws. */
function cleanupAll(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  children.clear();
  while (cleanups.length) {
    const fn = cleanups.pop() as () => void;
    try {
      fn();
    } catch (err) {
      process.stderr.write(`[ringbuf] cleanup: ${(err as Error).message}\n`);
    }
  }
}

function installSignalCleanup(): void {
  process.on('exit', cleanupAll);
  const signals: [NodeJS.Signals, number][] = [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]];
  for (const [sig, num] of signals) {
    process.on(sig, () => {
      process.stderr.write(`[ringbuf] ${sig}: cleaning up\n`);
      cleanupAll();
      process.exit(128 + num);
    });
  }
}

function progress(msg: string): void {
  process.stderr.write(`[ringbuf] ${msg}\n`);
}

// ---------------------------------------------------------------- kernel side


function argsCtx(firstSeq: number, count: number): Buffer {
  return RingbenchArgs.encode({ first_seq: firstSeq, count });
}

/** Bytes one record takes in the kernel ring: 8-byte header, data padded to 8. */
function framedSize(recordSize: number): number {
  return 8 + ((recordSize + 7) & ~7);
}

/** Smallest power of two >= what `records` records need, at least 16 MiB. */
function ringBytesFor(records: number, recordSize: number): number {
  const need = Math.ceil(records * framedSize(recordSize) * 1.02) + 4096;
  let bytes = 16 * 1024 * 1024;
  while (bytes < need) bytes *= 2;
  return bytes;
}

interface ProducerCounters {
  produced: number;
  dropped: number;
}

/** One loaded ringbench object with its map pinned and a producer handle. */
class Rig {
  readonly records: BpfMap;
  readonly statsMap: BpfMap;
  readonly mapPin: string;
  readonly progPin: string;
  readonly ringBytes: number;
  private readonly producer: Program;
  private readonly coll: Collection;
  private nextSeq = 0;
  private closed = false;

  constructor(readonly label: string, readonly recordSize: number, ringBytes: number | undefined, pinDir: string) {
    const spec = BpfObjectSpec.open(objectPath('ringbench')).setConstants({ record_size: recordSize });
    if (ringBytes !== undefined) spec.setMaxEntries('records', ringBytes);
    this.coll = spec.load();
    cleanups.push(() => this.close());
    this.records = this.coll.map('records');
    this.statsMap = this.coll.map('stats');
    this.ringBytes = this.records.info.maxEntries;
    this.mapPin = path.join(pinDir, `records-${label}`);
    this.progPin = path.join(pinDir, `produce-${label}`);
    this.records.pin(this.mapPin);
    // Pinned so the producer thread (a worker) can open its own handle.
    this.producer = this.coll.program('produce');
    this.producer.pin(this.progPin);
  }

  counters(): ProducerCounters {
    const slots = this.statsMap.lookupPerCpu(Buffer.alloc(4));
    if (!slots) throw new Error(`${this.label}: stats slot 0 is missing`);
    const sum = { produced: 0, dropped: 0 };
    for (const s of slots) {
      const v = RingbenchStats.decode(s, 0);
      sum.produced += v.produced;
      sum.dropped += v.dropped;
    }
    return sum;
  }

  /** Reserves `n` sequence numbers; returns the first. */
  takeSeq(n: number): number {
    const first = this.nextSeq;
    this.nextSeq += n;
    return first;
  }

  /**
   * Fills the ring with `n` records, nobody consuming; throws unless all of
   * them went in. Returns the first seq and the producer's wall time.
   */
  fill(n: number): { firstSeq: number; ns: number } {
    const before = this.counters();
    const firstSeq = this.takeSeq(n);
    const t0 = process.hrtime.bigint();
    const r = this.producer.testRun({ ctx: argsCtx(firstSeq, n) });
    const ns = Number(process.hrtime.bigint() - t0);
    const after = this.counters();
    const produced = after.produced - before.produced;
    const dropped = after.dropped - before.dropped;
    if (r.retval !== n || produced !== n || dropped !== 0) {
      throw new Error(`${this.label}: pre-fill of ${n} records: retval ${r.retval}, produced ${produced}, dropped ${dropped} ` +
        `(ring ${this.ringBytes} bytes; left-over records from an earlier run?)`);
    }
    return { firstSeq, ns };
  }

  /** Runs the producer on a libuv thread; resolves to the loop count. */
  async produceAsync(firstSeq: number, n: number): Promise<number> {
    const r = await this.producer.testRunAsync({ ctx: argsCtx(firstSeq, n) });
    if (r.retval < 0) throw new Error(`${this.label}: produce returned ${r.retval}`);
    return r.retval;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.coll.close();
    fs.rmSync(this.mapPin, { force: true });
    fs.rmSync(this.progPin, { force: true });
  }
}

// ---------------------------------------------------------------- consumers

/** js-*: the copying RingBufferReader; zc-*: the zero-copy MappedRingReader. */
type Variant = 'js-decode' | 'js-view' | 'js-walk' | 'zc-decode' | 'zc-view' | 'c';
type JsVariant = Exclude<Variant, 'c'>;
const VARIANTS: readonly Variant[] = ['js-decode', 'js-view', 'js-walk', 'zc-decode', 'zc-view', 'c'];

interface Checks {
  seqErrors: number;
  checkErrors: number;
  sizeErrors: number;
  tsErrors: number;
}

interface RunResult extends Checks {
  records: number;
  ns: number;
  cpuNs: number;
  /** Wall time of the pre-fill (the in-kernel producer alone). */
  fillNs: number;
}

interface JsConsumer {
  handler: RecordHandler;
  /** Expects `want` records from `firstSeq` on; `onCount` fires at the last. */
  arm(firstSeq: number, want: number, onCount: () => void): void;
  records(): number;
  checks(): Checks;
}

/**
 * The JS record handlers. Each reads every field of every record once and
 * checks it: seq in order from firstSeq, check == seq ^ 0x5eed5eed (low 32
 * bits), size == record size == framed length, ts_ns non-decreasing.
 *
 * One consumer per variant lives for the whole bench, as the agent's does:
 * its handler is compiled once and is hot from the warm-up on, so the runs
 * measure throughput, not the JIT. The running seq and timestamp live in a
 * Float64Array: both are beyond 2^31, and a double kept in a closure variable
 * is boxed into a fresh heap number on every store (measured: 67M -> 138M
 * records/s for zero-copy view() at 64 B).
 */
function jsConsumer(variant: JsVariant, size: number): JsConsumer {
  const st = new Float64Array(2); // [next seq, last ts]
  // [records seen, records wanted]: a counter in a closure variable is a heap
  // context slot written on every record (measured: ~4% at 32 B).
  const cnt = new Int32Array(2);
  let onCount: () => void = () => undefined;
  const c: Checks = { seqErrors: 0, checkErrors: 0, sizeErrors: 0, tsErrors: 0 };
  const verify = (seq: number, ts: number, sz: number, check: number, len: number): void => {
    if (seq !== st[0]) c.seqErrors++;
    st[0] = seq + 1;
    if (((seq ^ 0x5eed5eed) >>> 0) !== check) c.checkErrors++;
    if (sz !== size || len !== size) c.sizeErrors++;
    if (ts < (st[1] as number)) c.tsErrors++;
    st[1] = ts;
  };
  let handler: RecordHandler;
  switch (variant === 'zc-decode' ? 'js-decode' : variant === 'zc-view' ? 'js-view' : variant) {
    case 'js-decode':
      handler = (buf, off, len) => {
        const r = RingbenchRecord.decode(buf, off);
        verify(r.seq, r.ts_ns, r.size, r.check, len);
        if (++cnt[0]! === cnt[1]) onCount();
      };
      break;
    case 'js-view': {
      const v = RingbenchRecord.view();
      handler = (buf, off, len) => {
        const r = v.at(buf, off);
        verify(r.seq, r.ts_ns, r.size, r.check, len);
        if (++cnt[0]! === cnt[1]) onCount();
      };
      break;
    }
    case 'js-walk':
    default:
      // Transport only: the framing walk and one call per record, no field read.
      handler = () => {
        if (++cnt[0]! === cnt[1]) onCount();
      };
      break;
  }
  return {
    handler,
    arm: (firstSeq, w, done) => {
      cnt[0] = 0;
      cnt[1] = w;
      onCount = done;
      st[0] = firstSeq;
      st[1] = 0;
      c.seqErrors = c.checkErrors = c.sizeErrors = c.tsErrors = 0;
    },
    records: () => cnt[0]!,
    checks: () => ({ ...c }),
  };
}

const gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

function settle(): void {
  // Garbage of earlier runs (their batches) must not be collected on this run's clock.
  if (gc) gc();
}

const DRAIN_TIMEOUT_MS = 30_000;

/**
 * A JS variant's rig, consumer and reader, all kept for the whole bench. Each
 * variant has a ring of its own: a live reader consumes everything its ring
 * receives, so two readers cannot take turns on one ring.
 */
interface JsLane {
  variant: JsVariant;
  rig: Rig;
  consumer: JsConsumer;
  reader: RingBufferReader | MappedRingReader;
}

function openLane(variant: JsVariant, rig: Rig): JsLane {
  const consumer = jsConsumer(variant, rig.recordSize);
  const reader = variant.startsWith('zc-')
    ? new MappedRingReader(rig.records, consumer.handler)
    : new RingBufferReader(rig.records, consumer.handler);
  cleanups.push(() => void reader.close());
  return { variant, rig, consumer, reader };
}

async function drainJs(lane: JsLane, n: number): Promise<RunResult> {
  const { rig, consumer, reader, variant } = lane;
  settle();
  const before = reader.stats();
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  // The fill runs on this thread: the reader's wake-up waits until it returns.
  const { firstSeq, ns: fillNs } = rig.fill(n);
  consumer.arm(firstSeq, n, () => finish());
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  // The zero-copy reader is drained the way the C consumer is: a consume
  // call on data already there (ring_buffer__consume / drain()), not after
  // a wake-up round trip through the poll thread. The copying reader has
  // only the poll thread's batches.
  let t1 = 0n;
  let cpu: NodeJS.CpuUsage | undefined;
  if (reader instanceof MappedRingReader) {
    reader.drain();
    // Stopped where the C consumer stops its clock: after the last record,
    // not after a promise and timer round trip.
    if (consumer.records() === n) {
      t1 = process.hrtime.bigint();
      cpu = process.cpuUsage(cpu0);
    }
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), DRAIN_TIMEOUT_MS)));
  const outcome = await Promise.race([done.then(() => 'done' as const), timedOut]);
  const ns = Number((t1 || process.hrtime.bigint()) - t0);
  cpu ??= process.cpuUsage(cpu0);
  clearTimeout(timer);
  const after = reader.stats();
  const got = after.records - before.records;
  if (outcome === 'timeout') {
    throw new Error(`${variant} ${rig.label}: ${consumer.records()} of ${n} records after ${DRAIN_TIMEOUT_MS} ms ` +
      `(reader stats ${JSON.stringify(after)})`);
  }
  if (consumer.records() !== n || got !== n || after.handlerErrors !== before.handlerErrors) {
    throw new Error(`${variant} ${rig.label}: expected ${n} records, handler saw ${consumer.records()}, reader ${got}, ` +
      `reader stats ${JSON.stringify(after)}`);
  }
  return { records: n, ns, cpuNs: (cpu.user + cpu.system) * 1000, fillNs, ...consumer.checks() };
}

function runChild(file: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

interface CConsumerOutput {
  records: number;
  ns: number;
  cpu_ns: number;
  seq_errors: number;
  check_errors: number;
  size_errors: number;
  ts_errors: number;
  timed_out: boolean;
  error: number;
}

function isCConsumerOutput(x: unknown): x is CConsumerOutput {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return ['records', 'ns', 'cpu_ns', 'seq_errors', 'check_errors', 'size_errors', 'ts_errors', 'error'].every((k) => typeof o[k] === 'number') &&
    typeof o.timed_out === 'boolean';
}

async function drainC(rig: Rig, binary: string, n: number): Promise<RunResult> {
  settle();
  const { firstSeq, ns: fillNs } = rig.fill(n);
  const res = await runChild(binary, [rig.mapPin, String(n), String(rig.recordSize), String(firstSeq), '20000'], DRAIN_TIMEOUT_MS);
  const lastLine = res.stdout.trim().split('\n').pop() ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(lastLine);
  } catch {
    parsed = undefined;
  }
  if (res.code !== 0 || !isCConsumerOutput(parsed) || parsed.records !== n) {
    throw new Error(`C consumer ${rig.label}: exit ${res.code}, expected ${n} records; stdout: ${res.stdout.trim()} stderr: ${res.stderr.trim()}`);
  }
  return {
    records: parsed.records, ns: parsed.ns, cpuNs: parsed.cpu_ns, fillNs,
    seqErrors: parsed.seq_errors, checkErrors: parsed.check_errors, sizeErrors: parsed.size_errors, tsErrors: parsed.ts_errors,
  };
}

/** Compiles bench/ringbuf_consumer.c into bench/.output/ when missing or stale. */
function buildCConsumer(): string {
  const src = path.join(repoRoot, 'bench', 'ringbuf_consumer.c');
  const hdr = path.join(repoRoot, 'bpf', 'ringbench.h');
  const outDir = path.join(repoRoot, 'bench', '.output');
  const bin = path.join(outDir, 'ringbuf_consumer');
  const mtime = (p: string): number => fs.statSync(p).mtimeMs;
  if (fs.existsSync(bin) && mtime(bin) >= Math.max(mtime(src), mtime(hdr))) return bin;
  fs.mkdirSync(outDir, { recursive: true });
  const cc = process.env.CC ?? 'cc';
  const args = ['-O2', '-Wall', '-Wextra', '-I', path.join(repoRoot, 'bpf'), '-o', `${bin}.tmp`, src, '-lbpf'];
  progress(`building the C consumer: ${cc} ${args.join(' ')}`);
  const r = spawnSync(cc, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`cannot build ${src} (needs a C compiler and libbpf-dev): ` +
      `${r.error ? r.error.message : `${cc} exited with status ${r.status}`}\n${r.stderr ?? ''}`);
  }
  fs.renameSync(`${bin}.tmp`, bin);
  return bin;
}

// ---------------------------------------------------------------- paced run

interface PacedResult {
  targetRate: number;
  achievedRate: number;
  seconds: number;
  attempted: number;
  produced: number;
  dropped: number;
  consumed: number;
  balanced: boolean;
  seqGaps: number;
  checkErrors: number;
  latencyNs: { p50: number; p99: number; max: number; samples: number };
  /** Most batches seen queued to JS (reader.stats().inFlight at the start of a batch). */
  maxInFlight: number;
  /** Batches handed to JS (reader.stats().batches). */
  batches: number;
  ringBytes: number;
}

/** What the producer thread is asked to do. */
interface ProducerJob {
  progPin: string;
  rate: number;
  seconds: number;
  firstSeq: number;
  tickMs: number;
}

interface ProducerReport {
  attempted: number;
  seconds: number;
  error?: string;
}

const TICK_MS = 10;

/**
 * Worker thread: runs `produce` at job.rate records/s for job.seconds, one
 * test_run of rate * tickMs records per tick of the wall clock. A thread of
 * its own, so a busy consumer on the main thread cannot slow the producer
 * down: what the ring cannot take is dropped and counted by the program.
 */
function producerThread(job: ProducerJob): void {
  const report = (r: ProducerReport): void => (parentPort as MessagePort).postMessage(r);
  let prog: Program | undefined;
  let attempted = 0;
  const t0 = performance.now();
  try {
    prog = Program.fromPin(job.progPin);
    const total = Math.round(job.rate * job.seconds);
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    // Tick i (from 1) ends at t0 + i * tickMs and brings the total due up to
    // rate * i * tickMs: one burst per tick, sized by the tick, never by how
    // long the previous burst took (a late tick is run at once, not skipped).
    for (let tick = 1; attempted < total; tick++) {
      const wait = t0 + tick * job.tickMs - performance.now();
      if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
      const due = Math.min(total, Math.round((job.rate * tick * job.tickMs) / 1000));
      const k = due - attempted;
      if (k <= 0) continue;
      const r = prog.testRun({ ctx: argsCtx(job.firstSeq + attempted, k) });
      if (r.retval !== k) throw new Error(`produce ran ${r.retval} of ${k} iterations`);
      attempted += k;
    }
    report({ attempted, seconds: (performance.now() - t0) / 1000 });
  } catch (err) {
    report({ attempted, seconds: (performance.now() - t0) / 1000, error: (err as Error).message });
  } finally {
    prog?.close();
  }
}

function runProducerThread(job: ProducerJob): Promise<ProducerReport> {
  return new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: job });
    const stop = (): void => void w.terminate();
    cleanups.push(stop);
    let report: ProducerReport | undefined;
    w.on('message', (m: ProducerReport) => (report = m));
    w.on('error', reject);
    w.on('exit', (code) => {
      const i = cleanups.indexOf(stop);
      if (i >= 0) cleanups.splice(i, 1);
      if (!report) reject(new Error(`producer thread exited (${code}) without a report`));
      else if (report.error) reject(new Error(`producer thread: ${report.error}`));
      else resolve(report);
    });
  });
}

/**
 * The producer thread at `rate` while the JS reader, as the agent would use
 * it (default options), decodes on the main thread. Counts come from the
 * program's own counters (attempted = produced + dropped) and the handler.
 */
async function pacedRun(rig: Rig, rate: number, seconds: number): Promise<PacedResult> {
  settle();
  const before = rig.counters();
  const total = Math.round(rate * seconds);
  const firstSeq = rig.takeSeq(total);
  let consumed = 0;
  let next = firstSeq;
  let seqGaps = 0;
  let checkErrors = 0;
  let maxInFlight = 0;
  const latencies: number[] = [];
  const reader: RingBufferReader = new RingBufferReader(rig.records, (buf, off, len) => {
    const r = RingbenchRecord.decode(buf, off);
    if (off === 8) {
      // Once per batch: age of its oldest record, and the queue to JS.
      latencies.push(Number(process.hrtime.bigint()) - r.ts_ns);
      maxInFlight = Math.max(maxInFlight, reader.stats().inFlight);
    }
    if (r.seq !== next) seqGaps++;
    next = r.seq + 1;
    if (((r.seq ^ 0x5eed5eed) >>> 0) !== r.check || r.size !== len) checkErrors++;
    consumed++;
  });
  let rep: ProducerReport;
  try {
    rep = await runProducerThread({ progPin: rig.progPin, rate, seconds, firstSeq, tickMs: TICK_MS });
  } finally {
    await reader.close({ drain: true });
  }
  const after = rig.counters();
  const produced = after.produced - before.produced;
  const dropped = after.dropped - before.dropped;
  const batches = reader.stats().batches;
  return {
    targetRate: rate,
    achievedRate: rep.attempted / rep.seconds,
    seconds: rep.seconds,
    attempted: rep.attempted,
    produced,
    dropped,
    consumed,
    balanced: consumed + dropped === rep.attempted && produced === consumed,
    seqGaps,
    checkErrors,
    latencyNs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies), samples: latencies.length },
    maxInFlight,
    batches,
    ringBytes: rig.ringBytes,
  };
}

// ---------------------------------------------------------------- main

interface SizeResults {
  runs: Record<Variant, RunResult[]>;
}

function rate(r: RunResult): number {
  return (r.records / r.ns) * 1e9;
}

function perCpuSecond(r: RunResult): number {
  return r.cpuNs > 0 ? (r.records / r.cpuNs) * 1e9 : NaN;
}

function rates(rs: readonly RunResult[], f: (r: RunResult) => number = rate): Summary {
  return summarize(rs.map(f));
}

function errorsOf(rs: readonly RunResult[]): number {
  return rs.reduce((a, r) => a + r.seqErrors + r.checkErrors + r.sizeErrors + r.tsErrors, 0);
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  installSignalCleanup();
  const started = performance.now();

  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    progress('warning: not root; loading BPF programs usually needs CAP_BPF + CAP_PERFMON (or root)');
  }
  try {
    ensureBpffs(DEFAULT_BPFFS);
  } catch (err) {
    throw new Error(`bpffs is not mounted at ${DEFAULT_BPFFS} and mounting it failed (${(err as Error).message}); ` +
      `mount it with: mount -t bpf bpf ${DEFAULT_BPFFS}`);
  }
  const pinDir = path.join(DEFAULT_BPFFS, `sockmesh-bench-${process.pid}`);
  fs.mkdirSync(pinDir);
  cleanups.push(() => fs.rmSync(pinDir, { recursive: true, force: true }));

  const binary = buildCConsumer();
  progress(`${opts.rounds} rounds x sizes ${opts.sizes.join('/')} B x ${VARIANTS.join(', ')}; ${opts.records} records per drain` +
    `${gc ? '' : ' (no --expose-gc: runs may pay for earlier garbage)'}`);

  // ---- drain
  // One rig per size for the C consumer (a fresh process per run), and one per
  // size and JS variant with that variant's reader on it for the whole bench.
  const jsVariants = VARIANTS.filter((v): v is JsVariant => v !== 'c');
  const ringTotal = opts.sizes.reduce((a, sz) => a + ringBytesFor(opts.records, sz) * VARIANTS.length, 0);
  progress(`ring memory: ${bytes(ringTotal)} in ${opts.sizes.length * VARIANTS.length} rings (one per size and consumer; ` +
    'lower --records on a small machine)');
  const cRigs = new Map(opts.sizes.map((s) => [s, new Rig(`${s}-c`, s, ringBytesFor(opts.records, s), pinDir)]));
  const lanes = new Map(opts.sizes.map((s) => [s, new Map(jsVariants.map((v) =>
    [v, openLane(v, new Rig(`${s}-${v}`, s, ringBytesFor(opts.records, s), pinDir))]))]));
  const lane = (s: number, v: JsVariant): JsLane => lanes.get(s)?.get(v) as JsLane;
  const results = new Map<number, SizeResults>(opts.sizes.map((s) => [s, {
    runs: { 'js-decode': [], 'js-view': [], 'js-walk': [], 'zc-decode': [], 'zc-view': [], c: [] },
  }]));
  // Warm-up (not counted): the JIT compiles the handlers, the walks and the decoders.
  for (const s of opts.sizes) {
    for (const v of jsVariants) {
      for (let i = 0; i < 3; i++) await drainJs(lane(s, v), Math.min(opts.records, 500_000));
    }
  }
  for (let round = 0; round < opts.rounds; round++) {
    for (const s of opts.sizes) {
      const res = results.get(s) as SizeResults;
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length] as Variant);
      const line: string[] = [];
      for (const v of order) {
        const r = v === 'c' ? await drainC(cRigs.get(s) as Rig, binary, opts.records) : await drainJs(lane(s, v), opts.records);
        res.runs[v].push(r);
        line.push(`${v} ${si(rate(r))}/s`);
      }
      progress(`round ${round + 1}/${opts.rounds} ${s} B: ${line.join(', ')}`);
    }
  }
  for (const byVariant of lanes.values()) {
    for (const l of byVariant.values()) {
      await l.reader.close();
      l.rig.close();
    }
  }
  for (const rig of cRigs.values()) rig.close();

  // ---- paced
  const paced: PacedResult[] = [];
  const stress: PacedResult[] = [];
  const pacedSize = opts.sizes.includes(64) ? 64 : (opts.sizes[0] as number);
  if (opts.pacedRuns > 0 || opts.stressRates.length > 0) {
    const rig = new Rig(`paced-${pacedSize}`, pacedSize, undefined, pinDir); // the object's own ring size
    const plan: [number, PacedResult[]][] = [];
    for (let i = 0; i < opts.pacedRuns; i++) plan.push([opts.pacedRate, paced]);
    for (const r of opts.stressRates) plan.push([r, stress]);
    for (const [r, into] of plan) {
      const p = await pacedRun(rig, r, opts.pacedSeconds);
      into.push(p);
      progress(`paced ${si(r)}/s x ${opts.pacedSeconds}s (${pacedSize} B, ring ${bytes(rig.ringBytes)}): attempted ${p.attempted}, ` +
        `consumed ${p.consumed}, dropped ${p.dropped}, balanced ${p.balanced}, p99 latency ${duration(p.latencyNs.p99)}`);
    }
    rig.close();
  }

  // ---- report
  const out = process.stdout;
  const S = (size: number): SizeResults => results.get(size) as SizeResults;
  /** In-kernel producer speed: every pre-fill of that size, all variants. */
  const producerRate = (size: number): number =>
    median(VARIANTS.flatMap((v) => S(size).runs[v].map((r) => (r.records / r.fillNs) * 1e9)));
  out.write(`\nring buffer drain: ${opts.records} pre-filled records per run, medians of ${opts.rounds} rounds (min-max), records/s\n`);
  printTable(undefined,
    ['size', 'JS decode()', 'JS view()', 'JS walk only', 'zero-copy decode()', 'zero-copy view()', 'C libbpf', 'decode/C', 'view/C', 'zc decode/C', 'zc view/C', 'producer'],
    opts.sizes.map((s) => {
      const r = S(s).runs;
      const c = rates(r.c).median;
      return [`${s} B`, siRange(rates(r['js-decode'])), siRange(rates(r['js-view'])), siRange(rates(r['js-walk'])),
        siRange(rates(r['zc-decode'])), siRange(rates(r['zc-view'])), siRange(rates(r.c)),
        ratio(rates(r['js-decode']).median / c), ratio(rates(r['js-view']).median / c),
        ratio(rates(r['zc-decode']).median / c), ratio(rates(r['zc-view']).median / c), si(producerRate(s))];
    }));
  out.write('\nCPU: records per CPU-second (all threads of the consumer process) and cores busy during the drain\n');
  printTable(undefined,
    ['size', 'JS decode() /CPU-s', 'JS view() /CPU-s', 'zero-copy view() /CPU-s', 'C /CPU-s', 'JS decode cores', 'zero-copy view cores', 'C cores', 'check errors'],
    opts.sizes.map((s) => {
      const r = S(s).runs;
      const cores = (rs: RunResult[]): string => `${median(rs.map((x) => x.cpuNs / x.ns)).toFixed(2)}`;
      return [`${s} B`, si(rates(r['js-decode'], perCpuSecond).median), si(rates(r['js-view'], perCpuSecond).median),
        si(rates(r['zc-view'], perCpuSecond).median), si(rates(r.c, perCpuSecond).median), cores(r['js-decode']), cores(r['zc-view']), cores(r.c), String(VARIANTS.reduce((a, v) => a + errorsOf(r[v]), 0))];
    }));
  if (paced.length || stress.length) {
    out.write(`\npaced: producer thread at a fixed rate, ${opts.pacedSeconds} s per run, ${pacedSize} B records; JS reader (default options) ` +
      'decoding on the main thread; latency: age of the oldest record of each batch when JS reaches it\n');
    printTable(undefined,
      ['target/s', 'achieved/s', 'attempted', 'consumed', 'dropped', 'consumed+dropped=attempted', 'seq gaps', 'latency p50', 'p99', 'max', 'batches', 'records/batch', 'max queued', 'ring'],
      [...paced, ...stress].map((p) => [si(p.targetRate), si(p.achievedRate), String(p.attempted), String(p.consumed), String(p.dropped),
        p.balanced ? 'yes' : 'NO', String(p.seqGaps), duration(p.latencyNs.p50), duration(p.latencyNs.p99), duration(p.latencyNs.max),
        String(p.batches), si(p.consumed / p.batches), String(p.maxInFlight), bytes(p.ringBytes)]));
  }

  // ---- headline
  const head = opts.sizes.includes(64) ? 64 : (opts.sizes[0] as number);
  const perSize: Record<string, Record<string, number | null>> = {};
  for (const s of opts.sizes) {
    const r = S(s).runs;
    const c = rates(r.c).median;
    perSize[String(s)] = {
      js_records_per_s: sig(rates(r['js-decode']).median),
      js_view_records_per_s: sig(rates(r['js-view']).median),
      js_walk_records_per_s: sig(rates(r['js-walk']).median),
      zc_records_per_s: sig(rates(r['zc-decode']).median),
      zc_view_records_per_s: sig(rates(r['zc-view']).median),
      c_records_per_s: sig(c),
      zc_over_c: sig(rates(r['zc-decode']).median / c, 3),
      zc_view_over_c: sig(rates(r['zc-view']).median / c, 3),
      js_over_c: sig(rates(r['js-decode']).median / c, 3),
      js_view_over_c: sig(rates(r['js-view']).median / c, 3),
      js_records_per_cpu_s: sig(rates(r['js-decode'], perCpuSecond).median),
      producer_records_per_s: sig(producerRate(s)),
      drain_drops: 0, // every pre-fill is checked: produced == n, dropped == 0
    };
  }
  const hr = S(head).runs;
  // Headline JS: the zero-copy reader (the agent's) with view(), which reads
  // every field of every record in place; the copying reader stays beside it.
  const jsHead = rates(hr['zc-view']).median;
  const cHead = rates(hr.c).median;
  const minOver = (f: (s: number) => number): number => Math.min(...opts.sizes.map(f));
  const dropsAt1M = paced.reduce((a, p) => a + p.dropped, 0);
  const validationErrors = opts.sizes.reduce((a, s) => a + VARIANTS.reduce((b, v) => b + errorsOf(S(s).runs[v]), 0), 0) +
    [...paced, ...stress].reduce((a, p) => a + p.checkErrors, 0);
  const worstOverC = minOver((s) => rates(S(s).runs['zc-view']).median / rates(S(s).runs.c).median);
  const targets = {
    // Every record size measured, not only the headline one.
    js_over_c_ge_0_5: worstOverC >= 0.5,
    js_ge_5M_per_s: minOver((s) => rates(S(s).runs['zc-view']).median) >= 5e6,
    js_ge_5M_per_cpu_s: minOver((s) => rates(S(s).runs['zc-view'], perCpuSecond).median) >= 5e6,
    zero_loss_at_1M: paced.length > 0 && opts.pacedRate >= 1e6 && dropsAt1M === 0 && paced.every((p) => p.balanced),
  };
  const summary = {
    bench: 'ringbuf',
    record_size: head,
    records_per_run: opts.records,
    rounds: opts.rounds,
    js_records_per_s: sig(jsHead),
    c_records_per_s: sig(cHead),
    js_over_c: sig(jsHead / cHead, 3),
    js_over_c_worst_size: sig(worstOverC, 3),
    js_decode_records_per_s: sig(rates(hr['zc-decode']).median),
    js_decode_over_c: sig(rates(hr['zc-decode']).median / cHead, 3),
    copying_decode_records_per_s: sig(rates(hr['js-decode']).median),
    copying_view_records_per_s: sig(rates(hr['js-view']).median),
    js_records_per_cpu_s: sig(rates(hr['zc-view'], perCpuSecond).median),
    drops_at_1M: paced.length ? dropsAt1M : null,
    paced: paced.length ? {
      rate: opts.pacedRate, seconds: opts.pacedSeconds, runs: paced.length,
      attempted: paced.reduce((a, p) => a + p.attempted, 0), consumed: paced.reduce((a, p) => a + p.consumed, 0),
      dropped: dropsAt1M, balanced: paced.every((p) => p.balanced),
      latency_p99_ms: sig(Math.max(...paced.map((p) => p.latencyNs.p99)) / 1e6, 3),
    } : null,
    stress: stress.map((p) => ({
      rate: p.targetRate, achieved: sig(p.achievedRate), attempted: p.attempted, consumed: p.consumed, dropped: p.dropped, balanced: p.balanced,
      latency_p99_ms: sig(p.latencyNs.p99 / 1e6, 3), max_in_flight: p.maxInFlight, records_per_batch: sig(p.consumed / p.batches, 3),
    })),
    per_size: perSize,
    targets,
    validation_errors: validationErrors,
    seconds: sig((performance.now() - started) / 1000, 3),
  };
  out.write(`\ntargets (JS = zero-copy view(), every size): JS >= 0.5x C ${targets.js_over_c_ge_0_5 ? 'met' : 'NOT met'} (worst ${ratio(worstOverC)}); JS >= 5M records/s ${targets.js_ge_5M_per_s ? 'met' : 'NOT met'} ` +
    `(per CPU-second: ${targets.js_ge_5M_per_cpu_s ? 'met' : 'NOT met'}); zero loss at ${si(opts.pacedRate)}/s ${targets.zero_loss_at_1M ? 'met' : 'NOT met'}\n`);
  out.write(`${JSON.stringify(summary)}\n`);
  return validationErrors === 0 ? 0 : 1;
}

if (isMainThread) {
  main().then(
    (code) => {
      cleanupAll();
      process.exitCode = code;
    },
    (err: unknown) => {
      cleanupAll();
      const text = err instanceof UsageError ? err.message : err instanceof Error ? err.stack ?? err.message : String(err);
      process.stderr.write(`[ringbuf] failed: ${text}\n`);
      process.exitCode = err instanceof UsageError ? 2 : 1;
    },
  );
} else {
  producerThread(workerData as ProducerJob);
}
