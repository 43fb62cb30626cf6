// SPDX-License-Identifier: Apache-2.0
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/config.h"
#include "lib/util.h"
#include "lib/yaml.h"
#include "netplugin/ipam.h"

enum opt_kind { OPT_STR, OPT_LONG };

struct opt_def {
	const char *name;
	enum opt_kind kind;
	size_t off;
	const char *help;
};

#define STR(f, h) { #f, OPT_STR, offsetof(struct config, f), h }
#define NUM(f, h) { #f, OPT_LONG, offsetof(struct config, f), h }

/* flag names are these with '_' -> '-'; config-file keys accept both spellings */
static const struct opt_def opts[] = {
	STR(node_name, "node name (default: hostname)"),
	STR(state_dir, "state directory (default /var/lib/shoal/<node>)"),
	STR(run_dir, "runtime directory (default /run/shoal/<node>)"),
	STR(api_listen, "API address host:port (default 127.0.0.1:6443; \"\" disables)"),
	STR(api_socket, "API unix socket (default <run-dir>/api.sock)"),
	STR(tls_cert, "TLS certificate for non-loopback API (generated if absent)"),
	STR(tls_key, "TLS key for non-loopback API"),
	STR(tls_ca, "CA certificate (generated with the serving certificate)"),
	STR(tokens_file, "bearer tokens file: token,user,uid[,\"group1,group2\"]"),
	STR(pod_cidr, "this node's pod CIDR (default: claim a free /24 of the cluster CIDR; on a "
		      "new lone node 10.244.0.0/24)"),
	STR(service_cidr, "service ClusterIP CIDR (default 10.96.0.0/12)"),
	STR(cluster_cidr, "cluster pod CIDR, not masqueraded (default 10.244.0.0/16)"),
	STR(image_preload, "OCI layouts/archives to import at start, comma-separated"),
	STR(cluster_domain, "cluster DNS domain (default cluster.local)"),
	STR(dns_listen, "cluster DNS host:port (default <pod CIDR network+1>:53; \"\" disables)"),
	STR(dns_resolv_conf, "upstream nameservers for other names (default /etc/resolv.conf)"),
	STR(bpf_pin_dir, "bpffs pin directory (default /sys/fs/bpf/shoal/<node>)"),
	STR(cgroup_name, "cgroup subtree name (default shoal-<node>)"),
	STR(nft_table, "nftables table name (default shoal-<node>)"),
	STR(log_level, "debug|info|warn|error (default info)"),
	STR(uplink, "interface serving NodePort/externalIPs in tc (default: the interfaces of the "
		    "default route, followed as they change)"),
	STR(node_ip, "node address for NodePort SNAT (default: the uplink's first IPv4)"),
	STR(gossip_listen, "gossip UDP+TCP address (default 0.0.0.0:7946; \"\" disables)"),
	STR(gossip_advertise, "address other members reach (default: listen IP, else detected)"),
	STR(join, "gossip seeds host:port,... (any members of the cluster)"),
	STR(cluster_name, "cluster name bound into every gossip packet (default shoal)"),
	STR(gossip_key_file, "base64 32-byte cluster key for a new keyring (default: generate)"),
	STR(overlay, "pod network between nodes: none (direct routes over a shared link) or vxlan "
		     "(default none)"),
	NUM(vxlan_port, "VXLAN UDP port with --overlay vxlan (default 4789)"),
	NUM(vxlan_vni, "VXLAN network identifier with --overlay vxlan (default 1)"),
	STR(sched_strategy, "placement score: LeastAllocated (spread) or MostAllocated "
			    "(bin-packing) (default LeastAllocated)"),
	STR(test_sched_propose_to, "test only: owners propose every pod onto this node first"),
	NUM(test_sched_bind_self, "test only: 1: every node binds every pending pod to itself "
				  "(two bindings of one pod at once)"),
	NUM(dead_node_grace_ms, "a dead node's pods are deleted (and replaced elsewhere) this long "
				"after membership declares it dead (default 5000)"),
	NUM(maglev_seed, "Maglev seed, the same on every node (default 0)"),
	NUM(max_pods, "pods this node accepts (default 110)"),
	STR(node_labels, "labels of this node's Node, k=v,... (e.g. topology.kubernetes.io/zone=a)"),
	NUM(node_left_grace, "seconds before the Node of a member that left is removed (default 60)"),
	NUM(node_dead_grace, "seconds before the Node of a dead or forgotten member is removed "
			     "(default 3600)"),
	NUM(claim_settle_ms, "how long a claim (pod CIDR) must stand unchallenged after this node "
			     "caught up with the cluster before it is used (default 2000)"),
	NUM(run_pods, "1: run the pods bound to this node; 0: API and controllers only (default 1)"),
	NUM(watch_window, "events kept for watch resume (default 100000)"),
	NUM(event_ttl, "seconds an Event lives after its last update, deleted by the node that "
		       "wrote it (default 3600)"),
	STR(socket_lb_scope, "host: every process of the node reaches services (socket LB at the "
			     "cgroup2 root, acting on this node's netns only); subtree: only the "
			     "node's cgroup subtree (default host)"),
	NUM(max_body_bytes, "largest request body accepted (default 3145728)"),
	NUM(repl_interval_ms, "replication anti-entropy period (default 2000)"),
	NUM(tombstone_horizon_ms, "deleted objects' tombstones kept at least this long, and a node "
				  "away longer resyncs pull-only (default 3600000)"),
	NUM(test_clock_offset_ms, "tests only: run this node's clock ahead by this much"),
};

static char **opt_str(struct config *cfg, const struct opt_def *o)
{
	return (char **)((char *)cfg + o->off);
}

static int opt_set(struct config *cfg, const struct opt_def *o, const char *val, struct err *e)
{
	if (o->kind == OPT_STR) {
		char **p = opt_str(cfg, o);
		free(*p);
		*p = strdup(val);
		return *p ? 0 : -ENOMEM;
	}
	char *end;
	long v = strtol(val, &end, 10);
	if (!*val || *end || v < 0)
		return err_set(e, EINVAL, 0, "", "option %s: not a non-negative number: %s",
			       o->name, val);
	*(long *)((char *)cfg + o->off) = v;
	return 0;
}

static const struct opt_def *opt_find(const char *name)
{
	char buf[64];
	size_t i;

	for (i = 0; name[i] && i < sizeof(buf) - 1; i++)
		buf[i] = name[i] == '-' ? '_' : name[i];
	buf[i] = 0;
	/* camelCase keys too (nodeName) */
	char snake[128];
	size_t o = 0;
	for (i = 0; buf[i] && o < sizeof(snake) - 2; i++) {
		if (buf[i] >= 'A' && buf[i] <= 'Z') {
			snake[o++] = '_';
			snake[o++] = buf[i] - 'A' + 'a';
		} else
			snake[o++] = buf[i];
	}
	snake[o] = 0;
	for (size_t k = 0; k < ARRAY_SIZE(opts); k++)
		if (streq(opts[k].name, snake))
			return &opts[k];
	return NULL;
}

static int config_file_load(struct config *cfg, const char *path, struct err *e)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_json_ cJSON *doc = NULL;
	size_t len;
	cJSON *it;
	int r;

	r = util_read_file(path, 1 << 20, &buf, &len);
	if (r < 0)
		return err_set(e, -r, 0, "", "cannot read config file %s: %s", path, strerror(-r));
	r = yaml_parse_one(buf, len, &doc, e);
	if (r < 0)
		return err_set(e, -r, 0, "", "config file %s: %s", path, e ? e->message : "invalid");
	if (!cJSON_IsObject(doc))
		return err_set(e, EINVAL, 0, "", "config file %s: expected a mapping", path);
	cJSON_ArrayForEach(it, doc)
	{
		const struct opt_def *o = opt_find(it->string);
		char num[32];
		const char *val;

		if (!o)
			return err_set(e, EINVAL, 0, "", "config file %s: unknown key %s", path,
				       it->string);
		if (cJSON_IsString(it))
			val = it->valuestring;
		else if (cJSON_IsNumber(it)) {
			snprintf(num, sizeof(num), "%.0f", it->valuedouble);
			val = num;
		} else
			return err_set(e, EINVAL, 0, "", "config file %s: %s: expected a scalar",
				       path, it->string);
		r = opt_set(cfg, o, val, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int default_str(char **p, const char *fmt, const char *arg)
{
	if (*p)
		return 0;
	return asprintf(p, fmt, arg) < 0 ? -ENOMEM : 0;
}

void config_usage(FILE *f)
{
	fprintf(f, "usage: shoald [--config FILE] [--OPTION VALUE]...\n\noptions:\n");
	fprintf(f, "  %-18s %s\n", "--config", "YAML/JSON file with the options below as keys");
	fprintf(f, "  %-18s %s\n", "--teardown",
		"decommission the node: containers, mounts, pod netns, pins, nft, cgroups");
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		char flag[64];
		size_t k;
		for (k = 0; opts[i].name[k]; k++)
			flag[k] = opts[i].name[k] == '_' ? '-' : opts[i].name[k];
		flag[k] = 0;
		fprintf(f, "  --%-16s %s\n", flag, opts[i].help);
	}
}

int config_load(struct config *cfg, int argc, char **argv, struct err *e)
{
	const char *config_path = NULL;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_pods = 110;
	cfg->run_pods = 1;
	cfg->watch_window = 100000;
	cfg->event_ttl = 3600;
	cfg->max_body_bytes = 3 << 20;
	cfg->node_left_grace = 60;
	cfg->node_dead_grace = 3600;
	cfg->claim_settle_ms = 2000;
	cfg->repl_interval_ms = 2000;
	cfg->tombstone_horizon_ms = 3600 * 1000;

	/* first pass: --config and --help, so flags override the file */
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
			config_usage(stdout);
			return 1;
		}
		if (streq(argv[i], "--config")) {
			if (i + 1 >= argc)
				return err_set(e, EINVAL, 0, "", "--config needs a value");
			config_path = argv[++i];
		} else if (!strncmp(argv[i], "--config=", 9))
			config_path = argv[i] + 9;
	}
	if (config_path) {
		r = config_file_load(cfg, config_path, e);
		if (r < 0)
			return r;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val;
		char name[64];
		const struct opt_def *o;

		if (strncmp(arg, "--", 2))
			return err_set(e, EINVAL, 0, "", "unexpected argument: %s", arg);
		arg += 2;
		const char *eq = strchr(arg, '=');
		size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
		if (n >= sizeof(name))
			return err_set(e, EINVAL, 0, "", "unknown option: --%s", arg);
		memcpy(name, arg, n);
		name[n] = 0;
		if (streq(name, "config")) {
			if (!eq)
				i++;
			continue;
		}
		o = opt_find(name);
		if (!o)
			return err_set(e, EINVAL, 0, "", "unknown option: --%s (see --help)", name);
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return err_set(e, EINVAL, 0, "", "option --%s needs a value", name);
		r = opt_set(cfg, o, val, e);
		if (r < 0)
			return r;
	}

	if (!cfg->node_name) {
		char host[HOST_NAME_MAX + 1] = "";
		gethostname(host, sizeof(host) - 1);
		for (char *p = host; *p; p++)
			*p = (*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p;
		cfg->node_name = strdup(*host ? host : "node");
		if (!cfg->node_name)
			return -ENOMEM;
	}
	if (!util_dns1123_subdomain(cfg->node_name))
		return err_set(e, EINVAL, 0, "", "node name \"%s\" is not a DNS-1123 subdomain",
			       cfg->node_name);
	r = default_str(&cfg->state_dir, "/var/lib/shoal/%s", cfg->node_name);
	r = r ?: default_str(&cfg->run_dir, "/run/shoal/%s", cfg->node_name);
	r = r ?: default_str(&cfg->api_listen, "%s", "127.0.0.1:6443");
	r = r ?: default_str(&cfg->api_socket, "%s/api.sock", cfg->run_dir);
	r = r ?: default_str(&cfg->service_cidr, "%s", "10.96.0.0/12");
	r = r ?: default_str(&cfg->cluster_cidr, "%s", "10.244.0.0/16");
	r = r ?: default_str(&cfg->cluster_domain, "%s", "cluster.local");
	r = r ?: default_str(&cfg->dns_resolv_conf, "%s", "/etc/resolv.conf");
	if (r == 0 && (!cfg->pod_cidr || streq(cfg->pod_cidr, "") || streq(cfg->pod_cidr, "auto"))) {
		/* claimed from the cluster CIDR at start; a restart reuses the settled claim */
		_cleanup_free_ char *path = NULL, *text = NULL;
		size_t len;
		free(cfg->pod_cidr);
		cfg->pod_cidr = NULL;
		cfg->pod_cidr_auto = true;
		if (asprintf(&path, "%s/pod-cidr", cfg->state_dir) < 0)
			return -ENOMEM;
		if (util_read_file(path, 64, &text, &len) >= 0) {
			text[strcspn(text, "\n")] = 0;
			r = config_pod_cidr_set(cfg, text, e);
		}
	} else if (r == 0)
		r = config_pod_cidr_set(cfg, cfg->pod_cidr, e);
	r = r ?: default_str(&cfg->bpf_pin_dir, "/sys/fs/bpf/shoal/%s", cfg->node_name);
	r = r ?: default_str(&cfg->cgroup_name, "shoal-%s", cfg->node_name);
	r = r ?: default_str(&cfg->nft_table, "shoal-%s", cfg->node_name);
	r = r ?: default_str(&cfg->log_level, "%s", "info");
	r = r ?: default_str(&cfg->socket_lb_scope, "%s", "host");
	if (r == 0 && !streq(cfg->socket_lb_scope, "host") &&
	    !streq(cfg->socket_lb_scope, "subtree"))
		return err_set(e, EINVAL, 0, "",
			       "--socket-lb-scope must be host or subtree, not %s",
			       cfg->socket_lb_scope);
	r = r ?: default_str(&cfg->sched_strategy, "%s", "LeastAllocated");
	if (r == 0 && !streq(cfg->sched_strategy, "LeastAllocated") &&
	    !streq(cfg->sched_strategy, "MostAllocated"))
		return err_set(e, EINVAL, 0, "",
			       "--sched-strategy must be LeastAllocated or MostAllocated, not %s",
			       cfg->sched_strategy);
	r = r ?: default_str(&cfg->gossip_listen, "%s", "0.0.0.0:7946");
	r = r ?: default_str(&cfg->cluster_name, "%s", "shoal");
	r = r ?: default_str(&cfg->overlay, "%s", "none");
	if (r == 0 && !streq(cfg->overlay, "none") && !streq(cfg->overlay, "vxlan"))
		return err_set(e, EINVAL, 0, "", "--overlay must be none or vxlan, not %s",
			       cfg->overlay);
	if (r == 0 && (cfg->vxlan_port > 65535 || cfg->vxlan_vni >= 1 << 24))
		return err_set(e, EINVAL, 0, "", "--vxlan-port is 1..65535, --vxlan-vni 1..16777215");
	if (r == 0 && cfg->event_ttl < 1)
		return err_set(e, EINVAL, 0, "", "--event-ttl is at least 1 (seconds)");
	return r;
}

int config_pod_cidr_set(struct config *cfg, const char *cidr, struct err *e)
{
	struct ipam_range range;
	char ip[16];
	int r;

	r = ipam_range_parse(cidr, NULL, NULL, &range, e);
	if (r < 0)
		return r;
	if (cfg->pod_cidr != cidr) {
		char *c = strdup(cidr);
		if (!c)
			return -ENOMEM;
		free(cfg->pod_cidr);
		cfg->pod_cidr = c;
	}
	if (cfg->dns_listen && !cfg->dns_listen_auto)
		return 0;
	/* the node's reserved pod-CIDR address, which pods' resolv.conf names */
	ipam_addr_format(range.gateway, ip);
	free(cfg->dns_listen);
	cfg->dns_listen = NULL;
	cfg->dns_listen_auto = true;
	return default_str(&cfg->dns_listen, "%s:53", ip);
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (opts[i].kind == OPT_STR) {
			free(*opt_str(cfg, &opts[i]));
			*opt_str(cfg, &opts[i]) = NULL;
		}
}
