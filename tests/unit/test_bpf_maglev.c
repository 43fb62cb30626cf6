// SPDX-License-Identifier: Apache-2.0
/* Maglev tables: full, balanced, order-independent, seed-dependent, and stable under change. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bpf/maglev.h"

#define M 16381

static struct shoal_backend be(int i)
{
	return (struct shoal_backend){ .ip = htonl(0x0afa0100u + (uint32_t)i), .port = htons(8080),
				       .proto = 6 };
}

static void test_full_and_balanced(void **state)
{
	static uint32_t t[M];
	struct shoal_backend b[7];
	size_t count[7] = { 0 };

	for (int i = 0; i < 7; i++)
		b[i] = be(i);
	assert_int_equal(lb_maglev_build(b, 7, 42, t, M), 0);
	for (size_t j = 0; j < M; j++) {
		assert_true(t[j] < 7);
		count[t[j]]++;
	}
	/* round-robin filling: shares differ by at most one entry */
	for (int i = 0; i < 7; i++)
		assert_true(count[i] == M / 7 || count[i] == M / 7 + 1);
}

static void test_same_on_every_node_whatever_the_order(void **state)
{
	static uint32_t t1[M], t2[M];
	struct shoal_backend a[5], r[5];

	for (int i = 0; i < 5; i++) {
		a[i] = be(i);
		r[4 - i] = be(i);
	}
	assert_int_equal(lb_maglev_build(a, 5, 7, t1, M), 0);
	assert_int_equal(lb_maglev_build(r, 5, 7, t2, M), 0);
	for (size_t j = 0; j < M; j++)
		assert_true(a[t1[j]].ip == r[t2[j]].ip);
	/* another seed, another table */
	assert_int_equal(lb_maglev_build(a, 5, 8, t2, M), 0);
	assert_memory_not_equal(t1, t2, sizeof(t1));
}

static void test_removal_moves_few_flows(void **state)
{
	static uint32_t before[M], after[M];
	struct shoal_backend b[10], less[9];
	size_t moved = 0;

	for (int i = 0; i < 10; i++)
		b[i] = be(i);
	memcpy(less, b, 3 * sizeof(*b));
	memcpy(less + 3, b + 4, 6 * sizeof(*b)); /* backend 3 goes */
	assert_int_equal(lb_maglev_build(b, 10, 1, before, M), 0);
	assert_int_equal(lb_maglev_build(less, 9, 1, after, M), 0);
	for (size_t j = 0; j < M; j++) {
		if (before[j] == 3)
			continue; /* those flows must move */
		if (b[before[j]].ip != less[after[j]].ip)
			moved++;
	}
	/* flows of surviving backends mostly stay (the paper's bound is a few percent) */
	assert_true(moved < M / 20);
}

static void test_rejects_bad_sizes(void **state)
{
	uint32_t t[16];
	struct shoal_backend b[2] = { be(0), be(1) };

	assert_int_equal(lb_maglev_build(b, 2, 0, t, 15), -EINVAL); /* not prime */
	assert_int_equal(lb_maglev_build(b, 0, 0, t, 13), -EINVAL);
	assert_int_equal(lb_maglev_build(b, 2, 0, t, 2), -EINVAL); /* not larger than n */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_and_balanced),
		cmocka_unit_test(test_same_on_every_node_whatever_the_order),
		cmocka_unit_test(test_removal_moves_few_flows),
		cmocka_unit_test(test_rejects_bad_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
