/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Placement in the daemon (issue 12 item 1): every node runs both halves.
 *
 * Owner: a pending pod (no spec.nodeName) is scheduled by the live member that owns its key
 * "pods/<ns>/<name>" (members_owner), from this node's replica of every Node and pod. It runs
 * sched_place over the live nodes (what each holds: the pods bound or nominated there) and
 * proposes the best one by writing status.nominatedNodeName, or, when it picks itself, admits
 * and binds at once. A pod that fits nowhere gets PodScheduled=False, reason Unschedulable,
 * Kubernetes' message and a FailedScheduling Event, and is placed again whenever the cluster
 * changes (a Node or pod event, a membership change).
 *
 * Target: a pod nominated to this node is admitted against the node's own ledger
 * (sched/admission.h: what is bound here), one at a time, so proposals racing from stale views
 * never over-commit it. Admitted: bound (spec.nodeName; the store keeps the earliest binding).
 * Rejected: the nomination is cleared with the reason, and the owner places the pod again with
 * this node excluded until the node changes.
 */
#ifndef SHOAL_DAEMON_SCHEDULER_H
#define SHOAL_DAEMON_SCHEDULER_H

#include <event2/event.h>
#include "daemon/bind_confirm.h"
#include "sched/members.h"
#include "sched/placement.h"
#include "sched/store.h"

struct scheduler;

struct scheduler_opts {
	const char *node_name;
	enum sched_strategy strategy;
	/* test hook: owners propose every pod onto this node first, whatever their view says
	 * (forces proposals from several owners onto one node at once); NULL: off */
	const char *test_propose_to;
	/* test hook: every node binds every pending pod to itself, owner or not (forces two
	 * bindings of one pod at once, docs/scheduling.md "Confirming a binding") */
	bool test_bind_self;
	/* this node's bindings wait for confirmation (NULL: they stand at once) */
	struct bind_confirm *confirm;
};

int scheduler_new(struct event_base *base, struct store *store, struct members *members,
		  const struct scheduler_opts *o, struct scheduler **ret);
struct scheduler *scheduler_free(struct scheduler *s);

/* Whether this node's admission admitted the pod (the kubelet's own check is then moot: the
 * ledger already holds it against the node's allocatable). */
bool scheduler_admitted(void *userdata, const char *uid);

/* /metrics: placements, rejections, unschedulable attempts, placement latency. */
int scheduler_metrics(void *userdata, char **text);

#endif
