/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only */
/*
 * Maps of the tc NodePort datapath only: conntrack, Maglev tables, counters. Pinned by name
 * beside the service maps (lib/maps.h); the loader sizes them from its options before load.
 */
#ifndef SHOAL_BPF_LIB_NP_MAPS_H
#define SHOAL_BPF_LIB_NP_MAPS_H

#include "bpf/shoal_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct shoal_ct_key);
	__type(value, struct shoal_ct_val);
	__uint(max_entries, SHOAL_DEF_CT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_ct SEC(".maps");

/* One Maglev table per frontend: reverse-NAT index -> array of maglev_m backend ids. */
struct shoal_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, SHOAL_DEF_MAGLEV_M);
	/* the table size may change with the config while the outer map stays pinned */
	__uint(map_flags, BPF_F_INNER_MAP);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u16);
	__uint(max_entries, SHOAL_DEF_MAGLEV_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct shoal_maglev_inner);
} shoal_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SHOAL_NP_STAT_N);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_np_stats SEC(".maps");

#endif
