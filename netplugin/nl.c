// SPDX-License-Identifier: Apache-2.0
/*
 * Kernel plumbing through libnl-route-3 (no `ip` binary): network namespaces, veth pairs,
 * addresses, routes and neighbours. Every socket asks for extended ACKs so the kernel's own
 * explanation of a refusal reaches the user's error message.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <openssl/sha.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include "lib/util.h"
#include "netplugin/ipam.h"
#include "netplugin/np-internal.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

DEFINE_CLEANUP_FUNC(struct rtnl_link, rtnl_link_put)
DEFINE_CLEANUP_FUNC(struct rtnl_addr, rtnl_addr_put)
DEFINE_CLEANUP_FUNC(struct rtnl_route, rtnl_route_put)
DEFINE_CLEANUP_FUNC(struct rtnl_neigh, rtnl_neigh_put)
DEFINE_CLEANUP_FUNC(struct nl_addr, nl_addr_put)
DEFINE_CLEANUP_FUNC(struct nl_cache, nl_cache_free)

void np_hash_hex(const char *s, char *buf, size_t nchars)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)s, strlen(s), md);
	if (nchars > 2 * SHA256_DIGEST_LENGTH)
		nchars = 2 * SHA256_DIGEST_LENGTH;
	for (size_t i = 0; i < nchars; i++)
		buf[i] = "0123456789abcdef"[(md[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
	buf[nchars] = 0;
}

/* --- netlink sockets with extended ack --- */

static int nl_err_cb(struct sockaddr_nl *nla, struct nlmsgerr *nlerr, void *arg)
{
	struct np_nl *nl = arg;
	struct nlmsghdr *hdr = (struct nlmsghdr *)((char *)nlerr - NLMSG_HDRLEN);

	nl->kerr = -nlerr->error;
	nl->extack[0] = 0;
	if (hdr->nlmsg_flags & NLM_F_ACK_TLVS) {
		/* NETLINK_CAP_ACK: only the request's header is echoed, TLVs follow. */
		size_t off = NLMSG_ALIGN(sizeof(*nlerr));
		size_t plen = hdr->nlmsg_len - NLMSG_HDRLEN;

		if (!(hdr->nlmsg_flags & NLM_F_CAPPED))
			off = NLMSG_ALIGN(sizeof(*nlerr) - sizeof(struct nlmsghdr) +
					  nlerr->msg.nlmsg_len);
		if (plen > off) {
			struct nlattr *a = nla_find((struct nlattr *)((char *)nlerr + off),
						    (int)(plen - off), NLMSGERR_ATTR_MSG);
			if (a)
				snprintf(nl->extack, sizeof(nl->extack), "%.*s", nla_len(a),
					 (const char *)nla_data(a));
		}
	}
	return NL_STOP;
}

static int setns_checked(int fd, struct err *e)
{
	if (setns(fd, CLONE_NEWNET) < 0)
		return err_set(e, errno, 500, "InternalError", "setns: %s", strerror(errno));
	return 0;
}

int np_nl_open(struct np_nl *nl, int ns_fd, struct err *e)
{
	_cleanup_close_ int self = -1;
	int one = 1, r;

	memset(nl, 0, sizeof(*nl));
	if (ns_fd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0)
			return err_set(e, errno, 500, "InternalError", "open own netns: %s",
				       strerror(errno));
		r = setns_checked(ns_fd, e);
		if (r < 0)
			return r;
	}
	nl->sk = nl_socket_alloc();
	r = nl->sk ? nl_connect(nl->sk, NETLINK_ROUTE) : -NLE_NOMEM;
	if (ns_fd >= 0 && setns(self, CLONE_NEWNET) < 0) {
		/* we would keep running in the pod's netns: refuse loudly */
		np_nl_close(nl);
		return err_set(e, errno, 500, "InternalError", "setns back: %s", strerror(errno));
	}
	if (r < 0) {
		np_nl_close(nl);
		return err_set(e, ENOMEM, 500, "InternalError", "netlink socket: %s",
			       nl_geterror(r));
	}
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	nl_socket_modify_err_cb(nl->sk, NL_CB_CUSTOM, nl_err_cb, nl);
	return 0;
}

void np_nl_close(struct np_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

static int nle_errno(int nlerr)
{
	switch (-nlerr) {
	case NLE_NOMEM:
		return ENOMEM;
	case NLE_EXIST:
		return EEXIST;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return ENOENT;
	case NLE_PERM:
	case NLE_NOACCESS:
		return EPERM;
	case NLE_BUSY:
		return EBUSY;
	case NLE_AGAIN:
		return EAGAIN;
	case NLE_INVAL:
	case NLE_RANGE:
		return EINVAL;
	default:
		return EIO;
	}
}

int np_nl_fail(struct np_nl *nl, int nlerr, struct err *e, const char *fmt, ...)
{
	char what[256];
	int errnum = nl->kerr ? nl->kerr : nle_errno(nlerr);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (nl->kerr && nl->extack[0])
		err_set(e, errnum, 500, "InternalError", "%s: %s (%s)", what, nl->extack,
			strerror(errnum));
	else if (nl->kerr)
		err_set(e, errnum, 500, "InternalError", "%s: %s", what, strerror(errnum));
	else
		err_set(e, errnum, 500, "InternalError", "%s: %s", what, nl_geterror(nlerr));
	nl->kerr = 0;
	nl->extack[0] = 0;
	return -errnum;
}

/* Reset the remembered kernel error before each request. */
static void nl_reset(struct np_nl *nl)
{
	nl->kerr = 0;
	nl->extack[0] = 0;
}

/* --- network namespaces --- */

int np_netns_open(const char *path, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(e, errno, 500, "InternalError", "open netns %s: %s", path,
			       strerror(errno));
	return fd;
}

bool np_netns_exists(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int self = -1;

	if (fd < 0)
		return false;
	/* a bind-mounted nsfs file answers setns; a leftover plain file does not */
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return false;
	if (setns(fd, CLONE_NEWNET) < 0)
		return false;
	(void)!setns(self, CLONE_NEWNET);
	return true;
}

/* Like iproute2: /run/netns is a shared mount so namespace mounts propagate to every mount
 * namespace (containers started later see them, unmounts reach them too). */
static int netns_dir_prepare(struct err *e)
{
	bool bound = false;

	if (mkdir(NP_NETNS_DIR, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno, 500, "InternalError", "mkdir %s: %s", NP_NETNS_DIR,
			       strerror(errno));
	while (mount("", NP_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) {
		if (errno != EINVAL || bound)
			return err_set(e, errno, 500, "InternalError", "make %s shared: %s",
				       NP_NETNS_DIR, strerror(errno));
		if (mount(NP_NETNS_DIR, NP_NETNS_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
			return err_set(e, errno, 500, "InternalError", "bind %s: %s", NP_NETNS_DIR,
				       strerror(errno));
		bound = true;
	}
	return 0;
}

int np_netns_create(const char *name, struct err *e)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int self = -1;
	int fd, r;

	if (strempty(name) || strchr(name, '/') || strlen(name) > 200)
		return err_set(e, EINVAL, 400, "Invalid", "bad netns name \"%s\"", name);
	r = netns_dir_prepare(e);
	if (r < 0)
		return r;
	if (asprintf(&path, NP_NETNS_DIR "/%s", name) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, errno == EEXIST ? 409 : 500,
			       errno == EEXIST ? "AlreadyExists" : "InternalError", "create %s: %s",
			       path, strerror(errno));
	close(fd);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		r = err_set(e, errno, 500, "InternalError", "open own netns: %s", strerror(errno));
		goto fail;
	}
	/* unshare(CLONE_NEWNET) only moves this thread; setns brings it back below */
	if (unshare(CLONE_NEWNET) < 0) {
		r = err_set(e, errno, 500, "InternalError", "unshare netns: %s", strerror(errno));
		goto fail;
	}
	if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0) {
		r = err_set(e, errno, 500, "InternalError", "bind-mount %s: %s", path,
			    strerror(errno));
		if (setns(self, CLONE_NEWNET) < 0)
			abort(); /* running on in a stray netns would corrupt every later call */
		goto fail;
	}
	if (setns(self, CLONE_NEWNET) < 0)
		abort();
	return 0;
fail:
	unlink(path);
	return r;
}

int np_netns_delete(const char *name, struct err *e)
{
	_cleanup_free_ char *path = NULL;

	if (asprintf(&path, NP_NETNS_DIR "/%s", name) < 0)
		return -ENOMEM;
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return err_set(e, errno, 500, "InternalError", "unmount %s: %s", path,
			       strerror(errno));
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		return err_set(e, errno, 500, "InternalError", "remove %s: %s", path,
			       strerror(errno));
	}
	return 0;
}

int np_sysctl_write(const char *key, const char *value, struct err *e)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	size_t n = strlen(value);

	if (asprintf(&path, "/proc/sys/%s", key) < 0)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, n) != (ssize_t)n)
		return err_set(e, errno, 500, "InternalError", "sysctl %s=%s: %s", key, value,
			       strerror(errno));
	return 0;
}

/* --- links --- */

int np_link_index(struct np_nl *nl, const char *name, int *ret_ifindex, uint8_t mac[6],
		  bool *ret_up)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
	int r;

	nl_reset(nl);
	r = rtnl_link_get_kernel(nl->sk, 0, name, &link);
	if (r < 0) {
		int errnum = nl->kerr ? nl->kerr : nle_errno(r);
		nl_reset(nl);
		return errnum == ENODEV ? -ENOENT : -errnum;
	}
	if (ret_ifindex)
		*ret_ifindex = rtnl_link_get_ifindex(link);
	if (ret_up)
		*ret_up = rtnl_link_get_flags(link) & IFF_UP;
	if (mac) {
		struct nl_addr *a = rtnl_link_get_addr(link);
		memset(mac, 0, 6);
		if (a && nl_addr_get_len(a) == 6)
			memcpy(mac, nl_addr_get_binary_addr(a), 6);
	}
	return 0;
}

int np_link_up(struct np_nl *nl, const char *name, int mtu, struct err *e)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL, *change = NULL;
	int r;

	nl_reset(nl);
	r = rtnl_link_get_kernel(nl->sk, 0, name, &link);
	if (r < 0)
		return np_nl_fail(nl, r, e, "find link %s", name);
	change = rtnl_link_alloc();
	if (!change)
		return -ENOMEM;
	rtnl_link_set_flags(change, IFF_UP);
	if (mtu > 0)
		rtnl_link_set_mtu(change, mtu);
	r = rtnl_link_change(nl->sk, link, change, 0);
	if (r < 0)
		return np_nl_fail(nl, r, e, "set link %s up", name);
	return 0;
}

int np_link_delete(struct np_nl *nl, const char *name, struct err *e)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = rtnl_link_alloc();
	int r;

	if (!link)
		return -ENOMEM;
	nl_reset(nl);
	rtnl_link_set_name(link, name);
	r = rtnl_link_delete(nl->sk, link);
	if (r < 0) {
		if (nl->kerr == ENODEV || r == -NLE_NODEV || r == -NLE_OBJ_NOTFOUND) {
			nl_reset(nl);
			return -ENOENT;
		}
		return np_nl_fail(nl, r, e, "delete link %s", name);
	}
	return 0;
}

struct link_prefix {
	const char *prefix;
	char (*names)[IFNAMSIZ];
	size_t n, cap;
};

static void link_prefix_cb(struct nl_object *o, void *arg)
{
	struct link_prefix *m = arg;
	const char *name = rtnl_link_get_name((struct rtnl_link *)o);

	if (name && !strncmp(name, m->prefix, strlen(m->prefix)) && m->n < m->cap)
		snprintf(m->names[m->n++], IFNAMSIZ, "%s", name);
}

int np_links_delete_prefix(struct np_nl *nl, const char *prefix, struct err *e)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	_cleanup_free_ char(*names)[IFNAMSIZ] = NULL;
	struct link_prefix m = {.prefix = prefix};
	int r, ret = 0;

	nl_reset(nl);
	r = rtnl_link_alloc_cache(nl->sk, AF_UNSPEC, &cache);
	if (r < 0)
		return np_nl_fail(nl, r, e, "list links");
	m.cap = (size_t)nl_cache_nitems(cache);
	names = calloc(m.cap + 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	m.names = names;
	nl_cache_foreach(cache, link_prefix_cb, &m);
	for (size_t i = 0; i < m.n; i++) {
		r = np_link_delete(nl, names[i], e);
		if (r < 0 && r != -ENOENT)
			ret = r;
	}
	return ret;
}

int np_veth_create(struct np_nl *nl, const char *host, const char *peer_name, int peer_ns_fd,
		   struct err *e)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = rtnl_link_veth_alloc();
	_cleanup_(rtnl_link_putp) struct rtnl_link *peer = NULL;
	int r;

	if (!link)
		return -ENOMEM;
	peer = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(link, host);
	rtnl_link_set_name(peer, peer_name);
	/* created straight inside the pod: the pod-side name never exists on the host */
	rtnl_link_set_ns_fd(peer, peer_ns_fd);
	nl_reset(nl);
	r = rtnl_link_add(nl->sk, link, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0)
		return np_nl_fail(nl, r, e, "create veth %s/%s", host, peer_name);
	return 0;
}

/* --- addresses, routes, neighbours --- */

static int nladdr(uint32_t ip, int prefix, struct nl_addr **ret)
{
	uint32_t be = htonl(ip);
	struct nl_addr *a = nl_addr_build(AF_INET, &be, 4);

	if (!a)
		return -ENOMEM;
	nl_addr_set_prefixlen(a, prefix);
	*ret = a;
	return 0;
}

static int addr_add(struct np_nl *nl, int ifindex, uint32_t ip, int prefix, int scope,
		    struct err *e)
{
	_cleanup_(rtnl_addr_putp) struct rtnl_addr *addr = rtnl_addr_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *local = NULL;
	int r;

	if (!addr || nladdr(ip, prefix, &local) < 0)
		return -ENOMEM;
	rtnl_addr_set_ifindex(addr, ifindex);
	rtnl_addr_set_local(addr, local);
	if (scope >= 0)
		rtnl_addr_set_scope(addr, scope);
	nl_reset(nl);
	r = rtnl_addr_add(nl->sk, addr, NLM_F_REPLACE);
	if (r < 0) {
		char a[16];
		ipam_addr_format(ip, a);
		return np_nl_fail(nl, r, e, "add address %s/%d", a, prefix);
	}
	return 0;
}

int np_addr_add(struct np_nl *nl, int ifindex, uint32_t ip, int prefix, struct err *e)
{
	return addr_add(nl, ifindex, ip, prefix, -1, e);
}

int np_addr_add_host(struct np_nl *nl, int ifindex, uint32_t ip, struct err *e)
{
	return addr_add(nl, ifindex, ip, 32, RT_SCOPE_HOST, e);
}

int np_addr_delete(struct np_nl *nl, int ifindex, uint32_t ip, int prefix, struct err *e)
{
	_cleanup_(rtnl_addr_putp) struct rtnl_addr *addr = rtnl_addr_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *local = NULL;
	int r;

	if (!addr || nladdr(ip, prefix, &local) < 0)
		return -ENOMEM;
	rtnl_addr_set_ifindex(addr, ifindex);
	rtnl_addr_set_local(addr, local);
	nl_reset(nl);
	r = rtnl_addr_delete(nl->sk, addr, 0);
	if (r < 0) {
		char a[16];
		if (nl->kerr == EADDRNOTAVAIL || nl->kerr == ENOENT)
			return -ENOENT;
		ipam_addr_format(ip, a);
		return np_nl_fail(nl, r, e, "delete address %s/%d", a, prefix);
	}
	return 0;
}

struct addr_match {
	int ifindex;
	uint32_t ip;
	bool found;
};

static void addr_cb(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct addr_match *m = arg;
	struct nl_addr *l = rtnl_addr_get_local(a);

	if (rtnl_addr_get_ifindex(a) != m->ifindex || !l || nl_addr_get_len(l) != 4)
		return;
	if (ntohl(*(uint32_t *)nl_addr_get_binary_addr(l)) == m->ip)
		m->found = true;
}

bool np_addr_has(struct np_nl *nl, int ifindex, uint32_t ip)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	struct addr_match m = {.ifindex = ifindex, .ip = ip};

	if (rtnl_addr_alloc_cache(nl->sk, &cache) < 0)
		return false;
	nl_cache_foreach(cache, addr_cb, &m);
	return m.found;
}

static int route_build(uint32_t dst, int prefix, uint32_t gw, int ifindex, bool link_scope,
		       struct rtnl_route **ret)
{
	_cleanup_(rtnl_route_putp) struct rtnl_route *route = rtnl_route_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *d = NULL, *g = NULL;
	struct rtnl_nexthop *nh;

	if (!route || nladdr(dst, prefix, &d) < 0)
		return -ENOMEM;
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_protocol(route, NP_RTPROT);
	rtnl_route_set_type(route, RTN_UNICAST);
	rtnl_route_set_scope(route, link_scope ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
	if (rtnl_route_set_dst(route, d) < 0)
		return -EINVAL;
	nh = rtnl_route_nh_alloc();
	if (!nh)
		return -ENOMEM;
	rtnl_route_nh_set_ifindex(nh, ifindex);
	if (gw) {
		if (nladdr(gw, 32, &g) < 0) {
			rtnl_route_nh_free(nh);
			return -ENOMEM;
		}
		rtnl_route_nh_set_gateway(nh, g);
		rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
	}
	rtnl_route_add_nexthop(route, nh);
	*ret = TAKE_PTR(route);
	return 0;
}

int np_route_replace(struct np_nl *nl, uint32_t dst, int prefix, uint32_t gw, int ifindex,
		     bool link_scope, struct err *e)
{
	_cleanup_(rtnl_route_putp) struct rtnl_route *route = NULL;
	int r = route_build(dst, prefix, gw, ifindex, link_scope, &route);

	if (r < 0)
		return r;
	nl_reset(nl);
	r = rtnl_route_add(nl->sk, route, NLM_F_CREATE | NLM_F_REPLACE);
	if (r < 0) {
		char a[16];
		ipam_addr_format(dst, a);
		return np_nl_fail(nl, r, e, "add route %s/%d dev #%d", a, prefix, ifindex);
	}
	return 0;
}

int np_route_delete(struct np_nl *nl, uint32_t dst, int prefix, int ifindex, struct err *e)
{
	_cleanup_(rtnl_route_putp) struct rtnl_route *route = NULL;
	int r = route_build(dst, prefix, 0, ifindex, true, &route);

	if (r < 0)
		return r;
	rtnl_route_set_scope(route, RT_SCOPE_NOWHERE); /* match any scope */
	nl_reset(nl);
	r = rtnl_route_delete(nl->sk, route, 0);
	if (r < 0) {
		if (nl->kerr == ESRCH || nl->kerr == ENODEV) {
			nl_reset(nl);
			return -ENOENT;
		}
		return np_nl_fail(nl, r, e, "delete route");
	}
	return 0;
}

struct route_match {
	uint32_t dst, gw;
	int prefix, ifindex;
	bool found;
};

static void route_cb(struct nl_object *obj, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)obj;
	struct route_match *m = arg;
	struct nl_addr *d = rtnl_route_get_dst(rt);
	struct rtnl_nexthop *nh;
	uint32_t dst = 0;

	if (rtnl_route_get_table(rt) != RT_TABLE_MAIN || rtnl_route_get_nnexthops(rt) != 1)
		return;
	if (!d || (int)nl_addr_get_prefixlen(d) != m->prefix)
		return;
	if (m->prefix && nl_addr_get_len(d) == 4)
		dst = ntohl(*(uint32_t *)nl_addr_get_binary_addr(d));
	if (dst != m->dst)
		return;
	nh = rtnl_route_nexthop_n(rt, 0);
	if (rtnl_route_nh_get_ifindex(nh) != m->ifindex)
		return;
	if (m->gw) {
		struct nl_addr *g = rtnl_route_nh_get_gateway(nh);
		if (!g || nl_addr_get_len(g) != 4 ||
		    ntohl(*(uint32_t *)nl_addr_get_binary_addr(g)) != m->gw)
			return;
	}
	m->found = true;
}

bool np_route_has(struct np_nl *nl, uint32_t dst, int prefix, uint32_t gw, int ifindex)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	struct route_match m = {.dst = dst, .prefix = prefix, .gw = gw, .ifindex = ifindex};

	if (rtnl_route_alloc_cache(nl->sk, AF_INET, 0, &cache) < 0)
		return false;
	nl_cache_foreach(cache, route_cb, &m);
	return m.found;
}

int np_neigh_replace(struct np_nl *nl, int ifindex, uint32_t ip, const uint8_t mac[6],
		     struct err *e)
{
	_cleanup_(rtnl_neigh_putp) struct rtnl_neigh *n = rtnl_neigh_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *d = NULL, *ll = NULL;
	int r;

	if (!n || nladdr(ip, 32, &d) < 0)
		return -ENOMEM;
	ll = nl_addr_build(AF_LLC, mac, 6);
	if (!ll)
		return -ENOMEM;
	rtnl_neigh_set_ifindex(n, ifindex);
	rtnl_neigh_set_family(n, AF_INET);
	rtnl_neigh_set_dst(n, d);
	rtnl_neigh_set_lladdr(n, ll);
	rtnl_neigh_set_state(n, NUD_PERMANENT);
	nl_reset(nl);
	r = rtnl_neigh_add(nl->sk, n, NLM_F_CREATE | NLM_F_REPLACE);
	if (r < 0)
		return np_nl_fail(nl, r, e, "add neighbour for the gateway");
	return 0;
}
