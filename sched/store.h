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
	uint64_t born;        /* HLC of this uid's create: orders uids (see store_merge) */
	uint64_t spec_hlc;    /* version of the spec register */
	char *spec_node;      /* node that wrote the spec register */
	uint64_t status_hlc;  /* version of the status register (0: never written) */
	char *status_node;
	uint64_t status_term; /* the status register's ownership term (store_update_status_term) */
	char *json;           /* composed object text, NUL-terminated */
	size_t json_len;
	/* indexed fields for selectors (may be NULL/empty) */
	cJSON *labels;        /* object of string->string; owned, read-only */
	char *node_name;      /* spec.nodeName */
	char *phase;          /* status.phase */
	/* the sticky fields' merge state (binding, deletion, removed finalizers) as canonical
	 * JSON, NULL when none: replicated with the spec register (docs/consistency.md) */
	char *sticky;
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
	/* a new store's first resourceVersion is seq_base + 1; without seq_base_set it is random
	 * (below 2^48), so a resourceVersion from another node matches nothing here */
	uint64_t seq_base;
	bool seq_base_set;
	/* remote versions whose clock is further ahead of ours are refused; 0: 500 ms */
	uint64_t max_clock_ahead_ms;
	/* fault injection for tests: called before each commit is written; a negative return
	 * fails that write with it, as a failed SQLite write would (nothing changes) */
	int (*fault)(void *userdata, const char *resource, const char *ns, const char *name);
	void *fault_data;
	/* tests: merge every remote spec body by parsing and printing it again, never as
	 * received (store_merge.c), to compare the two */
	bool merge_reprint;
};

int store_open(const struct store_options *opts, struct store **ret);
struct store *store_close(struct store *s); /* returns NULL */

/* Current commit sequence (the resourceVersion a list returns). */
uint64_t store_rv(struct store *s);
/* The writer id this store stamps its register versions with (store_options.node_name). */
const char *store_node_name(const struct store *s);
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

/* Replace the status register only (status subresource, node reports); the write keeps the
 * register's ownership term. */
int store_update_status(struct store *s, const char *resource, const char *ns, const char *name,
			const cJSON *status, uint64_t expect_rv, struct store_obj **ret,
			struct err *e);

/*
 * A controller's status write at its ownership term (docs/consistency.md, "Status register"):
 * the register orders by (term, hlc, node). -ESTALE (409 Conflict) and nothing committed when
 * the register holds a higher term (a newer owner wrote it). A term above the register's
 * commits even an unchanged status (the owner claims the register), as a visible change.
 */
int store_update_status_term(struct store *s, const char *resource, const char *ns,
			     const char *name, const cJSON *status, uint64_t term,
			     struct store_obj **ret, struct err *e);

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
	bool merged;                /* applied by store_merge*() from another node's registers */
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
 * from_rv > store_rv() is not from this node's sequence: -ENODATA too (clients re-list).
 */
int store_watch_add(struct store *s, const char *resource, uint64_t from_rv, store_watch_fn fn,
		    void *userdata, struct store_watch **ret);
void store_watch_cancel(struct store_watch *w);

/* --- replication (docs/consistency.md) --- */
enum store_reg_kind { STORE_REG_SPEC = 1, STORE_REG_STATUS };

/*
 * One register of one key, as replication carries it. Spec registers order by
 * (born, uid), then a tombstone above any live write of its uid, then (hlc, node); status
 * registers apply only to the spec's uid, by (term, hlc, node).
 */
struct store_reg {
	enum store_reg_kind kind;
	const char *resource, *ns, *name;
	const char *uid;
	uint64_t born; /* HLC of the uid's create */
	uint64_t hlc;  /* the register's version, with node */
	const char *node;
	bool tombstone;   /* spec: the uid is deleted (body ignored) */
	const char *body; /* spec register text, or status text (NULL: no status) */
	size_t body_len;
	const char *sticky; /* spec: sticky fields' state (store_obj.sticky), NULL: none */
	uint64_t rv;        /* listing only: the local commit of the key's last change */
	uint64_t term;      /* status: the ownership term (0: none) */
};

struct store_merge_stats {
	size_t applied; /* committed (watch event, or a silent version-only change) */
	size_t stale;   /* not newer: nothing committed */
	size_t later;   /* a status for a uid whose spec has not arrived: send again later */
	size_t refused; /* clock too far ahead, or malformed */
};

/*
 * Merge registers from other nodes, in order, in one transaction and one notification pass.
 * A register not newer than the local one commits nothing; an applied one gets a local
 * resourceVersion and reaches watches like a local write. Every version received advances the
 * local HLC; one more than max_clock_ahead_ms ahead of the wall clock is refused (counted in
 * store_stats.clock_refused). Returns the number applied, or <0 if the transaction failed
 * (the batch may then be half in memory; anti-entropy resends it). st is optional.
 */
int store_merge(struct store *s, const struct store_reg *regs, size_t n,
		struct store_merge_stats *st);
/* One register: 1 applied, 0 stale, -EAGAIN later, -ERANGE clock ahead, -EINVAL malformed. */
int store_merge_register(struct store *s, const struct store_reg *reg);

/*
 * A bulk merge (a catch-up of many registers): store_merge_hold() merges like store_merge()
 * but into one SQLite transaction left open across calls, and holds the watch events until
 * store_merge_commit() (or any other write of the store, which commits it first) commits it;
 * then they are delivered in rv order. Before the transaction begins the persisted commit
 * floor is raised by STORE_BULK_MAX, and a bulk is committed before it would hand out more
 * rvs than that: a process killed before the commit loses the held merges (anti-entropy
 * brings them again) but never reuses a resourceVersion, even one a GET or LIST showed
 * (reads see held merges; watchers do not). n <= STORE_BULK_MAX. Until the commit the
 * caller must not count the registers as merged (e.g. complete an anti-entropy round). On a
 * failure (<0) the whole bulk is rolled back and its events delivered, as store_merge's.
 */
#define STORE_BULK_MAX 16384
int store_merge_hold(struct store *s, const struct store_reg *regs, size_t n,
		     struct store_merge_stats *st);
int store_merge_commit(struct store *s);
bool store_merge_held(const struct store *s);

/*
 * Every key of `resource` (NULL: all) including tombstones, in (resource, ns, name) order,
 * optionally only digest buckets [bucket_lo, bucket_hi). spec->body points into a scratch
 * buffer valid during the callback; status is NULL for tombstones and objects without status.
 * fn returns 0 to go on, 1 to stop, <0 to abort with that error; it must not write to the
 * store (merge what it yields after the listing).
 */
#define STORE_DIGEST_BUCKETS 1024
typedef int (*store_reg_fn)(const struct store_reg *spec, const struct store_reg *status,
			    void *userdata);
int store_reg_list(struct store *s, const char *resource, uint32_t bucket_lo, uint32_t bucket_hi,
		   store_reg_fn fn, void *userdata);
/* The registers of one key (live or tombstone) like store_reg_list; -ENOENT if none. */
int store_reg_get(struct store *s, const char *resource, const char *ns, const char *name,
		  store_reg_fn fn, void *userdata);
/* The resources this store has ever held a key of (index i < count), in no set order. */
size_t store_resource_count(struct store *s);
const char *store_resource_name(struct store *s, size_t i);
/* Digest bucket of a key (a cluster-constant hash: equal on every node). */
uint32_t store_key_bucket(const char *resource, const char *ns, const char *name);
/*
 * Digest of `resource`'s keys in buckets [lo, hi): a cluster-constant keyed hash over every
 * register (versions, uid, bodies, sticky state, tombstones), kept incrementally, so equal
 * digests mean equal replicas for that range.
 */
uint64_t store_digest(struct store *s, const char *resource, uint32_t lo, uint32_t hi);
/*
 * A stable text dump of the registers of `resource` (NULL: all): one line per key in key
 * order with uid, versions, tombstone flag, sticky state and a digest of the bodies. Equal
 * replicas give byte-identical dumps. *ret is malloc'ed, NUL-terminated.
 */
int store_registers_dump(struct store *s, const char *resource, char **ret, size_t *ret_len);

/*
 * Drop tombstones whose version is older than horizon_hlc, in one transaction that also
 * raises the persisted commit floor, so a restart never reuses their resourceVersions.
 * Returns the number dropped.
 */
int store_tombstones_collect(struct store *s, uint64_t horizon_hlc);

/* Committed events count, for stats. */
struct store_stats {
	uint64_t commits;
	size_t objects;
	size_t tombstones;
	size_t watchers;
	uint64_t merged, merge_stale, clock_refused;
	uint64_t merged_as_received; /* of merged: spec bodies kept as received, not reprinted */
	uint64_t merged_unparsed;    /* of those: new keys whose body was not even parsed */
};
void store_stats_get(struct store *s, struct store_stats *ret);

#endif
