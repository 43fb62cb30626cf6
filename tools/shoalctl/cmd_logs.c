// SPDX-License-Identifier: Apache-2.0
/* shoalctl logs: GET .../pods/NAME/log as plain text, streamed as it arrives (-f). */
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

static int write_chunk(const char *buf, size_t len, void *userdata)
{
	if (fwrite(buf, 1, len, stdout) != len)
		return -EIO;
	fflush(stdout);
	return 0;
}

/* "pod/x", "pods/x", "po/x" or "x" -> "x" */
static const char *pod_name(const char *arg)
{
	const char *slash = strchr(arg, '/');

	if (!slash)
		return arg;
	if (!strncmp(arg, "pod/", 4) || !strncmp(arg, "pods/", 5) || !strncmp(arg, "po/", 3))
		return slash + 1;
	return NULL;
}

int cmd_logs(struct ctl *c, int argc, char **argv)
{
	_cleanup_free_ char *path = NULL, *q = NULL, *ctr = NULL;
	struct ctl_response resp = {};
	struct ctl_http *h;
	struct err e = {};
	const char *pod;
	size_t o = 0;
	char query[512];
	int r;

	if (argc != 1)
		return ctl_fail(&(struct err){ .message = "logs takes one pod: shoalctl logs "
							  "[-f] [-c CONTAINER] POD" },
				-EINVAL);
	pod = pod_name(argv[0]);
	if (!pod || !*pod)
		return ctl_fail(&(struct err){ .message = "logs works on pods (POD or pod/POD)" },
				-EINVAL);
	query[0] = 0;
#define ADD(...) o += snprintf(query + o, o < sizeof(query) ? sizeof(query) - o : 0, __VA_ARGS__)
	if (c->o.container) {
		ctr = ctl_http_escape(c->o.container);
		if (!ctr)
			return 1;
		ADD("&container=%s", ctr);
	}
	if (c->o.follow)
		ADD("&follow=true");
	if (c->o.previous)
		ADD("&previous=true");
	if (c->o.timestamps)
		ADD("&timestamps=true");
	if (c->o.tail >= 0)
		ADD("&tailLines=%ld", c->o.tail);
	if (c->o.since_s > 0)
		ADD("&sinceSeconds=%d", c->o.since_s);
	if (c->o.limit_bytes > 0)
		ADD("&limitBytes=%lld", c->o.limit_bytes);
#undef ADD
	if (o >= sizeof(query))
		return ctl_fail(&(struct err){ .message = "container name too long" }, -EINVAL);
	q = ctl_http_escape(pod);
	_cleanup_free_ char *nsq = ctl_http_escape(c->namespace);
	if (!q || !nsq || asprintf(&path, "/api/v1/namespaces/%s/pods/%s/log%s%s", nsq, q,
				   query[0] ? "?" : "", query[0] ? query + 1 : "") < 0)
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
	return 0;
}
