// SPDX-License-Identifier: Apache-2.0
/* Loader and map manager for the socket-LB datapath (see lb.h for the lifecycle). */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/magic.h>

#include <sys/socket.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/lb.h"
#include "bpf/lb_plan.h"
#include "bpf/shoal_abi.h"
#include "lib/macro.h"
#include "lib/mountinfo.h"
#include "lib/util.h"
#include "sock_lb.skel.h"

enum lb_map_idx {
	LB_MAP_SVC,
	LB_MAP_BACKEND,
	LB_MAP_REVNAT,
	LB_MAP_SK_NAT,
	LB_MAP_AFFINITY,
	LB_MAP_DESTROY,
	LB_MAP_BE_REV,
	LB_MAP_BE_TBL,
	LB_MAP_N,
};

static const char *const lb_map_names[LB_MAP_N] = {
	[LB_MAP_SVC] = SHOAL_MAP_SVC,		[LB_MAP_BACKEND] = SHOAL_MAP_BACKEND,
	[LB_MAP_REVNAT] = SHOAL_MAP_REVNAT,	[LB_MAP_SK_NAT] = SHOAL_MAP_SK_NAT,
	[LB_MAP_AFFINITY] = SHOAL_MAP_AFFINITY, [LB_MAP_DESTROY] = SHOAL_MAP_DESTROY,
	[LB_MAP_BE_REV] = SHOAL_MAP_BE_REV,	[LB_MAP_BE_TBL] = SHOAL_MAP_BE_TBL,
};

/* key and value sizes of this build's maps: a pinned map of another layout is not ours to read */
static const uint32_t lb_map_sizes[LB_MAP_N][2] = {
	[LB_MAP_SVC] = { sizeof(struct shoal_svc_key), sizeof(struct shoal_svc_val) },
	[LB_MAP_BACKEND] = { sizeof(uint32_t), sizeof(struct shoal_backend) },
	[LB_MAP_REVNAT] = { sizeof(uint16_t), sizeof(struct shoal_revnat) },
	[LB_MAP_SK_NAT] = { sizeof(struct shoal_sk_nat_key), sizeof(struct shoal_sk_nat_val) },
	[LB_MAP_AFFINITY] = { sizeof(struct shoal_aff_key), sizeof(struct shoal_aff_val) },
	[LB_MAP_DESTROY] = { sizeof(struct shoal_destroy_key), sizeof(uint8_t) },
	[LB_MAP_BE_REV] = { sizeof(struct shoal_be_rev_key), sizeof(struct shoal_be_rev_val) },
	[LB_MAP_BE_TBL] = { sizeof(uint32_t), sizeof(struct shoal_svc_be) },
};

/* cgroup programs, by link pin name */
#define LB_NCG 4
#define LB_ITER_UDP "udp_destroy"
/* links[]: the LB_NCG sock_addr programs, then the iterator, then sock_create */
#define LB_LINK_ITER   LB_NCG
#define LB_LINK_CREATE (LB_NCG + 1)
#define LB_NLINKS      (LB_NCG + 2)
static const char *const lb_link_names[LB_NLINKS] = { "connect4",     "sendmsg4",   "recvmsg4",
						      "getpeername4", LB_ITER_UDP, "sock_create" };
/* pinned beside the LB_MAP_N maps, not managed by the loader's view */
static const char *const lb_scope_maps[] = { SHOAL_MAP_SCOPE, SHOAL_MAP_NETNS, SHOAL_MAP_NETNS_DM,
					     SHOAL_MAP_SK_PEER };

struct lb_member {
	uint32_t id;
	struct shoal_backend be;
};

struct lb_svc {
	struct shoal_svc_key key; /* slot 0 */
	struct shoal_svc_val val; /* slot 0 */
	uint32_t *ready, *term;   /* slot layouts */
	struct lb_member *members; /* sorted by (ip, port) */
	size_t nmembers;
	struct shoal_svc_be *tbl_be; /* with SHOAL_SVC_TBL: what val.backend_id's region holds */
	uint32_t tbl_n;
	bool pending; /* created inside a batch: its entries wait in lb->batch, none in the maps */
};

/*
 * A TCP backend address's shoal_be_rev entry: the first frontend that took it, kept while any
 * frontend has it (refs), so a socket connected through that frontend without a record of its
 * own is always shown the frontend it asked for. Every other frontend's slots of the backend
 * carry SHOAL_SVC_SK_PEER.
 */
struct lb_rev {
	struct shoal_be_rev_key key;
	struct shoal_be_rev_val val;
	uint32_t refs; /* TCP frontends with this backend */
};

/* A growable array reused from call to call (no malloc/free per upsert). */
struct lb_buf {
	void *p;
	size_t cap; /* bytes */
};

/*
 * Writes of services created inside lb_batch_begin() .. lb_batch_flush(). Nothing can reach
 * them before their slot 0 exists, so they go in one bpf_map_update_batch per map: backends,
 * reverse NAT, backend slots, and the slot-0 entries last.
 */
enum lb_batch_kind {
	LB_BATCH_BACKEND,
	LB_BATCH_BE_REV,
	LB_BATCH_REVNAT,
	LB_BATCH_SLOT,
	LB_BATCH_TBL,
	LB_BATCH_SLOT0,
	LB_BATCH_N,
};

struct lb_batch {
	struct lb_buf keys, vals;
	size_t n;
};

/*
 * A region of shoal_be_tbl that no slot 0 names any more. A connect() that read the old slot 0
 * may still be reading it, so it is handed out again only LB_TBL_GRACE_NS after it was freed.
 */
struct lb_tbl_ext {
	uint32_t base, len;
	uint64_t freed_ns;
};

#define LB_TBL_GRACE_NS (2 * 1000000000ULL)
#define LB_TBL_MIN 8 /* regions are powers of two from here: freed ones fit again */

struct lb {
	char pin_dir[PATH_MAX];
	char cgroup[PATH_MAX]; /* attached subtree ("" if unknown) */
	struct sock_lb *skel;
	int fds[LB_MAP_N];
	bool own_fds;
	struct bpf_link *links[LB_NLINKS];
	void *svcs; /* tsearch tree of struct lb_svc * */
	void *revs; /* tsearch tree of struct lb_rev * (TCP backends) */
	uint8_t revnat_used[65536 / 8];
	uint32_t revnat_hint; /* search for a free index from here (wraps) */
	uint32_t next_id;
	uint32_t nsvc, nbackends, svc_entries;
	uint32_t max[LB_MAP_N];
	uint32_t recreated; /* 1 << enum lb_map_idx: pins of another layout re-created by lb_open */
	uint32_t last_udp_destroyed, last_writes;
	bool batching, batch_lost;
	struct lb_batch batch[LB_BATCH_N];
	struct lb_svc **pending; /* created in the batch (flag cleared on flush) */
	size_t npending, pending_cap;
	/* shoal_be_tbl: regions below tbl_top are named by a slot 0 or in tbl_free */
	uint32_t tbl_top;
	struct lb_tbl_ext *tbl_free;
	size_t ntbl_free, tbl_free_cap;
	/* lb_service_upsert's temporaries */
	struct lb_buf scr_removed, scr_wready, scr_wterm, scr_rops, scr_tops, scr_udp, scr_tbl,
	    scr_tkeys, scr_tidx;
};

static const size_t lb_batch_sizes[LB_BATCH_N][2] = {
	[LB_BATCH_BACKEND] = { sizeof(uint32_t), sizeof(struct shoal_backend) },
	[LB_BATCH_BE_REV] = { sizeof(struct shoal_be_rev_key), sizeof(struct shoal_be_rev_val) },
	[LB_BATCH_REVNAT] = { sizeof(uint16_t), sizeof(struct shoal_revnat) },
	[LB_BATCH_SLOT] = { sizeof(struct shoal_svc_key), sizeof(struct shoal_svc_val) },
	[LB_BATCH_TBL] = { sizeof(uint32_t), sizeof(struct shoal_svc_be) },
	[LB_BATCH_SLOT0] = { sizeof(struct shoal_svc_key), sizeof(struct shoal_svc_val) },
};

static const enum lb_map_idx lb_batch_map[LB_BATCH_N] = {
	[LB_BATCH_BACKEND] = LB_MAP_BACKEND,
	[LB_BATCH_BE_REV] = LB_MAP_BE_REV,
	[LB_BATCH_REVNAT] = LB_MAP_REVNAT,
	[LB_BATCH_SLOT] = LB_MAP_SVC,
	[LB_BATCH_TBL] = LB_MAP_BE_TBL,
	[LB_BATCH_SLOT0] = LB_MAP_SVC,
};

static void *lb_buf_get(struct lb_buf *b, size_t bytes)
{
	if (bytes > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		void *t;

		while (cap < bytes)
			cap *= 2;
		t = realloc(b->p, cap);
		if (!t)
			return NULL;
		b->p = t;
		b->cap = cap;
	}
	return b->p;
}

static void lb_buf_free(struct lb_buf *b)
{
	free(b->p);
	*b = (struct lb_buf){};
}

static int lb_batch_add(struct lb *lb, enum lb_batch_kind k, const void *key, const void *val)
{
	struct lb_batch *b = &lb->batch[k];
	size_t ks = lb_batch_sizes[k][0], vs = lb_batch_sizes[k][1];
	char *kp = lb_buf_get(&b->keys, (b->n + 1) * ks);
	char *vp = lb_buf_get(&b->vals, (b->n + 1) * vs);

	if (!kp || !vp)
		return -ENOMEM;
	memcpy(kp + b->n * ks, key, ks);
	memcpy(vp + b->n * vs, val, vs);
	b->n++;
	lb->last_writes++;
	return 0;
}

/* --- small helpers --- */

static int svc_cmp(const void *a, const void *b)
{
	const struct lb_svc *x = a, *y = b;

	if (x->key.vip != y->key.vip)
		return ntohl(x->key.vip) < ntohl(y->key.vip) ? -1 : 1;
	if (x->key.port != y->key.port)
		return ntohs(x->key.port) < ntohs(y->key.port) ? -1 : 1;
	return (int)x->key.proto - (int)y->key.proto;
}

static int member_cmp(const void *a, const void *b)
{
	const struct lb_member *x = a, *y = b;

	if (x->be.ip != y->be.ip)
		return ntohl(x->be.ip) < ntohl(y->be.ip) ? -1 : 1;
	if (x->be.port != y->be.port)
		return ntohs(x->be.port) < ntohs(y->be.port) ? -1 : 1;
	return 0;
}

static void svc_free(void *p)
{
	struct lb_svc *s = p;

	if (!s)
		return;
	free(s->ready);
	free(s->term);
	free(s->members);
	free(s->tbl_be);
	free(s);
}

static struct lb_svc *svc_find(struct lb *lb, __be32 vip, __be16 port, __u8 proto)
{
	struct lb_svc k = { .key = { .vip = vip, .port = port, .proto = proto } };
	void **r = tfind(&k, &lb->svcs, svc_cmp);

	return r ? *r : NULL;
}

static struct lb_member *svc_member(struct lb_svc *s, uint32_t id)
{
	for (size_t i = 0; i < s->nmembers; i++)
		if (s->members[i].id == id)
			return &s->members[i];
	return NULL;
}

static int rev_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct lb_rev *)a)->key, &((const struct lb_rev *)b)->key,
		      sizeof(struct shoal_be_rev_key));
}

static struct lb_rev *rev_find(struct lb *lb, const struct shoal_backend *be)
{
	struct lb_rev k = { .key = { .ip = be->ip, .port = be->port, .proto = be->proto } };
	void **r = tfind(&k, &lb->revs, rev_cmp);

	return r ? *r : NULL;
}

/* Does this TCP frontend's slot of `be` need SHOAL_SVC_SK_PEER (be_rev names another)? */
static bool rev_other(struct lb *lb, const struct lb_svc *s, const struct shoal_backend *be)
{
	const struct lb_rev *r;

	if (s->key.proto != IPPROTO_TCP)
		return false;
	r = rev_find(lb, be);
	return !r || r->val.vip != s->key.vip || r->val.port != s->key.port;
}

/* --- shoal_be_tbl regions --- */

static uint64_t lb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint32_t tbl_class(size_t n)
{
	uint32_t c = LB_TBL_MIN;

	while (c < n)
		c <<= 1;
	return c;
}

/* `freed_ns` 0: never named by a slot 0, reusable at once. Without memory the region leaks. */
static void tbl_release(struct lb *lb, uint32_t base, uint32_t len, uint64_t freed_ns)
{
	if (lb->ntbl_free == lb->tbl_free_cap) {
		size_t cap = lb->tbl_free_cap ? lb->tbl_free_cap * 2 : 64;
		struct lb_tbl_ext *t = realloc(lb->tbl_free, cap * sizeof(*t));

		if (!t)
			return;
		lb->tbl_free = t;
		lb->tbl_free_cap = cap;
	}
	lb->tbl_free[lb->ntbl_free++] = (struct lb_tbl_ext){base, len, freed_ns};
}

/*
 * A region of `len` entries (a power of two): a freed one of that size past its grace period,
 * else from the top, else a part of a bigger freed one (the top is used up); -ENOSPC: the table
 * is full. Sizes are kept apart while there is room, so freed regions fit again.
 */
static int tbl_alloc(struct lb *lb, uint32_t len, uint32_t *ret)
{
	uint64_t now = lb_now_ns();
	size_t best = SIZE_MAX;

	for (size_t i = 0; i < lb->ntbl_free; i++) {
		const struct lb_tbl_ext *x = &lb->tbl_free[i];

		if (x->len < len || (x->freed_ns && now - x->freed_ns < LB_TBL_GRACE_NS))
			continue;
		if (best == SIZE_MAX || x->len < lb->tbl_free[best].len)
			best = i;
		if (x->len == len)
			break;
	}
	if (best != SIZE_MAX && lb->tbl_free[best].len == len) {
		*ret = lb->tbl_free[best].base;
		lb->tbl_free[best] = lb->tbl_free[--lb->ntbl_free];
		return 0;
	}
	if ((uint64_t)lb->tbl_top + len <= lb->max[LB_MAP_BE_TBL]) {
		*ret = lb->tbl_top;
		lb->tbl_top += len;
		return 0;
	}
	if (best == SIZE_MAX)
		return -ENOSPC;
	*ret = lb->tbl_free[best].base;
	lb->tbl_free[best].base += len;
	lb->tbl_free[best].len -= len;
	return 0;
}

static int tbl_write(struct lb *lb, const struct lb_svc *s, uint32_t base,
		     const struct shoal_svc_be *list, size_t n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = BPF_ANY);
	uint32_t *keys = lb_buf_get(&lb->scr_tkeys, n * sizeof(*keys));
	uint32_t count = (uint32_t)n;
	int fd = lb->fds[LB_MAP_BE_TBL];

	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		keys[i] = base + (uint32_t)i;
	if (s->pending) {
		for (size_t i = 0; i < n; i++) {
			int r = lb_batch_add(lb, LB_BATCH_TBL, &keys[i], &list[i]);

			if (r < 0)
				return r;
		}
		return 0;
	}
	lb->last_writes += (uint32_t)n;
	if (bpf_map_update_batch(fd, keys, list, &count, &bo) == 0 && count == n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, &keys[i], &list[i], BPF_ANY) < 0)
			return -errno;
	return 0;
}

struct id_idx {
	uint32_t id, i;
};

static int id_idx_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct id_idx *)a)->id, y = ((const struct id_idx *)b)->id;

	return x < y ? -1 : x > y;
}

/*
 * Slot 0's list of the backends connect4 picks from (shoal_abi.h): the ready slots' `ready`
 * (count of them), else the terminating slots' `term`; in slot 0 itself when there are at most
 * SHOAL_SVC_INLINE, else in a region of shoal_be_tbl. A list other than what the region slot 0
 * names now holds goes to a fresh region, written (queued, for a pending service) before the
 * caller writes slot 0; *ret_be then receives its copy for svc_tbl_commit(). No room in the
 * table: no SHOAL_SVC_TBL (connect4 reads the chosen slot). `mem`: members that include every
 * id named.
 */
static int svc_list(struct lb *lb, const struct lb_svc *s, struct shoal_svc_val *v,
		    const uint32_t *ready, const uint32_t *term, const struct lb_member *mem,
		    size_t nmem, struct shoal_svc_be **ret_be)
{
	const uint32_t *ids = v->count ? ready : term;
	size_t n = v->count ? v->count : v->term_count;
	struct shoal_svc_be *list;
	struct id_idx *by_id;
	uint32_t base;
	int r;

	*ret_be = NULL;
	memset(v->be, 0, sizeof(v->be));
	v->flags &= (uint8_t)~SHOAL_SVC_TBL;
	v->backend_id = 0;
	if (n <= SHOAL_SVC_INLINE) {
		for (size_t i = 0; i < n; i++) {
			const struct lb_member *m = NULL;

			for (size_t j = 0; j < nmem && !m; j++)
				if (mem[j].id == ids[i])
					m = &mem[j];
			if (!m)
				continue; /* left 0: connect4 refuses rather than guess */
			v->be[i].ip = m->be.ip;
			v->be[i].port = m->be.port;
			v->be[i].flags = rev_other(lb, s, &m->be) ? SHOAL_SVC_SK_PEER : 0;
		}
		return 0;
	}
	list = lb_buf_get(&lb->scr_tbl, n * sizeof(*list));
	by_id = lb_buf_get(&lb->scr_tidx, (nmem + 1) * sizeof(*by_id));
	if (!list || !by_id)
		return -ENOMEM;
	for (size_t j = 0; j < nmem; j++)
		by_id[j] = (struct id_idx){mem[j].id, (uint32_t)j};
	qsort(by_id, nmem, sizeof(*by_id), id_idx_cmp);
	memset(list, 0, n * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		struct id_idx k = {.id = ids[i]}, *f;
		const struct lb_member *m;

		f = bsearch(&k, by_id, nmem, sizeof(*by_id), id_idx_cmp);
		if (!f)
			continue; /* left 0, as above */
		m = &mem[f->i];
		list[i].ip = m->be.ip;
		list[i].port = m->be.port;
		list[i].flags = rev_other(lb, s, &m->be) ? SHOAL_SVC_SK_PEER : 0;
	}
	if (s->tbl_be && s->tbl_n == n && !memcmp(s->tbl_be, list, n * sizeof(*list))) {
		v->flags |= SHOAL_SVC_TBL;
		v->backend_id = s->val.backend_id;
		return 0;
	}
	if (tbl_alloc(lb, tbl_class(n), &base) < 0)
		return 0; /* two lookups per connect(), still correct */
	*ret_be = malloc(n * sizeof(*list));
	if (!*ret_be) {
		tbl_release(lb, base, tbl_class(n), 0);
		return -ENOMEM;
	}
	memcpy(*ret_be, list, n * sizeof(*list));
	r = tbl_write(lb, s, base, list, n);
	if (r < 0) {
		free(*ret_be);
		*ret_be = NULL;
		tbl_release(lb, base, tbl_class(n), 0);
		return r;
	}
	v->flags |= SHOAL_SVC_TBL;
	v->backend_id = base;
	return 0;
}

/*
 * Slot 0 now says `v` (written): the region it named before, if it names another now, goes
 * back after its grace period; `nbe` (from svc_list) is what the new region holds.
 */
static void svc_tbl_commit(struct lb *lb, struct lb_svc *s, const struct shoal_svc_val *v,
			   struct shoal_svc_be *nbe)
{
	bool has = v->flags & SHOAL_SVC_TBL;

	if (s->tbl_be && (!has || v->backend_id != s->val.backend_id)) {
		tbl_release(lb, s->val.backend_id, tbl_class(s->tbl_n), lb_now_ns());
		free(s->tbl_be);
		s->tbl_be = NULL;
		s->tbl_n = 0;
	}
	if (nbe) {
		free(s->tbl_be);
		s->tbl_be = nbe;
		s->tbl_n = v->count ? v->count : v->term_count;
	}
}

static int lb_batch_add(struct lb *lb, enum lb_batch_kind k, const void *key, const void *val);

/* Frontend `s` takes TCP backend `be`: the first one becomes its shoal_be_rev entry. */
static int rev_get(struct lb *lb, const struct lb_svc *s, const struct shoal_backend *be)
{
	struct lb_rev *r;

	if (s->key.proto != IPPROTO_TCP)
		return 0;
	r = rev_find(lb, be);
	if (r) {
		r->refs++;
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->key = (struct shoal_be_rev_key){ .ip = be->ip, .port = be->port, .proto = be->proto };
	r->val = (struct shoal_be_rev_val){ .vip = s->key.vip, .port = s->key.port,
					    .rev_nat = s->val.rev_nat };
	r->refs = 1;
	if (!tsearch(r, &lb->revs, rev_cmp)) {
		free(r);
		return -ENOMEM;
	}
	if (s->pending)
		return lb_batch_add(lb, LB_BATCH_BE_REV, &r->key, &r->val);
	lb->last_writes++;
	return bpf_map_update_elem(lb->fds[LB_MAP_BE_REV], &r->key, &r->val, BPF_ANY) < 0 ? -errno
											    : 0;
}

/* Frontend `s` let TCP backend `be` go (its slots are deleted): the last one drops the entry. */
static void rev_put(struct lb *lb, const struct lb_svc *s, const struct shoal_backend *be)
{
	struct lb_rev *r;

	if (s->key.proto != IPPROTO_TCP || !(r = rev_find(lb, be)) || --r->refs)
		return;
	bpf_map_delete_elem(lb->fds[LB_MAP_BE_REV], &r->key);
	lb->last_writes++;
	tdelete(r, &lb->revs, rev_cmp);
	free(r);
}

static bool revnat_test(struct lb *lb, uint16_t i)
{
	return lb->revnat_used[i / 8] & (1u << (i % 8));
}

static void revnat_mark(struct lb *lb, uint16_t i, bool used)
{
	if (used)
		lb->revnat_used[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		lb->revnat_used[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

static int revnat_alloc(struct lb *lb, uint16_t *ret)
{
	/* index 0 means "none"; cap at the map size. Start after the last one handed out, so
	 * programming N services is O(N), not O(N^2). */
	uint32_t lim = lb->max[LB_MAP_REVNAT] < 65535 ? lb->max[LB_MAP_REVNAT] : 65535;

	for (uint32_t k = 0; k < lim; k++) {
		uint32_t i = (lb->revnat_hint + k) % lim + 1;

		if (!revnat_test(lb, (uint16_t)i)) {
			*ret = (uint16_t)i;
			lb->revnat_hint = i % lim;
			return 0;
		}
	}
	return -ENOSPC;
}

int lb_cgroup2_root(char *buf, size_t len)
{
	_cleanup_mountinfo_ struct mountinfo mi = { 0 };
	const struct mountinfo_entry *m;
	int r;

	if ((r = mountinfo_open(&mi, NULL)) < 0)
		return r;
	while ((r = mountinfo_next(&mi, &m)) > 0) {
		if (streq(m->fstype, "cgroup2")) {
			if ((size_t)snprintf(buf, len, "%s", m->mount_point) >= len)
				return -ENAMETOOLONG;
			return 0;
		}
	}
	return r < 0 ? r : -ENOENT;
}

/* Mount bpffs on the directory holding the pin root if nothing is mounted there yet. */
static int lb_bpffs_ensure(const char *pin_root, struct err *e)
{
	char base[PATH_MAX];
	struct statfs st;
	char *slash;

	if (statfs(pin_root, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	/* the pin root itself may not exist yet: look at the closest existing ancestor */
	snprintf(base, sizeof(base), "%s", pin_root);
	while (statfs(base, &st) < 0) {
		slash = strrchr(base, '/');
		if (!slash || slash == base)
			return err_set(e, errno, 500, "InternalError", "no bpffs for %s", pin_root);
		*slash = '\0';
	}
	if (st.f_type == BPF_FS_MAGIC)
		return 0;
	/* the conventional mount point; only ever mounted when nothing is there */
	if (!streq(base, "/sys/fs/bpf") && strncmp(pin_root, "/sys/fs/bpf/", 12))
		return err_set(e, EINVAL, 500, "InternalError",
			       "pin root %s is not on a bpffs mount", pin_root);
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0)
		return err_set(e, errno, 500, "InternalError", "mounting bpffs on /sys/fs/bpf: %m");
	return 0;
}

/* --- loading --- */

static void lb_size_map(struct lb *lb, struct bpf_map *map, enum lb_map_idx idx, uint32_t want)
{
	char path[PATH_MAX + 32];
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	_cleanup_close_ int fd = -1;

	if (!want)
		want = bpf_map__max_entries(map);
	/* a pinned map keeps its size and flags: resizing needs a migration this loader does not
	 * do, and maps pinned by a build that did not preallocate (BPF_F_NO_PREALLOC) are adopted
	 * as they are, so the datapath survives the upgrade (preallocated after a teardown) */
	snprintf(path, sizeof(path), "%s/%s", lb->pin_dir, lb_map_names[idx]);
	fd = bpf_obj_get(path);
	if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	    (info.key_size != lb_map_sizes[idx][0] || info.value_size != lb_map_sizes[idx][1])) {
		/* pinned by a build with another layout (shoal_svc before its slots carried the
		 * backend address): the programs attached now keep their copy until the new ones
		 * are swapped into the links; this one starts empty and the proxy programs it from
		 * the store, as after a teardown */
		unlink(path);
		lb->recreated |= 1u << idx;
	} else if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
		want = info.max_entries;
		if (info.type == bpf_map__type(map))
			bpf_map__set_map_flags(map, info.map_flags);
	}
	bpf_map__set_max_entries(map, want);
	lb->max[idx] = want;
}

static uint64_t cgroup_id_of(const char *path)
{
	struct stat st;

	/* cgroup2: the cgroup id is the kernfs inode number of its directory */
	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static uint64_t link_cgroup_id(struct bpf_link *link)
{
	struct bpf_link_info info = {};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len) < 0)
		return 0;
	return info.type == BPF_LINK_TYPE_CGROUP ? info.cgroup.cgroup_id : 0;
}

static uint64_t find_cgroup_id;
static char find_cgroup_path[PATH_MAX];

static int find_cgroup_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_D && (uint64_t)st->st_ino == find_cgroup_id) {
		snprintf(find_cgroup_path, sizeof(find_cgroup_path), "%s", path);
		return 1;
	}
	return 0;
}

/*
 * Adopt a pinned link (new program swapped in) or attach and pin a new one. cg_fd < 0 for a
 * cgroup program: keep whatever is pinned (and attach nothing new).
 */
static int lb_link_setup(struct lb *lb, int i, struct bpf_program *prog, int cg_fd,
			 uint64_t cg_id, struct err *e)
{
	char path[PATH_MAX + 64];
	struct bpf_link *link;
	const char *name = lb_link_names[i];
	bool cg = i != LB_LINK_ITER;
	int r;

	snprintf(path, sizeof(path), "%s/links/%s", lb->pin_dir, name);
	link = access(path, F_OK) == 0 ? bpf_link__open(path) : NULL;
	if (link && cg && cg_fd >= 0 && link_cgroup_id(link) != cg_id) {
		/* asked to move to another cgroup: detach from the old one */
		bpf_link__unpin(link);
		bpf_link__destroy(link);
		link = NULL;
	}
	if (link) {
		r = bpf_link__update_program(link, prog);
		if (r < 0) {
			bpf_link__destroy(link);
			return err_set(e, r, 500, "InternalError", "updating pinned link %s: %s",
				       path, strerror(-r));
		}
		lb->links[i] = link;
		return 0;
	}
	if (cg && cg_fd < 0)
		return 0; /* nothing pinned, nothing asked */
	link = cg ? bpf_program__attach_cgroup(prog, cg_fd) : bpf_program__attach_iter(prog, NULL);
	if (!link)
		return err_set(e, errno, 500, "InternalError", "attaching %s: %m", name);
	r = bpf_link__pin(link, path);
	if (r < 0) {
		bpf_link__destroy(link);
		return err_set(e, r, 500, "InternalError", "pinning %s: %s", path, strerror(-r));
	}
	lb->links[i] = link;
	return 0;
}

/* Detach and unpin one pinned link (a scope change that no longer needs it). */
static void lb_link_drop(struct lb *lb, int i)
{
	char path[PATH_MAX + 64];
	struct bpf_link *link;

	snprintf(path, sizeof(path), "%s/links/%s", lb->pin_dir, lb_link_names[i]);
	if (access(path, F_OK) < 0 || !(link = bpf_link__open(path)))
		return;
	bpf_link__unpin(link);
	bpf_link__destroy(link);
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int lb_netns_cookie(uint64_t *ret)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t len = sizeof(*ret);

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, ret, &len) < 0)
		return -errno;
	return 0;
}

static void lb_find_cgroup(struct lb *lb);

/* Level of cgroup2 directory `real` below the mount `rroot` (the mount's root is 0). */
static uint32_t cgroup_level_of(const char *real, const char *rroot)
{
	uint32_t n = 0;

	for (const char *p = real + strlen(rroot); *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			n++;
	return n;
}

/*
 * Who the programs act on, decided before load (it is their rodata, struct shoal_scope_cfg).
 * Chosen only by a caller that chose the scope (opts->cgroup: *write, the pinned shoal_scope
 * records it); an adopter (tools) keeps what is pinned. A never-written entry under links from a
 * build without scopes is made to act on everything it sees, as those links did, unless they sit
 * on the cgroup2 root. `cg_real`: the chosen cgroup's real path; `rroot`: the cgroup2 mount's.
 */
static int lb_scope_decide(struct lb *lb, const struct lb_opts *opts, uint64_t root_id,
			   const char *cg_real, const char *rroot, struct shoal_scope *sc,
			   struct shoal_scope_cfg *cfg, bool *write, struct err *e)
{
	*sc = (struct shoal_scope){};
	*cfg = (struct shoal_scope_cfg){};
	*write = false;
	if (opts->cgroup) {
		uint64_t cookie = opts->netns_cookie;
		int r;

		if (!cookie && (r = lb_netns_cookie(&cookie)) < 0)
			return err_set(e, r, 500, "InternalError", "reading the netns cookie: %s",
				       strerror(-r));
		sc->netns_cookie = cookie;
		sc->flags = opts->host_reach ? 0 : SHOAL_SCOPE_ALL;
		*write = true;
	} else {
		char path[PATH_MAX + 64];
		struct bpf_link *link;
		_cleanup_close_ int fd = -1;
		uint32_t zero = 0;
		uint64_t id;

		snprintf(path, sizeof(path), "%s/%s", lb->pin_dir, SHOAL_MAP_SCOPE);
		fd = bpf_obj_get(path);
		if (fd < 0 || bpf_map_lookup_elem(fd, &zero, sc) < 0 ||
		    !(sc->netns_cookie || sc->flags)) {
			*sc = (struct shoal_scope){};
			snprintf(path, sizeof(path), "%s/links/%s", lb->pin_dir, lb_link_names[0]);
			if (access(path, F_OK) == 0 && (link = bpf_link__open(path))) {
				id = link_cgroup_id(link);
				bpf_link__destroy(link);
				if (id && id != root_id) {
					sc->flags = SHOAL_SCOPE_ALL;
					*write = true;
				}
			}
		}
		/* host-reachable: the subtree sock_create is attached to */
		if (!(sc->flags & SHOAL_SCOPE_ALL)) {
			lb_find_cgroup(lb);
			cg_real = lb->cgroup[0] && rroot[0] ? lb->cgroup : NULL;
		}
	}
	cfg->netns_cookie = sc->netns_cookie;
	cfg->flags = sc->flags;
	if (!(sc->flags & SHOAL_SCOPE_ALL) && cg_real && rroot[0] &&
	    !strncmp(cg_real, rroot, strlen(rroot))) {
		/* a wrong level (a cgroup namespace hiding the real root) only fails the check:
		 * the namespace checks behind it still answer */
		cfg->cgroup_id = cgroup_id_of(cg_real);
		cfg->cgroup_level = cgroup_level_of(cg_real, rroot);
	}
	return 0;
}

static int lb_scope_write(struct lb *lb, const struct shoal_scope *sc, struct err *e)
{
	uint32_t zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(lb->skel->maps.shoal_scope), &zero, sc, BPF_ANY) < 0)
		return err_set(e, errno, 500, "InternalError", "writing %s: %m", SHOAL_MAP_SCOPE);
	return 0;
}

static int lb_load(struct lb *lb, const struct lb_opts *opts, struct err *e)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = lb->pin_dir);
	struct bpf_program *cg_progs[LB_NCG];
	_cleanup_close_ int cg_fd = -1, root_fd = -1;
	char links_dir[PATH_MAX + 8], root[PATH_MAX], rroot[PATH_MAX] = "", real[PATH_MAX] = "";
	struct shoal_scope_cfg scfg;
	struct shoal_scope sc;
	uint64_t cg_id = 0, root_id = 0;
	bool sc_write;
	int r, addr_fd;

	r = lb_cgroup2_root(root, sizeof(root));
	if (r == 0 && realpath(root, rroot))
		root_id = cgroup_id_of(rroot);
	else
		rroot[0] = '\0';
	if (opts->cgroup) {
		if (r < 0)
			return err_set(e, r, 500, "InternalError", "no cgroup2 mount found");
		if (!realpath(opts->cgroup, real) || !realpath(root, rroot))
			return err_set(e, errno, 400, "BadRequest", "cgroup %s: %m", opts->cgroup);
		if (strncmp(real, rroot, strlen(rroot)) ||
		    (real[strlen(rroot)] != '/' && real[strlen(rroot)] != '\0'))
			return err_set(e, EINVAL, 400, "BadRequest", "%s is not under the cgroup2 mount %s",
				       real, rroot);
		/* host-reachable: the subtree says which pods are ours; the root would say all */
		if (streq(real, rroot) && (!opts->host_wide || opts->host_reach))
			return err_set(e, EPERM, 400, "BadRequest",
				       "refusing to attach to the root cgroup %s (host-wide not enabled)",
				       rroot);
		cg_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg_fd < 0)
			return err_set(e, errno, 400, "BadRequest", "opening cgroup %s: %m", real);
		cg_id = cgroup_id_of(real);
		snprintf(lb->cgroup, sizeof(lb->cgroup), "%s", real);
		if (opts->host_reach) {
			root_fd = open(rroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (root_fd < 0)
				return err_set(e, errno, 500, "InternalError",
					       "opening cgroup %s: %m", rroot);
		}
	}

	lb->skel = sock_lb__open_opts(&oo);
	if (!lb->skel)
		return err_set(e, errno, 500, "InternalError", "opening BPF object: %m");
	lb_size_map(lb, lb->skel->maps.shoal_svc, LB_MAP_SVC, opts->svc_max);
	lb_size_map(lb, lb->skel->maps.shoal_backend, LB_MAP_BACKEND, opts->backend_max);
	lb_size_map(lb, lb->skel->maps.shoal_revnat, LB_MAP_REVNAT, opts->revnat_max);
	lb_size_map(lb, lb->skel->maps.shoal_sk_nat, LB_MAP_SK_NAT, opts->sk_nat_max);
	lb_size_map(lb, lb->skel->maps.shoal_affinity, LB_MAP_AFFINITY, opts->affinity_max);
	lb_size_map(lb, lb->skel->maps.shoal_destroy, LB_MAP_DESTROY, 0);
	lb_size_map(lb, lb->skel->maps.shoal_be_rev, LB_MAP_BE_REV, opts->backend_max);
	lb_size_map(lb, lb->skel->maps.shoal_be_tbl, LB_MAP_BE_TBL, opts->be_tbl_max);
	lb->skel->rodata->shoal_cfg.flags =
		opts->cfg_flags ? opts->cfg_flags : SHOAL_CFG_TCP_PEER | SHOAL_CFG_UDP;
	lb->skel->rodata->shoal_cfg.maglev_seed = opts->maglev_seed;
	r = lb_scope_decide(lb, opts, root_id, real[0] ? real : NULL, rroot, &sc, &scfg, &sc_write,
			    e);
	if (r < 0)
		return r;
	lb->skel->rodata->shoal_scope_cfg = scfg;

	r = sock_lb__load(lb->skel);
	if (r < 0)
		return err_set(e, r, 500, "InternalError",
			       "loading BPF programs (pinned maps from an incompatible build? "
			       "tear down %s): %s",
			       lb->pin_dir, strerror(-r));
	lb->fds[LB_MAP_SVC] = bpf_map__fd(lb->skel->maps.shoal_svc);
	lb->fds[LB_MAP_BACKEND] = bpf_map__fd(lb->skel->maps.shoal_backend);
	lb->fds[LB_MAP_REVNAT] = bpf_map__fd(lb->skel->maps.shoal_revnat);
	lb->fds[LB_MAP_SK_NAT] = bpf_map__fd(lb->skel->maps.shoal_sk_nat);
	lb->fds[LB_MAP_AFFINITY] = bpf_map__fd(lb->skel->maps.shoal_affinity);
	lb->fds[LB_MAP_DESTROY] = bpf_map__fd(lb->skel->maps.shoal_destroy);
	lb->fds[LB_MAP_BE_REV] = bpf_map__fd(lb->skel->maps.shoal_be_rev);
	lb->fds[LB_MAP_BE_TBL] = bpf_map__fd(lb->skel->maps.shoal_be_tbl);

	/* the filter is in place before any program can run at the root */
	if (sc_write && (r = lb_scope_write(lb, &sc, e)) < 0)
		return r;
	snprintf(links_dir, sizeof(links_dir), "%s/links", lb->pin_dir);
	r = util_mkdir_p(links_dir, 0700);
	if (r < 0)
		return err_set(e, r, 500, "InternalError", "creating %s: %s", links_dir,
			       strerror(-r));
	/* host-reachable: pods' sockets register their netns before the root programs act */
	if (opts->cgroup && !opts->host_reach)
		lb_link_drop(lb, LB_LINK_CREATE);
	r = lb_link_setup(lb, LB_LINK_CREATE, lb->skel->progs.shoal_sock_create,
			  opts->host_reach ? cg_fd : -1, cg_id, e);
	if (r < 0)
		return r;
	cg_progs[0] = lb->skel->progs.shoal_sock4_connect;
	cg_progs[1] = lb->skel->progs.shoal_sock4_sendmsg;
	cg_progs[2] = lb->skel->progs.shoal_sock4_recvmsg;
	cg_progs[3] = lb->skel->progs.shoal_sock4_getpeername;
	addr_fd = opts->host_reach ? root_fd : cg_fd;
	for (int i = 0; i < LB_NCG; i++) {
		r = lb_link_setup(lb, i, cg_progs[i], addr_fd, opts->host_reach ? root_id : cg_id,
				  e);
		if (r < 0)
			return r;
	}
	r = lb_link_setup(lb, LB_LINK_ITER, lb->skel->progs.shoal_sock4_udp_destroy, -1, 0, e);
	if (r < 0)
		return r;
	return 0;
}

/*
 * The pinned links tell which subtree we serve when the caller did not say: sock_create's
 * cgroup (host-reachable scope), else connect4's.
 */
static void lb_find_cgroup(struct lb *lb)
{
	char root[PATH_MAX], path[PATH_MAX + 32];
	struct bpf_link *link = NULL;

	if (lb->cgroup[0])
		return;
	for (int i = LB_LINK_CREATE; i >= 0 && !link; i -= LB_LINK_CREATE) {
		snprintf(path, sizeof(path), "%s/links/%s", lb->pin_dir, lb_link_names[i]);
		if (access(path, F_OK) == 0)
			link = bpf_link__open(path);
	}
	if (!link)
		return;
	find_cgroup_id = link_cgroup_id(link);
	bpf_link__destroy(link);
	find_cgroup_path[0] = '\0';
	if (find_cgroup_id && lb_cgroup2_root(root, sizeof(root)) == 0 &&
	    nftw(root, find_cgroup_cb, 16, FTW_PHYS) == 1)
		snprintf(lb->cgroup, sizeof(lb->cgroup), "%s", find_cgroup_path);
}

static int lb_open_pinned(struct lb *lb, struct err *e)
{
	char path[PATH_MAX + 32];

	for (int i = 0; i < LB_MAP_N; i++) {
		struct bpf_map_info info = {};
		uint32_t len = sizeof(info);

		snprintf(path, sizeof(path), "%s/%s", lb->pin_dir, lb_map_names[i]);
		lb->fds[i] = bpf_obj_get(path);
		if (lb->fds[i] < 0)
			return err_set(e, errno, 404, "NotFound", "no pinned map %s: %m", path);
		if (bpf_obj_get_info_by_fd(lb->fds[i], &info, &len) < 0)
			return err_set(e, errno, 500, "InternalError", "reading %s: %m", path);
		if (info.key_size != lb_map_sizes[i][0] || info.value_size != lb_map_sizes[i][1])
			return err_set(e, EPROTO, 409, "Conflict",
				       "pinned map %s has another layout (key %u, value %u bytes): "
				       "pinned by another build",
				       path, info.key_size, info.value_size);
		lb->max[i] = info.max_entries;
	}
	return 0;
}

/* --- rebuilding the view from the maps --- */

static int cmp_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct svc_entry {
	struct shoal_svc_key k;
	struct shoal_svc_val v;
};

static int svc_entry_cmp(const void *a, const void *b)
{
	const struct svc_entry *x = a, *y = b;
	struct lb_svc sx = { .key = x->k }, sy = { .key = y->k };
	int c = svc_cmp(&sx, &sy);

	return c ? c : (int)x->k.slot - (int)y->k.slot;
}

static void gc_collect_cb(const void *node, VISIT which, void *data);
static void collect_cb(const void *node, VISIT which, void *data);
struct walk_ctx {
	struct lb_svc **v;
	size_t n, cap;
};

struct id_set {
	uint32_t *v;
	size_t n, cap;
};

/* Backend entries no service names (a crash between writing a backend and its slot). */
static int lb_state_gc_backends(struct lb *lb)
{
	struct id_set ids = {};
	uint32_t id, next, *dead = NULL;
	size_t ndead = 0;
	void *pk = NULL;

	twalk_r(lb->svcs, gc_collect_cb, &ids);
	if (ids.n)
		qsort(ids.v, ids.n, sizeof(*ids.v), cmp_id);
	while (bpf_map_get_next_key(lb->fds[LB_MAP_BACKEND], pk, &next) == 0) {
		id = next;
		pk = &id;
		if (ids.n && bsearch(&id, ids.v, ids.n, sizeof(id), cmp_id))
			continue;
		dead = realloc(dead, (ndead + 1) * sizeof(*dead));
		if (!dead)
			break;
		dead[ndead++] = id;
	}
	for (size_t i = 0; i < ndead; i++)
		if (bpf_map_delete_elem(lb->fds[LB_MAP_BACKEND], &dead[i]) == 0)
			lb->nbackends--;
	free(dead);
	free(ids.v);
	return 0;
}

/*
 * The TCP reverse map from the pins: every entry some frontend's member still has is kept as it
 * is (sockets rely on what it says); members without one (pins of a build before the map) get
 * their frontend; entries nothing has are dropped. Then every TCP slot's SHOAL_SVC_SK_PEER is
 * made to agree with the map.
 */
static void lb_state_load_revs(struct lb *lb, const struct svc_entry *ents, size_t n)
{
	struct shoal_be_rev_key k, next;
	void *pk = NULL;
	struct walk_ctx w = {};

	while (bpf_map_get_next_key(lb->fds[LB_MAP_BE_REV], pk, &next) == 0) {
		struct lb_rev *r = calloc(1, sizeof(*r));

		k = next;
		pk = &k;
		if (!r)
			break;
		r->key = k;
		if (bpf_map_lookup_elem(lb->fds[LB_MAP_BE_REV], &k, &r->val) < 0 ||
		    !tsearch(r, &lb->revs, rev_cmp))
			free(r);
	}
	twalk_r(lb->svcs, collect_cb, &w);
	for (size_t i = 0; i < w.n; i++) {
		struct lb_svc *s = w.v[i];

		if (s->key.proto != IPPROTO_TCP)
			continue;
		for (size_t j = 0; j < s->nmembers; j++) {
			struct lb_rev *r = rev_find(lb, &s->members[j].be);

			if (r)
				r->refs++;
			else
				rev_get(lb, s, &s->members[j].be);
		}
	}
	free(w.v);
	w = (struct walk_ctx){};
	twalk_r(lb->revs, collect_cb, &w);
	for (size_t i = 0; i < w.n; i++) {
		struct lb_rev *r = (struct lb_rev *)w.v[i];

		if (r->refs)
			continue;
		bpf_map_delete_elem(lb->fds[LB_MAP_BE_REV], &r->key);
		tdelete(r, &lb->revs, rev_cmp);
		free(r);
	}
	free(w.v);
	for (size_t i = 0; i < n; i++) {
		const struct svc_entry *en = &ents[i];
		struct lb_svc *s;
		struct lb_member *m;
		struct shoal_svc_val v;

		if (!en->k.slot || en->k.proto != IPPROTO_TCP)
			continue;
		s = svc_find(lb, en->k.vip, en->k.port, en->k.proto);
		m = s ? svc_member(s, en->v.backend_id) : NULL;
		if (!m || !!(en->v.flags & SHOAL_SVC_SK_PEER) == rev_other(lb, s, &m->be))
			continue;
		v = en->v;
		v.flags ^= SHOAL_SVC_SK_PEER;
		bpf_map_update_elem(lb->fds[LB_MAP_SVC], &en->k, &v, BPF_EXIST);
	}
	/* slot 0's copies of the slots (what connect4 reads for a small service) agree */
	w = (struct walk_ctx){};
	twalk_r(lb->svcs, collect_cb, &w);
	for (size_t i = 0; i < w.n; i++) {
		struct lb_svc *s = w.v[i];
		struct shoal_svc_val v = s->val;
		struct shoal_svc_be *nbe = NULL;

		if (svc_list(lb, s, &v, s->ready, s->term, s->members, s->nmembers, &nbe) < 0 ||
		    (!nbe && !memcmp(&v, &s->val, sizeof(v))))
			continue;
		if (bpf_map_update_elem(lb->fds[LB_MAP_SVC], &s->key, &v, BPF_EXIST) == 0) {
			svc_tbl_commit(lb, s, &v, nbe);
			s->val = v;
		} else if (nbe) {
			tbl_release(lb, v.backend_id, tbl_class(v.count ? v.count : v.term_count),
				    0);
			free(nbe);
		}
	}
	free(w.v);
}

struct tbl_use {
	uint32_t base, len;
	struct lb_svc *s;
};

static int tbl_use_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct tbl_use *)a)->base, y = ((const struct tbl_use *)b)->base;

	return x < y ? -1 : x > y;
}

/*
 * The regions of shoal_be_tbl the pinned slot-0 entries name, and what they hold; the space
 * between them is free after the grace period (a previous daemon may just have let it go). A
 * region that makes no sense (out of bounds, overlapping another) is not adopted: the service is
 * given a new one (lb_state_load_revs' pass over slot 0).
 */
static void lb_state_load_tbl(struct lb *lb)
{
	struct walk_ctx w = {};
	struct tbl_use *u;
	uint64_t now = lb_now_ns();
	uint32_t end = 0;
	size_t nu = 0;

	twalk_r(lb->svcs, collect_cb, &w);
	u = calloc(w.n + 1, sizeof(*u));
	for (size_t i = 0; u && i < w.n; i++) {
		struct lb_svc *s = w.v[i];
		size_t n = s->val.count ? s->val.count : s->val.term_count;

		if (!(s->val.flags & SHOAL_SVC_TBL) || n <= SHOAL_SVC_INLINE ||
		    (uint64_t)s->val.backend_id + tbl_class(n) > lb->max[LB_MAP_BE_TBL])
			continue;
		u[nu++] = (struct tbl_use){s->val.backend_id, tbl_class(n), s};
	}
	if (u)
		qsort(u, nu, sizeof(*u), tbl_use_cmp);
	for (size_t i = 0; u && i < nu; i++) {
		struct lb_svc *s = u[i].s;
		size_t n = s->val.count ? s->val.count : s->val.term_count;

		if (u[i].base < end)
			continue; /* overlaps the one before */
		s->tbl_be = calloc(n, sizeof(*s->tbl_be));
		if (!s->tbl_be)
			continue;
		for (size_t j = 0; j < n; j++) {
			uint32_t k = u[i].base + (uint32_t)j;

			bpf_map_lookup_elem(lb->fds[LB_MAP_BE_TBL], &k, &s->tbl_be[j]);
		}
		s->tbl_n = (uint32_t)n;
		if (u[i].base > end)
			tbl_release(lb, end, u[i].base - end, now);
		end = u[i].base + u[i].len;
	}
	lb->tbl_top = end;
	free(u);
	free(w.v);
}

static int lb_state_load(struct lb *lb)
{
	_cleanup_free_ struct svc_entry *ents = NULL;
	size_t n = 0, cap = 0;
	struct shoal_svc_key k, next;
	uint32_t id, next_id;
	struct lb_svc *cur = NULL;
	void *pk = NULL;

	while (bpf_map_get_next_key(lb->fds[LB_MAP_SVC], pk, &next) == 0) {
		k = next;
		pk = &k;
		if (n == cap) {
			struct svc_entry *t = realloc(ents, (cap = cap ? cap * 2 : 256) * sizeof(*t));

			if (!t)
				return -ENOMEM;
			ents = t;
		}
		ents[n].k = k;
		if (bpf_map_lookup_elem(lb->fds[LB_MAP_SVC], &k, &ents[n].v) == 0)
			n++;
	}
	qsort(ents, n, sizeof(*ents), svc_entry_cmp);

	for (size_t i = 0; i < n; i++) {
		struct svc_entry *en = &ents[i];
		uint16_t slot = en->k.slot;

		if (slot == 0) {
			cur = calloc(1, sizeof(*cur));
			if (!cur)
				return -ENOMEM;
			cur->key = en->k;
			cur->val = en->v;
			cur->ready = calloc(en->v.count + 1, sizeof(uint32_t));
			cur->term = calloc(en->v.term_count + 1, sizeof(uint32_t));
			cur->members = calloc(en->v.count + en->v.term_count + 1,
					      sizeof(*cur->members));
			if (!cur->ready || !cur->term || !cur->members || !tsearch(cur, &lb->svcs, svc_cmp)) {
				svc_free(cur);
				return -ENOMEM;
			}
			revnat_mark(lb, en->v.rev_nat, true);
			lb->nsvc++;
			lb->svc_entries++;
			continue;
		}
		if (cur && cur->key.vip == en->k.vip && cur->key.port == en->k.port &&
		    cur->key.proto == en->k.proto) {
			if (slot > SHOAL_SLOT_TERM && slot - SHOAL_SLOT_TERM <= cur->val.term_count) {
				cur->term[slot - SHOAL_SLOT_TERM - 1] = en->v.backend_id;
				lb->svc_entries++;
				continue;
			}
			if (slot <= cur->val.count) {
				cur->ready[slot - 1] = en->v.backend_id;
				lb->svc_entries++;
				continue;
			}
		}
		/* a slot past its count or without a service: left by a crash mid-update */
		bpf_map_delete_elem(lb->fds[LB_MAP_SVC], &en->k);
	}
	/* members from the backend map; ids past any seen are free */
	lb->next_id = 1;
	pk = NULL;
	while (bpf_map_get_next_key(lb->fds[LB_MAP_BACKEND], pk, &next_id) == 0) {
		id = next_id;
		pk = &id;
		if (id >= lb->next_id)
			lb->next_id = id + 1;
		lb->nbackends++;
	}
	for (size_t i = 0; i < n; i++) {
		struct lb_svc *s;

		if (ents[i].k.slot)
			continue;
		s = svc_find(lb, ents[i].k.vip, ents[i].k.port, ents[i].k.proto);
		for (int t = 0; t < 2; t++) {
			uint32_t *ids = t ? s->term : s->ready;
			size_t cnt = t ? s->val.term_count : s->val.count;

			for (size_t j = 0; j < cnt; j++) {
				struct lb_member m = { .id = ids[j] };

				if (!ids[j] || svc_member(s, ids[j]) ||
				    bpf_map_lookup_elem(lb->fds[LB_MAP_BACKEND], &ids[j], &m.be))
					continue;
				s->members[s->nmembers++] = m;
			}
		}
		qsort(s->members, s->nmembers, sizeof(*s->members), member_cmp);
	}
	lb_state_load_tbl(lb);
	lb_state_load_revs(lb, ents, n);
	return lb_state_gc_backends(lb);
}

int lb_open(const struct lb_opts *opts, struct lb **ret, struct err *e)
{
	struct lb *lb;
	const char *root = opts->pin_root ? opts->pin_root : LB_PIN_ROOT_DEFAULT;
	int r;

	if (strempty(opts->node) || strchr(opts->node, '/'))
		return err_set(e, EINVAL, 400, "BadRequest", "a node name is required");
	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	for (int i = 0; i < LB_MAP_N; i++)
		lb->fds[i] = -1;
	snprintf(lb->pin_dir, sizeof(lb->pin_dir), "%s/%s", root, opts->node);

	r = lb_bpffs_ensure(root, e);
	if (r < 0)
		goto fail;
	r = util_mkdir_p(lb->pin_dir, 0700);
	if (r < 0) {
		err_set(e, r, 500, "InternalError", "creating %s: %s", lb->pin_dir, strerror(-r));
		goto fail;
	}
	if (opts->maps_only) {
		lb->own_fds = true;
		r = lb_open_pinned(lb, e);
		if (opts->cgroup)
			snprintf(lb->cgroup, sizeof(lb->cgroup), "%s", opts->cgroup);
	} else {
		r = lb_load(lb, opts, e);
	}
	if (r < 0)
		goto fail;
	lb_find_cgroup(lb);
	r = lb_state_load(lb);
	if (r < 0) {
		err_set(e, r, 500, "InternalError", "reading pinned maps: %s", strerror(-r));
		goto fail;
	}
	*ret = lb;
	return 0;
fail:
	rmdir(lb->pin_dir); /* only if this call created it and nothing is pinned */
	lb_close(lb, false);
	return r;
}

static void lb_unpin_dir(const char *pin_dir)
{
	char path[PATH_MAX + 64];

	/* a link whose pin goes and whose fds are closed detaches its program */
	for (int i = 0; i < LB_NLINKS; i++) {
		snprintf(path, sizeof(path), "%s/links/%s", pin_dir, lb_link_names[i]);
		unlink(path);
	}
	for (size_t i = 0; i < ARRAY_SIZE(lb_scope_maps); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, lb_scope_maps[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/links", pin_dir);
	rmdir(path);
	for (int i = 0; i < LB_MAP_N; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, lb_map_names[i]);
		unlink(path);
	}
	rmdir(pin_dir);
}

int lb_teardown(const char *pin_root, const char *node)
{
	char dir[PATH_MAX];

	if (strempty(node) || strchr(node, '/'))
		return -EINVAL;
	snprintf(dir, sizeof(dir), "%s/%s", pin_root ? pin_root : LB_PIN_ROOT_DEFAULT, node);
	lb_unpin_dir(dir);
	return access(dir, F_OK) == 0 ? -ENOTEMPTY : 0;
}

void lb_close(struct lb *lb, bool unpin)
{
	if (!lb)
		return;
	for (int i = 0; i < LB_NLINKS; i++) {
		if (!lb->links[i])
			continue;
		if (unpin)
			bpf_link__unpin(lb->links[i]);
		bpf_link__destroy(lb->links[i]);
	}
	if (unpin)
		lb_unpin_dir(lb->pin_dir);
	if (lb->own_fds)
		for (int i = 0; i < LB_MAP_N; i++)
			if (lb->fds[i] >= 0)
				close(lb->fds[i]);
	sock_lb__destroy(lb->skel);
	tdestroy(lb->svcs, svc_free);
	tdestroy(lb->revs, free);
	for (int k = 0; k < LB_BATCH_N; k++) {
		lb_buf_free(&lb->batch[k].keys);
		lb_buf_free(&lb->batch[k].vals);
	}
	free(lb->pending);
	lb_buf_free(&lb->scr_removed);
	lb_buf_free(&lb->scr_wready);
	lb_buf_free(&lb->scr_wterm);
	lb_buf_free(&lb->scr_rops);
	lb_buf_free(&lb->scr_tops);
	lb_buf_free(&lb->scr_udp);
	lb_buf_free(&lb->scr_tbl);
	lb_buf_free(&lb->scr_tkeys);
	lb_buf_free(&lb->scr_tidx);
	free(lb->tbl_free);
	free(lb);
}

const char *lb_pin_dir(struct lb *lb)
{
	return lb->pin_dir;
}

/* --- connected UDP sockets of removed backends --- */

struct ns_set {
	dev_t dev[4096];
	ino_t ino[4096];
	size_t n;
};

static struct ns_set *walk_ns;

static void ns_add_pid(const char *pid)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/proc/%s/ns/net", pid);
	if (stat(p, &st) < 0)
		return;
	for (size_t i = 0; i < walk_ns->n; i++)
		if (walk_ns->dev[i] == st.st_dev && walk_ns->ino[i] == st.st_ino)
			return;
	if (walk_ns->n < ARRAY_SIZE(walk_ns->ino)) {
		walk_ns->dev[walk_ns->n] = st.st_dev;
		walk_ns->ino[walk_ns->n++] = st.st_ino;
	}
}

static char walk_first_pid[4096][16];

static int ns_walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char procs[PATH_MAX + 16], pid[16];
	_cleanup_fclose_ FILE *f = NULL;

	if (type != FTW_D)
		return 0;
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	f = fopen(procs, "re");
	if (!f)
		return 0;
	while (fscanf(f, "%15s", pid) == 1) {
		size_t before = walk_ns->n;

		ns_add_pid(pid);
		if (walk_ns->n > before)
			snprintf(walk_first_pid[before], sizeof(walk_first_pid[0]), "%s", pid);
	}
	return 0;
}

/* Run the pinned iter/udp program in every netns that has a process in our cgroup subtree. */
static int lb_udp_destroy_run(struct lb *lb)
{
	_cleanup_free_ struct ns_set *set = calloc(1, sizeof(*set));
	_cleanup_close_ int self = -1;
	char iter[PATH_MAX + 64], buf[4096];
	int done = 0;

	if (!set)
		return -ENOMEM;
	if (!lb->cgroup[0])
		return 0;
	walk_ns = set;
	nftw(lb->cgroup, ns_walk_cb, 16, FTW_PHYS);
	walk_ns = NULL;
	snprintf(iter, sizeof(iter), "%s/links/%s", lb->pin_dir, LB_ITER_UDP);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	for (size_t i = 0; i < set->n; i++) {
		char p[64];
		_cleanup_close_ int nsfd = -1, itfd = -1;

		snprintf(p, sizeof(p), "/proc/%s/ns/net", walk_first_pid[i]);
		nsfd = open(p, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
			continue;
		/* reading a pinned iterator runs it in the reader's network namespace */
		itfd = open(iter, O_RDONLY | O_CLOEXEC);
		if (itfd >= 0) {
			ssize_t k;

			while ((k = read(itfd, buf, sizeof(buf))) > 0)
				done += (int)k;
		}
		if (setns(self, CLONE_NEWNET) < 0)
			return -errno;
	}
	return done;
}

static int lb_udp_destroy(struct lb *lb, const struct shoal_backend *bes, size_t n)
{
	uint8_t one = 1;
	int r;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct shoal_destroy_key k = { .ip = bes[i].ip, .port = bes[i].port,
					       .proto = IPPROTO_UDP };

		bpf_map_update_elem(lb->fds[LB_MAP_DESTROY], &k, &one, BPF_ANY);
	}
	r = lb_udp_destroy_run(lb);
	for (size_t i = 0; i < n; i++) {
		struct shoal_destroy_key k = { .ip = bes[i].ip, .port = bes[i].port,
					       .proto = IPPROTO_UDP };

		bpf_map_delete_elem(lb->fds[LB_MAP_DESTROY], &k);
	}
	return r;
}

/* --- programming services --- */

static int write_slot(struct lb *lb, const struct lb_svc *s, uint16_t slot,
		      const struct lb_member *m)
{
	struct shoal_svc_key k = s->key;
	struct shoal_svc_val v = { .backend_id = m->id, .rev_nat = s->val.rev_nat,
				   .be[0] = { .ip = m->be.ip, .port = m->be.port } };

	if (rev_other(lb, s, &m->be))
		v.flags = SHOAL_SVC_SK_PEER;
	k.slot = slot;
	if (s->pending)
		return lb_batch_add(lb, LB_BATCH_SLOT, &k, &v);
	lb->last_writes++;
	return bpf_map_update_elem(lb->fds[LB_MAP_SVC], &k, &v, BPF_ANY) < 0 ? -errno : 0;
}

static int del_slot(struct lb *lb, const struct lb_svc *s, uint16_t slot)
{
	struct shoal_svc_key k = s->key;

	k.slot = slot;
	lb->last_writes++;
	return bpf_map_delete_elem(lb->fds[LB_MAP_SVC], &k) < 0 && errno != ENOENT ? -errno : 0;
}

/* `want`: the service's members after the change (a slot names one of them). */
static int run_ops(struct lb *lb, const struct lb_svc *s, const struct lb_slot_op *ops, size_t n,
		   uint16_t base, enum lb_slot_op_kind kind, const struct lb_member *want,
		   size_t nwant)
{
	for (size_t i = 0; i < n; i++) {
		const struct lb_member *m = NULL;
		int r;

		if (ops[i].kind != kind)
			continue;
		if (kind == LB_SLOT_DEL) {
			r = del_slot(lb, s, base + ops[i].slot);
		} else {
			for (size_t j = 0; j < nwant && !m; j++)
				if (want[j].id == ops[i].id)
					m = &want[j];
			r = m ? write_slot(lb, s, base + ops[i].slot, m) : -EINVAL;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Forget what the batch holds (its services are not in the maps). */
static void lb_batch_drop(struct lb *lb)
{
	for (int k = 0; k < LB_BATCH_N; k++)
		lb->batch[k].n = 0;
	for (size_t i = 0; i < lb->npending; i++)
		lb->pending[i]->pending = false;
	lb->npending = 0;
}

static int reload_after_failure(struct lb *lb, int r, struct err *e, const char *what)
{
	/* the maps are the truth: rebuild the view so the next call diffs against them; services
	 * waiting in a batch are not in the maps, so they are gone and the flush will say so */
	if (lb->npending)
		lb->batch_lost = true;
	lb_batch_drop(lb);
	tdestroy(lb->svcs, svc_free);
	lb->svcs = NULL;
	tdestroy(lb->revs, free);
	lb->revs = NULL;
	memset(lb->revnat_used, 0, sizeof(lb->revnat_used));
	lb->nsvc = lb->nbackends = lb->svc_entries = 0;
	lb->tbl_top = 0;
	lb->ntbl_free = 0;
	lb_state_load(lb);
	return err_set(e, r, 500, "InternalError", "%s: %s", what, strerror(-r));
}

static int lb_batch_write(struct lb *lb, enum lb_batch_kind k)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = BPF_ANY);
	struct lb_batch *b = &lb->batch[k];
	size_t ks = lb_batch_sizes[k][0], vs = lb_batch_sizes[k][1];
	int fd = lb->fds[lb_batch_map[k]];
	size_t done = 0;

	while (done < b->n) {
		uint32_t count = (uint32_t)(b->n - done);
		int r = bpf_map_update_batch(fd, (char *)b->keys.p + done * ks,
					     (char *)b->vals.p + done * vs, &count, &bo);

		if (r == 0) {
			done += count;
			continue;
		}
		/* a kernel without batch ops on this map type: one by one, in the same order */
		if (done == 0 && count == 0 && (r == -EINVAL || r == -EOPNOTSUPP || r == -524)) {
			for (; done < b->n; done++)
				if (bpf_map_update_elem(fd, (char *)b->keys.p + done * ks,
							(char *)b->vals.p + done * vs, BPF_ANY) < 0)
					return -errno;
			break;
		}
		return r;
	}
	return 0;
}

/* Write everything the batch holds, slot-0 entries last; the services become visible. */
static int lb_batch_commit(struct lb *lb, struct err *e)
{
	int r = 0;

	for (int k = 0; k < LB_BATCH_N && r == 0; k++)
		r = lb_batch_write(lb, (enum lb_batch_kind)k);
	if (r < 0)
		return reload_after_failure(lb, r, e, "writing a batch of services");
	lb_batch_drop(lb);
	return 0;
}

void lb_batch_begin(struct lb *lb)
{
	lb->batching = true;
	lb->batch_lost = false;
}

int lb_batch_flush(struct lb *lb, struct err *e)
{
	int r = lb_batch_commit(lb, e);

	lb->batching = false;
	if (r == 0 && lb->batch_lost)
		r = err_set(e, EIO, 500, "InternalError",
			    "a failed map write dropped services of the batch; program them again");
	lb->batch_lost = false;
	return r;
}

int lb_service_upsert(struct lb *lb, const struct lb_frontend *fe, const struct lb_backend_addr *be,
		      size_t n, struct err *e)
{
	struct lb_svc *s = svc_find(lb, fe->vip, fe->port, fe->proto);
	_cleanup_free_ struct lb_member *want = NULL;
	_cleanup_free_ uint32_t *nready = NULL, *nterm = NULL;
	struct lb_member *removed;
	uint32_t *wready, *wterm;
	struct lb_slot_op *rops, *tops;
	struct shoal_backend *udp_gone;
	_cleanup_free_ struct shoal_svc_be *nbe = NULL;
	size_t nwr = 0, nwt = 0, nrops = 0, ntops = 0, nremoved = 0, nnew = 0, grow, i, j;
	size_t old_ready, old_term, nmem;
	struct shoal_svc_val v0;
	bool created = !s;
	int r;

	/* a service still waiting in the batch: write it out before diffing against it */
	if (s && s->pending) {
		r = lb_batch_commit(lb, e);
		if (r < 0)
			return r;
		s = svc_find(lb, fe->vip, fe->port, fe->proto);
		created = !s;
	}
	old_ready = s ? s->val.count : 0;
	old_term = s ? s->val.term_count : 0;
	nmem = s ? s->nmembers : 0;
	lb->last_writes = 0;
	lb->last_udp_destroyed = 0;
	if (fe->proto != IPPROTO_TCP && fe->proto != IPPROTO_UDP)
		return err_set(e, EPROTONOSUPPORT, 422, "Invalid", "protocol %u not supported",
			       fe->proto);
	if (!fe->vip || !fe->port)
		return err_set(e, EINVAL, 422, "Invalid", "frontend needs an address and a port");
	if (n > SHOAL_MAX_SLOTS)
		return err_set(e, E2BIG, 422, "Invalid", "%zu backends, at most %d", n,
			       SHOAL_MAX_SLOTS);

	/* what the service keeps: its members and slot layouts; the rest is reused scratch */
	want = calloc(n + 1, sizeof(*want));
	nready = malloc((n + 1) * sizeof(uint32_t));
	nterm = malloc((n + 1) * sizeof(uint32_t));
	removed = lb_buf_get(&lb->scr_removed, (nmem + 1) * sizeof(*removed));
	wready = lb_buf_get(&lb->scr_wready, (n + 1) * sizeof(uint32_t));
	wterm = lb_buf_get(&lb->scr_wterm, (n + 1) * sizeof(uint32_t));
	rops = lb_buf_get(&lb->scr_rops, (old_ready + n + 1) * sizeof(*rops));
	tops = lb_buf_get(&lb->scr_tops, (old_term + n + 1) * sizeof(*tops));
	udp_gone = lb_buf_get(&lb->scr_udp, (nmem + 1) * sizeof(*udp_gone));
	if (!want || !removed || !wready || !wterm || !nready || !nterm || !rops || !tops ||
	    !udp_gone)
		return -ENOMEM;

	for (i = 0; i < n; i++) {
		if (!be[i].ip || !be[i].port)
			return err_set(e, EINVAL, 422, "Invalid", "backend %zu needs an address and a port", i);
		want[i].be = (struct shoal_backend){ .ip = be[i].ip, .port = be[i].port,
						     .proto = fe->proto, .flags = be[i].flags };
	}
	qsort(want, n, sizeof(*want), member_cmp);
	for (i = 1; i < n; i++)
		if (!member_cmp(&want[i - 1], &want[i]))
			return err_set(e, EINVAL, 422, "Invalid", "duplicate backend");

	/* merge-join with the current members: keep ids of addresses that stay */
	for (i = 0, j = 0; s && (i < n || j < s->nmembers);) {
		int c = i >= n ? 1 : j >= s->nmembers ? -1 : member_cmp(&want[i], &s->members[j]);

		if (c == 0) {
			want[i++].id = s->members[j++].id;
		} else if (c < 0) {
			i++;
		} else {
			removed[nremoved++] = s->members[j++];
		}
	}
	/* ids for new members (nothing written yet), then the slot plans */
	for (i = 0; i < n; i++) {
		if (want[i].id)
			continue;
		want[i].id = lb->next_id + (uint32_t)nnew;
		nnew++;
	}
	/* wanted slot sets, in the caller's order (it decides who fills new slots first) */
	for (i = 0; i < n; i++) {
		struct lb_member key = { .be = { .ip = be[i].ip, .port = be[i].port } };
		struct lb_member *m = bsearch(&key, want, n, sizeof(*want), member_cmp);

		if (m->be.flags & SHOAL_BE_TERMINATING)
			wterm[nwt++] = m->id;
		else
			wready[nwr++] = m->id;
	}
	r = lb_slots_plan(s ? s->ready : NULL, old_ready, wready, nwr, nready, rops, &nrops);
	if (r == 0)
		r = lb_slots_plan(s ? s->term : NULL, old_term, wterm, nwt, nterm, tops, &ntops);
	if (r < 0)
		return err_set(e, r, 500, "InternalError", "planning slots: %s", strerror(-r));

	/* capacity first: a full map must not leave a half-programmed service */
	if (lb->nbackends + nnew > lb->max[LB_MAP_BACKEND])
		return err_set(e, ENOSPC, 507, "InsufficientStorage",
			       "backend map full (%u of %u entries, %zu more needed)", lb->nbackends,
			       lb->max[LB_MAP_BACKEND], nnew);
	grow = created + (nwr > old_ready ? nwr - old_ready : 0) +
	       (nwt > old_term ? nwt - old_term : 0);
	if (lb->svc_entries + grow > lb->max[LB_MAP_SVC])
		return err_set(e, ENOSPC, 507, "InsufficientStorage",
			       "service map full (%u of %u entries, %zu more needed)",
			       lb->svc_entries, lb->max[LB_MAP_SVC], grow);
	if (created) {
		uint16_t rn;
		struct shoal_revnat rv = { .vip = fe->vip, .port = fe->port, .proto = fe->proto };

		r = revnat_alloc(lb, &rn);
		if (r < 0)
			return err_set(e, r, 507, "InsufficientStorage", "no free reverse-NAT index");
		if (lb->batching && lb->npending == lb->pending_cap) {
			size_t cap = lb->pending_cap ? lb->pending_cap * 2 : 256;
			struct lb_svc **t = realloc(lb->pending, cap * sizeof(*t));

			if (!t)
				return -ENOMEM;
			lb->pending = t;
			lb->pending_cap = cap;
		}
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->key = (struct shoal_svc_key){ .vip = fe->vip, .port = fe->port, .proto = fe->proto };
		s->val.rev_nat = rn;
		if (lb->batching) {
			r = lb_batch_add(lb, LB_BATCH_REVNAT, &rn, &rv);
		} else {
			r = bpf_map_update_elem(lb->fds[LB_MAP_REVNAT], &rn, &rv, BPF_ANY);
			r = r < 0 ? -errno : 0;
			lb->last_writes++;
		}
		if (r < 0) {
			free(s);
			return err_set(e, r, 500, "InternalError", "writing reverse NAT: %s",
				       strerror(-r));
		}
		if (!tsearch(s, &lb->svcs, svc_cmp)) {
			free(s);
			return -ENOMEM;
		}
		if (lb->batching) {
			s->pending = true;
			lb->pending[lb->npending++] = s;
		}
		revnat_mark(lb, rn, true);
		lb->nsvc++;
	}
	lb->next_id += (uint32_t)nnew;

	/* backend entries: new ones, and flag changes of kept ones, before any slot names them */
	for (i = 0; i < n; i++) {
		struct lb_member *m = svc_member(s, want[i].id);

		if (m && !memcmp(&m->be, &want[i].be, sizeof(m->be)))
			continue;
		if (s->pending) {
			r = lb_batch_add(lb, LB_BATCH_BACKEND, &want[i].id, &want[i].be);
			if (r < 0)
				return reload_after_failure(lb, r, e, "queueing backend");
		} else {
			if (bpf_map_update_elem(lb->fds[LB_MAP_BACKEND], &want[i].id, &want[i].be,
						BPF_ANY) < 0)
				return reload_after_failure(lb, -errno, e, "writing backend");
			lb->last_writes++;
		}
		if (!m) {
			lb->nbackends++;
			r = rev_get(lb, s, &want[i].be);
			if (r < 0)
				return reload_after_failure(lb, r, e, "writing reverse map");
		}
	}

	r = run_ops(lb, s, rops, nrops, 0, LB_SLOT_SET, want, n);
	if (r == 0)
		r = run_ops(lb, s, tops, ntops, SHOAL_SLOT_TERM, LB_SLOT_SET, want, n);
	if (r < 0)
		return reload_after_failure(lb, r, e, "writing slots");
	v0 = s->val;
	v0.backend_id = 0;
	v0.count = (uint16_t)nwr;
	v0.term_count = (uint16_t)nwt;
	v0.flags = fe->flags & (uint8_t)~SHOAL_SVC_TBL;
	v0.affinity_timeout = (fe->flags & SHOAL_SVC_AFFINITY)
				      ? (fe->affinity_timeout ? fe->affinity_timeout : SHOAL_AFFINITY_DEF)
				      : 0;
	/* a bigger service's list goes to a fresh region of shoal_be_tbl before slot 0 names it */
	r = svc_list(lb, s, &v0, nready, nterm, want, n, &nbe);
	if (r < 0)
		return reload_after_failure(lb, r, e, "writing the backend table");
	if (created || memcmp(&v0, &s->val, sizeof(v0))) {
		if (s->pending) {
			r = lb_batch_add(lb, LB_BATCH_SLOT0, &s->key, &v0);
			if (r < 0)
				return reload_after_failure(lb, r, e, "queueing service");
		} else {
			if (bpf_map_update_elem(lb->fds[LB_MAP_SVC], &s->key, &v0, BPF_ANY) < 0)
				return reload_after_failure(lb, -errno, e, "writing service");
			lb->last_writes++;
		}
		if (created)
			lb->svc_entries++;
	}
	svc_tbl_commit(lb, s, &v0, TAKE_PTR(nbe));
	s->val = v0;
	r = run_ops(lb, s, rops, nrops, 0, LB_SLOT_DEL, want, n);
	if (r == 0)
		r = run_ops(lb, s, tops, ntops, SHOAL_SLOT_TERM, LB_SLOT_DEL, want, n);
	if (r < 0)
		return reload_after_failure(lb, r, e, "deleting slots");
	lb->svc_entries = lb->svc_entries - old_ready - old_term + nwr + nwt;

	/* nothing names the removed backends any more */
	for (i = 0; i < nremoved; i++) {
		bpf_map_delete_elem(lb->fds[LB_MAP_BACKEND], &removed[i].id);
		lb->last_writes++;
		lb->nbackends--;
		rev_put(lb, s, &removed[i].be);
		if (fe->proto == IPPROTO_UDP)
			udp_gone[i] = removed[i].be;
	}

	free(s->ready);
	free(s->term);
	free(s->members);
	s->ready = TAKE_PTR(nready);
	s->term = TAKE_PTR(nterm);
	s->members = TAKE_PTR(want);
	s->nmembers = n;

	if (fe->proto == IPPROTO_UDP && nremoved) {
		r = lb_udp_destroy(lb, udp_gone, nremoved);
		lb->last_udp_destroyed = r > 0 ? (uint32_t)r : 0;
	}
	return 0;
}

int lb_service_delete(struct lb *lb, const struct lb_frontend *fe, struct err *e)
{
	struct lb_svc *s = svc_find(lb, fe->vip, fe->port, fe->proto);
	_cleanup_free_ struct shoal_backend *gone = NULL;
	uint16_t rn;

	if (s && s->pending) {
		int r = lb_batch_commit(lb, e);

		if (r < 0)
			return r;
		s = svc_find(lb, fe->vip, fe->port, fe->proto);
	}
	lb->last_writes = 0;
	lb->last_udp_destroyed = 0;
	if (!s)
		return err_set(e, ENOENT, 404, "NotFound", "no such service frontend");
	gone = calloc(s->nmembers + 1, sizeof(*gone));
	if (!gone)
		return -ENOMEM;
	/* slot 0 first: from here on connect() goes to the VIP untranslated */
	if (bpf_map_delete_elem(lb->fds[LB_MAP_SVC], &s->key) < 0 && errno != ENOENT)
		return reload_after_failure(lb, -errno, e, "deleting service");
	lb->last_writes++;
	if (s->tbl_be)
		tbl_release(lb, s->val.backend_id, tbl_class(s->tbl_n), lb_now_ns());
	for (size_t i = 0; i < s->val.count; i++)
		del_slot(lb, s, (uint16_t)(i + 1));
	for (size_t i = 0; i < s->val.term_count; i++)
		del_slot(lb, s, (uint16_t)(SHOAL_SLOT_TERM + i + 1));
	for (size_t i = 0; i < s->nmembers; i++) {
		bpf_map_delete_elem(lb->fds[LB_MAP_BACKEND], &s->members[i].id);
		lb->last_writes++;
		gone[i] = s->members[i].be;
		rev_put(lb, s, &s->members[i].be);
	}
	rn = s->val.rev_nat;
	bpf_map_delete_elem(lb->fds[LB_MAP_REVNAT], &rn);
	lb->last_writes++;
	revnat_mark(lb, rn, false);
	lb->svc_entries -= 1 + s->val.count + s->val.term_count;
	lb->nbackends -= (uint32_t)s->nmembers;
	lb->nsvc--;
	tdelete(s, &lb->svcs, svc_cmp);
	if (fe->proto == IPPROTO_UDP) {
		int r = lb_udp_destroy(lb, gone, s->nmembers);

		lb->last_udp_destroyed = r > 0 ? (uint32_t)r : 0;
	}
	svc_free(s);
	return 0;
}

/* --- walking services (twalk_r has a context pointer) --- */

static void collect_cb(const void *node, VISIT which, void *data)
{
	struct walk_ctx *w = data;

	if (which != postorder && which != leaf)
		return;
	if (w->n == w->cap) {
		struct lb_svc **t = realloc(w->v, (w->cap = w->cap ? w->cap * 2 : 64) * sizeof(*t));

		if (!t)
			return;
		w->v = t;
	}
	w->v[w->n++] = *(struct lb_svc *const *)node;
}

static void gc_collect_cb(const void *node, VISIT which, void *data)
{
	struct id_set *ids = data;
	const struct lb_svc *s = *(struct lb_svc *const *)node;

	if (which != postorder && which != leaf)
		return;
	for (size_t i = 0; i < s->nmembers; i++) {
		if (ids->n == ids->cap) {
			uint32_t *t = realloc(ids->v, (ids->cap = ids->cap ? ids->cap * 2 : 256) *
							      sizeof(*t));

			if (!t)
				return;
			ids->v = t;
		}
		ids->v[ids->n++] = s->members[i].id;
	}
}

int lb_backend_set_flags(struct lb *lb, uint32_t ip, uint16_t port, uint8_t proto, uint8_t flags,
			 struct err *e)
{
	struct walk_ctx w = {};
	int changed = 0, r = 0;

	twalk_r(lb->svcs, collect_cb, &w);
	for (size_t i = 0; i < w.n && r >= 0; i++) {
		struct lb_svc *s = w.v[i];
		_cleanup_free_ struct lb_backend_addr *bes = NULL;
		struct lb_frontend fe = { .vip = s->key.vip, .port = s->key.port,
					  .proto = s->key.proto, .flags = s->val.flags,
					  .affinity_timeout = s->val.affinity_timeout };
		bool hit = false;
		size_t k = 0;

		if (s->key.proto != proto)
			continue;
		bes = calloc(s->nmembers + 1, sizeof(*bes));
		if (!bes) {
			r = -ENOMEM;
			break;
		}
		/* keep slot order: ready ones in slot order, then terminating ones */
		for (int t = 0; t < 2; t++) {
			uint32_t *ids = t ? s->term : s->ready;
			size_t cnt = t ? s->val.term_count : s->val.count;

			for (size_t j = 0; j < cnt; j++) {
				struct lb_member *m = svc_member(s, ids[j]);

				if (!m)
					continue;
				bes[k] = (struct lb_backend_addr){ m->be.ip, m->be.port, m->be.flags };
				if (m->be.ip == ip && m->be.port == port && m->be.flags != flags) {
					bes[k].flags = flags;
					hit = true;
				}
				k++;
			}
		}
		if (!hit)
			continue;
		r = lb_service_upsert(lb, &fe, bes, k, e);
		changed++;
	}
	free(w.v);
	return r < 0 ? r : changed;
}

/* --- inspection --- */

int lb_service_get(struct lb *lb, const struct lb_frontend *fe, uint16_t *ret_rev_nat,
		   struct lb_member_info *ret, size_t max)
{
	struct lb_svc *s = svc_find(lb, fe->vip, fe->port, fe->proto);
	size_t k = 0;

	if (!s)
		return -ENOENT;
	if (ret_rev_nat)
		*ret_rev_nat = s->val.rev_nat;
	for (int t = 0; t < 2; t++) {
		uint32_t *ids = t ? s->term : s->ready;
		size_t cnt = t ? s->val.term_count : s->val.count;

		for (size_t j = 0; j < cnt; j++) {
			struct lb_member *m = svc_member(s, ids[j]);

			if (!m)
				continue;
			if (k < max)
				ret[k] = (struct lb_member_info){ .id = m->id, .be = m->be };
			k++;
		}
	}
	return (int)k;
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : "?";
}

static cJSON *backend_json(const struct lb_member *m, uint16_t slot)
{
	char ip[INET_ADDRSTRLEN];
	cJSON *b = cJSON_CreateObject();

	inet_ntop(AF_INET, &m->be.ip, ip, sizeof(ip));
	cJSON_AddNumberToObject(b, "slot", slot);
	cJSON_AddNumberToObject(b, "id", m->id);
	cJSON_AddStringToObject(b, "ip", ip);
	cJSON_AddNumberToObject(b, "port", ntohs(m->be.port));
	cJSON_AddStringToObject(b, "state",
				(m->be.flags & SHOAL_BE_TERMINATING) ? "terminating" : "ready");
	cJSON_AddBoolToObject(b, "local", m->be.flags & SHOAL_BE_LOCAL);
	return b;
}

int lb_dump(struct lb *lb, cJSON **ret)
{
	_cleanup_json_ cJSON *arr = cJSON_CreateArray();
	struct walk_ctx w = {};

	if (!arr)
		return -ENOMEM;
	twalk_r(lb->svcs, collect_cb, &w);
	for (size_t i = 0; i < w.n; i++) {
		struct lb_svc *s = w.v[i];
		char ip[INET_ADDRSTRLEN], fe[64];
		cJSON *o = cJSON_CreateObject(), *bs = cJSON_CreateArray(), *fl = cJSON_CreateArray();

		inet_ntop(AF_INET, &s->key.vip, ip, sizeof(ip));
		snprintf(fe, sizeof(fe), "%s:%u/%s", ip, ntohs(s->key.port), proto_name(s->key.proto));
		cJSON_AddStringToObject(o, "frontend", fe);
		cJSON_AddNumberToObject(o, "rev_nat", s->val.rev_nat);
		if (s->val.flags & SHOAL_SVC_AFFINITY)
			cJSON_AddItemToArray(fl, cJSON_CreateString("affinity"));
		if (s->val.flags & SHOAL_SVC_LOCAL)
			cJSON_AddItemToArray(fl, cJSON_CreateString("local"));
		if (s->val.flags & SHOAL_SVC_NODEPORT)
			cJSON_AddItemToArray(fl, cJSON_CreateString("nodeport"));
		if (s->val.flags & SHOAL_SVC_EXTERNAL)
			cJSON_AddItemToArray(fl, cJSON_CreateString("external"));
		cJSON_AddItemToObject(o, "flags", fl);
		cJSON_AddNumberToObject(o, "affinity_timeout", s->val.affinity_timeout);
		cJSON_AddNumberToObject(o, "ready", s->val.count);
		cJSON_AddNumberToObject(o, "terminating", s->val.term_count);
		/* where connect4 finds the backends it picks from */
		cJSON_AddStringToObject(
		    o, "pick",
		    (s->val.count ? s->val.count : s->val.term_count) <= SHOAL_SVC_INLINE ? "slot0"
		    : (s->val.flags & SHOAL_SVC_TBL)					  ? "table"
						     : "slots");
		if (s->val.flags & SHOAL_SVC_TBL)
			cJSON_AddNumberToObject(o, "table", s->val.backend_id);
		for (size_t j = 0; j < s->val.count; j++) {
			struct lb_member *m = svc_member(s, s->ready[j]);

			if (m)
				cJSON_AddItemToArray(bs, backend_json(m, (uint16_t)(j + 1)));
		}
		for (size_t j = 0; j < s->val.term_count; j++) {
			struct lb_member *m = svc_member(s, s->term[j]);

			if (m)
				cJSON_AddItemToArray(bs, backend_json(m, (uint16_t)(SHOAL_SLOT_TERM + j + 1)));
		}
		cJSON_AddItemToObject(o, "backends", bs);
		cJSON_AddItemToArray(arr, o);
	}
	free(w.v);
	*ret = TAKE_PTR(arr);
	return 0;
}

void lb_stats_get(struct lb *lb, struct lb_stats *ret)
{
	*ret = (struct lb_stats){
		.services = lb->nsvc,
		.backends = lb->nbackends,
		.svc_entries = lb->svc_entries,
		.svc_max = lb->max[LB_MAP_SVC],
		.backend_entries = lb->nbackends,
		.backend_max = lb->max[LB_MAP_BACKEND],
		.last_udp_destroyed = lb->last_udp_destroyed,
		.last_writes = lb->last_writes,
		.maps_recreated = lb->recreated != 0,
	};
}

/* --- parsing for tools --- */

static int parse_addr_port(const char *s, uint32_t *ip, uint16_t *port, const char **rest)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strchr(s, ':');
	char *end;
	unsigned long p;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (inet_pton(AF_INET, host, ip) != 1)
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || p == 0 || p > 65535)
		return -EINVAL;
	*port = htons((uint16_t)p);
	*rest = end;
	return 0;
}

int lb_frontend_parse(const char *s, struct lb_frontend *ret)
{
	const char *rest;
	int r;

	*ret = (struct lb_frontend){ .proto = IPPROTO_TCP };
	r = parse_addr_port(s, &ret->vip, &ret->port, &rest);
	if (r < 0)
		return r;
	if (!*rest || streq(rest, "/tcp"))
		return 0;
	if (streq(rest, "/udp")) {
		ret->proto = IPPROTO_UDP;
		return 0;
	}
	return -EINVAL;
}

int lb_backend_parse(const char *s, struct lb_backend_addr *ret)
{
	const char *rest;
	int r;

	*ret = (struct lb_backend_addr){};
	r = parse_addr_port(s, &ret->ip, &ret->port, &rest);
	if (r < 0)
		return r;
	while (*rest == ',') {
		rest++;
		if (!strncmp(rest, "terminating", 11)) {
			ret->flags |= SHOAL_BE_TERMINATING;
			rest += 11;
		} else if (!strncmp(rest, "local", 5)) {
			ret->flags |= SHOAL_BE_LOCAL;
			rest += 5;
		} else {
			return -EINVAL;
		}
	}
	return *rest ? -EINVAL : 0;
}
