// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/quantity.h"
#include "api/selector.h"
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

/* Parse one PodAffinityTerm; a term with a selector we cannot parse matches nothing. */
static int term_add(struct sched_pod *sp, const cJSON *t, bool anti, int weight)
{
	struct sched_pod_term *pt = &sp->terms[sp->n_terms];
	const cJSON *nss = cJSON_GetObjectItemCaseSensitive(t, "namespaceSelector");

	memset(pt, 0, sizeof(*pt));
	pt->key = str_of(t, "topologyKey");
	if (!pt->key || !*pt->key)
		return 0;
	if (label_selector_from_json(cJSON_GetObjectItemCaseSensitive(t, "labelSelector"), "",
				     &pt->sel, NULL) < 0 ||
	    !cJSON_GetObjectItemCaseSensitive(t, "labelSelector"))
		pt->sel = label_selector_free(pt->sel); /* no selector: matches no pod */
	pt->namespaces = cJSON_GetObjectItemCaseSensitive(t, "namespaces");
	pt->all_ns = cJSON_IsObject(nss) && !nss->child;
	pt->anti = anti;
	pt->weight = weight;
	if (anti && !weight)
		sp->req_anti = true;
	sp->n_terms++;
	return 0;
}

static int pod_terms_init(struct sched_pod *sp, const cJSON *spec)
{
	static const char *const kinds[2] = {"podAffinity", "podAntiAffinity"};
	const cJSON *aff = cJSON_GetObjectItemCaseSensitive(spec, "affinity"), *t;
	size_t n = 0;

	for (int k = 0; k < 2; k++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(aff, kinds[k]);
		n += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
		    a, "requiredDuringSchedulingIgnoredDuringExecution"));
		n += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
		    a, "preferredDuringSchedulingIgnoredDuringExecution"));
	}
	if (!n)
		return 0;
	sp->terms = calloc(n, sizeof(*sp->terms));
	if (!sp->terms)
		return -ENOMEM;
	for (int k = 0; k < 2; k++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(aff, kinds[k]);
		cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(
					  a, "requiredDuringSchedulingIgnoredDuringExecution"))
		    term_add(sp, t, k == 1, 0);
		cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(
					  a, "preferredDuringSchedulingIgnoredDuringExecution"))
		{
			const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "weight");
			int wt = cJSON_IsNumber(w) && w->valueint > 0 ? w->valueint : 1;

			term_add(sp, cJSON_GetObjectItemCaseSensitive(t, "podAffinityTerm"), k == 1,
				 wt);
		}
	}
	return 0;
}

static int spread_init(struct sched_pod *sp, const cJSON *spec)
{
	const cJSON *cs = cJSON_GetObjectItemCaseSensitive(spec, "topologySpreadConstraints"), *c;
	size_t n = (size_t)cJSON_GetArraySize(cs);

	if (!n)
		return 0;
	sp->spread = calloc(n, sizeof(*sp->spread));
	if (!sp->spread)
		return -ENOMEM;
	cJSON_ArrayForEach(c, cs)
	{
		struct sched_spread *x = &sp->spread[sp->n_spread];
		const cJSON *ms = cJSON_GetObjectItemCaseSensitive(c, "maxSkew");
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(c, "minDomains");
		const char *wu = str_of(c, "whenUnsatisfiable");

		x->key = str_of(c, "topologyKey");
		if (!x->key || !*x->key)
			continue;
		if (label_selector_from_json(cJSON_GetObjectItemCaseSensitive(c, "labelSelector"),
					     "", &x->sel, NULL) < 0 ||
		    !cJSON_GetObjectItemCaseSensitive(c, "labelSelector"))
			x->sel = label_selector_free(x->sel); /* matches no pod */
		x->max_skew =
		    cJSON_IsNumber(ms) && ms->valuedouble >= 1 ? (int64_t)ms->valuedouble : 1;
		x->min_domains = cJSON_IsNumber(md) ? (int64_t)md->valuedouble : 1;
		x->hard = !wu || strcmp(wu, "ScheduleAnyway");
		sp->n_spread++;
	}
	return 0;
}

/* Kubernetes' defaults for containers without requests: 100m CPU, 200 MiB memory (the
 * scheduler's non-zero requests, for scoring only). */
#define DEFAULT_CPU_M 100
#define DEFAULT_MEM (200LL << 20)

int sched_pod_init(struct sched_pod *sp, const cJSON *pod)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec"), *c, *p;
	struct sched_res init = {0}, init_nz = {0};
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
	sp->ns = str_of(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "namespace");
	if (!sp->ns)
		sp->ns = "default";
	sp->labels = path2(pod, "metadata", "labels");
	const char *phase = str_of(cJSON_GetObjectItemCaseSensitive(pod, "status"), "phase");
	sp->starting = !phase || !strcmp(phase, "Pending");
	if (pod_terms_init(sp, spec) < 0 || spread_init(sp, spec) < 0) {
		sched_pod_release(sp);
		return -ENOMEM;
	}
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
	{
		struct sched_res r = {0};

		res_parse(path2(c, "resources", "requests"), &r);
		sp->req.cpu_m += r.cpu_m;
		sp->req.mem += r.mem;
		sp->req.eph += r.eph;
		sp->nz.cpu_m += r.cpu_m ? r.cpu_m : DEFAULT_CPU_M;
		sp->nz.mem += r.mem ? r.mem : DEFAULT_MEM;
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
		if ((r.cpu_m ? r.cpu_m : DEFAULT_CPU_M) > init_nz.cpu_m)
			init_nz.cpu_m = r.cpu_m ? r.cpu_m : DEFAULT_CPU_M;
		if ((r.mem ? r.mem : DEFAULT_MEM) > init_nz.mem)
			init_nz.mem = r.mem ? r.mem : DEFAULT_MEM;
	}
	if (init.cpu_m > sp->req.cpu_m)
		sp->req.cpu_m = init.cpu_m;
	if (init.mem > sp->req.mem)
		sp->req.mem = init.mem;
	if (init.eph > sp->req.eph)
		sp->req.eph = init.eph;
	if (init_nz.cpu_m > sp->nz.cpu_m)
		sp->nz.cpu_m = init_nz.cpu_m;
	if (init_nz.mem > sp->nz.mem)
		sp->nz.mem = init_nz.mem;
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
	for (size_t i = 0; i < sp->n_terms; i++)
		label_selector_free(sp->terms[i].sel);
	free(sp->terms);
	sp->terms = NULL;
	sp->n_terms = 0;
	for (size_t i = 0; i < sp->n_spread; i++)
		label_selector_free(sp->spread[i].sel);
	free(sp->spread);
	sp->spread = NULL;
	sp->n_spread = 0;
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
	sn->images = cJSON_GetObjectItemCaseSensitive(st, "images");
	if (!sn->name)
		return -EINVAL;
	res_parse(cJSON_GetObjectItemCaseSensitive(st, "capacity"), &sn->alloc);
	res_parse(alloc, &sn->alloc);
	return 0;
}

void sched_node_release(struct sched_node *sn)
{
	free(sn->pods);
	sn->pods = NULL;
	sn->n_pods = sn->cap_pods = sn->n_anti = 0;
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
	if (!sn->no_pods) {
		if (sn->n_pods == sn->cap_pods) {
			size_t cap = sn->cap_pods ? sn->cap_pods * 2 : 8;
			const struct sched_pod **np = realloc(sn->pods, cap * sizeof(*np));

			if (!np)
				return -ENOMEM;
			sn->pods = np;
			sn->cap_pods = cap;
		}
		sn->pods[sn->n_pods++] = sp;
		sn->n_anti += sp->req_anti;
	}
	if (sp->n_ports)
		memcpy(sn->ports + sn->n_ports, sp->ports, sp->n_ports * sizeof(*sp->ports));
	sn->n_ports += sp->n_ports;
	sn->used.cpu_m += sp->req.cpu_m;
	sn->used.mem += sp->req.mem;
	sn->used.eph += sp->req.eph;
	sn->used.pods += sp->req.pods;
	sn->used_nz.cpu_m += sp->nz.cpu_m;
	sn->used_nz.mem += sp->nz.mem;
	sn->starting += sp->starting;
	return 0;
}

void sched_node_uncommit(struct sched_node *sn, const struct sched_pod *sp)
{
	for (size_t i = 0; i < sn->n_pods; i++) {
		if (sn->pods[i] == sp) {
			sn->pods[i] = sn->pods[--sn->n_pods];
			sn->n_anti -= sp->req_anti;
			break;
		}
	}
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
	sn->used_nz.cpu_m -= sp->nz.cpu_m;
	sn->used_nz.mem -= sp->nz.mem;
	if (sp->starting && sn->starting)
		sn->starting--;
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
	int64_t score, intolerable = 0, pref = 0;

	/* NodeResourcesFit's scoring counts non-zero requests, of the pod and of those placed */
	score = (frac(sn->used_nz.cpu_m + sp->nz.cpu_m, sn->alloc.cpu_m, most) +
		 frac(sn->used_nz.mem + sp->nz.mem, sn->alloc.mem, most)) /
		2;
	if (!most)
		score -= (int64_t)sn->starting * SCHED_STARTING_COST;
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
	if (r & SCHED_R_SPREAD_LABEL)
		fe_add(fe, "node(s) didn't match pod topology spread constraints (missing required "
			   "label)");
	if (r & SCHED_R_SPREAD)
		fe_add(fe, "node(s) didn't match pod topology spread constraints");
	if (r & SCHED_R_POD_AFFINITY)
		fe_add(fe, "node(s) didn't match pod affinity rules");
	if (r & SCHED_R_POD_ANTI)
		fe_add(fe, "node(s) didn't match pod anti-affinity rules");
	if (r & SCHED_R_EXISTING_ANTI)
		fe_add(fe, "node(s) didn't satisfy existing pods anti-affinity rules");
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

/* --- the filters and scores that need the whole view --- */

/* (topology value, count) pairs, sorted by value for bsearch. */
struct vcount {
	const char *val;
	int64_t n;
};

struct vset {
	struct vcount *v;
	size_t n, cap;
	bool any; /* some pod matched (values may still be empty: nodes without the key) */
};

static int vcount_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vcount *)a)->val, ((const struct vcount *)b)->val);
}

static int vset_add(struct vset *s, const char *val, int64_t n)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct vcount *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n].val = val;
	s->v[s->n++].n = n;
	return 0;
}

/* sort and sum duplicates */
static void vset_seal(struct vset *s)
{
	size_t k = 0;

	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(*s->v), vcount_cmp);
	for (size_t i = 1; i < s->n; i++) {
		if (!strcmp(s->v[i].val, s->v[k].val))
			s->v[k].n += s->v[i].n;
		else
			s->v[++k] = s->v[i];
	}
	s->n = k + 1;
}

static int64_t vset_get(const struct vset *s, const char *val)
{
	struct vcount key = {.val = val}, *f;

	if (!val || !s->n)
		return 0;
	f = bsearch(&key, s->v, s->n, sizeof(*s->v), vcount_cmp);
	return f ? f->n : 0;
}

static bool term_ns_ok(const struct sched_pod_term *t, const char *owner_ns, const char *ns)
{
	if (t->all_ns)
		return true;
	if (cJSON_GetArraySize(t->namespaces) > 0)
		return value_in(t->namespaces, ns);
	return !strcmp(owner_ns, ns);
}

/* Does pod q match term t (of a pod in owner_ns)? */
static bool term_matches_pod(const struct sched_pod_term *t, const char *owner_ns,
			     const struct sched_pod *q)
{
	return t->sel && term_ns_ok(t, owner_ns, q->ns) &&
	       label_selector_matches(t->sel, q->labels);
}

struct prep {
	struct vset *terms; /* per sp->terms[i]: values holding matching pods */
	/* per topology key, the domains placed pods' anti-affinity keeps this pod out of */
	struct {
		const char *key;
		struct vset vals;
	} anti[8];
	size_t n_anti;
	struct vset *spread; /* per constraint: matching pods per domain (eligible nodes) */
	int64_t *spread_min;
	size_t n_domains_total;
};

static void prep_free(struct prep *p, const struct sched_pod *sp)
{
	for (size_t i = 0; p->terms && i < sp->n_terms; i++)
		free(p->terms[i].v);
	free(p->terms);
	for (size_t i = 0; p->spread && i < sp->n_spread; i++)
		free(p->spread[i].v);
	free(p->spread);
	free(p->spread_min);
	for (size_t i = 0; i < p->n_anti; i++)
		free(p->anti[i].vals.v);
}

static int prep_anti_add(struct prep *p, const char *key, const char *val)
{
	size_t i;

	for (i = 0; i < p->n_anti; i++)
		if (!strcmp(p->anti[i].key, key))
			break;
	if (i == p->n_anti) {
		if (p->n_anti == sizeof(p->anti) / sizeof(p->anti[0]))
			i = p->n_anti - 1; /* more keys than that: the last group takes them */
		else
			p->anti[p->n_anti++].key = key;
	}
	if (strcmp(p->anti[i].key, key))
		return 0;
	return vset_add(&p->anti[i].vals, val, 1);
}

static int prep_build(struct prep *p, const struct sched_pod *sp, const struct sched_node *nodes,
		      size_t n)
{
	memset(p, 0, sizeof(*p));
	if (sp->n_terms && !(p->terms = calloc(sp->n_terms, sizeof(*p->terms))))
		return -ENOMEM;
	if (sp->n_spread && (!(p->spread = calloc(sp->n_spread, sizeof(*p->spread))) ||
			     !(p->spread_min = calloc(sp->n_spread, sizeof(*p->spread_min)))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct sched_node *sn = &nodes[i];
		bool eligible = sp->n_spread && node_affinity_ok(sp, sn);

		for (size_t c = 0; eligible && c < sp->n_spread; c++) {
			/* every eligible domain counts, also with no pods: it is the minimum */
			const char *v = str_of(sn->labels, sp->spread[c].key);
			if (v && vset_add(&p->spread[c], v, 0) < 0)
				return -ENOMEM;
		}
		if (!sp->n_terms && !sn->n_anti && !eligible)
			continue;
		for (size_t k = 0; k < sn->n_pods; k++) {
			const struct sched_pod *q = sn->pods[k];

			for (size_t t = 0; t < sp->n_terms; t++) {
				const char *v;
				if (!term_matches_pod(&sp->terms[t], sp->ns, q))
					continue;
				p->terms[t].any = true;
				v = str_of(sn->labels, sp->terms[t].key);
				if (v && vset_add(&p->terms[t], v, 1) < 0)
					return -ENOMEM;
			}
			for (size_t t = 0; q->req_anti && t < q->n_terms; t++) {
				const struct sched_pod_term *qt = &q->terms[t];
				const char *v;
				if (!qt->anti || qt->weight || !term_matches_pod(qt, q->ns, sp))
					continue;
				v = str_of(sn->labels, qt->key);
				if (v && prep_anti_add(p, qt->key, v) < 0)
					return -ENOMEM;
			}
			for (size_t c = 0; eligible && c < sp->n_spread; c++) {
				const struct sched_spread *x = &sp->spread[c];
				const char *v = str_of(sn->labels, x->key);
				if (v && x->sel && !strcmp(q->ns, sp->ns) &&
				    label_selector_matches(x->sel, q->labels) &&
				    vset_add(&p->spread[c], v, 1) < 0)
					return -ENOMEM;
			}
		}
	}
	for (size_t t = 0; t < sp->n_terms; t++)
		vset_seal(&p->terms[t]);
	for (size_t i = 0; i < p->n_anti; i++)
		vset_seal(&p->anti[i].vals);
	for (size_t c = 0; c < sp->n_spread; c++) {
		struct vset *d = &p->spread[c];
		vset_seal(d);
		p->spread_min[c] = d->n ? d->v[0].n : 0;
		for (size_t k = 1; k < d->n; k++)
			if (d->v[k].n < p->spread_min[c])
				p->spread_min[c] = d->v[k].n;
		if ((int64_t)d->n < sp->spread[c].min_domains)
			p->spread_min[c] = 0;
	}
	return 0;
}

static unsigned view_filter(const struct sched_pod *sp, const struct sched_node *sn,
			    const struct prep *p, bool spread)
{
	/* PodTopologySpread */
	for (size_t c = 0; spread && c < sp->n_spread; c++) {
		const struct sched_spread *x = &sp->spread[c];
		const char *v = str_of(sn->labels, x->key);
		int64_t self;

		if (!x->hard)
			continue;
		if (!v)
			return SCHED_R_SPREAD_LABEL;
		self = x->sel && label_selector_matches(x->sel, sp->labels) ? 1 : 0;
		if (vset_get(&p->spread[c], v) + self - p->spread_min[c] > x->max_skew)
			return SCHED_R_SPREAD;
	}
	/* InterPodAffinity */
	for (size_t t = 0; t < sp->n_terms; t++) {
		const struct sched_pod_term *pt = &sp->terms[t];
		const char *v;

		if (pt->weight || pt->anti)
			continue;
		v = str_of(sn->labels, pt->key);
		if (!v)
			return SCHED_R_POD_AFFINITY;
		if (vset_get(&p->terms[t], v))
			continue;
		/* the first pod of a group that selects itself may go anywhere with the key */
		if (!p->terms[t].any && term_matches_pod(pt, sp->ns, sp))
			continue;
		return SCHED_R_POD_AFFINITY;
	}
	for (size_t t = 0; t < sp->n_terms; t++) {
		const struct sched_pod_term *pt = &sp->terms[t];
		const char *v;

		if (pt->weight || !pt->anti)
			continue;
		v = str_of(sn->labels, pt->key);
		if (v && vset_get(&p->terms[t], v))
			return SCHED_R_POD_ANTI;
	}
	for (size_t i = 0; i < p->n_anti; i++) {
		const char *v = str_of(sn->labels, p->anti[i].key);
		if (v && vset_get(&p->anti[i].vals, v))
			return SCHED_R_EXISTING_ANTI;
	}
	return 0;
}

/* Image references as nodes list them: docker.io/library/busybox:latest */
static void image_norm(const char *in, char *out, size_t len)
{
	const char *slash = strchr(in, '/'), *last = strrchr(in, '/');
	bool tagged = strchr(last ? last : in, ':') || strchr(in, '@');
	const char *prefix = "";

	if (!slash)
		prefix = "docker.io/library/";
	else if (!memchr(in, '.', (size_t)(slash - in)) && !memchr(in, ':', (size_t)(slash - in)) &&
		 strncmp(in, "localhost/", 10))
		prefix = "docker.io/";
	snprintf(out, len, "%s%s%s", prefix, in, tagged ? "" : ":latest");
}

static int64_t node_image_size(const struct sched_node *sn, const char *norm)
{
	const cJSON *img, *nm;

	cJSON_ArrayForEach(img, sn->images)
	{
		cJSON_ArrayForEach(nm, cJSON_GetObjectItemCaseSensitive(img, "names"))
		{
			char buf[512];
			if (!cJSON_IsString(nm))
				continue;
			image_norm(nm->valuestring, buf, sizeof(buf));
			if (!strcmp(buf, norm)) {
				const cJSON *sz =
				    cJSON_GetObjectItemCaseSensitive(img, "sizeBytes");
				return cJSON_IsNumber(sz) ? (int64_t)sz->valuedouble : 0;
			}
		}
	}
	return -1;
}

/* ImageLocality: Kubernetes' thresholds (23 MB .. 1000 MB per container), 0..100. */
static int64_t image_score(const struct sched_pod *sp, const struct sched_node *sn,
			   const int64_t *have, size_t n_nodes)
{
	const cJSON *c;
	double sum = 0;
	int64_t n_ctrs = 0, min = 23LL << 20, max;
	size_t i = 0;

	cJSON_ArrayForEach(c, path2(sp->obj, "spec", "containers"))
	{
		const char *im = str_of(c, "image");
		char norm[512];
		int64_t sz;

		n_ctrs++;
		if (!im)
			continue;
		image_norm(im, norm, sizeof(norm));
		sz = node_image_size(sn, norm);
		if (sz > 0 && n_nodes)
			sum += (double)sz * (double)have[i] / (double)n_nodes;
		i++;
	}
	max = 1000LL * (1 << 20) * (n_ctrs ? n_ctrs : 1);
	if (sum < (double)min)
		return 0;
	if (sum > (double)max)
		sum = (double)max;
	return (int64_t)(100 * (sum - (double)min) / (double)(max - min));
}

static int64_t view_score(const struct sched_pod *sp, const struct sched_node *sn,
			  const struct prep *p)
{
	int64_t s = 0;

	for (size_t t = 0; t < sp->n_terms; t++) {
		const struct sched_pod_term *pt = &sp->terms[t];
		const char *v;

		if (!pt->weight)
			continue;
		v = str_of(sn->labels, pt->key);
		if (v && vset_get(&p->terms[t], v))
			s += (pt->anti ? -1 : 1) * pt->weight * 100;
	}
	for (size_t c = 0; c < sp->n_spread; c++) {
		const char *v = str_of(sn->labels, sp->spread[c].key);

		if (!sp->spread[c].hard && v)
			s -= (vset_get(&p->spread[c], v) - p->spread_min[c]) * 100;
	}
	return s;
}

/* splitmix64: the tie-break's random stream from the caller's seed */
static uint64_t rnd_next(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int sched_place(const struct sched_pod *sp, const struct sched_node *nodes, size_t n,
		enum sched_strategy strategy, const char *const *excluded, size_t n_excluded,
		struct sched_fit_error *fe)
{
	return sched_place_r(sp, nodes, n, strategy, excluded, n_excluded, 0, fe);
}

int sched_place_r(const struct sched_pod *sp, const struct sched_node *nodes, size_t n,
		  enum sched_strategy strategy, const char *const *excluded, size_t n_excluded,
		  uint64_t rnd, struct sched_fit_error *fe)
{
	return sched_place_scored(sp, nodes, NULL, n, strategy, excluded, n_excluded, rnd, fe);
}

int sched_place_scored(const struct sched_pod *sp, const struct sched_node *nodes,
		       const struct sched_node *scored, size_t n, enum sched_strategy strategy,
		       const char *const *excluded, size_t n_excluded, uint64_t rnd,
		       struct sched_fit_error *fe)
{
	int64_t best_score = INT64_MIN, *have = NULL;
	uint64_t ties = 0;
	bool view = sp->n_terms || sp->n_spread;
	size_t n_images = 0;
	struct prep p, ps, *pscore = &p;
	int best = -ENOSPC;
	const cJSON *c;

	if (fe)
		memset(fe, 0, sizeof(*fe));
	if (scored == nodes)
		scored = NULL;
	/* the view-wide filters only cost when this pod or a placed one asks for them */
	for (size_t i = 0; i < n && !view; i++)
		view = nodes[i].n_anti > 0;
	if (view && prep_build(&p, sp, nodes, n) < 0) {
		prep_free(&p, sp);
		return -ENOMEM;
	}
	if (view && scored) {
		pscore = &ps;
		if (prep_build(&ps, sp, scored, n) < 0) {
			prep_free(&ps, sp);
			prep_free(&p, sp);
			return -ENOMEM;
		}
	}
	/* how many nodes hold each of the pod's images (ImageLocality's spread factor) */
	for (size_t i = 0; i < n; i++)
		if (nodes[i].images) {
			n_images = (size_t)cJSON_GetArraySize(path2(sp->obj, "spec", "containers"));
			break;
		}
	if (n_images && (have = calloc(n_images, sizeof(*have)))) {
		size_t k = 0;
		cJSON_ArrayForEach(c, path2(sp->obj, "spec", "containers"))
		{
			const char *im = str_of(c, "image");
			char norm[512];
			if (!im)
				continue;
			image_norm(im, norm, sizeof(norm));
			for (size_t i = 0; i < n; i++)
				have[k] += node_image_size(&nodes[i], norm) > 0;
			k++;
		}
	}
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
		if (!r && view)
			r = view_filter(sp, &nodes[i], &p, true);
		if (r) {
			if (fe)
				fe_record(fe, r, taint);
			continue;
		}
		s = sched_score(sp, scored ? &scored[i] : &nodes[i], strategy);
		if (view)
			s += view_score(sp, scored ? &scored[i] : &nodes[i], pscore);
		if (have)
			s += image_score(sp, &nodes[i], have, n) * 100;
		if (s > best_score) {
			best_score = s;
			best = (int)i;
			ties = 1;
		} else if (s == best_score && rnd && rnd_next(&rnd) % ++ties == 0) {
			best = (int)i; /* reservoir sampling: each tied node alike */
		}
	}
	if (view)
		prep_free(&p, sp);
	if (pscore != &p)
		prep_free(&ps, sp);
	free(have);
	return best;
}

long sched_interpod_filter(const struct sched_pod *sp, const struct sched_node *nodes, size_t n,
			   size_t target)
{
	bool view = sp->n_terms > 0;
	struct prep p;
	unsigned r;

	if (target >= n)
		return -EINVAL;
	for (size_t i = 0; i < n && !view; i++)
		view = nodes[i].n_anti > 0;
	if (!view)
		return 0;
	if (prep_build(&p, sp, nodes, n) < 0) {
		prep_free(&p, sp);
		return -ENOMEM;
	}
	r = view_filter(sp, &nodes[target], &p, false);
	prep_free(&p, sp);
	return r;
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
