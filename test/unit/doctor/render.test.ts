import test from 'node:test';
import assert from 'node:assert/strict';
import type { CheckResult } from '../../../src/doctor/checks';
import { exitCode, render, renderJson, renderTable, summarize } from '../../../src/doctor/render';

const RESULTS: CheckResult[] = [
  { status: 'ok', group: 'system', name: 'kernel', detail: '6.18.0' },
  { status: 'fail', group: 'system', name: 'bpffs', detail: 'not mounted at /sys/fs/bpf',
    fix: 'run `sockmesh doctor --mount-bpffs` or mount -t bpf bpf /sys/fs/bpf' },
  { status: 'warn', group: 'helpers', name: 'helpers SK_MSG', detail: 'unverified: msg_redirect_hash', fix: 'upgrade libbpf' },
  { status: 'skip', group: 'attach', name: 'attach cgroup/connect4', detail: 'no cgroup v2' },
  { status: 'ok', group: 'map-type', name: 'map RINGBUF', detail: 'supported' },
];

function lines(text: string): string[] {
  return text.split('\n');
}

test('table: header and every row share the CHECK / STATUS / DETAIL columns', () => {
  const out = lines(renderTable(RESULTS));
  const header = out[0] ?? '';
  assert.match(header, /^CHECK\s+STATUS\s+DETAIL$/);
  const statusCol = header.indexOf('STATUS');
  const detailCol = header.indexOf('DETAIL');
  // The widest name decides where STATUS starts: two spaces after it.
  assert.equal(statusCol, 'attach cgroup/connect4'.length + 2);
  for (const r of RESULTS) {
    const row = out.find((l) => l.startsWith(`${r.name} `));
    assert.ok(row, `row for ${r.name}`);
    assert.equal(row.slice(0, statusCol).trimEnd(), r.name);
    assert.equal(row.slice(statusCol, detailCol).trimEnd(), { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: 'skip' }[r.status]);
    assert.equal(row.slice(detailCol), r.detail);
  }
});

test('table: a fix line sits right under its row, at the DETAIL column', () => {
  const out = lines(renderTable(RESULTS));
  const detailCol = (out[0] ?? '').indexOf('DETAIL');
  const i = out.findIndex((l) => l.startsWith('bpffs '));
  assert.equal(out[i + 1], `${' '.repeat(detailCol)}fix: run \`sockmesh doctor --mount-bpffs\` or mount -t bpf bpf /sys/fs/bpf`);
  const w = out.findIndex((l) => l.startsWith('helpers SK_MSG '));
  assert.equal(out[w + 1]?.trim(), 'fix: upgrade libbpf');
  // Rows without a fix are followed directly by the next row.
  const k = out.findIndex((l) => l.startsWith('kernel '));
  assert.ok(out[k + 1]?.startsWith('bpffs '));
  assert.equal(out.filter((l) => l.trim().startsWith('fix:')).length, 2);
});

test('table: multi-line details and fixes stay in the DETAIL column', () => {
  const out = lines(renderTable([
    { status: 'fail', group: 'attach', name: 'x', detail: 'first\nsecond', fix: 'do a\ndo b' },
  ]));
  const detailCol = (out[0] ?? '').indexOf('DETAIL');
  assert.equal(detailCol, 15); // CHECK (5) + 2 + STATUS (6) + 2
  const pad = ' '.repeat(detailCol);
  assert.deepEqual(out.slice(1, 5), ['x      FAIL    first', `${pad}second`, `${pad}fix: do a`, `${pad}     do b`]);
});

test('table: closes with a summary line counting each status', () => {
  const out = renderTable(RESULTS);
  assert.ok(out.endsWith('\n\n5 checks: 2 ok, 1 warn, 1 fail, 1 skip\n'), out);
});

test('table: no results still prints the header and a zero summary', () => {
  assert.equal(renderTable([]), 'CHECK  STATUS  DETAIL\n\n0 checks: 0 ok, 0 warn, 0 fail, 0 skip\n');
});

test('json: results as given plus a summary, parseable', () => {
  const parsed = JSON.parse(renderJson(RESULTS)) as { results: unknown[]; summary: Record<string, unknown> };
  assert.deepEqual(parsed.results, RESULTS);
  assert.deepEqual(parsed.summary, { total: 5, ok: 2, warn: 1, fail: 1, skip: 1, passed: false });
  // A result without a fix has no fix key at all (not null, not "").
  assert.ok(!('fix' in (parsed.results[0] as object)));
  assert.equal((parsed.results[1] as { fix: string }).fix, 'run `sockmesh doctor --mount-bpffs` or mount -t bpf bpf /sys/fs/bpf');
});

test('render() dispatches on the format', () => {
  assert.equal(render('json', RESULTS), renderJson(RESULTS));
  assert.equal(render('table', RESULTS), renderTable(RESULTS));
});

test('exit code: 1 only when something failed; warn and skip pass', () => {
  assert.equal(exitCode(RESULTS), 1);
  const noFail = RESULTS.filter((r) => r.status !== 'fail');
  assert.equal(exitCode(noFail), 0);
  assert.equal(summarize(noFail).passed, true);
  assert.equal(exitCode([]), 0);
});
