// SPDX-License-Identifier: Apache-2.0
/*
 * Which dead nodes' pods to delete, and when (see heal.h). The records outlive the view: gossip
 * forgets long-dead members, and a partition's minority must not stop counting the majority as
 * down just because it forgot them (that would end the rate limit and evict everything).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/macro.h"
#include "sched/heal.h"

struct heal_node {
	char *name;
	enum members_state state;
	bool down;	     /* dead or left in the view */
	uint64_t down_since; /* when it went down */
	uint64_t heard_ms;   /* the last request it sent us (evidence of life), 0 none */
	bool evicted;
};

struct heal {
	struct heal_opts o;
	struct heal_node *v; /* sorted by name */
	size_t n, cap;
	bool limited;
	uint64_t last_limited_ms;
	bool limited_used;
	const char **evicted; /* names, sorted, pointing into v */
	size_t nevicted;
};

int heal_new(const struct heal_opts *o, struct heal **ret)
{
	struct heal *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	if (o)
		h->o = *o;
	if (!h->o.grace_ms)
		h->o.grace_ms = HEAL_DEFAULT_GRACE_MS;
	if (h->o.unhealthy_threshold <= 0)
		h->o.unhealthy_threshold = 0.55;
	if (!h->o.min_unhealthy)
		h->o.min_unhealthy = 3;
	*ret = h;
	return 0;
}

struct heal *heal_free(struct heal *h)
{
	if (!h)
		return NULL;
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].name);
	free(h->v);
	free(h->evicted);
	free(h);
	return NULL;
}

static size_t node_find(const struct heal *h, const char *name, bool *found)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(h->v[mid].name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static struct heal_node *node_get(struct heal *h, const char *name)
{
	bool found;
	size_t at = node_find(h, name, &found);

	if (found)
		return &h->v[at];
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 8;
		struct heal_node *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		h->v = v;
		h->cap = cap;
	}
	char *dup = strdup(name);
	if (!dup)
		return NULL;
	memmove(h->v + at + 1, h->v + at, (h->n - at) * sizeof(*h->v));
	h->n++;
	h->v[at] = (struct heal_node){.name = dup, .state = MEMBERS_ALIVE};
	return &h->v[at];
}

static bool state_down(enum members_state st)
{
	return st == MEMBERS_DEAD || st == MEMBERS_LEFT;
}

int heal_observe(struct heal *h, const struct members *m, uint64_t now_ms)
{
	const char *self = members_self(m);
	size_t total = 1, unhealthy = 0; /* self is a healthy member */
	int newly = 0;

	for (size_t i = 0; i < members_view_count(m); i++) {
		const struct members_info *mi = members_view_get(m, i);
		struct heal_node *n;

		if (streq(mi->name, self))
			continue;
		n = node_get(h, mi->name);
		if (!n)
			return -ENOMEM;
		if (!state_down(mi->state)) {
			n->down = false;
			n->evicted = false;
		} else if (!n->down) {
			n->down = true;
			n->down_since = now_ms;
		}
		n->state = mi->state;
	}
	/* shares over every node ever seen, minus the ones that left on purpose */
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i].state == MEMBERS_LEFT)
			continue;
		total++;
		unhealthy += h->v[i].state != MEMBERS_ALIVE;
	}
	bool was_limited = h->limited;
	h->limited = unhealthy >= h->o.min_unhealthy &&
		     (double)unhealthy >= h->o.unhealthy_threshold * (double)total;
	/* a partition lifting: the first side's nodes answer a few ms before the others, so the
	 * nodes still down get a fresh grace period instead of being evicted at once */
	if (was_limited && !h->limited)
		for (size_t i = 0; i < h->n; i++)
			if (h->v[i].down && !h->v[i].evicted)
				h->v[i].down_since = now_ms;

	struct heal_node *oldest = NULL;
	for (size_t i = 0; i < h->n; i++) {
		struct heal_node *n = &h->v[i];

		/* the grace period runs from the death, or from the last word we had from it */
		uint64_t since = n->heard_ms > n->down_since ? n->heard_ms : n->down_since;
		if (!n->down || n->evicted || now_ms - since < h->o.grace_ms)
			continue;
		/* a node that said goodbye is no sign of a partition */
		if (!h->limited || n->state == MEMBERS_LEFT) {
			n->evicted = true;
			newly++;
		} else if (!oldest || n->down_since < oldest->down_since)
			oldest = n;
	}
	if (oldest && h->o.limited_interval_ms &&
	    (!h->limited_used || now_ms - h->last_limited_ms >= h->o.limited_interval_ms)) {
		oldest->evicted = true;
		h->last_limited_ms = now_ms;
		h->limited_used = true;
		newly++;
	}

	size_t ne = 0;
	for (size_t i = 0; i < h->n; i++)
		ne += h->v[i].evicted;
	const char **ev = realloc(h->evicted, (ne ?: 1) * sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	h->evicted = ev;
	h->nevicted = 0;
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].evicted)
			h->evicted[h->nevicted++] = h->v[i].name;
	return newly;
}

void heal_heard(struct heal *h, const char *node, uint64_t now_ms)
{
	bool found;
	size_t at = node_find(h, node, &found);

	if (!found)
		return;
	h->v[at].heard_ms = now_ms;
	/* it is running: no more of its pods go (the next heal_observe lists it no longer) */
	h->v[at].evicted = false;
}

bool heal_limited(const struct heal *h)
{
	return h->limited;
}

size_t heal_evicted_count(const struct heal *h)
{
	return h->nevicted;
}

const char *heal_evicted_get(const struct heal *h, size_t i)
{
	return i < h->nevicted ? h->evicted[i] : NULL;
}

bool heal_node_evicted(const struct heal *h, const char *node)
{
	bool found;
	size_t at = node_find(h, node, &found);

	return found && h->v[at].evicted;
}

bool heal_pod_due(const struct heal *h, const char *node, int64_t toleration_ms, uint64_t now_ms,
		  uint64_t *wait_ms)
{
	bool found;
	size_t at = node_find(h, node, &found);
	uint64_t down_for;

	if (wait_ms)
		*wait_ms = 0;
	if (!found || !h->v[at].evicted)
		return false;
	if (toleration_ms < 0)
		return true;
	if (toleration_ms == INT64_MAX)
		return false;
	down_for = now_ms - h->v[at].down_since;
	if (down_for >= (uint64_t)toleration_ms)
		return true;
	if (wait_ms)
		*wait_ms = (uint64_t)toleration_ms - down_for;
	return false;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t heal_pod_toleration_ms(const cJSON *pod)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	const cJSON *t;
	int64_t best = -1;

	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(spec, "tolerations"))
	{
		const char *key = jstr(t, "key"), *op = jstr(t, "operator"),
			   *effect = jstr(t, "effect");
		const cJSON *secs = cJSON_GetObjectItemCaseSensitive(t, "tolerationSeconds");
		bool exists = op && streq(op, "Exists");
		int64_t ms;

		if (!strempty(effect) && !streq(effect, "NoExecute"))
			continue;
		if (strempty(key)) {
			if (!exists) /* an empty key tolerates everything only with Exists */
				continue;
		} else if (!streq(key, "node.kubernetes.io/unreachable") &&
			   !streq(key, "node.kubernetes.io/not-ready"))
			continue;
		if (!cJSON_IsNumber(secs))
			return INT64_MAX;
		ms = secs->valuedouble <= 0 ? 0 : (int64_t)(secs->valuedouble * 1000);
		if (ms > best)
			best = ms;
	}
	return best;
}

bool heal_pod_exempt(const cJSON *pod)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
	const cJSON *ref;

	if (cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(md, "annotations"),
					     "kubernetes.io/config.mirror"))
		return true;
	cJSON_ArrayForEach(ref, cJSON_GetObjectItemCaseSensitive(md, "ownerReferences"))
	{
		const char *kind = jstr(ref, "kind");

		if (kind && streq(kind, "DaemonSet") &&
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller")))
			return true;
	}
	return false;
}
