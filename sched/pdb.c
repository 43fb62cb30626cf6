// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "lib/json.h"
#include "lib/macro.h"
#include "api/selector.h"
#include "sched/pdb.h"
#include "sched/store.h"

DEFINE_CLEANUP_FUNC(struct label_selector, label_selector_free)

bool pdb_pod_healthy(const cJSON *pod)
{
	const cJSON *c;

	if (json_path(pod, "metadata.deletionTimestamp"))
		return false;
	cJSON_ArrayForEach(c, json_path(pod, "status.conditions"))
	{
		if (streq(json_str(c, "type", ""), "Ready"))
			return streq(json_str(c, "status", ""), "True");
	}
	return false;
}

/* An intOrString: an integer, or "N%" of total rounded up. -1 if malformed. */
static int64_t int_or_percent(const cJSON *v, int64_t total)
{
	char *end;
	long pct;

	if (cJSON_IsNumber(v))
		return (int64_t)v->valuedouble;
	if (!cJSON_IsString(v))
		return -1;
	pct = strtol(v->valuestring, &end, 10);
	if (end == v->valuestring || strcmp(end, "%") || pct < 0)
		return -1;
	return (pct * total + 99) / 100;
}

int pdb_count(const cJSON *pdb, const cJSON *pods, int64_t expected, struct pdb_counts *ret)
{
	const cJSON *min = json_path(pdb, "spec.minAvailable");
	const cJSON *max = json_path(pdb, "spec.maxUnavailable");
	const cJSON *disrupted = json_path(pdb, "status.disruptedPods"), *p;
	struct pdb_counts c = {0};
	int64_t v;

	if (expected < 0)
		expected = cJSON_GetArraySize(pods);
	c.expected = expected;
	if (min) {
		v = int_or_percent(min, expected);
		if (v < 0)
			return -EINVAL;
		c.desired = v;
	} else if (max) {
		v = int_or_percent(max, expected);
		if (v < 0)
			return -EINVAL;
		c.desired = expected - v > 0 ? expected - v : 0;
	} else {
		return -EINVAL;
	}
	cJSON_ArrayForEach(p, pods)
	{
		if (pdb_pod_healthy(p) &&
		    !cJSON_GetObjectItemCaseSensitive(disrupted, json_str(p, "metadata.name", "")))
			c.healthy++;
	}
	c.allowed = c.healthy - c.desired > 0 ? c.healthy - c.desired : 0;
	*ret = c;
	return 0;
}

struct pods_ctx {
	const struct label_selector *sel;
	cJSON *out;
};

static int pod_collect(struct store_obj *o, void *ud)
{
	struct pods_ctx *c = ud;
	cJSON *p;

	if (!label_selector_matches(c->sel, o->labels))
		return 0;
	if (o->phase && (streq(o->phase, "Succeeded") || streq(o->phase, "Failed")))
		return 0;
	p = store_obj_parse(o);
	if (p)
		cJSON_AddItemToArray(c->out, p);
	return 0;
}

int pdb_pods(struct store *s, const cJSON *pdb, cJSON **ret)
{
	_cleanup_(label_selector_freep) struct label_selector *sel = NULL;
	struct pods_ctx c;
	int r;

	r = label_selector_from_json(json_path(pdb, "spec.selector"), "spec.selector", &sel, NULL);
	if (r < 0)
		return r;
	c.sel = sel;
	c.out = cJSON_CreateArray();
	if (!c.out)
		return -ENOMEM;
	/* a budget with an empty selector selects nothing (policy/v1 semantics for a null one;
	 * an empty one selects every pod of the namespace) */
	if (json_path(pdb, "spec.selector"))
		store_list(s, "pods", json_str(pdb, "metadata.namespace", ""), NULL, NULL,
			   pod_collect, &c);
	*ret = c.out;
	return 0;
}

int64_t pdb_expected(struct store *s, const cJSON *pdb, const cJSON *pods)
{
	const cJSON *p, *ref;
	cJSON *seen = cJSON_CreateObject();
	int64_t n = 0;

	if (cJSON_IsNumber(json_path(pdb, "spec.minAvailable")) || !seen) {
		cJSON_Delete(seen);
		return cJSON_GetArraySize(pods);
	}
	cJSON_ArrayForEach(p, pods)
	{
		const cJSON *ctl = NULL;
		cJSON_ArrayForEach(ref, json_path(p, "metadata.ownerReferences"))
		{
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller")))
				ctl = ref;
		}
		const char *kind = json_str(ctl, "kind", ""), *uid = json_str(ctl, "uid", "");
		struct store_obj *o = NULL;
		if (!ctl || !streq(kind, "ReplicaSet")) {
			n++;
			continue;
		}
		if (cJSON_GetObjectItemCaseSensitive(seen, uid))
			continue;
		cJSON_AddBoolToObject(seen, uid, true);
		if (store_get(s, "replicasets.apps", json_str(p, "metadata.namespace", ""),
			      json_str(ctl, "name", ""), &o) < 0) {
			n++;
			continue;
		}
		cJSON *rs = store_obj_parse(o);
		store_obj_unref(o);
		n += json_int(rs, "spec.replicas", 1);
		cJSON_Delete(rs);
	}
	cJSON_Delete(seen);
	return n;
}
