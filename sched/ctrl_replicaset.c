// SPDX-License-Identifier: Apache-2.0
/*
 * ReplicaSet: keep spec.replicas active pods matching the selector. Adopts orphans whose labels
 * match, releases owned pods whose labels stopped matching, deletes the least valuable pods first.
 */
#include <string.h>

#include "lib/macro.h"
#include "sched/ctrl-internal.h"

DEFINE_CLEANUP_FUNC(struct label_selector, label_selector_free)

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
		if (!ctrl_pod_ready_live(m, pod))
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

/*
 * Kubernetes' getIndirectlyRelatedPods, what a scale-down ranks doubled-up pods by: the pods the
 * selector of each ReplicaSet with rs's controller selects (rs's own included), each once; none
 * for a ReplicaSet without a controller.
 */
static int rs_related_pods(struct ctrl_mgr *m, const cJSON *rs, const char *ns, cJSON **ret)
{
	const cJSON *ref = ctrl_controller_ref(rs);
	_cleanup_json_ cJSON *sibs = NULL, *out = NULL;
	const char *owner;
	size_t nsel = 0;
	cJSON *sib;
	int r;

	*ret = NULL;
	if (!ref)
		return 0;
	owner = json_str(ref, "uid", "");
	r = ctrl_list(m, "replicasets.apps", ns, NULL, owner, &sibs);
	if (r < 0)
		return r;
	out = cJSON_CreateArray();
	_cleanup_free_ struct label_selector **sels =
		calloc((size_t)cJSON_GetArraySize(sibs) + 1, sizeof(*sels));
	if (!out || !sels)
		return -ENOMEM;
	cJSON_ArrayForEach(sib, sibs)
	{
		_cleanup_json_ cJSON *pods = NULL;
		struct label_selector *sel = NULL;
		cJSON *pod, *next;

		if (!ctrl_is_controlled_by(sib, owner) ||
		    label_selector_from_json(json_path(sib, "spec.selector"), "spec.selector", &sel,
					     NULL) < 0)
			continue;
		if (label_selector_is_empty(sel)) { /* validation keeps these out */
			label_selector_free(sel);
			continue;
		}
		sels[nsel++] = sel;
		r = ctrl_list(m, "pods", ns, sel, NULL, &pods);
		if (r < 0)
			break;
		for (pod = pods->child; pod; pod = next) {
			bool seen = false;

			next = pod->next;
			/* selected by an earlier ReplicaSet: listed already */
			for (size_t i = 0; i + 1 < nsel && !seen; i++)
				seen = label_selector_matches(sels[i], json_path(pod, "metadata.labels"));
			if (!seen)
				cJSON_AddItemToArray(out, cJSON_DetachItemViaPointer(pods, pod));
		}
	}
	for (size_t i = 0; i < nsel; i++)
		label_selector_free(sels[i]);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(out);
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
		_cleanup_json_ cJSON *related = NULL;

		r = rs_related_pods(m, rs, ns, &related);
		if (r < 0)
			return r;
		r = ctrl_pods_deletion_order(m, active, nactive, related, true);
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
