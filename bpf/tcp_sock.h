/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reading TCP sockets, shared by the program families: the sockops context's
 * endpoints, and counters as the application sees them. The kernel's bytes_acked and
 * bytes_received count sequence space: bytes_acked includes the active side's
 * SYN (the passive side's SYN-ACK is accounted before the child socket exists)
 * and our FIN once acked; bytes_received includes the peer's FIN.
 */
#ifndef SOCKMESH_TCP_SOCK_H
#define SOCKMESH_TCP_SOCK_H

#include "common.h"

/* remote_port is network order in the upper half of the field; local_port is host order. */
static __always_inline __u16 sockops_remote_port(struct bpf_sock_ops *skops)
{
	return (__u16)(bpf_ntohl(skops->remote_port) & 0xffff);
}

static __always_inline void sockops_ip6(struct bpf_sock_ops *skops, __u32 saddr[4], __u32 daddr[4])
{
	saddr[0] = skops->local_ip6[0];
	saddr[1] = skops->local_ip6[1];
	saddr[2] = skops->local_ip6[2];
	saddr[3] = skops->local_ip6[3];
	daddr[0] = skops->remote_ip6[0];
	daddr[1] = skops->remote_ip6[1];
	daddr[2] = skops->remote_ip6[2];
	daddr[3] = skops->remote_ip6[3];
}

static __always_inline int fin_sent_state(__u32 state)
{
	return state == BPF_TCP_FIN_WAIT1 || state == BPF_TCP_FIN_WAIT2 ||
	       state == BPF_TCP_CLOSING || state == BPF_TCP_LAST_ACK;
}

/* Payload bytes the peer acknowledged, from the kernel's bytes_acked and
 * snd_una/snd_nxt; state: the state before CLOSE (or now, for an open
 * connection). */
static __always_inline __u64 acked_payload(__u64 acked, __u32 snd_una, __u32 snd_nxt, __u32 state, int active)
{
	if (active && acked)
		acked--;
	if (fin_sent_state(state) && snd_una == snd_nxt && acked)
		acked--;
	return acked;
}

static __always_inline __u64 payload_acked(struct bpf_sock_ops *skops, __u32 old_state, int active)
{
	return acked_payload(skops->bytes_acked, skops->snd_una, skops->snd_nxt, old_state, active);
}

static __always_inline int sock_flag_set(struct tcp_sock *tp, int flag)
{
	return tp && (tp->inet_conn.icsk_inet.sk.__sk_common.skc_flags & (1UL << flag));
}

/* tcp_fin() sets SOCK_DONE when the peer's FIN arrives; nothing else on the
 * way to CLOSE sets it (close() and FIN_WAIT2 timeouts do not). */
static __always_inline int peer_fin_received(struct tcp_sock *tp)
{
	return sock_flag_set(tp, bpf_core_enum_value(enum sock_flags, SOCK_DONE));
}

static __always_inline __u64 received_payload(__u64 rcvd, struct tcp_sock *tp)
{
	if (rcvd && peer_fin_received(tp))
		rcvd--;
	return rcvd;
}

static __always_inline __u64 payload_received(struct bpf_sock_ops *skops, struct tcp_sock *tp)
{
	return received_payload(skops->bytes_received, tp);
}

/* What a record reports for a connection now: payload each way, segments
 * retransmitted. state: before CLOSE, or now for an open connection. */
static __always_inline void payload_totals(struct tcp_sock *tp, __u32 state, int active,
					   __u64 *sent, __u64 *received, __u32 *retrans)
{
	*sent = acked_payload(tp->bytes_acked, tp->snd_una, tp->snd_nxt, state, active);
	*received = received_payload(tp->bytes_received, tp);
	*retrans = tp->total_retrans;
}

static __always_inline struct tcp_sock *sockops_tcp_sock(struct bpf_sock_ops *skops)
{
	struct bpf_sock *bsk = skops->sk;

	return bsk ? bpf_skc_to_tcp_sock(bsk) : NULL;
}

#endif
