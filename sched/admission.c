// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "lib/macro.h"
#include "sched/admission.h"

struct admitted {
	char *uid;
	struct sched_pod sp; /* obj is NULL once admitted: only requests and ports are kept */
	bool checked;	     /* admitted through the filters, not only recorded */
};

struct admission {
	struct sched_node node;
	struct admitted *pods;
	size_t n, cap;
};

int admission_new(const cJSON *node, struct admission **ret)
{
	struct admission *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	r = sched_node_init(&a->node, node);
	if (r < 0) {
		free(a);
		return r;
	}
	a->node.no_pods = true; /* the ledger keeps requests, not pods */
	*ret = a;
	return 0;
}

struct admission *admission_free(struct admission *a)
{
	if (!a)
		return NULL;
	for (size_t i = 0; i < a->n; i++) {
		free(a->pods[i].uid);
		sched_pod_release(&a->pods[i].sp);
	}
	free(a->pods);
	sched_node_release(&a->node);
	free(a);
	return NULL;
}

int admission_set_node(struct admission *a, const cJSON *node)
{
	struct sched_node sn;
	int r = sched_node_init(&sn, node);

	if (r < 0)
		return r;
	a->node.obj = sn.obj;
	a->node.name = sn.name;
	a->node.labels = sn.labels;
	a->node.taints = sn.taints;
	a->node.unschedulable = sn.unschedulable;
	a->node.alloc = sn.alloc;
	return 0;
}

static ssize_t find(const struct admission *a, const char *uid)
{
	for (size_t i = 0; i < a->n; i++) {
		if (!strcmp(a->pods[i].uid, uid))
			return (ssize_t)i;
	}
	return -1;
}

static long admit(struct admission *a, const char *uid, const cJSON *pod, bool check)
{
	struct sched_pod sp;
	unsigned why;
	int r;

	ssize_t i = find(a, uid);

	if (i >= 0) {
		a->pods[i].checked |= check;
		return 0;
	}
	r = sched_pod_init(&sp, pod);
	if (r < 0)
		return r;
	why = check ? sched_filter(&sp, &a->node, NULL) : 0;
	if (why) {
		sched_pod_release(&sp);
		return (long)why;
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct admitted *np = realloc(a->pods, cap * sizeof(*np));

		if (!np)
			goto nomem;
		a->pods = np;
		a->cap = cap;
	}
	a->pods[a->n].uid = strdup(uid);
	if (!a->pods[a->n].uid)
		goto nomem;
	r = sched_node_commit(&a->node, &sp);
	if (r < 0) {
		free(a->pods[a->n].uid);
		sched_pod_release(&sp);
		return r;
	}
	sp.obj = NULL;
	a->pods[a->n].checked = check;
	a->pods[a->n++].sp = sp;
	return 0;
nomem:
	sched_pod_release(&sp);
	return -ENOMEM;
}

long admission_admit(struct admission *a, const char *uid, const cJSON *pod)
{
	return admit(a, uid, pod, true);
}

int admission_record(struct admission *a, const char *uid, const cJSON *pod)
{
	return (int)admit(a, uid, pod, false);
}

bool admission_release(struct admission *a, const char *uid)
{
	ssize_t i = find(a, uid);

	if (i < 0)
		return false;
	sched_node_uncommit(&a->node, &a->pods[i].sp);
	free(a->pods[i].uid);
	sched_pod_release(&a->pods[i].sp);
	a->pods[i] = a->pods[--a->n];
	return true;
}

bool admission_has(const struct admission *a, const char *uid)
{
	return find(a, uid) >= 0;
}

bool admission_checked(const struct admission *a, const char *uid)
{
	ssize_t i = find(a, uid);

	return i >= 0 && a->pods[i].checked;
}

size_t admission_count(const struct admission *a)
{
	return a->n;
}

void admission_usage(const struct admission *a, struct sched_res *used, struct sched_res *alloc)
{
	if (used)
		*used = a->node.used;
	if (alloc)
		*alloc = a->node.alloc;
}
