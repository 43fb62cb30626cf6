// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl bpf services|conntrack [NODE]: the node's service datapath as the pinned maps hold it
 * (read on this machine, no API call): frontends with their backend slots, and the tc NodePort
 * conntrack table. NODE defaults to the only node pinned under /sys/fs/bpf/shoal.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "bpf/lb.h"
#include "bpf/nodeport.h"
#include "tools/shoalctl/shoalctl.h"

static int only_node(char *buf, size_t len, struct err *e)
{
	DIR *d = opendir(LB_PIN_ROOT_DEFAULT);
	struct dirent *de;
	int n = 0;

	if (!d)
		return err_set(e, errno, 404, "NotFound", "no datapath pinned under %s",
			       LB_PIN_ROOT_DEFAULT);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && de->d_type == DT_DIR) {
			snprintf(buf, len, "%s", de->d_name);
			n++;
		}
	closedir(d);
	if (n == 1)
		return 0;
	if (n)
		return err_set(e, EINVAL, 400, "BadRequest", "%d nodes pinned under %s: name one", n,
			       LB_PIN_ROOT_DEFAULT);
	return err_set(e, ENOENT, 404, "NotFound", "no node pinned under %s", LB_PIN_ROOT_DEFAULT);
}

static void print_services(const cJSON *arr)
{
	const cJSON *s, *b, *f;

	printf("%-24s %-18s %-7s %s\n", "FRONTEND", "FLAGS", "REVNAT", "BACKENDS");
	cJSON_ArrayForEach(s, arr)
	{
		char flags[64] = "", bes[4096] = "";
		size_t k = 0;

		cJSON_ArrayForEach(f, cJSON_GetObjectItem(s, "flags"))
			snprintf(flags + strlen(flags), sizeof(flags) - strlen(flags), "%s%s",
				 flags[0] ? "," : "", f->valuestring);
		cJSON_ArrayForEach(b, cJSON_GetObjectItem(s, "backends"))
		{
			const char *st = ctl_json_str(b, "state");

			k += (size_t)snprintf(bes + k, k < sizeof(bes) ? sizeof(bes) - k : 0,
					      "%s%s:%d%s%s", k ? " " : "", ctl_json_str(b, "ip"),
					      cJSON_GetObjectItem(b, "port")->valueint,
					      st && strcmp(st, "ready") ? "(terminating)" : "",
					      cJSON_IsTrue(cJSON_GetObjectItem(b, "local")) ? "(local)"
											   : "");
			if (k >= sizeof(bes))
				break;
		}
		printf("%-24s %-18s %-7d %s\n", ctl_json_str(s, "frontend"), flags[0] ? flags : "-",
		       cJSON_GetObjectItem(s, "rev_nat")->valueint, bes[0] ? bes : "<none: refused>");
	}
}

static void print_ct(const cJSON *arr)
{
	const cJSON *c;

	printf("%-7s %-5s %-21s %-21s %-7s %-11s %-21s %8s %8s\n", "DIR", "PROTO", "SRC", "DST",
	       "BACKEND", "STATE", "NAT", "PACKETS", "IDLE");
	cJSON_ArrayForEach(c, arr)
	{
		const char *nat = ctl_json_str(c, "snat_to") ?: ctl_json_str(c, "client");

		printf("%-7s %-5s %-21s %-21s %-7d %-11s %-21s %8.0f %7.1fs\n",
		       ctl_json_str(c, "dir"), ctl_json_str(c, "proto"), ctl_json_str(c, "src"),
		       ctl_json_str(c, "dst"), cJSON_GetObjectItem(c, "backend_id")->valueint,
		       ctl_json_str(c, "state"), nat ? nat : "-",
		       cJSON_GetObjectItem(c, "packets")->valuedouble,
		       cJSON_GetObjectItem(c, "idle_s")->valuedouble);
	}
}

int cmd_bpf(struct ctl *c, int argc, char **argv)
{
	_cleanup_json_ cJSON *out = NULL;
	struct err e = {};
	char node[256];
	int r;

	if (argc < 1 || argc > 2 || (strcmp(argv[0], "services") && strcmp(argv[0], "conntrack")))
		return ctl_fail(&(struct err){ .message = "usage: shoalctl bpf services|conntrack "
							  "[NODE]" },
				-EINVAL);
	if (argc == 2) {
		snprintf(node, sizeof(node), "%s", argv[1]);
	} else {
		r = only_node(node, sizeof(node), &e);
		if (r < 0)
			return ctl_fail(&e, r);
	}
	if (!strcmp(argv[0], "services")) {
		struct lb_opts lo = { .node = node, .maps_only = true };
		struct lb *lb = NULL;

		r = lb_open(&lo, &lb, &e);
		if (r < 0)
			return ctl_fail(&e, r);
		r = lb_dump(lb, &out);
		lb_close(lb, false);
	} else {
		r = np_ct_dump(NULL, node, &out);
		if (r == -ENOENT)
			err_set(&e, ENOENT, 404, "NotFound",
				"node %s has no NodePort datapath (no uplink configured)", node);
	}
	if (r < 0) {
		if (!e.message[0])
			err_set(&e, r, 500, "InternalError", "reading the maps: %s", strerror(-r));
		return ctl_fail(&e, r);
	}
	if (c->o.output == CTL_OUT_JSON)
		ctl_print_json(out, stdout);
	else if (c->o.output == CTL_OUT_YAML)
		ctl_print_yaml(out, stdout);
	else if (!strcmp(argv[0], "services"))
		print_services(out);
	else
		print_ct(out);
	return 0;
}
