/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ClusterIP allocation from the service CIDR. Pure logic: the caller says which addresses are
 * taken. The search starts at an offset hashed from the service's namespace/name, so two nodes
 * allocating for different services at the same moment rarely pick the same address.
 */
#ifndef SHOAL_SCHED_SVCIP_H
#define SHOAL_SCHED_SVCIP_H

#include <stdbool.h>
#include <stdint.h>

struct svcip_range {
	uint32_t net;   /* host byte order */
	uint32_t size;  /* addresses in the range */
};

int svcip_range_parse(const char *cidr, struct svcip_range *ret);
bool svcip_range_contains(const struct svcip_range *r, uint32_t ip);
/* A free address (never the network, the first address — reserved for the API service — or the
 * broadcast); -ENOSPC when the range is full. */
int svcip_pick(const struct svcip_range *r, const char *key, bool (*used)(uint32_t ip, void *ud),
	       void *ud, uint32_t *ret);
int svcip_parse(const char *s, uint32_t *ret);
void svcip_format(uint32_t ip, char *buf, size_t len);

#endif
