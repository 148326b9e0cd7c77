// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket storage as a newer release might keep it, for the rollback test:
 * this release's `struct mesh_sock` with fields appended (the only change
 * its layout may get), filled at connect and accept with values the test
 * recognises after the rollback - a VIP the client never dialled, a client
 * never reported, a server reported once (3000 bytes received) - and
 * STATE_CB on, as the mesh sets it.
 */
#include "common.h"
#include "mesh.h"
#include "mesh_sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct mesh_sock_next {
	struct mesh_sock base; /* this release's layout, as it is */
	/* appended by the newer release */
	__u64 appended_a;
	__u64 appended_b;
};

_Static_assert(sizeof(struct mesh_sock_next) == sizeof(struct mesh_sock) + 16, "mesh_sock with two fields appended");

MESH_SOCK_STORAGE(sock_info, struct mesh_sock_next);

SEC("sockops")
int sock_next_ops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct mesh_sock_next *st;
	__u64 now;

	if (!sk || (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB && skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB))
		return 1;
	st = bpf_sk_storage_get(&sock_info, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 1;
	now = bpf_ktime_get_ns();
	st->base.start_ns = now;
	st->appended_a = 0xa5a5a5a5a5a5a5a5ULL;
	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		st->base.vip[2] = bpf_htonl(0xffff);
		st->base.vip[3] = bpf_htonl(0x7f4d0062); /* 127.77.0.98 */
		st->base.vport = 80;
		st->base.svc_id = 78;
		st->base.backend_id = 8;
		st->base.flags = SOCK_SERVICE | SOCK_CLIENT | SOCK_TRACKED;
		st->base.last_report_ns = now;     /* never reported */
	} else {
		st->base.flags = SOCK_TRACKED;
		st->base.last_report_ns = now + 1; /* an interim record went out, with 3000 bytes received */
		st->base.reported_received = 3000;
		st->base.reports = 1;
	}
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
	return 1;
}
