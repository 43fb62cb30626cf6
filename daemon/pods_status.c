// SPDX-License-Identifier: Apache-2.0
/* Pod status as the kubelet reports it: phase, conditions with transition times, container
 * states, QoS class. Built from the manager's view of the pod; the clock is a parameter. */
#include <string.h>
#include <time.h>

#include "api/quantity.h"
#include "daemon/pods-internal.h"
#include "lib/json.h"
#include "lib/util.h"

void pods_fmt_ms(int64_t ms, char *buf, size_t len)
{
	/* RFC 3339 with second precision, like metav1.Time */
	util_rfc3339(ms / 1000, buf, len);
}

static bool ctr_has_probe(const struct pod_ctr *c, const char *key)
{
	return cJSON_IsObject(json_path(pod_ctr_spec(c), key));
}

static bool ctr_started(const struct pod_ctr *c)
{
	if (c->phase != CTR_RUNNING || c->poststart_running)
		return false;
	return !ctr_has_probe(c, "startupProbe") || c->started;
}

static bool ctr_ready(const struct pod_ctr *c)
{
	if (!ctr_started(c) || c->stopping || c->pod->term_started)
		return false;
	if (c->init)
		return false;
	return !ctr_has_probe(c, "readinessProbe") || c->ready;
}

static bool inits_done(const struct pod *p)
{
	for (int k = 0; k < p->n_init; k++)
		if (!p->ctrs[k].done_init)
			return false;
	return p->setup_ok || p->n_init == 0 ? true : p->n_init == 0;
}

const char *pod_phase(const struct pod *p)
{
	int waiting = 0, running = 0, stopped = 0, succeeded = 0;
	const char *pol = json_str(p->obj, "spec.restartPolicy", "Always");

	if (p->admit == ADMIT_REJECTED || p->deadline_exceeded)
		return "Failed";
	for (int k = 0; k < p->n_init; k++) {
		const struct pod_ctr *c = &p->ctrs[k];
		if (c->done_init)
			continue;
		if (c->phase == CTR_TERMINATED && c->exit_code != 0 && streq(pol, "Never"))
			return "Failed";
		return "Pending";
	}
	if (!p->setup_ok && p->n_init == 0) {
		bool any = false;
		for (int k = 0; k < p->n_ctrs; k++)
			any |= p->ctrs[k].phase != CTR_WAITING || p->ctrs[k].last_state;
		if (!any)
			return "Pending";
	}
	for (int k = p->n_init; k < p->n_ctrs; k++) {
		const struct pod_ctr *c = &p->ctrs[k];
		switch (c->phase) {
		case CTR_RUNNING:
			if (c->poststart_running && !c->last_state)
				waiting++;
			else
				running++;
			break;
		case CTR_TERMINATED:
			stopped++;
			if (c->exit_code == 0)
				succeeded++;
			break;
		case CTR_WAITING:
			if (c->last_state)
				stopped++;
			else
				waiting++;
			break;
		}
	}
	if (waiting > 0)
		return "Pending";
	if (running > 0)
		return "Running";
	if (stopped > 0) {
		if (streq(pol, "Always"))
			return "Running";
		if (stopped == succeeded)
			return "Succeeded";
		if (streq(pol, "Never"))
			return "Failed";
		return "Running";
	}
	return "Pending";
}

/* "docker.io/library/busybox:latest" + digest -> "docker.io/library/busybox@sha256:..." */
static void image_id(const struct pod_ctr *c, char *buf, size_t len)
{
	const char *name = c->image_name ? c->image_name : "";
	const char *slash = strrchr(name, '/'), *colon = strrchr(name, ':'), *at = strchr(name, '@');
	size_t n = strlen(name);

	buf[0] = 0;
	if (strempty(c->image_id))
		return;
	if (at)
		n = at - name;
	else if (colon && (!slash || colon > slash))
		n = colon - name;
	snprintf(buf, len, "%.*s@%s", (int)n, name, c->image_id);
}

/* The `terminated` state of a container (its current state, or its lastState). */
cJSON *pods_ctr_terminated_json(const struct pod_ctr *c)
{
	cJSON *t = cJSON_CreateObject();
	char ts[40], cid[80];

	cJSON_AddNumberToObject(t, "exitCode", c->exit_code);
	if (c->signal)
		cJSON_AddNumberToObject(t, "signal", c->signal);
	cJSON_AddStringToObject(t, "reason", c->reason);
	if (c->message[0])
		cJSON_AddStringToObject(t, "message", c->message);
	pods_fmt_ms(c->started_ms, ts, sizeof(ts));
	cJSON_AddStringToObject(t, "startedAt", ts);
	pods_fmt_ms(c->finished_ms, ts, sizeof(ts));
	cJSON_AddStringToObject(t, "finishedAt", ts);
	if (c->id[0]) {
		snprintf(cid, sizeof(cid), "crun://%s", c->id);
		cJSON_AddStringToObject(t, "containerID", cid);
	}
	return t;
}

static cJSON *ctr_status(struct pod *p, struct pod_ctr *c, uint64_t now)
{
	cJSON *s = cJSON_CreateObject(), *state, *o;
	const cJSON *spec = pod_ctr_spec(c);
	char ts[40], cid[80], iid[512];

	cJSON_AddStringToObject(s, "name", c->name);
	state = cJSON_AddObjectToObject(s, "state");
	switch (c->phase) {
	case CTR_RUNNING:
		if (c->poststart_running) {
			/* the kubelet reports the container once its postStart hook returned */
			o = cJSON_AddObjectToObject(state, "waiting");
			cJSON_AddStringToObject(o, "reason", "ContainerCreating");
			break;
		}
		o = cJSON_AddObjectToObject(state, "running");
		pods_fmt_ms(c->started_ms, ts, sizeof(ts));
		cJSON_AddStringToObject(o, "startedAt", ts);
		break;
	case CTR_TERMINATED:
		cJSON_AddItemToObject(state, "terminated", pods_ctr_terminated_json(c));
		break;
	case CTR_WAITING: {
		const char *reason = c->reason;
		char msg[1200];
		snprintf(msg, sizeof(msg), "%s", c->message);
		if (!*reason) {
			bool init_pending = false;
			for (int k = 0; k < p->n_init; k++)
				init_pending |= !p->ctrs[k].done_init;
			reason = c->init || init_pending ? "PodInitializing" : "ContainerCreating";
			if (p->setup_reason[0] && !c->init && !init_pending)
				msg[0] = 0;
		}
		if (now < c->retry_at && streq(c->backoff_reason, "ImagePullBackOff") &&
		    streq(c->reason, "ErrImagePull")) {
			reason = "ImagePullBackOff";
			snprintf(msg, sizeof(msg), "Back-off pulling image \"%s\": ErrImagePull: %s",
				 json_str(spec, "image", ""), c->message);
		} else if (streq(reason, "CrashLoopBackOff")) {
			uint64_t left = c->retry_at > now ? (c->retry_at - now + 999) / 1000 : 0;
			snprintf(msg, sizeof(msg),
				 "back-off %llus restarting failed container=%s pod=%s_%s(%s)",
				 (unsigned long long)(left ? (uint64_t)c->backoff_s / 2 : 0), c->name,
				 p->name, p->ns, p->uid);
			if (!left)
				snprintf(msg, sizeof(msg),
					 "restarting failed container=%s pod=%s_%s(%s)", c->name,
					 p->name, p->ns, p->uid);
		}
		o = cJSON_AddObjectToObject(state, "waiting");
		cJSON_AddStringToObject(o, "reason", reason);
		if (msg[0])
			cJSON_AddStringToObject(o, "message", msg);
		break;
	}
	}
	if (c->last_state)
		cJSON_AddItemToObject(s, "lastState", cJSON_Duplicate(c->last_state, true));
	else
		cJSON_AddObjectToObject(s, "lastState");
	cJSON_AddBoolToObject(s, "ready", ctr_ready(c));
	cJSON_AddNumberToObject(s, "restartCount", c->restart_count);
	cJSON_AddStringToObject(s, "image", json_str(spec, "image", ""));
	image_id(c, iid, sizeof(iid));
	cJSON_AddStringToObject(s, "imageID", iid);
	if (c->id[0] && c->phase != CTR_WAITING) {
		snprintf(cid, sizeof(cid), "crun://%s", c->id);
		cJSON_AddStringToObject(s, "containerID", cid);
	}
	cJSON_AddBoolToObject(s, "started", ctr_started(c));
	return s;
}

static const char *const cond_names[COND_N] = { "PodScheduled", "Initialized", "ContainersReady",
						 "Ready" };

void pod_conditions_restore(struct pod *p)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, json_path(p->obj, "status.conditions"))
	{
		const char *type = json_str(c, "type", ""), *st = json_str(c, "status", "");
		for (int i = 0; i < COND_N; i++)
			if (streq(type, cond_names[i])) {
				p->conds[i].status = streq(st, "True") ? 1 : 0;
				snprintf(p->conds[i].time, sizeof(p->conds[i].time), "%s",
					 json_str(c, "lastTransitionTime", ""));
			}
	}
}

static void cond_add(struct pod *p, cJSON *arr, int which, bool ok, const char *reason,
		     const char *msg, uint64_t now)
{
	cJSON *c = cJSON_CreateObject();
	struct cond_state *cs = &p->conds[which];

	if (cs->status != (ok ? 1 : 0) || !cs->time[0]) {
		cs->status = ok ? 1 : 0;
		pods_fmt_ms((int64_t)now, cs->time, sizeof(cs->time));
	}
	cJSON_AddStringToObject(c, "type", cond_names[which]);
	cJSON_AddStringToObject(c, "status", ok ? "True" : "False");
	cJSON_AddNullToObject(c, "lastProbeTime");
	cJSON_AddStringToObject(c, "lastTransitionTime", cs->time);
	if (!ok && reason)
		cJSON_AddStringToObject(c, "reason", reason);
	if (!ok && msg && *msg)
		cJSON_AddStringToObject(c, "message", msg);
	cJSON_AddItemToArray(arr, c);
}

static bool limits_eq_requests(const cJSON *c, const char *res)
{
	const char *l = json_str(c, "resources.limits", NULL);
	char lp[64], rp[64];
	int64_t lv, rv;

	(void)l;
	snprintf(lp, sizeof(lp), "resources.limits.%s", res);
	snprintf(rp, sizeof(rp), "resources.requests.%s", res);
	if (!json_str(c, lp, NULL) || quantity_parse_milli(json_str(c, lp, ""), &lv) < 0)
		return false;
	if (!json_str(c, rp, NULL))
		return true; /* defaults to the limit */
	return quantity_parse_milli(json_str(c, rp, ""), &rv) == 0 && rv == lv;
}

const char *pod_qos_class(const cJSON *pod)
{
	static const char *const lists[] = { "spec.containers", "spec.initContainers" };
	bool any = false, guaranteed = true;
	const cJSON *c;

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		cJSON_ArrayForEach(c, json_path(pod, lists[i]))
		{
			static const char *const res[] = { "cpu", "memory" };
			for (size_t r = 0; r < ARRAY_SIZE(res); r++) {
				char lp[64], rp[64];
				snprintf(lp, sizeof(lp), "resources.limits.%s", res[r]);
				snprintf(rp, sizeof(rp), "resources.requests.%s", res[r]);
				if (json_str(c, lp, NULL) || json_str(c, rp, NULL))
					any = true;
				if (!limits_eq_requests(c, res[r]))
					guaranteed = false;
			}
		}
	if (!any)
		return "BestEffort";
	return guaranteed ? "Guaranteed" : "Burstable";
}

static void names_add(char *buf, size_t len, const char *name)
{
	size_t n = strlen(buf);

	snprintf(buf + n, len - n, "%s%s", n > 1 ? " " : "", name);
}

cJSON *pod_status_build(struct pod *p, uint64_t now)
{
	cJSON *st = cJSON_CreateObject(), *conds, *arr;
	const char *phase = pod_phase(p);
	char ts[40], not_init[512] = "[", unready[512] = "[";
	bool all_init = true, all_ready = true, done;

	if (!st)
		return NULL;
	cJSON_AddStringToObject(st, "phase", phase);
	done = streq(phase, "Succeeded") || streq(phase, "Failed");
	if (p->admit == ADMIT_REJECTED) {
		cJSON_AddStringToObject(st, "reason", p->fail_reason);
		cJSON_AddStringToObject(st, "message", p->fail_msg);
		if (p->start_time) {
			pods_fmt_ms(p->start_time * 1000, ts, sizeof(ts));
			cJSON_AddStringToObject(st, "startTime", ts);
		}
		conds = cJSON_AddArrayToObject(st, "conditions");
		cond_add(p, conds, COND_SCHEDULED, true, NULL, NULL, now);
		cJSON_AddStringToObject(st, "qosClass", pod_qos_class(p->obj));
		return st;
	}
	if (p->deadline_exceeded) {
		cJSON_AddStringToObject(st, "reason", p->fail_reason);
		cJSON_AddStringToObject(st, "message", p->fail_msg);
	}
	for (int k = 0; k < p->n_init; k++)
		if (!p->ctrs[k].done_init) {
			all_init = false;
			names_add(not_init, sizeof(not_init) - 1, p->ctrs[k].name);
		}
	for (int k = p->n_init; k < p->n_ctrs; k++)
		if (!ctr_ready(&p->ctrs[k])) {
			all_ready = false;
			names_add(unready, sizeof(unready) - 1, p->ctrs[k].name);
		}
	strcat(not_init, "]");
	strcat(unready, "]");

	conds = cJSON_AddArrayToObject(st, "conditions");
	cond_add(p, conds, COND_SCHEDULED, true, NULL, NULL, now);
	char msg[600];
	snprintf(msg, sizeof(msg), "containers with incomplete status: %s", not_init);
	cond_add(p, conds, COND_INITIALIZED, all_init, "ContainersNotInitialized", msg, now);
	snprintf(msg, sizeof(msg), "containers with unready status: %s", unready);
	cond_add(p, conds, COND_CONTAINERS_READY, all_ready && !done,
		 done ? "PodCompleted" : "ContainersNotReady", done ? NULL : msg, now);
	cond_add(p, conds, COND_READY, all_ready && !done,
		 done ? "PodCompleted" : "ContainersNotReady", done ? NULL : msg, now);

	cJSON_AddStringToObject(st, "hostIP", p->m->host_ip);
	arr = cJSON_AddArrayToObject(st, "hostIPs");
	cJSON *ip = cJSON_CreateObject();
	cJSON_AddStringToObject(ip, "ip", p->m->host_ip);
	cJSON_AddItemToArray(arr, ip);
	if (p->ip[0]) {
		cJSON_AddStringToObject(st, "podIP", p->ip);
		arr = cJSON_AddArrayToObject(st, "podIPs");
		ip = cJSON_CreateObject();
		cJSON_AddStringToObject(ip, "ip", p->ip);
		cJSON_AddItemToArray(arr, ip);
	}
	if (p->start_time) {
		pods_fmt_ms(p->start_time * 1000, ts, sizeof(ts));
		cJSON_AddStringToObject(st, "startTime", ts);
	}
	if (p->n_init) {
		arr = cJSON_AddArrayToObject(st, "initContainerStatuses");
		for (int k = 0; k < p->n_init; k++)
			cJSON_AddItemToArray(arr, ctr_status(p, &p->ctrs[k], now));
	}
	arr = cJSON_AddArrayToObject(st, "containerStatuses");
	for (int k = p->n_init; k < p->n_ctrs; k++)
		cJSON_AddItemToArray(arr, ctr_status(p, &p->ctrs[k], now));
	cJSON_AddStringToObject(st, "qosClass", pod_qos_class(p->obj));
	(void)inits_done;
	return st;
}
