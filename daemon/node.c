// SPDX-License-Identifier: Apache-2.0
#include <string.h>
#include <sys/utsname.h>
#include <event2/event.h>

#include "api/object.h"
#include "daemon/node.h"
#include "lib/log.h"
#include "lib/util.h"

#define NODE_STATUS_PERIOD_S 10

struct node_agent {
	struct store *store;
	const struct config *cfg;
	struct event *tick;
	int64_t started;
};

static cJSON *node_status(struct node_agent *n)
{
	char cpu[24], mem[32], pods[24], now[32], boot[32];
	struct utsname un;
	cJSON *st, *res, *conds, *c, *info, *addrs, *a;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	snprintf(cpu, sizeof(cpu), "%ld", ncpu > 0 ? ncpu : 1);
	snprintf(mem, sizeof(mem), "%lldKi", util_mem_total_bytes() / 1024);
	snprintf(pods, sizeof(pods), "%ld", n->cfg->max_pods);
	util_rfc3339((int64_t)(util_now_ms() / 1000), now, sizeof(now));
	util_rfc3339(n->started, boot, sizeof(boot));
	uname(&un);

	st = cJSON_CreateObject();
	res = cJSON_AddObjectToObject(st, "capacity");
	cJSON_AddStringToObject(res, "cpu", cpu);
	cJSON_AddStringToObject(res, "memory", mem);
	cJSON_AddStringToObject(res, "pods", pods);
	res = cJSON_AddObjectToObject(st, "allocatable");
	cJSON_AddStringToObject(res, "cpu", cpu);
	cJSON_AddStringToObject(res, "memory", mem);
	cJSON_AddStringToObject(res, "pods", pods);
	conds = cJSON_AddArrayToObject(st, "conditions");
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", "Ready");
	cJSON_AddStringToObject(c, "status", "True");
	cJSON_AddStringToObject(c, "lastHeartbeatTime", now);
	cJSON_AddStringToObject(c, "lastTransitionTime", boot);
	cJSON_AddStringToObject(c, "reason", "ShoalReady");
	cJSON_AddStringToObject(c, "message", "shoald is posting ready status");
	cJSON_AddItemToArray(conds, c);
	addrs = cJSON_AddArrayToObject(st, "addresses");
	a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", "Hostname");
	cJSON_AddStringToObject(a, "address", n->cfg->node_name);
	cJSON_AddItemToArray(addrs, a);
	info = cJSON_AddObjectToObject(st, "nodeInfo");
	cJSON_AddStringToObject(info, "kernelVersion", un.release);
	cJSON_AddStringToObject(info, "osImage", "Linux");
	cJSON_AddStringToObject(info, "operatingSystem", "linux");
	cJSON_AddStringToObject(info, "architecture", "amd64");
	cJSON_AddStringToObject(info, "containerRuntimeVersion", "crun");
	cJSON_AddStringToObject(info, "kubeletVersion", "v1.33.0-shoal");
	cJSON_AddStringToObject(info, "kubeProxyVersion", "v1.33.0-shoal");
	return st;
}

static cJSON *node_object(struct node_agent *n)
{
	cJSON *o = cJSON_CreateObject(), *md, *labels, *spec;

	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Node");
	md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", n->cfg->node_name);
	labels = cJSON_AddObjectToObject(md, "labels");
	cJSON_AddStringToObject(labels, "kubernetes.io/hostname", n->cfg->node_name);
	cJSON_AddStringToObject(labels, "kubernetes.io/os", "linux");
	cJSON_AddStringToObject(labels, "kubernetes.io/arch", "amd64");
	spec = cJSON_AddObjectToObject(o, "spec");
	cJSON_AddStringToObject(spec, "podCIDR", n->cfg->pod_cidr);
	cJSON_AddItemToObject(spec, "podCIDRs", cJSON_CreateStringArray(
							  (const char *const[]){ n->cfg->pod_cidr }, 1));
	cJSON_AddItemToObject(o, "status", node_status(n));
	return o;
}

static int node_report(struct node_agent *n)
{
	_cleanup_json_ cJSON *obj = node_object(n);
	struct store_obj *cur = NULL;
	struct err e = { 0 };
	int r;

	r = store_get(n->store, "nodes", "", n->cfg->node_name, &cur);
	if (r == -ENOENT)
		r = api_obj_create(n->store, obj, NULL, &e);
	else if (r >= 0) {
		store_obj_unref(cur);
		r = api_obj_update_status(n->store, obj, NULL, &e);
	}
	if (r < 0)
		log_warn_errno(r, "node %s: cannot report status: %s", n->cfg->node_name, e.message);
	return r;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	node_report(arg);
}

int node_agent_new(struct event_base *base, struct store *store, const struct config *cfg,
		   struct node_agent **ret)
{
	struct node_agent *n = calloc(1, sizeof(*n));
	struct timeval tv = { NODE_STATUS_PERIOD_S, 0 };
	int r;

	if (!n)
		return -ENOMEM;
	n->store = store;
	n->cfg = cfg;
	n->started = (int64_t)(util_now_ms() / 1000);
	r = node_report(n);
	if (r < 0) {
		free(n);
		return r;
	}
	n->tick = event_new(base, -1, EV_PERSIST, on_tick, n);
	if (!n->tick || event_add(n->tick, &tv) < 0) {
		node_agent_free(n);
		return -ENOMEM;
	}
	log_info("node %s: registered (pod CIDR %s)", cfg->node_name, cfg->pod_cidr);
	*ret = n;
	return 0;
}

struct node_agent *node_agent_free(struct node_agent *n)
{
	if (!n)
		return NULL;
	if (n->tick)
		event_free(n->tick);
	free(n);
	return NULL;
}
