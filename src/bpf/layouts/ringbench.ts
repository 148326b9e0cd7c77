/** Mirror of bpf/ringbench.h. Checked against BTF by test/kernel/bpf/layout.test.ts. */
import { struct } from '../layout';

export const RingbenchRecord = struct('ringbench_record', {
  seq: 'u64n',
  ts_ns: 'u64n',
  size: 'u32',
  check: 'u32',
});

export const RingbenchArgs = struct('ringbench_args', {
  first_seq: 'u64n',
  count: 'u32',
  _pad0: 'u32',
});

export const RingbenchStats = struct('ringbench_stats', {
  produced: 'u64n',
  dropped: 'u64n',
});

export const RINGBENCH_MAX_RECORD = 256;
