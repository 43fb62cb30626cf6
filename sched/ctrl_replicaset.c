// SPDX-License-Identifier: Apache-2.0
/*
 * ReplicaSet: keep spec.replicas active pods matching the selector. Adopts orphans whose labels
 * match, releases owned pods whose labels stopped matching, deletes the least valuable pods first.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/ctrl-internal.h"

DEFINE_CLEANUP_FUNC(struct label_selector, label_selector_free)

#define ANN_DELETION_COST "controller.kubernetes.io/pod-deletion-cost"

/* What a pod is ranked by for deletion, computed once (the comparator sees no manager). */
struct pod_rank {
	cJSON *pod;
	const char *node, *uid, *name;
	bool ready;
	int phase; /* Pending 0 < Unknown 1 < Running 2 */
	int32_t cost; /* pod-deletion-cost */
	size_t colocated; /* active pods of the set on the same node, itself included */
	int64_t ready_at; /* s, 0: unknown (not ready, or no transition time) */
	int64_t created; /* s, 0: unknown */
	int ready_log, created_log; /* floor(log2(ns since)), -1: not in the past */
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
static int log_bucket(int64_t at_s, int64_t now_s)
{
	if (at_s >= now_s)
		return -1;
	return 63 - __builtin_clzll((unsigned long long)(now_s - at_s) * 1000000000ULL);
}

/* Kubernetes' afterOrZero + logarithmic comparison (rules 6 and 8): the zero time first, then
 * the later bucket (less time), then the smaller uid; 0 when the times (or uids) are equal. */
static int time_cmp(int64_t ta, int lga, int64_t tb, int lgb, const char *ua, const char *ub)
{
	if (ta == tb)
		return 0;
	if (!ta || !tb)
		return ta ? 1 : -1;
	if (lga != lgb)
		return lga < lgb ? -1 : 1;
	return strcmp(ua, ub);
}

/* Kubernetes' ActivePodsWithRanks.Less: the pod to delete first sorts first. */
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
		c = time_cmp(a->ready_at, a->ready_log, b->ready_at, b->ready_log, a->uid, b->uid);
		if (c)
			return c; /* ready for less time first */
	}
	if (a->restarts != b->restarts)
		return a->restarts > b->restarts ? -1 : 1; /* more restarts first */
	c = time_cmp(a->created, a->created_log, b->created, b->created_log, a->uid, b->uid);
	if (c)
		return c; /* newer first */
	return strcmp(a->name, b->name); /* Kubernetes leaves it open; one order on every node */
}

static int node_cmp(const void *pa, const void *pb)
{
	const struct pod_rank *const *a = pa, *const *b = pb;

	return strcmp((*a)->node, (*b)->node);
}

int ctrl_pods_deletion_order(struct ctrl_mgr *m, cJSON **pods, size_t npods)
{
	int64_t now_s = (int64_t)(ctrl_now_ms(m) / 1000);
	_cleanup_free_ struct pod_rank *r = calloc(npods + 1, sizeof(*r));
	_cleanup_free_ struct pod_rank **by_node = calloc(npods + 1, sizeof(*by_node));
	cJSON *cs;

	if (!r || !by_node)
		return -ENOMEM;
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
		p->cost = pod_deletion_cost(pods[i]);
		if (p->ready)
			p->ready_at = ctrl_pod_ready_since(pods[i]);
		if (util_rfc3339_parse(json_str(pods[i], "metadata.creationTimestamp", ""),
				       &p->created) < 0)
			p->created = 0;
		p->ready_log = log_bucket(p->ready_at, now_s);
		p->created_log = log_bucket(p->created, now_s);
		cJSON_ArrayForEach(cs, json_path(pods[i], "status.containerStatuses"))
		{
			int64_t n = json_int(cs, "restartCount", 0);
			if (n > p->restarts)
				p->restarts = n;
		}
		by_node[i] = p;
	}
	/* rank: the active pods on the same node (unscheduled ones share "", never compared) */
	qsort(by_node, npods, sizeof(*by_node), node_cmp);
	for (size_t i = 0, j; i < npods; i = j) {
		for (j = i; j < npods && streq(by_node[j]->node, by_node[i]->node); j++)
			;
		for (size_t k = i; k < j; k++)
			by_node[k]->colocated = j - i;
	}
	qsort(r, npods, sizeof(*r), pod_rank_cmp);
	for (size_t i = 0; i < npods; i++)
		pods[i] = r[i].pod;
	return 0;
}

/* Set or drop our controller reference on a pod (adopt / release). */
static int pod_set_owner(struct ctrl_mgr *m, cJSON *pod, const cJSON *rs, bool adopt)
{
	_cleanup_json_ cJSON *copy = cJSON_Duplicate(pod, 1);
	cJSON *md = json_path(copy, "metadata"), *refs, *r;
	const char *uid = json_str(rs, "metadata.uid", "");

	if (!md)
		return -EINVAL;
	refs = cJSON_GetObjectItemCaseSensitive(md, "ownerReferences");
	if (adopt) {
		if (!cJSON_IsArray(refs)) {
			cJSON_DeleteItemFromObject(md, "ownerReferences");
			refs = cJSON_AddArrayToObject(md, "ownerReferences");
		}
		cJSON_AddItemToArray(refs, ctrl_owner_ref_new("apps/v1", "ReplicaSet", rs, true));
	} else {
		int i = 0;
		cJSON_ArrayForEach(r, refs)
		{
			if (streq(json_str(r, "uid", ""), uid)) {
				cJSON_DeleteItemFromArray(refs, i);
				break;
			}
			i++;
		}
	}
	return ctrl_update(m, copy);
}

void ctrl_rs_count(struct ctrl_mgr *m, const cJSON *rs, cJSON *const *pods, size_t npods,
		   struct ctrl_rs_count *ret)
{
	int64_t now_s = (int64_t)(ctrl_now_ms(m) / 1000);
	int64_t min_ready = json_int(rs, "spec.minReadySeconds", 0);

	*ret = (struct ctrl_rs_count){ 0 };
	for (size_t i = 0; i < npods; i++) {
		const cJSON *pod = pods[i];

		if (!ctrl_pod_active(pod))
			continue;
		ret->replicas++;
		if (!ctrl_pod_ready(pod) || ctrl_node_down(m, json_str(pod, "spec.nodeName", NULL)))
			continue;
		ret->ready++;
		if (ctrl_pod_available(pod, min_ready, now_s)) {
			ret->available++;
		} else if (min_ready > 0) {
			uint64_t due = (uint64_t)(ctrl_pod_ready_since(pod) + min_ready - now_s) *
					       1000 + 100;
			if (!ret->recheck_ms || due < ret->recheck_ms)
				ret->recheck_ms = due;
		}
	}
}

int ctrl_rs_count_pods(struct ctrl_mgr *m, const cJSON *rs, struct ctrl_rs_count *ret)
{
	_cleanup_(label_selector_freep) struct label_selector *sel = NULL;
	_cleanup_json_ cJSON *pods = NULL;
	const char *uid = json_str(rs, "metadata.uid", "");
	cJSON *pod;
	int r;

	*ret = (struct ctrl_rs_count){ 0 };
	r = label_selector_from_json(json_path(rs, "spec.selector"), "spec.selector", &sel, NULL);
	if (r < 0 || label_selector_is_empty(sel))
		return 0;
	r = ctrl_list(m, "pods", json_str(rs, "metadata.namespace", "default"), sel, uid, &pods);
	if (r < 0)
		return r;
	size_t n = 0;
	_cleanup_free_ cJSON **mine = calloc((size_t)cJSON_GetArraySize(pods) + 1, sizeof(*mine));
	if (!mine)
		return -ENOMEM;
	cJSON_ArrayForEach(pod, pods)
	{
		if (ctrl_is_controlled_by(pod, uid) &&
		    label_selector_matches(sel, json_path(pod, "metadata.labels")))
			mine[n++] = pod;
	}
	ctrl_rs_count(m, rs, mine, n, ret);
	ret->labeled = (int64_t)n;
	return 0;
}

static int rs_reconcile(struct ctrl_mgr *m, const char *ns, const char *name, cJSON *rs)
{
	_cleanup_(label_selector_freep) struct label_selector *sel = NULL;
	_cleanup_json_ cJSON *pods = NULL;
	struct ctrl_rs_count cnt;
	const char *uid;
	cJSON *pod, *status;
	int64_t want;
	int r, nlabeled = 0, failed = 0;

	if (!rs || ctrl_terminating(rs))
		return 0; /* dependents are the garbage collector's */
	uid = json_str(rs, "metadata.uid", "");
	want = json_int(rs, "spec.replicas", 1);
	r = label_selector_from_json(json_path(rs, "spec.selector"), "spec.selector", &sel, NULL);
	if (r < 0 || label_selector_is_empty(sel))
		return 0; /* validation keeps these out; never select every pod */
	r = ctrl_list(m, "pods", ns, sel, uid, &pods);
	if (r < 0)
		return r;

	size_t cap = (size_t)cJSON_GetArraySize(pods) + 1, nactive = 0;
	_cleanup_free_ cJSON **active = calloc(cap, sizeof(*active));
	if (!active)
		return -ENOMEM;
	cJSON_ArrayForEach(pod, pods)
	{
		bool matches = label_selector_matches(sel, json_path(pod, "metadata.labels"));
		cJSON *ref = ctrl_controller_ref(pod);

		if (ref && !streq(json_str(ref, "uid", ""), uid))
			continue; /* someone else's */
		if (!ref) {
			if (!matches || ctrl_terminating(pod))
				continue;
			r = pod_set_owner(m, pod, rs, true);
			if (r < 0)
				continue;
		} else if (!matches) {
			pod_set_owner(m, pod, rs, false);
			continue;
		}
		nlabeled++;
		if (!ctrl_pod_active(pod))
			continue;
		active[nactive++] = pod;
	}

	if ((int64_t)nactive < want) {
		_cleanup_json_ cJSON *extra = NULL;
		for (int64_t i = (int64_t)nactive; i < want; i++) {
			r = ctrl_pod_create(m, json_path(rs, "spec.template"), ns, name,
					    ctrl_owner_ref_new("apps/v1", "ReplicaSet", rs, true),
					    extra);
			if (r < 0) {
				failed = r;
				break;
			}
		}
	} else if ((int64_t)nactive > want) {
		r = ctrl_pods_deletion_order(m, active, nactive);
		if (r < 0)
			return r;
		for (size_t i = 0; i < nactive - (size_t)want; i++) {
			r = ctrl_delete(m, "pods", ns, json_str(active[i], "metadata.name", ""), NULL);
			if (r < 0 && r != -ENOENT)
				failed = r;
		}
	}

	/* status from what exists now (created pods show up in the next pass) */
	ctrl_rs_count(m, rs, active, nactive, &cnt);
	if (cnt.recheck_ms)
		ctrl_enqueue(m, "replicasets.apps", ns, name, cnt.recheck_ms);
	status = cJSON_Duplicate(json_path(rs, "status"), 1);
	if (!cJSON_IsObject(status)) {
		cJSON_Delete(status);
		status = cJSON_CreateObject();
	}
	json_set_int(status, "replicas", cnt.replicas);
	json_set_int(status, "fullyLabeledReplicas", nlabeled);
	json_set_int(status, "readyReplicas", cnt.ready);
	json_set_int(status, "availableReplicas", cnt.available);
	json_set_int(status, "observedGeneration", json_int(rs, "metadata.generation", 1));
	r = ctrl_status_update(m, rs, status);
	/* the status is written either way; a pod that could not be created or deleted makes the
	 * reconcile fail, so the manager retries it */
	return failed < 0 ? failed : r;
}

const struct ctrl_ops ctrl_replicaset_ops = {
	.resource = "replicasets.apps",
	.kind = "ReplicaSet",
	.api_version = "apps/v1",
	.reconcile = rs_reconcile,
};
