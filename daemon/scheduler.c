// SPDX-License-Identifier: Apache-2.0
/*
 * The scheduler's glue: a cache of every pod and Node of the replica (fed by store watches),
 * one placement pass at a time on the event loop, and the writes that carry proposals,
 * bindings and rejections between nodes through the store. See scheduler.h for the protocol.
 *
 * A pass first decides everything against an immutable view, then writes: a store write runs
 * the watch callbacks synchronously, and they change the cache the pass iterates.
 */
#include <search.h>
#include <string.h>

#include "api/object.h"
#include "daemon/events.h"
#include "daemon/scheduler.h"
#include "lib/histo.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/admission.h"
#include "sched/answer.h"
#include "sched/hlc.h"

#define PASS_DELAY_MS 2		    /* coalesce a burst of events into one pass */
#define TICK_MS 1000		    /* membership epoch and stale nominations */
#define NOMINATION_TIMEOUT_MS 30000 /* a nominee that neither binds nor rejects: place again */
#define MAX_EXCLUDED 16
/* a pod counts as still starting on its node (SCHED_STARTING_COST) for the pods created up to
 * this long after it: a function of the replicated creation times, the same on every owner */
#define STARTING_WINDOW_MS 10000
#define TEST_BIND_ALIGN_MS 250 /* test_bind_self: binding passes on these wall-clock marks */

struct excl {
	char node[254];
	uint64_t gen; /* the node's generation when it rejected: excluded while unchanged */
};

struct spod {
	char *uid, *ns, *name, *key; /* key: "pods/<ns>/<name>" (ownership) */
	cJSON *obj;
	struct sched_pod sp;
	const char *node;      /* spec.nodeName, "" unbound (points into obj) */
	const char *nominated; /* status.nominatedNodeName, "" none */
	bool terminal;	       /* Succeeded/Failed: holds nothing */
	bool deleting;
	size_t idx;
	uint64_t born; /* HLC of the pod's create: the order owners place pending pods in */
	uint64_t seed; /* the placement's tie-break, the same on every node (a hash of the uid) */
	struct sched_node *scored; /* during a pass: where the scoring view counts it, or NULL */
	/* owner side */
	char proposed[254]; /* the node this node nominated, "" none */
	uint64_t nominated_seen_ms;
	struct excl excluded[MAX_EXCLUDED];
	size_t n_excluded;
	uint64_t first_seen_ms;
	uint64_t nom_seq; /* bumped whenever status.nominatedNodeName changes */
	/* target side */
	struct sched_answer answer; /* whether the current nomination is still owed an answer */
};

struct snode {
	char *name;
	cJSON *obj;
	uint64_t gen;
};

enum action_kind { ACT_BIND, ACT_NOMINATE, ACT_REJECT, ACT_UNSCHEDULABLE };

struct action {
	enum action_kind kind;
	bool answer; /* the target's answer to nomination nom_seq: retried if it fails */
	uint64_t nom_seq;
	char *uid;
	char *node;
	char *msg;
};

struct scheduler {
	struct event_base *base;
	struct store *store;
	struct members *members;
	char *self;
	enum sched_strategy strategy;
	char *test_propose_to;
	bool test_bind_self;
	struct event *test_ev; /* test_bind_self: the next pass due */
	uint64_t test_bind_due;
	struct bind_confirm *confirm;
	struct events *events;
	struct admission *ledger; /* NULL until this node's Node exists */
	struct store_watch *pod_watch, *node_watch;
	struct event *pass_ev, *tick_ev;
	uint64_t epoch;
	/* a self-placement whose binding failed: a pass is due at this time (0: none) */
	uint64_t bind_retry_ms;
	void *by_uid; /* tsearch root of struct spod * */
	struct spod **pods;
	size_t npods, cap_pods;
	struct snode *nodes;
	size_t nnodes;
	struct action *acts;
	size_t nacts, cap_acts;
	/* metrics */
	uint64_t placements, binds, rejections, unschedulable, nominations;
	struct histo lat; /* ms */
};

static const uint64_t lat_bounds_ms[] = {10, 50, 100, 250, 500, 1000, 5000, 10000};

/* ---------- the pod cache ---------- */

static int cmp_uid(const void *a, const void *b)
{
	return strcmp(((const struct spod *)a)->uid, ((const struct spod *)b)->uid);
}

static struct spod *pod_lookup(struct scheduler *s, const char *uid)
{
	struct spod key = {.uid = (char *)uid};
	void *r = tfind(&key, &s->by_uid, cmp_uid);

	return r ? *(struct spod **)r : NULL;
}

static void spod_free(struct spod *p)
{
	if (!p)
		return;
	sched_pod_release(&p->sp);
	cJSON_Delete(p->obj);
	free(p->uid);
	free(p->ns);
	free(p->name);
	free(p->key);
	free(p);
}

static bool is_terminal(const cJSON *obj)
{
	const char *ph = json_str(obj, "status.phase", "");

	return streq(ph, "Succeeded") || streq(ph, "Failed");
}

/* Take a new state of the pod (obj is taken over). */
static int spod_set(struct spod *p, cJSON *obj)
{
	struct sched_pod sp;
	int r = sched_pod_init(&sp, obj);

	if (r < 0) {
		cJSON_Delete(obj);
		return r;
	}
	/* compared before the old object, which p->nominated points into, is freed: compared
	 * after, every update of a nominated pod counted as a new nomination */
	const char *nom = json_str(obj, "status.nominatedNodeName", "");
	if (!p->nominated || !streq(nom, p->nominated)) {
		p->nominated_seen_ms = util_now_ms();
		p->nom_seq++;
	}
	/* starting is counted by creation time (pass_run), not from the phase: when a pod turns
	 * Running differs between replicas, and the owners' replays must agree */
	sp.starting = true;
	sched_pod_release(&p->sp);
	cJSON_Delete(p->obj);
	p->obj = obj;
	p->sp = sp;
	p->node = json_str(obj, "spec.nodeName", "");
	p->nominated = nom;
	p->terminal = is_terminal(obj);
	p->deleting = json_path(obj, "metadata.deletionTimestamp") != NULL;
	return 0;
}

static struct spod *pod_insert(struct scheduler *s, const struct store_obj *o, cJSON *obj)
{
	struct spod *p = calloc(1, sizeof(*p));

	if (!p)
		goto fail;
	p->uid = strdup(o->uid);
	p->ns = strdup(o->ns);
	p->name = strdup(o->name);
	if (!p->uid || !p->ns || !p->name || asprintf(&p->key, "pods/%s/%s", o->ns, o->name) < 0)
		goto fail;
	if (spod_set(p, TAKE_PTR(obj)) < 0)
		goto fail;
	if (s->npods == s->cap_pods) {
		size_t cap = s->cap_pods ? s->cap_pods * 2 : 64;
		struct spod **np = realloc(s->pods, cap * sizeof(*np));
		if (!np)
			goto fail;
		s->pods = np;
		s->cap_pods = cap;
	}
	if (!tsearch(p, &s->by_uid, cmp_uid))
		goto fail;
	p->idx = s->npods;
	s->pods[s->npods++] = p;
	p->born = o->born;
	p->seed = 0xcbf29ce484222325ull; /* FNV-1a */
	for (const char *c = p->uid; *c; c++)
		p->seed = (p->seed ^ (uint8_t)*c) * 0x100000001b3ull;
	p->seed |= 1;
	p->first_seen_ms = util_now_ms();
	return p;
fail:
	cJSON_Delete(obj);
	spod_free(p);
	return NULL;
}

static void pod_drop(struct scheduler *s, struct spod *p)
{
	tdelete(p, &s->by_uid, cmp_uid);
	s->pods[p->idx] = s->pods[--s->npods];
	s->pods[p->idx]->idx = p->idx;
	spod_free(p);
}

/* ---------- nodes ---------- */

static struct snode *node_find(struct scheduler *s, const char *name)
{
	for (size_t i = 0; i < s->nnodes; i++)
		if (streq(s->nodes[i].name, name))
			return &s->nodes[i];
	return NULL;
}

static void node_bump(struct scheduler *s, const char *name)
{
	struct snode *n = name && *name ? node_find(s, name) : NULL;

	if (n)
		n->gen++;
}

/* ---------- the ledger: what this node holds ---------- */

static bool holds_here(const struct scheduler *s, const struct spod *p)
{
	return streq(p->node, s->self) && !p->terminal;
}

static void ledger_follow(struct scheduler *s, struct spod *p)
{
	if (!s->ledger)
		return;
	if (holds_here(s, p)) {
		int r = admission_record(s->ledger, p->uid, p->obj);
		if (r < 0)
			log_warn_errno(r, "pod %s/%s: cannot record in the node's ledger", p->ns,
				       p->name);
	} else if (admission_release(s->ledger, p->uid)) {
		node_bump(s, s->self);
	}
}

static int ledger_fill(struct scheduler *s)
{
	for (size_t i = 0; i < s->npods; i++)
		ledger_follow(s, s->pods[i]);
	return 0;
}

/* ---------- passes ---------- */

static void pass_schedule(struct scheduler *s)
{
	struct timeval tv = {0, PASS_DELAY_MS * 1000};

	if (!evtimer_pending(s->pass_ev, NULL))
		evtimer_add(s->pass_ev, &tv);
}

static int act_add(struct scheduler *s, enum action_kind kind, const struct spod *p,
		   const char *node, const char *msg)
{
	struct action *a;

	if (s->nacts == s->cap_acts) {
		size_t cap = s->cap_acts ? s->cap_acts * 2 : 32;
		struct action *na = realloc(s->acts, cap * sizeof(*na));
		if (!na)
			return -ENOMEM;
		s->acts = na;
		s->cap_acts = cap;
	}
	a = &s->acts[s->nacts];
	a->kind = kind;
	a->answer = false;
	a->nom_seq = 0;
	a->uid = strdup(p->uid);
	a->node = node ? strdup(node) : NULL;
	a->msg = msg ? strdup(msg) : NULL;
	if (!a->uid || (node && !a->node) || (msg && !a->msg)) {
		free(a->uid);
		free(a->node);
		free(a->msg);
		return -ENOMEM;
	}
	s->nacts++;
	return 0;
}

static int cmp_node_name(const void *a, const void *b)
{
	return strcmp(((const struct sched_node *)a)->name, ((const struct sched_node *)b)->name);
}

static struct sched_node *view_find(struct sched_node *v, size_t n, const char *name)
{
	struct sched_node key = {.name = name};

	return name && *name ? bsearch(&key, v, n, sizeof(*v), cmp_node_name) : NULL;
}

static bool is_live(struct scheduler *s, const char *node)
{
	return streq(node, s->self) || members_contains(s->members, node);
}

static bool excluded(const struct spod *p, const char *node)
{
	for (size_t i = 0; i < p->n_excluded; i++)
		if (streq(p->excluded[i].node, node))
			return true;
	return false;
}

/* Exclusions end when the node changes (a pod left it, its Node was updated). */
static void exclusions_expire(struct scheduler *s, struct spod *p)
{
	size_t k = 0;

	for (size_t i = 0; i < p->n_excluded; i++) {
		struct snode *n = node_find(s, p->excluded[i].node);
		if (n && n->gen == p->excluded[i].gen)
			p->excluded[k++] = p->excluded[i];
	}
	p->n_excluded = k;
}

static void exclude(struct scheduler *s, struct spod *p, const char *node)
{
	struct snode *n = node_find(s, node);

	if (p->n_excluded == MAX_EXCLUDED)
		memmove(p->excluded, p->excluded + 1, (MAX_EXCLUDED - 1) * sizeof(p->excluded[0]));
	else
		p->n_excluded++;
	snprintf(p->excluded[p->n_excluded - 1].node, sizeof(p->excluded[0].node), "%s", node);
	p->excluded[p->n_excluded - 1].gen = n ? n->gen : 0;
}

/* This node's admission refused the pod (reason mask r): say so on the pod, with an Event. */
static int reject(struct scheduler *s, struct spod *p, long r)
{
	char why[512], msg[700];
	const cJSON *taint = NULL;

	if (r & SCHED_R_TAINT) {
		struct sched_node sn;
		struct snode *self = node_find(s, s->self);
		if (self && sched_node_init(&sn, self->obj) == 0) {
			sched_filter(&p->sp, &sn, &taint);
			sched_node_release(&sn);
		}
	}
	sched_reason_text((unsigned)r, taint, why, sizeof(why));
	snprintf(msg, sizeof(msg), "node %s rejected the pod at admission: %s", s->self, why);
	s->rejections++;
	return act_add(s, ACT_REJECT, p, s->self, msg);
}

/*
 * The target's view for inter-pod rules, built once per pass when a nomination needs it: every
 * live node with the pods bound there, and on this node also the pods it admitted and has not
 * bound yet (not those merely nominated: the owners' views count those, the target decides).
 */
struct tview {
	bool built;
	struct sched_node *nodes;
	size_t n;
	size_t self;   /* index of this node, n if absent */
	bool any_anti; /* some pod of the cache has required anti-affinity */
};

static void tview_release(struct tview *t)
{
	for (size_t i = 0; i < t->n; i++)
		sched_node_release(&t->nodes[i]);
	free(t->nodes);
	t->nodes = NULL;
	t->n = 0;
	t->built = false;
}

static int tview_build(struct scheduler *s, struct tview *t)
{
	t->built = true;
	t->nodes = calloc(s->nnodes ? s->nnodes : 1, sizeof(*t->nodes));
	if (!t->nodes)
		return -ENOMEM;
	for (size_t i = 0; i < s->nnodes; i++) {
		if (!is_live(s, s->nodes[i].name))
			continue;
		if (sched_node_init(&t->nodes[t->n], s->nodes[i].obj) == 0)
			t->n++;
	}
	qsort(t->nodes, t->n, sizeof(*t->nodes), cmp_node_name);
	struct sched_node *me = view_find(t->nodes, t->n, s->self);
	t->self = me ? (size_t)(me - t->nodes) : t->n;
	for (size_t i = 0; i < s->npods; i++) {
		struct spod *p = s->pods[i];
		struct sched_node *sn = NULL;
		if (p->terminal)
			continue;
		if (*p->node)
			sn = view_find(t->nodes, t->n, p->node);
		else if (me && streq(p->nominated, s->self) && admission_has(s->ledger, p->uid))
			sn = me;
		if (sn && sched_node_commit(sn, &p->sp) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* The target's half: answer a nomination to this node from the ledger, and the required
 * inter-pod (anti-)affinity against what this node's replica holds and it admitted. */
/* This node's admission of a pod: required inter-pod (anti-)affinity, then the ledger.
 * 0 admitted, > 0 the rejection, < 0 an error (logged). Whether the pod was nominated here
 * or its owner is this node and places it here, the same check. */
static long target_admit(struct scheduler *s, struct spod *p, struct tview *t)
{
	long r = 0;

	if (p->sp.n_terms || t->any_anti) {
		if (!t->built && tview_build(s, t) < 0) {
			log_warn("pod %s/%s: admission failed: out of memory", p->ns, p->name);
			return -ENOMEM;
		}
		if (t->self < t->n)
			r = sched_interpod_filter(&p->sp, t->nodes, t->n, t->self);
	}
	if (r == 0)
		r = admission_admit(s->ledger, p->uid, p->obj);
	if (r < 0) {
		log_warn_errno((int)r, "pod %s/%s: admission failed", p->ns, p->name);
		return r;
	}
	/* the next admission of this pass sees it */
	if (r == 0 && t->built && t->self < t->n)
		sched_node_commit(&t->nodes[t->self], &p->sp);
	return r;
}

static bool answer_owed(const struct scheduler *s, const struct spod *p, uint64_t now)
{
	return s->ledger && !*p->node && !p->deleting && !p->terminal &&
	       streq(p->nominated, s->self) && sched_answer_due(&p->answer, p->nom_seq, now);
}

static void target_decide(struct scheduler *s, struct spod *p, struct tview *t, uint64_t now)
{
	long r;

	if (!answer_owed(s, p, now))
		return;
	if ((r = target_admit(s, p, t)) < 0)
		return;
	if ((r == 0 ? act_add(s, ACT_BIND, p, s->self, NULL) : reject(s, p, r)) < 0) {
		if (r == 0 && admission_release(s->ledger, p->uid))
			node_bump(s, s->self);
		return;
	}
	/* answered once the write runs; act_run clears the mark if the write fails */
	sched_answer_sent(&p->answer, p->nom_seq);
	s->acts[s->nacts - 1].answer = true;
	s->acts[s->nacts - 1].nom_seq = p->nom_seq;
}

/* Whether the pod already says it is unschedulable for this reason (no write, no Event). */
static bool unsched_written(const struct spod *p, const char *msg)
{
	const cJSON *c;

	if (*p->nominated)
		return false;
	cJSON_ArrayForEach(c, json_path(p->obj, "status.conditions"))
	{
		if (streq(json_str(c, "type", ""), "PodScheduled"))
			return streq(json_str(c, "reason", ""), "Unschedulable") &&
			       streq(json_str(c, "message", ""), msg);
	}
	return false;
}

/* The owner's half: choose a node for a pending pod, filtered against view and scored against
 * scored (pass_run). Returns the node of view it is counted on (committed), or NULL. */
static struct sched_node *owner_place(struct scheduler *s, struct spod *p, struct sched_node *view,
				      const struct sched_node *scored, size_t n, struct tview *t,
				      uint64_t now)
{
	const char *excl[MAX_EXCLUDED];
	struct sched_fit_error fe;
	struct sched_node *chosen = NULL;
	char msg[1024];
	int i;

	if (*p->nominated) {
		struct sched_node *nn = view_find(view, n, p->nominated);
		/* a live nominee answers; one that does not for too long is asked no more */
		if (nn && now - p->nominated_seen_ms < NOMINATION_TIMEOUT_MS)
			return nn;
		if (nn) {
			exclude(s, p, p->nominated);
			sched_node_uncommit(nn, &p->sp); /* placed again: counted where it goes */
		}
	} else if (p->proposed[0]) {
		/* our nomination was cleared without a binding: the nominee rejected it */
		exclude(s, p, p->proposed);
		p->proposed[0] = 0;
	}
	exclusions_expire(s, p);
	for (size_t k = 0; k < p->n_excluded; k++)
		excl[k] = p->excluded[k].node;
	if (s->test_propose_to && !excluded(p, s->test_propose_to))
		chosen = view_find(view, n, s->test_propose_to);
	if (s->test_bind_self && !excluded(p, s->self))
		chosen = view_find(view, n, s->self);
	if (!chosen) {
		i = sched_place_scored(&p->sp, view, scored, n, s->strategy, excl, p->n_excluded,
				       p->seed, &fe);
		if (i < 0) {
			/* the nodes that rejected it count under their own reason */
			size_t k = 0;
			for (size_t j = 0; j < p->n_excluded; j++)
				k += view_find(view, n, excl[j]) != NULL;
			if (k && fe.n < sizeof(fe.r) / sizeof(fe.r[0])) {
				fe.n_nodes += k;
				snprintf(fe.r[fe.n].reason, sizeof(fe.r[0].reason),
					 "node(s) rejected the pod at admission");
				fe.r[fe.n++].count = k;
			}
			s->unschedulable++;
			if (sched_fit_message(&fe, msg, sizeof(msg)) < 0)
				snprintf(msg, sizeof(msg), "0/%zu nodes are available.",
					 fe.n_nodes);
			if (!unsched_written(p, msg))
				act_add(s, ACT_UNSCHEDULABLE, p, NULL, msg);
			return NULL;
		}
		chosen = &view[i];
	}
	s->placements++;
	sched_node_commit(chosen, &p->sp); /* the next pod of this pass sees it */
	if (streq(chosen->name, s->self)) {
		p->proposed[0] = 0;
		/* our own node: the target's check at once, no round trip */
		long r = s->ledger ? target_admit(s, p, t) : -ENOENT;
		if (r == 0) {
			act_add(s, ACT_BIND, p, s->self, NULL);
		} else if (r > 0) {
			exclude(s, p, s->self);
			reject(s, p, r);
		}
		return chosen;
	}
	snprintf(p->proposed, sizeof(p->proposed), "%s", chosen->name);
	act_add(s, ACT_NOMINATE, p, chosen->name, NULL);
	return chosen;
}

/*
 * Another owner's pending pod, not yet nominated in this replica: place it as its owner will
 * (same view, same order, same tie-break) and count it on that node, so this owner's own pods
 * of the same burst go where one scheduler placing them all would put them, instead of every
 * owner favouring the same best node (docs/scheduling.md, "Owners herd").
 */
static struct sched_node *replay_place(struct scheduler *s, struct spod *p, struct sched_node *view,
				       const struct sched_node *scored, size_t n)
{
	struct sched_node *chosen = NULL;
	int i;

	if (*p->nominated)
		return view_find(view, n, p->nominated); /* counted on its nominee already */
	if (s->test_propose_to)
		chosen = view_find(view, n, s->test_propose_to);
	if (!chosen) {
		i = sched_place_scored(&p->sp, view, scored, n, s->strategy, NULL, 0, p->seed,
				       NULL);
		if (i < 0)
			return NULL;
		chosen = &view[i];
	}
	sched_node_commit(chosen, &p->sp);
	return chosen;
}

static int cmp_born(const void *a, const void *b)
{
	const struct spod *x = *(struct spod *const *)a, *y = *(struct spod *const *)b;

	if (x->born != y->born)
		return x->born < y->born ? -1 : 1;
	return strcmp(x->uid, y->uid);
}

/* Status of a pending pod: the stored one with the PodScheduled condition and the nomination
 * replaced. */
static int write_pending_status(struct scheduler *s, const struct spod *p, const char *nominated,
				const char *reason, const char *msg)
{
	_cleanup_json_ cJSON *obj = cJSON_CreateObject();
	struct err e = {0};
	cJSON *st, *conds, *c, *it;
	char ts[40];
	int r, idx = 0;

	if (!obj)
		return -ENOMEM;
	st = cJSON_Duplicate(json_path(p->obj, "status"), true);
	if (!cJSON_IsObject(st)) {
		cJSON_Delete(st);
		st = cJSON_CreateObject();
	}
	if (!st)
		return -ENOMEM;
	cJSON_AddStringToObject(obj, "apiVersion", "v1");
	cJSON_AddStringToObject(obj, "kind", "Pod");
	cJSON *md = cJSON_AddObjectToObject(obj, "metadata");
	cJSON_AddStringToObject(md, "name", p->name);
	cJSON_AddStringToObject(md, "namespace", p->ns);
	cJSON_AddItemToObject(obj, "status", st);
	if (!json_str(st, "phase", NULL))
		json_set_str(st, "phase", "Pending");
	cJSON_DeleteItemFromObjectCaseSensitive(st, "nominatedNodeName");
	if (nominated)
		cJSON_AddStringToObject(st, "nominatedNodeName", nominated);
	if (reason) {
		conds = json_path(st, "conditions");
		if (!cJSON_IsArray(conds)) {
			cJSON_DeleteItemFromObjectCaseSensitive(st, "conditions");
			conds = cJSON_AddArrayToObject(st, "conditions");
		}
		cJSON_ArrayForEach(it, conds)
		{
			if (streq(json_str(it, "type", ""), "PodScheduled")) {
				cJSON_DeleteItemFromArray(conds, idx);
				break;
			}
			idx++;
		}
		util_rfc3339((int64_t)(util_now_ms() / 1000), ts, sizeof(ts));
		c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "type", "PodScheduled");
		cJSON_AddStringToObject(c, "status", "False");
		cJSON_AddNullToObject(c, "lastProbeTime");
		cJSON_AddStringToObject(c, "lastTransitionTime", ts);
		cJSON_AddStringToObject(c, "reason", reason);
		cJSON_AddStringToObject(c, "message", msg);
		cJSON_AddItemToArray(conds, c);
	}
	r = api_obj_update_status(s->store, obj, NULL, &e);
	if (r < 0 && r != -ENOENT)
		log_warn_errno(r, "pod %s/%s: cannot write scheduling status: %s", p->ns, p->name,
			       e.message);
	return r;
}

/* The write carrying the target's answer failed: the nomination is owed an answer again, on
 * a pass after SCHED_ANSWER_RETRY_MS (the tick schedules one), from the pod's version then. */
static void answer_failed(struct scheduler *s, const struct action *a)
{
	struct spod *p = pod_lookup(s, a->uid);

	if (p && a->answer)
		sched_answer_failed(&p->answer, a->nom_seq, util_now_ms());
}

static void act_run(struct scheduler *s, const struct action *a)
{
	struct spod *p = pod_lookup(s, a->uid);
	struct err e = {0};
	bool confirm;
	int r;

	if (!p)
		return;
	switch (a->kind) {
	case ACT_BIND:
		if (*p->node || p->deleting) {
			ledger_follow(s, p);
			return;
		}
		/* held from before the write: the pod manager sees the binding during it */
		confirm = s->confirm && bind_confirm_begin(s->confirm, p->uid) == 0;
		r = api_obj_bind(s->store, p->ns, p->name, p->uid, s->self, NULL, &e);
		if (r < 0) {
			if (r != -ENOENT)
				log_info("pod %s/%s: not bound to %s: %s", p->ns, p->name, s->self,
					 e.message);
			/* the ledger follows what the pod says now: bound elsewhere meanwhile,
			 * deleted, still pending (the admission is taken again on the retry), or
			 * bound here after all (the status half of the binding failed) */
			p = pod_lookup(s, a->uid);
			if (p)
				ledger_follow(s, p);
			/* bound here after all: confirmed like any binding of ours */
			if (confirm && p && streq(p->node, s->self))
				bind_confirm_ask(s->confirm, p->ns, p->name, p->uid);
			else if (confirm)
				bind_confirm_cancel(s->confirm, a->uid);
			answer_failed(s, a);
			/* an owner placing on itself answers no nomination: nothing else would
			 * place the pod again until the next pod or Node event, so the tick
			 * schedules a pass after the same delay as an answer's retry */
			if (!a->answer && p && !*p->node && !p->deleting && !s->bind_retry_ms)
				s->bind_retry_ms = util_now_ms() + SCHED_ANSWER_RETRY_MS;
			return;
		}
		s->binds++;
		p = pod_lookup(s, a->uid);
		if (confirm) {
			if (p)
				bind_confirm_ask(s->confirm, p->ns, p->name, p->uid);
			else
				bind_confirm_cancel(s->confirm, a->uid);
		}
		if (p)
			events_record(s->events, p->obj, NULL, "Normal", "Scheduled",
				      "Successfully assigned %s/%s to %s", p->ns, p->name, s->self);
		return;
	case ACT_NOMINATE:
		s->nominations++;
		write_pending_status(s, p, a->node, NULL, NULL);
		return;
	case ACT_REJECT:
		if (write_pending_status(s, p, NULL, "Unschedulable", a->msg) < 0) {
			answer_failed(s, a);
			return;
		}
		p = pod_lookup(s, a->uid);
		if (p)
			events_record(s->events, p->obj, NULL, "Warning", "FailedScheduling", "%s",
				      a->msg);
		return;
	case ACT_UNSCHEDULABLE:
		if (write_pending_status(s, p, NULL, "Unschedulable", a->msg) < 0)
			return;
		p = pod_lookup(s, a->uid);
		if (!p)
			return;
		events_record(s->events, p->obj, NULL, "Warning", "FailedScheduling", "%s", a->msg);
		log_info("pod %s/%s: %s", p->ns, p->name, a->msg);
		return;
	}
}

static void test_bind_arm(struct scheduler *s, uint64_t due, uint64_t now)
{
	struct timeval tv;

	if (s->test_bind_due && s->test_bind_due <= due && evtimer_pending(s->test_ev, NULL))
		return;
	s->test_bind_due = due;
	tv.tv_sec = (time_t)((due - now) / 1000);
	tv.tv_usec = (suseconds_t)((due - now) % 1000) * 1000;
	evtimer_add(s->test_ev, &tv);
}

static void pass_run(struct scheduler *s)
{
	_cleanup_free_ struct sched_node *view = calloc(s->nnodes ? s->nnodes : 1, sizeof(*view));
	_cleanup_free_ struct sched_node *scored = calloc(s->nnodes ? s->nnodes : 1, sizeof(*view));
	_cleanup_free_ struct spod **all = calloc(s->npods ? s->npods : 1, sizeof(*all));
	uint64_t now = util_now_ms();
	size_t n = 0, n_all = 0, n_scored = 0, old = 0;

	if (!view || !scored || !all)
		return;
	for (size_t i = 0; i < s->nnodes; i++) {
		if (!is_live(s, s->nodes[i].name))
			continue;
		if (sched_node_init(&view[n], s->nodes[i].obj) == 0)
			n++;
	}
	qsort(view, n, sizeof(*view), cmp_node_name);
	/* what each node holds: pods bound there, and those nominated to it */
	for (size_t i = 0; i < s->npods; i++) {
		struct spod *p = s->pods[i];
		struct sched_node *sn;
		if (p->terminal)
			continue;
		sn = view_find(view, n, *p->node ? p->node : p->nominated);
		if (sn)
			sched_node_commit(sn, &p->sp);
	}
	/* target first: answers free or fill this node before owners place more */
	struct tview tv = {0};
	for (size_t i = 0; i < s->npods && !tv.any_anti; i++)
		tv.any_anti = s->pods[i]->sp.req_anti && !s->pods[i]->terminal;
	for (size_t i = 0; i < s->npods; i++) {
		struct spod *p = s->pods[i];
		target_decide(s, p, &tv, now);
	}
	/*
	 * Owners: every pod in the order of creation; a pending one is placed if ours, else
	 * replayed. The filters see view (everything placed, as it is now); the scores see scored,
	 * which holds only the pods created before the one placed, each where it is or was
	 * replayed to, counted as starting for STARTING_WINDOW_MS of creation time: inputs every
	 * owner has alike once it holds that prefix, whatever later pods it has already seen
	 * placed and whenever their containers started (docs/scheduling.md, "Owners herd").
	 */
	for (size_t i = 0; i < n && n_scored == i; i++)
		n_scored += sched_node_init(&scored[i], view[i].obj) == 0;
	for (size_t i = 0; i < s->npods; i++)
		if (!s->pods[i]->terminal)
			all[n_all++] = s->pods[i];
	qsort(all, n_all, sizeof(*all), cmp_born);
	for (size_t i = 0; i < n_all; i++) {
		struct spod *p = all[i];
		struct sched_node *at;
		for (; HLC_PHYS(all[old]->born) + STARTING_WINDOW_MS < HLC_PHYS(p->born); old++)
			if (all[old]->scored && all[old]->scored->starting)
				all[old]->scored->starting--;
		if (!*p->node && !p->deleting &&
		    streq(json_str(p->obj, "spec.schedulerName", "default-scheduler"),
			  "default-scheduler")) {
			/* test_bind_self: every node binds at the same wall-clock instant, derived
			 * from the pod's create version (the same everywhere), so none has seen
			 * another's binding yet: a sure race, not a coin toss against the push */
			uint64_t due =
			    (HLC_PHYS(p->born) / TEST_BIND_ALIGN_MS + 2) * TEST_BIND_ALIGN_MS;
			if (s->test_bind_self && now < due) {
				test_bind_arm(s, due, now);
				at = NULL;
			} else if (s->test_bind_self || members_owns(s->members, p->key)) {
				at = owner_place(s, p, view, n_scored == n ? scored : NULL, n, &tv,
						 now);
			} else {
				p->proposed[0] = 0;
				at = replay_place(s, p, view, n_scored == n ? scored : NULL, n);
			}
		} else {
			at = view_find(view, n, *p->node ? p->node : p->nominated);
		}
		p->scored = at && n_scored == n ? &scored[at - view] : NULL;
		if (p->scored && sched_node_commit(p->scored, &p->sp) < 0)
			p->scored = NULL;
	}
	tview_release(&tv);
	for (size_t i = 0; i < n_scored; i++)
		sched_node_release(&scored[i]);
	for (size_t i = 0; i < n; i++)
		sched_node_release(&view[i]);
	/* the writes: each runs the watch callbacks, which update the cache */
	for (size_t i = 0; i < s->nacts; i++) {
		act_run(s, &s->acts[i]);
		free(s->acts[i].uid);
		free(s->acts[i].node);
		free(s->acts[i].msg);
	}
	s->nacts = 0;
}

static void on_pass(evutil_socket_t fd, short what, void *arg)
{
	pass_run(arg);
}

static void on_test_bind(evutil_socket_t fd, short what, void *arg)
{
	struct scheduler *s = arg;

	s->test_bind_due = 0;
	pass_run(s);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct scheduler *s = arg;
	uint64_t epoch = members_epoch(s->members), now = util_now_ms();
	bool stale = false;

	for (size_t i = 0; i < s->npods && !stale; i++) {
		struct spod *p = s->pods[i];
		/* a nomination to this node whose answer is owed again (its write failed) */
		stale =
		    answer_owed(s, p, now) || (!*p->node && *p->nominated && !p->deleting &&
					       now - p->nominated_seen_ms >= NOMINATION_TIMEOUT_MS);
	}
	if (s->bind_retry_ms && now >= s->bind_retry_ms) {
		s->bind_retry_ms = 0;
		stale = true;
	}
	if (epoch != s->epoch || stale) {
		s->epoch = epoch;
		pass_schedule(s);
	}
}

/* ---------- watches ---------- */

static void latency_note(struct scheduler *s, struct spod *p)
{
	uint64_t ms = util_now_ms() - p->first_seen_ms;

	histo_observe(&s->lat, ms);
}

static void on_pod_event(const struct store_event *ev, void *ud)
{
	struct scheduler *s = ud;
	struct spod *p = pod_lookup(s, ev->obj->uid ? ev->obj->uid : "");
	cJSON *obj;

	if (ev->type == STORE_DELETED) {
		if (p) {
			if (s->ledger && admission_release(s->ledger, p->uid))
				node_bump(s, s->self);
			node_bump(s, *p->node ? p->node : p->nominated);
			pod_drop(s, p);
		}
		pass_schedule(s);
		return;
	}
	obj = store_obj_parse(ev->obj);
	if (!obj)
		return;
	if (!p) {
		p = pod_insert(s, ev->obj, obj);
		if (!p)
			return;
		if (*p->node)
			p->first_seen_ms = 0;
	} else {
		bool was_bound = *p->node, was_terminal = p->terminal;
		if (spod_set(p, obj) < 0)
			return;
		if (!was_bound && *p->node && p->first_seen_ms && members_owns(s->members, p->key))
			latency_note(s, p);
		if (p->terminal && !was_terminal)
			node_bump(s, p->node);
	}
	ledger_follow(s, p);
	pass_schedule(s);
}

static int node_set(struct scheduler *s, const struct store_obj *o, cJSON *obj)
{
	struct snode *n = node_find(s, o->name);

	if (!n) {
		struct snode *nn = realloc(s->nodes, (s->nnodes + 1) * sizeof(*nn));
		if (!nn) {
			cJSON_Delete(obj);
			return -ENOMEM;
		}
		s->nodes = nn;
		n = &s->nodes[s->nnodes];
		memset(n, 0, sizeof(*n));
		n->name = strdup(o->name);
		if (!n->name) {
			cJSON_Delete(obj);
			return -ENOMEM;
		}
		s->nnodes++;
	}
	cJSON_Delete(n->obj);
	n->obj = obj;
	n->gen++;
	if (streq(o->name, s->self)) {
		if (s->ledger)
			return admission_set_node(s->ledger, obj);
		int r = admission_new(obj, &s->ledger);
		if (r < 0)
			return r;
		ledger_fill(s);
	}
	return 0;
}

static void node_del(struct scheduler *s, const char *name)
{
	struct snode *n = node_find(s, name);

	if (!n)
		return;
	if (streq(name, s->self))
		s->ledger = admission_free(s->ledger);
	free(n->name);
	cJSON_Delete(n->obj);
	*n = s->nodes[--s->nnodes];
}

static void on_node_event(const struct store_event *ev, void *ud)
{
	struct scheduler *s = ud;

	if (ev->type == STORE_DELETED)
		node_del(s, ev->obj->name);
	else {
		cJSON *obj = store_obj_parse(ev->obj);
		if (obj)
			node_set(s, ev->obj, obj);
	}
	pass_schedule(s);
}

static int list_pod(struct store_obj *o, void *ud)
{
	cJSON *obj = store_obj_parse(o);

	if (obj)
		pod_insert(ud, o, obj);
	return 0;
}

static int list_node(struct store_obj *o, void *ud)
{
	cJSON *obj = store_obj_parse(o);

	if (obj)
		node_set(ud, o, obj);
	return 0;
}

/* ---------- life ---------- */

int scheduler_new(struct event_base *base, struct store *store, struct members *members,
		  const struct scheduler_opts *o, struct scheduler **ret)
{
	struct scheduler *s = calloc(1, sizeof(*s));
	struct timeval tick = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
	uint64_t rv;
	int r;

	if (!s)
		return -ENOMEM;
	s->lat = HISTO_INIT(lat_bounds_ms, 3);
	s->base = base;
	s->store = store;
	s->members = members;
	s->strategy = o->strategy;
	s->self = strdup(o->node_name);
	s->test_propose_to =
	    o->test_propose_to && *o->test_propose_to ? strdup(o->test_propose_to) : NULL;
	s->test_bind_self = o->test_bind_self;
	s->confirm = o->confirm;
	s->pass_ev = evtimer_new(base, on_pass, s);
	s->test_ev = evtimer_new(base, on_test_bind, s);
	s->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, s);
	if (!s->self || !s->pass_ev || !s->tick_ev || !s->test_ev ||
	    (o->test_propose_to && *o->test_propose_to && !s->test_propose_to)) {
		r = -ENOMEM;
		goto fail;
	}
	r = events_new(store, "default-scheduler", o->node_name, &s->events);
	if (r < 0)
		goto fail;
	/* pods first, so the ledger fills when this node's Node arrives */
	rv = store_rv(store);
	store_list(store, "pods", NULL, NULL, NULL, list_pod, s);
	store_list(store, "nodes", NULL, NULL, NULL, list_node, s);
	r = store_watch_add(store, "pods", rv, on_pod_event, s, &s->pod_watch);
	if (r < 0)
		goto fail;
	r = store_watch_add(store, "nodes", rv, on_node_event, s, &s->node_watch);
	if (r < 0)
		goto fail;
	if (event_add(s->tick_ev, &tick) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	s->epoch = members_epoch(members);
	pass_schedule(s);
	*ret = s;
	return 0;
fail:
	scheduler_free(s);
	return r;
}

static void free_nothing(void *p)
{
	(void)p;
}

struct scheduler *scheduler_free(struct scheduler *s)
{
	if (!s)
		return NULL;
	if (s->pod_watch)
		store_watch_cancel(s->pod_watch);
	if (s->node_watch)
		store_watch_cancel(s->node_watch);
	if (s->pass_ev)
		event_free(s->pass_ev);
	if (s->test_ev)
		event_free(s->test_ev);
	if (s->tick_ev)
		event_free(s->tick_ev);
	tdestroy(s->by_uid, free_nothing);
	for (size_t i = 0; i < s->npods; i++)
		spod_free(s->pods[i]);
	free(s->pods);
	for (size_t i = 0; i < s->nnodes; i++) {
		free(s->nodes[i].name);
		cJSON_Delete(s->nodes[i].obj);
	}
	free(s->nodes);
	free(s->acts);
	admission_free(s->ledger);
	events_free(s->events);
	free(s->self);
	free(s->test_propose_to);
	free(s);
	return NULL;
}

bool scheduler_admitted(void *userdata, const char *uid)
{
	struct scheduler *s = userdata;

	return s && s->ledger && admission_checked(s->ledger, uid);
}

int scheduler_metrics(void *userdata, char **text)
{
	struct scheduler *s = userdata;
	_cleanup_free_ char *lat = NULL;

	if (histo_format(&s->lat, "shoal_sched_placement_seconds",
			 "From a pending pod seen by its owner to its binding.", &lat) < 0)
		return -ENOMEM;
	if (asprintf(
		text,
		"# HELP shoal_sched_placements_total Pods this node placed as their owner.\n"
		"# TYPE shoal_sched_placements_total counter\n"
		"shoal_sched_placements_total %llu\n"
		"# HELP shoal_sched_nominations_total Proposals sent to other nodes.\n"
		"# TYPE shoal_sched_nominations_total counter\n"
		"shoal_sched_nominations_total %llu\n"
		"# HELP shoal_sched_binds_total Pods this node admitted and bound to itself.\n"
		"# TYPE shoal_sched_binds_total counter\n"
		"shoal_sched_binds_total %llu\n"
		"# HELP shoal_sched_rejections_total Proposals this node's admission refused.\n"
		"# TYPE shoal_sched_rejections_total counter\n"
		"shoal_sched_rejections_total %llu\n"
		"# HELP shoal_sched_unschedulable_total Placement attempts that fit nowhere.\n"
		"# TYPE shoal_sched_unschedulable_total counter\n"
		"shoal_sched_unschedulable_total %llu\n"
		"%s",
		(unsigned long long)s->placements, (unsigned long long)s->nominations,
		(unsigned long long)s->binds, (unsigned long long)s->rejections,
		(unsigned long long)s->unschedulable, lat) < 0)
		return -ENOMEM;
	return 0;
}
