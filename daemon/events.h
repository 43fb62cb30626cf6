/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event recording the way the kubelet does it: core/v1 Event objects named <object>.<hex>,
 * with involvedObject, reason, message, type, source {component, host}, count and
 * first/lastTimestamp. A repeat of the same (object, type, reason, message) within the
 * aggregation window bumps count and lastTimestamp on the existing Event instead of creating
 * a new one. Written through api_obj_create/api_obj_update, on the event loop thread.
 */
#ifndef SHOAL_DAEMON_EVENTS_H
#define SHOAL_DAEMON_EVENTS_H

#include <cJSON.h>
#include "lib/macro.h"
#include "sched/store.h"

struct events;

/* component: "kubelet"; host: the node name. */
int events_new(struct store *s, const char *component, const char *host, struct events **ret);
struct events *events_free(struct events *ev);

/*
 * Record an event about obj (any object with apiVersion/kind/metadata); field_path
 * (optional) is e.g. "spec.containers{web}". type is "Normal" or "Warning". Failures are
 * logged, not returned: an event is never worth failing the caller.
 */
void events_record(struct events *ev, const cJSON *obj, const char *field_path, const char *type,
		   const char *reason, const char *fmt, ...) _printf_(6, 7);

#endif
