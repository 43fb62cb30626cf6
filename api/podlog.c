// SPDX-License-Identifier: Apache-2.0
/*
 * GET /api/v1/namespaces/NS/pods/NAME/log: a container's CRI log file (written by its shim,
 * located by the pod manager through api_podio.log_path) as plain text, like kubelet serves
 * it. container, previous, timestamps, tailLines, sinceSeconds, sinceTime, limitBytes; with
 * follow=true a chunked response that polls the file and ends once the container instance has
 * finished and its file is drained (or the pod is gone, or limitBytes is reached).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <event2/bufferevent.h>

#include "api/crilog.h"
#include "api/server-internal.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#define LOG_TICK_MS 100
#define LOG_CHECK_TICKS 5         /* look at the container's state every 500 ms */
#define LOG_READ_MAX (256 * 1024) /* per tick */
#define LOG_MAX_BACKLOG (1 << 20) /* stop reading while the client is this far behind */

struct api_logstream {
	struct api_logstream *next, *prev;
	struct api_server *srv;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	char *ns, *pod, *uid, *container, *path;
	int restart_count;
	int fd;
	struct crilog_dec dec;
	struct event *tick;
	unsigned ticks;
	bool finished; /* the instance is done: end at the next EOF */
};

struct emit_ctx {
	struct evbuffer *out;
};

static void emit_cb(const char *buf, size_t len, void *ud)
{
	evbuffer_add(((struct emit_ctx *)ud)->out, buf, len);
}

/* Read from fd's position up to max bytes (0: to EOF) through the decoder into out. Returns
 * bytes read or -errno. */
static ssize_t log_pump(int fd, struct crilog_dec *d, struct evbuffer *out, size_t max)
{
	struct emit_ctx ctx = { .out = out };
	char buf[65536];
	size_t total = 0;

	while (!d->full && (!max || total < max)) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if (crilog_dec_feed(d, buf, (size_t)n, emit_cb, &ctx) < 0)
			return -ENOMEM;
		total += (size_t)n;
	}
	return (ssize_t)total;
}

/* Offset where the last n lines start: read growing windows from the end. */
static int tail_start(int fd, long n, off_t *ret)
{
	struct stat st;
	size_t win = 64 * 1024;

	if (fstat(fd, &st) < 0)
		return -errno;
	for (;;) {
		off_t start = st.st_size > (off_t)win ? st.st_size - (off_t)win : 0;
		size_t len = (size_t)(st.st_size - start);
		_cleanup_free_ char *buf = malloc(len ? len : 1);
		ssize_t got;
		long off;

		if (!buf)
			return -ENOMEM;
		got = pread(fd, buf, len, start);
		if (got < 0)
			return -errno;
		off = crilog_tail_offset(buf, (size_t)got, n, start == 0);
		if (off >= 0) {
			*ret = start + off;
			return 0;
		}
		win *= 4;
	}
}

static void stream_unlink(struct api_logstream *ls)
{
	struct api_server *srv = ls->srv;

	if (ls->prev)
		ls->prev->next = ls->next;
	else if (srv->logstreams == ls)
		srv->logstreams = ls->next;
	if (ls->next)
		ls->next->prev = ls->prev;
}

static void stream_free(struct api_logstream *ls)
{
	stream_unlink(ls);
	if (ls->tick)
		event_free(ls->tick);
	if (ls->fd >= 0)
		close(ls->fd);
	crilog_dec_done(&ls->dec);
	free(ls->ns);
	free(ls->pod);
	free(ls->uid);
	free(ls->container);
	free(ls->path);
	free(ls);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	stream_free(arg);
}

static void stream_end(struct api_logstream *ls)
{
	struct evhttp_request *req = ls->req;

	evhttp_connection_set_closecb(ls->evcon, NULL, NULL);
	stream_free(ls);
	evhttp_send_reply_end(req);
}

/* Has the instance being followed finished (or the pod gone)? */
static bool instance_finished(struct api_logstream *ls)
{
	_cleanup_json_ cJSON *pod = NULL;
	struct store_obj *o = NULL;
	const cJSON *cs = NULL;

	if (store_get(ls->srv->store, "pods", ls->ns, ls->pod, &o) < 0)
		return true;
	pod = store_obj_parse(o);
	store_obj_unref(o);
	if (!pod || !streq(json_str(pod, "metadata.uid", ""), ls->uid))
		return true;
	if (json_str(pod, "metadata.deletionTimestamp", NULL) &&
	    (streq(json_str(pod, "status.phase", ""), "Succeeded") ||
	     streq(json_str(pod, "status.phase", ""), "Failed")))
		return true;
	for (int i = 0; i < 2 && !cs; i++) {
		const cJSON *c;
		cJSON_ArrayForEach(c, json_path(pod, i ? "status.initContainerStatuses"
						       : "status.containerStatuses"))
			if (streq(json_str(c, "name", ""), ls->container))
				cs = c;
	}
	if (!cs)
		return false;
	return json_int(cs, "restartCount", 0) != ls->restart_count ||
	       json_path(cs, "state.terminated") != NULL;
}

static size_t backlog(struct api_logstream *ls)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(ls->evcon);

	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct api_logstream *ls = arg;
	struct evbuffer *out;
	ssize_t n = 0;
	bool check = ls->ticks++ % LOG_CHECK_TICKS == 0;

	if (backlog(ls) > LOG_MAX_BACKLOG)
		return;
	/* decide before reading: output written before the state changed is then read now */
	if (check && !ls->finished)
		ls->finished = instance_finished(ls);
	out = evbuffer_new();
	if (!out)
		return;
	n = log_pump(ls->fd, &ls->dec, out, LOG_READ_MAX);
	if (evbuffer_get_length(out))
		evhttp_send_reply_chunk(ls->req, out);
	evbuffer_free(out);
	if (n < 0) {
		log_warn("api: log %s/%s[%s]: read: %s", ls->ns, ls->pod, ls->container,
			 strerror((int)-n));
		stream_end(ls);
	} else if (ls->dec.full || (ls->finished && n < LOG_READ_MAX)) {
		stream_end(ls);
	}
}

struct log_opts {
	const char *container;
	bool follow, previous;
	long tail;       /* -1: all */
	int64_t since_ns;
	int64_t limit;
	bool timestamps;
};

static bool parse_long(struct api_req *r, const char *key, long min, long *ret)
{
	const char *v = api_query(r, key);
	char *end;
	long x;

	if (!v)
		return true;
	errno = 0;
	x = strtol(v, &end, 10);
	if (!*v || *end || errno || x < min) {
		api_reply_status(r, 422, "Invalid", NULL, NULL,
				 "PodLogOptions is invalid: %s: Invalid value: \"%s\": must be an "
				 "integer greater than or equal to %ld",
				 key, v, min);
		return false;
	}
	*ret = x;
	return true;
}

static bool parse_opts(struct api_req *r, struct log_opts *o)
{
	long since = -1, limit = -1;
	const char *st;

	*o = (struct log_opts){ .tail = -1 };
	o->container = api_query(r, "container");
	o->follow = api_query_bool(r, "follow");
	o->previous = api_query_bool(r, "previous");
	o->timestamps = api_query_bool(r, "timestamps");
	if (!parse_long(r, "tailLines", 0, &o->tail) || !parse_long(r, "sinceSeconds", 1, &since) ||
	    !parse_long(r, "limitBytes", 1, &limit))
		return false;
	st = api_query(r, "sinceTime");
	if (since > 0 && st) {
		api_reply_status(r, 422, "Invalid", NULL, NULL,
				 "PodLogOptions is invalid: sinceSeconds, sinceTime: at most one "
				 "of sinceTime or sinceSeconds may be specified");
		return false;
	}
	if (since > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		o->since_ns = ((int64_t)ts.tv_sec - since) * 1000000000LL + ts.tv_nsec;
	} else if (st && crilog_time_parse(st, strlen(st), &o->since_ns) < 0) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "sinceTime: invalid RFC 3339 time \"%.64s\"", st);
		return false;
	}
	o->limit = limit > 0 ? limit : 0;
	if (o->previous)
		o->follow = false; /* a finished instance has nothing more to say */
	return true;
}

static void text_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", "text/plain");
	evhttp_add_header(h, "Cache-Control", "no-cache, private");
}

void api_podlog_handle(struct api_req *r)
{
	_cleanup_(api_pod_ctr_done) struct api_pod_ctr c = { 0 };
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	struct api_podio *io = &r->srv->podio;
	struct crilog_dec dec = { 0 };
	struct evbuffer *out;
	struct log_opts o;
	off_t start = 0;
	ssize_t n;
	int rc;

	if (r->method != EVHTTP_REQ_GET) {
		api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
				 "the server does not allow this method on the requested resource");
		return;
	}
	if (!parse_opts(r, &o) || !api_podio_ready(r, false))
		return;
	if (!io->log_path) {
		api_reply_status(r, 503, "ServiceUnavailable", NULL, NULL,
				 "this node does not serve container logs");
		return;
	}
	if (api_pod_ctr_get(r, o.container, &c) < 0)
		return;
	if (o.previous && c.ref.restart_count == 0 && !json_path(c.status, "lastState.terminated")) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "previous terminated container \"%s\" in pod \"%s\" not found",
				 c.ref.container, r->name);
		return;
	}
	rc = io->log_path(io->ud, &c.ref, o.previous, &path);
	if (rc >= 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			rc = -errno;
	}
	if (rc < 0) {
		if (rc == -ENOENT && o.previous)
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "previous terminated container \"%s\" in pod \"%s\" not "
					 "found",
					 c.ref.container, r->name);
		else if (rc == -ENOENT && c.waiting)
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "container \"%s\" in pod \"%s\" is waiting to start: %s",
					 c.ref.container, r->name,
					 json_str(c.status, "state.waiting.reason",
						  "ContainerCreating"));
		else if (rc == -ENOENT)
			api_reply_status(r, 404, "NotFound", NULL, NULL,
					 "the log of container \"%s\" in pod \"%s\" is gone",
					 c.ref.container, r->name);
		else
			api_reply_status(r, 500, "InternalError", NULL, NULL,
					 "cannot read the log of container \"%s\": %s",
					 c.ref.container, strerror(-rc));
		return;
	}
	if (o.tail >= 0 && (rc = tail_start(fd, o.tail, &start)) < 0) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "cannot read log: %s",
				 strerror(-rc));
		return;
	}
	if (lseek(fd, start, SEEK_SET) < 0) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "cannot read log: %s",
				 strerror(errno));
		return;
	}
	dec.timestamps = o.timestamps;
	dec.since_ns = o.since_ns;
	dec.limit_bytes = o.limit;

	out = evbuffer_new();
	if (!out) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return;
	}
	n = log_pump(fd, &dec, out, o.follow ? LOG_READ_MAX : 0);
	if (n < 0) {
		evbuffer_free(out);
		crilog_dec_done(&dec);
		api_reply_status(r, 500, "InternalError", NULL, NULL, "cannot read log: %s",
				 strerror((int)-n));
		return;
	}
	r->code = 200;
	text_headers(r->req);
	if (!o.follow) {
		evhttp_send_reply(r->req, 200, "OK", out);
		evbuffer_free(out);
		crilog_dec_done(&dec);
		return;
	}

	struct api_logstream *ls = calloc(1, sizeof(*ls));
	if (!ls || !(ls->ns = strdup(r->ns)) || !(ls->pod = strdup(r->name)) ||
	    !(ls->uid = strdup(c.ref.uid)) || !(ls->container = strdup(c.ref.container)) ||
	    !(ls->path = strdup(path)) ||
	    !(ls->tick = event_new(r->srv->base, -1, EV_PERSIST, on_tick, ls))) {
		if (ls) {
			ls->fd = -1;
			ls->srv = r->srv;
			/* not linked yet: free the parts by hand */
			if (ls->tick)
				event_free(ls->tick);
			free(ls->ns), free(ls->pod), free(ls->uid), free(ls->container);
			free(ls->path), free(ls);
		}
		evbuffer_free(out);
		crilog_dec_done(&dec);
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return;
	}
	ls->srv = r->srv;
	ls->req = r->req;
	ls->evcon = evhttp_request_get_connection(r->req);
	ls->restart_count = c.ref.restart_count;
	ls->fd = TAKE_FD(fd);
	ls->dec = dec;
	ls->next = r->srv->logstreams;
	if (ls->next)
		ls->next->prev = ls;
	r->srv->logstreams = ls;
	evhttp_connection_set_closecb(ls->evcon, on_close, ls);
	evhttp_send_reply_start(r->req, 200, "OK");
	if (evbuffer_get_length(out))
		evhttp_send_reply_chunk(r->req, out);
	evbuffer_free(out);
	log_debug("api: following log of %s/%s[%s]", ls->ns, ls->pod, ls->container);
	event_add(ls->tick, &(struct timeval){ 0, LOG_TICK_MS * 1000 });
	/* a finished container ends the stream at once */
	on_tick(-1, 0, ls);
}

void api_podlog_free_all(struct api_server *srv)
{
	while (srv->logstreams) {
		struct api_logstream *ls = srv->logstreams;

		evhttp_connection_set_closecb(ls->evcon, NULL, NULL);
		stream_free(ls);
	}
}
