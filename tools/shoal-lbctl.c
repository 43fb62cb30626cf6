// SPDX-License-Identifier: Apache-2.0
/*
 * shoal-lbctl: drive the service datapath by hand (tests, debugging) until shoald programs it
 * from the store. Every invocation is a short-lived "daemon": it adopts the pinned state, makes
 * one change and exits without unpinning, which is exactly the restart path.
 */
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/lb.h"
#include "lib/macro.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shoal-lbctl --node NAME [--pin-root DIR] [--cgroup DIR] [--host-wide]\n"
		"                   [--svc-max N] [--backend-max N] [--tbl-max N] CMD\n"
		"  attach                          load programs, attach to --cgroup (or adopt pins)\n"
		"  svc-set VIP:PORT[/tcp|/udp] [--affinity[=SECS]] [--local] [IP:PORT[,terminating]...]\n"
		"  svc-del VIP:PORT[/tcp|/udp]\n"
		"  be-flags IP:PORT[/tcp|/udp] ready|terminating\n"
		"  dump | stats | teardown | cgroup2-root\n"
		"  repl                            the commands above from stdin, one process\n");
}

static bool repl_mode; /* one JSON line per command, flushed */

static void print_json(cJSON *j)
{
	_cleanup_free_ char *s = repl_mode ? cJSON_PrintUnformatted(j) : cJSON_Print(j);

	printf("%s\n", s ? s : "null");
	fflush(stdout);
}

static int print_change(struct lb *lb)
{
	struct lb_stats st;
	_cleanup_json_ cJSON *o = cJSON_CreateObject();

	lb_stats_get(lb, &st);
	cJSON_AddNumberToObject(o, "writes", st.last_writes);
	cJSON_AddNumberToObject(o, "udp_destroyed", st.last_udp_destroyed);
	print_json(o);
	return 0;
}

static int cmd_svc_set(struct lb *lb, int argc, char **argv, struct err *e)
{
	struct lb_frontend fe;
	_cleanup_free_ struct lb_backend_addr *bes = calloc((size_t)argc + 1, sizeof(*bes));
	size_t n = 0;
	uint8_t flags = 0;
	uint32_t timeout = 0;
	int r;

	if (argc < 1 || lb_frontend_parse(argv[0], &fe) < 0) {
		fprintf(stderr, "svc-set: bad frontend\n");
		return -EINVAL;
	}
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--affinity", 10)) {
			flags |= SHOAL_SVC_AFFINITY;
			if (argv[i][10] == '=')
				timeout = (uint32_t)strtoul(argv[i] + 11, NULL, 10);
		} else if (streq(argv[i], "--local")) {
			flags |= SHOAL_SVC_LOCAL;
		} else if (lb_backend_parse(argv[i], &bes[n++]) < 0) {
			fprintf(stderr, "svc-set: bad backend %s\n", argv[i]);
			return -EINVAL;
		}
	}
	fe.flags = flags;
	fe.affinity_timeout = timeout;
	r = lb_service_upsert(lb, &fe, bes, n, e);
	return r < 0 ? r : print_change(lb);
}

static int run_cmd(struct lb *lb, const char *cmd, int argc, char **argv, struct err *e)
{
	int r = 0;

	if (streq(cmd, "svc-set")) {
		r = cmd_svc_set(lb, argc, argv, e);
	} else if (streq(cmd, "svc-del")) {
		struct lb_frontend fe;

		if (argc < 1 || lb_frontend_parse(argv[0], &fe) < 0)
			r = -EINVAL;
		else
			r = lb_service_delete(lb, &fe, e);
		if (r >= 0)
			print_change(lb);
	} else if (streq(cmd, "be-flags")) {
		struct lb_frontend fe;

		if (argc < 2 || lb_frontend_parse(argv[0], &fe) < 0)
			r = -EINVAL;
		else
			r = lb_backend_set_flags(
			    lb, fe.vip, fe.port, fe.proto,
			    streq(argv[1], "terminating") ? SHOAL_BE_TERMINATING : 0, e);
		if (r >= 0)
			print_change(lb);
	} else if (streq(cmd, "dump")) {
		_cleanup_json_ cJSON *j = NULL;

		r = lb_dump(lb, &j);
		if (r >= 0)
			print_json(j);
	} else if (streq(cmd, "stats")) {
		struct lb_stats st;

		lb_stats_get(lb, &st);
		printf("{\"services\": %u, \"backends\": %u, \"svc_entries\": %u, \"svc_max\": %u, "
		       "\"backend_max\": %u}\n",
		       st.services, st.backends, st.svc_entries, st.svc_max, st.backend_max);
		fflush(stdout);
	} else {
		usage(stderr);
		r = -EINVAL;
	}
	return r;
}

/*
 * repl: commands from stdin, one a line (svc-set, svc-del, be-flags, dump, stats), run by one
 * process that stays open, as the daemon does; one JSON line answers each ({"error": ...}).
 */
static int cmd_repl(struct lb *lb)
{
	char line[65536];

	repl_mode = true;
	while (fgets(line, sizeof(line), stdin)) {
		char *argv[4096], *save = NULL, *t;
		struct err e = {};
		int argc = 0, r;

		for (t = strtok_r(line, " \t\n", &save); t && argc < 4096;
		     t = strtok_r(NULL, " \t\n", &save))
			argv[argc++] = t;
		if (!argc)
			continue;
		r = run_cmd(lb, argv[0], argc - 1, argv + 1, &e);
		if (r < 0) {
			_cleanup_json_ cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "error",
						e.message[0] ? e.message : strerror(-r));
			print_json(o);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "pin-root", required_argument, NULL, 'p' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "host-wide", no_argument, NULL, 'H' },
		{ "svc-max", required_argument, NULL, 'S' },
		{ "backend-max", required_argument, NULL, 'B' },
		{ "tbl-max", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct lb_opts opts = { .maps_only = true };
	struct err e = {};
	struct lb *lb = NULL;
	const char *cmd;
	int c, r;

	while ((c = getopt_long(argc, argv, "+n:p:c:HhS:B:", lopts, NULL)) != -1) {
		switch (c) {
		case 'n': opts.node = optarg; break;
		case 'p': opts.pin_root = optarg; break;
		case 'c': opts.cgroup = optarg; break;
		case 'H': opts.host_wide = true; break;
		case 'S': opts.svc_max = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'B': opts.backend_max = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'T': opts.be_tbl_max = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (streq(cmd, "cgroup2-root")) {
		char root[4096];

		r = lb_cgroup2_root(root, sizeof(root));
		if (r < 0)
			return 1;
		printf("%s\n", root);
		return 0;
	}
	if (streq(cmd, "teardown")) {
		r = lb_teardown(opts.pin_root, opts.node);
		if (r < 0)
			fprintf(stderr, "shoal-lbctl teardown: %s\n", strerror(-r));
		return r < 0 ? 1 : 0;
	}
	if (streq(cmd, "attach"))
		opts.maps_only = false;
	r = lb_open(&opts, &lb, &e);
	if (r < 0) {
		fprintf(stderr, "shoal-lbctl: %s\n", e.message[0] ? e.message : strerror(-r));
		return 1;
	}
	if (streq(cmd, "attach"))
		printf("%s\n", lb_pin_dir(lb));
	else if (streq(cmd, "repl"))
		r = cmd_repl(lb);
	else
		r = run_cmd(lb, cmd, argc - optind, argv + optind, &e);
	if (r < 0)
		fprintf(stderr, "shoal-lbctl %s: %s\n", cmd, e.message[0] ? e.message : strerror(-r));
	lb_close(lb, false);
	return r < 0 ? 1 : 0;
}
