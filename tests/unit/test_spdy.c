// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/spdy.h"

/* kubectl's first stream pair, compressed by another zlib (Python's, with the SPDY dictionary,
 * sync-flushed per block as Go's framer does): the second block depends on the first. */
static const uint8_t block1[] = {
    0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0x25, 0x3a, 0x70, 0x3a, 0x2b, 0x29,
    0x4a, 0x4d, 0xcc, 0x85, 0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x86, 0x14, 0xcb,
    0x45, 0xe0, 0x1c, 0x60, 0x61, 0x60, 0x61, 0x00, 0xa4, 0x39, 0x8b, 0x20, 0xd1,
    0x98, 0x09, 0x4a, 0xde, 0x8c, 0x06, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
};
static const uint8_t block2[] = {0xc2, 0xaa, 0x19, 0x54, 0x0e, 0x25, 0x12,
				 0xd6, 0x0b, 0x00, 0x00, 0x00, 0xff, 0xff};

static void test_decode_foreign_blocks(void **state)
{
	struct spdy_zctx *z = NULL;
	struct spdy_headers h;

	assert_int_equal(spdy_zctx_new(false, &z), 0);
	assert_int_equal(spdy_headers_decode(z, block1, sizeof(block1), &h), 0);
	assert_int_equal(h.n, 3);
	assert_string_equal(spdy_headers_get(&h, "streamtype"), "error");
	assert_string_equal(spdy_headers_get(&h, "port"), "8080");
	assert_string_equal(spdy_headers_get(&h, "requestid"), "0");
	assert_null(spdy_headers_get(&h, "other"));
	spdy_headers_done(&h);
	assert_int_equal(spdy_headers_decode(z, block2, sizeof(block2), &h), 0);
	assert_string_equal(spdy_headers_get(&h, "streamtype"), "data");
	assert_string_equal(spdy_headers_get(&h, "port"), "8080");
	spdy_headers_done(&h);
	spdy_zctx_free(z);

	/* the second block alone cannot be read: the contexts are per connection */
	assert_int_equal(spdy_zctx_new(false, &z), 0);
	assert_true(spdy_headers_decode(z, block2, sizeof(block2), &h) < 0);
	/* and a broken context stays broken */
	assert_true(spdy_headers_decode(z, block1, sizeof(block1), &h) < 0);
	spdy_zctx_free(z);
}

static void test_roundtrip(void **state)
{
	struct spdy_zctx *out = NULL, *in = NULL;
	const char *kv[] = {"streamtype", "data", "port", "65535", "requestid", "12"};
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(spdy_zctx_new(true, &out), 0);
	assert_int_equal(spdy_zctx_new(false, &in), 0);
	for (int i = 0; i < 50; i++) {
		const char *kv2[] = {"a", big, "b", ""};
		struct spdy_headers h;
		uint8_t *buf = NULL;
		size_t len = 0;

		/* empty (a SYN_REPLY), three pairs, a large value */
		assert_int_equal(spdy_headers_encode(out, kv, i % 3 == 0 ? 0 : 3, &buf, &len), 0);
		assert_int_equal(spdy_headers_decode(in, buf, len, &h), 0);
		assert_int_equal(h.n, i % 3 == 0 ? 0 : 3);
		if (h.n)
			assert_string_equal(spdy_headers_get(&h, "port"), "65535");
		spdy_headers_done(&h);
		free(buf);
		assert_int_equal(spdy_headers_encode(out, kv2, 2, &buf, &len), 0);
		assert_int_equal(spdy_headers_decode(in, buf, len, &h), 0);
		assert_string_equal(spdy_headers_get(&h, "a"), big);
		assert_string_equal(spdy_headers_get(&h, "b"), "");
		spdy_headers_done(&h);
		free(buf);
	}
	spdy_zctx_free(out);
	spdy_zctx_free(in);
}

static void test_frames(void **state)
{
	uint8_t buf[64];
	struct spdy_frame f;

	/* a data frame: every prefix needs more */
	spdy_data_header(7, SPDY_FLAG_FIN, 5, buf);
	memcpy(buf + 8, "hello", 5);
	for (size_t i = 0; i < 13; i++)
		assert_int_equal(spdy_frame_parse(buf, i, 1 << 20, &f), 0);
	assert_int_equal(spdy_frame_parse(buf, 13, 1 << 20, &f), 1);
	assert_false(f.control);
	assert_int_equal(f.stream_id, 7);
	assert_int_equal(f.flags, SPDY_FLAG_FIN);
	assert_int_equal(f.payload_len, 5);
	assert_memory_equal(f.payload, "hello", 5);
	assert_int_equal(f.frame_len, 13);
	assert_int_equal(spdy_frame_parse(buf, 13, 4, &f), -EMSGSIZE);
	/* stream 0 carries no data */
	spdy_data_header(0, 0, 0, buf);
	assert_int_equal(spdy_frame_parse(buf, 8, 1 << 20, &f), -EBADMSG);

	spdy_rst_stream(3, SPDY_RST_CANCEL, buf);
	assert_int_equal(spdy_frame_parse(buf, 16, 1 << 20, &f), 1);
	assert_true(f.control);
	assert_int_equal(f.type, SPDY_RST_STREAM);
	assert_int_equal(f.stream_id, 3);
	assert_int_equal(f.status, SPDY_RST_CANCEL);

	spdy_ping(9, buf);
	assert_int_equal(spdy_frame_parse(buf, 12, 1 << 20, &f), 1);
	assert_int_equal(f.type, SPDY_PING);
	assert_int_equal(f.stream_id, 9);

	spdy_goaway(0, 0, buf);
	assert_int_equal(spdy_frame_parse(buf, 16, 1 << 20, &f), 1);
	assert_int_equal(f.type, SPDY_GOAWAY);
	assert_int_equal(f.stream_id, 0);

	/* SYN_STREAM: id, associated id, priority, slot, then the header block */
	spdy_control_header(SPDY_SYN_STREAM, 0, 10 + 3, buf);
	memcpy(buf + 8, "\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00zzz", 13);
	assert_int_equal(spdy_frame_parse(buf, 21, 1 << 20, &f), 1);
	assert_int_equal(f.type, SPDY_SYN_STREAM);
	assert_int_equal(f.stream_id, 5);
	assert_int_equal(f.payload_len, 3);
	assert_memory_equal(f.payload, "zzz", 3);
	/* too short for its type; another version */
	spdy_control_header(SPDY_SYN_STREAM, 0, 4, buf);
	assert_int_equal(spdy_frame_parse(buf, 12, 1 << 20, &f), -EBADMSG);
	spdy_control_header(SPDY_PING, 0, 4, buf);
	buf[1] = 2;
	assert_int_equal(spdy_frame_parse(buf, 12, 1 << 20, &f), -EBADMSG);
	/* unknown control types parse, to be skipped */
	spdy_control_header(0x42, 0, 2, buf);
	assert_int_equal(spdy_frame_parse(buf, 10, 1 << 20, &f), 1);
	assert_int_equal(f.frame_len, 10);
}

static void test_garbage_blocks(void **state)
{
	/* random input never crashes, and bad blocks are refused */
	srand(4);
	for (int i = 0; i < 2000; i++) {
		struct spdy_zctx *z = NULL;
		struct spdy_headers h;
		uint8_t buf[80] = {0};
		size_t n = (size_t)(rand() % (int)sizeof(buf));

		memcpy(buf, block1, sizeof(block1));
		for (size_t k = 0; k < 1 + (size_t)(rand() % 4); k++)
			buf[rand() % (int)sizeof(buf)] = (uint8_t)rand();
		assert_int_equal(spdy_zctx_new(false, &z), 0);
		if (spdy_headers_decode(z, buf, n, &h) == 0)
			spdy_headers_done(&h);
		spdy_zctx_free(z);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_foreign_blocks),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_frames),
	    cmocka_unit_test(test_garbage_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
