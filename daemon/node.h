/* SPDX-License-Identifier: Apache-2.0 */
/* The node agent: registers this node's Node object and keeps its status fresh. */
#ifndef SHOAL_DAEMON_NODE_H
#define SHOAL_DAEMON_NODE_H

#include <event2/event.h>
#include "daemon/config.h"
#include "sched/store.h"

struct node_agent;

int node_agent_new(struct event_base *base, struct store *store, const struct config *cfg,
		   struct node_agent **ret);
struct node_agent *node_agent_free(struct node_agent *n);

#endif
