/* SPDX-License-Identifier: Apache-2.0 */
/*
 * WebSocket (RFC 6455) framing and handshake, and the Kubernetes stream channels carried on
 * it (v4/v5.channel.k8s.io: each binary message starts with a channel byte). Used by the
 * API's exec endpoint (api/podexec.c) and by `shoalctl exec`. Pure: buffers in, buffers out.
 */
#ifndef SHOAL_LIB_WS_H
#define SHOAL_LIB_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* Kubernetes remotecommand channels */
enum ws_k8s_channel {
	WS_CH_STDIN = 0,
	WS_CH_STDOUT = 1,
	WS_CH_STDERR = 2,
	WS_CH_ERROR = 3,  /* v4+: a metav1.Status JSON when the command ends */
	WS_CH_RESIZE = 4, /* {"Width":W,"Height":H} */
	WS_CH_CLOSE = 255 /* v5: [255, channel] half-closes that channel (stdin) */
};

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA1(key + GUID)), 28 chars + NUL. */
int ws_accept_key(const char *key, char out[29]);

/* Frame header into out (<= 14 bytes); mask NULL for server frames. Returns its length. */
size_t ws_frame_header(enum ws_opcode op, bool fin, uint64_t payload_len, const uint8_t *mask,
		       uint8_t out[14]);

struct ws_frame {
	enum ws_opcode op;
	bool fin, masked;
	uint8_t mask[4];
	size_t header_len;
	uint64_t payload_len;
};

/*
 * Parse the frame at the start of buf. Returns 1 with *ret filled when the header and the
 * whole payload (header_len + payload_len bytes) are in buf, 0 when more bytes are needed,
 * -EBADMSG on a malformed frame (reserved bits, fragmented or long control frame, unknown
 * opcode), -EMSGSIZE when the payload exceeds max_payload.
 */
int ws_frame_parse(const uint8_t *buf, size_t len, uint64_t max_payload, struct ws_frame *ret);
/* XOR payload bytes with the mask (offset: position of p within the payload). */
void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* Does a comma-separated header value (Connection, Upgrade, Sec-WebSocket-Protocol) contain
 * token, case-insensitively? */
bool ws_header_has_token(const char *value, const char *token);

/* Exit code carried by a v4+ error-channel Status: 0 for Success, the ExitCode cause for a
 * NonZeroExitCode failure, -1 for any other failure (message in the Status). */
int ws_k8s_status_exit_code(const char *json, size_t len);

#endif
