/**
 * What the commands that talk to the agent share: the --socket and -o
 * options, connecting, and turning any failure into one line on stderr and
 * exit code 1 (main.ts's catch-all exits 2, for bugs).
 */
import { Command, Option } from 'commander';
import { ApiClient, ApiError } from '../api/client';
import { runningAgents } from '../agent/instance-lock';
import { OUTPUT_FORMATS, OutputFormat, isOutputFormat } from './render/output';

export const DEFAULT_SOCKET = '/run/sockmesh/default.sock';
export const SOCKET_ENV = 'SOCKMESH_API_SOCKET';

/** --socket's default: the environment (for scripts and tests), else the packaged path. */
export function defaultSocket(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[SOCKET_ENV];
  return v !== undefined && v !== '' ? v : DEFAULT_SOCKET;
}

export interface ApiFlags {
  output: OutputFormat;
  socket: string;
}

/** Adds -o/--output and --socket; the default is read when the command is built, so --help shows it. */
export function withApiOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .option('--socket <path>', `the agent's API socket (env ${SOCKET_ENV})`, defaultSocket());
}

/** Commander hands options over untyped; this is where they are checked. */
export function apiFlags(raw: Record<string, unknown>): ApiFlags {
  const { output, socket } = raw;
  if (!isOutputFormat(output)) throw new Error(`unexpected output format ${String(output)}`);
  if (typeof socket !== 'string' || socket === '') throw new Error('--socket needs a path');
  return { output, socket };
}

/** A mistake in the arguments, as opposed to a failure talking to the agent. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * "name" means default/name, "ns/name" is taken as is (kubectl's
 * convention). Anything else (empty parts, more slashes) is a UsageError.
 */
export function namespacedName(arg: string, what: string): string {
  const parts = arg.split('/');
  const ok = parts.length <= 2 && parts.every((p) => p.trim() !== '' && p === p.trim());
  if (!ok) throw new UsageError(`${what} must be NAME or NAMESPACE/NAME, got "${arg}"`);
  return parts.length === 1 ? `default/${arg}` : arg;
}

/** Enough names to spot a typo without flooding the terminal. */
const KNOWN_SHOWN = 20;

/** The agent says only "not found" (or nothing, to a filter): the operator wants to see what exists. */
export async function serviceNotFound(client: ApiClient, service: string): Promise<Error> {
  const names = (await client.services()).map((s) => s.name).sort();
  const shown = names.slice(0, KNOWN_SHOWN).join(', ');
  const more = names.length > KNOWN_SHOWN ? `, ... ${names.length - KNOWN_SHOWN} more` : '';
  return new Error(`service ${service} not found (known: ${names.length > 0 ? `${shown}${more}` : 'none'})`);
}

/**
 * A --service filter that matched nothing: a typo must not read as "no
 * traffic". Throws serviceNotFound() when the agent has no such service.
 */
export async function checkServiceFilter(client: ApiClient, service: string | undefined, matched: number): Promise<void> {
  if (service === undefined || matched > 0) return;
  if (!(await client.services()).some((s) => s.name === service)) throw await serviceNotFound(client, service);
}

export function reportError(err: unknown): void {
  process.stderr.write(`sockmesh: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}

/**
 * Checks the arguments (`parse`), connects to the agent, runs `fn`, closes.
 * Any error (usage, connect, the agent's) is reported and exits 1; usage is
 * checked first, so a typo is not reported as "agent not running".
 */
export async function withClient<F extends ApiFlags>(parse: () => F, fn: (client: ApiClient, flags: F) => Promise<void>): Promise<void> {
  let client: ApiClient | undefined;
  try {
    const flags = parse();
    client = await ApiClient.connect(flags.socket);
    await fn(client, flags);
  } catch (err) {
    reportError(err instanceof ApiError && err.code === 'not_running' ? withRunningAgents(err) : err);
  } finally {
    client?.close();
  }
}

/** "Not running here" - but maybe running under another name: say where (the lock directory knows). */
function withRunningAgents(err: ApiError): Error {
  const others = runningAgents();
  if (others.length === 0) return err;
  const list = others.map((h) => `instance ${h.instance} (--socket ${h.apiSocket})`).join(', ');
  return new Error(`${err.message}; agents running on this machine: ${list}`);
}

/** Prints an empty result the kubectl way: nothing on stdout, a note on stderr (tables only; json/yaml print the empty list). */
export function writeList(flags: ApiFlags, count: number, text: string, empty: string): void {
  if (count === 0 && (flags.output === 'table' || flags.output === 'wide')) {
    process.stderr.write(`${empty}\n`);
    return;
  }
  process.stdout.write(text);
}

/**
 * Runs a command that goes on until the reader stops it (--follow, --watch):
 * Ctrl-C and SIGTERM call `stop` instead of killing the process, so it ends
 * the way it would at the agent's end - cleanly, exit 0. The one place these
 * commands touch signals.
 */
export async function untilInterrupted<T>(stop: () => void, work: () => Promise<T>): Promise<T> {
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await work();
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
