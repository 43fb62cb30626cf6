/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An error object that carries a user-facing message (and field causes, for validation)
 * from library code up to the boundary. api/ turns it into a Kubernetes Status.
 * Library functions still return -errno; the err is optional (may be NULL).
 */
#ifndef SHOAL_LIB_ERR_H
#define SHOAL_LIB_ERR_H

#include "lib/macro.h"

#define ERR_MAX_CAUSES 16

struct err_cause {
	char type[32];   /* FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ... */
	char field[128]; /* metadata.name, spec.containers[0].image */
	char message[256];
};

struct err {
	int code;        /* HTTP status: 400, 404, 409, 410, 413, 422, 500 ... (0: unset) */
	char reason[32]; /* Kubernetes StatusReason: NotFound, AlreadyExists, Conflict, Invalid, ... */
	char message[512];
	int ncauses;
	struct err_cause causes[ERR_MAX_CAUSES];
};

/* Set code/reason/message; returns -errnum so callers can `return err_set(...)`. */
int err_set(struct err *e, int errnum, int code, const char *reason, const char *fmt, ...)
	_printf_(5, 6);
/* Append a field cause (validation). Silently drops causes past ERR_MAX_CAUSES. */
void err_cause(struct err *e, const char *type, const char *field, const char *fmt, ...)
	_printf_(4, 5);

#endif
