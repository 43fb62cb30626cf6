// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "lib/json.h"
#include "lib/macro.h"

cJSON *json_path(const cJSON *o, const char *path)
{
	const char *p = path;
	char seg[128];

	while (o && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!cJSON_IsObject(o) || n >= sizeof(seg))
			return NULL;
		memcpy(seg, p, n);
		seg[n] = 0;
		o = cJSON_GetObjectItemCaseSensitive(o, seg);
		p += n + (dot ? 1 : 0);
	}
	return (cJSON *)o;
}

const char *json_str(const cJSON *o, const char *path, const char *def)
{
	cJSON *j = json_path(o, path);
	return cJSON_IsString(j) ? j->valuestring : def;
}

const char *json_key_str(const cJSON *o, const char *path, const char *key, const char *def)
{
	cJSON *m = json_path(o, path), *j;

	if (!cJSON_IsObject(m))
		return def;
	j = cJSON_GetObjectItemCaseSensitive(m, key);
	return cJSON_IsString(j) ? j->valuestring : def;
}

int64_t json_int(const cJSON *o, const char *path, int64_t def)
{
	cJSON *j = json_path(o, path);
	return cJSON_IsNumber(j) ? (int64_t)j->valuedouble : def;
}

bool json_bool(const cJSON *o, const char *path, bool def)
{
	cJSON *j = json_path(o, path);
	return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

cJSON *json_path_obj(cJSON *o, const char *path)
{
	const char *p = path;
	char seg[128];

	while (o && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		cJSON *next;
		if (!cJSON_IsObject(o) || n >= sizeof(seg))
			return NULL;
		memcpy(seg, p, n);
		seg[n] = 0;
		next = cJSON_GetObjectItemCaseSensitive(o, seg);
		if (!next)
			next = cJSON_AddObjectToObject(o, seg);
		o = next;
		p += n + (dot ? 1 : 0);
	}
	return cJSON_IsObject(o) ? o : NULL;
}

void json_set(cJSON *o, const char *key, cJSON *item)
{
	if (!item)
		return;
	if (cJSON_GetObjectItemCaseSensitive(o, key))
		cJSON_ReplaceItemInObjectCaseSensitive(o, key, item);
	else
		cJSON_AddItemToObject(o, key, item);
}

void json_set_str(cJSON *o, const char *key, const char *val)
{
	json_set(o, key, cJSON_CreateString(val));
}

void json_set_int(cJSON *o, const char *key, int64_t val)
{
	json_set(o, key, cJSON_CreateNumber((double)val));
}

static int key_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(x->string, y->string);
}

static cJSON *json_sorted_copy(const cJSON *o)
{
	cJSON *out, *it;

	if (cJSON_IsArray(o)) {
		out = cJSON_CreateArray();
		cJSON_ArrayForEach(it, o) cJSON_AddItemToArray(out, json_sorted_copy(it));
		return out;
	}
	if (!cJSON_IsObject(o))
		return cJSON_Duplicate(o, 1);
	int n = cJSON_GetArraySize(o), i = 0;
	const cJSON **items = calloc(n ? n : 1, sizeof(*items));
	if (!items)
		return NULL;
	cJSON_ArrayForEach(it, o) items[i++] = it;
	qsort(items, n, sizeof(*items), key_cmp);
	out = cJSON_CreateObject();
	for (i = 0; i < n; i++)
		cJSON_AddItemToObject(out, items[i]->string, json_sorted_copy(items[i]));
	free(items);
	return out;
}

char *json_canonical(const cJSON *o)
{
	_cleanup_json_ cJSON *c = json_sorted_copy(o);
	return c ? cJSON_PrintUnformatted(c) : NULL;
}
