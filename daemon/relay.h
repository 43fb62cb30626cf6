/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Any node answers for any pod: the daemon's half of relaying pod I/O (logs, exec, attach,
 * port-forward; cp is exec) to the node a pod runs on. The API (api/relay.c) carries the
 * stream; this module tells it where a node's API is and what proves this node to it:
 *
 * - Endpoint: every node publishes in its gossip metadata "api" (its TLS listener, "host:port",
 *   or ":port" for a wildcard listener: the host of its gossip address) and "apiPin" (base64
 *   SHA-256 of its serving certificate). Gossip metadata is authenticated by the cluster
 *   keyring, so the pin is as trustworthy as the cluster key: the relaying node checks the
 *   target's certificate against it (each node has its own CA; no shared PKI is needed).
 * - Credential: `Authorization: Bearer shoal-node.<mac>.<from>` with
 *   mac = base64url(HMAC-SHA256(HMAC-SHA256(K, "shoal relay credential v1"), from "\0" to))
 *   for a cluster key K. The sender uses the primary key, the receiver accepts any installed
 *   key (rotation never breaks relaying), and the credential names its target, so one sent to
 *   a node is no use against another. It identifies a cluster member, nothing stronger: every
 *   holder of the cluster key can mint it for any name, as it can join the cluster.
 *
 * The credential and endpoint functions are pure (unit-tested); relay_new() wires them to the
 * members view and the gossip keyring.
 */
#ifndef SHOAL_DAEMON_RELAY_H
#define SHOAL_DAEMON_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

#define RELAY_CRED_PREFIX "shoal-node."
#define RELAY_PIN_BYTES 32

/* The credential of node `from` for requests to node `to`, into out. -ENOSPC if too small. */
int relay_cred_make(const uint8_t key[32], const char *from, const char *to, char *out, size_t len);
/* The node a credential names when one of the nkeys keys made it for node self, into node;
 * -EACCES otherwise (not a node credential, wrong key, another target, tampered). */
int relay_cred_check(const uint8_t (*keys)[32], size_t nkeys, const char *self, const char *token,
		     char *node, size_t len);

/*
 * A member's API endpoint from its gossip metadata and gossip address ("IP:PORT"): addr gets
 * "host:port" (IPv6 in brackets), pin its certificate digest. -ENOENT when it publishes none
 * (its API listens on loopback only), -EINVAL when the metadata is malformed.
 */
int relay_member_endpoint(const char *meta_json, const char *gossip_addr, char *addr, size_t len,
			  uint8_t pin[RELAY_PIN_BYTES]);
/* Add this node's endpoint ("api", "apiPin") to its metadata object. */
int relay_meta_add(cJSON *meta, const char *listen, const uint8_t pin[RELAY_PIN_BYTES]);

struct api_server;
struct members;
struct gossip;
struct relay;

/* Serve relaying on api: resolve nodes through m, mint and check credentials with g's keyring. */
int relay_new(struct api_server *api, struct members *m, struct gossip *g, struct relay **ret);
struct relay *relay_free(struct relay *r);

#endif
