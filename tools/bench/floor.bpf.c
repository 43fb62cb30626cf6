/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only */
/*
 * The floor of any socket load balancer, for `make bench-svc`: a cgroup/connect4 program that
 * does one hash lookup of the destination and rewrites it, and nothing else (no per-connection
 * state, no namespace check). An entry of one backend is the `floor` mode: no backend choice
 * either. An entry of n > 1 backends (the `floor3` mode) picks one at random, as any socket LB
 * must for a service of n endpoints: one random number, a multiply and a shift.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct floor_key {
	__be32 ip;
	__be16 port;
	__u16 pad;
};

#define FLOOR_MAX_BE 4

struct floor_val {
	__u32 n;
	struct floor_key be[FLOOR_MAX_BE];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct floor_key);
	__type(value, struct floor_val);
	__uint(max_entries, 65536);
} floor_svc SEC(".maps");

SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	struct floor_key k = { .ip = ctx->user_ip4, .port = (__be16)ctx->user_port };
	struct floor_val *v = bpf_map_lookup_elem(&floor_svc, &k);
	__u32 i = 0;

	if (!v)
		return 1;
	if (v->n > 1)
		i = (__u32)(((__u64)bpf_get_prandom_u32() * v->n) >> 32) & (FLOOR_MAX_BE - 1);
	ctx->user_ip4 = v->be[i].ip;
	ctx->user_port = v->be[i].port;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
