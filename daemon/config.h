/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoald configuration: embedded defaults, then an optional config file (YAML/JSON with the
 * same keys as the long flags), then flags. Every path and name the daemon owns derives from
 * the node name so several daemons can share one machine.
 */
#ifndef SHOAL_DAEMON_CONFIG_H
#define SHOAL_DAEMON_CONFIG_H

#include <stdbool.h>
#include "lib/err.h"

struct config {
	char *node_name;
	char *state_dir;     /* /var/lib/shoal/<node> */
	char *run_dir;       /* /run/shoal/<node> */
	char *api_listen;    /* host:port, "" to disable TCP */
	char *api_socket;    /* <run_dir>/api.sock */
	char *tls_cert;      /* default <state_dir>/tls/server.crt when TLS is needed */
	char *tls_key;
	char *tls_ca;
	char *tokens_file;   /* CSV: token,user,uid[,groups] like kube-apiserver */
	char *pod_cidr;      /* 10.244.0.0/24; NULL until claimed when pod_cidr_auto */
	char *service_cidr;  /* 10.96.0.0/12 */
	char *cluster_cidr;  /* 10.244.0.0/16: pod traffic to it is not masqueraded */
	char *image_preload; /* comma-separated OCI layouts/archives imported at start */
	char *cluster_domain;/* cluster.local */
	char *dns_listen;    /* cluster DNS address: <pod CIDR network+1>:53; "" disables */
	char *dns_resolv_conf; /* upstream nameservers for other names: /etc/resolv.conf */
	char *bpf_pin_dir;   /* /sys/fs/bpf/shoal/<node> */
	char *cgroup_name;   /* shoal-<node> */
	char *nft_table;     /* shoal-<node> */
	char *log_level;
	char *socket_lb_scope; /* host (default) | subtree */
	char *uplink;        /* NodePort interface; unset: the default route's interfaces */
	char *node_ip;       /* NodePort SNAT address; unset: the uplink's first IPv4 */
	char *gossip_listen; /* IP:PORT, 0.0.0.0:7946; "" disables gossip */
	char *gossip_advertise; /* IP[:PORT] other members reach us at; unset: detected */
	char *join;          /* seeds host:port,... */
	char *cluster_name;  /* bound into every gossip packet: shoal */
	char *gossip_key_file; /* base64 key seeding <state_dir>/gossip.keyring */
	char *overlay;       /* none (direct routes) | vxlan */
	long vxlan_port;     /* 0: 4789 */
	long vxlan_vni;      /* 0: 1 */
	long dead_node_grace_ms; /* 0: 5000 */
	long pod_mtu;        /* set by the daemon: the pod veths' MTU (0: kernel default) */
	char *sched_strategy; /* LeastAllocated (spread, default) | MostAllocated (bin-packing) */
	char *test_sched_propose_to; /* test hook: owners propose every pod onto this node first */
	long test_sched_bind_self;   /* test hook: 1: every node binds every pending pod to itself */
	long maglev_seed;    /* cluster-wide Maglev seed */
	long max_pods;
	long run_pods;       /* 1: run this node's pods (the pod manager); 0: API/controllers only */
	long watch_window;
	long event_ttl;      /* seconds an Event lives after its last update (3600) */
	long max_body_bytes;
	char *node_labels;   /* k=v,... on this node's Node */
	long node_left_grace; /* seconds */
	long node_dead_grace; /* seconds */
	long claim_settle_ms;
	bool pod_cidr_auto;  /* no --pod-cidr: claimed from cluster_cidr (daemon/claims.h) */
	bool dns_listen_auto; /* dns_listen derived from the pod CIDR */
	long repl_interval_ms;     /* anti-entropy period */
	long tombstone_horizon_ms; /* tombstones kept at least this long */
	long test_clock_offset_ms; /* tests only: this node's clock runs ahead */
};

/* Fill cfg from argv (and the --config file it names). -EINVAL with a message on bad input;
 * 1 if --help/--version was handled and the caller should exit 0. */
int config_load(struct config *cfg, int argc, char **argv, struct err *e);
void config_free(struct config *cfg);
/* Set the node's pod CIDR (validated) and what derives from it (the DNS address unless given). */
int config_pod_cidr_set(struct config *cfg, const char *cidr, struct err *e);
void config_usage(FILE *f);

#endif
