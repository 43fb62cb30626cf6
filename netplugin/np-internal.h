/* SPDX-License-Identifier: Apache-2.0 */
/* netplugin internals shared between its files: netns, rtnetlink (libnl) and sysctl helpers. */
#ifndef SHOAL_NETPLUGIN_NP_INTERNAL_H
#define SHOAL_NETPLUGIN_NP_INTERNAL_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

#define NP_NETNS_DIR "/run/netns"
#define NP_GATEWAY "169.254.1.1"
#define NP_RTPROT 0xd1 /* routes shoal installs (rtnetlink protocol id, see rt_protos) */

/* A rtnetlink socket bound to one network namespace, remembering the kernel's last error. */
struct np_nl {
	struct nl_sock *sk;
	int kerr;	  /* errno from the last NLMSG_ERROR */
	char extack[256]; /* its extended-ack message, if the kernel sent one */
};

/* Open in the current netns (ns_fd < 0) or inside ns_fd. */
int np_nl_open(struct np_nl *nl, int ns_fd, struct err *e);
void np_nl_close(struct np_nl *nl);
/* Turn a libnl return code into -errno and a message "<what>: <kernel message>". */
int np_nl_fail(struct np_nl *nl, int nlerr, struct err *e, const char *fmt, ...) _printf_(4, 5);

/* Network namespaces bind-mounted under /run/netns (what `ip netns` sees). */
int np_netns_create(const char *name, struct err *e);
int np_netns_delete(const char *name, struct err *e); /* 0 or -ENOENT */
int np_netns_open(const char *path, struct err *e);   /* fd */
bool np_netns_exists(const char *path);

/* Write a sysctl under /proc/sys/ in the calling thread's netns ("net/ipv4/ip_forward"). */
int np_sysctl_write(const char *key, const char *value, struct err *e);

/* Links and routes. */
int np_link_index(struct np_nl *nl, const char *name, int *ret_ifindex, uint8_t mac[6],
		  bool *ret_up);
/* Set up (and the MTU when mtu > 0). */
int np_link_up(struct np_nl *nl, const char *name, int mtu, struct err *e);
int np_link_delete(struct np_nl *nl, const char *name, struct err *e); /* 0 or -ENOENT */
/* Delete every link whose name starts with `prefix` (gone meanwhile is not an error). */
int np_links_delete_prefix(struct np_nl *nl, const char *prefix, struct err *e);
int np_veth_create(struct np_nl *nl, const char *host, const char *peer, int peer_ns_fd,
		   struct err *e);
int np_addr_add(struct np_nl *nl, int ifindex, uint32_t ip, int prefix, struct err *e);
/* ip/32 with scope host: reachable by packets to it, never picked as a source address */
int np_addr_add_host(struct np_nl *nl, int ifindex, uint32_t ip, struct err *e);
bool np_addr_has(struct np_nl *nl, int ifindex, uint32_t ip);
int np_addr_delete(struct np_nl *nl, int ifindex, uint32_t ip, int prefix,
		   struct err *e); /* 0 or -ENOENT */
/* Add/replace a route dst/prefix via gw (0: none, onlink when set) dev ifindex. */
int np_route_replace(struct np_nl *nl, uint32_t dst, int prefix, uint32_t gw, int ifindex,
		     bool link_scope, struct err *e);
int np_route_delete(struct np_nl *nl, uint32_t dst, int prefix, int ifindex, struct err *e);
/* Is there a main-table route dst/prefix out of ifindex (gw must match when non-zero)? */
bool np_route_has(struct np_nl *nl, uint32_t dst, int prefix, uint32_t gw, int ifindex);
int np_neigh_replace(struct np_nl *nl, int ifindex, uint32_t ip, const uint8_t mac[6],
		     struct err *e);

/* Short hex digest of a string (SHA-256 prefix), nchars <= 64. */
void np_hash_hex(const char *s, char *buf, size_t nchars);

#endif
