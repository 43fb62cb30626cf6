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

/*
 * Delete with Kubernetes semantics: an object with finalizers, or a pod bound to a node with a
 * grace period > 0, gets metadata.deletionTimestamp (+ deletionGracePeriodSeconds) and stays until
 * its finalizers are gone / its node confirms; otherwise it is removed at once.
 * propagation "Foreground" adds the foregroundDeletion finalizer, "Orphan" the orphan finalizer
 * (the garbage collector then handles dependents); "Background" (default) removes the owner and
 * lets the collector delete dependents.
 */
struct api_delete_opts {
	int64_t grace_seconds;   /* -1: the object's own default */
	const char *propagation; /* NULL, "Background", "Foreground", "Orphan" */
	uint64_t expect_rv;      /* 0: none */
	const char *expect_uid;  /* NULL: none */
	bool dry_run;            /* check everything, change nothing; *ret is the object */
};
int api_obj_delete(struct store *s, const char *resource, const char *ns, const char *name,
		   const struct api_delete_opts *opts, struct store_obj **ret, struct err *e);

/*
 * Bind a pod to a node (the pods/binding subresource): sets spec.nodeName once and the
 * PodScheduled=True condition. uid (optional) is a precondition. 409 Conflict if the pod is
 * already bound or being deleted.
 */
int api_obj_bind(struct store *s, const char *ns, const char *name, const char *uid,
		 const char *node, struct store_obj **ret, struct err *e);

#endif
