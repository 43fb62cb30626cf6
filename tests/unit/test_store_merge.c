// SPDX-License-Identifier: Apache-2.0
/*
 * Merging registers between stores (sched/store_merge.c): the register order, uid-aware
 * merges, the sticky fields, clock refusal, resourceVersion bases, digests, tombstone
 * collection, and a randomized test in the shape of test_store.c's: random local writes on
 * several stores, their registers delivered to the others in random orders (duplicated,
 * batched, some deferred), must end in byte-identical register dumps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "lib/json.h"
#include "lib/macro.h"
#include "sched/hlc.h"
#include "sched/repl_wire.h"
#include "sched/store.h"

#define T0 1700000000000ull

struct node {
	struct store *s;
	uint64_t now;
	char name[8];
	uint64_t events;
	struct store_watch *w;
};

static uint64_t node_now(void *userdata)
{
	return ((struct node *)userdata)->now;
}

static void count_fn(const struct store_event *ev, void *userdata)
{
	((struct node *)userdata)->events++;
}

/* node_open() opens the store with .merge_reprint (remote bodies always parsed and printed) */
static bool open_reprint;

static void node_open(struct node *n, const char *name, const char *path, bool fixed_base)
{
	struct store_options o = {
		.merge_reprint = open_reprint,
		.path = path,
		.node_name = name,
		.clock = node_now,
		.clock_data = n,
		.seq_base_set = fixed_base,
	};

	snprintf(n->name, sizeof(n->name), "%s", name);
	if (!n->now)
		n->now = T0;
	n->events = 0;
	assert_int_equal(store_open(&o, &n->s), 0);
	assert_int_equal(store_watch_add(n->s, NULL, 0, count_fn, n, &n->w), 0);
}

static void node_close(struct node *n)
{
	n->s = store_close(n->s);
}

static cJSON *pod(const char *name, const char *app, const char *node, bool finalizers)
{
	cJSON *o = cJSON_CreateObject(), *m, *spec;

	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Pod");
	m = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(m, "name", name);
	cJSON_AddStringToObject(m, "namespace", "default");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "labels"), "app", app);
	if (finalizers) {
		cJSON *f = cJSON_AddArrayToObject(m, "finalizers");

		cJSON_AddItemToArray(f, cJSON_CreateString("f1"));
		cJSON_AddItemToArray(f, cJSON_CreateString("f2"));
	}
	spec = cJSON_AddObjectToObject(o, "spec");
	if (node)
		cJSON_AddStringToObject(spec, "nodeName", node);
	return o;
}

/* --- register messages, as replication would carry them --- */

struct msg {
	struct store_reg r;
	char *resource, *ns, *name, *uid, *node, *body, *sticky;
};

struct msgs {
	struct msg *v;
	size_t n, cap;
	const char *only_name; /* capture this key only */
};

static void msg_copy(struct msgs *m, const struct store_reg *r)
{
	struct msg *x;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->v = realloc(m->v, m->cap * sizeof(*m->v));
		assert_non_null(m->v);
	}
	x = &m->v[m->n++];
	*x = (struct msg){ .r = *r };
	x->r.resource = x->resource = strdup(r->resource);
	x->r.ns = x->ns = strdup(r->ns);
	x->r.name = x->name = strdup(r->name);
	x->r.uid = x->uid = strdup(r->uid);
	x->r.node = x->node = strdup(r->node ? r->node : "");
	x->r.body = x->body = r->body ? strndup(r->body, r->body_len) : NULL;
	x->r.sticky = x->sticky = r->sticky ? strdup(r->sticky) : NULL;
}

static int capture_fn(const struct store_reg *spec, const struct store_reg *status, void *ud)
{
	struct msgs *m = ud;

	if (m->only_name && strcmp(spec->name, m->only_name) != 0)
		return 0;
	msg_copy(m, spec);
	if (status)
		msg_copy(m, status);
	return 0;
}

/* The registers of one key, as its node would push them after a write. */
static void capture(struct msgs *m, struct store *s, const char *name)
{
	uint32_t b = store_key_bucket("pods", "default", name);

	m->only_name = name;
	assert_int_equal(store_reg_list(s, "pods", b, b + 1, capture_fn, m), 0);
	m->only_name = NULL;
}

static void msgs_free(struct msgs *m)
{
	for (size_t i = 0; i < m->n; i++) {
		struct msg *x = &m->v[i];

		free(x->resource);
		free(x->ns);
		free(x->name);
		free(x->uid);
		free(x->node);
		free(x->body);
		free(x->sticky);
	}
	free(m->v);
	*m = (struct msgs){ 0 };
}

/* Everything of a onto b, until nothing is deferred. */
static void sync_all(struct node *a, struct node *b)
{
	struct msgs m = { 0 };

	assert_int_equal(store_reg_list(a->s, NULL, 0, STORE_DIGEST_BUCKETS, capture_fn, &m), 0);
	for (int round = 0; round < 4; round++)
		for (size_t i = 0; i < m.n; i++) {
			int r = store_merge_register(b->s, &m.v[i].r);

			assert_true(r == 0 || r == 1 || r == -EAGAIN);
		}
	msgs_free(&m);
}

static char *dump(struct node *n)
{
	char *d = NULL;

	assert_int_equal(store_registers_dump(n->s, NULL, &d, NULL), 0);
	return d;
}

static cJSON *get(struct node *n, const char *name)
{
	struct store_obj *o = NULL;
	cJSON *t;

	if (store_get(n->s, "pods", "default", name, &o) < 0)
		return NULL;
	t = store_obj_parse(o);
	store_obj_unref(o);
	return t;
}

/* A write from another node lands with a local resourceVersion and one event; again: none. */
static void test_merge_applies_once(void **state)
{
	struct node a = { 0 }, b = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, false), *ga = NULL, *gb = NULL;
	struct msgs m = { 0 };
	struct store_obj *oa = NULL, *ob = NULL;
	uint64_t rv, ev;

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, &oa, NULL), 0);
	capture(&m, a.s, "p");
	assert_int_equal(m.n, 1);
	rv = store_rv(b.s);
	assert_int_equal(store_merge_register(b.s, &m.v[0].r), 1);
	assert_int_equal(store_rv(b.s), rv + 1);
	assert_int_equal(b.events, 1);
	assert_int_equal(store_get(b.s, "pods", "default", "p", &ob), 0);
	assert_string_equal(ob->uid, oa->uid);
	assert_true(ob->spec_hlc == oa->spec_hlc && ob->born == oa->born);
	assert_string_equal(ob->spec_node, "a");
	assert_true(ob->rv != oa->rv); /* each node's sequence */
	ga = store_obj_parse(oa);
	gb = store_obj_parse(ob);
	cJSON_DeleteItemFromObject(json_path(ga, "metadata"), "resourceVersion");
	cJSON_DeleteItemFromObject(json_path(gb, "metadata"), "resourceVersion");
	assert_true(cJSON_Compare(ga, gb, true));

	/* the same version again, and an older one: nothing committed */
	ev = b.events;
	rv = store_rv(b.s);
	assert_int_equal(store_merge_register(b.s, &m.v[0].r), 0);
	m.v[0].r.hlc--;
	m.v[0].r.born--;
	assert_int_equal(store_merge_register(b.s, &m.v[0].r), 0);
	assert_int_equal(store_rv(b.s), rv);
	assert_int_equal(b.events, ev);

	/* receiving advanced b's clock: b's next write is newer than a's */
	{
		_cleanup_json_ cJSON *q = pod("p", "db", NULL, false);
		struct store_obj *o2 = NULL;

		b.now = T0 - 5000; /* b's wall clock is behind */
		assert_int_equal(store_update(b.s, "pods", "default", "p", q, 0, &o2, NULL), 0);
		assert_true(o2->spec_hlc > oa->spec_hlc);
		store_obj_unref(o2);
	}
	store_obj_unref(oa);
	store_obj_unref(ob);
	msgs_free(&m);
	node_close(&a);
	node_close(&b);
}

/* A clock more than 500 ms ahead is refused and counted; 400 ms ahead is fine. */
static void test_merge_clock_ahead(void **state)
{
	struct node a = { 0 }, b = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, false), *q = pod("q", "web", NULL, false);
	struct msgs m = { 0 };
	struct store_stats st;

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	a.now = T0 + 3600 * 1000;
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, NULL, NULL), 0);
	capture(&m, a.s, "p");
	assert_int_equal(store_merge_register(b.s, &m.v[0].r), -ERANGE);
	store_stats_get(b.s, &st);
	assert_int_equal(st.clock_refused, 1);
	assert_int_equal(store_count(b.s, "pods", NULL), 0);
	msgs_free(&m);

	node_close(&a);
	a.now = T0 + 400;
	node_open(&a, "a", NULL, false);
	assert_int_equal(store_create(a.s, "pods", "default", "q", q, NULL, NULL), 0);
	capture(&m, a.s, "q");
	assert_int_equal(store_merge_register(b.s, &m.v[0].r), 1);
	msgs_free(&m);
	node_close(&a);
	node_close(&b);
}

/* Two creates of one name: the later-born uid wins everywhere, and the loser's status goes. */
static void test_merge_uid_aware(void **state)
{
	struct node a = { 0 }, b = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, false), *st = cJSON_CreateObject();
	_cleanup_json_ cJSON *ta = NULL, *tb = NULL;
	_cleanup_free_ char *da = NULL, *db = NULL;
	struct store_obj *oa = NULL, *ob = NULL;
	struct msgs m = { 0 };

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, &oa, NULL), 0);
	cJSON_AddStringToObject(st, "phase", "Running");
	assert_int_equal(store_update_status(a.s, "pods", "default", "p", st, 0, NULL, NULL), 0);
	b.now = T0 + 10;
	assert_int_equal(store_create(b.s, "pods", "default", "p", p, &ob, NULL), 0);
	/* a's status arrives at b before a's spec: an older uid's, dropped */
	capture(&m, a.s, "p");
	assert_int_equal(m.n, 2);
	assert_int_equal(store_merge_register(b.s, &m.v[1].r), 0);
	assert_int_equal(store_merge_register(b.s, &m.v[0].r), 0);
	msgs_free(&m);
	sync_all(&b, &a);
	ta = get(&a, "p");
	tb = get(&b, "p");
	assert_string_equal(json_str(ta, "metadata.uid", ""), ob->uid);
	assert_null(json_path(ta, "status")); /* a's old uid's status went with it */
	assert_null(json_path(tb, "status"));
	da = dump(&a);
	db = dump(&b);
	assert_string_equal(da, db);
	store_obj_unref(oa);
	store_obj_unref(ob);
	node_close(&a);
	node_close(&b);
}

/* A label edit from a node that had not seen the binding / deletion keeps both. */
static void test_merge_sticky(void **state)
{
	struct node a = { 0 }, b = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, true), *t = NULL;
	_cleanup_free_ char *da = NULL, *db = NULL;

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, NULL, NULL), 0);
	sync_all(&a, &b);

	/* a binds, then starts deleting and drops finalizer f1; b (later) edits a label */
	a.now += 10;
	json_set_str(json_path(p, "spec"), "nodeName", "node-a");
	assert_int_equal(store_update(a.s, "pods", "default", "p", p, 0, NULL, NULL), 0);
	json_set_str(json_path(p, "metadata"), "deletionTimestamp", "2026-01-01T00:00:00Z");
	assert_int_equal(store_update(a.s, "pods", "default", "p", p, 0, NULL, NULL), 0);
	cJSON_DeleteItemFromArray(json_path(p, "metadata.finalizers"), 0);
	assert_int_equal(store_update(a.s, "pods", "default", "p", p, 0, NULL, NULL), 0);
	b.now += 50;
	{
		_cleanup_json_ cJSON *q = pod("p", "edited", NULL, true);

		assert_int_equal(store_update(b.s, "pods", "default", "p", q, 0, NULL, NULL), 0);
	}
	sync_all(&a, &b);
	sync_all(&b, &a);
	da = dump(&a);
	db = dump(&b);
	assert_string_equal(da, db);
	t = get(&a, "p");
	assert_string_equal(json_str(t, "metadata.labels.app", ""), "edited");
	assert_string_equal(json_str(t, "spec.nodeName", ""), "node-a");
	assert_string_equal(json_str(t, "metadata.deletionTimestamp", ""), "2026-01-01T00:00:00Z");
	assert_int_equal(cJSON_GetArraySize(json_path(t, "metadata.finalizers")), 1);
	assert_string_equal(cJSON_GetArrayItem(json_path(t, "metadata.finalizers"), 0)->valuestring, "f2");
	cJSON_Delete(t);

	/* a competing later binding on b loses to a's earlier one */
	t = get(&b, "p");
	assert_string_equal(json_str(t, "spec.nodeName", ""), "node-a");
	node_close(&a);
	node_close(&b);
}

/* A tombstone beats any later edit of its uid from a node that had not seen it. */
static void test_merge_delete_wins(void **state)
{
	struct node a = { 0 }, b = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, false);
	_cleanup_free_ char *da = NULL, *db = NULL;

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, NULL, NULL), 0);
	sync_all(&a, &b);
	assert_int_equal(store_delete(a.s, "pods", "default", "p", 0, NULL, NULL, NULL), 0);
	b.now += 100;
	json_set_str(json_path(p, "metadata.labels"), "app", "later");
	assert_int_equal(store_update(b.s, "pods", "default", "p", p, 0, NULL, NULL), 0);
	sync_all(&b, &a);
	assert_int_equal(store_count(a.s, "pods", NULL), 0);
	sync_all(&a, &b);
	assert_int_equal(store_count(b.s, "pods", NULL), 0);
	da = dump(&a);
	db = dump(&b);
	assert_string_equal(da, db);
	assert_non_null(strstr(da, " deleted "));
	node_close(&a);
	node_close(&b);
}

/* Random bases: one node's resourceVersion is a conflict or 410 on another, never a match. */
static void test_rv_bases(void **state)
{
	struct node a = { 0 }, b = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, false);
	struct store_obj *oa = NULL;
	struct store_watch *w = NULL;
	struct err e = { 0 };

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	assert_true(store_rv(a.s) != store_rv(b.s));
	assert_true(store_rv(a.s) < (UINT64_C(1) << 48));
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, &oa, NULL), 0);
	sync_all(&a, &b);
	assert_int_equal(store_update(b.s, "pods", "default", "p", p, oa->rv, NULL, &e), -ECANCELED);
	assert_int_equal(e.code, 409);
	if (oa->rv > store_rv(b.s) || oa->rv < store_rv_oldest(b.s))
		assert_int_equal(store_watch_add(b.s, "pods", oa->rv, count_fn, &b, &w), -ENODATA);
	store_obj_unref(oa);
	node_close(&a);
	node_close(&b);
}

static int tmp_setup(void **state)
{
	char *path = strdup("/tmp/shoal-test-merge-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	*state = path;
	return 0;
}

static int tmp_teardown(void **state)
{
	char *path = *state, buf[512];

	unlink(path);
	snprintf(buf, sizeof(buf), "%s-wal", path);
	unlink(buf);
	snprintf(buf, sizeof(buf), "%s-shm", path);
	unlink(buf);
	free(path);
	return 0;
}

/* Tombstones persist with their versions; collection drops old ones and never reuses rvs. */
static void test_tombstones(void **state)
{
	const char *path = *state;
	struct node a = { 0 }, b = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, false);
	_cleanup_free_ char *d1 = NULL, *d2 = NULL, *d3 = NULL;
	uint64_t rv, base, dig;

	node_open(&a, "a", path, false);
	base = store_rv(a.s);
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, NULL, NULL), 0);
	assert_int_equal(store_create(a.s, "pods", "default", "q", p, NULL, NULL), 0);
	a.now += 1000;
	assert_int_equal(store_delete(a.s, "pods", "default", "p", 0, NULL, NULL, NULL), 0);
	a.now += 1000;
	assert_int_equal(store_delete(a.s, "pods", "default", "q", 0, NULL, NULL, NULL), 0);
	rv = store_rv(a.s);
	d1 = dump(&a);
	dig = store_digest(a.s, "pods", 0, STORE_DIGEST_BUCKETS);
	node_close(&a);

	/* the base was persisted, the tombstones came back with their versions */
	node_open(&a, "a", path, false);
	assert_int_equal(store_rv(a.s), rv);
	d2 = dump(&a);
	assert_string_equal(d1, d2);
	assert_true(store_digest(a.s, "pods", 0, STORE_DIGEST_BUCKETS) == dig);

	/* a stale live write of a deleted uid is refused by the tombstone */
	b.now = a.now;
	node_open(&b, "b", NULL, false);
	sync_all(&a, &b);
	assert_int_equal(store_count(b.s, "pods", NULL), 0);

	/* collect those older than q's deletion: p goes, q stays */
	assert_int_equal(store_tombstones_collect(a.s, HLC_MAKE(T0 + 1500, 0)), 1);
	assert_true(store_digest(a.s, "pods", 0, STORE_DIGEST_BUCKETS) != dig);
	d3 = dump(&a);
	assert_null(strstr(d3, "default/p "));
	assert_non_null(strstr(d3, "default/q "));
	node_close(&a);
	node_open(&a, "a", path, false);
	assert_int_equal(store_rv(a.s), rv); /* the floor held */
	assert_true(store_rv(a.s) > base);
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, NULL, NULL), 0);
	assert_int_equal(store_rv(a.s), rv + 1);
	node_close(&a);
	node_close(&b);
}

static int64_t sql_count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *q = NULL;
	int64_t n = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return n;
}

/* A file from before replication (no born/sticky columns) opens and keeps its sequence. */
static void test_old_file_migrates(void **state)
{
	const char *path = *state;
	struct node a = { 0 };
	_cleanup_json_ cJSON *p = pod("new", "web", NULL, false), *t = NULL;
	_cleanup_free_ char *d = NULL;
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "CREATE TABLE objects (resource TEXT NOT NULL, ns TEXT NOT NULL,"
			     " name TEXT NOT NULL, uid TEXT NOT NULL, rv INTEGER NOT NULL,"
			     " spec TEXT NOT NULL, spec_hlc INTEGER NOT NULL, spec_node TEXT NOT NULL,"
			     " status TEXT, status_hlc INTEGER NOT NULL DEFAULT 0, status_node TEXT,"
			     " deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (resource, ns, name));"
			     "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1),"
			     " seq INTEGER NOT NULL, hlc INTEGER NOT NULL);"
			     "INSERT INTO meta VALUES (1, 7, 0);"
			     "INSERT INTO objects VALUES ('pods', 'default', 'old', 'u-old', 7,"
			     " '{\"metadata\":{\"name\":\"old\",\"uid\":\"u-old\"}}', 5, 'a',"
			     " '{\"phase\":\"Running\"}', 6, 'a', 0);",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);

	node_open(&a, "a", path, false);
	assert_int_equal(store_rv(a.s), 7);
	t = get(&a, "old");
	assert_string_equal(json_str(t, "status.phase", ""), "Running");
	assert_int_equal(store_create(a.s, "pods", "default", "new", p, NULL, NULL), 0);
	assert_int_equal(store_rv(a.s), 8);
	d = dump(&a);
	assert_non_null(strstr(d, "pods default/old uid=u-old born=0 spec=5@a status=6@a"));
	node_close(&a);
	node_open(&a, "a", path, false);
	assert_int_equal(store_rv(a.s), 8);
	node_close(&a);
	/* the (resource, ns, name) index went with the migration; the rows stayed */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sql_count(db, "SELECT count(*) FROM pragma_index_list('objects')"), 0);
	assert_int_equal(sql_count(db, "SELECT count(*) FROM objects"), 2);
	/* and the old table's pages did not stay behind as free pages (VACUUM once) */
	assert_int_equal(sql_count(db, "SELECT freelist_count FROM pragma_freelist_count"), 0);
	sqlite3_close(db);
}

/* Merged state (born, sticky fields, versions) is what a reopened store loads back. */
static void test_merged_state_persists(void **state)
{
	const char *path = *state;
	struct node a = { 0 }, b = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, true);
	_cleanup_free_ char *d1 = NULL, *d2 = NULL;

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", path, false);
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, NULL, NULL), 0);
	sync_all(&a, &b);
	json_set_str(json_path(p, "spec"), "nodeName", "node-a");
	assert_int_equal(store_update(a.s, "pods", "default", "p", p, 0, NULL, NULL), 0);
	json_set_str(json_path(p, "metadata"), "deletionTimestamp", "2026-01-01T00:00:00Z");
	assert_int_equal(store_update(a.s, "pods", "default", "p", p, 0, NULL, NULL), 0);
	cJSON_DeleteItemFromArray(json_path(p, "metadata.finalizers"), 1);
	assert_int_equal(store_update(a.s, "pods", "default", "p", p, 0, NULL, NULL), 0);
	sync_all(&a, &b);
	d1 = dump(&b);
	assert_non_null(strstr(d1, "\"fin\":[\"f2\"]"));
	node_close(&b);
	node_open(&b, "b", path, false);
	d2 = dump(&b);
	assert_string_equal(d1, d2);
	node_close(&a);
	node_close(&b);
}

/* --- bulk merges (store_merge_hold): events held until the commit, no rv reused --- */

struct seen {
	uint64_t n, last_rv, max_rv;
	bool in_order;
	bool all_merged; /* every event so far was a merge */
};

static void seen_fn(const struct store_event *ev, void *userdata)
{
	struct seen *x = userdata;

	if (ev->rv <= x->last_rv)
		x->in_order = false;
	if (!ev->merged)
		x->all_merged = false;
	x->last_rv = ev->rv;
	if (ev->rv > x->max_rv)
		x->max_rv = ev->rv;
	x->n++;
}

/* n pods on a fresh source store; their registers into m */
static void source_pods(struct node *a, struct msgs *m, const char *prefix, int n)
{
	struct err e = { 0 };
	char name[32];

	for (int i = 0; i < n; i++) {
		_cleanup_json_ cJSON *o = NULL;

		snprintf(name, sizeof(name), "%s%03d", prefix, i);
		o = pod(name, "x", NULL, false);
		assert_int_equal(store_create(a->s, "pods", "default", name, o, NULL, &e), 0);
	}
	assert_int_equal(store_reg_list(a->s, "pods", 0, STORE_DIGEST_BUCKETS, capture_fn, m), 0);
}

static int hold(struct store *s, struct msgs *m, size_t from, size_t n)
{
	struct store_reg regs[n];

	for (size_t k = 0; k < n; k++)
		regs[k] = m->v[from + k].r;
	return store_merge_hold(s, regs, n, NULL);
}

/*
 * Merges held in a bulk reach the index at once (a GET sees them) but watchers only when the
 * bulk commits, then all of them in rv order, flagged merged; a local write commits the bulk
 * first, and watchers see its held merges before the local write.
 */
static void test_bulk_holds_events(void **state)
{
	struct node a = { 0 }, b = { 0 };
	struct msgs m = { 0 }, m2 = { 0 };
	struct seen x = { .in_order = true, .all_merged = true };
	struct store_watch *w = NULL;
	struct store_obj *o = NULL;
	struct err e = { 0 };
	uint64_t rv0;

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	assert_int_equal(store_watch_add(b.s, "pods", 0, seen_fn, &x, &w), 0);
	source_pods(&a, &m, "p", 40);
	assert_int_equal(m.n, 40);
	rv0 = store_rv(b.s);
	assert_int_equal(hold(b.s, &m, 0, 25), 25);
	assert_true(store_merge_held(b.s));
	assert_int_equal(hold(b.s, &m, 25, 15), 15);
	assert_int_equal(x.n, 0);
	assert_int_equal(b.events, 0);
	assert_int_equal(store_rv(b.s), rv0 + 40);
	assert_int_equal(store_get(b.s, "pods", "default", "p007", &o), 0);
	store_obj_unref(o);
	/* a watch added now starts at the index: it gets none of the held events either */
	assert_int_equal(store_merge_commit(b.s), 0);
	assert_false(store_merge_held(b.s));
	assert_int_equal(x.n, 40);
	assert_int_equal(b.events, 40);
	assert_true(x.in_order && x.all_merged);
	assert_int_equal(x.max_rv, rv0 + 40);

	/* again, then a local write on b: the held merges go first, then the write */
	{
		_cleanup_json_ cJSON *q = pod("local", "y", NULL, false);

		source_pods(&a, &m2, "q", 10);
		rv0 = store_rv(b.s);
		assert_int_equal(hold(b.s, &m2, 0, m2.n), 10);
		assert_int_equal(x.n, 40);
		assert_int_equal(store_create(b.s, "pods", "default", "local", q, NULL, &e), 0);
		assert_false(store_merge_held(b.s));
		assert_int_equal(x.n, 40 + 10 + 1);
		assert_int_equal(x.max_rv, rv0 + 11);
		assert_true(x.in_order);
		assert_false(x.all_merged); /* the last one, the local write */
	}
	store_watch_cancel(w);
	msgs_free(&m);
	msgs_free(&m2);
	node_close(&a);
	node_close(&b);
}

struct bulk_order {
	char last[32];
	size_t n;
	bool sorted;
};

static int bulk_order_fn(struct store_obj *o, void *userdata)
{
	struct bulk_order *x = userdata;

	if (x->n && strcmp(x->last, o->name) >= 0)
		x->sorted = false;
	snprintf(x->last, sizeof(x->last), "%s", o->name);
	x->n++;
	return 0;
}

static size_t list_sorted(struct store *s)
{
	struct bulk_order x = { .sorted = true };

	assert_int_equal(store_list(s, "pods", NULL, NULL, NULL, bulk_order_fn, &x), 0);
	assert_true(x.sorted);
	assert_int_equal(store_count(s, "pods", NULL), x.n);
	return x.n;
}

/*
 * A bulk sorts its new keys into the name-ordered arrays in large steps: lists during and after
 * it are complete and in order, also with keys created and deleted within the bulk.
 */
static void test_bulk_sorts_keys(void **state)
{
	struct node a = { 0 }, b = { 0 };
	struct msgs m = { 0 };
	struct err e = { 0 };
	unsigned seed = 11;
	size_t done = 0, n;

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	source_pods(&a, &m, "p", 6000);
	/* tombstones of 100 of them, after their creates */
	for (int i = 0; i < 6000; i += 60) {
		char name[16];

		snprintf(name, sizeof(name), "p%03d", i);
		assert_int_equal(store_delete(a.s, "pods", "default", name, 0, NULL, NULL, &e), 0);
		capture(&m, a.s, name);
	}
	n = m.n;
	/* creates in random order (digest buckets are), the tombstones last */
	for (size_t k = 6000 - 1; k > 0; k--) {
		size_t j = (size_t)rand_r(&seed) % (k + 1);
		struct msg t = m.v[k];

		m.v[k] = m.v[j];
		m.v[j] = t;
	}
	while (done < n) {
		size_t k = n - done < 256 ? n - done : 256;

		assert_true(hold(b.s, &m, done, k) >= 0);
		done += k;
		if (done == 3072 || done == 5120)
			assert_int_equal(list_sorted(b.s), done);
	}
	assert_int_equal(list_sorted(b.s), 5900);
	assert_int_equal(store_merge_commit(b.s), 0);
	assert_int_equal(list_sorted(b.s), 5900);
	msgs_free(&m);
	node_close(&a);
	node_close(&b);
}

/*
 * A process killed with a bulk open: the reopened store has what was committed, not the held
 * merges (anti-entropy brings them again), and its sequence starts above every rv handed out
 * before the kill, so no resourceVersion a reader or watcher saw is reused.
 */
static void test_bulk_kill_reuses_no_rv(void **state)
{
	const char *path = *state;
	struct node a = { 0 }, b = { 0 };
	struct msgs m = { 0 };
	struct store_obj *o = NULL;
	uint64_t seen[2] = { 0 }; /* the committed part's rv, the highest rv handed out */
	int pfd[2], status;
	pid_t pid;

	node_open(&a, "a", NULL, false);
	source_pods(&a, &m, "p", 60);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct seen x = { .in_order = true, .all_merged = true };
		struct store_watch *w = NULL;
		bool ok;

		close(pfd[0]);
		node_open(&b, "b", path, false);
		ok = store_watch_add(b.s, "pods", 0, seen_fn, &x, &w) == 0;
		/* 20 held and committed (watchers saw them), 40 held and never committed */
		ok = ok && hold(b.s, &m, 0, 20) == 20 && store_merge_commit(b.s) == 0 && x.n == 20;
		seen[0] = store_rv(b.s);
		ok = ok && hold(b.s, &m, 20, 40) == 40 && x.n == 20;
		/* a GET shows a held merge's rv */
		ok = ok && store_get(b.s, "pods", "default", "p059", &o) == 0 && o->rv > seen[0];
		seen[1] = store_rv(b.s);
		ok = ok && write(pfd[1], seen, sizeof(seen)) == sizeof(seen);
		_exit(ok ? 0 : 1); /* killed: no commit, no close */
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], seen, sizeof(seen)), sizeof(seen));
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(seen[1] >= seen[0] + 40);

	node_open(&b, "b", path, false);
	assert_true(store_rv(b.s) >= seen[1]);
	assert_int_equal(store_get(b.s, "pods", "default", "p000", &o), 0); /* committed */
	store_obj_unref(o);
	/* the first 20 in list order were committed, the rest lost */
	assert_int_equal(store_get(b.s, "pods", "default", m.v[19].r.name, &o), 0);
	store_obj_unref(o);
	assert_int_equal(store_get(b.s, "pods", "default", m.v[20].r.name, &o), -ENOENT);
	assert_int_equal(store_get(b.s, "pods", "default", m.v[59].r.name, &o), -ENOENT);
	/* merged again, they get rvs above everything seen before the kill */
	assert_int_equal(hold(b.s, &m, 20, 40), 40);
	assert_int_equal(store_merge_commit(b.s), 0);
	assert_int_equal(store_get(b.s, "pods", "default", m.v[20].r.name, &o), 0);
	assert_true(o->rv > seen[1]);
	store_obj_unref(o);
	node_close(&b);
	msgs_free(&m);
	node_close(&a);
}

static int fail_name(void *userdata, const char *resource, const char *ns, const char *name)
{
	return strcmp(name, (const char *)userdata) == 0 ? -EIO : 0;
}

/* node b's store at path, on b's clock, whose writes of the key named bad fail */
static void open_failing(const char *path, struct node *b, char *bad, struct store **s)
{
	struct store_options opt = {
		.path = path,
		.node_name = "b",
		.clock = node_now,
		.clock_data = b,
		.fault = fail_name,
		.fault_data = bad,
	};

	assert_int_equal(store_open(&opt, s), 0);
}

/*
 * A write failing in SQLite mid-bulk rolls the whole bulk back; its events (already in the
 * index) go out, and a reopened store reuses none of their rvs.
 */
static void test_bulk_rollback_reuses_no_rv(void **state)
{
	const char *path = *state;
	struct node a = { 0 }, b = { 0 };
	struct msgs m = { 0 };
	struct seen x = { .in_order = true, .all_merged = true };
	struct store_watch *w = NULL;
	struct store_obj *o = NULL;
	struct store *s = NULL;
	char bad[8];

	b.now = T0;
	node_open(&a, "a", NULL, false);
	source_pods(&a, &m, "p", 30);
	snprintf(bad, sizeof(bad), "%s", m.v[25].r.name);
	open_failing(path, &b, bad, &s);
	assert_int_equal(store_watch_add(s, "pods", 0, seen_fn, &x, &w), 0);
	assert_int_equal(hold(s, &m, 0, 20), 20);
	assert_int_equal(x.n, 0);
	assert_true(hold(s, &m, 20, 10) < 0);
	assert_false(store_merge_held(s));
	assert_true(x.n >= 20 && x.in_order);
	s = store_close(s);

	node_open(&b, "b", path, false);
	assert_true(store_rv(b.s) >= x.max_rv);
	assert_int_equal(store_get(b.s, "pods", "default", m.v[0].r.name, &o), -ENOENT);
	node_close(&b);
	msgs_free(&m);
	node_close(&a);
}

/*
 * The index is the only thing that keeps keys unique in the file: a key's entry keeps its
 * row's rowid. After a rolled-back batch the index still holds keys whose rows are gone; the
 * next write of such a key inserts its row again (with its rowid), and a reopened store has
 * one row per key.
 */
static void test_rows_after_rollback(void **state)
{
	const char *path = *state;
	struct node a = { 0 }, b = { 0 };
	struct msgs m = { 0 };
	struct store *s = NULL;
	struct store_obj *o = NULL;
	sqlite3 *db = NULL;
	char bad[8];
	_cleanup_json_ cJSON *p = NULL, *t = NULL;

	b.now = T0;
	node_open(&a, "a", NULL, false);
	source_pods(&a, &m, "p", 10);
	snprintf(bad, sizeof(bad), "%s", m.v[9].r.name);
	open_failing(path, &b, bad, &s);
	/* the batch fails at its last register: rolled back, the index keeps the others */
	{
		struct store_reg regs[10];

		for (size_t k = 0; k < 10; k++)
			regs[k] = m.v[k].r;
		assert_true(store_merge(s, regs, 10, NULL) < 0);
	}
	assert_int_equal(store_get(s, "pods", "default", m.v[0].r.name, &o), 0);
	store_obj_unref(o);
	/* an edit of a key whose row was rolled back writes its row again */
	p = pod(m.v[0].r.name, "edited", NULL, false);
	assert_int_equal(store_update(s, "pods", "default", m.v[0].r.name, p, 0, NULL, NULL), 0);
	/* the same register again commits nothing (the index has it): as before, its row is
	 * back only with the key's next write, or anti-entropy after a restart */
	assert_int_equal(store_merge(s, &m.v[1].r, 1, NULL), 0);
	s = store_close(s);

	node_open(&b, "b", path, false);
	t = get(&b, m.v[0].r.name);
	assert_non_null(t);
	assert_string_equal(json_str(t, "metadata.labels.app", ""), "edited");
	assert_int_equal(store_get(b.s, "pods", "default", m.v[2].r.name, &o), -ENOENT);
	node_close(&b);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sql_count(db, "SELECT count(*) FROM objects"), 1);
	sqlite3_close(db);
	msgs_free(&m);
	node_close(&a);
}

/*
 * Should a file ever hold two rows of one key, the later one (higher rowid) is the key's state
 * when it loads, and the earlier row is deleted.
 */
static void test_duplicate_row_loads_once(void **state)
{
	const char *path = *state;
	struct node a = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "one", NULL, false), *q = pod("q", "q", NULL, false);
	_cleanup_json_ cJSON *t = NULL;
	sqlite3 *db = NULL;
	uint64_t rv;

	node_open(&a, "a", path, false);
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, NULL, NULL), 0);
	assert_int_equal(store_create(a.s, "pods", "default", "q", q, NULL, NULL), 0);
	rv = store_rv(a.s);
	node_close(&a);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO objects(rowid, resource, ns, name, uid, rv, spec,"
				      " spec_hlc, spec_node, status, status_hlc, status_node, deleted,"
				      " born, sticky, status_term)"
				      " SELECT 100, resource, ns, name, uid, rv + 5,"
				      " replace(spec, '\"one\"', '\"two\"'), spec_hlc + 1, spec_node,"
				      " status, status_hlc, status_node, deleted, born, sticky,"
				      " status_term FROM objects WHERE name = 'p'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);

	node_open(&a, "a", path, false);
	assert_int_equal(a.events, 0);
	t = get(&a, "p");
	assert_non_null(t);
	assert_string_equal(json_str(t, "metadata.labels.app", ""), "two");
	assert_true(store_rv(a.s) >= rv + 4);
	node_close(&a);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sql_count(db, "SELECT count(*) FROM objects"), 2);
	assert_int_equal(sql_count(db, "SELECT rowid FROM objects WHERE name = 'p'"), 100);
	sqlite3_close(db);
	node_open(&a, "a", path, false);
	assert_true(store_rv(a.s) >= rv + 4);
	node_close(&a);
}

/* The cluster-constant hashes, computed here as specified: a keyed BLAKE2b-128 with the key
 * "shoal/registers/digest/v1" (the bucket of a key; a dump line's bodies=). */
static void test_digest_hashes_fixed(void **state)
{
	static const unsigned char key[crypto_generichash_KEYBYTES] = "shoal/registers/digest/v1";
	const char *body = "{\"metadata\":{\"name\":\"p\",\"uid\":\"u1\"}}";
	unsigned char out[crypto_generichash_BYTES_MIN], len[8];
	crypto_generichash_state st;
	struct node a = { 0 };
	uint32_t b;
	uint64_t h;
	char want[64];
	_cleanup_free_ char *d = NULL;
	struct store_reg r = {
		.kind = STORE_REG_SPEC,
		.resource = "pods",
		.ns = "default",
		.name = "p",
		.uid = "u1",
		.born = HLC_MAKE(T0 - 10, 0),
		.hlc = HLC_MAKE(T0 - 10, 0),
		.node = "b",
		.body = body,
		.body_len = strlen(body),
	};

	crypto_generichash_init(&st, key, sizeof(key), sizeof(out));
	crypto_generichash_update(&st, (const unsigned char *)"pods", 5);
	crypto_generichash_update(&st, (const unsigned char *)"default", 8);
	crypto_generichash_update(&st, (const unsigned char *)"p", 2);
	crypto_generichash_final(&st, out, sizeof(out));
	memcpy(&b, out, sizeof(b));
	assert_int_equal(store_key_bucket("pods", "default", "p"), b % STORE_DIGEST_BUCKETS);

	node_open(&a, "a", NULL, false);
	assert_int_equal(store_merge(a.s, &r, 1, NULL), 1);
	d = dump(&a);
	crypto_generichash_init(&st, key, sizeof(key), sizeof(out));
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)(strlen(body) >> (8 * i));
	crypto_generichash_update(&st, len, 8);
	crypto_generichash_update(&st, (const unsigned char *)body, strlen(body));
	memset(len, 0, sizeof(len));
	crypto_generichash_update(&st, len, 8);
	crypto_generichash_final(&st, out, sizeof(out));
	memcpy(&h, out, sizeof(h));
	snprintf(want, sizeof(want), "bodies=%016" PRIx64 "\n", h);
	assert_non_null(strstr(d, want));
	node_close(&a);
}

/*
 * Random local writes on three stores; each write's registers go to a log, and every store
 * takes messages from the log in its own random order (some twice, some in batches, a status
 * before its spec deferred and retried). At the end all stores have everything and must agree
 * byte for byte. Along the way: a stale merge commits nothing; no deletion or binding is lost.
 */
#define NN 3
#define NKEYS 6

struct uidinfo {
	char uid[40];
	bool deleted;          /* a tombstone was written */
	bool terminating;      /* a deletionTimestamp was written */
	char bind[8];          /* the earliest binding seen (by version) */
	uint64_t bind_hlc;
};

struct world {
	struct node n[NN];
	struct msgs log;
	size_t next[NN]; /* next log index each node has not looked at */
	struct uidinfo u[400];
	int nu;
};

static struct uidinfo *uid_info(struct world *w, const char *uid)
{
	for (int i = 0; i < w->nu; i++)
		if (!strcmp(w->u[i].uid, uid))
			return &w->u[i];
	assert_true(w->nu < (int)ARRAY_SIZE(w->u));
	snprintf(w->u[w->nu].uid, sizeof(w->u[0].uid), "%s", uid);
	return &w->u[w->nu++];
}

static void deliver(struct world *w, int to, struct msg *m)
{
	struct node *n = &w->n[to];
	uint64_t rv = store_rv(n->s), ev = n->events;
	int r = store_merge_register(n->s, &m->r);

	assert_true(r == 0 || r == 1 || r == -EAGAIN);
	if (r != 1) {
		assert_int_equal(store_rv(n->s), rv);
		assert_int_equal(n->events, ev);
	}
}

static void local_write(struct world *w, int at, unsigned *seed)
{
	struct node *n = &w->n[at];
	char name[8];
	_cleanup_json_ cJSON *cur = NULL, *o = NULL;
	struct store_obj *res = NULL;
	struct err e = { 0 };
	int op = rand_r(seed) % 8, r = 0;

	snprintf(name, sizeof(name), "k%d", rand_r(seed) % NKEYS);
	cur = get(n, name);
	if (!cur) {
		o = pod(name, "v0", NULL, rand_r(seed) % 2);
		r = store_create(n->s, "pods", "default", name, o, &res, &e);
		assert_int_equal(r, 0);
	} else {
		struct store_obj *g = NULL;

		o = cJSON_Duplicate(cur, true);
		cJSON_DeleteItemFromObject(o, "status");
		assert_int_equal(store_get(n->s, "pods", "default", name, &g), 0);
		switch (op) {
		case 0:
		case 1: {
			char v[8];

			snprintf(v, sizeof(v), "v%d", rand_r(seed) % 5);
			json_set_str(json_path(o, "metadata.labels"), "app", v);
			r = store_update(n->s, "pods", "default", name, o, 0, &res, &e);
			break;
		}
		case 2:
			if (json_path(o, "spec.nodeName"))
				break;
			json_set_str(json_path(o, "spec"), "nodeName", n->name);
			r = store_update(n->s, "pods", "default", name, o, 0, &res, &e);
			if (r == 0) {
				struct uidinfo *u = uid_info(w, g->uid);

				if (!u->bind_hlc || res->spec_hlc < u->bind_hlc) {
					u->bind_hlc = res->spec_hlc;
					snprintf(u->bind, sizeof(u->bind), "%s", n->name);
				}
			}
			break;
		case 3: {
			_cleanup_json_ cJSON *st = cJSON_CreateObject();
			char v[8];

			snprintf(v, sizeof(v), "P%d", rand_r(seed) % 4);
			cJSON_AddStringToObject(st, "phase", v);
			if (rand_r(seed) % 2) {
				r = store_update_status(n->s, "pods", "default", name, st, 0, &res,
							&e);
				break;
			}
			/* a controller's write at a random ownership term (maybe stale) */
			r = store_update_status_term(n->s, "pods", "default", name, st,
						     (uint64_t)(rand_r(seed) % 4), &res, &e);
			if (r == -ESTALE)
				r = 0;
			break;
		}
		case 4:
			if (json_path(o, "metadata.deletionTimestamp"))
				break;
			json_set_str(json_path(o, "metadata"), "deletionTimestamp", "2026-01-01T00:00:00Z");
			r = store_update(n->s, "pods", "default", name, o, 0, &res, &e);
			if (r == 0)
				uid_info(w, g->uid)->terminating = true;
			break;
		case 5:
			if (!json_path(o, "metadata.deletionTimestamp") ||
			    !cJSON_GetArraySize(json_path(o, "metadata.finalizers")))
				break;
			cJSON_DeleteItemFromArray(json_path(o, "metadata.finalizers"), 0);
			r = store_update(n->s, "pods", "default", name, o, 0, &res, &e);
			break;
		default:
			r = store_delete(n->s, "pods", "default", name, 0, NULL, &res, &e);
			if (r == 0)
				uid_info(w, g->uid)->deleted = true;
		}
		store_obj_unref(g);
		assert_int_equal(r, 0);
	}
	store_obj_unref(res);
	capture(&w->log, n->s, name);
}

static void pull(struct world *w, int to, unsigned *seed, size_t max)
{
	size_t n = w->log.n;

	/* mostly in order, sometimes an older message again, sometimes a batch */
	for (size_t k = 0; k < max && w->next[to] < n; k++) {
		if (rand_r(seed) % 5 == 0 && w->next[to] > 0) {
			deliver(w, to, &w->log.v[(size_t)rand_r(seed) % w->next[to]]);
			continue;
		}
		if (rand_r(seed) % 4 == 0) {
			size_t cnt = 1 + (size_t)rand_r(seed) % 4, i;
			struct store_reg regs[4];
			struct store_merge_stats st;

			for (i = 0; i < cnt && w->next[to] < n; i++)
				regs[i] = w->log.v[w->next[to]++].r;
			assert_true(store_merge(w->n[to].s, regs, i, &st) >= 0);
			assert_int_equal(st.refused, 0);
			continue;
		}
		/* skip ahead sometimes: a later message overtakes an earlier one */
		if (w->next[to] + 1 < n && rand_r(seed) % 3 == 0) {
			struct msg tmp = w->log.v[w->next[to]];

			deliver(w, to, &w->log.v[w->next[to] + 1]);
			deliver(w, to, &tmp);
			w->next[to] += 2;
			continue;
		}
		deliver(w, to, &w->log.v[w->next[to]++]);
	}
}

struct order {
	char last[64];
	size_t n;
};

static int order_fn(struct store_obj *o, void *ud)
{
	struct order *ord = ud;

	assert_true(strcmp(ord->last, o->name) < 0);
	snprintf(ord->last, sizeof(ord->last), "%s", o->name);
	ord->n++;
	return 0;
}

/* Listing gives every live key once, in name order (batches sort theirs in at their end). */
static void check_list_order(struct node *n)
{
	struct order ord = { "" };

	assert_int_equal(store_list(n->s, "pods", "default", NULL, NULL, order_fn, &ord), 0);
	assert_int_equal(ord.n, store_count(n->s, "pods", "default"));
	assert_int_equal(ord.n, store_count(n->s, "pods", NULL));
}

/*
 * A large batch of keys in random name order (a catch-up arrives by digest bucket) into a
 * store holding some already, with a key created and deleted within the batch: listed in
 * order, each once.
 */
static void test_merge_batch_order(void **state)
{
	struct node a = { 0 }, b = { 0 };
	struct msgs m = { 0 };
	struct store_merge_stats st;
	struct err e = { 0 };
	unsigned seed = 7;
	char name[16];
	int i;

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	for (i = 0; i < 600; i++) {
		_cleanup_json_ cJSON *o = NULL;

		snprintf(name, sizeof(name), "p%03d", (i * 7919) % 600);
		o = pod(name, "x", NULL, false);
		assert_int_equal(store_create(a.s, "pods", "default", name, o, NULL, &e), 0);
		if (i % 5 == 0)
			sync_all(&a, &b); /* b holds some of them already */
	}
	snprintf(name, sizeof(name), "p%03d", 599);
	capture(&m, a.s, name);
	assert_int_equal(store_delete(a.s, "pods", "default", name, 0, NULL, NULL, &e), 0);
	capture(&m, a.s, name); /* the same key created then deleted in the batch below */
	assert_int_equal(store_reg_list(a.s, "pods", 0, STORE_DIGEST_BUCKETS, capture_fn, &m), 0);
	for (size_t k = m.n - 1; k > 2; k--) {
		size_t j = 2 + (size_t)rand_r(&seed) % (k - 1);
		struct msg t = m.v[k];

		m.v[k] = m.v[j];
		m.v[j] = t;
	}
	{
		struct store_reg regs[m.n];

		for (size_t k = 0; k < m.n; k++)
			regs[k] = m.v[k].r;
		assert_true(store_merge(b.s, regs, m.n, &st) >= 0);
	}
	assert_int_equal(st.refused, 0);
	check_list_order(&b);
	assert_int_equal(store_count(b.s, "pods", NULL), 599);
	{
		_cleanup_free_ char *da = dump(&a), *db = dump(&b);

		assert_string_equal(da, db);
	}
	msgs_free(&m);
	node_close(&a);
	node_close(&b);
}

static void check_invariants(struct world *w, struct node *n)
{
	check_list_order(n);
	for (int k = 0; k < NKEYS; k++) {
		char name[8];
		_cleanup_json_ cJSON *t = NULL;
		struct uidinfo *u;

		snprintf(name, sizeof(name), "k%d", k);
		t = get(n, name);
		if (!t)
			continue;
		u = uid_info(w, json_str(t, "metadata.uid", ""));
		assert_false(u->deleted); /* a deleted uid never comes back */
		if (u->terminating)
			assert_non_null(json_path(t, "metadata.deletionTimestamp"));
		if (u->bind_hlc)
			assert_string_equal(json_str(t, "spec.nodeName", ""), u->bind);
	}
}

static cJSON *status_ready(int n)
{
	cJSON *st = cJSON_CreateObject();

	cJSON_AddNumberToObject(st, "readyReplicas", n);
	return st;
}

static uint64_t status_term_of(struct node *n, const char *name)
{
	struct store_obj *o = NULL;
	uint64_t t;

	assert_int_equal(store_get(n->s, "pods", "default", name, &o), 0);
	t = o->status_term;
	store_obj_unref(o);
	return t;
}

/* The status registers of a key as the wire carries them: encoded and decoded again. */
static void capture_wire(struct msgs *m, struct store *s, const char *name)
{
	struct msgs raw = { 0 };
	struct repl_buf b;
	struct repl_rd rd;
	enum repl_msg_type type;
	uint8_t *p, flags;
	uint32_t count;
	size_t len;

	capture(&raw, s, name);
	assert_int_equal(raw.n, 2);
	rbuf_init(&b, REPL_MSG_PUSH, 0);
	rbuf_key(&b, &raw.v[0].r, &raw.v[1].r);
	rbuf_set_count(&b, 1);
	assert_int_equal(rbuf_take(&b, &p, &len), 0);
	assert_int_equal(rrd_init(&rd, p, len, &type, &flags, &count), 0);
	{
		struct store_reg spec, status;

		assert_int_equal(rrd_key(&rd, &spec, &status), 0);
		assert_int_equal(status.kind, STORE_REG_STATUS);
		msg_copy(m, &spec);
		msg_copy(m, &status);
	}
	free(p);
	msgs_free(&raw);
}

/*
 * A stale owner's status write does not win over the new owner's, whatever the clocks: the
 * status register orders by (term, hlc, node). a owned the key (term 0); b took it over (term
 * 1); a, which has not seen that, writes later by its clock at term 0. Every replica, in either
 * delivery order, keeps b's status; a's next controller write at its term is refused; a client
 * write keeps the register's term; a claim at a higher term commits an unchanged status.
 */
static void test_status_term(void **state)
{
	const char *path = *state;
	struct node a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, false), *s1 = status_ready(1),
			     *s2 = status_ready(2), *s3 = status_ready(3), *s4 = status_ready(4);
	_cleanup_json_ cJSON *t = NULL;
	_cleanup_free_ char *da = NULL, *db = NULL, *dc = NULL, *dd = NULL, *dc2 = NULL;
	struct msgs ma = { 0 }, mb = { 0 };
	struct store_obj *o = NULL;
	struct err e = { 0 };
	uint64_t rv, ev;

	node_open(&a, "a", NULL, false);
	node_open(&b, "b", NULL, false);
	node_open(&c, "c", path, false);
	node_open(&d, "d", NULL, false);
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, NULL, NULL), 0);
	assert_int_equal(store_update_status_term(a.s, "pods", "default", "p", s1, 0, NULL, NULL),
			 0);
	sync_all(&a, &b);
	sync_all(&a, &c);
	sync_all(&a, &d);

	/* b takes over at term 1; a, cut off and with a clock 10 s ahead of b's, writes on */
	b.now = T0 + 1000;
	assert_int_equal(store_update_status_term(b.s, "pods", "default", "p", s2, 1, NULL, NULL),
			 0);
	a.now = T0 + 11000;
	assert_int_equal(store_update_status_term(a.s, "pods", "default", "p", s3, 0, NULL, NULL),
			 0);
	capture_wire(&ma, a.s, "p");
	capture_wire(&mb, b.s, "p");
	assert_int_equal(mb.v[1].r.term, 1);
	assert_true(ma.v[1].r.hlc > mb.v[1].r.hlc);
	b.now = c.now = d.now = a.now; /* (a's clock is not refused as too far ahead) */

	/* c gets a's then b's, d b's then a's: both keep b's */
	assert_int_equal(store_merge_register(c.s, &ma.v[1].r), 1);
	assert_int_equal(store_merge_register(c.s, &mb.v[1].r), 1);
	assert_int_equal(store_merge_register(d.s, &mb.v[1].r), 1);
	assert_int_equal(store_merge_register(d.s, &ma.v[1].r), 0);
	assert_int_equal(store_merge_register(a.s, &mb.v[1].r), 1);
	assert_int_equal(store_merge_register(b.s, &ma.v[1].r), 0);
	da = dump(&a);
	db = dump(&b);
	dc = dump(&c);
	dd = dump(&d);
	assert_string_equal(da, db);
	assert_string_equal(da, dc);
	assert_string_equal(da, dd);
	assert_non_null(strstr(da, " status=t1:"));
	t = get(&c, "p");
	assert_int_equal(json_int(t, "status.readyReplicas", 0), 2);
	assert_int_equal(store_digest(a.s, "pods", 0, STORE_DIGEST_BUCKETS),
			 store_digest(d.s, "pods", 0, STORE_DIGEST_BUCKETS));

	/* a's next write at its old term is refused, nothing committed */
	rv = store_rv(a.s);
	ev = a.events;
	assert_int_equal(store_update_status_term(a.s, "pods", "default", "p", s4, 0, NULL, &e),
			 -ESTALE);
	assert_int_equal(e.code, 409);
	assert_int_equal(store_rv(a.s), rv);
	assert_int_equal(a.events, ev);

	/* a client's status write keeps the register's term (and wins by hlc within it) */
	assert_int_equal(store_update_status(a.s, "pods", "default", "p", s4, 0, NULL, NULL), 0);
	assert_int_equal(status_term_of(&a, "p"), 1);
	/* a spec write keeps the status register as it is */
	json_set_str(json_path(p, "metadata.labels"), "app", "db");
	assert_int_equal(store_update(a.s, "pods", "default", "p", p, 0, NULL, NULL), 0);
	assert_int_equal(status_term_of(&a, "p"), 1);
	sync_all(&a, &c);

	/* a claim: the same status at a higher term is a visible commit */
	rv = store_rv(c.s);
	ev = c.events;
	assert_int_equal(store_update_status_term(c.s, "pods", "default", "p", s4, 2, &o, NULL),
			 0);
	assert_int_equal(o->status_term, 2);
	assert_int_equal(o->rv, rv + 1);
	assert_int_equal(c.events, ev + 1);
	store_obj_unref(o);
	/* at its own term an unchanged status commits nothing */
	assert_int_equal(store_update_status_term(c.s, "pods", "default", "p", s4, 2, NULL, NULL),
			 0);
	assert_int_equal(store_rv(c.s), rv + 1);

	/* the term is durable */
	dc2 = dump(&c);
	node_close(&c);
	node_open(&c, "c", path, false);
	free(dc);
	dc = dump(&c);
	assert_string_equal(dc, dc2);
	assert_non_null(strstr(dc, " status=t2:"));

	msgs_free(&ma);
	msgs_free(&mb);
	node_close(&a);
	node_close(&b);
	node_close(&c);
	node_close(&d);
}

/*
 * Merge r into b (the daemon's paths) and c (opened with open_reprint: every body parsed and
 * printed again): the same result, register dumps and object (bytes, labels, nodeName).
 * Returns store_get's result for r's name (the same on both).
 */
static int merge_same_on_both(struct node *b, struct node *c, const struct store_reg *r)
{
	struct store_obj *ob = NULL, *oc = NULL;
	_cleanup_free_ char *db = NULL, *dc = NULL;
	int gb, gc;

	assert_int_equal(store_merge_register(b->s, r), store_merge_register(c->s, r));
	db = dump(b);
	dc = dump(c);
	assert_string_equal(db, dc);
	gb = store_get(b->s, "pods", "default", r->name, &ob);
	gc = store_get(c->s, "pods", "default", r->name, &oc);
	assert_int_equal(gb, gc);
	if (gb == 0) {
		assert_int_equal(ob->json_len, oc->json_len);
		assert_memory_equal(ob->json, oc->json, ob->json_len);
		assert_true(cJSON_Compare(ob->labels, oc->labels, true) ||
			    (!ob->labels && !oc->labels));
		assert_true(
		    (!ob->node_name && !oc->node_name) ||
		    (ob->node_name && oc->node_name && !strcmp(ob->node_name, oc->node_name)));
	}
	store_obj_unref(ob);
	store_obj_unref(oc);
	return gb;
}

/*
 * A new key's canonical body without sticky state is kept without parsing it (store_merge.c's
 * text path, which reads the uid, labels and spec.nodeName off the text): the same objects,
 * dumps and indexed fields as a store that parses and prints every body, for each body as the
 * first register of its own key — canonical ones, ones with escapes or odd types where the
 * fields are read, duplicate members (cJSON takes the first), and ones not canonical.
 */
static void test_merge_text_path(void **state)
{
	static const char *const bodies[] = {
	    "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\",\"uid\":\"%s\",\"labels\":{\"app\":"
	    "\"x\",\"k\":\"v\"}},\"data\":{\"payload\":\"xxxx\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"nodeName\":\"w1\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"a\":[1,{\"nodeName\":\"no\"}],"
	    "\"nodeName\":\"w2\",\"nodeName\":\"w3\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"nodeName\":\"w\\n1\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"s\":\"x\\\"y\\\\\",\"t\":"
	    "[\"]}\\\\\",{\"nodeName\":\"no\"}],\"nodeName\":\"w9\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"nodeName\":\"w\\\"1\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"nodeName\":7}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"nodeName\":null}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"nodeName\":\"\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":[{\"nodeName\":\"w1\"}]}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":\"nodeName\"}",
	    "{\"kind\":\"Pod\",\"spec\":{\"nodeName\":\"w1\"},\"metadata\":{\"uid\":\"%s\"},"
	    "\"spec\":{\"nodeName\":\"w2\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"labels\":[\"a\"],\"uid\":\"%s\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"labels\":{},\"uid\":\"%s\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"labels\":{\"a\":\"1\"},\"uid\":\"%s\",\"labels\":{\"b\":"
	    "\"2\"}}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"labels\":{\"a\\n\":\"\\u0001\"},\"uid\":\"%s\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"labels\":\"x\",\"uid\":\"%s\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"other\",\"uid\":\"%s\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\",\"uid\":\"other\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\\u0001\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":7}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"x\":1.5}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"nodeName\": \"w1\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\",\"resourceVersion\":\"9\"}}",
	    "{\"kind\":\"Pod\",\"status\":{\"phase\":\"Running\"},\"metadata\":{\"uid\":\"%s\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"}}",
	    "{\"metadata\":{\"uid\":\"%s\"}}",
	};
	struct node a = {0}, b = {0}, c = {0};
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, false);
	struct store_stats sb, sc;
	struct store_obj *oa = NULL;
	struct msgs m = {0};
	size_t kept = 0;

	node_open(&a, "a", NULL, true);
	node_open(&b, "b", NULL, true);
	open_reprint = true;
	node_open(&c, "c", NULL, true);
	open_reprint = false;
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, &oa, NULL), 0);
	capture(&m, a.s, "p");
	assert_true(m.n >= 1);
	assert_null(m.v[0].r.sticky);
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		struct store_reg r = m.v[0].r;
		char body[1024], name[16];
		uint64_t before;

		snprintf(name, sizeof(name), "t%zu", i);
		snprintf(body, sizeof(body), bodies[i], oa->uid);
		r.name = name;
		r.body = body;
		r.body_len = strlen(body);
		store_stats_get(b.s, &sb);
		before = sb.merged_unparsed;
		merge_same_on_both(&b, &c, &r);
		store_stats_get(b.s, &sb);
		kept += sb.merged_unparsed - before;
	}
	store_stats_get(b.s, &sb);
	store_stats_get(c.s, &sc);
	assert_true(kept >= 10);
	assert_int_equal(sc.merged_as_received, 0);
	assert_int_equal(sc.merged_unparsed, 0);
	assert_int_equal(sb.merged, sc.merged);
	store_obj_unref(oa);
	msgs_free(&m);
	node_close(&a);
	node_close(&b);
	node_close(&c);
}

/*
 * A remote spec body kept as received (store_merge.c's fast path) gives the same bytes as
 * parsing and printing it again: the same objects, register dumps and indexed fields on a
 * store merging fast and one that always reprints, for bodies cJSON printed (kept) and
 * bodies it would print differently (whitespace, escapes, numbers, stray members: reprinted).
 */
static void test_merge_as_received(void **state)
{
	static const char *const bodies[] = {
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":"
	    "\"default\",\"uid\":\"%s\",\"labels\":{\"app\":\"x\"}},\"spec\":{\"nodeName\":\"w1\","
	    "\"n\":[0,-7,123456789,true,false,null,{},[]],\"s\":\"a\\\"\\\\\\b\\f\\n\\r\\t\\u0001"
	    "\\u001f/\xc3\xa9\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\",\"name\":\"p\"},\"spec\":{\"x\":1.50}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\",\"name\":\"p\"},\"spec\":{\"x\":1.5}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"x\":1234567890}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"x\":-0}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"x\":1e3}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"x\":007}}",
	    " {\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"}}",
	    "{\"kind\": \"Pod\",\"metadata\":{\"uid\":\"%s\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"}}\n",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"}}x",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"s\":\"\\/\\u0041\\u001F"
	    "\\u0009\\u00e9\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"s\":\"a\x01\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\",\"resourceVersion\":\"9\"}}",
	    "{\"kind\":\"Pod\",\"status\":{\"phase\":\"Running\"},\"metadata\":{\"uid\":\"%s\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"},\"metadata\":{\"name\":\"q\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":\"%s\"}",
	    "{\"kind\":\"Pod\",\"metadata\":{}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"\"}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"other\"}}",
	    "{\"kind\":\"Pod\",\"spec\":{\"nodeName\":\"w2\"},\"metadata\":{\"uid\":\"%s\","
	    "\"finalizers\":[\"f\"],\"deletionTimestamp\":\"2023-01-01T00:00:00Z\"}}",
	    "{\"metadata\":{\"uid\":\"%s\",\"n\\\"a\\u0002\":{\"\":[]}},\"\\u0003\":{}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\",},\"spec\":{}}",
	    "{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"%s\"}",
	    "{}",
	};
	struct node a = {0}, b = {0}, c = {0};
	_cleanup_json_ cJSON *p = pod("p", "web", NULL, false);
	struct store_stats sb, sc;
	struct store_obj *oa = NULL;
	struct msgs m = {0};
	struct store_reg r;
	char body[1024];

	node_open(&a, "a", NULL, true);
	node_open(&b, "b", NULL, true);
	open_reprint = true;
	node_open(&c, "c", NULL, true);
	open_reprint = false;
	assert_int_equal(store_create(a.s, "pods", "default", "p", p, &oa, NULL), 0);
	capture(&m, a.s, "p");
	assert_true(m.n >= 1);
	r = m.v[0].r;
	for (size_t i = 0; i <= ARRAY_SIZE(bodies); i++) {
		if (i > 0) {
			snprintf(body, sizeof(body), bodies[i - 1], oa->uid);
			r.body = body;
			r.body_len = strlen(body);
			r.hlc += 1;
		}
		assert_int_equal(merge_same_on_both(&b, &c, &r), 0);
	}
	/* the canonical bodies (a's own and the first few) took the fast path on b only */
	store_stats_get(b.s, &sb);
	store_stats_get(c.s, &sc);
	assert_true(sb.merged_as_received >= 3);
	assert_int_equal(sc.merged_as_received, 0);
	assert_int_equal(sb.merged, sc.merged);
	store_obj_unref(oa);
	msgs_free(&m);
	node_close(&a);
	node_close(&b);
	node_close(&c);
}

static void test_random_convergence(void **state)
{
	for (unsigned run = 1; run <= 12; run++) {
		struct world *w = calloc(1, sizeof(*w));
		unsigned seed = run;
		char *d0;

		assert_non_null(w);
		for (int i = 0; i < NN; i++) {
			char name[8];

			snprintf(name, sizeof(name), "n%d", i);
			w->n[i].now = T0 + (uint64_t)(rand_r(&seed) % 300);
			open_reprint = i % 2; /* both merge paths must converge on the same bytes */
			node_open(&w->n[i], name, NULL, false);
			open_reprint = false;
		}
		for (int step = 0; step < 400; step++) {
			int at = rand_r(&seed) % NN;

			for (int i = 0; i < NN; i++)
				w->n[i].now += (uint64_t)(rand_r(&seed) % 3);
			if (rand_r(&seed) % 3)
				local_write(w, at, &seed);
			else
				pull(w, at, &seed, 1 + (size_t)rand_r(&seed) % 6);
		}
		/* heal: everyone gets everything (deferred statuses retried) */
		for (int round = 0; round < 3; round++)
			for (int i = 0; i < NN; i++) {
				w->next[i] = 0;
				pull(w, i, &seed, SIZE_MAX);
			}
		for (int i = 0; i < NN; i++)
			for (int j = 0; j < NN; j++)
				if (i != j)
					sync_all(&w->n[i], &w->n[j]);
		d0 = dump(&w->n[0]);
		for (int i = 0; i < NN; i++) {
			_cleanup_free_ char *d = dump(&w->n[i]);

			assert_string_equal(d0, d);
			assert_true(store_digest(w->n[i].s, "pods", 0, STORE_DIGEST_BUCKETS) ==
				    store_digest(w->n[0].s, "pods", 0, STORE_DIGEST_BUCKETS));
			check_invariants(w, &w->n[i]);
		}
		free(d0);
		for (int i = 0; i < NN; i++)
			node_close(&w->n[i]);
		msgs_free(&w->log);
		free(w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_applies_once),
		cmocka_unit_test(test_digest_hashes_fixed),
		cmocka_unit_test(test_merge_clock_ahead),
		cmocka_unit_test(test_merge_uid_aware),
		cmocka_unit_test(test_merge_sticky),
		cmocka_unit_test(test_merge_delete_wins),
		cmocka_unit_test(test_rv_bases),
		cmocka_unit_test_setup_teardown(test_tombstones, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_old_file_migrates, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_rows_after_rollback, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_row_loads_once, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_merged_state_persists, tmp_setup, tmp_teardown),
		cmocka_unit_test(test_merge_batch_order),
		cmocka_unit_test(test_bulk_holds_events),
		cmocka_unit_test(test_bulk_sorts_keys),
		cmocka_unit_test_setup_teardown(test_bulk_kill_reuses_no_rv, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_bulk_rollback_reuses_no_rv, tmp_setup,
						tmp_teardown),
		cmocka_unit_test(test_merge_as_received),
		cmocka_unit_test(test_merge_text_path),
		cmocka_unit_test(test_random_convergence),
		cmocka_unit_test_setup_teardown(test_status_term, tmp_setup, tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
