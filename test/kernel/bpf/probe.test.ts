import test from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../../src/bpf';
import { needsKernel } from '../../helpers/kernel';

test('the helper probe tells allowed from refused helpers on this kernel', (t) => {
  if (!needsKernel(t)) return;
  const n = native();
  const { progType: P, helper: H, attachType: A } = n.constants;
  const probe = (p: string, h: string, a = 0): boolean => n.probeHelper(P[p]!, H[h]!, a);
  // libbpf 1.1's own probe says yes to all of these; the kernel refuses the "false" ones.
  assert.equal(probe('SOCKET_FILTER', 'sock_ops_cb_flags_set'), false);
  assert.equal(probe('SOCKET_FILTER', 'sock_hash_update'), false);
  assert.equal(probe('SOCK_OPS', 'msg_redirect_hash'), false);
  assert.equal(probe('SOCKET_FILTER', 'map_lookup_elem'), true);
  assert.equal(probe('SK_MSG', 'msg_redirect_hash'), true);
  assert.equal(probe('SOCK_OPS', 'ringbuf_reserve'), true);
  assert.equal(probe('CGROUP_SOCK_ADDR', 'set_retval', A.CGROUP_INET4_CONNECT), true);
});

test('program and map type probes see what this kernel has', (t) => {
  if (!needsKernel(t)) return;
  const n = native();
  const { progType: P, mapType: M } = n.constants;
  for (const p of ['CGROUP_SOCK_ADDR', 'SOCK_OPS', 'SK_MSG', 'SYSCALL', 'SCHED_CLS']) assert.equal(n.probeProgType(P[p]!), true, p);
  for (const m of ['RINGBUF', 'SOCKHASH', 'SK_STORAGE', 'LRU_HASH']) assert.equal(n.probeMapType(M[m]!), true, m);
});
