// SPDX-License-Identifier: Apache-2.0
/*
 * Merging registers from other nodes. Each register is compared with the local one by the
 * order in store_write.c; a winner (or a loser that still teaches the key a sticky field)
 * becomes a struct kstate and goes through key_commit(), the same path as a local write, so
 * it gets a local resourceVersion and reaches watches the same way. A batch is one SQLite
 * transaction and one notification pass; a bulk (store_merge_hold) is many batches in one
 * transaction, notified when it commits.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lib/json.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store-internal.h"

enum { MERGE_STALE = 0, MERGE_APPLIED = 1 };

/* Recompose the live object cur around a new spec body (already overlaid). */
static int merge_commit_spec(struct store *s, struct entry *ent, struct res *r, const char *ns,
			     const char *name, uint64_t h, const cJSON *body, const char *uid,
			     uint64_t born, uint64_t hlc, const char *node, const char *sticky,
			     bool keep_status)
{
	_cleanup_(view_deletep) cJSON *view = NULL;
	struct obj_priv *cur = ent ? ent->obj : NULL;
	struct layout cl = { 0 };
	struct spec_out sp = { 0 };
	int rc;

	rc = spec_print(s, body, uid, &sp);
	view = sp.view;
	if (rc < 0)
		return rc;
	if (!streq(sp.uid, uid))
		return -EINVAL; /* the body names another object */
	if (keep_status && cur) {
		cl = obj_layout(cur);
		sp.l.status = cl.status;
		sp.l.status_len = cl.status_len;
	}
	rc = key_commit(s, r, ent, ns, name, h,
			&(struct kstate){
				.uid = uid,
				.born = born,
				.spec_hlc = hlc,
				.spec_node = node,
				.sticky = sticky,
				.l = sp.l,
				.status_hlc = keep_status && cur ? cur->pub.status_hlc : 0,
				.status_node = keep_status && cur ? cur->pub.status_node : NULL,
				.status_term = keep_status && cur ? cur->pub.status_term : 0,
				.labels = sp.labels,
				.node_name = sp.node_name,
				.phase = keep_status && cur ? cur->pub.phase : NULL,
			},
			NULL, NULL);
	return rc < 0 ? rc : MERGE_APPLIED;
}

/*
 * The remote fast path. A sender's spec register is the text its spec_print() made: cJSON's
 * unformatted print of the object without status and metadata.resourceVersion. Parsing and
 * printing it again gives the same bytes, so when nothing in it changes (no sticky field to
 * overlay, no status, uid present) the layout can point into the received text instead of a
 * new print. canon_* accept only text cJSON prints unchanged — no whitespace, strings with
 * cJSON's own escapes, integers below 10^9 (printed "%d"), the literals — and anything else
 * takes the parse and print of merge_commit_spec(). canon_value returns the end or NULL.
 */

/* whether any byte of w is '"', '\\' or below 32 (exact as a yes/no, SWAR) */
static bool word_special(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');

	return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 32) & ~w)) & high;
}

static const char *canon_string(const char *p, const char *end)
{
	if (p >= end || *p++ != '"')
		return NULL;
	while (p < end) {
		unsigned char c;
		uint64_t w;

		/* plain bytes eight at a time (a body is mostly long plain strings) */
		while (end - p >= 8 && (memcpy(&w, p, 8), !word_special(w)))
			p += 8;
		if (p >= end)
			return NULL;
		c = (unsigned char)*p++;
		if (c == '"')
			return p;
		if (c < 32)
			return NULL; /* cJSON prints it \u00xx */
		if (c != '\\')
			continue;
		if (p >= end)
			return NULL;
		c = (unsigned char)*p++;
		if (strchr("\"\\bfnrt", c) && c)
			continue;
		/* \u00xx for the other control characters, lowercase as cJSON prints it */
		if (c != 'u' || end - p < 4 || p[0] != '0' || p[1] != '0' ||
		    (p[2] != '0' && p[2] != '1'))
			return NULL;
		c = (unsigned char)p[3];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return NULL;
		c = (unsigned char)((p[2] - '0') * 16 + (c <= '9' ? c - '0' : c - 'a' + 10));
		if (c == 0 || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
			return NULL;
		p += 4;
	}
	return NULL;
}

static const char *canon_value(const char *p, const char *end, int depth);

static const char *canon_members(const char *p, const char *end, int depth, char close, bool keys)
{
	if (p < end && *p == close)
		return p + 1;
	while (p < end) {
		if (keys) {
			p = canon_string(p, end);
			if (!p || p >= end || *p++ != ':')
				return NULL;
		}
		p = canon_value(p, end, depth + 1);
		if (!p || p >= end)
			return NULL;
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
	return NULL;
}

static const char *canon_value(const char *p, const char *end, int depth)
{
	size_t n;

	if (p >= end || depth > 900)
		return NULL;
	switch (*p) {
	case '"':
		return canon_string(p, end);
	case '{':
		return canon_members(p + 1, end, depth, '}', true);
	case '[':
		return canon_members(p + 1, end, depth, ']', false);
	case 't':
		return end - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
	case 'f':
		return end - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
	case 'n':
		return end - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
	}
	if (*p == '-')
		p++;
	for (n = 0; p + n < end && p[n] >= '0' && p[n] <= '9'; n++)
		;
	if (n == 0 || n > 9 || (n > 1 && p[0] == '0') || (n == 1 && p[0] == '0' && p[-1] == '-'))
		return NULL;
	return p + n;
}

static bool key_is(const char *k, const char *kend, const char *lit)
{
	size_t n = strlen(lit);

	return (size_t)(kend - k) == n + 2 && !memcmp(k + 1, lit, n);
}

/* Where the first metadata.uid, metadata.labels and spec values are, [x, x_end), if any. */
struct canon_fields {
	const char *uid, *uid_end, *labels, *labels_end, *spec, *spec_end;
};

static void note_first(const char *k, const char *kend, const char *lit, const char *v,
		       const char *vend, const char **at, const char **at_end)
{
	if (!*at && key_is(k, kend, lit)) {
		*at = v;
		*at_end = vend;
	}
}

/* store_spec_layout_as_received(), noting the values of f (NULL: none) on the way */
static bool layout_scan(const char *text, size_t len, struct layout *l, struct canon_fields *f)
{
	const char *p = text, *end = text + len, *close = NULL;

	if (len < 2 || *p++ != '{')
		return false;
	if (*p == '}')
		return false;
	while (p < end) {
		const char *k = p, *kend = canon_string(p, end), *v;

		if (!kend || kend >= end || *kend != ':')
			return false;
		p = kend + 1;
		if (key_is(k, kend, "status"))
			return false;
		if (key_is(k, kend, "metadata")) {
			if (close || p >= end || *p != '{')
				return false;
			p++;
			while (p < end && *p != '}') {
				const char *mk = p, *mkend = canon_string(p, end);

				if (!mkend || mkend >= end || *mkend != ':' ||
				    key_is(mk, mkend, "resourceVersion"))
					return false;
				v = mkend + 1;
				p = canon_value(v, end, 2);
				if (!p || p >= end)
					return false;
				if (f) {
					note_first(mk, mkend, "uid", v, p, &f->uid, &f->uid_end);
					note_first(mk, mkend, "labels", v, p, &f->labels,
						   &f->labels_end);
				}
				if (*p == ',' && ++p >= end)
					return false;
				if (*p != '}' && p[-1] != ',')
					return false;
			}
			if (p >= end || p[-1] == ',')
				return false;
			close = p++;
		} else {
			v = p;
			p = canon_value(p, end, 1);
			if (!p)
				return false;
			if (f)
				note_first(k, kend, "spec", v, p, &f->spec, &f->spec_end);
		}
		if (p >= end)
			return false;
		if (*p == '}')
			break;
		if (*p++ != ',')
			return false;
	}
	if (!close || p != end - 1 || *p != '}')
		return false;
	*l = (struct layout){
		.a = text,
		.a_len = (size_t)(close - text),
		.b = close,
		.b_len = (size_t)(end - 1 - close),
	};
	return true;
}

/*
 * The layout of a received spec text as spec_print() would make it (a ends where the
 * resourceVersion would go, before metadata's closing brace), or false: not canonical, a
 * status or resourceVersion member, no metadata object, or a second one.
 */
bool store_spec_layout_as_received(const char *text, size_t len, struct layout *l)
{
	return layout_scan(text, len, l, NULL);
}

/*
 * A winning remote body kept as received (see above); 0: not applicable, take the slow path.
 * body is its parse, with the sticky fields overlaid: changed, it is not the text any more.
 */
static int merge_commit_received(struct store *s, struct entry *ent, struct res *r, const char *ns,
				 const struct store_reg *in, uint64_t h, const cJSON *body,
				 const char *sticky, bool keep_status)
{
	struct obj_priv *cur = ent ? ent->obj : NULL;
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(body, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(body, "spec");
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "uid"));
	struct layout l;
	int rc;

	if (strempty(uid) || !streq(uid, in->uid) ||
	    !store_spec_layout_as_received(in->body, in->body_len, &l))
		return 0;
	if (keep_status && cur) {
		struct layout cl = obj_layout(cur);

		l.status = cl.status;
		l.status_len = cl.status_len;
	}
	rc = key_commit(s, r, ent, ns, in->name, h,
			&(struct kstate){
			    .uid = in->uid,
			    .born = in->born,
			    .spec_hlc = in->hlc,
			    .spec_node = in->node,
			    .sticky = sticky,
			    .l = l,
			    .status_hlc = keep_status && cur ? cur->pub.status_hlc : 0,
			    .status_node = keep_status && cur ? cur->pub.status_node : NULL,
			    .status_term = keep_status && cur ? cur->pub.status_term : 0,
			    .labels = cJSON_GetObjectItemCaseSensitive(meta, "labels"),
			    .node_name = cJSON_GetStringValue(
				cJSON_GetObjectItemCaseSensitive(spec, "nodeName")),
			    .phase = keep_status && cur ? cur->pub.phase : NULL,
			},
			NULL, NULL);
	if (rc >= 0)
		s->merged_as_received++;
	return rc < 0 ? rc : MERGE_APPLIED;
}

/* The end of the string at p in text already checked canonical: its closing quote is the
 * first one after an even run of backslashes. */
static const char *skip_string(const char *p, const char *end)
{
	const char *s0 = ++p;

	while (p < end) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		size_t bs = 0;

		if (!q)
			return NULL;
		while (q - bs > s0 && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		if (!(bs & 1))
			return q + 1;
		p = q + 1;
	}
	return NULL;
}

/* The end of the value at p in text already checked canonical (no validation again). */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return skip_string(p, end);
	if (*p != '{' && *p != '[') {
		while (p < end && *p != ',' && *p != '}' && *p != ']')
			p++;
		return p;
	}
	do {
		if (p >= end)
			return NULL;
		if (*p == '"') {
			p = skip_string(p, end);
			if (!p)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		p++;
	} while (depth > 0);
	return p;
}

/*
 * The value of the first member named lit of the object at p, in text that
 * store_spec_layout_as_received() accepted: its text in [*v, *vend), or false if there is none.
 * p points at the '{'.
 */
static bool canon_member(const char *p, const char *end, const char *lit, const char **v,
			 const char **vend)
{
	if (p >= end || *p++ != '{')
		return false;
	while (p < end && *p != '}') {
		const char *k = p, *kend = skip_string(p, end), *val;

		if (!kend || kend >= end || *kend != ':')
			return false;
		val = kend + 1;
		p = skip_value(val, end);
		if (!p || p >= end)
			return false;
		if (key_is(k, kend, lit)) {
			*v = val;
			*vend = p;
			return true;
		}
		if (*p == ',')
			p++;
	}
	return false;
}

/*
 * cJSON_GetStringValue() of a canonical value's text, when it needs no decoding: 1 and a copy
 * in out (NUL-terminated), 0 if the value is not a string (NULL to cJSON), -1 if it has
 * escapes (the caller parses instead).
 */
static int canon_plain_string(const char *v, const char *vend, char *out, size_t cap)
{
	size_t n;

	if (!v || *v != '"')
		return 0;
	n = (size_t)(vend - v) - 2;
	if (memchr(v + 1, '\\', n) || n >= cap)
		return -1;
	memcpy(out, v + 1, n);
	out[n] = '\0';
	return 1;
}

/*
 * A new key (no register here at all) whose received spec body is canonical and carries no
 * sticky state: nothing to join or overlay, so the body is kept as received without parsing
 * it — the uid, labels and spec.nodeName are read off the text. Byte-identical to the parse in
 * merge_spec() (test_merge_text_path); 0: not applicable, take merge_spec()'s path.
 */
static int merge_commit_text(struct store *s, struct res *r, const char *ns,
			     const struct store_reg *in, uint64_t h)
{
	const char *v = NULL, *vend = NULL;
	_cleanup_json_ cJSON *labels = NULL;
	struct canon_fields f = { 0 };
	char uid[128], node[256];
	bool has_node = false;
	struct layout l;
	int rc;

	/* canonical, with metadata (the first uid, labels and spec noted on the way) */
	if (!layout_scan(in->body, in->body_len, &l, &f))
		return 0;
	/* the uid as cJSON would decode it: plain, nonempty and the register's */
	if (!f.uid || canon_plain_string(f.uid, f.uid_end, uid, sizeof(uid)) != 1 || !uid[0] ||
	    !streq(uid, in->uid))
		return 0;
	if (f.labels && *f.labels == '{') {
		labels = cJSON_ParseWithLength(f.labels, (size_t)(f.labels_end - f.labels));
		if (!labels)
			return -ENOMEM;
	}
	if (f.spec && *f.spec == '{' && canon_member(f.spec, f.spec_end, "nodeName", &v, &vend)) {
		rc = canon_plain_string(v, vend, node, sizeof(node));
		if (rc < 0)
			return 0;
		has_node = rc == 1;
	}
	rc = key_commit(s, r, NULL, ns, in->name, h,
			&(struct kstate){
				.uid = in->uid,
				.born = in->born,
				.spec_hlc = in->hlc,
				.spec_node = in->node,
				.l = l,
				.labels_take = &labels, /* parsed for it alone */
				.node_name = has_node ? node : NULL,
			},
			NULL, NULL);
	if (rc >= 0) {
		s->merged_as_received++;
		s->merged_unparsed++;
	}
	return rc < 0 ? rc : MERGE_APPLIED;
}

static int merge_spec(struct store *s, struct res *r, struct entry *ent, const char *ns,
		      uint64_t h, const struct store_reg *in)
{
	struct obj_priv *cur = ent ? ent->obj : NULL;
	struct tomb *t = ent ? ent->tomb : NULL;
	_cleanup_json_ cJSON *sticky = NULL, *theirs = NULL, *body = NULL;
	_cleanup_free_ char *sticky_text = NULL;
	const char *cuid = cur ? cur->pub.uid : t ? t->uid : NULL;
	bool same_uid = cuid && streq(cuid, in->uid);
	int cmp = 1, n0;

	if (!ent && !in->tombstone && !in->sticky && in->body && s->merge_fast) {
		int rc = merge_commit_text(s, r, ns, in, h);

		if (rc != 0)
			return rc;
	}
	if (cur)
		cmp = spec_order(in->uid, in->born, in->tombstone, in->hlc, in->node, cur->pub.uid,
				 cur->pub.born, false, cur->pub.spec_hlc, cur->pub.spec_node);
	else if (t)
		cmp = spec_order(in->uid, in->born, in->tombstone, in->hlc, in->node, t->uid,
				 t->born, true, t->hlc, t->node);

	if (cmp > 0 && in->tombstone) {
		int rc = key_commit(s, r, ent, ns, in->name, h,
				    &(struct kstate){
					    .uid = in->uid,
					    .born = in->born,
					    .deleted = true,
					    .spec_hlc = in->hlc,
					    .spec_node = in->node,
				    },
				    NULL, NULL);

		return rc < 0 ? rc : MERGE_APPLIED;
	}
	/* a later uid starts afresh; within a uid the sticky fields join */
	sticky = sticky_parse(same_uid && cur ? cur->pub.sticky : NULL);
	theirs = sticky_parse(in->sticky);
	if (!sticky || !theirs)
		return -ENOMEM;
	if (!in->tombstone)
		sticky_join(sticky, theirs);
	sticky_text = sticky_print(sticky);

	if (cmp <= 0) {
		/* the local version stays; it may still learn a binding, deletion or removal */
		if (!same_uid || !cur || streq_null(sticky_text, cur->pub.sticky))
			return MERGE_STALE;
		body = store_obj_parse(&cur->pub);
		if (!body)
			return -ENOMEM;
		cJSON_DeleteItemFromObjectCaseSensitive(body, "status");
		sticky_overlay(body, sticky);
		return merge_commit_spec(s, ent, r, ns, in->name, h, body, cur->pub.uid,
					 cur->pub.born, cur->pub.spec_hlc, cur->pub.spec_node,
					 sticky_text, true);
	}
	if (!in->body)
		return -EINVAL;
	body = cJSON_ParseWithLength(in->body, in->body_len);
	if (!cJSON_IsObject(body))
		return -EINVAL;
	n0 = cJSON_GetArraySize(body);
	cJSON_DeleteItemFromObjectCaseSensitive(body, "status");
	if (!sticky_overlay(body, sticky) && cJSON_GetArraySize(body) == n0 && s->merge_fast) {
		int rc = merge_commit_received(s, ent, r, ns, in, h, body, sticky_text, same_uid);

		if (rc != 0)
			return rc;
	}
	/* the old uid's status goes with it */
	return merge_commit_spec(s, ent, r, ns, in->name, h, body, in->uid, in->born, in->hlc,
				 in->node, sticky_text, same_uid);
}

static int merge_status(struct store *s, struct entry *ent, const struct store_reg *in)
{
	struct obj_priv *cur = ent ? ent->obj : NULL;
	struct tomb *t = ent ? ent->tomb : NULL;
	_cleanup_json_ cJSON *st = NULL;
	struct layout l;
	int c, rc;

	if (!cur && !t)
		return -EAGAIN; /* its spec has not arrived */
	c = cur ? spec_order(in->uid, in->born, false, 0, NULL, cur->pub.uid, cur->pub.born,
			     false, 0, NULL)
		: spec_order(in->uid, in->born, false, 0, NULL, t->uid, t->born, false, 0, NULL);
	if (c > 0)
		return -EAGAIN; /* a later uid than ours: its spec is on the way */
	if (c < 0 || !cur)
		return MERGE_STALE; /* an older uid's, or a deleted uid's */
	if (status_order(in->term, in->hlc, in->node, cur->pub.status_term, cur->pub.status_hlc,
			 cur->pub.status_node) <= 0)
		return MERGE_STALE;
	l = obj_layout(cur);
	l.status = NULL;
	l.status_len = 0;
	if (in->body) {
		st = cJSON_ParseWithLength(in->body, in->body_len);
		if (!st)
			return -EINVAL;
		if (!cJSON_IsNull(st)) {
			rc = print_into(st, &s->status, &l.status_len);
			if (rc < 0)
				return rc;
			l.status = s->status.buf;
		}
	}
	rc = key_commit(s, ent->res, ent, cur->pub.ns, cur->pub.name, ent->hash,
			&(struct kstate){
				.uid = cur->pub.uid,
				.born = cur->pub.born,
				.spec_hlc = cur->pub.spec_hlc,
				.spec_node = cur->pub.spec_node,
				.sticky = cur->pub.sticky,
				.l = l,
				.status_hlc = in->hlc,
				.status_node = in->node,
				.status_term = in->term,
				.labels = cur->pub.labels,
				.node_name = cur->pub.node_name,
				.phase = l.status ? phase_of(st) : NULL,
			},
			NULL, NULL);
	return rc < 0 ? rc : MERGE_APPLIED;
}

/* the index's hash of in's key (0 for a register merge_one() refuses before hashing) */
static uint64_t reg_hash(const struct store *s, const struct store_reg *in)
{
	if (strempty(in->resource) || strempty(in->name))
		return 0;
	return key_hash(s, in->resource, in->ns ? in->ns : "", in->name);
}

/* h: reg_hash(s, in) */
static int merge_one(struct store *s, const struct store_reg *in, uint64_t h, uint64_t wall)
{
	const char *ns = in->ns ? in->ns : "";
	struct entry *ent;
	struct res *r;

	if (strempty(in->resource) || strempty(in->name) || strempty(in->uid) || !in->node ||
	    (in->kind != STORE_REG_SPEC && in->kind != STORE_REG_STATUS) || in->born > in->hlc)
		return -EINVAL;
	/* one node's fast clock must not win every write (nor drag ours along) */
	if (HLC_PHYS(in->hlc) > wall + s->max_ahead_ms) {
		s->clock_refused++;
		return -ERANGE;
	}
	hlc_update(&s->hlc, in->hlc, wall);
	r = res_get(s, in->resource);
	if (!r)
		return -ENOMEM;
	ent = entry_find(s, r, ns, in->name, h);
	if (in->kind == STORE_REG_SPEC)
		return merge_spec(s, r, ent, ns, h, in);
	return merge_status(s, ent, in);
}

static void settle_all(struct store *s, size_t min)
{
	for (size_t i = 0; i < s->nres; i++)
		if (s->res[i]->unsorted >= min)
			res_settle(s->res[i]);
}

/*
 * Merge regs inside the open transaction (s->batch set around it); <0: SQLite or memory.
 * New keys are sorted into their resource's array at the end, or in a bulk once
 * STORE_UNSORTED_MAX wait (fewer, larger sorts: each moves the array once).
 */
static int merge_apply(struct store *s, const struct store_reg *regs, size_t n,
		       struct store_merge_stats *st, int *last, bool bulk)
{
	uint64_t wall = store_wall(s), h[2] = { 0 };
	int rc = 0;

	s->batch = true;
	/*
	 * The index lookups are cache misses (a random hash slot, then a random entry): each is
	 * prefetched while the registers before it merge, the slot two ahead, its entry one ahead.
	 */
	h[0] = n > 0 ? reg_hash(s, &regs[0]) : 0;
	h[1] = n > 1 ? reg_hash(s, &regs[1]) : 0;
	__builtin_prefetch(&s->htab[h[0] & (s->hsize - 1)]);
	__builtin_prefetch(&s->htab[h[1] & (s->hsize - 1)]);
	for (size_t i = 0; i < n; i++) {
		uint64_t hi = h[i & 1];
		int r;

		if (i + 1 < n)
			__builtin_prefetch(s->htab[h[(i + 1) & 1] & (s->hsize - 1)]);
		if (i + 2 < n) {
			h[i & 1] = reg_hash(s, &regs[i + 2]);
			__builtin_prefetch(&s->htab[h[i & 1] & (s->hsize - 1)]);
		}
		r = merge_one(s, &regs[i], hi, wall);

		*last = r;
		if (r == MERGE_APPLIED)
			st->applied++;
		else if (r == MERGE_STALE)
			st->stale++;
		else if (r == -EAGAIN)
			st->later++;
		else if (r == -EINVAL || r == -ERANGE)
			st->refused++;
		else if (rc == 0)
			rc = r; /* SQLite or memory: the transaction is not trusted */
	}
	s->batch = false;
	settle_all(s, bulk ? STORE_UNSORTED_MAX : 1);
	s->merged += st->applied;
	s->merge_stale += st->stale;
	return rc;
}

static int merge_run(struct store *s, const struct store_reg *regs, size_t n,
		     struct store_merge_stats *st, int *last)
{
	struct store_merge_stats local = { 0 };
	int rc;

	if (!st)
		st = &local;
	*st = (struct store_merge_stats){ 0 };
	if (n == 0)
		return 0;
	if (db_begin(s) < 0)
		return -EIO;
	rc = merge_apply(s, regs, n, st, last, false);
	if (rc < 0)
		db_rollback(s);
	else if (db_commit(s) < 0)
		rc = -EIO;
	store_dispatch(s);
	ring_evict(s);
	return rc < 0 ? rc : (int)st->applied;
}

int store_merge(struct store *s, const struct store_reg *regs, size_t n,
		struct store_merge_stats *st)
{
	int last;

	return merge_run(s, regs, n, st, &last);
}

int store_merge_register(struct store *s, const struct store_reg *reg)
{
	int last = 0, r = merge_run(s, reg, 1, NULL, &last);

	return r < 0 ? r : last;
}

/*
 * The bulk transaction. Before it begins, the commit floor (the sequence a reopened store
 * starts above) is raised past every rv it may hand out, in a transaction of its own: a kill
 * before the bulk commits loses its writes (another node still has them; anti-entropy brings
 * them again) but no resourceVersion anybody saw is handed out again. Its events wait in the
 * ring (ring_deliverable) until it commits, so watchers, controllers and replication only see
 * durable merges.
 */
static int bulk_begin(struct store *s)
{
	uint64_t lease = s->rv + STORE_BULK_MAX;

	if (db_floor(s, lease) < 0 || db_begin(s) < 0)
		return -EIO;
	s->bulk = true;
	s->bulk_rv0 = s->rv;
	s->bulk_lease = lease;
	return 0;
}

int store_merge_hold(struct store *s, const struct store_reg *regs, size_t n,
		     struct store_merge_stats *st)
{
	struct store_merge_stats local = { 0 };
	int rc, last;

	if (!st)
		st = &local;
	*st = (struct store_merge_stats){ 0 };
	if (n == 0)
		return 0;
	if (n > STORE_BULK_MAX)
		return -E2BIG;
	/* each register hands out at most one rv: past the lease, commit and take another */
	if (s->bulk && s->rv + n > s->bulk_lease && store_merge_commit(s) < 0)
		return -EIO;
	if (!s->bulk && bulk_begin(s) < 0)
		return -EIO;
	rc = merge_apply(s, regs, n, st, &last, true);
	if (rc < 0) {
		/* the whole bulk is rolled back; the index keeps it (as store_merge's batch) and
		 * its held events go out: their rvs are below the lease */
		db_rollback(s);
		s->bulk = false;
		settle_all(s, 1);
		store_dispatch(s);
		ring_evict(s);
		return rc;
	}
	return (int)st->applied;
}

int store_merge_commit(struct store *s)
{
	/* a write that committed the bulk first may have failed before delivering its events */
	int rc = db_bulk_end(s) < 0 ? -EIO : 0;

	settle_all(s, 1);
	store_dispatch(s);
	ring_evict(s);
	return rc;
}

bool store_merge_held(const struct store *s)
{
	return s->bulk;
}
