// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl apply and create. apply is kubectl's client-side apply: create with the
 * last-applied annotation when the object is absent, otherwise a 3-way JSON merge patch
 * (application/merge-patch+json, which every Kubernetes API server accepts for every kind).
 */
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

enum apply_result { APPLY_CREATED, APPLY_CONFIGURED, APPLY_UNCHANGED };

static const char *const result_word[] = { "created", "configured", "unchanged" };

/* The manifest with metadata.namespace filled in, as kubectl's builder does. */
static int with_namespace(const cJSON *obj, const char *ns, cJSON **ret)
{
	_cleanup_json_ cJSON *o = cJSON_Duplicate(obj, true);
	cJSON *meta;

	if (!o)
		return -ENOMEM;
	meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	if (!cJSON_IsObject(meta))
		return -EINVAL;
	if (ns) {
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
		if (!cJSON_AddStringToObject(meta, "namespace", ns))
			return -ENOMEM;
	}
	*ret = TAKE_PTR(o);
	return 0;
}

static int create_one(struct ctl *c, const struct ctl_resource *res, const char *ns,
		      const cJSON *obj, cJSON **ret, struct err *e)
{
	_cleanup_free_ char *path = NULL;
	int r;

	r = ctl_resource_path(res, ns, NULL, &path);
	if (r < 0)
		return r;
	return ctl_request(c, "POST", path, NULL, "application/json", obj, ret, e);
}

static int apply_one(struct ctl *c, const cJSON *manifest, enum apply_result *ret_result,
		     cJSON **ret_obj, struct err *e)
{
	_cleanup_json_ cJSON *obj = NULL, *live = NULL, *modified = NULL, *original = NULL,
			     *patch = NULL;
	_cleanup_free_ char *path = NULL;
	struct ctl_resource res;
	const char *ns, *name;
	int r;

	r = ctl_object_target(c, manifest, &res, &ns, &name, e);
	if (r < 0)
		return r;
	if (!name)
		return err_set(e, EINVAL, 0, "", "%s: cannot use generateName with apply",
			       ctl_json_str(manifest, "kind"));
	r = with_namespace(manifest, ns, &obj);
	if (r < 0)
		return err_set(e, r, 0, "", "%s %s: metadata must be an object",
			       ctl_json_str(manifest, "kind"), name);
	r = ctl_apply_modified(obj, &modified);
	if (r < 0)
		return r;
	r = ctl_resource_path(&res, ns, name, &path);
	if (r < 0)
		return r;

	r = ctl_request(c, "GET", path, NULL, NULL, NULL, &live, e);
	if (r == -ENOENT) {
		*e = (struct err){};
		r = create_one(c, &res, ns, modified, ret_obj, e);
		if (r < 0)
			return r;
		*ret_result = APPLY_CREATED;
		return 0;
	}
	if (r < 0)
		return r;
	original = ctl_apply_original(live);
	if (!original)
		fprintf(stderr,
			"Warning: resource %s/%s is missing the %s annotation which is required "
			"by shoalctl apply. It will be patched automatically.\n",
			res.name, name, CTL_LAST_APPLIED);
	r = ctl_patch_3way(original, modified, live, &patch);
	if (r < 0)
		return r;
	if (!patch->child) {
		*ret_result = APPLY_UNCHANGED;
		*ret_obj = TAKE_PTR(live);
		return 0;
	}
	r = ctl_request(c, "PATCH", path, NULL, "application/merge-patch+json", patch, ret_obj, e);
	if (r < 0)
		return r;
	*ret_result = APPLY_CONFIGURED;
	return 0;
}

static void report(struct ctl *c, const cJSON *manifest, const cJSON *live, const char *word)
{
	struct ctl_resource res;
	struct err e = {};
	char ref[300] = "";

	if (ctl_resolve_kind(c, ctl_json_str(manifest, "apiVersion"),
			     ctl_json_str(manifest, "kind"), &res, &e) >= 0)
		ctl_resource_ref(&res, ref, sizeof(ref));
	const char *name = ctl_json_str(live, "metadata.name") ?: ctl_json_str(manifest,
									       "metadata.name");

	if (c->o.output == CTL_OUT_JSON)
		ctl_print_json(live, stdout);
	else if (c->o.output == CTL_OUT_YAML)
		ctl_print_yaml(live, stdout);
	else if (c->o.output == CTL_OUT_NAME)
		printf("%s/%s\n", ref, name ?: "");
	else
		printf("%s/%s %s\n", ref, name ?: "", word);
	fflush(stdout);
}

int cmd_apply(struct ctl *c, int argc, char **argv)
{
	_cleanup_json_ cJSON *objs = NULL;
	struct err e = {};
	const cJSON *m;
	bool failed = false;
	int r;

	if (argc > 0)
		return ctl_fail(&(struct err){ .message = "apply takes no arguments besides -f "
							  "(unexpected argument)" },
				-EINVAL);
	r = ctl_read_files(c, &objs, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	cJSON_ArrayForEach(m, objs) {
		_cleanup_json_ cJSON *live = NULL;
		enum apply_result res = APPLY_UNCHANGED;

		e = (struct err){};
		r = apply_one(c, m, &res, &live, &e);
		if (r < 0) {
			/* connection trouble will not get better for the next object */
			ctl_fail(&e, r);
			if (ctl_transport_failed(r))
				return 1;
			failed = true;
			continue;
		}
		report(c, m, live, result_word[res]);
	}
	return failed ? 1 : 0;
}

int cmd_create(struct ctl *c, int argc, char **argv)
{
	_cleanup_json_ cJSON *objs = NULL;
	struct err e = {};
	const cJSON *m;
	bool failed = false;
	int r;

	if (argc > 0)
		return ctl_fail(&(struct err){ .message = "create takes -f FILENAME (unexpected "
							  "argument)" },
				-EINVAL);
	r = ctl_read_files(c, &objs, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	cJSON_ArrayForEach(m, objs) {
		_cleanup_json_ cJSON *obj = NULL, *live = NULL;
		struct ctl_resource res;
		const char *ns, *name;

		e = (struct err){};
		r = ctl_object_target(c, m, &res, &ns, &name, &e);
		if (r >= 0)
			r = with_namespace(m, ns, &obj);
		if (r >= 0)
			r = create_one(c, &res, ns, obj, &live, &e);
		if (r < 0) {
			ctl_fail(&e, r);
			if (ctl_transport_failed(r))
				return 1;
			failed = true;
			continue;
		}
		report(c, m, live, "created");
	}
	return failed ? 1 : 0;
}
