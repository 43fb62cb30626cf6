/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SHOAL_DAEMON_CTRL_LOOP_H
#define SHOAL_DAEMON_CTRL_LOOP_H

#include <event2/event.h>
#include "sched/controller.h"

struct ctrl_loop;
int ctrl_loop_new(struct event_base *base, struct store *store, struct members *members,
		  struct ctrl_loop **ret);
struct ctrl_loop *ctrl_loop_free(struct ctrl_loop *l);
/* Prometheus text for /metrics (api_metrics_fn): reconciles, retries, keys backing off. */
int ctrl_loop_metrics(void *userdata, char **text);

#endif
