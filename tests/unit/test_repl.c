// SPDX-License-Identifier: Apache-2.0
/*
 * Replication between in-memory stores (sched/repl.c) over an in-process network: pushes reach
 * every live member, anti-entropy repairs partitions and new nodes (also with small messages, so
 * every step is split), rounds exchange only the difference, caught-up bookkeeping, the
 * create race's loser callback, pull-only resync, and the wire codec against malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/macro.h"
#include "sched/hlc.h"
#include "sched/repl.h"
#include "sched/repl_wire.h"
#include "sched/store.h"

#define T0 1700000000000ull
#define MAXN 6

struct node;

struct net_msg {
	struct net_msg *next;
	int from, to;
	uint64_t token;
	uint8_t *p;
	size_t len;
};

static struct world {
	struct node *nodes;
	int n;
	uint64_t now;
	uint32_t seed;
	bool cut[MAXN][MAXN]; /* partition: from -> to dropped */
	struct net_msg *head, *tail;
	uint64_t bytes;
	uint64_t cpu; /* the fake CPU clock: one ns a reading */
} W;

struct node {
	int id;
	char name[8];
	struct store *s;
	struct repl *r;
	struct repl_config cfg;
	int lost; /* on_create_lost calls */
	char lost_winner[64];
};

static uint64_t w_now(void *ud)
{
	return W.now;
}

static uint64_t w_cpu(void *ud)
{
	return ++W.cpu;
}

static uint32_t w_rand(void *ud)
{
	W.seed = W.seed * 1103515245u + 12345u;
	return W.seed >> 8;
}

static int node_id(const char *name)
{
	for (int i = 0; i < W.n; i++)
		if (streq(W.nodes[i].name, name))
			return i;
	return -1;
}

static int w_send(void *ud, const char *node, const uint8_t *req, size_t len, uint64_t token)
{
	struct node *from = ud;
	struct net_msg *m = calloc(1, sizeof(*m));
	int to = node_id(node);

	assert_non_null(m);
	if (to < 0) {
		free(m);
		return -EHOSTUNREACH;
	}
	m->from = from->id;
	m->to = to;
	m->token = token;
	m->p = malloc(len);
	memcpy(m->p, req, len);
	m->len = len;
	if (W.tail)
		W.tail->next = m;
	else
		W.head = m;
	W.tail = m;
	return 0;
}

static void w_lost(void *ud, const char *resource, const char *ns, const char *name,
		   const char *loser, const char *winner, const char *winner_node)
{
	struct node *n = ud;

	n->lost++;
	snprintf(n->lost_winner, sizeof(n->lost_winner), "%s", winner);
}

/* Deliver the first message waiting; its reply goes back in the same step. */
static void pump_one(void)
{
	struct net_msg *m = W.head;
	struct node *to = &W.nodes[m->to], *from = &W.nodes[m->from];

	W.head = m->next;
	if (!W.head)
		W.tail = NULL;
	W.bytes += m->len;
	if (W.cut[m->from][m->to] || !to->r) {
		repl_reply(from->r, m->token, NULL, -ETIMEDOUT);
	} else {
		uint8_t *reply = NULL;
		size_t rlen = 0;
		int r = repl_serve(to->r, from->name, m->p, m->len, &reply, &rlen);

		if (W.cut[m->to][m->from])
			r = -ETIMEDOUT;
		W.bytes += rlen;
		repl_reply(from->r, m->token, r < 0 ? NULL : reply, r < 0 ? r : (ssize_t)rlen);
		free(reply);
	}
	free(m->p);
	free(m);
}

/* Deliver every message (and the messages they cause). */
static void pump(void)
{
	while (W.head)
		pump_one();
}

/* Advance time by ms in steps, ticking every node and delivering. */
static void run(uint64_t ms)
{
	for (uint64_t t = 0; t < ms; t += 10) {
		W.now += 10;
		for (int i = 0; i < W.n; i++)
			if (W.nodes[i].r && repl_next_tick(W.nodes[i].r) <= W.now)
				repl_tick(W.nodes[i].r);
		pump();
	}
}

static void node_start(struct node *n)
{
	struct store_options o = {
	    .node_name = n->name,
	    .clock = w_now,
	};
	struct repl_env env = {
	    .ud = n,
	    .now_ms = w_now,
	    .rand32 = w_rand,
	    .send = w_send,
	    .on_create_lost = w_lost,
	    .cpu_ns = w_cpu,
	};

	if (!n->s)
		assert_int_equal(store_open(&o, &n->s), 0);
	assert_int_equal(repl_new(&n->cfg, &env, n->s, n->name, &n->r), 0);
	for (int i = 0; i < W.n; i++)
		if (i != n->id)
			repl_member_set(n->r, W.nodes[i].name, REPL_MEMBER_ALIVE);
}

static void world(int n, const struct repl_config *cfg)
{
	static struct node nodes[MAXN];

	memset(&W, 0, sizeof(W));
	memset(nodes, 0, sizeof(nodes));
	W.nodes = nodes;
	W.n = n;
	W.now = T0;
	W.seed = 42;
	for (int i = 0; i < n; i++) {
		nodes[i].id = i;
		snprintf(nodes[i].name, sizeof(nodes[i].name), "n%d", i);
		if (cfg)
			nodes[i].cfg = *cfg;
	}
	for (int i = 0; i < n; i++)
		node_start(&nodes[i]);
}

static void world_end(void)
{
	pump();
	for (int i = 0; i < W.n; i++) {
		W.nodes[i].r = repl_free(W.nodes[i].r);
		W.nodes[i].s = store_close(W.nodes[i].s);
	}
}

static cJSON *mkobj(const char *name, const char *label)
{
	cJSON *o = cJSON_CreateObject(), *m;
	char uid[64];

	snprintf(uid, sizeof(uid), "uid-%s-%llu-%u", name, (unsigned long long)W.now, w_rand(NULL));
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "ConfigMap");
	m = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(m, "name", name);
	cJSON_AddStringToObject(m, "namespace", "default");
	cJSON_AddStringToObject(m, "uid", uid);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "labels"), "v", label);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "data"), "k", label);
	return o;
}

static void create(struct node *n, const char *name, const char *label)
{
	cJSON *o = mkobj(name, label);
	struct err e = {0};

	assert_int_equal(store_create(n->s, "configmaps", "default", name, o, NULL, &e), 0);
	cJSON_Delete(o);
}

static void update(struct node *n, const char *name, const char *label)
{
	struct store_obj *cur = NULL;
	struct err e = {0};
	cJSON *o;

	assert_int_equal(store_get(n->s, "configmaps", "default", name, &cur), 0);
	o = store_obj_parse(cur);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(o, "metadata"), "labels",
				  cJSON_CreateObject());
	cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "labels"),
				"v", label);
	assert_int_equal(store_update(n->s, "configmaps", "default", name, o, 0, NULL, &e), 0);
	cJSON_Delete(o);
	store_obj_unref(cur);
}

static bool has(struct node *n, const char *name)
{
	struct store_obj *o = NULL;

	if (store_get(n->s, "configmaps", "default", name, &o) < 0)
		return false;
	store_obj_unref(o);
	return true;
}

static char *dump(struct node *n)
{
	char *d = NULL;

	assert_int_equal(store_registers_dump(n->s, NULL, &d, NULL), 0);
	return d;
}

static void assert_converged(void)
{
	_cleanup_free_ char *d0 = dump(&W.nodes[0]);

	for (int i = 1; i < W.n; i++) {
		_cleanup_free_ char *d = dump(&W.nodes[i]);

		assert_string_equal(d0, d);
	}
}

/* A local write is pushed to every member at once (no anti-entropy needed). */
static void test_push(void **state)
{
	struct repl_config cfg = {.ae_interval_ms = 1000000};
	struct repl_stats st;
	uint64_t rounds, ae_cpu[4];

	world(4, &cfg);
	run(200); /* the first rounds with the members just met */
	repl_stats_get(W.nodes[0].r, &st);
	rounds = st.rounds_started;
	for (int i = 0; i < 4; i++) {
		struct repl_stats s;

		repl_stats_get(W.nodes[i].r, &s);
		assert_true(s.ae_cpu_ns > 0); /* those rounds */
		ae_cpu[i] = s.ae_cpu_ns;
	}
	create(&W.nodes[1], "a", "1");
	assert_false(has(&W.nodes[2], "a"));
	run(20);
	for (int i = 0; i < 4; i++)
		assert_true(has(&W.nodes[i], "a"));
	update(&W.nodes[3], "a", "2");
	{
		struct err e = {0};
		assert_int_equal(
		    store_delete(W.nodes[2].s, "configmaps", "default", "a", 0, NULL, NULL, &e), 0);
	}
	create(&W.nodes[0], "b", "1");
	run(20);
	assert_false(has(&W.nodes[1], "a"));
	assert_true(has(&W.nodes[1], "b"));
	assert_converged();
	repl_stats_get(W.nodes[0].r, &st);
	assert_int_equal(st.rounds_started, rounds);
	assert_true(st.pushes_sent >= 3);
	assert_true(st.pushes_received >= 2);
	/* pushes are not anti-entropy: its CPU counter did not move */
	for (int i = 0; i < 4; i++) {
		struct repl_stats s;

		repl_stats_get(W.nodes[i].r, &s);
		assert_int_equal(s.ae_cpu_ns, ae_cpu[i]);
	}
	world_end();
}

/* A partition with writes on both sides; after the heal anti-entropy makes the dumps equal. */
static void test_partition_heal(void **state)
{
	struct repl_config cfg = {.ae_interval_ms = 500};

	world(4, &cfg);
	for (int i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof(name), "o%d", i);
		create(&W.nodes[i % 4], name, "0");
	}
	run(100);
	assert_converged();
	/* {0,1} | {2,3} */
	for (int a = 0; a < 4; a++)
		for (int b = 0; b < 4; b++)
			W.cut[a][b] = (a < 2) != (b < 2);
	update(&W.nodes[0], "o1", "left");
	update(&W.nodes[3], "o1", "right");
	update(&W.nodes[2], "o2", "right");
	create(&W.nodes[1], "l", "x");
	create(&W.nodes[2], "r", "x");
	{
		struct err e = {0};
		assert_int_equal(
		    store_delete(W.nodes[3].s, "configmaps", "default", "o5", 0, NULL, NULL, &e),
		    0);
	}
	run(3000);
	assert_true(has(&W.nodes[0], "l"));
	assert_false(has(&W.nodes[0], "r"));
	assert_true(has(&W.nodes[0], "o5"));
	memset(W.cut, 0, sizeof(W.cut));
	run(6000);
	assert_converged();
	assert_true(has(&W.nodes[0], "r"));
	assert_false(has(&W.nodes[1], "o5"));
	/* rounds completed after the heal: caught up both ways */
	assert_true(repl_last_round(W.nodes[0].r, "n1") > 0);
	world_end();
}

/* A node that was down misses pushes and catches up by rounds, also when every step is split
 * into many small messages; a round between equal replicas costs little. */
static void test_new_node_and_bytes(void **state)
{
	struct repl_config cfg = {.ae_interval_ms = 200, .push_max_bytes = 2000};
	struct repl_stats st;
	uint64_t before, t;
	int i;

	world(3, &cfg);
	W.nodes[2].r = repl_free(W.nodes[2].r);
	for (i = 0; i < 1500; i++) {
		char name[16];

		snprintf(name, sizeof(name), "k%d", i);
		create(&W.nodes[i % 2], name, "v");
	}
	run(100);
	node_start(&W.nodes[2]);
	for (t = 0; t < 20000; t += 100) {
		run(100);
		if (store_count(W.nodes[2].s, "configmaps", NULL) == 1500)
			break;
	}
	assert_int_equal(store_count(W.nodes[2].s, "configmaps", NULL), 1500);
	run(1000);
	assert_converged();
	/* equal replicas: a round is the digest request and an empty answer */
	repl_stats_get(W.nodes[0].r, &st);
	before = W.bytes;
	assert_int_equal(repl_sync(W.nodes[0].r, "n1"), 0);
	pump();
	assert_true(W.bytes - before < 200);
	/* ten differing keys out of 1,500: a few buckets, not the store */
	W.cut[0][1] = W.cut[1][0] = W.cut[0][2] = W.cut[2][0] = true;
	for (i = 0; i < 10; i++) {
		char name[16];

		snprintf(name, sizeof(name), "k%d", i * 7);
		update(&W.nodes[0], name, "changed");
	}
	run(50);
	memset(W.cut, 0, sizeof(W.cut));
	pump();
	repl_free(W.nodes[0].r);
	W.nodes[0].r = NULL;
	node_start(&W.nodes[0]);
	before = W.bytes;
	assert_int_equal(repl_sync(W.nodes[0].r, "n1"), 0);
	pump();
	print_message("round for 10 differing keys of 1500: %llu bytes\n",
		      (unsigned long long)(W.bytes - before));
	assert_true(W.bytes - before < 40000);
	run(2000);
	assert_converged();
	world_end();
}

/*
 * A node catching up on a large difference answers the rounds others start with BUSY (they
 * would only send it what it is pulling already); once caught up it serves them again.
 */
static void test_busy_while_catching_up(void **state)
{
	struct repl_stats st0, st2;
	uint64_t busy;
	int i;

	world(3, NULL);
	W.nodes[2].r = repl_free(W.nodes[2].r);
	for (i = 0; i < 1500; i++) {
		char name[16];

		snprintf(name, sizeof(name), "k%d", i);
		create(&W.nodes[0], name, "v");
	}
	run(100);
	node_start(&W.nodes[2]);
	/* n2 starts a round with a member; its digests answered, most buckets differ */
	repl_tick(W.nodes[2].r);
	pump_one();
	repl_stats_get(W.nodes[2].r, &st2);
	assert_int_equal(st2.rounds_started, 1);
	assert_true(st2.digest_mismatches >= 64);
	assert_true(store_count(W.nodes[2].s, "configmaps", NULL) < 1500);
	/* n0's round reaches n2 behind n2's KEYS requests, while n2 still pulls */
	repl_stats_get(W.nodes[0].r, &st0);
	busy = st0.rounds_busy;
	assert_int_equal(repl_sync(W.nodes[0].r, "n2"), 0);
	pump();
	repl_stats_get(W.nodes[0].r, &st0);
	repl_stats_get(W.nodes[2].r, &st2);
	assert_int_equal(st0.rounds_busy, busy + 1);
	assert_true(st2.rounds_refused_busy >= 1);
	busy = st0.rounds_busy;
	for (i = 0; i < 200 && store_count(W.nodes[2].s, "configmaps", NULL) < 1500; i++)
		run(10);
	assert_int_equal(store_count(W.nodes[2].s, "configmaps", NULL), 1500);
	run(100);
	/* caught up: served again */
	assert_int_equal(repl_sync(W.nodes[0].r, "n2"), 0);
	pump();
	repl_stats_get(W.nodes[0].r, &st0);
	assert_int_equal(st0.rounds_busy, busy);
	assert_true(repl_caught_up(W.nodes[0].r, "n2", W.now - 1));
	assert_converged();
	world_end();
}

/*
 * The member ahead is not catching up: its round with a new, empty node differs in every
 * bucket, yet rounds others start with it meanwhile are served.
 */
static void test_busy_not_when_ahead(void **state)
{
	struct repl_stats st0, st1;
	uint64_t busy;
	int i;

	world(3, NULL);
	W.nodes[2].r = repl_free(W.nodes[2].r);
	for (i = 0; i < 1500; i++) {
		char name[16];

		snprintf(name, sizeof(name), "k%d", i);
		create(&W.nodes[0], name, "v");
	}
	run(100);
	node_start(&W.nodes[2]);
	assert_int_equal(repl_sync(W.nodes[0].r, "n2"), 0);
	pump_one(); /* n0's digests answered: every bucket differs, n2's are empty */
	repl_stats_get(W.nodes[0].r, &st0);
	assert_true(st0.digest_mismatches >= 64);
	repl_stats_get(W.nodes[1].r, &st1);
	busy = st1.rounds_busy;
	assert_int_equal(repl_sync(W.nodes[1].r, "n0"), 0);
	pump();
	repl_stats_get(W.nodes[0].r, &st0);
	repl_stats_get(W.nodes[1].r, &st1);
	assert_int_equal(st1.rounds_busy, busy);
	assert_int_equal(st0.rounds_refused_busy, 0);
	run(3000);
	assert_int_equal(store_count(W.nodes[2].s, "configmaps", NULL), 1500);
	assert_converged();
	world_end();
}

/*
 * Two nodes far apart start rounds with each other at once: the round with the lower id is
 * declined at its KEYS (neither knew the difference when the digests were served), the other
 * one completes and both converge; a third node's round is declined at its KEYS too.
 */
static void test_busy_mutual(void **state)
{
	struct repl_stats st[3];
	int i;

	world(3, NULL);
	W.cut[0][1] = W.cut[1][0] = W.cut[0][2] = W.cut[2][0] = true;
	W.cut[1][2] = W.cut[2][1] = true;
	for (i = 0; i < 1500; i++) {
		char name[16];

		snprintf(name, sizeof(name), "k%d", i);
		create(&W.nodes[i % 2], name, "v");
	}
	run(10);
	memset(W.cut, 0, sizeof(W.cut));
	/* both DIGESTS first, then n2's, then the KEYS that follow */
	assert_int_equal(repl_sync(W.nodes[0].r, "n1"), 0);
	assert_int_equal(repl_sync(W.nodes[1].r, "n0"), 0);
	pump_one();
	pump_one();
	assert_int_equal(repl_sync(W.nodes[2].r, "n0"), 0);
	pump();
	for (i = 0; i < 3; i++)
		repl_stats_get(W.nodes[i].r, &st[i]);
	assert_int_equal(st[0].rounds_busy + st[1].rounds_busy, 1);
	assert_int_equal(st[0].rounds_completed + st[1].rounds_completed, 1);
	assert_int_equal(st[2].rounds_busy, 1);
	run(3000);
	assert_int_equal(store_count(W.nodes[0].s, "configmaps", NULL), 1500);
	assert_converged();
	world_end();
}

/* caught-up bookkeeping on both sides of a round. */
static void test_caught_up(void **state)
{
	struct repl_config cfg = {.ae_interval_ms = 1000000};
	uint64_t t;

	world(2, &cfg);
	create(&W.nodes[0], "a", "1");
	run(20);
	t = W.now;
	assert_false(repl_caught_up(W.nodes[0].r, "n1", t));
	W.now += 5;
	/* make them differ so the round has all three steps */
	W.cut[0][1] = W.cut[1][0] = true;
	update(&W.nodes[1], "a", "2");
	run(20);
	memset(W.cut, 0, sizeof(W.cut));
	assert_int_equal(repl_sync(W.nodes[0].r, "n1"), 0);
	pump();
	assert_true(repl_caught_up(W.nodes[0].r, "n1", t));
	assert_true(repl_caught_up(W.nodes[1].r, "n0", t));
	assert_false(repl_caught_up(W.nodes[1].r, "n0", W.now + 1));
	assert_converged();
	world_end();
}

/* One name created on two sides: the later create wins, the other node hears it lost. */
static void test_create_race(void **state)
{
	struct repl_config cfg = {.ae_interval_ms = 300};

	world(2, &cfg);
	W.cut[0][1] = W.cut[1][0] = true;
	create(&W.nodes[0], "x", "first");
	W.now += 5;
	create(&W.nodes[1], "x", "second");
	run(100);
	memset(W.cut, 0, sizeof(W.cut));
	run(2000);
	assert_converged();
	assert_int_equal(W.nodes[0].lost, 1);
	assert_int_equal(W.nodes[1].lost, 0);
	assert_non_null(strstr(W.nodes[0].lost_winner, "uid-x-"));
	world_end();
}

/* A node resyncing pull-only takes everything and gives nothing until its pull completed. */
static void test_pull_only(void **state)
{
	struct repl_config cfg = {.ae_interval_ms = 300};

	world(2, &cfg);
	W.nodes[1].r = repl_free(W.nodes[1].r);
	create(&W.nodes[1], "stale", "1"); /* written while "away" */
	create(&W.nodes[0], "fresh", "1");
	W.nodes[1].cfg.pull_only = true;
	node_start(&W.nodes[1]);
	assert_true(repl_pull_only(W.nodes[1].r));
	run(2000);
	assert_false(repl_pull_only(W.nodes[1].r));
	assert_true(has(&W.nodes[1], "fresh"));
	world_end();
}

static void delete (struct node *n, const char *name)
{
	struct err e = {0};

	assert_int_equal(store_delete(n->s, "configmaps", "default", name, 0, NULL, NULL, &e), 0);
}

static size_t tombstones(struct node *n)
{
	struct store_stats st;

	store_stats_get(n->s, &st);
	return st.tombstones;
}

static void set_member(int on, int who, enum repl_member_state st)
{
	repl_member_set(W.nodes[on].r, W.nodes[who].name, st);
}

/* Tombstones go once older than the horizon and every non-removed member completed a round
 * since; a dead member holds them back until it is removed. */
static void test_tombstone_gc(void **state)
{
	struct repl_config cfg = {
	    .ae_interval_ms = 200, .tombstone_horizon_ms = 1000, .gc_interval_ms = 100};

	world(3, &cfg);
	create(&W.nodes[0], "a", "1");
	create(&W.nodes[0], "b", "1");
	create(&W.nodes[0], "c", "1");
	run(100);
	delete (&W.nodes[1], "c");
	run(3000);
	/* everyone caught up past the horizon: collected everywhere */
	for (int i = 0; i < 3; i++)
		assert_int_equal(tombstones(&W.nodes[i]), 0);
	/* n2 dies (not removed): nobody collects */
	W.nodes[2].r = repl_free(W.nodes[2].r);
	set_member(0, 2, REPL_MEMBER_DEAD);
	set_member(1, 2, REPL_MEMBER_DEAD);
	delete (&W.nodes[1], "a");
	run(4000);
	assert_int_equal(tombstones(&W.nodes[0]), 1);
	assert_int_equal(tombstones(&W.nodes[1]), 1);
	/* removed: collected on both, and "a" does not come back */
	set_member(0, 2, REPL_MEMBER_LEFT);
	set_member(1, 2, REPL_MEMBER_LEFT);
	run(4000);
	assert_int_equal(tombstones(&W.nodes[0]), 0);
	assert_int_equal(tombstones(&W.nodes[1]), 0);
	assert_false(has(&W.nodes[0], "a"));
	assert_true(has(&W.nodes[0], "b"));

	/* n2 comes back with its old replica, away past the horizon: it resyncs pull-only, drops
	 * "a" (the others lack it, older than the horizon) and never pushes it back */
	W.nodes[2].cfg.pull_only = true;
	node_start(&W.nodes[2]);
	assert_true(has(&W.nodes[2], "a"));
	set_member(0, 2, REPL_MEMBER_ALIVE);
	set_member(1, 2, REPL_MEMBER_ALIVE);
	run(3000);
	assert_false(repl_pull_only(W.nodes[2].r));
	for (int i = 0; i < 3; i++) {
		assert_false(has(&W.nodes[i], "a"));
		assert_true(has(&W.nodes[i], "b"));
	}
	run(4000);
	assert_converged();
	world_end();
}

/*
 * Transitive watermarks: n0 and n3 never complete a round with each other (their requests
 * are cut both ways), yet n0 collects once n3's floor, relayed by n1 and n2, shows n3 holds
 * n0's state; while n3's member set differs from n0's (n3 holds n0 removed), its floor does
 * not count for n0 and the tombstone stays.
 */
static void test_tombstone_gc_transitive(void **state)
{
	struct repl_config cfg = {
	    .ae_interval_ms = 200, .tombstone_horizon_ms = 1000, .gc_interval_ms = 100};

	world(4, &cfg);
	W.cut[0][3] = W.cut[3][0] = true;
	create(&W.nodes[1], "a", "1");
	create(&W.nodes[1], "b", "1");
	run(500);
	assert_true(has(&W.nodes[3], "a"));
	assert_true(has(&W.nodes[0], "a"));
	/* n3 holds n0 removed: its floor is over another set */
	set_member(3, 0, REPL_MEMBER_LEFT);
	delete (&W.nodes[1], "a");
	run(4000);
	assert_int_equal(repl_last_round(W.nodes[0].r, "n3"), 0);
	assert_int_equal(tombstones(&W.nodes[0]), 1);
	/* the same sets again: collected on n0 without a round with n3 */
	set_member(3, 0, REPL_MEMBER_ALIVE);
	run(4000);
	assert_int_equal(repl_last_round(W.nodes[0].r, "n3"), 0);
	assert_int_equal(tombstones(&W.nodes[0]), 0);
	for (int i = 0; i < 4; i++) {
		assert_false(has(&W.nodes[i], "a"));
		assert_true(has(&W.nodes[i], "b"));
	}
	world_end();
}

/* A node cut off from everyone past the horizon turns pull-only by itself. */
static void test_away_turns_pull_only(void **state)
{
	struct repl_config cfg = {
	    .ae_interval_ms = 200, .tombstone_horizon_ms = 1000, .gc_interval_ms = 100};

	world(2, &cfg);
	run(500);
	assert_false(repl_pull_only(W.nodes[1].r));
	W.cut[0][1] = W.cut[1][0] = true;
	run(2000);
	assert_true(repl_pull_only(W.nodes[1].r));
	assert_true(repl_pull_only(W.nodes[0].r));
	/* both were away from each other: each refuses the other's pull, and they stop pulling */
	memset(W.cut, 0, sizeof(W.cut));
	run(3000);
	assert_false(repl_pull_only(W.nodes[1].r));
	assert_false(repl_pull_only(W.nodes[0].r));
	world_end();
}

/* Push an old tombstone of `name` (version at T0 + 100 ms) to n0 as n1 would. */
static void push_old_tombstone(const char *name)
{
	struct store_reg t = {
	    .kind = STORE_REG_SPEC,
	    .resource = "configmaps",
	    .ns = "default",
	    .name = name,
	    .uid = "uid-old",
	    .born = HLC_MAKE(T0, 0),
	    .hlc = HLC_MAKE(T0 + 100, 0),
	    .node = "n1",
	    .tombstone = true,
	};
	struct repl_buf b;
	uint8_t *p, *reply = NULL;
	size_t len, rlen;

	rbuf_init(&b, REPL_MSG_PUSH, 0);
	rbuf_varint(&b, 0);
	rbuf_key(&b, &t, NULL);
	rbuf_set_count(&b, 1);
	assert_int_equal(rbuf_take(&b, &p, &len), 0);
	assert_int_equal(repl_serve(W.nodes[0].r, "n1", p, len, &reply, &rlen), 0);
	free(reply);
	free(p);
}

/* The tombstone floor and the members' last rounds survive a restart (repl_state_save and
 * repl_state_load; the store itself is durable): a tombstone older than what was collected,
 * pushed by a node that has not collected yet, is dropped, not stored again; caught-up
 * bookkeeping answers as before, also for a member named only after the load. */
static void test_state_across_restart(void **state)
{
	struct repl_config cfg = {
	    .ae_interval_ms = 200, .tombstone_horizon_ms = 1000, .gc_interval_ms = 100};
	_cleanup_free_ char *text = NULL;
	size_t len;
	uint64_t last;

	world(2, &cfg);
	create(&W.nodes[0], "a", "1");
	run(100);
	delete (&W.nodes[0], "a");
	run(3000);
	assert_int_equal(tombstones(&W.nodes[0]), 0);
	last = repl_last_round(W.nodes[0].r, "n1");
	assert_true(last > 0);
	assert_int_equal(repl_state_save(W.nodes[0].r, &text, &len), 0);

	/* restarted without the state: the old tombstone is stored again */
	W.nodes[0].r = repl_free(W.nodes[0].r);
	node_start(&W.nodes[0]);
	assert_int_equal(repl_last_round(W.nodes[0].r, "n1"), 0);
	push_old_tombstone("b");
	assert_int_equal(tombstones(&W.nodes[0]), 1);

	/* restarted with it: dropped, and the last round is back */
	W.nodes[0].r = repl_free(W.nodes[0].r);
	node_start(&W.nodes[0]);
	repl_state_load(W.nodes[0].r, text, len);
	assert_int_equal(repl_last_round(W.nodes[0].r, "n1"), last);
	assert_true(repl_caught_up(W.nodes[0].r, "n1", last));
	push_old_tombstone("c");
	assert_int_equal(tombstones(&W.nodes[0]), 1);
	assert_false(has(&W.nodes[0], "c"));

	/* a member the state names before gossip does: its round applies once it is named;
	 * garbage lines are ignored */
	static const char more[] = "round n7 1234\nbogus line\nround n8\nfloor x\n";
	repl_state_load(W.nodes[0].r, more, sizeof(more) - 1);
	assert_int_equal(repl_last_round(W.nodes[0].r, "n7"), 0);
	repl_member_set(W.nodes[0].r, "n7", REPL_MEMBER_DEAD);
	assert_int_equal(repl_last_round(W.nodes[0].r, "n7"), 1234);
	world_end();
}

/* The codec refuses truncated and corrupted messages without crashing. */
static void test_wire_malformed(void **state)
{
	struct repl_config cfg = {.ae_interval_ms = 1000000};
	struct repl_buf b;
	struct store_reg spec = {
	    .kind = STORE_REG_SPEC,
	    .resource = "configmaps",
	    .ns = "default",
	    .name = "a",
	    .uid = "u",
	    .born = 1,
	    .hlc = 2,
	    .node = "n9",
	    .body = "{}",
	    .body_len = 2,
	};
	uint8_t *p, *reply = NULL;
	size_t len, rlen;

	world(1, &cfg);
	rbuf_init(&b, REPL_MSG_PUSH, 0);
	rbuf_varint(&b, 0);
	rbuf_key(&b, &spec, NULL);
	rbuf_set_count(&b, 1);
	assert_int_equal(rbuf_take(&b, &p, &len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		int r = repl_serve(W.nodes[0].r, "n9", p, cut, &reply, &rlen);

		if (r >= 0)
			free(reply);
		reply = NULL;
	}
	for (size_t i = 8; i < len; i++) {
		uint8_t save = p[i];

		for (int v = 0; v < 256; v += 37) {
			p[i] = (uint8_t)v;
			if (repl_serve(W.nodes[0].r, "n9", p, len, &reply, &rlen) >= 0)
				free(reply);
			reply = NULL;
		}
		p[i] = save;
	}
	free(p);
	world_end();
}

/* Bind pod "p" to node n's own name with a local write. */
static void bind_local(struct node *n)
{
	struct store_obj *cur = NULL;
	struct err e = {0};
	cJSON *o, *spec;

	assert_int_equal(store_get(n->s, "pods", "default", "p", &cur), 0);
	o = store_obj_parse(cur);
	spec = cJSON_GetObjectItem(o, "spec");
	cJSON_DeleteItemFromObject(spec, "nodeName");
	cJSON_AddStringToObject(spec, "nodeName", n->name);
	assert_int_equal(store_update(n->s, "pods", "default", "p", o, 0, NULL, &e), 0);
	cJSON_Delete(o);
	store_obj_unref(cur);
}

static char *node_name_of(struct node *n)
{
	struct store_obj *o = NULL;
	cJSON *obj;
	char *v;

	assert_int_equal(store_get(n->s, "pods", "default", "p", &o), 0);
	obj = store_obj_parse(o);
	v = strdup(
	    cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "nodeName"))
		?: "");
	cJSON_Delete(obj);
	store_obj_unref(o);
	return v;
}

struct answers {
	int n;
	char uid[4][32], bound[4][32];
};

static void on_answer(void *ud, const char *uid, const char *bound)
{
	struct answers *a = ud;

	assert_true(a->n < 4);
	snprintf(a->uid[a->n], sizeof(a->uid[0]), "%s", uid);
	snprintf(a->bound[a->n], sizeof(a->bound[0]), "%s", bound ? bound : "-");
	a->n++;
}

/* asker asks answerer which binding of p (and q if there) it holds (the request carries
 * asker's registers); the answers in *a */
static void confirm(struct node *asker, struct node *answerer, struct answers *a)
{
	const char *ns[] = {"default", "default"}, *names[] = {"p", "q"};
	uint8_t *req = NULL, *reply = NULL;
	size_t len = 0, rlen = 0;

	memset(a, 0, sizeof(*a));
	assert_int_equal(repl_confirm_request(asker->r, "pods", ns, names, 2, &req, &len), 0);
	assert_int_equal(repl_serve(answerer->r, asker->name, req, len, &reply, &rlen), 0);
	assert_int_equal(repl_confirm_reply(asker->r, reply, rlen, on_answer, a), 0);
	free(req);
	free(reply);
}

/*
 * Binding confirmation: with pushes cut, n1 and n2 bind one pod at once (n1 earlier). The
 * answer to CONFIRM reflects the request's binding merged first, whatever the answerer had:
 * n0 (no binding) confirms n1's; n1 answers n2 with n1's, and n2 learns it from the answer.
 */
static void test_confirm_binding(void **state)
{
	struct repl_config cfg = {.ae_interval_ms = 100000};
	struct err e = {0};
	cJSON *o = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
			       "\"p\",\"namespace\":\"default\",\"uid\":\"u-p\"},\"spec\":{}}");
	struct answers a;
	char *b;

	world(3, &cfg);
	assert_int_equal(store_create(W.nodes[0].s, "pods", "default", "p", o, NULL, &e), 0);
	cJSON_Delete(o);
	run(100);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			W.cut[i][j] = true;
	bind_local(&W.nodes[1]);
	W.now += 5;
	bind_local(&W.nodes[2]);
	run(100);

	confirm(&W.nodes[1], &W.nodes[0], &a);
	assert_int_equal(a.n, 1); /* q exists nowhere */
	assert_string_equal(a.uid[0], "u-p");
	assert_string_equal(a.bound[0], "n1");
	b = node_name_of(&W.nodes[0]);
	assert_string_equal(b, "n1"); /* merged from the request */
	free(b);
	confirm(&W.nodes[2], &W.nodes[1], &a);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.bound[0], "n1"); /* n2 lost */
	b = node_name_of(&W.nodes[2]);
	assert_string_equal(b, "n1"); /* merged from the answer */
	free(b);
	confirm(&W.nodes[1], &W.nodes[2], &a);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.bound[0], "n1");
	memset(W.cut, 0, sizeof(W.cut));
	world_end();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_push),
	    cmocka_unit_test(test_partition_heal),
	    cmocka_unit_test(test_new_node_and_bytes),
	    cmocka_unit_test(test_busy_while_catching_up),
	    cmocka_unit_test(test_busy_mutual),
	    cmocka_unit_test(test_busy_not_when_ahead),
	    cmocka_unit_test(test_caught_up),
	    cmocka_unit_test(test_create_race),
	    cmocka_unit_test(test_pull_only),
	    cmocka_unit_test(test_wire_malformed),
	    cmocka_unit_test(test_tombstone_gc),
	    cmocka_unit_test(test_tombstone_gc_transitive),
	    cmocka_unit_test(test_away_turns_pull_only),
	    cmocka_unit_test(test_state_across_restart),
	    cmocka_unit_test(test_confirm_binding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
