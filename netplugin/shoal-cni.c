// SPDX-License-Identifier: Apache-2.0
/*
 * shoal-cni: a CNI 1.0.0 plugin on the same netplugin/ code shoald uses (netplugin/cni.h).
 * Result or error JSON on stdout; exit 0 on success, 1 on error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netplugin/cni.h"

#define CNI_MAX_CONF (1 << 20)

static const char *env(const char *name)
{
	return getenv(name);
}

static char *read_stdin(void)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	for (;;) {
		size_t n = fread(buf + len, 1, cap - len - 1, stdin);
		len += n;
		if (n == 0)
			break;
		if (len + 1 == cap) {
			if (cap >= CNI_MAX_CONF) {
				free(buf);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	buf[len] = 0;
	return buf;
}

static void print(cJSON *j)
{
	_cleanup_free_ char *s = cJSON_Print(j);

	if (s)
		printf("%s\n", s);
}

int main(void)
{
	_cleanup_free_ char *in = NULL;
	_cleanup_json_ cJSON *out = NULL;
	struct cni_error ce = {0};
	struct cni_req req;
	const char *cmd = getenv("CNI_COMMAND");
	int r;

	/* VERSION needs no stdin; every other command reads its configuration */
	if (!cmd || strcmp(cmd, "VERSION")) {
		in = read_stdin();
		if (!in) {
			ce.code = CNI_ERR_IO;
			snprintf(ce.msg, sizeof(ce.msg),
				 "cannot read the configuration from stdin");
			out = cni_error_json(NULL, &ce);
			print(out);
			return 1;
		}
	}
	r = cni_req_parse(&req, in, env, &ce);
	if (r == 0)
		r = cni_run(&req, &out, &ce);
	if (r < 0) {
		cJSON_Delete(out);
		out = cni_error_json(req.cni_version, &ce);
		print(out);
		cni_req_done(&req);
		return 1;
	}
	if (out)
		print(out);
	cni_req_done(&req);
	return 0;
}
