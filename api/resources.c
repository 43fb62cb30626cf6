// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "api/resources.h"
#include "lib/macro.h"

#define SN(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define FS(...) ((const char *const[]){ "metadata.name", "metadata.namespace", ##__VA_ARGS__, NULL })

const struct api_resource api_resources[] = {
	{ "", "v1", "v1", "namespaces", "namespace", "Namespace", "NamespaceList", "namespaces",
	  .has_status = true, .verbs = API_VERB_CREATE | API_VERB_DELETE | API_VERB_GET |
					API_VERB_LIST | API_VERB_PATCH | API_VERB_UPDATE |
					API_VERB_WATCH,
	  .short_names = SN("ns"), .field_selectors = FS("status.phase") },
	{ "", "v1", "v1", "nodes", "node", "Node", "NodeList", "nodes", .has_status = true,
	  .verbs = API_VERBS_ALL, .short_names = SN("no"), .field_selectors = FS("spec.unschedulable") },
	{ "", "v1", "v1", "pods", "pod", "Pod", "PodList", "pods", .namespaced = true,
	  .has_status = true, .in_all = true, .verbs = API_VERBS_ALL, .short_names = SN("po"),
	  .field_selectors = FS("spec.nodeName", "status.phase", "spec.restartPolicy",
				"spec.schedulerName", "spec.serviceAccountName", "status.podIP",
				"status.nominatedNodeName") },
	{ "", "v1", "v1", "services", "service", "Service", "ServiceList", "services",
	  .namespaced = true, .has_status = true, .in_all = true,
	  .verbs = API_VERBS_ALL, .short_names = SN("svc"), .field_selectors = FS() },
	{ "", "v1", "v1", "configmaps", "configmap", "ConfigMap", "ConfigMapList", "configmaps",
	  .namespaced = true, .verbs = API_VERBS_ALL, .short_names = SN("cm"),
	  .field_selectors = FS() },
	{ "", "v1", "v1", "secrets", "secret", "Secret", "SecretList", "secrets",
	  .namespaced = true, .verbs = API_VERBS_ALL, .field_selectors = FS("type") },
	{ "", "v1", "v1", "events", "event", "Event", "EventList", "events", .namespaced = true,
	  .verbs = API_VERBS_ALL, .short_names = SN("ev"),
	  .field_selectors = FS("involvedObject.kind", "involvedObject.namespace",
				"involvedObject.name", "involvedObject.uid",
				"involvedObject.apiVersion", "involvedObject.resourceVersion",
				"involvedObject.fieldPath", "reason", "reportingComponent",
				"source", "type") },
	{ "", "v1", "v1", "endpoints", "endpoints", "Endpoints", "EndpointsList", "endpoints",
	  .namespaced = true, .verbs = API_VERBS_READ, .read_only = true,
	  .short_names = SN("ep"), .field_selectors = FS() },
	{ "apps", "v1", "apps/v1", "deployments", "deployment", "Deployment", "DeploymentList",
	  "deployments.apps", .namespaced = true, .has_status = true, .has_scale = true,
	  .in_all = true, .verbs = API_VERBS_ALL, .short_names = SN("deploy"),
	  .field_selectors = FS() },
	{ "apps", "v1", "apps/v1", "replicasets", "replicaset", "ReplicaSet", "ReplicaSetList",
	  "replicasets.apps", .namespaced = true, .has_status = true, .has_scale = true,
	  .in_all = true, .verbs = API_VERBS_ALL, .short_names = SN("rs"),
	  .field_selectors = FS("status.replicas") },
	{ "apps", "v1", "apps/v1", "daemonsets", "daemonset", "DaemonSet", "DaemonSetList",
	  "daemonsets.apps", .namespaced = true, .has_status = true, .in_all = true,
	  .verbs = API_VERBS_ALL, .short_names = SN("ds"), .field_selectors = FS() },
	{ "apps", "v1", "apps/v1", "controllerrevisions", "controllerrevision", "ControllerRevision",
	  "ControllerRevisionList", "controllerrevisions.apps", .namespaced = true,
	  .verbs = API_VERBS_ALL, .field_selectors = FS() },
	{ "batch", "v1", "batch/v1", "jobs", "job", "Job", "JobList", "jobs.batch",
	  .namespaced = true, .has_status = true, .in_all = true, .verbs = API_VERBS_ALL,
	  .field_selectors = FS("status.successful") },
	{ "policy", "v1", "policy/v1", "poddisruptionbudgets", "poddisruptionbudget",
	  "PodDisruptionBudget", "PodDisruptionBudgetList", "poddisruptionbudgets.policy",
	  .namespaced = true, .has_status = true, .verbs = API_VERBS_ALL, .short_names = SN("pdb"),
	  .field_selectors = FS() },
	/* derived on every node from Services and ready Pods, like Endpoints */
	{ "discovery.k8s.io", "v1", "discovery.k8s.io/v1", "endpointslices", "endpointslice",
	  "EndpointSlice", "EndpointSliceList", "endpointslices.discovery.k8s.io",
	  .namespaced = true, .verbs = API_VERBS_READ, .read_only = true,
	  .field_selectors = FS() },
};
const size_t api_resources_count = ARRAY_SIZE(api_resources);

const struct api_group_version api_group_versions[] = {
	{ "", "v1" },
	{ "apps", "v1" },
	{ "batch", "v1" },
	{ "discovery.k8s.io", "v1" },
	{ "policy", "v1" },
};
const size_t api_group_versions_count = ARRAY_SIZE(api_group_versions);

const struct api_resource *api_resource_find(const char *group, const char *version,
					     const char *plural)
{
	for (size_t i = 0; i < api_resources_count; i++) {
		const struct api_resource *r = &api_resources[i];
		if (streq(r->group, group) && streq(r->version, version) && streq(r->plural, plural))
			return r;
	}
	return NULL;
}

const struct api_resource *api_resource_by_kind(const char *api_version, const char *kind)
{
	if (!api_version || !kind)
		return NULL;
	for (size_t i = 0; i < api_resources_count; i++) {
		const struct api_resource *r = &api_resources[i];
		if (streq(r->group_version, api_version) && streq(r->kind, kind))
			return r;
	}
	return NULL;
}

const struct api_resource *api_resource_by_key(const char *key)
{
	for (size_t i = 0; i < api_resources_count; i++)
		if (streq(api_resources[i].key, key))
			return &api_resources[i];
	return NULL;
}

size_t api_verbs_names(unsigned verbs, const char **out, size_t max)
{
	static const char *const names[] = { "create", "delete", "deletecollection", "get",
					     "list",   "patch",  "update",           "watch" };
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(names) && n < max; i++)
		if (verbs & (1u << i))
			out[n++] = names[i];
	return n;
}
