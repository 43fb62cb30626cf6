// SPDX-License-Identifier: Apache-2.0
#include <string.h>
#include <sys/utsname.h>
#include <event2/event.h>

#include "api/object.h"
#include "daemon/claims.h"
#include "daemon/image.h"
#include "daemon/node.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

/* how often the gossip view is compared with what the Nodes say (nothing is written unless a
 * member changed state or a grace period ran out) */
#define NODE_VIEW_CHECK_MS 500
#define NODE_MAX_IMAGES 50 /* the kubelet's nodeStatusMaxImages */

/* One other member as this agent last saw it. */
struct node_peer {
	char *name;
	int state;	      /* enum members_state, or NODE_ABSENT */
	uint64_t since_ms;    /* when it entered that state (0: alive) */
	uint32_t unknown_inc; /* incarnation Ready=Unknown was written for */
	bool unknown_done;
};

#define NODE_ABSENT (-1)

struct node_agent {
	struct store *store;
	const struct config *cfg;
	struct members *members;
	struct store_watch *watch;
	struct event *tick, *kick;
	cJSON *labels; /* --node-labels */
	char arch[16];
	uint64_t view_sig;
	uint64_t next_deadline_ms; /* earliest grace expiry to act on (0: none) */
	uint64_t cluster_seen_ms;  /* first time the view held another member */
	struct node_peer *peers;
	size_t npeers, cap;
	/* status.images from the node's image store, re-read when its index changes */
	struct image_store *images;
	uint64_t images_stamp;
	cJSON *images_status;
};

int node_labels_parse(const char *text, cJSON **ret, struct err *e)
{
	_cleanup_json_ cJSON *o = cJSON_CreateObject();
	_cleanup_free_ char *copy = text ? strdup(text) : NULL;
	char *save = NULL;

	if (!o || (text && !copy))
		return -ENOMEM;
	for (char *it = copy ? strtok_r(copy, ",", &save) : NULL; it;
	     it = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(it, '=');
		while (*it == ' ')
			it++;
		if (!*it)
			continue;
		if (!eq || eq == it)
			return err_set(e, EINVAL, 0, "", "--node-labels: \"%s\" is not key=value",
				       it);
		*eq = 0;
		json_set_str(o, it, eq + 1);
	}
	*ret = TAKE_PTR(o);
	return 0;
}

/* GOARCH names, as kubernetes.io/arch has them */
static void node_arch(char *buf, size_t len)
{
	struct utsname un;
	const char *a = "amd64";

	if (uname(&un) == 0 && !streq(un.machine, "x86_64"))
		a = streq(un.machine, "aarch64") ? "arm64" : un.machine;
	snprintf(buf, len, "%.15s", a);
}

/* InternalIP: the address gossip advertises (what other members reach), else --node-ip. */
static void node_internal_ip(struct node_agent *n, char *buf, size_t len)
{
	const struct members_info *self = members_view_find(n->members, n->cfg->node_name);
	const char *colon;

	buf[0] = 0;
	if (self && !strempty(self->address) && (colon = strrchr(self->address, ':')) &&
	    (size_t)(colon - self->address) < len) {
		memcpy(buf, self->address, colon - self->address);
		buf[colon - self->address] = 0;
	} else if (!strempty(n->cfg->node_ip))
		snprintf(buf, len, "%s", n->cfg->node_ip);
}

static cJSON *cond_find(cJSON *status, const char *type)
{
	cJSON *c;

	cJSON_ArrayForEach(
	    c, json_path(status, "conditions")) if (streq(json_str(c, "type", ""), type)) return c;
	return NULL;
}

/* Set the Ready condition; timestamps move only when the status does. */
static void cond_ready_set(cJSON *status, const char *value, const char *reason,
			   const char *message, const char *now)
{
	cJSON *conds = json_path(status, "conditions"), *c;

	if (!cJSON_IsArray(conds)) {
		conds = cJSON_CreateArray();
		json_set(status, "conditions", conds);
	}
	c = cond_find(status, "Ready");
	if (!c) {
		c = cJSON_CreateObject();
		json_set_str(c, "type", "Ready");
		cJSON_AddItemToArray(conds, c);
	}
	if (!streq(json_str(c, "status", ""), value)) {
		json_set_str(c, "status", value);
		json_set_str(c, "lastTransitionTime", now);
		json_set_str(c, "lastHeartbeatTime", now);
	}
	json_set_str(c, "reason", reason);
	json_set_str(c, "message", message);
}

static bool json_same(const cJSON *a, const cJSON *b);

/* The repository of an image name: "docker.io/library/busybox:latest" -> ".../busybox". */
static size_t repo_len(const char *name)
{
	const char *at = strchr(name, '@'), *slash = strrchr(name, '/'), *colon;

	if (at)
		return (size_t)(at - name);
	colon = strrchr(slash ? slash : name, ':');
	return colon ? (size_t)(colon - name) : strlen(name);
}

static int cmp_image_size(const void *a, const void *b)
{
	int64_t x = json_int(*(cJSON *const *)a, "sizeBytes", 0),
		y = json_int(*(cJSON *const *)b, "sizeBytes", 0);

	return x < y ? 1 : x > y ? -1 : 0;
}

static bool names_has(const cJSON *names, const char *s)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, names)
	{
		if (cJSON_IsString(it) && streq(it->valuestring, s))
			return true;
	}
	return false;
}

int node_images_status(const cJSON *records, size_t max, cJSON **ret)
{
	_cleanup_json_ cJSON *out = cJSON_CreateArray();
	_cleanup_free_ cJSON **v = NULL;
	const cJSON *rec;
	size_t n = 0, cap = (size_t)cJSON_GetArraySize(records);

	if (!out || (cap && !(v = calloc(cap, sizeof(*v)))))
		return -ENOMEM;
	/* one entry per image (manifest digest), however many names point at it */
	cJSON_ArrayForEach(rec, records)
	{
		const char *name = json_str(rec, "name", NULL), *dg = json_str(rec, "digest", NULL);
		cJSON *e = NULL, *names;
		char ref[1024];

		if (!name)
			continue;
		for (size_t i = 0; i < n && dg; i++)
			if (streq(json_str(v[i], "digest", ""), dg))
				e = v[i];
		if (!e) {
			e = cJSON_CreateObject();
			if (!e || !cJSON_AddArrayToObject(e, "names") ||
			    !cJSON_AddNumberToObject(e, "sizeBytes",
						     (double)json_int(rec, "size", 0)) ||
			    (dg && !cJSON_AddStringToObject(e, "digest", dg))) {
				cJSON_Delete(e);
				goto oom;
			}
			v[n++] = e;
		}
		names = cJSON_GetObjectItemCaseSensitive(e, "names");
		/* as the kubelet: digests first, then tags, at most 5 names */
		if (dg &&
		    snprintf(ref, sizeof(ref), "%.*s@%s", (int)repo_len(name), name, dg) <
			(int)sizeof(ref) &&
		    !names_has(names, ref)) {
			size_t k = 0;
			const cJSON *it;
			cJSON_ArrayForEach(it, names)
			{
				if (strchr(cJSON_GetStringValue(it), '@'))
					k++;
			}
			cJSON_InsertItemInArray(names, (int)k, cJSON_CreateString(ref));
		}
		if (!names_has(names, name))
			cJSON_AddItemToArray(names, cJSON_CreateString(name));
		while (cJSON_GetArraySize(names) > 5)
			cJSON_DeleteItemFromArray(names, 5);
	}
	qsort(v, n, sizeof(*v), cmp_image_size);
	for (size_t i = 0; i < n; i++) {
		cJSON_DeleteItemFromObjectCaseSensitive(v[i], "digest");
		if (i < max)
			cJSON_AddItemToArray(out, v[i]);
		else
			cJSON_Delete(v[i]);
		v[i] = NULL;
	}
	*ret = TAKE_PTR(out);
	return 0;
oom:
	for (size_t i = 0; i < n; i++)
		cJSON_Delete(v[i]);
	return -ENOMEM;
}

/* Re-read the image store when its index changed; true if status.images changed. */
static bool node_images_refresh(struct node_agent *n)
{
	_cleanup_json_ cJSON *list = NULL, *st = NULL;

	if (!n->images || image_store_list_changed(n->images, &n->images_stamp, &list) <= 0)
		return false;
	if (node_images_status(list, NODE_MAX_IMAGES, &st) < 0)
		return false;
	if (n->images_status && json_same(n->images_status, st))
		return false;
	cJSON_Delete(n->images_status);
	n->images_status = TAKE_PTR(st);
	return true;
}

/* This node's part of its Node's status, over whatever else the stored status holds. */
static void node_status_fill(struct node_agent *n, cJSON *st, const char *now)
{
	char cpu[24], mem[32], pods[24], ip[64];
	struct utsname un;
	cJSON *res, *addrs, *a, *info;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	snprintf(cpu, sizeof(cpu), "%ld", ncpu > 0 ? ncpu : 1);
	snprintf(mem, sizeof(mem), "%lldKi", util_mem_total_bytes() / 1024);
	snprintf(pods, sizeof(pods), "%ld", n->cfg->max_pods);
	for (int i = 0; i < 2; i++) {
		res = cJSON_CreateObject();
		cJSON_AddStringToObject(res, "cpu", cpu);
		cJSON_AddStringToObject(res, "memory", mem);
		cJSON_AddStringToObject(res, "pods", pods);
		json_set(st, i ? "allocatable" : "capacity", res);
	}
	addrs = cJSON_CreateArray();
	node_internal_ip(n, ip, sizeof(ip));
	if (*ip) {
		a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "type", "InternalIP");
		cJSON_AddStringToObject(a, "address", ip);
		cJSON_AddItemToArray(addrs, a);
	}
	a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", "Hostname");
	cJSON_AddStringToObject(a, "address", n->cfg->node_name);
	cJSON_AddItemToArray(addrs, a);
	json_set(st, "addresses", addrs);
	if (uname(&un) < 0)
		memset(&un, 0, sizeof(un));
	info = json_path_obj(st, "nodeInfo");
	if (info) {
		json_set_str(info, "kernelVersion", un.release);
		json_set_str(info, "osImage", "Linux");
		json_set_str(info, "operatingSystem", "linux");
		json_set_str(info, "architecture", n->arch);
		json_set_str(info, "containerRuntimeVersion", "crun");
		json_set_str(info, "kubeletVersion", "v1.33.0-shoal");
		json_set_str(info, "kubeProxyVersion", "v1.33.0-shoal");
	}
	if (n->images_status) {
		cJSON *im = cJSON_Duplicate(n->images_status, true);
		if (im)
			json_set(st, "images", im);
	}
	cond_ready_set(st, "True", "KubeletReady", "shoald is posting ready status", now);
}

/* This node's part of its Node's metadata and spec, over what is stored (kubectl's labels,
 * taints, unschedulable stay). */
static void node_spec_fill(struct node_agent *n, cJSON *o)
{
	cJSON *labels = json_path_obj(o, "metadata.labels"), *ann, *spec, *it;
	const char *cidr = n->cfg->pod_cidr;

	json_set_str(o, "apiVersion", "v1");
	json_set_str(o, "kind", "Node");
	json_set_str(json_path_obj(o, "metadata"), "name", n->cfg->node_name);
	if (labels) {
		json_set_str(labels, "kubernetes.io/hostname", n->cfg->node_name);
		json_set_str(labels, "kubernetes.io/os", "linux");
		json_set_str(labels, "kubernetes.io/arch", n->arch);
		cJSON_ArrayForEach(it, n->labels) json_set_str(labels, it->string, it->valuestring);
	}
	ann = json_path_obj(o, "metadata.annotations");
	if (ann)
		json_set_str(ann, NODE_MEMBER_ANNOTATION, "true");
	spec = json_path_obj(o, "spec");
	/* podCIDR is immutable once set (as in Kubernetes): only fill it in */
	if (spec && !strempty(cidr) && strempty(json_str(spec, "podCIDR", NULL))) {
		json_set_str(spec, "podCIDR", cidr);
		json_set(spec, "podCIDRs", cJSON_CreateStringArray(&cidr, 1));
	}
}

static bool json_same(const cJSON *a, const cJSON *b)
{
	_cleanup_free_ char *x = json_canonical(a), *y = json_canonical(b);

	return x && y && streq(x, y);
}

static int node_self_create(struct node_agent *n, const char *now)
{
	_cleanup_json_ cJSON *o = cJSON_CreateObject();
	struct err e = {0};
	int r;

	if (!o)
		return -ENOMEM;
	node_spec_fill(n, o);
	node_status_fill(n, json_path_obj(o, "status"), now);
	r = api_obj_create(n->store, o, NULL, &e);
	if (r < 0)
		return log_warn_errno(r, "node %s: cannot register: %s", n->cfg->node_name,
				      e.message);
	log_info("node %s: registered (pod CIDR %s)", n->cfg->node_name,
		 n->cfg->pod_cidr ? n->cfg->pod_cidr : "none");
	return 0;
}

/* Create this node's Node, or bring what is stored up to date; writes only what differs. */
static int node_self_sync(struct node_agent *n)
{
	struct store_obj *cur = NULL;
	_cleanup_json_ cJSON *obj = NULL, *want = NULL, *st = NULL;
	struct err e = {0};
	char now[32], rv[24];
	int r;

	util_rfc3339((int64_t)(util_now_ms() / 1000), now, sizeof(now));
	r = store_get(n->store, "nodes", "", n->cfg->node_name, &cur);
	if (r == -ENOENT)
		return node_self_create(n, now);
	if (r < 0)
		return r;
	obj = store_obj_parse(cur);
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)cur->rv);
	cur = store_obj_unref(cur);
	if (!obj)
		return -ENOMEM;

	want = cJSON_Duplicate(obj, true);
	if (!want)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(want, "status");
	node_spec_fill(n, want);
	st = cJSON_Duplicate(json_path(obj, "status"), true) ?: cJSON_CreateObject();
	if (!st)
		return -ENOMEM;
	node_status_fill(n, st, now);

	_cleanup_json_ cJSON *old_spec = cJSON_Duplicate(obj, true);
	if (!old_spec)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(old_spec, "status");
	if (!json_same(old_spec, want)) {
		/* the stored rv is the precondition: a kubectl edit in between wins, and the next
		 * pass redoes this over it */
		json_set_str(json_path_obj(want, "metadata"), "resourceVersion", rv);
		r = api_obj_update(n->store, want, NULL, &e);
		if (r < 0)
			return log_warn_errno(r, "node %s: cannot update labels/spec: %s",
					      n->cfg->node_name, e.message);
		log_info("node %s: labels/spec updated", n->cfg->node_name);
	}
	if (!json_same(json_path(obj, "status"), st)) {
		_cleanup_json_ cJSON *o = cJSON_CreateObject();
		cJSON *c = cond_find(st, "Ready");

		if (!o)
			return -ENOMEM;
		if (c)
			json_set_str(c, "lastHeartbeatTime", now);
		json_set_str(o, "apiVersion", "v1");
		json_set_str(o, "kind", "Node");
		json_set_str(json_path_obj(o, "metadata"), "name", n->cfg->node_name);
		json_set(o, "status", TAKE_PTR(st));
		r = api_obj_update_status(n->store, o, NULL, &e);
		if (r < 0)
			return log_warn_errno(r, "node %s: cannot report status: %s",
					      n->cfg->node_name, e.message);
		log_info("node %s: status updated", n->cfg->node_name);
	}
	return 0;
}

static struct node_peer *peer_get(struct node_agent *n, const char *name)
{
	for (size_t i = 0; i < n->npeers; i++)
		if (streq(n->peers[i].name, name))
			return &n->peers[i];
	if (n->npeers == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 16;
		struct node_peer *p = realloc(n->peers, cap * sizeof(*p));
		if (!p)
			return NULL;
		n->peers = p;
		n->cap = cap;
	}
	struct node_peer *p = &n->peers[n->npeers];
	*p = (struct node_peer){.name = strdup(name), .state = MEMBERS_ALIVE};
	if (!p->name)
		return NULL;
	n->npeers++;
	return p;
}

static void deadline_note(struct node_agent *n, uint64_t at)
{
	if (!n->next_deadline_ms || at < n->next_deadline_ms)
		n->next_deadline_ms = at;
}

static void peer_mark_unknown(struct node_agent *n, const cJSON *obj, const char *name,
			      const char *why)
{
	_cleanup_json_ cJSON *o = cJSON_CreateObject();
	cJSON *st = cJSON_Duplicate(json_path(obj, "status"), true) ?: cJSON_CreateObject();
	struct err e = {0};
	char now[32];
	int r;

	if (!o || !st) {
		cJSON_Delete(st);
		return;
	}
	util_rfc3339((int64_t)(util_now_ms() / 1000), now, sizeof(now));
	/* Kubernetes' node lifecycle controller's words for a node that stopped reporting */
	cond_ready_set(st, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.",
		       now);
	json_set_str(o, "apiVersion", "v1");
	json_set_str(o, "kind", "Node");
	json_set_str(json_path_obj(o, "metadata"), "name", name);
	json_set_str(json_path_obj(o, "metadata"), "resourceVersion",
		     json_str(obj, "metadata.resourceVersion", ""));
	json_set(o, "status", st);
	r = api_obj_update_status(n->store, o, NULL, &e);
	if (r < 0)
		log_warn_errno(r, "node %s: cannot mark Ready=Unknown: %s", name, e.message);
	else
		log_info("node %s: Ready=Unknown (member %s)", name, why);
}

static void peer_remove(struct node_agent *n, const cJSON *obj, const char *name, const char *why)
{
	struct api_delete_opts o = {.grace_seconds = -1,
				    .expect_uid = json_str(obj, "metadata.uid", NULL)};
	struct err e = {0};
	int r;

	r = api_obj_delete(n->store, "nodes", "", name, &o, NULL, &e);
	if (r < 0 && r != -ENOENT && r != -ECANCELED)
		log_warn_errno(r, "node %s: cannot remove: %s", name, e.message);
	else if (r >= 0)
		log_info("node %s: removed (member %s)", name, why);
	r = node_claims_release(n->store, name);
	if (r < 0)
		log_warn_errno(r, "node %s: cannot release its claims", name);
}

/* Another member's Node against the gossip view. */
static void node_peer_sync(struct node_agent *n, const cJSON *obj, uint64_t now)
{
	const char *name = json_str(obj, "metadata.name", "");
	const struct members_info *info = members_view_find(n->members, name);
	struct node_peer *p = peer_get(n, name);
	int state = info ? (int)info->state : NODE_ABSENT;
	char key[300];
	const char *owner, *why;
	uint64_t grace;

	if (!p)
		return;
	if (state != p->state) {
		p->state = state;
		p->since_ms = state == MEMBERS_ALIVE ? 0 : now;
		if (state == MEMBERS_ALIVE)
			p->unknown_done = false;
	}
	if (state == MEMBERS_ALIVE)
		return;
	/* only Nodes a node agent made follow membership */
	if (!streq(json_key_str(obj, "metadata.annotations", NODE_MEMBER_ANNOTATION, ""), "true"))
		return;
	/* gone from the view: only once this node has seen the cluster, and counted from then
	 * (a starting node's view holds nobody yet) */
	if (state == NODE_ABSENT) {
		if (!n->cluster_seen_ms)
			return;
		if (p->since_ms < n->cluster_seen_ms)
			p->since_ms = n->cluster_seen_ms;
	}
	snprintf(key, sizeof(key), "nodes/%s", name);
	owner = members_owner_except(n->members, key, name);
	if (!owner || !streq(owner, n->cfg->node_name))
		return;
	why = state == NODE_ABSENT ? "gone" : members_state_name((enum members_state)state);
	grace = state == MEMBERS_LEFT	   ? (uint64_t)n->cfg->node_left_grace * 1000
		: state == MEMBERS_SUSPECT ? UINT64_MAX
					   : (uint64_t)n->cfg->node_dead_grace * 1000;
	if (grace != UINT64_MAX && now >= p->since_ms + grace) {
		peer_remove(n, obj, name, why);
		return;
	}
	if (grace != UINT64_MAX)
		deadline_note(n, p->since_ms + grace);
	if (state == NODE_ABSENT)
		return; /* a view without it says nothing about its readiness */
	const cJSON *ready = cond_find(json_path(obj, "status"), "Ready");
	if (!streq(json_str(ready, "status", ""), "True"))
		return;
	if (p->unknown_done && p->unknown_inc == info->incarnation)
		return; /* once per incarnation: the member itself may have answered True */
	p->unknown_done = true;
	p->unknown_inc = info->incarnation;
	peer_mark_unknown(n, obj, name, why);
}

struct node_list {
	cJSON **objs;
	size_t n, cap;
};

static int collect_node(struct store_obj *o, void *ud)
{
	struct node_list *l = ud;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		cJSON **p = realloc(l->objs, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->objs = p;
		l->cap = cap;
	}
	l->objs[l->n] = store_obj_parse(o);
	if (!l->objs[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

static void node_reconcile(struct node_agent *n)
{
	struct node_list l = {0};
	uint64_t now = util_now_ms();

	node_self_sync(n);
	if (!n->cluster_seen_ms && members_view_count(n->members) > 1)
		n->cluster_seen_ms = now;
	n->next_deadline_ms = 0;
	/* list first, write after: writes must not happen during the store's iteration */
	store_list(n->store, "nodes", NULL, NULL, NULL, collect_node, &l);
	for (size_t i = 0; i < l.n; i++) {
		if (!streq(json_str(l.objs[i], "metadata.name", ""), n->cfg->node_name))
			node_peer_sync(n, l.objs[i], now);
		cJSON_Delete(l.objs[i]);
	}
	free(l.objs);
}

/* What of the view the Nodes depend on: names, states, incarnations, addresses. */
static uint64_t view_signature(const struct members *m)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < members_view_count(m); i++) {
		const struct members_info *v = members_view_get(m, i);
		for (const char *p = v->name; *p; p++)
			h = (h ^ (uint8_t)*p) * 1099511628211ull;
		for (const char *p = v->address ? v->address : ""; *p; p++)
			h = (h ^ (uint8_t)*p) * 1099511628211ull;
		h = (h ^ (uint64_t)v->state) * 1099511628211ull;
		h = (h ^ v->incarnation) * 1099511628211ull;
	}
	return h;
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct node_agent *n = arg;

	n->view_sig = view_signature(n->members);
	node_reconcile(n);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct node_agent *n = arg;

	if (node_images_refresh(n) || view_signature(n->members) != n->view_sig ||
	    (n->next_deadline_ms && util_now_ms() >= n->next_deadline_ms))
		event_active(n->kick, 0, 0);
}

static void on_node_event(const struct store_event *ev, void *ud)
{
	struct node_agent *n = ud;

	/* deferred: a burst of replicated Nodes is one pass */
	event_active(n->kick, 0, 0);
}

int node_agent_new(struct event_base *base, struct store *store, const struct config *cfg,
		   struct members *members, struct node_agent **ret)
{
	struct node_agent *n = calloc(1, sizeof(*n));
	struct timeval tv = {0, NODE_VIEW_CHECK_MS * 1000};
	struct err e = {0};
	int r;

	if (!n)
		return -ENOMEM;
	n->store = store;
	n->cfg = cfg;
	n->members = members;
	node_arch(n->arch, sizeof(n->arch));
	r = node_labels_parse(cfg->node_labels, &n->labels, &e);
	if (r < 0) {
		log_error("node %s: %s", cfg->node_name, e.message);
		node_agent_free(n);
		return r;
	}
	n->view_sig = view_signature(members);
	r = image_store_open(cfg->state_dir, &n->images);
	if (r < 0)
		log_warn_errno(r, "node %s: image store: status.images stays empty",
			       cfg->node_name);
	node_images_refresh(n);
	r = node_self_sync(n);
	if (r < 0) {
		node_agent_free(n);
		return r;
	}
	n->kick = event_new(base, -1, 0, on_kick, n);
	n->tick = event_new(base, -1, EV_PERSIST, on_tick, n);
	if (!n->kick || !n->tick || event_add(n->tick, &tv) < 0) {
		node_agent_free(n);
		return -ENOMEM;
	}
	r = store_watch_add(store, "nodes", 0, on_node_event, n, &n->watch);
	if (r < 0) {
		node_agent_free(n);
		return r;
	}
	event_active(n->kick, 0, 0);
	*ret = n;
	return 0;
}

struct node_agent *node_agent_free(struct node_agent *n)
{
	if (!n)
		return NULL;
	if (n->watch)
		store_watch_cancel(n->watch);
	if (n->tick)
		event_free(n->tick);
	if (n->kick)
		event_free(n->kick);
	for (size_t i = 0; i < n->npeers; i++)
		free(n->peers[i].name);
	free(n->peers);
	cJSON_Delete(n->labels);
	cJSON_Delete(n->images_status);
	image_store_free(n->images);
	free(n);
	return NULL;
}
