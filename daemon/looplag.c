// SPDX-License-Identifier: Apache-2.0
/* Event-loop lag, measured by a timer's lateness. See looplag.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

#include "daemon/looplag.h"
#include "lib/histo.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/util.h"

/* µs: 1 ms .. 10 s */
static const uint64_t bounds_us[] = {1000,   5000,   10000,   25000,   50000,	100000,
				     250000, 500000, 1000000, 2500000, 5000000, 10000000};
#define LOG_EVERY_MS 10000 /* at most one stall line per 10 s, with how many were not logged */

struct looplag {
	struct event *timer;
	uint64_t due_us;	  /* when the timer should fire */
	int schedstat_fd;	  /* /proc/thread-self/schedstat of the loop's thread, or -1 */
	uint64_t run_us, wait_us; /* its CPU time and runqueue wait when the timer was armed */
	struct histo lag;	  /* µs */
	uint64_t max_us, stalls;
	uint64_t logged_ms, unlogged;
};

/* The loop thread's time on a CPU and waiting for one (µs), from /proc/thread-self/schedstat;
 * both 0 when it cannot be read. Read at every arm: a pread of a small file, ~20 per second. */
static void thread_sched_us(struct looplag *l, uint64_t *run, uint64_t *wait)
{
	unsigned long long a = 0, b = 0;
	char buf[96];
	ssize_t n;

	*run = *wait = 0;
	if (l->schedstat_fd < 0)
		return;
	n = pread(l->schedstat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = 0;
	if (sscanf(buf, "%llu %llu", &a, &b) == 2) {
		*run = a / 1000;
		*wait = b / 1000;
	}
}

static void arm(struct looplag *l)
{
	struct timeval tv = {0, LOOPLAG_PERIOD_MS * 1000};

	l->due_us = util_mono_us() + LOOPLAG_PERIOD_MS * 1000;
	thread_sched_us(l, &l->run_us, &l->wait_us);
	evtimer_add(l->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct looplag *l = arg;
	uint64_t now = util_mono_us();
	/* libevent arms from its cached time, at most a loop turn older than ours: never late
	 * by that, at worst a little early */
	uint64_t lag = now > l->due_us ? now - l->due_us : 0;

	histo_observe(&l->lag, lag);
	if (lag > l->max_us)
		l->max_us = lag;
	if (lag >= LOOPLAG_STALL_MS * 1000) {
		uint64_t run, wait, ms = now / 1000, span = lag + LOOPLAG_PERIOD_MS * 1000;

		thread_sched_us(l, &run, &wait);
		run -= l->run_us;
		wait -= l->wait_us;
		l->stalls++;
		if (!l->logged_ms || ms - l->logged_ms >= LOG_EVERY_MS) {
			/* ran: a callback was busy; waited: the process was starved of CPU; the
			 * rest: blocked (a syscall, a page fault, a lock) */
			log_warn("event loop: stalled %" PRIu64 " ms; of the last %" PRIu64
				 " ms its thread ran %" PRIu64 " ms, waited for a CPU %" PRIu64
				 " ms, slept or blocked %" PRIu64 " ms (%" PRIu64
				 " more stall(s) since the last line)",
				 lag / 1000, span / 1000, run / 1000, wait / 1000,
				 span > run + wait ? (span - run - wait) / 1000 : 0, l->unlogged);
			l->logged_ms = ms;
			l->unlogged = 0;
		} else {
			l->unlogged++;
		}
	}
	arm(l);
}

int looplag_new(struct event_base *base, struct looplag **ret)
{
	struct looplag *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->lag = HISTO_INIT(bounds_us, 6);
	l->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	l->timer = evtimer_new(base, on_timer, l);
	if (!l->timer) {
		if (l->schedstat_fd >= 0)
			close(l->schedstat_fd);
		free(l);
		return -ENOMEM;
	}
	arm(l);
	*ret = l;
	return 0;
}

struct looplag *looplag_free(struct looplag *l)
{
	if (l) {
		if (l->timer)
			event_free(l->timer);
		if (l->schedstat_fd >= 0)
			close(l->schedstat_fd);
		free(l);
	}
	return NULL;
}

int looplag_metrics(void *userdata, char **text)
{
	struct looplag *l = userdata;
	_cleanup_free_ char *lag = NULL;
	char help[160];

	snprintf(help, sizeof(help),
		 "How late a %d ms timer of the event loop fires: how long every event waited "
		 "behind a busy callback or for the CPU.",
		 LOOPLAG_PERIOD_MS);
	if (histo_format(&l->lag, "shoal_loop_lag_seconds", help, &lag) < 0)
		return -ENOMEM;
	if (asprintf(text,
		     "%s"
		     "# HELP shoal_loop_lag_max_seconds Largest event-loop lag since start.\n"
		     "# TYPE shoal_loop_lag_max_seconds gauge\n"
		     "shoal_loop_lag_max_seconds %.6f\n"
		     "# HELP shoal_loop_stalls_total Event-loop lags of %d ms or more (logged).\n"
		     "# TYPE shoal_loop_stalls_total counter\n"
		     "shoal_loop_stalls_total %" PRIu64 "\n",
		     lag, (double)l->max_us / 1e6, LOOPLAG_STALL_MS, l->stalls) < 0)
		return -ENOMEM;
	return 0;
}
