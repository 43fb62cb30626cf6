/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-pod /etc/hosts, /etc/resolv.conf and hostname files, rendered the way the kubelet
 * writes them. Pure: render into memory, or write the three files into a directory the
 * runtime bind-mounts into every container of the pod.
 */
#ifndef SHOAL_NETPLUGIN_PODFILES_H
#define SHOAL_NETPLUGIN_PODFILES_H

#include <stddef.h>

#include "lib/err.h"

struct np_host_alias {
	const char *ip;
	const char *const *hostnames; /* NULL-terminated */
};

/* spec.dnsPolicy for resolv.conf (ClusterFirstWithHostNet is ClusterFirst for a pod network) */
enum np_dns_policy { NP_DNS_CLUSTER_FIRST = 0, NP_DNS_DEFAULT, NP_DNS_NONE };

struct np_podfiles_opts {
	const char *hostname;	    /* spec.hostname or the pod name (DNS-1123 label) */
	const char *subdomain;	    /* spec.subdomain, optional */
	const char *pod_namespace;  /* metadata.namespace */
	const char *cluster_domain; /* cluster.local */
	const char *pod_ip;	    /* optional (hostNetwork pods have none of their own) */
	const char *nameserver;	    /* cluster DNS address; NULL: no nameserver line */
	const struct np_host_alias *aliases; /* spec.hostAliases */
	size_t naliases;
	enum np_dns_policy dns_policy;
	const char *host_resolv;    /* Default: text of the node's resolv.conf (NULL: empty) */
	/* spec.dnsConfig, merged after the policy's base (each NULL-terminated, optional) */
	const char *const *dns_nameservers;
	const char *const *dns_searches;
	const char *const *dns_options; /* "name" or "name:value"; a later name replaces */
};

/* Each returns 0 and a malloc'd NUL-terminated string, or -EINVAL with a message. */
int np_podfiles_hosts(const struct np_podfiles_opts *o, char **ret, struct err *e);
int np_podfiles_resolv(const struct np_podfiles_opts *o, char **ret, struct err *e);
int np_podfiles_hostname(const struct np_podfiles_opts *o, char **ret, struct err *e);
/* Write <dir>/hosts, <dir>/resolv.conf and <dir>/hostname (0644, atomically). */
int np_podfiles_write(const char *dir, const struct np_podfiles_opts *o, struct err *e);

#endif
