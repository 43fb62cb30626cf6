/* SPDX-License-Identifier: Apache-2.0 */
/* cJSON glue: dotted-path getters that never crash on wrong types, canonical serialization. */
#ifndef SHOAL_LIB_JSON_H
#define SHOAL_LIB_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <cJSON.h>

/* "spec.template.metadata.labels" -> item, or NULL if any step is missing / not an object. */
cJSON *json_path(const cJSON *o, const char *path);
/* String at path or def when missing or not a string. */
const char *json_str(const cJSON *o, const char *path, const char *def);
/* String value of `key` in the object at `path` — for map keys that contain dots, like
 * annotations and labels ("deployment.kubernetes.io/revision"). def when missing. */
const char *json_key_str(const cJSON *o, const char *path, const char *key, const char *def);
/* Integer at path (JSON number) or def. */
int64_t json_int(const cJSON *o, const char *path, int64_t def);
bool json_bool(const cJSON *o, const char *path, bool def);
/* Object at path, created (with intermediate objects) if missing; NULL on OOM or if a step
 * exists but is not an object. */
cJSON *json_path_obj(cJSON *o, const char *path);
/* Set o[key] = item (replacing any existing item); takes ownership of item. */
void json_set(cJSON *o, const char *key, cJSON *item);
void json_set_str(cJSON *o, const char *key, const char *val);
void json_set_int(cJSON *o, const char *key, int64_t val);
/* Serialize with object keys sorted recursively (stable hashing/comparison); caller frees. */
char *json_canonical(const cJSON *o);

#endif
