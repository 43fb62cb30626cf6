// SPDX-License-Identifier: Apache-2.0
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

int yaml_parse_docs(const char *buf, size_t len, cJSON **ret, struct err *e)
{
	struct fy_parse_cfg cfg = { .flags = FYPCF_DEFAULT_DOC | FYPCF_QUIET };
	_cleanup_(fy_parser_destroyp) struct fy_parser *fyp = NULL;
	_cleanup_json_ cJSON *docs = NULL;
	struct fy_document *d;
	int r = 0;

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
		if (!text)
			return -ENOMEM;
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
