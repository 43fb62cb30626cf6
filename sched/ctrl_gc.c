// SPDX-License-Identifier: Apache-2.0
/*
 * Garbage collector. Background: when an owner is gone, delete dependents whose every owner is
 * gone. Foreground: an owner with the foregroundDeletion finalizer waits until its
 * blockOwnerDeletion dependents are deleted. Orphan: the orphan finalizer strips owner
 * references from dependents, then lets the owner go.
 */
#include <string.h>

#include "api/object.h"
#include "api/resources.h"
#include "lib/macro.h"
#include "sched/ctrl-internal.h"

#define FIN_FOREGROUND "foregroundDeletion"
#define FIN_ORPHAN "orphan"

const char *const ctrl_gc_resources[] = {
	"pods", "replicasets.apps", "jobs.batch", "deployments.apps", "configmaps", "secrets",
	"services", "events", "daemonsets.apps", "controllerrevisions.apps",
};
const size_t ctrl_gc_resources_count = ARRAY_SIZE(ctrl_gc_resources);

/*
 * Does the owner an ownerReference names still exist? Looked up by its kind and name (owners
 * live in the dependent's namespace, or are cluster-scoped) and then compared by uid, so a
 * re-created owner of the same name does not adopt the old one's dependents.
 */
static bool gc_owner_alive(struct ctrl_mgr *m, const char *ns, const cJSON *ref)
{
	const char *res = ctrl_resource_of_kind(json_str(ref, "apiVersion", ""),
						json_str(ref, "kind", ""));
	const struct api_resource *ar = res ? api_resource_by_key(res) : NULL;
	struct store_obj *o = NULL;
	bool alive;

	if (!ar)
		return true; /* a kind we do not serve: not ours to judge */
	if (store_get(ctrl_store(m), res, ar->namespaced ? ns : "", json_str(ref, "name", ""),
		      &o) < 0)
		return false;
	alive = o->uid && streq(o->uid, json_str(ref, "uid", ""));
	store_obj_unref(o);
	return alive;
}

static bool has_finalizer(const cJSON *obj, const char *fin)
{
	cJSON *f;
	cJSON_ArrayForEach(f, json_path(obj, "metadata.finalizers")) if (cJSON_IsString(f) &&
									streq(f->valuestring,
									      fin)) return true;
	return false;
}

static int remove_finalizer(struct ctrl_mgr *m, const cJSON *obj, const char *fin)
{
	_cleanup_json_ cJSON *c = cJSON_Duplicate(obj, 1);
	cJSON *fins = json_path(c, "metadata.finalizers"), *f;
	int i = 0;

	cJSON_ArrayForEach(f, fins)
	{
		if (cJSON_IsString(f) && streq(f->valuestring, fin)) {
			cJSON_DeleteItemFromArray(fins, i);
			return ctrl_update(m, c);
		}
		i++;
	}
	return 0;
}

/* Drop owner references to `uid` from a dependent (orphaning). */
static int strip_owner(struct ctrl_mgr *m, const cJSON *dep, const char *uid)
{
	_cleanup_json_ cJSON *c = cJSON_Duplicate(dep, 1);
	cJSON *refs = json_path(c, "metadata.ownerReferences"), *r;
	int i = 0;
	bool changed = false;

	for (r = refs ? refs->child : NULL; r;) {
		cJSON *next = r->next;
		if (streq(json_str(r, "uid", ""), uid)) {
			cJSON_DeleteItemFromArray(refs, i);
			changed = true;
		} else
			i++;
		r = next;
	}
	if (cJSON_GetArraySize(refs) == 0)
		cJSON_DeleteItemFromObject(json_path(c, "metadata"), "ownerReferences");
	return changed ? ctrl_update(m, c) : 0;
}

const char *ctrl_resource_of_kind(const char *api_version, const char *kind)
{
	const struct api_resource *res = api_resource_by_kind(api_version, kind);

	return res ? res->key : NULL;
}

static const char *resource_of(const cJSON *obj)
{
	return ctrl_resource_of_kind(json_str(obj, "apiVersion", ""), json_str(obj, "kind", ""));
}

/* Dependents of uid in ns across resources, as a new array. */
static int gc_dependents(struct ctrl_mgr *m, const char *ns, const char *uid, cJSON **ret)
{
	cJSON *out = cJSON_CreateArray(), *it;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < ctrl_gc_resources_count; i++) {
		_cleanup_json_ cJSON *l = NULL;
		if (ctrl_list(m, ctrl_gc_resources[i], ns, NULL, uid, &l) < 0)
			continue;
		for (it = l->child; it;) {
			cJSON *next = it->next;
			cJSON *r;
			bool dep = false;
			cJSON_ArrayForEach(r, json_path(it, "metadata.ownerReferences")) if (
				streq(json_str(r, "uid", ""), uid)) dep = true;
			if (dep)
				cJSON_AddItemToArray(out, cJSON_DetachItemViaPointer(l, it));
			it = next;
		}
	}
	*ret = out;
	return 0;
}

void ctrl_gc_on_delete(struct ctrl_mgr *m, const struct store_obj *o)
{
	/* dependents are in the same namespace; cluster-scoped owners: scan all */
	if (o->uid)
		ctrl_enqueue(m, "gc-dangling", *o->ns ? o->ns : "*", o->uid, 0);
}

int ctrl_gc_owner(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name,
		  cJSON *obj)
{
	_cleanup_json_ cJSON *deps = NULL;
	const char *uid = json_str(obj, "metadata.uid", "");
	cJSON *d;
	int r, waiting = 0;

	if (!ctrl_terminating(obj))
		return 0;
	if (has_finalizer(obj, FIN_ORPHAN)) {
		r = gc_dependents(m, ns, uid, &deps);
		if (r < 0)
			return r;
		cJSON_ArrayForEach(d, deps) strip_owner(m, d, uid);
		return remove_finalizer(m, obj, FIN_ORPHAN);
	}
	if (has_finalizer(obj, FIN_FOREGROUND)) {
		r = gc_dependents(m, ns, uid, &deps);
		if (r < 0)
			return r;
		cJSON_ArrayForEach(d, deps)
		{
			const char *res = resource_of(d);
			if (!res)
				continue;
			/* dependents of a foreground delete are deleted in the foreground too */
			if (!ctrl_terminating(d))
				ctrl_delete(m, res, ns, json_str(d, "metadata.name", ""),
					    "Foreground");
			cJSON *ref;
			cJSON_ArrayForEach(ref, json_path(d, "metadata.ownerReferences")) if (
				streq(json_str(ref, "uid", ""), uid) &&
				json_bool(ref, "blockOwnerDeletion", false)) waiting++;
		}
		if (waiting)
			return 0; /* their DELETED events bring us back */
		return remove_finalizer(m, obj, FIN_FOREGROUND);
	}
	return 0;
}

/* One dependent: delete it if every owner it names is gone. */
static void gc_check_dependent(struct ctrl_mgr *m, const char *ns, cJSON *dep)
{
	cJSON *r;
	const char *res = resource_of(dep);
	int owners = 0, alive = 0;

	if (!res)
		return;
	cJSON_ArrayForEach(r, json_path(dep, "metadata.ownerReferences"))
	{
		owners++;
		if (gc_owner_alive(m, ns, r))
			alive++;
	}
	if (owners && !alive && !ctrl_terminating(dep))
		ctrl_delete(m, res, ns, json_str(dep, "metadata.name", ""), "Background");
	else if (owners && alive < owners) {
		/* some owners gone: drop just those references, in one write */
		_cleanup_json_ cJSON *c = cJSON_Duplicate(dep, 1);
		cJSON *refs = json_path(c, "metadata.ownerReferences"), *next;
		for (r = refs ? refs->child : NULL; r; r = next) {
			next = r->next;
			if (!gc_owner_alive(m, ns, r))
				cJSON_Delete(cJSON_DetachItemViaPointer(refs, r));
		}
		ctrl_update(m, c);
	}
}

struct scan_ctx {
	struct ctrl_mgr *m;
	const char *resource;
};

static int scan_one(struct store_obj *o, void *userdata)
{
	struct scan_ctx *c = userdata;
	_cleanup_json_ cJSON *obj = NULL;

	if (!strstr(o->json, "\"ownerReferences\"") && !strstr(o->json, "\"deletionTimestamp\""))
		return 0;
	obj = store_obj_parse(o);
	if (!obj)
		return 0;
	if (ctrl_terminating(obj)) {
		char res[160];
		snprintf(res, sizeof(res), "gc-owner:%s", c->resource);
		ctrl_enqueue(c->m, res, o->ns, o->name, 0);
	}
	if (json_path(obj, "metadata.ownerReferences"))
		gc_check_dependent(c->m, o->ns, obj);
	return 0;
}

int ctrl_gc_dangling(struct ctrl_mgr *m, const char *resource, const char *ns, const char *uid,
		     cJSON *unused)
{
	_cleanup_json_ cJSON *deps = NULL;
	cJSON *d;
	int r;

	if (resource) {
		/* full scan of one resource (start-up resync) */
		struct scan_ctx c = { m, resource };
		return store_list(ctrl_store(m), resource, NULL, NULL, NULL, scan_one, &c);
	}
	r = gc_dependents(m, streq(ns, "*") ? NULL : ns, uid, &deps);
	if (r < 0)
		return r;
	cJSON_ArrayForEach(d, deps) gc_check_dependent(m, json_str(d, "metadata.namespace", ""), d);
	return 0;
}
