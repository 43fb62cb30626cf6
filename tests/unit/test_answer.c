// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "sched/answer.h"

/* Answered once: not asked again for the same nomination; a new nomination is due. */
static void test_answered_once(void **state)
{
	struct sched_answer a = {0};

	assert_true(sched_answer_due(&a, 1, 0));
	sched_answer_sent(&a, 1);
	assert_false(sched_answer_due(&a, 1, 0));
	assert_false(sched_answer_due(&a, 1, 1000000));
	assert_true(sched_answer_due(&a, 2, 0));
}

/* The write failed: owed again, not before the retry delay, then once per failure. */
static void test_failed_write_is_retried_after_delay(void **state)
{
	struct sched_answer a = {0};

	sched_answer_sent(&a, 3);
	sched_answer_failed(&a, 3, 5000);
	assert_false(sched_answer_due(&a, 3, 5000));
	assert_false(sched_answer_due(&a, 3, 5000 + SCHED_ANSWER_RETRY_MS - 1));
	assert_true(sched_answer_due(&a, 3, 5000 + SCHED_ANSWER_RETRY_MS));
	sched_answer_sent(&a, 3);
	assert_false(sched_answer_due(&a, 3, 5000 + SCHED_ANSWER_RETRY_MS));
	/* the retry's write went through: never asked again */
	assert_false(sched_answer_due(&a, 3, 1000000));
	/* a new nomination right after a failure is a new question: due at once */
	sched_answer_failed(&a, 3, 9000);
	assert_true(sched_answer_due(&a, 4, 9000));
}

/* A failure reported for an older nomination leaves the newer one's answer standing. */
static void test_failure_of_older_nomination(void **state)
{
	struct sched_answer a = {0};

	sched_answer_sent(&a, 1);
	sched_answer_sent(&a, 2);
	sched_answer_failed(&a, 1, 100);
	assert_false(sched_answer_due(&a, 2, 100));
	assert_false(sched_answer_due(&a, 2, 100 + SCHED_ANSWER_RETRY_MS));
}

/*
 * Randomized against a model of the target: passes at random times, each write failing with
 * some chance, nominations changing now and then. Every nomination is eventually answered by a
 * write that went through, none is answered again after that, and after a failure the same
 * nomination is not attempted again within the retry delay (no storm of passes retrying it).
 */
static void test_random_passes(void **state)
{
	for (unsigned seed = 1; seed <= 200; seed++) {
		struct sched_answer a = {0};
		uint64_t now = 0, seq = 1, last_fail = 0;
		bool written = false, failed_once = false;

		srand(seed);
		for (int step = 0; step < 400; step++) {
			now += (uint64_t)(rand() % 300); /* passes 0-300 ms apart */
			if (rand() % 40 == 0) {
				seq++; /* a new nomination (the owner placed again) */
				written = false;
				failed_once = false;
			}
			if (!sched_answer_due(&a, seq, now))
				continue;
			assert_false(written);
			if (failed_once)
				assert_true(now - last_fail >= SCHED_ANSWER_RETRY_MS);
			sched_answer_sent(&a, seq);
			if (rand() % 3 == 0) {
				sched_answer_failed(&a, seq, now);
				last_fail = now;
				failed_once = true;
			} else {
				written = true;
			}
		}
		/* passes keep coming (the tick): the last nomination ends answered */
		for (int k = 0; k < 1000 && !written; k++) {
			now += 1000;
			if (!sched_answer_due(&a, seq, now))
				continue;
			sched_answer_sent(&a, seq);
			if (rand() % 3 == 0)
				sched_answer_failed(&a, seq, now);
			else
				written = true;
		}
		assert_true(written);
		assert_false(sched_answer_due(&a, seq, now + 100000));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_answered_once),
	    cmocka_unit_test(test_failed_write_is_retried_after_delay),
	    cmocka_unit_test(test_failure_of_older_nomination),
	    cmocka_unit_test(test_random_passes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
