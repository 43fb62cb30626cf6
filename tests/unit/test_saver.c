// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <sys/stat.h>
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

/* wait (poll) until the saver's eventfd says a write ended; reset it */
static void wait_fd(struct saver *s)
{
	struct pollfd pfd = {.fd = saver_fd(s), .events = POLLIN};
	uint64_t v;

	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(read(saver_fd(s), &v, sizeof(v)), (ssize_t)sizeof(v));
	assert_true(v >= 1);
}

/*
 * Tickets: a put's ticket is written once its write or a later one succeeded; a failed write
 * reports its error for every ticket it held until a later write succeeds; the eventfd wakes a
 * loop at each write's end.
 */
static void test_tickets(void **state)
{
	char sub[96], path[128];
	char blocker[160];
	uint64_t t1, t2, t3, t4;
	struct saver *s;
	char *text;

	snprintf(sub, sizeof(sub), "%s/d", dir);
	snprintf(path, sizeof(path), "%s/f", sub);
	snprintf(blocker, sizeof(blocker), "%s/x", path);
	assert_int_equal(saver_new(path, 0600, false, &s), 0);
	/* the directory is missing: the write fails */
	assert_int_equal(saver_put_ticket(s, "1", 1, &t1), 0);
	assert_int_equal(saver_put_ticket(s, "2", 1, &t2), 0);
	assert_true(t1 >= 1 && t2 > t1);
	assert_true(saver_flush(s) < 0);
	wait_fd(s);
	assert_int_equal(saver_written(s, t1), -ENOENT);
	assert_int_equal(saver_written(s, t2), -ENOENT);
	/* the next write succeeds: it holds every content before it */
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(saver_put_ticket(s, "3", 1, &t3), 0);
	assert_true(t3 > t2);
	assert_int_equal(saver_flush(s), 0);
	wait_fd(s);
	assert_int_equal(saver_written(s, t1), 0);
	assert_int_equal(saver_written(s, t3), 0);
	/* a ticket not put yet, or not written yet, is in progress */
	assert_int_equal(saver_written(s, t3 + 1), -EINPROGRESS);
	/* a failure after a success: the earlier ticket stays written, the file keeps it */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mkdir(blocker, 0700), 0); /* a non-empty directory: rename fails */
	assert_int_equal(saver_put_ticket(s, "4", 1, &t4), 0);
	assert_true(saver_flush(s) < 0);
	assert_int_equal(saver_written(s, t3), 0);
	assert_true(saver_written(s, t4) < 0 && saver_written(s, t4) != -EINPROGRESS);
	assert_int_equal(rmdir(blocker), 0);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(saver_put_ticket(s, "5", 1, &t4), 0);
	assert_int_equal(saver_flush(s), 0);
	assert_int_equal(saver_written(s, t4), 0);
	text = slurp(path);
	assert_string_equal(text, "5");
	free(text);
	saver_free(s);
	unlink(path);
	rmdir(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_last_content_wins),
	    cmocka_unit_test(test_free_writes_last),
	    cmocka_unit_test(test_failure_reported),
	    cmocka_unit_test(test_tickets),
	};
	int r;

	if (!mkdtemp(dir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return r;
}
