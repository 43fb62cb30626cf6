// SPDX-License-Identifier: Apache-2.0
/*
 * The one register-write path. Local writes (store.c) and merged remote registers
 * (store_merge.c) compute the key's new state (struct kstate) and hand it to key_commit(),
 * which persists it, swaps the in-memory version, keeps the digest and publishes the event.
 *
 * The spec register's order and the sticky fields make the per-key state a join: merging the
 * same set of writes in any order gives the same state (docs/consistency.md).
 *   - Spec registers order by (born, uid): a later-created uid replaces an older one for good;
 *     within a uid a tombstone beats every live write (a deletion is never undone by an edit
 *     from a node that had not seen it); then by (hlc, node).
 *   - Sticky fields ride with the spec register as a small canonical JSON object:
 *       "bind": [hlc, node, nodeName]      the earliest binding of the uid,
 *       "del":  [hlc, node, ts, grace]     the earliest deletionTimestamp (and grace period),
 *       "fin":  [names]                    finalizers removed while terminating (a union).
 *     Each joins on merge (min, min, union) and is overlaid on the winning body, so a label
 *     edit from a node that had not seen the binding or the deletion keeps both.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store-internal.h"

int err_internal(struct err *e, int r)
{
	return err_set(e, r, 500, "InternalError", "store: %s", strerror(-r));
}

bool streq_null(const char *a, const char *b)
{
	return a == b || (a && b && streq(a, b));
}

struct tomb *tomb_new(uint64_t rv, uint64_t born, uint64_t hlc, const char *uid, const char *node)
{
	size_t lu = strlen(uid) + 1, ln = strlen(node ? node : "") + 1;
	struct tomb *t = malloc(sizeof(*t) + lu + ln);

	if (!t)
		return NULL;
	t->rv = rv;
	t->born = born;
	t->hlc = hlc;
	memcpy(t->buf, uid, lu);
	memcpy(t->buf + lu, node ? node : "", ln);
	t->uid = t->buf;
	t->node = t->buf + lu;
	return t;
}

int spec_order(const char *a_uid, uint64_t a_born, bool a_del, uint64_t a_hlc,
	       const char *a_node, const char *b_uid, uint64_t b_born, bool b_del, uint64_t b_hlc,
	       const char *b_node)
{
	int c;

	if (a_born != b_born)
		return a_born < b_born ? -1 : 1;
	c = strcmp(a_uid, b_uid);
	if (c)
		return c < 0 ? -1 : 1;
	if (a_del != b_del)
		return a_del ? 1 : -1;
	return reg_version_cmp(a_hlc, a_node, b_hlc, b_node);
}

/*
 * The status register: an owner's term first (a controller that took the key over writes above
 * every write of the owners before it, whatever the clocks), then (hlc, node).
 */
int status_order(uint64_t a_term, uint64_t a_hlc, const char *a_node, uint64_t b_term,
		 uint64_t b_hlc, const char *b_node)
{
	if (a_term != b_term)
		return a_term < b_term ? -1 : 1;
	return reg_version_cmp(a_hlc, a_node, b_hlc, b_node);
}

/* --- sticky fields --- */

static uint64_t ver_hlc(const cJSON *arr)
{
	const char *v = cJSON_GetStringValue(cJSON_GetArrayItem(arr, 0));

	return v ? strtoull(v, NULL, 10) : 0;
}

static const char *ver_node(const cJSON *arr)
{
	return cJSON_GetStringValue(cJSON_GetArrayItem(arr, 1));
}

/* a < b by the version in their first two items (an absent one is the largest) */
static bool ver_less(const cJSON *a, const cJSON *b)
{
	if (!cJSON_IsArray(a))
		return false;
	if (!cJSON_IsArray(b))
		return true;
	return reg_version_cmp(ver_hlc(a), ver_node(a), ver_hlc(b), ver_node(b)) < 0;
}

cJSON *sticky_parse(const char *text)
{
	cJSON *st = text ? cJSON_Parse(text) : cJSON_CreateObject();

	if (st && !cJSON_IsObject(st)) {
		cJSON_Delete(st);
		st = cJSON_CreateObject();
	}
	return st;
}

static void sticky_take_min(cJSON *into, const cJSON *other, const char *key)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(other, key);

	if (ver_less(o, cJSON_GetObjectItemCaseSensitive(into, key))) {
		cJSON_DeleteItemFromObjectCaseSensitive(into, key);
		cJSON_AddItemToObject(into, key, cJSON_Duplicate(o, true));
	}
}

static bool str_in(const cJSON *arr, const char *s)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, arr)
		if (cJSON_IsString(it) && streq(it->valuestring, s))
			return true;
	return false;
}

static void fin_add(cJSON *st, const char *name)
{
	cJSON *fin = cJSON_GetObjectItemCaseSensitive(st, "fin");

	if (!fin)
		fin = cJSON_AddArrayToObject(st, "fin");
	if (fin && !str_in(fin, name))
		cJSON_AddItemToArray(fin, cJSON_CreateString(name));
}

void sticky_join(cJSON *into, const cJSON *other)
{
	const cJSON *it;

	sticky_take_min(into, other, "bind");
	sticky_take_min(into, other, "del");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(other, "fin"))
		if (cJSON_IsString(it))
			fin_add(into, it->valuestring);
}

static cJSON *ver_make(uint64_t hlc, const char *node)
{
	cJSON *a = cJSON_CreateArray();
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, hlc);
	cJSON_AddItemToArray(a, cJSON_CreateString(buf));
	cJSON_AddItemToArray(a, cJSON_CreateString(node ? node : ""));
	return a;
}

/*
 * What a local write at (hlc, node) contributes: its binding, its deletion, and the finalizers
 * it removed from cur_obj while the object is terminating.
 */
int sticky_own(cJSON *st, const cJSON *obj, uint64_t hlc, const char *node, const cJSON *cur_obj)
{
	_cleanup_json_ cJSON *own = cJSON_CreateObject();
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *bind = json_str(obj, "spec.nodeName", NULL);
	const char *ts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp"));
	const cJSON *it;

	if (!own)
		return -ENOMEM;
	if (!strempty(bind)) {
		cJSON *a = ver_make(hlc, node);

		cJSON_AddItemToArray(a, cJSON_CreateString(bind));
		cJSON_AddItemToObject(own, "bind", a);
	}
	if (!strempty(ts)) {
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(md, "deletionGracePeriodSeconds");
		cJSON *a = ver_make(hlc, node);

		cJSON_AddItemToArray(a, cJSON_CreateString(ts));
		cJSON_AddItemToArray(a, cJSON_IsNumber(g) ? cJSON_CreateNumber(g->valuedouble)
							  : cJSON_CreateNull());
		cJSON_AddItemToObject(own, "del", a);
	}
	sticky_join(st, own);
	if (cur_obj && cJSON_GetObjectItemCaseSensitive(st, "del")) {
		const cJSON *now = json_path(obj, "metadata.finalizers");

		cJSON_ArrayForEach(it, json_path(cur_obj, "metadata.finalizers"))
			if (cJSON_IsString(it) && !str_in(now, it->valuestring))
				fin_add(st, it->valuestring);
	}
	return 0;
}

static bool set_str(cJSON *parent, const char *key, const char *v)
{
	cJSON *cur = cJSON_GetObjectItemCaseSensitive(parent, key);

	if (cJSON_IsString(cur) && streq(cur->valuestring, v))
		return false;
	if (cur)
		cJSON_ReplaceItemInObjectCaseSensitive(parent, key, cJSON_CreateString(v));
	else
		cJSON_AddStringToObject(parent, key, v);
	return true;
}

/* Make obj show the sticky fields; true if it changed. */
bool sticky_overlay(cJSON *obj, const cJSON *st)
{
	const cJSON *bind = cJSON_GetObjectItemCaseSensitive(st, "bind");
	const cJSON *del = cJSON_GetObjectItemCaseSensitive(st, "del");
	const cJSON *rm = cJSON_GetObjectItemCaseSensitive(st, "fin");
	cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata"), *fin, *it, *next;
	bool changed = false;

	if (cJSON_IsArray(bind)) {
		cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
		const char *v = cJSON_GetStringValue(cJSON_GetArrayItem(bind, 2));

		if (!spec)
			spec = cJSON_AddObjectToObject(obj, "spec");
		if (spec && v)
			changed |= set_str(spec, "nodeName", v);
	}
	if (!md && (del || rm))
		md = cJSON_AddObjectToObject(obj, "metadata");
	if (cJSON_IsArray(del) && md) {
		const char *ts = cJSON_GetStringValue(cJSON_GetArrayItem(del, 2));
		const cJSON *g = cJSON_GetArrayItem(del, 3);
		cJSON *cur = cJSON_GetObjectItemCaseSensitive(md, "deletionGracePeriodSeconds");

		if (ts)
			changed |= set_str(md, "deletionTimestamp", ts);
		if (cJSON_IsNumber(g) && !(cJSON_IsNumber(cur) && cur->valuedouble == g->valuedouble)) {
			if (cur)
				cJSON_ReplaceItemInObjectCaseSensitive(
					md, "deletionGracePeriodSeconds", cJSON_CreateNumber(g->valuedouble));
			else
				cJSON_AddNumberToObject(md, "deletionGracePeriodSeconds", g->valuedouble);
			changed = true;
		}
	}
	fin = cJSON_GetObjectItemCaseSensitive(md, "finalizers");
	if (cJSON_IsArray(rm) && cJSON_IsArray(fin)) {
		for (it = fin->child; it; it = next) {
			next = it->next;
			if (cJSON_IsString(it) && str_in(rm, it->valuestring)) {
				cJSON_Delete(cJSON_DetachItemViaPointer(fin, it));
				changed = true;
			}
		}
		if (changed && !fin->child)
			cJSON_DeleteItemFromObjectCaseSensitive(md, "finalizers");
	}
	return changed;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Canonical text (fixed member order, sorted finalizers), NULL when there is nothing. */
char *sticky_print(const cJSON *st)
{
	_cleanup_json_ cJSON *out = cJSON_CreateObject();
	const cJSON *fin = cJSON_GetObjectItemCaseSensitive(st, "fin"), *it;
	_cleanup_free_ const char **names = NULL;
	size_t n = 0;

	if (!out)
		return NULL;
	static const char *const keys[] = { "bind", "del" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, keys[i]);

		if (cJSON_IsArray(v))
			cJSON_AddItemToObject(out, keys[i], cJSON_Duplicate(v, true));
	}
	names = calloc((size_t)cJSON_GetArraySize(fin) + 1, sizeof(*names));
	if (!names)
		return NULL;
	cJSON_ArrayForEach(it, fin)
		if (cJSON_IsString(it))
			names[n++] = it->valuestring;
	if (n) {
		cJSON *arr = cJSON_AddArrayToObject(out, "fin");

		qsort(names, n, sizeof(names[0]), cmp_str);
		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
	}
	if (!out->child)
		return NULL;
	return cJSON_PrintUnformatted(out);
}

/* --- the commit --- */

static bool layout_same(const struct layout *a, const struct layout *b)
{
	if (a->a_len + a->b_len != b->a_len + b->b_len || a->status_len != b->status_len ||
	    !a->status != !b->status)
		return false;
	/* the split point may differ; compare the spec texts as A + B */
	for (size_t i = 0, n = a->a_len + a->b_len; i < n; i++) {
		char ca = i < a->a_len ? a->a[i] : a->b[i - a->a_len];
		char cb = i < b->a_len ? b->a[i] : b->b[i - b->a_len];

		if (ca != cb)
			return false;
	}
	return !a->status || memcmp(a->status, b->status, a->status_len) == 0;
}

/*
 * Make k the key's state. A change a reader can see gets the next resourceVersion and an
 * event; one they cannot (a newer version of equal content, a tombstone replacing a
 * tombstone, one arriving for a key never seen) is persisted without either. ent is NULL for
 * a key not in the index (h is its hash). Takes nothing; on failure nothing changed.
 */
int key_commit(struct store *s, struct res *r, struct entry *ent, const char *ns,
	       const char *name, uint64_t h, const struct kstate *k, struct store_obj **ret,
	       struct err *e)
{
	struct obj_priv *cur = ent ? ent->obj : NULL, *o = NULL;
	struct tomb *t = NULL;
	struct layout cl;
	enum store_event_type type;
	bool visible, status_only, fresh = !ent;
	const char *spec = "";
	size_t spec_len = 0;
	uint64_t rv;
	int rc;

	if (k->deleted) {
		visible = cur != NULL;
		type = STORE_DELETED;
	} else if (!cur) {
		visible = true;
		type = STORE_ADDED;
	} else {
		cl = obj_layout(cur);
		visible = k->touch || !layout_same(&cl, &k->l);
		type = STORE_MODIFIED;
	}
	rv = visible ? s->rv + 1 : cur ? cur->pub.rv : ent && ent->tomb ? ent->tomb->rv : s->rv;

	if (k->deleted) {
		t = tomb_new(rv, k->born, k->spec_hlc, k->uid, k->spec_node);
		if (!t)
			return err_internal(e, -ENOMEM);
	}
	if (k->deleted && cur) {
		/* the final state, as watchers see it DELETED */
		o = obj_new(&(struct obj_fields){
			.resource = r->name,
			.ns = ns,
			.name = name,
			.uid = cur->pub.uid,
			.rv = rv,
			.born = cur->pub.born,
			.spec_hlc = k->spec_hlc,
			.spec_node = k->spec_node,
			.status_hlc = cur->pub.status_hlc,
			.status_node = cur->pub.status_node,
			.status_term = cur->pub.status_term,
			.sticky = cur->pub.sticky,
			.l = obj_layout(cur),
			.labels = cur->pub.labels,
			.node_name = cur->pub.node_name,
			.phase = cur->pub.phase,
		});
	} else if (!k->deleted) {
		/* an invisible change keeps rv, so the same text */
		o = obj_new(&(struct obj_fields){
			.resource = r->name,
			.ns = ns,
			.name = name,
			.uid = k->uid,
			.rv = rv,
			.born = k->born,
			.spec_hlc = k->spec_hlc,
			.spec_node = k->spec_node,
			.status_hlc = k->status_hlc,
			.status_node = k->status_node,
			.status_term = k->status_term,
			.sticky = k->sticky,
			.l = k->l,
			.labels = k->labels,
			.labels_take = k->labels_take,
			.node_name = k->node_name,
			.phase = k->phase,
		});
	}
	if ((!k->deleted || cur) && !o) {
		free(t);
		return err_internal(e, -ENOMEM);
	}
	if (fresh) {
		ent = entry_new(r, ns, name, h);
		if (ent)
			ent->row = s->next_row++;
	}
	rc = ent ? res_reserve(r) : -ENOMEM;
	if (rc == 0 && visible)
		rc = ring_reserve(s);
	/* the status register alone changed (what nodes write most): leave the spec column be */
	status_only = cur && !k->deleted && k->spec_hlc == cur->pub.spec_hlc &&
		      streq(k->spec_node, cur->pub.spec_node) && streq(k->uid, cur->pub.uid) &&
		      k->born == cur->pub.born && streq_null(k->sticky, cur->pub.sticky);
	if (rc == 0 && !k->deleted && !status_only)
		rc = spec_text(s, &k->l, &spec, &spec_len);
	if (rc < 0) {
		rc = err_internal(e, rc);
		goto fail;
	}
	rc = db_write(s, status_only ? ST_STATUS : ST_PUT,
		      &(struct row){
			      .rowid = ent->row,
			      .fresh = fresh,
			      .resource = r->name,
			      .ns = ns,
			      .name = name,
			      .uid = k->uid,
			      .rv = rv,
			      .spec = spec,
			      .spec_len = spec_len,
			      .spec_hlc = k->spec_hlc,
			      .spec_node = k->spec_node,
			      .status = k->deleted ? NULL : k->l.status,
			      .status_len = k->deleted ? 0 : k->l.status_len,
			      .status_hlc = k->deleted ? 0 : k->status_hlc,
			      .status_node = k->deleted ? NULL : k->status_node,
			      .status_term = k->deleted ? 0 : k->status_term,
			      .deleted = k->deleted,
			      .born = k->born,
			      .sticky = k->deleted ? NULL : k->sticky,
		      },
		      e);
	if (rc < 0)
		goto fail;

	/* committed: from here on nothing fails */
	if (fresh) {
		htab_add(s, ent);
		s->tombstones++; /* a fresh key counts as a tombstone until it is live */
	}
	if (cur)
		obj_retire(s, cur);
	free(ent->tomb);
	ent->tomb = t;
	if (k->deleted) {
		if (cur) {
			res_remove(r, ent);
			ent->obj = NULL;
			s->live--;
			s->tombstones++;
			o->live = false; /* the final state is no key's current version */
		}
	} else {
		if (!cur) {
			if (s->batch)
				res_append(r, ent); /* sorted in at the batch's end */
			else
				res_insert(r, ent);
			s->live++;
			s->tombstones--;
		}
		ent->obj = o;
		store_obj_ref(&o->pub);
	}
	key_digest_update(ent);
	if (!visible) {
		if (cur)
			store_obj_unref(&cur->pub);
		if (ret)
			*ret = o ? &o->pub : NULL;
		else
			store_obj_unref(o ? &o->pub : NULL);
		return 0;
	}
	s->rv = rv;
	s->commits++;
	ring_push(s, type, rv, o, cur);
	if (cur)
		store_obj_unref(&cur->pub); /* the entry's reference */
	if (ret)
		*ret = &o->pub;
	else
		store_obj_unref(&o->pub);
	if (!s->batch) {
		store_dispatch(s);
		ring_evict(s);
	}
	return 0;
fail:
	if (fresh)
		free(ent);
	if (o)
		store_obj_unref(&o->pub);
	free(t);
	return rc;
}
