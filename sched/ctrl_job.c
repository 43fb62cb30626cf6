// SPDX-License-Identifier: Apache-2.0
/*
 * Job: run pods until `completions` succeed (parallelism at a time), fail after backoffLimit
 * failed pods or activeDeadlineSeconds, delete itself ttlSecondsAfterFinished after finishing.
 * Replacement pods after failures wait an exponential back-off (10 s doubling, 6 min cap).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/ctrl-internal.h"

#define JOB_BACKOFF_BASE_S 10
#define JOB_BACKOFF_MAX_S 360

static bool job_finished(const cJSON *job, const char **which)
{
	static const char *const types[] = { "Complete", "Failed" };

	for (int i = 0; i < 2; i++) {
		const cJSON *c = ctrl_condition_get(json_path(job, "status"), types[i]);
		if (c && streq(json_str(c, "status", ""), "True")) {
			if (which)
				*which = types[i];
			return true;
		}
	}
	return false;
}

static int64_t pod_finished_at(const cJSON *pod)
{
	int64_t t = 0, best = 0;
	cJSON *cs;

	cJSON_ArrayForEach(cs, json_path(pod, "status.containerStatuses"))
	{
		if (util_rfc3339_parse(json_str(cs, "state.terminated.finishedAt", ""), &t) == 0 &&
		    t > best)
			best = t;
	}
	return best;
}

static int job_reconcile(struct ctrl_mgr *m, const char *ns, const char *name, cJSON *job)
{
	_cleanup_json_ cJSON *pods = NULL;
	int64_t now_s = (int64_t)(ctrl_now_ms(m) / 1000);
	const char *uid, *fin = NULL;
	cJSON *pod, *status;
	int64_t completions, parallelism, backoff_limit, deadline, start = 0;
	int64_t active = 0, succeeded = 0, failed = 0, last_fail = 0;
	char now[32];
	int r;

	if (!job || ctrl_terminating(job))
		return 0;
	uid = json_str(job, "metadata.uid", "");
	util_rfc3339(now_s, now, sizeof(now));

	if (job_finished(job, &fin)) {
		cJSON *ttl = json_path(job, "spec.ttlSecondsAfterFinished");
		int64_t done = 0;
		if (!cJSON_IsNumber(ttl))
			return 0;
		util_rfc3339_parse(json_str(job, "status.completionTime", ""), &done);
		if (!done) {
			const cJSON *c = ctrl_condition_get(json_path(job, "status"), fin);
			util_rfc3339_parse(json_str(c, "lastTransitionTime", ""), &done);
		}
		if (done + (int64_t)ttl->valuedouble <= now_s)
			return ctrl_delete(m, "jobs.batch", ns, name, "Background");
		ctrl_enqueue(m, "jobs.batch", ns, name,
			     (uint64_t)(done + (int64_t)ttl->valuedouble - now_s) * 1000 + 100);
		return 0;
	}

	completions = json_int(job, "spec.completions", -1); /* -1: work queue style */
	parallelism = json_int(job, "spec.parallelism", 1);
	backoff_limit = json_int(job, "spec.backoffLimit", 6);
	deadline = json_int(job, "spec.activeDeadlineSeconds", -1);

	r = ctrl_list(m, "pods", ns, NULL, uid, &pods);
	if (r < 0)
		return r;
	_cleanup_free_ cJSON **act = calloc((size_t)cJSON_GetArraySize(pods) + 1, sizeof(*act));
	if (!act)
		return -ENOMEM;
	cJSON_ArrayForEach(pod, pods)
	{
		if (!ctrl_is_controlled_by(pod, uid))
			continue;
		const char *phase = json_str(pod, "status.phase", "Pending");
		if (streq(phase, "Succeeded"))
			succeeded++;
		else if (streq(phase, "Failed")) {
			failed++;
			if (pod_finished_at(pod) > last_fail)
				last_fail = pod_finished_at(pod);
		} else if (!ctrl_terminating(pod))
			act[active++] = pod;
		/* OnFailure restarts in place: count them toward the back-off limit */
		cJSON *cs;
		if (streq(json_str(job, "spec.template.spec.restartPolicy", ""), "OnFailure"))
			cJSON_ArrayForEach(cs, json_path(pod, "status.containerStatuses")) failed +=
				json_int(cs, "restartCount", 0);
	}

	status = cJSON_Duplicate(json_path(job, "status"), 1);
	if (!cJSON_IsObject(status)) {
		cJSON_Delete(status);
		status = cJSON_CreateObject();
	}
	if (!json_str(status, "startTime", NULL))
		json_set_str(status, "startTime", now);
	util_rfc3339_parse(json_str(status, "startTime", ""), &start);

	const char *fail_reason = NULL;
	char fail_msg[256] = "";
	if (failed > backoff_limit) {
		fail_reason = "BackoffLimitExceeded";
		snprintf(fail_msg, sizeof(fail_msg), "Job has reached the specified backoff limit");
	} else if (deadline >= 0 && start + deadline <= now_s) {
		fail_reason = "DeadlineExceeded";
		snprintf(fail_msg, sizeof(fail_msg), "Job was active longer than specified deadline");
	}

	bool complete = completions >= 0 ? succeeded >= completions : succeeded > 0 && active == 0;
	if (fail_reason || complete) {
		/* stop whatever still runs */
		cJSON_ArrayForEach(pod, pods) if (ctrl_is_controlled_by(pod, uid) &&
						  ctrl_pod_active(pod))
			ctrl_delete(m, "pods", ns, json_str(pod, "metadata.name", ""), NULL);
		active = 0;
		if (fail_reason) {
			ctrl_condition_set(status, "Failed", "True", fail_reason, fail_msg, now_s);
		} else {
			ctrl_condition_set(status, "Complete", "True", "", "", now_s);
			json_set_str(status, "completionTime", now);
		}
		/* conditions of a Job carry lastProbeTime, not lastUpdateTime */
		cJSON *c;
		cJSON_ArrayForEach(c, json_path(status, "conditions"))
		{
			cJSON_DeleteItemFromObject(c, "lastUpdateTime");
			if (!json_path(c, "lastProbeTime"))
				json_set_str(c, "lastProbeTime", now);
		}
		if (cJSON_IsNumber(json_path(job, "spec.ttlSecondsAfterFinished")))
			ctrl_enqueue(m, "jobs.batch", ns, name,
				     (uint64_t)json_int(job, "spec.ttlSecondsAfterFinished", 0) *
						     1000 + 100);
	} else {
		int64_t want = parallelism;
		if (completions >= 0 && completions - succeeded < want)
			want = completions - succeeded;
		if (completions < 0 && succeeded > 0)
			want = 0; /* and what runs goes on */
		else if (active > want) {
			/* parallelism lowered: the surplus goes, least useful first (Kubernetes'
			 * ActivePods order; a pod on a node not alive is not ready) */
			r = ctrl_pods_deletion_order(m, act, (size_t)active, NULL, false);
			if (r < 0) {
				cJSON_Delete(status);
				return r;
			}
			for (int64_t i = 0; i < active - want; i++) {
				r = ctrl_delete(m, "pods", ns, json_str(act[i], "metadata.name", ""),
						NULL);
				if (r < 0 && r != -ENOENT) {
					cJSON_Delete(status);
					return r;
				}
			}
			active = want;
		}
		if (active < want) {
			int64_t wait = 0;
			if (failed > 0) {
				int64_t b = JOB_BACKOFF_BASE_S;
				for (int64_t i = 1; i < failed && b < JOB_BACKOFF_MAX_S; i++)
					b *= 2;
				if (b > JOB_BACKOFF_MAX_S)
					b = JOB_BACKOFF_MAX_S;
				wait = last_fail + b - now_s;
			}
			if (wait > 0) {
				ctrl_enqueue(m, "jobs.batch", ns, name, (uint64_t)wait * 1000 + 50);
			} else {
				_cleanup_json_ cJSON *extra = cJSON_CreateObject();
				cJSON_AddStringToObject(extra, "controller-uid", uid);
				cJSON_AddStringToObject(extra, "batch.kubernetes.io/controller-uid", uid);
				cJSON_AddStringToObject(extra, "job-name", name);
				cJSON_AddStringToObject(extra, "batch.kubernetes.io/job-name", name);
				for (; active < want; active++) {
					r = ctrl_pod_create(
						m, json_path(job, "spec.template"), ns, name,
						ctrl_owner_ref_new("batch/v1", "Job", job, true),
						extra);
					if (r < 0)
						break;
				}
			}
		}
		if (deadline >= 0)
			ctrl_enqueue(m, "jobs.batch", ns, name,
				     (uint64_t)(start + deadline - now_s) * 1000 + 100);
	}
	json_set_int(status, "active", active);
	json_set_int(status, "succeeded", succeeded);
	json_set_int(status, "failed", failed);
	return ctrl_status_update(m, job, status);
}

const struct ctrl_ops ctrl_job_ops = {
	.resource = "jobs.batch",
	.kind = "Job",
	.api_version = "batch/v1",
	.reconcile = job_reconcile,
};
