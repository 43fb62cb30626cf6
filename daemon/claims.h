/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster-wide unique values through the replicated store (sched/claims.h has the rules,
 * docs/consistency.md "Uniqueness" the behaviour).
 *
 * Claims are objects of the store resource "claims.shoal.io" (cluster-scoped, not served by the
 * API; GET /apis/shoal.io/v1/registers/claims.shoal.io shows them), named
 * "<kind>.<value>.<holder>", spec {kind, value, holder}. They replicate like any object.
 *
 * The pod CIDR: without --pod-cidr a node claims a free /24 of --cluster-cidr at start and uses
 * it once the claim settled (node_podcidr_claim runs the event loop until then, serving the API
 * and gossip meanwhile); the settled CIDR is kept in <state-dir>/pod-cidr and reused on restart.
 * An explicit --pod-cidr is recorded as a claim too, so claimants avoid it.
 */
#ifndef SHOAL_DAEMON_CLAIMS_H
#define SHOAL_DAEMON_CLAIMS_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event.h>

#include "daemon/events.h"
#include "lib/err.h"
#include "sched/members.h"
#include "sched/store.h"

#define NODE_CLAIMS_RESOURCE "claims.shoal.io"

/* Whether an anti-entropy round with `node` completed after since_ms (repl_caught_up). */
typedef bool (*node_caught_up_fn)(void *ud, const char *node, uint64_t since_ms);

struct node_podcidr_opts {
	struct store *store;
	struct members *members;
	const char *node_name;
	const char *cluster_cidr;
	const char *state_dir;
	const char *prefer; /* the CIDR a previous run settled on, or NULL */
	bool joining;	    /* --join given: wait until another member is seen (or join_wait_ms) */
	uint64_t join_wait_ms;
	uint64_t settle_ms;
	/* false while nodes do not replicate objects: there is nothing to catch up with or to
	 * race against, the claim settles at once */
	bool replicated;
	/* NULL: settle_ms after joining stands for catching up */
	node_caught_up_fn caught_up;
	void *caught_up_ud;
};

/* Claim this node's pod CIDR; runs `base` until the claim settled. *ret is malloc'ed. */
int node_podcidr_claim(struct event_base *base, const struct node_podcidr_opts *o, char **ret,
		       struct err *e);
/* Record an explicit pod CIDR as this node's claim (no verification: the flag wins). */
int node_podcidr_record(struct store *s, const char *node_name, const char *cluster_cidr,
			const char *cidr);
/* Delete every claim `holder` holds (its Node was removed). Returns how many. */
int node_claims_release(struct store *s, const char *holder);

/*
 * Duplicate ClusterIPs and nodePorts (allocated at create from each replica, so a race or a
 * partition can hand one value to two Services): found on every change of the services, the
 * later-created Service (by its create's HLC, then uid) is re-addressed by the owner of its key
 * (members_owner), with a Warning Event on it.
 */
struct svc_repair;
int svc_repair_new(struct event_base *base, struct store *s, struct members *m,
		   const char *node_name, struct svc_repair **ret);
struct svc_repair *svc_repair_free(struct svc_repair *r);

#endif
