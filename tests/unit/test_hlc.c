// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sched/hlc.h"

static void test_now_follows_wall_clock(void **state)
{
	struct hlc c = { 0 };

	assert_true(hlc_now(&c, 1000) == HLC_MAKE(1000, 0));
	assert_true(hlc_now(&c, 1001) == HLC_MAKE(1001, 0));
}

/* Two events in the same millisecond, and a clock that steps back, still order strictly. */
static void test_now_monotonic_when_clock_goes_back(void **state)
{
	struct hlc c = { 0 };
	uint64_t a, b, d, e;

	a = hlc_now(&c, 5000);
	b = hlc_now(&c, 5000);
	d = hlc_now(&c, 4000); /* NTP step back */
	e = hlc_now(&c, 4500);
	assert_true(a < b && b < d && d < e);
	assert_int_equal(HLC_PHYS(e), 5000);
	assert_int_equal(HLC_LOGICAL(e), 3);
	/* once the wall clock passes the stored time, the logical part resets */
	assert_true(hlc_now(&c, 5001) == HLC_MAKE(5001, 0));
}

static void test_logical_overflow_carries(void **state)
{
	struct hlc c = { .last = HLC_MAKE(7, 0xffff) };
	uint64_t t = hlc_now(&c, 7);

	assert_true(t > HLC_MAKE(7, 0xffff));
	assert_int_equal(HLC_PHYS(t), 8);
	assert_int_equal(HLC_LOGICAL(t), 0);
}

static void test_update_merges_remote(void **state)
{
	struct hlc c = { 0 };
	uint64_t remote = HLC_MAKE(9000, 4), t;

	hlc_now(&c, 1000);
	t = hlc_update(&c, remote, 1000); /* remote is ahead of us */
	assert_true(t > remote);
	assert_true(t == HLC_MAKE(9000, 5));
	assert_true(hlc_now(&c, 1000) > t);
	/* a stale remote does not pull us back */
	t = hlc_update(&c, HLC_MAKE(10, 0), 1000);
	assert_true(t == HLC_MAKE(9000, 7));
	/* a wall clock ahead of everything wins */
	assert_true(hlc_update(&c, remote, 20000) == HLC_MAKE(20000, 0));
}

static void test_reg_version_cmp(void **state)
{
	assert_true(reg_version_cmp(1, "a", 2, "a") < 0);
	assert_true(reg_version_cmp(2, "a", 1, "z") > 0);
	assert_true(reg_version_cmp(5, "n1", 5, "n2") < 0);
	assert_true(reg_version_cmp(5, "n2", 5, "n1") > 0);
	assert_int_equal(reg_version_cmp(5, "n1", 5, "n1"), 0);
	assert_true(reg_version_cmp(5, NULL, 5, "n1") < 0);
	assert_int_equal(reg_version_cmp(0, NULL, 0, ""), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_now_follows_wall_clock),
		cmocka_unit_test(test_now_monotonic_when_clock_goes_back),
		cmocka_unit_test(test_logical_overflow_carries),
		cmocka_unit_test(test_update_merges_remote),
		cmocka_unit_test(test_reg_version_cmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
