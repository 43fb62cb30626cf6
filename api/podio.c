// SPDX-License-Identifier: Apache-2.0
/*
 * Pod I/O shared by the log and exec handlers: the daemon's runtime handles
 * (api_server_set_podio) and finding the pod and container a request names, with kubelet's
 * messages when that fails.
 */
#include <string.h>

#include "api/server-internal.h"
#include "lib/json.h"
#include "lib/log.h"

#define API_IMAGE_DEFAULT_MAX_BODY (4ULL << 30)

int api_server_set_podio(struct api_server *srv, const struct api_podio *io)
{
	size_t max;

	srv->podio = *io;
	srv->has_podio = true;
	srv->image_max_body = io->image_max_body ? io->image_max_body : API_IMAGE_DEFAULT_MAX_BODY;
	/*
	 * libevent 2.1 enforces one body limit per listener and has no hook between the headers
	 * and the body: with images, the listeners accept uploads up to image_max_body and
	 * on_request refuses bodies over max_body for every other route (server.c).
	 */
	max = io->images && srv->image_max_body > srv->max_body ? srv->image_max_body
								 : srv->max_body;
	if (srv->tcp.http)
		evhttp_set_max_body_size(srv->tcp.http, (ev_ssize_t)max);
	if (srv->unx.http)
		evhttp_set_max_body_size(srv->unx.http, (ev_ssize_t)max);
	return 0;
}

bool api_podio_ready(struct api_req *r, bool images)
{
	struct api_podio *io = &r->srv->podio;

	if (r->srv->has_podio && (images ? io->images != NULL : io->log_path || io->rt))
		return true;
	api_reply_status(r, 503, "ServiceUnavailable", NULL, NULL,
			 "this node's %s is not available yet", images ? "image store" : "runtime");
	return false;
}

void api_pod_ctr_done(struct api_pod_ctr *c)
{
	cJSON_Delete(c->pod);
	free(c->id);
	free(c->last_id);
	memset(c, 0, sizeof(*c));
}

static const cJSON *find_named(const cJSON *arr, const char *name)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, arr)
		if (streq(json_str(c, "name", ""), name))
			return c;
	return NULL;
}

static void names(const cJSON *arr, char *buf, size_t len)
{
	const cJSON *c;
	size_t o = 0;

	buf[0] = 0;
	cJSON_ArrayForEach(c, arr)
		if (o < len)
			o += snprintf(buf + o, len - o, "%s%s", o ? " " : "", json_str(c, "name", ""));
}

static char *strip_scheme(const char *id)
{
	const char *sep = strstr(id, "://");

	return strdup(sep ? sep + 3 : id);
}

int api_pod_ctr_get(struct api_req *r, const char *container, struct api_pod_ctr *ret)
{
	struct store_obj *o = NULL;
	const cJSON *ctrs, *inits, *st, *cs;
	const char *cid;
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = store_get(r->srv->store, "pods", r->ns, r->name, &o);
	if (rc < 0) {
		struct err e = { 0 };
		api_err_from_store(rc, r->res, r->name, &e);
		api_reply_err(r, rc, &e);
		return rc;
	}
	ret->pod = store_obj_parse(o);
	store_obj_unref(o);
	if (!ret->pod) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return -ENOMEM;
	}
	ctrs = json_path(ret->pod, "spec.containers");
	inits = json_path(ret->pod, "spec.initContainers");
	if (strempty(container)) {
		const char *def = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(json_path(ret->pod, "metadata.annotations"),
							 "kubectl.kubernetes.io/default-container"));
		if (def && (find_named(ctrs, def) || find_named(inits, def))) {
			container = def;
		} else if (cJSON_GetArraySize(ctrs) == 1) {
			container = json_str(cJSON_GetArrayItem(ctrs, 0), "name", "");
		} else {
			char a[512], b[512];

			names(ctrs, a, sizeof(a));
			names(inits, b, sizeof(b));
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "a container name must be specified for pod %s, choose one "
					 "of: [%s]%s%s%s",
					 r->name, a, b[0] ? " or one of the init containers: [" : "",
					 b, b[0] ? "]" : "");
			goto fail;
		}
	}
	ret->spec = find_named(ctrs, container);
	st = json_path(ret->pod, "status.containerStatuses");
	if (!ret->spec) {
		ret->spec = find_named(inits, container);
		st = json_path(ret->pod, "status.initContainerStatuses");
	}
	if (!ret->spec) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "container %s is not valid for pod %s", container, r->name);
		goto fail;
	}
	cs = find_named(st, container);
	ret->status = cs;
	ret->running = cs && json_path(cs, "state.running");
	ret->terminated = cs && json_path(cs, "state.terminated");
	ret->waiting = !cs || json_path(cs, "state.waiting");
	cid = cs ? json_str(cs, "containerID", NULL) : NULL;
	if (cid && !(ret->id = strip_scheme(cid)))
		goto oom;
	cid = cs ? json_str(cs, "lastState.terminated.containerID", NULL) : NULL;
	if (cid && !(ret->last_id = strip_scheme(cid)))
		goto oom;
	ret->ref = (struct api_podio_ctr){
		.ns = r->ns,
		.pod = r->name,
		.uid = json_str(ret->pod, "metadata.uid", ""),
		.container = json_str(ret->spec, "name", ""),
		.restart_count = cs ? (int)json_int(cs, "restartCount", 0) : 0,
		.container_id = ret->id,
		.last_container_id = ret->last_id,
	};
	return 0;
oom:
	api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
fail:
	api_pod_ctr_done(ret);
	return -EINVAL;
}

void api_podio_free_all(struct api_server *srv)
{
	api_podlog_free_all(srv);
	api_podexec_free_all(srv);
	api_podattach_free_all(srv);
	api_podfwd_free_all(srv);
	api_images_free_all(srv);
}
