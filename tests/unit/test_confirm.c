// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sched/confirm.h"

struct seen {
	int n;
	char uid[64];
	enum sched_confirm_state st;
	uint64_t waited;
	bool timed_out;
};

static void on_settled(void *ud, const char *uid, enum sched_confirm_state st, uint64_t waited,
		       bool timed_out)
{
	struct seen *s = ud;

	s->n++;
	snprintf(s->uid, sizeof(s->uid), "%s", uid);
	s->st = st;
	s->waited = waited;
	s->timed_out = timed_out;
}

static const char *const three[] = {"n2", "n3", "n4"};

/* A lone node (nobody else alive) confirms at once. */
static void test_lone_node_confirms_at_once(void **state)
{
	struct seen s = {0};
	struct sched_confirm *c;

	assert_int_equal(sched_confirm_new(on_settled, &s, &c), 0);
	assert_int_equal(sched_confirm_begin(c, "u1", 100), 0);
	assert_int_equal(sched_confirm_state(c, "u1"), SCHED_CONFIRM_PENDING);
	assert_int_equal(sched_confirm_ask(c, "u1", NULL, 0, 100), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.st, SCHED_CONFIRM_CONFIRMED);
	assert_int_equal(s.waited, 0);
	assert_int_equal(sched_confirm_state(c, "u1"), SCHED_CONFIRM_NONE);
	assert_int_equal(sched_confirm_next_deadline(c), UINT64_MAX);
	sched_confirm_free(c);
}

/* Held from before the write until every member asked answered with our binding. */
static void test_all_answer_here(void **state)
{
	struct seen s = {0};
	struct sched_confirm *c;

	assert_int_equal(sched_confirm_new(on_settled, &s, &c), 0);
	assert_int_equal(sched_confirm_begin(c, "u1", 1000), 0);
	assert_int_equal(sched_confirm_begin(c, "u1", 1000), -EEXIST);
	assert_int_equal(sched_confirm_ask(c, "u1", three, 3, 1001), 0);
	sched_confirm_answer(c, "u1", "n3", SCHED_CONFIRM_HERE, 1002);
	sched_confirm_answer(c, "u1", "n3", SCHED_CONFIRM_HERE, 1002); /* twice: once */
	sched_confirm_answer(c, "u1", "n9", SCHED_CONFIRM_HERE, 1002); /* not asked */
	sched_confirm_answer(c, "u9", "n2", SCHED_CONFIRM_HERE, 1002); /* not tracked */
	sched_confirm_answer(c, "u1", "n2", SCHED_CONFIRM_HERE, 1003);
	assert_int_equal(s.n, 0);
	assert_int_equal(sched_confirm_state(c, "u1"), SCHED_CONFIRM_PENDING);
	assert_int_equal(sched_confirm_pending(c), 1);
	assert_int_equal(sched_confirm_next_deadline(c), 1000 + SCHED_CONFIRM_WAIT_MS);
	sched_confirm_answer(c, "u1", "n4", SCHED_CONFIRM_HERE, 1004);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.uid, "u1");
	assert_int_equal(s.st, SCHED_CONFIRM_CONFIRMED);
	assert_int_equal(s.waited, 4);
	assert_false(s.timed_out);
	assert_int_equal(sched_confirm_state(c, "u1"), SCHED_CONFIRM_NONE);
	sched_confirm_free(c);
}

/* One answer with an earlier binding elsewhere: lost at once, remembered for a while. */
static void test_one_elsewhere_loses(void **state)
{
	struct seen s = {0};
	struct sched_confirm *c;

	assert_int_equal(sched_confirm_new(on_settled, &s, &c), 0);
	sched_confirm_begin(c, "u1", 0);
	sched_confirm_ask(c, "u1", three, 3, 0);
	sched_confirm_answer(c, "u1", "n2", SCHED_CONFIRM_HERE, 5);
	sched_confirm_answer(c, "u1", "n4", SCHED_CONFIRM_ELSEWHERE, 6);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.st, SCHED_CONFIRM_LOST);
	assert_int_equal(s.waited, 6);
	/* later answers change nothing */
	sched_confirm_answer(c, "u1", "n3", SCHED_CONFIRM_HERE, 7);
	sched_confirm_expire(c, SCHED_CONFIRM_WAIT_MS + 1);
	assert_int_equal(s.n, 1);
	assert_int_equal(sched_confirm_state(c, "u1"), SCHED_CONFIRM_LOST);
	assert_int_equal(sched_confirm_pending(c), 0);
	assert_int_equal(sched_confirm_next_deadline(c), 6 + SCHED_CONFIRM_KEEP_MS);
	/* a new binding of the same uid while remembered lost: refused */
	assert_int_equal(sched_confirm_begin(c, "u1", 10), -EEXIST);
	sched_confirm_expire(c, 6 + SCHED_CONFIRM_KEEP_MS);
	assert_int_equal(sched_confirm_state(c, "u1"), SCHED_CONFIRM_NONE);
	assert_int_equal(s.n, 1);
	sched_confirm_free(c);
}

/* No answer, a member that goes away, another uid: not waited for; the deadline bounds the
 * wait for the rest. */
static void test_not_waited_for(void **state)
{
	struct seen s = {0};
	struct sched_confirm *c;

	assert_int_equal(sched_confirm_new(on_settled, &s, &c), 0);
	sched_confirm_begin(c, "u1", 0);
	sched_confirm_ask(c, "u1", three, 3, 0);
	sched_confirm_begin(c, "u2", 0);
	sched_confirm_ask(c, "u2", three, 3, 0);
	sched_confirm_answer(c, "u1", "n2", SCHED_CONFIRM_UNKNOWN, 1);
	sched_confirm_member_gone(c, "n3", 2);
	assert_int_equal(s.n, 0);
	sched_confirm_answer(c, "u1", "n4", SCHED_CONFIRM_HERE, 3);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.uid, "u1");
	assert_int_equal(s.st, SCHED_CONFIRM_CONFIRMED);
	assert_false(s.timed_out);
	/* u2 still waits for n2 and n4 */
	sched_confirm_expire(c, SCHED_CONFIRM_WAIT_MS - 1);
	assert_int_equal(sched_confirm_state(c, "u2"), SCHED_CONFIRM_PENDING);
	sched_confirm_expire(c, SCHED_CONFIRM_WAIT_MS);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.uid, "u2");
	assert_int_equal(s.st, SCHED_CONFIRM_CONFIRMED);
	assert_true(s.timed_out);
	assert_int_equal(s.waited, SCHED_CONFIRM_WAIT_MS);
	sched_confirm_free(c);
}

/* The member leaving settles every uid that waited only for it. */
static void test_member_gone_settles_many(void **state)
{
	struct seen s = {0};
	struct sched_confirm *c;
	const char *one[] = {"n2"};
	char uid[16];

	assert_int_equal(sched_confirm_new(on_settled, &s, &c), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(uid, sizeof(uid), "u%d", i);
		sched_confirm_begin(c, uid, 0);
		sched_confirm_ask(c, uid, i % 2 ? one : three, i % 2 ? 1 : 3, 0);
	}
	sched_confirm_member_gone(c, "n2", 10);
	assert_int_equal(s.n, 20);
	assert_int_equal(sched_confirm_pending(c), 20);
	for (int i = 0; i < 40; i++) {
		snprintf(uid, sizeof(uid), "u%d", i);
		assert_int_equal(sched_confirm_state(c, uid),
				 i % 2 ? SCHED_CONFIRM_NONE : SCHED_CONFIRM_PENDING);
	}
	sched_confirm_free(c);
}

/* A failed write forgets the uid without a callback; one never asked still times out. */
static void test_cancel_and_unasked(void **state)
{
	struct seen s = {0};
	struct sched_confirm *c;

	assert_int_equal(sched_confirm_new(on_settled, &s, &c), 0);
	sched_confirm_begin(c, "u1", 0);
	sched_confirm_cancel(c, "u1");
	assert_int_equal(sched_confirm_state(c, "u1"), SCHED_CONFIRM_NONE);
	assert_int_equal(sched_confirm_ask(c, "u1", three, 3, 0), -ENOENT);
	sched_confirm_begin(c, "u2", 0);
	sched_confirm_expire(c, SCHED_CONFIRM_WAIT_MS);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.st, SCHED_CONFIRM_CONFIRMED);
	sched_confirm_free(c);
}

/*
 * Random answers against a model: a uid is LOST iff an ELSEWHERE answer arrived while it was
 * pending, CONFIRMED once every member asked answered (or was dropped) or at the deadline, and
 * settles exactly once.
 */
struct model {
	int settled;
	enum sched_confirm_state st;
	bool timed_out;
};

static struct model models[64];

static void on_settled_model(void *ud, const char *uid, enum sched_confirm_state st,
			     uint64_t waited, bool timed_out)
{
	int i = atoi(uid + 1);

	models[i].settled++;
	models[i].st = st;
	models[i].timed_out = timed_out;
}

static void test_random_against_model(void **state)
{
	const char *names[] = {"a", "b", "c", "d", "e"};

	srand(12);
	for (int round = 0; round < 200; round++) {
		struct sched_confirm *c;
		bool waiting[64][5] = {{false}}, pend[64] = {false}, lost[64] = {false};
		uint64_t now = 0;
		char uid[16];

		memset(models, 0, sizeof(models));
		assert_int_equal(sched_confirm_new(on_settled_model, NULL, &c), 0);
		for (int i = 0; i < 64; i++) {
			const char *asked[5];
			size_t n = 0;

			snprintf(uid, sizeof(uid), "u%d", i);
			sched_confirm_begin(c, uid, now);
			for (int k = 0; k < 5; k++)
				if (rand() % 2) {
					asked[n++] = names[k];
					waiting[i][k] = true;
				}
			sched_confirm_ask(c, uid, asked, n, now);
			pend[i] = n > 0;
		}
		for (int step = 0; step < 300; step++) {
			int i = rand() % 64, k = rand() % 5, what = rand() % 10;

			now += (uint64_t)(rand() % 5);
			snprintf(uid, sizeof(uid), "u%d", i);
			if (what == 0) {
				sched_confirm_member_gone(c, names[k], now);
				for (int j = 0; j < 64; j++)
					if (pend[j] && waiting[j][k]) {
						waiting[j][k] = false;
						bool any = false;
						for (int q = 0; q < 5; q++)
							any |= waiting[j][q];
						pend[j] = any;
					}
				continue;
			}
			enum sched_confirm_answer a = what == 1	  ? SCHED_CONFIRM_ELSEWHERE
						      : what == 2 ? SCHED_CONFIRM_UNKNOWN
								  : SCHED_CONFIRM_HERE;
			sched_confirm_answer(c, uid, names[k], a, now);
			if (pend[i] && waiting[i][k]) {
				waiting[i][k] = false;
				if (a == SCHED_CONFIRM_ELSEWHERE) {
					lost[i] = true;
					pend[i] = false;
				} else {
					bool any = false;
					for (int q = 0; q < 5; q++)
						any |= waiting[i][q];
					pend[i] = any;
				}
			}
		}
		assert_true(now < SCHED_CONFIRM_WAIT_MS);
		for (int i = 0; i < 64; i++) {
			snprintf(uid, sizeof(uid), "u%d", i);
			assert_int_equal(models[i].settled, !pend[i]);
			assert_int_equal(sched_confirm_state(c, uid),
					 pend[i]   ? SCHED_CONFIRM_PENDING
					 : lost[i] ? SCHED_CONFIRM_LOST
						   : SCHED_CONFIRM_NONE);
			if (!pend[i])
				assert_int_equal(models[i].st, lost[i] ? SCHED_CONFIRM_LOST
								       : SCHED_CONFIRM_CONFIRMED);
		}
		sched_confirm_expire(c, SCHED_CONFIRM_WAIT_MS);
		for (int i = 0; i < 64; i++) {
			assert_int_equal(models[i].settled, 1);
			if (pend[i]) {
				assert_int_equal(models[i].st, SCHED_CONFIRM_CONFIRMED);
				assert_true(models[i].timed_out);
			}
		}
		assert_int_equal(sched_confirm_pending(c), 0);
		sched_confirm_free(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lone_node_confirms_at_once),
	    cmocka_unit_test(test_all_answer_here),
	    cmocka_unit_test(test_one_elsewhere_loses),
	    cmocka_unit_test(test_not_waited_for),
	    cmocka_unit_test(test_member_gone_settles_many),
	    cmocka_unit_test(test_cancel_and_unasked),
	    cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
