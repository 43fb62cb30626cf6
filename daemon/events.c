// SPDX-License-Identifier: Apache-2.0
/* Event recorder with kubelet-style aggregation of repeats. See events.h. */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "api/object.h"
#include "daemon/events.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#define EVENTS_CACHE 1024
#define EVENTS_AGGREGATE_MS (10 * 60 * 1000)

struct ev_entry {
	char *key;  /* uid \x1f type \x1f reason \x1f message */
	char *ns, *name;
	uint64_t last_ms;
};

struct events {
	struct store *store;
	char *component, *host;
	struct ev_entry cache[EVENTS_CACHE];
	size_t next; /* ring position for eviction */
};

int events_new(struct store *s, const char *component, const char *host, struct events **ret)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	ev->store = s;
	ev->component = strdup(component);
	ev->host = strdup(host);
	if (!ev->component || !ev->host) {
		events_free(ev);
		return -ENOMEM;
	}
	*ret = ev;
	return 0;
}

static void entry_clear(struct ev_entry *en)
{
	free(en->key);
	free(en->ns);
	free(en->name);
	memset(en, 0, sizeof(*en));
}

struct events *events_free(struct events *ev)
{
	if (!ev)
		return NULL;
	for (size_t i = 0; i < EVENTS_CACHE; i++)
		entry_clear(&ev->cache[i]);
	free(ev->component);
	free(ev->host);
	free(ev);
	return NULL;
}

static void now_micro(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char tmp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.20s.%06dZ", tmp, (int)(ts.tv_nsec / 1000) % 1000000);
}

/* Bump count/lastTimestamp of an existing Event; -ENOENT if it is gone. */
static int event_bump(struct events *ev, struct ev_entry *en, const char *now)
{
	_cleanup_json_ cJSON *obj = NULL;
	struct store_obj *cur = NULL;
	struct err e = { 0 };
	int r;

	r = store_get(ev->store, "events", en->ns, en->name, &cur);
	if (r < 0)
		return r;
	obj = store_obj_parse(cur);
	store_obj_unref(cur);
	if (!obj)
		return -ENOMEM;
	json_set_int(obj, "count", json_int(obj, "count", 1) + 1);
	json_set_str(obj, "lastTimestamp", now);
	cJSON_DeleteItemFromObjectCaseSensitive(json_path(obj, "metadata"), "resourceVersion");
	r = api_obj_update(ev->store, obj, NULL, &e);
	if (r < 0 && r != -ENOENT)
		log_warn_errno(r, "event %s/%s: cannot update: %s", en->ns, en->name, e.message);
	return r;
}

void events_record(struct events *ev, const cJSON *obj, const char *field_path, const char *type,
		   const char *reason, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL, *key = NULL;
	_cleanup_json_ cJSON *e_obj = NULL;
	const char *ns = json_str(obj, "metadata.namespace", "default");
	const char *name = json_str(obj, "metadata.name", "");
	const char *uid = json_str(obj, "metadata.uid", "");
	char now[40], ename[300];
	struct err e = { 0 };
	struct timespec ts;
	uint64_t now_ms = util_now_ms();
	va_list ap;
	int r;

	if (!ev)
		return;
	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	if (asprintf(&key, "%s\x1f%s\x1f%s\x1f%s\x1f%s", uid, field_path ? field_path : "", type,
		     reason, msg) < 0)
		return;
	now_micro(now, sizeof(now));

	for (size_t i = 0; i < EVENTS_CACHE; i++) {
		struct ev_entry *en = &ev->cache[i];
		if (!en->key || !streq(en->key, key))
			continue;
		if (now_ms - en->last_ms < EVENTS_AGGREGATE_MS && event_bump(ev, en, now) >= 0) {
			en->last_ms = now_ms;
			return;
		}
		entry_clear(en);
		break;
	}

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(ename, sizeof(ename), "%.230s.%llx", name,
		 (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec);
	e_obj = cJSON_CreateObject();
	if (!e_obj)
		return;
	cJSON_AddStringToObject(e_obj, "apiVersion", "v1");
	cJSON_AddStringToObject(e_obj, "kind", "Event");
	cJSON *md = cJSON_AddObjectToObject(e_obj, "metadata");
	cJSON_AddStringToObject(md, "name", ename);
	cJSON_AddStringToObject(md, "namespace", ns);
	cJSON *io = cJSON_AddObjectToObject(e_obj, "involvedObject");
	cJSON_AddStringToObject(io, "apiVersion", json_str(obj, "apiVersion", "v1"));
	cJSON_AddStringToObject(io, "kind", json_str(obj, "kind", "Pod"));
	cJSON_AddStringToObject(io, "namespace", ns);
	cJSON_AddStringToObject(io, "name", name);
	cJSON_AddStringToObject(io, "uid", uid);
	if (json_str(obj, "metadata.resourceVersion", NULL))
		cJSON_AddStringToObject(io, "resourceVersion",
					json_str(obj, "metadata.resourceVersion", ""));
	if (field_path)
		cJSON_AddStringToObject(io, "fieldPath", field_path);
	cJSON_AddStringToObject(e_obj, "reason", reason);
	cJSON_AddStringToObject(e_obj, "message", msg);
	cJSON_AddStringToObject(e_obj, "type", type);
	cJSON *src = cJSON_AddObjectToObject(e_obj, "source");
	cJSON_AddStringToObject(src, "component", ev->component);
	cJSON_AddStringToObject(src, "host", ev->host);
	cJSON_AddNumberToObject(e_obj, "count", 1);
	cJSON_AddStringToObject(e_obj, "firstTimestamp", now);
	cJSON_AddStringToObject(e_obj, "lastTimestamp", now);
	cJSON_AddNullToObject(e_obj, "eventTime");
	cJSON_AddStringToObject(e_obj, "reportingComponent", ev->component);
	cJSON_AddStringToObject(e_obj, "reportingInstance", ev->host);

	r = api_obj_create(ev->store, e_obj, NULL, &e);
	if (r < 0) {
		log_warn_errno(r, "event %s/%s %s: cannot create: %s", ns, name, reason, e.message);
		return;
	}
	struct ev_entry *en = &ev->cache[ev->next];
	ev->next = (ev->next + 1) % EVENTS_CACHE;
	entry_clear(en);
	en->key = TAKE_PTR(key);
	en->ns = strdup(ns);
	en->name = strdup(ename);
	en->last_ms = now_ms;
}
