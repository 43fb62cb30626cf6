/* SPDX-License-Identifier: Apache-2.0 */
/* shoal-sim's parts: the controller scenarios (sim.c), the gossip scenarios (gossip.c) and the
 * replication scenarios (repl.c). */
#ifndef SHOAL_TESTS_SIM_H
#define SHOAL_TESTS_SIM_H

#include <stdbool.h>
#include <stdint.h>

/* Gossip scenarios at `nodes` members (100 or 1000); returns the number of failed checks. */
int sim_gossip_run(uint64_t seed, int nodes, bool quick);
/* `make bench-gossip`: memberlist's LAN defaults vs Shoal's (or one: "memberlist", "shoal"). */
/* crash detection at one size (and join convergence): p50/p90/p99 over `trials` crashes */
int sim_gossip_crash(uint64_t seed, int nodes, int trials, int idle_secs, const char *which);
int sim_gossip_bench(uint64_t seed, bool quick, const char *which); /* NULL: both */

/* Replication scenarios at `nodes` (100 or 1000); returns the number of failed checks. */
int sim_repl_run(uint64_t seed, int nodes, bool quick);
/* `make bench-replication`'s simulator half: write -> visible, anti-entropy bytes. */
int sim_repl_bench(uint64_t seed, bool quick);

#endif
