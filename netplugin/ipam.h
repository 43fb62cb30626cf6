/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPAM for one node's pod CIDR. Two halves:
 *  - pure range logic (parse a CIDR, pick the next free address round-robin) that unit tests
 *    and the simulator drive without touching disk;
 *  - a lease store in SQLite (<dir>/ipam.db, WAL) so an address is never handed out twice,
 *    even across daemon restarts and concurrent shoal-cni invocations. A lease also records
 *    how the pod was plumbed (netns, host veth) so a restarted daemon re-adopts pods without
 *    re-plumbing them.
 * Addresses are IPv4 in host byte order.
 */
#ifndef SHOAL_NETPLUGIN_IPAM_H
#define SHOAL_NETPLUGIN_IPAM_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "lib/err.h"

struct ipam_range {
	uint32_t network; /* network address */
	int prefix;	  /* 8..30 */
	uint32_t first;	  /* first allocatable address (inclusive) */
	uint32_t last;	  /* last allocatable address (inclusive) */
	uint32_t gateway; /* reserved node address in the CIDR (network + 1), never leased */
};

/*
 * Parse "10.244.0.0/24" and optional range bounds ("" or NULL: whole subnet). The network
 * address, network+1 (reserved for the node) and the broadcast address are never allocatable.
 */
int ipam_range_parse(const char *cidr, const char *range_start, const char *range_end,
		     struct ipam_range *ret, struct err *e);
bool ipam_range_contains(const struct ipam_range *r, uint32_t ip);
/* Allocatable address count. */
uint32_t ipam_range_size(const struct ipam_range *r);
/*
 * Pure allocator: the first address after `last` (wrapping) for which used() is false, so a
 * released address comes back only after every other one has been used (round-robin, like
 * host-local). `last` outside the range starts at r->first. -ENOSPC when all are in use.
 */
int ipam_range_next(const struct ipam_range *r, uint32_t last,
		    bool (*used)(uint32_t ip, void *userdata), void *userdata, uint32_t *ret);

/* "10.244.0.5" <-> host-order address. */
int ipam_addr_parse(const char *s, uint32_t *ret);
void ipam_addr_format(uint32_t ip, char buf[static 16]);

struct ipam_lease {
	uint32_t ip;
	char owner[256];       /* pod uid or CNI container id */
	char ifname[IFNAMSIZ]; /* interface name inside the pod */
	char netns[256];       /* path of the pod netns (/run/netns/<name> or CNI_NETNS) */
	char host_veth[IFNAMSIZ];
	bool netns_owned; /* netplugin created the netns and removes it on teardown */
	int64_t created;  /* unix seconds */
};

struct ipam;

/* Open (create) <dir>/ipam.db for range r. */
int ipam_open(const char *dir, const struct ipam_range *r, struct ipam **ret, struct err *e);
struct ipam *ipam_close(struct ipam *ipam);
/*
 * Lease an address for lease->owner + lease->ifname, storing the other fields as given.
 * Returns 0 and fills lease->ip with a new address, or 1 if that owner/ifname already holds a
 * lease (lease is then overwritten with the stored one). -ENOSPC when the range is full,
 * -EBUSY when the database stayed locked (caller may retry).
 */
int ipam_allocate(struct ipam *ipam, struct ipam_lease *lease, int64_t now, struct err *e);
/* Release owner/ifname's lease; -ENOENT if there was none. */
int ipam_release(struct ipam *ipam, const char *owner, const char *ifname, struct err *e);
/* Lookup by owner/ifname; -ENOENT if none. */
int ipam_lookup(struct ipam *ipam, const char *owner, const char *ifname, struct ipam_lease *ret,
		struct err *e);
/* All leases ordered by address; *ret is malloc'd (free()), may be NULL when *n == 0. */
int ipam_list(struct ipam *ipam, struct ipam_lease **ret, size_t *n, struct err *e);

#endif
