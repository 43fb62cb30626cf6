/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the API server, shared by its files: server.c (listeners, dispatch, replies),
 * rest.c (CRUD, list, patch, subresources), watch.c (watch streams), discovery.c (discovery
 * and OpenAPI documents), auth.c (TLS material, bearer tokens), object.c (object semantics).
 */
#ifndef SHOAL_API_SERVER_INTERNAL_H
#define SHOAL_API_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>
#include <cJSON.h>

#include "api/gossip.h"
#include "api/object.h"
#include "api/podio.h"
#include "api/relay.h"
#include "api/resources.h"
#include "api/selector.h"
#include "api/server.h"
#include "lib/err.h"
#include "lib/ws.h"
#include "sched/store.h"

struct api_token {
	char *token, *user, *uid, *groups;
};

struct api_watch;

struct api_listener {
	struct api_server *srv;
	struct evhttp *http;
	bool auth;  /* bearer token required */
	bool tls;
};

struct api_server {
	struct event_base *base;
	struct store *store;
	char *node_name;
	size_t max_body;
	struct api_listener tcp, unx;
	char *socket_path;
	SSL_CTX *ssl_ctx;
	struct api_token *tokens;
	size_t ntokens;
	struct api_watch *watches; /* doubly-linked list of open watch streams */
	size_t nwatches;
	uint64_t bookmark_ms;      /* period of BOOKMARK events */
	size_t watch_max_buffer;   /* bytes queued to a watcher before it is dropped */
	char *openapi_v3_root;     /* cached documents */
	/* /metrics sources (server.c) */
	struct {
		api_metrics_fn fn;
		void *ud;
	} metrics[16];
	size_t nmetrics;
	/* pod I/O (podio.c, podlog.c, podexec.c, images.c) */
	struct api_podio podio;
	bool has_podio;
	size_t image_max_body;
	struct api_logstream *logstreams; /* open `log?follow=true` streams */
	struct api_exec *execs;           /* exec sessions */
	struct api_attach *attaches;      /* attach sessions */
	struct api_fwd *fwds;             /* portforward sessions */
	struct api_imgjob *imgjobs;       /* imports and pulls running on threads */
	/* gossip membership (gossip.c) */
	struct api_gossip gossip;
	bool has_gossip;
	struct api_gossip_req *gossip_reqs; /* requests waiting for the cluster */
	/* relaying pod I/O to other nodes (relay.c) */
	char *tcp_listen;                 /* --api-listen as configured, when TLS */
	struct api_relay_ops relay;
	bool has_relay;
	SSL_CTX *relay_ssl_ctx;           /* client side, made on first use */
	struct api_relay *relays;         /* relayed streams */
	uint64_t relay_connected, relay_unreachable, relay_served; /* /metrics */
	uint64_t relay_connect_us;        /* sum over relay_connected */
};

/* One request being served. */
struct api_req {
	struct api_server *srv;
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	const char *method_name;
	char *path;                /* decoded path without query */
	struct evkeyvalq query;    /* decoded query parameters */
	const char *user;
	bool node_identity;        /* authenticated with a node credential (relay.c) */
	char node_user[300];       /* its user, "system:node:NAME" */
	/* route */
	const struct api_resource *res;
	char *ns, *name, *sub;
	/* negotiation */
	bool as_table;
	const char *include_object; /* Table includeObject */
	uint64_t start_us;
	int code;                   /* response code, for the access log */
};

/* --- replies (server.c) --- */
void api_reply_raw(struct api_req *r, int code, const char *ctype, const char *body, size_t len);
void api_reply_buf(struct api_req *r, int code, struct evbuffer *buf); /* takes the content */
void api_reply_json(struct api_req *r, int code, const cJSON *obj);
void api_reply_obj(struct api_req *r, int code, struct store_obj *o); /* stored JSON text */
/* Kubernetes Status for a failure. kind/name go into details when given. */
void api_reply_status(struct api_req *r, int code, const char *reason, const char *kind,
		      const char *name, const char *fmt, ...) _printf_(6, 7);
/* Status from an error object (code 0: derived from errnum). */
void api_reply_err(struct api_req *r, int errnum, const struct err *e);
cJSON *api_status_new(int code, const char *reason, const char *message, const char *kind,
		      const char *name, const struct err *e);
const char *api_query(struct api_req *r, const char *key);
bool api_query_bool(struct api_req *r, const char *key);

/* Fill e with the Kubernetes error for a store errno on resource/name, unless e is set. */
int api_err_from_store(int r, const struct api_resource *res, const char *name, struct err *e);

/* --- handlers --- */
void api_discovery_handle(struct api_req *r);   /* /api, /apis, /version, /openapi ... */
bool api_discovery_match(const char *path);
void api_rest_handle(struct api_req *r);        /* resources */
void api_watch_start(struct api_req *r);
void api_watch_free_all(struct api_server *srv);

/* --- pod I/O (podio.c, podlog.c, podexec.c, images.c) --- */
/* The pod and container a log/exec request names; errors are replied (return < 0). */
struct api_pod_ctr {
	cJSON *pod;              /* owned */
	const cJSON *spec;       /* the container's spec */
	const cJSON *status;     /* its containerStatuses entry, NULL if none yet */
	bool running, terminated, waiting;
	struct api_podio_ctr ref;
	char *id;                /* containerID without its scheme, NULL if none */
	char *last_id;           /* lastState.terminated.containerID, likewise */
};
int api_pod_ctr_get(struct api_req *r, const char *container, struct api_pod_ctr *ret);
void api_pod_ctr_done(struct api_pod_ctr *c);
bool api_podio_ready(struct api_req *r, bool images); /* 503 if the daemon gave no handles */
void api_podlog_handle(struct api_req *r);
void api_podexec_handle(struct api_req *r);
/* POST pods/NAME/eviction with its parsed Eviction body (api/eviction.c). */
void api_eviction_handle(struct api_req *r, const cJSON *eviction);
void api_podattach_handle(struct api_req *r);
void api_podattach_free_all(struct api_server *srv);
bool api_images_match(const char *path);
bool api_registers_match(const char *path); /* registers.c */
void api_registers_handle(struct api_req *r);
void api_images_handle(struct api_req *r);
void api_podio_free_all(struct api_server *srv);
void api_podfwd_handle(struct api_req *r);
void api_podfwd_free_all(struct api_server *srv);
void api_podlog_free_all(struct api_server *srv);
void api_podexec_free_all(struct api_server *srv);
void api_images_free_all(struct api_server *srv);

/* --- one WebSocket connection taken over from evhttp (wsconn.c), for exec and portforward --- */
#define API_WS_MAX_FRAME (1 << 20)
struct api_ws;
struct api_ws_ops {
	/*
	 * A data message or a piece of one, in order (fragments arrive as they come). With
	 * channels, channel is the message's first byte (Kubernetes' channel protocols) and p/n
	 * the rest; without, channel is -1. Must not free the api_ws.
	 */
	void (*data)(void *ud, int channel, uint8_t *p, size_t n);
	/* The output was written out (optional): resume what was paused for backlog. */
	void (*drained)(void *ud);
	/* The connection is over: the client closed or broke it, or our close frame went out.
	 * Called once, from the event loop; the owner frees the api_ws (here or later). */
	void (*closed)(void *ud);
};
/* Sec-WebSocket-Key of a WebSocket upgrade request, NULL if it is none. */
const char *api_ws_upgrade_key(struct api_req *r);
/* Does the request ask for SPDY (kubectl <= 1.29), which shoal does not serve? */
bool api_ws_spdy_request(struct api_req *r);
/* Answer 101 with protocol (NULL: none) and take the connection over; *ret is set before
 * any callback can run. On failure a Status was replied. Then api_ws_start(). */
int api_ws_accept(struct api_req *r, const char *key, const char *protocol, bool channels,
		  const struct api_ws_ops *ops, void *ud, const char *desc, struct api_ws **ret);
void api_ws_start(struct api_ws *w); /* handle frames that came with the request */
/* A single-frame message; channel >= 0 prepends the channel byte. */
void api_ws_send(struct api_ws *w, enum ws_opcode op, int channel, const void *p, size_t n);
/* Send a close frame; closed() follows once it is out. */
void api_ws_close(struct api_ws *w, uint16_t code);
size_t api_ws_backlog(const struct api_ws *w); /* bytes not yet written to the client */
void api_ws_read_enable(struct api_ws *w, bool on);
struct api_ws *api_ws_free(struct api_ws *w);

/* --- relaying pod I/O to the pod's node (relay.c) --- */
/* Relay the pod I/O request r if its pod is bound to another node: true when handled (relayed,
 * or a Status replied), false when this node serves it. */
bool api_relay_maybe(struct api_req *r);
/* The user of a node credential in the Authorization header (into buf), or NULL. */
const char *api_auth_node(struct api_server *srv, struct evhttp_request *req, char *buf,
			  size_t len);
void api_relay_free_all(struct api_server *srv);
void api_relay_metrics(struct api_server *srv, struct evbuffer *out);

/* --- gossip membership (gossip.c) --- */
bool api_gossip_match(const char *path);
void api_gossip_handle(struct api_req *r);
void api_gossip_free_all(struct api_server *srv);

/* --- listing helpers shared by rest.c and watch.c --- */
struct api_filter {
	const struct api_resource *res;
	const char *ns;                /* NULL: all namespaces */
	struct label_selector *labels;
	struct field_selector *fields;
};
int api_filter_init(struct api_filter *f, struct api_req *r, struct err *e);
void api_filter_done(struct api_filter *f);
bool api_filter_matches(const struct api_filter *f, struct store_obj *o);

/* --- object semantics (object.c) --- */
/* from_user: reset status, system fields the way an HTTP create does. obj is modified. */
int api_obj_create_res(struct store *s, const struct api_resource *res, cJSON *obj,
		       bool from_user, struct store_obj **ret, struct err *e);
int api_obj_update_res(struct store *s, const struct api_resource *res, cJSON *obj,
		       uint64_t expect_rv, struct store_obj **ret, struct err *e);
int api_obj_update_status_res(struct store *s, const struct api_resource *res, const char *ns,
			      const char *name, const cJSON *status, uint64_t expect_rv,
			      struct store_obj **ret, struct err *e);
/* How an HTTP write differs from a plain one. */
struct api_write_opts {
	bool dry_run;      /* ?dryRun=All: default and validate, commit nothing */
	cJSON *dry_result; /* dry run: the object that would have been stored (caller frees) */
	/* Called with the final object (defaulted, validated) just before it is stored; old is
	 * NULL on create. Managed fields are recorded here. */
	int (*finish)(const cJSON *old, cJSON *obj, void *ud, struct err *e);
	void *ud;
	/* create: this uid instead of a random one (objects every node bootstraps alike, so
	 * replicas agree on one uid instead of racing creates) */
	const char *uid;
};
int api_obj_create_opts(struct store *s, const struct api_resource *res, cJSON *obj,
			bool from_user, struct api_write_opts *wo, struct store_obj **ret,
			struct err *e);
int api_obj_update_opts(struct store *s, const struct api_resource *res, cJSON *obj,
			uint64_t expect_rv, struct api_write_opts *wo, struct store_obj **ret,
			struct err *e);
/* metadata.resourceVersion as a number; 0 if unset; -EINVAL if not a number. */
int api_obj_rv(const cJSON *obj, uint64_t *ret);
/* Ensure the namespaces the server always has. */
int api_obj_bootstrap(struct store *s, struct err *e);

/* --- auth.c --- */
int api_tls_setup(struct api_server *srv, const struct api_server_options *o, const char *host,
		  struct err *e);
int api_tokens_load(struct api_server *srv, const char *path, struct err *e);
/* Bearer token from the Authorization header -> user, or NULL. */
const char *api_auth_user(struct api_server *srv, struct evhttp_request *req);

#endif
