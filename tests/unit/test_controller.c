// SPDX-License-Identifier: Apache-2.0
/* The controller manager's work queue: failed reconciles come back with per-key back-off. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/object.h"
#include "lib/json.h"
#include "lib/util.h"
#include "sched/controller.h"
#include "sched/ctrl-internal.h"
#include "sched/store.h"

static uint64_t now_ms = 1700000000000ULL;
static bool fail_pods;
static int faults;

static uint64_t clock_fn(void *ud)
{
	return now_ms;
}

/* the injected store failure: every write of a pod fails as a failed SQLite write would */
static int fault_fn(void *ud, const char *resource, const char *ns, const char *name)
{
	if (fail_pods && !strcmp(resource, "pods")) {
		faults++;
		return -EIO;
	}
	return 0;
}

struct env {
	struct store *store;
	struct ctrl_mgr *ctrl;
};

static int setup(void **state)
{
	static struct env env;
	struct store_options so = { .path = ":memory:", .node_name = "n1", .clock = clock_fn,
				    .fault = fault_fn };
	struct ctrl_options co = { .store = NULL, .clock = clock_fn };
	struct err e = { 0 };
	cJSON *ns;

	fail_pods = false;
	faults = 0;
	assert_int_equal(store_open(&so, &env.store), 0);
	co.store = env.store;
	assert_int_equal(ctrl_mgr_new(&co, &env.ctrl), 0);
	ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
			 "\"metadata\":{\"name\":\"default\"}}");
	assert_int_equal(api_obj_create(env.store, ns, NULL, &e), 0);
	cJSON_Delete(ns);
	*state = &env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	ctrl_mgr_free(env->ctrl);
	store_close(env->store);
	return 0;
}

static void create_rs(struct env *env, int replicas)
{
	char buf[1024];
	struct err e = { 0 };
	cJSON *rs;

	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"web\","
		 "\"namespace\":\"default\"},\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":"
		 "{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
		 "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}",
		 replicas);
	rs = cJSON_Parse(buf);
	assert_int_equal(api_obj_create(env->store, rs, NULL, &e), 0);
	cJSON_Delete(rs);
}

/* Run everything due now; returns the time the next key is due (0: none). */
static uint64_t run(struct env *env)
{
	uint64_t next = 0;

	ctrl_mgr_run(env->ctrl, &next);
	return next;
}

static void test_backoff_schedule(void **state)
{
	assert_int_equal(ctrl_backoff_ms(1), 5);
	assert_int_equal(ctrl_backoff_ms(2), 10);
	assert_int_equal(ctrl_backoff_ms(3), 20);
	assert_int_equal(ctrl_backoff_ms(18), 5ULL << 17);
	assert_int_equal(ctrl_backoff_ms(19), 1000000);
	assert_int_equal(ctrl_backoff_ms(1000), 1000000);
}

static void test_failed_reconcile_is_retried_with_backoff(void **state)
{
	struct env *env = *state;
	struct ctrl_stats st;
	uint64_t next, delay = 10;

	fail_pods = true;
	create_rs(env, 2);
	/* the first try writes the status (0 replicas) and fails to create a pod; its own status
	 * event queues the key at once, as an informer event does in client-go, and the second
	 * try fails too: it waits 10 ms, the second step of the back-off */
	next = run(env);
	assert_int_equal(faults, 2);
	assert_int_equal(store_count(env->store, "pods", NULL), 0);
	ctrl_mgr_stats_get(env->ctrl, &st);
	assert_int_equal(st.retries, 2);
	assert_int_equal(st.failing, 1);
	assert_int_equal(ctrl_mgr_pending(env->ctrl), 1);
	assert_int_equal(next, now_ms + delay);

	/* not before its time; then again and again, each wait twice the last */
	for (int i = 0; i < 8; i++) {
		int before = faults;
		now_ms += delay - 1;
		assert_int_equal(ctrl_mgr_run(env->ctrl, &next), 0);
		assert_int_equal(faults, before);
		now_ms += 1;
		assert_int_equal(ctrl_mgr_run(env->ctrl, &next), 1);
		assert_true(faults > before);
		delay *= 2;
		assert_int_equal(next, now_ms + delay);
		ctrl_mgr_stats_get(env->ctrl, &st);
		assert_int_equal(st.retries, (uint64_t)i + 3);
	}

	/* the store recovers: the next retry creates the pods and the key is forgotten */
	fail_pods = false;
	now_ms += delay;
	for (int i = 0; i < 10 && (next = run(env)) != 0 && next <= now_ms; i++)
		;
	assert_int_equal(store_count(env->store, "pods", "default"), 2);
	ctrl_mgr_stats_get(env->ctrl, &st);
	assert_int_equal(st.failing, 0);

	/* success reset the back-off: after a new failure (two tries again, the first one writes
	 * observedGeneration) the wait is 10 ms, not 5 * 2^11 */
	fail_pods = true;
	{
		struct store_obj *o;
		struct err e = { 0 };
		cJSON *rs;
		assert_int_equal(store_get(env->store, "replicasets.apps", "default", "web", &o), 0);
		rs = store_obj_parse(o);
		store_obj_unref(o);
		json_set_int(json_path(rs, "spec"), "replicas", 3);
		cJSON_DeleteItemFromObject(json_path(rs, "metadata"), "resourceVersion");
		assert_int_equal(api_obj_update(env->store, rs, NULL, &e), 0);
		cJSON_Delete(rs);
	}
	next = run(env);
	assert_int_equal(next, now_ms + 10);
	assert_int_equal(store_count(env->store, "pods", "default"), 2);
	fail_pods = false;
	now_ms += 10;
	run(env);
	assert_int_equal(store_count(env->store, "pods", "default"), 3);
}

/* An event for a key waiting out its back-off runs it at once, as in client-go. */
static void test_event_cuts_backoff_short(void **state)
{
	struct env *env = *state;
	uint64_t next;

	fail_pods = true;
	create_rs(env, 1);
	for (int i = 0; i < 12; i++) {
		next = run(env);
		now_ms = next;
	}
	next = run(env);
	assert_true(next - now_ms >= 5ULL << 12);
	fail_pods = false;
	{
		struct err e = { 0 };
		cJSON *cm = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
					"{\"name\":\"x\",\"namespace\":\"default\"}}");
		struct store_obj *o;
		cJSON *rs;
		assert_int_equal(api_obj_create(env->store, cm, NULL, &e), 0);
		cJSON_Delete(cm);
		assert_int_equal(store_get(env->store, "replicasets.apps", "default", "web", &o), 0);
		rs = store_obj_parse(o);
		store_obj_unref(o);
		json_set_str(json_path(rs, "metadata"), "generateName", "");
		cJSON_AddItemToObject(json_path(rs, "metadata"), "annotations",
				      cJSON_Parse("{\"touched\":\"yes\"}"));
		cJSON_DeleteItemFromObject(json_path(rs, "metadata"), "resourceVersion");
		assert_int_equal(api_obj_update(env->store, rs, NULL, &e), 0);
		cJSON_Delete(rs);
	}
	run(env);
	assert_int_equal(store_count(env->store, "pods", "default"), 1);
}

/* Copy every register of src into dst, as replication would. */
static int copy_fn(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct store *dst = ud;

	store_merge_register(dst, spec);
	if (status)
		store_merge_register(dst, status);
	return 0;
}

static void replicate(struct store *src, struct store *dst)
{
	assert_int_equal(store_reg_list(src, NULL, 0, STORE_DIGEST_BUCKETS, copy_fn, dst), 0);
}

static void create_json(struct store *s, const char *json, char *uid, size_t uidlen)
{
	struct store_obj *o = NULL;
	struct err e = { 0 };
	cJSON *obj = cJSON_Parse(json);

	assert_non_null(obj);
	if (api_obj_create(s, obj, &o, &e) < 0)
		fail_msg("create: %s", e.message);
	if (uid)
		snprintf(uid, uidlen, "%s", o->uid);
	store_obj_unref(o);
	cJSON_Delete(obj);
}

static void create_dependent(struct store *s, const char *name, const char *owner,
			     const char *owner_uid)
{
	char buf[1024];

	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"default\",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
		 "\"kind\":\"ReplicaSet\",\"name\":\"%s\",\"uid\":\"%s\"}]}}",
		 name, owner, owner_uid);
	create_json(s, buf, NULL, 0);
}

static bool exists(struct store *s, const char *resource, const char *name)
{
	struct store_obj *o = NULL;

	if (store_get(s, resource, "default", name, &o) < 0)
		return false;
	bool alive = !strstr(o->json, "\"deletionTimestamp\"");
	store_obj_unref(o);
	return alive;
}

/*
 * The collector deletes a dependent only on proof that its owner is gone: the owner's
 * tombstone with the referenced uid. An owner that has not arrived (the dependent came first
 * from another node) keeps its dependent, however long it takes.
 */
static void test_gc_waits_for_owner_tombstone(void **state)
{
	struct env *env = *state;
	struct store_options so = { .path = ":memory:", .node_name = "n2", .clock = clock_fn };
	struct store *other;
	char ghost[64], real[64];
	struct err e = { 0 };

	assert_int_equal(store_open(&so, &other), 0);
	create_json(other, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
			   "{\"name\":\"default\"}}",
		    NULL, 0);
	/* two ReplicaSets on the other node (scaled to 0: no pods of their own) */
	create_json(other, "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
			   "{\"name\":\"ghost\",\"namespace\":\"default\"},\"spec\":{\"replicas\":0,"
			   "\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"metadata\":"
			   "{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
			   "\"image\":\"x\"}]}}}}",
		    ghost, sizeof(ghost));
	create_json(other, "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
			   "{\"name\":\"real\",\"namespace\":\"default\"},\"spec\":{\"replicas\":0,"
			   "\"selector\":{\"matchLabels\":{\"a\":\"c\"}},\"template\":{\"metadata\":"
			   "{\"labels\":{\"a\":\"c\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
			   "\"image\":\"x\"}]}}}}",
		    real, sizeof(real));

	/* their dependents reach this node first */
	create_dependent(env->store, "dep-ghost", "ghost", ghost);
	create_dependent(env->store, "dep-real", "real", real);
	run(env);
	now_ms += 60 * 1000;
	run(env);
	assert_true(exists(env->store, "configmaps", "dep-ghost"));
	assert_true(exists(env->store, "configmaps", "dep-real"));

	/* the owners arrive: one live, one already deleted (a tombstone) */
	struct api_delete_opts o = { .grace_seconds = -1 };
	assert_int_equal(api_obj_delete(other, "replicasets.apps", "default", "ghost", &o, NULL, &e),
			 0);
	replicate(other, env->store);
	for (int i = 0; i < 3; i++) {
		now_ms += 11 * 1000;
		run(env);
	}
	assert_false(exists(env->store, "configmaps", "dep-ghost"));
	assert_true(exists(env->store, "configmaps", "dep-real"));

	/* a dependent whose owner never shows up is collected once older than the horizon */
	create_dependent(env->store, "dep-never", "never", "no-such-uid");
	now_ms += 30 * 60 * 1000;
	run(env);
	assert_true(exists(env->store, "configmaps", "dep-never"));
	now_ms += 31 * 60 * 1000;
	run(env);
	assert_false(exists(env->store, "configmaps", "dep-never"));
	store_close(other);
}

static int first_pod_fn(struct store_obj *o, void *ud)
{
	snprintf(ud, 64, "%s", o->name);
	return 1;
}

static void first_pod_name(struct store *s, char *buf, size_t len)
{
	assert_true(len >= 64);
	buf[0] = 0;
	store_list(s, "pods", "default", NULL, NULL, first_pod_fn, buf);
	assert_true(buf[0] != 0);
}

static bool caught_up_flag;
static int caught_up_calls;

static bool caught_up_fn(void *ud, const char *node, uint64_t since_ms)
{
	caught_up_calls++;
	assert_string_equal(node, "n2");
	return caught_up_flag;
}

/*
 * Handover: a ReplicaSet whose owner n2 leaves is reconciled here only once this node has
 * caught up with n2 (or the settle window passed), never on a replica that may miss n2's
 * last writes.
 */
static void test_handover_waits_for_catch_up(void **state)
{
	struct store_options so = { .path = ":memory:", .node_name = "n1", .clock = clock_fn };
	struct ctrl_options co = { .clock = clock_fn, .caught_up = caught_up_fn };
	struct store *s;
	struct members *mem;
	struct ctrl_mgr *ctrl;
	struct ctrl_stats st;
	char names[2][16];
	int found = 0;

	assert_int_equal(store_open(&so, &s), 0);
	assert_int_equal(members_new("n1", &mem), 0);
	assert_int_equal(members_add(mem, "n2"), 1);
	co.store = s;
	co.members = mem;
	assert_int_equal(ctrl_mgr_new(&co, &ctrl), 0);
	create_json(s, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
		       "{\"name\":\"default\"}}",
		    NULL, 0);
	/* two ReplicaSets n2 owns */
	for (int i = 0; found < 2 && i < 1000; i++) {
		char key[64];
		snprintf(names[found], sizeof(names[found]), "rs%d", i);
		snprintf(key, sizeof(key), "replicasets.apps/default/%s", names[found]);
		if (!strcmp(members_owner(mem, key), "n2"))
			found++;
	}
	assert_int_equal(found, 2);
	for (int i = 0; i < 2; i++) {
		char buf[1024];
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
			 "{\"name\":\"%s\",\"namespace\":\"default\"},\"spec\":{\"replicas\":1,"
			 "\"selector\":{\"matchLabels\":{\"rs\":\"%s\"}},\"template\":{\"metadata\":"
			 "{\"labels\":{\"rs\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
			 "\"image\":\"x\"}]}}}}",
			 names[i], names[i], names[i]);
		create_json(s, buf, NULL, 0);
	}
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(store_count(s, "pods", "default"), 0); /* n2's */

	/* n2 leaves: the keys move here but wait for the catch-up */
	assert_int_equal(members_remove(mem, "n2"), 1);
	ctrl_mgr_members_changed(ctrl);
	ctrl_mgr_resync(ctrl);
	ctrl_mgr_run(ctrl, NULL);
	now_ms += CTRL_HANDOVER_RECHECK_MS;
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(store_count(s, "pods", "default"), 0);
	ctrl_mgr_stats_get(ctrl, &st);
	assert_true(st.handover_waits >= 4);
	assert_true(caught_up_calls >= 4);

	/* caught up with n2: both are reconciled */
	caught_up_flag = true;
	now_ms += CTRL_HANDOVER_RECHECK_MS;
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(store_count(s, "pods", "default"), 2);

	/* n2 comes back and leaves again, never catching up; a pod goes missing meanwhile: its
	 * replacement waits for the settle window */
	caught_up_flag = false;
	assert_int_equal(members_add(mem, "n2"), 1);
	ctrl_mgr_members_changed(ctrl);
	assert_int_equal(members_remove(mem, "n2"), 1);
	ctrl_mgr_members_changed(ctrl);
	uint64_t t0 = now_ms;
	{
		char pod[64];
		struct err e = { 0 };
		struct api_delete_opts o = { .grace_seconds = 0 };
		first_pod_name(s, pod, sizeof(pod));
		assert_int_equal(api_obj_delete(s, "pods", "default", pod, &o, NULL, &e), 0);
	}
	ctrl_mgr_resync(ctrl);
	while (now_ms + CTRL_HANDOVER_RECHECK_MS < t0 + CTRL_SETTLE_MS) {
		ctrl_mgr_run(ctrl, NULL);
		assert_int_equal(store_count(s, "pods", "default"), 1);
		now_ms += CTRL_HANDOVER_RECHECK_MS;
	}
	now_ms = t0 + CTRL_SETTLE_MS + CTRL_HANDOVER_RECHECK_MS;
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(store_count(s, "pods", "default"), 2);
	ctrl_mgr_free(ctrl);
	members_free(mem);
	store_close(s);
}

/* The registers of one resource (NULL: all) of src merged into dst, statuses after specs. */
struct repl_res {
	struct store *dst;
	const char *resource;
};

static int copy_res_fn(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct repl_res *rr = ud;

	if (rr->resource && strcmp(spec->resource, rr->resource))
		return 0;
	store_merge_register(rr->dst, spec);
	if (status)
		store_merge_register(rr->dst, status);
	return 0;
}

static void replicate_res(struct store *src, struct store *dst, const char *resource)
{
	struct repl_res rr = { dst, resource };

	assert_int_equal(store_reg_list(src, NULL, 0, STORE_DIGEST_BUCKETS, copy_res_fn, &rr), 0);
}

static struct store_obj *get_rs(struct store *s, const char *name)
{
	struct store_obj *o = NULL;

	assert_int_equal(store_get(s, "replicasets.apps", "default", name, &o), 0);
	return o;
}

/*
 * Status hand-over (docs/consistency.md, "Status register"): n2 owns a ReplicaSet and is cut
 * off; n1 takes it over and claims its status at a higher term; n2, still believing it owns the
 * key, writes status later by its clock, and loses on both replicas; seeing n1's higher term it
 * holds off (counted) for the settle window, and takes the key back only if it still owns it
 * then. n1's view changes again: it claims afresh over n2's register.
 */
static void test_status_handover_terms(void **state)
{
	struct store_options so1 = { .path = ":memory:", .node_name = "n1", .clock = clock_fn };
	struct store_options so2 = { .path = ":memory:", .node_name = "n2", .clock = clock_fn };
	struct ctrl_options co1 = { .clock = clock_fn, .caught_up = caught_up_fn };
	struct ctrl_options co2 = { .clock = clock_fn };
	struct store *s1, *s2;
	struct members *m1, *m2;
	struct ctrl_mgr *c1, *c2;
	struct store_obj *o;
	struct ctrl_stats st;
	char name[16] = "", buf[1024];
	uint64_t t0;

	caught_up_flag = true;
	assert_int_equal(store_open(&so1, &s1), 0);
	assert_int_equal(store_open(&so2, &s2), 0);
	assert_int_equal(members_new("n1", &m1), 0);
	assert_int_equal(members_add(m1, "n2"), 1);
	assert_int_equal(members_new("n2", &m2), 0);
	assert_int_equal(members_add(m2, "n1"), 1);
	co1.store = s1;
	co1.members = m1;
	co2.store = s2;
	co2.members = m2;
	assert_int_equal(ctrl_mgr_new(&co1, &c1), 0);
	assert_int_equal(ctrl_mgr_new(&co2, &c2), 0);
	for (int i = 0; !name[0] && i < 1000; i++) {
		char key[64];

		snprintf(key, sizeof(key), "replicasets.apps/default/rs%d", i);
		if (!strcmp(members_owner(m1, key), "n2"))
			snprintf(name, sizeof(name), "rs%d", i);
	}
	assert_true(name[0]);
	create_json(s2, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
			"{\"name\":\"default\"}}",
		    NULL, 0);
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
		 "{\"name\":\"%s\",\"namespace\":\"default\"},\"spec\":{\"replicas\":1,"
		 "\"selector\":{\"matchLabels\":{\"rs\":\"x\"}},\"template\":{\"metadata\":"
		 "{\"labels\":{\"rs\":\"x\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
		 "\"image\":\"x\"}]}}}}",
		 name);
	create_json(s2, buf, NULL, 0);
	ctrl_mgr_run(c2, NULL);
	o = get_rs(s2, name);
	assert_string_equal(o->status_node, "n2");
	assert_int_equal(o->status_term, 0); /* the first owner's register */
	store_obj_unref(o);
	replicate_res(s2, s1, NULL);
	ctrl_mgr_run(c1, NULL);
	assert_int_equal(store_count(s1, "pods", "default"), 1); /* n2's pod, not a second */

	/* n2 is cut off: n1 owns the key now and claims its status above n2's term */
	now_ms += 1000;
	assert_int_equal(members_remove(m1, "n2"), 1);
	ctrl_mgr_members_changed(c1);
	ctrl_mgr_resync(c1);
	ctrl_mgr_run(c1, NULL);
	o = get_rs(s1, name);
	assert_string_equal(o->status_node, "n1");
	assert_int_equal(o->status_term, 1);
	store_obj_unref(o);

	/* n2, still owner in its view and with a clock running ahead, scales the RS up and
	 * writes its status (term 0) later than n1 did */
	now_ms += 5000;
	{
		struct store_obj *cur = get_rs(s2, name);
		cJSON *rs = store_obj_parse(cur);
		struct err e = { 0 };

		store_obj_unref(cur);
		json_set_int(json_path(rs, "spec"), "replicas", 2);
		assert_int_equal(api_obj_update(s2, rs, NULL, &e), 0);
		cJSON_Delete(rs);
	}
	ctrl_mgr_run(c2, NULL);
	o = get_rs(s2, name);
	assert_string_equal(o->status_node, "n2");
	assert_int_equal(o->status_term, 0);
	store_obj_unref(o);

	/* both ways: n1's status stands on both replicas */
	replicate_res(s2, s1, "replicasets.apps");
	replicate_res(s1, s2, "replicasets.apps");
	for (int i = 0; i < 2; i++) {
		o = get_rs(i ? s2 : s1, name);
		assert_string_equal(o->status_node, "n1");
		assert_int_equal(o->status_term, 1);
		store_obj_unref(o);
	}
	/* n2 holds off for the settle window (it may be the stale one) */
	t0 = now_ms;
	ctrl_mgr_run(c2, NULL);
	ctrl_mgr_stats_get(c2, &st);
	assert_true(st.status_stale >= 1);
	now_ms = t0 + CTRL_SETTLE_MS - 1;
	ctrl_mgr_run(c2, NULL);
	o = get_rs(s2, name);
	assert_string_equal(o->status_node, "n1");
	store_obj_unref(o);
	/* still the owner in its view after the window: it takes the key over */
	now_ms = t0 + CTRL_SETTLE_MS;
	ctrl_mgr_run(c2, NULL);
	o = get_rs(s2, name);
	assert_string_equal(o->status_node, "n2");
	assert_int_equal(o->status_term, 2);
	store_obj_unref(o);

	/* n1's view changes (n2 is back, and gone again): n1 claims afresh above n2 */
	replicate_res(s2, s1, NULL);
	assert_int_equal(members_add(m1, "n2"), 1);
	ctrl_mgr_members_changed(c1);
	assert_int_equal(members_remove(m1, "n2"), 1);
	ctrl_mgr_members_changed(c1);
	ctrl_mgr_resync(c1);
	now_ms += CTRL_SETTLE_MS + 1;
	ctrl_mgr_run(c1, NULL);
	o = get_rs(s1, name);
	assert_string_equal(o->status_node, "n1");
	assert_int_equal(o->status_term, 3);
	store_obj_unref(o);

	ctrl_mgr_free(c1);
	ctrl_mgr_free(c2);
	members_free(m1);
	members_free(m2);
	store_close(s1);
	store_close(s2);
}

/*
 * Status hand-over, randomized: three replicas with clocks up to 200 ms apart, one node cut off
 * and healed at random, spec edits on either side, replication in random order within a side.
 * Once healed and quiet, every replica holds the same status register of each ReplicaSet,
 * written by its owner in the full view and reporting the generation that won.
 */
#define RN 3
#define RSETS 3

struct rnode {
	char name[8];
	int64_t offset;
	struct store *s;
	struct members *m;
	struct ctrl_mgr *c;
};

static uint64_t rnode_clock(void *ud)
{
	return (uint64_t)((int64_t)now_ms + ((struct rnode *)ud)->offset);
}

static bool always_caught_up(void *ud, const char *node, uint64_t since_ms)
{
	return true;
}

/* cut: the node cut off (-1: none); each node's live set follows */
static void rviews(struct rnode *n, int cut)
{
	for (int i = 0; i < RN; i++) {
		bool changed = false;

		for (int j = 0; j < RN; j++) {
			if (i == j)
				continue;
			bool live = cut < 0 || (i != cut && j != cut);

			changed |= (live ? members_add(n[i].m, n[j].name)
					 : members_remove(n[i].m, n[j].name)) == 1;
		}
		if (changed) {
			ctrl_mgr_members_changed(n[i].c);
			ctrl_mgr_resync(n[i].c);
		}
	}
}

static void rrun(struct rnode *n)
{
	for (int i = 0; i < RN; i++)
		ctrl_mgr_run(n[i].c, NULL);
}

static void test_status_handover_random(void **state)
{
	for (unsigned seed = 1; seed <= 40; seed++) {
		struct rnode n[RN];
		unsigned rs = seed;
		int cut = -1;

		for (int i = 0; i < RN; i++) {
			struct store_options so = { .path = ":memory:", .clock = rnode_clock };
			struct ctrl_options co = { .clock = rnode_clock,
						   .caught_up = always_caught_up };

			snprintf(n[i].name, sizeof(n[i].name), "n%d", i + 1);
			n[i].offset = (int64_t)(rand_r(&rs) % 201) - 100;
			so.node_name = n[i].name;
			so.clock_data = &n[i];
			assert_int_equal(store_open(&so, &n[i].s), 0);
			assert_int_equal(members_new(n[i].name, &n[i].m), 0);
			co.store = n[i].s;
			co.members = n[i].m;
			co.clock_data = &n[i];
			assert_int_equal(ctrl_mgr_new(&co, &n[i].c), 0);
		}
		rviews(n, -1);
		create_json(n[0].s, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
				    "\"metadata\":{\"name\":\"default\"}}",
			    NULL, 0);
		for (int k = 0; k < RSETS; k++) {
			char buf[1024];

			snprintf(buf, sizeof(buf),
				 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
				 "{\"name\":\"r%d\",\"namespace\":\"default\"},\"spec\":"
				 "{\"replicas\":0,\"selector\":{\"matchLabels\":{\"r\":\"%d\"}},"
				 "\"template\":{\"metadata\":{\"labels\":{\"r\":\"%d\"}},"
				 "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}}}",
				 k, k, k);
			create_json(n[0].s, buf, NULL, 0);
		}
		for (int i = 1; i < RN; i++)
			replicate(n[0].s, n[i].s);

		for (int step = 0; step < 60; step++) {
			int op = rand_r(&rs) % 10, a = rand_r(&rs) % RN, b = rand_r(&rs) % RN;

			if (op == 0) {
				cut = cut >= 0 ? -1 : rand_r(&rs) % RN;
				rviews(n, cut);
			} else if (op <= 3) {
				char nm[8];
				struct store_obj *o;
				cJSON *obj;
				struct err e = { 0 };

				snprintf(nm, sizeof(nm), "r%d", rand_r(&rs) % RSETS);
				o = get_rs(n[a].s, nm);
				obj = store_obj_parse(o);
				store_obj_unref(o);
				json_set_int(json_path(obj, "spec"), "minReadySeconds",
					     rand_r(&rs) % 1000);
				assert_int_equal(api_obj_update(n[a].s, obj, NULL, &e), 0);
				cJSON_Delete(obj);
			} else if (a != b && (cut < 0 || (a != cut && b != cut))) {
				replicate(n[a].s, n[b].s);
			}
			now_ms += rand_r(&rs) % 3000;
			rrun(n);
		}

		/* heal; everyone talks to everyone until nothing changes; then one more edit of
		 * each (a status the owner must write) and again */
		rviews(n, -1);
		for (int phase = 0; phase < 2; phase++) {
		uint64_t last = 0;

		if (phase == 1)
			for (int k = 0; k < RSETS; k++) {
				char nm[8];
				struct store_obj *o;
				cJSON *obj;
				struct err e = { 0 };
				int a = rand_r(&rs) % RN;

				snprintf(nm, sizeof(nm), "r%d", k);
				o = get_rs(n[a].s, nm);
				obj = store_obj_parse(o);
				store_obj_unref(o);
				json_set_int(json_path(obj, "spec"), "minReadySeconds", 5000 + k);
				assert_int_equal(api_obj_update(n[a].s, obj, NULL, &e), 0);
				cJSON_Delete(obj);
			}
		for (int round = 0; round < 40; round++) {
			uint64_t sum = 0;

			for (int i = 0; i < RN; i++)
				for (int j = 0; j < RN; j++)
					if (i != j)
						replicate(n[i].s, n[j].s);
			now_ms += 1000;
			rrun(n);
			for (int i = 0; i < RN; i++)
				sum += store_rv(n[i].s);
			if (round > 10 && sum == last)
				break;
			last = sum;
		}
		}
		for (int k = 0; k < RSETS; k++) {
			char nm[8], key[64];
			struct store_obj *o0;

			snprintf(nm, sizeof(nm), "r%d", k);
			snprintf(key, sizeof(key), "replicasets.apps/default/%s", nm);
			o0 = get_rs(n[0].s, nm);
			for (int i = 0; i < RN; i++) {
				struct store_obj *o = get_rs(n[i].s, nm);
				cJSON *obj = store_obj_parse(o);

				if (strcmp(o->status_node, members_owner(n[0].m, key)) ||
				    o->status_term != o0->status_term ||
				    o->status_hlc != o0->status_hlc ||
				    json_int(obj, "status.observedGeneration", -1) !=
					    json_int(obj, "metadata.generation", -2))
					fail_msg("seed %u %s on %s: status %" PRIu64 ":%" PRIu64
						 "@%s (n1: %" PRIu64 ":%" PRIu64 "@%s), owner %s,"
						 " observed %lld of %lld",
						 seed, nm, n[i].name, o->status_term, o->status_hlc,
						 o->status_node, o0->status_term, o0->status_hlc,
						 o0->status_node, members_owner(n[0].m, key),
						 (long long)json_int(obj, "status.observedGeneration", -1),
						 (long long)json_int(obj, "metadata.generation", -2));
				cJSON_Delete(obj);
				store_obj_unref(o);
			}
			store_obj_unref(o0);
		}
		for (int i = 0; i < RN; i++) {
			ctrl_mgr_free(n[i].c);
			members_free(n[i].m);
			store_close(n[i].s);
		}
	}
}

/* A node starting into a cluster reconciles nothing before it has synced with some member. */
static void test_hold_until_synced(void **state)
{
	struct store_options so = { .path = ":memory:", .node_name = "n1", .clock = clock_fn };
	struct ctrl_options co = { .clock = clock_fn, .caught_up = caught_up_fn };
	struct store *s;
	struct members *mem;
	struct ctrl_mgr *ctrl;

	caught_up_flag = false;
	assert_int_equal(store_open(&so, &s), 0);
	assert_int_equal(members_new("n1", &mem), 0);
	co.store = s;
	co.members = mem;
	assert_int_equal(ctrl_mgr_new(&co, &ctrl), 0);
	ctrl_mgr_hold_until_synced(ctrl);
	create_json(s, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
		       "{\"name\":\"default\"}}",
		    NULL, 0);
	/* a ReplicaSet n1 owns once n2 is there too */
	char name[16] = "", key[64], buf[1024];
	{
		struct members *two;
		assert_int_equal(members_new("n1", &two), 0);
		assert_int_equal(members_add(two, "n2"), 1);
		for (int i = 0; !name[0] && i < 1000; i++) {
			snprintf(key, sizeof(key), "replicasets.apps/default/rs%d", i);
			if (!strcmp(members_owner(two, key), "n1"))
				snprintf(name, sizeof(name), "rs%d", i);
		}
		members_free(two);
	}
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
		 "{\"name\":\"%s\",\"namespace\":\"default\"},\"spec\":{\"replicas\":1,"
		 "\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"metadata\":"
		 "{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
		 "\"image\":\"x\"}]}}}}",
		 name);
	create_json(s, buf, NULL, 0);
	/* alone, then joined: nothing until a round with n2 completed */
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(members_add(mem, "n2"), 1);
	ctrl_mgr_members_changed(ctrl);
	ctrl_mgr_resync(ctrl);
	for (int i = 0; i < 5; i++) {
		now_ms += CTRL_HANDOVER_RECHECK_MS;
		ctrl_mgr_run(ctrl, NULL);
	}
	assert_int_equal(store_count(s, "pods", "default"), 0);
	caught_up_flag = true;
	for (int i = 0; i < 3; i++) {
		now_ms += CTRL_HANDOVER_RECHECK_MS;
		ctrl_mgr_run(ctrl, NULL);
	}
	assert_int_equal(store_count(s, "pods", "default"), 1);
	ctrl_mgr_free(ctrl);
	members_free(mem);
	store_close(s);
}

/* --- a rolling update whose ReplicaSets' owner lags or died (docs/workloads.md) --- */

static cJSON *get_obj(struct store *s, const char *resource, const char *name)
{
	struct store_obj *o = NULL;
	cJSON *j;

	assert_int_equal(store_get(s, resource, "default", name, &o), 0);
	j = store_obj_parse(o);
	store_obj_unref(o);
	assert_non_null(j);
	return j;
}

static int64_t get_int(struct store *s, const char *resource, const char *name, const char *path)
{
	cJSON *j = get_obj(s, resource, name);
	int64_t v = json_int(j, path, -1);

	cJSON_Delete(j);
	return v;
}

static void set_status(struct store *s, const char *resource, const char *name,
		       const char *status_json)
{
	cJSON *st = cJSON_Parse(status_json);
	struct err e = { 0 };

	assert_non_null(st);
	if (store_update_status(s, resource, "default", name, st, 0, NULL, &e) < 0)
		fail_msg("status of %s: %s", name, e.message);
	cJSON_Delete(st);
}

static void rs_status(struct store *s, const char *name, int n)
{
	char buf[160];

	snprintf(buf, sizeof(buf),
		 "{\"replicas\":%d,\"readyReplicas\":%d,\"availableReplicas\":%d,"
		 "\"observedGeneration\":1}",
		 n, n, n);
	set_status(s, "replicasets.apps", name, buf);
}

static void rs_scale_to(struct store *s, const char *name, int n)
{
	cJSON *j = get_obj(s, "replicasets.apps", name);
	struct err e = { 0 };

	json_set_int(json_path_obj(j, "spec"), "replicas", n);
	assert_int_equal(api_obj_update(s, j, NULL, &e), 0);
	cJSON_Delete(j);
}

/* A name starting with prefix whose key (resource/default/name) `owner` owns in mem. */
static void name_owned_by(const struct members *mem, const char *resource, const char *prefix,
			  const char *owner, char *out, size_t len)
{
	for (int i = 0; i < 1000; i++) {
		char key[128];
		snprintf(out, len, "%s%d", prefix, i);
		snprintf(key, sizeof(key), "%s/default/%s", resource, out);
		if (!strcmp(members_owner(mem, key), owner))
			return;
	}
	fail_msg("no name owned by %s", owner);
}

static bool never_caught_up(void *ud, const char *node, uint64_t since_ms)
{
	return false;
}

static void member_dead(struct members *mem, const char *name, int changed)
{
	struct members_info i = { .name = name, .address = "", .state = MEMBERS_DEAD, .meta = "" };

	assert_int_equal(members_update(mem, &i), changed);
}

/*
 * The Deployment's owner (n1) rolls while the ReplicaSets' owner (n2) lags, then dies with n3:
 * maxSurge counts the old ReplicaSet's pods its owner has not deleted yet, and a ReplicaSet
 * status written by a dead node is recounted from the pods (the dead n3's not ready), so the
 * Deployment never claims more than spec + maxSurge pods nor a complete rollout it has not.
 */
static void test_rollout_counts_lagging_replicasets(void **state)
{
	struct store_options so1 = { .path = ":memory:", .node_name = "n1", .clock = clock_fn };
	struct store_options so2 = { .path = ":memory:", .node_name = "n2", .clock = clock_fn };
	struct ctrl_options co = { .clock = clock_fn, .caught_up = never_caught_up };
	char dname[32], oldrs[32], newrs[32], duid[64], olduid[64], newuid[64], hash[16], buf[2048];
	struct store *s1, *s2;
	struct members *mem;
	struct ctrl_mgr *ctrl;
	cJSON *d;

	assert_int_equal(store_open(&so1, &s1), 0);
	assert_int_equal(store_open(&so2, &s2), 0);
	assert_int_equal(members_new("n1", &mem), 0);
	assert_int_equal(members_add(mem, "n2"), 1);
	co.store = s1;
	co.members = mem;
	assert_int_equal(ctrl_mgr_new(&co, &ctrl), 0);
	/* n1 reconciles the Deployment, n2 both ReplicaSets (here: nobody, n2 is not running) */
	name_owned_by(mem, "deployments.apps", "web", "n1", dname, sizeof(dname));
	name_owned_by(mem, "replicasets.apps", "old", "n2", oldrs, sizeof(oldrs));
	name_owned_by(mem, "replicasets.apps", "new", "n2", newrs, sizeof(newrs));
	create_json(s1, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
			"{\"name\":\"default\"}}",
		    NULL, 0);
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"default\"},\"spec\":{\"replicas\":9,\"selector\":{\"matchLabels\":"
		 "{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
		 "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"v2\"}]}}}}",
		 dname);
	create_json(s1, buf, duid, sizeof(duid));
	d = get_obj(s1, "deployments.apps", dname);
	ctrl_template_hash(json_path(d, "spec.template"), 0, hash, sizeof(hash));
	cJSON_Delete(d);
	/* mid-rollout (maxSurge 3, maxUnavailable 2 of 9): the old ReplicaSet was scaled 9 -> 7
	 * but its owner has not deleted the 2 pods yet; the new one runs 3 */
	const char *names[2] = { oldrs, newrs }, *hashes[2] = { "old", hash };
	char *uids[2] = { olduid, newuid };
	int spec[2] = { 7, 3 };
	for (int i = 0; i < 2; i++) {
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":"
			 "\"%s\",\"namespace\":\"default\",\"labels\":{\"app\":\"web\","
			 "\"pod-template-hash\":\"%s\"},\"annotations\":{\"deployment.kubernetes.io/"
			 "revision\":\"%d\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":"
			 "\"Deployment\",\"name\":\"%s\",\"uid\":\"%s\",\"controller\":true}]},"
			 "\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":{\"app\":\"web\","
			 "\"pod-template-hash\":\"%s\"}},\"template\":{\"metadata\":{\"labels\":"
			 "{\"app\":\"web\",\"pod-template-hash\":\"%s\"}},\"spec\":{\"containers\":"
			 "[{\"name\":\"c\",\"image\":\"v%d\"}]}}}}",
			 names[i], hashes[i], i + 1, dname, duid, spec[i], hashes[i], hashes[i], i + 1);
		create_json(s1, buf, uids[i], sizeof(olduid));
	}
	rs_status(s1, oldrs, 9);
	rs_status(s1, newrs, 3);
	ctrl_mgr_run(ctrl, NULL);

	/* 9 old pods still active + 3 new = 12: the new ReplicaSet may not grow (counting the old
	 * one's spec alone, it grew to 5: 14 pods). The old one goes on shrinking by availability. */
	assert_int_equal(get_int(s1, "replicasets.apps", newrs, "spec.replicas"), 3);
	assert_int_equal(get_int(s1, "replicasets.apps", oldrs, "spec.replicas"), 4);
	assert_int_equal(get_int(s1, "deployments.apps", dname, "status.replicas"), 12);
	/* its owner deletes the 5 old pods: room for 5 new ones */
	rs_status(s1, oldrs, 4);
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(get_int(s1, "replicasets.apps", newrs, "spec.replicas"), 8);

	/* the end of the rollout as n2 reported it: old empty, new 9 of 9 available */
	rs_scale_to(s1, oldrs, 0);
	rs_scale_to(s1, newrs, 9);
	rs_status(s1, oldrs, 0);
	replicate(s1, s2);
	rs_status(s2, newrs, 9);
	replicate(s2, s1);
	/* ... but 2 of its pods ran on n3, which is dead; 7 are ready on n1 */
	for (int i = 0; i < 9; i++) {
		char pod[48];
		snprintf(pod, sizeof(pod), "%s-p%d", newrs, i);
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
			 "\"namespace\":\"default\",\"labels\":{\"app\":\"web\",\"pod-template-hash\":"
			 "\"%s\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":"
			 "\"ReplicaSet\",\"name\":\"%s\",\"uid\":\"%s\",\"controller\":true}]},"
			 "\"spec\":{\"nodeName\":\"%s\",\"containers\":[{\"name\":\"c\",\"image\":"
			 "\"v2\"}]}}",
			 pod, hash, newrs, newuid, i < 7 ? "n1" : "n3");
		create_json(s1, buf, NULL, 0);
		set_status(s1, "pods", pod,
			   "{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\","
			   "\"status\":\"True\",\"lastTransitionTime\":\"2023-01-01T00:00:00Z\"}]}");
	}
	member_dead(mem, "n3", 0);
	ctrl_mgr_run(ctrl, NULL);
	/* while n2 is alive its report stands: complete */
	assert_int_equal(get_int(s1, "deployments.apps", dname, "status.updatedReplicas"), 9);
	assert_int_equal(get_int(s1, "deployments.apps", dname, "status.availableReplicas"), 9);

	/* n2 dies: its ReplicaSets wait for the handover (never caught up: the settle window);
	 * the Deployment's owner counts the new ReplicaSet's pods itself, and the 2 on dead n3 are
	 * not ready: not complete (kubectl rollout status: 7 of 9 updated replicas available) */
	member_dead(mem, "n2", 1);
	ctrl_mgr_members_changed(ctrl);
	ctrl_mgr_resync(ctrl);
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(get_int(s1, "replicasets.apps", newrs, "status.availableReplicas"), 9);
	assert_int_equal(get_int(s1, "deployments.apps", dname, "status.updatedReplicas"), 9);
	assert_int_equal(get_int(s1, "deployments.apps", dname, "status.availableReplicas"), 7);

	/* after the settle window n1 owns the ReplicaSet and reports the same */
	now_ms += CTRL_SETTLE_MS + 1;
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(get_int(s1, "replicasets.apps", newrs, "status.replicas"), 9);
	assert_int_equal(get_int(s1, "replicasets.apps", newrs, "status.readyReplicas"), 7);
	assert_int_equal(get_int(s1, "deployments.apps", dname, "status.availableReplicas"), 7);

	ctrl_mgr_free(ctrl);
	members_free(mem);
	store_close(s2);
	store_close(s1);
}

/* --- which pods a scale-down deletes (Kubernetes' ActivePodsWithRanks order) --- */

static void member_set(struct members *mem, const char *name, enum members_state st)
{
	struct members_info i = { .name = name, .address = "", .state = st, .meta = "" };

	assert_true(members_update(mem, &i) >= 0);
}

/* n1's store and manager, with nodes[1..n) alive in its members view and the default namespace. */
struct members_env {
	struct store *s;
	struct members *mem;
	struct ctrl_mgr *ctrl;
};

static void members_env_open(struct members_env *env, const char *const *nodes, size_t n)
{
	struct store_options so = { .path = ":memory:", .node_name = "n1", .clock = clock_fn };
	struct ctrl_options co = { .clock = clock_fn };

	assert_int_equal(store_open(&so, &env->s), 0);
	assert_int_equal(members_new("n1", &env->mem), 0);
	for (size_t i = 1; i < n; i++)
		member_set(env->mem, nodes[i], MEMBERS_ALIVE);
	co.store = env->s;
	co.members = env->mem;
	assert_int_equal(ctrl_mgr_new(&co, &env->ctrl), 0);
	create_json(env->s, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
			    "{\"name\":\"default\"}}",
		    NULL, 0);
}

static void members_env_close(struct members_env *env)
{
	ctrl_mgr_free(env->ctrl);
	members_free(env->mem);
	store_close(env->s);
}

#define POD_CLOCK_END_MS (1700000000000ULL + 30 * 24 * 3600 * 1000ULL)

/* One Running, Ready pod "<owner>-<node>" controlled by owner on each node, with the labels
 * (JSON); the later the node in the list, the earlier its pod was created and turned ready, 4x
 * as long before the end (100 s ready for the first, then 400 s ...: other log2 buckets). The
 * clock is then at the end. */
static void pod_per_node(struct store *s, const char *api_version, const char *kind,
			 const char *owner, const char *uid, const char *labels,
			 const char *const *nodes, size_t n)
{
	char buf[2048], pod[64], ready[32];
	uint64_t ago_s = 100;

	for (size_t i = 0; i < n; i++, ago_s *= 4) {
		snprintf(pod, sizeof(pod), "%s-%s", owner, nodes[i]);
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
			 "\"namespace\":\"default\",\"labels\":%s,\"ownerReferences\":"
			 "[{\"apiVersion\":\"%s\",\"kind\":\"%s\",\"name\":\"%s\",\"uid\":\"%s\","
			 "\"controller\":true}]},\"spec\":{\"nodeName\":\"%s\",\"containers\":"
			 "[{\"name\":\"c\",\"image\":\"busybox\"}]}}",
			 pod, labels, api_version, kind, owner, uid, nodes[i]);
		now_ms = POD_CLOCK_END_MS - 2 * ago_s * 1000;
		create_json(s, buf, NULL, 0);
		util_rfc3339((int64_t)(POD_CLOCK_END_MS / 1000 - ago_s), ready, sizeof(ready));
		snprintf(buf, sizeof(buf),
			 "{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":"
			 "\"True\",\"lastTransitionTime\":\"%s\"}]}",
			 ready);
		set_status(s, "pods", pod, buf);
	}
	now_ms = POD_CLOCK_END_MS;
}

/*
 * A ReplicaSet scaled down deletes the pods of a node gossip does not hold alive first: their
 * Ready=True is only the last thing their node wrote. Here they are the ones Kubernetes' order
 * keeps longest otherwise (ready longest, oldest); before, the scale-down deleted live pods and
 * kept them.
 */
static void test_scale_down_deletes_unreachable_nodes_pods_first(void **state)
{
	static const char *const nodes[] = { "n1", "n2", "n3", "n4" };
	char rs[32], uid[64], buf[2048], pod[64];
	struct members_env env;
	struct store *s;
	struct members *mem;
	struct ctrl_mgr *ctrl;

	members_env_open(&env, nodes, ARRAY_SIZE(nodes));
	s = env.s, mem = env.mem, ctrl = env.ctrl;
	/* owned by n1 among every subset of the members that holds n1 (rendezvous hashing) */
	name_owned_by(mem, "replicasets.apps", "web", "n1", rs, sizeof(rs));
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"default\"},\"spec\":{\"replicas\":4,\"selector\":{\"matchLabels\":"
		 "{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
		 "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}",
		 rs);
	create_json(s, buf, uid, sizeof(uid));
	/* one Running, Ready pod on each node; n3's and n4's were created and ready first */
	pod_per_node(s, "apps/v1", "ReplicaSet", rs, uid, "{\"app\":\"web\"}", nodes,
		     ARRAY_SIZE(nodes));
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(get_int(s, "replicasets.apps", rs, "status.readyReplicas"), 4);

	/* n4 dead: scaled 4 -> 3, its pod goes, not n1's (the newest, ready for the least time) */
	member_set(mem, "n4", MEMBERS_DEAD);
	ctrl_mgr_members_changed(ctrl);
	rs_scale_to(s, rs, 3);
	ctrl_mgr_run(ctrl, NULL);
	snprintf(pod, sizeof(pod), "%s-n4", rs);
	assert_false(exists(s, "pods", pod));
	for (size_t i = 0; i < 3; i++) {
		snprintf(pod, sizeof(pod), "%s-%s", rs, nodes[i]);
		assert_true(exists(s, "pods", pod));
	}

	/* n3 merely suspect: its Node is Ready=Unknown; a scale-down takes its pod first too, though
	 * the counts still hold it ready (a suspicion is often refuted) */
	member_set(mem, "n3", MEMBERS_SUSPECT);
	ctrl_mgr_members_changed(ctrl);
	rs_scale_to(s, rs, 2);
	ctrl_mgr_run(ctrl, NULL);
	snprintf(pod, sizeof(pod), "%s-n3", rs);
	assert_false(exists(s, "pods", pod));
	snprintf(pod, sizeof(pod), "%s-n1", rs);
	assert_true(exists(s, "pods", pod));
	snprintf(pod, sizeof(pod), "%s-n2", rs);
	assert_true(exists(s, "pods", pod));

	members_env_close(&env);
}

/*
 * A Job whose parallelism is lowered deletes the surplus, least useful first (Kubernetes'
 * ActivePods order): the pod of the dead node, though it is the oldest and ready longest.
 * Before, the surplus ran on.
 */
static void test_job_parallelism_lowered_deletes_dead_nodes_pod(void **state)
{
	static const char *const nodes[] = { "n1", "n2", "n3" };
	char job[32], uid[64], buf[2048], pod[64];
	struct members_env env;
	struct store *s;
	struct members *mem;
	struct ctrl_mgr *ctrl;
	cJSON *j;
	struct err e = { 0 };

	members_env_open(&env, nodes, ARRAY_SIZE(nodes));
	s = env.s, mem = env.mem, ctrl = env.ctrl;
	name_owned_by(mem, "jobs.batch", "work", "n1", job, sizeof(job));
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"default\"},\"spec\":{\"parallelism\":3,\"completions\":6,"
		 "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":"
		 "{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"c\","
		 "\"image\":\"busybox\"}]}}}}",
		 job);
	create_json(s, buf, uid, sizeof(uid));
	pod_per_node(s, "batch/v1", "Job", job, uid, "{\"app\":\"web\"}", nodes,
		     ARRAY_SIZE(nodes));
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(get_int(s, "jobs.batch", job, "status.active"), 3);

	member_set(mem, "n3", MEMBERS_DEAD);
	ctrl_mgr_members_changed(ctrl);
	j = get_obj(s, "jobs.batch", job);
	json_set_int(json_path_obj(j, "spec"), "parallelism", 2);
	assert_int_equal(api_obj_update(s, j, NULL, &e), 0);
	cJSON_Delete(j);
	ctrl_mgr_run(ctrl, NULL);
	assert_int_equal(get_int(s, "jobs.batch", job, "status.active"), 2);
	snprintf(pod, sizeof(pod), "%s-n3", job);
	assert_false(exists(s, "pods", pod));
	for (size_t i = 0; i < 2; i++) {
		snprintf(pod, sizeof(pod), "%s-%s", job, nodes[i]);
		assert_true(exists(s, "pods", pod));
	}

	members_env_close(&env);
}

/*
 * Doubled-up pods are counted over the pods of every ReplicaSet of the same Deployment, as
 * Kubernetes' getIndirectlyRelatedPods: the old ReplicaSet's pods are on n1 and n2, the new one's
 * on n2, so scaling the old one down takes its pod on n2 (though it is older and ready longer).
 */
static void test_scale_down_counts_sibling_replicasets_pods(void **state)
{
	static const char *const nodes[] = { "n1", "n2", "n3" };
	char d[32], rs[2][32], uid[2][64], duid[64], buf[2048], pod[64];
	static const char *const revs[] = { "old", "new" };
	struct members_env env;

	members_env_open(&env, nodes, ARRAY_SIZE(nodes));
	/* n2 reconciles the Deployment and the new ReplicaSet (here: nobody), n1 the old one */
	name_owned_by(env.mem, "deployments.apps", "web", "n2", d, sizeof(d));
	name_owned_by(env.mem, "replicasets.apps", "old", "n1", rs[0], sizeof(rs[0]));
	name_owned_by(env.mem, "replicasets.apps", "new", "n2", rs[1], sizeof(rs[1]));
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"default\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":"
		 "{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
		 "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}",
		 d);
	create_json(env.s, buf, duid, sizeof(duid));
	for (int i = 0; i < 2; i++) {
		char labels[64];

		snprintf(labels, sizeof(labels), "{\"app\":\"web\",\"rev\":\"%s\"}", revs[i]);
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":"
			 "\"%s\",\"namespace\":\"default\",\"ownerReferences\":[{\"apiVersion\":"
			 "\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"%s\",\"uid\":\"%s\","
			 "\"controller\":true}]},\"spec\":{\"replicas\":%d,\"selector\":"
			 "{\"matchLabels\":%s},\"template\":{\"metadata\":{\"labels\":%s},\"spec\":"
			 "{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}",
			 rs[i], d, duid, 2 - i, labels, labels);
		create_json(env.s, buf, uid[i], sizeof(uid[i]));
		/* old: n1's pod the newer; new: one on n2 */
		pod_per_node(env.s, "apps/v1", "ReplicaSet", rs[i], uid[i], labels,
			     i ? nodes + 1 : nodes, 2 - (size_t)i);
	}
	ctrl_mgr_run(env.ctrl, NULL);
	assert_int_equal(get_int(env.s, "replicasets.apps", rs[0], "status.readyReplicas"), 2);

	rs_scale_to(env.s, rs[0], 1);
	ctrl_mgr_run(env.ctrl, NULL);
	snprintf(pod, sizeof(pod), "%s-n2", rs[0]);
	assert_false(exists(env.s, "pods", pod));
	snprintf(pod, sizeof(pod), "%s-n1", rs[0]);
	assert_true(exists(env.s, "pods", pod));
	snprintf(pod, sizeof(pod), "%s-n2", rs[1]);
	assert_true(exists(env.s, "pods", pod));
	members_env_close(&env);
}

static cJSON *rank_pod(const char *name, const char *uid, const char *node, const char *created,
		       const char *ready_at, const char *restarts, const char *cost)
{
	char buf[1024], ann[128] = "";

	if (cost)
		snprintf(ann, sizeof(ann),
			 ",\"annotations\":{\"controller.kubernetes.io/pod-deletion-cost\":\"%s\"}",
			 cost);
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"%s\",\"uid\":\"%s\"%s%s%s%s},\"spec\":{\"nodeName\":"
		 "\"%s\"},\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\","
		 "\"status\":\"True\",\"lastTransitionTime\":\"%s\"}],\"containerStatuses\":[%s]}}",
		 name, uid, created ? ",\"creationTimestamp\":\"" : "", created ?: "",
		 created ? "\"" : "", ann, node, ready_at, restarts ?: "");
	cJSON *p = cJSON_Parse(buf);
	assert_non_null(p);
	return p;
}

/* Sort pods ranked by themselves and the `nextra` pods on extra_node (a sibling's), as the
 * ReplicaSet does; the names in order are want. Frees the pods. */
static void assert_order_with(struct ctrl_mgr *ctrl, cJSON **pods, size_t n,
			      const char *extra_node, int nextra, const char *want)
{
	_cleanup_json_ cJSON *related = cJSON_CreateArray();
	char got[256] = "";

	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(related, cJSON_Duplicate(pods[i], true));
	for (int i = 0; i < nextra; i++)
		cJSON_AddItemToArray(related,
				     rank_pod("sibling", "us", extra_node, NULL, "", NULL, NULL));
	assert_int_equal(ctrl_pods_deletion_order(ctrl, pods, n, related, true), 0);
	for (size_t i = 0; i < n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
			 json_str(pods[i], "metadata.name", ""));
	assert_string_equal(got, want);
	for (size_t i = 0; i < n; i++)
		cJSON_Delete(pods[i]);
}

static void assert_order(struct ctrl_mgr *ctrl, cJSON **pods, size_t n, const char *want)
{
	assert_order_with(ctrl, pods, n, NULL, 0, want);
}

/* The rules of Kubernetes' order the scale-down lacked: pod-deletion-cost, doubled-up pods,
 * the most restarts of one container (not their sum), times on a log2 scale with the uid
 * breaking ties, and an unknown time first. */
static void test_deletion_order_rules(void **state)
{
	struct store_options so = { .path = ":memory:", .node_name = "n1", .clock = clock_fn };
	struct ctrl_options co = { .clock = clock_fn };
	const char *t0 = "2023-11-14T00:00:00Z";
	struct store *s;
	struct ctrl_mgr *ctrl;
	cJSON *p[4];

	assert_int_equal(store_open(&so, &s), 0);
	co.store = s;
	assert_int_equal(ctrl_mgr_new(&co, &ctrl), 0);
	now_ms = 1700000000000ULL; /* 2023-11-14T22:13:20Z */

	/* lower deletion cost first; a malformed cost is 0 */
	p[0] = rank_pod("c10", "u1", "n1", t0, t0, NULL, "10");
	p[1] = rank_pod("cbad", "u2", "n2", t0, t0, NULL, "+5");
	p[2] = rank_pod("cneg", "u3", "n3", t0, t0, NULL, "-01");
	assert_order(ctrl, p, 3, "cneg cbad c10");

	/* more related pods on the node first: the set's own, and a sibling ReplicaSet's */
	p[0] = rank_pod("alone", "u1", "n1", t0, "2023-11-14T22:13:00Z", NULL, NULL);
	p[1] = rank_pod("pair1", "u2", "n2", t0, t0, NULL, NULL);
	p[2] = rank_pod("pair2", "u3", "n2", t0, t0, NULL, NULL);
	assert_order(ctrl, p, 3, "pair1 pair2 alone");
	p[0] = rank_pod("alone", "u1", "n1", t0, "2023-11-14T22:13:00Z", NULL, NULL);
	p[1] = rank_pod("pair1", "u2", "n2", t0, t0, NULL, NULL);
	p[2] = rank_pod("pair2", "u3", "n2", t0, t0, NULL, NULL);
	assert_order_with(ctrl, p, 3, "n1", 2, "alone pair1 pair2");

	/* the container that restarted most, not the sum over containers */
	p[0] = rank_pod("sum6", "u1", "n1", t0, t0, "{\"restartCount\":3},{\"restartCount\":3}",
			NULL);
	p[1] = rank_pod("max5", "u2", "n2", t0, t0, "{\"restartCount\":5}", NULL);
	assert_order(ctrl, p, 2, "max5 sum6");

	/* ready 100 s and 110 s ago: one log2 bucket, the smaller uid first; 1000 s ago: last */
	p[0] = rank_pod("r100", "ub", "n1", t0, "2023-11-14T22:11:40Z", NULL, NULL);
	p[1] = rank_pod("r110", "ua", "n2", t0, "2023-11-14T22:11:30Z", NULL, NULL);
	p[2] = rank_pod("r1000", "u0", "n3", t0, "2023-11-14T21:56:40Z", NULL, NULL);
	assert_order(ctrl, p, 3, "r110 r100 r1000");

	/* no creation time first, then the newest */
	p[0] = rank_pod("old", "u1", "n1", "2023-01-01T00:00:00Z", t0, NULL, NULL);
	p[1] = rank_pod("new", "u2", "n2", "2023-11-14T00:00:00Z", t0, NULL, NULL);
	p[2] = rank_pod("none", "u3", "n3", NULL, t0, NULL, NULL);
	assert_order(ctrl, p, 3, "none new old");

	ctrl_mgr_free(ctrl);
	store_close(s);
}

/* The addresses of Endpoints "web": ready (addresses) or not (notReadyAddresses), as
 * "<ip> <ip> | <ip>" in the stored order. */
static void endpoints_ips(struct store *s, const char *name, char *out, size_t len)
{
	cJSON *ep = get_obj(s, "endpoints", name), *a;
	cJSON *sub = cJSON_GetArrayItem(json_path(ep, "subsets"), 0);
	size_t n = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(a, json_path(sub, "addresses"))
		n += (size_t)snprintf(out + n, len - n, "%s ", json_str(a, "ip", ""));
	n += (size_t)snprintf(out + n, len - n, "|");
	cJSON_ArrayForEach(a, json_path(sub, "notReadyAddresses"))
		n += (size_t)snprintf(out + n, len - n, " %s", json_str(a, "ip", ""));
	cJSON_Delete(ep);
}

/* The EndpointSlice of "web"'s one port list: "<ip>=<ready>/<serving> ..." in stored order. */
static int slice_conditions(struct store_obj *o, void *ud)
{
	char *out = ud;
	_cleanup_json_ cJSON *sl = store_obj_parse(o);
	cJSON *ep;

	assert_non_null(sl);
	cJSON_ArrayForEach(ep, json_path(sl, "endpoints"))
	{
		size_t n = strlen(out);
		snprintf(out + n, 256 - n, "%s=%d/%d ",
			 cJSON_GetStringValue(cJSON_GetArrayItem(json_path(ep, "addresses"), 0)),
			 cJSON_IsTrue(json_path(ep, "conditions.ready")),
			 cJSON_IsTrue(json_path(ep, "conditions.serving")));
	}
	return 0;
}

/* n's state in the gossip view changes; the controllers resync and run */
static void member_now(struct members_env *env, const char *n, enum members_state st)
{
	member_set(env->mem, n, st);
	ctrl_mgr_members_changed(env->ctrl);
	ctrl_mgr_resync(env->ctrl);
	ctrl_mgr_run(env->ctrl, NULL);
}

/*
 * A pod on a node gossip holds dead is not ready in the Service's Endpoints and EndpointSlice,
 * though its node's last status says Ready (nobody else writes it; Kubernetes' node lifecycle
 * controller marks such pods NotReady); merely suspect, it stays ready (a suspicion is often
 * refuted a moment later); alive again, ready again. Before, the dead node's pod stayed in
 * addresses until the healer deleted it.
 */
static void test_endpoints_dead_nodes_pods_not_ready(void **state)
{
	static const char *const nodes[] = { "n1", "n2", "n3" };
	char svc[32], buf[2048], pod[64], got[256];
	struct members_env env;
	struct store *s;

	members_env_open(&env, nodes, ARRAY_SIZE(nodes));
	s = env.s;
	name_owned_by(env.mem, "services", "web", "n1", svc, sizeof(svc));
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"None\",\"selector\":"
		 "{\"app\":\"web\"},\"ports\":[{\"port\":80,\"targetPort\":8080}]}}",
		 svc);
	create_json(s, buf, NULL, 0);
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		snprintf(pod, sizeof(pod), "web-%s", nodes[i]);
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
			 "\"namespace\":\"default\",\"labels\":{\"app\":\"web\"}},\"spec\":"
			 "{\"nodeName\":\"%s\",\"containers\":[{\"name\":\"c\","
			 "\"image\":\"busybox\"}]}}",
			 pod, nodes[i]);
		create_json(s, buf, NULL, 0);
		snprintf(buf, sizeof(buf),
			 "{\"phase\":\"Running\",\"podIP\":\"10.244.%zu.5\",\"conditions\":"
			 "[{\"type\":\"Ready\",\"status\":\"True\"}]}",
			 i + 1);
		set_status(s, "pods", pod, buf);
	}
	ctrl_mgr_run(env.ctrl, NULL);
	endpoints_ips(s, svc, got, sizeof(got));
	assert_string_equal(got, "10.244.1.5 10.244.2.5 10.244.3.5 |");

	member_now(&env, "n3", MEMBERS_SUSPECT);
	endpoints_ips(s, svc, got, sizeof(got));
	assert_string_equal(got, "10.244.1.5 10.244.2.5 10.244.3.5 |");

	member_now(&env, "n3", MEMBERS_DEAD);
	endpoints_ips(s, svc, got, sizeof(got));
	assert_string_equal(got, "10.244.1.5 10.244.2.5 | 10.244.3.5");
	got[0] = '\0';
	assert_int_equal(store_list(s, "endpointslices.discovery.k8s.io", "default", NULL, NULL,
				    slice_conditions, got),
			 0);
	assert_string_equal(got, "10.244.1.5=1/1 10.244.2.5=1/1 10.244.3.5=0/0 ");

	member_now(&env, "n3", MEMBERS_ALIVE);
	endpoints_ips(s, svc, got, sizeof(got));
	assert_string_equal(got, "10.244.1.5 10.244.2.5 10.244.3.5 |");

	members_env_close(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test_setup_teardown(test_failed_reconcile_is_retried_with_backoff, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_event_cuts_backoff_short, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_waits_for_owner_tombstone, setup, teardown),
		cmocka_unit_test(test_handover_waits_for_catch_up),
		cmocka_unit_test(test_hold_until_synced),
		cmocka_unit_test(test_status_handover_terms),
		cmocka_unit_test(test_status_handover_random),
		cmocka_unit_test(test_rollout_counts_lagging_replicasets),
		cmocka_unit_test(test_scale_down_deletes_unreachable_nodes_pods_first),
		cmocka_unit_test(test_deletion_order_rules),
		cmocka_unit_test(test_job_parallelism_lowered_deletes_dead_nodes_pod),
		cmocka_unit_test(test_scale_down_counts_sibling_replicasets_pods),
		cmocka_unit_test(test_endpoints_dead_nodes_pods_not_ready),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
