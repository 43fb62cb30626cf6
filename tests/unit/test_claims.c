// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sched/claims.h"

static void test_cidr(void **state)
{
	struct claims_cidr c;
	char buf[32];
	uint32_t b;

	assert_int_equal(claims_cidr_init(&c, "10.244.0.0/16", 24), 0);
	assert_int_equal(c.count, 256);
	assert_int_equal(claims_cidr_block(&c, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.244.0.0/24");
	assert_int_equal(claims_cidr_block(&c, 255, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.244.255.0/24");
	assert_int_equal(claims_cidr_block(&c, 256, buf, sizeof(buf)), -ERANGE);
	assert_int_equal(claims_cidr_find(&c, "10.244.7.0/24", &b), 0);
	assert_int_equal(b, 7);
	/* not a block of the range: another size, an address inside a block, outside */
	assert_int_equal(claims_cidr_find(&c, "10.244.7.0/25", &b), -EINVAL);
	assert_int_equal(claims_cidr_find(&c, "10.244.7.3/24", &b), -EINVAL);
	assert_int_equal(claims_cidr_find(&c, "10.245.0.0/24", &b), -EINVAL);
	assert_int_equal(claims_cidr_find(&c, "10.243.255.0/24", &b), -EINVAL);
	/* a range given by an address inside it */
	assert_int_equal(claims_cidr_init(&c, "10.1.2.3/20", 24), 0);
	assert_int_equal(c.count, 16);
	assert_int_equal(claims_cidr_block(&c, 3, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.1.3.0/24");
	assert_int_equal(claims_cidr_init(&c, "10.1.0.0/25", 24), -EINVAL);
	assert_int_equal(claims_cidr_init(&c, "10.1.0.0", 24), -EINVAL);
	assert_int_equal(claims_cidr_init(&c, "10.1.0.0/", 24), -EINVAL);
	assert_int_equal(claims_cidr_init(&c, "nope/16", 24), -EINVAL);
	assert_int_equal(claims_cidr_init(&c, "0.0.0.0/0", 30), -EINVAL); /* 2^30 blocks */
	assert_int_equal(claims_cidr_init(&c, "10.0.0.0/8", 30), 0);
	assert_int_equal(c.count, 1u << 22);
	assert_int_equal(claims_cidr_init(&c, "10.0.0.0/8", 24), 0);
	assert_int_equal(c.count, 1u << 16);
}

static void test_names(void **state)
{
	char buf[300], big[300];

	assert_int_equal(claims_name("podcidr", "10.244.3.0/24", "n1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "podcidr.10-244-3-0-24.n1");
	assert_int_equal(claims_prefix("podcidr", "10.244.3.0/24", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "podcidr.10-244-3-0-24.");
	assert_int_equal(claims_name("podcidr", "", "n1", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(claims_name("podcidr", "x", "", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(claims_name("podcidr", "10.244.3.0/24", "n1", buf, 10), -ENAMETOOLONG);
	memset(big, 'a', 250);
	big[250] = 0;
	assert_int_equal(claims_name("podcidr", "x", big, buf, sizeof(buf)), -ENAMETOOLONG);
}

static void test_winner_and_verify(void **state)
{
	struct claims_entry e[] = {{"n3", 50}, {"n1", 70}, {"n2", 50}};

	/* earliest born; a tie goes to the smaller name */
	assert_int_equal(claims_winner(e, 3), 2);
	assert_int_equal(claims_winner(e, 1), 0);
	assert_int_equal(claims_verify(e, 3, "n2", 0, 1000, 100), CLAIMS_PENDING);
	assert_int_equal(claims_verify(e, 3, "n2", 950, 1000, 100), CLAIMS_PENDING);
	assert_int_equal(claims_verify(e, 3, "n2", 900, 1000, 100), CLAIMS_SETTLED);
	assert_int_equal(claims_verify(e, 3, "n3", 900, 1000, 100), CLAIMS_LOST);
	assert_int_equal(claims_verify(e, 3, "n1", 900, 1000, 100), CLAIMS_LOST);
	/* our own claim gone (deleted) */
	assert_int_equal(claims_verify(e, 0, "n1", 900, 1000, 100), CLAIMS_LOST);
	assert_int_equal(claims_verify(&e[1], 1, "n2", 900, 1000, 100), CLAIMS_LOST);
}

static bool taken_set(uint32_t b, void *ud)
{
	const uint8_t *t = ud;
	return t[b];
}

static void test_pick(void **state)
{
	uint8_t t[8] = {1, 1, 0, 1, 0, 1, 1, 1};
	uint32_t b;

	assert_int_equal(claims_pick(8, 0, taken_set, t, &b), 0);
	assert_int_equal(b, 2);
	assert_int_equal(claims_pick(8, 5, taken_set, t, &b), 0);
	assert_int_equal(b, 2); /* wraps */
	assert_int_equal(claims_pick(8, 3, taken_set, t, &b), 0);
	assert_int_equal(b, 4);
	memset(t, 1, sizeof(t));
	assert_int_equal(claims_pick(8, 3, taken_set, t, &b), -ENOSPC);
	assert_true(claims_start("n1", 256) < 256);
	assert_int_equal(claims_start("n1", 256), claims_start("n1", 256));
	assert_int_equal(claims_start("n1", 0), 0);
}

static void test_duplicates(void **state)
{
	struct claims_holder h[] = {
	    {.value = 7, .born = 30, .uid = "c"}, {.value = 5, .born = 10, .uid = "a"},
	    {.value = 7, .born = 20, .uid = "b"}, {.value = 7, .born = 20, .uid = "a"},
	    {.value = 9, .born = 1, .uid = "z"},
	};

	assert_int_equal(claims_duplicates(h, 5), 2);
	for (size_t i = 0; i < 5; i++) {
		bool want = h[i].value == 7 && !(h[i].born == 20 && !strcmp(h[i].uid, "a"));
		assert_int_equal(h[i].loser, want);
	}
	assert_int_equal(claims_duplicates(h, 0), 0);
}

/*
 * The protocol against a model of replication: claimants start at random times, see each
 * other's claims (and deletions) after a random delay up to max_delay, and count as caught up
 * max_delay after each claim (what an anti-entropy round guarantees). Whatever the timing, no two
 * settled claims hold one block, and everyone settles.
 */
#define SIM_NODES 12
#define SIM_BLOCKS 16

struct sim_claim {
	int holder;
	uint32_t block;
	uint64_t born, made, deleted; /* deleted: 0 = live */
	uint64_t seen_at[SIM_NODES];  /* when each node sees it made */
	uint64_t gone_at[SIM_NODES];  /* when each node sees it deleted */
};

struct sim {
	struct sim_claim c[SIM_NODES * SIM_BLOCKS * 4];
	size_t n;
	uint64_t now;
	int viewer;
};

static bool sim_visible(const struct sim *s, const struct sim_claim *c, int viewer)
{
	return s->now >= c->seen_at[viewer] && !(c->deleted && s->now >= c->gone_at[viewer]);
}

static bool sim_taken(uint32_t b, void *ud)
{
	struct sim *s = ud;

	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].block == b && sim_visible(s, &s->c[i], s->viewer))
			return true;
	return false;
}

static void test_claims_model(void **state)
{
	const uint64_t max_delay = 40, settle = 10;

	for (unsigned seed = 1; seed <= 300; seed++) {
		struct sim *s = calloc(1, sizeof(*s));
		uint64_t start[SIM_NODES];
		int mine[SIM_NODES], settled[SIM_NODES], tries[SIM_NODES] = {0};
		char names[SIM_NODES][8];

		assert_non_null(s);
		srand(seed);
		for (int i = 0; i < SIM_NODES; i++) {
			start[i] = (uint64_t)(rand() % 60);
			mine[i] = -1;
			settled[i] = 0;
			snprintf(names[i], sizeof(names[i]), "n%02d", i);
		}
		for (s->now = 0; s->now < 5000; s->now++) {
			for (int i = 0; i < SIM_NODES; i++) {
				if (s->now < start[i] || settled[i])
					continue;
				s->viewer = i;
				if (mine[i] < 0) {
					uint32_t b;
					/* the first try takes the lowest free block (a lone node
					 * gets block 0); retries start at a hashed offset */
					uint32_t st =
					    tries[i]++ ? claims_start(names[i], SIM_BLOCKS) : 0;
					assert_int_equal(
					    claims_pick(SIM_BLOCKS, st, sim_taken, s, &b), 0);
					assert_true(s->n < (sizeof(s->c) / sizeof(s->c[0])));
					struct sim_claim *c = &s->c[s->n];
					c->holder = i;
					c->block = b;
					c->made = s->now;
					c->born = s->now * 64 + (uint64_t)i;
					for (int v = 0; v < SIM_NODES; v++)
						c->seen_at[v] =
						    v == i
							? s->now
							: s->now + 1 + (uint64_t)rand() % max_delay;
					mine[i] = (int)s->n++;
					continue;
				}
				struct sim_claim *my = &s->c[mine[i]];
				struct claims_entry e[SIM_NODES * SIM_BLOCKS * 4];
				size_t n = 0;
				for (size_t k = 0; k < s->n; k++)
					if (s->c[k].block == my->block &&
					    sim_visible(s, &s->c[k], i))
						e[n++] = (struct claims_entry){
						    names[s->c[k].holder], s->c[k].born};
				uint64_t synced =
				    s->now >= my->made + max_delay ? my->made + max_delay : 0;
				switch (claims_verify(e, n, names[i], synced, s->now, settle)) {
				case CLAIMS_SETTLED:
					settled[i] = 1;
					break;
				case CLAIMS_LOST:
					my->deleted = s->now;
					for (int v = 0; v < SIM_NODES; v++)
						my->gone_at[v] =
						    v == i
							? s->now
							: s->now + 1 + (uint64_t)rand() % max_delay;
					mine[i] = -1;
					break;
				case CLAIMS_PENDING:
					break;
				}
			}
		}
		for (int i = 0; i < SIM_NODES; i++) {
			assert_true(settled[i]);
			for (int j = i + 1; j < SIM_NODES; j++)
				assert_int_not_equal(s->c[mine[i]].block, s->c[mine[j]].block);
		}
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidr),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_winner_and_verify),
	    cmocka_unit_test(test_pick),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_claims_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
