// SPDX-License-Identifier: Apache-2.0
/* DNS answer lists, the evdns reply size, and the upstream query/reply codec (see dns_msg.h). */
#include <arpa/nameser.h>
#include <resolv.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "daemon/dns_msg.h"
#include "lib/macro.h"

void dns_answer_clear(struct dns_answer *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->rrs[i].name);
		free(a->rrs[i].rdata);
	}
	free(a->rrs);
	memset(a, 0, sizeof(*a));
}

int dns_answer_add(struct dns_answer *a, enum dns_section sec, const char *name, uint16_t type,
		   uint32_t ttl, const void *rdata, size_t rdlen)
{
	struct dns_rr *rr;

	if (rdlen > UINT16_MAX)
		return -EINVAL;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		struct dns_rr *n = reallocarray(a->rrs, cap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		a->rrs = n;
		a->cap = cap;
	}
	rr = &a->rrs[a->n];
	memset(rr, 0, sizeof(*rr));
	rr->section = sec;
	rr->type = type;
	rr->class = DNS_CLASS_IN;
	rr->ttl = ttl;
	rr->rdlen = rdlen;
	rr->name = strdup(name);
	rr->rdata = malloc(rdlen ? rdlen : 1);
	if (!rr->name || !rr->rdata) {
		free(rr->name);
		free(rr->rdata);
		return -ENOMEM;
	}
	if (rdlen)
		memcpy(rr->rdata, rdata, rdlen);
	a->n++;
	return 0;
}

int dns_answer_add_a(struct dns_answer *a, enum dns_section sec, const char *name, uint32_t ttl,
		     uint32_t ip_be)
{
	return dns_answer_add(a, sec, name, DNS_T_A, ttl, &ip_be, 4);
}

int dns_answer_add_name(struct dns_answer *a, enum dns_section sec, const char *name, uint16_t type,
			uint32_t ttl, const char *target)
{
	uint8_t buf[NS_MAXCDNAME];
	int n = dns_name_to_wire(target, buf, sizeof(buf));

	return n < 0 ? n : dns_answer_add(a, sec, name, type, ttl, buf, (size_t)n);
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p = put16(p, v >> 16);
	return put16(p, v & 0xffff);
}

int dns_answer_add_srv(struct dns_answer *a, enum dns_section sec, const char *name, uint32_t ttl,
		       uint16_t prio, uint16_t weight, uint16_t port, const char *target)
{
	uint8_t buf[6 + NS_MAXCDNAME], *p = buf;
	int n;

	p = put16(p, prio);
	p = put16(p, weight);
	p = put16(p, port);
	n = dns_name_to_wire(target, p, sizeof(buf) - 6);
	return n < 0 ? n : dns_answer_add(a, sec, name, DNS_T_SRV, ttl, buf, 6 + (size_t)n);
}

int dns_answer_add_soa(struct dns_answer *a, enum dns_section sec, const char *name, uint32_t ttl,
		       const char *mname, const char *rname, uint32_t serial, uint32_t refresh,
		       uint32_t retry, uint32_t expire, uint32_t minimum)
{
	uint8_t buf[2 * NS_MAXCDNAME + 20], *p = buf;
	int n;

	n = dns_name_to_wire(mname, p, NS_MAXCDNAME);
	if (n < 0)
		return n;
	p += n;
	n = dns_name_to_wire(rname, p, NS_MAXCDNAME);
	if (n < 0)
		return n;
	p += n;
	p = put32(p, serial);
	p = put32(p, refresh);
	p = put32(p, retry);
	p = put32(p, expire);
	p = put32(p, minimum);
	return dns_answer_add(a, sec, name, DNS_T_SOA, ttl, buf, (size_t)(p - buf));
}

int dns_name_to_wire(const char *name, uint8_t *buf, size_t len)
{
	/* dn_comp without a pointer table compresses nothing: plain wire labels */
	int n =
	    dn_comp(*name ? name : ".", buf, (int)(len > INT32_MAX ? INT32_MAX : len), NULL, NULL);

	return n < 0 ? -EINVAL : n;
}

int dns_name_canon(const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	if (n && name[n - 1] == '.')
		n--;
	if (n >= len)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		buf[i] = (name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i];
	buf[n] = 0;
	return 0;
}

/* evdns' label table: every suffix it wrote is a compression target (exact string match, at
 * most 128 entries) */
struct lbl_table {
	const char *s[128];
	int n;
};

static size_t name_size(struct lbl_table *t, const char *name)
{
	const char *p = name;
	size_t sz = 0;

	for (;;) {
		for (int i = 0; i < t->n; i++)
			if (streq(t->s[i], p))
				return sz + 2;
		const char *dot = strchr(p, '.');
		if (t->n < (int)ARRAY_SIZE(t->s))
			t->s[t->n++] = p;
		if (!dot) {
			size_t l = strlen(p);
			/* an empty last label is the terminating zero itself */
			return sz + 1 + l + (l ? 1 : 0);
		}
		sz += (size_t)(dot - p) + 1;
		p = dot + 1;
	}
}

size_t dns_answer_wire_size(const struct dns_answer *a, const char *qname)
{
	struct lbl_table t = {.n = 0};
	size_t sz = 12 + name_size(&t, qname) + 4;

	for (int sec = DNS_SEC_ANSWER; sec <= DNS_SEC_ADDITIONAL; sec++)
		for (size_t i = 0; i < a->n; i++)
			if (a->rrs[i].section == sec)
				sz += name_size(&t, a->rrs[i].name) + 10 + a->rrs[i].rdlen;
	return sz;
}

static void rr_remove(struct dns_answer *a, size_t i)
{
	free(a->rrs[i].name);
	free(a->rrs[i].rdata);
	memmove(&a->rrs[i], &a->rrs[i + 1], (a->n - i - 1) * sizeof(a->rrs[0]));
	a->n--;
}

bool dns_answer_fit(struct dns_answer *a, const char *qname, size_t limit)
{
	bool lost = false;

	while (a->n && dns_answer_wire_size(a, qname) > limit) {
		size_t victim = a->n;
		for (int sec = DNS_SEC_ADDITIONAL; sec >= DNS_SEC_ANSWER && victim == a->n; sec--)
			for (size_t i = a->n; i-- > 0;)
				if (a->rrs[i].section == sec) {
					victim = i;
					break;
				}
		if (a->rrs[victim].section != DNS_SEC_ADDITIONAL)
			lost = true;
		rr_remove(a, victim);
	}
	return lost;
}

int dns_query_build(uint16_t id, bool rd, const char *qname, uint16_t qtype, uint16_t qclass,
		    uint8_t *buf, size_t len)
{
	uint8_t *p = buf;
	int n;

	if (len < 12 + 1 + 4)
		return -ENOBUFS;
	p = put16(p, id);
	p = put16(p, rd ? DNS_FLAG_RD : 0);
	p = put16(p, 1);
	p = put16(p, 0);
	p = put16(p, 0);
	p = put16(p, 0);
	n = dns_name_to_wire(qname, p, len - 12 - 4);
	if (n < 0)
		return n;
	p += n;
	p = put16(p, qtype);
	p = put16(p, qclass);
	return (int)(p - buf);
}

/* rdata of a record with names inside that may be compressed (RFC 1035 types and SRV): rewrite
 * with the names expanded, so it stands on its own outside the upstream's packet */
static int rdata_expand(const ns_msg *h, const ns_rr *rr, uint8_t *out, size_t outlen)
{
	const uint8_t *som = ns_msg_base(*h), *eom = ns_msg_end(*h);
	const uint8_t *rd = ns_rr_rdata(*rr), *rdend = rd + ns_rr_rdlen(*rr);
	size_t fixed_pre = 0, names = 0, o = 0;

	switch (ns_rr_type(*rr)) {
	case DNS_T_NS:
	case DNS_T_CNAME:
	case DNS_T_PTR:
	case DNS_T_DNAME:
		names = 1;
		break;
	case DNS_T_MX:
		fixed_pre = 2;
		names = 1;
		break;
	case DNS_T_SRV:
		fixed_pre = 6;
		names = 1;
		break;
	case DNS_T_SOA:
		names = 2;
		break;
	default:
		if (ns_rr_rdlen(*rr) > outlen)
			return -EBADMSG;
		memcpy(out, rd, ns_rr_rdlen(*rr));
		return ns_rr_rdlen(*rr);
	}
	if ((size_t)(rdend - rd) < fixed_pre || fixed_pre > outlen)
		return -EBADMSG;
	memcpy(out, rd, fixed_pre);
	rd += fixed_pre;
	o = fixed_pre;
	for (size_t i = 0; i < names; i++) {
		uint8_t name[NS_MAXCDNAME];
		int used = ns_name_unpack(som, eom, rd, name, sizeof(name));
		size_t nlen = 0;
		if (used < 0 || rd + used > rdend)
			return -EBADMSG;
		while (name[nlen])
			nlen += name[nlen] + 1;
		nlen++;
		if (o + nlen > outlen)
			return -EBADMSG;
		memcpy(out + o, name, nlen);
		o += nlen;
		rd += used;
	}
	if ((size_t)(rdend - rd) > outlen - o)
		return -EBADMSG;
	memcpy(out + o, rd, (size_t)(rdend - rd)); /* SOA's five counters */
	o += (size_t)(rdend - rd);
	return (int)o;
}

int dns_reply_parse(const uint8_t *msg, size_t len, uint16_t id, const char *qname, uint16_t qtype,
		    uint16_t qclass, struct dns_answer *ret)
{
	static const struct {
		ns_sect sect;
		enum dns_section sec;
	} sects[] = {
	    {ns_s_an, DNS_SEC_ANSWER},
	    {ns_s_ns, DNS_SEC_AUTHORITY},
	    {ns_s_ar, DNS_SEC_ADDITIONAL},
	};
	char want[NS_MAXDNAME], got[NS_MAXDNAME];
	ns_msg h;
	ns_rr rr;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (len < 12 || len > 65535 || ns_initparse(msg, (int)len, &h) < 0)
		return -EBADMSG;
	if (ns_msg_id(h) != id || !ns_msg_getflag(h, ns_f_qr) || ns_msg_count(h, ns_s_qd) != 1)
		return -ESRCH;
	if (ns_parserr(&h, ns_s_qd, 0, &rr) < 0)
		return -EBADMSG;
	if (dns_name_canon(qname, want, sizeof(want)) < 0 ||
	    dns_name_canon(ns_rr_name(rr), got, sizeof(got)) < 0)
		return -ESRCH;
	if (streq(got, "."))
		got[0] = 0;
	if (!streq(want, got) || ns_rr_type(rr) != qtype || ns_rr_class(rr) != qclass)
		return -ESRCH;

	ret->rcode = ns_msg_getflag(h, ns_f_rcode);
	if (ns_msg_getflag(h, ns_f_aa))
		ret->flags |= DNS_FLAG_AA;
	if (ns_msg_getflag(h, ns_f_tc))
		ret->flags |= DNS_FLAG_TC;
	if (ns_msg_getflag(h, ns_f_ra))
		ret->flags |= DNS_FLAG_RA;
	if (ns_msg_getflag(h, ns_f_ad))
		ret->flags |= DNS_FLAG_AD;
	for (size_t s = 0; s < ARRAY_SIZE(sects); s++) {
		for (int i = 0; i < ns_msg_count(h, sects[s].sect); i++) {
			uint8_t rdata[2 * NS_MAXCDNAME + 20 > 4096 ? 2 * NS_MAXCDNAME + 20 : 4096];
			const char *name;
			int n;

			if (ns_parserr(&h, sects[s].sect, i, &rr) < 0)
				goto bad;
			if ((int)ns_rr_type(rr) == DNS_T_OPT)
				continue; /* EDNS is hop-by-hop; we do not speak it to the client */
			name = ns_rr_name(rr);
			/* evdns splits owner names at dots and knows no escapes: skip names it
			 * would mangle rather than hand the client a different name */
			if (strchr(name, '\\'))
				continue;
			if (streq(name, "."))
				name = "";
			n = rdata_expand(&h, &rr, rdata, sizeof(rdata));
			if (n < 0)
				goto bad;
			r = dns_answer_add(ret, sects[s].sec, name, ns_rr_type(rr), ns_rr_ttl(rr),
					   rdata, (size_t)n);
			if (r < 0) {
				dns_answer_clear(ret);
				return r;
			}
			ret->rrs[ret->n - 1].class = ns_rr_class(rr);
		}
	}
	return 0;
bad:
	dns_answer_clear(ret);
	return -EBADMSG;
}

int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *ret)
{
	ns_msg h;
	ns_rr rr;

	memset(ret, 0, sizeof(*ret));
	if (len < 12 || len > DNS_TCP_MAX)
		return -EBADMSG;
	ret->id = (uint16_t)(msg[0] << 8 | msg[1]);
	ret->flags = (uint16_t)(msg[2] << 8 | msg[3]);
	if (ret->flags & DNS_FLAG_QR)
		return -EBADMSG; /* a reply: never answer it (reflection loops) */
	if (ns_initparse(msg, (int)len, &h) < 0)
		return -EPROTO;
	if (ns_msg_getflag(h, ns_f_opcode) != ns_o_query || ns_msg_count(h, ns_s_qd) != 1)
		return -EPROTO;
	if (ns_parserr(&h, ns_s_qd, 0, &rr) < 0)
		return -EPROTO;
	if (snprintf(ret->qname, sizeof(ret->qname), "%s", ns_rr_name(rr)) >=
	    (int)sizeof(ret->qname))
		return -EPROTO;
	if (streq(ret->qname, "."))
		ret->qname[0] = 0;
	ret->qtype = ns_rr_type(rr);
	ret->qclass = ns_rr_class(rr);
	return 0;
}

int dns_reply_encode(const struct dns_query *q, const struct dns_answer *a, uint8_t *buf,
		     size_t len)
{
	uint8_t *dnptrs[128], **lastdnptr = dnptrs + ARRAY_SIZE(dnptrs);
	uint16_t counts[3] = {0}, flags;
	uint8_t *p = buf, *end = buf + (len > DNS_TCP_MAX ? DNS_TCP_MAX : len);
	bool tc = a->flags & DNS_FLAG_TC;
	int n;

	if (end - p < 12 + 1 + 4)
		return -ENOBUFS;
	dnptrs[0] = buf;
	dnptrs[1] = NULL;
	p += 12;
	/* class 0 is reserved: no question could be read (FORMERR), echo none */
	if (q->qclass) {
		n = dn_comp(*q->qname ? q->qname : ".", p, (int)(end - p - 4), dnptrs, lastdnptr);
		if (n < 0)
			return -ENOBUFS;
		p += n;
		p = put16(p, q->qtype);
		p = put16(p, q->qclass);
	}
	for (int sec = DNS_SEC_ANSWER; sec <= DNS_SEC_ADDITIONAL && !tc; sec++) {
		for (size_t i = 0; i < a->n && !tc; i++) {
			const struct dns_rr *rr = &a->rrs[i];
			uint8_t *start = p;

			if (rr->section != sec)
				continue;
			n = dn_comp(*rr->name ? rr->name : ".", p, (int)(end - p), dnptrs,
				    lastdnptr);
			if (n < 0 || end - p - n < 10 + (ptrdiff_t)rr->rdlen) {
				/* dn_comp may have remembered the name at p: forget it */
				for (uint8_t **d = dnptrs + 1; *d; d++)
					if (*d >= start) {
						*d = NULL;
						break;
					}
				p = start;
				tc = true;
				break;
			}
			p += n;
			p = put16(p, rr->type);
			p = put16(p, rr->class);
			p = put32(p, rr->ttl);
			p = put16(p, rr->rdlen);
			memcpy(p, rr->rdata, rr->rdlen);
			p += rr->rdlen;
			counts[sec]++;
		}
	}
	/* the opcode and RD/CD are the client's (RFC 1035 4.1.1, RFC 4035 3.2.2) */
	flags = DNS_FLAG_QR | DNS_FLAG_RA | (q->flags & (0x7800 | DNS_FLAG_RD | DNS_FLAG_CD)) |
		(a->flags & (DNS_FLAG_AA | DNS_FLAG_AD)) | (tc ? DNS_FLAG_TC : 0) |
		(a->rcode & 0xf);
	put16(buf, q->id);
	put16(buf + 2, flags);
	put16(buf + 4, q->qclass ? 1 : 0);
	put16(buf + 6, counts[DNS_SEC_ANSWER]);
	put16(buf + 8, counts[DNS_SEC_AUTHORITY]);
	put16(buf + 10, counts[DNS_SEC_ADDITIONAL]);
	return (int)(p - buf);
}

int dns_tcp_frame(const uint8_t *buf, size_t len)
{
	size_t n;

	if (len < 2)
		return 0;
	n = (size_t)buf[0] << 8 | buf[1];
	if (n == 0)
		return -EBADMSG;
	return len - 2 >= n ? (int)n : 0;
}
