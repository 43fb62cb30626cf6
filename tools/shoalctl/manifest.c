// SPDX-License-Identifier: Apache-2.0
/* Manifests: YAML/JSON streams from files, directories or stdin, `kind: *List` expanded. */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"
#include "lib/yaml.h"
#include "tools/shoalctl/shoalctl.h"

#define MANIFEST_MAX (64u << 20)

static bool is_list(const cJSON *obj)
{
	const char *kind = ctl_json_str(obj, "kind");
	size_t n = kind ? strlen(kind) : 0;

	return n >= 4 && streq(kind + n - 4, "List") &&
	       cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(obj, "items"));
}

static int add_object(cJSON *out, cJSON *obj, const char *source, struct err *e)
{
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		return err_set(e, EINVAL, 0, "", "error validating \"%s\": a document is not an object",
			       source);
	}
	if (is_list(obj)) {
		cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(obj, "items");
		cJSON *it;
		int r = 0;

		cJSON_Delete(obj);
		while (r >= 0 && (it = cJSON_DetachItemFromArray(items, 0)))
			r = add_object(out, it, source, e);
		cJSON_Delete(items);
		return r;
	}
	if (!ctl_json_str(obj, "kind") || !ctl_json_str(obj, "apiVersion")) {
		cJSON_Delete(obj);
		return err_set(e, EINVAL, 0, "",
			       "error validating \"%s\": apiVersion and kind must be set", source);
	}
	cJSON_AddItemToArray(out, obj);
	return 0;
}

int ctl_manifest_parse(const char *buf, size_t len, const char *source, cJSON *out,
		       struct err *e)
{
	_cleanup_json_ cJSON *docs = NULL;
	struct err pe = {};
	cJSON *d;
	int r;

	r = yaml_parse_docs(buf, len, &docs, &pe);
	if (r < 0)
		return err_set(e, r, 0, "", "error parsing %s: %s", source,
			       pe.message[0] ? pe.message : strerror(-r));
	while ((d = cJSON_DetachItemFromArray(docs, 0))) {
		if (cJSON_IsNull(d)) {
			cJSON_Delete(d);
			continue;
		}
		r = add_object(out, d, source, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_stdin(char **ret, size_t *ret_len)
{
	return util_read_file("/dev/stdin", MANIFEST_MAX, ret, ret_len);
}

static bool manifest_name(const char *n)
{
	size_t l = strlen(n);

	return (l > 5 && streq(n + l - 5, ".yaml")) || (l > 4 && streq(n + l - 4, ".yml")) ||
	       (l > 5 && streq(n + l - 5, ".json"));
}

static int read_dir(const char *path, bool recursive, cJSON *out, struct err *e)
{
	struct dirent **ents = NULL;
	int n, r = 0;

	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0)
		return err_set(e, errno, 0, "", "cannot read directory %s: %m", path);
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *p = NULL;
		struct stat st;

		if (r < 0 || ents[i]->d_name[0] == '.')
			goto next;
		if (asprintf(&p, "%s/%s", path, ents[i]->d_name) < 0) {
			r = -ENOMEM;
			goto next;
		}
		if (stat(p, &st) < 0)
			goto next;
		if (S_ISDIR(st.st_mode)) {
			if (recursive)
				r = read_dir(p, recursive, out, e);
		} else if (manifest_name(ents[i]->d_name)) {
			r = ctl_manifest_read(p, recursive, out, e);
		}
next:
		free(ents[i]);
	}
	free(ents);
	return r;
}

int ctl_manifest_read(const char *path, bool recursive, cJSON *out, struct err *e)
{
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len;
	int r;

	if (streq(path, "-")) {
		r = read_stdin(&buf, &len);
		if (r < 0)
			return err_set(e, r, 0, "", "cannot read stdin: %s", strerror(-r));
		return ctl_manifest_parse(buf, len, "STDIN", out, e);
	}
	if (stat(path, &st) < 0)
		return err_set(e, errno, 0, "", "the path \"%s\" does not exist", path);
	if (S_ISDIR(st.st_mode))
		return read_dir(path, recursive, out, e);
	r = util_read_file(path, MANIFEST_MAX, &buf, &len);
	if (r < 0)
		return err_set(e, r, 0, "", "cannot read %s: %s", path, strerror(-r));
	return ctl_manifest_parse(buf, len, path, out, e);
}
