// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket storage as release 0.1 (stop 6) kept it, for the migration test:
 * a v1-layout `sock_info` filled at connect and accept with values the test
 * recognises after the upgrade - a VIP the client never dialled, a client
 * never reported, a server reported once - and STATE_CB on, as v1 set it.
 */
#include "common.h"
#include "mesh.h"
#include "mesh_sock.h"
#include "mesh_legacy.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

MESH_SOCK_STORAGE(sock_info, struct mesh_sock_v1);

SEC("sockops")
int sock_v1_ops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct mesh_sock_v1 *st;
	__u64 now;

	if (!sk || (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB && skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB))
		return 1;
	st = bpf_sk_storage_get(&sock_info, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 1;
	now = bpf_ktime_get_ns();
	st->start_ns = now;
	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		st->vip[2] = bpf_htonl(0xffff);
		st->vip[3] = bpf_htonl(0x7f4d0063); /* 127.77.0.99 */
		st->vport = 80;
		st->svc_id = 77;
		st->backend_id = 7;
		st->flags = SOCK_SERVICE | SOCK_CLIENT | SOCK_TRACKED;
		st->last_report_ns = now;     /* never reported */
	} else {
		st->flags = SOCK_TRACKED;
		st->last_report_ns = now + 1; /* an interim record went out */
	}
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
	return 1;
}
