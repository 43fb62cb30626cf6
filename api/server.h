/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kubernetes-compatible API server: evhttp on a TCP address (plain on loopback, TLS +
 * bearer tokens elsewhere) and on a root-only unix socket. Reads and writes the local replica.
 */
#ifndef SHOAL_API_SERVER_H
#define SHOAL_API_SERVER_H

#include <event2/event.h>
#include "lib/err.h"
#include "sched/store.h"

struct api_server;

struct api_server_options {
	const char *node_name;
	const char *listen;      /* "host:port"; NULL/"" = no TCP listener */
	const char *socket_path; /* NULL/"" = no unix socket */
	const char *state_dir;   /* where generated TLS material lives */
	const char *tls_cert, *tls_key, *tls_ca; /* NULL: generate under state_dir/tls */
	const char *tokens_file; /* required for a non-loopback listener */
	size_t max_body_bytes;
	const char *service_cidr; /* ClusterIP range; NULL: 10.96.0.0/12 */
};

/*
 * GET /metrics (Prometheus text format). Each source appends its lines to *text (malloc'd);
 * the daemon registers the datapath's here. The server adds its store's own figures.
 */
typedef int (*api_metrics_fn)(void *userdata, char **text);
int api_server_add_metrics(struct api_server *srv, api_metrics_fn fn, void *userdata);

int api_server_new(struct event_base *base, struct store *store,
		   const struct api_server_options *opts, struct api_server **ret, struct err *e);
struct api_server *api_server_free(struct api_server *srv);

#endif
