// SPDX-License-Identifier: Apache-2.0
/*
 * SWIM + Lifeguard membership (swim.h). The shape follows HashiCorp memberlist (state.go,
 * suspicion.go, awareness.go): one probe per interval over a shuffled list; at the probe
 * timeout, ping-req through k members (who nack when the target stays silent) and a TCP ping;
 * at the end of the interval, a member nobody reached becomes suspect. A suspicion expires after
 * a timeout that starts at max and shrinks towards min as independent accusers confirm it; the
 * accused refutes by announcing a higher incarnation. Every state change is a broadcast
 * piggybacked on probes and gossip rounds until sent retransmit_mult * log10(n) times.
 *
 * Why it survives loss and stalls: an accusation needs the direct probe, all k relays and the
 * TCP probe to fail; a healthy accused refutes as soon as it hears of it (the prober tells it
 * directly, and we answer accusations at once rather than on the next gossip round); and a node
 * whose own probes fail without nacks blames itself first (awareness) and stretches its
 * timeouts, so a stalled or overloaded node does not accuse healthy ones.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/swim.h"
#include "sched/swim_wire.h"

#define SUSP_MAX_FROM 16
#define MAX_PENDING 64
#define HOUSEKEEP_MS 1000

struct swim_susp {
	uint64_t start, deadline;
	uint32_t min_ms, max_ms;
	uint32_t k;	/* confirmations that bring the timeout down to min */
	uint32_t nconf; /* independent confirmations so far */
	uint32_t nfrom;
	uint64_t from[SUSP_MAX_FROM]; /* accusers' name hashes */
	bool final_probe;	      /* sent; the next expiry declares dead */
};

struct swim_node {
	struct swim_member pub;
	char name[SWIM_NAME_MAX + 1];
	uint64_t hash;
	uint8_t *meta;
	struct swim_node *hnext;
	size_t idx;
	struct swim_susp *susp;
	bool own_accusation; /* we raised the suspicion (counts against max_own_suspicions) */
};

struct swim_bcast {
	char name[SWIM_NAME_MAX + 1]; /* a newer broadcast about the same member replaces it */
	uint64_t hash;
	uint32_t transmits;
	uint64_t id;
	uint16_t len;
	uint8_t *msg; /* encoded message, header included */
};

enum pend_kind {
	PEND_TCP_PING,
	PEND_PUSHPULL,
	PEND_JOIN,
	PEND_DIGEST, /* digest push-pull: the reply has what we lack and what the peer wants */
	PEND_PUSH,   /* the entries a digest reply asked for */
};

struct swim_pending {
	uint64_t token;
	enum pend_kind kind;
	uint32_t seq;
	uint32_t attempt;
	struct swim_addr addr;
};

struct swim_relay {
	uint32_t seq;	   /* our ping to the target */
	uint32_t orig_seq; /* the requester's */
	uint64_t deadline;
	bool nack;
	struct swim_addr requester;
};

struct swim_probe {
	bool active, acked, tcp_acked, indirect_sent;
	uint32_t seq;
	char target[SWIM_NAME_MAX + 1];
	uint64_t sent, indirect_at, end;
	uint32_t expected_nacks, nacks;
};

struct swim {
	struct swim_config cfg;
	struct swim_env env;
	struct swim_node *self;
	struct swim_node **nodes;
	size_t n, cap;
	uint32_t nlive; /* alive + suspect, self included */
	struct swim_node **buckets;
	size_t nbuckets;
	size_t probe_index;
	struct swim_node **suspects;
	size_t nsusp, capsusp;
	uint32_t own_open;

	struct swim_bcast *bq;
	size_t nbq, capbq;
	uint64_t bcast_id;

	struct swim_probe probe;
	struct swim_relay *relays;
	size_t nrelays, caprelays;
	struct swim_pending pending[MAX_PENDING];
	size_t npending;
	uint64_t next_token;
	uint32_t seq;

	uint32_t awareness;
	double suspect_tokens;
	uint64_t tokens_at;

	uint64_t next_probe, next_gossip, next_pushpull, next_reconnect, next_housekeep;
	uint32_t reconnect_seq;
	uint64_t revived_since, last_heal_pushpull;
	uint32_t learned;	/* new members heard through gossip since our last push-pull */
	uint64_t last_pushpull; /* any push-pull we started */
	uint32_t revived;
	char reconnect_target[SWIM_NAME_MAX + 1];

	struct swim_addr *seeds;
	size_t nseeds;
	int join_status;
	bool join_asked;
	uint32_t join_attempt, join_outstanding;
	bool join_attempt_ok;
	uint64_t next_join;
	uint32_t join_backoff;
	uint64_t isolated_since;

	bool leaving;
	struct swim_stats st;
	uint8_t *dgram;
};

/* ---- helpers ---- */

static uint64_t now(struct swim *s)
{
	return s->env.now_ms(s->env.ud);
}

static uint32_t rnd(struct swim *s, uint32_t n)
{
	return n ? s->env.rand32(s->env.ud) % n : 0;
}

static uint64_t name_hash(const char *n)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *n; n++)
		h = (h ^ (uint8_t)*n) * 1099511628211ULL;
	return h;
}

static uint32_t scale(struct swim *s, uint32_t ms)
{
	return ms * (s->awareness + 1);
}

static void awareness_delta(struct swim *s, int d)
{
	int64_t v = (int64_t)s->awareness + d;
	int64_t max = s->cfg.awareness_max ? s->cfg.awareness_max - 1 : 0;

	s->awareness = v < 0 ? 0 : v > max ? (uint32_t)max : (uint32_t)v;
}

static void emit(struct swim *s, const struct swim_event *ev)
{
	if (s->env.on_event)
		s->env.on_event(s->env.ud, ev);
}

static void changed(struct swim *s, struct swim_node *n)
{
	if (s->env.on_change)
		s->env.on_change(s->env.ud, &n->pub);
}

/* members counted for timeouts and retransmits: alive and suspect, self included */
static uint32_t est_nodes(struct swim *s)
{
	return s->nlive ? s->nlive : 1;
}

static uint32_t retransmit_limit(struct swim *s)
{
	return s->cfg.retransmit_mult * (uint32_t)ceil(log10((double)est_nodes(s) + 1));
}

/* ---- the member table ---- */

static struct swim_node *find(const struct swim *s, const char *name)
{
	uint64_t h = name_hash(name);

	for (struct swim_node *n = s->buckets[h & (s->nbuckets - 1)]; n; n = n->hnext)
		if (n->hash == h && !strcmp(n->name, name))
			return n;
	return NULL;
}

static struct swim_node *find_hash(const struct swim *s, uint64_t h)
{
	for (struct swim_node *n = s->buckets[h & (s->nbuckets - 1)]; n; n = n->hnext)
		if (n->hash == h)
			return n;
	return NULL;
}

static int rehash(struct swim *s, size_t nb)
{
	struct swim_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		struct swim_node *n = s->nodes[i];
		n->hnext = b[n->hash & (nb - 1)];
		b[n->hash & (nb - 1)] = n;
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
	return 0;
}

static int set_meta(struct swim_node *n, const uint8_t *meta, size_t len)
{
	if (len == n->pub.meta_len && (!len || !memcmp(n->meta, meta, len)))
		return 0;
	uint8_t *m = NULL;
	if (len) {
		m = malloc(len);
		if (!m)
			return -ENOMEM;
		memcpy(m, meta, len);
	}
	free(n->meta);
	n->meta = m;
	n->pub.meta = m;
	n->pub.meta_len = len;
	return 1;
}

/* New members go to a random place in the probe order, like memberlist. */
static struct swim_node *add_node(struct swim *s, const char *name, uint64_t instance,
				  const struct swim_addr *addr)
{
	struct swim_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct swim_node **a = realloc(s->nodes, cap * sizeof(*a));
		if (!a) {
			free(n);
			return NULL;
		}
		s->nodes = a;
		s->cap = cap;
	}
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->hash = name_hash(n->name);
	n->pub.name = n->name;
	n->pub.instance = instance;
	n->pub.addr = *addr;
	n->pub.state_since_ms = now(s);
	size_t pos = rnd(s, (uint32_t)s->n + 1);
	s->nodes[s->n] = n;
	if (pos != s->n) {
		s->nodes[s->n] = s->nodes[pos];
		s->nodes[pos] = n;
	}
	s->nodes[s->n]->idx = s->n;
	n->idx = pos;
	s->n++;
	s->nlive++; /* calloc: SWIM_ALIVE */
	/* rehash links every node in s->nodes, n included; else link n alone */
	if (s->n > s->nbuckets && rehash(s, s->nbuckets * 2) == 0)
		return n;
	n->hnext = s->buckets[n->hash & (s->nbuckets - 1)];
	s->buckets[n->hash & (s->nbuckets - 1)] = n;
	return n;
}

static void susp_list_remove(struct swim *s, struct swim_node *n)
{
	for (size_t i = 0; i < s->nsusp; i++)
		if (s->suspects[i] == n) {
			s->suspects[i] = s->suspects[--s->nsusp];
			break;
		}
}

static void clear_suspicion(struct swim *s, struct swim_node *n)
{
	if (!n->susp)
		return;
	free(n->susp);
	n->susp = NULL;
	susp_list_remove(s, n);
	if (n->own_accusation) {
		n->own_accusation = false;
		s->own_open--;
	}
}

static void remove_node(struct swim *s, struct swim_node *n)
{
	struct swim_node **pp = &s->buckets[n->hash & (s->nbuckets - 1)];

	while (*pp != n)
		pp = &(*pp)->hnext;
	*pp = n->hnext;
	clear_suspicion(s, n);
	if (n->pub.state <= SWIM_SUSPECT)
		s->nlive--;
	size_t i = n->idx;
	s->nodes[i] = s->nodes[--s->n];
	s->nodes[i]->idx = i;
	free(n->meta);
	free(n);
}

static void set_state(struct swim *s, struct swim_node *n, enum swim_state st)
{
	if (n->pub.state != st) {
		s->nlive += (st <= SWIM_SUSPECT) - (n->pub.state <= SWIM_SUSPECT);
		n->pub.state = st;
		n->pub.state_since_ms = now(s);
	}
}

/* ---- broadcasts ---- */

static bool bq_before(const struct swim_bcast *x, const struct swim_bcast *y)
{
	if (x->transmits != y->transmits)
		return x->transmits < y->transmits;
	return x->id > y->id;
}

static void bq_drop(struct swim *s, size_t i)
{
	free(s->bq[i].msg);
	memmove(&s->bq[i], &s->bq[i + 1], (s->nbq - i - 1) * sizeof(s->bq[0]));
	s->nbq--;
}

static void queue_broadcast(struct swim *s, const struct swim_msg *m)
{
	uint8_t
	    buf[sizeof(struct swim_wire_hdr) + 4 + 64 + 2 * (SWIM_NAME_MAX + 1) + SWIM_META_MAX];
	struct swim_wbuf w = {.buf = buf, .cap = sizeof(buf)};

	uint64_t h = name_hash(m->name);

	for (size_t i = 0; i < s->nbq; i++)
		if (s->bq[i].hash == h && !strcmp(s->bq[i].name, m->name)) {
			bq_drop(s, i);
			break;
		}
	if (swim_wire_put(&w, m) < 0)
		return;
	if (s->nbq == s->capbq) {
		size_t cap = s->capbq ? s->capbq * 2 : 16;
		struct swim_bcast *a = realloc(s->bq, cap * sizeof(*a));
		if (!a)
			return;
		s->bq = a;
		s->capbq = cap;
	}
	uint8_t *copy = malloc(w.len);
	if (!copy)
		return;
	memcpy(copy, buf, w.len);
	/* new broadcasts go first: fewest transmits, newest first */
	memmove(&s->bq[1], &s->bq[0], s->nbq * sizeof(s->bq[0]));
	s->bq[0] = (struct swim_bcast){
	    .transmits = 0, .id = ++s->bcast_id, .len = w.len, .msg = copy, .hash = h};
	snprintf(s->bq[0].name, sizeof(s->bq[0].name), "%s", m->name);
	s->nbq++;
}

/*
 * Fill the rest of a datagram with broadcasts, fewest transmits first (newest first among
 * equals). The queue stays in that order: the ones sent and the ones not sent are each still
 * sorted, so one merge restores it.
 */
static void piggyback(struct swim *s, struct swim_wbuf *w)
{
	uint32_t limit = retransmit_limit(s);
	size_t nsent = 0, nkept = 0, room = w->cap - w->len;
	struct swim_bcast *sent;

	if (!s->nbq || room <= sizeof(struct swim_wire_msg_hdr))
		return;
	sent = malloc(s->nbq * sizeof(*sent));
	if (!sent)
		return;
	for (size_t i = 0; i < s->nbq; i++) {
		struct swim_bcast b = s->bq[i];
		if (room > sizeof(struct swim_wire_msg_hdr) && b.len <= room &&
		    swim_wire_put_raw(w, b.msg, b.len) == 0) {
			room -= b.len;
			if (++b.transmits >= limit) {
				free(b.msg);
				continue;
			}
			sent[nsent++] = b;
			continue;
		}
		s->bq[nkept++] = b;
	}
	/* merge kept (in place, front) with sent, from the back */
	size_t total = nkept + nsent, i = nkept, j = nsent, k = total;
	while (j > 0) {
		if (i > 0 && bq_before(&sent[j - 1], &s->bq[i - 1]))
			s->bq[--k] = s->bq[--i];
		else
			s->bq[--k] = sent[--j];
	}
	s->nbq = total;
	free(sent);
}

static void fill_alive(struct swim_msg *m, const struct swim_node *n)
{
	memset(m, 0, sizeof(*m));
	m->type = SWIM_MSG_ALIVE;
	m->incarnation = n->pub.incarnation;
	m->instance = n->pub.instance;
	m->addr = n->pub.addr;
	snprintf(m->name, sizeof(m->name), "%s", n->name);
	m->meta = n->meta;
	m->meta_len = n->pub.meta_len;
}

static void fill_accuse(struct swim_msg *m, uint8_t type, const struct swim_node *n,
			const char *from)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->incarnation = n->pub.incarnation;
	snprintf(m->name, sizeof(m->name), "%s", n->name);
	snprintf(m->from, sizeof(m->from), "%s", from);
}

/* ---- sending ---- */

static void send_dgram(struct swim *s, const struct swim_addr *to, struct swim_wbuf *w)
{
	int r = s->env.send_udp(s->env.ud, to, w->buf, w->len);

	if (r < 0)
		return;
	s->st.udp_sent++;
	s->st.bytes_sent += w->len + s->cfg.packet_overhead;
}

/* Send msgs (may be 0) to `to`, topped up with piggybacked broadcasts. */
static void send_msgs(struct swim *s, const struct swim_addr *to, const struct swim_msg *msgs,
		      size_t nmsgs, bool with_broadcasts)
{
	struct swim_wbuf w = {.buf = s->dgram, .cap = s->cfg.max_dgram};

	if (swim_wire_begin(&w) < 0)
		return;
	for (size_t i = 0; i < nmsgs; i++)
		if (swim_wire_put(&w, &msgs[i]) == 0)
			s->st.msgs_sent++;
	if (with_broadcasts)
		piggyback(s, &w);
	if (w.len == sizeof(struct swim_wire_hdr))
		return;
	send_dgram(s, to, &w);
}

/* k random members passing `ok`, not self */
static size_t k_random(struct swim *s, size_t k, struct swim_node **out,
		       bool (*ok)(struct swim *, struct swim_node *, const void *), const void *arg)
{
	size_t got = 0;

	for (size_t tries = 0; tries < 3 * s->n && got < k; tries++) {
		struct swim_node *n = s->nodes[rnd(s, (uint32_t)s->n)];
		if (n == s->self || !ok(s, n, arg))
			continue;
		size_t j;
		for (j = 0; j < got && out[j] != n; j++)
			;
		if (j == got)
			out[got++] = n;
	}
	return got;
}

static bool ok_alive_not(struct swim *s, struct swim_node *n, const void *arg)
{
	return n->pub.state == SWIM_ALIVE && n != arg;
}

static bool ok_gossip(struct swim *s, struct swim_node *n, const void *arg)
{
	if (n->pub.state <= SWIM_SUSPECT)
		return true;
	return n->pub.state == SWIM_DEAD &&
	       now(s) - n->pub.state_since_ms < s->cfg.gossip_to_dead_ms;
}

static bool ok_recent_dead(struct swim *s, struct swim_node *n, const void *arg)
{
	return n->pub.state == SWIM_DEAD;
}

static void gossip_round(struct swim *s)
{
	struct swim_node *to[16];
	size_t k = s->cfg.gossip_nodes < 16 ? s->cfg.gossip_nodes : 16;

	if (!s->nbq)
		return;
	k = k_random(s, k, to, ok_gossip, NULL);
	for (size_t i = 0; i < k && s->nbq; i++)
		send_msgs(s, &to[i]->pub.addr, NULL, 0, true);
}

/* ---- stream bookkeeping ---- */

static struct swim_pending *pending_add(struct swim *s, enum pend_kind kind,
					const struct swim_addr *to)
{
	if (s->npending == MAX_PENDING) {
		/* the glue lost a completion: forget the oldest */
		memmove(&s->pending[0], &s->pending[1], (MAX_PENDING - 1) * sizeof(s->pending[0]));
		s->npending--;
	}
	struct swim_pending *p = &s->pending[s->npending++];
	*p = (struct swim_pending){.token = ++s->next_token, .kind = kind, .addr = *to};
	return p;
}

static int encode_state(struct swim *s, struct swim_wbuf *w, bool join, bool reply)
{
	struct swim_msg m = {
	    .type = SWIM_MSG_PUSHPULL, .instance = s->self->pub.instance, .count = (uint32_t)s->n};
	int r;

	m.flags = (join ? SWIM_WIRE_F_JOIN : 0) | (reply ? SWIM_WIRE_F_REPLY : 0);
	snprintf(m.name, sizeof(m.name), "%s", s->self->name);
	r = swim_wire_begin(w);
	if (r < 0)
		return r;
	r = swim_wire_put(w, &m);
	for (size_t i = 0; r >= 0 && i < s->n; i++) {
		struct swim_node *n = s->nodes[i];
		fill_alive(&m, n);
		m.type = SWIM_MSG_STATE;
		m.state = n->pub.state;
		r = swim_wire_put(w, &m);
	}
	return r;
}

static void start_stream(struct swim *s, enum pend_kind kind, const struct swim_addr *to,
			 const struct swim_wbuf *w, uint32_t seq)
{
	struct swim_pending *p = pending_add(s, kind, to);

	p->seq = seq;
	p->attempt = s->join_attempt;
	uint64_t token = p->token;
	if (s->env.stream(s->env.ud, to, w->buf, w->len, token) < 0) {
		/* could not even start: complete it as failed now */
		swim_stream_done(s, token, NULL, -ECONNREFUSED);
		return;
	}
	s->st.stream_bytes_sent += w->len;
	s->st.bytes_sent += w->len;
}

/* ---- digest push-pull ---- */

/* at one incarnation, a later state wins: alive < suspect < dead, left (merge_entry's order) */
static int state_rank(uint8_t st)
{
	return st == SWIM_ALIVE ? 0 : st == SWIM_SUSPECT ? 1 : 2;
}

/* >0: (inc_a, st_a) is news for whoever holds (inc_b, st_b); <0 the other way; 0 the same */
static int entry_cmp(uint32_t inc_a, uint8_t st_a, uint32_t inc_b, uint8_t st_b)
{
	if (inc_a != inc_b)
		return inc_a > inc_b ? 1 : -1;
	return state_rank(st_a) - state_rank(st_b);
}

static int put_state(struct swim_wbuf *w, const struct swim_node *n)
{
	struct swim_msg m;

	fill_alive(&m, n);
	m.type = SWIM_MSG_STATE;
	m.state = n->pub.state;
	return swim_wire_put(w, &m);
}

static int put_digest(struct swim_wbuf *w, uint64_t hash, uint32_t inc, uint8_t state)
{
	struct swim_msg m = {
	    .type = SWIM_MSG_DIGEST, .hash = hash, .incarnation = inc, .state = state};

	return swim_wire_put(w, &m);
}

static int pushpull_header(struct swim *s, struct swim_wbuf *w, uint8_t flags, uint32_t count)
{
	struct swim_msg m = {.type = SWIM_MSG_PUSHPULL,
			     .flags = flags,
			     .instance = s->self->pub.instance,
			     .count = count};
	int r;

	snprintf(m.name, sizeof(m.name), "%s", s->self->name);
	r = swim_wire_begin(w);
	return r < 0 ? r : swim_wire_put(w, &m);
}

static void merge_pushpull(struct swim *s, const void *buf, size_t len, const char *sender,
			   const struct swim_addr *from, bool join);

static void pushpull_digest(struct swim *s, const struct swim_addr *to)
{
	struct swim_wbuf w = {.grow = true};
	int r = pushpull_header(s, &w, SWIM_WIRE_F_DIGEST, (uint32_t)s->n);

	for (size_t i = 0; r >= 0 && i < s->n; i++)
		r = put_digest(&w, s->nodes[i]->hash, s->nodes[i]->pub.incarnation,
			       s->nodes[i]->pub.state);
	if (r >= 0) {
		s->st.pushpulls++;
		s->learned = 0;
		s->last_pushpull = now(s);
		start_stream(s, PEND_DIGEST, to, &w, 0);
	}
	free(w.buf);
}

struct digest_ent {
	uint64_t hash;
	uint32_t inc;
	uint8_t state;
	bool seen;
};

static int digest_ent_cmp(const void *a, const void *b)
{
	const struct digest_ent *x = a, *y = b;

	return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/*
 * Answer a digest: the STATE of every member we hold newer than the requester (or it lacks),
 * then a DIGEST of every member it holds newer (or we lack) for it to push. Members dead or left
 * on one side and unknown on the other are not worth sending (a remote dead only makes the
 * receiver suspect, and it cannot suspect what it does not know).
 */
static int digest_reply(struct swim *s, const void *req, size_t len, struct swim_wbuf *w)
{
	size_t off = sizeof(struct swim_wire_hdr), nd = 0, cap = 0;
	struct digest_ent *d = NULL;
	struct swim_msg m;
	int r;

	while ((r = swim_wire_next(req, len, &off, &m)) != 0) {
		if (r < 0 || m.type != SWIM_MSG_DIGEST)
			continue;
		if (nd == cap) {
			cap = cap ? cap * 2 : 64;
			struct digest_ent *a = realloc(d, cap * sizeof(*d));
			if (!a) {
				free(d);
				return -ENOMEM;
			}
			d = a;
		}
		d[nd++] =
		    (struct digest_ent){.hash = m.hash, .inc = m.incarnation, .state = m.state};
	}
	if (nd)
		qsort(d, nd, sizeof(*d), digest_ent_cmp);
	r = pushpull_header(s, w, SWIM_WIRE_F_DIGEST | SWIM_WIRE_F_REPLY, 0);
	for (size_t i = 0; r >= 0 && i < s->n; i++) {
		struct swim_node *n = s->nodes[i];
		struct digest_ent key = {.hash = n->hash};
		struct digest_ent *e = nd ? bsearch(&key, d, nd, sizeof(*d), digest_ent_cmp) : NULL;
		if (!e) {
			if (n->pub.state <= SWIM_SUSPECT)
				r = put_state(w, n);
			continue;
		}
		e->seen = true;
		int c = entry_cmp(n->pub.incarnation, n->pub.state, e->inc, e->state);
		if (c > 0)
			r = put_state(w, n);
		else if (c < 0)
			r = put_digest(w, e->hash, e->inc, e->state);
	}
	for (size_t i = 0; r >= 0 && i < nd; i++)
		if (!d[i].seen && d[i].state <= SWIM_SUSPECT)
			r = put_digest(w, d[i].hash, d[i].inc, d[i].state);
	free(d);
	return r;
}

/* A digest reply came back: merge what we lacked, then push what the peer asked for. */
static void digest_done(struct swim *s, const struct swim_pending *p, const void *reply, size_t len,
			const char *sender)
{
	size_t off = sizeof(struct swim_wire_hdr);
	struct swim_wbuf w = {.grow = true};
	struct swim_msg m;
	uint32_t npush = 0;
	int r;

	merge_pushpull(s, reply, len, sender, &p->addr, false);
	r = pushpull_header(s, &w, SWIM_WIRE_F_PUSH, 0);
	while (r >= 0 && (r = swim_wire_next(reply, len, &off, &m)) != 0) {
		if (r < 0)
			break;
		if (m.type != SWIM_MSG_DIGEST)
			continue;
		struct swim_node *n = find_hash(s, m.hash);
		if (n && entry_cmp(n->pub.incarnation, n->pub.state, m.incarnation, m.state) > 0) {
			r = put_state(&w, n);
			npush++;
		}
	}
	if (r >= 0 && npush)
		start_stream(s, PEND_PUSH, &p->addr, &w, 0);
	free(w.buf);
}

static void pushpull_with(struct swim *s, const struct swim_addr *to, bool join)
{
	struct swim_wbuf w = {.grow = true};

	if (encode_state(s, &w, join, false) == 0) {
		s->st.pushpulls++;
		s->learned = 0;
		s->last_pushpull = now(s);
		start_stream(s, join ? PEND_JOIN : PEND_PUSHPULL, to, &w, 0);
	}
	free(w.buf);
}

/* ---- state transitions (memberlist aliveNode / suspectNode / deadNode) ---- */

static void refute(struct swim *s, uint32_t accused, const struct swim_addr *accuser)
{
	struct swim_node *me = s->self;
	struct swim_msg m;
	uint32_t inc = me->pub.incarnation + 1;

	if (accused >= inc)
		inc = accused + 1;
	me->pub.incarnation = inc;
	s->st.refutations++;
	awareness_delta(s, 1);
	fill_alive(&m, me);
	queue_broadcast(s, &m);
	/* tell the accuser and a gossip round's worth of members now, before timers expire */
	if (accuser)
		send_msgs(s, accuser, &m, 1, false);
	gossip_round(s);
	changed(s, me);
	struct swim_event ev = {.type = SWIM_EV_REFUTED, .name = me->name, .incarnation = inc};
	emit(s, &ev);
}

static void conflict(struct swim *s, const char *name, uint64_t holder, uint64_t other,
		     const struct swim_addr *addr)
{
	s->st.conflicts++;
	s->st.dropped[SWIM_DROP_CONFLICT]++;
	struct swim_event ev = {.type = SWIM_EV_CONFLICT,
				.name = name,
				.instance = holder,
				.other_instance = other,
				.addr = addr};
	emit(s, &ev);
}

/*
 * `gossiped`: heard as a broadcast. A member first learned from a push-pull is not broadcast
 * again: the peer already knows it, and the member announces itself (a join would otherwise
 * make the joiner re-broadcast the whole cluster).
 */
static void pushpull_with(struct swim *s, const struct swim_addr *to, bool join);

/*
 * Several members we held dead come back within 2 s: a partition healed. Every member on both
 * sides has to refute, and a refutation per member through gossip is slow at 1,000 nodes; a
 * push-pull with one of them brings the other side's whole view at once.
 */
static void revived_member(struct swim *s, struct swim_node *n)
{
	uint64_t t = now(s);

	if (!s->cfg.heal_pushpull_ms)
		return;
	if (t - s->revived_since > 2000) {
		s->revived_since = t;
		s->revived = 0;
	}
	if (++s->revived >= 3 && t - s->last_heal_pushpull >= s->cfg.heal_pushpull_ms) {
		s->last_heal_pushpull = t;
		pushpull_with(s, &n->pub.addr, false);
	}
	/* and look for the ones whose refutation gossip did not bring us, soon */
	if (s->revived >= 3 && s->cfg.reconnect_interval_ms && s->next_reconnect > t + 200)
		s->next_reconnect = t + 200;
}

static void apply_alive(struct swim *s, const struct swim_msg *m, const struct swim_addr *from,
			bool gossiped)
{
	struct swim_node *n = find(s, m->name);
	struct swim_msg out;

	if (n == s->self) {
		if (s->leaving)
			return;
		if (m->instance != n->pub.instance) {
			/* someone else claims our name: we are live, keep it */
			conflict(s, m->name, n->pub.instance, m->instance, from);
			if (m->incarnation >= n->pub.incarnation)
				refute(s, m->incarnation, NULL);
			return;
		}
		if (m->incarnation < n->pub.incarnation)
			return;
		if (m->incarnation == n->pub.incarnation && m->meta_len == n->pub.meta_len &&
		    (!m->meta_len || !memcmp(m->meta, n->meta, m->meta_len)) &&
		    swim_addr_equal(&m->addr, &n->pub.addr))
			return;
		/* an older life of ours (restart) or a stale view: announce ourselves above it */
		refute(s, m->incarnation, NULL);
		return;
	}
	if (!n) {
		n = add_node(s, m->name, m->instance, &m->addr);
		if (!n)
			return;
		n->pub.incarnation = m->incarnation;
		set_state(s, n, SWIM_ALIVE);
		set_meta(n, m->meta, m->meta_len);
		if (gossiped) {
			queue_broadcast(s, m);
			s->learned++;
		}
		changed(s, n);
		return;
	}
	if (m->instance != n->pub.instance) {
		if (n->pub.state <= SWIM_SUSPECT) {
			conflict(s, m->name, n->pub.instance, m->instance, from);
			return;
		}
		/* the name was given up (dead or left): a new instance may take it */
		n->pub.instance = m->instance;
	} else if (m->incarnation <= n->pub.incarnation) {
		return;
	}
	clear_suspicion(s, n);
	bool revived = n->pub.state == SWIM_DEAD;
	n->pub.incarnation = m->incarnation;
	n->pub.addr = m->addr;
	set_meta(n, m->meta, m->meta_len);
	set_state(s, n, SWIM_ALIVE);
	if (revived)
		revived_member(s, n);
	out = *m;
	queue_broadcast(s, &out);
	changed(s, n);
}

static uint64_t susp_timeout(const struct swim_susp *sp)
{
	if (sp->k < 1 || sp->nconf >= sp->k)
		return sp->min_ms;
	double frac = log((double)sp->nconf + 1) / log((double)sp->k + 1);
	double t = sp->max_ms - frac * (sp->max_ms - sp->min_ms);
	return t < sp->min_ms ? sp->min_ms : (uint64_t)t;
}

/* true if `from` is a new accuser (the suspicion timer got shorter) */
static bool susp_confirm(struct swim_susp *sp, const char *from)
{
	uint64_t h = name_hash(from);

	if (sp->nconf >= sp->k)
		return false;
	for (uint32_t i = 0; i < sp->nfrom; i++)
		if (sp->from[i] == h)
			return false;
	if (sp->nfrom < SUSP_MAX_FROM)
		sp->from[sp->nfrom++] = h;
	sp->nconf++;
	sp->deadline = sp->start + susp_timeout(sp);
	return true;
}

/*
 * An accusation of us older than our incarnation: its sender missed our refutation (gossip
 * reaches almost everyone, not everyone). Tell it directly, or its timer declares us dead.
 */
static void correct_stale(struct swim *s, const struct swim_addr *from)
{
	struct swim_msg m;

	if (!from || s->leaving || !s->cfg.final_probe_ms)
		return;
	fill_alive(&m, s->self);
	send_msgs(s, from, &m, 1, false);
}

static void apply_suspect(struct swim *s, const struct swim_msg *m, const struct swim_addr *from)
{
	struct swim_node *n = find(s, m->name);

	if (n == s->self && m->incarnation < n->pub.incarnation)
		correct_stale(s, from);
	if (!n || m->incarnation < n->pub.incarnation)
		return;
	s->st.suspicions_received++;
	if (n->susp) {
		if (susp_confirm(n->susp, m->from))
			queue_broadcast(s, m);
		return;
	}
	if (n->pub.state != SWIM_ALIVE)
		return;
	if (n == s->self) {
		if (!s->leaving)
			refute(s, m->incarnation, from);
		return;
	}
	struct swim_susp *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return;
	if (s->nsusp == s->capsusp) {
		size_t cap = s->capsusp ? s->capsusp * 2 : 8;
		struct swim_node **a = realloc(s->suspects, cap * sizeof(*a));
		if (!a) {
			free(sp);
			return;
		}
		s->suspects = a;
		s->capsusp = cap;
	}
	uint32_t nn = est_nodes(s);
	double min = s->cfg.suspicion_mult * log10(nn > 1 ? nn : 1) * s->cfg.probe_interval_ms;
	sp->min_ms = min < s->cfg.suspicion_min_ms ? s->cfg.suspicion_min_ms : (uint32_t)min;
	sp->max_ms = sp->min_ms * (s->cfg.suspicion_max_mult ? s->cfg.suspicion_max_mult : 1);
	sp->k = s->cfg.suspicion_mult > 2 ? s->cfg.suspicion_mult - 2 : 0;
	if (nn < sp->k + 2)
		sp->k = 0;
	sp->start = now(s);
	sp->from[sp->nfrom++] = name_hash(m->from);
	sp->deadline = sp->start + susp_timeout(sp);
	n->susp = sp;
	s->suspects[s->nsusp++] = n;
	n->pub.incarnation = m->incarnation;
	set_state(s, n, SWIM_SUSPECT);
	queue_broadcast(s, m);
	changed(s, n);
}

static void apply_dead(struct swim *s, const struct swim_msg *m, const struct swim_addr *from)
{
	struct swim_node *n = find(s, m->name);

	if (n == s->self && m->incarnation < n->pub.incarnation)
		correct_stale(s, from);
	if (!n || m->incarnation < n->pub.incarnation)
		return;
	if (n->pub.state >= SWIM_DEAD)
		return;
	if (n == s->self) {
		if (!s->leaving)
			refute(s, m->incarnation, from);
		return;
	}
	clear_suspicion(s, n);
	n->pub.incarnation = m->incarnation;
	set_state(s, n, strcmp(m->name, m->from) ? SWIM_DEAD : SWIM_LEFT);
	queue_broadcast(s, m);
	changed(s, n);
}

/* Merge a push-pull state list (memberlist mergeState): a remote "dead" only makes us suspect. */
static void merge_entry(struct swim *s, const struct swim_msg *e, const char *sender,
			const struct swim_addr *from, bool join)
{
	struct swim_msg m = *e;

	switch (e->state) {
	case SWIM_ALIVE:
		m.type = SWIM_MSG_ALIVE;
		/* a joiner's own entry is news for everyone: spread it like memberlist does */
		apply_alive(s, &m, from, join && !strcmp(e->name, sender));
		break;
	case SWIM_LEFT:
		m.type = SWIM_MSG_DEAD;
		snprintf(m.from, sizeof(m.from), "%s", e->name);
		apply_dead(s, &m, from);
		break;
	default:
		m.type = SWIM_MSG_SUSPECT;
		snprintf(m.from, sizeof(m.from), "%s", sender);
		apply_suspect(s, &m, from);
		break;
	}
}

/* ---- probing ---- */

static void start_suspicion(struct swim *s, struct swim_node *n)
{
	uint64_t t = now(s);

	if (s->cfg.max_own_suspicions && s->own_open >= s->cfg.max_own_suspicions) {
		/*
		 * Accusing many at once is more likely our own trouble than theirs: hold back until
		 * the open ones resolve (probe_end already raised our awareness if nacks were
		 * missing; with nacks from the relays it is a real partition, and others accuse
		 * too).
		 */
		s->st.suspicions_deferred++;
		return;
	}
	if (s->cfg.suspect_burst) {
		s->suspect_tokens += (double)(t - s->tokens_at) / s->cfg.suspect_refill_ms;
		if (s->suspect_tokens > s->cfg.suspect_burst)
			s->suspect_tokens = s->cfg.suspect_burst;
		s->tokens_at = t;
		if (s->suspect_tokens < 1) {
			s->st.suspicions_deferred++;
			return;
		}
		s->suspect_tokens -= 1;
	}
	struct swim_msg m;
	fill_accuse(&m, SWIM_MSG_SUSPECT, n, s->self->name);
	s->st.suspicions_raised++;
	apply_suspect(s, &m, NULL);
	if (n->susp && !n->own_accusation) {
		n->own_accusation = true;
		s->own_open++;
	}
	/* buddy system: tell the accused at once so it can refute */
	send_msgs(s, &n->pub.addr, &m, 1, false);
}

/*
 * Our own probe of a member already suspect failed too, while relays answered with nacks (so our
 * own network works): we are an independent accuser, as in memberlist's suspectNode on a suspect
 * member. Without this only accusations raised before the first one was heard count, and a small
 * cluster almost always ran the maximum timeout (4 s on 5 nodes instead of ~1.7 s). A node whose
 * probes fail without nacks is more likely cut off itself, and does not confirm.
 */
static void confirm_suspicion(struct swim *s, struct swim_node *n)
{
	struct swim_msg m;

	if (!susp_confirm(n->susp, s->self->name))
		return;
	fill_accuse(&m, SWIM_MSG_SUSPECT, n, s->self->name);
	queue_broadcast(s, &m);
}

static struct swim_node *next_probe_target(struct swim *s)
{
	for (size_t checked = 0; checked <= s->n; checked++) {
		if (s->probe_index >= s->n) {
			/* new round: reshuffle (Fisher-Yates) */
			for (size_t i = s->n; i > 1; i--) {
				size_t j = rnd(s, (uint32_t)i);
				struct swim_node *t = s->nodes[i - 1];
				s->nodes[i - 1] = s->nodes[j];
				s->nodes[j] = t;
				s->nodes[i - 1]->idx = i - 1;
				s->nodes[j]->idx = j;
			}
			s->probe_index = 0;
		}
		struct swim_node *n = s->nodes[s->probe_index++];
		if (n != s->self && n->pub.state <= SWIM_SUSPECT)
			return n;
	}
	return NULL;
}

static void probe_start(struct swim *s)
{
	struct swim_node *n = next_probe_target(s);
	struct swim_msg m[2];
	uint64_t t = now(s);

	s->next_probe = t + scale(s, s->cfg.probe_interval_ms);
	if (!n)
		return;
	memset(&s->probe, 0, sizeof(s->probe));
	s->probe.active = true;
	s->probe.seq = ++s->seq;
	snprintf(s->probe.target, sizeof(s->probe.target), "%s", n->name);
	s->probe.sent = t;
	s->probe.indirect_at = t + scale(s, s->cfg.probe_timeout_ms);
	s->probe.end = s->next_probe;
	s->st.probes++;
	memset(&m[0], 0, sizeof(m[0]));
	m[0].type = SWIM_MSG_PING;
	m[0].seq = s->probe.seq;
	snprintf(m[0].name, sizeof(m[0].name), "%s", n->name);
	snprintf(m[0].from, sizeof(m[0].from), "%s", s->self->name);
	size_t nm = 1;
	if (n->pub.state == SWIM_SUSPECT) /* buddy system */
		fill_accuse(&m[nm++], SWIM_MSG_SUSPECT, n, s->self->name);
	send_msgs(s, &n->pub.addr, m, nm, true);
}

static void probe_indirect(struct swim *s)
{
	struct swim_node *target = find(s, s->probe.target);
	struct swim_node *via[16];
	size_t k = s->cfg.indirect_checks < 16 ? s->cfg.indirect_checks : 16;

	s->probe.indirect_sent = true;
	if (!target)
		return;
	k = k_random(s, k, via, ok_alive_not, target);
	struct swim_msg m = {.type = SWIM_MSG_PING_REQ,
			     .seq = s->probe.seq,
			     .flags = SWIM_WIRE_F_NACK,
			     .addr = target->pub.addr};
	snprintf(m.name, sizeof(m.name), "%s", target->name);
	snprintf(m.from, sizeof(m.from), "%s", s->self->name);
	for (size_t i = 0; i < k; i++) {
		send_msgs(s, &via[i]->pub.addr, &m, 1, true);
		s->st.indirect_probes++;
	}
	s->probe.expected_nacks = k;
	if (s->cfg.direct_retry) {
		/* one lost datagram should not cost an indirect round: ask once more */
		struct swim_msg p = {.type = SWIM_MSG_PING, .seq = s->probe.seq};
		snprintf(p.name, sizeof(p.name), "%s", target->name);
		snprintf(p.from, sizeof(p.from), "%s", s->self->name);
		send_msgs(s, &target->pub.addr, &p, 1, false);
	}
	if (s->cfg.tcp_fallback) {
		uint8_t buf[256];
		struct swim_wbuf w = {.buf = buf, .cap = sizeof(buf)};
		struct swim_msg p = {.type = SWIM_MSG_PING, .seq = s->probe.seq};
		snprintf(p.name, sizeof(p.name), "%s", target->name);
		snprintf(p.from, sizeof(p.from), "%s", s->self->name);
		if (swim_wire_begin(&w) == 0 && swim_wire_put(&w, &p) == 0) {
			s->st.tcp_probes++;
			start_stream(s, PEND_TCP_PING, &target->pub.addr, &w, s->probe.seq);
		}
	}
}

static void probe_end(struct swim *s)
{
	struct swim_probe *p = &s->probe;

	p->active = false;
	if (p->acked || p->tcp_acked) {
		if (p->tcp_acked && !p->acked)
			s->st.tcp_probe_acks++;
		awareness_delta(s, -1);
		return;
	}
	s->st.probe_failures++;
	/* Lifeguard: missing nacks mean our own network or scheduling is in trouble */
	if (p->expected_nacks)
		awareness_delta(
		    s, (int)(p->expected_nacks -
			     (p->nacks < p->expected_nacks ? p->nacks : p->expected_nacks)));
	else
		awareness_delta(s, 1);
	struct swim_node *n = find(s, p->target);
	if (n && n->pub.state == SWIM_ALIVE)
		start_suspicion(s, n);
	else if (n && n->susp && p->nacks)
		confirm_suspicion(s, n);
}

static void probe_acked(struct swim *s, const struct swim_addr *from)
{
	struct swim_node *n = find(s, s->probe.target);
	uint64_t t = now(s);

	if (!s->probe.acked) {
		s->probe.acked = true;
		s->st.acks_received++;
		if (n && !s->probe.indirect_sent && swim_addr_equal(from, &n->pub.addr))
			n->pub.rtt_us = (uint32_t)((t - s->probe.sent) * 1000);
	}
	/* done early: the next probe still waits for its slot */
	probe_end(s);
}

/* ---- receiving ---- */

static void handle_ping(struct swim *s, const struct swim_msg *m, const struct swim_addr *from)
{
	if (strcmp(m->name, s->self->name)) {
		s->st.dropped[SWIM_DROP_WRONG_NODE]++;
		return;
	}
	struct swim_msg a = {.type = SWIM_MSG_ACK, .seq = m->seq};
	send_msgs(s, from, &a, 1, true);
}

static void handle_ping_req(struct swim *s, const struct swim_msg *m, const struct swim_addr *from)
{
	if (s->nrelays == s->caprelays) {
		size_t cap = s->caprelays ? s->caprelays * 2 : 8;
		struct swim_relay *a = realloc(s->relays, cap * sizeof(*a));
		if (!a)
			return;
		s->relays = a;
		s->caprelays = cap;
	}
	uint32_t wait = s->cfg.probe_interval_ms > s->cfg.probe_timeout_ms
			    ? (s->cfg.probe_interval_ms - s->cfg.probe_timeout_ms) * 4 / 5
			    : s->cfg.probe_timeout_ms;
	struct swim_relay *r = &s->relays[s->nrelays++];
	*r = (struct swim_relay){.seq = ++s->seq,
				 .orig_seq = m->seq,
				 .deadline = now(s) + wait,
				 .nack = m->flags & SWIM_WIRE_F_NACK,
				 .requester = *from};
	struct swim_msg p = {.type = SWIM_MSG_PING, .seq = r->seq};
	snprintf(p.name, sizeof(p.name), "%s", m->name);
	snprintf(p.from, sizeof(p.from), "%s", s->self->name);
	send_msgs(s, &m->addr, &p, 1, true);
}

static void handle_ack(struct swim *s, uint32_t seq, const struct swim_addr *from)
{
	if (s->probe.active && seq == s->probe.seq) {
		probe_acked(s, from);
		return;
	}
	for (size_t i = 0; i < s->nrelays; i++)
		if (s->relays[i].seq == seq) {
			struct swim_msg a = {.type = SWIM_MSG_ACK, .seq = s->relays[i].orig_seq};
			struct swim_addr to = s->relays[i].requester;
			s->relays[i] = s->relays[--s->nrelays];
			send_msgs(s, &to, &a, 1, false);
			return;
		}
	if (s->reconnect_seq && seq == s->reconnect_seq) {
		/* a member we hold dead answers: exchange state so both sides refute and merge */
		struct swim_node *n = find(s, s->reconnect_target);
		s->reconnect_seq = 0;
		if (n && n->pub.state == SWIM_DEAD)
			pushpull_with(s, from, false);
	}
}

static void handle_msg(struct swim *s, const struct swim_msg *m, const struct swim_addr *from)
{
	s->st.msgs_received++;
	switch (m->type) {
	case SWIM_MSG_PING:
		handle_ping(s, m, from);
		break;
	case SWIM_MSG_PING_REQ:
		handle_ping_req(s, m, from);
		break;
	case SWIM_MSG_ACK:
		handle_ack(s, m->seq, from);
		break;
	case SWIM_MSG_NACK:
		if (s->probe.active && m->seq == s->probe.seq) {
			s->probe.nacks++;
			s->st.nacks_received++;
		}
		break;
	case SWIM_MSG_ALIVE:
		apply_alive(s, m, from, true);
		break;
	case SWIM_MSG_SUSPECT:
		apply_suspect(s, m, from);
		break;
	case SWIM_MSG_DEAD:
		apply_dead(s, m, from);
		break;
	default:
		/* stream-only messages in a datagram: ignore */
		s->st.dropped[SWIM_DROP_UNKNOWN_MSG]++;
		break;
	}
}

int swim_recv_udp(struct swim *s, const struct swim_addr *from, const void *buf, size_t len)
{
	struct swim_msg m;
	size_t off = sizeof(struct swim_wire_hdr);
	int r;

	s->st.udp_received++;
	s->st.bytes_received += len + s->cfg.packet_overhead;
	if (len > SWIM_DGRAM_MAX) {
		s->st.dropped[SWIM_DROP_OVERSIZE]++;
		return -EMSGSIZE;
	}
	if (s->leaving) {
		s->st.dropped[SWIM_DROP_NOT_RUNNING]++;
		return -ESHUTDOWN;
	}
	r = swim_wire_check(buf, len);
	if (r < 0) {
		s->st.dropped[r == -EPROTONOSUPPORT ? SWIM_DROP_VERSION : SWIM_DROP_MALFORMED]++;
		return r;
	}
	while ((r = swim_wire_next(buf, len, &off, &m)) != 0) {
		if (r == -ENOMSG) {
			s->st.dropped[SWIM_DROP_UNKNOWN_MSG]++;
			continue;
		}
		if (r < 0) {
			s->st.dropped[SWIM_DROP_MALFORMED]++;
			return r;
		}
		handle_msg(s, &m, from);
	}
	return 0;
}

/*
 * Parse a push-pull body: validate everything first (a malformed stream changes nothing), then
 * merge. Returns the header message in *hdr.
 */
static int parse_pushpull(const void *buf, size_t len, struct swim_msg *hdr, bool *refused,
			  struct swim_msg *refuse)
{
	size_t off = sizeof(struct swim_wire_hdr);
	struct swim_msg m;
	int r, first = 1;

	*refused = false;
	while ((r = swim_wire_next(buf, len, &off, &m)) != 0) {
		if (r == -ENOMSG)
			continue;
		if (r < 0)
			return r;
		if (first) {
			if (m.type == SWIM_MSG_REFUSE) {
				*refused = true;
				*refuse = m;
				return 0;
			}
			if (m.type != SWIM_MSG_PUSHPULL)
				return -EBADMSG;
			*hdr = m;
			first = 0;
			continue;
		}
		if (m.type != SWIM_MSG_STATE && m.type != SWIM_MSG_DIGEST)
			return -EBADMSG;
	}
	return first ? -EBADMSG : 0;
}

static void merge_pushpull(struct swim *s, const void *buf, size_t len, const char *sender,
			   const struct swim_addr *from, bool join)
{
	size_t off = sizeof(struct swim_wire_hdr);
	struct swim_msg m;
	int r;

	while ((r = swim_wire_next(buf, len, &off, &m)) != 0) {
		if (r < 0)
			continue;
		if (m.type == SWIM_MSG_STATE)
			merge_entry(s, &m, sender, from, join);
	}
}

static int reply_msg(const struct swim_msg *m, void **reply, size_t *reply_len)
{
	struct swim_wbuf w = {.grow = true};
	int r = swim_wire_begin(&w);

	if (r >= 0)
		r = swim_wire_put(&w, m);
	if (r < 0) {
		free(w.buf);
		return r;
	}
	*reply = w.buf;
	*reply_len = w.len;
	return 0;
}

int swim_handle_stream(struct swim *s, const struct swim_addr *from, const void *req, size_t len,
		       void **reply, size_t *reply_len)
{
	struct swim_msg m, ref;
	size_t off = sizeof(struct swim_wire_hdr);
	bool refused;
	int r;

	*reply = NULL;
	*reply_len = 0;
	s->st.bytes_received += len;
	s->st.stream_bytes_received += len;
	if (len > SWIM_STREAM_MAX) {
		s->st.dropped[SWIM_DROP_OVERSIZE]++;
		return -EMSGSIZE;
	}
	if (s->leaving) {
		s->st.dropped[SWIM_DROP_NOT_RUNNING]++;
		return -ESHUTDOWN;
	}
	r = swim_wire_check(req, len);
	if (r < 0) {
		s->st.dropped[r == -EPROTONOSUPPORT ? SWIM_DROP_VERSION : SWIM_DROP_MALFORMED]++;
		return r;
	}
	do
		r = swim_wire_next(req, len, &off, &m);
	while (r == -ENOMSG);
	if (r <= 0) {
		s->st.dropped[SWIM_DROP_MALFORMED]++;
		return -EBADMSG;
	}
	if (m.type == SWIM_MSG_PING) {
		if (strcmp(m.name, s->self->name)) {
			s->st.dropped[SWIM_DROP_WRONG_NODE]++;
			return -ENOENT;
		}
		struct swim_msg a = {.type = SWIM_MSG_ACK, .seq = m.seq};
		r = reply_msg(&a, reply, reply_len);
		goto out;
	}
	if (m.type != SWIM_MSG_PUSHPULL || parse_pushpull(req, len, &m, &refused, &ref) < 0 ||
	    refused) {
		s->st.dropped[SWIM_DROP_MALFORMED]++;
		return -EBADMSG;
	}
	if (m.flags & SWIM_WIRE_F_JOIN) {
		struct swim_node *n = find(s, m.name);
		if (n && n->pub.state <= SWIM_SUSPECT && n->pub.instance != m.instance) {
			/* a second daemon claims a live member's name */
			conflict(s, m.name, n->pub.instance, m.instance, from);
			struct swim_msg rf = {.type = SWIM_MSG_REFUSE,
					      .reason = SWIM_REFUSE_NAME_TAKEN,
					      .instance = n->pub.instance};
			snprintf(rf.name, sizeof(rf.name), "%s", m.name);
			r = reply_msg(&rf, reply, reply_len);
			goto out;
		}
	}
	struct swim_wbuf w = {.grow = true};
	if (m.flags & SWIM_WIRE_F_PUSH) {
		/* the entries our digest reply asked for: merge, answer with an empty header */
		r = pushpull_header(s, &w, SWIM_WIRE_F_REPLY, 0);
		if (r >= 0)
			merge_pushpull(s, req, len, m.name, from, false);
	} else if (m.flags & SWIM_WIRE_F_DIGEST) {
		r = digest_reply(s, req, len, &w);
	} else {
		r = encode_state(s, &w, false, true);
		if (r >= 0)
			merge_pushpull(s, req, len, m.name, from, m.flags & SWIM_WIRE_F_JOIN);
	}
	if (r < 0) {
		free(w.buf);
		return r;
	}
	*reply = w.buf;
	*reply_len = w.len;
out:
	if (r >= 0) {
		s->st.bytes_sent += *reply_len;
		s->st.stream_bytes_sent += *reply_len;
	}
	return r;
}

static void join_result(struct swim *s, const struct swim_pending *p, bool ok)
{
	if (p->attempt != s->join_attempt)
		return;
	if (s->join_outstanding)
		s->join_outstanding--;
	if (ok && !s->join_attempt_ok) {
		s->join_attempt_ok = true;
		s->join_status = 0;
		s->join_backoff = s->cfg.join_retry_min_ms;
		struct swim_event ev = {.type = SWIM_EV_JOINED, .addr = &p->addr};
		emit(s, &ev);
	}
	if (!s->join_outstanding && !s->join_attempt_ok && s->join_status == -EINPROGRESS) {
		uint32_t d = s->join_backoff;
		s->next_join = now(s) + d;
		s->join_backoff =
		    d * 2 > s->cfg.join_retry_max_ms ? s->cfg.join_retry_max_ms : d * 2;
		struct swim_event ev = {
		    .type = SWIM_EV_JOIN_RETRY, .delay_ms = d, .err = -EHOSTUNREACH};
		emit(s, &ev);
	}
}

void swim_stream_done(struct swim *s, uint64_t token, const void *reply, ssize_t len)
{
	struct swim_pending p;
	size_t i;

	for (i = 0; i < s->npending && s->pending[i].token != token; i++)
		;
	if (i == s->npending)
		return;
	p = s->pending[i];
	memmove(&s->pending[i], &s->pending[i + 1], (s->npending - i - 1) * sizeof(p));
	s->npending--;
	if (len > 0) {
		s->st.bytes_received += len;
		s->st.stream_bytes_received += len;
	}
	bool ok = len > 0 && swim_wire_check(reply, len) == 0;

	if (p.kind == PEND_TCP_PING) {
		struct swim_msg m;
		size_t off = sizeof(struct swim_wire_hdr);
		if (ok && swim_wire_next(reply, len, &off, &m) == 1 && m.type == SWIM_MSG_ACK &&
		    s->probe.active && m.seq == p.seq && s->probe.seq == p.seq)
			s->probe.tcp_acked = true;
		return;
	}
	if (s->leaving)
		return;
	struct swim_msg hdr, ref;
	bool refused = false;
	if (ok && parse_pushpull(reply, len, &hdr, &refused, &ref) < 0) {
		s->st.dropped[SWIM_DROP_MALFORMED]++;
		ok = false;
	}
	if (ok && refused) {
		if (p.kind == PEND_JOIN && ref.reason == SWIM_REFUSE_NAME_TAKEN &&
		    !strcmp(ref.name, s->self->name)) {
			s->join_status = -EEXIST;
			s->st.conflicts++;
			struct swim_event ev = {.type = SWIM_EV_JOIN_REFUSED,
						.name = s->self->name,
						.instance = ref.instance,
						.other_instance = s->self->pub.instance,
						.addr = &p.addr,
						.err = -EEXIST};
			emit(s, &ev);
		}
		return;
	}
	if (ok && p.kind == PEND_DIGEST)
		digest_done(s, &p, reply, (size_t)len, hdr.name);
	else if (ok && p.kind != PEND_PUSH)
		merge_pushpull(s, reply, len, hdr.name, &p.addr, false);
	if (p.kind == PEND_JOIN)
		join_result(s, &p, ok);
}

/* ---- timers ---- */

static void pushpull_periodic(struct swim *s, const struct swim_addr *to)
{
	if (s->cfg.pushpull_digest)
		pushpull_digest(s, to);
	else
		pushpull_with(s, to, false);
}

static uint32_t pushpull_interval(struct swim *s)
{
	uint32_t n = est_nodes(s), base = s->cfg.pushpull_interval_ms;

	if (s->cfg.pushpull_scale_memberlist) {
		if (n <= 32)
			return base;
		return base * ((uint32_t)ceil(log2(n) - log2(32)) + 1);
	}
	uint64_t v = (uint64_t)n * s->cfg.pushpull_per_node_ms;
	return v > base ? (uint32_t)v : base;
}

static void join_attempt(struct swim *s)
{
	s->join_attempt++;
	s->join_attempt_ok = false;
	s->join_outstanding = 0;
	for (size_t i = 0; i < s->nseeds; i++) {
		if (swim_addr_equal(&s->seeds[i], &s->self->pub.addr))
			continue;
		s->join_outstanding++;
	}
	if (!s->join_outstanding) {
		s->join_status = 0;
		return;
	}
	for (size_t i = 0; i < s->nseeds; i++)
		if (!swim_addr_equal(&s->seeds[i], &s->self->pub.addr))
			pushpull_with(s, &s->seeds[i], true);
}

static uint32_t alive_others(struct swim *s)
{
	return s->nlive - (s->self->pub.state <= SWIM_SUSPECT);
}

static void housekeep(struct swim *s, uint64_t t)
{
	for (size_t i = 0; s->n > s->nlive && i < s->n;) {
		struct swim_node *n = s->nodes[i];
		if (n->pub.state >= SWIM_DEAD &&
		    t - n->pub.state_since_ms >= s->cfg.dead_reclaim_ms) {
			struct swim_event ev = {.type = SWIM_EV_REAPED, .name = n->name};
			emit(s, &ev);
			remove_node(s, n);
			continue;
		}
		i++;
	}
	/* an isolated node announces itself to its seeds again */
	if (s->nseeds && s->join_status != -EEXIST && !alive_others(s)) {
		if (!s->isolated_since)
			s->isolated_since = t;
		if (t - s->isolated_since >= s->cfg.reannounce_ms && s->join_outstanding == 0 &&
		    t >= s->next_join) {
			struct swim_event ev = {.type = SWIM_EV_REANNOUNCE};
			emit(s, &ev);
			s->isolated_since = t;
			join_attempt(s);
		}
	} else {
		s->isolated_since = 0;
	}
}

uint64_t swim_next_timer_ms(const struct swim *s)
{
	uint64_t t = s->next_housekeep;

#define MIN_T(x)                                                                                   \
	do {                                                                                       \
		if ((x) < t)                                                                       \
			t = (x);                                                                   \
	} while (0)
	MIN_T(s->next_gossip);
	if (!s->leaving) {
		MIN_T(s->next_probe);
		MIN_T(s->next_pushpull);
		if (s->cfg.catchup_members && s->learned >= s->cfg.catchup_members)
			MIN_T(s->last_pushpull + s->cfg.catchup_ms);
		if (s->cfg.reconnect_interval_ms)
			MIN_T(s->next_reconnect);
		if (s->join_status == -EINPROGRESS && !s->join_outstanding)
			MIN_T(s->next_join);
	}
	if (s->probe.active)
		MIN_T(s->probe.indirect_sent ? s->probe.end : s->probe.indirect_at);
	for (size_t i = 0; i < s->nsusp; i++)
		MIN_T(s->suspects[i]->susp->deadline);
	for (size_t i = 0; i < s->nrelays; i++)
		MIN_T(s->relays[i].deadline);
#undef MIN_T
	return t;
}

void swim_tick(struct swim *s)
{
	uint64_t t = now(s);

	/* relays that timed out: nack so the requester knows we are fine */
	for (size_t i = 0; i < s->nrelays;) {
		struct swim_relay *r = &s->relays[i];
		if (t < r->deadline) {
			i++;
			continue;
		}
		struct swim_msg nk = {.type = SWIM_MSG_NACK, .seq = r->orig_seq};
		struct swim_addr to = r->requester;
		bool nack = r->nack;
		*r = s->relays[--s->nrelays];
		if (nack) {
			s->st.nacks_sent++;
			send_msgs(s, &to, &nk, 1, false);
		}
	}
	/* suspicions that expired: declare dead */
	for (size_t i = 0; i < s->nsusp;) {
		struct swim_node *n = s->suspects[i];
		if (t < n->susp->deadline) {
			i++;
			continue;
		}
		struct swim_msg m;
		if (s->cfg.final_probe_ms && !n->susp->final_probe) {
			/*
			 * Before declaring it dead, tell the suspect itself: if it refuted and we
			 * missed that, it answers with its alive (correct_stale) right away.
			 */
			n->susp->final_probe = true;
			n->susp->deadline = t + s->cfg.final_probe_ms;
			fill_accuse(&m, SWIM_MSG_SUSPECT, n, s->self->name);
			send_msgs(s, &n->pub.addr, &m, 1, false);
			i++;
			continue;
		}
		fill_accuse(&m, SWIM_MSG_DEAD, n, s->self->name);
		s->st.deaths_declared++;
		apply_dead(s, &m, NULL); /* removes n from the list */
		if (n->susp)
			clear_suspicion(s, n);
	}
	if (s->probe.active && !s->probe.indirect_sent && t >= s->probe.indirect_at)
		probe_indirect(s);
	if (s->probe.active && t >= s->probe.end)
		probe_end(s);
	if (!s->leaving && t >= s->next_probe)
		probe_start(s);
	if (t >= s->next_gossip) {
		gossip_round(s);
		s->next_gossip = t + s->cfg.gossip_interval_ms;
	}
	if (!s->leaving && t >= s->next_pushpull) {
		struct swim_node *to;
		if (k_random(s, 1, &to, ok_alive_not, NULL) == 1)
			pushpull_periodic(s, &to->pub.addr);
		uint32_t iv = pushpull_interval(s);
		s->next_pushpull = t + iv / 2 + rnd(s, iv); /* jitter: no synchronised rounds */
	} else if (!s->leaving && s->cfg.catchup_members && s->learned >= s->cfg.catchup_members &&
		   t - s->last_pushpull >= s->cfg.catchup_ms) {
		/* a mass join: repair what gossip missed now, not at the next periodic exchange */
		struct swim_node *to;
		if (k_random(s, 1, &to, ok_alive_not, NULL) == 1)
			pushpull_periodic(s, &to->pub.addr);
	}
	if (!s->leaving && s->cfg.reconnect_interval_ms && t >= s->next_reconnect) {
		struct swim_node *to;
		if (s->n > s->nlive && k_random(s, 1, &to, ok_recent_dead, NULL) == 1) {
			struct swim_msg p = {.type = SWIM_MSG_PING, .seq = ++s->seq};
			snprintf(p.name, sizeof(p.name), "%s", to->name);
			snprintf(p.from, sizeof(p.from), "%s", s->self->name);
			s->reconnect_seq = p.seq;
			snprintf(s->reconnect_target, sizeof(s->reconnect_target), "%s", to->name);
			send_msgs(s, &to->pub.addr, &p, 1, false);
		}
		uint32_t iv = s->cfg.reconnect_interval_ms;
		/* while a heal is going on (members coming back), every 200-400 ms */
		if (s->cfg.heal_pushpull_ms && s->revived >= 3 && t - s->revived_since < 10000)
			iv = 200;
		s->next_reconnect = t + iv / 2 + rnd(s, iv);
	}
	if (!s->leaving && s->join_status == -EINPROGRESS && !s->join_outstanding &&
	    t >= s->next_join)
		join_attempt(s);
	if (t >= s->next_housekeep) {
		housekeep(s, t);
		s->next_housekeep = t + HOUSEKEEP_MS;
	}
}

/* ---- public API ---- */

struct swim_config swim_config_default(void)
{
	return (struct swim_config){
	    .probe_interval_ms = 200,
	    .probe_timeout_ms = 100,
	    .indirect_checks = 5,
	    .direct_retry = true,
	    .final_probe_ms = 100,
	    .heal_pushpull_ms = 500,
	    .catchup_members = 16,
	    .catchup_ms = 2000,
	    .pushpull_digest = true,
	    .tcp_fallback = true,
	    .suspicion_mult = 3,
	    .suspicion_max_mult = 3,
	    .suspicion_min_ms = 1250,
	    .retransmit_mult = 4,
	    .gossip_interval_ms = 100,
	    .gossip_nodes = 3,
	    .gossip_to_dead_ms = 30000,
	    .pushpull_interval_ms = 30000,
	    .pushpull_per_node_ms = 200,
	    .awareness_max = 8,
	    .max_own_suspicions = 3,
	    .suspect_burst = 3,
	    .suspect_refill_ms = 1000,
	    .join_retry_min_ms = 500,
	    .join_retry_max_ms = 30000,
	    .reannounce_ms = 10000,
	    .reconnect_interval_ms = 2000,
	    .dead_reclaim_ms = 300000,
	    .stream_timeout_ms = 5000,
	    .max_dgram = SWIM_DGRAM_MAX - 64,
	};
}

struct swim_config swim_config_memberlist_lan(void)
{
	/* memberlist DefaultLANConfig; reconnect as serf does it (30 s) */
	return (struct swim_config){
	    .probe_interval_ms = 1000,
	    .probe_timeout_ms = 500,
	    .indirect_checks = 3,
	    .tcp_fallback = true,
	    .suspicion_mult = 4,
	    .suspicion_max_mult = 6,
	    .suspicion_min_ms = 0,
	    .retransmit_mult = 4,
	    .gossip_interval_ms = 200,
	    .gossip_nodes = 3,
	    .gossip_to_dead_ms = 30000,
	    .pushpull_interval_ms = 30000,
	    .pushpull_scale_memberlist = 1,
	    .awareness_max = 8,
	    .max_own_suspicions = 0,
	    .suspect_burst = 0,
	    .join_retry_min_ms = 1000,
	    .join_retry_max_ms = 30000,
	    .reannounce_ms = 30000,
	    .reconnect_interval_ms = 30000,
	    .dead_reclaim_ms = 300000,
	    .stream_timeout_ms = 10000,
	    .max_dgram = SWIM_DGRAM_MAX - 64,
	};
}

static bool name_ok(const char *name)
{
	size_t l = name ? strlen(name) : 0;

	return l > 0 && l <= SWIM_NAME_MAX;
}

int swim_new(const struct swim_config *cfg, const struct swim_env *env, const char *name,
	     uint64_t instance, const struct swim_addr *addr, uint32_t incarnation,
	     struct swim **ret)
{
	if (!cfg || !env || !env->now_ms || !env->rand32 || !env->send_udp || !env->stream ||
	    !name_ok(name) || !addr ||
	    (addr->family != SWIM_AF_INET && addr->family != SWIM_AF_INET6) ||
	    !cfg->probe_interval_ms || !cfg->probe_timeout_ms || !cfg->gossip_interval_ms ||
	    cfg->max_dgram < 256 || cfg->max_dgram > SWIM_DGRAM_MAX || !ret)
		return -EINVAL;
	struct swim *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.suspect_refill_ms)
		s->cfg.suspect_refill_ms = 1000;
	if (!s->cfg.join_retry_min_ms)
		s->cfg.join_retry_min_ms = 1000;
	if (s->cfg.join_retry_max_ms < s->cfg.join_retry_min_ms)
		s->cfg.join_retry_max_ms = s->cfg.join_retry_min_ms;
	s->env = *env;
	s->dgram = malloc(SWIM_DGRAM_MAX);
	if (!s->dgram || rehash(s, 16) < 0) {
		swim_free(s);
		return -ENOMEM;
	}
	s->self = add_node(s, name, instance, addr);
	if (!s->self) {
		swim_free(s);
		return -ENOMEM;
	}
	s->self->pub.self = true;
	s->self->pub.incarnation = incarnation;
	uint64_t t = now(s);
	s->next_probe = t + rnd(s, s->cfg.probe_interval_ms);
	s->next_gossip = t + s->cfg.gossip_interval_ms;
	s->next_pushpull =
	    t + s->cfg.pushpull_interval_ms / 2 + rnd(s, s->cfg.pushpull_interval_ms);
	s->next_reconnect =
	    t + (s->cfg.reconnect_interval_ms ? rnd(s, s->cfg.reconnect_interval_ms) : 0);
	s->next_housekeep = t + HOUSEKEEP_MS;
	s->suspect_tokens = s->cfg.suspect_burst;
	s->tokens_at = t;
	s->join_backoff = s->cfg.join_retry_min_ms;
	*ret = s;
	return 0;
}

struct swim *swim_free(struct swim *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		free(s->nodes[i]->susp);
		free(s->nodes[i]->meta);
		free(s->nodes[i]);
	}
	for (size_t i = 0; i < s->nbq; i++)
		free(s->bq[i].msg);
	free(s->bq);
	free(s->nodes);
	free(s->buckets);
	free(s->suspects);
	free(s->relays);
	free(s->seeds);
	free(s->dgram);
	free(s);
	return NULL;
}

int swim_set_meta(struct swim *s, const void *buf, size_t len)
{
	struct swim_msg m;
	int r;

	if (len > SWIM_META_MAX || (len && !buf))
		return -EINVAL;
	r = set_meta(s->self, buf, len);
	if (r <= 0)
		return r;
	s->self->pub.incarnation++;
	fill_alive(&m, s->self);
	queue_broadcast(s, &m);
	changed(s, s->self);
	return 0;
}

int swim_join(struct swim *s, const struct swim_addr *seeds, size_t n)
{
	struct swim_msg m;

	if (s->leaving)
		return -ESHUTDOWN;
	if (n && !seeds)
		return -EINVAL;
	struct swim_addr *copy = n ? calloc(n, sizeof(*copy)) : NULL;
	if (n && !copy)
		return -ENOMEM;
	if (n)
		memcpy(copy, seeds, n * sizeof(*copy));
	free(s->seeds);
	s->seeds = copy;
	s->nseeds = n;
	s->join_asked = true;
	s->join_status = -EINPROGRESS;
	s->join_backoff = s->cfg.join_retry_min_ms;
	fill_alive(&m, s->self);
	queue_broadcast(s, &m);
	join_attempt(s);
	return 0;
}

int swim_join_status(const struct swim *s)
{
	return s->join_status;
}

int swim_leave(struct swim *s)
{
	struct swim_node *to[16];
	struct swim_msg m;

	if (s->leaving)
		return 0;
	s->leaving = true;
	s->probe.active = false;
	fill_accuse(&m, SWIM_MSG_DEAD, s->self, s->self->name);
	set_state(s, s->self, SWIM_LEFT);
	queue_broadcast(s, &m);
	size_t k = k_random(s, 2 * s->cfg.gossip_nodes < 16 ? 2 * s->cfg.gossip_nodes : 16, to,
			    ok_alive_not, NULL);
	for (size_t i = 0; i < k; i++)
		send_msgs(s, &to[i]->pub.addr, &m, 1, false);
	changed(s, s->self);
	return 0;
}

bool swim_leave_done(const struct swim *s)
{
	if (!s->leaving)
		return false;
	for (size_t i = 0; i < s->nbq; i++)
		if (!strcmp(s->bq[i].name, s->self->name))
			return false;
	return true;
}

size_t swim_member_count(const struct swim *s)
{
	return s->n;
}

const struct swim_member *swim_member_get(const struct swim *s, size_t i)
{
	return i < s->n ? &s->nodes[i]->pub : NULL;
}

const struct swim_member *swim_member_find(const struct swim *s, const char *name)
{
	struct swim_node *n = name ? find(s, name) : NULL;

	return n ? &n->pub : NULL;
}

const struct swim_member *swim_self(const struct swim *s)
{
	return &s->self->pub;
}

void swim_get_stats(const struct swim *s, struct swim_stats *st)
{
	*st = s->st;
	st->health_score = s->awareness;
	st->incarnation = s->self->pub.incarnation;
	st->alive = st->suspect = st->dead = st->left = 0;
	for (size_t i = 0; i < s->n; i++)
		switch (s->nodes[i]->pub.state) {
		case SWIM_ALIVE:
			st->alive++;
			break;
		case SWIM_SUSPECT:
			st->suspect++;
			break;
		case SWIM_DEAD:
			st->dead++;
			break;
		case SWIM_LEFT:
			st->left++;
			break;
		}
}

const char *swim_state_name(enum swim_state st)
{
	static const char *const names[] = {"alive", "suspect", "dead", "left"};

	return (unsigned)st < 4 ? names[st] : "unknown";
}

const char *swim_drop_name(enum swim_drop d)
{
	static const char *const names[] = {"malformed", "version",  "unknown_msg", "wrong_node",
					    "conflict",	 "oversize", "not_running"};

	return (unsigned)d < SWIM_DROP__MAX ? names[d] : "unknown";
}

int swim_addr_format(const struct swim_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->family == SWIM_AF_INET) {
		if (!inet_ntop(AF_INET, a->ip, ip, sizeof(ip)))
			return -EINVAL;
		return snprintf(buf, len, "%s:%u", ip, a->port);
	}
	if (a->family == SWIM_AF_INET6) {
		if (!inet_ntop(AF_INET6, a->ip, ip, sizeof(ip)))
			return -EINVAL;
		return snprintf(buf, len, "[%s]:%u", ip, a->port);
	}
	return -EINVAL;
}

int swim_addr_parse(const char *str, struct swim_addr *a)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	char *end;

	memset(a, 0, sizeof(*a));
	if (str[0] == '[') {
		const char *rb = strchr(str, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - str - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, str + 1, rb - str - 1);
		host[rb - str - 1] = 0;
		colon = rb + 1;
		if (inet_pton(AF_INET6, host, a->ip) != 1)
			return -EINVAL;
		a->family = SWIM_AF_INET6;
	} else {
		colon = strrchr(str, ':');
		if (!colon || (size_t)(colon - str) >= sizeof(host))
			return -EINVAL;
		memcpy(host, str, colon - str);
		host[colon - str] = 0;
		if (inet_pton(AF_INET, host, a->ip) != 1)
			return -EINVAL;
		a->family = SWIM_AF_INET;
	}
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p == 0 || p > 65535)
		return -EINVAL;
	a->port = (uint16_t)p;
	return 0;
}

bool swim_addr_equal(const struct swim_addr *a, const struct swim_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       !memcmp(a->ip, b->ip, a->family == SWIM_AF_INET ? 4 : 16);
}
