// SPDX-License-Identifier: Apache-2.0
#include <string.h>
#include <sodium.h>

#include "lib/macro.h"
#include "sched/members.h"

struct members {
	char *self;
	char **names; /* the live set, sorted, so every node iterates the same order */
	size_t n, cap;
	struct members_info *view; /* sorted by name; strings owned */
	size_t nview, capview;
	uint64_t epoch;
	bool unreplicated; /* members do not share objects: each node owns its replica's */
	members_change_fn on_change;
	void *on_change_data;
};

/* Cluster-wide constant key: every node must compute the same scores. */
static const unsigned char members_hash_key[crypto_shorthash_KEYBYTES] = "shoal-rendezvous";

int members_new(const char *self, struct members **ret)
{
	struct members *m;

	if (sodium_init() < 0)
		return -EIO;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->self = strdup(self);
	if (!m->self) {
		free(m);
		return -ENOMEM;
	}
	m->epoch = 1;
	if (members_add(m, self) != 1) {
		members_free(m);
		return -ENOMEM;
	}
	*ret = m;
	return 0;
}

static void info_done(struct members_info *i)
{
	free((char *)i->name);
	free((char *)i->address);
	free((char *)i->meta);
}

struct members *members_free(struct members *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		free(m->names[i]);
	free(m->names);
	for (size_t i = 0; i < m->nview; i++)
		info_done(&m->view[i]);
	free(m->view);
	free(m->self);
	free(m);
	return NULL;
}

static size_t members_find(const struct members *m, const char *name, bool *found)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->names[mid], name);
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

static void members_changed(struct members *m)
{
	m->epoch++;
	if (m->on_change)
		m->on_change(m, m->on_change_data);
}

static int live_add(struct members *m, const char *name)
{
	bool found;
	size_t at = members_find(m, name, &found);
	char *dup;

	if (found)
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		char **n = realloc(m->names, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		m->names = n;
		m->cap = cap;
	}
	dup = strdup(name);
	if (!dup)
		return -ENOMEM;
	memmove(m->names + at + 1, m->names + at, (m->n - at) * sizeof(*m->names));
	m->names[at] = dup;
	m->n++;
	members_changed(m);
	return 1;
}

static int live_remove(struct members *m, const char *name)
{
	bool found;
	size_t at = members_find(m, name, &found);

	if (!found)
		return 0;
	free(m->names[at]);
	memmove(m->names + at, m->names + at + 1, (m->n - at - 1) * sizeof(*m->names));
	m->n--;
	members_changed(m);
	return 1;
}

const char *members_state_name(enum members_state st)
{
	switch (st) {
	case MEMBERS_ALIVE:
		return "alive";
	case MEMBERS_SUSPECT:
		return "suspect";
	case MEMBERS_DEAD:
		return "dead";
	case MEMBERS_LEFT:
		return "left";
	}
	return "unknown";
}

static bool state_live(enum members_state st)
{
	return st == MEMBERS_ALIVE || st == MEMBERS_SUSPECT;
}

static size_t view_find(const struct members *m, const char *name, bool *found)
{
	size_t lo = 0, hi = m->nview;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->view[mid].name, name);
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

int members_update(struct members *m, const struct members_info *info)
{
	struct members_info n = {
	    .state = info->state,
	    .incarnation = info->incarnation,
	    .instance = info->instance,
	    .rtt_us = info->rtt_us,
	};
	bool found;
	size_t at;

	if (strempty(info->name))
		return -EINVAL;
	at = view_find(m, info->name, &found);
	n.name = strdup(info->name);
	n.address = strdup(info->address ?: "");
	n.meta = strdup(info->meta ?: "");
	if (!n.name || !n.address || !n.meta) {
		info_done(&n);
		return -ENOMEM;
	}
	if (!found && m->nview == m->capview) {
		size_t cap = m->capview ? m->capview * 2 : 8;
		struct members_info *v = realloc(m->view, cap * sizeof(*v));
		if (!v) {
			info_done(&n);
			return -ENOMEM;
		}
		m->view = v;
		m->capview = cap;
	}
	if (found)
		info_done(&m->view[at]);
	else {
		memmove(m->view + at + 1, m->view + at, (m->nview - at) * sizeof(*m->view));
		m->nview++;
	}
	m->view[at] = n;
	return state_live(n.state) ? live_add(m, n.name) : live_remove(m, n.name);
}

int members_forget(struct members *m, const char *name)
{
	bool found;
	size_t at = view_find(m, name, &found);

	if (!found || streq(name, m->self))
		return 0;
	info_done(&m->view[at]);
	memmove(m->view + at, m->view + at + 1, (m->nview - at - 1) * sizeof(*m->view));
	m->nview--;
	return live_remove(m, name);
}

int members_add(struct members *m, const char *name)
{
	const struct members_info *cur = members_view_find(m, name);
	struct members_info i = {.name = name, .state = MEMBERS_ALIVE};

	if (cur) {
		i = *cur;
		i.state = MEMBERS_ALIVE;
	}
	return members_update(m, &i);
}

int members_remove(struct members *m, const char *name)
{
	bool found;
	size_t at = view_find(m, name, &found);

	if (!found)
		return 0;
	info_done(&m->view[at]);
	memmove(m->view + at, m->view + at + 1, (m->nview - at - 1) * sizeof(*m->view));
	m->nview--;
	return live_remove(m, name);
}

size_t members_view_count(const struct members *m)
{
	return m->nview;
}

const struct members_info *members_view_get(const struct members *m, size_t i)
{
	return i < m->nview ? &m->view[i] : NULL;
}

const struct members_info *members_view_find(const struct members *m, const char *name)
{
	bool found;
	size_t at = view_find(m, name, &found);

	return found ? &m->view[at] : NULL;
}

bool members_contains(const struct members *m, const char *name)
{
	bool found;
	members_find(m, name, &found);
	return found;
}

size_t members_count(const struct members *m)
{
	return m->n;
}

const char *members_get(const struct members *m, size_t i)
{
	return i < m->n ? m->names[i] : NULL;
}

const char *members_self(const struct members *m)
{
	return m->self;
}

uint64_t members_epoch(const struct members *m)
{
	return m->epoch;
}

static uint64_t members_score(const char *key, const char *member)
{
	unsigned char out[crypto_shorthash_BYTES];
	size_t kl = strlen(key), ml = strlen(member);
	unsigned char buf[512];
	uint64_t v;

	/* key NUL member: unambiguous concatenation; long keys are hashed first */
	if (kl + ml + 1 > sizeof(buf)) {
		crypto_generichash(buf, 32, (const unsigned char *)key, kl, NULL, 0);
		kl = 32;
		if (ml > sizeof(buf) - 33)
			ml = sizeof(buf) - 33;
	} else
		memcpy(buf, key, kl);
	buf[kl] = 0;
	memcpy(buf + kl + 1, member, ml);
	crypto_shorthash(out, buf, kl + 1 + ml, members_hash_key);
	memcpy(&v, out, sizeof(v));
	return v;
}

void members_set_replicated(struct members *m, bool replicated)
{
	m->unreplicated = !replicated;
}

const char *members_owner(const struct members *m, const char *key)
{
	return members_owner_except(m, key, NULL);
}

const char *members_owner_except(const struct members *m, const char *key, const char *except)
{
	const char *best = NULL;
	uint64_t best_score = 0;

	if (m->unreplicated)
		return m->self;
	for (size_t i = 0; i < m->n; i++) {
		if (except && streq(m->names[i], except))
			continue;
		uint64_t s = members_score(key, m->names[i]);
		/* ties (astronomically unlikely) go to the smaller name: names are sorted */
		if (!best || s > best_score) {
			best = m->names[i];
			best_score = s;
		}
	}
	return best;
}

bool members_owns(const struct members *m, const char *key)
{
	const char *o = members_owner(m, key);
	return o && streq(o, m->self);
}

void members_on_change(struct members *m, members_change_fn fn, void *userdata)
{
	m->on_change = fn;
	m->on_change_data = userdata;
}
