// SPDX-License-Identifier: Apache-2.0
#include <string.h>
#include <sodium.h>

#include "api/svcalloc.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "sched/svcip.h"

struct svcalloc {
	struct store *store;
	struct svcip_range range;
	/* how many services hold each address and port (saturating): with replication two
	 * services can hold one for a while (a race, a partition) until one is re-addressed, and
	 * the other still holds it then */
	uint8_t *ips;
	uint8_t ports[SVC_NODEPORT_MAX - SVC_NODEPORT_MIN + 1];
	struct store_watch *watch;
};

static struct svcalloc *sa;

static void count_add(uint8_t *c, bool set)
{
	if (set && *c < UINT8_MAX)
		(*c)++;
	else if (!set && *c > 0 && *c < UINT8_MAX)
		(*c)--; /* a saturated count stays: better an address never reused than reused */
}

/* a private copy of the port counts (a scratch map for one allocation) */
#define BIT_SET(b, i) ((b)[(i)] = 1)
#define BIT_CLR(b, i) ((b)[(i)] = 0)
#define BIT_GET(b, i) ((b)[(i)] != 0)

/* every type but ExternalName has a clusterIP (or "None") */
static bool needs_cluster_ip(const cJSON *spec)
{
	return !streq(json_str(spec, "type", "ClusterIP"), "ExternalName");
}

static bool needs_node_ports(const cJSON *spec)
{
	const char *type = json_str(spec, "type", "ClusterIP");

	return streq(type, "NodePort") ||
	       (streq(type, "LoadBalancer") &&
		json_bool(spec, "allocateLoadBalancerNodePorts", true));
}

static void mark(const char *json, bool set)
{
	_cleanup_json_ cJSON *svc = cJSON_Parse(json);
	cJSON *p;
	uint32_t ip;

	if (!svc)
		return;
	if (svcip_parse(json_str(svc, "spec.clusterIP", ""), &ip) == 0 &&
	    ip >= sa->range.net && ip < sa->range.net + sa->range.size)
		count_add(&sa->ips[ip - sa->range.net], set);
	cJSON_ArrayForEach(p, json_path(svc, "spec.ports"))
	{
		int64_t np = json_int(p, "nodePort", 0);
		if (np >= SVC_NODEPORT_MIN && np <= SVC_NODEPORT_MAX)
			count_add(&sa->ports[np - SVC_NODEPORT_MIN], set);
	}
}

static void on_event(const struct store_event *ev, void *ud)
{
	/* addresses are immutable once set, so old and new hold the same ones, except on
	 * create (mark) and delete (release); a type change can add or drop nodePorts */
	if (ev->old)
		mark(ev->old->json, false);
	if (ev->type != STORE_DELETED)
		mark(ev->obj->json, true);
}

static int seed_one(struct store_obj *o, void *ud)
{
	mark(o->json, true);
	return 0;
}

int svcalloc_init(struct store *s, const char *cidr, struct err *e)
{
	int r;

	svcalloc_fini();
	sa = calloc(1, sizeof(*sa));
	if (!sa)
		return -ENOMEM;
	sa->store = s;
	if (svcip_range_parse(cidr, &sa->range) < 0) {
		svcalloc_fini();
		return err_set(e, EINVAL, 0, "", "invalid service CIDR %s", cidr);
	}
	sa->ips = calloc(sa->range.size, 1);
	if (!sa->ips) {
		svcalloc_fini();
		return -ENOMEM;
	}
	store_list(s, "services", NULL, NULL, NULL, seed_one, NULL);
	r = store_watch_add(s, "services", 0, on_event, NULL, &sa->watch);
	if (r < 0)
		svcalloc_fini();
	return r;
}

void svcalloc_fini(void)
{
	if (!sa)
		return;
	if (sa->watch)
		store_watch_cancel(sa->watch);
	free(sa->ips);
	free(sa);
	sa = NULL;
}

static bool ip_used(uint32_t ip, void *ud)
{
	return sa->ips[ip - sa->range.net] != 0;
}

static int assign_ip(cJSON *spec, const char *key, struct err *e)
{
	const char *want = json_str(spec, "clusterIP", "");
	char buf[16];
	uint32_t ip;
	int r;

	if (streq(want, "None"))
		return 0;
	if (*want) {
		if (svcip_parse(want, &ip) < 0)
			return 0; /* validation reports the malformed address */
		if (!svcip_range_contains(&sa->range, ip)) {
			err_set(e, EINVAL, 422, "Invalid",
				"Service \"%s\" is invalid: spec.clusterIPs: Invalid value: \"%s\": "
				"failed to allocate IP %s: the provided IP (%s) is not in the valid "
				"range. The range of valid IPs is %s",
				strchr(key, '/') + 1, want, want, want, "the service CIDR");
			err_cause(e, "FieldValueInvalid", "spec.clusterIPs",
				  "provided IP is not in the valid range");
			return -EINVAL;
		}
		if (ip_used(ip, NULL)) {
			err_set(e, EINVAL, 422, "Invalid",
				"Service \"%s\" is invalid: spec.clusterIPs: Invalid value: \"%s\": "
				"failed to allocate IP %s: provided IP is already allocated",
				strchr(key, '/') + 1, want, want);
			err_cause(e, "FieldValueInvalid", "spec.clusterIPs",
				  "provided IP is already allocated");
			return -EINVAL;
		}
	} else {
		r = svcip_pick(&sa->range, key, ip_used, NULL, &ip);
		if (r < 0)
			return err_set(e, ENOSPC, 500, "InternalError",
				       "Internal error occurred: failed to allocate a serviceIP: "
				       "range is full");
		svcip_format(ip, buf, sizeof(buf));
		json_set_str(spec, "clusterIP", buf);
		want = json_str(spec, "clusterIP", "");
	}
	json_set(spec, "clusterIPs", cJSON_CreateStringArray(&want, 1));
	return 0;
}

static int assign_ports(const cJSON *ospec, cJSON *spec, const char *key, struct err *e)
{
	const char *type = json_str(spec, "type", "ClusterIP");
	uint8_t taken[sizeof(sa->ports)];
	cJSON *p;
	int i = -1;

	if (!streq(type, "NodePort") && !streq(type, "LoadBalancer"))
		return 0;
	memcpy(taken, sa->ports, sizeof(taken));
	/* the nodePorts the stored object holds are this service's own to keep or reuse */
	cJSON_ArrayForEach(p, json_path(ospec, "ports"))
	{
		int64_t np = json_int(p, "nodePort", 0);
		if (np >= SVC_NODEPORT_MIN && np <= SVC_NODEPORT_MAX)
			BIT_CLR(taken, np - SVC_NODEPORT_MIN);
	}
	/* explicit nodePorts first, so automatic ones do not take them */
	cJSON_ArrayForEach(p, json_path(spec, "ports"))
	{
		int64_t np = json_int(p, "nodePort", 0);
		i++;
		if (!np)
			continue;
		if (np < SVC_NODEPORT_MIN || np > SVC_NODEPORT_MAX || BIT_GET(taken, np - SVC_NODEPORT_MIN)) {
			char field[64];
			snprintf(field, sizeof(field), "spec.ports[%d].nodePort", i);
			err_set(e, EINVAL, 422, "Invalid",
				"Service \"%s\" is invalid: %s: Invalid value: %lld: %s",
				strchr(key, '/') + 1, field, (long long)np,
				np < SVC_NODEPORT_MIN || np > SVC_NODEPORT_MAX
					? "provided port is not in the valid range. The range of valid ports is 30000-32767"
					: "provided port is already allocated");
			err_cause(e, "FieldValueInvalid", field, "%s",
				  np < SVC_NODEPORT_MIN || np > SVC_NODEPORT_MAX
					  ? "provided port is not in the valid range"
					  : "provided port is already allocated");
			return -EINVAL;
		}
		BIT_SET(taken, np - SVC_NODEPORT_MIN);
	}
	/* a LoadBalancer with allocateLoadBalancerNodePorts false keeps only explicit ones */
	cJSON_ArrayForEach(p, (needs_node_ports(spec) ? json_path(spec, "ports") : NULL))
	{
		if (json_int(p, "nodePort", 0))
			continue;
		unsigned span = SVC_NODEPORT_MAX - SVC_NODEPORT_MIN + 1, start, k;
		unsigned char h[4];
		char pk[600];
		/* hashed start, like ClusterIPs: two nodes rarely pick the same port at once */
		snprintf(pk, sizeof(pk), "%s:%lld", key, (long long)json_int(p, "port", 0));
		crypto_generichash(h, sizeof(h), (const unsigned char *)pk, strlen(pk), NULL, 0);
		start = ((unsigned)h[0] | (unsigned)h[1] << 8 | (unsigned)h[2] << 16) % span;
		for (k = 0; k < span; k++)
			if (!BIT_GET(taken, (start + k) % span))
				break;
		if (k == span)
			return err_set(e, ENOSPC, 500, "InternalError",
				       "Internal error occurred: failed to allocate a nodePort: range is full");
		BIT_SET(taken, (start + k) % span);
		json_set_int(p, "nodePort", SVC_NODEPORT_MIN + (start + k) % span);
	}
	return 0;
}

int svcalloc_assign(const cJSON *old, cJSON *svc, struct err *e)
{
	cJSON *spec = json_path(svc, "spec");
	const cJSON *ospec = json_path(old, "spec");
	char key[512];
	int r;

	if (!sa || !cJSON_IsObject(spec))
		return 0;
	if (!needs_cluster_ip(spec))
		return 0;
	snprintf(key, sizeof(key), "%s/%s", json_str(svc, "metadata.namespace", "default"),
		 json_str(svc, "metadata.name", ""));
	/* an update keeps the clusterIP the stored object holds (validation made it immutable) */
	if (!old || !needs_cluster_ip(ospec) || strempty(json_str(ospec, "clusterIP", NULL))) {
		r = assign_ip(spec, key, e);
		if (r < 0)
			return r;
	}
	return assign_ports(ospec, spec, key, e);
}

int svcalloc_readdress(cJSON *svc, bool lose_ip, const int64_t *lose_ports, size_t nlose,
		       struct err *e)
{
	cJSON *spec = json_path(svc, "spec"), *p;
	uint8_t taken[sizeof(sa->ports)];
	char key[512], buf[16];
	uint32_t ip;
	int r;

	if (!sa || !cJSON_IsObject(spec))
		return -EINVAL;
	snprintf(key, sizeof(key), "%s/%s", json_str(svc, "metadata.namespace", "default"),
		 json_str(svc, "metadata.name", ""));
	if (lose_ip) {
		/* the address it holds is counted, so the search moves past it */
		r = svcip_pick(&sa->range, key, ip_used, NULL, &ip);
		if (r < 0)
			return err_set(e, ENOSPC, 500, "InternalError",
				       "failed to allocate a serviceIP: range is full");
		svcip_format(ip, buf, sizeof(buf));
		const char *v = buf;
		json_set_str(spec, "clusterIP", buf);
		json_set(spec, "clusterIPs", cJSON_CreateStringArray(&v, 1));
	}
	memcpy(taken, sa->ports, sizeof(taken));
	cJSON_ArrayForEach(p, json_path(spec, "ports"))
	{
		int64_t np = json_int(p, "nodePort", 0);
		bool lose = false;
		unsigned span = SVC_NODEPORT_MAX - SVC_NODEPORT_MIN + 1, start, k;
		unsigned char h[4];
		char pk[600];

		for (size_t i = 0; i < nlose; i++)
			lose |= np && np == lose_ports[i];
		if (!lose)
			continue;
		snprintf(pk, sizeof(pk), "%s:%lld", key, (long long)json_int(p, "port", 0));
		crypto_generichash(h, sizeof(h), (const unsigned char *)pk, strlen(pk), NULL, 0);
		start = ((unsigned)h[0] | (unsigned)h[1] << 8 | (unsigned)h[2] << 16) % span;
		for (k = 0; k < span; k++)
			if (!BIT_GET(taken, (start + k) % span))
				break;
		if (k == span)
			return err_set(e, ENOSPC, 500, "InternalError",
				       "failed to allocate a nodePort: range is full");
		BIT_SET(taken, (start + k) % span);
		json_set_int(p, "nodePort", SVC_NODEPORT_MIN + (start + k) % span);
	}
	return 0;
}

/* --- type changes (pkg/registry/core/service/strategy.go) --- */

static void drop(cJSON *o, const char *k)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, k);
}

static bool same_field(const cJSON *a, const cJSON *b, const char *k)
{
	const cJSON *x = json_path(a, k), *y = json_path(b, k);

	if (!x || cJSON_IsNull(x) || !y || cJSON_IsNull(y))
		return (!x || cJSON_IsNull(x)) && (!y || cJSON_IsNull(y));
	return cJSON_Compare(x, y, true);
}

static bool same_node_ports(const cJSON *ospec, const cJSON *spec)
{
	const cJSON *op = json_path(ospec, "ports"), *np = json_path(spec, "ports");
	int n = cJSON_GetArraySize(np);

	if (n != cJSON_GetArraySize(op))
		return false;
	for (int i = 0; i < n; i++)
		if (json_int(cJSON_GetArrayItem(op, i), "nodePort", 0) !=
		    json_int(cJSON_GetArrayItem(np, i), "nodePort", 0))
			return false;
	return true;
}

/* apiservice.ExternallyAccessible */
static bool externally_accessible(const cJSON *spec)
{
	const char *type = json_str(spec, "type", "ClusterIP");

	return streq(type, "NodePort") || streq(type, "LoadBalancer") ||
	       (streq(type, "ClusterIP") && cJSON_GetArraySize(json_path(spec, "externalIPs")) > 0);
}

void svcalloc_prepare_update(const cJSON *old, cJSON *svc)
{
	const cJSON *ospec = json_path(old, "spec"), *p;
	cJSON *spec = json_path(svc, "spec"), *q;

	if (!cJSON_IsObject(ospec) || !cJSON_IsObject(spec))
		return;
	/* dropTypeDependentFields: wipe what no longer applies, unless the user changed it */
	if (needs_cluster_ip(ospec) && !needs_cluster_ip(spec)) {
		if (same_field(ospec, spec, "clusterIP") && same_field(ospec, spec, "clusterIPs")) {
			drop(spec, "clusterIP");
			drop(spec, "clusterIPs");
		}
		if (same_field(ospec, spec, "ipFamilies"))
			drop(spec, "ipFamilies");
		if (same_field(ospec, spec, "ipFamilyPolicy"))
			drop(spec, "ipFamilyPolicy");
	}
	if (needs_node_ports(ospec) && !needs_node_ports(spec) && same_node_ports(ospec, spec)) {
		cJSON_ArrayForEach(q, json_path(spec, "ports")) if (cJSON_IsObject(q))
			drop(q, "nodePort");
	}
	if (externally_accessible(ospec) && !externally_accessible(spec) &&
	    same_field(ospec, spec, "externalTrafficPolicy"))
		drop(spec, "externalTrafficPolicy");

	/* patchAllocatedValues: an update that leaves allocated values out keeps them */
	if (needs_cluster_ip(ospec) && needs_cluster_ip(spec)) {
		const cJSON *oc = json_path(ospec, "clusterIP"), *ocs = json_path(ospec, "clusterIPs");
		if (strempty(json_str(spec, "clusterIP", NULL)) && cJSON_IsString(oc) &&
		    *oc->valuestring)
			json_set(spec, "clusterIP", cJSON_Duplicate(oc, true));
		if (cJSON_GetArraySize(json_path(spec, "clusterIPs")) == 0 &&
		    cJSON_GetArraySize(ocs) > 0)
			json_set(spec, "clusterIPs", cJSON_Duplicate(ocs, true));
	}
	if (needs_node_ports(ospec) && needs_node_ports(spec)) {
		cJSON_ArrayForEach(q, json_path(spec, "ports"))
		{
			int64_t want = 0;
			bool used = false;
			const cJSON *r;

			if (!cJSON_IsObject(q) || json_int(q, "nodePort", 0))
				continue;
			/* by name: the user may have changed anything else about the port */
			cJSON_ArrayForEach(p, json_path(ospec, "ports"))
			if (streq(json_str(p, "name", ""), json_str(q, "name", "")))
				want = json_int(p, "nodePort", 0);
			/* unless another port of the update still uses it */
			cJSON_ArrayForEach(r, json_path(spec, "ports"))
			if (want && json_int(r, "nodePort", 0) == want)
				used = true;
			if (want && !used)
				json_set_int(q, "nodePort", want);
		}
	}
}
