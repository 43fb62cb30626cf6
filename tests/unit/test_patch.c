// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "api/patch.h"

enum mode { MERGE, SMP, JSON };

/* Apply and compare with `want` (NULL: expect an error with code `code`). */
static void check(enum mode m, const char *kind, const char *target, const char *patch,
		  const char *want, int code)
{
	cJSON *t = cJSON_Parse(target), *p = cJSON_Parse(patch), *w = want ? cJSON_Parse(want) : NULL;
	cJSON *before = cJSON_Duplicate(t, true);
	struct err e = { 0 };
	int r;

	assert_non_null(t);
	assert_non_null(p);
	r = m == MERGE ? patch_merge(t, p, &e) : m == SMP ? patch_strategic(t, p, kind, &e)
							  : patch_json(t, p, &e);
	if (want) {
		assert_non_null(w);
		if (r != 0)
			fail_msg("patch failed: %d %s", r, e.message);
		if (!cJSON_Compare(t, w, true)) {
			char *got = cJSON_PrintUnformatted(t);
			fail_msg("got %s\nwant %s", got, want);
		}
	} else {
		if (r != -EINVAL)
			fail_msg("expected failure for %s", patch);
		assert_int_equal(e.code, code);
		assert_true(cJSON_Compare(t, before, true)); /* untouched on error */
	}
	cJSON_Delete(t);
	cJSON_Delete(p);
	cJSON_Delete(w);
	cJSON_Delete(before);
}

/* RFC 7386 appendix A */
static void test_merge_rfc7386(void **state)
{
	check(MERGE, NULL, "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}", 0);
	check(MERGE, NULL, "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}", 0);
	check(MERGE, NULL, "{\"a\":\"b\"}", "{\"a\":null}", "{}", 0);
	check(MERGE, NULL, "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}", 0);
	check(MERGE, NULL, "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}", 0);
	check(MERGE, NULL, "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}", 0);
	check(MERGE, NULL, "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
	      "{\"a\":{\"b\":\"d\"}}", 0);
	check(MERGE, NULL, "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}", 0);
	check(MERGE, NULL, "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}", 0);
	check(MERGE, NULL, "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}", 0);
	check(MERGE, NULL, "{\"a\":\"b\"}", "[\"c\"]", NULL, 400);
	/* labels edit, the everyday case */
	check(MERGE, NULL, "{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}}",
	      "{\"metadata\":{\"labels\":{\"a\":null,\"c\":\"3\"}}}",
	      "{\"metadata\":{\"labels\":{\"b\":\"2\",\"c\":\"3\"}}}", 0);
}

#define POD(containers) "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":" containers "}}"

static void test_smp_lists(void **state)
{
	/* merge by name */
	check(SMP, "Pod", POD("[{\"name\":\"a\",\"image\":\"a1\"},{\"name\":\"b\",\"image\":\"b1\"}]"),
	      "{\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"b2\"}]}}",
	      POD("[{\"name\":\"a\",\"image\":\"a1\"},{\"name\":\"b\",\"image\":\"b2\"}]"), 0);
	/* new element appended */
	check(SMP, "Pod", POD("[{\"name\":\"a\",\"image\":\"a1\"}]"),
	      "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"c1\"}]}}",
	      POD("[{\"name\":\"a\",\"image\":\"a1\"},{\"name\":\"c\",\"image\":\"c1\"}]"), 0);
	/* $patch: delete on an element */
	check(SMP, "Pod", POD("[{\"name\":\"a\",\"image\":\"a1\"},{\"name\":\"b\",\"image\":\"b1\"}]"),
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$patch\":\"delete\"}]}}",
	      POD("[{\"name\":\"b\",\"image\":\"b1\"}]"), 0);
	/* $patch: replace on the list */
	check(SMP, "Pod", POD("[{\"name\":\"a\",\"image\":\"a1\"},{\"name\":\"b\",\"image\":\"b1\"}]"),
	      "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"c1\"},{\"$patch\":\"replace\"}]}}",
	      POD("[{\"name\":\"c\",\"image\":\"c1\"}]"), 0);
	/* nested: env by name, ports by containerPort, args (no strategy) replaced */
	check(SMP, "Pod",
	      POD("[{\"name\":\"a\",\"args\":[\"x\",\"y\"],\"env\":[{\"name\":\"A\",\"value\":\"1\"},"
		  "{\"name\":\"B\",\"value\":\"2\"}],\"ports\":[{\"containerPort\":80,\"name\":\"h\"}]}]"),
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"z\"],\"env\":[{\"name\":\"B\","
	      "\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"}],\"ports\":[{\"containerPort\":443}]}]}}",
	      POD("[{\"name\":\"a\",\"args\":[\"z\"],\"env\":[{\"name\":\"A\",\"value\":\"1\"},"
		  "{\"name\":\"B\",\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"}],\"ports\":"
		  "[{\"containerPort\":80,\"name\":\"h\"},{\"containerPort\":443}]}]"), 0);
	/* a null inside a merged element deletes that field */
	check(SMP, "Pod", POD("[{\"name\":\"a\",\"image\":\"a1\",\"command\":[\"sh\"]}]"),
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"command\":null}]}}",
	      POD("[{\"name\":\"a\",\"image\":\"a1\"}]"), 0);
	/* missing merge key */
	check(SMP, "Pod", POD("[{\"name\":\"a\"}]"),
	      "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}", NULL, 422);
	/* unknown kind: lists are replaced like a merge patch */
	check(SMP, "Widget", POD("[{\"name\":\"a\"}]"),
	      "{\"spec\":{\"containers\":[{\"name\":\"b\"}]}}", POD("[{\"name\":\"b\"}]"), 0);
	/* a patch list where the original has none still gets its directives applied */
	check(SMP, "Pod", "{\"spec\":{}}",
	      "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}},{\"name\":\"w\","
	      "\"$patch\":\"delete\"}]}}",
	      "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}]}}", 0);
}

static void test_smp_templates_and_kinds(void **state)
{
	/* Deployment: spec.template.spec is a pod spec */
	check(SMP, "Deployment",
	      "{\"spec\":{\"replicas\":1,\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\","
	      "\"image\":\"nginx:1\"},{\"name\":\"s\",\"image\":\"side\"}]}}}}",
	      "{\"spec\":{\"replicas\":3,\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\","
	      "\"image\":\"nginx:2\"}]}}}}",
	      "{\"spec\":{\"replicas\":3,\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\","
	      "\"image\":\"nginx:2\"},{\"name\":\"s\",\"image\":\"side\"}]}}}}", 0);
	/* Service ports by port */
	check(SMP, "Service",
	      "{\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":8080},{\"port\":443}]}}",
	      "{\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":9090}]}}",
	      "{\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":9090},{\"port\":443}]}}", 0);
	/* conditions by type */
	check(SMP, "Pod",
	      "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},"
	      "{\"type\":\"PodScheduled\",\"status\":\"True\"}]}}",
	      "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
	      "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},"
	      "{\"type\":\"PodScheduled\",\"status\":\"True\"}]}}", 0);
	/* ownerReferences by uid */
	check(SMP, "ReplicaSet",
	      "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"name\":\"a\"}]}}",
	      "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"2\",\"name\":\"b\"}]}}",
	      "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"name\":\"a\"},{\"uid\":\"2\","
	      "\"name\":\"b\"}]}}", 0);
	/* finalizers: primitive list merged as a set */
	check(SMP, "ConfigMap", "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
	      "{\"metadata\":{\"finalizers\":[\"b\",\"c\"]}}",
	      "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}", 0);
	check(SMP, "ConfigMap", "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}",
	      "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"b\"]}}",
	      "{\"metadata\":{\"finalizers\":[\"a\",\"c\"]}}", 0);
	/* Node: podCIDRs set, addresses by type */
	check(SMP, "Node", "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"1\"}]}}",
	      "{\"status\":{\"addresses\":[{\"type\":\"Hostname\",\"address\":\"n\"}]}}",
	      "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"1\"},"
	      "{\"type\":\"Hostname\",\"address\":\"n\"}]}}", 0);
	/* ConfigMap data is a map: merged key by key, null deletes */
	check(SMP, "ConfigMap", "{\"data\":{\"a\":\"1\",\"b\":\"2\"}}",
	      "{\"data\":{\"a\":null,\"c\":\"3\"}}", "{\"data\":{\"b\":\"2\",\"c\":\"3\"}}", 0);
}

static void test_smp_directives(void **state)
{
	/* $retainKeys (what kubectl sends for Deployment strategy) */
	check(SMP, "Deployment",
	      "{\"spec\":{\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":"
	      "{\"maxSurge\":1}}}}",
	      "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":\"Recreate\"}}}",
	      "{\"spec\":{\"strategy\":{\"type\":\"Recreate\"}}}", 0);
	check(SMP, "Deployment", "{\"spec\":{\"strategy\":{\"type\":\"RollingUpdate\"}}}",
	      "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"rollingUpdate\":{}}}}", NULL,
	      422);
	/* $patch: replace / delete on maps */
	check(SMP, "Pod", "{\"spec\":{\"nodeSelector\":{\"a\":\"1\",\"b\":\"2\"}}}",
	      "{\"spec\":{\"nodeSelector\":{\"$patch\":\"replace\",\"c\":\"3\"}}}",
	      "{\"spec\":{\"nodeSelector\":{\"c\":\"3\"}}}", 0);
	check(SMP, "Pod", "{\"spec\":{\"nodeSelector\":{\"a\":\"1\"},\"x\":1}}",
	      "{\"spec\":{\"nodeSelector\":{\"$patch\":\"delete\"}}}", "{\"spec\":{\"x\":1}}", 0);
	check(SMP, "Pod", "{\"spec\":{}}", "{\"spec\":{\"$patch\":\"bogus\"}}", NULL, 422);
	/* $setElementOrder: kubectl apply's ordering hint, honoured and stripped */
	check(SMP, "Pod", POD("[{\"name\":\"a\",\"image\":\"1\"},{\"name\":\"b\",\"image\":\"2\"}]"),
	      "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"b\"},{\"name\":\"a\"}],"
	      "\"containers\":[{\"name\":\"a\",\"image\":\"3\"}]}}",
	      POD("[{\"name\":\"b\",\"image\":\"2\"},{\"name\":\"a\",\"image\":\"3\"}]"), 0);
	check(SMP, "ConfigMap", "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
	      "{\"metadata\":{\"$setElementOrder/finalizers\":[\"b\",\"a\"]}}",
	      "{\"metadata\":{\"finalizers\":[\"b\",\"a\"]}}", 0);
	/* the shape of a real `kubectl apply` patch */
	check(SMP, "Deployment",
	      "{\"metadata\":{\"name\":\"web\",\"annotations\":{\"x\":\"1\"}},\"spec\":{\"template\":"
	      "{\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"nginx:1.1\",\"ports\":"
	      "[{\"containerPort\":80,\"protocol\":\"TCP\"}]}]}}}}",
	      "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
	      "\"{}\"}},\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":[{\"name\":"
	      "\"web\"}],\"containers\":[{\"image\":\"nginx:1.2\",\"name\":\"web\"}]}}}}",
	      "{\"metadata\":{\"name\":\"web\",\"annotations\":{\"x\":\"1\",\"kubectl.kubernetes.io/"
	      "last-applied-configuration\":\"{}\"}},\"spec\":{\"template\":{\"spec\":{\"containers\":"
	      "[{\"name\":\"web\",\"image\":\"nginx:1.2\",\"ports\":[{\"containerPort\":80,"
	      "\"protocol\":\"TCP\"}]}]}}}}", 0);
	check(SMP, "Pod", "{}", "[1]", NULL, 400);
}

/* RFC 6902 appendix A */
static void test_json_patch(void **state)
{
	check(JSON, NULL, "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
	      "{\"foo\":\"bar\",\"baz\":\"qux\"}", 0);
	check(JSON, NULL, "{\"foo\":[\"bar\",\"baz\"]}",
	      "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
	      "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", 0);
	check(JSON, NULL, "{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/baz\"}]",
	      "{\"foo\":\"bar\"}", 0);
	check(JSON, NULL, "{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
	      "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]", "{\"foo\":[\"bar\",\"baz\"]}", 0);
	check(JSON, NULL, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
	      "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
	      "{\"baz\":\"boo\",\"foo\":\"bar\"}", 0);
	check(JSON, NULL, "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
	      "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
	      "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}", 0);
	check(JSON, NULL, "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
	      "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
	      "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}", 0);
	check(JSON, NULL, "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
	      "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},{\"op\":\"test\",\"path\":"
	      "\"/foo/1\",\"value\":2}]", "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}", 0);
	check(JSON, NULL, "{\"baz\":\"qux\"}", "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]",
	      NULL, 422);
	check(JSON, NULL, "{\"foo\":\"bar\"}",
	      "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
	      "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}", 0);
	check(JSON, NULL, "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"q\"}]",
	      NULL, 422);
	check(JSON, NULL, "{\"foo\":[\"bar\"]}",
	      "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
	      "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}", 0);
	check(JSON, NULL, "{\"foo\":[\"a\",\"b\",\"c\"]}",
	      "[{\"op\":\"replace\",\"path\":\"/foo/1\",\"value\":\"x\"},"
	      "{\"op\":\"add\",\"path\":\"/foo/0\",\"value\":\"y\"}]",
	      "{\"foo\":[\"y\",\"a\",\"x\",\"c\"]}", 0);
	/* pointer escaping: ~1 is '/', ~0 is '~' (annotation keys contain '/') */
	check(JSON, NULL, "{\"metadata\":{\"annotations\":{\"a/b\":\"1\",\"m~n\":\"2\"}}}",
	      "[{\"op\":\"replace\",\"path\":\"/metadata/annotations/a~1b\",\"value\":\"3\"},"
	      "{\"op\":\"remove\",\"path\":\"/metadata/annotations/m~0n\"}]",
	      "{\"metadata\":{\"annotations\":{\"a/b\":\"3\"}}}", 0);
	check(JSON, NULL, "{\"a\":{\"b\":1}}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"}]",
	      "{\"a\":{\"b\":1},\"c\":{\"b\":1}}", 0);
	/* atomic: a failing later op leaves the target untouched */
	check(JSON, NULL, "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},"
	      "{\"op\":\"remove\",\"path\":\"/nope\"}]", NULL, 422);
	check(JSON, NULL, "{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":2}]", NULL, 422);
	check(JSON, NULL, "{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/2\",\"value\":2}]", NULL, 422);
	check(JSON, NULL, "{\"a\":{}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b\"}]", NULL,
	      422);
	check(JSON, NULL, "{}", "[{\"op\":\"frob\",\"path\":\"/a\"}]", NULL, 400);
	check(JSON, NULL, "{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", NULL, 400);
	check(JSON, NULL, "{}", "{\"op\":\"add\"}", NULL, 400);
	check(JSON, NULL, "{}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", NULL, 422);
	check(JSON, NULL, "{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"b\":2}}]",
	      "{\"b\":2}", 0);
	check(JSON, NULL, "{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":3}]", NULL, 422);
	/* a copy bomb (each op doubles the document) is refused, not expanded */
	{
		char ops[8192] = "[";
		for (int k = 0; k < 40; k++)
			snprintf(ops + strlen(ops), sizeof(ops) - strlen(ops),
				 "%s{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a/x%d\"}",
				 k ? "," : "", k);
		strcat(ops, "]");
		check(JSON, NULL, "{\"a\":{\"b\":[1,2,3,4]}}", ops, NULL, 422);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_rfc7386),
		cmocka_unit_test(test_smp_lists),
		cmocka_unit_test(test_smp_templates_and_kinds),
		cmocka_unit_test(test_smp_directives),
		cmocka_unit_test(test_json_patch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
