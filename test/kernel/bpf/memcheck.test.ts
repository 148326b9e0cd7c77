/**
 * The addon's main paths under valgrind memcheck: no invalid access, no use of
 * uninitialised memory, nothing definitely lost. Known false positives of
 * Node and libbpf under memcheck are suppressed in valgrind/node-libbpf.supp,
 * each with its reason.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../../src/bpf/native';
import { ScratchCgroup } from '../../../src/platform/cgroup';
import { FIXTURES } from '../../helpers/child';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';

test('main addon paths run clean under valgrind memcheck', { timeout: 300_000 }, async (t) => {
  if (!needsKernel(t)) return;
  if (spawnSync('valgrind', ['--version']).status !== 0) {
    if (process.env.CI === 'true') throw new Error('valgrind is not installed (scripts/setup.sh installs it)');
    t.skip('valgrind is not installed');
    return;
  }
  const before = snapshot();
  const cg = ScratchCgroup.create(`sockmesh-test-${process.pid}-memcheck`);
  let r;
  try {
    r = spawnSync('valgrind', [
      '--leak-check=full', '--errors-for-leak-kinds=definite', '--show-leak-kinds=definite', '--error-exitcode=97',
      `--suppressions=${path.join(repoRoot, 'test', 'kernel', 'valgrind', 'node-libbpf.supp')}`,
      process.execPath, '--expose-gc', path.join(FIXTURES, 'main-paths.js'), cg.path,
    ], { encoding: 'utf8', timeout: 280_000 });
  } finally {
    cg.remove();
  }
  const report = r.stderr.split('\n').filter((l) => /ERROR SUMMARY|definitely lost|Invalid|uninitialised|at 0x|by 0x/.test(l)).slice(0, 60).join('\n');
  assert.equal(r.status, 0, `valgrind exit ${r.status}:\n${report}`);
  assert.match(r.stderr, /ERROR SUMMARY: 0 errors/, report);
  assert.match(r.stderr, /definitely lost: 0 bytes/, report);
  const out = JSON.parse(r.stdout.trim()) as { records: number };
  assert.ok(out.records > 0, 'the ring buffer path ran');
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
