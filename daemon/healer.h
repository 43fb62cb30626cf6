/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Self-healing in the daemon: sched/heal.h's decisions applied to the replica. Every tick it
 * feeds the members view to the heal module; for every node whose pods became deletable it
 * deletes (tombstones) the pods bound to that node whose key this node owns among the live
 * members, so exactly one node deletes each pod and the controllers replace them elsewhere. The
 * node itself, when it returns, sees the tombstones and stops those pods.
 */
#ifndef SHOAL_DAEMON_HEALER_H
#define SHOAL_DAEMON_HEALER_H

#include <event2/event.h>
#include <stdint.h>

#include "sched/members.h"
#include "sched/store.h"

struct healer_opts {
	const char *node_name;
	uint64_t grace_ms; /* 0: HEAL_DEFAULT_GRACE_MS */
	struct store *store;
	struct members *members;
};

struct healer;

int healer_new(struct event_base *base, const struct healer_opts *o, struct healer **ret);
struct healer *healer_free(struct healer *h);
/* Prometheus text (api_metrics_fn). */
int healer_metrics(void *h, char **text);
/* A request arrived from node (gossip_set_heard): it runs, whatever gossip says (heal_heard). */
void healer_heard(void *h, const char *node);

#endif
