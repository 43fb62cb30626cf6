/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service datapath's loader and map manager.
 *
 * lb_open() loads the socket-LB programs, creates or reuses the maps pinned under
 * <pin_root>/<node>/, and attaches the cgroup programs to the node's cgroup2 subtree through
 * links that are pinned too (<pin dir>/links/). A daemon that exits without lb_close(.., true)
 * leaves programs attached and maps filled, so traffic keeps flowing; the next lb_open() finds
 * the pins, swaps its freshly loaded programs into the existing links (bpf_link_update, no gap)
 * and rebuilds its view of services from the maps.
 *
 * Services are programmed as a whole backend set per frontend; lb_service_upsert() diffs it
 * against what is in the maps and writes only what changed (bpf/lb_plan.h).
 */
#ifndef SHOAL_BPF_LB_H
#define SHOAL_BPF_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

#include "bpf/shoal_abi.h"
#include "lib/err.h"

#define LB_PIN_ROOT_DEFAULT "/sys/fs/bpf/shoal"

struct lb;

struct lb_opts {
	const char *node;     /* required; pins live in <pin_root>/<node> */
	const char *pin_root; /* NULL: LB_PIN_ROOT_DEFAULT (bpffs is mounted if missing) */
	const char *cgroup;   /* cgroup2 directory to attach to; NULL: leave attachments as pinned */
	bool host_wide;       /* allow `cgroup` to be the cgroup2 root (subtree scope only) */
	/*
	 * Host-reachable scope: the sock_addr programs are attached at the cgroup2 root and act
	 * only on sockets of the node's network namespaces: `netns_cookie` (0: the caller's own)
	 * and those of sockets created in `cgroup` (its pods). false: attached to `cgroup` and act
	 * on all its sockets. Only with `cgroup` (the caller chooses the scope).
	 */
	bool host_reach;
	uint64_t netns_cookie;
	bool maps_only;       /* no program load: use the pinned maps (inspection, tools) */
	uint32_t svc_max, backend_max, revnat_max, sk_nat_max, affinity_max; /* 0: defaults */
	uint32_t be_tbl_max; /* shoal_be_tbl entries (big services' backend lists); 0: default */
	uint32_t cfg_flags;   /* enum shoal_cfg_flags; 0: TCP_PEER | UDP */
	uint32_t maglev_seed;
};

struct lb_frontend {
	uint32_t vip;              /* network order */
	uint16_t port;             /* network order */
	uint8_t proto;             /* IPPROTO_TCP, IPPROTO_UDP */
	uint8_t flags;             /* enum shoal_svc_flags */
	uint32_t affinity_timeout; /* seconds; 0 with SHOAL_SVC_AFFINITY: SHOAL_AFFINITY_DEF */
};

struct lb_backend_addr {
	uint32_t ip;   /* network order */
	uint16_t port; /* network order */
	uint8_t flags; /* enum shoal_backend_flags */
};

struct lb_stats {
	uint32_t services, backends;
	uint32_t svc_entries, svc_max;
	uint32_t backend_entries, backend_max;
	uint32_t last_udp_destroyed; /* connected UDP sockets torn down by the last change */
	uint32_t last_writes;        /* map writes done by the last upsert/delete */
	bool maps_recreated;         /* lb_open re-created pins of another layout (empty) */
};

int lb_open(const struct lb_opts *opts, struct lb **ret, struct err *e);
/* unpin: detach the programs and remove every pin (explicit teardown); else leave it running. */
void lb_close(struct lb *lb, bool unpin);
/* Remove every pin of a node without opening anything (detaches the programs). */
int lb_teardown(const char *pin_root, const char *node);

/* Make the frontend's backends exactly be[0..n) (n == 0: refuse connections at once). */
int lb_service_upsert(struct lb *lb, const struct lb_frontend *fe, const struct lb_backend_addr *be,
		      size_t n, struct err *e);
int lb_service_delete(struct lb *lb, const struct lb_frontend *fe, struct err *e);

/*
 * Programming many new frontends at once (start-up into empty maps, a full resync). Between
 * lb_batch_begin() and lb_batch_flush(), the map writes of frontends that lb_service_upsert()
 * creates are queued instead of written: no reader can reach a frontend before its slot 0
 * exists, so nothing is observable half-done. The flush writes them with one
 * bpf_map_update_batch() per map — backends, reverse NAT, backend slots, then every slot 0 —
 * and the frontends become visible. Changes to frontends already in the maps are written at
 * once as usual (O(changed)); touching a queued frontend writes the queue out first.
 * lb_batch_flush() fails if a write failed (the view is then rebuilt from the maps: frontends
 * that were queued are not programmed, and upserting them again programs them); lb_close()
 * drops a queue that was not flushed.
 */
void lb_batch_begin(struct lb *lb);
int lb_batch_flush(struct lb *lb, struct err *e);
/* Set the flags (e.g. SHOAL_BE_TERMINATING) of one backend address in every service using it;
 * returns how many services changed. */
int lb_backend_set_flags(struct lb *lb, uint32_t ip, uint16_t port, uint8_t proto, uint8_t flags,
			 struct err *e);

/* One programmed backend of a frontend, as the maps hold it. */
struct lb_member_info {
	uint32_t id;
	struct shoal_backend be;
};

/*
 * The frontend's reverse-NAT index and its backends: ready ones in slot order, then terminating
 * ones in slot order; at most `max` are copied. Returns the number of backends, -ENOENT.
 */
int lb_service_get(struct lb *lb, const struct lb_frontend *fe, uint16_t *ret_rev_nat,
		   struct lb_member_info *ret, size_t max);

/* JSON array of services with their slots and backends, as `shoalctl bpf services` prints. */
int lb_dump(struct lb *lb, cJSON **ret);
void lb_stats_get(struct lb *lb, struct lb_stats *ret);
const char *lb_pin_dir(struct lb *lb);

/* The cgroup2 mount point (/sys/fs/cgroup/unified on hybrid hosts, /sys/fs/cgroup on pure
 * cgroup2 ones), read from /proc/self/mountinfo. */
int lb_cgroup2_root(char *buf, size_t len);

/* The calling thread's network namespace cookie (SO_NETNS_COOKIE). */
int lb_netns_cookie(uint64_t *ret);

/* "10.96.0.10:53/udp" <-> frontend / backend, for tools. */
int lb_frontend_parse(const char *s, struct lb_frontend *ret);
int lb_backend_parse(const char *s, struct lb_backend_addr *ret);

#endif
