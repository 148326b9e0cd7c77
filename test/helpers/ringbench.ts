/** The ringbench producer (bpf/ringbench.bpf.c) for ring-buffer tests. */
import { BpfObjectSpec, Collection, objectPath } from '../../src/bpf';
import { RingbenchArgs, RingbenchStats } from '../../src/bpf/layouts/ringbench';

export function loadRingbench(ringBytes: number, recordSize = 64): Collection {
  return BpfObjectSpec.open(objectPath('ringbench'))
    .setConstants({ record_size: recordSize })
    .setMaxEntries('records', ringBytes)
    .load();
}

/** test_run ctx of `produce`: `count` records numbered from `firstSeq`. */
export function produceArgs(firstSeq: number, count: number): Buffer {
  return RingbenchArgs.encode({ first_seq: firstSeq, count });
}

/** The producer's own counters, summed over CPUs. */
export function producerTotals(coll: Collection): { produced: number; dropped: number } {
  let produced = 0;
  let dropped = 0;
  for (const slot of coll.map('stats').lookupPerCpu(Buffer.alloc(4))!) {
    const s = RingbenchStats.decode(slot, 0);
    produced += s.produced;
    dropped += s.dropped;
  }
  return { produced, dropped };
}
