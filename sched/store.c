// SPDX-License-Identifier: Apache-2.0
/*
 * The local replica (see store.h for the contract).
 *
 * SQLite is the durable copy: one row per (resource, ns, name) with the spec register, the
 * status register, their versions, the commit sequence and a tombstone flag; one transaction
 * per commit. Memory holds what readers need fast: every live object as an immutable snapshot
 * carrying its composed JSON text, a hash table for point lookups and, per resource, an array
 * of entries sorted by (ns, name) for lists, namespace ranges and continue cursors.
 *
 * A write prints its new register once; the composed text of every version is spliced from
 * the register texts (see struct obj_priv), and the registers can be cut back out of it, so
 * no-op detection compares bytes without a second copy of each object or a SQLite read.
 *
 * Watches read a ring of recent events. The ring is bounded by event count and by the bytes
 * of superseded snapshots it keeps alive (live objects it points to cost nothing extra).
 * Dispatch is re-entrant safe: callbacks may commit, add or cancel watches; commits made from
 * a callback are delivered after the current event, in rv order, to every watcher.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sodium.h>
#include <sqlite3.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/hlc.h"
#include "sched/store.h"

#define STORE_WATCH_WINDOW_DEFAULT 100000
#define STORE_WATCH_BYTES_DEFAULT (8u << 20)
#define STORE_HASH_MIN 1024

#define STORE_OBJECT_MAX (64u << 20)
#define STORE_MARKER_LEN 32
#define STATUS_KEY ",\"status\":"
#define STATUS_KEY_LEN (sizeof(STATUS_KEY) - 1)

/*
 * The composed text is laid out as  A R B [C] "}"  where A + B + "}" is the spec register,
 * R the metadata.resourceVersion member (with its leading comma unless metadata is otherwise
 * empty) and C is ,"status":<status register>. Writes splice new versions from these pieces.
 */
struct obj_priv {
	struct store_obj pub;
	uint32_t ring_refs; /* events in the watch window pointing here */
	bool live;          /* the current version of its key */
	size_t a_len, r_len, b_end;
	char buf[]; /* strings and json */
};

struct scratch {
	char *buf;
	size_t cap;
};

struct res;

struct entry {
	struct entry *hnext;
	uint64_t hash;
	struct res *res;
	struct obj_priv *obj; /* NULL: tombstone */
	const char *name;     /* points into ns[] */
	char ns[];
};

struct res {
	char *name;
	struct entry **v; /* live entries sorted by (ns, name) */
	size_t n, cap;
	uint64_t mod; /* bumped when v changes shape, so iterators re-seek */
};

struct ev_slot {
	enum store_event_type type;
	uint64_t rv;
	struct obj_priv *obj, *old;
};

struct store_watch {
	struct store *s;
	struct store_watch *next;
	char *resource; /* NULL: all */
	uint64_t last_rv;
	store_watch_fn fn;
	void *userdata;
	bool cancelled;
	bool pinned; /* store_watch_add still holds it */
};

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PUT,
	ST_SPEC,
	ST_STATUS,
	ST_DELETE,
	ST_META,
	ST_MAX,
};

static const char *const store_sql[ST_MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_PUT] = "INSERT INTO objects(resource, ns, name, uid, rv, spec, spec_hlc, spec_node, "
		   "status, status_hlc, status_node, deleted) "
		   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0) "
		   "ON CONFLICT(resource, ns, name) DO UPDATE SET uid = excluded.uid, "
		   "rv = excluded.rv, spec = excluded.spec, spec_hlc = excluded.spec_hlc, "
		   "spec_node = excluded.spec_node, status = excluded.status, "
		   "status_hlc = excluded.status_hlc, status_node = excluded.status_node, "
		   "deleted = 0",
	[ST_SPEC] = "UPDATE objects SET uid = ?4, rv = ?5, spec = ?6, spec_hlc = ?7, "
		    "spec_node = ?8 WHERE resource = ?1 AND ns = ?2 AND name = ?3",
	[ST_STATUS] = "UPDATE objects SET rv = ?5, status = ?9, status_hlc = ?10, "
		      "status_node = ?11 WHERE resource = ?1 AND ns = ?2 AND name = ?3",
	[ST_DELETE] = "UPDATE objects SET rv = ?5, spec_hlc = ?7, spec_node = ?8, deleted = 1 "
		      "WHERE resource = ?1 AND ns = ?2 AND name = ?3",
	[ST_META] = "UPDATE meta SET seq = ?1, hlc = ?2 WHERE id = 1",
};

static const char store_schema[] =
	"CREATE TABLE IF NOT EXISTS objects ("
	" resource TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"
	" uid TEXT NOT NULL, rv INTEGER NOT NULL,"
	" spec TEXT NOT NULL, spec_hlc INTEGER NOT NULL, spec_node TEXT NOT NULL,"
	" status TEXT, status_hlc INTEGER NOT NULL DEFAULT 0, status_node TEXT,"
	" deleted INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (resource, ns, name));"
	"CREATE TABLE IF NOT EXISTS meta ("
	" id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hlc INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta(id, seq, hlc) VALUES (1, 0, 0);";

struct store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_MAX];
	char *node_name;
	store_clock_fn clock;
	void *clock_data;
	struct hlc hlc;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
	char marker[STORE_MARKER_LEN + 1];
	struct scratch print, spec, status;

	uint64_t rv;
	uint64_t commits;
	size_t live, tombstones;

	struct res **res;
	size_t nres;
	struct entry **htab;
	size_t hsize, hcount;

	/* events with rv in (oldest_rv, rv], oldest first */
	struct ev_slot *ring;
	size_t ring_cap, ring_head, ring_len;
	uint64_t oldest_rv;
	size_t window, window_bytes, pinned_bytes;

	struct store_watch *watch_head, *watch_tail;
	size_t nwatchers;
	bool dispatching;
};

/* A register write, as it goes to SQLite. */
struct row {
	const char *resource, *ns, *name, *uid;
	uint64_t rv;
	const char *spec;
	size_t spec_len;
	uint64_t spec_hlc;
	const char *spec_node;
	const char *status;
	size_t status_len;
	uint64_t status_hlc;
	const char *status_node;
};

/* --- snapshots --- */

static struct obj_priv *obj_priv(struct store_obj *o)
{
	return (struct obj_priv *)o;
}

struct store_obj *store_obj_ref(struct store_obj *o)
{
	if (o)
		o->refs++;
	return o;
}

struct store_obj *store_obj_unref(struct store_obj *o)
{
	if (!o || --o->refs > 0)
		return NULL;
	cJSON_Delete(o->labels);
	free(obj_priv(o));
	return NULL;
}

cJSON *store_obj_parse(const struct store_obj *o)
{
	return cJSON_ParseWithLength(o->json, o->json_len);
}

static size_t obj_size(const struct obj_priv *o)
{
	return sizeof(*o) + o->pub.json_len;
}

/* The registers inside a composed text (see struct obj_priv). */
struct layout {
	const char *a, *b;
	size_t a_len, b_len;
	const char *status; /* NULL: no status register */
	size_t status_len;
};

static struct layout obj_layout(const struct obj_priv *o)
{
	const char *j = o->pub.json;
	struct layout l = {
		.a = j,
		.a_len = o->a_len,
		.b = j + o->a_len + o->r_len,
		.b_len = o->b_end - o->a_len - o->r_len,
	};

	if (o->b_end + 1 < o->pub.json_len) {
		l.status = j + o->b_end + STATUS_KEY_LEN;
		l.status_len = o->pub.json_len - 1 - o->b_end - STATUS_KEY_LEN;
	}
	return l;
}

struct obj_fields {
	const char *resource, *ns, *name, *uid;
	uint64_t rv, spec_hlc, status_hlc;
	const char *spec_node, *status_node;
	struct layout l;
	/* indexed fields */
	const cJSON *labels;
	const char *node_name, *phase;
};

static char *obj_put_str(char **p, const char *s)
{
	size_t n = strlen(s) + 1;
	char *r = *p;

	memcpy(r, s, n);
	*p += n;
	return r;
}

static char *obj_put_mem(char *p, const void *m, size_t n)
{
	memcpy(p, m, n);
	return p + n;
}

/* One allocation holds the struct, its strings and the composed text, spliced together. */
static struct obj_priv *obj_new(const struct obj_fields *f)
{
	const char *spec_node = f->spec_node ? f->spec_node : "";
	bool comma = f->l.a_len > 0 && f->l.a[f->l.a_len - 1] != '{';
	char rvm[64];
	int rlen = snprintf(rvm, sizeof(rvm), "%s\"resourceVersion\":\"%" PRIu64 "\"",
			    comma ? "," : "", f->rv);
	size_t json_len = f->l.a_len + (size_t)rlen + f->l.b_len + 1;
	struct obj_priv *o;
	size_t len;
	char *p;

	if (f->l.status)
		json_len += STATUS_KEY_LEN + f->l.status_len;
	len = sizeof(struct obj_priv) + strlen(f->resource) + strlen(f->ns) + strlen(f->name) +
	      strlen(f->uid) + strlen(spec_node) + json_len + 6;
	if (f->status_node)
		len += strlen(f->status_node) + 1;
	if (f->node_name)
		len += strlen(f->node_name) + 1;
	if (f->phase)
		len += strlen(f->phase) + 1;
	o = malloc(len);
	if (!o)
		return NULL;
	memset(o, 0, sizeof(*o));
	if (cJSON_IsObject(f->labels)) {
		o->pub.labels = cJSON_Duplicate(f->labels, true);
		if (!o->pub.labels) {
			free(o);
			return NULL;
		}
	}
	p = o->buf;
	o->pub.refs = 1;
	o->pub.resource = obj_put_str(&p, f->resource);
	o->pub.ns = obj_put_str(&p, f->ns);
	o->pub.name = obj_put_str(&p, f->name);
	o->pub.uid = obj_put_str(&p, f->uid);
	o->pub.rv = f->rv;
	o->pub.spec_hlc = f->spec_hlc;
	o->pub.spec_node = obj_put_str(&p, spec_node);
	o->pub.status_hlc = f->status_hlc;
	o->pub.status_node = f->status_node ? obj_put_str(&p, f->status_node) : NULL;
	o->pub.node_name = f->node_name ? obj_put_str(&p, f->node_name) : NULL;
	o->pub.phase = f->phase ? obj_put_str(&p, f->phase) : NULL;

	o->pub.json = p;
	p = obj_put_mem(p, f->l.a, f->l.a_len);
	p = obj_put_mem(p, rvm, (size_t)rlen);
	p = obj_put_mem(p, f->l.b, f->l.b_len);
	if (f->l.status) {
		p = obj_put_mem(p, STATUS_KEY, STATUS_KEY_LEN);
		p = obj_put_mem(p, f->l.status, f->l.status_len);
	}
	*p++ = '}';
	*p = 0;
	o->pub.json_len = json_len;
	o->a_len = f->l.a_len;
	o->r_len = (size_t)rlen;
	o->b_end = f->l.a_len + (size_t)rlen + f->l.b_len;
	o->live = true;
	return o;
}

/* --- printing the registers --- */

static void view_deletep(cJSON **v)
{
	cJSON_Delete(*v);
}

/*
 * A view of obj without `status` and metadata.resourceVersion, whose nodes are references
 * into obj: printing it gives the spec register without copying the tree. The view's own
 * metadata object is returned so callers can add members to it.
 */
static cJSON *spec_view(const cJSON *obj, cJSON **ret_meta)
{
	_cleanup_(view_deletep) cJSON *root = NULL;
	cJSON *meta = NULL, *it, *m;

	if (!cJSON_IsObject(obj))
		return NULL;
	root = cJSON_CreateObject();
	if (!root)
		return NULL;
	cJSON_ArrayForEach(it, obj)
	{
		if (!it->string || streq(it->string, "status"))
			continue;
		if (streq(it->string, "metadata") && cJSON_IsObject(it) && !meta) {
			meta = cJSON_CreateObject();
			if (!meta || !cJSON_AddItemToObject(root, "metadata", meta)) {
				cJSON_Delete(meta);
				return NULL;
			}
			cJSON_ArrayForEach(m, it)
			{
				if (!m->string || streq(m->string, "resourceVersion"))
					continue;
				if (!cJSON_AddItemReferenceToObject(meta, m->string, m))
					return NULL;
			}
			continue;
		}
		if (!cJSON_AddItemReferenceToObject(root, it->string, it))
			return NULL;
	}
	if (!meta) {
		meta = cJSON_AddObjectToObject(root, "metadata");
		if (!meta)
			return NULL;
	}
	*ret_meta = meta;
	return TAKE_PTR(root);
}

/* Print into a reusable buffer, growing it as needed (no per-call allocation). */
static int print_into(const cJSON *item, struct scratch *sc, size_t *ret_len)
{
	for (;;) {
		size_t cap;
		char *n;

		if (sc->cap && cJSON_PrintPreallocated((cJSON *)item, sc->buf, (int)sc->cap, false)) {
			*ret_len = strlen(sc->buf);
			return 0;
		}
		cap = sc->cap ? sc->cap * 2 : 16384;
		if (cap > STORE_OBJECT_MAX)
			return -E2BIG;
		n = realloc(sc->buf, cap);
		if (!n)
			return -ENOMEM;
		sc->buf = n;
		sc->cap = cap;
	}
}

static int scratch_reserve(struct scratch *sc, size_t len)
{
	char *n;

	if (len <= sc->cap)
		return 0;
	n = realloc(sc->buf, len);
	if (!n)
		return -ENOMEM;
	sc->buf = n;
	sc->cap = len;
	return 0;
}

struct spec_out {
	cJSON *view;  /* owns the view nodes; the fields below point into it */
	struct layout l; /* a and b, in s->print */
	const char *uid;
	const cJSON *labels;
	const char *node_name;
	char uidbuf[37];
};

/*
 * Print the spec register of obj once, with a placeholder resourceVersion as the last member
 * of metadata. The placeholder is a random per-store token, so its position splits the text
 * into A (before) and B (after): A + B + "}" is the register text, and every composed
 * version of the object is A + resourceVersion + B + status + "}" without printing again.
 */
static int spec_print(struct store *s, const cJSON *obj, const char *uid_default,
		      struct spec_out *out)
{
	static const char rvkey[] = "\"resourceVersion\":\"";
	const size_t rvkey_len = sizeof(rvkey) - 1;
	const cJSON *spec;
	cJSON *meta;
	char *m, *start;
	size_t len;
	int r;

	out->view = spec_view(obj, &meta);
	if (!out->view)
		return -ENOMEM;
	out->uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "uid"));
	if (strempty(out->uid)) {
		if (!uid_default) {
			util_uuid4(out->uidbuf);
			uid_default = out->uidbuf;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "uid");
		if (!cJSON_AddStringToObject(meta, "uid", uid_default))
			return -ENOMEM;
		out->uid = uid_default;
	}
	if (!cJSON_AddStringToObject(meta, "resourceVersion", s->marker))
		return -ENOMEM;
	r = print_into(out->view, &s->print, &len);
	if (r < 0)
		return r;
	m = memmem(s->print.buf, len, s->marker, STORE_MARKER_LEN);
	if (!m || m - s->print.buf < (ptrdiff_t)rvkey_len + 1)
		return -EIO;
	start = m - rvkey_len;
	if (memcmp(start, rvkey, rvkey_len) != 0)
		return -EIO;
	if (start[-1] == ',')
		start--;
	out->l = (struct layout){
		.a = s->print.buf,
		.a_len = (size_t)(start - s->print.buf),
		.b = m + STORE_MARKER_LEN + 1,
	};
	out->l.b_len = (size_t)(s->print.buf + len - 1 - out->l.b);
	out->labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
	spec = cJSON_GetObjectItemCaseSensitive(out->view, "spec");
	out->node_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "nodeName"));
	return 0;
}

/* The spec register text A + B + "}", in s->spec. */
static int spec_text(struct store *s, const struct layout *l, const char **ret, size_t *ret_len)
{
	size_t len = l->a_len + l->b_len + 1;

	if (scratch_reserve(&s->spec, len + 1) < 0)
		return -ENOMEM;
	memcpy(s->spec.buf, l->a, l->a_len);
	memcpy(s->spec.buf + l->a_len, l->b, l->b_len);
	s->spec.buf[len - 1] = '}';
	s->spec.buf[len] = 0;
	*ret = s->spec.buf;
	*ret_len = len;
	return 0;
}

static const cJSON *status_of(const cJSON *obj)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "status");

	return st && !cJSON_IsNull(st) ? st : NULL;
}

static const char *phase_of(const cJSON *status)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "phase"));
}

/* --- index --- */

static int key_cmp(const char *ns1, const char *name1, const char *ns2, const char *name2)
{
	int r = strcmp(ns1, ns2);

	return r ? r : strcmp(name1, name2);
}

static uint64_t key_hash(const struct store *s, const char *res, const char *ns, const char *name)
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

static struct res *res_find(struct store *s, const char *resource)
{
	for (size_t i = 0; i < s->nres; i++)
		if (streq(s->res[i]->name, resource))
			return s->res[i];
	return NULL;
}

static struct res *res_get(struct store *s, const char *resource)
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

/* First index whose key is > (ns, name) when strict, >= otherwise. */
static size_t res_bound(const struct res *r, const char *ns, const char *name, bool strict)
{
	size_t lo = 0, hi = r->n;

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

/* First index whose namespace is > ns when strict, >= otherwise. */
static size_t res_ns_bound(const struct res *r, const char *ns, bool strict)
{
	size_t lo = 0, hi = r->n;

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

static int res_reserve(struct res *r)
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
static void res_insert(struct res *r, struct entry *e)
{
	size_t i = res_bound(r, e->ns, e->name, false);

	memmove(r->v + i + 1, r->v + i, (r->n - i) * sizeof(*r->v));
	r->v[i] = e;
	r->n++;
	r->mod++;
}

static void res_remove(struct res *r, struct entry *e)
{
	size_t i = res_bound(r, e->ns, e->name, false);

	if (i >= r->n || r->v[i] != e)
		return;
	memmove(r->v + i, r->v + i + 1, (r->n - i - 1) * sizeof(*r->v));
	r->n--;
	r->mod++;
}

static struct entry *entry_find(struct store *s, struct res *r, const char *ns, const char *name,
				uint64_t h)
{
	struct entry *e;

	for (e = s->htab[h & (s->hsize - 1)]; e; e = e->hnext)
		if (e->hash == h && e->res == r && streq(e->ns, ns) && streq(e->name, name))
			return e;
	return NULL;
}

static struct entry *entry_lookup(struct store *s, const char *resource, const char *ns,
				  const char *name)
{
	struct res *r = res_find(s, resource);

	if (!r)
		return NULL;
	return entry_find(s, r, ns, name, key_hash(s, resource, ns, name));
}

static struct entry *entry_new(struct res *r, const char *ns, const char *name, uint64_t h)
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

static void htab_add(struct store *s, struct entry *e)
{
	size_t b = e->hash & (s->hsize - 1);

	e->hnext = s->htab[b];
	s->htab[b] = e;
	if (++s->hcount > s->hsize)
		htab_grow(s);
}

/* --- watch window --- */

static void ring_hold(struct store *s, struct obj_priv *o)
{
	if (!o)
		return;
	store_obj_ref(&o->pub);
	if (o->ring_refs++ == 0 && !o->live)
		s->pinned_bytes += obj_size(o);
}

static void ring_release(struct store *s, struct obj_priv *o)
{
	if (!o)
		return;
	if (--o->ring_refs == 0 && !o->live)
		s->pinned_bytes -= obj_size(o);
	store_obj_unref(&o->pub);
}

/* o stops being the current version of its key. */
static void obj_retire(struct store *s, struct obj_priv *o)
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

static int ring_reserve(struct store *s)
{
	struct ev_slot *r;
	size_t cap;

	if (s->ring_len < s->ring_cap)
		return 0;
	if (!s->dispatching && s->ring_len >= s->window) {
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
static void ring_push(struct store *s, enum store_event_type type, uint64_t rv,
		      struct obj_priv *obj, struct obj_priv *old)
{
	struct ev_slot *e = &s->ring[(s->ring_head + s->ring_len) % s->ring_cap];

	*e = (struct ev_slot){ .type = type, .rv = rv, .obj = obj, .old = old };
	ring_hold(s, obj);
	ring_hold(s, old);
	s->ring_len++;
}

static void ring_evict(struct store *s)
{
	if (s->dispatching)
		return;
	while (s->ring_len > 0 && (s->ring_len > s->window || s->pinned_bytes > s->window_bytes))
		ring_drop_oldest(s);
}

static const struct ev_slot *ring_at(const struct store *s, uint64_t rv)
{
	if (rv <= s->oldest_rv || rv > s->oldest_rv + s->ring_len)
		return NULL;
	return &s->ring[(s->ring_head + (rv - s->oldest_rv - 1)) % s->ring_cap];
}


static void watch_free(struct store_watch *w)
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
	while (!w->cancelled && w->last_rv < s->rv) {
		const struct ev_slot *slot = ring_at(s, w->last_rv + 1);
		struct store_event ev;

		if (!slot) { /* cannot happen: the ring is not trimmed during dispatch */
			w->last_rv = s->oldest_rv > w->last_rv ? s->oldest_rv : s->rv;
			continue;
		}
		w->last_rv = slot->rv;
		if (w->resource && !streq(w->resource, slot->obj->pub.resource))
			continue;
		ev = (struct store_event){
			.type = slot->type,
			.rv = slot->rv,
			.obj = &slot->obj->pub,
			.old = slot->old ? &slot->old->pub : NULL,
		};
		w->fn(&ev, w->userdata);
	}
}

/* Deliver every event watchers have not seen yet; commits from callbacks queue behind. */
static void store_dispatch(struct store *s)
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
			if (!w->cancelled && w->last_rv < s->rv)
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
	if (from_rv && from_rv < s->oldest_rv)
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

/* --- SQLite --- */

static int db_err(struct store *s, struct err *e)
{
	return err_set(e, EIO, 500, "InternalError", "store: %s", sqlite3_errmsg(s->db));
}

static int db_step_done(sqlite3_stmt *st)
{
	int r = sqlite3_step(st);

	sqlite3_reset(st);
	return r == SQLITE_DONE ? 0 : -EIO;
}

static void bind_text(sqlite3_stmt *st, int i, const char *t, size_t len)
{
	if (i > sqlite3_bind_parameter_count(st))
		return;
	if (t)
		sqlite3_bind_text(st, i, t, (int)len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_int(sqlite3_stmt *st, int i, uint64_t v)
{
	if (i <= sqlite3_bind_parameter_count(st))
		sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

static void bind_key(sqlite3_stmt *st, const char *resource, const char *ns, const char *name)
{
	bind_text(st, 1, resource, strlen(resource));
	bind_text(st, 2, ns, strlen(ns));
	bind_text(st, 3, name, strlen(name));
}

/*
 * One commit, one transaction. The row carries the commit's rv and HLC, so the sequence and
 * the clock are recovered as the maxima over rows (plus the meta row written at close);
 * whoever deletes rows (tombstone collection) must first raise meta to what it removes.
 */
static int db_write(struct store *s, int op, const struct row *w, struct err *e)
{
	sqlite3_stmt *st = s->st[op];
	int r;

	bind_key(st, w->resource, w->ns, w->name);
	bind_text(st, 4, w->uid, w->uid ? strlen(w->uid) : 0);
	bind_int(st, 5, w->rv);
	bind_text(st, 6, w->spec, w->spec_len);
	bind_int(st, 7, w->spec_hlc);
	bind_text(st, 8, w->spec_node, w->spec_node ? strlen(w->spec_node) : 0);
	bind_text(st, 9, w->status, w->status_len);
	bind_int(st, 10, w->status_hlc);
	bind_text(st, 11, w->status_node, w->status_node ? strlen(w->status_node) : 0);

	r = db_step_done(s->st[ST_BEGIN]);
	if (r < 0)
		return db_err(s, e);
	r = db_step_done(st);
	if (r == 0 && sqlite3_changes(s->db) != 1)
		r = -EIO;
	if (r == 0)
		r = db_step_done(s->st[ST_COMMIT]);
	if (r < 0) {
		r = db_err(s, e);
		db_step_done(s->st[ST_ROLLBACK]);
	}
	return r;
}

/* --- open / close / load --- */

static uint64_t store_wall(struct store *s)
{
	return s->clock ? s->clock(s->clock_data) : util_now_ms();
}

static int store_load_row(struct store *s, sqlite3_stmt *q)
{
	const char *resource = (const char *)sqlite3_column_text(q, 0);
	const char *ns = (const char *)sqlite3_column_text(q, 1);
	const char *name = (const char *)sqlite3_column_text(q, 2);
	const char *uid = (const char *)sqlite3_column_text(q, 3);
	uint64_t rv = (uint64_t)sqlite3_column_int64(q, 4);
	const char *spec = (const char *)sqlite3_column_text(q, 5);
	size_t spec_len = (size_t)sqlite3_column_bytes(q, 5);
	uint64_t spec_hlc = (uint64_t)sqlite3_column_int64(q, 6);
	const char *spec_node = (const char *)sqlite3_column_text(q, 7);
	const char *status = (const char *)sqlite3_column_text(q, 8);
	size_t status_len = (size_t)sqlite3_column_bytes(q, 8);
	uint64_t status_hlc = (uint64_t)sqlite3_column_int64(q, 9);
	const char *status_node = (const char *)sqlite3_column_text(q, 10);
	bool deleted = sqlite3_column_int(q, 11) != 0;
	_cleanup_json_ cJSON *spec_tree = NULL, *status_tree = NULL;
	_cleanup_(view_deletep) cJSON *view = NULL;
	struct spec_out sp = { 0 };
	struct obj_priv *o = NULL;
	struct entry *e;
	struct res *r;
	uint64_t h;
	int ret;

	if (!resource || !ns || !name || !uid || !spec)
		return -EBADMSG;
	if (rv > s->rv)
		s->rv = rv;
	if (spec_hlc > s->hlc.last)
		s->hlc.last = spec_hlc;
	if (status_hlc > s->hlc.last)
		s->hlc.last = status_hlc;
	r = res_get(s, resource);
	if (!r)
		return -ENOMEM;
	if (!deleted) {
		spec_tree = cJSON_ParseWithLength(spec, spec_len);
		if (status)
			status_tree = cJSON_ParseWithLength(status, status_len);
		if (!spec_tree || (status && !status_tree))
			return -EBADMSG;
		ret = spec_print(s, spec_tree, uid, &sp);
		view = sp.view;
		if (ret < 0)
			return ret;
		sp.l.status = status;
		sp.l.status_len = status_len;
		o = obj_new(&(struct obj_fields){
			.resource = resource,
			.ns = ns,
			.name = name,
			.uid = uid,
			.rv = rv,
			.spec_hlc = spec_hlc,
			.spec_node = spec_node,
			.status_hlc = status_hlc,
			.status_node = status_node,
			.l = sp.l,
			.labels = sp.labels,
			.node_name = sp.node_name,
			.phase = phase_of(status_tree),
		});
		if (!o)
			return -ENOMEM;
		if (res_reserve(r) < 0) {
			store_obj_unref(&o->pub);
			return -ENOMEM;
		}
	}
	h = key_hash(s, resource, ns, name);
	e = entry_new(r, ns, name, h);
	if (!e) {
		if (o)
			store_obj_unref(&o->pub);
		return -ENOMEM;
	}
	e->obj = o;
	htab_add(s, e);
	if (o) {
		res_insert(r, e);
		s->live++;
	} else {
		s->tombstones++;
	}
	return 0;
}

static int store_load(struct store *s)
{
	sqlite3_stmt *q = NULL;
	int r;

	r = sqlite3_prepare_v2(s->db, "SELECT seq, hlc FROM meta WHERE id = 1", -1, &q, NULL);
	if (r != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(q) == SQLITE_ROW) {
		s->rv = (uint64_t)sqlite3_column_int64(q, 0);
		s->hlc.last = (uint64_t)sqlite3_column_int64(q, 1);
	}
	sqlite3_finalize(q);

	r = sqlite3_prepare_v2(s->db,
			       "SELECT resource, ns, name, uid, rv, spec, spec_hlc, spec_node, status,"
			       " status_hlc, status_node, deleted FROM objects"
			       " ORDER BY resource, ns, name",
			       -1, &q, NULL);
	if (r != SQLITE_OK)
		return -EIO;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		r = store_load_row(s, q);
		if (r < 0) {
			sqlite3_finalize(q);
			return r;
		}
	}
	sqlite3_finalize(q);
	return r == SQLITE_DONE ? 0 : -EIO;
}

int store_open(const struct store_options *opts, struct store **ret)
{
	const char *path = opts && opts->path ? opts->path : ":memory:";
	struct store *s;
	int r;

	if (sodium_init() < 0)
		return -EIO;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->node_name = strdup(opts && opts->node_name ? opts->node_name : "");
	s->clock = opts ? opts->clock : NULL;
	s->clock_data = opts ? opts->clock_data : NULL;
	s->window = opts && opts->watch_window ? opts->watch_window : STORE_WATCH_WINDOW_DEFAULT;
	s->window_bytes = opts && opts->watch_window_bytes ? opts->watch_window_bytes
							     : STORE_WATCH_BYTES_DEFAULT;
	s->hsize = STORE_HASH_MIN;
	s->htab = calloc(s->hsize, sizeof(*s->htab));
	randombytes_buf(s->hkey, sizeof(s->hkey));
	/* hex, so it prints verbatim; random, so no object text can contain it */
	for (int i = 0; i < STORE_MARKER_LEN; i++)
		s->marker[i] = "0123456789abcdef"[randombytes_uniform(16)];
	if (!s->node_name || !s->htab) {
		r = -ENOMEM;
		goto fail;
	}

	r = sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (r != SQLITE_OK) {
		r = r == SQLITE_CANTOPEN ? -ENOENT : -EIO;
		goto fail;
	}
	/* WAL + synchronous=NORMAL: a commit survives a process kill; a power cut may lose the
	 * last commits but never corrupts the file. Exclusive locking: one daemon per state dir,
	 * and no lock syscalls per transaction. Checkpoints (each with fsyncs) every 32 MiB of
	 * WAL rather than every 4 MiB. */
	r = sqlite3_exec(s->db,
			 "PRAGMA locking_mode = EXCLUSIVE; PRAGMA busy_timeout = 200;"
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
			 "PRAGMA cache_size = -2048; PRAGMA wal_autocheckpoint = 8192;",
			 NULL, NULL, NULL);
	if (r == SQLITE_OK)
		r = sqlite3_exec(s->db, store_schema, NULL, NULL, NULL);
	if (r != SQLITE_OK) {
		/* BUSY: another process has this state dir open */
		r = r == SQLITE_BUSY ? -EBUSY : -EIO;
		goto fail;
	}
	for (int i = 0; i < ST_MAX; i++) {
		r = sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL);
		if (r != SQLITE_OK) {
			r = -EIO;
			goto fail;
		}
	}
	r = store_load(s);
	if (r < 0)
		goto fail;
	/* events before a restart are gone: the window starts now */
	s->oldest_rv = s->rv;
	*ret = s;
	return 0;
fail:
	store_close(s);
	return r;
}

struct store *store_close(struct store *s)
{
	if (!s)
		return NULL;
	if (s->st[ST_META]) {
		sqlite3_bind_int64(s->st[ST_META], 1, (sqlite3_int64)s->rv);
		sqlite3_bind_int64(s->st[ST_META], 2, (sqlite3_int64)s->hlc.last);
		db_step_done(s->st[ST_META]);
	}
	for (struct store_watch *w = s->watch_head, *next; w; w = next) {
		next = w->next;
		watch_free(w);
	}
	for (size_t i = 0; i < s->ring_len; i++) {
		struct ev_slot *e = &s->ring[(s->ring_head + i) % s->ring_cap];

		ring_release(s, e->obj);
		ring_release(s, e->old);
	}
	free(s->ring);
	for (size_t i = 0; s->htab && i < s->hsize; i++) {
		for (struct entry *e = s->htab[i], *next; e; e = next) {
			next = e->hnext;
			if (e->obj)
				store_obj_unref(&e->obj->pub);
			free(e);
		}
	}
	free(s->htab);
	for (size_t i = 0; i < s->nres; i++) {
		free(s->res[i]->name);
		free(s->res[i]->v);
		free(s->res[i]);
	}
	free(s->res);
	for (int i = 0; i < ST_MAX; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s->print.buf);
	free(s->spec.buf);
	free(s->status.buf);
	free(s->node_name);
	free(s);
	return NULL;
}

/* --- reads --- */

uint64_t store_rv(struct store *s)
{
	return s->rv;
}

uint64_t store_rv_oldest(struct store *s)
{
	return s->oldest_rv;
}

int store_get(struct store *s, const char *resource, const char *ns, const char *name,
	      struct store_obj **ret)
{
	struct entry *e;

	if (!resource || !name)
		return -EINVAL;
	e = entry_lookup(s, resource, ns ? ns : "", name);
	if (!e || !e->obj)
		return -ENOENT;
	*ret = store_obj_ref(&e->obj->pub);
	return 0;
}

int store_list(struct store *s, const char *resource, const char *ns, const char *after_ns,
	       const char *after_name, store_iter_fn fn, void *userdata)
{
	struct res *r = resource ? res_find(s, resource) : NULL;
	size_t i = 0;

	if (!resource || !fn)
		return -EINVAL;
	if (!r)
		return 0;
	if (ns)
		i = res_ns_bound(r, ns, false);
	if (after_ns || after_name) {
		size_t j = res_bound(r, after_ns ? after_ns : "", after_name ? after_name : "",
				     true);

		if (j > i)
			i = j;
	}
	while (i < r->n) {
		struct store_obj *o = &r->v[i]->obj->pub;
		uint64_t mod = r->mod;
		int ret;

		if (ns && !streq(o->ns, ns))
			break;
		store_obj_ref(o);
		ret = fn(o, userdata);
		if (ret != 0) {
			store_obj_unref(o);
			return ret < 0 ? ret : 0;
		}
		/* the callback changed the store: find our place again */
		i = r->mod == mod ? i + 1 : res_bound(r, o->ns, o->name, true);
		store_obj_unref(o);
	}
	return 0;
}

size_t store_count(struct store *s, const char *resource, const char *ns)
{
	struct res *r = resource ? res_find(s, resource) : NULL;

	if (!r)
		return 0;
	if (!ns)
		return r->n;
	return res_ns_bound(r, ns, true) - res_ns_bound(r, ns, false);
}

void store_stats_get(struct store *s, struct store_stats *ret)
{
	*ret = (struct store_stats){
		.commits = s->commits,
		.objects = s->live,
		.tombstones = s->tombstones,
		.watchers = s->nwatchers,
	};
}

/* --- writes --- */

static int err_not_found(struct err *e, const char *resource, const char *name)
{
	return err_set(e, ENOENT, 404, "NotFound", "%s \"%s\" not found", resource, name);
}

static int err_conflict(struct err *e, const char *resource, const char *name)
{
	return err_set(e, ECANCELED, 409, "Conflict",
		       "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
		       "please apply your changes to the latest version and try again",
		       resource, name);
}

static int err_internal(struct err *e, int r)
{
	return err_set(e, r, 500, "InternalError", "store: %s", strerror(-r));
}

static int check_args(const char *resource, const char *name, const cJSON *obj, struct err *e)
{
	if (strempty(resource) || strempty(name))
		return err_set(e, EINVAL, 400, "BadRequest", "resource and name are required");
	if (obj && !cJSON_IsObject(obj))
		return err_set(e, EINVAL, 400, "BadRequest", "object must be a JSON object");
	return 0;
}

/* Make o the current version of e (tombstone for DELETED) and publish the event. */
static void store_apply(struct store *s, struct entry *e, struct obj_priv *o,
			enum store_event_type type, uint64_t rv, struct store_obj **ret)
{
	struct obj_priv *old = e->obj;

	if (old)
		obj_retire(s, old);
	if (type == STORE_DELETED) {
		res_remove(e->res, e);
		e->obj = NULL;
		s->live--;
		s->tombstones++;
		o->live = false; /* the final state is no key's current version */
	} else {
		e->obj = o;
		if (!old) {
			res_insert(e->res, e);
			s->live++;
		}
		store_obj_ref(&o->pub);
	}
	s->rv = rv;
	s->commits++;
	ring_push(s, type, rv, o, old);
	if (old)
		store_obj_unref(&old->pub); /* e's reference */
	if (ret)
		*ret = &o->pub;
	else
		store_obj_unref(&o->pub);
	store_dispatch(s);
	ring_evict(s);
}

/* Write the row, then publish; on failure nothing changed. Takes o. */
static int store_commit(struct store *s, int op, const struct row *w, struct entry *e,
			struct obj_priv *o, enum store_event_type type, struct store_obj **ret,
			struct err *err)
{
	int r = ring_reserve(s);

	if (r < 0) {
		store_obj_unref(&o->pub);
		return err_internal(err, r);
	}
	r = db_write(s, op, w, err);
	if (r < 0) {
		store_obj_unref(&o->pub);
		return r;
	}
	store_apply(s, e, o, type, w->rv, ret);
	return 0;
}

int store_create(struct store *s, const char *resource, const char *ns, const char *name,
		 const cJSON *obj, struct store_obj **ret, struct err *e)
{
	_cleanup_(view_deletep) cJSON *view = NULL;
	const cJSON *st = status_of(obj);
	struct spec_out sp = { 0 };
	const char *spec;
	size_t spec_len;
	struct entry *ent;
	struct obj_priv *o;
	struct res *r;
	uint64_t h, hlc, rv = s->rv + 1;
	bool fresh;
	int ret_;

	ret_ = check_args(resource, name, obj, e);
	if (ret_ < 0)
		return ret_;
	ns = ns ? ns : "";
	r = res_get(s, resource);
	if (!r)
		return err_internal(e, -ENOMEM);
	h = key_hash(s, resource, ns, name);
	ent = entry_find(s, r, ns, name, h);
	if (ent && ent->obj)
		return err_set(e, EEXIST, 409, "AlreadyExists", "%s \"%s\" already exists",
			       resource, name);

	ret_ = spec_print(s, obj, NULL, &sp);
	view = sp.view;
	if (ret_ == 0)
		ret_ = spec_text(s, &sp.l, &spec, &spec_len);
	if (ret_ == 0 && st) {
		ret_ = print_into(st, &s->status, &sp.l.status_len);
		sp.l.status = s->status.buf;
	}
	if (ret_ < 0)
		return err_internal(e, ret_);

	hlc = hlc_now(&s->hlc, store_wall(s));
	o = obj_new(&(struct obj_fields){
		.resource = resource,
		.ns = ns,
		.name = name,
		.uid = sp.uid,
		.rv = rv,
		.spec_hlc = hlc,
		.spec_node = s->node_name,
		.status_hlc = st ? hlc : 0,
		.status_node = st ? s->node_name : NULL,
		.l = sp.l,
		.labels = sp.labels,
		.node_name = sp.node_name,
		.phase = phase_of(st),
	});
	if (!o)
		return err_internal(e, -ENOMEM);
	fresh = !ent;
	if (fresh)
		ent = entry_new(r, ns, name, h);
	if (!ent || res_reserve(r) < 0) {
		if (fresh)
			free(ent);
		store_obj_unref(&o->pub);
		return err_internal(e, -ENOMEM);
	}
	/* the entry must be findable only once the row is committed */
	ret_ = ring_reserve(s);
	if (ret_ == 0)
		ret_ = db_write(s, ST_PUT,
				&(struct row){
					.resource = resource,
					.ns = ns,
					.name = name,
					.uid = sp.uid,
					.rv = rv,
					.spec = spec,
					.spec_len = spec_len,
					.spec_hlc = hlc,
					.spec_node = s->node_name,
					.status = sp.l.status,
					.status_len = sp.l.status_len,
					.status_hlc = st ? hlc : 0,
					.status_node = st ? s->node_name : NULL,
				},
				e);
	if (ret_ < 0) {
		if (fresh)
			free(ent);
		store_obj_unref(&o->pub);
		return ret_ == -ENOMEM ? err_internal(e, ret_) : ret_;
	}
	if (fresh)
		htab_add(s, ent);
	else
		s->tombstones--; /* recreated over a tombstone */
	store_apply(s, ent, o, STORE_ADDED, rv, ret);
	return 0;
}

/* Look up a live object and check the resourceVersion precondition. */
static int store_find_live(struct store *s, const char *resource, const char *ns,
			   const char *name, uint64_t expect_rv, struct entry **ret, struct err *e)
{
	struct entry *ent = entry_lookup(s, resource, ns, name);

	if (!ent || !ent->obj)
		return err_not_found(e, resource, name);
	if (expect_rv && expect_rv != ent->obj->pub.rv)
		return err_conflict(e, resource, name);
	*ret = ent;
	return 0;
}

int store_update(struct store *s, const char *resource, const char *ns, const char *name,
		 const cJSON *obj, uint64_t expect_rv, struct store_obj **ret, struct err *e)
{
	_cleanup_(view_deletep) cJSON *view = NULL;
	struct spec_out sp = { 0 };
	struct layout old;
	struct obj_priv *cur, *o;
	struct entry *ent;
	const char *spec;
	size_t spec_len;
	uint64_t hlc, rv = s->rv + 1;
	int r;

	r = check_args(resource, name, obj, e);
	if (r < 0)
		return r;
	ns = ns ? ns : "";
	r = store_find_live(s, resource, ns, name, expect_rv, &ent, e);
	if (r < 0)
		return r;
	cur = ent->obj;
	old = obj_layout(cur);

	r = spec_print(s, obj, cur->pub.uid, &sp);
	view = sp.view;
	if (r == 0)
		r = spec_text(s, &sp.l, &spec, &spec_len);
	if (r < 0)
		return err_internal(e, r);
	if (spec_len == old.a_len + old.b_len + 1 && memcmp(spec, old.a, old.a_len) == 0 &&
	    memcmp(spec + old.a_len, old.b, old.b_len) == 0) {
		if (ret)
			*ret = store_obj_ref(&cur->pub);
		return 0; /* same spec register: nothing to commit */
	}
	sp.l.status = old.status;
	sp.l.status_len = old.status_len;

	hlc = hlc_now(&s->hlc, store_wall(s));
	o = obj_new(&(struct obj_fields){
		.resource = resource,
		.ns = ns,
		.name = name,
		.uid = sp.uid,
		.rv = rv,
		.spec_hlc = hlc,
		.spec_node = s->node_name,
		.status_hlc = cur->pub.status_hlc,
		.status_node = cur->pub.status_node,
		.l = sp.l,
		.labels = sp.labels,
		.node_name = sp.node_name,
		.phase = cur->pub.phase,
	});
	if (!o)
		return err_internal(e, -ENOMEM);
	return store_commit(s, ST_SPEC,
			    &(struct row){
				    .resource = resource,
				    .ns = ns,
				    .name = name,
				    .uid = sp.uid,
				    .rv = rv,
				    .spec = spec,
				    .spec_len = spec_len,
				    .spec_hlc = hlc,
				    .spec_node = s->node_name,
			    },
			    ent, o, STORE_MODIFIED, ret, e);
}

int store_update_status(struct store *s, const char *resource, const char *ns, const char *name,
			const cJSON *status, uint64_t expect_rv, struct store_obj **ret,
			struct err *e)
{
	struct obj_priv *cur, *o;
	struct layout l;
	struct entry *ent;
	const char *text = NULL;
	size_t len = 0;
	uint64_t hlc, rv = s->rv + 1;
	int r;

	r = check_args(resource, name, NULL, e);
	if (r < 0)
		return r;
	ns = ns ? ns : "";
	r = store_find_live(s, resource, ns, name, expect_rv, &ent, e);
	if (r < 0)
		return r;
	cur = ent->obj;
	l = obj_layout(cur);
	if (cJSON_IsNull(status))
		status = NULL;
	if (status) {
		r = print_into(status, &s->status, &len);
		if (r < 0)
			return err_internal(e, r);
		text = s->status.buf;
	}
	if ((!text && !l.status) ||
	    (text && l.status && len == l.status_len && memcmp(text, l.status, len) == 0)) {
		if (ret)
			*ret = store_obj_ref(&cur->pub);
		return 0; /* same status register */
	}
	l.status = text;
	l.status_len = len;

	hlc = hlc_now(&s->hlc, store_wall(s));
	o = obj_new(&(struct obj_fields){
		.resource = resource,
		.ns = ns,
		.name = name,
		.uid = cur->pub.uid,
		.rv = rv,
		.spec_hlc = cur->pub.spec_hlc,
		.spec_node = cur->pub.spec_node,
		.status_hlc = hlc,
		.status_node = s->node_name,
		.l = l,
		.labels = cur->pub.labels,
		.node_name = cur->pub.node_name,
		.phase = phase_of(status),
	});
	if (!o)
		return err_internal(e, -ENOMEM);
	return store_commit(s, ST_STATUS,
			    &(struct row){
				    .resource = resource,
				    .ns = ns,
				    .name = name,
				    .rv = rv,
				    .status = text,
				    .status_len = len,
				    .status_hlc = hlc,
				    .status_node = s->node_name,
			    },
			    ent, o, STORE_MODIFIED, ret, e);
}

int store_delete(struct store *s, const char *resource, const char *ns, const char *name,
		 uint64_t expect_rv, const char *expect_uid, struct store_obj **ret,
		 struct err *e)
{
	struct obj_priv *cur, *o;
	struct entry *ent;
	uint64_t hlc, rv = s->rv + 1;
	int r;

	r = check_args(resource, name, NULL, e);
	if (r < 0)
		return r;
	ns = ns ? ns : "";
	r = store_find_live(s, resource, ns, name, 0, &ent, e);
	if (r < 0)
		return r;
	cur = ent->obj;
	if (!strempty(expect_uid) && !streq(expect_uid, cur->pub.uid))
		return err_set(e, ECANCELED, 409, "Conflict",
			       "Operation cannot be fulfilled on %s \"%s\": Precondition failed: "
			       "UID in precondition: %s, UID in object meta: %s",
			       resource, name, expect_uid, cur->pub.uid);
	if (expect_rv && expect_rv != cur->pub.rv)
		return err_set(e, ECANCELED, 409, "Conflict",
			       "Operation cannot be fulfilled on %s \"%s\": Precondition failed: "
			       "ResourceVersion in precondition: %" PRIu64
			       ", ResourceVersion in object meta: %" PRIu64,
			       resource, name, expect_rv, cur->pub.rv);

	/* the tombstone is a write of the spec register */
	hlc = hlc_now(&s->hlc, store_wall(s));
	o = obj_new(&(struct obj_fields){
		.resource = resource,
		.ns = ns,
		.name = name,
		.uid = cur->pub.uid,
		.rv = rv,
		.spec_hlc = hlc,
		.spec_node = s->node_name,
		.status_hlc = cur->pub.status_hlc,
		.status_node = cur->pub.status_node,
		.l = obj_layout(cur),
		.labels = cur->pub.labels,
		.node_name = cur->pub.node_name,
		.phase = cur->pub.phase,
	});
	if (!o)
		return err_internal(e, -ENOMEM);
	return store_commit(s, ST_DELETE,
			    &(struct row){
				    .resource = resource,
				    .ns = ns,
				    .name = name,
				    .rv = rv,
				    .spec_hlc = hlc,
				    .spec_node = s->node_name,
			    },
			    ent, o, STORE_DELETED, ret, e);
}
