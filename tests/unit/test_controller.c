// SPDX-License-Identifier: Apache-2.0
/* The controller manager's work queue: failed reconciles come back with per-key back-off. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/object.h"
#include "lib/json.h"
#include "sched/controller.h"
#include "sched/store.h"

static uint64_t now_ms = 1700000000000ULL;
static bool fail_pods;
static int faults;

static uint64_t clock_fn(void *ud)
{
	return now_ms;
}

/* the injected store failure: every write of a pod fails as a failed SQLite write would */
static int fault_fn(void *ud, const char *resource, const char *ns, const char *name)
{
	if (fail_pods && !strcmp(resource, "pods")) {
		faults++;
		return -EIO;
	}
	return 0;
}

struct env {
	struct store *store;
	struct ctrl_mgr *ctrl;
};

static int setup(void **state)
{
	static struct env env;
	struct store_options so = { .path = ":memory:", .node_name = "n1", .clock = clock_fn,
				    .fault = fault_fn };
	struct ctrl_options co = { .store = NULL, .clock = clock_fn };
	struct err e = { 0 };
	cJSON *ns;

	fail_pods = false;
	faults = 0;
	assert_int_equal(store_open(&so, &env.store), 0);
	co.store = env.store;
	assert_int_equal(ctrl_mgr_new(&co, &env.ctrl), 0);
	ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
			 "\"metadata\":{\"name\":\"default\"}}");
	assert_int_equal(api_obj_create(env.store, ns, NULL, &e), 0);
	cJSON_Delete(ns);
	*state = &env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	ctrl_mgr_free(env->ctrl);
	store_close(env->store);
	return 0;
}

static void create_rs(struct env *env, int replicas)
{
	char buf[1024];
	struct err e = { 0 };
	cJSON *rs;

	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"web\","
		 "\"namespace\":\"default\"},\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":"
		 "{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
		 "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}",
		 replicas);
	rs = cJSON_Parse(buf);
	assert_int_equal(api_obj_create(env->store, rs, NULL, &e), 0);
	cJSON_Delete(rs);
}

/* Run everything due now; returns the time the next key is due (0: none). */
static uint64_t run(struct env *env)
{
	uint64_t next = 0;

	ctrl_mgr_run(env->ctrl, &next);
	return next;
}

static void test_backoff_schedule(void **state)
{
	assert_int_equal(ctrl_backoff_ms(1), 5);
	assert_int_equal(ctrl_backoff_ms(2), 10);
	assert_int_equal(ctrl_backoff_ms(3), 20);
	assert_int_equal(ctrl_backoff_ms(18), 5ULL << 17);
	assert_int_equal(ctrl_backoff_ms(19), 1000000);
	assert_int_equal(ctrl_backoff_ms(1000), 1000000);
}

static void test_failed_reconcile_is_retried_with_backoff(void **state)
{
	struct env *env = *state;
	struct ctrl_stats st;
	uint64_t next, delay = 10;

	fail_pods = true;
	create_rs(env, 2);
	/* the first try writes the status (0 replicas) and fails to create a pod; its own status
	 * event queues the key at once, as an informer event does in client-go, and the second
	 * try fails too: it waits 10 ms, the second step of the back-off */
	next = run(env);
	assert_int_equal(faults, 2);
	assert_int_equal(store_count(env->store, "pods", NULL), 0);
	ctrl_mgr_stats_get(env->ctrl, &st);
	assert_int_equal(st.retries, 2);
	assert_int_equal(st.failing, 1);
	assert_int_equal(ctrl_mgr_pending(env->ctrl), 1);
	assert_int_equal(next, now_ms + delay);

	/* not before its time; then again and again, each wait twice the last */
	for (int i = 0; i < 8; i++) {
		int before = faults;
		now_ms += delay - 1;
		assert_int_equal(ctrl_mgr_run(env->ctrl, &next), 0);
		assert_int_equal(faults, before);
		now_ms += 1;
		assert_int_equal(ctrl_mgr_run(env->ctrl, &next), 1);
		assert_true(faults > before);
		delay *= 2;
		assert_int_equal(next, now_ms + delay);
		ctrl_mgr_stats_get(env->ctrl, &st);
		assert_int_equal(st.retries, (uint64_t)i + 3);
	}

	/* the store recovers: the next retry creates the pods and the key is forgotten */
	fail_pods = false;
	now_ms += delay;
	for (int i = 0; i < 10 && (next = run(env)) != 0 && next <= now_ms; i++)
		;
	assert_int_equal(store_count(env->store, "pods", "default"), 2);
	ctrl_mgr_stats_get(env->ctrl, &st);
	assert_int_equal(st.failing, 0);

	/* success reset the back-off: after a new failure (two tries again, the first one writes
	 * observedGeneration) the wait is 10 ms, not 5 * 2^11 */
	fail_pods = true;
	{
		struct store_obj *o;
		struct err e = { 0 };
		cJSON *rs;
		assert_int_equal(store_get(env->store, "replicasets.apps", "default", "web", &o), 0);
		rs = store_obj_parse(o);
		store_obj_unref(o);
		json_set_int(json_path(rs, "spec"), "replicas", 3);
		cJSON_DeleteItemFromObject(json_path(rs, "metadata"), "resourceVersion");
		assert_int_equal(api_obj_update(env->store, rs, NULL, &e), 0);
		cJSON_Delete(rs);
	}
	next = run(env);
	assert_int_equal(next, now_ms + 10);
	assert_int_equal(store_count(env->store, "pods", "default"), 2);
	fail_pods = false;
	now_ms += 10;
	run(env);
	assert_int_equal(store_count(env->store, "pods", "default"), 3);
}

/* An event for a key waiting out its back-off runs it at once, as in client-go. */
static void test_event_cuts_backoff_short(void **state)
{
	struct env *env = *state;
	uint64_t next;

	fail_pods = true;
	create_rs(env, 1);
	for (int i = 0; i < 12; i++) {
		next = run(env);
		now_ms = next;
	}
	next = run(env);
	assert_true(next - now_ms >= 5ULL << 12);
	fail_pods = false;
	{
		struct err e = { 0 };
		cJSON *cm = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
					"{\"name\":\"x\",\"namespace\":\"default\"}}");
		struct store_obj *o;
		cJSON *rs;
		assert_int_equal(api_obj_create(env->store, cm, NULL, &e), 0);
		cJSON_Delete(cm);
		assert_int_equal(store_get(env->store, "replicasets.apps", "default", "web", &o), 0);
		rs = store_obj_parse(o);
		store_obj_unref(o);
		json_set_str(json_path(rs, "metadata"), "generateName", "");
		cJSON_AddItemToObject(json_path(rs, "metadata"), "annotations",
				      cJSON_Parse("{\"touched\":\"yes\"}"));
		cJSON_DeleteItemFromObject(json_path(rs, "metadata"), "resourceVersion");
		assert_int_equal(api_obj_update(env->store, rs, NULL, &e), 0);
		cJSON_Delete(rs);
	}
	run(env);
	assert_int_equal(store_count(env->store, "pods", "default"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test_setup_teardown(test_failed_reconcile_is_retried_with_backoff, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_event_cuts_backoff_short, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
