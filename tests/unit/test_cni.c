// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "netplugin/cni.h"

static const char *env_cmd, *env_cid, *env_netns, *env_if;

static const char *fake_env(const char *name)
{
	if (streq(name, "CNI_COMMAND"))
		return env_cmd;
	if (streq(name, "CNI_CONTAINERID"))
		return env_cid;
	if (streq(name, "CNI_NETNS"))
		return env_netns;
	if (streq(name, "CNI_IFNAME"))
		return env_if;
	return NULL;
}

static int setup(void **state)
{
	env_cmd = "ADD";
	env_cid = "abc123";
	env_netns = "/run/netns/x";
	env_if = "eth0";
	return 0;
}

#define CONF                                                                                       \
	"{\"cniVersion\":\"1.0.0\",\"name\":\"k8s\",\"type\":\"shoal-cni\",\"node\":\"n1\","       \
	"\"ipam\":{\"subnet\":\"10.244.0.0/24\"}"

static int parse(const char *conf, struct cni_req *req, struct cni_error *ce)
{
	memset(ce, 0, sizeof(*ce));
	return cni_req_parse(req, conf, fake_env, ce);
}

static void test_parse_ok(void **state)
{
	struct cni_req req;
	struct cni_error ce;

	assert_int_equal(parse(CONF ",\"mtu\":1400,\"nftTable\":\"shoal-n1\"}", &req, &ce), 0);
	assert_string_equal(req.command, "ADD");
	assert_string_equal(req.subnet, "10.244.0.0/24");
	assert_string_equal(req.data_dir, "/var/lib/cni/shoal/k8s");
	assert_string_equal(req.node, "n1");
	assert_string_equal(req.nft_table, "shoal-n1");
	assert_int_equal(req.mtu, 1400);
	assert_null(req.prev_result);
	cni_req_done(&req);
}

static void test_parse_errors(void **state)
{
	struct cni_req req;
	struct cni_error ce;

	env_cmd = NULL;
	assert_int_equal(parse(CONF "}", &req, &ce), -1);
	assert_int_equal(ce.code, CNI_ERR_INVALID_ENV);
	env_cmd = "FROB";
	assert_int_equal(parse(CONF "}", &req, &ce), -1);
	assert_int_equal(ce.code, CNI_ERR_INVALID_ENV);
	env_cmd = "ADD";
	env_cid = "bad/id";
	assert_int_equal(parse(CONF "}", &req, &ce), -1);
	assert_int_equal(ce.code, CNI_ERR_INVALID_ENV);
	assert_non_null(strstr(ce.msg, "CNI_CONTAINERID"));
	env_cid = "abc";
	env_netns = NULL;
	assert_int_equal(parse(CONF "}", &req, &ce), -1);
	assert_int_equal(ce.code, CNI_ERR_INVALID_ENV);
	assert_non_null(strstr(ce.msg, "CNI_NETNS"));
	cni_req_done(&req);
	env_cmd = "DEL"; /* DEL may come without a netns */
	assert_int_equal(parse(CONF "}", &req, &ce), 0);
	cni_req_done(&req);
	env_cmd = "ADD";
	env_netns = "/run/netns/x";

	assert_int_equal(parse("{not json", &req, &ce), -1);
	assert_int_equal(ce.code, CNI_ERR_DECODE);
	cni_req_done(&req);
	assert_int_equal(parse("{\"cniVersion\":\"0.2.0\",\"name\":\"x\"}", &req, &ce), -1);
	assert_int_equal(ce.code, CNI_ERR_INCOMPATIBLE_VERSION);
	cni_req_done(&req);
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"x\"}", &req, &ce), -1);
	assert_int_equal(ce.code, CNI_ERR_INVALID_CONFIG);
	cni_req_done(&req);
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"x\",\"ipam\":{\"type\":"
			       "\"host-local\",\"subnet\":\"10.0.0.0/24\"}}",
			       &req, &ce),
			 -1);
	assert_int_equal(ce.code, CNI_ERR_UNSUPPORTED_FIELD);
	assert_non_null(strstr(ce.details, "ipam.type"));
	cni_req_done(&req);
	assert_int_equal(parse(CONF ",\"mtu\":\"big\"}", &req, &ce), -1);
	assert_int_equal(ce.code, CNI_ERR_INVALID_CONFIG);
	cni_req_done(&req);
}

static struct np_pod_result sample(void)
{
	struct np_pod_result r = {
	    .ip_str = "10.244.0.9",
	    .netns_path = "/run/netns/x",
	    .host_veth = "sh0123456789abc",
	    .ifname = "eth0",
	    .host_mac = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee},
	    .pod_mac = {0x02, 0, 0, 0, 0, 1},
	};
	ipam_addr_parse("169.254.1.1", &r.gateway);
	ipam_addr_parse("10.244.0.9", &r.ip);
	return r;
}

static void test_result(void **state)
{
	struct cni_req req;
	struct cni_error ce;
	struct np_pod_result r = sample();
	_cleanup_json_ cJSON *out = NULL;
	_cleanup_free_ char *s = NULL;

	assert_int_equal(parse(CONF ",\"dns\":{\"nameservers\":[\"10.96.0.10\"]}}", &req, &ce), 0);
	out = cni_result_build(&req, &r);
	s = cJSON_PrintUnformatted(out);
	assert_string_equal(
	    s, "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"sh0123456789abc\","
	       "\"mac\":\"ee:ee:ee:ee:ee:ee\"},{\"name\":\"eth0\",\"mac\":\"02:00:00:00:00:01\","
	       "\"sandbox\":\"/run/netns/x\"}],\"ips\":[{\"address\":\"10.244.0.9/32\","
	       "\"gateway\":\"169.254.1.1\",\"interface\":1}],\"routes\":[{\"dst\":\"0.0.0.0/0\","
	       "\"gw\":\"169.254.1.1\"}],\"dns\":{\"nameservers\":[\"10.96.0.10\"]}}");
	cni_req_done(&req);
}

static void test_result_chained(void **state)
{
	struct cni_req req;
	struct cni_error ce;
	struct np_pod_result r = sample();
	_cleanup_json_ cJSON *out = NULL;
	cJSON *ips;

	assert_int_equal(parse(CONF ",\"prevResult\":{\"cniVersion\":\"1.0.0\",\"interfaces\":"
				    "[{\"name\":\"lo\"}],\"ips\":[],\"dns\":{\"domain\":\"x\"}}}",
			       &req, &ce),
			 0);
	assert_non_null(req.prev_result);
	out = cni_result_build(&req, &r);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(out, "interfaces")), 3);
	ips = cJSON_GetObjectItem(out, "ips");
	assert_int_equal(cJSON_GetArraySize(ips), 1);
	/* our address points at our sandbox interface, after the previous ones */
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ips, 0), "interface")->valueint, 2);
	assert_string_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(out, "dns"), "domain")->valuestring, "x");
	cni_req_done(&req);
}

static void test_version_and_error_json(void **state)
{
	_cleanup_json_ cJSON *v = cni_version_json(), *e = NULL;
	_cleanup_free_ char *s = NULL, *s2 = NULL;
	struct cni_error ce = {.code = 11, .msg = "busy"};

	s = cJSON_PrintUnformatted(v);
	assert_string_equal(s, "{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\","
			       "\"1.0.0\"]}");
	e = cni_error_json("1.0.0", &ce);
	s2 = cJSON_PrintUnformatted(e);
	assert_string_equal(s2, "{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"busy\"}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_parse_ok, setup),
	    cmocka_unit_test_setup(test_parse_errors, setup),
	    cmocka_unit_test_setup(test_result, setup),
	    cmocka_unit_test_setup(test_result_chained, setup),
	    cmocka_unit_test(test_version_and_error_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
