// SPDX-License-Identifier: Apache-2.0
/*
 * POST pods/NAME/eviction (policy/v1 Eviction, also v1beta1): delete a pod unless that would
 * violate its PodDisruptionBudget, as kube-apiserver's eviction registry does. Pods that are
 * not running (Pending, Succeeded, Failed) or already terminating are deleted without a budget
 * check; a pod selected by more than one budget is refused (500); a budget with no disruption
 * left answers 429 TooManyRequests (kubectl drain retries). An admitted eviction records the
 * pod in the budget's status.disruptedPods (so the next eviction on this node does not count it
 * as healthy) and deletes the pod with the request's deleteOptions.
 *
 * The counts come from this node's replica at the moment of the request (sched/pdb.h), not from
 * the budget's possibly stale status. Two nodes evicting at the same instant can each see one
 * disruption left (no cross-node lock; see docs/scheduling.md).
 */
#include <string.h>

#include "api/object.h"
#include "api/selector.h"
#include "api/server-internal.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/pdb.h"

struct budgets {
	const cJSON *labels;
	cJSON *found; /* matching budgets, parsed */
};

static int budget_match(struct store_obj *o, void *ud)
{
	struct budgets *b = ud;
	_cleanup_json_ cJSON *pdb = store_obj_parse(o);
	struct label_selector *sel = NULL;
	bool match;

	if (!pdb || !json_path(pdb, "spec.selector"))
		return 0;
	if (label_selector_from_json(json_path(pdb, "spec.selector"), "spec.selector", &sel, NULL) <
	    0)
		return 0;
	match = label_selector_matches(sel, b->labels);
	label_selector_free(sel);
	if (match)
		cJSON_AddItemToArray(b->found, TAKE_PTR(pdb));
	return 0;
}

static void reply_too_many(struct api_req *r, const char *pdb_name, const char *msg)
{
	_cleanup_json_ cJSON *st = api_status_new(429, "TooManyRequests",
						  "Cannot evict pod as it would violate the pod's "
						  "disruption budget.",
						  NULL, NULL, NULL);
	cJSON *details, *causes, *c;

	if (!st) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return;
	}
	details = cJSON_GetObjectItemCaseSensitive(st, "details");
	if (!details)
		details = cJSON_AddObjectToObject(st, "details");
	causes = cJSON_AddArrayToObject(details, "causes");
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "reason", "DisruptionBudget");
	cJSON_AddStringToObject(c, "message", msg);
	cJSON_AddItemToArray(causes, c);
	(void)pdb_name;
	api_reply_json(r, 429, st);
}

/* Record the eviction in the budget's status: the pod no longer counts as healthy. */
static int budget_charge(struct store *s, cJSON *pdb, const char *pod, const struct pdb_counts *c)
{
	_cleanup_json_ cJSON *obj = cJSON_Duplicate(pdb, true);
	struct err e = {0};
	cJSON *st, *dis;
	char ts[40];

	if (!obj)
		return -ENOMEM;
	st = json_path_obj(obj, "status");
	if (!st)
		return -ENOMEM;
	dis = json_path(st, "disruptedPods");
	if (!cJSON_IsObject(dis)) {
		cJSON_DeleteItemFromObjectCaseSensitive(st, "disruptedPods");
		dis = cJSON_AddObjectToObject(st, "disruptedPods");
	}
	util_rfc3339((int64_t)(util_now_ms() / 1000), ts, sizeof(ts));
	cJSON_DeleteItemFromObjectCaseSensitive(dis, pod);
	cJSON_AddStringToObject(dis, pod, ts);
	json_set_int(st, "disruptionsAllowed", c->allowed - 1);
	json_set_int(st, "currentHealthy", c->healthy);
	json_set_int(st, "desiredHealthy", c->desired);
	json_set_int(st, "expectedPods", c->expected);
	cJSON_DeleteItemFromObjectCaseSensitive(json_path(obj, "metadata"), "resourceVersion");
	return api_obj_update_status(s, obj, NULL, &e);
}

void api_eviction_handle(struct api_req *r, const cJSON *eviction)
{
	struct store *s = r->srv->store;
	_cleanup_json_ cJSON *pod = NULL, *found = cJSON_CreateArray(), *pods = NULL;
	struct api_delete_opts o = {.grace_seconds = -1};
	struct store_obj *cur = NULL;
	struct err e = {0};
	const char *phase;
	int ret;

	if (!found) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return;
	}
	ret = store_get(s, "pods", r->ns, r->name, &cur);
	if (ret < 0) {
		api_reply_status(r, 404, "NotFound", "pods", r->name, "pods \"%s\" not found",
				 r->name);
		return;
	}
	pod = store_obj_parse(cur);
	store_obj_unref(cur);
	if (!pod) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return;
	}
	if (cJSON_IsNumber(json_path(eviction, "deleteOptions.gracePeriodSeconds")))
		o.grace_seconds = json_int(eviction, "deleteOptions.gracePeriodSeconds", -1);
	o.expect_uid = json_str(eviction, "deleteOptions.preconditions.uid", NULL);
	o.dry_run = api_query(r, "dryRun") != NULL;
	phase = json_str(pod, "status.phase", "Pending");
	/* not running or already going: no budget to protect */
	if (!streq(phase, "Running") || json_path(pod, "metadata.deletionTimestamp"))
		goto delete;

	struct budgets b = {json_path(pod, "metadata.labels"), found};
	store_list(s, "poddisruptionbudgets.policy", r->ns, NULL, NULL, budget_match, &b);
	if (cJSON_GetArraySize(found) > 1) {
		api_reply_status(r, 500, "InternalError", NULL, NULL,
				 "This pod has more than one PodDisruptionBudget, which the "
				 "eviction subresource does not support.");
		return;
	}
	if (cJSON_GetArraySize(found) == 1) {
		cJSON *pdb = cJSON_GetArrayItem(found, 0);
		struct pdb_counts c;
		char msg[512];

		if (pdb_pods(s, pdb, &pods) < 0 ||
		    pdb_count(pdb, pods, pdb_expected(s, pdb, pods), &c) < 0) {
			api_reply_status(r, 500, "InternalError", NULL, NULL,
					 "cannot count the pods of PodDisruptionBudget %s",
					 json_str(pdb, "metadata.name", ""));
			return;
		}
		/* an unhealthy pod does not spend the budget while the budget is met
		 * (unhealthyPodEvictionPolicy IfHealthyBudget) */
		bool healthy = pdb_pod_healthy(pod);
		if (healthy || c.healthy < c.desired) {
			if (c.allowed <= 0) {
				snprintf(msg, sizeof(msg),
					 "The disruption budget %s needs %lld healthy pods and has "
					 "%lld currently",
					 json_str(pdb, "metadata.name", ""), (long long)c.desired,
					 (long long)c.healthy);
				reply_too_many(r, json_str(pdb, "metadata.name", ""), msg);
				return;
			}
			if (!o.dry_run && (ret = budget_charge(s, pdb, r->name, &c)) < 0) {
				api_reply_status(r, 500, "InternalError", NULL, NULL,
						 "cannot update PodDisruptionBudget %s: %s",
						 json_str(pdb, "metadata.name", ""),
						 strerror(-ret));
				return;
			}
		}
	}
	delete : ret = api_obj_delete(s, "pods", r->ns, r->name, &o, NULL, &e);
	if (ret < 0 && ret != -ENOENT) {
		api_reply_err(r, ret, &e);
		return;
	}
	log_info("pod %s/%s: evicted", r->ns, r->name);
	api_reply_status(r, 201, "", NULL, NULL, "%s", "");
}
