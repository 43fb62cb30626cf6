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
#include "sched/hlc.h"

#define FIN_FOREGROUND "foregroundDeletion"
#define FIN_ORPHAN "orphan"

const char *const ctrl_gc_resources[] = {
	"pods", "replicasets.apps", "jobs.batch", "deployments.apps", "configmaps", "secrets",
	"services", "events", "daemonsets.apps", "controllerrevisions.apps",
};
const size_t ctrl_gc_resources_count = ARRAY_SIZE(ctrl_gc_resources);

/*
 * What this replica knows of the owner an ownerReference names. Owners live in the dependent's
 * namespace, or are cluster-scoped; they are compared by uid, so a re-created owner of the same
 * name does not adopt the old one's dependents.
 *
 * With replication a dependent can arrive before its owner (a pod applied on one node before
 * its ReplicaSet reaches this one), so "not found" does not mean "deleted". The owner is gone
 * only when the replica holds proof: its tombstone with the referenced uid, or another uid in
 * its name born after the dependent (the referenced owner predates its dependent, and a key
 * keeps the uid born last, so the referenced one can never come back). A name never seen is
 * taken as gone only once the dependent is older than the tombstone horizon (an owner deleted
 * that long ago has had its tombstone collected; a live one would have arrived by then).
 */
enum gc_owner_state {
	GC_OWNER_ALIVE,
	GC_OWNER_GONE,
	GC_OWNER_UNKNOWN, /* not arrived (yet): look again later */
};

struct gc_reg {
	bool tombstone;
	uint64_t born;
	char uid[128];
};

static int gc_reg_one(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct gc_reg *g = ud;

	g->tombstone = spec->tombstone;
	g->born = spec->born;
	snprintf(g->uid, sizeof(g->uid), "%s", spec->uid ? spec->uid : "");
	return 1;
}

static enum gc_owner_state gc_owner_state(struct ctrl_mgr *m, const char *ns, const cJSON *ref,
					  uint64_t dep_born)
{
	const char *res = ctrl_resource_of_kind(json_str(ref, "apiVersion", ""),
						json_str(ref, "kind", ""));
	const struct api_resource *ar = res ? api_resource_by_key(res) : NULL;
	struct gc_reg g = { 0 };
	int r;

	if (!ar)
		return GC_OWNER_ALIVE; /* a kind we do not serve: not ours to judge */
	r = store_reg_get(ctrl_store(m), res, ar->namespaced ? ns : "", json_str(ref, "name", ""),
			  gc_reg_one, &g);
	if (r == -ENOENT) {
		uint64_t horizon = ctrl_tombstone_horizon_ms(m), now = ctrl_now_ms(m);
		if (dep_born && now > horizon && HLC_PHYS(dep_born) < now - horizon)
			return GC_OWNER_GONE;
		return GC_OWNER_UNKNOWN;
	}
	if (r < 0)
		return GC_OWNER_UNKNOWN;
	if (streq(g.uid, json_str(ref, "uid", "")))
		return g.tombstone ? GC_OWNER_GONE : GC_OWNER_ALIVE;
	return g.born > dep_born ? GC_OWNER_GONE : GC_OWNER_UNKNOWN;
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

void ctrl_gc_on_dependent(struct ctrl_mgr *m, const char *ns, const cJSON *obj)
{
	cJSON *r;

	/* an owner not (yet) here: the dependent gets looked at, and again until it is known */
	cJSON_ArrayForEach(r, json_path(obj, "metadata.ownerReferences"))
	if (gc_owner_state(m, ns, r, 0) != GC_OWNER_ALIVE)
		ctrl_enqueue(m, "gc-dangling", *ns ? ns : "*", json_str(r, "uid", ""), 0);
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

/* Re-examine dependents of an owner that has not arrived after this long. */
#define GC_UNKNOWN_RECHECK_MS 10000

/*
 * One dependent: delete it if every owner it names is known to be gone, drop the references to
 * the gone ones if only some are. Only the dependent's owner node writes (every node sees the
 * same tombstones, one delete is enough); an owner not arrived yet brings the check back later.
 */
static void gc_check_dependent(struct ctrl_mgr *m, const char *ns, cJSON *dep)
{
	cJSON *r;
	const char *res = resource_of(dep);
	const char *name = json_str(dep, "metadata.name", "");
	struct store_obj *o = NULL;
	uint64_t born = 0;
	int owners = 0, gone = 0;

	if (!res || !ctrl_owns_key(m, res, ns, name))
		return;
	if (store_get(ctrl_store(m), res, ns, name, &o) == 0) {
		born = o->born;
		store_obj_unref(o);
	}
	cJSON_ArrayForEach(r, json_path(dep, "metadata.ownerReferences"))
	{
		owners++;
		switch (gc_owner_state(m, ns, r, born)) {
		case GC_OWNER_GONE:
			gone++;
			break;
		case GC_OWNER_UNKNOWN:
			ctrl_enqueue(m, "gc-dangling", *ns ? ns : "*", json_str(r, "uid", ""),
				     GC_UNKNOWN_RECHECK_MS);
			break;
		case GC_OWNER_ALIVE:
			break;
		}
	}
	if (!gone)
		return;
	if (gone == owners && !ctrl_terminating(dep)) {
		ctrl_delete(m, res, ns, name, "Background");
	} else if (gone < owners) {
		/* some owners gone: drop just those references, in one write */
		_cleanup_json_ cJSON *c = cJSON_Duplicate(dep, 1);
		cJSON *refs = json_path(c, "metadata.ownerReferences"), *next;
		for (r = refs ? refs->child : NULL; r; r = next) {
			next = r->next;
			if (gc_owner_state(m, ns, r, born) == GC_OWNER_GONE)
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
