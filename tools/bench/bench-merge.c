// SPDX-License-Identifier: Apache-2.0
/*
 * A receiver's store work per merged create: N new configmaps (the bodies bench_replication.py
 * step 1 creates, as the writer's spec_print() makes them) merged into a file store in pushes
 * of B registers (one store_merge transaction each), with one watch on everything as the
 * daemon has. Prints CPU µs a register (process CPU, so the machine's load matters less).
 *
 *   build/bench/bench-merge [-n CREATES] [-b PER_PUSH] [-r ROUNDS] [-d DIR]
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "sched/hlc.h"
#include "sched/store.h"

static uint64_t cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void on_event(const struct store_event *ev, void *userdata)
{
	(*(size_t *)userdata)++;
}

struct gen {
	char name[32], uid[37], body[512];
};

int main(int argc, char **argv)
{
	size_t n = 20000, per = 46, rounds = 3, events = 0;
	const char *dir = "/tmp";
	int c;

	while ((c = getopt(argc, argv, "n:b:r:d:")) != -1) {
		if (c == 'n')
			n = strtoul(optarg, NULL, 10);
		else if (c == 'b')
			per = strtoul(optarg, NULL, 10);
		else if (c == 'r')
			rounds = strtoul(optarg, NULL, 10);
		else if (c == 'd')
			dir = optarg;
		else
			return 2;
	}
	struct gen *g = calloc(n, sizeof(*g));
	struct store_reg *regs = calloc(n, sizeof(*regs));
	char payload[201];

	if (!g || !regs || !per)
		return 1;
	memset(payload, 'x', 200);
	payload[200] = 0;
	for (size_t r = 0; r < rounds; r++) {
		uint64_t now = util_now_ms(), t0, t;
		char path[512];
		struct store *s = NULL;
		struct store_watch *w = NULL;

		for (size_t i = 0; i < n; i++) {
			snprintf(g[i].name, sizeof(g[i].name), "many-%06zu", i);
			util_uuid4(g[i].uid);
			snprintf(g[i].body, sizeof(g[i].body),
				 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
				 "\"%s\",\"labels\":{\"app\":\"bench-repl\"},\"namespace\":\"default\","
				 "\"uid\":\"%s\",\"creationTimestamp\":\"2026-12-02T23:46:31Z\"},"
				 "\"data\":{\"payload\":\"%s\"}}",
				 g[i].name, g[i].uid, payload);
			regs[i] = (struct store_reg){
				.kind = STORE_REG_SPEC,
				.resource = "configmaps",
				.ns = "default",
				.name = g[i].name,
				.uid = g[i].uid,
				.born = HLC_MAKE(now - 1000, i & 0xffff),
				.hlc = HLC_MAKE(now - 1000, i & 0xffff),
				.node = "n2",
				.body = g[i].body,
				.body_len = strlen(g[i].body),
			};
		}
		snprintf(path, sizeof(path), "%s/bench-merge-%d.db", dir, (int)getpid());
		unlink(path);
		if (store_open(&(struct store_options){ .path = path, .node_name = "n1" }, &s) < 0 ||
		    store_watch_add(s, NULL, store_rv(s), on_event, &events, &w) < 0)
			return 1;
		t0 = cpu_us();
		for (size_t i = 0; i < n; i += per) {
			struct store_merge_stats st;

			if (store_merge(s, regs + i, n - i < per ? n - i : per, &st) < 0 ||
			    st.applied != (n - i < per ? n - i : per))
				return 1;
		}
		t = cpu_us() - t0;
		printf("round %zu: %zu creates in pushes of %zu: %.2f us CPU a create (%zu events)\n",
		       r + 1, n, per, (double)t / (double)n, events);
		events = 0;
		store_close(s);
		unlink(path);
		strcat(path, "-wal");
		unlink(path);
		path[strlen(path) - 4] = 0;
		strcat(path, "-shm");
		unlink(path);
	}
	free(g);
	free(regs);
	return 0;
}
