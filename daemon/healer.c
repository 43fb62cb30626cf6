// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/object.h"
#include "daemon/events.h"
#include "daemon/healer.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/heal.h"

/* how late a death is noticed and its grace found over: both add to every replacement's time
 * (each tick only compares the members view with what it saw last) */
#define HEALER_TICK_MS 50
#define HEALER_SCAN_MS 1000 /* pods of evicted nodes may still arrive by replication */

struct healer {
	struct event *timer;
	struct store *store;
	struct members *members;
	struct heal *heal;
	struct events *events;
	uint64_t last_scan_ms;
	uint64_t deleted, failed, nodes_evicted;
};

struct scan {
	struct healer *h;
	uint64_t now;
	/* collected first: deleting while the store iterates is not allowed */
	struct store_obj **v;
	size_t n, cap;
};

static int scan_cb(struct store_obj *o, void *ud)
{
	struct scan *s = ud;

	if (strempty(o->node_name) || !heal_node_evicted(s->h->heal, o->node_name))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct store_obj **v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = store_obj_ref(o);
	return 0;
}

static void pod_heal(struct healer *h, struct store_obj *o, uint64_t now)
{
	_cleanup_json_ cJSON *pod = store_obj_parse(o);
	struct api_delete_opts opts = {.grace_seconds = 0, .expect_uid = o->uid};
	struct err e = {0};
	char key[512];
	int r;

	if (!pod || heal_pod_exempt(pod))
		return;
	snprintf(key, sizeof(key), "pods/%s/%s", o->ns, o->name);
	if (!members_owns(h->members, key))
		return;
	if (!heal_pod_due(h->heal, o->node_name, heal_pod_toleration_ms(pod), now, NULL))
		return;
	events_record(h->events, pod, NULL, "Warning", "NodeDead",
		      "Deleting pod: its node %s is dead", o->node_name);
	r = api_obj_delete(h->store, "pods", o->ns, o->name, &opts, NULL, &e);
	if (r == -ENOENT || r == -ECANCELED)
		return;
	if (r < 0) {
		h->failed++;
		log_warn_errno(r, "pod %s/%s: cannot delete (node %s dead): %s", o->ns, o->name,
			       o->node_name, e.message);
		return;
	}
	h->deleted++;
	log_info("pod %s/%s: deleted, its node %s is dead", o->ns, o->name, o->node_name);
}

static void on_tick(evutil_socket_t fd, short what, void *ud)
{
	struct healer *h = ud;
	uint64_t now = util_mono_ms();
	bool was_limited = heal_limited(h->heal);
	int newly = heal_observe(h->heal, h->members, now);

	if (newly < 0)
		return;
	if (heal_limited(h->heal) != was_limited)
		log_warn("self-healing: %s", heal_limited(h->heal)
						 ? "many nodes look down at once (a partition?): "
						   "pod deletion rate-limited"
						 : "back to normal");
	if (newly > 0) {
		h->nodes_evicted += (uint64_t)newly;
		for (size_t i = 0; i < heal_evicted_count(h->heal); i++)
			log_info("self-healing: node %s is dead: deleting its pods",
				 heal_evicted_get(h->heal, i));
	}
	if (!heal_evicted_count(h->heal) || (!newly && now - h->last_scan_ms < HEALER_SCAN_MS))
		return;
	h->last_scan_ms = now;

	struct scan s = {.h = h, .now = now};
	store_list(h->store, "pods", NULL, NULL, NULL, scan_cb, &s);
	for (size_t i = 0; i < s.n; i++) {
		pod_heal(h, s.v[i], now);
		store_obj_unref(s.v[i]);
	}
	free(s.v);
}

int healer_new(struct event_base *base, const struct healer_opts *o, struct healer **ret)
{
	struct heal_opts ho = {.grace_ms = o->grace_ms};
	struct healer *h = calloc(1, sizeof(*h));
	struct timeval tv = {0, HEALER_TICK_MS * 1000};
	int r;

	if (!h)
		return -ENOMEM;
	h->store = o->store;
	h->members = o->members;
	r = heal_new(&ho, &h->heal);
	r = r ?: events_new(o->store, "node-lifecycle-controller", o->node_name, &h->events);
	if (r < 0)
		goto fail;
	h->timer = event_new(base, -1, EV_PERSIST, on_tick, h);
	if (!h->timer) {
		r = -ENOMEM;
		goto fail;
	}
	event_add(h->timer, &tv);
	*ret = h;
	return 0;
fail:
	healer_free(h);
	return r;
}

struct healer *healer_free(struct healer *h)
{
	if (!h)
		return NULL;
	if (h->timer)
		event_free(h->timer);
	h->events = events_free(h->events);
	h->heal = heal_free(h->heal);
	free(h);
	return NULL;
}

void healer_heard(void *userdata, const char *node)
{
	struct healer *h = userdata;

	if (h && h->heal)
		heal_heard(h->heal, node, util_mono_ms()); /* the clock heal_observe gets */
}

int healer_metrics(void *ud, char **text)
{
	struct healer *h = ud;

	if (asprintf(text,
		     "# HELP shoal_heal_pods_deleted_total Pods of dead nodes this node deleted.\n"
		     "# TYPE shoal_heal_pods_deleted_total counter\n"
		     "shoal_heal_pods_deleted_total %llu\n"
		     "# HELP shoal_heal_delete_errors_total Failed deletions (retried).\n"
		     "# TYPE shoal_heal_delete_errors_total counter\n"
		     "shoal_heal_delete_errors_total %llu\n"
		     "# HELP shoal_heal_nodes_evicted Nodes whose pods are being deleted.\n"
		     "# TYPE shoal_heal_nodes_evicted gauge\n"
		     "shoal_heal_nodes_evicted %zu\n"
		     "# HELP shoal_heal_rate_limited 1 while many nodes look down (a partition?).\n"
		     "# TYPE shoal_heal_rate_limited gauge\n"
		     "shoal_heal_rate_limited %d\n",
		     (unsigned long long)h->deleted, (unsigned long long)h->failed,
		     heal_evicted_count(h->heal), heal_limited(h->heal) ? 1 : 0) < 0)
		return -ENOMEM;
	return 0;
}
