/**
 * Doctor output: an aligned table for people, JSON for scripts. Pure string
 * building (no I/O, no kernel), so the unit tests see exactly what is printed.
 */
import type { CheckResult, CheckStatus } from './checks';

export const OUTPUT_FORMATS = ['table', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Summary {
  total: number;
  ok: number;
  warn: number;
  fail: number;
  skip: number;
  /** No failures: what the exit code reports. */
  passed: boolean;
}

export function summarize(results: readonly CheckResult[]): Summary {
  const count = (s: CheckStatus): number => results.filter((r) => r.status === s).length;
  const fail = count('fail');
  return { total: results.length, ok: count('ok'), warn: count('warn'), fail, skip: count('skip'), passed: fail === 0 };
}

/** 0 when nothing failed (warnings and skips included), 1 otherwise. */
export function exitCode(results: readonly CheckResult[]): 0 | 1 {
  return summarize(results).passed ? 0 : 1;
}

const STATUS_LABEL: Record<CheckStatus, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: 'skip' };
const HEADERS = { name: 'CHECK', status: 'STATUS', detail: 'DETAIL' } as const;
const GAP = '  ';

/**
 * CHECK / STATUS / DETAIL in columns sized to the widest cell; a result with
 * a fix gets a "fix:" line under its detail (continuation lines indented to
 * match), and a summary line closes the table.
 */
export function renderTable(results: readonly CheckResult[]): string {
  const nameW = Math.max(HEADERS.name.length, ...results.map((r) => r.name.length));
  const statusW = Math.max(HEADERS.status.length, ...results.map((r) => STATUS_LABEL[r.status].length));
  const detailCol = nameW + GAP.length + statusW + GAP.length;
  const indent = ' '.repeat(detailCol);
  const row = (name: string, status: string, detail: string): string =>
    `${name.padEnd(nameW)}${GAP}${status.padEnd(statusW)}${GAP}${detail}`.trimEnd();

  const lines = [row(HEADERS.name, HEADERS.status, HEADERS.detail)];
  for (const r of results) {
    const [first = '', ...rest] = r.detail.split('\n');
    lines.push(row(r.name, STATUS_LABEL[r.status], first));
    for (const l of rest) lines.push(`${indent}${l}`);
    const fix = 'fix' in r ? r.fix : undefined;
    if (fix !== undefined) {
      const [f0 = '', ...fr] = fix.split('\n');
      lines.push(`${indent}fix: ${f0}`);
      for (const l of fr) lines.push(`${indent}     ${l}`);
    }
  }
  const s = summarize(results);
  lines.push('', `${s.total} checks: ${s.ok} ok, ${s.warn} warn, ${s.fail} fail, ${s.skip} skip`);
  return `${lines.join('\n')}\n`;
}

export interface JsonReport {
  results: CheckResult[];
  summary: Summary;
}

/** { results: [...], summary: {...} }, every result with status, group, name, detail and fix when it has one. */
export function renderJson(results: readonly CheckResult[]): string {
  const report: JsonReport = { results: [...results], summary: summarize(results) };
  return `${JSON.stringify(report, null, 2)}\n`;
}

export function render(format: OutputFormat, results: readonly CheckResult[]): string {
  switch (format) {
    case 'table': return renderTable(results);
    case 'json': return renderJson(results);
  }
}
