// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "sched/claims.h"

int claims_cidr_init(struct claims_cidr *c, const char *cidr, unsigned sub_prefix)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = cidr ? strchr(cidr, '/') : NULL;
	struct in_addr a;
	char *end;
	long prefix;

	if (!slash || (size_t)(slash - cidr) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, cidr, slash - cidr);
	ip[slash - cidr] = 0;
	prefix = strtol(slash + 1, &end, 10);
	if (!slash[1] || *end || prefix < 0 || prefix > (long)sub_prefix || sub_prefix > 30 ||
	    sub_prefix - prefix > 24 || inet_pton(AF_INET, ip, &a) != 1)
		return -EINVAL;
	c->prefix = (unsigned)prefix;
	c->sub_prefix = sub_prefix;
	c->net = prefix ? ntohl(a.s_addr) & ~((1u << (32 - prefix)) - 1) : 0;
	c->count = 1u << (sub_prefix - prefix);
	return 0;
}

int claims_cidr_block(const struct claims_cidr *c, uint32_t block, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];
	struct in_addr a;

	if (block >= c->count)
		return -ERANGE;
	a.s_addr = htonl(c->net + (block << (32 - c->sub_prefix)));
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	if ((size_t)snprintf(buf, len, "%s/%u", ip, c->sub_prefix) >= len)
		return -ENOSPC;
	return 0;
}

int claims_cidr_find(const struct claims_cidr *c, const char *cidr, uint32_t *ret)
{
	struct claims_cidr one;
	uint32_t off;

	if (claims_cidr_init(&one, cidr, c->sub_prefix) < 0 || one.count != 1)
		return -EINVAL;
	/* the text must name the block's own network address, not an address inside it */
	char canon[32];
	off = one.net - c->net;
	if (one.net < c->net || (off >> (32 - c->sub_prefix)) >= c->count)
		return -EINVAL;
	if (claims_cidr_block(c, off >> (32 - c->sub_prefix), canon, sizeof(canon)) < 0 ||
	    strcmp(canon, cidr))
		return -EINVAL;
	*ret = off >> (32 - c->sub_prefix);
	return 0;
}

static int name_build(const char *kind, const char *value, const char *holder, char *buf,
		      size_t len)
{
	size_t o = 0;

	if (!*kind || !*value || (holder && !*holder))
		return -EINVAL;
	for (const char *p = kind; *p; p++) {
		if (o + 1 >= len)
			return -ENAMETOOLONG;
		buf[o++] = *p;
	}
	if (o + 1 >= len)
		return -ENAMETOOLONG;
	buf[o++] = '.';
	for (const char *p = value; *p; p++) {
		char ch = *p;
		if (o + 1 >= len)
			return -ENAMETOOLONG;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		buf[o++] = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ? ch : '-';
	}
	if (o + 1 >= len)
		return -ENAMETOOLONG;
	buf[o++] = '.';
	for (const char *p = holder ? holder : ""; *p; p++) {
		if (o + 1 >= len)
			return -ENAMETOOLONG;
		buf[o++] = *p;
	}
	buf[o] = 0;
	return o > 253 ? -ENAMETOOLONG : 0;
}

int claims_name(const char *kind, const char *value, const char *holder, char *buf, size_t len)
{
	return holder ? name_build(kind, value, holder, buf, len) : -EINVAL;
}

int claims_prefix(const char *kind, const char *value, char *buf, size_t len)
{
	return name_build(kind, value, NULL, buf, len);
}

static bool entry_before(const struct claims_entry *a, const struct claims_entry *b)
{
	if (a->born != b->born)
		return a->born < b->born;
	return strcmp(a->holder, b->holder) < 0;
}

size_t claims_winner(const struct claims_entry *e, size_t n)
{
	size_t best = 0;

	for (size_t i = 1; i < n; i++)
		if (entry_before(&e[i], &e[best]))
			best = i;
	return best;
}

int claims_pick(uint32_t count, uint32_t start, bool (*taken)(uint32_t block, void *ud), void *ud,
		uint32_t *ret)
{
	for (uint32_t i = 0; i < count; i++) {
		uint32_t b = (uint32_t)(((uint64_t)start + i) % count);
		if (!taken(b, ud)) {
			*ret = b;
			return 0;
		}
	}
	return -ENOSPC;
}

uint32_t claims_start(const char *key, uint32_t count)
{
	unsigned char h[8];
	uint64_t v;

	if (!count)
		return 0;
	crypto_generichash(h, sizeof(h), (const unsigned char *)key, strlen(key), NULL, 0);
	memcpy(&v, h, sizeof(v));
	return (uint32_t)(v % count);
}

enum claims_state claims_verify(const struct claims_entry *all, size_t n, const char *self,
				uint64_t synced_ms, uint64_t now_ms, uint64_t settle_ms)
{
	size_t w;

	if (!n)
		return CLAIMS_LOST; /* ours is gone: deleted by someone */
	w = claims_winner(all, n);
	if (strcmp(all[w].holder, self))
		return CLAIMS_LOST;
	if (!synced_ms || now_ms < synced_ms + settle_ms)
		return CLAIMS_PENDING;
	return CLAIMS_SETTLED;
}

static int holder_cmp(const void *pa, const void *pb)
{
	const struct claims_holder *a = pa, *b = pb;
	int c;

	if (a->value != b->value)
		return a->value < b->value ? -1 : 1;
	if (a->born != b->born)
		return a->born < b->born ? -1 : 1;
	c = strcmp(a->uid ? a->uid : "", b->uid ? b->uid : "");
	return c;
}

int claims_duplicates(struct claims_holder *h, size_t n)
{
	int losers = 0;

	if (n > 1)
		qsort(h, n, sizeof(*h), holder_cmp);
	for (size_t i = 0; i < n; i++) {
		h[i].loser = i > 0 && h[i - 1].value == h[i].value;
		losers += h[i].loser;
	}
	return losers;
}
