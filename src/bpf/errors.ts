/**
 * Typed errors for everything the kernel path can refuse. The addon throws
 * plain Errors with errno, code, op and libbpfLog; fromNative() turns them into
 * these classes once, at the boundary.
 */

export class BpfError extends Error {
  override readonly name: string = 'BpfError';
  /** errno name, e.g. 'EPERM'. */
  readonly code: string;
  readonly errno: number;
  /** What was being done, e.g. "attach to cgroup /sys/fs/cgroup/x". */
  readonly op: string;
  /** libbpf's own messages during the failed call, if any. */
  readonly libbpfLog: string;

  constructor(message: string, code: string, errno: number, op: string, libbpfLog = '') {
    super(message);
    this.code = code;
    this.errno = errno;
    this.op = op;
    this.libbpfLog = libbpfLog;
  }
}

/** The verifier refused a program; `log` is its verdict, last lines first to read. */
export class VerifierError extends BpfError {
  override readonly name = 'VerifierError';
  readonly program: string;
  readonly log: string;

  constructor(program: string, log: string, cause: BpfError) {
    // The verdict is the last lines before the "processed N insns" summary.
    const tail = log.trimEnd().split('\n').filter((l) => !l.startsWith('processed ')).slice(-2).join(' | ');
    super(`verifier rejected program '${program}': ${tail}`, cause.code, cause.errno, cause.op, cause.libbpfLog);
    this.program = program;
    this.log = log;
  }
}

/** Bad arguments caught before anything reached the kernel. */
export class BpfArgumentError extends Error {
  override readonly name = 'BpfArgumentError';
  readonly code = 'EINVAL';
}

interface NativeErrorShape {
  message: string;
  code?: unknown;
  errno?: unknown;
  op?: unknown;
  libbpfLog?: unknown;
}

const LOG_BLOCK = /-- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/;
const LOG_PROG = /prog '([^']+)': BPF program load failed/;

/** Converts what the addon threw; anything else passes through untouched. */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & NativeErrorShape;
  if (typeof e.errno !== 'number' || typeof e.op !== 'string') return err;
  const log = typeof e.libbpfLog === 'string' ? e.libbpfLog : '';
  const base = new BpfError(e.message, String(e.code), e.errno, e.op, log);
  const block = LOG_BLOCK.exec(log);
  if (block) {
    const prog = LOG_PROG.exec(log)?.[1] ?? '(unknown)';
    return new VerifierError(prog, block[1] ?? '', base);
  }
  return base;
}

/** Runs a native call, rethrowing its error typed. */
export function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}
