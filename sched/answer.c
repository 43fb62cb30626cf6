// SPDX-License-Identifier: Apache-2.0
#include "sched/answer.h"

bool sched_answer_due(const struct sched_answer *a, uint64_t seq, uint64_t now_ms)
{
	if (a->answered == seq + 1)
		return false;
	return a->failed != seq + 1 || now_ms >= a->retry_ms;
}

void sched_answer_sent(struct sched_answer *a, uint64_t seq)
{
	a->answered = seq + 1;
}

void sched_answer_failed(struct sched_answer *a, uint64_t seq, uint64_t now_ms)
{
	/* an answer to an older nomination: the current one is a new question, due anyway */
	if (a->answered != seq + 1)
		return;
	a->answered = 0;
	a->failed = seq + 1;
	a->retry_ms = now_ms + SCHED_ANSWER_RETRY_MS;
}
