/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one ABI shared by the BPF programs and user space: map names, key/value layouts, enums.
 *
 * Both sides include this file. BPF objects see the types through vmlinux.h; user space through
 * <linux/types.h>. Every struct has explicit padding and a size assertion: a layout change must
 * be deliberate, because pinned maps outlive the daemon that created them (a restarted daemon of
 * a different build reuses them). Addresses and ports are in network byte order everywhere.
 *
 * Service map layout (as in Cilium's lb4 maps): one entry per {vip, port, proto, slot}.
 *   slot 0                          the service itself: counts, flags, rev-NAT index, affinity
 *   slot 1 .. count                 ready backends (backend ids); picked for new connections
 *   slot SHOAL_SLOT_TERM + 1 .. +n  terminating backends, used only when no ready one is left
 *                                   (Kubernetes' ProxyTerminatingEndpoints behaviour)
 * Backend ids are allocated per service membership and never reused by a live service, so "id
 * still in the backend map" means "still a member of the service that picked it" (affinity).
 */
#ifndef SHOAL_BPF_ABI_H
#define SHOAL_BPF_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Map names: pinned under <pin dir>/<name>; the kernel keeps 15 characters. */
#define SHOAL_MAP_SVC      "shoal_svc"
#define SHOAL_MAP_BACKEND  "shoal_backend"
#define SHOAL_MAP_REVNAT   "shoal_revnat"
#define SHOAL_MAP_SK_NAT   "shoal_sk_nat"
#define SHOAL_MAP_AFFINITY "shoal_affinity"
#define SHOAL_MAP_CT       "shoal_ct"
#define SHOAL_MAP_DESTROY  "shoal_destroy"
#define SHOAL_MAP_MAGLEV   "shoal_maglev"
#define SHOAL_MAP_NP_STATS "shoal_np_stats"
#define SHOAL_MAP_SCOPE    "shoal_scope"
#define SHOAL_MAP_NETNS    "shoal_netns"
#define SHOAL_MAP_NETNS_DM "shoal_netns_dm"
#define SHOAL_MAP_SK_PEER  "shoal_sk_peer"
#define SHOAL_MAP_BE_REV   "shoal_be_rev"
#define SHOAL_MAP_BE_TBL "shoal_be_tbl"

/* Default sizes; the loader overrides them from its options before load. */
#define SHOAL_DEF_SVC_MAX      65536
#define SHOAL_DEF_BACKEND_MAX  65536
#define SHOAL_DEF_REVNAT_MAX   65536
#define SHOAL_DEF_SK_NAT_MAX   262144
#define SHOAL_DEF_AFFINITY_MAX 65536
#define SHOAL_DEF_CT_MAX       262144
#define SHOAL_DEF_DESTROY_MAX  1024
#define SHOAL_DEF_MAGLEV_MAX   1024  /* NodePort/external frontends with a Maglev table */
#define SHOAL_DEF_MAGLEV_M     16381 /* prime; entries of one Maglev table */
#define SHOAL_DEF_NETNS_MAX    4096  /* pod network namespaces remembered per node (LRU) */
#define SHOAL_NETNS_DM         4096  /* shoal_netns_dm entries, a power of two */
#define SHOAL_DEF_BE_TBL_MAX   131072 /* shoal_be_tbl entries (8 bytes each) */

#define SHOAL_SLOT_TERM     0x8000 /* terminating backends live at SHOAL_SLOT_TERM + 1 .. */
#define SHOAL_MAX_SLOTS     0x7fff /* per kind (ready / terminating) per service */
#define SHOAL_AFFINITY_DEF  10800  /* seconds: Kubernetes' default ClientIP timeout (3 h) */

enum shoal_svc_flags {
	SHOAL_SVC_AFFINITY = 1 << 0, /* sessionAffinity: ClientIP */
	SHOAL_SVC_LOCAL = 1 << 1,    /* traffic policy Local: slots hold node-local backends only */
	SHOAL_SVC_NODEPORT = 1 << 2, /* frontend is a node address:nodePort (tc datapath) */
	SHOAL_SVC_EXTERNAL = 1 << 3, /* frontend is an externalIP / load-balancer IP */
	/*
	 * slot > 0, TCP: the backend's shoal_be_rev entry names another frontend, so connect4
	 * keeps this frontend with the socket (shoal_sk_peer) for getpeername(); without it the
	 * reverse map already answers and connect4 writes nothing.
	 */
	SHOAL_SVC_SK_PEER = 1 << 4,
	/*
	 * slot 0: the backends connect4 picks from (more than SHOAL_SVC_INLINE) are at
	 * shoal_be_tbl[backend_id .. backend_id + n); set by the map manager, never by a caller.
	 */
	SHOAL_SVC_TBL = 1 << 5,
};

enum shoal_backend_flags {
	SHOAL_BE_TERMINATING = 1 << 0, /* draining: existing flows only, no new connections */
	SHOAL_BE_LOCAL = 1 << 1,       /* runs on this node */
};

struct shoal_svc_key {
	__be32 vip;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP */
	__u8 pad0;
	__u16 slot; /* host order; see the layout above */
	__u16 pad1;
};
_Static_assert(sizeof(struct shoal_svc_key) == 12, "shoal_svc_key layout");

/*
 * A backend slot carries its backend's address as well as its id, and slot 0 carries the
 * addresses of the backends the socket LB picks from when there are at most SHOAL_SVC_INLINE of
 * them; for a bigger service slot 0 names a region of the array shoal_be_tbl holding them
 * (SHOAL_SVC_TBL, its `backend_id`): a connect() costs one hash lookup (slot 0) either way, plus an
 * array access the verifier inlines for a big service. A region is written whole before the slot 0
 * that names it and never changed while named (a change writes a new region, then slot 0;
 * the old one is reused only after a grace period), so a connect() in flight reads the old or
 * the new list, never a mix. Without room in the table slot 0 has no SHOAL_SVC_TBL and the
 * chosen slot is read (two lookups). A backend id never changes address (members are matched
 * by address and keep their ids), so the copies cannot go stale; the backend entry stays the
 * truth for flags (tc, affinity).
 *
 * Slot 0's be[]: with count ready backends, count <= SHOAL_SVC_INLINE: be[i] is the backend of
 * ready slot i + 1; with none ready and term_count <= SHOAL_SVC_INLINE: of terminating slot
 * SHOAL_SLOT_TERM + i + 1; be[i].flags is that slot's SHOAL_SVC_SK_PEER. User space writes it
 * with the counts, in the one slot-0 update. Slot > 0: be[0] is its backend, flags in `flags`.
 *
 * 48 bytes since issue 9 item 3 (24 with one address, 16 before that): a pinned shoal_svc of
 * another value size is re-created by the loader (bpf/lb.c lb_size_map) and re-programmed from
 * the store.
 */
#define SHOAL_SVC_INLINE 4 /* a power of two */

struct shoal_svc_be {
	__be32 ip;
	__be16 port;
	__u8 flags; /* slot 0: SHOAL_SVC_SK_PEER of the backend's slot */
	__u8 pad0;
};
_Static_assert(sizeof(struct shoal_svc_be) == 8, "shoal_svc_be layout");

struct shoal_svc_val {
	__u32 backend_id;       /* slot > 0: the backend; slot 0: the first shoal_be_tbl index
				 * of its list with SHOAL_SVC_TBL, else 0 */
	__u16 count;            /* slot 0: ready backends (slots 1..count) */
	__u16 term_count;       /* slot 0: terminating backends */
	__u16 rev_nat;          /* reverse-NAT index of the frontend (same in every slot) */
	__u8 flags;             /* enum shoal_svc_flags (slot 0; SK_PEER in slots) */
	__u8 pad0;
	__u32 affinity_timeout; /* seconds (slot 0), when SHOAL_SVC_AFFINITY */
	struct shoal_svc_be be[SHOAL_SVC_INLINE]; /* see above */
};
_Static_assert(sizeof(struct shoal_svc_val) == 48, "shoal_svc_val layout");

struct shoal_backend {
	__be32 ip;
	__be16 port;
	__u8 proto;
	__u8 flags; /* enum shoal_backend_flags */
};
_Static_assert(sizeof(struct shoal_backend) == 8, "shoal_backend layout");

/* shoal_revnat: rev_nat index -> the frontend, for packet-level reverse NAT (tc). */
struct shoal_revnat {
	__be32 vip;
	__be16 port;
	__u8 proto;
	__u8 pad0;
};
_Static_assert(sizeof(struct shoal_revnat) == 8, "shoal_revnat layout");

/* shoal_sk_nat: {socket cookie, backend} -> frontend, so recvmsg/getpeername show the VIP. */
struct shoal_sk_nat_key {
	__u64 cookie;
	__be32 ip;
	__be16 port;
	__u16 pad0;
};
_Static_assert(sizeof(struct shoal_sk_nat_key) == 16, "shoal_sk_nat_key layout");

struct shoal_sk_nat_val {
	__be32 vip;
	__be16 port;
	__u16 rev_nat;
};
_Static_assert(sizeof(struct shoal_sk_nat_val) == 8, "shoal_sk_nat_val layout");

/*
 * shoal_be_rev: TCP backend address -> the frontend getpeername() shows for a socket that has no
 * shoal_sk_peer record. Written by user space, one entry per backend address: the first frontend
 * that took the backend keeps it while any frontend has it (slots of every other frontend carry
 * SHOAL_SVC_SK_PEER), so what it says for a socket connected through it never changes under the
 * socket. A frontend that is gone is not shown (the reader checks slot 0).
 */
struct shoal_be_rev_key {
	__be32 ip;
	__be16 port;
	__u8 proto;
	__u8 pad0;
};
_Static_assert(sizeof(struct shoal_be_rev_key) == 8, "shoal_be_rev_key layout");

struct shoal_be_rev_val {
	__be32 vip;
	__be16 port;
	__u16 rev_nat;
};
_Static_assert(sizeof(struct shoal_be_rev_val) == 8, "shoal_be_rev_val layout");

enum shoal_aff_client {
	SHOAL_AFF_NETNS = 1, /* socket LB: the client's network namespace cookie */
	SHOAL_AFF_IP = 2,    /* tc: the client's source address */
};

struct shoal_aff_key {
	__u64 client;    /* netns cookie or IPv4 address, per kind */
	__u16 rev_nat;   /* the service */
	__u8 kind;       /* enum shoal_aff_client */
	__u8 pad0[5];
};
_Static_assert(sizeof(struct shoal_aff_key) == 16, "shoal_aff_key layout");

struct shoal_aff_val {
	__u64 last_used_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u32 backend_id;
	__u32 pad0;
};
_Static_assert(sizeof(struct shoal_aff_val) == 16, "shoal_aff_val layout");

/*
 * shoal_ct: tc NodePort conntrack (LRU). Keyed by the packet's tuple as seen on the wire. A new
 * flow gets two entries: the forward one (client -> frontend, as the client sent it) and the
 * reply one (the backend's answer as it arrives: from the backend to the client, or to the node
 * address and SNAT port when the backend is on another node).
 */
enum shoal_ct_dir {
	SHOAL_CT_INGRESS = 0, /* client -> frontend */
	SHOAL_CT_EGRESS = 1,  /* backend -> client (reply) */
};

enum shoal_ct_state {
	SHOAL_CT_NEW = 0,
	SHOAL_CT_ESTABLISHED = 1,
	SHOAL_CT_CLOSING = 2,
};

enum shoal_ct_flags {
	SHOAL_CT_F_SNAT = 1 << 0,  /* source rewritten to the node address (remote backend) */
	SHOAL_CT_F_LOCAL = 1 << 1, /* backend on this node */
};

struct shoal_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir; /* enum shoal_ct_dir */
	__u16 pad0;
};
_Static_assert(sizeof(struct shoal_ct_key) == 16, "shoal_ct_key layout");

struct shoal_ct_val {
	__u64 last_seen_ns; /* bpf_ktime_get_ns() */
	__u32 backend_id;
	__u16 rev_nat;
	__u8 state; /* enum shoal_ct_state */
	__u8 flags; /* enum shoal_ct_flags */
	/* forward entry: the SNAT source used towards the backend (0: none);
	 * reply entry: the client address/port to restore as destination */
	__be32 nat_addr;
	__be16 nat_port;
	__u16 pad0;
	__u64 packets;
};
_Static_assert(sizeof(struct shoal_ct_val) == 32, "shoal_ct_val layout");

/* shoal_np_stats: per-CPU counters of the tc datapath, indexed by enum shoal_np_stat. */
enum shoal_np_stat {
	SHOAL_NP_FWD = 0,        /* packets translated client -> backend */
	SHOAL_NP_REV = 1,        /* packets translated backend -> client */
	SHOAL_NP_CT_NEW = 2,     /* conntrack entries created (new flows) */
	SHOAL_NP_NO_BACKEND = 3, /* new flows dropped: frontend without a usable backend */
	SHOAL_NP_SNAT_FAIL = 4,  /* new flows dropped: no free SNAT port */
	SHOAL_NP_FIB_PASS = 5,   /* FIB lookup failed: packet handed to the stack */
	SHOAL_NP_STAT_N = 6,
};

/*
 * shoal_destroy: backends whose connected UDP sockets must be torn down. User space fills it
 * after removing backends and runs the socket iterator (iter/udp) in each client netns; the
 * iterator destroys matching connected sockets so the application's next send fails once and a
 * reconnect goes through connect4 again, which picks a live backend.
 */
struct shoal_destroy_key {
	__be32 ip;
	__be16 port;
	__u8 proto;
	__u8 pad0;
};
_Static_assert(sizeof(struct shoal_destroy_key) == 8, "shoal_destroy_key layout");

/*
 * shoal_scope (array, one entry): which sockets the socket LB acts on. Attached at the cgroup2
 * root (host-reachable), the programs see every socket of the machine, so their first check is
 * the socket's network namespace: the node's own (`netns_cookie`) or one of its pods'
 * (shoal_netns_dm and shoal_netns, filled by the sock_create program on the node's cgroup
 * subtree). Everything else
 * passes untouched. SHOAL_SCOPE_ALL (subtree attachment) skips the check: every socket that
 * reaches the programs is the node's. A zeroed entry acts on nothing but shoal_netns.
 */
enum shoal_scope_flags {
	SHOAL_SCOPE_ALL = 1 << 0,
};

struct shoal_scope {
	__u64 netns_cookie; /* the node's own network namespace (SO_NETNS_COOKIE) */
	__u32 flags;	    /* enum shoal_scope_flags */
	__u32 pad0;
};
_Static_assert(sizeof(struct shoal_scope) == 16, "shoal_scope layout");

/*
 * The same, as the sock_addr programs read it: rodata of the socket-LB object, set by the loader
 * from the scope it chose or from the pinned shoal_scope (a tool that swaps programs into the
 * pinned links cannot change whom they act on), so the check reads no map for the node's own
 * namespace. `cgroup_id` (0: not known) is the node's cgroup2 subtree at `cgroup_level` (the
 * root is 0); the programs no longer read it (a pod is recognised by its namespace in
 * shoal_netns_dm, one inlined array access, cheaper than the ancestor-cgroup helper), the
 * loader still fills it for tools.
 */
struct shoal_scope_cfg {
	__u64 netns_cookie;
	__u64 cgroup_id;
	__u32 cgroup_level;
	__u32 flags; /* enum shoal_scope_flags */
};
_Static_assert(sizeof(struct shoal_scope_cfg) == 24, "shoal_scope_cfg layout");

/* Load-time knobs (rodata of every program). */
enum shoal_cfg_flags {
	SHOAL_CFG_TCP_PEER = 1 << 0, /* TCP getpeername() shows the frontend (shoal_be_rev, sk_peer) */
	SHOAL_CFG_UDP = 1 << 1,      /* translate UDP (sendmsg4/recvmsg4) */
};

struct shoal_cfg {
	__u32 flags;       /* enum shoal_cfg_flags */
	__u32 maglev_seed; /* cluster-wide; every node must use the same */
};
_Static_assert(sizeof(struct shoal_cfg) == 8, "shoal_cfg layout");

/* Load-time knobs of the tc NodePort programs (rodata). */
struct shoal_np_cfg {
	__be32 node_ip;      /* this node's uplink address: NodePort frontends, SNAT source */
	__u32 maglev_m;      /* entries per Maglev table (prime) */
	__u32 maglev_seed;   /* cluster-wide; every node must use the same */
	__u16 snat_min;      /* SNAT port range (host order) */
	__u16 snat_max;
};
_Static_assert(sizeof(struct shoal_np_cfg) == 16, "shoal_np_cfg layout");

#endif
