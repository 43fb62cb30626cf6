// SPDX-License-Identifier: Apache-2.0
/*
 * The pod manager. Everything here runs on the event loop thread except the work_* functions,
 * which run on the pool's workers with their own copies of what they need (they never touch
 * the store or a struct pod). Each pod has one timer; pod_sync() decides what to do next from
 * the pod's state and submits at most one lifecycle job at a time per pod.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <curl/curl.h>

#include "api/object.h"
#include "api/quantity.h"
#include "daemon/bundle.h"
#include "daemon/bundle_host.h"
#include "daemon/image-internal.h"
#include "daemon/pods-internal.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/mountinfo.h"
#include "lib/util.h"
#include "netplugin/podfiles.h"

#define POSTSTART_TIMEOUT_S 300 /* the kubelet has none; a bound keeps a worker from hanging */

/* ---------- names and paths ---------- */

const char *pods_container_id(const char *container_id)
{
	const char *p;

	if (!container_id)
		return NULL;
	p = strstr(container_id, "://");
	return p ? p + 3 : container_id;
}

int pods_id_attempt(const char *id)
{
	const char *p = id ? strrchr(id, '-') : NULL;

	return p ? atoi(p + 1) : -1;
}

int pods_log_path(const char *state_dir, const char *pod_uid, const char *container, int attempt,
		  char **ret)
{
	return asprintf(ret, "%s/pods/%s/logs/%s/%d.log", state_dir, pod_uid, container, attempt) <
			       0
		       ? -ENOMEM
		       : 0;
}

static void short_uid(const char *uid, char out[16])
{
	size_t n = 0;

	for (const char *p = uid; *p && n < 12; p++)
		if (*p != '-')
			out[n++] = *p;
	out[n] = 0;
}

static void ctr_make_id(const struct pod_ctr *c, int attempt, char out[64])
{
	snprintf(out, 64, "%s-%c%d-%d", c->pod->short_uid, c->init ? 'i' : 'c', c->index, attempt);
}

const cJSON *pod_ctr_spec(const struct pod_ctr *c)
{
	return bundle_container(c->pod->obj, c->init, c->index);
}

int64_t pod_grace_seconds(const struct pod *p)
{
	const cJSON *g;

	if (p->gone)
		return 0;
	g = json_path(p->obj, "metadata.deletionGracePeriodSeconds");
	if (cJSON_IsNumber(g))
		return (int64_t)g->valuedouble;
	return json_int(p->obj, "spec.terminationGracePeriodSeconds", 30);
}

static const char *restart_policy(const struct pod *p)
{
	return json_str(p->obj, "spec.restartPolicy", "Always");
}

/* ---------- the pod table ---------- */

static struct pod *pod_find(struct pods *m, const char *uid)
{
	for (size_t i = 0; i < m->npods; i++)
		if (streq(m->pods[i]->uid, uid))
			return m->pods[i];
	return NULL;
}

int pods_netns_path(struct pods *m, const char *uid, char **ret)
{
	struct pod *p = m ? pod_find(m, uid) : NULL;

	if (!p || p->gone || p->torn_down || !p->net_ok || !p->netns[0])
		return -ENOENT;
	*ret = strdup(p->netns);
	return *ret ? 0 : -ENOMEM;
}

struct pod_ctr *pod_ctr_by_wd(struct pods *m, int wd)
{
	for (size_t i = 0; i < m->npods; i++) {
		struct pod *p = m->pods[i];
		for (int k = 0; k < p->n_ctrs; k++)
			if (p->ctrs[k].wd == wd)
				return &p->ctrs[k];
	}
	return NULL;
}

static void on_pod_timer(evutil_socket_t fd, short what, void *arg);

void pod_free(struct pod *p)
{
	for (int k = 0; k < p->n_ctrs; k++) {
		struct pod_ctr *c = &p->ctrs[k];
		pod_probes_free(c);
		if (c->wd >= 0)
			inotify_rm_watch(p->m->ifd, c->wd);
		cJSON_Delete(c->last_state);
		free(c->image_name);
		free(c->image_id);
	}
	free(p->ctrs);
	if (p->timer)
		event_free(p->timer);
	cJSON_Delete(p->obj);
	free(p->uid);
	free(p->ns);
	free(p->name);
	free(p->dir);
	free(p->last_status);
	free(p);
}

/* Drop from the table; freed now or when its last job comes back. */
static void pod_remove(struct pod *p)
{
	struct pods *m = p->m;

	for (size_t i = 0; i < m->npods; i++)
		if (m->pods[i] == p) {
			m->pods[i] = m->pods[--m->npods];
			break;
		}
	p->finished = true;
	for (int k = 0; k < p->n_ctrs; k++)
		pod_probes_stop(&p->ctrs[k]);
	if (p->timer)
		event_del(p->timer);
	if (p->jobs == 0)
		pod_free(p);
	else
		p->freed = true;
}

static void pod_ctrs_init(struct pod *p)
{
	const cJSON *ic = json_path(p->obj, "spec.initContainers");
	const cJSON *cc = json_path(p->obj, "spec.containers");
	int ni = cJSON_IsArray(ic) ? cJSON_GetArraySize(ic) : 0;
	int nc = cJSON_IsArray(cc) ? cJSON_GetArraySize(cc) : 0;

	p->n_init = ni;
	p->n_ctrs = ni + nc;
	p->ctrs = calloc(p->n_ctrs ? p->n_ctrs : 1, sizeof(*p->ctrs));
	for (int k = 0; p->ctrs && k < p->n_ctrs; k++) {
		struct pod_ctr *c = &p->ctrs[k];
		c->pod = p;
		c->init = k < ni;
		c->index = c->init ? k : k - ni;
		c->wd = -1;
		snprintf(c->name, sizeof(c->name), "%s",
			 json_str(pod_ctr_spec(c), "name", "container"));
	}
}

static struct pod *pod_add(struct pods *m, const cJSON *obj)
{
	struct pod *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->m = m;
	p->uid = strdup(json_str(obj, "metadata.uid", ""));
	p->ns = strdup(json_str(obj, "metadata.namespace", "default"));
	p->name = strdup(json_str(obj, "metadata.name", ""));
	p->obj = cJSON_Duplicate(obj, true);
	p->timer = evtimer_new(m->base, on_pod_timer, p);
	if (!p->uid || !p->ns || !p->name || !p->obj || !p->timer ||
	    asprintf(&p->dir, "%s/%s", m->pods_dir, p->uid) < 0)
		goto fail;
	short_uid(p->uid, p->short_uid);
	for (int i = 0; i < COND_N; i++)
		p->conds[i].status = -1;
	pod_ctrs_init(p);
	if (!p->ctrs)
		goto fail;
	if (m->npods == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;
		struct pod **n = realloc(m->pods, cap * sizeof(*n));
		if (!n)
			goto fail;
		m->pods = n;
		m->cap = cap;
	}
	m->pods[m->npods++] = p;
	return p;
fail:
	p->dir = p->dir;
	pod_free(p);
	return NULL;
}

void pod_kick(struct pod *p)
{
	struct timeval tv = { 0, 0 };

	if (!p->finished)
		evtimer_add(p->timer, &tv);
}

static void pod_arm(struct pod *p, uint64_t when, uint64_t now)
{
	uint64_t d = when > now ? when - now : 0;
	struct timeval tv = { (time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000 };

	if (!p->finished)
		evtimer_add(p->timer, &tv);
}

/* ---------- jobs ---------- */

enum pjob_kind { PJ_SETUP, PJ_START, PJ_KILL, PJ_TEARDOWN };

struct pjob {
	struct pods_job base; /* first: the pool frees jobs it drops with free() */
	struct pods *m;
	struct pod *p; /* NULL for orphans */
	enum pjob_kind kind;
	/* inputs */
	cJSON *pod;
	cJSON *objects;
	char uid[64], short_uid[16], dir[PATH_MAX], ip[16], netns[256], host_ip[16];
	int slot;
	bool init;
	int index, attempt;
	char id[64], old_id[64];
	cJSON *ids; /* kill */
	int sig;
	bool all;
	/* outputs */
	int r;
	struct err e;
	const char *stage;
	bool pull_attempted, pulled, pull_fallback;
	struct err pull_err;
	uint64_t pull_ms;
	char *image_name, *image_id;
	int64_t started_ms;
	struct np_pod_result net;
};

static void pjob_free(struct pjob *j)
{
	cJSON_Delete(j->pod);
	cJSON_Delete(j->objects);
	cJSON_Delete(j->ids);
	free(j->image_name);
	free(j->image_id);
	free(j);
}

static void pjob_done(struct pods_job *base);
static void pjob_work(struct pods_job *base);

static struct pjob *pjob_new(struct pod *p, enum pjob_kind kind)
{
	struct pjob *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->base.work = pjob_work;
	j->base.done = pjob_done;
	j->m = p->m;
	j->p = p;
	j->kind = kind;
	j->pod = cJSON_Duplicate(p->obj, true);
	snprintf(j->uid, sizeof(j->uid), "%s", p->uid);
	snprintf(j->short_uid, sizeof(j->short_uid), "%s", p->short_uid);
	snprintf(j->dir, sizeof(j->dir), "%s", p->dir);
	snprintf(j->ip, sizeof(j->ip), "%s", p->ip);
	snprintf(j->netns, sizeof(j->netns), "%s", p->netns);
	snprintf(j->host_ip, sizeof(j->host_ip), "%s", p->m->host_ip);
	return j;
}

static void pjob_submit(struct pjob *j)
{
	if (j->p) {
		j->p->jobs++;
		j->p->busy = true;
	}
	pods_pool_submit(j->m->pool, &j->base);
}

/* ConfigMaps and Secrets of the pod's namespace, for the workers' bundle/volume callbacks. */
static int collect_obj(struct store_obj *o, void *ud)
{
	cJSON *o_json = store_obj_parse(o);

	if (o_json)
		cJSON_AddItemToArray(ud, o_json);
	return 0;
}

static cJSON *ns_objects(struct pods *m, const char *ns)
{
	cJSON *arr = cJSON_CreateArray();

	if (!arr)
		return NULL;
	store_list(m->store, "configmaps", ns, NULL, NULL, collect_obj, arr);
	store_list(m->store, "secrets", ns, NULL, NULL, collect_obj, arr);
	return arr;
}

static const cJSON *objects_get(void *ud, const char *kind, const char *ns, const char *name)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, (const cJSON *)ud)
	{
		if (streq(json_str(o, "kind", ""), kind) &&
		    streq(json_str(o, "metadata.name", ""), name) &&
		    streq(json_str(o, "metadata.namespace", ""), ns))
			return o;
	}
	return NULL;
}

/* ---------- worker side ---------- */

static int pod_ports(const cJSON *pod, struct np_port_mapping *ports, size_t max, size_t *ret_n)
{
	const cJSON *c, *pt;
	size_t n = 0;

	cJSON_ArrayForEach(c, json_path(pod, "spec.containers"))
	{
		cJSON_ArrayForEach(pt, cJSON_GetObjectItem(c, "ports"))
		{
			int64_t hp = json_int(pt, "hostPort", 0), cp = json_int(pt, "containerPort", 0);
			const char *proto = json_str(pt, "protocol", "TCP");
			const char *hip = json_str(pt, "hostIP", NULL);
			if (hp <= 0 || hp > 65535 || cp <= 0 || cp > 65535)
				continue;
			if (n == max)
				return -E2BIG;
			memset(&ports[n], 0, sizeof(ports[n]));
			ports[n].host_port = (uint16_t)hp;
			ports[n].container_port = (uint16_t)cp;
			ports[n].proto = streq(proto, "UDP")    ? IPPROTO_UDP
					 : streq(proto, "SCTP") ? IPPROTO_SCTP
								: IPPROTO_TCP;
			if (hip && *hip && !streq(hip, "0.0.0.0") &&
			    ipam_addr_parse(hip, &ports[n].host_ip) < 0)
				continue;
			n++;
		}
	}
	*ret_n = n;
	return 0;
}

static void work_setup(struct pjob *j)
{
	struct pods *m = j->m;
	struct np_port_mapping ports[64];
	size_t nports = 0;
	_cleanup_free_ char *marker = NULL, *nsdir = NULL;
	const char *hostname;
	int r;

	j->stage = "network";
	if ((r = util_mkdir_p(j->dir, 0750)) < 0) {
		j->r = err_set(&j->e, -r, 0, "CreatePodSandboxError", "pod directory %s: %s",
			       j->dir, strerror(-r));
		return;
	}
	if (pod_ports(j->pod, ports, ARRAY_SIZE(ports), &nports) < 0) {
		j->r = err_set(&j->e, E2BIG, 0, "CreatePodSandboxError", "too many host ports");
		return;
	}
	struct np_pod_opts po = { .owner = j->uid, .ifname = "eth0", .ports = ports,
				  .nports = nports };
	pthread_mutex_lock(&m->net_lock);
	r = np_pod_setup(m->net, &po, &j->net, &j->e);
	pthread_mutex_unlock(&m->net_lock);
	if (r < 0) {
		j->r = r;
		if (!j->e.reason[0] || !strcmp(j->e.reason, ""))
			snprintf(j->e.reason, sizeof(j->e.reason), "FailedCreatePodSandBox");
		return;
	}
	if (asprintf(&marker, "%s/.setup-done", j->dir) < 0 ||
	    asprintf(&nsdir, "%s/ns", j->dir) < 0) {
		j->r = -ENOMEM;
		return;
	}
	if (access(marker, F_OK) == 0)
		return; /* set up before a daemon restart: the network was re-adopted above */

	hostname = json_str(j->pod, "spec.hostname", NULL);
	if (strempty(hostname))
		hostname = json_str(j->pod, "metadata.name", "pod");
	/* hostAliases */
	const cJSON *ha = json_path(j->pod, "spec.hostAliases"), *a;
	struct np_host_alias aliases[32];
	const char *names[32][17];
	size_t na = 0;
	cJSON_ArrayForEach(a, ha)
	{
		const cJSON *hn, *h;
		size_t k = 0;
		if (na == ARRAY_SIZE(aliases))
			break;
		hn = cJSON_GetObjectItem(a, "hostnames");
		cJSON_ArrayForEach(h, hn)
		if (cJSON_IsString(h) && k < 16)
			names[na][k++] = h->valuestring;
		names[na][k] = NULL;
		aliases[na].ip = json_str(a, "ip", "");
		aliases[na].hostnames = names[na];
		na++;
	}
	const char *policy = json_str(j->pod, "spec.dnsPolicy", "ClusterFirst");
	const char *dns_ns[8], *dns_search[40], *dns_opts[40];
	char opt_buf[40][128];
	_cleanup_free_ char *host_resolv = NULL;
	enum np_dns_policy dp = NP_DNS_CLUSTER_FIRST;
	size_t nn = 0, ns = 0, no = 0;
	const cJSON *it;

	if (streq(policy, "None"))
		dp = NP_DNS_NONE;
	else if (streq(policy, "Default") ||
		 (streq(policy, "ClusterFirst") && json_bool(j->pod, "spec.hostNetwork", false)))
		dp = NP_DNS_DEFAULT; /* the node's resolver configuration, as the kubelet does */
	if (dp == NP_DNS_DEFAULT)
		util_read_file("/etc/resolv.conf", 1 << 16, &host_resolv, NULL);
	cJSON_ArrayForEach(it, json_path(j->pod, "spec.dnsConfig.nameservers"))
	if (cJSON_IsString(it) && nn < ARRAY_SIZE(dns_ns) - 1)
		dns_ns[nn++] = it->valuestring;
	cJSON_ArrayForEach(it, json_path(j->pod, "spec.dnsConfig.searches"))
	if (cJSON_IsString(it) && ns < ARRAY_SIZE(dns_search) - 1)
		dns_search[ns++] = it->valuestring;
	cJSON_ArrayForEach(it, json_path(j->pod, "spec.dnsConfig.options"))
	{
		const char *on = json_str(it, "name", ""), *ov = json_str(it, "value", NULL);
		if (no == ARRAY_SIZE(dns_opts) - 1)
			break;
		snprintf(opt_buf[no], sizeof(opt_buf[no]), "%s%s%s", on, ov ? ":" : "",
			 ov ? ov : "");
		dns_opts[no] = opt_buf[no];
		no++;
	}
	dns_ns[nn] = dns_search[ns] = dns_opts[no] = NULL;
	struct np_podfiles_opts pf = {
		.hostname = hostname,
		.subdomain = json_str(j->pod, "spec.subdomain", NULL),
		.pod_namespace = json_str(j->pod, "metadata.namespace", "default"),
		.cluster_domain = m->cfg->cluster_domain,
		.pod_ip = j->net.ip_str,
		.nameserver = m->dns_ip,
		.aliases = aliases,
		.naliases = na,
		.dns_policy = dp,
		.host_resolv = host_resolv,
		.dns_nameservers = dns_ns,
		.dns_searches = dns_search,
		.dns_options = dns_opts,
	};
	if ((r = np_podfiles_write(j->dir, &pf, &j->e)) < 0) {
		j->r = r;
		snprintf(j->e.reason, sizeof(j->e.reason), "FailedCreatePodSandBox");
		return;
	}
	bundle_podns_destroy(nsdir); /* a half-done earlier attempt */
	if ((r = bundle_podns_create(nsdir, hostname)) < 0) {
		j->r = err_set(&j->e, -r, 0, "FailedCreatePodSandBox",
			       "pod IPC/UTS namespaces: %s", strerror(-r));
		return;
	}
	j->stage = "volumes";
	struct bundle_volume_ctx vctx = { .get_object = objects_get, .ud = j->objects,
					  .pod_ip = j->net.ip_str, .host_ip = j->host_ip,
					  .node_name = m->cfg->node_name };
	if ((r = bundle_volumes_prepare(j->pod, j->dir, &vctx, &j->e)) < 0) {
		j->r = r;
		if (!j->e.reason[0])
			snprintf(j->e.reason, sizeof(j->e.reason), "FailedMount");
		bundle_volumes_cleanup(j->dir);
		return;
	}
	if ((r = util_write_file_volatile(marker, "", 0, 0600)) < 0)
		j->r = err_set(&j->e, -r, 0, "FailedCreatePodSandBox", "%s: %s", marker,
			       strerror(-r));
}

static void remove_instance(struct pods *m, const char *dir, const char *id)
{
	_cleanup_free_ char *cdir = NULL;

	crun_delete(m->rt, id, true, NULL);
	if (asprintf(&cdir, "%s/containers/%s", dir, id) >= 0)
		bundle_rootfs_remove(cdir);
}

/*
 * A registry that cannot be reached (no DNS, no route: an offline or edge node) costs every
 * pull its resolver and connect timeouts, seconds each. After such a failure its pulls are
 * skipped for a back-off (10 s doubling to 5 min, as the kubelet backs off an image), answered
 * with the last error, while one worker at a time tries again when it runs out. While the first
 * pull from a registry is under way, other pulls from it that have a local copy to fall back on
 * (policy Always) use that copy at once instead of each waiting out the same timeouts (every
 * worker of a fresh node did, for its first pods); pulls without one still try. Other failures
 * (HTTP errors, authentication, bad content) are per image and not remembered here.
 */
#define UNREACH_BACKOFF_MIN_MS 10000
#define UNREACH_BACKOFF_MAX_MS 300000

static struct pods_unreachable *unreach_find(struct pods *m, const char *registry)
{
	for (size_t i = 0; i < ARRAY_SIZE(m->unreach); i++)
		if (streq(m->unreach[i].registry, registry))
			return &m->unreach[i];
	return NULL;
}

/* A free slot for a registry, or NULL. */
static struct pods_unreachable *unreach_free_slot(struct pods *m)
{
	for (size_t i = 0; i < ARRAY_SIZE(m->unreach); i++)
		if (!m->unreach[i].registry[0])
			return &m->unreach[i];
	return NULL;
}

/* true: skip the pull; *e is the last failure with when it is tried again. have_local: a copy
 * of the image is present (the caller falls back on it). */
static bool unreach_skip(struct pods *m, const char *registry, bool have_local, struct err *e)
{
	uint64_t now = util_mono_ms();
	struct pods_unreachable *u;
	bool skip = false;

	pthread_mutex_lock(&m->unreach_lock);
	u = unreach_find(m, registry);
	if (!u) {
		/* the first pull from it: the others with a local copy wait for nothing */
		u = unreach_free_slot(m);
		if (u) {
			memset(u, 0, sizeof(*u));
			snprintf(u->registry, sizeof(u->registry), "%s", registry);
			u->probing = u->first = true;
		}
	} else if (u->first) {
		if (have_local) {
			err_set(e, EHOSTUNREACH, 0, "ErrImagePull",
				"registry %.64s: the first pull from it is under way", registry);
			skip = true;
		}
	} else if (u->probing || now < u->retry_ms) {
		*e = u->err;
		snprintf(e->message, sizeof(e->message), "%.380s (registry %.64s unreachable; "
			 "next try in %llus)", u->err.message, registry,
			 (unsigned long long)((u->retry_ms > now ? u->retry_ms - now : 0) + 999) / 1000);
		skip = true;
	} else if (u) {
		u->probing = true;
	}
	pthread_mutex_unlock(&m->unreach_lock);
	return skip;
}

static void unreach_result(struct pods *m, const char *registry, int k, const struct err *e)
{
	uint64_t now = util_mono_ms();
	struct pods_unreachable *u, *old;

	pthread_mutex_lock(&m->unreach_lock);
	u = unreach_find(m, registry);
	if (k != -EHOSTUNREACH) {
		if (u)
			memset(u, 0, sizeof(*u));
	} else {
		if (!u) {
			/* a free slot, else the one retried soonest */
			old = &m->unreach[0];
			for (size_t i = 0; i < ARRAY_SIZE(m->unreach) && old->registry[0]; i++)
				if (!m->unreach[i].registry[0] ||
				    m->unreach[i].retry_ms < old->retry_ms)
					old = &m->unreach[i];
			u = old;
			memset(u, 0, sizeof(*u));
			snprintf(u->registry, sizeof(u->registry), "%s", registry);
		}
		u->backoff_ms = !u->backoff_ms ? UNREACH_BACKOFF_MIN_MS
			      : u->backoff_ms >= UNREACH_BACKOFF_MAX_MS / 2 ? UNREACH_BACKOFF_MAX_MS
								    : u->backoff_ms * 2;
		u->retry_ms = now + u->backoff_ms;
		u->probing = u->first = false;
		u->err = *e;
	}
	pthread_mutex_unlock(&m->unreach_lock);
}

static int pull_image(struct pods *m, struct image_store *store, const char *image, bool have_local,
		      char **ret_name, struct err *e)
{
	/* holding the image, a registry that does not answer within 2 s is taken as unreachable
	 * (the resolver's own timeouts, 5 s a try, would hold the pod's start): the local copy runs */
	struct image_pull_opts po = { .timeout_sec = 120,
				      .connect_timeout_ms = have_local ? 2000 : 0 };
	struct image_ref ref;
	int k;

	if ((k = image_ref_parse(image, &ref, e)) < 0)
		return k;
	if (unreach_skip(m, ref.registry, have_local, e))
		return -EHOSTUNREACH;
	k = image_store_pull(store, image, &po, ret_name, e);
	unreach_result(m, ref.registry, k, e);
	return k;
}

static void work_start(struct pjob *j)
{
	struct pods *m = j->m;
	const cJSON *spec = bundle_container(j->pod, j->init, j->index);
	const char *image = json_str(spec, "image", "");
	const char *policy = json_str(spec, "imagePullPolicy", "IfNotPresent");
	_cleanup_free_ char *lower = NULL, *rootfs = NULL, *cdir = NULL, *log = NULL,
			    *logdir = NULL, *tlog = NULL, *nsdir = NULL, *ipc = NULL, *uts = NULL,
			    *hosts = NULL, *resolv = NULL, *hostname = NULL, *pulled_name = NULL;
	_cleanup_json_ cJSON *img = NULL, *cfg = NULL;
	struct image_store *store = NULL;
	char cgpath[512];
	int r;

	if (j->old_id[0])
		remove_instance(m, j->dir, j->old_id);

	/* images: a store handle per job, so flock separates threads as it does processes */
	j->stage = "image";
	if (strempty(image)) {
		j->r = err_set(&j->e, EINVAL, 0, "InvalidImageName", "no image given");
		return;
	}
	if ((r = image_store_open(m->cfg->state_dir, &store)) < 0) {
		j->r = err_set(&j->e, -r, 0, "ErrImagePull", "image store: %s", strerror(-r));
		return;
	}
	r = image_store_get(store, image, &img, NULL);
	if (streq(policy, "Never") && r < 0) {
		j->r = err_set(&j->e, ENOENT, 0, "ErrImageNeverPull",
			       "Container image \"%s\" is not present with pull policy of Never",
			       image);
		goto out;
	}
	if (streq(policy, "Always") || r < 0) {
		uint64_t t0 = util_mono_ms();
		int k;

		j->pull_attempted = true;
		k = pull_image(m, store, image, r >= 0, &pulled_name, &j->pull_err);
		j->pull_ms = util_mono_ms() - t0;
		if (k < 0 && r < 0) {
			j->r = k;
			j->e = j->pull_err;
			snprintf(j->e.reason, sizeof(j->e.reason), "%s",
				 k == -EINVAL ? "InvalidImageName" : "ErrImagePull");
			goto out;
		}
		if (k < 0) {
			/* Always, registry unreachable, local copy present: use it (offline nodes) */
			j->pull_fallback = true;
		} else {
			j->pulled = true;
			cJSON_Delete(img);
			img = NULL;
			r = image_store_get(store, pulled_name, &img, &j->e);
			if (r < 0) {
				j->r = r;
				snprintf(j->e.reason, sizeof(j->e.reason), "ErrImagePull");
				goto out;
			}
		}
	}
	j->image_name = strdup(json_str(img, "name", image));
	j->image_id = strdup(json_str(img, "digest", ""));
	if ((r = image_store_lowerdir(store, img, &lower)) < 0) {
		j->r = err_set(&j->e, -r, 0, "ErrImagePull", "image %s: layers: %s", image,
			       strerror(-r));
		goto out;
	}

	j->stage = "config";
	if (asprintf(&cdir, "%s/containers/%s", j->dir, j->id) < 0 ||
	    asprintf(&tlog, "%s/termination-log", cdir) < 0 ||
	    asprintf(&nsdir, "%s/ns", j->dir) < 0 || asprintf(&ipc, "%s/ipc", nsdir) < 0 ||
	    asprintf(&uts, "%s/uts", nsdir) < 0 || asprintf(&hosts, "%s/hosts", j->dir) < 0 ||
	    asprintf(&resolv, "%s/resolv.conf", j->dir) < 0 ||
	    asprintf(&hostname, "%s/hostname", j->dir) < 0 ||
	    pods_log_path(m->cfg->state_dir, j->uid, json_str(spec, "name", "c"), j->attempt,
			  &log) < 0 ||
	    !(logdir = strdup(log))) {
		j->r = -ENOMEM;
		goto out;
	}
	*strrchr(logdir, '/') = 0;
	if ((r = bundle_rootfs_mount(lower, cdir, &rootfs)) < 0) {
		j->r = err_set(&j->e, -r, 0, "CreateContainerError", "root file system: %s",
			       strerror(-r));
		goto out;
	}
	util_write_file_volatile(tlog, "", 0, 0666);
	if (bundle_cgroup_path(m->cfg->cgroup_name, j->uid, json_str(spec, "name", "c"), cgpath,
			       sizeof(cgpath)) < 0) {
		j->r = err_set(&j->e, ENAMETOOLONG, 0, "CreateContainerError", "cgroup path");
		goto fail_rootfs;
	}
	struct bundle_params bp = {
		.pod = j->pod,
		.init = j->init,
		.index = j->index,
		.image_config = json_path(json_path(img, "config"), "config"),
		.rootfs = rootfs,
		.pod_dir = j->dir,
		.netns_path = j->netns,
		.ipcns_path = ipc,
		.utsns_path = uts,
		.hosts_path = hosts,
		.resolv_path = resolv,
		.hostname_path = hostname,
		.termination_log_path = tlog,
		.cgroup_path = cgpath,
		.cgroup_mode = crun_rt_cgroup_mode(m->rt) == CRUN_CGROUP_V2 ? BUNDLE_CGROUP_V2
									    : BUNDLE_CGROUP_V1,
		.pod_ip = j->ip,
		.host_ip = j->host_ip,
		.node_name = m->cfg->node_name,
		.memory_capacity = m->alloc_mem,
		.oom_score_adj_floor = m->oom_floor,
		.get_object = objects_get,
		.object_ud = j->objects,
		.get_id = bundle_rootfs_id_lookup,
		.id_ud = rootfs,
	};
	if ((r = bundle_config_build(&bp, &cfg, &j->e)) < 0) {
		j->r = r;
		if (!j->e.reason[0])
			snprintf(j->e.reason, sizeof(j->e.reason), "CreateContainerConfigError");
		goto fail_rootfs;
	}
	if ((r = bundle_config_write(cdir, cfg)) < 0) {
		j->r = err_set(&j->e, -r, 0, "CreateContainerError", "config.json: %s",
			       strerror(-r));
		goto fail_rootfs;
	}
	j->stage = "create";
	util_mkdir_p(logdir, 0750);
	/* create and start in one crun invocation (the shim's `crun run --detach`) */
	if ((r = crun_run(m->rt, j->id, cdir, log, NULL, &j->e)) < 0) {
		j->r = r;
		if (!j->e.reason[0])
			snprintf(j->e.reason, sizeof(j->e.reason), "RunContainerError");
		remove_instance(m, j->dir, j->id);
		goto out;
	}
	j->started_ms = util_now_ms();
	goto out;
fail_rootfs:
	bundle_rootfs_remove(cdir);
out:
	image_store_free(store);
}

static void work_kill(struct pjob *j)
{
	const cJSON *id;

	cJSON_ArrayForEach(id, j->ids)
	{
		if (cJSON_IsString(id))
			crun_kill(j->m->rt, id->valuestring, j->sig, j->all, NULL);
	}
}

/* Remove everything a pod (or what is left of one) has on this node. Idempotent. */
static void teardown_uid(struct pods *m, const char *uid, const char *dir, struct err *e)
{
	_cleanup_json_ cJSON *ids = NULL;
	_cleanup_free_ char *cdir = NULL, *nsdir = NULL;
	char su[16], prefix[20], cg[512];
	const cJSON *id;
	DIR *d;
	struct dirent *de;
	int r;

	short_uid(uid, su);
	snprintf(prefix, sizeof(prefix), "%s-", su);
	/*
	 * Every container we created has shim state: delete those by name first. `crun list
	 * --format json` fails as a whole when another container vanishes while it reads (pods
	 * torn down in parallel), so it only finds what the shim state does not name, and is
	 * retried. Shim state crun never knew (a create that failed half way) is removed too.
	 */
	if ((d = opendir(m->ctr_state_dir))) {
		while ((de = readdir(d)))
			if (!strncmp(de->d_name, prefix, strlen(prefix))) {
				_cleanup_free_ char *p = NULL;
				crun_delete(m->rt, de->d_name, true, NULL);
				if (asprintf(&p, "%s/%s", m->ctr_state_dir, de->d_name) >= 0)
					image_rm_rf(p);
			}
		closedir(d);
	}
	for (int i = 0; i < 5 && crun_list(m->rt, &ids) < 0; i++)
		usleep(20 * 1000);
	cJSON_ArrayForEach(id, ids)
	{
		if (cJSON_IsString(id) && !strncmp(id->valuestring, prefix, strlen(prefix)))
			crun_delete(m->rt, id->valuestring, true, NULL);
	}
	if (asprintf(&cdir, "%s/containers", dir) >= 0 && (d = opendir(cdir))) {
		while ((de = readdir(d))) {
			_cleanup_free_ char *p = NULL;
			if (de->d_name[0] == '.')
				continue;
			if (asprintf(&p, "%s/%s", cdir, de->d_name) >= 0)
				bundle_rootfs_remove(p);
		}
		closedir(d);
	}
	bundle_volumes_cleanup(dir);
	if (asprintf(&nsdir, "%s/ns", dir) >= 0)
		bundle_podns_destroy(nsdir);
	if (bundle_cgroup_path(m->cfg->cgroup_name, uid, "x", cg, sizeof(cg)) >= 0) {
		*strrchr(cg, '/') = 0;
		/* processes of a killed container may take a moment to leave */
		for (int i = 0; i < 40; i++) {
			if (crun_cgroup_remove(cg) != -EBUSY)
				break;
			usleep(50 * 1000);
		}
	}
	pthread_mutex_lock(&m->net_lock);
	r = np_pod_teardown(m->net, uid, "eth0", e);
	pthread_mutex_unlock(&m->net_lock);
	if (r < 0)
		log_warn_errno(r, "pod %s: network teardown: %s", uid, e->message);
	image_rm_rf(dir);
}

static void work_teardown(struct pjob *j)
{
	teardown_uid(j->m, j->uid, j->dir, &j->e);
}

static void pjob_work(struct pods_job *base)
{
	struct pjob *j = (struct pjob *)base;

	switch (j->kind) {
	case PJ_SETUP:
		work_setup(j);
		break;
	case PJ_START:
		work_start(j);
		break;
	case PJ_KILL:
		work_kill(j);
		break;
	case PJ_TEARDOWN:
		work_teardown(j);
		break;
	}
}

/* ---------- loop side: container transitions ---------- */

static bool ctr_should_restart(const struct pod *p, const struct pod_ctr *c)
{
	const char *pol = restart_policy(p);

	if (c->init)
		return c->exit_code != 0 && !streq(pol, "Never");
	if (streq(pol, "Always"))
		return true;
	if (streq(pol, "OnFailure"))
		return c->exit_code != 0;
	return false;
}

/* Schedule the next try of a failed container: the first retry is immediate, then 10 s
 * doubling up to 5 min, like the kubelet's per-container back-off. */
static void ctr_backoff(struct pod_ctr *c, uint64_t now, const char *reason)
{
	if (c->backoff_s == 0) {
		c->retry_at = now;
		c->backoff_s = BACKOFF_START_S;
	} else {
		c->retry_at = now + (uint64_t)c->backoff_s * 1000;
		c->backoff_s = c->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : c->backoff_s * 2;
	}
	snprintf(c->backoff_reason, sizeof(c->backoff_reason), "%s", reason);
}


/* cgroup memory OOM kill counter of a container (v1 memory.oom_control or v2 memory.events). */
static bool ctr_oom_killed(struct pod_ctr *c)
{
	char cg[512], path[1024];
	_cleanup_free_ char *buf = NULL;
	const char *k;

	if (bundle_cgroup_path(c->pod->m->cfg->cgroup_name, c->pod->uid, c->name, cg,
			       sizeof(cg)) < 0)
		return false;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.oom_control", cg);
	if (util_read_file(path, 4096, &buf, NULL) < 0) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.events", cg);
		if (util_read_file(path, 4096, &buf, NULL) < 0)
			return false;
	}
	k = strstr(buf, "oom_kill ");
	return k && atoi(k + 9) > 0;
}

static void ctr_exited(struct pod_ctr *c, int exit_code, int sig, int64_t finished_ns)
{
	struct pod *p = c->pod;
	uint64_t now = util_now_ms();
	_cleanup_free_ char *tlog = NULL, *msg = NULL;

	if (c->phase != CTR_RUNNING)
		return;
	if (c->wd >= 0) {
		inotify_rm_watch(p->m->ifd, c->wd);
		c->wd = -1;
	}
	pod_probes_stop(c);
	c->phase = CTR_TERMINATED;
	c->exit_code = exit_code;
	c->signal = sig;
	c->finished_ms = finished_ns ? finished_ns / 1000000 : (int64_t)now;
	c->ready = false;
	c->started = false;
	c->stopping = false;
	c->sigkilled = false;
	c->poststart_running = c->prestop_running = false;
	c->message[0] = 0;
	if (exit_code == 137 && ctr_oom_killed(c))
		snprintf(c->reason, sizeof(c->reason), "OOMKilled");
	else
		snprintf(c->reason, sizeof(c->reason), "%s", exit_code == 0 ? "Completed" : "Error");
	/* terminationMessagePath */
	if (asprintf(&tlog, "%s/containers/%s/termination-log", p->dir, c->id) >= 0 &&
	    util_read_file(tlog, 4096 + 1, &msg, NULL) == 0 && msg[0])
		snprintf(c->message, sizeof(c->message), "%s", msg);
	log_info("pod %s/%s: container %s exited %d (%s)", p->ns, p->name, c->name, exit_code,
		 c->reason);

	if (c->init && exit_code == 0)
		c->done_init = true;
	if (p->term_started || c->done_init || p->deadline_exceeded)
		goto out;
	if (ctr_should_restart(p, c)) {
		if (c->finished_ms - c->started_ms >= BACKOFF_RESET_MS)
			c->backoff_s = 0;
		ctr_backoff(c, now, "CrashLoopBackOff");
		cJSON_Delete(c->last_state);
		c->last_state = cJSON_CreateObject();
		cJSON_AddItemToObject(c->last_state, "terminated", pods_ctr_terminated_json(c));
		c->phase = CTR_WAITING;
		snprintf(c->reason, sizeof(c->reason), "CrashLoopBackOff");
		c->message[0] = 0;
	}
out:
	pod_kick(p);
}

static int ctr_read_exit(struct pod_ctr *c)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	_cleanup_json_ cJSON *ex = NULL;

	if (!c->id[0] ||
	    asprintf(&path, "%s/%s/exit.json", c->pod->m->ctr_state_dir, c->id) < 0)
		return -ENOMEM;
	if (util_read_file(path, 4096, &buf, NULL) < 0 || !(ex = cJSON_Parse(buf)))
		return -ENOENT;
	ctr_exited(c, (int)json_int(ex, "exitCode", 0), (int)json_int(ex, "signal", 0),
		   json_int(ex, "finishedNs", 0));
	return 0;
}

static void ctr_watch(struct pod_ctr *c)
{
	_cleanup_free_ char *dir = NULL;

	if (asprintf(&dir, "%s/%s", c->pod->m->ctr_state_dir, c->id) < 0)
		return;
	c->wd = inotify_add_watch(c->pod->m->ifd, dir, IN_MOVED_TO | IN_CLOSE_WRITE);
	if (c->wd < 0)
		log_warn("pod %s/%s: cannot watch %s: %m", c->pod->ns, c->pod->name, dir);
	/* it may have exited before the watch existed */
	ctr_read_exit(c);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct pods *m = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(m->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			struct pod_ctr *c;
			p += sizeof(*ev) + ev->len;
			c = pod_ctr_by_wd(m, ev->wd);
			if (!c)
				continue;
			if (ev->mask & IN_IGNORED) {
				c->wd = -1;
				continue;
			}
			if (ev->len && streq(ev->name, "exit.json"))
				ctr_read_exit(c);
		}
	}
}

void pod_ctr_stop(struct pod_ctr *c, const char *reason, int64_t grace_s)
{
	if (c->phase != CTR_RUNNING || c->stopping)
		return;
	c->stopping = true;
	c->sigkilled = false;
	c->kill_deadline = util_now_ms() + (uint64_t)(grace_s > 0 ? grace_s : 0) * 1000;
	snprintf(c->stop_reason, sizeof(c->stop_reason), "%s", reason);
	c->generation++; /* drop in-flight probe results */
	/* preStop runs before SIGTERM, once per instance, inside the grace period */
	if (!c->prestop_done && grace_s > 0) {
		c->prestop_done = true;
		c->prestop_running = pod_hook_start(c, "preStop", (int)grace_s);
	}
	pod_kick(c->pod);
}

void pod_hook_done(struct pod_ctr *c, const char *which, uint64_t generation, bool ok,
		   const char *msg)
{
	struct pod *p = c->pod;
	const cJSON *spec = json_path(pod_ctr_spec(c), streq(which, "postStart")
							    ? "lifecycle.postStart"
							    : "lifecycle.preStop");
	const char *kind = json_path(spec, "exec")      ? "Exec"
			   : json_path(spec, "httpGet") ? "HTTP"
			   : json_path(spec, "sleep")   ? "Sleep"
							: "";
	char fp[128];

	if (generation != c->generation || c->phase != CTR_RUNNING)
		return; /* an older instance, or it exited meanwhile */
	snprintf(fp, sizeof(fp), "spec.containers{%s}", c->name);
	if (streq(which, "postStart")) {
		if (!c->poststart_running)
			return;
		c->poststart_running = false;
		if (ok) {
			pod_probes_start(c);
		} else {
			log_info("pod %s/%s: container %s: postStart hook failed: %s", p->ns,
				 p->name, c->name, msg);
			events_record(p->m->events, p->obj, fp, "Warning", "FailedPostStartHook",
				      "%s lifecycle hook for Container \"%s\" in Pod \"%s_%s(%s)\" "
				      "failed - error: %s",
				      kind, c->name, p->name, p->ns, p->uid, msg);
			pod_ctr_stop(c, "FailedPostStartHook", pod_grace_seconds(p));
		}
	} else {
		uint64_t min = util_now_ms() + 2000;
		if (!c->prestop_running)
			return;
		c->prestop_running = false;
		if (!ok) {
			log_info("pod %s/%s: container %s: preStop hook failed: %s", p->ns, p->name,
				 c->name, msg);
			events_record(p->m->events, p->obj, fp, "Warning", "FailedPreStopHook",
				      "%s lifecycle hook for Container \"%s\" in Pod \"%s_%s(%s)\" "
				      "failed - error: %s",
				      kind, c->name, p->name, p->ns, p->uid, msg);
		}
		/* as the kubelet: at least 2 s between SIGTERM and SIGKILL after the hook */
		if (!c->sigkilled && c->kill_deadline < min)
			c->kill_deadline = min;
	}
	pod_kick(p);
}

/* ---------- loop side: job results ---------- */

static void done_setup(struct pjob *j)
{
	struct pod *p = j->p;
	uint64_t now = util_now_ms();

	if (j->net.ip_str[0]) {
		p->net_ok = true;
		snprintf(p->ip, sizeof(p->ip), "%s", j->net.ip_str);
		snprintf(p->netns, sizeof(p->netns), "%s", j->net.netns_path);
	}
	if (j->r < 0) {
		const char *reason = j->e.reason[0] ? j->e.reason : "FailedCreatePodSandBox";
		log_warn("pod %s/%s: %s setup failed: %s", p->ns, p->name, j->stage, j->e.message);
		if (streq(reason, "FailedMount"))
			events_record(p->m->events, p->obj, NULL, "Warning", "FailedMount",
				      "MountVolume.SetUp failed: %s", j->e.message);
		else
			events_record(p->m->events, p->obj, NULL, "Warning", reason,
				      "Failed to create pod sandbox: %s", j->e.message);
		snprintf(p->setup_reason, sizeof(p->setup_reason), "%s", reason);
		snprintf(p->setup_msg, sizeof(p->setup_msg), "%s", j->e.message);
		p->setup_backoff_s = p->setup_backoff_s ? p->setup_backoff_s * 2 : 2;
		if (p->setup_backoff_s > BACKOFF_MAX_S)
			p->setup_backoff_s = BACKOFF_MAX_S;
		p->setup_retry_at = now + (uint64_t)p->setup_backoff_s * 1000;
		return;
	}
	p->setup_ok = true;
	p->setup_reason[0] = p->setup_msg[0] = 0;
	if (j->net.adopted)
		log_info("pod %s/%s: network re-adopted (%s)", p->ns, p->name, p->ip);
	else
		log_info("pod %s/%s: network up, IP %s", p->ns, p->name, p->ip);
}

static void done_start(struct pjob *j)
{
	struct pod *p = j->p;
	struct pod_ctr *c = &p->ctrs[j->slot];
	const cJSON *spec = pod_ctr_spec(c);
	const char *image = json_str(spec, "image", "");
	char fp[128];
	uint64_t now = util_now_ms();

	snprintf(fp, sizeof(fp), "spec.%s{%s}", c->init ? "initContainers" : "containers",
		 c->name);
	if (j->old_id[0] && streq(c->id, j->old_id))
		c->id[0] = 0;
	if (j->pull_attempted) {
		events_record(p->m->events, p->obj, fp, "Normal", "Pulling", "Pulling image \"%s\"",
			      image);
		if (j->pulled)
			events_record(p->m->events, p->obj, fp, "Normal", "Pulled",
				      "Successfully pulled image \"%s\" in %llums", image,
				      (unsigned long long)j->pull_ms);
		else if (j->pull_fallback)
			events_record(p->m->events, p->obj, fp, "Warning", "Failed",
				      "Failed to pull image \"%s\": %s; using the image present on "
				      "the node",
				      image, j->pull_err.message);
	} else if (j->r >= 0 || strcmp(j->stage, "image")) {
		events_record(p->m->events, p->obj, fp, "Normal", "Pulled",
			      "Container image \"%s\" already present on machine", image);
	}
	if (j->image_name) {
		free(c->image_name);
		c->image_name = TAKE_PTR(j->image_name);
		free(c->image_id);
		c->image_id = TAKE_PTR(j->image_id);
	}
	if (j->r < 0) {
		const char *reason = j->e.reason[0] ? j->e.reason : "RunContainerError";
		log_warn("pod %s/%s: container %s: %s: %s", p->ns, p->name, c->name, reason,
			 j->e.message);
		c->phase = CTR_WAITING;
		snprintf(c->reason, sizeof(c->reason), "%s", reason);
		snprintf(c->message, sizeof(c->message), "%s", j->e.message);
		if (streq(j->stage, "image")) {
			if (j->pull_attempted)
				events_record(p->m->events, p->obj, fp, "Warning", "Failed",
					      "Failed to pull image \"%s\": %s", image,
					      j->e.message);
			events_record(p->m->events, p->obj, fp, "Warning", "Failed", "Error: %s",
				      streq(reason, "ErrImageNeverPull") ? j->e.message : reason);
			ctr_backoff(c, now, "ImagePullBackOff");
		} else {
			events_record(p->m->events, p->obj, fp, "Warning", "Failed", "Error: %s",
				      j->e.message);
			ctr_backoff(c, now, streq(reason, "CreateContainerConfigError")
						    ? "CreateContainerConfigError"
						    : "CrashLoopBackOff");
			if ((streq(j->stage, "create") || streq(j->stage, "start")) &&
			    streq(restart_policy(p), "Never")) {
				/* nothing will ever run it: a start error is its termination */
				c->phase = CTR_TERMINATED;
				c->exit_code = 128;
				snprintf(c->reason, sizeof(c->reason), "StartError");
				c->started_ms = c->finished_ms = now;
			}
		}
		return;
	}
	if (c->last_state)
		c->restart_count++;
	snprintf(c->id, sizeof(c->id), "%s", j->id);
	c->attempt = j->attempt + 1;
	c->phase = CTR_RUNNING;
	c->reason[0] = c->message[0] = 0;
	c->backoff_reason[0] = 0;
	c->started_ms = j->started_ms;
	c->finished_ms = 0;
	c->exit_code = c->signal = 0;
	c->ready = c->started = false;
	c->poststart_running = c->prestop_running = c->prestop_done = false;
	c->generation++;
	events_record(p->m->events, p->obj, fp, "Normal", "Created", "Created container %s",
		      c->name);
	events_record(p->m->events, p->obj, fp, "Normal", "Started", "Started container %s",
		      c->name);
	log_info("pod %s/%s: container %s started (%s)", p->ns, p->name, c->name, c->id);
	ctr_watch(c);
	/* postStart: not started/ready and no probes until it returns */
	if (c->phase == CTR_RUNNING &&
	    !(c->poststart_running = pod_hook_start(c, "postStart", POSTSTART_TIMEOUT_S)))
		pod_probes_start(c);
	/* the pod began terminating while this start was in flight: pod_sync_delete asked only
	 * the containers running then to stop, so this one must be asked now or it runs forever */
	if (p->term_started || p->deadline_exceeded) {
		char why[128];
		snprintf(why, sizeof(why), "Stopping container %s", c->name);
		pod_ctr_stop(c, why, pod_grace_seconds(p));
	}
}

static void pod_sync(struct pod *p);

static void done_teardown(struct pjob *j)
{
	struct pod *p = j->p;
	struct api_delete_opts o = { .grace_seconds = 0, .expect_uid = p->uid };
	struct err e = { 0 };
	int r;

	p->torn_down = true;
	log_info("pod %s/%s: torn down", p->ns, p->name);
	if (!p->gone) {
		r = api_obj_delete(p->m->store, "pods", p->ns, p->name, &o, NULL, &e);
		if (r < 0 && r != -ENOENT && r != -ECANCELED)
			log_warn_errno(r, "pod %s/%s: cannot remove: %s", p->ns, p->name,
				       e.message);
	}
	pod_remove(p);
}

static void pjob_done(struct pods_job *base)
{
	struct pjob *j = (struct pjob *)base;
	struct pod *p = j->p;

	if (!p) {
		pjob_free(j);
		return;
	}
	p->jobs--;
	p->busy = false;
	if (p->freed) {
		if (p->jobs == 0)
			pod_free(p);
		pjob_free(j);
		return;
	}
	switch (j->kind) {
	case PJ_SETUP:
		done_setup(j);
		break;
	case PJ_START:
		done_start(j);
		break;
	case PJ_KILL:
		break;
	case PJ_TEARDOWN:
		done_teardown(j);
		pjob_free(j);
		return;
	}
	pjob_free(j);
	pod_kick(p);
}

/* ---------- loop side: submitting ---------- */

static void submit_setup(struct pod *p)
{
	struct pjob *j = pjob_new(p, PJ_SETUP);

	if (!j)
		return;
	j->objects = ns_objects(p->m, p->ns);
	pjob_submit(j);
}

static void submit_start(struct pod *p, struct pod_ctr *c)
{
	struct pjob *j = pjob_new(p, PJ_START);

	if (!j)
		return;
	j->objects = ns_objects(p->m, p->ns);
	j->slot = (int)(c - p->ctrs);
	j->init = c->init;
	j->index = c->index;
	j->attempt = c->attempt;
	ctr_make_id(c, c->attempt, j->id);
	c->attempt++;
	p->ctr_started = true;
	if (c->id[0])
		snprintf(j->old_id, sizeof(j->old_id), "%s", c->id);
	pjob_submit(j);
}

static void submit_kill(struct pod *p, cJSON *ids, int sig, bool all)
{
	struct pjob *j = pjob_new(p, PJ_KILL);

	if (!j) {
		cJSON_Delete(ids);
		return;
	}
	j->ids = ids;
	j->sig = sig;
	j->all = all;
	pjob_submit(j);
}

/* Send SIGTERM to containers asked to stop, SIGKILL to those past their deadline. */
static bool pod_sync_stops(struct pod *p, uint64_t now, uint64_t *next)
{
	cJSON *term = NULL, *kill = NULL;

	for (int k = 0; k < p->n_ctrs; k++) {
		struct pod_ctr *c = &p->ctrs[k];
		if (c->phase != CTR_RUNNING || !c->stopping)
			continue;
		if (!c->sigkilled && now >= c->kill_deadline) {
			if (!kill)
				kill = cJSON_CreateArray();
			cJSON_AddItemToArray(kill, cJSON_CreateString(c->id));
			c->sigkilled = true;
			c->stop_reason[0] = 0;
		} else if (c->stop_reason[0] && !c->prestop_running) {
			char fp[128];
			snprintf(fp, sizeof(fp), "spec.%s{%s}",
				 c->init ? "initContainers" : "containers", c->name);
			events_record(p->m->events, p->obj, fp, "Normal", "Killing", "%s",
				      c->stop_reason);
			if (!term)
				term = cJSON_CreateArray();
			cJSON_AddItemToArray(term, cJSON_CreateString(c->id));
			c->stop_reason[0] = 0;
		}
		if (!c->sigkilled && c->kill_deadline < *next)
			*next = c->kill_deadline;
		else if (c->sigkilled && now + 1000 < *next)
			*next = now + 1000; /* inotify should tell us; look again anyway */
	}
	if (kill) {
		cJSON_Delete(term);
		submit_kill(p, kill, SIGKILL, true);
		return true;
	}
	if (term) {
		submit_kill(p, term, SIGTERM, false);
		return true;
	}
	return false;
}

static void pod_sync_delete(struct pod *p, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	bool running = false;

	if (!p->term_started) {
		int64_t grace = pod_grace_seconds(p);
		p->term_started = true;
		log_info("pod %s/%s: terminating (grace %llds)", p->ns, p->name,
			 (long long)grace);
		for (int k = 0; k < p->n_ctrs; k++) {
			char why[128];
			snprintf(why, sizeof(why), "Stopping container %s", p->ctrs[k].name);
			pod_ctr_stop(&p->ctrs[k], why, grace);
		}
	}
	if (p->busy)
		return;
	for (int k = 0; k < p->n_ctrs; k++)
		if (p->ctrs[k].phase == CTR_RUNNING) {
			ctr_read_exit(&p->ctrs[k]);
			running |= p->ctrs[k].phase == CTR_RUNNING;
		}
	if (running) {
		if (!pod_sync_stops(p, now, &next) && next != UINT64_MAX)
			pod_arm(p, next, now);
		return;
	}
	struct pjob *j = pjob_new(p, PJ_TEARDOWN);
	if (j)
		pjob_submit(j);
}

static void pod_sync_run(struct pod *p, uint64_t now, uint64_t *next, bool hold)
{
	if (p->deadline_exceeded) {
		/* failed: stop what runs, start nothing */
		if (p->setup_ok)
			pod_sync_stops(p, now, next);
		return;
	}
	if (!p->setup_ok) {
		if (now >= p->setup_retry_at)
			submit_setup(p);
		else if (p->setup_retry_at < *next)
			*next = p->setup_retry_at;
		return;
	}
	if (hold)
		return; /* pods_binding_settled kicks the pod */
	if (pod_sync_stops(p, now, next))
		return;
	for (int k = 0; k < p->n_init; k++) {
		struct pod_ctr *c = &p->ctrs[k];
		if (c->done_init)
			continue;
		if (c->phase == CTR_RUNNING)
			return;
		if (c->phase == CTR_TERMINATED)
			return; /* failed and not restarted: the pod failed */
		if (now >= c->retry_at)
			submit_start(p, c);
		else if (c->retry_at < *next)
			*next = c->retry_at;
		return;
	}
	for (int k = p->n_init; k < p->n_ctrs; k++) {
		struct pod_ctr *c = &p->ctrs[k];
		if (c->phase != CTR_WAITING)
			continue;
		if (now >= c->retry_at) {
			submit_start(p, c);
			return;
		}
		if (c->retry_at < *next)
			*next = c->retry_at;
		if (c->backoff_reason[0] && streq(c->backoff_reason, "CrashLoopBackOff") &&
		    c->last_state) {
			char fp[128];
			snprintf(fp, sizeof(fp), "spec.containers{%s}", c->name);
			events_record(p->m->events, p->obj, fp, "Warning", "BackOff",
				      "Back-off restarting failed container %s in pod %s_%s(%s)",
				      c->name, p->name, p->ns, p->uid);
		} else if (streq(c->backoff_reason, "ImagePullBackOff")) {
			char fp[128];
			snprintf(fp, sizeof(fp), "spec.containers{%s}", c->name);
			events_record(p->m->events, p->obj, fp, "Normal", "BackOff",
				      "Back-off pulling image \"%s\"",
				      json_str(pod_ctr_spec(c), "image", ""));
		}
	}
}

/* ---------- admission ---------- */

static void pod_requests(const cJSON *pod, int64_t *cpu, int64_t *mem)
{
	const cJSON *c;
	int64_t sc = 0, sm = 0, ic = 0, im = 0, v;

	cJSON_ArrayForEach(c, json_path(pod, "spec.containers"))
	{
		const char *q = json_str(c, "resources.requests.cpu", NULL);
		if (q && quantity_parse_milli(q, &v) == 0)
			sc += v;
		q = json_str(c, "resources.requests.memory", NULL);
		if (q && quantity_parse_bytes(q, &v) == 0)
			sm += v;
	}
	cJSON_ArrayForEach(c, json_path(pod, "spec.initContainers"))
	{
		const char *q = json_str(c, "resources.requests.cpu", NULL);
		if (q && quantity_parse_milli(q, &v) == 0 && v > ic)
			ic = v;
		q = json_str(c, "resources.requests.memory", NULL);
		if (q && quantity_parse_bytes(q, &v) == 0 && v > im)
			im = v;
	}
	*cpu = sc > ic ? sc : ic;
	*mem = sm > im ? sm : im;
}

static bool pod_active(const struct pod *p)
{
	const char *ph;

	if (p->admit != ADMIT_OK || p->torn_down)
		return false;
	ph = pod_phase(p);
	return !streq(ph, "Succeeded") && !streq(ph, "Failed");
}

static bool ports_conflict(const cJSON *a, const cJSON *b)
{
	struct np_port_mapping pa[64], pb[64];
	size_t na = 0, nb = 0;

	if (pod_ports(a, pa, 64, &na) < 0 || pod_ports(b, pb, 64, &nb) < 0)
		return false;
	for (size_t i = 0; i < na; i++)
		for (size_t k = 0; k < nb; k++)
			if (pa[i].host_port == pb[k].host_port && pa[i].proto == pb[k].proto &&
			    (!pa[i].host_ip || !pb[k].host_ip || pa[i].host_ip == pb[k].host_ip))
				return true;
	return false;
}

static void pod_reject(struct pod *p, const char *reason, const char *fmt, ...)
	_printf_(3, 4);
static void pod_reject(struct pod *p, const char *reason, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->admit = ADMIT_REJECTED;
	snprintf(p->fail_reason, sizeof(p->fail_reason), "%s", reason);
	snprintf(p->fail_msg, sizeof(p->fail_msg), "Pod was rejected: %s", msg);
	events_record(p->m->events, p->obj, NULL, "Warning", reason, "%s", msg);
	log_warn("pod %s/%s: rejected: %s: %s", p->ns, p->name, reason, msg);
}

static void pod_admit(struct pod *p)
{
	struct pods *m = p->m;
	int64_t cpu, mem, ucpu = 0, umem = 0, npods = 0;

	if (m->admitted && m->admitted(m->admitted_ud, p->uid)) {
		p->admit = ADMIT_OK;
		return;
	}
	pod_requests(p->obj, &cpu, &mem);
	for (size_t i = 0; i < m->npods; i++) {
		struct pod *o = m->pods[i];
		int64_t oc, om;
		if (o == p || !pod_active(o))
			continue;
		pod_requests(o->obj, &oc, &om);
		ucpu += oc;
		umem += om;
		npods++;
		if (ports_conflict(p->obj, o->obj)) {
			pod_reject(p, "NodePorts",
				   "Predicate NodePorts failed: node(s) didn't have free ports for "
				   "the requested pod ports (used by %s/%s)",
				   o->ns, o->name);
			return;
		}
	}
	if (npods + 1 > m->max_pods) {
		pod_reject(p, "OutOfpods",
			   "Node didn't have enough resource: pods, requested: 1, used: %lld, "
			   "capacity: %lld",
			   (long long)npods, (long long)m->max_pods);
		return;
	}
	if (cpu > 0 && ucpu + cpu > m->alloc_cpu_m) {
		pod_reject(p, "OutOfcpu",
			   "Node didn't have enough resource: cpu, requested: %lld, used: %lld, "
			   "capacity: %lld",
			   (long long)cpu, (long long)ucpu, (long long)m->alloc_cpu_m);
		return;
	}
	if (mem > 0 && umem + mem > m->alloc_mem) {
		pod_reject(p, "OutOfmemory",
			   "Node didn't have enough resource: memory, requested: %lld, used: "
			   "%lld, capacity: %lld",
			   (long long)mem, (long long)umem, (long long)m->alloc_mem);
		return;
	}
	p->admit = ADMIT_OK;
}

/* ---------- status ---------- */

static void pod_publish(struct pod *p, uint64_t now)
{
	_cleanup_json_ cJSON *obj = NULL;
	_cleanup_free_ char *txt = NULL;
	struct err e = { 0 };
	cJSON *st;
	int r;

	if (p->gone || p->finished)
		return;
	st = pod_status_build(p, now);
	if (!st)
		return;
	txt = json_canonical(st);
	if (!txt || (p->last_status && streq(txt, p->last_status))) {
		cJSON_Delete(st);
		return;
	}
	obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "apiVersion", "v1");
	cJSON_AddStringToObject(obj, "kind", "Pod");
	cJSON *md = cJSON_AddObjectToObject(obj, "metadata");
	cJSON_AddStringToObject(md, "name", p->name);
	cJSON_AddStringToObject(md, "namespace", p->ns);
	cJSON_AddItemToObject(obj, "status", st);
	r = api_obj_update_status(p->m->store, obj, NULL, &e);
	if (r < 0) {
		if (r != -ENOENT)
			log_warn_errno(r, "pod %s/%s: cannot write status: %s", p->ns, p->name,
				       e.message);
		return;
	}
	free(p->last_status);
	p->last_status = TAKE_PTR(txt);
}

/* ---------- sync ---------- */

/* spec.activeDeadlineSeconds, counted from status.startTime as the kubelet does. */
static void pod_check_deadline(struct pod *p, uint64_t now, uint64_t *next)
{
	int64_t ads = json_int(p->obj, "spec.activeDeadlineSeconds", 0);
	const char *ph;
	uint64_t dl;

	if (p->deadline_exceeded || p->admit != ADMIT_OK || !p->start_time || ads <= 0)
		return;
	ph = pod_phase(p);
	if (streq(ph, "Succeeded") || streq(ph, "Failed"))
		return;
	dl = (uint64_t)(p->start_time + ads) * 1000;
	if (now < dl) {
		if (dl < *next)
			*next = dl;
		return;
	}
	p->deadline_exceeded = true;
	snprintf(p->fail_reason, sizeof(p->fail_reason), "DeadlineExceeded");
	snprintf(p->fail_msg, sizeof(p->fail_msg),
		 "Pod was active on the node longer than the specified deadline");
	events_record(p->m->events, p->obj, NULL, "Normal", "DeadlineExceeded", "%s",
		      p->fail_msg);
	log_info("pod %s/%s: active deadline of %llds exceeded", p->ns, p->name,
		 (long long)ads);
	for (int k = 0; k < p->n_ctrs; k++) {
		char why[128];
		snprintf(why, sizeof(why), "Stopping container %s", p->ctrs[k].name);
		pod_ctr_stop(&p->ctrs[k], why, pod_grace_seconds(p));
	}
}

/* A binding of this node lost: counted once, by whether a container had started. */
static void pod_lost_count(struct pod *p)
{
	bool started = p->ctr_started;

	if (p->lost_counted)
		return;
	p->lost_counted = true;
	for (int k = 0; k < p->n_ctrs; k++)
		started |= p->ctrs[k].id[0] != 0;
	if (started)
		p->m->lost_after_start++;
	else
		p->m->lost_before_start++;
}

static void pod_sync(struct pod *p)
{
	uint64_t now = util_now_ms(), next = UINT64_MAX;
	enum pods_binding binding;
	const char *node;
	bool hold;

	if (p->finished)
		return;
	node = json_str(p->obj, "spec.nodeName", "");
	binding = p->m->binding ? p->m->binding(p->m->binding_ud, p->uid) : PODS_BINDING_STANDS;
	if (!p->gone && (!streq(node, p->m->cfg->node_name) || binding == PODS_BINDING_LOST)) {
		/* another node's binding won (the store keeps the earliest; a confirmation answer
		 * may say so before the store does): ours stops, without writing the pod */
		pod_lost_count(p);
		if (!p->setup_ok && !p->busy) {
			pod_remove(p);
			return;
		}
		log_info("pod %s/%s: bound to %s, not here: stopping", p->ns, p->name,
			 binding == PODS_BINDING_LOST && streq(node, p->m->cfg->node_name)
			     ? "another node (its binding is earlier)"
			     : node);
		p->gone = true;
	}
	if (p->gone || json_path(p->obj, "metadata.deletionTimestamp")) {
		pod_sync_delete(p, now);
		pod_publish(p, now);
		return;
	}
	if (p->admit == ADMIT_PENDING) {
		pod_admit(p);
		if (p->admit == ADMIT_OK && !p->start_time)
			p->start_time = (int64_t)(now / 1000);
	}
	if (p->admit == ADMIT_REJECTED) {
		pod_publish(p, now);
		return;
	}
	pod_check_deadline(p, now, &next);
	/* a binding still being confirmed: the sandbox is set up, nothing starts and nothing is
	 * written (the pod may be another node's) until it is known to stand */
	hold = binding == PODS_BINDING_PENDING;
	if (!p->busy)
		pod_sync_run(p, now, &next, hold);
	if (!hold)
		pod_publish(p, now);
	if (!p->busy && next != UINT64_MAX)
		pod_arm(p, next, now);
}

static void on_pod_timer(evutil_socket_t fd, short what, void *arg)
{
	pod_sync(arg);
}

/* ---------- the store watch ---------- */

/* Bound to this node (daemon/scheduler.c binds the pods it admits). */
static bool pod_is_ours(struct pods *m, const cJSON *obj)
{
	return streq(json_str(obj, "spec.nodeName", ""), m->cfg->node_name);
}

static void on_pod_event(const struct store_event *ev, void *ud)
{
	struct pods *m = ud;
	struct pod *p = pod_find(m, ev->obj->uid ? ev->obj->uid : "");
	_cleanup_json_ cJSON *obj = NULL;

	if (ev->type == STORE_DELETED) {
		if (p && !p->gone) {
			p->gone = true;
			pod_kick(p);
		}
		return;
	}
	/* our own status writes change nothing we act on */
	if (p && ev->old && ev->old->spec_hlc == ev->obj->spec_hlc) {
		/* another node wrote the status of a pod this node runs (an owner's nomination
		 * from a view that had not seen the binding yet, when two nodes owned the pod's
		 * key at once): the status register keeps the last writer, so say ours again */
		if (ev->obj->status_node && !streq(ev->obj->status_node, m->cfg->node_name) &&
		    p->last_status) {
			free(p->last_status);
			p->last_status = NULL;
			pod_kick(p);
		}
		return;
	}
	obj = store_obj_parse(ev->obj);
	if (!obj)
		return;
	if (!p) {
		if (!pod_is_ours(m, obj))
			return;
		p = pod_add(m, obj);
		if (p)
			pod_kick(p);
		return;
	}
	/* spec changes: keep what the workers were given in sync; deletion, binding */
	cJSON_Delete(p->obj);
	p->obj = TAKE_PTR(obj);
	pod_kick(p);
}

/* ---------- re-adoption after a restart ---------- */

static const cJSON *stored_ctr_status(const cJSON *pod, const struct pod_ctr *c)
{
	const cJSON *arr = json_path(pod, c->init ? "status.initContainerStatuses"
						  : "status.containerStatuses"),
		    *s;

	cJSON_ArrayForEach(s, arr)
	{
		if (streq(json_str(s, "name", ""), c->name))
			return s;
	}
	return NULL;
}

static int64_t ts_ms(const char *s)
{
	int64_t sec;
	const char *dot;

	if (!s || util_rfc3339_parse(s, &sec) < 0)
		return 0;
	dot = strchr(s, '.');
	if (dot) {
		int ms = 0, digits = 0;
		for (const char *q = dot + 1; *q >= '0' && *q <= '9'; q++)
			if (digits < 3) {
				ms = ms * 10 + (*q - '0');
				digits++;
			}
		while (digits++ < 3)
			ms *= 10;
		return sec * 1000 + ms;
	}
	return sec * 1000;
}

static void pod_adopt(struct pod *p, const cJSON *crun_ids)
{
	struct pods *m = p->m;
	struct np_pod_result nr;
	struct err e = { 0 };
	_cleanup_free_ char *marker = NULL;
	const cJSON *id;
	const char *phase = json_str(p->obj, "status.phase", NULL);
	const char *reason = json_str(p->obj, "status.reason", "");

	pod_conditions_restore(p);
	if (phase && streq(phase, "Failed") &&
	    (!strncmp(reason, "OutOf", 5) || streq(reason, "NodePorts"))) {
		p->admit = ADMIT_REJECTED;
		snprintf(p->fail_reason, sizeof(p->fail_reason), "%s", reason);
		snprintf(p->fail_msg, sizeof(p->fail_msg), "%s",
			 json_str(p->obj, "status.message", ""));
		return;
	}
	if (phase && streq(phase, "Failed") && streq(reason, "DeadlineExceeded")) {
		p->deadline_exceeded = true;
		snprintf(p->fail_reason, sizeof(p->fail_reason), "%s", reason);
		snprintf(p->fail_msg, sizeof(p->fail_msg), "%s",
			 json_str(p->obj, "status.message", ""));
	}
	if (!json_str(p->obj, "status.startTime", NULL))
		return; /* never admitted by a kubelet: admit it normally */
	p->admit = ADMIT_OK;
	int64_t st_sec;
	if (util_rfc3339_parse(json_str(p->obj, "status.startTime", ""), &st_sec) == 0)
		p->start_time = st_sec;
	if (np_pod_lookup(m->net, p->uid, "eth0", &nr, &e) == 0) {
		snprintf(p->ip, sizeof(p->ip), "%s", nr.ip_str);
		snprintf(p->netns, sizeof(p->netns), "%s", nr.netns_path);
	}
	if (asprintf(&marker, "%s/.setup-done", p->dir) < 0 || access(marker, F_OK) < 0)
		return; /* setup never finished: it runs again */

	for (int k = 0; k < p->n_ctrs; k++) {
		struct pod_ctr *c = &p->ctrs[k];
		const cJSON *ss = stored_ctr_status(p->obj, c);
		char prefix[40], best[64] = "", cid[80];
		int best_attempt = -1;

		c->restart_count = (int)json_int(ss, "restartCount", 0);
		if (cJSON_IsObject(json_path(ss, "lastState.terminated")))
			c->last_state = cJSON_Duplicate(json_path(ss, "lastState"), true);
		if (c->init && json_path(ss, "state.terminated") &&
		    json_int(ss, "state.terminated.exitCode", -1) == 0) {
			c->done_init = true;
			c->phase = CTR_TERMINATED;
			snprintf(c->reason, sizeof(c->reason), "Completed");
			c->started_ms = ts_ms(json_str(ss, "state.terminated.startedAt", NULL));
			c->finished_ms = ts_ms(json_str(ss, "state.terminated.finishedAt", NULL));
			snprintf(c->id, sizeof(c->id), "%s",
				 pods_container_id(json_str(ss, "state.terminated.containerID", "")));
		}
		snprintf(prefix, sizeof(prefix), "%s-%c%d-", p->short_uid, c->init ? 'i' : 'c',
			 c->index);
		cJSON_ArrayForEach(id, crun_ids)
		{
			int a;
			if (!cJSON_IsString(id) || strncmp(id->valuestring, prefix, strlen(prefix)))
				continue;
			a = atoi(id->valuestring + strlen(prefix));
			if (a > best_attempt) {
				best_attempt = a;
				snprintf(best, sizeof(best), "%s", id->valuestring);
			}
		}
		if (best_attempt < 0 || c->done_init)
			continue;
		struct crun_state cs;
		if (crun_state(m->rt, best, &cs) < 0)
			continue;
		snprintf(c->id, sizeof(c->id), "%s", best);
		c->attempt = best_attempt + 1;
		c->phase = CTR_RUNNING;
		c->generation++;
		snprintf(cid, sizeof(cid), "crun://%s", best);
		if (streq(json_str(ss, "containerID", ""), cid) && json_path(ss, "state.running")) {
			c->started_ms = ts_ms(json_str(ss, "state.running.startedAt", NULL));
			c->ready = json_bool(ss, "ready", false);
			c->started = json_bool(ss, "started", false);
		} else if (streq(json_str(ss, "containerID", ""), cid) &&
			   json_path(ss, "state.terminated.startedAt")) {
			/* exited before the restart: its start is on record (crun's creation
			 * time is earlier) */
			c->started_ms = ts_ms(json_str(ss, "state.terminated.startedAt", NULL));
		} else {
			c->started_ms = cs.created_ns ? cs.created_ns / 1000000 : (int64_t)util_now_ms();
		}
		free(c->image_name);
		free(c->image_id);
		c->image_name = strdup(json_str(ss, "image", json_str(pod_ctr_spec(c), "image", "")));
		c->image_id = strdup(json_str(ss, "imageID", ""));
		log_info("pod %s/%s: container %s re-adopted (%s, %s)", p->ns, p->name, c->name,
			 best, crun_status_name(cs.status));
		if (cs.status == CRUN_RUNNING || cs.status == CRUN_PAUSED)
			pod_probes_start(c);
		ctr_watch(c); /* reads exit.json if it exited while we were away */
		if (c->phase == CTR_RUNNING && cs.status != CRUN_RUNNING && !cs.exited &&
		    cs.status != CRUN_PAUSED)
			ctr_exited(c, 255, 0, 0); /* lost: no exit status was recorded */
	}
	/* containers of this pod that are not the current instance of any slot */
	cJSON_ArrayForEach(id, crun_ids)
	{
		bool current = false;
		if (!cJSON_IsString(id) || strncmp(id->valuestring, p->short_uid, 12))
			continue;
		for (int k = 0; k < p->n_ctrs; k++)
			if (streq(p->ctrs[k].id, id->valuestring) && p->ctrs[k].phase == CTR_RUNNING)
				current = true;
		if (!current)
			crun_delete(m->rt, id->valuestring, true, NULL);
	}
}

struct orphan_job {
	struct pods_job base;
	struct pods *m;
	char uid[256], dir[PATH_MAX];
};

static void orphan_work(struct pods_job *base)
{
	struct orphan_job *j = (struct orphan_job *)base;
	struct err e = { 0 };

	teardown_uid(j->m, j->uid, j->dir, &e);
}

static void orphan_done(struct pods_job *base)
{
	struct orphan_job *j = (struct orphan_job *)base;

	log_info("pod %s: leftovers of a deleted pod removed", j->uid);
	free(j);
}

static void orphan_submit(struct pods *m, const char *uid)
{
	struct orphan_job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	j->base.work = orphan_work;
	j->base.done = orphan_done;
	j->m = m;
	snprintf(j->uid, sizeof(j->uid), "%s", uid);
	snprintf(j->dir, sizeof(j->dir), "%s/%s", m->pods_dir, uid);
	pods_pool_submit(m->pool, &j->base);
}

static bool uid_known(struct pods *m, const char *uid)
{
	return pod_find(m, uid) != NULL;
}

static void orphans_collect(struct pods *m, const cJSON *crun_ids)
{
	_cleanup_free_ struct ipam_lease *leases = NULL;
	size_t n = 0;
	struct err e = { 0 };
	DIR *d;
	struct dirent *de;
	const cJSON *id;

	if ((d = opendir(m->pods_dir))) {
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' && !uid_known(m, de->d_name))
				orphan_submit(m, de->d_name);
		closedir(d);
	}
	if (np_node_leases(m->net, &leases, &n, &e) >= 0)
		for (size_t i = 0; i < n; i++) {
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", m->pods_dir, leases[i].owner);
			if (!uid_known(m, leases[i].owner) && access(path, F_OK) < 0)
				orphan_submit(m, leases[i].owner);
		}
	/* containers whose pod dir is gone too */
	cJSON_ArrayForEach(id, crun_ids)
	{
		bool known = false;
		if (!cJSON_IsString(id))
			continue;
		for (size_t i = 0; i < m->npods; i++)
			if (!strncmp(id->valuestring, m->pods[i]->short_uid, 12))
				known = true;
		if (!known) {
			log_info("container %s: no pod owns it, removing", id->valuestring);
			crun_delete(m->rt, id->valuestring, true, NULL);
		}
	}
}

struct adopt_ctx {
	struct pods *m;
	const cJSON *crun_ids;
};

static int adopt_one(struct store_obj *o, void *ud)
{
	struct adopt_ctx *a = ud;
	_cleanup_json_ cJSON *obj = store_obj_parse(o);
	struct pod *p;

	if (!obj || !pod_is_ours(a->m, obj))
		return 0;
	p = pod_add(a->m, obj);
	if (!p)
		return 0;
	pod_adopt(p, a->crun_ids);
	pod_kick(p);
	return 0;
}

/* ---------- setup ---------- */

static void host_ip_detect(char out[16])
{
	struct ifaddrs *ifa, *i;

	snprintf(out, 16, "127.0.0.1");
	if (getifaddrs(&ifa) < 0)
		return;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		struct sockaddr_in *sin = (struct sockaddr_in *)i->ifa_addr;
		if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127)
			continue;
		inet_ntop(AF_INET, &sin->sin_addr, out, 16);
		break;
	}
	freeifaddrs(ifa);
}

/* The node's cgroup parent in every hierarchy (cpuset excepted: crun fills in cpus/mems for
 * the paths it creates itself). */
static void cgroup_parent_create(const char *name)
{
	_cleanup_mountinfo_ struct mountinfo mi = { 0 };
	const struct mountinfo_entry *m;

	if (mountinfo_open(&mi, NULL) < 0)
		return;
	while (mountinfo_next(&mi, &m) > 0) {
		_cleanup_free_ char *full = NULL;
		if (!mountinfo_is_cgroup(m) || mountinfo_has_option(m->super_options, "cpuset"))
			continue;
		if (asprintf(&full, "%s/%s", m->mount_point, name) >= 0)
			mkdir(full, 0755);
	}
}

void pods_set_admitted(struct pods *m, pods_admitted_fn fn, void *userdata)
{
	if (!m)
		return;
	m->admitted = fn;
	m->admitted_ud = userdata;
}

void pods_set_binding(struct pods *m, pods_binding_fn fn, void *userdata)
{
	if (!m)
		return;
	m->binding = fn;
	m->binding_ud = userdata;
}

void pods_binding_settled(struct pods *m, const char *uid)
{
	struct pod *p = m ? pod_find(m, uid) : NULL;

	if (p)
		pod_kick(p);
}

int pods_metrics(void *ud, char **text)
{
	struct pods *m = ud;

	if (asprintf(text,
		     "# HELP shoal_sched_bindings_lost_total Pods bound to this node whose binding "
		     "lost to an earlier one, by whether a container had started here.\n"
		     "# TYPE shoal_sched_bindings_lost_total counter\n"
		     "shoal_sched_bindings_lost_total{stage=\"before_start\"} %llu\n"
		     "shoal_sched_bindings_lost_total{stage=\"after_start\"} %llu\n",
		     (unsigned long long)m->lost_before_start,
		     (unsigned long long)m->lost_after_start) < 0)
		return -ENOMEM;
	return 0;
}

int pods_images_preload(const char *state_dir, const char *paths, struct err *e)
{
	_cleanup_free_ char *copy = strdup(paths ? paths : "");
	struct image_store *store = NULL;
	char *save = NULL, *t;
	int r;

	if (!copy)
		return -ENOMEM;
	/* a handle of its own: the store's flock orders it with the pod manager's jobs */
	r = image_store_open(state_dir, &store);
	if (r < 0)
		return err_set(e, -r, 0, "", "image store in %s: %s", state_dir, strerror(-r));
	for (t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		_cleanup_json_ cJSON *names = NULL;
		_cleanup_free_ char *txt = NULL;
		r = image_store_import(store, t, NULL, &names, e);
		if (r < 0)
			break;
		txt = cJSON_PrintUnformatted(names);
		log_info("images: imported %s from %s", txt ? txt : "?", t);
	}
	image_store_free(store);
	return r < 0 ? r : 0;
}

int pods_new(struct event_base *base, struct store *store, const struct config *cfg,
	     struct pods **ret, struct err *e)
{
	struct pods *m = calloc(1, sizeof(*m));
	_cleanup_free_ char *croot = NULL;
	_cleanup_json_ cJSON *crun_ids = NULL;
	int r;

	if (!m)
		return -ENOMEM;
	m->base = base;
	m->store = store;
	m->cfg = cfg;
	m->ifd = -1;
	pthread_mutex_init(&m->net_lock, NULL);
	pthread_mutex_init(&m->img_lock, NULL);
	pthread_mutex_init(&m->unreach_lock, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (asprintf(&m->pods_dir, "%s/pods", cfg->state_dir) < 0 ||
	    asprintf(&m->ctr_state_dir, "%s/containers", cfg->run_dir) < 0 ||
	    asprintf(&croot, "%s/crun", cfg->run_dir) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = util_mkdir_p(m->pods_dir, 0750)) < 0) {
		err_set(e, -r, 0, "", "%s: %s", m->pods_dir, strerror(-r));
		goto fail;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	m->alloc_cpu_m = (ncpu > 0 ? ncpu : 1) * 1000;
	m->alloc_mem = util_mem_total_bytes();
	m->oom_floor = bundle_oom_score_adj_floor();
	m->max_pods = cfg->max_pods;
	host_ip_detect(m->host_ip);

	if ((r = events_new(store, "kubelet", cfg->node_name, &m->events)) < 0)
		goto fail;
	if ((r = image_store_open(cfg->state_dir, &m->images)) < 0) {
		err_set(e, -r, 0, "", "image store in %s: %s", cfg->state_dir, strerror(-r));
		goto fail;
	}
	struct crun_opts co = { .root = croot, .state_dir = m->ctr_state_dir,
				.crun_path = getenv("SHOAL_CRUN") };
	if ((r = crun_rt_new(&co, &m->rt)) < 0) {
		err_set(e, -r, 0, "", "crun runtime: %s", strerror(-r));
		goto fail;
	}
	struct np_node_opts no = {
		.node_name = cfg->node_name,
		.state_dir = cfg->state_dir,
		.pod_cidr = cfg->pod_cidr,
		.cluster_cidr = cfg->cluster_cidr,
		.nft_table = cfg->nft_table,
		.mtu = (int)cfg->pod_mtu,
	};
	if ((r = np_node_open(&no, &m->net, e)) < 0 || (r = np_node_setup(m->net, e)) < 0)
		goto fail;
	ipam_addr_format(np_node_range(m->net)->gateway, m->dns_ip);
	cgroup_parent_create(cfg->cgroup_name);

	m->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (m->ifd < 0) {
		r = -errno;
		goto fail;
	}
	m->iev = event_new(base, m->ifd, EV_READ | EV_PERSIST, on_inotify, m);
	if (!m->iev || event_add(m->iev, NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = pods_pool_new(base, PODS_THREADS, &m->pool)) < 0)
		goto fail;

	/* re-adopt what a previous daemon left running, then follow changes */
	if (crun_list(m->rt, &crun_ids) < 0)
		crun_ids = cJSON_CreateArray();
	struct adopt_ctx ac = { m, crun_ids };
	store_list(store, "pods", NULL, NULL, NULL, adopt_one, &ac);
	orphans_collect(m, crun_ids);
	r = store_watch_add(store, "pods", store_rv(store), on_pod_event, m, &m->watch);
	if (r < 0)
		goto fail;
	log_info("pods: managing %zu pod(s); pod CIDR %s, DNS %s, cgroup parent %s", m->npods,
		 cfg->pod_cidr, m->dns_ip, cfg->cgroup_name);
	*ret = m;
	return 0;
fail:
	if (!e->message[0])
		err_set(e, -r, 0, "", "%s", strerror(-r));
	pods_free(m);
	return r;
}

struct pods *pods_free(struct pods *m)
{
	if (!m)
		return NULL;
	if (m->watch)
		store_watch_cancel(m->watch);
	m->pool = pods_pool_free(m->pool);
	for (size_t i = 0; i < m->npods; i++)
		pod_free(m->pods[i]);
	free(m->pods);
	if (m->iev)
		event_free(m->iev);
	if (m->ifd >= 0)
		close(m->ifd);
	m->net = np_node_close(m->net);
	m->rt = crun_rt_free(m->rt);
	m->images = image_store_free(m->images);
	m->events = events_free(m->events);
	free(m->pods_dir);
	free(m->ctr_state_dir);
	pthread_mutex_destroy(&m->net_lock);
	pthread_mutex_destroy(&m->img_lock);
	pthread_mutex_destroy(&m->unreach_lock);
	free(m);
	return NULL;
}
