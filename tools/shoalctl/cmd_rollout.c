// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl rollout status|history|undo|pause|resume|restart for Deployments, with kubectl's
 * messages. History and undo read the ReplicaSets the Deployment owns and their
 * deployment.kubernetes.io/revision annotations, as kubectl does.
 */
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/shoalctl/shoalctl.h"

#define ANN_REVISION "deployment.kubernetes.io/revision"
#define ANN_CHANGE_CAUSE "kubernetes.io/change-cause"

struct rollout {
	struct ctl *c;
	struct ctl_resource res;
	const char *name;
	char *path;
	char ref[160];
};

static int get_deploy(struct rollout *ro, cJSON **ret, struct err *e)
{
	return ctl_request(ro->c, "GET", ro->path, NULL, NULL, NULL, ret, e);
}

static int rollout_status(struct rollout *ro)
{
	time_t deadline = ro->c->o.timeout_s ? time(NULL) + ro->c->o.timeout_s : 0;
	char last[512] = "";
	struct err e = {};
	int r;

	for (;;) {
		_cleanup_json_ cJSON *d = NULL;
		char msg[512];
		bool done = false;

		r = get_deploy(ro, &d, &e);
		if (r < 0)
			return ctl_fail(&e, r);
		const cJSON *st = cJSON_GetObjectItem(d, "status");
		double gen = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "metadata"), "generation"));
		double obs = cJSON_GetNumberValue(cJSON_GetObjectItem(st, "observedGeneration"));
		double want = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "replicas"));
		double updated = cJSON_GetNumberValue(cJSON_GetObjectItem(st, "updatedReplicas"));
		double total = cJSON_GetNumberValue(cJSON_GetObjectItem(st, "replicas"));
		double avail = cJSON_GetNumberValue(cJSON_GetObjectItem(st, "availableReplicas"));
		const cJSON *cond;
		if (isnan(want))
			want = 1;
		if (isnan(updated)) updated = 0;
		if (isnan(total)) total = 0;
		if (isnan(avail)) avail = 0;
		if (isnan(obs)) obs = 0;

		cJSON_ArrayForEach(cond, cJSON_GetObjectItem(st, "conditions"))
		{
			const char *type = ctl_json_str(cond, "type"), *reason = ctl_json_str(cond, "reason");
			if (type && reason && streq(type, "Progressing") &&
			    streq(reason, "ProgressDeadlineExceeded")) {
				fprintf(stderr, "error: deployment \"%s\" exceeded its progress deadline\n",
					ro->name);
				return 1;
			}
		}
		if (!isnan(gen) && gen > obs)
			snprintf(msg, sizeof(msg),
				 "Waiting for deployment spec update to be observed...");
		else if (updated < want)
			snprintf(msg, sizeof(msg),
				 "Waiting for deployment \"%s\" rollout to finish: %.0f out of %.0f new "
				 "replicas have been updated...",
				 ro->name, updated, want);
		else if (total > updated)
			snprintf(msg, sizeof(msg),
				 "Waiting for deployment \"%s\" rollout to finish: %.0f old replicas are "
				 "pending termination...",
				 ro->name, total - updated);
		else if (avail < updated)
			snprintf(msg, sizeof(msg),
				 "Waiting for deployment \"%s\" rollout to finish: %.0f of %.0f updated "
				 "replicas are available...",
				 ro->name, avail, updated);
		else {
			snprintf(msg, sizeof(msg), "deployment \"%s\" successfully rolled out",
				 ro->name);
			done = true;
		}
		if (!streq(msg, last)) {
			printf("%s\n", msg);
			fflush(stdout);
			snprintf(last, sizeof(last), "%s", msg);
		}
		if (done)
			return 0;
		if (deadline && time(NULL) >= deadline) {
			fprintf(stderr, "error: timed out waiting for the condition\n");
			return 1;
		}
		usleep(200 * 1000);
	}
}

/* The Deployment's ReplicaSets (owned through a controller reference), as an array. */
static int owned_replicasets(struct rollout *ro, const cJSON *d, cJSON **ret, struct err *e)
{
	_cleanup_json_ cJSON *list = NULL;
	_cleanup_free_ char *path = NULL;
	const char *uid = ctl_json_str(d, "metadata.uid");
	cJSON *out = cJSON_CreateArray(), *rs, *ref;
	int r;

	if (asprintf(&path, "/apis/apps/v1/namespaces/%s/replicasets", ro->c->namespace) < 0)
		return -ENOMEM;
	r = ctl_request(ro->c, "GET", path, NULL, NULL, NULL, &list, e);
	if (r < 0) {
		cJSON_Delete(out);
		return r;
	}
	cJSON_ArrayForEach(rs, cJSON_GetObjectItem(list, "items"))
		cJSON_ArrayForEach(ref, cJSON_GetObjectItem(cJSON_GetObjectItem(rs, "metadata"),
							    "ownerReferences"))
	{
		const char *ruid = ctl_json_str(ref, "uid");
		if (uid && ruid && streq(uid, ruid) && cJSON_IsTrue(cJSON_GetObjectItem(ref, "controller")))
			cJSON_AddItemToArray(out, cJSON_Duplicate(rs, 1));
	}
	*ret = out;
	return 0;
}

static long revision_of(const cJSON *rs)
{
	const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(rs, "metadata"), "annotations");
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(ann, ANN_REVISION));
	return v ? strtol(v, NULL, 10) : 0;
}

static int rollout_history(struct rollout *ro)
{
	_cleanup_json_ cJSON *d = NULL, *rss = NULL;
	struct err e = {};
	int r, n;

	r = get_deploy(ro, &d, &e);
	if (r >= 0)
		r = owned_replicasets(ro, d, &rss, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	n = cJSON_GetArraySize(rss);
	_cleanup_free_ const cJSON **sorted = calloc(n ? n : 1, sizeof(*sorted));
	for (int i = 0; i < n; i++)
		sorted[i] = cJSON_GetArrayItem(rss, i);
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && revision_of(sorted[k - 1]) > revision_of(sorted[k]); k--) {
			const cJSON *t = sorted[k];
			sorted[k] = sorted[k - 1];
			sorted[k - 1] = t;
		}
	printf("%s/%s \n", ro->ref, ro->name);
	printf("REVISION  CHANGE-CAUSE\n");
	for (int i = 0; i < n; i++) {
		const cJSON *ann =
			cJSON_GetObjectItem(cJSON_GetObjectItem(sorted[i], "metadata"), "annotations");
		const char *cause = cJSON_GetStringValue(cJSON_GetObjectItem(ann, ANN_CHANGE_CAUSE));
		if (revision_of(sorted[i]) > 0)
			printf("%-9ld %s\n", revision_of(sorted[i]), cause ? cause : "<none>");
	}
	printf("\n");
	return 0;
}

static int rollout_undo(struct rollout *ro)
{
	_cleanup_json_ cJSON *d = NULL, *rss = NULL, *ops = NULL, *out = NULL;
	const cJSON *target = NULL, *rs;
	long best = 0, top = 0;
	struct err e = {};
	int r;

	r = get_deploy(ro, &d, &e);
	if (r >= 0)
		r = owned_replicasets(ro, d, &rss, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	if (cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "paused"))) {
		fprintf(stderr, "error: you cannot rollback a paused deployment; resume it first "
				"with 'shoalctl rollout resume' and try again\n");
		return 1;
	}
	cJSON_ArrayForEach(rs, rss) if (revision_of(rs) > top) top = revision_of(rs);
	cJSON_ArrayForEach(rs, rss)
	{
		long rev = revision_of(rs);
		if (ro->c->o.to_revision ? rev == ro->c->o.to_revision : (rev < top && rev > best)) {
			target = rs;
			best = rev;
		}
	}
	if (!target) {
		if (ro->c->o.to_revision)
			fprintf(stderr, "error: unable to find specified revision %d in history\n",
				ro->c->o.to_revision);
		else
			fprintf(stderr, "error: no rollout history found for deployment \"%s\"\n",
				ro->name);
		return 1;
	}
	cJSON *tmpl = cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetObjectItem(target, "spec"),
							  "template"),
				      1);
	cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(tmpl, "metadata"), "labels");
	cJSON_DeleteItemFromObject(labels, "pod-template-hash");
	ops = cJSON_CreateArray();
	cJSON *op = cJSON_CreateObject();
	cJSON_AddStringToObject(op, "op", "replace");
	cJSON_AddStringToObject(op, "path", "/spec/template");
	cJSON_AddItemToObject(op, "value", tmpl);
	cJSON_AddItemToArray(ops, op);
	r = ctl_request(ro->c, "PATCH", ro->path, NULL, "application/json-patch+json", ops, &out,
			&e);
	if (r < 0)
		return ctl_fail(&e, r);
	printf("%s/%s rolled back\n", ro->ref, ro->name);
	return 0;
}

static int rollout_patch(struct rollout *ro, cJSON *patch, const char *verb)
{
	_cleanup_json_ cJSON *out = NULL;
	struct err e = {};
	int r = ctl_request(ro->c, "PATCH", ro->path, NULL, "application/strategic-merge-patch+json",
			    patch, &out, &e);
	cJSON_Delete(patch);
	if (r < 0)
		return ctl_fail(&e, r);
	printf("%s/%s %s\n", ro->ref, ro->name, verb);
	return 0;
}

int cmd_rollout(struct ctl *c, int argc, char **argv)
{
	struct rollout ro = { .c = c };
	struct err e = {};
	const char *verb;
	int r, rc;

	if (argc < 2)
		return ctl_fail(&(struct err){ .message = "error: usage: shoalctl rollout "
							  "status|history|undo|pause|resume|restart "
							  "KIND/NAME" },
				-EINVAL);
	verb = argv[0];
	r = ctl_target_arg(c, argc - 1, argv + 1, &ro.res, &ro.name, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	if (!streq(ro.res.kind, "Deployment"))
		return ctl_fail(&(struct err){ .message = "error: rollout supports Deployments" },
				-EINVAL);
	if (ctl_resource_path(&ro.res, c->namespace, ro.name, &ro.path) < 0)
		return 1;
	ctl_resource_ref(&ro.res, ro.ref, sizeof(ro.ref));

	if (streq(verb, "status"))
		rc = rollout_status(&ro);
	else if (streq(verb, "history"))
		rc = rollout_history(&ro);
	else if (streq(verb, "undo"))
		rc = rollout_undo(&ro);
	else if (streq(verb, "pause") || streq(verb, "resume")) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddBoolToObject(cJSON_AddObjectToObject(p, "spec"), "paused",
				      streq(verb, "pause"));
		rc = rollout_patch(&ro, p, streq(verb, "pause") ? "paused" : "resumed");
	} else if (streq(verb, "restart")) {
		char ts[40];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		cJSON *p = cJSON_CreateObject();
		cJSON *ann = cJSON_AddObjectToObject(
			cJSON_AddObjectToObject(
				cJSON_AddObjectToObject(cJSON_AddObjectToObject(p, "spec"), "template"),
				"metadata"),
			"annotations");
		cJSON_AddStringToObject(ann, "kubectl.kubernetes.io/restartedAt", ts);
		rc = rollout_patch(&ro, p, "restarted");
	} else {
		fprintf(stderr, "error: unknown rollout command \"%s\"\n", verb);
		rc = 1;
	}
	free(ro.path);
	return rc;
}
