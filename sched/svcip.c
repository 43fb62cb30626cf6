// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "sched/svcip.h"

int svcip_parse(const char *s, uint32_t *ret)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ret = ntohl(a.s_addr);
	return 0;
}

void svcip_format(uint32_t ip, char *buf, size_t len)
{
	struct in_addr a = { htonl(ip) };
	inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

int svcip_range_parse(const char *cidr, struct svcip_range *ret)
{
	char buf[32];
	const char *slash = strchr(cidr, '/');
	char *end;
	long prefix;
	uint32_t ip;

	if (!slash || (size_t)(slash - cidr) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, cidr, slash - cidr);
	buf[slash - cidr] = 0;
	prefix = strtol(slash + 1, &end, 10);
	if (*end || prefix < 8 || prefix > 30 || svcip_parse(buf, &ip) < 0)
		return -EINVAL;
	ret->size = 1u << (32 - prefix);
	ret->net = ip & ~(ret->size - 1);
	return 0;
}

bool svcip_range_contains(const struct svcip_range *r, uint32_t ip)
{
	return ip > r->net + 1 && ip < r->net + r->size - 1;
}

int svcip_pick(const struct svcip_range *r, const char *key, bool (*used)(uint32_t ip, void *ud),
	       void *ud, uint32_t *ret)
{
	uint32_t usable = r->size - 3, start;
	unsigned char h[8];

	crypto_generichash(h, sizeof(h), (const unsigned char *)key, strlen(key), NULL, 0);
	memcpy(&start, h, sizeof(start));
	start %= usable;
	for (uint32_t i = 0; i < usable; i++) {
		uint32_t ip = r->net + 2 + (start + i) % usable;
		if (!used(ip, ud)) {
			*ret = ip;
			return 0;
		}
	}
	return -ENOSPC;
}
