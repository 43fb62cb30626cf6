// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the cluster DNS server's message code (daemon/dns_msg.h) on what pods and
 * upstream servers send it, and the zone's answers (daemon/dns_zone.h) to whatever names they
 * ask for.
 *
 * One input is used four ways:
 *  - a TCP connection's byte stream: dns_tcp_frame() splits it into length-prefixed messages,
 *    each parsed as a query, answered from the zone and encoded under the TCP limit;
 *  - one UDP datagram: parsed as a query, answered, the answer cut to 512 bytes as the UDP
 *    server does before evdns encodes it;
 *  - an upstream's reply to the query in the same bytes (QR cleared): parsed into records that
 *    are re-encoded for the client, as the forwarder does;
 *  - a name string as evdns hands the UDP server (it decodes names itself): answered from the
 *    zone and turned into wire form.
 * Every encoded reply must stay inside its buffer and parse back as the answer to its own query.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/nameser.h>

#include "daemon/dns_msg.h"
#include "daemon/dns_zone.h"

static struct dns_zone *zone;

static const char *const objects[][4] = {
	{ "svc", "default", "web",
	  "{\"spec\":{\"clusterIP\":\"10.96.0.10\",\"ports\":["
	  "{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"},"
	  "{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"},{\"port\":9000}]}}" },
	{ "svc", "default", "db",
	  "{\"spec\":{\"clusterIP\":\"None\",\"ports\":[{\"name\":\"pg\",\"port\":5432}]}}" },
	{ "ep", "default", "db",
	  "{\"subsets\":[{\"addresses\":["
	  "{\"ip\":\"10.244.0.5\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"db-0\"}},"
	  "{\"ip\":\"10.244.0.6\",\"hostname\":\"replica\",\"targetRef\":{\"kind\":\"Pod\","
	  "\"name\":\"db-1\"}},"
	  "{\"ip\":\"10.244.0.7\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"db-2\"}}],"
	  "\"notReadyAddresses\":[{\"ip\":\"10.244.0.9\"}],"
	  "\"ports\":[{\"name\":\"pg\",\"port\":5433,\"protocol\":\"TCP\"}]}]}" },
	{ "pod", "default", "db-0",
	  "{\"spec\":{\"hostname\":\"db-0\",\"subdomain\":\"db\"},"
	  "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.0.5\"}}" },
	{ "svc", "default", "ext",
	  "{\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"db.example.com.\"}}" },
	{ "svc", "kube-system", "dns", "{\"spec\":{\"clusterIP\":\"10.96.0.53\"}}" },
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (dns_zone_new("cluster.local", 0, &zone) < 0)
		abort();
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		cJSON *o = cJSON_Parse(objects[i][3]);
		const char *k = objects[i][0], *ns = objects[i][1], *name = objects[i][2];
		int r;

		if (!o)
			abort();
		if (!strcmp(k, "svc"))
			r = dns_zone_service_set(zone, ns, name, o);
		else if (!strcmp(k, "ep"))
			r = dns_zone_endpoints_set(zone, ns, name, o);
		else
			r = dns_zone_pod_set(zone, ns, name, o);
		cJSON_Delete(o);
		if (r < 0)
			abort();
	}
	return 0;
}

/* Encode the reply to q within `limit` bytes and check it is the answer to q. */
static void encode_check(const struct dns_query *q, const struct dns_answer *a, size_t limit)
{
	static uint8_t buf[DNS_TCP_MAX + 64];
	struct dns_answer back = { 0 };
	int n, r;

	memset(buf + limit, 0xa5, 64);
	n = dns_reply_encode(q, a, buf, limit);
	for (size_t i = 0; i < 64; i++)
		assert(buf[limit + i] == 0xa5); /* nothing written past the limit */
	if (n < 0) {
		assert(n == -ENOBUFS);
		return;
	}
	assert((size_t)n <= limit && n >= 12);
	assert(buf[0] == q->id >> 8 && buf[1] == (q->id & 0xff));
	if (!q->qclass)
		return; /* no question echoed: nothing to match it against */
	r = dns_reply_parse(buf, (size_t)n, q->id, q->qname, q->qtype, q->qclass, &back);
	assert(r == 0);
	assert(back.rcode == (a->rcode & 0xf));
	assert(back.n <= a->n);
	dns_answer_clear(&back);
}

/* What the server does with one query: answer from the zone, or (outside it) relay, which the
 * upstream part of the input covers. */
static void serve(const uint8_t *msg, size_t len, size_t limit)
{
	struct dns_answer a = { 0 };
	struct dns_query q;
	int r = dns_query_parse(msg, len, &q);

	if (r == -EBADMSG)
		return;
	if (r < 0) {
		assert(r == -EPROTO);
		a.rcode = (q.flags & 0x7800) ? DNS_RCODE_NOTIMP : DNS_RCODE_FORMERR;
		encode_check(&q, &a, limit);
		return;
	}
	r = dns_zone_answer(zone, q.qname, q.qtype, q.qclass, &a);
	assert(r >= 0);
	if (limit == DNS_UDP_MAX) {
		dns_answer_fit(&a, q.qname, DNS_UDP_MAX);
		assert(!a.n || dns_answer_wire_size(&a, q.qname) <= DNS_UDP_MAX);
	}
	encode_check(&q, &a, limit);
	dns_answer_clear(&a);
}

static void upstream(const uint8_t *data, size_t size)
{
	static uint8_t copy[DNS_TCP_MAX];
	struct dns_answer a = { 0 };
	struct dns_query q;
	int r;

	if (size < 12 || size > sizeof(copy))
		return;
	memcpy(copy, data, size);
	copy[2] &= (uint8_t)~(DNS_FLAG_QR >> 8);
	if (dns_query_parse(copy, size, &q) < 0)
		return;
	r = dns_reply_parse(data, size, q.id, q.qname, q.qtype, q.qclass, &a);
	if (r < 0) {
		assert(r == -EBADMSG || r == -ESRCH || r == -ENOMEM);
		return;
	}
	encode_check(&q, &a, DNS_TCP_MAX);
	dns_answer_fit(&a, q.qname, DNS_UDP_MAX);
	encode_check(&q, &a, DNS_UDP_MAX);
	dns_answer_clear(&a);
}

static void name(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { DNS_T_A,   DNS_T_AAAA, DNS_T_SRV, DNS_T_PTR,
					  DNS_T_ANY, DNS_T_SOA,  DNS_T_NS,  DNS_T_CNAME };
	char s[DNS_NAME_MAX], canon[DNS_NAME_MAX];
	uint8_t wire[NS_MAXCDNAME];
	struct dns_answer a = { 0 };
	uint16_t qtype;

	if (size < 1 || size >= sizeof(s))
		return;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = 0;
	(void)dns_name_to_wire(s, wire, sizeof(wire));
	(void)dns_zone_contains(zone, s);
	if (dns_name_canon(s, canon, sizeof(canon)) == 0)
		assert(strlen(canon) <= strlen(s));
	qtype = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	/* evdns encodes this one: only the cut to 512 bytes is ours */
	if (dns_zone_answer(zone, s, qtype, DNS_CLASS_IN, &a) > 0) {
		dns_answer_fit(&a, s, DNS_UDP_MAX);
		assert(!a.n || dns_answer_wire_size(&a, s) <= DNS_UDP_MAX);
	}
	dns_answer_clear(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	int n;

	while ((n = dns_tcp_frame(data + off, size - off)) > 0) {
		assert((size_t)n <= size - off - 2);
		serve(data + off + 2, (size_t)n, DNS_TCP_MAX);
		off += 2 + (size_t)n;
	}
	assert(n == 0 || n == -EBADMSG);
	serve(data, size, DNS_UDP_MAX);
	upstream(data, size);
	name(data, size);
	return 0;
}
