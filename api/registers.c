// SPDX-License-Identifier: Apache-2.0
/*
 * GET /apis/shoal.io/v1/registers[/RESOURCE]: this node's registers (keys, uids, versions,
 * tombstones, sticky state, a digest of the bodies) in a stable order, one line per key, so two
 * replicas can be compared byte for byte (store_registers_dump). RESOURCE is the store's key:
 * "pods", "deployments.apps".
 */
#include <errno.h>
#include <string.h>

#include "api/server-internal.h"
#include "lib/macro.h"
#include "sched/store.h"

#define REGISTERS_PREFIX "/apis/shoal.io/v1/registers"

bool api_registers_match(const char *path)
{
	size_t n = strlen(REGISTERS_PREFIX);

	return !strncmp(path, REGISTERS_PREFIX, n) && (path[n] == 0 || path[n] == '/');
}

void api_registers_handle(struct api_req *r)
{
	const char *rest = r->path + strlen(REGISTERS_PREFIX);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int rc;

	if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_HEAD) {
		api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
				 "the server does not allow this method on the requested resource");
		return;
	}
	while (*rest == '/')
		rest++;
	if (strchr(rest, '/')) {
		api_reply_status(r, 404, "NotFound", NULL, NULL, "the server could not find the "
				 "requested resource");
		return;
	}
	rc = store_registers_dump(r->srv->store, *rest ? rest : NULL, &text, &len);
	if (rc < 0) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "store: %s", strerror(-rc));
		return;
	}
	api_reply_raw(r, 200, "text/plain; charset=utf-8", text, len);
}
