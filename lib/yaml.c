// SPDX-License-Identifier: Apache-2.0
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
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

/* A plain scalar resolved by the YAML 1.2 core schema (null, bool, int, float, else string). */
static cJSON *yaml_plain_scalar(const char *v, size_t l)
{
	_cleanup_free_ char *s = strndup(v, l);
	char *end;
	double d;

	if (!s)
		return NULL;
	if (!*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL"))
		return cJSON_CreateNull();
	if (streq(s, "true") || streq(s, "True") || streq(s, "TRUE"))
		return cJSON_CreateTrue();
	if (streq(s, "false") || streq(s, "False") || streq(s, "FALSE"))
		return cJSON_CreateFalse();
	if ((s[0] >= '0' && s[0] <= '9') || ((s[0] == '-' || s[0] == '+' || s[0] == '.') && s[1])) {
		if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o') && s[2]) {
			unsigned long long x = strtoull(s + 2, &end, s[1] == 'x' ? 16 : 8);
			if (!*end)
				return cJSON_CreateNumber((double)x);
		}
		/* decimal ints and floats; strtod's hex, inf and nan forms stay strings */
		if (!strpbrk(s, "xXnNiI")) {
			d = strtod(s, &end);
			if (!*end && end != s)
				return cJSON_CreateNumber(d);
		}
	}
	return cJSON_CreateString(s);
}

/* fy_node tree to cJSON without libfyaml's JSON emitter (0.8 leaks on escaped scalars). */
static cJSON *yaml_node_json(struct fy_node *n, int depth)
{
	cJSON *j = NULL, *c;
	void *it = NULL;

	if (!n)
		return cJSON_CreateNull();
	if (depth > 256 || fy_node_is_alias(n))
		return NULL;
	switch (fy_node_get_type(n)) {
	case FYNT_SCALAR: {
		size_t l = 0;
		const char *v = fy_node_get_scalar(n, &l);
		_cleanup_free_ char *str = NULL;

		if (!v)
			return NULL;
		size_t tl = 0;
		const char *tag = fy_node_get_tag(n, &tl);

		/* plain scalars are typed by the core schema unless tagged !!str */
		if (fy_node_get_style(n) == FYNS_PLAIN &&
		    !(tag && tl >= 3 && memcmp(tag + tl - 3, "str", 3) == 0))
			return yaml_plain_scalar(v, l);
		str = strndup(v, l);
		return str ? cJSON_CreateString(str) : NULL;
	}
	case FYNT_SEQUENCE: {
		struct fy_node *x;

		j = cJSON_CreateArray();
		while (j && (x = fy_node_sequence_iterate(n, &it))) {
			c = yaml_node_json(x, depth + 1);
			if (!c) {
				cJSON_Delete(j);
				return NULL;
			}
			cJSON_AddItemToArray(j, c);
		}
		return j;
	}
	case FYNT_MAPPING: {
		struct fy_node_pair *p;

		j = cJSON_CreateObject();
		while (j && (p = fy_node_mapping_iterate(n, &it))) {
			struct fy_node *k = fy_node_pair_key(p);
			_cleanup_free_ char *key = NULL;
			const char *kv;
			size_t kl = 0;

			/* keys must be scalars (no complex keys in JSON); a null key is "null" */
			if (k && (fy_node_get_type(k) != FYNT_SCALAR || fy_node_is_alias(k)))
				goto fail;
			kv = k ? fy_node_get_scalar(k, &kl) : "null";
			if (!kv)
				goto fail;
			key = strndup(kv, k ? kl : 4);
			c = key ? yaml_node_json(fy_node_pair_value(p), depth + 1) : NULL;
			if (!c)
				goto fail;
			cJSON_AddItemToObject(j, key, c);
		}
		return j;
	fail:
		cJSON_Delete(j);
		return NULL;
	}
	}
	return NULL;
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
	/* JSON bodies (what API clients send) skip libfyaml: it is slower, and its 0.8 JSON
	 * emitter leaks a buffer per long escaped string (every kubectl apply annotation). */
	{
		size_t i = 0;
		const char *end = NULL;
		cJSON *j;

		while (i < len && strchr(" \t\r\n", buf[i]) && buf[i])
			i++;
		if (i < len && (buf[i] == '{' || buf[i] == '[')) {
			j = cJSON_ParseWithLengthOpts(buf, len, &end, false);
			if (j) {
				while (end && end < buf + len && *end && strchr(" \t\r\n", *end))
					end++;
				if (end == buf + len) {
					docs = cJSON_CreateArray();
					if (!docs || !cJSON_AddItemToArray(docs, j)) {
						cJSON_Delete(j);
						return -ENOMEM;
					}
					*ret = TAKE_PTR(docs);
					return 0;
				}
				cJSON_Delete(j); /* more after the value: a YAML stream */
			}
		}
	}
	docs = cJSON_CreateArray();
	fyp = fy_parser_create(&cfg);
	if (!docs || !fyp)
		return -ENOMEM;
	if (fy_parser_set_string(fyp, buf, len) < 0)
		return yaml_error(fyp, e);

	while ((d = fy_parse_load_document(fyp))) {
		cJSON *j;

		if (!fy_document_root(d)) { /* empty document (e.g. trailing ---) */
			fy_parse_document_destroy(fyp, d);
			continue;
		}
		j = yaml_node_json(fy_document_root(d), 0);
		fy_parse_document_destroy(fyp, d);
		if (!j) {
			/* e.g. aliases or complex keys that have no JSON form */
			return err_set(e, EINVAL, 400, "BadRequest",
				       "document cannot be represented as JSON");
		}
		if (cJSON_IsNull(j)) /* "---" followed by nothing */
			cJSON_Delete(j);
		else
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

/*
 * A string may be written plain only if reading it back gives the same string: not empty,
 * not a YAML 1.1/1.2 boolean, null or number, no indicator at the start, no ": " or " #",
 * no surrounding blanks or control characters. Everything else goes out double-quoted.
 */
static bool yaml_plain_ok(const char *s)
{
	static const char *const special[] = {
		"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
	};
	size_t n = strlen(s);
	char *end;

	if (!n || strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]) || s[n - 1] == ' ' || s[n - 1] == ':')
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(special); i++)
		if (!strcasecmp(s, special[i]))
			return false;
	if (strchr("0123456789+-.", s[0])) {
		(void)strtod(s, &end);
		if (!*end || s[0] == '.' || (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')))
			return false;
		/* 1_000, 12:30 (sexagesimal in 1.1), 1e3: keep digits-led strings quoted */
		return false;
	}
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || (p[0] == ':' && p[1] == ' ') ||
		    (p[0] == ' ' && p[1] == '#'))
			return false;
	return true;
}

static struct fy_node *yaml_scalar(struct fy_document *d, const cJSON *j, const char *str)
{
	char *text = NULL;
	struct fy_node *n;

	if (str && yaml_plain_ok(str))
		return fy_node_create_scalar_copy(d, str, strlen(str));
	/* JSON text is valid YAML: numbers, booleans and null plain; strings double-quoted */
	if (str) {
		cJSON *tmp = cJSON_CreateString(str);

		text = tmp ? cJSON_PrintUnformatted(tmp) : NULL;
		cJSON_Delete(tmp);
	} else {
		text = cJSON_PrintUnformatted(j);
	}
	if (!text)
		return NULL;
	/* the document keeps referring to the text: hand it over */
	n = fy_node_build_from_malloc_string(d, text, strlen(text));
	if (!n)
		free(text);
	return n;
}

static struct fy_node *yaml_node(struct fy_document *d, const cJSON *j)
{
	struct fy_node *n, *k, *v;
	const cJSON *c;

	if (cJSON_IsObject(j)) {
		n = fy_node_create_mapping(d);
		cJSON_ArrayForEach(c, j) {
			k = yaml_scalar(d, NULL, c->string);
			v = yaml_node(d, c);
			if (!n || !k || !v || fy_node_mapping_append(n, k, v) < 0)
				return NULL; /* nodes belong to the document, freed with it */
		}
		return n;
	}
	if (cJSON_IsArray(j)) {
		n = fy_node_create_sequence(d);
		cJSON_ArrayForEach(c, j) {
			v = yaml_node(d, c);
			if (!n || !v || fy_node_sequence_append(n, v) < 0)
				return NULL;
		}
		return n;
	}
	return yaml_scalar(d, j, cJSON_IsString(j) ? j->valuestring : NULL);
}

char *yaml_emit(const cJSON *json)
{
	struct fy_document *d;
	struct fy_node *root;
	char *out = NULL;

	/* built node by node: a document parsed from JSON text would keep every quote */
	d = fy_document_create(NULL);
	if (!d)
		return NULL;
	root = yaml_node(d, json);
	if (root && fy_document_set_root(d, root) == 0)
		out = fy_emit_document_to_string(d, FYECF_MODE_BLOCK | FYECF_INDENT_2 |
							    FYECF_WIDTH_INF |
							    FYECF_NO_ENDING_NEWLINE);
	fy_document_destroy(d);
	return out;
}
