// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/json.h"
#include "lib/macro.h"
#include "sched/hlc.h"
#include "sched/store.h"

struct fake_clock {
	uint64_t now;
};

static uint64_t fake_now(void *userdata)
{
	return ((struct fake_clock *)userdata)->now;
}

static struct fake_clock clk;

static struct store *open_store(const char *path, size_t window)
{
	struct store_options o = {
		.path = path,
		.node_name = "n1",
		.clock = fake_now,
		.clock_data = &clk,
		.watch_window = window,
		.seq_base_set = true, /* rv 1 first: the tests read resourceVersions literally */
	};
	struct store *s = NULL;

	assert_int_equal(store_open(&o, &s), 0);
	return s;
}

static cJSON *pod(const char *ns, const char *name, const char *uid, const char *app,
		  const char *node, const char *phase)
{
	cJSON *o = cJSON_CreateObject(), *m, *spec, *c;

	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Pod");
	m = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(m, "name", name);
	cJSON_AddStringToObject(m, "namespace", ns);
	if (uid)
		cJSON_AddStringToObject(m, "uid", uid);
	if (app)
		cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "labels"), "app", app);
	spec = cJSON_AddObjectToObject(o, "spec");
	if (node)
		cJSON_AddStringToObject(spec, "nodeName", node);
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "name", "main");
	cJSON_AddStringToObject(c, "image", "busybox");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "containers"), c);
	if (phase)
		cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "status"), "phase", phase);
	return o;
}

static void create_pod(struct store *s, const char *ns, const char *name, const char *uid)
{
	_cleanup_json_ cJSON *o = pod(ns, name, uid, "web", NULL, NULL);
	struct err e = { 0 };

	assert_int_equal(store_create(s, "pods", ns, name, o, NULL, &e), 0);
}

static void test_create_get(void **state)
{
	struct store *s = open_store(NULL, 0);
	_cleanup_json_ cJSON *o = pod("default", "web-1", "u-1", "web", "n7", "Pending");
	_cleanup_json_ cJSON *back = NULL;
	struct store_obj *got = NULL, *ret = NULL;
	struct err e = { 0 };

	assert_int_equal(store_rv(s), 0);
	assert_int_equal(store_create(s, "pods", "default", "web-1", o, &ret, &e), 0);
	assert_int_equal(ret->rv, 1);
	assert_int_equal(store_rv(s), 1);
	assert_int_equal(store_get(s, "pods", "default", "web-1", &got), 0);
	assert_ptr_equal(got, ret);
	assert_string_equal(got->uid, "u-1");
	assert_string_equal(got->resource, "pods");
	assert_string_equal(got->ns, "default");
	assert_string_equal(got->node_name, "n7");
	assert_string_equal(got->phase, "Pending");
	assert_string_equal(json_str(got->labels, "app", ""), "web");
	assert_string_equal(got->spec_node, "n1");
	assert_true(got->spec_hlc != 0 && got->status_hlc == got->spec_hlc);
	assert_int_equal(got->json_len, strlen(got->json));
	back = store_obj_parse(got);
	assert_non_null(back);
	assert_string_equal(json_str(back, "metadata.resourceVersion", ""), "1");
	assert_string_equal(json_str(back, "metadata.uid", ""), "u-1");
	assert_string_equal(json_str(back, "status.phase", ""), "Pending");
	assert_string_equal(json_str(back, "spec.containers", "x"), "x"); /* array, not string */
	/* the caller's tree is left alone */
	assert_null(json_path(o, "metadata.resourceVersion"));
	/* the spliced text is exactly the object plus its resourceVersion */
	{
		_cleanup_json_ cJSON *want = cJSON_Duplicate(o, true);

		json_set_str(json_path(want, "metadata"), "resourceVersion", "1");
		assert_true(cJSON_Compare(want, back, true));
	}

	assert_int_equal(store_get(s, "pods", "default", "nope", &got), -ENOENT);
	assert_int_equal(store_get(s, "services", "default", "web-1", &got), -ENOENT);
	store_obj_unref(ret);
	store_obj_unref(ret);
	store_close(s);
}

static void test_errors_messages(void **state)
{
	struct store *s = open_store(NULL, 0);
	_cleanup_json_ cJSON *o = pod("default", "x", "u-1", NULL, NULL, NULL);
	_cleanup_json_ cJSON *d = cJSON_Parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
					      "\"metadata\":{\"name\":\"web\"},\"spec\":{}}");
	struct err e = { 0 };

	assert_int_equal(store_create(s, "pods", "default", "x", o, NULL, &e), 0);
	assert_int_equal(store_create(s, "pods", "default", "x", o, NULL, &e), -EEXIST);
	assert_int_equal(e.code, 409);
	assert_string_equal(e.reason, "AlreadyExists");
	assert_string_equal(e.message, "pods \"x\" already exists");

	assert_int_equal(store_update(s, "pods", "default", "x", o, 7, NULL, &e), -ECANCELED);
	assert_int_equal(e.code, 409);
	assert_string_equal(e.reason, "Conflict");
	assert_string_equal(e.message,
			    "Operation cannot be fulfilled on pods \"x\": the object has been "
			    "modified; please apply your changes to the latest version and try "
			    "again");

	assert_int_equal(store_update(s, "pods", "default", "y", o, 0, NULL, &e), -ENOENT);
	assert_int_equal(e.code, 404);
	assert_string_equal(e.reason, "NotFound");
	assert_string_equal(e.message, "pods \"y\" not found");

	assert_int_equal(store_delete(s, "deployments.apps", "default", "web", 0, NULL, NULL, &e),
			 -ENOENT);
	assert_string_equal(e.message, "deployments.apps \"web\" not found");
	assert_int_equal(store_create(s, "deployments.apps", "default", "web", d, NULL, &e), 0);
	assert_int_equal(store_update_status(s, "deployments.apps", "default", "web", NULL, 1,
					     NULL, &e),
			 -ECANCELED);
	assert_string_equal(e.message,
			    "Operation cannot be fulfilled on deployments.apps \"web\": the object "
			    "has been modified; please apply your changes to the latest version "
			    "and try again");
	/* failed writes commit nothing */
	assert_int_equal(store_rv(s), 2);
	store_close(s);
}

struct collect {
	char names[64][64];
	int n;
	int stop_after;
};

static int collect_fn(struct store_obj *o, void *userdata)
{
	struct collect *c = userdata;

	snprintf(c->names[c->n++], 64, "%s/%s", o->ns, o->name);
	return c->stop_after && c->n >= c->stop_after ? 1 : 0;
}

static void test_list_order_filter_cursor(void **state)
{
	struct store *s = open_store(NULL, 0);
	struct collect c = { 0 };
	const char *order[] = { "a/p1", "a/p2", "a/p3", "b/p0", "b/p9", "c/p5" };

	/* insert out of order */
	create_pod(s, "b", "p9", "u1");
	create_pod(s, "a", "p2", "u2");
	create_pod(s, "c", "p5", "u3");
	create_pod(s, "a", "p3", "u4");
	create_pod(s, "b", "p0", "u5");
	create_pod(s, "a", "p1", "u6");

	assert_int_equal(store_list(s, "pods", NULL, NULL, NULL, collect_fn, &c), 0);
	assert_int_equal(c.n, 6);
	for (int i = 0; i < 6; i++)
		assert_string_equal(c.names[i], order[i]);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_list(s, "pods", "b", NULL, NULL, collect_fn, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.names[0], "b/p0");
	assert_string_equal(c.names[1], "b/p9");

	/* limit/continue: pages of 4 */
	memset(&c, 0, sizeof(c));
	c.stop_after = 4;
	assert_int_equal(store_list(s, "pods", NULL, NULL, NULL, collect_fn, &c), 0);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.names[3], "b/p0");
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_list(s, "pods", NULL, "b", "p0", collect_fn, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.names[0], "b/p9");
	assert_string_equal(c.names[1], "c/p5");

	/* cursor combined with namespace filter, including a cursor before the namespace */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_list(s, "pods", "a", "a", "p1", collect_fn, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.names[0], "a/p2");
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_list(s, "pods", "b", "a", "zzz", collect_fn, &c), 0);
	assert_int_equal(c.n, 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_list(s, "pods", "a", "b", "", collect_fn, &c), 0);
	assert_int_equal(c.n, 0);

	assert_int_equal(store_count(s, "pods", NULL), 6);
	assert_int_equal(store_count(s, "pods", "a"), 3);
	assert_int_equal(store_count(s, "pods", "b"), 2);
	assert_int_equal(store_count(s, "pods", "zz"), 0);
	assert_int_equal(store_count(s, "services", NULL), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_list(s, "services", NULL, NULL, NULL, collect_fn, &c), 0);
	assert_int_equal(c.n, 0);
	store_close(s);
}

static int abort_fn(struct store_obj *o, void *userdata)
{
	return -EIO;
}

/* A list callback that deletes objects (deletecollection) must not skip or repeat any. */
static int delete_fn(struct store_obj *o, void *userdata)
{
	struct store *s = userdata;

	return store_delete(s, o->resource, o->ns, o->name, 0, NULL, NULL, NULL);
}

static void test_list_mutation_in_callback(void **state)
{
	struct store *s = open_store(NULL, 0);
	char name[16];

	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "p%02d", i);
		create_pod(s, i % 2 ? "a" : "b", name, NULL);
	}
	assert_int_equal(store_list(s, "pods", NULL, NULL, NULL, abort_fn, NULL), -EIO);
	assert_int_equal(store_list(s, "pods", "a", NULL, NULL, delete_fn, s), 0);
	assert_int_equal(store_count(s, "pods", "a"), 0);
	assert_int_equal(store_count(s, "pods", "b"), 10);
	assert_int_equal(store_list(s, "pods", NULL, NULL, NULL, delete_fn, s), 0);
	assert_int_equal(store_count(s, "pods", NULL), 0);
	assert_int_equal(store_rv(s), 40);
	store_close(s);
}

static void test_update(void **state)
{
	struct store *s = open_store(NULL, 0);
	_cleanup_json_ cJSON *o = pod("default", "web", "u-1", "web", NULL, "Running");
	_cleanup_json_ cJSON *back = NULL;
	struct store_obj *a = NULL, *b = NULL, *c = NULL;
	struct store_stats st;
	struct err e = { 0 };

	clk.now = 1000;
	assert_int_equal(store_create(s, "pods", "default", "web", o, &a, &e), 0);

	/* no-op update (even carrying a stale resourceVersion in metadata) commits nothing */
	json_set_str(json_path(o, "metadata"), "resourceVersion", "999");
	assert_int_equal(store_update(s, "pods", "default", "web", o, 0, &b, &e), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(store_rv(s), 1);
	store_obj_unref(b);

	/* unconditional update */
	json_set_str(json_path(o, "metadata.labels"), "app", "web2");
	assert_int_equal(store_update(s, "pods", "default", "web", o, 0, &b, &e), 0);
	assert_int_equal(b->rv, 2);
	assert_string_equal(json_str(b->labels, "app", ""), "web2");
	assert_true(b->spec_hlc > a->spec_hlc);
	assert_string_equal(b->uid, "u-1");
	/* a `status` in obj is ignored: the status register is kept */
	assert_string_equal(b->phase, "Running");
	assert_true(b->status_hlc == a->status_hlc);

	/* conditional update: stale rv conflicts, current rv goes through */
	json_set_str(json_path(o, "spec"), "nodeName", "n3");
	assert_int_equal(store_update(s, "pods", "default", "web", o, 1, &c, &e), -ECANCELED);
	assert_int_equal(store_update(s, "pods", "default", "web", o, 2, &c, &e), 0);
	assert_int_equal(c->rv, 3);
	assert_string_equal(c->node_name, "n3");
	back = store_obj_parse(c);
	assert_string_equal(json_str(back, "metadata.resourceVersion", ""), "3");
	assert_string_equal(json_str(back, "status.phase", ""), "Running");

	/* snapshots are immutable: the old one still says what it said */
	assert_int_equal(a->rv, 1);
	assert_string_equal(json_str(a->labels, "app", ""), "web");
	store_stats_get(s, &st);
	assert_int_equal(st.commits, 3);
	assert_int_equal(st.objects, 1);
	store_obj_unref(a);
	store_obj_unref(b);
	store_obj_unref(c);
	store_close(s);
}

static void test_status_register(void **state)
{
	struct store *s = open_store(NULL, 0);
	_cleanup_json_ cJSON *o = pod("default", "web", "u-1", "web", NULL, NULL);
	_cleanup_json_ cJSON *status = cJSON_Parse("{\"phase\":\"Running\",\"podIP\":\"10.0.0.5\"}");
	_cleanup_json_ cJSON *t1 = NULL, *t2 = NULL;
	struct store_obj *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	struct err e = { 0 };

	clk.now = 2000;
	assert_int_equal(store_create(s, "pods", "default", "web", o, &a, &e), 0);
	assert_int_equal(a->status_hlc, 0);
	assert_null(a->status_node);
	assert_null(a->phase);

	assert_int_equal(store_update_status(s, "pods", "default", "web", status, 0, &b, &e), 0);
	assert_int_equal(b->rv, 2);
	assert_string_equal(b->phase, "Running");
	assert_true(b->status_hlc > a->spec_hlc);
	assert_string_equal(b->status_node, "n1");
	/* spec register untouched */
	assert_true(b->spec_hlc == a->spec_hlc);
	t1 = store_obj_parse(a);
	t2 = store_obj_parse(b);
	assert_true(cJSON_Compare(cJSON_GetObjectItem(t1, "spec"), cJSON_GetObjectItem(t2, "spec"),
				  true));
	assert_string_equal(json_str(t2, "status.podIP", ""), "10.0.0.5");

	/* same status again: no commit */
	assert_int_equal(store_update_status(s, "pods", "default", "web", status, 2, &c, &e), 0);
	assert_ptr_equal(c, b);
	store_obj_unref(c);
	assert_int_equal(store_rv(s), 2);

	/* a spec update keeps the status register and its version */
	json_set_str(json_path(o, "spec"), "nodeName", "n2");
	assert_int_equal(store_update(s, "pods", "default", "web", o, 2, &c, &e), 0);
	assert_true(c->status_hlc == b->status_hlc);
	assert_string_equal(c->phase, "Running");
	assert_true(c->spec_hlc > b->status_hlc);

	/* and a status update keeps the new spec */
	json_set_str(status, "phase", "Succeeded");
	assert_int_equal(store_update_status(s, "pods", "default", "web", status, 3, &d, &e), 0);
	assert_string_equal(d->node_name, "n2");
	assert_string_equal(d->phase, "Succeeded");
	assert_true(d->spec_hlc == c->spec_hlc);
	assert_int_equal(store_update_status(s, "pods", "default", "nope", status, 0, NULL, &e),
			 -ENOENT);
	store_obj_unref(a);
	store_obj_unref(b);
	store_obj_unref(c);
	store_obj_unref(d);
	store_close(s);
}

static void test_delete_tombstone_recreate(void **state)
{
	struct store *s = open_store(NULL, 0);
	_cleanup_json_ cJSON *back = NULL;
	struct store_obj *fin = NULL, *again = NULL;
	struct store_stats st;
	struct err e = { 0 };

	create_pod(s, "default", "web", "u-1");
	create_pod(s, "default", "other", "u-2");
	assert_int_equal(store_delete(s, "pods", "default", "web", 0, "u-wrong", NULL, &e),
			 -ECANCELED);
	assert_int_equal(e.code, 409);
	assert_non_null(strstr(e.message, "Precondition failed: UID in precondition: u-wrong"));
	assert_int_equal(store_delete(s, "pods", "default", "web", 2, NULL, NULL, &e), -ECANCELED);
	assert_non_null(strstr(e.message, "ResourceVersion in precondition: 2"));

	assert_int_equal(store_delete(s, "pods", "default", "web", 1, "u-1", &fin, &e), 0);
	assert_int_equal(fin->rv, 3);
	assert_string_equal(fin->uid, "u-1");
	back = store_obj_parse(fin);
	assert_string_equal(json_str(back, "metadata.resourceVersion", ""), "3");
	assert_int_equal(store_get(s, "pods", "default", "web", &again), -ENOENT);
	assert_int_equal(store_delete(s, "pods", "default", "web", 0, NULL, NULL, &e), -ENOENT);
	assert_int_equal(store_count(s, "pods", NULL), 1);
	store_stats_get(s, &st);
	assert_int_equal(st.objects, 1);
	assert_int_equal(st.tombstones, 1);

	/* recreate with a new uid from the caller */
	create_pod(s, "default", "web", "u-3");
	assert_int_equal(store_get(s, "pods", "default", "web", &again), 0);
	assert_string_equal(again->uid, "u-3");
	assert_int_equal(again->rv, 4);
	store_stats_get(s, &st);
	assert_int_equal(st.objects, 2);
	assert_int_equal(st.tombstones, 0);
	store_obj_unref(fin);
	store_obj_unref(again);
	store_close(s);
}

/* Tests with a database file get a fresh directory, removed even when the test fails. */
static int tmp_setup(void **state)
{
	char dir[] = "/tmp/shoal-store-test-XXXXXX";
	char *path;

	if (!mkdtemp(dir) || asprintf(&path, "%s/store.db", dir) < 0)
		return -1;
	*state = path;
	return 0;
}

static int tmp_teardown(void **state)
{
	char *path = *state, buf[512];

	snprintf(buf, sizeof(buf), "%s-wal", path);
	unlink(buf);
	snprintf(buf, sizeof(buf), "%s-shm", path);
	unlink(buf);
	unlink(path);
	*strrchr(path, '/') = 0;
	rmdir(path);
	free(path);
	return 0;
}

static void test_persistence(void **state)
{
	const char *path = *state;
	struct store *s;
	struct store_obj *a = NULL, *b = NULL, *c = NULL;
	_cleanup_json_ cJSON *status = cJSON_Parse("{\"phase\":\"Running\"}");
	_cleanup_json_ cJSON *cm = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
					       "\"metadata\":{\"name\":\"prod\",\"uid\":\"u-ns\"}}");
	_cleanup_free_ char *json_a = NULL;
	struct store_stats st;
	uint64_t spec_hlc, status_hlc, rv;
	struct err e = { 0 };

	clk.now = 50000;
	s = open_store(path, 0);
	create_pod(s, "default", "a", "u-a");
	create_pod(s, "default", "b", "u-b");
	create_pod(s, "default", "gone", "u-g");
	assert_int_equal(store_create(s, "namespaces", "", "prod", cm, NULL, &e), 0);
	assert_int_equal(store_update_status(s, "pods", "default", "a", status, 0, NULL, &e), 0);
	assert_int_equal(store_delete(s, "pods", "default", "gone", 0, NULL, NULL, &e), 0);
	assert_int_equal(store_get(s, "pods", "default", "a", &a), 0);
	json_a = strdup(a->json);
	spec_hlc = a->spec_hlc;
	status_hlc = a->status_hlc;
	rv = store_rv(s);
	assert_int_equal(rv, 6);
	store_obj_unref(a);
	store_close(s);

	/* the wall clock went back across the restart: versions must still grow */
	clk.now = 10000;
	s = open_store(path, 0);
	assert_int_equal(store_rv(s), rv);
	assert_int_equal(store_rv_oldest(s), rv);
	assert_int_equal(store_get(s, "pods", "default", "a", &a), 0);
	assert_string_equal(a->uid, "u-a");
	assert_int_equal(a->rv, 5);
	assert_string_equal(a->json, json_a);
	assert_true(a->spec_hlc == spec_hlc);
	assert_true(a->status_hlc == status_hlc);
	assert_string_equal(a->status_node, "n1");
	assert_string_equal(a->phase, "Running");
	assert_int_equal(store_get(s, "pods", "default", "b", &b), 0);
	assert_int_equal(b->rv, 2);
	assert_int_equal(store_get(s, "pods", "default", "gone", &c), -ENOENT);
	assert_int_equal(store_get(s, "namespaces", "", "prod", &c), 0);
	assert_string_equal(c->ns, "");
	store_obj_unref(c);
	store_stats_get(s, &st);
	assert_int_equal(st.objects, 3);
	assert_int_equal(st.tombstones, 1);
	assert_int_equal(store_count(s, "pods", "default"), 2);

	/* same status after restart is still a no-op (exact comparison against the row) */
	assert_int_equal(store_update_status(s, "pods", "default", "a", status, 0, &c, &e), 0);
	assert_int_equal(c->rv, 5);
	store_obj_unref(c);
	/* new commits continue above the old maximum, with larger versions */
	create_pod(s, "default", "gone", "u-g2");
	assert_int_equal(store_get(s, "pods", "default", "gone", &c), 0);
	assert_int_equal(c->rv, rv + 1);
	assert_true(c->spec_hlc > status_hlc);
	store_obj_unref(c);
	store_obj_unref(a);
	store_obj_unref(b);
	store_close(s);

	s = open_store(path, 0);
	assert_int_equal(store_rv(s), rv + 1);
	store_stats_get(s, &st);
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(st.objects, 4);
	store_close(s);
}

/* Commits survive a process kill (no close); a second opener of the same file is refused. */
static void test_survives_kill(void **state)
{
	const char *path = *state;
	struct store *s;
	struct store_obj *o = NULL;
	struct store_stats st;
	int status;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store_options opts = { .path = path, .node_name = "n1", .seq_base_set = true };
		_cleanup_json_ cJSON *p = pod("default", "p", "u-p", NULL, NULL, NULL);
		struct store *c = NULL;

		if (store_open(&opts, &c) < 0)
			_exit(1);
		for (int i = 0; i < 3; i++) {
			char name[8];

			snprintf(name, sizeof(name), "p%d", i);
			if (store_create(c, "pods", "default", name, p, NULL, NULL) < 0)
				_exit(2);
		}
		if (store_delete(c, "pods", "default", "p1", 0, NULL, NULL, NULL) < 0)
			_exit(3);
		/* a second opener while we hold the file */
		struct store *other = NULL;
		if (store_open(&opts, &other) != -EBUSY)
			_exit(4);
		kill(getpid(), SIGKILL);
		_exit(5);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	s = open_store(path, 0);
	assert_int_equal(store_rv(s), 4);
	assert_int_equal(store_get(s, "pods", "default", "p2", &o), 0);
	assert_int_equal(o->rv, 3);
	store_obj_unref(o);
	store_stats_get(s, &st);
	assert_int_equal(st.objects, 2);
	assert_int_equal(st.tombstones, 1);
	create_pod(s, "default", "p9", NULL);
	assert_int_equal(store_rv(s), 5);
	store_close(s);
}

struct rec {
	uint64_t rvs[64];
	enum store_event_type types[64];
	char names[64][32];
	int n;
	/* behaviours */
	struct store *s;
	struct store_watch *self, *other;
	int cancel_self_after;
	bool cancel_other;
	bool commit_once;
	struct rec *add_child;
	struct store_watch *child;
};

static void rec_fn(const struct store_event *ev, void *userdata)
{
	struct rec *r = userdata;

	r->rvs[r->n] = ev->rv;
	r->types[r->n] = ev->type;
	snprintf(r->names[r->n], 32, "%s", ev->obj->name);
	r->n++;
	assert_true(ev->rv == ev->obj->rv);
	if (ev->type == STORE_ADDED)
		assert_null(ev->old);
	else
		assert_non_null(ev->old);
	if (r->cancel_self_after && r->n == r->cancel_self_after)
		store_watch_cancel(r->self);
	if (r->cancel_other && r->other) {
		store_watch_cancel(r->other);
		r->other = NULL;
	}
	if (r->commit_once) {
		r->commit_once = false;
		create_pod(r->s, "default", "from-callback", NULL);
	}
	if (r->add_child) {
		struct rec *c = r->add_child;

		r->add_child = NULL;
		assert_int_equal(store_watch_add(r->s, NULL, 0, rec_fn, c, &r->child), 0);
	}
}

static void test_watch_replay_and_stream(void **state)
{
	struct store *s = open_store(NULL, 0);
	_cleanup_json_ cJSON *status = cJSON_Parse("{\"phase\":\"Running\"}");
	_cleanup_json_ cJSON *cm = cJSON_Parse("{\"metadata\":{\"name\":\"c\"},\"data\":{}}");
	struct rec all = { 0 }, pods = { 0 }, now = { 0 };
	struct store_watch *w1, *w2, *w3;
	struct store_stats st;
	struct err e = { 0 };

	create_pod(s, "default", "p1", NULL);                                       /* 1 */
	create_pod(s, "default", "p2", NULL);                                       /* 2 */
	assert_int_equal(store_create(s, "configmaps", "default", "c", cm, NULL, &e), 0); /* 3 */
	assert_int_equal(store_update_status(s, "pods", "default", "p1", status, 0, NULL, &e),
			 0);                                                        /* 4 */

	assert_int_equal(store_rv_oldest(s), 0);
	assert_int_equal(store_watch_add(s, NULL, 1, rec_fn, &all, &w1), 0);
	assert_int_equal(all.n, 3); /* replayed synchronously */
	assert_int_equal(all.rvs[0], 2);
	assert_int_equal(all.rvs[2], 4);
	assert_int_equal(all.types[2], STORE_MODIFIED);
	assert_int_equal(store_watch_add(s, "pods", 1, rec_fn, &pods, &w2), 0);
	assert_int_equal(pods.n, 2);
	assert_string_equal(pods.names[0], "p2");
	assert_string_equal(pods.names[1], "p1");
	assert_int_equal(store_watch_add(s, "pods", 0, rec_fn, &now, &w3), 0);
	assert_int_equal(now.n, 0);

	assert_int_equal(store_delete(s, "pods", "default", "p2", 0, NULL, NULL, &e), 0); /* 5 */
	assert_int_equal(all.n, 4);
	assert_int_equal(pods.n, 3);
	assert_int_equal(now.n, 1);
	assert_int_equal(now.types[0], STORE_DELETED);
	assert_int_equal(now.rvs[0], 5);
	assert_int_equal(store_delete(s, "configmaps", "default", "c", 0, NULL, NULL, &e), 0);
	assert_int_equal(all.n, 5);
	assert_int_equal(pods.n, 3);

	store_stats_get(s, &st);
	assert_int_equal(st.watchers, 3);
	store_watch_cancel(w2);
	store_stats_get(s, &st);
	assert_int_equal(st.watchers, 2);
	create_pod(s, "default", "p3", NULL);
	assert_int_equal(pods.n, 3);
	assert_int_equal(now.n, 2);
	/* from the current rv: nothing to replay */
	memset(&pods, 0, sizeof(pods));
	assert_int_equal(store_watch_add(s, "pods", store_rv(s), rec_fn, &pods, &w2), 0);
	assert_int_equal(pods.n, 0);
	store_watch_cancel(w1);
	store_watch_cancel(w3);
	store_close(s); /* frees w2 */
}

static void test_watch_gone(void **state)
{
	const char *path = *state;
	struct store *s;
	struct store_watch *w;
	struct rec r = { 0 };
	_cleanup_json_ cJSON *o = pod("default", "p", NULL, "a", NULL, NULL);
	struct err e = { 0 };

	s = open_store(path, 3);
	assert_int_equal(store_create(s, "pods", "default", "p", o, NULL, &e), 0);
	for (int i = 0; i < 5; i++) {
		char v[8];

		snprintf(v, sizeof(v), "v%d", i);
		json_set_str(json_path(o, "metadata.labels"), "app", v);
		assert_int_equal(store_update(s, "pods", "default", "p", o, 0, NULL, &e), 0);
	}
	assert_int_equal(store_rv(s), 6);
	assert_int_equal(store_rv_oldest(s), 3); /* events 4, 5, 6 kept */
	assert_int_equal(store_watch_add(s, NULL, 2, rec_fn, &r, &w), -ENODATA);
	assert_int_equal(store_watch_add(s, NULL, 3, rec_fn, &r, &w), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.rvs[0], 4);
	store_watch_cancel(w);
	store_close(s);

	/* after a restart the window starts at the current rv */
	s = open_store(path, 3);
	assert_int_equal(store_rv_oldest(s), 6);
	assert_int_equal(store_watch_add(s, NULL, 5, rec_fn, &r, &w), -ENODATA);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_watch_add(s, NULL, 6, rec_fn, &r, &w), 0);
	assert_int_equal(r.n, 0);
	json_set_str(json_path(o, "metadata.labels"), "app", "after");
	assert_int_equal(store_update(s, "pods", "default", "p", o, 0, NULL, &e), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.rvs[0], 7);
	store_close(s);
}

/* Superseded versions pinned by the window are bounded in bytes, not only in events. */
static void test_watch_window_bytes(void **state)
{
	struct store_options opts = { .node_name = "n1",
				      .watch_window_bytes = 4096,
				      .seq_base_set = true };
	_cleanup_json_ cJSON *o = pod("default", "p", NULL, "a", NULL, NULL);
	struct store *s = NULL;
	struct err e = { 0 };

	assert_int_equal(store_open(&opts, &s), 0);
	/* creates pin nothing extra: all of them stay resumable */
	for (int i = 0; i < 50; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(store_create(s, "pods", "default", name, o, NULL, &e), 0);
	}
	assert_int_equal(store_create(s, "pods", "default", "p", o, NULL, &e), 0);
	assert_int_equal(store_rv_oldest(s), 0);
	for (int i = 0; i < 50; i++) {
		char v[8];

		snprintf(v, sizeof(v), "v%d", i);
		json_set_str(json_path(o, "metadata.labels"), "app", v);
		assert_int_equal(store_update(s, "pods", "default", "p", o, 0, NULL, &e), 0);
	}
	/* ~4 KiB of superseded pod versions: only the last few updates stay resumable */
	assert_true(store_rv_oldest(s) > 51);
	assert_true(store_rv_oldest(s) < 101);
	store_close(s);
}

static void test_watch_cancel_in_callback(void **state)
{
	struct store *s = open_store(NULL, 0);
	struct rec a = { 0 }, b = { 0 }, c = { 0 };
	struct store_watch *wa, *wb, *wc;
	struct store_stats st;

	/* a cancels itself after 2 events; b cancels c on its first event */
	a.cancel_self_after = 2;
	assert_int_equal(store_watch_add(s, NULL, 0, rec_fn, &a, &wa), 0);
	a.self = wa;
	assert_int_equal(store_watch_add(s, NULL, 0, rec_fn, &b, &wb), 0);
	assert_int_equal(store_watch_add(s, NULL, 0, rec_fn, &c, &wc), 0);
	b.cancel_other = true;
	b.other = wc;
	create_pod(s, "default", "p1", NULL);
	create_pod(s, "default", "p2", NULL);
	create_pod(s, "default", "p3", NULL);
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 3);
	assert_int_equal(c.n, 0); /* cancelled before its turn */
	store_stats_get(s, &st);
	assert_int_equal(st.watchers, 1);

	store_watch_cancel(wb);
	store_watch_cancel(NULL);
	store_close(s);
}

struct self_cancel {
	struct store_watch *w;
	int n;
};

static void self_cancel_fn(const struct store_event *ev, void *userdata)
{
	struct self_cancel *sc = userdata;

	sc->n++;
	store_watch_cancel(sc->w);
}

static void test_watch_cancel_during_replay(void **state)
{
	struct store *s = open_store(NULL, 0);
	struct self_cancel sc = { 0 };
	struct store_stats st;

	create_pod(s, "default", "p1", NULL);
	create_pod(s, "default", "p2", NULL);
	create_pod(s, "default", "p3", NULL);
	/* *ret is set before the replay, so the callback can cancel through it */
	assert_int_equal(store_watch_add(s, "pods", 1, self_cancel_fn, &sc, &sc.w), 0);
	assert_int_equal(sc.n, 1); /* got rv 2, cancelled, not rv 3 */
	assert_null(sc.w);         /* the handle is gone */
	store_stats_get(s, &st);
	assert_int_equal(st.watchers, 0);
	create_pod(s, "default", "p4", NULL);
	assert_int_equal(sc.n, 1);
	store_close(s);
}

/* Commits and new watches from a callback: every watcher sees every event once, in order. */
static void test_watch_reentrant(void **state)
{
	struct store *s = open_store(NULL, 0);
	struct rec a = { 0 }, b = { 0 }, child = { 0 };
	struct store_watch *wa, *wb;

	a.s = s;
	a.commit_once = true;
	a.add_child = &child;
	assert_int_equal(store_watch_add(s, NULL, 0, rec_fn, &a, &wa), 0);
	assert_int_equal(store_watch_add(s, NULL, 0, rec_fn, &b, &wb), 0);
	create_pod(s, "default", "p1", NULL); /* rv 1; a's callback creates rv 2 */
	assert_int_equal(store_rv(s), 2);
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 2);
	assert_int_equal(a.rvs[0], 1);
	assert_int_equal(a.rvs[1], 2);
	assert_int_equal(b.rvs[0], 1);
	assert_int_equal(b.rvs[1], 2);
	assert_string_equal(b.names[1], "from-callback");
	/* the child watch was added from now (rv 2 was committed before it) */
	assert_int_equal(child.n, 0);
	create_pod(s, "default", "p2", NULL);
	assert_int_equal(child.n, 1);
	assert_int_equal(child.rvs[0], 3);
	assert_int_equal(a.n, 3);
	assert_int_equal(b.n, 3);
	store_close(s);
}

static void test_hlc_fake_clock_backwards(void **state)
{
	struct store *s = open_store(NULL, 0);
	_cleanup_json_ cJSON *o = pod("default", "p", NULL, "a", NULL, NULL);
	_cleanup_json_ cJSON *status = cJSON_Parse("{\"phase\":\"Running\"}");
	struct store_obj *a = NULL, *b = NULL, *c = NULL;
	struct err e = { 0 };

	clk.now = 100000;
	assert_int_equal(store_create(s, "pods", "default", "p", o, &a, &e), 0);
	assert_int_equal(HLC_PHYS(a->spec_hlc), 100000);
	clk.now = 90000;
	json_set_str(json_path(o, "metadata.labels"), "app", "b");
	assert_int_equal(store_update(s, "pods", "default", "p", o, 0, &b, &e), 0);
	assert_true(b->spec_hlc > a->spec_hlc);
	assert_int_equal(HLC_PHYS(b->spec_hlc), 100000);
	assert_int_equal(store_update_status(s, "pods", "default", "p", status, 0, &c, &e), 0);
	assert_true(c->status_hlc > b->spec_hlc);
	assert_true(reg_version_cmp(c->status_hlc, c->status_node, b->spec_hlc, b->spec_node) > 0);
	store_obj_unref(a);
	store_obj_unref(b);
	store_obj_unref(c);
	store_close(s);
}

/* Unusual shapes splice correctly too: no metadata at all, status null, odd key text. */
static void test_odd_shapes(void **state)
{
	struct store *s = open_store(NULL, 0);
	_cleanup_json_ cJSON *a = cJSON_Parse("{\"kind\":\"ConfigMap\",\"data\":{\"k\":"
					      "\"\\\"resourceVersion\\\":\\\"1\\\"}\"},"
					      "\"status\":null}");
	_cleanup_json_ cJSON *b = cJSON_Parse("{\"metadata\":{\"uid\":\"u\",\"resourceVersion\":"
					      "\"77\"},\"status\":{}}");
	_cleanup_json_ cJSON *ta = NULL, *tb = NULL, *tc = NULL;
	struct store_obj *oa = NULL, *ob = NULL, *oc = NULL;
	struct err e = { 0 };

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(store_create(s, "configmaps", "x", "a", a, &oa, &e), 0);
	ta = store_obj_parse(oa);
	assert_non_null(ta);
	assert_string_equal(json_str(ta, "metadata.resourceVersion", ""), "1");
	assert_string_equal(json_str(ta, "data.k", ""), "\"resourceVersion\":\"1\"}");
	assert_null(cJSON_GetObjectItem(ta, "status"));
	assert_int_equal(store_create(s, "configmaps", "x", "b", b, &ob, &e), 0);
	tb = store_obj_parse(ob);
	assert_non_null(tb);
	assert_string_equal(json_str(tb, "metadata.resourceVersion", ""), "2");
	assert_non_null(json_path(tb, "status"));
	assert_int_equal(store_update_status(s, "configmaps", "x", "b", NULL, 0, &oc, &e), 0);
	tc = store_obj_parse(oc);
	assert_non_null(tc);
	assert_null(cJSON_GetObjectItem(tc, "status"));
	assert_string_equal(json_str(tc, "metadata.resourceVersion", ""), "3");
	assert_string_equal(json_str(tc, "metadata.uid", ""), "u");
	store_obj_unref(oa);
	store_obj_unref(ob);
	store_obj_unref(oc);
	store_close(s);
}

/*
 * Random writes (seeded) against a model: a watch rebuilds the state from events, and it,
 * the store's list, the snapshots' texts and a reopened store must all agree.
 */
struct model {
	char keys[200][48];
	uint64_t rvs[200];
	int n;
	uint64_t last_rv;
	bool partial; /* started mid-stream: keys may be unknown */
};

static int model_find(struct model *m, const char *key)
{
	for (int i = 0; i < m->n; i++)
		if (streq(m->keys[i], key))
			return i;
	return -1;
}

static void model_fn(const struct store_event *ev, void *userdata)
{
	struct model *m = userdata;
	char key[48];
	int i;

	assert_true(ev->rv == m->last_rv + 1); /* one resource watched, every commit seen */
	m->last_rv = ev->rv;
	snprintf(key, sizeof(key), "%s/%s", ev->obj->ns, ev->obj->name);
	i = model_find(m, key);
	if (m->partial)
		return;
	if (ev->type == STORE_DELETED) {
		assert_true(i >= 0);
		m->n--;
		memmove(m->keys[i], m->keys[i + 1], (size_t)(m->n - i) * sizeof(m->keys[0]));
		memmove(&m->rvs[i], &m->rvs[i + 1], (size_t)(m->n - i) * sizeof(m->rvs[0]));
		return;
	}
	assert_true((ev->type == STORE_ADDED) == (i < 0));
	if (i < 0) {
		i = m->n++;
		snprintf(m->keys[i], sizeof(m->keys[i]), "%s", key);
	}
	m->rvs[i] = ev->rv;
}

struct check {
	struct model *m;
	char prev[48];
	int seen;
};

static int check_fn(struct store_obj *o, void *userdata)
{
	struct check *c = userdata;
	char key[48], rv[24];
	_cleanup_json_ cJSON *t = store_obj_parse(o);
	int i;

	snprintf(key, sizeof(key), "%s/%s", o->ns, o->name);
	assert_true(strcmp(c->prev, key) < 0); /* ns names have equal length: plain order */
	snprintf(c->prev, sizeof(c->prev), "%s", key);
	i = model_find(c->m, key);
	assert_true(i >= 0);
	assert_true(c->m->rvs[i] == o->rv);
	assert_non_null(t);
	snprintf(rv, sizeof(rv), "%" PRIu64, o->rv);
	assert_string_equal(json_str(t, "metadata.resourceVersion", ""), rv);
	assert_string_equal(json_str(t, "metadata.name", ""), o->name);
	assert_string_equal(json_str(t, "metadata.uid", ""), o->uid);
	c->seen++;
	return 0;
}

static void check_store(struct store *s, struct model *m)
{
	struct check c = { .m = m };

	assert_int_equal(store_list(s, "pods", NULL, NULL, NULL, check_fn, &c), 0);
	assert_int_equal(c.seen, m->n);
	assert_int_equal(store_count(s, "pods", NULL), (size_t)m->n);
}

static void test_random_against_model(void **state)
{
	const char *path = *state;
	struct store *s = open_store(path, 64);
	struct model m = { 0 };
	struct store_watch *w;
	unsigned seed = 1;

	assert_int_equal(store_watch_add(s, "pods", 0, model_fn, &m, &w), 0);
	for (int op = 0; op < 3000; op++) {
		char ns[8], name[16], v[16];
		_cleanup_json_ cJSON *o = NULL, *st = NULL;
		struct err e = { 0 };
		int k = rand_r(&seed) % 150, r;

		snprintf(ns, sizeof(ns), "ns%d", k % 3);
		snprintf(name, sizeof(name), "p%03d", k);
		snprintf(v, sizeof(v), "v%d", rand_r(&seed) % 4);
		switch (rand_r(&seed) % 4) {
		case 0:
			o = pod(ns, name, NULL, v, NULL, NULL);
			r = store_create(s, "pods", ns, name, o, NULL, &e);
			assert_true(r == 0 || r == -EEXIST);
			break;
		case 1:
			o = pod(ns, name, NULL, v, NULL, NULL);
			r = store_update(s, "pods", ns, name, o, 0, NULL, &e);
			assert_true(r == 0 || r == -ENOENT);
			break;
		case 2:
			st = cJSON_CreateObject();
			cJSON_AddStringToObject(st, "phase", v);
			r = store_update_status(s, "pods", ns, name, st, 0, NULL, &e);
			assert_true(r == 0 || r == -ENOENT);
			break;
		default:
			r = store_delete(s, "pods", ns, name, 0, NULL, NULL, &e);
			assert_true(r == 0 || r == -ENOENT);
		}
		if (op % 500 == 0)
			check_store(s, &m);
		/* a resume from anywhere in the window replays the same tail */
		if (op % 700 == 0 && store_rv_oldest(s) > 0) {
			struct model tail = { .partial = true };
			struct store_watch *tw;

			tail.last_rv = store_rv_oldest(s);
			assert_int_equal(store_watch_add(s, "pods", tail.last_rv, model_fn, &tail,
							 &tw),
					 0);
			assert_true(tail.last_rv == store_rv(s));
			store_watch_cancel(tw);
		}
	}
	assert_true(m.last_rv == store_rv(s));
	check_store(s, &m);
	store_close(s);
	s = open_store(path, 0);
	check_store(s, &m);
	store_close(s);
}

/* Enough objects to grow the hash table and the sorted arrays several times. */
static void test_many_objects(void **state)
{
	struct store *s = open_store(NULL, 0);
	char ns[8], name[16];

	for (int i = 0; i < 5000; i++) {
		snprintf(ns, sizeof(ns), "n%d", i % 7);
		snprintf(name, sizeof(name), "p%d", i);
		create_pod(s, ns, name, NULL);
	}
	for (int i = 0; i < 5000; i++) {
		struct store_obj *o = NULL;

		snprintf(ns, sizeof(ns), "n%d", i % 7);
		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(store_get(s, "pods", ns, name, &o), 0);
		assert_int_equal(o->rv, i + 1);
		store_obj_unref(o);
	}
	assert_int_equal(store_count(s, "pods", NULL), 5000);
	assert_int_equal(store_count(s, "pods", "n3"), 714);
	store_close(s);
}

static void test_uid_generated_and_kept(void **state)
{
	struct store *s = open_store(NULL, 0);
	_cleanup_json_ cJSON *o = pod("default", "p", NULL, NULL, NULL, NULL);
	_cleanup_json_ cJSON *t = NULL;
	struct store_obj *a = NULL, *b = NULL;
	struct err e = { 0 };

	assert_int_equal(store_create(s, "pods", "default", "p", o, &a, &e), 0);
	assert_int_equal(strlen(a->uid), 36);
	t = store_obj_parse(a);
	assert_string_equal(json_str(t, "metadata.uid", ""), a->uid);
	/* an update without uid keeps the stored one */
	json_set_str(json_path(o, "spec"), "nodeName", "x");
	assert_int_equal(store_update(s, "pods", "default", "p", o, 0, &b, &e), 0);
	assert_string_equal(b->uid, a->uid);
	store_obj_unref(a);
	store_obj_unref(b);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_get),
		cmocka_unit_test(test_errors_messages),
		cmocka_unit_test(test_list_order_filter_cursor),
		cmocka_unit_test(test_list_mutation_in_callback),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_status_register),
		cmocka_unit_test(test_delete_tombstone_recreate),
		cmocka_unit_test_setup_teardown(test_persistence, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_survives_kill, tmp_setup, tmp_teardown),
		cmocka_unit_test(test_watch_replay_and_stream),
		cmocka_unit_test_setup_teardown(test_watch_gone, tmp_setup, tmp_teardown),
		cmocka_unit_test(test_watch_window_bytes),
		cmocka_unit_test(test_watch_cancel_in_callback),
		cmocka_unit_test(test_watch_cancel_during_replay),
		cmocka_unit_test(test_watch_reentrant),
		cmocka_unit_test(test_hlc_fake_clock_backwards),
		cmocka_unit_test(test_odd_shapes),
		cmocka_unit_test(test_many_objects),
		cmocka_unit_test_setup_teardown(test_random_against_model, tmp_setup, tmp_teardown),
		cmocka_unit_test(test_uid_generated_and_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
