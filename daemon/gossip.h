/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gossip membership in the daemon: the SWIM state machine (sched/swim.h) on the event loop,
 * with UDP and TCP sockets, its timer, the security layer (sched/gossip_crypto.h) around every
 * datagram and stream frame, key files, and the members view (sched/members.h) fed from it.
 *
 * Files in the state dir: gossip.keyring (the keyring, 0600), gossip.key (the key this node
 * generated when it started a new cluster, 0600), gossip.identity (instance id and the last
 * incarnation, so a restart is the same member refuting its death, not a new one).
 *
 * Stream frames on TCP: a 4-byte big-endian length, then a sealed frame whose plaintext starts
 * with a channel byte: GOSSIP_CH_SWIM (the state machine's request/reply) or GOSSIP_CH_KEYS
 * (a keyring operation spread by gossip_keys_op()).
 */
#ifndef SHOAL_DAEMON_GOSSIP_H
#define SHOAL_DAEMON_GOSSIP_H

#include <event2/event.h>
#include <cJSON.h>

#include "lib/err.h"
#include "sched/members.h"

#define GOSSIP_DEFAULT_PORT 7946

struct gossip_opts {
	const char *node_name;
	const char *state_dir;
	const char *cluster_name;
	const char *listen;    /* IP:PORT */
	const char *advertise; /* IP[:PORT]; NULL: listen IP if not wildcard, else detected */
	const char *join;      /* host:port,... or NULL */
	const char *key_file;  /* base64 key seeding a new keyring; NULL: generate */
	const char *meta_json; /* this node's metadata, a JSON object (<= 512 bytes) */
	struct members *members;
};

struct gossip;

int gossip_new(struct event_base *base, const struct gossip_opts *o, struct gossip **ret,
	       struct err *e);
/* Saves the incarnation; pending operations complete with -ECANCELED. */
struct gossip *gossip_free(struct gossip *g);

/* {"items":[{name,address,state,incarnation,rttMicros,instance,meta}]} */
int gossip_members_json(struct gossip *g, cJSON **ret);

typedef void (*gossip_done_fn)(void *ctx, int r, cJSON *result, const struct err *e);

/* Leave gracefully; done when the news went out (or after a few seconds). */
int gossip_leave(struct gossip *g, gossip_done_fn done, void *ctx);

enum gossip_key_op { GOSSIP_KEYS_LIST, GOSSIP_KEYS_INSTALL, GOSSIP_KEYS_USE, GOSSIP_KEYS_REMOVE };
/*
 * Apply a keyring operation here, then on every live member over TCP; done gets
 * {"op","nodes","responded","errors":{node:msg},"keys":[{"key","installed","primary"}]}.
 * A local refusal (remove the primary, use a key not installed) fails at once with e set.
 */
int gossip_keys_op(struct gossip *g, enum gossip_key_op op, const char *key_b64,
		   gossip_done_fn done, void *ctx, struct err *e);

/* Prometheus text for /metrics (api_metrics_fn). */
int gossip_metrics(void *g, char **text);

#endif
