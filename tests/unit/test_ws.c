// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "lib/ws.h"

static void test_accept(void **state)
{
	char out[29];

	/* the example of RFC 6455 section 1.3 */
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(ws_accept_key("", out), -EINVAL);
}

static void roundtrip(uint64_t len, const uint8_t *mask)
{
	static uint8_t buf[70000 + 14];
	struct ws_frame f;
	size_t h;

	h = ws_frame_header(WS_OP_BINARY, true, len, mask, buf);
	assert_int_equal(h, (len < 126 ? 2 : len <= 0xffff ? 4 : 10) + (mask ? 4 : 0));
	for (uint64_t i = 0; i < len; i++)
		buf[h + i] = (uint8_t)i;
	if (mask)
		ws_unmask(buf + h, len, mask, 0);
	/* every prefix is "need more" */
	for (size_t i = 0; i < h + len; i += 997)
		assert_int_equal(ws_frame_parse(buf, i, 1 << 20, &f), 0);
	assert_int_equal(ws_frame_parse(buf, h + len, 1 << 20, &f), 1);
	assert_int_equal(f.header_len, h);
	assert_true(f.payload_len == len);
	assert_int_equal(f.op, WS_OP_BINARY);
	assert_true(f.fin);
	assert_int_equal(f.masked, mask != NULL);
	if (mask) {
		/* unmask in two pieces: the offset keeps the key aligned */
		ws_unmask(buf + h, len / 2, f.mask, 0);
		ws_unmask(buf + h + len / 2, len - len / 2, f.mask, len / 2);
	}
	for (uint64_t i = 0; i < len; i++)
		assert_int_equal(buf[h + i], (uint8_t)i);
	assert_int_equal(ws_frame_parse(buf, h + len, len ? len - 1 : 0, &f),
			 len ? -EMSGSIZE : 1);
}

static void test_frames(void **state)
{
	const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };

	roundtrip(0, NULL);
	roundtrip(5, NULL);
	roundtrip(125, mask);
	roundtrip(126, NULL);
	roundtrip(65535, mask);
	roundtrip(65536, mask);
}

static void test_rfc_examples(void **state)
{
	/* RFC 6455 5.7: a masked "Hello" from a client */
	uint8_t m[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	struct ws_frame f;

	assert_int_equal(ws_frame_parse(m, sizeof(m), 125, &f), 1);
	assert_int_equal(f.op, WS_OP_TEXT);
	ws_unmask(m + f.header_len, f.payload_len, f.mask, 0);
	assert_memory_equal(m + f.header_len, "Hello", 5);
	/* bad frames */
	uint8_t rsv[] = { 0xc1, 0x00 };
	assert_int_equal(ws_frame_parse(rsv, 2, 125, &f), -EBADMSG);
	uint8_t frag_ping[] = { 0x09, 0x00 };
	assert_int_equal(ws_frame_parse(frag_ping, 2, 125, &f), -EBADMSG);
	uint8_t long_close[] = { 0x88, 126, 0, 200 };
	assert_int_equal(ws_frame_parse(long_close, 4, 1000, &f), -EBADMSG);
	uint8_t bad_op[] = { 0x83, 0x00 };
	assert_int_equal(ws_frame_parse(bad_op, 2, 125, &f), -EBADMSG);
}

static void test_tokens(void **state)
{
	assert_true(ws_header_has_token("keep-alive, Upgrade", "upgrade"));
	assert_true(ws_header_has_token("v5.channel.k8s.io,v4.channel.k8s.io", "v4.channel.k8s.io"));
	assert_false(ws_header_has_token("upgrade-please", "upgrade"));
	assert_false(ws_header_has_token(NULL, "upgrade"));
}

static void test_status(void **state)
{
	const char *ok = "{\"metadata\":{},\"status\":\"Success\"}";
	const char *nz = "{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":"
			 "{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"42\"}]}}";
	const char *other = "{\"status\":\"Failure\",\"reason\":\"InternalError\"}";

	assert_int_equal(ws_k8s_status_exit_code(ok, strlen(ok)), 0);
	assert_int_equal(ws_k8s_status_exit_code(nz, strlen(nz)), 42);
	assert_int_equal(ws_k8s_status_exit_code(other, strlen(other)), -1);
	assert_int_equal(ws_k8s_status_exit_code("x", 1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept),	   cmocka_unit_test(test_frames),
		cmocka_unit_test(test_rfc_examples), cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
