/* SPDX-License-Identifier: Apache-2.0 */
/*
 * API-layer object semantics shared by HTTP handlers and in-process writers (node
 * registration, controllers, the pod runtime): defaulting, validation, uid/timestamps/
 * generation, and the store call. In-process writers go through here, never around it.
 */
#ifndef SHOAL_API_OBJECT_H
#define SHOAL_API_OBJECT_H

#include <cJSON.h>
#include "lib/err.h"
#include "sched/store.h"

/* Create `obj` (apiVersion/kind/metadata given). Takes no ownership. */
int api_obj_create(struct store *s, const cJSON *obj, struct store_obj **ret, struct err *e);
/* Replace (PUT semantics); metadata.resourceVersion in obj is the precondition if set. */
int api_obj_update(struct store *s, const cJSON *obj, struct store_obj **ret, struct err *e);
/* Replace status only. */
int api_obj_update_status(struct store *s, const cJSON *obj, struct store_obj **ret,
			  struct err *e);

#endif
