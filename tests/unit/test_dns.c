// SPDX-License-Identifier: Apache-2.0
/* Cluster DNS: the zone's answers (dns_zone.c) and the message codec (dns_msg.c). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/dns_msg.h"
#include "daemon/dns_zone.h"

static struct dns_zone *zone;

/* uncompressed wire name -> presentation form */
static int dn_expand_wire(const uint8_t *p, const uint8_t *end, char out[static 256])
{
	(void)end;
	return ns_name_ntop(p, out, 256);
}

static uint32_t ip(const char *s)
{
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void feed(const char *kind, const char *ns, const char *name, const char *json)
{
	cJSON *o = json ? cJSON_Parse(json) : NULL;
	int r;

	if (json)
		assert_non_null(o);
	if (!strcmp(kind, "svc"))
		r = dns_zone_service_set(zone, ns, name, o);
	else if (!strcmp(kind, "ep"))
		r = dns_zone_endpoints_set(zone, ns, name, o);
	else
		r = dns_zone_pod_set(zone, ns, name, o);
	assert_int_equal(r, 0);
	cJSON_Delete(o);
}

static int setup(void **state)
{
	assert_int_equal(dns_zone_new("Cluster.Local.", 0, &zone), 0);
	feed("svc", "default", "web",
	     "{\"spec\":{\"clusterIP\":\"10.96.0.10\",\"ports\":["
	     "{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"},"
	     "{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"},{\"port\":9000}]}}");
	feed("svc", "default", "db",
	     "{\"spec\":{\"clusterIP\":\"None\",\"ports\":[{\"name\":\"pg\",\"port\":5432}]}}");
	feed("ep", "default", "db",
	     "{\"subsets\":[{\"addresses\":["
	     "{\"ip\":\"10.244.0.5\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"db-0\"}},"
	     "{\"ip\":\"10.244.0.6\",\"hostname\":\"Replica\",\"targetRef\":{\"kind\":\"Pod\","
	     "\"name\":\"db-1\"}},"
	     "{\"ip\":\"10.244.0.7\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"db-2\"}}],"
	     "\"notReadyAddresses\":[{\"ip\":\"10.244.0.9\"}],"
	     "\"ports\":[{\"name\":\"pg\",\"port\":5433,\"protocol\":\"TCP\"}]}]}");
	feed("pod", "default", "db-0",
	     "{\"spec\":{\"hostname\":\"db-0\",\"subdomain\":\"db\"},"
	     "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.0.5\"}}");
	feed("pod", "default", "db-2",
	     "{\"spec\":{\"hostname\":\"db-2\",\"subdomain\":\"other\"},"
	     "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.0.7\"}}");
	feed("svc", "default", "ext",
	     "{\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"db.example.com.\"}}");
	feed("svc", "kube-system", "dns", "{\"spec\":{\"clusterIP\":\"10.96.0.53\"}}");
	return 0;
}

static int teardown(void **state)
{
	zone = dns_zone_free(zone);
	return 0;
}

/* answer, asserting it is in the zone */
static struct dns_answer ask(const char *name, uint16_t type)
{
	struct dns_answer a;
	assert_int_equal(dns_zone_answer(zone, name, type, DNS_CLASS_IN, &a), 1);
	assert_true(a.flags & DNS_FLAG_AA);
	return a;
}

static size_t count(const struct dns_answer *a, int sec, uint16_t type)
{
	size_t n = 0;
	for (size_t i = 0; i < a->n; i++)
		n += a->rrs[i].section == sec && a->rrs[i].type == type;
	return n;
}

static bool has_a(const struct dns_answer *a, int sec, const char *owner, const char *addr)
{
	uint32_t want = ip(addr);
	for (size_t i = 0; i < a->n; i++)
		if (a->rrs[i].section == sec && a->rrs[i].type == DNS_T_A &&
		    !strcmp(a->rrs[i].name, owner) && !memcmp(a->rrs[i].rdata, &want, 4))
			return true;
	return false;
}

/* SRV rdata -> "port target" */
static void srv_str(const struct dns_rr *rr, char *buf, size_t len)
{
	char name[256];
	assert_int_equal(rr->type, DNS_T_SRV);
	assert_true(dn_expand_wire(rr->rdata + 6, rr->rdata + rr->rdlen, name) > 0);
	snprintf(buf, len, "%u %s", rr->rdata[4] << 8 | rr->rdata[5], name);
}

/* the i-th record of a section and type */
static const struct dns_rr *nth(const struct dns_answer *a, int sec, uint16_t type, size_t i)
{
	for (size_t k = 0; k < a->n; k++)
		if (a->rrs[k].section == sec && a->rrs[k].type == type && i-- == 0)
			return &a->rrs[k];
	fail_msg("no record %zu", i);
	return NULL;
}

static void assert_negative(struct dns_answer *a, int rcode)
{
	assert_int_equal(a->rcode, rcode);
	assert_int_equal(count(a, DNS_SEC_ANSWER, DNS_T_A), 0);
	assert_int_equal(count(a, DNS_SEC_AUTHORITY, DNS_T_SOA), 1);
	for (size_t i = 0; i < a->n; i++)
		if (a->rrs[i].type == DNS_T_SOA) {
			assert_string_equal(a->rrs[i].name, "cluster.local");
			assert_int_equal(a->rrs[i].ttl, DNS_ZONE_TTL);
		}
}

static void test_clusterip(void **state)
{
	struct dns_answer a = ask("Web.Default.SVC.cluster.local.", DNS_T_A);

	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.n, 1);
	/* the question's spelling, without the trailing dot */
	assert_true(has_a(&a, DNS_SEC_ANSWER, "Web.Default.SVC.cluster.local", "10.96.0.10"));
	assert_int_equal(a.rrs[0].ttl, 5);
	dns_answer_clear(&a);

	/* known name, other type: NODATA with the SOA */
	a = ask("web.default.svc.cluster.local", DNS_T_AAAA);
	assert_negative(&a, DNS_RCODE_NOERROR);
	dns_answer_clear(&a);

	a = ask("nope.default.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	a = ask("web.other.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	a = ask("web.default.svc.cluster.local.extra.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	a = ask("foo.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);

	/* empty non-terminals exist */
	a = ask("default.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NOERROR);
	dns_answer_clear(&a);
	a = ask("svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NOERROR);
	dns_answer_clear(&a);
	a = ask("empty.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);

	/* the apex has an SOA */
	a = ask("cluster.local", DNS_T_SOA);
	assert_int_equal(count(&a, DNS_SEC_ANSWER, DNS_T_SOA), 1);
	dns_answer_clear(&a);
}

static void test_outside_zone(void **state)
{
	struct dns_answer a = {.rcode = 77};

	assert_int_equal(dns_zone_answer(zone, "example.com", DNS_T_A, DNS_CLASS_IN, &a), 0);
	assert_int_equal(dns_zone_answer(zone, "notcluster.local", DNS_T_A, DNS_CLASS_IN, &a), 0);
	assert_int_equal(dns_zone_answer(zone, "local", DNS_T_A, DNS_CLASS_IN, &a), 0);
	assert_int_equal(a.rcode, 77);
	assert_false(dns_zone_contains(zone, "example.com."));
	assert_true(dns_zone_contains(zone, "CLUSTER.local."));
	assert_true(dns_zone_contains(zone, "x.cluster.local"));
}

static void test_srv_clusterip(void **state)
{
	struct dns_answer a = ask("_http._TCP.web.default.svc.cluster.local", DNS_T_SRV);
	char buf[300];

	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(count(&a, DNS_SEC_ANSWER, DNS_T_SRV), 1);
	srv_str(&a.rrs[0], buf, sizeof(buf));
	assert_string_equal(buf, "80 web.default.svc.cluster.local");
	assert_string_equal(a.rrs[0].name, "_http._TCP.web.default.svc.cluster.local");
	assert_true(has_a(&a, DNS_SEC_ADDITIONAL, "web.default.svc.cluster.local", "10.96.0.10"));
	dns_answer_clear(&a);

	a = ask("_dns._udp.web.default.svc.cluster.local", DNS_T_SRV);
	srv_str(&a.rrs[0], buf, sizeof(buf));
	assert_string_equal(buf, "53 web.default.svc.cluster.local");
	dns_answer_clear(&a);

	/* wrong protocol, unknown port: no such name */
	a = ask("_dns._tcp.web.default.svc.cluster.local", DNS_T_SRV);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	a = ask("_ftp._tcp.web.default.svc.cluster.local", DNS_T_SRV);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	/* the SRV name asked for an A: NODATA */
	a = ask("_http._tcp.web.default.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NOERROR);
	dns_answer_clear(&a);
	a = ask("_tcp.web.default.svc.cluster.local", DNS_T_SRV);
	assert_negative(&a, DNS_RCODE_NOERROR);
	dns_answer_clear(&a);

	/* SRV on the service name: every port */
	a = ask("web.default.svc.cluster.local", DNS_T_SRV);
	assert_int_equal(count(&a, DNS_SEC_ANSWER, DNS_T_SRV), 3);
	dns_answer_clear(&a);
}

static void test_headless(void **state)
{
	struct dns_answer a = ask("db.default.svc.cluster.local", DNS_T_A);
	char buf[300];

	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	/* ready addresses only */
	assert_int_equal(count(&a, DNS_SEC_ANSWER, DNS_T_A), 3);
	assert_true(has_a(&a, DNS_SEC_ANSWER, "db.default.svc.cluster.local", "10.244.0.5"));
	assert_true(has_a(&a, DNS_SEC_ANSWER, "db.default.svc.cluster.local", "10.244.0.6"));
	assert_true(has_a(&a, DNS_SEC_ANSWER, "db.default.svc.cluster.local", "10.244.0.7"));
	assert_false(has_a(&a, DNS_SEC_ANSWER, "db.default.svc.cluster.local", "10.244.0.9"));
	dns_answer_clear(&a);

	a = ask("_pg._tcp.db.default.svc.cluster.local", DNS_T_SRV);
	assert_int_equal(count(&a, DNS_SEC_ANSWER, DNS_T_SRV), 3);
	/* endpoint names: address.hostname, else the pod's hostname when its subdomain is the
	 * service, else the dashed IP; the port is the endpoint's */
	srv_str(nth(&a, DNS_SEC_ANSWER, DNS_T_SRV, 0), buf, sizeof(buf));
	assert_string_equal(buf, "5433 db-0.db.default.svc.cluster.local");
	srv_str(nth(&a, DNS_SEC_ANSWER, DNS_T_SRV, 1), buf, sizeof(buf));
	assert_string_equal(buf, "5433 replica.db.default.svc.cluster.local");
	srv_str(nth(&a, DNS_SEC_ANSWER, DNS_T_SRV, 2), buf, sizeof(buf));
	assert_string_equal(buf, "5433 10-244-0-7.db.default.svc.cluster.local");
	assert_true(
	    has_a(&a, DNS_SEC_ADDITIONAL, "replica.db.default.svc.cluster.local", "10.244.0.6"));
	dns_answer_clear(&a);

	a = ask("DB-0.db.default.svc.cluster.local", DNS_T_A);
	assert_int_equal(a.n, 1);
	assert_true(has_a(&a, DNS_SEC_ANSWER, "DB-0.db.default.svc.cluster.local", "10.244.0.5"));
	dns_answer_clear(&a);
	a = ask("10-244-0-7.db.default.svc.cluster.local", DNS_T_A);
	assert_true(
	    has_a(&a, DNS_SEC_ANSWER, "10-244-0-7.db.default.svc.cluster.local", "10.244.0.7"));
	dns_answer_clear(&a);
	a = ask("db-2.db.default.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	/* endpoint names exist only under headless services */
	a = ask("10-96-0-10.web.default.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);

	/* endpoints gone: the name stays, with no data */
	feed("ep", "default", "db", NULL);
	a = ask("db.default.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NOERROR);
	dns_answer_clear(&a);
	/* the service gone: no such name */
	feed("svc", "default", "db", NULL);
	a = ask("db.default.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
}

static void test_pods(void **state)
{
	struct dns_answer a = ask("10-244-0-5.default.pod.cluster.local", DNS_T_A);

	assert_true(
	    has_a(&a, DNS_SEC_ANSWER, "10-244-0-5.default.pod.cluster.local", "10.244.0.5"));
	dns_answer_clear(&a);
	a = ask("10-244-0-5.default.pod.cluster.local", DNS_T_AAAA);
	assert_negative(&a, DNS_RCODE_NOERROR);
	dns_answer_clear(&a);
	/* verified: a pod with that IP must exist in that namespace */
	a = ask("10-244-0-5.other.pod.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	a = ask("10-244-0-99.default.pod.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	a = ask("10-244-0-256.default.pod.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);

	/* finished and deleted pods lose their name */
	feed("pod", "default", "db-0",
	     "{\"status\":{\"phase\":\"Succeeded\",\"podIP\":\"10.244.0.5\"}}");
	a = ask("10-244-0-5.default.pod.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	feed("pod", "default", "db-2", NULL);
	a = ask("10-244-0-7.default.pod.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
}

static void test_reverse(void **state)
{
	struct dns_answer a = ask("10.0.96.10.IN-ADDR.ARPA.", DNS_T_PTR);
	char name[256];

	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.rrs[0].type, DNS_T_PTR);
	assert_string_equal(a.rrs[0].name, "10.0.96.10.IN-ADDR.ARPA");
	assert_true(dn_expand_wire(a.rrs[0].rdata, a.rrs[0].rdata + a.rrs[0].rdlen, name) > 0);
	assert_string_equal(name, "web.default.svc.cluster.local");
	dns_answer_clear(&a);
	a = ask("10.0.96.10.in-addr.arpa", DNS_T_A);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.n, 0);
	dns_answer_clear(&a);

	/* addresses that are no ClusterIP are not ours: relayed */
	assert_int_equal(
	    dns_zone_answer(zone, "5.0.244.10.in-addr.arpa", DNS_T_PTR, DNS_CLASS_IN, &a), 0);
	assert_int_equal(dns_zone_answer(zone, "0.96.10.in-addr.arpa", DNS_T_PTR, DNS_CLASS_IN, &a),
			 0);
	/* a new ClusterIP moves the reverse name; a deleted service takes it along */
	feed("svc", "default", "web", "{\"spec\":{\"clusterIP\":\"10.96.0.11\"}}");
	assert_int_equal(
	    dns_zone_answer(zone, "10.0.96.10.in-addr.arpa", DNS_T_PTR, DNS_CLASS_IN, &a), 0);
	a = ask("11.0.96.10.in-addr.arpa", DNS_T_PTR);
	assert_int_equal(a.n, 1);
	dns_answer_clear(&a);
	feed("svc", "default", "web", NULL);
	assert_int_equal(
	    dns_zone_answer(zone, "11.0.96.10.in-addr.arpa", DNS_T_PTR, DNS_CLASS_IN, &a), 0);
}

static void test_external_name(void **state)
{
	struct dns_answer a = ask("ext.default.svc.cluster.local", DNS_T_A);
	char name[256];

	assert_int_equal(a.n, 1);
	assert_int_equal(a.rrs[0].type, DNS_T_CNAME);
	assert_true(dn_expand_wire(a.rrs[0].rdata, a.rrs[0].rdata + a.rrs[0].rdlen, name) > 0);
	assert_string_equal(name, "db.example.com");
	dns_answer_clear(&a);
}

static void test_refcounted_ns(void **state)
{
	struct dns_answer a;

	feed("svc", "kube-system", "dns", NULL);
	a = ask("kube-system.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
	/* replacing a service keeps one count */
	feed("svc", "default", "web", "{\"spec\":{\"clusterIP\":\"10.96.0.11\"}}");
	feed("svc", "default", "web", NULL);
	feed("svc", "default", "ext", NULL);
	a = ask("default.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NOERROR); /* db is left */
	dns_answer_clear(&a);
	feed("svc", "default", "db", NULL);
	a = ask("default.svc.cluster.local", DNS_T_A);
	assert_negative(&a, DNS_RCODE_NXDOMAIN);
	dns_answer_clear(&a);
}

static void test_wire_size_and_fit(void **state)
{
	struct dns_answer a = ask("web.default.svc.cluster.local", DNS_T_A);
	char json[16384];
	size_t off;

	/* 12 header + 31 name + 4, then a 2-byte pointer + 10 + 4 */
	assert_int_equal(dns_answer_wire_size(&a, "web.default.svc.cluster.local"), 63);
	dns_answer_clear(&a);

	/* a headless service with 100 ready pods: the answer is cut to what fits in 512 bytes */
	feed("svc", "default", "big", "{\"spec\":{\"clusterIP\":\"None\"}}");
	off = (size_t)snprintf(json, sizeof(json), "{\"subsets\":[{\"addresses\":[");
	for (int i = 0; i < 100; i++)
		off += (size_t)snprintf(json + off, sizeof(json) - off,
					"%s{\"ip\":\"10.244.1.%d\"}", i ? "," : "", i + 1);
	snprintf(json + off, sizeof(json) - off, "]}]}");
	feed("ep", "default", "big", json);
	a = ask("big.default.svc.cluster.local", DNS_T_A);
	assert_int_equal(count(&a, DNS_SEC_ANSWER, DNS_T_A), 100);
	assert_true(dns_answer_fit(&a, "big.default.svc.cluster.local", DNS_UDP_MAX));
	assert_true(dns_answer_wire_size(&a, "big.default.svc.cluster.local") <= DNS_UDP_MAX);
	/* (512 - 47) / 16 */
	assert_int_equal(count(&a, DNS_SEC_ANSWER, DNS_T_A), 29);
	dns_answer_clear(&a);

	/* additional data goes first, and that is not a loss */
	a = ask("_http._tcp.web.default.svc.cluster.local", DNS_T_SRV);
	assert_int_equal(a.n, 2);
	size_t full = dns_answer_wire_size(&a, "_http._tcp.web.default.svc.cluster.local");
	assert_false(dns_answer_fit(&a, "_http._tcp.web.default.svc.cluster.local", full - 1));
	assert_int_equal(a.n, 1);
	assert_int_equal(a.rrs[0].type, DNS_T_SRV);
	dns_answer_clear(&a);
}

static void test_query_and_reply(void **state)
{
	uint8_t q[512], r[512];
	struct dns_answer a;
	int n;

	n = dns_query_build(0x1234, true, "www.Example.com", DNS_T_A, DNS_CLASS_IN, q, sizeof(q));
	assert_int_equal(n, 12 + 17 + 4);
	assert_int_equal(q[0], 0x12);
	assert_int_equal(q[1], 0x34);
	assert_int_equal(q[2], 0x01); /* RD */
	assert_int_equal(q[5], 1);    /* one question */
	assert_memory_equal(q + 12, "\3www\7Example\3com\0", 17);

	/* a reply with a CNAME whose target is compressed against the question, then an A */
	memcpy(r, q, (size_t)n);
	size_t o = (size_t)n;
	r[2] = 0x81; /* QR RD */
	r[3] = 0x80; /* RA, NOERROR */
	r[7] = 2;    /* two answers */
	static const uint8_t cname[] = {0xc0, 12, 0, 5, 0,   1,	  0,   0,    0,
					60,   0,  6, 3, 'c', 'd', 'n', 0xc0, 16};
	memcpy(r + o, cname, sizeof(cname));
	o += sizeof(cname);
	const uint8_t arec[] = {0xc0, (uint8_t)(n + 12), 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2,
				7};
	memcpy(r + o, arec, sizeof(arec));
	o += sizeof(arec);

	assert_int_equal(
	    dns_reply_parse(r, o, 0x1234, "WWW.example.com.", DNS_T_A, DNS_CLASS_IN, &a), 0);
	assert_int_equal(a.rcode, 0);
	assert_int_equal(a.flags, DNS_FLAG_RA);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.rrs[0].name, "www.Example.com");
	assert_int_equal(a.rrs[0].type, DNS_T_CNAME);
	assert_int_equal(a.rrs[0].ttl, 60);
	/* the target stands on its own: no pointer into the upstream's packet */
	assert_int_equal(a.rrs[0].rdlen, 17);
	assert_memory_equal(a.rrs[0].rdata, "\3cdn\7Example\3com\0", 17);
	assert_string_equal(a.rrs[1].name, "cdn.Example.com");
	assert_int_equal(a.rrs[1].rdlen, 4);
	assert_memory_equal(a.rrs[1].rdata, "\xc0\x00\x02\x07", 4);
	dns_answer_clear(&a);

	/* somebody else's reply: wrong id or question */
	assert_int_equal(
	    dns_reply_parse(r, o, 0x1235, "www.example.com", DNS_T_A, DNS_CLASS_IN, &a), -ESRCH);
	assert_int_equal(
	    dns_reply_parse(r, o, 0x1234, "www.example.org", DNS_T_A, DNS_CLASS_IN, &a), -ESRCH);
	assert_int_equal(
	    dns_reply_parse(r, o, 0x1234, "www.example.com", DNS_T_AAAA, DNS_CLASS_IN, &a), -ESRCH);
	/* a query is not a reply */
	assert_int_equal(
	    dns_reply_parse(q, (size_t)n, 0x1234, "www.example.com", DNS_T_A, DNS_CLASS_IN, &a),
	    -ESRCH);
	/* truncated packet */
	assert_int_equal(
	    dns_reply_parse(r, o - 3, 0x1234, "www.example.com", DNS_T_A, DNS_CLASS_IN, &a),
	    -EBADMSG);
	/* NXDOMAIN and TC come through */
	r[2] |= 0x02;
	r[3] = 0x83;
	r[7] = 0;
	assert_int_equal(
	    dns_reply_parse(r, (size_t)n, 0x1234, "www.example.com", DNS_T_A, DNS_CLASS_IN, &a), 0);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(a.flags, DNS_FLAG_RA | DNS_FLAG_TC);
	assert_int_equal(a.n, 0);
	dns_answer_clear(&a);
}

/* a headless service with n ready endpoints 10.244.1.1... */
static void feed_big(int n)
{
	char json[16384];
	size_t off;

	feed("svc", "default", "big", "{\"spec\":{\"clusterIP\":\"None\"}}");
	off = (size_t)snprintf(json, sizeof(json), "{\"subsets\":[{\"addresses\":[");
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(json + off, sizeof(json) - off,
					"%s{\"ip\":\"10.244.1.%d\"}", i ? "," : "", i + 1);
	snprintf(json + off, sizeof(json) - off, "]}]}");
	feed("ep", "default", "big", json);
}

static void test_tcp_reply(void **state)
{
	struct dns_query q = {.id = 0xbeef,
			      .flags = DNS_FLAG_RD | DNS_FLAG_CD,
			      .qtype = DNS_T_A,
			      .qclass = DNS_CLASS_IN};
	static uint8_t buf[DNS_TCP_MAX];
	struct dns_answer a, back;
	int n;

	feed_big(100);
	snprintf(q.qname, sizeof(q.qname), "Big.default.svc.cluster.local");
	a = ask(q.qname, DNS_T_A);
	/* over TCP the whole answer goes: owner names compressed to a pointer each */
	n = dns_reply_encode(&q, &a, buf, sizeof(buf));
	assert_int_equal(n, 12 + 31 + 4 + 100 * 16);
	assert_int_equal(buf[0] << 8 | buf[1], 0xbeef);
	assert_int_equal(buf[2] << 8 | buf[3],
			 DNS_FLAG_QR | DNS_FLAG_AA | DNS_FLAG_RD | DNS_FLAG_CD | DNS_FLAG_RA);
	assert_int_equal(dns_reply_parse(buf, (size_t)n, 0xbeef, "big.default.svc.cluster.local",
					 DNS_T_A, DNS_CLASS_IN, &back),
			 0);
	assert_int_equal(back.n, 100);
	assert_int_equal(back.flags & DNS_FLAG_TC, 0);
	assert_string_equal(back.rrs[99].name, "Big.default.svc.cluster.local");
	assert_memory_equal(back.rrs[99].rdata, "\x0a\xf4\x01\x64", 4);
	dns_answer_clear(&back);

	/* a buffer too small keeps the records that fit, whole, and says TC */
	n = dns_reply_encode(&q, &a, buf, DNS_UDP_MAX);
	assert_true(n > 0 && n <= DNS_UDP_MAX);
	assert_true(buf[2] & (DNS_FLAG_TC >> 8));
	assert_int_equal(dns_reply_parse(buf, (size_t)n, 0xbeef, "big.default.svc.cluster.local",
					 DNS_T_A, DNS_CLASS_IN, &back),
			 0);
	assert_int_equal(back.n, (DNS_UDP_MAX - 47) / 16);
	assert_true(back.flags & DNS_FLAG_TC);
	dns_answer_clear(&back);

	/* negative answers: rcode and the SOA in authority */
	dns_answer_clear(&a);
	snprintf(q.qname, sizeof(q.qname), "nothere.default.svc.cluster.local");
	a = ask(q.qname, DNS_T_A);
	n = dns_reply_encode(&q, &a, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(buf[3] & 0xf, DNS_RCODE_NXDOMAIN);
	assert_int_equal(buf[9], 1); /* NSCOUNT */
	assert_int_equal(
	    dns_reply_parse(buf, (size_t)n, 0xbeef, q.qname, DNS_T_A, DNS_CLASS_IN, &back), 0);
	assert_int_equal(back.rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(back.n, 1);
	assert_int_equal(back.rrs[0].type, DNS_T_SOA);
	dns_answer_clear(&back);
	dns_answer_clear(&a);
	/* not even the question fits */
	assert_int_equal(dns_reply_encode(&q, &a, buf, 20), -ENOBUFS);
	/* FORMERR to a query whose question could not be read: header only */
	struct dns_query bad = {.id = 9, .flags = DNS_FLAG_RD};
	a.rcode = DNS_RCODE_FORMERR;
	assert_int_equal(dns_reply_encode(&bad, &a, buf, sizeof(buf)), 12);
	assert_int_equal(buf[3] & 0xf, DNS_RCODE_FORMERR);
	assert_int_equal(buf[5], 0); /* QDCOUNT */
}

static void test_udp_truncation_decision(void **state)
{
	struct dns_answer a;

	/* 60 ready pods do not fit 512 bytes: records are dropped and that is a loss (TC) */
	feed_big(60);
	a = ask("big.default.svc.cluster.local", DNS_T_A);
	assert_int_equal(a.n, 60);
	assert_true(dns_answer_fit(&a, "big.default.svc.cluster.local", DNS_UDP_MAX));
	assert_int_equal(a.n, 29);
	dns_answer_clear(&a);
	/* 29 fit exactly: nothing lost, no TC */
	feed_big(29);
	a = ask("big.default.svc.cluster.local", DNS_T_A);
	assert_false(dns_answer_fit(&a, "big.default.svc.cluster.local", DNS_UDP_MAX));
	assert_int_equal(a.n, 29);
	dns_answer_clear(&a);
}

static void test_query_parse(void **state)
{
	uint8_t q[512];
	struct dns_query p;
	int n;

	n = dns_query_build(0x4242, true, "Web.default.svc.cluster.local.", DNS_T_SRV, DNS_CLASS_IN,
			    q, sizeof(q));
	assert_int_equal(dns_query_parse(q, (size_t)n, &p), 0);
	assert_int_equal(p.id, 0x4242);
	assert_int_equal(p.flags, DNS_FLAG_RD);
	assert_int_equal(p.qtype, DNS_T_SRV);
	assert_int_equal(p.qclass, DNS_CLASS_IN);
	assert_string_equal(p.qname, "Web.default.svc.cluster.local");
	/* the root */
	n = dns_query_build(7, false, "", DNS_T_NS, DNS_CLASS_IN, q, sizeof(q));
	assert_int_equal(dns_query_parse(q, (size_t)n, &p), 0);
	assert_string_equal(p.qname, "");
	/* short, or a reply: dropped */
	assert_int_equal(dns_query_parse(q, 11, &p), -EBADMSG);
	q[2] |= 0x80;
	assert_int_equal(dns_query_parse(q, (size_t)n, &p), -EBADMSG);
	q[2] &= 0x7f;
	/* a truncated question, two questions, another opcode: answered with an error */
	assert_int_equal(dns_query_parse(q, (size_t)n - 2, &p), -EPROTO);
	assert_int_equal(p.id, 7);
	q[5] = 2;
	assert_int_equal(dns_query_parse(q, (size_t)n, &p), -EPROTO);
	q[5] = 1;
	q[2] |= 2 << 3; /* STATUS */
	assert_int_equal(dns_query_parse(q, (size_t)n, &p), -EPROTO);
	assert_int_equal(p.flags & 0x7800, 2 << 11);
}

static void test_tcp_frame(void **state)
{
	static uint8_t big[2 + DNS_TCP_MAX];

	assert_int_equal(dns_tcp_frame((const uint8_t *)"", 0), 0);
	assert_int_equal(dns_tcp_frame((const uint8_t *)"\0", 1), 0);
	assert_int_equal(dns_tcp_frame((const uint8_t *)"\0\5abc", 5), 0);
	assert_int_equal(dns_tcp_frame((const uint8_t *)"\0\3abc", 5), 3);
	/* the next message's bytes may follow */
	assert_int_equal(dns_tcp_frame((const uint8_t *)"\0\3abc\0\1", 7), 3);
	assert_int_equal(dns_tcp_frame((const uint8_t *)"\0\0", 2), -EBADMSG);
	big[0] = big[1] = 0xff;
	assert_int_equal(dns_tcp_frame(big, sizeof(big) - 1), 0);
	assert_int_equal(dns_tcp_frame(big, sizeof(big)), DNS_TCP_MAX);
}

static void test_names(void **state)
{
	uint8_t buf[300];
	char s[300];

	assert_int_equal(dns_name_to_wire("", buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 0);
	assert_int_equal(dns_name_to_wire("a.b", buf, sizeof(buf)), 5);
	memset(s, 'a', 70);
	s[70] = 0;
	assert_int_equal(dns_name_to_wire(s, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(dns_name_canon("Foo.BAR.", s, sizeof(s)), 0);
	assert_string_equal(s, "foo.bar");
	assert_int_equal(dns_name_canon("foo.bar", s, 4), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_clusterip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outside_zone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_clusterip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_headless, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pods, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_external_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reverse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refcounted_ns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wire_size_and_fit, setup, teardown),
	    cmocka_unit_test(test_query_and_reply),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test_setup_teardown(test_tcp_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_truncation_decision, setup, teardown),
	    cmocka_unit_test(test_query_parse),
	    cmocka_unit_test(test_tcp_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
