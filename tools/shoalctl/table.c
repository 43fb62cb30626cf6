// SPDX-License-Identifier: Apache-2.0
/*
 * meta.k8s.io Table → aligned text columns, as kubectl prints them: upper-case headers,
 * three spaces between columns, priority > 0 columns only with -o wide, NAMESPACE first with
 * -A. Widths only grow, so rows printed later (watch) stay aligned with earlier ones.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "lib/util.h"
#include "tools/shoalctl/shoalctl.h"

#define COL_NAMESPACE (-1)
#define COL_LABELS (-2)
#define COL_PAD 3

void ctl_age(int64_t s, char *buf, size_t len)
{
	int64_t m = s / 60, h = s / 3600, d = h / 24;

	if (s < -1)
		snprintf(buf, len, "<invalid>");
	else if (s < 0)
		snprintf(buf, len, "0s");
	else if (s < 120)
		snprintf(buf, len, "%" PRId64 "s", s);
	else if (m < 10)
		s % 60 ? snprintf(buf, len, "%" PRId64 "m%" PRId64 "s", m, s % 60)
		       : snprintf(buf, len, "%" PRId64 "m", m);
	else if (m < 180)
		snprintf(buf, len, "%" PRId64 "m", m);
	else if (h < 8)
		m % 60 ? snprintf(buf, len, "%" PRId64 "h%" PRId64 "m", h, m % 60)
		       : snprintf(buf, len, "%" PRId64 "h", h);
	else if (h < 48)
		snprintf(buf, len, "%" PRId64 "h", h);
	else if (h < 24 * 8)
		h % 24 ? snprintf(buf, len, "%" PRId64 "d%" PRId64 "h", d, h % 24)
		       : snprintf(buf, len, "%" PRId64 "d", d);
	else if (h < 24 * 365 * 2)
		snprintf(buf, len, "%" PRId64 "d", d);
	else if (h < 24 * 365 * 8)
		d % 365 ? snprintf(buf, len, "%" PRId64 "y%" PRId64 "d", d / 365, d % 365)
			: snprintf(buf, len, "%" PRId64 "y", d / 365);
	else
		snprintf(buf, len, "%" PRId64 "y", d / 365);
}

char *ctl_cell_string(const cJSON *cell)
{
	char *s = NULL;

	if (!cell || cJSON_IsNull(cell))
		return strdup("<none>");
	if (cJSON_IsString(cell))
		return strdup(cell->valuestring);
	if (cJSON_IsBool(cell))
		return strdup(cJSON_IsTrue(cell) ? "true" : "false");
	if (cJSON_IsNumber(cell)) {
		double v = cell->valuedouble;

		if (v == floor(v) && fabs(v) < 9e15) {
			if (asprintf(&s, "%lld", (long long)v) < 0)
				return NULL;
		} else if (asprintf(&s, "%g", v) < 0) {
			return NULL;
		}
		return s;
	}
	return cJSON_PrintUnformatted(cell);
}

static char *labels_string(const cJSON *labels)
{
	char *out = strdup("");
	const cJSON *l;

	cJSON_ArrayForEach(l, labels) {
		char *n;

		if (!cJSON_IsString(l))
			continue;
		if (asprintf(&n, "%s%s%s=%s", out, *out ? "," : "", l->string, l->valuestring) < 0)
			n = NULL;
		free(out);
		out = n;
		if (!out)
			return NULL;
	}
	if (out && !*out) {
		free(out);
		out = strdup("<none>");
	}
	return out;
}

static int set_columns(struct ctl_tab *t, const cJSON *defs)
{
	const cJSON *d;
	size_t n = 0, i = 0;
	int idx = 0;

	cJSON_ArrayForEach(d, defs)
		n++;
	n += 2; /* namespace, labels */
	t->header = calloc(n, sizeof(char *));
	t->width = calloc(n, sizeof(size_t));
	t->src = calloc(n, sizeof(int));
	if (!t->header || !t->width || !t->src)
		return -ENOMEM;
	if (t->opts.show_namespace) {
		t->src[i] = COL_NAMESPACE;
		t->header[i++] = strdup("NAMESPACE");
	}
	cJSON_ArrayForEach(d, defs) {
		const cJSON *prio = cJSON_GetObjectItemCaseSensitive(d, "priority");
		const char *name = ctl_json_str(d, "name");

		if (!t->opts.wide && cJSON_IsNumber(prio) && prio->valueint > 0) {
			idx++;
			continue;
		}
		t->src[i] = idx++;
		t->header[i] = strdup(name ? name : "");
		if (!t->header[i])
			return -ENOMEM;
		for (char *p = t->header[i]; *p; p++)
			*p = toupper((unsigned char)*p);
		i++;
	}
	if (t->opts.show_labels) {
		t->src[i] = COL_LABELS;
		t->header[i++] = strdup("LABELS");
	}
	t->ncols = i;
	for (i = 0; i < t->ncols; i++)
		if (!t->header[i])
			return -ENOMEM;
	return 0;
}

static int add_row(struct ctl_tab *t, const cJSON *row)
{
	const cJSON *cells = cJSON_GetObjectItemCaseSensitive(row, "cells");
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(row, "object");
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	char **out, ***rows;

	rows = realloc(t->rows, (t->nrows + 1) * sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	t->rows = rows;
	out = calloc(t->ncols ? t->ncols : 1, sizeof(char *));
	if (!out)
		return -ENOMEM;
	t->rows[t->nrows++] = out;
	for (size_t i = 0; i < t->ncols; i++) {
		if (t->src[i] == COL_NAMESPACE) {
			const char *ns = ctl_json_str(meta, "namespace");

			out[i] = strdup(ns ? ns : "");
		} else if (t->src[i] == COL_LABELS) {
			out[i] = labels_string(cJSON_GetObjectItemCaseSensitive(meta, "labels"));
		} else {
			const cJSON *cell = cJSON_GetArrayItem(cells, t->src[i]);
			bool is_name = t->src[i] == 0;

			out[i] = ctl_cell_string(cell);
			if (out[i] && is_name && t->opts.show_kind && t->opts.kind_ref) {
				char *n;

				if (asprintf(&n, "%s/%s", t->opts.kind_ref, out[i]) < 0)
					n = NULL;
				free(out[i]);
				out[i] = n;
			}
		}
		if (!out[i])
			return -ENOMEM;
	}
	return 0;
}

int ctl_tab_add(struct ctl_tab *t, const cJSON *table)
{
	const cJSON *defs = cJSON_GetObjectItemCaseSensitive(table, "columnDefinitions");
	const cJSON *row;
	int r;

	if (!t->header) {
		if (cJSON_GetArraySize(defs) == 0)
			return -EINVAL; /* rows without columns: nothing to align them with */
		r = set_columns(t, defs);
		if (r < 0)
			return r;
	}
	cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(table, "rows")) {
		r = add_row(t, row);
		if (r < 0)
			return r;
	}
	return 0;
}

void ctl_tab_print(struct ctl_tab *t, bool header, FILE *out)
{
	if (header)
		for (size_t i = 0; i < t->ncols; i++)
			if (strlen(t->header[i]) > t->width[i])
				t->width[i] = strlen(t->header[i]);
	for (size_t r = t->printed; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++)
			if (strlen(t->rows[r][i]) > t->width[i])
				t->width[i] = strlen(t->rows[r][i]);
	for (size_t r = header ? 0 : 1; r < 1 + t->nrows - t->printed; r++) {
		char **cells = r == 0 ? t->header : t->rows[t->printed + r - 1];

		for (size_t i = 0; i < t->ncols; i++) {
			if (i + 1 == t->ncols)
				fprintf(out, "%s", cells[i]);
			else
				fprintf(out, "%-*s", (int)(t->width[i] + COL_PAD), cells[i]);
		}
		fputc('\n', out);
	}
	t->printed = t->nrows;
	fflush(out);
}

void ctl_tab_done(struct ctl_tab *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++)
			free(t->rows[r][i]);
		free(t->rows[r]);
	}
	for (size_t i = 0; t->header && i < t->ncols; i++)
		free(t->header[i]);
	free(t->rows);
	free(t->header);
	free(t->width);
	free(t->src);
	*t = (struct ctl_tab){};
}

static int fallback_row(cJSON *rows, const cJSON *obj, int64_t now)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *name = ctl_json_str(meta, "name");
	const char *created = ctl_json_str(meta, "creationTimestamp");
	char age[32] = "<unknown>";
	cJSON *row, *cells, *o, *m;

	int64_t t;

	if (created && util_rfc3339_parse(created, &t) >= 0)
		ctl_age(now - t, age, sizeof(age));
	row = cJSON_CreateObject();
	if (!row || !cJSON_AddItemToArray(rows, row)) {
		cJSON_Delete(row);
		return -ENOMEM;
	}
	cells = cJSON_AddArrayToObject(row, "cells");
	o = cJSON_AddObjectToObject(row, "object");
	if (!cells || !o)
		return -ENOMEM;
	cJSON_AddItemToArray(cells, cJSON_CreateString(name ? name : ""));
	cJSON_AddItemToArray(cells, cJSON_CreateString(age));
	m = cJSON_Duplicate(meta, true);
	if (m)
		cJSON_AddItemToObject(o, "metadata", m);
	return 0;
}

cJSON *ctl_table_fallback(const cJSON *obj, int64_t now)
{
	_cleanup_json_ cJSON *t = cJSON_CreateObject();
	cJSON *defs, *rows, *d;
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(obj, "items");
	static const char *const cols[] = { "Name", "Age" };

	if (!t)
		return NULL;
	cJSON_AddStringToObject(t, "kind", "Table");
	cJSON_AddStringToObject(t, "apiVersion", "meta.k8s.io/v1");
	defs = cJSON_AddArrayToObject(t, "columnDefinitions");
	rows = cJSON_AddArrayToObject(t, "rows");
	if (!defs || !rows)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(cols); i++) {
		d = cJSON_CreateObject();
		if (!d || !cJSON_AddItemToArray(defs, d)) {
			cJSON_Delete(d);
			return NULL;
		}
		cJSON_AddStringToObject(d, "name", cols[i]);
		cJSON_AddStringToObject(d, "type", "string");
		cJSON_AddNumberToObject(d, "priority", 0);
	}
	if (cJSON_IsArray(items)) {
		const cJSON *it;

		cJSON_ArrayForEach(it, items)
			if (fallback_row(rows, it, now) < 0)
				return NULL;
	} else if (fallback_row(rows, obj, now) < 0) {
		return NULL;
	}
	return TAKE_PTR(t);
}
