// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/saver.h"
#include "lib/util.h"

static char dir[] = "/tmp/test_saver.XXXXXX";

static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len;

	if (util_read_file(path, 1 << 20, &text, &len) < 0)
		return NULL;
	return text;
}

/* Many contents put back to back: whatever was coalesced, the file ends with the last one. */
static void test_last_content_wins(void **state)
{
	char path[64], buf[32];
	struct saver *s;
	char *text;

	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(saver_new(path, 0600, true, &s), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "content %d\n", i);
		assert_int_equal(saver_put(s, buf, strlen(buf)), 0);
	}
	assert_int_equal(saver_flush(s), 0);
	assert_false(saver_busy(s));
	text = slurp(path);
	assert_non_null(text);
	assert_string_equal(text, "content 999\n");
	free(text);
	assert_int_equal(saver_poll(s), 0);
	/* a later put after the flush is written too */
	assert_int_equal(saver_put(s, "again\n", 6), 0);
	assert_int_equal(saver_flush(s), 0);
	text = slurp(path);
	assert_string_equal(text, "again\n");
	free(text);
	saver_free(s);
	unlink(path);
}

/* saver_free writes what is still queued and joins: the file holds the last content after it. */
static void test_free_writes_last(void **state)
{
	char path[64], buf[32];
	struct saver *s;
	char *text;

	snprintf(path, sizeof(path), "%s/b", dir);
	assert_int_equal(saver_new(path, 0600, false, &s), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		assert_int_equal(saver_put(s, buf, strlen(buf)), 0);
	}
	assert_null(saver_free(s));
	text = slurp(path);
	assert_non_null(text);
	assert_string_equal(text, "49");
	free(text);
	unlink(path);
	/* nothing put: no file */
	assert_int_equal(saver_new(path, 0600, false, &s), 0);
	saver_free(s);
	assert_int_equal(access(path, F_OK), -1);
}

/* A failed write is reported once by saver_poll (and by saver_flush). */
static void test_failure_reported(void **state)
{
	char path[96];
	struct saver *s;

	snprintf(path, sizeof(path), "%s/missing/c", dir);
	assert_int_equal(saver_new(path, 0600, false, &s), 0);
	assert_int_equal(saver_put(s, "x", 1), 0);
	assert_true(saver_flush(s) < 0);
	assert_true(saver_poll(s) < 0);
	assert_int_equal(saver_poll(s), 0);
	saver_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_last_content_wins),
	    cmocka_unit_test(test_free_writes_last),
	    cmocka_unit_test(test_failure_reported),
	};
	int r;

	if (!mkdtemp(dir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return r;
}
