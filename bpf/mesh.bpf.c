// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockmesh's data path: service load balancing at connect/sendmsg time and
 * per-connection TCP telemetry, for every socket of the cgroup tree the agent
 * attaches to.
 *
 *  connect4/6, sendmsg4/6   VIP:port -> backend, chosen by weighted slots
 *  recvmsg4/6, getpeername  the peer appears as the VIP again
 *  sockops                  connect latency, SRTT, bytes, retransmits, close
 *                           cause: one record per connection, interim records
 *                           for long-lived ones
 */
#include "common.h"
#include "mesh.h"
#include "mesh_sock.h"
#include "tcp_sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

EXPORT_STRUCT(mesh_conn_event);

#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif
#ifndef EHOSTUNREACH
#define EHOSTUNREACH 113
#endif
#ifndef ECONNRESET
#define ECONNRESET 104
#endif
#ifndef EPIPE
#define EPIPE 32
#endif
#ifndef ETIMEDOUT
#define ETIMEDOUT 110
#endif
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

/* Tunables, set by the agent before load. */
const volatile __u64 report_interval_ns = 10ULL * 1000 * 1000 * 1000;
const volatile __u64 rb_flags = 0;    /* BPF_RB_NO_WAKEUP: the agent drains on a timer */
const volatile __u64 wake_bytes = 0;  /* ...and is woken anyway once this much waits (0: never) */
const volatile __u8 track_rtt = 1;    /* RTT_CB on every sample: SRTT min/max */

/* Capacity of the backend slot table: every weighted slot of every live
 * generation. An object built with another value redefines the map, which an
 * agent upgrade copies over (src/dataplane/upgrade.ts). */
#ifndef MESH_SLOT_TABLE_SIZE
#define MESH_SLOT_TABLE_SIZE 262144
#endif

/* No preallocation: an update replaces the element and the old one is freed
 * after an RCU grace period, so a reader never sees a half-copied value. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct mesh_svc_key);
	__type(value, struct mesh_svc);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MESH_SLOT_TABLE_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct mesh_slot_key);
	__type(value, struct mesh_backend);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536 * MESH_V_NR);
	__type(key, struct mesh_verdict_key);
	__type(value, __u64);
} svc_verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct mesh_udp_rev_key);
	__type(value, struct mesh_udp_rev);
} udp_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MESH_C_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

MESH_SOCK_STORAGE(sock_info, struct mesh_sock);

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

static __always_inline void count_verdict(__u32 svc, __u32 verdict)
{
	struct mesh_verdict_key k = { .svc = svc, .verdict = verdict };
	__u64 one = 1, *v = bpf_map_lookup_elem(&svc_verdicts, &k);

	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&svc_verdicts, &k, &one, BPF_NOEXIST);
}

static __always_inline void v4mapped(__u32 out[4], __u32 ip4)
{
	out[0] = 0;
	out[1] = 0;
	out[2] = bpf_htonl(0xffff);
	out[3] = ip4;
}

static __always_inline int is_v4mapped(const __u32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff);
}

/*
 * Picks a live backend of the service at key. Returns -ENOENT when key is no
 * service (traffic passes untouched), else a verdict. Two tries: a slot can
 * vanish only if the agent deleted a generation right after flipping it.
 */
static __always_inline int pick_backend(const struct mesh_svc_key *key, __u32 *svc_id,
					struct mesh_backend *out)
{
	struct mesh_slot_key sk;
	struct mesh_backend *be;
	struct mesh_svc *svc;
	int i;

	for (i = 0; i < 2; i++) {
		svc = bpf_map_lookup_elem(&services, key);
		if (!svc)
			return -ENOENT;
		*svc_id = svc->id;
		if (!svc->slots)
			return MESH_V_NO_BACKEND;
		sk.svc = svc->id;
		sk.gen = svc->gen;
		sk.slot = bpf_get_prandom_u32() % svc->slots;
		be = bpf_map_lookup_elem(&slots, &sk);
		if (be) {
			__builtin_memcpy(out, be, sizeof(*out));
			return MESH_V_REWRITTEN;
		}
	}
	return MESH_V_STALE;
}

static __always_inline void record_refused(struct bpf_sock_addr *ctx, const struct mesh_svc_key *key,
					   __u32 svc_id, int err);

/* Fails the connect (or sendmsg) with an errno the caller can act on, counted
 * per service; a refused TCP connect is also a failed connection of the
 * client's edge, like one a backend refused. */
static __always_inline int refuse(struct bpf_sock_addr *ctx, const struct mesh_svc_key *key, __u32 svc_id,
				  int verdict)
{
	int err = verdict == MESH_V_FAMILY ? EHOSTUNREACH : ECONNREFUSED;

	count_verdict(svc_id, verdict);
	record_refused(ctx, key, svc_id, err);
	bpf_set_retval(-err);
	return 0;
}

/* Remembers the original destination on the socket itself. */
static __always_inline void remember(struct bpf_sock *sk, const struct mesh_svc_key *key, __u32 svc_id,
				     const struct mesh_backend *be)
{
	struct mesh_sock *st = bpf_sk_storage_get(&sock_info, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!st) {
		count(MESH_C_STORAGE_FAILED);
		return;
	}
	__builtin_memcpy(st->vip, key->addr, sizeof(st->vip));
	st->vport = key->port;
	st->svc_id = svc_id;
	st->backend_id = be->id;
	st->flags |= SOCK_SERVICE;
}

static __always_inline void remember_udp(__u64 cookie, const struct mesh_svc_key *key,
					 const struct mesh_backend *be)
{
	struct mesh_udp_rev_key rk = { .cookie = cookie, .port = be->port };
	struct mesh_udp_rev rv = { .vport = key->port };

	__builtin_memcpy(rk.addr, be->addr, sizeof(rk.addr));
	__builtin_memcpy(rv.vip, key->addr, sizeof(rv.vip));
	if (bpf_map_update_elem(&udp_rev, &rk, &rv, BPF_ANY))
		count(MESH_C_UDP_REV_FAILED);
}

/* Writes a 16-byte address (IPv4-mapped in the v4 hooks) and a port into
 * the hook's context. v6 is a constant at every call: the other branch is
 * compiled out, so v4 programs never touch user_ip6. */
static __always_inline void set_user_addr(struct bpf_sock_addr *ctx, const __u32 addr[4], __u16 port, int v6)
{
	if (v6) {
		ctx->user_ip6[0] = addr[0];
		ctx->user_ip6[1] = addr[1];
		ctx->user_ip6[2] = addr[2];
		ctx->user_ip6[3] = addr[3];
	} else {
		ctx->user_ip4 = addr[3];
	}
	ctx->user_port = bpf_htons(port);
}

/*
 * connect4/6 (TCP and UDP) and sendmsg4/6 (unconnected UDP). In the v6 hooks
 * a v4-mapped VIP (dual-stack socket) goes to an IPv4 backend, written back
 * v4-mapped, and a v6 VIP to an IPv6 backend; a v4 hook needs an IPv4 one.
 */
static __always_inline int translate(struct bpf_sock_addr *ctx, int v6)
{
	struct mesh_svc_key key = { .port = bpf_ntohs((__u16)ctx->user_port), .proto = (__u8)ctx->protocol };
	struct mesh_backend be;
	__u32 svc_id = 0;
	int v;

	if (v6) {
		key.addr[0] = ctx->user_ip6[0];
		key.addr[1] = ctx->user_ip6[1];
		key.addr[2] = ctx->user_ip6[2];
		key.addr[3] = ctx->user_ip6[3];
	} else {
		v4mapped(key.addr, ctx->user_ip4);
	}
	v = pick_backend(&key, &svc_id, &be);
	if (v == -ENOENT)
		return 1;
	if (v != MESH_V_REWRITTEN)
		return refuse(ctx, &key, svc_id, v);
	if ((be.family == AF_INET) != (v6 ? is_v4mapped(key.addr) : 1))
		return refuse(ctx, &key, svc_id, MESH_V_FAMILY);
	count_verdict(svc_id, MESH_V_REWRITTEN);
	set_user_addr(ctx, be.addr, be.port, v6);
	if (ctx->sk)
		remember(ctx->sk, &key, svc_id, &be);
	if (key.proto == IPPROTO_UDP_)
		remember_udp(bpf_get_socket_cookie(ctx), &key, &be);
	return 1;
}

SEC("cgroup/connect4")
int mesh_connect4(struct bpf_sock_addr *ctx)
{
	return translate(ctx, 0);
}

SEC("cgroup/sendmsg4")
int mesh_sendmsg4(struct bpf_sock_addr *ctx)
{
	return translate(ctx, 0);
}

SEC("cgroup/connect6")
int mesh_connect6(struct bpf_sock_addr *ctx)
{
	return translate(ctx, 1);
}

SEC("cgroup/sendmsg6")
int mesh_sendmsg6(struct bpf_sock_addr *ctx)
{
	return translate(ctx, 1);
}

/* Replies from a backend appear to come from the VIP the socket sent to. */
static __always_inline int untranslate_udp(struct bpf_sock_addr *ctx, __u32 addr[4], int v6)
{
	struct mesh_udp_rev_key rk = { .cookie = bpf_get_socket_cookie(ctx), .port = bpf_ntohs((__u16)ctx->user_port) };
	struct mesh_udp_rev *rv;

	__builtin_memcpy(rk.addr, addr, sizeof(rk.addr));
	rv = bpf_map_lookup_elem(&udp_rev, &rk);
	if (rv)
		set_user_addr(ctx, rv->vip, rv->vport, v6);
	return 1;
}

SEC("cgroup/recvmsg4")
int mesh_recvmsg4(struct bpf_sock_addr *ctx)
{
	__u32 a[4];

	v4mapped(a, ctx->user_ip4);
	return untranslate_udp(ctx, a, 0);
}

SEC("cgroup/recvmsg6")
int mesh_recvmsg6(struct bpf_sock_addr *ctx)
{
	__u32 a[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

	return untranslate_udp(ctx, a, 1);
}

/* getpeername() on a socket connected through a VIP returns the VIP. */
static __always_inline int peer_is_vip(struct bpf_sock_addr *ctx, int v6)
{
	struct mesh_sock *st;

	if (!ctx->sk)
		return 1;
	st = bpf_sk_storage_get(&sock_info, ctx->sk, 0, 0);
	if (st && (st->flags & SOCK_SERVICE))
		set_user_addr(ctx, st->vip, st->vport, v6);
	return 1;
}

SEC("cgroup/getpeername4")
int mesh_getpeername4(struct bpf_sock_addr *ctx)
{
	return peer_is_vip(ctx, 0);
}

SEC("cgroup/getpeername6")
int mesh_getpeername6(struct bpf_sock_addr *ctx)
{
	return peer_is_vip(ctx, 1);
}

/* ---- telemetry ---------------------------------------------------------- */

/* Before 6.15 the kernfs parent link was `parent`; it is `__parent` since. */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return kn->__parent;
	return ((struct kernfs_node___old *)kn)->parent;
}

/* The socket's own cgroup and the two above it: sockops often runs in
 * softirq, where the current task's cgroup is someone else's. tp is a BTF
 * pointer: plain loads, which the verifier turns into fault-safe ones,
 * instead of bpf_probe_read calls. A cgroup's id is its kernfs node's. */
static __always_inline void sock_cgroup_ids(struct tcp_sock *tp, struct mesh_conn_event *e)
{
	struct kernfs_node *kn;
	struct cgroup *cg;

	if (!tp)
		return;
	cg = tp->inet_conn.icsk_inet.sk.sk_cgrp_data.cgroup;
	if (!cg || !(kn = cg->kn))
		return;
	e->cgroup_id = kn->id;
	if (!(kn = kn_parent(kn)))
		return;
	e->cgroup_parent_id = kn->id;
	if ((kn = kn_parent(kn)))
		e->cgroup_grandparent_id = kn->id;
}

static __always_inline struct mesh_sock *track(struct bpf_sock_ops *skops, __u32 flags)
{
	struct mesh_sock *st;

	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return NULL;
	st = bpf_sk_storage_get(&sock_info, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		count(MESH_C_STORAGE_FAILED);
		return NULL;
	}
	st->flags |= flags | SOCK_TRACKED;
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG | (track_rtt ? BPF_SOCK_OPS_RTT_CB_FLAG : 0));
	return st;
}

static __always_inline __u8 close_cause(__u32 old_state, int sk_err, struct tcp_sock *tp, struct bpf_sock_ops *skops)
{
	/* tcp_reset() says EPIPE for an RST that arrives in CLOSE_WAIT (after
	 * the peer's FIN), ECONNRESET in the other states. */
	if (sk_err == ECONNRESET || sk_err == EPIPE)
		return MESH_CLOSE_RST_RECEIVED;
	/* tcp_write_err() reports a timed-out connection's last soft error
	 * (an ICMP unreachable: EHOSTUNREACH...) rather than ETIMEDOUT: the
	 * kernel was still retransmitting or probing when it gave up. */
	if (sk_err == ETIMEDOUT || (sk_err && (tp->inet_conn.icsk_retransmits || tp->inet_conn.icsk_probes_out)))
		return MESH_CLOSE_TIMEOUT;
	if (sk_err)
		return MESH_CLOSE_ERROR;
	/* A graceful close reaches CLOSE from FIN_WAIT2, CLOSING or LAST_ACK (or
	 * FIN_WAIT1 when the ACK of our FIN and the peer's FIN come together).
	 * Anything else with no error is an abort - close() with unread data,
	 * SO_LINGER 0 - and the kernel sends an RST right after this callback.
	 * From FIN_WAIT2 too (shutdown(), then an abort): a graceful one has the
	 * peer's FIN (SOCK_DONE) or was closed and handed to TIME_WAIT (SOCK_DEAD). */
	if (old_state == BPF_TCP_FIN_WAIT2)
		return sock_flag_set(tp, bpf_core_enum_value(enum sock_flags, SOCK_DONE)) ||
		       sock_flag_set(tp, bpf_core_enum_value(enum sock_flags, SOCK_DEAD)) ? MESH_CLOSE_FIN : MESH_CLOSE_RST_SENT;
	if (old_state == BPF_TCP_CLOSING || old_state == BPF_TCP_LAST_ACK)
		return MESH_CLOSE_FIN;
	if (old_state == BPF_TCP_FIN_WAIT1 && skops->snd_una == skops->snd_nxt)
		return MESH_CLOSE_FIN;
	return MESH_CLOSE_RST_SENT;
}

/* Endpoints from the socket itself (the iterator has no sockops context; the
 * close callback reads the same fields through it). */
static __always_inline void fill_endpoints_sk(struct mesh_conn_event *e, struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	e->family = family;
	if (family == AF_INET) {
		v4mapped(e->saddr, sk->__sk_common.skc_rcv_saddr);
		v4mapped(e->daddr, sk->__sk_common.skc_daddr);
	} else {
		e->saddr[0] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[0];
		e->saddr[1] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[1];
		e->saddr[2] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[2];
		e->saddr[3] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		e->daddr[0] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
		e->daddr[1] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
		e->daddr[2] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
		e->daddr[3] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
	}
	e->sport = sk->__sk_common.skc_num;
	e->dport = bpf_ntohs(sk->__sk_common.skc_dport);
}

/*
 * Called once a record is reserved, so it will be written: it carries the
 * previous record's totals and the next one counts from its own. Returns
 * -EALREADY for an interim record of a connection whose close record was
 * written meanwhile (the caller discards it: the close counted everything).
 */
static __always_inline int fill_prior(struct mesh_conn_event *e, struct mesh_sock *st, int interim)
{
	__u64 sent = e->bytes_sent, received = e->bytes_received, psent, preceived;
	__u32 retrans = e->retransmits, pretrans, reports;

	bpf_spin_lock(&st->lock);
	if (interim && (st->flags & SOCK_CLOSED)) {
		bpf_spin_unlock(&st->lock);
		return -EALREADY;
	}
	psent = st->reported_sent;
	preceived = st->reported_received;
	pretrans = st->reported_retrans;
	reports = st->reports;
	st->reported_sent = sent;
	st->reported_received = received;
	st->reported_retrans = retrans;
	st->reports = reports + 1;
	bpf_spin_unlock(&st->lock);
	if (reports) {
		e->prior_bytes_sent = psent;
		e->prior_bytes_received = preceived;
		e->prior_retransmits = pretrans;
	} else {
		e->flags = MESH_REC_FIRST;
	}
	return 0;
}

/* What every record says about the connection beyond its endpoints and counters. */
static __always_inline void fill_state(struct mesh_conn_event *e, struct mesh_sock *st, __u32 srtt, __u64 now,
				       __u8 kind)
{
	e->start_ns = st->start_ns;
	e->duration_ns = st->start_ns ? now - st->start_ns : 0;
	if (st->flags & SOCK_SERVICE) {
		__builtin_memcpy(e->vip, st->vip, sizeof(e->vip));
		e->vport = st->vport;
		e->svc_id = st->svc_id;
		e->backend_id = st->backend_id;
	}
	e->connect_us = st->connect_us;
	/* min <= last <= max by definition: the value now is a sample too. */
	e->srtt_last_us = srtt;
	e->srtt_min_us = (st->flags & SOCK_RTT_SEEN) && st->srtt_min_us < srtt ? st->srtt_min_us : srtt;
	e->srtt_max_us = (st->flags & SOCK_RTT_SEEN) && st->srtt_max_us > srtt ? st->srtt_max_us : srtt;
	e->kind = kind;
	e->client = !!(st->flags & SOCK_CLIENT);
}

/*
 * Everything but the cookie (whose helper takes the hook's own context) and
 * the close cause, from the socket: one filler for the close callback and the
 * iterator. state: the state before CLOSE, or now for an open connection.
 */
static __always_inline int fill_record(struct mesh_conn_event *e, struct tcp_sock *tp, struct mesh_sock *st,
				       __u32 state, __u64 now, __u8 kind)
{
	sock_cgroup_ids(tp, e);
	payload_totals(tp, state, !!(st->flags & SOCK_CLIENT), &e->bytes_sent, &e->bytes_received, &e->retransmits);
	fill_endpoints_sk(e, &tp->inet_conn.icsk_inet.sk);
	fill_state(e, st, tp->srtt_us >> 3, now, kind);
	return fill_prior(e, st, kind == MESH_EV_INTERIM);
}

static __always_inline struct mesh_conn_event *reserve_event(void)
{
	struct mesh_conn_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(MESH_C_EVENTS_DROPPED);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	return e;
}

/* A record's footprint in the ring: its header and the record, 8-byte aligned. */
#define MESH_REC_FOOTPRINT ((sizeof(struct mesh_conn_event) + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL)

/*
 * A burst must not fill the ring between two of the agent's timed drains:
 * the records that take the ring past wake_bytes wake the agent. Only those
 * (a window of a few records, for producers racing on other CPUs), not every
 * record while the agent catches up - a forced wake-up queues an irq_work,
 * a cost that would land on the very close() calls that outrun the agent.
 */
static __always_inline void submit_event(struct mesh_conn_event *e)
{
	__u64 flags = rb_flags, avail;

	if (wake_bytes) {
		avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		if (avail >= wake_bytes && avail < wake_bytes + 8 * MESH_REC_FOOTPRINT)
			flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(e, flags);
	count(MESH_C_EVENTS);
}

/*
 * The failed-connect record of a connect the mesh refused (no usable
 * backend): no SYN was sent, so sockops never sees it. Its remote end is the
 * VIP the client dialled. TCP only: UDP has no connection records.
 */
static __always_inline void record_refused(struct bpf_sock_addr *ctx, const struct mesh_svc_key *key,
					   __u32 svc_id, int err)
{
	struct mesh_conn_event *e;
	struct tcp_sock *tp;

	if (key->proto != IPPROTO_TCP_ || !ctx->sk)
		return;
	tp = bpf_skc_to_tcp_sock(ctx->sk);
	if (!tp)
		return;
	e = reserve_event();
	if (!e)
		return;
	e->cookie = bpf_get_socket_cookie(ctx);
	sock_cgroup_ids(tp, e);
	fill_endpoints_sk(e, &tp->inet_conn.icsk_inet.sk);
	__builtin_memcpy(e->daddr, key->addr, sizeof(e->daddr));
	e->dport = key->port;
	__builtin_memcpy(e->vip, key->addr, sizeof(e->vip));
	e->vport = key->port;
	e->svc_id = svc_id;
	e->start_ns = bpf_ktime_get_ns();
	e->kind = MESH_EV_CONNECT_FAILED;
	e->client = 1;
	e->error = err;
	e->flags = MESH_REC_FIRST;
	submit_event(e);
}

/* The close (or failed-connect) record, from the sockops context. */
static __always_inline int emit(struct bpf_sock_ops *skops, struct mesh_sock *st, __u8 kind,
				__u32 state, __u64 now)
{
	struct tcp_sock *tp = sockops_tcp_sock(skops);
	struct mesh_conn_event *e;
	int sk_err;

	if (!tp)
		return -ENOENT;
	e = reserve_event();
	if (!e)
		return -ENOSPC;
	sk_err = tp->inet_conn.icsk_inet.sk.sk_err;
	e->cookie = bpf_get_socket_cookie(skops);
	fill_record(e, tp, st, state, now, kind); /* a close is never refused */
	if (kind == MESH_EV_CLOSE)
		e->close_cause = close_cause(state, sk_err, tp, skops);
	e->error = sk_err;
	submit_event(e);
	return 0;
}

static __always_inline void on_rtt(struct bpf_sock_ops *skops, struct mesh_sock *st)
{
	__u32 srtt = skops->srtt_us >> 3;

	/* The callback can run before the estimator has a first value. */
	if (!srtt)
		return;
	if (!(st->flags & SOCK_RTT_SEEN)) {
		st->srtt_min_us = srtt;
		st->srtt_max_us = srtt;
		st->flags |= SOCK_RTT_SEEN;
	} else {
		if (srtt < st->srtt_min_us)
			st->srtt_min_us = srtt;
		if (srtt > st->srtt_max_us)
			st->srtt_max_us = srtt;
	}
}

static __always_inline void on_close(struct bpf_sock_ops *skops, struct mesh_sock *st, __u32 old_state)
{
	if (st->flags & SOCK_CLOSED)
		return; /* repeated transitions have been seen: report once */
	st->flags |= SOCK_CLOSED;
	emit(skops, st, old_state == BPF_TCP_SYN_SENT ? MESH_EV_CONNECT_FAILED : MESH_EV_CLOSE,
	     old_state, bpf_ktime_get_ns());
}

static __always_inline struct mesh_sock *tracked(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;

	return sk ? bpf_sk_storage_get(&sock_info, sk, 0, 0) : NULL;
}

SEC("sockops")
int mesh_sockops(struct bpf_sock_ops *skops)
{
	struct mesh_sock *st;
	__u64 now;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB: /* SYN about to be sent */
		st = track(skops, SOCK_CLIENT);
		if (st) {
			st->start_ns = bpf_ktime_get_ns();
			st->last_report_ns = st->start_ns;
		}
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		st = tracked(skops);
		if (st && st->start_ns)
			st->connect_us = (bpf_ktime_get_ns() - st->start_ns) / 1000;
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		st = track(skops, 0);
		if (st) {
			now = bpf_ktime_get_ns();
			st->start_ns = now;
			st->last_report_ns = now;
		}
		break;
	case BPF_SOCK_OPS_RTT_CB:
		st = tracked(skops);
		if (st)
			on_rtt(skops, st);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] != BPF_TCP_CLOSE)
			break;
		st = tracked(skops);
		if (st)
			on_close(skops, st, skops->args[0]);
		break;
	}
	return 1;
}

/* ---- reports of open connections --------------------------------------- */

/*
 * A run reports more connections than the ring holds on a busy node: the
 * agent reads it in parts (a byte per record to the reader, below) and
 * drains the ring between them. Should close records fill the ring as well,
 * past 3/4 the run stops writing: what is left stays due, the agent drains
 * and runs again, and the last quarter stays free for close records. Not a
 * drop: nothing is lost.
 */
static __always_inline int ring_left_to_closes(void)
{
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);

	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + MESH_REC_FOOTPRINT > size - size / 4;
}

/*
 * Run by the agent (a read of the iterator) every half report interval: one
 * interim record for each tracked connection still open whose last report is
 * older than the interval. Idle connections report too, so no metric waits
 * for a close; connections that send nothing cost nothing between runs. Each
 * run also counts the open connections it walks (MESH_C_OPEN).
 */
SEC("iter/bpf_sk_storage_map")
int mesh_report_open(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct sock *sk = ctx->sk;
	struct mesh_conn_event *e;
	struct mesh_sock *st;
	struct tcp_sock *tp;
	__u64 now;
	__u8 state, one = 1;

	if (!sk || !ctx->value)
		return 0;
	/* The same storage as ctx->value, as a map value: what the lock needs. */
	st = bpf_sk_storage_get(&sock_info, sk, 0, 0);
	if (!st || !(st->flags & SOCK_TRACKED) || (st->flags & SOCK_CLOSED))
		return 0;
	state = sk->__sk_common.skc_state;
	if (state == BPF_TCP_SYN_SENT || state == BPF_TCP_SYN_RECV || state == BPF_TCP_CLOSE ||
	    state == BPF_TCP_LISTEN || state == BPF_TCP_NEW_SYN_RECV)
		return 0;
	count(MESH_C_OPEN);
	now = bpf_ktime_get_ns();
	if (now - st->last_report_ns < report_interval_ns)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	if (ring_left_to_closes()) {
		count(MESH_C_REPORTS_DEFERRED); /* still due: the agent drains and runs again */
		return 0;
	}
	e = reserve_event();
	if (!e)
		return 0;
	st->last_report_ns = now;
	e->cookie = bpf_get_socket_cookie(sk);
	if (fill_record(e, tp, st, state, now, MESH_EV_INTERIM)) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	submit_event(e);
	/* A byte to the reader per record: a read() of N bytes returns after N
	 * records, and the agent drains the ring before the walk goes on. */
	bpf_seq_write(ctx->meta->seq, &one, 1);
	return 0;
}
