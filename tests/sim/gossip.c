// SPDX-License-Identifier: Apache-2.0
/*
 * The gossip membership state machine (sched/swim.c) at 100 and 1,000 nodes in one process, on
 * a simulated clock and network: per-packet loss, delay and jitter, duplication, reordering,
 * partitions between groups, crashes, restarts and stalls (a node not scheduled for a while; what
 * reaches it meanwhile waits in its socket buffer). TCP streams are reliable but pay Linux's
 * retransmission timeouts for lost segments (1 s for a SYN, 200 ms otherwise). One seeded
 * generator drives everything and events at the same microsecond run in the order they were
 * made, so a seed reproduces a run exactly.
 *
 * Checked every run (sim_gossip_run): no live member is ever declared dead at 10 % loss over 10
 * simulated minutes; stalls of up to 1 s never cause a death; a crashed member is declared dead
 * on every live node; a restarted member refutes its death with a higher incarnation; views
 * converge after a partition heals. sim_gossip_bench measures the same with memberlist's LAN
 * defaults and with Shoal's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/swim.h"
#include "tests/sim/sim.h"

#define MS 1000ULL
#define SEC 1000000ULL

/* ---- randomness ---- */

static uint64_t rng_state;

static uint32_t rng32(void)
{
	/* xorshift64*: reproducible from the seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static bool chance_ppm(uint32_t ppm)
{
	return ppm && rng32() % 1000000 < ppm;
}

/* ---- the world ---- */

struct net {
	uint32_t loss_ppm;
	uint32_t dup_ppm;
	uint32_t reorder_ppm;  /* packets held back 5..50 ms */
	uint32_t delay_min_us; /* one way */
	uint32_t delay_jitter_us;
};

enum ev_type {
	EV_TIMER,
	EV_UDP,
	EV_STREAM_REQ,
	EV_STREAM_REPLY,
	EV_STREAM_TIMEOUT,
	EV_WAKE,
};

struct ev {
	uint64_t t, seq;
	enum ev_type type;
	uint32_t node; /* destination */
	uint32_t gen;  /* destination's life (a restart makes old events stale) */
	uint32_t from; /* source node */
	uint32_t stream;
	int32_t err;
	uint32_t len;
	uint8_t *buf;
};

struct stream {
	uint32_t client, client_gen;
	uint64_t token;
	bool done;
};

struct gnode {
	struct swim *sw;
	char name[16];
	uint64_t instance;
	struct swim_addr addr;
	bool up;
	bool ever_crashed;
	uint32_t gen;
	uint32_t group;
	uint64_t stalled_until; /* µs */
	uint64_t timer_at;	/* µs of the pending timer event, 0 if none */
	struct ev *inbox;	/* what arrived while stalled, in order */
	size_t ninbox, capinbox;
	uint64_t bytes_base; /* bytes_sent at the start of a measurement */
};

struct world {
	struct swim_config cfg;
	struct net net;
	struct gnode *nodes;
	uint32_t n;
	uint64_t now; /* µs */
	uint64_t seq;
	struct ev *heap;
	size_t nheap, capheap;
	struct stream *streams;
	size_t nstreams, capstreams;
	bool partitioned;
	bool count_false_deaths;
	uint32_t false_deaths;
	/* crash tracking: one target at a time */
	int32_t track;
	uint8_t *track_seen;
	uint32_t track_count;
	uint64_t track_done;
	uint32_t cur; /* node whose swim is running (for callbacks) */
};

static struct world W;

static uint64_t cb_now(void *ud)
{
	return W.now / MS;
}

static uint32_t cb_rand(void *ud)
{
	return rng32();
}

/* ---- event heap ---- */

static bool ev_less(const struct ev *a, const struct ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(struct ev e)
{
	if (W.nheap == W.capheap) {
		W.capheap = W.capheap ? W.capheap * 2 : 4096;
		W.heap = realloc(W.heap, W.capheap * sizeof(*W.heap));
		if (!W.heap)
			abort();
	}
	e.seq = ++W.seq;
	size_t i = W.nheap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ev_less(&e, &W.heap[p]))
			break;
		W.heap[i] = W.heap[p];
		i = p;
	}
	W.heap[i] = e;
}

static struct ev pop(void)
{
	struct ev top = W.heap[0], last = W.heap[--W.nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= W.nheap)
			break;
		if (c + 1 < W.nheap && ev_less(&W.heap[c + 1], &W.heap[c]))
			c++;
		if (!ev_less(&W.heap[c], &last))
			break;
		W.heap[i] = W.heap[c];
		i = c;
	}
	if (W.nheap)
		W.heap[i] = last;
	return top;
}

/* ---- addresses ---- */

static struct swim_addr node_addr(uint32_t i)
{
	struct swim_addr a = {.family = SWIM_AF_INET, .port = 7946};

	a.ip[0] = 10;
	a.ip[1] = 1 + (i >> 16);
	a.ip[2] = (i >> 8) & 0xff;
	a.ip[3] = i & 0xff;
	return a;
}

static int32_t addr_node(const struct swim_addr *a)
{
	if (a->family != SWIM_AF_INET || a->ip[0] != 10 || a->ip[1] == 0)
		return -1;
	uint32_t i = (uint32_t)(a->ip[1] - 1) << 16 | a->ip[2] << 8 | a->ip[3];
	return i < W.n ? (int32_t)i : -1;
}

static int32_t name_node(const char *name)
{
	if (name[0] != 'n')
		return -1;
	long v = strtol(name + 1, NULL, 10);
	return v >= 0 && v < W.n ? (int32_t)v : -1;
}

/* ---- the network ---- */

static uint64_t one_way(void)
{
	uint64_t d =
	    W.net.delay_min_us + (W.net.delay_jitter_us ? rng32() % W.net.delay_jitter_us : 0);

	if (chance_ppm(W.net.reorder_ppm))
		d += 5 * MS + rng32() % (45 * MS);
	return d;
}

static bool reachable(uint32_t a, uint32_t b)
{
	return W.nodes[a].group == W.nodes[b].group;
}

static int cb_send_udp(void *ud, const struct swim_addr *to, const void *buf, size_t len)
{
	uint32_t from = W.cur;
	int32_t dst = addr_node(to);
	int copies = 1 + chance_ppm(W.net.dup_ppm);

	if (dst < 0)
		return -EHOSTUNREACH;
	if (len > SWIM_DGRAM_MAX) {
		fprintf(stderr, "sim: datagram of %zu bytes\n", len);
		abort();
	}
	for (int c = 0; c < copies; c++) {
		if (!reachable(from, dst) || chance_ppm(W.net.loss_ppm))
			continue;
		struct ev e = {.t = W.now + one_way(),
			       .type = EV_UDP,
			       .node = dst,
			       .gen = W.nodes[dst].gen,
			       .from = from,
			       .len = len};
		e.buf = malloc(len);
		memcpy(e.buf, buf, len);
		push(e);
	}
	return 0;
}

/* a TCP segment: delivered, after retransmissions of what was lost */
static uint64_t tcp_segment(uint64_t rto)
{
	uint64_t d = one_way();

	for (int i = 0; i < 6 && chance_ppm(W.net.loss_ppm); i++)
		d += rto << i;
	return d;
}

static int cb_stream(void *ud, const struct swim_addr *to, const void *req, size_t len,
		     uint64_t token)
{
	uint32_t from = W.cur;
	int32_t dst = addr_node(to);

	if (W.nstreams == W.capstreams) {
		W.capstreams = W.capstreams ? W.capstreams * 2 : 1024;
		W.streams = realloc(W.streams, W.capstreams * sizeof(*W.streams));
		if (!W.streams)
			abort();
	}
	uint32_t id = (uint32_t)W.nstreams++;
	W.streams[id] =
	    (struct stream){.client = from, .client_gen = W.nodes[from].gen, .token = token};
	/* the client side gives up after stream_timeout_ms */
	push((struct ev){.t = W.now + (uint64_t)W.cfg.stream_timeout_ms * MS,
			 .type = EV_STREAM_TIMEOUT,
			 .node = from,
			 .gen = W.nodes[from].gen,
			 .stream = id,
			 .err = -ETIMEDOUT});
	if (dst < 0 || !reachable(from, dst))
		return 0; /* SYNs vanish: the timeout answers */
	/* handshake (SYN, SYN-ACK: 1 s RTO) then the request */
	uint64_t d = tcp_segment(SEC) + tcp_segment(SEC) + tcp_segment(200 * MS);
	if (!W.nodes[dst].up) {
		push((struct ev){.t = W.now + 2 * one_way(),
				 .type = EV_STREAM_REPLY,
				 .node = from,
				 .gen = W.nodes[from].gen,
				 .stream = id,
				 .err = -ECONNREFUSED});
		return 0;
	}
	struct ev e = {.t = W.now + d,
		       .type = EV_STREAM_REQ,
		       .node = dst,
		       .gen = W.nodes[dst].gen,
		       .from = from,
		       .stream = id,
		       .len = len};
	e.buf = malloc(len);
	memcpy(e.buf, req, len);
	push(e);
	return 0;
}

static const char *trace_name; /* SIM_TRACE=n42: print every view change about it */

static void on_change(void *ud, const struct swim_member *m)
{
	int32_t x = name_node(m->name);

	if (trace_name && !strcmp(trace_name, m->name))
		fprintf(stderr, "trace: t=%.3fs %s sees %s %s inc %u\n", (double)W.now / SEC,
			W.nodes[W.cur].name, m->name, swim_state_name(m->state), m->incarnation);

	if (x < 0 || m->self)
		return;
	if (m->state == SWIM_DEAD && W.nodes[x].up && !W.nodes[x].ever_crashed &&
	    W.count_false_deaths) {
		W.false_deaths++;
		fprintf(stderr, "sim: t=%.3fs %s declared live %s dead (inc %u)\n",
			(double)W.now / SEC, W.nodes[W.cur].name, m->name, m->incarnation);
	}
	if (x == W.track && m->state == SWIM_DEAD && !W.track_seen[W.cur]) {
		W.track_seen[W.cur] = 1;
		W.track_count++;
	}
}

static void on_event(void *ud, const struct swim_event *ev)
{
	if (trace_name && ev->type == SWIM_EV_REFUTED && !strcmp(trace_name, ev->name))
		fprintf(stderr, "trace: t=%.3fs %s refutes, inc %u\n", (double)W.now / SEC,
			ev->name, ev->incarnation);
	if (ev->type == SWIM_EV_CONFLICT || ev->type == SWIM_EV_JOIN_REFUSED)
		fprintf(stderr, "sim: %s: %s %s\n", W.nodes[W.cur].name,
			ev->type == SWIM_EV_CONFLICT ? "conflict" : "join refused", ev->name);
}

static const struct swim_env ENV = {
    .now_ms = cb_now,
    .rand32 = cb_rand,
    .send_udp = cb_send_udp,
    .stream = cb_stream,
    .on_change = on_change,
    .on_event = on_event,
};

/* After a node ran: make sure its next timer is scheduled. */
static void arm(uint32_t i)
{
	struct gnode *g = &W.nodes[i];

	if (!g->up)
		return;
	uint64_t t = swim_next_timer_ms(g->sw) * MS;
	if (t < W.now)
		t = W.now;
	if (g->timer_at && g->timer_at <= t)
		return;
	g->timer_at = t;
	push((struct ev){.t = t, .type = EV_TIMER, .node = i, .gen = g->gen});
}

static void deliver(uint32_t i, struct ev *e)
{
	struct gnode *g = &W.nodes[i];

	W.cur = i;
	switch (e->type) {
	case EV_TIMER:
		swim_tick(g->sw);
		break;
	case EV_UDP: {
		struct swim_addr from = node_addr(e->from);
		swim_recv_udp(g->sw, &from, e->buf, e->len);
		break;
	}
	case EV_STREAM_REQ: {
		struct swim_addr from = node_addr(e->from);
		void *reply = NULL;
		size_t rlen = 0;
		int r = swim_handle_stream(g->sw, &from, e->buf, e->len, &reply, &rlen);
		uint32_t c = W.streams[e->stream].client;
		if (reachable(i, c)) {
			struct ev re = {.t = W.now + tcp_segment(200 * MS),
					.type = EV_STREAM_REPLY,
					.node = c,
					.gen = W.streams[e->stream].client_gen,
					.stream = e->stream,
					.err = r < 0 ? r : 0};
			if (r >= 0 && reply) {
				re.buf = reply;
				re.len = rlen;
				reply = NULL;
			} else if (r >= 0) {
				re.err = -ECONNRESET;
			}
			push(re);
		}
		free(reply);
		break;
	}
	case EV_STREAM_REPLY:
	case EV_STREAM_TIMEOUT: {
		struct stream *st = &W.streams[e->stream];
		if (st->done)
			break;
		st->done = true;
		if (e->err < 0 || !e->buf)
			swim_stream_done(g->sw, st->token, NULL, e->err < 0 ? e->err : -EIO);
		else
			swim_stream_done(g->sw, st->token, e->buf, e->len);
		break;
	}
	case EV_WAKE:
		break;
	}
	arm(i);
}

static void step(struct ev *e)
{
	struct gnode *g = &W.nodes[e->node];

	W.now = e->t;
	if (!g->up || e->gen != g->gen) {
		/* a crashed process: streams to it are refused, the rest vanishes */
		if (e->type == EV_STREAM_REQ && g->up == false) {
			uint32_t c = W.streams[e->stream].client;
			push((struct ev){.t = W.now + one_way(),
					 .type = EV_STREAM_REPLY,
					 .node = c,
					 .gen = W.streams[e->stream].client_gen,
					 .stream = e->stream,
					 .err = -ECONNREFUSED});
		}
		free(e->buf);
		return;
	}
	if (e->type == EV_TIMER) {
		if (e->t != g->timer_at)
			return; /* superseded */
		g->timer_at = 0;
	}
	if (g->stalled_until > W.now) {
		if (e->type == EV_TIMER || e->type == EV_WAKE)
			return; /* the wake-up runs it */
		if (g->ninbox == g->capinbox) {
			g->capinbox = g->capinbox ? g->capinbox * 2 : 64;
			g->inbox = realloc(g->inbox, g->capinbox * sizeof(*g->inbox));
			if (!g->inbox)
				abort();
		}
		g->inbox[g->ninbox++] = *e;
		return;
	}
	if (e->type == EV_WAKE) {
		/* the socket buffers first, then the overdue timers */
		for (size_t k = 0; k < g->ninbox; k++) {
			deliver(e->node, &g->inbox[k]);
			free(g->inbox[k].buf);
		}
		g->ninbox = 0;
		g->timer_at = 0;
		W.cur = e->node;
		swim_tick(g->sw);
		arm(e->node);
		return;
	}
	deliver(e->node, e);
	free(e->buf);
}

static void run_until(uint64_t t)
{
	while (W.nheap && W.heap[0].t <= t) {
		struct ev e = pop();
		step(&e);
	}
	W.now = t;
}

/* ---- scenario helpers ---- */

static void node_start(uint32_t i, uint32_t incarnation)
{
	struct gnode *g = &W.nodes[i];
	/* metadata like the daemon's: pod CIDR and capacity */
	char meta[64];
	int ml =
	    snprintf(meta, sizeof(meta), "{\"podCIDR\":\"10.244.%u.0/24\",\"cpu\":8}", i & 255);

	g->gen++;
	g->up = true;
	g->timer_at = 0;
	g->stalled_until = 0;
	W.cur = i;
	if (swim_new(&W.cfg, &ENV, g->name, g->instance, &g->addr, incarnation, &g->sw) < 0)
		abort();
	swim_set_meta(g->sw, meta, ml);
}

static void node_join(uint32_t i)
{
	struct swim_addr seeds[3] = {node_addr(0), node_addr(1), node_addr(2)};

	W.cur = i;
	swim_join(W.nodes[i].sw, seeds, W.n < 3 ? W.n : 3);
	arm(i);
}

static void node_crash(uint32_t i)
{
	struct gnode *g = &W.nodes[i];

	g->up = false;
	g->ever_crashed = true;
	g->sw = swim_free(g->sw);
	for (size_t k = 0; k < g->ninbox; k++)
		free(g->inbox[k].buf);
	g->ninbox = 0;
}

static void node_stall(uint32_t i, uint64_t us)
{
	W.nodes[i].stalled_until = W.now + us;
	push((struct ev){.t = W.now + us, .type = EV_WAKE, .node = i, .gen = W.nodes[i].gen});
}

static uint32_t live_count(void)
{
	uint32_t c = 0;

	for (uint32_t i = 0; i < W.n; i++)
		c += W.nodes[i].up;
	return c;
}

/* every live node sees every live node alive (and nothing else alive or suspect) */
static bool converged(void)
{
	uint32_t live = live_count();

	for (uint32_t i = 0; i < W.n; i++) {
		if (!W.nodes[i].up)
			continue;
		struct swim_stats st;
		swim_get_stats(W.nodes[i].sw, &st);
		if (st.alive != live || st.suspect)
			return false;
	}
	for (uint32_t i = 0; i < W.n; i++) {
		if (!W.nodes[i].up)
			continue;
		/* a spot check that the alive set is the right one */
		uint32_t j = rng32() % W.n;
		const struct swim_member *m = swim_member_find(W.nodes[i].sw, W.nodes[j].name);
		if (W.nodes[j].up && (!m || m->state != SWIM_ALIVE))
			return false;
	}
	return true;
}

/* run until converged or the deadline; returns the µs it took, or UINT64_MAX */
static uint64_t run_until_converged(uint64_t max_us, uint64_t poll_us)
{
	uint64_t start = W.now;

	while (W.now - start < max_us) {
		run_until(W.now + poll_us);
		if (converged())
			return W.now - start;
	}
	return UINT64_MAX;
}

static void world_free(void)
{
	for (uint32_t i = 0; i < W.n; i++) {
		swim_free(W.nodes[i].sw);
		for (size_t k = 0; k < W.nodes[i].ninbox; k++)
			free(W.nodes[i].inbox[k].buf);
		free(W.nodes[i].inbox);
	}
	for (size_t k = 0; k < W.nheap; k++)
		free(W.heap[k].buf);
	free(W.heap);
	free(W.streams);
	free(W.nodes);
	free(W.track_seen);
	memset(&W, 0, sizeof(W));
}

static const struct net NET_LAN = {
    .loss_ppm = 0,
    .dup_ppm = 2000,
    .reorder_ppm = 2000,
    .delay_min_us = 200,
    .delay_jitter_us = 1500,
};

/* N nodes joining through 3 seeds, 10 ms apart; returns false if they do not converge */
static bool world_init(uint64_t seed, uint32_t n, const struct swim_config *cfg)
{
	world_free();
	trace_name = getenv("SIM_TRACE");
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	W.cfg = *cfg;
	W.cfg.packet_overhead = 28 + 41; /* IPv4 + UDP, and the glue's AEAD framing */
	W.net = NET_LAN;
	W.n = n;
	W.track = -1;
	W.nodes = calloc(n, sizeof(*W.nodes));
	W.track_seen = calloc(n, 1);
	W.now = 1000 * SEC;
	for (uint32_t i = 0; i < n; i++) {
		struct gnode *g = &W.nodes[i];
		snprintf(g->name, sizeof(g->name), "n%u", i);
		g->instance = ((uint64_t)rng32() << 32) | rng32();
		g->addr = node_addr(i);
	}
	for (uint32_t i = 0; i < n; i++) {
		node_start(i, 0);
		node_join(i);
		run_until(W.now + 10 * MS);
	}
	if (getenv("SIM_DEBUG_JOIN")) {
		run_until(W.now + 5 * SEC);
		for (uint32_t i = 0; i < n; i++) {
			struct swim_stats st;
			swim_get_stats(W.nodes[i].sw, &st);
			if (st.alive != n) {
				fprintf(stderr,
					"join: %s sees %u alive %u suspect %u dead; missing",
					W.nodes[i].name, st.alive, st.suspect, st.dead);
				for (uint32_t j = 0; j < n; j++)
					if (!swim_member_find(W.nodes[i].sw, W.nodes[j].name))
						fprintf(stderr, " %s", W.nodes[j].name);
				fprintf(stderr, "\n");
			}
		}
	}
	return run_until_converged(300 * SEC, 500 * MS) != UINT64_MAX;
}

static void clear_net(void)
{
	W.net = NET_LAN;
}

/* crash one node; returns µs until every live node holds it dead, UINT64_MAX if not in max */
static uint64_t crash_and_measure(uint32_t x, uint64_t max_us)
{
	uint64_t start = W.now;

	memset(W.track_seen, 0, W.n);
	W.track = (int32_t)x;
	W.track_count = 0;
	node_crash(x);
	uint32_t need = live_count();
	while (W.now - start < max_us) {
		run_until(W.now + 10 * MS);
		if (W.track_count >= need) {
			W.track = -1;
			return W.now - start;
		}
	}
	W.track = -1;
	return UINT64_MAX;
}

/* restart a crashed node with incarnation 0 (nothing persisted): it must refute its death */
static uint64_t restart_and_measure(uint32_t x, uint32_t *old_inc, uint64_t max_us)
{
	uint64_t start = W.now;
	uint32_t other = (x + 1) % W.n;
	const struct swim_member *m = swim_member_find(W.nodes[other].sw, W.nodes[x].name);

	*old_inc = m ? m->incarnation : 0;
	node_start(x, 0);
	node_join(x);
	while (W.now - start < max_us) {
		run_until(W.now + 10 * MS);
		bool all = true;
		for (uint32_t i = 0; i < W.n && all; i++) {
			if (!W.nodes[i].up || i == x)
				continue;
			m = swim_member_find(W.nodes[i].sw, W.nodes[x].name);
			all = m && m->state == SWIM_ALIVE && m->incarnation > *old_inc;
		}
		if (all)
			return W.now - start;
	}
	return UINT64_MAX;
}

static uint64_t idle_bytes_per_sec(uint64_t window_us)
{
	struct swim_stats st;
	uint64_t total = 0;

	for (uint32_t i = 0; i < W.n; i++) {
		swim_get_stats(W.nodes[i].sw, &st);
		W.nodes[i].bytes_base = st.bytes_sent;
	}
	run_until(W.now + window_us);
	for (uint32_t i = 0; i < W.n; i++) {
		swim_get_stats(W.nodes[i].sw, &st);
		total += st.bytes_sent - W.nodes[i].bytes_base;
	}
	return total * SEC / window_us / W.n;
}

static void partition(uint32_t first_group_size)
{
	for (uint32_t i = 0; i < W.n; i++)
		W.nodes[i].group = i < first_group_size ? 0 : 1;
	W.partitioned = true;
}

static void heal(void)
{
	for (uint32_t i = 0; i < W.n; i++)
		W.nodes[i].group = 0;
	W.partitioned = false;
}

/* both sides hold the other side dead */
static bool partition_settled(uint32_t split)
{
	for (uint32_t i = 0; i < W.n; i++) {
		struct swim_stats st;
		swim_get_stats(W.nodes[i].sw, &st);
		uint32_t side = i < split ? split : W.n - split;
		if (st.alive != side || st.suspect)
			return false;
	}
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pctl(uint64_t *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)(p * (double)(n - 1) + 0.999999);
	return v[i < n ? i : n - 1];
}

/* ---- the checks ---- */

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static double secs(uint64_t us)
{
	return us == UINT64_MAX ? -1 : (double)us / SEC;
}

int sim_gossip_run(uint64_t seed, int nodes, bool quick)
{
	struct swim_config cfg = swim_config_default();
	uint64_t minutes = quick ? 2 : 10;

	failures = 0;
	printf("gossip: %d nodes, seed %" PRIu64 "\n", nodes, seed);
	if (!world_init(seed, (uint32_t)nodes, &cfg)) {
		CHECK(false, "%d nodes did not converge after joining", nodes);
		world_free();
		return failures;
	}
	double joined = (double)(W.now / MS) / 1000 - 1000, last_join = (double)nodes / 100;
	printf("gossip:   joined and converged at t=%.1fs (%.1fs after the last join)\n", joined,
	       joined - last_join);
	/* gossip reaches almost everyone; catch-up push-pulls repair the rest within seconds */
	CHECK(joined - last_join <= 10, "views converged %.1fs after the last join (goal <= 10 s)",
	      joined - last_join);

	/* 10 % loss (plus duplication, reordering, jitter) for 10 simulated minutes */
	W.count_false_deaths = true;
	W.net.loss_ppm = 100000;
	W.false_deaths = 0;
	run_until(W.now + minutes * 60 * SEC);
	CHECK(W.false_deaths == 0, "%u live members declared dead at 10%% loss", W.false_deaths);
	struct swim_stats sum = {0}, st;
	uint32_t max_health = 0;
	for (uint32_t i = 0; i < W.n; i++) {
		swim_get_stats(W.nodes[i].sw, &st);
		sum.probes += st.probes;
		sum.suspicions_raised += st.suspicions_raised;
		sum.refutations += st.refutations;
		sum.tcp_probe_acks += st.tcp_probe_acks;
		sum.probe_failures += st.probe_failures;
		max_health = st.health_score > max_health ? st.health_score : max_health;
	}
	printf("gossip:   %" PRIu64 " min at 10%% loss: %u false deaths (%" PRIu64
	       " probes, %" PRIu64 " saved by TCP, %" PRIu64 " failed, %" PRIu64
	       " suspicions, %" PRIu64 " refutations, max health score %u)\n",
	       minutes, W.false_deaths, sum.probes, sum.tcp_probe_acks, sum.probe_failures,
	       sum.suspicions_raised, sum.refutations, max_health);
	clear_net();
	CHECK(run_until_converged(30 * SEC, 500 * MS) != UINT64_MAX, "no convergence after loss");

	/* stalls of up to 1 s, one node at a time and several at once */
	W.false_deaths = 0;
	W.net.loss_ppm = 10000;
	for (int k = 0; k < 20; k++) {
		uint32_t x = rng32() % W.n;
		node_stall(x, (uint64_t)(200 + rng32() % 801) * MS);
		if (k % 5 == 4)
			for (int j = 0; j < 3; j++)
				node_stall(rng32() % W.n, SEC);
		run_until(W.now + 4 * SEC);
	}
	run_until(W.now + 10 * SEC);
	CHECK(W.false_deaths == 0, "%u deaths after stalls of <= 1 s", W.false_deaths);
	printf("gossip:   stalls <= 1 s: %u false deaths\n", W.false_deaths);
	clear_net();

	/* crashes: dead on every live node; a restart refutes with a higher incarnation */
	for (int k = 0; k < 3; k++) {
		uint32_t x = 3 + rng32() % (W.n - 3);
		uint64_t d = crash_and_measure(x, 60 * SEC);
		CHECK(d != UINT64_MAX, "crash of n%u not known to every live node in 60 s", x);
		printf("gossip:   crash of n%u dead everywhere after %.2fs\n", x, secs(d));
		run_until(W.now + 2 * SEC);
		uint32_t old;
		uint64_t r = restart_and_measure(x, &old, 60 * SEC);
		CHECK(r != UINT64_MAX, "restarted n%u did not refute its death (was %u)", x, old);
		printf(
		    "gossip:   restart of n%u alive everywhere above incarnation %u after %.2fs\n",
		    x, old, secs(r));
		run_until(W.now + 5 * SEC);
	}

	/* a partition, both sides settle, heal: views converge */
	W.count_false_deaths = false;
	uint32_t split = W.n * 3 / 10;
	partition(split);
	uint64_t t0 = W.now;
	bool settled = false;
	while (!settled && W.now - t0 < 120 * SEC) {
		run_until(W.now + SEC);
		settled = partition_settled(split);
	}
	CHECK(settled, "partition %u/%u did not settle in 120 s", split, W.n - split);
	printf("gossip:   partition %u/%u settled after %.1fs\n", split, W.n - split,
	       secs(W.now - t0));
	heal();
	uint64_t c = run_until_converged(60 * SEC, 100 * MS);
	CHECK(c != UINT64_MAX, "views did not converge within 60 s after the partition healed");
	printf("gossip:   healed: converged after %.2fs\n", secs(c));
	world_free();
	return failures;
}

/*
 * Crash detection at one size: `trials` crashes, one at a time, each timed from the kill until
 * every live node holds the member dead (the victim restarts and refutes before the next).
 * Prints p50/p90/p99/max, how long the views took to converge after the nodes joined 10 ms
 * apart, and with idle_secs the bytes each node sends per second while nothing happens.
 */
int sim_gossip_crash(uint64_t seed, int nodes, int trials, int idle_secs, const char *which)
{
	struct swim_config cfg = which && !strcmp(which, "memberlist")
				     ? swim_config_memberlist_lan()
				     : swim_config_default();
	uint64_t *d = calloc((size_t)trials, sizeof(*d));
	int nd = 0, lost = 0;

	if (!d || nodes < 4)
		return 1;
	uint64_t t0 = 1000 * SEC + (uint64_t)nodes * 10 * MS;
	if (!world_init(seed, (uint32_t)nodes, &cfg)) {
		printf("crash: %d nodes did not converge after joining\n", nodes);
		free(d);
		world_free();
		return 1;
	}
	printf("crash: %d nodes, seed %" PRIu64 ": full views %.2fs after the last join\n", nodes,
	       seed, secs(W.now - t0));
	run_until(W.now + 10 * SEC);
	if (idle_secs > 0) {
		struct swim_stats st;
		uint64_t pp = 0, b = idle_bytes_per_sec((uint64_t)idle_secs * SEC);
		for (uint32_t i = 0; i < W.n; i++) {
			swim_get_stats(W.nodes[i].sw, &st);
			pp += st.pushpulls;
		}
		printf("crash: %d nodes: idle %" PRIu64 " B/s per node over %d s (%" PRIu64
		       " push-pulls in all)\n",
		       nodes, b, idle_secs, pp);
	}
	for (int k = 0; k < trials; k++) {
		uint32_t x = 1 + rng32() % ((uint32_t)nodes - 1);
		uint64_t t = crash_and_measure(x, 120 * SEC);
		if (t == UINT64_MAX)
			lost++;
		else
			d[nd++] = t;
		uint32_t old;
		run_until(W.now + 2 * SEC);
		restart_and_measure(x, &old, 120 * SEC);
		run_until(W.now + 5 * SEC);
	}
	if (nd)
		printf(
		    "crash: %d nodes, %d trials: p50 %.2f s, p90 %.2f s, p99 %.2f s, max %.2f s, "
		    "%d never\n",
		    nodes, trials, secs(pctl(d, nd, 0.5)), secs(pctl(d, nd, 0.9)),
		    secs(pctl(d, nd, 0.99)), secs(pctl(d, nd, 1)), lost);
	free(d);
	world_free();
	return lost ? 1 : 0;
}

/* ---- bench ---- */

static void bench_set(uint64_t seed, const struct swim_config *cfg, const char *label, bool quick,
		      char out[][64])
{
	static const uint32_t sizes[] = {10, 100, 1000};
	int row = 0;

	for (size_t si = 0; si < 3; si++) {
		uint32_t n = sizes[si];
		if (!world_init(seed, n, cfg)) {
			snprintf(out[row++], 64, "no convergence");
			continue;
		}
		if (si > 0) {
			/* nodes joined 10 ms apart; world_init polls convergence every 500 ms */
			uint64_t last = 1000 * SEC + (uint64_t)n * 10 * MS;
			snprintf(out[9 + si - 1], 64, "%.1f s", secs(W.now - last));
			fprintf(stderr, "bench %s n=%u full views %s after the last join\n", label,
				n, out[9 + si - 1]);
		}
		run_until(W.now + 30 * SEC);
		uint64_t b = idle_bytes_per_sec((quick ? 60 : 600) * SEC);
		snprintf(out[row++], 64, "%" PRIu64 " B/s", b);
		fprintf(stderr, "bench %s n=%u idle %" PRIu64 " B/s\n", label, n, b);
		if (n == 10)
			continue;
		/* crash known to every node */
		int trials = n == 100 ? (quick ? 10 : 40) : (quick ? 4 : 12);
		uint64_t d[64];
		int nd = 0, lost = 0;
		for (int k = 0; k < trials; k++) {
			uint32_t x = 3 + rng32() % (n - 3);
			uint64_t t = crash_and_measure(x, 120 * SEC);
			if (t == UINT64_MAX)
				lost++;
			else
				d[nd++] = t;
			uint32_t old;
			run_until(W.now + 2 * SEC);
			restart_and_measure(x, &old, 120 * SEC);
			run_until(W.now + 10 * SEC);
		}
		if (nd)
			snprintf(out[row++], 64, "p50 %.2f s, p99 %.2f s%s", secs(pctl(d, nd, 0.5)),
				 secs(pctl(d, nd, 0.99)), lost ? " (some never)" : "");
		else
			snprintf(out[row++], 64, "never");
		fprintf(stderr, "bench %s n=%u crash %s\n", label, n, out[row - 1]);
		/* false deaths: 10 % loss, then 1 s stalls */
		W.count_false_deaths = true;
		W.false_deaths = 0;
		W.net.loss_ppm = 100000;
		run_until(W.now + (quick ? 120 : 600) * SEC);
		uint32_t fd_loss = W.false_deaths;
		clear_net();
		run_until_converged(60 * SEC, SEC);
		W.false_deaths = 0;
		for (int k = 0; k < (quick ? 10 : 30); k++) {
			node_stall(rng32() % n, SEC);
			run_until(W.now + 5 * SEC);
		}
		run_until(W.now + 20 * SEC);
		snprintf(out[row++], 64, "%u / %u", fd_loss, W.false_deaths);
		fprintf(stderr, "bench %s n=%u false deaths %s\n", label, n, out[row - 1]);
		W.count_false_deaths = false;
		/* convergence after a partition heals */
		run_until_converged(120 * SEC, SEC);
		uint64_t h[8];
		int nh = 0;
		for (int k = 0; k < (quick ? 1 : 2); k++) {
			uint32_t split = n / 2;
			partition(split);
			uint64_t t0 = W.now;
			while (!partition_settled(split) && W.now - t0 < 300 * SEC)
				run_until(W.now + SEC);
			heal();
			uint64_t c = run_until_converged(300 * SEC, 100 * MS);
			h[nh++] = c;
			run_until(W.now + 10 * SEC);
		}
		uint64_t worst = 0;
		for (int k = 0; k < nh; k++)
			worst = h[k] > worst ? h[k] : worst;
		if (worst == UINT64_MAX)
			snprintf(out[row++], 64, "> 300 s");
		else
			snprintf(out[row++], 64, "max %.1f s", secs(worst));
		fprintf(stderr, "bench %s n=%u heal %s\n", label, n, out[row - 1]);
	}
	world_free();
}

int sim_gossip_bench(uint64_t seed, bool quick, const char *which)
{
	static const char *const what[] = {
	    "idle bytes/s per node, 10 nodes",
	    "idle bytes/s per node, 100 nodes",
	    "crash known to every node, 100 nodes",
	    "false deaths: 10 % loss / 1 s stalls, 100 nodes",
	    "convergence after heal, 100 nodes",
	    "idle bytes/s per node, 1,000 nodes",
	    "crash known to every node, 1,000 nodes",
	    "false deaths: 10 % loss / 1 s stalls, 1,000 nodes",
	    "convergence after heal, 1,000 nodes",
	    "full views after the last join (10 ms apart), 100 nodes",
	    "full views after the last join (10 ms apart), 1,000 nodes",
	};
	char ml[11][64] = {{0}}, sh[11][64] = {{0}};
	struct swim_config a = swim_config_memberlist_lan(), b = swim_config_default();

	if (!which || !strcmp(which, "memberlist"))
		bench_set(seed, &a, "memberlist", quick, ml);
	if (!which || !strcmp(which, "shoal"))
		bench_set(seed, &b, "shoal", quick, sh);
	printf("| measure | memberlist LAN defaults | Shoal defaults |\n| --- | --- | --- |\n");
	for (int i = 0; i < 11; i++)
		printf("| %s | %s | %s |\n", what[i], ml[i], sh[i]);
	return 0;
}
