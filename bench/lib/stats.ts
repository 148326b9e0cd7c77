/**
 * Small helpers shared by the benches: summary statistics over repeated runs
 * and plain-text tables. No bench-specific knowledge here.
 */

/** Sorted copy; NaN is dropped. */
function sorted(xs: readonly number[]): number[] {
  return xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
}

/** Median (mean of the middle two for an even count); NaN for no values. */
export function median(xs: readonly number[]): number {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Percentile p in [0, 100], linear interpolation between closest ranks; NaN for no values. */
export function percentile(xs: readonly number[], p: number): number {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (rank - lo);
}

export function mean(xs: readonly number[]): number {
  const s = sorted(xs);
  return s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
}

export function min(xs: readonly number[]): number {
  const s = sorted(xs);
  return s.length ? (s[0] as number) : NaN;
}

export function max(xs: readonly number[]): number {
  const s = sorted(xs);
  return s.length ? (s[s.length - 1] as number) : NaN;
}

/**
 * A distribution-free confidence interval for the median: the order
 * statistics [x(k), x(n+1-k)] with the largest k whose coverage,
 * 1 - 2 P(Binomial(n, 1/2) < k), is still at least `confidence` (or
 * [min, max] when even that falls short, as for fewer than 6 values at 95%).
 * Assumes only independent runs, not a shape of their distribution: what
 * interleaved bench rounds on a noisy machine give. NaN bounds for no values.
 */
export function medianInterval(xs: readonly number[], confidence = 0.95): { lo: number; hi: number; coverage: number } {
  const s = sorted(xs);
  const n = s.length;
  if (n === 0) return { lo: NaN, hi: NaN, coverage: NaN };
  // below[k] = P(Binomial(n, 1/2) < k)
  const below: number[] = [0];
  let term = 0.5 ** n;
  for (let i = 0; i < n; i++) {
    below.push((below[i] as number) + term);
    term = (term * (n - i)) / (i + 1);
  }
  let k = 1;
  while (k + 1 <= (n + 1) / 2 && 1 - 2 * (below[k + 1] as number) >= confidence) k++;
  return { lo: s[k - 1] as number, hi: s[n - k] as number, coverage: 1 - 2 * (below[k] as number) };
}

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  /** (max - min) / median: the run-to-run spread, as a fraction. */
  spread: number;
}

export function summarize(xs: readonly number[]): Summary {
  const m = median(xs);
  const lo = min(xs);
  const hi = max(xs);
  return { n: sorted(xs).length, median: m, min: lo, max: hi, spread: m ? (hi - lo) / m : NaN };
}

/** Rounds to `digits` significant digits, for JSON output. NaN/Infinity become null. */
export function sig(x: number, digits = 4): number | null {
  if (!Number.isFinite(x)) return null;
  if (x === 0) return 0;
  return Number(x.toPrecision(digits));
}

/** 1234567 -> "1.23M"; 0.5 -> "0.5". */
export function si(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k'], [1, '']];
  // Pick the unit after rounding, so 999999 prints as 1M, not 1000k.
  for (const [v, u] of units) if (Number(a.toPrecision(digits)) >= v) return `${Number((x / v).toPrecision(digits))}${u}`;
  return `${Number(x.toPrecision(digits))}`;
}

/** 16777216 -> "16MiB": byte counts in binary units. */
export function bytes(n: number, digits = 3): string {
  if (!Number.isFinite(n)) return '-';
  const units: [number, string][] = [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
  for (const [v, u] of units) if (Math.abs(n) >= v) return `${Number((n / v).toPrecision(digits))}${u}`;
  return `${n}B`;
}

/** "12.3M (11.0-13.1)": median and range of a summary, in SI units. */
export function siRange(s: Summary, digits = 3): string {
  if (s.n === 0) return '-';
  if (s.n === 1) return si(s.median, digits);
  return `${si(s.median, digits)} (${si(s.min, 2)}-${si(s.max, 2)})`;
}

/** 0.4567 -> "0.457x" (ratios); NaN -> "-". */
export function ratio(x: number, digits = 3): string {
  return Number.isFinite(x) ? `${Number(x.toPrecision(digits))}x` : '-';
}

/** Nanoseconds as "850ns", "12.5us", "3.2ms", "1.5s". */
export function duration(ns: number, digits = 3): string {
  if (!Number.isFinite(ns)) return '-';
  const a = Math.abs(ns);
  if (a >= 1e9) return `${Number((ns / 1e9).toPrecision(digits))}s`;
  if (a >= 1e6) return `${Number((ns / 1e6).toPrecision(digits))}ms`;
  if (a >= 1e3) return `${Number((ns / 1e3).toPrecision(digits))}us`;
  return `${Number(ns.toPrecision(digits))}ns`;
}

export type Align = 'left' | 'right';

export interface Column {
  header: string;
  /** Default: right for cells that look numeric, left otherwise. */
  align?: Align;
}

const NUMERIC = /^[-+]?[\d.]+([eE][-+]?\d+)?[a-zA-Z%]*( \(.*\))?$/;

/**
 * A plain-text table: header, a rule, one line per row. Cells are strings
 * (format numbers first); missing cells print empty.
 */
export function formatTable(columns: readonly (Column | string)[], rows: readonly (readonly string[])[]): string {
  const cols: Column[] = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  const alignOf = (i: number): Align => {
    const c = cols[i] as Column;
    if (c.align) return c.align;
    const cells = rows.map((r) => r[i] ?? '').filter((x) => x !== '' && x !== '-');
    return cells.length > 0 && cells.every((x) => NUMERIC.test(x)) ? 'right' : 'left';
  };
  const aligns = cols.map((_, i) => alignOf(i));
  const pad = (s: string, i: number): string =>
    aligns[i] === 'right' ? s.padStart(widths[i] as number) : s.padEnd(widths[i] as number);
  const line = (cells: readonly string[]): string => cols.map((_, i) => pad(cells[i] ?? '', i)).join('  ').trimEnd();
  return [line(cols.map((c) => c.header)), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Prints formatTable(...) with an optional title line. */
export function printTable(title: string | undefined, columns: readonly (Column | string)[], rows: readonly (readonly string[])[], out: NodeJS.WritableStream = process.stdout): void {
  out.write(`${title ? `${title}\n` : ''}${formatTable(columns, rows)}\n`);
}
