// SPDX-License-Identifier: Apache-2.0
/*
 * Store benchmark: 10,000 pods of ~1.5 KB through store_create, then list, status updates,
 * reopen; and the same rows through raw SQLite (same schema, one transaction per insert,
 * select all) as the floor. Each phase runs in its own process so RSS figures are its own.
 *
 *   build/bench-store [-n PODS] [-d DIR]
 */
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store.h"

static int npods = 10000;
static char dir[256];

static const char pod_fmt[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
	"\"namespace\":\"%s\",\"uid\":\"%s\",\"creationTimestamp\":\"2024-05-01T10:00:00Z\","
	"\"generation\":1,\"labels\":{\"app\":\"web\",\"pod-template-hash\":\"7d4b9c8f6d\","
	"\"tier\":\"frontend\"},\"annotations\":{\"shoal.io/owner-node\":\"node-3\"},"
	"\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
	"\"name\":\"web-7d4b9c8f6d\",\"uid\":\"6f1c2e4a-9b7d-4c3e-8f2a-1d5e6b7c8a9f\","
	"\"controller\":true,\"blockOwnerDeletion\":true}]},\"spec\":{\"nodeName\":\"node-%d\","
	"\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":"
	"\"ClusterFirst\",\"schedulerName\":\"default-scheduler\",\"containers\":[{\"name\":"
	"\"web\",\"image\":\"registry.local/web:1.4.2\",\"imagePullPolicy\":\"IfNotPresent\","
	"\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\",\"name\":\"http\"}],"
	"\"env\":[{\"name\":\"MODE\",\"value\":\"production\"},{\"name\":\"LOG_LEVEL\","
	"\"value\":\"info\"},{\"name\":\"CACHE_SIZE\",\"value\":\"256\"}],\"resources\":"
	"{\"requests\":{\"cpu\":\"100m\",\"memory\":\"128Mi\"},\"limits\":{\"cpu\":\"500m\","
	"\"memory\":\"256Mi\"}},\"volumeMounts\":[{\"name\":\"config\",\"mountPath\":"
	"\"/etc/web\",\"readOnly\":true}],\"readinessProbe\":{\"httpGet\":{\"path\":"
	"\"/healthz\",\"port\":8080},\"periodSeconds\":5}}],\"volumes\":[{\"name\":\"config\","
	"\"configMap\":{\"name\":\"web-config\"}}],\"tolerations\":[{\"key\":"
	"\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\",\"effect\":\"NoExecute\","
	"\"tolerationSeconds\":300}]},\"status\":{\"phase\":\"Pending\",\"conditions\":"
	"[{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastTransitionTime\":"
	"\"2024-05-01T10:00:00Z\"}],\"qosClass\":\"Burstable\"}}";

static void pod_text(int i, char *buf, size_t len, char *ns, char *name)
{
	char uid[37];

	snprintf(ns, 32, "ns-%d", i % 20);
	snprintf(name, 64, "web-7d4b9c8f6d-%05d", i);
	util_uuid4(uid);
	snprintf(buf, len, pod_fmt, name, ns, uid, i % 50);
}

/* CPU time of this process in us: steadier than wall time on a busy host */
static uint64_t cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* CPU spent by the benchmark itself making and freeing the pod trees, to subtract */
static uint64_t gen_cpu_us(void)
{
	char buf[4096], ns[32], name[64];
	uint64_t t0 = cpu_us();

	for (int i = 0; i < npods; i++) {
		pod_text(i, buf, sizeof(buf), ns, name);
		cJSON_Delete(cJSON_Parse(buf));
	}
	return cpu_us() - t0;
}

static long rss_kb(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	return kb;
}

/* live heap bytes, to tell object memory from allocator slack in RSS */
static long heap_kb(void)
{
	return (long)(mallinfo2().uordblks / 1024);
}

static int sum_fn(struct store_obj *o, void *userdata)
{
	*(size_t *)userdata += o->json_len;
	return 0;
}

/* What a list handler does: copy every object's text into one response buffer. */
struct copy {
	char *buf;
	size_t len;
};

static int copy_fn(struct store_obj *o, void *userdata)
{
	struct copy *c = userdata;

	memcpy(c->buf + c->len, o->json, o->json_len);
	c->len += o->json_len;
	c->buf[c->len++] = ',';
	return 0;
}

static double list_ms(struct store *s, bool copy, size_t *bytes)
{
	double best = 1e9;

	/* one response buffer for all rounds: its size is not the store's memory */
	char *buf = copy ? malloc((size_t)npods * 2048) : NULL;

	for (int r = 0; r < 5; r++) {
		struct copy c = { .buf = buf };
		size_t sum = 0;
		uint64_t t0 = util_mono_us();

		store_list(s, "pods", NULL, NULL, NULL, copy ? copy_fn : sum_fn,
			   copy ? (void *)&c : (void *)&sum);
		double ms = (double)(util_mono_us() - t0) / 1000.0;
		if (ms < best)
			best = ms;
		*bytes = copy ? c.len : sum;
	}
	free(buf);
	return best;
}

static int phase_store(void)
{
	char path[300], buf[4096], ns[32], name[64];
	struct store_options o = { .path = path, .node_name = "bench" };
	struct store *s;
	struct store_stats st;
	uint64_t spent = 0, t0, cpu0, cpu;
	size_t bytes = 0, json_total = 0;
	long rss0 = rss_kb();
	int r;

	snprintf(path, sizeof(path), "%s/store.db", dir);
	r = store_open(&o, &s);
	if (r < 0) {
		fprintf(stderr, "store_open: %s\n", strerror(-r));
		return 1;
	}
	cpu0 = cpu_us();
	for (int i = 0; i < npods; i++) {
		struct store_obj *obj = NULL;
		struct err e = { 0 };
		cJSON *pod;

		pod_text(i, buf, sizeof(buf), ns, name);
		pod = cJSON_Parse(buf);
		t0 = util_mono_us();
		r = store_create(s, "pods", ns, name, pod, &obj, &e);
		spent += util_mono_us() - t0;
		if (r < 0) {
			fprintf(stderr, "create: %s\n", e.message);
			return 1;
		}
		json_total += obj->json_len;
		store_obj_unref(obj);
		cJSON_Delete(pod);
	}
	cpu = cpu_us() - cpu0 - gen_cpu_us();
	printf("store  create  %d pods (avg %zu B json): %.0f creates/s (%.1f us wall, %.1f us "
	       "CPU each)\n",
	       npods, json_total / npods, npods / (spent / 1e6), (double)spent / npods,
	       (double)cpu / npods);
	printf("store  RSS after %d pods: %ld KB, heap in use %ld KB (process baseline %ld KB)\n",
	       npods, rss_kb(), heap_kb(), rss0);
	printf("store  list    %d pods: %.2f ms (visit), ", npods, list_ms(s, false, &bytes));
	printf("%.2f ms (copy %zu KB)\n", list_ms(s, true, &bytes), bytes / 1024);

	/* status updates, what node agents do most */
	spent = 0;
	for (int i = 0; i < npods; i++) {
		cJSON *status = cJSON_Parse("{\"phase\":\"Running\",\"podIP\":\"10.1.2.3\","
					    "\"conditions\":[{\"type\":\"Ready\",\"status\":"
					    "\"True\"}],\"qosClass\":\"Burstable\"}");
		struct err e = { 0 };

		snprintf(ns, sizeof(ns), "ns-%d", i % 20);
		snprintf(name, sizeof(name), "web-7d4b9c8f6d-%05d", i);
		t0 = util_mono_us();
		r = store_update_status(s, "pods", ns, name, status, 0, NULL, &e);
		spent += util_mono_us() - t0;
		cJSON_Delete(status);
		if (r < 0) {
			fprintf(stderr, "status: %s\n", e.message);
			return 1;
		}
	}
	store_stats_get(s, &st);
	printf("store  status  %d updates: %.0f/s; RSS %ld KB (watch window pins <= 8 MiB "
	       "of old versions), oldest rv %" PRIu64 " of %" PRIu64 "\n",
	       npods, npods / (spent / 1e6), rss_kb(), store_rv_oldest(s), store_rv(s));
	store_close(s);
	return 0;
}

/* What a restarted daemon holds: everything loaded from SQLite, in a fresh process. */
static int phase_reopen(void)
{
	char path[300];
	struct store_options o = { .path = path, .node_name = "bench" };
	struct store *s;
	long rss0 = rss_kb();
	uint64_t t0;

	snprintf(path, sizeof(path), "%s/store.db", dir);
	t0 = util_mono_us();
	if (store_open(&o, &s) < 0)
		return 1;
	printf("store  reopen  %zu objects: %.0f ms; RSS %ld KB, heap in use %ld KB "
	       "(process baseline %ld KB)\n",
	       store_count(s, "pods", NULL), (double)(util_mono_us() - t0) / 1000.0, rss_kb(),
	       heap_kb(), rss0);
	store_close(s);
	return 0;
}

static int phase_sqlite(void)
{
	char path[300], buf[4096], ns[32], name[64];
	sqlite3 *db;
	sqlite3_stmt *ins, *begin, *commit, *sel;
	uint64_t spent = 0, t0, cpu0, cpu;
	long rss0 = rss_kb();
	double best = 1e9;
	size_t bytes = 0;

	snprintf(path, sizeof(path), "%s/raw.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 1;
	sqlite3_exec(db,
		     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		     "PRAGMA locking_mode = EXCLUSIVE; PRAGMA wal_autocheckpoint = 8192;"
		     "CREATE TABLE objects (resource TEXT NOT NULL, ns TEXT NOT NULL,"
		     " name TEXT NOT NULL, uid TEXT NOT NULL, rv INTEGER NOT NULL,"
		     " spec TEXT NOT NULL, spec_hlc INTEGER NOT NULL, spec_node TEXT NOT NULL,"
		     " status TEXT, status_hlc INTEGER NOT NULL DEFAULT 0, status_node TEXT,"
		     " deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (resource, ns, name));",
		     NULL, NULL, NULL);
	sqlite3_prepare_v2(db,
			   "INSERT INTO objects VALUES ('pods', ?1, ?2, ?3, ?4, ?5, ?4, 'bench', ?6,"
			   " ?4, 'bench', 0)",
			   -1, &ins, NULL);
	sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL);
	sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL);
	cpu = 0;
	for (int i = 0; i < npods; i++) {
		/* the spec and status texts as the store would write them */
		cJSON *pod, *status;
		char *spec, *st;

		pod_text(i, buf, sizeof(buf), ns, name);
		pod = cJSON_Parse(buf);
		status = cJSON_DetachItemFromObject(pod, "status");
		spec = cJSON_PrintUnformatted(pod);
		st = cJSON_PrintUnformatted(status);
		t0 = util_mono_us();
		cpu0 = cpu_us();
		sqlite3_step(begin);
		sqlite3_reset(begin);
		sqlite3_bind_text(ins, 1, ns, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, cJSON_GetStringValue(cJSON_GetObjectItem(
						  cJSON_GetObjectItem(pod, "metadata"), "uid")),
				  -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 4, i + 1);
		sqlite3_bind_text(ins, 5, spec, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 6, st, -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
			return 1;
		}
		sqlite3_reset(ins);
		sqlite3_step(commit);
		sqlite3_reset(commit);
		cpu += cpu_us() - cpu0;
		spent += util_mono_us() - t0;
		free(spec);
		free(st);
		cJSON_Delete(status);
		cJSON_Delete(pod);
	}
	printf("sqlite insert  %d rows, 1 txn each: %.0f inserts/s (%.1f us wall, %.1f us CPU "
	       "each)\n",
	       npods, npods / (spent / 1e6), (double)spent / npods, (double)cpu / npods);
	sqlite3_prepare_v2(db,
			   "SELECT ns, name, uid, rv, spec, status FROM objects"
			   " WHERE resource = 'pods' ORDER BY ns, name",
			   -1, &sel, NULL);
	for (int r = 0; r < 5; r++) {
		t0 = util_mono_us();
		bytes = 0;
		while (sqlite3_step(sel) == SQLITE_ROW)
			bytes += (size_t)sqlite3_column_bytes(sel, 4) +
				 (size_t)sqlite3_column_bytes(sel, 5);
		sqlite3_reset(sel);
		double ms = (double)(util_mono_us() - t0) / 1000.0;
		if (ms < best)
			best = ms;
	}
	printf("sqlite select  %d rows: %.2f ms (%zu KB of text)\n", npods, best, bytes / 1024);
	printf("sqlite RSS after %d rows: %ld KB (process baseline %ld KB)\n", npods, rss_kb(),
	       rss0);
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	sqlite3_close(db);
	return 0;
}

static int run_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 1;
	if (pid == 0) {
		int r = fn();

		fflush(stdout);
		_exit(r);
	}
	if (waitpid(pid, &status, 0) < 0)
		return 1;
	fflush(stdout);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	const char *base = NULL;
	char cmd[400];
	int c, r;

	while ((c = getopt(argc, argv, "n:d:")) != -1) {
		if (c == 'n')
			npods = atoi(optarg);
		else if (c == 'd')
			base = optarg;
		else
			return 2;
	}
	if (base)
		snprintf(dir, sizeof(dir), "%s", base);
	else if (!mkdtemp(strcpy(dir, "/tmp/shoal-store-bench-XXXXXX")))
		return 1;
	util_mkdir_p(dir, 0700);
	fflush(stdout);
	r = run_child(phase_store);
	if (!r)
		r = run_child(phase_reopen);
	if (!r)
		r = run_child(phase_sqlite);
	if (!base) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	return r;
}
