// SPDX-License-Identifier: Apache-2.0
/* /proc/<pid>/mountinfo parser. See mountinfo.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mountinfo.h"

static bool is_odigit(char c)
{
	return c >= '0' && c <= '7';
}

void mountinfo_unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r;) {
		/* the kernel writes exactly three octal digits; a lone backslash stays as is */
		if (r[0] == '\\' && is_odigit(r[1]) && is_odigit(r[2]) && is_odigit(r[3])) {
			unsigned int v = (r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0');
			if (v > 0 && v < 256) {
				*w++ = (char)v;
				r += 4;
				continue;
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
}

/* The next space-separated field of *p, NUL-terminated in place; NULL at the end. */
static char *field_next(char **p)
{
	char *s = *p, *e;

	while (*s == ' ')
		s++;
	if (!*s)
		return NULL;
	e = strchr(s, ' ');
	if (e) {
		*e = '\0';
		*p = e + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

static int parse_uint(const char *s, char stop, unsigned int *ret, const char **end)
{
	unsigned long v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 0xffffffffUL)
			return -EINVAL;
	}
	if (*p != stop)
		return -EINVAL;
	*ret = (unsigned int)v;
	if (end)
		*end = p;
	return 0;
}

int mountinfo_parse_line(char *line, struct mountinfo_entry *ret)
{
	struct mountinfo_entry m = { 0 };
	char *p = line, *f[6], *opt_first = NULL, *opt_last = NULL, *t;
	const char *end;
	size_t len = strlen(line);

	if (len && line[len - 1] == '\n')
		line[--len] = '\0';
	for (size_t i = 0; i < 6; i++)
		if (!(f[i] = field_next(&p)))
			return -EINVAL;
	if (parse_uint(f[0], '\0', &m.id, NULL) < 0 ||
	    parse_uint(f[1], '\0', &m.parent_id, NULL) < 0 ||
	    parse_uint(f[2], ':', &m.major, &end) < 0 ||
	    parse_uint(end + 1, '\0', &m.minor, NULL) < 0)
		return -EINVAL;
	/* zero or more optional fields, then a lone "-" */
	for (;;) {
		if (!(t = field_next(&p)))
			return -EINVAL;
		if (t[0] == '-' && !t[1])
			break;
		if (!opt_first)
			opt_first = t;
		opt_last = t;
	}
	if (opt_first) /* join them again: they were contiguous, split by single spaces */
		for (char *c = opt_first; c < opt_last; c++)
			if (!*c)
				*c = ' ';
	if (!(m.fstype = field_next(&p)) || !(m.source = field_next(&p)))
		return -EINVAL;
	m.super_options = field_next(&p);
	if (!m.super_options)
		m.super_options = p; /* "" */
	m.root = f[3];
	m.mount_point = f[4];
	m.options = f[5];
	m.optional = opt_first ? opt_first : p + strlen(p);
	mountinfo_unescape(f[3]);
	mountinfo_unescape(f[4]);
	mountinfo_unescape(f[5]);
	if (opt_first)
		mountinfo_unescape(opt_first);
	mountinfo_unescape((char *)m.fstype);
	mountinfo_unescape((char *)m.source);
	mountinfo_unescape((char *)m.super_options);
	*ret = m;
	return 0;
}

bool mountinfo_has_option(const char *opts, const char *name)
{
	size_t n = strlen(name);

	for (const char *o = opts; o && *o;) {
		const char *c = strchr(o, ',');
		size_t l = c ? (size_t)(c - o) : strlen(o);
		if (l >= n && !strncmp(o, name, n) && (l == n || o[n] == '='))
			return true;
		o = c ? c + 1 : NULL;
	}
	return false;
}

bool mountinfo_is_cgroup(const struct mountinfo_entry *m)
{
	return !strcmp(m->fstype, "cgroup") || !strcmp(m->fstype, "cgroup2");
}

bool mountinfo_path_below(const char *path, const char *dir)
{
	size_t l = strlen(dir);

	while (l > 1 && dir[l - 1] == '/')
		l--;
	if (l == 1 && dir[0] == '/')
		return path[0] == '/';
	return !strncmp(path, dir, l) && (path[l] == '/' || !path[l]);
}

int mountinfo_open(struct mountinfo *mi, const char *path)
{
	*mi = (struct mountinfo){ 0 };
	mi->f = fopen(path ? path : "/proc/self/mountinfo", "re");
	return mi->f ? 0 : -errno;
}

int mountinfo_next(struct mountinfo *mi, const struct mountinfo_entry **ret)
{
	for (;;) {
		errno = 0;
		if (getline(&mi->line, &mi->cap, mi->f) < 0)
			return errno ? -errno : (ferror(mi->f) ? -EIO : 0);
		if (mountinfo_parse_line(mi->line, &mi->e) == 0) {
			*ret = &mi->e;
			return 1;
		}
	}
}

void mountinfo_close(struct mountinfo *mi)
{
	if (mi->f)
		fclose(mi->f);
	free(mi->line);
	*mi = (struct mountinfo){ 0 };
}
