/**
 * The agent's settings: one table (SETTINGS) says, for each, its name in the
 * mesh file's `agent:` section and in the flags object (camelCase, as
 * commander's opts() gives it), its flag (--kebab-case), its environment
 * variable (SOCKMESH_UPPER_SNAKE) and how its value is parsed. mergeSettings()
 * layers them: flags > env > file > defaults.
 *
 * Every layer's value is validated, including values a higher layer
 * overrides: a bad SOCKMESH_* variable is a latent bug even while a flag
 * hides it, and would surface the day the flag goes away.
 */
import { quote, type SettingsIssue, type SourcePosition } from './errors';
import type { AgentSettings, BpfStats, Checked, HostPort, LogLevel, RttSamples } from './model';
import { parseIp } from './model';
import {
  checkCgroupPath, checkDnsLabel, describe, formatPath, stringParser,
  type Path, type PathIssue,
} from './schema';

export interface SettingSpec<T> {
  /** Key in the `agent:` section and in the flags object. */
  readonly name: string;
  /** "--report-interval" */
  readonly flag: string;
  /** "SOCKMESH_REPORT_INTERVAL" */
  readonly env: string;
  /** One line, for --help. */
  readonly description: string;
  /** Accepts a string (flag, env) or a YAML value (file); one reason when it refuses. */
  readonly parse: (input: unknown) => Checked<T>;
}

type SettingKey = keyof AgentSettings;
type Specs = { readonly [K in SettingKey]: SettingSpec<NonNullable<AgentSettings[K]>> };

function spec<T>(name: string, description: string, parse: (input: unknown) => Checked<T>): SettingSpec<T> {
  const words = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return {
    name,
    flag: `--${words}`,
    env: `SOCKMESH_${words.replace(/-/g, '_').toUpperCase()}`,
    description,
    parse,
  };
}

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = <T>(reason: string): Checked<T> => ({ ok: false, reason });

/** Unix socket paths must fit sockaddr_un.sun_path (108 bytes with the NUL). */
const SUN_PATH_MAX = 107;

function checkAbsolutePath(s: string): Checked<string> {
  const q = quote(s);
  if (!s.startsWith('/')) return bad(`must be an absolute path, got ${q}`);
  if (/[\u0000-\u001f\u007f]/.test(s)) return bad(`must not contain control characters, got ${q}`);
  const segments = s.slice(1).split('/');
  // Normalized, so that the same directory always reads the same in logs and pins.
  if (s !== '/' && segments.some((seg) => seg === '' || seg === '.' || seg === '..')) {
    return bad(`must be a normalized path (no "//", ".", ".." or trailing "/"), got ${q}`);
  }
  return ok(s);
}

const HOST_PORT_HINT = 'not host:port (e.g. 127.0.0.1:9464 or [::1]:9464)';
const HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i;

function parseHostPort(s: string): Checked<HostPort> {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]+)$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  if (!m || host === undefined || host === '') return bad(`${HOST_PORT_HINT}, got ${quote(s)}`);
  const bracketed = m[1] !== undefined;
  const ip = parseIp(host);
  // Brackets are for IPv6 only; an IPv4 or a name in brackets is a typo.
  if (bracketed ? !ip.ok || ip.value.family !== 6 : !(ip.ok || HOSTNAME.test(host))) {
    return bad(`${HOST_PORT_HINT}, got ${quote(s)}`);
  }
  const port = Number(m[3]);
  // Port 0 lets the kernel pick: how tests run several agents side by side.
  if (port > 65535) return bad(`port must be in 0..65535, got ${quote(s)}`);
  return ok({ host: ip.ok ? ip.value.text : host.toLowerCase(), port });
}

function parseUrl(s: string): Checked<string> {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return bad(`not a URL (e.g. http://127.0.0.1:4317), got ${quote(s)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return bad(`must be an http:// or https:// URL, got ${quote(s)}`);
  // OTLP/gRPC addresses a host, not a resource: a path would be silently ignored.
  if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) {
    return bad(`must be scheme://host[:port] only (no credentials, path or query), got ${quote(s)}`);
  }
  return ok(url.origin);
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const INTERVAL_MIN = 100;
const INTERVAL_MAX = 3_600_000;

/** "10s", "250ms", "1m", or a number of milliseconds (a YAML number or a bare digit string). */
function parseInterval(input: unknown): Checked<number> {
  const hint = `must be a duration in 100ms..1h, e.g. 10s or 10000 (milliseconds), got ${describe(input)}`;
  let ms: number | undefined;
  if (typeof input === 'number') ms = input;
  else if (typeof input === 'string') {
    const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(input.trim());
    if (m) ms = Number(m[1]) * (DURATION_UNITS[m[2] ?? 'ms'] ?? 1);
  }
  if (input === undefined) return bad('required');
  if (ms === undefined || !Number.isInteger(ms) || ms < INTERVAL_MIN || ms > INTERVAL_MAX) return bad(hint);
  return ok(ms);
}

const TTL_MAX = 7 * 24 * 3_600_000;

/** A duration (as reportInterval, up to 7d), or 0 / off: never. */
function parseTtl(input: unknown): Checked<number> {
  if (input === 0 || input === '0' || input === 'off' || input === false) return ok(0);
  if (input === undefined) return bad('required');
  const hint = `must be a duration up to 7d, e.g. 10m, or off (0), got ${describe(input)}`;
  let ms: number | undefined;
  if (typeof input === 'number') ms = input;
  else if (typeof input === 'string') {
    const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(input.trim());
    if (m) ms = Number(m[1]) * (m[2] === 'd' ? 86_400_000 : DURATION_UNITS[m[2] ?? 'ms'] ?? 1);
  }
  if (ms === undefined || !Number.isInteger(ms) || ms < 1 || ms > TTL_MAX) return bad(hint);
  return ok(ms);
}

/**
 * An open connection refreshes its edge once per report interval (the report
 * run comes every half interval): a TTL under three intervals would expire
 * edges that still have connections.
 */
const TTL_INTERVALS = 3;

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

const RTT_SAMPLES: readonly RttSamples[] = ['all', 'none'];

function parseRttSamples(s: string): Checked<RttSamples> {
  const v = RTT_SAMPLES.find((x) => x === s);
  return v ? ok(v) : bad(`must be all (every RTT sample: exact SRTT min/max) or none (no callback per ACK), got ${quote(s)}`);
}

/** on/off; in the file also true/false, which is how YAML writers often spell a switch. */
function parseBpfStats(input: unknown): Checked<BpfStats> {
  if (input === 'on' || input === 'off') return ok(input);
  if (typeof input === 'boolean') return ok(input ? 'on' : 'off');
  if (input === undefined) return bad('required');
  return bad(`must be on (count each mesh program's runs and run time for /metrics) or off, got ${describe(input)}`);
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, ki: 1024, kib: 1024, m: 1 << 20, mi: 1 << 20, mib: 1 << 20, g: 1 << 30, gi: 1 << 30, gib: 1 << 30 };
export const RING_BYTES_MIN = 64 * 1024;
/** The zero-copy reader maps the ring twice over; it walks at most 1 GiB (src/bpf/mapped-ring.ts). */
export const RING_BYTES_MAX = 1 << 30;

/** "4MiB", "64Ki", "1g", or a number of bytes: a power of two in 64 KiB..1 GiB. */
function parseRingBytes(input: unknown): Checked<number> {
  if (input === undefined) return bad('required');
  const hint = `must be a power of two from 64KiB to 1GiB, e.g. 4MiB or 4194304, got ${describe(input)}`;
  let n: number | undefined;
  if (typeof input === 'number') n = input;
  else if (typeof input === 'string') {
    const m = /^([0-9]+)\s*([a-z]*)$/i.exec(input.trim());
    const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
    if (m && unit !== undefined) n = Number(m[1]) * unit;
  }
  if (n === undefined || !Number.isSafeInteger(n) || n < RING_BYTES_MIN || n > RING_BYTES_MAX || (n & (n - 1)) !== 0) return bad(hint);
  return ok(n);
}

function parseLogLevel(s: string): Checked<LogLevel> {
  const level = LOG_LEVELS.find((l) => l === s);
  return level ? ok(level) : bad(`must be one of ${LOG_LEVELS.join(', ')}, got ${quote(s)}`);
}

export const SETTINGS: Specs = {
  instance: spec('instance', 'agent instance name; names pins, socket and metrics', stringParser(checkDnsLabel)),
  bpffsDir: spec('bpffsDir', 'bpffs directory for pinned maps and links', stringParser(checkAbsolutePath)),
  cgroupRoot: spec('cgroupRoot', 'cgroup v2 path (relative to the mount) where programs attach', stringParser(checkCgroupPath)),
  metricsAddress: spec('metricsAddress', 'host:port of the Prometheus endpoint', stringParser(parseHostPort)),
  apiSocket: spec('apiSocket', 'unix socket of the local API', stringParser((s) => {
    const p = checkAbsolutePath(s);
    if (p.ok && Buffer.byteLength(s) > SUN_PATH_MAX) return bad(`a unix socket path is at most ${SUN_PATH_MAX} bytes, got ${Buffer.byteLength(s)}: ${quote(s)}`);
    return p;
  })),
  otlpEndpoint: spec('otlpEndpoint', 'OTLP/gRPC collector, e.g. http://127.0.0.1:4317 (no export if unset)', stringParser(parseUrl)),
  reportIntervalMs: spec('reportInterval', 'how often connection telemetry is reported, e.g. 10s', parseInterval),
  edgeTtlMs: spec('edgeTtl', `drop an edge and its /metrics series after this long without a record, e.g. 10m (default; at least ${TTL_INTERVALS} report intervals), or off`, parseTtl),
  rttSamples: spec('rttSamples', 'all: a callback per RTT sample (exact SRTT min/max); none: SRTT read at reports and close only', stringParser(parseRttSamples)),
  ringBytes: spec('ringBytes', 'ring buffer for connection records, a power of two, e.g. 4MiB (a change applies at the next start)', parseRingBytes),
  bpfStats: spec('bpfStats', 'on: count each mesh program\'s runs and run time for /metrics (two clock reads per run of every BPF program on the node); off', parseBpfStats),
  logLevel: spec('logLevel', 'debug, info, warn or error', stringParser(parseLogLevel)),
};

const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

export const DEFAULT_INSTANCE = 'default';

/** Defaults; the paths depend on the instance, so two instances never share pins or a socket. */
export function defaultSettings(instance: string = DEFAULT_INSTANCE): AgentSettings {
  return {
    instance,
    bpffsDir: `/sys/fs/bpf/sockmesh/${instance}`,
    cgroupRoot: 'sockmesh',
    metricsAddress: { host: '127.0.0.1', port: 9464 },
    apiSocket: `/run/sockmesh/${instance}.sock`,
    reportIntervalMs: 10_000,
    edgeTtlMs: 600_000,
    rttSamples: 'all',
    ringBytes: 4 << 20,
    bpfStats: 'off',
    logLevel: 'info',
  };
}

/** Key of a setting by its file/flag name ("reportInterval" → "reportIntervalMs"). */
const BY_NAME = new Map<string, SettingKey>(SETTING_KEYS.map((k) => [SETTINGS[k].name, k]));

/** A mutable bag for building Partial<AgentSettings> one key at a time. */
type Layer = { -readonly [K in SettingKey]?: AgentSettings[K] };

/**
 * Validates the mesh file's `agent:` section. Paths in the issues are
 * relative to the section ("reportInterval"); values come out keyed like
 * AgentSettings ("reportIntervalMs").
 */
export function readFileLayer(values: unknown): { values: Partial<AgentSettings>; issues: PathIssue[] } {
  const layer: Layer = {};
  const issues: PathIssue[] = [];
  if (values === undefined || values === null) return { values: layer, issues };
  if (typeof values !== 'object' || Array.isArray(values)) {
    return { values: layer, issues: [{ path: [], message: `must be a mapping of agent settings, got ${describe(values)}` }] };
  }
  for (const [name, raw] of Object.entries(values)) {
    const key = BY_NAME.get(name);
    if (key === undefined) {
      const known = SETTING_KEYS.map((k) => SETTINGS[k].name).join(', ');
      issues.push({ path: [name], message: `unknown setting (known: ${known})`, atKey: true });
      continue;
    }
    parseInto(layer, key, raw, (reason) => issues.push({ path: [name], message: reason }));
  }
  return { values: layer, issues };
}

function parseInto<K extends SettingKey>(layer: Layer, key: K, raw: unknown, onError: (reason: string) => void): void {
  const spec: SettingSpec<NonNullable<AgentSettings[K]>> = SETTINGS[key];
  const r = spec.parse(raw);
  if (r.ok) layer[key] = r.value;
  else onError(r.reason);
}

/** The `agent:` section of a mesh file, with a way to find its values in the file. */
export interface FileLayer {
  readonly values: unknown;
  /** Position in the file of a path within the document, e.g. ["agent", "reportInterval"]. */
  readonly source: (path: Path) => SourcePosition;
  /** Where `values` sits in the document; default ["agent"]. */
  readonly at?: Path;
}

export interface SettingsInput {
  /** Keyed by setting name (camelCase); other keys (the CLI's other options) are ignored. */
  readonly flags: Partial<Record<string, string | undefined>>;
  /** Only the SOCKMESH_* names in SETTINGS are read; an empty value counts as unset. */
  readonly env: NodeJS.ProcessEnv;
  readonly file?: FileLayer;
}

export type SettingsResult =
  | { readonly ok: true; readonly settings: AgentSettings }
  | { readonly ok: false; readonly issues: SettingsIssue[] };

/** flags > env > file > defaults, every layer validated, every problem listed. */
export function mergeSettings(input: SettingsInput): SettingsResult {
  const issues: SettingsIssue[] = [];

  const file: Partial<AgentSettings> = {};
  if (input.file) {
    const { source, at = ['agent'] } = input.file;
    const read = readFileLayer(input.file.values);
    Object.assign(file, read.values);
    for (const issue of read.issues) {
      const path = [...at, ...issue.path];
      issues.push({ origin: 'file', ...source(path), path: formatPath(path), message: issue.message });
    }
  }

  const fromStrings = (origin: 'flag' | 'env', lookup: (s: SettingSpec<unknown>) => [string, string | undefined]): Layer => {
    const layer: Layer = {};
    for (const key of SETTING_KEYS) {
      const [name, raw] = lookup(SETTINGS[key]);
      if (raw === undefined || (origin === 'env' && raw === '')) continue;
      parseInto(layer, key, raw, (message) => issues.push({ origin, name, message }));
    }
    return layer;
  };
  const env = fromStrings('env', (s) => [s.env, input.env[s.env]]);
  const flags = fromStrings('flag', (s) => [s.flag, input.flags[s.name]]);

  // The cross-check below runs beside other settings' errors (every problem at once), unless one
  // of the two values it compares is itself in error: it would compare against a default.
  const inError = (key: 'edgeTtlMs' | 'reportIntervalMs'): boolean => issues.some((i) =>
    (i.origin === 'file' ? i.path.endsWith(`.${SETTINGS[key].name}`) : i.name === SETTINGS[key].flag || i.name === SETTINGS[key].env));
  if (inError('edgeTtlMs') || inError('reportIntervalMs')) return { ok: false, issues };
  const chosen: Partial<AgentSettings> = { ...file, ...env, ...flags };
  const defaults = defaultSettings(chosen.instance);
  // Unset, the TTL follows a long report interval instead of refusing it.
  const edgeTtlMs = chosen.edgeTtlMs ?? Math.max(defaults.edgeTtlMs, TTL_INTERVALS * (chosen.reportIntervalMs ?? defaults.reportIntervalMs));
  const settings: AgentSettings = { ...defaults, edgeTtlMs, ...chosen };
  if (settings.edgeTtlMs !== 0 && settings.edgeTtlMs < TTL_INTERVALS * settings.reportIntervalMs) {
    // Blamed where the TTL was set: the value to raise.
    const message = `open connections refresh their edge once per report interval, so edgeTtl must be at least ${TTL_INTERVALS} of them ` +
      `(edgeTtl ${settings.edgeTtlMs} ms, reportInterval ${settings.reportIntervalMs} ms), or off`;
    const spec = SETTINGS.edgeTtlMs;
    if (flags.edgeTtlMs !== undefined) issues.push({ origin: 'flag', name: spec.flag, message });
    else if (env.edgeTtlMs !== undefined) issues.push({ origin: 'env', name: spec.env, message });
    else if (input.file) {
      const path = [...(input.file.at ?? ['agent']), spec.name];
      issues.push({ origin: 'file', ...input.file.source(path), path: formatPath(path), message });
    }
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, settings };
}
