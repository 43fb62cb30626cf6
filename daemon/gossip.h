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
 * with a channel byte: GOSSIP_CH_SWIM (the state machine's request/reply), GOSSIP_CH_KEYS
 * (a keyring operation spread by gossip_keys_op()), or a channel registered with
 * gossip_channel_register() (GOSSIP_CH_REPL and up), whose requests carry the sender's node
 * name (a length byte and the name) before the caller's bytes. One request at a time on a
 * connection; SWIM and keyring connections close after the reply, registered channels' are
 * parked for the next request to the same member (docs/gossip.md, "Connections").
 */
#ifndef SHOAL_DAEMON_GOSSIP_H
#define SHOAL_DAEMON_GOSSIP_H

#include <sys/types.h>
#include <event2/event.h>
#include <cJSON.h>

#include "lib/err.h"
#include "sched/members.h"

#define GOSSIP_DEFAULT_PORT 7946

/* generic request/reply channels (gossip_channel_register); 1 and 2 are gossip's own */
#define GOSSIP_CH_REPL 3  /* store replication (daemon/repl.c) */
#define GOSSIP_CH_RELAY 4 /* pod stream relay */
#define GOSSIP_CH_FIRST_FREE 5

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

/*
 * Node-to-node request/reply over the encrypted TCP channel. A served request's reply is
 * built synchronously: return 0 with *reply (malloc'ed, gossip frees it; NULL with len 0 is an
 * empty reply) or <0 to close the stream without a reply (the sender sees an error).
 * `from_node` is the sender's name as it put it in the sealed request (only a cluster member
 * holding the key can seal).
 */
typedef int (*gossip_serve_fn)(void *ud, const char *from_node, const uint8_t *req, size_t len,
			       uint8_t **reply, size_t *reply_len);
/* ch >= GOSSIP_CH_REPL; -EBUSY if taken. fn NULL unregisters. */
int gossip_channel_register(struct gossip *g, uint8_t ch, gossip_serve_fn fn, void *ud);
/* fn(ud, node) whenever a request of a registered channel arrives from node (on the event
 * loop): evidence that node runs, whatever the membership view says. */
void gossip_set_heard(struct gossip *g, void (*fn)(void *ud, const char *node), void *ud);
/*
 * The reply (len_or_errno >= 0 bytes) or a failure (negative errno: the node is unknown, the
 * connection failed or timed out, gossip was freed (-ECANCELED)). Called exactly once, never
 * from inside gossip_request().
 */
typedef void (*gossip_reply_fn)(void *ctx, const uint8_t *reply, ssize_t len_or_errno);
/* Send a request to member `node` (any state with a known address) on channel ch, on a parked
 * connection to it if there is one. If that connection turns out dead before any byte of the
 * reply, the request is sent again once on a new one: the channel's handler may see it twice. */
int gossip_request(struct gossip *g, const char *node, uint8_t ch, const void *req, size_t len,
		   gossip_reply_fn fn, void *ctx);
/* The same request to n members at once (gossip_request for each), sealed once: a frame names
 * no recipient, so the same bytes go to every one of them. err[i]: 0, and fn(ctx[i], ...)
 * follows, or why not. Returns how many were sent. */
int gossip_request_many(struct gossip *g, const char *const *nodes, size_t n, uint8_t ch,
			const void *req, size_t len, gossip_reply_fn fn, void *const *ctx, int *err);

/* Replace this node's metadata (a JSON object's text, <= 512 bytes), e.g. once its pod CIDR
 * claim settled: spread with a new incarnation. -EINVAL if too large. */
int gossip_set_meta(struct gossip *g, const char *json);

/* Prometheus text for /metrics (api_metrics_fn). */
int gossip_metrics(void *g, char **text);

/* The cluster keyring (borrowed; keyring operations change it). Relay credentials derive from
 * its keys (daemon/relay.h). */
struct gossip_keyring;
const struct gossip_keyring *gossip_get_keyring(struct gossip *g);

#endif
