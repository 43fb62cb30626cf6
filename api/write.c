// SPDX-License-Identifier: Apache-2.0
/*
 * Around every write: ?dryRun=All (everything but the commit), ?fieldManager= (who owns what
 * in metadata.managedFields), ?fieldValidation=Strict|Warn|Ignore (unknown and duplicate
 * fields, checked against the schema tables), and server-side apply.
 */
#include <string.h>

#include "api/fieldmgr.h"
#include "api/write.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#define MAX_MANAGER_LEN 128

static void now_rfc3339(char *buf, size_t len)
{
	util_rfc3339((int64_t)(util_now_ms() / 1000), buf, len);
}

static int finish_update(const cJSON *old, cJSON *obj, void *ud, struct err *e)
{
	struct api_write *w = ud;

	return fieldmgr_update(json_str(obj, "kind", ""), json_str(obj, "apiVersion", ""), old, obj,
			       w->manager, w->now, e);
}

static int finish_apply(const cJSON *old, cJSON *obj, void *ud, struct err *e)
{
	struct api_write *w = ud;
	cJSON *md = json_path_obj(obj, "metadata");

	if (!md)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
	if (w->applied_fields)
		cJSON_AddItemToObject(md, "managedFields", cJSON_Duplicate(w->applied_fields, true));
	return 0;
}

int api_write_begin(struct api_req *r, struct api_write *w, bool apply)
{
	const char *dry = api_query(r, "dryRun"), *fm = api_query(r, "fieldManager");
	const char *fv = api_query(r, "fieldValidation");

	memset(w, 0, sizeof(*w));
	now_rfc3339(w->now, sizeof(w->now));
	if (!strempty(dry)) {
		if (!streq(dry, "All")) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "Invalid dry run value: %s (supported: All)", dry);
			return -EINVAL;
		}
		w->wo.dry_run = true;
	}
	if (strempty(fv) || streq(fv, "Warn"))
		w->validation = SCHEMA_WARN;
	else if (streq(fv, "Strict"))
		w->validation = SCHEMA_STRICT;
	else if (streq(fv, "Ignore"))
		w->validation = SCHEMA_IGNORE;
	else {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "fieldValidation must be one of Ignore, Warn or Strict, got %s", fv);
		return -EINVAL;
	}
	if (strempty(fm)) {
		if (apply) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "PATCH %s: fieldManager is required for apply requests",
					 r->path);
			return -EINVAL;
		}
		/* Kubernetes: the User-Agent up to the first '/' */
		const char *ua = evhttp_find_header(evhttp_request_get_input_headers(r->req),
						    "User-Agent");
		size_t n = ua ? strcspn(ua, "/") : 0;
		snprintf(w->manager_buf, sizeof(w->manager_buf), "%.*s", (int)n,
			 n ? ua : "unknown");
	} else {
		if (strlen(fm) > MAX_MANAGER_LEN) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "fieldManager may not be longer than %d characters",
					 MAX_MANAGER_LEN);
			return -EINVAL;
		}
		snprintf(w->manager_buf, sizeof(w->manager_buf), "%s", fm);
	}
	w->manager = w->manager_buf;
	w->wo.finish = apply ? finish_apply : finish_update;
	w->wo.ud = w;
	return 0;
}

void api_write_done(struct api_write *w)
{
	cJSON_Delete(w->wo.dry_result);
	cJSON_Delete(w->applied_fields);
	w->wo.dry_result = w->applied_fields = NULL;
}

/* The problems of obj against the kind's table, status left out. */
static int problems(const struct schema_msg *m, cJSON *obj, char ***msgs)
{
	cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(obj, "status");
	int n = schema_fields_check(m, obj, msgs);

	if (st)
		cJSON_AddItemToObject(obj, "status", st);
	return n;
}

static bool in_list(char **l, const char *s)
{
	for (; l && *l; l++)
		if (streq(*l, s))
			return true;
	return false;
}

static void add_warning(struct api_req *r, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (!b)
		return;
	evbuffer_add_printf(b, "299 - \"");
	for (const char *p = text; *p; p++) {
		if (*p == '"' || *p == '\\')
			evbuffer_add(b, "\\", 1);
		evbuffer_add(b, p, 1);
	}
	evbuffer_add(b, "\"", 2);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Warning",
			  (const char *)evbuffer_pullup(b, -1));
	evbuffer_free(b);
}

int api_write_check_fields(struct api_req *r, struct api_write *w, cJSON *obj, const cJSON *old)
{
	const struct schema_msg *m = schema_find(r->res->group_version, r->res->kind);
	char **msgs = NULL, **oldmsgs = NULL;
	struct evbuffer *b = NULL;
	size_t n = 0;
	int ret;

	if (!m)
		return 0;
	ret = problems(m, obj, &msgs);
	if (ret <= 0) {
		schema_msgs_free(msgs);
		return ret < 0 ? (api_reply_err(r, ret, NULL), ret) : 0;
	}
	if (old) {
		_cleanup_json_ cJSON *copy = cJSON_Duplicate(old, true);
		if (copy)
			problems(m, copy, &oldmsgs);
	}
	b = evbuffer_new();
	for (char **p = msgs; b && *p; p++) {
		if (in_list(oldmsgs, *p))
			continue;
		if (w->validation == SCHEMA_WARN)
			add_warning(r, *p);
		evbuffer_add_printf(b, "%s%s", n++ ? ", " : "", *p);
	}
	ret = 0;
	if (n && b && w->validation == SCHEMA_STRICT) {
		evbuffer_add(b, "", 1);
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "%s in version \"%s\" cannot be handled as a %s: strict decoding "
				 "error: %.3000s",
				 r->res->kind, r->res->version, r->res->kind,
				 (const char *)evbuffer_pullup(b, -1));
		ret = -EINVAL;
	}
	if (b)
		evbuffer_free(b);
	schema_msgs_free(msgs);
	schema_msgs_free(oldmsgs);
	return ret;
}

int api_write_apply(struct api_req *r, struct api_write *w, cJSON *config,
		    struct store_obj **ret, int *code)
{
	struct store_obj *cur = NULL;
	_cleanup_json_ cJSON *live = NULL, *out = NULL;
	const char *force = api_query(r, "force");
	struct err e = { 0 };
	int rc;

	if (!strempty(force) && !streq(force, "true") && !streq(force, "false")) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL, "force must be true or false");
		return -EINVAL;
	}
	rc = store_get(r->srv->store, r->res->key, r->ns ? r->ns : "", r->name, &cur);
	if (rc < 0 && rc != -ENOENT) {
		api_reply_err(r, api_err_from_store(rc, r->res, r->name, &e), &e);
		return rc;
	}
	uint64_t rv = cur ? cur->rv : 0;
	if (cur) {
		live = store_obj_parse(cur);
		store_obj_unref(cur);
		if (!live) {
			api_reply_err(r, -ENOMEM, NULL);
			return -ENOMEM;
		}
	}
	rc = fieldmgr_apply(r->res->kind, r->res->group_version, live, config, w->manager,
			    force && streq(force, "true"), w->now, &out, &e);
	if (rc < 0) {
		api_reply_err(r, rc, &e);
		return rc;
	}
	w->applied_fields = cJSON_Duplicate(json_path(out, "metadata.managedFields"), true);
	if (live) {
		rc = api_obj_update_opts(r->srv->store, r->res, out, rv, &w->wo, ret, &e);
		*code = 200;
	} else {
		rc = api_obj_create_opts(r->srv->store, r->res, out, true, &w->wo, ret, &e);
		*code = 201;
	}
	if (rc < 0) {
		api_reply_err(r, rc, &e);
		return rc;
	}
	log_debug("api: applied %s %s/%s (manager %s)", r->res->plural, r->ns ? r->ns : "",
		  r->name, w->manager);
	return 0;
}
