// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP client: one libcurl easy handle per run so requests reuse the connection
 * (keep-alive), over TCP (http/https) or the daemon's unix socket (server "unix:/path").
 */
#include <poll.h>
#include <string.h>
#include <curl/curl.h>

#include "tools/shoalctl/shoalctl.h"

struct ctl_http {
	CURL *curl;
	char *server;	/* as configured, for messages */
	char *base;	/* URL prefix requests are appended to */
	char *unix_path;
	char *auth;	/* "Authorization: Bearer ..." */
	struct ctl_config cfg;
	char errbuf[CURL_ERROR_SIZE];
};

struct buf {
	char *data;
	size_t len, cap;
};

static int buf_append(struct buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct ctl_http *ctl_http_free(struct ctl_http *h)
{
	if (!h)
		return NULL;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	free(h->server);
	free(h->base);
	free(h->unix_path);
	free(h->auth);
	ctl_config_done(&h->cfg);
	free(h);
	return NULL;
}
DEFINE_CLEANUP_FUNC(struct ctl_http, ctl_http_free)

const char *ctl_http_server(const struct ctl_http *h)
{
	return h->server;
}

int ctl_http_new(const struct ctl_config *cfg, struct ctl_http **ret, struct err *e)
{
	_cleanup_(ctl_http_freep) struct ctl_http *h = calloc(1, sizeof(*h));
	const char *server = cfg->server ? cfg->server : CTL_DEFAULT_SERVER;
	static bool global_init;

	if (!h)
		return -ENOMEM;
	if (!global_init) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return err_set(e, EIO, 0, "", "cannot initialise libcurl");
		global_init = true;
	}
	h->server = strdup(server);
	if (!h->server)
		return -ENOMEM;
	if (!strncmp(server, "unix:", 5)) {
		const char *p = server + 5;

		if (!strncmp(p, "//", 2))
			p += 2;
		if (!*p)
			return err_set(e, EINVAL, 0, "", "server %s: missing socket path", server);
		h->unix_path = strdup(p);
		h->base = strdup("http://localhost");
	} else if (!strncmp(server, "http://", 7) || !strncmp(server, "https://", 8)) {
		size_t n = strlen(server);

		while (n > 0 && server[n - 1] == '/')
			n--;
		h->base = strndup(server, n);
	} else {
		/* kubectl accepts host:port and means https */
		if (asprintf(&h->base, "https://%s", server) < 0)
			h->base = NULL;
	}
	if (!h->base || (!strncmp(server, "unix:", 5) && !h->unix_path))
		return -ENOMEM;
	if (cfg->token && asprintf(&h->auth, "Authorization: Bearer %s", cfg->token) < 0)
		return -ENOMEM;
	h->cfg = (struct ctl_config){
		.ca_file = xstrdup(cfg->ca_file),
		.ca_data = xstrdup(cfg->ca_data),
		.cert_file = xstrdup(cfg->cert_file),
		.key_file = xstrdup(cfg->key_file),
		.cert_data = xstrdup(cfg->cert_data),
		.key_data = xstrdup(cfg->key_data),
		.insecure = cfg->insecure,
	};
	h->curl = curl_easy_init();
	if (!h->curl)
		return err_set(e, ENOMEM, 0, "", "cannot create a libcurl handle");
	*ret = TAKE_PTR(h);
	return 0;
}

static void setup_handle(struct ctl_http *h, CURL *c)
{
	/* reset per request but keep the handle: the connection cache survives curl_easy_reset */
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "shoalctl/" SHOALCTL_VERSION);
	if (h->unix_path)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->unix_path);
	if (h->cfg.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->cfg.ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->cfg.ca_file);
	if (h->cfg.ca_data) {
		struct curl_blob blob = { h->cfg.ca_data, strlen(h->cfg.ca_data),
					  CURL_BLOB_COPY };
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (h->cfg.cert_file)
		curl_easy_setopt(c, CURLOPT_SSLCERT, h->cfg.cert_file);
	if (h->cfg.key_file)
		curl_easy_setopt(c, CURLOPT_SSLKEY, h->cfg.key_file);
	if (h->cfg.cert_data) {
		struct curl_blob blob = { h->cfg.cert_data, strlen(h->cfg.cert_data),
					  CURL_BLOB_COPY };
		curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (h->cfg.key_data) {
		struct curl_blob blob = { h->cfg.key_data, strlen(h->cfg.key_data),
					  CURL_BLOB_COPY };
		curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	}
	h->errbuf[0] = 0;
}

static void setup_common(struct ctl_http *h)
{
	setup_handle(h, h->curl);
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	return buf_append(userdata, p, size * n) < 0 ? 0 : size * n;
}

static void free_slist(struct curl_slist **l)
{
	if (*l)
		curl_slist_free_all(*l);
}

static struct curl_slist *headers(struct ctl_http *h, const char *accept,
				  const char *content_type)
{
	struct curl_slist *l = NULL;
	char line[512];

	snprintf(line, sizeof(line), "Accept: %s", accept ? accept : "application/json");
	l = curl_slist_append(l, line);
	if (content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		l = curl_slist_append(l, line);
	}
	if (h->auth)
		l = curl_slist_append(l, h->auth);
	/* no "Expect: 100-continue" round trip on larger bodies */
	l = curl_slist_append(l, "Expect:");
	return l;
}

static int transport_error(struct ctl_http *h, CURLcode cc, struct err *e)
{
	const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
	int errnum = ECOMM;

	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		errnum = ECONNREFUSED;
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		errnum = EHOSTUNREACH;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		errnum = ETIMEDOUT;
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
		errnum = EPROTO;
		break;
	default:
		break;
	}
	if (errnum == ECONNREFUSED && h->unix_path) {
		long oserr = 0;

		curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &oserr);
		return err_set(e, errnum, 0, "",
			       "cannot connect to the server's unix socket %s: %s - is shoald "
			       "running? (set --server, SHOAL_SERVER or a kubeconfig)",
			       h->unix_path, oserr ? strerror((int)oserr) : why);
	}
	if (errnum == ECONNREFUSED)
		return err_set(e, errnum, 0, "",
			       "the connection to the server %s was refused (%s) - is shoald "
			       "running? (set --server, SHOAL_SERVER or a kubeconfig)",
			       h->server, why);
	return err_set(e, errnum, 0, "", "cannot talk to the server %s: %s", h->server, why);
}

static int perform(struct ctl_http *h, const char *method, const char *path, const char *accept,
		   const char *content_type, const char *body, struct ctl_response *ret,
		   struct err *e)
{
	_cleanup_(free_slist) struct curl_slist *hdr = NULL;
	_cleanup_free_ char *url = NULL;
	struct buf b = {};
	CURLcode cc;

	*ret = (struct ctl_response){};
	if (asprintf(&url, "%s%s", h->base, path) < 0)
		return -ENOMEM;
	setup_common(h);
	hdr = headers(h, accept, content_type);
	if (!hdr)
		return -ENOMEM;
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &b);
	if (body) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	if (!streq(method, "GET") && !(streq(method, "POST") && body))
		curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(h->curl);
	if (cc != CURLE_OK) {
		free(b.data);
		return transport_error(h, cc, e);
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &ret->status);
	ret->body = b.data ? b.data : strdup("");
	ret->len = b.len;
	return ret->body ? 0 : -ENOMEM;
}

int ctl_http_do(struct ctl_http *h, const char *method, const char *path, const char *accept,
		const char *content_type, const char *body, struct ctl_response *ret, struct err *e)
{
	return perform(h, method, path, accept, content_type, body, ret, e);
}

struct stream {
	struct ctl_http *h;
	struct buf line;
	struct buf err; /* body of a non-2xx answer */
	ctl_line_fn fn;
	void *userdata;
	int r;
	bool checked, ok;
	ctl_chunk_fn raw; /* chunks as they come instead of lines */
};

static size_t on_stream(char *p, size_t size, size_t n, void *userdata)
{
	struct stream *s = userdata;
	size_t total = size * n;

	if (!s->checked) {
		long status = 0;

		curl_easy_getinfo(s->h->curl, CURLINFO_RESPONSE_CODE, &status);
		s->ok = status >= 200 && status < 300;
		s->checked = true;
	}
	if (!s->ok)
		return buf_append(&s->err, p, total) < 0 ? 0 : total;
	if (s->raw) {
		s->r = s->raw(p, total, s->userdata);
		return s->r < 0 ? 0 : total;
	}
	if (buf_append(&s->line, p, total) < 0)
		return 0;
	for (;;) {
		char *nl = memchr(s->line.data, '\n', s->line.len);
		size_t len;

		if (!nl)
			break;
		len = nl - s->line.data;
		*nl = 0;
		if (len > 0) {
			s->r = s->fn(s->line.data, len, s->userdata);
			if (s->r < 0)
				return 0; /* aborts the transfer */
		}
		memmove(s->line.data, nl + 1, s->line.len - len - 1);
		s->line.len -= len + 1;
		s->line.data[s->line.len] = 0;
	}
	return total;
}

static int stream(struct ctl_http *h, const char *path, const char *accept, ctl_line_fn fn,
		  ctl_chunk_fn raw, void *userdata, struct ctl_response *ret, struct err *e)
{
	_cleanup_(free_slist) struct curl_slist *hdr = NULL;
	_cleanup_free_ char *url = NULL;
	struct stream s = { .h = h, .fn = fn, .raw = raw, .userdata = userdata };
	CURLcode cc;
	int r = 0;

	*ret = (struct ctl_response){};
	if (asprintf(&url, "%s%s", h->base, path) < 0)
		return -ENOMEM;
	setup_common(h);
	hdr = headers(h, accept, NULL);
	if (!hdr)
		return -ENOMEM;
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
	cc = curl_easy_perform(h->curl);
	if (cc == CURLE_WRITE_ERROR && s.r < 0) {
		r = s.r; /* the callback stopped us */
	} else if (cc != CURLE_OK) {
		r = transport_error(h, cc, e);
	} else {
		/* a last line without newline */
		if (s.ok && s.line.len > 0 && fn)
			r = fn(s.line.data, s.line.len, userdata);
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &ret->status);
		if (!s.ok) {
			ret->body = s.err.data ? TAKE_PTR(s.err.data) : strdup("");
			ret->len = s.err.len;
		}
	}
	free(s.line.data);
	free(s.err.data);
	return r;
}

int ctl_http_stream(struct ctl_http *h, const char *path, const char *accept, ctl_line_fn fn,
		    void *userdata, struct ctl_response *ret, struct err *e)
{
	return stream(h, path, accept, fn, NULL, userdata, ret, e);
}

int ctl_http_stream_raw(struct ctl_http *h, const char *path, ctl_chunk_fn fn, void *userdata,
			struct ctl_response *ret, struct err *e)
{
	return stream(h, path, "*/*", NULL, fn, userdata, ret, e);
}

int ctl_http_upload(struct ctl_http *h, const char *method, const char *path,
		    const char *content_type, FILE *body, long long size, struct ctl_response *ret,
		    struct err *e)
{
	_cleanup_(free_slist) struct curl_slist *hdr = NULL;
	_cleanup_free_ char *url = NULL;
	struct buf b = {};
	CURLcode cc;

	*ret = (struct ctl_response){};
	if (asprintf(&url, "%s%s", h->base, path) < 0)
		return -ENOMEM;
	setup_common(h);
	hdr = headers(h, "application/json", content_type);
	if (!hdr)
		return -ENOMEM;
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h->curl, CURLOPT_READDATA, body);
	curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(h->curl);
	if (cc != CURLE_OK) {
		free(b.data);
		return transport_error(h, cc, e);
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &ret->status);
	ret->body = b.data ? b.data : strdup("");
	ret->len = b.len;
	return ret->body ? 0 : -ENOMEM;
}

struct ctl_raw {
	CURL *curl;
	curl_socket_t fd;
};

struct ctl_raw *ctl_raw_free(struct ctl_raw *r)
{
	if (!r)
		return NULL;
	if (r->curl)
		curl_easy_cleanup(r->curl);
	free(r);
	return NULL;
}
DEFINE_CLEANUP_FUNC(struct ctl_raw, ctl_raw_free)

int ctl_raw_fd(struct ctl_raw *r)
{
	return (int)r->fd;
}

ssize_t ctl_raw_send(struct ctl_raw *r, const void *buf, size_t len)
{
	size_t n = 0;
	CURLcode cc = curl_easy_send(r->curl, buf, len, &n);

	if (cc == CURLE_AGAIN)
		return -EAGAIN;
	return cc == CURLE_OK ? (ssize_t)n : -ECOMM;
}

ssize_t ctl_raw_recv(struct ctl_raw *r, void *buf, size_t len)
{
	size_t n = 0;
	CURLcode cc = curl_easy_recv(r->curl, buf, len, &n);

	if (cc == CURLE_AGAIN)
		return -EAGAIN;
	return cc == CURLE_OK ? (ssize_t)n : -ECOMM;
}

static int raw_send_all(struct ctl_raw *r, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = ctl_raw_send(r, buf, len);

		if (n == -EAGAIN) {
			struct pollfd p = { .fd = r->fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			continue;
		}
		if (n < 0)
			return (int)n;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_http_upgrade(struct ctl_http *h, const char *path, const char *headers_text,
		     struct ctl_raw **ret, long *ret_status, char **ret_head, struct err *e)
{
	_cleanup_(ctl_raw_freep) struct ctl_raw *r = calloc(1, sizeof(*r));
	_cleanup_free_ char *url = NULL, *req = NULL, *host = NULL;
	struct buf b = {};
	CURLcode cc;
	char *end = NULL;

	if (!r || asprintf(&url, "%s%s", h->base, path) < 0)
		return -ENOMEM;
	r->curl = curl_easy_init();
	if (!r->curl)
		return -ENOMEM;
	setup_handle(h, r->curl);
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_CONNECT_ONLY, 1L);
	cc = curl_easy_perform(r->curl);
	if (cc != CURLE_OK) {
		CURL *keep = h->curl;
		int k;

		/* transport_error reads the handle's errno/buffer */
		h->curl = r->curl;
		k = transport_error(h, cc, e);
		h->curl = keep;
		return k;
	}
	curl_easy_getinfo(r->curl, CURLINFO_ACTIVESOCKET, &r->fd);
	/* Host: what follows the scheme up to the path */
	{
		const char *p = strstr(h->base, "://");
		const char *q;

		p = p ? p + 3 : h->base;
		q = strchr(p, '/');
		host = q ? strndup(p, (size_t)(q - p)) : strdup(p);
		if (!host)
			return -ENOMEM;
	}
	{
		const char *prefix = strstr(h->base, "://");
		const char *slash = prefix ? strchr(prefix + 3, '/') : NULL;

		if (asprintf(&req,
			     "GET %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: shoalctl/" SHOALCTL_VERSION
			     "\r\n%s%s%s\r\n",
			     slash ? slash : "", path, host, h->auth ? h->auth : "",
			     h->auth ? "\r\n" : "", headers_text) < 0)
			return -ENOMEM;
	}
	if (raw_send_all(r, req, strlen(req)) < 0)
		return err_set(e, ECOMM, 0, "", "cannot send the request to %s", h->server);
	/* the response head, byte by byte past what we need: the rest belongs to the stream */
	while (!end) {
		char c;
		ssize_t n = ctl_raw_recv(r, &c, 1);

		if (n == -EAGAIN) {
			struct pollfd p = { .fd = r->fd, .events = POLLIN };
			if (poll(&p, 1, 30000) == 0) {
				free(b.data);
				return err_set(e, ETIMEDOUT, 0, "", "no answer from %s", h->server);
			}
			continue;
		}
		if (n <= 0 || buf_append(&b, &c, 1) < 0 || b.len > 65536) {
			free(b.data);
			return err_set(e, ECOMM, 0, "", "the connection to %s closed", h->server);
		}
		if (b.len >= 4 && !memcmp(b.data + b.len - 4, "\r\n\r\n", 4))
			end = b.data + b.len;
	}
	*ret_status = 0;
	if (!strncmp(b.data, "HTTP/1.", 7) && b.len > 12)
		*ret_status = strtol(b.data + 9, NULL, 10);
	*ret_head = b.data;
	*ret = TAKE_PTR(r);
	return 0;
}

void ctl_response_done(struct ctl_response *r)
{
	free(r->body);
	*r = (struct ctl_response){};
}

char *ctl_http_escape(const char *s)
{
	/* the handle argument is ignored by libcurl >= 7.82 */
	char *esc = curl_easy_escape(NULL, s, 0);
	char *out;

	if (!esc)
		return NULL;
	out = strdup(esc);
	curl_free(esc);
	return out;
}

bool ctl_transport_failed(int r)
{
	return r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT || r == -EPROTO ||
	       r == -ECOMM;
}
