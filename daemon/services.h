/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's service proxy: turns the replica's Services and Endpoints into the eBPF datapath
 * (bpf/lb.h socket LB for ClusterIP, externalIPs and NodePort from local clients; bpf/nodeport.h
 * tc programs on the uplink for NodePort and externalIPs from outside).
 *
 * It watches services, endpoints and pods in the store and reacts synchronously to each commit:
 * one changed endpoint rewrites only the map entries of the backends that changed. Backends
 * whose pod is terminating stay in the maps as draining (used only when no ready backend is
 * left) until the pod is gone. A service that cannot be programmed as a whole (unsupported
 * protocol, a frontend another service owns, a full map) keeps its previous datapath state and
 * gets a Warning Event. On start it adopts the pinned maps and removes frontends of services that
 * no longer exist.
 */
#ifndef SHOAL_DAEMON_SERVICES_H
#define SHOAL_DAEMON_SERVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "lib/err.h"
#include "sched/store.h"

struct svc_proxy;

struct svc_proxy_opts {
	const char *node;         /* node name: pin dir, and which endpoints are local */
	const char *pin_root;     /* NULL: /sys/fs/bpf/shoal */
	const char *cgroup;       /* cgroup2 directory the socket LB serves (svc_cgroup_enter());
				   * NULL: keep whatever is pinned */
	bool host_wide;           /* allow `cgroup` to be the cgroup2 root */
	bool host_reach;          /* socket LB at the cgroup2 root for the node's netns (lb_opts) */
	const char *uplink;       /* NodePort interface; NULL: see nodeport_auto */
	/* with uplink NULL: serve NodePort/externalIPs on the interfaces of the default route;
	 * with either, NodePort frontends on every address of the node, and both followed as
	 * interfaces and addresses change (rtnetlink). Neither: no tc datapath, NodePort only on
	 * node_ip through the socket LB (tools, tests). */
	bool nodeport_auto;
	uint32_t node_ip;         /* network order; the SNAT source (0: the uplink's first IPv4) */
	uint32_t cfg_flags;       /* enum shoal_cfg_flags for the socket LB; 0: its default */
	uint32_t maglev_seed;     /* cluster-wide */
	uint32_t maglev_m;        /* Maglev table size (prime); 0: 16381 */
	uint32_t svc_max, backend_max, revnat_max, sk_nat_max, affinity_max; /* 0: defaults */
	uint32_t ct_max, maglev_max;                                         /* 0: defaults */
	unsigned retry_ms;        /* retry of services that failed to program; 0: 5000 */
};

int svc_proxy_new(struct event_base *base, struct store *store, const struct svc_proxy_opts *opts,
		  struct svc_proxy **ret, struct err *e);
/*
 * Follow the members view (polled every 200 ms): backends on a node the view holds suspect are
 * used only when no other backend is left (like terminating ones), backends on a dead or departed
 * node are not used at all; both return when the node is alive again. NULL: every backend.
 */
struct members;
int svc_proxy_set_members(struct svc_proxy *p, struct members *m);
/* Leaves the datapath programmed and attached (a restarted daemon adopts it). */
struct svc_proxy *svc_proxy_free(struct svc_proxy *p);

struct svc_proxy_stats {
	uint32_t services;       /* services known (with or without frontends) */
	uint32_t frontends;      /* frontends programmed */
	uint32_t failed;         /* services whose last programming failed */
	uint32_t svc_entries, svc_max, backend_entries, backend_max;
	uint32_t sk_nat_entries, sk_nat_max;
	uint32_t ct_entries, ct_max; /* 0/0 without the tc datapath */
	uint64_t np_counters[8];     /* enum shoal_np_stat */
	uint64_t syncs;              /* service programmings done */
	uint64_t last_sync_us;       /* duration of the last one */
	uint64_t start_program_us;   /* programming every service at start (after the load) */
	uint32_t last_writes;        /* map writes of the last upsert */
};
void svc_proxy_stats_get(struct svc_proxy *p, struct svc_proxy_stats *ret);

/*
 * Prometheus text exposition of the datapath: map fill levels (entries, max, ratio), conntrack
 * pressure, tc counters, programming errors. For the API's /metrics handler; *ret is malloc'd.
 */
int svc_proxy_metrics(struct svc_proxy *p, char **ret);

/*
 * Put the calling process into the node's cgroup2 subtree — the leaf <cgroup2 root>/<name>/shoald,
 * so the node cgroup itself holds no process and can pass controllers to pod cgroups on a pure
 * cgroup2 host — and return the node cgroup's path (<cgroup2 root>/<name>): the socket LB
 * attaches there; pods, and processes the daemon starts, are below it.
 */
int svc_cgroup_enter(const char *name, char *ret_path, size_t len, struct err *e);

#endif
