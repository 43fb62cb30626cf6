// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <string.h>

#include "lib/err.h"

int err_set(struct err *e, int errnum, int code, const char *reason, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return errnum > 0 ? -errnum : errnum;
	e->code = code;
	snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return errnum > 0 ? -errnum : errnum;
}

void err_cause(struct err *e, const char *type, const char *field, const char *fmt, ...)
{
	struct err_cause *c;
	va_list ap;

	if (!e || e->ncauses >= ERR_MAX_CAUSES)
		return;
	c = &e->causes[e->ncauses++];
	snprintf(c->type, sizeof(c->type), "%s", type);
	snprintf(c->field, sizeof(c->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
}
