/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure planning for service slot updates: given the backend ids now in a slot range and the ids
 * wanted there, produce the fewest map writes that get there without a reader ever seeing an
 * empty or dangling slot. No syscalls: the loader (lb.c) executes the plan.
 *
 * Write order the caller must follow: every LB_SLOT_SET op, then the service's slot-0 entry with
 * the new count, then every LB_SLOT_DEL op. A reader that still holds the old count then only
 * ever reads slots that hold a valid (possibly duplicated) id.
 */
#ifndef SHOAL_BPF_LB_PLAN_H
#define SHOAL_BPF_LB_PLAN_H

#include <stddef.h>
#include <stdint.h>

enum lb_slot_op_kind {
	LB_SLOT_SET = 1,
	LB_SLOT_DEL = 2,
};

struct lb_slot_op {
	enum lb_slot_op_kind kind;
	uint16_t slot; /* 1-based position within the range (caller adds the range base) */
	uint32_t id;   /* LB_SLOT_SET: the backend id to store */
};

/*
 * cur[0..ncur): ids in slots 1..ncur. want[0..nwant): the ids wanted (a set; order is the
 * preference for filling new slots). Both must be free of duplicates.
 * ret_slots: room for nwant ids; receives the final layout (slot i+1 holds ret_slots[i]).
 * ops: room for ncur + nwant ops; *ret_nops receives the count, SETs first then DELs.
 * Returns 0, or -EINVAL on duplicates / more than UINT16_MAX slots, -ENOMEM.
 */
int lb_slots_plan(const uint32_t *cur, size_t ncur, const uint32_t *want, size_t nwant,
		  uint32_t *ret_slots, struct lb_slot_op *ops, size_t *ret_nops);

#endif
