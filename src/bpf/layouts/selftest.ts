/** Mirror of bpf/selftest.h. Checked against BTF by test/kernel/bpf/layout.test.ts. */
import { struct } from '../layout';

export const SelftestConnEvent = struct('selftest_conn_event', {
  cookie: 'u64',
  bytes_acked: 'u64n',
  bytes_received: 'u64n',
  saddr: ['u32', 4],
  daddr: ['u32', 4],
  sport: 'u16',
  dport: 'u16',
  family: 'u16',
  active: 'u8',
  _pad0: 'u8',
  old_state: 'u32',
  _pad1: 'u32',
});

export const SelftestConnectDst = struct('selftest_connect_dst', {
  daddr: 'u32',
  dport: 'u16',
  _pad0: 'u16',
});

/** enum selftest_counter: indices of the `counters` array. */
export const SelftestCounter = {
  CONNECT4: 0,
  ESTABLISHED: 1,
  CLOSED: 2,
  RB_DROPS: 3,
  TP_STATE: 4,
  RAW_SYSCALLS: 5,
  SK_MSG_BYTES: 6,
} as const;
export const SELFTEST_NR_COUNTERS = 8;
