/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only */
/*
 * NodePort and external traffic on the node's uplink (tc clsact, direct action), in the manner
 * of Cilium's nodeport.h.
 *
 * shoal_np_ingress  client -> frontend (node address:nodePort, externalIP:port): pick a backend
 *                   (ClientIP affinity, else the frontend's Maglev table, so every node picks the
 *                   same backend for a flow), DNAT to it; when the backend is on another node,
 *                   also SNAT to this node's address so the reply comes back through us.
 *                   Replies of SNATed flows (backend -> node:snat port): reverse both.
 * shoal_np_egress   replies of node-local backends leaving towards the client: source back to
 *                   the frontend.
 *
 * A flow is tracked in shoal_ct (LRU) under its forward and its reply tuple. Checksums are
 * patched incrementally (bpf_l3_csum_replace / bpf_l4_csum_replace). Packets for a backend on
 * this node go on through the stack (its conntrack must see them, see shoal_np_ingress); those
 * that must leave again are sent with bpf_fib_lookup + bpf_redirect (bpf_redirect_neigh while
 * the neighbour is unresolved); when the FIB cannot route at all they go to the stack.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpf/shoal_abi.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/np_maps.h"
#include "bpf/lib/lb.h"
#include "bpf/lib/jhash.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define AF_INET 2
#define ETH_ALEN 6

#define ETH_HLEN 14
#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_SRC_OFF (IP_OFF + offsetof(struct iphdr, saddr))
#define IP_DST_OFF (IP_OFF + offsetof(struct iphdr, daddr))
#define IP_TTL_OFF (IP_OFF + offsetof(struct iphdr, ttl))
#define L4_OFF (IP_OFF + 20)
#define L4_SPORT_OFF (L4_OFF + 0)
#define L4_DPORT_OFF (L4_OFF + 2)
#define TCP_CSUM_OFF (L4_OFF + offsetof(struct tcphdr, check))
#define UDP_CSUM_OFF (L4_OFF + offsetof(struct udphdr, check))

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* Conntrack lifetimes: an entry older than this is a new flow. */
#define CT_LIFE_TCP (6 * 3600 * NSEC_PER_SEC)
#define CT_LIFE_CLOSING (10 * NSEC_PER_SEC)
#define CT_LIFE_UDP (60 * NSEC_PER_SEC)
#define SNAT_TRIES 16

const volatile struct shoal_np_cfg np_cfg = {
    .maglev_m = SHOAL_DEF_MAGLEV_M,
    .snat_min = 32768,
    .snat_max = 60999,
};

struct pkt {
	__be32 saddr, daddr;
	__be16 sport, dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 udp_csum_zero;
};

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&shoal_np_stats, &idx);

	if (v)
		*v += 1;
}

/* IPv4 without options, TCP or UDP, not a non-first fragment. 0: parsed; <0: not ours. */
static __always_inline int pkt_parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct udphdr *udp;
	struct tcphdr *tcp;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x1fff)))
		return -1;
	p->proto = ip->protocol;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->tcp_flags = 0;
	p->udp_csum_zero = 0;
	if (p->proto == IPPROTO_TCP) {
		tcp = (void *)(ip + 1);
		if ((void *)(tcp + 1) > end)
			return -1;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		return 0;
	}
	if (p->proto == IPPROTO_UDP) {
		udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > end)
			return -1;
		p->sport = udp->source;
		p->dport = udp->dest;
		p->udp_csum_zero = udp->check == 0;
		return 0;
	}
	return -1;
}

static __always_inline int csum_off(const struct pkt *p)
{
	return p->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF;
}

/* Rewrite one address (src or dst) with both checksums. */
static __always_inline int rewrite_addr(struct __sk_buff *skb, const struct pkt *p, int off,
					__be32 old, __be32 new)
{
	if (old == new)
		return 0;
	if (!p->udp_csum_zero &&
	    bpf_l4_csum_replace(skb, csum_off(p), old, new, BPF_F_PSEUDO_HDR | sizeof(new)) < 0)
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old, new, sizeof(new)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0);
}

static __always_inline int rewrite_port(struct __sk_buff *skb, const struct pkt *p, int off,
					__be16 old, __be16 new)
{
	if (old == new)
		return 0;
	if (!p->udp_csum_zero && bpf_l4_csum_replace(skb, csum_off(p), old, new, sizeof(new)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0);
}

/*
 * Send the (rewritten) packet on towards its destination. The stack is no fallback for SNATed
 * packets (their source is a local address: martian on input), so an unresolved neighbour goes
 * through bpf_redirect_neigh, which resolves it.
 */
static __always_inline int fwd_redirect(struct __sk_buff *skb, __be32 saddr, __be32 daddr)
{
	struct bpf_fib_lookup fib = {
	    .family = AF_INET,
	    .ipv4_src = saddr,
	    .ipv4_dst = daddr,
	};
	struct bpf_redir_neigh nh = {.nh_family = AF_INET};
	void *data, *end;
	struct ethhdr *eth;
	struct iphdr *ip;
	long rc;
	__u8 ttl;

	fib.ifindex = skb->ingress_ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		stat_inc(SHOAL_NP_FIB_PASS);
		return TC_ACT_OK;
	}
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > end)
		return TC_ACT_SHOT;
	ttl = ip->ttl;
	if (ttl <= 1)
		return TC_ACT_OK; /* the stack sends the ICMP time exceeded */
	/* we route: one hop less (ttl is the high byte of the ttl/protocol word) */
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, bpf_htons((__u16)ttl << 8),
			    bpf_htons((__u16)(ttl - 1) << 8), 2);
	ttl--;
	bpf_skb_store_bytes(skb, IP_TTL_OFF, &ttl, 1, 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		nh.ipv4_nh = fib.ipv4_dst; /* the next hop the FIB chose */
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

static __always_inline bool ct_stale(const struct shoal_ct_val *ct, const struct pkt *p, __u64 now)
{
	__u64 life = p->proto != IPPROTO_TCP	     ? CT_LIFE_UDP
		     : ct->state == SHOAL_CT_CLOSING ? CT_LIFE_CLOSING
						     : CT_LIFE_TCP;

	if (now - ct->last_seen_ns > life)
		return true;
	/* a fresh SYN on a closed flow's tuple starts a new flow */
	return ct->state == SHOAL_CT_CLOSING && (p->tcp_flags & TCP_FLAG_SYN) &&
	       !(p->tcp_flags & TCP_FLAG_ACK);
}

static __always_inline void ct_touch(struct shoal_ct_val *ct, const struct pkt *p, __u64 now)
{
	ct->last_seen_ns = now;
	ct->packets++;
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		ct->state = SHOAL_CT_CLOSING;
	else if (ct->state == SHOAL_CT_NEW && (p->tcp_flags & TCP_FLAG_ACK))
		ct->state = SHOAL_CT_ESTABLISHED;
}

/* Maglev: the frontend's table at hash(client, ports) — the same on every node. */
static __always_inline __u32 np_maglev_pick(const struct shoal_svc_val *svc, const struct pkt *p)
{
	__u16 rn = svc->rev_nat;
	__u32 idx, *id;
	void *table;

	table = bpf_map_lookup_elem(&shoal_maglev, &rn);
	if (!table || !np_cfg.maglev_m)
		return 0;
	/* not the node address: a flow sent to any node hashes alike */
	idx = lb_reduce(jhash_3words(p->saddr, ((__u32)p->sport << 16) | p->dport, p->proto,
				     np_cfg.maglev_seed),
			np_cfg.maglev_m);
	id = bpf_map_lookup_elem(table, &idx);
	return id ? *id : 0;
}

static __always_inline struct shoal_backend *np_select(const struct shoal_svc_val *svc,
						       const struct pkt *p, __u32 *ret_id)
{
	struct shoal_backend *be;
	__u64 now = 0;
	__u32 id = 0;

	if (svc->flags & SHOAL_SVC_AFFINITY) {
		now = bpf_ktime_get_ns();
		id = lb4_affinity_get(svc, p->saddr, SHOAL_AFF_IP, now);
	}
	if (!id)
		id = np_maglev_pick(svc, p);
	if (!id) /* no table yet (being programmed) or only terminating backends */
		id = lb4_pick_backend(p->daddr, p->dport, p->proto, svc);
	if (!id)
		return NULL;
	be = bpf_map_lookup_elem(&shoal_backend, &id);
	if (be && (svc->flags & SHOAL_SVC_AFFINITY))
		lb4_affinity_put(svc, p->saddr, SHOAL_AFF_IP, now, id);
	*ret_id = id;
	return be;
}

/* The conntrack key of the packet's own tuple, as an entry of the reply direction stores it. */
static __always_inline struct shoal_ct_key ct_key_of(const struct pkt *p)
{
	return (struct shoal_ct_key){.saddr = p->saddr,
				     .daddr = p->daddr,
				     .sport = p->sport,
				     .dport = p->dport,
				     .proto = p->proto,
				     .dir = SHOAL_CT_EGRESS};
}

/* A node port for the SNATed flow whose reply tuple is free. 0 if none found. */
static __always_inline __be16 np_snat_port(const struct pkt *p, const struct shoal_backend *be)
{
	struct shoal_ct_key rk = {
	    .saddr = be->ip,
	    .daddr = np_cfg.node_ip,
	    .sport = be->port,
	    .proto = p->proto,
	    .dir = SHOAL_CT_EGRESS,
	};
	__u32 span = (__u32)np_cfg.snat_max - np_cfg.snat_min + 1;
	/* first try: from the client's port (spread over the 32 bits), then random */
	__u32 h = bpf_ntohs(p->sport) * 0x10001u;
	__u64 now = bpf_ktime_get_ns();

	for (int i = 0; i < SNAT_TRIES; i++) {
		struct shoal_ct_val *old;
		__u16 port = np_cfg.snat_min + lb_reduce(h, span);

		rk.dport = bpf_htons(port);
		old = bpf_map_lookup_elem(&shoal_ct, &rk);
		if (!old ||
		    (now - old->last_seen_ns > CT_LIFE_UDP && old->state != SHOAL_CT_ESTABLISHED))
			return rk.dport;
		h = lb_rand();
	}
	return 0;
}

SEC("tc")
int shoal_np_ingress(struct __sk_buff *skb)
{
	struct shoal_ct_key key = {}, rkey = {};
	struct shoal_ct_val *ct, nct = {}, rct = {};
	struct shoal_backend *be = NULL;
	struct shoal_svc_val *svc;
	struct shoal_revnat *fe;
	__be32 snat_addr = 0;
	__be16 snat_port = 0;
	__u32 id = 0;
	struct pkt p;
	__u64 now;

	if (pkt_parse(skb, &p) < 0)
		return TC_ACT_OK;
	now = bpf_ktime_get_ns();

	/* the answer of a backend on another node, to our SNAT port */
	key = ct_key_of(&p);
	ct = bpf_map_lookup_elem(&shoal_ct, &key);
	if (ct && (ct->flags & SHOAL_CT_F_SNAT)) {
		__be32 client = ct->nat_addr;
		__be16 cport = ct->nat_port;
		__u16 rn = ct->rev_nat;

		fe = bpf_map_lookup_elem(&shoal_revnat, &rn);
		if (!fe)
			return TC_ACT_OK;
		ct_touch(ct, &p, now);
		if (rewrite_addr(skb, &p, IP_SRC_OFF, p.saddr, fe->vip) < 0 ||
		    rewrite_port(skb, &p, L4_SPORT_OFF, p.sport, fe->port) < 0 ||
		    rewrite_addr(skb, &p, IP_DST_OFF, p.daddr, client) < 0 ||
		    rewrite_port(skb, &p, L4_DPORT_OFF, p.dport, cport) < 0)
			return TC_ACT_SHOT;
		stat_inc(SHOAL_NP_REV);
		return fwd_redirect(skb, fe->vip, client);
	}

	svc = lb4_lookup_service(p.daddr, p.dport, p.proto);
	if (!svc || !(svc->flags & (SHOAL_SVC_NODEPORT | SHOAL_SVC_EXTERNAL)))
		return TC_ACT_OK;

	key.dir = SHOAL_CT_INGRESS;
	ct = bpf_map_lookup_elem(&shoal_ct, &key);
	if (ct && !ct_stale(ct, &p, now) && ct->rev_nat == svc->rev_nat) {
		id = ct->backend_id;
		be = bpf_map_lookup_elem(&shoal_backend, &id);
		if (be) {
			ct_touch(ct, &p, now);
			snat_addr = ct->nat_addr;
			snat_port = ct->nat_port;
		}
	}
	if (!be) {
		be = np_select(svc, &p, &id);
		if (!be) {
			stat_inc(SHOAL_NP_NO_BACKEND);
			return TC_ACT_SHOT;
		}
		nct.backend_id = id;
		nct.rev_nat = svc->rev_nat;
		nct.last_seen_ns = now;
		nct.packets = 1;
		nct.flags = (be->flags & SHOAL_BE_LOCAL) ? SHOAL_CT_F_LOCAL : 0;
		rct = nct;
		rct.packets = 0;
		rct.nat_addr = p.saddr;
		rct.nat_port = p.sport;
		rkey = (struct shoal_ct_key){.saddr = be->ip,
					     .daddr = p.saddr,
					     .sport = be->port,
					     .dport = p.sport,
					     .proto = p.proto,
					     .dir = SHOAL_CT_EGRESS};
		/* a remote backend answers the node, unless the policy keeps traffic local */
		if (!(be->flags & SHOAL_BE_LOCAL) && !(svc->flags & SHOAL_SVC_LOCAL)) {
			snat_addr = np_cfg.node_ip;
			snat_port = np_snat_port(&p, be);
			if (!snat_addr || !snat_port) {
				stat_inc(SHOAL_NP_SNAT_FAIL);
				return TC_ACT_SHOT;
			}
			nct.flags |= SHOAL_CT_F_SNAT;
			rct.flags |= SHOAL_CT_F_SNAT;
			nct.nat_addr = snat_addr;
			nct.nat_port = snat_port;
			rkey.daddr = snat_addr;
			rkey.dport = snat_port;
		}
		/* reply entry first: once the forward entry exists, packets may be answered */
		if (bpf_map_update_elem(&shoal_ct, &rkey, &rct, BPF_ANY) < 0 ||
		    bpf_map_update_elem(&shoal_ct, &key, &nct, BPF_ANY) < 0)
			return TC_ACT_SHOT;
		stat_inc(SHOAL_NP_CT_NEW);
	}

	{
		__be32 bip = be->ip;
		__be16 bport = be->port;

		if (rewrite_addr(skb, &p, IP_DST_OFF, p.daddr, bip) < 0 ||
		    rewrite_port(skb, &p, L4_DPORT_OFF, p.dport, bport) < 0)
			return TC_ACT_SHOT;
		if (snat_addr && (rewrite_addr(skb, &p, IP_SRC_OFF, p.saddr, snat_addr) < 0 ||
				  rewrite_port(skb, &p, L4_SPORT_OFF, p.sport, snat_port) < 0))
			return TC_ACT_SHOT;
		stat_inc(SHOAL_NP_FWD);
		/*
		 * A backend on this node gets the packet through the stack, not a redirect: the
		 * node's conntrack must see the flow's first packet, or the backend's replies look
		 * like new flows the pod started and the pod masquerade rule (netplugin) rewrites
		 * their source to the node before our egress program can restore the frontend.
		 */
		if (!snat_addr)
			return TC_ACT_OK;
		return fwd_redirect(skb, snat_addr, bip);
	}
}

SEC("tc")
int shoal_np_egress(struct __sk_buff *skb)
{
	struct shoal_ct_key key;
	struct shoal_ct_val *ct;
	struct shoal_revnat *fe;
	struct pkt p;
	__u16 rn;

	if (pkt_parse(skb, &p) < 0)
		return TC_ACT_OK;
	key = ct_key_of(&p);
	ct = bpf_map_lookup_elem(&shoal_ct, &key);
	if (!ct || (ct->flags & SHOAL_CT_F_SNAT))
		return TC_ACT_OK;
	rn = ct->rev_nat;
	fe = bpf_map_lookup_elem(&shoal_revnat, &rn);
	if (!fe)
		return TC_ACT_OK;
	ct_touch(ct, &p, bpf_ktime_get_ns());
	if (rewrite_addr(skb, &p, IP_SRC_OFF, p.saddr, fe->vip) < 0 ||
	    rewrite_port(skb, &p, L4_SPORT_OFF, p.sport, fe->port) < 0)
		return TC_ACT_SHOT;
	stat_inc(SHOAL_NP_REV);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
