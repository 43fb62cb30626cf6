/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only */
/*
 * The service datapath's maps, BTF-defined with the ABI's real key/value types and pinned by name
 * (LIBBPF_PIN_BY_NAME) under the loader's pin root, so every object that includes this header
 * shares one instance of each map and the maps outlive the daemon. Sizes here are defaults: the
 * loader sets max_entries from its options before load.
 */
#ifndef SHOAL_BPF_LIB_MAPS_H
#define SHOAL_BPF_LIB_MAPS_H

#include "bpf/shoal_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct shoal_svc_key);
	__type(value, struct shoal_svc_val);
	__uint(max_entries, SHOAL_DEF_SVC_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct shoal_backend);
	__uint(max_entries, SHOAL_DEF_BACKEND_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_backend SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u16);
	__type(value, struct shoal_revnat);
	__uint(max_entries, SHOAL_DEF_REVNAT_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct shoal_sk_nat_key);
	__type(value, struct shoal_sk_nat_val);
	__uint(max_entries, SHOAL_DEF_SK_NAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_sk_nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct shoal_aff_key);
	__type(value, struct shoal_aff_val);
	__uint(max_entries, SHOAL_DEF_AFFINITY_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct shoal_destroy_key);
	__type(value, __u8);
	__uint(max_entries, SHOAL_DEF_DESTROY_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shoal_destroy SEC(".maps");

#endif
