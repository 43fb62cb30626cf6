/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's nftables table (family ip), written through libnftnl/libmnl in atomic batches:
 *
 *   table ip <name>
 *     chain postrouting  nat hook postrouting prio srcnat:
 *           ip saddr <pod cidr> ip daddr != <cluster cidr> masquerade
 *     chain prerouting   nat hook prerouting prio dstnat:  fib daddr type local jump hostports
 *     chain output       nat hook output prio dstnat:      fib daddr type local jump hostports
 *     chain hostports    one DNAT rule per pod port mapping, commented "shoal:<owner>"
 *
 * Setup is idempotent (re-running it leaves the same rules, hostPort rules survive a daemon
 * restart); teardown deletes the table and with it every rule.
 */
#ifndef SHOAL_NETPLUGIN_NFT_H
#define SHOAL_NETPLUGIN_NFT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct np_port_mapping {
	uint16_t host_port;
	uint16_t container_port;
	uint8_t proto;	  /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	uint32_t host_ip; /* host order; 0: every local address */
};

/* Create or refresh the table; cidrs in host order. */
int np_nft_node_setup(const char *table, uint32_t pod_net, int pod_prefix, uint32_t cluster_net,
		      int cluster_prefix, struct err *e);
/* Delete the table; 0, or -ENOENT when it did not exist. */
int np_nft_node_teardown(const char *table, struct err *e);
/* Replace owner's hostPort DNAT rules with m[0..n) to pod_ip (host order). */
int np_nft_hostports_set(const char *table, const char *owner, uint32_t pod_ip,
			 const struct np_port_mapping *m, size_t n, struct err *e);
/* Remove owner's hostPort rules; returns how many were removed. */
int np_nft_hostports_del(const char *table, const char *owner, struct err *e);
/* Count hostPort rules of owner (NULL: all of them); -ENOENT when the table is missing. */
int np_nft_hostports_count(const char *table, const char *owner, struct err *e);

#endif
