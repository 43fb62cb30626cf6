/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Label selectors (equality-based `a=b,c!=d` and set-based `e in (x,y)`, `f notin (z)`, `g`,
 * `!h`) from query strings or from LabelSelector objects (matchLabels/matchExpressions), and
 * field selectors (`metadata.name=x,status.phase!=Running`). Pure logic.
 */
#ifndef SHOAL_API_SELECTOR_H
#define SHOAL_API_SELECTOR_H

#include <stdbool.h>
#include <cJSON.h>
#include "lib/err.h"

struct label_selector;

/* "" or NULL parses to the empty selector (matches everything). 400 BadRequest on errors. */
int label_selector_parse(const char *s, struct label_selector **ret, struct err *e);
/* From a metav1.LabelSelector object; NULL selector -> matches everything. 422 on errors
 * (field path given for causes, e.g. "spec.selector"). */
int label_selector_from_json(const cJSON *sel, const char *field, struct label_selector **ret,
			     struct err *e);
/* labels: JSON object of strings, or NULL (no labels). */
bool label_selector_matches(const struct label_selector *sel, const cJSON *labels);
bool label_selector_is_empty(const struct label_selector *sel);
struct label_selector *label_selector_free(struct label_selector *sel);

/* Why `key` is not a valid qualified name (label/annotation key: optional DNS-subdomain prefix
 * + '/' + name of <= 63 alphanumerics, '-', '_', '.'), or NULL when it is valid. */
const char *selector_qualified_name_error(const char *key);
/* Why `value` is not a valid label value (<= 63, empty or name syntax), or NULL. */
const char *selector_label_value_error(const char *value);

struct field_selector;

/* supported: NULL-terminated list of field paths this resource accepts (others -> 400). */
int field_selector_parse(const char *s, const char *const *supported, struct field_selector **ret,
			 struct err *e);
/* get(field) returns the object's value for a supported field ("" when unset). */
typedef const char *(*field_get_fn)(const char *field, void *userdata);
bool field_selector_matches(const struct field_selector *sel, field_get_fn get, void *userdata);
struct field_selector *field_selector_free(struct field_selector *sel);

#endif
