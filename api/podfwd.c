// SPDX-License-Identifier: Apache-2.0
/*
 * GET/POST /api/v1/namespaces/NS/pods/NAME/portforward: TCP connections to 127.0.0.1:PORT (or
 * [::1]:PORT) inside the pod's network namespace, carried over one WebSocket in either of
 * kubelet's two protocols:
 *
 *  - "SPDY/3.1+portforward.k8s.io" (kubectl >= 1.31, KEP-4006): the WebSocket's binary messages
 *    are a byte stream holding a SPDY/3.1 connection (lib/spdy.c). Every local connection
 *    kubectl accepts opens two streams with headers streamType (error|data), port and
 *    requestID; once both are there we connect, copy bytes both ways on the data stream, write
 *    a failure (kubelet's message) on the error stream, and finish both with FIN.
 *  - "v4.channel.k8s.io" (or no subprotocol; @kubernetes/client-node): ?ports=A,B; port i has
 *    data channel 2i and error channel 2i+1, the first message of each carries the port (2
 *    bytes, little endian); one connection per port, the WebSocket closes when all are over.
 *
 * SPDY without a WebSocket (kubectl <= 1.30 without the feature) is refused with a message,
 * after the pod checks so that kubectl's fallback reports the real problem.
 *
 * A socket belongs to the network namespace of the thread that creates it: each forward has a
 * helper thread that enters the pod's netns once and hands back fresh sockets (SCM_RIGHTS over
 * a socketpair) on request. Connecting and all I/O then happen on the event loop, whose thread
 * never leaves the daemon's namespace. The thread exits when the forward ends. The forward ends
 * when the client closes it or the pod is deleted (a store watch).
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/bufferevent.h>

#include "api/server-internal.h"
#include "lib/log.h"
#include "lib/spdy.h"
#include "lib/util.h"

#define FWD_TUNNEL_PROTO "SPDY/3.1+portforward.k8s.io"
#define FWD_CHANNEL_PROTO "v4.channel.k8s.io"
#define FWD_MAX_BACKLOG (1 << 20)     /* pause the pod sockets while the client lags */
#define FWD_MAX_POD_BACKLOG (1 << 20) /* pause the client while a pod socket lags */
#define FWD_CHUNK 32768
#define FWD_MAX_PORTS 127     /* channel bytes: 2i+1 < 255 */
#define FWD_MAX_CONNS 1024    /* open connections per forward */
#define FWD_PAIR_TIMEOUT_S 30 /* kubelet's stream creation timeout */
#define FWD_MAX_SPDY_FRAME (1 << 20)

struct fwd_conn {
	struct fwd_conn *next, *prev;
	struct api_fwd *f;
	uint16_t port;
	int index;	     /* channel protocol: the port's position */
	char request_id[32]; /* SPDY: pairs the two streams */
	uint32_t data_id, error_id;
	bool data_reset, error_reset; /* the client reset that stream: nothing more on it */
	struct event *pair_timer;
	bool queued; /* waiting for a socket from the helper */
	int family;  /* AF_INET, then AF_INET6 */
	int err4;    /* why IPv4 failed */
	struct bufferevent *bev;
	bool connected, client_fin, shut_wr;
	struct evbuffer *early; /* client bytes before the connection is up */
};

struct api_fwd {
	struct api_fwd *next, *prev;
	struct api_server *srv;
	struct api_ws *ws;
	bool spdy, ending;
	char ns[256], name[256], uid[64], desc[520];
	struct store_watch *watch;
	int helper; /* our end of the socketpair to the netns thread */
	struct event *helper_ev;
	struct fwd_conn *queue[64]; /* connections waiting for a socket, in request order */
	size_t qhead, qlen;
	struct fwd_conn *conns;
	size_t nconns;
	bool paused, client_paused;
	uint8_t *scratch; /* one outgoing frame */
	/* SPDY */
	struct evbuffer *in;
	struct spdy_zctx *zin, *zout;
	uint32_t last_stream;
	/* channel protocol */
	int nports, ports_done;
};

static void conn_start(struct fwd_conn *c);
static void fwd_maybe_resume_client(struct api_fwd *f);
static void fwd_end(struct api_fwd *f, uint32_t goaway_status);

/* ---------- the helper thread in the pod's network namespace ---------- */

struct helper_arg {
	int sock;
	char *netns;
};

static void helper_reply(int sock, int status, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = &status, .iov_len = sizeof(status)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	(void)sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/* Enter the netns once, then answer each request (one byte: 4 or 6) with a new unconnected
 * TCP socket of that family, or -errno. Ends when the event loop closes its end; the thread's
 * netns reference goes with it. */
static void *helper_main(void *arg)
{
	struct helper_arg *a = arg;
	int fd = open(a->netns, O_RDONLY | O_CLOEXEC), entered = 0;

	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		entered = -errno;
	if (fd >= 0)
		close(fd);
	for (;;) {
		uint8_t req;
		ssize_t n = recv(a->sock, &req, 1, 0);
		int s;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (entered < 0) {
			helper_reply(a->sock, entered, -1);
			continue;
		}
		s = socket(req == 6 ? AF_INET6 : AF_INET,
			   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		helper_reply(a->sock, s < 0 ? -errno : 0, s);
		if (s >= 0)
			close(s);
	}
	close(a->sock);
	free(a->netns);
	free(a);
	return NULL;
}

static int helper_start(struct api_fwd *f, const char *netns)
{
	struct helper_arg *a = calloc(1, sizeof(*a));
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t tid;
	int sv[2], r;

	if (!a || !(a->netns = strdup(netns))) {
		free(a);
		return -ENOMEM;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		free(a->netns);
		free(a);
		return r;
	}
	a->sock = sv[1];
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* signals stay with the daemon's own threads */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&tid, &attr, helper_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r < 0) {
		close(sv[0]);
		close(sv[1]);
		free(a->netns);
		free(a);
		return r;
	}
	evutil_make_socket_nonblocking(sv[0]);
	f->helper = sv[0];
	return 0;
}

/* ---------- output to the client ---------- */

static void send_frame(struct api_fwd *f, const void *p, size_t n)
{
	api_ws_send(f->ws, WS_OP_BINARY, -1, p, n);
}

static void spdy_data(struct api_fwd *f, uint32_t id, uint8_t flags, const void *p, size_t n)
{
	spdy_data_header(id, flags, (uint32_t)n, f->scratch);
	if (n)
		memcpy(f->scratch + SPDY_HEADER_LEN, p, n);
	send_frame(f, f->scratch, SPDY_HEADER_LEN + n);
}

static void spdy_rst(struct api_fwd *f, uint32_t id, enum spdy_rst_status st)
{
	uint8_t b[16];

	spdy_rst_stream(id, st, b);
	send_frame(f, b, sizeof(b));
}

static int spdy_reply(struct api_fwd *f, uint32_t id)
{
	_cleanup_free_ uint8_t *blk = NULL;
	size_t len = 0;
	int r = spdy_headers_encode(f->zout, NULL, 0, &blk, &len);

	if (r < 0)
		return r;
	if (len + 12 > FWD_CHUNK + 16)
		return -EMSGSIZE;
	spdy_control_header(SPDY_SYN_REPLY, 0, (uint32_t)(4 + len), f->scratch);
	f->scratch[8] = (uint8_t)(id >> 24 & 0x7f);
	f->scratch[9] = (uint8_t)(id >> 16);
	f->scratch[10] = (uint8_t)(id >> 8);
	f->scratch[11] = (uint8_t)id;
	memcpy(f->scratch + 12, blk, len);
	send_frame(f, f->scratch, 12 + len);
	return 0;
}

/* Bytes from the pod to the client. */
static void to_client(struct fwd_conn *c, const uint8_t *p, size_t n)
{
	struct api_fwd *f = c->f;

	while (n) {
		size_t k = n > FWD_CHUNK ? FWD_CHUNK : n;

		if (f->spdy)
			spdy_data(f, c->data_id, 0, p, k);
		else
			api_ws_send(f->ws, WS_OP_BINARY, 2 * c->index, p, k);
		p += k;
		n -= k;
	}
}

/* ---------- one forwarded connection ---------- */

static void queue_cancel(struct fwd_conn *c)
{
	struct api_fwd *f = c->f;

	if (!c->queued)
		return;
	for (size_t i = 0; i < f->qlen; i++)
		if (f->queue[(f->qhead + i) % ARRAY_SIZE(f->queue)] == c)
			f->queue[(f->qhead + i) % ARRAY_SIZE(f->queue)] = NULL;
	c->queued = false;
}

static void conn_free(struct fwd_conn *c)
{
	struct api_fwd *f = c->f;

	queue_cancel(c);
	if (c->prev)
		c->prev->next = c->next;
	else if (f->conns == c)
		f->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	f->nconns--;
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->early)
		evbuffer_free(c->early);
	if (c->pair_timer)
		event_free(c->pair_timer);
	free(c);
	/* what it held back from the client is gone with it */
	fwd_maybe_resume_client(f);
}

/*
 * The connection is over: its error (kubelet's message) goes on the error stream or channel,
 * the streams are finished, and it is forgotten (later frames for its streams are ignored).
 * The channel protocol closes the WebSocket once every port is done, like kubelet.
 */
static void conn_finish(struct fwd_conn *c, const char *errmsg)
{
	struct api_fwd *f = c->f;

	if (errmsg)
		log_info("api: portforward %s: %s", f->desc, errmsg);
	if (f->spdy) {
		if (c->error_id && !c->error_reset && errmsg)
			spdy_data(f, c->error_id, 0, errmsg, strlen(errmsg));
		if (c->data_id && !c->data_reset)
			spdy_data(f, c->data_id, SPDY_FLAG_FIN, NULL, 0);
		if (c->error_id && !c->error_reset)
			spdy_data(f, c->error_id, SPDY_FLAG_FIN, NULL, 0);
		conn_free(c);
		return;
	}
	if (errmsg)
		api_ws_send(f->ws, WS_OP_BINARY, 2 * c->index + 1, errmsg, strlen(errmsg));
	conn_free(c);
	if (++f->ports_done == f->nports && !f->ending)
		fwd_end(f, 0);
}

static void conn_failed(struct fwd_conn *c, int err4, int err6)
{
	struct api_fwd *f = c->f;
	char msg[600];

	if (err6)
		snprintf(msg, sizeof(msg),
			 "error forwarding port %u to pod %s, uid %s: failed to connect to "
			 "localhost:%u inside the pod's network namespace, IPv4: %s IPv6: %s",
			 c->port, f->name, f->uid, c->port, strerror(err4), strerror(err6));
	else
		snprintf(msg, sizeof(msg),
			 "error forwarding port %u to pod %s, uid %s: failed to connect to "
			 "localhost:%u inside the pod's network namespace: %s",
			 c->port, f->name, f->uid, c->port, strerror(err4));
	conn_finish(c, msg);
}

static void fwd_pause_client(struct api_fwd *f, bool pause)
{
	if (f->client_paused == pause)
		return;
	f->client_paused = pause;
	api_ws_read_enable(f->ws, !pause);
}

static void maybe_shut_wr(struct fwd_conn *c)
{
	if (c->client_fin && c->connected && !c->shut_wr &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		c->shut_wr = true;
		shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	}
}

/* Bytes from the client to the pod. */
static void conn_write(struct fwd_conn *c, const uint8_t *p, size_t n)
{
	if (c->client_fin || !n)
		return;
	if (!c->bev || !c->connected) {
		if (!c->early && !(c->early = evbuffer_new()))
			return;
		evbuffer_add(c->early, p, n);
		if (evbuffer_get_length(c->early) > FWD_MAX_POD_BACKLOG)
			fwd_pause_client(c->f, true);
		return;
	}
	bufferevent_write(c->bev, p, n);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > FWD_MAX_POD_BACKLOG)
		fwd_pause_client(c->f, true);
}

static void conn_client_fin(struct fwd_conn *c)
{
	c->client_fin = true;
	if (c->bev)
		maybe_shut_wr(c);
}

static void pod_read_cb(struct bufferevent *bev, void *arg)
{
	struct fwd_conn *c = arg;
	struct api_fwd *f = c->f;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;

	while ((n = evbuffer_get_length(in)) > 0) {
		size_t k = n > FWD_CHUNK ? FWD_CHUNK : n;

		to_client(c, evbuffer_pullup(in, (ev_ssize_t)k), k);
		evbuffer_drain(in, k);
	}
	if (!f->paused && api_ws_backlog(f->ws) > FWD_MAX_BACKLOG) {
		f->paused = true;
		for (struct fwd_conn *x = f->conns; x; x = x->next)
			if (x->bev)
				bufferevent_disable(x->bev, EV_READ);
	}
}

/* Read from the client again once no pod socket holds more than half the limit. */
static void fwd_maybe_resume_client(struct api_fwd *f)
{
	if (!f->client_paused)
		return;
	for (struct fwd_conn *x = f->conns; x; x = x->next)
		if ((x->bev && evbuffer_get_length(bufferevent_get_output(x->bev)) >
				   FWD_MAX_POD_BACKLOG / 2) ||
		    (x->early && evbuffer_get_length(x->early) > FWD_MAX_POD_BACKLOG / 2))
			return;
	fwd_pause_client(f, false);
}

static void pod_write_cb(struct bufferevent *bev, void *arg)
{
	struct fwd_conn *c = arg;

	maybe_shut_wr(c);
	fwd_maybe_resume_client(c->f);
}

static void pod_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fwd_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		c->connected = true;
		if (c->early) {
			bufferevent_write_buffer(bev, c->early);
			evbuffer_free(c->early);
			c->early = NULL;
		}
		maybe_shut_wr(c);
		if (!c->f->paused)
			bufferevent_enable(bev, EV_READ);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (!c->connected) {
		int err = EVUTIL_SOCKET_ERROR() ?: ECONNREFUSED;

		bufferevent_free(c->bev);
		c->bev = NULL;
		if (c->family == AF_INET) {
			/* like containerd: a server may listen on ::1 only */
			c->err4 = err;
			c->family = AF_INET6;
			conn_start(c);
			return;
		}
		conn_failed(c, c->err4, err);
		return;
	}
	/* the pod's side ended (or broke): what it sent is forwarded, then both streams end */
	pod_read_cb(bev, c);
	conn_finish(c, NULL);
}

/* A socket from the helper for the connection at the head of the queue. */
static void got_socket(struct fwd_conn *c, int status, int fd)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET};
	struct api_fwd *f = c->f;

	if (status < 0) {
		char msg[600];

		snprintf(msg, sizeof(msg),
			 "error forwarding port %u to pod %s, uid %s: cannot enter the pod's "
			 "network namespace: %s",
			 c->port, f->name, f->uid, strerror(-status));
		conn_finish(c, msg);
		return;
	}
	c->bev = bufferevent_socket_new(f->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		conn_failed(c, ENOMEM, 0);
		return;
	}
	bufferevent_setcb(c->bev, pod_read_cb, pod_write_cb, pod_event_cb, c);
	if (c->family == AF_INET) {
		a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a4.sin_port = htons(c->port);
		if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&a4, sizeof(a4)) == 0)
			return;
	} else {
		a6.sin6_port = htons(c->port);
		if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&a6, sizeof(a6)) == 0)
			return;
	}
	pod_event_cb(c->bev, BEV_EVENT_ERROR, c);
}

static void on_helper(evutil_socket_t fd, short what, void *arg)
{
	struct api_fwd *f = arg;

	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		int status = 0, got = -1;
		struct iovec iov = {.iov_base = &status, .iov_len = sizeof(status)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf)};
		struct cmsghdr *cm;
		struct fwd_conn *c;
		ssize_t n = recvmsg(f->helper, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* EAGAIN; the thread never exits first */
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
				memcpy(&got, CMSG_DATA(cm), sizeof(int));
		if (!f->qlen) {
			if (got >= 0)
				close(got);
			continue;
		}
		c = f->queue[f->qhead];
		f->qhead = (f->qhead + 1) % ARRAY_SIZE(f->queue);
		f->qlen--;
		if (!c) { /* finished while it waited */
			if (got >= 0)
				close(got);
			continue;
		}
		c->queued = false;
		if (status == 0 && got < 0)
			status = -EIO;
		got_socket(c, status, got);
	}
}

/* Ask the helper for a socket of c->family (set to AF_INET on the first try). */
static void conn_start(struct fwd_conn *c)
{
	struct api_fwd *f = c->f;
	uint8_t req;

	if (!c->family)
		c->family = AF_INET;
	req = c->family == AF_INET6 ? 6 : 4;
	if (f->qlen == ARRAY_SIZE(f->queue) || send(f->helper, &req, 1, MSG_NOSIGNAL) != 1) {
		conn_failed(c, f->qlen == ARRAY_SIZE(f->queue) ? EAGAIN : errno, 0);
		return;
	}
	f->queue[(f->qhead + f->qlen) % ARRAY_SIZE(f->queue)] = c;
	f->qlen++;
	c->queued = true;
}

static struct fwd_conn *conn_new(struct api_fwd *f)
{
	struct fwd_conn *c;

	if (f->nconns >= FWD_MAX_CONNS || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->f = f;
	c->next = f->conns;
	if (c->next)
		c->next->prev = c;
	f->conns = c;
	f->nconns++;
	return c;
}

/* ---------- SPDY ---------- */

static void on_pair_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fwd_conn *c = arg;
	char msg[200];

	snprintf(msg, sizeof(msg), "timed out waiting for streams of request %s", c->request_id);
	conn_finish(c, msg);
}

static struct fwd_conn *conn_by_stream(struct api_fwd *f, uint32_t id, bool *is_data)
{
	for (struct fwd_conn *c = f->conns; c; c = c->next) {
		if (c->data_id == id || c->error_id == id) {
			*is_data = c->data_id == id;
			return c;
		}
	}
	return NULL;
}

static bool parse_port(const char *s, uint16_t *ret)
{
	char *end;
	unsigned long v;

	if (strempty(s))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535 || *s == '-' || *s == '+')
		return false;
	*ret = (uint16_t)v;
	return true;
}

static void syn_stream(struct api_fwd *f, const struct spdy_frame *fr)
{
	struct spdy_headers h = {0};
	const char *type, *port_s, *rid;
	struct fwd_conn *c = NULL;
	bool is_error;
	uint16_t port;
	char derived[16];
	int r;

	r = spdy_headers_decode(f->zin, fr->payload, fr->payload_len, &h);
	if (r < 0) {
		/* the compression context is lost with it: the connection cannot go on */
		log_warn("api: portforward %s: unreadable SPDY header block: %s", f->desc,
			 strerror(-r));
		fwd_end(f, 1);
		return;
	}
	if (fr->stream_id <= f->last_stream || !(fr->stream_id & 1)) {
		spdy_rst(f, fr->stream_id, SPDY_RST_PROTOCOL_ERROR);
		goto out;
	}
	f->last_stream = fr->stream_id;
	type = spdy_headers_get(&h, "streamtype");
	port_s = spdy_headers_get(&h, "port");
	rid = spdy_headers_get(&h, "requestid");
	if (!parse_port(port_s, &port) || !type ||
	    (!streq(type, "error") && !streq(type, "data"))) {
		log_warn("api: portforward %s: stream %u refused: port \"%s\", streamType \"%s\"",
			 f->desc, fr->stream_id, port_s ?: "", type ?: "");
		spdy_rst(f, fr->stream_id, SPDY_RST_CANCEL);
		goto out;
	}
	is_error = streq(type, "error");
	if (strempty(rid)) {
		/* clients older than request ids: kubelet's guess from consecutive stream ids */
		snprintf(derived, sizeof(derived), "%u",
			 is_error ? fr->stream_id : fr->stream_id - 2);
		rid = derived;
	}
	for (struct fwd_conn *x = f->conns; x; x = x->next)
		if (streq(x->request_id, rid)) {
			c = x;
			break;
		}
	if (c && (is_error ? c->error_id : c->data_id)) {
		/* that stream of the pair is there already */
		spdy_rst(f, fr->stream_id, SPDY_RST_PROTOCOL_ERROR);
		goto out;
	}
	if (!c) {
		struct timeval tv = {FWD_PAIR_TIMEOUT_S, 0};

		c = conn_new(f);
		if (!c) {
			spdy_rst(f, fr->stream_id, SPDY_RST_REFUSED_STREAM);
			goto out;
		}
		snprintf(c->request_id, sizeof(c->request_id), "%s", rid);
		c->port = port;
		c->pair_timer = evtimer_new(f->srv->base, on_pair_timeout, c);
		if (c->pair_timer)
			evtimer_add(c->pair_timer, &tv);
	}
	if (is_error) {
		c->error_id = fr->stream_id;
	} else {
		c->data_id = fr->stream_id;
		c->port = port; /* kubelet forwards to the data stream's port */
	}
	if (spdy_reply(f, fr->stream_id) < 0) {
		fwd_end(f, 2);
		goto out;
	}
	if (!is_error && (fr->flags & SPDY_FLAG_FIN))
		conn_client_fin(c);
	if (c->data_id && c->error_id) {
		if (c->pair_timer) {
			event_free(c->pair_timer);
			c->pair_timer = NULL;
		}
		conn_start(c);
	}
out:
	spdy_headers_done(&h);
}

static void spdy_frame(struct api_fwd *f, const struct spdy_frame *fr)
{
	struct fwd_conn *c;
	bool is_data = false;

	if (!fr->control) {
		c = conn_by_stream(f, fr->stream_id, &is_data);
		if (!c || !is_data)
			return; /* finished streams, the error stream kubectl closes at once */
		conn_write(c, fr->payload, fr->payload_len);
		if (fr->flags & SPDY_FLAG_FIN)
			conn_client_fin(c);
		return;
	}
	switch (fr->type) {
	case SPDY_SYN_STREAM:
		syn_stream(f, fr);
		break;
	case SPDY_RST_STREAM:
		c = conn_by_stream(f, fr->stream_id, &is_data);
		if (!c)
			break;
		if (is_data)
			c->data_reset = true;
		else
			c->error_reset = true;
		conn_finish(c, NULL);
		break;
	case SPDY_PING:
		/* the client's pings have odd ids; answer with the same frame */
		if (fr->stream_id & 1) {
			uint8_t b[12];

			spdy_ping(fr->stream_id, b);
			send_frame(f, b, sizeof(b));
		}
		break;
	case SPDY_GOAWAY:
		fwd_end(f, 0);
		break;
	default:
		/* SETTINGS, WINDOW_UPDATE (spdystream does no flow control), HEADERS */
		break;
	}
}

static void spdy_input(struct api_fwd *f)
{
	while (!f->ending) {
		size_t len = evbuffer_get_length(f->in), need;
		struct spdy_frame fr;
		uint8_t *p;
		int r;

		if (len < SPDY_HEADER_LEN)
			return;
		p = evbuffer_pullup(f->in, SPDY_HEADER_LEN);
		need = SPDY_HEADER_LEN + ((size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7]);
		if (need > SPDY_HEADER_LEN + FWD_MAX_SPDY_FRAME) {
			log_warn("api: portforward %s: SPDY frame of %zu bytes", f->desc, need);
			fwd_end(f, 1);
			return;
		}
		if (len < need)
			return;
		p = evbuffer_pullup(f->in, (ev_ssize_t)need);
		r = spdy_frame_parse(p, need, FWD_MAX_SPDY_FRAME, &fr);
		if (r <= 0) {
			log_warn("api: portforward %s: bad SPDY frame", f->desc);
			fwd_end(f, 1);
			return;
		}
		spdy_frame(f, &fr);
		evbuffer_drain(f->in, need);
	}
}

/* ---------- the session ---------- */

static void fwd_free(struct api_fwd *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else if (f->srv->fwds == f)
		f->srv->fwds = f->next;
	if (f->next)
		f->next->prev = f->prev;
	if (f->watch)
		store_watch_cancel(f->watch);
	while (f->conns)
		conn_free(f->conns);
	if (f->helper_ev)
		event_free(f->helper_ev);
	if (f->helper >= 0)
		close(f->helper); /* the thread sees EOF and exits */
	if (f->in)
		evbuffer_free(f->in);
	spdy_zctx_free(f->zin);
	spdy_zctx_free(f->zout);
	free(f->scratch);
	api_ws_free(f->ws);
	free(f);
}

/* End the whole forward: open connections are closed, their streams finished, then GOAWAY
 * (SPDY) and the WebSocket close; the session is freed once that is out (ws_closed). */
static void fwd_end(struct api_fwd *f, uint32_t goaway_status)
{
	if (f->ending)
		return;
	f->ending = true;
	if (f->watch) {
		store_watch_cancel(f->watch);
		f->watch = NULL;
	}
	while (f->conns) {
		struct fwd_conn *c = f->conns;

		if (f->spdy) {
			conn_finish(c, NULL);
		} else {
			conn_free(c);
		}
	}
	if (f->spdy) {
		uint8_t b[16];

		spdy_goaway(f->last_stream, goaway_status, b);
		send_frame(f, b, sizeof(b));
	}
	api_ws_close(f->ws, 1000);
}

static void ws_data(void *arg, int channel, uint8_t *p, size_t n)
{
	struct api_fwd *f = arg;

	if (f->ending)
		return;
	if (f->spdy) {
		evbuffer_add(f->in, p, n);
		spdy_input(f);
		return;
	}
	/* channel protocol: data for port i on channel 2i; the error channels are ours */
	if (channel < 0 || channel % 2 || channel / 2 >= f->nports)
		return;
	for (struct fwd_conn *c = f->conns; c; c = c->next)
		if (c->index == channel / 2) {
			conn_write(c, p, n);
			return;
		}
}

static void ws_drained(void *arg)
{
	struct api_fwd *f = arg;

	if (!f->paused)
		return;
	f->paused = false;
	for (struct fwd_conn *c = f->conns; c; c = c->next)
		if (c->bev && c->connected)
			bufferevent_enable(c->bev, EV_READ);
}

static void ws_closed(void *arg)
{
	struct api_fwd *f = arg;

	log_debug("api: portforward %s: closed", f->desc);
	fwd_free(f);
}

static const struct api_ws_ops fwd_ws_ops = {
    .data = ws_data,
    .drained = ws_drained,
    .closed = ws_closed,
};

static void on_pod_event(const struct store_event *ev, void *arg)
{
	struct api_fwd *f = arg;
	const struct store_obj *o = ev->obj;

	if (ev->type != STORE_DELETED || !streq(o->ns, f->ns) || !streq(o->name, f->name) ||
	    (o->uid && !streq(o->uid, f->uid)))
		return;
	log_info("api: portforward %s: the pod is gone, ending the forward", f->desc);
	fwd_end(f, 0);
}

/* kubelet's ?ports= parsing for the channel protocol: repeated and/or comma-separated. */
static int parse_ports(struct api_req *r, uint16_t *ports, int *ret_n)
{
	struct evkeyval *kv;
	int n = 0;

	TAILQ_FOREACH(kv, &r->query, next)
	{
		_cleanup_free_ char *copy = NULL;
		char *save = NULL, *tok;

		if (!streq(kv->key, "ports"))
			continue;
		if (strempty(kv->value)) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "query parameter \"ports\" cannot be empty");
			return -EINVAL;
		}
		copy = strdup(kv->value);
		if (!copy) {
			api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
			return -ENOMEM;
		}
		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (!parse_port(tok, &ports[n])) {
				api_reply_status(r, 400, "BadRequest", NULL, NULL,
						 "unable to parse \"%s\" as a port (1-65535)", tok);
				return -EINVAL;
			}
			if (++n == FWD_MAX_PORTS) {
				api_reply_status(r, 400, "BadRequest", NULL, NULL,
						 "at most %d ports per WebSocket here",
						 FWD_MAX_PORTS - 1);
				return -EINVAL;
			}
		}
	}
	if (!n) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "query parameter \"ports\" is required");
		return -EINVAL;
	}
	*ret_n = n;
	return 0;
}

void api_podfwd_handle(struct api_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *offered = evhttp_find_header(h, "Sec-WebSocket-Protocol");
	const char *key, *proto = NULL;
	_cleanup_free_ char *netns = NULL;
	uint16_t ports[FWD_MAX_PORTS];
	struct store_obj *o = NULL;
	struct api_fwd *f;
	int nports = 0, rc;
	bool spdy = false;

	if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_POST) {
		api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
				 "the server does not allow this method on the requested resource");
		return;
	}
	if (!api_podio_ready(r, false))
		return;
	if (!r->srv->podio.netns_path) {
		api_reply_status(r, 503, "ServiceUnavailable", NULL, NULL,
				 "this node does not forward ports into pods");
		return;
	}
	rc = store_get(r->srv->store, "pods", r->ns, r->name, &o);
	if (rc < 0) {
		struct err e = {0};

		api_err_from_store(rc, r->res, r->name, &e);
		api_reply_err(r, rc, &e);
		return;
	}
	rc = r->srv->podio.netns_path(r->srv->podio.ud, o->uid ?: "", &netns);
	if (rc < 0) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "pod %s has no network on node %s (not running here, or not yet): "
				 "cannot forward ports to it",
				 r->name, r->srv->node_name ?: "");
		store_obj_unref(o);
		return;
	}
	if (api_ws_spdy_request(r)) {
		api_reply_status(
		    r, 400, "BadRequest", NULL, NULL,
		    "port-forward over %s is not supported by shoal: use a client that "
		    "speaks WebSocket, e.g. kubectl >= 1.31 (SPDY tunneled in a "
		    "WebSocket, " FWD_TUNNEL_PROTO ") or client-node (" FWD_CHANNEL_PROTO ")",
		    evhttp_find_header(h, "Upgrade"));
		store_obj_unref(o);
		return;
	}
	key = api_ws_upgrade_key(r);
	if (!key) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "Upgrade request required (WebSocket, " FWD_TUNNEL_PROTO
				 " or " FWD_CHANNEL_PROTO ")");
		store_obj_unref(o);
		return;
	}
	if (ws_header_has_token(offered, FWD_TUNNEL_PROTO)) {
		spdy = true;
		proto = FWD_TUNNEL_PROTO;
	} else if (ws_header_has_token(offered, FWD_CHANNEL_PROTO) || strempty(offered)) {
		proto = strempty(offered) ? NULL : FWD_CHANNEL_PROTO;
	} else {
		api_reply_status(
		    r, 400, "BadRequest", NULL, NULL,
		    "no supported stream protocol in Sec-WebSocket-Protocol \"%.200s\" "
		    "(shoal serves " FWD_TUNNEL_PROTO " and " FWD_CHANNEL_PROTO ")",
		    offered);
		store_obj_unref(o);
		return;
	}
	if (!spdy && parse_ports(r, ports, &nports) < 0) {
		store_obj_unref(o);
		return;
	}

	f = calloc(1, sizeof(*f));
	if (!f) {
		store_obj_unref(o);
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return;
	}
	f->srv = r->srv;
	f->helper = -1;
	f->spdy = spdy;
	snprintf(f->ns, sizeof(f->ns), "%s", r->ns);
	snprintf(f->name, sizeof(f->name), "%s", r->name);
	snprintf(f->uid, sizeof(f->uid), "%s", o->uid ?: "");
	snprintf(f->desc, sizeof(f->desc), "%s/%s", r->ns, r->name);
	store_obj_unref(o);
	rc = -ENOMEM;
	f->scratch = malloc(FWD_CHUNK + 64);
	if (!f->scratch ||
	    (spdy && (!(f->in = evbuffer_new()) || spdy_zctx_new(false, &f->zin) < 0 ||
		      spdy_zctx_new(true, &f->zout) < 0)))
		goto fail;
	rc = helper_start(f, netns);
	if (rc < 0)
		goto fail;
	f->helper_ev = event_new(r->srv->base, f->helper, EV_READ | EV_PERSIST, on_helper, f);
	if (!f->helper_ev || event_add(f->helper_ev, NULL) < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = store_watch_add(r->srv->store, "pods", 0, on_pod_event, f, &f->watch);
	if (rc < 0)
		goto fail;
	if (api_ws_accept(r, key, proto, !spdy, &fwd_ws_ops, f, f->desc, &f->ws) < 0) {
		fwd_free(f);
		return;
	}
	f->next = r->srv->fwds;
	if (f->next)
		f->next->prev = f;
	r->srv->fwds = f;
	log_info("api: portforward %s (%s)", f->desc, proto ?: "channels");
	if (!spdy) {
		f->nports = nports;
		for (int i = 0; i < nports; i++) {
			struct fwd_conn *c = conn_new(f);
			uint8_t le[2] = {(uint8_t)ports[i], (uint8_t)(ports[i] >> 8)};

			/* kubelet: the first message of each channel is its port */
			api_ws_send(f->ws, WS_OP_BINARY, 2 * i, le, 2);
			api_ws_send(f->ws, WS_OP_BINARY, 2 * i + 1, le, 2);
			if (!c) {
				fwd_end(f, 0);
				return;
			}
			c->index = i;
			c->port = ports[i];
		}
		/* by index: a failure can finish connections (and the forward) as we go */
		for (int i = 0; i < nports && !f->ending; i++)
			for (struct fwd_conn *c = f->conns; c; c = c->next)
				if (c->index == i) {
					conn_start(c);
					break;
				}
	}
	api_ws_start(f->ws);
	return;
fail:
	f->prev = f->next = NULL;
	fwd_free(f);
	api_reply_status(r, 500, "InternalError", NULL, NULL, "cannot start the forward: %s",
			 strerror(-rc));
}

void api_podfwd_free_all(struct api_server *srv)
{
	while (srv->fwds)
		fwd_free(srv->fwds);
}
