// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <string.h>
#include <arpa/inet.h>

#include "lib/util.h"
#include "netplugin/ipam.h"
#include "netplugin/podfiles.h"

/* A growable string; the renderers only append. */
struct sbuf {
	char *s;
	size_t len, cap;
	int err;
};

static _printf_(2, 3) void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if (b->s && b->len + n < b->cap) {
			b->len += n;
			return;
		}
		size_t cap = (b->cap ? b->cap : 256) * 2 + n;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->err = -ENOMEM;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

static int sb_take(struct sbuf *b, char **ret)
{
	if (b->err) {
		free(b->s);
		return b->err;
	}
	*ret = b->s;
	return 0;
}

static bool valid_ip(const char *s)
{
	uint32_t ip;

	return ipam_addr_parse(s, &ip) == 0;
}

static int check_opts(const struct np_podfiles_opts *o, struct err *e)
{
	if (strempty(o->hostname) || !util_dns1123_label(o->hostname))
		return err_set(e, EINVAL, 422, "Invalid", "hostname \"%s\" is not a DNS-1123 label",
			       o->hostname ? o->hostname : "");
	if (!strempty(o->subdomain) && !util_dns1123_label(o->subdomain))
		return err_set(e, EINVAL, 422, "Invalid",
			       "subdomain \"%s\" is not a DNS-1123 label", o->subdomain);
	if (strempty(o->pod_namespace) || !util_dns1123_label(o->pod_namespace))
		return err_set(e, EINVAL, 422, "Invalid",
			       "namespace \"%s\" is not a DNS-1123 label",
			       o->pod_namespace ? o->pod_namespace : "");
	if (strempty(o->cluster_domain) || !util_dns1123_subdomain(o->cluster_domain))
		return err_set(e, EINVAL, 422, "Invalid", "cluster domain \"%s\" is not valid",
			       o->cluster_domain ? o->cluster_domain : "");
	if (!strempty(o->pod_ip) && !valid_ip(o->pod_ip))
		return err_set(e, EINVAL, 422, "Invalid", "pod IP \"%s\" is not an IPv4 address",
			       o->pod_ip);
	if (!strempty(o->nameserver) && !valid_ip(o->nameserver))
		return err_set(e, EINVAL, 422, "Invalid",
			       "nameserver \"%s\" is not an IPv4 address", o->nameserver);
	for (size_t i = 0; i < o->naliases; i++) {
		if (!o->aliases[i].ip || !valid_ip(o->aliases[i].ip))
			return err_set(e, EINVAL, 422, "Invalid",
				       "hostAliases[%zu].ip is not an IPv4 address", i);
		for (const char *const *h = o->aliases[i].hostnames; h && *h; h++)
			if (!util_dns1123_subdomain(*h))
				return err_set(e, EINVAL, 422, "Invalid",
					       "hostAliases[%zu]: \"%s\" is not a valid host name",
					       i, *h);
	}
	return 0;
}

int np_podfiles_hosts(const struct np_podfiles_opts *o, char **ret, struct err *e)
{
	struct sbuf b = {0};
	int r = check_opts(o, e);

	if (r < 0)
		return r;
	sb_add(&b, "# Kubernetes-managed hosts file (shoal).\n"
		   "127.0.0.1\tlocalhost\n"
		   "::1\tlocalhost ip6-localhost ip6-loopback\n"
		   "fe00::0\tip6-localnet\n"
		   "fe00::0\tip6-mcastprefix\n"
		   "fe00::1\tip6-allnodes\n"
		   "fe00::2\tip6-allrouters\n");
	if (!strempty(o->pod_ip)) {
		if (!strempty(o->subdomain))
			sb_add(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", o->pod_ip, o->hostname,
			       o->subdomain, o->pod_namespace, o->cluster_domain, o->hostname);
		else
			sb_add(&b, "%s\t%s\n", o->pod_ip, o->hostname);
	}
	if (o->naliases)
		sb_add(&b, "\n# Entries added by HostAliases.\n");
	for (size_t i = 0; i < o->naliases; i++) {
		sb_add(&b, "%s\t", o->aliases[i].ip);
		for (const char *const *h = o->aliases[i].hostnames; h && *h; h++)
			sb_add(&b, "%s%s", h == o->aliases[i].hostnames ? "" : "\t", *h);
		sb_add(&b, "\n");
	}
	return sb_take(&b, ret);
}

#define DNS_MAX_NAMESERVERS 3 /* what the resolver reads; the kubelet drops the rest too */
#define DNS_MAX_SEARCHES 32
#define DNS_MAX_OPTIONS 32

struct dns_lists {
	char ns[DNS_MAX_NAMESERVERS][64];
	char search[DNS_MAX_SEARCHES][256];
	char opt[DNS_MAX_OPTIONS][128];
	size_t nns, nsearch, nopt;
};

static bool valid_ns(const char *s)
{
	unsigned char buf[16];

	return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

static bool valid_search(const char *s)
{
	char tmp[256];
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n + 1);
	if (tmp[n - 1] == '.') /* a fully qualified search domain */
		tmp[n - 1] = 0;
	return util_dns1123_subdomain(tmp);
}

static bool valid_option(const char *s)
{
	if (strempty(s) || strlen(s) >= 128 || *s == ':')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == '#' || *s == ';')
			return false;
	return true;
}

static void dns_ns_add(struct dns_lists *l, const char *s)
{
	for (size_t i = 0; i < l->nns; i++)
		if (streq(l->ns[i], s))
			return;
	if (l->nns < DNS_MAX_NAMESERVERS)
		snprintf(l->ns[l->nns++], sizeof(l->ns[0]), "%s", s);
}

static void dns_search_add(struct dns_lists *l, const char *s)
{
	for (size_t i = 0; i < l->nsearch; i++)
		if (streq(l->search[i], s))
			return;
	if (l->nsearch < DNS_MAX_SEARCHES)
		snprintf(l->search[l->nsearch++], sizeof(l->search[0]), "%s", s);
}

/* An option replaces an earlier one of the same name (ndots:5 then ndots:2 gives ndots:2). */
static void dns_opt_add(struct dns_lists *l, const char *s)
{
	size_t nlen = strcspn(s, ":");

	for (size_t i = 0; i < l->nopt; i++)
		if (strcspn(l->opt[i], ":") == nlen && !strncmp(l->opt[i], s, nlen)) {
			snprintf(l->opt[i], sizeof(l->opt[0]), "%s", s);
			return;
		}
	if (l->nopt < DNS_MAX_OPTIONS)
		snprintf(l->opt[l->nopt++], sizeof(l->opt[0]), "%s", s);
}

/* The node's resolv.conf: nameserver, search/domain and options lines; invalid words skipped. */
static void dns_parse_host(struct dns_lists *l, const char *text)
{
	_cleanup_free_ char *copy = strdup(text ? text : "");
	char *save = NULL, *line;

	if (!copy)
		return;
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *wsave = NULL, *key = strtok_r(line, " \t\r", &wsave), *w;
		if (!key || *key == '#' || *key == ';')
			continue;
		if (streq(key, "nameserver")) {
			w = strtok_r(NULL, " \t\r", &wsave);
			if (valid_ns(w))
				dns_ns_add(l, w);
		} else if (streq(key, "search") || streq(key, "domain")) {
			l->nsearch = 0; /* the last search/domain line wins, as in resolv.conf(5) */
			while ((w = strtok_r(NULL, " \t\r", &wsave)))
				if (valid_search(w))
					dns_search_add(l, w);
		} else if (streq(key, "options")) {
			while ((w = strtok_r(NULL, " \t\r", &wsave)))
				if (valid_option(w))
					dns_opt_add(l, w);
		}
	}
}

int np_podfiles_resolv(const struct np_podfiles_opts *o, char **ret, struct err *e)
{
	struct sbuf b = {0};
	struct dns_lists *l;
	int r = check_opts(o, e);

	if (r < 0)
		return r;
	for (const char *const *p = o->dns_nameservers; p && *p; p++)
		if (!valid_ns(*p))
			return err_set(e, EINVAL, 422, "Invalid",
				       "dnsConfig.nameservers: \"%s\" is not an IP address", *p);
	for (const char *const *p = o->dns_searches; p && *p; p++)
		if (!valid_search(*p))
			return err_set(e, EINVAL, 422, "Invalid",
				       "dnsConfig.searches: \"%s\" is not a valid domain", *p);
	for (const char *const *p = o->dns_options; p && *p; p++)
		if (!valid_option(*p))
			return err_set(e, EINVAL, 422, "Invalid",
				       "dnsConfig.options: \"%s\" is not a valid option", *p);
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	switch (o->dns_policy) {
	case NP_DNS_CLUSTER_FIRST: {
		char s[300];
		snprintf(s, sizeof(s), "%s.svc.%s", o->pod_namespace, o->cluster_domain);
		dns_search_add(l, s);
		snprintf(s, sizeof(s), "svc.%s", o->cluster_domain);
		dns_search_add(l, s);
		dns_search_add(l, o->cluster_domain);
		if (!strempty(o->nameserver))
			dns_ns_add(l, o->nameserver);
		dns_opt_add(l, "ndots:5");
		break;
	}
	case NP_DNS_DEFAULT:
		dns_parse_host(l, o->host_resolv);
		break;
	case NP_DNS_NONE:
		break;
	}
	for (const char *const *p = o->dns_nameservers; p && *p; p++)
		dns_ns_add(l, *p);
	for (const char *const *p = o->dns_searches; p && *p; p++)
		dns_search_add(l, *p);
	for (const char *const *p = o->dns_options; p && *p; p++)
		dns_opt_add(l, *p);

	if (l->nsearch) {
		sb_add(&b, "search");
		for (size_t i = 0; i < l->nsearch; i++)
			sb_add(&b, " %s", l->search[i]);
		sb_add(&b, "\n");
	}
	for (size_t i = 0; i < l->nns; i++)
		sb_add(&b, "nameserver %s\n", l->ns[i]);
	if (l->nopt) {
		sb_add(&b, "options");
		for (size_t i = 0; i < l->nopt; i++)
			sb_add(&b, " %s", l->opt[i]);
		sb_add(&b, "\n");
	}
	if (!b.s && !b.err)
		sb_add(&b, "%s", "");
	free(l);
	return sb_take(&b, ret);
}

int np_podfiles_hostname(const struct np_podfiles_opts *o, char **ret, struct err *e)
{
	struct sbuf b = {0};
	int r = check_opts(o, e);

	if (r < 0)
		return r;
	sb_add(&b, "%s\n", o->hostname);
	return sb_take(&b, ret);
}

int np_podfiles_write(const char *dir, const struct np_podfiles_opts *o, struct err *e)
{
	static const struct {
		const char *name;
		int (*render)(const struct np_podfiles_opts *, char **, struct err *);
	} files[] = {
	    {"hosts", np_podfiles_hosts},
	    {"resolv.conf", np_podfiles_resolv},
	    {"hostname", np_podfiles_hostname},
	};
	int r = util_mkdir_p(dir, 0755);

	if (r < 0)
		return err_set(e, -r, 500, "InternalError", "cannot create %s: %s", dir,
			       strerror(-r));
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *text = NULL, *path = NULL;

		r = files[i].render(o, &text, e);
		if (r < 0)
			return r;
		if (asprintf(&path, "%s/%s", dir, files[i].name) < 0)
			return -ENOMEM;
		r = util_write_file_volatile(path, text, strlen(text), 0644);
		if (r < 0)
			return err_set(e, -r, 500, "InternalError", "cannot write %s: %s", path,
				       strerror(-r));
	}
	return 0;
}
