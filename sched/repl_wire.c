// SPDX-License-Identifier: Apache-2.0
/* The replication wire codec (sched/repl_wire.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "sched/repl_wire.h"

static void rbuf_need(struct repl_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->oom || b->len + n <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void rbuf_put(struct repl_buf *b, const void *p, size_t n)
{
	rbuf_need(b, n);
	if (b->oom)
		return;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

void rbuf_init(struct repl_buf *b, enum repl_msg_type type, uint8_t flags)
{
	struct repl_wire_hdr h = {
	    .magic = REPL_WIRE_MAGIC,
	    .version = REPL_WIRE_VERSION,
	    .type = (uint8_t)type,
	    .flags = flags,
	};

	*b = (struct repl_buf){0};
	rbuf_put(b, &h, sizeof(h));
}

void rbuf_free(struct repl_buf *b)
{
	free(b->p);
	*b = (struct repl_buf){0};
}

void rbuf_u8(struct repl_buf *b, uint8_t v)
{
	rbuf_put(b, &v, 1);
}

void rbuf_varint(struct repl_buf *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;

	do {
		t[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			t[n] |= 0x80;
		n++;
	} while (v);
	rbuf_put(b, t, n);
}

void rbuf_u64(struct repl_buf *b, uint64_t v)
{
	uint8_t t[8];

	for (int i = 0; i < 8; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	rbuf_put(b, t, 8);
}

void rbuf_bytes(struct repl_buf *b, const char *p, size_t n)
{
	rbuf_varint(b, (uint64_t)n + 1);
	rbuf_put(b, p, n);
	rbuf_u8(b, 0);
}

void rbuf_str(struct repl_buf *b, const char *s)
{
	s = s ? s : "";
	rbuf_bytes(b, s, strlen(s));
}

void rbuf_raw(struct repl_buf *b, const void *p, size_t n)
{
	rbuf_put(b, p, n);
}

void rbuf_set_flags(struct repl_buf *b, uint8_t flags)
{
	if (!b->oom && b->len >= sizeof(struct repl_wire_hdr))
		((struct repl_wire_hdr *)b->p)->flags = flags;
}

void rbuf_set_count(struct repl_buf *b, uint32_t count)
{
	struct repl_wire_hdr *h;

	if (b->oom || b->len < sizeof(*h))
		return;
	h = (struct repl_wire_hdr *)b->p;
	h->count[0] = (uint8_t)(count >> 24);
	h->count[1] = (uint8_t)(count >> 16);
	h->count[2] = (uint8_t)(count >> 8);
	h->count[3] = (uint8_t)count;
}

void rbuf_key(struct repl_buf *b, const struct store_reg *spec, const struct store_reg *status)
{
	uint8_t f = 0;

	if (spec->tombstone)
		f |= REPL_KEY_TOMBSTONE;
	if (spec->sticky)
		f |= REPL_KEY_STICKY;
	if (status && !spec->tombstone) {
		f |= REPL_KEY_STATUS;
		if (status->body)
			f |= REPL_KEY_STATUS_BODY;
		if (status->term)
			f |= REPL_KEY_STATUS_TERM;
	}
	rbuf_str(b, spec->resource);
	rbuf_str(b, spec->ns);
	rbuf_str(b, spec->name);
	rbuf_str(b, spec->uid);
	rbuf_varint(b, spec->born);
	rbuf_u8(b, f);
	rbuf_varint(b, spec->hlc);
	rbuf_str(b, spec->node);
	if (!spec->tombstone)
		rbuf_bytes(b, spec->body ? spec->body : "", spec->body ? spec->body_len : 0);
	if (f & REPL_KEY_STICKY)
		rbuf_str(b, spec->sticky);
	if (f & REPL_KEY_STATUS) {
		rbuf_varint(b, status->hlc);
		rbuf_str(b, status->node);
		if (f & REPL_KEY_STATUS_BODY)
			rbuf_bytes(b, status->body, status->body_len);
		if (f & REPL_KEY_STATUS_TERM)
			rbuf_varint(b, status->term);
	}
}

int rbuf_take(struct repl_buf *b, uint8_t **ret, size_t *ret_len)
{
	if (b->oom) {
		rbuf_free(b);
		return -ENOMEM;
	}
	*ret = b->p;
	*ret_len = b->len;
	*b = (struct repl_buf){0};
	return 0;
}

/* --- reading --- */

int rrd_init(struct repl_rd *r, const uint8_t *msg, size_t len, enum repl_msg_type *type,
	     uint8_t *flags, uint32_t *count)
{
	const struct repl_wire_hdr *h = (const void *)msg;

	*r = (struct repl_rd){.p = msg, .end = msg + len};
	if (!msg || len < sizeof(*h) || h->magic != REPL_WIRE_MAGIC) {
		r->bad = true;
		return -EBADMSG;
	}
	if (h->version != REPL_WIRE_VERSION) {
		r->bad = true;
		return -EPROTONOSUPPORT;
	}
	*type = (enum repl_msg_type)h->type;
	*flags = h->flags;
	*count = (uint32_t)h->count[0] << 24 | (uint32_t)h->count[1] << 16 |
		 (uint32_t)h->count[2] << 8 | h->count[3];
	r->p += sizeof(*h);
	return 0;
}

uint8_t rrd_u8(struct repl_rd *r)
{
	if (r->bad || r->p >= r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

uint64_t rrd_varint(struct repl_rd *r)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t c = rrd_u8(r);

		if (r->bad)
			return 0;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

uint64_t rrd_u64(struct repl_rd *r)
{
	uint64_t v = 0;

	if (r->bad || r->end - r->p < 8) {
		r->bad = true;
		return 0;
	}
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += 8;
	return v;
}

const char *rrd_bytes(struct repl_rd *r, size_t *len)
{
	uint64_t n = rrd_varint(r);
	const char *s;

	if (r->bad || n == 0 || n > (uint64_t)(r->end - r->p) || r->p[n - 1] != 0) {
		r->bad = true;
		if (len)
			*len = 0;
		return "";
	}
	s = (const char *)r->p;
	r->p += n;
	if (len)
		*len = (size_t)n - 1;
	return s;
}

const char *rrd_str(struct repl_rd *r)
{
	size_t n;
	const char *s = rrd_bytes(r, &n);

	if (!r->bad && memchr(s, 0, n)) {
		r->bad = true;
		return "";
	}
	return s;
}

int rrd_key(struct repl_rd *r, struct store_reg *spec, struct store_reg *status)
{
	uint8_t f;

	*spec = (struct store_reg){.kind = STORE_REG_SPEC};
	*status = (struct store_reg){0};
	spec->resource = rrd_str(r);
	spec->ns = rrd_str(r);
	spec->name = rrd_str(r);
	spec->uid = rrd_str(r);
	spec->born = rrd_varint(r);
	f = rrd_u8(r);
	spec->hlc = rrd_varint(r);
	spec->node = rrd_str(r);
	spec->tombstone = f & REPL_KEY_TOMBSTONE;
	if (!spec->tombstone)
		spec->body = rrd_bytes(r, &spec->body_len);
	if (f & REPL_KEY_STICKY)
		spec->sticky = rrd_str(r);
	if (f & REPL_KEY_STATUS) {
		*status = *spec;
		status->kind = STORE_REG_STATUS;
		status->tombstone = false;
		status->sticky = NULL;
		status->body = NULL;
		status->body_len = 0;
		status->hlc = rrd_varint(r);
		status->node = rrd_str(r);
		if (f & REPL_KEY_STATUS_BODY)
			status->body = rrd_bytes(r, &status->body_len);
		if (f & REPL_KEY_STATUS_TERM)
			status->term = rrd_varint(r);
	}
	return r->bad ? -EBADMSG : 0;
}

/* --- key hash --- */

static const unsigned char hash_key[crypto_generichash_KEYBYTES] = "shoal/repl/keyhash/v1";

static void h_mem(crypto_generichash_state *st, const void *p, size_t n)
{
	uint8_t l[8];

	for (int i = 0; i < 8; i++)
		l[i] = (uint8_t)((uint64_t)n >> (8 * i));
	crypto_generichash_update(st, l, sizeof(l));
	if (n)
		crypto_generichash_update(st, p, n);
}

static void h_str(crypto_generichash_state *st, const char *s)
{
	if (!s)
		h_mem(st, "\xff", 1); /* NULL differs from "" */
	else
		h_mem(st, s, strlen(s));
}

static void h_u64(crypto_generichash_state *st, uint64_t v)
{
	uint8_t t[8];

	for (int i = 0; i < 8; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	crypto_generichash_update(st, t, sizeof(t));
}

uint64_t repl_key_hash(const struct store_reg *spec, const struct store_reg *status)
{
	crypto_generichash_state st;
	unsigned char out[crypto_generichash_BYTES_MIN];
	uint64_t d = 0;

	crypto_generichash_init(&st, hash_key, sizeof(hash_key), sizeof(out));
	h_str(&st, spec->uid);
	h_u64(&st, spec->born);
	h_u64(&st, spec->hlc);
	h_str(&st, spec->node);
	h_u64(&st, spec->tombstone);
	if (!spec->tombstone) {
		h_str(&st, spec->sticky);
		h_mem(&st, spec->body, spec->body ? spec->body_len : 0);
		if (status && status->kind) {
			h_u64(&st, 1);
			h_u64(&st, status->hlc);
			h_str(&st, status->node);
			if (status->term)
				h_u64(&st, status->term);
			h_u64(&st, status->body != NULL);
			h_mem(&st, status->body, status->body ? status->body_len : 0);
		} else
			h_u64(&st, 0);
	}
	crypto_generichash_final(&st, out, sizeof(out));
	for (int i = 0; i < 8; i++)
		d |= (uint64_t)out[i] << (8 * i);
	return d;
}
