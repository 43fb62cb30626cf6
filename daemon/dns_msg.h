/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS answers as the cluster DNS server hands them to libevent's evdns server: a list of
 * resource records (owner name in presentation form, rdata in wire form with names left
 * uncompressed) plus the response code and header flags. Pure: no sockets, no clock.
 *
 * For the TCP server: parsing a client's query, encoding a whole reply, and the length-prefix
 * framing.
 *
 * Also the two halves of forwarding a question upstream: building the query packet and turning
 * the upstream's reply (parsed with glibc's libresolv ns_* API, names decompressed) back into
 * such a list, so the evdns server can re-encode it for the client under the client's own
 * query id.
 */
#ifndef SHOAL_DAEMON_DNS_MSG_H
#define SHOAL_DAEMON_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* evdns' section numbers */
enum dns_section { DNS_SEC_ANSWER = 0, DNS_SEC_AUTHORITY = 1, DNS_SEC_ADDITIONAL = 2 };

enum {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
};

enum {
	DNS_T_A = 1,
	DNS_T_NS = 2,
	DNS_T_CNAME = 5,
	DNS_T_SOA = 6,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
	DNS_T_SRV = 33,
	DNS_T_DNAME = 39,
	DNS_T_OPT = 41,
	DNS_T_ANY = 255,
};
#define DNS_CLASS_IN 1
#define DNS_CLASS_ANY 255

/* header flag bits (second 16-bit word of the header) */
#define DNS_FLAG_QR 0x8000
#define DNS_FLAG_AA 0x0400
#define DNS_FLAG_TC 0x0200
#define DNS_FLAG_RD 0x0100
#define DNS_FLAG_RA 0x0080
#define DNS_FLAG_AD 0x0020
#define DNS_FLAG_CD 0x0010

/* classic UDP payload limit; evdns (2.1) truncates anything longer mid-record */
#define DNS_UDP_MAX 512
/* a DNS message over TCP: 2-byte length prefix (RFC 1035 4.2.2, RFC 7766) */
#define DNS_TCP_MAX 65535
#define DNS_NAME_MAX 1025 /* presentation form with the terminating zero (NS_MAXDNAME) */

struct dns_rr {
	uint8_t section; /* enum dns_section */
	uint16_t type;
	uint16_t class;
	uint32_t ttl;
	char *name;	/* owner, presentation form without the trailing dot ("" = root) */
	uint8_t *rdata; /* wire form, names uncompressed */
	uint16_t rdlen;
};

struct dns_answer {
	int rcode;
	uint16_t flags; /* DNS_FLAG_AA/TC/RA/AD to set in the reply header */
	struct dns_rr *rrs;
	size_t n, cap;
};

void dns_answer_clear(struct dns_answer *a); /* frees the records, keeps nothing */
int dns_answer_add(struct dns_answer *a, enum dns_section sec, const char *name, uint16_t type,
		   uint32_t ttl, const void *rdata, size_t rdlen);
int dns_answer_add_a(struct dns_answer *a, enum dns_section sec, const char *name, uint32_t ttl,
		     uint32_t ip_be);
/* rdata = target name (CNAME, PTR, NS) */
int dns_answer_add_name(struct dns_answer *a, enum dns_section sec, const char *name, uint16_t type,
			uint32_t ttl, const char *target);
int dns_answer_add_srv(struct dns_answer *a, enum dns_section sec, const char *name, uint32_t ttl,
		       uint16_t prio, uint16_t weight, uint16_t port, const char *target);
int dns_answer_add_soa(struct dns_answer *a, enum dns_section sec, const char *name, uint32_t ttl,
		       const char *mname, const char *rname, uint32_t serial, uint32_t refresh,
		       uint32_t retry, uint32_t expire, uint32_t minimum);

/* Presentation name ("a.b.c", "" or "." for the root) -> uncompressed wire form. Returns the
 * length or -EINVAL. */
int dns_name_to_wire(const char *name, uint8_t *buf, size_t len);
/* Lowercase copy without a trailing dot; -EINVAL if it does not fit. */
int dns_name_canon(const char *name, char *buf, size_t len);

/*
 * Size of the reply evdns would build for question `qname` with these records (evdns compresses
 * owner names against earlier full-suffix matches, never names inside raw rdata).
 */
size_t dns_answer_wire_size(const struct dns_answer *a, const char *qname);
/*
 * Drop records until the reply fits `limit` bytes: additional records first, then authority,
 * then trailing answers. Returns true if an answer or authority record had to go (the caller
 * decides whether that deserves TC).
 */
bool dns_answer_fit(struct dns_answer *a, const char *qname, size_t limit);

/* A standard query: header with id and RD as given, one question. Returns the length. */
int dns_query_build(uint16_t id, bool rd, const char *qname, uint16_t qtype, uint16_t qclass,
		    uint8_t *buf, size_t len);
/*
 * Parse an upstream reply to the query (id, qname, qtype, qclass) into *ret (rcode, the AA/TC/
 * RA/AD flags, every record but OPT). -EBADMSG if it is malformed, -ESRCH if it answers some
 * other query (wrong id/question: the caller keeps waiting).
 */
int dns_reply_parse(const uint8_t *msg, size_t len, uint16_t id, const char *qname, uint16_t qtype,
		    uint16_t qclass, struct dns_answer *ret);

/* A client's query as the TCP server reads it. */
struct dns_query {
	uint16_t id;
	uint16_t flags; /* the client's header flags (RD, CD, opcode) */
	uint16_t qtype, qclass;
	char qname[DNS_NAME_MAX]; /* presentation form, no trailing dot ("" = root) */
};

/*
 * Parse a client's query: exactly one question, QR clear. -EBADMSG if malformed (no usable id:
 * the caller drops it), -EPROTO for a well-formed message that is not a standard query with one
 * question (*ret->id and flags are set: answer FORMERR/NOTIMP).
 */
int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *ret);
/*
 * Encode the reply to q: header (id, QR, the client's RD/CD, RA, a's rcode and AA/TC/AD), the
 * question (none when q->qclass is 0: it could not be read), then a's records by section, owner
 * names compressed (dn_comp). Records that do not fit `len` are left out and TC is set. Returns the
 * length or -ENOBUFS (not even the header and question fit).
 */
int dns_reply_encode(const struct dns_query *q, const struct dns_answer *a, uint8_t *buf,
		     size_t len);

/*
 * TCP framing: given the first `len` bytes buffered from a connection, is a whole message there?
 * 0: need more; >0: the message length (it starts at buf + 2); -EBADMSG: a zero length prefix
 * (nothing sane follows: close the connection).
 */
int dns_tcp_frame(const uint8_t *buf, size_t len);

#endif
