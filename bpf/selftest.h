/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The self-test program family: what crosses from selftest.bpf.c to user space.
 * `sockmesh doctor` loads it to prove each hook attaches; the kernel tests use it
 * to check the addon against real sockets. Fixed-width fields, explicit padding:
 * src/bpf/layouts/selftest.ts mirrors this file and test/kernel/btf-layout checks
 * the two against the compiled object's BTF.
 */
#ifndef SOCKMESH_SELFTEST_H
#define SOCKMESH_SELFTEST_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* One record per TCP socket of the attached cgroup when it reaches CLOSE. */
struct selftest_conn_event {
	__u64 cookie;         /* socket cookie: the same in connect4 and sockops */
	__u64 bytes_acked;    /* payload bytes this side sent that the peer acked (no SYN/FIN) */
	__u64 bytes_received; /* payload bytes received */
	__u32 saddr[4];       /* local address, network order; IPv4 in saddr[0] */
	__u32 daddr[4];       /* remote address, network order; IPv4 in daddr[0] */
	__u16 sport;          /* local port, host order */
	__u16 dport;          /* remote port, host order */
	__u16 family;         /* AF_INET or AF_INET6 */
	__u8  active;         /* 1: this side called connect(); 0: accepted */
	__u8  _pad0;
	__u32 old_state;      /* TCP state before CLOSE */
	__u32 _pad1;
};

/* Value of the connect_dst map, keyed by socket cookie: what connect4 saw. */
struct selftest_connect_dst {
	__u32 daddr; /* network order */
	__u16 dport; /* host order */
	__u16 _pad0;
};

/* Indices of the `counters` array. */
enum selftest_counter {
	SELFTEST_CONNECT4 = 0,    /* connect4 calls */
	SELFTEST_ESTABLISHED = 1, /* sockops ACTIVE/PASSIVE_ESTABLISHED */
	SELFTEST_CLOSED = 2,      /* close records submitted */
	SELFTEST_RB_DROPS = 3,    /* close records lost: ring buffer full */
	SELFTEST_TP_STATE = 4,    /* tp_btf inet_sock_set_state hits on trace_port */
	SELFTEST_RAW_SYSCALLS = 5,/* raw_tp sys_enter hits of trace_tgid */
	SELFTEST_SK_MSG_BYTES = 6,/* bytes seen by the sk_msg verdict program */
	SELFTEST_NR_COUNTERS = 8,
};

#endif
