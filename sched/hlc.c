// SPDX-License-Identifier: Apache-2.0
/*
 * Hybrid logical clock. The packed form (48 bits ms, 16 bits logical) orders like the
 * (physical, logical) pair, so "max of what we know, plus one" is the whole algorithm: adding
 * one bumps the logical counter and carries into the physical part when the counter overflows,
 * which keeps timestamps unique and monotonic even if the wall clock jumps back.
 */
#include <string.h>

#include "sched/hlc.h"

#define HLC_PHYS_MASK ((UINT64_C(1) << 48) - 1)

uint64_t hlc_now(struct hlc *c, uint64_t wall_ms)
{
	uint64_t wall = HLC_MAKE(wall_ms & HLC_PHYS_MASK, 0);

	c->last = wall > c->last ? wall : c->last + 1;
	return c->last;
}

uint64_t hlc_update(struct hlc *c, uint64_t remote, uint64_t wall_ms)
{
	uint64_t wall = HLC_MAKE(wall_ms & HLC_PHYS_MASK, 0);
	uint64_t known = remote > c->last ? remote : c->last;

	c->last = wall > known ? wall : known + 1;
	return c->last;
}

int reg_version_cmp(uint64_t a_hlc, const char *a_node, uint64_t b_hlc, const char *b_node)
{
	int r;

	if (a_hlc != b_hlc)
		return a_hlc < b_hlc ? -1 : 1;
	r = strcmp(a_node ? a_node : "", b_node ? b_node : "");
	return r < 0 ? -1 : r > 0;
}
