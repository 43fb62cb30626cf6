// SPDX-License-Identifier: Apache-2.0
/*
 * Label and field selectors with the grammar of k8s.io/apimachinery/pkg/labels and
 * .../fields: a comma-separated list of requirements, all of which must hold.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "api/selector.h"
#include "lib/util.h"

enum sel_op {
	SEL_EQ,
	SEL_NEQ,
	SEL_IN,
	SEL_NOTIN,
	SEL_EXISTS,
	SEL_NOT_EXISTS,
	SEL_GT,
	SEL_LT,
};

struct sel_req {
	char *key;
	enum sel_op op;
	char **values;
	size_t nvalues;
};

struct label_selector {
	struct sel_req *reqs;
	size_t n;
};

static void sel_req_clear(struct sel_req *r)
{
	free(r->key);
	for (size_t i = 0; i < r->nvalues; i++)
		free(r->values[i]);
	free(r->values);
}

struct label_selector *label_selector_free(struct label_selector *sel)
{
	if (!sel)
		return NULL;
	for (size_t i = 0; i < sel->n; i++)
		sel_req_clear(&sel->reqs[i]);
	free(sel->reqs);
	free(sel);
	return NULL;
}

DEFINE_CLEANUP_FUNC(struct label_selector, label_selector_free)

bool label_selector_is_empty(const struct label_selector *sel)
{
	return !sel || sel->n == 0;
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] */
static bool is_name_part(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

/* validation.IsQualifiedName: reason written into why (NULL when valid). */
const char *selector_qualified_name_error(const char *key)
{
	const char *slash = strchr(key, '/');
	const char *name = key;

	if (slash) {
		size_t plen = slash - key;
		char prefix[254];

		if (plen == 0)
			return "prefix part must be non-empty";
		if (plen > 253)
			return "prefix part must be no more than 253 characters";
		memcpy(prefix, key, plen);
		prefix[plen] = 0;
		if (!util_dns1123_subdomain(prefix))
			return "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
			       "alphanumeric characters, '-' or '.', and must start and end with an "
			       "alphanumeric character (e.g. 'example.com', regex used for validation "
			       "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
		name = slash + 1;
		if (strchr(name, '/'))
			return "a qualified name must consist of alphanumeric characters, '-', '_' or "
			       "'.', and must start and end with an alphanumeric character (e.g. "
			       "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
			       "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
			       "subdomain prefix and '/' (e.g. 'example.com/MyName')";
	}
	if (!*name)
		return "name part must be non-empty";
	if (strlen(name) > 63)
		return "name part must be no more than 63 characters";
	if (!is_name_part(name, strlen(name)))
		return "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
		       "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
		       "or '123-abc', regex used for validation is "
		       "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
	return NULL;
}

/* validation.IsValidLabelValue */
const char *selector_label_value_error(const char *v)
{
	size_t n = strlen(v);

	if (n > 63)
		return "must be no more than 63 characters";
	if (n > 0 && !is_name_part(v, n))
		return "a valid label must be an empty string or consist of alphanumeric "
		       "characters, '-', '_' or '.', and must start and end with an alphanumeric "
		       "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
		       "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
	return NULL;
}

static int sel_add(struct label_selector *sel, struct sel_req *r)
{
	struct sel_req *n = reallocarray(sel->reqs, sel->n + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	sel->reqs = n;
	sel->reqs[sel->n++] = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

static int req_add_value(struct sel_req *r, const char *v, size_t len)
{
	char **n = reallocarray(r->values, r->nvalues + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	r->values = n;
	r->values[r->nvalues] = strndup(v, len);
	if (!r->values[r->nvalues])
		return -ENOMEM;
	r->nvalues++;
	return 0;
}

static bool is_int(const char *s)
{
	char *end;

	if (!*s)
		return false;
	errno = 0;
	(void)strtoll(s, &end, 10);
	return !*end && errno == 0;
}

/* Checks a finished requirement like labels.NewRequirement; returns a reason or NULL. */
static const char *req_check(const struct sel_req *r, char *buf, size_t len)
{
	const char *why = selector_qualified_name_error(r->key);

	if (why) {
		snprintf(buf, len, "key: Invalid value: \"%s\": %s", r->key, why);
		return buf;
	}
	switch (r->op) {
	case SEL_IN:
	case SEL_NOTIN:
		if (r->nvalues == 0)
			return "for 'in', 'notin' operators, values set can't be empty";
		break;
	case SEL_EQ:
	case SEL_NEQ:
		if (r->nvalues != 1)
			return "exact-match compatibility requires one single value";
		break;
	case SEL_EXISTS:
	case SEL_NOT_EXISTS:
		if (r->nvalues != 0)
			return "values set must be empty for exists and does not exist";
		break;
	case SEL_GT:
	case SEL_LT:
		if (r->nvalues != 1 || !is_int(r->values[0]))
			return "for 'Gt', 'Lt' operators, exactly one value is required, and it must "
			       "be an integer";
		break;
	}
	for (size_t i = 0; i < r->nvalues; i++) {
		why = selector_label_value_error(r->values[i]);
		if (why) {
			snprintf(buf, len, "values[%zu][%s]: Invalid value: \"%s\": %s", i, r->key,
				 r->values[i], why);
			return buf;
		}
	}
	return NULL;
}

/* ---- query-string parser (labels.Parse) ---- */

enum tok {
	T_END,
	T_IDENT,
	T_COMMA,
	T_EQ,
	T_DEQ,
	T_NEQ,
	T_NOT,
	T_OPEN,
	T_CLOSE,
	T_IN,
	T_NOTIN,
	T_GT,
	T_LT,
	T_ERR,
};

struct lexer {
	const char *s;
	size_t pos;
	const char *tok;
	size_t toklen;
};

static bool lex_special(char c)
{
	return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

static enum tok lex_next(struct lexer *l)
{
	const char *s = l->s;

	while (isspace((unsigned char)s[l->pos]))
		l->pos++;
	l->tok = s + l->pos;
	l->toklen = 1;
	switch (s[l->pos]) {
	case 0:
		l->toklen = 0;
		return T_END;
	case ',':
		l->pos++;
		return T_COMMA;
	case '(':
		l->pos++;
		return T_OPEN;
	case ')':
		l->pos++;
		return T_CLOSE;
	case '>':
		l->pos++;
		return T_GT;
	case '<':
		l->pos++;
		return T_LT;
	case '=':
		if (s[l->pos + 1] == '=') {
			l->pos += 2;
			l->toklen = 2;
			return T_DEQ;
		}
		l->pos++;
		return T_EQ;
	case '!':
		if (s[l->pos + 1] == '=') {
			l->pos += 2;
			l->toklen = 2;
			return T_NEQ;
		}
		l->pos++;
		return T_NOT;
	}
	size_t start = l->pos;
	while (s[l->pos] && !isspace((unsigned char)s[l->pos]) && !lex_special(s[l->pos]))
		l->pos++;
	l->toklen = l->pos - start;
	if (l->toklen == 2 && strncmp(l->tok, "in", 2) == 0)
		return T_IN;
	if (l->toklen == 5 && strncmp(l->tok, "notin", 5) == 0)
		return T_NOTIN;
	return T_IDENT;
}

static enum tok lex_peek(struct lexer *l)
{
	struct lexer save = *l;
	enum tok t = lex_next(l);

	*l = save;
	return t;
}

#define BAD(...) err_set(e, EINVAL, 400, "BadRequest", __VA_ARGS__)

static int parse_values(struct lexer *l, struct sel_req *r, struct err *e)
{
	enum tok t = lex_next(l);
	bool want_value = true;

	if (t != T_OPEN)
		return BAD("unable to parse requirement: found '%.*s', expected: '('",
			   (int)l->toklen, l->tok);
	for (;;) {
		t = lex_next(l);
		switch (t) {
		case T_IDENT:
		case T_IN:
		case T_NOTIN:
			if (!want_value)
				return BAD("unable to parse requirement: found '%.*s', expected: ',' "
					   "or ')'", (int)l->toklen, l->tok);
			if (req_add_value(r, l->tok, l->toklen) < 0)
				return -ENOMEM;
			want_value = false;
			break;
		case T_COMMA:
			if (want_value && req_add_value(r, "", 0) < 0) /* "(a,,b)": empty value */
				return -ENOMEM;
			want_value = true;
			break;
		case T_CLOSE:
			if (want_value && r->nvalues > 0 && req_add_value(r, "", 0) < 0)
				return -ENOMEM;
			return 0;
		default:
			return BAD("unable to parse requirement: found '%.*s', expected: ',', ')' or "
				   "identifier", (int)l->toklen, l->tok);
		}
	}
}

int label_selector_parse(const char *s, struct label_selector **ret, struct err *e)
{
	_cleanup_(label_selector_freep) struct label_selector *sel = calloc(1, sizeof(*sel));
	struct lexer l = { .s = s ? s : "" };
	char why[512];
	int r;

	if (!sel)
		return -ENOMEM;
	for (;;) {
		struct sel_req req = { 0 };
		enum tok t = lex_next(&l);
		bool neg = false;

		if (t == T_END && sel->n == 0)
			break;
		if (t == T_NOT) {
			neg = true;
			t = lex_next(&l);
		}
		if (t != T_IDENT) {
			r = BAD("unable to parse requirement: found '%.*s', expected: identifier",
				(int)l.toklen, l.tok);
			goto fail;
		}
		req.key = strndup(l.tok, l.toklen);
		if (!req.key)
			return -ENOMEM;
		t = lex_peek(&l);
		if (neg) {
			req.op = SEL_NOT_EXISTS;
			if (t != T_END && t != T_COMMA) {
				r = BAD("unable to parse requirement: found '%.*s', expected: ','",
					(int)l.toklen, l.tok);
				goto fail;
			}
		} else if (t == T_END || t == T_COMMA) {
			req.op = SEL_EXISTS;
		} else {
			t = lex_next(&l);
			switch (t) {
			case T_EQ:
			case T_DEQ:
			case T_NEQ:
			case T_GT:
			case T_LT: {
				req.op = t == T_NEQ ? SEL_NEQ : t == T_GT ? SEL_GT : t == T_LT ? SEL_LT
											: SEL_EQ;
				enum tok v = lex_peek(&l);
				if (v == T_END || v == T_COMMA) {
					r = req_add_value(&req, "", 0); /* "a=" selects a="" */
				} else {
					v = lex_next(&l);
					if (v != T_IDENT && v != T_IN && v != T_NOTIN) {
						r = BAD("unable to parse requirement: found '%.*s', "
							"expected: identifier", (int)l.toklen, l.tok);
						goto fail;
					}
					r = req_add_value(&req, l.tok, l.toklen);
				}
				if (r < 0)
					goto fail;
				break;
			}
			case T_IN:
			case T_NOTIN:
				req.op = t == T_IN ? SEL_IN : SEL_NOTIN;
				r = parse_values(&l, &req, e);
				if (r < 0)
					goto fail;
				break;
			default:
				r = BAD("unable to parse requirement: found '%.*s', expected: in, notin, "
					"=, ==, !=, gt, lt", (int)l.toklen, l.tok);
				goto fail;
			}
		}
		const char *bad = req_check(&req, why, sizeof(why));
		if (bad) {
			r = BAD("unable to parse requirement: %s", bad);
			goto fail;
		}
		r = sel_add(sel, &req);
		if (r < 0)
			goto fail;
		t = lex_next(&l);
		if (t == T_END)
			break;
		if (t != T_COMMA)
			return BAD("found '%.*s', expected: ',' or 'end of string'", (int)l.toklen,
				   l.tok);
		continue;
	fail:
		sel_req_clear(&req);
		return r;
	}
	*ret = TAKE_PTR(sel);
	return 0;
}

/* One cause on `fld`; the cause's message carries no path (the Status message does), as in
 * Kubernetes' field.Error */
#define FAIL(type, fld, ...)                                                                       \
	({                                                                                         \
		char _m[512];                                                                      \
		snprintf(_m, sizeof(_m), __VA_ARGS__);                                             \
		err_cause(e, type, fld, "%s", _m);                                                 \
		err_set(e, EINVAL, 422, "Invalid", "%s: %s", fld, _m);                             \
	})
#define INVALID(fld, ...) FAIL("FieldValueInvalid", fld, __VA_ARGS__)

/* metav1validation.ValidateLabelSelector */
int label_selector_from_json(const cJSON *js, const char *field, struct label_selector **ret,
			     struct err *e)
{
	_cleanup_(label_selector_freep) struct label_selector *sel = calloc(1, sizeof(*sel));
	const cJSON *ml, *me, *it;
	char path[192], sub[224];
	const char *why;
	int r, i = 0;

	if (!sel)
		return -ENOMEM;
	field = field ? field : "selector";
	if (!js || cJSON_IsNull(js)) {
		*ret = TAKE_PTR(sel);
		return 0;
	}
	if (!cJSON_IsObject(js))
		return FAIL("FieldValueTypeInvalid", field,
			    "Invalid value: must be a LabelSelector object");
	ml = cJSON_GetObjectItemCaseSensitive(js, "matchLabels");
	if (ml && !cJSON_IsNull(ml)) {
		snprintf(path, sizeof(path), "%s.matchLabels", field);
		if (!cJSON_IsObject(ml))
			return FAIL("FieldValueTypeInvalid", path,
				    "Invalid value: must be an object of strings");
		cJSON_ArrayForEach(it, ml)
		{
			struct sel_req req = { .op = SEL_EQ };

			if (!cJSON_IsString(it)) {
				snprintf(sub, sizeof(sub), "%s[%s]", path, it->string);
				return FAIL("FieldValueTypeInvalid", sub,
					    "Invalid value: must be a string");
			}
			if ((why = selector_qualified_name_error(it->string)))
				return INVALID(path, "Invalid value: \"%s\": %s", it->string, why);
			if ((why = selector_label_value_error(it->valuestring)))
				return INVALID(path, "Invalid value: \"%s\": %s", it->valuestring, why);
			req.key = strdup(it->string);
			if (!req.key || req_add_value(&req, it->valuestring, strlen(it->valuestring)) < 0) {
				sel_req_clear(&req);
				return -ENOMEM;
			}
			r = sel_add(sel, &req);
			if (r < 0) {
				sel_req_clear(&req);
				return r;
			}
		}
	}
	me = cJSON_GetObjectItemCaseSensitive(js, "matchExpressions");
	if (me && !cJSON_IsNull(me)) {
		if (!cJSON_IsArray(me)) {
			snprintf(path, sizeof(path), "%s.matchExpressions", field);
			return FAIL("FieldValueTypeInvalid", path, "Invalid value: must be a list");
		}
		cJSON_ArrayForEach(it, me)
		{
			struct sel_req req = { 0 };
			const cJSON *k, *op, *vals, *v;
			int j = 0;

			snprintf(path, sizeof(path), "%s.matchExpressions[%d]", field, i++);
			if (!cJSON_IsObject(it))
				return FAIL("FieldValueTypeInvalid", path,
					    "Invalid value: must be an object");
			k = cJSON_GetObjectItemCaseSensitive(it, "key");
			op = cJSON_GetObjectItemCaseSensitive(it, "operator");
			vals = cJSON_GetObjectItemCaseSensitive(it, "values");
			snprintf(sub, sizeof(sub), "%s.key", path);
			if (!cJSON_IsString(k))
				return FAIL("FieldValueRequired", sub, "Required value");
			if ((why = selector_qualified_name_error(k->valuestring)))
				return INVALID(sub, "Invalid value: \"%s\": %s", k->valuestring, why);
			snprintf(sub, sizeof(sub), "%s.operator", path);
			if (!cJSON_IsString(op))
				return FAIL("FieldValueRequired", sub, "Required value");
			if (streq(op->valuestring, "In"))
				req.op = SEL_IN;
			else if (streq(op->valuestring, "NotIn"))
				req.op = SEL_NOTIN;
			else if (streq(op->valuestring, "Exists"))
				req.op = SEL_EXISTS;
			else if (streq(op->valuestring, "DoesNotExist"))
				req.op = SEL_NOT_EXISTS;
			else
				return INVALID(sub, "Invalid value: \"%s\": not a valid selector "
						    "operator", op->valuestring);
			snprintf(sub, sizeof(sub), "%s.values", path);
			if (vals && !cJSON_IsNull(vals) && !cJSON_IsArray(vals))
				return FAIL("FieldValueTypeInvalid", sub, "Invalid value: must be a list");
			if ((req.op == SEL_IN || req.op == SEL_NOTIN) && cJSON_GetArraySize(vals) == 0)
				return FAIL("FieldValueRequired", sub,
					    "Required value: must be specified when `operator` is "
					    "'In' or 'NotIn'");
			if ((req.op == SEL_EXISTS || req.op == SEL_NOT_EXISTS) &&
			    cJSON_GetArraySize(vals) > 0)
				return FAIL("FieldValueForbidden", sub,
					    "Forbidden: may not be specified when `operator` is "
					    "'Exists' or 'DoesNotExist'");
			req.key = strdup(k->valuestring);
			if (!req.key)
				return -ENOMEM;
			cJSON_ArrayForEach(v, vals)
			{
				snprintf(sub, sizeof(sub), "%s.values[%d]", path, j++);
				if (!cJSON_IsString(v)) {
					sel_req_clear(&req);
					return FAIL("FieldValueTypeInvalid", sub,
						    "Invalid value: must be a string");
				}
				if ((why = selector_label_value_error(v->valuestring))) {
					sel_req_clear(&req);
					return INVALID(sub, "Invalid value: \"%s\": %s", v->valuestring,
						       why);
				}
				if (req_add_value(&req, v->valuestring, strlen(v->valuestring)) < 0) {
					sel_req_clear(&req);
					return -ENOMEM;
				}
			}
			r = sel_add(sel, &req);
			if (r < 0) {
				sel_req_clear(&req);
				return r;
			}
		}
	}
	*ret = TAKE_PTR(sel);
	return 0;
}

static const char *label_get(const cJSON *labels, const char *key)
{
	const cJSON *v = cJSON_IsObject(labels) ? cJSON_GetObjectItemCaseSensitive(labels, key)
						: NULL;

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool req_has(const struct sel_req *r, const char *v)
{
	for (size_t i = 0; i < r->nvalues; i++)
		if (streq(r->values[i], v))
			return true;
	return false;
}

bool label_selector_matches(const struct label_selector *sel, const cJSON *labels)
{
	if (!sel)
		return true;
	for (size_t i = 0; i < sel->n; i++) {
		const struct sel_req *r = &sel->reqs[i];
		const char *v = label_get(labels, r->key);
		bool ok = false;

		switch (r->op) {
		case SEL_EQ:
		case SEL_IN:
			ok = v && req_has(r, v);
			break;
		case SEL_NEQ:
		case SEL_NOTIN:
			ok = !v || !req_has(r, v);
			break;
		case SEL_EXISTS:
			ok = v != NULL;
			break;
		case SEL_NOT_EXISTS:
			ok = v == NULL;
			break;
		case SEL_GT:
		case SEL_LT:
			if (v && is_int(v)) {
				long long a = strtoll(v, NULL, 10), b = strtoll(r->values[0], NULL, 10);
				ok = r->op == SEL_GT ? a > b : a < b;
			}
			break;
		}
		if (!ok)
			return false;
	}
	return true;
}

/* ---- field selectors (fields.ParseSelector) ---- */

struct field_req {
	char *field;
	char *value;
	bool neq;
};

struct field_selector {
	struct field_req *reqs;
	size_t n;
};

struct field_selector *field_selector_free(struct field_selector *sel)
{
	if (!sel)
		return NULL;
	for (size_t i = 0; i < sel->n; i++) {
		free(sel->reqs[i].field);
		free(sel->reqs[i].value);
	}
	free(sel->reqs);
	free(sel);
	return NULL;
}

DEFINE_CLEANUP_FUNC(struct field_selector, field_selector_free)

/* Split at unescaped ','; returns term length. */
static size_t term_len(const char *s)
{
	size_t i = 0;

	for (; s[i] && s[i] != ','; i++)
		if (s[i] == '\\' && s[i + 1])
			i++;
	return i;
}

/* Unescape "\\" "\," "\=" ("\" before anything else is an error, like fields.UnescapeValue). */
static int unescape(const char *s, size_t n, char **ret)
{
	_cleanup_free_ char *out = malloc(n + 1);
	size_t o = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\') {
			if (i + 1 >= n || (s[i + 1] != '\\' && s[i + 1] != ',' && s[i + 1] != '='))
				return -EINVAL;
			out[o++] = s[++i];
		} else if (s[i] == ',' || s[i] == '=') {
			return -EINVAL;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = 0;
	*ret = TAKE_PTR(out);
	return 0;
}

int field_selector_parse(const char *s, const char *const *supported, struct field_selector **ret,
			 struct err *e)
{
	_cleanup_(field_selector_freep) struct field_selector *sel = calloc(1, sizeof(*sel));
	const char *p = s ? s : "";

	if (!sel)
		return -ENOMEM;
	while (*p) {
		size_t n = term_len(p), flen, vstart;
		const char *op = NULL;
		struct field_req fr = { 0 };
		bool known = false;

		/* the operator is the first of "!=", "==", "=" */
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '\\') {
				i++;
				continue;
			}
			if (p[i] == '!' && i + 1 < n && p[i + 1] == '=') {
				op = p + i;
				fr.neq = true;
				break;
			}
			if (p[i] == '=') {
				op = p + i;
				break;
			}
		}
		if (!op || op == p)
			return BAD("invalid selector: '%s'; can't understand '%.*s'", s, (int)n, p);
		flen = op - p;
		vstart = flen + (fr.neq ? 2 : (op[1] == '=' ? 2 : 1));
		fr.field = strndup(p, flen);
		if (!fr.field)
			return -ENOMEM;
		if (unescape(p + vstart, n - vstart, &fr.value) < 0) {
			free(fr.field);
			return BAD("invalid selector: '%s'; invalid field value '%.*s'", s,
				   (int)(n - vstart), p + vstart);
		}
		for (const char *const *f = supported; f && *f; f++)
			if (streq(*f, fr.field))
				known = true;
		if (!known) {
			int r = BAD("field label not supported: %s", fr.field);
			free(fr.field);
			free(fr.value);
			return r;
		}
		struct field_req *nr = reallocarray(sel->reqs, sel->n + 1, sizeof(*nr));
		if (!nr) {
			free(fr.field);
			free(fr.value);
			return -ENOMEM;
		}
		sel->reqs = nr;
		sel->reqs[sel->n++] = fr;
		p += n;
		if (*p == ',')
			p++;
	}
	*ret = TAKE_PTR(sel);
	return 0;
}

bool field_selector_matches(const struct field_selector *sel, field_get_fn get, void *userdata)
{
	if (!sel)
		return true;
	for (size_t i = 0; i < sel->n; i++) {
		const char *v = get(sel->reqs[i].field, userdata);
		bool eq = streq(v ? v : "", sel->reqs[i].value);

		if (eq == sel->reqs[i].neq)
			return false;
	}
	return true;
}
