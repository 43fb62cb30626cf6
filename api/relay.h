/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Relaying pod I/O to the pod's node (api/relay.c), as kube-apiserver relays to a kubelet.
 * A request for .../pods/NAME/{log,exec,attach,portforward} whose pod is bound to another node
 * (spec.nodeName in this node's replica) is sent on to that node's API over TLS, with this
 * node's credential, and the answer (a plain reply, a chunked log stream, or a 101 and the
 * WebSocket/SPDY stream behind it) is copied back byte for byte. The target serves it like a
 * local request; a request that arrived with a node credential is never relayed again.
 *
 * The daemon says where nodes are and checks credentials (daemon/relay.c); without that hook
 * every pod is served from this node as before.
 */
#ifndef SHOAL_API_RELAY_H
#define SHOAL_API_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "lib/err.h"

struct api_server;

#define API_RELAY_PIN_BYTES 32

struct api_relay_target {
	char addr[300];			  /* host:port of the node's API (TLS) */
	uint8_t pin[API_RELAY_PIN_BYTES]; /* SHA-256 of its serving certificate (DER) */
	char token[512];		  /* this node's bearer credential for it */
};

struct api_relay_ops {
	void *ud;
	/* How to reach node's API: 0 with t filled, or < 0 with e->message saying why not (the
	 * node is dead, left, unknown, publishes no API); the client gets it in a 503. */
	int (*resolve)(void *ud, const char *node, struct api_relay_target *t, struct err *e);
	/* The node a bearer token names, into node; < 0 if it is no valid node credential. */
	int (*authenticate)(void *ud, const char *token, char *node, size_t len);
};

/* Copy ops (NULL: stop relaying). In-flight relays keep going. */
int api_server_set_relay(struct api_server *srv, const struct api_relay_ops *ops);
/* Where other nodes reach this server: its TLS listener ("host:port" as configured) and the
 * SHA-256 of its certificate. -ENOENT without a TLS listener (loopback or socket only). */
int api_server_relay_endpoint(struct api_server *srv, char *listen, size_t len,
			      uint8_t pin[API_RELAY_PIN_BYTES]);

/* ---- pure parts, exported for tests ---- */

/* Is this decoded path one a node credential may use (pod log/exec/attach/portforward)? */
bool api_relay_path_allowed(const char *path);
/*
 * The request head sent to the target: method and raw URI as the client sent them, the
 * client's end-to-end headers (hop-by-hop ones, Host, Authorization and Content-Length
 * dropped), then Host, the credential, Content-Length when there is a body, and
 * `Connection: Upgrade` for an upgrade request (WebSocket, SPDY), else `Connection: close`.
 */
int api_relay_request_head(struct evbuffer *out, const char *method, const char *uri,
			   const struct evkeyvalq *headers, const char *host, const char *token,
			   size_t body_len);
/*
 * The target's response head (up to and including the blank line) as it goes to the client: a
 * 101 unchanged, anything else with its Connection header replaced by `Connection: close`
 * (the relay ends the client connection with the response). -EBADMSG if it is no HTTP head.
 */
int api_relay_response_head(const char *head, size_t len, struct evbuffer *out);

#endif
