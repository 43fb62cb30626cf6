// SPDX-License-Identifier: Apache-2.0
/*
 * Relaying pod I/O to the pod's node (see api/relay.h). The handler decides, from the pod's
 * spec.nodeName in this replica, that another node serves the request, opens a TLS connection to
 * that node's API (checking its certificate against the pin the node published in gossip),
 * takes the client's connection over from evhttp (like api/wsconn.c) and, once the target is
 * connected, writes the request there and copies bytes both ways until either side closes.
 * Nothing of the stream is parsed but the target's response head: a relayed non-upgrade
 * response ends the client connection, so its Connection header becomes `close`.
 *
 * A target that cannot be reached (gossip says dead or left, connection refused, no TLS
 * handshake within API_RELAY_CONNECT_MS, a certificate that is not the pinned one) gets the
 * client a 503 naming the node. An established stream whose target vanishes is cut by TCP
 * keepalive and TCP_USER_TIMEOUT within about 15 s.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "api/relay.h"
#include "api/server-internal.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#define RELAY_CONNECT_MS 3000	    /* TCP connect + TLS handshake */
#define RELAY_MAX_BACKLOG (1 << 20) /* pause a side while the other has this much unsent */
#define RELAY_MAX_RESPONSE_HEAD (64 << 10)

struct api_relay {
	struct api_relay *next, *prev;
	struct api_server *srv;
	struct evhttp_connection *evcon; /* the client's, taken over; NULL once gone */
	struct bufferevent *cli;	 /* its bufferevent (evcon owns it) */
	struct bufferevent *up;		 /* TLS to the target */
	struct event *timer;		 /* connect deadline */
	struct evbuffer *req;		 /* request head + body, sent once connected */
	uint8_t pin[API_RELAY_PIN_BYTES];
	bool connected, head_done, closing;
	uint64_t start_us;
	char node[256], addr[300], desc[300];
	char pod[300]; /* ns/name, for messages */
};

/* ---------- pure parts ---------- */

bool api_relay_path_allowed(const char *path)
{
	static const char *const subs[] = {"log", "exec", "attach", "portforward"};
	const char *p = path, *seg[7];
	size_t n = 0;

	/* /api/v1/namespaces/NS/pods/NAME/SUB */
	if (*p++ != '/')
		return false;
	while (n < 7) {
		const char *slash = strchr(p, '/');

		seg[n++] = p;
		if (!slash)
			break;
		p = slash + 1;
	}
	if (n != 7 || strchr(seg[6], '/'))
		return false;
	if (strncmp(seg[0], "api/", 4) || strncmp(seg[1], "v1/", 3) ||
	    strncmp(seg[2], "namespaces/", 11) || seg[4] - seg[3] < 2 ||
	    strncmp(seg[4], "pods/", 5) || seg[6] - seg[5] < 2)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		if (streq(seg[6], subs[i]))
			return true;
	return false;
}

static bool header_drop(const char *key)
{
	static const char *const hop[] = {
	    "Connection",	   "Keep-Alive", "Proxy-Connection",
	    "Proxy-Authorization", "TE",	 "Trailer",
	    "Transfer-Encoding",   "Host",	 "Authorization",
	    "Content-Length",	   "Expect",
	};

	for (size_t i = 0; i < ARRAY_SIZE(hop); i++)
		if (!strcasecmp(key, hop[i]))
			return true;
	return false;
}

/* header values come from the client: a CR or LF would split the request we write */
static bool header_clean(const char *s)
{
	return !strpbrk(s, "\r\n");
}

int api_relay_request_head(struct evbuffer *out, const char *method, const char *uri,
			   const struct evkeyvalq *headers, const char *host, const char *token,
			   size_t body_len)
{
	const struct evkeyval *kv;
	bool upgrade = false;

	if (!header_clean(uri) || strchr(uri, ' ') || !header_clean(token))
		return -EINVAL;
	if (evbuffer_add_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, uri, host) < 0)
		return -ENOMEM;
	TAILQ_FOREACH(kv, headers, next)
	{
		if (!strcasecmp(kv->key, "Upgrade"))
			upgrade = true;
		if (header_drop(kv->key) || !header_clean(kv->key) || !header_clean(kv->value))
			continue;
		if (evbuffer_add_printf(out, "%s: %s\r\n", kv->key, kv->value) < 0)
			return -ENOMEM;
	}
	if (evbuffer_add_printf(out, "Authorization: Bearer %s\r\n", token) < 0 ||
	    (body_len && evbuffer_add_printf(out, "Content-Length: %zu\r\n", body_len) < 0) ||
	    evbuffer_add_printf(out, "Connection: %s\r\n\r\n", upgrade ? "Upgrade" : "close") < 0)
		return -ENOMEM;
	return 0;
}

int api_relay_response_head(const char *head, size_t len, struct evbuffer *out)
{
	const char *p = head, *end = head + len, *eol;
	bool upgrade;

	/* "HTTP/1.x NNN ..." */
	if (len < 12 || strncmp(head, "HTTP/1.", 7) || head[8] != ' ')
		return -EBADMSG;
	upgrade = !strncmp(head + 9, "101", 3);
	eol = memmem(p, end - p, "\r\n", 2);
	if (!eol)
		return -EBADMSG;
	evbuffer_add(out, p, eol + 2 - p);
	p = eol + 2;
	while (p < end) {
		eol = memmem(p, end - p, "\r\n", 2);
		if (!eol)
			return -EBADMSG;
		if (eol == p) /* the blank line */
			break;
		if (!upgrade && (size_t)(eol - p) >= 11 && !strncasecmp(p, "Connection:", 11)) {
			p = eol + 2;
			continue;
		}
		evbuffer_add(out, p, eol + 2 - p);
		p = eol + 2;
	}
	if (p >= end)
		return -EBADMSG;
	if (!upgrade)
		evbuffer_add_printf(out, "Connection: close\r\n");
	evbuffer_add(out, "\r\n", 2);
	return 0;
}

/* ---------- the relay ---------- */

static void relay_unlink(struct api_relay *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else if (x->srv->relays == x)
		x->srv->relays = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->next = x->prev = NULL;
}

static void relay_free(struct api_relay *x)
{
	relay_unlink(x);
	if (x->timer)
		event_free(x->timer);
	if (x->up)
		bufferevent_free(x->up); /* closes the socket, frees the SSL */
	if (x->req)
		evbuffer_free(x->req);
	if (x->evcon) {
		evhttp_connection_set_closecb(x->evcon, NULL, NULL);
		evhttp_connection_free(x->evcon);
	}
	free(x);
}

/* Close the client once what it has been sent is out. */
static void relay_finish(struct api_relay *x)
{
	x->closing = true;
	if (x->up) {
		bufferevent_free(x->up);
		x->up = NULL;
	}
	if (!x->cli || evbuffer_get_length(bufferevent_get_output(x->cli)) == 0)
		relay_free(x);
	else
		bufferevent_disable(x->cli, EV_READ);
}

/* The target could not be reached or answered nothing: a Status in place of its response. */
static void relay_fail(struct api_relay *x, const char *fmt, ...) _printf_(2, 3);
static void relay_fail(struct api_relay *x, const char *fmt, ...)
{
	_cleanup_json_ cJSON *st = NULL;
	_cleanup_free_ char *body = NULL;
	char msg[1024];
	va_list ap;
	int n = snprintf(msg, sizeof(msg), "cannot reach pod %s: ", x->pod);

	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	va_end(ap);
	log_warn("api: relay %s: %s", x->desc, msg);
	if (!x->connected)
		x->srv->relay_unreachable++;
	if (x->head_done || !x->cli) {
		relay_finish(x);
		return;
	}
	x->head_done = true;
	st = api_status_new(503, "ServiceUnavailable", msg, NULL, NULL, NULL);
	body = st ? cJSON_PrintUnformatted(st) : NULL;
	if (body)
		evbuffer_add_printf(bufferevent_get_output(x->cli),
				    "HTTP/1.1 503 Service Unavailable\r\n"
				    "Content-Type: application/json\r\n"
				    "Cache-Control: no-cache, private\r\n"
				    "Content-Length: %zu\r\n"
				    "Connection: close\r\n\r\n%s",
				    strlen(body), body);
	relay_finish(x);
}

static void up_pause_if_behind(struct api_relay *x)
{
	if (x->cli && evbuffer_get_length(bufferevent_get_output(x->cli)) > RELAY_MAX_BACKLOG)
		bufferevent_disable(x->up, EV_READ);
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
	struct api_relay *x = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (!x->cli)
		return;
	if (!x->head_done) {
		struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		size_t len;

		if (end.pos < 0) {
			if (evbuffer_get_length(in) > RELAY_MAX_RESPONSE_HEAD)
				relay_fail(x, "node %s sent a response head over %d bytes", x->node,
					   RELAY_MAX_RESPONSE_HEAD);
			return;
		}
		len = (size_t)end.pos + 4;
		if (api_relay_response_head((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len,
					    bufferevent_get_output(x->cli)) < 0) {
			relay_fail(x, "node %s sent a malformed response", x->node);
			return;
		}
		evbuffer_drain(in, len);
		x->head_done = true;
		log_debug("api: relay %s: answered in %llu us", x->desc,
			  (unsigned long long)(util_mono_us() - x->start_us));
	}
	evbuffer_add_buffer(bufferevent_get_output(x->cli), in);
	up_pause_if_behind(x);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
	struct api_relay *x = arg;

	/* the target caught up: read the client again */
	if (x->cli && !x->closing)
		bufferevent_enable(x->cli, EV_READ);
}

static bool pin_ok(struct api_relay *x)
{
	SSL *ssl = bufferevent_openssl_get_ssl(x->up);
	X509 *peer = ssl ? SSL_get_peer_certificate(ssl) : NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bool ok;

	if (!peer)
		return false;
	ok = X509_digest(peer, EVP_sha256(), md, &mdlen) == 1 && mdlen == sizeof(x->pin) &&
	     CRYPTO_memcmp(md, x->pin, sizeof(x->pin)) == 0;
	X509_free(peer);
	return ok;
}

static void keepalive(struct bufferevent *bev)
{
	int fd = (int)bufferevent_getfd(bev), on = 1, idle = 5, intvl = 2, cnt = 3;
	unsigned int user_ms = 15000;

	/* a target that vanishes mid-stream (killed host, partition) must not hold the client */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct api_relay *x = arg;

	if (what & BEV_EVENT_CONNECTED) {
		if (!pin_ok(x)) {
			relay_fail(x,
				   "node %s (%s) presented a TLS certificate other than the one "
				   "it published in gossip",
				   x->node, x->addr);
			return;
		}
		x->connected = true;
		x->srv->relay_connected++;
		x->srv->relay_connect_us += util_mono_us() - x->start_us;
		evtimer_del(x->timer);
		keepalive(bev);
		bufferevent_write_buffer(x->up, x->req);
		bufferevent_enable(x->up, EV_READ | EV_WRITE);
		if (x->cli) {
			/* what the client sent behind its request (none for HTTP/1.1 without
			 * pipelining, frames for an eager WebSocket client) */
			bufferevent_write_buffer(x->up, bufferevent_get_input(x->cli));
			bufferevent_enable(x->cli, EV_READ);
		}
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
		return;
	if (!x->connected) {
		unsigned long ssl_err = bufferevent_get_openssl_error(bev);
		int sock_err = EVUTIL_SOCKET_ERROR();
		char buf[256];

		if (ssl_err)
			ERR_error_string_n(ssl_err, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "%s",
				 sock_err ? strerror(sock_err) : "connection closed");
		relay_fail(x, "node %s is unreachable: cannot connect to its API at %s: %s",
			   x->node, x->addr, buf);
		return;
	}
	/* the target is done (or broke): drain to the client and close */
	if (x->up)
		up_read_cb(x->up, x);
	if (!x->head_done) {
		relay_fail(x, "node %s (%s) closed the connection without answering", x->node,
			   x->addr);
		return;
	}
	relay_finish(x);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct api_relay *x = arg;

	relay_fail(x, "node %s is unreachable: its API at %s did not answer within %d ms", x->node,
		   x->addr, RELAY_CONNECT_MS);
}

static void cli_read_cb(struct bufferevent *bev, void *arg)
{
	struct api_relay *x = arg;

	if (!x->connected || !x->up)
		return;
	bufferevent_write_buffer(x->up, bufferevent_get_input(bev));
	if (evbuffer_get_length(bufferevent_get_output(x->up)) > RELAY_MAX_BACKLOG)
		bufferevent_disable(bev, EV_READ);
}

static void cli_write_cb(struct bufferevent *bev, void *arg)
{
	struct api_relay *x = arg;

	if (x->closing) {
		relay_free(x);
		return;
	}
	if (x->up && x->connected)
		bufferevent_enable(x->up, EV_READ);
}

static void cli_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct api_relay *x = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		log_debug("api: relay %s: the client closed the connection", x->desc);
		relay_free(x);
	}
}

static void on_evcon_close(struct evhttp_connection *evcon, void *arg)
{
	struct api_relay *x = arg;

	/* evhttp is freeing the connection (server shutdown) */
	x->evcon = NULL;
	x->cli = NULL;
	relay_free(x);
}

static SSL_CTX *client_ctx(struct api_server *srv)
{
	if (!srv->relay_ssl_ctx) {
		srv->relay_ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (!srv->relay_ssl_ctx)
			return NULL;
		SSL_CTX_set_min_proto_version(srv->relay_ssl_ctx, TLS1_2_VERSION);
		/* no CA to check against: every node has its own; the pin is checked instead */
		SSL_CTX_set_verify(srv->relay_ssl_ctx, SSL_VERIFY_NONE, NULL);
	}
	return srv->relay_ssl_ctx;
}

/* The node serving a pod I/O request, if it is another node: NULL when this node serves it. */
static char *relay_node_of(struct api_req *r)
{
	struct store_obj *o = NULL;
	_cleanup_json_ cJSON *pod = NULL;
	const char *node;

	if (!r->srv->has_relay || r->node_identity)
		return NULL;
	if (store_get(r->srv->store, "pods", r->ns, r->name, &o) < 0)
		return NULL; /* the local handler answers 404 */
	pod = store_obj_parse(o);
	store_obj_unref(o);
	node = pod ? json_str(pod, "spec.nodeName", "") : "";
	if (!*node || streq(node, r->srv->node_name))
		return NULL;
	return strdup(node);
}

bool api_relay_maybe(struct api_req *r)
{
	_cleanup_free_ char *node = relay_node_of(r);
	struct api_relay_target t = {0};
	struct evbuffer *body = evhttp_request_get_input_buffer(r->req);
	struct sockaddr_storage ss;
	int sslen = sizeof(ss), rc;
	struct err e = {0};
	struct api_relay *x;
	SSL_CTX *ctx;
	SSL *ssl;

	if (!node)
		return false;
	rc = r->srv->relay.resolve(r->srv->relay.ud, node, &t, &e);
	if (rc < 0) {
		r->srv->relay_unreachable++;
		api_reply_status(r, e.code ?: 503, e.reason[0] ? e.reason : "ServiceUnavailable",
				 NULL, NULL, "cannot reach pod %s/%s: %s", r->ns, r->name,
				 e.message);
		return true;
	}
	if (evutil_parse_sockaddr_port(t.addr, (struct sockaddr *)&ss, &sslen) < 0) {
		api_reply_status(r, 503, "ServiceUnavailable", NULL, NULL,
				 "cannot reach pod %s/%s: node %s published an API address that is "
				 "no IP:port (%s)",
				 r->ns, r->name, node, t.addr);
		return true;
	}
	x = calloc(1, sizeof(*x));
	ctx = client_ctx(r->srv);
	if (!x || !ctx)
		goto oom;
	x->srv = r->srv;
	x->start_us = util_mono_us();
	memcpy(x->pin, t.pin, sizeof(x->pin));
	snprintf(x->node, sizeof(x->node), "%s", node);
	snprintf(x->addr, sizeof(x->addr), "%s", t.addr);
	snprintf(x->pod, sizeof(x->pod), "%s/%s", r->ns, r->name);
	snprintf(x->desc, sizeof(x->desc), "%s %s/%s/%s -> %s", r->method_name, r->ns, r->name,
		 r->sub, node);
	x->req = evbuffer_new();
	x->timer = evtimer_new(r->srv->base, on_timeout, x);
	if (!x->req || !x->timer)
		goto oom;
	if (api_relay_request_head(x->req, r->method_name, evhttp_request_get_uri(r->req),
				   evhttp_request_get_input_headers(r->req), t.addr, t.token,
				   evbuffer_get_length(body)) < 0) {
		relay_free(x);
		api_reply_status(r, 400, "BadRequest", NULL, NULL, "malformed request head");
		return true;
	}
	evbuffer_add_buffer(x->req, body);
	ssl = SSL_new(ctx);
	if (!ssl)
		goto oom;
	x->up = bufferevent_openssl_socket_new(r->srv->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
					       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!x->up) {
		SSL_free(ssl);
		goto oom;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(x->up, 1);
	bufferevent_setcb(x->up, up_read_cb, up_write_cb, up_event_cb, x);
	if (bufferevent_socket_connect(x->up, (struct sockaddr *)&ss, sslen) < 0) {
		int err = EVUTIL_SOCKET_ERROR();

		r->srv->relay_unreachable++;
		relay_free(x);
		api_reply_status(
		    r, 503, "ServiceUnavailable", NULL, NULL,
		    "cannot reach pod %s/%s: node %s is unreachable: cannot connect to "
		    "its API at %s: %s",
		    r->ns, r->name, node, t.addr, strerror(err ?: EHOSTUNREACH));
		return true;
	}
	struct timeval tv = {RELAY_CONNECT_MS / 1000, (RELAY_CONNECT_MS % 1000) * 1000};
	evtimer_add(x->timer, &tv);

	/* take the client's connection over from evhttp: from now on the bytes are ours */
	x->evcon = evhttp_request_get_connection(r->req);
	x->cli = evhttp_connection_get_bufferevent(x->evcon);
	evhttp_connection_set_closecb(x->evcon, on_evcon_close, x);
	bufferevent_setcb(x->cli, cli_read_cb, cli_write_cb, cli_event_cb, x);
	bufferevent_set_timeouts(x->cli, NULL, NULL);
	bufferevent_disable(x->cli, EV_READ); /* until the target is connected */
	bufferevent_enable(x->cli, EV_WRITE);
	x->next = r->srv->relays;
	if (x->next)
		x->next->prev = x;
	r->srv->relays = x;
	r->code = 0;
	log_info("api: relay %s (%s)", x->desc, t.addr);
	return true;
oom:
	if (x)
		relay_free(x);
	api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
	return true;
}

int api_server_set_relay(struct api_server *srv, const struct api_relay_ops *ops)
{
	if (ops) {
		srv->relay = *ops;
		srv->has_relay = true;
	} else {
		memset(&srv->relay, 0, sizeof(srv->relay));
		srv->has_relay = false;
	}
	return 0;
}

int api_server_relay_endpoint(struct api_server *srv, char *listen, size_t len,
			      uint8_t pin[API_RELAY_PIN_BYTES])
{
	X509 *crt = srv->ssl_ctx ? SSL_CTX_get0_certificate(srv->ssl_ctx) : NULL;
	unsigned int mdlen = 0;
	uint8_t md[EVP_MAX_MD_SIZE];

	if (!crt || !srv->tcp_listen || !srv->tcp.tls)
		return -ENOENT;
	if (X509_digest(crt, EVP_sha256(), md, &mdlen) != 1 || mdlen != API_RELAY_PIN_BYTES)
		return -EIO;
	memcpy(pin, md, API_RELAY_PIN_BYTES);
	if ((size_t)snprintf(listen, len, "%s", srv->tcp_listen) >= len)
		return -ENOSPC;
	return 0;
}

/* A bearer token that is a node credential: its node into r->node_user. */
const char *api_auth_node(struct api_server *srv, struct evhttp_request *req, char *buf, size_t len)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	char node[256];

	if (!srv->has_relay || !h || strncasecmp(h, "Bearer ", 7))
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	if (srv->relay.authenticate(srv->relay.ud, h, node, sizeof(node)) < 0)
		return NULL;
	snprintf(buf, len, "system:node:%s", node);
	return buf;
}

void api_relay_free_all(struct api_server *srv)
{
	while (srv->relays)
		relay_free(srv->relays);
	if (srv->relay_ssl_ctx) {
		SSL_CTX_free(srv->relay_ssl_ctx);
		srv->relay_ssl_ctx = NULL;
	}
}

void api_relay_metrics(struct api_server *srv, struct evbuffer *out)
{
	size_t open = 0;

	if (!srv->has_relay)
		return;
	for (struct api_relay *x = srv->relays; x; x = x->next)
		open++;
	evbuffer_add_printf(
	    out,
	    "# HELP shoal_relay_requests_total Pod I/O requests for pods on other nodes, by "
	    "outcome: relayed (connected to the pod's node) or unreachable (answered 503).\n"
	    "# TYPE shoal_relay_requests_total counter\n"
	    "shoal_relay_requests_total{outcome=\"relayed\"} %llu\n"
	    "shoal_relay_requests_total{outcome=\"unreachable\"} %llu\n"
	    "# HELP shoal_relay_connect_seconds Connect and TLS handshake to the pod's node.\n"
	    "# TYPE shoal_relay_connect_seconds summary\n"
	    "shoal_relay_connect_seconds_sum %.6f\n"
	    "shoal_relay_connect_seconds_count %llu\n"
	    "# HELP shoal_relay_streams Relayed requests open now.\n"
	    "# TYPE shoal_relay_streams gauge\nshoal_relay_streams %zu\n"
	    "# HELP shoal_relay_served_total Requests other nodes relayed here (node credential).\n"
	    "# TYPE shoal_relay_served_total counter\nshoal_relay_served_total %llu\n",
	    (unsigned long long)srv->relay_connected, (unsigned long long)srv->relay_unreachable,
	    (double)srv->relay_connect_us / 1e6, (unsigned long long)srv->relay_connected, open,
	    (unsigned long long)srv->relay_served);
}
