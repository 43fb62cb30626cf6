// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/yaml.h"

static void expect_json(const char *yaml, const char *want)
{
	cJSON *docs = NULL, *w = cJSON_Parse(want);
	struct err e = { 0 };
	int r = yaml_parse_docs(yaml, strlen(yaml), &docs, &e);

	if (r < 0)
		fail_msg("%s: %d %s", yaml, r, e.message);
	if (!cJSON_Compare(docs, w, true)) {
		char *got = cJSON_PrintUnformatted(docs);
		fail_msg("%s\n got %s\nwant %s", yaml, got, want);
	}
	cJSON_Delete(docs);
	cJSON_Delete(w);
}

static void expect_error(const char *yaml, size_t len)
{
	cJSON *docs = NULL;
	struct err e = { 0 };

	assert_int_equal(yaml_parse_docs(yaml, len, &docs, &e), -EINVAL);
	assert_int_equal(e.code, 400);
	assert_null(docs);
}

static void test_yaml_types(void **state)
{
	expect_json("a: 1\nb: -2.5\nc: true\nd: null\ne: ~\nf: hello\ng: \"123\"\nh: 'true'\n"
		    "i: yes\nj: 0x1f\nk: 1e3\nl:\nm: .inf\nn: 010\n",
		    "[{\"a\":1,\"b\":-2.5,\"c\":true,\"d\":null,\"e\":null,\"f\":\"hello\",\"g\":\"123\","
		    "\"h\":\"true\",\"i\":\"yes\",\"j\":31,\"k\":1000,\"l\":null,\"m\":\".inf\","
		    "\"n\":10}]");
	expect_json("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n"
		    "  containers:\n  - name: c\n    image: nginx:1.25\n    args: [\"a\\tb\", '--x=1']\n"
		    "    command:\n    - sh\n    - |\n      echo hi\n      exit 0\n",
		    "[{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\",\"labels\":"
		    "{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"nginx:1.25\","
		    "\"args\":[\"a\\tb\",\"--x=1\"],\"command\":[\"sh\",\"echo hi\\nexit 0\\n\"]}]}}]");
	expect_json("---\na: 1\n---\n---\nb: [1, {c: d}]\n...\n", "[{\"a\":1},{\"b\":[1,{\"c\":\"d\"}]}]");
	expect_json("1: one\n", "[{\"1\":\"one\"}]");
	expect_json("a: !!str 12\n", "[{\"a\":\"12\"}]");
}

static void test_json_bodies(void **state)
{
	expect_json("  {\"a\": [1, \"x\\\"y\"], \"b\": {}}\n", "[{\"a\":[1,\"x\\\"y\"],\"b\":{}}]");
	expect_json("[1,2]", "[[1,2]]");
	/* flow YAML that is not JSON still parses */
	expect_json("{a: b}", "[{\"a\":\"b\"}]");
	expect_json("{\"a\":1}\n---\n{\"b\":2}\n", "[{\"a\":1},{\"b\":2}]");
}

static void test_yaml_errors(void **state)
{
	expect_error("a: &x [1]\nb: *x\n", 17);
	expect_error("a: [1, 2\n", 9);
	expect_error("%00e\xac", 5); /* libfyaml 0.8 looped forever on this */
	expect_error("%Y\xac\n", 4);
	expect_error("a: \xc3", 4);
	expect_error("a: \xed\xa0\x80", 6); /* UTF-16 surrogate */
	expect_error("? [a, b]\n: c\n", 13);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_types),
		cmocka_unit_test(test_json_bodies),
		cmocka_unit_test(test_yaml_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
