// SPDX-License-Identifier: Apache-2.0
/*
 * Discovery (/version, /api, /api/v1, /apis, /apis/G, /apis/G/V) and OpenAPI v3 documents,
 * all generated from the resource registry. The OpenAPI documents are minimal: every kind is
 * an object schema that preserves unknown fields, and every PATCH operation names its
 * group-version-kind and the fieldValidation parameter, which is what kubectl checks before
 * it leaves validation to the server. Legacy (non-aggregated) discovery only: clients that ask
 * for aggregated discovery get the legacy documents and fall back to them.
 */
#include <string.h>

#include "api/server-internal.h"
#include "lib/json.h"
#include "lib/util.h"

#define SHOAL_K8S_MAJOR "1"
#define SHOAL_K8S_MINOR "33"
#define SHOAL_GIT_VERSION "v1.33.0-shoal"

static bool group_served(const char *group, const char **version)
{
	for (size_t i = 0; i < api_group_versions_count; i++)
		if (streq(api_group_versions[i].group, group)) {
			if (version)
				*version = api_group_versions[i].version;
			return true;
		}
	return false;
}

static bool gv_served(const char *group, const char *version)
{
	for (size_t i = 0; i < api_group_versions_count; i++)
		if (streq(api_group_versions[i].group, group) &&
		    streq(api_group_versions[i].version, version))
			return true;
	return false;
}

/* Split "/a/b/c" into at most 4 segments; returns the count (5 = too many). */
static size_t split(const char *path, char seg[4][64])
{
	size_t n = 0;
	const char *p = path;

	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		if (n == 4 || (size_t)(e - p) >= 64)
			return 5;
		memcpy(seg[n], p, e - p);
		seg[n][e - p] = 0;
		n++;
		p = e;
	}
	return n;
}

bool api_discovery_match(const char *path)
{
	char seg[4][64];
	size_t n = split(path, seg);

	if (n == 1 && (streq(seg[0], "version") || streq(seg[0], "api") || streq(seg[0], "apis")))
		return true;
	if (!strncmp(path, "/openapi/", 9) || streq(path, "/openapi"))
		return true;
	if (n == 2 && streq(seg[0], "api"))
		return true; /* /api/v1 (or an unknown version: 404) */
	if ((n == 2 || n == 3) && streq(seg[0], "apis"))
		return true; /* /apis/G, /apis/G/V */
	return false;
}

static cJSON *gv_entry(const char *group, const char *version)
{
	cJSON *o = cJSON_CreateObject();
	char gv[96];

	snprintf(gv, sizeof(gv), "%s/%s", group, version);
	cJSON_AddStringToObject(o, "groupVersion", gv);
	cJSON_AddStringToObject(o, "version", version);
	return o;
}

static cJSON *api_group(const char *group)
{
	cJSON *g = cJSON_CreateObject(), *vs;
	const char *pref = NULL;

	cJSON_AddStringToObject(g, "name", group);
	vs = cJSON_AddArrayToObject(g, "versions");
	for (size_t i = 0; i < api_group_versions_count; i++)
		if (streq(api_group_versions[i].group, group)) {
			cJSON_AddItemToArray(vs, gv_entry(group, api_group_versions[i].version));
			if (!pref)
				pref = api_group_versions[i].version;
		}
	cJSON_AddItemToObject(g, "preferredVersion", gv_entry(group, pref ? pref : "v1"));
	return g;
}

static void add_strings(cJSON *o, const char *key, const char *const *v)
{
	cJSON *a = cJSON_AddArrayToObject(o, key);

	for (; v && *v; v++)
		cJSON_AddItemToArray(a, cJSON_CreateString(*v));
}

static cJSON *resource_entry(const struct api_resource *res, const char *sub)
{
	cJSON *o = cJSON_CreateObject();
	const char *verbs[9];
	size_t nv;
	char name[96];

	snprintf(name, sizeof(name), "%s%s%s", res->plural, sub ? "/" : "", sub ? sub : "");
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "singularName", sub ? "" : res->singular);
	cJSON_AddBoolToObject(o, "namespaced", res->namespaced);
	if (sub && streq(sub, "scale")) {
		cJSON_AddStringToObject(o, "group", "autoscaling");
		cJSON_AddStringToObject(o, "version", "v1");
		cJSON_AddStringToObject(o, "kind", "Scale");
	} else if (sub && streq(sub, "eviction")) {
		/* what kubectl drain looks for before it evicts instead of deleting */
		static const char *const ev[] = { "create", NULL };
		cJSON_AddStringToObject(o, "group", "policy");
		cJSON_AddStringToObject(o, "version", "v1");
		cJSON_AddStringToObject(o, "kind", "Eviction");
		add_strings(o, "verbs", ev);
		return o;
	} else
		cJSON_AddStringToObject(o, "kind", res->kind);
	if (sub) {
		static const char *const sv[] = { "get", "patch", "update", NULL };
		add_strings(o, "verbs", sv);
		return o;
	}
	nv = api_verbs_names(res->verbs, verbs, ARRAY_SIZE(verbs) - 1);
	verbs[nv] = NULL;
	add_strings(o, "verbs", verbs);
	if (res->short_names)
		add_strings(o, "shortNames", res->short_names);
	if (res->in_all) {
		static const char *const cats[] = { "all", NULL };
		add_strings(o, "categories", cats);
	}
	return o;
}

static cJSON *resource_list(const char *group, const char *version)
{
	cJSON *l = cJSON_CreateObject(), *rs;
	const char *gv = NULL;

	for (size_t i = 0; i < api_resources_count; i++)
		if (streq(api_resources[i].group, group) &&
		    streq(api_resources[i].version, version))
			gv = api_resources[i].group_version;
	cJSON_AddStringToObject(l, "kind", "APIResourceList");
	cJSON_AddStringToObject(l, "apiVersion", "v1");
	cJSON_AddStringToObject(l, "groupVersion", gv ? gv : version);
	rs = cJSON_AddArrayToObject(l, "resources");
	for (size_t i = 0; i < api_resources_count; i++) {
		const struct api_resource *res = &api_resources[i];
		if (!streq(res->group, group) || !streq(res->version, version))
			continue;
		cJSON_AddItemToArray(rs, resource_entry(res, NULL));
		if (res->has_status)
			cJSON_AddItemToArray(rs, resource_entry(res, "status"));
		if (res->has_scale)
			cJSON_AddItemToArray(rs, resource_entry(res, "scale"));
		if (streq(res->key, "pods"))
			cJSON_AddItemToArray(rs, resource_entry(res, "eviction"));
	}
	return l;
}

static cJSON *version_doc(void)
{
	cJSON *v = cJSON_CreateObject();

	cJSON_AddStringToObject(v, "major", SHOAL_K8S_MAJOR);
	cJSON_AddStringToObject(v, "minor", SHOAL_K8S_MINOR);
	cJSON_AddStringToObject(v, "gitVersion", SHOAL_GIT_VERSION);
	cJSON_AddStringToObject(v, "gitCommit", "");
	cJSON_AddStringToObject(v, "gitTreeState", "clean");
	cJSON_AddStringToObject(v, "buildDate", __DATE__ " " __TIME__);
	cJSON_AddStringToObject(v, "goVersion", "");
	cJSON_AddStringToObject(v, "compiler", "gcc");
	cJSON_AddStringToObject(v, "platform", "linux/amd64");
	return v;
}

/* ---------- OpenAPI v3 ---------- */

static void schema_name(const struct api_resource *res, char *buf, size_t len)
{
	snprintf(buf, len, "io.k8s.api.%s.%s.%s", res->group[0] ? res->group : "core",
		 res->version, res->kind);
}

static cJSON *op(const struct api_resource *res, const char *action, const char *ref,
		 bool field_validation)
{
	cJSON *o = cJSON_CreateObject(), *gvk, *resp, *ok, *content, *ctype, *schema, *params;
	char opid[128];

	snprintf(opid, sizeof(opid), "%s%s", action, res->kind);
	cJSON_AddStringToObject(o, "operationId", opid);
	cJSON_AddStringToObject(o, "x-kubernetes-action", action);
	gvk = cJSON_AddObjectToObject(o, "x-kubernetes-group-version-kind");
	cJSON_AddStringToObject(gvk, "group", res->group);
	cJSON_AddStringToObject(gvk, "version", res->version);
	cJSON_AddStringToObject(gvk, "kind", res->kind);
	params = cJSON_AddArrayToObject(o, "parameters");
	if (field_validation) {
		static const char *const qs[] = { "fieldValidation", "fieldManager", "dryRun" };
		for (size_t i = 0; i < ARRAY_SIZE(qs); i++) {
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "name", qs[i]);
			cJSON_AddStringToObject(p, "in", "query");
			cJSON_AddObjectToObject(p, "schema");
			json_set_str(json_path(p, "schema"), "type", "string");
			cJSON_AddBoolToObject(p, "uniqueItems", true);
			cJSON_AddItemToArray(params, p);
		}
	}
	resp = cJSON_AddObjectToObject(o, "responses");
	ok = cJSON_AddObjectToObject(resp, "200");
	cJSON_AddStringToObject(ok, "description", "OK");
	content = cJSON_AddObjectToObject(ok, "content");
	ctype = cJSON_AddObjectToObject(content, "application/json");
	schema = cJSON_AddObjectToObject(ctype, "schema");
	cJSON_AddStringToObject(schema, "$ref", ref);
	return o;
}

static cJSON *openapi_gv(const char *group, const char *version)
{
	cJSON *doc = cJSON_CreateObject(), *info, *paths, *schemas;

	cJSON_AddStringToObject(doc, "openapi", "3.0.0");
	info = cJSON_AddObjectToObject(doc, "info");
	cJSON_AddStringToObject(info, "title", "Kubernetes (shoal)");
	cJSON_AddStringToObject(info, "version", SHOAL_GIT_VERSION);
	paths = cJSON_AddObjectToObject(doc, "paths");
	schemas = cJSON_AddObjectToObject(cJSON_AddObjectToObject(doc, "components"), "schemas");
	for (size_t i = 0; i < api_resources_count; i++) {
		const struct api_resource *res = &api_resources[i];
		char sname[160], ref[200], coll[200], item[220];
		cJSON *s, *pc, *pi;

		if (!streq(res->group, group) || !streq(res->version, version))
			continue;
		schema_name(res, sname, sizeof(sname));
		snprintf(ref, sizeof(ref), "#/components/schemas/%s", sname);
		/* No x-kubernetes-group-version-kind on the schema on purpose: kubectl apply
		 * then computes strategic merge patches from its built-in types (with the
		 * real merge keys) instead of from this schema, which has none. */
		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "type", "object");
		cJSON_AddStringToObject(s, "description", res->kind);
		cJSON_AddBoolToObject(s, "x-kubernetes-preserve-unknown-fields", true);
		cJSON_AddItemToObject(schemas, sname, s);

		const char *prefix = res->group[0] ? "/apis/" : "/api/";
		if (res->namespaced)
			snprintf(coll, sizeof(coll), "%s%s/namespaces/{namespace}/%s", prefix,
				 res->group_version, res->plural);
		else
			snprintf(coll, sizeof(coll), "%s%s/%s", prefix, res->group_version,
				 res->plural);
		snprintf(item, sizeof(item), "%s/{name}", coll);
		pc = cJSON_AddObjectToObject(paths, coll);
		if (!res->read_only)
			cJSON_AddItemToObject(pc, "post", op(res, "post", ref, true));
		cJSON_AddItemToObject(pc, "get", op(res, "list", ref, false));
		pi = cJSON_AddObjectToObject(paths, item);
		cJSON_AddItemToObject(pi, "get", op(res, "get", ref, false));
		if (!res->read_only) {
			cJSON_AddItemToObject(pi, "put", op(res, "put", ref, true));
			cJSON_AddItemToObject(pi, "patch", op(res, "patch", ref, true));
			cJSON_AddItemToObject(pi, "delete", op(res, "delete", ref, false));
		}
	}
	return doc;
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static cJSON *openapi_root(void)
{
	cJSON *doc = cJSON_CreateObject(), *paths = cJSON_AddObjectToObject(doc, "paths");

	for (size_t i = 0; i < api_group_versions_count; i++) {
		const struct api_group_version *gv = &api_group_versions[i];
		_cleanup_json_ cJSON *d = openapi_gv(gv->group, gv->version);
		_cleanup_free_ char *text = cJSON_PrintUnformatted(d);
		char key[96], url[160];
		cJSON *e;

		if (gv->group[0])
			snprintf(key, sizeof(key), "apis/%s/%s", gv->group, gv->version);
		else
			snprintf(key, sizeof(key), "api/%s", gv->version);
		snprintf(url, sizeof(url), "/openapi/v3/%s?hash=%08X", key, text ? fnv1a(text) : 0);
		e = cJSON_AddObjectToObject(paths, key);
		cJSON_AddStringToObject(e, "serverRelativeURL", url);
	}
	return doc;
}

static void reply_doc(struct api_req *r, cJSON *doc)
{
	if (!doc) {
		api_reply_err(r, -ENOMEM, NULL);
		return;
	}
	api_reply_json(r, 200, doc);
	cJSON_Delete(doc);
}

/*
 * OpenAPI v2 exists for older clients (kubectl <= 1.26 validates manifests with it). It carries
 * no definitions: client-side validation skips kinds the document does not describe, and the
 * server validates everything itself. Clients ask for the gnostic protobuf form; its only field
 * here is `swagger` (field 1, a string), so the encoding is five bytes written out below.
 */
static void openapi_v2(struct api_req *r)
{
	static const char pb[] = { 0x0a, 0x03, '2', '.', '0' };
	const char *accept = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Accept");

	if (accept && strstr(accept, "protobuf")) {
		api_reply_raw(r, 200, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", pb,
			      sizeof(pb));
		return;
	}
	_cleanup_json_ cJSON *doc = cJSON_CreateObject();
	cJSON *info;
	if (!doc) {
		api_reply_err(r, -ENOMEM, NULL);
		return;
	}
	cJSON_AddStringToObject(doc, "swagger", "2.0");
	info = cJSON_AddObjectToObject(doc, "info");
	cJSON_AddStringToObject(info, "title", "Shoal");
	cJSON_AddStringToObject(info, "version", "v1.33.0-shoal");
	cJSON_AddObjectToObject(doc, "paths");
	cJSON_AddObjectToObject(doc, "definitions");
	api_reply_json(r, 200, doc);
}

void api_discovery_handle(struct api_req *r)
{
	char seg[4][64];
	size_t n = split(r->path, seg);
	const char *ver;

	if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_HEAD) {
		api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
				 "the server does not allow this method on the requested resource");
		return;
	}
	if (n == 1 && streq(seg[0], "version")) {
		reply_doc(r, version_doc());
		return;
	}
	if (n == 1 && streq(seg[0], "api")) {
		cJSON *d = cJSON_CreateObject(), *sa, *e;
		cJSON_AddStringToObject(d, "kind", "APIVersions");
		add_strings(d, "versions", (const char *const[]){ "v1", NULL });
		sa = cJSON_AddArrayToObject(d, "serverAddressByClientCIDRs");
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "clientCIDR", "0.0.0.0/0");
		cJSON_AddStringToObject(e, "serverAddress", r->srv->node_name);
		cJSON_AddItemToArray(sa, e);
		reply_doc(r, d);
		return;
	}
	if (n == 2 && streq(seg[0], "api")) {
		if (!streq(seg[1], "v1"))
			goto not_found;
		reply_doc(r, resource_list("", "v1"));
		return;
	}
	if (n == 1 && streq(seg[0], "apis")) {
		cJSON *d = cJSON_CreateObject(), *gs;
		cJSON_AddStringToObject(d, "kind", "APIGroupList");
		cJSON_AddStringToObject(d, "apiVersion", "v1");
		gs = cJSON_AddArrayToObject(d, "groups");
		for (size_t i = 0; i < api_group_versions_count; i++) {
			const char *g = api_group_versions[i].group;
			bool seen = false;
			if (!g[0])
				continue;
			for (size_t k = 0; k < i; k++)
				seen |= streq(api_group_versions[k].group, g);
			if (!seen)
				cJSON_AddItemToArray(gs, api_group(g));
		}
		reply_doc(r, d);
		return;
	}
	if (n == 2 && streq(seg[0], "apis")) {
		if (!group_served(seg[1], &ver))
			goto not_found;
		cJSON *g = api_group(seg[1]);
		cJSON_AddStringToObject(g, "kind", "APIGroup");
		cJSON_AddStringToObject(g, "apiVersion", "v1");
		reply_doc(r, g);
		return;
	}
	if (n == 3 && streq(seg[0], "apis")) {
		if (!gv_served(seg[1], seg[2]))
			goto not_found;
		reply_doc(r, resource_list(seg[1], seg[2]));
		return;
	}
	if (streq(r->path, "/openapi/v2")) {
		openapi_v2(r);
		return;
	}
	if (!strncmp(r->path, "/openapi/", 9)) {
		char g[64], v[64], extra[8];
		if (n == 2 && streq(seg[1], "v3")) {
			reply_doc(r, openapi_root());
			return;
		}
		if (n == 4 && streq(seg[1], "v3") && streq(seg[2], "api") && streq(seg[3], "v1")) {
			reply_doc(r, openapi_gv("", "v1"));
			return;
		}
		/* /openapi/v3/apis/G/V has five segments: split() stops at four */
		if (sscanf(r->path, "/openapi/v3/apis/%63[^/]/%63[^/]%7s", g, v, extra) == 2 &&
		    gv_served(g, v)) {
			reply_doc(r, openapi_gv(g, v));
			return;
		}
	}
not_found:
	api_reply_status(r, 404, "NotFound", NULL, NULL,
			 "the server could not find the requested resource");
}
