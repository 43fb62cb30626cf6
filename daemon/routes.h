/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cross-node pod network: every other member's pod CIDR routed to that member, from the
 * local members view (gossip address + meta.podCIDR), so pod -> pod across nodes keeps both
 * addresses (the pod masquerade rule leaves the cluster CIDR alone).
 *
 * Two modes, one per cluster:
 *  - direct (default): "<podCIDR> via <member IP>" in the main table, for nodes on one link;
 *  - vxlan (--overlay vxlan): a VXLAN device "shoal-vxlan" (MTU = underlay MTU - 50), and per
 *    member a permanent FDB entry (its VTEP MAC -> its IP), a permanent neighbour (the first
 *    address of its pod CIDR -> its VTEP MAC) and "<podCIDR> via <first address> dev shoal-vxlan
 *    onlink" — flannel's vxlan backend without a MAC exchange: a node's VTEP MAC is derived from
 *    its underlay IP (0e:5c:a.b.c.d), so the view already holds everything.
 *
 * Alive and suspect members are routed (a suspect is usually only slow: withdrawing its routes
 * would cut its healthy pods off); dead and departed ones are withdrawn. Routes carry their own
 * rtnetlink protocol id (ROUTES_RTPROT) so a restarted daemon recognises them: it keeps them while
 * gossip rejoins, and removes the ones no member asks for once the view has settled.
 */
#ifndef SHOAL_DAEMON_ROUTES_H
#define SHOAL_DAEMON_ROUTES_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "sched/members.h"

#define ROUTES_RTPROT 0xd2 /* routes to other nodes' pod CIDRs */
#define ROUTES_VXLAN_DEV "shoal-vxlan"
#define ROUTES_VXLAN_OVERHEAD 50 /* outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 */

enum routes_overlay {
	ROUTES_DIRECT,
	ROUTES_VXLAN,
};

/* One other member's pod CIDR and where it lives: the pure plan. */
struct routes_peer {
	char name[254];
	uint32_t net; /* pod CIDR network, host order */
	int prefix;
	uint32_t ip; /* the member's gossip (underlay) address, host order */
};

/*
 * The routes the members view asks for: alive and suspect members other than self with an IPv4
 * address and a valid meta.podCIDR that does not overlap own_cidr (nor a CIDR an earlier member,
 * by name, already has), sorted by name. *ret is malloc'ed (NULL when empty). Pure.
 */
int routes_plan(const struct members *m, uint32_t own_net, int own_prefix, struct routes_peer **ret,
		size_t *nret);

/* The VTEP MAC a node with underlay address ip (host order) uses: 0e:5c + the address. */
void routes_vtep_mac(uint32_t ip, uint8_t mac[6]);

struct routes_opts {
	const char *node_name;
	const char *pod_cidr; /* this node's (never routed elsewhere) */
	enum routes_overlay overlay;
	uint16_t vxlan_port; /* default 4789 */
	uint32_t vxlan_vni;  /* default 1 */
	struct members *members;
};

struct routes;

/* Set up (the VXLAN device in vxlan mode: the members view's own address must be known) and
 * follow the members view on the event loop. */
int routes_new(struct event_base *base, const struct routes_opts *o, struct routes **ret,
	       struct err *e);
/* Routes stay in place when the daemon stops (pods keep talking while it restarts). */
struct routes *routes_free(struct routes *r);
/* The MTU pods must use: underlay - 50 in vxlan mode, 0 (the kernel's default) otherwise. */
int routes_pod_mtu(const struct routes *r);
/* Prometheus text (api_metrics_fn). */
int routes_metrics(void *r, char **text);
/* Remove every route this module installs and the VXLAN device, in the current netns. */
int routes_teardown(struct err *e);

#endif
