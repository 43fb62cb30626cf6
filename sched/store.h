/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local replica: every API object, persisted in SQLite (WAL), indexed in memory.
 *
 * An object is two last-writer-wins registers, each with its own version (HLC + writer node):
 *   - "spec": the whole object except `status` (metadata + spec + data ...), written by API
 *     create/update/patch/delete;
 *   - "status": the `status` field, written through the status subresource or by its owner.
 * so a user's edit and a node's status report never clobber each other (the gossip issue
 * replicates registers one by one). Deletes are tombstones.
 *
 * Every committed change gets the next value of a node-local commit sequence; that number is
 * the object's `metadata.resourceVersion` and drives watches. The store is single-threaded (the
 * daemon's event loop); it takes its wall clock as a parameter so tests can drive it.
 *
 * Objects handed out are immutable, reference-counted snapshots: hold one with store_obj_ref()
 * and release with store_obj_unref(). `json` is the composed object (spec register + status),
 * serialized with metadata.resourceVersion set, ready to be written to a client.
 */
#ifndef SHOAL_SCHED_STORE_H
#define SHOAL_SCHED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

#include "lib/err.h"

struct store;

struct store_obj {
	int refs;
	char *resource; /* group-qualified plural: "pods", "deployments.apps", "jobs.batch" */
	char *ns;       /* "" for cluster-scoped objects */
	char *name;
	char *uid;
	uint64_t rv;          /* commit sequence of the last change (metadata.resourceVersion) */
	uint64_t spec_hlc;    /* version of the spec register */
	char *spec_node;      /* node that wrote the spec register */
	uint64_t status_hlc;  /* version of the status register (0: never written) */
	char *status_node;
	char *json;           /* composed object text, NUL-terminated */
	size_t json_len;
	/* indexed fields for selectors (may be NULL/empty) */
	cJSON *labels;        /* object of string->string; owned, read-only */
	char *node_name;      /* spec.nodeName */
	char *phase;          /* status.phase */
};

struct store_obj *store_obj_ref(struct store_obj *o);
struct store_obj *store_obj_unref(struct store_obj *o); /* returns NULL */
/* Parse o->json into a fresh tree the caller owns (NULL on OOM). */
cJSON *store_obj_parse(const struct store_obj *o);

typedef uint64_t (*store_clock_fn)(void *userdata); /* wall clock, ms since epoch */

struct store_options {
	const char *path;       /* SQLite file; NULL or ":memory:" for an in-memory store */
	const char *node_name;  /* writer id for register versions */
	store_clock_fn clock;   /* NULL: CLOCK_REALTIME */
	void *clock_data;
	size_t watch_window;    /* events kept for watch resume; 0: default (see store.c) */
	/* bytes of superseded snapshots the watch window may keep alive; 0: default 8 MiB */
	size_t watch_window_bytes;
};

int store_open(const struct store_options *opts, struct store **ret);
struct store *store_close(struct store *s); /* returns NULL */

/* Current commit sequence (the resourceVersion a list returns). */
uint64_t store_rv(struct store *s);
/* Oldest resourceVersion a watch can resume from; older -> 410 Gone. */
uint64_t store_rv_oldest(struct store *s);

/* -ENOENT if missing. *ret is a new reference. */
int store_get(struct store *s, const char *resource, const char *ns, const char *name,
	      struct store_obj **ret);

/*
 * Iterate objects of `resource` in (ns, name) order, optionally only namespace `ns`
 * (NULL: all namespaces), starting strictly after (after_ns, after_name) when given (for
 * `continue` tokens). The callback returns 0 to go on, 1 to stop, <0 to abort with that error.
 */
typedef int (*store_iter_fn)(struct store_obj *o, void *userdata);
int store_list(struct store *s, const char *resource, const char *ns, const char *after_ns,
	       const char *after_name, store_iter_fn fn, void *userdata);
/* Number of live objects of a resource (all namespaces when ns is NULL). */
size_t store_count(struct store *s, const char *resource, const char *ns);

/*
 * Create: `obj` is the complete object the API layer built (uid, creationTimestamp, generation
 * already set). Its `status` (if any) becomes the status register. -EEXIST if the name is taken.
 * Does not take ownership of obj. *ret (optional) gets the stored snapshot.
 */
int store_create(struct store *s, const char *resource, const char *ns, const char *name,
		 const cJSON *obj, struct store_obj **ret, struct err *e);

/*
 * Replace the spec register (everything but `status`; a `status` in obj is ignored).
 * expect_rv: 0 = unconditional; otherwise -ECANCELED (409 Conflict) unless it equals the
 * object's current rv. -ENOENT if missing. If the new spec register equals the old one
 * byte-for-byte after serialization, nothing is committed and *ret is the current object.
 */
int store_update(struct store *s, const char *resource, const char *ns, const char *name,
		 const cJSON *obj, uint64_t expect_rv, struct store_obj **ret, struct err *e);

/* Replace the status register only (status subresource, node reports, controllers). */
int store_update_status(struct store *s, const char *resource, const char *ns, const char *name,
			const cJSON *status, uint64_t expect_rv, struct store_obj **ret,
			struct err *e);

/*
 * Delete: commits a tombstone. expect_rv/expect_uid (optional) are DeleteOptions
 * preconditions. *ret gets the final state of the object (with the tombstone's rv), which
 * the API returns and watchers see as DELETED.
 */
int store_delete(struct store *s, const char *resource, const char *ns, const char *name,
		 uint64_t expect_rv, const char *expect_uid, struct store_obj **ret,
		 struct err *e);

/* --- watch --- */
enum store_event_type { STORE_ADDED = 1, STORE_MODIFIED, STORE_DELETED };

struct store_event {
	enum store_event_type type;
	uint64_t rv;
	struct store_obj *obj;      /* new state (for DELETED: final state) */
	struct store_obj *old;      /* previous state, NULL for ADDED */
};

typedef void (*store_watch_fn)(const struct store_event *ev, void *userdata);
struct store_watch;

/*
 * Subscribe to every commit of `resource` (NULL: all resources). If from_rv > 0, first
 * replays (synchronously, before returning) the retained events with rv > from_rv; -ENODATA
 * (410 Gone) if from_rv < store_rv_oldest(). Callbacks run synchronously after each commit.
 * A callback may call store_watch_cancel() on its own watch (or others), add watches and
 * commit; commits made from a callback are delivered after the current event, in rv order.
 * *ret is set before the replay; it is NULL on return if a replay callback cancelled it.
 * from_rv > store_rv() is treated as "from now".
 */
int store_watch_add(struct store *s, const char *resource, uint64_t from_rv, store_watch_fn fn,
		    void *userdata, struct store_watch **ret);
void store_watch_cancel(struct store_watch *w);

/* Committed events count, for stats. */
struct store_stats {
	uint64_t commits;
	size_t objects;
	size_t tombstones;
	size_t watchers;
};
void store_stats_get(struct store *s, struct store_stats *ret);

#endif
