// SPDX-License-Identifier: Apache-2.0
/* The cluster DNS zone: object index + answers (see dns_zone.h). */
#include <arpa/inet.h>
#include <search.h>
#include <string.h>

#include "daemon/dns_zone.h"
#include "lib/json.h"
#include "lib/macro.h"

#define LABEL_MAX 63
#define NAME_BUF 512 /* presentation names; longer than any valid one (255) */

struct zport {
	char name[LABEL_MAX + 1]; /* "" for an unnamed port */
	char proto[8];		  /* lowercase: tcp, udp, sctp */
	uint16_t port;
};

/* every indexed entry starts with its key, so one comparison serves every tree */
struct zsvc {
	char *key; /* "<name>.<ns>" */
	char *ns, *name;
	bool headless;
	uint32_t ip; /* network order; 0: none */
	char *external_name;
	struct zport *ports;
	size_t nports;
};

struct zaddr {
	uint32_t ip;
	char hostname[LABEL_MAX + 1];
	char pod[256]; /* targetRef name of a Pod, "" otherwise */
};

struct zsubset {
	struct zaddr *addrs;
	size_t naddrs;
	struct zport *ports;
	size_t nports;
};

struct zeps {
	char *key; /* "<name>.<ns>" */
	struct zsubset *subsets;
	size_t nsubsets;
};

struct zpod {
	char *key; /* "<ns>/<name>" */
	char *ns;
	uint32_t ip;
	char hostname[LABEL_MAX + 1];
	char subdomain[LABEL_MAX + 1];
};

/* refcounted keys: "<ns>" for namespaces with services, "<ip>|<ns>" for pod addresses */
struct zcount {
	char *key;
	size_t n;
};

/* reverse index: "<a.b.c.d>" -> the key of the service with that ClusterIP */
struct zptr {
	char *key;
	char *svc;
};

struct dns_zone {
	char *domain; /* lowercase, no trailing dot */
	uint32_t ttl;
	uint32_t serial;
	void *svcs, *eps, *pods, *svc_ns, *pod_ips, *svc_ips;
	size_t nsvcs, neps, npods;
};

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void *map_get(void *const *root, const char *key)
{
	void **n = tfind(&key, root, key_cmp);

	return n ? *n : NULL;
}

static void svc_free(void *p)
{
	struct zsvc *s = p;

	if (!s)
		return;
	free(s->key);
	free(s->ns);
	free(s->name);
	free(s->external_name);
	free(s->ports);
	free(s);
}

static void eps_free(void *p)
{
	struct zeps *e = p;

	if (!e)
		return;
	for (size_t i = 0; i < e->nsubsets; i++) {
		free(e->subsets[i].addrs);
		free(e->subsets[i].ports);
	}
	free(e->subsets);
	free(e->key);
	free(e);
}

static void pod_free(void *p)
{
	struct zpod *o = p;

	if (!o)
		return;
	free(o->key);
	free(o->ns);
	free(o);
}

static void count_free(void *p)
{
	struct zcount *c = p;

	if (c)
		free(c->key);
	free(c);
}

static void ptr_free(void *p)
{
	struct zptr *x = p;

	if (x) {
		free(x->key);
		free(x->svc);
	}
	free(x);
}

/* Remove the entry with this key; returns it (the caller frees) or NULL. */
static void *map_take(void **root, const char *key)
{
	void *e = map_get(root, key);

	if (e)
		tdelete(e, root, key_cmp);
	return e;
}

/* Insert e, which must not be present. */
static int map_put(void **root, void *e)
{
	return tsearch(e, root, key_cmp) ? 0 : -ENOMEM;
}

static int count_add(void **root, const char *key, int delta)
{
	struct zcount *c = map_get(root, key);

	if (!c) {
		if (delta < 0)
			return 0;
		c = calloc(1, sizeof(*c));
		if (!c || !(c->key = strdup(key)) || map_put(root, c) < 0) {
			count_free(c);
			return -ENOMEM;
		}
	}
	if (delta < 0 && c->n <= (size_t)-delta) {
		tdelete(c, root, key_cmp);
		count_free(c);
		return 0;
	}
	c->n += delta;
	return 0;
}

int dns_zone_new(const char *domain, uint32_t ttl, struct dns_zone **ret)
{
	struct dns_zone *z = calloc(1, sizeof(*z));
	char buf[256];

	if (!z)
		return -ENOMEM;
	if (dns_name_canon(domain, buf, sizeof(buf)) < 0 || !*buf) {
		free(z);
		return -EINVAL;
	}
	z->domain = strdup(buf);
	if (!z->domain) {
		free(z);
		return -ENOMEM;
	}
	z->ttl = ttl ? ttl : DNS_ZONE_TTL;
	z->serial = 1;
	*ret = z;
	return 0;
}

struct dns_zone *dns_zone_free(struct dns_zone *z)
{
	if (!z)
		return NULL;
	tdestroy(z->svcs, svc_free);
	tdestroy(z->eps, eps_free);
	tdestroy(z->pods, pod_free);
	tdestroy(z->svc_ns, count_free);
	tdestroy(z->pod_ips, count_free);
	tdestroy(z->svc_ips, ptr_free);
	free(z->domain);
	free(z);
	return NULL;
}

void dns_zone_stats_get(const struct dns_zone *z, struct dns_zone_stats *ret)
{
	ret->services = z->nsvcs;
	ret->endpoints = z->neps;
	ret->pods = z->npods;
	ret->serial = z->serial;
}

static void lower_copy(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < len; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? src[i] - 'A' + 'a' : src[i];
	dst[i] = 0;
}

static uint32_t ip4_parse(const char *s)
{
	struct in_addr a;

	return s && inet_pton(AF_INET, s, &a) == 1 ? a.s_addr : 0;
}

static int ports_parse(const cJSON *arr, struct zport **ret, size_t *nret)
{
	size_t n = (size_t)cJSON_GetArraySize(arr), k = 0;
	struct zport *ports;
	cJSON *p;

	*ret = NULL;
	*nret = 0;
	if (!n)
		return 0;
	ports = calloc(n, sizeof(*ports));
	if (!ports)
		return -ENOMEM;
	cJSON_ArrayForEach(p, arr)
	{
		int64_t port = json_int(p, "port", 0);
		if (port <= 0 || port > 65535)
			continue;
		lower_copy(ports[k].name, sizeof(ports[k].name), json_str(p, "name", ""));
		lower_copy(ports[k].proto, sizeof(ports[k].proto), json_str(p, "protocol", "TCP"));
		ports[k].port = (uint16_t)port;
		k++;
	}
	*ret = ports;
	*nret = k;
	return 0;
}

static char *key_join(const char *a, char sep, const char *b)
{
	char *k;

	if (asprintf(&k, "%s%c%s", a, sep, b) < 0)
		return NULL;
	for (char *p = k; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	return k;
}

static int svc_ptr_set(struct dns_zone *z, const struct zsvc *s, bool add)
{
	char ip[INET_ADDRSTRLEN];
	const char *k = ip;
	struct zptr *x;

	if (!s->ip)
		return 0;
	inet_ntop(AF_INET, &s->ip, ip, sizeof(ip));
	x = map_get(&z->svc_ips, k);
	if (!add) {
		/* only if it is still ours (ClusterIPs are unique; be safe anyway) */
		if (x && streq(x->svc, s->key)) {
			tdelete(x, &z->svc_ips, key_cmp);
			ptr_free(x);
		}
		return 0;
	}
	if (x) {
		char *svc = strdup(s->key);
		if (!svc)
			return -ENOMEM;
		free(x->svc);
		x->svc = svc;
		return 0;
	}
	x = calloc(1, sizeof(*x));
	if (!x || !(x->key = strdup(ip)) || !(x->svc = strdup(s->key)) ||
	    map_put(&z->svc_ips, x) < 0) {
		ptr_free(x);
		return -ENOMEM;
	}
	return 0;
}

int dns_zone_service_set(struct dns_zone *z, const char *ns, const char *name, const cJSON *svc)
{
	_cleanup_free_ char *key = key_join(name, '.', ns);
	struct zsvc *old, *s;
	const char *cip;

	if (!key)
		return -ENOMEM;
	z->serial++;
	old = map_take(&z->svcs, key);
	if (old) {
		z->nsvcs--;
		count_add(&z->svc_ns, old->ns, -1);
		svc_ptr_set(z, old, false);
		svc_free(old);
	}
	if (!svc)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->key = TAKE_PTR(key);
	s->ns = strdup(ns);
	s->name = strdup(name);
	if (!s->ns || !s->name)
		goto oom;
	if (streq(json_str(svc, "spec.type", ""), "ExternalName")) {
		char buf[256];
		if (dns_name_canon(json_str(svc, "spec.externalName", ""), buf, sizeof(buf)) == 0 &&
		    *buf && !(s->external_name = strdup(buf)))
			goto oom;
	}
	cip = json_str(svc, "spec.clusterIP", "");
	s->headless = streq(cip, "None");
	s->ip = ip4_parse(cip);
	if (!s->ip && !s->headless) {
		cJSON *it;
		cJSON_ArrayForEach(it, json_path(svc, "spec.clusterIPs"))
		{
			if (cJSON_IsString(it) && (s->ip = ip4_parse(it->valuestring)))
				break;
		}
	}
	if (ports_parse(json_path(svc, "spec.ports"), &s->ports, &s->nports) < 0)
		goto oom;
	if (count_add(&z->svc_ns, ns, 1) < 0)
		goto oom;
	if (map_put(&z->svcs, s) < 0) {
		count_add(&z->svc_ns, ns, -1);
		goto oom;
	}
	z->nsvcs++;
	if (svc_ptr_set(z, s, true) < 0)
		return -ENOMEM; /* indexed, without its reverse name */
	return 0;
oom:
	svc_free(s);
	return -ENOMEM;
}

int dns_zone_endpoints_set(struct dns_zone *z, const char *ns, const char *name, const cJSON *ep)
{
	_cleanup_free_ char *key = key_join(name, '.', ns);
	struct zeps *old, *e;
	cJSON *sub, *a;
	size_t n;

	if (!key)
		return -ENOMEM;
	z->serial++;
	old = map_take(&z->eps, key);
	if (old) {
		z->neps--;
		eps_free(old);
	}
	if (!ep)
		return 0;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->key = TAKE_PTR(key);
	n = (size_t)cJSON_GetArraySize(json_path(ep, "subsets"));
	if (n && !(e->subsets = calloc(n, sizeof(*e->subsets))))
		goto oom;
	cJSON_ArrayForEach(sub, json_path(ep, "subsets"))
	{
		struct zsubset *s = &e->subsets[e->nsubsets++];
		/* only ready addresses are published (publishNotReadyAddresses is not supported) */
		size_t na = (size_t)cJSON_GetArraySize(json_path(sub, "addresses"));

		if (ports_parse(json_path(sub, "ports"), &s->ports, &s->nports) < 0)
			goto oom;
		if (na && !(s->addrs = calloc(na, sizeof(*s->addrs))))
			goto oom;
		cJSON_ArrayForEach(a, json_path(sub, "addresses"))
		{
			struct zaddr *za = &s->addrs[s->naddrs];
			za->ip = ip4_parse(json_str(a, "ip", NULL));
			if (!za->ip)
				continue;
			lower_copy(za->hostname, sizeof(za->hostname), json_str(a, "hostname", ""));
			if (streq(json_str(a, "targetRef.kind", "Pod"), "Pod"))
				snprintf(za->pod, sizeof(za->pod), "%s",
					 json_str(a, "targetRef.name", ""));
			s->naddrs++;
		}
	}
	if (map_put(&z->eps, e) < 0)
		goto oom;
	z->neps++;
	return 0;
oom:
	eps_free(e);
	return -ENOMEM;
}

static int pod_ip_ref(struct dns_zone *z, uint32_t ip, const char *ns, int delta)
{
	char ipbuf[INET_ADDRSTRLEN];
	_cleanup_free_ char *key = NULL;

	if (!ip)
		return 0;
	inet_ntop(AF_INET, &ip, ipbuf, sizeof(ipbuf));
	key = key_join(ipbuf, '|', ns);
	return key ? count_add(&z->pod_ips, key, delta) : -ENOMEM;
}

int dns_zone_pod_set(struct dns_zone *z, const char *ns, const char *name, const cJSON *pod)
{
	_cleanup_free_ char *key = key_join(ns, '/', name);
	struct zpod *old, *p;
	const char *phase;

	if (!key)
		return -ENOMEM;
	z->serial++;
	old = map_take(&z->pods, key);
	if (old) {
		z->npods--;
		pod_ip_ref(z, old->ip, old->ns, -1);
		pod_free(old);
	}
	if (!pod)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->key = TAKE_PTR(key);
	p->ns = strdup(ns);
	if (!p->ns)
		goto oom;
	phase = json_str(pod, "status.phase", "");
	/* a finished pod's address goes back to the pool: no name for it any more */
	if (!streq(phase, "Succeeded") && !streq(phase, "Failed"))
		p->ip = ip4_parse(json_str(pod, "status.podIP", NULL));
	lower_copy(p->hostname, sizeof(p->hostname), json_str(pod, "spec.hostname", ""));
	lower_copy(p->subdomain, sizeof(p->subdomain), json_str(pod, "spec.subdomain", ""));
	if (pod_ip_ref(z, p->ip, ns, 1) < 0)
		goto oom;
	if (map_put(&z->pods, p) < 0) {
		pod_ip_ref(z, p->ip, ns, -1);
		goto oom;
	}
	z->npods++;
	return 0;
oom:
	pod_free(p);
	return -ENOMEM;
}

/* --- answers --- */

/* The part of canonical name `name` before the domain: "" at the apex, NULL outside. */
static const char *zone_rel(const struct dns_zone *z, const char *name)
{
	size_t nl = strlen(name), dl = strlen(z->domain);

	if (nl == dl)
		return streq(name, z->domain) ? name + nl : NULL;
	if (nl > dl && name[nl - dl - 1] == '.' && streq(name + nl - dl, z->domain))
		return name; /* labels up to the dot before the domain */
	return NULL;
}

bool dns_zone_contains(const struct dns_zone *z, const char *qname)
{
	char name[NAME_BUF];

	return dns_name_canon(qname, name, sizeof(name)) == 0 && zone_rel(z, name);
}

struct q {
	struct dns_zone *z;
	const char *owner; /* the question's spelling, for answer owner names */
	uint16_t qtype;
	struct dns_answer *ans;
};

static void ep_name(struct dns_zone *z, const struct zsvc *s, const struct zaddr *a,
		    char buf[static LABEL_MAX + 1])
{
	if (*a->hostname) {
		snprintf(buf, LABEL_MAX + 1, "%s", a->hostname);
		return;
	}
	if (*a->pod) {
		_cleanup_free_ char *k = key_join(s->ns, '/', a->pod);
		struct zpod *p = k ? map_get(&z->pods, k) : NULL;
		if (p && *p->hostname && streq(p->subdomain, s->name)) {
			snprintf(buf, LABEL_MAX + 1, "%s", p->hostname);
			return;
		}
	}
	uint8_t *b = (uint8_t *)&a->ip;
	snprintf(buf, LABEL_MAX + 1, "%u-%u-%u-%u", b[0], b[1], b[2], b[3]);
}

static bool ip_seen(const uint32_t *ips, size_t n, uint32_t ip)
{
	for (size_t i = 0; i < n; i++)
		if (ips[i] == ip)
			return true;
	return false;
}

/* A records of a service's name: the ClusterIP, or every ready endpoint once */
static int svc_a(struct q *q, const struct zsvc *s, const struct zeps *e)
{
	_cleanup_free_ uint32_t *seen = NULL;
	size_t nseen = 0, total = 0;
	int r;

	if (!s->headless)
		return s->ip ? dns_answer_add_a(q->ans, DNS_SEC_ANSWER, q->owner, q->z->ttl, s->ip)
			     : 0;
	if (!e)
		return 0;
	for (size_t i = 0; i < e->nsubsets; i++)
		total += e->subsets[i].naddrs;
	if (!total)
		return 0;
	seen = calloc(total, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	for (size_t i = 0; i < e->nsubsets; i++)
		for (size_t k = 0; k < e->subsets[i].naddrs; k++) {
			uint32_t ip = e->subsets[i].addrs[k].ip;
			if (ip_seen(seen, nseen, ip))
				continue;
			seen[nseen++] = ip;
			r = dns_answer_add_a(q->ans, DNS_SEC_ANSWER, q->owner, q->z->ttl, ip);
			if (r < 0)
				return r;
		}
	return 0;
}

static bool port_match(const struct zport *p, const char *pname, const char *proto)
{
	return (!pname || streq(p->name, pname)) && (!proto || streq(p->proto, proto));
}

/*
 * SRV records for the service's ports matching pname/proto (NULL: any): one per port targeting
 * the service name, or for headless services one per ready endpoint and port targeting the
 * endpoint's name, with the targets' A records as additional data.
 */
static int svc_srv(struct q *q, const struct zsvc *s, const struct zeps *e, const char *pname,
		   const char *proto)
{
	char target[NAME_BUF];
	size_t count = 0;
	uint16_t weight;
	int r;

	if (!s->headless) {
		if (!s->ip)
			return 0;
		snprintf(target, sizeof(target), "%s.%s.svc.%s", s->name, s->ns, q->z->domain);
		for (size_t i = 0; i < s->nports; i++)
			count += port_match(&s->ports[i], pname, proto);
		if (!count)
			return 0;
		weight = (uint16_t)(100 / count);
		for (size_t i = 0; i < s->nports; i++) {
			if (!port_match(&s->ports[i], pname, proto))
				continue;
			r = dns_answer_add_srv(q->ans, DNS_SEC_ANSWER, q->owner, q->z->ttl, 0,
					       weight, s->ports[i].port, target);
			if (r < 0)
				return r;
		}
		return dns_answer_add_a(q->ans, DNS_SEC_ADDITIONAL, target, q->z->ttl, s->ip);
	}
	if (!e)
		return 0;
	for (size_t i = 0; i < e->nsubsets; i++)
		for (size_t p = 0; p < e->subsets[i].nports; p++)
			if (port_match(&e->subsets[i].ports[p], pname, proto))
				count += e->subsets[i].naddrs;
	if (!count)
		return 0;
	weight = (uint16_t)(100 / count ?: 1);
	for (size_t i = 0; i < e->nsubsets; i++) {
		const struct zsubset *sub = &e->subsets[i];
		for (size_t p = 0; p < sub->nports; p++) {
			if (!port_match(&sub->ports[p], pname, proto))
				continue;
			for (size_t k = 0; k < sub->naddrs; k++) {
				char host[LABEL_MAX + 1];
				ep_name(q->z, s, &sub->addrs[k], host);
				snprintf(target, sizeof(target), "%s.%s.%s.svc.%s", host, s->name,
					 s->ns, q->z->domain);
				r = dns_answer_add_srv(q->ans, DNS_SEC_ANSWER, q->owner, q->z->ttl,
						       0, weight, sub->ports[p].port, target);
				r = r
					?: dns_answer_add_a(q->ans, DNS_SEC_ADDITIONAL, target,
							    q->z->ttl, sub->addrs[k].ip);
				if (r < 0)
					return r;
			}
		}
	}
	return 0;
}

static bool svc_has_proto(const struct zsvc *s, const char *proto)
{
	for (size_t i = 0; i < s->nports; i++)
		if (*s->ports[i].name && streq(s->ports[i].proto, proto))
			return true;
	return false;
}

static bool svc_has_port(const struct zsvc *s, const char *pname, const char *proto)
{
	for (size_t i = 0; i < s->nports; i++)
		if (*pname && port_match(&s->ports[i], pname, proto))
			return true;
	return false;
}

/* Returns 1 if the name exists (records, if any, added), 0 if it does not, -errno. */
static int lookup_svc(struct q *q, char **l, size_t n)
{
	_cleanup_free_ char *key = NULL;
	struct zsvc *s;
	struct zeps *e;
	bool a = q->qtype == DNS_T_A || q->qtype == DNS_T_ANY;
	bool srv = q->qtype == DNS_T_SRV || q->qtype == DNS_T_ANY;
	int r = 0;

	if (n == 1)
		return 1; /* svc.<domain>: an empty non-terminal */
	if (n == 2)
		return map_get(&q->z->svc_ns, l[0]) ? 1 : 0;
	if (n > 5)
		return 0;
	key = key_join(l[n - 3], '.', l[n - 2]);
	if (!key)
		return -ENOMEM;
	s = map_get(&q->z->svcs, key);
	if (!s)
		return 0;
	e = map_get(&q->z->eps, key);
	if (n == 3) {
		if (s->external_name) {
			/* a CNAME answers every type */
			return dns_answer_add_name(q->ans, DNS_SEC_ANSWER, q->owner, DNS_T_CNAME,
						   q->z->ttl, s->external_name)
				   ?: 1;
		}
		if (a)
			r = svc_a(q, s, e);
		if (r == 0 && srv)
			r = svc_srv(q, s, e, NULL, NULL);
		return r < 0 ? r : 1;
	}
	if (n == 4 && l[0][0] == '_') /* _<proto>.<svc>...: non-terminal above the SRV names */
		return svc_has_proto(s, l[0] + 1) ? 1 : 0;
	if (n == 5) {
		if (l[0][0] != '_' || l[1][0] != '_' || !svc_has_port(s, l[0] + 1, l[1] + 1))
			return 0;
		if (srv)
			r = svc_srv(q, s, e, l[0] + 1, l[1] + 1);
		return r < 0 ? r : 1;
	}
	/* n == 4: <endpoint>.<svc>.<ns>.svc, headless services only */
	if (!s->headless || !e)
		return 0;
	bool found = false;
	for (size_t i = 0; i < e->nsubsets; i++)
		for (size_t k = 0; k < e->subsets[i].naddrs; k++) {
			char host[LABEL_MAX + 1];
			ep_name(q->z, s, &e->subsets[i].addrs[k], host);
			if (!streq(host, l[0]))
				continue;
			if (a && !found)
				r = dns_answer_add_a(q->ans, DNS_SEC_ANSWER, q->owner, q->z->ttl,
						     e->subsets[i].addrs[k].ip);
			if (r < 0)
				return r;
			found = true;
		}
	return found;
}

static int lookup_pod(struct q *q, char **l, size_t n)
{
	_cleanup_free_ char *key = NULL;
	unsigned b[4];
	char ip[INET_ADDRSTRLEN], tail;
	uint32_t addr;

	if (n < 3)
		return 1; /* pod.<domain>, <ns>.pod.<domain> */
	if (n > 3)
		return 0;
	if (sscanf(l[0], "%3u-%3u-%3u-%3u%c", &b[0], &b[1], &b[2], &b[3], &tail) != 4 ||
	    b[0] > 255 || b[1] > 255 || b[2] > 255 || b[3] > 255)
		return 0;
	snprintf(ip, sizeof(ip), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
	key = key_join(ip, '|', l[1]);
	if (!key)
		return -ENOMEM;
	if (!map_get(&q->z->pod_ips, key))
		return 0;
	addr = ip4_parse(ip);
	if (q->qtype == DNS_T_A || q->qtype == DNS_T_ANY)
		return dns_answer_add_a(q->ans, DNS_SEC_ANSWER, q->owner, q->z->ttl, addr) ?: 1;
	return 1;
}

static int zone_soa(struct dns_zone *z, struct dns_answer *ans, enum dns_section sec)
{
	char mname[NAME_BUF], rname[NAME_BUF];

	snprintf(mname, sizeof(mname), "ns.dns.%s", z->domain);
	snprintf(rname, sizeof(rname), "hostmaster.%s", z->domain);
	/* minimum = TTL: negative answers are cached no longer than positive ones */
	return dns_answer_add_soa(ans, sec, z->domain, z->ttl, mname, rname, z->serial, 7200, 1800,
				  86400, z->ttl);
}

/*
 * d.c.b.a.in-addr.arpa for a ClusterIP: PTR <svc>.<ns>.svc.<domain>. Other reverse names are not
 * ours (0: the caller relays them).
 */
static int answer_ptr(struct dns_zone *z, const char *name, const char *qname, uint16_t qtype,
		      uint16_t qclass, struct dns_answer *ret)
{
	unsigned b[4];
	char ip[INET_ADDRSTRLEN], tail[16], owner[NAME_BUF], target[NAME_BUF];
	const char *k = ip;
	struct zptr *x;
	struct zsvc *s;
	size_t n;

	if (sscanf(name, "%3u.%3u.%3u.%3u.%15s", &b[3], &b[2], &b[1], &b[0], tail) != 5 ||
	    !streq(tail, "in-addr.arpa") || b[0] > 255 || b[1] > 255 || b[2] > 255 || b[3] > 255)
		return 0;
	snprintf(ip, sizeof(ip), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
	x = map_get(&z->svc_ips, k);
	s = x ? map_get(&z->svcs, x->svc) : NULL;
	if (!s)
		return 0;
	snprintf(owner, sizeof(owner), "%s", qname);
	n = strlen(owner);
	if (n && owner[n - 1] == '.')
		owner[n - 1] = 0;
	memset(ret, 0, sizeof(*ret));
	ret->flags = DNS_FLAG_AA;
	if (qclass != DNS_CLASS_IN && qclass != DNS_CLASS_ANY) {
		ret->rcode = DNS_RCODE_REFUSED;
		return 1;
	}
	if (qtype != DNS_T_PTR && qtype != DNS_T_ANY)
		return 1; /* NODATA */
	snprintf(target, sizeof(target), "%s.%s.svc.%s", s->name, s->ns, z->domain);
	return dns_answer_add_name(ret, DNS_SEC_ANSWER, owner, DNS_T_PTR, z->ttl, target) ?: 1;
}

int dns_zone_answer(struct dns_zone *z, const char *qname, uint16_t qtype, uint16_t qclass,
		    struct dns_answer *ret)
{
	char name[NAME_BUF], owner[NAME_BUF], *l[8];
	const char *rel;
	size_t n = 0, rl;
	int r;

	if (dns_name_canon(qname, name, sizeof(name)) < 0)
		return 0;
	if (!(rel = zone_rel(z, name)))
		return answer_ptr(z, name, qname, qtype, qclass, ret);
	snprintf(owner, sizeof(owner), "%s", qname);
	rl = strlen(owner);
	if (rl && owner[rl - 1] == '.')
		owner[rl - 1] = 0;
	memset(ret, 0, sizeof(*ret));
	ret->flags = DNS_FLAG_AA;
	if (qclass != DNS_CLASS_IN && qclass != DNS_CLASS_ANY) {
		ret->rcode = DNS_RCODE_REFUSED;
		return 1;
	}
	/* cut the labels before the domain: "web.default.svc" */
	rl = (size_t)(strlen(name) - strlen(z->domain));
	rl = rl ? rl - 1 : 0;
	name[rl] = 0;
	for (char *p = name, *dot; rl && p; p = dot ? dot + 1 : NULL) {
		dot = strchr(p, '.');
		if (dot)
			*dot = 0;
		if (n == ARRAY_SIZE(l)) {
			n++;
			break;
		}
		l[n++] = p;
	}

	struct q q = {z, owner, qtype, ret};
	if (n == 0) {
		if (qtype == DNS_T_SOA || qtype == DNS_T_ANY)
			r = zone_soa(z, ret, DNS_SEC_ANSWER);
		else if (qtype == DNS_T_NS) {
			char ns[NAME_BUF];
			snprintf(ns, sizeof(ns), "ns.dns.%s", z->domain);
			r = dns_answer_add_name(ret, DNS_SEC_ANSWER, owner, DNS_T_NS, z->ttl, ns);
		} else
			r = 0;
		r = r < 0 ? r : 1;
	} else if (n > ARRAY_SIZE(l))
		r = 0;
	else if (streq(l[n - 1], "svc"))
		r = lookup_svc(&q, l, n);
	else if (streq(l[n - 1], "pod"))
		r = lookup_pod(&q, l, n);
	else
		r = 0;
	if (r < 0) {
		dns_answer_clear(ret);
		return r;
	}
	if (r == 0)
		ret->rcode = DNS_RCODE_NXDOMAIN;
	bool data = false;
	for (size_t i = 0; i < ret->n; i++)
		data |= ret->rrs[i].section == DNS_SEC_ANSWER;
	if (!data) {
		r = zone_soa(z, ret, DNS_SEC_AUTHORITY);
		if (r < 0) {
			dns_answer_clear(ret);
			return r;
		}
	}
	return 1;
}
