// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/crilog.h"

struct out {
	char buf[4096];
	size_t len;
};

static void emit(const char *b, size_t n, void *ud)
{
	struct out *o = ud;

	assert_true(o->len + n < sizeof(o->buf));
	memcpy(o->buf + o->len, b, n);
	o->len += n;
	o->buf[o->len] = 0;
}

static const char LOG[] = "2024-01-01T00:00:01.000000001Z stdout F one\n"
			  "2024-01-01T00:00:02Z stderr F two\n"
			  "2024-01-01T00:00:03.5Z stdout P thr\n"
			  "2024-01-01T00:00:03.6Z stdout P e\n"
			  "2024-01-01T00:00:03.7Z stdout F e\n"
			  "2024-01-01T00:00:04Z stdout F \n"
			  "2024-01-01T00:00:05Z stdout F five\n";

static void test_parse(void **state)
{
	struct crilog_rec r;
	const char *l = "2024-01-01T00:00:01.000000001Z stderr F hello world";

	assert_int_equal(crilog_parse(l, strlen(l), &r), 0);
	assert_true(r.is_stderr);
	assert_false(r.partial);
	assert_int_equal(r.msg_len, 11);
	assert_memory_equal(r.msg, "hello world", 11);
	assert_int_equal(r.ts_len, 30);
	assert_true(r.ts_ns == 1704067201000000001LL);
	l = "2024-01-01T00:00:01Z stdout P";
	assert_int_equal(crilog_parse(l, strlen(l), &r), 0);
	assert_true(r.partial);
	assert_int_equal(r.msg_len, 0);
	l = "2024-01-01T00:00:01Z stdout F:x y";
	assert_int_equal(crilog_parse(l, strlen(l), &r), 0);
	assert_memory_equal(r.msg, "y", 1);
	assert_int_equal(crilog_parse("garbage", 7, &r), -EBADMSG);
	l = "2024-01-01T00:00:01Z stdin F x";
	assert_int_equal(crilog_parse(l, strlen(l), &r), -EBADMSG);
	l = "2024-01-01T00:00:01Z stdout X x";
	assert_int_equal(crilog_parse(l, strlen(l), &r), -EBADMSG);
}

static void test_time(void **state)
{
	int64_t t;

	assert_int_equal(crilog_time_parse("1970-01-01T00:00:00Z", 20, &t), 0);
	assert_true(t == 0);
	assert_int_equal(crilog_time_parse("1970-01-01T01:00:00+01:00", 25, &t), 0);
	assert_true(t == 0);
	assert_int_equal(crilog_time_parse("1970-01-01T00:00:00.25Z", 23, &t), 0);
	assert_true(t == 250000000);
	assert_int_equal(crilog_time_parse("1970-01-01T00:00:00", 19, &t), -EINVAL);
	assert_int_equal(crilog_time_parse("1970-13-01T00:00:00Z", 20, &t), -EINVAL);
}

static void run(struct crilog_dec *d, const char *in, size_t step, struct out *o)
{
	size_t len = strlen(in);

	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < len; i += step)
		assert_int_equal(crilog_dec_feed(d, in + i, len - i < step ? len - i : step, emit, o),
				 0);
	crilog_dec_done(d);
}

static void test_decode(void **state)
{
	struct out o;

	/* any chunking gives the same text */
	for (size_t step = 1; step < 64; step += 7) {
		struct crilog_dec d = { 0 };
		run(&d, LOG, step, &o);
		assert_string_equal(o.buf, "one\ntwo\nthree\n\nfive\n");
	}
	struct crilog_dec ts = { .timestamps = true };
	run(&ts, LOG, 4096, &o);
	assert_string_equal(o.buf, "2024-01-01T00:00:01.000000001Z one\n"
				   "2024-01-01T00:00:02Z two\n"
				   "2024-01-01T00:00:03.5Z three\n"
				   "2024-01-01T00:00:04Z \n"
				   "2024-01-01T00:00:05Z five\n");
	struct crilog_dec since = { .since_ns = 1704067203000000000LL };
	run(&since, LOG, 10, &o);
	assert_string_equal(o.buf, "three\n\nfive\n");
	struct crilog_dec lim = { .limit_bytes = 6 };
	run(&lim, LOG, 3, &o);
	assert_string_equal(o.buf, "one\ntw");
	assert_true(lim.full);
	/* a line that is not a CRI record passes through */
	struct crilog_dec raw = { 0 };
	run(&raw, "not cri\n2024-01-01T00:00:05Z stdout F x\n", 5, &o);
	assert_string_equal(o.buf, "not cri\nx\n");
}

static void test_tail(void **state)
{
	size_t len = strlen(LOG);
	long off;

	off = crilog_tail_offset(LOG, len, 1, true);
	assert_string_equal(LOG + off, "2024-01-01T00:00:05Z stdout F five\n");
	off = crilog_tail_offset(LOG, len, 3, true);
	assert_true(!strncmp(LOG + off, "2024-01-01T00:00:03.5Z stdout P thr", 35));
	assert_int_equal(crilog_tail_offset(LOG, len, 5, true), 0);
	assert_int_equal(crilog_tail_offset(LOG, len, 50, true), 0);
	assert_int_equal(crilog_tail_offset(LOG, len, 0, true), (long)len);
	/* a window starting mid-file: enough lines -> offset, too few -> -1 */
	const char *win = strstr(LOG, "2024-01-01T00:00:03.6Z");
	off = crilog_tail_offset(win, strlen(win), 2, false);
	assert_true(off > 0 && !strcmp(win + off, "2024-01-01T00:00:04Z stdout F \n"
						  "2024-01-01T00:00:05Z stdout F five\n"));
	assert_int_equal(crilog_tail_offset(win, strlen(win), 3, false), -1);
	/* an unterminated last record is not counted */
	const char *cut = "2024-01-01T00:00:05Z stdout F a\n2024-01-01T00:00:05Z stdout F b";
	assert_int_equal(crilog_tail_offset(cut, strlen(cut), 1, true), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_tail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
