// SPDX-License-Identifier: Apache-2.0
/* The per-run context: lazy connection, JSON requests, discovery cache, namespaces. */
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

int ctl_http(struct ctl *c, struct ctl_http **ret, struct err *e)
{
	int r;

	if (!c->http) {
		r = ctl_http_new(&c->cfg, &c->http, e);
		if (r < 0)
			return r;
	}
	*ret = c->http;
	return 0;
}

int ctl_request(struct ctl *c, const char *method, const char *path, const char *accept,
		const char *content_type, const cJSON *body, cJSON **ret, struct err *e)
{
	_cleanup_free_ char *text = NULL;
	struct ctl_response resp = {};
	struct ctl_http *h;
	int r;

	if (ret)
		*ret = NULL;
	r = ctl_http(c, &h, e);
	if (r < 0)
		return r;
	if (body) {
		text = cJSON_PrintUnformatted(body);
		if (!text)
			return -ENOMEM;
	}
	r = ctl_http_do(h, method, path, accept,
			body ? (content_type ? content_type : "application/json") : NULL, text,
			&resp, e);
	if (r < 0)
		return r;
	if (resp.status < 200 || resp.status >= 300) {
		r = ctl_status_to_err(resp.status, resp.body, e);
		ctl_response_done(&resp);
		return r;
	}
	if (ret && resp.len > 0) {
		*ret = cJSON_ParseWithLength(resp.body, resp.len);
		if (!*ret)
			r = err_set(e, EBADMSG, 0, "", "the server sent invalid JSON for %s %s",
				    method, path);
	}
	ctl_response_done(&resp);
	return r;
}

static bool have_gv(struct ctl *c, const char *gv)
{
	const cJSON *l;

	cJSON_ArrayForEach(l, c->lists) {
		const char *g = ctl_json_str(l, "groupVersion");

		if (g && streq(g, gv))
			return true;
	}
	return false;
}

/* Fetch one group-version's APIResourceList into the cache; a 404 just means "not served". */
static int fetch_gv(struct ctl *c, const char *gv, struct err *e)
{
	_cleanup_free_ char *path = NULL;
	cJSON *list = NULL;
	struct err fe = {};
	int r;

	if (have_gv(c, gv))
		return 0;
	if (!c->lists && !(c->lists = cJSON_CreateArray()))
		return -ENOMEM;
	if (asprintf(&path, strchr(gv, '/') ? "/apis/%s" : "/api/%s", gv) < 0)
		return -ENOMEM;
	r = ctl_request(c, "GET", path, NULL, NULL, NULL, &list, &fe);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		if (e)
			*e = fe;
		return r;
	}
	if (!cJSON_IsObject(list)) {
		cJSON_Delete(list);
		return err_set(e, EBADMSG, 0, "", "unexpected discovery document at %s", path);
	}
	if (!ctl_json_str(list, "groupVersion"))
		cJSON_AddStringToObject(list, "groupVersion", gv);
	cJSON_AddItemToArray(c->lists, list);
	return 0;
}

int ctl_discover_all(struct ctl *c, struct err *e)
{
	_cleanup_json_ cJSON *groups = NULL;
	const cJSON *g;
	int r;

	if (c->discovered_all)
		return 0;
	r = fetch_gv(c, "v1", e);
	if (r < 0)
		return r;
	r = ctl_request(c, "GET", "/apis", NULL, NULL, NULL, &groups, e);
	if (r < 0 && r != -ENOENT)
		return r;
	cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(groups, "groups")) {
		const char *gv = ctl_json_str(g, "preferredVersion.groupVersion");

		if (!gv) { /* no preference: the first version listed */
			const cJSON *v0 = cJSON_GetArrayItem(
				cJSON_GetObjectItemCaseSensitive(g, "versions"), 0);
			gv = ctl_json_str(v0, "groupVersion");
		}
		if (!gv)
			continue;
		r = fetch_gv(c, gv, e);
		if (r < 0)
			return r;
	}
	c->discovered_all = true;
	return 0;
}

int ctl_resolve(struct ctl *c, const char *arg, struct ctl_resource *ret, struct err *e)
{
	int r;

	/* most names are core resources: try /api/v1 alone before walking every group */
	if (!strchr(arg, '.')) {
		r = fetch_gv(c, "v1", e);
		if (r < 0)
			return r;
		if (ctl_resource_resolve(c->lists, arg, ret, NULL) >= 0)
			return 0;
	}
	r = ctl_discover_all(c, e);
	if (r < 0)
		return r;
	return ctl_resource_resolve(c->lists, arg, ret, e);
}

int ctl_resolve_kind(struct ctl *c, const char *api_version, const char *kind,
		     struct ctl_resource *ret, struct err *e)
{
	int r;

	if (strempty(api_version) || strempty(kind))
		return err_set(e, EINVAL, 0, "", "object is missing apiVersion or kind");
	r = fetch_gv(c, api_version, e);
	if (r < 0)
		return r;
	return ctl_resource_by_kind(c->lists, api_version, kind, ret, e);
}

int ctl_object_namespace(struct ctl *c, const struct ctl_resource *r, const cJSON *obj,
			 const char **ret, struct err *e)
{
	const char *ns = ctl_json_str(obj, "metadata.namespace");

	*ret = NULL;
	if (!r->namespaced)
		return 0;
	if (ns && *ns && c->o.namespace && !streq(ns, c->o.namespace))
		return err_set(e, EINVAL, 0, "",
			       "the namespace from the provided object \"%s\" does not match the "
			       "namespace \"%s\". You must pass '--namespace=%s' to perform this "
			       "operation.",
			       ns, c->o.namespace, ns);
	*ret = ns && *ns ? ns : c->namespace;
	return 0;
}

int ctl_fail(const struct err *e, int r)
{
	if (e->code >= 400) {
		if (e->reason[0])
			fprintf(stderr, "Error from server (%s): %s\n", e->reason, e->message);
		else
			fprintf(stderr, "Error from server: %s\n", e->message);
	} else if (e->message[0]) {
		fprintf(stderr, "error: %s\n", e->message);
	} else {
		fprintf(stderr, "error: %s\n", strerror(r < 0 ? -r : EIO));
	}
	return 1;
}

void ctl_done(struct ctl *c)
{
	c->http = ctl_http_free(c->http);
	ctl_config_done(&c->cfg);
	cJSON_Delete(c->lists);
	c->lists = NULL;
	free(c->namespace);
	c->namespace = NULL;
}

int ctl_read_files(struct ctl *c, cJSON **ret, struct err *e)
{
	_cleanup_json_ cJSON *objs = cJSON_CreateArray();
	int r;

	if (!objs)
		return -ENOMEM;
	if (c->o.nfiles == 0)
		return err_set(e, EINVAL, 0, "", "must specify -f FILENAME");
	for (size_t i = 0; i < c->o.nfiles; i++) {
		r = ctl_manifest_read(c->o.files[i], c->o.recursive, objs, e);
		if (r < 0)
			return r;
	}
	if (cJSON_GetArraySize(objs) == 0)
		return err_set(e, EINVAL, 0, "", "no objects passed to %s",
			       c->o.nfiles == 1 ? c->o.files[0] : "the command");
	*ret = TAKE_PTR(objs);
	return 0;
}

int ctl_object_target(struct ctl *c, const cJSON *obj, struct ctl_resource *ret_res,
		      const char **ret_ns, const char **ret_name, struct err *e)
{
	int r;

	r = ctl_resolve_kind(c, ctl_json_str(obj, "apiVersion"), ctl_json_str(obj, "kind"),
			     ret_res, e);
	if (r < 0)
		return r;
	r = ctl_object_namespace(c, ret_res, obj, ret_ns, e);
	if (r < 0)
		return r;
	*ret_name = ctl_json_str(obj, "metadata.name");
	return 0;
}
