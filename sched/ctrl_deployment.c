// SPDX-License-Identifier: Apache-2.0
/*
 * Deployment: one ReplicaSet per pod template (named <deployment>-<pod-template-hash>), rolled
 * with RollingUpdate (maxSurge/maxUnavailable against *available* pods, so readiness and
 * minReadySeconds gate progress) or Recreate; revisions in the deployment.kubernetes.io/revision
 * annotation (kubectl rollout history/undo read them), old ReplicaSets pruned to
 * revisionHistoryLimit, Progressing/Available conditions with progressDeadlineSeconds.
 */
#include <inttypes.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "api/object.h"
#include "sched/ctrl-internal.h"

#define ANN_REVISION "deployment.kubernetes.io/revision"
#define ANN_DESIRED "deployment.kubernetes.io/desired-replicas"
#define ANN_MAX "deployment.kubernetes.io/max-replicas"
#define ANN_CHANGE_CAUSE "kubernetes.io/change-cause"
#define LABEL_HASH "pod-template-hash"

DEFINE_CLEANUP_FUNC(struct label_selector, label_selector_free)

static int64_t rs_revision(const cJSON *rs)
{
	return strtoll(json_key_str(rs, "metadata.annotations", ANN_REVISION, "0"), NULL, 10);
}

static int64_t rs_spec(const cJSON *rs)
{
	return json_int(rs, "spec.replicas", 0);
}

static int64_t rs_stat(const cJSON *rs, const char *field)
{
	char path[64];
	snprintf(path, sizeof(path), "status.%s", field);
	return json_int(rs, path, 0);
}

/*
 * Available pods of a ReplicaSet, never more than it is scaled to: right after we scale an old
 * ReplicaSet down, its status still counts the pods being removed, and trusting that would let
 * the next pass remove more than maxUnavailable allows.
 */
static int64_t rs_avail(const cJSON *rs)
{
	int64_t a = rs_stat(rs, "availableReplicas"), spec = rs_spec(rs);
	return a < spec ? a : spec;
}

/*
 * A ReplicaSet whose status was last written by a node that is down (its owner died, and the
 * new owner waits out the handover) says what its pods were, not what they are: the dead node's
 * pods still look ready, pods deleted since still count. Count its pods here instead, as its
 * owner would (docs/workloads.md, "Rolling through a node's death").
 */
static int rs_status_refresh(struct ctrl_mgr *m, cJSON *rs)
{
	struct ctrl_rs_count cnt;
	cJSON *st;
	int r;

	if (!ctrl_status_writer_down(m, "replicasets.apps", json_str(rs, "metadata.namespace", ""),
				     json_str(rs, "metadata.name", "")))
		return 0;
	r = ctrl_rs_count_pods(m, rs, &cnt);
	if (r < 0)
		return r;
	st = json_path_obj(rs, "status");
	json_set_int(st, "replicas", cnt.replicas);
	json_set_int(st, "readyReplicas", cnt.ready);
	json_set_int(st, "availableReplicas", cnt.available);
	return 1;
}

/*
 * What a ReplicaSet occupies of maxSurge: its spec, or more while pods of a scale-down are still
 * active (its owner has not deleted them yet, or not reported so). Kubernetes counts the spec
 * alone, its ReplicaSet controller lagging the Deployment controller by milliseconds; here they
 * run on different nodes and an owner can lag by the handover's settle window.
 */
static int64_t rs_occupied(const cJSON *rs)
{
	int64_t spec = rs_spec(rs), st = rs_stat(rs, "replicas");
	return st > spec ? st : spec;
}

static int rs_scale(struct ctrl_mgr *m, const cJSON *rs, int64_t replicas, const cJSON *d,
		    int64_t max_total)
{
	_cleanup_json_ cJSON *c = cJSON_Duplicate(rs, 1);
	cJSON *ann;
	char buf[32];

	if (!c)
		return -ENOMEM;
	json_set_int(json_path_obj(c, "spec"), "replicas", replicas);
	ann = json_path_obj(c, "metadata.annotations");
	snprintf(buf, sizeof(buf), "%" PRId64, json_int(d, "spec.replicas", 1));
	json_set_str(ann, ANN_DESIRED, buf);
	snprintf(buf, sizeof(buf), "%" PRId64, max_total);
	json_set_str(ann, ANN_MAX, buf);
	return ctrl_update(m, c);
}

/* Oldest revision first. */
static int rs_rev_cmp(const void *pa, const void *pb)
{
	int64_t a = rs_revision(*(const cJSON *const *)pa), b = rs_revision(*(const cJSON *const *)pb);
	return a < b ? -1 : a > b;
}

static int rs_set_revision(struct ctrl_mgr *m, const cJSON *rs, int64_t rev, const cJSON *d)
{
	_cleanup_json_ cJSON *c = cJSON_Duplicate(rs, 1);
	char buf[32];

	if (!c)
		return -ENOMEM;
	snprintf(buf, sizeof(buf), "%" PRId64, rev);
	json_set_str(json_path_obj(c, "metadata.annotations"), ANN_REVISION, buf);
	if (json_key_str(d, "metadata.annotations", ANN_CHANGE_CAUSE, NULL))
		json_set_str(json_path_obj(c, "metadata.annotations"), ANN_CHANGE_CAUSE,
			     json_key_str(d, "metadata.annotations", ANN_CHANGE_CAUSE, ""));
	return ctrl_update(m, c);
}

static int rs_create(struct ctrl_mgr *m, const cJSON *d, const char *ns, const char *name,
		     const char *hash, int64_t replicas, int64_t rev, int64_t max_total)
{
	_cleanup_json_ cJSON *rs = cJSON_CreateObject();
	cJSON *md, *spec, *tmpl, *sel, *ann, *refs;
	char rsname[300], buf[32];
	struct err e = { 0 };

	if (!rs)
		return -ENOMEM;
	snprintf(rsname, sizeof(rsname), "%s-%s", name, hash);
	cJSON_AddStringToObject(rs, "apiVersion", "apps/v1");
	cJSON_AddStringToObject(rs, "kind", "ReplicaSet");
	md = cJSON_AddObjectToObject(rs, "metadata");
	cJSON_AddStringToObject(md, "name", rsname);
	cJSON_AddStringToObject(md, "namespace", ns);
	cJSON_AddItemToObject(md, "labels",
			      cJSON_Duplicate(json_path(d, "spec.template.metadata.labels"), 1));
	json_set_str(json_path_obj(md, "labels"), LABEL_HASH, hash);
	ann = cJSON_AddObjectToObject(md, "annotations");
	snprintf(buf, sizeof(buf), "%" PRId64, rev);
	cJSON_AddStringToObject(ann, ANN_REVISION, buf);
	snprintf(buf, sizeof(buf), "%" PRId64, json_int(d, "spec.replicas", 1));
	cJSON_AddStringToObject(ann, ANN_DESIRED, buf);
	snprintf(buf, sizeof(buf), "%" PRId64, max_total);
	cJSON_AddStringToObject(ann, ANN_MAX, buf);
	if (json_key_str(d, "metadata.annotations", ANN_CHANGE_CAUSE, NULL))
		cJSON_AddStringToObject(ann, ANN_CHANGE_CAUSE,
					json_key_str(d, "metadata.annotations", ANN_CHANGE_CAUSE, ""));
	refs = cJSON_AddArrayToObject(md, "ownerReferences");
	cJSON_AddItemToArray(refs, ctrl_owner_ref_new("apps/v1", "Deployment", d, true));
	spec = cJSON_AddObjectToObject(rs, "spec");
	cJSON_AddNumberToObject(spec, "replicas", (double)replicas);
	cJSON_AddNumberToObject(spec, "minReadySeconds",
				(double)json_int(d, "spec.minReadySeconds", 0));
	sel = cJSON_Duplicate(json_path(d, "spec.selector"), 1);
	json_set_str(json_path_obj(sel, "matchLabels"), LABEL_HASH, hash);
	cJSON_AddItemToObject(spec, "selector", sel);
	tmpl = cJSON_Duplicate(json_path(d, "spec.template"), 1);
	json_set_str(json_path_obj(tmpl, "metadata.labels"), LABEL_HASH, hash);
	cJSON_AddItemToObject(spec, "template", tmpl);
	return api_obj_create(ctrl_store(m), rs, NULL, &e);
}

static int d_reconcile(struct ctrl_mgr *m, const char *ns, const char *name, cJSON *d)
{
	_cleanup_(label_selector_freep) struct label_selector *sel = NULL;
	_cleanup_json_ cJSON *all = NULL;
	int64_t now_s = (int64_t)(ctrl_now_ms(m) / 1000);
	const char *uid, *strategy;
	cJSON *rs, *newrs = NULL, *status;
	char hash[16], newname[300];
	int64_t replicas, surge, unavail, max_rev = 0, total_spec = 0, total_avail = 0;
	int64_t total_ready = 0, total_status = 0, old_active = 0, total_occupied = 0;
	bool paused, created = false;
	int r;

	if (!d || ctrl_terminating(d))
		return 0;
	uid = json_str(d, "metadata.uid", "");
	replicas = json_int(d, "spec.replicas", 1);
	paused = json_bool(d, "spec.paused", false);
	strategy = json_str(d, "spec.strategy.type", "RollingUpdate");
	surge = ctrl_int_or_percent(json_path(d, "spec.strategy.rollingUpdate.maxSurge"), replicas,
				    true, (replicas * 25 + 99) / 100);
	unavail = ctrl_int_or_percent(json_path(d, "spec.strategy.rollingUpdate.maxUnavailable"),
				      replicas, false, replicas * 25 / 100);
	if (streq(strategy, "Recreate"))
		surge = 0, unavail = replicas;
	else if (surge == 0 && unavail == 0)
		unavail = 1;

	r = label_selector_from_json(json_path(d, "spec.selector"), "spec.selector", &sel, NULL);
	if (r < 0 || label_selector_is_empty(sel))
		return 0;
	r = ctrl_list(m, "replicasets.apps", ns, sel, uid, &all);
	if (r < 0)
		return r;

	ctrl_template_hash(json_path(d, "spec.template"), 0, hash, sizeof(hash));
	snprintf(newname, sizeof(newname), "%s-%s", name, hash);

	size_t cap = (size_t)cJSON_GetArraySize(all) + 1, nold = 0;
	_cleanup_free_ cJSON **old = calloc(cap, sizeof(*old));
	if (!old)
		return -ENOMEM;
	cJSON_ArrayForEach(rs, all)
	{
		cJSON *ref = ctrl_controller_ref(rs);
		if (ref && !streq(json_str(ref, "uid", ""), uid))
			continue;
		if (!ref) {
			/* adopt a matching orphan ReplicaSet */
			cJSON *md = json_path(rs, "metadata");
			cJSON *refs = cJSON_GetObjectItemCaseSensitive(md, "ownerReferences");
			if (ctrl_terminating(rs))
				continue;
			if (!cJSON_IsArray(refs)) {
				cJSON_DeleteItemFromObject(md, "ownerReferences");
				refs = cJSON_AddArrayToObject(md, "ownerReferences");
			}
			cJSON_AddItemToArray(refs,
					     ctrl_owner_ref_new("apps/v1", "Deployment", d, true));
			if (ctrl_update(m, rs) < 0)
				continue;
		}
		r = rs_status_refresh(m, rs);
		if (r < 0)
			return r;
		total_spec += rs_spec(rs);
		total_occupied += rs_occupied(rs);
		total_avail += rs_avail(rs);
		total_ready += rs_stat(rs, "readyReplicas");
		total_status += rs_stat(rs, "replicas");
		if (streq(json_str(rs, "metadata.name", ""), newname) ||
		    streq(json_key_str(rs, "metadata.labels", LABEL_HASH, ""), hash)) {
			newrs = rs;
			continue;
		}
		if (rs_revision(rs) > max_rev)
			max_rev = rs_revision(rs);
		old_active += rs_stat(rs, "replicas");
		old[nold++] = rs;
	}
	qsort(old, nold, sizeof(*old), rs_rev_cmp);

	int64_t max_total = replicas + surge;
	if (!newrs && !paused) {
		int64_t start;
		if (streq(strategy, "Recreate"))
			start = old_active ? 0 : replicas;
		else if (nold == 0)
			start = replicas;
		else
			start = total_occupied >= max_total ? 0
							    : (replicas < max_total - total_occupied
								       ? replicas
								       : max_total - total_occupied);
		r = rs_create(m, d, ns, name, hash, start, max_rev + 1, max_total);
		if (r < 0 && r != -EEXIST)
			return r;
		created = true;
		total_spec += start;
		total_occupied += start;
		/* the new RS's own events bring us back for the next step */
	} else if (newrs && rs_revision(newrs) <= max_rev) {
		/* rolled back to an older template: it becomes the newest revision */
		rs_set_revision(m, newrs, max_rev + 1, d);
	}

	if (newrs && paused) {
		/* paused: only follow scale changes when no rollout is in flight */
		if (nold == 0 && rs_spec(newrs) != replicas)
			rs_scale(m, newrs, replicas, d, max_total);
	} else if (newrs && streq(strategy, "Recreate")) {
		bool old_up = false;
		for (size_t i = 0; i < nold; i++) {
			if (rs_spec(old[i]) > 0)
				rs_scale(m, old[i], 0, d, max_total);
			if (rs_stat(old[i], "replicas") > 0 || rs_spec(old[i]) > 0)
				old_up = true;
		}
		if (!old_up && rs_spec(newrs) != replicas)
			rs_scale(m, newrs, replicas, d, max_total);
	} else if (newrs) {
		int64_t cur = rs_spec(newrs), want = cur;
		/* scale up the new RS within maxSurge, counting pods still being scaled down */
		if (cur > replicas)
			want = replicas;
		else if (cur < replicas && total_occupied < max_total) {
			int64_t up = max_total - total_occupied;
			if (up > replicas - cur)
				up = replicas - cur;
			want = cur + up;
		}
		if (want != cur) {
			rs_scale(m, newrs, want, d, max_total);
			total_spec += want - cur;
		}
		/* scale down old RSs within maxUnavailable, counting only available pods */
		int64_t min_avail = replicas - unavail;
		int64_t new_unavail = rs_spec(newrs) - rs_avail(newrs);
		if (new_unavail < 0)
			new_unavail = 0;
		int64_t budget = total_spec - min_avail - new_unavail;
		/* unhealthy old replicas first: they cost no availability */
		for (size_t i = 0; i < nold && budget > 0; i++) {
			int64_t spec = rs_spec(old[i]);
			int64_t unhealthy = spec - rs_avail(old[i]);
			if (unhealthy <= 0 || spec == 0)
				continue;
			int64_t down = unhealthy < budget ? unhealthy : budget;
			rs_scale(m, old[i], spec - down, d, max_total);
			json_set_int(json_path_obj(old[i], "spec"), "replicas", spec - down);
			budget -= down;
			total_spec -= down;
		}
		int64_t avail_budget = total_avail - min_avail;
		for (size_t i = 0; i < nold && avail_budget > 0; i++) {
			int64_t spec = rs_spec(old[i]);
			if (spec == 0)
				continue;
			int64_t down = spec < avail_budget ? spec : avail_budget;
			rs_scale(m, old[i], spec - down, d, max_total);
			avail_budget -= down;
		}
	}

	/* prune old, empty ReplicaSets beyond revisionHistoryLimit (oldest first) */
	int64_t limit = json_int(d, "spec.revisionHistoryLimit", 10);
	size_t empty = 0;
	for (size_t i = 0; i < nold; i++)
		if (rs_spec(old[i]) == 0 && rs_stat(old[i], "replicas") == 0)
			empty++;
	for (size_t i = 0; i < nold && (int64_t)empty > limit; i++)
		if (rs_spec(old[i]) == 0 && rs_stat(old[i], "replicas") == 0) {
			ctrl_delete(m, "replicasets.apps", ns,
				    json_str(old[i], "metadata.name", ""), NULL);
			empty--;
		}

	/* status */
	int64_t updated = newrs ? rs_stat(newrs, "replicas") : 0;
	cJSON *prev = json_path(d, "status");
	status = cJSON_Duplicate(prev, 1);
	if (!cJSON_IsObject(status)) {
		cJSON_Delete(status);
		status = cJSON_CreateObject();
	}
	bool progress = updated > json_int(prev, "updatedReplicas", 0) ||
			total_avail > json_int(prev, "availableReplicas", 0) ||
			total_ready > json_int(prev, "readyReplicas", 0) || created ||
			json_int(prev, "observedGeneration", 0) != json_int(d, "metadata.generation", 1);
	json_set_int(status, "observedGeneration", json_int(d, "metadata.generation", 1));
	json_set_int(status, "replicas", total_status);
	json_set_int(status, "updatedReplicas", updated);
	json_set_int(status, "readyReplicas", total_ready);
	json_set_int(status, "availableReplicas", total_avail);
	json_set_int(status, "unavailableReplicas",
		     replicas - total_avail > 0 ? replicas - total_avail : 0);
	if (total_avail >= replicas - unavail)
		ctrl_condition_set(status, "Available", "True", "MinimumReplicasAvailable",
				   "Deployment has minimum availability.", now_s);
	else
		ctrl_condition_set(status, "Available", "False", "MinimumReplicasUnavailable",
				   "Deployment does not have minimum availability.", now_s);

	char msg[512];
	bool complete = newrs && updated == replicas && total_avail >= replicas &&
			total_status == replicas && rs_spec(newrs) == replicas;
	int64_t deadline = json_int(d, "spec.progressDeadlineSeconds", 600);
	if (paused) {
		ctrl_condition_set(status, "Progressing", "Unknown", "DeploymentPaused",
				   "Deployment is paused", now_s);
	} else if (complete) {
		snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" has successfully progressed.", newname);
		ctrl_condition_set(status, "Progressing", "True", "NewReplicaSetAvailable", msg,
				   now_s);
	} else if (created) {
		snprintf(msg, sizeof(msg), "Created new replica set \"%s\"", newname);
		ctrl_condition_set(status, "Progressing", "True", "NewReplicaSetCreated", msg, now_s);
	} else {
		const cJSON *pc = ctrl_condition_get(status, "Progressing");
		int64_t last = 0;
		if (pc)
			util_rfc3339_parse(json_str(pc, "lastUpdateTime", ""), &last);
		if (progress || !pc) {
			snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" is progressing.", newname);
			ctrl_condition_set(status, "Progressing", "True", "ReplicaSetUpdated", msg,
					   now_s);
			cJSON *c = (cJSON *)ctrl_condition_get(status, "Progressing");
			char now[32];
			util_rfc3339(now_s, now, sizeof(now));
			json_set_str(c, "lastUpdateTime", now);
			last = now_s;
		} else if (last + deadline <= now_s &&
			   !streq(json_str(pc, "reason", ""), "ProgressDeadlineExceeded")) {
			snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" has timed out progressing.",
				 newname);
			ctrl_condition_set(status, "Progressing", "False",
					   "ProgressDeadlineExceeded", msg, now_s);
		}
		if (last + deadline > now_s)
			ctrl_enqueue(m, "deployments.apps", ns, name,
				     (uint64_t)(last + deadline - now_s) * 1000 + 100);
	}
	return ctrl_status_update(m, d, status);
}

const struct ctrl_ops ctrl_deployment_ops = {
	.resource = "deployments.apps",
	.kind = "Deployment",
	.api_version = "apps/v1",
	.reconcile = d_reconcile,
};
