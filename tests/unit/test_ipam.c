// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <ftw.h>

#include "netplugin/ipam.h"

static uint32_t A(const char *s)
{
	uint32_t ip;
	assert_int_equal(ipam_addr_parse(s, &ip), 0);
	return ip;
}

static void test_range_parse(void **state)
{
	struct ipam_range r;
	struct err e = {0};

	assert_int_equal(ipam_range_parse("10.244.0.0/24", NULL, NULL, &r, &e), 0);
	assert_int_equal(r.network, A("10.244.0.0"));
	assert_int_equal(r.gateway, A("10.244.0.1"));
	assert_int_equal(r.first, A("10.244.0.2"));
	assert_int_equal(r.last, A("10.244.0.254"));
	assert_int_equal(ipam_range_size(&r), 253);
	assert_false(ipam_range_contains(&r, A("10.244.0.0")));
	assert_false(ipam_range_contains(&r, A("10.244.0.1")));
	assert_false(ipam_range_contains(&r, A("10.244.0.255")));

	assert_int_equal(ipam_range_parse("10.244.0.0/24", "10.244.0.10", "10.244.0.20", &r, &e),
			 0);
	assert_int_equal(ipam_range_size(&r), 11);

	assert_int_equal(ipam_range_parse("10.244.0.0/30", NULL, NULL, &r, &e), 0);
	assert_int_equal(ipam_range_size(&r), 1); /* .0 net, .1 node, .2 pod, .3 broadcast */

	assert_int_equal(ipam_range_parse("10.244.0.1/24", NULL, NULL, &r, &e), -EINVAL);
	assert_non_null(strstr(e.message, "host bits"));
	assert_int_equal(ipam_range_parse("10.244.0.0/31", NULL, NULL, &r, &e), -EINVAL);
	assert_int_equal(ipam_range_parse("10.244.0.0", NULL, NULL, &r, &e), -EINVAL);
	assert_int_equal(ipam_range_parse("10.244.0.0/x", NULL, NULL, &r, &e), -EINVAL);
	assert_int_equal(ipam_range_parse("10.300.0.0/24", NULL, NULL, &r, &e), -EINVAL);
	assert_int_equal(ipam_range_parse("10.244.0.0/24", "10.244.0.1", NULL, &r, &e), -EINVAL);
	assert_int_equal(ipam_range_parse("10.244.0.0/24", NULL, "10.244.0.255", &r, &e), -EINVAL);
	assert_int_equal(ipam_range_parse("10.244.0.0/24", "10.244.0.9", "10.244.0.5", &r, &e),
			 -EINVAL);
}

struct bitmap {
	uint8_t used[256];
};

static bool bm_used(uint32_t ip, void *ud)
{
	return ((struct bitmap *)ud)->used[ip & 0xff];
}

static void test_range_next_round_robin(void **state)
{
	struct ipam_range r;
	struct bitmap bm = {0};
	uint32_t ip, last = 0;

	assert_int_equal(ipam_range_parse("10.244.0.0/29", NULL, NULL, &r, NULL), 0);
	/* .2 .. .6 allocatable */
	for (int i = 2; i <= 6; i++) {
		assert_int_equal(ipam_range_next(&r, last, bm_used, &bm, &ip), 0);
		assert_int_equal(ip, A("10.244.0.0") + i);
		bm.used[i] = 1;
		last = ip;
	}
	assert_int_equal(ipam_range_next(&r, last, bm_used, &bm, &ip), -ENOSPC);
	/* free .3, then .5: .3 comes back first because the cursor wraps to it first */
	bm.used[3] = 0;
	bm.used[5] = 0;
	assert_int_equal(ipam_range_next(&r, last, bm_used, &bm, &ip), 0);
	assert_int_equal(ip & 0xff, 3);
	bm.used[3] = 1;
	last = ip;
	assert_int_equal(ipam_range_next(&r, last, bm_used, &bm, &ip), 0);
	assert_int_equal(ip & 0xff, 5);
}

static char dir[] = "/tmp/shoal-net-ipam-XXXXXX";

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/shoal-net-ipam-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	return nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static struct ipam *open_db(const char *cidr)
{
	struct ipam_range r;
	struct ipam *ipam = NULL;
	struct err e = {0};

	assert_int_equal(ipam_range_parse(cidr, NULL, NULL, &r, &e), 0);
	assert_int_equal(ipam_open(dir, &r, &ipam, &e), 0);
	return ipam;
}

static uint32_t alloc(struct ipam *ipam, const char *owner, int expect)
{
	struct ipam_lease l = {0};
	struct err e = {0};

	snprintf(l.owner, sizeof(l.owner), "%s", owner);
	snprintf(l.ifname, sizeof(l.ifname), "eth0");
	snprintf(l.host_veth, sizeof(l.host_veth), "sh-%s", owner);
	snprintf(l.netns, sizeof(l.netns), "/run/netns/x-%s", owner);
	l.netns_owned = true;
	assert_int_equal(ipam_allocate(ipam, &l, 1000, &e), expect);
	return l.ip;
}

static void test_store_persist_and_no_reuse(void **state)
{
	struct ipam *ipam = open_db("10.244.0.0/29");
	struct ipam_lease l, *all = NULL;
	size_t n;
	uint32_t a, b, c;

	a = alloc(ipam, "pod-a", 0);
	b = alloc(ipam, "pod-b", 0);
	assert_int_equal(a, A("10.244.0.2"));
	assert_int_equal(b, A("10.244.0.3"));
	/* same owner again: same lease, not a new one */
	assert_int_equal(alloc(ipam, "pod-a", 1), a);
	assert_int_equal(ipam_release(ipam, "pod-a", "eth0", NULL), 0);
	assert_int_equal(ipam_release(ipam, "pod-a", "eth0", NULL), -ENOENT);
	ipam = ipam_close(ipam);

	/* "restart": a fresh handle continues after the last address, never back to .2 first */
	ipam = open_db("10.244.0.0/29");
	assert_int_equal(ipam_lookup(ipam, "pod-b", "eth0", &l, NULL), 0);
	assert_int_equal(l.ip, b);
	assert_string_equal(l.host_veth, "sh-pod-b");
	assert_string_equal(l.netns, "/run/netns/x-pod-b");
	assert_true(l.netns_owned);
	assert_int_equal(l.created, 1000);
	c = alloc(ipam, "pod-c", 0);
	assert_int_equal(c, A("10.244.0.4"));
	assert_int_equal(alloc(ipam, "pod-d", 0), A("10.244.0.5"));
	assert_int_equal(alloc(ipam, "pod-e", 0), A("10.244.0.6"));
	/* wrap: the released .2 comes back only now */
	assert_int_equal(alloc(ipam, "pod-f", 0), A("10.244.0.2"));
	alloc(ipam, "pod-g", -ENOSPC);

	assert_int_equal(ipam_list(ipam, &all, &n, NULL), 0);
	assert_int_equal(n, 5);
	for (size_t i = 1; i < n; i++)
		assert_true(all[i - 1].ip < all[i].ip);
	free(all);
	assert_int_equal(ipam_lookup(ipam, "nobody", "eth0", &l, NULL), -ENOENT);
	ipam_close(ipam);
}

static void test_store_ifname_distinct(void **state)
{
	struct ipam *ipam = open_db("10.244.0.0/24");
	struct ipam_lease l = {.ifname = "net1"};
	uint32_t a = alloc(ipam, "pod", 0);

	snprintf(l.owner, sizeof(l.owner), "pod");
	assert_int_equal(ipam_allocate(ipam, &l, 1, NULL), 0);
	assert_int_not_equal(l.ip, a);
	memset(&l, 0, sizeof(l));
	assert_int_equal(ipam_allocate(ipam, &l, 1, NULL), -EINVAL);
	ipam_close(ipam);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_range_parse),
	    cmocka_unit_test(test_range_next_round_robin),
	    cmocka_unit_test_setup_teardown(test_store_persist_and_no_reuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_ifname_distinct, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
