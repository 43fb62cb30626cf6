// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "bpf/maglev.h"
#include "lib/macro.h"

static bool is_prime(size_t m)
{
	if (m < 2)
		return false;
	for (size_t d = 2; d * d <= m; d++)
		if (m % d == 0)
			return false;
	return true;
}

/* SipHash-2-4 (libsodium's shorthash) of the backend's wire identity, keyed by the seed. */
static uint64_t be_hash(const struct shoal_backend *b, uint32_t seed, uint8_t which)
{
	unsigned char key[crypto_shorthash_KEYBYTES], in[8], out[crypto_shorthash_BYTES];
	uint64_t h;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(seed >> (8 * (i % 4)));
	memcpy(in, &b->ip, 4);
	memcpy(in + 4, &b->port, 2);
	in[6] = b->proto;
	in[7] = which;
	crypto_shorthash(out, in, sizeof(in), key);
	memcpy(&h, out, sizeof(h));
	return h;
}

struct ranked {
	struct shoal_backend be;
	size_t idx;
};

static int ranked_cmp(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	return memcmp(&x->be, &y->be, 7); /* ip, port, proto: flags do not change identity */
}

int lb_maglev_build(const struct shoal_backend *bes, size_t n, uint32_t seed, uint32_t *table,
		    size_t m)
{
	_cleanup_free_ struct ranked *r = NULL;
	_cleanup_free_ uint64_t *offset = NULL, *skip = NULL, *next = NULL;
	size_t filled = 0;

	if (!n || n >= m || m > UINT32_MAX || !is_prime(m))
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	r = calloc(n, sizeof(*r));
	offset = calloc(n, sizeof(*offset));
	skip = calloc(n, sizeof(*skip));
	next = calloc(n, sizeof(*next));
	if (!r || !offset || !skip || !next)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		r[i] = (struct ranked){ .be = bes[i], .idx = i };
	qsort(r, n, sizeof(*r), ranked_cmp);
	for (size_t i = 0; i < n; i++) {
		offset[i] = be_hash(&r[i].be, seed, 0) % m;
		skip[i] = be_hash(&r[i].be, seed, 1) % (m - 1) + 1;
	}
	for (size_t j = 0; j < m; j++)
		table[j] = UINT32_MAX;
	/* each backend in turn takes the next free entry of its permutation */
	while (filled < m) {
		for (size_t i = 0; i < n && filled < m; i++) {
			uint64_t c = (offset[i] + next[i] * skip[i]) % m;

			while (table[c] != UINT32_MAX) {
				next[i]++;
				c = (offset[i] + next[i] * skip[i]) % m;
			}
			table[c] = (uint32_t)r[i].idx;
			next[i]++;
			filled++;
		}
	}
	return 0;
}
