// SPDX-License-Identifier: Apache-2.0
/* shoalctl api-resources: what discovery says the server serves. */
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

static char *join(const cJSON *arr)
{
	char *out = strdup("");
	const cJSON *s;

	cJSON_ArrayForEach(s, arr) {
		char *n;

		if (!cJSON_IsString(s) || !out)
			continue;
		if (asprintf(&n, "%s%s%s", out, *out ? "," : "", s->valuestring) < 0)
			n = NULL;
		free(out);
		out = n;
	}
	return out;
}

int cmd_api_resources(struct ctl *c, int argc, char **argv)
{
	_cleanup_(ctl_tab_done) struct ctl_tab tab = { .opts.wide = c->o.output == CTL_OUT_WIDE };
	_cleanup_json_ cJSON *table = NULL;
	struct err e = {};
	const cJSON *list;
	cJSON *rows;
	int r;

	if (argc > 0)
		return ctl_fail(&(struct err){ .message = "api-resources takes no arguments" },
				-EINVAL);
	r = ctl_discover_all(c, &e);
	if (r < 0)
		return ctl_fail(&e, r);

	table = cJSON_Parse("{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\","
			    "\"columnDefinitions\":[{\"name\":\"Name\"},{\"name\":\"ShortNames\"},"
			    "{\"name\":\"ApiVersion\"},{\"name\":\"Namespaced\"},{\"name\":\"Kind\"},"
			    "{\"name\":\"Verbs\",\"priority\":1}],\"rows\":[]}");
	rows = cJSON_GetObjectItemCaseSensitive(table, "rows");
	if (!rows)
		return 1;
	cJSON_ArrayForEach(list, c->lists) {
		const char *gv = ctl_json_str(list, "groupVersion");
		const cJSON *rs;

		cJSON_ArrayForEach(rs, cJSON_GetObjectItemCaseSensitive(list, "resources")) {
			const char *name = ctl_json_str(rs, "name");
			_cleanup_free_ char *sn = NULL, *verbs = NULL;
			cJSON *row, *cells;

			if (!name || strchr(name, '/'))
				continue;
			if (c->o.output == CTL_OUT_NAME) {
				const char *slash = gv ? strchr(gv, '/') : NULL;

				if (slash)
					printf("%s.%.*s\n", name, (int)(slash - gv), gv);
				else
					printf("%s\n", name);
				continue;
			}
			sn = join(cJSON_GetObjectItemCaseSensitive(rs, "shortNames"));
			verbs = join(cJSON_GetObjectItemCaseSensitive(rs, "verbs"));
			row = cJSON_CreateObject();
			if (!row || !cJSON_AddItemToArray(rows, row) || !sn || !verbs) {
				cJSON_Delete(row);
				return 1;
			}
			cells = cJSON_AddArrayToObject(row, "cells");
			cJSON_AddItemToArray(cells, cJSON_CreateString(name));
			cJSON_AddItemToArray(cells, cJSON_CreateString(sn));
			cJSON_AddItemToArray(cells, cJSON_CreateString(gv ? gv : ""));
			cJSON_AddItemToArray(cells, cJSON_CreateBool(cJSON_IsTrue(
				cJSON_GetObjectItemCaseSensitive(rs, "namespaced"))));
			cJSON_AddItemToArray(cells, cJSON_CreateString(ctl_json_str(rs, "kind") ?: ""));
			cJSON_AddItemToArray(cells, cJSON_CreateString(verbs));
		}
	}
	if (c->o.output == CTL_OUT_NAME)
		return 0;
	r = ctl_tab_add(&tab, table);
	if (r < 0)
		return ctl_fail(&e, r);
	ctl_tab_print(&tab, !c->o.no_headers, stdout);
	return 0;
}
