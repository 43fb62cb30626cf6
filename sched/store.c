// SPDX-License-Identifier: Apache-2.0
/*
 * The local replica (see store.h for the contract): open/close, reads and the writes. The
 * other concerns live beside it (see store-internal.h): store_obj.c, store_index.c,
 * store_watch.c, store_db.c.
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

#include "lib/json.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store-internal.h"

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
	s->fault = opts ? opts->fault : NULL;
	s->fault_data = opts ? opts->fault_data : NULL;
	s->window = opts && opts->watch_window ? opts->watch_window : STORE_WATCH_WINDOW_DEFAULT;
	s->window_bytes = opts && opts->watch_window_bytes ? opts->watch_window_bytes
							     : STORE_WATCH_BYTES_DEFAULT;
	s->merge_fast = !(opts && opts->merge_reprint);
	s->max_ahead_ms = opts && opts->max_clock_ahead_ms ? opts->max_clock_ahead_ms : 500;
	/* below 2^48: room for 2^52 more commits before a JavaScript client loses precision */
	if (opts && opts->seq_base_set)
		s->seq_base = opts->seq_base;
	else
		randombytes_buf(&s->seq_base, sizeof(s->seq_base));
	if (!(opts && opts->seq_base_set))
		s->seq_base &= (UINT64_C(1) << 48) - 1;
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

	r = db_open(s, path);
	if (r < 0)
		goto fail;
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
	db_close(s);
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
			free(e->tomb);
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
	res_settle(r); /* a no-op outside a merge batch or bulk */
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
	res_settle(r);
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
		.merged = s->merged,
		.merge_stale = s->merge_stale,
		.clock_refused = s->clock_refused,
		.merged_as_received = s->merged_as_received,
		.merged_unparsed = s->merged_unparsed,
	};
}

/* --- local writes: each computes the key's new state for key_commit() (store_write.c) --- */

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

static int check_args(const char *resource, const char *name, const cJSON *obj, struct err *e)
{
	if (strempty(resource) || strempty(name))
		return err_set(e, EINVAL, 400, "BadRequest", "resource and name are required");
	if (obj && !cJSON_IsObject(obj))
		return err_set(e, EINVAL, 400, "BadRequest", "object must be a JSON object");
	return 0;
}

int store_create(struct store *s, const char *resource, const char *ns, const char *name,
		 const cJSON *obj, struct store_obj **ret, struct err *e)
{
	_cleanup_(view_deletep) cJSON *view = NULL;
	_cleanup_json_ cJSON *sticky = NULL;
	_cleanup_free_ char *sticky_text = NULL;
	const cJSON *st = status_of(obj);
	struct spec_out sp = { 0 };
	struct entry *ent;
	struct res *r;
	uint64_t h, hlc;
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
	if (ret_ == 0 && st) {
		ret_ = print_into(st, &s->status, &sp.l.status_len);
		sp.l.status = s->status.buf;
	}
	if (ret_ < 0)
		return err_internal(e, ret_);
	/* the create's version is also the uid's birth: it outranks every earlier uid here */
	hlc = hlc_now(&s->hlc, store_wall(s));
	sticky = cJSON_CreateObject();
	if (!sticky || sticky_own(sticky, obj, hlc, s->node_name, NULL) < 0)
		return err_internal(e, -ENOMEM);
	sticky_text = sticky_print(sticky);
	return key_commit(s, r, ent, ns, name, h,
			  &(struct kstate){
				  .uid = sp.uid,
				  .born = hlc,
				  .spec_hlc = hlc,
				  .spec_node = s->node_name,
				  .sticky = sticky_text,
				  .l = sp.l,
				  .status_hlc = st ? hlc : 0,
				  .status_node = st ? s->node_name : NULL,
				  .labels = sp.labels,
				  .node_name = sp.node_name,
				  .phase = phase_of(st),
			  },
			  ret, e);
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
	_cleanup_json_ cJSON *sticky = NULL, *cur_tree = NULL, *shown = NULL;
	_cleanup_free_ char *sticky_text = NULL;
	struct spec_out sp = { 0 };
	struct layout old;
	struct obj_priv *cur;
	struct entry *ent = NULL;
	const char *spec;
	size_t spec_len;
	uint64_t hlc;
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

	/* the sticky fields: what this write adds, overlaid on what it shows */
	hlc = hlc_now(&s->hlc, store_wall(s));
	sticky = sticky_parse(cur->pub.sticky);
	if (sticky && (cJSON_GetObjectItemCaseSensitive(sticky, "del") ||
		       json_path(obj, "metadata.deletionTimestamp")))
		cur_tree = store_obj_parse(&cur->pub);
	if (!sticky || sticky_own(sticky, obj, hlc, s->node_name, cur_tree) < 0)
		return err_internal(e, -ENOMEM);
	sticky_text = sticky_print(sticky);
	if (sticky_text) {
		shown = cJSON_Duplicate(obj, true);
		if (!shown)
			return err_internal(e, -ENOMEM);
		sticky_overlay(shown, sticky);
	}

	r = spec_print(s, shown ? shown : obj, cur->pub.uid, &sp);
	view = sp.view;
	if (r == 0)
		r = spec_text(s, &sp.l, &spec, &spec_len);
	if (r < 0)
		return err_internal(e, r);
	if (spec_len == old.a_len + old.b_len + 1 && memcmp(spec, old.a, old.a_len) == 0 &&
	    memcmp(spec + old.a_len, old.b, old.b_len) == 0 &&
	    streq_null(sticky_text, cur->pub.sticky)) {
		if (ret)
			*ret = store_obj_ref(&cur->pub);
		return 0; /* same spec register: nothing to commit */
	}
	sp.l.status = old.status;
	sp.l.status_len = old.status_len;
	return key_commit(s, ent->res, ent, ns, name, ent->hash,
			  &(struct kstate){
				  .uid = sp.uid,
				  .born = cur->pub.born,
				  .spec_hlc = hlc,
				  .spec_node = s->node_name,
				  .sticky = sticky_text,
				  .l = sp.l,
				  .status_hlc = cur->pub.status_hlc,
				  .status_node = cur->pub.status_node,
				  .status_term = cur->pub.status_term,
				  .labels = sp.labels,
				  .node_name = sp.node_name,
				  .phase = cur->pub.phase,
			  },
			  ret, e);
}

/* term: the write's ownership term; claim: commit even an unchanged status (a higher term) */
static int update_status(struct store *s, const char *resource, const char *ns,
			 const char *name, const cJSON *status, uint64_t expect_rv, bool inherit,
			 uint64_t term, struct store_obj **ret, struct err *e)
{
	struct obj_priv *cur;
	struct layout l;
	struct entry *ent = NULL;
	const char *text = NULL;
	size_t len = 0;
	uint64_t hlc;
	bool claim;
	int r;

	r = check_args(resource, name, NULL, e);
	if (r < 0)
		return r;
	ns = ns ? ns : "";
	r = store_find_live(s, resource, ns, name, expect_rv, &ent, e);
	if (r < 0)
		return r;
	cur = ent->obj;
	if (inherit)
		term = cur->pub.status_term;
	if (term < cur->pub.status_term)
		return err_set(e, ESTALE, 409, "Conflict",
			       "the status of %s was written by a newer owner (term %" PRIu64
			       " > %" PRIu64 ")",
			       name, cur->pub.status_term, term);
	claim = term > cur->pub.status_term;
	l = obj_layout(cur);
	if (cJSON_IsNull(status))
		status = NULL;
	if (status) {
		r = print_into(status, &s->status, &len);
		if (r < 0)
			return err_internal(e, r);
		text = s->status.buf;
	}
	if (!claim && ((!text && !l.status) || (text && l.status && len == l.status_len &&
						 memcmp(text, l.status, len) == 0))) {
		if (ret)
			*ret = store_obj_ref(&cur->pub);
		return 0; /* same status register */
	}
	l.status = text;
	l.status_len = len;

	hlc = hlc_now(&s->hlc, store_wall(s));
	return key_commit(s, ent->res, ent, ns, name, ent->hash,
			  &(struct kstate){
				  .uid = cur->pub.uid,
				  .born = cur->pub.born,
				  .spec_hlc = cur->pub.spec_hlc,
				  .spec_node = cur->pub.spec_node,
				  .sticky = cur->pub.sticky,
				  .l = l,
				  .status_hlc = hlc,
				  .status_node = s->node_name,
				  .status_term = term,
				  .touch = claim,
				  .labels = cur->pub.labels,
				  .node_name = cur->pub.node_name,
				  .phase = phase_of(status),
			  },
			  ret, e);
}

const char *store_node_name(const struct store *s)
{
	return s->node_name;
}

int store_update_status(struct store *s, const char *resource, const char *ns, const char *name,
			const cJSON *status, uint64_t expect_rv, struct store_obj **ret,
			struct err *e)
{
	return update_status(s, resource, ns, name, status, expect_rv, true, 0, ret, e);
}

int store_update_status_term(struct store *s, const char *resource, const char *ns,
			     const char *name, const cJSON *status, uint64_t term,
			     struct store_obj **ret, struct err *e)
{
	return update_status(s, resource, ns, name, status, 0, false, term, ret, e);
}

int store_delete(struct store *s, const char *resource, const char *ns, const char *name,
		 uint64_t expect_rv, const char *expect_uid, struct store_obj **ret,
		 struct err *e)
{
	struct obj_priv *cur;
	struct entry *ent = NULL;
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
	return key_commit(s, ent->res, ent, ns, name, ent->hash,
			  &(struct kstate){
				  .uid = cur->pub.uid,
				  .born = cur->pub.born,
				  .deleted = true,
				  .spec_hlc = hlc_now(&s->hlc, store_wall(s)),
				  .spec_node = s->node_name,
			  },
			  ret, e);
}
