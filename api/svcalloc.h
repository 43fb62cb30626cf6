/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service address allocation on create and on type changes: spec.clusterIP from the service
 * CIDR (or "None" for headless), nodePorts from 30000-32767 for NodePort/LoadBalancer services. The allocator
 * keeps bitmaps of what the store's services hold, maintained from a store watch, so a create
 * costs O(1) whatever the number of services.
 */
#ifndef SHOAL_API_SVCALLOC_H
#define SHOAL_API_SVCALLOC_H

#include <cJSON.h>
#include "lib/err.h"
#include "sched/store.h"

#define SVC_NODEPORT_MIN 30000
#define SVC_NODEPORT_MAX 32767

/* Start allocating for services in `s` from `cidr` (e.g. 10.96.0.0/12). */
int svcalloc_init(struct store *s, const char *cidr, struct err *e);
void svcalloc_fini(void);
/* Before defaulting and validating an update of `old` to `svc` (registry strategy's
 * dropTypeDependentFields + patchAllocatedValues): on a change to a type that needs no
 * clusterIP (ExternalName) or no nodePorts (ClusterIP, ExternalName) drop the ones the update
 * left as they were, with externalTrafficPolicy once nothing is externally accessible; between
 * types that need them, an update that leaves them out keeps the old ones (nodePorts matched
 * by port name). */
void svcalloc_prepare_update(const cJSON *old, cJSON *svc);
/* Fill/check spec.clusterIP(s) and nodePorts of a Service about to be created (old NULL) or
 * updated from `old`: what the new type needs and the old object did not hold is allocated
 * (a clusterIP on a change from ExternalName, nodePorts on a change to NodePort or
 * LoadBalancer); what the old object holds stays its own. Released addresses go back to the
 * pool when the update is stored. -EINVAL (422) for an address outside the range or taken,
 * -ENOSPC when the range is full. */
int svcalloc_assign(const cJSON *old, cJSON *svc, struct err *e);

/*
 * Re-address a Service that holds a value another, earlier Service holds too (replicas merged
 * after a race or a partition; sched/claims.h decides which one loses): a new clusterIP when
 * lose_ip, a new nodePort for each port whose nodePort is in lose_ports; the rest stays. svc
 * (the stored object) is changed in place. -ENOSPC when the range is full.
 */
int svcalloc_readdress(cJSON *svc, bool lose_ip, const int64_t *lose_ports, size_t nlose,
		       struct err *e);

#endif
