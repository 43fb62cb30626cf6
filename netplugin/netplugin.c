// SPDX-License-Identifier: Apache-2.0
/* Pod network setup/teardown/check: IPAM + netns + veth + routes + nftables, see netplugin.h. */
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "netplugin/netplugin.h"
#include "netplugin/np-internal.h"

struct np_node {
	char *node;
	char *nft_table;
	char node_hash[6];
	int mtu;
	struct ipam_range range;
	struct ipam_range cluster;
	struct ipam *ipam;
};

int np_node_open(const struct np_node_opts *o, struct np_node **ret, struct err *e)
{
	struct np_node *n;
	int r;

	if (strempty(o->node_name) || strempty(o->state_dir))
		return err_set(e, EINVAL, 400, "Invalid", "node name and state dir are required");
	if (strlen(o->node_name) > 63)
		return err_set(e, EINVAL, 400, "Invalid", "node name longer than 63 characters");
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->node = strdup(o->node_name);
	n->nft_table = strempty(o->nft_table) ? NULL : strdup(o->nft_table);
	n->mtu = o->mtu;
	np_hash_hex(o->node_name, n->node_hash, 5);
	r = n->node ? 0 : -ENOMEM;
	r = r
		?: ipam_range_parse(o->pod_cidr ?: "10.244.0.0/24", o->range_start, o->range_end,
				    &n->range, e);
	r = r ?: ipam_range_parse(o->cluster_cidr ?: o->pod_cidr ?: "10.244.0.0/24", NULL, NULL,
				  &n->cluster, e);
	if (!r && (n->range.network & (~0u << (32 - n->cluster.prefix))) != n->cluster.network)
		r = err_set(e, EINVAL, 400, "Invalid", "pod CIDR is not inside the cluster CIDR");
	r = r ?: ipam_open(o->state_dir, &n->range, &n->ipam, e);
	if (r < 0) {
		np_node_close(n);
		return r;
	}
	*ret = n;
	return 0;
}

struct np_node *np_node_close(struct np_node *n)
{
	if (!n)
		return NULL;
	ipam_close(n->ipam);
	free(n->node);
	free(n->nft_table);
	free(n);
	return NULL;
}

const struct ipam_range *np_node_range(const struct np_node *n)
{
	return &n->range;
}

int np_node_leases(struct np_node *n, struct ipam_lease **ret, size_t *nret, struct err *e)
{
	return ipam_list(n->ipam, ret, nret, e);
}

/*
 * The pod CIDR's reserved address (network + 1) as a /32 on the node's loopback: node-local
 * services that pods reach at a fixed address (the cluster DNS server) listen there. Pods reach
 * it through their default route like any node address. Scope host, so the node keeps its own
 * address as the source of what it sends to pods.
 */
static int node_addr_set(struct np_node *n, bool add, struct err *e)
{
	struct np_nl nl;
	int ifindex, r;

	r = np_nl_open(&nl, -1, e);
	if (r < 0)
		return r;
	r = np_link_index(&nl, "lo", &ifindex, NULL, NULL);
	if (r < 0)
		r = err_set(e, -r, 0, "", "no loopback interface: %s", strerror(-r));
	else if (add && !np_addr_has(&nl, ifindex, n->range.gateway))
		r = np_addr_add_host(&nl, ifindex, n->range.gateway, e);
	else if (!add) {
		r = np_addr_delete(&nl, ifindex, n->range.gateway, 32, e);
		r = r == -ENOENT ? 0 : r;
	}
	np_nl_close(&nl);
	return r;
}

int np_node_setup(struct np_node *n, struct err *e)
{
	int r = np_sysctl_write("net/ipv4/ip_forward", "1", e);

	r = r ?: node_addr_set(n, true, e);
	if (r < 0 || !n->nft_table)
		return r;
	return np_nft_node_setup(n->nft_table, n->range.network, n->range.prefix,
				 n->cluster.network, n->cluster.prefix, e);
}

int np_node_teardown(struct np_node *n, struct err *e)
{
	int r = node_addr_set(n, false, e);

	if (r < 0 || !n->nft_table)
		return 0;
	r = np_nft_node_teardown(n->nft_table, e);
	return r == -ENOENT ? 0 : r;
}

int np_node_veths_remove(struct np_node *n, struct err *e)
{
	struct np_nl host = {0};
	char prefix[IFNAMSIZ];
	int r;

	snprintf(prefix, sizeof(prefix), "sh%s", n->node_hash);
	r = np_nl_open(&host, -1, e);
	if (r < 0)
		return r;
	r = np_links_delete_prefix(&host, prefix, e);
	np_nl_close(&host);
	return r;
}

void np_pod_names(const struct np_node *n, const char *owner, const char *ifname,
		  char veth[static IFNAMSIZ], char netns[static 128])
{
	_cleanup_free_ char *key = NULL;
	char pod[9];

	if (asprintf(&key, "%s/%s", owner, ifname) < 0)
		key = NULL;
	np_hash_hex(key ?: owner, pod, 8);
	snprintf(veth, IFNAMSIZ, "sh%s%s", n->node_hash, pod);
	snprintf(netns, 128, "shoal-%s-%s", n->node, pod);
}

static bool valid_ifname(const char *s)
{
	size_t len = s ? strlen(s) : 0;

	if (len == 0 || len >= IFNAMSIZ || streq(s, ".") || streq(s, ".."))
		return false;
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static void result_from_lease(const struct ipam_lease *l, struct np_pod_result *res)
{
	const char *slash;

	memset(res, 0, sizeof(*res));
	res->ip = l->ip;
	ipam_addr_format(l->ip, res->ip_str);
	ipam_addr_parse(NP_GATEWAY, &res->gateway);
	snprintf(res->netns_path, sizeof(res->netns_path), "%s", l->netns);
	snprintf(res->host_veth, sizeof(res->host_veth), "%s", l->host_veth);
	snprintf(res->ifname, sizeof(res->ifname), "%s", l->ifname);
	res->netns_owned = l->netns_owned;
	slash = strrchr(l->netns, '/');
	if (l->netns_owned && slash)
		snprintf(res->netns_name, sizeof(res->netns_name), "%s", slash + 1);
}

int np_pod_lookup(struct np_node *n, const char *owner, const char *ifname,
		  struct np_pod_result *ret, struct err *e)
{
	struct ipam_lease l;
	int r = ipam_lookup(n->ipam, owner, ifname ?: "eth0", &l, e);

	if (r < 0)
		return r;
	result_from_lease(&l, ret);
	return 0;
}

/* Kernel state vs. the lease: fills MACs, returns -EIO with the first difference. */
static int check_plumbing(struct np_node *n, struct np_pod_result *res, struct err *e)
{
	struct np_nl host = {0}, pod = {0};
	_cleanup_close_ int nsfd = -1;
	int hidx, pidx, r;
	bool up;

	if (!np_netns_exists(res->netns_path))
		return err_set(e, EIO, 500, "InternalError", "pod netns %s is gone",
			       res->netns_path);
	r = np_nl_open(&host, -1, e);
	if (r < 0)
		return r;
	r = np_link_index(&host, res->host_veth, &hidx, res->host_mac, &up);
	if (r < 0 || !up) {
		r = err_set(e, EIO, 500, "InternalError", "host veth %s is %s", res->host_veth,
			    r < 0 ? "missing" : "down");
		goto out;
	}
	if (!np_route_has(&host, res->ip, 32, 0, hidx)) {
		r = err_set(e, EIO, 500, "InternalError", "route %s/32 dev %s is missing",
			    res->ip_str, res->host_veth);
		goto out;
	}
	nsfd = np_netns_open(res->netns_path, e);
	if (nsfd < 0) {
		r = nsfd;
		goto out;
	}
	r = np_nl_open(&pod, nsfd, e);
	if (r < 0)
		goto out;
	r = np_link_index(&pod, res->ifname, &pidx, res->pod_mac, &up);
	if (r < 0 || !up) {
		r = err_set(e, EIO, 500, "InternalError", "%s in the pod is %s", res->ifname,
			    r < 0 ? "missing" : "down");
		goto out;
	}
	if (!np_addr_has(&pod, pidx, res->ip)) {
		r = err_set(e, EIO, 500, "InternalError", "%s in the pod lacks address %s",
			    res->ifname, res->ip_str);
		goto out;
	}
	if (!np_route_has(&pod, 0, 0, res->gateway, pidx)) {
		r = err_set(e, EIO, 500, "InternalError",
			    "the pod has no default route via " NP_GATEWAY " dev %s", res->ifname);
		goto out;
	}
	r = 0;
out:
	np_nl_close(&host);
	np_nl_close(&pod);
	return r;
}

int np_pod_check(struct np_node *n, const char *owner, const char *ifname,
		 struct np_pod_result *ret, struct err *e)
{
	struct np_pod_result tmp, *res = ret ?: &tmp;
	int r = np_pod_lookup(n, owner, ifname, res, e);

	return r < 0 ? r : check_plumbing(n, res, e);
}

static int plumb_host(struct np_nl *host, struct np_pod_result *res, int mtu, struct err *e)
{
	_cleanup_free_ char *k1 = NULL, *k2 = NULL;
	int idx, r;

	r = np_link_index(host, res->host_veth, &idx, res->host_mac, NULL);
	if (r < 0)
		return err_set(e, -r, 500, "InternalError", "host veth %s vanished: %s",
			       res->host_veth, strerror(-r));
	if (asprintf(&k1, "net/ipv4/conf/%s/proxy_arp", res->host_veth) < 0 ||
	    asprintf(&k2, "net/ipv4/neigh/%s/proxy_delay", res->host_veth) < 0)
		return -ENOMEM;
	/* answer the pod's ARP for 169.254.1.1 with our MAC, without the random delay */
	r = np_sysctl_write(k1, "1", e);
	r = r ?: np_sysctl_write(k2, "0", e);
	r = r ?: np_link_up(host, res->host_veth, mtu, e);
	r = r ?: np_route_replace(host, res->ip, 32, 0, idx, true, e);
	return r;
}

static int plumb_pod(struct np_nl *pod, struct np_pod_result *res, int mtu, struct err *e)
{
	int idx, r;

	r = np_link_up(pod, "lo", 0, e);
	if (r < 0)
		return r;
	r = np_link_index(pod, res->ifname, &idx, res->pod_mac, NULL);
	if (r < 0)
		return err_set(e, -r, 500, "InternalError", "%s missing in the pod netns",
			       res->ifname);
	r = np_addr_add(pod, idx, res->ip, 32, e);
	r = r ?: np_link_up(pod, res->ifname, mtu, e);
	r = r ?: np_neigh_replace(pod, idx, res->gateway, res->host_mac, e);
	r = r ?: np_route_replace(pod, res->gateway, 32, 0, idx, true, e);
	r = r ?: np_route_replace(pod, 0, 0, res->gateway, idx, false, e);
	return r;
}

/* Create whatever of the pod's plumbing is missing; the lease (res) is already recorded. */
static int plumb(struct np_node *n, struct np_pod_result *res, bool *created_netns, struct err *e)
{
	struct np_nl host = {0}, pod = {0};
	_cleanup_close_ int nsfd = -1;
	int r;

	*created_netns = false;
	if (res->netns_owned && !np_netns_exists(res->netns_path)) {
		/* a leftover plain file (crash between create and mount) is not a netns */
		np_netns_delete(res->netns_name, NULL);
		r = np_netns_create(res->netns_name, e);
		if (r < 0)
			return r;
		*created_netns = true;
	}
	nsfd = np_netns_open(res->netns_path, e);
	if (nsfd < 0)
		return nsfd;
	r = np_nl_open(&host, -1, e);
	r = r ?: np_nl_open(&pod, nsfd, e);
	if (r < 0)
		goto out;
	/* start from a clean pair: a half-made one from a crash is removed first */
	r = np_link_delete(&host, res->host_veth, e);
	if (r < 0 && r != -ENOENT)
		goto out;
	r = np_link_delete(&pod, res->ifname, e);
	if (r < 0 && r != -ENOENT)
		goto out;
	r = np_veth_create(&host, res->host_veth, res->ifname, nsfd, e);
	r = r ?: plumb_host(&host, res, n->mtu, e);
	r = r ?: plumb_pod(&pod, res, n->mtu, e);
out:
	np_nl_close(&host);
	np_nl_close(&pod);
	return r;
}

static void unplumb(struct np_node *n, const struct np_pod_result *res, bool remove_netns)
{
	struct np_nl host = {0};

	if (np_nl_open(&host, -1, NULL) == 0) {
		np_link_delete(&host, res->host_veth, NULL);
		np_nl_close(&host);
	}
	if (remove_netns && res->netns_owned && res->netns_name[0])
		np_netns_delete(res->netns_name, NULL);
}

int np_pod_setup(struct np_node *n, const struct np_pod_opts *o, struct np_pod_result *ret,
		 struct err *e)
{
	const char *ifname = o->ifname ?: "eth0";
	char veth[IFNAMSIZ], netns[128];
	struct ipam_lease l = {0};
	struct np_pod_result res;
	bool created_netns = false;
	int existing, r;

	if (strempty(o->owner) || strlen(o->owner) >= sizeof(l.owner))
		return err_set(e, EINVAL, 400, "Invalid", "pod owner id missing or too long");
	if (!valid_ifname(ifname))
		return err_set(e, EINVAL, 400, "Invalid", "bad interface name \"%s\"", ifname);
	if (o->netns_path && (strempty(o->netns_path) || strlen(o->netns_path) >= sizeof(l.netns)))
		return err_set(e, EINVAL, 400, "Invalid", "bad netns path");
	if (o->nports && !n->nft_table)
		return err_set(e, EINVAL, 400, "Invalid",
			       "hostPorts need the node's nftables table");

	np_pod_names(n, o->owner, ifname, veth, netns);
	snprintf(l.owner, sizeof(l.owner), "%s", o->owner);
	snprintf(l.ifname, sizeof(l.ifname), "%s", ifname);
	snprintf(l.host_veth, sizeof(l.host_veth), "%s", veth);
	if (o->netns_path)
		snprintf(l.netns, sizeof(l.netns), "%s", o->netns_path);
	else
		snprintf(l.netns, sizeof(l.netns), NP_NETNS_DIR "/%s", netns);
	l.netns_owned = !o->netns_path;

	existing = ipam_allocate(n->ipam, &l, (int64_t)time(NULL), e);
	if (existing < 0)
		return existing;
	result_from_lease(&l, &res);
	if (existing && o->netns_path && !streq(o->netns_path, l.netns))
		return err_set(e, EEXIST, 409, "AlreadyExists",
			       "%s/%s already has an address in netns %s", o->owner, ifname,
			       l.netns);

	if (existing && check_plumbing(n, &res, NULL) == 0) {
		res.adopted = true;
	} else {
		r = plumb(n, &res, &created_netns, e);
		if (r < 0)
			goto fail;
	}
	if (n->nft_table && (o->nports || !res.adopted)) {
		r = np_nft_hostports_set(n->nft_table, o->owner, res.ip, o->ports, o->nports, e);
		if (r < 0)
			goto fail;
	}
	*ret = res;
	return 0;
fail:
	unplumb(n, &res, created_netns);
	if (!existing)
		ipam_release(n->ipam, o->owner, ifname, NULL);
	return r;
}

int np_pod_teardown(struct np_node *n, const char *owner, const char *ifname, struct err *e)
{
	struct np_pod_result res;
	struct np_nl host = {0};
	int r;

	ifname = ifname ?: "eth0";
	r = np_pod_lookup(n, owner, ifname, &res, NULL);
	if (r == -ENOENT) {
		/* nothing recorded: still remove a veth left by a setup that crashed early */
		char veth[IFNAMSIZ], netns[128];

		np_pod_names(n, owner, ifname, veth, netns);
		snprintf(res.host_veth, sizeof(res.host_veth), "%s", veth);
		res.netns_owned = false;
	} else if (r < 0) {
		return err_set(e, -r, 500, "InternalError", "IPAM lookup failed for %s", owner);
	}
	if (n->nft_table) {
		r = np_nft_hostports_del(n->nft_table, owner, e);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	r = np_nl_open(&host, -1, e);
	if (r < 0)
		return r;
	r = np_link_delete(&host, res.host_veth, e);
	np_nl_close(&host);
	if (r < 0 && r != -ENOENT)
		return r;
	if (res.netns_owned && res.netns_name[0]) {
		r = np_netns_delete(res.netns_name, e);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	r = ipam_release(n->ipam, owner, ifname, e);
	return r == -ENOENT ? 0 : r;
}
