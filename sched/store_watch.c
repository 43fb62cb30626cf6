// SPDX-License-Identifier: Apache-2.0
/*
 * The watch window: a ring of recent events bounded by count and by the bytes of superseded
 * snapshots it keeps alive, and the re-entrant dispatch to watchers.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store-internal.h"

/* --- watch window --- */

static void ring_hold(struct store *s, struct obj_priv *o)
{
	if (!o)
		return;
	store_obj_ref(&o->pub);
	if (o->ring_refs++ == 0 && !o->live)
		s->pinned_bytes += obj_size(o);
}

void ring_release(struct store *s, struct obj_priv *o)
{
	if (!o)
		return;
	if (--o->ring_refs == 0 && !o->live)
		s->pinned_bytes -= obj_size(o);
	store_obj_unref(&o->pub);
}

/* o stops being the current version of its key. */
void obj_retire(struct store *s, struct obj_priv *o)
{
	o->live = false;
	if (o->ring_refs > 0)
		s->pinned_bytes += obj_size(o);
}

static void ring_drop_oldest(struct store *s)
{
	struct ev_slot *e = &s->ring[s->ring_head];

	s->oldest_rv = e->rv;
	ring_release(s, e->obj);
	ring_release(s, e->old);
	s->ring_head = (s->ring_head + 1) % s->ring_cap;
	s->ring_len--;
}

int ring_reserve(struct store *s)
{
	struct ev_slot *r;
	size_t cap;

	if (s->ring_len < s->ring_cap)
		return 0;
	if (!s->dispatching && !s->batch && s->ring_len >= s->window &&
	    s->ring[s->ring_head].rv <= ring_deliverable(s)) {
		ring_drop_oldest(s);
		return 0;
	}
	/* grows past the window only while a dispatch holds old events */
	cap = s->ring_cap ? s->ring_cap * 2 : 256;
	if (cap > s->window && s->ring_cap < s->window)
		cap = s->window;
	r = reallocarray(NULL, cap, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < s->ring_len; i++)
		r[i] = s->ring[(s->ring_head + i) % s->ring_cap];
	free(s->ring);
	s->ring = r;
	s->ring_cap = cap;
	s->ring_head = 0;
	return 0;
}

/* Needs ring_reserve() first. Takes the caller's references. */
void ring_push(struct store *s, enum store_event_type type, uint64_t rv,
		      struct obj_priv *obj, struct obj_priv *old)
{
	struct ev_slot *e = &s->ring[(s->ring_head + s->ring_len) % s->ring_cap];

	*e = (struct ev_slot){ .type = type, .merged = s->batch, .rv = rv, .obj = obj, .old = old };
	ring_hold(s, obj);
	ring_hold(s, old);
	s->ring_len++;
}

/* Events up to this rv may be delivered: a bulk transaction's wait for its commit. */
uint64_t ring_deliverable(const struct store *s)
{
	return s->bulk ? s->bulk_rv0 : s->rv;
}

void ring_evict(struct store *s)
{
	if (s->dispatching || s->batch)
		return;
	/* held events are not delivered yet: they stay (the ring grows by a bulk at most) */
	while (s->ring_len > 0 && s->ring[s->ring_head].rv <= ring_deliverable(s) &&
	       (s->ring_len > s->window || s->pinned_bytes > s->window_bytes))
		ring_drop_oldest(s);
}

static const struct ev_slot *ring_at(const struct store *s, uint64_t rv)
{
	if (rv <= s->oldest_rv || rv > s->oldest_rv + s->ring_len)
		return NULL;
	return &s->ring[(s->ring_head + (rv - s->oldest_rv - 1)) % s->ring_cap];
}


void watch_free(struct store_watch *w)
{
	free(w->resource);
	free(w);
}

static void watch_sweep(struct store *s)
{
	struct store_watch **p = &s->watch_head, *w;

	s->watch_tail = NULL;
	while ((w = *p)) {
		if (w->cancelled && !w->pinned) {
			*p = w->next;
			watch_free(w);
			continue;
		}
		s->watch_tail = w;
		p = &w->next;
	}
}

static void watch_catch_up(struct store *s, struct store_watch *w)
{
	while (!w->cancelled && w->last_rv < ring_deliverable(s)) {
		const struct ev_slot *slot = ring_at(s, w->last_rv + 1);
		struct store_event ev;

		if (!slot) { /* cannot happen: the ring is not trimmed during dispatch */
			w->last_rv = s->oldest_rv > w->last_rv ? s->oldest_rv : ring_deliverable(s);
			continue;
		}
		w->last_rv = slot->rv;
		if (w->resource && !streq(w->resource, slot->obj->pub.resource))
			continue;
		ev = (struct store_event){
			.type = slot->type,
			.merged = slot->merged,
			.rv = slot->rv,
			.obj = &slot->obj->pub,
			.old = slot->old ? &slot->old->pub : NULL,
		};
		w->fn(&ev, w->userdata);
	}
}

/* Deliver every event watchers have not seen yet; commits from callbacks queue behind. */
void store_dispatch(struct store *s)
{
	bool again;

	if (s->dispatching)
		return;
	s->dispatching = true;
	do {
		again = false;
		for (struct store_watch *w = s->watch_head; w; w = w->next)
			watch_catch_up(s, w);
		for (struct store_watch *w = s->watch_head; w; w = w->next)
			if (!w->cancelled && w->last_rv < ring_deliverable(s))
				again = true;
	} while (again);
	s->dispatching = false;
	watch_sweep(s);
	ring_evict(s);
}

int store_watch_add(struct store *s, const char *resource, uint64_t from_rv, store_watch_fn fn,
		    void *userdata, struct store_watch **ret)
{
	struct store_watch *w;

	if (!s || !fn || !ret)
		return -EINVAL;
	/* beyond the current one is another node's (or another store's) sequence */
	if (from_rv && (from_rv < s->oldest_rv || from_rv > s->rv))
		return -ENODATA;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (resource) {
		w->resource = strdup(resource);
		if (!w->resource) {
			free(w);
			return -ENOMEM;
		}
	}
	w->s = s;
	w->fn = fn;
	w->userdata = userdata;
	w->last_rv = from_rv == 0 || from_rv > s->rv ? s->rv : from_rv;
	if (s->watch_tail)
		s->watch_tail->next = w;
	else
		s->watch_head = w;
	s->watch_tail = w;
	s->nwatchers++;
	*ret = w;

	w->pinned = true;
	if (s->dispatching)
		watch_catch_up(s, w);
	else
		store_dispatch(s);
	w->pinned = false;
	if (w->cancelled) {
		/* cancelled from its own replay: the handle is gone */
		*ret = NULL;
		if (!s->dispatching)
			watch_sweep(s);
	}
	return 0;
}

void store_watch_cancel(struct store_watch *w)
{
	struct store *s;

	if (!w || w->cancelled)
		return;
	s = w->s;
	w->cancelled = true;
	s->nwatchers--;
	if (!s->dispatching && !w->pinned)
		watch_sweep(s);
}
