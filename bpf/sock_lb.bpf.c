/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only */
/*
 * Socket-level load balancing (cgroup sock_addr hooks), in the manner of Cilium's bpf_sock.c.
 *
 * connect4      TCP and connected UDP: rewrite ClusterIP:port to a backend once per socket.
 * sendmsg4      unconnected UDP: the same, per datagram.
 * recvmsg4      UDP: rewrite the backend source back to the VIP (the app sees who it asked).
 * getpeername4  both: report the VIP as the peer.
 * iter/udp      tear down connected UDP sockets whose backend user space removed (shoal_destroy).
 * sock_create   (host-reachable scope) remember the network namespace of every socket created in
 *               the node's cgroup subtree: the node's pods (shoal_netns_dm, shoal_netns).
 *
 * Attached at the cgroup2 root (host-reachable scope), the sock_addr programs run for every
 * socket of the machine; several nodes may share it. Their first check is whether the socket is
 * the node's (sock_ours()): in the node's network namespace or one of its pods' (the socket's
 * netns cookie); else it is left untouched.
 *
 * A service without backends refuses at once: connect()/sendmsg() fail with EHOSTUNREACH, as
 * Cilium does (bpf_set_retval, then reject).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpf/shoal_abi.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/lb.h"

#define SYS_REJECT  0
#define SYS_PROCEED 1
#define EHOSTUNREACH 113
#define AF_INET 2

const volatile struct shoal_cfg shoal_cfg = {
	.flags = SHOAL_CFG_TCP_PEER | SHOAL_CFG_UDP,
};

/* whom the programs act on (shoal_abi.h); the pinned shoal_scope below is the loader's record */
const volatile struct shoal_scope_cfg shoal_scope_cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct shoal_scope);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_scope SEC(".maps");

/*
 * The network namespaces of the node's pods, for the first check (sock_ours): a direct-mapped
 * array, netns cookie & (SHOAL_NETNS_DM - 1) -> cookie, that a pod's call finds with one
 * inlined access (no helper call, no hash), backed by the LRU hash shoal_netns (cookie -> 1),
 * which has every one of them (two cookies on one array entry take turns there). Both are
 * written by sock_create for every socket created in the node's cgroup subtree, so a pod's
 * namespace is in both before any of its sockets can connect.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SHOAL_NETNS_DM);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_netns_dm SEC(".maps");

/* netns cookie -> 1: the network namespaces of the node's pods */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, __u8);
	__uint(max_entries, SHOAL_DEF_NETNS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_netns SEC(".maps");

/*
 * TCP backend -> the frontend getpeername() shows (shoal_abi.h), written by user space: a TCP
 * connect() through that frontend writes nothing per socket.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shoal_be_rev_key);
	__type(value, struct shoal_be_rev_val);
	__uint(max_entries, SHOAL_DEF_BACKEND_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_be_rev SEC(".maps");

/*
 * Connected sockets (connect4: connected UDP always; TCP only where shoal_be_rev cannot answer:
 * through a frontend other than the backend's entry, or straight to a backend's address) have
 * one peer: its backend -> frontend record lives with the socket (socket-local storage, freed
 * with it). rev_nat 0: the socket connected to the backend itself, show it as it is. The shared
 * LRU hash shoal_sk_nat stays for unconnected UDP (one socket, many backends).
 */
struct shoal_sk_peer {
	__be32 ip;
	__be16 port;
	__u16 rev_nat;
	__be32 vip;
	__be16 vport;
	__u16 pad0;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct shoal_sk_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME); /* a restarted daemon still reads the live sockets' */
} shoal_sk_peer SEC(".maps");

/*
 * The backends connect4 picks from when a service has more than SHOAL_SVC_INLINE (shoal_abi.h):
 * slot 0's `backend_id` names a region, written whole before slot 0 names it and not changed while
 * it does. An array: the verifier inlines the lookup (bounds check and address arithmetic, no
 * helper call, no hash).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct shoal_svc_be);
	__uint(max_entries, SHOAL_DEF_BE_TBL_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_be_tbl SEC(".maps");

/*
 * The socket LB needs only the backend's address: without affinity slot 0 holds it for a service
 * of at most SHOAL_SVC_INLINE backends, a region of shoal_be_tbl for a bigger one (one hash
 * lookup per connect() either way, the one that found the service); without a region (the table
 * was full) the chosen slot (two). With affinity the backend entry decides.
 * *ret_flags: the slot's flags (SHOAL_SVC_SK_PEER); with affinity no slot is read, so
 * SHOAL_SVC_SK_PEER (the caller records the frontend, which is always correct).
 * Returns false when the service has no usable backend.
 */
static __always_inline bool lb4_select_addr(__be32 vip, __be16 port, __u8 proto,
					    const struct shoal_svc_val *svc, __u64 client,
					    __u8 kind, __be32 *ret_ip, __be16 *ret_port,
					    __u8 *ret_flags)
{
	struct shoal_svc_key key = {.vip = vip, .port = port, .proto = proto};
	const struct shoal_backend *be;
	const struct shoal_svc_val *slot;
	const struct shoal_svc_be *in;
	__u16 n = svc->count, base = 0;
	__u32 i;

	if (svc->flags & SHOAL_SVC_AFFINITY) {
		be = lb4_select(vip, port, proto, svc, client, kind);
		if (!be)
			return false;
		*ret_ip = be->ip;
		*ret_port = be->port;
		*ret_flags = SHOAL_SVC_SK_PEER;
		return true;
	}
	if (!n) {
		n = svc->term_count;
		base = SHOAL_SLOT_TERM;
	}
	if (!n)
		return false;
	/* one backend: no random number to draw; else [0, n) by multiply and shift */
	i = n == 1 ? 0 : lb_reduce(lb_rand(), n);
	if (n <= SHOAL_SVC_INLINE) {
		in = &svc->be[i & (SHOAL_SVC_INLINE - 1)];
	} else if (svc->flags & SHOAL_SVC_TBL) {
		__u32 k = svc->backend_id + i;

		in = bpf_map_lookup_elem(&shoal_be_tbl, &k);
		if (!in)
			return false;
	} else {
		key.slot = base + i + 1;
		slot = bpf_map_lookup_elem(&shoal_svc, &key);
		if (!slot || !slot->be[0].ip)
			return false;
		*ret_ip = slot->be[0].ip;
		*ret_port = slot->be[0].port;
		*ret_flags = slot->flags;
		return true;
	}
	if (!in->ip)
		return false;
	*ret_ip = in->ip;
	*ret_port = in->port;
	*ret_flags = in->flags;
	return true;
}

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/*
 * The socket's network namespace cookie, read from the socket itself: what
 * bpf_get_netns_cookie() returns, without its helper call (bpf_rdonly_cast is resolved by the
 * verifier; the two loads are the helper's own).
 */
static __always_inline __u64 sock_netns_cookie(struct bpf_sock *bsk)
{
	struct sock *sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));

	return sk->__sk_common.skc_net.net->net_cookie;
}

static __always_inline bool sock_proto_handled(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return true;
	return proto == IPPROTO_UDP && (shoal_cfg.flags & SHOAL_CFG_UDP);
}

static __always_inline void sock4_revnat_record(struct bpf_sock_addr *ctx, __be32 be_ip,
						__be16 be_port, __be32 vip, __be16 port,
						__u16 rev_nat, bool connect)
{
	struct shoal_sk_nat_key key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.ip = be_ip,
		.port = be_port,
	};
	struct shoal_sk_nat_val val = { .vip = vip, .port = port, .rev_nat = rev_nat };
	struct shoal_sk_nat_val *old;

	/* unconnected UDP sends to the same backend over and over: don't rewrite the entry.
	 * connect() happens once per socket (a new cookie): write without looking first. */
	if (!connect) {
		old = bpf_map_lookup_elem(&shoal_sk_nat, &key);
		if (old && old->vip == vip && old->port == port && old->rev_nat == rev_nat)
			return;
	}
	bpf_map_update_elem(&shoal_sk_nat, &key, &val, BPF_ANY);
}

/*
 * Is this socket the node's? The first thing every sock_addr program asks: a socket of any other
 * network namespace (another node on the same machine, the machine's own) is not touched.
 * Cheapest first, no helper call until the last step: the scope (rodata), the socket's netns
 * cookie (two loads) against the node's (rodata), then the pods' (shoal_netns_dm: one inlined
 * array access, where a pod's call ends), and only on a miss there the hash shoal_netns
 * (where a foreign socket ends, and a pod whose array entry another pod took).
 */
static __always_inline bool sock_ours(struct bpf_sock *sk)
{
	__u32 k;
	__u64 cookie, *dm;

	if (shoal_scope_cfg.flags & SHOAL_SCOPE_ALL)
		return true;
	cookie = sock_netns_cookie(sk);
	if (cookie == shoal_scope_cfg.netns_cookie)
		return true;
	k = (__u32)cookie & (SHOAL_NETNS_DM - 1);
	dm = bpf_map_lookup_elem(&shoal_netns_dm, &k);
	if (dm && *dm == cookie)
		return true;
	return bpf_map_lookup_elem(&shoal_netns, &cookie) != NULL;
}

static __always_inline void sock4_peer_record(struct bpf_sock_addr *ctx, __be32 be_ip,
					      __be16 be_port, __be32 vip, __be16 port, __u16 rev_nat)
{
	struct shoal_sk_peer *pe =
		bpf_sk_storage_get(&shoal_sk_peer, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (pe) {
		pe->ip = be_ip;
		pe->port = be_port;
		pe->rev_nat = rev_nat;
		pe->vip = vip;
		pe->vport = port;
	}
}

/* 0: done (translated or not a service); -EHOSTUNREACH: a service with no usable backend. */
static __always_inline int sock4_xlate_fwd(struct bpf_sock_addr *ctx, bool connect)
{
	__u8 proto = ctx->protocol;
	__be32 vip = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;
	struct shoal_svc_val *svc;
	__u64 client = 0;
	__be32 be_ip;
	__be16 be_port;
	__u8 slot_flags;

	if (!sock_proto_handled(proto))
		return 0;
	if (!sock_ours(ctx->sk))
		return 0;
	svc = lb4_lookup_service(vip, port, proto);
	if (!svc) {
		/* a TCP connect() straight to a backend's address: getpeername() must not show
		 * the frontend shoal_be_rev names for it */
		if (connect && proto == IPPROTO_TCP && (shoal_cfg.flags & SHOAL_CFG_TCP_PEER)) {
			struct shoal_be_rev_key rk = { .ip = vip, .port = port, .proto = proto };

			if (bpf_map_lookup_elem(&shoal_be_rev, &rk))
				sock4_peer_record(ctx, vip, port, vip, port, 0);
		}
		return 0;
	}
	/* the affinity client is the socket's network namespace (a pod) */
	if (svc->flags & SHOAL_SVC_AFFINITY)
		client = sock_netns_cookie(ctx->sk);
	if (!lb4_select_addr(vip, port, proto, svc, client, SHOAL_AFF_NETNS, &be_ip, &be_port,
			     &slot_flags))
		return -EHOSTUNREACH;
	if (proto == IPPROTO_TCP) {
		/* the one per-connection write, only where shoal_be_rev would name another frontend */
		if (connect && (slot_flags & SHOAL_SVC_SK_PEER) &&
		    (shoal_cfg.flags & SHOAL_CFG_TCP_PEER))
			sock4_peer_record(ctx, be_ip, be_port, vip, port, svc->rev_nat);
	} else if (connect) {
		sock4_peer_record(ctx, be_ip, be_port, vip, port, svc->rev_nat);
	} else {
		sock4_revnat_record(ctx, be_ip, be_port, vip, port, svc->rev_nat, connect);
	}
	ctx->user_ip4 = be_ip;
	ctx->user_port = be_port;
	return 0;
}

static __always_inline void sock4_xlate_rev(struct bpf_sock_addr *ctx)
{
	struct shoal_sk_nat_key key = {};
	struct shoal_sk_nat_val *val;
	struct shoal_sk_peer *pe;
	__u8 proto = ctx->protocol;

	if (!sock_ours(ctx->sk))
		return;
	pe = bpf_sk_storage_get(&shoal_sk_peer, ctx->sk, 0, 0);
	if (pe && pe->ip == ctx->user_ip4 && pe->port == (__be16)ctx->user_port) {
		if (!pe->rev_nat)
			return; /* connected to the backend itself */
		/* the service is gone: show the real peer from now on */
		if (!lb4_lookup_service(pe->vip, pe->vport, proto)) {
			bpf_sk_storage_delete(&shoal_sk_peer, ctx->sk);
			return;
		}
		ctx->user_ip4 = pe->vip;
		ctx->user_port = pe->vport;
		return;
	}
	if (proto == IPPROTO_TCP) {
		struct shoal_be_rev_key rk = {
			.ip = ctx->user_ip4,
			.port = (__be16)ctx->user_port,
			.proto = proto,
		};
		struct shoal_be_rev_val *rv;

		if (!(shoal_cfg.flags & SHOAL_CFG_TCP_PEER))
			return;
		rv = bpf_map_lookup_elem(&shoal_be_rev, &rk);
		/* a frontend that is gone is not shown */
		if (!rv || !lb4_lookup_service(rv->vip, rv->port, proto))
			return;
		ctx->user_ip4 = rv->vip;
		ctx->user_port = rv->port;
		return;
	}
	key.cookie = bpf_get_socket_cookie(ctx);
	key.ip = ctx->user_ip4;
	key.port = (__be16)ctx->user_port;
	val = bpf_map_lookup_elem(&shoal_sk_nat, &key);
	if (!val)
		return;
	/* the service is gone: show the real peer and drop the stale entry */
	if (!lb4_lookup_service(val->vip, val->port, proto)) {
		bpf_map_delete_elem(&shoal_sk_nat, &key);
		return;
	}
	ctx->user_ip4 = val->vip;
	ctx->user_port = val->port;
}

SEC("cgroup/connect4")
int shoal_sock4_connect(struct bpf_sock_addr *ctx)
{
	int err = sock4_xlate_fwd(ctx, true);

	if (err) {
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

SEC("cgroup/sendmsg4")
int shoal_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	int err = sock4_xlate_fwd(ctx, false);

	if (err) {
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

SEC("cgroup/recvmsg4")
int shoal_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int shoal_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

/*
 * Host-reachable scope: attached to the node's cgroup subtree, so it sees the sockets of the
 * node's pods (and of the daemon) as they are created, before any can connect. Their network
 * namespace becomes one the sock_addr programs at the root act on.
 */
SEC("cgroup/sock_create")
int shoal_sock_create(struct bpf_sock *ctx)
{
	__u64 cookie = bpf_get_netns_cookie(ctx);
	__u32 k = (__u32)cookie & (SHOAL_NETNS_DM - 1);
	__u64 *dm = bpf_map_lookup_elem(&shoal_netns_dm, &k);
	__u8 one = 1;

	if (dm && *dm == cookie)
		return 1; /* known: the common case, a namespace's second socket on */
	if (!bpf_map_lookup_elem(&shoal_netns, &cookie))
		bpf_map_update_elem(&shoal_netns, &cookie, &one, BPF_NOEXIST);
	if (dm)
		*dm = cookie;
	return 1;
}

/*
 * Runs in the network namespace of whoever reads the iterator. Destroys connected UDP sockets
 * that this datapath pointed at a backend listed in shoal_destroy (the sk_nat entry proves we
 * translated it; a socket an app connected to the pod IP itself is left alone).
 */
SEC("iter/udp")
int shoal_sock4_udp_destroy(struct bpf_iter__udp *ctx)
{
	struct sock *sk = (struct sock *)ctx->udp_sk;
	struct shoal_destroy_key dkey = { .proto = IPPROTO_UDP };
	struct shoal_sk_nat_key nkey = {};
	struct shoal_sk_peer *pe;

	if (!sk)
		return 0;
	if (sk->__sk_common.skc_family != AF_INET || !sk->__sk_common.skc_daddr)
		return 0;
	dkey.ip = sk->__sk_common.skc_daddr;
	dkey.port = sk->__sk_common.skc_dport;
	if (!bpf_map_lookup_elem(&shoal_destroy, &dkey))
		return 0;
	pe = bpf_sk_storage_get(&shoal_sk_peer, sk, 0, 0);
	if (!pe || pe->ip != dkey.ip || pe->port != dkey.port) {
		nkey.cookie = bpf_get_socket_cookie(sk);
		nkey.ip = dkey.ip;
		nkey.port = dkey.port;
		if (!bpf_map_lookup_elem(&shoal_sk_nat, &nkey))
			return 0;
	}
	/* one byte per destroyed socket: the reader counts them */
	if (bpf_sock_destroy((struct sock_common *)sk) == 0)
		bpf_seq_write(ctx->meta->seq, "x", 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
