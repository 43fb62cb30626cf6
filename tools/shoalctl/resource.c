// SPDX-License-Identifier: Apache-2.0
/*
 * Resource names → API paths through discovery documents (APIResourceList), the way kubectl's
 * RESTMapper does it: plural, singular, short name or kind, optionally qualified by group
 * ("deployments.apps") or version and group ("deployments.v1.apps").
 */
#include <ctype.h>
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

static void split_group_version(const char *gv, char *group, size_t glen, char *version,
				size_t vlen)
{
	const char *slash = strchr(gv, '/');

	if (slash) {
		snprintf(group, glen, "%.*s", (int)(slash - gv), gv);
		snprintf(version, vlen, "%s", slash + 1);
	} else {
		snprintf(group, glen, "%s", "");
		snprintf(version, vlen, "%s", gv);
	}
}

static void fill(const cJSON *list, const cJSON *res, struct ctl_resource *ret)
{
	const char *gv = ctl_json_str(list, "groupVersion");
	const char *singular = ctl_json_str(res, "singularName");
	const char *kind = ctl_json_str(res, "kind");
	const char *g = ctl_json_str(res, "group"), *v = ctl_json_str(res, "version");

	*ret = (struct ctl_resource){};
	split_group_version(gv ? gv : "v1", ret->group, sizeof(ret->group), ret->version,
			    sizeof(ret->version));
	/* a resource may live in another group/version than its list says (rare) */
	if (g && v) {
		snprintf(ret->group, sizeof(ret->group), "%s", g);
		snprintf(ret->version, sizeof(ret->version), "%s", v);
	}
	snprintf(ret->name, sizeof(ret->name), "%s", ctl_json_str(res, "name"));
	snprintf(ret->kind, sizeof(ret->kind), "%s", kind ? kind : "");
	if (singular && *singular) {
		snprintf(ret->singular, sizeof(ret->singular), "%s", singular);
	} else {
		size_t i;

		for (i = 0; kind && kind[i] && i + 1 < sizeof(ret->singular); i++)
			ret->singular[i] = tolower((unsigned char)kind[i]);
		ret->singular[i] = 0;
	}
	ret->namespaced = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "namespaced"));
}

static bool matches(const cJSON *res, const char *name)
{
	const char *plural = ctl_json_str(res, "name");
	const char *singular = ctl_json_str(res, "singularName");
	const char *kind = ctl_json_str(res, "kind");
	const cJSON *sn;

	if (!plural || strchr(plural, '/')) /* subresources are not addressable by themselves */
		return false;
	if (streq(plural, name) || (singular && streq(singular, name)) ||
	    (kind && !strcasecmp(kind, name)))
		return true;
	cJSON_ArrayForEach(sn, cJSON_GetObjectItemCaseSensitive(res, "shortNames"))
		if (cJSON_IsString(sn) && streq(sn->valuestring, name))
			return true;
	return false;
}

int ctl_resource_resolve(const cJSON *lists, const char *arg, struct ctl_resource *ret,
			 struct err *e)
{
	char name[256], group[256] = "", version[64] = "";
	const char *dot;
	const cJSON *list;
	size_t i;

	if (strempty(arg))
		return err_set(e, EINVAL, 0, "", "resource type required");
	for (i = 0; arg[i] && i + 1 < sizeof(name); i++)
		name[i] = tolower((unsigned char)arg[i]); /* "Pods", "Deployment" work too */
	name[i] = 0;
	dot = strchr(name, '.');
	if (dot) {
		/* name.group or name.version.group; a version segment looks like v1, v1beta1 */
		const char *rest = dot + 1, *dot2 = strchr(rest, '.');

		if (dot2 && rest[0] == 'v' && isdigit((unsigned char)rest[1])) {
			snprintf(version, sizeof(version), "%.*s", (int)(dot2 - rest), rest);
			snprintf(group, sizeof(group), "%s", dot2 + 1);
		} else {
			snprintf(group, sizeof(group), "%s", rest);
		}
		name[dot - name] = 0;
	}
	for (int pass = 0; pass < 2; pass++) {
		/* first exact names (plural, singular, kind), then short names: "po" never shadows
		 * a resource whose plural is "po" elsewhere, as kubectl does */
		cJSON_ArrayForEach(list, lists) {
			const char *gv = ctl_json_str(list, "groupVersion");
			char g[256], v[64];
			const cJSON *res;

			split_group_version(gv ? gv : "v1", g, sizeof(g), v, sizeof(v));
			if (dot && !streq(g, group) && !(streq(group, "core") && !*g))
				continue;
			if (*version && !streq(v, version))
				continue;
			cJSON_ArrayForEach(res, cJSON_GetObjectItemCaseSensitive(list, "resources")) {
				const char *plural = ctl_json_str(res, "name");
				const char *singular = ctl_json_str(res, "singularName");
				const char *kind = ctl_json_str(res, "kind");
				bool hit;

				if (!plural || strchr(plural, '/'))
					continue;
				if (pass == 0)
					hit = streq(plural, name) ||
					      (singular && streq(singular, name)) ||
					      (kind && !strcasecmp(kind, name));
				else
					hit = matches(res, name);
				if (hit) {
					fill(list, res, ret);
					return 0;
				}
			}
		}
	}
	return err_set(e, ENOENT, 0, "",
		       "the server doesn't have a resource type \"%s\"", arg);
}

int ctl_resource_by_kind(const cJSON *lists, const char *api_version, const char *kind,
			 struct ctl_resource *ret, struct err *e)
{
	const cJSON *list;

	if (strempty(api_version) || strempty(kind))
		return err_set(e, EINVAL, 0, "", "object is missing apiVersion or kind");
	cJSON_ArrayForEach(list, lists) {
		const char *gv = ctl_json_str(list, "groupVersion");
		const cJSON *res;

		if (!gv || !streq(gv, api_version))
			continue;
		cJSON_ArrayForEach(res, cJSON_GetObjectItemCaseSensitive(list, "resources")) {
			const char *k = ctl_json_str(res, "kind");
			const char *plural = ctl_json_str(res, "name");

			if (k && plural && !strchr(plural, '/') && streq(k, kind)) {
				fill(list, res, ret);
				return 0;
			}
		}
	}
	return err_set(e, ENOENT, 0, "",
		       "resource mapping not found for kind \"%s\" in version \"%s\"", kind,
		       api_version);
}

int ctl_resource_path(const struct ctl_resource *r, const char *ns, const char *name, char **ret)
{
	_cleanup_free_ char *prefix = NULL, *nspart = NULL;
	int n;

	if (*r->group)
		n = asprintf(&prefix, "/apis/%s/%s", r->group, r->version);
	else
		n = asprintf(&prefix, "/api/%s", r->version);
	if (n < 0)
		return -ENOMEM;
	if (r->namespaced && ns)
		n = asprintf(&nspart, "/namespaces/%s", ns);
	else
		n = asprintf(&nspart, "%s", "");
	if (n < 0)
		return -ENOMEM;
	if (asprintf(ret, "%s%s/%s%s%s", prefix, nspart, r->name, name ? "/" : "",
		     name ? name : "") < 0)
		return -ENOMEM;
	return 0;
}

void ctl_resource_ref(const struct ctl_resource *r, char *buf, size_t len)
{
	if (*r->group)
		snprintf(buf, len, "%s.%s", r->singular, r->group);
	else
		snprintf(buf, len, "%s", r->singular);
}
