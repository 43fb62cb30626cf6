/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster DNS for the pods of this node: a libevent evdns server on UDP, and a TCP listener on
 * the same address and port (length-prefixed messages, several per connection), that answer names
 * under the cluster domain from an in-memory index of the local replica's Services, Endpoints
 * and Pods (kept current by store watches, see dns_zone.h), and relays every other question to
 * the node's upstream resolvers (the nameservers of /etc/resolv.conf or a configured file).
 *
 * The default address is the node's reserved pod-CIDR address (network + 1, e.g. 10.244.0.1)
 * port 53, which pods' resolv.conf names. The socket is bound with IP_FREEBIND, so the server
 * starts before that address is put on a host interface (netplugin's np_node_setup puts it on
 * the node's loopback) and answers as soon as it is there.
 *
 * Upstream failures and timeouts are SERVFAIL. An upstream that is this server itself (our
 * address and port; with a wildcard listen address, any local address on our port) is never
 * used. UDP replies are kept within 512 bytes (evdns 2.1 has no EDNS) and set TC when records had
 * to go; over TCP answers go whole (up to 64 KiB) and relayed questions go upstream over TCP.
 */
#ifndef SHOAL_DAEMON_DNS_H
#define SHOAL_DAEMON_DNS_H

#include <event2/event.h>
#include <stdint.h>

#include "lib/err.h"
#include "sched/store.h"

struct dns_server_options {
	const char *listen;	 /* "10.244.0.1:53", "[fd00::1]:53"; required */
	const char *domain;	 /* NULL: cluster.local */
	const char *resolv_conf; /* upstreams; NULL: /etc/resolv.conf; "": no forwarding */
	uint32_t ttl;		 /* 0: 5 seconds */
	int upstream_timeout_ms; /* per attempt; 0: 2000 */
};

struct dns_server_stats {
	uint64_t queries;
	uint64_t local;	    /* answered from the zone */
	uint64_t forwarded; /* sent upstream */
	uint64_t servfail;  /* upstream failed/timed out, or no upstream */
	size_t upstreams;
};

struct dns_server;

/* Index the store and start answering on opts->listen. -errno with a message in e. */
int dns_server_new(struct event_base *base, struct store *store,
		   const struct dns_server_options *opts, struct dns_server **ret, struct err *e);
/* Stops watches, drops queries still waiting for an upstream, closes sockets. */
struct dns_server *dns_server_free(struct dns_server *s);
void dns_server_stats_get(const struct dns_server *s, struct dns_server_stats *ret);

#endif
