// SPDX-License-Identifier: Apache-2.0
/*
 * The service proxy against a real in-memory store and real (pinned) BPF maps: what the maps
 * hold is read back through a separate maps-only handle, as shoalctl would. Needs root and bpffs;
 * runs in its own network namespace (the NodePort tests attach tc to its loopback).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/object.h"
#include "bpf/lb.h"
#include "bpf/nodeport.h"
#include "daemon/services.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "sched/store.h"

#define NODE "n1"

static char pin_root[128];

struct fx {
	struct store *store;
	struct svc_proxy *p;
	struct svc_proxy_opts o;
};

static void obj_create(struct store *s, const char *text)
{
	_cleanup_json_ cJSON *o = cJSON_Parse(text);
	struct err e = {};
	int r;

	assert_non_null(o);
	r = api_obj_create(s, o, NULL, &e);
	if (r < 0)
		fail_msg("create %s: %s", text, e.message);
}

static void obj_put(struct store *s, const char *text)
{
	_cleanup_json_ cJSON *o = cJSON_Parse(text);
	struct store_obj *cur = NULL;
	struct err e = {};
	int r;

	assert_non_null(o);
	const char *kind = json_str(o, "kind", "");
	const char *res = streq(kind, "Endpoints") ? "endpoints"
			  : streq(kind, "Service") ? "services"
						   : "pods";
	if (store_get(s, res, json_str(o, "metadata.namespace", "default"),
		      json_str(o, "metadata.name", ""), &cur) == 0) {
		store_obj_unref(cur);
		r = api_obj_update(s, o, NULL, &e);
	} else {
		r = api_obj_create(s, o, NULL, &e);
	}
	if (r < 0)
		fail_msg("put %s: %s", text, e.message);
}

/* The maps as a fresh reader sees them. */
static cJSON *dump_node(const char *node)
{
	struct lb_opts lo = { .node = node, .pin_root = pin_root, .maps_only = true };
	struct lb *lb = NULL;
	struct err e = {};
	cJSON *d = NULL;

	assert_int_equal(lb_open(&lo, &lb, &e), 0);
	assert_int_equal(lb_dump(lb, &d), 0);
	lb_close(lb, false);
	return d;
}

static cJSON *dump(void)
{
	return dump_node(NODE);
}

static cJSON *dump_fe(cJSON *d, const char *fe)
{
	cJSON *o;

	cJSON_ArrayForEach(o, d) if (streq(json_str(o, "frontend", ""), fe)) return o;
	return NULL;
}

static int events_with_reason(struct store *s, const char *reason, char *msg, size_t len);

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct store_options so = { .node_name = NODE };
	struct err e = {};

	if (geteuid() != 0)
		skip();
	snprintf(pin_root, sizeof(pin_root), "/sys/fs/bpf/shoal-svc-ut-%d", getpid());
	assert_int_equal(store_open(&so, &f->store), 0);
	obj_create(f->store, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
			     "\"metadata\":{\"name\":\"default\"}}");
	f->o = (struct svc_proxy_opts){ .node = NODE, .pin_root = pin_root };
	if (svc_proxy_new(NULL, f->store, &f->o, &f->p, &e) < 0)
		fail_msg("svc_proxy_new: %s", e.message);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (!f)
		return 0;
	svc_proxy_free(f->p);
	store_close(f->store);
	np_teardown(pin_root, NODE, f->o.uplink);
	lb_teardown(pin_root, NODE);
	rmdir(pin_root);
	free(f);
	return 0;
}

#define SVC_WEB                                                                                    \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","            \
	"\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.10\",\"selector\":{\"a\":" \
	"\"b\"},\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080},{\"name\":\"dns\"," \
	"\"port\":53,\"protocol\":\"UDP\"}]}}"

static const char *ep_web(const char *ips[], int n)
{
	static char buf[4096];
	int k;

	k = snprintf(buf, sizeof(buf),
		     "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"web\","
		     "\"namespace\":\"default\"},\"subsets\":[{\"addresses\":[");
	for (int i = 0; i < n; i++)
		k += snprintf(buf + k, sizeof(buf) - (size_t)k,
			      "%s{\"ip\":\"%s\",\"nodeName\":\"%s\",\"targetRef\":{\"kind\":\"Pod\","
			      "\"namespace\":\"default\",\"name\":\"pod-%s\"}}",
			      i ? "," : "", ips[i], i == 0 ? NODE : "n2", ips[i]);
	snprintf(buf + k, sizeof(buf) - (size_t)k,
		 "],\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"},"
		 "{\"name\":\"dns\",\"port\":5353,\"protocol\":\"UDP\"}]}]}");
	return buf;
}

static void test_clusterip(void **state)
{
	struct fx *f = *state;
	const char *ips[] = { "10.244.0.2", "10.244.1.2", "10.244.1.3" };
	_cleanup_json_ cJSON *d = NULL, *d2 = NULL;
	cJSON *fe;
	struct svc_proxy_stats st;

	obj_create(f->store, SVC_WEB);
	d = dump();
	/* a service without endpoints is programmed empty: connect() is refused at once */
	fe = dump_fe(d, "10.96.0.10:80/tcp");
	assert_non_null(fe);
	assert_int_equal(json_int(fe, "ready", -1), 0);

	obj_put(f->store, ep_web(ips, 3));
	d2 = dump();
	fe = dump_fe(d2, "10.96.0.10:80/tcp");
	assert_non_null(fe);
	assert_int_equal(json_int(fe, "ready", -1), 3);
	/* targetPort as the Endpoints resolved it, per port name and protocol */
	assert_int_equal(json_int(cJSON_GetArrayItem(json_path(fe, "backends"), 0), "port", 0),
			 8080);
	fe = dump_fe(d2, "10.96.0.10:53/udp");
	assert_non_null(fe);
	assert_int_equal(json_int(fe, "ready", -1), 3);
	assert_int_equal(json_int(cJSON_GetArrayItem(json_path(fe, "backends"), 0), "port", 0),
			 5353);
	/* the local endpoint is marked local */
	assert_true(json_bool(cJSON_GetArrayItem(json_path(fe, "backends"), 0), "local", false));
	svc_proxy_stats_get(f->p, &st);
	assert_int_equal(st.frontends, 2);
	assert_int_equal(st.failed, 0);
}

static void test_incremental(void **state)
{
	struct fx *f = *state;
	const char *ips[] = { "10.244.0.2", "10.244.1.2", "10.244.1.3" };
	const char *ips2[] = { "10.244.0.2", "10.244.1.2", "10.244.1.9" };
	struct svc_proxy_stats st;

	obj_create(f->store, SVC_WEB);
	obj_put(f->store, ep_web(ips, 3));
	obj_put(f->store, ep_web(ips2, 3));
	svc_proxy_stats_get(f->p, &st);
	/* the last frontend programmed (udp): new backend entry, its slot, slot 0 (its copy of
	 * the slots' addresses), old entry deleted */
	assert_int_equal(st.last_writes, 4);
	/* the same endpoints again: nothing written */
	obj_put(f->store, "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":"
			  "\"web\",\"namespace\":\"default\",\"labels\":{\"x\":\"y\"}},"
			  "\"subsets\":[]}");
	obj_put(f->store, ep_web(ips2, 3));
	{
		_cleanup_json_ cJSON *d = dump();
		cJSON *fe = dump_fe(d, "10.96.0.10:80/tcp");

		assert_int_equal(json_int(fe, "ready", -1), 3);
		assert_string_equal(
			json_str(cJSON_GetArrayItem(json_path(fe, "backends"), 2), "ip", ""),
			"10.244.1.9");
	}
}

static void test_affinity_headless_externalname(void **state)
{
	struct fx *f = *state;
	_cleanup_json_ cJSON *d = NULL;
	cJSON *fe;

	obj_create(f->store,
		   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"aff\","
		   "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.11\","
		   "\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{\"clientIP\":"
		   "{\"timeoutSeconds\":60}},\"ports\":[{\"port\":80}]}}");
	obj_create(f->store,
		   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"hl\","
		   "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"None\","
		   "\"ports\":[{\"port\":80}]}}");
	obj_create(f->store,
		   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"en\","
		   "\"namespace\":\"default\"},\"spec\":{\"type\":\"ExternalName\","
		   "\"externalName\":\"example.org\"}}");
	d = dump();
	assert_int_equal(cJSON_GetArraySize(d), 1);
	fe = dump_fe(d, "10.96.0.11:80/tcp");
	assert_non_null(fe);
	assert_int_equal(json_int(fe, "affinity_timeout", 0), 60);
	assert_string_equal(cJSON_GetArrayItem(json_path(fe, "flags"), 0)->valuestring, "affinity");
}

struct ev_find {
	const char *reason;
	char *msg;
	size_t len;
	int n;
};

static int ev_cb(struct store_obj *o, void *ud)
{
	struct ev_find *f = ud;
	_cleanup_json_ cJSON *ev = store_obj_parse(o);

	if (streq(json_str(ev, "reason", ""), f->reason) &&
	    streq(json_str(ev, "involvedObject.kind", ""), "Service") &&
	    streq(json_str(ev, "type", ""), "Warning")) {
		f->n++;
		snprintf(f->msg, f->len, "%s", json_str(ev, "message", ""));
	}
	return 0;
}

static int events_with_reason(struct store *s, const char *reason, char *msg, size_t len)
{
	struct ev_find f = { .reason = reason, .msg = msg, .len = len };

	store_list(s, "events", NULL, NULL, NULL, ev_cb, &f);
	return f.n;
}

static void test_unsupported_protocol(void **state)
{
	struct fx *f = *state;
	const char *ips[] = { "10.244.0.2" };
	char msg[512] = "";
	_cleanup_json_ cJSON *d = NULL;

	obj_create(f->store, SVC_WEB);
	obj_put(f->store, ep_web(ips, 1));
	/* an SCTP port added: an Event, and the service keeps its complete previous state */
	obj_put(f->store,
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
		"\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.10\",\"selector\":"
		"{\"a\":\"b\"},\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080},"
		"{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"},{\"name\":\"sig\",\"port\":"
		"9999,\"protocol\":\"SCTP\"}]}}");
	assert_int_equal(events_with_reason(f->store, "UnsupportedProtocol", msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "SCTP"));
	d = dump();
	assert_int_equal(cJSON_GetArraySize(d), 2);
	/* the same failure again is not a new Event */
	obj_put(f->store, ep_web(ips, 1));
	assert_int_equal(events_with_reason(f->store, "UnsupportedProtocol", msg, sizeof(msg)), 1);
}

static void test_conflict_and_full(void **state)
{
	struct fx *f = *state;
	char msg[512] = "";
	struct svc_proxy_stats st, st2;
	_cleanup_json_ cJSON *d = NULL;

	obj_create(f->store,
		   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\","
		   "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.20\","
		   "\"externalIPs\":[\"192.0.2.10\"],\"ports\":[{\"port\":80}]}}");
	obj_create(f->store,
		   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"b\","
		   "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.21\","
		   "\"externalIPs\":[\"192.0.2.10\"],\"ports\":[{\"port\":80}]}}");
	assert_int_equal(events_with_reason(f->store, "FrontendConflict", msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "default/a"));
	d = dump();
	/* b has nothing, not even its own ClusterIP (no partial state) */
	assert_non_null(dump_fe(d, "192.0.2.10:80/tcp"));
	assert_non_null(dump_fe(d, "10.96.0.20:80/tcp"));
	assert_null(dump_fe(d, "10.96.0.21:80/tcp"));
	svc_proxy_stats_get(f->p, &st);
	assert_int_equal(st.failed, 1);

	/* a deletes: b gets its frontends on the next retry */
	{
		struct err e = {};
		struct api_delete_opts dopt = { .grace_seconds = -1 };

		assert_int_equal(api_obj_delete(f->store, "services", "default", "a", &dopt, NULL, &e),
				 0);
	}
	svc_proxy_stats_get(f->p, &st);
	assert_int_equal(st.frontends, 0);
	(void)st2;
}

static void test_map_full(void **state)
{
	struct fx *f = *state;
	struct svc_proxy_stats st, st2;
	char msg[512] = "";
	char ep[8192];
	int k;

	/* a fresh proxy on small maps */
	f->p = svc_proxy_free(f->p);
	lb_teardown(pin_root, NODE);
	f->o.svc_max = 8;
	f->o.backend_max = 8;
	struct err e = {};
	assert_int_equal(svc_proxy_new(NULL, f->store, &f->o, &f->p, &e), 0);
	svc_proxy_stats_get(f->p, &st);
	assert_int_equal(st.svc_max, 8);

	obj_create(f->store,
		   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"big\","
		   "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.30\","
		   "\"ports\":[{\"name\":\"a\",\"port\":80},{\"name\":\"b\",\"port\":81}]}}");
	k = snprintf(ep, sizeof(ep), "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":"
				     "{\"name\":\"big\",\"namespace\":\"default\"},\"subsets\":[{"
				     "\"addresses\":[");
	for (int i = 0; i < 4; i++)
		k += snprintf(ep + k, sizeof(ep) - (size_t)k, "%s{\"ip\":\"10.244.3.%d\"}",
			      i ? "," : "", i + 2);
	snprintf(ep + k, sizeof(ep) - (size_t)k,
		 "],\"ports\":[{\"name\":\"a\",\"port\":80},{\"name\":\"b\",\"port\":81}]}]}");
	svc_proxy_stats_get(f->p, &st);
	obj_put(f->store, ep);
	/* 2 frontends x (1 + 4) entries > 8: nothing of it is written */
	assert_int_equal(events_with_reason(f->store, "DatapathFull", msg, sizeof(msg)), 1);
	svc_proxy_stats_get(f->p, &st2);
	assert_int_equal(st2.svc_entries, st.svc_entries);
	assert_int_equal(st2.backend_entries, st.backend_entries);
	assert_int_equal(st2.failed, 1);
}

static void test_drain(void **state)
{
	struct fx *f = *state;
	const char *ips[] = { "10.244.0.2", "10.244.1.2" };
	const char *ips1[] = { "10.244.1.2" };
	_cleanup_json_ cJSON *d = NULL, *d2 = NULL;
	cJSON *fe;
	struct err e = {};
	struct api_delete_opts dopt = { .grace_seconds = -1 };

	obj_create(f->store, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
			     "\"pod-10.244.0.2\",\"namespace\":\"default\",\"finalizers\":"
			     "[\"test/hold\"]},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"
			     "\"x\"}]}}");
	{
		_cleanup_json_ cJSON *st = cJSON_Parse(
			"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
			"\"pod-10.244.0.2\",\"namespace\":\"default\"},\"status\":{\"phase\":"
			"\"Running\",\"podIP\":\"10.244.0.2\"}}");
		assert_int_equal(api_obj_update_status(f->store, st, NULL, &e), 0);
	}
	obj_create(f->store, SVC_WEB);
	obj_put(f->store, ep_web(ips, 2));
	/* the pod terminates (a finalizer holds it): it leaves the ready set, keeps serving */
	assert_int_equal(api_obj_delete(f->store, "pods", "default", "pod-10.244.0.2", &dopt, NULL,
					&e),
			 0);
	obj_put(f->store, ep_web(ips1, 1));
	d = dump();
	fe = dump_fe(d, "10.96.0.10:80/tcp");
	assert_int_equal(json_int(fe, "ready", -1), 1);
	assert_int_equal(json_int(fe, "terminating", -1), 1);
	assert_string_equal(json_str(cJSON_GetArrayItem(json_path(fe, "backends"), 1), "state", ""),
			    "terminating");
	/* the pod is gone: so is the backend */
	obj_put(f->store, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
			  "\"pod-10.244.0.2\",\"namespace\":\"default\",\"finalizers\":[]},"
			  "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}");
	d2 = dump();
	fe = dump_fe(d2, "10.96.0.10:80/tcp");
	assert_int_equal(json_int(fe, "ready", -1), 1);
	assert_int_equal(json_int(fe, "terminating", -1), 0);
}

static void test_restart_reconcile(void **state)
{
	struct fx *f = *state;
	const char *ips[] = { "10.244.0.2", "10.244.1.2" };
	struct store_obj *o = NULL;
	struct svc_proxy_stats st;
	struct err e = {};
	_cleanup_json_ cJSON *d = NULL;

	obj_create(f->store, SVC_WEB);
	obj_put(f->store, ep_web(ips, 2));
	obj_create(f->store,
		   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"gone\","
		   "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.40\","
		   "\"ports\":[{\"port\":80}]}}");
	/* the daemon goes down; meanwhile "gone" is deleted (arrives by gossip, say) */
	svc_proxy_free(f->p);
	f->p = NULL;
	assert_int_equal(store_delete(f->store, "services", "default", "gone", 0, NULL, &o, &e), 0);
	store_obj_unref(o);
	assert_int_equal(svc_proxy_new(NULL, f->store, &f->o, &f->p, &e), 0);
	d = dump();
	assert_null(dump_fe(d, "10.96.0.40:80/tcp"));
	assert_non_null(dump_fe(d, "10.96.0.10:80/tcp"));
	/* the surviving service was already right: adopted without rewriting */
	svc_proxy_stats_get(f->p, &st);
	assert_int_equal(st.frontends, 2);
	assert_int_equal(json_int(dump_fe(d, "10.96.0.10:80/tcp"), "ready", 0), 2);
}

/* A frontend as the maps hold it, without the ids the loader picked: flags, counts, backends in
 * slot order. */
static void fe_canon(const cJSON *fe, char *buf, size_t len)
{
	const cJSON *b;
	_cleanup_free_ char *fl = cJSON_PrintUnformatted(json_path(fe, "flags"));
	int k = snprintf(buf, len, "%s %s aff=%lld r=%lld t=%lld:", json_str(fe, "frontend", ""),
			 fl, (long long)json_int(fe, "affinity_timeout", -1),
			 (long long)json_int(fe, "ready", -1),
			 (long long)json_int(fe, "terminating", -1));

	cJSON_ArrayForEach(b, json_path(fe, "backends"))
	k += snprintf(buf + k, len - (size_t)k, " %lld=%s:%lld/%s",
		      (long long)json_int(b, "slot", -1), json_str(b, "ip", ""),
		      (long long)json_int(b, "port", -1), json_str(b, "state", ""));
}

static void test_cold_start_batch(void **state)
{
	struct fx *f = *state;
	const char *ips[] = { "10.244.0.2", "10.244.1.2", "10.244.1.3" };
	_cleanup_json_ cJSON *d1 = NULL, *d2 = NULL;
	struct svc_proxy_stats st1, st2;
	struct err e = {};
	const cJSON *fe;
	char buf[2048];

	obj_create(f->store, SVC_WEB);
	obj_put(f->store, ep_web(ips, 3));
	obj_create(f->store,
		   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"aff\","
		   "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.96.0.50\","
		   "\"sessionAffinity\":\"ClientIP\",\"ports\":[{\"port\":80}]}}");
	for (int i = 0; i < 40; i++) {
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
			 "\"s%d\",\"namespace\":\"default\"},\"spec\":{\"clusterIP\":"
			 "\"10.96.1.%d\",\"ports\":[{\"port\":80}]}}",
			 i, i + 1);
		obj_create(f->store, buf);
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":"
			 "\"s%d\",\"namespace\":\"default\"},\"subsets\":[{\"addresses\":["
			 "{\"ip\":\"10.244.2.%d\"},{\"ip\":\"10.244.3.%d\"}],\"ports\":[{\"port\":"
			 "8080}]}]}",
			 i, i + 2, i + 2);
		obj_put(f->store, buf);
	}
	/* programmed one change at a time while running */
	d1 = dump();
	svc_proxy_stats_get(f->p, &st1);
	assert_int_equal(cJSON_GetArraySize(d1), 43);

	/* cold start: empty maps, every service at once through the batch */
	f->p = svc_proxy_free(f->p);
	lb_teardown(pin_root, NODE);
	assert_int_equal(svc_proxy_new(NULL, f->store, &f->o, &f->p, &e), 0);
	d2 = dump();
	svc_proxy_stats_get(f->p, &st2);
	assert_int_equal(cJSON_GetArraySize(d2), 43);
	assert_int_equal(st2.frontends, st1.frontends);
	assert_int_equal(st2.failed, 0);
	assert_int_equal(st2.svc_entries, st1.svc_entries);
	assert_int_equal(st2.backend_entries, st1.backend_entries);
	cJSON_ArrayForEach(fe, d1)
	{
		char a[2048], b[2048];
		const cJSON *other = dump_fe(d2, json_str(fe, "frontend", ""));

		assert_non_null(other);
		fe_canon(fe, a, sizeof(a));
		fe_canon(other, b, sizeof(b));
		assert_string_equal(a, b);
	}
	/* and it keeps working incrementally afterwards */
	obj_put(f->store, ep_web(ips, 1));
	{
		_cleanup_json_ cJSON *d3 = dump();

		assert_int_equal(json_int(dump_fe(d3, "10.96.0.10:80/tcp"), "ready", -1), 1);
	}
}

/* The loader's batch: nothing of a queued frontend is visible until it is written out, and
 * touching a queued frontend writes the queue out first. */
static void test_lb_batch(void **state)
{
	struct lb_opts lo = { .node = NODE "b", .pin_root = pin_root };
	struct lb_backend_addr be[3];
	struct lb_frontend fa, fb, fc, fd;
	struct lb *lb = NULL;
	struct err e = {};
	cJSON *d;

	(void)state;
	assert_int_equal(lb_open(&lo, &lb, &e), 0);
	assert_int_equal(lb_frontend_parse("10.96.5.1:80", &fa), 0);
	assert_int_equal(lb_frontend_parse("10.96.5.2:53/udp", &fb), 0);
	assert_int_equal(lb_frontend_parse("10.96.5.3:80", &fc), 0);
	assert_int_equal(lb_frontend_parse("10.96.5.4:80", &fd), 0);
	assert_int_equal(lb_backend_parse("10.244.5.2:8080", &be[0]), 0);
	assert_int_equal(lb_backend_parse("10.244.5.3:8080", &be[1]), 0);
	assert_int_equal(lb_backend_parse("10.244.5.4:8080,terminating", &be[2]), 0);

	lb_batch_begin(lb);
	assert_int_equal(lb_service_upsert(lb, &fa, be, 3, &e), 0);
	assert_int_equal(lb_service_upsert(lb, &fb, be, 2, &e), 0);
	d = dump_node(NODE "b");
	assert_int_equal(cJSON_GetArraySize(d), 0);
	cJSON_Delete(d);

	/* a change of a queued frontend: the queue goes out, then the diff */
	assert_int_equal(lb_service_upsert(lb, &fa, be, 1, &e), 0);
	d = dump_node(NODE "b");
	assert_int_equal(cJSON_GetArraySize(d), 2);
	assert_int_equal(json_int(dump_fe(d, "10.96.5.1:80/tcp"), "ready", -1), 1);
	assert_int_equal(json_int(dump_fe(d, "10.96.5.1:80/tcp"), "terminating", -1), 0);
	assert_int_equal(json_int(dump_fe(d, "10.96.5.2:53/udp"), "ready", -1), 2);
	cJSON_Delete(d);

	/* deleting a queued frontend; one more queued, then the flush */
	assert_int_equal(lb_service_upsert(lb, &fc, be, 3, &e), 0);
	assert_int_equal(lb_service_delete(lb, &fc, &e), 0);
	assert_int_equal(lb_service_upsert(lb, &fd, be, 3, &e), 0);
	assert_int_equal(lb_service_upsert(lb, &fd, be, 3, &e), 0); /* same set: nothing to do */
	assert_int_equal(lb_batch_flush(lb, &e), 0);
	d = dump_node(NODE "b");
	assert_int_equal(cJSON_GetArraySize(d), 3);
	assert_null(dump_fe(d, "10.96.5.3:80/tcp"));
	assert_int_equal(json_int(dump_fe(d, "10.96.5.4:80/tcp"), "ready", -1), 2);
	assert_int_equal(json_int(dump_fe(d, "10.96.5.4:80/tcp"), "terminating", -1), 1);
	cJSON_Delete(d);

	/* after the flush, writes are immediate again */
	assert_int_equal(lb_service_upsert(lb, &fc, be, 2, &e), 0);
	d = dump_node(NODE "b");
	assert_int_equal(json_int(dump_fe(d, "10.96.5.3:80/tcp"), "ready", -1), 2);
	cJSON_Delete(d);
	lb_close(lb, true);
	lb_teardown(pin_root, NODE "b");
}

static void test_nodeport(void **state)
{
	struct fx *f = *state;
	const char *ips[] = { "10.244.0.2", "10.244.1.2", "10.244.1.3" };
	struct svc_proxy_stats st;
	struct np_stats ns;
	struct np *np = NULL;
	struct np_opts no = { .node = NODE, .pin_root = pin_root };
	struct err e = {};
	_cleanup_json_ cJSON *d = NULL;
	_cleanup_free_ char *metrics = NULL;
	cJSON *fe;

	f->p = svc_proxy_free(f->p);
	f->o.uplink = "lo";
	f->o.node_ip = inet_addr("127.0.0.1");
	f->o.maglev_m = 251;
	if (svc_proxy_new(NULL, f->store, &f->o, &f->p, &e) < 0)
		fail_msg("svc_proxy_new: %s", e.message);
	obj_create(f->store,
		   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
		   "\"namespace\":\"default\"},\"spec\":{\"type\":\"NodePort\",\"clusterIP\":"
		   "\"10.96.0.10\",\"externalIPs\":[\"192.0.2.7\"],\"ports\":[{\"name\":\"http\","
		   "\"port\":80,\"targetPort\":8080,\"nodePort\":30080}]}}");
	obj_put(f->store, ep_web(ips, 3));
	d = dump();
	fe = dump_fe(d, "127.0.0.1:30080/tcp");
	assert_non_null(fe);
	assert_int_equal(json_int(fe, "ready", 0), 3);
	assert_non_null(dump_fe(d, "192.0.2.7:80/tcp"));
	assert_non_null(dump_fe(d, "10.96.0.10:80/tcp"));
	assert_int_equal(np_open(&no, &np, &e), 0);
	assert_int_equal(np_stats_get(np, &ns), 0);
	assert_int_equal(ns.maglev_tables, 2); /* nodeport + external IP, not the ClusterIP */
	np_close(np, false);

	/* externalTrafficPolicy Local: only this node's endpoint behind the node port */
	obj_put(f->store,
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
		"\"namespace\":\"default\"},\"spec\":{\"type\":\"NodePort\",\"clusterIP\":"
		"\"10.96.0.10\",\"externalTrafficPolicy\":\"Local\",\"ports\":[{\"name\":\"http\","
		"\"port\":80,\"targetPort\":8080,\"nodePort\":30080}]}}");
	{
		_cleanup_json_ cJSON *d2 = dump();

		fe = dump_fe(d2, "127.0.0.1:30080/tcp");
		assert_int_equal(json_int(fe, "ready", 0), 1);
		assert_null(dump_fe(d2, "192.0.2.7:80/tcp"));
		assert_int_equal(json_int(dump_fe(d2, "10.96.0.10:80/tcp"), "ready", 0), 3);
	}
	assert_int_equal(np_open(&no, &np, &e), 0);
	assert_int_equal(np_stats_get(np, &ns), 0);
	assert_int_equal(ns.maglev_tables, 1);
	np_close(np, false);

	svc_proxy_stats_get(f->p, &st);
	assert_true(st.ct_max > 0);
	assert_int_equal(svc_proxy_metrics(f->p, &metrics), 0);
	assert_non_null(strstr(metrics, "shoal_bpf_map_fill_ratio{map=\"shoal_svc\"}"));
	assert_non_null(strstr(metrics, "shoal_conntrack_pressure 0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clusterip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental, setup, teardown),
		cmocka_unit_test_setup_teardown(test_affinity_headless_externalname, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_protocol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict_and_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_reconcile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodeport, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cold_start_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lb_batch, setup, teardown),
	};

	/* our own network namespace: the tc programs go on its loopback, nobody else's */
	if (geteuid() == 0 && unshare(CLONE_NEWNET) < 0) {
		perror("unshare");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
