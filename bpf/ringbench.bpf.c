// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Synthetic ring-buffer producer: each test_run of `produce` writes `count`
 * records of `record_size` bytes with bpf_loop, counting every reserve failure
 * so a consumer's loss can be checked exactly (produced == consumed + dropped).
 */
#include "common.h"
#include "ringbench.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

EXPORT_STRUCT(ringbench_record);
EXPORT_STRUCT(ringbench_args);
EXPORT_STRUCT(ringbench_stats);

/* Tunables, set before load. record_size must be a verifier-known constant for
 * bpf_ringbuf_reserve, which a frozen .rodata value is. */
const volatile __u32 record_size = 64;
const volatile __u64 wakeup_flags = 0; /* 0: adaptive, BPF_RB_NO_WAKEUP, BPF_RB_FORCE_WAKEUP */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} records SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ringbench_stats);
} stats SEC(".maps");

struct loop_ctx {
	__u64 first_seq;
	struct ringbench_stats *st;
};

static long produce_one(__u32 i, void *data)
{
	struct loop_ctx *lc = data;
	struct ringbench_record *r;
	__u64 seq = lc->first_seq + i;

	r = bpf_ringbuf_reserve(&records, record_size, 0);
	if (!r) {
		lc->st->dropped++;
		return 0;
	}
	r->seq = seq;
	r->ts_ns = bpf_ktime_get_ns();
	r->size = record_size;
	r->check = (__u32)(seq ^ 0x5eed5eed);
	bpf_ringbuf_submit(r, wakeup_flags);
	lc->st->produced++;
	return 0;
}

SEC("syscall")
int produce(struct ringbench_args *args)
{
	__u32 zero = 0;
	struct loop_ctx lc = { .first_seq = args->first_seq };

	if (record_size < sizeof(struct ringbench_record) || record_size > RINGBENCH_MAX_RECORD)
		return -22; /* -EINVAL: user space validates; the kernel refuses too */
	lc.st = bpf_map_lookup_elem(&stats, &zero);
	if (!lc.st)
		return -2;
	return bpf_loop(args->count, produce_one, &lc, 0);
}
