// SPDX-License-Identifier: Apache-2.0
/*
 * Gossip's connections (docs/gossip.md, "Connections"): two daemons' gossip on loopback in one
 * process. Requests on a registered channel reuse one connection; a request on a parked
 * connection whose peer restarted meanwhile is sent again on a new one, not failed. One request
 * to several members (gossip_request_many) reaches each of them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/event.h>

#include "daemon/gossip.h"
#include "lib/util.h"
#include "sched/members.h"

struct node {
	char name[8], dir[64], listen[32];
	struct members *members;
	struct gossip *g;
	int served;
};

struct env {
	struct event_base *base;
	struct node a, b;
	uint16_t port_a, port_b;
	char key_file[96];
};

static int serve(void *ud, const char *from, const uint8_t *req, size_t len, uint8_t **reply,
		 size_t *reply_len)
{
	struct node *n = ud;

	n->served++;
	*reply = malloc(len + 1);
	if (!*reply)
		return -ENOMEM;
	memcpy(*reply, req, len);
	*reply_len = len;
	return 0;
}

static void node_start(struct env *env, struct node *n, uint16_t port, const char *join)
{
	struct err e = {0};
	struct gossip_opts o = {
	    .node_name = n->name,
	    .state_dir = n->dir,
	    .cluster_name = "conns",
	    .listen = n->listen,
	    .join = join,
	    .key_file = join ? env->key_file : NULL,
	    .members = n->members,
	};

	snprintf(n->listen, sizeof(n->listen), "127.0.0.1:%u", port);
	assert_int_equal(gossip_new(env->base, &o, &n->g, &e), 0);
	assert_int_equal(gossip_channel_register(n->g, GOSSIP_CH_REPL, serve, n), 0);
}

/* The loop runs until pred(ud) or 10 s passed. */
static bool run_until(struct env *env, bool (*pred)(struct env *, void *), void *ud)
{
	uint64_t end = util_mono_ms() + 10000;

	while (!pred(env, ud)) {
		if (util_mono_ms() > end)
			return false;
		event_base_loop(env->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
	return true;
}

static bool b_alive_on_a(struct env *env, void *ud)
{
	const struct members_info *i = members_view_find(env->a.members, "b");
	return i && i->state == MEMBERS_ALIVE;
}

struct call {
	bool done;
	ssize_t len;
	char reply[64];
};

static void on_reply(void *ctx, const uint8_t *reply, ssize_t len)
{
	struct call *c = ctx;

	c->done = true;
	c->len = len;
	if (len > 0 && (size_t)len < sizeof(c->reply))
		memcpy(c->reply, reply, (size_t)len);
}

static bool call_done(struct env *env, void *ud)
{
	return ((struct call *)ud)->done;
}

/* c NULL: wait for the reply here; else c outlives the call and the caller waits */
static void request(struct env *env, const char *text, struct call *c)
{
	struct call own = {0};
	bool run = !c;

	if (!c)
		c = &own;
	assert_int_equal(
	    gossip_request(env->a.g, "b", GOSSIP_CH_REPL, text, strlen(text), on_reply, c), 0);
	assert_false(c->done); /* never from inside gossip_request */
	if (!run)
		return;
	assert_true(run_until(env, call_done, c));
	assert_int_equal(c->len, (ssize_t)strlen(text));
	assert_memory_equal(c->reply, text, strlen(text));
}

/* A /metrics sample of a's gossip, e.g. "stream_connects_total". */
static unsigned long long metric(struct env *env, const char *name)
{
	_cleanup_free_ char *text = NULL;
	char key[96];
	const char *p;

	assert_int_equal(gossip_metrics(env->a.g, &text), 0);
	snprintf(key, sizeof(key), "\nshoal_gossip_%s ", name);
	p = strstr(text, key);
	assert_non_null(p);
	return strtoull(p + strlen(key), NULL, 10);
}

static int setup(void **state)
{
	struct env *env = calloc(1, sizeof(*env));
	uint16_t base_port = (uint16_t)(20000 + (getpid() % 20000));

	assert_non_null(env);
	env->base = event_base_new();
	env->port_a = base_port;
	env->port_b = (uint16_t)(base_port + 1);
	strcpy(env->a.name, "a");
	strcpy(env->b.name, "b");
	strcpy(env->a.dir, "/tmp/shoal-gconns-XXXXXX");
	strcpy(env->b.dir, "/tmp/shoal-gconns-XXXXXX");
	assert_non_null(mkdtemp(env->a.dir));
	assert_non_null(mkdtemp(env->b.dir));
	snprintf(env->key_file, sizeof(env->key_file), "%s/gossip.key", env->a.dir);
	assert_int_equal(members_new("a", &env->a.members), 0);
	assert_int_equal(members_new("b", &env->b.members), 0);
	*state = env;
	return 0;
}

static void rm_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int teardown(void **state)
{
	struct env *env = *state;

	gossip_free(env->b.g);
	gossip_free(env->a.g);
	members_free(env->a.members);
	members_free(env->b.members);
	event_base_free(env->base);
	rm_dir(env->a.dir);
	rm_dir(env->b.dir);
	free(env);
	return 0;
}

static struct call x, last;

static void test_reuse_and_restart(void **state)
{
	struct env *env = *state;
	char join[32], text[32];
	unsigned long long connects;

	node_start(env, &env->a, env->port_a, NULL);
	snprintf(join, sizeof(join), "127.0.0.1:%u", env->port_a);
	node_start(env, &env->b, env->port_b, join);
	assert_true(run_until(env, b_alive_on_a, NULL));

	/* 50 requests one after another: one connection */
	connects = metric(env, "stream_connects_total");
	for (int i = 0; i < 50; i++) {
		snprintf(text, sizeof(text), "req %d", i);
		request(env, text, NULL);
	}
	assert_int_equal(env->b.served, 50);
	assert_true(metric(env, "stream_connects_total") - connects <= 1);
	assert_int_equal(metric(env, "stream_reused_total"), 49);
	assert_int_equal(metric(env, "stream_idle"), 1);

	/* b restarts (same address and state) before a's loop saw its connection close: the
	 * request goes out on the dead parked connection, then again on a new one */
	env->b.g = gossip_free(env->b.g);
	node_start(env, &env->b, env->port_b, join);
	env->b.served = 0;
	request(env, "after restart", NULL);
	assert_int_equal(env->b.served, 1);
	assert_int_equal(metric(env, "stream_retries_total"), 1);
	assert_int_equal(metric(env, "stream_errors_total"), 0);
	assert_int_equal(metric(env, "stream_idle"), 1);
	/* again: the connection made by the retry was parked and is reused and retried alike */
	env->b.g = gossip_free(env->b.g);
	node_start(env, &env->b, env->port_b, join);
	request(env, "after the second restart", NULL);
	assert_int_equal(metric(env, "stream_retries_total"), 2);
	assert_int_equal(metric(env, "stream_errors_total"), 0);

	/* two requests at once: two connections, both parked after */
	connects = metric(env, "stream_connects_total");
	request(env, "x", &x);
	request(env, "y", NULL);
	assert_true(run_until(env, call_done, &x));
	assert_int_equal(x.len, 1);
	assert_int_equal(metric(env, "stream_connects_total") - connects, 1);
	assert_int_equal(metric(env, "stream_idle"), 2);
	/* gossip freed with a request in flight and connections parked: the request hears
	 * -ECANCELED, the rest is freed (ASan) */
	request(env, "in flight at the end", &last);
	env->a.g = gossip_free(env->a.g);
	assert_true(last.done);
	assert_int_equal(last.len, -ECANCELED);
}

static bool calls_done(struct env *env, void *ud)
{
	struct call *c = ud;

	return c[0].done && c[2].done && c[3].done;
}

static void test_request_many(void **state)
{
	struct env *env = *state;
	const char *nodes[] = {"b", "nobody", "b", "b"};
	struct call calls[4] = {0};
	void *ctx[] = {&calls[0], &calls[1], &calls[2], &calls[3]};
	int err[4];
	char join[32];

	node_start(env, &env->a, env->port_a, NULL);
	snprintf(join, sizeof(join), "127.0.0.1:%u", env->port_a);
	node_start(env, &env->b, env->port_b, join);
	assert_true(run_until(env, b_alive_on_a, NULL));
	request(env, "park one", NULL);
	env->b.served = 0;

	/* b named three times: one request on the parked connection, two on new ones; each
	 * arrives (the copies after the first are sealed again: b would refuse the same frame
	 * twice as a replay), the unknown member is refused at once */
	assert_int_equal(gossip_request_many(env->a.g, nodes, 4, GOSSIP_CH_REPL, "many", 4,
					     on_reply, ctx, err),
			 3);
	assert_int_equal(err[0], 0);
	assert_int_equal(err[1], -EHOSTUNREACH);
	assert_int_equal(err[2], 0);
	assert_int_equal(err[3], 0);
	assert_false(calls[0].done); /* never from inside the call */
	assert_true(run_until(env, calls_done, calls));
	for (int i = 0; i < 4; i++) {
		if (i == 1) {
			assert_false(calls[i].done);
			continue;
		}
		assert_int_equal(calls[i].len, 4);
		assert_memory_equal(calls[i].reply, "many", 4);
	}
	assert_int_equal(env->b.served, 3);
	assert_int_equal(metric(env, "stream_errors_total"), 0);
	assert_int_equal(metric(env, "stream_idle"), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reuse_and_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_many, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
