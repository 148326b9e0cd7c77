import test from 'node:test';
import assert from 'node:assert/strict';
import { BpfObjectSpec, BpfError, VerifierError, objectPath, BpfArgumentError } from '../../../src/bpf';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';

test('a program the verifier refuses surfaces as VerifierError with the log', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const spec = BpfObjectSpec.open(objectPath('bad_verifier'));
  let caught: unknown;
  try {
    spec.load();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof VerifierError, `expected VerifierError, got ${String(caught)}`);
  assert.ok(caught instanceof BpfError);
  assert.equal(caught.name, 'VerifierError');
  assert.equal(caught.program, 'bad_connect4');
  assert.equal(caught.code, 'EACCES');
  assert.match(caught.log, /invalid mem access 'map_value_or_null'/);
  assert.match(caught.log, /processed \d+ insns/, 'the whole log, not a summary');
  assert.match(caught.message, /bad_connect4.*map_value_or_null/);
  // The spec is consumed by a failed load; nothing may stay loaded.
  assert.throws(() => spec.load(), BpfArgumentError);
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a missing object file and a non-BPF file fail with errno and the path', (t) => {
  if (!needsKernel(t)) return;
  assert.throws(() => BpfObjectSpec.open('/nonexistent/x.bpf.o'), (err: unknown) =>
    err instanceof BpfError && err.code === 'ENOENT' && /\/nonexistent\/x\.bpf\.o/.test(err.message));
  assert.throws(() => BpfObjectSpec.open('/etc/hostname'), (err: unknown) =>
    err instanceof BpfError && /\/etc\/hostname/.test(err.message));
});

test('constants are checked by name, size and type before anything is written', (t) => {
  if (!needsKernel(t)) return;
  const spec = BpfObjectSpec.open(objectPath('selftest'));
  try {
    assert.throws(() => spec.setConstants({ trace_port: 70000, nope: 1, trace_tgid: 1.5 }), (err: unknown) => {
      assert.ok(err instanceof BpfArgumentError);
      assert.match(err.message, /trace_port: 70000 does not fit in 2 byte/);
      assert.match(err.message, /nope: no such constant .*has: trace_port, trace_tgid, sockmap_port/);
      assert.match(err.message, /trace_tgid: must be an integer/);
      return true;
    });
    assert.throws(() => spec.setMaxEntries('events', 0), /positive integer/);
    assert.throws(() => spec.only(['missing_prog']), /no program\(s\) missing_prog/);
  } finally {
    spec.close();
    spec.close();
  }
});
