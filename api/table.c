// SPDX-License-Identifier: Apache-2.0
/*
 * Server-side printing, column for column as k8s.io/kubernetes/pkg/printers/internalversion
 * does it with Wide: true (the API server always sends the wide columns; kubectl hides
 * priority-1 columns unless -o wide).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/table.h"
#include "lib/macro.h"
#include "lib/util.h"

struct col {
	const char *name, *type, *format, *desc;
	int priority;
};

static const char D_NAME[] =
	"Name must be unique within a namespace. Is required when creating resources, although "
	"some resources may allow a client to request the generation of an appropriate name "
	"automatically. Name is primarily intended for creation idempotence and configuration "
	"definition. Cannot be updated. More info: "
	"https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
static const char D_AGE[] =
	"CreationTimestamp is a timestamp representing the server time when this object was "
	"created. It is not guaranteed to be set in happens-before order across separate "
	"operations. Clients may not set this value. It is represented in RFC3339 form and is in "
	"UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
	"https://git.k8s.io/community/contributors/devel/sig-architecture/"
	"api-conventions.md#metadata";
static const char D_CONTAINERS[] = "Names of each container in the template.";
static const char D_IMAGES[] = "Images referenced by each container in the template.";

#define NAME_COL { "Name", "string", "name", D_NAME, 0 }
#define AGE_COL { "Age", "string", NULL, D_AGE, 0 }

static const struct col pod_cols[] = {
	NAME_COL,
	{ "Ready", "string", NULL, "The aggregate readiness state of this pod for accepting traffic.",
	  0 },
	{ "Status", "string", NULL, "The aggregate status of the containers in this pod.", 0 },
	{ "Restarts", "string", NULL,
	  "The number of times the containers in this pod have been restarted and when the last "
	  "container in this pod has restarted.", 0 },
	AGE_COL,
	{ "IP", "string", NULL,
	  "podIP address allocated to the pod. Routable at least within the cluster. Empty if not "
	  "yet allocated.", 1 },
	{ "Node", "string", NULL,
	  "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
	  "candidate for scheduling by the scheduler defined in schedulerName.", 1 },
	{ "Nominated Node", "string", NULL,
	  "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
	  "cannot be scheduled right away as preemption victims receive their graceful "
	  "termination periods.", 1 },
	{ "Readiness Gates", "string", NULL,
	  "If specified, all readiness gates will be evaluated for pod readiness.", 1 },
	{ 0 },
};
static const struct col svc_cols[] = {
	NAME_COL,
	{ "Type", "string", NULL, "type determines how the Service is exposed.", 0 },
	{ "Cluster-IP", "string", NULL,
	  "clusterIP is the IP address of the service and is usually assigned randomly.", 0 },
	{ "External-IP", "string", NULL,
	  "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
	  "traffic for this service.", 0 },
	{ "Port(s)", "string", NULL, "The list of ports that are exposed by this service.", 0 },
	AGE_COL,
	{ "Selector", "string", NULL,
	  "Route service traffic to pods with label keys and values matching this selector.", 1 },
	{ 0 },
};
static const struct col deploy_cols[] = {
	NAME_COL,
	{ "Ready", "string", NULL, "Number of the pod with ready state", 0 },
	{ "Up-to-date", "string", NULL,
	  "Total number of non-terminated pods targeted by this deployment that have the desired "
	  "template spec.", 0 },
	{ "Available", "string", NULL,
	  "Total number of available pods (ready for at least minReadySeconds) targeted by this "
	  "deployment.", 0 },
	AGE_COL,
	{ "Containers", "string", NULL, D_CONTAINERS, 1 },
	{ "Images", "string", NULL, D_IMAGES, 1 },
	{ "Selector", "string", NULL, "Label selector for pods.", 1 },
	{ 0 },
};
static const struct col rs_cols[] = {
	NAME_COL,
	{ "Desired", "integer", NULL, "Replicas is the number of desired replicas.", 0 },
	{ "Current", "integer", NULL, "Replicas is the most recently observed number of replicas.",
	  0 },
	{ "Ready", "integer", NULL,
	  "The number of ready replicas for this replica set.", 0 },
	AGE_COL,
	{ "Containers", "string", NULL, D_CONTAINERS, 1 },
	{ "Images", "string", NULL, D_IMAGES, 1 },
	{ "Selector", "string", NULL,
	  "Selector is a label query over pods that should match the replica count.", 1 },
	{ 0 },
};
static const struct col pdb_cols[] = {
	NAME_COL,
	{ "Min Available", "string", NULL, "The minimum number of pods that must be available.", 0 },
	{ "Max Unavailable", "string", NULL, "The maximum number of pods that may be unavailable.",
	  0 },
	{ "Allowed Disruptions", "integer", NULL,
	  "Calculated number of pods that may be disrupted at this time.", 0 },
	AGE_COL,
};

static const struct col ds_cols[] = {
	NAME_COL,
	{ "Desired", "integer", NULL,
	  "The total number of nodes that should be running the daemon pod (including nodes "
	  "correctly running the daemon pod).", 0 },
	{ "Current", "integer", NULL,
	  "The number of nodes that are running at least 1 daemon pod and are supposed to run the "
	  "daemon pod.", 0 },
	{ "Ready", "integer", NULL,
	  "numberReady is the number of nodes that should be running the daemon pod and have one "
	  "or more of the daemon pod running with a Ready Condition.", 0 },
	{ "Up-to-date", "integer", NULL,
	  "The total number of nodes that are running updated daemon pod", 0 },
	{ "Available", "integer", NULL,
	  "The number of nodes that should be running the daemon pod and have one or more of the "
	  "daemon pod running and available (ready for at least spec.minReadySeconds)", 0 },
	{ "Node Selector", "string", NULL,
	  "NodeSelector is a selector which must be true for the pod to fit on a node.", 0 },
	AGE_COL,
	{ "Containers", "string", NULL, D_CONTAINERS, 1 },
	{ "Images", "string", NULL, D_IMAGES, 1 },
	{ "Selector", "string", NULL,
	  "A label query over pods that are managed by the daemon set.", 1 },
	{ 0 },
};
static const struct col crev_cols[] = {
	NAME_COL,
	{ "Controller", "string", NULL, "Controller of the object", 0 },
	{ "Revision", "string", NULL, "Revision indicates the revision of the state represented by "
				     "Data.", 0 },
	AGE_COL,
	{ 0 },
};
static const struct col job_cols[] = {
	NAME_COL,
	{ "Status", "string", NULL, "Status of the job.", 0 },
	{ "Completions", "string", NULL, "The number of pods which reached phase Succeeded.", 0 },
	{ "Duration", "string", NULL, "Time required to complete the job.", 0 },
	AGE_COL,
	{ "Containers", "string", NULL, D_CONTAINERS, 1 },
	{ "Images", "string", NULL, D_IMAGES, 1 },
	{ "Selector", "string", NULL, "A label query over pods that should match the pod count.",
	  1 },
	{ 0 },
};
static const struct col node_cols[] = {
	NAME_COL,
	{ "Status", "string", NULL, "The status of the node", 0 },
	{ "Roles", "string", NULL, "The roles of the node", 0 },
	AGE_COL,
	{ "Version", "string", NULL, "Kubelet Version reported by the node.", 0 },
	{ "Internal-IP", "string", NULL, "List of addresses reachable to the node.", 1 },
	{ "External-IP", "string", NULL, "List of addresses reachable to the node.", 1 },
	{ "OS-Image", "string", NULL,
	  "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
	  1 },
	{ "Kernel-Version", "string", NULL,
	  "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1 },
	{ "Container-Runtime", "string", NULL,
	  "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
	  "containerd://1.4.2).", 1 },
	{ 0 },
};
static const struct col ns_cols[] = {
	NAME_COL,
	{ "Status", "string", NULL, "The status of the namespace", 0 },
	AGE_COL,
	{ 0 },
};
static const struct col cm_cols[] = {
	NAME_COL,
	{ "Data", "string", NULL,
	  "Data contains the configuration data. Each key must consist of alphanumeric characters, "
	  "'-', '_' or '.'.", 0 },
	AGE_COL,
	{ 0 },
};
static const struct col secret_cols[] = {
	NAME_COL,
	{ "Type", "string", NULL, "Used to facilitate programmatic handling of secret data.", 0 },
	{ "Data", "string", NULL,
	  "Data contains the secret data. Each key must consist of alphanumeric characters, '-', "
	  "'_' or '.'.", 0 },
	AGE_COL,
	{ 0 },
};
static const struct col event_cols[] = {
	{ "Last Seen", "string", NULL,
	  "The time at which the most recent occurrence of this event was recorded.", 0 },
	{ "Type", "string", NULL, "Type of this event (Normal, Warning), new types could be added "
				  "in the future", 0 },
	{ "Reason", "string", NULL,
	  "This should be a short, machine understandable string that gives the reason for the "
	  "transition into the object's current status.", 0 },
	{ "Object", "string", NULL, "The object that this event is about.", 0 },
	{ "Subobject", "string", NULL,
	  "If referring to a piece of an object instead of an entire object, this string should "
	  "contain a valid JSON/Go field access statement, such as "
	  "desiredState.manifest.containers[2].", 1 },
	{ "Source", "string", NULL,
	  "The component reporting this event. Should be a short machine understandable string.",
	  1 },
	{ "Message", "string", NULL, "A human-readable description of the status of this operation.",
	  0 },
	{ "First Seen", "string", NULL,
	  "The time at which the event was first recorded. (Time of server receipt is in "
	  "TypeMeta.)", 1 },
	{ "Count", "string", NULL, "The number of times this event has occurred.", 1 },
	{ "Name", "string", "name", D_NAME, 1 },
	{ 0 },
};
static const struct col ep_cols[] = {
	NAME_COL,
	{ "Endpoints", "string", NULL,
	  "The set of all endpoints is the union of all subsets.", 0 },
	AGE_COL,
	{ 0 },
};
static const struct col eps_cols[] = {
	NAME_COL,
	{ "AddressType", "string", NULL, "The type of address carried by this EndpointSlice.", 0 },
	{ "Ports", "string", NULL, "The ports exposed by the endpoints.", 0 },
	{ "Endpoints", "string", NULL, "The addresses of the endpoints.", 0 },
	AGE_COL,
	{ 0 },
};
static const struct col default_cols[] = {
	NAME_COL,
	{ "Created At", "date", NULL, D_AGE, 0 },
	{ 0 },
};

/* ---------- small JSON helpers (all tolerate missing or mistyped fields) ---------- */

static const cJSON *jget(const cJSON *o, const char *k)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *c = jget(o, k);

	return cJSON_IsString(c) ? c->valuestring : "";
}

static int64_t jint(const cJSON *o, const char *k)
{
	const cJSON *c = jget(o, k);

	if (!cJSON_IsNumber(c) || !(c->valuedouble >= -9.2e18 && c->valuedouble <= 9.2e18))
		return 0; /* also NaN; the cast would be undefined */
	return (int64_t)c->valuedouble;
}

static const cJSON *jarr(const cJSON *o, const char *k)
{
	const cJSON *c = jget(o, k);

	return cJSON_IsArray(c) ? c : NULL;
}

static bool jtime(const cJSON *o, const char *k, int64_t *ret)
{
	const char *s = jstr(o, k);

	return *s && util_rfc3339_parse(s, ret) == 0;
}

void table_age(int64_t seconds, char *buf, size_t len)
{
	int64_t m, h, d;

	if (seconds < -1) {
		snprintf(buf, len, "<invalid>");
		return;
	}
	if (seconds < 0)
		seconds = 0;
	if (seconds < 120) {
		snprintf(buf, len, "%llds", (long long)seconds);
		return;
	}
	m = seconds / 60;
	if (m < 10) {
		if (seconds % 60 == 0)
			snprintf(buf, len, "%lldm", (long long)m);
		else
			snprintf(buf, len, "%lldm%llds", (long long)m, (long long)(seconds % 60));
		return;
	}
	if (m < 180) {
		snprintf(buf, len, "%lldm", (long long)m);
		return;
	}
	h = seconds / 3600;
	if (h < 8) {
		if (m % 60 == 0)
			snprintf(buf, len, "%lldh", (long long)h);
		else
			snprintf(buf, len, "%lldh%lldm", (long long)h, (long long)(m % 60));
		return;
	}
	if (h < 48) {
		snprintf(buf, len, "%lldh", (long long)h);
		return;
	}
	d = h / 24;
	if (h < 24 * 8) {
		if (h % 24 == 0)
			snprintf(buf, len, "%lldd", (long long)d);
		else
			snprintf(buf, len, "%lldd%lldh", (long long)d, (long long)(h % 24));
		return;
	}
	if (h < 24 * 365 * 2) {
		snprintf(buf, len, "%lldd", (long long)d);
		return;
	}
	if (h < 24 * 365 * 8) {
		if (d % 365 == 0)
			snprintf(buf, len, "%lldy", (long long)(d / 365));
		else
			snprintf(buf, len, "%lldy%lldd", (long long)(d / 365), (long long)(d % 365));
		return;
	}
	snprintf(buf, len, "%lldy", (long long)(d / 365));
}

/* translateTimestampSince */
static void since(const cJSON *o, const char *k, int64_t now, char *buf, size_t len)
{
	int64_t t;

	if (!jtime(o, k, &t))
		snprintf(buf, len, "<unknown>");
	else
		table_age(now - t, buf, len);
}

/* A growing string for joined cells. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->s, cap);
		if (!p)
			return;
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

static const char *sb_str(struct sbuf *b)
{
	return b->s ? b->s : "";
}

static void add_str(cJSON *cells, const char *s)
{
	cJSON_AddItemToArray(cells, cJSON_CreateString(s));
}

static void add_int(cJSON *cells, int64_t v)
{
	cJSON_AddItemToArray(cells, cJSON_CreateNumber((double)v));
}

static void add_age(cJSON *cells, const cJSON *obj, int64_t now)
{
	char buf[32];

	since(jget(obj, "metadata"), "creationTimestamp", now, buf, sizeof(buf));
	add_str(cells, buf);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* labels.FormatLabels: sorted k=v, "<none>" when empty */
static void add_labels(cJSON *cells, const cJSON *m)
{
	struct sbuf b = { 0 };
	const char *keys[256];
	const cJSON *it;
	size_t n = 0;

	cJSON_ArrayForEach(it, (cJSON_IsObject(m) ? m : NULL))
	if (n < ARRAY_SIZE(keys) && cJSON_IsString(it))
		keys[n++] = it->string;
	qsort(keys, n, sizeof(keys[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_add(&b, ",");
		sb_add(&b, keys[i]);
		sb_add(&b, "=");
		sb_add(&b, jstr(m, keys[i]));
	}
	add_str(cells, n ? sb_str(&b) : "<none>");
	free(b.s);
}

/* metav1.FormatLabelSelector: requirements sorted by key, set values sorted */
static void add_selector(cJSON *cells, const cJSON *sel)
{
	char *reqs[256];
	size_t n = 0;
	const cJSON *it;
	struct sbuf out = { 0 };

	if (!cJSON_IsObject(sel)) {
		add_str(cells, "<none>");
		return;
	}
	cJSON_ArrayForEach(it, (cJSON_IsObject(jget(sel, "matchLabels")) ? jget(sel, "matchLabels")
									   : NULL))
	{
		char *s;
		if (n < ARRAY_SIZE(reqs) && cJSON_IsString(it) &&
		    asprintf(&s, "%s=%s", it->string, it->valuestring) >= 0)
			reqs[n++] = s;
	}
	cJSON_ArrayForEach(it, jarr(sel, "matchExpressions"))
	{
		const char *op = jstr(it, "operator"), *key = jstr(it, "key");
		const char *vals[64];
		size_t nv = 0;
		const cJSON *v;
		struct sbuf b = { 0 };

		if (n >= ARRAY_SIZE(reqs))
			break;
		cJSON_ArrayForEach(v, jarr(it, "values"))
		if (nv < ARRAY_SIZE(vals) && cJSON_IsString(v))
			vals[nv++] = v->valuestring;
		qsort(vals, nv, sizeof(vals[0]), cmp_str);
		if (streq(op, "Exists")) {
			sb_add(&b, key);
		} else if (streq(op, "DoesNotExist")) {
			sb_add(&b, "!");
			sb_add(&b, key);
		} else {
			sb_add(&b, key);
			sb_add(&b, streq(op, "NotIn") ? " notin (" : " in (");
			for (size_t i = 0; i < nv; i++) {
				if (i)
					sb_add(&b, ",");
				sb_add(&b, vals[i]);
			}
			sb_add(&b, ")");
		}
		reqs[n++] = b.s ? b.s : strdup("");
	}
	qsort(reqs, n, sizeof(reqs[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_add(&out, ",");
		sb_add(&out, reqs[i] ? reqs[i] : "");
		free(reqs[i]);
	}
	add_str(cells, n ? sb_str(&out) : "<none>");
	free(out.s);
}

static void add_containers(cJSON *cells, const cJSON *podspec)
{
	struct sbuf names = { 0 }, images = { 0 };
	const cJSON *c;
	bool first = true;

	cJSON_ArrayForEach(c, jarr(podspec, "containers"))
	{
		if (!first) {
			sb_add(&names, ",");
			sb_add(&images, ",");
		}
		first = false;
		sb_add(&names, jstr(c, "name"));
		sb_add(&images, jstr(c, "image"));
	}
	add_str(cells, sb_str(&names));
	add_str(cells, sb_str(&images));
	free(names.s);
	free(images.s);
}

/* ---------- per kind ---------- */

static bool cond_true(const cJSON *conds, const char *type)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, conds)
	if (streq(jstr(c, "type"), type))
		return streq(jstr(c, "status"), "True");
	return false;
}

static bool restartable_init(const cJSON *spec, const char *name)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, jarr(spec, "initContainers"))
	if (streq(jstr(c, "name"), name))
		return streq(jstr(c, "restartPolicy"), "Always");
	return false;
}

static void row_pod(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *meta = jget(obj, "metadata"), *spec = jget(obj, "spec");
	const cJSON *st = jget(obj, "status"), *conds = jarr(st, "conditions"), *cs;
	const char *phase = jstr(st, "phase");
	int64_t restarts = 0, rinit_restarts = 0, last = 0, rinit_last = 0, t;
	int total = cJSON_GetArraySize(jarr(spec, "containers")), ready = 0, i = 0;
	char reason[160], buf[64];
	bool initializing = false;
	const cJSON *c;

	snprintf(reason, sizeof(reason), "%s", *jstr(st, "reason") ? jstr(st, "reason") : phase);
	cJSON_ArrayForEach(c, conds)
	if (streq(jstr(c, "type"), "PodScheduled") && streq(jstr(c, "reason"), "SchedulingGated"))
		snprintf(reason, sizeof(reason), "SchedulingGated");
	if (streq(phase, "Succeeded") || streq(phase, "Failed")) {
		cJSON *rc = cJSON_AddArrayToObject(row, "conditions"), *x = cJSON_CreateObject();
		bool ok = streq(phase, "Succeeded");
		cJSON_AddStringToObject(x, "type", "Completed");
		cJSON_AddStringToObject(x, "status", "True");
		cJSON_AddStringToObject(x, "reason", phase);
		cJSON_AddStringToObject(x, "message",
					ok ? "The pod has completed successfully." : "The pod failed.");
		cJSON_AddItemToArray(rc, x);
	}
	cJSON_ArrayForEach(c, jarr(spec, "initContainers"))
	if (streq(jstr(c, "restartPolicy"), "Always"))
		total++;

	int ninit = cJSON_GetArraySize(jarr(spec, "initContainers"));
	cJSON_ArrayForEach(cs, jarr(st, "initContainerStatuses"))
	{
		const cJSON *state = jget(cs, "state"), *term = jget(state, "terminated");
		const cJSON *wait = jget(state, "waiting");
		const cJSON *lterm = jget(jget(cs, "lastState"), "terminated");
		bool rinit = restartable_init(spec, jstr(cs, "name"));

		restarts += jint(cs, "restartCount");
		if (lterm && jtime(lterm, "finishedAt", &t) && t > last)
			last = t;
		if (rinit) {
			rinit_restarts += jint(cs, "restartCount");
			if (lterm && jtime(lterm, "finishedAt", &t) && t > rinit_last)
				rinit_last = t;
		}
		if (cJSON_IsObject(term) && jint(term, "exitCode") == 0) {
			i++;
			continue;
		}
		if (rinit && cJSON_IsTrue(jget(cs, "started"))) {
			if (cJSON_IsTrue(jget(cs, "ready")))
				ready++;
			i++;
			continue;
		}
		if (cJSON_IsObject(term)) {
			if (!*jstr(term, "reason")) {
				if (jint(term, "signal"))
					snprintf(reason, sizeof(reason), "Init:Signal:%lld",
						 (long long)jint(term, "signal"));
				else
					snprintf(reason, sizeof(reason), "Init:ExitCode:%lld",
						 (long long)jint(term, "exitCode"));
			} else {
				snprintf(reason, sizeof(reason), "Init:%s", jstr(term, "reason"));
			}
		} else if (cJSON_IsObject(wait) && *jstr(wait, "reason") &&
			   !streq(jstr(wait, "reason"), "PodInitializing")) {
			snprintf(reason, sizeof(reason), "Init:%s", jstr(wait, "reason"));
		} else {
			snprintf(reason, sizeof(reason), "Init:%d/%d", i, ninit);
		}
		initializing = true;
		break;
	}
	if (!initializing || cond_true(conds, "Initialized")) {
		const cJSON *list = jarr(st, "containerStatuses");
		bool running = false;

		restarts = rinit_restarts;
		last = rinit_last;
		for (int k = cJSON_GetArraySize(list) - 1; k >= 0; k--) {
			cs = cJSON_GetArrayItem(list, k);
			const cJSON *state = jget(cs, "state"), *term = jget(state, "terminated");
			const cJSON *wait = jget(state, "waiting");
			const cJSON *lterm = jget(jget(cs, "lastState"), "terminated");

			restarts += jint(cs, "restartCount");
			if (lterm && jtime(lterm, "finishedAt", &t) && t > last)
				last = t;
			if (cJSON_IsObject(wait) && *jstr(wait, "reason")) {
				snprintf(reason, sizeof(reason), "%s", jstr(wait, "reason"));
			} else if (cJSON_IsObject(term) && *jstr(term, "reason")) {
				snprintf(reason, sizeof(reason), "%s", jstr(term, "reason"));
			} else if (cJSON_IsObject(term)) {
				if (jint(term, "signal"))
					snprintf(reason, sizeof(reason), "Signal:%lld",
						 (long long)jint(term, "signal"));
				else
					snprintf(reason, sizeof(reason), "ExitCode:%lld",
						 (long long)jint(term, "exitCode"));
			} else if (cJSON_IsTrue(jget(cs, "ready")) &&
				   cJSON_IsObject(jget(state, "running"))) {
				running = true;
				ready++;
			}
		}
		if (streq(reason, "Completed") && running)
			snprintf(reason, sizeof(reason), "%s",
				 cond_true(conds, "Ready") ? "Running" : "NotReady");
	}
	if (jget(meta, "deletionTimestamp") && !cJSON_IsNull(jget(meta, "deletionTimestamp"))) {
		if (streq(jstr(st, "reason"), "NodeLost"))
			snprintf(reason, sizeof(reason), "Unknown");
		else if (!streq(phase, "Succeeded") && !streq(phase, "Failed"))
			snprintf(reason, sizeof(reason), "Terminating");
	}

	add_str(cells, jstr(meta, "name"));
	snprintf(buf, sizeof(buf), "%d/%d", ready, total);
	add_str(cells, buf);
	add_str(cells, reason);
	if (restarts && last) {
		char age[32];
		table_age(now - last, age, sizeof(age));
		snprintf(buf, sizeof(buf), "%lld (%s ago)", (long long)restarts, age);
	} else {
		snprintf(buf, sizeof(buf), "%lld", (long long)restarts);
	}
	add_str(cells, buf);
	add_age(cells, obj, now);

	const char *ip = jstr(cJSON_GetArrayItem(jarr(st, "podIPs"), 0), "ip");
	if (!*ip)
		ip = jstr(st, "podIP");
	add_str(cells, *ip ? ip : "<none>");
	add_str(cells, *jstr(spec, "nodeName") ? jstr(spec, "nodeName") : "<none>");
	add_str(cells, *jstr(st, "nominatedNodeName") ? jstr(st, "nominatedNodeName") : "<none>");
	const cJSON *gates = jarr(spec, "readinessGates"), *g;
	if (cJSON_GetArraySize(gates) > 0) {
		int ok = 0;
		cJSON_ArrayForEach(g, gates)
		cJSON_ArrayForEach(c, conds)
		if (streq(jstr(c, "type"), jstr(g, "conditionType"))) {
			ok += streq(jstr(c, "status"), "True");
			break;
		}
		snprintf(buf, sizeof(buf), "%d/%d", ok, cJSON_GetArraySize(gates));
		add_str(cells, buf);
	} else {
		add_str(cells, "<none>");
	}
}

static void row_service(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *spec = jget(obj, "spec"), *p, *ing;
	const char *type = jstr(spec, "type");
	const char *cip;
	struct sbuf ports = { 0 }, ext = { 0 };
	char buf[64];

	if (!cJSON_IsString(cJSON_GetArrayItem(jarr(spec, "clusterIPs"), 0)))
		cip = jstr(spec, "clusterIP");
	else
		cip = cJSON_GetArrayItem(jarr(spec, "clusterIPs"), 0)->valuestring;
	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	add_str(cells, type);
	add_str(cells, *cip ? cip : "<none>");

	const cJSON *eips = jarr(spec, "externalIPs"), *e;
	bool first = true;
	if (streq(type, "ClusterIP") || streq(type, "NodePort")) {
		cJSON_ArrayForEach(e, eips)
		{
			if (!first)
				sb_add(&ext, ",");
			first = false;
			sb_add(&ext, cJSON_IsString(e) ? e->valuestring : "");
		}
		add_str(cells, first ? "<none>" : sb_str(&ext));
	} else if (streq(type, "LoadBalancer")) {
		/* ingress IPs/hostnames (sorted set), then externalIPs */
		const char *lbs[32];
		int n = 0;
		cJSON_ArrayForEach(ing, jarr(jget(jget(obj, "status"), "loadBalancer"), "ingress"))
		{
			const char *x = *jstr(ing, "ip") ? jstr(ing, "ip") : jstr(ing, "hostname");
			bool dup = false;
			for (int k = 0; k < n; k++)
				dup |= streq(lbs[k], x);
			if (*x && !dup && n < 32)
				lbs[n++] = x;
		}
		qsort(lbs, n, sizeof(lbs[0]), cmp_str);
		for (int k = 0; k < n; k++) {
			if (!first)
				sb_add(&ext, ",");
			first = false;
			sb_add(&ext, lbs[k]);
		}
		cJSON_ArrayForEach(e, eips)
		{
			if (!first)
				sb_add(&ext, ",");
			first = false;
			sb_add(&ext, cJSON_IsString(e) ? e->valuestring : "");
		}
		add_str(cells, first ? "<pending>" : sb_str(&ext));
	} else if (streq(type, "ExternalName")) {
		add_str(cells, jstr(spec, "externalName"));
	} else {
		add_str(cells, "<unknown>");
	}
	first = true;
	cJSON_ArrayForEach(p, jarr(spec, "ports"))
	{
		if (!first)
			sb_add(&ports, ",");
		first = false;
		if (jint(p, "nodePort") > 0)
			snprintf(buf, sizeof(buf), "%lld:%lld/%s", (long long)jint(p, "port"),
				 (long long)jint(p, "nodePort"), jstr(p, "protocol"));
		else
			snprintf(buf, sizeof(buf), "%lld/%s", (long long)jint(p, "port"),
				 jstr(p, "protocol"));
		sb_add(&ports, buf);
	}
	add_str(cells, first ? "<none>" : sb_str(&ports));
	add_age(cells, obj, now);
	add_labels(cells, jget(spec, "selector"));
	free(ports.s);
	free(ext.s);
}

static void row_deployment(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *spec = jget(obj, "spec"), *st = jget(obj, "status");
	char buf[48];

	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	snprintf(buf, sizeof(buf), "%lld/%lld", (long long)jint(st, "readyReplicas"),
		 (long long)jint(spec, "replicas"));
	add_str(cells, buf);
	add_int(cells, jint(st, "updatedReplicas"));
	add_int(cells, jint(st, "availableReplicas"));
	add_age(cells, obj, now);
	add_containers(cells, jget(jget(spec, "template"), "spec"));
	add_selector(cells, jget(spec, "selector"));
}

static void row_replicaset(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *spec = jget(obj, "spec"), *st = jget(obj, "status");

	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	add_int(cells, jint(spec, "replicas"));
	add_int(cells, jint(st, "replicas"));
	add_int(cells, jint(st, "readyReplicas"));
	add_age(cells, obj, now);
	add_containers(cells, jget(jget(spec, "template"), "spec"));
	add_selector(cells, jget(spec, "selector"));
}

static void row_daemonset(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *spec = jget(obj, "spec"), *st = jget(obj, "status");
	const cJSON *pspec = jget(jget(spec, "template"), "spec");

	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	add_int(cells, jint(st, "desiredNumberScheduled"));
	add_int(cells, jint(st, "currentNumberScheduled"));
	add_int(cells, jint(st, "numberReady"));
	add_int(cells, jint(st, "updatedNumberScheduled"));
	add_int(cells, jint(st, "numberAvailable"));
	add_labels(cells, jget(pspec, "nodeSelector"));
	add_age(cells, obj, now);
	add_containers(cells, pspec);
	add_selector(cells, jget(spec, "selector"));
}

/* kubectl's "<kind>.<group>/<name>" of the controller reference, lower-cased kind and group */
static void row_controllerrevision(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *r, *ctl = NULL;
	char buf[320];

	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	cJSON_ArrayForEach(r, jarr(jget(obj, "metadata"), "ownerReferences"))
	if (cJSON_IsTrue(jget(r, "controller")) && !ctl)
		ctl = r;
	if (ctl) {
		const char *av = jstr(ctl, "apiVersion"), *slash = strchr(av, '/');
		size_t o = 0;
		for (const char *k = jstr(ctl, "kind"); *k && o < 100; k++)
			buf[o++] = (char)tolower((unsigned char)*k);
		if (slash) {
			buf[o++] = '.';
			for (const char *g = av; g < slash && o < 200; g++)
				buf[o++] = (char)tolower((unsigned char)*g);
		}
		snprintf(buf + o, sizeof(buf) - o, "/%s", jstr(ctl, "name"));
		add_str(cells, buf);
	} else {
		add_str(cells, "<none>");
	}
	add_int(cells, jint(obj, "revision"));
	add_age(cells, obj, now);
}

static void row_job(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *spec = jget(obj, "spec"), *st = jget(obj, "status");
	const cJSON *conds = jarr(st, "conditions");
	int64_t succ = jint(st, "succeeded"), start, end;
	char buf[64] = "", dur[32] = "";

	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	if (cond_true(conds, "Complete"))
		add_str(cells, "Complete");
	else if (cond_true(conds, "Failed"))
		add_str(cells, "Failed");
	else if (jget(jget(obj, "metadata"), "deletionTimestamp"))
		add_str(cells, "Terminating");
	else if (cond_true(conds, "Suspended"))
		add_str(cells, "Suspended");
	else if (cond_true(conds, "FailureTarget"))
		add_str(cells, "FailureTarget");
	else
		add_str(cells, "Running");
	if (cJSON_IsNumber(jget(spec, "completions")))
		snprintf(buf, sizeof(buf), "%lld/%lld", (long long)succ,
			 (long long)jint(spec, "completions"));
	else if (jint(spec, "parallelism") > 1)
		snprintf(buf, sizeof(buf), "%lld/1 of %lld", (long long)succ,
			 (long long)jint(spec, "parallelism"));
	else
		snprintf(buf, sizeof(buf), "%lld/1", (long long)succ);
	add_str(cells, buf);
	if (jtime(st, "startTime", &start)) {
		if (jtime(st, "completionTime", &end))
			table_age(end - start, dur, sizeof(dur));
		else
			table_age(now - start, dur, sizeof(dur));
	}
	add_str(cells, dur);
	add_age(cells, obj, now);
	add_containers(cells, jget(jget(spec, "template"), "spec"));
	add_selector(cells, jget(spec, "selector"));
}

static void row_node(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *meta = jget(obj, "metadata"), *st = jget(obj, "status"), *c, *l;
	const cJSON *info = jget(st, "nodeInfo");
	struct sbuf status = { 0 }, roles = { 0 };
	const char *rl[64];
	int nr = 0;

	cJSON_ArrayForEach(c, jarr(st, "conditions"))
	if (streq(jstr(c, "type"), "Ready"))
		sb_add(&status, streq(jstr(c, "status"), "True") ? "Ready" : "NotReady");
	if (!status.len)
		sb_add(&status, "Unknown");
	if (cJSON_IsTrue(jget(jget(obj, "spec"), "unschedulable")))
		sb_add(&status, ",SchedulingDisabled");
	cJSON_ArrayForEach(l, (cJSON_IsObject(jget(meta, "labels")) ? jget(meta, "labels") : NULL))
	{
		const char *role = NULL;
		if (strncmp(l->string, "node-role.kubernetes.io/", 24) == 0 && l->string[24])
			role = l->string + 24;
		else if (streq(l->string, "kubernetes.io/role") && cJSON_IsString(l) &&
			 *l->valuestring)
			role = l->valuestring;
		bool dup = false;
		for (int k = 0; role && k < nr; k++)
			dup |= streq(rl[k], role);
		if (role && !dup && nr < 64)
			rl[nr++] = role;
	}
	qsort(rl, nr, sizeof(rl[0]), cmp_str);
	for (int k = 0; k < nr; k++) {
		if (k)
			sb_add(&roles, ",");
		sb_add(&roles, rl[k]);
	}
	add_str(cells, jstr(meta, "name"));
	add_str(cells, sb_str(&status));
	add_str(cells, nr ? sb_str(&roles) : "<none>");
	add_age(cells, obj, now);
	add_str(cells, jstr(info, "kubeletVersion"));
	const char *iip = "<none>", *eip = "<none>";
	const cJSON *a;
	cJSON_ArrayForEach(a, jarr(st, "addresses"))
	{
		if (streq(jstr(a, "type"), "InternalIP") && streq(iip, "<none>"))
			iip = jstr(a, "address");
		if (streq(jstr(a, "type"), "ExternalIP") && streq(eip, "<none>"))
			eip = jstr(a, "address");
	}
	add_str(cells, iip);
	add_str(cells, eip);
	add_str(cells, *jstr(info, "osImage") ? jstr(info, "osImage") : "<unknown>");
	add_str(cells, *jstr(info, "kernelVersion") ? jstr(info, "kernelVersion") : "<unknown>");
	add_str(cells, *jstr(info, "containerRuntimeVersion") ? jstr(info, "containerRuntimeVersion")
							      : "<unknown>");
	free(status.s);
	free(roles.s);
}

static void row_namespace(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	add_str(cells, jstr(jget(obj, "status"), "phase"));
	add_age(cells, obj, now);
}

static int obj_size(const cJSON *o)
{
	return cJSON_IsObject(o) ? cJSON_GetArraySize(o) : 0;
}

static void row_configmap(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	add_int(cells, obj_size(jget(obj, "data")) + obj_size(jget(obj, "binaryData")));
	add_age(cells, obj, now);
}

static void row_secret(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	add_str(cells, jstr(obj, "type"));
	add_int(cells, obj_size(jget(obj, "data")));
	add_age(cells, obj, now);
}

static void row_event(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *io = jget(obj, "involvedObject"), *series = jget(obj, "series");
	const cJSON *src = jget(obj, "source");
	char first[32], lastb[32], target[320], kind[64];
	int64_t count = jint(obj, "count");
	size_t k;

	if (*jstr(obj, "firstTimestamp"))
		since(obj, "firstTimestamp", now, first, sizeof(first));
	else
		since(obj, "eventTime", now, first, sizeof(first));
	if (*jstr(obj, "lastTimestamp"))
		since(obj, "lastTimestamp", now, lastb, sizeof(lastb));
	else
		snprintf(lastb, sizeof(lastb), "%s", first);
	if (cJSON_IsObject(series)) {
		since(series, "lastObservedTime", now, lastb, sizeof(lastb));
		count = jint(series, "count");
	} else if (count == 0) {
		count = 1;
	}
	snprintf(kind, sizeof(kind), "%s", jstr(io, "kind"));
	for (k = 0; kind[k]; k++)
		kind[k] = tolower((unsigned char)kind[k]);
	if (*jstr(io, "name"))
		snprintf(target, sizeof(target), "%s/%s", kind, jstr(io, "name"));
	else
		snprintf(target, sizeof(target), "%s", kind);
	add_str(cells, lastb);
	add_str(cells, jstr(obj, "type"));
	add_str(cells, jstr(obj, "reason"));
	add_str(cells, target);
	add_str(cells, jstr(io, "fieldPath"));
	{
		const char *comp = *jstr(src, "component") ? jstr(src, "component")
							    : jstr(obj, "reportingComponent");
		const char *inst = *jstr(src, "host") ? jstr(src, "host")
						       : jstr(obj, "reportingInstance");
		char s[320];
		if (*inst)
			snprintf(s, sizeof(s), "%s, %s", comp, inst);
		else
			snprintf(s, sizeof(s), "%s", comp);
		add_str(cells, s);
	}
	/* strings.TrimSpace(message) */
	{
		const char *m = jstr(obj, "message");
		size_t n;
		while (isspace((unsigned char)*m))
			m++;
		n = strlen(m);
		while (n && isspace((unsigned char)m[n - 1]))
			n--;
		char *t = strndup(m, n);
		add_str(cells, t ? t : "");
		free(t);
	}
	add_str(cells, first);
	add_int(cells, count);
	add_str(cells, jstr(jget(obj, "metadata"), "name"));
}

static void row_endpoints(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *subsets = jarr(obj, "subsets"), *ss, *p, *a;
	struct sbuf b = { 0 };
	int listed = 0, count = 0;
	const int max = 3;
	bool more = false;
	char buf[96];

	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	if (cJSON_GetArraySize(subsets) == 0) {
		add_str(cells, "<none>");
		add_age(cells, obj, now);
		return;
	}
	cJSON_ArrayForEach(ss, subsets)
	{
		const cJSON *ports = jarr(ss, "ports"), *addrs = jarr(ss, "addresses");
		if (cJSON_GetArraySize(ports) == 0) {
			count += cJSON_GetArraySize(addrs);
			cJSON_ArrayForEach(a, addrs)
			{
				if (listed == max) {
					more = true;
					break;
				}
				if (listed++)
					sb_add(&b, ",");
				sb_add(&b, jstr(a, "ip"));
			}
			continue;
		}
		cJSON_ArrayForEach(p, ports)
		{
			count += cJSON_GetArraySize(addrs);
			cJSON_ArrayForEach(a, addrs)
			{
				const char *ip = jstr(a, "ip");
				if (listed == max) {
					more = true;
					break;
				}
				if (listed++)
					sb_add(&b, ",");
				snprintf(buf, sizeof(buf), strchr(ip, ':') ? "[%s]:%lld" : "%s:%lld",
					 ip, (long long)jint(p, "port"));
				sb_add(&b, buf);
			}
		}
	}
	if (more) {
		snprintf(buf, sizeof(buf), " + %d more...", count - max);
		sb_add(&b, buf);
	}
	add_str(cells, sb_str(&b));
	add_age(cells, obj, now);
	free(b.s);
}

/* kubectl's EndpointSlice columns: ports as a list, the first three addresses + "N more" */
static void row_endpointslice(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *e, *a, *p;
	struct sbuf ports = { 0 }, addrs = { 0 };
	int listed = 0, count = 0;
	char buf[64];

	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	add_str(cells, jstr(obj, "addressType"));
	cJSON_ArrayForEach(p, jarr(obj, "ports"))
	{
		snprintf(buf, sizeof(buf), "%s%lld", ports.s && *ports.s ? "," : "",
			 (long long)jint(p, "port"));
		sb_add(&ports, buf);
	}
	cJSON_ArrayForEach(e, jarr(obj, "endpoints")) cJSON_ArrayForEach(a, jarr(e, "addresses"))
	{
		if (count++ >= 3)
			continue;
		if (listed++)
			sb_add(&addrs, ",");
		sb_add(&addrs, cJSON_IsString(a) ? a->valuestring : "");
	}
	if (count > 3) {
		snprintf(buf, sizeof(buf), " + %d more...", count - 3);
		sb_add(&addrs, buf);
	}
	add_str(cells, ports.s && *ports.s ? sb_str(&ports) : "<unset>");
	add_str(cells, count ? sb_str(&addrs) : "<unset>");
	add_age(cells, obj, now);
	free(ports.s);
	free(addrs.s);
}

static void add_int_or_str(cJSON *cells, const cJSON *v)
{
	char buf[32];

	if (cJSON_IsNumber(v)) {
		snprintf(buf, sizeof(buf), "%lld", (long long)v->valuedouble);
		add_str(cells, buf);
	} else {
		add_str(cells, cJSON_IsString(v) ? v->valuestring : "N/A");
	}
}

static void row_pdb(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	const cJSON *spec = jget(obj, "spec");

	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	add_int_or_str(cells, jget(spec, "minAvailable"));
	add_int_or_str(cells, jget(spec, "maxUnavailable"));
	add_int(cells, jint(jget(obj, "status"), "disruptionsAllowed"));
	add_age(cells, obj, now);
}

static void row_default(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now)
{
	add_str(cells, jstr(jget(obj, "metadata"), "name"));
	add_str(cells, jstr(jget(obj, "metadata"), "creationTimestamp"));
}

typedef void (*row_fn)(cJSON *row, cJSON *cells, const cJSON *obj, int64_t now);

static const struct {
	const char *kind;
	const struct col *cols;
	row_fn row;
} printers[] = {
	{ "Pod", pod_cols, row_pod },
	{ "Service", svc_cols, row_service },
	{ "Deployment", deploy_cols, row_deployment },
	{ "ReplicaSet", rs_cols, row_replicaset },
	{ "DaemonSet", ds_cols, row_daemonset },
	{ "ControllerRevision", crev_cols, row_controllerrevision },
	{ "Job", job_cols, row_job },
	{ "Node", node_cols, row_node },
	{ "Namespace", ns_cols, row_namespace },
	{ "ConfigMap", cm_cols, row_configmap },
	{ "Secret", secret_cols, row_secret },
	{ "Event", event_cols, row_event },
	{ "Endpoints", ep_cols, row_endpoints },
	{ "EndpointSlice", eps_cols, row_endpointslice },
	{ "PodDisruptionBudget", pdb_cols, row_pdb },
};

static int printer_for(const char *kind)
{
	for (size_t i = 0; kind && i < ARRAY_SIZE(printers); i++)
		if (streq(printers[i].kind, kind))
			return (int)i;
	return -1;
}

cJSON *table_new(const char *kind)
{
	int p = printer_for(kind);
	const struct col *cols = p >= 0 ? printers[p].cols : default_cols;
	cJSON *t = cJSON_CreateObject(), *defs;

	if (!t)
		return NULL;
	cJSON_AddStringToObject(t, "kind", "Table");
	cJSON_AddStringToObject(t, "apiVersion", "meta.k8s.io/v1");
	cJSON_AddObjectToObject(t, "metadata");
	defs = cJSON_AddArrayToObject(t, "columnDefinitions");
	for (; cols->name; cols++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "name", cols->name);
		cJSON_AddStringToObject(c, "type", cols->type);
		cJSON_AddStringToObject(c, "format", cols->format ? cols->format : "");
		cJSON_AddStringToObject(c, "description", cols->desc);
		cJSON_AddNumberToObject(c, "priority", cols->priority);
		cJSON_AddItemToArray(defs, c);
	}
	cJSON_AddArrayToObject(t, "rows");
	if (!cJSON_GetObjectItemCaseSensitive(t, "rows")) {
		cJSON_Delete(t);
		return NULL;
	}
	return t;
}

void table_add_row(cJSON *table, const char *kind, const cJSON *obj, int64_t now,
		   const char *include_object)
{
	cJSON *rows = cJSON_GetObjectItemCaseSensitive(table, "rows");
	cJSON *row, *cells;
	int p = printer_for(kind);

	if (!cJSON_IsArray(rows))
		return;
	row = cJSON_CreateObject();
	if (!row)
		return;
	cells = cJSON_AddArrayToObject(row, "cells");
	(p >= 0 ? printers[p].row : row_default)(row, cells, obj, now);
	if (include_object && streq(include_object, "Object")) {
		cJSON_AddItemToObject(row, "object", cJSON_Duplicate(obj, true));
	} else if (!include_object || !streq(include_object, "None")) {
		cJSON *pom = cJSON_AddObjectToObject(row, "object");
		const cJSON *meta = jget(obj, "metadata");
		cJSON_AddStringToObject(pom, "kind", "PartialObjectMetadata");
		cJSON_AddStringToObject(pom, "apiVersion", "meta.k8s.io/v1");
		cJSON_AddItemToObject(pom, "metadata", cJSON_IsObject(meta)
							       ? cJSON_Duplicate(meta, true)
							       : cJSON_CreateObject());
	}
	cJSON_AddItemToArray(rows, row);
}
