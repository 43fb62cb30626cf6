/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the API server does around every write (internal to api/): the dryRun, fieldManager
 * and fieldValidation query parameters, managed fields, and server-side apply.
 */
#ifndef SHOAL_API_WRITE_H
#define SHOAL_API_WRITE_H

#include "api/schema.h"
#include "api/server-internal.h"

struct api_write {
	struct api_write_opts wo;   /* hand to api_obj_*_opts */
	const char *manager;        /* fieldManager, or derived from the User-Agent */
	char manager_buf[160];
	enum schema_check_mode validation;
	char now[40];
	cJSON *applied_fields;      /* server-side apply: managedFields to store */
};

/* Parse the query; replies (400) and returns <0 on bad values. apply: fieldManager needed. */
int api_write_begin(struct api_req *r, struct api_write *w, bool apply);
void api_write_done(struct api_write *w);
/* Unknown/duplicate fields of a body (status left out) per fieldValidation: Strict replies
 * 400 and returns <0; Warn adds Warning headers; unknown fields are dropped in every mode.
 * old: for patches, the object before (its own unknown fields are not the client's). */
int api_write_check_fields(struct api_req *r, struct api_write *w, cJSON *obj, const cJSON *old);
/* Server-side apply of config onto the stored object (created if missing). Replies on error;
 * on success *ret (NULL on dry run: w->wo.dry_result) and *code (200/201). */
int api_write_apply(struct api_req *r, struct api_write *w, cJSON *config,
		    struct store_obj **ret, int *code);

#endif
