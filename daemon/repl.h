/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store replication in the daemon: sched/repl.h on the event loop, its requests on gossip's
 * encrypted TCP channel GOSSIP_CH_REPL, its member states from the members view, Events for a
 * lost create race, /metrics counters, and the timestamp of the last completed round
 * (<state-dir>/repl.last) deciding a pull-only resync after an absence past the horizon.
 */
#ifndef SHOAL_DAEMON_REPL_H
#define SHOAL_DAEMON_REPL_H

#include <stdint.h>
#include <event2/event.h>

#include "daemon/gossip.h"
#include "sched/members.h"
#include "sched/repl.h"
#include "sched/store.h"

struct replication;

struct replication_opts {
	const char *node_name;
	const char *state_dir;
	struct store *store;
	struct gossip *gossip;
	struct members *members;
	uint64_t (*clock)(void *ud); /* wall ms, the store's clock */
	void *clock_data;
	uint32_t ae_interval_ms;
	uint64_t tombstone_horizon_ms;
	/* called when the live set changed (after repl heard of it) */
	void (*on_members)(void *ud);
	void *on_members_data;
};

int replication_new(struct event_base *base, const struct replication_opts *o,
		    struct replication **ret);
/* Before gossip_free: pending requests' replies are dropped. */
struct replication *replication_free(struct replication *d);
struct repl *replication_repl(struct replication *d);
/*
 * Binding confirmation (docs/scheduling.md, "Confirming a binding"): ask `node` for the binding
 * it holds of pods ns[i]/names[i] (uids[i]; n <= REPL_CONFIRM_MAX) after merging this node's
 * registers of them, which the request carries. fn gets, for each uid, the node the answerer
 * binds it to (NULL: none, deleted or replaced there, or err < 0: no answer), exactly once per
 * uid, never from inside this call, and not at all once the replication is freed. The answer's
 * registers are merged here first.
 */
typedef void (*replication_confirm_fn)(void *ud, const char *node, const char *uid,
				       const char *bound, int err);
int replication_confirm(struct replication *d, const char *node, const char *const *ns,
			const char *const *names, const char *const *uids, size_t n,
			replication_confirm_fn fn, void *ud);

/* Prometheus text for /metrics (api_metrics_fn). */
int replication_metrics(void *d, char **text);

#endif
