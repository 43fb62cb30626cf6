/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Prometheus histogram of durations, kept in integer units of 10^-digits s (digits 3: ms,
 * 6: µs) so that its sum is exact. Buckets are stored cumulative: an observation counts in
 * every bucket whose bound it does not exceed. Not thread-safe; no allocation but the text.
 */
#ifndef SHOAL_LIB_HISTO_H
#define SHOAL_LIB_HISTO_H

#include <stddef.h>
#include <stdint.h>

#define HISTO_MAX_BOUNDS 16

struct histo {
	const uint64_t *bounds; /* upper bounds in units, ascending, without +Inf */
	size_t nbounds;		/* at most HISTO_MAX_BOUNDS */
	unsigned int digits;	/* a unit is 10^-digits s; also the sum's decimals */
	uint64_t buckets[HISTO_MAX_BOUNDS];
	uint64_t count, sum;
};

/* An empty histogram over a static array of bounds, e.g. HISTO_INIT(bounds_ms, 3). */
#define HISTO_INIT(b, d)                                                                           \
	((struct histo){.bounds = (b), .nbounds = sizeof(b) / sizeof((b)[0]), .digits = (d)})

/* Record one value v (in units). */
void histo_observe(struct histo *h, uint64_t v);

/* The histogram as exposition text: "# HELP name help", "# TYPE name histogram", a
 * name_bucket line per bound (le in seconds, %g), the +Inf bucket, name_sum (seconds, with
 * digits decimals) and name_count. *text is malloc'd; -ENOMEM. */
int histo_format(const struct histo *h, const char *name, const char *help, char **text);

#endif
