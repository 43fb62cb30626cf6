// SPDX-License-Identifier: Apache-2.0
/*
 * shoal-dnsd: test/debug driver for the cluster DNS server. shoald's configuration and wiring
 * reduced to the parts DNS needs: the store, the API (so tests create Services and Pods the way
 * users do), the controllers (so Endpoints come from the real Endpoints controller) and
 * dns_server. Takes shoald's flags.
 */
#include <signal.h>
#include <string.h>
#include <event2/event.h>

#include "api/server.h"
#include "daemon/config.h"
#include "daemon/ctrl_loop.h"
#include "daemon/dns.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/members.h"
#include "sched/store.h"

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct err e = {0};
	struct event_base *base = NULL;
	struct store *store = NULL;
	struct api_server *api = NULL;
	struct members *members = NULL;
	struct ctrl_loop *ctrl = NULL;
	struct dns_server *dns = NULL;
	struct event *sig_term = NULL, *sig_int = NULL;
	enum log_level lvl = LOG_LVL_INFO;
	int r;

	r = config_load(&cfg, argc, argv, &e);
	if (r == 1)
		return 0;
	if (r < 0) {
		fprintf(stderr, "shoal-dnsd: %s\n", e.message[0] ? e.message : strerror(-r));
		return 2;
	}
	/* no replica to claim a pod CIDR in: take what a lone shoald claims */
	if (!cfg.pod_cidr && config_pod_cidr_set(&cfg, "10.244.0.0/24", &e) < 0) {
		fprintf(stderr, "shoal-dnsd: %s\n", e.message);
		return 2;
	}
	log_level_parse(cfg.log_level, &lvl);
	log_setup(cfg.node_name, lvl);
	signal(SIGPIPE, SIG_IGN);
	r = util_mkdir_p(cfg.run_dir, 0700);
	base = event_base_new();
	if (r < 0 || !base)
		goto out;
	struct store_options so = {.path = ":memory:", .node_name = cfg.node_name};
	r = store_open(&so, &store);
	if (r < 0)
		goto out;
	struct api_server_options ao = {
	    .node_name = cfg.node_name,
	    .listen = "",
	    .socket_path = cfg.api_socket,
	    .state_dir = cfg.state_dir,
	    .max_body_bytes = (size_t)cfg.max_body_bytes,
	};
	r = api_server_new(base, store, &ao, &api, &e);
	if (r < 0) {
		log_error_errno(r, "cannot start API server: %s", e.message);
		goto out;
	}
	r = members_new(cfg.node_name, &members);
	r = r ?: ctrl_loop_new(base, store, members, &ctrl);
	if (r < 0)
		goto out;

	/* --- the lines shoald needs --- */
	if (!strempty(cfg.dns_listen)) {
		struct dns_server_options dso = {
		    .listen = cfg.dns_listen,
		    .domain = cfg.cluster_domain,
		    .resolv_conf = cfg.dns_resolv_conf,
		};
		r = dns_server_new(base, store, &dso, &dns, &e);
		if (r < 0) {
			log_error_errno(r, "cannot start cluster DNS: %s", e.message);
			goto out;
		}
	}
	/* --- */

	sig_term = evsignal_new(base, SIGTERM, on_signal, base);
	sig_int = evsignal_new(base, SIGINT, on_signal, base);
	if (!sig_term || !sig_int || evsignal_add(sig_term, NULL) < 0 ||
	    evsignal_add(sig_int, NULL) < 0) {
		r = -ENOMEM;
		goto out;
	}
	log_info("shoal-dnsd ready: dns=%s socket=%s", cfg.dns_listen, cfg.api_socket);
	event_base_dispatch(base);
	r = 0;
out:
	dns = dns_server_free(dns);
	ctrl = ctrl_loop_free(ctrl);
	members = members_free(members);
	api = api_server_free(api);
	store = store_close(store);
	if (sig_term)
		event_free(sig_term);
	if (sig_int)
		event_free(sig_int);
	if (base)
		event_base_free(base);
	config_free(&cfg);
	return r < 0 ? 1 : 0;
}
