/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replication of the store between nodes (issue 11, docs/consistency.md): every node holds
 * every object.
 *
 *   - Push: every local commit (create, update, status, delete) marks its key dirty; after
 *     push_delay_ms (8 ms within 10 ms of the last flush: a stream of writes) the dirty keys'
 *     registers go, batched, to every live member in PUSH requests. The receiver merges them
 *     (store_merge) in batches of at most merge_batch.
 *   - Anti-entropy: every ae_interval_ms (jittered) a round with one random live member:
 *       1. DIGESTS: this node's per-resource digests (whole range) -> the peer answers with
 *          its 1,024 bucket digests of every resource that differs;
 *       2. KEYS: per differing bucket, this node's keys with a hash of their registers -> the
 *          peer answers with the registers (bodies) of its keys that differ or this node
 *          lacks, and the list of keys it lacks or holds differently;
 *       3. the initiator merges the bodies and sends the wanted keys' registers in a final
 *          PUSH of the round (flagged, carrying the round id).
 *     Bytes exchanged grow with the difference, not with the store.
 *   - Tombstones: collected when older than the horizon and every non-removed member holds
 *     this node's state of then: it completed an anti-entropy round with this node since, or
 *     its floor says so transitively (sched/repl_wm.h, watermarks carried by the rounds).
 *
 * Pure logic: the clock, randomness and the network are parameters (struct repl_env), so the
 * simulator (tests/sim/repl.c) drives it with N in-memory stores on a simulated network and the
 * daemon (daemon/repl.c) over gossip's encrypted TCP channel GOSSIP_CH_REPL. Single-threaded:
 * every call on the same thread as the store's.
 *
 * Stable API: add, don't change.
 */
#ifndef SHOAL_SCHED_REPL_H
#define SHOAL_SCHED_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sched/store.h"

struct repl;

struct repl_config {
	uint32_t push_delay_ms;	 /* batch local commits this long; 0: default 2 ms */
	size_t push_max_bytes;	 /* one PUSH request at most (split above); 0: 1 MiB */
	uint32_t ae_interval_ms; /* anti-entropy period, jittered +-25 %; 0: default 2000 */
	uint32_t
	    request_timeout_ms; /* a request with no reply by then counts as failed; 0: 10000 */
	/* registers per store_merge call: keep it well below the store's watch window so a burst
	 * of remote writes does not push watchers out of it; 0: default 2048 */
	size_t merge_batch;
	uint64_t tombstone_horizon_ms; /* 0: default 1 h */
	uint32_t gc_interval_ms;       /* how often collection is considered; 0: 60 s */
	/* this node was away longer than the horizon (its last completed round is older): it
	 * resyncs pull-only (repl_new's caller decides, e.g. from a persisted timestamp) */
	bool pull_only;
};

/* How the caller talks to the network and the clock. */
struct repl_env {
	void *ud;
	/* wall clock in ms since the epoch (the store's clock) */
	uint64_t (*now_ms)(void *ud);
	uint32_t (*rand32)(void *ud);
	/*
	 * Send a request to `node` on the replication channel. Return <0 if it cannot be sent (no
	 * reply will follow); otherwise exactly one repl_reply(r, token, ...) follows later —
	 * never from inside send() — with the reply bytes or a negative errno (timeout, refused).
	 * The request bytes are only valid during the call.
	 */
	int (*send)(void *ud, const char *node, const uint8_t *req, size_t len, uint64_t token);
	/* optional: the same request to n nodes at once (nodes[i] with tokens[i]; err[i] as send()
	 * would return for it), e.g. sealed once for all of them; without it, send() for each */
	void (*send_many)(void *ud, const char *const *nodes, size_t n, const uint8_t *req,
			  size_t len, const uint64_t *tokens, int *err);
	/* repl wants repl_tick() called at (or soon after) at_ms; may be called from any repl
	 * call and from store commits (a local write schedules a push). Optional: without it
	 * the caller polls repl_next_tick(). */
	void (*wake)(void *ud, uint64_t at_ms);
	/* optional: two creates of one name raced and `loser_uid` (created here) lost to
	 * `winner`; the daemon records an Event. Called after the merge, outside callbacks. */
	void (*on_create_lost)(void *ud, const char *resource, const char *ns, const char *name,
			       const char *loser_uid, const char *winner_uid,
			       const char *winner_node);
	/* optional: this thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID), for the anti-entropy
	 * CPU counter (repl_stats.ae_cpu_ns) */
	uint64_t (*cpu_ns)(void *ud);
};

/* Member states as repl sees them (fed from gossip; see repl_member_set). */
enum repl_member_state {
	REPL_MEMBER_ALIVE,
	REPL_MEMBER_SUSPECT, /* still pushed to and chosen for rounds */
	REPL_MEMBER_DEAD,    /* not contacted, but still holds tombstones back */
	REPL_MEMBER_LEFT,    /* removed: forgotten, does not hold tombstones back */
};

/*
 * `self` is this node's name (the store's node_name). Installs a store watch to see local
 * commits; the store must outlive the repl.
 */
int repl_new(const struct repl_config *cfg, const struct repl_env *env, struct store *s,
	     const char *self, struct repl **ret);
struct repl *repl_free(struct repl *r); /* pending sends' replies are ignored afterwards */

/* Tell repl a member's state (self is ignored). New alive members get an immediate round. */
void repl_member_set(struct repl *r, const char *node, enum repl_member_state st);

/*
 * A request from `from` arrived on the replication channel: handle it and build the reply
 * (malloc'ed, the caller frees it). <0: malformed or refused (the caller closes the stream,
 * the sender sees an error).
 */
int repl_serve(struct repl *r, const char *from, const uint8_t *req, size_t len, uint8_t **reply,
	       size_t *reply_len);
/* The reply (len >= 0) or failure (negative errno) of a request sent with env.send. */
void repl_reply(struct repl *r, uint64_t token, const uint8_t *reply, ssize_t len_or_errno);

/* Run what is due: flush pushes, start/time out rounds, collect tombstones. */
void repl_tick(struct repl *r);
/* When repl_tick is next due (ms, wall clock; UINT64_MAX: nothing scheduled). */
uint64_t repl_next_tick(struct repl *r);

/* Start an anti-entropy round with `node` now (tests, joins). -EBUSY if one is running. */
int repl_sync(struct repl *r, const char *node);

/*
 * Whether an anti-entropy round with `node` (started by either side) completed whose start
 * here was at or after since_ms (wall clock): then everything `node` had committed before
 * since_ms is here, and everything here before since_ms is there. Used for controller handover
 * and the tombstone horizon.
 */
bool repl_caught_up(struct repl *r, const char *node, uint64_t since_ms);
/* The wall-clock ms of the start of the last round with `node` that completed (0: none). */
uint64_t repl_last_round(struct repl *r, const char *node);
/* Whether this node completed a pull after starting pull-only (false when not pull_only). */
bool repl_pull_only(struct repl *r);

/*
 * Bookkeeping kept across a restart (the daemon writes it to a file; the store itself is
 * durable): the tombstone floor (tombstones older than it were collected here, so one arriving
 * from a node that has not collected yet is dropped, not stored again) and each member's last
 * completed round (repl_caught_up, the horizon rule). Text, one item a line; *ret malloc'ed.
 */
int repl_state_save(struct repl *r, char **ret, size_t *ret_len);
/*
 * Restore it right after repl_new: values only grow, a member not known yet gets its round
 * once repl_member_set names it; malformed and unknown lines are ignored.
 */
void repl_state_load(struct repl *r, const char *text, size_t len);

/*
 * Binding confirmation (docs/scheduling.md, "Confirming a binding"): a CONFIRM request carries
 * this node's registers of up to REPL_CONFIRM_MAX keys, so the answerer merges them before it
 * answers, whatever reached it before on other connections; the answer is its registers of
 * those keys after that merge. The caller sends it on the replication channel itself (not
 * through env.send). -ENOENT: none of the keys is here.
 */
#define REPL_CONFIRM_MAX 256
int repl_confirm_request(struct repl *r, const char *resource, const char *const *ns,
			 const char *const *names, size_t n, uint8_t **ret, size_t *ret_len);
/*
 * Merge a CONFIRM reply's registers here too; fn(ud, uid, bound) for each live key in it,
 * after the merge: the node the answerer binds that uid to (its sticky binding; NULL: none).
 * A uid asked about and not named was deleted or replaced there. -EBADMSG: not a CONFIRM reply.
 */
int repl_confirm_reply(struct repl *r, const uint8_t *reply, size_t len,
		       void (*fn)(void *ud, const char *uid, const char *bound), void *ud);

struct repl_stats {
	uint64_t pushes_sent, push_bytes_sent, push_regs_sent, push_failures;
	uint64_t pushes_received, push_bytes_received;
	uint64_t rounds_started, rounds_completed, rounds_failed, rounds_served;
	/* rounds that failed because the peer was catching up itself (BUSY), and rounds this
	 * node answered BUSY */
	uint64_t rounds_busy, rounds_refused_busy;
	uint64_t ae_bytes_sent, ae_bytes_received; /* requests and replies of rounds */
	uint64_t digest_mismatches;		   /* differing buckets found */
	uint64_t repairs;			   /* registers applied by anti-entropy */
	uint64_t applied, stale, later, refused;   /* store_merge results, pushes and rounds */
	uint64_t bulk_commits; /* bulk merge transactions committed (store_merge_hold) */
	uint64_t tombstones_collected;
	uint64_t pull_dropped; /* local keys dropped by a pull-only resync (others lack them) */
	uint64_t lag_ms;       /* wall now minus the newest remote write applied (HLC), at apply */
	uint64_t lag_max_ms;   /* the largest lag_ms seen */
	size_t dirty;	       /* keys waiting to be pushed */
	/* now minus the latest time whose state of this node every non-removed member is known
	 * to hold (a tombstone goes about this long after its horizon) */
	uint64_t hold_lag_ms;
	size_t tombstone_snapshots; /* tombstone sets waiting for that */
	/* CPU time (env.cpu_ns) spent on rounds, both sides: digests, key lists and their hashes,
	 * encoding, decoding and merging their registers (not sealing, the socket, or committing a
	 * bulk transaction) */
	uint64_t ae_cpu_ns;
};
void repl_stats_get(struct repl *r, struct repl_stats *ret);

#endif
