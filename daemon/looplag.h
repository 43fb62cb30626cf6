/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event-loop lag: how late a periodic timer fires. A callback that blocks the loop, or a
 * process starved of CPU, delays every other event by as much; gossip probes go unanswered
 * (a probe waits 100 ms, a probe round 200 ms) and the node gets suspected. Exported on
 * /metrics as shoal_loop_lag_seconds (histogram), shoal_loop_lag_max_seconds and
 * shoal_loop_stalls_total. A lag of LOOPLAG_STALL_MS or more is logged with how the loop's
 * thread spent it (/proc/thread-self/schedstat): running (a callback was busy), waiting for a
 * CPU (the machine is overloaded), or neither (blocked in a syscall, a page fault, a lock).
 */
#ifndef SHOAL_DAEMON_LOOPLAG_H
#define SHOAL_DAEMON_LOOPLAG_H

#include <event2/event.h>

#define LOOPLAG_PERIOD_MS 50
#define LOOPLAG_STALL_MS 250

struct looplag;

int looplag_new(struct event_base *base, struct looplag **ret);
struct looplag *looplag_free(struct looplag *l);
/* Prometheus text (api_metrics_fn) */
int looplag_metrics(void *userdata, char **text);

#endif
