// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP plumbing: listeners (TCP plain on loopback, TLS + tokens elsewhere; a root-only unix
 * socket), request parsing, authentication, dispatch and the Status replies every handler
 * uses. Each request is served to completion on the event loop except watches (watch.c).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>

#include "api/server-internal.h"
#include "api/svcalloc.h"
#include "lib/log.h"
#include "lib/util.h"

#define API_MAX_HEADERS_SIZE (64 * 1024)
#define API_IDLE_TIMEOUT_S 300
#define API_DEFAULT_MAX_BODY (3 << 20)
#define API_WATCH_MAX_BUFFER (16u << 20)
#define API_BOOKMARK_MS 60000

/* ---------- replies ---------- */

static void api_log_request(struct api_req *r)
{
	uint64_t us = util_mono_us() - r->start_us;

	if (r->code >= 500)
		log_warn("api %s %s -> %d (%llu us)", r->method_name, r->path ? r->path : "?",
			 r->code, (unsigned long long)us);
	else
		log_debug("api %s %s user=%s -> %d (%llu us)", r->method_name,
			  r->path ? r->path : "?", r->user ? r->user : "-", r->code,
			  (unsigned long long)us);
}

static void api_set_headers(struct api_req *r, const char *ctype)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

	evhttp_add_header(h, "Content-Type", ctype ? ctype : "application/json");
	evhttp_add_header(h, "Cache-Control", "no-cache, private");
}

void api_reply_buf(struct api_req *r, int code, struct evbuffer *buf)
{
	r->code = code;
	api_set_headers(r, NULL);
	evhttp_send_reply(r->req, code, NULL, buf);
}

void api_reply_raw(struct api_req *r, int code, const char *ctype, const char *body, size_t len)
{
	struct evbuffer *buf = evhttp_request_get_output_buffer(r->req);

	r->code = code;
	api_set_headers(r, ctype);
	evbuffer_add(buf, body, len);
	evhttp_send_reply(r->req, code, NULL, NULL);
}

void api_reply_json(struct api_req *r, int code, const cJSON *obj)
{
	_cleanup_free_ char *s = cJSON_PrintUnformatted(obj);

	if (!s) {
		static const char oom[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
					  "\"status\":\"Failure\",\"message\":\"out of memory\","
					  "\"reason\":\"InternalError\",\"code\":500}";
		api_reply_raw(r, 500, NULL, oom, sizeof(oom) - 1);
		return;
	}
	api_reply_raw(r, code, NULL, s, strlen(s));
}

static void obj_unref_cb(const void *data, size_t len, void *arg)
{
	store_obj_unref(arg);
}

void api_reply_obj(struct api_req *r, int code, struct store_obj *o)
{
	struct evbuffer *buf = evhttp_request_get_output_buffer(r->req);

	/* the stored text goes out as is: no parse, no copy */
	evbuffer_add_reference(buf, o->json, o->json_len, obj_unref_cb, store_obj_ref(o));
	r->code = code;
	api_set_headers(r, NULL);
	evhttp_send_reply(r->req, code, NULL, NULL);
}

static const char *reason_for_code(int code)
{
	switch (code) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 406: return "NotAcceptable";
	case 409: return "Conflict";
	case 410: return "Expired";
	case 413: return "RequestEntityTooLarge";
	case 415: return "UnsupportedMediaType";
	case 422: return "Invalid";
	case 429: return "TooManyRequests";
	case 503: return "ServiceUnavailable";
	default: return "InternalError";
	}
}

cJSON *api_status_new(int code, const char *reason, const char *message, const char *kind,
		      const char *name, const struct err *e)
{
	cJSON *st = cJSON_CreateObject(), *det, *causes;

	cJSON_AddStringToObject(st, "kind", "Status");
	cJSON_AddStringToObject(st, "apiVersion", "v1");
	cJSON_AddObjectToObject(st, "metadata");
	cJSON_AddStringToObject(st, "status", code < 400 ? "Success" : "Failure");
	cJSON_AddStringToObject(st, "message", message ? message : "");
	cJSON_AddStringToObject(st, "reason", strempty(reason) ? reason_for_code(code) : reason);
	if (kind || name || (e && e->ncauses)) {
		det = cJSON_AddObjectToObject(st, "details");
		if (name)
			cJSON_AddStringToObject(det, "name", name);
		if (kind)
			cJSON_AddStringToObject(det, "kind", kind);
		if (e && e->ncauses) {
			causes = cJSON_AddArrayToObject(det, "causes");
			for (int i = 0; i < e->ncauses; i++) {
				cJSON *c = cJSON_CreateObject();
				cJSON_AddStringToObject(c, "reason", e->causes[i].type);
				cJSON_AddStringToObject(c, "message", e->causes[i].message);
				cJSON_AddStringToObject(c, "field", e->causes[i].field);
				cJSON_AddItemToArray(causes, c);
			}
		}
	}
	cJSON_AddNumberToObject(st, "code", code);
	return st;
}

void api_reply_status(struct api_req *r, int code, const char *reason, const char *kind,
		      const char *name, const char *fmt, ...)
{
	_cleanup_json_ cJSON *st = NULL;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st = api_status_new(code, reason, msg, kind, name, NULL);
	api_reply_json(r, code, st);
}

static int code_from_errno(int errnum)
{
	switch (-abs(errnum)) {
	case -ENOENT: return 404;
	case -EEXIST: case -ECANCELED: return 409;
	case -ENODATA: return 410;
	case -EINVAL: return 422;
	case -EBADMSG: return 400;
	case -EFBIG: case -E2BIG: return 413;
	case -EPERM: case -EACCES: return 403;
	case -EOPNOTSUPP: return 405;
	default: return 500;
	}
}

void api_reply_err(struct api_req *r, int errnum, const struct err *e)
{
	_cleanup_json_ cJSON *st = NULL;
	int code = e && e->code ? e->code : code_from_errno(errnum);
	const char *msg = e && e->message[0] ? e->message : strerror(abs(errnum));
	const char *kind = NULL, *name = r->name;
	char buf[1024];

	if (r->res)
		kind = code == 422 ? r->res->kind : r->res->plural;
	if (code == 422 && e && e->ncauses) {
		/* Kubernetes' message: Kind "name" is invalid: field: msg, field: msg */
		size_t o = 0;
		o += snprintf(buf + o, sizeof(buf) - o, "%s \"%s\" is invalid: ",
			      kind ? kind : "object", name ? name : "");
		for (int i = 0; i < e->ncauses && o < sizeof(buf); i++)
			o += snprintf(buf + o, sizeof(buf) - o, "%s%s%s%s", i ? ", " : "",
				      e->causes[i].field, e->causes[i].field[0] ? ": " : "",
				      e->causes[i].message);
		msg = buf;
	}
	if (code >= 500)
		log_warn("api %s %s: %s", r->method_name, r->path, msg);
	st = api_status_new(code, e ? e->reason : NULL, msg, kind, name, e);
	api_reply_json(r, code, st);
}

int api_err_from_store(int r, const struct api_resource *res, const char *name, struct err *e)
{
	const char *plural = res ? res->plural : "objects";
	char gr[96];

	if (!e || e->code)
		return r;
	if (res && res->group[0])
		snprintf(gr, sizeof(gr), "%s.%s", res->plural, res->group);
	else
		snprintf(gr, sizeof(gr), "%s", plural);
	switch (r) {
	case -ENOENT:
		return err_set(e, -r, 404, "NotFound", "%s \"%s\" not found", gr, name ? name : "");
	case -EEXIST:
		return err_set(e, -r, 409, "AlreadyExists", "%s \"%s\" already exists", gr,
			       name ? name : "");
	case -ECANCELED:
		return err_set(e, -r, 409, "Conflict",
			       "Operation cannot be fulfilled on %s \"%s\": the object has been "
			       "modified; please apply your changes to the latest version and try "
			       "again", gr, name ? name : "");
	case -ENODATA:
		return err_set(e, -r, 410, "Expired", "too old resource version");
	default:
		return r;
	}
}

/* ---------- query strings ---------- */

const char *api_query(struct api_req *r, const char *key)
{
	return evhttp_find_header(&r->query, key);
}

bool api_query_bool(struct api_req *r, const char *key)
{
	const char *v = api_query(r, key);

	return v && (streq(v, "true") || streq(v, "1") || streq(v, "True"));
}

/* Our own parser: selectors come form-encoded ('+' is a space), which evhttp_parse_query_str
 * does not decode. */
static int query_parse(const char *q, struct evkeyvalq *out)
{
	TAILQ_INIT(out);
	if (!q)
		return 0;
	while (*q) {
		const char *amp = strchrnul(q, '&');
		const char *eq = memchr(q, '=', amp - q);
		_cleanup_free_ char *k = NULL, *v = NULL, *kd = NULL, *vd = NULL;

		if (amp > q) {
			k = strndup(q, (eq ? eq : amp) - q);
			v = eq ? strndup(eq + 1, amp - eq - 1) : strdup("");
			if (!k || !v)
				return -ENOMEM;
			size_t kn, vn;
			kd = evhttp_uridecode(k, 1, &kn);
			vd = evhttp_uridecode(v, 1, &vn);
			if (!kd || !vd)
				return -ENOMEM;
			/* an encoded NUL would cut the value short unnoticed */
			if (strlen(kd) != kn || strlen(vd) != vn)
				return -EINVAL;
			evhttp_add_header(out, kd, vd);
		}
		q = *amp ? amp + 1 : amp;
	}
	return 0;
}

/* ---------- dispatch ---------- */

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default: return "OTHER";
	}
}

static bool path_is_health(const char *p)
{
	static const char *const h[] = { "/healthz", "/readyz", "/livez" };

	for (size_t i = 0; i < ARRAY_SIZE(h); i++) {
		size_t n = strlen(h[i]);
		if (!strncmp(p, h[i], n) && (p[n] == 0 || p[n] == '/'))
			return true;
	}
	return false;
}

int api_server_add_metrics(struct api_server *srv, api_metrics_fn fn, void *userdata)
{
	if (srv->nmetrics == ARRAY_SIZE(srv->metrics))
		return -ENOSPC;
	srv->metrics[srv->nmetrics].fn = fn;
	srv->metrics[srv->nmetrics++].ud = userdata;
	return 0;
}

static void metrics_handle(struct api_req *r)
{
	struct evbuffer *out = evbuffer_new();
	struct store_stats st;

	if (!out) {
		api_reply_err(r, -ENOMEM, NULL);
		return;
	}
	store_stats_get(r->srv->store, &st);
	evbuffer_add_printf(out,
			    "# HELP shoal_store_objects Live objects in the local replica.\n"
			    "# TYPE shoal_store_objects gauge\nshoal_store_objects %zu\n"
			    "# HELP shoal_store_tombstones Deleted objects kept as tombstones.\n"
			    "# TYPE shoal_store_tombstones gauge\nshoal_store_tombstones %zu\n"
			    "# HELP shoal_store_commits_total Commits since the daemon started.\n"
			    "# TYPE shoal_store_commits_total counter\nshoal_store_commits_total %llu\n"
			    "# HELP shoal_store_resource_version The replica's commit sequence.\n"
			    "# TYPE shoal_store_resource_version gauge\n"
			    "shoal_store_resource_version %llu\n"
			    "# HELP shoal_store_watchers Open store watches.\n"
			    "# TYPE shoal_store_watchers gauge\nshoal_store_watchers %zu\n"
			    "# HELP shoal_store_merged_total Registers from other nodes applied.\n"
			    "# TYPE shoal_store_merged_total counter\nshoal_store_merged_total %llu\n"
			    "# HELP shoal_store_merge_stale_total Registers from other nodes not newer "
			    "than ours (nothing committed).\n"
			    "# TYPE shoal_store_merge_stale_total counter\n"
			    "shoal_store_merge_stale_total %llu\n"
			    "# HELP shoal_store_clock_refused_total Registers refused: the writer's clock "
			    "was too far ahead of ours.\n"
			    "# TYPE shoal_store_clock_refused_total counter\n"
			    "shoal_store_clock_refused_total %llu\n",
			    st.objects, st.tombstones, (unsigned long long)st.commits,
			    (unsigned long long)store_rv(r->srv->store), st.watchers,
			    (unsigned long long)st.merged, (unsigned long long)st.merge_stale,
			    (unsigned long long)st.clock_refused);
	api_relay_metrics(r->srv, out);
	for (size_t i = 0; i < r->srv->nmetrics; i++) {
		_cleanup_free_ char *text = NULL;
		size_t n;
		if (r->srv->metrics[i].fn(r->srv->metrics[i].ud, &text) < 0 || !text)
			continue;
		n = strlen(text);
		evbuffer_add(out, text, n);
		if (n && text[n - 1] != '\n') /* the exposition format ends every line */
			evbuffer_add(out, "\n", 1);
	}
	size_t len = evbuffer_get_length(out);
	api_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8",
		      (const char *)evbuffer_pullup(out, -1), len);
	evbuffer_free(out);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct api_listener *l = arg;
	struct api_req r = {
		.srv = l->srv,
		.req = req,
		.method = evhttp_request_get_command(req),
		.start_us = util_mono_us(),
	};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw_path = uri ? evhttp_uri_get_path(uri) : NULL;
	int rq;

	r.method_name = method_name(r.method);
	TAILQ_INIT(&r.query);
	if (!raw_path || raw_path[0] != '/') {
		api_reply_status(&r, 400, "BadRequest", NULL, NULL, "malformed request URI");
		goto out;
	}
	size_t path_len;
	r.path = evhttp_uridecode(raw_path, 0, &path_len);
	if (!r.path) {
		api_reply_status(&r, 500, "InternalError", NULL, NULL, "out of memory");
		goto out;
	}
	/* "%00" would end the path early: /api/v1/namespaces/%00/pods listed namespaces */
	if (strlen(r.path) != path_len) {
		api_reply_status(&r, 400, "BadRequest", NULL, NULL,
				 "the request path contains an encoded NUL");
		goto out;
	}
	rq = query_parse(evhttp_uri_get_query(uri), &r.query);
	if (rq == -EINVAL) {
		api_reply_status(&r, 400, "BadRequest", NULL, NULL,
				 "the query string contains an encoded NUL");
		goto out;
	} else if (rq < 0) {
		api_reply_status(&r, 500, "InternalError", NULL, NULL, "out of memory");
		goto out;
	}
	if (l->auth) {
		r.user = api_auth_user(l->srv, req);
		if (!r.user) {
			r.user = api_auth_node(l->srv, req, r.node_user, sizeof(r.node_user));
			r.node_identity = r.user != NULL;
		}
		if (!r.user) {
			api_reply_status(&r, 401, "Unauthorized", NULL, NULL, "Unauthorized");
			goto out;
		}
		if (r.node_identity)
			l->srv->relay_served++;
		/* another node relaying pod I/O: that, and nothing else */
		if (r.node_identity && !api_relay_path_allowed(r.path)) {
			api_reply_status(&r, 403, "Forbidden", NULL, NULL,
					 "%s may only relay pod log, exec, attach and portforward "
					 "requests",
					 r.user);
			goto out;
		}
	} else
		r.user = l->tls ? NULL : "local";

	if (path_is_health(r.path)) {
		if (r.method != EVHTTP_REQ_GET && r.method != EVHTTP_REQ_HEAD)
			api_reply_status(&r, 405, "MethodNotAllowed", NULL, NULL,
					 "the server does not allow this method on the requested "
					 "resource");
		else
			api_reply_raw(&r, 200, "text/plain; charset=utf-8", "ok", 2);
		goto out;
	}
	if (streq(r.path, "/metrics")) {
		if (r.method != EVHTTP_REQ_GET && r.method != EVHTTP_REQ_HEAD)
			api_reply_status(&r, 405, "MethodNotAllowed", NULL, NULL,
					 "the server does not allow this method on the requested "
					 "resource");
		else
			metrics_handle(&r);
		goto out;
	}
	if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > l->srv->max_body &&
	    !(api_images_match(r.path) && r.method == EVHTTP_REQ_POST)) {
		/* the listener's limit is the image upload limit (podio.c): others keep theirs */
		api_reply_status(&r, 413, "RequestEntityTooLarge", NULL, NULL,
				 "the request body is larger than %zu bytes", l->srv->max_body);
		goto out;
	}
	if (api_images_match(r.path))
		api_images_handle(&r);
	else if (api_registers_match(r.path))
		api_registers_handle(&r);
	else if (api_gossip_match(r.path))
		api_gossip_handle(&r);
	else if (api_discovery_match(r.path))
		api_discovery_handle(&r);
	else
		api_rest_handle(&r);
out:
	api_log_request(&r);
	evhttp_clear_headers(&r.query);
	free(r.path);
	free(r.ns);
	free(r.name);
	free(r.sub);
}

/* ---------- listeners ---------- */

static void on_listen_retry(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

static void on_accept_error(struct evconnlistener *lis, void *arg)
{
	struct timeval tv = { 0, 200 * 1000 };
	int err = EVUTIL_SOCKET_ERROR();

	/* EMFILE/ENFILE: stop accepting for a moment instead of spinning */
	log_warn("api: accept failed: %s; pausing the listener", strerror(err));
	evconnlistener_disable(lis);
	event_base_once(evconnlistener_get_base(lis), -1, EV_TIMEOUT, on_listen_retry, lis, &tv);
}

static struct bufferevent *on_new_tls_conn(struct event_base *base, void *arg)
{
	struct api_server *srv = arg;
	SSL *ssl = SSL_new(srv->ssl_ctx);

	if (!ssl)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

static int listener_init(struct api_server *srv, struct api_listener *l, bool tls, bool auth)
{
	l->srv = srv;
	l->tls = tls;
	l->auth = auth;
	l->http = evhttp_new(srv->base);
	if (!l->http)
		return -ENOMEM;
	evhttp_set_max_headers_size(l->http, API_MAX_HEADERS_SIZE);
	evhttp_set_max_body_size(l->http, (ev_ssize_t)srv->max_body);
	evhttp_set_timeout(l->http, API_IDLE_TIMEOUT_S);
	evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						    EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_default_content_type(l->http, "application/json");
	evhttp_set_gencb(l->http, on_request, l);
	if (tls)
		evhttp_set_bevcb(l->http, on_new_tls_conn, srv);
	return 0;
}

static void listener_guard(struct api_server *srv, struct evconnlistener *lis)
{
	if (lis)
		evconnlistener_set_error_cb(lis, on_accept_error);
	(void)srv;
}

/* "host:port", "[v6]:port" -> host, port. */
static int parse_listen(const char *s, char *host, size_t hlen, uint16_t *port)
{
	const char *colon;
	char *end;
	long p;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= hlen)
			return -EINVAL;
		memcpy(host, s + 1, rb - s - 1);
		host[rb - s - 1] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= hlen)
			return -EINVAL;
		memcpy(host, s, colon - s);
		host[colon - s] = 0;
	}
	p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 0 || p > 65535)
		return -EINVAL;
	*port = (uint16_t)p;
	if (!*host)
		strcpy(host, "0.0.0.0");
	return 0;
}

static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (streq(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

static int unix_listen(struct api_server *srv, const char *path, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct evconnlistener *lis;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, ENAMETOOLONG, 0, "", "socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, 0, "", "socket: %s", strerror(errno));
	(void)unlink(path);
	/* root-only from the first moment: bind under a restrictive umask */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 511) < 0) {
		r = errno;
		close(fd);
		return err_set(e, r, 0, "", "cannot listen on %s: %s", path, strerror(r));
	}
	lis = evconnlistener_new(srv->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
				 -1, fd);
	if (!lis) {
		close(fd);
		return -ENOMEM;
	}
	if (!evhttp_bind_listener(srv->unx.http, lis)) {
		evconnlistener_free(lis);
		return -ENOMEM;
	}
	listener_guard(srv, lis);
	srv->socket_path = strdup(path);
	return srv->socket_path ? 0 : -ENOMEM;
}

int api_server_new(struct event_base *base, struct store *store,
		   const struct api_server_options *opts, struct api_server **ret, struct err *e)
{
	struct api_server *srv = calloc(1, sizeof(*srv));
	const char *env;
	int r;

	if (!srv)
		return -ENOMEM;
	srv->base = base;
	srv->store = store;
	srv->node_name = strdup(opts->node_name ? opts->node_name : "node");
	srv->max_body = opts->max_body_bytes ? opts->max_body_bytes : API_DEFAULT_MAX_BODY;
	srv->bookmark_ms = API_BOOKMARK_MS;
	srv->watch_max_buffer = API_WATCH_MAX_BUFFER;
	/* test knobs: shorter bookmark period, smaller watch buffer */
	if ((env = getenv("SHOAL_API_BOOKMARK_MS")) && atol(env) > 0)
		srv->bookmark_ms = (uint64_t)atol(env);
	if ((env = getenv("SHOAL_API_WATCH_MAX_BUFFER")) && atol(env) > 0)
		srv->watch_max_buffer = (size_t)atol(env);
	if (!srv->node_name) {
		r = -ENOMEM;
		goto fail;
	}

	r = svcalloc_init(store, opts->service_cidr ? opts->service_cidr : "10.96.0.0/12", e);
	if (r < 0)
		goto fail;
	r = api_obj_bootstrap(store, e);
	if (r < 0)
		goto fail;

	if (!strempty(opts->listen)) {
		char host[256];
		uint16_t port;
		bool secure;
		struct evhttp_bound_socket *bs;

		if (parse_listen(opts->listen, host, sizeof(host), &port) < 0) {
			r = err_set(e, EINVAL, 0, "", "invalid --api-listen %s (want host:port)",
				    opts->listen);
			goto fail;
		}
		secure = !host_is_loopback(host);
		if (secure) {
			if (strempty(opts->tokens_file)) {
				r = err_set(e, EINVAL, 0, "",
					    "--api-listen %s is not loopback: --tokens-file is "
					    "required",
					    opts->listen);
				goto fail;
			}
			r = api_tokens_load(srv, opts->tokens_file, e);
			if (r < 0)
				goto fail;
			r = api_tls_setup(srv, opts, host, e);
			if (r < 0)
				goto fail;
		}
		r = listener_init(srv, &srv->tcp, secure, secure);
		if (r < 0)
			goto fail;
		bs = evhttp_bind_socket_with_handle(srv->tcp.http, host, port);
		if (!bs) {
			r = err_set(e, EADDRINUSE, 0, "", "cannot listen on %s: %s", opts->listen,
				    strerror(errno ? errno : EADDRINUSE));
			goto fail;
		}
		listener_guard(srv, evhttp_bound_socket_get_listener(bs));
		/*
		 * Replies go out as separate writes (headers, body, TLS records): with Nagle, each
		 * small reply waits ~40 ms for the client's delayed ACK. Linux copies TCP_NODELAY
		 * from the listening socket to every accepted one.
		 */
		int one = 1;
		if (setsockopt(evhttp_bound_socket_get_fd(bs), IPPROTO_TCP, TCP_NODELAY, &one,
			       sizeof(one)) < 0)
			log_warn("api: TCP_NODELAY on %s: %s", opts->listen, strerror(errno));
		if (secure && !(srv->tcp_listen = strdup(opts->listen))) {
			r = -ENOMEM;
			goto fail;
		}
		log_info("api: listening on %s%s", opts->listen,
			 secure ? " (TLS, bearer tokens)" : " (plain HTTP, loopback)");
	}
	if (!strempty(opts->socket_path)) {
		r = listener_init(srv, &srv->unx, false, false);
		if (r < 0)
			goto fail;
		r = unix_listen(srv, opts->socket_path, e);
		if (r < 0)
			goto fail;
	}
	*ret = srv;
	return 0;
fail:
	api_server_free(srv);
	return r;
}

struct api_server *api_server_free(struct api_server *srv)
{
	if (!srv)
		return NULL;
	svcalloc_fini();
	api_watch_free_all(srv);
	api_podio_free_all(srv);
	api_relay_free_all(srv);
	api_gossip_free_all(srv);
	if (srv->tcp.http)
		evhttp_free(srv->tcp.http);
	if (srv->unx.http)
		evhttp_free(srv->unx.http);
	if (srv->socket_path) {
		unlink(srv->socket_path);
		free(srv->socket_path);
	}
	if (srv->ssl_ctx)
		SSL_CTX_free(srv->ssl_ctx);
	for (size_t i = 0; i < srv->ntokens; i++) {
		free(srv->tokens[i].token);
		free(srv->tokens[i].user);
		free(srv->tokens[i].uid);
		free(srv->tokens[i].groups);
	}
	free(srv->tokens);
	free(srv->openapi_v3_root);
	free(srv->tcp_listen);
	free(srv->node_name);
	free(srv);
	return NULL;
}
