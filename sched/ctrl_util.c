// SPDX-License-Identifier: Apache-2.0
/* Helpers the controllers share: listing dependents, owner references, pod state, writes. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "api/object.h"
#include "api/resources.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/ctrl-internal.h"

struct list_ctx {
	const struct label_selector *sel;
	const char *uid;
	cJSON *out;
	int err;
};

static int list_one(struct store_obj *o, void *userdata)
{
	struct list_ctx *c = userdata;
	bool match = c->sel && label_selector_matches(c->sel, o->labels);

	if (!match && !(c->uid && strstr(o->json, c->uid)))
		return 0;
	cJSON *j = store_obj_parse(o);
	if (!j) {
		c->err = -ENOMEM;
		return -ENOMEM;
	}
	cJSON_AddItemToArray(c->out, j);
	return 0;
}

int ctrl_list(struct ctrl_mgr *m, const char *resource, const char *ns,
	      const struct label_selector *sel, const char *uid, cJSON **ret)
{
	struct list_ctx c = { .sel = sel, .uid = uid, .out = cJSON_CreateArray() };
	int r;

	if (!c.out)
		return -ENOMEM;
	r = store_list(ctrl_store(m), resource, ns, NULL, NULL, list_one, &c);
	if (r < 0 || c.err < 0) {
		cJSON_Delete(c.out);
		return r < 0 ? r : c.err;
	}
	*ret = c.out;
	return 0;
}

cJSON *ctrl_controller_ref(const cJSON *obj)
{
	cJSON *refs = json_path(obj, "metadata.ownerReferences"), *r;

	cJSON_ArrayForEach(r, refs) if (json_bool(r, "controller", false)) return r;
	return NULL;
}

bool ctrl_is_controlled_by(const cJSON *obj, const char *uid)
{
	cJSON *r = ctrl_controller_ref(obj);
	return r && streq(json_str(r, "uid", ""), uid);
}

cJSON *ctrl_owner_ref_new(const char *api_version, const char *kind, const cJSON *owner,
			  bool block)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "apiVersion", api_version);
	cJSON_AddStringToObject(r, "kind", kind);
	cJSON_AddStringToObject(r, "name", json_str(owner, "metadata.name", ""));
	cJSON_AddStringToObject(r, "uid", json_str(owner, "metadata.uid", ""));
	cJSON_AddBoolToObject(r, "controller", 1);
	cJSON_AddBoolToObject(r, "blockOwnerDeletion", block);
	return r;
}

bool ctrl_terminating(const cJSON *obj)
{
	return json_path(obj, "metadata.deletionTimestamp") != NULL;
}

bool ctrl_pod_active(const cJSON *pod)
{
	const char *phase = json_str(pod, "status.phase", "");

	return !streq(phase, "Succeeded") && !streq(phase, "Failed") && !ctrl_terminating(pod);
}

const cJSON *ctrl_condition_get(const cJSON *status, const char *type)
{
	cJSON *c;

	cJSON_ArrayForEach(c, json_path(status, "conditions")) if (streq(json_str(c, "type", ""),
									 type)) return c;
	return NULL;
}

bool ctrl_pod_ready(const cJSON *pod)
{
	const cJSON *c = ctrl_condition_get(json_path(pod, "status"), "Ready");
	return c && streq(json_str(c, "status", ""), "True");
}

int64_t ctrl_pod_ready_since(const cJSON *pod)
{
	const cJSON *c = ctrl_condition_get(json_path(pod, "status"), "Ready");
	int64_t t = 0;

	if (c)
		util_rfc3339_parse(json_str(c, "lastTransitionTime", ""), &t);
	return t;
}

bool ctrl_pod_ready_live(struct ctrl_mgr *m, const cJSON *pod)
{
	return ctrl_pod_ready(pod) && !ctrl_node_down(m, json_str(pod, "spec.nodeName", NULL));
}

bool ctrl_pod_available(const cJSON *pod, int64_t min_ready_s, int64_t now_s)
{
	if (!ctrl_pod_active(pod) || !ctrl_pod_ready(pod))
		return false;
	return min_ready_s <= 0 || ctrl_pod_ready_since(pod) + min_ready_s <= now_s;
}

#define ANN_DELETION_COST "controller.kubernetes.io/pod-deletion-cost"

/* What a pod is ranked by for deletion, computed once (the comparator sees no manager). */
struct pod_rank {
	cJSON *pod;
	const char *node, *uid, *name;
	bool ready;
	int phase; /* Pending 0 < Unknown 1 < Running 2 */
	int32_t cost; /* pod-deletion-cost */
	size_t colocated; /* active related pods on the same node (unscheduled: never compared) */
	int64_t ready_at; /* s, 0: unknown (not ready, or no transition time) */
	int64_t created; /* s, 0: unknown */
	/* what times compare by, the lower first: floor(log2(ns since)) (-1: not in the past) on
	 * the log2 scale, else minus the time itself */
	int64_t ready_key, created_key;
	int64_t restarts; /* the most restarts of one container */
};

/* Kubernetes' GetDeletionCostFromPodAnnotations: an int32 without '+' or leading zeros, else 0. */
static int32_t pod_deletion_cost(const cJSON *pod)
{
	const char *v = json_key_str(pod, "metadata.annotations", ANN_DELETION_COST, NULL);
	char *end;
	long long c;

	if (!v || !(*v == '-' || (*v >= '1' && *v <= '9') || streq(v, "0")))
		return 0;
	errno = 0;
	c = strtoll(v, &end, 10);
	if (errno || *end || end == v || c < INT32_MIN || c > INT32_MAX)
		return 0;
	return (int32_t)c;
}

/* LogarithmicScaleDown's bucket of a time: floor(log2) of the nanoseconds since it, -1 if none. */
static int64_t log_bucket(int64_t at_s, int64_t now_s)
{
	if (at_s >= now_s)
		return -1;
	return 63 - __builtin_clzll((unsigned long long)(now_s - at_s) * 1000000000ULL);
}

/* Kubernetes' afterOrZero + logarithmic comparison (rules 6 and 8): the zero time first, then
 * the lower key (less time), then the smaller uid; 0 when the times (or uids) are equal. */
static int time_cmp(int64_t ta, int64_t ka, int64_t tb, int64_t kb, const char *ua,
		    const char *ub)
{
	if (ta == tb)
		return 0;
	if (!ta || !tb)
		return ta ? 1 : -1;
	if (ka != kb)
		return ka < kb ? -1 : 1;
	return strcmp(ua, ub);
}

/* Kubernetes' ActivePodsWithRanks.Less (ActivePods.Less: without cost and colocated, keys the
 * times): the pod to delete first sorts first. */
static int pod_rank_cmp(const void *pa, const void *pb)
{
	const struct pod_rank *a = pa, *b = pb;
	int c;

	if (!*a->node != !*b->node)
		return *a->node ? 1 : -1; /* unscheduled first */
	if (a->phase != b->phase)
		return a->phase - b->phase; /* Pending, Unknown, Running */
	if (a->ready != b->ready)
		return a->ready ? 1 : -1; /* not ready first */
	if (a->cost != b->cost)
		return a->cost < b->cost ? -1 : 1; /* lower pod-deletion-cost first */
	if (a->colocated != b->colocated)
		return a->colocated > b->colocated ? -1 : 1; /* doubled up first */
	if (a->ready && b->ready) {
		c = time_cmp(a->ready_at, a->ready_key, b->ready_at, b->ready_key, a->uid, b->uid);
		if (c)
			return c; /* ready for less time first */
	}
	if (a->restarts != b->restarts)
		return a->restarts > b->restarts ? -1 : 1; /* more restarts first */
	c = time_cmp(a->created, a->created_key, b->created, b->created_key, a->uid, b->uid);
	if (c)
		return c; /* newer first */
	return strcmp(a->name, b->name); /* Kubernetes leaves it open; one order on every node */
}

static int str_cmp(const void *pa, const void *pb)
{
	return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* How many of the n sorted strings v are s. */
static size_t sorted_count(const char *const *v, size_t n, const char *s)
{
	size_t lo = 0, hi = n, first;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid], s) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	for (hi = n; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid], s) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - first;
}

int ctrl_pods_deletion_order(struct ctrl_mgr *m, cJSON **pods, size_t npods,
			     const cJSON *related, bool ranked)
{
	int64_t now_s = (int64_t)(ctrl_now_ms(m) / 1000);
	_cleanup_free_ struct pod_rank *r = calloc(npods + 1, sizeof(*r));
	size_t nrel = 0;
	_cleanup_free_ const char **rel_nodes =
		calloc((size_t)cJSON_GetArraySize(related) + 1, sizeof(*rel_nodes));
	cJSON *cs;

	if (!r || !rel_nodes)
		return -ENOMEM;
	/* rank: the active related pods on the pod's node */
	if (!ranked)
		related = NULL;
	cJSON_ArrayForEach(cs, related)
	{
		if (ctrl_pod_active(cs))
			rel_nodes[nrel++] = json_str(cs, "spec.nodeName", "");
	}
	qsort(rel_nodes, nrel, sizeof(*rel_nodes), str_cmp);
	for (size_t i = 0; i < npods; i++) {
		static const char *const phases[] = { "Pending", "Unknown", "Running" };
		const char *phase = json_str(pods[i], "status.phase", "Pending");
		struct pod_rank *p = &r[i];

		p->pod = pods[i];
		p->node = json_str(pods[i], "spec.nodeName", "");
		p->uid = json_str(pods[i], "metadata.uid", "");
		p->name = json_str(pods[i], "metadata.name", "");
		for (int k = 0; k < 3; k++)
			if (streq(phase, phases[k]))
				p->phase = k;
		/* nobody updates the Ready of a pod whose node is not alive: it is not */
		p->ready = ctrl_pod_ready(pods[i]) && !ctrl_node_unreachable(m, p->node);
		p->cost = ranked ? pod_deletion_cost(pods[i]) : 0;
		if (p->ready)
			p->ready_at = ctrl_pod_ready_since(pods[i]);
		if (util_rfc3339_parse(json_str(pods[i], "metadata.creationTimestamp", ""),
				       &p->created) < 0)
			p->created = 0;
		p->ready_key = ranked ? log_bucket(p->ready_at, now_s) : -p->ready_at;
		p->created_key = ranked ? log_bucket(p->created, now_s) : -p->created;
		cJSON_ArrayForEach(cs, json_path(pods[i], "status.containerStatuses"))
		{
			int64_t n = json_int(cs, "restartCount", 0);
			if (n > p->restarts)
				p->restarts = n;
		}
		p->colocated = sorted_count(rel_nodes, nrel, p->node);
	}
	qsort(r, npods, sizeof(*r), pod_rank_cmp);
	for (size_t i = 0; i < npods; i++)
		pods[i] = r[i].pod;
	return 0;
}

int ctrl_pod_create(struct ctrl_mgr *m, const cJSON *tmpl, const char *ns, const char *prefix,
		    cJSON *owner_ref, const cJSON *extra_labels)
{
	struct err e = { 0 };

	return ctrl_pod_create_ret(m, tmpl, ns, prefix, owner_ref, extra_labels, NULL, 0, &e);
}

int ctrl_pod_create_ret(struct ctrl_mgr *m, const cJSON *tmpl, const char *ns, const char *prefix,
			cJSON *owner_ref, const cJSON *extra_labels, char *name, size_t name_len,
			struct err *e)
{
	_cleanup_json_ cJSON *pod = cJSON_CreateObject();
	struct store_obj *o = NULL;
	int r;
	cJSON *md, *labels, *it, *refs;
	char gen[300];

	if (!pod) {
		cJSON_Delete(owner_ref);
		return -ENOMEM;
	}
	cJSON_AddStringToObject(pod, "apiVersion", "v1");
	cJSON_AddStringToObject(pod, "kind", "Pod");
	md = cJSON_AddObjectToObject(pod, "metadata");
	snprintf(gen, sizeof(gen), "%s-", prefix);
	cJSON_AddStringToObject(md, "generateName", gen);
	cJSON_AddStringToObject(md, "namespace", ns);
	labels = cJSON_Duplicate(json_path(tmpl, "metadata.labels"), 1);
	if (!labels)
		labels = cJSON_CreateObject();
	cJSON_ArrayForEach(it, extra_labels) json_set(labels, it->string, cJSON_Duplicate(it, 1));
	cJSON_AddItemToObject(md, "labels", labels);
	if (json_path(tmpl, "metadata.annotations"))
		cJSON_AddItemToObject(md, "annotations",
				      cJSON_Duplicate(json_path(tmpl, "metadata.annotations"), 1));
	refs = cJSON_AddArrayToObject(md, "ownerReferences");
	cJSON_AddItemToArray(refs, owner_ref);
	cJSON_AddItemToObject(pod, "spec", cJSON_Duplicate(json_path(tmpl, "spec"), 1));
	r = api_obj_create(ctrl_store(m), pod, name ? &o : NULL, e);
	if (r >= 0 && name && name_len)
		snprintf(name, name_len, "%s", o && o->name ? o->name : "");
	store_obj_unref(o);
	return r;
}

int ctrl_delete(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name,
		const char *propagation)
{
	struct api_delete_opts o = { .grace_seconds = -1, .propagation = propagation };
	struct err e = { 0 };
	int r = api_obj_delete(ctrl_store(m), resource, ns, name, &o, NULL, &e);

	return r == -ENOENT ? 0 : r;
}

int ctrl_status_update(struct ctrl_mgr *m, const cJSON *obj, cJSON *status)
{
	_cleanup_json_ cJSON *owned = status;
	const struct api_resource *res =
		api_resource_by_kind(json_str(obj, "apiVersion", NULL), json_str(obj, "kind", NULL));
	const char *ns = json_str(obj, "metadata.namespace", "default");
	const char *name = json_str(obj, "metadata.name", "");
	_cleanup_free_ char *a = NULL, *b = NULL;
	struct store_obj *cur = NULL;
	uint64_t term = 0, retry = 0;
	struct err e = { 0 };
	int r;

	if (!res || !res->has_status)
		return -ENOENT;
	if (!res->namespaced)
		ns = "";
	r = store_get(ctrl_store(m), res->key, ns, name, &cur);
	if (r < 0)
		return r == -ENOENT ? 0 : r; /* deleted meanwhile: nothing to report on */
	r = ctrl_status_term(m, res->key, ns, name, cur, &term, &retry);
	bool claim = r == 0 && term > cur->status_term;
	store_obj_unref(cur);
	if (r == -ESTALE) {
		ctrl_enqueue(m, res->key, ns, name, retry);
		return 0;
	}
	if (r < 0)
		return r;
	a = json_canonical(json_path(obj, "status"));
	b = json_canonical(status);
	if (!claim && a && b && streq(a, b))
		return 0;
	r = store_update_status_term(ctrl_store(m), res->key, ns, name, status, term, NULL, &e);
	if (r == -ESTALE) {
		/* a higher term arrived between the two reads: look again */
		ctrl_enqueue(m, res->key, ns, name, 0);
		return 0;
	}
	return r < 0 ? r : 0;
}

int ctrl_update(struct ctrl_mgr *m, const cJSON *obj)
{
	struct err e = { 0 };
	return api_obj_update(ctrl_store(m), obj, NULL, &e);
}

void ctrl_condition_set(cJSON *status, const char *type, const char *st, const char *reason,
			const char *message, int64_t now_s)
{
	cJSON *conds = cJSON_GetObjectItemCaseSensitive(status, "conditions"), *c, *found = NULL;
	char now[32];

	util_rfc3339(now_s, now, sizeof(now));
	if (!cJSON_IsArray(conds)) {
		cJSON_DeleteItemFromObject(status, "conditions");
		conds = cJSON_AddArrayToObject(status, "conditions");
	}
	cJSON_ArrayForEach(c, conds) if (streq(json_str(c, "type", ""), type)) found = c;
	if (!found) {
		found = cJSON_CreateObject();
		cJSON_AddItemToArray(conds, found);
		json_set_str(found, "type", type);
		json_set_str(found, "lastTransitionTime", now);
	} else if (!streq(json_str(found, "status", ""), st))
		json_set_str(found, "lastTransitionTime", now);
	/* lastUpdateTime moves only when something about the condition changes */
	if (!streq(json_str(found, "status", ""), st) ||
	    !streq(json_str(found, "reason", ""), reason) || !json_path(found, "lastUpdateTime"))
		json_set_str(found, "lastUpdateTime", now);
	json_set_str(found, "status", st);
	json_set_str(found, "reason", reason);
	json_set_str(found, "message", message);
}

int64_t ctrl_int_or_percent(const cJSON *v, int64_t total, bool round_up, int64_t def)
{
	if (cJSON_IsNumber(v))
		return (int64_t)v->valuedouble;
	if (cJSON_IsString(v)) {
		char *end;
		long p = strtol(v->valuestring, &end, 10);
		if (*end == '%' && p >= 0) {
			int64_t x = total * p;
			return round_up ? (x + 99) / 100 : x / 100;
		}
		if (!*end && end != v->valuestring)
			return p;
	}
	return def;
}

void ctrl_template_hash(const cJSON *tmpl, uint32_t collisions, char *out, size_t len)
{
	static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
	_cleanup_free_ char *canon = json_canonical(tmpl);
	crypto_generichash_state st;
	unsigned char h[16];
	uint32_t v;
	char dec[16];
	size_t i;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)(canon ? canon : ""),
				  canon ? strlen(canon) : 0);
	/* a collision count (DaemonSet's status.collisionCount) moves the name to a fresh hash;
	 * zero hashes the template alone, as before it existed */
	if (collisions) {
		char c[16];
		snprintf(c, sizeof(c), "#%" PRIu32, collisions);
		crypto_generichash_update(&st, (const unsigned char *)c, strlen(c));
	}
	crypto_generichash_final(&st, h, sizeof(h));
	memcpy(&v, h, sizeof(v));
	snprintf(dec, sizeof(dec), "%" PRIu32, v);
	for (i = 0; dec[i] && i < len - 1; i++)
		out[i] = alphabet[(unsigned char)dec[i] % (sizeof(alphabet) - 1)];
	out[i] = 0;
}
