// SPDX-License-Identifier: Apache-2.0
/*
 * The DaemonSet controller against an in-memory store and a fake kubelet that makes pods ready
 * and finishes graceful deletions: one pod per eligible node (nodeSelector, taints), nodes that
 * come and go, rolling updates that never take more than maxUnavailable nodes down (or keep
 * every node available with maxSurge), ControllerRevisions and a rollback.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/object.h"
#include "lib/json.h"
#include "lib/util.h"
#include "sched/controller.h"
#include "sched/members.h"
#include "sched/store.h"

static uint64_t now_ms = 1700000000000ULL;

static uint64_t clock_fn(void *ud)
{
	return now_ms;
}

struct env {
	struct store *store;
	struct ctrl_mgr *ctrl;
	struct members *mem; /* NULL: no gossip view (a lone node) */
};

static void create(struct env *env, const char *json)
{
	struct err e = {0};
	cJSON *o = cJSON_Parse(json);

	assert_non_null(o);
	if (api_obj_create(env->store, o, NULL, &e) < 0)
		fail_msg("create: %s", e.message);
	cJSON_Delete(o);
}

static void member_set(struct members *mem, const char *name, enum members_state st)
{
	struct members_info i = {.name = name, .address = "", .state = st, .meta = ""};

	assert_true(members_update(mem, &i) >= 0);
}

static int setup_with(void **state, struct members *mem)
{
	static struct env env;
	struct store_options so = {.path = ":memory:", .node_name = "n1", .clock = clock_fn};
	struct ctrl_options co = {.clock = clock_fn, .members = mem};

	env.mem = mem;
	assert_int_equal(store_open(&so, &env.store), 0);
	co.store = env.store;
	assert_int_equal(ctrl_mgr_new(&co, &env.ctrl), 0);
	create(&env, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
		     "\"default\"}}");
	*state = &env;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL);
}

/* n1 (this node), n2 and n3 in the gossip view, all alive */
static int setup_members(void **state)
{
	struct members *mem;

	assert_int_equal(members_new("n1", &mem), 0);
	member_set(mem, "n2", MEMBERS_ALIVE);
	member_set(mem, "n3", MEMBERS_ALIVE);
	return setup_with(state, mem);
}

static int teardown(void **state)
{
	struct env *env = *state;

	ctrl_mgr_free(env->ctrl);
	store_close(env->store);
	if (env->mem)
		members_free(env->mem);
	return 0;
}

static void node_create(struct env *env, const char *name, const char *labels, const char *taints)
{
	char buf[1024];

	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
		 "\"labels\":%s},\"spec\":{\"taints\":%s},\"status\":{\"allocatable\":{\"cpu\":"
		 "\"4\",\"memory\":\"8Gi\",\"pods\":\"110\"}}}",
		 name, labels ? labels : "{}", taints ? taints : "[]");
	create(env, buf);
}

static cJSON *get(struct env *env, const char *resource, const char *ns, const char *name)
{
	struct store_obj *o;
	cJSON *j;

	if (store_get(env->store, resource, ns, name, &o) < 0)
		return NULL;
	j = store_obj_parse(o);
	store_obj_unref(o);
	return j;
}

/* Change an object's spec with fn and write it back. */
static void edit(struct env *env, const char *resource, const char *ns, const char *name,
		 void (*fn)(cJSON *obj, const void *arg), const void *arg)
{
	cJSON *obj = get(env, resource, ns, name);
	struct err e = {0};

	assert_non_null(obj);
	fn(obj, arg);
	cJSON_DeleteItemFromObject(json_path(obj, "metadata"), "resourceVersion");
	if (api_obj_update(env->store, obj, NULL, &e) < 0)
		fail_msg("update: %s", e.message);
	cJSON_Delete(obj);
}

static void set_taints(cJSON *node, const void *arg)
{
	json_set(json_path_obj(node, "spec"), "taints", cJSON_Parse(arg));
}

static void set_version(cJSON *ds, const void *arg)
{
	cJSON *c = json_path(ds, "spec.template.spec.containers")->child;
	cJSON *env, *v;

	if (!arg) {
		cJSON_DeleteItemFromObject(c, "env");
		return;
	}
	env = cJSON_CreateArray();
	v = cJSON_CreateObject();

	cJSON_AddStringToObject(v, "name", "VERSION");
	cJSON_AddStringToObject(v, "value", arg);
	cJSON_AddItemToArray(env, v);
	json_set(c, "env", env);
}

static void ds_create(struct env *env, const char *name, const char *node_selector,
		      const char *tolerations, const char *strategy)
{
	char buf[2048];

	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"default\"},\"spec\":{\"selector\":{\"matchLabels\":{\"ds\":"
		 "\"%s\"}},%s%s\"template\":{\"metadata\":{\"labels\":{\"ds\":\"%s\"}},\"spec\":{"
		 "\"nodeSelector\":%s,\"tolerations\":%s,\"containers\":[{\"name\":\"c\","
		 "\"image\":\"busybox\"}]}}}}",
		 name, name, strategy ? strategy : "", strategy ? "," : "", name,
		 node_selector ? node_selector : "{}", tolerations ? tolerations : "[]");
	create(env, buf);
}

struct pod_ctx {
	struct env *env;
	const char *ds;
	int n, terminating;
	cJSON *list;
};

static int pod_collect(struct store_obj *o, void *ud)
{
	struct pod_ctx *c = ud;
	cJSON *p = store_obj_parse(o);

	if (!streq(json_key_str(p, "metadata.labels", "ds", ""), c->ds)) {
		cJSON_Delete(p);
		return 0;
	}
	cJSON_AddItemToArray(c->list, p);
	return 0;
}

/* The DaemonSet's pods (terminating ones too) as a new array. */
static cJSON *ds_pods(struct env *env, const char *ds)
{
	struct pod_ctx c = {env, ds, 0, 0, cJSON_CreateArray()};

	store_list(env->store, "pods", "default", NULL, NULL, pod_collect, &c);
	return c.list;
}

/* The fake kubelet: terminating pods go, the others become Running and Ready. */
static void kubelet(struct env *env, const char *ds)
{
	cJSON *pods = ds_pods(env, ds), *p;
	struct err e = {0};
	char ts[32];

	util_rfc3339((int64_t)(now_ms / 1000), ts, sizeof(ts));
	cJSON_ArrayForEach(p, pods)
	{
		const char *name = json_str(p, "metadata.name", "");
		if (json_path(p, "metadata.deletionTimestamp")) {
			struct api_delete_opts o = {.grace_seconds = 0};
			api_obj_delete(env->store, "pods", "default", name, &o, NULL, &e);
			continue;
		}
		if (streq(json_str(p, "status.phase", ""), "Running"))
			continue;
		char buf[512];
		snprintf(buf, sizeof(buf),
			 "{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":"
			 "\"True\",\"lastTransitionTime\":\"%s\"}]}",
			 ts);
		json_set(p, "status", cJSON_Parse(buf));
		cJSON_DeleteItemFromObject(json_path(p, "metadata"), "resourceVersion");
		assert_int_equal(api_obj_update_status(env->store, p, NULL, &e), 0);
	}
	cJSON_Delete(pods);
}

static void run(struct env *env)
{
	for (int i = 0; i < 8; i++)
		ctrl_mgr_run(env->ctrl, NULL);
}

/* Node name -> how many live (not terminating) pods, and whether each has the given env. */
static int pods_on(struct env *env, const char *ds, const char *node, bool live_only)
{
	cJSON *pods = ds_pods(env, ds), *p;
	int n = 0;

	cJSON_ArrayForEach(p, pods) if (streq(json_str(p, "spec.nodeName", ""), node) &&
					(!live_only || !json_path(p, "metadata.deletionTimestamp")))
	    n++;
	cJSON_Delete(pods);
	return n;
}

static int64_t ds_status(struct env *env, const char *ds, const char *field)
{
	cJSON *d = get(env, "daemonsets.apps", "default", ds);
	char path[96];
	int64_t v;

	snprintf(path, sizeof(path), "status.%s", field);
	v = json_int(d, path, -1);
	cJSON_Delete(d);
	return v;
}

static void test_one_pod_per_eligible_node(void **state)
{
	struct env *env = *state;

	node_create(env, "n1", "{\"disk\":\"ssd\"}", NULL);
	node_create(env, "n2", "{\"disk\":\"ssd\"}",
		    "[{\"key\":\"dedicated\",\"value\":\"db\",\"effect\":\"NoSchedule\"}]");
	node_create(env, "n3", "{\"disk\":\"hdd\"}", NULL);
	node_create(env, "n4", "{}",
		    "[{\"key\":\"node.kubernetes.io/unschedulable\","
		    "\"effect\":\"NoSchedule\"}]");
	ds_create(env, "ssd", "{\"disk\":\"ssd\"}", NULL, NULL);
	ds_create(env, "all", NULL, "[{\"key\":\"dedicated\",\"operator\":\"Exists\"}]", NULL);
	run(env);
	kubelet(env, "ssd");
	kubelet(env, "all");
	run(env);

	/* nodeSelector and an untolerated taint keep "ssd" to n1 */
	assert_int_equal(pods_on(env, "ssd", "n1", true), 1);
	assert_int_equal(pods_on(env, "ssd", "n2", true), 0);
	assert_int_equal(pods_on(env, "ssd", "n3", true), 0);
	assert_int_equal(ds_status(env, "ssd", "desiredNumberScheduled"), 1);
	/* "all" tolerates the taint; a cordoned node keeps its daemon (as in Kubernetes) */
	for (int i = 1; i <= 4; i++) {
		char n[8];
		snprintf(n, sizeof(n), "n%d", i);
		assert_int_equal(pods_on(env, "all", n, true), 1);
	}
	assert_int_equal(ds_status(env, "all", "desiredNumberScheduled"), 4);
	assert_int_equal(ds_status(env, "all", "currentNumberScheduled"), 4);
	assert_int_equal(ds_status(env, "all", "numberReady"), 4);
	assert_int_equal(ds_status(env, "all", "numberAvailable"), 4);
	assert_int_equal(ds_status(env, "all", "updatedNumberScheduled"), 4);

	/* bound directly, with Kubernetes' node affinity and daemon tolerations */
	cJSON *pods = ds_pods(env, "ssd"), *p = pods->child;
	assert_string_equal(json_str(p, "spec.nodeName", ""), "n1");
	cJSON *f = json_path(p, "spec.affinity.nodeAffinity."
				"requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
	assert_non_null(f);
	assert_string_equal(json_str(f->child->child->child, "key", ""), "metadata.name");
	assert_non_null(json_key_str(p, "metadata.labels", "controller-revision-hash", NULL));
	assert_true(cJSON_GetArraySize(json_path(p, "spec.tolerations")) >= 6);
	cJSON_Delete(pods);

	/* a node that joins gets its pod, one that leaves takes its pod along */
	node_create(env, "n5", "{\"disk\":\"ssd\"}", NULL);
	run(env);
	assert_int_equal(pods_on(env, "ssd", "n5", true), 1);
	assert_int_equal(pods_on(env, "all", "n5", true), 1);
	struct err e = {0};
	struct api_delete_opts o = {.grace_seconds = 0};
	assert_int_equal(api_obj_delete(env->store, "nodes", "", "n5", &o, NULL, &e), 0);
	run(env);
	assert_int_equal(pods_on(env, "ssd", "n5", false), 0);
	assert_int_equal(pods_on(env, "all", "n5", false), 0);

	/* a NoSchedule taint keeps a running pod; NoExecute evicts it */
	edit(env, "nodes", "", "n1", set_taints, "[{\"key\":\"maint\",\"effect\":\"NoSchedule\"}]");
	run(env);
	assert_int_equal(pods_on(env, "ssd", "n1", true), 1);
	assert_int_equal(ds_status(env, "ssd", "desiredNumberScheduled"), 0);
	assert_int_equal(ds_status(env, "ssd", "numberMisscheduled"), 1);
	edit(env, "nodes", "", "n1", set_taints, "[{\"key\":\"maint\",\"effect\":\"NoExecute\"}]");
	run(env);
	assert_int_equal(pods_on(env, "ssd", "n1", true), 0);
	edit(env, "nodes", "", "n1", set_taints, "[]");
	run(env);
	kubelet(env, "ssd"); /* the evicted pod finishes terminating: then the node gets one */
	run(env);
	assert_int_equal(pods_on(env, "ssd", "n1", true), 1);
}

static int count_revisions(struct env *env)
{
	return (int)store_count(env->store, "controllerrevisions.apps", "default");
}

/* Roll "d" to `version` step by step, checking after every step that at most max_down nodes
 * lack an available pod and that no more than max_pods pods are not terminating. */
static void roll(struct env *env, const char *version, int nodes, int max_down, int max_pods)
{
	int steps = 0;

	edit(env, "daemonsets.apps", "default", "d", set_version, version);
	for (;;) {
		run(env);
		cJSON *pods = ds_pods(env, "d"), *p;
		int avail = 0, total = 0, updated = 0;
		cJSON_ArrayForEach(p, pods)
		{
			bool live = !json_path(p, "metadata.deletionTimestamp");
			total += live;
			if (live && streq(json_str(p, "status.phase", ""), "Running"))
				avail++;
			cJSON *c = json_path(p, "spec.containers")->child;
			if (live &&
			    streq(json_str(json_path(c, "env") ? json_path(c, "env")->child : NULL,
					   "value", ""),
				  version))
				updated++;
		}
		cJSON_Delete(pods);
		if (avail < nodes - max_down || total > max_pods)
			fail_msg("step %d: %d available, %d pods, %d updated", steps, avail, total,
				 updated);
		if (updated == nodes && avail == nodes && total == nodes)
			break;
		assert_true(++steps < 100);
		kubelet(env, "d");
	}
	assert_int_equal(ds_status(env, "d", "updatedNumberScheduled"), nodes);
}

static void test_rolling_update_and_rollback(void **state)
{
	struct env *env = *state;
	cJSON *cr;

	for (int i = 1; i <= 5; i++) {
		char n[8];
		snprintf(n, sizeof(n), "n%d", i);
		node_create(env, n, NULL, NULL);
	}
	ds_create(env, "d", NULL, NULL,
		  "\"updateStrategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":"
		  "{\"maxUnavailable\":2}}");
	run(env);
	kubelet(env, "d");
	run(env);
	assert_int_equal(ds_status(env, "d", "numberAvailable"), 5);
	assert_int_equal(count_revisions(env), 1);

	/* maxUnavailable 2: never more than two nodes down, never two pods on a node */
	roll(env, "v2", 5, 2, 5);
	assert_int_equal(count_revisions(env), 2);

	/* back to the first template: its revision becomes the newest (3), no new revision */
	edit(env, "daemonsets.apps", "default", "d", set_version, NULL);
	for (int i = 0; i < 20; i++) {
		run(env);
		kubelet(env, "d");
	}
	run(env);
	assert_int_equal(count_revisions(env), 2);
	assert_int_equal(ds_status(env, "d", "updatedNumberScheduled"), 5);
	char hash[16] = "";
	cJSON *pods = ds_pods(env, "d");
	snprintf(hash, sizeof(hash), "%s",
		 json_key_str(pods->child, "metadata.labels", "controller-revision-hash", ""));
	cJSON_Delete(pods);
	char crname[64];
	snprintf(crname, sizeof(crname), "d-%s", hash);
	cr = get(env, "controllerrevisions.apps", "default", crname);
	assert_non_null(cr);
	assert_int_equal(json_int(cr, "revision", 0), 3);
	/* the data is the patch kubectl rollout undo applies */
	assert_string_equal(json_str(cr, "data.spec.template.$patch", ""), "replace");
	cJSON_Delete(cr);

	/* maxSurge 1, maxUnavailable 0: every node keeps an available pod, at most one extra */
	{
		cJSON *dd = get(env, "daemonsets.apps", "default", "d");
		json_set(json_path(dd, "spec.updateStrategy"), "rollingUpdate",
			 cJSON_Parse("{\"maxUnavailable\":0,\"maxSurge\":1}"));
		cJSON_DeleteItemFromObject(json_path(dd, "metadata"), "resourceVersion");
		struct err e = {0};
		assert_int_equal(api_obj_update(env->store, dd, NULL, &e), 0);
		cJSON_Delete(dd);
	}
	roll(env, "v3", 5, 0, 6);
	assert_int_equal(count_revisions(env), 3);

	/* deleting the DaemonSet leaves no pods and no revisions */
	struct err e = {0};
	struct api_delete_opts o = {.grace_seconds = -1};
	assert_int_equal(
	    api_obj_delete(env->store, "daemonsets.apps", "default", "d", &o, NULL, &e), 0);
	for (int i = 0; i < 5; i++) {
		run(env);
		kubelet(env, "d");
	}
	assert_int_equal(count_revisions(env), 0);
	pods = ds_pods(env, "d");
	assert_int_equal(cJSON_GetArraySize(pods), 0);
	cJSON_Delete(pods);
}

/* n's state in the gossip view changes; the controllers resync and run */
static void member_now(struct env *env, const char *n, enum members_state st)
{
	member_set(env->mem, n, st);
	ctrl_mgr_members_changed(env->ctrl);
	ctrl_mgr_resync(env->ctrl);
	run(env);
}

/*
 * A DaemonSet's counts take the pod of a node gossip holds dead as not ready and unavailable,
 * though the pod's last status (written by its node) says Ready, as Kubernetes shows it once its
 * node lifecycle controller has marked the pod NotReady; its pod is left where it is (the node
 * may come back, and is still desired). A suspect node's pod still counts. Before, `kubectl get
 * ds` said 3/3 ready with a node dead.
 */
static void test_dead_nodes_pod_counts_not_ready(void **state)
{
	struct env *env = *state;
	char name[32], key[96];

	/* a name this node owns among n1, n2, n3 (and so among any subset holding n1) */
	for (int i = 0;; i++) {
		assert_true(i < 1000);
		snprintf(name, sizeof(name), "d%d", i);
		snprintf(key, sizeof(key), "daemonsets.apps/default/%s", name);
		if (streq(members_owner(env->mem, key), "n1"))
			break;
	}
	node_create(env, "n1", NULL, NULL);
	node_create(env, "n2", NULL, NULL);
	node_create(env, "n3", NULL, NULL);
	ds_create(env, name, NULL, NULL, NULL);
	run(env);
	kubelet(env, name);
	run(env);
	assert_int_equal(ds_status(env, name, "numberReady"), 3);

	member_now(env, "n3", MEMBERS_SUSPECT);
	assert_int_equal(ds_status(env, name, "numberReady"), 3);
	assert_int_equal(ds_status(env, name, "numberAvailable"), 3);

	member_now(env, "n3", MEMBERS_DEAD);
	assert_int_equal(ds_status(env, name, "desiredNumberScheduled"), 3);
	assert_int_equal(ds_status(env, name, "currentNumberScheduled"), 3);
	assert_int_equal(ds_status(env, name, "numberReady"), 2);
	assert_int_equal(ds_status(env, name, "numberAvailable"), 2);
	assert_int_equal(ds_status(env, name, "numberUnavailable"), 1);
	assert_int_equal(pods_on(env, name, "n3", true), 1);

	member_now(env, "n3", MEMBERS_ALIVE);
	assert_int_equal(ds_status(env, name, "numberReady"), 3);
	assert_int_equal(ds_status(env, name, "numberUnavailable"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_one_pod_per_eligible_node, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rolling_update_and_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dead_nodes_pod_counts_not_ready, setup_members,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
