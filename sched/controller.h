/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Workload controllers (ReplicaSet, Deployment, Job, garbage collector) on the local replica.
 *
 * Level-triggered and idempotent: a reconcile reads the current state of one object and its
 * dependents from the store and writes what is missing, so running it twice, or on two nodes
 * during an ownership hand-over, converges to the same result. Store watches enqueue keys; a
 * key is reconciled only by its owner (members_owns). Time comes in as a parameter: the daemon
 * drives the manager from libevent, unit tests drive it by hand.
 */
#ifndef SHOAL_SCHED_CONTROLLER_H
#define SHOAL_SCHED_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "sched/members.h"
#include "sched/store.h"

struct ctrl_mgr;

struct ctrl_options {
	struct store *store;
	struct members *members;
	uint64_t (*clock)(void *userdata); /* wall clock, ms; NULL: real clock */
	void *clock_data;
	/* called when work is queued, so the daemon can schedule ctrl_mgr_run() soon */
	void (*kick)(void *userdata);
	void *kick_data;
	/*
	 * Controller handover (docs/consistency.md). When set, a key whose owner moved to this
	 * node in a membership change is reconciled only once this node has caught up with the
	 * previous owner's writes: caught_up(previous owner, change time) is true (an
	 * anti-entropy round with it completed after the change), or settle_ms have passed since
	 * the change (the previous owner died, or cannot be reached). NULL: no handover wait
	 * (each node owns what its own replica holds).
	 */
	bool (*caught_up)(void *userdata, const char *node, uint64_t since_ms);
	void *caught_up_data;
	uint64_t settle_ms;	       /* 0: CTRL_SETTLE_MS */
	/* Events about the objects controllers act on (component: "daemonset-controller", ...);
	 * NULL: none recorded. */
	void (*event)(void *userdata, const char *component, const cJSON *obj, const char *type,
		      const char *reason, const char *message);
	void *event_data;
	uint64_t tombstone_horizon_ms; /* the store's tombstone horizon; 0: 1 h */
};

#define CTRL_SETTLE_MS 5000ULL
#define CTRL_HANDOVER_RECHECK_MS 200ULL

int ctrl_mgr_new(const struct ctrl_options *opts, struct ctrl_mgr **ret);
struct ctrl_mgr *ctrl_mgr_free(struct ctrl_mgr *m);

/* Reconcile every queued key whose time has come; returns how many were reconciled.
 * *next_ms (optional) gets the wall-clock time of the next delayed key (0: none). */
int ctrl_mgr_run(struct ctrl_mgr *m, uint64_t *next_ms);
/* Queue every object of every controlled kind (after start, and when ownership moves). */
void ctrl_mgr_resync(struct ctrl_mgr *m);
/*
 * The live member set changed (call before ctrl_mgr_resync): keys that moved here wait for the
 * handover (see caught_up above).
 */
void ctrl_mgr_members_changed(struct ctrl_mgr *m);
/* Set the handover check later (the replication module may start after the manager). */
void ctrl_mgr_set_caught_up(struct ctrl_mgr *m,
			    bool (*caught_up)(void *userdata, const char *node, uint64_t since_ms),
			    void *userdata);
/* Set the Event recorder (see ctrl_options.event). */
void ctrl_mgr_set_event(struct ctrl_mgr *m,
			void (*event)(void *userdata, const char *component, const cJSON *obj,
				      const char *type, const char *reason, const char *message),
			void *userdata);
/*
 * A node that starts into an existing cluster may hold a stale replica: until it has completed
 * an anti-entropy round with some other member (caught_up) or the settle window passed, it
 * reconciles nothing.
 */
void ctrl_mgr_hold_until_synced(struct ctrl_mgr *m);
/* The store's tombstone horizon (the collector's rule for owners never seen). */
void ctrl_mgr_set_tombstone_horizon(struct ctrl_mgr *m, uint64_t ms);
/* Number of queued keys (for tests). */
size_t ctrl_mgr_pending(struct ctrl_mgr *m);

/*
 * A reconcile that fails (a store error, a conflict) is queued again after a per-key
 * exponential back-off: 5 ms after the first failure in a row, doubling up to 1000 s, reset by
 * the key's next success (client-go's default workqueue rate limiter). An event for the key
 * meanwhile runs it at once, as in client-go.
 */
#define CTRL_BACKOFF_BASE_MS 5ULL
#define CTRL_BACKOFF_MAX_MS 1000000ULL
/* Delay before the retry that follows `failures` (>= 1) failures in a row. */
uint64_t ctrl_backoff_ms(unsigned int failures);

struct ctrl_stats {
	uint64_t reconciles; /* reconciles run */
	uint64_t retries;    /* failed reconciles queued again */
	size_t failing;      /* keys whose last reconcile failed */
	uint64_t handover_waits; /* reconciles put off until a handover caught up */
	uint64_t status_stale;   /* status writes held: another node holds a higher term */
};
void ctrl_mgr_stats_get(struct ctrl_mgr *m, struct ctrl_stats *ret);

#endif
