// SPDX-License-Identifier: Apache-2.0
/*
 * describe: a human summary of one object, shaped like kubectl's: metadata, the fields that
 * matter for its kind, conditions, then its events. Kinds without a describer get their
 * spec and status as YAML. Pure: the object, its events and the clock come in as arguments.
 */
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "lib/yaml.h"
#include "lib/json.h"
#include "tools/shoalctl/shoalctl.h"

/* value column: 20 at the top level and in nested sections (containers, template) */
#define KEY_WIDTH 20
#define NESTED_WIDTH 20
#define VALUE_COL(indent) ((indent) ? NESTED_WIDTH : KEY_WIDTH)

static const cJSON *get(const cJSON *j, const char *path)
{
	return json_path(j, path);
}

/* "key:" padded to the value column, then the value. */
static void kv(FILE *out, int indent, const char *key, const char *value)
{
	int pad = VALUE_COL(indent) - indent - (int)strlen(key) - 1;

	fprintf(out, "%*s%s:%*s%s\n", indent, "", key, pad > 1 ? pad : 1, "",
		value && *value ? value : "<none>");
}

static void kv_num(FILE *out, int indent, const char *key, const cJSON *v)
{
	_cleanup_free_ char *s = v ? ctl_cell_string(v) : NULL;

	kv(out, indent, key, s);
}

static void kv_json(FILE *out, int indent, const char *key, const cJSON *obj, const char *path)
{
	const cJSON *v = get(obj, path);

	if (cJSON_IsString(v))
		kv(out, indent, key, v->valuestring);
	else
		kv_num(out, indent, key, v);
}

/* Labels and annotations: first pair on the key's line, the rest under it. */
static void kv_map(FILE *out, int indent, const char *key, const cJSON *map, const char *sep)
{
	const cJSON *it;
	bool first = true;

	cJSON_ArrayForEach(it, map) {
		_cleanup_free_ char *v = NULL, *line = NULL;

		if (streq(it->string, CTL_LAST_APPLIED))
			continue; /* kubectl hides it too: it repeats the manifest */
		v = ctl_cell_string(it);
		if (!v || asprintf(&line, "%s%s%s", it->string, sep, v) < 0)
			return;
		if (first)
			kv(out, indent, key, line);
		else
			fprintf(out, "%*s%s\n", VALUE_COL(indent), "", line);
		first = false;
	}
	if (first)
		kv(out, indent, key, NULL);
}

static void timestamp(const char *rfc3339, char *buf, size_t len)
{
	int64_t t;
	struct tm tm;

	if (!rfc3339 || util_rfc3339_parse(rfc3339, &t) < 0) {
		snprintf(buf, len, "%s", rfc3339 ? rfc3339 : "<unset>");
		return;
	}
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

static void kv_time(FILE *out, int indent, const char *key, const char *rfc3339)
{
	char buf[64];

	if (!rfc3339) {
		kv(out, indent, key, NULL);
		return;
	}
	timestamp(rfc3339, buf, sizeof(buf));
	kv(out, indent, key, buf);
}

static void age_of(const char *rfc3339, int64_t now, char *buf, size_t len)
{
	int64_t t;

	if (!rfc3339 || util_rfc3339_parse(rfc3339, &t) < 0)
		snprintf(buf, len, "<unknown>");
	else
		ctl_age(now - t, buf, len);
}

/* A Table (columns + rows of strings) printed with kubectl's spacing, indented. */
static void print_rows(FILE *out, int indent, const char *const *cols, size_t ncols,
		       cJSON *rows, bool dashes)
{
	_cleanup_json_ cJSON *table = cJSON_CreateObject();
	_cleanup_(ctl_tab_done) struct ctl_tab tab = {};
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	cJSON *defs, *dash = NULL;
	FILE *mem;

	if (!table)
		return;
	defs = cJSON_AddArrayToObject(table, "columnDefinitions");
	for (size_t i = 0; defs && i < ncols; i++) {
		cJSON *d = cJSON_CreateObject();

		cJSON_AddItemToArray(defs, d);
		cJSON_AddStringToObject(d, "name", cols[i]);
	}
	if (dashes) { /* kubectl underlines event columns: "----  ------" */
		cJSON *cells;

		dash = cJSON_CreateObject();
		cells = cJSON_AddArrayToObject(dash, "cells");
		for (size_t i = 0; cells && i < ncols; i++) {
			char d[64];
			size_t n = strlen(cols[i]) < sizeof(d) ? strlen(cols[i]) : sizeof(d) - 1;

			memset(d, '-', n);
			d[n] = 0;
			cJSON_AddItemToArray(cells, cJSON_CreateString(d));
		}
		cJSON_InsertItemInArray(rows, 0, dash);
	}
	cJSON_AddItemReferenceToObject(table, "rows", rows);
	if (ctl_tab_add(&tab, table) < 0)
		return;
	/* headers keep the caller's capitalisation ("Type", not "TYPE") */
	for (size_t i = 0; i < tab.ncols; i++) {
		free(tab.header[i]);
		tab.header[i] = strdup(cols[i]);
		if (!tab.header[i])
			return;
	}
	mem = open_memstream(&text, &len);
	if (!mem)
		return;
	ctl_tab_print(&tab, true, mem);
	fclose(mem);
	for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		fprintf(out, "%*s%.*s\n", indent, "", nl ? (int)(nl - line) : (int)strlen(line),
			line);
	}
	if (dash)
		cJSON_DeleteItemFromArray(rows, 0);
}

static cJSON *row_of(cJSON *rows)
{
	cJSON *row = cJSON_CreateObject();

	if (!row)
		return NULL;
	cJSON_AddItemToArray(rows, row);
	return cJSON_AddArrayToObject(row, "cells");
}

static void cell(cJSON *cells, const char *s)
{
	cJSON_AddItemToArray(cells, cJSON_CreateString(s ? s : ""));
}

static void conditions(FILE *out, const cJSON *obj, bool with_reason)
{
	const cJSON *conds = get(obj, "status.conditions");
	_cleanup_json_ cJSON *rows = cJSON_CreateArray();
	static const char *const cols3[] = { "Type", "Status", "Reason" };
	const cJSON *c;

	if (!cJSON_IsArray(conds) || !rows)
		return;
	fprintf(out, "Conditions:\n");
	if (!cJSON_GetArraySize(conds)) {
		fprintf(out, "  <none>\n");
		return;
	}
	cJSON_ArrayForEach(c, conds) {
		cJSON *cells = row_of(rows);

		if (!cells)
			return;
		cell(cells, ctl_json_str(c, "type"));
		cell(cells, ctl_json_str(c, "status"));
		if (with_reason)
			cell(cells, ctl_json_str(c, "reason") ?: "<none>");
	}
	print_rows(out, 2, cols3, with_reason ? 3 : 2, rows, true);
}

static void metadata(FILE *out, const cJSON *obj, bool with_time)
{
	const cJSON *meta = get(obj, "metadata");
	const cJSON *owners = get(meta, "ownerReferences");
	const cJSON *o;

	kv_json(out, 0, "Name", meta, "name");
	if (ctl_json_str(meta, "namespace"))
		kv_json(out, 0, "Namespace", meta, "namespace");
	if (with_time)
		kv_time(out, 0, "CreationTimestamp", ctl_json_str(meta, "creationTimestamp"));
	kv_map(out, 0, "Labels", get(meta, "labels"), "=");
	kv_map(out, 0, "Annotations", get(meta, "annotations"), ": ");
	cJSON_ArrayForEach(o, owners) {
		char buf[300];

		if (!cJSON_IsTrue(get(o, "controller")))
			continue;
		snprintf(buf, sizeof(buf), "%s/%s", ctl_json_str(o, "kind") ?: "",
			 ctl_json_str(o, "name") ?: "");
		kv(out, 0, "Controlled By", buf);
	}
	if (ctl_json_str(meta, "deletionTimestamp"))
		kv_time(out, 0, "Deleting Since", ctl_json_str(meta, "deletionTimestamp"));
}

static void string_list(FILE *out, int indent, const char *key, const cJSON *list)
{
	const cJSON *s;

	if (!cJSON_GetArraySize(list))
		return;
	fprintf(out, "%*s%s:\n", indent, "", key);
	cJSON_ArrayForEach(s, list)
		fprintf(out, "%*s%s\n", indent + 2, "", cJSON_IsString(s) ? s->valuestring : "");
}

static void resources(FILE *out, int indent, const char *key, const cJSON *map)
{
	const cJSON *r;

	if (!cJSON_GetArraySize(map))
		return;
	fprintf(out, "%*s%s:\n", indent, "", key);
	cJSON_ArrayForEach(r, map) {
		_cleanup_free_ char *v = ctl_cell_string(r);

		kv(out, indent + 2, r->string, v);
	}
}

static const cJSON *container_status(const cJSON *pod, const char *name)
{
	const cJSON *cs;

	cJSON_ArrayForEach(cs, get(pod, "status.containerStatuses"))
		if (ctl_json_str(cs, "name") && name && streq(ctl_json_str(cs, "name"), name))
			return cs;
	return NULL;
}

static void container_state(FILE *out, int in, const char *key, const cJSON *state)
{
	const cJSON *s = state ? state->child : NULL;

	if (!s) {
		kv(out, in, key, "Waiting");
		return;
	}
	if (streq(s->string, "running")) {
		kv(out, in, key, "Running");
		kv_time(out, in + 2, "Started", ctl_json_str(s, "startedAt"));
	} else if (streq(s->string, "waiting")) {
		kv(out, in, key, "Waiting");
		if (ctl_json_str(s, "reason"))
			kv_json(out, in + 2, "Reason", s, "reason");
	} else if (streq(s->string, "terminated")) {
		kv(out, in, key, "Terminated");
		kv_json(out, in + 2, "Reason", s, "reason");
		kv_json(out, in + 2, "Exit Code", s, "exitCode");
		kv_time(out, in + 2, "Started", ctl_json_str(s, "startedAt"));
		kv_time(out, in + 2, "Finished", ctl_json_str(s, "finishedAt"));
	} else {
		kv(out, in, key, s->string);
	}
}

static void containers(FILE *out, int in, const char *title, const cJSON *list,
		       const cJSON *pod)
{
	const cJSON *c;

	if (!cJSON_GetArraySize(list))
		return;
	fprintf(out, "%*s%s:\n", in, "", title);
	cJSON_ArrayForEach(c, list) {
		const cJSON *ports = get(c, "ports"), *p, *env = get(c, "env"), *e;
		const cJSON *cs = pod ? container_status(pod, ctl_json_str(c, "name")) : NULL;

		fprintf(out, "%*s%s:\n", in + 2, "", ctl_json_str(c, "name") ?: "");
		kv_json(out, in + 4, "Image", c, "image");
		if (!cJSON_GetArraySize(ports))
			kv(out, in + 4, "Port", NULL);
		cJSON_ArrayForEach(p, ports) {
			_cleanup_free_ char *num = ctl_cell_string(get(p, "containerPort"));
			char buf[128];

			snprintf(buf, sizeof(buf), "%s/%s", num ? num : "",
				 ctl_json_str(p, "protocol") ?: "TCP");
			kv(out, in + 4, "Port", buf);
		}
		string_list(out, in + 4, "Command", get(c, "command"));
		string_list(out, in + 4, "Args", get(c, "args"));
		if (pod) {
			container_state(out, in + 4, "State", get(cs, "state"));
			if (get(cs, "lastState") && get(cs, "lastState")->child)
				container_state(out, in + 4, "Last State", get(cs, "lastState"));
			kv(out, in + 4, "Ready", cJSON_IsTrue(get(cs, "ready")) ? "True" : "False");
			if (get(cs, "restartCount"))
				kv_num(out, in + 4, "Restart Count", get(cs, "restartCount"));
			else
				kv(out, in + 4, "Restart Count", "0");
		}
		resources(out, in + 4, "Limits", get(c, "resources.limits"));
		resources(out, in + 4, "Requests", get(c, "resources.requests"));
		if (!cJSON_GetArraySize(env)) {
			kv(out, in + 4, "Environment", NULL);
		} else {
			fprintf(out, "%*sEnvironment:\n", in + 4, "");
			cJSON_ArrayForEach(e, env) {
				const char *v = ctl_json_str(e, "value");

				fprintf(out, "%*s%s:  %s\n", in + 6, "", ctl_json_str(e, "name") ?: "",
					v ? v : (get(e, "valueFrom") ? "(from a reference)" : ""));
			}
		}
	}
}

static void describe_pod(FILE *out, const cJSON *pod)
{
	const char *node = ctl_json_str(pod, "spec.nodeName");
	const char *host_ip = ctl_json_str(pod, "status.hostIP");
	const char *phase = ctl_json_str(pod, "status.phase");
	char buf[300];

	kv_json(out, 0, "Service Account", pod, "spec.serviceAccountName");
	if (node) {
		snprintf(buf, sizeof(buf), "%s%s%s", node, host_ip ? "/" : "", host_ip ?: "");
		kv(out, 0, "Node", buf);
	} else {
		kv(out, 0, "Node", NULL);
	}
	kv_time(out, 0, "Start Time", ctl_json_str(pod, "status.startTime"));
	kv(out, 0, "Status", ctl_json_str(pod, "metadata.deletionTimestamp") ? "Terminating"
										 : phase ?: "Pending");
	if (ctl_json_str(pod, "status.reason"))
		kv_json(out, 0, "Reason", pod, "status.reason");
	if (ctl_json_str(pod, "status.message"))
		kv_json(out, 0, "Message", pod, "status.message");
	kv_json(out, 0, "IP", pod, "status.podIP");
	containers(out, 0, "Init Containers", get(pod, "spec.initContainers"), pod);
	containers(out, 0, "Containers", get(pod, "spec.containers"), pod);
	conditions(out, pod, false);
	kv_json(out, 0, "Restart Policy", pod, "spec.restartPolicy");
	kv_map(out, 0, "Node-Selectors", get(pod, "spec.nodeSelector"), "=");
}

static void selector_string(const cJSON *sel, char *buf, size_t len)
{
	const cJSON *l;
	size_t off = 0;

	buf[0] = 0;
	cJSON_ArrayForEach(l, get(sel, "matchLabels")) {
		off += snprintf(buf + off, off < len ? len - off : 0, "%s%s=%s", off ? "," : "",
				l->string, cJSON_IsString(l) ? l->valuestring : "");
	}
	cJSON_ArrayForEach(l, get(sel, "matchExpressions")) {
		off += snprintf(buf + off, off < len ? len - off : 0, "%s%s %s", off ? "," : "",
				ctl_json_str(l, "key") ?: "", ctl_json_str(l, "operator") ?: "");
	}
}

static void pod_template(FILE *out, const cJSON *tmpl)
{
	fprintf(out, "Pod Template:\n");
	kv_map(out, 2, "Labels", get(tmpl, "metadata.labels"), "=");
	containers(out, 2, "Containers", get(tmpl, "spec.containers"), NULL);
}

static int num(const cJSON *obj, const char *path)
{
	const cJSON *v = get(obj, path);

	return cJSON_IsNumber(v) ? v->valueint : 0;
}

static void describe_workload(FILE *out, const cJSON *obj, const char *kind)
{
	char buf[512];

	selector_string(get(obj, "spec.selector"), buf, sizeof(buf));
	kv(out, 0, "Selector", buf);
	if (streq(kind, "Deployment")) {
		snprintf(buf, sizeof(buf),
			 "%d desired | %d updated | %d total | %d available | %d unavailable",
			 get(obj, "spec.replicas") ? num(obj, "spec.replicas") : 1,
			 num(obj, "status.updatedReplicas"), num(obj, "status.replicas"),
			 num(obj, "status.availableReplicas"),
			 num(obj, "status.unavailableReplicas"));
		kv(out, 0, "Replicas", buf);
		kv_json(out, 0, "StrategyType", obj, "spec.strategy.type");
		snprintf(buf, sizeof(buf), "%d", num(obj, "spec.minReadySeconds"));
		kv(out, 0, "MinReadySeconds", buf);
	} else if (streq(kind, "ReplicaSet")) {
		snprintf(buf, sizeof(buf), "%d current / %d desired", num(obj, "status.replicas"),
			 get(obj, "spec.replicas") ? num(obj, "spec.replicas") : 1);
		kv(out, 0, "Replicas", buf);
		snprintf(buf, sizeof(buf), "%d Ready / %d Available",
			 num(obj, "status.readyReplicas"), num(obj, "status.availableReplicas"));
		kv(out, 0, "Pods Status", buf);
	} else if (streq(kind, "Job")) {
		kv_json(out, 0, "Parallelism", obj, "spec.parallelism");
		kv_json(out, 0, "Completions", obj, "spec.completions");
		kv_json(out, 0, "Backoff Limit", obj, "spec.backoffLimit");
		kv_time(out, 0, "Start Time", ctl_json_str(obj, "status.startTime"));
		snprintf(buf, sizeof(buf), "%d Active / %d Succeeded / %d Failed",
			 num(obj, "status.active"), num(obj, "status.succeeded"),
			 num(obj, "status.failed"));
		kv(out, 0, "Pods Statuses", buf);
	}
	pod_template(out, get(obj, "spec.template"));
	conditions(out, obj, true);
}

static void describe_service(FILE *out, const cJSON *svc)
{
	const cJSON *p;
	_cleanup_free_ char *ips = NULL;

	kv_map(out, 0, "Selector", get(svc, "spec.selector"), "=");
	kv_json(out, 0, "Type", svc, "spec.type");
	kv_json(out, 0, "IP", svc, "spec.clusterIP");
	cJSON_ArrayForEach(p, get(svc, "spec.ports")) {
		_cleanup_free_ char *port = ctl_cell_string(get(p, "port"));
		_cleanup_free_ char *target = get(p, "targetPort") ? ctl_cell_string(
								   get(p, "targetPort")) : NULL;
		_cleanup_free_ char *np = get(p, "nodePort") ? ctl_cell_string(get(p, "nodePort"))
							     : NULL;
		char buf[256];

		snprintf(buf, sizeof(buf), "%s  %s/%s", ctl_json_str(p, "name") ?: "<unset>",
			 port ? port : "", ctl_json_str(p, "protocol") ?: "TCP");
		kv(out, 0, "Port", buf);
		if (target) {
			snprintf(buf, sizeof(buf), "%s/%s", target,
				 ctl_json_str(p, "protocol") ?: "TCP");
			kv(out, 0, "TargetPort", buf);
		}
		if (np) {
			snprintf(buf, sizeof(buf), "%s  %s/%s", ctl_json_str(p, "name") ?: "<unset>",
				 np, ctl_json_str(p, "protocol") ?: "TCP");
			kv(out, 0, "NodePort", buf);
		}
	}
	kv_json(out, 0, "Session Affinity", svc, "spec.sessionAffinity");
}

static void describe_node(FILE *out, const cJSON *node)
{
	const cJSON *a;

	kv(out, 0, "Unschedulable", cJSON_IsTrue(get(node, "spec.unschedulable")) ? "true"
										     : "false");
	kv_json(out, 0, "PodCIDR", node, "spec.podCIDR");
	conditions(out, node, true);
	fprintf(out, "Addresses:\n");
	cJSON_ArrayForEach(a, get(node, "status.addresses"))
		kv(out, 2, ctl_json_str(a, "type") ?: "", ctl_json_str(a, "address"));
	resources(out, 0, "Capacity", get(node, "status.capacity"));
	resources(out, 0, "Allocatable", get(node, "status.allocatable"));
}

static void describe_data(FILE *out, const cJSON *obj, bool secret)
{
	const cJSON *d;

	if (secret)
		kv_json(out, 0, "Type", obj, "type");
	fprintf(out, "\nData\n====\n");
	cJSON_ArrayForEach(d, get(obj, "data")) {
		if (secret) {
			/* base64 length → bytes, without printing the value */
			size_t n = cJSON_IsString(d) ? strlen(d->valuestring) : 0;
			size_t bytes = n / 4 * 3;

			if (n >= 1 && d->valuestring[n - 1] == '=')
				bytes--;
			if (n >= 2 && d->valuestring[n - 2] == '=')
				bytes--;
			fprintf(out, "%s:  %zu bytes\n", d->string, bytes);
		} else {
			fprintf(out, "%s:\n----\n%s\n\n", d->string,
				cJSON_IsString(d) ? d->valuestring : "");
		}
	}
}

static void describe_generic(FILE *out, const cJSON *obj)
{
	static const char *const parts[] = { "spec", "status", "data" };

	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		const cJSON *p = get(obj, parts[i]);
		_cleanup_free_ char *yaml = NULL;

		if (!p || (cJSON_IsObject(p) && !p->child))
			continue;
		yaml = yaml_emit(p);
		if (!yaml)
			continue;
		fprintf(out, "%c%s:\n", parts[i][0] - 'a' + 'A', parts[i] + 1);
		for (char *line = yaml, *nl; line && *line; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			fprintf(out, "  %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
		}
	}
}

static void describe_events(FILE *out, const cJSON *events, int64_t now)
{
	static const char *const cols[] = { "Type", "Reason", "Age", "From", "Message" };
	_cleanup_json_ cJSON *rows = cJSON_CreateArray();
	const cJSON *ev;

	if (!cJSON_GetArraySize(events) || !rows) {
		kv(out, 0, "Events", NULL);
		return;
	}
	fprintf(out, "Events:\n");
	cJSON_ArrayForEach(ev, events) {
		const char *last = ctl_json_str(ev, "lastTimestamp") ?: ctl_json_str(ev, "eventTime")
						?: ctl_json_str(ev, "metadata.creationTimestamp");
		const char *from = ctl_json_str(ev, "source.component")
					   ?: ctl_json_str(ev, "reportingComponent")
					   ?: ctl_json_str(ev, "reportingController");
		const char *host = ctl_json_str(ev, "source.host");
		const cJSON *count = get(ev, "count");
		char age[64], over[32], fbuf[256], abuf[128];
		cJSON *cells = row_of(rows);
		_cleanup_free_ char *msg = NULL;

		if (!cells)
			return;
		age_of(last, now, age, sizeof(age));
		if (cJSON_IsNumber(count) && count->valueint > 1) {
			age_of(ctl_json_str(ev, "firstTimestamp"), now, over, sizeof(over));
			snprintf(abuf, sizeof(abuf), "%s (x%d over %s)", age, count->valueint, over);
		} else {
			snprintf(abuf, sizeof(abuf), "%s", age);
		}
		snprintf(fbuf, sizeof(fbuf), "%s%s%s", from ?: "", host && from ? ", " : "",
			 from ? host ?: "" : "");
		msg = strdup(ctl_json_str(ev, "message") ?: "");
		for (char *p = msg; p && *p; p++)
			if (*p == '\n')
				*p = ' ';
		cell(cells, ctl_json_str(ev, "type"));
		cell(cells, ctl_json_str(ev, "reason"));
		cell(cells, abuf);
		cell(cells, fbuf);
		cell(cells, msg);
	}
	print_rows(out, 2, cols, ARRAY_SIZE(cols), rows, true);
}

int ctl_describe_render(const cJSON *obj, const cJSON *events, int64_t now, FILE *out)
{
	const char *kind = ctl_json_str(obj, "kind") ?: "";
	bool has_conditions = false;

	if (!cJSON_IsObject(obj))
		return -EINVAL;
	metadata(out, obj, !streq(kind, "Pod"));
	if (streq(kind, "Pod")) {
		describe_pod(out, obj);
		has_conditions = true;
	} else if (streq(kind, "Deployment") || streq(kind, "ReplicaSet") || streq(kind, "Job")) {
		describe_workload(out, obj, kind);
		has_conditions = true;
	} else if (streq(kind, "Service")) {
		describe_service(out, obj);
	} else if (streq(kind, "Node")) {
		describe_node(out, obj);
		has_conditions = true;
	} else if (streq(kind, "ConfigMap") || streq(kind, "Secret")) {
		describe_data(out, obj, streq(kind, "Secret"));
	} else if (streq(kind, "Namespace")) {
		kv_json(out, 0, "Status", obj, "status.phase");
	} else {
		describe_generic(out, obj);
		has_conditions = true; /* already in the status dump */
	}
	if (!has_conditions)
		conditions(out, obj, true);
	describe_events(out, events, now);
	return 0;
}
