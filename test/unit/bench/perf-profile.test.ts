/**
 * bench service --profile: perf's samples of the bottleneck thread, each put
 * in the first part of the mesh's kernel path its stack matches.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { attribute, attributeMachine, parsePerfScript } from '../../../bench/lib/perf-profile';

/** perf script -F comm,tid,ip,sym, as perf prints it: innermost frame first. */
const SCRIPT = `
wrk 100 
\tffffffff8163f000 kmem_cache_alloc_node_noprof+0x28
\tffffffff81aa0000 bpf_map_kzalloc+0x10
\tffffffff81aa1000 bpf_local_storage_update
\tffffffff81aa2000 bpf_sk_storage_get
\tffffffffa0000000 bpf_prog_992398251b00ee0f_mesh_connect4
\tffffffff81bb0000 __cgroup_bpf_run_filter_sock_addr
\tffffffff82000000 tcp_v4_connect

wrk 100 
\tffffffff81aa1000 bpf_local_storage_update
\tffffffff81aa2000 bpf_sk_storage_get
\tffffffffa0001000 bpf_prog_7dcd41bc4252e25f_mesh_sockops
\tffffffff81bb1000 __cgroup_bpf_run_filter_sock_ops
\tffffffff82001000 tcp_init_transfer

wrk 100 
\tffffffffa0001000 bpf_prog_7dcd41bc4252e25f_mesh_sockops
\tffffffff81bb1000 __cgroup_bpf_run_filter_sock_ops
\tffffffff82002000 tcp_call_bpf_3arg
\tffffffff82003000 tcp_set_state
\tffffffff82004000 tcp_done

wrk 100 
\tffffffff81bb1000 __cgroup_bpf_run_filter_sock_ops
\tffffffff82005000 tcp_ack_update_rtt+0x1f

wrk 100 
\tffffffff81bb1000 __cgroup_bpf_run_filter_sock_ops
\tffffffff82006000 tcp_timeout_init

wrk 100 
\tffffffff81cc0000 bpf_local_storage_destroy
\tffffffff81cc1000 bpf_sk_storage_free
\tffffffff81cc2000 __sk_destruct

wrk 100 
\tffffffff82007000 tcp_sendmsg_locked
\tffffffff82008000 tcp_sendmsg

wrk 100 
\tffffffff82009000 epoll_wait

wrk 101 
\tffffffff81bb1000 __cgroup_bpf_run_filter_sock_ops
\tffffffff82006000 tcp_timeout_init

nginx 7 
\tffffffff81cc1000 bpf_sk_storage_free

swapper     0 
\tffffffff821f236b pv_native_safe_halt
`;

test('perf script text parses into samples with their thread and frames, offsets dropped', () => {
  const s = parsePerfScript(SCRIPT);
  assert.equal(s.length, 11);
  assert.deepEqual(s[0], { comm: 'wrk', tid: 100, stack: [
    'kmem_cache_alloc_node_noprof', 'bpf_map_kzalloc', 'bpf_local_storage_update', 'bpf_sk_storage_get',
    'bpf_prog_992398251b00ee0f_mesh_connect4', '__cgroup_bpf_run_filter_sock_addr', 'tcp_v4_connect'] });
  assert.deepEqual(s[3]!.stack, ['__cgroup_bpf_run_filter_sock_ops', 'tcp_ack_update_rtt']);
  assert.deepEqual(s[10], { comm: 'swapper', tid: 0, stack: ['pv_native_safe_halt'] });
});

test('only the busiest thread of the command counts, each sample in the first part its stack matches', () => {
  const a = attribute(parsePerfScript(SCRIPT), 'wrk');
  assert.equal(a.samples, 8, "wrk's thread 100; thread 101 and nginx left out");
  assert.equal(a.mesh, 6, 'sendmsg and epoll_wait are not the mesh');
  const by = Object.fromEntries(a.byCategory.map((c) => [c.name, c.samples]));
  assert.deepEqual(by, {
    storage_create_connect4: 1,
    storage_create_sockops: 1, // not sockops_established: storage first
    storage_free: 1,
    connect4: 0,
    sockops_state: 1, // through tcp_call_bpf_3arg to its caller
    sockops_rtt: 1,
    sockops_established: 0,
    sockops_connect: 0,
    sockops_other: 1,
    other_bpf: 0,
  });
});

test('a command with no sample attributes nothing', () => {
  const a = attribute(parsePerfScript(SCRIPT), 'haproxy');
  assert.equal(a.samples, 0);
  assert.equal(a.mesh, 0);
});

test('machine-wide: every busy sample of every thread, idle left out, the agent\'s threads apart whatever they run', () => {
  const a = attributeMachine(parsePerfScript(SCRIPT), new Set([7]));
  assert.equal(a.samples, 10, 'all but swapper');
  assert.equal(a.agent, 1, 'thread 7 is the agent\'s: its storage free is not counted as the kernel path');
  assert.equal(a.mesh, 7, "wrk's six and thread 101's init callback");
  assert.equal(a.byCategory.find((c) => c.name === 'sockops_other')!.samples, 2);
  assert.equal(a.byCategory.find((c) => c.name === 'storage_free')!.samples, 1);
});
