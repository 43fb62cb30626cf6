// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl get: tables from the server's meta.k8s.io Table (any kind gets kubectl's columns
 * without the client knowing them), -o json|yaml|name|wide, selectors, -A, and -w which keeps
 * a watch open and prints a row per event.
 */
#include <string.h>
#include <time.h>

#include "tools/shoalctl/shoalctl.h"

struct target {
	struct ctl_resource res;
	const char **names;
	size_t nnames;
};

struct targets {
	struct target *t;
	size_t n;
};

static void targets_done(struct targets *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		free(ts->t[i].names);
	free(ts->t);
	*ts = (struct targets){};
}

static bool same_resource(const struct ctl_resource *a, const struct ctl_resource *b)
{
	return streq(a->group, b->group) && streq(a->name, b->name);
}

/* Add name (may be NULL: the whole collection) under res, merging with the previous target. */
static int targets_add(struct targets *ts, const struct ctl_resource *res, const char *name)
{
	struct target *t = ts->n ? &ts->t[ts->n - 1] : NULL;

	if (!t || !same_resource(&t->res, res) || (!name) != (t->nnames == 0)) {
		struct target *n = realloc(ts->t, (ts->n + 1) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		ts->t = n;
		t = &ts->t[ts->n++];
		*t = (struct target){ .res = *res };
	}
	if (name) {
		const char **nn = realloc(t->names, (t->nnames + 1) * sizeof(*nn));

		if (!nn)
			return -ENOMEM;
		t->names = nn;
		t->names[t->nnames++] = name;
	}
	return 0;
}

/* KIND[,KIND] [NAME...] or KIND/NAME... */
static int parse_targets(struct ctl *c, int argc, char **argv, cJSON *objs, struct targets *ts,
			 struct err *e)
{
	int r;

	if (objs) {
		const cJSON *o;

		if (argc > 0)
			return err_set(e, EINVAL, 0, "", "names cannot be given together with -f");
		cJSON_ArrayForEach(o, objs) {
			struct ctl_resource res;
			const char *ns, *name;

			r = ctl_object_target(c, o, &res, &ns, &name, e);
			if (r < 0)
				return r;
			if (!name)
				return err_set(e, EINVAL, 0, "", "an object in the files has no name");
			r = targets_add(ts, &res, name);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (argc < 1)
		return err_set(e, EINVAL, 0, "",
			       "you must specify the type of resource to get (e.g. pods, "
			       "deployments.apps); 'shoalctl api-resources' lists them");
	if (strchr(argv[0], '/')) {
		for (int i = 0; i < argc; i++) {
			_cleanup_free_ char *type = strdup(argv[i]);
			struct ctl_resource res;
			char *slash = type ? strchr(type, '/') : NULL;

			if (!type)
				return -ENOMEM;
			if (!slash || !slash[1])
				return err_set(e, EINVAL, 0, "",
					       "there is no need to specify a resource type as a "
					       "separate argument when passing arguments in "
					       "resource/name form");
			*slash = 0;
			r = ctl_resolve(c, type, &res, e);
			if (r < 0)
				return r;
			r = targets_add(ts, &res, argv[i] + (slash - type) + 1);
			if (r < 0)
				return r;
		}
		return 0;
	}
	_cleanup_free_ char *types = strdup(argv[0]);
	char *save = NULL;

	if (!types)
		return -ENOMEM;
	for (char *tok = strtok_r(types, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct ctl_resource res;

		r = ctl_resolve(c, tok, &res, e);
		if (r < 0)
			return r;
		if (argc == 1)
			r = targets_add(ts, &res, NULL);
		for (int i = 1; r >= 0 && i < argc; i++)
			r = targets_add(ts, &res, argv[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static const char *target_ns(struct ctl *c, const struct ctl_resource *res)
{
	if (!res->namespaced || c->o.all_namespaces)
		return NULL;
	return c->namespace;
}

/* Collection path with labelSelector/fieldSelector (and watch parameters when asked). */
static int list_path(struct ctl *c, const struct ctl_resource *res, const char *name,
		     const char *watch_rv, char **ret)
{
	_cleanup_free_ char *base = NULL, *ls = NULL, *fs = NULL, *rv = NULL, *field = NULL;
	const char *fsel = c->o.field_selector;
	int r;

	r = ctl_resource_path(res, target_ns(c, res), NULL, &base);
	if (r < 0)
		return r;
	if (name) { /* watching one object: the Kubernetes way is a field selector */
		if (asprintf(&field, "metadata.name=%s%s%s", name, fsel ? "," : "",
			     fsel ? fsel : "") < 0)
			return -ENOMEM;
		fsel = field;
	}
	if (c->o.selector && !(ls = ctl_http_escape(c->o.selector)))
		return -ENOMEM;
	if (fsel && !(fs = ctl_http_escape(fsel)))
		return -ENOMEM;
	if (watch_rv && *watch_rv && !(rv = ctl_http_escape(watch_rv)))
		return -ENOMEM;
	if (asprintf(ret, "%s?%s%s%s%s%s%s%s%s", base, watch_rv ? "watch=true&" : "",
		     rv ? "resourceVersion=" : "", rv ? rv : "", rv ? "&" : "",
		     ls ? "labelSelector=" : "", ls ? ls : "", fs ? "&fieldSelector=" : "",
		     fs ? fs : "") < 0)
		return -ENOMEM;
	/* a trailing '?' or '&' is harmless but untidy */
	size_t n = strlen(*ret);
	while (n > 0 && ((*ret)[n - 1] == '?' || (*ret)[n - 1] == '&'))
		(*ret)[--n] = 0;
	return 0;
}

static bool is_table(const cJSON *j)
{
	const char *kind = ctl_json_str(j, "kind");
	const char *av = ctl_json_str(j, "apiVersion");

	return kind && streq(kind, "Table") && av && strstr(av, "meta.k8s.io");
}

static int tab_add_any(struct ctl_tab *t, const cJSON *j)
{
	_cleanup_json_ cJSON *fb = NULL;

	if (is_table(j))
		return ctl_tab_add(t, j);
	fb = ctl_table_fallback(j, time(NULL));
	if (!fb)
		return -ENOMEM;
	return ctl_tab_add(t, fb);
}

static void no_resources(struct ctl *c, const struct ctl_resource *res)
{
	if (res->namespaced && !c->o.all_namespaces)
		fprintf(stderr, "No resources found in %s namespace.\n", c->namespace);
	else
		fprintf(stderr, "No resources found\n");
}

static bool print_name_error(struct ctl *c, const struct err *e, int r)
{
	if (r == -ENOENT && c->o.ignore_not_found)
		return false;
	ctl_fail(e, r);
	return true;
}

static int get_table(struct ctl *c, const struct target *t, bool show_kind, bool *printed,
		     bool *failed)
{
	_cleanup_(ctl_tab_done) struct ctl_tab tab = {};
	char ref[300];
	int r;

	ctl_resource_ref(&t->res, ref, sizeof(ref));
	tab.opts = (struct ctl_tab_opts){
		.wide = c->o.output == CTL_OUT_WIDE,
		.show_namespace = c->o.all_namespaces && t->res.namespaced,
		.show_kind = show_kind,
		.show_labels = c->o.show_labels,
		.kind_ref = ref,
	};
	if (t->nnames == 0) {
		_cleanup_free_ char *path = NULL;
		_cleanup_json_ cJSON *j = NULL;
		struct err e = {};

		r = list_path(c, &t->res, NULL, NULL, &path);
		if (r < 0)
			return r;
		r = ctl_request(c, "GET", path, CTL_ACCEPT_TABLE, NULL, NULL, &j, &e);
		if (r < 0) {
			ctl_fail(&e, r);
			*failed = true;
			return 0;
		}
		r = tab_add_any(&tab, j);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < t->nnames; i++) {
		_cleanup_free_ char *path = NULL;
		_cleanup_json_ cJSON *j = NULL;
		struct err e = {};

		r = ctl_resource_path(&t->res, target_ns(c, &t->res) ?: c->namespace, t->names[i],
				      &path);
		if (r < 0)
			return r;
		r = ctl_request(c, "GET", path, CTL_ACCEPT_TABLE, NULL, NULL, &j, &e);
		if (r < 0) {
			*failed |= print_name_error(c, &e, r);
			continue;
		}
		r = tab_add_any(&tab, j);
		if (r < 0)
			return r;
	}
	if (tab.nrows == 0) {
		if (t->nnames == 0 && !*failed)
			no_resources(c, &t->res);
		return 0;
	}
	if (*printed)
		putchar('\n');
	ctl_tab_print(&tab, !c->o.no_headers, stdout);
	*printed = true;
	return 0;
}

/* Items as `kubectl get -o json` shows them: each with apiVersion and kind, first. */
static int add_item(cJSON *items, const struct ctl_resource *res, const cJSON *obj)
{
	cJSON *it = cJSON_CreateObject();
	const cJSON *ch;
	char av[200];

	if (!it || !cJSON_AddItemToArray(items, it)) {
		cJSON_Delete(it);
		return -ENOMEM;
	}
	if (*res->group)
		snprintf(av, sizeof(av), "%s/%s", res->group, res->version);
	else
		snprintf(av, sizeof(av), "%s", res->version);
	if (!cJSON_AddStringToObject(it, "apiVersion", ctl_json_str(obj, "apiVersion") ?: av) ||
	    !cJSON_AddStringToObject(it, "kind", ctl_json_str(obj, "kind") ?: res->kind))
		return -ENOMEM;
	cJSON_ArrayForEach(ch, obj) {
		cJSON *d;

		if (streq(ch->string, "apiVersion") || streq(ch->string, "kind"))
			continue;
		d = cJSON_Duplicate(ch, true);
		if (!d || !cJSON_AddItemToObject(it, ch->string, d)) {
			cJSON_Delete(d);
			return -ENOMEM;
		}
	}
	return 0;
}

static void print_name(const struct ctl_resource *res, const cJSON *obj)
{
	char ref[300];

	ctl_resource_ref(res, ref, sizeof(ref));
	printf("%s/%s\n", ref, ctl_json_str(obj, "metadata.name") ?: "");
}

static int print_object(struct ctl *c, const cJSON *obj)
{
	if (c->o.output == CTL_OUT_YAML)
		return ctl_print_yaml(obj, stdout);
	ctl_print_json(obj, stdout);
	return 0;
}

static int get_objects(struct ctl *c, const struct targets *ts, bool *failed)
{
	_cleanup_json_ cJSON *list = cJSON_CreateObject();
	cJSON *items;
	bool single = ts->n == 1 && ts->t[0].nnames == 1;
	int r;

	if (!list)
		return -ENOMEM;
	cJSON_AddStringToObject(list, "apiVersion", "v1");
	items = cJSON_AddArrayToObject(list, "items");
	cJSON_AddStringToObject(list, "kind", "List");
	cJSON *meta = cJSON_AddObjectToObject(list, "metadata");
	if (!items || !meta || !cJSON_AddStringToObject(meta, "resourceVersion", ""))
		return -ENOMEM;

	for (size_t i = 0; i < ts->n; i++) {
		const struct target *t = &ts->t[i];

		if (t->nnames == 0) {
			_cleanup_free_ char *path = NULL;
			_cleanup_json_ cJSON *j = NULL;
			struct err e = {};
			const cJSON *it;

			r = list_path(c, &t->res, NULL, NULL, &path);
			if (r < 0)
				return r;
			r = ctl_request(c, "GET", path, NULL, NULL, NULL, &j, &e);
			if (r < 0) {
				ctl_fail(&e, r);
				*failed = true;
				continue;
			}
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "items")) {
				if (c->o.output == CTL_OUT_NAME)
					print_name(&t->res, it);
				else if ((r = add_item(items, &t->res, it)) < 0)
					return r;
			}
		}
		for (size_t k = 0; k < t->nnames; k++) {
			_cleanup_free_ char *path = NULL;
			_cleanup_json_ cJSON *j = NULL;
			struct err e = {};

			r = ctl_resource_path(&t->res, target_ns(c, &t->res) ?: c->namespace,
					      t->names[k], &path);
			if (r < 0)
				return r;
			r = ctl_request(c, "GET", path, NULL, NULL, NULL, &j, &e);
			if (r < 0) {
				*failed |= print_name_error(c, &e, r);
				continue;
			}
			if (c->o.output == CTL_OUT_NAME)
				print_name(&t->res, j);
			else if (single)
				return print_object(c, j);
			else if ((r = add_item(items, &t->res, j)) < 0)
				return r;
		}
	}
	if (c->o.output == CTL_OUT_NAME || (single && *failed))
		return 0;
	return print_object(c, list);
}

/* ---- watch ---- */

struct watch {
	struct ctl *c;
	const struct ctl_resource *res;
	struct ctl_tab tab;
	bool header_done;
	struct err e;
	int status;
};

/* A raw object in a table watch (a server that ignores the Table Accept on watches): ask
 * for its row; a deleted object can only be shown by name. */
static int watch_row(struct watch *w, const cJSON *obj, const char *type)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ cJSON *j = NULL;
	const char *name = ctl_json_str(obj, "metadata.name");
	const char *ns = ctl_json_str(obj, "metadata.namespace");
	int r;

	if (name && !streq(type, "DELETED")) {
		r = ctl_resource_path(w->res, ns, name, &path);
		if (r < 0)
			return r;
		if (ctl_request(w->c, "GET", path, CTL_ACCEPT_TABLE, NULL, NULL, &j, NULL) >= 0 &&
		    is_table(j))
			return ctl_tab_add(&w->tab, j);
	}
	return tab_add_any(&w->tab, obj);
}

static int on_event(const char *line, size_t len, void *userdata)
{
	struct watch *w = userdata;
	_cleanup_json_ cJSON *ev = cJSON_ParseWithLength(line, len);
	const char *type = ctl_json_str(ev, "type");
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
	int r;

	if (!type || !obj)
		return err_set(&w->e, EBADMSG, 0, "", "the server sent a malformed watch event");
	if (streq(type, "BOOKMARK"))
		return 0;
	if (streq(type, "ERROR")) {
		_cleanup_free_ char *text = cJSON_PrintUnformatted(obj);
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");

		ctl_status_to_err(cJSON_IsNumber(code) ? code->valueint : 500, text, &w->e);
		return -EIO;
	}
	switch (w->c->o.output) {
	case CTL_OUT_JSON:
	case CTL_OUT_YAML:
		r = print_object(w->c, obj);
		fflush(stdout);
		return r;
	case CTL_OUT_NAME:
		print_name(w->res, obj);
		fflush(stdout);
		return 0;
	default:
		r = is_table(obj) ? ctl_tab_add(&w->tab, obj) : watch_row(w, obj, type);
		if (r < 0)
			return r;
		ctl_tab_print(&w->tab, !w->header_done && !w->c->o.no_headers, stdout);
		w->header_done = true;
		return 0;
	}
}

static int get_watch(struct ctl *c, const struct target *t)
{
	struct watch w = { .c = c, .res = &t->res };
	_cleanup_free_ char *path = NULL, *rv = NULL;
	struct ctl_response resp = {};
	struct ctl_http *h;
	const char *name = t->nnames ? t->names[0] : NULL;
	char ref[300];
	int r;

	if (t->nnames > 1)
		return ctl_fail(&(struct err){ .message = "watch is only supported on individual "
							  "resources and resource collections, "
							  "but 2 resources were found" },
				-EINVAL);
	ctl_resource_ref(&t->res, ref, sizeof(ref));
	w.tab.opts = (struct ctl_tab_opts){
		.wide = c->o.output == CTL_OUT_WIDE,
		.show_namespace = c->o.all_namespaces && t->res.namespaced,
		.show_labels = c->o.show_labels,
		.kind_ref = ref,
	};
	/* list first (unless --watch-only), then watch from the list's resourceVersion */
	r = list_path(c, &t->res, name, NULL, &path);
	if (r < 0)
		return r;
	{
		_cleanup_json_ cJSON *j = NULL;
		bool table = c->o.output == CTL_OUT_TABLE || c->o.output == CTL_OUT_WIDE;
		const cJSON *it;

		r = ctl_request(c, "GET", path, table ? CTL_ACCEPT_TABLE : NULL, NULL, NULL, &j,
				&w.e);
		if (r < 0)
			return ctl_fail(&w.e, r);
		rv = strdup(ctl_json_str(j, "metadata.resourceVersion") ?: "");
		if (!rv)
			return 1;
		if (!c->o.watch_only) {
			if (table) {
				r = tab_add_any(&w.tab, j);
				if (r < 0)
					return ctl_fail(&w.e, r);
				if (w.tab.nrows) {
					ctl_tab_print(&w.tab, !c->o.no_headers, stdout);
					w.header_done = true;
				}
			} else {
				cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "items")) {
					if (c->o.output == CTL_OUT_NAME)
						print_name(&t->res, it);
					else
						print_object(c, it);
				}
			}
			fflush(stdout);
		} else if (table) {
			/* columns without rows, so a watch-only header matches later rows */
			cJSON_DeleteItemFromObjectCaseSensitive(j, "rows");
			if (is_table(j))
				ctl_tab_add(&w.tab, j);
		}
	}
	free(path);
	path = NULL;
	r = list_path(c, &t->res, name, rv, &path);
	if (r < 0)
		return r;
	r = ctl_http(c, &h, &w.e);
	if (r < 0)
		return ctl_fail(&w.e, r);
	r = ctl_http_stream(h, path,
			    c->o.output == CTL_OUT_TABLE || c->o.output == CTL_OUT_WIDE
				    ? CTL_ACCEPT_TABLE
				    : "application/json",
			    on_event, &w, &resp, &w.e);
	if (r >= 0 && resp.status && (resp.status < 200 || resp.status >= 300))
		r = ctl_status_to_err(resp.status, resp.body, &w.e);
	ctl_response_done(&resp);
	ctl_tab_done(&w.tab);
	if (r < 0)
		return ctl_fail(&w.e, r);
	return 0;
}

int cmd_get(struct ctl *c, int argc, char **argv)
{
	_cleanup_(targets_done) struct targets ts = {};
	_cleanup_json_ cJSON *objs = NULL;
	struct err e = {};
	bool failed = false;
	int r;

	if (c->o.nfiles) {
		r = ctl_read_files(c, &objs, &e);
		if (r < 0)
			return ctl_fail(&e, r);
	}
	r = parse_targets(c, argc, argv, objs, &ts, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	if (c->o.watch) {
		if (ts.n != 1)
			return ctl_fail(&(struct err){ .message = "you may only specify a single "
								  "resource type with --watch" },
					-EINVAL);
		return get_watch(c, &ts.t[0]);
	}
	if (c->o.output == CTL_OUT_TABLE || c->o.output == CTL_OUT_WIDE) {
		bool show_kind = false, printed = false;

		for (size_t i = 1; i < ts.n; i++)
			if (!same_resource(&ts.t[i].res, &ts.t[0].res))
				show_kind = true;
		for (size_t i = 0; i < ts.n; i++) {
			r = get_table(c, &ts.t[i], show_kind, &printed, &failed);
			if (r < 0)
				return ctl_fail(&e, r);
		}
	} else {
		r = get_objects(c, &ts, &failed);
		if (r < 0)
			return ctl_fail(&e, r);
	}
	return failed ? 1 : 0;
}
