// SPDX-License-Identifier: Apache-2.0
/*
 * api-load: pipelined API requests on a node's unix socket, a load generator that costs the
 * machine little (the benchmarks run it on the same two cores as the daemons).
 *
 *   api-load --socket PATH --path /api/v1/namespaces/default/configmaps [--method POST]
 *            [--window 64] [--conns 1] [--expect 201] [--timeout-ms 60000] [--bodies FILE]
 *
 * Every line of FILE (default stdin) is one request's body (JSON has no raw newlines); all the
 * requests are rendered before the clock starts, byte for byte what bench_api.py's request()
 * renders. The requests are split into --conns contiguous shares, one keep-alive connection
 * each, and every connection keeps --window requests in flight. Responses are parsed by their
 * Content-Length or chunked framing (1xx skipped; 204 and 304 have no body); a response without
 * either, a "Connection: close" or a connection the server closes before the last answer is an
 * error. Prints one JSON line:
 *
 *   {"requests":N,"conns":K,"window":W,"secs":S,"rate":R,"cpu_user_s":U,"cpu_sys_s":Y,
 *    "cpu_us_per_req":C,"bad":B}
 *
 * where secs and the CPU are from the first send to the last response (connecting and rendering
 * are before). Exits 1 if any status is not --expect (the first few are printed on stderr with
 * the response), 2 on a usage, connection or protocol error or no progress for --timeout-ms.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RBUF_MIN (256 * 1024)
#define MAX_BODY (1ul << 30)
#define SHOW_BAD 3

struct conn {
	int fd;
	size_t first, end; /* this connection's requests [first, end) */
	size_t spos;	   /* bytes of the rendered requests sent (absolute offset) */
	size_t done;	   /* responses read (absolute request index) */
	char *rbuf;
	size_t rcap, rpos, rlen;
};

static char *reqs;     /* every request rendered, back to back */
static size_t *off;    /* off[i]: request i's first byte; off[n]: the end */
static size_t nreq, nbad;
static int expect = 201, window = 64;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("api-load: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static double now_s(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static char *slurp(FILE *f, size_t *len)
{
	size_t cap = 1 << 20, n = 0, got;
	char *buf = xrealloc(NULL, cap);

	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap)
			buf = xrealloc(buf, cap *= 2);
	}
	if (ferror(f))
		die("reading the bodies: %s", strerror(errno));
	*len = n;
	return buf;
}

/* one request a non-empty line of the bodies */
static void render(const char *method, const char *path, const char *ctype, const char *bodies,
		   size_t blen)
{
	size_t cap = blen + 4096, len = 0, ocap = 1024;
	const char *p = bodies, *end = bodies + blen;

	reqs = xrealloc(NULL, cap);
	off = xrealloc(NULL, ocap * sizeof(*off));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		int head;

		if (n && p[n - 1] == '\r')
			n--;
		if (n) {
			if (cap - len < n + 512)
				reqs = xrealloc(reqs, cap = 2 * cap + n + 512);
			if (nreq + 2 > ocap)
				off = xrealloc(off, (ocap *= 2) * sizeof(*off));
			off[nreq++] = len;
			head = snprintf(reqs + len, cap - len,
					"%s %s HTTP/1.1\r\nHost: shoal\r\nAccept: application/json\r\n"
					"Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
					method, path, ctype, n);
			if (head < 0 || (size_t)head >= cap - len - n)
				die("request head too long");
			memcpy(reqs + len + head, p, n);
			len += (size_t)head + n;
		}
		p = nl ? nl + 1 : end;
	}
	if (!nreq)
		die("no request bodies");
	off[nreq] = len;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val,
		      size_t *vlen)
{
	size_t k = strlen(name);

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k))
		return false;
	line += k + 1;
	n -= k + 1;
	while (n && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	*val = line;
	*vlen = n;
	return true;
}

static bool has_token(const char *v, size_t n, const char *tok)
{
	size_t k = strlen(tok);

	for (size_t i = 0; i + k <= n; i++)
		if (!strncasecmp(v + i, tok, k) && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
		    (i + k == n || v[i + k] == ',' || v[i + k] == ' ' || v[i + k] == ';'))
			return true;
	return false;
}

/*
 * One response at p[0..n): 1 and its status and length when it is complete, 0 when more bytes
 * are needed, -1 (with *why) when it is malformed or cannot be framed on a kept-alive connection.
 */
static int parse_response(const char *p, size_t n, int *status, size_t *total, const char **why)
{
	const char *eoh = memmem(p, n, "\r\n\r\n", 4), *line, *end;
	bool chunked = false, have_len = false;
	size_t clen = 0, pos;

	if (!eoh) {
		if (n > 65536) {
			*why = "response head over 64 KiB";
			return -1;
		}
		return 0;
	}
	if (n < 13 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (p[12] != ' ' && p[12] != '\r')) {
		*why = "bad status line";
		return -1;
	}
	*status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	line = (const char *)memchr(p, '\n', (size_t)(eoh + 2 - p)) + 1;
	end = eoh + 2; /* the last header line's CRLF */
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t ln = (size_t)(nl - line), vlen;
		const char *v;

		if (ln && line[ln - 1] == '\r')
			ln--;
		if (header_is(line, ln, "content-length", &v, &vlen)) {
			char num[24];
			char *e;
			unsigned long long x;

			if (!vlen || vlen >= sizeof(num)) {
				*why = "bad Content-Length";
				return -1;
			}
			memcpy(num, v, vlen);
			num[vlen] = 0;
			errno = 0;
			x = strtoull(num, &e, 10);
			if (errno || *e || num[0] < '0' || num[0] > '9' || x > MAX_BODY ||
			    (have_len && x != clen)) {
				*why = "bad Content-Length";
				return -1;
			}
			clen = x;
			have_len = true;
		} else if (header_is(line, ln, "transfer-encoding", &v, &vlen)) {
			chunked = has_token(v, vlen, "chunked");
			if (!chunked) {
				*why = "a transfer coding other than chunked";
				return -1;
			}
		} else if (header_is(line, ln, "connection", &v, &vlen) &&
			   has_token(v, vlen, "close")) {
			*why = "the server closes the connection (Connection: close)";
			return -1;
		}
		line = nl + 1;
	}
	pos = (size_t)(eoh + 4 - p);
	if (*status < 200 || *status == 204 || *status == 304) {
		*total = pos;
		return 1;
	}
	if (chunked) { /* takes precedence over a Content-Length (RFC 9112 6.3) */
		for (;;) {
			const char *nl = memmem(p + pos, n - pos, "\r\n", 2);
			size_t sz = 0, digits = 0;
			const char *c;

			if (!nl)
				return 0;
			for (c = p + pos; c < nl; c++, digits++) {
				int d = *c >= '0' && *c <= '9'	 ? *c - '0'
					: *c >= 'a' && *c <= 'f' ? *c - 'a' + 10
					: *c >= 'A' && *c <= 'F' ? *c - 'A' + 10
								 : -1;

				if (d < 0)
					break;
				if (sz > MAX_BODY) {
					*why = "chunk too large";
					return -1;
				}
				sz = sz * 16 + (size_t)d;
			}
			if (!digits || (c < nl && *c != ';' && *c != ' ' && *c != '\t')) {
				*why = "bad chunk size";
				return -1;
			}
			pos = (size_t)(nl + 2 - p);
			if (!sz)
				break;
			if (n - pos < sz + 2)
				return 0;
			if (memcmp(p + pos + sz, "\r\n", 2)) {
				*why = "chunk not followed by CRLF";
				return -1;
			}
			pos += sz + 2;
		}
		for (;;) { /* trailer fields, then the empty line */
			const char *nl = memmem(p + pos, n - pos, "\r\n", 2);

			bool empty;

			if (!nl)
				return 0;
			empty = nl == p + pos;
			pos = (size_t)(nl + 2 - p);
			if (empty)
				break;
		}
		*total = pos;
		return 1;
	}
	if (!have_len) {
		*why = "response without Content-Length or chunked framing";
		return -1;
	}
	if (n - pos < clen)
		return 0;
	*total = pos + clen;
	return 1;
}

static void show_bad(size_t i, int status, const char *p, size_t n)
{
	if (++nbad > SHOW_BAD)
		return;
	fprintf(stderr, "api-load: request %zu: status %d (expected %d):\n%.*s\n", i, status,
		expect, (int)(n > 600 ? 600 : n), p);
}

/* reads and parses what has arrived (dies on an error) */
static void conn_read(struct conn *c)
{
	for (;;) {
		size_t room;
		ssize_t got;

		if (c->rpos && c->rcap - c->rlen < RBUF_MIN / 4) {
			memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
			c->rlen -= c->rpos;
			c->rpos = 0;
		}
		if (c->rlen == c->rcap)
			c->rbuf = xrealloc(c->rbuf, c->rcap *= 2);
		room = c->rcap - c->rlen;
		got = recv(c->fd, c->rbuf + c->rlen, room, MSG_DONTWAIT);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (got < 0)
			die("recv: %s after %zu of %zu responses", strerror(errno), c->done - c->first,
			    c->end - c->first);
		if (!got)
			die("the server closed a connection after %zu of its %zu responses",
			    c->done - c->first, c->end - c->first);
		c->rlen += (size_t)got;
		for (;;) {
			const char *why = NULL;
			size_t total = 0;
			int status = 0, r;

			r = parse_response(c->rbuf + c->rpos, c->rlen - c->rpos, &status, &total, &why);
			if (r < 0)
				die("response to request %zu: %s:\n%.*s", c->done, why,
				    (int)(c->rlen - c->rpos > 600 ? 600 : c->rlen - c->rpos),
				    c->rbuf + c->rpos);
			if (!r)
				break;
			if (status >= 200) {
				if (c->done >= c->end)
					die("a response with no request (status %d)", status);
				if (status != expect)
					show_bad(c->done, status, c->rbuf + c->rpos, total);
				c->done++;
			}
			c->rpos += total;
		}
		if (c->rpos == c->rlen)
			c->rpos = c->rlen = 0;
		if ((size_t)got < room)
			return; /* drained */
	}
}

/* the end of what the window lets a connection send */
static size_t send_limit(const struct conn *c)
{
	return off[c->done + (size_t)window < c->end ? c->done + (size_t)window : c->end];
}

/* sends what the window allows and the socket takes */
static void conn_pump(struct conn *c)
{
	size_t upto = send_limit(c);

	while (c->spos < upto) {
		ssize_t put = send(c->fd, reqs + c->spos, upto - c->spos, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (put < 0)
			die("send: %s after %zu of %zu responses", strerror(errno), c->done - c->first,
			    c->end - c->first);
		c->spos += (size_t)put;
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: api-load --socket PATH --path PATH [--method POST] [--window 64] "
			"[--conns 1] [--expect 201] [--content-type application/json] "
			"[--timeout-ms 60000] [--bodies FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *path = NULL, *method = "POST", *ctype = "application/json";
	const char *bodies_file = NULL;
	int conns = 1, timeout_ms = 60000;
	struct rusage ru0, ru1;
	struct conn *cs;
	struct pollfd *pf;
	double t0, t1, cpu_u, cpu_s;
	size_t blen, left;
	char *bodies;
	FILE *f = stdin;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return usage();
		if (!strcmp(a, "--socket"))
			sock = v;
		else if (!strcmp(a, "--path"))
			path = v;
		else if (!strcmp(a, "--method"))
			method = v;
		else if (!strcmp(a, "--content-type"))
			ctype = v;
		else if (!strcmp(a, "--window"))
			window = atoi(v);
		else if (!strcmp(a, "--conns"))
			conns = atoi(v);
		else if (!strcmp(a, "--expect"))
			expect = atoi(v);
		else if (!strcmp(a, "--timeout-ms"))
			timeout_ms = atoi(v);
		else if (!strcmp(a, "--bodies"))
			bodies_file = v;
		else
			return usage();
		i++;
	}
	if (!sock || !path || window < 1 || conns < 1 || timeout_ms < 1)
		return usage();
	if (bodies_file && !(f = fopen(bodies_file, "r")))
		die("%s: %s", bodies_file, strerror(errno));
	bodies = slurp(f, &blen);
	if (f != stdin)
		fclose(f);
	render(method, path, ctype, bodies, blen);
	free(bodies);
	if ((size_t)conns > nreq)
		conns = (int)nreq;

	cs = calloc((size_t)conns, sizeof(*cs));
	pf = calloc((size_t)conns, sizeof(*pf));
	if (!cs || !pf)
		die("out of memory");
	for (int i = 0; i < conns; i++) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		struct conn *c = &cs[i];

		if (strlen(sock) >= sizeof(sa.sun_path))
			die("socket path too long");
		strcpy(sa.sun_path, sock);
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("%s: %s", sock, strerror(errno));
		c->first = c->done = nreq * (size_t)i / (size_t)conns;
		c->end = nreq * (size_t)(i + 1) / (size_t)conns;
		c->spos = off[c->first];
		c->rbuf = xrealloc(NULL, c->rcap = RBUF_MIN);
		pf[i].fd = c->fd;
	}

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_s(CLOCK_MONOTONIC);
	left = (size_t)conns;
	for (int i = 0; i < conns; i++)
		conn_pump(&cs[i]);
	while (left) {
		int r;

		for (int i = 0; i < conns; i++) {
			struct conn *c = &cs[i];

			pf[i].events = POLLIN;
			if (c->spos < send_limit(c))
				pf[i].events |= POLLOUT;
		}
		r = poll(pf, (nfds_t)conns, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("poll: %s", strerror(errno));
		if (!r)
			die("no response for %d ms", timeout_ms);
		for (int i = 0; i < conns; i++) {
			struct conn *c = &cs[i];

			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			if (pf[i].revents & (POLLIN | POLLHUP | POLLERR))
				conn_read(c);
			if (c->done == c->end) {
				pf[i].fd = -1; /* poll skips it */
				left--;
				continue;
			}
			conn_pump(c);
		}
	}
	t1 = now_s(CLOCK_MONOTONIC);
	getrusage(RUSAGE_SELF, &ru1);
	cpu_u = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
	cpu_s = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
	printf("{\"requests\":%zu,\"conns\":%d,\"window\":%d,\"secs\":%.6f,\"rate\":%.1f,"
	       "\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,\"cpu_us_per_req\":%.2f,\"bad\":%zu}\n",
	       nreq, conns, window, t1 - t0, (double)nreq / (t1 - t0), cpu_u, cpu_s,
	       1e6 * (cpu_u + cpu_s) / (double)nreq, nbad);
	fflush(stdout);
	if (nbad) {
		fprintf(stderr, "api-load: %zu of %zu responses were not %d\n", nbad, nreq, expect);
		return 1;
	}
	for (int i = 0; i < conns; i++) {
		close(cs[i].fd);
		free(cs[i].rbuf);
	}
	free(cs);
	free(pf);
	free(reqs);
	free(off);
	return 0;
}
