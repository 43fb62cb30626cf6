// SPDX-License-Identifier: Apache-2.0
/*
 * Every patch is applied to a copy of the target and swapped in only when it succeeded, so a
 * failing patch leaves the object untouched (RFC 6902 requires atomicity; the other two follow).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "api/patch.h"

#define PATCH_BAD(...) err_set(e, EINVAL, 400, "BadRequest", __VA_ARGS__)
#define PATCH_INVALID(...) err_set(e, EINVAL, 422, "Invalid", __VA_ARGS__)

/* Move the contents of src into dst (dst keeps its place in any parent); src gets dst's old. */
static void json_swap(cJSON *a, cJSON *b)
{
	cJSON t = *a;

	a->type = b->type;
	a->child = b->child;
	a->valuestring = b->valuestring;
	a->valueint = b->valueint;
	a->valuedouble = b->valuedouble;
	b->type = t.type;
	b->child = t.child;
	b->valuestring = t.valuestring;
	b->valueint = t.valueint;
	b->valuedouble = t.valuedouble;
}

static bool json_set(cJSON *obj, const char *key, cJSON *val)
{
	if (!val)
		return false;
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, val);
	return cJSON_AddItemToObject(obj, key, val);
}

/* ---------------- RFC 7386 ---------------- */

static int merge_rec(cJSON *target, const cJSON *patch)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, patch)
	{
		cJSON *t = cJSON_GetObjectItemCaseSensitive(target, p->string);

		if (cJSON_IsNull(p)) {
			cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
		} else if (cJSON_IsObject(p)) {
			if (!cJSON_IsObject(t)) {
				t = cJSON_CreateObject();
				if (!json_set(target, p->string, t)) {
					cJSON_Delete(t);
					return -ENOMEM;
				}
			}
			int r = merge_rec(t, p);
			if (r < 0)
				return r;
		} else {
			cJSON *v = cJSON_Duplicate(p, true);
			if (!json_set(target, p->string, v)) {
				cJSON_Delete(v);
				return -ENOMEM;
			}
		}
	}
	return 0;
}

int patch_merge(cJSON *target, const cJSON *patch, struct err *e)
{
	_cleanup_json_ cJSON *doc = NULL;
	int r;

	if (!cJSON_IsObject(patch))
		return PATCH_BAD("merge patch must be a JSON object");
	if (!cJSON_IsObject(target))
		return PATCH_BAD("merge patch target must be a JSON object");
	doc = cJSON_Duplicate(target, true);
	if (!doc)
		return -ENOMEM;
	r = merge_rec(doc, patch);
	if (r < 0)
		return err_set(e, -r, 500, "InternalError", "merge patch: out of memory");
	json_swap(target, doc);
	return 0;
}

/* ---------------- strategic merge patch ---------------- */

enum smp_kind {
	SMP_OBJ,     /* a struct: sub is its schema */
	SMP_MAPLIST, /* list of structs merged by `key`; sub is the item schema */
	SMP_SETLIST, /* list of scalars with patchStrategy merge (finalizers) */
};

struct smp_field {
	const char *name;
	enum smp_kind kind;
	const char *key;
	const struct smp_field *sub;
};

/* patchMergeKey / patchStrategy tags of k8s.io/api for the fields we serve. */
static const struct smp_field smp_meta[] = {
	{ "finalizers", SMP_SETLIST },
	{ "ownerReferences", SMP_MAPLIST, "uid" },
	{ 0 },
};
static const struct smp_field smp_container[] = {
	{ "ports", SMP_MAPLIST, "containerPort" },
	{ "env", SMP_MAPLIST, "name" },
	{ "volumeMounts", SMP_MAPLIST, "mountPath" },
	{ "volumeDevices", SMP_MAPLIST, "devicePath" },
	{ 0 },
};
static const struct smp_field smp_podspec[] = {
	{ "containers", SMP_MAPLIST, "name", smp_container },
	{ "initContainers", SMP_MAPLIST, "name", smp_container },
	{ "ephemeralContainers", SMP_MAPLIST, "name", smp_container },
	{ "volumes", SMP_MAPLIST, "name" },
	{ "imagePullSecrets", SMP_MAPLIST, "name" },
	{ "hostAliases", SMP_MAPLIST, "ip" },
	{ "topologySpreadConstraints", SMP_MAPLIST, "topologyKey" },
	{ "resourceClaims", SMP_MAPLIST, "name" },
	{ "schedulingGates", SMP_MAPLIST, "name" },
	{ 0 },
};
static const struct smp_field smp_podstatus[] = {
	{ "conditions", SMP_MAPLIST, "type" },
	{ "podIPs", SMP_MAPLIST, "ip" },
	{ "hostIPs", SMP_MAPLIST, "ip" },
	{ "resourceClaimStatuses", SMP_MAPLIST, "name" },
	{ 0 },
};
static const struct smp_field smp_conditions[] = {
	{ "conditions", SMP_MAPLIST, "type" },
	{ 0 },
};
static const struct smp_field smp_pod[] = {
	{ "metadata", SMP_OBJ, NULL, smp_meta },
	{ "spec", SMP_OBJ, NULL, smp_podspec },
	{ "status", SMP_OBJ, NULL, smp_podstatus },
	{ 0 },
};
static const struct smp_field smp_template[] = {
	{ "metadata", SMP_OBJ, NULL, smp_meta },
	{ "spec", SMP_OBJ, NULL, smp_podspec },
	{ 0 },
};
static const struct smp_field smp_workload_spec[] = {
	{ "template", SMP_OBJ, NULL, smp_template },
	{ 0 },
};
static const struct smp_field smp_workload[] = {
	{ "metadata", SMP_OBJ, NULL, smp_meta },
	{ "spec", SMP_OBJ, NULL, smp_workload_spec },
	{ "status", SMP_OBJ, NULL, smp_conditions },
	{ 0 },
};
static const struct smp_field smp_service_spec[] = {
	{ "ports", SMP_MAPLIST, "port" },
	{ 0 },
};
static const struct smp_field smp_service[] = {
	{ "metadata", SMP_OBJ, NULL, smp_meta },
	{ "spec", SMP_OBJ, NULL, smp_service_spec },
	{ "status", SMP_OBJ, NULL, smp_conditions },
	{ 0 },
};
static const struct smp_field smp_node_spec[] = {
	{ "podCIDRs", SMP_SETLIST },
	{ 0 },
};
static const struct smp_field smp_node_status[] = {
	{ "conditions", SMP_MAPLIST, "type" },
	{ "addresses", SMP_MAPLIST, "type" },
	{ 0 },
};
static const struct smp_field smp_node[] = {
	{ "metadata", SMP_OBJ, NULL, smp_meta },
	{ "spec", SMP_OBJ, NULL, smp_node_spec },
	{ "status", SMP_OBJ, NULL, smp_node_status },
	{ 0 },
};
static const struct smp_field smp_namespace[] = {
	{ "metadata", SMP_OBJ, NULL, smp_meta },
	{ "status", SMP_OBJ, NULL, smp_conditions },
	{ 0 },
};
static const struct smp_field smp_generic[] = {
	{ "metadata", SMP_OBJ, NULL, smp_meta },
	{ 0 },
};

static const struct smp_field *smp_schema_for(const char *kind)
{
	static const struct {
		const char *kind;
		const struct smp_field *schema;
	} kinds[] = {
		{ "Pod", smp_pod },		{ "Deployment", smp_workload },
		{ "ReplicaSet", smp_workload }, { "Job", smp_workload },
		{ "DaemonSet", smp_workload },	{ "ControllerRevision", smp_generic },
		{ "Service", smp_service },	{ "Node", smp_node },
		{ "Namespace", smp_namespace }, { "ConfigMap", smp_generic },
		{ "Secret", smp_generic },	{ "Event", smp_generic },
		{ "Endpoints", smp_generic },	{ "PodTemplate", smp_workload_spec },
	};

	for (size_t i = 0; kind && i < ARRAY_SIZE(kinds); i++)
		if (streq(kinds[i].kind, kind))
			return kinds[i].schema;
	return NULL;
}

static const struct smp_field *smp_find(const struct smp_field *schema, const char *name)
{
	for (; schema && schema->name; schema++)
		if (streq(schema->name, name))
			return schema;
	return NULL;
}

#define DIR_PATCH "$patch"
#define DIR_RETAIN "$retainKeys"
#define DIR_DELETE_PRIM "$deleteFromPrimitiveList/"
#define DIR_ORDER "$setElementOrder/"

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static int smp_map(cJSON *orig, const cJSON *patch, const struct smp_field *schema, int depth,
		   struct err *e);
static int smp_list(cJSON *orig, const cJSON *patch, const struct smp_field *f, int depth,
		    struct err *e);

/* A patch value stored where the original has nothing: directives applied against empty. */
static cJSON *smp_normalize(const cJSON *v, const struct smp_field *f, int depth, struct err *e,
			    int *r)
{
	cJSON *n;

	if (cJSON_IsObject(v)) {
		n = cJSON_CreateObject();
		*r = n ? smp_map(n, v, f && f->kind != SMP_SETLIST ? f->sub : NULL, depth + 1, e)
		       : -ENOMEM;
	} else if (cJSON_IsArray(v)) {
		n = cJSON_CreateArray();
		*r = n ? smp_list(n, v, f, depth + 1, e) : -ENOMEM;
	} else {
		n = cJSON_Duplicate(v, true);
		*r = n ? 0 : -ENOMEM;
	}
	if (*r < 0) {
		cJSON_Delete(n);
		return NULL;
	}
	return n;
}

static char *short_json(const cJSON *v, char *buf, size_t len)
{
	_cleanup_free_ char *s = cJSON_PrintUnformatted(v);

	snprintf(buf, len, "%s", s ? s : "?");
	if (s && strlen(s) >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

static const char *patch_directive(const cJSON *obj, int *r, struct err *e)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, DIR_PATCH);

	*r = 0;
	if (!d)
		return NULL;
	if (!cJSON_IsString(d)) {
		*r = PATCH_INVALID("invalid $patch directive: must be a string");
		return NULL;
	}
	if (!streq(d->valuestring, "replace") && !streq(d->valuestring, "delete") &&
	    !streq(d->valuestring, "merge")) {
		char buf[128];
		*r = PATCH_INVALID("Unknown patch type: %s in map: %s", d->valuestring,
				   short_json(obj, buf, sizeof(buf)));
		return NULL;
	}
	return d->valuestring;
}

/* Element of a list matching `match` (by merge key, or by value when key is NULL). */
static cJSON *list_find(cJSON *list, const char *key, const cJSON *match)
{
	cJSON *it;

	cJSON_ArrayForEach(it, list)
	{
		if (key) {
			const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, key);
			if (k && cJSON_Compare(k, match, true))
				return it;
		} else if (cJSON_Compare(it, match, true)) {
			return it;
		}
	}
	return NULL;
}

static int smp_list(cJSON *orig, const cJSON *patch, const struct smp_field *f, int depth,
		    struct err *e)
{
	const cJSON *p;
	char buf[160];
	int r;

	if (depth > 64)
		return PATCH_INVALID("patch nested too deeply");
	if (!f || f->kind == SMP_OBJ) {
		/* no patch strategy: the list is replaced */
		cJSON *n = cJSON_Duplicate(patch, true);
		if (!n)
			return -ENOMEM;
		json_swap(orig, n);
		cJSON_Delete(n);
		return 0;
	}
	/* merging is quadratic in list lengths: refuse what would wedge the server */
	if ((long long)cJSON_GetArraySize(orig) * cJSON_GetArraySize(patch) > 4LL * 1000 * 1000)
		return PATCH_INVALID("%s: lists too long to merge", f->name);
	if (f->kind == SMP_SETLIST) {
		cJSON_ArrayForEach(p, patch)
		{
			if (cJSON_IsObject(p) || cJSON_IsArray(p))
				return PATCH_INVALID("%s: list of primitives may not contain %s",
						     f->name, short_json(p, buf, sizeof(buf)));
			if (list_find(orig, NULL, p))
				continue;
			cJSON *n = cJSON_Duplicate(p, true);
			if (!n || !cJSON_AddItemToArray(orig, n)) {
				cJSON_Delete(n);
				return -ENOMEM;
			}
		}
		return 0;
	}
	/* SMP_MAPLIST: `$patch: replace` anywhere in the list replaces the whole list */
	bool replace = false;
	cJSON_ArrayForEach(p, patch)
	{
		if (!cJSON_IsObject(p))
			return PATCH_INVALID("%s: list element must be an object, got %s", f->name,
					     short_json(p, buf, sizeof(buf)));
		const char *d = patch_directive(p, &r, e);
		if (r < 0)
			return r;
		if (d && streq(d, "replace"))
			replace = true;
	}
	if (replace) {
		cJSON *n = cJSON_CreateArray();
		if (!n)
			return -ENOMEM;
		json_swap(orig, n);
		cJSON_Delete(n);
	}
	cJSON_ArrayForEach(p, patch)
	{
		const char *d = patch_directive(p, &r, e);
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(p, f->key);
		cJSON *match;

		if (d && streq(d, "replace"))
			continue;
		if (d && streq(d, "merge") && cJSON_GetArraySize(p) == 1)
			continue;
		if (!k)
			return PATCH_INVALID("map: %s does not contain declared merge key: %s",
					     short_json(p, buf, sizeof(buf)), f->key);
		match = list_find(orig, f->key, k);
		if (d && streq(d, "delete")) {
			while ((match = list_find(orig, f->key, k)))
				cJSON_Delete(cJSON_DetachItemViaPointer(orig, match));
			continue;
		}
		if (match) {
			r = smp_map(match, p, f->sub, depth + 1, e);
			if (r < 0)
				return r;
		} else {
			cJSON *n = smp_normalize(p, f, depth, e, &r);
			if (!n)
				return r;
			cJSON_AddItemToArray(orig, n);
		}
	}
	return 0;
}

static int smp_set_order(cJSON *orig, const char *field, const cJSON *order,
			 const struct smp_field *f, struct err *e)
{
	cJSON *list = cJSON_GetObjectItemCaseSensitive(orig, field);
	_cleanup_json_ cJSON *sorted = NULL;
	const cJSON *o;

	if (!cJSON_IsArray(order))
		return PATCH_INVALID("%s%s: must be a list", DIR_ORDER, field);
	if (!cJSON_IsArray(list))
		return 0;
	if ((long long)cJSON_GetArraySize(list) * cJSON_GetArraySize(order) > 4LL * 1000 * 1000)
		return PATCH_INVALID("%s%s: lists too long to order", DIR_ORDER, field);
	sorted = cJSON_CreateArray();
	if (!sorted)
		return -ENOMEM;
	cJSON_ArrayForEach(o, order)
	{
		const char *key = f && f->kind == SMP_MAPLIST ? f->key : NULL;
		const cJSON *want = o;
		cJSON *m;

		if (key) {
			want = cJSON_GetObjectItemCaseSensitive(o, key);
			if (!want)
				continue;
		}
		m = list_find(list, key, want);
		if (m)
			cJSON_AddItemToArray(sorted, cJSON_DetachItemViaPointer(list, m));
	}
	/* elements the order does not mention keep their relative order, after */
	while (list->child)
		cJSON_AddItemToArray(sorted, cJSON_DetachItemViaPointer(list, list->child));
	json_swap(list, sorted);
	return 0;
}

static int smp_map(cJSON *orig, const cJSON *patch, const struct smp_field *schema, int depth,
		   struct err *e)
{
	const cJSON *p, *retain;
	const char *d;
	char buf[160];
	int r;

	if (depth > 64)
		return PATCH_INVALID("patch nested too deeply");
	d = patch_directive(patch, &r, e);
	if (r < 0)
		return r;
	if (d && (streq(d, "replace") || streq(d, "delete"))) {
		cJSON *n = cJSON_CreateObject();
		if (!n)
			return -ENOMEM;
		json_swap(orig, n);
		cJSON_Delete(n);
		if (streq(d, "delete"))
			return 0;
	}
	retain = cJSON_GetObjectItemCaseSensitive(patch, DIR_RETAIN);
	if (retain) {
		cJSON *it, *next;

		if (!cJSON_IsArray(retain))
			return PATCH_INVALID("%s must be a list of field names", DIR_RETAIN);
		cJSON_ArrayForEach(p, retain)
		if (!cJSON_IsString(p))
			return PATCH_INVALID("%s must be a list of field names", DIR_RETAIN);
		cJSON_ArrayForEach(p, patch)
		{
			if (p->string[0] == '$' || list_find((cJSON *)retain, NULL,
							     &(cJSON){ .type = cJSON_String,
								       .valuestring = p->string }))
				continue;
			return PATCH_INVALID("patch content doesn't match retainKeys list: %s is "
					     "not in %s", p->string,
					     short_json(retain, buf, sizeof(buf)));
		}
		for (it = orig->child; it; it = next) {
			next = it->next;
			if (!list_find((cJSON *)retain, NULL,
				       &(cJSON){ .type = cJSON_String, .valuestring = it->string }))
				cJSON_Delete(cJSON_DetachItemViaPointer(orig, it));
		}
	}
	cJSON_ArrayForEach(p, patch)
	{
		const char *k = p->string;
		const struct smp_field *f;
		cJSON *o;

		if (streq(k, DIR_PATCH) || streq(k, DIR_RETAIN) || has_prefix(k, DIR_ORDER))
			continue;
		if (has_prefix(k, DIR_DELETE_PRIM)) {
			const cJSON *v;
			const char *field = k + strlen(DIR_DELETE_PRIM);

			if (!cJSON_IsArray(p))
				return PATCH_INVALID("%s: must be a list", k);
			o = cJSON_GetObjectItemCaseSensitive(orig, field);
			if (!cJSON_IsArray(o))
				continue;
			if ((long long)cJSON_GetArraySize(o) * cJSON_GetArraySize(p) >
			    4LL * 1000 * 1000)
				return PATCH_INVALID("%s: lists too long", k);
			cJSON_ArrayForEach(v, p)
			{
				cJSON *m;
				while ((m = list_find(o, NULL, v)))
					cJSON_Delete(cJSON_DetachItemViaPointer(o, m));
			}
			continue;
		}
		f = smp_find(schema, k);
		o = cJSON_GetObjectItemCaseSensitive(orig, k);
		if (cJSON_IsNull(p)) {
			cJSON_DeleteItemFromObjectCaseSensitive(orig, k);
			continue;
		}
		if (cJSON_IsObject(p) && cJSON_IsObject(o)) {
			const char *sd = patch_directive(p, &r, e);
			if (r < 0)
				return r;
			if (sd && streq(sd, "delete")) {
				cJSON_DeleteItemFromObjectCaseSensitive(orig, k);
				continue;
			}
			r = smp_map(o, p, f && f->kind == SMP_OBJ ? f->sub : NULL, depth + 1, e);
		} else if (cJSON_IsArray(p) && cJSON_IsArray(o)) {
			r = smp_list(o, p, f, depth + 1, e);
		} else {
			if (cJSON_IsObject(p)) {
				const char *sd = patch_directive(p, &r, e);
				if (r < 0)
					return r;
				if (sd && streq(sd, "delete")) {
					cJSON_DeleteItemFromObjectCaseSensitive(orig, k);
					continue;
				}
			}
			cJSON *n = smp_normalize(p, f, depth, e, &r);
			if (!n)
				return r;
			if (!json_set(orig, k, n)) {
				cJSON_Delete(n);
				return -ENOMEM;
			}
		}
		if (r < 0)
			return r;
	}
	cJSON_ArrayForEach(p, patch)
	{
		if (!has_prefix(p->string, DIR_ORDER))
			continue;
		const char *field = p->string + strlen(DIR_ORDER);
		r = smp_set_order(orig, field, p, smp_find(schema, field), e);
		if (r < 0)
			return r;
	}
	return 0;
}

int patch_strategic(cJSON *target, const cJSON *patch, const char *kind, struct err *e)
{
	_cleanup_json_ cJSON *doc = NULL;
	int r;

	if (!cJSON_IsObject(patch))
		return PATCH_BAD("strategic merge patch must be a JSON object");
	if (!cJSON_IsObject(target))
		return PATCH_BAD("patch target must be a JSON object");
	doc = cJSON_Duplicate(target, true);
	if (!doc)
		return -ENOMEM;
	r = smp_map(doc, patch, smp_schema_for(kind), 0, e);
	if (r == -ENOMEM)
		return err_set(e, ENOMEM, 500, "InternalError", "patch: out of memory");
	if (r < 0)
		return r;
	json_swap(target, doc);
	return 0;
}

int patch_list_type(const char *kind, const char *const *fields, size_t n, const char **key)
{
	const struct smp_field *schema = smp_schema_for(kind), *f = NULL;

	*key = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!(f = smp_find(schema, fields[i])))
			return PATCH_LIST_ATOMIC;
		schema = f->sub;
	}
	if (!f || f->kind == SMP_OBJ)
		return PATCH_LIST_ATOMIC;
	if (f->kind == SMP_SETLIST)
		return PATCH_LIST_SET;
	*key = f->key;
	return PATCH_LIST_MAP;
}

/* ---------------- RFC 6902 ---------------- */

/* Next reference token of a JSON pointer, unescaped into buf; NULL at the end. */
static const char *ptr_next(const char **p, char *buf, size_t len, int *r)
{
	const char *s = *p;
	size_t o = 0;

	*r = 0;
	if (!*s)
		return NULL;
	if (*s != '/') {
		*r = -EINVAL;
		return NULL;
	}
	for (s++; *s && *s != '/'; s++) {
		char c = *s;
		if (c == '~') {
			if (s[1] == '0')
				c = '~';
			else if (s[1] == '1')
				c = '/';
			else {
				*r = -EINVAL;
				return NULL;
			}
			s++;
		}
		if (o + 1 >= len) {
			*r = -E2BIG;
			return NULL;
		}
		buf[o++] = c;
	}
	buf[o] = 0;
	*p = s;
	return buf;
}

static int arr_index(const char *tok, int size, bool allow_end, int *ret)
{
	long v = 0;

	if (allow_end && streq(tok, "-")) {
		*ret = size;
		return 0;
	}
	if (!*tok || (tok[0] == '0' && tok[1]))
		return -EINVAL;
	for (const char *c = tok; *c; c++) {
		if (*c < '0' || *c > '9')
			return -EINVAL;
		v = v * 10 + (*c - '0');
		if (v > INT32_MAX)
			return -EINVAL;
	}
	if (v > size || (!allow_end && v == size))
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* Resolve all but the last token: *parent and the last token (in last). 1 = path is root. */
static int ptr_parent(cJSON *doc, const char *path, cJSON **parent, char *last, size_t len)
{
	char tok[1024], cur[1024];
	const char *p = path;
	cJSON *node = doc;
	bool have = false;
	int r;

	if (!*path)
		return 1;
	for (;;) {
		const char *t = ptr_next(&p, tok, sizeof(tok), &r);
		if (r < 0)
			return r;
		if (!t)
			break;
		if (have) {
			cJSON *next = NULL;
			int idx;
			if (cJSON_IsObject(node))
				next = cJSON_GetObjectItemCaseSensitive(node, cur);
			else if (cJSON_IsArray(node) &&
				 arr_index(cur, cJSON_GetArraySize(node), false, &idx) == 0)
				next = cJSON_GetArrayItem(node, idx);
			if (!next)
				return -ENOENT;
			node = next;
		}
		snprintf(cur, sizeof(cur), "%s", tok);
		have = true;
	}
	*parent = node;
	snprintf(last, len, "%s", cur);
	return 0;
}

static cJSON *ptr_get(cJSON *doc, const char *path, int *r)
{
	char last[1024];
	cJSON *parent;
	int idx;

	*r = ptr_parent(doc, path, &parent, last, sizeof(last));
	if (*r == 1) {
		*r = 0;
		return doc;
	}
	if (*r < 0)
		return NULL;
	if (cJSON_IsObject(parent)) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(parent, last);
		*r = v ? 0 : -ENOENT;
		return v;
	}
	if (cJSON_IsArray(parent) && arr_index(last, cJSON_GetArraySize(parent), false, &idx) == 0)
		return cJSON_GetArrayItem(parent, idx);
	*r = -ENOENT;
	return NULL;
}

/* cJSON_InsertItemInArray of Debian's cJSON 1.7.15 refuses inserts before a non-first item. */
static void arr_insert(cJSON *arr, int idx, cJSON *val)
{
	cJSON *after = cJSON_GetArrayItem(arr, idx);

	if (!after) {
		cJSON_AddItemToArray(arr, val);
		return;
	}
	val->next = after;
	val->prev = after->prev;
	if (after == arr->child)
		arr->child = val;
	else
		after->prev->next = val;
	after->prev = val;
}

/* Takes ownership of val. */
static int ptr_add(cJSON *doc, const char *path, cJSON *val, bool replace)
{
	char last[1024];
	cJSON *parent;
	int r, idx;

	r = ptr_parent(doc, path, &parent, last, sizeof(last));
	if (r == 1) {
		json_swap(doc, val);
		cJSON_Delete(val);
		return 0;
	}
	if (r < 0)
		goto fail;
	if (cJSON_IsObject(parent)) {
		if (replace && !cJSON_GetObjectItemCaseSensitive(parent, last)) {
			r = -ENOENT;
			goto fail;
		}
		if (!json_set(parent, last, val)) {
			r = -ENOMEM;
			goto fail;
		}
		return 0;
	}
	if (cJSON_IsArray(parent)) {
		int size = cJSON_GetArraySize(parent);
		if (arr_index(last, size, !replace, &idx) < 0) {
			r = -ENOENT;
			goto fail;
		}
		if (replace)
			cJSON_ReplaceItemInArray(parent, idx, val);
		else if (idx == size)
			cJSON_AddItemToArray(parent, val);
		else
			arr_insert(parent, idx, val);
		return 0;
	}
	r = -ENOENT;
fail:
	cJSON_Delete(val);
	return r;
}

static cJSON *ptr_detach(cJSON *doc, const char *path, int *r)
{
	char last[1024];
	cJSON *parent;
	int idx;

	*r = ptr_parent(doc, path, &parent, last, sizeof(last));
	if (*r == 1) {
		*r = -EINVAL; /* removing the whole document */
		return NULL;
	}
	if (*r < 0)
		return NULL;
	if (cJSON_IsObject(parent) && cJSON_GetObjectItemCaseSensitive(parent, last))
		return cJSON_DetachItemFromObjectCaseSensitive(parent, last);
	if (cJSON_IsArray(parent) && arr_index(last, cJSON_GetArraySize(parent), false, &idx) == 0)
		return cJSON_DetachItemFromArray(parent, idx);
	*r = -ENOENT;
	return NULL;
}

/* Node count of v, stopping early past limit. */
static long json_count(const cJSON *v, long limit)
{
	long n = 1;

	for (const cJSON *c = v ? v->child : NULL; c && n <= limit; c = c->next)
		n += json_count(c, limit - n);
	return n;
}

/* copy ops can double the document each time: cap what they may create in total */
#define JSON_PATCH_COPY_BUDGET (1000L * 1000)

static int jp_apply(cJSON *doc, const cJSON *op, int i, long *budget, struct err *e)
{
	const cJSON *jop = cJSON_GetObjectItemCaseSensitive(op, "op");
	const cJSON *jpath = cJSON_GetObjectItemCaseSensitive(op, "path");
	const cJSON *jfrom = cJSON_GetObjectItemCaseSensitive(op, "from");
	const cJSON *jval = cJSON_GetObjectItemCaseSensitive(op, "value");
	const char *o, *path;
	cJSON *v;
	int r;

	if (!cJSON_IsObject(op))
		return PATCH_BAD("json patch operation %d: must be an object", i);
	if (!cJSON_IsString(jop))
		return PATCH_BAD("json patch operation %d: missing \"op\"", i);
	if (!cJSON_IsString(jpath))
		return PATCH_BAD("json patch operation %d: missing \"path\"", i);
	o = jop->valuestring;
	path = jpath->valuestring;
	if ((streq(o, "add") || streq(o, "replace") || streq(o, "test")) && !jval)
		return PATCH_BAD("json patch operation %d (%s): missing \"value\"", i, o);
	if ((streq(o, "move") || streq(o, "copy")) && !cJSON_IsString(jfrom))
		return PATCH_BAD("json patch operation %d (%s): missing \"from\"", i, o);

	if (streq(o, "add") || streq(o, "replace")) {
		v = cJSON_Duplicate(jval, true);
		if (!v)
			return -ENOMEM;
		r = ptr_add(doc, path, v, streq(o, "replace"));
	} else if (streq(o, "remove")) {
		v = ptr_detach(doc, path, &r);
		cJSON_Delete(v);
	} else if (streq(o, "test")) {
		v = ptr_get(doc, path, &r);
		if (r == 0 && !cJSON_Compare(v, jval, true))
			return PATCH_INVALID("json patch operation %d: test failed: value at \"%s\" "
					     "differs", i, path);
	} else if (streq(o, "move")) {
		const char *from = jfrom->valuestring;
		size_t fl = strlen(from);

		if (streq(from, path)) {
			if (!ptr_get(doc, from, &r))
				return PATCH_INVALID("json patch operation %d: \"from\" %s does not "
						     "exist", i, from);
			return 0;
		}
		if (strncmp(path, from, fl) == 0 && path[fl] == '/')
			return PATCH_INVALID("json patch operation %d: cannot move \"%s\" into its "
					     "own child \"%s\"", i, from, path);
		v = ptr_detach(doc, from, &r);
		if (!v)
			return PATCH_INVALID("json patch operation %d: \"from\" %s does not exist",
					     i, from);
		r = ptr_add(doc, path, v, false);
	} else if (streq(o, "copy")) {
		v = ptr_get(doc, jfrom->valuestring, &r);
		if (!v)
			return PATCH_INVALID("json patch operation %d: \"from\" %s does not exist",
					     i, jfrom->valuestring);
		*budget -= json_count(v, *budget);
		if (*budget < 0)
			return PATCH_INVALID("json patch operation %d: result too large", i);
		v = cJSON_Duplicate(v, true);
		if (!v)
			return -ENOMEM;
		r = ptr_add(doc, path, v, false);
	} else {
		return PATCH_BAD("json patch operation %d: unknown op \"%s\"", i, o);
	}
	if (r == -ENOMEM)
		return err_set(e, ENOMEM, 500, "InternalError", "json patch: out of memory");
	if (r < 0)
		return PATCH_INVALID("json patch operation %d (%s): path \"%s\" %s", i, o, path,
				     r == -ENOENT ? "does not exist" : "is invalid");
	return 0;
}

int patch_json(cJSON *target, const cJSON *ops, struct err *e)
{
	_cleanup_json_ cJSON *doc = NULL;
	long budget = JSON_PATCH_COPY_BUDGET;
	const cJSON *op;
	int r, i = 0;

	if (!cJSON_IsArray(ops))
		return PATCH_BAD("json patch must be a list of operations");
	if (!cJSON_IsObject(target))
		return PATCH_BAD("patch target must be a JSON object");
	doc = cJSON_Duplicate(target, true);
	if (!doc)
		return -ENOMEM;
	cJSON_ArrayForEach(op, ops)
	{
		r = jp_apply(doc, op, i++, &budget, e);
		if (r < 0)
			return r;
	}
	if (!cJSON_IsObject(doc))
		return PATCH_INVALID("json patch result must be a JSON object");
	json_swap(target, doc);
	return 0;
}
