// SPDX-License-Identifier: Apache-2.0
/* Controller manager: work queue, store watch dispatch, shared helpers for controllers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/object.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/ctrl-internal.h"
#include "sched/hlc.h"

struct ctrl_item {
	char *resource, *ns, *name;
	uint64_t due; /* wall ms */
};

/* A key whose last reconcile failed, and how many times in a row. */
struct ctrl_failing {
	char *resource, *ns, *name;
	unsigned int failures;
};

/* A membership change still within the settle window: the live set before it (NULL: a start
 * into an existing cluster, every key's previous owner unknown). */
struct ctrl_change {
	struct members *prev;
	uint64_t at_ms;
};
#define CTRL_CHANGES 8

struct ctrl_mgr;
static void claims_clear(struct ctrl_mgr *m);
static void claim_drop(struct ctrl_mgr *m, const char *resource, const char *ns,
		       const char *name);

/* This node's ownership term for a key's status register, valid in the view it was taken in. */
struct ctrl_claim {
	char *key; /* "<resource>/<ns>/<name>" */
	uint64_t term;
	uint64_t stale_since; /* a higher term than ours seen since (ms; 0: none) */
};

struct ctrl_mgr {
	struct ctrl_options o;
	struct members *snap; /* the live set as of the last change */
	struct ctrl_change changes[CTRL_CHANGES];
	size_t nchanges;
	struct store_watch *watch;
	struct ctrl_sel_cache *sel_cache;
	struct ctrl_item *q;
	size_t nq, capq;
	struct ctrl_failing *failing;
	size_t nfailing, capfailing;
	struct ctrl_stats stats;
	/* status claims, sorted by key, for the view (members epoch, own incarnation) below */
	struct ctrl_claim *claims;
	size_t nclaims, capclaims;
	uint64_t claims_epoch;
	uint32_t claims_inc;
	uint64_t view_since; /* when this node's current view began (ms) */
	bool lost; /* a key could not be queued (no memory): resync everything at the next run */
	bool running;
};

static const struct ctrl_ops *const ctrl_all[] = {
	&ctrl_replicaset_ops,
	&ctrl_deployment_ops,
	&ctrl_job_ops,
	&ctrl_endpoints_ops,
	&ctrl_daemonset_ops,
	&ctrl_pdb_ops,
};

#define GC_OWNER "gc-owner"   /* ns/name of an owner being deleted with finalizers */
#define GC_DEPS "gc-dangling" /* name = a deleted owner's uid; dependents in ns */


struct ctrl_sel_cache **ctrl_sel_cache(struct ctrl_mgr *m)
{
	return &m->sel_cache;
}

struct store *ctrl_store(struct ctrl_mgr *m)
{
	return m->o.store;
}

uint64_t ctrl_now_ms(struct ctrl_mgr *m)
{
	return m->o.clock ? m->o.clock(m->o.clock_data) : util_now_ms();
}

/* The node's state in the gossip view; MEMBERS_ALIVE when there is no view or it lacks the node. */
static enum members_state node_state(struct ctrl_mgr *m, const char *node)
{
	const struct members_info *i;

	if (!m->o.members || !node || !*node)
		return MEMBERS_ALIVE;
	i = members_view_find(m->o.members, node);
	return i ? i->state : MEMBERS_ALIVE;
}

bool ctrl_node_down(struct ctrl_mgr *m, const char *node)
{
	enum members_state st = node_state(m, node);

	return st == MEMBERS_DEAD || st == MEMBERS_LEFT;
}

bool ctrl_node_unreachable(struct ctrl_mgr *m, const char *node)
{
	return node_state(m, node) != MEMBERS_ALIVE;
}

bool ctrl_status_writer_down(struct ctrl_mgr *m, const char *resource, const char *ns,
			     const char *name)
{
	struct store_obj *o = NULL;
	bool down;

	if (!m->o.members || store_get(m->o.store, resource, ns, name, &o) < 0)
		return false;
	down = o->status_hlc && o->status_node && ctrl_node_down(m, o->status_node);
	store_obj_unref(o);
	return down;
}

static const struct ctrl_ops *ctrl_ops_by_resource(const char *resource)
{
	for (size_t i = 0; i < ARRAY_SIZE(ctrl_all); i++)
		if (streq(ctrl_all[i]->resource, resource))
			return ctrl_all[i];
	return NULL;
}

static const struct ctrl_ops *ctrl_ops_by_kind(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(ctrl_all); i++)
		if (streq(ctrl_all[i]->kind, kind))
			return ctrl_all[i];
	return NULL;
}

static bool item_is(const char *res, const char *ns, const char *name, const char *res2,
		    const char *ns2, const char *name2)
{
	return streq(res, res2) && streq(ns, ns2) && streq(name, name2);
}

void ctrl_enqueue(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name,
		  uint64_t delay_ms)
{
	uint64_t due = ctrl_now_ms(m) + delay_ms;

	for (size_t i = 0; i < m->nq; i++) {
		struct ctrl_item *it = &m->q[i];
		if (item_is(it->resource, it->ns, it->name, resource, ns, name)) {
			if (due < it->due)
				it->due = due;
			goto kick;
		}
	}
	if (m->nq == m->capq) {
		size_t cap = m->capq ? m->capq * 2 : 32;
		struct ctrl_item *q = realloc(m->q, cap * sizeof(*q));
		if (!q)
			goto lost;
		m->q = q;
		m->capq = cap;
	}
	struct ctrl_item it = { strdup(resource), strdup(ns), strdup(name), due };
	if (!it.resource || !it.ns || !it.name) {
		free(it.resource);
		free(it.ns);
		free(it.name);
		goto lost;
	}
	m->q[m->nq++] = it;
	goto kick;
lost:
	/* the key is not dropped for good: the next run requeues every object (a resync), and
	 * ctrl_mgr_run() asks to be called again soon while this is pending */
	m->lost = true;
kick:
	if (m->o.kick && !m->running)
		m->o.kick(m->o.kick_data);
}

size_t ctrl_mgr_pending(struct ctrl_mgr *m)
{
	return m->nq;
}

void ctrl_mgr_stats_get(struct ctrl_mgr *m, struct ctrl_stats *ret)
{
	*ret = m->stats;
	ret->failing = m->nfailing;
}

uint64_t ctrl_backoff_ms(unsigned int failures)
{
	uint64_t d = CTRL_BACKOFF_BASE_MS;

	/* 5 ms doubling per failure in a row, as client-go's default workqueue rate limiter */
	for (unsigned int i = 1; i < failures && d < CTRL_BACKOFF_MAX_MS; i++)
		d *= 2;
	return d < CTRL_BACKOFF_MAX_MS ? d : CTRL_BACKOFF_MAX_MS;
}

static struct ctrl_failing *failing_find(struct ctrl_mgr *m, const struct ctrl_item *it)
{
	for (size_t i = 0; i < m->nfailing; i++) {
		struct ctrl_failing *f = &m->failing[i];
		if (item_is(f->resource, f->ns, f->name, it->resource, it->ns, it->name))
			return f;
	}
	return NULL;
}

static void failing_free(struct ctrl_failing *f)
{
	free(f->resource);
	free(f->ns);
	free(f->name);
}

/* A reconcile succeeded: the key's next failure starts the back-off from the bottom again. */
static void ctrl_forget(struct ctrl_mgr *m, const struct ctrl_item *it)
{
	struct ctrl_failing *f = failing_find(m, it);

	if (!f)
		return;
	failing_free(f);
	*f = m->failing[--m->nfailing];
}

/* A reconcile failed: queue the key again after its back-off. Takes the item's strings. */
static void ctrl_requeue(struct ctrl_mgr *m, struct ctrl_item *it)
{
	struct ctrl_failing *f = failing_find(m, it);
	unsigned int failures = f ? f->failures + 1 : 1;

	m->stats.retries++;
	ctrl_enqueue(m, it->resource, it->ns, it->name, ctrl_backoff_ms(failures));
	if (f) {
		f->failures = failures;
		return;
	}
	if (m->nfailing == m->capfailing) {
		size_t cap = m->capfailing ? m->capfailing * 2 : 16;
		struct ctrl_failing *n = reallocarray(m->failing, cap, sizeof(*n));
		if (!n)
			return; /* retried anyway, only from the bottom of the back-off */
		m->failing = n;
		m->capfailing = cap;
	}
	m->failing[m->nfailing++] = (struct ctrl_failing){ TAKE_PTR(it->resource),
							   TAKE_PTR(it->ns), TAKE_PTR(it->name),
							   failures };
}

static bool ctrl_owns(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name)
{
	char key[512];

	if (!m->o.members)
		return true;
	snprintf(key, sizeof(key), "%s/%s/%s", resource, ns, name);
	return members_owns(m->o.members, key);
}

bool ctrl_owns_key(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name)
{
	return ctrl_owns(m, resource, ns, name);
}

uint64_t ctrl_tombstone_horizon_ms(struct ctrl_mgr *m)
{
	return m->o.tombstone_horizon_ms ? m->o.tombstone_horizon_ms : 3600ULL * 1000;
}

static uint64_t ctrl_settle_ms(struct ctrl_mgr *m)
{
	return m->o.settle_ms ? m->o.settle_ms : CTRL_SETTLE_MS;
}

/* A copy of the live set, for computing who owned a key before a change. */
static struct members *members_snapshot(const struct members *live)
{
	struct members *s = NULL;

	if (members_new(members_self(live), &s) < 0)
		return NULL;
	for (size_t i = 0; i < members_count(live); i++)
		if (members_add(s, members_get(live, i)) < 0)
			return members_free(s);
	return s;
}

/* Forget changes whose settle window is over. */
static void ctrl_changes_expire(struct ctrl_mgr *m, uint64_t now)
{
	size_t j = 0;

	for (size_t i = 0; i < m->nchanges; i++) {
		if (now >= m->changes[i].at_ms + ctrl_settle_ms(m))
			members_free(m->changes[i].prev);
		else
			m->changes[j++] = m->changes[i];
	}
	m->nchanges = j;
}

static void ctrl_change_add(struct ctrl_mgr *m, struct members *prev, uint64_t now)
{
	if (m->nchanges == CTRL_CHANGES) {
		/* the oldest change goes early: its keys wait no longer than the others */
		members_free(m->changes[0].prev);
		memmove(&m->changes[0], &m->changes[1], sizeof(m->changes[0]) * (CTRL_CHANGES - 1));
		m->nchanges--;
	}
	m->changes[m->nchanges++] = (struct ctrl_change){ prev, now };
}

void ctrl_mgr_members_changed(struct ctrl_mgr *m)
{
	uint64_t now = ctrl_now_ms(m);
	struct members *cur;

	if (!m->o.members)
		return;
	m->view_since = now;
	ctrl_changes_expire(m, now);
	cur = members_snapshot(m->o.members);
	if (m->snap)
		ctrl_change_add(m, m->snap, now);
	m->snap = cur;
}

void ctrl_mgr_set_caught_up(struct ctrl_mgr *m,
			    bool (*caught_up)(void *userdata, const char *node, uint64_t since_ms),
			    void *userdata)
{
	m->o.caught_up = caught_up;
	m->o.caught_up_data = userdata;
}

void ctrl_mgr_set_event(struct ctrl_mgr *m,
			void (*event)(void *userdata, const char *component, const cJSON *obj,
				      const char *type, const char *reason, const char *message),
			void *userdata)
{
	m->o.event = event;
	m->o.event_data = userdata;
}

void ctrl_event(struct ctrl_mgr *m, const char *component, const cJSON *obj, const char *type,
		const char *reason, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!m->o.event)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	m->o.event(m->o.event_data, component, obj, type, reason, msg);
}

void ctrl_mgr_hold_until_synced(struct ctrl_mgr *m)
{
	ctrl_change_add(m, NULL, ctrl_now_ms(m));
}

/* Has this node completed a round with any other live member since `since`? */
static bool ctrl_synced_with_any(struct ctrl_mgr *m, uint64_t since)
{
	const char *self = members_self(m->o.members);

	for (size_t i = 0; i < members_count(m->o.members); i++) {
		const char *n = members_get(m->o.members, i);
		if (!streq(n, self) && m->o.caught_up(m->o.caught_up_data, n, since))
			return true;
	}
	return false;
}

void ctrl_mgr_set_tombstone_horizon(struct ctrl_mgr *m, uint64_t ms)
{
	m->o.tombstone_horizon_ms = ms;
}

/*
 * Must a key that this node owns wait for a handover? Yes while, for a recent membership change,
 * the key was owned by another node before it and this node has not completed an anti-entropy
 * round with that node since (its last writes may not be here yet: acting now could duplicate
 * pods or undo its work). The settle window bounds the wait.
 */
static bool ctrl_handover_wait(struct ctrl_mgr *m, const char *resource, const char *ns,
			       const char *name)
{
	const char *self;
	uint64_t now;
	char key[512];

	if (!m->o.caught_up || !m->o.members || !m->nchanges)
		return false;
	now = ctrl_now_ms(m);
	ctrl_changes_expire(m, now);
	self = members_self(m->o.members);
	snprintf(key, sizeof(key), "%s/%s/%s", resource, ns, name);
	for (size_t i = 0; i < m->nchanges; i++) {
		if (!m->changes[i].prev) {
			if (!ctrl_synced_with_any(m, m->changes[i].at_ms))
				return true;
			continue;
		}
		const char *prev = members_owner(m->changes[i].prev, key);
		if (!prev || streq(prev, self))
			continue;
		if (!m->o.caught_up(m->o.caught_up_data, prev, m->changes[i].at_ms))
			return true;
	}
	return false;
}

static void ctrl_on_event(const struct store_event *ev, void *userdata)
{
	struct ctrl_mgr *m = userdata;
	struct store_obj *o = ev->obj;
	const struct ctrl_ops *ops = ctrl_ops_by_resource(o->resource);
	_cleanup_json_ cJSON *obj = NULL;
	cJSON *ref;

	if (ops)
		ctrl_enqueue(m, o->resource, o->ns, o->name, 0);
	if (ev->type == STORE_DELETED)
		ctrl_gc_on_delete(m, o);
	if (streq(o->resource, "pods")) {
		ctrl_endpoints_on_pod(m, ev);
		ctrl_pdb_on_pod(m, ev);
	} else if (streq(o->resource, "nodes"))
		ctrl_daemonset_on_node(m, ev);
	else if (ev->type == STORE_DELETED && streq(o->resource, "services"))
		ctrl_sel_cache_forget(m->sel_cache, o->ns, o->name);
	/* cheap text checks before parsing: most events need neither */
	bool has_refs = strstr(o->json, "\"ownerReferences\"") != NULL;
	bool deleting = strstr(o->json, "\"deletionTimestamp\"") != NULL;
	if (!has_refs && !deleting)
		return;
	obj = store_obj_parse(o);
	if (!obj)
		return;
	/* a dependent going away may be what an owner in foreground deletion waits for */
	if (ev->type == STORE_DELETED || json_path(obj, "metadata.deletionTimestamp")) {
		cJSON *r;
		cJSON_ArrayForEach(r, json_path(obj, "metadata.ownerReferences"))
		{
			const char *res = ctrl_resource_of_kind(json_str(r, "apiVersion", ""),
								json_str(r, "kind", ""));
			char key[160];
			if (!res)
				continue;
			snprintf(key, sizeof(key), GC_OWNER ":%s", res);
			ctrl_enqueue(m, key, o->ns, json_str(r, "name", ""), 0);
		}
	}
	if (ev->type == STORE_ADDED && has_refs)
		ctrl_gc_on_dependent(m, o->ns, obj);
	ref = ctrl_controller_ref(obj);
	if (ref) {
		const struct ctrl_ops *owner = ctrl_ops_by_kind(json_str(ref, "kind", ""));
		if (owner)
			ctrl_enqueue(m, owner->resource, o->ns, json_str(ref, "name", ""), 0);
	}
	if (ev->type != STORE_DELETED && deleting && json_path(obj, "metadata.deletionTimestamp")) {
		char res[160];
		snprintf(res, sizeof(res), GC_OWNER ":%s", o->resource);
		ctrl_enqueue(m, res, o->ns, o->name, 0);
	}
}

int ctrl_mgr_new(const struct ctrl_options *opts, struct ctrl_mgr **ret)
{
	struct ctrl_mgr *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->o = *opts;
	if (m->o.members) {
		m->snap = members_snapshot(m->o.members);
		if (!m->snap) {
			free(m);
			return -ENOMEM;
		}
	}
	r = store_watch_add(m->o.store, NULL, 0, ctrl_on_event, m, &m->watch);
	if (r < 0) {
		members_free(m->snap);
		free(m);
		return r;
	}
	ctrl_mgr_resync(m);
	*ret = m;
	return 0;
}

struct ctrl_mgr *ctrl_mgr_free(struct ctrl_mgr *m)
{
	if (!m)
		return NULL;
	if (m->watch)
		store_watch_cancel(m->watch);
	m->sel_cache = ctrl_sel_cache_free(m->sel_cache);
	for (size_t i = 0; i < m->nq; i++) {
		free(m->q[i].resource);
		free(m->q[i].ns);
		free(m->q[i].name);
	}
	free(m->q);
	for (size_t i = 0; i < m->nfailing; i++)
		failing_free(&m->failing[i]);
	free(m->failing);
	for (size_t i = 0; i < m->nchanges; i++)
		members_free(m->changes[i].prev);
	members_free(m->snap);
	claims_clear(m);
	free(m->claims);
	free(m);
	return NULL;
}

/* --- status claims (docs/consistency.md, "Status register") --- */

static void claims_clear(struct ctrl_mgr *m)
{
	for (size_t i = 0; i < m->nclaims; i++)
		free(m->claims[i].key);
	m->nclaims = 0;
}

static struct ctrl_claim *claim_get(struct ctrl_mgr *m, const char *key, bool add)
{
	size_t lo = 0, hi = m->nclaims;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->claims[mid].key, key);

		if (c == 0)
			return &m->claims[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!add)
		return NULL;
	if (m->nclaims == m->capclaims) {
		size_t cap = m->capclaims ? m->capclaims * 2 : 16;
		struct ctrl_claim *v = realloc(m->claims, cap * sizeof(*v));

		if (!v)
			return NULL;
		m->claims = v;
		m->capclaims = cap;
	}
	char *k = strdup(key);

	if (!k)
		return NULL;
	memmove(m->claims + lo + 1, m->claims + lo, (m->nclaims - lo) * sizeof(*m->claims));
	m->nclaims++;
	m->claims[lo] = (struct ctrl_claim){ .key = k };
	return &m->claims[lo];
}

static void claim_drop(struct ctrl_mgr *m, const char *resource, const char *ns,
		       const char *name)
{
	_cleanup_free_ char *key = NULL;
	struct ctrl_claim *c;

	if (!m->nclaims || asprintf(&key, "%s/%s/%s", resource, ns, name) < 0)
		return;
	c = claim_get(m, key, false);
	if (!c)
		return;
	free(c->key);
	memmove(c, c + 1, (size_t)(m->claims + m->nclaims - (c + 1)) * sizeof(*c));
	m->nclaims--;
}

int ctrl_status_term(struct ctrl_mgr *m, const char *resource, const char *ns, const char *name,
		     const struct store_obj *cur, uint64_t *term, uint64_t *retry_ms)
{
	/* the writer id on the register (the node name, also without membership) */
	const char *self = store_node_name(m->o.store);
	const struct members_info *me =
		m->o.members ? members_view_find(m->o.members, members_self(m->o.members)) : NULL;
	uint64_t epoch = m->o.members ? members_epoch(m->o.members) : 0, now = ctrl_now_ms(m);
	uint32_t inc = me ? me->incarnation : 0;
	_cleanup_free_ char *key = NULL;
	struct ctrl_claim *c;

	*retry_ms = 0;
	/* a claim holds for the view it was taken in: a change of the live set, or of our own
	 * incarnation (we refuted being declared suspect or dead), starts afresh */
	if (epoch != m->claims_epoch || inc != m->claims_inc) {
		if (inc != m->claims_inc || !m->view_since)
			m->view_since = now;
		claims_clear(m);
		m->claims_epoch = epoch;
		m->claims_inc = inc;
	}
	if (asprintf(&key, "%s/%s/%s", resource, ns, name) < 0)
		return -ENOMEM;
	c = claim_get(m, key, false);
	if (!c) {
		c = claim_get(m, key, true);
		if (!c)
			return -ENOMEM;
		/* our own register (or none) goes on at its term; another node's is taken over
		 * above its term, so its writes — if it still believes it owns the key — lose */
		bool own = !cur->status_hlc || (cur->status_node && streq(cur->status_node, self));
		c->term = own ? cur->status_term : cur->status_term + 1;
	} else if (cur->status_term >= c->term && cur->status_node &&
		   !streq(cur->status_node, self) && HLC_PHYS(cur->status_hlc) < m->view_since) {
		/* another node's claim at our term or above, written (by its clock) before our
		 * view began: made in an older view (e.g. on the other side of a partition that
		 * has healed since, concurrently with ours); claim above it */
		c->term = cur->status_term + 1;
		c->stale_since = 0;
	} else if (cur->status_term > c->term) {
		/* Another node claimed the key since our view began, in a view we have not seen:
		 * it may be newer than ours (we are the stale owner, and should learn so soon), or
		 * not (it is cut off and has not learnt yet). Hold off for the settle window; if we
		 * still own the key after it, take it over. */
		uint64_t settle = ctrl_settle_ms(m);

		if (!c->stale_since)
			c->stale_since = now;
		if (now < c->stale_since + settle) {
			m->stats.status_stale++;
			*retry_ms = c->stale_since + settle - now;
			return -ESTALE;
		}
		c->term = cur->status_term + 1;
		c->stale_since = 0;
	} else {
		c->stale_since = 0;
	}
	*term = c->term;
	return 0;
}

static int resync_one(struct store_obj *o, void *userdata)
{
	struct ctrl_mgr *m = userdata;

	ctrl_enqueue(m, o->resource, o->ns, o->name, 0);
	return 0;
}

void ctrl_mgr_resync(struct ctrl_mgr *m)
{
	for (size_t i = 0; i < ARRAY_SIZE(ctrl_all); i++)
		store_list(m->o.store, ctrl_all[i]->resource, NULL, NULL, NULL, resync_one, m);
	/* owners stuck in deletion, dependents of owners deleted while we were down */
	for (size_t i = 0; i < ctrl_gc_resources_count; i++)
		ctrl_enqueue(m, GC_DEPS, "", ctrl_gc_resources[i], 0);
}

static int ctrl_reconcile(struct ctrl_mgr *m, struct ctrl_item *it)
{
	_cleanup_json_ cJSON *obj = NULL;
	struct store_obj *o = NULL;
	const struct ctrl_ops *ops;
	int r;

	if (streq(it->resource, GC_DEPS)) {
		/* ns = "" and name = resource: full scan of one resource; else name = owner uid */
		if (!*it->ns)
			return ctrl_gc_dangling(m, it->name, NULL, NULL, NULL);
		return ctrl_gc_dangling(m, NULL, it->ns, it->name, NULL);
	}
	if (!strncmp(it->resource, GC_OWNER ":", strlen(GC_OWNER) + 1)) {
		const char *res = it->resource + strlen(GC_OWNER) + 1;
		if (!ctrl_owns(m, res, it->ns, it->name))
			return 0;
		if (ctrl_handover_wait(m, res, it->ns, it->name))
			goto wait;
		r = store_get(m->o.store, res, it->ns, it->name, &o);
		if (r == -ENOENT)
			return 0;
		if (r < 0)
			return r;
		obj = store_obj_parse(o);
		store_obj_unref(o);
		return obj ? ctrl_gc_owner(m, res, it->ns, it->name, obj) : -ENOMEM;
	}
	ops = ctrl_ops_by_resource(it->resource);
	if (!ops || !ctrl_owns(m, it->resource, it->ns, it->name))
		return 0;
	if (ctrl_handover_wait(m, it->resource, it->ns, it->name))
		goto wait;
	r = store_get(m->o.store, it->resource, it->ns, it->name, &o);
	if (r < 0 && r != -ENOENT)
		return r;
	if (!o)
		claim_drop(m, it->resource, it->ns, it->name); /* claims live no longer than keys */
	if (o) {
		obj = store_obj_parse(o);
		store_obj_unref(o);
		if (!obj)
			return -ENOMEM;
	}
	return ops->reconcile(m, it->ns, it->name, obj);
wait:
	/* not a failure: look again shortly (the settle window bounds how long) */
	m->stats.handover_waits++;
	ctrl_enqueue(m, it->resource, it->ns, it->name, CTRL_HANDOVER_RECHECK_MS);
	return 0;
}

int ctrl_mgr_run(struct ctrl_mgr *m, uint64_t *next_ms)
{
	uint64_t now = ctrl_now_ms(m), next = 0;
	int done = 0;

	m->running = true;
	if (m->lost) {
		m->lost = false;
		ctrl_mgr_resync(m);
	}
	/* bounded passes: a reconcile may enqueue more work (e.g. a Deployment its new RS) */
	for (int pass = 0; pass < 64; pass++) {
		bool any = false;
		for (size_t i = 0; i < m->nq;) {
			if (m->q[i].due > now) {
				i++;
				continue;
			}
			struct ctrl_item it = m->q[i];
			m->q[i] = m->q[--m->nq];
			m->stats.reconciles++;
			if (ctrl_reconcile(m, &it) < 0)
				ctrl_requeue(m, &it);
			else
				ctrl_forget(m, &it);
			free(it.resource);
			free(it.ns);
			free(it.name);
			done++;
			any = true;
		}
		if (!any)
			break;
	}
	for (size_t i = 0; i < m->nq; i++)
		if (!next || m->q[i].due < next)
			next = m->q[i].due;
	if (m->lost && (!next || next > now + CTRL_BACKOFF_BASE_MS))
		next = now + CTRL_BACKOFF_BASE_MS;
	m->running = false;
	if (next_ms)
		*next_ms = next;
	return done;
}
