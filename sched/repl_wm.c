// SPDX-License-Identifier: Apache-2.0
/* Transitive replication watermarks (sched/repl_wm.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/macro.h"
#include "sched/repl_wm.h"

struct wm_slot {
	char *name;
	uint64_t h;
	struct repl_wm_entry e;
};

struct repl_wm {
	struct wm_slot *s;
	size_t n, cap;
	int *idx; /* open addressing over s, -1 empty; size a power of two > 2 n */
	size_t icap;
};

uint64_t repl_wm_name_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	/* splitmix64's finalizer: sums of these stay well spread */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

int repl_wm_new(struct repl_wm **ret)
{
	struct repl_wm *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	*ret = w;
	return 0;
}

struct repl_wm *repl_wm_free(struct repl_wm *w)
{
	if (!w)
		return NULL;
	for (size_t i = 0; i < w->n; i++)
		free(w->s[i].name);
	free(w->s);
	free(w->idx);
	free(w);
	return NULL;
}

static int find(const struct repl_wm *w, const char *name, uint64_t h, size_t *pos)
{
	size_t mask = w->icap - 1, i = h & mask;

	for (;; i = (i + 1) & mask) {
		int k = w->idx[i];

		if (k < 0 || (w->s[k].h == h && streq(w->s[k].name, name))) {
			*pos = i;
			return k;
		}
	}
}

static int rehash(struct repl_wm *w, size_t icap)
{
	int *idx = malloc(icap * sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < icap; i++)
		idx[i] = -1;
	free(w->idx);
	w->idx = idx;
	w->icap = icap;
	for (size_t k = 0; k < w->n; k++) {
		size_t pos;

		find(w, w->s[k].name, w->s[k].h, &pos);
		w->idx[pos] = (int)k;
	}
	return 0;
}

static int lookup(struct repl_wm *w, const char *name, uint64_t h, bool create)
{
	size_t pos;
	int k;

	if (w->icap) {
		k = find(w, name, h, &pos);
		if (k >= 0 || !create)
			return k;
	} else if (!create)
		return -1;
	if ((w->n + 1) * 2 >= w->icap && rehash(w, w->icap ? w->icap * 2 : 64) < 0)
		return -ENOMEM;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 32;
		struct wm_slot *s = reallocarray(w->s, cap, sizeof(*s));

		if (!s)
			return -ENOMEM;
		w->s = s;
		w->cap = cap;
	}
	w->s[w->n] = (struct wm_slot){.name = strdup(name), .h = h};
	if (!w->s[w->n].name)
		return -ENOMEM;
	find(w, name, h, &pos);
	w->idx[pos] = (int)w->n;
	return (int)w->n++;
}

int repl_wm_slot(struct repl_wm *w, const char *name)
{
	return lookup(w, name, repl_wm_name_hash(name), true);
}

struct repl_wm_entry *repl_wm_at(struct repl_wm *w, int slot)
{
	return slot >= 0 && (size_t)slot < w->n ? &w->s[slot].e : NULL;
}

void repl_wm_merge(struct repl_wm *w, const char *name, const struct repl_wm_entry *e)
{
	int k = lookup(w, name, repl_wm_name_hash(name), true);

	if (k >= 0 && e->t > w->s[k].e.t)
		w->s[k].e = *e;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/*
 * The section: base (the sender's now), the distinct set digests (usually one), then the
 * entries: name, zigzag(base - t), t - f, index of the digest. Times are ms; a few bytes each
 * besides the name.
 */
#define MAX_DIGESTS 16

static int digest_index(uint64_t *d, size_t *nd, uint64_t sd)
{
	for (size_t i = 0; i < *nd; i++)
		if (d[i] == sd)
			return (int)i;
	if (*nd == MAX_DIGESTS)
		return -1;
	d[*nd] = sd;
	return (int)(*nd)++;
}

static void put_entry(struct repl_buf *b, const char *name, uint64_t base,
		      const struct repl_wm_entry *e, int di)
{
	rbuf_str(b, name);
	rbuf_varint(b, zigzag((int64_t)(base - e->t)));
	rbuf_varint(b, e->t - (e->f <= e->t ? e->f : e->t));
	rbuf_varint(b, (uint64_t)di);
}

void repl_wm_put(struct repl_wm *w, struct repl_buf *b, const char *self, uint64_t now,
		 uint64_t floor, uint64_t sd, const int *slots, size_t n)
{
	uint64_t d[MAX_DIGESTS];
	size_t nd = 0, count = 1;
	struct repl_wm_entry own = {.t = now, .f = floor, .sd = sd};
	int own_di = digest_index(d, &nd, sd);

	/* a floor over an unusual set is left out (0) rather than grow the table past its cap */
	for (size_t i = 0; i < n; i++) {
		struct repl_wm_entry *e = repl_wm_at(w, slots[i]);

		if (e && e->t) {
			count++;
			if (e->f)
				digest_index(d, &nd, e->sd);
		}
	}
	rbuf_varint(b, now);
	rbuf_varint(b, nd);
	for (size_t i = 0; i < nd; i++)
		rbuf_u64(b, d[i]);
	rbuf_varint(b, count);
	put_entry(b, self, now, &own, own_di);
	for (size_t i = 0; i < n; i++) {
		struct repl_wm_entry *e = repl_wm_at(w, slots[i]), x;
		int di;

		if (!e || !e->t)
			continue;
		x = *e;
		di = x.f ? digest_index(d, &nd, x.sd) : 0;
		if (di < 0)
			x.f = 0, di = 0;
		put_entry(b, w->s[slots[i]].name, now, &x, di);
	}
}

static int walk(struct repl_wm *w, const char *self, const uint8_t *p, size_t len, bool apply)
{
	struct repl_rd rd = {.p = p, .end = p + len};
	uint64_t d[MAX_DIGESTS], base, nd, count;

	base = rrd_varint(&rd);
	nd = rrd_varint(&rd);
	if (rd.bad || nd == 0 || nd > MAX_DIGESTS)
		return -EBADMSG;
	for (uint64_t i = 0; i < nd; i++)
		d[i] = rrd_u64(&rd);
	count = rrd_varint(&rd);
	if (rd.bad || count > len)
		return -EBADMSG;
	for (uint64_t i = 0; i < count; i++) {
		const char *name = rrd_str(&rd);
		int64_t dt = unzigzag(rrd_varint(&rd));
		uint64_t tf = rrd_varint(&rd), di = rrd_varint(&rd);
		struct repl_wm_entry e;

		if (rd.bad || !*name || di >= nd)
			return -EBADMSG;
		e.t = base - (uint64_t)dt;
		if (tf > e.t || (dt > 0 && (uint64_t)dt > base))
			return -EBADMSG;
		e.f = e.t - tf;
		e.sd = d[di];
		if (apply && !streq(name, self))
			repl_wm_merge(w, name, &e);
	}
	return 0;
}

int repl_wm_apply(struct repl_wm *w, const char *self, const uint8_t *p, size_t len)
{
	int e;

	if (!len)
		return 0;
	e = walk(w, self, p, len, false);
	return e < 0 ? e : walk(w, self, p, len, true);
}
