/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confirmation of this node's bindings (docs/scheduling.md, "Losing a race"): which pods this
 * node bound may start their containers.
 *
 * Two bindings of one pod can be made at once (two nodes owning the pod's key while membership
 * flaps, a partition); the store keeps the earliest by (HLC, node) everywhere. A node that
 * bound a pod asks every other live member for the binding it holds after merging ours; it
 * may start the pod's containers only once every member asked has answered with ours
 * (CONFIRMED), and gives the pod up without starting anything when one answers with an
 * earlier binding to another node (LOST). A member that fails to answer, goes away, or holds
 * another uid (the pod was re-created) is not waited for, and neither is anyone after
 * SCHED_CONFIRM_WAIT_MS: under a partition availability wins over waiting, and the merge rule
 * still settles a double binding when the sides meet (the loser stops its containers then).
 *
 * Pure logic: the caller passes the clock and does the asking. Single-threaded.
 */
#ifndef SHOAL_SCHED_CONFIRM_H
#define SHOAL_SCHED_CONFIRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_CONFIRM_WAIT_MS 1000
/* how long a LOST uid is remembered (the pod manager keeps it from starting meanwhile; by
 * then the store holds the winning binding) */
#define SCHED_CONFIRM_KEEP_MS 60000

enum sched_confirm_state {
	SCHED_CONFIRM_NONE,	 /* not tracked: the binding stands as far as this node knows */
	SCHED_CONFIRM_PENDING,	 /* answers outstanding: set the pod up, start no container */
	SCHED_CONFIRM_CONFIRMED, /* reported once through the callback, then NONE */
	SCHED_CONFIRM_LOST,	 /* an answer holds an earlier binding to another node */
};

enum sched_confirm_answer {
	SCHED_CONFIRM_HERE,	 /* the member holds our binding (after merging it) */
	SCHED_CONFIRM_ELSEWHERE, /* it holds an earlier binding of the uid to another node */
	SCHED_CONFIRM_UNKNOWN,	 /* no answer (failed, gone) or another uid: not waited for */
};

struct sched_confirm;

/* A uid settled: CONFIRMED or LOST, after waited_ms; timed_out: someone was not waited for
 * past the deadline. Called from the calls below; it must not call back into the tracker. */
typedef void (*sched_confirm_settled_fn)(void *ud, const char *uid, enum sched_confirm_state st,
					 uint64_t waited_ms, bool timed_out);

int sched_confirm_new(sched_confirm_settled_fn fn, void *ud, struct sched_confirm **ret);
struct sched_confirm *sched_confirm_free(struct sched_confirm *c);

/* Before the binding's write (its watchers see it synchronously): PENDING from now, until
 * sched_confirm_ask's members answer or now_ms + SCHED_CONFIRM_WAIT_MS. -EEXIST if tracked. */
int sched_confirm_begin(struct sched_confirm *c, const char *uid, uint64_t now_ms);
/* The binding's write failed: forget the uid (no callback). */
void sched_confirm_cancel(struct sched_confirm *c, const char *uid);
/* The binding committed and went to these members (the live ones but this node): wait for
 * each. None: CONFIRMED at once. A name listed twice is waited for once. */
int sched_confirm_ask(struct sched_confirm *c, const char *uid, const char *const *members,
		      size_t n, uint64_t now_ms);
/* What `member` answered for `uid` (ignored if not waited for or already settled). */
void sched_confirm_answer(struct sched_confirm *c, const char *uid, const char *member,
			  enum sched_confirm_answer a, uint64_t now_ms);
/* `member` is not alive any more: no pending uid waits for it. */
void sched_confirm_member_gone(struct sched_confirm *c, const char *member, uint64_t now_ms);
/* Settle what waited past its deadline (CONFIRMED, timed out) and forget LOST uids older than
 * SCHED_CONFIRM_KEEP_MS. */
void sched_confirm_expire(struct sched_confirm *c, uint64_t now_ms);
/* When sched_confirm_expire next has work (UINT64_MAX: none). */
uint64_t sched_confirm_next_deadline(const struct sched_confirm *c);

enum sched_confirm_state sched_confirm_state(const struct sched_confirm *c, const char *uid);
/* uids PENDING now */
size_t sched_confirm_pending(const struct sched_confirm *c);

#endif
