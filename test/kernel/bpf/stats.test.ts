import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { BpfObjectSpec, objectPath, Program, RunTimeStats, programCosts, costDelta } from '../../../src/bpf';
import { RingbenchArgs } from '../../../src/bpf/layouts/ringbench';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';

function sysctlStatsOn(): boolean {
  return fs.readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim() !== '0';
}

test('run-time stats count every run while the stats fd is open, and stop when it closes', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const coll = BpfObjectSpec.open(objectPath('ringbench')).setConstants({ record_size: 32 }).load();
  const stats = RunTimeStats.enable();
  let byId: Program | undefined;
  try {
    const prog = coll.program('produce');
    // Re-opened by id: the same kernel program, so the same counters.
    byId = Program.fromId(prog.info().id);
    assert.equal(byId.info().tag, prog.info().tag);
    assert.equal(byId.name, prog.name);

    const c0 = programCosts([prog, byId]);
    for (let i = 0; i < 5; i++) prog.testRun({ ctx: RingbenchArgs.encode({ first_seq: i, count: 1 }) });
    const d = costDelta(programCosts([prog, byId]), c0);
    assert.equal(d[0]!.runs, 5);
    assert.equal(d[1]!.runs, 5, 'counters read through the id handle');
    assert.ok(d[0]!.ns > 0, `run time ${d[0]!.ns} ns`);

    stats.close();
    stats.close(); // idempotent
    if (sysctlStatsOn()) {
      t.diagnostic('kernel.bpf_stats_enabled is on machine-wide: not checking that counting stops');
    } else {
      const c1 = programCosts([prog]);
      prog.testRun({ ctx: RingbenchArgs.encode({ first_seq: 9, count: 1 }) });
      assert.equal(costDelta(programCosts([prog]), c1)[0]!.runs, 0, 'no counting once the stats fd is closed');
    }
  } finally {
    byId?.close();
    stats.close();
    coll.close();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('Program.fromId rejects ids that are not u32 and names a missing one', (t) => {
  if (!needsKernel(t)) return;
  assert.throws(() => Program.fromId(0), /positive u32/);
  assert.throws(() => Program.fromId(1.5), /positive u32/);
  assert.throws(() => Program.fromId(0xfffffff0), (err: Error & { code?: string }) => /open program by id/.test(err.message) && err.code === 'ENOENT');
});
