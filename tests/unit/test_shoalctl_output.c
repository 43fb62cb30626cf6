// SPDX-License-Identifier: Apache-2.0
/* shoalctl output: Table rendering, ages, describe, manifests, server errors, JSON layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "lib/yaml.h"
#include "tools/shoalctl/shoalctl.h"

static const char pods_table[] =
	"{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{\"resourceVersion\":\"7\"},"
	"\"columnDefinitions\":["
	" {\"name\":\"Name\",\"type\":\"string\",\"format\":\"name\",\"priority\":0},"
	" {\"name\":\"Ready\",\"type\":\"string\",\"priority\":0},"
	" {\"name\":\"Status\",\"type\":\"string\",\"priority\":0},"
	" {\"name\":\"Restarts\",\"type\":\"integer\",\"priority\":0},"
	" {\"name\":\"Age\",\"type\":\"string\",\"priority\":0},"
	" {\"name\":\"IP\",\"type\":\"string\",\"priority\":1},"
	" {\"name\":\"Node\",\"type\":\"string\",\"priority\":1}],"
	"\"rows\":["
	" {\"cells\":[\"web-1\",\"1/1\",\"Running\",0,\"5m\",\"10.1.0.5\",\"n1\"],"
	"  \"object\":{\"kind\":\"PartialObjectMetadata\",\"metadata\":{\"name\":\"web-1\","
	"   \"namespace\":\"default\",\"labels\":{\"app\":\"web\"}}}},"
	" {\"cells\":[\"database-primary\",\"0/1\",\"Pending\",12,\"2d3h\",null,\"<none>\"],"
	"  \"object\":{\"kind\":\"PartialObjectMetadata\",\"metadata\":{\"name\":\"database-primary\","
	"   \"namespace\":\"prod\"}}}]}";

static char *render(const char *table_text, struct ctl_tab_opts opts, bool header)
{
	_cleanup_json_ cJSON *t = cJSON_Parse(table_text);
	struct ctl_tab tab = { .opts = opts };
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(t);
	assert_non_null(f);
	assert_int_equal(ctl_tab_add(&tab, t), 0);
	ctl_tab_print(&tab, header, f);
	fclose(f);
	ctl_tab_done(&tab);
	return out;
}

static void test_table_default(void **state)
{
	_cleanup_free_ char *out = render(pods_table, (struct ctl_tab_opts){}, true);

	assert_string_equal(out, "NAME               READY   STATUS    RESTARTS   AGE\n"
				 "web-1              1/1     Running   0          5m\n"
				 "database-primary   0/1     Pending   12         2d3h\n");
}

static void test_table_wide_namespace_labels(void **state)
{
	_cleanup_free_ char *wide = render(pods_table, (struct ctl_tab_opts){ .wide = true },
					   false);
	_cleanup_free_ char *ns = render(
		pods_table, (struct ctl_tab_opts){ .show_namespace = true, .show_labels = true },
		true);
	_cleanup_free_ char *kind = render(
		pods_table, (struct ctl_tab_opts){ .show_kind = true, .kind_ref = "pod" }, true);

	/* -o wide: priority 1 columns; null cells print <none>; no header: content widths */
	assert_string_equal(wide,
			    "web-1              1/1   Running   0    5m     10.1.0.5   n1\n"
			    "database-primary   0/1   Pending   12   2d3h   <none>     <none>\n");
	assert_string_equal(ns,
			    "NAMESPACE   NAME               READY   STATUS    RESTARTS   AGE    LABELS\n"
			    "default     web-1              1/1     Running   0          5m     app=web\n"
			    "prod        database-primary   0/1     Pending   12         2d3h   <none>\n");
	assert_non_null(strstr(kind, "\npod/web-1   "));
}

static void test_table_incremental(void **state)
{
	/* watch: later rows (events without column definitions) keep earlier widths */
	_cleanup_json_ cJSON *t = cJSON_Parse(pods_table);
	_cleanup_json_ cJSON *ev = cJSON_Parse(
		"{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"columnDefinitions\":[],"
		"\"rows\":[{\"cells\":[\"a\",\"1/1\",\"Running\",1,\"1s\",\"\",\"\"]}]}");
	struct ctl_tab tab = {};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_int_equal(ctl_tab_add(&tab, t), 0);
	ctl_tab_print(&tab, true, f);
	assert_int_equal(ctl_tab_add(&tab, ev), 0);
	ctl_tab_print(&tab, false, f);
	fclose(f);
	ctl_tab_done(&tab);
	assert_non_null(strstr(out, "2d3h\na                  1/1     Running   1          1s\n"));
	free(out);

	/* rows without any column definitions cannot be laid out */
	struct ctl_tab empty = {};
	assert_int_equal(ctl_tab_add(&empty, ev), -EINVAL);
	ctl_tab_done(&empty);
}

static void test_cells_and_age(void **state)
{
	static const struct {
		int64_t s;
		const char *want;
	} ages[] = {
		{ -5, "<invalid>" }, { -1, "0s" },     { 0, "0s" },	   { 119, "119s" },
		{ 120, "2m" },	     { 200, "3m20s" }, { 3000, "50m" },	   { 3 * 3600, "3h" },
		{ 3 * 3600 + 600, "3h10m" },	       { 30 * 3600, "30h" }, { 51 * 3600, "2d3h" },
		{ 48 * 3600, "2d" }, { 30 * 86400, "30d" },		   { 800 * 86400, "2y70d" },
		{ 3650 * 86400, "10y" },
	};
	static const struct {
		const char *json, *want;
	} cells[] = {
		{ "\"x\"", "x" },     { "3", "3" },	 { "-2", "-2" },	  { "1.5", "1.5" },
		{ "true", "true" },   { "null", "<none>" }, { "[1,2]", "[1,2]" },
	};
	char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(ages); i++) {
		ctl_age(ages[i].s, buf, sizeof(buf));
		assert_string_equal(buf, ages[i].want);
	}
	for (size_t i = 0; i < ARRAY_SIZE(cells); i++) {
		_cleanup_json_ cJSON *j = cJSON_Parse(cells[i].json);
		_cleanup_free_ char *s = ctl_cell_string(j);

		assert_string_equal(s, cells[i].want);
	}
}

static void test_table_fallback(void **state)
{
	_cleanup_json_ cJSON *list = cJSON_Parse(
		"{\"kind\":\"PodList\",\"items\":[{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\","
		"\"creationTimestamp\":\"2024-01-01T00:00:00Z\"}},{\"metadata\":{\"name\":\"b\"}}]}");
	_cleanup_json_ cJSON *t = ctl_table_fallback(list, 1704067200 + 200);
	struct ctl_tab tab = { .opts.show_namespace = true };
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(t);
	assert_int_equal(ctl_tab_add(&tab, t), 0);
	ctl_tab_print(&tab, true, f);
	fclose(f);
	ctl_tab_done(&tab);
	assert_string_equal(out, "NAMESPACE   NAME   AGE\n"
				 "x           a      3m20s\n"
				 "            b      <unknown>\n");
	free(out);
}

static void test_manifest_parse(void **state)
{
	static const char docs[] =
		"---\n"
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
		"---\n"
		"# only a comment\n"
		"---\n"
		"apiVersion: v1\nkind: List\nitems:\n"
		"- {apiVersion: v1, kind: Pod, metadata: {name: b}}\n"
		"- {apiVersion: apps/v1, kind: Deployment, metadata: {name: c}}\n"
		"---\n"
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"d\"}}\n";
	_cleanup_json_ cJSON *out = cJSON_CreateArray(), *bad = cJSON_CreateArray();
	struct err e = {};
	const char *names[] = { "a", "b", "c", "d" };

	assert_int_equal(ctl_manifest_parse(docs, strlen(docs), "f.yaml", out, &e), 0);
	assert_int_equal(cJSON_GetArraySize(out), 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(ctl_json_str(cJSON_GetArrayItem(out, i), "metadata.name"),
				    names[i]);
	assert_int_equal(ctl_manifest_parse("metadata: {name: x}\n", 20, "f.yaml", bad, &e),
			 -EINVAL);
	assert_non_null(strstr(e.message, "apiVersion and kind must be set"));
	assert_int_equal(ctl_manifest_parse("- 1\n- 2\n", 8, "g.yaml", bad, &e), -EINVAL);
}

static void test_status_errors(void **state)
{
	struct err e = {};

	assert_int_equal(ctl_status_to_err(404,
					   "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
					   "\"Failure\",\"message\":\"pods \\\"x\\\" not found\","
					   "\"reason\":\"NotFound\",\"code\":404}",
					   &e),
			 -ENOENT);
	assert_int_equal(e.code, 404);
	assert_string_equal(e.reason, "NotFound");
	assert_string_equal(e.message, "pods \"x\" not found");

	e = (struct err){};
	assert_int_equal(ctl_status_to_err(409,
					   "{\"kind\":\"Status\",\"message\":\"already there\","
					   "\"reason\":\"AlreadyExists\"}",
					   &e),
			 -EEXIST);
	assert_string_equal(e.reason, "AlreadyExists");

	e = (struct err){};
	assert_int_equal(ctl_status_to_err(404, "404 page not found\n", &e), -ENOENT);
	assert_string_equal(e.message, "the server could not find the requested resource");

	e = (struct err){};
	assert_int_equal(ctl_status_to_err(500, "boom\nmore", &e), -EIO);
	assert_string_equal(e.reason, "InternalError");
	assert_string_equal(e.message, "boom");

	e = (struct err){};
	assert_int_equal(ctl_status_to_err(422,
					   "{\"kind\":\"Status\",\"message\":\"bad\",\"reason\":"
					   "\"Invalid\",\"details\":{\"causes\":[{\"reason\":"
					   "\"FieldValueRequired\",\"field\":\"metadata.name\","
					   "\"message\":\"Required value\"}]}}",
					   &e),
			 -EINVAL);
	assert_int_equal(e.ncauses, 1);
	assert_string_equal(e.causes[0].field, "metadata.name");
}

static void test_print_json(void **state)
{
	_cleanup_json_ cJSON *j = cJSON_Parse("{\"a\":{\"b\":[1,\"x\\ty\"]}}");
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	ctl_print_json(j, f);
	fclose(f);
	assert_string_equal(out, "{\n    \"a\": {\n        \"b\": [1, \"x\\ty\"]\n    }\n}\n");
	free(out);
}

static void test_print_yaml(void **state)
{
	/* -o yaml: plain where YAML reads the same back, quoted where it would change type */
	_cleanup_json_ cJSON *j = cJSON_Parse(
		"{\"kind\":\"Pod\",\"metadata\":{\"labels\":{\"a\":\"true\",\"b\":\"123\","
		"\"c\":\"x: y\",\"d\":\"\"}},\"spec\":{\"args\":[\"-c\",\"a\\nb\"],\"n\":5,"
		"\"x\":null,\"m\":{}}}");
	_cleanup_json_ cJSON *back = NULL;
	struct err e = {};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_int_equal(ctl_print_yaml(j, f), 0);
	fclose(f);
	assert_string_equal(out, "kind: Pod\n"
				 "metadata:\n"
				 "  labels:\n"
				 "    a: \"true\"\n"
				 "    b: \"123\"\n"
				 "    c: \"x: y\"\n"
				 "    d: \"\"\n"
				 "spec:\n"
				 "  args:\n"
				 "  - \"-c\"\n"
				 "  - \"a\\nb\"\n"
				 "  \"n\": 5\n"
				 "  x: null\n"
				 "  m: {}\n");
	assert_int_equal(yaml_parse_one(out, len, &back, &e), 0);
	assert_true(cJSON_Compare(j, back, true));
	free(out);
}

static void test_describe_pod(void **state)
{
	_cleanup_json_ cJSON *pod = cJSON_Parse(
		"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\","
		"\"namespace\":\"default\",\"uid\":\"u1\",\"labels\":{\"app\":\"web\",\"tier\":\"fe\"},"
		"\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"},"
		"\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"web-7d\",\"controller\":true}]},"
		"\"spec\":{\"nodeName\":\"n1\",\"restartPolicy\":\"Always\",\"containers\":[{\"name\":"
		"\"nginx\",\"image\":\"nginx:1.25\",\"ports\":[{\"containerPort\":80}],"
		"\"env\":[{\"name\":\"MODE\",\"value\":\"prod\"}]}]},"
		"\"status\":{\"phase\":\"Running\",\"podIP\":\"10.1.0.5\",\"hostIP\":\"192.168.1.2\","
		"\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
		"\"containerStatuses\":[{\"name\":\"nginx\",\"ready\":true,\"restartCount\":2,"
		"\"state\":{\"running\":{\"startedAt\":\"2024-01-01T00:00:00Z\"}}}]}}");
	_cleanup_json_ cJSON *events = cJSON_Parse(
		"[{\"type\":\"Normal\",\"reason\":\"Scheduled\",\"message\":\"assigned to n1\","
		"\"lastTimestamp\":\"2024-01-01T00:00:00Z\",\"source\":{\"component\":\"scheduler\"}},"
		"{\"type\":\"Warning\",\"reason\":\"BackOff\",\"message\":\"restarting\",\"count\":3,"
		"\"firstTimestamp\":\"2024-01-01T00:00:00Z\","
		"\"lastTimestamp\":\"2024-01-01T00:01:00Z\",\"source\":{\"component\":\"kubelet\","
		"\"host\":\"n1\"}}]");
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_int_equal(ctl_describe_render(pod, events, 1704067200 + 120, f), 0);
	fclose(f);
	assert_non_null(strstr(out, "Name:               web\n"));
	assert_non_null(strstr(out, "Namespace:          default\n"));
	assert_non_null(strstr(out, "Labels:             app=web\n                    tier=fe\n"));
	assert_non_null(strstr(out, "Annotations:        <none>\n")); /* last-applied hidden */
	assert_non_null(strstr(out, "Controlled By:      ReplicaSet/web-7d\n"));
	assert_non_null(strstr(out, "Node:               n1/192.168.1.2\n"));
	assert_non_null(strstr(out, "Status:             Running\n"));
	assert_non_null(strstr(out, "IP:                 10.1.0.5\n"));
	assert_non_null(strstr(out, "  nginx:\n    Image:          nginx:1.25\n"));
	assert_non_null(strstr(out, "    Port:           80/TCP\n"));
	assert_non_null(strstr(out, "    State:          Running\n"));
	assert_non_null(strstr(out, "    Restart Count:  2\n"));
	assert_non_null(strstr(out, "      MODE:  prod\n"));
	assert_non_null(strstr(out, "Conditions:\n  Type    Status\n  ----    ------\n"
				    "  Ready   True\n"));
	assert_non_null(strstr(out, "Events:\n  Type      Reason      Age"));
	assert_non_null(strstr(out, "  Normal    Scheduled   2m"));
	assert_non_null(strstr(out, "  Warning   BackOff     60s (x3 over 2m)   kubelet, n1"));
}

static void test_describe_generic(void **state)
{
	_cleanup_json_ cJSON *obj = cJSON_Parse(
		"{\"apiVersion\":\"x/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w\","
		"\"creationTimestamp\":\"2024-01-01T00:00:00Z\"},\"spec\":{\"size\":3}}");
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_int_equal(ctl_describe_render(obj, NULL, 0, f), 0);
	fclose(f);
	assert_non_null(strstr(out, "CreationTimestamp:  Mon, 01 Jan 2024 00:00:00 +0000\n"));
	assert_non_null(strstr(out, "Spec:\n  size: 3\n"));
	assert_non_null(strstr(out, "Events:             <none>\n"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_default),
		cmocka_unit_test(test_table_wide_namespace_labels),
		cmocka_unit_test(test_table_incremental),
		cmocka_unit_test(test_cells_and_age),
		cmocka_unit_test(test_table_fallback),
		cmocka_unit_test(test_manifest_parse),
		cmocka_unit_test(test_status_errors),
		cmocka_unit_test(test_print_json),
		cmocka_unit_test(test_print_yaml),
		cmocka_unit_test(test_describe_pod),
		cmocka_unit_test(test_describe_generic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
