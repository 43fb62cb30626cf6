/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /proc/<pid>/mountinfo, parsed once for every module that asks "what is mounted where".
 *
 * A line (proc(5)):
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   id parent maj:min root mount-point options [optional fields...] - fstype source super-options
 * The kernel escapes space, tab, newline and backslash in paths as \ooo (\040 \011 \012 \134);
 * the parser undoes that in every field. Lines have no length limit (an overlay's options can
 * run to a page, an escaped path to four times PATH_MAX).
 *
 *	struct mountinfo mi;
 *	const struct mountinfo_entry *m;
 *	if ((r = mountinfo_open(&mi, NULL)) < 0) return r;
 *	while ((r = mountinfo_next(&mi, &m)) > 0)
 *		if (mountinfo_is_cgroup(m)) ... m->mount_point ...
 *	mountinfo_close(&mi);
 */
#ifndef SHOAL_LIB_MOUNTINFO_H
#define SHOAL_LIB_MOUNTINFO_H

#include <stdbool.h>
#include <stdio.h>

struct mountinfo_entry {
	unsigned int id, parent_id;
	unsigned int major, minor;
	const char *root;          /* path inside the mounted file system */
	const char *mount_point;   /* where it is mounted */
	const char *options;       /* per-mount options ("rw,nosuid") */
	const char *optional;      /* optional fields, space separated ("shared:1 master:2"), or "" */
	const char *fstype;        /* "cgroup2", "overlay", "fuse.sshfs" */
	const char *source;        /* "/dev/sda1", "none" */
	const char *super_options; /* per-superblock options ("rw,cpu,cpuacct") */
};

/*
 * Parse one line (without or with its trailing newline) in place: fields are split and
 * unescaped inside `line`, the entry's strings point into it. -EINVAL if it is not a mountinfo
 * line.
 */
int mountinfo_parse_line(char *line, struct mountinfo_entry *ret);

/* Undo the kernel's \ooo escapes in place. */
void mountinfo_unescape(char *s);

/* Whether the comma-separated option list `opts` holds `name` (alone or as name=value). */
bool mountinfo_has_option(const char *opts, const char *name);

/* A cgroup v1 hierarchy or the cgroup2 mount. */
bool mountinfo_is_cgroup(const struct mountinfo_entry *m);

/* Whether `path` is `dir` or below it, by whole components ("/a/b" is below "/a", "/ab" is
 * not). */
bool mountinfo_path_below(const char *path, const char *dir);

struct mountinfo {
	FILE *f;
	char *line;
	size_t cap;
	struct mountinfo_entry e;
};

/* Open `path` (NULL: /proc/self/mountinfo). */
int mountinfo_open(struct mountinfo *mi, const char *path);
/* The next entry (valid until the next call): 1, 0 at the end, -errno on a read error. Lines
 * that do not parse are skipped. */
int mountinfo_next(struct mountinfo *mi, const struct mountinfo_entry **ret);
void mountinfo_close(struct mountinfo *mi);

#define _cleanup_mountinfo_ __attribute__((cleanup(mountinfo_close)))

#endif
