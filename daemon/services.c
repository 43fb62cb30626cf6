// SPDX-License-Identifier: Apache-2.0
/* The node's service proxy: Services + Endpoints in the replica -> eBPF maps (see services.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "api/object.h"
#include "bpf/lb.h"
#include "bpf/nodeport.h"
#include "daemon/services.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/members.h"

#define SVC_COMPONENT "shoal-service-proxy"
#define SVC_MAX_NODE_IPS 64

/* A frontend as programmed (or wanted): the whole backend set, in a canonical order. */
struct svc_fe {
	struct lb_frontend fe;
	struct lb_backend_addr *be;
	size_t n;
	bool maglev; /* NodePort / external: has a Maglev table for the tc datapath */
};

struct svc_state {
	char *key;       /* "ns/name" */
	char *ns, *name;
	cJSON *svc;      /* the Service, NULL until seen */
	cJSON *ep;       /* its Endpoints, NULL if none */
	cJSON *drain;    /* array of Endpoints subsets of terminating pods still served */
	struct svc_fe *cur; /* programmed */
	size_t ncur;
	bool failed;
	char *ev_reason, *ev_message; /* last Event sent (not repeated) */
};

/* frontend -> owning service, to find conflicts */
struct fe_owner {
	struct lb_frontend fe; /* vip, port, proto */
	struct svc_state *owner;
};

struct svc_proxy {
	struct event_base *base;
	struct store *store;
	struct svc_proxy_opts opts;
	char *node;
	char *pin_dir;
	struct lb *lb;
	struct np *np;
	uint32_t node_ips[SVC_MAX_NODE_IPS]; /* NodePort frontends: every node address */
	size_t nnode_ip;
	int uplinks[NP_MAX_IFACES]; /* the interfaces the programs are attached to */
	size_t nuplink;
	bool net_auto;       /* addresses (and, without --uplink, interfaces) follow the netns */
	int nl_fd;           /* rtnetlink: links, addresses, routes changed */
	struct event *nl_ev, *nl_timer;
	struct store_watch *w_svc, *w_ep, *w_pod;
	void *states; /* tsearch tree of struct svc_state * by key */
	void *owners; /* tsearch tree of struct fe_owner * */
	uint32_t nstates, nfe, ndrain;
	struct event *retry;
	uint64_t syncs, last_sync_us, errors, start_program_us;
	/* rotation: backends on nodes the local members view holds suspect or dead */
	struct members *members;
	struct event *members_timer;
	char *down_sig; /* "name=state;..." of those nodes when the datapath was last computed */
	uint32_t nodes_out;
};

/* --- small helpers --- */

static int state_cmp(const void *a, const void *b)
{
	return strcmp(((const struct svc_state *)a)->key, ((const struct svc_state *)b)->key);
}

static int fe_cmp(const void *a, const void *b)
{
	const struct lb_frontend *x = a, *y = b;

	if (x->vip != y->vip)
		return ntohl(x->vip) < ntohl(y->vip) ? -1 : 1;
	if (x->port != y->port)
		return ntohs(x->port) < ntohs(y->port) ? -1 : 1;
	return (int)x->proto - (int)y->proto;
}

static int owner_cmp(const void *a, const void *b)
{
	return fe_cmp(&((const struct fe_owner *)a)->fe, &((const struct fe_owner *)b)->fe);
}

static int be_cmp(const void *a, const void *b)
{
	const struct lb_backend_addr *x = a, *y = b;

	if (x->ip != y->ip)
		return ntohl(x->ip) < ntohl(y->ip) ? -1 : 1;
	if (x->port != y->port)
		return ntohs(x->port) < ntohs(y->port) ? -1 : 1;
	return 0;
}

static void fes_free(struct svc_fe *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].be);
	free(v);
}

static void state_free(void *p)
{
	struct svc_state *s = p;

	if (!s)
		return;
	free(s->key);
	free(s->ns);
	free(s->name);
	cJSON_Delete(s->svc);
	cJSON_Delete(s->ep);
	cJSON_Delete(s->drain);
	fes_free(s->cur, s->ncur);
	free(s->ev_reason);
	free(s->ev_message);
	free(s);
}

static struct svc_state *state_find(struct svc_proxy *p, const char *ns, const char *name,
				    bool create)
{
	_cleanup_free_ char *key = NULL;
	struct svc_state k, *s;
	void **r;

	if (asprintf(&key, "%s/%s", ns, name) < 0)
		return NULL;
	k.key = key;
	r = tfind(&k, &p->states, state_cmp);
	if (r)
		return *r;
	if (!create)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->key = TAKE_PTR(key);
	s->ns = strdup(ns);
	s->name = strdup(name);
	s->drain = cJSON_CreateArray();
	if (!s->ns || !s->name || !s->drain || !tsearch(s, &p->states, state_cmp)) {
		state_free(s);
		return NULL;
	}
	p->nstates++;
	return s;
}

/* Forget a state with nothing left in it (no service, no endpoints, nothing programmed). */
static void state_maybe_drop(struct svc_proxy *p, struct svc_state *s)
{
	if (s->svc || s->ep || s->ncur || cJSON_GetArraySize(s->drain))
		return;
	tdelete(s, &p->states, state_cmp);
	p->nstates--;
	state_free(s);
}

static bool parse_ip4(const char *s, uint32_t *ret)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return false;
	*ret = a.s_addr;
	return true;
}

static int proto_parse(const char *s)
{
	if (!s || streq(s, "TCP"))
		return IPPROTO_TCP;
	if (streq(s, "UDP"))
		return IPPROTO_UDP;
	return -EPROTONOSUPPORT;
}

/* --- Events --- */

static void svc_event(struct svc_proxy *p, struct svc_state *s, const char *reason,
		      const char *fmt, ...) _printf_(4, 5);

static void svc_event(struct svc_proxy *p, struct svc_state *s, const char *reason,
		      const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL, *name = NULL;
	_cleanup_json_ cJSON *ev = cJSON_CreateObject();
	char ts[64], uid[40];
	struct err e = {};
	cJSON *md, *io, *src;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0 || !ev)
		return;
	log_warn("service %s: %s: %s", s->key, reason, msg);
	/* the same complaint again is not news */
	if (s->ev_reason && streq(s->ev_reason, reason) && s->ev_message && streq(s->ev_message, msg))
		return;
	free(s->ev_reason);
	free(s->ev_message);
	s->ev_reason = strdup(reason);
	s->ev_message = strdup(msg);

	util_uuid4(uid);
	if (asprintf(&name, "%s.%.16s", s->name, uid) < 0)
		return;
	for (char *c = name; *c; c++)
		if (*c == '-' && c > name + strlen(s->name))
			*c = 'a';
	util_rfc3339((int64_t)(util_now_ms() / 1000), ts, sizeof(ts));
	cJSON_AddStringToObject(ev, "apiVersion", "v1");
	cJSON_AddStringToObject(ev, "kind", "Event");
	md = cJSON_AddObjectToObject(ev, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", s->ns);
	io = cJSON_AddObjectToObject(ev, "involvedObject");
	cJSON_AddStringToObject(io, "apiVersion", "v1");
	cJSON_AddStringToObject(io, "kind", "Service");
	cJSON_AddStringToObject(io, "namespace", s->ns);
	cJSON_AddStringToObject(io, "name", s->name);
	if (s->svc && json_str(s->svc, "metadata.uid", NULL))
		cJSON_AddStringToObject(io, "uid", json_str(s->svc, "metadata.uid", ""));
	if (s->svc && json_str(s->svc, "metadata.resourceVersion", NULL))
		cJSON_AddStringToObject(io, "resourceVersion",
					json_str(s->svc, "metadata.resourceVersion", ""));
	cJSON_AddStringToObject(ev, "reason", reason);
	cJSON_AddStringToObject(ev, "message", msg);
	cJSON_AddStringToObject(ev, "type", "Warning");
	cJSON_AddNumberToObject(ev, "count", 1);
	cJSON_AddStringToObject(ev, "firstTimestamp", ts);
	cJSON_AddStringToObject(ev, "lastTimestamp", ts);
	src = cJSON_AddObjectToObject(ev, "source");
	cJSON_AddStringToObject(src, "component", SVC_COMPONENT);
	cJSON_AddStringToObject(src, "host", p->node);
	cJSON_AddStringToObject(ev, "reportingComponent", SVC_COMPONENT);
	cJSON_AddStringToObject(ev, "reportingInstance", p->node);
	r = api_obj_create(p->store, ev, NULL, &e);
	if (r < 0)
		log_warn_errno(r, "service %s: cannot record event %s: %s", s->key, reason,
			       e.message);
}

static void svc_event_clear(struct svc_state *s)
{
	free(s->ev_reason);
	free(s->ev_message);
	s->ev_reason = s->ev_message = NULL;
}

/* --- what a service wants --- */

struct want {
	struct svc_fe *v;
	size_t n, cap;
};

static void want_free(struct want *w)
{
	fes_free(w->v, w->n);
	*w = (struct want){};
}

static int want_add(struct want *w, const struct lb_frontend *fe, const struct lb_backend_addr *be,
		    size_t n, bool local_only, bool maglev)
{
	struct svc_fe *f;
	size_t k = 0;

	if (w->n == w->cap) {
		struct svc_fe *t = realloc(w->v, (w->cap = w->cap ? w->cap * 2 : 4) * sizeof(*t));

		if (!t)
			return -ENOMEM;
		w->v = t;
	}
	f = &w->v[w->n];
	*f = (struct svc_fe){ .fe = *fe, .maglev = maglev };
	f->be = calloc(n + 1, sizeof(*f->be));
	if (!f->be)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!local_only || (be[i].flags & SHOAL_BE_LOCAL))
			f->be[k++] = be[i];
	f->n = k;
	w->n++;
	return 0;
}

/* Backends of one service port from Endpoints subsets (ready) and drained subsets. */
struct be_set {
	struct lb_backend_addr *v;
	size_t n, cap;
};

static int be_set_add(struct be_set *b, uint32_t ip, uint16_t port, uint8_t flags)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->v[i].ip == ip && b->v[i].port == port) {
			/* ready wins over draining (a pod back in the ready set) */
			if (!(flags & SHOAL_BE_TERMINATING))
				b->v[i].flags = flags;
			return 0;
		}
	if (b->n == b->cap) {
		struct lb_backend_addr *t = realloc(b->v, (b->cap = b->cap ? b->cap * 2 : 8) * sizeof(*t));

		if (!t)
			return -ENOMEM;
		b->v = t;
	}
	b->v[b->n++] = (struct lb_backend_addr){ .ip = ip, .port = port, .flags = flags };
	return 0;
}

/* Where a node's backends stand in the local members view: 0 in rotation (alive, or a node
 * gossip does not know: a lone node, a hand-written Endpoints), 1 fallback only (suspect: used
 * when no backend elsewhere is left, like a terminating one), 2 out (dead or departed: its
 * pods are unreachable, its routes withdrawn). */
static int node_rotation(struct svc_proxy *p, const char *node)
{
	const struct members_info *mi;

	if (!p->members || !node || streq(node, p->node))
		return 0;
	mi = members_view_find(p->members, node);
	if (!mi || mi->state == MEMBERS_ALIVE)
		return 0;
	return mi->state == MEMBERS_SUSPECT ? 1 : 2;
}

static int be_from_subsets(struct svc_proxy *p, const cJSON *subsets, const cJSON *sp,
			   uint8_t proto, uint8_t extra, struct be_set *out)
{
	const char *pname = json_str(sp, "name", "");
	const cJSON *ss, *pt, *a;

	cJSON_ArrayForEach(ss, subsets)
	{
		cJSON_ArrayForEach(pt, json_path(ss, "ports"))
		{
			int64_t port = json_int(pt, "port", 0);
			int pr = proto_parse(json_str(pt, "protocol", NULL));

			if (!streq(json_str(pt, "name", ""), pname) || pr != proto || port <= 0 ||
			    port > 65535)
				continue;
			cJSON_ArrayForEach(a, json_path(ss, "addresses"))
			{
				const char *nn = json_str(a, "nodeName", NULL);
				uint8_t flags = extra;
				uint32_t ip;

				if (!parse_ip4(json_str(a, "ip", NULL), &ip))
					continue;
				if (nn && streq(nn, p->node))
					flags |= SHOAL_BE_LOCAL;
				switch (node_rotation(p, nn)) {
				case 2:
					continue;
				case 1:
					flags |= SHOAL_BE_TERMINATING;
					break;
				}
				if (be_set_add(out, ip, htons((uint16_t)port), flags) < 0)
					return -ENOMEM;
			}
		}
	}
	return 0;
}

/*
 * Compute every frontend the service wants with its backends. Returns 0, or <0 with an Event
 * reason/message in `e` (nothing of the service may be programmed then).
 */
static int svc_want(struct svc_proxy *p, struct svc_state *s, struct want *w, struct err *e)
{
	const cJSON *svc = s->svc, *sp, *ip;
	const char *type = json_str(svc, "spec.type", "ClusterIP");
	bool local = streq(json_str(svc, "spec.externalTrafficPolicy", "Cluster"), "Local");
	uint8_t flags = 0;
	uint32_t timeout = 0, vips[16], xips[16];
	size_t nvip = 0, nxip = 0;
	int r;

	if (streq(type, "ExternalName"))
		return 0;
	if (streq(json_str(svc, "spec.sessionAffinity", "None"), "ClientIP")) {
		int64_t t = json_int(svc, "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
				     SHOAL_AFFINITY_DEF);

		flags |= SHOAL_SVC_AFFINITY;
		timeout = t > 0 && t <= 86400 ? (uint32_t)t : SHOAL_AFFINITY_DEF;
	}
	/* clusterIPs (dual stack: the IPv4 ones; this datapath has no IPv6 hooks yet) */
	if (cJSON_IsArray(json_path(svc, "spec.clusterIPs"))) {
		cJSON_ArrayForEach(ip, json_path(svc, "spec.clusterIPs")) if (
			nvip < ARRAY_SIZE(vips) && cJSON_IsString(ip) &&
			parse_ip4(ip->valuestring, &vips[nvip])) nvip++;
	} else if (parse_ip4(json_str(svc, "spec.clusterIP", NULL), &vips[0])) {
		nvip = 1;
	}
	cJSON_ArrayForEach(ip, json_path(svc, "spec.externalIPs"))
	{
		if (nxip < ARRAY_SIZE(xips) && cJSON_IsString(ip) &&
		    parse_ip4(ip->valuestring, &xips[nxip]))
			nxip++;
	}
	/* headless (clusterIP None): DNS only, nothing in the datapath */
	if (!nvip && !nxip)
		return 0;

	cJSON_ArrayForEach(sp, json_path(svc, "spec.ports"))
	{
		int proto = proto_parse(json_str(sp, "protocol", NULL));
		int64_t port = json_int(sp, "port", 0), nodeport = json_int(sp, "nodePort", 0);
		struct be_set bs = {};
		struct lb_frontend fe;

		if (proto < 0)
			return err_set(e, EPROTONOSUPPORT, 422, "UnsupportedProtocol",
				       "port %s%s%lld: protocol %s is not supported by the datapath "
				       "(TCP and UDP are); the service is not programmed",
				       json_str(sp, "name", ""), json_str(sp, "name", NULL) ? " " : "",
				       (long long)port, json_str(sp, "protocol", ""));
		if (port <= 0 || port > 65535)
			return err_set(e, EINVAL, 422, "InvalidPort", "port %lld is out of range",
				       (long long)port);
		r = be_from_subsets(p, json_path(s->ep, "subsets"), sp, (uint8_t)proto, 0, &bs);
		if (r == 0)
			r = be_from_subsets(p, s->drain, sp, (uint8_t)proto, SHOAL_BE_TERMINATING,
					    &bs);
		if (r == 0 && bs.n)
			qsort(bs.v, bs.n, sizeof(*bs.v), be_cmp);
		for (size_t i = 0; r == 0 && i < nvip; i++) {
			fe = (struct lb_frontend){ .vip = vips[i], .port = htons((uint16_t)port),
						   .proto = (uint8_t)proto, .flags = flags,
						   .affinity_timeout = timeout };
			r = want_add(w, &fe, bs.v, bs.n, false, false);
		}
		for (size_t i = 0; r == 0 && i < nxip; i++) {
			fe = (struct lb_frontend){ .vip = xips[i], .port = htons((uint16_t)port),
						   .proto = (uint8_t)proto,
						   .flags = flags | SHOAL_SVC_EXTERNAL |
							    (local ? SHOAL_SVC_LOCAL : 0),
						   .affinity_timeout = timeout };
			r = want_add(w, &fe, bs.v, bs.n, local, true);
		}
		for (size_t i = 0; r == 0 && i < p->nnode_ip && nodeport > 0 && nodeport <= 65535 &&
				   (streq(type, "NodePort") || streq(type, "LoadBalancer"));
		     i++) {
			fe = (struct lb_frontend){ .vip = p->node_ips[i],
						   .port = htons((uint16_t)nodeport),
						   .proto = (uint8_t)proto,
						   .flags = flags | SHOAL_SVC_NODEPORT |
							    (local ? SHOAL_SVC_LOCAL : 0),
						   .affinity_timeout = timeout };
			r = want_add(w, &fe, bs.v, bs.n, local, true);
		}
		free(bs.v);
		if (r < 0)
			return err_set(e, r, 500, "InternalError", "out of memory");
	}
	/* two ports of one service on one frontend */
	for (size_t i = 0; i < w->n; i++)
		for (size_t j = i + 1; j < w->n; j++)
			if (!fe_cmp(&w->v[i].fe, &w->v[j].fe)) {
				char a[INET_ADDRSTRLEN];

				inet_ntop(AF_INET, &w->v[i].fe.vip, a, sizeof(a));
				return err_set(e, EEXIST, 422, "PortConflict",
					       "%s:%u/%s is listed twice; the service is not "
					       "programmed",
					       a, ntohs(w->v[i].fe.port),
					       w->v[i].fe.proto == IPPROTO_TCP ? "tcp" : "udp");
			}
	return 0;
}

/* --- programming --- */

static struct fe_owner *owner_find(struct svc_proxy *p, const struct lb_frontend *fe)
{
	struct fe_owner k = { .fe = *fe };
	void **r = tfind(&k, &p->owners, owner_cmp);

	return r ? *r : NULL;
}

static bool fe_same(const struct svc_fe *a, const struct svc_fe *b)
{
	return a->fe.flags == b->fe.flags && a->fe.affinity_timeout == b->fe.affinity_timeout &&
	       a->maglev == b->maglev && a->n == b->n &&
	       (!a->n || !memcmp(a->be, b->be, a->n * sizeof(*a->be)));
}

static int fe_program(struct svc_proxy *p, const struct svc_fe *f, struct err *e)
{
	_cleanup_free_ struct lb_member_info *mi = NULL;
	uint16_t rn;
	int r, k;

	r = lb_service_upsert(p->lb, &f->fe, f->be, f->n, e);
	if (r < 0 || !p->np || !f->maglev)
		return r;
	mi = calloc(f->n + 1, sizeof(*mi));
	if (!mi)
		return -ENOMEM;
	k = lb_service_get(p->lb, &f->fe, &rn, mi, f->n);
	if (k < 0)
		return err_set(e, k, 500, "InternalError", "frontend vanished");
	return np_maglev_set(p->np, rn, mi, (size_t)k, e);
}

static void fe_unprogram(struct svc_proxy *p, const struct svc_fe *f)
{
	uint16_t rn;

	if (p->np && f->maglev && lb_service_get(p->lb, &f->fe, &rn, NULL, 0) >= 0)
		np_maglev_delete(p->np, rn);
	lb_service_delete(p->lb, &f->fe, NULL);
}

static const struct svc_fe *fe_in(const struct svc_fe *v, size_t n, const struct lb_frontend *fe)
{
	for (size_t i = 0; i < n; i++)
		if (!fe_cmp(&v[i].fe, fe))
			return &v[i];
	return NULL;
}

static void owners_set(struct svc_proxy *p, struct svc_state *s, const struct svc_fe *old,
		       size_t nold, const struct svc_fe *cur, size_t ncur)
{
	for (size_t i = 0; i < nold; i++) {
		struct fe_owner *o = owner_find(p, &old[i].fe);

		if (o && o->owner == s && !fe_in(cur, ncur, &old[i].fe)) {
			tdelete(o, &p->owners, owner_cmp);
			free(o);
			p->nfe--;
		}
	}
	for (size_t i = 0; i < ncur; i++) {
		struct fe_owner *o;

		if (owner_find(p, &cur[i].fe))
			continue;
		o = calloc(1, sizeof(*o));
		if (!o)
			continue;
		o->fe = cur[i].fe;
		o->owner = s;
		if (!tsearch(o, &p->owners, owner_cmp)) {
			free(o);
			continue;
		}
		p->nfe++;
	}
}

/*
 * Make the datapath hold exactly what service `s` wants, or leave its previous state untouched.
 * Returns 0 or <0 (an Event has been recorded).
 */
static int svc_apply(struct svc_proxy *p, struct svc_state *s)
{
	struct want w = {};
	struct err e = {};
	struct lb_stats st;
	size_t done = 0, ndel = 0;
	long long dsvc = 0, dbe = 0;
	uint64_t t0 = util_mono_us();
	int r = 0;

	if (s->svc) {
		r = svc_want(p, s, &w, &e);
		if (r < 0)
			goto fail;
	}
	/* a frontend another service holds: first come keeps it */
	for (size_t i = 0; i < w.n; i++) {
		struct fe_owner *o = owner_find(p, &w.v[i].fe);

		if (o && o->owner != s) {
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &w.v[i].fe.vip, a, sizeof(a));
			r = err_set(&e, EADDRINUSE, 409, "FrontendConflict",
				    "%s:%u/%s is already used by service %s; the service is not "
				    "programmed",
				    a, ntohs(w.v[i].fe.port),
				    w.v[i].fe.proto == IPPROTO_TCP ? "tcp" : "udp", o->owner->key);
			goto fail;
		}
	}
	/* room for the whole service, or nothing is written */
	lb_stats_get(p->lb, &st);
	for (size_t i = 0; i < w.n; i++) {
		dsvc += 1 + (long long)w.v[i].n;
		dbe += (long long)w.v[i].n;
	}
	for (size_t i = 0; i < s->ncur; i++) {
		dsvc -= 1 + (long long)s->cur[i].n;
		dbe -= (long long)s->cur[i].n;
	}
	if ((long long)st.svc_entries + dsvc > st.svc_max ||
	    (long long)st.backend_entries + dbe > st.backend_max) {
		r = err_set(&e, ENOSPC, 507, "DatapathFull",
			    "service map %u/%u entries, backend map %u/%u: %lld and %lld more "
			    "needed; the service is not programmed",
			    st.svc_entries, st.svc_max, st.backend_entries, st.backend_max,
			    dsvc > 0 ? dsvc : 0, dbe > 0 ? dbe : 0);
		goto fail;
	}

	/* frontends the service no longer wants go first (they free room) */
	for (size_t i = 0; i < s->ncur; i++)
		if (!fe_in(w.v, w.n, &s->cur[i].fe)) {
			fe_unprogram(p, &s->cur[i]);
			ndel++;
		}
	for (done = 0; done < w.n; done++) {
		const struct svc_fe *old = fe_in(s->cur, s->ncur, &w.v[done].fe);

		if (old && fe_same(old, &w.v[done]))
			continue;
		r = fe_program(p, &w.v[done], &e);
		if (r < 0)
			break;
	}
	if (r < 0) {
		/* undo: what was programmed before comes back, what is new goes */
		for (size_t i = 0; i <= done && i < w.n; i++) {
			const struct svc_fe *old = fe_in(s->cur, s->ncur, &w.v[i].fe);

			if (old)
				fe_program(p, old, NULL);
			else
				fe_unprogram(p, &w.v[i]);
		}
		for (size_t i = 0; ndel && i < s->ncur; i++)
			if (!fe_in(w.v, w.n, &s->cur[i].fe))
				fe_program(p, &s->cur[i], NULL);
		if (!e.reason[0])
			err_set(&e, r, 500, "InternalError", "%s", strerror(-r));
		if (e.code == 507)
			snprintf(e.reason, sizeof(e.reason), "DatapathFull");
		goto fail;
	}
	owners_set(p, s, s->cur, s->ncur, w.v, w.n);
	fes_free(s->cur, s->ncur);
	s->cur = TAKE_PTR(w.v);
	s->ncur = w.n;
	if (s->failed)
		log_info("service %s: programmed (%zu frontends)", s->key, s->ncur);
	s->failed = false;
	svc_event_clear(s);
	p->syncs++;
	p->last_sync_us = util_mono_us() - t0;
	return 0;
fail:
	want_free(&w);
	p->errors++;
	s->failed = true;
	svc_event(p, s, e.reason[0] ? e.reason : "SyncFailed", "%s",
		  e.message[0] ? e.message : strerror(-r));
	if (p->retry && !evtimer_pending(p->retry, NULL)) {
		struct timeval tv = { .tv_sec = p->opts.retry_ms / 1000,
				      .tv_usec = (p->opts.retry_ms % 1000) * 1000 };

		evtimer_add(p->retry, &tv);
	}
	return r < 0 ? r : -EINVAL;
}

/* --- draining terminating backends --- */

static bool pod_terminating_with_ip(struct svc_proxy *p, const cJSON *ref, const char *ip)
{
	struct store_obj *o = NULL;
	_cleanup_json_ cJSON *pod = NULL;
	const char *phase;

	if (!ref || store_get(p->store, "pods", json_str(ref, "namespace", ""),
			      json_str(ref, "name", ""), &o) < 0)
		return false;
	pod = store_obj_parse(o);
	store_obj_unref(o);
	if (!pod || !json_str(pod, "metadata.deletionTimestamp", NULL))
		return false;
	phase = json_str(pod, "status.phase", "");
	if (streq(phase, "Succeeded") || streq(phase, "Failed"))
		return false;
	return streq(json_str(pod, "status.podIP", ""), ip);
}

static bool subsets_have_ip(const cJSON *subsets, const char *ip)
{
	const cJSON *ss, *a;

	cJSON_ArrayForEach(ss, subsets) cJSON_ArrayForEach(a, json_path(ss, "addresses")) if (
		streq(json_str(a, "ip", ""), ip)) return true;
	return false;
}

/* Addresses that left the ready set because their pod is terminating keep serving (drained). */
static void drain_collect(struct svc_proxy *p, struct svc_state *s, const cJSON *old_ep,
			  const cJSON *new_ep)
{
	const cJSON *ss, *a;

	cJSON_ArrayForEach(ss, json_path(old_ep, "subsets"))
	{
		cJSON_ArrayForEach(a, json_path(ss, "addresses"))
		{
			const char *ip = json_str(a, "ip", "");
			cJSON *d, *arr;

			if (subsets_have_ip(json_path(new_ep, "subsets"), ip) ||
			    !pod_terminating_with_ip(p, json_path(a, "targetRef"), ip))
				continue;
			d = cJSON_CreateObject();
			arr = cJSON_AddArrayToObject(d, "addresses");
			cJSON_AddItemToArray(arr, cJSON_Duplicate(a, 1));
			cJSON_AddItemToObject(d, "ports", cJSON_Duplicate(json_path(ss, "ports"), 1));
			cJSON_AddItemToArray(s->drain, d);
			p->ndrain++;
		}
	}
	/* a drained address back among the ready ones is no longer drained */
	for (int i = cJSON_GetArraySize(s->drain) - 1; i >= 0; i--) {
		cJSON *d = cJSON_GetArrayItem(s->drain, i);
		const char *ip = json_str(cJSON_GetArrayItem(json_path(d, "addresses"), 0), "ip", "");

		if (subsets_have_ip(json_path(new_ep, "subsets"), ip)) {
			cJSON_DeleteItemFromArray(s->drain, i);
			p->ndrain--;
		}
	}
}

struct drain_walk {
	struct svc_proxy *p;
	struct svc_state **hit;
	size_t n, cap;
};

static void drain_walk_cb(const void *node, VISIT which, void *data)
{
	struct drain_walk *w = data;
	struct svc_state *s = *(struct svc_state *const *)node;

	if ((which != postorder && which != leaf) || !cJSON_GetArraySize(s->drain))
		return;
	if (w->n == w->cap) {
		struct svc_state **t = realloc(w->hit, (w->cap = w->cap ? w->cap * 2 : 8) * sizeof(*t));

		if (!t)
			return;
		w->hit = t;
	}
	w->hit[w->n++] = s;
}

/* A pod changed: drained backends whose pod is gone (or not terminating any more) go. */
static void drain_pod_changed(struct svc_proxy *p, const char *ns, const char *name)
{
	struct drain_walk w = { .p = p };

	if (!p->ndrain)
		return;
	twalk_r(p->states, drain_walk_cb, &w);
	for (size_t i = 0; i < w.n; i++) {
		struct svc_state *s = w.hit[i];
		bool changed = false;

		for (int j = cJSON_GetArraySize(s->drain) - 1; j >= 0; j--) {
			cJSON *d = cJSON_GetArrayItem(s->drain, j);
			cJSON *a = cJSON_GetArrayItem(json_path(d, "addresses"), 0);
			cJSON *ref = json_path(a, "targetRef");

			if (!streq(json_str(ref, "namespace", ""), ns) ||
			    !streq(json_str(ref, "name", ""), name))
				continue;
			if (pod_terminating_with_ip(p, ref, json_str(a, "ip", "")))
				continue;
			cJSON_DeleteItemFromArray(s->drain, j);
			p->ndrain--;
			changed = true;
		}
		if (changed) {
			svc_apply(p, s);
			state_maybe_drop(p, s);
		}
	}
	free(w.hit);
}

/* --- watches --- */

static void on_service(const struct store_event *ev, void *ud)
{
	struct svc_proxy *p = ud;
	struct svc_state *s = state_find(p, ev->obj->ns, ev->obj->name, true);

	if (!s)
		return;
	cJSON_Delete(s->svc);
	s->svc = ev->type == STORE_DELETED ? NULL : store_obj_parse(ev->obj);
	svc_apply(p, s);
	if (!s->svc) {
		/* a deleted service's frontends may be wanted by one that lost a conflict */
		svc_event_clear(s);
	}
	state_maybe_drop(p, s);
}

static void on_endpoints(const struct store_event *ev, void *ud)
{
	struct svc_proxy *p = ud;
	struct svc_state *s = state_find(p, ev->obj->ns, ev->obj->name, true);
	cJSON *ep;

	if (!s)
		return;
	ep = ev->type == STORE_DELETED ? NULL : store_obj_parse(ev->obj);
	if (s->ep)
		drain_collect(p, s, s->ep, ep);
	cJSON_Delete(s->ep);
	s->ep = ep;
	if (s->svc)
		svc_apply(p, s);
	state_maybe_drop(p, s);
}

static void on_pod(const struct store_event *ev, void *ud)
{
	struct svc_proxy *p = ud;

	if (ev->type == STORE_ADDED)
		return;
	drain_pod_changed(p, ev->obj->ns, ev->obj->name);
}

struct retry_walk {
	struct svc_state **v;
	size_t n, cap;
	bool failed_only;
};

static void collect_states_cb(const void *node, VISIT which, void *data)
{
	struct retry_walk *w = data;
	struct svc_state *s = *(struct svc_state *const *)node;

	if ((which != postorder && which != leaf) || (w->failed_only && !s->failed))
		return;
	if (w->n == w->cap) {
		struct svc_state **t = realloc(w->v, (w->cap = w->cap ? w->cap * 2 : 64) * sizeof(*t));

		if (!t)
			return;
		w->v = t;
	}
	w->v[w->n++] = s;
}

static void on_retry(evutil_socket_t fd, short what, void *ud)
{
	struct svc_proxy *p = ud;
	struct retry_walk w = { .failed_only = true };

	twalk_r(p->states, collect_states_cb, &w);
	for (size_t i = 0; i < w.n; i++)
		svc_apply(p, w.v[i]);
	free(w.v);
}

/* --- start-up --- */

static int list_cb(struct store_obj *o, void *ud)
{
	struct svc_proxy *p = ((void **)ud)[0];
	bool is_ep = ((void **)ud)[1] != NULL;
	struct svc_state *s = state_find(p, o->ns, o->name, true);

	if (!s)
		return -ENOMEM;
	if (is_ep) {
		cJSON_Delete(s->ep);
		s->ep = store_obj_parse(o);
	} else {
		cJSON_Delete(s->svc);
		s->svc = store_obj_parse(o);
	}
	return 0;
}

static bool maglev_keep(uint16_t rn, void *ud)
{
	bool *used = ud;

	return used[rn];
}

/* Frontends in the pinned maps that no service owns (deleted while we were down) go. */
static int svc_reconcile_stale(struct svc_proxy *p)
{
	_cleanup_json_ cJSON *dump = NULL;
	_cleanup_free_ bool *used = calloc(65536, sizeof(bool));
	const cJSON *o;
	int removed = 0, r;

	if (!used)
		return -ENOMEM;
	r = lb_dump(p->lb, &dump);
	if (r < 0)
		return r;
	cJSON_ArrayForEach(o, dump)
	{
		struct lb_frontend fe;
		struct fe_owner *own;

		if (lb_frontend_parse(json_str(o, "frontend", ""), &fe) < 0)
			continue;
		own = owner_find(p, &fe);
		if (own) {
			if (fe_in(own->owner->cur, own->owner->ncur, &fe)->maglev)
				used[(uint16_t)json_int(o, "rev_nat", 0)] = true;
			continue;
		}
		if (lb_service_delete(p->lb, &fe, NULL) == 0)
			removed++;
	}
	if (p->np)
		np_maglev_prune(p->np, maglev_keep, used);
	return removed;
}

/* --- the node's addresses and uplinks --- */

struct node_net {
	uint32_t ips[SVC_MAX_NODE_IPS]; /* sorted */
	size_t nip;
	int ifidx[NP_MAX_IFACES];       /* sorted */
	size_t nif;
	uint32_t snat_ip;               /* SNAT source towards remote backends */
};

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The interfaces of the IPv4 default route(s) of the calling netns (/proc/net/route). */
static void default_route_ifaces(struct node_net *n)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/route", "re");
	char line[512], ifname[IF_NAMESIZE + 1];
	unsigned dst, gw, flags, mask;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		int idx;
		bool seen = false;

		if (sscanf(line, "%16s %x %x %x %*s %*s %*s %x", ifname, &dst, &gw, &flags, &mask) !=
			    5 ||
		    dst || mask || !(flags & RTF_UP))
			continue;
		idx = (int)if_nametoindex(ifname);
		for (size_t i = 0; i < n->nif; i++)
			seen |= n->ifidx[i] == idx;
		if (idx > 0 && !seen && n->nif < NP_MAX_IFACES)
			n->ifidx[n->nif++] = idx;
	}
}

/*
 * What the node serves NodePorts on: every IPv4 address of its netns but loopback, on the
 * interfaces of the default route (or --uplink). The SNAT source is --node-ip, else the first
 * address of the first such interface.
 */
static void node_net_read(struct svc_proxy *p, struct node_net *n)
{
	struct ifaddrs *ifa = NULL;
	int first = 0;

	memset(n, 0, sizeof(*n));
	if (p->opts.uplink) {
		int idx = (int)if_nametoindex(p->opts.uplink);

		if (idx > 0)
			n->ifidx[n->nif++] = idx;
	} else {
		default_route_ifaces(n);
	}
	first = n->nif ? n->ifidx[0] : 0;
	n->snat_ip = p->opts.node_ip;
	if (p->opts.node_ip)
		n->ips[n->nip++] = p->opts.node_ip;
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
			uint32_t ip;
			bool seen = false;

			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
				continue;
			ip = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
			if ((ntohl(ip) >> 24) == 127)
				continue;
			if (!n->snat_ip && first && (int)if_nametoindex(i->ifa_name) == first)
				n->snat_ip = ip;
			for (size_t k = 0; k < n->nip; k++)
				seen |= n->ips[k] == ip;
			if (!seen && n->nip < SVC_MAX_NODE_IPS)
				n->ips[n->nip++] = ip;
		}
		freeifaddrs(ifa);
	}
	qsort(n->ips, n->nip, sizeof(n->ips[0]), u32_cmp);
	qsort(n->ifidx, n->nif, sizeof(n->ifidx[0]), int_cmp);
}

static void apply_all(struct svc_proxy *p)
{
	struct retry_walk w = {};

	twalk_r(p->states, collect_states_cb, &w);
	for (size_t i = 0; i < w.n; i++)
		if (w.v[i]->svc)
			svc_apply(p, w.v[i]);
	free(w.v);
}

/* The suspect and dead nodes of the members view, as a string that changes when they do. */
static char *down_signature(struct svc_proxy *p, uint32_t *count)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	*count = 0;
	if (!f)
		return NULL;
	for (size_t i = 0; i < members_view_count(p->members); i++) {
		const struct members_info *mi = members_view_get(p->members, i);

		if (mi->state == MEMBERS_ALIVE || streq(mi->name, p->node))
			continue;
		fprintf(f, "%s=%s;", mi->name, members_state_name(mi->state));
		(*count)++;
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void on_members_timer(evutil_socket_t fd, short what, void *ud)
{
	struct svc_proxy *p = ud;
	uint32_t n;
	char *sig = down_signature(p, &n);

	if (!sig || (p->down_sig && streq(sig, p->down_sig))) {
		free(sig);
		return;
	}
	if (p->down_sig || *sig)
		log_info("service backends: nodes out of rotation: %s", *sig ? sig : "none");
	free(p->down_sig);
	p->down_sig = sig;
	p->nodes_out = n;
	apply_all(p);
}

int svc_proxy_set_members(struct svc_proxy *p, struct members *m)
{
	struct timeval tv = { 0, 200 * 1000 };

	p->members = m;
	if (!p->members_timer) {
		p->members_timer = event_new(p->base, -1, EV_PERSIST, on_members_timer, p);
		if (!p->members_timer)
			return -ENOMEM;
		event_add(p->members_timer, &tv);
	}
	return 0;
}

/* Follow the node's addresses and uplinks: tc programs on the right interfaces, NodePort
 * frontends on every address. */
static int node_net_sync(struct svc_proxy *p, struct err *e)
{
	struct node_net n;
	bool ips_changed;
	int r;

	node_net_read(p, &n);
	if (!p->np || np_node_ip(p->np) != n.snat_ip) {
		/* the SNAT source is compiled into the programs: load them again (the filters
		 * are replaced in place) */
		struct np_opts no = {
			.node = p->opts.node,
			.pin_root = p->opts.pin_root,
			.load = true,
			.node_ip = n.snat_ip,
			.maglev_seed = p->opts.maglev_seed,
			.maglev_m = p->opts.maglev_m,
			.ct_max = p->opts.ct_max,
			.maglev_max = p->opts.maglev_max,
		};
		struct np *np;

		r = np_open(&no, &np, e);
		if (r < 0)
			return r;
		if (p->np)
			np_ifaces_adopt(np, p->np);
		np_close(p->np, false);
		p->np = np;
	}
	r = np_ifaces_set(p->np, n.ifidx, n.nif, e);
	if (r < 0)
		return r;
	memcpy(p->uplinks, n.ifidx, n.nif * sizeof(n.ifidx[0]));
	p->nuplink = n.nif;
	ips_changed = n.nip != p->nnode_ip || memcmp(n.ips, p->node_ips, n.nip * sizeof(n.ips[0]));
	memcpy(p->node_ips, n.ips, n.nip * sizeof(n.ips[0]));
	p->nnode_ip = n.nip;
	if (ips_changed && p->w_svc) {
		log_info("node addresses changed: %zu NodePort addresses, %zu uplinks", n.nip,
			 n.nif);
		apply_all(p);
	}
	return 0;
}

static void on_nl_timer(evutil_socket_t fd, short what, void *ud)
{
	struct svc_proxy *p = ud;
	struct err e = {};

	if (node_net_sync(p, &e) < 0)
		log_warn("following the node's addresses: %s", e.message);
}

/* Whether a change can move the node's addresses or uplinks. Every pod adds a veth and a route
 * to its address on the node: those are not, and reading the node's addresses again
 * (getifaddrs: a netlink dump) waits on the kernel's rtnl lock, held meanwhile by the pod
 * workers' and the other netns' interface setups: 150-260 ms per read on the loop, measured
 * while 200 pods started on a 5-node devcluster. */
static bool nl_relevant(const struct svc_proxy *p, const struct nlmsghdr *h)
{
	switch (h->nlmsg_type) {
	case RTM_NEWROUTE:
	case RTM_DELROUTE: {
		const struct rtmsg *rt = NLMSG_DATA(h);

		/* without --uplink the uplinks are the default routes' interfaces */
		return h->nlmsg_len < NLMSG_LENGTH(sizeof(*rt)) ||
		       (rt->rtm_dst_len == 0 && !p->opts.uplink);
	}
	case RTM_NEWLINK:
	case RTM_DELLINK: {
		const struct ifinfomsg *ifi = NLMSG_DATA(h);
		int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));

		if (len < 0)
			return true;
		for (size_t k = 0; k < p->nuplink; k++)
			if (p->uplinks[k] == ifi->ifi_index)
				return true;
		if (!p->opts.uplink)
			return false;
		/* the named uplink may appear */
		for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
			if (a->rta_type == IFLA_IFNAME &&
			    !strncmp(RTA_DATA(a), p->opts.uplink, RTA_PAYLOAD(a)))
				return true;
		return false;
	}
	default: /* IPv4 addresses (the only address group joined), anything else */
		return true;
	}
}

static void on_nl(evutil_socket_t fd, short what, void *ud)
{
	struct svc_proxy *p = ud;
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct timeval tv = { 0, 50000 };
	bool relevant = false;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
		if (n < 0) {
			/* ENOBUFS: changes were lost, read everything again */
			if (errno == EINTR)
				continue;
			relevant |= errno != EAGAIN && errno != EWOULDBLOCK;
			break;
		}
		int len = (int)n;

		for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len))
			relevant |= nl_relevant(p, h);
	}
	/* a burst of changes (an interface with its addresses and routes) is read once */
	if (relevant)
		evtimer_add(p->nl_timer, &tv);
}

static int node_net_watch(struct svc_proxy *p)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR |
					       RTMGRP_IPV4_ROUTE };

	p->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (p->nl_fd < 0)
		return -errno;
	if (bind(p->nl_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	p->nl_ev = event_new(p->base, p->nl_fd, EV_READ | EV_PERSIST, on_nl, p);
	p->nl_timer = evtimer_new(p->base, on_nl_timer, p);
	if (!p->nl_ev || !p->nl_timer || event_add(p->nl_ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

int svc_proxy_new(struct event_base *base, struct store *store, const struct svc_proxy_opts *opts,
		  struct svc_proxy **ret, struct err *e)
{
	struct svc_proxy *p;
	struct retry_walk w = {};
	struct lb_stats lst;
	void *ud[2];
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->base = base;
	p->store = store;
	p->opts = *opts;
	if (!p->opts.retry_ms)
		p->opts.retry_ms = 5000;
	p->node = strdup(opts->node ? opts->node : "");
	if (!p->node) {
		r = -ENOMEM;
		goto fail;
	}

	struct lb_opts lo = {
		.node = opts->node,
		.pin_root = opts->pin_root,
		.cgroup = opts->cgroup,
		.host_wide = opts->host_wide,
		.host_reach = opts->host_reach,
		.svc_max = opts->svc_max,
		.backend_max = opts->backend_max,
		.revnat_max = opts->revnat_max,
		.sk_nat_max = opts->sk_nat_max,
		.affinity_max = opts->affinity_max,
		.cfg_flags = opts->cfg_flags,
		.maglev_seed = opts->maglev_seed,
	};
	r = lb_open(&lo, &p->lb, e);
	if (r < 0)
		goto fail;
	lb_stats_get(p->lb, &lst);
	if (lst.maps_recreated)
		log_info("service maps pinned by another build had another layout: re-created "
			 "empty, every service is programmed again");
	p->nl_fd = -1;
	p->net_auto = opts->uplink || opts->nodeport_auto;
	if (opts->node_ip && !p->net_auto)
		p->node_ips[p->nnode_ip++] = opts->node_ip;
	if (p->net_auto) {
		r = node_net_sync(p, e);
		if (r < 0)
			goto fail;
		if (base) {
			r = node_net_watch(p);
			if (r < 0) {
				err_set(e, r, 500, "InternalError", "watching the node's addresses: %s",
					strerror(-r));
				goto fail;
			}
		}
	}
	if (base) {
		p->retry = evtimer_new(base, on_retry, p);
		if (!p->retry) {
			r = -ENOMEM;
			goto fail;
		}
	}

	/* the replica as it is now, then every change after it (single-threaded: no gap) */
	ud[0] = p;
	ud[1] = NULL;
	r = store_list(store, "services", NULL, NULL, NULL, list_cb, ud);
	ud[1] = p;
	if (r == 0)
		r = store_list(store, "endpoints", NULL, NULL, NULL, list_cb, ud);
	if (r < 0) {
		err_set(e, r, 500, "InternalError", "listing services: %s", strerror(-r));
		goto fail;
	}
	{
		uint64_t t0 = util_mono_us();

		struct err be = {};

		/* new frontends are written in one batch per map (none is visible before its slot
		 * 0, written last); ones already in pinned maps are diffed and written at once */
		twalk_r(p->states, collect_states_cb, &w);
		lb_batch_begin(p->lb);
		for (size_t i = 0; i < w.n; i++)
			if (w.v[i]->svc)
				svc_apply(p, w.v[i]);
		if (lb_batch_flush(p->lb, &be) < 0) {
			/* the loader rebuilt its view from the maps: program again, one by one */
			log_warn("programming services in a batch failed (%s); one by one",
				 be.message);
			for (size_t i = 0; i < w.n; i++) {
				owners_set(p, w.v[i], w.v[i]->cur, w.v[i]->ncur, NULL, 0);
				fes_free(w.v[i]->cur, w.v[i]->ncur);
				w.v[i]->cur = NULL;
				w.v[i]->ncur = 0;
			}
			for (size_t i = 0; i < w.n; i++)
				if (w.v[i]->svc)
					svc_apply(p, w.v[i]);
		}
		free(w.v);
		p->start_program_us = util_mono_us() - t0;
	}
	r = svc_reconcile_stale(p);
	if (r > 0)
		log_info("removed %d frontends of services deleted while the proxy was down", r);

	r = store_watch_add(store, "services", 0, on_service, p, &p->w_svc);
	if (r == 0)
		r = store_watch_add(store, "endpoints", 0, on_endpoints, p, &p->w_ep);
	if (r == 0)
		r = store_watch_add(store, "pods", 0, on_pod, p, &p->w_pod);
	if (r < 0) {
		err_set(e, r, 500, "InternalError", "watching the store: %s", strerror(-r));
		goto fail;
	}
	*ret = p;
	return 0;
fail:
	svc_proxy_free(p);
	return r;
}

static void owner_free(void *o)
{
	free(o);
}

struct svc_proxy *svc_proxy_free(struct svc_proxy *p)
{
	if (!p)
		return NULL;
	if (p->w_svc)
		store_watch_cancel(p->w_svc);
	if (p->w_ep)
		store_watch_cancel(p->w_ep);
	if (p->w_pod)
		store_watch_cancel(p->w_pod);
	if (p->retry)
		event_free(p->retry);
	if (p->members_timer)
		event_free(p->members_timer);
	free(p->down_sig);
	if (p->nl_ev)
		event_free(p->nl_ev);
	if (p->nl_timer)
		event_free(p->nl_timer);
	if (p->nl_fd >= 0)
		close(p->nl_fd);
	np_close(p->np, false);
	lb_close(p->lb, false);
	tdestroy(p->states, state_free);
	tdestroy(p->owners, owner_free);
	free(p->node);
	free(p);
	return NULL;
}

/* --- counters --- */

static uint32_t pinned_count(struct svc_proxy *p, const char *map, size_t key_size,
			     uint32_t *ret_max)
{
	char path[PATH_MAX + 32];
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info), n = 0;
	_cleanup_free_ void *k = calloc(1, key_size), *next = calloc(1, key_size);
	_cleanup_close_ int fd = -1;
	void *pk = NULL;

	*ret_max = 0;
	snprintf(path, sizeof(path), "%s/%s", lb_pin_dir(p->lb), map);
	fd = bpf_obj_get(path);
	if (fd < 0 || !k || !next)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		*ret_max = info.max_entries;
	while (bpf_map_get_next_key(fd, pk, next) == 0) {
		memcpy(k, next, key_size);
		pk = k;
		n++;
	}
	return n;
}

static void count_failed_cb(const void *node, VISIT which, void *data)
{
	const struct svc_state *s = *(struct svc_state *const *)node;

	if ((which == postorder || which == leaf) && s->failed)
		(*(uint32_t *)data)++;
}

void svc_proxy_stats_get(struct svc_proxy *p, struct svc_proxy_stats *ret)
{
	struct lb_stats ls;

	lb_stats_get(p->lb, &ls);
	*ret = (struct svc_proxy_stats){
		.services = p->nstates,
		.frontends = p->nfe,
		.svc_entries = ls.svc_entries,
		.svc_max = ls.svc_max,
		.backend_entries = ls.backend_entries,
		.backend_max = ls.backend_max,
		.syncs = p->syncs,
		.last_sync_us = p->last_sync_us,
		.start_program_us = p->start_program_us,
		.last_writes = ls.last_writes,
	};
	twalk_r(p->states, count_failed_cb, &ret->failed);
	ret->sk_nat_entries = pinned_count(p, SHOAL_MAP_SK_NAT, sizeof(struct shoal_sk_nat_key),
					   &ret->sk_nat_max);
	if (p->np) {
		struct np_stats ns;

		if (np_stats_get(p->np, &ns) == 0) {
			ret->ct_entries = ns.ct_entries;
			ret->ct_max = ns.ct_max;
			for (int i = 0; i < SHOAL_NP_STAT_N && i < (int)ARRAY_SIZE(ret->np_counters);
			     i++)
				ret->np_counters[i] = ns.counters[i];
		}
	}
}

static double ratio(uint32_t a, uint32_t b)
{
	return b ? (double)a / b : 0;
}

int svc_proxy_metrics(struct svc_proxy *p, char **ret)
{
	struct svc_proxy_stats st;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	FILE *f;
	const struct {
		const char *map;
		uint32_t n, max;
	} maps[] = {
		{ SHOAL_MAP_SVC, 0, 0 },
		{ SHOAL_MAP_BACKEND, 0, 0 },
		{ SHOAL_MAP_SK_NAT, 0, 0 },
		{ SHOAL_MAP_CT, 0, 0 },
	};
	uint32_t n[4], max[4];

	svc_proxy_stats_get(p, &st);
	n[0] = st.svc_entries, max[0] = st.svc_max;
	n[1] = st.backend_entries, max[1] = st.backend_max;
	n[2] = st.sk_nat_entries, max[2] = st.sk_nat_max;
	n[3] = st.ct_entries, max[3] = st.ct_max;
	f = open_memstream(&buf, &len);
	if (!f)
		return -errno;
	fprintf(f, "# HELP shoal_bpf_map_entries Entries in a datapath map.\n"
		   "# TYPE shoal_bpf_map_entries gauge\n");
	for (int i = 0; i < 4; i++)
		if (max[i])
			fprintf(f, "shoal_bpf_map_entries{map=\"%s\"} %u\n", maps[i].map, n[i]);
	fprintf(f, "# HELP shoal_bpf_map_max_entries Capacity of a datapath map.\n"
		   "# TYPE shoal_bpf_map_max_entries gauge\n");
	for (int i = 0; i < 4; i++)
		if (max[i])
			fprintf(f, "shoal_bpf_map_max_entries{map=\"%s\"} %u\n", maps[i].map, max[i]);
	fprintf(f, "# HELP shoal_bpf_map_fill_ratio Entries / capacity; LRU maps evict live "
		   "flows near 1.\n"
		   "# TYPE shoal_bpf_map_fill_ratio gauge\n");
	for (int i = 0; i < 4; i++)
		if (max[i])
			fprintf(f, "shoal_bpf_map_fill_ratio{map=\"%s\"} %.6f\n", maps[i].map,
				ratio(n[i], max[i]));
	fprintf(f, "# HELP shoal_conntrack_pressure NodePort conntrack fill ratio (alert above "
		   "0.8).\n"
		   "# TYPE shoal_conntrack_pressure gauge\n"
		   "shoal_conntrack_pressure %.6f\n",
		ratio(st.ct_entries, st.ct_max));
	fprintf(f, "# TYPE shoal_services gauge\nshoal_services %u\n", st.services);
	fprintf(f, "# TYPE shoal_service_frontends gauge\nshoal_service_frontends %u\n",
		st.frontends);
	fprintf(f, "# HELP shoal_services_failed Services not programmed (see their Events).\n"
		   "# TYPE shoal_services_failed gauge\nshoal_services_failed %u\n",
		st.failed);
	fprintf(f, "# TYPE shoal_service_syncs_total counter\nshoal_service_syncs_total %llu\n",
		(unsigned long long)st.syncs);
	fprintf(f, "# TYPE shoal_service_sync_errors_total counter\n"
		   "shoal_service_sync_errors_total %llu\n",
		(unsigned long long)p->errors);
	fprintf(f, "# TYPE shoal_service_last_sync_seconds gauge\n"
		   "shoal_service_last_sync_seconds %.6f\n",
		(double)st.last_sync_us / 1e6);
	if (p->np) {
		static const char *const names[SHOAL_NP_STAT_N] = {
			"forward_packets", "reply_packets", "new_flows",
			"drops_no_backend", "drops_snat_ports", "fib_fallbacks",
		};

		fprintf(f, "# HELP shoal_nodeport_total tc NodePort datapath counters.\n"
			   "# TYPE shoal_nodeport_total counter\n");
		for (int i = 0; i < SHOAL_NP_STAT_N; i++)
			fprintf(f, "shoal_nodeport_total{what=\"%s\"} %llu\n", names[i],
				(unsigned long long)st.np_counters[i]);
	}
	if (fclose(f) != 0)
		return -ENOMEM;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* --- cgroup --- */

int svc_cgroup_enter(const char *name, char *ret_path, size_t len, struct err *e)
{
	char root[PATH_MAX], path[PATH_MAX + 256], procs[PATH_MAX + 300], pid[32];
	int r;

	if (strempty(name) || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
		return err_set(e, EINVAL, 400, "BadRequest", "cgroup name %s is not a name",
			       name ? name : "(null)");
	r = lb_cgroup2_root(root, sizeof(root));
	if (r < 0)
		return err_set(e, r, 500, "InternalError", "no cgroup2 mount found");
	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno, 500, "InternalError", "creating cgroup %s: %m", path);
	/*
	 * The daemon itself goes into a leaf below the node's cgroup: on a pure cgroup2 host a
	 * cgroup that holds processes cannot hand controllers down to children (the "no internal
	 * processes" rule), and pods' cgroups are the node cgroup's children. The socket LB is
	 * attached to the node's cgroup and so serves the leaf and the pods alike.
	 */
	snprintf(procs, sizeof(procs), "%s/shoald", path);
	if (mkdir(procs, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno, 500, "InternalError", "creating cgroup %s: %m", procs);
	snprintf(procs, sizeof(procs), "%s/shoald/cgroup.procs", path);
	snprintf(pid, sizeof(pid), "%d\n", getpid());
	{
		_cleanup_close_ int fd = open(procs, O_WRONLY | O_CLOEXEC);

		if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
			return err_set(e, errno, 500, "InternalError", "moving into cgroup %s: %m",
				       path);
	}
	if ((size_t)snprintf(ret_path, len, "%s", path) >= len)
		return err_set(e, ENAMETOOLONG, 500, "InternalError", "cgroup path too long");
	return 0;
}
