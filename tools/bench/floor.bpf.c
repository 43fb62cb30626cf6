/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only */
/*
 * The floor of any socket load balancer, for `make bench-svc`: a cgroup/connect4 program that
 * does one hash lookup of the destination and rewrites it, and nothing else (no backend choice,
 * no per-connection state, no namespace check).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct floor_key {
	__be32 ip;
	__be16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct floor_key);
	__type(value, struct floor_key);
	__uint(max_entries, 65536);
} floor_svc SEC(".maps");

SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	struct floor_key k = { .ip = ctx->user_ip4, .port = (__be16)ctx->user_port };
	struct floor_key *be = bpf_map_lookup_elem(&floor_svc, &k);

	if (be) {
		ctx->user_ip4 = be->ip;
		ctx->user_port = be->port;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
