/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Self-healing: when the pods of a dead node are deleted, so that their controllers replace them
 * on live nodes. Pure logic: the members view and the clock come in as parameters.
 *
 * - A node's pods become deletable once the local view has held it dead (or departed) for the
 *   grace period (default 5 s). A node that is only suspect is never acted on, and one that comes
 *   back alive before the grace period ends keeps its pods untouched.
 * - A pod that tolerates `node.kubernetes.io/unreachable` (NoExecute) waits its
 *   tolerationSeconds instead (forever without them), as with Kubernetes' taint-based eviction.
 * - A partition looks like many failures at once: when at least `min_unhealthy` members and at
 *   least `unhealthy_threshold` of all of them are suspect or dead in this view (Kubernetes'
 *   node lifecycle controller: more than 2 nodes and 55 %), eviction is rate-limited to one more
 *   node every `limited_interval_ms` (0, the default: none at all), oldest failure first. The
 *   minority side of a partition then holds its view of the majority's pods, while the
 *   majority replaces the minority's.
 * Who deletes a pod (the owner of its key among live members) is the caller's business.
 */
#ifndef SHOAL_SCHED_HEAL_H
#define SHOAL_SCHED_HEAL_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/members.h"

#define HEAL_DEFAULT_GRACE_MS 5000

struct heal_opts {
	uint64_t grace_ms;	      /* 0: HEAL_DEFAULT_GRACE_MS */
	double unhealthy_threshold;   /* 0: 0.55 */
	unsigned min_unhealthy;	      /* 0: 3 */
	uint64_t limited_interval_ms; /* 0: no eviction at all while limited */
};

struct heal;

int heal_new(const struct heal_opts *o, struct heal **ret);
struct heal *heal_free(struct heal *h);

/*
 * Feed the members view as it is at now_ms (call on every tick; cheap). Nodes that turn dead
 * or leave start their grace period; nodes seen alive or suspect again are forgiven (their
 * pods are no longer deletable). Members that vanish from the view keep their last record.
 * Returns the number of nodes whose pods became deletable with this call, -errno.
 */
int heal_observe(struct heal *h, const struct members *m, uint64_t now_ms);

/*
 * Evidence of life: node sent this node a request (replication, relay) at now_ms. Gossip can
 * declare a live but overloaded node dead; its pods are deleted only once it has been both dead
 * in the view and silent for the grace period, and one that speaks again stops being evicted.
 */
void heal_heard(struct heal *h, const char *node, uint64_t now_ms);

/* Whether eviction is currently rate-limited (a large share of the members look down). */
bool heal_limited(const struct heal *h);
/* Nodes whose pods are deletable now (sorted by name); valid until the next heal_observe. */
size_t heal_evicted_count(const struct heal *h);
const char *heal_evicted_get(const struct heal *h, size_t i);
bool heal_node_evicted(const struct heal *h, const char *node);

/*
 * For one pod bound to `node`: delete it now? A pod of an evicted node unless it tolerates
 * unreachability for longer than the node has been down. *wait_ms (optional) gets the time
 * left when the answer is no only because of a toleration (0 otherwise).
 */
bool heal_pod_due(const struct heal *h, const char *node, int64_t toleration_ms, uint64_t now_ms,
		  uint64_t *wait_ms);

/* A pod's tolerance of an unreachable node: -1 none, INT64_MAX forever, else milliseconds
 * (node.kubernetes.io/unreachable or not-ready, NoExecute or any effect, Exists or Equal). */
int64_t heal_pod_toleration_ms(const cJSON *pod);

/* Pods never deleted by healing: DaemonSet pods (their controller follows the node) and
 * mirror pods. */
bool heal_pod_exempt(const cJSON *pod);

#endif
