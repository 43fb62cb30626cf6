// SPDX-License-Identifier: Apache-2.0
/*
 * The in-memory index: a hash table of every key (live or tombstone) for point lookups and,
 * per resource, an array of live entries sorted by (ns, name) for lists and cursors.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store-internal.h"

/* --- index --- */

int key_cmp(const char *ns1, const char *name1, const char *ns2, const char *name2)
{
	int r = strcmp(ns1, ns2);

	return r ? r : strcmp(name1, name2);
}

uint64_t key_hash(const struct store *s, const char *res, const char *ns, const char *name)
{
	size_t lr = strlen(res) + 1, ln = strlen(ns) + 1, lm = strlen(name) + 1;
	size_t len = lr + ln + lm;
	_cleanup_free_ char *heap = NULL;
	char stack[512], *k = stack;
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	if (len > sizeof(stack)) {
		k = heap = malloc(len);
		if (!k)
			return 0; /* still a valid (if poor) bucket */
	}
	memcpy(k, res, lr);
	memcpy(k + lr, ns, ln);
	memcpy(k + lr + ln, name, lm);
	crypto_shorthash(out, (const unsigned char *)k, len, s->hkey);
	memcpy(&h, out, sizeof(h));
	return h;
}

struct res *res_find(struct store *s, const char *resource)
{
	for (size_t i = 0; i < s->nres; i++)
		if (streq(s->res[i]->name, resource))
			return s->res[i];
	return NULL;
}

struct res *res_get(struct store *s, const char *resource)
{
	struct res *r = res_find(s, resource), **v;

	if (r)
		return r;
	v = reallocarray(s->res, s->nres + 1, sizeof(*v));
	if (!v)
		return NULL;
	s->res = v;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->name = strdup(resource);
	if (!r->name) {
		free(r);
		return NULL;
	}
	s->res[s->nres++] = r;
	return r;
}

/* First index of v[0, hi) whose key is > (ns, name) when strict, >= otherwise. */
static size_t bound(const struct res *r, size_t hi, const char *ns, const char *name, bool strict)
{
	size_t lo = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(r->v[mid]->ns, r->v[mid]->name, ns, name);

		if (c < 0 || (strict && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * bound(r, hi, ns, name, false) found from hi down: a gallop to the first smaller key, then a
 * binary search in the last step (the keys in [top, hi) are >= (ns, name) throughout).
 */
static size_t bound_down(const struct res *r, size_t hi, const char *ns, const char *name)
{
	size_t top = hi, off = 1, lo;

	while (off <= top && key_cmp(r->v[top - off]->ns, r->v[top - off]->name, ns, name) >= 0) {
		top -= off;
		off *= 2;
	}
	lo = off <= top ? top - off + 1 : 0;
	while (lo < top) {
		size_t mid = lo + (top - lo) / 2;

		if (key_cmp(r->v[mid]->ns, r->v[mid]->name, ns, name) < 0)
			lo = mid + 1;
		else
			top = mid;
	}
	return lo;
}

/* First index whose key is > (ns, name) when strict, >= otherwise (in the sorted part). */
size_t res_bound(const struct res *r, const char *ns, const char *name, bool strict)
{
	return bound(r, r->n - r->unsorted, ns, name, strict);
}

/* First index whose namespace is > ns when strict, >= otherwise. */
size_t res_ns_bound(const struct res *r, const char *ns, bool strict)
{
	size_t lo = 0, hi = r->n - r->unsorted;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->v[mid]->ns, ns);

		if (c < 0 || (strict && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int res_reserve(struct res *r)
{
	struct entry **v;
	size_t cap;

	if (r->n < r->cap)
		return 0;
	cap = r->cap ? r->cap * 2 : 64;
	v = reallocarray(r->v, cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	r->v = v;
	r->cap = cap;
	return 0;
}

/* Needs res_reserve() first. */
void res_insert(struct res *r, struct entry *e)
{
	size_t i = res_bound(r, e->ns, e->name, false);

	memmove(r->v + i + 1, r->v + i, (r->n - i) * sizeof(*r->v));
	r->v[i] = e;
	r->n++;
	r->mod++;
}

void res_remove(struct res *r, struct entry *e)
{
	size_t i;

	/* appended during this batch: the tail is unsorted, so any order does */
	for (i = r->n - r->unsorted; i < r->n; i++)
		if (r->v[i] == e) {
			r->v[i] = r->v[--r->n];
			r->unsorted--;
			r->mod++;
			return;
		}
	i = res_bound(r, e->ns, e->name, false);
	if (i >= r->n - r->unsorted || r->v[i] != e)
		return;
	memmove(r->v + i, r->v + i + 1, (r->n - i - 1) * sizeof(*r->v));
	r->n--;
	r->mod++;
}

/*
 * During a merge batch (store_merge) new live keys are appended at v's end unsorted and sorted
 * in by res_settle() once at the batch's end (during a bulk, store_merge_hold, once
 * STORE_UNSORTED_MAX wait or at its commit; readers settle first): a catch-up receives keys in digest-bucket order
 * (random by name), and inserting each into the sorted array moved half of it (at 100,000 keys
 * about 20 GB of memmove for a new node); a batch moves it once. Needs res_reserve() first.
 */
void res_append(struct res *r, struct entry *e)
{
	r->v[r->n++] = e;
	r->unsorted++;
	r->mod++;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;

	return key_cmp(x->ns, x->name, y->ns, y->name);
}

void res_settle(struct res *r)
{
	size_t k = r->unsorted, m = r->n - k, i = m;
	_cleanup_free_ struct entry **tail = NULL;

	if (!k)
		return;
	r->mod++;
	r->unsorted = 0;
	qsort(r->v + m, k, sizeof(*r->v), entry_cmp);
	if (!m || key_cmp(r->v[m - 1]->ns, r->v[m - 1]->name, r->v[m]->ns, r->v[m]->name) < 0)
		return; /* all after the sorted ones (e.g. created in name order) */
	tail = malloc(k * sizeof(*tail));
	if (!tail) {
		/* one at a time, in place */
		for (size_t j = m; j < m + k; j++) {
			struct entry *e = r->v[j];
			size_t at = bound(r, j, e->ns, e->name, false);

			memmove(r->v + at + 1, r->v + at, (j - at) * sizeof(*r->v));
			r->v[at] = e;
		}
		return;
	}
	memcpy(tail, r->v + m, k * sizeof(*tail));
	/*
	 * From the largest: each tail key's place in v[0, i) searched from i down, the sorted
	 * keys above it moved up at once; every key is moved once and compared O(log gap) times
	 * (gap: the sorted keys between it and the next larger tail key, ~m / k).
	 */
	for (size_t j = k; j > 0; j--) {
		struct entry *e = tail[j - 1];
		size_t at = bound_down(r, i, e->ns, e->name);

		memmove(r->v + at + j, r->v + at, (i - at) * sizeof(*r->v));
		r->v[at + j - 1] = e;
		i = at;
	}
}

struct entry *entry_find(struct store *s, struct res *r, const char *ns, const char *name,
				uint64_t h)
{
	struct entry *e;

	for (e = s->htab[h & (s->hsize - 1)]; e; e = e->hnext)
		if (e->hash == h && e->res == r && streq(e->ns, ns) && streq(e->name, name))
			return e;
	return NULL;
}

struct entry *entry_lookup(struct store *s, const char *resource, const char *ns,
				  const char *name)
{
	struct res *r = res_find(s, resource);

	if (!r)
		return NULL;
	return entry_find(s, r, ns, name, key_hash(s, resource, ns, name));
}

struct entry *entry_new(struct res *r, const char *ns, const char *name, uint64_t h)
{
	size_t ln = strlen(ns) + 1, lm = strlen(name) + 1;
	struct entry *e = calloc(1, sizeof(*e) + ln + lm);

	if (!e)
		return NULL;
	e->hash = h;
	e->res = r;
	memcpy(e->ns, ns, ln);
	memcpy(e->ns + ln, name, lm);
	e->name = e->ns + ln;
	e->bucket = store_key_bucket(r->name, ns, name);
	return e;
}

static void htab_grow(struct store *s)
{
	size_t size = s->hsize * 2;
	struct entry **t = calloc(size, sizeof(*t));

	if (!t)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < s->hsize; i++) {
		struct entry *e = s->htab[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			e->hnext = t[e->hash & (size - 1)];
			t[e->hash & (size - 1)] = e;
		}
	}
	free(s->htab);
	s->htab = t;
	s->hsize = size;
}

void htab_add(struct store *s, struct entry *e)
{
	size_t b = e->hash & (s->hsize - 1);

	e->hnext = s->htab[b];
	s->htab[b] = e;
	e->bprev = NULL;
	e->bnext = e->res->bhead[e->bucket];
	if (e->bnext)
		e->bnext->bprev = e;
	e->res->bhead[e->bucket] = e;
	if (++s->hcount > s->hsize)
		htab_grow(s);
}

void htab_del(struct store *s, struct entry *e)
{
	struct entry **p = &s->htab[e->hash & (s->hsize - 1)];

	for (; *p; p = &(*p)->hnext)
		if (*p == e) {
			*p = e->hnext;
			s->hcount--;
			if (e->bprev)
				e->bprev->bnext = e->bnext;
			else
				e->res->bhead[e->bucket] = e->bnext;
			if (e->bnext)
				e->bnext->bprev = e->bprev;
			e->bnext = e->bprev = NULL;
			return;
		}
}
