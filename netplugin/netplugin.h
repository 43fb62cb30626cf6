/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pod network of one node, as the daemon's pod runtime and shoal-cni use it.
 *
 * Routed veth: each pod gets a netns, a veth pair (host side "sh<node5><pod8>", pod side eth0),
 * one address from the node's pod CIDR as a /32, and a default route through the link-local
 * gateway 169.254.1.1 that the host side answers for (proxy ARP, plus a permanent neighbour
 * entry in the pod). The host reaches the pod through a /32 route on the host veth. Egress
 * beyond the cluster CIDR is masqueraded and hostPorts are DNAT'ed in the node's nft table.
 *
 * All calls act on the network namespace of the calling thread ("the node"); they switch only
 * that thread into a pod netns and back, so they may run on any thread, but one np_node handle
 * must not be used by two threads at once. Lease allocation is safe across processes. Every pod's
 * plumbing is recorded with its IP lease, so a restarted daemon re-adopts running pods:
 * np_pod_setup() on an already plumbed pod changes nothing and reports adopted = true.
 */
#ifndef SHOAL_NETPLUGIN_NETPLUGIN_H
#define SHOAL_NETPLUGIN_NETPLUGIN_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "netplugin/ipam.h"
#include "netplugin/nft.h"

struct np_node_opts {
	const char *node_name;	 /* required; names the netns and host veths */
	const char *state_dir;	 /* required; the lease database lives at <state_dir>/ipam.db */
	const char *pod_cidr;	 /* default 10.244.0.0/24 */
	const char *range_start; /* optional sub-range of pod_cidr */
	const char *range_end;
	const char *cluster_cidr; /* destinations not masqueraded; default: pod_cidr */
	const char *nft_table;	  /* NULL/"": no nftables (no masquerade, no hostPorts) */
	int mtu;		  /* 0: kernel default */
};

struct np_node;

int np_node_open(const struct np_node_opts *o, struct np_node **ret, struct err *e);
struct np_node *np_node_close(struct np_node *n);
/* Node-wide plumbing: ip_forward on, the reserved node address (network + 1, /32) on the
 * loopback for node-local services pods reach (cluster DNS), the nft table (idempotent). */
int np_node_setup(struct np_node *n, struct err *e);
/* Remove the node address and the nft table (pods are torn down one by one with
 * np_pod_teardown). */
int np_node_teardown(struct np_node *n, struct err *e);
/* Delete every host-side pod veth of the node (named "sh<node hash>..."), whatever became of
 * its pod: for a node teardown, which cannot count on each pod's netns dying (and its veth
 * with it) before it returns. Pods still served must not be on the node. */
int np_node_veths_remove(struct np_node *n, struct err *e);
/* The pod CIDR's reserved node address (network + 1) and the range. */
const struct ipam_range *np_node_range(const struct np_node *n);
/* Every lease (for leak checks and re-adoption); free(*ret). */
int np_node_leases(struct np_node *n, struct ipam_lease **ret, size_t *nret, struct err *e);

struct np_pod_opts {
	const char *owner;	/* pod uid, or the CNI container id */
	const char *ifname;	/* default eth0 */
	const char *netns_path; /* existing netns (CNI_NETNS); NULL: create shoal-<node>-<hash> */
	const struct np_port_mapping *ports;
	size_t nports;
};

struct np_pod_result {
	uint32_t ip;	  /* host order, prefix 32 */
	uint32_t gateway; /* 169.254.1.1 */
	char ip_str[16];
	char netns_name[128]; /* "" when the netns was given by the caller */
	char netns_path[256];
	char host_veth[IFNAMSIZ];
	char ifname[IFNAMSIZ];
	uint8_t host_mac[6];
	uint8_t pod_mac[6];
	bool netns_owned;
	bool adopted; /* setup found everything in place and changed nothing */
};

/* Derived names, without touching the kernel: host veth "sh<5 hex node><8 hex pod>" and
 * netns "shoal-<node>-<8 hex pod>". */
void np_pod_names(const struct np_node *n, const char *owner, const char *ifname,
		  char veth[static IFNAMSIZ], char netns[static 128]);

int np_pod_setup(struct np_node *n, const struct np_pod_opts *o, struct np_pod_result *ret,
		 struct err *e);
/* Remove veth (and route), hostPort rules, the netns if ours, and the lease. Idempotent. */
int np_pod_teardown(struct np_node *n, const char *owner, const char *ifname, struct err *e);
/* Verify the kernel state matches the lease; -ENOENT no lease, -EIO with a message on drift. */
int np_pod_check(struct np_node *n, const char *owner, const char *ifname,
		 struct np_pod_result *ret, struct err *e);
/* Persisted state only (no kernel calls): what a restarted daemon reads to re-adopt a pod. */
int np_pod_lookup(struct np_node *n, const char *owner, const char *ifname,
		  struct np_pod_result *ret, struct err *e);

#endif
