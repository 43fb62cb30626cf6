// SPDX-License-Identifier: Apache-2.0
/* Loader of the tc NodePort programs and manager of the Maglev tables (see nodeport.h). */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/maglev.h"
#include "bpf/nodeport.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "nodeport.skel.h"

/* our filters on the uplink's clsact hooks */
#define NP_TC_HANDLE 0x5a1
#define NP_TC_PRIO   0x5a

/* the maps this object owns (the service maps belong to the socket LB) */
static const char *const np_own_maps[] = { SHOAL_MAP_CT, SHOAL_MAP_MAGLEV, SHOAL_MAP_NP_STATS };

struct np {
	char pin_dir[PATH_MAX];
	char ifname[IF_NAMESIZE];
	int ifidx[NP_MAX_IFACES]; /* interfaces our filters are attached to */
	size_t nif;
	bool ifs_stale; /* ifidx[] carry another np's programs: replace them all */
	uint32_t node_ip;
	uint32_t maglev_m, maglev_seed;
	struct nodeport *skel;
	int ct_fd, maglev_fd, stats_fd; /* skeleton fds, or own fds (maps only) */
	bool own_fds;
	uint32_t ct_max, maglev_max;
};

static uint32_t pinned_max(const char *pin_dir, const char *name, uint32_t want)
{
	char path[PATH_MAX + 32];
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	_cleanup_close_ int fd = -1;

	/* a pinned map keeps its size (see lb.c) */
	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get(path);
	if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		return info.max_entries;
	return want;
}

static void np_size(struct np *np, struct bpf_map *map, uint32_t want)
{
	if (!want)
		want = bpf_map__max_entries(map);
	bpf_map__set_max_entries(map, pinned_max(np->pin_dir, bpf_map__name(map), want));
}

static int ifaddr4(const char *ifname, uint32_t *ret)
{
	struct ifaddrs *ifa, *i;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && streq(i->ifa_name, ifname)) {
			*ret = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
			freeifaddrs(ifa);
			return 0;
		}
	freeifaddrs(ifa);
	return -EADDRNOTAVAIL;
}

static int np_attach(struct np *np, int ifindex, struct err *e)
{
	struct {
		enum bpf_tc_attach_point where;
		struct bpf_program *prog;
	} hooks[] = {
		{ BPF_TC_INGRESS, np->skel->progs.shoal_np_ingress },
		{ BPF_TC_EGRESS, np->skel->progs.shoal_np_egress },
	};
	char name[IF_NAMESIZE] = "?";

	LIBBPF_OPTS(bpf_tc_hook, qdisc, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int r = bpf_tc_hook_create(&qdisc); /* the clsact qdisc, if missing */

	if_indextoname((unsigned)ifindex, name);
	if (r < 0 && r != -EEXIST)
		return err_set(e, r, 500, "InternalError", "creating clsact on %s: %s", name,
			       strerror(-r));
	for (size_t i = 0; i < ARRAY_SIZE(hooks); i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = hooks[i].where);
		LIBBPF_OPTS(bpf_tc_opts, to, .handle = NP_TC_HANDLE, .priority = NP_TC_PRIO,
			    .prog_fd = bpf_program__fd(hooks[i].prog), .flags = BPF_TC_F_REPLACE);

		/* replaces our filter of a previous run in place: no moment without a program */
		r = bpf_tc_attach(&hook, &to);
		if (r < 0)
			return err_set(e, r, 500, "InternalError", "attaching tc %s on %s: %s",
				       i ? "egress" : "ingress", name, strerror(-r));
	}
	return 0;
}

static int np_detach(int ifindex)
{
	int r = 0;

	for (int i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = i ? BPF_TC_EGRESS : BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, to, .handle = NP_TC_HANDLE, .priority = NP_TC_PRIO);
		int k = bpf_tc_detach(&hook, &to);

		if (k < 0 && k != -ENOENT && !r)
			r = k;
	}
	return r;
}

static int np_open_pinned(struct np *np, struct err *e)
{
	int *fds[] = { &np->ct_fd, &np->maglev_fd, &np->stats_fd };
	char path[PATH_MAX + 32];

	np->own_fds = true;
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		snprintf(path, sizeof(path), "%s/%s", np->pin_dir, np_own_maps[i]);
		*fds[i] = bpf_obj_get(path);
		if (*fds[i] < 0)
			return err_set(e, errno, 404, "NotFound", "no pinned map %s: %m", path);
	}
	return 0;
}

int np_open(const struct np_opts *opts, struct np **ret, struct err *e)
{
	const char *root = opts->pin_root ? opts->pin_root : LB_PIN_ROOT_DEFAULT;
	struct np *np;
	int r;

	if (strempty(opts->node) || strchr(opts->node, '/'))
		return err_set(e, EINVAL, 400, "BadRequest", "a node name is required");
	np = calloc(1, sizeof(*np));
	if (!np)
		return -ENOMEM;
	np->ct_fd = np->maglev_fd = np->stats_fd = -1;
	snprintf(np->pin_dir, sizeof(np->pin_dir), "%s/%s", root, opts->node);
	np->maglev_m = opts->maglev_m ? opts->maglev_m : SHOAL_DEF_MAGLEV_M;
	np->maglev_seed = opts->maglev_seed;

	if (!opts->ifname && !opts->load) {
		r = np_open_pinned(np, e);
		if (r < 0)
			goto fail;
		goto done;
	}
	np->node_ip = opts->node_ip;
	if (opts->ifname) {
		int ifindex = (int)if_nametoindex(opts->ifname);

		snprintf(np->ifname, sizeof(np->ifname), "%s", opts->ifname);
		if (!ifindex) {
			r = err_set(e, errno, 400, "BadRequest", "uplink %s: %m", opts->ifname);
			goto fail;
		}
		if (!np->node_ip && (r = ifaddr4(opts->ifname, &np->node_ip)) < 0) {
			err_set(e, r, 400, "BadRequest", "uplink %s has no IPv4 address",
				opts->ifname);
			goto fail;
		}
	}

	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = np->pin_dir);
	np->skel = nodeport__open_opts(&oo);
	if (!np->skel) {
		r = err_set(e, errno, 500, "InternalError", "opening NodePort BPF object: %m");
		goto fail;
	}
	/* the service maps: whatever the socket LB pinned (or their defaults) */
	np_size(np, np->skel->maps.shoal_svc, 0);
	np_size(np, np->skel->maps.shoal_backend, 0);
	np_size(np, np->skel->maps.shoal_revnat, 0);
	np_size(np, np->skel->maps.shoal_sk_nat, 0);
	np_size(np, np->skel->maps.shoal_affinity, 0);
	np_size(np, np->skel->maps.shoal_destroy, 0);
	np_size(np, np->skel->maps.shoal_ct, opts->ct_max);
	np_size(np, np->skel->maps.shoal_maglev, opts->maglev_max);
	/* the inner template keeps its size: BPF_F_INNER_MAP lets tables of maglev_m go in
	 * (libbpf 1.1 cannot resize an inner map template) */
	np->skel->rodata->np_cfg.node_ip = np->node_ip;
	np->skel->rodata->np_cfg.maglev_m = np->maglev_m;
	np->skel->rodata->np_cfg.maglev_seed = np->maglev_seed;
	np->skel->rodata->np_cfg.snat_min = opts->snat_min ? opts->snat_min : 32768;
	np->skel->rodata->np_cfg.snat_max = opts->snat_max ? opts->snat_max : 60999;
	if (np->skel->rodata->np_cfg.snat_max < np->skel->rodata->np_cfg.snat_min) {
		r = err_set(e, EINVAL, 400, "BadRequest", "SNAT port range is empty");
		goto fail;
	}
	r = nodeport__load(np->skel);
	if (r < 0) {
		err_set(e, r, 500, "InternalError",
			"loading NodePort programs (pinned maps from an incompatible build? tear down "
			"%s): %s",
			np->pin_dir, strerror(-r));
		goto fail;
	}
	np->ct_fd = bpf_map__fd(np->skel->maps.shoal_ct);
	np->maglev_fd = bpf_map__fd(np->skel->maps.shoal_maglev);
	np->stats_fd = bpf_map__fd(np->skel->maps.shoal_np_stats);
	if (opts->ifname) {
		int ifindex = (int)if_nametoindex(opts->ifname);

		r = np_ifaces_set(np, &ifindex, 1, e);
		if (r < 0)
			goto fail;
	}
done:
	np->ct_max = pinned_max(np->pin_dir, SHOAL_MAP_CT, SHOAL_DEF_CT_MAX);
	np->maglev_max = pinned_max(np->pin_dir, SHOAL_MAP_MAGLEV, SHOAL_DEF_MAGLEV_MAX);
	*ret = np;
	return 0;
fail:
	np_close(np, false);
	return r;
}

static void np_unpin(const char *pin_dir)
{
	char path[PATH_MAX + 32];

	for (size_t i = 0; i < ARRAY_SIZE(np_own_maps); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, np_own_maps[i]);
		unlink(path);
	}
}

void np_close(struct np *np, bool teardown)
{
	if (!np)
		return;
	if (teardown) {
		for (size_t i = 0; i < np->nif; i++)
			np_detach(np->ifidx[i]);
		np_unpin(np->pin_dir);
	}
	if (np->own_fds) {
		if (np->ct_fd >= 0)
			close(np->ct_fd);
		if (np->maglev_fd >= 0)
			close(np->maglev_fd);
		if (np->stats_fd >= 0)
			close(np->stats_fd);
	}
	nodeport__destroy(np->skel);
	free(np);
}

void np_ifaces_adopt(struct np *np, const struct np *old)
{
	memcpy(np->ifidx, old->ifidx, sizeof(np->ifidx));
	np->nif = old->nif;
	np->ifs_stale = true;
}

int np_ifaces_set(struct np *np, const int *ifindex, size_t n, struct err *e)
{
	int r;

	if (!np->skel)
		return err_set(e, EINVAL, 500, "InternalError", "NodePort programs not loaded");
	if (n > NP_MAX_IFACES)
		n = NP_MAX_IFACES;
	for (size_t i = 0; i < n; i++) {
		bool have = false;

		for (size_t j = 0; j < np->nif && !np->ifs_stale && !have; j++)
			have = np->ifidx[j] == ifindex[i];
		if (have)
			continue;
		r = np_attach(np, ifindex[i], e);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < np->nif; i++) {
		bool keep = false;

		for (size_t j = 0; j < n && !keep; j++)
			keep = ifindex[j] == np->ifidx[i];
		if (!keep)
			np_detach(np->ifidx[i]);
	}
	memcpy(np->ifidx, ifindex, n * sizeof(*ifindex));
	np->nif = n;
	np->ifs_stale = false;
	return 0;
}

/* Is the program at our handle on this hook one of this node's (it uses the node's shoal_ct)? */
static bool np_filter_ours(int ifindex, enum bpf_tc_attach_point where, uint32_t ct_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = NP_TC_HANDLE, .priority = NP_TC_PRIO);
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info), ids[16];
	_cleanup_close_ int fd = -1;

	if (bpf_tc_query(&hook, &to) < 0 || !to.prog_id)
		return false;
	fd = bpf_prog_get_fd_by_id(to.prog_id);
	if (fd < 0)
		return false;
	info.nr_map_ids = ARRAY_SIZE(ids);
	info.map_ids = (uint64_t)(uintptr_t)ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return false;
	for (uint32_t i = 0; i < info.nr_map_ids && i < ARRAY_SIZE(ids); i++)
		if (ids[i] == ct_id)
			return true;
	return false;
}

int np_teardown(const char *pin_root, const char *node, const char *ifname)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	int r = 0;

	if (strempty(node) || strchr(node, '/'))
		return -EINVAL;
	snprintf(dir, sizeof(dir), "%s/%s", pin_root ? pin_root : LB_PIN_ROOT_DEFAULT, node);
	if (ifname) {
		int ifindex = (int)if_nametoindex(ifname);

		if (ifindex)
			r = np_detach(ifindex);
	} else {
		/* interfaces chosen automatically: every interface of this netns where our filter
		 * is this node's program (its conntrack map is the node's pinned one) */
		struct bpf_map_info mi = {};
		uint32_t len = sizeof(mi);
		struct if_nameindex *ifs = if_nameindex();
		_cleanup_close_ int ct = -1;

		snprintf(path, sizeof(path), "%s/%s", dir, SHOAL_MAP_CT);
		ct = bpf_obj_get(path);
		if (ct >= 0 && bpf_obj_get_info_by_fd(ct, &mi, &len) == 0 && ifs)
			for (struct if_nameindex *i = ifs; i->if_index; i++)
				if (np_filter_ours((int)i->if_index, BPF_TC_INGRESS, mi.id) ||
				    np_filter_ours((int)i->if_index, BPF_TC_EGRESS, mi.id)) {
					int k = np_detach((int)i->if_index);

					if (k < 0 && !r)
						r = k;
				}
		if (ifs)
			if_freenameindex(ifs);
	}
	np_unpin(dir);
	return r;
}

uint32_t np_node_ip(struct np *np)
{
	return np->node_ip;
}

int np_maglev_set(struct np *np, uint16_t rev_nat, const struct lb_member_info *bes, size_t n,
		  struct err *e)
{
	_cleanup_free_ struct shoal_backend *sel = NULL;
	_cleanup_free_ uint32_t *table = NULL, *keys = NULL, *ids = NULL;
	_cleanup_close_ int fd = -1;
	size_t k = 0;
	uint32_t count;
	int r;

	/* ready backends; the terminating ones only when nothing is ready (as the socket LB) */
	sel = calloc(n + 1, sizeof(*sel));
	ids = calloc(n + 1, sizeof(*ids));
	if (!sel || !ids)
		return -ENOMEM;
	for (int pass = 0; pass < 2 && !k; pass++)
		for (size_t i = 0; i < n; i++)
			if (!!(bes[i].be.flags & SHOAL_BE_TERMINATING) == pass) {
				ids[k] = bes[i].id;
				sel[k++] = bes[i].be;
			}
	if (!k)
		return np_maglev_delete(np, rev_nat);
	if (k >= np->maglev_m)
		return err_set(e, E2BIG, 422, "Invalid",
			       "%zu backends: the Maglev table size %u must exceed it", k,
			       np->maglev_m);
	table = calloc(np->maglev_m, sizeof(*table));
	keys = calloc(np->maglev_m, sizeof(*keys));
	if (!table || !keys)
		return -ENOMEM;
	r = lb_maglev_build(sel, k, np->maglev_seed, table, np->maglev_m);
	if (r < 0)
		return err_set(e, r, 500, "InternalError", "building Maglev table: %s", strerror(-r));
	for (uint32_t i = 0; i < np->maglev_m; i++) {
		keys[i] = i;
		table[i] = ids[table[i]];
	}
	/* a fresh table swapped in whole: readers see the old one or the new one */
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_INNER_MAP);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "shoal_mlv_in", sizeof(uint32_t), sizeof(uint32_t),
			    np->maglev_m, &mo);
	if (fd < 0)
		return err_set(e, -errno, 500, "InternalError", "creating Maglev table: %m");
	count = np->maglev_m;
	if (bpf_map_update_batch(fd, keys, table, &count, NULL) < 0) {
		for (uint32_t i = 0; i < np->maglev_m; i++)
			if (bpf_map_update_elem(fd, &keys[i], &table[i], BPF_ANY) < 0)
				return err_set(e, -errno, 500, "InternalError",
					       "filling Maglev table: %m");
	}
	if (bpf_map_update_elem(np->maglev_fd, &rev_nat, &fd, BPF_ANY) < 0)
		return err_set(e, -errno, errno == E2BIG ? 507 : 500,
			       errno == E2BIG ? "InsufficientStorage" : "InternalError",
			       "installing Maglev table: %m");
	return 0;
}

int np_maglev_delete(struct np *np, uint16_t rev_nat)
{
	if (bpf_map_delete_elem(np->maglev_fd, &rev_nat) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int np_maglev_prune(struct np *np, bool (*keep)(uint16_t rev_nat, void *ud), void *ud)
{
	uint16_t k, next, *dead = NULL;
	size_t n = 0;
	void *pk = NULL;

	while (bpf_map_get_next_key(np->maglev_fd, pk, &next) == 0) {
		k = next;
		pk = &k;
		if (keep(k, ud))
			continue;
		uint16_t *t = realloc(dead, (n + 1) * sizeof(*t));

		if (!t)
			break;
		dead = t;
		dead[n++] = k;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(np->maglev_fd, &dead[i]);
	free(dead);
	return (int)n;
}

static uint32_t map_count(int fd, size_t key_size)
{
	_cleanup_free_ void *k = calloc(1, key_size), *next = calloc(1, key_size);
	void *pk = NULL;
	uint32_t n = 0;

	if (!k || !next)
		return 0;
	while (bpf_map_get_next_key(fd, pk, next) == 0) {
		memcpy(k, next, key_size);
		pk = k;
		n++;
	}
	return n;
}

int np_stats_get(struct np *np, struct np_stats *ret)
{
	int ncpu = libbpf_num_possible_cpus();
	_cleanup_free_ uint64_t *v = NULL;

	*ret = (struct np_stats){ .ct_max = np->ct_max, .maglev_max = np->maglev_max };
	ret->ct_entries = map_count(np->ct_fd, sizeof(struct shoal_ct_key));
	ret->maglev_tables = map_count(np->maglev_fd, sizeof(uint16_t));
	if (ncpu <= 0)
		return 0;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < SHOAL_NP_STAT_N; i++) {
		if (bpf_map_lookup_elem(np->stats_fd, &i, v) < 0)
			continue;
		for (int c = 0; c < ncpu; c++)
			ret->counters[i] += v[c];
	}
	return 0;
}

/* Same as bpf/lib/jhash.h. */
static uint32_t rol32(uint32_t w, unsigned int s)
{
	return (w << s) | (w >> ((-s) & 31));
}

uint32_t np_flow_hash(uint32_t saddr, uint16_t sport, uint16_t dport, uint8_t proto,
		      uint32_t seed)
{
	uint32_t a = saddr, b = ((uint32_t)sport << 16) | dport, c = proto;

	/* sport/dport as the program sees them: the raw network-order 16-bit values */
	a += 0xdeadbeef + (3 << 2) + seed;
	b += 0xdeadbeef + (3 << 2) + seed;
	c += 0xdeadbeef + (3 << 2) + seed;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

static const char *ct_state_name(uint8_t s)
{
	return s == SHOAL_CT_NEW ? "new" : s == SHOAL_CT_ESTABLISHED ? "established" : "closing";
}

static void addr_port(char *buf, size_t len, uint32_t ip, uint16_t port)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ip, a, sizeof(a));
	snprintf(buf, len, "%s:%u", a, ntohs(port));
}

int np_ct_dump(const char *pin_root, const char *node, cJSON **ret)
{
	char path[PATH_MAX];
	_cleanup_json_ cJSON *arr = cJSON_CreateArray();
	_cleanup_close_ int fd = -1;
	struct shoal_ct_key k, next;
	struct shoal_ct_val v;
	struct timespec now;
	void *pk = NULL;

	if (!arr)
		return -ENOMEM;
	if (strempty(node) || strchr(node, '/'))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s/%s", pin_root ? pin_root : LB_PIN_ROOT_DEFAULT, node,
		 SHOAL_MAP_CT);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	clock_gettime(CLOCK_MONOTONIC, &now);
	while (bpf_map_get_next_key(fd, pk, &next) == 0) {
		char src[32], dst[32], nat[32];
		cJSON *o;

		k = next;
		pk = &k;
		if (bpf_map_lookup_elem(fd, &k, &v) < 0)
			continue;
		o = cJSON_CreateObject();
		addr_port(src, sizeof(src), k.saddr, k.sport);
		addr_port(dst, sizeof(dst), k.daddr, k.dport);
		cJSON_AddStringToObject(o, "dir", k.dir == SHOAL_CT_INGRESS ? "forward" : "reply");
		cJSON_AddStringToObject(o, "proto", k.proto == IPPROTO_TCP ? "tcp" : "udp");
		cJSON_AddStringToObject(o, "src", src);
		cJSON_AddStringToObject(o, "dst", dst);
		cJSON_AddNumberToObject(o, "backend_id", v.backend_id);
		cJSON_AddNumberToObject(o, "rev_nat", v.rev_nat);
		cJSON_AddStringToObject(o, "state", ct_state_name(v.state));
		cJSON_AddBoolToObject(o, "snat", v.flags & SHOAL_CT_F_SNAT);
		cJSON_AddBoolToObject(o, "local", v.flags & SHOAL_CT_F_LOCAL);
		if (v.nat_addr) {
			addr_port(nat, sizeof(nat), v.nat_addr, v.nat_port);
			cJSON_AddStringToObject(o, k.dir == SHOAL_CT_INGRESS ? "snat_to" : "client",
						nat);
		}
		cJSON_AddNumberToObject(o, "packets", (double)v.packets);
		cJSON_AddNumberToObject(o, "idle_s",
					((double)((uint64_t)now.tv_sec * 1000000000ull +
						  (uint64_t)now.tv_nsec) -
					 (double)v.last_seen_ns) / 1e9);
		cJSON_AddItemToArray(arr, o);
	}
	*ret = TAKE_PTR(arr);
	return 0;
}
