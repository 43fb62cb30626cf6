// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <string.h>

#include "daemon/image_ref.h"

bool image_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != IMAGE_DIGEST_LEN)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
			return false;
	return true;
}

/* One path component: lowercase alnum separated by '.', '_', '__' or runs of '-'. */
static bool component_valid(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (isdigit((unsigned char)c) || (c >= 'a' && c <= 'z'))
			continue;
		if (c != '.' && c != '_' && c != '-')
			return false;
		if (c == '.' && (s[i + 1] == '.' || s[i + 1] == '_' || s[i + 1] == '-'))
			return false;
	}
	return true;
}

static bool repository_valid(const char *s)
{
	const char *p = s;

	if (!*s || strlen(s) > 255)
		return false;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!component_valid(p, n))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

static bool tag_valid(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
			return false;
	return true;
}

/* Copy with a length check (names longer than the fields are invalid, not truncated). */
static bool copy(char *dst, size_t len, const char *pre, const char *src)
{
	size_t a = strlen(pre), b = strlen(src);

	if (a + b + 1 > len)
		return false;
	memcpy(dst, pre, a);
	memcpy(dst + a, src, b + 1);
	return true;
}

static bool host_valid(const char *h)
{
	if (!*h)
		return false;
	for (const char *p = h; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-:[]", *p))
			return false;
	return true;
}

int image_ref_parse(const char *s, struct image_ref *ret, struct err *e)
{
	char buf[600];
	char *name, *at, *slash, *colon;

	memset(ret, 0, sizeof(*ret));
	if (strempty(s) || strlen(s) >= sizeof(buf))
		return err_set(e, EINVAL, 422, "InvalidImageName", "invalid image name \"%s\"",
			       s ? s : "");
	snprintf(buf, sizeof(buf), "%s", s);
	name = buf;

	at = strchr(name, '@');
	if (at) {
		*at = 0;
		if (!image_digest_valid(at + 1))
			return err_set(e, EINVAL, 422, "InvalidImageName",
				       "invalid digest in image name \"%s\"", s);
		copy(ret->digest, sizeof(ret->digest), "", at + 1);
	}

	/* The first component is a registry host if it looks like one. */
	slash = strchr(name, '/');
	if (slash) {
		*slash = 0;
		if (strchr(name, '.') || strchr(name, ':') || streq(name, "localhost") ||
		    strchr(name, '[')) {
			if (!host_valid(name) || !copy(ret->registry, sizeof(ret->registry), "", name))
				return err_set(e, EINVAL, 422, "InvalidImageName",
					       "invalid registry host in image name \"%s\"", s);
			name = slash + 1;
		} else {
			*slash = '/';
		}
	}
	if (!ret->registry[0])
		snprintf(ret->registry, sizeof(ret->registry), "docker.io");
	if (streq(ret->registry, "index.docker.io") || streq(ret->registry, "registry-1.docker.io"))
		snprintf(ret->registry, sizeof(ret->registry), "docker.io");

	/* A tag is after the last ':' that follows the last '/'. */
	slash = strrchr(name, '/');
	colon = strrchr(slash ? slash : name, ':');
	if (colon) {
		*colon = 0;
		if (!tag_valid(colon + 1))
			return err_set(e, EINVAL, 422, "InvalidImageName",
				       "invalid tag in image name \"%s\"", s);
		copy(ret->tag, sizeof(ret->tag), "", colon + 1);
	}
	if (!repository_valid(name) || strlen(name) > 240)
		return err_set(e, EINVAL, 422, "InvalidImageName",
			       "invalid repository in image name \"%s\" (lowercase letters, digits "
			       "and . _ - separators)", s);
	if (streq(ret->registry, "docker.io") && !strchr(name, '/'))
		copy(ret->repository, sizeof(ret->repository), "library/", name);
	else
		copy(ret->repository, sizeof(ret->repository), "", name);
	if (!ret->tag[0] && !ret->digest[0])
		snprintf(ret->tag, sizeof(ret->tag), "latest");
	return 0;
}

int image_ref_format(const struct image_ref *r, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s%s%s%s%s", r->registry, r->repository,
			 r->tag[0] ? ":" : "", r->tag, r->digest[0] ? "@" : "", r->digest);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

const char *image_ref_api_host(const struct image_ref *r)
{
	return streq(r->registry, "docker.io") ? "registry-1.docker.io" : r->registry;
}
