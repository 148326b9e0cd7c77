// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Carries open connections' socket state from a `sock_info` map of an
 * earlier layout into the current one, when an upgrade redefines it
 * (src/dataplane/upgrade.ts plans it, src/dataplane/dataplane.ts runs it
 * once every hook runs the new programs). The iterator walks the old map;
 * `sock_info` here is the new map, reused by fd. Each migrated socket writes
 * one byte to the iterator's output: the reader's byte count is the count.
 */
#include "common.h"
#include "mesh.h"
#include "mesh_sock.h"
#include "mesh_legacy.h"
#include "tcp_sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* For the agent's layout mirror of what an older agent may leave in the ring. */
EXPORT_STRUCT(mesh_conn_event_v1);

/* The new map: the dataplane reuses it by fd. */
MESH_SOCK_STORAGE(sock_info, struct mesh_sock);

/*
 * v1 kept no per-socket record totals: its agent did, in memory. A
 * connection v1 already reported (an interim record moved last_report_ns)
 * continues from its totals now - the bytes since its last report are not
 * counted, rather than all of them twice; one never reported stays unreported,
 * so its first record carries everything.
 */
static __always_inline void from_v1(struct mesh_sock *st, const struct mesh_sock_v1 *old, struct sock *sk)
{
	struct tcp_sock *tp;
	__u32 state;

	__builtin_memcpy(st->vip, old->vip, sizeof(st->vip));
	st->vport = old->vport;
	st->svc_id = old->svc_id;
	st->backend_id = old->backend_id;
	st->flags = old->flags & SOCK_KNOWN;
	st->srtt_min_us = old->srtt_min_us;
	st->srtt_max_us = old->srtt_max_us;
	st->connect_us = old->connect_us;
	st->start_ns = old->start_ns;
	st->last_report_ns = old->last_report_ns;
	if (!(old->flags & SOCK_TRACKED) || old->last_report_ns == old->start_ns)
		return;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return;
	state = sk->__sk_common.skc_state;
	payload_totals(tp, state, !!(old->flags & SOCK_CLIENT), &st->reported_sent, &st->reported_received, &st->reported_retrans);
	st->reports = 1;
}

/*
 * A newer release's socket state, met when an agent is rolled back onto its
 * pins: that layout starts with ours (fields are only appended, mesh_sock.h),
 * so the part we know is taken as it is - all but the lock, which the new
 * storage starts unlocked - and only the flags we know. Reads the bytes of
 * the old value before the lock: the kernel attaches this iterator only to a
 * map whose values are at least that long.
 */
static __always_inline void from_newer(struct mesh_sock *st, const struct mesh_sock *old)
{
	__builtin_memcpy(st, old, offsetof(struct mesh_sock, lock));
	st->flags &= SOCK_KNOWN;
}

/*
 * The new map's state for a socket the iterator is at, made for it; NULL if
 * the new programs already track the socket (one made since the swap).
 */
static __always_inline struct mesh_sock *carry_to(struct sock *sk)
{
	if (bpf_sk_storage_get(&sock_info, sk, 0, 0))
		return NULL;
	return bpf_sk_storage_get(&sock_info, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
}

/* One byte to the reader per socket carried over: its byte count is the count. */
static __always_inline int carried(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	bpf_seq_write(ctx->meta->seq, "m", 1);
	return 0;
}

SEC("iter/bpf_sk_storage_map")
int mesh_migrate_sock_newer(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	const struct mesh_sock *old = ctx->value;
	struct sock *sk = ctx->sk;
	struct mesh_sock *st;

	if (!sk || !old || !(st = carry_to(sk)))
		return 0;
	from_newer(st, old);
	return carried(ctx);
}

SEC("iter/bpf_sk_storage_map")
int mesh_migrate_sock_v1(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	const struct mesh_sock_v1 *old = ctx->value;
	struct sock *sk = ctx->sk;
	struct mesh_sock *st;

	if (!sk || !old || !(st = carry_to(sk)))
		return 0;
	from_v1(st, old, sk);
	return carried(ctx);
}
