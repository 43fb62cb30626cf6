// SPDX-License-Identifier: Apache-2.0
/*
 * Watch streams: newline-delimited watch events over a chunked HTTP response, fed
 * synchronously by the store's commit callbacks. A watcher that falls too far behind (its
 * connection's output buffer passes srv->watch_max_buffer) is dropped, so a slow client never
 * holds memory or the loop hostage; clients resume from their last resourceVersion.
 */
#include <string.h>
#include <event2/bufferevent.h>

#include "api/server-internal.h"
#include "api/table.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#define WATCH_DEFAULT_TIMEOUT_S 1800

struct api_watch {
	struct api_watch *next, *prev;
	struct api_server *srv;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct store_watch *sw;
	struct api_filter f;
	char *ns;
	const struct api_resource *res;
	char *include;
	bool as_table, columns_sent;
	bool dead;
	struct event *timeout_ev, *bookmark_ev, *kill_ev;
	uint64_t sent;
};

static void watch_unlink(struct api_watch *w)
{
	struct api_server *srv = w->srv;

	if (w->prev)
		w->prev->next = w->next;
	else if (srv->watches == w)
		srv->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	srv->nwatches--;
}

/* Release everything but the HTTP request (whose owner is evhttp at that point). */
static void watch_free(struct api_watch *w)
{
	if (w->sw)
		store_watch_cancel(w->sw);
	if (w->timeout_ev)
		event_free(w->timeout_ev);
	if (w->bookmark_ev)
		event_free(w->bookmark_ev);
	if (w->kill_ev)
		event_free(w->kill_ev);
	watch_unlink(w);
	api_filter_done(&w->f);
	free(w->ns);
	free(w->include);
	free(w);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct api_watch *w = arg;

	log_debug("api: watch %s closed by the client after %llu events", w->res->plural,
		  (unsigned long long)w->sent);
	watch_free(w);
}

/* End the stream normally (timeout) or abort the connection (slow client). */
static void watch_end(struct api_watch *w, bool abort_conn)
{
	struct evhttp_connection *evcon = w->evcon;
	struct evhttp_request *req = w->req;

	evhttp_connection_set_closecb(evcon, NULL, NULL);
	watch_free(w);
	if (abort_conn)
		evhttp_connection_free(evcon);
	else
		evhttp_send_reply_end(req);
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
	watch_end(arg, true);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	watch_end(arg, false);
}

static size_t backlog(struct api_watch *w)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(w->evcon);

	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static void watch_send(struct api_watch *w, struct evbuffer *buf)
{
	if (w->dead)
		return;
	if (backlog(w) > w->srv->watch_max_buffer) {
		log_warn("api: watch %s: client too slow (%zu bytes queued), dropping it",
			 w->res->plural, backlog(w));
		w->dead = true;
		if (w->sw) {
			store_watch_cancel(w->sw);
			w->sw = NULL;
		}
		event_active(w->kill_ev, EV_TIMEOUT, 0);
		return;
	}
	evhttp_send_reply_chunk(w->req, buf);
	w->sent++;
}

static void obj_unref_cb(const void *data, size_t len, void *arg)
{
	store_obj_unref(arg);
}

/* One event; obj_json overrides o->json when given (a DELETED for an object leaving the
 * selection carries its previous state). */
static void send_event(struct api_watch *w, const char *type, struct store_obj *o,
		       cJSON *override)
{
	struct evbuffer *buf = evbuffer_new();

	if (!buf)
		return;
	if (w->as_table) {
		_cleanup_json_ cJSON *obj = override ? NULL : store_obj_parse(o);
		_cleanup_json_ cJSON *t = table_new(w->res->kind), *ev = cJSON_CreateObject();
		_cleanup_free_ char *s = NULL;
		char rv[32];

		if (t && ev && (obj || override)) {
			table_add_row(t, w->res->kind, override ? override : obj,
				      (int64_t)(util_now_ms() / 1000), w->include);
			snprintf(rv, sizeof(rv), "%llu", (unsigned long long)o->rv);
			json_set_str(json_path_obj(t, "metadata"), "resourceVersion", rv);
			/* kubectl reuses the first event's columns */
			if (w->columns_sent)
				cJSON_DeleteItemFromObjectCaseSensitive(t, "columnDefinitions");
			w->columns_sent = true;
			cJSON_AddStringToObject(ev, "type", type);
			cJSON_AddItemToObject(ev, "object", TAKE_PTR(t));
			s = cJSON_PrintUnformatted(ev);
			if (s) {
				evbuffer_add(buf, s, strlen(s));
				evbuffer_add(buf, "\n", 1);
			}
		}
	} else if (override) {
		_cleanup_free_ char *s = cJSON_PrintUnformatted(override);
		if (s)
			evbuffer_add_printf(buf, "{\"type\":\"%s\",\"object\":%s}\n", type, s);
	} else {
		evbuffer_add_printf(buf, "{\"type\":\"%s\",\"object\":", type);
		evbuffer_add_reference(buf, o->json, o->json_len, obj_unref_cb, store_obj_ref(o));
		evbuffer_add(buf, "}\n", 2);
	}
	if (evbuffer_get_length(buf))
		watch_send(w, buf);
	evbuffer_free(buf);
}

static void on_event(const struct store_event *ev, void *arg)
{
	struct api_watch *w = arg;
	bool now = api_filter_matches(&w->f, ev->obj);
	bool before = ev->old && api_filter_matches(&w->f, ev->old);

	if (w->dead)
		return;
	switch (ev->type) {
	case STORE_ADDED:
		if (now)
			send_event(w, "ADDED", ev->obj, NULL);
		break;
	case STORE_MODIFIED:
		if (now && before)
			send_event(w, "MODIFIED", ev->obj, NULL);
		else if (now)
			send_event(w, "ADDED", ev->obj, NULL);
		else if (before) {
			/* left the selection: Kubernetes sends DELETED with the previous state
			 * at the event's resourceVersion */
			_cleanup_json_ cJSON *old = store_obj_parse(ev->old);
			char rv[32];
			if (!old)
				break;
			snprintf(rv, sizeof(rv), "%llu", (unsigned long long)ev->rv);
			json_set_str(json_path_obj(old, "metadata"), "resourceVersion", rv);
			send_event(w, "DELETED", ev->obj, old);
		}
		break;
	case STORE_DELETED:
		if (now || before)
			send_event(w, "DELETED", ev->obj, NULL);
		break;
	}
}

static void send_bookmark(struct api_watch *w, bool initial_end)
{
	struct evbuffer *buf = evbuffer_new();

	if (!buf)
		return;
	evbuffer_add_printf(buf,
			    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\","
			    "\"metadata\":{\"resourceVersion\":\"%llu\"%s}}}\n",
			    w->res->kind, w->res->group_version,
			    (unsigned long long)store_rv(w->srv->store),
			    initial_end ? ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}"
					: "");
	watch_send(w, buf);
	evbuffer_free(buf);
}

static void on_bookmark(evutil_socket_t fd, short what, void *arg)
{
	send_bookmark(arg, false);
}

static int initial_one(struct store_obj *o, void *ud)
{
	struct api_watch *w = ud;

	if (api_filter_matches(&w->f, o))
		send_event(w, "ADDED", o, NULL);
	return w->dead ? 1 : 0;
}

static void send_error_event(struct api_req *r, int code, const char *reason, const char *msg)
{
	_cleanup_json_ cJSON *ev = cJSON_CreateObject();
	_cleanup_free_ char *s = NULL;
	struct evbuffer *buf = evhttp_request_get_output_buffer(r->req);

	cJSON_AddStringToObject(ev, "type", "ERROR");
	cJSON_AddItemToObject(ev, "object", api_status_new(code, reason, msg, NULL, NULL, NULL));
	s = cJSON_PrintUnformatted(ev);
	if (s) {
		evbuffer_add(buf, s, strlen(s));
		evbuffer_add(buf, "\n", 1);
	}
	r->code = 200;
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Type",
			  "application/json");
	evhttp_send_reply(r->req, 200, "OK", NULL);
}

void api_watch_start(struct api_req *r)
{
	struct api_server *srv = r->srv;
	struct api_watch *w = calloc(1, sizeof(*w));
	struct err e = { 0 };
	const char *rvs = api_query(r, "resourceVersion"), *q;
	bool initial, initial_bookmark = api_query_bool(r, "sendInitialEvents");
	uint64_t from = 0;
	long timeout = WATCH_DEFAULT_TIMEOUT_S;
	int ret;

	if (!w) {
		api_reply_err(r, -ENOMEM, NULL);
		return;
	}
	w->srv = srv;
	w->req = r->req;
	w->res = r->res;
	w->as_table = r->as_table;
	w->evcon = evhttp_request_get_connection(r->req);
	w->ns = r->ns ? strdup(r->ns) : NULL;
	w->include = strdup(r->include_object ? r->include_object : "Metadata");
	ret = api_filter_init(&w->f, r, &e);
	w->f.ns = w->ns;
	if (ret < 0) {
		if (!e.code)
			e.code = 400;
		api_reply_err(r, ret, &e);
		goto fail;
	}
	if (!strempty(rvs)) {
		char *end;
		errno = 0;
		from = strtoull(rvs, &end, 10);
		if (errno || *end) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "invalid resourceVersion: %s", rvs);
			goto fail;
		}
	}
	if ((q = api_query(r, "timeoutSeconds")) && *q) {
		char *end;
		timeout = strtol(q, &end, 10);
		if (*end || timeout < 0) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "invalid timeoutSeconds: %s", q);
			goto fail;
		}
		if (timeout == 0)
			timeout = WATCH_DEFAULT_TIMEOUT_S;
	}
	/* "" and "0": start with the current state as ADDED events (Kubernetes' semantics) */
	initial = from == 0 || initial_bookmark;
	if (from && from < store_rv_oldest(srv->store) && !initial_bookmark) {
		char msg[128];
		snprintf(msg, sizeof(msg), "too old resource version: %llu (%llu)",
			 (unsigned long long)from,
			 (unsigned long long)store_rv_oldest(srv->store));
		send_error_event(r, 410, "Expired", msg);
		goto fail;
	}
	w->timeout_ev = evtimer_new(srv->base, on_timeout, w);
	w->kill_ev = evtimer_new(srv->base, on_kill, w);
	if (api_query_bool(r, "allowWatchBookmarks") && !w->as_table)
		w->bookmark_ev = event_new(srv->base, -1, EV_PERSIST, on_bookmark, w);
	if (!w->timeout_ev || !w->kill_ev ||
	    (api_query_bool(r, "allowWatchBookmarks") && !w->as_table && !w->bookmark_ev)) {
		api_reply_err(r, -ENOMEM, NULL);
		goto fail;
	}

	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-cache, private");
	evhttp_send_reply_start(r->req, 200, "OK");
	r->code = 200;
	evhttp_connection_set_closecb(w->evcon, on_close, w);
	w->next = srv->watches;
	if (w->next)
		w->next->prev = w;
	srv->watches = w;
	srv->nwatches++;

	if (initial) {
		store_list(srv->store, w->res->key, w->ns, NULL, NULL, initial_one, w);
		from = store_rv(srv->store);
	}
	ret = store_watch_add(srv->store, w->res->key, from, on_event, w, &w->sw);
	if (ret == -ENODATA) {
		/* raced below the window between the check and here: same answer */
		struct evbuffer *b = evbuffer_new();
		if (b) {
			evbuffer_add_printf(b, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
					       "\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
					       "\"Failure\",\"message\":\"too old resource version\","
					       "\"reason\":\"Expired\",\"code\":410}}\n");
			evhttp_send_reply_chunk(w->req, b);
			evbuffer_free(b);
		}
		w->sw = NULL;
		watch_end(w, false);
		return;
	}
	if (ret < 0) {
		w->sw = NULL;
		log_warn_errno(ret, "api: cannot watch %s", w->res->plural);
		watch_end(w, true);
		return;
	}
	if (initial_bookmark)
		send_bookmark(w, true);
	struct timeval tv = { timeout, 0 };
	evtimer_add(w->timeout_ev, &tv);
	if (w->bookmark_ev) {
		struct timeval btv = { (time_t)(srv->bookmark_ms / 1000),
				       (suseconds_t)(srv->bookmark_ms % 1000) * 1000 };
		event_add(w->bookmark_ev, &btv);
	}
	log_debug("api: watch %s ns=%s from rv %llu (%zu watches open)", w->res->plural,
		  w->ns ? w->ns : "*", (unsigned long long)from, srv->nwatches);
	return;
fail:
	api_filter_done(&w->f);
	if (w->timeout_ev)
		event_free(w->timeout_ev);
	if (w->kill_ev)
		event_free(w->kill_ev);
	if (w->bookmark_ev)
		event_free(w->bookmark_ev);
	free(w->ns);
	free(w->include);
	free(w);
}

void api_watch_free_all(struct api_server *srv)
{
	while (srv->watches) {
		struct api_watch *w = srv->watches;
		evhttp_connection_set_closecb(w->evcon, NULL, NULL);
		watch_free(w);
	}
}
