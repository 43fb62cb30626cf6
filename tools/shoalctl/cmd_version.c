// SPDX-License-Identifier: Apache-2.0
/* shoalctl version: the client's version and the server's /version. */
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

int cmd_version(struct ctl *c, int argc, char **argv)
{
	_cleanup_json_ cJSON *out = cJSON_CreateObject(), *server = NULL;
	struct err e = {};
	cJSON *client;
	int r = 0;

	if (!out)
		return 1;
	if (argc > 0)
		return ctl_fail(&(struct err){ .message = "version takes no arguments" }, -EINVAL);
	client = cJSON_AddObjectToObject(out, "clientVersion");
	if (!client || !cJSON_AddStringToObject(client, "gitVersion", SHOALCTL_VERSION) ||
	    !cJSON_AddStringToObject(client, "platform", "linux/amd64"))
		return 1;
	if (!c->o.client_only) {
		r = ctl_request(c, "GET", "/version", NULL, NULL, NULL, &server, &e);
		if (r >= 0 && server)
			cJSON_AddItemReferenceToObject(out, "serverVersion", server);
	}
	if (c->o.output == CTL_OUT_JSON) {
		ctl_print_json(out, stdout);
	} else if (c->o.output == CTL_OUT_YAML) {
		ctl_print_yaml(out, stdout);
	} else {
		printf("Client Version: %s\n", SHOALCTL_VERSION);
		if (server)
			printf("Server Version: %s\n",
			       ctl_json_str(server, "gitVersion") ?: "(unknown)");
	}
	if (r < 0)
		return ctl_fail(&e, r);
	return 0;
}
