// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl delete: by name, TYPE/NAME, selector, --all or -f. Sends DeleteOptions (grace
 * period, background propagation), prints `pod "x" deleted`, then by default waits until
 * each object is really gone (a pod with a grace period lingers while it terminates).
 */
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "tools/shoalctl/shoalctl.h"

struct victim {
	struct ctl_resource res;
	char *ns;
	char *name;
	char *uid; /* once deleted: wait until this uid is gone */
};

struct victims {
	struct victim *v;
	size_t n;
};

static void victims_done(struct victims *vs)
{
	for (size_t i = 0; i < vs->n; i++) {
		free(vs->v[i].ns);
		free(vs->v[i].name);
		free(vs->v[i].uid);
	}
	free(vs->v);
	*vs = (struct victims){};
}

static int victims_add(struct victims *vs, const struct ctl_resource *res, const char *ns,
		       const char *name)
{
	struct victim *n = realloc(vs->v, (vs->n + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	vs->v = n;
	n = &vs->v[vs->n];
	*n = (struct victim){ .res = *res };
	n->ns = ns ? strdup(ns) : NULL;
	n->name = strdup(name);
	if ((ns && !n->ns) || !n->name) {
		free(n->ns);
		free(n->name);
		return -ENOMEM;
	}
	vs->n++;
	return 0;
}

static const char *res_ns(struct ctl *c, const struct ctl_resource *res)
{
	return res->namespaced ? c->namespace : NULL;
}

/* Everything matching -l / --field-selector / --all, listed first like kubectl does. */
static int add_selected(struct ctl *c, const struct ctl_resource *res, struct victims *vs,
			struct err *e)
{
	_cleanup_free_ char *base = NULL, *path = NULL, *ls = NULL, *fs = NULL;
	_cleanup_json_ cJSON *list = NULL;
	const cJSON *it;
	const char *ns = c->o.all_namespaces ? NULL : res_ns(c, res);
	int r;

	r = ctl_resource_path(res, ns, NULL, &base);
	if (r < 0)
		return r;
	if (c->o.selector && !(ls = ctl_http_escape(c->o.selector)))
		return -ENOMEM;
	if (c->o.field_selector && !(fs = ctl_http_escape(c->o.field_selector)))
		return -ENOMEM;
	if (asprintf(&path, "%s?%s%s%s%s", base, ls ? "labelSelector=" : "", ls ? ls : "",
		     fs ? (ls ? "&fieldSelector=" : "fieldSelector=") : "", fs ? fs : "") < 0)
		return -ENOMEM;
	r = ctl_request(c, "GET", path, NULL, NULL, NULL, &list, e);
	if (r < 0)
		return r;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items")) {
		const char *name = ctl_json_str(it, "metadata.name");

		if (!name)
			continue;
		r = victims_add(vs, res, res->namespaced ? ctl_json_str(it, "metadata.namespace") ?:
								   ns : NULL,
				name);
		if (r < 0)
			return r;
	}
	return 0;
}

static int collect(struct ctl *c, int argc, char **argv, struct victims *vs, struct err *e)
{
	bool selecting = c->o.selector || c->o.field_selector || c->o.all;
	struct ctl_resource res;
	int r;

	if (c->o.nfiles) {
		_cleanup_json_ cJSON *objs = NULL;
		const cJSON *o;

		if (argc > 0 || selecting)
			return err_set(e, EINVAL, 0, "",
				       "names and selectors cannot be given together with -f");
		r = ctl_read_files(c, &objs, e);
		if (r < 0)
			return r;
		cJSON_ArrayForEach(o, objs) {
			const char *ns, *name;

			r = ctl_object_target(c, o, &res, &ns, &name, e);
			if (r < 0)
				return r;
			if (!name)
				return err_set(e, EINVAL, 0, "",
					       "an object in the files has no name");
			r = victims_add(vs, &res, ns, name);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (argc < 1)
		return err_set(e, EINVAL, 0, "",
			       "you must provide one or more resources by argument or filename");
	if (strchr(argv[0], '/')) {
		for (int i = 0; i < argc; i++) {
			_cleanup_free_ char *type = strdup(argv[i]);
			char *slash = type ? strchr(type, '/') : NULL;

			if (!type)
				return -ENOMEM;
			if (!slash || !slash[1])
				return err_set(e, EINVAL, 0, "",
					       "arguments in resource/name form must have a single "
					       "resource and name");
			*slash = 0;
			r = ctl_resolve(c, type, &res, e);
			if (r < 0)
				return r;
			r = victims_add(vs, &res, res_ns(c, &res), slash + 1);
			if (r < 0)
				return r;
		}
		return 0;
	}
	_cleanup_free_ char *types = strdup(argv[0]);
	char *save = NULL;

	if (!types)
		return -ENOMEM;
	if (argc == 1 && !selecting)
		return err_set(e, EINVAL, 0, "",
			       "resource(s) were provided, but no name was specified (use --all "
			       "or -l to select several)");
	if (argc > 1 && selecting)
		return err_set(e, EINVAL, 0, "", "names cannot be given together with a selector "
						  "or --all");
	for (char *tok = strtok_r(types, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		r = ctl_resolve(c, tok, &res, e);
		if (r < 0)
			return r;
		if (selecting) {
			r = add_selected(c, &res, vs, e);
			if (r < 0)
				return r;
		}
		for (int i = 1; i < argc; i++) {
			r = victims_add(vs, &res, res_ns(c, &res), argv[i]);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int delete_one(struct ctl *c, struct victim *v, cJSON *opts, struct err *e)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ cJSON *resp = NULL;
	const char *uid;
	int r;

	r = ctl_resource_path(&v->res, v->ns, v->name, &path);
	if (r < 0)
		return r;
	r = ctl_request(c, "DELETE", path, NULL, "application/json", opts, &resp, e);
	if (r < 0)
		return r;
	/* the answer is the object (still terminating) or a Success Status (already gone) */
	uid = ctl_json_str(resp, "metadata.uid");
	if (uid && !(v->uid = strdup(uid)))
		return -ENOMEM;
	return 0;
}

/* Poll until the object is gone, or replaced by a new one of the same name. */
static int wait_gone(struct ctl *c, struct victim *v, uint64_t deadline_ms, struct err *e)
{
	_cleanup_free_ char *path = NULL;
	unsigned delay_ms = 50;
	int r;

	r = ctl_resource_path(&v->res, v->ns, v->name, &path);
	if (r < 0)
		return r;
	for (;;) {
		_cleanup_json_ cJSON *live = NULL;
		struct err ge = {};
		const char *uid;

		r = ctl_request(c, "GET", path, NULL, NULL, NULL, &live, &ge);
		if (r == -ENOENT)
			return 0;
		if (r < 0) {
			*e = ge;
			return r;
		}
		uid = ctl_json_str(live, "metadata.uid");
		if (v->uid && uid && !streq(uid, v->uid))
			return 0;
		if (deadline_ms && util_mono_ms() >= deadline_ms)
			return err_set(e, ETIMEDOUT, 0, "",
				       "timed out waiting for the condition on %s/%s", v->res.name,
				       v->name);
		usleep(delay_ms * 1000);
		if (delay_ms < 1000)
			delay_ms *= 2;
	}
}

int cmd_delete(struct ctl *c, int argc, char **argv)
{
	_cleanup_(victims_done) struct victims vs = {};
	_cleanup_json_ cJSON *opts = NULL;
	struct err e = {};
	bool failed = false;
	int grace = c->o.grace_period;
	int r;

	if (c->o.now)
		grace = 1;
	if (c->o.force) {
		if (c->o.grace_period < 0 && !c->o.now)
			grace = 0;
		fprintf(stderr, "Warning: Immediate deletion does not wait for confirmation that "
				"the running resource has been terminated. The resource may continue "
				"to run on the cluster indefinitely.\n");
	}
	r = collect(c, argc, argv, &vs, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	if (vs.n == 0) {
		if (c->o.all_namespaces || !c->namespace)
			fprintf(stderr, "No resources found\n");
		else
			fprintf(stderr, "No resources found in %s namespace.\n", c->namespace);
		return 0;
	}
	opts = cJSON_CreateObject();
	if (!opts || !cJSON_AddStringToObject(opts, "kind", "DeleteOptions") ||
	    !cJSON_AddStringToObject(opts, "apiVersion", "v1") ||
	    !cJSON_AddStringToObject(opts, "propagationPolicy", "Background") ||
	    (grace >= 0 && !cJSON_AddNumberToObject(opts, "gracePeriodSeconds", grace)))
		return 1;

	for (size_t i = 0; i < vs.n; i++) {
		struct victim *v = &vs.v[i];
		char ref[300];

		e = (struct err){};
		r = delete_one(c, v, opts, &e);
		if (r == -ENOENT && c->o.ignore_not_found) {
			v->name[0] = 0; /* nothing to wait for */
			continue;
		}
		if (r < 0) {
			ctl_fail(&e, r);
			if (ctl_transport_failed(r))
				return 1;
			failed = true;
			v->name[0] = 0;
			continue;
		}
		ctl_resource_ref(&v->res, ref, sizeof(ref));
		if (c->o.output == CTL_OUT_NAME)
			printf("%s/%s\n", ref, v->name);
		else
			printf("%s \"%s\" %s\n", ref, v->name,
			       grace == 0 ? "force deleted" : "deleted");
		fflush(stdout);
	}

	if (c->o.wait && grace != 0) {
		uint64_t deadline = c->o.timeout_s ? util_mono_ms() + c->o.timeout_s * 1000ull : 0;

		for (size_t i = 0; i < vs.n; i++) {
			if (!vs.v[i].name[0])
				continue;
			e = (struct err){};
			r = wait_gone(c, &vs.v[i], deadline, &e);
			if (r < 0) {
				ctl_fail(&e, r);
				return 1;
			}
		}
	}
	return failed ? 1 : 0;
}
