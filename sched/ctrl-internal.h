/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the controller manager and the controllers (sched/ctrl_*.c). */
#ifndef SHOAL_SCHED_CTRL_INTERNAL_H
#define SHOAL_SCHED_CTRL_INTERNAL_H

#include <cJSON.h>
#include "api/selector.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "sched/controller.h"

struct ctrl_mgr;

struct ctrl_ops {
	const char *resource; /* "replicasets.apps" ... */
	const char *kind;
	const char *api_version;
	/* reconcile one object; obj NULL when it no longer exists */
	int (*reconcile)(struct ctrl_mgr *m, const char *ns, const char *name, cJSON *obj);
};

extern const struct ctrl_ops ctrl_replicaset_ops, ctrl_deployment_ops, ctrl_job_ops,
	ctrl_endpoints_ops, ctrl_daemonset_ops, ctrl_pdb_ops;
/* A pod changed: queue the PodDisruptionBudgets of its namespace. */
void ctrl_pdb_on_pod(struct ctrl_mgr *m, const struct store_event *ev);
/* A pod changed: queue the services that select it (before or after). */
void ctrl_endpoints_on_pod(struct ctrl_mgr *m, const struct store_event *ev);
/* A Node changed: queue every DaemonSet (unless only its status moved). */
void ctrl_daemonset_on_node(struct ctrl_mgr *m, const struct store_event *ev);
/* Parsed service selectors, owned by the manager (ctrl_endpoints.c). */
struct ctrl_sel_cache;
struct ctrl_sel_cache **ctrl_sel_cache(struct ctrl_mgr *m);
void ctrl_sel_cache_forget(struct ctrl_sel_cache *c, const char *ns, const char *name);
struct ctrl_sel_cache *ctrl_sel_cache_free(struct ctrl_sel_cache *c);

struct store *ctrl_store(struct ctrl_mgr *m);
/* Record an Event about obj through the daemon's recorder (nothing without one). */
void ctrl_event(struct ctrl_mgr *m, const char *component, const cJSON *obj, const char *type,
		const char *reason, const char *fmt, ...) _printf_(6, 7);
/* Whether this node reconciles the object (members_owns of "<resource>/<ns>/<name>"). */
bool ctrl_owns_key(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name);
uint64_t ctrl_tombstone_horizon_ms(struct ctrl_mgr *m);
uint64_t ctrl_now_ms(struct ctrl_mgr *m);
/* Queue a key for reconcile after delay_ms (0: now). */
void ctrl_enqueue(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name,
		  uint64_t delay_ms);

/* Objects of `resource` in ns that match sel (by indexed labels) or whose JSON mentions
 * `uid` (possible dependents), parsed, as a new cJSON array. */
int ctrl_list(struct ctrl_mgr *m, const char *resource, const char *ns,
	      const struct label_selector *sel, const char *uid, cJSON **ret);

/* The ownerReference with controller=true, or NULL. */
cJSON *ctrl_controller_ref(const cJSON *obj);
bool ctrl_is_controlled_by(const cJSON *obj, const char *uid);
cJSON *ctrl_owner_ref_new(const char *api_version, const char *kind, const cJSON *owner,
			  bool block);

/* Pod helpers */
bool ctrl_pod_active(const cJSON *pod);   /* not Succeeded/Failed, not terminating */
bool ctrl_pod_ready(const cJSON *pod);
int64_t ctrl_pod_ready_since(const cJSON *pod); /* Ready condition's transition time, s */
bool ctrl_pod_available(const cJSON *pod, int64_t min_ready_s, int64_t now_s);
bool ctrl_terminating(const cJSON *obj);
/* Gossip holds the node dead or gone (not merely suspect): its pods run no longer, whatever
 * their last status says, so they count as neither ready nor available (Kubernetes' node
 * lifecycle controller marks them NotReady). False for a node the view does not know. */
bool ctrl_node_down(struct ctrl_mgr *m, const char *node);
/* Ready by its last status, and not on a node gossip holds down (ctrl_node_down): what the
 * counts of ReplicaSets and DaemonSets and the ready addresses of Endpoints and EndpointSlices
 * take as ready. */
bool ctrl_pod_ready_live(struct ctrl_mgr *m, const cJSON *pod);
/* Gossip holds the node suspect, dead or gone: the Node's Ready is Unknown (daemon/node.c), and
 * Kubernetes' node lifecycle controller would mark its pods NotReady. Only ranks pods for
 * deletion (ctrl_pods_deletion_order): the counts stay with ctrl_node_down, so a suspicion that
 * is refuted a moment later does not move statuses and rollouts. */
bool ctrl_node_unreachable(struct ctrl_mgr *m, const char *node);
/* The object's status register was last written by a node that is down: nobody keeps it up to
 * date until a new owner takes over (after the handover's settle window). */
bool ctrl_status_writer_down(struct ctrl_mgr *m, const char *resource, const char *ns,
			     const char *name);

/* What a ReplicaSet's status counts (its active pods), from the pods in the replica now. */
struct ctrl_rs_count {
	int64_t replicas, labeled, ready, available;
	uint64_t recheck_ms; /* 0, or when a ready pod turns available (minReadySeconds) */
};
/* Count the active pods in `pods` that rs controls (pods not controlled by rs are skipped). */
void ctrl_rs_count(struct ctrl_mgr *m, const cJSON *rs, cJSON *const *pods, size_t npods,
		   struct ctrl_rs_count *ret);
/* The same from the replica: rs's pods listed by its selector. */
int ctrl_rs_count_pods(struct ctrl_mgr *m, const cJSON *rs, struct ctrl_rs_count *ret);

/*
 * Sort active pods the one to delete first first, a pod on a node gossip does not hold alive
 * counting as not ready (docs/workloads.md). ranked: Kubernetes' ActivePodsWithRanks (the
 * ReplicaSet's order: pod-deletion-cost, each pod ranked by the active pods of the `related`
 * array, or NULL, on its node, times on a log2 scale); else its plain ActivePods (the Job's).
 * -ENOMEM leaves the order as it was.
 */
int ctrl_pods_deletion_order(struct ctrl_mgr *m, cJSON **pods, size_t npods,
			     const cJSON *related, bool ranked);

/* Create a pod from a template for an owner: generateName "<prefix>-", labels, ownerRef. */
int ctrl_pod_create(struct ctrl_mgr *m, const cJSON *tmpl, const char *ns, const char *prefix,
		    cJSON *owner_ref, const cJSON *extra_labels);
/* The same; name (optional): the generated name; e: why it failed. */
int ctrl_pod_create_ret(struct ctrl_mgr *m, const cJSON *tmpl, const char *ns, const char *prefix,
			cJSON *owner_ref, const cJSON *extra_labels, char *name, size_t name_len,
			struct err *e);
int ctrl_delete(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name,
		const char *propagation);
/*
 * The ownership term this node writes the key's status at (docs/consistency.md, "Status
 * register"), given the key's current register cur. -ESTALE: another node claimed the key above
 * our term in a view we have not seen change; hold off and look again after *retry_ms.
 */
int ctrl_status_term(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name,
		     const struct store_obj *cur, uint64_t *term, uint64_t *retry_ms);
/* Write obj's status (obj carries apiVersion/kind/metadata) at this node's ownership term; only
 * if it changed, or to claim the register from another writer. */
int ctrl_status_update(struct ctrl_mgr *m, const cJSON *obj, cJSON *status);
int ctrl_update(struct ctrl_mgr *m, const cJSON *obj);
/* Replace or append a condition {type,status,reason,message} with transition time now. */
void ctrl_condition_set(cJSON *status, const char *type, const char *st, const char *reason,
			const char *message, int64_t now_s);
const cJSON *ctrl_condition_get(const cJSON *status, const char *type);

/* Short, stable, DNS-safe hash of a pod template (canonical JSON, so key order does not matter)
 * in Kubernetes' vowel-free alphabet; collisions > 0 (a collision count) moves it. */
void ctrl_template_hash(const cJSON *tmpl, uint32_t collisions, char *out, size_t len);

/* intOrString percent/int against total; round_up for surge. */
int64_t ctrl_int_or_percent(const cJSON *v, int64_t total, bool round_up, int64_t def);

/* Garbage collector entry points */
/* Namespaced resources whose objects can have owners (the collector scans these). */
extern const char *const ctrl_gc_resources[];
extern const size_t ctrl_gc_resources_count;
/* ("apps/v1", "ReplicaSet") -> "replicasets.apps", from the API registry */
const char *ctrl_resource_of_kind(const char *api_version, const char *kind);
void ctrl_gc_on_delete(struct ctrl_mgr *m, const struct store_obj *o);
/* A new object with owner references: check it if an owner is not here (alive). */
void ctrl_gc_on_dependent(struct ctrl_mgr *m, const char *ns, const cJSON *obj);
int ctrl_gc_owner(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name,
		  cJSON *obj);
int ctrl_gc_dangling(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name,
		     cJSON *obj);

#endif
