/**
 * doctor's row for the machine-wide BPF run-time stats switch: left on, it
 * taxes every program of the node, so it warns with the way back.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { checkBpfStatsSysctl } from '../../../src/doctor/checks';

test('kernel.bpf_stats_enabled: 0 is ok, 1 warns with the fix, unreadable is skipped with the reason', () => {
  assert.equal(checkBpfStatsSysctl(() => '0\n').status, 'ok');
  const on = checkBpfStatsSysctl(() => '1\n');
  assert.equal(on.status, 'warn');
  assert.match(on.detail, /every BPF program on this node reads the clock twice per run/);
  assert.ok(on.status === 'warn' && on.fix && /sysctl -w kernel\.bpf_stats_enabled=0/.test(on.fix), 'says how to turn it off');
  const gone = checkBpfStatsSysctl(() => { throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }); });
  assert.equal(gone.status, 'skip');
  assert.match(gone.detail, /cannot read kernel\.bpf_stats_enabled: .*ENOENT/);
});
