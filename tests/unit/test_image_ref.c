// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/image_ref.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check(const char *in, const char *canonical)
{
	struct image_ref r;
	struct err e = { 0 };
	char buf[700];

	assert_int_equal(image_ref_parse(in, &r, &e), 0);
	assert_int_equal(image_ref_format(&r, buf, sizeof(buf)), 0);
	assert_string_equal(buf, canonical);
}

static void test_defaults(void **state)
{
	check("busybox", "docker.io/library/busybox:latest");
	check("busybox:1.36", "docker.io/library/busybox:1.36");
	check("user/app", "docker.io/user/app:latest");
	check("docker.io/busybox", "docker.io/library/busybox:latest");
	check("index.docker.io/library/busybox:x", "docker.io/library/busybox:x");
	check("ghcr.io/org/team/app:v1.2-rc_3", "ghcr.io/org/team/app:v1.2-rc_3");
}

static void test_registry_host(void **state)
{
	struct image_ref r;

	check("localhost:5000/app", "localhost:5000/app:latest");
	check("localhost/app:1", "localhost/app:1");
	check("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t");
	assert_int_equal(image_ref_parse("127.0.0.1:5000/a/b:t", &r, NULL), 0);
	assert_string_equal(r.registry, "127.0.0.1:5000");
	assert_string_equal(r.repository, "a/b");
	assert_string_equal(r.tag, "t");
	assert_string_equal(image_ref_api_host(&r), "127.0.0.1:5000");
	assert_int_equal(image_ref_parse("busybox", &r, NULL), 0);
	assert_string_equal(image_ref_api_host(&r), "registry-1.docker.io");
}

static void test_digest(void **state)
{
	struct image_ref r;

	check("busybox@sha256:" D64, "docker.io/library/busybox@sha256:" D64);
	check("reg.example:443/x:tag@sha256:" D64, "reg.example:443/x:tag@sha256:" D64);
	assert_int_equal(image_ref_parse("busybox@sha256:" D64, &r, NULL), 0);
	assert_string_equal(r.tag, "");
	assert_string_equal(r.digest, "sha256:" D64);
	assert_true(image_digest_valid("sha256:" D64));
	assert_false(image_digest_valid("sha256:" "0123"));
	assert_false(image_digest_valid("sha512:" D64));
}

static void test_invalid(void **state)
{
	const char *bad[] = { "", "Busybox", "busybox:", "busybox:-x", "a//b", "busybox@sha256:12",
			      "busybox@md5:" D64, "-a", "a:b:c", "a b", "UPPER/x" };
	struct image_ref r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err e = { 0 };
		assert_int_equal(image_ref_parse(bad[i], &r, &e), -EINVAL);
		assert_string_equal(e.reason, "InvalidImageName");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_registry_host),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
