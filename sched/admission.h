/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The target node's ledger: the pods it has admitted, and whether one more fits.
 *
 * Placement runs on a pod's owner from a possibly stale view; the node a pod is proposed to is
 * the one that decides. It admits a pod only if its own filters pass against its allocatable
 * minus what it already admitted (resources, host ports, taints, selectors, cordon), so two
 * proposals racing onto one node never over-commit it: admissions are taken one after another,
 * the earliest wins and the later one is rejected with the reason. Pure logic: no clock, no store.
 */
#ifndef SHOAL_SCHED_ADMISSION_H
#define SHOAL_SCHED_ADMISSION_H

#include <stddef.h>
#include "sched/placement.h"

struct admission;

/* A ledger for the node whose Node object is node (it must outlive the ledger, or be replaced
 * with admission_set_node). */
int admission_new(const cJSON *node, struct admission **ret);
struct admission *admission_free(struct admission *a);
int admission_set_node(struct admission *a, const cJSON *node);

/*
 * Admit the pod with this uid: 0 if admitted (or already admitted), else a positive SCHED_R_*
 * reason mask (nothing is recorded), or a negative errno. The pod object need not outlive the
 * call: the ledger keeps its requests and host ports.
 */
long admission_admit(struct admission *a, const char *uid, const cJSON *pod);
/*
 * Record a pod that runs here whatever the filters say (bound to this node directly, or found
 * bound at start): the ledger mirrors what the node holds. 0, or a negative errno.
 */
int admission_record(struct admission *a, const char *uid, const cJSON *pod);
/* The pod ended or was deleted: release what it held. Returns whether it was admitted. */
bool admission_release(struct admission *a, const char *uid);
bool admission_has(const struct admission *a, const char *uid);
/* Admitted through admission_admit (the filters passed), not only recorded. */
bool admission_checked(const struct admission *a, const char *uid);
size_t admission_count(const struct admission *a);
/* What the admitted pods hold against what the node offers. */
void admission_usage(const struct admission *a, struct sched_res *used, struct sched_res *alloc);

#endif
