// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "api/selector.h"
#include "api/quantity.h"

static cJSON *labels(const char *json)
{
	cJSON *j = cJSON_Parse(json);
	assert_non_null(j);
	return j;
}

static bool sel_match(const char *sel, const char *json)
{
	struct label_selector *s = NULL;
	struct err e = { 0 };
	cJSON *l = labels(json);
	bool m;

	assert_int_equal(label_selector_parse(sel, &s, &e), 0);
	m = label_selector_matches(s, l);
	cJSON_Delete(l);
	label_selector_free(s);
	return m;
}

static int sel_parse_err(const char *sel, struct err *e)
{
	struct label_selector *s = NULL;
	int r = label_selector_parse(sel, &s, e);

	label_selector_free(s);
	return r;
}

static void test_equality(void **state)
{
	assert_true(sel_match("", "{}"));
	assert_true(sel_match(NULL, "{\"a\":\"b\"}"));
	assert_true(sel_match("app=web", "{\"app\":\"web\"}"));
	assert_true(sel_match("app==web", "{\"app\":\"web\",\"x\":\"y\"}"));
	assert_false(sel_match("app=web", "{\"app\":\"db\"}"));
	assert_false(sel_match("app=web", "{}"));
	assert_true(sel_match("app!=web", "{}"));
	assert_true(sel_match("app!=web", "{\"app\":\"db\"}"));
	assert_false(sel_match("app!=web", "{\"app\":\"web\"}"));
	assert_true(sel_match("a=b,c=d", "{\"a\":\"b\",\"c\":\"d\"}"));
	assert_false(sel_match("a=b,c=d", "{\"a\":\"b\",\"c\":\"e\"}"));
	assert_true(sel_match(" a = b , c != d ", "{\"a\":\"b\"}"));
	/* "a=" selects an empty value */
	assert_true(sel_match("a=", "{\"a\":\"\"}"));
	assert_false(sel_match("a=", "{\"a\":\"x\"}"));
	assert_true(sel_match("example.com/tier=front", "{\"example.com/tier\":\"front\"}"));
}

static void test_set_based(void **state)
{
	assert_true(sel_match("env in (prod, qa)", "{\"env\":\"qa\"}"));
	assert_false(sel_match("env in (prod,qa)", "{\"env\":\"dev\"}"));
	assert_false(sel_match("env in (prod,qa)", "{}"));
	assert_true(sel_match("env notin (prod,qa)", "{}"));
	assert_true(sel_match("env notin (prod,qa)", "{\"env\":\"dev\"}"));
	assert_false(sel_match("env notin (prod,qa)", "{\"env\":\"prod\"}"));
	assert_true(sel_match("env", "{\"env\":\"\"}"));
	assert_false(sel_match("env", "{}"));
	assert_true(sel_match("!env", "{}"));
	assert_false(sel_match("!env", "{\"env\":\"x\"}"));
	/* the kubernetes docs example */
	assert_true(sel_match("environment in (production),tier notin (frontend),partition",
			      "{\"environment\":\"production\",\"tier\":\"backend\",\"partition\":\"a\"}"));
	assert_true(sel_match("x>5,y<3", "{\"x\":\"6\",\"y\":\"2\"}"));
	assert_false(sel_match("x>5", "{\"x\":\"5\"}"));
}

static void test_parse_errors(void **state)
{
	struct err e = { 0 };

	assert_int_equal(sel_parse_err("a in ()", &e), -EINVAL);
	assert_int_equal(e.code, 400);
	assert_string_equal(e.reason, "BadRequest");
	assert_non_null(strstr(e.message, "values set can't be empty"));
	assert_int_equal(sel_parse_err("a=b=c", &e), -EINVAL);
	assert_int_equal(sel_parse_err("=b", &e), -EINVAL);
	assert_int_equal(sel_parse_err("a in b", &e), -EINVAL);
	assert_int_equal(sel_parse_err("a in (b", &e), -EINVAL);
	assert_int_equal(sel_parse_err("a,", &e), -EINVAL);
	assert_int_equal(sel_parse_err("!a=b", &e), -EINVAL);
	assert_int_equal(sel_parse_err("-a=b", &e), -EINVAL);
	assert_int_equal(sel_parse_err("a=-b", &e), -EINVAL);
	assert_int_equal(sel_parse_err("x>y", &e), -EINVAL);
	/* name part longer than 63 */
	assert_int_equal(sel_parse_err("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=b",
				       &e), -EINVAL);
	assert_non_null(strstr(e.message, "63"));
	assert_int_equal(sel_parse_err("Bad_Prefix/a=b", &e), -EINVAL);
	assert_int_equal(sel_parse_err("/a=b", &e), -EINVAL);
	assert_int_equal(sel_parse_err("a/b/c=d", &e), -EINVAL);
	assert_int_equal(sel_parse_err("a=b c", &e), -EINVAL);
}

static bool json_match(const char *sel, const char *lbl, int *rc)
{
	struct label_selector *s = NULL;
	struct err e = { 0 };
	cJSON *js = cJSON_Parse(sel), *l = labels(lbl);
	bool m = false;

	*rc = label_selector_from_json(js, "spec.selector", &s, &e);
	if (*rc == 0)
		m = label_selector_matches(s, l);
	cJSON_Delete(js);
	cJSON_Delete(l);
	label_selector_free(s);
	return m;
}

static void test_from_json(void **state)
{
	int rc;

	assert_true(json_match("{\"matchLabels\":{\"app\":\"web\"}}", "{\"app\":\"web\"}", &rc));
	assert_false(json_match("{\"matchLabels\":{\"app\":\"web\"}}", "{\"app\":\"x\"}", &rc));
	assert_true(json_match("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":\"In\","
			       "\"values\":[\"a\",\"b\"]}]}", "{\"t\":\"b\"}", &rc));
	assert_true(json_match("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":\"NotIn\","
			       "\"values\":[\"a\"]}]}", "{}", &rc));
	assert_true(json_match("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":\"Exists\"}]}",
			       "{\"t\":\"\"}", &rc));
	assert_true(json_match("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":"
			       "\"DoesNotExist\"}]}", "{}", &rc));
	assert_int_equal(rc, 0);
	json_match("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":\"In\",\"values\":[]}]}",
		   "{}", &rc);
	assert_int_equal(rc, -EINVAL);
	json_match("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":\"Exists\",\"values\":"
		   "[\"a\"]}]}", "{}", &rc);
	assert_int_equal(rc, -EINVAL);
	json_match("{\"matchExpressions\":[{\"key\":\"t\",\"operator\":\"Foo\"}]}", "{}", &rc);
	assert_int_equal(rc, -EINVAL);
	json_match("{\"matchLabels\":{\"app\":5}}", "{}", &rc);
	assert_int_equal(rc, -EINVAL);
	json_match("{\"matchLabels\":[1]}", "{}", &rc);
	assert_int_equal(rc, -EINVAL);
	json_match("[]", "{}", &rc);
	assert_int_equal(rc, -EINVAL);

	struct label_selector *s = NULL;
	struct err e = { 0 };
	cJSON *bad = cJSON_Parse("{\"matchLabels\":{\"a\":\"-x\"}}");
	assert_int_equal(label_selector_from_json(bad, "spec.selector", &s, &e), -EINVAL);
	assert_int_equal(e.code, 422);
	assert_int_equal(e.ncauses, 1);
	assert_string_equal(e.causes[0].field, "spec.selector.matchLabels");
	cJSON_Delete(bad);
	/* NULL: everything */
	assert_int_equal(label_selector_from_json(NULL, NULL, &s, &e), 0);
	assert_true(label_selector_is_empty(s));
	label_selector_free(s);
}

struct fields {
	const char *name, *phase;
};

static const char *get_field(const char *f, void *ud)
{
	struct fields *x = ud;

	if (strcmp(f, "metadata.name") == 0)
		return x->name;
	if (strcmp(f, "status.phase") == 0)
		return x->phase;
	return "";
}

static void test_field_selector(void **state)
{
	static const char *const sup[] = { "metadata.name", "metadata.namespace", "status.phase",
					   "spec.nodeName", NULL };
	struct field_selector *fs = NULL;
	struct err e = { 0 };
	struct fields f = { "web", "Running" };

	assert_int_equal(field_selector_parse("metadata.name=web,status.phase!=Pending", sup, &fs,
					      &e), 0);
	assert_true(field_selector_matches(fs, get_field, &f));
	f.phase = "Pending";
	assert_false(field_selector_matches(fs, get_field, &f));
	fs = field_selector_free(fs);

	assert_int_equal(field_selector_parse("spec.nodeName==", sup, &fs, &e), 0);
	assert_true(field_selector_matches(fs, get_field, &f));
	fs = field_selector_free(fs);

	assert_int_equal(field_selector_parse("metadata.name=a\\,b", sup, &fs, &e), 0);
	f.name = "a,b";
	assert_true(field_selector_matches(fs, get_field, &f));
	fs = field_selector_free(fs);

	assert_int_equal(field_selector_parse("", sup, &fs, &e), 0);
	assert_true(field_selector_matches(fs, get_field, &f));
	fs = field_selector_free(fs);

	assert_int_equal(field_selector_parse("spec.foo=bar", sup, &fs, &e), -EINVAL);
	assert_int_equal(e.code, 400);
	assert_string_equal(e.message, "field label not supported: spec.foo");
	assert_int_equal(field_selector_parse("metadata.name", sup, &fs, &e), -EINVAL);
	assert_int_equal(field_selector_parse("=x", sup, &fs, &e), -EINVAL);
	assert_int_equal(field_selector_parse("metadata.name=a=b", sup, &fs, &e), -EINVAL);
}

static void test_quantity(void **state)
{
	int64_t v;

	assert_int_equal(quantity_parse_milli("100m", &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(quantity_parse_milli("1", &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(quantity_parse_milli("1.5", &v), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(quantity_parse_milli("0.1", &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(quantity_parse_milli("1e3", &v), 0);
	assert_int_equal(v, 1000000);
	assert_int_equal(quantity_parse_milli("1u", &v), 0);
	assert_int_equal(v, 1); /* rounded up */
	assert_int_equal(quantity_parse_bytes("128Mi", &v), 0);
	assert_int_equal(v, 134217728);
	assert_int_equal(quantity_parse_bytes("1G", &v), 0);
	assert_int_equal(v, 1000000000);
	assert_int_equal(quantity_parse_bytes("1Ki", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(quantity_parse_bytes("1.5Gi", &v), 0);
	assert_int_equal(v, 1610612736);
	assert_int_equal(quantity_parse_bytes("100m", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(quantity_parse_bytes("1E", &v), 0);
	assert_int_equal(v, 1000000000000000000LL);
	assert_int_equal(quantity_parse_bytes("-2k", &v), 0);
	assert_int_equal(v, -2000);
	assert_int_equal(quantity_parse_bytes(".5k", &v), 0);
	assert_int_equal(v, 500);
	assert_int_equal(quantity_parse_bytes("12E", &v), -ERANGE);
	assert_int_equal(quantity_parse_bytes("", &v), -EINVAL);
	assert_int_equal(quantity_parse_bytes("abc", &v), -EINVAL);
	assert_int_equal(quantity_parse_bytes("1Mb", &v), -EINVAL);
	assert_int_equal(quantity_parse_bytes("1 Mi", &v), -EINVAL);
	assert_int_equal(quantity_parse_bytes("1e", &v), -EINVAL);
	assert_int_equal(quantity_parse_bytes(".", &v), -EINVAL);
	assert_true(quantity_valid("250m"));
	assert_false(quantity_valid("1.2.3"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equality),     cmocka_unit_test(test_set_based),
		cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_from_json),
		cmocka_unit_test(test_field_selector), cmocka_unit_test(test_quantity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
