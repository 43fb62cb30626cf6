/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SHOAL_DAEMON_CTRL_LOOP_H
#define SHOAL_DAEMON_CTRL_LOOP_H

#include <event2/event.h>
#include "sched/controller.h"

struct ctrl_loop;
int ctrl_loop_new(struct event_base *base, struct store *store, struct members *members,
		  struct ctrl_loop **ret);
struct ctrl_loop *ctrl_loop_free(struct ctrl_loop *l);
/* This node starts into an existing cluster (it has seeds to join): reconcile nothing until it
 * has caught up with some member, or the settle window passed (ctrl_mgr_hold_until_synced). */
void ctrl_loop_hold_until_synced(struct ctrl_loop *l);
/* Once replication runs: turn on the controller handover wait (repl_caught_up) and give the
 * collector the tombstone horizon. */
void ctrl_loop_set_replication(struct ctrl_loop *l,
			       bool (*caught_up)(void *userdata, const char *node,
						 uint64_t since_ms),
			       void *userdata, uint64_t tombstone_horizon_ms);
/* Prometheus text for /metrics (api_metrics_fn): reconciles, retries, keys backing off. */
int ctrl_loop_metrics(void *userdata, char **text);

#endif
