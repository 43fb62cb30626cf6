// SPDX-License-Identifier: Apache-2.0
/*
 * shoal-svc-drive: the service proxy (daemon/services.c) on a private store, driven by JSON
 * lines on stdin, one JSON answer per line on stdout. For integration tests and `make bench-svc`
 * until shoald wires the proxy in; objects go through api/object.h like API writes do.
 *
 *   {"op":"put","obj":{...}}                 create or replace (spec), answers {"ok":true,"us":N}
 *   {"op":"status","obj":{...}}              replace status
 *   {"op":"delete","resource":"services","namespace":"default","name":"x"}
 *   {"op":"stats"} / {"op":"metrics"}        svc_proxy_stats_get / svc_proxy_metrics
 *   {"op":"gen","n":N,"start":0,"vip":"10.96.0.0","port":80,"backends":["ip:port",...],
 *    "prefix":"s","distinct":"10.248.0.0"}   services start..N-1 (ClusterIP vip+1+i) with
 *                                            Endpoints, answers the time taken; with
 *                                            "distinct", service i's j-th backend address is
 *                                            distinct+1+i*len(backends)+j (ports as given)
 *   {"op":"restart","cold":bool}             free and re-create the proxy (cold: maps torn down
 *                                            first, so every service is programmed anew)
 *   {"op":"quit"}
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/object.h"
#include "bpf/lb.h"
#include "bpf/nodeport.h"
#include "daemon/services.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store.h"

static struct store *store;
static struct svc_proxy *proxy;
static struct svc_proxy_opts opts;
static struct event_base *base; /* the proxy's timers and rtnetlink watch run between commands */

static void answer(cJSON *o)
{
	_cleanup_free_ char *s = cJSON_PrintUnformatted(o);

	printf("%s\n", s ? s : "{}");
	fflush(stdout);
	cJSON_Delete(o);
}

static void answer_err(const char *msg)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "error", msg);
	answer(o);
}

static const char *resource_of(const char *kind)
{
	if (streq(kind, "Service"))
		return "services";
	if (streq(kind, "Endpoints"))
		return "endpoints";
	if (streq(kind, "Pod"))
		return "pods";
	if (streq(kind, "Namespace"))
		return "namespaces";
	return NULL;
}

static int obj_put(cJSON *obj, struct err *e)
{
	const char *res = resource_of(json_str(obj, "kind", ""));
	struct store_obj *cur = NULL;
	const char *ns = streq(json_str(obj, "kind", ""), "Namespace")
				 ? ""
				 : json_str(obj, "metadata.namespace", "default");

	if (!res)
		return err_set(e, EINVAL, 400, "BadRequest", "unknown kind");
	if (store_get(store, res, ns, json_str(obj, "metadata.name", ""), &cur) == 0) {
		store_obj_unref(cur);
		return api_obj_update(store, obj, NULL, e);
	}
	return api_obj_create(store, obj, NULL, e);
}

static int op_gen(const cJSON *req, cJSON *ans)
{
	int n = (int)json_int(req, "n", 1), start = (int)json_int(req, "start", 0);
	uint32_t vip = ntohl(inet_addr(json_str(req, "vip", "10.96.0.0")));
	int port = (int)json_int(req, "port", 80);
	const char *prefix = json_str(req, "prefix", "s");
	const cJSON *bes = json_path(req, "backends");
	const char *distinct = json_str(req, "distinct", NULL);
	uint32_t dbase = distinct ? ntohl(inet_addr(distinct)) : 0;
	int nbes = cJSON_GetArraySize(bes);
	uint64_t t0 = util_mono_us();
	struct err e = {};

	for (int i = start; i < n; i++) {
		_cleanup_json_ cJSON *svc = cJSON_CreateObject(), *ep = cJSON_CreateObject();
		cJSON *md, *spec, *ports, *p, *ss, *addrs, *eports, *b;
		char name[64], ip[INET_ADDRSTRLEN];
		struct in_addr a = { .s_addr = htonl(vip + 1 + (uint32_t)i) };
		int r;

		snprintf(name, sizeof(name), "%s%d", prefix, i);
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		cJSON_AddStringToObject(svc, "apiVersion", "v1");
		cJSON_AddStringToObject(svc, "kind", "Service");
		md = cJSON_AddObjectToObject(svc, "metadata");
		cJSON_AddStringToObject(md, "name", name);
		cJSON_AddStringToObject(md, "namespace", "default");
		spec = cJSON_AddObjectToObject(svc, "spec");
		cJSON_AddStringToObject(spec, "clusterIP", ip);
		ports = cJSON_AddArrayToObject(spec, "ports");
		p = cJSON_CreateObject();
		cJSON_AddNumberToObject(p, "port", port);
		cJSON_AddItemToArray(ports, p);

		cJSON_AddStringToObject(ep, "apiVersion", "v1");
		cJSON_AddStringToObject(ep, "kind", "Endpoints");
		md = cJSON_AddObjectToObject(ep, "metadata");
		cJSON_AddStringToObject(md, "name", name);
		cJSON_AddStringToObject(md, "namespace", "default");
		ss = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(ep, "subsets"), ss);
		addrs = cJSON_AddArrayToObject(ss, "addresses");
		eports = cJSON_AddArrayToObject(ss, "ports");
		int bport = port, j = 0;
		cJSON_ArrayForEach(b, bes)
		{
			char host[64];
			const char *c = strchr(b->valuestring, ':');
			cJSON *ad = cJSON_CreateObject();

			snprintf(host, sizeof(host), "%.*s", c ? (int)(c - b->valuestring) : 63,
				 b->valuestring);
			if (distinct) {
				struct in_addr da = { .s_addr = htonl(dbase + 1 + (uint32_t)(i * nbes + j)) };

				inet_ntop(AF_INET, &da, host, sizeof(host));
			}
			j++;
			if (c)
				bport = atoi(c + 1);
			cJSON_AddStringToObject(ad, "ip", host);
			cJSON_AddItemToArray(addrs, ad);
		}
		p = cJSON_CreateObject();
		cJSON_AddNumberToObject(p, "port", bport);
		cJSON_AddStringToObject(p, "protocol", "TCP");
		cJSON_AddItemToArray(eports, p);
		r = obj_put(svc, &e);
		if (r == 0)
			r = obj_put(ep, &e);
		if (r < 0) {
			cJSON_AddStringToObject(ans, "error", e.message);
			return r;
		}
	}
	cJSON_AddNumberToObject(ans, "us", (double)(util_mono_us() - t0));
	return 0;
}

static void stats_json(cJSON *o)
{
	struct svc_proxy_stats st;

	svc_proxy_stats_get(proxy, &st);
	cJSON_AddNumberToObject(o, "services", st.services);
	cJSON_AddNumberToObject(o, "frontends", st.frontends);
	cJSON_AddNumberToObject(o, "failed", st.failed);
	cJSON_AddNumberToObject(o, "svc_entries", st.svc_entries);
	cJSON_AddNumberToObject(o, "backend_entries", st.backend_entries);
	cJSON_AddNumberToObject(o, "ct_entries", st.ct_entries);
	cJSON_AddNumberToObject(o, "ct_max", st.ct_max);
	cJSON_AddNumberToObject(o, "last_writes", st.last_writes);
	cJSON_AddNumberToObject(o, "last_sync_us", (double)st.last_sync_us);
	cJSON_AddNumberToObject(o, "syncs", (double)st.syncs);
	cJSON_AddNumberToObject(o, "start_program_us", (double)st.start_program_us);
}

static int proxy_start(struct err *e)
{
	return svc_proxy_new(base, store, &opts, &proxy, e);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "pin-root", required_argument, NULL, 'p' },
		{ "cgroup-name", required_argument, NULL, 'g' },
		{ "uplink", required_argument, NULL, 'u' },
		{ "node-ip", required_argument, NULL, 'i' },
		{ "maglev-seed", required_argument, NULL, 's' },
		{ "maglev-m", required_argument, NULL, 'm' },
		{ "svc-max", required_argument, NULL, 'S' },
		{ "backend-max", required_argument, NULL, 'B' },
		{ "teardown", no_argument, NULL, 'T' },
		{ "cfg-flags", required_argument, NULL, 'F' },
		{ "host-reach", no_argument, NULL, 'H' },
		{ "nodeport-auto", no_argument, NULL, 'A' },
		{},
	};
	char cg[4096], *line = NULL;
	const char *cgname = NULL;
	size_t cap = 0;
	bool teardown = false;
	struct store_options so = { .node_name = "drive" };
	struct err e = {};
	int c, r;

	log_setup("drive", LOG_LVL_WARN);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': opts.node = optarg; break;
		case 'p': opts.pin_root = optarg; break;
		case 'g': cgname = optarg; break;
		case 'u': opts.uplink = optarg; break;
		case 'i': opts.node_ip = inet_addr(optarg); break;
		case 's': opts.maglev_seed = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'm': opts.maglev_m = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'S': opts.svc_max = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'B': opts.backend_max = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'T': teardown = true; break;
		case 'F': opts.cfg_flags = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'H': opts.host_reach = true; break;
		case 'A': opts.nodeport_auto = true; break;
		default: return 2;
		}
	}
	if (!opts.node) {
		fprintf(stderr, "--node is required\n");
		return 2;
	}
	if (teardown && !cgname) {
		/* explicit teardown of a node's datapath */
		np_teardown(opts.pin_root, opts.node, opts.uplink);
		return lb_teardown(opts.pin_root, opts.node) < 0 ? 1 : 0;
	}
	if (cgname) {
		r = svc_cgroup_enter(cgname, cg, sizeof(cg), &e);
		if (r < 0) {
			fprintf(stderr, "cgroup: %s\n", e.message);
			return 1;
		}
		opts.cgroup = cg;
	}
	if (store_open(&so, &store) < 0)
		return 1;
	{
		_cleanup_json_ cJSON *ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
						      "\"metadata\":{\"name\":\"default\"}}");
		api_obj_create(store, ns, NULL, &e);
	}
	base = event_base_new();
	if (!base)
		return 1;
	r = proxy_start(&e);
	if (r < 0) {
		fprintf(stderr, "proxy: %s\n", e.message);
		return 1;
	}
	printf("{\"ready\":true}\n");
	fflush(stdout);

	for (;;) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };

		/* one request at a time (the caller waits for each answer): nothing is left in
		 * stdio's buffer when poll() says stdin is idle */
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 20) == 0)
			continue;
		if (getline(&line, &cap, stdin) <= 0)
			break;
		_cleanup_json_ cJSON *req = cJSON_Parse(line);
		cJSON *ans = cJSON_CreateObject();
		const char *op = json_str(req, "op", "");
		uint64_t t0 = util_mono_us();

		e = (struct err){};
		if (streq(op, "quit")) {
			cJSON_Delete(ans);
			break;
		} else if (streq(op, "put") || streq(op, "status")) {
			cJSON *obj = json_path(req, "obj");

			r = streq(op, "put") ? obj_put(obj, &e)
					     : api_obj_update_status(store, obj, NULL, &e);
			cJSON_AddNumberToObject(ans, "us", (double)(util_mono_us() - t0));
			if (r < 0)
				cJSON_AddStringToObject(ans, "error", e.message);
		} else if (streq(op, "delete")) {
			struct api_delete_opts d = { .grace_seconds = -1 };

			r = api_obj_delete(store, json_str(req, "resource", ""),
					   json_str(req, "namespace", "default"),
					   json_str(req, "name", ""), &d, NULL, &e);
			if (r < 0)
				cJSON_AddStringToObject(ans, "error", e.message);
		} else if (streq(op, "stats")) {
			stats_json(ans);
		} else if (streq(op, "metrics")) {
			_cleanup_free_ char *m = NULL;

			if (svc_proxy_metrics(proxy, &m) == 0)
				cJSON_AddStringToObject(ans, "text", m);
		} else if (streq(op, "gen")) {
			op_gen(req, ans);
		} else if (streq(op, "restart")) {
			proxy = svc_proxy_free(proxy);
			if (json_bool(req, "cold", false)) {
				np_teardown(opts.pin_root, opts.node, opts.uplink);
				lb_teardown(opts.pin_root, opts.node);
			}
			t0 = util_mono_us();
			r = proxy_start(&e);
			cJSON_AddNumberToObject(ans, "us", (double)(util_mono_us() - t0));
			if (r < 0) {
				cJSON_AddStringToObject(ans, "error", e.message);
				answer(ans);
				return 1;
			}
		} else {
			cJSON_AddStringToObject(ans, "error", "unknown op");
		}
		answer(ans);
	}
	free(line);
	proxy = svc_proxy_free(proxy);
	if (teardown) {
		np_teardown(opts.pin_root, opts.node, opts.uplink);
		lb_teardown(opts.pin_root, opts.node);
	}
	store_close(store);
	event_base_free(base);
	(void)answer_err;
	return 0;
}
