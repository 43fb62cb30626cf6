/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pod placement: which nodes a pod may run on (filters) and which of them is best (scores).
 *
 * Pure logic over a node view the caller builds: each node's Node object, its allocatable and
 * what is already committed on it (the requests and host ports of the pods bound or admitted
 * there). No clock, no store. The filters follow the Kubernetes scheduler's default plugins in
 * their order (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
 * NodeResourcesFit), each reporting the reason strings kube-scheduler reports, so a pod that
 * fits nowhere gets Kubernetes' message: "0/3 nodes are available: 1 Insufficient cpu, 2 node(s)
 * didn't match Pod's node affinity/selector."
 */
#ifndef SHOAL_SCHED_PLACEMENT_H
#define SHOAL_SCHED_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

struct sched_res {
	int64_t cpu_m; /* millicores */
	int64_t mem;   /* bytes */
	int64_t pods;
	int64_t eph; /* ephemeral-storage bytes */
};

/* A host port a pod claims: protocol (0 TCP, 1 UDP, 2 SCTP) and port. */
struct sched_port {
	uint8_t proto;
	uint16_t port;
};

struct label_selector;

/* An inter-pod (anti-)affinity term, parsed: which pods (selector, namespaces) in which
 * topology domain (the node label topologyKey). */
struct sched_pod_term {
	struct label_selector *sel;
	const char *key;
	const cJSON *namespaces; /* empty: the term's pod's own namespace (unless all_ns) */
	bool all_ns;		 /* namespaceSelector: {} */
	bool anti;
	int weight; /* preferred terms; 0: required */
};

/* A topology spread constraint, parsed. */
struct sched_spread {
	struct label_selector *sel;
	const char *key;
	int64_t max_skew, min_domains;
	bool hard; /* whenUnsatisfiable: DoNotSchedule */
};

struct sched_pod {
	const cJSON *obj;
	const char *ns;
	const cJSON *labels;
	struct sched_pod_term *terms; /* required and preferred pod (anti-)affinity */
	size_t n_terms;
	bool req_anti; /* has a required anti-affinity term (others must keep away from it) */
	struct sched_spread *spread;
	size_t n_spread;
	/* parsed once from obj: the parts every filter and score reads */
	const cJSON *tolerations, *node_selector, *required_terms, *preferred_terms;
	const char *node_name;
	struct sched_res req; /* pods is always 1 */
	/* for scoring: cpu and memory with kube-scheduler's non-zero defaults (100m, 200 MiB) for
	 * each container that requests none, so pods without requests still spread */
	struct sched_res nz;
	struct sched_port *ports;
	size_t n_ports;
	bool starting; /* not Running yet (no phase, Pending): its node still has to start it */
};

struct sched_node {
	const cJSON *obj;
	const char *name;
	const cJSON *labels, *taints; /* parsed once from obj */
	bool unschedulable;
	struct sched_res alloc;
	struct sched_res used;
	struct sched_res used_nz; /* the committed pods' nz (scoring only) */
	size_t starting;	  /* committed pods not Running yet (scoring only) */
	struct sched_port *ports; /* host ports in use */
	size_t n_ports, cap_ports;
	const cJSON *images; /* status.images */
	/* the pods committed here (inter-pod affinity, spread); not kept when no_pods */
	const struct sched_pod **pods;
	size_t n_pods, cap_pods, n_anti;
	bool no_pods;
};

/* Reasons a node is filtered out, as bits. */
enum {
	SCHED_R_UNSCHEDULABLE = 1u << 0,
	SCHED_R_NODE_NAME = 1u << 1,
	SCHED_R_TAINT = 1u << 2,
	SCHED_R_AFFINITY = 1u << 3,
	SCHED_R_PORTS = 1u << 4,
	SCHED_R_PODS = 1u << 5,
	SCHED_R_CPU = 1u << 6,
	SCHED_R_MEMORY = 1u << 7,
	SCHED_R_EPH = 1u << 8,
	/* need the whole view (sched_place only) */
	SCHED_R_SPREAD_LABEL = 1u << 9,
	SCHED_R_SPREAD = 1u << 10,
	SCHED_R_POD_AFFINITY = 1u << 11,
	SCHED_R_POD_ANTI = 1u << 12,
	SCHED_R_EXISTING_ANTI = 1u << 13,
};

enum sched_strategy {
	SCHED_LEAST_ALLOCATED = 0, /* spread */
	SCHED_MOST_ALLOCATED,	   /* bin-packing */
};

/* Parse a pod's requests (sum over containers, at least the largest init container) and host
 * ports. The pod object must outlive sp. */
int sched_pod_init(struct sched_pod *sp, const cJSON *pod);
void sched_pod_release(struct sched_pod *sp);

/* Parse a Node: status.allocatable (else status.capacity); nothing committed yet. */
int sched_node_init(struct sched_node *sn, const cJSON *node);
void sched_node_release(struct sched_node *sn);
/* Commit a pod's requests and host ports to a node (it is bound or admitted there). */
int sched_node_commit(struct sched_node *sn, const struct sched_pod *sp);
/* Undo sched_node_commit (the pod ended or left). */
void sched_node_uncommit(struct sched_node *sn, const struct sched_pod *sp);

/*
 * Run the node-local filters of sp against sn: 0 if the pod fits, else the SCHED_R_* bits of the
 * first failing filter (NodeResourcesFit reports all of its resources at once). When the reason is
 * a taint, *taint (if not NULL) is set to the first untolerated NoSchedule/NoExecute taint.
 */
unsigned sched_filter(const struct sched_pod *sp, const struct sched_node *sn, const cJSON **taint);

/*
 * Score a feasible node, 0..100*k (higher is better). Spreading (least-allocated) also counts
 * the pods a node still has to start, SCHED_STARTING_COST points each: a node starts its pods a
 * few at a time, so the emptiest node taking every replacement of a dead node would start them
 * one after another while the others idle.
 */
#define SCHED_STARTING_COST 10
int64_t sched_score(const struct sched_pod *sp, const struct sched_node *sn,
		    enum sched_strategy strategy);

/* Why nodes were filtered out, counted by reason string, for the unschedulable message. */
struct sched_fit_error {
	size_t n_nodes;
	size_t n;
	struct {
		char reason[160];
		size_t count;
	} r[24];
};

/*
 * Place sp among nodes[0..n): the feasible node with the highest score (ties: the lower index),
 * skipping nodes whose name is in excluded[0..n_excluded). Beyond sched_filter it runs the
 * filters that need the whole view, in kube-scheduler's order after NodeResourcesFit:
 * PodTopologySpread (DoNotSchedule constraints: skew = pods matching in the node's domain + 1 -
 * the least in any eligible domain, at most maxSkew; nodes without the key fail), then
 * InterPodAffinity (required affinity: a matching pod in the node's domain, or none anywhere and
 * the pod matches its own term; required anti-affinity: none in the domain; and the required
 * anti-affinity of pods already placed, against this pod). Scores add, besides sched_score:
 * preferred pod (anti-)affinity (weight x 100 per term whose domain holds a matching pod),
 * ScheduleAnyway spread (fewer matching pods in the domain is better) and image locality
 * (status.images sizes, scaled by how many nodes have each image, Kubernetes' thresholds). Returns
 * its index, or -ENOSPC with *fe (if not NULL) filled for sched_fit_message.
 */
int sched_place(const struct sched_pod *sp, const struct sched_node *nodes, size_t n,
		enum sched_strategy strategy, const char *const *excluded, size_t n_excluded,
		struct sched_fit_error *fe);

/*
 * sched_place with kube-scheduler's random choice among the nodes tied for the best score, drawn
 * from the seed rnd (0: the lower index, as sched_place). Owners seed it from the pod (a hash of
 * its uid), so every node that places the pod, or replays another owner's placement of it,
 * picks the same node.
 */
int sched_place_r(const struct sched_pod *sp, const struct sched_node *nodes, size_t n,
		  enum sched_strategy strategy, const char *const *excluded, size_t n_excluded,
		  uint64_t rnd, struct sched_fit_error *fe);

/*
 * sched_place_r filtering against nodes but scoring against scored[0..n) (NULL: nodes), a
 * second view of the same Node objects in the same order holding only some of the committed
 * pods: the daemon scores each pod against the pods created before it (docs/scheduling.md,
 * "Owners herd"), so the choice does not depend on which later pods an owner has already seen
 * placed, while the filters still see everything.
 */
int sched_place_scored(const struct sched_pod *sp, const struct sched_node *nodes,
		       const struct sched_node *scored, size_t n, enum sched_strategy strategy,
		       const char *const *excluded, size_t n_excluded, uint64_t rnd,
		       struct sched_fit_error *fe);

/*
 * The required inter-pod affinity filters of sched_place (the pod's affinity and anti-affinity,
 * and the anti-affinity of the pods placed) for one node, nodes[target], against the pods the
 * view holds: the target node's admission runs it over its own replica. 0 if they pass, else
 * SCHED_R_POD_AFFINITY, SCHED_R_POD_ANTI or SCHED_R_EXISTING_ANTI; or a negative errno.
 */
long sched_interpod_filter(const struct sched_pod *sp, const struct sched_node *nodes, size_t n,
			   size_t target);

/* The reason strings of one node's SCHED_R_* mask, joined with ", " (e.g. "Insufficient cpu,
 * Insufficient memory"); taint as sched_filter sets it. */
int sched_reason_text(unsigned r, const cJSON *taint, char *buf, size_t len);

/* Kubernetes' FitError text: "0/N nodes are available: <count reason>, ... ." */
int sched_fit_message(const struct sched_fit_error *fe, char *buf, size_t len);

#endif
