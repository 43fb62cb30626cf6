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
	uint8_t *ips;   /* bitmap over the range */
	uint8_t ports[(SVC_NODEPORT_MAX - SVC_NODEPORT_MIN + 1 + 7) / 8];
	/* how many services hold each bit: a bit clears only when no service holds it */
	struct store_watch *watch;
};

static struct svcalloc *sa;

#define BIT_SET(b, i) ((b)[(i) / 8] |= (uint8_t)(1u << ((i) % 8)))
#define BIT_CLR(b, i) ((b)[(i) / 8] &= (uint8_t) ~(1u << ((i) % 8)))
#define BIT_GET(b, i) (((b)[(i) / 8] >> ((i) % 8)) & 1)

static void mark(const char *json, bool set)
{
	_cleanup_json_ cJSON *svc = cJSON_Parse(json);
	cJSON *p;
	uint32_t ip;

	if (!svc)
		return;
	if (svcip_parse(json_str(svc, "spec.clusterIP", ""), &ip) == 0 &&
	    ip >= sa->range.net && ip < sa->range.net + sa->range.size) {
		if (set)
			BIT_SET(sa->ips, ip - sa->range.net);
		else
			BIT_CLR(sa->ips, ip - sa->range.net);
	}
	cJSON_ArrayForEach(p, json_path(svc, "spec.ports"))
	{
		int64_t np = json_int(p, "nodePort", 0);
		if (np >= SVC_NODEPORT_MIN && np <= SVC_NODEPORT_MAX) {
			if (set)
				BIT_SET(sa->ports, np - SVC_NODEPORT_MIN);
			else
				BIT_CLR(sa->ports, np - SVC_NODEPORT_MIN);
		}
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
	sa->ips = calloc(sa->range.size / 8 + 1, 1);
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
	return BIT_GET(sa->ips, ip - sa->range.net);
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

static int assign_ports(cJSON *spec, const char *key, struct err *e)
{
	const char *type = json_str(spec, "type", "ClusterIP");
	uint8_t taken[sizeof(sa->ports)];
	cJSON *p;
	int i = 0;

	if (!streq(type, "NodePort") && !streq(type, "LoadBalancer"))
		return 0;
	memcpy(taken, sa->ports, sizeof(taken));
	/* explicit nodePorts first, so automatic ones do not take them */
	cJSON_ArrayForEach(p, json_path(spec, "ports"))
	{
		int64_t np = json_int(p, "nodePort", 0);
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
		i++;
	}
	cJSON_ArrayForEach(p, json_path(spec, "ports"))
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
	char key[512];
	int r;

	if (!sa || !cJSON_IsObject(spec) || old)
		return 0;
	if (streq(json_str(spec, "type", "ClusterIP"), "ExternalName"))
		return 0;
	snprintf(key, sizeof(key), "%s/%s", json_str(svc, "metadata.namespace", "default"),
		 json_str(svc, "metadata.name", ""));
	r = assign_ip(spec, key, e);
	if (r < 0)
		return r;
	return assign_ports(spec, key, e);
}
