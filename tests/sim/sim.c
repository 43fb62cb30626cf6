// SPDX-License-Identifier: Apache-2.0
/*
 * shoal-sim: the controllers on a simulated clock with a seeded fake kubelet.
 *
 * Every run with the same --seed takes the same steps. The fake kubelet starts pods after a
 * random delay, makes them ready after another, fails some (when asked), and finishes graceful
 * deletions. Scenarios check invariants a user would notice: a rolling update with
 * maxUnavailable 0 never drops below the desired ready count, scale converges, jobs complete or
 * hit their back-off limit, deleting an owner leaves no dependents.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/object.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/controller.h"
#include "sched/members.h"
#include "sched/store.h"
#include "tests/sim/sim.h"

static uint64_t sim_now = 1700000000000ULL;
static uint64_t sim_rand_state;
static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			failures++;                                                                \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

static uint64_t sim_clock(void *ud)
{
	return sim_now;
}

static uint32_t sim_rand(void)
{
	/* xorshift64*: reproducible from the seed */
	sim_rand_state ^= sim_rand_state >> 12;
	sim_rand_state ^= sim_rand_state << 25;
	sim_rand_state ^= sim_rand_state >> 27;
	return (uint32_t)((sim_rand_state * 2685821657736338717ULL) >> 32);
}

struct sim {
	struct store *store;
	struct members *members;
	struct ctrl_mgr *ctrl;
	int fail_percent;      /* of pods whose container exits 1 */
	bool job_mode_success; /* pods of jobs succeed (unless failing) */
};

/* --- fake kubelet: per pod, times stored in annotations-free side table --- */
struct fake_pod {
	char name[128];
	uint64_t start_at, ready_at, done_at;
	bool fail;
};
static struct fake_pod fpods[4096];
static size_t nfpods;

static struct fake_pod *fake_get(const char *name)
{
	for (size_t i = 0; i < nfpods; i++)
		if (streq(fpods[i].name, name))
			return &fpods[i];
	if (nfpods == ARRAY_SIZE(fpods))
		return NULL;
	struct fake_pod *f = &fpods[nfpods++];
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->start_at = sim_now + 100 + sim_rand() % 900;
	f->ready_at = f->start_at + 200 + sim_rand() % 1800;
	f->done_at = f->start_at + 500 + sim_rand() % 3000;
	return f;
}

static int kubelet_pod(struct store_obj *o, void *ud)
{
	struct sim *s = ud;
	_cleanup_json_ cJSON *pod = store_obj_parse(o);
	struct fake_pod *f;
	struct err e = {0};
	char ts[32];
	bool is_job = strstr(o->json, "\"kind\":\"Job\"") != NULL;

	if (!pod || !(f = fake_get(o->name)))
		return 0;
	if (json_path(pod, "metadata.deletionTimestamp")) {
		struct api_delete_opts d = {.grace_seconds = 0};
		api_obj_delete(s->store, "pods", o->ns, o->name, &d, NULL, &e);
		return 0;
	}
	const char *phase = json_str(pod, "status.phase", "Pending");
	if (streq(phase, "Succeeded") || streq(phase, "Failed"))
		return 0;
	if (sim_now < f->start_at)
		return 0;
	if (!json_path(pod, "status.phase") || streq(phase, "Pending")) {
		f->fail = (int)(sim_rand() % 100) < s->fail_percent;
	}
	cJSON *st = cJSON_CreateObject();
	util_rfc3339((int64_t)(sim_now / 1000), ts, sizeof(ts));
	bool ready = sim_now >= f->ready_at;
	const char *newphase = "Running";
	if (is_job && sim_now >= f->done_at)
		newphase = (f->fail || !s->job_mode_success) ? "Failed" : "Succeeded";
	else if (!is_job && f->fail && sim_now >= f->done_at)
		ready = false; /* crash-looping: never ready */
	cJSON_AddStringToObject(st, "phase", newphase);
	cJSON_AddStringToObject(st, "podIP", "10.244.0.9");
	cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", "Ready");
	cJSON_AddStringToObject(c, "status",
				ready && streq(newphase, "Running") ? "True" : "False");
	/* keep the transition time stable while the status holds */
	const char *prev = NULL;
	cJSON *pc;
	cJSON_ArrayForEach(
	    pc, json_path(pod, "status.conditions")) if (streq(json_str(pc, "type", ""), "Ready") &&
							 streq(json_str(pc, "status", ""),
							       json_str(c, "status", ""))) prev =
	    json_str(pc, "lastTransitionTime", NULL);
	cJSON_AddStringToObject(c, "lastTransitionTime", prev ? prev : ts);
	cJSON_AddItemToArray(conds, c);
	if (!streq(newphase, "Running")) {
		cJSON *css = cJSON_AddArrayToObject(st, "containerStatuses"),
		      *cs = cJSON_CreateObject();
		cJSON *term =
		    cJSON_AddObjectToObject(cJSON_AddObjectToObject(cs, "state"), "terminated");
		cJSON_AddNumberToObject(term, "exitCode", streq(newphase, "Failed") ? 1 : 0);
		cJSON_AddStringToObject(term, "finishedAt", ts);
		cJSON_AddItemToArray(css, cs);
	}
	_cleanup_free_ char *a = json_canonical(json_path(pod, "status"));
	_cleanup_free_ char *b = json_canonical(st);
	if (a && b && streq(a, b)) {
		cJSON_Delete(st);
		return 0;
	}
	json_set(pod, "status", st);
	cJSON_DeleteItemFromObject(json_path(pod, "metadata"), "resourceVersion");
	api_obj_update_status(s->store, pod, NULL, &e);
	return 0;
}

static void kubelet_step(struct sim *s)
{
	/* collect names first: status writes while iterating would move the cursor */
	store_list(s->store, "pods", NULL, NULL, NULL, kubelet_pod, s);
}

static void sim_step(struct sim *s, uint64_t ms)
{
	sim_now += ms;
	kubelet_step(s);
	ctrl_mgr_run(s->ctrl, NULL);
}

static int apply(struct sim *s, const char *yaml_json)
{
	_cleanup_json_ cJSON *o = cJSON_Parse(yaml_json);
	struct err e = {0};
	int r = api_obj_create(s->store, o, NULL, &e);
	if (r < 0)
		fprintf(stderr, "create failed: %s\n", e.message);
	return r;
}

struct count {
	const char *owner_prefix;
	const char *image;
	int total, ready, with_image;
};

static int count_pod(struct store_obj *o, void *ud)
{
	struct count *c = ud;
	_cleanup_json_ cJSON *pod = store_obj_parse(o);
	cJSON *cond;

	if (strncmp(o->name, c->owner_prefix, strlen(c->owner_prefix)))
		return 0;
	if (json_path(pod, "metadata.deletionTimestamp"))
		return 0;
	c->total++;
	bool ready = false;
	cJSON_ArrayForEach(
	    cond,
	    json_path(pod, "status.conditions")) if (streq(json_str(cond, "type", ""), "Ready") &&
						     streq(json_str(cond, "status", ""), "True"))
	    ready = true;
	if (ready)
		c->ready++;
	cJSON *ctr = cJSON_GetArrayItem(json_path(pod, "spec.containers"), 0);
	if (c->image && streq(json_str(ctr, "image", ""), c->image)) {
		c->with_image++;
	}
	return 0;
}

static struct count pods_of(struct sim *s, const char *prefix, const char *image)
{
	struct count c = {.owner_prefix = prefix, .image = image};
	store_list(s->store, "pods", "default", NULL, NULL, count_pod, &c);
	return c;
}

static const char *DEPLOY =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
    "\"namespace\":\"default\"},\"spec\":{\"replicas\":10,\"selector\":{\"matchLabels\":"
    "{\"app\":\"web\"}},\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":"
    "{\"maxSurge\":2,\"maxUnavailable\":0}},\"template\":{\"metadata\":{\"labels\":"
    "{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1\"}]}}}}";

static int set_image(struct sim *s, const char *image)
{
	struct store_obj *o;
	struct err e = {0};
	int r = store_get(s->store, "deployments.apps", "default", "web", &o);
	if (r < 0)
		return r;
	_cleanup_json_ cJSON *d = store_obj_parse(o);
	store_obj_unref(o);
	cJSON *c = cJSON_GetArrayItem(json_path(d, "spec.template.spec.containers"), 0);
	json_set_str(c, "image", image);
	return api_obj_update(s->store, d, NULL, &e);
}

static int scale(struct sim *s, int n)
{
	struct store_obj *o;
	struct err e = {0};
	int r = store_get(s->store, "deployments.apps", "default", "web", &o);
	if (r < 0)
		return r;
	_cleanup_json_ cJSON *d = store_obj_parse(o);
	store_obj_unref(o);
	json_set_int(json_path(d, "spec"), "replicas", n);
	return api_obj_update(s->store, d, NULL, &e);
}

static int collect_revision(struct store_obj *o, void *ud)
{
	_cleanup_json_ cJSON *rs = store_obj_parse(o);
	char *revs = ud;
	size_t n = strlen(revs);

	if (n < 7)
		revs[n] = json_key_str(rs, "metadata.annotations",
				       "deployment.kubernetes.io/revision", "?")[0];
	return 0;
}

static int first_web_pod(struct store_obj *o, void *ud)
{
	if (!strncmp(o->name, "web-", 4)) {
		*(struct store_obj **)ud = store_obj_ref(o);
		return 1;
	}
	return 0;
}

static int scenario_rollout(struct sim *s)
{
	struct count c;
	int dips = 0, steps;

	CHECK(apply(s, DEPLOY) == 0, "create deployment");
	for (steps = 0; steps < 600; steps++) {
		sim_step(s, 100);
		c = pods_of(s, "web-", NULL);
		if (c.ready == 10 && c.total == 10)
			break;
	}
	CHECK(c.ready == 10 && c.total == 10, "10 ready after %d steps (ready %d total %d)", steps,
	      c.ready, c.total);
	printf("rollout: 10/10 ready after %.1f s simulated\n", steps * 0.1);

	CHECK(set_image(s, "busybox:2") == 0, "update image");
	for (steps = 0; steps < 2000; steps++) {
		sim_step(s, 100);
		c = pods_of(s, "web-", "busybox:2");
		if (c.ready < 10)
			dips++;
		if (c.with_image == 10 && c.total == 10 && c.ready == 10)
			break;
	}
	CHECK(c.with_image == 10 && c.total == 10, "rolled to busybox:2 (%d/%d)", c.with_image,
	      c.total);
	CHECK(dips == 0, "ready replicas dipped below 10 in %d steps with maxUnavailable 0", dips);
	printf("rolling update: done after %.1f s simulated, 0 moments below 10 ready\n",
	       steps * 0.1);
	/* one ReplicaSet per template, numbered in order (rollout history/undo read these) */
	char revs[8] = "";
	CHECK(store_list(s->store, "replicasets.apps", "default", NULL, NULL, collect_revision,
			 revs) == 0,
	      "list replicasets");
	CHECK(strlen(revs) == 2 && strchr(revs, '1') && strchr(revs, '2'),
	      "replicaset revisions are \"%s\", want 1 and 2", revs);

	CHECK(scale(s, 3) == 0, "scale to 3");
	for (steps = 0; steps < 300; steps++) {
		sim_step(s, 100);
		c = pods_of(s, "web-", NULL);
		if (c.total == 3)
			break;
	}
	CHECK(c.total == 3, "scaled down to 3 (have %d)", c.total);

	/* killing a pod gets it replaced */
	struct err e = {0};
	struct store_obj *victim = NULL;
	store_list(s->store, "pods", "default", NULL, NULL, first_web_pod, &victim);
	CHECK(victim, "a pod to kill");
	struct api_delete_opts del = {.grace_seconds = 0};
	CHECK(api_obj_delete(s->store, "pods", "default", victim->name, &del, NULL, &e) == 0,
	      "delete pod: %s", e.message);
	store_obj_unref(victim);
	for (steps = 0; steps < 300; steps++) {
		sim_step(s, 100);
		c = pods_of(s, "web-", NULL);
		if (c.total == 3 && c.ready == 3)
			break;
	}
	CHECK(c.total == 3 && c.ready == 3, "replaced killed pod (%d/%d)", c.ready, c.total);

	/* deleting the deployment removes its ReplicaSets and pods */
	struct api_delete_opts bg = {.grace_seconds = -1, .propagation = "Background"};
	CHECK(api_obj_delete(s->store, "deployments.apps", "default", "web", &bg, NULL, &e) == 0,
	      "delete deployment: %s", e.message);
	for (steps = 0; steps < 300; steps++) {
		sim_step(s, 100);
		if (store_count(s->store, "pods", "default") == 0 &&
		    store_count(s->store, "replicasets.apps", "default") == 0)
			break;
	}
	CHECK(store_count(s->store, "pods", "default") == 0, "pods left: %zu",
	      store_count(s->store, "pods", "default"));
	CHECK(store_count(s->store, "replicasets.apps", "default") == 0, "replicasets left");
	printf("delete: no pods or replicasets left\n");
	return 0;
}

static int scenario_jobs(struct sim *s)
{
	struct store_obj *o;
	int steps;

	s->job_mode_success = true;
	s->fail_percent = 0;
	CHECK(apply(s, "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":"
		       "\"ok\",\"namespace\":\"default\"},\"spec\":{\"completions\":4,"
		       "\"parallelism\":2,\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
		       "\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}") == 0,
	      "create job");
	for (steps = 0; steps < 1000; steps++) {
		sim_step(s, 100);
		if (store_get(s->store, "jobs.batch", "default", "ok", &o) == 0) {
			bool done = strstr(o->json, "\"type\":\"Complete\"") != NULL;
			store_obj_unref(o);
			if (done)
				break;
		}
	}
	CHECK(steps < 1000, "job ok completed");
	printf("job: 4 completions after %.1f s simulated\n", steps * 0.1);

	s->job_mode_success = false;
	CHECK(apply(s, "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":"
		       "\"bad\",\"namespace\":\"default\"},\"spec\":{\"backoffLimit\":2,"
		       "\"template\":{\"spec\":{\"restartPolicy\":\"Never\",\"containers\":"
		       "[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}") == 0,
	      "create failing job");
	for (steps = 0; steps < 3000; steps++) {
		sim_step(s, 100);
		if (store_get(s->store, "jobs.batch", "default", "bad", &o) == 0) {
			bool failed = strstr(o->json, "BackoffLimitExceeded") != NULL;
			store_obj_unref(o);
			if (failed)
				break;
		}
	}
	CHECK(steps < 3000, "failing job reached its back-off limit");
	printf("job: back-off limit reached after %.1f s simulated\n", steps * 0.1);
	return 0;
}

static int controllers_run(uint64_t seed)
{
	struct sim s = {0};
	struct err e = {0};

	sim_rand_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	struct store_options so = {.path = ":memory:", .node_name = "sim1", .clock = sim_clock};
	if (store_open(&so, &s.store) < 0 || members_new("sim1", &s.members) < 0)
		return 1;
	struct ctrl_options co = {.store = s.store, .members = s.members, .clock = sim_clock};
	if (ctrl_mgr_new(&co, &s.ctrl) < 0)
		return 1;
	_cleanup_json_ cJSON *ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
					       "\"metadata\":{\"name\":\"default\"}}");
	api_obj_create(s.store, ns, NULL, &e); /* may already exist */

	scenario_rollout(&s);
	scenario_jobs(&s);

	ctrl_mgr_free(s.ctrl);
	members_free(s.members);
	store_close(s.store);
	return 0;
}

/*
 * shoal-sim --seed N [--only controllers|gossip|repl] [--nodes 100,1000] [--quick]
 * shoal-sim --bench-gossip [--quick] [--bench-set memberlist|shoal]
 * shoal-sim --bench-replication [--quick]
 * shoal-sim --crash-trials T [--idle-secs S] [--nodes 5,100] [--seed N] [--bench-set
 * memberlist|shoal]
 */
int main(int argc, char **argv)
{
	uint64_t seed = 1;
	const char *only = NULL, *nodes = "100", *bench_set = NULL;
	bool quick = false, bench = false, bench_repl = false;
	int opt, crash_trials = 0, idle_secs = 0;
	static const struct option longopts[] = {{"seed", required_argument, NULL, 's'},
						 {"only", required_argument, NULL, 'o'},
						 {"nodes", required_argument, NULL, 'n'},
						 {"quick", no_argument, NULL, 'q'},
						 {"bench-gossip", no_argument, NULL, 'b'},
						 {"bench-set", required_argument, NULL, 'B'},
						 {"crash-trials", required_argument, NULL, 'c'},
						 {"idle-secs", required_argument, NULL, 'i'},
						 {"bench-replication", no_argument, NULL, 'R'},
						 {NULL, 0, NULL, 0}};

	while ((opt = getopt_long(argc, argv, "s:o:n:qbB:c:i:R", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		case 'o':
			only = optarg;
			break;
		case 'n':
			nodes = optarg;
			break;
		case 'q':
			quick = true;
			break;
		case 'b':
			bench = true;
			break;
		case 'B':
			bench = true;
			bench_set = optarg;
			break;
		case 'c':
			crash_trials = atoi(optarg);
			break;
		case 'i':
			idle_secs = atoi(optarg);
			break;
		case 'R':
			bench_repl = true;
			break;
		default:
			fprintf(
			    stderr,
			    "usage: shoal-sim [--seed N] [--only controllers|gossip|repl] "
			    "[--nodes N[,N...]] [--quick] [--bench-gossip] "
			    "[--bench-set memberlist|shoal] [--crash-trials T [--idle-secs S]]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bench_repl)
		return sim_repl_bench(seed, quick);
	if (crash_trials > 0) {
		_cleanup_free_ char *list = strdup(nodes);
		char *save = NULL;
		for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			failures +=
			    sim_gossip_crash(seed, atoi(tok), crash_trials, idle_secs, bench_set);
		return failures ? 1 : 0;
	}
	if (bench)
		return sim_gossip_bench(seed, quick, bench_set);
	printf("shoal-sim seed=%" PRIu64 "\n", seed);
	fflush(stdout);
	if (!only || streq(only, "controllers")) {
		if (controllers_run(seed))
			return 1;
	}
	if (!only || streq(only, "gossip")) {
		_cleanup_free_ char *list = strdup(nodes);
		char *save = NULL;
		for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			failures += sim_gossip_run(seed, atoi(tok), quick);
	}
	/* replication only when asked: `make sim` runs it in quick mode (see the Makefile) */
	if (only && streq(only, "repl")) {
		_cleanup_free_ char *list = strdup(nodes);
		char *save = NULL;
		for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			failures += sim_repl_run(seed, atoi(tok), quick);
	}
	if (failures) {
		fprintf(stderr, "shoal-sim: %d failure(s) (seed %" PRIu64 ")\n", failures, seed);
		return 1;
	}
	printf("shoal-sim: all scenarios passed\n");
	return 0;
}
