// SPDX-License-Identifier: Apache-2.0
/*
 * Endpoints: for each Service with a selector, the ready pods (addresses) and the not-ready ones
 * (notReadyAddresses) it selects, with targetPort resolved by number or by the pod's named
 * container port. Terminating pods leave the ready set at once (clients drain existing
 * connections; new ones go elsewhere). A pod on a node gossip holds dead or gone is not ready,
 * whatever its node last wrote (Kubernetes' node lifecycle controller marks it NotReady; the
 * node's own datapath takes a suspect node's backends out of rotation sooner, daemon/services.c).
 * Written as core/v1 Endpoints owned by the service's owner.
 */
#include <string.h>

#include "api/object.h"
#include "lib/macro.h"
#include "sched/ctrl-internal.h"

DEFINE_CLEANUP_FUNC(struct label_selector, label_selector_free)

/* targetPort for one service port on one pod; 0 if the pod has no such named port. */
static int64_t resolve_port(const cJSON *svc_port, const cJSON *pod)
{
	cJSON *tp = json_path(svc_port, "targetPort"), *c, *p;

	if (cJSON_IsNumber(tp))
		return (int64_t)tp->valuedouble;
	if (!cJSON_IsString(tp))
		return json_int(svc_port, "port", 0);
	char *end;
	long n = strtol(tp->valuestring, &end, 10);
	if (!*end && end != tp->valuestring)
		return n;
	cJSON_ArrayForEach(c, json_path(pod, "spec.containers"))
		cJSON_ArrayForEach(p, json_path(c, "ports")) if (streq(json_str(p, "name", ""),
								       tp->valuestring)) return
			json_int(p, "containerPort", 0);
	return 0;
}

static cJSON *address_new(const cJSON *pod)
{
	cJSON *a = cJSON_CreateObject(), *ref;

	cJSON_AddStringToObject(a, "ip", json_str(pod, "status.podIP", ""));
	if (json_str(pod, "spec.nodeName", NULL))
		cJSON_AddStringToObject(a, "nodeName", json_str(pod, "spec.nodeName", ""));
	ref = cJSON_AddObjectToObject(a, "targetRef");
	cJSON_AddStringToObject(ref, "kind", "Pod");
	cJSON_AddStringToObject(ref, "namespace", json_str(pod, "metadata.namespace", ""));
	cJSON_AddStringToObject(ref, "name", json_str(pod, "metadata.name", ""));
	cJSON_AddStringToObject(ref, "uid", json_str(pod, "metadata.uid", ""));
	return a;
}

/* The subset for this exact list of ports, created if missing. */
static cJSON *subset_for(cJSON *subsets, cJSON *ports)
{
	_cleanup_free_ char *want = json_canonical(ports);
	cJSON *s;

	cJSON_ArrayForEach(s, subsets)
	{
		_cleanup_free_ char *have = json_canonical(json_path(s, "ports"));
		if (want && have && streq(want, have)) {
			cJSON_Delete(ports);
			return s;
		}
	}
	s = cJSON_CreateObject();
	cJSON_AddArrayToObject(s, "addresses");
	cJSON_AddArrayToObject(s, "notReadyAddresses");
	cJSON_AddItemToObject(s, "ports", ports);
	cJSON_AddItemToArray(subsets, s);
	return s;
}

#define SLICE_LABEL "kubernetes.io/service-name"

/* The service's ports resolved for one pod, or NULL if a named targetPort is missing on it. */
static cJSON *pod_ports(const cJSON *svc, const cJSON *pod)
{
	cJSON *ports = cJSON_CreateArray(), *sp;

	cJSON_ArrayForEach(sp, json_path(svc, "spec.ports"))
	{
		int64_t port = resolve_port(sp, pod);
		cJSON *p;
		if (!port) {
			cJSON_Delete(ports);
			return NULL;
		}
		p = cJSON_CreateObject();
		if (json_str(sp, "name", NULL))
			cJSON_AddStringToObject(p, "name", json_str(sp, "name", ""));
		cJSON_AddNumberToObject(p, "port", (double)port);
		cJSON_AddStringToObject(p, "protocol", json_str(sp, "protocol", "TCP"));
		cJSON_AddItemToArray(ports, p);
	}
	return ports;
}

static cJSON *derived_new(const char *api_version, const char *kind, const char *ns,
			  const char *name, const cJSON *labels)
{
	cJSON *o = cJSON_CreateObject(), *md;

	cJSON_AddStringToObject(o, "apiVersion", api_version);
	cJSON_AddStringToObject(o, "kind", kind);
	md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", ns);
	cJSON_AddItemToObject(md, "labels", labels ? cJSON_Duplicate(labels, 1)
						   : cJSON_CreateObject());
	return o;
}

/* Create `obj`, or update the stored one if any of `fields` differ (derived objects). */
static int derived_put(struct ctrl_mgr *m, const char *resource, cJSON *obj,
		       const char *const *fields)
{
	const char *ns = json_str(obj, "metadata.namespace", ""),
		   *name = json_str(obj, "metadata.name", "");
	struct store_obj *cur = NULL;
	struct err e = { 0 };
	bool same = true;
	int r;

	r = store_get(ctrl_store(m), resource, ns, name, &cur);
	if (r == -ENOENT)
		return api_obj_create(ctrl_store(m), obj, NULL, &e);
	if (r < 0)
		return r;
	_cleanup_json_ cJSON *old = store_obj_parse(cur);
	store_obj_unref(cur);
	if (!old)
		return -ENOMEM;
	for (size_t i = 0; fields[i] && same; i++) {
		_cleanup_free_ char *a = json_canonical(json_path(old, fields[i]));
		_cleanup_free_ char *b = json_canonical(json_path(obj, fields[i]));
		same = a && b && streq(a, b);
	}
	if (same)
		return 0;
	static const char *const keep[] = { "resourceVersion", "uid", "creationTimestamp" };
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		json_set(json_path(obj, "metadata"), keep[i],
			 cJSON_Duplicate(cJSON_GetObjectItem(json_path(old, "metadata"), keep[i]),
					 1));
	return api_obj_update(ctrl_store(m), obj, NULL, &e);
}

/* core/v1 Endpoints: ready pods in addresses, the others in notReadyAddresses, one subset per
 * resolved port list; terminating pods are left out. */
static int endpoints_put(struct ctrl_mgr *m, const cJSON *svc, const char *ns, const char *name,
			 const cJSON *pods)
{
	static const char *const fields[] = { "subsets", "metadata.labels", NULL };
	_cleanup_json_ cJSON *ep = derived_new("v1", "Endpoints", ns, name,
					      json_path(svc, "metadata.labels"));
	cJSON *subsets = cJSON_AddArrayToObject(ep, "subsets"), *pod, *s;

	cJSON_ArrayForEach(pod, pods)
	{
		cJSON *ports;
		if (!json_str(pod, "status.podIP", NULL) || ctrl_terminating(pod) ||
		    !ctrl_pod_active(pod) || !(ports = pod_ports(svc, pod)))
			continue;
		s = subset_for(subsets, ports);
		cJSON_AddItemToArray(json_path(s, ctrl_pod_ready_live(m, pod) ? "addresses"
									    : "notReadyAddresses"),
				     address_new(pod));
	}
	/* Kubernetes omits empty lists */
	cJSON_ArrayForEach(s, subsets)
	{
		if (!cJSON_GetArraySize(json_path(s, "addresses")))
			cJSON_DeleteItemFromObject(s, "addresses");
		if (!cJSON_GetArraySize(json_path(s, "notReadyAddresses")))
			cJSON_DeleteItemFromObject(s, "notReadyAddresses");
	}
	if (!cJSON_GetArraySize(subsets))
		cJSON_DeleteItemFromObject(ep, "subsets");
	return derived_put(m, "endpoints", ep, fields);
}

/* discovery.k8s.io/v1 EndpointSlices: one per resolved port list, named <svc>-<hash of the
 * ports>, with ready/serving/terminating conditions — terminating pods stay listed (not ready)
 * so consumers can drain them. Slices of the service that no longer apply are deleted. */
static int slices_put(struct ctrl_mgr *m, const cJSON *svc, const char *ns, const char *name,
		      const cJSON *pods)
{
	static const char *const fields[] = { "endpoints", "ports", NULL };
	_cleanup_json_ cJSON *slices = cJSON_CreateArray(), *labels = cJSON_CreateObject(),
			     *old = NULL;
	const cJSON *pod;
	cJSON *sl;
	int r = 0;

	cJSON_AddStringToObject(labels, SLICE_LABEL, name);
	cJSON_AddStringToObject(labels, "endpointslice.kubernetes.io/managed-by", "shoald");
	cJSON_ArrayForEach(pod, pods)
	{
		_cleanup_json_ cJSON *ports = NULL;
		_cleanup_free_ char *key = NULL;
		cJSON *ep, *cond, *ref;
		const char *ip = json_str(pod, "status.podIP", NULL);
		char sname[300], h[8];
		uint32_t hv = 2166136261u;

		if (!ip || !(ctrl_pod_active(pod) || ctrl_terminating(pod)) ||
		    !(ports = pod_ports(svc, pod)) || !(key = json_canonical(ports)))
			continue;
		for (const char *c = key; *c; c++) /* FNV-1a: a stable, short name suffix */
			hv = (hv ^ (uint8_t)*c) * 16777619u;
		snprintf(h, sizeof(h), "%05x", hv & 0xfffff);
		snprintf(sname, sizeof(sname), "%.240s-%s", name, h);
		sl = NULL;
		cJSON_ArrayForEach(ep, slices) if (streq(json_str(ep, "metadata.name", ""), sname)) sl =
			ep;
		if (!sl) {
			sl = derived_new("discovery.k8s.io/v1", "EndpointSlice", ns, sname, labels);
			cJSON_AddStringToObject(sl, "addressType", "IPv4");
			cJSON_AddArrayToObject(sl, "endpoints");
			cJSON_AddItemToObject(sl, "ports", TAKE_PTR(ports));
			cJSON_AddItemToArray(
				cJSON_AddArrayToObject(json_path(sl, "metadata"), "ownerReferences"),
				ctrl_owner_ref_new("v1", "Service", svc, true));
			cJSON_AddItemToArray(slices, sl);
		}
		ep = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(ep, "addresses"), cJSON_CreateString(ip));
		cond = cJSON_AddObjectToObject(ep, "conditions");
		bool ready = ctrl_pod_ready_live(m, pod), term = ctrl_terminating(pod);
		cJSON_AddBoolToObject(cond, "ready", ready && !term);
		cJSON_AddBoolToObject(cond, "serving", ready);
		cJSON_AddBoolToObject(cond, "terminating", term);
		if (json_str(pod, "spec.nodeName", NULL))
			cJSON_AddStringToObject(ep, "nodeName", json_str(pod, "spec.nodeName", ""));
		ref = cJSON_AddObjectToObject(ep, "targetRef");
		cJSON_AddStringToObject(ref, "kind", "Pod");
		cJSON_AddStringToObject(ref, "namespace", ns);
		cJSON_AddStringToObject(ref, "name", json_str(pod, "metadata.name", ""));
		cJSON_AddStringToObject(ref, "uid", json_str(pod, "metadata.uid", ""));
		cJSON_AddItemToArray(json_path(sl, "endpoints"), ep);
	}
	/* a service without endpoints still has one (empty) slice, as in Kubernetes */
	if (!cJSON_GetArraySize(slices)) {
		char sname[300];
		snprintf(sname, sizeof(sname), "%.240s-empty", name);
		sl = derived_new("discovery.k8s.io/v1", "EndpointSlice", ns, sname, labels);
		cJSON_AddStringToObject(sl, "addressType", "IPv4");
		cJSON_AddArrayToObject(sl, "endpoints");
		cJSON_AddArrayToObject(sl, "ports");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(json_path(sl, "metadata"),
							    "ownerReferences"),
				     ctrl_owner_ref_new("v1", "Service", svc, true));
		cJSON_AddItemToArray(slices, sl);
	}
	cJSON_ArrayForEach(sl, slices)
	{
		int k = derived_put(m, "endpointslices.discovery.k8s.io", sl, fields);
		if (k < 0)
			r = k;
	}
	/* drop the service's slices that are not in the new set */
	_cleanup_(label_selector_freep) struct label_selector *mine = NULL;
	char selstr[320];
	snprintf(selstr, sizeof(selstr), SLICE_LABEL "=%s", name);
	if (label_selector_parse(selstr, &mine, NULL) < 0 ||
	    ctrl_list(m, "endpointslices.discovery.k8s.io", ns, mine, NULL, &old) < 0)
		return r;
	cJSON_ArrayForEach(sl, old)
	{
		const char *n = json_str(sl, "metadata.name", "");
		bool keep = false;
		cJSON *want;
		cJSON_ArrayForEach(want, slices) if (streq(json_str(want, "metadata.name", ""), n))
			keep = true;
		if (!keep)
			ctrl_delete(m, "endpointslices.discovery.k8s.io", ns, n, NULL);
	}
	return r;
}

static int ep_reconcile(struct ctrl_mgr *m, const char *ns, const char *name, cJSON *svc)
{
	_cleanup_(label_selector_freep) struct label_selector *sel = NULL;
	_cleanup_json_ cJSON *pods = NULL, *slices = NULL;
	struct store_obj *cur = NULL;
	cJSON *sl;
	int r;

	if (!svc || ctrl_terminating(svc)) {
		/* the Endpoints and EndpointSlices of a deleted service go with it */
		_cleanup_(label_selector_freep) struct label_selector *mine = NULL;
		char selstr[320];
		if (store_get(ctrl_store(m), "endpoints", ns, name, &cur) == 0) {
			store_obj_unref(cur);
			ctrl_delete(m, "endpoints", ns, name, NULL);
		}
		snprintf(selstr, sizeof(selstr), SLICE_LABEL "=%s", name);
		if (label_selector_parse(selstr, &mine, NULL) >= 0 &&
		    ctrl_list(m, "endpointslices.discovery.k8s.io", ns, mine, NULL, &slices) >= 0)
			cJSON_ArrayForEach(sl, slices)
				ctrl_delete(m, "endpointslices.discovery.k8s.io", ns,
					    json_str(sl, "metadata.name", ""), NULL);
		return 0;
	}
	if (!cJSON_IsObject(json_path(svc, "spec.selector")) ||
	    !json_path(svc, "spec.selector")->child)
		return 0; /* no selector: endpoints are the user's to manage */
	/* a Service selector is a bare label map: the matchLabels of a LabelSelector */
	_cleanup_json_ cJSON *wrapped = cJSON_CreateObject();
	if (!wrapped)
		return -ENOMEM;
	cJSON_AddItemToObject(wrapped, "matchLabels",
			      cJSON_Duplicate(json_path(svc, "spec.selector"), 1));
	r = label_selector_from_json(wrapped, "spec.selector", &sel, NULL);
	if (r < 0)
		return 0;
	r = ctrl_list(m, "pods", ns, sel, NULL, &pods);
	if (r < 0)
		return r;
	r = endpoints_put(m, svc, ns, name, pods);
	int r2 = slices_put(m, svc, ns, name, pods);
	return r < 0 ? r : r2;
}

/*
 * Which services select a pod: every pod event asks, so the services' selectors are kept parsed
 * (keyed by namespace/name, refreshed when the service's resourceVersion moves) instead of
 * parsing every service of the namespace per event.
 */
struct sel_entry {
	struct sel_entry *next;
	char *key;     /* ns/name */
	uint64_t rv;
	cJSON *sel;    /* spec.selector, NULL: none */
};

#define SEL_BUCKETS 1024

struct ctrl_sel_cache {
	struct sel_entry *b[SEL_BUCKETS];
};

static unsigned sel_hash(const char *ns, const char *name)
{
	uint32_t h = 2166136261u;
	for (const char *p = ns; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % SEL_BUCKETS;
}

static struct sel_entry *sel_get(struct ctrl_sel_cache *c, const struct store_obj *o)
{
	unsigned h = sel_hash(o->ns, o->name);
	struct sel_entry *e;
	char key[512];

	snprintf(key, sizeof(key), "%s/%s", o->ns, o->name);
	for (e = c->b[h]; e; e = e->next)
		if (streq(e->key, key))
			break;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->key = strdup(key))) {
			free(e);
			return NULL;
		}
		e->next = c->b[h];
		c->b[h] = e;
	} else if (e->rv == o->rv)
		return e;
	cJSON_Delete(e->sel);
	e->sel = NULL;
	e->rv = o->rv;
	if (strstr(o->json, "\"selector\"")) {
		_cleanup_json_ cJSON *svc = store_obj_parse(o);
		cJSON *sel = json_path(svc, "spec.selector");
		if (cJSON_IsObject(sel) && sel->child)
			e->sel = cJSON_DetachItemViaPointer(json_path(svc, "spec"), sel);
	}
	return e;
}

void ctrl_sel_cache_forget(struct ctrl_sel_cache *c, const char *ns, const char *name)
{
	struct sel_entry **pp, *e;
	char key[512];

	if (!c)
		return;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	for (pp = &c->b[sel_hash(ns, name)]; (e = *pp); pp = &e->next)
		if (streq(e->key, key)) {
			*pp = e->next;
			cJSON_Delete(e->sel);
			free(e->key);
			free(e);
			return;
		}
}

struct ctrl_sel_cache *ctrl_sel_cache_free(struct ctrl_sel_cache *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < SEL_BUCKETS; i++)
		while (c->b[i]) {
			struct sel_entry *e = c->b[i];
			c->b[i] = e->next;
			cJSON_Delete(e->sel);
			free(e->key);
			free(e);
		}
	free(c);
	return NULL;
}

struct svc_scan {
	struct ctrl_mgr *m;
	struct ctrl_sel_cache *cache;
	const cJSON *labels[2];
};

static int svc_match(struct store_obj *o, void *userdata)
{
	struct svc_scan *c = userdata;
	struct sel_entry *e = sel_get(c->cache, o);
	cJSON *kv;

	if (!e || !e->sel)
		return 0;
	for (int i = 0; i < 2; i++) {
		bool all = c->labels[i] != NULL;
		cJSON_ArrayForEach(kv, e->sel)
		{
			/* label keys contain dots: a map lookup, not a path */
			const char *v = json_key_str(c->labels[i], "", kv->string, NULL);
			if (!v || !cJSON_IsString(kv) || !streq(v, kv->valuestring))
				all = false;
		}
		if (all) {
			ctrl_enqueue(c->m, "services", o->ns, o->name, 0);
			return 0;
		}
	}
	return 0;
}

void ctrl_endpoints_on_pod(struct ctrl_mgr *m, const struct store_event *ev)
{
	struct ctrl_sel_cache **cache = ctrl_sel_cache(m);
	struct svc_scan c = { m, NULL, { ev->obj->labels, ev->old ? ev->old->labels : NULL } };

	if (!*cache && !(*cache = calloc(1, sizeof(**cache))))
		return;
	c.cache = *cache;
	store_list(ctrl_store(m), "services", ev->obj->ns, NULL, NULL, svc_match, &c);
}

const struct ctrl_ops ctrl_endpoints_ops = {
	.resource = "services",
	.kind = "Service",
	.api_version = "v1",
	.reconcile = ep_reconcile,
};
