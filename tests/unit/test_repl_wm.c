// SPDX-License-Identifier: Apache-2.0
/*
 * Transitive replication watermarks (sched/repl_wm.c): entries merge by the later time, the
 * set digest is order-independent, a section round-trips (also with a sender's clock behind an
 * entry's), the receiver's own entry is ignored, and a malformed section merges nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sched/repl_wm.h"

static struct repl_wm_entry *get(struct repl_wm *w, const char *name)
{
	return repl_wm_at(w, repl_wm_slot(w, name));
}

static void test_merge_later_wins(void **state)
{
	struct repl_wm *w = NULL;
	struct repl_wm_entry a = {.t = 100, .f = 50, .sd = 7}, b = {.t = 90, .f = 80, .sd = 8};

	assert_int_equal(repl_wm_new(&w), 0);
	assert_int_equal(get(w, "n1")->t, 0); /* unknown: holds nothing of it */
	repl_wm_merge(w, "n1", &a);
	repl_wm_merge(w, "n1", &b); /* older report: ignored as a whole */
	assert_int_equal(get(w, "n1")->t, 100);
	assert_int_equal(get(w, "n1")->f, 50);
	assert_int_equal(get(w, "n1")->sd, 7);
	/* slots are stable while the table grows */
	int s = repl_wm_slot(w, "n1");
	for (int i = 0; i < 1000; i++) {
		char name[16];

		snprintf(name, sizeof(name), "node-%d", i);
		assert_true(repl_wm_slot(w, name) >= 0);
	}
	assert_int_equal(repl_wm_slot(w, "n1"), s);
	assert_int_equal(repl_wm_at(w, s)->t, 100);
	repl_wm_free(w);
}

static void test_set_digest(void **state)
{
	const char *names[] = {"n0", "n1", "n2", "n10"};
	uint64_t a = 0, b = 0;

	for (int i = 0; i < 4; i++)
		a += repl_wm_name_hash(names[i]);
	for (int i = 3; i >= 0; i--)
		b += repl_wm_name_hash(names[i]);
	assert_true(a == b);
	/* one member more or less: another digest */
	assert_true(a - repl_wm_name_hash("n10") != b);
	assert_true(a + repl_wm_name_hash("n11") != b);
	assert_true(repl_wm_name_hash("n1") != repl_wm_name_hash("n10"));
}

static void test_section_round_trip(void **state)
{
	struct repl_wm *s = NULL, *r = NULL;
	struct repl_buf b;
	int slots[3];

	assert_int_equal(repl_wm_new(&s), 0);
	assert_int_equal(repl_wm_new(&r), 0);
	repl_wm_merge(s, "n1", &(struct repl_wm_entry){.t = 1000, .f = 900, .sd = 11});
	/* a member whose clock runs ahead of the sender's: t above the sender's now */
	repl_wm_merge(s, "n2", &(struct repl_wm_entry){.t = 5300, .f = 0, .sd = 0});
	repl_wm_merge(s, "n3", &(struct repl_wm_entry){.t = 1200, .f = 1100, .sd = 12});
	slots[0] = repl_wm_slot(s, "n1");
	slots[1] = repl_wm_slot(s, "n2");
	slots[2] = repl_wm_slot(s, "n3");
	rbuf_init(&b, REPL_MSG_DIGESTS, 0);
	size_t at = b.len;
	repl_wm_put(s, &b, "n0", 5000, 800, 11, slots, 3);
	assert_false(b.oom);
	/* the receiver, n3: its own entry is not taken; n0's is the sender's own */
	assert_int_equal(repl_wm_apply(r, "n3", b.p + at, b.len - at), 0);
	assert_int_equal(get(r, "n0")->t, 5000);
	assert_int_equal(get(r, "n0")->f, 800);
	assert_true(get(r, "n0")->sd == 11);
	assert_int_equal(get(r, "n1")->t, 1000);
	assert_int_equal(get(r, "n1")->f, 900);
	assert_true(get(r, "n1")->sd == 11);
	assert_int_equal(get(r, "n2")->t, 5300);
	assert_int_equal(get(r, "n2")->f, 0);
	assert_int_equal(get(r, "n3")->t, 0);
	/* applying it again changes nothing; an empty section is a no-op */
	assert_int_equal(repl_wm_apply(r, "n3", b.p + at, b.len - at), 0);
	assert_int_equal(get(r, "n0")->t, 5000);
	assert_int_equal(repl_wm_apply(r, "n3", NULL, 0), 0);
	rbuf_free(&b);
	repl_wm_free(s);
	repl_wm_free(r);
}

static void test_section_malformed(void **state)
{
	struct repl_wm *s = NULL, *r = NULL;
	struct repl_buf b;
	int slot;

	assert_int_equal(repl_wm_new(&s), 0);
	assert_int_equal(repl_wm_new(&r), 0);
	repl_wm_merge(s, "n1", &(struct repl_wm_entry){.t = 1000, .f = 900, .sd = 11});
	slot = repl_wm_slot(s, "n1");
	rbuf_init(&b, REPL_MSG_DIGESTS, 0);
	size_t at = b.len;
	repl_wm_put(s, &b, "n0", 5000, 800, 11, &slot, 1);
	/* every truncation is refused and merges nothing, not even the entries before the cut */
	for (size_t len = 1; len < b.len - at; len++) {
		assert_int_equal(repl_wm_apply(r, "n9", b.p + at, len), -EBADMSG);
		assert_int_equal(get(r, "n0")->t, 0);
	}
	/* a digest index out of range */
	b.p[b.len - 1] = 5;
	assert_int_equal(repl_wm_apply(r, "n9", b.p + at, b.len - at), -EBADMSG);
	assert_int_equal(get(r, "n0")->t, 0);
	rbuf_free(&b);
	repl_wm_free(s);
	repl_wm_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge_later_wins),
	    cmocka_unit_test(test_set_digest),
	    cmocka_unit_test(test_section_round_trip),
	    cmocka_unit_test(test_section_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
