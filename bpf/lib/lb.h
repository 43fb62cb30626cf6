/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only */
/*
 * Service lookup and backend selection shared by the socket-LB and tc programs: find a frontend,
 * honour ClientIP affinity, pick a random ready backend (terminating ones only when no ready
 * one is left). Expects lib/maps.h and the rodata `shoal_cfg` of the including program.
 */
#ifndef SHOAL_BPF_LIB_LB_H
#define SHOAL_BPF_LIB_LB_H

#include "bpf/lib/maps.h"

#define NSEC_PER_SEC 1000000000ULL

static __always_inline struct shoal_svc_val *lb4_lookup_service(__be32 vip, __be16 port, __u8 proto)
{
	struct shoal_svc_key key = {.vip = vip, .port = port, .proto = proto};

	return bpf_map_lookup_elem(&shoal_svc, &key);
}

/* [0, n) from a 32-bit random or hash value by multiply and shift: no division, as uniform as
 * `x % n` (n < 2^16 here) and the same on every node for the same x. */
static __always_inline __u32 lb_reduce(__u32 x, __u32 n)
{
	return (__u32)(((__u64)x * n) >> 32);
}

/*
 * A random number without a helper call. bpf_get_prandom_u32() cost 40-50 ns a call on the
 * 2-core CI VM (docs/benchmarks.md, bench_sockcall: connect4 of a 3-backend service 213 ns with
 * it, 164 ns with a constant index, the floor 147 ns): more than the rest of the program above
 * the floor. Instead, a xorshift32 state per CPU in .bss (a cache line each, written only by its
 * CPU; bpf_get_smp_processor_id() is inlined by the verifier), seeded from
 * bpf_get_prandom_u32() on a CPU's first use. CPUs past LB_RND_CPUS share states, which only
 * mixes two sequences. Uniform enough for picking a backend: the multiply-shift of lb_reduce()
 * takes the high bits.
 */
#define LB_RND_CPUS 256

struct lb_rnd {
	__u32 x;
	__u32 pad[15];
};

static struct lb_rnd lb_rnd[LB_RND_CPUS];

static __always_inline __u32 lb_rand(void)
{
	struct lb_rnd *r = &lb_rnd[bpf_get_smp_processor_id() & (LB_RND_CPUS - 1)];
	__u32 x = r->x;

	if (!x)
		x = bpf_get_prandom_u32() | 1;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	r->x = x;
	return x;
}

/* A random slot from the ready ones, else from the terminating ones; NULL if none. */
static __always_inline struct shoal_svc_val *lb4_pick_slot(__be32 vip, __be16 port, __u8 proto,
							   const struct shoal_svc_val *svc)
{
	struct shoal_svc_key key = {.vip = vip, .port = port, .proto = proto};
	__u16 n = svc->count, base = 0;

	if (!n) {
		n = svc->term_count;
		base = SHOAL_SLOT_TERM;
	}
	if (!n)
		return NULL;
	key.slot = base + (n == 1 ? 0 : lb_reduce(lb_rand(), n)) + 1;
	return bpf_map_lookup_elem(&shoal_svc, &key);
}

/* A random backend id from the ready slots, else from the terminating ones; 0 if none. */
static __always_inline __u32 lb4_pick_backend(__be32 vip, __be16 port, __u8 proto,
					      const struct shoal_svc_val *svc)
{
	struct shoal_svc_val *slot = lb4_pick_slot(vip, port, proto, svc);

	return slot ? slot->backend_id : 0;
}

/* The backend a client is pinned to, if the pin is fresh and the backend still usable. */
static __always_inline __u32 lb4_affinity_get(const struct shoal_svc_val *svc, __u64 client,
					      __u8 kind, __u64 now)
{
	struct shoal_aff_key key = {.client = client, .rev_nat = svc->rev_nat, .kind = kind};
	struct shoal_backend *be;
	struct shoal_aff_val *val;

	val = bpf_map_lookup_elem(&shoal_affinity, &key);
	if (!val)
		return 0;
	if (now - val->last_used_ns > (__u64)svc->affinity_timeout * NSEC_PER_SEC)
		return 0;
	be = bpf_map_lookup_elem(&shoal_backend, &val->backend_id);
	if (!be)
		return 0;
	/* a draining backend keeps its clients only while nothing ready exists */
	if ((be->flags & SHOAL_BE_TERMINATING) && svc->count)
		return 0;
	return val->backend_id;
}

static __always_inline void lb4_affinity_put(const struct shoal_svc_val *svc, __u64 client,
					     __u8 kind, __u64 now, __u32 backend_id)
{
	struct shoal_aff_key key = {.client = client, .rev_nat = svc->rev_nat, .kind = kind};
	struct shoal_aff_val val = {.last_used_ns = now, .backend_id = backend_id};

	bpf_map_update_elem(&shoal_affinity, &key, &val, BPF_ANY);
}

/*
 * Choose the backend for one new flow of service `svc` (already looked up). Returns the
 * backend entry or NULL when the service has no usable backend.
 */
static __always_inline struct shoal_backend *lb4_select(__be32 vip, __be16 port, __u8 proto,
							const struct shoal_svc_val *svc,
							__u64 client, __u8 kind)
{
	struct shoal_backend *be;
	__u64 now = 0;
	__u32 id = 0;

	if (svc->flags & SHOAL_SVC_AFFINITY) {
		now = bpf_ktime_get_ns();
		id = lb4_affinity_get(svc, client, kind, now);
	}
	if (!id)
		id = lb4_pick_backend(vip, port, proto, svc);
	if (!id)
		return NULL;
	be = bpf_map_lookup_elem(&shoal_backend, &id);
	if (be && (svc->flags & SHOAL_SVC_AFFINITY))
		lb4_affinity_put(svc, client, kind, now, id);
	return be;
}

#endif
