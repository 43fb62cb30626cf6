// SPDX-License-Identifier: Apache-2.0
/* Pod manager pieces that need no kernel: Event aggregation over an in-memory store, QoS
 * classes, container id helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "api/server-internal.h"
#include "daemon/events.h"
#include "daemon/pods-internal.h"
#include "lib/json.h"

static int collect(struct store_obj *o, void *ud)
{
	cJSON_AddItemToArray(ud, store_obj_parse(o));
	return 0;
}

static void test_events_aggregate(void **state)
{
	struct store_options so = { .path = ":memory:", .node_name = "n1" };
	struct store *s = NULL;
	struct events *ev = NULL;
	struct err e = { 0 };
	cJSON *pod = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
				 "\"web\",\"namespace\":\"default\",\"uid\":\"u1\"}}");
	cJSON *lst = cJSON_CreateArray(), *it;
	int backoff = 0, started = 0;

	assert_int_equal(store_open(&so, &s), 0);
	assert_int_equal(api_obj_bootstrap(s, &e), 0);
	assert_int_equal(events_new(s, "kubelet", "n1", &ev), 0);
	events_record(ev, pod, "spec.containers{c}", "Warning", "BackOff", "Back-off %s", "x");
	events_record(ev, pod, "spec.containers{c}", "Warning", "BackOff", "Back-off %s", "x");
	events_record(ev, pod, NULL, "Normal", "Started", "Started container c");
	store_list(s, "events", "default", NULL, NULL, collect, lst);
	assert_int_equal(cJSON_GetArraySize(lst), 2);
	cJSON_ArrayForEach(it, lst)
	{
		const char *reason = json_str(it, "reason", "");
		assert_string_equal(json_str(it, "involvedObject.uid", ""), "u1");
		assert_string_equal(json_str(it, "source.component", ""), "kubelet");
		assert_int_equal(strncmp(json_str(it, "metadata.name", ""), "web.", 4), 0);
		if (streq(reason, "BackOff")) {
			backoff++;
			assert_int_equal(json_int(it, "count", 0), 2);
			assert_string_equal(json_str(it, "type", ""), "Warning");
			assert_string_equal(json_str(it, "involvedObject.fieldPath", ""),
					    "spec.containers{c}");
		} else if (streq(reason, "Started")) {
			started++;
			assert_int_equal(json_int(it, "count", 0), 1);
		}
	}
	assert_int_equal(backoff, 1);
	assert_int_equal(started, 1);
	cJSON_Delete(lst);
	events_free(ev);
	store_close(s);
	cJSON_Delete(pod);
}

static void test_qos(void **state)
{
	cJSON *p = cJSON_Parse("{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}");
	assert_string_equal(pod_qos_class(p), "BestEffort");
	cJSON_Delete(p);
	p = cJSON_Parse("{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{\"limits\":"
			"{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}");
	assert_string_equal(pod_qos_class(p), "Guaranteed");
	cJSON_Delete(p);
	p = cJSON_Parse("{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{\"limits\":"
			"{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"requests\":{\"cpu\":\"500m\"}}}]}}");
	assert_string_equal(pod_qos_class(p), "Burstable");
	cJSON_Delete(p);
	p = cJSON_Parse("{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":"
			"{\"memory\":\"1Gi\"}}}]}}");
	assert_string_equal(pod_qos_class(p), "Burstable");
	cJSON_Delete(p);
}

static void test_ids(void **state)
{
	char *path = NULL;

	assert_string_equal(pods_container_id("crun://abc-c0-3"), "abc-c0-3");
	assert_int_equal(pods_id_attempt("0123456789ab-c0-3"), 3);
	assert_int_equal(pods_id_attempt("0123456789ab-i1-12"), 12);
	assert_int_equal(pods_log_path("/s", "u", "web", 2, &path), 0);
	assert_string_equal(path, "/s/pods/u/logs/web/2.log");
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_aggregate),
		cmocka_unit_test(test_qos),
		cmocka_unit_test(test_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
