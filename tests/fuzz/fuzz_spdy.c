// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the SPDY/3.1 framing a port-forward client sends (lib/spdy.c): a run of
 * frames with one header decompression context across them, the input as one header block,
 * and a compress/decompress round trip of name/value pairs cut from the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/spdy.h"

static void frames(const uint8_t *data, size_t size)
{
	struct spdy_zctx *z = NULL;
	size_t o = 0;

	if (spdy_zctx_new(false, &z) < 0)
		return;
	while (o < size) {
		struct spdy_frame f;
		struct spdy_headers h;

		if (spdy_frame_parse(data + o, size - o, 1 << 20, &f) <= 0)
			break;
		if (f.control &&
		    (f.type == SPDY_SYN_STREAM || f.type == SPDY_SYN_REPLY ||
		     f.type == SPDY_HEADERS) &&
		    spdy_headers_decode(z, f.payload, f.payload_len, &h) == 0) {
			(void)spdy_headers_get(&h, "port");
			spdy_headers_done(&h);
		}
		o += f.frame_len;
	}
	spdy_zctx_free(z);
}

static void roundtrip(const uint8_t *data, size_t size)
{
	struct spdy_zctx *out = NULL, *in = NULL;
	char *copy = malloc(size + 1), *kv[16];
	struct spdy_headers h = {0};
	uint8_t *blk = NULL;
	size_t n = 0, len = 0;

	if (!copy)
		return;
	memcpy(copy, data, size);
	copy[size] = 0;
	/* NUL-separated strings, an even number of them */
	for (char *p = copy; p < copy + size && n < 16; p += strlen(p) + 1)
		kv[n++] = p;
	n &= ~(size_t)1;
	if (spdy_zctx_new(true, &out) == 0 && spdy_zctx_new(false, &in) == 0 &&
	    spdy_headers_encode(out, (const char *const *)kv, n / 2, &blk, &len) == 0) {
		if (spdy_headers_decode(in, blk, len, &h) != 0 || h.n != n / 2)
			abort();
		for (size_t i = 0; i < h.n; i++)
			if (strcmp(h.h[i].name, kv[2 * i]) || strcmp(h.h[i].value, kv[2 * i + 1]))
				abort();
		spdy_headers_done(&h);
	}
	free(blk);
	spdy_zctx_free(out);
	spdy_zctx_free(in);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spdy_zctx *z = NULL;
	struct spdy_headers h;

	frames(data, size);
	if (spdy_zctx_new(false, &z) == 0) {
		if (spdy_headers_decode(z, data, size, &h) == 0)
			spdy_headers_done(&h);
		spdy_zctx_free(z);
	}
	roundtrip(data, size);
	return 0;
}
