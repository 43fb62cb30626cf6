// SPDX-License-Identifier: Apache-2.0
/* sched/heal: when a dead node's pods are deleted, and when not (suspects, partitions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sched/heal.h"

static void set(struct members *m, const char *name, enum members_state st)
{
	struct members_info i = {.name = name, .address = "198.18.0.9:7946", .state = st};

	assert_true(members_update(m, &i) >= 0);
}

static struct members *cluster(int n)
{
	struct members *m;
	char name[16];

	assert_int_equal(members_new("n1", &m), 0);
	for (int i = 1; i <= n; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		set(m, name, MEMBERS_ALIVE);
	}
	return m;
}

static void test_dead_after_grace_suspect_never(void **state)
{
	struct members *m = cluster(5);
	struct heal *h;

	assert_int_equal(heal_new(NULL, &h), 0); /* grace 5 s */
	assert_int_equal(heal_observe(h, m, 1000), 0);
	set(m, "n2", MEMBERS_SUSPECT);
	set(m, "n3", MEMBERS_DEAD);
	assert_int_equal(heal_observe(h, m, 2000), 0);
	assert_int_equal(heal_observe(h, m, 6999), 0); /* n3 down 4.999 s */
	assert_false(heal_pod_due(h, "n3", -1, 6999, NULL));
	assert_int_equal(heal_observe(h, m, 7000), 1);
	assert_true(heal_node_evicted(h, "n3"));
	assert_true(heal_pod_due(h, "n3", -1, 7000, NULL));
	assert_int_equal(heal_evicted_count(h), 1);
	assert_string_equal(heal_evicted_get(h, 0), "n3");
	/* a suspect, however long, keeps its pods */
	assert_int_equal(heal_observe(h, m, 600000), 0);
	assert_false(heal_node_evicted(h, "n2"));
	assert_false(heal_pod_due(h, "n2", -1, 600000, NULL));
	assert_false(heal_pod_due(h, "n9", -1, 600000, NULL)); /* never seen: unknown, kept */
	/* n3 comes back: forgiven */
	set(m, "n3", MEMBERS_ALIVE);
	assert_int_equal(heal_observe(h, m, 600100), 0);
	assert_false(heal_pod_due(h, "n3", -1, 600100, NULL));
	assert_int_equal(heal_evicted_count(h), 0);
	heal_free(h);
	members_free(m);
}

static void test_back_within_grace_untouched(void **state)
{
	struct members *m = cluster(3);
	struct heal_opts o = {.grace_ms = 2000};
	struct heal *h;

	assert_int_equal(heal_new(&o, &h), 0);
	set(m, "n2", MEMBERS_DEAD);
	assert_int_equal(heal_observe(h, m, 100), 0);
	set(m, "n2", MEMBERS_ALIVE);
	assert_int_equal(heal_observe(h, m, 1900), 0);
	set(m, "n2", MEMBERS_DEAD); /* the grace period starts over */
	assert_int_equal(heal_observe(h, m, 2000), 0);
	assert_int_equal(heal_observe(h, m, 3999), 0);
	assert_int_equal(heal_observe(h, m, 4000), 1);
	heal_free(h);
	members_free(m);
}

/* 5 nodes split 2 | 3: the majority replaces the minority's pods, the minority holds. */
static void test_partition_majority_heals_minority_holds(void **state)
{
	struct members *a = cluster(5), *b; /* a: n1's view (majority n1..n3) */
	struct heal *ha, *hb;

	assert_int_equal(members_new("n4", &b), 0); /* b: n4's view (minority n4, n5) */
	for (int i = 1; i <= 5; i++) {
		char name[8];
		snprintf(name, sizeof(name), "n%d", i);
		set(b, name, MEMBERS_ALIVE);
	}
	assert_int_equal(heal_new(NULL, &ha), 0);
	assert_int_equal(heal_new(NULL, &hb), 0);
	set(a, "n4", MEMBERS_DEAD);
	set(a, "n5", MEMBERS_DEAD);
	set(b, "n1", MEMBERS_DEAD);
	set(b, "n2", MEMBERS_DEAD);
	set(b, "n3", MEMBERS_SUSPECT);
	assert_int_equal(heal_observe(ha, a, 0), 0);
	assert_int_equal(heal_observe(hb, b, 0), 0);
	assert_false(heal_limited(ha)); /* 2 of 5 down */
	assert_true(heal_limited(hb));	/* 3 of 5 look down */
	assert_int_equal(heal_observe(ha, a, 5000), 2);
	set(b, "n3", MEMBERS_DEAD);
	assert_int_equal(heal_observe(hb, b, 5000), 0);
	assert_int_equal(heal_observe(hb, b, 3600000), 0);
	assert_false(heal_pod_due(hb, "n1", -1, 3600000, NULL));
	/* gossip forgets the dead members: the minority still counts them down */
	assert_int_equal(members_forget(b, "n1"), 0);
	assert_int_equal(members_forget(b, "n2"), 0);
	assert_int_equal(members_forget(b, "n3"), 0);
	assert_int_equal(heal_observe(hb, b, 3700000), 0);
	assert_true(heal_limited(hb));
	assert_int_equal(heal_evicted_count(hb), 0);
	/* the heal reaches n3 first: n1 and n2, still down, get a fresh grace, not an eviction */
	set(b, "n3", MEMBERS_ALIVE);
	assert_int_equal(heal_observe(hb, b, 3750000), 0);
	assert_false(heal_limited(hb));
	assert_int_equal(heal_evicted_count(hb), 0);
	/* healed: everyone alive, nothing evicted anywhere */
	for (int i = 1; i <= 5; i++) {
		char name[8];
		snprintf(name, sizeof(name), "n%d", i);
		set(a, name, MEMBERS_ALIVE);
		set(b, name, MEMBERS_ALIVE);
	}
	assert_int_equal(heal_observe(ha, a, 3800000), 0);
	assert_int_equal(heal_observe(hb, b, 3800000), 0);
	assert_false(heal_limited(hb));
	assert_int_equal(heal_evicted_count(ha) + heal_evicted_count(hb), 0);
	heal_free(ha);
	heal_free(hb);
	members_free(a);
	members_free(b);
}

static void test_limited_rate_oldest_first_and_leavers(void **state)
{
	struct members *m = cluster(6);
	struct heal_opts o = {.grace_ms = 1000, .limited_interval_ms = 10000};
	struct heal *h;

	assert_int_equal(heal_new(&o, &h), 0);
	set(m, "n5", MEMBERS_DEAD);
	assert_int_equal(heal_observe(h, m, 0), 0);
	set(m, "n3", MEMBERS_DEAD);
	set(m, "n4", MEMBERS_DEAD);
	set(m, "n6", MEMBERS_LEFT); /* left on purpose: not counted, evicted regardless */
	assert_int_equal(heal_observe(h, m, 500), 0);
	assert_true(heal_limited(h));		       /* 3 of 5 counted */
	assert_int_equal(heal_observe(h, m, 1500), 2); /* n6 (left) and the oldest, n5 */
	assert_true(heal_node_evicted(h, "n5"));
	assert_true(heal_node_evicted(h, "n6"));
	assert_false(heal_node_evicted(h, "n3"));
	assert_int_equal(heal_observe(h, m, 11499), 0);
	assert_int_equal(heal_observe(h, m, 11500), 1); /* one more per interval */
	assert_int_equal(heal_observe(h, m, 21500), 1);
	assert_int_equal(heal_evicted_count(h), 4);
	heal_free(h);
	members_free(m);
}

static cJSON *pod(const char *json)
{
	cJSON *p = cJSON_Parse(json);

	assert_non_null(p);
	return p;
}

static void test_tolerations_and_exempt_pods(void **state)
{
	struct members *m = cluster(3);
	struct heal *h;
	uint64_t wait;
	cJSON *p;

	p = pod("{\"spec\":{}}");
	assert_int_equal(heal_pod_toleration_ms(p), -1);
	assert_false(heal_pod_exempt(p));
	cJSON_Delete(p);
	p = pod("{\"spec\":{\"tolerations\":[{\"key\":\"node.kubernetes.io/unreachable\","
		"\"operator\":\"Exists\",\"effect\":\"NoExecute\",\"tolerationSeconds\":30},"
		"{\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\","
		"\"effect\":\"NoExecute\",\"tolerationSeconds\":10}]}}");
	assert_int_equal(heal_pod_toleration_ms(p), 30000);
	cJSON_Delete(p);
	p = pod("{\"spec\":{\"tolerations\":[{\"operator\":\"Exists\"}]}}");
	assert_int_equal(heal_pod_toleration_ms(p), INT64_MAX);
	cJSON_Delete(p);
	p = pod("{\"spec\":{\"tolerations\":[{\"key\":\"node.kubernetes.io/unreachable\","
		"\"effect\":\"NoSchedule\"},{\"key\":\"other\",\"operator\":\"Exists\"}]}}");
	assert_int_equal(heal_pod_toleration_ms(p), -1);
	cJSON_Delete(p);
	p = pod("{\"metadata\":{\"ownerReferences\":[{\"kind\":\"DaemonSet\",\"name\":\"d\","
		"\"controller\":true}]}}");
	assert_true(heal_pod_exempt(p));
	cJSON_Delete(p);
	p = pod("{\"metadata\":{\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"r\","
		"\"controller\":true}]}}");
	assert_false(heal_pod_exempt(p));
	cJSON_Delete(p);

	assert_int_equal(heal_new(NULL, &h), 0);
	set(m, "n2", MEMBERS_DEAD);
	assert_int_equal(heal_observe(h, m, 1000), 0);
	assert_int_equal(heal_observe(h, m, 6000), 1);
	assert_true(heal_pod_due(h, "n2", 0, 6000, &wait));
	assert_false(heal_pod_due(h, "n2", 30000, 6000, &wait));
	assert_int_equal(wait, 25000);
	assert_true(heal_pod_due(h, "n2", 30000, 31000, &wait));
	assert_false(heal_pod_due(h, "n2", INT64_MAX, 99999999, &wait));
	heal_free(h);
	members_free(m);
}

/* A node declared dead that still sends us requests is running (an overloaded node gossip
 * gave up on): its grace period runs from the last word we had from it. */
static void test_heard_from_dead_node_keeps_pods(void **state)
{
	struct members *m = cluster(5);
	struct heal *h;

	assert_int_equal(heal_new(NULL, &h), 0); /* grace 5 s */
	assert_int_equal(heal_observe(h, m, 1000), 0);
	heal_heard(h, "n9", 1500); /* never seen: ignored, not counted */
	set(m, "n3", MEMBERS_DEAD);
	assert_int_equal(heal_observe(h, m, 2000), 0);
	heal_heard(h, "n3", 4000);
	assert_int_equal(heal_observe(h, m, 7000), 0); /* dead 5 s, but heard 3 s ago */
	assert_false(heal_pod_due(h, "n3", -1, 7000, NULL));
	assert_int_equal(heal_observe(h, m, 9000), 1); /* silent for 5 s */
	assert_true(heal_pod_due(h, "n3", -1, 9000, NULL));
	/* it speaks again: no more of its pods go, and the grace period starts over */
	heal_heard(h, "n3", 9500);
	assert_false(heal_pod_due(h, "n3", -1, 9500, NULL));
	assert_int_equal(heal_observe(h, m, 10000), 0);
	assert_int_equal(heal_evicted_count(h), 0);
	assert_int_equal(heal_observe(h, m, 14500), 1);
	assert_false(heal_limited(h));
	heal_free(h);
	members_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dead_after_grace_suspect_never),
	    cmocka_unit_test(test_back_within_grace_untouched),
	    cmocka_unit_test(test_partition_majority_heals_minority_holds),
	    cmocka_unit_test(test_limited_rate_oldest_first_and_leavers),
	    cmocka_unit_test(test_tolerations_and_exempt_pods),
	    cmocka_unit_test(test_heard_from_dead_node_keeps_pods),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
