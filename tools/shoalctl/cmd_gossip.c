// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl gossip keys generate | list | install KEY | use KEY | remove KEY: the cluster's
 * gossip keyring. generate makes a key here (no server involved); the others go through the
 * node shoalctl talks to, which applies them to itself and every live member and reports, per
 * key, on how many nodes it is installed and primary. Rotation without false suspicion:
 * install the new key, use it, then remove the old one; each step reaches every node before
 * the next. The exit status is 1 when a node did not answer or refused.
 */
#include <string.h>
#include <sodium.h>

#include "tools/shoalctl/shoalctl.h"

#define KEYS_PATH "/apis/shoal.io/v1/gossip/keys"

static int keys_generate(void)
{
	unsigned char k[32];
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];

	if (sodium_init() < 0)
		return 1;
	randombytes_buf(k, sizeof(k));
	sodium_bin2base64(b64, sizeof(b64), k, sizeof(k), sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(k, sizeof(k));
	printf("%s\n", b64);
	sodium_memzero(b64, sizeof(b64));
	return 0;
}

static int keys_report(struct ctl *c, const cJSON *res)
{
	const cJSON *it, *errs = cJSON_GetObjectItem(res, "errors");
	double nodes = cJSON_GetNumberValue(cJSON_GetObjectItem(res, "nodes"));
	double responded = cJSON_GetNumberValue(cJSON_GetObjectItem(res, "responded"));
	int failed = 0;

	if (c->o.output == CTL_OUT_JSON)
		ctl_print_json(res, stdout);
	else if (c->o.output == CTL_OUT_YAML)
		ctl_print_yaml(res, stdout);
	else {
		printf("%-46s %-10s %s\n", "KEY", "INSTALLED", "PRIMARY");
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "keys"))
		{
			char inst[32], prim[32];
			snprintf(inst, sizeof(inst), "%.0f/%.0f",
				 cJSON_GetNumberValue(cJSON_GetObjectItem(it, "installed")), nodes);
			snprintf(prim, sizeof(prim), "%.0f/%.0f",
				 cJSON_GetNumberValue(cJSON_GetObjectItem(it, "primary")), nodes);
			printf("%-46s %-10s %s\n", ctl_json_str(it, "key") ?: "", inst, prim);
		}
	}
	cJSON_ArrayForEach(it, errs)
	{
		fprintf(stderr, "error: node %s: %s\n", it->string,
			cJSON_GetStringValue(it) ?: "failed");
		failed = 1;
	}
	if (responded < nodes) {
		fprintf(stderr, "error: %.0f of %.0f nodes answered\n", responded, nodes);
		failed = 1;
	}
	return failed;
}

static int keys_op(struct ctl *c, const char *op, const char *key)
{
	_cleanup_json_ cJSON *res = NULL, *body = NULL;
	struct err e = {};
	int r;

	if (!key)
		r = ctl_request(c, "GET", KEYS_PATH, NULL, NULL, NULL, &res, &e);
	else {
		body = cJSON_CreateObject();
		if (!body || !cJSON_AddStringToObject(body, "op", op) ||
		    !cJSON_AddStringToObject(body, "key", key))
			return 1;
		r = ctl_request(c, "POST", KEYS_PATH, NULL, "application/json", body, &res, &e);
	}
	if (r < 0)
		return ctl_fail(&e, r);
	return keys_report(c, res);
}

int cmd_gossip(struct ctl *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (argc >= 2 && streq(argv[0], "keys")) {
		if (argc == 2 && streq(sub, "generate"))
			return keys_generate();
		if (argc == 2 && (streq(sub, "list") || streq(sub, "ls")))
			return keys_op(c, "list", NULL);
		if (argc == 3 &&
		    (streq(sub, "install") || streq(sub, "use") || streq(sub, "remove")))
			return keys_op(c, sub, argv[2]);
	}
	return ctl_fail(&(struct err){.message = "usage: shoalctl gossip keys generate | list | "
						 "install KEY | use KEY | remove KEY"},
			-EINVAL);
}
