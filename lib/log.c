// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"

static char log_node[256];
static enum log_level log_min = LOG_LVL_INFO;

void log_setup(const char *node, enum log_level min)
{
	/* a copy: the daemon logs its last line after freeing its configuration */
	snprintf(log_node, sizeof(log_node), "%s", node ? node : "");
	log_min = min;
}

int log_level_parse(const char *s, enum log_level *ret)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };

	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (streq(s, names[i])) {
			*ret = (enum log_level)i;
			return 0;
		}
	return -EINVAL;
}

void log_emit(enum log_level lvl, int errnum, const char *fmt, ...)
{
	static const char *const lvls[] = { "debug", "info", "warn", "error" };
	char msg[2048], ts[40];
	struct timespec now;
	struct tm tm;
	va_list ap;
	size_t n, o = 0;

	if (lvl < log_min)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one line: escape quotes and newlines in the message */
	char esc[4200];
	for (const char *p = msg; *p && o < sizeof(esc) - 3; p++) {
		if (*p == '"' || *p == '\\') {
			esc[o++] = '\\';
			esc[o++] = *p;
		} else if (*p == '\n') {
			esc[o++] = '\\';
			esc[o++] = 'n';
		} else
			esc[o++] = *p;
	}
	esc[o] = 0;
	if (errnum)
		fprintf(stderr, "ts=%s level=%s node=%s msg=\"%s\" err=\"%s\"\n", ts, lvls[lvl],
			log_node, esc, strerror(errnum < 0 ? -errnum : errnum));
	else
		fprintf(stderr, "ts=%s level=%s node=%s msg=\"%s\"\n", ts, lvls[lvl], log_node, esc);
}
