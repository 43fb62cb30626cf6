// SPDX-License-Identifier: Apache-2.0
/*
 * What replicas compare: per key a digest of every register (a keyed BLAKE2b with a key that
 * is the same on every node, unlike the index's per-process SipHash key), xor-ed into one of
 * STORE_DIGEST_BUCKETS buckets per resource chosen by a hash of the key. A write replaces its
 * key's share, so bucket digests stay current at O(1) per write, and two nodes compare a
 * resource bucket by bucket, then the keys of differing buckets (store_reg_list).
 *
 * Also here: the stable register dump and tombstone collection.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store-internal.h"

/* cluster-constant: changing it makes old and new nodes disagree on every bucket */
static const unsigned char digest_key[crypto_generichash_KEYBYTES] = "shoal/registers/digest/v1";

/* the keyed state before any input (a keyed BLAKE2b compresses the key as its first block):
 * made once and copied, which gives the same hashes as initializing each one */
static crypto_generichash_state digest_st0;
static pthread_once_t digest_once = PTHREAD_ONCE_INIT;

static void digest_prepare(void)
{
	crypto_generichash_init(&digest_st0, digest_key, sizeof(digest_key),
				crypto_generichash_BYTES_MIN);
}

static void digest_init(crypto_generichash_state *st)
{
	pthread_once(&digest_once, digest_prepare);
	*st = digest_st0;
}

uint32_t store_key_bucket(const char *resource, const char *ns, const char *name)
{
	crypto_generichash_state st;
	unsigned char out[crypto_generichash_BYTES_MIN];
	uint32_t b;

	digest_init(&st);
	crypto_generichash_update(&st, (const unsigned char *)resource, strlen(resource) + 1);
	crypto_generichash_update(&st, (const unsigned char *)ns, strlen(ns) + 1);
	crypto_generichash_update(&st, (const unsigned char *)name, strlen(name) + 1);
	crypto_generichash_final(&st, out, sizeof(out));
	memcpy(&b, out, sizeof(b));
	return b % STORE_DIGEST_BUCKETS;
}

static void h_str(crypto_generichash_state *st, const char *s)
{
	crypto_generichash_update(st, (const unsigned char *)(s ? s : ""), s ? strlen(s) + 1 : 1);
}

static void h_u64(crypto_generichash_state *st, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	crypto_generichash_update(st, b, sizeof(b));
}

static void h_mem(crypto_generichash_state *st, const char *p, size_t n)
{
	h_u64(st, n);
	if (n)
		crypto_generichash_update(st, (const unsigned char *)p, n);
}

static uint64_t entry_digest(const struct entry *e)
{
	crypto_generichash_state st;
	unsigned char out[crypto_generichash_BYTES_MIN];
	uint64_t d;

	digest_init(&st);
	h_str(&st, e->res->name);
	h_str(&st, e->ns);
	h_str(&st, e->name);
	if (e->obj) {
		const struct store_obj *o = &e->obj->pub;
		struct layout l = obj_layout(e->obj);

		h_u64(&st, 0);
		h_str(&st, o->uid);
		h_u64(&st, o->born);
		h_u64(&st, o->spec_hlc);
		h_str(&st, o->spec_node);
		h_str(&st, o->sticky);
		h_mem(&st, l.a, l.a_len);
		h_mem(&st, l.b, l.b_len);
		h_u64(&st, o->status_hlc);
		h_str(&st, o->status_node);
		if (o->status_term)
			h_u64(&st, o->status_term); /* 0 hashes as before terms existed */
		h_u64(&st, l.status != NULL);
		h_mem(&st, l.status, l.status_len);
	} else if (e->tomb) {
		h_u64(&st, 1);
		h_str(&st, e->tomb->uid);
		h_u64(&st, e->tomb->born);
		h_u64(&st, e->tomb->hlc);
		h_str(&st, e->tomb->node);
	}
	crypto_generichash_final(&st, out, sizeof(out));
	memcpy(&d, out, sizeof(d));
	return d;
}

void key_digest_update(struct entry *e)
{
	uint64_t d = entry_digest(e);

	e->res->dig[e->bucket] ^= e->dig ^ d;
	e->dig = d;
}

uint64_t store_digest(struct store *s, const char *resource, uint32_t lo, uint32_t hi)
{
	struct res *r = resource ? res_find(s, resource) : NULL;
	uint64_t d = 0;

	if (!r)
		return 0;
	for (uint32_t b = lo; b < hi && b < STORE_DIGEST_BUCKETS; b++)
		d ^= r->dig[b];
	return d;
}

/* --- listing --- */

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
	int c = strcmp(x->res->name, y->res->name);

	return c ? c : key_cmp(x->ns, x->name, y->ns, y->name);
}

static int collect_add(struct entry ***v, size_t *n, size_t *cap, struct entry *e)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct entry **nv = reallocarray(*v, nc, sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = e;
	return 0;
}

/*
 * The keys (live and tombstones) of resource (NULL: all) in buckets [lo, hi), sorted. Walks
 * the resources' bucket lists: the cost is the keys listed, not the store.
 */
static int collect(struct store *s, const char *resource, uint32_t lo, uint32_t hi,
		   struct entry ***ret, size_t *ret_n)
{
	struct res *only = resource ? res_find(s, resource) : NULL;
	struct entry **v = NULL;
	size_t n = 0, cap = 0;

	*ret = NULL;
	*ret_n = 0;
	if (resource && !only)
		return 0;
	if (hi > STORE_DIGEST_BUCKETS)
		hi = STORE_DIGEST_BUCKETS;
	for (size_t i = 0; i < s->nres; i++) {
		struct res *r = s->res[i];

		if (only && r != only)
			continue;
		for (uint32_t b = lo; b < hi; b++)
			for (struct entry *e = r->bhead[b]; e; e = e->bnext) {
				if (!e->obj && !e->tomb)
					continue;
				if (collect_add(&v, &n, &cap, e) < 0) {
					free(v);
					return -ENOMEM;
				}
			}
	}
	if (n)
		qsort(v, n, sizeof(*v), entry_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

static int entry_regs(struct store *s, const struct entry *e, struct store_reg *spec,
		      struct store_reg *status)
{
	*spec = (struct store_reg){
		.kind = STORE_REG_SPEC,
		.resource = e->res->name,
		.ns = e->ns,
		.name = e->name,
	};
	if (!e->obj) {
		spec->uid = e->tomb->uid;
		spec->born = e->tomb->born;
		spec->hlc = e->tomb->hlc;
		spec->node = e->tomb->node;
		spec->tombstone = true;
		spec->rv = e->tomb->rv;
		return 0;
	}
	const struct store_obj *o = &e->obj->pub;
	struct layout l = obj_layout(e->obj);
	int r = spec_text(s, &l, &spec->body, &spec->body_len);

	if (r < 0)
		return r;
	spec->uid = o->uid;
	spec->born = o->born;
	spec->hlc = o->spec_hlc;
	spec->node = o->spec_node;
	spec->sticky = o->sticky;
	spec->rv = o->rv;
	if (!o->status_hlc && !l.status)
		return 0;
	*status = *spec;
	status->kind = STORE_REG_STATUS;
	status->hlc = o->status_hlc;
	status->node = o->status_node;
	status->term = o->status_term;
	status->sticky = NULL;
	status->body = l.status;
	status->body_len = l.status_len;
	return 1;
}

int store_reg_list(struct store *s, const char *resource, uint32_t bucket_lo, uint32_t bucket_hi,
		   store_reg_fn fn, void *userdata)
{
	_cleanup_free_ struct entry **v = NULL;
	size_t n;
	int r;

	if (!fn)
		return -EINVAL;
	r = collect(s, resource, bucket_lo, bucket_hi, &v, &n);
	if (r < 0)
		return r;
	/* callbacks must not write: the collected entries would go stale */
	for (size_t i = 0; i < n; i++) {
		struct store_reg spec, status;
		int has = entry_regs(s, v[i], &spec, &status);

		if (has < 0)
			return has;
		r = fn(&spec, has ? &status : NULL, userdata);
		if (r)
			return r < 0 ? r : 0;
	}
	return 0;
}

int store_reg_get(struct store *s, const char *resource, const char *ns, const char *name,
		  store_reg_fn fn, void *userdata)
{
	struct res *r = res_find(s, resource);
	struct store_reg spec, status;
	struct entry *e;
	int has;

	if (!fn)
		return -EINVAL;
	if (!r)
		return -ENOENT;
	ns = ns ? ns : "";
	e = entry_find(s, r, ns, name, key_hash(s, resource, ns, name));
	if (!e || (!e->obj && !e->tomb))
		return -ENOENT;
	has = entry_regs(s, e, &spec, &status);
	if (has < 0)
		return has;
	has = fn(&spec, has ? &status : NULL, userdata);
	return has < 0 ? has : 0;
}

size_t store_resource_count(struct store *s)
{
	return s->nres;
}

const char *store_resource_name(struct store *s, size_t i)
{
	return i < s->nres ? s->res[i]->name : NULL;
}

/* --- dump --- */

struct dump {
	char *buf;
	size_t len, cap;
};

static int dump_printf(struct dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int dump_printf(struct dump *d, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		int n;

		va_start(ap, fmt);
		n = vsnprintf(d->buf + d->len, d->cap - d->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EIO;
		if ((size_t)n < d->cap - d->len) {
			d->len += (size_t)n;
			return 0;
		}
		size_t cap = d->cap * 2 + (size_t)n + 1;
		char *nb = realloc(d->buf, cap);

		if (!nb)
			return -ENOMEM;
		d->buf = nb;
		d->cap = cap;
	}
}

static int dump_line(const struct store_reg *spec, const struct store_reg *status, void *userdata)
{
	struct dump *d = userdata;
	uint64_t body = 0;
	char term[32] = "";

	if (!spec->tombstone) {
		crypto_generichash_state st;
		unsigned char out[crypto_generichash_BYTES_MIN];

		digest_init(&st);
		h_mem(&st, spec->body, spec->body_len);
		h_mem(&st, status ? status->body : NULL, status ? status->body_len : 0);
		crypto_generichash_final(&st, out, sizeof(out));
		memcpy(&body, out, sizeof(body));
	}
	if (status && status->term)
		snprintf(term, sizeof(term), "t%" PRIu64 ":", status->term);
	return dump_printf(d,
			   "%s %s/%s uid=%s born=%" PRIu64 " spec=%" PRIu64 "@%s%s status=%s%" PRIu64
			   "@%s sticky=%s bodies=%016" PRIx64 "\n",
			   spec->resource, spec->ns, spec->name, spec->uid, spec->born, spec->hlc,
			   spec->node, spec->tombstone ? " deleted" : "", term, status ? status->hlc : 0,
			   status && status->node ? status->node : "-",
			   spec->sticky ? spec->sticky : "-", body);
}

int store_registers_dump(struct store *s, const char *resource, char **ret, size_t *ret_len)
{
	struct dump d = { .cap = 4096 };
	int r;

	d.buf = malloc(d.cap);
	if (!d.buf)
		return -ENOMEM;
	d.buf[0] = 0;
	r = store_reg_list(s, resource, 0, STORE_DIGEST_BUCKETS, dump_line, &d);
	if (r < 0) {
		free(d.buf);
		return r;
	}
	*ret = d.buf;
	if (ret_len)
		*ret_len = d.len;
	return 0;
}

/* --- tombstone collection --- */

int store_tombstones_collect(struct store *s, uint64_t horizon_hlc)
{
	_cleanup_free_ struct entry **v = NULL;
	size_t n, dropped = 0;
	int r;

	/* held merges first, delivered (db_begin would commit them, not deliver them) */
	store_merge_commit(s);
	r = collect(s, NULL, 0, STORE_DIGEST_BUCKETS, &v, &n);
	if (r < 0)
		return r;
	if (db_begin(s) < 0)
		return -EIO;
	/* the floor first: the dropped rows may hold the highest resourceVersion */
	r = db_floor(s, s->rv);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (!v[i]->obj && v[i]->tomb->hlc < horizon_hlc)
			r = db_drop(s, v[i]->row);
	if (r < 0) {
		db_rollback(s);
		return -EIO;
	}
	if (db_commit(s) < 0)
		return -EIO;
	for (size_t i = 0; i < n; i++) {
		struct entry *e = v[i];

		if (e->obj || e->tomb->hlc >= horizon_hlc)
			continue;
		e->res->dig[e->bucket] ^= e->dig;
		htab_del(s, e);
		free(e->tomb);
		free(e);
		s->tombstones--;
		dropped++;
	}
	return (int)dropped;
}
