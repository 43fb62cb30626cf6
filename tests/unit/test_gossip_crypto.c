// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/macro.h"
#include "sched/gossip_crypto.h"

#define NOW 1700000000000ull

struct node {
	struct gossip_keyring *kr;
	struct gossip_crypto *c;
};

static void node_init(struct node *n, const char *cluster, const uint8_t *key, size_t max_sessions)
{
	struct gossip_crypto_opts o = {.cluster_name = cluster, .max_sessions = max_sessions};

	assert_int_equal(gossip_keyring_new(&n->kr), 0);
	if (key)
		assert_int_equal(gossip_keyring_install(n->kr, key), 1);
	assert_int_equal(gossip_crypto_new(&o, n->kr, &n->c), 0);
}

static void node_done(struct node *n)
{
	n->c = gossip_crypto_free(n->c);
	n->kr = gossip_keyring_free(n->kr);
}

static uint64_t dropped(struct node *n, enum gossip_drop d)
{
	struct gossip_crypto_stats st;

	gossip_crypto_stats(n->c, &st);
	return st.dropped[d];
}

static void key_of(uint8_t key[GOSSIP_KEY_BYTES], uint8_t v)
{
	memset(key, v, GOSSIP_KEY_BYTES);
}

static void test_key_text(void **state)
{
	uint8_t k[GOSSIP_KEY_BYTES], back[GOSSIP_KEY_BYTES];
	char b64[GOSSIP_KEY_B64_LEN + 1], padded[64];

	assert_int_equal(gossip_key_generate(k), 0);
	gossip_key_format(k, b64);
	assert_int_equal(strlen(b64), GOSSIP_KEY_B64_LEN);
	assert_int_equal(gossip_key_parse(b64, back), 0);
	assert_memory_equal(k, back, sizeof(k));
	snprintf(padded, sizeof(padded), "  %s\n", b64);
	assert_int_equal(gossip_key_parse(padded, back), 0);
	assert_memory_equal(k, back, sizeof(k));
	/* 16 bytes, garbage, empty, one character short */
	assert_int_equal(gossip_key_parse("AAAAAAAAAAAAAAAAAAAAAA==", back), -EINVAL);
	assert_int_equal(gossip_key_parse("not base64 at all, not at all!!!!!!!!!!!!!!", back),
			 -EINVAL);
	assert_int_equal(gossip_key_parse("", back), -EINVAL);
	b64[GOSSIP_KEY_B64_LEN - 1] = 0;
	assert_int_equal(gossip_key_parse(b64, back), -EINVAL);
}

static void test_keyring_ops(void **state)
{
	struct gossip_keyring *kr, *kr2;
	uint8_t k1[32], k2[32], k3[32];
	_cleanup_free_ char *text = NULL;
	uint64_t g;

	key_of(k1, 1);
	key_of(k2, 2);
	key_of(k3, 3);
	assert_int_equal(gossip_keyring_new(&kr), 0);
	assert_int_equal(gossip_keyring_count(kr), 0);
	assert_int_equal(gossip_keyring_install(kr, k1), 1);
	assert_int_equal(gossip_keyring_install(kr, k1), 0);
	assert_int_equal(gossip_keyring_install(kr, k2), 1);
	assert_memory_equal(gossip_keyring_key(kr, 0), k1, 32); /* the first is the primary */
	assert_int_equal(gossip_keyring_use(kr, k3), -ENOENT);
	g = gossip_keyring_generation(kr);
	assert_int_equal(gossip_keyring_use(kr, k2), 1);
	assert_true(gossip_keyring_generation(kr) > g);
	assert_int_equal(gossip_keyring_use(kr, k2), 0);
	assert_memory_equal(gossip_keyring_key(kr, 0), k2, 32);
	assert_memory_equal(gossip_keyring_key(kr, 1), k1, 32);
	assert_int_equal(gossip_keyring_remove(kr, k2), -EBUSY);
	assert_int_equal(gossip_keyring_remove(kr, k3), 0);
	assert_int_equal(gossip_keyring_install(kr, k3), 1);

	assert_int_equal(gossip_keyring_format(kr, &text), 0);
	assert_int_equal(gossip_keyring_new(&kr2), 0);
	assert_int_equal(gossip_keyring_parse(kr2, text, strlen(text)), 0);
	assert_int_equal(gossip_keyring_count(kr2), 3);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(gossip_keyring_key(kr, i), gossip_keyring_key(kr2, i), 32);

	assert_int_equal(gossip_keyring_remove(kr, k1), 1);
	assert_int_equal(gossip_keyring_count(kr), 2);
	assert_memory_equal(gossip_keyring_key(kr, 1), k3, 32);
	assert_null(gossip_keyring_key(kr, 2));

	/* malformed files leave the keyring as it was */
	assert_int_equal(gossip_keyring_parse(kr2, "[]", 2), -EINVAL);
	assert_int_equal(gossip_keyring_parse(kr2, "[\"abc\"]", 7), -EINVAL);
	assert_int_equal(gossip_keyring_parse(kr2, "{", 1), -EINVAL);
	assert_int_equal(gossip_keyring_count(kr2), 3);

	for (int i = 0; i < GOSSIP_KEYRING_MAX - 3; i++) {
		uint8_t k[32];
		key_of(k, (uint8_t)(10 + i));
		assert_int_equal(gossip_keyring_install(kr2, k), 1);
	}
	key_of(k1, 200);
	assert_int_equal(gossip_keyring_install(kr2, k1), -ENOSPC);
	gossip_keyring_free(kr);
	gossip_keyring_free(kr2);
}

static void test_roundtrip(void **state)
{
	struct node a, b;
	uint8_t k[32], wire[GOSSIP_MAX_DGRAM], out[GOSSIP_MAX_DGRAM], msg[GOSSIP_MAX_DGRAM];
	int n, m;

	key_of(k, 7);
	node_init(&a, "prod", k, 0);
	node_init(&b, "prod", k, 0);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 31);
	for (size_t len = 0; len <= GOSSIP_MAX_DGRAM_PAYLOAD; len += 331) {
		n = gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW, msg, len, wire, sizeof(wire));
		assert_int_equal(n, (int)(len + GOSSIP_SEAL_OVERHEAD));
		/* the payload does not appear in clear */
		if (len >= 16)
			assert_null(memmem(wire, (size_t)n, msg, 16));
		m = gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW + 5, wire, (size_t)n, out, sizeof(out),
				NULL);
		assert_int_equal(m, (int)len);
		assert_memory_equal(out, msg, len);
	}
	/* the largest payload fits exactly; one more byte does not */
	n = gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW, msg, GOSSIP_MAX_DGRAM_PAYLOAD, wire,
			sizeof(wire));
	assert_int_equal(n, GOSSIP_MAX_DGRAM);
	assert_int_equal(gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW, msg, GOSSIP_MAX_DGRAM_PAYLOAD + 1,
				     wire, sizeof(wire)),
			 -EMSGSIZE);
	node_done(&a);
	node_done(&b);
}

static void test_wrong_key_and_cluster(void **state)
{
	struct node a, b, other, empty;
	uint8_t k[32], k2[32], wire[256], out[256];
	enum gossip_drop why;
	int n;

	key_of(k, 1);
	key_of(k2, 2);
	node_init(&a, "prod", k, 0);
	node_init(&b, "prod", k2, 0);
	node_init(&other, "staging", k, 0);
	node_init(&empty, "prod", NULL, 0);
	assert_int_equal(gossip_seal(empty.c, GOSSIP_SEAL_DGRAM, NOW, "x", 1, wire, sizeof(wire)),
			 -ENOKEY);
	n = gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW, "hello", 5, wire, sizeof(wire));
	assert_true(n > 0);
	assert_int_equal(
	    gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, wire, (size_t)n, out, sizeof(out), &why),
	    -EBADMSG);
	assert_int_equal(why, GOSSIP_DROP_AUTH);
	assert_int_equal(dropped(&b, GOSSIP_DROP_AUTH), 1);
	/* same key, another cluster name: the associated data differs */
	assert_int_equal(
	    gossip_open(other.c, GOSSIP_SEAL_DGRAM, NOW, wire, (size_t)n, out, sizeof(out), &why),
	    -EBADMSG);
	assert_int_equal(why, GOSSIP_DROP_AUTH);
	/* a datagram is not a stream frame, even with the kind byte rewritten */
	assert_int_equal(
	    gossip_open(a.c, GOSSIP_SEAL_STREAM, NOW, wire, (size_t)n, out, sizeof(out), &why),
	    -EBADMSG);
	assert_int_equal(why, GOSSIP_DROP_VERSION);
	wire[1] = GOSSIP_SEAL_STREAM;
	assert_int_equal(
	    gossip_open(a.c, GOSSIP_SEAL_STREAM, NOW, wire, (size_t)n, out, sizeof(out), &why),
	    -EBADMSG);
	assert_int_equal(why, GOSSIP_DROP_AUTH);
	node_done(&a);
	node_done(&b);
	node_done(&other);
	node_done(&empty);
}

/* Every single-byte change and every truncation is refused, and nothing reads out of bounds
 * (the buffer is exactly the packet's size, so ASan/valgrind would see it). */
static void test_tamper_truncate(void **state)
{
	struct node a, b;
	uint8_t k[32], wire[128], out[128];
	int n;

	key_of(k, 9);
	node_init(&a, "prod", k, 0);
	node_init(&b, "prod", k, 0);
	n = gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW, "membership", 10, wire, sizeof(wire));
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		uint8_t *copy = malloc((size_t)n);
		memcpy(copy, wire, (size_t)n);
		copy[i] ^= 0x20;
		assert_true(gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, copy, (size_t)n, out,
					sizeof(out), NULL) < 0);
		free(copy);
	}
	for (int len = 0; len < n; len++) {
		uint8_t *copy = malloc((size_t)len + 1);
		memcpy(copy, wire, (size_t)len);
		assert_true(gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, copy, (size_t)len, out,
					sizeof(out), NULL) < 0);
		free(copy);
	}
	assert_int_equal(dropped(&b, GOSSIP_DROP_TRUNCATED), GOSSIP_SEAL_OVERHEAD);
	/* the untouched packet still opens: failures changed no replay state */
	assert_int_equal(
	    gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, wire, (size_t)n, out, sizeof(out), NULL), 10);
	node_done(&a);
	node_done(&b);
}

static void test_oversized(void **state)
{
	struct node a, b;
	uint8_t k[32];
	size_t big = GOSSIP_MAX_DGRAM + 1;
	uint8_t *wire = calloc(1, big * 2), *out = calloc(1, big * 2);
	enum gossip_drop why;
	int n;

	key_of(k, 3);
	node_init(&a, "prod", k, 0);
	node_init(&b, "prod", k, 0);
	assert_int_equal(gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, wire, big, out, big * 2, &why),
			 -EMSGSIZE);
	assert_int_equal(why, GOSSIP_DROP_OVERSIZED);
	/* a stream frame may be larger than a datagram */
	n = gossip_seal(a.c, GOSSIP_SEAL_STREAM, NOW, out, big, wire, big * 2);
	assert_int_equal(n, (int)(big + GOSSIP_SEAL_OVERHEAD));
	assert_int_equal(
	    gossip_open(b.c, GOSSIP_SEAL_STREAM, NOW, wire, (size_t)n, out, big * 2, NULL),
	    (int)big);
	free(wire);
	free(out);
	node_done(&a);
	node_done(&b);
}

static void test_replay_and_stale(void **state)
{
	struct node a, b;
	uint8_t k[32], w1[128], w2[128], w3[128], out[128];
	enum gossip_drop why;
	int n1, n2, n3;

	key_of(k, 4);
	node_init(&a, "prod", k, 0);
	node_init(&b, "prod", k, 0);
	n1 = gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW, "one", 3, w1, sizeof(w1));
	n2 = gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW, "two", 3, w2, sizeof(w2));
	n3 = gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW - 61000, "old", 3, w3, sizeof(w3));
	/* out of order is fine, twice is not */
	assert_int_equal(gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, w2, (size_t)n2, out, 128, NULL),
			 3);
	assert_int_equal(gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, w1, (size_t)n1, out, 128, NULL),
			 3);
	assert_int_equal(gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, w1, (size_t)n1, out, 128, &why),
			 -EALREADY);
	assert_int_equal(why, GOSSIP_DROP_REPLAY);
	assert_int_equal(gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, w2, (size_t)n2, out, 128, &why),
			 -EALREADY);
	assert_int_equal(dropped(&b, GOSSIP_DROP_REPLAY), 2);
	/* stamped 61 s ago: outside the default 60 s window */
	assert_int_equal(gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, w3, (size_t)n3, out, 128, &why),
			 -ETIME);
	assert_int_equal(why, GOSSIP_DROP_STALE);
	/* a receiver whose clock runs ahead sees the fresh one as stale too */
	node_done(&b);
	node_init(&b, "prod", k, 0);
	assert_int_equal(
	    gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW + 60001, w1, (size_t)n1, out, 128, &why),
	    -ETIME);
	node_done(&a);
	node_done(&b);
}

/* Random delivery (duplicates, reordering, losses) against a model: a packet opens iff it was
 * never opened before and is within GOSSIP_REPLAY_BITS of the highest counter opened. */
static void test_replay_window_model(void **state)
{
	enum { N = 5000 };
	struct node a, b;
	uint8_t k[32], out[128];
	static uint8_t wire[N][96];
	static int len[N];
	static bool opened[N];
	unsigned seed = 12345;
	long top = -1;

	key_of(k, 5);
	node_init(&a, "prod", k, 0);
	node_init(&b, "prod", k, 0);
	for (int i = 0; i < N; i++) {
		len[i] = gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW, &i, sizeof(i), wire[i],
				     sizeof(wire[i]));
		assert_true(len[i] > 0);
	}
	for (int step = 0; step < 4 * N; step++) {
		/* mostly near the front of the stream, sometimes far behind */
		long base = top < 0 ? 0 : top;
		long i = base + (long)(rand_r(&seed) % 64) - 40;
		if (rand_r(&seed) % 10 == 0)
			i = base - (long)(rand_r(&seed) % (2 * GOSSIP_REPLAY_BITS));
		if (i < 0 || i >= N)
			continue;
		bool expect = !opened[i] && (top < 0 || i > top || top - i < GOSSIP_REPLAY_BITS);
		int r = gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, wire[i], (size_t)len[i], out,
				    sizeof(out), NULL);
		if (expect) {
			int v;
			assert_int_equal(r, (int)sizeof(int));
			memcpy(&v, out, sizeof(v));
			assert_int_equal(v, i);
			opened[i] = true;
			if (i > top)
				top = i;
		} else
			assert_int_equal(r, -EALREADY);
	}
	node_done(&a);
	node_done(&b);
}

/* Many senders through a small session table: the oldest is forgotten, never a crash, and a
 * sender still remembered still has its replays refused. */
static void test_session_eviction(void **state)
{
	struct node r, s[8];
	uint8_t k[32], w[8][96], out[96];
	int n[8];

	key_of(k, 6);
	node_init(&r, "prod", k, 4);
	for (int i = 0; i < 8; i++) {
		node_init(&s[i], "prod", k, 0);
		n[i] = gossip_seal(s[i].c, GOSSIP_SEAL_DGRAM, NOW, "x", 1, w[i], sizeof(w[i]));
		assert_int_equal(gossip_open(r.c, GOSSIP_SEAL_DGRAM, NOW + (uint64_t)i, w[i],
					     (size_t)n[i], out, sizeof(out), NULL),
				 1);
	}
	for (int i = 4; i < 8; i++)
		assert_int_equal(gossip_open(r.c, GOSSIP_SEAL_DGRAM, NOW + 10, w[i], (size_t)n[i],
					     out, sizeof(out), NULL),
				 -EALREADY);
	for (int i = 0; i < 8; i++)
		node_done(&s[i]);
	node_done(&r);
}

/* install everywhere -> use -> remove the old key: no packet is lost at any step. */
static void test_rotation(void **state)
{
	struct node a, b;
	uint8_t k1[32], k2[32], w[96], out[96];
	struct gossip_crypto_stats st;
	int n;

	key_of(k1, 1);
	key_of(k2, 2);
	node_init(&a, "prod", k1, 0);
	node_init(&b, "prod", k1, 0);
#define EXCHANGE()                                                                                 \
	do {                                                                                       \
		n = gossip_seal(a.c, GOSSIP_SEAL_DGRAM, NOW, "ab", 2, w, sizeof(w));               \
		assert_int_equal(gossip_open(b.c, GOSSIP_SEAL_DGRAM, NOW, w, (size_t)n, out,       \
					     sizeof(out), NULL),                                   \
				 2);                                                               \
		n = gossip_seal(b.c, GOSSIP_SEAL_DGRAM, NOW, "ba", 2, w, sizeof(w));               \
		assert_int_equal(gossip_open(a.c, GOSSIP_SEAL_DGRAM, NOW, w, (size_t)n, out,       \
					     sizeof(out), NULL),                                   \
				 2);                                                               \
	} while (0)
	EXCHANGE();
	gossip_keyring_install(a.kr, k2);
	EXCHANGE();
	gossip_keyring_install(b.kr, k2);
	EXCHANGE();
	gossip_keyring_use(a.kr, k2); /* a seals with k2, b still with k1 */
	EXCHANGE();
	gossip_crypto_stats(a.c, &st);
	assert_int_equal(st.opened_secondary, 1); /* b's k1 packet */
	gossip_keyring_use(b.kr, k2);
	EXCHANGE();
	assert_int_equal(gossip_keyring_remove(a.kr, k1), 1);
	EXCHANGE();
	assert_int_equal(gossip_keyring_remove(b.kr, k1), 1);
	EXCHANGE();
#undef EXCHANGE
	gossip_crypto_stats(b.c, &st);
	assert_int_equal(st.dropped[GOSSIP_DROP_AUTH], 0);
	node_done(&a);
	node_done(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_text),	     cmocka_unit_test(test_keyring_ops),
	    cmocka_unit_test(test_roundtrip),	     cmocka_unit_test(test_wrong_key_and_cluster),
	    cmocka_unit_test(test_tamper_truncate),  cmocka_unit_test(test_oversized),
	    cmocka_unit_test(test_replay_and_stale), cmocka_unit_test(test_replay_window_model),
	    cmocka_unit_test(test_session_eviction), cmocka_unit_test(test_rotation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
