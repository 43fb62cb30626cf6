// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sched/svcip.h"

static uint8_t taken[1 << 12];

static bool used(uint32_t ip, void *ud)
{
	const struct svcip_range *r = ud;
	return taken[ip - r->net];
}

static void test_parse(void **state)
{
	struct svcip_range r;
	char buf[32];

	assert_int_equal(svcip_range_parse("10.96.0.0/12", &r), 0);
	assert_int_equal(r.size, 1u << 20);
	svcip_format(r.net, buf, sizeof(buf));
	assert_string_equal(buf, "10.96.0.0");
	assert_int_equal(svcip_range_parse("10.96.3.7/24", &r), 0);
	svcip_format(r.net, buf, sizeof(buf));
	assert_string_equal(buf, "10.96.3.0");
	assert_int_equal(svcip_range_parse("10.96.0.0", &r), -EINVAL);
	assert_int_equal(svcip_range_parse("10.96.0.0/33", &r), -EINVAL);
	assert_int_equal(svcip_range_parse("banana/24", &r), -EINVAL);
}

static void test_pick_until_full(void **state)
{
	struct svcip_range r;
	uint32_t ip;
	char key[32];

	memset(taken, 0, sizeof(taken));
	assert_int_equal(svcip_range_parse("10.96.0.0/28", &r), 0);
	/* 16 addresses: network, .1 (reserved) and broadcast are never handed out */
	for (int i = 0; i < 13; i++) {
		snprintf(key, sizeof(key), "default/svc-%d", i);
		assert_int_equal(svcip_pick(&r, key, used, &r, &ip), 0);
		assert_true(svcip_range_contains(&r, ip));
		assert_false(taken[ip - r.net]);
		taken[ip - r.net] = 1;
	}
	assert_int_equal(svcip_pick(&r, "default/one-more", used, &r, &ip), -ENOSPC);
	assert_false(taken[0] || taken[1] || taken[15]);
}

static void test_pick_is_deterministic(void **state)
{
	struct svcip_range r;
	uint32_t a, b;

	memset(taken, 0, sizeof(taken));
	assert_int_equal(svcip_range_parse("10.96.0.0/20", &r), 0);
	assert_int_equal(svcip_pick(&r, "ns/web", used, &r, &a), 0);
	assert_int_equal(svcip_pick(&r, "ns/web", used, &r, &b), 0);
	assert_int_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_pick_until_full),
		cmocka_unit_test(test_pick_is_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
