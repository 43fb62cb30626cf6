// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/lb_plan.h"
#include "lib/macro.h"

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorted copy into buf (room for n) when it is big enough, else into fresh memory. */
static uint32_t *sorted_copy(const uint32_t *v, size_t n, uint32_t *buf, size_t nbuf,
			     uint32_t **ret_heap)
{
	uint32_t *c = n <= nbuf ? buf : (*ret_heap = malloc(n * sizeof(*c)));

	if (!c)
		return NULL;
	if (n)
		memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_u32);
	return c;
}

static bool has_dup(const uint32_t *sorted, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (sorted[i] == sorted[i - 1])
			return true;
	return false;
}

static bool contains(const uint32_t *sorted, size_t n, uint32_t id)
{
	return n && bsearch(&id, sorted, n, sizeof(id), cmp_u32);
}

int lb_slots_plan(const uint32_t *cur, size_t ncur, const uint32_t *want, size_t nwant,
		  uint32_t *ret_slots, struct lb_slot_op *ops, size_t *ret_nops)
{
	/* services have a handful of backends: plan on the stack, the heap only for big ones
	 * (this runs once per frontend when thousands of services are programmed at start) */
	enum { SMALL = 32 };
	uint32_t scur_buf[SMALL], swant_buf[SMALL], layout_buf[SMALL];
	bool keep_buf[SMALL];
	_cleanup_free_ uint32_t *scur_heap = NULL, *swant_heap = NULL, *layout_heap = NULL;
	_cleanup_free_ bool *keep_heap = NULL;
	size_t nops = 0, next_add = 0, tail, nlayout = ncur > nwant ? ncur : nwant;
	uint32_t *scur, *swant, *layout;
	bool *keep;

	if (ncur > UINT16_MAX || nwant > UINT16_MAX)
		return -EINVAL;
	scur = sorted_copy(cur, ncur, scur_buf, SMALL, &scur_heap);
	swant = sorted_copy(want, nwant, swant_buf, SMALL, &swant_heap);
	keep = ncur <= SMALL ? keep_buf : (keep_heap = malloc(ncur * sizeof(*keep)));
	layout = nlayout <= SMALL ? layout_buf : (layout_heap = malloc(nlayout * sizeof(*layout)));
	if (!scur || !swant || !keep || !layout)
		return -ENOMEM;
	if (has_dup(scur, ncur) || has_dup(swant, nwant))
		return -EINVAL;

	for (size_t i = 0; i < ncur; i++) {
		keep[i] = contains(swant, nwant, cur[i]);
		layout[i] = cur[i];
	}

	/* next id of `want` that is not yet placed */
#define NEXT_ADDED()                                                                               \
	({                                                                                         \
		while (next_add < nwant && contains(scur, ncur, want[next_add]))                   \
			next_add++;                                                                \
		next_add < nwant ? (int64_t)want[next_add++] : (int64_t)-1;                        \
	})

	/* 1. fill holes left by removed ids with new ids, in place */
	for (size_t i = 0; i < ncur; i++) {
		int64_t id;

		if (keep[i])
			continue;
		id = NEXT_ADDED();
		if (id < 0)
			break;
		layout[i] = (uint32_t)id;
		keep[i] = true;
		ops[nops++] = (struct lb_slot_op){ LB_SLOT_SET, (uint16_t)(i + 1), (uint32_t)id };
	}
	/* 2. more new ids than holes: append */
	for (size_t i = ncur;; i++) {
		int64_t id = NEXT_ADDED();

		if (id < 0)
			break;
		layout[i] = (uint32_t)id;
		ops[nops++] = (struct lb_slot_op){ LB_SLOT_SET, (uint16_t)(i + 1), (uint32_t)id };
	}
#undef NEXT_ADDED

	/* 3. more holes than new ids: move kept ids from beyond the new end into the holes */
	tail = ncur;
	for (size_t i = 0; i < nwant && i < ncur; i++) {
		if (keep[i])
			continue;
		while (tail > nwant && !keep[tail - 1])
			tail--;
		if (tail <= nwant || tail - 1 <= i)
			break;
		layout[i] = layout[tail - 1];
		keep[i] = true;
		keep[tail - 1] = false;
		ops[nops++] = (struct lb_slot_op){ LB_SLOT_SET, (uint16_t)(i + 1), layout[i] };
		tail--;
	}
	/* 4. slots past the new end go, after the caller has shrunk the count */
	for (size_t i = nwant; i < ncur; i++)
		ops[nops++] = (struct lb_slot_op){ LB_SLOT_DEL, (uint16_t)(i + 1), 0 };

	memcpy(ret_slots, layout, nwant * sizeof(*layout));
	*ret_nops = nops;
	return 0;
}
