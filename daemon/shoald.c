// SPDX-License-Identifier: Apache-2.0
/* shoald: one per machine. Wires config, the local replica, the API and the node's agents. */
#include <arpa/inet.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <event2/event.h>

#include "api/gossip.h"
#include "api/relay.h"
#include "api/server.h"
#include "daemon/bind_confirm.h"
#include "daemon/claims.h"
#include "daemon/config.h"
#include "daemon/ctrl_loop.h"
#include "daemon/dns.h"
#include "daemon/events.h"
#include "daemon/gossip.h"
#include "daemon/healer.h"
#include "daemon/looplag.h"
#include "daemon/routes.h"
#include "daemon/repl.h"
#include "daemon/node.h"
#include "daemon/pods.h"
#include "daemon/podio.h"
#include "daemon/relay.h"
#include "daemon/scheduler.h"
#include "daemon/services.h"
#include "daemon/teardown.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/members.h"
#include "sched/store.h"

struct shoald {
	struct config cfg;
	struct event_base *base;
	struct store *store;
	struct api_server *api;
	struct event *sig_term, *sig_int;
	struct node_agent *node;
	struct svc_repair *svc_repair;
	struct members *members;
	struct gossip *gossip;
	struct looplag *looplag;
	struct routes *routes;
	struct relay *relay;
	struct healer *healer;
	struct ctrl_loop *ctrl;
	struct events_gc *events_gc;
	struct pods *pods;
	struct scheduler *sched;
	struct bind_confirm *confirm;
	struct podio *podio;
	struct svc_proxy *svc;
	struct dns_server *dns;
	struct replication *repl;
};

/* whether a replication round with `node` completed after since_ms (hand-overs, claims) */
static bool shoald_caught_up(void *ud, const char *node, uint64_t since_ms)
{
	struct shoald *d = ud;

	return d->repl && repl_caught_up(replication_repl(d->repl), node, since_ms);
}

/* --test-clock-offset-ms: the store's clock (register versions) runs ahead */
static uint64_t shoald_clock(void *ud)
{
	return util_now_ms() + (uint64_t)((struct shoald *)ud)->cfg.test_clock_offset_ms;
}

static void shoald_binding_settled(void *userdata, const char *uid)
{
	pods_binding_settled(userdata, uid);
}

static int shoald_svc_metrics(void *userdata, char **text)
{
	return svc_proxy_metrics(userdata, text);
}

static int shoald_gossip_members(void *ud, cJSON **ret)
{
	return gossip_members_json(ud, ret);
}

static int shoald_gossip_leave(void *ud, api_gossip_done_fn done, void *ctx)
{
	return gossip_leave(ud, done, ctx);
}

static int shoald_gossip_keys(void *ud, const char *op, const char *key, api_gossip_done_fn done,
			      void *ctx, struct err *e)
{
	static const char *const ops[] = { [GOSSIP_KEYS_LIST] = "list",
					   [GOSSIP_KEYS_INSTALL] = "install",
					   [GOSSIP_KEYS_USE] = "use",
					   [GOSSIP_KEYS_REMOVE] = "remove" };

	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (streq(op, ops[i]))
			return gossip_keys_op(ud, (enum gossip_key_op)i, key, done, ctx, e);
	return err_set(e, EINVAL, 400, "BadRequest", "unknown keyring operation %s", op);
}

/* What other members learn about this node with its gossip alive messages. */
static char *shoald_gossip_meta(const struct config *cfg, struct api_server *api)
{
	_cleanup_json_ cJSON *m = cJSON_CreateObject();
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint8_t pin[API_RELAY_PIN_BYTES];
	char listen[300];

	if (!m)
		return NULL;
	if (cfg->pod_cidr)
		cJSON_AddStringToObject(m, "podCIDR", cfg->pod_cidr);
	cJSON_AddNumberToObject(m, "cpu", cpus > 0 ? (double)cpus : 0);
	cJSON_AddNumberToObject(m, "memoryBytes", (double)util_mem_total_bytes());
	cJSON_AddNumberToObject(m, "maxPods", (double)cfg->max_pods);
	/* where other nodes relay pod I/O to (daemon/relay.h); none with a loopback API */
	if (api_server_relay_endpoint(api, listen, sizeof(listen), pin) == 0 &&
	    relay_meta_add(m, listen, pin) < 0)
		return NULL;
	return cJSON_PrintUnformatted(m);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct shoald *d = arg;

	log_info("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	event_base_loopexit(d->base, NULL);
}

static void shoald_free(struct shoald *d)
{
	d->dns = dns_server_free(d->dns);
	d->relay = relay_free(d->relay);
	d->repl = replication_free(d->repl); /* before gossip: drops pending requests */
	d->looplag = looplag_free(d->looplag);
	d->gossip = gossip_free(d->gossip); /* before the API: it completes pending requests */
	d->ctrl = ctrl_loop_free(d->ctrl);
	d->events_gc = events_gc_free(d->events_gc);
	d->routes = routes_free(d->routes);
	pods_set_admitted(d->pods, NULL, NULL);
	d->sched = scheduler_free(d->sched);
	d->confirm = bind_confirm_free(d->confirm); /* after the scheduler and the replication */
	d->healer = healer_free(d->healer);
	podio_set_pods(d->podio, NULL);
	d->pods = pods_free(d->pods);
	d->svc = svc_proxy_free(d->svc);
	d->node = node_agent_free(d->node);
	d->svc_repair = svc_repair_free(d->svc_repair);
	d->members = members_free(d->members);
	d->api = api_server_free(d->api);
	d->podio = podio_free(d->podio);
	d->store = store_close(d->store);
	if (d->sig_term)
		event_free(d->sig_term);
	if (d->sig_int)
		event_free(d->sig_int);
	if (d->base)
		event_base_free(d->base);
	config_free(&d->cfg);
}

int main(int argc, char **argv)
{
	struct shoald d = { 0 };
	struct err e = { 0 };
	enum log_level lvl = LOG_LVL_INFO;
	_cleanup_free_ char *db = NULL;
	int r;

	bool teardown = false;
	/* --teardown is an action, not a setting: take it out before the options are parsed */
	for (int i = 1; i < argc; i++)
		if (streq(argv[i], "--teardown")) {
			teardown = true;
			memmove(argv + i, argv + i + 1, (argc - i) * sizeof(*argv));
			argc--;
			break;
		}
	r = config_load(&d.cfg, argc, argv, &e);
	if (r == 1)
		return 0;
	if (r < 0) {
		fprintf(stderr, "shoald: %s\n", e.message[0] ? e.message : strerror(-r));
		return 2;
	}
	if (log_level_parse(d.cfg.log_level, &lvl) < 0) {
		fprintf(stderr, "shoald: unknown log level %s\n", d.cfg.log_level);
		return 2;
	}
	log_setup(d.cfg.node_name, lvl);
	signal(SIGPIPE, SIG_IGN);
	if (teardown) {
		r = shoald_teardown(&d.cfg, &e);
		config_free(&d.cfg);
		return r < 0 ? 1 : 0;
	}

	r = util_mkdir_p(d.cfg.state_dir, 0700);
	if (r < 0) {
		log_error_errno(r, "cannot create state dir %s", d.cfg.state_dir);
		goto out;
	}
	r = util_mkdir_p(d.cfg.run_dir, 0700);
	if (r < 0) {
		log_error_errno(r, "cannot create run dir %s", d.cfg.run_dir);
		goto out;
	}

	/* the node's cgroup2 subtree holds the daemon and, by inheritance, its pods: the socket
	 * load balancer learns the pods' network namespaces from it (host scope) or serves exactly
	 * that subtree (subtree scope) */
	char cg[PATH_MAX];
	r = svc_cgroup_enter(d.cfg.cgroup_name, cg, sizeof(cg), &e);
	if (r < 0) {
		log_error_errno(r, "cannot enter cgroup %s: %s", d.cfg.cgroup_name, e.message);
		goto out;
	}

	d.base = event_base_new();
	if (!d.base) {
		r = -ENOMEM;
		goto out;
	}
	if (asprintf(&db, "%s/store.db", d.cfg.state_dir) < 0) {
		r = -ENOMEM;
		goto out;
	}
	struct store_options so = {
		.path = db,
		.node_name = d.cfg.node_name,
		.watch_window = (size_t)d.cfg.watch_window,
		.clock = d.cfg.test_clock_offset_ms ? shoald_clock : NULL,
		.clock_data = &d,
	};
	r = store_open(&so, &d.store);
	if (r < 0) {
		log_error_errno(r, "cannot open store %s", db);
		goto out;
	}

	struct api_server_options ao = {
		.node_name = d.cfg.node_name,
		.listen = d.cfg.api_listen,
		.socket_path = d.cfg.api_socket,
		.state_dir = d.cfg.state_dir,
		.tls_cert = d.cfg.tls_cert,
		.tls_key = d.cfg.tls_key,
		.tls_ca = d.cfg.tls_ca,
		.tokens_file = d.cfg.tokens_file,
		.max_body_bytes = (size_t)d.cfg.max_body_bytes,
		.service_cidr = d.cfg.service_cidr,
	};
	r = api_server_new(d.base, d.store, &ao, &d.api, &e);
	if (r < 0) {
		log_error_errno(r, "cannot start API server: %s", e.message);
		goto out;
	}
	r = podio_new(d.api, &d.cfg, &d.podio, &e);
	if (r < 0) {
		log_error_errno(r, "cannot serve pod I/O: %s", e.message);
		goto out;
	}

	struct svc_proxy_opts po = {
		.node = d.cfg.node_name,
		.cgroup = cg,
		.host_reach = streq(d.cfg.socket_lb_scope, "host"),
		.uplink = d.cfg.uplink,
		.nodeport_auto = true,
		.maglev_seed = (uint32_t)d.cfg.maglev_seed,
	};
	if (d.cfg.node_ip && inet_pton(AF_INET, d.cfg.node_ip, &po.node_ip) != 1) {
		log_error("invalid --node-ip %s", d.cfg.node_ip);
		r = -EINVAL;
		goto out;
	}
	r = svc_proxy_new(d.base, d.store, &po, &d.svc, &e);
	if (r < 0) {
		log_error_errno(r, "cannot start service proxy: %s", e.message);
		goto out;
	}
	r = api_server_add_metrics(d.api, shoald_svc_metrics, d.svc);
	if (r < 0)
		goto out;

	/* the live-member set starts as this node alone; gossip adds the others */
	r = members_new(d.cfg.node_name, &d.members);
	if (r < 0)
		goto out;
	/* with gossip every node replicates the store (daemon/repl.c), so the live members share
	 * one object set and divide the work on it; a lone node owns everything either way */
	members_set_replicated(d.members, !strempty(d.cfg.gossip_listen));
	r = ctrl_loop_new(d.base, d.store, d.members, &d.ctrl);
	if (r < 0) {
		log_error_errno(r, "cannot start controllers");
		goto out;
	}
	r = api_server_add_metrics(d.api, ctrl_loop_metrics, d.ctrl);
	if (r < 0)
		goto out;
	r = events_gc_new(d.base, d.store, d.cfg.node_name, (uint64_t)d.cfg.event_ttl * 1000,
			  &d.events_gc);
	if (r < 0)
		goto out;
	/* service backends on suspect/dead nodes leave rotation; dead nodes' pods are deleted */
	r = svc_proxy_set_members(d.svc, d.members);
	if (r < 0)
		goto out;
	struct healer_opts ho = {
		.node_name = d.cfg.node_name,
		.grace_ms = (uint64_t)d.cfg.dead_node_grace_ms,
		.store = d.store,
		.members = d.members,
	};
	r = healer_new(d.base, &ho, &d.healer);
	r = r ?: api_server_add_metrics(d.api, healer_metrics, d.healer);
	if (r < 0) {
		log_error_errno(r, "cannot start self-healing");
		goto out;
	}
	/* Blocking work (an image import takes 0.15 s on a quiet machine, 0.4-3.5 s at load
	 * 10-20) goes before joining gossip: from the join on, peers probe this node every
	 * 200 ms, and only a running loop answers (the pod CIDR claim's, then dispatch's). */
	if (d.cfg.run_pods && !strempty(d.cfg.image_preload)) {
		r = pods_images_preload(d.cfg.state_dir, d.cfg.image_preload, &e);
		if (r < 0) {
			log_error_errno(r, "cannot import images: %s", e.message);
			goto out;
		}
	}
	if (!strempty(d.cfg.gossip_listen)) {
		_cleanup_free_ char *meta = shoald_gossip_meta(&d.cfg, d.api);
		struct gossip_opts go = {
			.node_name = d.cfg.node_name,
			.state_dir = d.cfg.state_dir,
			.cluster_name = d.cfg.cluster_name,
			.listen = d.cfg.gossip_listen,
			.advertise = d.cfg.gossip_advertise,
			.join = d.cfg.join,
			.key_file = d.cfg.gossip_key_file,
			.meta_json = meta,
			.members = d.members,
		};
		r = gossip_new(d.base, &go, &d.gossip, &e);
		if (r < 0) {
			log_error_errno(r, "cannot start gossip: %s", e.message);
			goto out;
		}
		struct api_gossip ag = {
			.ud = d.gossip,
			.members = shoald_gossip_members,
			.leave = shoald_gossip_leave,
			.keys = shoald_gossip_keys,
		};
		r = api_server_set_gossip(d.api, &ag);
		r = r ?: api_server_add_metrics(d.api, gossip_metrics, d.gossip);
		if (r >= 0)
			gossip_set_heard(d.gossip, healer_heard, d.healer);
		/* pods of other nodes: relay their I/O there */
		r = r ?: relay_new(d.api, d.members, d.gossip, &d.relay);
		if (r < 0)
			goto out;
		struct replication_opts ro = {
			.node_name = d.cfg.node_name,
			.state_dir = d.cfg.state_dir,
			.store = d.store,
			.gossip = d.gossip,
			.members = d.members,
			.clock = shoald_clock,
			.clock_data = &d,
			.ae_interval_ms = (uint32_t)d.cfg.repl_interval_ms,
			.tombstone_horizon_ms = (uint64_t)d.cfg.tombstone_horizon_ms,
		};
		r = replication_new(d.base, &ro, &d.repl);
		if (r < 0) {
			log_error_errno(r, "cannot start replication");
			goto out;
		}
		r = api_server_add_metrics(d.api, replication_metrics, d.repl);
		if (r < 0)
			goto out;
		ctrl_loop_set_replication(d.ctrl, shoald_caught_up, &d,
					  (uint64_t)d.cfg.tombstone_horizon_ms);
		/* joining a cluster: our replica may be stale until a round with a member */
		if (!strempty(d.cfg.join))
			ctrl_loop_hold_until_synced(d.ctrl);
	}
	/* the pod CIDR: claimed from the cluster CIDR unless --pod-cidr named one */
	if (d.cfg.pod_cidr_auto) {
		_cleanup_free_ char *cidr = NULL;
		struct node_podcidr_opts pco = {
			.store = d.store,
			.members = d.members,
			.node_name = d.cfg.node_name,
			.cluster_cidr = d.cfg.cluster_cidr,
			.state_dir = d.cfg.state_dir,
			.prefer = d.cfg.pod_cidr,
			.joining = d.gossip && !strempty(d.cfg.join),
			.join_wait_ms = 10000,
			.settle_ms = (uint64_t)d.cfg.claim_settle_ms,
			.replicated = d.repl != NULL,
			.caught_up = shoald_caught_up,
			.caught_up_ud = &d,
		};
		r = node_podcidr_claim(d.base, &pco, &cidr, &e);
		r = r ?: config_pod_cidr_set(&d.cfg, cidr, &e);
		if (r < 0) {
			log_error_errno(r, "cannot claim a pod CIDR: %s", e.message);
			goto out;
		}
		if (d.gossip) {
			_cleanup_free_ char *meta = shoald_gossip_meta(&d.cfg, d.api);
			r = meta ? gossip_set_meta(d.gossip, meta) : -ENOMEM;
			if (r < 0)
				goto out;
		}
	} else {
		r = node_podcidr_record(d.store, d.cfg.node_name, d.cfg.cluster_cidr, d.cfg.pod_cidr);
		if (r < 0)
			log_warn_errno(r, "pod CIDR %s: cannot record the claim", d.cfg.pod_cidr);
	}
	if (d.gossip) {
		/* the other members' pod CIDRs, before the pod manager: it needs the pod MTU */
		struct routes_opts ro = {
			.node_name = d.cfg.node_name,
			.pod_cidr = d.cfg.pod_cidr,
			.overlay = streq(d.cfg.overlay, "vxlan") ? ROUTES_VXLAN : ROUTES_DIRECT,
			.vxlan_port = (uint16_t)d.cfg.vxlan_port,
			.vxlan_vni = (uint32_t)d.cfg.vxlan_vni,
			.members = d.members,
		};
		r = routes_new(d.base, &ro, &d.routes, &e);
		if (r < 0) {
			log_error_errno(r, "cannot route the pod network: %s", e.message);
			goto out;
		}
		d.cfg.pod_mtu = routes_pod_mtu(d.routes);
		r = api_server_add_metrics(d.api, routes_metrics, d.routes);
		if (r < 0)
			goto out;
	}
	r = node_agent_new(d.base, d.store, &d.cfg, d.members, &d.node);
	if (r < 0) {
		log_error_errno(r, "cannot register node");
		goto out;
	}
	r = svc_repair_new(d.base, d.store, d.members, d.cfg.node_name, &d.svc_repair);
	if (r < 0) {
		log_error_errno(r, "cannot watch for duplicate service addresses");
		goto out;
	}

	if (!strempty(d.cfg.dns_listen)) {
		struct dns_server_options dso = {
			.listen = d.cfg.dns_listen,
			.domain = d.cfg.cluster_domain,
			.resolv_conf = d.cfg.dns_resolv_conf,
		};
		r = dns_server_new(d.base, d.store, &dso, &d.dns, &e);
		if (r < 0) {
			log_error_errno(r, "cannot start cluster DNS: %s", e.message);
			goto out;
		}
	}

	r = d.cfg.run_pods ? pods_new(d.base, d.store, &d.cfg, &d.pods, &e) : 0;
	if (r < 0) {
		log_error_errno(r, "cannot start the pod manager: %s", e.message);
		goto out;
	}
	podio_set_pods(d.podio, d.pods);
	if (d.pods) {
		/* placement: owners propose, this node admits what is proposed to it */
		struct scheduler_opts so = {
			.node_name = d.cfg.node_name,
			.strategy = streq(d.cfg.sched_strategy, "MostAllocated")
					    ? SCHED_MOST_ALLOCATED
					    : SCHED_LEAST_ALLOCATED,
			.test_propose_to = d.cfg.test_sched_propose_to,
			.test_bind_self = d.cfg.test_sched_bind_self == 1,
		};
		/* bindings wait for the other members' answers over replication */
		if (d.repl) {
			r = bind_confirm_new(d.base, d.repl, d.members, d.cfg.node_name,
					     shoald_binding_settled, d.pods, &d.confirm);
			r = r ?: api_server_add_metrics(d.api, bind_confirm_metrics, d.confirm);
			if (r < 0) {
				log_error_errno(r, "cannot start binding confirmation");
				goto out;
			}
			pods_set_binding(d.pods, bind_confirm_binding, d.confirm);
			so.confirm = d.confirm;
		}
		r = api_server_add_metrics(d.api, pods_metrics, d.pods);
		if (r < 0)
			goto out;
		r = scheduler_new(d.base, d.store, d.members, &so, &d.sched);
		r = r ?: api_server_add_metrics(d.api, scheduler_metrics, d.sched);
		if (r < 0) {
			log_error_errno(r, "cannot start the scheduler");
			goto out;
		}
		pods_set_admitted(d.pods, scheduler_admitted, d.sched);
	}

	d.sig_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, on_signal, &d);
	if (!d.sig_term || !d.sig_int || evsignal_add(d.sig_term, NULL) < 0 ||
	    evsignal_add(d.sig_int, NULL) < 0) {
		r = -ENOMEM;
		goto out;
	}

	/* from here on every event waits behind the one before: measure how long */
	r = looplag_new(d.base, &d.looplag);
	r = r ?: api_server_add_metrics(d.api, looplag_metrics, d.looplag);
	if (r < 0)
		goto out;

	log_info("shoald ready: api=%s socket=%s state=%s", d.cfg.api_listen, d.cfg.api_socket,
		 d.cfg.state_dir);
	event_base_dispatch(d.base);
	r = 0;
out:
	shoald_free(&d);
	if (r == 0)
		log_info("shoald stopped");
	return r < 0 ? 1 : 0;
}
