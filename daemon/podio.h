/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wires the API's pod I/O (api/podio.h: logs, exec, port-forward, images) to this node: log
 * files and container ids by the pod manager's conventions (daemon/pods.h), pods' network
 * namespaces from the pod manager itself (podio_set_pods), and a crun handle and an
 * image store handle on the same directories the pod manager uses (both handles are only
 * paths plus a lock fd, so a second pair is as good as sharing the pod manager's).
 * shoald: podio_new() after api_server_new(); podio_free() after api_server_free().
 */
#ifndef SHOAL_DAEMON_PODIO_H
#define SHOAL_DAEMON_PODIO_H

#include "api/server.h"
#include "daemon/config.h"
#include "lib/err.h"

struct podio;

struct pods;

int podio_new(struct api_server *api, const struct config *cfg, struct podio **ret,
	      struct err *e);
/* The pod manager that knows pods' network namespaces (port-forward); NULL before it exists
 * and before it is freed. */
void podio_set_pods(struct podio *p, struct pods *m);
struct podio *podio_free(struct podio *p);

#endif
