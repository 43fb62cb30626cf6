// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/mountinfo.h"

static void test_parse_plain(void **state)
{
	char l[] = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=remount-ro\n";
	struct mountinfo_entry m;

	assert_int_equal(mountinfo_parse_line(l, &m), 0);
	assert_int_equal(m.id, 36);
	assert_int_equal(m.parent_id, 35);
	assert_int_equal(m.major, 98);
	assert_int_equal(m.minor, 0);
	assert_string_equal(m.root, "/mnt1");
	assert_string_equal(m.mount_point, "/mnt2");
	assert_string_equal(m.options, "rw,noatime");
	assert_string_equal(m.optional, "master:1");
	assert_string_equal(m.fstype, "ext3");
	assert_string_equal(m.source, "/dev/root");
	assert_string_equal(m.super_options, "rw,errors=remount-ro");
}

static void test_parse_optional_fields(void **state)
{
	char none[] = "25 1 0:22 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate";
	char many[] = "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 master:3 propagate_from:2 "
		      "unbindable - cgroup cgroup rw,cpu,cpuacct";
	struct mountinfo_entry m;

	assert_int_equal(mountinfo_parse_line(none, &m), 0);
	assert_string_equal(m.optional, "");
	assert_string_equal(m.fstype, "cgroup2");
	assert_true(mountinfo_is_cgroup(&m));
	assert_true(mountinfo_has_option(m.super_options, "nsdelegate"));
	assert_int_equal(mountinfo_parse_line(many, &m), 0);
	assert_string_equal(m.optional, "shared:9 master:3 propagate_from:2 unbindable");
	assert_string_equal(m.mount_point, "/sys/fs/cgroup/cpu,cpuacct");
	assert_string_equal(m.fstype, "cgroup");
	assert_true(mountinfo_is_cgroup(&m));
	assert_true(mountinfo_has_option(m.super_options, "cpu"));
	assert_true(mountinfo_has_option(m.super_options, "cpuacct"));
	assert_false(mountinfo_has_option(m.super_options, "cpuset"));
	assert_false(mountinfo_has_option(m.super_options, "cp"));
}

static void test_parse_escapes(void **state)
{
	/* what the kernel prints for a mount point "/tmp/a b\tc\nd\\e" and a source with a space */
	char l[] = "100 1 0:50 / /tmp/a\\040b\\011c\\012d\\134e rw - tmpfs my\\040src "
		   "rw,size=1k\n";
	struct mountinfo_entry m;

	assert_int_equal(mountinfo_parse_line(l, &m), 0);
	assert_string_equal(m.mount_point, "/tmp/a b\tc\nd\\e");
	assert_string_equal(m.source, "my src");
	assert_string_equal(m.fstype, "tmpfs");
	assert_true(mountinfo_has_option(m.super_options, "size"));
	/* an escaped " - " in a path is not the separator */
	char dash[] = "101 1 0:51 / /x\\040-\\040y rw - tmpfs tmpfs rw";
	assert_int_equal(mountinfo_parse_line(dash, &m), 0);
	assert_string_equal(m.mount_point, "/x - y");
	assert_string_equal(m.fstype, "tmpfs");
	/* not an escape: stays as it is */
	char odd[] = "102 1 0:52 / /a\\9b\\04 rw - tmpfs t rw";
	assert_int_equal(mountinfo_parse_line(odd, &m), 0);
	assert_string_equal(m.mount_point, "/a\\9b\\04");
}

static void test_parse_bad(void **state)
{
	const char *bad[] = {
		"",
		"36 35 98:0 /mnt1 /mnt2 rw",
		"36 35 98:0 /mnt1 /mnt2 rw master:1 ext3 /dev/root rw",
		"36 35 98:0 /mnt1 /mnt2 rw - ext3",
		"x 35 98:0 / / rw - ext3 /dev/root rw",
		"36 35 98 / / rw - ext3 /dev/root rw",
		"36 35 98:0x / / rw - ext3 /dev/root rw",
		"99999999999 35 98:0 / / rw - ext3 /dev/root rw",
	};
	struct mountinfo_entry m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *c = strdup(bad[i]);
		assert_int_equal(mountinfo_parse_line(c, &m), -EINVAL);
		free(c);
	}
	/* no super options is still a line */
	char l[] = "36 35 98:0 / / rw - ext3 /dev/root";
	assert_int_equal(mountinfo_parse_line(l, &m), 0);
	assert_string_equal(m.super_options, "");
}

static void test_path_below(void **state)
{
	assert_true(mountinfo_path_below("/a/b", "/a"));
	assert_true(mountinfo_path_below("/a", "/a"));
	assert_true(mountinfo_path_below("/a/b", "/a/"));
	assert_false(mountinfo_path_below("/ab", "/a"));
	assert_false(mountinfo_path_below("/", "/a"));
	assert_true(mountinfo_path_below("/x", "/"));
}

/* Lines far longer than any fixed buffer the old parsers used (4 KiB, 8 KiB), in a file, with
 * the entries after them still read. */
static void test_file_long_lines(void **state)
{
	char path[] = "/tmp/test_mountinfo.XXXXXX";
	int fd = mkstemp(path);
	FILE *f;
	size_t n = 300000;
	char *opts = malloc(n + 1), *dir = malloc(4 * 4000 + 16), *want = malloc(4000 + 16);
	struct mountinfo mi;
	const struct mountinfo_entry *m;
	size_t count = 0;

	assert_true(fd >= 0 && opts && dir && want);
	memset(opts, 'o', n);
	opts[n] = 0;
	/* a 4000-character mount point made of escaped spaces: 16000 characters on the line */
	strcpy(dir, "/long");
	strcpy(want, "/long");
	for (size_t i = 0; i < 4000; i++) {
		strcat(dir, "\\040");
		want[5 + i] = ' ';
	}
	want[5 + 4000] = 0;
	assert_non_null(f = fdopen(fd, "w"));
	fprintf(f, "1 0 0:1 / / rw - ext4 /dev/sda rw\n");
	fprintf(f, "2 1 0:2 / /ov rw - overlay overlay rw,lowerdir=%s\n", opts);
	fprintf(f, "garbage line\n");
	fprintf(f, "3 1 0:3 / %s rw shared:1 - tmpfs tmpfs rw\n", dir);
	fprintf(f, "4 1 0:4 / /last rw - tmpfs tmpfs rw");
	fclose(f);

	assert_int_equal(mountinfo_open(&mi, path), 0);
	while (mountinfo_next(&mi, &m) > 0) {
		count++;
		if (m->id == 2) {
			assert_string_equal(m->mount_point, "/ov");
			assert_int_equal(strlen(m->super_options), strlen("rw,lowerdir=") + n);
		} else if (m->id == 3) {
			assert_string_equal(m->mount_point, want);
			assert_string_equal(m->fstype, "tmpfs");
		} else if (m->id == 4) {
			assert_string_equal(m->mount_point, "/last");
		}
	}
	mountinfo_close(&mi);
	assert_int_equal(count, 4);
	unlink(path);
	free(opts);
	free(dir);
	free(want);
}

static void test_self(void **state)
{
	_cleanup_mountinfo_ struct mountinfo mi;
	const struct mountinfo_entry *m;
	bool root = false;
	int r;

	assert_int_equal(mountinfo_open(&mi, NULL), 0);
	while ((r = mountinfo_next(&mi, &m)) > 0)
		root |= !strcmp(m->mount_point, "/");
	assert_int_equal(r, 0);
	assert_true(root);
	mountinfo_close(&mi);
	assert_int_equal(mountinfo_open(&mi, "/nonexistent/mountinfo"), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_plain),   cmocka_unit_test(test_parse_optional_fields),
		cmocka_unit_test(test_parse_escapes), cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_path_below),    cmocka_unit_test(test_file_long_lines),
		cmocka_unit_test(test_self),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
