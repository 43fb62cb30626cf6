// SPDX-License-Identifier: Apache-2.0
/* WebSocket framing and the Kubernetes channel helpers. See ws.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cJSON.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "lib/macro.h"
#include "lib/ws.h"

int ws_accept_key(const char *key, char out[29])
{
	unsigned char md[SHA_DIGEST_LENGTH];
	_cleanup_free_ char *buf = NULL;

	if (!key || !*key || strlen(key) > 128)
		return -EINVAL;
	if (asprintf(&buf, "%s%s", key, WS_GUID) < 0)
		return -ENOMEM;
	if (!EVP_Digest(buf, strlen(buf), md, NULL, EVP_sha1(), NULL))
		return -EIO;
	EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
	return 0;
}

size_t ws_frame_header(enum ws_opcode op, bool fin, uint64_t payload_len, const uint8_t *mask,
		       uint8_t out[14])
{
	size_t n = 0;

	out[n++] = (fin ? 0x80 : 0) | (op & 0x0f);
	if (payload_len < 126) {
		out[n++] = (mask ? 0x80 : 0) | (uint8_t)payload_len;
	} else if (payload_len <= 0xffff) {
		out[n++] = (mask ? 0x80 : 0) | 126;
		out[n++] = (uint8_t)(payload_len >> 8);
		out[n++] = (uint8_t)payload_len;
	} else {
		out[n++] = (mask ? 0x80 : 0) | 127;
		for (int i = 7; i >= 0; i--)
			out[n++] = (uint8_t)(payload_len >> (8 * i));
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

int ws_frame_parse(const uint8_t *buf, size_t len, uint64_t max_payload, struct ws_frame *ret)
{
	size_t n = 2;
	uint64_t pl;

	memset(ret, 0, sizeof(*ret));
	if (len < 2)
		return 0;
	if (buf[0] & 0x70)
		return -EBADMSG; /* RSV bits: no extension was negotiated */
	ret->fin = buf[0] & 0x80;
	ret->op = buf[0] & 0x0f;
	ret->masked = buf[1] & 0x80;
	switch (ret->op) {
	case WS_OP_CONT:
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!ret->fin || (buf[1] & 0x7f) > 125)
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	pl = buf[1] & 0x7f;
	if (pl == 126) {
		if (len < 4)
			return 0;
		pl = (uint64_t)buf[2] << 8 | buf[3];
		n = 4;
	} else if (pl == 127) {
		if (len < 10)
			return 0;
		pl = 0;
		for (int i = 0; i < 8; i++)
			pl = pl << 8 | buf[2 + i];
		if (pl >> 63)
			return -EBADMSG;
		n = 10;
	}
	if (pl > max_payload)
		return -EMSGSIZE;
	if (ret->masked) {
		if (len < n + 4)
			return 0;
		memcpy(ret->mask, buf + n, 4);
		n += 4;
	}
	if (len - n < pl)
		return 0;
	ret->header_len = n;
	ret->payload_len = pl;
	return 1;
}

void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
	for (size_t i = 0; i < n; i++)
		p[i] ^= mask[(offset + i) & 3];
}

bool ws_header_has_token(const char *value, const char *token)
{
	size_t tl = strlen(token);
	const char *p = value;

	if (!value)
		return false;
	while (*p) {
		const char *s, *e;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		s = p;
		while (*p && *p != ',')
			p++;
		e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == tl && !strncasecmp(s, token, tl))
			return true;
	}
	return false;
}

int ws_k8s_status_exit_code(const char *json, size_t len)
{
	_cleanup_json_ cJSON *st = cJSON_ParseWithLength(json, len);
	const cJSON *c;
	const char *s;

	if (!st)
		return -1;
	s = cJSON_GetStringValue(cJSON_GetObjectItem(st, "status"));
	if (s && !strcmp(s, "Success"))
		return 0;
	s = cJSON_GetStringValue(cJSON_GetObjectItem(st, "reason"));
	if (!s || strcmp(s, "NonZeroExitCode"))
		return -1;
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(cJSON_GetObjectItem(st, "details"), "causes"))
	{
		const char *r = cJSON_GetStringValue(cJSON_GetObjectItem(c, "reason"));
		const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(c, "message"));

		if (r && m && !strcmp(r, "ExitCode"))
			return atoi(m);
	}
	return -1;
}
