// SPDX-License-Identifier: Apache-2.0
/*
 * GET/POST /api/v1/namespaces/NS/pods/NAME/exec?command=..&container=..&stdin=..&stdout=..
 * &stderr=..&tty=..: `crun exec` in the container, its stdio carried over a WebSocket with the
 * Kubernetes channel protocol (v5.channel.k8s.io, v4.channel.k8s.io): binary messages whose
 * first byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 a Status when the command ends,
 * 4 terminal resize, 255 half-close in v5). kubectl >= 1.30 and client-node speak it;
 * shoalctl exec too. SPDY (older kubectl) is refused with a message.
 *
 * libevent 2.1 has no WebSocket server: after checking the request, the handler takes the
 * connection's bufferevent from evhttp, answers 101 itself and from then on owns the socket;
 * evhttp_connection_free() closes it at the end. The command's pipes (or pty master) are
 * bufferevents on the same loop, its exit is seen through a pidfd.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <event2/bufferevent.h>

#include "api/server-internal.h"
#include "daemon/crun.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/ws.h"

#define EXEC_MAX_BACKLOG (1 << 20) /* pause the command's output while the client lags */
#define EXEC_DRAIN_MS 300          /* after exit: how long to wait for the pipes' EOF */
#define EXEC_MAX_ARGS 60

struct api_exec {
	struct api_exec *next, *prev;
	struct api_server *srv;
	struct api_ws *ws; /* NULL once the client is gone */
	int proto; /* 4 or 5 */
	bool tty;
	pid_t pid;
	int pidfd;
	struct event *pid_ev, *drain_ev;
	struct bufferevent *in, *out, *err; /* tty: out is the pty master, in == NULL */
	bool out_eof, err_eof, exited, finished;
	bool in_closing; /* v5 half-close: close stdin once flushed */
	int status; /* wait status */
	char desc[256];  /* "ns/pod[ctr]" for logs */
	char cmd[512];   /* for the Status message */
};

static void exec_unlink(struct api_exec *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else if (x->srv->execs == x)
		x->srv->execs = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->next = x->prev = NULL;
}

static void close_io(struct api_exec *x)
{
	if (x->in)
		bufferevent_free(x->in);
	if (x->out)
		bufferevent_free(x->out);
	if (x->err)
		bufferevent_free(x->err);
	x->in = x->out = x->err = NULL;
}

static void exec_free(struct api_exec *x)
{
	exec_unlink(x);
	close_io(x);
	if (x->pid_ev)
		event_free(x->pid_ev);
	if (x->drain_ev)
		event_free(x->drain_ev);
	if (x->pidfd >= 0)
		close(x->pidfd);
	api_ws_free(x->ws);
	free(x);
}

/* The client is gone: close our side of the command's stdio (a tty gets SIGHUP, pipes EOF or
 * EPIPE) and keep the session only until the command exits, to reap it. */
static void ws_closed(void *arg)
{
	struct api_exec *x = arg;

	x->ws = api_ws_free(x->ws);
	close_io(x);
	if (x->exited)
		exec_free(x);
}

static void send_status(struct api_exec *x)
{
	_cleanup_json_ cJSON *st = cJSON_CreateObject();
	_cleanup_free_ char *txt = NULL;
	int code = WIFEXITED(x->status) ? WEXITSTATUS(x->status)
					: 128 + (WIFSIGNALED(x->status) ? WTERMSIG(x->status) : 0);

	if (!st)
		return;
	cJSON_AddObjectToObject(st, "metadata");
	if (code == 0) {
		cJSON_AddStringToObject(st, "status", "Success");
	} else {
		char msg[700], num[16];
		cJSON *causes, *c;

		snprintf(msg, sizeof(msg),
			 "command terminated with non-zero exit code: error executing command "
			 "[%s], exit code %d",
			 x->cmd, code);
		snprintf(num, sizeof(num), "%d", code);
		cJSON_AddStringToObject(st, "status", "Failure");
		cJSON_AddStringToObject(st, "message", msg);
		cJSON_AddStringToObject(st, "reason", "NonZeroExitCode");
		causes = cJSON_AddArrayToObject(cJSON_AddObjectToObject(st, "details"), "causes");
		c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "reason", "ExitCode");
		cJSON_AddStringToObject(c, "message", num);
		cJSON_AddItemToArray(causes, c);
	}
	txt = cJSON_PrintUnformatted(st);
	if (txt)
		api_ws_send(x->ws, WS_OP_BINARY, WS_CH_ERROR, txt, strlen(txt));
	log_info("api: exec %s [%s] exited %d", x->desc, x->cmd, code);
}

static void forward(struct api_exec *x, struct bufferevent *from, int channel)
{
	struct evbuffer *in = bufferevent_get_input(from);
	size_t n;

	while ((n = evbuffer_get_length(in)) > 0) {
		size_t chunk = n > 65536 ? 65536 : n;
		api_ws_send(x->ws, WS_OP_BINARY, channel, evbuffer_pullup(in, (ev_ssize_t)chunk),
			    chunk);
		evbuffer_drain(in, chunk);
	}
}

/* The command exited and its output is drained: send the Status and close. */
static void maybe_finish(struct api_exec *x)
{
	if (x->finished || !x->exited)
		return;
	if (!(x->out_eof || !x->out) || !(x->err_eof || !x->err)) {
		struct timeval tv = { 0, EXEC_DRAIN_MS * 1000 };

		if (x->drain_ev && !evtimer_pending(x->drain_ev, NULL))
			evtimer_add(x->drain_ev, &tv);
		return;
	}
	x->finished = true;
	if (x->out)
		forward(x, x->out, 1);
	if (x->err)
		forward(x, x->err, 2);
	close_io(x);
	send_status(x);
	if (!x->ws) {
		exec_free(x);
		return;
	}
	/* ws_closed frees it once the frames are out */
	api_ws_close(x->ws, 1000);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct api_exec *x = arg;

	/* background processes keep the pipes open: stop waiting for them */
	x->out_eof = x->err_eof = true;
	maybe_finish(x);
}

static void on_pid(evutil_socket_t fd, short what, void *arg)
{
	struct api_exec *x = arg;

	if (waitpid(x->pid, &x->status, WNOHANG) <= 0)
		return;
	x->exited = true;
	event_del(x->pid_ev);
	if (!x->ws) {
		exec_free(x);
		return;
	}
	maybe_finish(x);
}

static void proc_read_cb(struct bufferevent *bev, void *arg)
{
	struct api_exec *x = arg;

	forward(x, bev, bev == x->err ? 2 : 1);
	if (api_ws_backlog(x->ws) > EXEC_MAX_BACKLOG) {
		if (x->out)
			bufferevent_disable(x->out, EV_READ);
		if (x->err)
			bufferevent_disable(x->err, EV_READ);
	}
}

static void proc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct api_exec *x = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (bev == x->in) {
		/* the command closed its stdin */
		bufferevent_free(x->in);
		x->in = NULL;
		return;
	}
	/* a pty master reads EIO once the last slave fd closed: that is its EOF */
	forward(x, bev, bev == x->err ? 2 : 1);
	if (bev == x->out)
		x->out_eof = true;
	else
		x->err_eof = true;
	bufferevent_disable(bev, EV_READ);
	maybe_finish(x);
}

static void stdin_close(struct api_exec *x)
{
	if (x->tty) {
		/* a terminal has no half-close: send its EOF character */
		if (x->out)
			bufferevent_write(x->out, "\x04", 1);
		return;
	}
	if (!x->in)
		return;
	if (evbuffer_get_length(bufferevent_get_output(x->in)) == 0) {
		bufferevent_free(x->in);
		x->in = NULL;
	} else {
		x->in_closing = true;
	}
}

static void in_write_cb(struct bufferevent *bev, void *arg)
{
	struct api_exec *x = arg;

	/* flushed: close now if a half-close was asked for */
	if (x->in_closing && bev == x->in) {
		bufferevent_free(x->in);
		x->in = NULL;
	}
}

static void resize(struct api_exec *x, const uint8_t *p, size_t n)
{
	_cleanup_json_ cJSON *j = cJSON_ParseWithLength((const char *)p, n);
	struct winsize ws = { 0 };

	if (!x->tty || !x->out || !j)
		return;
	ws.ws_col = (unsigned short)json_int(j, "Width", 0);
	ws.ws_row = (unsigned short)json_int(j, "Height", 0);
	if (ws.ws_col && ws.ws_row)
		(void)ioctl(bufferevent_getfd(x->out), TIOCSWINSZ, &ws);
}

static void channel_data(void *arg, int ch, uint8_t *p, size_t n)
{
	struct api_exec *x = arg;

	switch (ch) {
	case WS_CH_STDIN:
		if (x->tty && x->out)
			bufferevent_write(x->out, p, n);
		else if (x->in && !x->in_closing)
			bufferevent_write(x->in, p, n);
		break;
	case WS_CH_RESIZE:
		resize(x, p, n);
		break;
	case WS_CH_CLOSE:
		if (x->proto >= 5 && n >= 1 && p[0] == WS_CH_STDIN)
			stdin_close(x);
		break;
	default:
		break;
	}
}

static void ws_drained(void *arg)
{
	struct api_exec *x = arg;

	/* caught up: read the command's output again */
	if (x->out && !x->out_eof)
		bufferevent_enable(x->out, EV_READ);
	if (x->err && !x->err_eof)
		bufferevent_enable(x->err, EV_READ);
}

static const struct api_ws_ops exec_ws_ops = {
    .data = channel_data,
    .drained = ws_drained,
    .closed = ws_closed,
};

static struct bufferevent *pipe_bev(struct api_exec *x, int fd)
{
	struct bufferevent *b;

	evutil_make_socket_nonblocking(fd);
	b = bufferevent_socket_new(x->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!b) {
		close(fd);
		return NULL;
	}
	bufferevent_setcb(b, proc_read_cb, NULL, proc_event_cb, x);
	return b;
}

static const char *pick_protocol(const char *offered, int *ret)
{
	if (ws_header_has_token(offered, "v5.channel.k8s.io")) {
		*ret = 5;
		return "v5.channel.k8s.io";
	}
	if (ws_header_has_token(offered, "v4.channel.k8s.io")) {
		*ret = 4;
		return "v4.channel.k8s.io";
	}
	return NULL;
}

static int start_command(struct api_exec *x, const char *id, char **argv, bool want_in,
			 bool want_out, bool want_err, struct err *e)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int fds[3] = { -1, -1, -1 }, master = -1;
	int r = 0;

	if (!x->tty) {
		if ((want_in && pipe2(pin, O_CLOEXEC) < 0) ||
		    (want_out && pipe2(pout, O_CLOEXEC) < 0) ||
		    (want_err && pipe2(perr, O_CLOEXEC) < 0)) {
			r = -errno;
			goto out;
		}
		fds[0] = pin[0];
		fds[1] = pout[1];
		fds[2] = perr[1];
	}
	r = crun_exec(x->srv->podio.rt, id, argv, x->tty, fds, &x->pid, &master, e);
	if (r < 0)
		goto out;
	x->pidfd = (int)syscall(SYS_pidfd_open, x->pid, 0);
	if (x->pidfd < 0) {
		r = -errno;
		goto out;
	}
	x->pid_ev = event_new(x->srv->base, x->pidfd, EV_READ | EV_PERSIST, on_pid, x);
	x->drain_ev = evtimer_new(x->srv->base, on_drain_timeout, x);
	if (!x->pid_ev || !x->drain_ev || event_add(x->pid_ev, NULL) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (x->tty) {
		x->out = pipe_bev(x, master);
		master = -1;
		if (!x->out) {
			r = -ENOMEM;
			goto out;
		}
		x->err_eof = true;
	} else {
		if (pin[1] >= 0) {
			x->in = pipe_bev(x, pin[1]);
			pin[1] = -1;
			if (x->in)
				bufferevent_setcb(x->in, NULL, in_write_cb, proc_event_cb, x);
		}
		if (pout[0] >= 0) {
			x->out = pipe_bev(x, pout[0]);
			pout[0] = -1;
		}
		if (perr[0] >= 0) {
			x->err = pipe_bev(x, perr[0]);
			perr[0] = -1;
		}
		if ((want_in && !x->in) || (want_out && !x->out) || (want_err && !x->err)) {
			r = -ENOMEM;
			goto out;
		}
		x->out_eof = !x->out;
		x->err_eof = !x->err;
	}
out:
	/* the child's ends (it has its copies) and anything not handed to a bufferevent */
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0)
			close(pin[i]);
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
	if (master >= 0)
		close(master);
	if (r < 0 && x->pid > 0 && !x->pid_ev) {
		kill(x->pid, SIGKILL);
		waitpid(x->pid, NULL, 0);
		x->pid = 0;
	}
	return r;
}

static void reply_bad(struct api_req *r, int code, const char *fmt, const char *arg)
{
	api_reply_status(r, code, code == 400 ? "BadRequest" : NULL, NULL, NULL, fmt, arg);
}

void api_podexec_handle(struct api_req *r)
{
	_cleanup_(api_pod_ctr_done) struct api_pod_ctr c = { 0 };
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *key = api_ws_upgrade_key(r);
	const char *upgrade = evhttp_find_header(h, "Upgrade");
	const char *proto_name;
	_cleanup_free_ char *id = NULL;
	char *argv[EXEC_MAX_ARGS + 1];
	struct evkeyval *kv;
	struct err e = { 0 };
	struct api_exec *x;
	char accept[29];
	size_t argc = 0, o = 0;
	int proto = 0, rc;
	bool want_in, want_out, want_err, tty;

	if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_POST) {
		api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
				 "the server does not allow this method on the requested resource");
		return;
	}
	if (api_ws_spdy_request(r)) {
		reply_bad(r, 400,
			  "exec over %s is not supported by shoal: use a client that speaks "
			  "WebSocket (v5.channel.k8s.io), e.g. kubectl >= 1.30 or shoalctl exec",
			  upgrade);
		return;
	}
	if (!key) {
		reply_bad(r, 400, "%s", "Upgrade request required (WebSocket, v5.channel.k8s.io)");
		return;
	}
	proto_name = pick_protocol(evhttp_find_header(h, "Sec-WebSocket-Protocol"), &proto);
	if (!proto_name) {
		reply_bad(
		    r, 400,
			  "no supported stream protocol in Sec-WebSocket-Protocol \"%.200s\" (shoal "
			  "serves v5.channel.k8s.io and v4.channel.k8s.io)",
			  evhttp_find_header(h, "Sec-WebSocket-Protocol") ?: "");
		return;
	}
	TAILQ_FOREACH(kv, &r->query, next)
	{
		if (!streq(kv->key, "command"))
			continue;
		if (argc == EXEC_MAX_ARGS) {
			reply_bad(r, 400, "a command has at most %s arguments here", "60");
			return;
		}
		argv[argc++] = kv->value;
	}
	argv[argc] = NULL;
	if (!argc) {
		reply_bad(r, 400, "%s", "you must specify at least 1 command");
		return;
	}
	want_in = api_query_bool(r, "stdin") || api_query_bool(r, "input");
	want_out = api_query_bool(r, "stdout") || api_query_bool(r, "output");
	want_err = api_query_bool(r, "stderr") || api_query_bool(r, "error");
	tty = api_query_bool(r, "tty");
	if (!want_in && !want_out && !want_err) {
		reply_bad(r, 400, "%s", "you must specify at least one of stdin, stdout, stderr");
		return;
	}
	if (tty && want_err)
		want_err = false; /* a terminal merges stderr into stdout, like kubelet */
	if (!api_podio_ready(r, false))
		return;
	if (!r->srv->podio.rt) {
		api_reply_status(r, 503, "ServiceUnavailable", NULL, NULL,
				 "this node does not run commands in containers");
		return;
	}
	if (api_pod_ctr_get(r, api_query(r, "container"), &c) < 0)
		return;
	if (r->srv->podio.exec_id) {
		rc = r->srv->podio.exec_id(r->srv->podio.ud, &c.ref, &id);
		if (rc < 0)
			id = NULL;
	} else if (c.running && c.id) {
		id = strdup(c.id);
	}
	if (!id) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "container %s is not running in pod %s", c.ref.container, r->name);
		return;
	}
	if (ws_accept_key(key, accept) < 0) {
		reply_bad(r, 400, "%s", "invalid Sec-WebSocket-Key");
		return;
	}

	x = calloc(1, sizeof(*x));
	if (!x) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return;
	}
	x->srv = r->srv;
	x->pidfd = -1;
	x->proto = proto;
	x->tty = tty;
	snprintf(x->desc, sizeof(x->desc), "%s/%s[%s]", r->ns, r->name, c.ref.container);
	o = 0;
	for (size_t i = 0; i < argc && o < sizeof(x->cmd); i++)
		o += snprintf(x->cmd + o, sizeof(x->cmd) - o, "%s%s", i ? " " : "", argv[i]);
	rc = start_command(x, id, argv, want_in, want_out, want_err, &e);
	if (rc < 0) {
		close_io(x);
		if (x->pid_ev)
			event_free(x->pid_ev);
		if (x->drain_ev)
			event_free(x->drain_ev);
		if (x->pidfd >= 0)
			close(x->pidfd);
		free(x);
		if (!e.message[0])
			err_set(&e, -rc, 500, "InternalError", "cannot run the command: %s",
				strerror(-rc));
		if (!e.code)
			e.code = 500;
		api_reply_err(r, rc, &e);
		return;
	}

	/* take the connection over from evhttp */
	if (api_ws_accept(r, key, proto_name, true, &exec_ws_ops, x, x->desc, &x->ws) < 0) {
		kill(x->pid, SIGKILL);
		waitpid(x->pid, NULL, 0);
		exec_free(x);
		return;
	}
	x->next = r->srv->execs;
	if (x->next)
		x->next->prev = x;
	r->srv->execs = x;
	if (x->out)
		bufferevent_enable(x->out, EV_READ | EV_WRITE);
	if (x->err)
		bufferevent_enable(x->err, EV_READ);
	if (x->in)
		bufferevent_enable(x->in, EV_WRITE);
	log_info("api: exec %s [%s]%s", x->desc, x->cmd, tty ? " (tty)" : "");
	api_ws_start(x->ws);
}

void api_podexec_free_all(struct api_server *srv)
{
	while (srv->execs) {
		struct api_exec *x = srv->execs;

		if (x->pid > 0 && !x->exited)
			kill(x->pid, SIGKILL);
		exec_free(x);
	}
}
