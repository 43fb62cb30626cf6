/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00, as github.com/moby/spdystream speaks it),
 * the part Kubernetes' port-forward needs: since 1.31 kubectl tunnels a SPDY connection through
 * a WebSocket (subprotocol "SPDY/3.1+portforward.k8s.io", KEP-4006) and opens one stream pair
 * (error + data) per forwarded connection. Header blocks are zlib streams with SPDY's fixed
 * dictionary, one compression context per direction for the whole connection.
 * Pure: buffers in, buffers out (zlib does the compression). Used by api/podfwd.c.
 */
#ifndef SHOAL_LIB_SPDY_H
#define SHOAL_LIB_SPDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPDY_VERSION 3
#define SPDY_HEADER_LEN 8
#define SPDY_MAX_LEN 0xffffff /* 24-bit length field */
#define SPDY_FLAG_FIN 0x01

enum spdy_type {
	SPDY_SYN_STREAM = 1,
	SPDY_SYN_REPLY = 2,
	SPDY_RST_STREAM = 3,
	SPDY_SETTINGS = 4,
	SPDY_PING = 6,
	SPDY_GOAWAY = 7,
	SPDY_HEADERS = 8,
	SPDY_WINDOW_UPDATE = 9,
};

enum spdy_rst_status {
	SPDY_RST_PROTOCOL_ERROR = 1,
	SPDY_RST_INVALID_STREAM = 2,
	SPDY_RST_REFUSED_STREAM = 3,
	SPDY_RST_CANCEL = 5,
	SPDY_RST_INTERNAL_ERROR = 6,
};

struct spdy_frame {
	bool control;
	uint16_t type; /* control frames: enum spdy_type */
	uint8_t flags;
	uint32_t stream_id;	/* data, SYN_STREAM/REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE; the
				 * PING id; GOAWAY's last good stream id */
	uint32_t status;	/* RST_STREAM, GOAWAY */
	const uint8_t *payload; /* data frames: the data; SYN_STREAM/SYN_REPLY/HEADERS: the
				 * compressed header block; else the raw payload */
	size_t payload_len;
	size_t frame_len; /* header + length: what to consume */
};

/*
 * Parse the frame at the start of buf. 1: *ret filled (the whole frame is in buf); 0: more
 * bytes needed; -EMSGSIZE: its length exceeds max_len; -EBADMSG: malformed (a control frame of
 * another version, or too short for its type, or stream id 0 where one is required).
 * Unknown control types parse (the caller ignores them).
 */
int spdy_frame_parse(const uint8_t *buf, size_t len, size_t max_len, struct spdy_frame *ret);

/* Headers of data and control frames (8 bytes). */
void spdy_data_header(uint32_t stream_id, uint8_t flags, uint32_t len, uint8_t out[8]);
void spdy_control_header(enum spdy_type type, uint8_t flags, uint32_t len, uint8_t out[8]);
/* Whole small frames: RST_STREAM and GOAWAY are 16 bytes, PING 12. */
void spdy_rst_stream(uint32_t stream_id, enum spdy_rst_status status, uint8_t out[16]);
void spdy_goaway(uint32_t last_good, uint32_t status, uint8_t out[16]);
void spdy_ping(uint32_t id, uint8_t out[12]);

/* One direction's header compression context. */
struct spdy_zctx;
int spdy_zctx_new(bool deflate, struct spdy_zctx **ret);
struct spdy_zctx *spdy_zctx_free(struct spdy_zctx *z);

struct spdy_header {
	char *name;  /* lower case on the wire */
	char *value; /* several values are NUL-separated on the wire; the first one */
};
struct spdy_headers {
	struct spdy_header *h;
	size_t n;
};
void spdy_headers_done(struct spdy_headers *h);
const char *spdy_headers_get(const struct spdy_headers *h, const char *name);

/*
 * Decompress and parse one frame's header block (z from spdy_zctx_new(false)). -EBADMSG on a
 * corrupt stream or block, -EMSGSIZE past 64 KiB or 128 pairs. A failed block leaves the
 * context unusable (SPDY then ends the connection).
 */
int spdy_headers_decode(struct spdy_zctx *z, const uint8_t *in, size_t n, struct spdy_headers *ret);
/* Compress a header block of npairs name/value pairs (kv[2i], kv[2i+1]) with
 * spdy_zctx_new(true)'s z; *ret malloc'd. */
int spdy_headers_encode(struct spdy_zctx *z, const char *const *kv, size_t npairs, uint8_t **ret,
			size_t *ret_len);

#endif
