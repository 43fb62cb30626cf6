/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event recording the way the kubelet does it: core/v1 Event objects named <object>.<hex>,
 * with involvedObject, reason, message, type, source {component, host}, count and
 * first/lastTimestamp. A repeat of the same (object, type, reason, message) within the
 * aggregation window bumps count and lastTimestamp on the existing Event instead of creating
 * a new one. Written through api_obj_create/api_obj_update, on the event loop thread.
 *
 * Every Event replicates to every node, so the recorder limits them and they expire:
 *   - rate limit, as client-go's spam filter: per (source, involved object, type, reason) a
 *     token bucket of EVENTS_BURST events refilled one per EVENTS_REFILL_MS; an event over the
 *     limit is dropped (counted), repeats included;
 *   - time to live: an Event is deleted EVENTS_TTL_MS (kube-apiserver's --event-ttl, 1 h) after
 *     its last update, by the node that wrote it last (its spec register's writer), so nodes do
 *     not race to delete the same Events (events_gc_new).
 */
#ifndef SHOAL_DAEMON_EVENTS_H
#define SHOAL_DAEMON_EVENTS_H

#include <stdint.h>
#include <cJSON.h>
#include <event2/event.h>
#include "lib/macro.h"
#include "sched/store.h"

struct events;

#define EVENTS_BURST 25
#define EVENTS_REFILL_MS (5ULL * 60 * 1000)
#define EVENTS_TTL_MS (60ULL * 60 * 1000)

/* component: "kubelet"; host: the node name. */
int events_new(struct store *s, const char *component, const char *host, struct events **ret);
struct events *events_free(struct events *ev);
/* Wall clock for aggregation and the rate limit (tests); NULL: the real one. */
void events_set_clock(struct events *ev, uint64_t (*clock)(void *ud), void *ud);
/* Events dropped by the rate limit so far. */
uint64_t events_dropped(const struct events *ev);

/*
 * Record an event about obj (any object with apiVersion/kind/metadata); field_path
 * (optional) is e.g. "spec.containers{web}". type is "Normal" or "Warning". Failures are
 * logged, not returned: an event is never worth failing the caller.
 */
void events_record(struct events *ev, const cJSON *obj, const char *field_path, const char *type,
		   const char *reason, const char *fmt, ...) _printf_(6, 7);

/*
 * Delete the Events `node` wrote last whose last update is ttl_ms or more before now_ms.
 * Returns how many were deleted, or -errno.
 */
int events_expire(struct store *s, const char *node, uint64_t now_ms, uint64_t ttl_ms);

/* events_expire on the event loop, every ttl/4 (between 1 s and 60 s). */
struct events_gc;
int events_gc_new(struct event_base *base, struct store *s, const char *node, uint64_t ttl_ms,
		  struct events_gc **ret);
struct events_gc *events_gc_free(struct events_gc *g);

#endif
