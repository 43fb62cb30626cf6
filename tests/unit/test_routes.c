// SPDX-License-Identifier: Apache-2.0
/* routes_plan: which pod CIDRs a members view asks this node to route, and where. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/routes.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static void put(struct members *m, const char *name, const char *addr, enum members_state st,
		const char *cidr)
{
	char meta[128];
	struct members_info i = {.name = name, .address = addr, .state = st, .meta = meta};

	if (cidr)
		snprintf(meta, sizeof(meta), "{\"podCIDR\":\"%s\",\"cpu\":2}", cidr);
	else
		snprintf(meta, sizeof(meta), "{\"cpu\":2}");
	assert_true(members_update(m, &i) >= 0);
}

static size_t plan(struct members *m, struct routes_peer **v)
{
	size_t n;

	assert_int_equal(routes_plan(m, IP(10, 244, 1, 0), 24, v, &n), 0);
	return n;
}

static void test_alive_and_suspect_routed_dead_and_left_not(void **state)
{
	struct members *m;
	struct routes_peer *v;

	assert_int_equal(members_new("n1", &m), 0);
	put(m, "n1", "198.18.0.1:7946", MEMBERS_ALIVE, "10.244.1.0/24");
	assert_int_equal(plan(m, &v), 0); /* self is never routed */
	assert_null(v);
	put(m, "n2", "198.18.0.2:7946", MEMBERS_ALIVE, "10.244.2.0/24");
	put(m, "n3", "198.18.0.3:7946", MEMBERS_SUSPECT, "10.244.3.0/24");
	put(m, "n4", "198.18.0.4:7946", MEMBERS_DEAD, "10.244.4.0/24");
	put(m, "n5", "198.18.0.5:7946", MEMBERS_LEFT, "10.244.5.0/24");
	assert_int_equal(plan(m, &v), 2);
	assert_string_equal(v[0].name, "n2");
	assert_int_equal(v[0].net, IP(10, 244, 2, 0));
	assert_int_equal(v[0].prefix, 24);
	assert_int_equal(v[0].ip, IP(198, 18, 0, 2));
	assert_string_equal(v[1].name, "n3"); /* a suspect keeps its route */
	free(v);
	/* n3 declared dead: withdrawn; n4 back: routed again */
	put(m, "n3", "198.18.0.3:7946", MEMBERS_DEAD, "10.244.3.0/24");
	put(m, "n4", "198.18.0.4:7946", MEMBERS_ALIVE, "10.244.4.0/24");
	assert_int_equal(plan(m, &v), 2);
	assert_string_equal(v[0].name, "n2");
	assert_string_equal(v[1].name, "n4");
	free(v);
	members_free(m);
}

static void test_bad_or_conflicting_cidrs_skipped(void **state)
{
	struct members *m;
	struct routes_peer *v;

	assert_int_equal(members_new("n1", &m), 0);
	put(m, "a", "198.18.0.2:7946", MEMBERS_ALIVE, NULL);		  /* none published yet */
	put(m, "b", "198.18.0.3:7946", MEMBERS_ALIVE, "not-a-cidr");	  /* garbage */
	put(m, "c", "198.18.0.4:7946", MEMBERS_ALIVE, "10.244.1.128/25"); /* inside ours */
	put(m, "d", "", MEMBERS_ALIVE, "10.244.6.0/24");		  /* no address */
	put(m, "e", "198.18.0.7:7946", MEMBERS_ALIVE, "10.244.7.0/24");
	put(m, "f", "198.18.0.8:7946", MEMBERS_ALIVE, "10.244.7.0/24"); /* e's: e keeps it */
	put(m, "g", "198.18.0.9:7946", MEMBERS_ALIVE, "10.244.0.0/16"); /* covers ours */
	put(m, "h", "198.18.0.10", MEMBERS_ALIVE, "10.245.8.0/23");	/* no port is fine */
	assert_int_equal(plan(m, &v), 2);
	assert_string_equal(v[0].name, "e");
	assert_int_equal(v[0].ip, IP(198, 18, 0, 7));
	assert_string_equal(v[1].name, "h");
	assert_int_equal(v[1].net, IP(10, 245, 8, 0));
	assert_int_equal(v[1].prefix, 23);
	assert_int_equal(v[1].ip, IP(198, 18, 0, 10));
	free(v);
	/* a CIDR published later (gossip metadata update) is picked up */
	put(m, "a", "198.18.0.2:7946", MEMBERS_ALIVE, "10.244.2.0/24");
	assert_int_equal(plan(m, &v), 3);
	assert_string_equal(v[0].name, "a");
	free(v);
	members_free(m);
}

static void test_vtep_mac_from_address(void **state)
{
	uint8_t mac[6];
	const uint8_t want[6] = {0x0e, 0x5c, 198, 18, 0, 7};

	routes_vtep_mac(IP(198, 18, 0, 7), mac);
	assert_memory_equal(mac, want, 6);
	assert_int_equal(mac[0] & 1, 0); /* unicast */
	assert_int_equal(mac[0] & 2, 2); /* locally administered */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alive_and_suspect_routed_dead_and_left_not),
	    cmocka_unit_test(test_bad_or_conflicting_cidrs_skipped),
	    cmocka_unit_test(test_vtep_mac_from_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
