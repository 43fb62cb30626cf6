// SPDX-License-Identifier: Apache-2.0
/* managedFields bookkeeping and server-side apply (api/fieldmgr.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "api/fieldmgr.h"
#include "lib/json.h"

#define T0 "2024-01-01T00:00:00Z"

static cJSON *J(const char *s)
{
	cJSON *j = cJSON_Parse(s);

	if (!j)
		fail_msg("bad JSON in test: %s", s);
	return j;
}

/* The entry of manager/op in obj's managedFields, NULL if none. */
static const cJSON *entry(const cJSON *obj, const char *manager, const char *op)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, json_path(obj, "metadata.managedFields"))
		if (!strcmp(json_str(it, "manager", ""), manager) &&
		    !strcmp(json_str(it, "operation", ""), op))
			return it;
	return NULL;
}

static void assert_fields(const cJSON *en, const char *want)
{
	cJSON *w = J(want);
	const cJSON *got = cJSON_GetObjectItem(en, "fieldsV1");

	assert_non_null(en);
	if (!cJSON_Compare(got, w, true)) {
		char *g = cJSON_PrintUnformatted(got);
		fail_msg("fieldsV1 %s\nwant     %s", g, want);
	}
	cJSON_Delete(w);
}

static void test_update_ownership(void **state)
{
	cJSON *obj = J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
		       "\"uid\":\"u\",\"labels\":{\"app\":\"x\"}},\"data\":{\"a\":\"1\",\"b\":\"2\"}}");
	cJSON *old;

	assert_int_equal(fieldmgr_update("ConfigMap", "v1", NULL, obj, "kubectl-create", T0, NULL),
			 0);
	const cJSON *en = entry(obj, "kubectl-create", "Update");
	assert_fields(en, "{\"f:data\":{\"f:a\":{},\"f:b\":{}},\"f:metadata\":{\"f:labels\":{"
			  "\"f:app\":{}}}}");
	assert_string_equal(json_str(en, "apiVersion", ""), "v1");
	assert_string_equal(json_str(en, "time", ""), T0);
	assert_string_equal(json_str(en, "fieldsType", ""), "FieldsV1");

	/* another writer changes a and removes b: a moves, b leaves everyone */
	old = cJSON_Duplicate(obj, true);
	cJSON_ReplaceItemInObject(json_path(obj, "data"), "a", cJSON_CreateString("9"));
	cJSON_DeleteItemFromObject(json_path(obj, "data"), "b");
	assert_int_equal(fieldmgr_update("ConfigMap", "v1", old, obj, "kubectl-edit", T0, NULL), 0);
	assert_fields(entry(obj, "kubectl-create", "Update"),
		      "{\"f:metadata\":{\"f:labels\":{\"f:app\":{}}}}");
	assert_fields(entry(obj, "kubectl-edit", "Update"), "{\"f:data\":{\"f:a\":{}}}");
	cJSON_Delete(old);

	/* a write that changes nothing adds no entry */
	old = cJSON_Duplicate(obj, true);
	assert_int_equal(fieldmgr_update("ConfigMap", "v1", old, obj, "noop", T0, NULL), 0);
	assert_null(entry(obj, "noop", "Update"));
	/* nor does it move an existing manager's time */
	assert_int_equal(fieldmgr_update("ConfigMap", "v1", old, obj, "kubectl-edit",
					 "2030-01-01T00:00:00Z", NULL),
			 0);
	assert_string_equal(json_str(entry(obj, "kubectl-edit", "Update"), "time", ""), T0);
	cJSON_Delete(old);
	cJSON_Delete(obj);
}

static const char *deploy_live =
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\","
	"\"uid\":\"u\"},\"spec\":{\"replicas\":2,\"template\":{\"spec\":{\"containers\":["
	"{\"name\":\"main\",\"image\":\"busybox:1.36\"}]}}}}";

static void test_apply_conflict_force(void **state)
{
	cJSON *live = J(deploy_live), *cfg, *out = NULL;
	struct err e = { 0 };

	assert_int_equal(fieldmgr_update("Deployment", "apps/v1", NULL, live,
					 "kubectl-client-side-apply", T0, NULL),
			 0);
	assert_fields(entry(live, "kubectl-client-side-apply", "Update"),
		      "{\"f:spec\":{\"f:replicas\":{},\"f:template\":{\"f:spec\":{\"f:containers\":"
		      "{\"k:{\\\"name\\\":\\\"main\\\"}\":{\".\":{},\"f:image\":{},\"f:name\":{}}}}}}}");

	/* a different replicas owned by someone else: conflict; the same image: shared */
	cfg = J("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\"},"
		"\"spec\":{\"replicas\":3,\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\","
		"\"image\":\"busybox:1.36\"}]}}}}");
	assert_int_equal(fieldmgr_apply("Deployment", "apps/v1", live, cfg, "kubectl", false, T0,
					&out, &e),
			 -EBUSY);
	assert_int_equal(e.code, 409);
	assert_string_equal(e.reason, "Conflict");
	assert_string_equal(e.message, "Apply failed with 1 conflict: conflict with "
				       "\"kubectl-client-side-apply\" using apps/v1: .spec.replicas");
	assert_int_equal(e.ncauses, 1);
	assert_string_equal(e.causes[0].type, "FieldManagerConflict");
	assert_string_equal(e.causes[0].field, ".spec.replicas");
	assert_null(out);

	/* force: the field changes hands */
	assert_int_equal(fieldmgr_apply("Deployment", "apps/v1", live, cfg, "kubectl", true, T0,
					&out, &e),
			 0);
	assert_int_equal(json_int(out, "spec.replicas", 0), 3);
	assert_fields(entry(out, "kubectl-client-side-apply", "Update"),
		      "{\"f:spec\":{\"f:template\":{\"f:spec\":{\"f:containers\":"
		      "{\"k:{\\\"name\\\":\\\"main\\\"}\":{\".\":{},\"f:image\":{},\"f:name\":{}}}}}}}");
	assert_non_null(entry(out, "kubectl", "Apply"));
	assert_string_equal(json_str(out, "metadata.uid", ""), "u");
	cJSON_Delete(out);
	cJSON_Delete(cfg);
	cJSON_Delete(live);
}

static void test_apply_removes_omitted(void **state)
{
	cJSON *cfg, *live = NULL, *out = NULL;
	struct err e = { 0 };

	/* create through apply */
	cfg = J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
		"\"labels\":{\"a\":\"1\"}},\"data\":{\"greeting\":\"hello\",\"count\":\"1\"}}");
	assert_int_equal(fieldmgr_apply("ConfigMap", "v1", NULL, cfg, "kubectl", false, T0, &live,
					&e),
			 0);
	assert_fields(entry(live, "kubectl", "Apply"),
		      "{\"f:data\":{\"f:count\":{},\"f:greeting\":{}},\"f:metadata\":{\"f:labels\":"
		      "{\"f:a\":{}}}}");
	cJSON_Delete(cfg);

	/* someone else adds a label */
	cJSON *before = cJSON_Duplicate(live, true);
	cJSON_AddStringToObject(json_path(live, "metadata.labels"), "owner", "x");
	assert_int_equal(fieldmgr_update("ConfigMap", "v1", before, live, "kubectl-label", T0, NULL),
			 0);
	cJSON_Delete(before);

	/* the second apply omits greeting and the label a: both go; owner stays */
	cfg = J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"},"
		"\"data\":{\"count\":\"1\"}}");
	assert_int_equal(fieldmgr_apply("ConfigMap", "v1", live, cfg, "kubectl", false, T0, &out,
					&e),
			 0);
	cJSON *want = J("{\"count\":\"1\"}");
	assert_true(cJSON_Compare(json_path(out, "data"), want, true));
	cJSON_Delete(want);
	want = J("{\"owner\":\"x\"}");
	assert_true(cJSON_Compare(json_path(out, "metadata.labels"), want, true));
	cJSON_Delete(want);
	assert_fields(entry(out, "kubectl", "Apply"), "{\"f:data\":{\"f:count\":{}}}");
	cJSON_Delete(out);
	cJSON_Delete(cfg);
	cJSON_Delete(live);
}

static void test_apply_keyed_list(void **state)
{
	cJSON *live = J(deploy_live), *cfg, *out = NULL, *mid = NULL;
	struct err e = { 0 };

	cfg = J(deploy_live);
	assert_int_equal(fieldmgr_apply("Deployment", "apps/v1", NULL, cfg, "a", false, T0, &mid,
					&e),
			 0);
	cJSON_Delete(cfg);
	/* manager b adds a sidecar container: merged by name, main untouched */
	cfg = J("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\"},"
		"\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"side\","
		"\"image\":\"envoy\"}]}}}}");
	assert_int_equal(fieldmgr_apply("Deployment", "apps/v1", mid, cfg, "b", false, T0, &out,
					&e),
			 0);
	const cJSON *cs = json_path(out, "spec.template.spec.containers");
	assert_int_equal(cJSON_GetArraySize(cs), 2);
	assert_string_equal(json_str(cJSON_GetArrayItem(cs, 0), "image", ""), "busybox:1.36");
	assert_string_equal(json_str(cJSON_GetArrayItem(cs, 1), "name", ""), "side");
	/* b changing main's image conflicts with a */
	cJSON_Delete(cfg);
	cfg = J("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\"},"
		"\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\","
		"\"image\":\"busybox:1.37\"}]}}}}");
	cJSON *out2 = NULL;
	memset(&e, 0, sizeof(e));
	assert_int_equal(fieldmgr_apply("Deployment", "apps/v1", out, cfg, "b", false, T0, &out2,
					&e),
			 -EBUSY);
	assert_string_equal(e.message,
			    "Apply failed with 1 conflict: conflict with \"a\": "
			    ".spec.template.spec.containers[name=\"main\"].image");
	cJSON_Delete(cfg);
	cJSON_Delete(out);
	cJSON_Delete(mid);
	cJSON_Delete(live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_update_ownership),
		cmocka_unit_test(test_apply_conflict_force),
		cmocka_unit_test(test_apply_removes_omitted),
		cmocka_unit_test(test_apply_keyed_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
