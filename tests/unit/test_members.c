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

/* Without a shared replica every object is its own node's, whoever else is alive. */
static void test_unreplicated_members_own_their_replica(void **state)
{
	struct members *m;
	char key[64];
	int mine = 0;

	assert_int_equal(members_new("n1", &m), 0);
	assert_int_equal(members_add(m, "n2"), 1);
	assert_int_equal(members_add(m, "n3"), 1);
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "deployments.apps/default/w%d", i);
		mine += members_owns(m, key);
	}
	assert_true(mine > 0 && mine < 300); /* shared: the work is divided */
	members_set_replicated(m, false);
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "deployments.apps/default/w%d", i);
		assert_true(members_owns(m, key));
		assert_string_equal(members_owner(m, key), "n1");
	}
	members_set_replicated(m, true);
	mine = 0;
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "deployments.apps/default/w%d", i);
		mine += members_owns(m, key);
	}
	assert_true(mine > 0 && mine < 300);
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

static void count_change(struct members *m, void *ud)
{
	(*(int *)ud)++;
}

/* The gossip view holds every member with its details; only alive and suspect members own
 * objects, and only a change of that set calls back (so a suspicion moves no ownership). */
static void test_view_and_live_set(void **state)
{
	struct members *m;
	const struct members_info *v;
	int changes = 0;

	assert_int_equal(members_new("n1", &m), 0);
	members_on_change(m, count_change, &changes);
	struct members_info n2 = { .name = "n2", .address = "10.0.0.2:7946",
				   .state = MEMBERS_ALIVE, .incarnation = 3, .instance = 42,
				   .rtt_us = 350, .meta = "{\"podCIDR\":\"10.244.2.0/24\"}" };
	assert_int_equal(members_update(m, &n2), 1);
	assert_int_equal(changes, 1);
	assert_int_equal(members_view_count(m), 2);
	v = members_view_find(m, "n2");
	assert_non_null(v);
	assert_string_equal(v->address, "10.0.0.2:7946");
	assert_int_equal(v->incarnation, 3);
	assert_int_equal(v->instance, 42);
	assert_int_equal(v->rtt_us, 350);
	assert_string_equal(v->meta, "{\"podCIDR\":\"10.244.2.0/24\"}");
	assert_string_equal(members_view_get(m, 0)->name, "n1");

	/* suspect: still a member, no callback; details updated */
	n2.state = MEMBERS_SUSPECT;
	n2.meta = NULL;
	assert_int_equal(members_update(m, &n2), 0);
	assert_int_equal(changes, 1);
	assert_true(members_contains(m, "n2"));
	assert_string_equal(members_view_find(m, "n2")->meta, "");
	assert_string_equal(members_state_name(members_view_find(m, "n2")->state), "suspect");

	/* dead: stays in the view, leaves the live set; ownership moves back */
	n2.state = MEMBERS_DEAD;
	assert_int_equal(members_update(m, &n2), 1);
	assert_int_equal(changes, 2);
	assert_false(members_contains(m, "n2"));
	assert_int_equal(members_view_count(m), 2);
	assert_true(members_owns(m, "pods/x/y"));
	/* a restart refutes with a higher incarnation: alive again */
	n2.state = MEMBERS_ALIVE;
	n2.incarnation = 4;
	assert_int_equal(members_update(m, &n2), 1);
	assert_int_equal(changes, 3);
	assert_int_equal(members_forget(m, "n2"), 1);
	assert_int_equal(members_forget(m, "n1"), 0); /* never self */
	assert_null(members_view_find(m, "n2"));
	assert_int_equal(members_count(m), 1);
	assert_int_equal(changes, 4);
	members_free(m);
}

/* The owner except a member is the owner the others agree on once that member is gone. */
static void test_owner_except(void **state)
{
	struct members *a, *b;
	char key[64];

	assert_int_equal(members_new("n1", &a), 0);
	assert_int_equal(members_new("n1", &b), 0);
	for (int i = 2; i <= 5; i++) {
		snprintf(key, sizeof(key), "n%d", i);
		assert_int_equal(members_add(a, key), 1);
		if (i != 3)
			assert_int_equal(members_add(b, key), 1);
	}
	for (int k = 0; k < 200; k++) {
		snprintf(key, sizeof(key), "nodes/x%d", k);
		const char *o = members_owner_except(a, key, "n3");
		assert_non_null(o);
		assert_string_not_equal(o, "n3");
		assert_string_equal(o, members_owner(b, key));
	}
	members_free(a);
	members_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_node_owns_everything),
		cmocka_unit_test(test_unreplicated_members_own_their_replica),
		cmocka_unit_test(test_add_remove_epoch),
		cmocka_unit_test(test_owner_agrees_across_views),
		cmocka_unit_test(test_minimal_movement_and_balance),
		cmocka_unit_test(test_view_and_live_set),
		cmocka_unit_test(test_owner_except),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
