// SPDX-License-Identifier: Apache-2.0
/*
 * Events: the recorder's rate limit (client-go's spam filter: a burst of 25 per source, object,
 * type and reason, then one per 5 minutes) and expiry after the TTL by the node that wrote
 * them, leaving other nodes' Events alone.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/object.h"
#include "daemon/events.h"
#include "lib/json.h"
#include "sched/store.h"

static uint64_t now_ms = 1700000000000ULL;

static uint64_t clock_fn(void *ud)
{
	return now_ms;
}

static struct store *open_store(const char *node)
{
	struct store_options so = { .path = ":memory:", .node_name = node, .clock = clock_fn };
	struct store *s;
	struct err e = { 0 };
	cJSON *ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
				"{\"name\":\"default\"}}");

	assert_int_equal(store_open(&so, &s), 0);
	assert_int_equal(api_obj_create(s, ns, NULL, &e), 0);
	cJSON_Delete(ns);
	return s;
}

static cJSON *pod(const char *name)
{
	char buf[256];

	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"default\",\"uid\":\"uid-%s\"}}",
		 name, name);
	return cJSON_Parse(buf);
}

static int copy_fn(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	store_merge_register(ud, spec);
	if (status)
		store_merge_register(ud, status);
	return 0;
}

static void test_rate_limit(void **state)
{
	struct store *s = open_store("n1");
	struct events *ev;
	cJSON *a = pod("a"), *b = pod("b");

	assert_int_equal(events_new(s, "kubelet", "n1", &ev), 0);
	events_set_clock(ev, clock_fn, NULL);
	for (int i = 0; i < 30; i++)
		events_record(ev, a, NULL, "Warning", "BackOff", "attempt %d", i);
	assert_int_equal(store_count(s, "events", "default"), EVENTS_BURST);
	assert_int_equal(events_dropped(ev), 30 - EVENTS_BURST);
	/* another object, or another reason, has a bucket of its own */
	events_record(ev, b, NULL, "Warning", "BackOff", "attempt");
	events_record(ev, a, NULL, "Normal", "Pulled", "pulled");
	assert_int_equal(store_count(s, "events", "default"), EVENTS_BURST + 2);
	/* one more token per refill period, no more */
	now_ms += EVENTS_REFILL_MS - 1;
	events_record(ev, a, NULL, "Warning", "BackOff", "late");
	assert_int_equal(store_count(s, "events", "default"), EVENTS_BURST + 2);
	now_ms += 1;
	events_record(ev, a, NULL, "Warning", "BackOff", "later");
	events_record(ev, a, NULL, "Warning", "BackOff", "latest");
	assert_int_equal(store_count(s, "events", "default"), EVENTS_BURST + 3);
	cJSON_Delete(a);
	cJSON_Delete(b);
	events_free(ev);
	store_close(s);
}

static void test_expire_own_events_only(void **state)
{
	struct store *s1 = open_store("n1"), *s2 = open_store("n2");
	struct events *e1, *e2;
	cJSON *a = pod("a");
	uint64_t t0 = now_ms;

	assert_int_equal(events_new(s1, "kubelet", "n1", &e1), 0);
	assert_int_equal(events_new(s2, "kubelet", "n2", &e2), 0);
	events_set_clock(e1, clock_fn, NULL);
	events_set_clock(e2, clock_fn, NULL);
	events_record(e1, a, NULL, "Normal", "Started", "one");
	events_record(e1, a, NULL, "Normal", "Pulled", "two");
	events_record(e2, a, NULL, "Normal", "Started", "theirs");
	assert_int_equal(store_reg_list(s2, "events", 0, STORE_DIGEST_BUCKETS, copy_fn, s1), 0);
	assert_int_equal(store_count(s1, "events", "default"), 3);

	/* a repeat five minutes later bumps "two": its life starts again */
	now_ms += 5 * 60 * 1000;
	events_record(e1, a, NULL, "Normal", "Pulled", "two");
	assert_int_equal(store_count(s1, "events", "default"), 3);

	now_ms = t0 + EVENTS_TTL_MS - 1;
	assert_int_equal(events_expire(s1, "n1", now_ms, EVENTS_TTL_MS), 0);
	now_ms = t0 + EVENTS_TTL_MS;
	assert_int_equal(events_expire(s1, "n1", now_ms, EVENTS_TTL_MS), 1);
	/* n2's Event is n2's to delete */
	now_ms = t0 + EVENTS_TTL_MS + 5 * 60 * 1000;
	assert_int_equal(events_expire(s1, "n1", now_ms, EVENTS_TTL_MS), 1);
	assert_int_equal(store_count(s1, "events", "default"), 1);
	assert_int_equal(events_expire(s2, "n2", now_ms, EVENTS_TTL_MS), 1);
	assert_int_equal(store_count(s2, "events", "default"), 0);

	cJSON_Delete(a);
	events_free(e1);
	events_free(e2);
	store_close(s1);
	store_close(s2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_expire_own_events_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
