// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes protobuf bodies -> JSON, driven by the field tables of api/schema.h. The wire
 * format is proto2 as gogo-protobuf writes it for k8s.io/api: non-pointer scalars are always
 * written (Go's JSON omits the omitempty ones when zero, and so do we), pointers only when set,
 * repeated scalars unpacked (packed is accepted too), maps as repeated {key = 1, value = 2}.
 */
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "api/protobuf.h"
#include "lib/macro.h"
#include "lib/util.h"

#define PB_MAX_DEPTH 64

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

struct pb_buf {
	const uint8_t *p, *end;
};

static int bad(struct err *e, const char *what)
{
	return err_set(e, EBADMSG, 400, "BadRequest",
		       "error decoding protobuf request body: %s", what);
}

static int read_varint(struct pb_buf *b, uint64_t *ret)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (b->p >= b->end)
			return -EBADMSG;
		uint8_t c = *b->p++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

static int read_len(struct pb_buf *b, struct pb_buf *ret)
{
	uint64_t n;

	if (read_varint(b, &n) < 0 || n > (uint64_t)(b->end - b->p))
		return -EBADMSG;
	ret->p = b->p;
	ret->end = b->p + n;
	b->p += n;
	return 0;
}

static int skip(struct pb_buf *b, int wt)
{
	uint64_t v;
	struct pb_buf sub;

	switch (wt) {
	case WT_VARINT:
		return read_varint(b, &v);
	case WT_FIXED64:
		if (b->end - b->p < 8)
			return -EBADMSG;
		b->p += 8;
		return 0;
	case WT_LEN:
		return read_len(b, &sub);
	case WT_FIXED32:
		if (b->end - b->p < 4)
			return -EBADMSG;
		b->p += 4;
		return 0;
	default: /* groups are not used by Kubernetes */
		return -EBADMSG;
	}
}

/* ---------- scalars ---------- */

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid. */
static size_t utf8_seq(const uint8_t *s, const uint8_t *end)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if ((size_t)(end - s) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A JSON string from protobuf bytes; invalid UTF-8 becomes U+FFFD as Go's encoder does. */
static int make_string(const struct pb_buf *b, cJSON **ret, struct err *e)
{
	size_t len = (size_t)(b->end - b->p);
	_cleanup_free_ char *s = malloc(len * 3 + 1);
	size_t o = 0;

	if (!s)
		return -ENOMEM;
	for (const uint8_t *p = b->p; p < b->end;) {
		size_t n = *p ? utf8_seq(p, b->end) : 0;

		if (!*p)
			return bad(e, "a string contains a NUL character");
		if (!n) {
			memcpy(s + o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
			continue;
		}
		memcpy(s + o, p, n);
		o += n;
		p += n;
	}
	s[o] = 0;
	*ret = cJSON_CreateString(s);
	return *ret ? 0 : -ENOMEM;
}

static int make_base64(const struct pb_buf *b, cJSON **ret)
{
	size_t len = (size_t)(b->end - b->p);
	size_t blen = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	_cleanup_free_ char *s = malloc(blen);

	if (!s)
		return -ENOMEM;
	sodium_bin2base64(s, blen, b->p, len, sodium_base64_VARIANT_ORIGINAL);
	*ret = cJSON_CreateString(s);
	return *ret ? 0 : -ENOMEM;
}

static int fmt_time(int64_t sec, int64_t nanos, bool micro, cJSON **ret, struct err *e)
{
	struct tm tm;
	time_t t = (time_t)sec;
	char buf[64];

	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
		return bad(e, "a timestamp is out of range");
	if (micro) {
		if (nanos < 0 || nanos > 999999999)
			return bad(e, "a timestamp has invalid nanoseconds");
		snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(nanos / 1000));
	} else
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	*ret = cJSON_CreateString(buf);
	return *ret ? 0 : -ENOMEM;
}

/* The fraction of v / 10^prec into the tail of buf (no trailing zeros); Go's fmtFrac. */
static size_t fmt_frac(char *buf, size_t w, uint64_t *v, int prec)
{
	bool print = false;

	for (int i = 0; i < prec; i++) {
		unsigned digit = (unsigned)(*v % 10);
		print = print || digit;
		if (print)
			buf[--w] = (char)('0' + digit);
		*v /= 10;
	}
	if (print)
		buf[--w] = '.';
	return w;
}

static size_t fmt_int(char *buf, size_t w, uint64_t v)
{
	if (!v)
		buf[--w] = '0';
	for (; v; v /= 10)
		buf[--w] = (char)('0' + v % 10);
	return w;
}

/* time.Duration.String() */
static void fmt_duration(int64_t d, char out[40])
{
	char buf[40];
	size_t w = sizeof(buf);
	uint64_t u = d < 0 ? -(uint64_t)d : (uint64_t)d;

	if (u == 0) {
		strcpy(out, "0s");
		return;
	}
	buf[--w] = 0;
	buf[--w] = 's';
	if (u < 1000000000ULL) {
		int prec;
		if (u < 1000ULL) {
			prec = 0;
			buf[--w] = 'n';
		} else if (u < 1000000ULL) {
			prec = 3;
			buf[--w] = '\xb5';
			buf[--w] = '\xc2';
		} else {
			prec = 6;
			buf[--w] = 'm';
		}
		w = fmt_frac(buf, w, &u, prec);
		w = fmt_int(buf, w, u);
	} else {
		w = fmt_frac(buf, w, &u, 9);
		w = fmt_int(buf, w, u % 60);
		u /= 60;
		if (u > 0) {
			buf[--w] = 'm';
			w = fmt_int(buf, w, u % 60);
			u /= 60;
			if (u > 0) {
				buf[--w] = 'h';
				w = fmt_int(buf, w, u);
			}
		}
	}
	if (d < 0)
		buf[--w] = '-';
	strcpy(out, buf + w);
}

/* ---------- messages ---------- */

static int decode_msg(const struct schema_msg *m, struct pb_buf b, cJSON **ret, int depth,
		      struct err *e);

/* Generic walk over the fields of a special message: fills the values it cares for. */
struct special_vals {
	uint64_t v[4];      /* varints by field number 1..3 */
	struct pb_buf s[4]; /* length-delimited by field number 1..3 */
	bool has_s[4];
};

static int read_special(struct pb_buf b, struct special_vals *sv, struct err *e)
{
	memset(sv, 0, sizeof(*sv));
	while (b.p < b.end) {
		uint64_t key;
		if (read_varint(&b, &key) < 0)
			return bad(e, "truncated field key");
		uint64_t num = key >> 3;
		int wt = (int)(key & 7);
		if (num >= 1 && num <= 3 && wt == WT_VARINT) {
			if (read_varint(&b, &sv->v[num]) < 0)
				return bad(e, "truncated varint");
		} else if (num >= 1 && num <= 3 && wt == WT_LEN) {
			if (read_len(&b, &sv->s[num]) < 0)
				return bad(e, "truncated length-delimited field");
			sv->has_s[num] = true;
		} else if (num == 0 || skip(&b, wt) < 0)
			return bad(e, "malformed field");
	}
	return 0;
}

static int decode_special(const struct schema_msg *m, struct pb_buf b, cJSON **ret,
			  struct err *e)
{
	struct special_vals sv;
	char buf[40];
	int r;

	if ((r = read_special(b, &sv, e)) < 0)
		return r;
	switch (m->special) {
	case PB_SPECIAL_TIME:
	case PB_SPECIAL_MICROTIME:
		/* a zero time is an empty message; its JSON is null */
		if (b.p == b.end) {
			*ret = cJSON_CreateNull();
			return *ret ? 0 : -ENOMEM;
		}
		/* meta/v1 Time keeps whole seconds only (time_proto.go) */
		return fmt_time((int64_t)sv.v[1], (int64_t)(int32_t)sv.v[2],
				m->special == PB_SPECIAL_MICROTIME, ret, e);
	case PB_SPECIAL_DURATION:
		fmt_duration((int64_t)sv.v[1], buf);
		*ret = cJSON_CreateString(buf);
		break;
	case PB_SPECIAL_INTORSTRING:
		if (sv.v[1] == 1) {
			struct pb_buf empty = { 0 };
			return make_string(sv.has_s[3] ? &sv.s[3] : &empty, ret, e);
		}
		*ret = cJSON_CreateNumber((double)(int32_t)sv.v[2]);
		break;
	case PB_SPECIAL_QUANTITY:
		/* the zero Quantity prints as "0" */
		if (!sv.has_s[1] || sv.s[1].p == sv.s[1].end) {
			*ret = cJSON_CreateString("0");
			break;
		}
		return make_string(&sv.s[1], ret, e);
	case PB_SPECIAL_RAWJSON:
		if (!sv.has_s[1] || sv.s[1].p == sv.s[1].end) {
			*ret = cJSON_CreateObject();
			break;
		}
		*ret = cJSON_ParseWithLength((const char *)sv.s[1].p,
					     (size_t)(sv.s[1].end - sv.s[1].p));
		if (!*ret)
			return bad(e, "embedded JSON is malformed");
		return 0;
	default:
		return bad(e, "unknown special message");
	}
	return *ret ? 0 : -ENOMEM;
}

static bool is_numeric(uint8_t kind)
{
	return kind == PB_BOOL || kind == PB_INT32 || kind == PB_INT64 || kind == PB_DOUBLE;
}

/* One value of kind `kind` (wire type already checked) -> JSON. *zero tells a zero value. */
static int decode_value(const struct schema_field *f, struct pb_buf *b, int wt, cJSON **ret,
			bool *zero, int depth, struct err *e)
{
	struct pb_buf sub;
	uint64_t v;
	int r;

	*zero = false;
	switch (f->kind) {
	case PB_BOOL:
	case PB_INT32:
	case PB_INT64:
		if (wt != WT_VARINT || read_varint(b, &v) < 0)
			return bad(e, "malformed varint field");
		*zero = v == 0;
		if (f->kind == PB_BOOL)
			*ret = cJSON_CreateBool(v != 0);
		else if (f->kind == PB_INT32)
			*ret = cJSON_CreateNumber((double)(int32_t)v);
		else
			*ret = cJSON_CreateNumber((double)(int64_t)v);
		return *ret ? 0 : -ENOMEM;
	case PB_DOUBLE: {
		double d;
		if (wt != WT_FIXED64 || b->end - b->p < 8)
			return bad(e, "malformed double field");
		v = 0;
		for (int i = 7; i >= 0; i--)
			v = v << 8 | b->p[i];
		b->p += 8;
		memcpy(&d, &v, sizeof(d));
		*zero = d == 0;
		*ret = cJSON_CreateNumber(d);
		return *ret ? 0 : -ENOMEM;
	}
	default:
		break;
	}
	if (wt != WT_LEN || read_len(b, &sub) < 0)
		return bad(e, "malformed length-delimited field");
	*zero = sub.p == sub.end;
	switch (f->kind) {
	case PB_STRING:
		return make_string(&sub, ret, e);
	case PB_BYTES:
		return make_base64(&sub, ret);
	case PB_MSG:
		r = decode_msg(f->msg, sub, ret, depth + 1, e);
		*zero = false; /* a present message is emitted, even empty ({}) */
		return r;
	default:
		return bad(e, "unknown field kind");
	}
}

/* A map entry {key = 1, value = 2} into map object mp. */
static int decode_map_entry(const struct schema_field *f, struct pb_buf b, cJSON *mp, int depth,
			    struct err *e)
{
	_cleanup_json_ cJSON *key = NULL, *val = NULL;
	struct schema_field vf = *f;
	int r;

	vf.flags = 0;
	while (b.p < b.end) {
		uint64_t k;
		bool zero;

		if (read_varint(&b, &k) < 0)
			return bad(e, "truncated map entry");
		if ((k >> 3) == 1) {
			struct pb_buf s;
			if ((k & 7) != WT_LEN || read_len(&b, &s) < 0)
				return bad(e, "malformed map key");
			cJSON_Delete(key);
			key = NULL;
			if ((r = make_string(&s, &key, e)) < 0)
				return r;
		} else if ((k >> 3) == 2) {
			cJSON_Delete(val);
			val = NULL;
			if ((r = decode_value(&vf, &b, (int)(k & 7), &val, &zero, depth, e)) < 0)
				return r;
		} else if ((k >> 3) == 0 || skip(&b, (int)(k & 7)) < 0)
			return bad(e, "malformed map entry");
	}
	if (!val) {
		/* absent value: the value type's zero */
		switch (vf.kind) {
		case PB_STRING:
		case PB_BYTES:
			val = cJSON_CreateString("");
			break;
		case PB_MSG: {
			struct pb_buf empty = { 0 };
			if ((r = decode_msg(vf.msg, empty, &val, depth + 1, e)) < 0)
				return r;
			break;
		}
		case PB_BOOL:
			val = cJSON_CreateFalse();
			break;
		default:
			val = cJSON_CreateNumber(0);
		}
		if (!val)
			return -ENOMEM;
	}
	const char *ks = key ? key->valuestring : "";
	cJSON_DeleteItemFromObjectCaseSensitive(mp, ks);
	if (!cJSON_AddItemToObject(mp, ks, val))
		return -ENOMEM;
	val = NULL;
	return 0;
}

/* The container a field's values go into (created on first use). */
static cJSON *field_slot(cJSON *obj, const struct schema_field *f, bool array)
{
	cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, f->json);

	if (s && (array ? cJSON_IsArray(s) : cJSON_IsObject(s)))
		return s;
	cJSON_DeleteItemFromObjectCaseSensitive(obj, f->json);
	s = array ? cJSON_CreateArray() : cJSON_CreateObject();
	if (s && !cJSON_AddItemToObject(obj, f->json, s)) {
		cJSON_Delete(s);
		return NULL;
	}
	return s;
}

static int decode_field(cJSON *obj, const struct schema_field *f, struct pb_buf *b, int wt,
			int depth, struct err *e)
{
	_cleanup_json_ cJSON *v = NULL;
	bool zero;
	int r;

	if (f->flags & PB_F_MAP) {
		struct pb_buf entry;
		cJSON *mp;
		if (wt != WT_LEN || read_len(b, &entry) < 0)
			return bad(e, "malformed map field");
		if (!(mp = field_slot(obj, f, false)))
			return -ENOMEM;
		return decode_map_entry(f, entry, mp, depth, e);
	}
	if (f->flags & PB_F_REPEATED) {
		cJSON *arr = field_slot(obj, f, true);
		if (!arr)
			return -ENOMEM;
		if (wt == WT_LEN && is_numeric(f->kind)) {
			/* packed */
			struct pb_buf packed;
			if (read_len(b, &packed) < 0)
				return bad(e, "malformed packed field");
			while (packed.p < packed.end) {
				cJSON *one = NULL;
				r = decode_value(f, &packed,
						 f->kind == PB_DOUBLE ? WT_FIXED64 : WT_VARINT, &one,
						 &zero, depth, e);
				if (r < 0)
					return r;
				cJSON_AddItemToArray(arr, one);
			}
			return 0;
		}
		if ((r = decode_value(f, b, wt, &v, &zero, depth, e)) < 0)
			return r;
		cJSON_AddItemToArray(arr, TAKE_PTR(v));
		return 0;
	}
	if ((r = decode_value(f, b, wt, &v, &zero, depth, e)) < 0)
		return r;
	if (f->flags & PB_F_INLINE) {
		/* an embedded struct: its fields are the parent's */
		cJSON *it;
		while ((it = v->child)) {
			cJSON_DetachItemViaPointer(v, it);
			cJSON_DeleteItemFromObjectCaseSensitive(obj, it->string);
			cJSON_AddItemToObject(obj, it->string, it);
		}
		return 0;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(obj, f->json);
	if (zero && (f->flags & PB_F_OMITZERO))
		return 0;
	if (!cJSON_AddItemToObject(obj, f->json, v))
		return -ENOMEM;
	v = NULL;
	return 0;
}

static int decode_msg(const struct schema_msg *m, struct pb_buf b, cJSON **ret, int depth,
		      struct err *e)
{
	_cleanup_json_ cJSON *obj = NULL;
	int r;

	if (depth > PB_MAX_DEPTH)
		return bad(e, "messages nested too deeply");
	if (m->special != PB_SPECIAL_NONE)
		return decode_special(m, b, ret, e);
	obj = cJSON_CreateObject();
	if (!obj)
		return -ENOMEM;
	while (b.p < b.end) {
		uint64_t key;
		const struct schema_field *f;

		if (read_varint(&b, &key) < 0)
			return bad(e, "truncated field key");
		uint64_t num = key >> 3;
		int wt = (int)(key & 7);
		if (num == 0 || num > UINT32_MAX)
			return bad(e, "invalid field number");
		f = schema_field_by_num(m, (uint32_t)num);
		if (!f) {
			if (skip(&b, wt) < 0)
				return bad(e, "malformed unknown field");
			continue;
		}
		if ((r = decode_field(obj, f, &b, wt, depth, e)) < 0)
			return r;
	}
	*ret = TAKE_PTR(obj);
	return 0;
}

int pb_message_decode(const struct schema_msg *m, const void *data, size_t len, cJSON **ret,
		      struct err *e)
{
	struct pb_buf b = { data, (const uint8_t *)data + len };

	return decode_msg(m, b, ret, 0, e);
}

/* ---------- the envelope ---------- */

static int buf_str(const struct pb_buf *b, char *out, size_t outlen)
{
	size_t n = (size_t)(b->end - b->p);

	if (n >= outlen || memchr(b->p, 0, n))
		return -EBADMSG;
	memcpy(out, b->p, n);
	out[n] = 0;
	return 0;
}

int pb_envelope_decode(const void *data, size_t len, const char *gv, const char *kind,
		       cJSON **ret, struct err *e)
{
	struct pb_buf b = { data, (const uint8_t *)data + len }, raw = { 0 }, tm = { 0 }, s;
	char av[128] = "", k[128] = "", enc[64] = "";
	const struct schema_msg *m;
	_cleanup_json_ cJSON *body = NULL, *out = NULL;
	cJSON *it;
	int r;

	if (len < PB_MAGIC_LEN || memcmp(data, PB_MAGIC, PB_MAGIC_LEN))
		return bad(e, "missing the \"k8s\\0\" prefix");
	b.p += PB_MAGIC_LEN;
	while (b.p < b.end) {
		uint64_t key;
		if (read_varint(&b, &key) < 0)
			return bad(e, "truncated envelope");
		uint64_t num = key >> 3;
		int wt = (int)(key & 7);
		if (num >= 1 && num <= 4 && wt == WT_LEN) {
			if (read_len(&b, &s) < 0)
				return bad(e, "truncated envelope field");
			if (num == 1)
				tm = s;
			else if (num == 2)
				raw = s;
			else if (num == 3 && buf_str(&s, enc, sizeof(enc)) < 0)
				return bad(e, "invalid contentEncoding");
		} else if (num == 0 || skip(&b, wt) < 0)
			return bad(e, "malformed envelope");
	}
	while (tm.p && tm.p < tm.end) {
		uint64_t key;
		if (read_varint(&tm, &key) < 0)
			return bad(e, "truncated typeMeta");
		if ((key >> 3) <= 2 && (key >> 3) >= 1 && (key & 7) == WT_LEN) {
			if (read_len(&tm, &s) < 0 ||
			    buf_str(&s, (key >> 3) == 1 ? av : k, sizeof(av)) < 0)
				return bad(e, "invalid typeMeta");
		} else if ((key >> 3) == 0 || skip(&tm, (int)(key & 7)) < 0)
			return bad(e, "malformed typeMeta");
	}
	if (enc[0])
		return err_set(e, EOPNOTSUPP, 415, "UnsupportedMediaType",
			       "unsupported protobuf contentEncoding \"%s\"", enc);
	if (!k[0] && kind)
		snprintf(k, sizeof(k), "%s", kind);
	if (!av[0] && gv)
		snprintf(av, sizeof(av), "%s", gv);
	m = schema_find(av, k);
	if (!m)
		return err_set(e, EOPNOTSUPP, 415, "UnsupportedMediaType",
			       "no protobuf decoding for kind \"%s\" in version \"%s\"", k, av);
	if ((r = decode_msg(m, raw.p ? raw : (struct pb_buf){ 0 }, &body, 0, e)) < 0)
		return r;
	/* Go's JSON writes TypeMeta first */
	out = cJSON_CreateObject();
	if (!out || !cJSON_AddStringToObject(out, "kind", k) ||
	    !cJSON_AddStringToObject(out, "apiVersion", av))
		return -ENOMEM;
	while ((it = body->child)) {
		cJSON_DetachItemViaPointer(body, it);
		if (streq(it->string, "kind") || streq(it->string, "apiVersion")) {
			cJSON_Delete(it);
			continue;
		}
		cJSON_AddItemToObject(out, it->string, it);
	}
	*ret = TAKE_PTR(out);
	return 0;
}
