/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Layouts earlier releases left in the kernel that this one still reads: the
 * socket state a migration program converts (mesh_migrate.bpf.c) and the
 * records an older agent's programs may have left in the ring. Frozen copies:
 * never edit one, add the next. Sizes are what src/dataplane/upgrade.ts and
 * src/telemetry/record.ts recognise them by.
 */
#ifndef SOCKMESH_MESH_LEGACY_H
#define SOCKMESH_MESH_LEGACY_H

/* 64 bytes, release 0.1 (stop 6): no reported_* (its agent kept those in memory). */
struct mesh_sock_v1 {
	__u32 vip[4];
	__u16 vport;
	__u16 _pad0;
	__u32 svc_id;
	__u32 backend_id;
	__u32 flags;
	__u32 srtt_min_us;
	__u32 srtt_max_us;
	__u32 connect_us;
	__u32 _pad1;
	__u64 start_ns;
	__u64 last_report_ns;
};

_Static_assert(sizeof(struct mesh_sock_v1) == 64, "mesh_sock_v1 is the 64-byte layout release 0.1 pinned");

/* 144 bytes, release 0.1 (stop 6): totals only, no prior_* or flags. */
struct mesh_conn_event_v1 {
	__u64 cookie;
	__u64 cgroup_id;
	__u64 start_ns;
	__u64 duration_ns;
	__u64 bytes_sent;
	__u64 bytes_received;
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 vip[4];
	__u16 sport;
	__u16 dport;
	__u16 vport;
	__u16 family;
	__u32 svc_id;
	__u32 backend_id;
	__u32 connect_us;
	__u32 srtt_last_us;
	__u32 srtt_min_us;
	__u32 srtt_max_us;
	__u32 retransmits;
	__s32 error;
	__u8  kind;
	__u8  client;
	__u8  close_cause;
	__u8  _pad0;
	__u32 _pad1;
};
_Static_assert(sizeof(struct mesh_conn_event_v1) == 144, "mesh_conn_event_v1 is the 144-byte record release 0.1 wrote");

#endif
