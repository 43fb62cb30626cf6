// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/util.h"
#include "netplugin/podfiles.h"

static const struct np_podfiles_opts base = {
    .hostname = "web-1",
    .pod_namespace = "shop",
    .cluster_domain = "cluster.local",
    .pod_ip = "10.244.0.7",
    .nameserver = "10.96.0.10",
};

static void test_resolv(void **state)
{
	_cleanup_free_ char *s = NULL;

	assert_int_equal(np_podfiles_resolv(&base, &s, NULL), 0);
	assert_string_equal(s, "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
			       "nameserver 10.96.0.10\n"
			       "options ndots:5\n");
}

static void test_resolv_dns_policies(void **state)
{
	_cleanup_free_ char *none = NULL, *cf = NULL, *def = NULL, *empty = NULL;
	struct np_podfiles_opts o = base;
	const char *ns[] = {"192.0.2.53", "2001:db8::53", NULL};
	const char *search[] = {"ns1.svc.cluster-domain.example", "my.dns.search.suffix.", NULL};
	const char *opts[] = {"ndots:2", "edns0", NULL};
	const char *dup_ns[] = {"10.96.0.10", "192.0.2.1", "192.0.2.2", "192.0.2.3", NULL};

	o.dns_policy = NP_DNS_NONE;
	o.dns_nameservers = ns;
	o.dns_searches = search;
	o.dns_options = opts;
	assert_int_equal(np_podfiles_resolv(&o, &none, NULL), 0);
	assert_string_equal(none, "search ns1.svc.cluster-domain.example my.dns.search.suffix.\n"
				  "nameserver 192.0.2.53\n"
				  "nameserver 2001:db8::53\n"
				  "options ndots:2 edns0\n");

	/* ClusterFirst: dnsConfig is appended; an option of the same name replaces ndots:5;
	 * duplicates are dropped and at most three nameservers are written */
	o.dns_policy = NP_DNS_CLUSTER_FIRST;
	o.dns_nameservers = dup_ns;
	assert_int_equal(np_podfiles_resolv(&o, &cf, NULL), 0);
	assert_string_equal(cf, "search shop.svc.cluster.local svc.cluster.local cluster.local "
				"ns1.svc.cluster-domain.example my.dns.search.suffix.\n"
				"nameserver 10.96.0.10\n"
				"nameserver 192.0.2.1\n"
				"nameserver 192.0.2.2\n"
				"options ndots:2 edns0\n");

	/* Default: the node's file, comments and junk skipped, the last search line wins */
	o.dns_policy = NP_DNS_DEFAULT;
	o.dns_nameservers = NULL;
	o.dns_searches = NULL;
	o.dns_options = (const char *[]){"timeout:1", NULL};
	o.host_resolv = "# generated\ndomain old.example\nsearch corp.example lab.example\n"
			"nameserver 198.51.100.1\nnameserver bogus\n; x\noptions rotate\n";
	assert_int_equal(np_podfiles_resolv(&o, &def, NULL), 0);
	assert_string_equal(def, "search corp.example lab.example\n"
				 "nameserver 198.51.100.1\n"
				 "options rotate timeout:1\n");

	o.dns_policy = NP_DNS_NONE;
	o.dns_options = NULL;
	assert_int_equal(np_podfiles_resolv(&o, &empty, NULL), 0);
	assert_string_equal(empty, "");
}

static void test_resolv_bad_dns_config(void **state)
{
	struct np_podfiles_opts o = base;
	struct err e = {0};
	char *s = NULL;

	o.dns_nameservers = (const char *[]){"10.0.0.1\nsearch evil", NULL};
	assert_int_equal(np_podfiles_resolv(&o, &s, &e), -EINVAL);
	assert_non_null(strstr(e.message, "dnsConfig.nameservers"));
	o = base;
	o.dns_searches = (const char *[]){"bad domain", NULL};
	assert_int_equal(np_podfiles_resolv(&o, &s, &e), -EINVAL);
	o = base;
	o.dns_options = (const char *[]){"ndots:1\nnameserver 6.6.6.6", NULL};
	assert_int_equal(np_podfiles_resolv(&o, &s, &e), -EINVAL);
	assert_null(s);
}

static void test_hosts(void **state)
{
	_cleanup_free_ char *s = NULL, *s2 = NULL;
	struct np_podfiles_opts o = base;
	const char *names[] = {"db.example", "db", NULL};
	struct np_host_alias al = {.ip = "192.0.2.9", .hostnames = names};

	assert_int_equal(np_podfiles_hosts(&o, &s, NULL), 0);
	assert_non_null(strstr(s, "127.0.0.1\tlocalhost\n"));
	assert_non_null(strstr(s, "\n10.244.0.7\tweb-1\n"));

	o.subdomain = "backend";
	o.aliases = &al;
	o.naliases = 1;
	assert_int_equal(np_podfiles_hosts(&o, &s2, NULL), 0);
	assert_non_null(strstr(s2, "\n10.244.0.7\tweb-1.backend.shop.svc.cluster.local\tweb-1\n"));
	assert_non_null(strstr(s2, "\n192.0.2.9\tdb.example\tdb\n"));
}

static void test_bad_input(void **state)
{
	struct np_podfiles_opts o = base;
	struct err e = {0};
	char *s = NULL;

	o.hostname = "Web_1\nnameserver 6.6.6.6";
	assert_int_equal(np_podfiles_hostname(&o, &s, &e), -EINVAL);
	assert_non_null(strstr(e.message, "hostname"));
	o = base;
	o.nameserver = "10.96.0.10\nsearch evil";
	assert_int_equal(np_podfiles_resolv(&o, &s, &e), -EINVAL);
	o = base;
	o.cluster_domain = "bad..domain";
	assert_int_equal(np_podfiles_resolv(&o, &s, &e), -EINVAL);
	assert_null(s);
}

static void test_write(void **state)
{
	char dir[] = "/tmp/shoal-net-podfiles-XXXXXX";
	_cleanup_free_ char *sub = NULL, *p = NULL, *text = NULL;

	assert_non_null(mkdtemp(dir));
	assert_true(asprintf(&sub, "%s/etc", dir) > 0);
	assert_int_equal(np_podfiles_write(sub, &base, NULL), 0);
	assert_true(asprintf(&p, "%s/hostname", sub) > 0);
	assert_int_equal(util_read_file(p, 4096, &text, NULL), 0);
	assert_string_equal(text, "web-1\n");
	for (const char *f = "hosts"; f; f = streq(f, "hosts")	       ? "resolv.conf"
					     : streq(f, "resolv.conf") ? "hostname"
								       : NULL) {
		_cleanup_free_ char *q = NULL;
		assert_true(asprintf(&q, "%s/%s", sub, f) > 0);
		assert_int_equal(unlink(q), 0);
	}
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resolv),
	    cmocka_unit_test(test_resolv_dns_policies),
	    cmocka_unit_test(test_resolv_bad_dns_config),
	    cmocka_unit_test(test_hosts),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
