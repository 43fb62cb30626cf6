/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hybrid logical clock: 48 bits of wall-clock milliseconds, 16 bits of logical counter.
 * Register versions compare by (hlc, node) so every replica picks the same last writer.
 * Pure logic: the wall clock comes in as a parameter.
 */
#ifndef SHOAL_SCHED_HLC_H
#define SHOAL_SCHED_HLC_H

#include <stdint.h>

struct hlc {
	uint64_t last; /* last timestamp issued or observed */
};

#define HLC_PHYS(t) ((t) >> 16)
#define HLC_LOGICAL(t) ((t)&0xffff)
#define HLC_MAKE(ms, l) (((uint64_t)(ms) << 16) | ((l)&0xffff))

/* A new timestamp for a local event, given the wall clock in ms. */
uint64_t hlc_now(struct hlc *c, uint64_t wall_ms);
/* Merge a remote timestamp (on receive); returns the timestamp for the receive event. */
uint64_t hlc_update(struct hlc *c, uint64_t remote, uint64_t wall_ms);

/* A register version: HLC with the writer's node name as tie-break. */
struct reg_version {
	uint64_t hlc;
	const char *node; /* interned / owned by the holder */
};
/* <0, 0, >0 like strcmp: which version wins under last-writer-wins. */
int reg_version_cmp(uint64_t a_hlc, const char *a_node, uint64_t b_hlc, const char *b_node);

#endif
