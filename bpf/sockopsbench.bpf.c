// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor under any sockops telemetry, for bench service's breakdown: what
 * the kernel charges before the mesh's sockops program does anything of its
 * own. Attached beside the mesh's connect4 (its sockops detached), on the
 * mesh's own sock_info map, so each variant differs from the next by one thing:
 *
 *   floor_callbacks  the state and RTT callbacks enabled, as the mesh enables
 *                    them, and nothing done in any of them
 *   floor_storage    the same, plus the mesh's socket storage on both sides:
 *                    found at connect (connect4 made it), created on the
 *                    accepted socket, freed with each socket
 *
 * And under those, with no mesh program at all:
 *
 *   bare_connect4    connect4 rewriting one VIP:port to one backend, given as
 *                    rodata: no map, no socket storage - the rewrite alone,
 *                    which floor_callbacks can join to show the sockops
 *                    callbacks' own price with no per-socket state anywhere
 */
#include "common.h"
#include "mesh_sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* bare_connect4's one rewrite, network order, set before load. */
const volatile __u32 bare_vip = 0;
const volatile __u16 bare_vport = 0;
const volatile __u32 bare_backend = 0;
const volatile __u16 bare_bport = 0;

MESH_SOCK_STORAGE(sock_info, struct mesh_sock);

static __always_inline void enable_callbacks(struct bpf_sock_ops *skops)
{
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG | BPF_SOCK_OPS_RTT_CB_FLAG);
}

static __always_inline int storage(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct mesh_sock *st;

	if (!sk)
		return -ENOENT;
	st = bpf_sk_storage_get(&sock_info, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return -ENOMEM;
	st->flags |= SOCK_TRACKED;
	return 0;
}

SEC("sockops")
int floor_callbacks(struct bpf_sock_ops *skops)
{
	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB || skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		enable_callbacks(skops);
	return 1;
}

SEC("sockops")
int floor_storage(struct bpf_sock_ops *skops)
{
	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB || skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		storage(skops);
		enable_callbacks(skops);
	}
	return 1;
}

SEC("cgroup/connect4")
int bare_connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->user_ip4 == bare_vip && ctx->user_port == bare_vport) {
		ctx->user_ip4 = bare_backend;
		ctx->user_port = bare_bport;
	}
	return 1;
}
