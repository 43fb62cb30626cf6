// SPDX-License-Identifier: Apache-2.0
/* Slot planning for service updates: minimal writes, and no reader ever sees a bad slot. */
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

#include "bpf/lb_plan.h"

#define MAXN 64

/* Execute a plan on a model of the map the way lb.c does, checking what a concurrent reader
 * holding the old count (before slot 0 is written) or the new count (after) could see. */
static void run_plan(const uint32_t *cur, size_t ncur, const uint32_t *want, size_t nwant,
		     size_t *ret_sets, size_t *ret_dels)
{
	uint32_t map[MAXN * 2 + 2] = { 0 }, slots[MAXN * 2];
	struct lb_slot_op ops[MAXN * 4];
	size_t nops = 0, sets = 0, dels = 0, i = 0;

	for (size_t k = 0; k < ncur; k++)
		map[k + 1] = cur[k];
	assert_int_equal(lb_slots_plan(cur, ncur, want, nwant, slots, ops, &nops), 0);

	for (; i < nops && ops[i].kind == LB_SLOT_SET; i++) {
		assert_true(ops[i].slot >= 1 && ops[i].slot <= (ncur > nwant ? ncur : nwant));
		map[ops[i].slot] = ops[i].id;
		sets++;
		/* reader with the old count */
		for (size_t s = 1; s <= ncur; s++)
			assert_int_not_equal(map[s], 0);
	}
	/* slot 0 now says nwant: a reader with the new count sees only wanted ids */
	for (size_t s = 1; s <= nwant; s++) {
		bool found = false;

		for (size_t w = 0; w < nwant; w++)
			found |= map[s] == want[w];
		assert_true(found);
	}
	for (; i < nops; i++) {
		assert_int_equal(ops[i].kind, LB_SLOT_DEL);
		assert_true(ops[i].slot > nwant && ops[i].slot <= ncur);
		map[ops[i].slot] = 0;
		dels++;
	}
	/* final: exactly the wanted set in slots 1..nwant, the layout returned, nothing past it */
	for (size_t s = 1; s <= nwant; s++)
		assert_int_equal(map[s], slots[s - 1]);
	for (size_t w = 0; w < nwant; w++) {
		bool found = false;

		for (size_t s = 1; s <= nwant; s++)
			found |= map[s] == want[w];
		assert_true(found);
	}
	for (size_t s = nwant + 1; s < sizeof(map) / sizeof(map[0]); s++)
		assert_int_equal(map[s], 0);
	*ret_sets = sets;
	*ret_dels = dels;
}

static void test_add_to_empty(void **state)
{
	uint32_t want[] = { 7, 8, 9 };
	size_t sets, dels;

	run_plan(NULL, 0, want, 3, &sets, &dels);
	assert_int_equal(sets, 3);
	assert_int_equal(dels, 0);
}

static void test_unchanged_writes_nothing(void **state)
{
	uint32_t cur[] = { 1, 2, 3 }, want[] = { 3, 1, 2 };
	size_t sets, dels;

	run_plan(cur, 3, want, 3, &sets, &dels);
	assert_int_equal(sets + dels, 0);
}

static void test_replace_one_of_many_is_one_write(void **state)
{
	uint32_t cur[50], want[50];
	size_t sets, dels;

	for (int i = 0; i < 50; i++)
		cur[i] = want[i] = 100 + i;
	want[17] = 999;
	run_plan(cur, 50, want, 50, &sets, &dels);
	assert_int_equal(sets, 1);
	assert_int_equal(dels, 0);
}

static void test_remove_middle_moves_tail(void **state)
{
	uint32_t cur[] = { 1, 2, 3, 4, 5 }, want[] = { 1, 2, 4, 5 };
	size_t sets, dels;

	/* slot 3 gets 5 from slot 5, then slot 5 goes: 2 writes, not a rewrite */
	run_plan(cur, 5, want, 4, &sets, &dels);
	assert_int_equal(sets, 1);
	assert_int_equal(dels, 1);
}

static void test_remove_all(void **state)
{
	uint32_t cur[] = { 1, 2, 3 };
	size_t sets, dels;

	run_plan(cur, 3, NULL, 0, &sets, &dels);
	assert_int_equal(sets, 0);
	assert_int_equal(dels, 3);
}

static void test_rejects_duplicates(void **state)
{
	uint32_t cur[] = { 1, 1 }, want[] = { 2 }, slots[4];
	struct lb_slot_op ops[8];
	size_t nops;

	assert_int_equal(lb_slots_plan(cur, 2, want, 1, slots, ops, &nops), -EINVAL);
	assert_int_equal(lb_slots_plan(want, 1, cur, 2, slots, ops, &nops), -EINVAL);
}

/* Random old/new sets from a small id space, fixed seed: every invariant, every time. */
static void test_random_transitions(void **state)
{
	unsigned seed = 12345;

	for (int round = 0; round < 5000; round++) {
		uint32_t cur[MAXN], want[MAXN];
		size_t ncur = 0, nwant = 0, sets, dels, removed = 0, added = 0;
		bool in_cur[100] = { 0 }, in_want[100] = { 0 };

		for (uint32_t id = 1; id < 100; id++) {
			if (ncur < MAXN && rand_r(&seed) % 3 == 0) {
				in_cur[id] = true;
				cur[ncur++] = id;
			}
			if (nwant < MAXN && rand_r(&seed) % 3 == 0) {
				in_want[id] = true;
				want[nwant++] = id;
			}
		}
		/* shuffle so slot order is not id order */
		for (size_t i = ncur; i > 1; i--) {
			size_t j = rand_r(&seed) % i;
			uint32_t t = cur[i - 1];

			cur[i - 1] = cur[j];
			cur[j] = t;
		}
		for (uint32_t id = 1; id < 100; id++) {
			removed += in_cur[id] && !in_want[id];
			added += in_want[id] && !in_cur[id];
		}
		run_plan(cur, ncur, want, nwant, &sets, &dels);
		/* O(changed): at most one write per added id plus one move and one delete per
		 * removed id */
		assert_true(sets <= added + removed);
		assert_true(dels <= removed);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_to_empty),
		cmocka_unit_test(test_unchanged_writes_nothing),
		cmocka_unit_test(test_replace_one_of_many_is_one_write),
		cmocka_unit_test(test_remove_middle_moves_tail),
		cmocka_unit_test(test_remove_all),
		cmocka_unit_test(test_rejects_duplicates),
		cmocka_unit_test(test_random_transitions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
