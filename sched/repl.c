// SPDX-License-Identifier: Apache-2.0
/*
 * Replication between replicas (sched/repl.h, docs/consistency.md): pushes of local commits and
 * anti-entropy rounds. Pure logic: the wall clock, randomness and the network are repl_env.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/macro.h"
#include "sched/hlc.h"
#include "sched/repl.h"
#include "sched/repl_wire.h"
#include "sched/repl_wm.h"

#define DEF_PUSH_DELAY_MS 2
/* a commit within BUSY_GAP_MS of the last flush (a stream of writes) waits BUSY_PUSH_DELAY_MS:
 * ~3x fewer pushes, so fewer connections, seals and SQLite transactions on every receiver;
 * a lone write still goes after push_delay_ms */
#define BUSY_GAP_MS 10
#define BUSY_PUSH_DELAY_MS 8
#define DEF_PUSH_MAX_BYTES (1u << 20)
#define DEF_AE_INTERVAL_MS 2000
#define DEF_REQUEST_TIMEOUT_MS 10000
#define DEF_MERGE_BATCH 2048
#define DEF_HORIZON_MS (3600ull * 1000)
#define DEF_GC_INTERVAL_MS 60000
/* a member's queue of pushes beyond this is dropped: anti-entropy repairs it */
#define PUSH_QUEUE_MAX_BYTES (64u << 20)
/* a KEYS reply stops adding buckets beyond this many bytes; the requester asks for the rest
 * (bounds the serving node's work per request: listing, encoding and sealing it) */
#define KEYS_REPLY_SOFT_MAX (1u << 20)
/* a KEYS request asks for at most this many buckets (~100 keys each at 100,000 objects) */
#define KEYS_BUCKETS_MAX 32
/* KEYS requests of one round in flight at once (the peer answers each on its own stream) */
#define KEYS_INFLIGHT 4
/* received registers are merged at once when no others wait and they are at most this many;
 * larger batches wait in a queue merged a bounded slice per loop turn */
#define MERGE_NOW_MAX 256
/* registers per store_merge transaction when draining the queue, and the time one turn may
 * spend merging (at least one transaction) */
#define MERGE_SLICE 256
#define MERGE_TURN_MS 10
/* the queue's slices share one SQLite transaction (store_merge_hold) committed when the queue
 * is empty, a round's final message is merged, or this long after the first slice: fewer,
 * larger transactions (each rewrites the index pages it touched), watch events later by at
 * most this much during a catch-up */
#define BULK_COMMIT_MS 250
/* the initiator asks for no more bodies while this many registers wait to be merged */
#define PEND_PIPELINE_MAX 8192
/* a node whose own round found this many buckets empty here and not at the peer (or that has
 * PEND_PIPELINE_MAX registers waiting) answers rounds others start with BUSY until it has
 * caught up: when a new node joins, every member would otherwise send it the whole store in
 * parallel. Empty here, not merely differing: a member starting a round with the new node
 * finds every bucket differing too, but it is the one ahead and must not decline anything */
#define BUSY_BEHIND_BUCKETS 64
/* received messages waiting to be merged beyond this many bytes: further ones are refused
 * (the sender's push fails and anti-entropy repairs it) */
#define PEND_MAX_BYTES (64u << 20)

/* tombstone snapshots waiting for their collection at once (one taken every gc_interval) */
#define GC_SNAPS 16

enum { KIND_PUSH = 1, KIND_ROUND = 2 };

#define TOKEN(gen, kind, idx) (((uint64_t)(gen) << 40) | ((uint64_t)(kind) << 32) | (idx))
#define TOKEN_GEN(t) ((t) >> 40)
#define TOKEN_KIND(t) ((unsigned)(((t) >> 32) & 0xff))
#define TOKEN_IDX(t) ((uint32_t)(t))

struct msg {
	int refs;
	size_t len;
	uint8_t *p; /* owned: the encoder's buffer, taken as it is */
};

/* Room for one more element in the array *vp of n used and *cap allocated (doubling from min). */
static int grow(void *vp, size_t n, size_t *cap, size_t size, size_t min)
{
	void **v = vp;
	size_t c = *cap ? *cap * 2 : min;
	void *nv;

	if (n < *cap)
		return 0;
	if (!(nv = reallocarray(*v, c, size)))
		return -ENOMEM;
	*v = nv;
	*cap = c;
	return 0;
}

static void msg_unref(struct msg *m)
{
	if (m && --m->refs == 0) {
		free(m->p);
		free(m);
	}
}

struct rmember {
	char *name;
	enum repl_member_state st;
	/* pushes: one in flight, the rest queued */
	struct msg **q;
	size_t qhead, qlen, qcap, qbytes;
	bool push_inflight;
	uint64_t push_gen;
	bool want_sync; /* start a round with it soon (new or back) */
	/* rounds */
	uint64_t last_round;  /* start of the last completed round, local wall ms (0: none) */
	uint64_t serve_round; /* id of the round it started with us */
	uint64_t serve_start;
	bool refused_pull; /* refused our round while we were pulling: it is pulling too */
	int wslot;	   /* its watermark entry (repl_wm) */
	uint64_t nh;	   /* repl_wm_name_hash(name): its share of the set digest */
	/* the watermark section of its DIGESTS for the round it started with us: applied once
	 * that round completes here */
	uint8_t *serve_vec;
	size_t serve_vec_len;
};

struct dkey { /* a dirty key */
	struct dkey *hnext, *next;
	uint64_t h;
	char *ns, *name; /* point into resource's buffer */
	char resource[];
};

struct wkey { /* a key the round's peer wants */
	char *resource, *ns, *name;
};

struct bucket_ref {
	char *resource;
	uint32_t bucket;
};

struct lost {
	char *resource, *ns, *name, *loser, *winner, *winner_node;
};

struct kreq { /* a KEYS request in flight: diff[start, start + n) */
	uint64_t seq;
	size_t start, n;
};

struct round {
	bool active;
	uint64_t id, seq;
	uint32_t member;
	uint64_t start, deadline;
	int step; /* REPL_MSG_* of the request in flight (KEYS: the kreqs) */
	struct bucket_ref *diff;
	size_t ndiff, dcap, cursor;
	size_t nbehind; /* differing buckets empty here: we lack all of their keys */
	struct kreq kq[KEYS_INFLIGHT];
	size_t nkq;
	struct wkey *want;
	size_t nwant, wcap, wcursor;
	uint64_t need_seq; /* the round is complete once the merge queue merged this far */
	bool draining;	   /* every message exchanged; waiting for our merges */
	uint8_t *peer_vec; /* the peer's watermark section, applied if the round completes */
	size_t peer_vec_len;
};

/* Received registers waiting to be merged, in arrival order. */
struct pend {
	struct pend *next;
	uint8_t *msg; /* the message the registers point into */
	size_t len;
	struct store_reg *regs;
	size_t n, done;
	bool repair; /* from an anti-entropy round */
	uint64_t seq;
	/* the final PUSH of a round `member` started with us: complete once merged */
	bool final;
	char *final_member;
	uint64_t final_start;
	uint8_t *final_vec; /* the sender's watermark section, applied with the completion */
	size_t final_vec_len;
};

struct repl {
	struct repl_config cfg;
	struct repl_env env;
	struct store *s;
	char *self;
	struct store_watch *watch;
	bool merging;

	struct rmember *m;
	size_t nm, mcap;

	/* dirty keys, in commit order, deduplicated */
	struct dkey **dtab;
	size_t dcap, ndirty;
	struct dkey *dhead, *dtail;
	uint64_t flush_at; /* 0: nothing to flush */
	uint64_t flushed_at; /* the last flush */

	struct round round;
	uint64_t round_seq;

	struct pend *phead, *ptail;
	size_t pend_regs, pend_bytes;
	uint64_t pend_seq, merged_seq;
	uint64_t held_seq; /* merged into the bulk transaction, not committed yet */
	uint64_t bulk_at;  /* when the bulk transaction began, 0: none */
	uint64_t next_ae, next_gc;

	struct lost *lost;
	size_t nlost, lostcap;

	struct drops *cur_drops;
	bool pull; /* resyncing pull-only (cfg.pull_only, or away past the horizon) */

	/* tombstone collection: snapshots, oldest first, each of the tombstones older than h
	 * when taken at t (a signature over them); one is collected once every non-removed member
	 * holds our state of t (hold_floor) and the set is still the same (one that arrived since
	 * could be missing on a member that held our state of t) */
	struct gc_snap {
		uint64_t t, h, sig;
		size_t n;
	} snap[GC_SNAPS];
	size_t nsnap;
	uint64_t next_collect;
	/* tombstones older than this were collected here: one arriving from a node that has not
	 * collected yet is dropped, not stored again */
	uint64_t gc_floor;
	/* transitive watermarks (sched/repl_wm.h) and the digest of this node's member set
	 * (itself and every non-removed member) */
	struct repl_wm *wm;
	uint64_t set_sd;

	/* rounds restored by repl_state_load for members not known yet */
	struct restored {
		char *name;
		uint64_t last_round;
	} * restored;
	size_t nrestored;

	struct repl_stats st;
};

static bool pulling(const struct repl *r)
{
	return r->pull;
}

static uint64_t now_ms(struct repl *r)
{
	return r->env.now_ms(r->env.ud);
}

/* The anti-entropy CPU counter: ae_cpu_add(r, cpu_now(r)) around a round's work. */
static uint64_t cpu_now(struct repl *r)
{
	return r->env.cpu_ns ? r->env.cpu_ns(r->env.ud) : 0;
}

static void ae_cpu_add(struct repl *r, uint64_t t0)
{
	if (r->env.cpu_ns)
		r->st.ae_cpu_ns += r->env.cpu_ns(r->env.ud) - t0;
}

static uint64_t rand64(struct repl *r)
{
	return (uint64_t)r->env.rand32(r->env.ud) << 32 | r->env.rand32(r->env.ud);
}

static void wake(struct repl *r, uint64_t at)
{
	if (r->env.wake)
		r->env.wake(r->env.ud, at);
}

static uint64_t ae_jitter(struct repl *r)
{
	uint64_t iv = r->cfg.ae_interval_ms;

	return iv * 3 / 4 + (iv ? r->env.rand32(r->env.ud) % (iv / 2 + 1) : 0);
}

/* ---------- members ---------- */

static struct rmember *member_find(struct repl *r, const char *name, uint32_t *idx)
{
	for (size_t i = 0; i < r->nm; i++)
		if (streq(r->m[i].name, name)) {
			if (idx)
				*idx = (uint32_t)i;
			return &r->m[i];
		}
	return NULL;
}

static bool member_live(const struct rmember *m)
{
	return m->st == REPL_MEMBER_ALIVE || m->st == REPL_MEMBER_SUSPECT;
}

static void queue_drop(struct rmember *m)
{
	for (size_t i = 0; i < m->qlen; i++)
		msg_unref(m->q[(m->qhead + i) % m->qcap]);
	m->qhead = m->qlen = m->qbytes = 0;
}

static void round_end(struct repl *r, bool ok);

void repl_member_set(struct repl *r, const char *node, enum repl_member_state st)
{
	struct rmember *m;
	uint32_t idx;
	bool was_live;

	if (!node || streq(node, r->self))
		return;
	m = member_find(r, node, &idx);
	if (!m) {
		if (st == REPL_MEMBER_LEFT)
			return;
		if (grow(&r->m, r->nm, &r->mcap, sizeof(*r->m), 8) < 0)
			return;
		m = &r->m[r->nm];
		*m = (struct rmember){.name = strdup(node), .st = REPL_MEMBER_LEFT};
		if (!m->name)
			return;
		m->wslot = repl_wm_slot(r->wm, node);
		m->nh = repl_wm_name_hash(node);
		idx = (uint32_t)r->nm++;
		for (size_t i = 0; i < r->nrestored; i++)
			if (streq(r->restored[i].name, node)) {
				m->last_round = r->restored[i].last_round;
				free(r->restored[i].name);
				r->restored[i] = r->restored[--r->nrestored];
				break;
			}
	}
	was_live = member_live(m);
	/* the set digest: this node and its non-removed members */
	if (m->st == REPL_MEMBER_LEFT && st != REPL_MEMBER_LEFT)
		r->set_sd += m->nh;
	else if (m->st != REPL_MEMBER_LEFT && st == REPL_MEMBER_LEFT)
		r->set_sd -= m->nh;
	m->st = st;
	if (member_live(m) && !was_live) {
		/* new or back: a round soon, so it catches up with us and we with it */
		m->want_sync = true;
		wake(r, now_ms(r));
	}
	if (!member_live(m)) {
		queue_drop(m);
		m->want_sync = false;
		if (r->round.active && r->round.member == idx)
			round_end(r, false);
	}
}

/* ---------- dirty keys ---------- */

static uint64_t key_hash(const char *res, const char *ns, const char *name)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = res; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ 1) * 1099511628211ull;
	for (const char *p = ns; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ 2) * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

static int dirty_grow(struct repl *r)
{
	size_t cap = r->dcap ? r->dcap * 2 : 256;
	struct dkey **t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (struct dkey *k = r->dhead; k; k = k->next) {
		k->hnext = t[k->h & (cap - 1)];
		t[k->h & (cap - 1)] = k;
	}
	free(r->dtab);
	r->dtab = t;
	r->dcap = cap;
	return 0;
}

static void dirty_add(struct repl *r, const char *res, const char *ns, const char *name)
{
	uint64_t h = key_hash(res, ns, name);
	size_t lr = strlen(res) + 1, ln = strlen(ns) + 1, lm = strlen(name) + 1;
	struct dkey *k;

	if (r->dcap)
		for (k = r->dtab[h & (r->dcap - 1)]; k; k = k->hnext)
			if (k->h == h && streq(k->resource, res) && streq(k->ns, ns) &&
			    streq(k->name, name))
				return;
	if ((r->ndirty + 1) * 2 > r->dcap && dirty_grow(r) < 0)
		return; /* anti-entropy repairs it */
	k = malloc(sizeof(*k) + lr + ln + lm);
	if (!k)
		return;
	k->h = h;
	k->next = NULL;
	memcpy(k->resource, res, lr);
	k->ns = k->resource + lr;
	memcpy(k->ns, ns, ln);
	k->name = k->ns + ln;
	memcpy(k->name, name, lm);
	k->hnext = r->dtab[h & (r->dcap - 1)];
	r->dtab[h & (r->dcap - 1)] = k;
	if (r->dtail)
		r->dtail->next = k;
	else
		r->dhead = k;
	r->dtail = k;
	r->ndirty++;
	if (!r->flush_at) {
		uint64_t now = now_ms(r);
		uint32_t d = r->cfg.push_delay_ms;

		if (r->flushed_at && now < r->flushed_at + BUSY_GAP_MS && d < BUSY_PUSH_DELAY_MS)
			d = BUSY_PUSH_DELAY_MS;
		r->flush_at = now + d;
		wake(r, r->flush_at);
	}
}

static void dirty_clear(struct repl *r)
{
	for (struct dkey *k = r->dhead, *n; k; k = n) {
		n = k->next;
		free(k);
	}
	if (r->dtab)
		memset(r->dtab, 0, r->dcap * sizeof(*r->dtab));
	r->dhead = r->dtail = NULL;
	r->ndirty = 0;
	r->flush_at = 0;
}

/* ---------- merging ---------- */

static void lost_flush(struct repl *r)
{
	for (size_t i = 0; i < r->nlost; i++) {
		struct lost *l = &r->lost[i];

		if (r->env.on_create_lost)
			r->env.on_create_lost(r->env.ud, l->resource, l->ns, l->name, l->loser,
					      l->winner, l->winner_node);
		free(l->resource);
		free(l->ns);
		free(l->name);
		free(l->loser);
		free(l->winner);
		free(l->winner_node);
	}
	r->nlost = 0;
}

/* Merge registers in batches of merge_batch (held: into the bulk transaction); returns the
 * number applied. */
static size_t merge(struct repl *r, struct store_reg *regs, size_t n, bool held)
{
	size_t applied = 0, k = 0;

	/* collected tombstones stay collected */
	for (size_t i = 0; i < n; i++)
		if (!(regs[i].kind == STORE_REG_SPEC && regs[i].tombstone &&
		      regs[i].hlc < r->gc_floor))
			regs[k++] = regs[i];
	r->st.stale += n - k;
	n = k;

	for (size_t i = 0; i < n; i += r->cfg.merge_batch) {
		size_t k = n - i < r->cfg.merge_batch ? n - i : r->cfg.merge_batch;
		struct store_merge_stats st = {0};

		r->merging = true;
		if (held) {
			if (!r->bulk_at)
				r->bulk_at = now_ms(r);
			store_merge_hold(r->s, regs + i, k, &st);
		} else {
			store_merge(r->s, regs + i, k, &st);
		}
		r->merging = false;
		applied += st.applied;
		r->st.applied += st.applied;
		r->st.stale += st.stale;
		r->st.later += st.later;
		r->st.refused += st.refused;
	}
	lost_flush(r);
	return applied;
}

struct regv {
	struct store_reg *v;
	size_t n, cap;
};

static int regv_add(struct regv *rv, const struct store_reg *reg)
{
	if (grow(&rv->v, rv->n, &rv->cap, sizeof(*rv->v), 64) < 0)
		return -ENOMEM;
	rv->v[rv->n++] = *reg;
	return 0;
}

/* Decode `count` keys from rd into rv (pointers into the message). */
static int read_keys(struct repl_rd *rd, uint32_t count, struct regv *rv)
{
	for (uint32_t i = 0; i < count; i++) {
		struct store_reg spec, status;
		int e = rrd_key(rd, &spec, &status);

		if (e < 0)
			return e;
		if (regv_add(rv, &spec) < 0 || (status.kind && regv_add(rv, &status) < 0))
			return -ENOMEM;
	}
	return 0;
}

/* ---------- the merge queue: large batches merged a slice per loop turn ---------- */

static bool pend_empty(const struct repl *r)
{
	return !r->phead;
}

static void pend_free(struct pend *p)
{
	free(p->msg);
	free(p->regs);
	free(p->final_member);
	free(p->final_vec);
	free(p);
}

/*
 * Queue the registers of rv (pointing into msg[0, len)) behind the others: the message is
 * copied and rv's pointers moved into the copy. Returns the entry's sequence, 0 on failure.
 */
static struct pend *pend_add(struct repl *r, const uint8_t *msg, size_t len, struct regv *rv,
			     bool repair)
{
	struct pend *p = calloc(1, sizeof(*p));

	if (!p || r->pend_bytes + len > PEND_MAX_BYTES) {
		free(p);
		return NULL;
	}
	p->msg = malloc(len ? len : 1);
	if (!p->msg) {
		free(p);
		return NULL;
	}
	memcpy(p->msg, msg, len);
	p->len = len;
#define MOVE(f)                                                                                    \
	do {                                                                                       \
		if (f && (const uint8_t *)(f) >= msg && (const uint8_t *)(f) < msg + len)          \
			f = (const char *)p->msg + ((const uint8_t *)(f)-msg);                     \
	} while (0)
	for (size_t i = 0; i < rv->n; i++) {
		struct store_reg *g = &rv->v[i];

		MOVE(g->resource);
		MOVE(g->ns);
		MOVE(g->name);
		MOVE(g->uid);
		MOVE(g->node);
		MOVE(g->body);
		MOVE(g->sticky);
	}
#undef MOVE
	p->regs = rv->v;
	p->n = rv->n;
	*rv = (struct regv){0};
	p->repair = repair;
	p->seq = ++r->pend_seq;
	if (r->ptail)
		r->ptail->next = p;
	else
		r->phead = p;
	r->ptail = p;
	r->pend_regs += p->n;
	r->pend_bytes += len;
	wake(r, now_ms(r));
	return p;
}

static void serve_final_done(struct repl *r, const char *member, uint64_t start, uint8_t **vec,
			     size_t *vec_len);

/* Commit the bulk transaction: what it holds counts as merged only now. */
static void bulk_commit(struct repl *r)
{
	if (store_merge_held(r->s))
		r->st.bulk_commits++;
	r->merging = true;
	store_merge_commit(r->s);
	r->merging = false;
	r->bulk_at = 0;
	lost_flush(r);
	if (r->held_seq > r->merged_seq)
		r->merged_seq = r->held_seq;
}

/*
 * Whether an emptied queue may leave the bulk open: our round is still pulling (KEYS requests
 * in flight), so more registers come within a round trip. Committing at every empty queue made
 * a catch-up commit once per reply (~2,000 registers), and every commit rewrites the primary-key
 * index pages its keys touched (random by name): most of the index each time.
 */
static bool bulk_expecting(const struct repl *r)
{
	return r->round.active && !r->round.draining && r->round.step == REPL_MSG_KEYS &&
	       r->round.nkq > 0;
}

/* Merge from the queue for at most MERGE_TURN_MS (at least one slice); true if any is left. */
static bool pend_run(struct repl *r)
{
	uint64_t t0 = now_ms(r);

	/* another write of the store may have committed the bulk */
	if (r->bulk_at && !store_merge_held(r->s))
		bulk_commit(r);
	while (r->phead) {
		struct pend *p = r->phead;
		size_t k = p->n - p->done < MERGE_SLICE ? p->n - p->done : MERGE_SLICE;
		uint64_t c0 = p->repair ? cpu_now(r) : 0;
		size_t applied = merge(r, p->regs + p->done, k, true);

		if (p->repair) {
			r->st.repairs += applied;
			ae_cpu_add(r, c0);
		}
		p->done += k;
		r->pend_regs -= k;
		if (p->done == p->n) {
			r->phead = p->next;
			if (!r->phead)
				r->ptail = NULL;
			r->pend_bytes -= p->len;
			r->held_seq = p->seq;
			if (p->final) {
				/* the round completes on durable merges only */
				bulk_commit(r);
				serve_final_done(r, p->final_member, p->final_start, &p->final_vec,
						 &p->final_vec_len);
			}
			pend_free(p);
		}
		if (now_ms(r) >= t0 + MERGE_TURN_MS)
			break;
	}
	if (r->bulk_at &&
	    ((!r->phead && !bulk_expecting(r)) || now_ms(r) >= r->bulk_at + BULK_COMMIT_MS))
		bulk_commit(r);
	return r->phead != NULL;
}

static void pend_clear(struct repl *r)
{
	store_merge_commit(r->s); /* what the bulk holds is merged: keep it */
	r->bulk_at = 0;
	for (struct pend *p = r->phead, *n; p; p = n) {
		n = p->next;
		pend_free(p);
	}
	r->phead = r->ptail = NULL;
	r->pend_regs = r->pend_bytes = 0;
	r->merged_seq = r->pend_seq;
}

/* ---------- the store watch: local commits become dirty keys ---------- */

static bool wrote_here(struct repl *r, const struct store_obj *o, const struct store_obj *old)
{
	if (o->spec_node && streq(o->spec_node, r->self) &&
	    (!old || old->spec_hlc != o->spec_hlc || !streq(old->uid, o->uid)))
		return true;
	return o->status_node && streq(o->status_node, r->self) &&
	       (!old || old->status_hlc != o->status_hlc);
}

static void lost_add(struct repl *r, const struct store_obj *o, const struct store_obj *old)
{
	struct lost *l;

	if (grow(&r->lost, r->nlost, &r->lostcap, sizeof(*r->lost), 4) < 0)
		return;
	l = &r->lost[r->nlost];
	*l = (struct lost){
	    .resource = strdup(o->resource),
	    .ns = strdup(o->ns),
	    .name = strdup(o->name),
	    .loser = strdup(old->uid),
	    .winner = strdup(o->uid),
	    .winner_node = strdup(o->spec_node ? o->spec_node : ""),
	};
	if (!l->resource || !l->ns || !l->name || !l->loser || !l->winner || !l->winner_node) {
		free(l->resource);
		free(l->ns);
		free(l->name);
		free(l->loser);
		free(l->winner);
		free(l->winner_node);
		return;
	}
	r->nlost++;
}

static void on_commit(const struct store_event *ev, void *ud)
{
	struct repl *r = ud;
	const struct store_obj *o = ev->obj, *old = ev->old;

	/* not ev->merged: a local write, also one a callback made during a merge */
	if (!ev->merged) {
		dirty_add(r, o->resource, o->ns, o->name);
		return;
	}
	/* a merged write: lag, races; a local write made by a callback during the merge */
	uint64_t hlc = 0, wall = now_ms(r);

	if (!old || old->spec_hlc != o->spec_hlc)
		hlc = o->spec_hlc;
	if (o->status_hlc > hlc && (!old || old->status_hlc != o->status_hlc))
		hlc = o->status_hlc;
	if (hlc && HLC_PHYS(hlc) <= wall) {
		r->st.lag_ms = wall - HLC_PHYS(hlc);
		if (r->st.lag_ms > r->st.lag_max_ms)
			r->st.lag_max_ms = r->st.lag_ms;
	}
	/* one name created on two nodes: ours (last written here) lost to another uid */
	if (ev->type != STORE_DELETED && old && old->uid && o->uid && !streq(old->uid, o->uid) &&
	    old->spec_node && streq(old->spec_node, r->self) && o->spec_node &&
	    !streq(o->spec_node, r->self))
		lost_add(r, o, old);
	if (ev->type != STORE_DELETED && wrote_here(r, o, old))
		dirty_add(r, o->resource, o->ns, o->name);
}

/* ---------- pushes ---------- */

static void push_next(struct repl *r, uint32_t idx);

static void queue_add(struct rmember *m, struct msg *msg)
{
	if (m->qbytes + msg->len > PUSH_QUEUE_MAX_BYTES) {
		queue_drop(m); /* too far behind: anti-entropy repairs it */
		return;
	}
	if (m->qlen == m->qcap) {
		size_t cap = m->qcap ? m->qcap * 2 : 8;
		struct msg **nv = calloc(cap, sizeof(*nv));

		if (!nv)
			return;
		for (size_t i = 0; i < m->qlen; i++)
			nv[i] = m->q[(m->qhead + i) % m->qcap];
		free(m->q);
		m->q = nv;
		m->qcap = cap;
		m->qhead = 0;
	}
	msg->refs++;
	m->q[(m->qhead + m->qlen) % m->qcap] = msg;
	m->qlen++;
	m->qbytes += msg->len;
}

/* A queued PUSH message (round 0): the 8-byte header, the round's varint 0, then keys. */
#define PUSH_KEYS_AT (sizeof(struct repl_wire_hdr) + 1)

static uint32_t push_count(const struct msg *m)
{
	const struct repl_wire_hdr *h = (const void *)m->p;

	return (uint32_t)h->count[0] << 24 | (uint32_t)h->count[1] << 16 |
	       (uint32_t)h->count[2] << 8 | h->count[3];
}

/*
 * The next message for a member: the head of its queue, or, when several wait (the member
 * answers slower than we write), as many as fit in push_max_bytes joined into one PUSH, so a
 * slow member costs fewer requests and transactions, not more.
 */
static struct msg *queue_take(struct repl *r, struct rmember *m)
{
	struct msg *first = m->q[m->qhead], *out;
	size_t k = 1, len = first->len;
	uint32_t count = push_count(first);

	while (k < m->qlen) {
		struct msg *n = m->q[(m->qhead + k) % m->qcap];

		if (len + n->len - PUSH_KEYS_AT > r->cfg.push_max_bytes)
			break;
		len += n->len - PUSH_KEYS_AT;
		count += push_count(n);
		k++;
	}
	out = k > 1 ? malloc(sizeof(*out)) : NULL;
	if (out && !(out->p = malloc(len))) {
		free(out);
		out = NULL;
	}
	if (!out) {
		k = 1;
		out = first;
		out->refs++;
	} else {
		struct repl_wire_hdr *h = (void *)out->p;
		size_t at = first->len;

		out->refs = 1;
		out->len = len;
		memcpy(out->p, first->p, first->len);
		for (size_t i = 1; i < k; i++) {
			struct msg *n = m->q[(m->qhead + i) % m->qcap];

			memcpy(out->p + at, n->p + PUSH_KEYS_AT, n->len - PUSH_KEYS_AT);
			at += n->len - PUSH_KEYS_AT;
		}
		h->count[0] = (uint8_t)(count >> 24);
		h->count[1] = (uint8_t)(count >> 16);
		h->count[2] = (uint8_t)(count >> 8);
		h->count[3] = (uint8_t)count;
	}
	for (size_t i = 0; i < k; i++) {
		struct msg *n = m->q[m->qhead];

		m->qhead = (m->qhead + 1) % m->qcap;
		m->qlen--;
		m->qbytes -= n->len;
		msg_unref(n);
	}
	return out;
}

/* Send msg to the members idx[0..n) (none with a push in flight) with one send_many. */
static void push_send(struct repl *r, struct msg *msg, const uint32_t *idx, size_t n)
{
	const char **nodes = malloc(n * sizeof(*nodes));
	uint64_t *tokens = malloc(n * sizeof(*tokens));
	int *err = malloc(n * sizeof(*err));

	if (!nodes || !tokens || !err) {
		for (size_t i = 0; i < n; i++)
			queue_drop(&r->m[idx[i]]); /* anti-entropy repairs it */
		r->st.push_failures += n;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct rmember *m = &r->m[idx[i]];

		m->push_gen++;
		nodes[i] = m->name;
		tokens[i] = TOKEN(m->push_gen, KIND_PUSH, idx[i]);
	}
	if (r->env.send_many)
		r->env.send_many(r->env.ud, nodes, n, msg->p, msg->len, tokens, err);
	else
		for (size_t i = 0; i < n; i++)
			err[i] = r->env.send(r->env.ud, nodes[i], msg->p, msg->len, tokens[i]);
	for (size_t i = 0; i < n; i++) {
		struct rmember *m = &r->m[idx[i]];

		if (err[i] < 0) {
			r->st.push_failures++;
			queue_drop(m);
			continue;
		}
		m->push_inflight = true;
		r->st.pushes_sent++;
		r->st.push_bytes_sent += msg->len;
	}
out:
	free(nodes);
	free(tokens);
	free(err);
}

/*
 * Start the next push of each member in idx[0..n) that has none in flight and something
 * queued. Members whose next message has the same bytes (after a flush, every member that
 * was idle) get it in one send_many: one seal for all of them.
 */
static void push_start(struct repl *r, const uint32_t *idx, size_t n)
{
	struct msg **msgs = calloc(n, sizeof(*msgs));
	uint32_t *group = malloc(n * sizeof(*group));

	if (!msgs || !group) {
		free(msgs);
		free(group);
		for (size_t i = 0; i < n; i++)
			push_next(r, idx[i]);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct rmember *m = &r->m[idx[i]];

		if (!m->push_inflight && m->qlen)
			msgs[i] = queue_take(r, m);
	}
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		if (!msgs[i])
			continue;
		for (size_t j = i; j < n; j++) {
			struct msg *a = msgs[i], *b = msgs[j];

			if (b && (a == b || (a->len == b->len && !memcmp(a->p, b->p, a->len)))) {
				group[k++] = idx[j];
				if (j > i) {
					msg_unref(b);
					msgs[j] = NULL;
				}
			}
		}
		push_send(r, msgs[i], group, k);
		msg_unref(msgs[i]);
	}
	free(msgs);
	free(group);
}

static void push_next(struct repl *r, uint32_t idx)
{
	struct rmember *m = &r->m[idx];
	struct msg *msg;

	if (m->push_inflight || !m->qlen)
		return;
	msg = queue_take(r, m);
	push_send(r, msg, &idx, 1);
	msg_unref(msg);
}

struct chunker {
	struct repl *r;
	struct repl_buf b;
	uint32_t count;
	uint64_t round;
	struct msg **out;
	size_t nout, cap;
	size_t regs;
	int err;
};

static void chunk_start(struct chunker *c)
{
	rbuf_init(&c->b, REPL_MSG_PUSH, 0);
	rbuf_varint(&c->b, c->round);
	c->count = 0;
}

static int chunk_end(struct chunker *c, uint8_t flags)
{
	struct msg *m;
	uint8_t *p;
	size_t len;

	rbuf_set_count(&c->b, c->count);
	rbuf_set_flags(&c->b, flags);
	if (rbuf_take(&c->b, &p, &len) < 0)
		return -ENOMEM;
	m = malloc(sizeof(*m));
	if (!m) {
		free(p);
		return -ENOMEM;
	}
	m->refs = 1;
	m->len = len;
	m->p = p;
	if (grow(&c->out, c->nout, &c->cap, sizeof(*c->out), 4) < 0) {
		msg_unref(m);
		return -ENOMEM;
	}
	c->out[c->nout++] = m;
	return 0;
}

static int chunk_key(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct chunker *c = ud;

	rbuf_key(&c->b, spec, status);
	c->count++;
	c->regs += status ? 2 : 1;
	if (c->b.len >= c->r->cfg.push_max_bytes) {
		c->err = chunk_end(c, 0);
		if (c->err < 0)
			return c->err;
		chunk_start(c);
	}
	return 0;
}

static void chunker_free(struct chunker *c)
{
	rbuf_free(&c->b);
	for (size_t i = 0; i < c->nout; i++)
		msg_unref(c->out[i]);
	free(c->out);
}

static void flush(struct repl *r)
{
	struct chunker c = {.r = r};
	uint32_t *idx;
	size_t live = 0;

	r->flush_at = 0;
	r->flushed_at = now_ms(r);
	for (size_t i = 0; i < r->nm; i++)
		live += member_live(&r->m[i]);
	if (!live || !r->ndirty) {
		dirty_clear(r);
		return;
	}
	chunk_start(&c);
	for (struct dkey *k = r->dhead; k; k = k->next) {
		int e = store_reg_get(r->s, k->resource, k->ns, k->name, chunk_key, &c);

		if (e < 0 && e != -ENOENT)
			break;
	}
	dirty_clear(r);
	if (c.count && chunk_end(&c, 0) < 0) {
		chunker_free(&c);
		return;
	}
	r->st.push_regs_sent += c.regs * live;
	idx = malloc(live * sizeof(*idx));
	live = 0;
	for (size_t i = 0; i < r->nm; i++) {
		if (!member_live(&r->m[i]))
			continue;
		for (size_t j = 0; j < c.nout; j++)
			queue_add(&r->m[i], c.out[j]);
		if (idx)
			idx[live++] = (uint32_t)i;
		else
			push_next(r, (uint32_t)i);
	}
	if (idx)
		push_start(r, idx, live);
	free(idx);
	chunker_free(&c);
}

static void push_reply(struct repl *r, uint64_t token, const uint8_t *reply, ssize_t len)
{
	uint32_t idx = TOKEN_IDX(token);
	struct rmember *m;

	if (idx >= r->nm)
		return;
	m = &r->m[idx];
	if (!m->push_inflight || TOKEN_GEN(token) != (m->push_gen & 0xffffff))
		return;
	m->push_inflight = false;
	if (len < 0) {
		r->st.push_failures++;
		queue_drop(m);
		return;
	}
	push_next(r, idx);
}

/* ---------- watermarks (sched/repl_wm.h) ---------- */

/* This node's floor: it holds Y(floor) of every member Y of its set (an unknown one: 0). */
static uint64_t own_floor(struct repl *r, uint64_t now)
{
	uint64_t f = now;

	for (size_t i = 0; i < r->nm; i++) {
		const struct repl_wm_entry *e;

		if (r->m[i].st == REPL_MEMBER_LEFT)
			continue;
		e = repl_wm_at(r->wm, r->m[i].wslot);
		if (!e || e->t < f)
			f = e ? e->t : 0;
	}
	return f;
}

/* Append this node's watermark section: its own entry and its members' (sent in DIGESTS and
 * DIGESTS_REPLY; the peer applies it if the round completes). */
static void wm_put(struct repl *r, struct repl_buf *b)
{
	uint64_t now = now_ms(r);
	_cleanup_free_ int *slots = calloc(r->nm + 1, sizeof(*slots));
	size_t n = 0;

	if (!slots)
		return; /* no section: the peer learns nothing from this round */
	for (size_t i = 0; i < r->nm; i++)
		if (r->m[i].st != REPL_MEMBER_LEFT && r->m[i].wslot >= 0)
			slots[n++] = r->m[i].wslot;
	repl_wm_put(r->wm, b, r->self, now, own_floor(r, now), r->set_sd, slots, n);
}

/* Keep a copy of a received section (the rest of the message) until its round completes. */
static void vec_keep(uint8_t **vp, size_t *lenp, const struct repl_rd *rd)
{
	size_t len = rd->bad || rd->p >= rd->end ? 0 : (size_t)(rd->end - rd->p);

	free(*vp);
	*vp = NULL;
	*lenp = 0;
	if (len && (*vp = malloc(len))) {
		memcpy(*vp, rd->p, len);
		*lenp = len;
	}
}

static void vec_apply(struct repl *r, uint8_t **vp, size_t *lenp)
{
	if (*vp)
		repl_wm_apply(r->wm, r->self, *vp, *lenp);
	free(*vp);
	*vp = NULL;
	*lenp = 0;
}

/* ---------- anti-entropy: the initiator ---------- */

static void round_free(struct round *rd)
{
	for (size_t i = 0; i < rd->ndiff; i++)
		free(rd->diff[i].resource);
	for (size_t i = 0; i < rd->nwant; i++) {
		free(rd->want[i].resource);
		free(rd->want[i].ns);
		free(rd->want[i].name);
	}
	free(rd->diff);
	free(rd->want);
	free(rd->peer_vec);
	*rd = (struct round){0};
}

static void round_end(struct repl *r, bool ok)
{
	struct round *rd = &r->round;

	if (!rd->active)
		return;
	if (ok) {
		r->st.rounds_completed++;
		if (rd->member < r->nm)
			r->m[rd->member].last_round = rd->start;
		/* we hold the peer's state of when it answered, and what it held then */
		vec_apply(r, &rd->peer_vec, &rd->peer_vec_len);
		if (r->pull) {
			r->pull = false;
			for (size_t i = 0; i < r->nm; i++)
				r->m[i].refused_pull = false;
		}
	} else
		r->st.rounds_failed++;
	round_free(rd);
}

static int round_send(struct repl *r, struct repl_buf *b, int step)
{
	struct round *rd = &r->round;
	uint8_t *p;
	size_t len;
	int e;

	e = rbuf_take(b, &p, &len);
	if (e < 0)
		return e;
	rd->step = step;
	rd->seq = ++r->round_seq;
	if (step == REPL_MSG_KEYS)
		rd->kq[rd->nkq - 1].seq = rd->seq;
	rd->deadline = now_ms(r) + 2ull * r->cfg.request_timeout_ms;
	r->st.ae_bytes_sent += len;
	e = r->env.send(r->env.ud, r->m[rd->member].name, p, len,
			TOKEN(rd->seq & 0xffffff, KIND_ROUND, rd->member));
	free(p);
	wake(r, rd->deadline);
	return e;
}

static int round_start(struct repl *r, uint32_t idx)
{
	struct round *rd = &r->round;
	struct repl_buf b;
	size_t n = store_resource_count(r->s);
	uint64_t c0 = cpu_now(r);
	int e = 0;

	if (rd->active)
		return -EBUSY;
	*rd = (struct round){.active = true, .member = idx, .start = now_ms(r)};
	rd->id = rand64(r) | 1;
	r->m[idx].want_sync = false;
	r->st.rounds_started++;
	rbuf_init(&b, REPL_MSG_DIGESTS, 0);
	rbuf_varint(&b, rd->id);
	for (size_t i = 0; i < n; i++) {
		const char *res = store_resource_name(r->s, i);

		rbuf_str(&b, res);
		rbuf_u64(&b, store_digest(r->s, res, 0, STORE_DIGEST_BUCKETS));
	}
	rbuf_set_count(&b, (uint32_t)n);
	wm_put(r, &b);
	if (round_send(r, &b, REPL_MSG_DIGESTS) < 0) {
		round_end(r, false);
		e = -EIO;
	}
	ae_cpu_add(r, c0);
	return e;
}

int repl_sync(struct repl *r, const char *node)
{
	uint32_t idx;
	struct rmember *m = member_find(r, node, &idx);

	if (!m || !member_live(m))
		return -ENOENT;
	return round_start(r, idx);
}

struct keys_list {
	struct repl_buf *b;
	size_t n;
};

static int list_key_hash(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct keys_list *kl = ud;

	rbuf_str(kl->b, spec->ns);
	rbuf_str(kl->b, spec->name);
	rbuf_u64(kl->b, repl_key_hash(spec, status));
	kl->n++;
	return 0;
}

/* Step 2: a KEYS request for the keys of the next differing buckets. */
static int round_keys(struct repl *r)
{
	struct round *rd = &r->round;
	struct repl_buf b;
	uint32_t n = 0;
	size_t start = rd->cursor;

	rbuf_init(&b, REPL_MSG_KEYS, 0);
	rbuf_varint(&b, rd->id);
	for (size_t i = rd->cursor; i < rd->ndiff && n < KEYS_BUCKETS_MAX; i++) {
		struct repl_buf kb;
		struct keys_list kl = {.b = &kb};
		int e;

		if (n && b.len >= r->cfg.push_max_bytes)
			break;
		/* the keys go into a scratch buffer first: their count precedes them */
		kb = (struct repl_buf){0};
		e = store_reg_list(r->s, rd->diff[i].resource, rd->diff[i].bucket,
				   rd->diff[i].bucket + 1, list_key_hash, &kl);
		if (e < 0 || kb.oom) {
			rbuf_free(&kb);
			rbuf_free(&b);
			return e < 0 ? e : -ENOMEM;
		}
		rbuf_str(&b, rd->diff[i].resource);
		rbuf_varint(&b, rd->diff[i].bucket);
		rbuf_varint(&b, kl.n);
		rbuf_raw(&b, kb.p, kb.len);
		rbuf_free(&kb);
		n++;
	}
	rbuf_set_count(&b, n);
	rd->cursor += n;
	rd->kq[rd->nkq++] = (struct kreq){.start = start, .n = n};
	return round_send(r, &b, REPL_MSG_KEYS);
}

static int round_final(struct repl *r);

/*
 * Keep up to KEYS_INFLIGHT KEYS requests in flight while buckets remain and our merge queue
 * keeps up; once every bucket was answered, the keys the peer wants (step 3).
 */
static int round_keys_fill(struct repl *r)
{
	struct round *rd = &r->round;

	while (rd->nkq < KEYS_INFLIGHT && rd->cursor < rd->ndiff &&
	       (r->pend_regs < PEND_PIPELINE_MAX || !rd->nkq)) {
		int e = round_keys(r);

		if (e < 0)
			return e;
	}
	if (!rd->nkq && rd->cursor >= rd->ndiff)
		return round_final(r);
	return 0;
}

static int enc_key(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct keys_list *kl = ud;

	rbuf_key(kl->b, spec, status);
	kl->n++;
	return 0;
}

#define STEP_FINAL (REPL_MSG_PUSH | 0x100)

/* Step 3: the keys the peer wants, one message at a time, the last flagged FINAL. */
static int round_final(struct repl *r)
{
	struct round *rd = &r->round;
	struct repl_buf b;
	struct keys_list kl = {.b = &b};
	bool last;

	rbuf_init(&b, REPL_MSG_PUSH, 0);
	rbuf_varint(&b, rd->id);
	/* pulling: we hold possibly stale objects, the peer must not take them */
	while (!pulling(r) && rd->wcursor < rd->nwant && b.len < r->cfg.push_max_bytes) {
		struct wkey *w = &rd->want[rd->wcursor++];
		int e = store_reg_get(r->s, w->resource, w->ns, w->name, enc_key, &kl);

		if (e < 0 && e != -ENOENT) {
			rbuf_free(&b);
			return e;
		}
	}
	last = pulling(r) || rd->wcursor >= rd->nwant;
	rbuf_set_count(&b, (uint32_t)kl.n);
	rbuf_set_flags(&b, last ? REPL_F_FINAL | (pulling(r) ? REPL_F_PULL : 0) : 0);
	return round_send(r, &b, last ? STEP_FINAL : REPL_MSG_PUSH);
}

static int round_on_digests(struct repl *r, struct repl_rd *rd_, uint32_t count)
{
	struct round *rd = &r->round;

	for (uint32_t i = 0; i < count; i++) {
		const char *res = rrd_str(rd_);

		for (uint32_t b = 0; b < STORE_DIGEST_BUCKETS; b++) {
			uint64_t d = rrd_u64(rd_);

			if (rd_->bad)
				return -EBADMSG;
			if (d == store_digest(r->s, res, b, b + 1))
				continue;
			if (grow(&rd->diff, rd->ndiff, &rd->dcap, sizeof(*rd->diff), 64) < 0)
				return -ENOMEM;
			rd->diff[rd->ndiff].resource = strdup(res);
			if (!rd->diff[rd->ndiff].resource)
				return -ENOMEM;
			rd->diff[rd->ndiff++].bucket = b;
			r->st.digest_mismatches++;
			/* a bucket's digest is the xor of its keys': 0 when empty */
			rd->nbehind += !store_digest(r->s, res, b, b + 1);
		}
	}
	vec_keep(&rd->peer_vec, &rd->peer_vec_len, rd_);
	return 0;
}

/*
 * Pulling after an absence past the horizon: a key the peer lacks altogether and that we last
 * wrote before the horizon was deleted (and its tombstone collected) while we were away, or is
 * ours from before: it is dropped here (a local tombstone), never pushed back.
 */
struct drops {
	struct regv rv;
	char **strs;
	size_t nstrs;
};

static int drop_key(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct repl *r = ud;
	struct drops *d = r->cur_drops;
	uint64_t now = now_ms(r);
	struct store_reg t;
	char *s[5];

	if (spec->tombstone || HLC_PHYS(spec->hlc) + r->cfg.tombstone_horizon_ms >= now)
		return 0;
	s[0] = strdup(spec->resource);
	s[1] = strdup(spec->ns);
	s[2] = strdup(spec->name);
	s[3] = strdup(spec->uid);
	s[4] = strdup(r->self);
	char **nv = reallocarray(d->strs, d->nstrs + 5, sizeof(*nv));
	if (!nv || !s[0] || !s[1] || !s[2] || !s[3] || !s[4]) {
		for (int i = 0; i < 5; i++)
			free(s[i]);
		if (nv)
			d->strs = nv;
		return 0;
	}
	d->strs = nv;
	memcpy(d->strs + d->nstrs, s, sizeof(s));
	d->nstrs += 5;
	t = (struct store_reg){
	    .kind = STORE_REG_SPEC,
	    .resource = s[0],
	    .ns = s[1],
	    .name = s[2],
	    .uid = s[3],
	    .born = spec->born,
	    .hlc = spec->hlc,
	    .node = s[4],
	    .tombstone = true,
	};
	regv_add(&d->rv, &t);
	return 0;
}

static void drops_add(struct repl *r, struct drops *d, const char *res, const char *ns,
		      const char *name)
{
	r->cur_drops = d;
	store_reg_get(r->s, res, ns, name, drop_key, r);
	r->cur_drops = NULL;
}

static void drops_apply(struct repl *r, struct drops *d)
{
	size_t n = merge(r, d->rv.v, d->rv.n, false);

	r->st.pull_dropped += n;
}

static void drops_free(struct drops *d)
{
	for (size_t i = 0; i < d->nstrs; i++)
		free(d->strs[i]);
	free(d->strs);
	free(d->rv.v);
}

/* Buckets diff[from, from + n) go again at the end (a KEYS reply covered fewer). */
static int diff_requeue(struct round *rd, size_t from, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (grow(&rd->diff, rd->ndiff, &rd->dcap, sizeof(*rd->diff), 64) < 0)
			return -ENOMEM;
		rd->diff[rd->ndiff].resource = strdup(rd->diff[from + i].resource);
		if (!rd->diff[rd->ndiff].resource)
			return -ENOMEM;
		rd->diff[rd->ndiff].bucket = rd->diff[from + i].bucket;
		rd->ndiff++;
	}
	return 0;
}

/* Merge rv now if small and nothing waits, else queue it (msg: the message it points into). */
static int merge_or_queue(struct repl *r, const uint8_t *msg, size_t len, struct regv *rv,
			  bool repair, struct pend **queued)
{
	if (queued)
		*queued = NULL;
	if (pend_empty(r) && rv->n <= MERGE_NOW_MAX) {
		size_t applied = merge(r, rv->v, rv->n, false);

		if (repair)
			r->st.repairs += applied;
		return 0;
	}
	struct pend *p = pend_add(r, msg, len, rv, repair);

	if (!p)
		return -ENOBUFS;
	if (queued)
		*queued = p;
	return 0;
}

static int round_on_keys(struct repl *r, struct repl_rd *rd_, uint32_t count, size_t kqi,
			 const uint8_t *msg, size_t len)
{
	struct round *rd = &r->round;
	struct regv rv = {0};
	struct drops drops = {0};
	uint64_t covered = rrd_varint(rd_), nwant;
	struct kreq kq = rd->kq[kqi];
	int e;

	memmove(rd->kq + kqi, rd->kq + kqi + 1, (rd->nkq - kqi - 1) * sizeof(*rd->kq));
	rd->nkq--;

	e = read_keys(rd_, count, &rv);
	nwant = rrd_varint(rd_);
	if (e >= 0 && rd_->bad)
		e = -EBADMSG;
	for (uint64_t i = 0; e >= 0 && i < nwant; i++) {
		const char *res = rrd_str(rd_), *ns = rrd_str(rd_), *name = rrd_str(rd_);
		uint8_t wf = rrd_u8(rd_);

		if (rd_->bad) {
			e = -EBADMSG;
			break;
		}
		if (r->pull && (wf & REPL_WANT_LACKED)) {
			drops_add(r, &drops, res, ns, name);
			continue;
		}
		if (grow(&rd->want, rd->nwant, &rd->wcap, sizeof(*rd->want), 64) < 0) {
			e = -ENOMEM;
			break;
		}
		rd->want[rd->nwant] = (struct wkey){strdup(res), strdup(ns), strdup(name)};
		rd->nwant++;
	}
	if (e >= 0 && (covered == 0 || covered > kq.n))
		e = -EBADMSG;
	if (e >= 0) {
		e = merge_or_queue(r, msg, len, &rv, true, NULL);
		if (e >= 0 && r->phead)
			rd->need_seq = r->pend_seq;
		drops_apply(r, &drops);
	}
	if (e >= 0 && covered < kq.n)
		e = diff_requeue(rd, kq.start + covered, kq.n - covered);
	drops_free(&drops);
	free(rv.v);
	return e;
}

/* A member refused our round: it is resyncing pull-only. If every live member is, they were
 * all away (e.g. the whole cluster was down past the horizon): nobody has fresher objects to
 * pull, so stop pulling rather than wait for each other forever. */
static void refused(struct repl *r, uint32_t idx)
{
	r->m[idx].refused_pull = true;
	if (!r->pull)
		return;
	for (size_t i = 0; i < r->nm; i++)
		if (member_live(&r->m[i]) && !r->m[i].refused_pull)
			return;
	r->pull = false;
	for (size_t i = 0; i < r->nm; i++)
		r->m[i].refused_pull = false;
}

static void round_reply(struct repl *r, uint64_t token, const uint8_t *reply, ssize_t len)
{
	struct round *rd = &r->round;
	struct repl_rd rrd;
	enum repl_msg_type type;
	uint8_t flags;
	uint32_t count;
	int e;

	size_t kqi = 0;

	if (!rd->active || TOKEN_IDX(token) != rd->member)
		return;
	if (rd->step == REPL_MSG_KEYS) {
		while (kqi < rd->nkq && TOKEN_GEN(token) != (rd->kq[kqi].seq & 0xffffff))
			kqi++;
		if (kqi == rd->nkq)
			return;
	} else if (TOKEN_GEN(token) != (rd->seq & 0xffffff))
		return;
	if (len < 0)
		return round_end(r, false);
	r->st.ae_bytes_received += (uint64_t)len;
	e = rrd_init(&rrd, reply, (size_t)len, &type, &flags, &count);
	if (e >= 0 && type == REPL_MSG_REFUSE) {
		refused(r, rd->member);
		return round_end(r, false);
	}
	if (e >= 0 && type == REPL_MSG_BUSY) {
		r->st.rounds_busy++;
		return round_end(r, false);
	}
	if (e < 0)
		return round_end(r, false);
	switch (rd->step) {
	case REPL_MSG_DIGESTS:
		if (type != REPL_MSG_DIGESTS_REPLY || round_on_digests(r, &rrd, count) < 0)
			return round_end(r, false);
		if (!rd->ndiff)
			return round_end(r, true); /* equal: the peer noted it too */
		rd->step = REPL_MSG_KEYS;
		e = round_keys_fill(r);
		break;
	case REPL_MSG_KEYS:
		if (type != REPL_MSG_KEYS_REPLY ||
		    round_on_keys(r, &rrd, count, kqi, reply, (size_t)len) < 0)
			return round_end(r, false);
		e = round_keys_fill(r);
		break;
	case REPL_MSG_PUSH:
		if (type != REPL_MSG_PUSH_ACK)
			return round_end(r, false);
		e = round_final(r);
		break;
	case STEP_FINAL:
		if (type != REPL_MSG_PUSH_ACK)
			return round_end(r, false);
		/* complete once what the round brought is merged here */
		if (r->merged_seq < rd->need_seq) {
			rd->draining = true;
			return;
		}
		return round_end(r, true);
	default:
		return round_end(r, false);
	}
	if (e < 0)
		round_end(r, false);
}

void repl_reply(struct repl *r, uint64_t token, const uint8_t *reply, ssize_t len)
{
	if (!r)
		return;
	if (TOKEN_KIND(token) == KIND_PUSH)
		push_reply(r, token, reply, len);
	else if (TOKEN_KIND(token) == KIND_ROUND) {
		uint64_t c0 = cpu_now(r);

		round_reply(r, token, reply, len);
		ae_cpu_add(r, c0);
	}
	wake(r, repl_next_tick(r));
}

/* ---------- serving ---------- */

/* A round `member` started with us completed here: we hold its state of when it began the
 * round, and what it held then (its watermark section). */
static void serve_final_done(struct repl *r, const char *member, uint64_t start, uint8_t **vec,
			     size_t *vec_len)
{
	struct rmember *m = member ? member_find(r, member, NULL) : NULL;

	if (m && start > m->last_round)
		m->last_round = start;
	vec_apply(r, vec, vec_len);
}

/*
 * A PUSH: merged at once if small and nothing waits, else queued (the ACK then counts
 * nothing applied yet). The final PUSH of a round the sender started completes the round
 * here once merged.
 */
static int serve_push(struct repl *r, struct rmember *m, struct repl_rd *rd, uint8_t flags,
		      uint32_t count, const uint8_t *msg, size_t len, struct repl_buf *out)
{
	struct regv rv = {0};
	uint64_t round = rrd_varint(rd);
	uint64_t before = r->st.applied, stale = r->st.stale, later = r->st.later,
		 refused = r->st.refused;
	bool final = round && (flags & REPL_F_FINAL) && m && round == m->serve_round;
	struct pend *q;
	int e;

	e = read_keys(rd, count, &rv);
	if (e >= 0)
		e = merge_or_queue(r, msg, len, &rv, round != 0, &q);
	free(rv.v);
	if (e < 0)
		return e;
	if (final) {
		m->serve_round = 0;
		if (flags & REPL_F_PULL) {
			/* the sender sent nothing: not caught up with us */
			free(m->serve_vec);
			m->serve_vec = NULL;
			m->serve_vec_len = 0;
		} else if (!q)
			serve_final_done(r, m->name, m->serve_start, &m->serve_vec,
					 &m->serve_vec_len);
		else {
			q->final = true;
			q->final_start = m->serve_start;
			q->final_member = strdup(m->name);
			q->final_vec = TAKE_PTR(m->serve_vec);
			q->final_vec_len = m->serve_vec_len;
			m->serve_vec_len = 0;
		}
	}
	if (!round)
		r->st.pushes_received++;
	rbuf_init(out, REPL_MSG_PUSH_ACK, 0);
	rbuf_varint(out, r->st.applied - before);
	rbuf_varint(out, r->st.stale - stale);
	rbuf_varint(out, r->st.later - later);
	rbuf_varint(out, r->st.refused - refused);
	return 0;
}

/* ---------- binding confirmation ---------- */

/*
 * CONFIRM: merge the sender's registers of the keys now — not through the merge queue, whose
 * older pushes may wait: the merge is a join, so order does not matter — then answer with ours
 * of each key, which now hold the earlier of the two bindings.
 */
static int serve_confirm(struct repl *r, struct repl_rd *rd, uint32_t count, struct repl_buf *out)
{
	struct regv rv = {0};
	struct keys_list kl = {.b = out};
	char **keys = NULL; /* resource, ns, name of each spec register: the message is reused */
	size_t nkeys = 0;
	int e;

	if (!count || count > REPL_CONFIRM_MAX)
		return -EBADMSG;
	e = read_keys(rd, count, &rv);
	if (e >= 0 && !(keys = calloc(rv.n * 3, sizeof(*keys))))
		e = -ENOMEM;
	for (size_t i = 0; e >= 0 && i < rv.n; i++) {
		if (rv.v[i].kind != STORE_REG_SPEC)
			continue;
		keys[3 * nkeys] = strdup(rv.v[i].resource);
		keys[3 * nkeys + 1] = strdup(rv.v[i].ns);
		keys[3 * nkeys + 2] = strdup(rv.v[i].name);
		nkeys++;
		if (!keys[3 * nkeys - 3] || !keys[3 * nkeys - 2] || !keys[3 * nkeys - 1])
			e = -ENOMEM;
	}
	if (e >= 0)
		merge(r, rv.v, rv.n, false);
	free(rv.v);
	if (e >= 0) {
		rbuf_init(out, REPL_MSG_CONFIRM_REPLY, 0);
		for (size_t k = 0; k < nkeys && e >= 0; k++) {
			e = store_reg_get(r->s, keys[3 * k], keys[3 * k + 1], keys[3 * k + 2],
					  enc_key, &kl);
			if (e == -ENOENT)
				e = 0;
		}
		rbuf_set_count(out, (uint32_t)kl.n);
	}
	for (size_t k = 0; k < 3 * nkeys; k++)
		free(keys[k]);
	free(keys);
	return e;
}

int repl_confirm_request(struct repl *r, const char *resource, const char *const *ns,
			 const char *const *names, size_t n, uint8_t **ret, size_t *ret_len)
{
	struct repl_buf b;
	struct keys_list kl = {.b = &b};
	int e = 0;

	if (!n || n > REPL_CONFIRM_MAX)
		return -EINVAL;
	rbuf_init(&b, REPL_MSG_CONFIRM, 0);
	for (size_t i = 0; i < n && e >= 0; i++) {
		e = store_reg_get(r->s, resource, ns[i], names[i], enc_key, &kl);
		if (e == -ENOENT)
			e = 0;
	}
	if (e >= 0 && !kl.n)
		e = -ENOENT;
	if (e < 0) {
		rbuf_free(&b);
		return e;
	}
	rbuf_set_count(&b, (uint32_t)kl.n);
	return rbuf_take(&b, ret, ret_len);
}

int repl_confirm_reply(struct repl *r, const uint8_t *reply, size_t len,
		       void (*fn)(void *ud, const char *uid, const char *bound), void *ud)
{
	struct repl_rd rd;
	enum repl_msg_type type;
	uint8_t flags;
	uint32_t count;
	struct regv rv = {0};
	char **uids = NULL, **bound = NULL;
	size_t n = 0;
	int e;

	e = rrd_init(&rd, reply, len, &type, &flags, &count);
	if (e < 0)
		return e;
	if (type != REPL_MSG_CONFIRM_REPLY || count > REPL_CONFIRM_MAX)
		return -EBADMSG;
	e = read_keys(&rd, count, &rv);
	if (e >= 0 && rv.n &&
	    (!(uids = calloc(rv.n, sizeof(*uids))) || !(bound = calloc(rv.n, sizeof(*bound)))))
		e = -ENOMEM;
	/* what each spec register binds its uid to; fn runs after the merge, so the caller's
	 * store already shows a winning binding when it hears of it */
	for (size_t i = 0; e >= 0 && i < rv.n; i++) {
		const struct store_reg *g = &rv.v[i];
		_cleanup_json_ cJSON *st = NULL;
		const char *v;

		if (g->kind != STORE_REG_SPEC || g->tombstone || !g->uid)
			continue;
		st = g->sticky ? cJSON_Parse(g->sticky) : NULL;
		v = cJSON_GetStringValue(
		    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "bind"), 2));
		uids[n] = strdup(g->uid);
		bound[n] = v ? strdup(v) : NULL;
		if (!uids[n] || (v && !bound[n]))
			e = -ENOMEM;
		n++;
	}
	/* the answerer's registers teach this node the winning bindings at once */
	if (e >= 0 && rv.n)
		merge(r, rv.v, rv.n, false);
	free(rv.v);
	for (size_t i = 0; i < n; i++) {
		if (e >= 0 && uids[i])
			fn(ud, uids[i], bound[i]);
		free(uids[i]);
		free(bound[i]);
	}
	free(uids);
	free(bound);
	return e;
}

static bool in_request(const char **names, size_t n, const char *res)
{
	for (size_t i = 0; i < n; i++)
		if (streq(names[i], res))
			return true;
	return false;
}

static void put_buckets(struct repl *r, struct repl_buf *out, const char *res)
{
	rbuf_str(out, res);
	for (uint32_t b = 0; b < STORE_DIGEST_BUCKETS; b++)
		rbuf_u64(out, store_digest(r->s, res, b, b + 1));
}

static int serve_digests(struct repl *r, struct rmember *m, struct repl_rd *rd, uint32_t count,
			 struct repl_buf *out)
{
	uint64_t round = rrd_varint(rd);
	_cleanup_free_ const char **names = calloc(count + 1, sizeof(*names));
	uint32_t n = 0;
	size_t nres = store_resource_count(r->s);

	if (!names)
		return -ENOMEM;
	rbuf_init(out, REPL_MSG_DIGESTS_REPLY, 0);
	for (uint32_t i = 0; i < count; i++) {
		const char *res = rrd_str(rd);
		uint64_t d = rrd_u64(rd);

		if (rd->bad)
			return -EBADMSG;
		names[i] = res;
		if (d != store_digest(r->s, res, 0, STORE_DIGEST_BUCKETS)) {
			put_buckets(r, out, res);
			n++;
		}
	}
	for (size_t i = 0; i < nres; i++) {
		const char *res = store_resource_name(r->s, i);

		if (!in_request(names, count, res) &&
		    store_digest(r->s, res, 0, STORE_DIGEST_BUCKETS)) {
			put_buckets(r, out, res);
			n++;
		}
	}
	rbuf_set_count(out, n);
	wm_put(r, out);
	r->st.rounds_served++;
	if (m) {
		m->serve_round = round;
		m->serve_start = now_ms(r);
		vec_keep(&m->serve_vec, &m->serve_vec_len, rd);
		if (!n) {
			/* equal: the round is complete */
			serve_final_done(r, m->name, m->serve_start, &m->serve_vec,
					 &m->serve_vec_len);
			m->serve_round = 0;
		}
	}
	return 0;
}

struct theirs {
	const char *ns, *name;
	uint64_t hash;
	bool seen;
};

static int theirs_cmp(const void *a, const void *b)
{
	const struct theirs *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

struct serve_keys {
	struct repl_buf *out;
	uint32_t count;
	struct theirs *t;
	size_t nt;
	struct repl_buf *want;
	uint64_t nwant;
	const char *resource;
};

static void want_add(struct serve_keys *sk, const char *ns, const char *name, uint8_t flags)
{
	rbuf_str(sk->want, sk->resource);
	rbuf_str(sk->want, ns);
	rbuf_str(sk->want, name);
	rbuf_u8(sk->want, flags);
	sk->nwant++;
}

static int serve_key(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct serve_keys *sk = ud;
	struct theirs key = {.ns = spec->ns, .name = spec->name}, *t;

	t = sk->nt ? bsearch(&key, sk->t, sk->nt, sizeof(*t), theirs_cmp) : NULL;
	if (t) {
		t->seen = true;
		if (t->hash == repl_key_hash(spec, status))
			return 0;
		want_add(sk, spec->ns, spec->name, 0); /* theirs may be newer */
	}
	rbuf_key(sk->out, spec, status);
	sk->count++;
	return 0;
}

static int serve_keys(struct repl *r, struct repl_rd *rd, uint32_t count, struct repl_buf *out)
{
	struct repl_buf want = {0};
	struct serve_keys sk = {.out = out, .want = &want};
	uint64_t covered = 0;
	int e = 0;

	rrd_varint(rd); /* round */
	rbuf_init(out, REPL_MSG_KEYS_REPLY, 0);
	/* covered goes first: reserve a fixed 5-byte varint and patch it */
	size_t cov_at = out->len;
	for (int i = 0; i < 5; i++)
		rbuf_u8(out, 0x80);
	for (uint32_t i = 0; i < count; i++) {
		const char *res = rrd_str(rd);
		uint64_t bucket = rrd_varint(rd), nk = rrd_varint(rd);

		if (rd->bad || bucket >= STORE_DIGEST_BUCKETS || nk > (uint64_t)(rd->end - rd->p)) {
			e = -EBADMSG;
			break;
		}
		sk.t = reallocarray(NULL, nk + 1, sizeof(*sk.t));
		if (!sk.t) {
			e = -ENOMEM;
			break;
		}
		sk.nt = nk;
		for (uint64_t j = 0; j < nk; j++)
			sk.t[j] = (struct theirs){rrd_str(rd), rrd_str(rd), rrd_u64(rd), false};
		if (rd->bad) {
			free(sk.t);
			e = -EBADMSG;
			break;
		}
		qsort(sk.t, sk.nt, sizeof(*sk.t), theirs_cmp);
		sk.resource = res;
		e = store_reg_list(r->s, res, (uint32_t)bucket, (uint32_t)bucket + 1, serve_key,
				   &sk);
		for (size_t j = 0; e >= 0 && j < sk.nt; j++)
			if (!sk.t[j].seen)
				want_add(&sk, sk.t[j].ns, sk.t[j].name, REPL_WANT_LACKED);
		free(sk.t);
		sk.t = NULL;
		if (e < 0)
			break;
		covered++;
		if (out->len + want.len >= KEYS_REPLY_SOFT_MAX)
			break;
	}
	if (e >= 0 && !out->oom) {
		uint64_t v = covered;

		for (int i = 0; i < 5; i++) {
			out->p[cov_at + (size_t)i] = (uint8_t)((v & 0x7f) | (i < 4 ? 0x80 : 0));
			v >>= 7;
		}
		rbuf_varint(out, sk.nwant);
		rbuf_raw(out, want.p, want.len);
		rbuf_set_count(out, sk.count);
	}
	rbuf_free(&want);
	return e;
}

static bool catching_up(const struct repl *r)
{
	return r->pend_regs >= PEND_PIPELINE_MAX ||
	       (r->round.active && r->round.nbehind >= BUSY_BEHIND_BUCKETS);
}

/*
 * Whether to answer BUSY to round `round` that member m started (its DIGESTS or a KEYS): while
 * catching up, rounds others start would only send us what we are pulling already. Checked on
 * KEYS too, since a member learns of a new node about when the node's own round starts, before
 * it knows how far behind it is. When m is our own round's peer, both rounds are the same
 * push-pull between the two: exactly one of them is declined, the one with the lower id, so
 * two nodes catching up from each other do not fail each other's rounds forever.
 */
static bool decline_busy(const struct repl *r, const struct rmember *m, uint64_t round)
{
	if (!catching_up(r))
		return false;
	if (m && r->round.active && &r->m[r->round.member] == m)
		return r->round.id > round;
	return true;
}

/*
 * Whether we are catching up from m in our own round, past its DIGESTS (m answered them, so m
 * is not declining it): then m's round with us, whatever its id, would push us what our KEYS
 * are pulling from m already. Its PUSHes are declined; its DIGESTS and KEYS keep the id rule.
 * Should m be catching up too and decline our next KEYS, both rounds fail this once; the ids
 * are random, so one of the next two goes through.
 */
static bool pulling_from(const struct repl *r, const struct rmember *m)
{
	return catching_up(r) && r->round.active && &r->m[r->round.member] == m &&
	       r->round.step == REPL_MSG_KEYS && !r->round.draining;
}

int repl_serve(struct repl *r, const char *from, const uint8_t *req, size_t len, uint8_t **reply,
	       size_t *reply_len)
{
	struct rmember *m;
	struct repl_rd rd;
	struct repl_buf out = {0};
	enum repl_msg_type type;
	uint8_t flags;
	uint32_t count;
	uint64_t c0 = cpu_now(r);
	bool ae; /* a round's message (DIGESTS, KEYS, or a PUSH of a round) */
	int e;

	e = rrd_init(&rd, req, len, &type, &flags, &count);
	if (e < 0)
		return e;
	if (type == REPL_MSG_PUSH) {
		struct repl_rd peek = rd;

		ae = rrd_varint(&peek) != 0;
	} else
		ae = type == REPL_MSG_DIGESTS || type == REPL_MSG_KEYS;
	/* only members can seal a request: one gossip has not told us about yet is alive */
	m = member_find(r, from, NULL);
	if (!m && from && !streq(from, r->self)) {
		repl_member_set(r, from, REPL_MEMBER_ALIVE);
		m = member_find(r, from, NULL);
	}
	switch (type) {
	case REPL_MSG_PUSH: {
		struct repl_rd peek = rd;
		uint64_t round = rrd_varint(&peek);

		r->st.push_bytes_received += len;
		/* a round's pushes carry what its KEYS found missing: the whole store for a new
		 * node whose KEYS were answered before it knew it was behind */
		if (round && m && round == m->serve_round &&
		    (decline_busy(r, m, round) || pulling_from(r, m))) {
			m->serve_round = 0;
			rbuf_init(&out, REPL_MSG_BUSY, 0);
			r->st.rounds_refused_busy++;
			break;
		}
		e = serve_push(r, m, &rd, flags, count, req, len, &out);
		break;
	}
	case REPL_MSG_DIGESTS:
	case REPL_MSG_KEYS:
		r->st.ae_bytes_received += len;
		if (pulling(r)) {
			/* our objects may be stale past the horizon: nobody pulls them */
			rbuf_init(&out, REPL_MSG_REFUSE, 0);
			break;
		}
		struct repl_rd peek = rd;

		if (decline_busy(r, m, rrd_varint(&peek))) {
			rbuf_init(&out, REPL_MSG_BUSY, 0);
			r->st.rounds_refused_busy++;
			break;
		}
		e = type == REPL_MSG_DIGESTS ? serve_digests(r, m, &rd, count, &out)
					     : serve_keys(r, &rd, count, &out);
		break;
	case REPL_MSG_CONFIRM:
		r->st.push_bytes_received += len;
		e = serve_confirm(r, &rd, count, &out);
		break;
	default:
		return -EBADMSG;
	}
	if (e < 0) {
		rbuf_free(&out);
		return e;
	}
	e = rbuf_take(&out, reply, reply_len);
	if (e >= 0 && type != REPL_MSG_PUSH && type != REPL_MSG_CONFIRM)
		r->st.ae_bytes_sent += *reply_len;
	if (ae)
		ae_cpu_add(r, c0);
	wake(r, repl_next_tick(r));
	return e;
}

/* ---------- the clock ---------- */

static int pick_member(struct repl *r, uint32_t *idx)
{
	size_t alive = 0, live = 0;

	for (size_t i = 0; i < r->nm; i++) {
		if (r->m[i].want_sync && member_live(&r->m[i])) {
			*idx = (uint32_t)i;
			return 0;
		}
		alive += r->m[i].st == REPL_MEMBER_ALIVE;
		live += member_live(&r->m[i]);
	}
	if (!live)
		return -ENOENT;
	size_t k = r->env.rand32(r->env.ud) % (alive ? alive : live);
	for (size_t i = 0; i < r->nm; i++) {
		bool ok = alive ? r->m[i].st == REPL_MEMBER_ALIVE : member_live(&r->m[i]);

		if (ok && k-- == 0) {
			*idx = (uint32_t)i;
			return 0;
		}
	}
	return -ENOENT;
}

/* ---------- tombstone collection ---------- */

/* The signatures of the tombstones below each snapshot's h, in one pass over the store. */
struct gc_scan {
	const struct gc_snap *s;
	size_t q;
	uint64_t sig[GC_SNAPS];
	size_t n[GC_SNAPS];
};

static int gc_scan_key(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct gc_scan *g = ud;
	size_t j = 0;

	if (!spec->tombstone)
		return 0;
	while (j < g->q && spec->hlc >= g->s[j].h)
		j++;
	if (j < g->q) {
		g->sig[j] ^=
		    key_hash(spec->resource, spec->ns, spec->name) * 31 ^ repl_key_hash(spec, NULL);
		g->n[j]++;
	}
	return 0;
}

static int gc_scan(struct repl *r, const struct gc_snap *s, size_t q, struct gc_scan *g)
{
	int e;

	*g = (struct gc_scan){.s = s, .q = q};
	e = store_reg_list(r->s, NULL, 0, STORE_DIGEST_BUCKETS, gc_scan_key, g);
	for (size_t j = 1; j < q; j++) {
		g->sig[j] ^= g->sig[j - 1];
		g->n[j] += g->n[j - 1];
	}
	return e;
}

/*
 * Whether member m holds this node's state of `since` (our clock): a round with it completed
 * that began at or after `since`, or it reported a floor >= since over a member set equal to
 * ours (so that set held us: m held our state of its floor, which only grows).
 */
static uint64_t holds_ours_since(struct repl *r, const struct rmember *m)
{
	const struct repl_wm_entry *e = repl_wm_at(r->wm, m->wslot);
	uint64_t t = m->last_round;

	if (e && e->sd == r->set_sd && e->f > t)
		t = e->f;
	return t;
}

/* The latest T whose state of ours every non-removed member holds (dead ones too: they hold
 * tombstones back until removed); now without members. */
static uint64_t hold_floor(struct repl *r, uint64_t now)
{
	uint64_t t = now;

	for (size_t i = 0; i < r->nm; i++) {
		uint64_t x;

		if (r->m[i].st == REPL_MEMBER_LEFT)
			continue;
		x = holds_ours_since(r, &r->m[i]);
		if (x < t)
			t = x;
	}
	return t;
}

static void snaps_drop(struct repl *r, size_t k)
{
	memmove(r->snap, r->snap + k, (r->nsnap - k) * sizeof(*r->snap));
	r->nsnap -= k;
}

/* Collect the newest snapshot every member holds whose set is unchanged. */
static void gc_collect(struct repl *r, uint64_t now)
{
	uint64_t hf = hold_floor(r, now);
	struct gc_scan g;
	size_t sat = 0;

	while (sat < r->nsnap && r->snap[sat].t <= hf)
		sat++;
	if (!sat || gc_scan(r, r->snap, sat, &g) < 0)
		return;
	/* a set that changed stays changed (a tombstone that arrived or was replaced) */
	for (size_t j = sat; j-- > 0;) {
		struct gc_snap c = r->snap[j];
		int k;

		if (g.sig[j] != c.sig || g.n[j] != c.n)
			continue;
		k = store_tombstones_collect(r->s, c.h);
		if (k < 0)
			return;
		r->st.tombstones_collected += (uint64_t)k;
		if (c.h > r->gc_floor)
			r->gc_floor = c.h;
		for (size_t i = sat; i < r->nsnap; i++) {
			r->snap[i].sig ^= c.sig;
			r->snap[i].n -= c.n <= r->snap[i].n ? c.n : r->snap[i].n;
		}
		break;
	}
	snaps_drop(r, sat);
}

/* Note the tombstones older than the horizon now, unless nothing crossed it since the last. */
static void gc_snapshot(struct repl *r, uint64_t now)
{
	struct gc_snap s = {.t = now, .h = HLC_MAKE(now - r->cfg.tombstone_horizon_ms, 0)};
	struct gc_scan g;

	if (gc_scan(r, &s, 1, &g) < 0 || !g.n[0])
		return;
	s.sig = g.sig[0];
	s.n = g.n[0];
	if (r->nsnap) {
		const struct gc_snap *last = &r->snap[r->nsnap - 1];

		if (last->sig == s.sig && last->n == s.n)
			return;
	}
	if (r->nsnap == GC_SNAPS)
		r->nsnap--; /* the newest gives way: the next covers its tombstones too */
	r->snap[r->nsnap++] = s;
}

/* No round completed with anyone for longer than the horizon: the others may have collected
 * tombstones of objects we still hold, so resync pull-only. */
static void away_check(struct repl *r, uint64_t now)
{
	uint64_t newest = 0;

	if (r->pull)
		return;
	for (size_t i = 0; i < r->nm; i++)
		if (r->m[i].st != REPL_MEMBER_LEFT && r->m[i].last_round > newest)
			newest = r->m[i].last_round;
	if (newest && newest + r->cfg.tombstone_horizon_ms < now) {
		r->pull = true;
		for (size_t i = 0; i < r->nm; i++)
			r->m[i].refused_pull = false;
	}
}

static bool want_sync_any(struct repl *r)
{
	for (size_t i = 0; i < r->nm; i++)
		if (r->m[i].want_sync && member_live(&r->m[i]))
			return true;
	return false;
}

void repl_tick(struct repl *r)
{
	uint64_t now = now_ms(r);
	uint32_t idx;

	if (r->flush_at && now >= r->flush_at)
		flush(r);
	if (r->phead || (r->bulk_at && (!bulk_expecting(r) || now >= r->bulk_at + BULK_COMMIT_MS)))
		pend_run(r);
	if (r->round.active && r->round.draining && r->merged_seq >= r->round.need_seq)
		round_end(r, true);
	else if (r->round.active && r->round.step == REPL_MSG_KEYS &&
		 r->pend_regs < PEND_PIPELINE_MAX) {
		uint64_t c0 = cpu_now(r);

		if (round_keys_fill(r) < 0)
			round_end(r, false);
		ae_cpu_add(r, c0);
	}
	if (now >= r->next_gc) {
		r->next_gc = now + r->cfg.gc_interval_ms;
		away_check(r, now);
		if (!r->pull && now >= r->cfg.tombstone_horizon_ms)
			gc_snapshot(r, now);
		else
			r->nsnap = 0;
	}
	/* what members hold of ours grows with every round: looked at a few times a period */
	if (now >= r->next_collect) {
		r->next_collect = now + r->cfg.ae_interval_ms / 4 + 1;
		if (!r->pull && r->nsnap)
			gc_collect(r, now);
	}
	/* a draining round waits for our merges only: they progress every turn */
	if (r->round.active && !r->round.draining && now >= r->round.deadline)
		round_end(r, false);
	if (!r->round.active && (now >= r->next_ae || want_sync_any(r))) {
		if (now >= r->next_ae)
			r->next_ae = now + ae_jitter(r);
		if (pick_member(r, &idx) == 0)
			round_start(r, idx);
	}
	wake(r, repl_next_tick(r));
}

uint64_t repl_next_tick(struct repl *r)
{
	/*
	 * While a round runs, the next round is due only once it ended (its reply re-arms, its
	 * deadline is below): next_ae may pass meanwhile, and answering it would spin the caller.
	 */
	uint64_t t = r->round.active ? r->round.deadline : r->next_ae;

	if (r->phead || (!r->round.active && want_sync_any(r)))
		return now_ms(r);
	if (r->flush_at && r->flush_at < t)
		t = r->flush_at;
	if (r->bulk_at) {
		uint64_t c = bulk_expecting(r) ? r->bulk_at + BULK_COMMIT_MS : now_ms(r);

		if (c < t)
			t = c;
	}
	if (r->next_gc < t)
		t = r->next_gc;
	if (r->nsnap && r->next_collect < t)
		t = r->next_collect;
	return t;
}

/* ---------- setup and inspection ---------- */

int repl_new(const struct repl_config *cfg, const struct repl_env *env, struct store *s,
	     const char *self, struct repl **ret)
{
	struct repl *r;
	int e;

	if (!env || !env->now_ms || !env->rand32 || !env->send || !s || !self)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = cfg ? *cfg : (struct repl_config){0};
	if (!r->cfg.push_delay_ms)
		r->cfg.push_delay_ms = DEF_PUSH_DELAY_MS;
	if (!r->cfg.push_max_bytes)
		r->cfg.push_max_bytes = DEF_PUSH_MAX_BYTES;
	if (!r->cfg.ae_interval_ms)
		r->cfg.ae_interval_ms = DEF_AE_INTERVAL_MS;
	if (!r->cfg.request_timeout_ms)
		r->cfg.request_timeout_ms = DEF_REQUEST_TIMEOUT_MS;
	if (!r->cfg.merge_batch)
		r->cfg.merge_batch = DEF_MERGE_BATCH;
	if (!r->cfg.tombstone_horizon_ms)
		r->cfg.tombstone_horizon_ms = DEF_HORIZON_MS;
	if (!r->cfg.gc_interval_ms)
		r->cfg.gc_interval_ms = DEF_GC_INTERVAL_MS;
	r->env = *env;
	r->s = s;
	r->self = strdup(self);
	if (!r->self) {
		free(r);
		return -ENOMEM;
	}
	e = repl_wm_new(&r->wm);
	if (e >= 0)
		e = store_watch_add(s, NULL, 0, on_commit, r, &r->watch);
	if (e < 0) {
		repl_wm_free(r->wm);
		free(r->self);
		free(r);
		return e;
	}
	r->set_sd = repl_wm_name_hash(self);
	r->pull = r->cfg.pull_only;
	r->next_ae = now_ms(r) + ae_jitter(r);
	r->next_gc = now_ms(r) + r->cfg.gc_interval_ms;
	*ret = r;
	return 0;
}

struct repl *repl_free(struct repl *r)
{
	if (!r)
		return NULL;
	if (r->watch)
		store_watch_cancel(r->watch);
	dirty_clear(r);
	free(r->dtab);
	round_free(&r->round);
	pend_clear(r);
	for (size_t i = 0; i < r->nm; i++) {
		queue_drop(&r->m[i]);
		free(r->m[i].q);
		free(r->m[i].name);
		free(r->m[i].serve_vec);
	}
	repl_wm_free(r->wm);
	free(r->m);
	for (size_t i = 0; i < r->nrestored; i++)
		free(r->restored[i].name);
	free(r->restored);
	r->nlost = 0;
	free(r->lost);
	free(r->self);
	free(r);
	return NULL;
}

bool repl_caught_up(struct repl *r, const char *node, uint64_t since_ms)
{
	struct rmember *m = member_find(r, node, NULL);

	return m && m->last_round && m->last_round >= since_ms;
}

uint64_t repl_last_round(struct repl *r, const char *node)
{
	struct rmember *m = member_find(r, node, NULL);

	return m ? m->last_round : 0;
}

bool repl_pull_only(struct repl *r)
{
	return pulling(r);
}

void repl_stats_get(struct repl *r, struct repl_stats *ret)
{
	uint64_t now = now_ms(r);

	*ret = r->st;
	ret->dirty = r->ndirty;
	ret->hold_lag_ms = now - hold_floor(r, now);
	ret->tombstone_snapshots = r->nsnap;
}

/* ---------- state across restarts ---------- */

int repl_state_save(struct repl *r, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "floor %" PRIu64 "\n", r->gc_floor);
	for (size_t i = 0; i < r->nm; i++)
		if (r->m[i].st != REPL_MEMBER_LEFT && r->m[i].last_round)
			fprintf(f, "round %s %" PRIu64 "\n", r->m[i].name, r->m[i].last_round);
	for (size_t i = 0; i < r->nrestored; i++)
		fprintf(f, "round %s %" PRIu64 "\n", r->restored[i].name,
			r->restored[i].last_round);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static void restore_round(struct repl *r, const char *node, uint64_t t)
{
	struct rmember *m = member_find(r, node, NULL);
	struct restored *nv;

	if (m) {
		if (t > m->last_round)
			m->last_round = t;
		return;
	}
	for (size_t i = 0; i < r->nrestored; i++)
		if (streq(r->restored[i].name, node)) {
			if (t > r->restored[i].last_round)
				r->restored[i].last_round = t;
			return;
		}
	nv = reallocarray(r->restored, r->nrestored + 1, sizeof(*nv));
	if (!nv)
		return;
	r->restored = nv;
	nv[r->nrestored].name = strdup(node);
	nv[r->nrestored].last_round = t;
	if (nv[r->nrestored].name)
		r->nrestored++;
}

void repl_state_load(struct repl *r, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char line[512], name[256];
		uint64_t v;

		if (n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = 0;
			if (sscanf(line, "floor %" SCNu64, &v) == 1) {
				if (v > r->gc_floor)
					r->gc_floor = v;
			} else if (sscanf(line, "round %255s %" SCNu64, name, &v) == 2 && v &&
				   !streq(name, r->self))
				restore_round(r, name, v);
		}
		p += n + 1;
	}
}
