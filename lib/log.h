/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structured one-line logs: `ts=... level=info node=n1 msg="..." k=v`. Only boundaries
 * (daemon/, api/ handlers, tools/) log above debug; library code returns errors instead.
 */
#ifndef SHOAL_LIB_LOG_H
#define SHOAL_LIB_LOG_H

#include <string.h>
#include "lib/macro.h"

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_setup(const char *node, enum log_level min);
int log_level_parse(const char *s, enum log_level *ret);
void log_emit(enum log_level lvl, int errnum, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_emit(LOG_LVL_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_emit(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_warn(...) log_emit(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_error(...) log_emit(LOG_LVL_ERROR, 0, __VA_ARGS__)
/* Appends `err="strerror(-r)"`; returns r so `return log_error_errno(r, ...)` works. */
#define log_error_errno(r, ...) ({ int _r = (r); log_emit(LOG_LVL_ERROR, _r, __VA_ARGS__); _r; })
#define log_warn_errno(r, ...) ({ int _r = (r); log_emit(LOG_LVL_WARN, _r, __VA_ARGS__); _r; })

#endif
