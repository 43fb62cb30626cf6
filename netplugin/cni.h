/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoal-cni's logic (CNI spec 1.0.0, also 0.4.0): parse the network configuration and CNI_*
 * environment, run ADD/DEL/CHECK/VERSION on netplugin/, print results and spec error objects.
 * Parsing and result building are pure so unit tests drive them without a kernel.
 *
 * Network configuration (keys beyond the spec's name/cniVersion/type):
 *   "node":        node name for derived names (default: the host name)
 *   "mtu":         veth MTU (default: kernel default)
 *   "nftTable":    nft table for masquerade (default: none, no masquerade)
 *   "clusterCIDR": destinations not masqueraded (default: the subnet)
 *   "ipam": { "type": "shoal" (or absent), "subnet": "10.244.0.0/24",
 *             "rangeStart", "rangeEnd", "dataDir" (default /var/lib/cni/shoal/<name>) }
 *   "dns":         passed through into the result
 * hostPorts are left to the `portmap` plugin chained after shoal-cni.
 */
#ifndef SHOAL_NETPLUGIN_CNI_H
#define SHOAL_NETPLUGIN_CNI_H

#include <cJSON.h>

#include "netplugin/netplugin.h"

/* Spec error codes (1.0.0, "Error codes"); 100+ are ours. */
enum {
	CNI_ERR_INCOMPATIBLE_VERSION = 1,
	CNI_ERR_UNSUPPORTED_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_PLUGIN = 100, /* the network operation itself failed; msg says why */
	CNI_ERR_NO_ADDRESS = 101,
};

struct cni_error {
	int code;
	char msg[256];
	char details[768];
};

struct cni_req {
	char command[16];
	char container_id[256];
	char netns[256];
	char ifname[16];
	char cni_version[16];
	char name[128];
	char node[64];
	char data_dir[512];
	char subnet[32];
	char range_start[16];
	char range_end[16];
	char cluster_cidr[32];
	char nft_table[64];
	int mtu;
	cJSON *conf;	    /* owned: the whole configuration */
	cJSON *prev_result; /* borrowed from conf, may be NULL */
	cJSON *dns;	    /* borrowed from conf, may be NULL */
};

#define CNI_SUPPORTED_VERSIONS "[\"0.4.0\",\"1.0.0\"]"

/* Parse env (via getenv_fn) and stdin text. 0, or -1 with *ce set. */
int cni_req_parse(struct cni_req *req, const char *stdin_text,
		  const char *(*getenv_fn)(const char *name), struct cni_error *ce);
void cni_req_done(struct cni_req *req);

/* The ADD result for res, merged after prevResult's interfaces/ips/routes when chained. */
cJSON *cni_result_build(const struct cni_req *req, const struct np_pod_result *res);
/* {"cniVersion","code","msg","details"} */
cJSON *cni_error_json(const char *cni_version, const struct cni_error *ce);
cJSON *cni_version_json(void);

/* Run the parsed command. 0 with *ret_out (may stay NULL: nothing to print), or -1 with *ce. */
int cni_run(struct cni_req *req, cJSON **ret_out, struct cni_error *ce);

#endif
