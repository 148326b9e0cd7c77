/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The mesh program family (mesh.bpf.c): service load balancing at connect time
 * and per-connection TCP telemetry. This header is the one definition of what
 * crosses between the kernel and the agent; src/bpf/layouts/mesh.ts mirrors it
 * and test/kernel/bpf/layout-btf.test.ts checks the mirror against BTF.
 *
 * Addresses are 16 bytes, network order; IPv4 is stored IPv4-mapped
 * (::ffff:a.b.c.d) so one key shape serves connect4, connect6 and dual-stack
 * sockets. Ports are host order.
 */
#ifndef SOCKMESH_MESH_H
#define SOCKMESH_MESH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define MESH_MAX_SLOTS 4096 /* weighted backend slots per service generation */

/* `services` key: one service frontend. */
struct mesh_svc_key {
	__u32 addr[4]; /* VIP */
	__u16 port;
	__u8  proto;   /* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	__u8  _pad0;
};

/* `services` value. The agent changes a backend set by writing the new
 * generation's slots first, then this value in one update, then deleting the
 * old generation: a connect never sees a half-written set. */
struct mesh_svc {
	__u32 id;    /* agent-assigned, stable for the service's life */
	__u32 gen;   /* generation whose slots are live */
	__u32 slots; /* live slot count; 0: no usable backend, connects fail */
	__u32 flags; /* reserved, 0 */
};

/* `slots` key: slot N of generation G of service S. Weights are slot counts. */
struct mesh_slot_key {
	__u32 svc;
	__u32 gen;
	__u32 slot;
};

/* `slots` value. */
struct mesh_backend {
	__u32 addr[4];
	__u16 port;
	__u16 family; /* AF_INET or AF_INET6 */
	__u32 id;     /* agent-assigned backend id, reported in telemetry */
};

/* Connect-time verdicts, counted per service in `svc_verdicts`. */
enum mesh_verdict {
	MESH_V_REWRITTEN = 0,   /* destination rewritten to a backend */
	MESH_V_NO_BACKEND = 1,  /* service has no live slot: ECONNREFUSED */
	MESH_V_STALE = 2,       /* slot vanished under a concurrent flip, twice: ECONNREFUSED */
	MESH_V_FAMILY = 3,      /* IPv6 socket, IPv4 backend (or the reverse): EHOSTUNREACH */
	MESH_V_NR = 4,
};

struct mesh_verdict_key {
	__u32 svc;
	__u32 verdict;
};

/* Reverse translation for unconnected UDP replies, per socket. */
struct mesh_udp_rev_key {
	__u64 cookie;
	__u32 addr[4]; /* backend */
	__u16 port;
	__u16 _pad0;
	__u32 _pad1;
};

struct mesh_udp_rev {
	__u32 vip[4];
	__u16 vport;
	__u16 _pad0;
};

/* Record kinds on the `events` ring buffer. */
enum mesh_event_kind {
	MESH_EV_CLOSE = 0,          /* connection closed: final counters */
	MESH_EV_INTERIM = 1,        /* still open: counters so far (every report_interval_ns) */
	MESH_EV_CONNECT_FAILED = 2, /* SYN_SENT -> CLOSE: `error` says why */
};

enum mesh_close_cause {
	MESH_CLOSE_NONE = 0,       /* still open (interim) */
	MESH_CLOSE_FIN = 1,
	MESH_CLOSE_RST_SENT = 2,
	MESH_CLOSE_RST_RECEIVED = 3,
	MESH_CLOSE_TIMEOUT = 4,
	MESH_CLOSE_ERROR = 5,      /* other socket error, see `error` */
};

/* mesh_conn_event.flags */
#define MESH_REC_FIRST (1u << 0) /* no earlier record of this connection was written */

/*
 * One telemetry record. Counters are totals since the connection began; the
 * prior_* fields are the totals of this connection's previous record (0 for
 * the first), so the agent counts each byte once from the record alone, even
 * across its own restarts. A record lost to a full ring loses nothing but
 * itself: the next one's prior_* still name the last record written.
 *
 * From release 0.2 on, fields are only ever appended, never moved or
 * redefined: an agent rolled back onto a newer release's programs reads the
 * part it knows of their longer records (src/telemetry/record.ts).
 */
struct mesh_conn_event {
	__u64 cookie;
	__u64 cgroup_id;      /* workload: the socket's cgroup v2 id */
	__u64 start_ns;       /* CLOCK_MONOTONIC: SYN sent (client) / established (server) */
	__u64 duration_ns;    /* start -> close, or -> now for interim records */
	__u64 bytes_sent;     /* payload bytes acknowledged by the peer */
	__u64 bytes_received; /* payload bytes received */
	__u64 prior_bytes_sent;
	__u64 prior_bytes_received;
	__u32 saddr[4];       /* local endpoint (after any rewrite) */
	__u32 daddr[4];       /* remote endpoint (the backend, for service traffic) */
	__u32 vip[4];         /* original destination, for service traffic; else zero */
	__u16 sport;
	__u16 dport;
	__u16 vport;
	__u16 family;         /* AF_INET or AF_INET6 */
	__u32 svc_id;         /* 0: not service traffic */
	__u32 backend_id;
	__u32 connect_us;     /* SYN sent -> established (client side), 0 otherwise */
	__u32 srtt_last_us;
	__u32 srtt_min_us;
	__u32 srtt_max_us;
	__u32 retransmits;    /* segments retransmitted */
	__s32 error;          /* errno of a failed connect or an error close; 0 */
	__u8  kind;           /* enum mesh_event_kind */
	__u8  client;         /* 1: this side called connect() */
	__u8  close_cause;    /* enum mesh_close_cause */
	__u8  flags;          /* MESH_REC_* */
	__u32 prior_retransmits;
	/* Appended in 0.3. The parent and grandparent of the socket's cgroup (0:
	 * none): a container's cgroup can be made and removed before the agent
	 * learns its id (a Job, a crash loop, an agent busy or stopped), and its
	 * pod's cgroup, which outlives it, still names the workload. */
	__u64 cgroup_parent_id;
	__u64 cgroup_grandparent_id;
};

/* Indices of the per-CPU `counters` array. */
enum mesh_counter {
	MESH_C_EVENTS = 0,          /* records submitted */
	MESH_C_EVENTS_DROPPED = 1,  /* ring buffer full */
	MESH_C_STORAGE_FAILED = 2,  /* socket storage could not be allocated */
	MESH_C_UDP_REV_FAILED = 3,  /* UDP reverse entry could not be stored */
	MESH_C_OPEN = 4,            /* tracked connections open, counted by the last report run (the agent zeroes it before) */
	MESH_C_REPORTS_DEFERRED = 5, /* due reports the last run left for the next: the ring was 3/4 full (the agent zeroes it before) */
	MESH_C_NR = 8,
};

#endif
