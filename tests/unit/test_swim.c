// SPDX-License-Identifier: Apache-2.0
/*
 * The gossip state machine (sched/swim.c) and its wire codec (sched/swim_wire.c), driven by a
 * small in-test network: a manual clock, packets delivered 1 ms later unless a node is cut off.
 * tests/sim runs the same code at 100 and 1,000 nodes under loss, stalls and partitions.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sched/swim.h"
#include "sched/swim_wire.h"

/* ---- a tiny network ---- */

#define MAXN 8

struct pkt {
	uint64_t at;
	int from, to;
	bool stream, reply;
	uint64_t token;
	ssize_t len;
	uint8_t *buf;
};

struct tnode {
	struct swim *sw;
	char name[16];
	uint64_t instance;
	struct swim_addr addr;
	bool up, cut; /* cut: nothing in or out */
	int changes, refused, conflicts;
	size_t max_dgram_seen;
};

static struct {
	uint64_t now;
	uint64_t rng;
	struct tnode n[MAXN];
	int nn;
	struct pkt q[65536];
	size_t nq;
	int cur;
} T;

static uint64_t t_now(void *ud)
{
	return T.now;
}

static uint32_t t_rand(void *ud)
{
	T.rng ^= T.rng >> 12;
	T.rng ^= T.rng << 25;
	T.rng ^= T.rng >> 27;
	return (uint32_t)((T.rng * 2685821657736338717ULL) >> 32);
}

static int addr_idx(const struct swim_addr *a)
{
	for (int i = 0; i < T.nn; i++)
		if (swim_addr_equal(a, &T.n[i].addr))
			return i;
	return -1;
}

static void enqueue(int from, int to, bool stream, bool reply, uint64_t token, const void *buf,
		    ssize_t len)
{
	assert_true(T.nq < 65536);
	struct pkt *p = &T.q[T.nq++];
	*p = (struct pkt){.at = T.now + 1,
			  .from = from,
			  .to = to,
			  .stream = stream,
			  .reply = reply,
			  .token = token,
			  .len = len};
	if (len > 0) {
		p->buf = malloc(len);
		memcpy(p->buf, buf, len);
	}
}

static int t_send(void *ud, const struct swim_addr *to, const void *buf, size_t len)
{
	int from = (int)(intptr_t)ud, dst = addr_idx(to);

	if (len > T.n[from].max_dgram_seen)
		T.n[from].max_dgram_seen = len;
	if (dst >= 0 && !T.n[from].cut)
		enqueue(from, dst, false, false, 0, buf, len);
	return 0;
}

static int t_stream(void *ud, const struct swim_addr *to, const void *req, size_t len,
		    uint64_t token)
{
	int from = (int)(intptr_t)ud, dst = addr_idx(to);

	if (dst < 0 || T.n[from].cut || T.n[dst].cut || !T.n[dst].up)
		enqueue(dst < 0 ? from : dst, from, true, true, token, NULL, -ECONNREFUSED);
	else
		enqueue(from, dst, true, false, token, req, len);
	return 0;
}

static void t_change(void *ud, const struct swim_member *m)
{
	T.n[(int)(intptr_t)ud].changes++;
}

static void t_event(void *ud, const struct swim_event *ev)
{
	struct tnode *n = &T.n[(int)(intptr_t)ud];

	if (ev->type == SWIM_EV_JOIN_REFUSED)
		n->refused++;
	if (ev->type == SWIM_EV_CONFLICT)
		n->conflicts++;
}

static void node_up(int i, uint64_t instance, uint32_t inc, const struct swim_config *cfg)
{
	struct tnode *n = &T.n[i];
	struct swim_env env = {.ud = (void *)(intptr_t)i,
			       .now_ms = t_now,
			       .rand32 = t_rand,
			       .send_udp = t_send,
			       .stream = t_stream,
			       .on_change = t_change,
			       .on_event = t_event};
	struct swim_config c = cfg ? *cfg : swim_config_default();

	snprintf(n->name, sizeof(n->name), "n%d", i);
	n->instance = instance;
	n->addr = (struct swim_addr){
	    .family = SWIM_AF_INET, .port = 7946, .ip = {10, 0, 0, (uint8_t)(i + 1)}};
	n->up = true;
	n->cut = false;
	assert_int_equal(swim_new(&c, &env, n->name, instance, &n->addr, inc, &n->sw), 0);
	if (i >= T.nn)
		T.nn = i + 1;
}

static void node_down(int i)
{
	T.n[i].up = false;
	T.n[i].sw = swim_free(T.n[i].sw);
}

static void deliver(struct pkt *p)
{
	struct tnode *d = &T.n[p->to];

	if (!d->up || (d->cut && !p->reply) || (T.n[p->from].cut && !p->reply)) {
		if (p->stream && !p->reply && T.n[p->from].up)
			swim_stream_done(T.n[p->from].sw, p->token, NULL, -ETIMEDOUT);
		return;
	}
	if (!p->stream) {
		swim_recv_udp(d->sw, &T.n[p->from].addr, p->buf, p->len);
	} else if (!p->reply) {
		void *reply = NULL;
		size_t rlen = 0;
		int r =
		    swim_handle_stream(d->sw, &T.n[p->from].addr, p->buf, p->len, &reply, &rlen);
		enqueue(p->to, p->from, true, true, p->token, reply, r < 0 ? r : (ssize_t)rlen);
		free(reply);
	} else {
		swim_stream_done(d->sw, p->token, p->buf, p->len);
	}
}

/* advance the clock ms by ms: deliver due packets, then due timers */
static void run(uint64_t ms)
{
	uint64_t end = T.now + ms;

	while (T.now < end) {
		T.now++;
		size_t n = T.nq;
		struct pkt due[4096];
		size_t nd = 0;
		for (size_t i = 0; i < n;) {
			if (T.q[i].at <= T.now && nd < 4096) {
				due[nd++] = T.q[i];
				T.q[i] = T.q[--T.nq];
				n--;
				continue;
			}
			i++;
		}
		for (size_t i = 0; i < nd; i++) {
			deliver(&due[i]);
			free(due[i].buf);
		}
		for (int i = 0; i < T.nn; i++)
			if (T.n[i].up && swim_next_timer_ms(T.n[i].sw) <= T.now)
				swim_tick(T.n[i].sw);
	}
}

static int setup(void **state)
{
	memset(&T, 0, sizeof(T));
	T.now = 100000;
	T.rng = 42;
	return 0;
}

static int teardown(void **state)
{
	for (int i = 0; i < T.nn; i++)
		swim_free(T.n[i].sw);
	for (size_t i = 0; i < T.nq; i++)
		free(T.q[i].buf);
	return 0;
}

static const struct swim_member *view(int i, int j)
{
	return swim_member_find(T.n[i].sw, T.n[j].name);
}

static bool all_alive(void)
{
	for (int i = 0; i < T.nn; i++) {
		if (!T.n[i].up)
			continue;
		for (int j = 0; j < T.nn; j++) {
			if (!T.n[j].up)
				continue;
			const struct swim_member *m = view(i, j);
			if (!m || m->state != SWIM_ALIVE)
				return false;
		}
	}
	return true;
}

static void cluster(int n, const struct swim_config *cfg)
{
	for (int i = 0; i < n; i++)
		node_up(i, 1000 + i, 0, cfg);
	for (int i = 1; i < n; i++)
		assert_int_equal(swim_join(T.n[i].sw, &T.n[0].addr, 1), 0);
	for (int k = 0; k < 100 && !all_alive(); k++)
		run(100);
	assert_true(all_alive());
}

/* ---- wire ---- */

static void test_wire_roundtrip(void **state)
{
	uint8_t buf[SWIM_DGRAM_MAX];
	struct swim_wbuf w = {.buf = buf, .cap = sizeof(buf)};
	struct swim_msg in[6], out;
	const char meta[] = "{\"podCIDR\":\"10.244.1.0/24\"}";

	memset(in, 0, sizeof(in));
	in[0] = (struct swim_msg){.type = SWIM_MSG_PING, .seq = 7};
	strcpy(in[0].name, "node-b");
	strcpy(in[0].from, "node-a");
	in[1] = (struct swim_msg){.type = SWIM_MSG_ACK, .seq = 0xfffffffe};
	in[2] = (struct swim_msg){.type = SWIM_MSG_PING_REQ, .seq = 9, .flags = SWIM_WIRE_F_NACK};
	assert_int_equal(swim_addr_parse("[fd00::5]:7946", &in[2].addr), 0);
	strcpy(in[2].name, "c");
	strcpy(in[2].from, "a");
	in[3] = (struct swim_msg){.type = SWIM_MSG_ALIVE,
				  .incarnation = 42,
				  .instance = 0x0123456789abcdefULL,
				  .meta = (const uint8_t *)meta,
				  .meta_len = strlen(meta)};
	assert_int_equal(swim_addr_parse("10.1.2.3:7000", &in[3].addr), 0);
	strcpy(in[3].name, "n1");
	in[4] = (struct swim_msg){.type = SWIM_MSG_DEAD, .incarnation = 3};
	strcpy(in[4].name, "x");
	strcpy(in[4].from, "x");
	in[5] = (struct swim_msg){
	    .type = SWIM_MSG_STATE, .incarnation = 5, .state = SWIM_SUSPECT, .instance = 77};
	assert_int_equal(swim_addr_parse("10.1.2.4:7000", &in[5].addr), 0);
	strcpy(in[5].name, "y");

	assert_int_equal(swim_wire_begin(&w), 0);
	size_t expect = sizeof(struct swim_wire_hdr);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(swim_wire_put(&w, &in[i]), 0);
		expect += swim_wire_msg_size(&in[i]);
	}
	assert_int_equal(w.len, expect);
	assert_int_equal(swim_wire_check(buf, w.len), 0);

	size_t off = sizeof(struct swim_wire_hdr);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(swim_wire_next(buf, w.len, &off, &out), 1);
		assert_int_equal(out.type, in[i].type);
		assert_int_equal(out.flags, in[i].flags);
		assert_int_equal(out.seq, in[i].seq);
		assert_int_equal(out.incarnation, in[i].incarnation);
		assert_true(out.instance == in[i].instance);
		assert_string_equal(out.name, in[i].name);
		assert_string_equal(out.from, in[i].from);
		assert_int_equal(out.meta_len, in[i].meta_len);
		if (in[i].meta_len)
			assert_memory_equal(out.meta, in[i].meta, in[i].meta_len);
		if (in[i].type == SWIM_MSG_ALIVE || in[i].type == SWIM_MSG_PING_REQ ||
		    in[i].type == SWIM_MSG_STATE)
			assert_true(swim_addr_equal(&out.addr, &in[i].addr));
		if (in[i].type == SWIM_MSG_STATE)
			assert_int_equal(out.state, SWIM_SUSPECT);
	}
	assert_int_equal(swim_wire_next(buf, w.len, &off, &out), 0);

	/* a full datagram refuses the next message and stays intact */
	struct swim_wbuf small = {.buf = buf, .cap = 20};
	assert_int_equal(swim_wire_begin(&small), 0);
	assert_int_equal(swim_wire_put(&small, &in[3]), -ENOSPC);
	assert_int_equal(small.len, sizeof(struct swim_wire_hdr));
}

/* Every truncation and every single-byte corruption decodes or fails cleanly. */
static void test_wire_truncated_and_corrupt(void **state)
{
	uint8_t buf[512], copy[512];
	struct swim_wbuf w = {.buf = buf, .cap = sizeof(buf)};
	struct swim_msg m = {.type = SWIM_MSG_ALIVE, .incarnation = 1}, out;

	assert_int_equal(swim_addr_parse("10.0.0.1:1", &m.addr), 0);
	strcpy(m.name, "abc");
	swim_wire_begin(&w);
	swim_wire_put(&w, &m);
	size_t boundary = w.len;
	m.type = SWIM_MSG_SUSPECT;
	strcpy(m.from, "d");
	swim_wire_put(&w, &m);
	for (size_t len = 0; len < w.len; len++) {
		size_t off = sizeof(struct swim_wire_hdr);
		int r, steps = 0;
		if (swim_wire_check(buf, len) < 0)
			continue;
		while ((r = swim_wire_next(buf, len, &off, &out)) == 1 || r == -ENOMSG)
			assert_true(++steps < 10);
		/* cut between messages it ends cleanly, anywhere else it is malformed */
		if (len == sizeof(struct swim_wire_hdr) || len == boundary)
			assert_int_equal(r, 0);
		else
			assert_int_equal(r, -EBADMSG);
	}
	for (size_t pos = 0; pos < w.len; pos++) {
		for (int v = 0; v < 256; v += 17) {
			memcpy(copy, buf, w.len);
			copy[pos] ^= (uint8_t)v;
			size_t off = sizeof(struct swim_wire_hdr);
			int r, steps = 0;
			if (swim_wire_check(copy, w.len) < 0)
				continue;
			while ((r = swim_wire_next(copy, w.len, &off, &out)) == 1 || r == -ENOMSG)
				assert_true(++steps < 10);
			assert_true(r == 0 || r == -EBADMSG);
		}
	}
}

static void test_wire_versions_and_unknown_types(void **state)
{
	uint8_t buf[64];
	struct swim_wbuf w = {.buf = buf, .cap = sizeof(buf)};
	struct swim_msg m = {.type = SWIM_MSG_ACK, .seq = 5}, out;

	swim_wire_begin(&w);
	/* a message type from a later version: skipped, the next one still read */
	uint8_t future[] = {200, 0, 0, 3, 1, 2, 3};
	swim_wire_put_raw(&w, future, sizeof(future));
	swim_wire_put(&w, &m);
	size_t off = sizeof(struct swim_wire_hdr);
	assert_int_equal(swim_wire_next(buf, w.len, &off, &out), -ENOMSG);
	assert_int_equal(swim_wire_next(buf, w.len, &off, &out), 1);
	assert_int_equal(out.seq, 5);

	buf[1] = SWIM_WIRE_VERSION + 1;
	assert_int_equal(swim_wire_check(buf, w.len), -EPROTONOSUPPORT);
	buf[1] = SWIM_WIRE_VERSION;
	buf[0] = 0;
	assert_int_equal(swim_wire_check(buf, w.len), -EPROTONOSUPPORT);
	assert_int_equal(swim_wire_check(buf, 3), -EBADMSG);
}

static void test_addr_parse_format(void **state)
{
	struct swim_addr a;
	char s[64];

	assert_int_equal(swim_addr_parse("192.168.1.20:7946", &a), 0);
	assert_int_equal(a.family, SWIM_AF_INET);
	assert_int_equal(a.port, 7946);
	swim_addr_format(&a, s, sizeof(s));
	assert_string_equal(s, "192.168.1.20:7946");
	assert_int_equal(swim_addr_parse("[fd00::1]:1", &a), 0);
	swim_addr_format(&a, s, sizeof(s));
	assert_string_equal(s, "[fd00::1]:1");
	assert_int_equal(swim_addr_parse("10.0.0.1", &a), -EINVAL);
	assert_int_equal(swim_addr_parse("10.0.0.1:0", &a), -EINVAL);
	assert_int_equal(swim_addr_parse("10.0.0.1:70000", &a), -EINVAL);
	assert_int_equal(swim_addr_parse("host:80", &a), -EINVAL);
}

/* ---- the state machine ---- */

static void test_join_and_converge(void **state)
{
	cluster(5, NULL);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(swim_join_status(T.n[i].sw), 0);
		assert_int_equal(swim_member_count(T.n[i].sw), 5);
		/* metadata set before joining travels with the alive message */
	}
	assert_int_equal(swim_set_meta(T.n[2].sw, "cidr=10.244.2.0/24", 18), 0);
	run(2000);
	const struct swim_member *m = view(0, 2);
	assert_int_equal(m->meta_len, 18);
	assert_memory_equal(m->meta, "cidr=10.244.2.0/24", 18);
	assert_true(m->incarnation >= 1);
	assert_true(m->rtt_us > 0 || view(1, 2)->rtt_us > 0 || view(3, 2)->rtt_us > 0);
}

static void test_crash_declared_dead_everywhere(void **state)
{
	struct swim_config cfg = swim_config_default();

	cluster(5, &cfg);
	node_down(3);
	bool suspect_seen = false;
	uint64_t start = T.now;
	for (int k = 0; k < 200; k++) {
		run(50);
		for (int i = 0; i < 5; i++)
			if (i != 3 && view(i, 3)->state == SWIM_SUSPECT)
				suspect_seen = true;
		bool all = true;
		for (int i = 0; i < 5; i++)
			if (i != 3 && view(i, 3)->state != SWIM_DEAD)
				all = false;
		if (all)
			break;
	}
	for (int i = 0; i < 5; i++)
		if (i != 3)
			assert_int_equal(view(i, 3)->state, SWIM_DEAD);
	assert_true(suspect_seen); /* suspect first, never straight to dead */
	assert_true(T.now - start < 6000);
	/* nobody else got accused along the way */
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 5; j++)
			if (i != 3 && j != 3)
				assert_int_equal(view(i, j)->state, SWIM_ALIVE);
}

/*
 * On 5 nodes the other survivors' own failed probes of the suspect (relays nacking: their
 * network works) confirm the suspicion, so it expires at the minimum timeout (1.25 s) rather
 * than the maximum (3.75 s): dead everywhere well before max + one probe period.
 */
static void test_crash_confirmed_by_own_probes(void **state)
{
	struct swim_config cfg = swim_config_default();

	for (int round = 0; round < 3; round++) {
		teardown(state);
		setup(state);
		T.rng = 42 + round;
		cluster(5, &cfg);
		node_down(2);
		uint64_t start = T.now, first_suspect = 0;
		bool all = false;
		while (!all && T.now - start < 10000) {
			run(10);
			all = true;
			for (int i = 0; i < 5; i++) {
				if (i == 2)
					continue;
				if (!first_suspect && view(i, 2)->state == SWIM_SUSPECT)
					first_suspect = T.now;
				if (view(i, 2)->state != SWIM_DEAD)
					all = false;
			}
		}
		assert_true(all);
		assert_true(first_suspect > 0);
		/* min timeout 1.25 s + final probe 0.1 s, not max 3.75 s */
		assert_true(T.now - first_suspect < 2500);
	}
}

static void test_restart_refutes_with_higher_incarnation(void **state)
{
	cluster(4, NULL);
	node_down(2);
	run(8000);
	assert_int_equal(view(0, 2)->state, SWIM_DEAD);
	uint32_t dead_inc = view(0, 2)->incarnation;
	/* the same identity comes back with nothing persisted */
	node_up(2, 1002, 0, NULL);
	swim_join(T.n[2].sw, &T.n[1].addr, 1);
	run(3000);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(view(i, 2)->state, SWIM_ALIVE);
		assert_true(view(i, 2)->incarnation > dead_inc);
	}
}

/*
 * A crash loses the last incarnation written in the background (daemon/gossip.c saves it after
 * the refutation went out): the node restarts below what its peers saw, before or after they
 * noticed the crash. Each peer ignores an alive at or below the incarnation it holds, so the
 * restarted node must learn its old life from them (the join's push-pull, their accusations)
 * and refute above it. Checked with peers holding the old life alive, suspect and dead, and
 * with new metadata at the same incarnation as the old life's: every view ends alive at the
 * restarted node's own incarnation, with its new metadata, and nobody declares it dead.
 */
static void test_restart_below_seen_incarnation(void **state)
{
	for (int held = SWIM_ALIVE; held <= SWIM_DEAD; held++) {
		teardown(state);
		setup(state);
		cluster(4, NULL);
		/* refute a few accusations: the peers see incarnation K */
		T.n[3].cut = true;
		for (int k = 0; k < 40 && view(0, 3)->state != SWIM_SUSPECT; k++)
			run(50);
		assert_int_equal(view(0, 3)->state, SWIM_SUSPECT);
		T.n[3].cut = false;
		run(1000);
		assert_int_equal(swim_set_meta(T.n[3].sw, "old", 3), 0);
		run(1000);
		uint32_t seen = view(0, 3)->incarnation;
		for (int i = 0; i < 3; i++) {
			assert_int_equal(view(i, 3)->state, SWIM_ALIVE);
			assert_int_equal(view(i, 3)->incarnation, seen);
		}
		assert_true(seen >= 2);
		/* kill -9; the restart comes back once the peers hold it `held` */
		node_down(3);
		for (int k = 0; k < 200 && view(0, 3)->state != (enum swim_state)held; k++)
			run(10);
		assert_int_equal(view(0, 3)->state, held);
		/* restarted two incarnations back: its metadata update then brings it to K - 1,
		 * or with a lost write of one, to K itself, the old life's with other metadata */
		uint32_t at = held == SWIM_SUSPECT ? seen - 1 : seen - 2;
		node_up(3, 1003, at, NULL);
		assert_int_equal(swim_set_meta(T.n[3].sw, "new", 3), 0);
		assert_int_equal(swim_join(T.n[3].sw, &T.n[1].addr, 1), 0);
		bool died = false;
		uint64_t start = T.now;
		bool ok = false;
		while (!ok && T.now - start < 5000) {
			run(10);
			uint32_t own = swim_self(T.n[3].sw)->incarnation;
			ok = true;
			for (int i = 0; i < 3; i++) {
				const struct swim_member *m = view(i, 3);
				if (held != SWIM_DEAD && m->state == SWIM_DEAD)
					died = true;
				if (m->state != SWIM_ALIVE || m->incarnation != own ||
				    m->meta_len != 3 || memcmp(m->meta, "new", 3))
					ok = false;
			}
		}
		assert_true(ok);
		assert_false(died);
		assert_true(swim_self(T.n[3].sw)->incarnation > seen);
		/* a join and a refutation: well within a second */
		assert_true(T.now - start < 1000);
		run(5000);
		for (int i = 0; i < 4; i++)
			assert_int_equal(view(i, 3)->state, SWIM_ALIVE);
	}
}

static void test_duplicate_name_refused(void **state)
{
	cluster(3, NULL);
	/* a second daemon named n1 with another instance id */
	struct tnode saved = T.n[1];
	node_up(3, 999, 0, NULL);
	swim_free(T.n[3].sw);
	struct swim_env env = {.ud = (void *)(intptr_t)3,
			       .now_ms = t_now,
			       .rand32 = t_rand,
			       .send_udp = t_send,
			       .stream = t_stream,
			       .on_change = t_change,
			       .on_event = t_event};
	struct swim_config c = swim_config_default();
	assert_int_equal(swim_new(&c, &env, "n1", 999, &T.n[3].addr, 0, &T.n[3].sw), 0);
	assert_int_equal(swim_join(T.n[3].sw, &T.n[0].addr, 1), 0);
	assert_int_equal(swim_join_status(T.n[3].sw), -EINPROGRESS);
	run(200);
	assert_int_equal(swim_join_status(T.n[3].sw), -EEXIST);
	assert_int_equal(T.n[3].refused, 1);
	assert_true(T.n[0].conflicts >= 1);
	/* the live n1 is untouched */
	assert_true(view(0, 1)->instance == saved.instance);
	assert_int_equal(view(0, 1)->state, SWIM_ALIVE);
	struct swim_stats st;
	swim_get_stats(T.n[0].sw, &st);
	assert_true(st.conflicts >= 1);
	/* the refused node does not retry */
	size_t before = T.nq;
	run(5000);
	(void)before;
	assert_int_equal(T.n[3].refused, 1);
	node_down(3);
}

static void test_graceful_leave_is_not_death(void **state)
{
	cluster(4, NULL);
	assert_int_equal(swim_leave(T.n[1].sw), 0);
	for (int k = 0; k < 20 && !swim_leave_done(T.n[1].sw); k++)
		run(100);
	assert_true(swim_leave_done(T.n[1].sw));
	node_down(1);
	run(10000);
	for (int i = 0; i < 4; i++)
		if (i != 1)
			assert_int_equal(view(i, 1)->state, SWIM_LEFT);
}

/* A member cut off for 500 ms (shorter than the suspicion timeout) is suspected, refutes. */
static void test_suspect_refutes(void **state)
{
	cluster(5, NULL);
	uint32_t inc = view(0, 4)->incarnation;
	T.n[4].cut = true;
	bool suspected = false;
	for (int k = 0; k < 20; k++) {
		run(50);
		for (int i = 0; i < 4; i++)
			suspected |= view(i, 4)->state == SWIM_SUSPECT;
		if (suspected)
			break;
	}
	assert_true(suspected);
	T.n[4].cut = false;
	run(3000);
	struct swim_stats st;
	swim_get_stats(T.n[4].sw, &st);
	assert_true(st.refutations >= 1);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(view(i, 4)->state, SWIM_ALIVE);
		assert_true(view(i, 4)->incarnation > inc);
	}
}

static int send_crafted(int to, const struct swim_addr *from, const struct swim_msg *m)
{
	uint8_t buf[SWIM_DGRAM_MAX];
	struct swim_wbuf w = {.buf = buf, .cap = sizeof(buf)};

	swim_wire_begin(&w);
	assert_int_equal(swim_wire_put(&w, m), 0);
	return swim_recv_udp(T.n[to].sw, from, buf, w.len);
}

static uint64_t fnv64(const char *n)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *n; n++)
		h = (h ^ (uint8_t)*n) * 1099511628211ULL;
	return h;
}

/*
 * A digest push-pull answers only with differences: STATEs the requester lacks or holds older,
 * and DIGESTs of what the requester holds newer (or the replier lacks), which it then pushes.
 */
static void test_digest_pushpull(void **state)
{
	uint8_t buf[4096];
	struct swim_wbuf w = {.buf = buf, .cap = sizeof(buf)};
	struct swim_msg m = {.type = SWIM_MSG_PUSHPULL, .flags = SWIM_WIRE_F_DIGEST, .instance = 9};

	cluster(3, NULL);
	uint32_t inc0 = view(0, 0)->incarnation, inc2 = view(0, 2)->incarnation;
	strcpy(m.name, "x");
	swim_wire_begin(&w);
	assert_int_equal(swim_wire_put(&w, &m), 0);
	struct swim_msg d[3] = {
	    /* n0 as n0 holds itself: nothing to say; n1 missing: its STATE comes back */
	    {.type = SWIM_MSG_DIGEST, .hash = fnv64("n0"), .incarnation = inc0},
	    /* n2 suspect at a higher incarnation, and a member n0 never heard of: wanted */
	    {.type = SWIM_MSG_DIGEST,
	     .hash = fnv64("n2"),
	     .incarnation = inc2 + 5,
	     .state = SWIM_SUSPECT},
	    {.type = SWIM_MSG_DIGEST, .hash = 0x1234, .incarnation = 1},
	};
	for (int i = 0; i < 3; i++)
		assert_int_equal(swim_wire_put(&w, &d[i]), 0);
	void *reply = NULL;
	size_t rlen = 0, off = sizeof(struct swim_wire_hdr);
	struct swim_addr from = {.family = SWIM_AF_INET, .port = 1, .ip = {10, 9, 9, 9}};
	assert_int_equal(swim_handle_stream(T.n[0].sw, &from, buf, w.len, &reply, &rlen), 0);
	assert_non_null(reply);
	int states = 0, wants = 0, r;
	bool hdr = false, want2 = false, want_x = false;
	while ((r = swim_wire_next(reply, rlen, &off, &m)) == 1) {
		if (m.type == SWIM_MSG_PUSHPULL) {
			assert_true(m.flags & SWIM_WIRE_F_REPLY);
			hdr = true;
		} else if (m.type == SWIM_MSG_STATE) {
			assert_string_equal(m.name, "n1");
			states++;
		} else if (m.type == SWIM_MSG_DIGEST) {
			want2 |= m.hash == fnv64("n2");
			want_x |= m.hash == 0x1234;
			wants++;
		}
	}
	assert_int_equal(r, 0);
	assert_true(hdr);
	assert_int_equal(states, 1);
	assert_int_equal(wants, 2);
	assert_true(want2 && want_x);
	free(reply);
	/* a digest request changes nothing on the replier */
	assert_int_equal(view(0, 2)->state, SWIM_ALIVE);
	assert_null(swim_member_find(T.n[0].sw, "x"));

	/* end to end: periodic digest push-pulls keep the views equal */
	struct swim_stats st;
	run(40000);
	assert_true(all_alive());
	swim_get_stats(T.n[1].sw, &st);
	assert_true(st.pushpulls >= 2);
	assert_int_equal(st.dropped[SWIM_DROP_MALFORMED], 0);
}

/* The suspicion timeout shrinks from max towards min with independent confirmations. */
static void test_dynamic_suspicion_timeout(void **state)
{
	struct swim_config cfg = swim_config_default();
	uint64_t dead_after[2];

	/* min = max(1 s, 4 * log10(7) * 200 ms), max = 6 * min, plus the 100 ms final probe; our
	 * own failed probes of p1 do not count (no relay nacks: we are cut off, not p1) */
	cfg.suspicion_min_ms = 1000;
	cfg.suspicion_mult = 4; /* k = 2 confirmations */
	cfg.suspicion_max_mult = 6;
	cfg.pushpull_interval_ms = 600000;
	cfg.reconnect_interval_ms = 0;
	for (int variant = 0; variant < 2; variant++) {
		teardown(state);
		setup(state);
		node_up(0, 1, 0, &cfg);
		T.n[0].cut = true; /* nothing it sends arrives anywhere */
		struct swim_addr peer = {.family = SWIM_AF_INET, .port = 1, .ip = {10, 9, 9, 9}};
		for (int j = 1; j <= 6; j++) {
			struct swim_msg a = {
			    .type = SWIM_MSG_ALIVE, .incarnation = 1, .instance = 100 + j};
			snprintf(a.name, sizeof(a.name), "p%d", j);
			a.addr = peer;
			a.addr.ip[3] = (uint8_t)j;
			send_crafted(0, &peer, &a);
		}
		struct swim_msg s = {.type = SWIM_MSG_SUSPECT, .incarnation = 1};
		strcpy(s.name, "p1");
		strcpy(s.from, "p2");
		uint64_t start = T.now;
		send_crafted(0, &peer, &s);
		assert_int_equal(swim_member_find(T.n[0].sw, "p1")->state, SWIM_SUSPECT);
		if (variant == 1) {
			/* two more independent accusers, and a repeat that must not count */
			strcpy(s.from, "p3");
			send_crafted(0, &peer, &s);
			send_crafted(0, &peer, &s);
			strcpy(s.from, "p4");
			send_crafted(0, &peer, &s);
		}
		while (swim_member_find(T.n[0].sw, "p1")->state == SWIM_SUSPECT &&
		       T.now - start < 30000)
			run(10);
		dead_after[variant] = T.now - start;
		assert_int_equal(swim_member_find(T.n[0].sw, "p1")->state, SWIM_DEAD);
	}
	assert_true(dead_after[0] >= 6000 && dead_after[0] < 6200);
	assert_true(dead_after[1] >= 1000 && dead_after[1] < 1200);
}

/* A node whose network is gone blames itself: health score up, few accusations. */
static void test_isolated_node_blames_itself(void **state)
{
	struct swim_config cfg = swim_config_default();

	cfg.max_own_suspicions = 1;
	cluster(6, &cfg);
	T.n[0].cut = true;
	run(5000);
	struct swim_stats st;
	swim_get_stats(T.n[0].sw, &st);
	/* probes failing without nacks: our own trouble, probes slowed down */
	assert_true(st.health_score >= 3);
	/* one accusation open at a time (none can expire before 3.75 s), the rest deferred */
	assert_true(st.suspicions_raised <= 2);
	assert_true(st.suspicions_deferred >= 1);
}

static void test_datagrams_fit_and_unknown_version_counted(void **state)
{
	struct swim_config cfg = swim_config_default();

	cfg.max_dgram = 600;
	cluster(6, &cfg);
	/* big metadata on everyone: many broadcasts that do not fit one datagram together */
	char meta[SWIM_META_MAX];
	memset(meta, 'x', sizeof(meta));
	assert_int_equal(swim_set_meta(T.n[0].sw, meta, 300), 0);
	assert_int_equal(swim_set_meta(T.n[0].sw, meta, SWIM_META_MAX + 1), -EINVAL);
	for (int i = 1; i < 6; i++)
		swim_set_meta(T.n[i].sw, meta, 200 + i);
	run(3000);
	for (int i = 0; i < 6; i++)
		assert_true(T.n[i].max_dgram_seen <= 600);
	assert_int_equal(view(3, 0)->meta_len, 300);

	uint8_t pkt[] = {SWIM_WIRE_MAGIC, SWIM_WIRE_VERSION + 1, 0, 0, 1, 0, 0, 0};
	assert_int_equal(swim_recv_udp(T.n[1].sw, &T.n[0].addr, pkt, sizeof(pkt)),
			 -EPROTONOSUPPORT);
	uint8_t junk[] = {SWIM_WIRE_MAGIC, SWIM_WIRE_VERSION, 0, 0, 5, 0, 0xff, 0xff};
	assert_int_equal(swim_recv_udp(T.n[1].sw, &T.n[0].addr, junk, sizeof(junk)), -EBADMSG);
	struct swim_stats st;
	swim_get_stats(T.n[1].sw, &st);
	assert_int_equal(st.dropped[SWIM_DROP_VERSION], 1);
	assert_int_equal(st.dropped[SWIM_DROP_MALFORMED], 1);
	assert_string_equal(swim_drop_name(SWIM_DROP_VERSION), "version");
}

/* A node that cannot reach a seed keeps retrying with back-off, and joins when it can. */
static void test_join_retries_until_seed_up(void **state)
{
	node_up(0, 1, 0, NULL);
	node_up(1, 2, 0, NULL);
	node_down(0);
	assert_int_equal(swim_join(T.n[1].sw, &T.n[0].addr, 1), 0);
	run(3000);
	assert_int_equal(swim_join_status(T.n[1].sw), -EINPROGRESS);
	node_up(0, 1, 0, NULL);
	for (int k = 0; k < 40 && swim_join_status(T.n[1].sw) != 0; k++)
		run(1000);
	assert_int_equal(swim_join_status(T.n[1].sw), 0);
	run(1000);
	assert_true(all_alive());
}

/* Both sides of a partition declare each other dead, then merge again after it heals. */
static void test_partition_heals(void **state)
{
	cluster(6, NULL);
	/* cut 4 and 5 from everyone (and each other): everyone else sees them dead */
	T.n[4].cut = T.n[5].cut = true;
	run(15000);
	assert_int_equal(view(0, 4)->state, SWIM_DEAD);
	assert_true(view(4, 0)->state != SWIM_ALIVE);
	T.n[4].cut = T.n[5].cut = false;
	for (int k = 0; k < 60 && !all_alive(); k++)
		run(500);
	assert_true(all_alive());
}

/* A node left alone (its only peer crashed) announces itself to its seed again. */
static void test_isolated_node_reannounces(void **state)
{
	struct swim_config cfg = swim_config_default();

	cfg.reconnect_interval_ms = 0; /* only the re-announce can bring them together */
	node_up(0, 1, 0, &cfg);
	node_up(1, 2, 0, &cfg);
	assert_int_equal(swim_join(T.n[1].sw, &T.n[0].addr, 1), 0);
	run(1000);
	assert_true(all_alive());
	node_down(0);
	run(8000);
	assert_int_equal(view(1, 0)->state, SWIM_DEAD);
	/* n0 comes back without joining anyone: n1 has to find it */
	node_up(0, 1, 0, &cfg);
	run(cfg.reannounce_ms + 3000);
	assert_true(all_alive());
	assert_true(view(1, 0)->incarnation >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wire_roundtrip),
	    cmocka_unit_test(test_wire_truncated_and_corrupt),
	    cmocka_unit_test(test_wire_versions_and_unknown_types),
	    cmocka_unit_test(test_addr_parse_format),
	    cmocka_unit_test_setup_teardown(test_join_and_converge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_declared_dead_everywhere, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_confirmed_by_own_probes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_digest_pushpull, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_refutes_with_higher_incarnation, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_restart_below_seen_incarnation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_name_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_graceful_leave_is_not_death, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_suspect_refutes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dynamic_suspicion_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_isolated_node_blames_itself, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_datagrams_fit_and_unknown_version_counted, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_join_retries_until_seed_up, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partition_heals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_isolated_node_reannounces, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
