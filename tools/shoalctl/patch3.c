// SPDX-License-Identifier: Apache-2.0
/*
 * Client-side apply as kubectl does it for JSON merge patches
 * (CreateThreeWayJSONMergePatch): what changed from live to the new manifest, plus nulls for
 * what the previous manifest (the last-applied annotation) had and the new one dropped.
 * Fields other writers set (defaults, status, labels added by hand) are left alone.
 */
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

static bool both_objects(const cJSON *a, const cJSON *b)
{
	return cJSON_IsObject(a) && cJSON_IsObject(b);
}

/* Every field of m is in c with the same value (c may have more: server defaults). */
static bool subset(const cJSON *m, const cJSON *c)
{
	const cJSON *x, *y;

	if (both_objects(m, c)) {
		cJSON_ArrayForEach(x, m) {
			y = cJSON_GetObjectItemCaseSensitive(c, x->string);
			if (!y || !subset(x, y))
				return false;
		}
		return true;
	}
	if (cJSON_IsArray(m) && cJSON_IsArray(c)) {
		if (cJSON_GetArraySize(m) != cJSON_GetArraySize(c))
			return false;
		for (x = m->child, y = c->child; x && y; x = x->next, y = y->next)
			if (!subset(x, y))
				return false;
		return true;
	}
	return cJSON_Compare(m, c, true);
}

/*
 * A list the manifest did not change since the last apply, and that live still holds with
 * only defaults added to its elements (containers gain imagePullPolicy, ports a protocol), is
 * left alone: merge patch would otherwise resend it on every apply and report "configured".
 */
static bool list_unchanged(const cJSON *o, const cJSON *m, const cJSON *c)
{
	if (!cJSON_IsArray(m) || !cJSON_IsArray(c) || !subset(m, c))
		return false;
	return !o || cJSON_Compare(o, m, true);
}

/* Additions and changes that take current to modified; deletions are not looked at. */
static int diff_changes(const cJSON *original, const cJSON *current, const cJSON *modified,
			cJSON *out)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, modified) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(current, m->string);
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(original, m->string);
		cJSON *v;

		if (!c) {
			if (cJSON_IsNull(m))
				continue; /* asks to delete what is not there */
			v = cJSON_Duplicate(m, true);
		} else if (both_objects(c, m)) {
			int r;

			v = cJSON_CreateObject();
			if (!v)
				return -ENOMEM;
			r = diff_changes(cJSON_IsObject(o) ? o : NULL, c, m, v);
			if (r < 0 || !v->child) {
				cJSON_Delete(v);
				if (r < 0)
					return r;
				continue;
			}
		} else if (cJSON_Compare(c, m, true) || list_unchanged(o, m, c)) {
			continue;
		} else {
			v = cJSON_Duplicate(m, true);
		}
		if (!v || !cJSON_AddItemToObject(out, m->string, v)) {
			cJSON_Delete(v);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Nulls for keys of original that modified dropped, where current still has them. */
static int diff_deletions(const cJSON *original, const cJSON *modified, const cJSON *current,
			  cJSON *out)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, original) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(modified, o->string);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(current, o->string);
		cJSON *existing = cJSON_GetObjectItemCaseSensitive(out, o->string);

		if (!c)
			continue; /* already gone */
		if (!m) {
			if (existing)
				continue;
			if (!cJSON_AddNullToObject(out, o->string))
				return -ENOMEM;
		} else if (both_objects(o, m) && cJSON_IsObject(c)) {
			bool created = false;
			int r;

			if (existing && !cJSON_IsObject(existing))
				continue; /* replaced whole already */
			if (!existing) {
				existing = cJSON_CreateObject();
				if (!existing || !cJSON_AddItemToObject(out, o->string, existing)) {
					cJSON_Delete(existing);
					return -ENOMEM;
				}
				created = true;
			}
			r = diff_deletions(o, m, c, existing);
			if (r < 0)
				return r;
			if (created && !existing->child)
				cJSON_DeleteItemFromObjectCaseSensitive(out, o->string);
		}
	}
	return 0;
}

int ctl_patch_3way(const cJSON *original, const cJSON *modified, const cJSON *current,
		   cJSON **ret)
{
	_cleanup_json_ cJSON *patch = cJSON_CreateObject();
	int r;

	if (!patch)
		return -ENOMEM;
	if (!cJSON_IsObject(modified))
		return -EINVAL;
	r = diff_changes(cJSON_IsObject(original) ? original : NULL, current, modified, patch);
	if (r >= 0 && cJSON_IsObject(original))
		r = diff_deletions(original, modified, current, patch);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(patch);
	return 0;
}

/* Keys sorted at every level, as Go's encoding/json writes maps: kubectl and we then store
 * the same annotation text for the same manifest, whatever order its YAML keys came in. */
static void sort_keys(cJSON *j)
{
	cJSON *c;

	if (cJSON_IsObject(j)) {
		/* insertion sort on the child list: manifests are small */
		cJSON *sorted = NULL, *next;

		for (c = j->child; c; c = next) {
			cJSON **pp = &sorted;

			next = c->next;
			while (*pp && strcmp((*pp)->string, c->string) <= 0)
				pp = &(*pp)->next;
			c->next = *pp;
			*pp = c;
		}
		/* fix the prev links (cJSON keeps child->prev pointing at the last item) */
		cJSON *prev = NULL;
		for (c = sorted; c; c = c->next) {
			c->prev = prev;
			prev = c;
		}
		if (sorted)
			sorted->prev = prev;
		j->child = sorted;
	}
	for (c = j->child; c; c = c->next)
		sort_keys(c);
}

int ctl_apply_modified(const cJSON *manifest, cJSON **ret)
{
	_cleanup_json_ cJSON *plain = cJSON_Duplicate(manifest, true);
	_cleanup_json_ cJSON *mod = cJSON_Duplicate(manifest, true);
	_cleanup_free_ char *text = NULL, *value = NULL;
	cJSON *meta, *ann;

	if (!plain || !mod)
		return -ENOMEM;
	if (!cJSON_IsObject(manifest))
		return -EINVAL;
	/* kubectl serialises the manifest with its annotations map present (emptied of the
	 * last-applied key, `"annotations":{}` if that was all); the same bytes make an apply
	 * by either tool "unchanged" after the other */
	meta = cJSON_GetObjectItemCaseSensitive(plain, "metadata");
	if (!cJSON_IsObject(meta))
		return -EINVAL;
	ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	if (!cJSON_IsObject(ann)) {
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "annotations");
		if (!cJSON_AddObjectToObject(meta, "annotations"))
			return -ENOMEM;
	} else {
		cJSON_DeleteItemFromObjectCaseSensitive(ann, CTL_LAST_APPLIED);
	}
	sort_keys(plain);
	text = cJSON_PrintUnformatted(plain);
	if (!text || asprintf(&value, "%s\n", text) < 0)
		return -ENOMEM;

	meta = cJSON_GetObjectItemCaseSensitive(mod, "metadata");
	if (!meta) {
		meta = cJSON_AddObjectToObject(mod, "metadata");
		if (!meta)
			return -ENOMEM;
	} else if (!cJSON_IsObject(meta)) {
		return -EINVAL;
	}
	ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	if (!cJSON_IsObject(ann)) {
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "annotations");
		ann = cJSON_AddObjectToObject(meta, "annotations");
		if (!ann)
			return -ENOMEM;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(ann, CTL_LAST_APPLIED);
	if (!cJSON_AddStringToObject(ann, CTL_LAST_APPLIED, value))
		return -ENOMEM;
	*ret = TAKE_PTR(mod);
	return 0;
}

cJSON *ctl_apply_original(const cJSON *live)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(live, "metadata");
	const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ann, CTL_LAST_APPLIED);
	cJSON *j;

	if (!cJSON_IsString(v))
		return NULL;
	j = cJSON_Parse(v->valuestring);
	if (j && !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}
