/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service address allocation at create time: spec.clusterIP from the service CIDR (or "None"
 * for headless), nodePorts from 30000-32767 for NodePort/LoadBalancer services. The allocator
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
/* Fill/check spec.clusterIP(s), ipFamilies, nodePorts of a Service about to be created.
 * -EINVAL (422) for an address outside the range or taken, -ENOSPC when the range is full. */
int svcalloc_assign(const cJSON *old, cJSON *svc, struct err *e);

#endif
