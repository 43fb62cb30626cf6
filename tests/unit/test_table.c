// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "api/table.h"

/* 2024-01-01T00:00:00Z */
#define T0 1704067200LL
#define CREATED "\"creationTimestamp\":\"2024-01-01T00:00:00Z\""

static cJSON *row_for(const char *kind, const char *json, int64_t now, const char *inc,
		      cJSON **table)
{
	cJSON *o = cJSON_Parse(json), *rows;

	if (!o)
		fail_msg("bad json %s", json);
	*table = table_new(kind);
	table_add_row(*table, kind, o, now, inc);
	cJSON_Delete(o);
	rows = cJSON_GetObjectItem(*table, "rows");
	assert_int_equal(cJSON_GetArraySize(rows), 1);
	return cJSON_GetArrayItem(rows, 0);
}

static const char *cell(cJSON *row, int i)
{
	cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(row, "cells"), i);
	static char buf[64];

	if (cJSON_IsNumber(c)) {
		snprintf(buf, sizeof(buf), "%d", c->valueint);
		return buf;
	}
	assert_true(cJSON_IsString(c));
	return c->valuestring;
}

/* cells of a one-row table joined with '|' */
static void expect_cells(const char *kind, const char *json, int64_t now, const char *want)
{
	cJSON *t, *row = row_for(kind, json, now, NULL, &t);
	char got[1024] = "";
	int n = cJSON_GetArraySize(cJSON_GetObjectItem(row, "cells"));
	int ncols = cJSON_GetArraySize(cJSON_GetObjectItem(t, "columnDefinitions"));

	assert_int_equal(n, ncols);
	for (int i = 0; i < n; i++) {
		strcat(got, i ? "|" : "");
		strcat(got, cell(row, i));
	}
	if (strcmp(got, want) != 0)
		fail_msg("%s\n got: %s\nwant: %s", json, got, want);
	cJSON_Delete(t);
}

static void test_age(void **state)
{
	static const struct {
		int64_t s;
		const char *want;
	} cases[] = {
		{ -5, "<invalid>" }, { -1, "0s" },	   { 0, "0s" },		{ 119, "119s" },
		{ 120, "2m" },	     { 150, "2m30s" },	   { 600, "10m" },	{ 10799, "179m" },
		{ 10800, "3h" },     { 12600, "3h30m" },   { 8 * 3600, "8h" },	{ 47 * 3600, "47h" },
		{ 48 * 3600, "2d" }, { 51 * 3600, "2d3h" }, { 8 * 86400, "8d" }, { 400 * 86400, "400d" },
		{ 730 * 86400, "2y" }, { 800 * 86400, "2y70d" }, { 3000 * 86400, "8y" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		table_age(cases[i].s, buf, sizeof(buf));
		if (strcmp(buf, cases[i].want))
			fail_msg("%lld: got %s want %s", (long long)cases[i].s, buf, cases[i].want);
	}
}

static void test_columns(void **state)
{
	cJSON *t = table_new("Pod"), *defs = cJSON_GetObjectItem(t, "columnDefinitions");
	static const char *const names[] = { "Name", "Ready", "Status", "Restarts", "Age", "IP",
					     "Node", "Nominated Node", "Readiness Gates" };
	static const int prio[] = { 0, 0, 0, 0, 0, 1, 1, 1, 1 };

	assert_string_equal(cJSON_GetObjectItem(t, "kind")->valuestring, "Table");
	assert_string_equal(cJSON_GetObjectItem(t, "apiVersion")->valuestring, "meta.k8s.io/v1");
	assert_int_equal(cJSON_GetArraySize(defs), 9);
	for (int i = 0; i < 9; i++) {
		cJSON *d = cJSON_GetArrayItem(defs, i);
		assert_string_equal(cJSON_GetObjectItem(d, "name")->valuestring, names[i]);
		assert_int_equal(cJSON_GetObjectItem(d, "priority")->valueint, prio[i]);
		assert_non_null(cJSON_GetObjectItem(d, "description"));
	}
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(defs, 0), "format")->valuestring,
			    "name");
	cJSON_Delete(t);
}

#define POD(status, extra)                                                                         \
	"{\"metadata\":{\"name\":\"web\"," CREATED extra "},\"spec\":{\"containers\":[{\"name\":"  \
	"\"c\"}]},\"status\":" status "}"

static void test_pod_status(void **state)
{
	int64_t now = T0 + 300;

	expect_cells("Pod", POD("{\"phase\":\"Pending\"}", ""), now,
		     "web|0/1|Pending|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", POD("{\"phase\":\"Pending\",\"containerStatuses\":[{\"name\":\"c\","
				"\"ready\":false,\"restartCount\":0,\"state\":{\"waiting\":{\"reason\":"
				"\"ContainerCreating\"}}}]}", ""),
		     now, "web|0/1|ContainerCreating|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod",
		     "{\"metadata\":{\"name\":\"web\"," CREATED "},\"spec\":{\"nodeName\":\"n1\","
		     "\"containers\":[{\"name\":\"c\"}]},\"status\":{\"phase\":\"Running\",\"podIP\":"
		     "\"10.0.0.5\",\"podIPs\":[{\"ip\":\"10.0.0.5\"}],\"containerStatuses\":[{\"name\":"
		     "\"c\",\"ready\":true,\"restartCount\":0,\"state\":{\"running\":{}}}]}}",
		     now, "web|1/1|Running|0|5m|10.0.0.5|n1|<none>|<none>");
	expect_cells("Pod", POD("{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"c\","
				"\"ready\":false,\"restartCount\":3,\"state\":{\"waiting\":{\"reason\":"
				"\"CrashLoopBackOff\"}},\"lastState\":{\"terminated\":{\"exitCode\":1,"
				"\"finishedAt\":\"2024-01-01T00:04:00Z\"}}}]}", ""),
		     now, "web|0/1|CrashLoopBackOff|3 (60s ago)|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", POD("{\"phase\":\"Succeeded\",\"containerStatuses\":[{\"name\":\"c\","
				"\"ready\":false,\"restartCount\":0,\"state\":{\"terminated\":{"
				"\"exitCode\":0,\"reason\":\"Completed\"}}}]}", ""),
		     now, "web|0/1|Completed|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", POD("{\"phase\":\"Failed\",\"containerStatuses\":[{\"name\":\"c\","
				"\"state\":{\"terminated\":{\"exitCode\":1,\"reason\":\"Error\"}}}]}", ""),
		     now, "web|0/1|Error|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", POD("{\"phase\":\"Failed\",\"containerStatuses\":[{\"name\":\"c\","
				"\"state\":{\"terminated\":{\"exitCode\":2}}}]}", ""),
		     now, "web|0/1|ExitCode:2|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", POD("{\"phase\":\"Failed\",\"containerStatuses\":[{\"name\":\"c\","
				"\"state\":{\"terminated\":{\"exitCode\":137,\"signal\":9}}}]}", ""),
		     now, "web|0/1|Signal:9|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", POD("{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"c\","
				"\"ready\":true,\"state\":{\"running\":{}}}]}",
				",\"deletionTimestamp\":\"2024-01-01T00:04:00Z\""),
		     now, "web|1/1|Terminating|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", POD("{\"phase\":\"Unknown\",\"reason\":\"NodeLost\"}",
				",\"deletionTimestamp\":\"2024-01-01T00:04:00Z\""),
		     now, "web|0/1|Unknown|0|5m|<none>|<none>|<none>|<none>");

	/* init containers */
#define INITPOD(st)                                                                               \
	"{\"metadata\":{\"name\":\"web\"," CREATED "},\"spec\":{\"initContainers\":[{\"name\":"    \
	"\"i1\"},{\"name\":\"i2\"}],\"containers\":[{\"name\":\"c\"}]},\"status\":{\"phase\":"     \
	"\"Pending\",\"initContainerStatuses\":" st "}}"
	expect_cells("Pod", INITPOD("[{\"name\":\"i1\",\"state\":{\"waiting\":{}}},{\"name\":\"i2\","
				    "\"state\":{\"waiting\":{}}}]"),
		     now, "web|0/1|Init:0/2|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", INITPOD("[{\"name\":\"i1\",\"state\":{\"terminated\":{\"exitCode\":0}}},"
				    "{\"name\":\"i2\",\"state\":{\"running\":{}}}]"),
		     now, "web|0/1|Init:1/2|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", INITPOD("[{\"name\":\"i1\",\"restartCount\":2,\"state\":{\"terminated\":"
				    "{\"exitCode\":1}}}]"),
		     now, "web|0/1|Init:ExitCode:1|2|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", INITPOD("[{\"name\":\"i1\",\"state\":{\"waiting\":{\"reason\":"
				    "\"ErrImagePull\"}}}]"),
		     now, "web|0/1|Init:ErrImagePull|0|5m|<none>|<none>|<none>|<none>");
	expect_cells("Pod", INITPOD("[{\"name\":\"i1\",\"state\":{\"terminated\":{\"exitCode\":1,"
				    "\"reason\":\"Error\"}}}]"),
		     now, "web|0/1|Init:Error|0|5m|<none>|<none>|<none>|<none>");

	/* row conditions and objects */
	cJSON *t, *row = row_for("Pod", POD("{\"phase\":\"Succeeded\"}", ""), now, NULL, &t);
	cJSON *conds = cJSON_GetObjectItem(row, "conditions");
	cJSON *obj = cJSON_GetObjectItem(row, "object");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(conds, 0), "type")->valuestring,
			    "Completed");
	assert_string_equal(cJSON_GetObjectItem(obj, "kind")->valuestring, "PartialObjectMetadata");
	assert_string_equal(cJSON_GetObjectItem(obj, "apiVersion")->valuestring, "meta.k8s.io/v1");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "name")
				    ->valuestring, "web");
	assert_null(cJSON_GetObjectItem(obj, "spec"));
	cJSON_Delete(t);
	row = row_for("Pod", POD("{}", ""), now, "Object", &t);
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(row, "object"), "spec"));
	cJSON_Delete(t);
	row = row_for("Pod", POD("{}", ""), now, "None", &t);
	assert_null(cJSON_GetObjectItem(row, "object"));
	cJSON_Delete(t);
}

static void test_workloads(void **state)
{
	int64_t now = T0 + 3 * 86400 + 3600;

	expect_cells("Deployment",
		     "{\"metadata\":{\"name\":\"web\"," CREATED "},\"spec\":{\"replicas\":3,\"selector\":"
		     "{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"env\","
		     "\"operator\":\"In\",\"values\":[\"qa\",\"prod\"]},{\"key\":\"canary\",\"operator\":"
		     "\"DoesNotExist\"}]},\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\","
		     "\"image\":\"nginx\"},{\"name\":\"b\",\"image\":\"envoy:1\"}]}}},\"status\":"
		     "{\"readyReplicas\":2,\"updatedReplicas\":3,\"availableReplicas\":2}}",
		     now, "web|2/3|3|2|3d1h|a,b|nginx,envoy:1|!canary,app=web,env in (prod,qa)");
	expect_cells("ReplicaSet",
		     "{\"metadata\":{\"name\":\"web-1\"," CREATED "},\"spec\":{\"replicas\":2,"
		     "\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"spec\":"
		     "{\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"}]}}},\"status\":"
		     "{\"replicas\":2,\"readyReplicas\":1}}",
		     now, "web-1|2|2|1|3d1h|a|nginx|app=web");
	expect_cells("Job",
		     "{\"metadata\":{\"name\":\"pi\"," CREATED "},\"spec\":{\"completions\":1,"
		     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"pi\",\"image\":\"perl\"}]}}},"
		     "\"status\":{\"succeeded\":1,\"startTime\":\"2024-01-01T00:00:00Z\","
		     "\"completionTime\":\"2024-01-01T00:00:42Z\",\"conditions\":[{\"type\":"
		     "\"Complete\",\"status\":\"True\"}]}}",
		     now, "pi|Complete|1/1|42s|3d1h|pi|perl|<none>");
	expect_cells("Job",
		     "{\"metadata\":{\"name\":\"pi\"," CREATED "},\"spec\":{\"parallelism\":3,"
		     "\"template\":{\"spec\":{\"containers\":[]}}},\"status\":{}}",
		     now, "pi|Running|0/1 of 3||3d1h|||<none>");
}

static void test_other_kinds(void **state)
{
	int64_t now = T0 + 45;

	expect_cells("Service",
		     "{\"metadata\":{\"name\":\"web\"," CREATED "},\"spec\":{\"type\":\"NodePort\","
		     "\"clusterIP\":\"10.96.0.10\",\"clusterIPs\":[\"10.96.0.10\"],\"selector\":"
		     "{\"tier\":\"fe\",\"app\":\"web\"},\"ports\":[{\"port\":80,\"protocol\":\"TCP\"},"
		     "{\"port\":443,\"nodePort\":30443,\"protocol\":\"TCP\"}]}}",
		     now, "web|NodePort|10.96.0.10|<none>|80/TCP,443:30443/TCP|45s|app=web,tier=fe");
	expect_cells("Service",
		     "{\"metadata\":{\"name\":\"lb\"," CREATED "},\"spec\":{\"type\":\"LoadBalancer\","
		     "\"clusterIP\":\"10.96.0.11\",\"ports\":[{\"port\":80,\"protocol\":\"UDP\"}]}}",
		     now, "lb|LoadBalancer|10.96.0.11|<pending>|80/UDP|45s|<none>");
	expect_cells("Service",
		     "{\"metadata\":{\"name\":\"db\"," CREATED "},\"spec\":{\"type\":\"ExternalName\","
		     "\"externalName\":\"db.example.com\"}}",
		     now, "db|ExternalName|<none>|db.example.com|<none>|45s|<none>");
	expect_cells("Node",
		     "{\"metadata\":{\"name\":\"n1\"," CREATED ",\"labels\":{\"node-role.kubernetes.io/"
		     "control-plane\":\"\",\"kubernetes.io/role\":\"edge\"}},\"spec\":{\"unschedulable\":"
		     "true},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
		     "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"192.168.1.2\"}],\"nodeInfo\":"
		     "{\"kubeletVersion\":\"v1.30.0-shoal\",\"kernelVersion\":\"6.1\"}}}",
		     now, "n1|Ready,SchedulingDisabled|control-plane,edge|45s|v1.30.0-shoal|192.168.1.2|"
			  "<none>|<unknown>|6.1|<unknown>");
	expect_cells("Node", "{\"metadata\":{\"name\":\"n2\"}}", now,
		     "n2|Unknown|<none>|<unknown>||<none>|<none>|<unknown>|<unknown>|<unknown>");
	expect_cells("Namespace", "{\"metadata\":{\"name\":\"default\"," CREATED "},\"status\":"
		     "{\"phase\":\"Active\"}}", now, "default|Active|45s");
	expect_cells("ConfigMap", "{\"metadata\":{\"name\":\"cfg\"," CREATED "},\"data\":{\"a\":\"1\","
		     "\"b\":\"2\"},\"binaryData\":{\"c\":\"AA==\"}}", now, "cfg|3|45s");
	expect_cells("Secret", "{\"metadata\":{\"name\":\"s\"," CREATED "},\"type\":\"Opaque\","
		     "\"data\":{\"a\":\"MQ==\"}}", now, "s|Opaque|1|45s");
	expect_cells("Event",
		     "{\"metadata\":{\"name\":\"web.1\"," CREATED "},\"involvedObject\":{\"kind\":"
		     "\"Pod\",\"name\":\"web\",\"fieldPath\":\"spec.containers{c}\"},\"reason\":"
		     "\"Pulled\",\"type\":\"Normal\",\"message\":\" Pulled image \\n\",\"source\":"
		     "{\"component\":\"shoald\",\"host\":\"n1\"},\"firstTimestamp\":"
		     "\"2024-01-01T00:00:10Z\",\"lastTimestamp\":\"2024-01-01T00:00:40Z\",\"count\":2}",
		     now, "5s|Normal|Pulled|pod/web|spec.containers{c}|shoald, n1|Pulled image|35s|2|"
			  "web.1");
	expect_cells("Endpoints",
		     "{\"metadata\":{\"name\":\"web\"," CREATED "},\"subsets\":[{\"addresses\":[{\"ip\":"
		     "\"10.0.0.1\"},{\"ip\":\"10.0.0.2\"},{\"ip\":\"fd00::3\"},{\"ip\":\"10.0.0.4\"}],"
		     "\"ports\":[{\"port\":80}]}]}",
		     now, "web|10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 1 more...|45s");
	expect_cells("Endpoints", "{\"metadata\":{\"name\":\"web\"," CREATED "}}", now,
		     "web|<none>|45s");
	expect_cells("Widget", "{\"metadata\":{\"name\":\"w\"," CREATED "}}", now,
		     "w|2024-01-01T00:00:00Z");
	/* garbage never crashes */
	expect_cells("Pod", "{\"metadata\":[],\"spec\":5,\"status\":{\"containerStatuses\":{}}}", now,
		     "|0/0||0|<unknown>|<none>|<none>|<none>|<none>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_age),	     cmocka_unit_test(test_columns),
		cmocka_unit_test(test_pod_status),   cmocka_unit_test(test_workloads),
		cmocka_unit_test(test_other_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
