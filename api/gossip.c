// SPDX-License-Identifier: Apache-2.0
/* Gossip membership routes (api/gossip.h). */
#include <string.h>

#include "api/server-internal.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#define MEMBERS_PREFIX "/apis/shoal.io/v1/members"
#define KEYS_PREFIX "/apis/shoal.io/v1/gossip/keys"

/* A request answered when the cluster has. */
struct api_gossip_req {
	struct api_gossip_req *next, *prev;
	struct api_server *srv;
	struct evhttp_request *req; /* NULL once the client is gone */
	struct evhttp_connection *evcon;
	char *what;
	uint64_t start_us;
};

int api_server_set_gossip(struct api_server *srv, const struct api_gossip *g)
{
	srv->gossip = *g;
	srv->has_gossip = true;
	return 0;
}

static bool prefix_match(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(path, prefix, n) && (path[n] == 0 || path[n] == '/');
}

bool api_gossip_match(const char *path)
{
	return prefix_match(path, MEMBERS_PREFIX) || prefix_match(path, KEYS_PREFIX);
}

static void greq_free(struct api_gossip_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else if (q->srv->gossip_reqs == q)
		q->srv->gossip_reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	free(q->what);
	free(q);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct api_gossip_req *q = arg;

	q->req = NULL; /* evhttp frees it; the result is dropped */
}

static void on_done(void *ctx, int rc, cJSON *result, const struct err *e)
{
	struct api_gossip_req *q = ctx;
	struct api_req r = {
	    .srv = q->srv, .req = q->req, .path = KEYS_PREFIX, .method_name = "gossip"};

	if (q->req) {
		evhttp_connection_set_closecb(q->evcon, NULL, NULL);
		if (rc < 0)
			api_reply_err(&r, rc, e);
		else if (!result)
			api_reply_status(&r, 500, "InternalError", NULL, NULL, "out of memory");
		else
			api_reply_json(&r, 200, result);
		log_info("api: gossip %s -> %d (%llu ms)", q->what, r.code,
			 (unsigned long long)((util_mono_us() - q->start_us) / 1000));
	}
	greq_free(q);
}

static struct api_gossip_req *greq_new(struct api_req *r, const char *what)
{
	struct api_gossip_req *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->srv = r->srv;
	q->req = r->req;
	q->evcon = evhttp_request_get_connection(r->req);
	q->start_us = util_mono_us();
	q->what = strdup(what);
	q->next = r->srv->gossip_reqs;
	if (q->next)
		q->next->prev = q;
	r->srv->gossip_reqs = q;
	return q;
}

static void greq_started(struct api_req *r, struct api_gossip_req *q)
{
	evhttp_connection_set_closecb(q->evcon, on_close, q);
	r->code = 202; /* for the access log: the reply comes from on_done */
}

static void not_allowed(struct api_req *r)
{
	api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
			 "the server does not allow this method on the requested resource");
}

static void keys_start(struct api_req *r, const char *op, const char *key)
{
	struct api_gossip_req *q = greq_new(r, op);
	struct err e = {};
	int rc;

	if (!q) {
		api_reply_err(r, -ENOMEM, NULL);
		return;
	}
	rc = r->srv->gossip.keys(r->srv->gossip.ud, op, key, on_done, q, &e);
	if (rc < 0) {
		greq_free(q);
		api_reply_err(r, rc, &e);
		return;
	}
	greq_started(r, q);
}

void api_gossip_handle(struct api_req *r)
{
	const struct api_gossip *g = &r->srv->gossip;

	if (!r->srv->has_gossip) {
		api_reply_status(
		    r, 503, "ServiceUnavailable", NULL, NULL,
		    "gossip membership is disabled on this node (--gossip-listen \"\")");
		return;
	}
	if (streq(r->path, MEMBERS_PREFIX)) {
		_cleanup_json_ cJSON *l = NULL;
		int rc;

		if (r->method != EVHTTP_REQ_GET)
			return not_allowed(r);
		rc = g->members(g->ud, &l);
		if (rc < 0)
			return api_reply_err(r, rc, NULL);
		return api_reply_json(r, 200, l);
	}
	if (streq(r->path, MEMBERS_PREFIX "/leave")) {
		struct api_gossip_req *q;
		int rc;

		if (r->method != EVHTTP_REQ_POST)
			return not_allowed(r);
		q = greq_new(r, "leave");
		if (!q)
			return api_reply_err(r, -ENOMEM, NULL);
		rc = g->leave(g->ud, on_done, q);
		if (rc < 0) {
			greq_free(q);
			if (rc == -EBUSY)
				return api_reply_status(r, 409, "Conflict", NULL, NULL,
							"a leave is already in progress");
			return api_reply_err(r, rc, NULL);
		}
		return greq_started(r, q);
	}
	if (streq(r->path, KEYS_PREFIX)) {
		struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
		_cleanup_json_ cJSON *body = NULL;
		const char *op;

		if (r->method == EVHTTP_REQ_GET)
			return keys_start(r, "list", NULL);
		if (r->method != EVHTTP_REQ_POST)
			return not_allowed(r);
		body = cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1),
					     evbuffer_get_length(in));
		if (!cJSON_IsObject(body) || !json_str(body, "key", NULL))
			return api_reply_status(
			    r, 400, "BadRequest", NULL, NULL,
			    "expected a JSON body {\"op\":\"install|use|remove\","
			    "\"key\":KEY}");
		op = json_str(body, "op", "install");
		if (!streq(op, "install") && !streq(op, "use") && !streq(op, "remove"))
			return api_reply_status(r, 400, "BadRequest", NULL, NULL,
						"unknown keyring operation %s", op);
		return keys_start(r, op, json_str(body, "key", ""));
	}
	if (prefix_match(r->path, KEYS_PREFIX) && r->method == EVHTTP_REQ_DELETE)
		return keys_start(r, "remove", r->path + strlen(KEYS_PREFIX) + 1);
	if (prefix_match(r->path, KEYS_PREFIX))
		return not_allowed(r);
	api_reply_status(r, 404, "NotFound", NULL, NULL,
			 "the server could not find the "
			 "requested resource");
}

void api_gossip_free_all(struct api_server *srv)
{
	/* the daemon cancels its operations first (gossip_free): nothing should be left */
	while (srv->gossip_reqs) {
		struct api_gossip_req *q = srv->gossip_reqs;
		if (q->req)
			evhttp_connection_set_closecb(q->evcon, NULL, NULL);
		greq_free(q);
	}
}
