// SPDX-License-Identifier: Apache-2.0
/* shoalctl scale: PATCH the scale subresource, as `kubectl scale` does. */
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

int ctl_target_arg(struct ctl *c, int argc, char **argv, struct ctl_resource *ret_res,
		   const char **ret_name, struct err *e)
{
	const char *slash;
	int r;

	if (argc < 1)
		return err_set(e, EINVAL, 0, "", "error: you must specify KIND/NAME");
	slash = strchr(argv[0], '/');
	if (slash) {
		char kind[128];
		snprintf(kind, sizeof(kind), "%.*s", (int)(slash - argv[0]), argv[0]);
		r = ctl_resolve(c, kind, ret_res, e);
		*ret_name = slash + 1;
		return r < 0 ? r : 1;
	}
	if (argc < 2)
		return err_set(e, EINVAL, 0, "", "error: you must specify the name of the %s",
			       argv[0]);
	r = ctl_resolve(c, argv[0], ret_res, e);
	*ret_name = argv[1];
	return r < 0 ? r : 2;
}

int cmd_scale(struct ctl *c, int argc, char **argv)
{
	_cleanup_json_ cJSON *patch = NULL, *out = NULL;
	_cleanup_free_ char *path = NULL, *scale_path = NULL;
	struct ctl_resource res;
	const char *name;
	char ref[160];
	struct err e = {};
	int r;

	if (c->o.replicas < 0)
		return ctl_fail(&(struct err){ .message = "error: --replicas=COUNT is required" },
				-EINVAL);
	r = ctl_target_arg(c, argc, argv, &res, &name, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	if (r != argc)
		return ctl_fail(&(struct err){ .message = "error: scale takes one object" }, -EINVAL);
	r = ctl_resource_path(&res, res.namespaced ? c->namespace : NULL, name, &path);
	if (r < 0 || asprintf(&scale_path, "%s/scale", path) < 0)
		return 1;
	patch = cJSON_CreateObject();
	cJSON_AddNumberToObject(cJSON_AddObjectToObject(patch, "spec"), "replicas", c->o.replicas);
	r = ctl_request(c, "PATCH", scale_path, NULL, "application/merge-patch+json", patch, &out,
			&e);
	if (r < 0)
		return ctl_fail(&e, r);
	ctl_resource_ref(&res, ref, sizeof(ref));
	printf("%s/%s scaled\n", ref, name);
	return 0;
}
