// SPDX-License-Identifier: Apache-2.0
/*
 * GET/POST /api/v1/namespaces/NS/pods/NAME/attach?container=&stdin=&stdout=&stderr=&tty=: the
 * running container's own stdio over a WebSocket with Kubernetes' channel protocol
 * (v5/v4.channel.k8s.io, as exec: 0 stdin, 1 stdout, 2 stderr, 3 the final Status).
 *
 * Output is what the container writes from now on, read from its CRI log file (the shim
 * writes every byte there first, so attach needs nothing from the shim for output): the file
 * is polled every 100 ms from its end, records go out on their stream's channel (a terminal's
 * output is stdout). Input: a container created with spec stdin reads from a FIFO its shim
 * keeps open (crun_stdin_path; for a terminal the shim copies it into the pty master), so
 * attaches come and go without the container seeing EOF, as with stdinOnce false. The stream
 * ends with a Success Status once the container instance has finished and its output is
 * sent, or when the pod is gone. Terminal resizes are not applied (the shim holds the master).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <event2/bufferevent.h>

#include "api/crilog.h"
#include "api/server-internal.h"
#include "daemon/crun.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/ws.h"

#define ATTACH_TICK_MS 100
#define ATTACH_CHECK_TICKS 5	      /* the container's state every 500 ms */
#define ATTACH_READ_MAX (256 * 1024)  /* per tick */
#define ATTACH_MAX_BACKLOG (1 << 20)  /* stop reading while the client is this far behind */
#define ATTACH_MAX_RECORD (64 * 1024) /* a longer "line" is not a record the shim wrote */

struct api_attach {
	struct api_attach *next, *prev;
	struct api_server *srv;
	struct api_ws *ws;
	int proto;
	bool tty, want_out, want_err;
	char *ns, *pod, *uid, *container;
	int restart_count;
	int log_fd;
	struct evbuffer *line;	/* a record not complete yet */
	struct bufferevent *in; /* the container's stdin FIFO, NULL without stdin */
	struct event *tick;
	unsigned ticks;
	bool finished, done;
	char desc[256];
};

static void attach_unlink(struct api_attach *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else if (a->srv->attaches == a)
		a->srv->attaches = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->next = a->prev = NULL;
}

static void attach_free(struct api_attach *a)
{
	attach_unlink(a);
	if (a->tick)
		event_free(a->tick);
	if (a->in)
		bufferevent_free(a->in);
	if (a->log_fd >= 0)
		close(a->log_fd);
	if (a->line)
		evbuffer_free(a->line);
	api_ws_free(a->ws);
	free(a->ns);
	free(a->pod);
	free(a->uid);
	free(a->container);
	free(a);
}

/* Has the attached instance finished (or the pod gone)? */
static bool instance_finished(struct api_attach *a)
{
	_cleanup_json_ cJSON *pod = NULL;
	struct store_obj *o = NULL;
	const cJSON *c, *cs = NULL;

	if (store_get(a->srv->store, "pods", a->ns, a->pod, &o) < 0)
		return true;
	pod = store_obj_parse(o);
	store_obj_unref(o);
	if (!pod || !streq(json_str(pod, "metadata.uid", ""), a->uid))
		return true;
	for (int i = 0; i < 2 && !cs; i++)
		cJSON_ArrayForEach(
		    c, json_path(pod,
				 i ? "status.initContainerStatuses"
				   : "status.containerStatuses")) if (streq(json_str(c, "name", ""),
									    a->container)) cs = c;
	return !cs || json_int(cs, "restartCount", 0) != a->restart_count ||
	       json_path(cs, "state.terminated") != NULL;
}

static void send_record(struct api_attach *a, const char *line, size_t len)
{
	struct crilog_rec rec;
	int ch;

	if (crilog_parse(line, len, &rec) < 0)
		return;
	ch = rec.is_stderr && !a->tty ? WS_CH_STDERR : WS_CH_STDOUT;
	if ((ch == WS_CH_STDOUT && !a->want_out) || (ch == WS_CH_STDERR && !a->want_err))
		return;
	if (rec.partial) {
		api_ws_send(a->ws, WS_OP_BINARY, ch, rec.msg, rec.msg_len);
	} else {
		/* one message: the line and its newline */
		char *buf = malloc(rec.msg_len + 1);

		if (!buf)
			return;
		memcpy(buf, rec.msg, rec.msg_len);
		buf[rec.msg_len] = '\n';
		api_ws_send(a->ws, WS_OP_BINARY, ch, buf, rec.msg_len + 1);
		free(buf);
	}
}

/* Read what the file has grown by (up to max) and send its complete records. */
static ssize_t pump(struct api_attach *a, size_t max)
{
	char buf[65536];
	size_t total = 0;

	while (total < max) {
		ssize_t n = read(a->log_fd, buf, sizeof(buf));
		struct evbuffer_ptr eol;

		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		total += (size_t)n;
		evbuffer_add(a->line, buf, (size_t)n);
		while ((eol = evbuffer_search(a->line, "\n", 1, NULL)).pos >= 0) {
			size_t len = (size_t)eol.pos;

			send_record(a, (const char *)evbuffer_pullup(a->line, (ev_ssize_t)len + 1),
				    len);
			evbuffer_drain(a->line, len + 1);
		}
		if (evbuffer_get_length(a->line) > ATTACH_MAX_RECORD)
			evbuffer_drain(a->line, evbuffer_get_length(a->line));
	}
	return (ssize_t)total;
}

static void finish(struct api_attach *a)
{
	static const char ok[] = "{\"metadata\":{},\"status\":\"Success\"}";

	if (a->done)
		return;
	a->done = true;
	event_del(a->tick);
	api_ws_send(a->ws, WS_OP_BINARY, WS_CH_ERROR, ok, strlen(ok));
	api_ws_close(a->ws, 1000); /* ws_closed frees it once the frame is out */
	log_info("api: attach %s: the container finished", a->desc);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct api_attach *a = arg;
	bool check = a->ticks++ % ATTACH_CHECK_TICKS == 0;
	ssize_t n;

	if (a->done || api_ws_backlog(a->ws) > ATTACH_MAX_BACKLOG)
		return;
	/* decide before reading: output written before the state changed is then read now */
	if (check && !a->finished)
		a->finished = instance_finished(a);
	n = pump(a, ATTACH_READ_MAX);
	if (n < 0) {
		log_warn("api: attach %s: read: %s", a->desc, strerror((int)-n));
		finish(a);
	} else if (a->finished && n < ATTACH_READ_MAX) {
		finish(a);
	}
}

static void ws_closed(void *arg)
{
	attach_free(arg);
}

static void in_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct api_attach *a = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* the shim is gone: the container is finishing */
		bufferevent_free(a->in);
		a->in = NULL;
	}
}

static void channel_data(void *arg, int ch, uint8_t *p, size_t n)
{
	struct api_attach *a = arg;

	if (ch == WS_CH_STDIN && a->in) {
		bufferevent_write(a->in, p, n);
	} else if (ch == WS_CH_CLOSE && a->proto >= 5 && n >= 1 && p[0] == WS_CH_STDIN && a->in) {
		/* this attach is done writing; the container's stdin stays open for others */
		if (a->tty)
			bufferevent_write(a->in, "\x04", 1);
		else if (evbuffer_get_length(bufferevent_get_output(a->in)) == 0) {
			bufferevent_free(a->in);
			a->in = NULL;
		}
	}
}

static const struct api_ws_ops attach_ws_ops = {
    .data = channel_data,
    .closed = ws_closed,
};

static int open_stdin(struct api_attach *a, const char *id)
{
	_cleanup_free_ char *path = NULL;
	int fd, r;

	r = crun_stdin_path(a->srv->podio.rt, id, &path);
	if (r < 0)
		return r;
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	a->in = bufferevent_socket_new(a->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!a->in) {
		close(fd);
		return -ENOMEM;
	}
	bufferevent_setcb(a->in, NULL, NULL, in_event_cb, a);
	return 0;
}

void api_podattach_handle(struct api_req *r)
{
	_cleanup_(api_pod_ctr_done) struct api_pod_ctr c = {0};
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *key = api_ws_upgrade_key(r), *offered, *proto_name = NULL;
	_cleanup_free_ char *id = NULL, *path = NULL;
	bool want_in, want_out, want_err, tty;
	struct api_attach *a = NULL;
	int proto = 0, rc;

	if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_POST) {
		api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
				 "the server does not allow this method on the requested resource");
		return;
	}
	if (api_ws_spdy_request(r)) {
		api_reply_status(
		    r, 400, "BadRequest", NULL, NULL,
		    "attach over %s is not supported by shoal: use a client that speaks "
		    "WebSocket (v5.channel.k8s.io), e.g. kubectl >= 1.30",
		    evhttp_find_header(h, "Upgrade"));
		return;
	}
	if (!key) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "Upgrade request required (WebSocket, v5.channel.k8s.io)");
		return;
	}
	offered = evhttp_find_header(h, "Sec-WebSocket-Protocol");
	if (ws_header_has_token(offered, "v5.channel.k8s.io"))
		proto = 5, proto_name = "v5.channel.k8s.io";
	else if (ws_header_has_token(offered, "v4.channel.k8s.io"))
		proto = 4, proto_name = "v4.channel.k8s.io";
	if (!proto_name) {
		api_reply_status(
		    r, 400, "BadRequest", NULL, NULL,
		    "no supported stream protocol in Sec-WebSocket-Protocol \"%.200s\" "
		    "(shoal serves v5.channel.k8s.io and v4.channel.k8s.io)",
		    offered ?: "");
		return;
	}
	want_in = api_query_bool(r, "stdin") || api_query_bool(r, "input");
	want_out = api_query_bool(r, "stdout") || api_query_bool(r, "output");
	want_err = api_query_bool(r, "stderr") || api_query_bool(r, "error");
	tty = api_query_bool(r, "tty");
	if (!want_in && !want_out && !want_err) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "you must specify at least one of stdin, stdout, stderr");
		return;
	}
	if (!api_podio_ready(r, false))
		return;
	if (!r->srv->podio.rt || !r->srv->podio.log_path) {
		api_reply_status(r, 503, "ServiceUnavailable", NULL, NULL,
				 "this node does not run containers");
		return;
	}
	if (api_pod_ctr_get(r, api_query(r, "container"), &c) < 0)
		return;
	if (r->srv->podio.exec_id) {
		if (r->srv->podio.exec_id(r->srv->podio.ud, &c.ref, &id) < 0)
			id = NULL;
	} else if (c.running && c.id) {
		id = strdup(c.id);
	}
	if (!id) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "container %s is not running in pod %s", c.ref.container, r->name);
		return;
	}
	if (want_in && !cJSON_IsTrue(cJSON_GetObjectItem(c.spec, "stdin"))) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "container %s in pod %s was not created with stdin: set "
				 "spec.containers[].stdin to attach to its input",
				 c.ref.container, r->name);
		return;
	}
	rc = r->srv->podio.log_path(r->srv->podio.ud, &c.ref, false, &path);
	if (rc < 0) {
		api_reply_status(r, 500, "InternalError", NULL, NULL,
				 "no log file for container %s in pod %s: %s", c.ref.container,
				 r->name, strerror(-rc));
		return;
	}

	a = calloc(1, sizeof(*a));
	if (!a)
		goto oom;
	a->srv = r->srv;
	a->log_fd = -1;
	a->proto = proto;
	/* the container's own terminal decides: its output is one stream either way */
	a->tty = cJSON_IsTrue(cJSON_GetObjectItem(c.spec, "tty"));
	a->want_out = want_out;
	a->want_err = want_err && !tty;
	a->restart_count = c.ref.restart_count;
	snprintf(a->desc, sizeof(a->desc), "%s/%s[%s]", r->ns, r->name, c.ref.container);
	a->ns = strdup(r->ns);
	a->pod = strdup(r->name);
	a->uid = strdup(c.ref.uid);
	a->container = strdup(c.ref.container);
	a->line = evbuffer_new();
	a->tick = event_new(r->srv->base, -1, EV_PERSIST, on_tick, a);
	if (!a->ns || !a->pod || !a->uid || !a->container || !a->line || !a->tick)
		goto oom;
	a->log_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (a->log_fd < 0 || lseek(a->log_fd, 0, SEEK_END) < 0) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "cannot open %s: %s", path,
				 strerror(errno));
		attach_free(a);
		return;
	}
	if (want_in) {
		rc = open_stdin(a, id);
		if (rc < 0) {
			api_reply_status(r, 500, "InternalError", NULL, NULL,
					 "cannot attach to the stdin of container %s in pod %s: %s",
					 c.ref.container, r->name, strerror(-rc));
			attach_free(a);
			return;
		}
	}
	if (api_ws_accept(r, key, proto_name, true, &attach_ws_ops, a, a->desc, &a->ws) < 0) {
		attach_free(a);
		return;
	}
	a->next = r->srv->attaches;
	if (a->next)
		a->next->prev = a;
	r->srv->attaches = a;
	if (a->in)
		bufferevent_enable(a->in, EV_WRITE);
	event_add(a->tick, &(struct timeval){0, ATTACH_TICK_MS * 1000});
	log_info("api: attach %s%s%s", a->desc, want_in ? " (stdin)" : "", a->tty ? " (tty)" : "");
	api_ws_start(a->ws);
	return;
oom:
	if (a)
		attach_free(a);
	api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
}

void api_podattach_free_all(struct api_server *srv)
{
	while (srv->attaches)
		attach_free(srv->attaches);
}
