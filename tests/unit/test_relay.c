// SPDX-License-Identifier: Apache-2.0
/* Relaying pod I/O between nodes: credentials, endpoints, the request and response heads. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "api/relay.h"
#include "daemon/relay.h"

static const uint8_t k1[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t k2[32] = {42};

static void test_cred(void **state)
{
	uint8_t keys[2][32];
	char tok[512], node[256], bad[512];

	assert_int_equal(relay_cred_make(k1, "n1", "n2", tok, sizeof(tok)), 0);
	assert_true(strncmp(tok, RELAY_CRED_PREFIX, strlen(RELAY_CRED_PREFIX)) == 0);
	memcpy(keys[0], k1, 32);
	memcpy(keys[1], k2, 32);

	/* the target accepts it with the key among its installed ones, in any position */
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys, 2, "n2", tok, node, sizeof(node)), 0);
	assert_string_equal(node, "n1");
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys + 1, 1, "n2", tok, node, sizeof(node)),
	    -EACCES); /* only the other key installed */
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys, 0, "n2", tok, node, sizeof(node)),
	    -EACCES);
	/* made for n2: no use against n3 */
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys, 2, "n3", tok, node, sizeof(node)),
	    -EACCES);
	/* another name in the token: the mac does not match */
	snprintf(bad, sizeof(bad), "%.*sn9", (int)(strlen(tok) - 2), tok);
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys, 2, "n2", bad, node, sizeof(node)),
	    -EACCES);
	/* a flipped mac character */
	strcpy(bad, tok);
	bad[strlen(RELAY_CRED_PREFIX) + 3] ^= 1;
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys, 2, "n2", bad, node, sizeof(node)),
	    -EACCES);
	/* not a node credential at all */
	assert_int_equal(relay_cred_check((const uint8_t(*)[32])keys, 2, "n2", "admin-token", node,
					  sizeof(node)),
			 -EACCES);
	assert_int_equal(relay_cred_check((const uint8_t(*)[32])keys, 2, "n2", RELAY_CRED_PREFIX,
					  node, sizeof(node)),
			 -EACCES);
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys, 2, "n2", NULL, node, sizeof(node)),
	    -EACCES);

	/* node names with dots (DNS subdomains) survive */
	assert_int_equal(relay_cred_make(k2, "node-1.zone.example", "n2", tok, sizeof(tok)), 0);
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys, 2, "n2", tok, node, sizeof(node)), 0);
	assert_string_equal(node, "node-1.zone.example");
	/* the same inputs make the same credential; another key another one */
	assert_int_equal(relay_cred_make(k1, "n1", "n2", tok, sizeof(tok)), 0);
	assert_int_equal(relay_cred_make(k1, "n1", "n2", bad, sizeof(bad)), 0);
	assert_string_equal(tok, bad);
	assert_int_equal(relay_cred_make(k2, "n1", "n2", bad, sizeof(bad)), 0);
	assert_string_not_equal(tok, bad);
	/* the boundary between the names is bound: n1 -> n23 is no credential of n1n for 23 */
	assert_int_equal(relay_cred_make(k1, "n1", "n23", tok, sizeof(tok)), 0);
	snprintf(bad, sizeof(bad), "%sn", tok);
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys, 2, "23", bad, node, sizeof(node)),
	    -EACCES);
	assert_int_equal(
	    relay_cred_check((const uint8_t(*)[32])keys, 2, "n23", tok, node, sizeof(node)), 0);
	assert_int_equal(relay_cred_make(k1, "n1", "n2", tok, 20), -ENOSPC);
}

static void test_endpoint(void **state)
{
	uint8_t pin[32], got[32];
	char addr[300];
	cJSON *m = cJSON_CreateObject();
	char *meta;

	for (int i = 0; i < 32; i++)
		pin[i] = (uint8_t)(i * 7);
	/* published by a node listening on one address */
	assert_int_equal(relay_meta_add(m, "198.18.0.2:6443", pin), 0);
	meta = cJSON_PrintUnformatted(m);
	assert_int_equal(relay_member_endpoint(meta, "198.18.0.2:7946", addr, sizeof(addr), got),
			 0);
	assert_string_equal(addr, "198.18.0.2:6443");
	assert_memory_equal(got, pin, 32);
	free(meta);
	cJSON_Delete(m);

	/* a wildcard listener: the gossip address's host */
	m = cJSON_CreateObject();
	assert_int_equal(relay_meta_add(m, "0.0.0.0:6443", pin), 0);
	meta = cJSON_PrintUnformatted(m);
	assert_non_null(strstr(meta, "\"api\":\":6443\""));
	assert_int_equal(relay_member_endpoint(meta, "10.1.2.3:7946", addr, sizeof(addr), got), 0);
	assert_string_equal(addr, "10.1.2.3:6443");
	assert_int_equal(relay_member_endpoint(meta, "[fd00::5]:7946", addr, sizeof(addr), got), 0);
	assert_string_equal(addr, "[fd00::5]:6443");
	assert_int_equal(relay_member_endpoint(meta, "", addr, sizeof(addr), got), -EINVAL);
	free(meta);
	cJSON_Delete(m);

	/* nothing published (loopback API), or garbage */
	assert_int_equal(relay_member_endpoint("", "10.1.2.3:7946", addr, sizeof(addr), got),
			 -ENOENT);
	assert_int_equal(relay_member_endpoint("{\"podCIDR\":\"10.244.1.0/24\"}", "10.1.2.3:7946",
					       addr, sizeof(addr), got),
			 -ENOENT);
	assert_int_equal(relay_member_endpoint("[1]", "10.1.2.3:7946", addr, sizeof(addr), got),
			 -EINVAL);
	assert_int_equal(relay_member_endpoint("{\"api\":\"10.0.0.1:6443\"}", "10.1.2.3:7946", addr,
					       sizeof(addr), got),
			 -EINVAL); /* no pin: never talk to it unverified */
	assert_int_equal(relay_member_endpoint("{\"api\":\"10.0.0.1:6443\",\"apiPin\":\"AAAA\"}",
					       "10.1.2.3:7946", addr, sizeof(addr), got),
			 -EINVAL); /* a pin of the wrong size */
	assert_int_equal(relay_member_endpoint("{\"api\":\":x\",\"apiPin\":"
					       "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
					       "10.1.2.3:7946", addr, sizeof(addr), got),
			 -EINVAL);
}

static void test_paths(void **state)
{
	assert_true(api_relay_path_allowed("/api/v1/namespaces/default/pods/web/log"));
	assert_true(api_relay_path_allowed("/api/v1/namespaces/default/pods/web/exec"));
	assert_true(api_relay_path_allowed("/api/v1/namespaces/ns/pods/p/attach"));
	assert_true(api_relay_path_allowed("/api/v1/namespaces/ns/pods/p/portforward"));
	assert_false(api_relay_path_allowed("/api/v1/namespaces/default/pods/web"));
	assert_false(api_relay_path_allowed("/api/v1/namespaces/default/pods/web/status"));
	assert_false(api_relay_path_allowed("/api/v1/namespaces/default/pods/web/log/x"));
	assert_false(api_relay_path_allowed("/api/v1/namespaces/default/secrets/web/log"));
	assert_false(api_relay_path_allowed("/api/v1/namespaces//pods/web/log"));
	assert_false(api_relay_path_allowed("/api/v1/namespaces/default/pods//log"));
	assert_false(api_relay_path_allowed("/apis/shoal.io/v1/images"));
	assert_false(api_relay_path_allowed("/api/v1/pods"));
	assert_false(api_relay_path_allowed("/metrics"));
	assert_false(api_relay_path_allowed(""));
	assert_false(api_relay_path_allowed("/"));
}

static char *drain(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);

	evbuffer_remove(b, s, n);
	s[n] = 0;
	return s;
}

static void test_request_head(void **state)
{
	struct evkeyvalq h;
	struct evbuffer *b = evbuffer_new();
	char *s;

	TAILQ_INIT(&h);
	evhttp_add_header(&h, "Host", "198.18.0.1:6443");
	evhttp_add_header(&h, "Authorization", "Bearer user-secret");
	evhttp_add_header(&h, "User-Agent", "kubectl/v1.33.0");
	evhttp_add_header(&h, "Accept", "application/json");
	evhttp_add_header(&h, "Connection", "keep-alive");
	evhttp_add_header(&h, "Keep-Alive", "timeout=5");
	evhttp_add_header(&h, "Content-Length", "3");
	assert_int_equal(
	    api_relay_request_head(b, "GET", "/api/v1/namespaces/default/pods/web/log?follow=true",
				   &h, "198.18.0.2:6443", "shoal-node.MAC.n1", 0),
	    0);
	s = drain(b);
	assert_string_equal(s,
			    "GET /api/v1/namespaces/default/pods/web/log?follow=true HTTP/1.1\r\n"
			    "Host: 198.18.0.2:6443\r\n"
			    "User-Agent: kubectl/v1.33.0\r\n"
			    "Accept: application/json\r\n"
			    "Authorization: Bearer shoal-node.MAC.n1\r\n"
			    "Connection: close\r\n\r\n");
	free(s);
	evhttp_clear_headers(&h);

	/* an upgrade keeps its WebSocket headers and asks the target to upgrade */
	evhttp_add_header(&h, "Connection", "Upgrade");
	evhttp_add_header(&h, "Upgrade", "websocket");
	evhttp_add_header(&h, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
	evhttp_add_header(&h, "Sec-WebSocket-Protocol", "v5.channel.k8s.io");
	evhttp_add_header(&h, "Sec-WebSocket-Version", "13");
	assert_int_equal(api_relay_request_head(b, "POST",
						"/api/v1/namespaces/d/pods/w/exec?command=ls", &h,
						"h:1", "T", 5),
			 0);
	s = drain(b);
	assert_string_equal(s, "POST /api/v1/namespaces/d/pods/w/exec?command=ls HTTP/1.1\r\n"
			       "Host: h:1\r\n"
			       "Upgrade: websocket\r\n"
			       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			       "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
			       "Sec-WebSocket-Version: 13\r\n"
			       "Authorization: Bearer T\r\n"
			       "Content-Length: 5\r\n"
			       "Connection: Upgrade\r\n\r\n");
	free(s);
	evhttp_clear_headers(&h);

	/* nothing a client sends can split the head */
	assert_int_equal(api_relay_request_head(b, "GET", "/a b", &h, "h:1", "T", 0), -EINVAL);
	assert_int_equal(api_relay_request_head(b, "GET", "/a\r\nX: y", &h, "h:1", "T", 0),
			 -EINVAL);
	evbuffer_drain(b, evbuffer_get_length(b));
	evhttp_add_header(&h, "X-Evil", "a");
	TAILQ_FIRST(&h)->value[0] = '\n';
	assert_int_equal(api_relay_request_head(b, "GET", "/a", &h, "h:1", "T", 0), 0);
	s = drain(b);
	assert_null(strstr(s, "X-Evil"));
	free(s);
	evhttp_clear_headers(&h);
	evbuffer_free(b);
}

static void check_response(const char *in, const char *want)
{
	struct evbuffer *b = evbuffer_new();
	char *s;

	assert_int_equal(api_relay_response_head(in, strlen(in), b), 0);
	s = drain(b);
	assert_string_equal(s, want);
	free(s);
	evbuffer_free(b);
}

static void test_response_head(void **state)
{
	struct evbuffer *b = evbuffer_new();

	check_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
		       "Content-Type: text/plain\r\n\r\n",
		       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		       "Content-Type: text/plain\r\nConnection: close\r\n\r\n");
	check_response("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n",
		       "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
	check_response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		       "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
		       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		       "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n");
	assert_int_equal(api_relay_response_head("garbage\r\n\r\n", 11, b), -EBADMSG);
	assert_int_equal(api_relay_response_head("HTTP/1.1 200 OK\r\nX: y", 21, b), -EBADMSG);
	evbuffer_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cred),	  cmocka_unit_test(test_endpoint),
	    cmocka_unit_test(test_paths),	  cmocka_unit_test(test_request_head),
	    cmocka_unit_test(test_response_head),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
