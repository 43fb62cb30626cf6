/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Patches, as Kubernetes applies them: JSON merge patch (RFC 7386,
 * application/merge-patch+json), strategic merge patch (application/strategic-merge-patch+json,
 * what `kubectl apply` sends: lists merged by patchMergeKey for the core kinds, `$patch:
 * delete|replace`, `$retainKeys`, `$deleteFromPrimitiveList/…`, `$setElementOrder/…`), and
 * JSON patch (RFC 6902, application/json-patch+json). Pure logic: target is modified in place.
 */
#ifndef SHOAL_API_PATCH_H
#define SHOAL_API_PATCH_H

#include <cJSON.h>
#include "lib/err.h"

int patch_merge(cJSON *target, const cJSON *patch, struct err *e);
/* kind: "Pod", "Deployment", … selects the merge keys of its schema (unknown: merge patch). */
int patch_strategic(cJSON *target, const cJSON *patch, const char *kind, struct err *e);
int patch_json(cJSON *target, const cJSON *ops, struct err *e);

/* How strategic merge treats the list at an object path of kind (the field names from the
 * root, list levels left out: {"spec", "containers"}): merged by *key, a set, or atomic. */
enum { PATCH_LIST_ATOMIC, PATCH_LIST_MAP, PATCH_LIST_SET };
int patch_list_type(const char *kind, const char *const *fields, size_t n, const char **key);

#endif
