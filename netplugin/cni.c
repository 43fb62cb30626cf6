// SPDX-License-Identifier: Apache-2.0
/* CNI plumbing around netplugin/: see cni.h. */
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "netplugin/cni.h"

static _printf_(3, 4) int cerr(struct cni_error *ce, int code, const char *fmt, ...)
{
	va_list ap;

	ce->code = code;
	va_start(ap, fmt);
	vsnprintf(ce->msg, sizeof(ce->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static bool copy_str(char *dst, size_t len, const char *src)
{
	if (!src || strlen(src) >= len)
		return false;
	memcpy(dst, src, strlen(src) + 1);
	return true;
}

static bool version_supported(const char *v)
{
	return streq(v, "1.0.0") || streq(v, "0.4.0");
}

/* Container ids: the spec allows alphanumerics plus '_', '.' and '-'. */
static bool valid_container_id(const char *s)
{
	if (strempty(s))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
			return false;
	return true;
}

/* Optional string member: absent is fine, present must be a string that fits. */
static int conf_str(const cJSON *o, const char *key, char *dst, size_t len, struct cni_error *ce)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || !copy_str(dst, len, v->valuestring))
		return cerr(ce, CNI_ERR_INVALID_CONFIG, "\"%s\" must be a string shorter than %zu",
			    key, len);
	return 0;
}

int cni_req_parse(struct cni_req *req, const char *stdin_text,
		  const char *(*getenv_fn)(const char *name), struct cni_error *ce)
{
	const char *cmd = getenv_fn("CNI_COMMAND");
	const char *cid = getenv_fn("CNI_CONTAINERID");
	const char *netns = getenv_fn("CNI_NETNS");
	const char *ifname = getenv_fn("CNI_IFNAME");
	const cJSON *ipam, *v;
	bool del;

	memset(req, 0, sizeof(*req));
	if (strempty(cmd))
		return cerr(ce, CNI_ERR_INVALID_ENV, "CNI_COMMAND is not set");
	if (!streq(cmd, "ADD") && !streq(cmd, "DEL") && !streq(cmd, "CHECK") &&
	    !streq(cmd, "VERSION"))
		return cerr(ce, CNI_ERR_INVALID_ENV, "CNI_COMMAND \"%.64s\" is not supported", cmd);
	copy_str(req->command, sizeof(req->command), cmd);
	snprintf(req->cni_version, sizeof(req->cni_version), "1.0.0");
	if (streq(cmd, "VERSION"))
		return 0;

	del = streq(cmd, "DEL");
	if (!valid_container_id(cid) ||
	    !copy_str(req->container_id, sizeof(req->container_id), cid))
		return cerr(ce, CNI_ERR_INVALID_ENV,
			    "CNI_CONTAINERID is missing or not [A-Za-z0-9_.-]+");
	if (strempty(ifname) || !copy_str(req->ifname, sizeof(req->ifname), ifname))
		return cerr(ce, CNI_ERR_INVALID_ENV, "CNI_IFNAME is missing or longer than 15");
	if (!strempty(netns) && !copy_str(req->netns, sizeof(req->netns), netns))
		return cerr(ce, CNI_ERR_INVALID_ENV, "CNI_NETNS is too long");
	if (!del && strempty(netns))
		return cerr(ce, CNI_ERR_INVALID_ENV, "CNI_NETNS is required for %s", cmd);

	if (strempty(stdin_text))
		return cerr(ce, CNI_ERR_DECODE, "no network configuration on stdin");
	req->conf = cJSON_Parse(stdin_text);
	if (!req->conf || !cJSON_IsObject(req->conf))
		return cerr(ce, CNI_ERR_DECODE, "network configuration is not a JSON object");

	v = cJSON_GetObjectItemCaseSensitive(req->conf, "cniVersion");
	if (!cJSON_IsString(v) ||
	    !copy_str(req->cni_version, sizeof(req->cni_version), v->valuestring)) {
		snprintf(req->cni_version, sizeof(req->cni_version), "1.0.0");
		return cerr(ce, CNI_ERR_INVALID_CONFIG, "\"cniVersion\" is missing");
	}
	if (!version_supported(req->cni_version))
		return cerr(ce, CNI_ERR_INCOMPATIBLE_VERSION,
			    "cniVersion %s is not supported (supported: 0.4.0, 1.0.0)",
			    req->cni_version);
	if (conf_str(req->conf, "name", req->name, sizeof(req->name), ce) < 0)
		return -1;
	if (!req->name[0])
		return cerr(ce, CNI_ERR_INVALID_CONFIG, "\"name\" is missing");
	if (strchr(req->name, '/') || streq(req->name, "..") || streq(req->name, "."))
		return cerr(ce, CNI_ERR_INVALID_CONFIG, "\"name\" must not contain '/'");
	if (conf_str(req->conf, "node", req->node, sizeof(req->node), ce) < 0 ||
	    conf_str(req->conf, "nftTable", req->nft_table, sizeof(req->nft_table), ce) < 0 ||
	    conf_str(req->conf, "clusterCIDR", req->cluster_cidr, sizeof(req->cluster_cidr), ce) <
		0)
		return -1;
	v = cJSON_GetObjectItemCaseSensitive(req->conf, "mtu");
	if (v) {
		if (!cJSON_IsNumber(v) || v->valuedouble < 68 || v->valuedouble > 65535)
			return cerr(ce, CNI_ERR_INVALID_CONFIG, "\"mtu\" must be 68..65535");
		req->mtu = v->valueint;
	}

	ipam = cJSON_GetObjectItemCaseSensitive(req->conf, "ipam");
	if (!cJSON_IsObject(ipam))
		return cerr(ce, CNI_ERR_INVALID_CONFIG,
			    "\"ipam\" object with a \"subnet\" is "
			    "required");
	v = cJSON_GetObjectItemCaseSensitive(ipam, "type");
	if (v && !(cJSON_IsString(v) && streq(v->valuestring, "shoal"))) {
		snprintf(ce->details, sizeof(ce->details), "ipam.type: %.64s",
			 cJSON_IsString(v) ? v->valuestring : "(not a string)");
		return cerr(ce, CNI_ERR_UNSUPPORTED_FIELD,
			    "ipam.type \"%.64s\" is not supported: shoal-cni allocates addresses "
			    "itself (use \"shoal\" or leave it out)",
			    cJSON_IsString(v) ? v->valuestring : "?");
	}
	if (conf_str(ipam, "subnet", req->subnet, sizeof(req->subnet), ce) < 0 ||
	    conf_str(ipam, "rangeStart", req->range_start, sizeof(req->range_start), ce) < 0 ||
	    conf_str(ipam, "rangeEnd", req->range_end, sizeof(req->range_end), ce) < 0 ||
	    conf_str(ipam, "dataDir", req->data_dir, sizeof(req->data_dir), ce) < 0)
		return -1;
	if (!req->subnet[0])
		return cerr(ce, CNI_ERR_INVALID_CONFIG, "ipam.subnet is required");
	if (!req->data_dir[0])
		snprintf(req->data_dir, sizeof(req->data_dir), "/var/lib/cni/shoal/%s", req->name);
	if (!req->node[0] && gethostname(req->node, sizeof(req->node) - 1) < 0)
		snprintf(req->node, sizeof(req->node), "cni");

	req->prev_result = cJSON_GetObjectItemCaseSensitive(req->conf, "prevResult");
	if (req->prev_result && !cJSON_IsObject(req->prev_result))
		return cerr(ce, CNI_ERR_DECODE, "prevResult is not an object");
	req->dns = cJSON_GetObjectItemCaseSensitive(req->conf, "dns");
	return 0;
}

void cni_req_done(struct cni_req *req)
{
	cJSON_Delete(req->conf);
	req->conf = NULL;
}

static void mac_str(const uint8_t m[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* Copy array `key` of prevResult into out (creating it). */
static cJSON *copy_array(cJSON *out, const cJSON *prev, const char *key)
{
	const cJSON *a = prev ? cJSON_GetObjectItemCaseSensitive(prev, key) : NULL;
	cJSON *dup = cJSON_IsArray(a) ? cJSON_Duplicate(a, true) : cJSON_CreateArray();

	cJSON_AddItemToObject(out, key, dup);
	return dup;
}

cJSON *cni_result_build(const struct cni_req *req, const struct np_pod_result *res)
{
	cJSON *out = cJSON_CreateObject(), *ifs, *ips, *routes, *o;
	char mac[18], addr[24], gw[16];
	int base;

	cJSON_AddStringToObject(out, "cniVersion", req->cni_version);
	ifs = copy_array(out, req->prev_result, "interfaces");
	ips = copy_array(out, req->prev_result, "ips");
	routes = copy_array(out, req->prev_result, "routes");
	base = cJSON_GetArraySize(ifs);

	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", res->host_veth);
	mac_str(res->host_mac, mac);
	cJSON_AddStringToObject(o, "mac", mac);
	cJSON_AddItemToArray(ifs, o);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", res->ifname);
	mac_str(res->pod_mac, mac);
	cJSON_AddStringToObject(o, "mac", mac);
	cJSON_AddStringToObject(o, "sandbox", res->netns_path);
	cJSON_AddItemToArray(ifs, o);

	ipam_addr_format(res->gateway, gw);
	snprintf(addr, sizeof(addr), "%s/32", res->ip_str);
	o = cJSON_CreateObject();
	if (streq(req->cni_version, "0.4.0"))
		cJSON_AddStringToObject(o, "version", "4");
	cJSON_AddStringToObject(o, "address", addr);
	cJSON_AddStringToObject(o, "gateway", gw);
	cJSON_AddNumberToObject(o, "interface", base + 1);
	cJSON_AddItemToArray(ips, o);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "dst", "0.0.0.0/0");
	cJSON_AddStringToObject(o, "gw", gw);
	cJSON_AddItemToArray(routes, o);

	if (req->dns)
		cJSON_AddItemToObject(out, "dns", cJSON_Duplicate(req->dns, true));
	else if (req->prev_result && cJSON_GetObjectItemCaseSensitive(req->prev_result, "dns"))
		cJSON_AddItemToObject(
		    out, "dns",
		    cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(req->prev_result, "dns"),
				    true));
	return out;
}

cJSON *cni_error_json(const char *cni_version, const struct cni_error *ce)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "cniVersion", cni_version ?: "1.0.0");
	cJSON_AddNumberToObject(o, "code", ce->code);
	cJSON_AddStringToObject(o, "msg", ce->msg);
	if (ce->details[0])
		cJSON_AddStringToObject(o, "details", ce->details);
	return o;
}

cJSON *cni_version_json(void)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "cniVersion", "1.0.0");
	cJSON_AddItemToObject(o, "supportedVersions", cJSON_Parse(CNI_SUPPORTED_VERSIONS));
	return o;
}

static int from_errno(int r, const struct err *e, struct cni_error *ce, const char *what)
{
	int code = CNI_ERR_PLUGIN;

	if (r == -EINVAL)
		code = CNI_ERR_INVALID_CONFIG;
	else if (r == -EBUSY || r == -EAGAIN)
		code = CNI_ERR_TRY_AGAIN;
	else if (r == -ENOSPC)
		code = CNI_ERR_NO_ADDRESS;
	cerr(ce, code, "%s: %s", what, e->message[0] ? e->message : strerror(-r));
	return -1;
}

/* CHECK: our address must be in prevResult when one is given (the runtime's view). */
static int check_prev(const struct cni_req *req, const struct np_pod_result *res,
		      struct cni_error *ce)
{
	const cJSON *ips, *ip;
	char want[24];

	if (!req->prev_result)
		return 0;
	snprintf(want, sizeof(want), "%s/32", res->ip_str);
	ips = cJSON_GetObjectItemCaseSensitive(req->prev_result, "ips");
	cJSON_ArrayForEach(ip, ips)
	{
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(ip, "address");
		if (cJSON_IsString(a) && streq(a->valuestring, want))
			return 0;
	}
	return cerr(ce, CNI_ERR_PLUGIN, "prevResult does not contain %s", want);
}

int cni_run(struct cni_req *req, cJSON **ret_out, struct cni_error *ce)
{
	struct np_node_opts no = {
	    .node_name = req->node,
	    .state_dir = req->data_dir,
	    .pod_cidr = req->subnet,
	    .range_start = req->range_start,
	    .range_end = req->range_end,
	    .cluster_cidr = req->cluster_cidr[0] ? req->cluster_cidr : NULL,
	    .nft_table = req->nft_table,
	    .mtu = req->mtu,
	};
	struct np_pod_result res = {0};
	struct np_node *node = NULL;
	struct err e = {0};
	int r;

	*ret_out = NULL;
	if (streq(req->command, "VERSION")) {
		*ret_out = cni_version_json();
		return 0;
	}
	r = np_node_open(&no, &node, &e);
	if (r < 0)
		return from_errno(r, &e, ce, "open network state");

	if (streq(req->command, "ADD")) {
		struct np_pod_opts po = {
		    .owner = req->container_id,
		    .ifname = req->ifname,
		    .netns_path = req->netns,
		};
		if (access(req->netns, F_OK) < 0) {
			r = cerr(ce, CNI_ERR_UNKNOWN_CONTAINER, "netns %s does not exist",
				 req->netns);
			goto out;
		}
		r = np_node_setup(node, &e);
		if (r < 0) {
			r = from_errno(r, &e, ce, "node setup");
			goto out;
		}
		r = np_pod_setup(node, &po, &res, &e);
		if (r < 0) {
			r = from_errno(r, &e, ce, "ADD");
			goto out;
		}
		*ret_out = cni_result_build(req, &res);
	} else if (streq(req->command, "DEL")) {
		r = np_pod_teardown(node, req->container_id, req->ifname, &e);
		if (r < 0)
			r = from_errno(r, &e, ce, "DEL");
	} else { /* CHECK */
		r = np_pod_check(node, req->container_id, req->ifname, &res, &e);
		if (r == -ENOENT)
			r = cerr(ce, CNI_ERR_UNKNOWN_CONTAINER, "no network set up for %s/%s",
				 req->container_id, req->ifname);
		else if (r < 0)
			r = from_errno(r, &e, ce, "CHECK");
		else if (!streq(res.netns_path, req->netns))
			r = cerr(ce, CNI_ERR_PLUGIN, "set up in netns %s, not %s", res.netns_path,
				 req->netns);
		else
			r = check_prev(req, &res, ce);
	}
out:
	np_node_close(node);
	return r < 0 ? -1 : 0;
}
