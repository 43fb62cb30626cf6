/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Field management: metadata.managedFields (fieldsV1, one entry per manager and operation) and
 * server-side apply (application/apply-patch+yaml). Field paths follow Kubernetes: "f:<name>"
 * for fields, "k:{\"name\":\"main\"}" for items of lists merged by key (the strategic merge
 * keys of api/patch.h), "v:<json>" for items of sets, "." for a node owned itself.
 * Pure logic: the time is a parameter.
 */
#ifndef SHOAL_API_FIELDMGR_H
#define SHOAL_API_FIELDMGR_H

#include <stdbool.h>
#include <cJSON.h>

#include "lib/err.h"

/*
 * A write that is not an apply (create, update, patch) by `manager`: the fields it set or
 * changed become its own (operation Update), other managers lose them, removed fields leave
 * every manager. old is NULL on create. Rewrites obj's metadata.managedFields.
 */
int fieldmgr_update(const char *kind, const char *api_version, const cJSON *old, cJSON *obj,
		    const char *manager, const char *now, struct err *e);

/*
 * Server-side apply of `config` by `manager` onto `live` (NULL: the object does not exist).
 * Fields owned by another manager with a different value are conflicts (409, Kubernetes'
 * message), unless force takes them over. Fields this manager applied before and omits now
 * are removed unless another manager owns them. The rest is merged with strategic merge
 * semantics. *ret: the new object with its managedFields (not yet defaulted or validated).
 */
int fieldmgr_apply(const char *kind, const char *api_version, const cJSON *live,
		   const cJSON *config, const char *manager, bool force, const char *now,
		   cJSON **ret, struct err *e);

#endif
