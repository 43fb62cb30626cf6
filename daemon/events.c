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
#include "sched/hlc.h"

#define EVENTS_CACHE 1024
#define EVENTS_AGGREGATE_MS (10 * 60 * 1000)
#define EVENTS_BUCKETS 4096

struct ev_entry {
	char *key;  /* uid \x1f type \x1f reason \x1f message */
	char *ns, *name;
	uint64_t last_ms;
};

/* One spam-filter token bucket; tokens in thousandths. */
struct ev_bucket {
	uint64_t hash; /* 0: free */
	uint64_t tokens_milli;
	uint64_t last_ms;
};

struct events {
	struct store *store;
	char *component, *host;
	struct ev_entry cache[EVENTS_CACHE];
	size_t next; /* ring position for eviction */
	struct ev_bucket *buckets; /* EVENTS_BUCKETS, open addressing over a hash of the key */
	uint64_t dropped;
	uint64_t (*clock)(void *ud);
	void *clock_ud;
};

void events_set_clock(struct events *ev, uint64_t (*clock)(void *ud), void *ud)
{
	ev->clock = clock;
	ev->clock_ud = ud;
}

uint64_t events_dropped(const struct events *ev)
{
	return ev ? ev->dropped : 0;
}

static uint64_t ev_now(struct events *ev)
{
	return ev->clock ? ev->clock(ev->clock_ud) : util_now_ms();
}

static uint64_t fnv1a64(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h ? h : 1;
}

/*
 * Take a token from the key's bucket: false if it is empty. A full table evicts the bucket that
 * was used longest ago among the probed ones (a forgotten key starts full again, as client-go's
 * LRU does).
 */
static bool ev_bucket_take(struct events *ev, const char *key, uint64_t now)
{
	uint64_t h = fnv1a64(key);
	struct ev_bucket *b = NULL, *oldest = NULL;

	for (size_t i = 0; i < 16; i++) {
		struct ev_bucket *c = &ev->buckets[(h + i) % EVENTS_BUCKETS];
		if (c->hash == h || !c->hash) {
			b = c;
			break;
		}
		if (!oldest || c->last_ms < oldest->last_ms)
			oldest = c;
	}
	if (!b) {
		b = oldest;
		b->hash = 0;
	}
	if (!b->hash) {
		*b = (struct ev_bucket){ h, EVENTS_BURST * 1000ULL, now };
	} else if (now > b->last_ms) {
		uint64_t add = (now - b->last_ms) * 1000 / EVENTS_REFILL_MS;
		b->tokens_milli += add;
		if (b->tokens_milli > EVENTS_BURST * 1000ULL)
			b->tokens_milli = EVENTS_BURST * 1000ULL;
		/* keep the remainder of a partial token */
		b->last_ms += add * EVENTS_REFILL_MS / 1000;
		if (b->tokens_milli == EVENTS_BURST * 1000ULL)
			b->last_ms = now;
	}
	if (b->tokens_milli < 1000)
		return false;
	b->tokens_milli -= 1000;
	return true;
}

int events_new(struct store *s, const char *component, const char *host, struct events **ret)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	ev->store = s;
	ev->component = strdup(component);
	ev->host = strdup(host);
	ev->buckets = calloc(EVENTS_BUCKETS, sizeof(*ev->buckets));
	if (!ev->component || !ev->host || !ev->buckets) {
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
	free(ev->buckets);
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
	_cleanup_free_ char *spam = NULL;
	char now[40], ename[300];
	struct err e = { 0 };
	struct timespec ts;
	uint64_t now_ms;
	va_list ap;
	int r;

	if (!ev)
		return;
	now_ms = ev_now(ev);
	/* client-go's spam key: source, involved object, type, reason */
	if (asprintf(&spam, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", ev->component,
		     ev->host, json_str(obj, "kind", ""), ns, name, uid,
		     json_str(obj, "apiVersion", ""), type, reason) < 0)
		return;
	if (!ev_bucket_take(ev, spam, now_ms)) {
		ev->dropped++;
		return;
	}
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

struct expire_ctx {
	const char *node;
	uint64_t cutoff_ms;
	char **keys; /* "ns\0name" pairs, allocated together */
	size_t n, cap;
	int err;
};

static int expire_one(struct store_obj *o, void *ud)
{
	struct expire_ctx *c = ud;
	size_t nl = strlen(o->ns), ml = strlen(o->name);
	char *k;

	if (!o->spec_node || !streq(o->spec_node, c->node) || HLC_PHYS(o->spec_hlc) > c->cutoff_ms)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		char **v = reallocarray(c->keys, cap, sizeof(*v));
		if (!v)
			goto oom;
		c->keys = v;
		c->cap = cap;
	}
	k = malloc(nl + ml + 2);
	if (!k)
		goto oom;
	memcpy(k, o->ns, nl + 1);
	memcpy(k + nl + 1, o->name, ml + 1);
	c->keys[c->n++] = k;
	return 0;
oom:
	c->err = -ENOMEM;
	return -ENOMEM;
}

int events_expire(struct store *s, const char *node, uint64_t now_ms, uint64_t ttl_ms)
{
	struct expire_ctx c = { .node = node, .cutoff_ms = now_ms > ttl_ms ? now_ms - ttl_ms : 0 };
	int r, n = 0;

	if (now_ms <= ttl_ms)
		return 0;
	/* collect first: the listing must not write to the store */
	r = store_list(s, "events", NULL, NULL, NULL, expire_one, &c);
	if (r >= 0 && c.err < 0)
		r = c.err;
	for (size_t i = 0; i < c.n; i++) {
		struct api_delete_opts o = { .grace_seconds = 0 };
		struct err e = { 0 };
		const char *ns = c.keys[i], *name = ns + strlen(ns) + 1;
		if (r >= 0 && api_obj_delete(s, "events", ns, name, &o, NULL, &e) >= 0)
			n++;
		free(c.keys[i]);
	}
	free(c.keys);
	return r < 0 ? r : n;
}

struct events_gc {
	struct store *store;
	char *node;
	uint64_t ttl_ms;
	struct event *timer;
};

static uint64_t gc_interval_ms(uint64_t ttl_ms)
{
	uint64_t i = ttl_ms / 4;

	return i < 1000 ? 1000 : i > 60000 ? 60000 : i;
}

static void on_gc(evutil_socket_t fd, short what, void *arg)
{
	struct events_gc *g = arg;
	uint64_t iv = gc_interval_ms(g->ttl_ms);
	struct timeval tv = { (time_t)(iv / 1000), (suseconds_t)(iv % 1000) * 1000 };
	int r = events_expire(g->store, g->node, util_now_ms(), g->ttl_ms);

	if (r < 0)
		log_warn_errno(r, "events: cannot expire old events");
	else if (r > 0)
		log_debug("events: %d expired (ttl %llu s)", r, (unsigned long long)(g->ttl_ms / 1000));
	evtimer_add(g->timer, &tv);
}

int events_gc_new(struct event_base *base, struct store *s, const char *node, uint64_t ttl_ms,
		  struct events_gc **ret)
{
	struct events_gc *g = calloc(1, sizeof(*g));
	struct timeval tv = { 0, 0 };

	if (!g)
		return -ENOMEM;
	g->store = s;
	g->ttl_ms = ttl_ms ? ttl_ms : EVENTS_TTL_MS;
	g->node = strdup(node);
	g->timer = evtimer_new(base, on_gc, g);
	if (!g->node || !g->timer) {
		events_gc_free(g);
		return -ENOMEM;
	}
	/* first sweep soon after start: Events that expired while the daemon was down */
	tv.tv_sec = 1;
	evtimer_add(g->timer, &tv);
	*ret = g;
	return 0;
}

struct events_gc *events_gc_free(struct events_gc *g)
{
	if (!g)
		return NULL;
	if (g->timer)
		event_free(g->timer);
	free(g->node);
	free(g);
	return NULL;
}
