/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node-local I/O the API serves around pods: container logs (api/podlog.c,
 * GET .../pods/NAME/log), exec (api/podexec.c, .../pods/NAME/exec over WebSocket),
 * port-forward (api/podfwd.c, .../pods/NAME/portforward over WebSocket) and the
 * image store (api/images.c, /apis/shoal.io/v1/images). These need the daemon's runtime
 * handles, which the daemon hands over once they exist with api_server_set_podio(); until
 * then those routes answer 503.
 */
#ifndef SHOAL_API_PODIO_H
#define SHOAL_API_PODIO_H

#include <stdbool.h>
#include <stddef.h>
#include "lib/err.h"

struct api_server;
struct crun_rt;
struct image_store;
struct image_pull_opts;

/* One container of a pod, as the pod manager knows it. */
struct api_podio_ctr {
	const char *ns, *pod, *uid; /* the pod (uid from the stored object) */
	const char *container;      /* a name from spec.containers or spec.initContainers */
	int restart_count;          /* status.containerStatuses[].restartCount (0 if none) */
	const char *container_id;   /* status containerID without "scheme://", NULL if none */
	const char *last_container_id; /* lastState.terminated.containerID, likewise */
};

struct api_podio {
	/*
	 * The CRI log file of a container: the current (or last) instance, or with previous the
	 * instance before it. *ret malloc'd; -ENOENT if there is none. Required for logs.
	 */
	int (*log_path)(void *ud, const struct api_podio_ctr *c, bool previous, char **ret);
	/*
	 * The crun id of the container's running instance, *ret malloc'd; -ENOENT if it is not
	 * running. NULL: the status containerID is used.
	 */
	int (*exec_id)(void *ud, const struct api_podio_ctr *c, char **ret);
	/*
	 * The network namespace (a path to open) of the pod with this uid, *ret malloc'd;
	 * -ENOENT if its network is not set up on this node. NULL: portforward answers 503.
	 */
	int (*netns_path)(void *ud, const char *pod_uid, char **ret);
	void *ud;
	struct crun_rt *rt;          /* exec; NULL: exec answers 503 */
	/* Images: the daemon's store and the state dir it was opened with (imports and pulls run
	 * on a thread with their own handle, so the event loop never waits for them). */
	struct image_store *images;  /* NULL: image routes answer 503 */
	const char *image_state_dir;
	const struct image_pull_opts *pull_opts; /* defaults for pulls (may be NULL) */
	size_t image_max_body;       /* largest image upload; 0: 4 GiB */
};

/* Copy io (the pointers it holds must outlive the server). */
int api_server_set_podio(struct api_server *srv, const struct api_podio *io);

#endif
