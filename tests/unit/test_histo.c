// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "lib/histo.h"

static const uint64_t bounds_ms[] = {1, 5, 2500};
static const uint64_t bounds_us[] = {1000, 2500000};

/* Buckets are cumulative, a value on a bound counts in it, the sum is in seconds. */
static void test_format_ms(void **state)
{
	struct histo h = HISTO_INIT(bounds_ms, 3);
	char *text = NULL;

	histo_observe(&h, 0);
	histo_observe(&h, 1);
	histo_observe(&h, 2);
	histo_observe(&h, 2500);
	histo_observe(&h, 9999);
	assert_int_equal(histo_format(&h, "x_seconds", "Help text.", &text), 0);
	assert_string_equal(text, "# HELP x_seconds Help text.\n"
				  "# TYPE x_seconds histogram\n"
				  "x_seconds_bucket{le=\"0.001\"} 2\n"
				  "x_seconds_bucket{le=\"0.005\"} 3\n"
				  "x_seconds_bucket{le=\"2.5\"} 4\n"
				  "x_seconds_bucket{le=\"+Inf\"} 5\n"
				  "x_seconds_sum 12.502\n"
				  "x_seconds_count 5\n");
	free(text);
}

static void test_format_us_empty(void **state)
{
	struct histo h = HISTO_INIT(bounds_us, 6);
	char *text = NULL;

	assert_int_equal(histo_format(&h, "y_seconds", "Y.", &text), 0);
	assert_string_equal(text, "# HELP y_seconds Y.\n"
				  "# TYPE y_seconds histogram\n"
				  "y_seconds_bucket{le=\"0.001\"} 0\n"
				  "y_seconds_bucket{le=\"2.5\"} 0\n"
				  "y_seconds_bucket{le=\"+Inf\"} 0\n"
				  "y_seconds_sum 0.000000\n"
				  "y_seconds_count 0\n");
	free(text);
	histo_observe(&h, 1001);
	assert_int_equal(histo_format(&h, "y_seconds", "Y.", &text), 0);
	assert_string_equal(text, "# HELP y_seconds Y.\n"
				  "# TYPE y_seconds histogram\n"
				  "y_seconds_bucket{le=\"0.001\"} 0\n"
				  "y_seconds_bucket{le=\"2.5\"} 1\n"
				  "y_seconds_bucket{le=\"+Inf\"} 1\n"
				  "y_seconds_sum 0.001001\n"
				  "y_seconds_count 1\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_ms),
	    cmocka_unit_test(test_format_us_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
