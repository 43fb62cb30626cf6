// SPDX-License-Identifier: Apache-2.0
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <libfyaml.h>

#include "lib/yaml.h"

DEFINE_CLEANUP_FUNC(struct fy_parser, fy_parser_destroy)

static int yaml_error(struct fy_parser *fyp, struct err *e)
{
	/* libfyaml keeps its diagnostics in the parser's diag object; report a generic position */
	(void)fyp;
	return err_set(e, EINVAL, 400, "BadRequest", "malformed YAML or JSON document");
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). libfyaml 0.8 loops
 * forever on invalid UTF-8 inside a directive ("%Y\xac"), so bodies are checked first. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return false;
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

int yaml_parse_docs(const char *buf, size_t len, cJSON **ret, struct err *e)
{
	struct fy_parse_cfg cfg = { .flags = FYPCF_DEFAULT_DOC | FYPCF_QUIET };
	_cleanup_(fy_parser_destroyp) struct fy_parser *fyp = NULL;
	_cleanup_json_ cJSON *docs = NULL;
	struct fy_document *d;
	int r = 0;

	if (!utf8_valid((const unsigned char *)buf, len))
		return err_set(e, EINVAL, 400, "BadRequest", "document is not valid UTF-8");
	docs = cJSON_CreateArray();
	fyp = fy_parser_create(&cfg);
	if (!docs || !fyp)
		return -ENOMEM;
	if (fy_parser_set_string(fyp, buf, len) < 0)
		return yaml_error(fyp, e);

	while ((d = fy_parse_load_document(fyp))) {
		char *text;
		cJSON *j;

		if (!fy_document_root(d)) { /* empty document (e.g. trailing ---) */
			fy_parse_document_destroy(fyp, d);
			continue;
		}
		text = fy_emit_document_to_string(d, FYECF_MODE_JSON_ONELINE | FYECF_NO_ENDING_NEWLINE);
		fy_parse_document_destroy(fyp, d);
		if (!text) /* e.g. aliases, which the JSON emitter refuses */
			return err_set(e, EINVAL, 400, "BadRequest",
				       "document cannot be represented as JSON");
		j = cJSON_Parse(text);
		free(text);
		if (!j) {
			/* e.g. aliases or complex keys that have no JSON form */
			return err_set(e, EINVAL, 400, "BadRequest",
				       "document cannot be represented as JSON");
		}
		cJSON_AddItemToArray(docs, j);
	}
	if (fy_parser_get_stream_error(fyp))
		r = yaml_error(fyp, e);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(docs);
	return 0;
}

int yaml_parse_one(const char *buf, size_t len, cJSON **ret, struct err *e)
{
	_cleanup_json_ cJSON *docs = NULL;
	int r, n;

	r = yaml_parse_docs(buf, len, &docs, e);
	if (r < 0)
		return r;
	n = cJSON_GetArraySize(docs);
	if (n != 1)
		return err_set(e, EINVAL, 400, "BadRequest",
			       n ? "expected one document, got %d" : "empty document%.0d", n);
	*ret = cJSON_DetachItemFromArray(docs, 0);
	return 0;
}

char *yaml_emit(const cJSON *json)
{
	_cleanup_free_ char *text = cJSON_PrintUnformatted(json);
	struct fy_document *d;
	char *out;

	if (!text)
		return NULL;
	d = fy_document_build_from_string(NULL, text, strlen(text));
	if (!d)
		return NULL;
	out = fy_emit_document_to_string(d, FYECF_MODE_BLOCK | FYECF_INDENT_2 | FYECF_WIDTH_INF |
						    FYECF_NO_ENDING_NEWLINE);
	fy_document_destroy(d);
	return out;
}
