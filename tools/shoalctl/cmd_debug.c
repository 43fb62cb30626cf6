// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl debug registers [RESOURCE]: the node's replicated registers, one line per key in a
 * stable order (GET /apis/shoal.io/v1/registers[/RESOURCE]), so two nodes' outputs can be
 * diffed byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

static int write_chunk(const char *buf, size_t len, void *userdata)
{
	return fwrite(buf, 1, len, stdout) == len ? 0 : -EIO;
}

int cmd_debug(struct ctl *c, int argc, char **argv)
{
	_cleanup_free_ char *path = NULL, *res = NULL;
	struct ctl_response resp = {};
	struct ctl_http *h = NULL;
	struct err e = {};
	int r;

	if (argc < 1 || argc > 2 || strcmp(argv[0], "registers") != 0)
		return ctl_fail(&(struct err){ .message = "usage: shoalctl debug registers "
							  "[RESOURCE]" },
				-EINVAL);
	if (argc == 2) {
		res = ctl_http_escape(argv[1]);
		if (!res)
			return 1;
	}
	if (asprintf(&path, "/apis/shoal.io/v1/registers%s%s", res ? "/" : "", res ? res : "") < 0)
		return 1;
	r = ctl_http(c, &h, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	r = ctl_http_stream_raw(h, path, write_chunk, NULL, &resp, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	if (resp.status && (resp.status < 200 || resp.status >= 300)) {
		r = ctl_status_to_err(resp.status, resp.body, &e);
		ctl_response_done(&resp);
		return ctl_fail(&e, r);
	}
	ctl_response_done(&resp);
	fflush(stdout);
	return 0;
}
