// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Fixture: compiles, but the verifier must refuse it (a map value used without
 * the NULL check; a hash map, since the verifier knows a constant in-range
 * array lookup cannot fail), so tests can check that the rejection surfaces as a
 * VerifierError carrying the log. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} vals SEC(".maps");

SEC("cgroup/connect4")
int bad_connect4(struct bpf_sock_addr *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&vals, &k);

	*v += 1; /* no NULL check: "invalid mem access 'map_value_or_null'" */
	return 1;
}
