/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster DNS zone: an in-memory index of Services, Endpoints and Pods (fed from store
 * watches) and the answers to questions about names under the cluster domain, following the
 * Kubernetes DNS-based service discovery specification:
 *
 *   <svc>.<ns>.svc.<domain>            A: the ClusterIP; headless: the ready endpoint IPs;
 *                                      ExternalName: CNAME; SRV: one per port
 *   _<port>._<proto>.<svc>.<ns>.svc.<domain>
 *                                      SRV for a named port: target <svc>.<ns>.svc.<domain>, or
 *                                      for a headless service one per ready endpoint with the
 *                                      endpoint's name as target (A records as additional data)
 *   <ep>.<svc>.<ns>.svc.<domain>       A of one endpoint of a headless service; <ep> is the
 *                                      endpoint's hostname (address.hostname, or the pod's
 *                                      spec.hostname when its spec.subdomain is the service),
 *                                      else its dashed IP (10-244-0-5)
 *   <a-b-c-d>.<ns>.pod.<domain>        A, when a pod in <ns> has that IP
 *   <d.c.b.a>.in-addr.arpa             PTR <svc>.<ns>.svc.<domain> for a ClusterIP (other
 *                                      reverse names are not the zone's: relayed)
 *
 * Names are case-insensitive; answers carry the question's spelling. Unknown names in the zone
 * are NXDOMAIN, known names asked for another type (AAAA, ...) NOERROR with no data; both with
 * the zone's SOA in the authority section so negative answers are cached for the TTL only.
 * Pure: no I/O, no clock; objects are passed in as parsed JSON.
 */
#ifndef SHOAL_DAEMON_DNS_ZONE_H
#define SHOAL_DAEMON_DNS_ZONE_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/dns_msg.h"

#define DNS_ZONE_TTL 5

struct dns_zone;

/* domain: "cluster.local" (case and a trailing dot ignored); ttl 0: DNS_ZONE_TTL */
int dns_zone_new(const char *domain, uint32_t ttl, struct dns_zone **ret);
struct dns_zone *dns_zone_free(struct dns_zone *z);

/* Add/replace (obj) or remove (obj == NULL) one object. Objects the zone cannot use (no name,
 * bad addresses) are indexed with what is usable; only -ENOMEM fails. */
int dns_zone_service_set(struct dns_zone *z, const char *ns, const char *name, const cJSON *svc);
int dns_zone_endpoints_set(struct dns_zone *z, const char *ns, const char *name, const cJSON *ep);
int dns_zone_pod_set(struct dns_zone *z, const char *ns, const char *name, const cJSON *pod);

/* Is qname the cluster domain or below it? */
bool dns_zone_contains(const struct dns_zone *z, const char *qname);

/*
 * Answer a question for a name in the zone (or the reverse name of a ClusterIP): fills *ret
 * (rcode, AA, records). Returns 1 when answered, 0 when the name is not ours (ret untouched:
 * relay it), -ENOMEM.
 */
int dns_zone_answer(struct dns_zone *z, const char *qname, uint16_t qtype, uint16_t qclass,
		    struct dns_answer *ret);

struct dns_zone_stats {
	size_t services, endpoints, pods;
	uint32_t serial; /* bumped on every change; the SOA serial */
};
void dns_zone_stats_get(const struct dns_zone *z, struct dns_zone_stats *ret);

#endif
