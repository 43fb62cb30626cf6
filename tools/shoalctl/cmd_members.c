// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl members [-o json|yaml] | members leave: the gossip view of the node shoalctl talks
 * to (/apis/shoal.io/v1/members). -o json prints a list of objects with name, address, state,
 * incarnation, rtt (milliseconds), rttMicros, instance and meta, for scripts.
 */
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

#define MEMBERS_PATH "/apis/shoal.io/v1/members"

static cJSON *member_row(const cJSON *it)
{
	cJSON *o = cJSON_CreateObject();
	double us = cJSON_GetNumberValue(cJSON_GetObjectItem(it, "rttMicros"));
	const cJSON *meta = cJSON_GetObjectItem(it, "meta");

	cJSON_AddStringToObject(o, "name", ctl_json_str(it, "name") ?: "");
	cJSON_AddStringToObject(o, "address", ctl_json_str(it, "address") ?: "");
	cJSON_AddStringToObject(o, "state", ctl_json_str(it, "state") ?: "");
	cJSON_AddNumberToObject(o, "incarnation",
				cJSON_GetNumberValue(cJSON_GetObjectItem(it, "incarnation")));
	cJSON_AddNumberToObject(o, "rtt", us != us ? 0 : us / 1000.0);
	cJSON_AddNumberToObject(o, "rttMicros", us != us ? 0 : us);
	cJSON_AddStringToObject(o, "instance", ctl_json_str(it, "instance") ?: "");
	if (cJSON_IsTrue(cJSON_GetObjectItem(it, "self")))
		cJSON_AddTrueToObject(o, "self");
	cJSON_AddItemToObject(o, "meta", meta ? cJSON_Duplicate(meta, true) : cJSON_CreateObject());
	return o;
}

static int members_list(struct ctl *c)
{
	_cleanup_json_ cJSON *l = NULL, *rows = cJSON_CreateArray();
	struct err e = {};
	const cJSON *it;
	int r;

	r = ctl_request(c, "GET", MEMBERS_PATH, NULL, NULL, NULL, &l, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(l, "items"))
	    cJSON_AddItemToArray(rows, member_row(it));
	if (c->o.output == CTL_OUT_JSON) {
		ctl_print_json(rows, stdout);
		return 0;
	}
	if (c->o.output == CTL_OUT_YAML)
		return ctl_print_yaml(rows, stdout) < 0;
	if (!c->o.no_headers)
		printf("%-24s %-22s %-8s %-12s %s\n", "NAME", "ADDRESS", "STATE", "INCARNATION",
		       "RTT");
	cJSON_ArrayForEach(it, rows)
	{
		double us = cJSON_GetNumberValue(cJSON_GetObjectItem(it, "rttMicros"));
		char rtt[32];

		if (cJSON_IsTrue(cJSON_GetObjectItem(it, "self")))
			snprintf(rtt, sizeof(rtt), "(self)");
		else if (us <= 0)
			snprintf(rtt, sizeof(rtt), "-");
		else if (us < 1000)
			snprintf(rtt, sizeof(rtt), "%.0fus", us);
		else
			snprintf(rtt, sizeof(rtt), "%.1fms", us / 1000);
		printf("%-24s %-22s %-8s %-12.0f %s\n", ctl_json_str(it, "name"),
		       ctl_json_str(it, "address"), ctl_json_str(it, "state"),
		       cJSON_GetNumberValue(cJSON_GetObjectItem(it, "incarnation")), rtt);
	}
	return 0;
}

static int members_leave(struct ctl *c)
{
	_cleanup_json_ cJSON *res = NULL, *body = cJSON_CreateObject();
	struct err e = {};
	int r;

	r = ctl_request(c, "POST", MEMBERS_PATH "/leave", NULL, "application/json", body, &res, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	printf("%s\n", ctl_json_str(res, "message") ?: "left the cluster");
	return 0;
}

int cmd_members(struct ctl *c, int argc, char **argv)
{
	if (argc == 0)
		return members_list(c);
	if (argc == 1 && streq(argv[0], "leave"))
		return members_leave(c);
	return ctl_fail(&(struct err){.message = "usage: shoalctl members [-o json] | members "
						 "leave"},
			-EINVAL);
}
