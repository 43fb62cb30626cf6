/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PodDisruptionBudgets (policy/v1): how many of the pods a budget selects may be disrupted now.
 * Pure logic shared by the disruption controller (sched/ctrl_pdb.c, which keeps status current)
 * and the Eviction subresource (api/eviction.c, which decides from the local replica at the
 * moment of the request), following Kubernetes' disruption controller:
 *   expectedPods   the pods the budget covers (the caller counts them: controllers' replicas,
 *                  or the selected pods for an integer minAvailable)
 *   desiredHealthy minAvailable (an integer, or a percentage of expectedPods rounded up), or
 *                  expectedPods - maxUnavailable (percentage rounded up)
 *   currentHealthy the selected pods that are Ready, not terminating, and not recently evicted
 *                  (status.disruptedPods)
 *   disruptionsAllowed = max(0, currentHealthy - desiredHealthy)
 */
#ifndef SHOAL_SCHED_PDB_H
#define SHOAL_SCHED_PDB_H

#include <stdbool.h>
#include <stdint.h>
#include <cJSON.h>

struct pdb_counts {
	int64_t expected, desired, healthy, allowed;
};

/* A pod that counts as healthy: Ready=True and not terminating. */
bool pdb_pod_healthy(const cJSON *pod);

/*
 * Count for pdb over pods (a cJSON array of the pods its selector matches in its namespace);
 * expected as the caller counted it (< 0: the number of pods). Pods named in
 * pdb.status.disruptedPods are not healthy. -EINVAL for a budget without minAvailable or
 * maxUnavailable.
 */
int pdb_count(const cJSON *pdb, const cJSON *pods, int64_t expected, struct pdb_counts *ret);

struct store;
/* expectedPods from the replica: for an integer minAvailable the selected pods; otherwise the
 * replicas of the selected pods' controllers (ReplicaSets, Jobs' parallelism: spec.replicas
 * where present), one per pod without a controller. */
int64_t pdb_expected(struct store *s, const cJSON *pdb, const cJSON *pods);

/* The selected pods of pdb in its namespace (a new array of parsed pods), not terminal. */
int pdb_pods(struct store *s, const cJSON *pdb, cJSON **ret);

#endif
