// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sched/members.h"

static void test_single_node_owns_everything(void **state)
{
	struct members *m;

	assert_int_equal(members_new("n1", &m), 0);
	assert_int_equal(members_count(m), 1);
	assert_true(members_owns(m, "deployments.apps/default/web"));
	assert_string_equal(members_owner(m, "jobs.batch/x/y"), "n1");
	members_free(m);
}

static void test_add_remove_epoch(void **state)
{
	struct members *m;
	uint64_t e;

	assert_int_equal(members_new("n1", &m), 0);
	e = members_epoch(m);
	assert_int_equal(members_add(m, "n2"), 1);
	assert_int_equal(members_add(m, "n2"), 0);
	assert_true(members_epoch(m) == e + 1);
	assert_true(members_contains(m, "n2"));
	assert_int_equal(members_remove(m, "n2"), 1);
	assert_int_equal(members_remove(m, "n2"), 0);
	assert_false(members_contains(m, "n2"));
	assert_true(members_epoch(m) == e + 2);
	members_free(m);
}

/* Every node computes the same owner, whatever order it learnt the members in. */
static void test_owner_agrees_across_views(void **state)
{
	struct members *a, *b;
	char key[64];

	assert_int_equal(members_new("n1", &a), 0);
	assert_int_equal(members_new("n3", &b), 0);
	members_add(a, "n2");
	members_add(a, "n3");
	members_add(b, "n2");
	members_add(b, "n1");
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "pods/default/p-%d", i);
		assert_string_equal(members_owner(a, key), members_owner(b, key));
	}
	members_free(a);
	members_free(b);
}

/* Removing a member moves only the keys it owned, and spreads load roughly evenly. */
static void test_minimal_movement_and_balance(void **state)
{
	struct members *m;
	const char *names[] = { "n1", "n2", "n3", "n4" };
	char key[64], before[1000][8];
	int count[4] = { 0 }, moved = 0;

	assert_int_equal(members_new("n1", &m), 0);
	for (int i = 1; i < 4; i++)
		members_add(m, names[i]);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "replicasets.apps/ns/rs-%d", i);
		snprintf(before[i], sizeof(before[i]), "%s", members_owner(m, key));
		for (int k = 0; k < 4; k++)
			if (!strcmp(before[i], names[k]))
				count[k]++;
	}
	for (int k = 0; k < 4; k++)
		assert_true(count[k] > 150 && count[k] < 350);
	members_remove(m, "n3");
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "replicasets.apps/ns/rs-%d", i);
		const char *now = members_owner(m, key);
		if (strcmp(now, before[i])) {
			assert_string_equal(before[i], "n3");
			moved++;
		}
	}
	assert_int_equal(moved, count[2]);
	members_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_node_owns_everything),
		cmocka_unit_test(test_add_remove_epoch),
		cmocka_unit_test(test_owner_agrees_across_views),
		cmocka_unit_test(test_minimal_movement_and_balance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
