/* SPDX-License-Identifier: Apache-2.0 */
/* YAML (or JSON) manifests to cJSON trees, through libfyaml. */
#ifndef SHOAL_LIB_YAML_H
#define SHOAL_LIB_YAML_H

#include <stddef.h>
#include <cJSON.h>
#include "lib/err.h"

/*
 * Parse a YAML stream of one or more documents (JSON is YAML) into a cJSON array with one
 * element per non-empty document. -EINVAL with a message (line/column) on malformed input.
 */
int yaml_parse_docs(const char *buf, size_t len, cJSON **ret, struct err *e);
/* Exactly one document; -EINVAL if there are zero or several. */
int yaml_parse_one(const char *buf, size_t len, cJSON **ret, struct err *e);
/* Render a cJSON tree as block YAML (caller frees). NULL on error. */
char *yaml_emit(const cJSON *json);

#endif
