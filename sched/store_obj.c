// SPDX-License-Identifier: Apache-2.0
/*
 * Snapshots: one allocation per object version, its composed text spliced from the register
 * texts (see struct obj_priv); printing a client's object into the spec and status registers.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store-internal.h"

/* --- snapshots --- */

struct obj_priv *obj_priv(struct store_obj *o)
{
	return (struct obj_priv *)o;
}

struct store_obj *store_obj_ref(struct store_obj *o)
{
	if (o)
		o->refs++;
	return o;
}

struct store_obj *store_obj_unref(struct store_obj *o)
{
	if (!o || --o->refs > 0)
		return NULL;
	cJSON_Delete(o->labels);
	free(obj_priv(o));
	return NULL;
}

cJSON *store_obj_parse(const struct store_obj *o)
{
	return cJSON_ParseWithLength(o->json, o->json_len);
}

size_t obj_size(const struct obj_priv *o)
{
	return sizeof(*o) + o->pub.json_len;
}

/* The registers inside a composed text (see struct obj_priv). */

struct layout obj_layout(const struct obj_priv *o)
{
	const char *j = o->pub.json;
	struct layout l = {
		.a = j,
		.a_len = o->a_len,
		.b = j + o->a_len + o->r_len,
		.b_len = o->b_end - o->a_len - o->r_len,
	};

	if (o->b_end + 1 < o->pub.json_len) {
		l.status = j + o->b_end + STATUS_KEY_LEN;
		l.status_len = o->pub.json_len - 1 - o->b_end - STATUS_KEY_LEN;
	}
	return l;
}


static char *obj_put_str(char **p, const char *s)
{
	size_t n = strlen(s) + 1;
	char *r = *p;

	memcpy(r, s, n);
	*p += n;
	return r;
}

static char *obj_put_mem(char *p, const void *m, size_t n)
{
	memcpy(p, m, n);
	return p + n;
}

/* One allocation holds the struct, its strings and the composed text, spliced together. */
struct obj_priv *obj_new(const struct obj_fields *f)
{
	const char *spec_node = f->spec_node ? f->spec_node : "";
	bool comma = f->l.a_len > 0 && f->l.a[f->l.a_len - 1] != '{';
	char rvm[64];
	int rlen = snprintf(rvm, sizeof(rvm), "%s\"resourceVersion\":\"%" PRIu64 "\"",
			    comma ? "," : "", f->rv);
	size_t json_len = f->l.a_len + (size_t)rlen + f->l.b_len + 1;
	struct obj_priv *o;
	size_t len;
	char *p;

	if (f->l.status)
		json_len += STATUS_KEY_LEN + f->l.status_len;
	len = sizeof(struct obj_priv) + strlen(f->resource) + strlen(f->ns) + strlen(f->name) +
	      strlen(f->uid) + strlen(spec_node) + json_len + 6;
	if (f->status_node)
		len += strlen(f->status_node) + 1;
	if (f->node_name)
		len += strlen(f->node_name) + 1;
	if (f->phase)
		len += strlen(f->phase) + 1;
	if (f->sticky)
		len += strlen(f->sticky) + 1;
	o = malloc(len);
	if (!o)
		return NULL;
	memset(o, 0, sizeof(*o));
	if (f->labels_take && cJSON_IsObject(*f->labels_take)) {
		o->pub.labels = *f->labels_take;
		*f->labels_take = NULL;
	} else if (cJSON_IsObject(f->labels)) {
		o->pub.labels = cJSON_Duplicate(f->labels, true);
		if (!o->pub.labels) {
			free(o);
			return NULL;
		}
	}
	p = o->buf;
	o->pub.refs = 1;
	o->pub.resource = obj_put_str(&p, f->resource);
	o->pub.ns = obj_put_str(&p, f->ns);
	o->pub.name = obj_put_str(&p, f->name);
	o->pub.uid = obj_put_str(&p, f->uid);
	o->pub.rv = f->rv;
	o->pub.spec_hlc = f->spec_hlc;
	o->pub.spec_node = obj_put_str(&p, spec_node);
	o->pub.status_hlc = f->status_hlc;
	o->pub.status_term = f->status_term;
	o->pub.status_node = f->status_node ? obj_put_str(&p, f->status_node) : NULL;
	o->pub.node_name = f->node_name ? obj_put_str(&p, f->node_name) : NULL;
	o->pub.phase = f->phase ? obj_put_str(&p, f->phase) : NULL;
	o->pub.sticky = f->sticky ? obj_put_str(&p, f->sticky) : NULL;
	o->pub.born = f->born;

	o->pub.json = p;
	p = obj_put_mem(p, f->l.a, f->l.a_len);
	p = obj_put_mem(p, rvm, (size_t)rlen);
	p = obj_put_mem(p, f->l.b, f->l.b_len);
	if (f->l.status) {
		p = obj_put_mem(p, STATUS_KEY, STATUS_KEY_LEN);
		p = obj_put_mem(p, f->l.status, f->l.status_len);
	}
	*p++ = '}';
	*p = 0;
	o->pub.json_len = json_len;
	o->a_len = f->l.a_len;
	o->r_len = (size_t)rlen;
	o->b_end = f->l.a_len + (size_t)rlen + f->l.b_len;
	o->live = true;
	return o;
}

/* --- printing the registers --- */

void view_deletep(cJSON **v)
{
	cJSON_Delete(*v);
}

/*
 * A view of obj without `status` and metadata.resourceVersion, whose nodes are references
 * into obj: printing it gives the spec register without copying the tree. The view's own
 * metadata object is returned so callers can add members to it.
 */
static cJSON *spec_view(const cJSON *obj, cJSON **ret_meta)
{
	_cleanup_(view_deletep) cJSON *root = NULL;
	cJSON *meta = NULL, *it, *m;

	if (!cJSON_IsObject(obj))
		return NULL;
	root = cJSON_CreateObject();
	if (!root)
		return NULL;
	cJSON_ArrayForEach(it, obj)
	{
		if (!it->string || streq(it->string, "status"))
			continue;
		if (streq(it->string, "metadata") && cJSON_IsObject(it) && !meta) {
			meta = cJSON_CreateObject();
			if (!meta || !cJSON_AddItemToObject(root, "metadata", meta)) {
				cJSON_Delete(meta);
				return NULL;
			}
			cJSON_ArrayForEach(m, it)
			{
				if (!m->string || streq(m->string, "resourceVersion"))
					continue;
				if (!cJSON_AddItemReferenceToObject(meta, m->string, m))
					return NULL;
			}
			continue;
		}
		if (!cJSON_AddItemReferenceToObject(root, it->string, it))
			return NULL;
	}
	if (!meta) {
		meta = cJSON_AddObjectToObject(root, "metadata");
		if (!meta)
			return NULL;
	}
	*ret_meta = meta;
	return TAKE_PTR(root);
}

/* Print into a reusable buffer, growing it as needed (no per-call allocation). */
int print_into(const cJSON *item, struct scratch *sc, size_t *ret_len)
{
	for (;;) {
		size_t cap;
		char *n;

		if (sc->cap && cJSON_PrintPreallocated((cJSON *)item, sc->buf, (int)sc->cap, false)) {
			*ret_len = strlen(sc->buf);
			return 0;
		}
		cap = sc->cap ? sc->cap * 2 : 16384;
		if (cap > STORE_OBJECT_MAX)
			return -E2BIG;
		n = realloc(sc->buf, cap);
		if (!n)
			return -ENOMEM;
		sc->buf = n;
		sc->cap = cap;
	}
}

static int scratch_reserve(struct scratch *sc, size_t len)
{
	char *n;

	if (len <= sc->cap)
		return 0;
	n = realloc(sc->buf, len);
	if (!n)
		return -ENOMEM;
	sc->buf = n;
	sc->cap = len;
	return 0;
}

/*
 * Print the spec register of obj once, with a placeholder resourceVersion as the last member
 * of metadata. The placeholder is a random per-store token, so its position splits the text
 * into A (before) and B (after): A + B + "}" is the register text, and every composed
 * version of the object is A + resourceVersion + B + status + "}" without printing again.
 */
int spec_print(struct store *s, const cJSON *obj, const char *uid_default,
		      struct spec_out *out)
{
	static const char rvkey[] = "\"resourceVersion\":\"";
	const size_t rvkey_len = sizeof(rvkey) - 1;
	const cJSON *spec;
	cJSON *meta;
	char *m, *start;
	size_t len;
	int r;

	out->view = spec_view(obj, &meta);
	if (!out->view)
		return -ENOMEM;
	out->uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "uid"));
	if (strempty(out->uid)) {
		if (!uid_default) {
			util_uuid4(out->uidbuf);
			uid_default = out->uidbuf;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "uid");
		if (!cJSON_AddStringToObject(meta, "uid", uid_default))
			return -ENOMEM;
		out->uid = uid_default;
	}
	if (!cJSON_AddStringToObject(meta, "resourceVersion", s->marker))
		return -ENOMEM;
	r = print_into(out->view, &s->print, &len);
	if (r < 0)
		return r;
	m = memmem(s->print.buf, len, s->marker, STORE_MARKER_LEN);
	if (!m || m - s->print.buf < (ptrdiff_t)rvkey_len + 1)
		return -EIO;
	start = m - rvkey_len;
	if (memcmp(start, rvkey, rvkey_len) != 0)
		return -EIO;
	if (start[-1] == ',')
		start--;
	out->l = (struct layout){
		.a = s->print.buf,
		.a_len = (size_t)(start - s->print.buf),
		.b = m + STORE_MARKER_LEN + 1,
	};
	out->l.b_len = (size_t)(s->print.buf + len - 1 - out->l.b);
	out->labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
	spec = cJSON_GetObjectItemCaseSensitive(out->view, "spec");
	out->node_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "nodeName"));
	return 0;
}

/* The spec register text A + B + "}", in s->spec. */
int spec_text(struct store *s, const struct layout *l, const char **ret, size_t *ret_len)
{
	size_t len = l->a_len + l->b_len + 1;

	if (scratch_reserve(&s->spec, len + 1) < 0)
		return -ENOMEM;
	memcpy(s->spec.buf, l->a, l->a_len);
	memcpy(s->spec.buf + l->a_len, l->b, l->b_len);
	s->spec.buf[len - 1] = '}';
	s->spec.buf[len] = 0;
	*ret = s->spec.buf;
	*ret_len = len;
	return 0;
}

const cJSON *status_of(const cJSON *obj)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "status");

	return st && !cJSON_IsNull(st) ? st : NULL;
}

const char *phase_of(const cJSON *status)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "phase"));
}
