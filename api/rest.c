// SPDX-License-Identifier: Apache-2.0
/*
 * Resource endpoints: routing of /api/v1/... and /apis/G/V/..., body decoding, create, get,
 * list (selectors, limit/continue, Table), update, patch, delete, deletecollection, and the
 * status and scale subresources. Watches are handed to watch.c.
 */
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "api/patch.h"
#include "api/protobuf.h"
#include "api/server-internal.h"
#include "api/table.h"
#include "api/write.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/yaml.h"

#define MAX_SEGMENTS 8

/* ---------- routing ---------- */

static void reply_not_found_path(struct api_req *r)
{
	api_reply_status(r, 404, "NotFound", NULL, NULL,
			 "the server could not find the requested resource");
}

/* Fill r->res/ns/name/sub from r->path. false (and a reply sent) if it is not a resource. */
static bool route(struct api_req *r)
{
	_cleanup_free_ char *p = strdup(r->path);
	char *seg[MAX_SEGMENTS + 1], *save = NULL, *t;
	const char *group, *version, **rest;
	size_t n = 0, nrest;

	if (!p) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return false;
	}
	for (t = strtok_r(p, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGMENTS) {
			reply_not_found_path(r);
			return false;
		}
		seg[n++] = t;
	}
	if (n >= 3 && streq(seg[0], "api")) {
		group = "";
		version = seg[1];
		rest = (const char **)seg + 2;
		nrest = n - 2;
	} else if (n >= 4 && streq(seg[0], "apis")) {
		group = seg[1];
		version = seg[2];
		rest = (const char **)seg + 3;
		nrest = n - 3;
	} else {
		reply_not_found_path(r);
		return false;
	}
	const char *ns = NULL, *plural, *name = NULL, *sub = NULL;
	if (nrest >= 3 && streq(rest[0], "namespaces") &&
	    !(nrest == 3 && (streq(rest[2], "status") || streq(rest[2], "finalize")))) {
		if (nrest > 5) {
			reply_not_found_path(r);
			return false;
		}
		ns = rest[1];
		plural = rest[2];
		name = nrest > 3 ? rest[3] : NULL;
		sub = nrest > 4 ? rest[4] : NULL;
	} else {
		if (nrest > 3) {
			reply_not_found_path(r);
			return false;
		}
		plural = rest[0];
		name = nrest > 1 ? rest[1] : NULL;
		sub = nrest > 2 ? rest[2] : NULL;
	}
	r->res = api_resource_find(group, version, plural);
	if (!r->res || (ns && !r->res->namespaced)) {
		r->res = NULL;
		reply_not_found_path(r);
		return false;
	}
	r->ns = ns ? strdup(ns) : NULL;
	r->name = name ? strdup(name) : NULL;
	r->sub = sub ? strdup(sub) : NULL;
	if ((ns && !r->ns) || (name && !r->name) || (sub && !r->sub)) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return false;
	}
	return true;
}

/* ---------- bodies ---------- */

static const char *req_header(struct api_req *r, const char *h)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->req), h);
}

/* media type without parameters, lowercased, into buf */
static const char *media_type(const char *ct, char *buf, size_t len)
{
	size_t i = 0;

	if (!ct)
		return "";
	while (*ct == ' ')
		ct++;
	for (; ct[i] && ct[i] != ';' && ct[i] != ' ' && i < len - 1; i++)
		buf[i] = (ct[i] >= 'A' && ct[i] <= 'Z') ? ct[i] - 'A' + 'a' : ct[i];
	buf[i] = 0;
	return buf;
}

enum body_kind { BODY_JSON, BODY_YAML, BODY_MERGE, BODY_STRATEGIC, BODY_JSONPATCH, BODY_APPLY,
		 BODY_PROTOBUF };

/* Parse the request body (pb_kind: the kind a protobuf envelope without type holds). Sends
 * the error reply itself and returns <0 on failure. */
static int body_parse(struct api_req *r, bool patch, const char *pb_kind, cJSON **ret,
		      enum body_kind *kind)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	char mtbuf[96];
	const char *mt = media_type(req_header(r, "Content-Type"), mtbuf, sizeof(mtbuf));
	enum body_kind k;
	struct err e = { 0 };
	cJSON *j;
	int ret_r;

	if (patch) {
		if (streq(mt, "application/merge-patch+json"))
			k = BODY_MERGE;
		else if (streq(mt, "application/strategic-merge-patch+json"))
			k = BODY_STRATEGIC;
		else if (streq(mt, "application/json-patch+json"))
			k = BODY_JSONPATCH;
		else if (streq(mt, "application/apply-patch+yaml"))
			k = BODY_APPLY;
		else {
			api_reply_status(r, 415, "UnsupportedMediaType", NULL, NULL,
					 "the body of the request was in an unknown format - "
					 "accepted media types include: application/json-patch+json, "
					 "application/merge-patch+json, "
					 "application/strategic-merge-patch+json, "
					 "application/apply-patch+yaml");
			return -EOPNOTSUPP;
		}
	} else if (!*mt || streq(mt, "application/json") || streq(mt, "*/*"))
		k = BODY_JSON;
	else if (streq(mt, "application/yaml") || streq(mt, "application/x-yaml") ||
		 streq(mt, "text/yaml"))
		k = BODY_YAML;
	else if (streq(mt, "application/vnd.kubernetes.protobuf"))
		k = BODY_PROTOBUF;
	else {
		api_reply_status(r, 415, "UnsupportedMediaType", NULL, NULL,
				 "the body of the request was in an unknown format - accepted "
				 "media types include: application/json, application/yaml, "
				 "application/vnd.kubernetes.protobuf");
		return -EOPNOTSUPP;
	}
	if (len > r->srv->max_body) {
		api_reply_status(r, 413, "RequestEntityTooLarge", NULL, NULL,
				 "the request body is larger than %zu bytes", r->srv->max_body);
		return -EFBIG;
	}
	if (len == 0) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL, "the request body is empty");
		return -EBADMSG;
	}
	const char *data = (const char *)evbuffer_pullup(in, -1);
	if (k == BODY_PROTOBUF) {
		ret_r = pb_envelope_decode(data, len, r->res ? r->res->group_version : NULL,
					   pb_kind, &j, &e);
		if (ret_r < 0) {
			api_reply_err(r, ret_r, &e);
			return ret_r;
		}
	} else if (k == BODY_YAML || k == BODY_APPLY) {
		ret_r = yaml_parse_one(data, len, &j, &e);
		if (ret_r < 0) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL, "%s",
					 e.message[0] ? e.message : "malformed YAML body");
			return ret_r;
		}
	} else {
		j = cJSON_ParseWithLength(data, len);
		if (!j) {
			const char *where = cJSON_GetErrorPtr();
			long off = where && where >= data && where <= data + len ? where - data : -1;
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "error decoding request body: invalid JSON at offset %ld",
					 off);
			return -EBADMSG;
		}
	}
	if (k == BODY_JSONPATCH ? !cJSON_IsArray(j) : !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 k == BODY_JSONPATCH ? "a JSON patch must be an array of operations"
						     : "the request body must be a JSON object");
		return -EBADMSG;
	}
	*ret = j;
	if (kind)
		*kind = k;
	return 0;
}

/* apiVersion/kind/namespace/name of a body against the URL. Replies and returns false. */
static bool body_check(struct api_req *r, cJSON *obj, const char *kind, const char *gv,
		       bool need_name)
{
	const char *av = json_str(obj, "apiVersion", NULL), *k = json_str(obj, "kind", NULL);
	cJSON *md;

	if (!strempty(k) && !streq(k, kind)) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "the kind in the body (%s) does not match the kind on the URL (%s)",
				 k, kind);
		return false;
	}
	if (!strempty(av) && !streq(av, gv)) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "the API version in the data (%s) does not match the expected API "
				 "version (%s)",
				 av, gv);
		return false;
	}
	md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	if (!md)
		md = cJSON_AddObjectToObject(obj, "metadata");
	if (!cJSON_IsObject(md)) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL, "metadata must be an object");
		return false;
	}
	if (r->res->namespaced && r->ns) {
		const char *bns = json_str(md, "namespace", NULL);
		if (!strempty(bns) && !streq(bns, r->ns)) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "the namespace of the provided object does not match the "
					 "namespace sent on the request");
			return false;
		}
		json_set_str(md, "namespace", r->ns);
	}
	if (need_name && r->name) {
		const char *bn = json_str(md, "name", NULL);
		if (!strempty(bn) && !streq(bn, r->name)) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "the name of the object (%s) does not match the name on "
					 "the URL (%s)",
					 bn, r->name);
			return false;
		}
		json_set_str(md, "name", r->name);
	}
	return true;
}

static bool dry_run_refused(struct api_req *r)
{
	if (!strempty(api_query(r, "dryRun"))) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "dryRun is not supported on the status subresource");
		return true;
	}
	return false;
}

/* ---------- Table output ---------- */

static int64_t now_s(void)
{
	return (int64_t)(util_now_ms() / 1000);
}

static void table_set_meta(cJSON *t, uint64_t rv, const char *cont)
{
	cJSON *md = json_path_obj(t, "metadata");
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)rv);
	json_set_str(md, "resourceVersion", buf);
	if (cont)
		json_set_str(md, "continue", cont);
}

static void reply_obj_as(struct api_req *r, int code, struct store_obj *o)
{
	_cleanup_json_ cJSON *t = NULL, *obj = NULL;

	if (!r->as_table) {
		api_reply_obj(r, code, o);
		return;
	}
	obj = store_obj_parse(o);
	t = table_new(r->res->kind);
	if (!obj || !t) {
		api_reply_err(r, -ENOMEM, NULL);
		return;
	}
	table_add_row(t, r->res->kind, obj, now_s(), r->include_object);
	table_set_meta(t, o->rv, NULL);
	api_reply_json(r, code, t);
}

/* The reply of a write: the stored object, or on a dry run what would have been stored. */
static void reply_write(struct api_req *r, int code, struct store_obj *o, struct api_write *w)
{
	_cleanup_json_ cJSON *t = NULL;
	cJSON *obj = w->wo.dry_result;

	if (o || !obj) {
		if (o)
			reply_obj_as(r, code, o);
		else
			api_reply_err(r, -EIO, NULL);
		return;
	}
	if (!r->as_table) {
		api_reply_json(r, code, obj);
		return;
	}
	t = table_new(r->res->kind);
	if (!t) {
		api_reply_err(r, -ENOMEM, NULL);
		return;
	}
	table_add_row(t, r->res->kind, obj, now_s(), r->include_object);
	api_reply_json(r, code, t);
}

/* ---------- filters (shared with watch.c) ---------- */

struct field_ctx {
	struct store_obj *o;
	cJSON *parsed;
	char num[32];
};

static const char *field_get(const char *field, void *ud)
{
	struct field_ctx *c = ud;
	const cJSON *v;

	if (streq(field, "metadata.name"))
		return c->o->name;
	if (streq(field, "metadata.namespace"))
		return c->o->ns;
	if (streq(field, "spec.nodeName"))
		return c->o->node_name ? c->o->node_name : "";
	if (streq(field, "status.phase"))
		return c->o->phase ? c->o->phase : "";
	if (!c->parsed && !(c->parsed = store_obj_parse(c->o)))
		return "";
	v = json_path(c->parsed, field);
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsNumber(v)) {
		snprintf(c->num, sizeof(c->num), "%lld", (long long)v->valuedouble);
		return c->num;
	}
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) ? "true" : "false";
	if (streq(field, "source")) /* events: source.component */
		return json_str(c->parsed, "source.component", "");
	return "";
}

int api_filter_init(struct api_filter *f, struct api_req *r, struct err *e)
{
	int ret;

	memset(f, 0, sizeof(*f));
	f->res = r->res;
	f->ns = r->ns;
	ret = label_selector_parse(api_query(r, "labelSelector"), &f->labels, e);
	if (ret < 0)
		return ret;
	const char *fs = api_query(r, "fieldSelector");
	if (!strempty(fs)) {
		ret = field_selector_parse(fs, r->res->field_selectors, &f->fields, e);
		if (ret < 0) {
			if (e && !e->code)
				e->code = 400;
			return ret;
		}
	}
	return 0;
}

void api_filter_done(struct api_filter *f)
{
	f->labels = label_selector_free(f->labels);
	f->fields = field_selector_free(f->fields);
}

bool api_filter_matches(const struct api_filter *f, struct store_obj *o)
{
	if (f->ns && !streq(o->ns, f->ns))
		return false;
	if (f->labels && !label_selector_is_empty(f->labels) &&
	    !label_selector_matches(f->labels, o->labels))
		return false;
	if (f->fields) {
		struct field_ctx c = { .o = o };
		bool m = field_selector_matches(f->fields, field_get, &c);
		cJSON_Delete(c.parsed);
		if (!m)
			return false;
	}
	return true;
}

/* ---------- continue tokens: base64url("rv ns name") ---------- */

static char *continue_encode(uint64_t rv, const char *ns, const char *name)
{
	_cleanup_free_ char *raw = NULL;
	size_t blen;
	char *b64;
	int n = asprintf(&raw, "%llu/%s/%s", (unsigned long long)rv, ns, name);

	if (n < 0)
		return NULL;
	blen = sodium_base64_encoded_len((size_t)n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	b64 = malloc(blen);
	if (b64)
		sodium_bin2base64(b64, blen, (const unsigned char *)raw, (size_t)n,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return b64;
}

static int continue_decode(const char *tok, uint64_t *rv, char **ns, char **name)
{
	size_t len = strlen(tok), out = 0;
	_cleanup_free_ char *raw = malloc(len + 1);
	char *s1, *s2, *end;

	if (!raw)
		return -ENOMEM;
	if (sodium_base642bin((unsigned char *)raw, len, tok, len, NULL, &out, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) < 0)
		return -EINVAL;
	raw[out] = 0;
	if (strlen(raw) != out || !(s1 = strchr(raw, '/')) || !(s2 = strchr(s1 + 1, '/')))
		return -EINVAL;
	*s1 = *s2 = 0;
	errno = 0;
	*rv = strtoull(raw, &end, 10);
	if (errno || *end || !raw[0])
		return -EINVAL;
	*ns = strdup(s1 + 1);
	*name = strdup(s2 + 1);
	if (!*ns || !*name) {
		free(*ns);
		free(*name);
		return -ENOMEM;
	}
	return 0;
}

/* ---------- list ---------- */

struct list_ctx {
	struct api_filter f;
	struct evbuffer *out;
	cJSON *table;
	const char *include;
	int64_t now;
	size_t limit, count;
	bool more;
	struct store_obj *last;
};

static void list_obj_unref(const void *data, size_t len, void *arg)
{
	store_obj_unref(arg);
}

static int list_one_ref(struct store_obj *o, void *ud)
{
	struct list_ctx *c = ud;

	if (!api_filter_matches(&c->f, o))
		return 0;
	if (c->limit && c->count == c->limit) {
		c->more = true;
		return 1;
	}
	if (c->table) {
		_cleanup_json_ cJSON *obj = store_obj_parse(o);
		if (!obj)
			return -ENOMEM;
		table_add_row(c->table, c->f.res->kind, obj, c->now, c->include);
	} else {
		if (c->count)
			evbuffer_add(c->out, ",", 1);
		evbuffer_add_reference(c->out, o->json, o->json_len, list_obj_unref,
				       store_obj_ref(o));
	}
	c->count++;
	store_obj_unref(c->last);
	c->last = store_obj_ref(o);
	return 0;
}

static void handle_list(struct api_req *r)
{
	struct list_ctx c = { .now = now_s(), .include = r->include_object };
	struct err e = { 0 };
	const char *lim = api_query(r, "limit"), *cont = api_query(r, "continue");
	_cleanup_free_ char *after_ns = NULL, *after_name = NULL, *next = NULL;
	uint64_t rv;
	int ret;

	ret = api_filter_init(&c.f, r, &e);
	if (ret < 0) {
		if (!e.code)
			e.code = 400;
		api_reply_err(r, ret, &e);
		goto out;
	}
	if (!strempty(lim)) {
		char *end;
		long long l = strtoll(lim, &end, 10);
		if (*end || l < 0) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL, "invalid limit: %s", lim);
			goto out;
		}
		c.limit = (size_t)l;
	}
	rv = store_rv(r->srv->store);
	if (!strempty(cont)) {
		uint64_t trv;
		if (continue_decode(cont, &trv, &after_ns, &after_name) < 0) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "continue key is not valid");
			goto out;
		}
		/* report the first page's version so a watch from it misses nothing */
		rv = trv;
	}
	if (r->as_table) {
		c.table = table_new(r->res->kind);
		if (!c.table) {
			api_reply_err(r, -ENOMEM, NULL);
			goto out;
		}
	} else {
		c.out = evbuffer_new();
		if (!c.out) {
			api_reply_err(r, -ENOMEM, NULL);
			goto out;
		}
		evbuffer_add_printf(c.out,
				    "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{"
				    "\"resourceVersion\":\"%llu\"",
				    r->res->list_kind, r->res->group_version,
				    (unsigned long long)rv);
	}
	struct evbuffer *items = c.out;
	if (c.out) {
		c.out = evbuffer_new();
		if (!c.out) {
			evbuffer_free(items);
			api_reply_err(r, -ENOMEM, NULL);
			goto out;
		}
	}
	ret = store_list(r->srv->store, r->res->key, r->ns, after_ns, after_name, list_one_ref, &c);
	if (ret < 0) {
		if (items)
			evbuffer_free(items);
		api_reply_err(r, ret, NULL);
		goto out;
	}
	if (c.more && c.last)
		next = continue_encode(rv, c.last->ns, c.last->name);
	if (c.table) {
		table_set_meta(c.table, rv, next);
		api_reply_json(r, 200, c.table);
	} else {
		if (next)
			evbuffer_add_printf(items, ",\"continue\":\"%s\"", next);
		evbuffer_add(items, "},\"items\":[", 11);
		evbuffer_add_buffer(items, c.out);
		evbuffer_add(items, "]}", 2);
		api_reply_buf(r, 200, items);
		evbuffer_free(items);
	}
out:
	if (c.out)
		evbuffer_free(c.out);
	cJSON_Delete(c.table);
	store_obj_unref(c.last);
	api_filter_done(&c.f);
}

/* ---------- single objects ---------- */

static void handle_get(struct api_req *r)
{
	struct store_obj *o = NULL;
	struct err e = { 0 };
	int ret = store_get(r->srv->store, r->res->key, r->ns ? r->ns : "", r->name, &o);

	if (ret < 0) {
		api_reply_err(r, api_err_from_store(ret, r->res, r->name, &e), &e);
		return;
	}
	reply_obj_as(r, 200, o);
	store_obj_unref(o);
}

static void handle_create(struct api_req *r)
{
	_cleanup_json_ cJSON *obj = NULL;
	struct store_obj *o = NULL;
	struct api_write w;
	struct err e = { 0 };
	int ret;

	if (api_write_begin(r, &w, false) < 0)
		return;
	if (body_parse(r, false, r->res->kind, &obj, NULL) < 0 ||
	    !body_check(r, obj, r->res->kind, r->res->group_version, false) ||
	    api_write_check_fields(r, &w, obj, NULL) < 0)
		goto out;
	ret = api_obj_create_opts(r->srv->store, r->res, obj, true, &w.wo, &o, &e);
	if (ret < 0) {
		if (!r->name) {
			const char *n = json_str(obj, "metadata.name", NULL);
			r->name = n ? strdup(n) : NULL;
		}
		api_reply_err(r, ret, &e);
		goto out;
	}
	if (o)
		log_debug("api: created %s %s/%s", r->res->plural, o->ns, o->name);
	reply_write(r, 201, o, &w);
	store_obj_unref(o);
out:
	api_write_done(&w);
}

static void handle_update(struct api_req *r)
{
	_cleanup_json_ cJSON *obj = NULL;
	struct store_obj *o = NULL;
	struct api_write w;
	struct err e = { 0 };
	uint64_t rv;
	int ret;

	if (api_write_begin(r, &w, false) < 0)
		return;
	if (body_parse(r, false, r->res->kind, &obj, NULL) < 0 ||
	    !body_check(r, obj, r->res->kind, r->res->group_version, true) ||
	    api_write_check_fields(r, &w, obj, NULL) < 0)
		goto out;
	if (api_obj_rv(obj, &rv) < 0) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL, "invalid resourceVersion");
		goto out;
	}
	ret = api_obj_update_opts(r->srv->store, r->res, obj, rv, &w.wo, &o, &e);
	if (ret < 0) {
		api_reply_err(r, ret, &e);
		goto out;
	}
	reply_write(r, 200, o, &w);
	store_obj_unref(o);
out:
	api_write_done(&w);
}

struct patch_body {
	cJSON *p;
	enum body_kind k;
};

/* Apply a parsed PATCH body to target (in place). Replies on error. */
static int apply_patch(struct api_req *r, cJSON *target, const struct patch_body *pb,
		       const char *kind)
{
	struct err e = { 0 };
	int ret;

	switch (pb->k) {
	case BODY_MERGE:
		ret = patch_merge(target, pb->p, &e);
		break;
	case BODY_STRATEGIC:
		ret = patch_strategic(target, pb->p, kind, &e);
		break;
	default:
		ret = patch_json(target, pb->p, &e);
		break;
	}
	if (ret < 0) {
		if (!e.code)
			e.code = 422;
		api_reply_err(r, ret, &e);
		return ret;
	}
	if (!cJSON_IsObject(target)) {
		api_reply_status(r, 422, "Invalid", r->res->kind, r->name,
				 "the patch did not produce an object");
		return -EINVAL;
	}
	return 0;
}

/* After a patch: name/namespace may not move; returns the rv precondition. */
static int patched_identity(struct api_req *r, cJSON *obj, uint64_t *rv)
{
	const char *n = json_str(obj, "metadata.name", NULL);
	const char *ns = json_str(obj, "metadata.namespace", NULL);

	if (!n || !streq(n, r->name) || (r->res->namespaced && (!ns || !streq(ns, r->ns)))) {
		api_reply_status(r, 422, "Invalid", r->res->kind, r->name,
				 "metadata.name and metadata.namespace cannot be changed");
		return -EINVAL;
	}
	if (api_obj_rv(obj, rv) < 0) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL, "invalid resourceVersion");
		return -EINVAL;
	}
	return 0;
}

static struct store_obj *get_or_reply(struct api_req *r)
{
	struct store_obj *o = NULL;
	struct err e = { 0 };
	int ret = store_get(r->srv->store, r->res->key, r->ns ? r->ns : "", r->name, &o);

	if (ret < 0) {
		api_reply_err(r, api_err_from_store(ret, r->res, r->name, &e), &e);
		return NULL;
	}
	return o;
}

/* Server-side apply (application/apply-patch+yaml). */
static void handle_apply(struct api_req *r, cJSON *config, struct api_write *w)
{
	struct store_obj *o = NULL;
	int code = 200;

	if (!body_check(r, config, r->res->kind, r->res->group_version, true))
		return;
	if (strempty(json_str(config, "apiVersion", NULL)) ||
	    strempty(json_str(config, "kind", NULL))) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "apiVersion and kind must be set in an applied configuration");
		return;
	}
	if (api_write_check_fields(r, w, config, NULL) < 0 ||
	    api_write_apply(r, w, config, &o, &code) < 0)
		return;
	reply_write(r, code, o, w);
	store_obj_unref(o);
}

static void handle_patch(struct api_req *r, bool status)
{
	struct store_obj *cur, *o = NULL;
	_cleanup_json_ cJSON *obj = NULL, *p = NULL, *old = NULL;
	struct patch_body pb;
	struct api_write w;
	struct err e = { 0 };
	uint64_t rv;
	int ret;

	if (status && dry_run_refused(r))
		return;
	if (body_parse(r, true, NULL, &p, &pb.k) < 0 ||
	    api_write_begin(r, &w, pb.k == BODY_APPLY) < 0)
		return;
	if (pb.k == BODY_APPLY) {
		if (status)
			api_reply_status(r, 415, "UnsupportedMediaType", NULL, NULL,
					 "server-side apply of the status subresource is not "
					 "supported");
		else
			handle_apply(r, p, &w);
		goto out;
	}
	pb.p = p;
	if (!(cur = get_or_reply(r)))
		goto out;
	obj = store_obj_parse(cur);
	store_obj_unref(cur);
	old = obj ? cJSON_Duplicate(obj, true) : NULL;
	if (!old) {
		api_reply_err(r, -ENOMEM, NULL);
		goto out;
	}
	if (apply_patch(r, obj, &pb, r->res->kind) < 0 || patched_identity(r, obj, &rv) < 0)
		goto out;
	if (status)
		ret = api_obj_update_status_res(r->srv->store, r->res, r->ns, r->name,
						cJSON_GetObjectItemCaseSensitive(obj, "status"), rv,
						&o, &e);
	else if (api_write_check_fields(r, &w, obj, old) < 0)
		goto out;
	else
		ret = api_obj_update_opts(r->srv->store, r->res, obj, rv, &w.wo, &o, &e);
	if (ret < 0) {
		api_reply_err(r, ret, &e);
		goto out;
	}
	reply_write(r, 200, o, &w);
	store_obj_unref(o);
out:
	api_write_done(&w);
}

/* ---------- delete ---------- */

static bool reply_deleted_object(const struct api_resource *res)
{
	return streq(res->kind, "Pod") || streq(res->kind, "Service") ||
	       streq(res->kind, "Namespace");
}

/* DeleteOptions from the body and the query. Replies on error. */
static int delete_opts(struct api_req *r, struct api_delete_opts *o, cJSON **body)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	const char *q;

	memset(o, 0, sizeof(*o));
	o->grace_seconds = -1;
	*body = NULL;
	if (evbuffer_get_length(in) > 0) {
		if (body_parse(r, false, "DeleteOptions", body, NULL) < 0)
			return -EINVAL;
		const cJSON *gp = cJSON_GetObjectItemCaseSensitive(*body, "gracePeriodSeconds");
		if (cJSON_IsNumber(gp))
			o->grace_seconds = (int64_t)gp->valuedouble;
		o->propagation = json_str(*body, "propagationPolicy", NULL);
		if (json_bool(*body, "orphanDependents", false))
			o->propagation = "Orphan";
		o->expect_uid = json_str(*body, "preconditions.uid", NULL);
		const char *prv = json_str(*body, "preconditions.resourceVersion", NULL);
		if (!strempty(prv)) {
			char *end;
			o->expect_rv = strtoull(prv, &end, 10);
			if (*end || !o->expect_rv) {
				api_reply_status(r, 400, "BadRequest", NULL, NULL,
						 "invalid preconditions.resourceVersion");
				return -EINVAL;
			}
		}
		const cJSON *dr;
		cJSON_ArrayForEach(dr, cJSON_GetObjectItemCaseSensitive(*body, "dryRun"))
		{
			if (!cJSON_IsString(dr) || !streq(dr->valuestring, "All")) {
				api_reply_status(r, 400, "BadRequest", NULL, NULL,
						 "Invalid dry run value (supported: All)");
				return -EINVAL;
			}
			o->dry_run = true;
		}
	}
	if ((q = api_query(r, "gracePeriodSeconds")) && *q)
		o->grace_seconds = atoll(q);
	if ((q = api_query(r, "propagationPolicy")) && *q)
		o->propagation = q;
	if (o->propagation && !streq(o->propagation, "Background") &&
	    !streq(o->propagation, "Foreground") && !streq(o->propagation, "Orphan")) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "propagationPolicy must be one of Background, Foreground, Orphan");
		return -EINVAL;
	}
	if ((q = api_query(r, "dryRun")) && *q) {
		if (!streq(q, "All")) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "Invalid dry run value: %s (supported: All)", q);
			return -EINVAL;
		}
		o->dry_run = true;
	}
	return 0;
}

static void handle_delete(struct api_req *r)
{
	_cleanup_json_ cJSON *body = NULL;
	struct api_delete_opts o;
	struct store_obj *out = NULL, *still = NULL;
	struct err e = { 0 };
	int ret;

	if (delete_opts(r, &o, &body) < 0)
		return;
	ret = api_obj_delete(r->srv->store, r->res->key, r->ns ? r->ns : "", r->name, &o, &out,
			     &e);
	if (ret < 0) {
		api_reply_err(r, ret, &e);
		return;
	}
	bool pending = !o.dry_run && store_get(r->srv->store, r->res->key, r->ns ? r->ns : "",
					       r->name, &still) >= 0;
	store_obj_unref(still);
	if (pending || reply_deleted_object(r->res)) {
		reply_obj_as(r, pending ? 202 : 200, out);
	} else {
		_cleanup_json_ cJSON *st = api_status_new(200, "", "", r->res->plural, r->name,
							  NULL);
		cJSON *det = json_path(st, "details");
		if (r->res->group[0])
			json_set_str(det, "group", r->res->group);
		json_set_str(det, "uid", out ? out->uid : "");
		cJSON_DeleteItemFromObjectCaseSensitive(st, "message");
		cJSON_DeleteItemFromObjectCaseSensitive(st, "reason");
		api_reply_json(r, 200, st);
	}
	store_obj_unref(out);
}

struct collect_ctx {
	struct api_filter f;
	struct store_obj **objs;
	size_t n, cap;
};

static int collect_one(struct store_obj *o, void *ud)
{
	struct collect_ctx *c = ud;

	if (!api_filter_matches(&c->f, o))
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct store_obj **n = realloc(c->objs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->objs = n;
		c->cap = cap;
	}
	c->objs[c->n++] = store_obj_ref(o);
	return 0;
}

static void handle_deletecollection(struct api_req *r)
{
	_cleanup_json_ cJSON *body = NULL;
	struct collect_ctx c = { 0 };
	struct api_delete_opts o;
	struct err e = { 0 };
	struct evbuffer *out = NULL;
	size_t done = 0;
	int ret;

	if (delete_opts(r, &o, &body) < 0)
		return;
	ret = api_filter_init(&c.f, r, &e);
	if (ret < 0) {
		if (!e.code)
			e.code = 400;
		api_reply_err(r, ret, &e);
		goto out;
	}
	ret = store_list(r->srv->store, r->res->key, r->ns, NULL, NULL, collect_one, &c);
	if (ret < 0) {
		api_reply_err(r, ret, NULL);
		goto out;
	}
	out = evbuffer_new();
	if (!out) {
		api_reply_err(r, -ENOMEM, NULL);
		goto out;
	}
	evbuffer_add_printf(out,
			    "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\""
			    ":\"%llu\"},\"items\":[",
			    r->res->list_kind, r->res->group_version,
			    (unsigned long long)store_rv(r->srv->store));
	for (size_t i = 0; i < c.n; i++) {
		struct store_obj *d = NULL;
		struct api_delete_opts one = o;

		memset(&e, 0, sizeof(e));
		one.expect_rv = 0;
		one.expect_uid = NULL;
		ret = api_obj_delete(r->srv->store, r->res->key, c.objs[i]->ns, c.objs[i]->name,
				     &one, &d, &e);
		if (ret < 0) {
			if (ret == -ENOENT)
				continue;
			evbuffer_free(out);
			out = NULL;
			api_reply_err(r, ret, &e);
			goto out;
		}
		if (done++)
			evbuffer_add(out, ",", 1);
		evbuffer_add(out, d->json, d->json_len);
		store_obj_unref(d);
	}
	evbuffer_add(out, "]}", 2);
	api_reply_buf(r, 200, out);
out:
	if (out)
		evbuffer_free(out);
	for (size_t i = 0; i < c.n; i++)
		store_obj_unref(c.objs[i]);
	free(c.objs);
	api_filter_done(&c.f);
}

/* ---------- scale ---------- */

static char *selector_string(const cJSON *sel)
{
	const cJSON *ml = cJSON_GetObjectItemCaseSensitive(sel, "matchLabels"), *it;
	struct evbuffer *b = evbuffer_new();
	char *s;
	size_t n = 0;

	if (!b)
		return NULL;
	cJSON_ArrayForEach(it, ml)
		if (cJSON_IsString(it))
			evbuffer_add_printf(b, "%s%s=%s", n++ ? "," : "", it->string,
					    it->valuestring);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sel, "matchExpressions"))
	{
		const char *op = json_str(it, "operator", ""), *key = json_str(it, "key", "");
		const cJSON *v;
		size_t k = 0;

		if (streq(op, "Exists")) {
			evbuffer_add_printf(b, "%s%s", n++ ? "," : "", key);
			continue;
		}
		if (streq(op, "DoesNotExist")) {
			evbuffer_add_printf(b, "%s!%s", n++ ? "," : "", key);
			continue;
		}
		evbuffer_add_printf(b, "%s%s %s (", n++ ? "," : "", key,
				    streq(op, "NotIn") ? "notin" : "in");
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(it, "values"))
			if (cJSON_IsString(v))
				evbuffer_add_printf(b, "%s%s", k++ ? "," : "", v->valuestring);
		evbuffer_add(b, ")", 1);
	}
	evbuffer_add(b, "", 1);
	s = strdup((const char *)evbuffer_pullup(b, -1));
	evbuffer_free(b);
	return s;
}

static cJSON *scale_from(const cJSON *obj, uint64_t rv)
{
	cJSON *sc = cJSON_CreateObject(), *md, *spec, *st;
	const cJSON *omd = json_path(obj, "metadata");
	_cleanup_free_ char *sel = selector_string(json_path(obj, "spec.selector"));
	char rvs[32];

	cJSON_AddStringToObject(sc, "kind", "Scale");
	cJSON_AddStringToObject(sc, "apiVersion", "autoscaling/v1");
	md = cJSON_AddObjectToObject(sc, "metadata");
	static const char *const copy[] = { "name", "namespace", "uid", "creationTimestamp" };
	for (size_t i = 0; i < ARRAY_SIZE(copy); i++)
		json_set_str(md, copy[i], json_str(omd, copy[i], ""));
	snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)rv);
	json_set_str(md, "resourceVersion", rvs);
	spec = cJSON_AddObjectToObject(sc, "spec");
	json_set_int(spec, "replicas", json_int(obj, "spec.replicas", 1));
	st = cJSON_AddObjectToObject(sc, "status");
	json_set_int(st, "replicas", json_int(obj, "status.replicas", 0));
	json_set_str(st, "selector", sel ? sel : "");
	return sc;
}

static void handle_scale(struct api_req *r)
{
	struct store_obj *cur, *o = NULL;
	_cleanup_json_ cJSON *obj = NULL, *sc = NULL, *out = NULL, *p = NULL;
	struct patch_body pb = { 0 };
	struct api_write w = { 0 };
	struct err e = { 0 };
	uint64_t rv = 0, cur_rv;
	int ret;

	if (r->method != EVHTTP_REQ_GET && api_write_begin(r, &w, false) < 0)
		return;
	if (r->method == EVHTTP_REQ_PATCH) {
		if (body_parse(r, true, NULL, &p, &pb.k) < 0)
			return;
		if (pb.k == BODY_APPLY) {
			api_reply_status(r, 415, "UnsupportedMediaType", NULL, NULL,
					 "server-side apply of the scale subresource is not "
					 "supported");
			return;
		}
		pb.p = p;
	}
	if (!(cur = get_or_reply(r)))
		return;
	obj = store_obj_parse(cur);
	cur_rv = cur->rv;
	sc = obj ? scale_from(obj, cur->rv) : NULL;
	store_obj_unref(cur);
	if (!sc) {
		api_reply_err(r, -ENOMEM, NULL);
		return;
	}
	if (r->method == EVHTTP_REQ_GET) {
		api_reply_json(r, 200, sc);
		return;
	}
	if (r->method == EVHTTP_REQ_PUT) {
		cJSON_Delete(sc);
		sc = NULL;
		if (body_parse(r, false, "Scale", &sc, NULL) < 0 ||
		    !body_check(r, sc, "Scale", "autoscaling/v1", true))
			return;
		if (api_obj_rv(sc, &rv) < 0) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL, "invalid resourceVersion");
			return;
		}
	} else {
		if (apply_patch(r, sc, &pb, "Scale") < 0 || patched_identity(r, sc, &rv) < 0)
			return;
	}
	const cJSON *rep = json_path(sc, "spec.replicas");
	if (!cJSON_IsNumber(rep) || rep->valuedouble < 0 ||
	    rep->valuedouble != (double)(int64_t)rep->valuedouble || rep->valuedouble > INT32_MAX) {
		e.code = 422;
		err_set(&e, EINVAL, 422, "Invalid", "invalid scale");
		err_cause(&e, "FieldValueInvalid", "spec.replicas",
			  "Invalid value: must be a non-negative integer");
		api_reply_err(r, -EINVAL, &e);
		return;
	}
	json_set_int(json_path_obj(obj, "spec"), "replicas", (int64_t)rep->valuedouble);
	ret = api_obj_update_opts(r->srv->store, r->res, obj, rv, &w.wo, &o, &e);
	if (ret < 0) {
		api_reply_err(r, ret, &e);
		api_write_done(&w);
		return;
	}
	cJSON_Delete(obj);
	obj = o ? store_obj_parse(o) : TAKE_PTR(w.wo.dry_result);
	out = obj ? scale_from(obj, o ? o->rv : cur_rv) : NULL;
	store_obj_unref(o);
	api_write_done(&w);
	if (!out) {
		api_reply_err(r, -ENOMEM, NULL);
		return;
	}
	api_reply_json(r, 200, out);
}

/* ---------- dispatch ---------- */

static void method_not_allowed(struct api_req *r)
{
	api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
			 "the server does not allow this method on the requested resource");
}

static bool negotiate(struct api_req *r)
{
	const char *acc = req_header(r, "Accept");

	if (acc && strstr(acc, "as=Table")) {
		r->as_table = true;
		const char *io = api_query(r, "includeObject");
		r->include_object = !strempty(io) ? io : "Metadata";
		if (!streq(r->include_object, "None") && !streq(r->include_object, "Metadata") &&
		    !streq(r->include_object, "Object")) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "includeObject must be None, Metadata or Object");
			return false;
		}
	} else if (acc && *acc && !strstr(acc, "json") && !strstr(acc, "*/*") &&
		   !strstr(acc, "yaml")) {
		api_reply_status(r, 406, "NotAcceptable", NULL, NULL,
				 "only application/json is served; the request asked for %.200s",
				 acc);
		return false;
	}
	return true;
}

/* POST pods/NAME/binding: a Binding {target: {kind: Node, name}} assigns the pod to a node. */
static void handle_binding(struct api_req *r)
{
	_cleanup_json_ cJSON *obj = NULL;
	struct err e = { 0 };
	const char *node;
	int ret;

	if (r->method != EVHTTP_REQ_POST) {
		method_not_allowed(r);
		return;
	}
	if (dry_run_refused(r) || body_parse(r, false, "Binding", &obj, NULL) < 0 ||
	    !body_check(r, obj, "Binding", "v1", true))
		return;
	node = json_str(obj, "target.name", NULL);
	if (strempty(node) || !streq(json_str(obj, "target.kind", "Node"), "Node")) {
		api_reply_status(r, 422, "Invalid", "bindings", r->name,
				 "Binding \"%s\" is invalid: target: a Node name is required",
				 r->name);
		return;
	}
	ret = api_obj_bind(r->srv->store, r->ns, r->name, json_str(obj, "metadata.uid", NULL),
			   node, NULL, &e);
	if (ret < 0) {
		api_reply_err(r, ret, &e);
		return;
	}
	api_reply_status(r, 201, "", NULL, NULL, "%s", "");
}

/* POST pods/NAME/eviction: an Eviction (policy/v1 or v1beta1) deletes the pod unless its
 * PodDisruptionBudget forbids it (api/eviction.c). */
static void handle_eviction(struct api_req *r)
{
	_cleanup_json_ cJSON *obj = NULL;
	const char *av, *name;

	if (r->method != EVHTTP_REQ_POST) {
		method_not_allowed(r);
		return;
	}
	if (body_parse(r, false, "Eviction", &obj, NULL) < 0)
		return;
	av = json_str(obj, "apiVersion", "policy/v1");
	if (!streq(json_str(obj, "kind", "Eviction"), "Eviction") ||
	    (!streq(av, "policy/v1") && !streq(av, "policy/v1beta1"))) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "the body of an eviction is a policy/v1 Eviction, not %s %s", av,
				 json_str(obj, "kind", ""));
		return;
	}
	name = json_str(obj, "metadata.name", r->name);
	if (!streq(name, r->name)) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "name in URL does not match name in Eviction object");
		return;
	}
	api_eviction_handle(r, obj);
}

void api_rest_handle(struct api_req *r)
{
	enum evhttp_cmd_type m = r->method;

	if (!route(r))
		return;
	/* pod I/O: plain text and WebSocket streams, not JSON documents */
	if (r->sub && r->name && r->ns && streq(r->res->plural, "pods") && !r->res->group[0]) {
		/* a pod on another node: its node answers (relay.c) */
		if ((streq(r->sub, "log") || streq(r->sub, "exec") || streq(r->sub, "attach") ||
		     streq(r->sub, "portforward")) &&
		    api_relay_maybe(r))
			return;
		if (streq(r->sub, "log")) {
			api_podlog_handle(r);
			return;
		}
		if (streq(r->sub, "exec")) {
			api_podexec_handle(r);
			return;
		}
		if (streq(r->sub, "attach")) {
			api_podattach_handle(r);
			return;
		}
		if (streq(r->sub, "portforward")) {
			api_podfwd_handle(r);
			return;
		}
	}
	if (!negotiate(r))
		return;
	if (m == EVHTTP_REQ_HEAD)
		m = EVHTTP_REQ_GET;
	if (r->res->read_only && m != EVHTTP_REQ_GET) {
		api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
				 "%s are maintained by shoal and read-only through the API",
				 r->res->plural);
		return;
	}
	if (r->sub && streq(r->sub, "binding") && streq(r->res->key, "pods") && r->name && r->ns) {
		handle_binding(r);
		return;
	}
	if (r->sub && streq(r->sub, "eviction") && streq(r->res->key, "pods") && r->name && r->ns) {
		handle_eviction(r);
		return;
	}
	if (r->sub) {
		bool status = streq(r->sub, "status") && r->res->has_status;
		bool scale = streq(r->sub, "scale") && r->res->has_scale;

		if ((!status && !scale) || !r->name || (r->res->namespaced && !r->ns)) {
			reply_not_found_path(r);
			return;
		}
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_PUT && m != EVHTTP_REQ_PATCH) {
			method_not_allowed(r);
			return;
		}
		if (scale) {
			handle_scale(r);
			return;
		}
		if (m == EVHTTP_REQ_GET)
			handle_get(r);
		else if (m == EVHTTP_REQ_PATCH)
			handle_patch(r, true);
		else {
			_cleanup_json_ cJSON *obj = NULL;
			struct store_obj *o = NULL;
			struct err e = { 0 };
			uint64_t rv;
			int ret;

			if (dry_run_refused(r) || body_parse(r, false, r->res->kind, &obj, NULL) < 0 ||
			    !body_check(r, obj, r->res->kind, r->res->group_version, true))
				return;
			if (api_obj_rv(obj, &rv) < 0) {
				api_reply_status(r, 400, "BadRequest", NULL, NULL,
						 "invalid resourceVersion");
				return;
			}
			ret = api_obj_update_status_res(
				r->srv->store, r->res, r->ns, r->name,
				cJSON_GetObjectItemCaseSensitive(obj, "status"), rv, &o, &e);
			if (ret < 0) {
				api_reply_err(r, ret, &e);
				return;
			}
			reply_obj_as(r, 200, o);
			store_obj_unref(o);
		}
		return;
	}
	if (r->name) {
		if (r->res->namespaced && !r->ns) {
			reply_not_found_path(r);
			return;
		}
		switch (m) {
		case EVHTTP_REQ_GET: handle_get(r); break;
		case EVHTTP_REQ_PUT: handle_update(r); break;
		case EVHTTP_REQ_PATCH: handle_patch(r, false); break;
		case EVHTTP_REQ_DELETE: handle_delete(r); break;
		default: method_not_allowed(r);
		}
		return;
	}
	switch (m) {
	case EVHTTP_REQ_GET:
		if (api_query_bool(r, "watch"))
			api_watch_start(r);
		else
			handle_list(r);
		break;
	case EVHTTP_REQ_POST:
		if (r->res->namespaced && !r->ns)
			method_not_allowed(r);
		else
			handle_create(r);
		break;
	case EVHTTP_REQ_DELETE:
		handle_deletecollection(r);
		break;
	default:
		method_not_allowed(r);
	}
}
