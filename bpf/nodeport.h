/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loader of the tc NodePort datapath (bpf/nodeport.bpf.c) and manager of its Maglev tables.
 *
 * np_open() loads the programs against the maps pinned under <pin_root>/<node>/ (the service
 * maps the socket LB created, plus shoal_ct, shoal_maglev and shoal_np_stats, created here if
 * missing) and attaches them to the uplink's clsact ingress and egress hooks (direct action,
 * libbpf bpf_tc_*). A filter outlives the process that attached it, so traffic keeps flowing
 * while the daemon restarts; the next np_open() replaces the filters in place
 * (BPF_TC_F_REPLACE, no gap). Call it after lb_open() so the service maps exist with their
 * configured sizes.
 */
#ifndef SHOAL_BPF_NODEPORT_H
#define SHOAL_BPF_NODEPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

#include "bpf/lb.h"
#include "bpf/shoal_abi.h"
#include "lib/err.h"

struct np;

struct np_opts {
	const char *node;      /* required */
	const char *pin_root;  /* NULL: LB_PIN_ROOT_DEFAULT */
	const char *ifname;    /* the uplink; NULL: maps only (no attach: tools, tests) */
	bool load;             /* with ifname NULL: load the programs, attach with np_ifaces_set() */
	uint32_t node_ip;      /* network order; 0: the first IPv4 address of ifname */
	uint32_t maglev_seed;  /* cluster-wide */
	uint32_t maglev_m;     /* prime > backends per service; 0: SHOAL_DEF_MAGLEV_M */
	uint32_t ct_max;       /* 0: SHOAL_DEF_CT_MAX */
	uint32_t maglev_max;   /* 0: SHOAL_DEF_MAGLEV_MAX */
	uint16_t snat_min, snat_max; /* 0: 32768-60999 */
};

struct np_stats {
	uint32_t ct_entries, ct_max;   /* conntrack fill level */
	uint32_t maglev_tables, maglev_max;
	uint64_t counters[SHOAL_NP_STAT_N]; /* enum shoal_np_stat, summed over CPUs */
};

int np_open(const struct np_opts *opts, struct np **ret, struct err *e);
/* teardown: detach the tc filters and unpin the NodePort maps; else leave them running. */
void np_close(struct np *np, bool teardown);
uint32_t np_node_ip(struct np *np);

#define NP_MAX_IFACES 16
/* Attach the programs to exactly these interfaces (replacing ours in place, detaching from the
 * ones no longer listed). */
int np_ifaces_set(struct np *np, const int *ifindex, size_t n, struct err *e);
/* A freshly opened np takes over the interfaces `old` is attached to (np_ifaces_set() then
 * detaches the ones no longer wanted). */
void np_ifaces_adopt(struct np *np, const struct np *old);

/*
 * Install the Maglev table of a frontend from its ready backends (or its terminating ones when
 * none is ready), replacing the old table atomically. n == 0 removes the table.
 */
int np_maglev_set(struct np *np, uint16_t rev_nat, const struct lb_member_info *bes, size_t n,
		  struct err *e);
int np_maglev_delete(struct np *np, uint16_t rev_nat);
/* Drop the tables whose reverse-NAT index keep() rejects (reconcile after a restart). */
int np_maglev_prune(struct np *np, bool (*keep)(uint16_t rev_nat, void *ud), void *ud);

int np_stats_get(struct np *np, struct np_stats *ret);

/* The flow hash the programs use to index a Maglev table (for tests and tools). */
uint32_t np_flow_hash(uint32_t saddr, uint16_t sport, uint16_t dport, uint8_t proto,
		      uint32_t seed);

/*
 * Conntrack entries of a node's pinned shoal_ct as a JSON array (`shoalctl bpf conntrack`),
 * without loading anything. -ENOENT if the node has no NodePort datapath.
 */
int np_ct_dump(const char *pin_root, const char *node, cJSON **ret);
/* Remove a node's NodePort pins and detach its filters from ifname, or (NULL) from every
 * interface of the calling netns that carries this node's programs. */
int np_teardown(const char *pin_root, const char *node, const char *ifname);

#endif
