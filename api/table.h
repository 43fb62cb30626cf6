/* SPDX-License-Identifier: Apache-2.0 */
/*
 * meta.k8s.io/v1 Table conversion with the columns kubectl prints (pods: NAME READY STATUS
 * RESTARTS AGE, wide adds IP NODE ...). Pure logic: `now` is the wall clock in seconds.
 */
#ifndef SHOAL_API_TABLE_H
#define SHOAL_API_TABLE_H

#include <stdint.h>
#include <cJSON.h>

/* A Table with columnDefinitions for `kind` (and no rows). */
cJSON *table_new(const char *kind);
/* Append one row for obj (object = PartialObjectMetadata or full object per includeObject). */
void table_add_row(cJSON *table, const char *kind, const cJSON *obj, int64_t now,
		   const char *include_object /* "None" | "Metadata" | "Object" (default Metadata) */);
/* Human "AGE" as kubectl prints it (5s, 3m20s, 2d3h, ...), into buf. */
void table_age(int64_t seconds, char *buf, size_t len);

#endif
