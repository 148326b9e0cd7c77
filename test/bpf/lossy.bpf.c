// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Fixture: tc ingress program for a test netns's loopback that drops about one
 * in eight TCP segments carrying payload to or from port 18081, so tests can
 * produce real retransmissions without netem (absent on this kernel). Loaded
 * with iproute2's tc inside the namespace only. Ingress, not egress: an egress
 * drop is reported back to TCP, which sends the segment again as new data
 * rather than retransmitting it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define LOSSY_PORT 18081
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

SEC("tc")
int lossy(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;
	__u32 payload;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(0x0800) || ip->protocol != 6)
		return TC_ACT_OK;
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > end)
		return TC_ACT_OK;
	if (tcp->dest != bpf_htons(LOSSY_PORT) && tcp->source != bpf_htons(LOSSY_PORT))
		return TC_ACT_OK;
	payload = bpf_ntohs(ip->tot_len) - ip->ihl * 4 - tcp->doff * 4;
	if (payload == 0)
		return TC_ACT_OK;
	return (bpf_get_prandom_u32() & 7) == 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

/* Drops every TCP segment to or from LOSSY_PORT + 1: a peer that vanished,
 * for retransmission-timeout tests. Its own section, so tc can pick it. */
SEC("classifier")
int blackhole(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(0x0800) || ip->protocol != 6)
		return TC_ACT_OK;
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > end)
		return TC_ACT_OK;
	if (tcp->dest == bpf_htons(LOSSY_PORT + 1) || tcp->source == bpf_htons(LOSSY_PORT + 1))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}
