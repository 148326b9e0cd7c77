/**
 * rttSamples: with a callback per RTT sample the sockops program runs for
 * every ACK that carries one; without, it does not, and the records still
 * carry the socket's SRTT (min = last = max: the one value read at close).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { Program, RingBufferReader, RunTimeStats, programCosts, costDelta } from '../../../src/bpf';
import { decodeRecord, ConnectionRecord } from '../../../src/telemetry/record';
import { runInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { meshEnv } from '../../helpers/mesh';
import { waitFor } from '../../helpers/wait';

const CONNS = 8;
const BYTES = 256 * 1024; // each way: many segments, many ACKs with RTT samples

async function measure(cleanup: Cleanup, tag: string, trackRtt: boolean): Promise<{ runsPerConn: number; records: ConnectionRecord[] }> {
  const env = meshEnv(cleanup, tag, 10_000, { trackRtt });
  const records: ConnectionRecord[] = [];
  cleanup.add(`reader ${tag}`, new RingBufferReader(env.dp.maps.events, (b, o, l) => records.push(decodeRecord(b, o, l)), { intervalMs: 10 }), (r) => r.close());
  const progId = env.dp.links.get('sockops')!.info().progId!;
  const prog = cleanup.add(`sockops ${tag}`, Program.fromId(progId), (p) => p.close());
  const c0 = programCosts([prog]);
  await runInCgroup(env.cg.path, 'tcp-peer', [String(CONNS), String(BYTES), String(BYTES)], 30_000, env.ns.prefix());
  await waitFor(() => records.filter((r) => r.kind === 'close').length >= 2 * CONNS, `${2 * CONNS} close records`);
  const runs = costDelta(programCosts([prog]), c0)[0]!.runs;
  return { runsPerConn: runs / CONNS, records: records.filter((r) => r.kind === 'close') };
}

test('rttSamples none: no sockops run per RTT sample, SRTT still reported at close', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    cleanup.add('run-time stats', RunTimeStats.enable(), (s) => s.close());
    const all = await measure(cleanup, 'rtt-all', true);
    const none = await measure(cleanup, 'rtt-none', false);
    t.diagnostic(`sockops runs per connection (both sides): all ${all.runsPerConn.toFixed(1)}, none ${none.runsPerConn.toFixed(1)}`);
    // Each side of each connection acknowledges 256 KiB: far more than a few RTT samples.
    assert.ok(all.runsPerConn - none.runsPerConn >= 10, `RTT callbacks: ${all.runsPerConn} vs ${none.runsPerConn} runs per connection`);
    for (const r of all.records) assert.ok(r.srttUs.min > 0 && r.srttUs.min <= r.srttUs.last && r.srttUs.last <= r.srttUs.max, JSON.stringify(r.srttUs));
    for (const r of none.records) {
      assert.ok(r.srttUs.last > 0, `SRTT read at close: ${JSON.stringify(r.srttUs)}`);
      assert.equal(r.srttUs.min, r.srttUs.last);
      assert.equal(r.srttUs.max, r.srttUs.last);
      assert.equal(r.bytesSent, BYTES, 'the rest of the record is unchanged');
    }
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
