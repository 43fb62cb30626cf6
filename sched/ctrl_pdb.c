// SPDX-License-Identifier: Apache-2.0
/*
 * The disruption controller: keeps each PodDisruptionBudget's status (expectedPods,
 * desiredHealthy, currentHealthy, disruptionsAllowed, the DisruptionAllowed condition) current
 * as its pods change, and forgets evicted pods (status.disruptedPods) once they are gone or
 * after two minutes, as Kubernetes' does. The Eviction subresource (api/eviction.c) decides
 * from the same counts (sched/pdb.h) at the moment of each request.
 */
#include <string.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/ctrl-internal.h"
#include "sched/pdb.h"

#define DISRUPTED_TTL_S 120

static int pdb_reconcile(struct ctrl_mgr *m, const char *ns, const char *name, cJSON *pdb)
{
	_cleanup_json_ cJSON *pods = NULL;
	struct pdb_counts c;
	int64_t now_s = (int64_t)(ctrl_now_ms(m) / 1000), next_s = 0;
	const cJSON *d, *p, *old;
	cJSON *st, *dis, *conds, *cond;
	char ts[40];
	int r;

	if (!pdb || ctrl_terminating(pdb))
		return 0;
	r = pdb_pods(ctrl_store(m), pdb, &pods);
	if (r < 0)
		return 0; /* a selector validation lets through but we cannot parse: nothing */
	st = cJSON_CreateObject();
	if (!st)
		return -ENOMEM;
	/* evicted pods stay out of currentHealthy until they are gone, at most two minutes */
	dis = cJSON_AddObjectToObject(st, "disruptedPods");
	cJSON_ArrayForEach(d, json_path(pdb, "status.disruptedPods"))
	{
		int64_t t = 0;
		bool present = false;
		if (!cJSON_IsString(d) || util_rfc3339_parse(d->valuestring, &t) < 0)
			continue;
		cJSON_ArrayForEach(p, pods)
		{
			if (streq(json_str(p, "metadata.name", ""), d->string) &&
			    !json_path(p, "metadata.deletionTimestamp"))
				present = true;
		}
		if (!present || t + DISRUPTED_TTL_S <= now_s)
			continue;
		cJSON_AddStringToObject(dis, d->string, d->valuestring);
		if (!next_s || t + DISRUPTED_TTL_S < next_s)
			next_s = t + DISRUPTED_TTL_S;
	}
	cJSON *view = cJSON_Duplicate(pdb, true);
	if (!view) {
		cJSON_Delete(st);
		return -ENOMEM;
	}
	json_set(json_path_obj(view, "status"), "disruptedPods", cJSON_Duplicate(dis, true));
	r = pdb_count(view, pods, pdb_expected(ctrl_store(m), pdb, pods), &c);
	cJSON_Delete(view);
	if (r < 0) {
		cJSON_Delete(st);
		return 0;
	}
	cJSON_AddNumberToObject(st, "observedGeneration",
				(double)json_int(pdb, "metadata.generation", 1));
	cJSON_AddNumberToObject(st, "disruptionsAllowed", (double)c.allowed);
	cJSON_AddNumberToObject(st, "currentHealthy", (double)c.healthy);
	cJSON_AddNumberToObject(st, "desiredHealthy", (double)c.desired);
	cJSON_AddNumberToObject(st, "expectedPods", (double)c.expected);
	conds = cJSON_AddArrayToObject(st, "conditions");
	cond = cJSON_CreateObject();
	cJSON_AddStringToObject(cond, "type", "DisruptionAllowed");
	cJSON_AddStringToObject(cond, "status", c.allowed > 0 ? "True" : "False");
	cJSON_AddStringToObject(cond, "reason",
				c.allowed > 0 ? "SufficientPods" : "InsufficientPods");
	cJSON_AddStringToObject(cond, "message", "");
	cJSON_AddNumberToObject(cond, "observedGeneration",
				(double)json_int(pdb, "metadata.generation", 1));
	old = ctrl_condition_get(json_path(pdb, "status"), "DisruptionAllowed");
	if (old && streq(json_str(old, "status", ""), c.allowed > 0 ? "True" : "False")) {
		cJSON_AddStringToObject(cond, "lastTransitionTime",
					json_str(old, "lastTransitionTime", ""));
	} else {
		util_rfc3339(now_s, ts, sizeof(ts));
		cJSON_AddStringToObject(cond, "lastTransitionTime", ts);
	}
	cJSON_AddItemToArray(conds, cond);
	r = ctrl_status_update(m, pdb, st);
	if (r >= 0 && next_s)
		ctrl_enqueue(m, "poddisruptionbudgets.policy", ns, name,
			     (uint64_t)(next_s - now_s) * 1000);
	return r;
}

static int enqueue_one(struct store_obj *o, void *userdata)
{
	ctrl_enqueue(userdata, "poddisruptionbudgets.policy", o->ns, o->name, 0);
	return 0;
}

void ctrl_pdb_on_pod(struct ctrl_mgr *m, const struct store_event *ev)
{
	/* the budgets of the pod's namespace (few): each checks its own selector */
	store_list(ctrl_store(m), "poddisruptionbudgets.policy", ev->obj->ns, NULL, NULL,
		   enqueue_one, m);
}

const struct ctrl_ops ctrl_pdb_ops = {
    .resource = "poddisruptionbudgets.policy",
    .kind = "PodDisruptionBudget",
    .api_version = "policy/v1",
    .reconcile = pdb_reconcile,
};
