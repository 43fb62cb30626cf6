// SPDX-License-Identifier: Apache-2.0
/*
 * Object semantics shared by the HTTP handlers and in-process writers: system metadata (uid,
 * creationTimestamp, generation, resourceVersion), generateName, namespace existence,
 * defaulting and validation, graceful deletion and finalizers. Pure policy over the store.
 */
#include <string.h>
#include <sodium.h>
#include <sys/random.h>

#include "api/server-internal.h"
#include "api/svcalloc.h"
#include "api/validate.h"
#include "lib/json.h"
#include "lib/util.h"

#define GENERATE_NAME_TRIES 8
#define DEFAULT_POD_GRACE_S 30

static const char *const protected_namespaces[] = { "default", "kube-system", "kube-public" };

int api_obj_rv(const cJSON *obj, uint64_t *ret)
{
	const char *s = json_str(obj, "metadata.resourceVersion", NULL);
	char *end;

	*ret = 0;
	if (strempty(s))
		return 0;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	*ret = v;
	return 0;
}

static void now_rfc3339(char *buf, size_t len)
{
	util_rfc3339((int64_t)(util_now_ms() / 1000), buf, len);
}

static void generate_suffix(char *buf)
{
	/* Kubernetes' alphabet: no vowels (no words), no confusable characters */
	static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char rnd[5];

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)rand();
	for (size_t i = 0; i < sizeof(rnd); i++)
		buf[i] = alpha[rnd[i] % (sizeof(alpha) - 1)];
	buf[5] = 0;
}

static bool ns_exists(struct store *s, const char *ns)
{
	struct store_obj *o = NULL;

	if (store_get(s, "namespaces", "", ns, &o) < 0)
		return false;
	store_obj_unref(o);
	return true;
}

/* Top-level fields other than metadata/status/apiVersion/kind differ? (generation bump) */
static bool spec_changed(const cJSON *a, const cJSON *b)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, a)
	{
		if (streq(it->string, "metadata") || streq(it->string, "status") ||
		    streq(it->string, "apiVersion") || streq(it->string, "kind"))
			continue;
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(b, it->string);
		if (!o || !cJSON_Compare(it, o, true))
			return true;
	}
	cJSON_ArrayForEach(it, b)
	{
		if (streq(it->string, "metadata") || streq(it->string, "status") ||
		    streq(it->string, "apiVersion") || streq(it->string, "kind"))
			continue;
		if (!cJSON_GetObjectItemCaseSensitive(a, it->string))
			return true;
	}
	return false;
}

static const char *pod_qos(const cJSON *pod)
{
	const cJSON *c;
	bool any = false, guaranteed = true;

	cJSON_ArrayForEach(c, json_path(pod, "spec.containers"))
	{
		const cJSON *req = json_path(c, "resources.requests");
		const cJSON *lim = json_path(c, "resources.limits");
		static const char *const rs[] = { "cpu", "memory" };

		for (size_t i = 0; i < ARRAY_SIZE(rs); i++) {
			const char *rq = json_str(req, rs[i], NULL), *l = json_str(lim, rs[i], NULL);
			if (rq || l)
				any = true;
			if (!l || (rq && !streq(rq, l)))
				guaranteed = false;
		}
	}
	if (!any)
		return "BestEffort";
	return guaranteed ? "Guaranteed" : "Burstable";
}

/* The status an HTTP create starts with (users do not write status on create). */
static cJSON *initial_status(const struct api_resource *res, const cJSON *obj)
{
	cJSON *st;

	if (!res->has_status)
		return NULL;
	st = cJSON_CreateObject();
	if (streq(res->kind, "Pod")) {
		cJSON_AddStringToObject(st, "phase", "Pending");
		cJSON_AddStringToObject(st, "qosClass", pod_qos(obj));
	} else if (streq(res->kind, "Namespace"))
		cJSON_AddStringToObject(st, "phase", "Active");
	else if (streq(res->kind, "Service"))
		cJSON_AddObjectToObject(st, "loadBalancer");
	else if (streq(res->kind, "Node")) {
		/* a node registering itself through the API keeps what it reports */
		cJSON_Delete(st);
		st = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(obj, "status"), true);
	}
	return st;
}

static void strip_system_meta(cJSON *md)
{
	static const char *const sys[] = { "uid", "resourceVersion", "creationTimestamp",
					   "deletionTimestamp", "deletionGracePeriodSeconds",
					   "generation", "managedFields", "selfLink" };

	for (size_t i = 0; i < ARRAY_SIZE(sys); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(md, sys[i]);
}

/* Dry run: keep what would have been stored. */
static int dry_keep(struct api_write_opts *wo, const cJSON *obj)
{
	cJSON_Delete(wo->dry_result);
	wo->dry_result = cJSON_Duplicate(obj, true);
	return wo->dry_result ? 0 : -ENOMEM;
}

int api_obj_create_res(struct store *s, const struct api_resource *res, cJSON *obj,
		       bool from_user, struct store_obj **ret, struct err *e)
{
	return api_obj_create_opts(s, res, obj, from_user, NULL, ret, e);
}

int api_obj_create_opts(struct store *s, const struct api_resource *res, cJSON *obj,
			bool from_user, struct api_write_opts *wo, struct store_obj **ret,
			struct err *e)
{
	char uid[40], ts[40], namebuf[300];
	const char *name, *ns = "";
	cJSON *md;
	int r;

	if (!cJSON_IsObject(obj))
		return err_set(e, EBADMSG, 400, "BadRequest", "the body must be a JSON object");
	md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	if (!md) {
		md = cJSON_AddObjectToObject(obj, "metadata");
		if (!md)
			return -ENOMEM;
	}
	if (!cJSON_IsObject(md))
		return err_set(e, EBADMSG, 400, "BadRequest", "metadata must be an object");
	if (from_user && !strempty(json_str(md, "resourceVersion", NULL)))
		return err_set(e, EBADMSG, 400, "BadRequest",
			       "resourceVersion should not be set on objects to be created");
	json_set_str(obj, "apiVersion", res->group_version);
	json_set_str(obj, "kind", res->kind);

	if (res->namespaced) {
		ns = json_str(md, "namespace", NULL);
		if (strempty(ns)) {
			json_set_str(md, "namespace", "default");
			ns = "default";
		}
	} else
		cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");

	name = json_str(md, "name", NULL);
	const char *gen = json_str(md, "generateName", NULL);
	if (strempty(name) && !strempty(gen)) {
		struct store_obj *o = NULL;
		char suffix[6];
		int i;

		for (i = 0; i < GENERATE_NAME_TRIES; i++) {
			generate_suffix(suffix);
			/* Kubernetes truncates the prefix so the result fits 63 characters */
			snprintf(namebuf, sizeof(namebuf), "%.58s%s", gen, suffix);
			if (store_get(s, res->key, ns, namebuf, &o) < 0)
				break;
			o = store_obj_unref(o);
		}
		if (i == GENERATE_NAME_TRIES)
			return err_set(e, EEXIST, 409, "AlreadyExists",
				       "%s \"%s\" already exists: could not find a free name",
				       res->plural, namebuf);
		json_set_str(md, "name", namebuf);
		name = json_str(md, "name", NULL);
	}
	if (strempty(name)) {
		err_set(e, EINVAL, 422, "Invalid", "name or generateName is required");
		err_cause(e, "FieldValueRequired", "metadata.name",
			  "Required value: name or generateName is required");
		return -EINVAL;
	}

	if (res->namespaced && !ns_exists(s, ns))
		return err_set(e, ENOENT, 404, "NotFound", "namespaces \"%s\" not found", ns);

	strip_system_meta(md);
	if (wo && wo->uid)
		snprintf(uid, sizeof(uid), "%s", wo->uid);
	else
		util_uuid4(uid);
	now_rfc3339(ts, sizeof(ts));
	json_set_str(md, "uid", uid);
	json_set_str(md, "creationTimestamp", ts);
	json_set_int(md, "generation", 1);

	if (from_user) {
		cJSON *st = initial_status(res, obj);
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
		if (st)
			cJSON_AddItemToObject(obj, "status", st);
	}
	validate_default(res->kind, obj);
	r = validate_object(res->kind, obj, NULL, e);
	if (r < 0) {
		if (e && !e->code)
			e->code = 422;
		return r;
	}
	if (streq(res->kind, "Service")) {
		r = svcalloc_assign(NULL, obj, e);
		if (r < 0)
			return r;
	}
	/* validation may have looked at a name it found wanting; recheck what we index by */
	name = json_str(md, "name", "");
	ns = res->namespaced ? json_str(md, "namespace", "default") : "";
	if (wo && wo->finish && (r = wo->finish(NULL, obj, wo->ud, e)) < 0)
		return r;
	if (wo && wo->dry_run) {
		struct store_obj *o = NULL;
		if (store_get(s, res->key, ns, name, &o) >= 0) {
			store_obj_unref(o);
			return api_err_from_store(-EEXIST, res, name, e);
		}
		cJSON_DeleteItemFromObjectCaseSensitive(md, "resourceVersion");
		return dry_keep(wo, obj);
	}
	r = store_create(s, res->key, ns, name, obj, ret, e);
	return api_err_from_store(r, res, name, e);
}

/* The object's finalizers list is non-empty? */
static bool has_finalizers(const cJSON *obj)
{
	return cJSON_GetArraySize(json_path(obj, "metadata.finalizers")) > 0;
}

int api_obj_update_res(struct store *s, const struct api_resource *res, cJSON *obj,
		       uint64_t expect_rv, struct store_obj **ret, struct err *e)
{
	return api_obj_update_opts(s, res, obj, expect_rv, NULL, ret, e);
}

int api_obj_update_opts(struct store *s, const struct api_resource *res, cJSON *obj,
			uint64_t expect_rv, struct api_write_opts *wo, struct store_obj **ret,
			struct err *e)
{
	struct store_obj *cur = NULL, *out = NULL;
	uint64_t cur_rv;
	_cleanup_json_ cJSON *old = NULL;
	_cleanup_free_ char *name = NULL, *ns = NULL;
	cJSON *md, *omd;
	int r;

	if (!cJSON_IsObject(obj) || !cJSON_IsObject(md = json_path(obj, "metadata")))
		return err_set(e, EBADMSG, 400, "BadRequest", "the body must be an object with metadata");
	/* copies: the metadata strings get replaced below */
	name = strdup(json_str(md, "name", ""));
	ns = strdup(res->namespaced ? json_str(md, "namespace", "default") : "");
	if (!name || !ns)
		return -ENOMEM;
	r = store_get(s, res->key, ns, name, &cur);
	if (r < 0)
		return api_err_from_store(r, res, name, e);
	old = store_obj_parse(cur);
	cur_rv = cur->rv;
	store_obj_unref(cur);
	if (!old)
		return -ENOMEM;
	omd = json_path(old, "metadata");

	const char *uid = json_str(md, "uid", NULL), *cur_uid = json_str(omd, "uid", "");
	if (!strempty(uid) && !streq(uid, cur_uid))
		return err_set(e, ECANCELED, 409, "Conflict",
			       "Precondition failed: UID in precondition: %s, UID in object meta: %s",
			       cur_uid, uid);

	/* system fields come from the stored object, whatever the client sent */
	json_set_str(obj, "apiVersion", res->group_version);
	json_set_str(obj, "kind", res->kind);
	/* managed fields a writer sends are taken as they are; none sent: they stay */
	cJSON *mf = cJSON_DetachItemFromObjectCaseSensitive(md, "managedFields");
	strip_system_meta(md);
	if (cJSON_IsArray(mf))
		cJSON_AddItemToObject(md, "managedFields", mf);
	else
		cJSON_Delete(mf);
	static const char *const keep[] = { "uid", "creationTimestamp", "deletionTimestamp",
					    "deletionGracePeriodSeconds", "generation",
					    "managedFields" };
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(omd, keep[i]);
		if (v && !cJSON_GetObjectItemCaseSensitive(md, keep[i]))
			cJSON_AddItemToObject(md, keep[i], cJSON_Duplicate(v, true));
	}
	if (res->namespaced)
		json_set_str(md, "namespace", ns);
	else
		cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");
	/* status belongs to its own register: validate against the current one */
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
	cJSON *ost = cJSON_GetObjectItemCaseSensitive(old, "status");
	if (ost)
		cJSON_AddItemToObject(obj, "status", cJSON_Duplicate(ost, true));

	if (streq(res->kind, "Service"))
		svcalloc_prepare_update(old, obj);
	validate_default(res->kind, obj);
	r = validate_object(res->kind, obj, old, e);
	if (r < 0) {
		if (e && !e->code)
			e->code = 422;
		return r;
	}
	/* a type change can need a clusterIP or nodePorts the stored object does not hold */
	if (streq(res->kind, "Service") && (r = svcalloc_assign(old, obj, e)) < 0)
		return r;
	if (spec_changed(obj, old))
		json_set_int(md, "generation", json_int(omd, "generation", 1) + 1);
	if (wo && wo->finish && (r = wo->finish(old, obj, wo->ud, e)) < 0)
		return r;
	if (wo && wo->dry_run) {
		char rvs[32];
		if (expect_rv && expect_rv != cur_rv)
			return api_err_from_store(-ECANCELED, res, name, e);
		snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)cur_rv);
		json_set_str(md, "resourceVersion", rvs);
		return dry_keep(wo, obj);
	}

	r = store_update(s, res->key, ns, name, obj, expect_rv, &out, e);
	if (r < 0)
		return api_err_from_store(r, res, name, e);
	/* the last finalizer of an object being deleted is gone: finish the delete */
	if (json_path(md, "deletionTimestamp") && !has_finalizers(obj)) {
		struct store_obj *del = NULL;
		r = store_delete(s, res->key, ns, name, out->rv, NULL, &del, e);
		if (r >= 0) {
			store_obj_unref(out);
			out = del;
		} else if (r != -ENOENT) {
			store_obj_unref(out);
			return api_err_from_store(r, res, name, e);
		}
	}
	if (ret)
		*ret = out;
	else
		store_obj_unref(out);
	return 0;
}

int api_obj_update_status_res(struct store *s, const struct api_resource *res, const char *ns,
			      const char *name, const cJSON *status, uint64_t expect_rv,
			      struct store_obj **ret, struct err *e)
{
	_cleanup_json_ cJSON *empty = NULL;
	int r;

	if (!res->has_status)
		return err_set(e, ENOENT, 404, "NotFound", "%s has no status subresource",
			       res->plural);
	if (!status || cJSON_IsNull(status))
		status = empty = cJSON_CreateObject();
	if (!cJSON_IsObject(status)) {
		err_set(e, EINVAL, 422, "Invalid", "status must be an object");
		err_cause(e, "FieldValueInvalid", "status", "Invalid value: must be an object");
		return -EINVAL;
	}
	r = store_update_status(s, res->key, res->namespaced ? ns : "", name, status, expect_rv,
				ret, e);
	return api_err_from_store(r, res, name, e);
}

static const struct api_resource *res_of(const cJSON *obj, struct err *e)
{
	const char *av = json_str(obj, "apiVersion", NULL), *kind = json_str(obj, "kind", NULL);
	const struct api_resource *res = api_resource_by_kind(av, kind);

	if (!res)
		err_set(e, ENOENT, 404, "NotFound", "no kind \"%s\" is registered for version \"%s\"",
			kind ? kind : "", av ? av : "");
	return res;
}

int api_obj_create(struct store *s, const cJSON *obj, struct store_obj **ret, struct err *e)
{
	const struct api_resource *res = res_of(obj, e);
	_cleanup_json_ cJSON *copy = NULL;

	if (!res)
		return -ENOENT;
	copy = cJSON_Duplicate(obj, true);
	if (!copy)
		return -ENOMEM;
	return api_obj_create_res(s, res, copy, false, ret, e);
}

int api_obj_update(struct store *s, const cJSON *obj, struct store_obj **ret, struct err *e)
{
	const struct api_resource *res = res_of(obj, e);
	_cleanup_json_ cJSON *copy = NULL;
	uint64_t rv;

	if (!res)
		return -ENOENT;
	if (api_obj_rv(obj, &rv) < 0)
		return err_set(e, EBADMSG, 400, "BadRequest", "invalid resourceVersion");
	copy = cJSON_Duplicate(obj, true);
	if (!copy)
		return -ENOMEM;
	return api_obj_update_res(s, res, copy, rv, ret, e);
}

int api_obj_update_status(struct store *s, const cJSON *obj, struct store_obj **ret,
			  struct err *e)
{
	const struct api_resource *res = res_of(obj, e);
	uint64_t rv;

	if (!res)
		return -ENOENT;
	if (api_obj_rv(obj, &rv) < 0)
		return err_set(e, EBADMSG, 400, "BadRequest", "invalid resourceVersion");
	return api_obj_update_status_res(s, res, json_str(obj, "metadata.namespace", "default"),
					 json_str(obj, "metadata.name", ""),
					 cJSON_GetObjectItemCaseSensitive(obj, "status"), rv, ret, e);
}

struct ns_sweep {
	struct store_obj **objs;
	size_t n, cap;
};

static int ns_sweep_add(struct store_obj *o, void *ud)
{
	struct ns_sweep *sw = ud;

	if (sw->n == sw->cap) {
		size_t cap = sw->cap ? sw->cap * 2 : 64;
		struct store_obj **n = realloc(sw->objs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		sw->objs = n;
		sw->cap = cap;
	}
	sw->objs[sw->n++] = store_obj_ref(o);
	return 0;
}

/* Deleting a namespace deletes what is in it (Kubernetes does this asynchronously). */
static void namespace_sweep(struct store *s, const char *ns)
{
	for (size_t i = 0; i < api_resources_count; i++) {
		const struct api_resource *res = &api_resources[i];
		struct ns_sweep sw = { 0 };

		if (!res->namespaced)
			continue;
		store_list(s, res->key, ns, NULL, NULL, ns_sweep_add, &sw);
		for (size_t k = 0; k < sw.n; k++) {
			store_delete(s, res->key, ns, sw.objs[k]->name, 0, NULL, NULL, NULL);
			store_obj_unref(sw.objs[k]);
		}
		free(sw.objs);
	}
}

static bool finalizer_add(cJSON *md, const char *f)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(md, "finalizers"), *it;

	if (!cJSON_IsArray(arr)) {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "finalizers");
		arr = cJSON_AddArrayToObject(md, "finalizers");
	}
	cJSON_ArrayForEach(it, arr)
		if (cJSON_IsString(it) && streq(it->valuestring, f))
			return false;
	cJSON_AddItemToArray(arr, cJSON_CreateString(f));
	return true;
}

int api_obj_delete(struct store *s, const char *resource, const char *ns, const char *name,
		   const struct api_delete_opts *opts, struct store_obj **ret, struct err *e)
{
	const struct api_resource *res = api_resource_by_key(resource);
	struct api_delete_opts dflt = { .grace_seconds = -1 };
	struct store_obj *cur = NULL;
	_cleanup_json_ cJSON *obj = NULL;
	bool graceful = false;
	int64_t grace = 0;
	int r;

	if (!res)
		return err_set(e, ENOENT, 404, "NotFound", "unknown resource %s", resource);
	if (!opts)
		opts = &dflt;
	if (!res->namespaced)
		ns = "";
	if (streq(res->kind, "Namespace"))
		for (size_t i = 0; i < ARRAY_SIZE(protected_namespaces); i++)
			if (streq(name, protected_namespaces[i]))
				return err_set(e, EPERM, 403, "Forbidden",
					       "namespaces \"%s\" is forbidden: this namespace may "
					       "not be deleted",
					       name);
	r = store_get(s, res->key, ns, name, &cur);
	if (r < 0)
		return api_err_from_store(r, res, name, e);
	if (opts->expect_uid && !streq(opts->expect_uid, cur->uid)) {
		r = err_set(e, ECANCELED, 409, "Conflict",
			    "Precondition failed: UID in precondition: %s, UID in object meta: %s",
			    opts->expect_uid, cur->uid);
		goto out;
	}
	if (opts->expect_rv && opts->expect_rv != cur->rv) {
		r = err_set(e, ECANCELED, 409, "Conflict",
			    "Precondition failed: ResourceVersion in precondition: %llu, "
			    "ResourceVersion in object meta: %llu",
			    (unsigned long long)opts->expect_rv, (unsigned long long)cur->rv);
		goto out;
	}
	if (opts->dry_run) {
		if (ret)
			*ret = store_obj_ref(cur);
		r = 0;
		goto out;
	}
	obj = store_obj_parse(cur);
	if (!obj) {
		r = -ENOMEM;
		goto out;
	}
	cJSON *md = json_path(obj, "metadata");
	bool terminating = json_path(md, "deletionTimestamp") != NULL;

	if (streq(res->kind, "Pod") && !strempty(json_str(obj, "spec.nodeName", NULL))) {
		grace = opts->grace_seconds >= 0
				? opts->grace_seconds
				: json_int(obj, "spec.terminationGracePeriodSeconds",
					   DEFAULT_POD_GRACE_S);
		graceful = grace > 0;
	}
	bool added = false;
	if (opts->propagation && streq(opts->propagation, "Foreground"))
		added = finalizer_add(md, "foregroundDeletion");
	else if (opts->propagation && streq(opts->propagation, "Orphan"))
		added = finalizer_add(md, "orphan");

	if (graceful || has_finalizers(obj)) {
		char ts[40];
		struct store_obj *out = NULL;

		if (terminating && !added) {
			/* already terminating: a shorter grace period is all a repeat may change */
			if (ret)
				*ret = store_obj_ref(cur);
			r = 0;
			goto out;
		}
		if (!terminating) {
			now_rfc3339(ts, sizeof(ts));
			json_set_str(md, "deletionTimestamp", ts);
			json_set_int(md, "deletionGracePeriodSeconds", graceful ? grace : 0);
		}
		r = store_update(s, res->key, ns, name, obj, cur->rv, &out, e);
		if (r < 0) {
			r = api_err_from_store(r, res, name, e);
			goto out;
		}
		if (ret)
			*ret = out;
		else
			store_obj_unref(out);
		goto out;
	}
	r = store_delete(s, res->key, ns, name, cur->rv, NULL, ret, e);
	if (r < 0) {
		r = api_err_from_store(r, res, name, e);
		goto out;
	}
	if (streq(res->kind, "Namespace"))
		namespace_sweep(s, name);
out:
	store_obj_unref(cur);
	return r;
}

int api_obj_bootstrap(struct store *s, struct err *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(protected_namespaces); i++) {
		_cleanup_json_ cJSON *ns = NULL;
		const struct api_resource *res = api_resource_find("", "v1", "namespaces");
		int r;

		if (ns_exists(s, protected_namespaces[i]))
			continue;
		ns = cJSON_CreateObject();
		if (!ns)
			return -ENOMEM;
		cJSON_AddStringToObject(ns, "apiVersion", "v1");
		cJSON_AddStringToObject(ns, "kind", "Namespace");
		cJSON *md = cJSON_AddObjectToObject(ns, "metadata");
		cJSON_AddStringToObject(md, "name", protected_namespaces[i]);
		cJSON *labels = cJSON_AddObjectToObject(md, "labels");
		cJSON_AddStringToObject(labels, "kubernetes.io/metadata.name",
					protected_namespaces[i]);
		/* every node creates these: one uid everywhere (a hash of the name), so replication
		 * merges them as one object instead of a create race */
		unsigned char h[16];
		char uid[40];
		crypto_generichash(h, sizeof(h), (const unsigned char *)protected_namespaces[i],
				   strlen(protected_namespaces[i]),
				   (const unsigned char *)"shoal/bootstrap/namespace/v1", 28);
		h[6] = (h[6] & 0x0f) | 0x80; /* RFC 9562 version 8: custom */
		h[8] = (h[8] & 0x3f) | 0x80;
		snprintf(uid, sizeof(uid),
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0],
			 h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13],
			 h[14], h[15]);
		struct api_write_opts wo = { .uid = uid };
		r = api_obj_create_opts(s, res, ns, true, &wo, NULL, e);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	return 0;
}

/* ---- binding (pods/binding, and the node agent binding pods to itself) ---- */

int api_obj_bind(struct store *s, const char *ns, const char *name, const char *uid,
		 const char *node, struct store_obj **ret, struct err *e)
{
	const struct api_resource *res = api_resource_by_key("pods");
	_cleanup_json_ cJSON *obj = NULL, *status = NULL;
	struct store_obj *cur = NULL, *out = NULL;
	const char *cur_node;
	char ts[40];
	cJSON *conds, *c, *it;
	int r;

	if (!res)
		return -ENOENT;
	if (strempty(node) || !util_dns1123_subdomain(node)) {
		err_set(e, EINVAL, 422, "Invalid", "Binding \"%s\" is invalid: target.name: Invalid "
			"value: \"%s\"", name, node ? node : "");
		return -EINVAL;
	}
	r = store_get(s, res->key, ns, name, &cur);
	if (r < 0)
		return api_err_from_store(r, res, name, e);
	obj = store_obj_parse(cur);
	uint64_t rv = cur->rv;
	store_obj_unref(cur);
	if (!obj)
		return -ENOMEM;
	if (!strempty(uid) && !streq(uid, json_str(obj, "metadata.uid", "")))
		return err_set(e, ECANCELED, 409, "Conflict",
			       "Operation cannot be fulfilled on pods/binding \"%s\": the object "
			       "has been modified; please apply your changes to the latest version "
			       "and try again", name);
	if (json_path(obj, "metadata.deletionTimestamp"))
		return err_set(e, ECANCELED, 409, "Conflict",
			       "Operation cannot be fulfilled on pods/binding \"%s\": pod %s is "
			       "being deleted, cannot be assigned to a host", name, name);
	cur_node = json_str(obj, "spec.nodeName", "");
	if (*cur_node)
		return err_set(e, ECANCELED, 409, "Conflict",
			       "Operation cannot be fulfilled on pods/binding \"%s\": pod %s is "
			       "already assigned to node \"%s\"", name, name, cur_node);
	json_set_str(json_path_obj(obj, "spec"), "nodeName", node);
	status = cJSON_DetachItemFromObjectCaseSensitive(obj, "status");
	r = api_obj_update_res(s, res, obj, rv, NULL, e);
	if (r < 0)
		return r;
	/* PodScheduled=True, as the binding registry sets it */
	if (!cJSON_IsObject(status)) {
		cJSON_Delete(status);
		status = cJSON_CreateObject();
	}
	if (!status)
		return -ENOMEM;
	conds = json_path(status, "conditions");
	if (!cJSON_IsArray(conds)) {
		cJSON_DeleteItemFromObjectCaseSensitive(status, "conditions");
		conds = cJSON_AddArrayToObject(status, "conditions");
	}
	int idx = 0;
	cJSON_ArrayForEach(it, conds)
	{
		if (streq(json_str(it, "type", ""), "PodScheduled")) {
			cJSON_DeleteItemFromArray(conds, idx);
			break;
		}
		idx++;
	}
	now_rfc3339(ts, sizeof(ts));
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", "PodScheduled");
	cJSON_AddStringToObject(c, "status", "True");
	cJSON_AddNullToObject(c, "lastProbeTime");
	cJSON_AddStringToObject(c, "lastTransitionTime", ts);
	cJSON_AddItemToArray(conds, c);
	if (!json_str(status, "phase", NULL))
		json_set_str(status, "phase", "Pending");
	r = store_update_status(s, res->key, ns, name, status, 0, &out, e);
	if (r < 0)
		return api_err_from_store(r, res, name, e);
	if (ret)
		*ret = out;
	else
		store_obj_unref(out);
	return 0;
}
