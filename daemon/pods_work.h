/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small thread pool for the pod manager's slow work (image pulls, netns plumbing, crun calls,
 * probes). A job's work() runs on a worker thread and must not touch the store or any state the
 * event loop owns; its done() runs afterwards on the event loop thread, where results are
 * applied. Results reach the loop through an eventfd the loop watches, so the API keeps serving
 * while workers block.
 */
#ifndef SHOAL_DAEMON_PODS_WORK_H
#define SHOAL_DAEMON_PODS_WORK_H

#include <event2/event.h>

struct pods_job {
	void (*work)(struct pods_job *j); /* worker thread */
	void (*done)(struct pods_job *j); /* event loop; frees the job */
	struct pods_job *next;
};

struct pods_pool;

int pods_pool_new(struct event_base *base, int threads, struct pods_pool **ret);
/* Stops the workers after their current job; queued jobs are dropped without done(). */
struct pods_pool *pods_pool_free(struct pods_pool *p);
void pods_pool_submit(struct pods_pool *p, struct pods_job *j);
/* Jobs queued or running. */
int pods_pool_pending(struct pods_pool *p);

#endif
