// SPDX-License-Identifier: Apache-2.0
/* Prometheus histograms of durations. See histo.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/histo.h"

static double unit_s(const struct histo *h)
{
	double u = 1;

	for (unsigned int i = 0; i < h->digits; i++)
		u *= 10;
	return u;
}

void histo_observe(struct histo *h, uint64_t v)
{
	for (size_t i = 0; i < h->nbounds; i++)
		if (v <= h->bounds[i])
			h->buckets[i]++;
	h->count++;
	h->sum += v;
}

int histo_format(const struct histo *h, const char *name, const char *help, char **text)
{
	double u = unit_s(h);
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < h->nbounds; i++)
		fprintf(f, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, (double)h->bounds[i] / u,
			h->buckets[i]);
	fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.*f\n%s_count %" PRIu64 "\n", name,
		h->count, name, (int)h->digits, (double)h->sum / u, name, h->count);
	if (ferror(f) | fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	*text = buf;
	return 0;
}
