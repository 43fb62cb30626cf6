// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl describe KIND [NAME...]: each object, then the Events whose involvedObject is it.
 * Events are asked for with kubectl's field selector; a server that does not index
 * involvedObject.* answers 400, and then the namespace's events are filtered here.
 */
#include <string.h>
#include <time.h>

#include "tools/shoalctl/shoalctl.h"

static bool event_matches(const cJSON *ev, const cJSON *obj)
{
	const char *uid = ctl_json_str(obj, "metadata.uid");
	const char *euid = ctl_json_str(ev, "involvedObject.uid");
	const char *name = ctl_json_str(obj, "metadata.name");
	const char *ename = ctl_json_str(ev, "involvedObject.name");
	const char *kind = ctl_json_str(obj, "kind");
	const char *ekind = ctl_json_str(ev, "involvedObject.kind");

	if (uid && euid)
		return streq(uid, euid);
	return name && ename && streq(name, ename) && (!kind || !ekind || streq(kind, ekind));
}

static int cmp_events(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	const char *tx = ctl_json_str(x, "lastTimestamp") ?: ctl_json_str(x, "eventTime") ?: "";
	const char *ty = ctl_json_str(y, "lastTimestamp") ?: ctl_json_str(y, "eventTime") ?: "";

	return strcmp(tx, ty); /* RFC 3339 in UTC sorts as text */
}

/* Events of obj, oldest first. NULL when they cannot be read (describe still prints). */
static cJSON *events_for(struct ctl *c, const cJSON *obj)
{
	_cleanup_free_ char *sel = NULL, *esc = NULL, *path = NULL;
	_cleanup_json_ cJSON *list = NULL;
	_cleanup_free_ const cJSON **v = NULL;
	const char *ns = ctl_json_str(obj, "metadata.namespace");
	const char *name = ctl_json_str(obj, "metadata.name");
	const char *kind = ctl_json_str(obj, "kind");
	const char *uid = ctl_json_str(obj, "metadata.uid");
	cJSON *out, *it;
	size_t n = 0;
	int r;

	if (asprintf(&sel, "involvedObject.name=%s%s%s%s%s%s%s", name ?: "",
		     ns ? ",involvedObject.namespace=" : "", ns ?: "",
		     kind ? ",involvedObject.kind=" : "", kind ?: "",
		     uid ? ",involvedObject.uid=" : "", uid ?: "") < 0 ||
	    !(esc = ctl_http_escape(sel)))
		return NULL;
	if (asprintf(&path, "/api/v1%s%s/events?fieldSelector=%s", ns ? "/namespaces/" : "",
		     ns ?: "", esc) < 0)
		return NULL;
	r = ctl_request(c, "GET", path, NULL, NULL, NULL, &list, NULL);
	if (r == -EINVAL) {
		free(path);
		if (asprintf(&path, "/api/v1%s%s/events", ns ? "/namespaces/" : "", ns ?: "") < 0)
			return NULL;
		r = ctl_request(c, "GET", path, NULL, NULL, NULL, &list, NULL);
	}
	if (r < 0)
		return NULL;
	/* filter again: a server may ignore selectors it does not know */
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items")) {
		const cJSON **nv;

		if (!event_matches(it, obj))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			return NULL;
		v = nv;
		v[n++] = it;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_events);
	out = cJSON_CreateArray();
	for (size_t i = 0; out && i < n; i++)
		cJSON_AddItemToArray(out, cJSON_Duplicate(v[i], true));
	return out;
}

static int describe_one(struct ctl *c, const struct ctl_resource *res, cJSON *obj, bool first)
{
	_cleanup_json_ cJSON *events = NULL;
	char av[300];

	/* list items come without kind/apiVersion; the describers key on kind */
	if (!ctl_json_str(obj, "kind"))
		cJSON_AddStringToObject(obj, "kind", res->kind);
	if (!ctl_json_str(obj, "apiVersion")) {
		snprintf(av, sizeof(av), "%s%s%s", res->group, *res->group ? "/" : "",
			 res->version);
		cJSON_AddStringToObject(obj, "apiVersion", av);
	}
	events = events_for(c, obj);
	if (!first)
		printf("\n\n");
	ctl_describe_render(obj, events, time(NULL), stdout);
	fflush(stdout);
	return 0;
}

int cmd_describe(struct ctl *c, int argc, char **argv)
{
	struct ctl_resource res;
	struct err e = {};
	bool failed = false, first = true;
	const char *ns;
	int r;

	if (c->o.nfiles) {
		_cleanup_json_ cJSON *objs = NULL;
		const cJSON *o;

		r = ctl_read_files(c, &objs, &e);
		if (r < 0)
			return ctl_fail(&e, r);
		cJSON_ArrayForEach(o, objs) {
			_cleanup_free_ char *path = NULL;
			_cleanup_json_ cJSON *obj = NULL;
			const char *name;

			r = ctl_object_target(c, o, &res, &ns, &name, &e);
			if (r >= 0)
				r = ctl_resource_path(&res, ns, name, &path);
			if (r >= 0)
				r = ctl_request(c, "GET", path, NULL, NULL, NULL, &obj, &e);
			if (r < 0) {
				ctl_fail(&e, r);
				failed = true;
				continue;
			}
			describe_one(c, &res, obj, first);
			first = false;
		}
		return failed ? 1 : 0;
	}
	if (argc < 1)
		return ctl_fail(&(struct err){ .message = "you must specify the type of resource "
							  "to describe" },
				-EINVAL);
	_cleanup_free_ char *type = strdup(argv[0]);
	const char *slash_name = NULL;

	if (!type)
		return 1;
	if (strchr(type, '/')) {
		if (argc > 1)
			return ctl_fail(&(struct err){ .message = "give either TYPE/NAME or TYPE "
								  "NAME..." },
					-EINVAL);
		slash_name = strchr(argv[0], '/') + 1;
		*strchr(type, '/') = 0;
	}
	r = ctl_resolve(c, type, &res, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	ns = res.namespaced ? c->namespace : NULL;

	if (argc == 1 && !slash_name) {
		/* every object of the kind (or those the selector picks), kubectl-style */
		_cleanup_free_ char *base = NULL, *path = NULL, *ls = NULL;
		_cleanup_json_ cJSON *list = NULL;
		cJSON *it;

		r = ctl_resource_path(&res, c->o.all_namespaces ? NULL : ns, NULL, &base);
		if (r < 0)
			return ctl_fail(&e, r);
		if (c->o.selector && !(ls = ctl_http_escape(c->o.selector)))
			return 1;
		if (asprintf(&path, "%s%s%s", base, ls ? "?labelSelector=" : "", ls ?: "") < 0)
			return 1;
		r = ctl_request(c, "GET", path, NULL, NULL, NULL, &list, &e);
		if (r < 0)
			return ctl_fail(&e, r);
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items")) {
			describe_one(c, &res, it, first);
			first = false;
		}
		if (first)
			fprintf(stderr, "No resources found in %s namespace.\n", c->namespace);
		return 0;
	}
	for (int i = slash_name ? 0 : 1; i < argc; i++) {
		_cleanup_free_ char *path = NULL;
		_cleanup_json_ cJSON *obj = NULL;

		e = (struct err){};
		r = ctl_resource_path(&res, ns, slash_name ? slash_name : argv[i], &path);
		if (r >= 0)
			r = ctl_request(c, "GET", path, NULL, NULL, NULL, &obj, &e);
		if (r < 0) {
			ctl_fail(&e, r);
			if (ctl_transport_failed(r))
				return 1;
			failed = true;
			continue;
		}
		describe_one(c, &res, obj, first);
		first = false;
	}
	return failed ? 1 : 0;
}
