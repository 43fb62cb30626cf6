/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The target's answer to one pod's nomination: whether it is still owed.
 *
 * The target marks a nomination answered when it decides (bind or reject), before the write
 * that carries the answer runs: a pass decides everything first, then writes. A write that
 * fails (a store error, a conflict with another status write) must clear the mark, or the
 * nomination stays unanswered until the owner's timeout. A failed answer is asked again on
 * the first pass at least SCHED_ANSWER_RETRY_MS after the failure, never in a loop of passes;
 * a new nomination of the pod is a new question and is due at once.
 * Pure logic: the caller passes the clock.
 */
#ifndef SHOAL_SCHED_ANSWER_H
#define SHOAL_SCHED_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#define SCHED_ANSWER_RETRY_MS 1000

struct sched_answer {
	uint64_t answered; /* the nomination answered (its seq + 1), 0 none */
	uint64_t failed;   /* the nomination whose last answer failed to write (seq + 1), 0 none */
	uint64_t retry_ms; /* that one is not answered again before this time */
};

/* Whether nomination seq (the caller's count of the pod's nominations) needs an answer now. */
bool sched_answer_due(const struct sched_answer *a, uint64_t seq, uint64_t now_ms);
/* The target decided on nomination seq; its write is to follow. */
void sched_answer_sent(struct sched_answer *a, uint64_t seq);
/* The write of the answer to nomination seq failed at now_ms: owed again after the delay. */
void sched_answer_failed(struct sched_answer *a, uint64_t seq, uint64_t now_ms);

#endif
