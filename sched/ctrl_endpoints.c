// SPDX-License-Identifier: Apache-2.0
/*
 * Endpoints: for each Service with a selector, the ready pods (addresses) and the not-ready ones
 * (notReadyAddresses) it selects, with targetPort resolved by number or by the pod's named
 * container port. Terminating pods leave the ready set at once (clients drain existing
 * connections; new ones go elsewhere). Written as core/v1 Endpoints owned by the service's owner.
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

static int ep_reconcile(struct ctrl_mgr *m, const char *ns, const char *name, cJSON *svc)
{
	_cleanup_(label_selector_freep) struct label_selector *sel = NULL;
	_cleanup_json_ cJSON *pods = NULL, *ep = NULL;
	struct store_obj *cur = NULL;
	struct err e = { 0 };
	cJSON *pod, *subsets, *s, *md;
	int r;

	if (!svc || ctrl_terminating(svc)) {
		/* the Endpoints of a deleted service go with it */
		r = store_get(ctrl_store(m), "endpoints", ns, name, &cur);
		if (r == 0) {
			store_obj_unref(cur);
			return ctrl_delete(m, "endpoints", ns, name, NULL);
		}
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

	ep = cJSON_CreateObject();
	cJSON_AddStringToObject(ep, "apiVersion", "v1");
	cJSON_AddStringToObject(ep, "kind", "Endpoints");
	md = cJSON_AddObjectToObject(ep, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", ns);
	if (json_path(svc, "metadata.labels"))
		cJSON_AddItemToObject(md, "labels",
				      cJSON_Duplicate(json_path(svc, "metadata.labels"), 1));
	subsets = cJSON_AddArrayToObject(ep, "subsets");

	cJSON_ArrayForEach(pod, pods)
	{
		cJSON *ports = cJSON_CreateArray(), *sp;
		bool ok = true;

		if (!json_str(pod, "status.podIP", NULL) || ctrl_terminating(pod) ||
		    !ctrl_pod_active(pod)) {
			cJSON_Delete(ports);
			continue;
		}
		cJSON_ArrayForEach(sp, json_path(svc, "spec.ports"))
		{
			int64_t port = resolve_port(sp, pod);
			cJSON *p;
			if (!port) {
				ok = false;
				break;
			}
			p = cJSON_CreateObject();
			if (json_str(sp, "name", NULL))
				cJSON_AddStringToObject(p, "name", json_str(sp, "name", ""));
			cJSON_AddNumberToObject(p, "port", (double)port);
			cJSON_AddStringToObject(p, "protocol", json_str(sp, "protocol", "TCP"));
			cJSON_AddItemToArray(ports, p);
		}
		if (!ok) {
			cJSON_Delete(ports);
			continue;
		}
		s = subset_for(subsets, ports);
		cJSON_AddItemToArray(json_path(s, ctrl_pod_ready(pod) ? "addresses"
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

	r = store_get(ctrl_store(m), "endpoints", ns, name, &cur);
	if (r == -ENOENT)
		return api_obj_create(ctrl_store(m), ep, NULL, &e);
	if (r < 0)
		return r;
	_cleanup_json_ cJSON *old = store_obj_parse(cur);
	store_obj_unref(cur);
	if (!old)
		return -ENOMEM;
	_cleanup_free_ char *a = json_canonical(json_path(old, "subsets"));
	_cleanup_free_ char *b = json_canonical(json_path(ep, "subsets"));
	if (a && b && streq(a, b))
		return 0;
	json_set(json_path(ep, "metadata"), "resourceVersion",
		 cJSON_Duplicate(json_path(old, "metadata.resourceVersion"), 1));
	json_set(json_path(ep, "metadata"), "uid",
		 cJSON_Duplicate(json_path(old, "metadata.uid"), 1));
	json_set(json_path(ep, "metadata"), "creationTimestamp",
		 cJSON_Duplicate(json_path(old, "metadata.creationTimestamp"), 1));
	return api_obj_update(ctrl_store(m), ep, NULL, &e);
}

struct svc_scan {
	struct ctrl_mgr *m;
	const cJSON *labels[2];
};

static int svc_match(struct store_obj *o, void *userdata)
{
	struct svc_scan *c = userdata;
	_cleanup_json_ cJSON *svc = NULL;
	cJSON *sel, *kv;

	if (!strstr(o->json, "\"selector\""))
		return 0;
	svc = store_obj_parse(o);
	sel = json_path(svc, "spec.selector");
	if (!cJSON_IsObject(sel) || !sel->child)
		return 0;
	for (int i = 0; i < 2; i++) {
		bool all = c->labels[i] != NULL;
		cJSON_ArrayForEach(kv, sel)
		{
			const char *v = json_str(c->labels[i], kv->string, NULL);
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
	struct svc_scan c = { m, { ev->obj->labels, ev->old ? ev->old->labels : NULL } };

	store_list(ctrl_store(m), "services", ev->obj->ns, NULL, NULL, svc_match, &c);
}

const struct ctrl_ops ctrl_endpoints_ops = {
	.resource = "services",
	.kind = "Service",
	.api_version = "v1",
	.reconcile = ep_reconcile,
};
