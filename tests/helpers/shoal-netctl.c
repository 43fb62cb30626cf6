// SPDX-License-Identifier: Apache-2.0
/*
 * shoal-netctl: drive netplugin/ from tests and by hand, the way the daemon's pod runtime does.
 *   shoal-netctl [--in-netns NAME] --node N --state-dir D [--pod-cidr C] [--cluster-cidr C]
 *                [--nft-table T] COMMAND ...
 * Commands: node-setup, node-teardown, pod-setup OWNER [--ifname I] [--netns-path P]
 * [--port PROTO:HOST:CONTAINER[:HOSTIP]]... [--mtu N], pod-teardown OWNER [--ifname I], pod-check
 * OWNER, pod-lookup OWNER, leases, hostports-count [OWNER], podfiles DIR HOSTNAME NAMESPACE DOMAIN
 * IP NAMESERVER. Results are JSON on stdout; errors go to stderr with exit status 1.
 * --in-netns enters /run/netns/NAME for the network only (not `ip netns exec`, whose private
 * mount namespace would hide the pod netns mounts this tool creates).
 */
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>

#include "lib/macro.h"
#include "netplugin/netplugin.h"
#include "netplugin/podfiles.h"

static int fail(const struct err *e, int r, const char *what)
{
	fprintf(stderr, "shoal-netctl: %s: %s\n", what, e->message[0] ? e->message : strerror(-r));
	return 1;
}

static void print_json(cJSON *j)
{
	_cleanup_free_ char *s = cJSON_PrintUnformatted(j);

	printf("%s\n", s ? s : "null");
}

static void mac_str(const uint8_t m[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static cJSON *result_json(const struct np_pod_result *r)
{
	cJSON *j = cJSON_CreateObject();
	char mac[18];

	cJSON_AddStringToObject(j, "ip", r->ip_str);
	cJSON_AddStringToObject(j, "gateway", "169.254.1.1");
	cJSON_AddStringToObject(j, "netns", r->netns_path);
	cJSON_AddStringToObject(j, "netnsName", r->netns_name);
	cJSON_AddStringToObject(j, "hostVeth", r->host_veth);
	cJSON_AddStringToObject(j, "ifname", r->ifname);
	mac_str(r->host_mac, mac);
	cJSON_AddStringToObject(j, "hostMac", mac);
	mac_str(r->pod_mac, mac);
	cJSON_AddStringToObject(j, "podMac", mac);
	cJSON_AddBoolToObject(j, "adopted", r->adopted);
	return j;
}

static int parse_port(const char *s, struct np_port_mapping *m)
{
	char proto[8], hip[32] = "";
	unsigned hp, cp;
	int n = sscanf(s, "%7[a-z]:%u:%u:%31s", proto, &hp, &cp, hip);

	if (n < 3 || hp == 0 || hp > 65535 || cp == 0 || cp > 65535)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->host_port = (uint16_t)hp;
	m->container_port = (uint16_t)cp;
	m->proto = streq(proto, "udp")	  ? IPPROTO_UDP
		   : streq(proto, "sctp") ? IPPROTO_SCTP
					  : IPPROTO_TCP;
	if (n == 4 && ipam_addr_parse(hip, &m->host_ip) < 0)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"in-netns", required_argument, NULL, 'N'},
	    {"node", required_argument, NULL, 'n'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"pod-cidr", required_argument, NULL, 'p'},
	    {"cluster-cidr", required_argument, NULL, 'c'},
	    {"nft-table", required_argument, NULL, 't'},
	    {"ifname", required_argument, NULL, 'i'},
	    {"netns-path", required_argument, NULL, 'P'},
	    {"port", required_argument, NULL, 'o'},
	    {"mtu", required_argument, NULL, 'm'},
	    {0},
	};
	struct np_node_opts no = {0};
	struct np_pod_opts po = {0};
	struct np_port_mapping ports[16];
	struct np_node *node = NULL;
	struct err e = {0};
	const char *cmd, *in_netns = NULL;
	int c, r, rc = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'N':
			in_netns = optarg;
			break;
		case 'n':
			no.node_name = optarg;
			break;
		case 's':
			no.state_dir = optarg;
			break;
		case 'p':
			no.pod_cidr = optarg;
			break;
		case 'c':
			no.cluster_cidr = optarg;
			break;
		case 't':
			no.nft_table = optarg;
			break;
		case 'i':
			po.ifname = optarg;
			break;
		case 'P':
			po.netns_path = optarg;
			break;
		case 'm':
			no.mtu = atoi(optarg);
			break;
		case 'o':
			if (po.nports >= ARRAY_SIZE(ports) ||
			    parse_port(optarg, &ports[po.nports]) < 0) {
				fprintf(stderr, "shoal-netctl: bad --port %s\n", optarg);
				return 2;
			}
			po.nports++;
			break;
		default:
			return 2;
		}
	}
	po.ports = ports;
	if (optind >= argc) {
		fprintf(stderr, "shoal-netctl: missing command\n");
		return 2;
	}
	cmd = argv[optind++];
	if (in_netns) {
		char path[300];
		snprintf(path, sizeof(path), "/run/netns/%s", in_netns);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			perror(path);
			return 1;
		}
		close(fd);
	}

	if (streq(cmd, "podfiles")) {
		if (argc - optind < 6)
			return 2;
		struct np_podfiles_opts pf = {
		    .hostname = argv[optind + 1],
		    .pod_namespace = argv[optind + 2],
		    .cluster_domain = argv[optind + 3],
		    .pod_ip = argv[optind + 4],
		    .nameserver = argv[optind + 5],
		};
		r = np_podfiles_write(argv[optind], &pf, &e);
		return r < 0 ? fail(&e, r, cmd) : 0;
	}

	r = np_node_open(&no, &node, &e);
	if (r < 0)
		return fail(&e, r, "open");
	if (streq(cmd, "node-setup")) {
		r = np_node_setup(node, &e);
	} else if (streq(cmd, "node-teardown")) {
		r = np_node_teardown(node, &e);
	} else if (streq(cmd, "leases")) {
		_cleanup_free_ struct ipam_lease *l = NULL;
		_cleanup_json_ cJSON *arr = cJSON_CreateArray();
		size_t n = 0;
		r = np_node_leases(node, &l, &n, &e);
		for (size_t i = 0; r >= 0 && i < n; i++) {
			cJSON *o = cJSON_CreateObject();
			char ip[16];
			ipam_addr_format(l[i].ip, ip);
			cJSON_AddStringToObject(o, "ip", ip);
			cJSON_AddStringToObject(o, "owner", l[i].owner);
			cJSON_AddStringToObject(o, "ifname", l[i].ifname);
			cJSON_AddStringToObject(o, "netns", l[i].netns);
			cJSON_AddStringToObject(o, "hostVeth", l[i].host_veth);
			cJSON_AddItemToArray(arr, o);
		}
		if (r >= 0)
			print_json(arr);
	} else if (streq(cmd, "hostports-count")) {
		r = np_nft_hostports_count(no.nft_table, optind < argc ? argv[optind] : NULL, &e);
		if (r >= 0)
			printf("%d\n", r);
	} else if (optind < argc) {
		struct np_pod_result res = {0};
		const char *owner = argv[optind];
		po.owner = owner;
		if (streq(cmd, "pod-setup"))
			r = np_pod_setup(node, &po, &res, &e);
		else if (streq(cmd, "pod-teardown"))
			r = np_pod_teardown(node, owner, po.ifname, &e);
		else if (streq(cmd, "pod-check"))
			r = np_pod_check(node, owner, po.ifname, &res, &e);
		else if (streq(cmd, "pod-lookup"))
			r = np_pod_lookup(node, owner, po.ifname, &res, &e);
		else
			r = err_set(&e, EINVAL, 400, "Invalid", "unknown command %s", cmd);
		if (r >= 0 && !streq(cmd, "pod-teardown")) {
			_cleanup_json_ cJSON *j = result_json(&res);
			print_json(j);
		}
	} else {
		r = err_set(&e, EINVAL, 400, "Invalid", "unknown command or missing OWNER: %s",
			    cmd);
	}
	if (r < 0)
		rc = fail(&e, r, cmd);
	np_node_close(node);
	return rc;
}
