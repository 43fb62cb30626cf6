// SPDX-License-Identifier: Apache-2.0
/* The API's pod I/O on this node's runtime. See podio.h. */
#include <stdlib.h>
#include <string.h>

#include "api/podio.h"
#include "daemon/crun.h"
#include "daemon/image.h"
#include "daemon/podio.h"
#include "daemon/pods.h"
#include "lib/util.h"

struct podio {
	struct pods *pods;
	char *state_dir;
	struct crun_rt *rt;
	struct image_store *images;
};

static int log_path(void *ud, const struct api_podio_ctr *c, bool previous, char **ret)
{
	struct podio *p = ud;
	int attempt = c->container_id ? pods_id_attempt(c->container_id) : -1;

	/* the instance before: lastState's, else the attempt before the current one */
	if (previous) {
		int last = c->last_container_id ? pods_id_attempt(c->last_container_id) : -1;
		attempt = last >= 0 ? last : attempt > 0 ? attempt - 1 : -1;
	}
	if (attempt < 0 || strempty(c->uid) || strchr(c->container, '/') || strchr(c->uid, '/'))
		return -ENOENT;
	return pods_log_path(p->state_dir, c->uid, c->container, attempt, ret);
}

static int netns_path(void *ud, const char *pod_uid, char **ret)
{
	struct podio *p = ud;

	return p->pods ? pods_netns_path(p->pods, pod_uid, ret) : -ENOENT;
}

void podio_set_pods(struct podio *p, struct pods *m)
{
	if (p)
		p->pods = m;
}

int podio_new(struct api_server *api, const struct config *cfg, struct podio **ret,
	      struct err *e)
{
	struct podio *p = calloc(1, sizeof(*p));
	_cleanup_free_ char *croot = NULL, *cstate = NULL;
	int r;

	if (!p || !(p->state_dir = strdup(cfg->state_dir)) ||
	    asprintf(&croot, "%s/crun", cfg->run_dir) < 0 ||
	    asprintf(&cstate, "%s/containers", cfg->run_dir) < 0) {
		podio_free(p);
		return -ENOMEM;
	}
	struct crun_opts co = { .root = croot, .state_dir = cstate,
				.crun_path = getenv("SHOAL_CRUN") };
	r = crun_rt_new(&co, &p->rt);
	if (r < 0) {
		podio_free(p);
		return err_set(e, -r, 0, "", "crun runtime: %s", strerror(-r));
	}
	r = image_store_open(cfg->state_dir, &p->images);
	if (r < 0) {
		podio_free(p);
		return err_set(e, -r, 0, "", "image store in %s: %s", cfg->state_dir,
			       strerror(-r));
	}
	struct api_podio io = {
		.log_path = log_path,
		.netns_path = netns_path,
		.ud = p,
		.rt = p->rt,
		.images = p->images,
		.image_state_dir = p->state_dir,
	};
	api_server_set_podio(api, &io);
	*ret = p;
	return 0;
}

struct podio *podio_free(struct podio *p)
{
	if (!p)
		return NULL;
	crun_rt_free(p->rt);
	image_store_free(p->images);
	free(p->state_dir);
	free(p);
	return NULL;
}
