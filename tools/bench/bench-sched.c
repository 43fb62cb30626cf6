// SPDX-License-Identifier: Apache-2.0
/*
 * make bench-sched: the real placement code (sched/placement.c) on a simulated cluster of 1,000
 * nodes held in memory; pods placed one after another and committed to their node, as the owner
 * of each pod would. Then the over-commit race: over 100 seeds, two proposers with the same
 * stale view propose onto one node at once and the node's admission ledger decides; admitted
 * must never exceed allocatable.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sched/admission.h"
#include "sched/placement.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static cJSON *mknode(int i)
{
	char buf[1024];

	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"node-%d\",\"labels\":{\"kubernetes.io/hostname\":"
		 "\"node-%d\",\"topology.kubernetes.io/zone\":\"zone-%d\",\"kubernetes.io/os\":"
		 "\"linux\"}},\"spec\":{%s},\"status\":{\"allocatable\":{\"cpu\":\"32\","
		 "\"memory\":\"128Gi\",\"pods\":\"110\",\"ephemeral-storage\":\"100Gi\"}}}",
		 i, i, i % 3,
		 i % 10 == 0 ? "\"taints\":[{\"key\":\"dedicated\",\"value\":\"x\","
			       "\"effect\":\"PreferNoSchedule\"}]"
			     : "");
	return cJSON_Parse(buf);
}

/* scored: as the daemon places, filtered against one view and scored against a second
 * (sched_place_scored: the creation-order prefix, here the same pods) */
static int bench_basic(size_t n_nodes, size_t n_pods, enum sched_strategy strategy, bool scored)
{
	cJSON **objs = calloc(n_nodes, sizeof(*objs));
	struct sched_node *ns = calloc(n_nodes, sizeof(*ns));
	struct sched_node *sc = calloc(n_nodes, sizeof(*sc));
	cJSON *pod = cJSON_Parse(
	    "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"nodeSelector\":{\"kubernetes.io/os\":"
	    "\"linux\"},\"containers\":[{\"name\":\"c\",\"image\":\"pause\",\"resources\":{"
	    "\"requests\":{\"cpu\":\"100m\",\"memory\":\"256Mi\"}}}]}}");
	struct sched_pod sp;
	size_t placed = 0;
	double t0, dt;

	if (!objs || !ns || !sc || !pod)
		return -ENOMEM;
	for (size_t i = 0; i < n_nodes; i++) {
		objs[i] = mknode((int)i);
		if (!objs[i] || sched_node_init(&ns[i], objs[i]) < 0 ||
		    sched_node_init(&sc[i], objs[i]) < 0)
			return -EINVAL;
	}
	if (sched_pod_init(&sp, pod) < 0)
		return -EINVAL;
	t0 = now();
	for (size_t k = 0; k < n_pods; k++) {
		int i = sched_place_scored(&sp, ns, scored ? sc : NULL, n_nodes, strategy, NULL, 0,
					   k + 1, NULL);

		if (i < 0)
			break;
		sched_node_commit(&ns[i], &sp);
		if (scored)
			sched_node_commit(&sc[i], &sp);
		placed++;
	}
	dt = now() - t0;
	printf("placement %-14s %zu nodes: %zu pods in %.3f s = %.0f pods/s%s\n",
	       strategy == SCHED_MOST_ALLOCATED ? "most-allocated" : "least-allocated", n_nodes,
	       placed, dt, placed / dt, scored ? " (scored view, the daemon's)" : "");
	sched_pod_release(&sp);
	cJSON_Delete(pod);
	for (size_t i = 0; i < n_nodes; i++) {
		sched_node_release(&ns[i]);
		sched_node_release(&sc[i]);
		cJSON_Delete(objs[i]);
	}
	free(ns);
	free(sc);
	free(objs);
	return placed == n_pods ? 0 : -ENOSPC;
}

/* Required anti-affinity on the hostname (scheduler_perf's SchedulingPodAntiAffinity shape):
 * every pod keeps off the nodes of the others, so each placement checks every placed pod. */
static int bench_anti(size_t n_nodes, size_t n_pods, bool scored)
{
	cJSON **objs = calloc(n_nodes, sizeof(*objs));
	struct sched_node *ns = calloc(n_nodes, sizeof(*ns));
	struct sched_node *sc = calloc(n_nodes, sizeof(*sc));
	cJSON *pod = cJSON_Parse(
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":\"default\",\"labels\":{\"color\":"
	    "\"green\"}},\"spec\":{\"affinity\":{\"podAntiAffinity\":{"
	    "\"requiredDuringSchedulingIgnoredDuringExecution\":[{\"topologyKey\":"
	    "\"kubernetes.io/hostname\",\"labelSelector\":{\"matchLabels\":{\"color\":"
	    "\"green\"}}}]}},\"containers\":[{\"name\":\"c\",\"image\":\"pause\","
	    "\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"256Mi\"}}}]}}");
	struct sched_pod sp;
	size_t placed = 0;
	double t0, dt;

	if (!objs || !ns || !sc || !pod)
		return -ENOMEM;
	for (size_t i = 0; i < n_nodes; i++) {
		objs[i] = mknode((int)i);
		if (!objs[i] || sched_node_init(&ns[i], objs[i]) < 0 ||
		    sched_node_init(&sc[i], objs[i]) < 0)
			return -EINVAL;
	}
	if (sched_pod_init(&sp, pod) < 0)
		return -EINVAL;
	t0 = now();
	for (size_t k = 0; k < n_pods; k++) {
		int i = sched_place_scored(&sp, ns, scored ? sc : NULL, n_nodes,
					   SCHED_LEAST_ALLOCATED, NULL, 0, k + 1, NULL);

		if (i < 0)
			break;
		sched_node_commit(&ns[i], &sp);
		if (scored)
			sched_node_commit(&sc[i], &sp);
		placed++;
	}
	dt = now() - t0;
	printf("placement anti-affinity  %zu nodes: %zu pods in %.3f s = %.0f pods/s%s\n", n_nodes,
	       placed, dt, placed / dt, scored ? " (scored view, the daemon's)" : "");
	/* one more: every node holds a green pod */
	int extra = sched_place(&sp, ns, n_nodes, SCHED_LEAST_ALLOCATED, NULL, 0, NULL);
	sched_pod_release(&sp);
	cJSON_Delete(pod);
	for (size_t i = 0; i < n_nodes; i++) {
		sched_node_release(&ns[i]);
		sched_node_release(&sc[i]);
		cJSON_Delete(objs[i]);
	}
	free(ns);
	free(sc);
	free(objs);
	return placed == n_pods && extra == -ENOSPC ? 0 : -EPROTO;
}

/*
 * Owners herd (docs/scheduling.md): n_owners owners, one view of n_nodes nodes already holding
 * 0..19 pods each, a burst of n_pods pods (pod k owned by owner k % n_owners). "alone": each
 * owner places only its own pods; "replay": each places every pod of the burst in creation order
 * with the pod's seed and keeps its own decisions (the daemon's scheme). Printed: the spread of
 * pods per node after the burst (min..max) for both, against one scheduler placing them all.
 */
static int bench_herd(size_t n_nodes, size_t n_pods, size_t n_owners)
{
	cJSON **objs = calloc(n_nodes, sizeof(*objs));
	struct sched_node *v = calloc(n_nodes, sizeof(*v));
	int *before = calloc(n_nodes, sizeof(*before)), *got[3];
	cJSON *pod = cJSON_Parse("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{"
				 "\"name\":\"c\",\"image\":\"pause\",\"resources\":{"
				 "\"requests\":{\"cpu\":\"100m\",\"memory\":\"256Mi\"}}}]}}");
	const char *mode[3] = {"alone", "replay", "one scheduler"};
	struct sched_pod sp;
	double dt = 0;
	int rc = 0;

	if (!objs || !v || !before || !pod || sched_pod_init(&sp, pod) < 0)
		return -ENOMEM;
	srand(7);
	for (size_t i = 0; i < n_nodes; i++) {
		objs[i] = mknode((int)i);
		before[i] = rand() % 20;
	}
	for (int m = 0; m < 3; m++) {
		got[m] = calloc(n_nodes, sizeof(int));
		if (!got[m])
			return -ENOMEM;
		for (size_t w = 0; w < (m == 2 ? 1 : n_owners); w++) {
			double t0 = now();
			for (size_t i = 0; i < n_nodes; i++) {
				if (sched_node_init(&v[i], objs[i]) < 0)
					return -EINVAL;
				for (int k = 0; k < before[i]; k++)
					sched_node_commit(&v[i], &sp);
			}
			for (size_t k = 0; k < n_pods; k++) {
				bool mine = m == 2 || k % n_owners == w;
				if (m == 0 && !mine)
					continue;
				int i = sched_place_r(&sp, v, n_nodes, SCHED_LEAST_ALLOCATED, NULL, 0,
						      k + 1, NULL);
				if (i < 0)
					return -ENOSPC;
				sched_node_commit(&v[i], &sp);
				if (mine)
					got[m][i]++;
			}
			if (m == 1 && w == 0)
				dt = now() - t0;
			for (size_t i = 0; i < n_nodes; i++)
				sched_node_release(&v[i]);
		}
		int lo = 1 << 30, hi = 0;
		for (size_t i = 0; i < n_nodes; i++) {
			int c = before[i] + got[m][i];
			lo = c < lo ? c : lo;
			hi = c > hi ? c : hi;
		}
		printf("owners herd, %zu owners, %zu nodes holding 0..19, a burst of %zu: %-13s "
		       "pods per node %d..%d\n",
		       n_owners, n_nodes, n_pods, mode[m], lo, hi);
	}
	for (size_t i = 0; i < n_nodes; i++)
		if (got[1][i] != got[2][i])
			rc = -EPROTO; /* replay must place as one scheduler */
	printf("owners herd: each owner replays the burst of %zu in %.3f s = %.0f pods/s\n", n_pods,
	       dt, n_pods / dt);
	for (int m = 0; m < 3; m++)
		free(got[m]);
	for (size_t i = 0; i < n_nodes; i++)
		cJSON_Delete(objs[i]);
	sched_pod_release(&sp);
	cJSON_Delete(pod);
	free(before);
	free(v);
	free(objs);
	return rc;
}

/* Two proposers, each with its own stale copy of the node, place pods onto it at once; the
 * node's ledger admits them in a random order. */
static int race(unsigned seed, size_t *admitted, size_t *rejected)
{
	char nb[512], pb[512];
	cJSON *node;
	struct admission *a;
	struct sched_node view[2];
	struct sched_res used, alloc;
	int rc = 0;

	srand(seed);
	snprintf(nb, sizeof(nb),
		 "{\"metadata\":{\"name\":\"n\"},\"status\":{\"allocatable\":{\"cpu\":\"%dm\","
		 "\"memory\":\"%dMi\",\"pods\":\"%d\"}}}",
		 1000 + rand() % 8000, 1024 + rand() % 8192, 5 + rand() % 50);
	node = cJSON_Parse(nb);
	if (!node || admission_new(node, &a) < 0)
		return -ENOMEM;
	sched_node_init(&view[0], node);
	sched_node_init(&view[1], node);
	for (int step = 0; step < 200; step++) {
		struct sched_pod sp[2];
		cJSON *pods[2];
		char uid[2][32];
		bool ok[2];

		for (int w = 0; w < 2; w++) {
			snprintf(pb, sizeof(pb),
				 "{\"spec\":{\"containers\":[{\"resources\":{\"requests\":{"
				 "\"cpu\":\"%dm\",\"memory\":\"%dMi\"}}}]}}",
				 50 + rand() % 700, 32 + rand() % 700);
			pods[w] = cJSON_Parse(pb);
			sched_pod_init(&sp[w], pods[w]);
			snprintf(uid[w], sizeof(uid[w]), "%d-%d", step, w);
			/* each proposer's placement sees only its own view */
			ok[w] = sched_place(&sp[w], &view[w], 1, SCHED_LEAST_ALLOCATED, NULL, 0,
					    NULL) == 0;
		}
		for (int k = 0; k < 2; k++) {
			int w = (rand() & 1) ? k : 1 - k;
			long r;

			if (!ok[w])
				continue;
			r = admission_admit(a, uid[w], pods[w]);
			if (r < 0) {
				rc = (int)r;
				break;
			}
			if (r == 0) {
				(*admitted)++;
				/* both proposers learn the binding once it is replicated */
				sched_node_commit(&view[0], &sp[w]);
				sched_node_commit(&view[1], &sp[w]);
			} else {
				(*rejected)++;
			}
		}
		admission_usage(a, &used, &alloc);
		if (used.cpu_m > alloc.cpu_m || used.mem > alloc.mem || used.pods > alloc.pods) {
			fprintf(stderr, "seed %u: over-committed\n", seed);
			rc = -EOVERFLOW;
		}
		for (int w = 0; w < 2; w++) {
			sched_pod_release(&sp[w]);
			cJSON_Delete(pods[w]);
		}
		if (rc)
			break;
	}
	sched_node_release(&view[0]);
	sched_node_release(&view[1]);
	admission_free(a);
	cJSON_Delete(node);
	return rc;
}

int main(void)
{
	size_t admitted = 0, rejected = 0;
	int r;

	r = bench_basic(1000, 10000, SCHED_LEAST_ALLOCATED, false);
	if (!r)
		r = bench_basic(1000, 10000, SCHED_MOST_ALLOCATED, false);
	if (!r)
		r = bench_anti(1000, 1000, false);
	if (!r)
		r = bench_basic(1000, 10000, SCHED_LEAST_ALLOCATED, true);
	if (!r)
		r = bench_anti(1000, 1000, true);
	if (!r)
		r = bench_herd(1000, 5000, 10);
	if (r) {
		fprintf(stderr, "bench-sched: %s\n", strerror(-r));
		return 1;
	}
	for (unsigned seed = 1; seed <= 100; seed++) {
		r = race(seed, &admitted, &rejected);
		if (r) {
			fprintf(stderr, "race seed %u: %s\n", seed, strerror(-r));
			return 1;
		}
	}
	printf("over-commit race, 100 seeds: %zu admitted, %zu rejected by the ledger, "
	       "0 over-committed\n",
	       admitted, rejected);
	return 0;
}
