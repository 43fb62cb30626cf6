/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maglev lookup tables (Eisenbud et al., NSDI 2016) for the tc datapath: every node that builds
 * the table for the same backend set with the same cluster-wide seed gets the same table, so any
 * node picks the same backend for a flow without talking to the others, and a backend change
 * moves few flows. Pure: no syscalls, no clock.
 */
#ifndef SHOAL_BPF_MAGLEV_H
#define SHOAL_BPF_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

#include "bpf/shoal_abi.h"

#define LB_MAGLEV_M_DEFAULT 16381 /* prime, as Cilium's default */

/*
 * Fill table[0..m) with indexes into bes[0..n). m must be a prime larger than n; n >= 1.
 * The result does not depend on the order of bes[] (backends are ranked by address first).
 * Returns 0, -EINVAL, -ENOMEM.
 */
int lb_maglev_build(const struct shoal_backend *bes, size_t n, uint32_t seed, uint32_t *table,
		    size_t m);

#endif
