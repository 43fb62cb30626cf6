/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pod manager ("kubelet"): makes every pod whose spec.nodeName names this node run here
 * (daemon/scheduler.c binds pending pods). It admits pods bound directly against the node's
 * allocatable resources and host ports, plumbs the pod network (netplugin/), pulls or finds images, runs
 * init containers then containers through crun + shoal-shim, restarts them with back-off,
 * probes them, reports status and Events, and tears everything down on deletion. Containers
 * outlive the daemon; a restarted daemon re-adopts them.
 *
 * On-disk layout (under the node's state dir and run dir):
 *   <state_dir>/pods/<uid>/                     pod dir: hosts, resolv.conf, hostname, ns/{ipc,uts},
 *                                               volumes/<name>, .setup-done
 *   <state_dir>/pods/<uid>/containers/<id>/     bundle: config.json, rootfs (overlay), upper, work,
 *                                               termination-log
 *   <state_dir>/pods/<uid>/logs/<container>/<attempt>.log   CRI-format log of one container instance
 *   <run_dir>/containers/<id>/                  shim files (exit.json, shim.pid, ...), see crun.h
 * Container ids: "<first 12 hex digits of the pod uid>-<c|i><index>-<attempt>", attempt counting
 * every container instance created for that slot. status.containerStatuses[].containerID is
 * "crun://<id>".
 */
#ifndef SHOAL_DAEMON_PODS_H
#define SHOAL_DAEMON_PODS_H

#include <stdbool.h>
#include <event2/event.h>

#include "daemon/config.h"
#include "lib/err.h"
#include "sched/store.h"

struct pods;

int pods_new(struct event_base *base, struct store *store, const struct config *cfg,
	     struct pods **ret, struct err *e);
/* Stops managing; running containers are left alone (a restarted daemon re-adopts them). */
struct pods *pods_free(struct pods *m);

/* The scheduler's answer to "was this pod admitted against the node's ledger?": such pods skip
 * the kubelet's own resource check (pods bound directly, spec.nodeName at create, still get it). */
typedef bool (*pods_admitted_fn)(void *userdata, const char *uid);
void pods_set_admitted(struct pods *m, pods_admitted_fn fn, void *userdata);

/*
 * Whether this node's binding of a pod stands (daemon/bind_confirm.h): PENDING holds the pod's
 * containers (the sandbox and network are set up) and its status writes; LOST removes it here
 * without starting anything or writing it. A pod not asked about stands (bound at create,
 * adopted after a restart). pods_binding_settled says the answer changed.
 */
enum pods_binding { PODS_BINDING_STANDS, PODS_BINDING_PENDING, PODS_BINDING_LOST };
typedef enum pods_binding (*pods_binding_fn)(void *userdata, const char *uid);
void pods_set_binding(struct pods *m, pods_binding_fn fn, void *userdata);
void pods_binding_settled(struct pods *m, const char *uid);
/* /metrics (api_metrics_fn): bindings lost by this node, before or after a container started. */
int pods_metrics(void *m, char **text);

/* Import OCI layouts/archives (comma-separated paths) into the image store of state_dir. Needs
 * no pod manager: the daemon runs it before joining gossip, as it blocks. */
int pods_images_preload(const char *state_dir, const char *paths, struct err *e);

/* Helpers for log/exec: the crun id of a status containerID ("crun://<id>" -> "<id>"), its
 * attempt number, and the log file of a container instance. */
const char *pods_container_id(const char *container_id);
int pods_id_attempt(const char *id);
int pods_log_path(const char *state_dir, const char *pod_uid, const char *container, int attempt,
		  char **ret);
/* For port-forward: the network namespace (a path) of the pod with this uid while its network
 * is set up on this node; -ENOENT before setup, after teardown or for an unknown pod. */
int pods_netns_path(struct pods *m, const char *uid, char **ret);

#endif
