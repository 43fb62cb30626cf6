// SPDX-License-Identifier: Apache-2.0
/* kubeconfig: current-context → cluster (server, CA, insecure) + user (token, client cert). */
#include <string.h>
#include <sodium.h>

#include "lib/util.h"
#include "lib/yaml.h"
#include "tools/shoalctl/shoalctl.h"

#define KUBECONFIG_MAX (4u << 20)

void ctl_config_done(struct ctl_config *c)
{
	free(c->server);
	free(c->ca_file);
	free(c->ca_data);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_data);
	free(c->key_data);
	free(c->token);
	free(c->namespace);
	*c = (struct ctl_config){};
}

/* The `field` object of the entry called `name` in a named list (contexts, clusters, users). */
static const cJSON *named_entry(const cJSON *root, const char *list, const char *field,
				const char *name)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, list)) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(item, "name");

		if (cJSON_IsString(n) && streq(n->valuestring, name))
			return cJSON_GetObjectItemCaseSensitive(item, field);
	}
	return NULL;
}

static const char *str_field(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static int dup_path(const char *dir, const char *p, char **ret)
{
	if (p[0] == '/' || strempty(dir))
		*ret = strdup(p);
	else if (asprintf(ret, "%s/%s", dir, p) < 0)
		*ret = NULL;
	return *ret ? 0 : -ENOMEM;
}

static int decode_b64(const char *in, const char *what, char **ret, struct err *e)
{
	size_t len = strlen(in), out_len = 0;
	_cleanup_free_ char *out = malloc(len + 1);

	if (!out)
		return -ENOMEM;
	if (sodium_base642bin((unsigned char *)out, len, in, len, " \n\r\t", &out_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) < 0)
		return err_set(e, EINVAL, 0, "", "kubeconfig: %s is not valid base64", what);
	out[out_len] = 0;
	*ret = TAKE_PTR(out);
	return 0;
}

int ctl_kubeconfig_parse(const char *text, size_t len, const char *dir, const char *context,
			 struct ctl_config *ret, struct err *e)
{
	_cleanup_json_ cJSON *root = NULL;
	const cJSON *ctx, *cluster = NULL, *user = NULL;
	struct ctl_config c = {};
	const char *s;
	int r;

	*ret = (struct ctl_config){};
	r = yaml_parse_docs(text, len, &root, e);
	if (r < 0)
		return r;
	if (cJSON_GetArraySize(root) == 0)
		return 0; /* empty file: nothing configured */
	if (cJSON_GetArraySize(root) != 1 || !cJSON_IsObject(cJSON_GetArrayItem(root, 0)))
		return err_set(e, EINVAL, 0, "", "kubeconfig: expected one mapping document");
	cJSON *doc = cJSON_GetArrayItem(root, 0);

	if (!context)
		context = str_field(doc, "current-context");
	if (!context)
		return 0;
	ctx = named_entry(doc, "contexts", "context", context);
	if (!ctx)
		return err_set(e, ENOENT, 0, "", "kubeconfig: context \"%s\" not found", context);

	s = str_field(ctx, "cluster");
	if (s) {
		cluster = named_entry(doc, "clusters", "cluster", s);
		if (!cluster)
			return err_set(e, ENOENT, 0, "", "kubeconfig: cluster \"%s\" not found", s);
	}
	s = str_field(ctx, "user");
	if (s) {
		user = named_entry(doc, "users", "user", s);
		if (!user)
			return err_set(e, ENOENT, 0, "", "kubeconfig: user \"%s\" not found", s);
	}

	r = 0;
	if ((s = str_field(ctx, "namespace")))
		r = r ?: (c.namespace = strdup(s)) ? 0 : -ENOMEM;
	if ((s = str_field(cluster, "server")))
		r = r ?: (c.server = strdup(s)) ? 0 : -ENOMEM;
	if ((s = str_field(cluster, "certificate-authority")))
		r = r ?: dup_path(dir, s, &c.ca_file);
	if ((s = str_field(cluster, "certificate-authority-data")))
		r = r ?: decode_b64(s, "certificate-authority-data", &c.ca_data, e);
	c.insecure = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cluster,
								   "insecure-skip-tls-verify"));
	if ((s = str_field(user, "token"))) {
		r = r ?: (c.token = strdup(s)) ? 0 : -ENOMEM;
	} else if ((s = str_field(user, "tokenFile"))) {
		_cleanup_free_ char *p = NULL;
		char *tok = NULL;

		r = r ?: dup_path(dir, s, &p);
		if (r >= 0 && util_read_file(p, 64 << 10, &tok, NULL) < 0)
			r = err_set(e, ENOENT, 0, "", "kubeconfig: cannot read tokenFile %s", p);
		if (tok)
			tok[strcspn(tok, "\r\n")] = 0;
		c.token = tok;
	}
	if ((s = str_field(user, "client-certificate")))
		r = r ?: dup_path(dir, s, &c.cert_file);
	if ((s = str_field(user, "client-key")))
		r = r ?: dup_path(dir, s, &c.key_file);
	if ((s = str_field(user, "client-certificate-data")))
		r = r ?: decode_b64(s, "client-certificate-data", &c.cert_data, e);
	if ((s = str_field(user, "client-key-data")))
		r = r ?: decode_b64(s, "client-key-data", &c.key_data, e);
	if (r < 0) {
		ctl_config_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}

int ctl_kubeconfig_load(const char *path, const char *context, struct ctl_config *ret,
			struct err *e)
{
	_cleanup_free_ char *text = NULL, *dir = NULL;
	size_t len;
	char *slash;
	int r;

	r = util_read_file(path, KUBECONFIG_MAX, &text, &len);
	if (r == -ENOENT)
		return r;
	if (r < 0)
		return err_set(e, r, 0, "", "cannot read kubeconfig %s: %s", path, strerror(-r));
	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		dir[0] = 0;
	return ctl_kubeconfig_parse(text, len, dir, context, ret, e);
}
