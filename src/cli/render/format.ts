/**
 * Humanized values for table/wide output. json/yaml keep the raw numbers
 * (ns, bytes, ids), so scripts never parse these strings.
 */
import os from 'node:os';

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** 512B, 1.5KiB, 12MiB: one decimal below 10, binary units like the kernel counts. */
export function humanBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  let v = n;
  let unit: string = BYTE_UNITS[0];
  for (const u of BYTE_UNITS) {
    v /= 1024;
    unit = u;
    if (v < 1024) break;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${unit}`;
}

function scaled(v: number, unit: string): string {
  return `${v < 10 ? (Math.round(v * 10) / 10).toString() : Math.round(v)}${unit}`;
}

/**
 * A duration in ns, at the precision a person reads: 850ns, 12µs, 1.5ms,
 * 2.3s, then kubectl-style 4m5s, 3h12m, 2d3h.
 */
export function humanDuration(ns: number): string {
  if (ns < 1_000) return `${Math.round(ns)}ns`;
  if (ns < 1_000_000) return scaled(ns / 1_000, 'µs');
  if (ns < 1_000_000_000) return scaled(ns / 1_000_000, 'ms');
  const s = ns / 1_000_000_000;
  if (s < 60) return scaled(s, 's');
  const total = Math.floor(s);
  const d = Math.floor(total / 86_400);
  const h = Math.floor((total % 86_400) / 3_600);
  const m = Math.floor((total % 3_600) / 60);
  const sec = total % 60;
  if (d > 0) return h > 0 ? `${d}d${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h${m}m` : `${h}h`;
  return sec > 0 ? `${m}m${sec}s` : `${m}m`;
}

/** Microseconds (connect time, srtt) the same way; 0 means "not measured". */
export function humanMicros(us: number): string {
  return us === 0 ? '-' : humanDuration(us * 1_000);
}

/** Time since an RFC 3339 timestamp, e.g. "5m"; the timestamp itself if it does not parse. */
export function humanAge(since: string, now: number): string {
  const t = Date.parse(since);
  if (Number.isNaN(t)) return since;
  return humanDuration(Math.max(0, now - t) * 1_000_000);
}

/** 0..1 as a percentage with one decimal. */
export function humanShare(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** ECONNREFUSED for 111; the kernel reports sk_err positive, a negative one is read the same. */
export function errnoName(err: number): string {
  const n = Math.abs(err);
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

/** host:port, with IPv6 in brackets so the port stays unambiguous. */
export function hostPort(a: { address: string; port: number }): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
