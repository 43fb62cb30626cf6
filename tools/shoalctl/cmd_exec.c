// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl exec: .../pods/NAME/exec over a WebSocket with the Kubernetes channel protocol
 * (v5.channel.k8s.io, v4 as a fallback), the same wire kubectl >= 1.30 uses. -i sends stdin
 * (EOF half-closes it in v5), -t puts the local terminal in raw mode and forwards its size.
 * The exit status is the command's.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "lib/ws.h"
#include "tools/shoalctl/shoalctl.h"

struct session {
	struct ctl_raw *raw;
	int proto;
	uint8_t *in;
	size_t nin, cap;
	int cur_channel;
	int exit_code; /* -2 until the Status arrives */
	char status_msg[512];
	bool closed;
};

static int sigwinch_pipe[2] = { -1, -1 };

static void on_sigwinch(int sig)
{
	int saved = errno;
	(void)!write(sigwinch_pipe[1], "w", 1);
	errno = saved;
}

static int send_all(struct ctl_raw *raw, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = ctl_raw_send(raw, p, n);

		if (k == -EAGAIN) {
			struct pollfd pf = { .fd = ctl_raw_fd(raw), .events = POLLOUT };
			poll(&pf, 1, 1000);
			continue;
		}
		if (k < 0)
			return (int)k;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* A masked client frame: [channel] + data. channel < 0: no channel byte (control frames). */
static int send_frame(struct session *s, enum ws_opcode op, int channel, const void *data,
		      size_t len)
{
	_cleanup_free_ uint8_t *buf = malloc(len + 15);
	uint8_t mask[4];
	size_t h, pl = len + (channel >= 0);

	if (!buf)
		return -ENOMEM;
	if (getrandom(mask, sizeof(mask), 0) != sizeof(mask))
		memset(mask, 0x5a, sizeof(mask));
	h = ws_frame_header(op, true, pl, mask, buf);
	if (channel >= 0)
		buf[h] = (uint8_t)channel;
	if (len)
		memcpy(buf + h + (channel >= 0), data, len);
	ws_unmask(buf + h, pl, mask, 0);
	return send_all(s->raw, buf, h + pl);
}

static int send_resize(struct session *s)
{
	struct winsize ws;
	char msg[64];

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_col)
		return 0;
	snprintf(msg, sizeof(msg), "{\"Width\":%u,\"Height\":%u}", ws.ws_col, ws.ws_row);
	return send_frame(s, WS_OP_BINARY, WS_CH_RESIZE, msg, strlen(msg));
}

static void write_out(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		p += k;
		n -= (size_t)k;
	}
}

static void channel_data(struct session *s, int ch, const uint8_t *p, size_t n)
{
	switch (ch) {
	case WS_CH_STDOUT:
		write_out(STDOUT_FILENO, p, n);
		break;
	case WS_CH_STDERR:
		write_out(STDERR_FILENO, p, n);
		break;
	case WS_CH_ERROR: {
		_cleanup_json_ cJSON *st = cJSON_ParseWithLength((const char *)p, n);
		const char *m = st ? ctl_json_str(st, "message") : NULL;

		s->exit_code = ws_k8s_status_exit_code((const char *)p, n);
		snprintf(s->status_msg, sizeof(s->status_msg), "%s",
			 m ? m : (st ? "" : (const char *)p));
		if (s->exit_code < 0 && !st)
			snprintf(s->status_msg, sizeof(s->status_msg), "%.*s", (int)n, p);
		break;
	}
	default:
		break;
	}
}

/* Parse and act on every complete frame received. */
static int process(struct session *s)
{
	size_t off = 0;

	while (!s->closed) {
		struct ws_frame f;
		int r = ws_frame_parse(s->in + off, s->nin - off, 64u << 20, &f);
		uint8_t *pl;

		if (r == 0)
			break;
		if (r < 0)
			return -EBADMSG;
		pl = s->in + off + f.header_len;
		if (f.masked)
			ws_unmask(pl, f.payload_len, f.mask, 0);
		switch (f.op) {
		case WS_OP_CLOSE:
			send_frame(s, WS_OP_CLOSE, -1, pl, f.payload_len >= 2 ? 2 : 0);
			s->closed = true;
			break;
		case WS_OP_PING:
			send_frame(s, WS_OP_PONG, -1, pl, f.payload_len);
			break;
		case WS_OP_TEXT:
		case WS_OP_BINARY:
			if (f.payload_len)
				channel_data(s, pl[0], pl + 1, f.payload_len - 1);
			s->cur_channel = f.fin || !f.payload_len ? -1 : pl[0];
			break;
		case WS_OP_CONT:
			if (s->cur_channel >= 0)
				channel_data(s, s->cur_channel, pl, f.payload_len);
			if (f.fin)
				s->cur_channel = -1;
			break;
		default:
			break;
		}
		off += f.header_len + f.payload_len;
	}
	memmove(s->in, s->in + off, s->nin - off);
	s->nin -= off;
	return 0;
}

static int receive(struct session *s)
{
	for (;;) {
		ssize_t n;

		if (s->cap - s->nin < 65536) {
			uint8_t *p = realloc(s->in, s->cap + 131072);
			if (!p)
				return -ENOMEM;
			s->in = p;
			s->cap += 131072;
		}
		n = ctl_raw_recv(s->raw, s->in + s->nin, s->cap - s->nin);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0) {
			s->closed = true;
			return 0;
		}
		s->nin += (size_t)n;
		if (process(s) < 0)
			return -EBADMSG;
		if (s->closed)
			return 0;
	}
}

static const char *head_field(const char *head, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
		if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') {
			const char *v = p + 3 + n;
			while (*v == ' ')
				v++;
			return v;
		}
	return NULL;
}

static bool field_is(const char *v, const char *want)
{
	size_t n = strlen(want);

	return v && !strncasecmp(v, want, n) && (v[n] == '\r' || v[n] == ' ');
}

/* A refused upgrade: the body is the server's Status. */
static int refused(struct ctl_raw *raw, long status, const char *head, struct err *e)
{
	const char *cl = head_field(head, "Content-Length");
	size_t want = cl ? (size_t)strtoul(cl, NULL, 10) : 0, got = 0;
	_cleanup_free_ char *body = calloc(1, want + 1);

	while (body && got < want) {
		ssize_t n = ctl_raw_recv(raw, body + got, want - got);
		if (n == -EAGAIN) {
			struct pollfd pf = { .fd = ctl_raw_fd(raw), .events = POLLIN };
			if (poll(&pf, 1, 10000) <= 0)
				break;
			continue;
		}
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return ctl_status_to_err(status, body ? body : "", e);
}

int cmd_exec(struct ctl *c, int argc, char **argv)
{
	_cleanup_free_ char *path = NULL, *headers = NULL, *head = NULL, *q = NULL, *nsq = NULL;
	_cleanup_free_ char *query = NULL;
	struct session s = { .cur_channel = -1, .exit_code = -2 };
	struct termios saved;
	bool raw_mode = false, stdin_open;
	struct ctl_http *h;
	struct err e = {};
	uint8_t rnd[16];
	char key[32], accept[29];
	const char *pod;
	long status = 0;
	size_t qlen = 0;
	int r;

	if (argc != 1 || c->o.exec_argc < 1)
		return ctl_fail(&(struct err){ .message = "usage: shoalctl exec [-i] [-t] [-c "
							  "CONTAINER] POD -- COMMAND [ARGS...]" },
				-EINVAL);
	pod = argv[0];
	if (!strncmp(pod, "pod/", 4) || !strncmp(pod, "po/", 3) || !strncmp(pod, "pods/", 5))
		pod = strchr(pod, '/') + 1;
	FILE *qf = open_memstream(&query, &qlen);
	if (!qf)
		return 1;
	for (int i = 0; i < c->o.exec_argc; i++) {
		_cleanup_free_ char *a = ctl_http_escape(c->o.exec_argv[i]);
		if (!a)
			return 1;
		fprintf(qf, "%scommand=%s", i ? "&" : "", a);
	}
	if (c->o.container) {
		_cleanup_free_ char *a = ctl_http_escape(c->o.container);
		if (!a)
			return 1;
		fprintf(qf, "&container=%s", a);
	}
	fprintf(qf, "&stdout=true%s%s%s", c->o.tty ? "" : "&stderr=true",
		c->o.want_stdin ? "&stdin=true" : "", c->o.tty ? "&tty=true" : "");
	fclose(qf);
	q = ctl_http_escape(pod);
	nsq = ctl_http_escape(c->namespace);
	if (!q || !nsq ||
	    asprintf(&path, "/api/v1/namespaces/%s/pods/%s/exec?%s", nsq, q, query) < 0)
		return 1;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return 1;
	EVP_EncodeBlock((unsigned char *)key, rnd, sizeof(rnd));
	if (asprintf(&headers,
		     "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n",
		     key) < 0)
		return 1;
	r = ctl_http(c, &h, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	r = ctl_http_upgrade(h, path, headers, &s.raw, &status, &head, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	if (status != 101) {
		r = refused(s.raw, status, head, &e);
		ctl_raw_free(s.raw);
		return ctl_fail(&e, r);
	}
	ws_accept_key(key, accept);
	{
		const char *acc = head_field(head, "Sec-WebSocket-Accept");
		const char *proto = head_field(head, "Sec-WebSocket-Protocol");

		if (!acc || strncmp(acc, accept, 28)) {
			ctl_raw_free(s.raw);
			return ctl_fail(&(struct err){ .message = "the server answered the "
								  "WebSocket handshake wrongly" },
					-EPROTO);
		}
		s.proto = field_is(proto, "v5.channel.k8s.io") ? 5 : 4;
	}

	if (c->o.tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios t = saved;
		cfmakeraw(&t);
		raw_mode = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	if (c->o.tty) {
		if (pipe(sigwinch_pipe) == 0)
			signal(SIGWINCH, on_sigwinch);
		send_resize(&s);
	}
	stdin_open = c->o.want_stdin;
	signal(SIGPIPE, SIG_IGN);
	/* frames that came right behind the 101 */
	r = receive(&s);
	while (r >= 0 && !s.closed) {
		struct pollfd pf[3] = {
			{ .fd = ctl_raw_fd(s.raw), .events = POLLIN },
			{ .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
			{ .fd = sigwinch_pipe[0], .events = POLLIN },
		};

		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[2].revents & POLLIN) {
			char b[16];
			(void)!read(sigwinch_pipe[0], b, sizeof(b));
			send_resize(&s);
		}
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t buf[32768];
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

			if (n > 0) {
				r = send_frame(&s, WS_OP_BINARY, WS_CH_STDIN, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				stdin_open = false;
				if (s.proto >= 5) {
					uint8_t ch = WS_CH_STDIN;
					r = send_frame(&s, WS_OP_BINARY, WS_CH_CLOSE, &ch, 1);
				}
			}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR))
			r = receive(&s);
	}
	if (raw_mode)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	ctl_raw_free(s.raw);
	free(s.in);
	if (r < 0)
		return ctl_fail(&(struct err){ .message = "the exec stream broke" }, r);
	if (s.exit_code == -2)
		return ctl_fail(&(struct err){ .message = "the exec stream ended without an exit "
							  "status" },
				-ECOMM);
	if (s.exit_code < 0) {
		fprintf(stderr, "error: %s\n", s.status_msg);
		return 1;
	}
	if (s.exit_code > 0)
		fprintf(stderr, "command terminated with exit code %d\n", s.exit_code);
	return s.exit_code;
}
