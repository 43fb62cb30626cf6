// SPDX-License-Identifier: Apache-2.0
/*
 * A flat array: bindings awaiting confirmation are few (a burst of pods bound here within one
 * wait), so a linear search costs less than keeping an index.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/macro.h"
#include "sched/confirm.h"

struct centry {
	char *uid;
	enum sched_confirm_state state; /* PENDING or LOST */
	uint64_t begun_ms, deadline_ms, settled_ms;
	char **waiting; /* members asked that have not answered */
	size_t nwaiting;
};

struct sched_confirm {
	sched_confirm_settled_fn fn;
	void *ud;
	struct centry *e;
	size_t n, cap;
};

int sched_confirm_new(sched_confirm_settled_fn fn, void *ud, struct sched_confirm **ret)
{
	struct sched_confirm *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->ud = ud;
	*ret = c;
	return 0;
}

static void waiting_clear(struct centry *e)
{
	for (size_t i = 0; i < e->nwaiting; i++)
		free(e->waiting[i]);
	free(e->waiting);
	e->waiting = NULL;
	e->nwaiting = 0;
}

static void entry_drop(struct sched_confirm *c, size_t i)
{
	waiting_clear(&c->e[i]);
	free(c->e[i].uid);
	c->e[i] = c->e[--c->n];
}

struct sched_confirm *sched_confirm_free(struct sched_confirm *c)
{
	if (!c)
		return NULL;
	while (c->n)
		entry_drop(c, c->n - 1);
	free(c->e);
	free(c);
	return NULL;
}

static struct centry *find(const struct sched_confirm *c, const char *uid, size_t *idx)
{
	for (size_t i = 0; i < c->n; i++)
		if (streq(c->e[i].uid, uid)) {
			if (idx)
				*idx = i;
			return &c->e[i];
		}
	return NULL;
}

/* CONFIRMED entries are reported and dropped; LOST ones kept (see the header). */
static void settle(struct sched_confirm *c, size_t i, enum sched_confirm_state st, uint64_t now,
		   bool timed_out)
{
	struct centry *e = &c->e[i];
	uint64_t waited = now > e->begun_ms ? now - e->begun_ms : 0;
	char *uid = e->uid;

	waiting_clear(e);
	if (st == SCHED_CONFIRM_LOST) {
		e->state = SCHED_CONFIRM_LOST;
		e->settled_ms = now;
		if (c->fn)
			c->fn(c->ud, uid, st, waited, timed_out);
		return;
	}
	e->uid = NULL;
	entry_drop(c, i);
	if (c->fn)
		c->fn(c->ud, uid, st, waited, timed_out);
	free(uid);
}

int sched_confirm_begin(struct sched_confirm *c, const char *uid, uint64_t now_ms)
{
	struct centry *e;

	if (find(c, uid, NULL))
		return -EEXIST;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct centry *ne = reallocarray(c->e, cap, sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		c->e = ne;
		c->cap = cap;
	}
	e = &c->e[c->n];
	*e = (struct centry){
	    .uid = strdup(uid),
	    .state = SCHED_CONFIRM_PENDING,
	    .begun_ms = now_ms,
	    .deadline_ms = now_ms + SCHED_CONFIRM_WAIT_MS,
	};
	if (!e->uid)
		return -ENOMEM;
	c->n++;
	return 0;
}

void sched_confirm_cancel(struct sched_confirm *c, const char *uid)
{
	size_t i;

	if (find(c, uid, &i))
		entry_drop(c, i);
}

static bool waits_for(const struct centry *e, const char *member, size_t *idx)
{
	for (size_t k = 0; k < e->nwaiting; k++)
		if (streq(e->waiting[k], member)) {
			if (idx)
				*idx = k;
			return true;
		}
	return false;
}

int sched_confirm_ask(struct sched_confirm *c, const char *uid, const char *const *members,
		      size_t n, uint64_t now_ms)
{
	size_t i;
	struct centry *e = find(c, uid, &i);

	if (!e || e->state != SCHED_CONFIRM_PENDING)
		return -ENOENT;
	if (n) {
		e->waiting = calloc(n, sizeof(*e->waiting));
		if (!e->waiting) {
			/* cannot wait: the binding stands as it would without confirmation */
			settle(c, i, SCHED_CONFIRM_CONFIRMED, now_ms, false);
			return -ENOMEM;
		}
	}
	for (size_t k = 0; k < n; k++) {
		if (waits_for(e, members[k], NULL))
			continue;
		e->waiting[e->nwaiting] = strdup(members[k]);
		if (e->waiting[e->nwaiting])
			e->nwaiting++;
	}
	if (!e->nwaiting)
		settle(c, i, SCHED_CONFIRM_CONFIRMED, now_ms, false);
	return 0;
}

/* One member less to wait for in entry i; settles it when none is left. */
static void not_waiting(struct sched_confirm *c, size_t i, size_t k, uint64_t now)
{
	struct centry *e = &c->e[i];

	free(e->waiting[k]);
	e->waiting[k] = e->waiting[--e->nwaiting];
	if (!e->nwaiting)
		settle(c, i, SCHED_CONFIRM_CONFIRMED, now, false);
}

void sched_confirm_answer(struct sched_confirm *c, const char *uid, const char *member,
			  enum sched_confirm_answer a, uint64_t now_ms)
{
	size_t i, k;
	struct centry *e = find(c, uid, &i);

	if (!e || e->state != SCHED_CONFIRM_PENDING || !waits_for(e, member, &k))
		return;
	if (a == SCHED_CONFIRM_ELSEWHERE) {
		settle(c, i, SCHED_CONFIRM_LOST, now_ms, false);
		return;
	}
	not_waiting(c, i, k, now_ms);
}

void sched_confirm_member_gone(struct sched_confirm *c, const char *member, uint64_t now_ms)
{
	/* settling moves the last entry into slot i: look at slot i again then */
	for (size_t i = 0; i < c->n;) {
		struct centry *e = &c->e[i];
		size_t k, n = c->n;

		if (e->state == SCHED_CONFIRM_PENDING && waits_for(e, member, &k)) {
			not_waiting(c, i, k, now_ms);
			if (c->n < n)
				continue;
		}
		i++;
	}
}

void sched_confirm_expire(struct sched_confirm *c, uint64_t now_ms)
{
	for (size_t i = 0; i < c->n;) {
		struct centry *e = &c->e[i];

		if (e->state == SCHED_CONFIRM_PENDING && now_ms >= e->deadline_ms) {
			settle(c, i, SCHED_CONFIRM_CONFIRMED, now_ms, true);
			continue;
		}
		if (e->state == SCHED_CONFIRM_LOST &&
		    now_ms >= e->settled_ms + SCHED_CONFIRM_KEEP_MS) {
			entry_drop(c, i);
			continue;
		}
		i++;
	}
}

uint64_t sched_confirm_next_deadline(const struct sched_confirm *c)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < c->n; i++) {
		const struct centry *e = &c->e[i];
		uint64_t at = e->state == SCHED_CONFIRM_PENDING
				  ? e->deadline_ms
				  : e->settled_ms + SCHED_CONFIRM_KEEP_MS;

		if (at < next)
			next = at;
	}
	return next;
}

enum sched_confirm_state sched_confirm_state(const struct sched_confirm *c, const char *uid)
{
	const struct centry *e = c ? find(c, uid, NULL) : NULL;

	return e ? e->state : SCHED_CONFIRM_NONE;
}

size_t sched_confirm_pending(const struct sched_confirm *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += c->e[i].state == SCHED_CONFIRM_PENDING;
	return n;
}
