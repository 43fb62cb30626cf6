// SPDX-License-Identifier: Apache-2.0
/*
 * The node's image store over the API, under a Shoal group that discovery does not list
 * (images are node-local, not cluster objects):
 *   GET    /apis/shoal.io/v1/images          ImageList
 *   GET    /apis/shoal.io/v1/images/REF      Image (REF may contain '/', ':' and '@')
 *   DELETE /apis/shoal.io/v1/images/REF      refused (409) while a pod on this node uses it
 *   POST   /apis/shoal.io/v1/images[?name=N] body: an OCI layout tar or docker-save archive
 *                                            (any Content-Type but JSON) -> ImageList imported
 *   POST   /apis/shoal.io/v1/images          JSON {"image":REF,"plainHTTP":..,
 *                                            "insecureSkipTLSVerify":..,"username","password"}
 *                                            -> pull, Image
 * Every operation runs on its own thread with its own store handle: the store's flock is held
 * for a whole import or pull, and the event loop must not wait for it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "api/server-internal.h"
#include "daemon/image.h"
#include "daemon/image_ref.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

#define IMAGES_PREFIX "/apis/shoal.io/v1/images"

DEFINE_CLEANUP_FUNC(struct image_store, image_store_free)

enum img_op { IMG_LIST, IMG_GET, IMG_REMOVE, IMG_IMPORT, IMG_PULL };

struct api_imgjob {
	struct api_imgjob *next, *prev;
	struct api_server *srv;
	struct evhttp_request *req; /* NULL once the client is gone */
	struct evhttp_connection *evcon;
	pthread_mutex_t mu;
	bool orphaned, finished;
	int pipe[2];
	struct event *ev;
	uint64_t start_us;
	/* input (owned by the thread while it runs) */
	enum img_op op;
	char *state_dir, *ref, *name, *upload;
	struct evbuffer *body;
	cJSON *in_use; /* {canonical name: "ns/pod"} for IMG_REMOVE */
	struct image_pull_opts pull;
	char *user, *pass, *ca;
	/* output */
	int rc, code;
	struct err e;
	cJSON *result;
};

static void job_free(struct api_imgjob *j)
{
	if (j->ev)
		event_free(j->ev);
	if (j->pipe[0] >= 0)
		close(j->pipe[0]);
	if (j->pipe[1] >= 0)
		close(j->pipe[1]);
	if (j->body)
		evbuffer_free(j->body);
	if (j->upload) {
		unlink(j->upload);
		free(j->upload);
	}
	pthread_mutex_destroy(&j->mu);
	cJSON_Delete(j->in_use);
	cJSON_Delete(j->result);
	free(j->state_dir);
	free(j->ref);
	free(j->name);
	free(j->user);
	free(j->pass);
	free(j->ca);
	free(j);
}

static void job_unlink(struct api_imgjob *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else if (j->srv->imgjobs == j)
		j->srv->imgjobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->next = j->prev = NULL;
}

static cJSON *image_obj(cJSON *rec)
{
	/* a record as an object with kind/apiVersion, like the other API documents */
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "kind", "Image");
	cJSON_AddStringToObject(o, "apiVersion", "shoal.io/v1");
	for (cJSON *c = rec ? rec->child : NULL; c; c = c->next)
		cJSON_AddItemToObject(o, c->string, cJSON_Duplicate(c, true));
	return o;
}

static cJSON *image_list(cJSON *records)
{
	cJSON *l = cJSON_CreateObject(), *items;

	cJSON_AddStringToObject(l, "kind", "ImageList");
	cJSON_AddStringToObject(l, "apiVersion", "shoal.io/v1");
	items = cJSON_AddArrayToObject(l, "items");
	for (cJSON *c = records ? records->child : NULL; c; c = c->next)
		cJSON_AddItemToArray(items, image_obj(c));
	return l;
}

/* Write the uploaded body to a file the importer can read. */
static int spool_body(struct api_imgjob *j, struct image_store *s)
{
	_cleanup_close_ int fd = -1;

	if (asprintf(&j->upload, "%s/images/tmp/upload-XXXXXX", j->state_dir) < 0) {
		j->upload = NULL;
		return -ENOMEM;
	}
	(void)util_mkdir_p(j->upload, 0700); /* makes .../upload-XXXXXX too: remove it */
	rmdir(j->upload);
	fd = mkostemp(j->upload, O_CLOEXEC);
	if (fd < 0) {
		free(j->upload);
		j->upload = NULL;
		return -errno;
	}
	while (evbuffer_get_length(j->body) > 0) {
		int n = evbuffer_write(j->body, fd);
		if (n < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

static void job_work(struct api_imgjob *j)
{
	_cleanup_(image_store_freep) struct image_store *s = NULL;
	_cleanup_json_ cJSON *recs = NULL, *rec = NULL;
	_cleanup_free_ char *pulled = NULL;
	struct err *e = &j->e;
	int r;

	r = image_store_open(j->state_dir, &s);
	if (r < 0) {
		j->rc = err_set(e, -r, 500, "InternalError", "cannot open the image store: %s",
				strerror(-r));
		return;
	}
	switch (j->op) {
	case IMG_LIST:
		r = image_store_list(s, &recs);
		if (r >= 0)
			j->result = image_list(recs);
		j->code = 200;
		break;
	case IMG_GET:
		r = image_store_get(s, j->ref, &rec, e);
		if (r >= 0)
			j->result = image_obj(rec);
		j->code = 200;
		break;
	case IMG_REMOVE: {
		const char *user;

		r = image_store_get(s, j->ref, &rec, e);
		if (r < 0)
			break;
		user = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(j->in_use, json_str(rec, "name", "")));
		if (user) {
			r = err_set(e, EBUSY, 409, "Conflict",
				    "image %s is in use by pod %s on this node",
				    json_str(rec, "name", j->ref), user);
			break;
		}
		r = image_store_remove(s, j->ref, e);
		if (r >= 0) {
			j->result = api_status_new(200, "", "", "images",
						   json_str(rec, "name", j->ref), NULL);
			cJSON_ReplaceItemInObject(j->result, "status", cJSON_CreateString("Success"));
		}
		j->code = 200;
		break;
	}
	case IMG_IMPORT: {
		_cleanup_json_ cJSON *names = NULL;
		cJSON *n;

		r = spool_body(j, s);
		if (r < 0) {
			err_set(e, -r, 500, "InternalError", "cannot store the upload: %s",
				strerror(-r));
			break;
		}
		r = image_store_import(s, j->upload, j->name, &names, e);
		if (r < 0)
			break;
		recs = cJSON_CreateArray();
		cJSON_ArrayForEach(n, names)
		{
			cJSON *one = NULL;
			if (image_store_get(s, n->valuestring, &one, NULL) >= 0) {
				cJSON_DeleteItemFromObject(one, "config");
				cJSON_AddItemToArray(recs, one);
			}
		}
		j->result = image_list(recs);
		j->code = 201;
		break;
	}
	case IMG_PULL:
		r = image_store_pull(s, j->ref, &j->pull, &pulled, e);
		if (r < 0)
			break;
		r = image_store_get(s, pulled, &rec, e);
		if (r >= 0) {
			cJSON_DeleteItemFromObject(rec, "config");
			j->result = image_obj(rec);
		}
		j->code = 201;
		break;
	}
	j->rc = r;
}

static void *job_thread(void *arg)
{
	struct api_imgjob *j = arg;
	bool orphaned;

	job_work(j);
	pthread_mutex_lock(&j->mu);
	j->finished = true;
	orphaned = j->orphaned;
	if (!orphaned)
		(void)!write(j->pipe[1], "x", 1);
	pthread_mutex_unlock(&j->mu);
	if (orphaned)
		job_free(j);
	return NULL;
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct api_imgjob *j = arg;

	j->req = NULL; /* evhttp frees it; the thread's result is dropped */
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct api_imgjob *j = arg;
	struct api_req r = { .srv = j->srv, .req = j->req, .path = IMAGES_PREFIX,
			     .method_name = "image" };

	/* the thread signals with the lock held: once we hold it, it no longer touches j */
	pthread_mutex_lock(&j->mu);
	pthread_mutex_unlock(&j->mu);
	job_unlink(j);
	if (j->req) {
		evhttp_connection_set_closecb(j->evcon, NULL, NULL);
		if (j->rc < 0) {
			if (!j->e.code && j->rc == -ENOENT)
				err_set(&j->e, ENOENT, 404, "NotFound", "image %s not found",
					j->ref ? j->ref : "");
			api_reply_err(&r, j->rc, &j->e);
		} else if (!j->result) {
			api_reply_status(&r, 500, "InternalError", NULL, NULL, "out of memory");
		} else {
			api_reply_json(&r, j->code, j->result);
		}
		log_info("api: image %s %s -> %d (%llu ms)",
			 (const char *[]){ "list", "get", "remove", "import", "pull" }[j->op],
			 j->ref ? j->ref : "", r.code,
			 (unsigned long long)((util_mono_us() - j->start_us) / 1000));
	}
	job_free(j);
}

bool api_images_match(const char *path)
{
	size_t n = strlen(IMAGES_PREFIX);

	return !strncmp(path, IMAGES_PREFIX, n) && (path[n] == 0 || path[n] == '/');
}

/* {canonical image: "ns/pod"} for the pods of this node that may still run. */
static int node_images_cb(struct store_obj *o, void *ud)
{
	struct api_imgjob *j = ud;
	_cleanup_json_ cJSON *pod = NULL;
	const char *phase = o->phase ? o->phase : "";

	if (!strempty(o->node_name) && !streq(o->node_name, j->srv->node_name))
		return 0;
	if (streq(phase, "Succeeded") || streq(phase, "Failed"))
		return 0;
	pod = store_obj_parse(o);
	if (!pod)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		const cJSON *c;
		cJSON_ArrayForEach(c, json_path(pod, i ? "spec.initContainers" : "spec.containers"))
		{
			struct image_ref ref;
			char name[700], who[512];

			if (image_ref_parse(json_str(c, "image", ""), &ref, NULL) < 0 ||
			    image_ref_format(&ref, name, sizeof(name)) < 0 ||
			    cJSON_GetObjectItemCaseSensitive(j->in_use, name))
				continue;
			snprintf(who, sizeof(who), "%s/%s", o->ns, o->name);
			cJSON_AddStringToObject(j->in_use, name, who);
		}
	}
	return 0;
}

static bool req_is_json(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");

	return ct && strstr(ct, "json");
}

static int pull_args(struct api_req *r, struct api_imgjob *j)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	_cleanup_json_ cJSON *body = NULL;
	const struct image_pull_opts *def = r->srv->podio.pull_opts;
	const char *img;

	body = cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1), len);
	img = json_str(body, "image", NULL);
	if (!body || strempty(img)) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL,
				 "a pull needs a JSON body {\"image\": REFERENCE}");
		return -EINVAL;
	}
	if (def)
		j->pull = *def;
	j->pull.plain_http = json_bool(body, "plainHTTP", j->pull.plain_http);
	j->pull.insecure_skip_verify =
		json_bool(body, "insecureSkipTLSVerify", j->pull.insecure_skip_verify);
	if (json_str(body, "username", NULL)) {
		j->user = strdup(json_str(body, "username", ""));
		j->pass = strdup(json_str(body, "password", ""));
		if (!j->user || !j->pass)
			return -ENOMEM;
		j->pull.username = j->user;
		j->pull.password = j->pass;
	}
	j->ref = strdup(img);
	return j->ref ? 0 : -ENOMEM;
}

void api_images_handle(struct api_req *r)
{
	const char *rest = r->path + strlen(IMAGES_PREFIX);
	struct api_imgjob *j;
	pthread_attr_t attr;
	pthread_t tid;
	int rc;

	if (!api_podio_ready(r, true))
		return;
	while (*rest == '/')
		rest++;
	j = calloc(1, sizeof(*j));
	if (!j) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return;
	}
	j->pipe[0] = j->pipe[1] = -1;
	pthread_mutex_init(&j->mu, NULL);
	j->srv = r->srv;
	j->req = r->req;
	j->evcon = evhttp_request_get_connection(r->req);
	j->start_us = util_mono_us();
	j->state_dir = strdup(r->srv->podio.image_state_dir ? r->srv->podio.image_state_dir : "");
	if (!j->state_dir)
		goto oom;

	if (r->method == EVHTTP_REQ_GET && !*rest) {
		j->op = IMG_LIST;
	} else if (r->method == EVHTTP_REQ_GET) {
		j->op = IMG_GET;
	} else if (r->method == EVHTTP_REQ_DELETE && *rest) {
		j->op = IMG_REMOVE;
		j->in_use = cJSON_CreateObject();
		if (!j->in_use || store_list(r->srv->store, "pods", NULL, NULL, NULL, node_images_cb,
					     j) < 0)
			goto oom;
	} else if (r->method == EVHTTP_REQ_POST && !*rest && req_is_json(r->req)) {
		j->op = IMG_PULL;
		rc = pull_args(r, j);
		if (rc == -ENOMEM)
			goto oom;
		if (rc < 0)
			goto fail;
	} else if (r->method == EVHTTP_REQ_POST && !*rest) {
		const char *name = api_query(r, "name");

		j->op = IMG_IMPORT;
		if (evbuffer_get_length(evhttp_request_get_input_buffer(r->req)) == 0) {
			api_reply_status(r, 400, "BadRequest", NULL, NULL,
					 "an import needs the archive (OCI layout tar or docker save) "
					 "as the request body");
			goto fail;
		}
		j->body = evbuffer_new();
		if (!j->body || (name && !(j->name = strdup(name))))
			goto oom;
		evbuffer_add_buffer(j->body, evhttp_request_get_input_buffer(r->req));
	} else {
		api_reply_status(r, 405, "MethodNotAllowed", NULL, NULL,
				 "the server does not allow this method on the requested resource");
		goto fail;
	}
	if (*rest && !(j->ref = strdup(rest)))
		goto oom;
	if (pipe2(j->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		goto oom;
	j->ev = event_new(r->srv->base, j->pipe[0], EV_READ, on_done, j);
	if (!j->ev || event_add(j->ev, NULL) < 0)
		goto oom;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&tid, &attr, job_thread, j);
	pthread_attr_destroy(&attr);
	if (rc) {
		api_reply_status(r, 503, "ServiceUnavailable", NULL, NULL,
				 "cannot start an image worker: %s", strerror(rc));
		goto fail;
	}
	j->next = r->srv->imgjobs;
	if (j->next)
		j->next->prev = j;
	r->srv->imgjobs = j;
	evhttp_connection_set_closecb(j->evcon, on_close, j);
	r->code = 202; /* for the access log: the reply comes from on_done */
	return;
oom:
	api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
fail:
	job_free(j);
}

void api_images_free_all(struct api_server *srv)
{
	while (srv->imgjobs) {
		struct api_imgjob *j = srv->imgjobs;
		bool finished;

		job_unlink(j);
		if (j->req)
			evhttp_connection_set_closecb(j->evcon, NULL, NULL);
		pthread_mutex_lock(&j->mu);
		finished = j->finished;
		j->orphaned = true;
		if (j->ev) {
			event_free(j->ev);
			j->ev = NULL;
		}
		pthread_mutex_unlock(&j->mu);
		if (finished)
			job_free(j); /* else the thread frees it */
	}
}
