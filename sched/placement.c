// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/quantity.h"
#include "sched/placement.h"

static const cJSON *path2(const cJSON *o, const char *a, const char *b)
{
	if (a)
		o = cJSON_GetObjectItemCaseSensitive(o, a);
	return b ? cJSON_GetObjectItemCaseSensitive(o, b) : o;
}

static const char *str_of(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void res_parse(const cJSON *list, struct sched_res *r)
{
	const char *s;
	int64_t v;

	if (!cJSON_IsObject(list))
		return;
	s = str_of(list, "cpu");
	if (s && quantity_parse_milli(s, &v) == 0)
		r->cpu_m = v;
	s = str_of(list, "memory");
	if (s && quantity_parse_bytes(s, &v) == 0)
		r->mem = v;
	s = str_of(list, "ephemeral-storage");
	if (s && quantity_parse_bytes(s, &v) == 0)
		r->eph = v;
	s = str_of(list, "pods");
	if (s && quantity_parse_milli(s, &v) == 0)
		r->pods = v / 1000;
}

static uint8_t proto_of(const char *p)
{
	if (p && !strcmp(p, "UDP"))
		return 1;
	if (p && !strcmp(p, "SCTP"))
		return 2;
	return 0;
}

int sched_pod_init(struct sched_pod *sp, const cJSON *pod)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec"), *c, *p;
	struct sched_res init = {0};
	size_t n = 0;

	memset(sp, 0, sizeof(*sp));
	sp->obj = pod;
	sp->req.pods = 1;
	sp->tolerations = cJSON_GetObjectItemCaseSensitive(spec, "tolerations");
	sp->node_selector = cJSON_GetObjectItemCaseSensitive(spec, "nodeSelector");
	sp->required_terms =
	    path2(path2(path2(spec, "affinity", "nodeAffinity"),
			"requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"),
		  NULL, NULL);
	sp->preferred_terms = path2(path2(spec, "affinity", "nodeAffinity"),
				    "preferredDuringSchedulingIgnoredDuringExecution", NULL);
	sp->node_name = str_of(spec, "nodeName");
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
	{
		struct sched_res r = {0};

		res_parse(path2(c, "resources", "requests"), &r);
		sp->req.cpu_m += r.cpu_m;
		sp->req.mem += r.mem;
		sp->req.eph += r.eph;
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "ports"))
		{
			if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p, "hostPort")))
				n++;
		}
	}
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "initContainers"))
	{
		struct sched_res r = {0};

		res_parse(path2(c, "resources", "requests"), &r);
		if (r.cpu_m > init.cpu_m)
			init.cpu_m = r.cpu_m;
		if (r.mem > init.mem)
			init.mem = r.mem;
		if (r.eph > init.eph)
			init.eph = r.eph;
	}
	if (init.cpu_m > sp->req.cpu_m)
		sp->req.cpu_m = init.cpu_m;
	if (init.mem > sp->req.mem)
		sp->req.mem = init.mem;
	if (init.eph > sp->req.eph)
		sp->req.eph = init.eph;
	if (!n)
		return 0;
	sp->ports = calloc(n, sizeof(*sp->ports));
	if (!sp->ports)
		return -ENOMEM;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
	{
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "ports"))
		{
			const cJSON *hp = cJSON_GetObjectItemCaseSensitive(p, "hostPort");

			if (!cJSON_IsNumber(hp) || hp->valuedouble <= 0 || hp->valuedouble > 65535)
				continue;
			sp->ports[sp->n_ports].proto = proto_of(str_of(p, "protocol"));
			sp->ports[sp->n_ports].port = (uint16_t)hp->valuedouble;
			sp->n_ports++;
		}
	}
	return 0;
}

void sched_pod_release(struct sched_pod *sp)
{
	free(sp->ports);
	sp->ports = NULL;
	sp->n_ports = 0;
}

int sched_node_init(struct sched_node *sn, const cJSON *node)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(node, "status");
	const cJSON *alloc = cJSON_GetObjectItemCaseSensitive(st, "allocatable");

	memset(sn, 0, sizeof(*sn));
	sn->obj = node;
	sn->name = str_of(cJSON_GetObjectItemCaseSensitive(node, "metadata"), "name");
	sn->labels = path2(node, "metadata", "labels");
	sn->taints = path2(node, "spec", "taints");
	sn->unschedulable = cJSON_IsTrue(path2(node, "spec", "unschedulable"));
	if (!sn->name)
		return -EINVAL;
	res_parse(cJSON_GetObjectItemCaseSensitive(st, "capacity"), &sn->alloc);
	res_parse(alloc, &sn->alloc);
	return 0;
}

void sched_node_release(struct sched_node *sn)
{
	free(sn->ports);
	sn->ports = NULL;
	sn->n_ports = sn->cap_ports = 0;
}

int sched_node_commit(struct sched_node *sn, const struct sched_pod *sp)
{
	if (sn->n_ports + sp->n_ports > sn->cap_ports) {
		size_t cap = (sn->n_ports + sp->n_ports) * 2;
		struct sched_port *np = realloc(sn->ports, cap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		sn->ports = np;
		sn->cap_ports = cap;
	}
	if (sp->n_ports)
		memcpy(sn->ports + sn->n_ports, sp->ports, sp->n_ports * sizeof(*sp->ports));
	sn->n_ports += sp->n_ports;
	sn->used.cpu_m += sp->req.cpu_m;
	sn->used.mem += sp->req.mem;
	sn->used.eph += sp->req.eph;
	sn->used.pods += sp->req.pods;
	return 0;
}

void sched_node_uncommit(struct sched_node *sn, const struct sched_pod *sp)
{
	for (size_t i = 0; i < sp->n_ports; i++) {
		for (size_t j = 0; j < sn->n_ports; j++) {
			if (sn->ports[j].port == sp->ports[i].port &&
			    sn->ports[j].proto == sp->ports[i].proto) {
				sn->ports[j] = sn->ports[--sn->n_ports];
				break;
			}
		}
	}
	sn->used.cpu_m -= sp->req.cpu_m;
	sn->used.mem -= sp->req.mem;
	sn->used.eph -= sp->req.eph;
	sn->used.pods -= sp->req.pods;
}

/* --- taints and tolerations --- */

static bool toleration_matches(const cJSON *tol, const cJSON *taint)
{
	const char *tk = str_of(tol, "key"), *op = str_of(tol, "operator");
	const char *te = str_of(tol, "effect"), *tv = str_of(tol, "value");
	const char *k = str_of(taint, "key"), *v = str_of(taint, "value");
	const char *e = str_of(taint, "effect");

	if (te && *te && (!e || strcmp(te, e)))
		return false;
	if (tk && *tk) {
		if (!k || strcmp(tk, k))
			return false;
	} else if (!op || strcmp(op, "Exists")) {
		return false; /* an empty key only goes with Exists */
	}
	if (op && !strcmp(op, "Exists"))
		return true;
	if (op && *op && strcmp(op, "Equal"))
		return false;
	return !strcmp(tv ? tv : "", v ? v : "");
}

static bool tolerated(const cJSON *tolerations, const cJSON *taint)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, tolerations)
	{
		if (toleration_matches(t, taint))
			return true;
	}
	return false;
}

/* --- node affinity --- */

static bool value_in(const cJSON *values, const char *v)
{
	const cJSON *x;

	cJSON_ArrayForEach(x, values)
	{
		if (cJSON_IsString(x) && !strcmp(x->valuestring, v))
			return true;
	}
	return false;
}

static bool parse_int(const char *s, int64_t *ret)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*ret = strtoll(s, &end, 10);
	return !errno && !*end;
}

static bool requirement_matches(const cJSON *req, const char *(*get)(const cJSON *, const char *),
				const cJSON *subject)
{
	const char *key = str_of(req, "key"), *op = str_of(req, "operator");
	const cJSON *values = cJSON_GetObjectItemCaseSensitive(req, "values");
	const char *v;
	int64_t a, b;

	if (!key || !op)
		return false;
	v = get(subject, key);
	if (!strcmp(op, "In"))
		return v && value_in(values, v);
	if (!strcmp(op, "NotIn"))
		return !v || !value_in(values, v);
	if (!strcmp(op, "Exists"))
		return v != NULL;
	if (!strcmp(op, "DoesNotExist"))
		return v == NULL;
	if (!strcmp(op, "Gt") || !strcmp(op, "Lt")) {
		if (cJSON_GetArraySize(values) != 1 || !v || !parse_int(v, &a) ||
		    !parse_int(cJSON_GetArrayItem(values, 0)->valuestring, &b))
			return false;
		return !strcmp(op, "Gt") ? a > b : a < b;
	}
	return false;
}

static const char *label_get(const cJSON *labels, const char *key)
{
	return str_of(labels, key);
}

static const char *field_get(const cJSON *node, const char *key)
{
	if (!strcmp(key, "metadata.name"))
		return str_of(cJSON_GetObjectItemCaseSensitive(node, "metadata"), "name");
	return NULL;
}

/* One NodeSelectorTerm: all expressions and fields hold; an empty term matches nothing. */
static bool term_matches(const cJSON *term, const cJSON *node, const cJSON *labels)
{
	const cJSON *exprs = cJSON_GetObjectItemCaseSensitive(term, "matchExpressions");
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(term, "matchFields");
	const cJSON *r;

	if (cJSON_GetArraySize(exprs) == 0 && cJSON_GetArraySize(fields) == 0)
		return false;
	cJSON_ArrayForEach(r, exprs)
	{
		if (!requirement_matches(r, label_get, labels))
			return false;
	}
	cJSON_ArrayForEach(r, fields)
	{
		if (!requirement_matches(r, field_get, node))
			return false;
	}
	return true;
}

static bool node_affinity_ok(const struct sched_pod *sp, const struct sched_node *sn)
{
	const cJSON *x;

	cJSON_ArrayForEach(x, sp->node_selector)
	{
		const char *v = str_of(sn->labels, x->string);

		if (!cJSON_IsString(x) || !v || strcmp(v, x->valuestring))
			return false;
	}
	if (!sp->required_terms)
		return true;
	cJSON_ArrayForEach(x, sp->required_terms)
	{
		if (term_matches(x, sn->obj, sn->labels))
			return true;
	}
	return false;
}

unsigned sched_filter(const struct sched_pod *sp, const struct sched_node *sn, const cJSON **taint)
{
	const cJSON *tols = sp->tolerations, *t;
	const char *nn = sp->node_name;
	unsigned r = 0;

	/* NodeUnschedulable: a cordoned node, unless the pod tolerates the unschedulable taint */
	if (sn->unschedulable) {
		cJSON fake = {0}, k = {0}, e = {0};

		k.type = e.type = cJSON_String;
		k.string = "key";
		k.valuestring = "node.kubernetes.io/unschedulable";
		e.string = "effect";
		e.valuestring = "NoSchedule";
		k.next = &e;
		fake.type = cJSON_Object;
		fake.child = &k;
		if (!tolerated(tols, &fake))
			return SCHED_R_UNSCHEDULABLE;
	}
	if (nn && *nn && strcmp(nn, sn->name))
		return SCHED_R_NODE_NAME;
	cJSON_ArrayForEach(t, sn->taints)
	{
		const char *e = str_of(t, "effect");

		if (!e || (strcmp(e, "NoSchedule") && strcmp(e, "NoExecute")))
			continue;
		if (!tolerated(tols, t)) {
			if (taint)
				*taint = t;
			return SCHED_R_TAINT;
		}
	}
	if (!node_affinity_ok(sp, sn))
		return SCHED_R_AFFINITY;
	for (size_t i = 0; i < sp->n_ports; i++) {
		for (size_t j = 0; j < sn->n_ports; j++) {
			if (sp->ports[i].port == sn->ports[j].port &&
			    sp->ports[i].proto == sn->ports[j].proto)
				return SCHED_R_PORTS;
		}
	}
	if (sn->used.pods + 1 > sn->alloc.pods)
		r |= SCHED_R_PODS;
	if (sp->req.cpu_m && sn->used.cpu_m + sp->req.cpu_m > sn->alloc.cpu_m)
		r |= SCHED_R_CPU;
	if (sp->req.mem && sn->used.mem + sp->req.mem > sn->alloc.mem)
		r |= SCHED_R_MEMORY;
	if (sp->req.eph && sn->used.eph + sp->req.eph > sn->alloc.eph)
		r |= SCHED_R_EPH;
	return r;
}

/* --- scores --- */

/* Kubernetes' defaults for pods without requests: 100m CPU, 200 MiB memory (non-zero requests). */
#define DEFAULT_CPU_M 100
#define DEFAULT_MEM (200LL << 20)

static int64_t frac(int64_t used, int64_t alloc, bool most)
{
	if (alloc <= 0 || used > alloc)
		return 0;
	return most ? used * 100 / alloc : (alloc - used) * 100 / alloc;
}

int64_t sched_score(const struct sched_pod *sp, const struct sched_node *sn,
		    enum sched_strategy strategy)
{
	const cJSON *tols = sp->tolerations, *t;
	bool most = strategy == SCHED_MOST_ALLOCATED;
	int64_t cpu = sp->req.cpu_m ? sp->req.cpu_m : DEFAULT_CPU_M;
	int64_t mem = sp->req.mem ? sp->req.mem : DEFAULT_MEM;
	int64_t score, intolerable = 0, pref = 0;

	score = (frac(sn->used.cpu_m + cpu, sn->alloc.cpu_m, most) +
		 frac(sn->used.mem + mem, sn->alloc.mem, most)) /
		2;
	/* TaintToleration: every untolerated PreferNoSchedule taint costs */
	cJSON_ArrayForEach(t, sn->taints)
	{
		const char *e = str_of(t, "effect");

		if (e && !strcmp(e, "PreferNoSchedule") && !tolerated(tols, t))
			intolerable++;
	}
	/* NodeAffinity: the weights of the preferred terms this node matches */
	cJSON_ArrayForEach(t, sp->preferred_terms)
	{
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "weight");

		if (cJSON_IsNumber(w) &&
		    term_matches(cJSON_GetObjectItemCaseSensitive(t, "preference"), sn->obj,
				 sn->labels))
			pref += w->valueint;
	}
	return score * 100 + pref - intolerable * 100;
}

/* --- placement and the unschedulable message --- */

static void fe_add(struct sched_fit_error *fe, const char *reason)
{
	for (size_t i = 0; i < fe->n; i++) {
		if (!strcmp(fe->r[i].reason, reason)) {
			fe->r[i].count++;
			return;
		}
	}
	if (fe->n == sizeof(fe->r) / sizeof(fe->r[0]))
		return;
	snprintf(fe->r[fe->n].reason, sizeof(fe->r[0].reason), "%s", reason);
	fe->r[fe->n++].count = 1;
}

static void fe_record(struct sched_fit_error *fe, unsigned r, const cJSON *taint)
{
	char buf[160];

	if (r & SCHED_R_UNSCHEDULABLE)
		fe_add(fe, "node(s) were unschedulable");
	if (r & SCHED_R_NODE_NAME)
		fe_add(fe, "node(s) didn't match the requested node name");
	if (r & SCHED_R_TAINT) {
		const char *k = str_of(taint, "key"), *v = str_of(taint, "value");

		snprintf(buf, sizeof(buf), "node(s) had untolerated taint {%s: %s}", k ? k : "",
			 v ? v : "");
		fe_add(fe, buf);
	}
	if (r & SCHED_R_AFFINITY)
		fe_add(fe, "node(s) didn't match Pod's node affinity/selector");
	if (r & SCHED_R_PORTS)
		fe_add(fe, "node(s) didn't have free ports for the requested pod ports");
	if (r & SCHED_R_PODS)
		fe_add(fe, "Too many pods");
	if (r & SCHED_R_CPU)
		fe_add(fe, "Insufficient cpu");
	if (r & SCHED_R_MEMORY)
		fe_add(fe, "Insufficient memory");
	if (r & SCHED_R_EPH)
		fe_add(fe, "Insufficient ephemeral-storage");
}

int sched_reason_text(unsigned r, const cJSON *taint, char *buf, size_t len)
{
	struct sched_fit_error fe = {0};
	size_t off = 0;
	int w;

	fe_record(&fe, r, taint);
	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < fe.n; i++) {
		w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", fe.r[i].reason);
		if (w < 0 || (size_t)w >= len - off)
			return -ENOBUFS;
		off += (size_t)w;
	}
	return 0;
}

int sched_place(const struct sched_pod *sp, const struct sched_node *nodes, size_t n,
		enum sched_strategy strategy, const char *const *excluded, size_t n_excluded,
		struct sched_fit_error *fe)
{
	int64_t best_score = INT64_MIN;
	int best = -ENOSPC;

	if (fe)
		memset(fe, 0, sizeof(*fe));
	for (size_t i = 0; i < n; i++) {
		const cJSON *taint = NULL;
		bool skip = false;
		unsigned r;
		int64_t s;

		for (size_t j = 0; j < n_excluded && !skip; j++)
			skip = !strcmp(excluded[j], nodes[i].name);
		if (skip)
			continue;
		if (fe)
			fe->n_nodes++;
		r = sched_filter(sp, &nodes[i], &taint);
		if (r) {
			if (fe)
				fe_record(fe, r, taint);
			continue;
		}
		s = sched_score(sp, &nodes[i], strategy);
		if (s > best_score) {
			best_score = s;
			best = (int)i;
		}
	}
	return best;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int sched_fit_message(const struct sched_fit_error *fe, char *buf, size_t len)
{
	char items[24][192];
	char *sorted[24];
	size_t off;
	int w;

	/* kube-scheduler sorts the "<count> <reason>" strings as strings */
	for (size_t i = 0; i < fe->n; i++) {
		snprintf(items[i], sizeof(items[i]), "%zu %s", fe->r[i].count, fe->r[i].reason);
		sorted[i] = items[i];
	}
	qsort(sorted, fe->n, sizeof(sorted[0]), cmp_str);
	w = snprintf(buf, len, "0/%zu nodes are available", fe->n_nodes);
	if (w < 0 || (size_t)w >= len)
		return -ENOBUFS;
	off = (size_t)w;
	for (size_t i = 0; i < fe->n; i++) {
		w = snprintf(buf + off, len - off, "%s%s", i ? ", " : ": ", sorted[i]);
		if (w < 0 || (size_t)w >= len - off)
			return -ENOBUFS;
		off += (size_t)w;
	}
	w = snprintf(buf + off, len - off, ".");
	if (w < 0 || (size_t)w >= len - off)
		return -ENOBUFS;
	return 0;
}
