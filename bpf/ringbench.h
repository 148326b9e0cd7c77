/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ring-buffer benchmark family: a synthetic in-kernel producer
 * (ringbench.bpf.c) that bench/ringbuf and the ring-buffer tests drain.
 * src/bpf/layouts/ringbench.ts mirrors this file.
 */
#ifndef SOCKMESH_RINGBENCH_H
#define SOCKMESH_RINGBENCH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Record header; record_size - sizeof(header) bytes of payload follow. */
struct ringbench_record {
	__u64 seq;     /* 0, 1, 2, ... per produce call, from ringbench_args.first_seq */
	__u64 ts_ns;   /* bpf_ktime_get_ns() at reserve */
	__u32 size;    /* whole record size, header included */
	__u32 check;   /* seq ^ 0x5eed5eed, low 32 bits: lets a consumer spot torn records */
};

/* ctx of the `produce` SEC("syscall") program, passed through test_run. */
struct ringbench_args {
	__u64 first_seq;
	__u32 count;   /* records to produce in this call */
	__u32 _pad0;
};

/* Value of the per-CPU `stats` array (one slot). */
struct ringbench_stats {
	__u64 produced;
	__u64 dropped; /* bpf_ringbuf_reserve failed: ring full */
};

#define RINGBENCH_MAX_RECORD 256

#endif
