/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The resource registry: every kind the API serves, with what discovery, routing, the
 * store and selectors need to know about it. One static table; lookups are linear (a dozen
 * entries) and allocation-free.
 */
#ifndef SHOAL_API_RESOURCES_H
#define SHOAL_API_RESOURCES_H

#include <stdbool.h>
#include <stddef.h>

enum api_verb {
	API_VERB_CREATE = 1 << 0,
	API_VERB_DELETE = 1 << 1,
	API_VERB_DELETECOLLECTION = 1 << 2,
	API_VERB_GET = 1 << 3,
	API_VERB_LIST = 1 << 4,
	API_VERB_PATCH = 1 << 5,
	API_VERB_UPDATE = 1 << 6,
	API_VERB_WATCH = 1 << 7,
};
#define API_VERBS_ALL 0xff
#define API_VERBS_READ (API_VERB_GET | API_VERB_LIST | API_VERB_WATCH)

struct api_resource {
	const char *group;    /* "" for core */
	const char *version;  /* "v1" */
	const char *group_version; /* "v1", "apps/v1" (the apiVersion field) */
	const char *plural;   /* "pods" */
	const char *singular; /* "pod" */
	const char *kind;     /* "Pod" */
	const char *list_kind; /* "PodList" */
	const char *key;      /* store resource: "pods", "deployments.apps" */
	bool namespaced;
	bool has_status, has_scale;
	bool in_all;          /* category "all" (kubectl get all) */
	unsigned verbs;       /* what discovery advertises */
	bool read_only;       /* writes refused for users (filled by controllers) */
	const char *const *short_names;      /* NULL-terminated or NULL */
	const char *const *field_selectors;  /* NULL-terminated: supported fieldSelector paths */
};

extern const struct api_resource api_resources[];
extern const size_t api_resources_count;

/* By URL parts; group "" for /api/v1. */
const struct api_resource *api_resource_find(const char *group, const char *version,
					     const char *plural);
/* By the apiVersion + kind of an object. */
const struct api_resource *api_resource_by_kind(const char *api_version, const char *kind);
/* By store key. */
const struct api_resource *api_resource_by_key(const char *key);

/* Group-versions served, in discovery order ("v1" first). */
struct api_group_version {
	const char *group, *version;
};
extern const struct api_group_version api_group_versions[];
extern const size_t api_group_versions_count;

/* Verb names for discovery, in Kubernetes order; returns how many were written. */
size_t api_verbs_names(unsigned verbs, const char **out, size_t max);

#endif
