// SPDX-License-Identifier: Apache-2.0
/*
 * Routes to the other members' pod CIDRs (see routes.h). The event loop polls the members view
 * every ROUTES_POLL_MS: a view change (a new member, one declared dead, a pod CIDR published
 * later) is a few comparisons away, and polling needs no second change callback on the members
 * set, whose single slot the controllers use.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include "daemon/routes.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "netplugin/ipam.h"
#include "netplugin/np-internal.h"

#define ROUTES_POLL_MS 200
/* a restarted daemon keeps routes of members its view does not know yet for this long */
#define ROUTES_SETTLE_MS 15000
#define ROUTES_RESYNC_MS 10000 /* re-assert every route (someone may have removed one) */

DEFINE_CLEANUP_FUNC(struct rtnl_link, rtnl_link_put)
DEFINE_CLEANUP_FUNC(struct rtnl_route, rtnl_route_put)
DEFINE_CLEANUP_FUNC(struct rtnl_neigh, rtnl_neigh_put)
DEFINE_CLEANUP_FUNC(struct nl_addr, nl_addr_put)
DEFINE_CLEANUP_FUNC(struct nl_cache, nl_cache_free)

/* --- the plan (pure) --- */

static int addr_ip(const char *address, uint32_t *ret)
{
	char buf[64];
	const char *colon = strrchr(address, ':');
	size_t n = colon ? (size_t)(colon - address) : strlen(address);

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, address, n);
	buf[n] = 0;
	return ipam_addr_parse(buf, ret);
}

static uint32_t prefix_mask(int prefix)
{
	return prefix ? ~0u << (32 - prefix) : 0;
}

static bool cidrs_overlap(uint32_t a, int pa, uint32_t b, int pb)
{
	uint32_t m = prefix_mask(pa < pb ? pa : pb);

	return (a & m) == (b & m);
}

static int meta_pod_cidr(const char *meta, uint32_t *net, int *prefix)
{
	_cleanup_json_ cJSON *j = NULL;
	struct ipam_range range;
	const cJSON *c;

	if (strempty(meta))
		return -ENOENT;
	j = cJSON_Parse(meta);
	c = cJSON_GetObjectItemCaseSensitive(j, "podCIDR");
	if (!cJSON_IsString(c) || strempty(c->valuestring))
		return -ENOENT;
	if (ipam_range_parse(c->valuestring, NULL, NULL, &range, NULL) < 0)
		return -EINVAL;
	*net = range.network;
	*prefix = range.prefix;
	return 0;
}

int routes_plan(const struct members *m, uint32_t own_net, int own_prefix, struct routes_peer **ret,
		size_t *nret)
{
	size_t cap = members_view_count(m), n = 0;
	_cleanup_free_ struct routes_peer *out = NULL;

	*ret = NULL;
	*nret = 0;
	if (cap == 0)
		return 0;
	out = calloc(cap, sizeof(*out));
	if (!out)
		return -ENOMEM;
	/* the view is sorted by name: on a conflict the earlier name keeps the CIDR */
	for (size_t i = 0; i < cap; i++) {
		const struct members_info *mi = members_view_get(m, i);
		struct routes_peer p = {0};
		bool clash = false;

		if (streq(mi->name, members_self(m)) ||
		    (mi->state != MEMBERS_ALIVE && mi->state != MEMBERS_SUSPECT))
			continue;
		if (strlen(mi->name) >= sizeof(p.name) || addr_ip(mi->address, &p.ip) < 0 ||
		    meta_pod_cidr(mi->meta, &p.net, &p.prefix) < 0)
			continue;
		if (own_prefix && cidrs_overlap(p.net, p.prefix, own_net, own_prefix))
			continue;
		for (size_t k = 0; k < n && !clash; k++)
			clash = cidrs_overlap(p.net, p.prefix, out[k].net, out[k].prefix);
		if (clash)
			continue;
		strcpy(p.name, mi->name);
		out[n++] = p;
	}
	if (n)
		*ret = TAKE_PTR(out);
	*nret = n;
	return 0;
}

void routes_vtep_mac(uint32_t ip, uint8_t mac[6])
{
	/* locally administered (bit 1), unicast (bit 0 clear) */
	mac[0] = 0x0e;
	mac[1] = 0x5c;
	mac[2] = ip >> 24;
	mac[3] = ip >> 16;
	mac[4] = ip >> 8;
	mac[5] = ip;
}

/* --- the daemon side --- */

struct routes {
	struct event *timer;
	struct members *members;
	char *node_name;
	enum routes_overlay overlay;
	uint32_t own_net;
	int own_prefix;
	struct np_nl nl;
	int vx_ifindex;
	int pod_mtu;
	uint64_t started_ms, resynced_ms;
	struct routes_peer *cur; /* what is programmed */
	size_t ncur;
	bool adopted_pending; /* kernel routes from a previous run not yet matched */
	uint64_t syncs, errors, added, withdrawn;
};

static int nladdr4(uint32_t ip, int prefix, struct nl_addr **ret)
{
	uint32_t be = htonl(ip);
	struct nl_addr *a = nl_addr_build(AF_INET, &be, 4);

	if (!a)
		return -ENOMEM;
	nl_addr_set_prefixlen(a, prefix);
	*ret = a;
	return 0;
}

static void nl_clear(struct np_nl *nl)
{
	nl->kerr = 0;
	nl->extack[0] = 0;
}

static int route_msg(const struct routes *rt, const struct routes_peer *p, struct rtnl_route **ret)
{
	_cleanup_(rtnl_route_putp) struct rtnl_route *route = rtnl_route_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *d = NULL, *g = NULL;
	struct rtnl_nexthop *nh;

	if (!route || nladdr4(p->net, p->prefix, &d) < 0)
		return -ENOMEM;
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_protocol(route, ROUTES_RTPROT);
	rtnl_route_set_type(route, RTN_UNICAST);
	rtnl_route_set_scope(route, RT_SCOPE_UNIVERSE);
	if (rtnl_route_set_dst(route, d) < 0)
		return -EINVAL;
	nh = rtnl_route_nh_alloc();
	if (!nh)
		return -ENOMEM;
	/* direct: the kernel finds the interface on which the member's address is on-link (and
	 * refuses a member that is not); vxlan: the member's first pod address, on the VTEP */
	if (nladdr4(rt->overlay == ROUTES_VXLAN ? p->net : p->ip, 32, &g) < 0) {
		rtnl_route_nh_free(nh);
		return -ENOMEM;
	}
	rtnl_route_nh_set_gateway(nh, g);
	if (rt->overlay == ROUTES_VXLAN) {
		rtnl_route_nh_set_ifindex(nh, rt->vx_ifindex);
		rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
	}
	rtnl_route_add_nexthop(route, nh);
	*ret = TAKE_PTR(route);
	return 0;
}

/* VXLAN: the FDB entry (family AF_BRIDGE) or the neighbour (AF_INET) of a member's VTEP. */
static int vtep_msg(const struct routes *rt, const struct routes_peer *p, bool fdb,
		    struct rtnl_neigh **ret)
{
	_cleanup_(rtnl_neigh_putp) struct rtnl_neigh *n = rtnl_neigh_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *d = NULL, *ll = NULL;
	uint8_t mac[6];

	routes_vtep_mac(p->ip, mac);
	if (!n || nladdr4(fdb ? p->ip : p->net, 32, &d) < 0)
		return -ENOMEM;
	ll = nl_addr_build(AF_LLC, mac, 6);
	if (!ll)
		return -ENOMEM;
	rtnl_neigh_set_ifindex(n, rt->vx_ifindex);
	rtnl_neigh_set_dst(n, d); /* sets the family from the address: bridge comes after */
	if (fdb) {
		rtnl_neigh_set_family(n, AF_BRIDGE);
		rtnl_neigh_set_flags(n, NTF_SELF);
	}
	rtnl_neigh_set_lladdr(n, ll);
	rtnl_neigh_set_state(n, NUD_PERMANENT);
	*ret = TAKE_PTR(n);
	return 0;
}

static int peer_add(struct routes *rt, const struct routes_peer *p, struct err *e)
{
	_cleanup_(rtnl_route_putp) struct rtnl_route *route = NULL;
	char net[16], ip[16];
	int r;

	ipam_addr_format(p->net, net);
	ipam_addr_format(p->ip, ip);
	if (rt->overlay == ROUTES_VXLAN) {
		for (int fdb = 1; fdb >= 0; fdb--) {
			_cleanup_(rtnl_neigh_putp) struct rtnl_neigh *n = NULL;
			r = vtep_msg(rt, p, fdb, &n);
			if (r < 0)
				return r;
			nl_clear(&rt->nl);
			r = rtnl_neigh_add(rt->nl.sk, n, NLM_F_CREATE | NLM_F_REPLACE);
			if (r < 0)
				return np_nl_fail(&rt->nl, r, e, "%s of %s (%s)",
						  fdb ? "fdb entry" : "neighbour", p->name, ip);
		}
	}
	r = route_msg(rt, p, &route);
	if (r < 0)
		return r;
	nl_clear(&rt->nl);
	r = rtnl_route_add(rt->nl.sk, route, NLM_F_CREATE | NLM_F_REPLACE);
	if (r < 0)
		return np_nl_fail(&rt->nl, r, e, "route %s/%d via %s (%s)", net, p->prefix,
				  rt->overlay == ROUTES_VXLAN ? ROUTES_VXLAN_DEV : ip, p->name);
	return 0;
}

/* Remove a route by destination and our protocol (whatever its next hop), and in vxlan mode
 * the VTEP entries of the member. Gone already is fine. */
static int peer_del(struct routes *rt, const struct routes_peer *p, struct err *e)
{
	_cleanup_(rtnl_route_putp) struct rtnl_route *route = rtnl_route_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *d = NULL;
	int r;

	if (!route || nladdr4(p->net, p->prefix, &d) < 0)
		return -ENOMEM;
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_protocol(route, ROUTES_RTPROT);
	rtnl_route_set_scope(route, RT_SCOPE_NOWHERE);
	if (rtnl_route_set_dst(route, d) < 0)
		return -EINVAL;
	nl_clear(&rt->nl);
	r = rtnl_route_delete(rt->nl.sk, route, 0);
	if (r < 0 && rt->nl.kerr != ESRCH && rt->nl.kerr != ENOENT)
		return np_nl_fail(&rt->nl, r, e, "delete route to %s", p->name);
	if (rt->overlay != ROUTES_VXLAN || !p->ip)
		return 0;
	for (int fdb = 0; fdb <= 1; fdb++) {
		_cleanup_(rtnl_neigh_putp) struct rtnl_neigh *n = NULL;
		r = vtep_msg(rt, p, fdb, &n);
		if (r < 0)
			return r;
		nl_clear(&rt->nl);
		r = rtnl_neigh_delete(rt->nl.sk, n, 0);
		if (r < 0 && rt->nl.kerr != ENOENT && rt->nl.kerr != ESRCH)
			return np_nl_fail(&rt->nl, r, e, "delete %s of %s",
					  fdb ? "fdb entry" : "neighbour", p->name);
	}
	return 0;
}

struct kernel_routes {
	struct routes_peer *v;
	size_t n, cap;
	int err;
};

static void kernel_route_cb(struct nl_object *obj, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)obj;
	struct kernel_routes *k = arg;
	struct nl_addr *d = rtnl_route_get_dst(rt);

	if (rtnl_route_get_protocol(rt) != ROUTES_RTPROT || rtnl_route_get_family(rt) != AF_INET ||
	    !d || nl_addr_get_len(d) != 4)
		return;
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 16;
		struct routes_peer *v = realloc(k->v, cap * sizeof(*v));
		if (!v) {
			k->err = -ENOMEM;
			return;
		}
		k->v = v;
		k->cap = cap;
	}
	struct routes_peer *p = &k->v[k->n++];
	memset(p, 0, sizeof(*p));
	p->net = ntohl(*(uint32_t *)nl_addr_get_binary_addr(d));
	p->prefix = (int)nl_addr_get_prefixlen(d);
	snprintf(p->name, sizeof(p->name), "(unknown)");
}

/* Our routes in the kernel (from a previous run). */
static int kernel_routes_list(struct np_nl *nl, struct routes_peer **ret, size_t *nret)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	struct kernel_routes k = {0};

	if (rtnl_route_alloc_cache(nl->sk, AF_INET, 0, &cache) < 0)
		return -EIO;
	nl_cache_foreach(cache, kernel_route_cb, &k);
	if (k.err < 0) {
		free(k.v);
		return k.err;
	}
	*ret = k.v;
	*nret = k.n;
	return 0;
}

static bool peer_same(const struct routes_peer *a, const struct routes_peer *b)
{
	return a->net == b->net && a->prefix == b->prefix && a->ip == b->ip &&
	       streq(a->name, b->name);
}

static const struct routes_peer *peer_find(const struct routes_peer *v, size_t n,
					   const struct routes_peer *p)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].net == p->net && v[i].prefix == p->prefix)
			return &v[i];
	return NULL;
}

static void routes_sync(struct routes *rt)
{
	_cleanup_free_ struct routes_peer *want = NULL;
	size_t nwant = 0;
	uint64_t now = util_mono_ms();
	bool resync = now - rt->resynced_ms >= ROUTES_RESYNC_MS, failed = false;
	bool settled = now - rt->started_ms >= ROUTES_SETTLE_MS;
	int r;

	r = routes_plan(rt->members, rt->own_net, rt->own_prefix, &want, &nwant);
	if (r < 0)
		return;
	rt->syncs++;
	/* withdraw what is programmed and no longer wanted; a route adopted from a previous run
	 * (name unknown) waits until the view has settled */
	for (size_t i = 0; i < rt->ncur; i++) {
		struct routes_peer *c = &rt->cur[i];
		struct err e = {0};
		const struct routes_peer *w = peer_find(want, nwant, c);

		if (w)
			continue;
		if (!c->ip && !settled)
			continue; /* kept in cur */
		r = peer_del(rt, c, &e);
		if (r < 0) {
			rt->errors++;
			failed = true;
			log_warn_errno(r, "pod network: cannot withdraw %s: %s", c->name,
				       e.message);
			continue;
		}
		rt->withdrawn++;
		if (c->ip)
			log_info("pod network: withdrew the route to %s", c->name);
		c->net = 0;
		c->prefix = -1; /* removed below */
	}
	for (size_t i = 0; i < nwant; i++) {
		const struct routes_peer *c = peer_find(rt->cur, rt->ncur, &want[i]);
		struct err e = {0};
		char net[16], ip[16];

		if (c && peer_same(c, &want[i]) && !resync)
			continue;
		/* a member moved to another address: its old VTEP entries go first */
		if (c && c->ip && c->ip != want[i].ip && rt->overlay == ROUTES_VXLAN)
			peer_del(rt, c, &e);
		r = peer_add(rt, &want[i], &e);
		if (r < 0) {
			rt->errors++;
			failed = true;
			log_warn_errno(r, "pod network: %s%s", e.message,
				       rt->overlay == ROUTES_DIRECT && r == -ENETUNREACH
					   ? " (not on this node's link: --overlay vxlan)"
					   : "");
			want[i].prefix = -1; /* not programmed: retried next time */
			continue;
		}
		if (!c || !peer_same(c, &want[i])) {
			rt->added++;
			ipam_addr_format(want[i].net, net);
			ipam_addr_format(want[i].ip, ip);
			log_info("pod network: %s/%d via %s (%s)", net, want[i].prefix, ip,
				 want[i].name);
		}
	}
	/* cur = what is now in the kernel: the wanted ones that took, plus what stayed */
	size_t n = 0;
	struct routes_peer *next = calloc(nwant + rt->ncur + 1, sizeof(*next));
	if (!next)
		return;
	for (size_t i = 0; i < nwant; i++)
		if (want[i].prefix >= 0)
			next[n++] = want[i];
	for (size_t i = 0; i < rt->ncur; i++)
		if (rt->cur[i].prefix >= 0 && !peer_find(next, n, &rt->cur[i]))
			next[n++] = rt->cur[i];
	free(rt->cur);
	rt->cur = next;
	rt->ncur = n;
	if (resync && !failed)
		rt->resynced_ms = now;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	routes_sync(arg);
}

/* The interface holding ip, and its MTU. */
struct addr_find {
	uint32_t ip;
	int ifindex;
};

static void addr_find_cb(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct addr_find *f = arg;
	struct nl_addr *l = rtnl_addr_get_local(a);

	if (l && nl_addr_get_family(l) == AF_INET && nl_addr_get_len(l) == 4 &&
	    ntohl(*(uint32_t *)nl_addr_get_binary_addr(l)) == f->ip)
		f->ifindex = rtnl_addr_get_ifindex(a);
}

static int underlay_find(struct np_nl *nl, uint32_t ip, int *ifindex, int *mtu)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
	struct addr_find f = {.ip = ip};

	if (rtnl_addr_alloc_cache(nl->sk, &cache) < 0)
		return -EIO;
	nl_cache_foreach(cache, addr_find_cb, &f);
	if (!f.ifindex)
		return -EADDRNOTAVAIL;
	if (rtnl_link_get_kernel(nl->sk, f.ifindex, NULL, &link) < 0)
		return -ENODEV;
	*ifindex = f.ifindex;
	*mtu = (int)rtnl_link_get_mtu(link);
	return 0;
}

static bool vxlan_matches(struct rtnl_link *l, uint32_t vni, uint16_t port, uint32_t local, int mtu)
{
	_cleanup_(nl_addr_putp) struct nl_addr *a = NULL;
	uint32_t id = 0, p = 0;

	if (!rtnl_link_is_vxlan(l) || rtnl_link_vxlan_get_id(l, &id) < 0 || id != vni ||
	    rtnl_link_vxlan_get_port(l, &p) < 0 || p != port ||
	    rtnl_link_vxlan_get_local(l, &a) < 0 || !a || nl_addr_get_len(a) != 4 ||
	    ntohl(*(uint32_t *)nl_addr_get_binary_addr(a)) != local ||
	    (int)rtnl_link_get_mtu(l) != mtu)
		return false;
	return true;
}

static int vxlan_setup(struct routes *rt, const struct routes_opts *o, struct err *e)
{
	const struct members_info *self = members_view_find(rt->members, members_self(rt->members));
	_cleanup_(rtnl_link_putp) struct rtnl_link *old = NULL, *l = NULL;
	_cleanup_(nl_addr_putp) struct nl_addr *local = NULL, *mac = NULL;
	uint16_t port = o->vxlan_port ?: 4789;
	uint32_t vni = o->vxlan_vni ?: 1, ip;
	int under = 0, under_mtu = 0, r;
	uint8_t m[6];
	char ipstr[16];

	if (!self || addr_ip(self->address, &ip) < 0)
		return err_set(e, EADDRNOTAVAIL, 0, "",
			       "vxlan: this node's gossip address is unknown");
	ipam_addr_format(ip, ipstr);
	r = underlay_find(&rt->nl, ip, &under, &under_mtu);
	if (r < 0)
		return err_set(e, -r, 0, "", "vxlan: no interface holds this node's address %s",
			       ipstr);
	rt->pod_mtu = under_mtu - ROUTES_VXLAN_OVERHEAD;
	if (rtnl_link_get_kernel(rt->nl.sk, 0, ROUTES_VXLAN_DEV, &old) >= 0) {
		if (vxlan_matches(old, vni, port, ip, rt->pod_mtu))
			goto up; /* a previous run's device: its entries keep pods talking */
		nl_clear(&rt->nl);
		r = rtnl_link_delete(rt->nl.sk, old);
		if (r < 0)
			return np_nl_fail(&rt->nl, r, e, "delete stale %s", ROUTES_VXLAN_DEV);
	}
	l = rtnl_link_vxlan_alloc();
	routes_vtep_mac(ip, m);
	mac = nl_addr_build(AF_LLC, m, 6);
	if (!l || !mac || nladdr4(ip, 32, &local) < 0)
		return -ENOMEM;
	rtnl_link_set_name(l, ROUTES_VXLAN_DEV);
	rtnl_link_set_addr(l, mac);
	rtnl_link_set_mtu(l, (unsigned)rt->pod_mtu);
	r = rtnl_link_vxlan_set_id(l, vni);
	r = r ?: rtnl_link_vxlan_set_local(l, local);
	r = r ?: rtnl_link_vxlan_set_port(l, port);
	r = r ?: rtnl_link_vxlan_set_learning(l, 0);
	r = r ?: rtnl_link_vxlan_set_link(l, (uint32_t)under);
	if (r < 0)
		return err_set(e, EINVAL, 0, "", "vxlan: %s", nl_geterror(r));
	nl_clear(&rt->nl);
	r = rtnl_link_add(rt->nl.sk, l, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0)
		return np_nl_fail(&rt->nl, r, e, "create %s", ROUTES_VXLAN_DEV);
up:
	r = np_link_up(&rt->nl, ROUTES_VXLAN_DEV, 0, e);
	r = r ?: np_link_index(&rt->nl, ROUTES_VXLAN_DEV, &rt->vx_ifindex, NULL, NULL);
	if (r < 0)
		return r;
	/* the source of this node's own packets to other nodes' pods, as flannel does: the
	 * network address of its pod CIDR (never leased), on the VTEP */
	if (!np_addr_has(&rt->nl, rt->vx_ifindex, rt->own_net)) {
		r = np_addr_add(&rt->nl, rt->vx_ifindex, rt->own_net, 32, e);
		if (r < 0)
			return r;
	}
	return 0;
}

int routes_new(struct event_base *base, const struct routes_opts *o, struct routes **ret,
	       struct err *e)
{
	struct routes *rt = calloc(1, sizeof(*rt));
	struct ipam_range range;
	int r;

	if (!rt)
		return -ENOMEM;
	rt->members = o->members;
	rt->overlay = o->overlay;
	rt->node_name = strdup(o->node_name);
	r = rt->node_name ? 0 : -ENOMEM;
	r = r ?: ipam_range_parse(o->pod_cidr, NULL, NULL, &range, e);
	if (r < 0)
		goto fail;
	rt->own_net = range.network;
	rt->own_prefix = range.prefix;
	r = np_nl_open(&rt->nl, -1, e);
	if (r < 0)
		goto fail;
	if (rt->overlay == ROUTES_VXLAN) {
		r = vxlan_setup(rt, o, e);
		if (r < 0)
			goto fail;
	}
	r = kernel_routes_list(&rt->nl, &rt->cur, &rt->ncur);
	if (r < 0) {
		err_set(e, -r, 0, "", "list routes: %s", strerror(-r));
		goto fail;
	}
	rt->started_ms = rt->resynced_ms = util_mono_ms();
	rt->timer = event_new(base, -1, EV_PERSIST, on_timer, rt);
	if (!rt->timer) {
		r = -ENOMEM;
		goto fail;
	}
	struct timeval tv = {0, ROUTES_POLL_MS * 1000};
	event_add(rt->timer, &tv);
	routes_sync(rt);
	*ret = rt;
	return 0;
fail:
	routes_free(rt);
	return r;
}

struct routes *routes_free(struct routes *rt)
{
	if (!rt)
		return NULL;
	if (rt->timer)
		event_free(rt->timer);
	np_nl_close(&rt->nl);
	free(rt->cur);
	free(rt->node_name);
	free(rt);
	return NULL;
}

int routes_pod_mtu(const struct routes *rt)
{
	return rt ? rt->pod_mtu : 0;
}

int routes_metrics(void *ud, char **text)
{
	struct routes *rt = ud;
	size_t routed = 0;

	for (size_t i = 0; i < rt->ncur; i++)
		routed += rt->cur[i].ip != 0;
	if (asprintf(text,
		     "# HELP shoal_pod_routes Other nodes' pod CIDRs routed from this node.\n"
		     "# TYPE shoal_pod_routes gauge\n"
		     "shoal_pod_routes{overlay=\"%s\"} %zu\n"
		     "# HELP shoal_pod_route_changes_total Pod CIDR routes added and withdrawn.\n"
		     "# TYPE shoal_pod_route_changes_total counter\n"
		     "shoal_pod_route_changes_total{op=\"add\"} %llu\n"
		     "shoal_pod_route_changes_total{op=\"withdraw\"} %llu\n"
		     "# HELP shoal_pod_route_errors_total Failed route updates (retried).\n"
		     "# TYPE shoal_pod_route_errors_total counter\n"
		     "shoal_pod_route_errors_total %llu\n",
		     rt->overlay == ROUTES_VXLAN ? "vxlan" : "direct", routed,
		     (unsigned long long)rt->added, (unsigned long long)rt->withdrawn,
		     (unsigned long long)rt->errors) < 0)
		return -ENOMEM;
	return 0;
}

int routes_teardown(struct err *e)
{
	struct routes rt = {.overlay = ROUTES_DIRECT};
	_cleanup_free_ struct routes_peer *v = NULL;
	size_t n = 0;
	int r, ret = 0;

	r = np_nl_open(&rt.nl, -1, e);
	if (r < 0)
		return r;
	r = kernel_routes_list(&rt.nl, &v, &n);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = peer_del(&rt, &v[i], e);
		if (r < 0)
			ret = r;
	}
	if (r < 0)
		ret = r;
	r = np_link_delete(&rt.nl, ROUTES_VXLAN_DEV, e);
	if (r < 0 && r != -ENOENT)
		ret = r;
	np_nl_close(&rt.nl);
	return ret;
}
