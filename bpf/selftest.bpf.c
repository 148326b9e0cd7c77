// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Self-test family: one program per hook kind the agent uses (cgroup connect4,
 * sockops, tp_btf, raw_tp, sk_msg), each doing the smallest real work that
 * proves the hook runs and reports correctly. Used by `sockmesh doctor` and the
 * kernel tests; never attached by the agent itself.
 */
#include "common.h"
#include "selftest.h"
#include "tcp_sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

EXPORT_STRUCT(selftest_conn_event);
EXPORT_STRUCT(selftest_connect_dst);

/* Tunables, set from user space before load. */
const volatile __u16 trace_port = 0;   /* tp_btf counts state changes on this port */
const volatile __u32 trace_tgid = 0;   /* raw_tp counts syscalls of this process */
const volatile __u16 sockmap_port = 0; /* sockops enrolls sockets on this port; 0: none */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SELFTEST_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct selftest_connect_dst);
} connect_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} sock_hash SEC(".maps");

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline int record_connect(struct bpf_sock_addr *ctx)
{
	struct selftest_connect_dst dst = {
		.daddr = ctx->user_ip4,
		.dport = bpf_ntohs((__u16)ctx->user_port),
	};
	__u64 cookie = bpf_get_socket_cookie(ctx);

	count(SELFTEST_CONNECT4, 1);
	return bpf_map_update_elem(&connect_dst, &cookie, &dst, BPF_ANY);
}

SEC("cgroup/connect4")
int selftest_connect4(struct bpf_sock_addr *ctx)
{
	record_connect(ctx);
	return 1; /* allow: the self-test never changes where traffic goes */
}

static __always_inline int emit_close(struct bpf_sock_ops *skops, __u32 old_state)
{
	struct selftest_conn_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(SELFTEST_RB_DROPS, 1);
		return -ENOSPC;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->cookie = bpf_get_socket_cookie(skops);
	e->bytes_received = payload_received(skops, sockops_tcp_sock(skops));
	e->family = skops->family;
	if (skops->family == AF_INET) {
		e->saddr[0] = skops->local_ip4;
		e->daddr[0] = skops->remote_ip4;
	} else {
		sockops_ip6(skops, e->saddr, e->daddr);
	}
	e->sport = (__u16)skops->local_port;
	e->dport = sockops_remote_port(skops);
	/* Only an active socket enabled STATE_CB from ACTIVE_ESTABLISHED with this
	 * flag bit set; see on_established. */
	e->active = (skops->bpf_sock_ops_cb_flags & BPF_SOCK_OPS_RTT_CB_FLAG) ? 1 : 0;
	e->bytes_acked = payload_acked(skops, old_state, e->active);
	e->old_state = old_state;
	bpf_ringbuf_submit(e, 0);
	count(SELFTEST_CLOSED, 1);
	return 0;
}

static __always_inline int on_established(struct bpf_sock_ops *skops, int active)
{
	__u64 key;

	count(SELFTEST_ESTABLISHED, 1);
	/* RTT_CB doubles as the "active" marker so the close record needs no storage. */
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG |
					 (active ? BPF_SOCK_OPS_RTT_CB_FLAG : 0));
	if (sockmap_port && (skops->local_port == sockmap_port || sockops_remote_port(skops) == sockmap_port)) {
		key = bpf_get_socket_cookie(skops);
		return bpf_sock_hash_update(skops, &sock_hash, &key, BPF_NOEXIST);
	}
	return 0;
}

SEC("sockops")
int selftest_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		on_established(skops, 1);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		on_established(skops, 0);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE)
			emit_close(skops, skops->args[0]);
		break;
	}
	return 1;
}

SEC("sk_msg")
int selftest_sk_msg(struct sk_msg_md *msg)
{
	count(SELFTEST_SK_MSG_BYTES, msg->size);
	return SK_PASS;
}

/* Attach-only proof for sk_skb verdicts; no test enrolls sockets under it. */
SEC("sk_skb/stream_verdict")
int selftest_sk_skb(struct __sk_buff *skb)
{
	return SK_PASS;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(selftest_state, const struct sock *sk, int oldstate, int newstate)
{
	__u16 sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));

	if (trace_port && (sport == trace_port || dport == trace_port))
		count(SELFTEST_TP_STATE, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int selftest_sys_enter(void *ctx)
{
	if (trace_tgid && (bpf_get_current_pid_tgid() >> 32) == trace_tgid)
		count(SELFTEST_RAW_SYSCALLS, 1);
	return 0;
}
