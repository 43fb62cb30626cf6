// SPDX-License-Identifier: Apache-2.0
/* Encoder and decoder for the gossip wire format (swim_wire.h, docs/gossip.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched/swim_wire.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}
static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}
static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, (uint32_t)v);
}
static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put_addr(struct swim_wire_addr *w, const struct swim_addr *a)
{
	memset(w, 0, sizeof(*w));
	w->family = a->family;
	put16(w->port, a->port);
	memcpy(w->ip, a->ip, a->family == SWIM_AF_INET ? 4 : 16);
}
static int get_addr(struct swim_addr *a, const struct swim_wire_addr *w)
{
	if (w->family != SWIM_AF_INET && w->family != SWIM_AF_INET6)
		return -EBADMSG;
	memset(a, 0, sizeof(*a));
	a->family = w->family;
	a->port = get16(w->port);
	memcpy(a->ip, w->ip, a->family == SWIM_AF_INET ? 4 : 16);
	return 0;
}

static size_t fixed_size(uint8_t type)
{
	switch (type) {
	case SWIM_MSG_PING:
		return sizeof(struct swim_wire_ping);
	case SWIM_MSG_ACK:
	case SWIM_MSG_NACK:
		return sizeof(struct swim_wire_ack);
	case SWIM_MSG_PING_REQ:
		return sizeof(struct swim_wire_ping_req);
	case SWIM_MSG_ALIVE:
		return sizeof(struct swim_wire_alive);
	case SWIM_MSG_SUSPECT:
	case SWIM_MSG_DEAD:
		return sizeof(struct swim_wire_suspect);
	case SWIM_MSG_PUSHPULL:
		return sizeof(struct swim_wire_pushpull);
	case SWIM_MSG_STATE:
		return sizeof(struct swim_wire_state);
	case SWIM_MSG_REFUSE:
		return sizeof(struct swim_wire_refuse);
	case SWIM_MSG_DIGEST:
		return sizeof(struct swim_wire_digest);
	}
	return 0;
}

/* which of name / from / meta the type carries after its fixed part */
static void var_fields(uint8_t type, bool *name, bool *from, bool *meta)
{
	*name = *from = *meta = false;
	switch (type) {
	case SWIM_MSG_PING:
	case SWIM_MSG_PING_REQ:
	case SWIM_MSG_SUSPECT:
	case SWIM_MSG_DEAD:
		*name = *from = true;
		break;
	case SWIM_MSG_ALIVE:
	case SWIM_MSG_STATE:
		*name = *meta = true;
		break;
	case SWIM_MSG_PUSHPULL:
	case SWIM_MSG_REFUSE:
		*name = true;
		break;
	}
}

size_t swim_wire_msg_size(const struct swim_msg *m)
{
	bool n, f, me;

	var_fields(m->type, &n, &f, &me);
	return sizeof(struct swim_wire_msg_hdr) + fixed_size(m->type) + (n ? strlen(m->name) : 0) +
	       (f ? strlen(m->from) : 0) + (me ? m->meta_len : 0);
}

static int reserve(struct swim_wbuf *w, size_t n)
{
	if (w->len + n <= w->cap)
		return 0;
	if (!w->grow || w->len + n > SWIM_STREAM_MAX)
		return -ENOSPC;
	size_t cap = w->cap ? w->cap : 1024;
	while (cap < w->len + n)
		cap *= 2;
	uint8_t *b = realloc(w->buf, cap);
	if (!b)
		return -ENOMEM;
	w->buf = b;
	w->cap = cap;
	return 0;
}

int swim_wire_begin(struct swim_wbuf *w)
{
	int r;

	w->len = 0;
	r = reserve(w, sizeof(struct swim_wire_hdr));
	if (r < 0)
		return r;
	struct swim_wire_hdr h = {.magic = SWIM_WIRE_MAGIC, .version = SWIM_WIRE_VERSION};
	memcpy(w->buf, &h, sizeof(h));
	w->len = sizeof(h);
	return 0;
}

int swim_wire_put_raw(struct swim_wbuf *w, const void *msg, size_t len)
{
	int r = reserve(w, len);

	if (r < 0)
		return r;
	memcpy(w->buf + w->len, msg, len);
	w->len += len;
	return 0;
}

int swim_wire_put(struct swim_wbuf *w, const struct swim_msg *m)
{
	size_t nl = strlen(m->name), fl = strlen(m->from), fixed = fixed_size(m->type);
	size_t total = swim_wire_msg_size(m);
	union {
		struct swim_wire_ping ping;
		struct swim_wire_ack ack;
		struct swim_wire_ping_req preq;
		struct swim_wire_alive alive;
		struct swim_wire_suspect susp;
		struct swim_wire_pushpull pp;
		struct swim_wire_state st;
		struct swim_wire_refuse ref;
		struct swim_wire_digest dg;
	} u;
	bool hn, hf, hm;
	int r;

	if (!fixed || nl > SWIM_NAME_MAX || fl > SWIM_NAME_MAX || m->meta_len > SWIM_META_MAX)
		return -EINVAL;
	if (total - sizeof(struct swim_wire_msg_hdr) > UINT16_MAX)
		return -EINVAL;
	r = reserve(w, total);
	if (r < 0)
		return r;
	memset(&u, 0, sizeof(u));
	switch (m->type) {
	case SWIM_MSG_PING:
		put32(u.ping.seq, m->seq);
		u.ping.target_len = nl;
		u.ping.from_len = fl;
		break;
	case SWIM_MSG_ACK:
	case SWIM_MSG_NACK:
		put32(u.ack.seq, m->seq);
		break;
	case SWIM_MSG_PING_REQ:
		put32(u.preq.seq, m->seq);
		put_addr(&u.preq.target_addr, &m->addr);
		u.preq.target_len = nl;
		u.preq.from_len = fl;
		break;
	case SWIM_MSG_ALIVE:
		put32(u.alive.incarnation, m->incarnation);
		put64(u.alive.instance, m->instance);
		put_addr(&u.alive.addr, &m->addr);
		u.alive.name_len = nl;
		put16(u.alive.meta_len, m->meta_len);
		break;
	case SWIM_MSG_SUSPECT:
	case SWIM_MSG_DEAD:
		put32(u.susp.incarnation, m->incarnation);
		u.susp.name_len = nl;
		u.susp.from_len = fl;
		break;
	case SWIM_MSG_PUSHPULL:
		put64(u.pp.instance, m->instance);
		put32(u.pp.count, m->count);
		u.pp.name_len = nl;
		break;
	case SWIM_MSG_STATE:
		put32(u.st.incarnation, m->incarnation);
		put64(u.st.instance, m->instance);
		put_addr(&u.st.addr, &m->addr);
		u.st.name_len = nl;
		u.st.state = m->state;
		put16(u.st.meta_len, m->meta_len);
		break;
	case SWIM_MSG_REFUSE:
		put64(u.ref.instance, m->instance);
		u.ref.reason = m->reason;
		u.ref.name_len = nl;
		break;
	case SWIM_MSG_DIGEST:
		put64(u.dg.hash, m->hash);
		put32(u.dg.incarnation, m->incarnation);
		u.dg.state = m->state;
		break;
	}
	uint8_t *p = w->buf + w->len;
	struct swim_wire_msg_hdr mh = {.type = m->type, .flags = m->flags};
	put16(mh.len, total - sizeof(mh));
	memcpy(p, &mh, sizeof(mh));
	p += sizeof(mh);
	memcpy(p, &u, fixed);
	p += fixed;
	var_fields(m->type, &hn, &hf, &hm);
	if (hn) {
		memcpy(p, m->name, nl);
		p += nl;
	}
	if (hf) {
		memcpy(p, m->from, fl);
		p += fl;
	}
	if (hm && m->meta_len) {
		memcpy(p, m->meta, m->meta_len);
		p += m->meta_len;
	}
	w->len += total;
	return 0;
}

int swim_wire_check(const void *buf, size_t len)
{
	const struct swim_wire_hdr *h = buf;

	if (len < sizeof(*h))
		return -EBADMSG;
	if (h->magic != SWIM_WIRE_MAGIC || h->version != SWIM_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	return 0;
}

/* a name of n bytes at p: no NUL inside, not empty (names are identities) */
static int get_name(char *dst, const uint8_t *p, size_t n)
{
	if (n == 0 || n > SWIM_NAME_MAX || memchr(p, 0, n))
		return -EBADMSG;
	memcpy(dst, p, n);
	dst[n] = 0;
	return 0;
}

int swim_wire_next(const void *buf, size_t len, size_t *off, struct swim_msg *m)
{
	const uint8_t *b = buf;
	struct swim_wire_msg_hdr mh;
	size_t nl = 0, fl = 0, ml = 0, fixed;
	bool hn, hf, hm;

	if (*off == len)
		return 0;
	if (*off > len || len - *off < sizeof(mh))
		return -EBADMSG;
	memcpy(&mh, b + *off, sizeof(mh));
	size_t blen = get16(mh.len);
	const uint8_t *p = b + *off + sizeof(mh);
	if (len - *off - sizeof(mh) < blen)
		return -EBADMSG;
	*off += sizeof(mh) + blen;

	fixed = fixed_size(mh.type);
	if (!fixed)
		return -ENOMSG;
	if (blen < fixed)
		return -EBADMSG;
	memset(m, 0, offsetof(struct swim_msg, name));
	m->name[0] = m->from[0] = 0;
	m->meta = NULL;
	m->meta_len = 0;
	m->type = mh.type;
	m->flags = mh.flags;

	union {
		struct swim_wire_ping ping;
		struct swim_wire_ack ack;
		struct swim_wire_ping_req preq;
		struct swim_wire_alive alive;
		struct swim_wire_suspect susp;
		struct swim_wire_pushpull pp;
		struct swim_wire_state st;
		struct swim_wire_refuse ref;
		struct swim_wire_digest dg;
	} u;
	memcpy(&u, p, fixed);
	switch (mh.type) {
	case SWIM_MSG_PING:
		m->seq = get32(u.ping.seq);
		nl = u.ping.target_len;
		fl = u.ping.from_len;
		break;
	case SWIM_MSG_ACK:
	case SWIM_MSG_NACK:
		m->seq = get32(u.ack.seq);
		break;
	case SWIM_MSG_PING_REQ:
		m->seq = get32(u.preq.seq);
		if (get_addr(&m->addr, &u.preq.target_addr) < 0)
			return -EBADMSG;
		nl = u.preq.target_len;
		fl = u.preq.from_len;
		break;
	case SWIM_MSG_ALIVE:
		m->incarnation = get32(u.alive.incarnation);
		m->instance = get64(u.alive.instance);
		if (get_addr(&m->addr, &u.alive.addr) < 0)
			return -EBADMSG;
		nl = u.alive.name_len;
		ml = get16(u.alive.meta_len);
		break;
	case SWIM_MSG_SUSPECT:
	case SWIM_MSG_DEAD:
		m->incarnation = get32(u.susp.incarnation);
		nl = u.susp.name_len;
		fl = u.susp.from_len;
		break;
	case SWIM_MSG_PUSHPULL:
		m->instance = get64(u.pp.instance);
		m->count = get32(u.pp.count);
		nl = u.pp.name_len;
		break;
	case SWIM_MSG_STATE:
		m->incarnation = get32(u.st.incarnation);
		m->instance = get64(u.st.instance);
		if (get_addr(&m->addr, &u.st.addr) < 0)
			return -EBADMSG;
		nl = u.st.name_len;
		m->state = u.st.state;
		if (m->state > SWIM_LEFT)
			return -EBADMSG;
		ml = get16(u.st.meta_len);
		break;
	case SWIM_MSG_REFUSE:
		m->instance = get64(u.ref.instance);
		m->reason = u.ref.reason;
		nl = u.ref.name_len;
		break;
	case SWIM_MSG_DIGEST:
		m->hash = get64(u.dg.hash);
		m->incarnation = get32(u.dg.incarnation);
		m->state = u.dg.state;
		if (m->state > SWIM_LEFT)
			return -EBADMSG;
		break;
	}
	var_fields(mh.type, &hn, &hf, &hm);
	if (ml > SWIM_META_MAX || fixed + nl + fl + ml != blen)
		return -EBADMSG;
	p += fixed;
	if (hn) {
		if (get_name(m->name, p, nl) < 0)
			return -EBADMSG;
		p += nl;
	}
	if (hf) {
		if (get_name(m->from, p, fl) < 0)
			return -EBADMSG;
		p += fl;
	}
	if (hm) {
		m->meta = ml ? p : NULL;
		m->meta_len = ml;
	}
	return 1;
}
