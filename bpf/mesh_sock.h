/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The mesh programs' per-socket state (`sock_info` socket storage), freed
 * with the socket and never read by user space - but it outlives an agent,
 * so an upgrade that changes it carries each open connection's state over
 * with a migration program (mesh_migrate.bpf.c) from the layouts earlier
 * releases pinned (mesh_legacy.h).
 *
 * From release 0.2 on, fields are only ever appended, never moved or
 * redefined: an agent rolled back onto a newer release's pins carries the
 * part it knows over (mesh_migrate_sock_newer).
 */
#ifndef SOCKMESH_MESH_SOCK_H
#define SOCKMESH_MESH_SOCK_H

#define SOCK_SERVICE   (1u << 0) /* connected through a VIP */
#define SOCK_CLIENT    (1u << 1) /* this side called connect() */
#define SOCK_TRACKED   (1u << 2) /* sockops callbacks enabled */
#define SOCK_CLOSED    (1u << 3) /* close record sent: report once */
#define SOCK_RTT_SEEN  (1u << 4)
/* The flags this release knows: what a migration keeps of another release's. */
#define SOCK_KNOWN     (SOCK_SERVICE | SOCK_CLIENT | SOCK_TRACKED | SOCK_CLOSED | SOCK_RTT_SEEN)

/* The socket storage map, one definition for the mesh, its migrations and the tests' old layouts. */
#define MESH_SOCK_STORAGE(name, value_type)                 \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_SK_STORAGE);      \
		__uint(map_flags, BPF_F_NO_PREALLOC);       \
		__type(key, int);                           \
		__type(value, value_type);                  \
	} name SEC(".maps")

struct mesh_sock {
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
	/*
	 * The totals of the last record written (reports: how many), which the
	 * next record carries as prior_*. Both the sockops close and the report
	 * iterator write records, on different CPUs and without a common lock:
	 * these, and the close check, change only under `lock`. `flags` belongs
	 * to the sockops side (serialized by the socket lock): the iterator only
	 * reads it.
	 */
	__u64 reported_sent;
	__u64 reported_received;
	__u32 reported_retrans;
	__u32 reports;
	struct bpf_spin_lock lock;
	__u32 _pad2;
};

#endif
