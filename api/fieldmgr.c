// SPDX-License-Identifier: Apache-2.0
/*
 * managedFields and server-side apply. A field set is a sorted array of paths; a path is its
 * fieldsV1 elements ("f:spec", "k:{\"name\":\"main\"}", "v:\"x\"") joined by '\n'. The
 * leaves of an object are its scalars, empty objects, atomic lists, set items and keyed list
 * items (the item itself, plus its own leaves).
 */
#include <string.h>

#include "api/fieldmgr.h"
#include "api/patch.h"
#include "lib/json.h"
#include "lib/util.h"

#define SEP '\n'
#define MAX_NAMES 32
#define MAX_DEPTH 64

/* ---------- path sets ---------- */

struct fset {
	char **v;
	size_t n, cap;
};

static void fset_done(struct fset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool fset_has(const struct fset *s, const char *p)
{
	return s->n && bsearch(&p, s->v, s->n, sizeof(char *), cmp_str);
}

/* Append (unsorted); fset_sort before lookups. */
static int fset_add(struct fset *s, const char *p)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 32;
		char **n = realloc(s->v, cap * sizeof(char *));
		if (!n)
			return -ENOMEM;
		s->v = n;
		s->cap = cap;
	}
	if (!(s->v[s->n] = strdup(p)))
		return -ENOMEM;
	s->n++;
	return 0;
}

static void fset_sort(struct fset *s)
{
	size_t o = 0;

	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < s->n; i++) {
		if (o && streq(s->v[o - 1], s->v[i])) {
			free(s->v[i]);
			continue;
		}
		s->v[o++] = s->v[i];
	}
	s->n = o;
}

/* Remove every path of `minus` from s (s stays sorted). */
static void fset_subtract(struct fset *s, const struct fset *minus)
{
	size_t o = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (fset_has(minus, s->v[i])) {
			free(s->v[i]);
			continue;
		}
		s->v[o++] = s->v[i];
	}
	s->n = o;
}

/* ---------- leaves of an object ---------- */

struct walk {
	const char *kind;
	const char *names[MAX_NAMES]; /* field names from the root, for list types */
	size_t nnames;
	struct fset *out;
};

static char *path_join(const char *path, const char *elem)
{
	char *s;

	if (asprintf(&s, "%s%s%s", path, *path ? "\n" : "", elem) < 0)
		return NULL;
	return s;
}

/* path + "\n" + "f:" + name in one allocation (every field of every write comes here) */
static char *path_join_field(const char *path, const char *name)
{
	size_t pl = strlen(path), nl = strlen(name), o = 0;
	char *s = malloc(pl + nl + 4);

	if (!s)
		return NULL;
	memcpy(s, path, pl);
	o = pl;
	if (pl)
		s[o++] = '\n';
	s[o++] = 'f';
	s[o++] = ':';
	memcpy(s + o, name, nl + 1);
	return s;
}

static char *elem_json(char prefix, const cJSON *v)
{
	_cleanup_free_ char *j = cJSON_PrintUnformatted(v);
	char *s;

	if (!j || asprintf(&s, "%c:%s", prefix, j) < 0)
		return NULL;
	return s;
}

/* "k:{\"name\":\"main\"}" for a keyed list item, NULL if the item has no key. */
static char *elem_key(const cJSON *item, const char *key)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(item, key);
	_cleanup_json_ cJSON *o = NULL;

	if (!k || cJSON_IsObject(k) || cJSON_IsArray(k))
		return NULL;
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToObject(o, key, cJSON_Duplicate(k, true)))
		return NULL;
	return elem_json('k', o);
}

static bool skipped_field(size_t depth, const char *parent, const char *name)
{
	static const char *const sys_meta[] = { "name", "namespace", "uid", "resourceVersion",
						"generation", "creationTimestamp",
						"deletionTimestamp", "deletionGracePeriodSeconds",
						"managedFields", "selfLink", "generateName" };

	if (depth == 0)
		return streq(name, "apiVersion") || streq(name, "kind") || streq(name, "status");
	if (depth == 1 && parent && streq(parent, "metadata"))
		for (size_t i = 0; i < ARRAY_SIZE(sys_meta); i++)
			if (streq(name, sys_meta[i]))
				return true;
	return false;
}

static int walk_value(struct walk *w, const cJSON *v, const char *path, size_t depth);

static int walk_object(struct walk *w, const cJSON *v, const char *path, size_t depth)
{
	const cJSON *it;
	int r;

	if (!v->child)
		return *path ? fset_add(w->out, path) : 0;
	cJSON_ArrayForEach(it, v)
	{
		_cleanup_free_ char *p = NULL;
		if (!it->string ||
		    skipped_field(depth, w->nnames ? w->names[w->nnames - 1] : NULL, it->string))
			continue;
		if (!(p = path_join_field(path, it->string)))
			return -ENOMEM;
		if (w->nnames == MAX_NAMES)
			return fset_add(w->out, p);
		w->names[w->nnames++] = it->string;
		r = walk_value(w, it, p, depth + 1);
		w->nnames--;
		if (r < 0)
			return r;
	}
	return 0;
}

static int walk_value(struct walk *w, const cJSON *v, const char *path, size_t depth)
{
	const char *key;
	const cJSON *it;
	int r;

	if (depth > MAX_DEPTH)
		return fset_add(w->out, path);
	if (cJSON_IsObject(v))
		return walk_object(w, v, path, depth);
	if (!cJSON_IsArray(v) || !v->child)
		return fset_add(w->out, path);
	switch (patch_list_type(w->kind, w->names, w->nnames, &key)) {
	case PATCH_LIST_MAP:
		cJSON_ArrayForEach(it, v)
			if (!cJSON_IsObject(it) || !cJSON_GetObjectItemCaseSensitive(it, key))
				return fset_add(w->out, path); /* not keyable: atomic */
		cJSON_ArrayForEach(it, v)
		{
			_cleanup_free_ char *el = elem_key(it, key), *p = NULL;
			if (!el || !(p = path_join(path, el)))
				return -ENOMEM;
			if ((r = fset_add(w->out, p)) < 0 || (r = walk_object(w, it, p, depth + 1)) < 0)
				return r;
		}
		return 0;
	case PATCH_LIST_SET:
		cJSON_ArrayForEach(it, v)
		{
			_cleanup_free_ char *el = elem_json('v', it), *p = NULL;
			if (!el || !(p = path_join(path, el)))
				return -ENOMEM;
			if ((r = fset_add(w->out, p)) < 0)
				return r;
		}
		return 0;
	default:
		return fset_add(w->out, path);
	}
}

static int leaves(const char *kind, const cJSON *obj, struct fset *out)
{
	struct walk w = { .kind = kind, .out = out };
	int r = obj ? walk_value(&w, obj, "", 0) : 0;

	fset_sort(out);
	return r;
}

/* ---------- resolving paths ---------- */

/* Next element of path into buf (NUL-terminated); advances *p. false at the end. */
static bool next_elem(const char **p, char **buf)
{
	const char *s = *p, *end;

	if (!*s)
		return false;
	end = strchrnul(s, SEP);
	*buf = strndup(s, (size_t)(end - s));
	*p = *end ? end + 1 : end;
	return *buf != NULL;
}

/* The child of v that element el names, NULL if none. */
static cJSON *elem_child(cJSON *v, const char *el)
{
	_cleanup_json_ cJSON *j = NULL;
	cJSON *it;

	if (!strncmp(el, "f:", 2))
		return cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, el + 2) : NULL;
	if (!cJSON_IsArray(v) || strlen(el) < 2 || el[1] != ':' || !(j = cJSON_Parse(el + 2)))
		return NULL;
	cJSON_ArrayForEach(it, v)
	{
		if (el[0] == 'v' && cJSON_Compare(it, j, true))
			return it;
		if (el[0] == 'k' && cJSON_IsObject(it) && cJSON_IsObject(j)) {
			const cJSON *k;
			bool all = true;
			cJSON_ArrayForEach(k, j)
			{
				const cJSON *x = cJSON_GetObjectItemCaseSensitive(it, k->string);
				if (!x || !cJSON_Compare(x, k, true))
					all = false;
			}
			if (all)
				return it;
		}
	}
	return NULL;
}

static cJSON *resolve(const cJSON *obj, const char *path, cJSON **parent)
{
	cJSON *v = (cJSON *)obj, *par = NULL;
	const char *p = path;
	char *el;

	while (v && next_elem(&p, &el)) {
		par = v;
		v = elem_child(v, el);
		free(el);
	}
	if (parent)
		*parent = par;
	return v;
}

static void remove_path(cJSON *obj, const char *path)
{
	cJSON *parent, *v = resolve(obj, path, &parent);

	if (v && parent)
		cJSON_Delete(cJSON_DetachItemViaPointer(parent, v));
}

/* A value whose ownership is about its content (not a container of owned leaves). */
static bool is_leaf_value(const cJSON *v)
{
	return v && !(cJSON_IsObject(v) && v->child);
}

/* ---------- fieldsV1 ---------- */

static int fset_from_fieldsv1(const cJSON *node, const char *prefix, struct fset *out, int depth)
{
	const cJSON *it;
	int r;

	if (!cJSON_IsObject(node) || depth > MAX_DEPTH)
		return 0;
	cJSON_ArrayForEach(it, node)
	{
		_cleanup_free_ char *p = NULL;
		if (!it->string || streq(it->string, "."))
			continue;
		if (!(p = path_join(prefix, it->string)))
			return -ENOMEM;
		if (!cJSON_IsObject(it))
			continue;
		if ((!it->child || cJSON_GetObjectItemCaseSensitive(it, ".")) &&
		    (r = fset_add(out, p)) < 0)
			return r;
		if ((r = fset_from_fieldsv1(it, p, out, depth + 1)) < 0)
			return r;
	}
	return 0;
}

static cJSON *fset_to_fieldsv1(const struct fset *s)
{
	_cleanup_json_ cJSON *root = cJSON_CreateObject();
	_cleanup_free_ cJSON **members = calloc(s->n + 1, sizeof(cJSON *));

	if (!root || !members)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		cJSON *node = root;
		const char *p = s->v[i];
		char *el;

		while (next_elem(&p, &el)) {
			cJSON *c = cJSON_GetObjectItemCaseSensitive(node, el);
			if (!c) {
				c = cJSON_CreateObject();
				if (!c || !cJSON_AddItemToObject(node, el, c)) {
					cJSON_Delete(c);
					free(el);
					return NULL;
				}
			}
			free(el);
			node = c;
		}
		members[i] = node;
	}
	for (size_t i = 0; i < s->n; i++) {
		cJSON *m = members[i], *dot;
		if (!m->child || cJSON_GetObjectItemCaseSensitive(m, "."))
			continue;
		/* "." first, as Kubernetes writes it */
		dot = cJSON_CreateObject();
		if (!dot || !cJSON_AddItemToObject(m, ".", dot)) {
			cJSON_Delete(dot);
			return NULL;
		}
		cJSON_DetachItemViaPointer(m, dot);
		dot->next = m->child;
		dot->prev = m->child->prev;
		m->child->prev = dot;
		m->child = dot;
	}
	return TAKE_PTR(root);
}

/* ---------- managedFields entries ---------- */

struct entry {
	cJSON *json; /* the entry (owned by the managedFields array) */
	struct fset set;
};

struct managed {
	struct entry *v;
	size_t n;
	cJSON *arr; /* owned */
};

static void managed_done(struct managed *m)
{
	for (size_t i = 0; i < m->n; i++)
		fset_done(&m->v[i].set);
	free(m->v);
	cJSON_Delete(m->arr);
	memset(m, 0, sizeof(*m));
}

static int managed_load(const cJSON *obj, struct managed *m)
{
	const cJSON *mf = json_path(obj, "metadata.managedFields");
	cJSON *it;
	int r;

	memset(m, 0, sizeof(*m));
	m->arr = cJSON_IsArray(mf) ? cJSON_Duplicate(mf, true) : cJSON_CreateArray();
	if (!m->arr)
		return -ENOMEM;
	m->v = calloc((size_t)cJSON_GetArraySize(m->arr) + 1, sizeof(*m->v));
	if (!m->v)
		return -ENOMEM;
	cJSON_ArrayForEach(it, m->arr)
	{
		struct entry *en = &m->v[m->n++];
		en->json = it;
		if ((r = fset_from_fieldsv1(cJSON_GetObjectItemCaseSensitive(it, "fieldsV1"), "",
					    &en->set, 0)) < 0)
			return r;
		fset_sort(&en->set);
	}
	return 0;
}

static struct entry *managed_find(struct managed *m, const char *manager, const char *op)
{
	for (size_t i = 0; i < m->n; i++)
		if (streq(json_str(m->v[i].json, "manager", ""), manager) &&
		    streq(json_str(m->v[i].json, "operation", ""), op) &&
		    strempty(json_str(m->v[i].json, "subresource", NULL)))
			return &m->v[i];
	return NULL;
}

/* Write the entries back into obj (empty ones dropped); `mine` gets set/time. */
static int managed_store(struct managed *m, cJSON *obj, const char *manager, const char *op,
			 const char *api_version, const char *now, struct fset *mine)
{
	struct entry *own = managed_find(m, manager, op);
	cJSON *md = json_path_obj(obj, "metadata"), *arr;
	int r;

	if (!md)
		return -ENOMEM;
	if (!own && mine->n) {
		cJSON *j = cJSON_CreateObject();
		if (!j || !cJSON_AddItemToArray(m->arr, j)) {
			cJSON_Delete(j);
			return -ENOMEM;
		}
		json_set_str(j, "manager", manager);
		json_set_str(j, "operation", op);
		own = &m->v[m->n++];
		own->json = j;
	}
	if (own) {
		/* the time moves only when what the manager owns changed (a no-op stays one) */
		bool same = own->set.n == mine->n;
		for (size_t i = 0; same && i < mine->n; i++)
			same = streq(own->set.v[i], mine->v[i]);
		fset_done(&own->set);
		own->set = *mine;
		memset(mine, 0, sizeof(*mine));
		if (!same || !cJSON_GetObjectItemCaseSensitive(own->json, "time")) {
			json_set_str(own->json, "apiVersion", api_version);
			json_set_str(own->json, "time", now);
		}
	}
	arr = cJSON_CreateArray();
	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < m->n; i++) {
		struct entry *en = &m->v[i];
		cJSON *fv, *j;
		if (!en->set.n)
			continue;
		if (!(fv = fset_to_fieldsv1(&en->set)) || !(j = cJSON_Duplicate(en->json, false))) {
			cJSON_Delete(fv);
			r = -ENOMEM;
			goto fail;
		}
		/* Kubernetes' key order */
		static const char *const keys[] = { "manager", "operation", "apiVersion", "time",
						    "subresource" };
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(en->json, keys[k]);
			if (v)
				cJSON_AddItemToObject(j, keys[k], cJSON_Duplicate(v, true));
		}
		cJSON_AddStringToObject(j, "fieldsType", "FieldsV1");
		cJSON_AddItemToObject(j, "fieldsV1", fv);
		cJSON_AddItemToArray(arr, j);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
	if (cJSON_GetArraySize(arr))
		cJSON_AddItemToObject(md, "managedFields", arr);
	else
		cJSON_Delete(arr);
	return 0;
fail:
	cJSON_Delete(arr);
	return r;
}

/* ---------- update ---------- */

int fieldmgr_update(const char *kind, const char *api_version, const cJSON *old, cJSON *obj,
		    const char *manager, const char *now, struct err *e)
{
	struct fset nw = { 0 }, ol = { 0 }, changed = { 0 }, removed = { 0 }, mine = { 0 };
	struct managed m;
	struct entry *own;
	int r;

	if ((r = managed_load(obj, &m)) < 0 || (r = leaves(kind, obj, &nw)) < 0 ||
	    (r = leaves(kind, old, &ol)) < 0)
		goto out;
	for (size_t i = 0; i < nw.n; i++) {
		const char *p = nw.v[i];
		bool was = fset_has(&ol, p);
		if (was) {
			const cJSON *a = resolve(obj, p, NULL), *b = resolve(old, p, NULL);
			if (!is_leaf_value(a) || (b && cJSON_Compare(a, b, true)))
				continue;
		}
		if ((r = fset_add(&changed, p)) < 0)
			goto out;
	}
	for (size_t i = 0; i < ol.n; i++)
		if (!fset_has(&nw, ol.v[i]) && (r = fset_add(&removed, ol.v[i])) < 0)
			goto out;
	fset_sort(&changed);
	fset_sort(&removed);
	own = managed_find(&m, manager, "Update");
	for (size_t i = 0; i < m.n; i++) {
		if (&m.v[i] == own)
			continue;
		fset_subtract(&m.v[i].set, &changed);
		fset_subtract(&m.v[i].set, &removed);
	}
	if (own)
		for (size_t i = 0; i < own->set.n; i++)
			if ((r = fset_add(&mine, own->set.v[i])) < 0)
				goto out;
	for (size_t i = 0; i < changed.n; i++)
		if ((r = fset_add(&mine, changed.v[i])) < 0)
			goto out;
	fset_sort(&mine);
	fset_subtract(&mine, &removed);
	r = managed_store(&m, obj, manager, "Update", api_version, now, &mine);
out:
	if (r == -ENOMEM)
		err_set(e, ENOMEM, 500, "InternalError", "managed fields: out of memory");
	fset_done(&nw);
	fset_done(&ol);
	fset_done(&changed);
	fset_done(&removed);
	fset_done(&mine);
	managed_done(&m);
	return r;
}

/* ---------- apply ---------- */

/* fieldpath.Path.String(): .spec.containers[name="main"].image */
static void path_string(const char *path, char *buf, size_t len)
{
	const char *p = path;
	size_t o = 0;
	char *el;

	buf[0] = 0;
	while (next_elem(&p, &el) && o < len) {
		if (!strncmp(el, "f:", 2))
			o += (size_t)snprintf(buf + o, len - o, ".%s", el + 2);
		else if (el[0] == 'v')
			o += (size_t)snprintf(buf + o, len - o, "[=%s]", el + 2);
		else {
			_cleanup_json_ cJSON *k = cJSON_Parse(el + 2);
			const cJSON *it;
			bool first = true;
			o += (size_t)snprintf(buf + o, len - o, "[");
			cJSON_ArrayForEach(it, k)
			{
				_cleanup_free_ char *v = cJSON_PrintUnformatted(it);
				if (o < len)
					o += (size_t)snprintf(buf + o, len - o, "%s%s=%s",
							      first ? "" : ",", it->string,
							      v ? v : "");
				first = false;
			}
			if (o < len)
				o += (size_t)snprintf(buf + o, len - o, "]");
		}
		free(el);
	}
}

/* printManager() of a manager identifier (which never carries the time) */
static void manager_string(const cJSON *en, char *buf, size_t len)
{
	const char *mgr = json_str(en, "manager", ""), *sub = json_str(en, "subresource", NULL);
	size_t o = (size_t)snprintf(buf, len, "\"%s\"", mgr);

	if (!strempty(sub) && o < len)
		o += (size_t)snprintf(buf + o, len - o, " with subresource \"%s\"", sub);
	if (streq(json_str(en, "operation", ""), "Update") && o < len)
		snprintf(buf + o, len - o, " using %s", json_str(en, "apiVersion", ""));
}

struct conflict {
	size_t entry;
	const char *path;
};

static int cmp_conflict(const void *a, const void *b, void *ud)
{
	const struct conflict *x = a, *y = b;
	const struct managed *m = ud;
	int c = strcmp(json_str(m->v[x->entry].json, "manager", ""),
		       json_str(m->v[y->entry].json, "manager", ""));

	return c ? c : strcmp(x->path, y->path);
}

static int conflict_error(struct managed *m, struct conflict *cs, size_t n, struct err *e)
{
	char mgr[200], path[200], msg[sizeof(e->message)];
	size_t o = 0;

	qsort_r(cs, n, sizeof(*cs), cmp_conflict, m);
	if (n == 1) {
		manager_string(m->v[cs[0].entry].json, mgr, sizeof(mgr));
		path_string(cs[0].path, path, sizeof(path));
		snprintf(msg, sizeof(msg), "Apply failed with 1 conflict: conflict with %.200s: %.200s", mgr,
			 path);
	} else {
		o = (size_t)snprintf(msg, sizeof(msg), "Apply failed with %zu conflicts: ", n);
		for (size_t i = 0; i < n && o < sizeof(msg); i++) {
			path_string(cs[i].path, path, sizeof(path));
			if (!i || cs[i].entry != cs[i - 1].entry) {
				manager_string(m->v[cs[i].entry].json, mgr, sizeof(mgr));
				o += (size_t)snprintf(msg + o, sizeof(msg) - o, "%sconflicts with %s:",
						      i ? "\n" : "", mgr);
			}
			if (o < sizeof(msg))
				o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\n- %s", path);
		}
	}
	err_set(e, EBUSY, 409, "Conflict", "%s", msg);
	for (size_t i = 0; i < n; i++) {
		manager_string(m->v[cs[i].entry].json, mgr, sizeof(mgr));
		path_string(cs[i].path, path, sizeof(path));
		err_cause(e, "FieldManagerConflict", path, "conflict with %s", mgr);
	}
	return -EBUSY;
}

int fieldmgr_apply(const char *kind, const char *api_version, const cJSON *live,
		   const cJSON *config, const char *manager, bool force, const char *now,
		   cJSON **ret, struct err *e)
{
	struct fset cfg = { 0 }, mine = { 0 };
	_cleanup_json_ cJSON *out = NULL, *patch = NULL;
	_cleanup_free_ struct conflict *cs = NULL;
	struct managed m = { 0 };
	struct entry *own;
	size_t ncs = 0;
	int r;

	patch = cJSON_Duplicate(config, true);
	out = live ? cJSON_Duplicate(live, true) : cJSON_CreateObject();
	if (!patch || !out) {
		r = -ENOMEM;
		goto out;
	}
	/* identity and system fields are not the applier's to set */
	cJSON *pmd = json_path(patch, "metadata");
	static const char *const drop[] = { "managedFields", "resourceVersion", "uid",
					    "creationTimestamp", "generation", "selfLink" };
	for (size_t i = 0; pmd && i < ARRAY_SIZE(drop); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(pmd, drop[i]);
	cJSON_DeleteItemFromObjectCaseSensitive(patch, "status");

	if ((r = managed_load(out, &m)) < 0 || (r = leaves(kind, patch, &cfg)) < 0)
		goto out;
	own = managed_find(&m, manager, "Apply");

	/* conflicts: another manager owns a leaf this one sets to a different value */
	cs = calloc(cfg.n + 1, sizeof(*cs));
	if (!cs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cfg.n; i++) {
		const cJSON *want = resolve(patch, cfg.v[i], NULL);
		const cJSON *have = resolve(out, cfg.v[i], NULL);
		if (!is_leaf_value(want) || !have || cJSON_Compare(want, have, true))
			continue;
		for (size_t k = 0; k < m.n; k++) {
			if (&m.v[k] == own || !fset_has(&m.v[k].set, cfg.v[i]))
				continue;
			if (force) {
				struct fset one = { .v = &cfg.v[i], .n = 1 };
				fset_subtract(&m.v[k].set, &one);
				continue;
			}
			cs[ncs].entry = k;
			cs[ncs++].path = cfg.v[i];
			break;
		}
		if (ncs == ERR_MAX_CAUSES)
			break;
	}
	if (ncs) {
		r = conflict_error(&m, cs, ncs, e);
		goto out;
	}

	/* what this manager applied before and omits now goes, unless someone else owns it */
	for (size_t i = 0; own && i < own->set.n; i++) {
		const char *p = own->set.v[i];
		bool other = false;
		if (fset_has(&cfg, p))
			continue;
		for (size_t k = 0; k < m.n && !other; k++)
			other = &m.v[k] != own && fset_has(&m.v[k].set, p);
		if (!other)
			remove_path(out, p);
	}
	if ((r = patch_strategic(out, patch, kind, e)) < 0)
		goto out;
	if ((r = managed_store(&m, out, manager, "Apply", api_version, now, &cfg)) < 0)
		goto out;
	*ret = TAKE_PTR(out);
	r = 0;
out:
	if (r == -ENOMEM)
		err_set(e, ENOMEM, 500, "InternalError", "server-side apply: out of memory");
	fset_done(&cfg);
	fset_done(&mine);
	managed_done(&m);
	return r;
}
