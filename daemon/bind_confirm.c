// SPDX-License-Identifier: Apache-2.0
/* Binding confirmation on the event loop (daemon/bind_confirm.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bind_confirm.h"
#include "lib/histo.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/confirm.h"

/* while answers are owed, members that stopped being alive are looked for this often */
#define MEMBERS_POLL_MS 100

static const uint64_t bounds_ms[] = {1, 2, 5, 10, 25, 100, 500, 1000};

struct bind_confirm {
	struct event_base *base;
	struct replication *repl;
	struct members *members;
	char *self;
	struct sched_confirm *c;
	struct event *timer;
	/* bindings committed and not asked about yet: asked together, one request per member,
	 * once the scheduler's pass that wrote them returns to the loop */
	struct event *flush_ev;
	struct qkey {
		char *ns, *name, *uid;
	} * q;
	size_t nq, capq;
	void (*notify)(void *ud, const char *uid);
	void *notify_ud;
	/* metrics */
	uint64_t confirmed, lost, timed_out, unanswered;
	struct histo lat; /* ms */
};

static void arm(struct bind_confirm *b)
{
	uint64_t now = util_now_ms(), at = sched_confirm_next_deadline(b->c);
	struct timeval tv;

	if (sched_confirm_pending(b->c) && at > now + MEMBERS_POLL_MS)
		at = now + MEMBERS_POLL_MS;
	if (at == UINT64_MAX) {
		evtimer_del(b->timer);
		return;
	}
	at = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(at / 1000);
	tv.tv_usec = (suseconds_t)(at % 1000) * 1000;
	evtimer_add(b->timer, &tv);
}

static void on_flush(evutil_socket_t fd, short what, void *arg);
static void q_clear(struct bind_confirm *b);

static void on_settled(void *ud, const char *uid, enum sched_confirm_state st, uint64_t waited,
		       bool timed_out)
{
	struct bind_confirm *b = ud;

	if (st == SCHED_CONFIRM_LOST) {
		b->lost++;
	} else {
		b->confirmed++;
		b->timed_out += timed_out;
	}
	histo_observe(&b->lat, waited);
	if (timed_out)
		log_info("pod uid %s: binding not confirmed by every member within %d ms: it "
			 "stands (the earliest binding still wins when they meet)",
			 uid, SCHED_CONFIRM_WAIT_MS);
	if (b->notify)
		b->notify(b->notify_ud, uid);
}

/* Members that are not alive any more are not waited for. */
static void members_check(struct bind_confirm *b, uint64_t now)
{
	size_t n = members_view_count(b->members);

	for (size_t i = 0; i < n; i++) {
		const struct members_info *m = members_view_get(b->members, i);

		if (m->state != MEMBERS_ALIVE)
			sched_confirm_member_gone(b->c, m->name, now);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct bind_confirm *b = arg;
	uint64_t now = util_now_ms();

	if (sched_confirm_pending(b->c))
		members_check(b, now);
	sched_confirm_expire(b->c, now);
	arm(b);
}

int bind_confirm_new(struct event_base *base, struct replication *repl, struct members *members,
		     const char *self, void (*notify)(void *ud, const char *uid), void *notify_ud,
		     struct bind_confirm **ret)
{
	struct bind_confirm *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;
	b->lat = HISTO_INIT(bounds_ms, 3);
	b->base = base;
	b->repl = repl;
	b->members = members;
	b->notify = notify;
	b->notify_ud = notify_ud;
	b->self = strdup(self);
	b->timer = evtimer_new(base, on_timer, b);
	b->flush_ev = evtimer_new(base, on_flush, b);
	if (!b->self || !b->timer || !b->flush_ev) {
		bind_confirm_free(b);
		return -ENOMEM;
	}
	r = sched_confirm_new(on_settled, b, &b->c);
	if (r < 0) {
		bind_confirm_free(b);
		return r;
	}
	*ret = b;
	return 0;
}

struct bind_confirm *bind_confirm_free(struct bind_confirm *b)
{
	if (!b)
		return NULL;
	if (b->timer)
		event_free(b->timer);
	if (b->flush_ev)
		event_free(b->flush_ev);
	q_clear(b);
	free(b->q);
	b->notify = NULL;
	sched_confirm_free(b->c);
	free(b->self);
	free(b);
	return NULL;
}

int bind_confirm_begin(struct bind_confirm *b, const char *uid)
{
	if (!b)
		return -EINVAL;
	return sched_confirm_begin(b->c, uid, util_now_ms());
}

void bind_confirm_cancel(struct bind_confirm *b, const char *uid)
{
	if (b)
		sched_confirm_cancel(b->c, uid);
}

static void on_answer(void *ud, const char *node, const char *uid, const char *bound, int err)
{
	struct bind_confirm *b = ud;
	enum sched_confirm_answer a = SCHED_CONFIRM_UNKNOWN;

	if (err < 0)
		b->unanswered++;
	else if (bound)
		a = streq(bound, b->self) ? SCHED_CONFIRM_HERE : SCHED_CONFIRM_ELSEWHERE;
	if (a == SCHED_CONFIRM_ELSEWHERE && sched_confirm_state(b->c, uid) == SCHED_CONFIRM_PENDING)
		log_info("pod uid %s: %s holds an earlier binding to %s: this node's binding lost, "
			 "the pod starts nothing here",
			 uid, node, bound);
	sched_confirm_answer(b->c, uid, node, a, util_now_ms());
	arm(b);
}

static void q_clear(struct bind_confirm *b)
{
	for (size_t i = 0; i < b->nq; i++) {
		free(b->q[i].ns);
		free(b->q[i].name);
		free(b->q[i].uid);
	}
	b->nq = 0;
}

/* Ask every other alive member about q[from, from + n) in one request each. */
static void ask_batch(struct bind_confirm *b, size_t from, size_t n, const char **asked)
{
	const char *ns[REPL_CONFIRM_MAX], *names[REPL_CONFIRM_MAX], *uids[REPL_CONFIRM_MAX];
	size_t nm = members_view_count(b->members), k = 0;
	uint64_t now = util_now_ms();

	for (size_t i = 0; i < n; i++) {
		ns[i] = b->q[from + i].ns;
		names[i] = b->q[from + i].name;
		uids[i] = b->q[from + i].uid;
	}
	for (size_t i = 0; i < nm; i++) {
		const struct members_info *m = members_view_get(b->members, i);

		if (m->state != MEMBERS_ALIVE || streq(m->name, b->self))
			continue;
		/* answers come later, never from inside the call */
		if (replication_confirm(b->repl, m->name, ns, names, uids, n, on_answer, b) < 0) {
			b->unanswered++;
			continue;
		}
		asked[k++] = m->name;
	}
	for (size_t i = 0; i < n; i++)
		sched_confirm_ask(b->c, uids[i], asked, k, now);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct bind_confirm *b = arg;
	size_t nm = members_view_count(b->members);
	_cleanup_free_ const char **asked = calloc(nm ? nm : 1, sizeof(*asked));

	for (size_t i = 0; i < b->nq; i += REPL_CONFIRM_MAX) {
		size_t n = b->nq - i < REPL_CONFIRM_MAX ? b->nq - i : REPL_CONFIRM_MAX;

		if (asked)
			ask_batch(b, i, n, asked);
		else /* cannot ask: the bindings stand as they would without confirmation */
			for (size_t k = 0; k < n; k++)
				sched_confirm_ask(b->c, b->q[i + k].uid, NULL, 0, util_now_ms());
	}
	q_clear(b);
	arm(b);
}

void bind_confirm_ask(struct bind_confirm *b, const char *ns, const char *name, const char *uid)
{
	struct timeval now = {0, 0};
	struct qkey *k;

	if (!b || sched_confirm_state(b->c, uid) != SCHED_CONFIRM_PENDING)
		return;
	if (b->nq == b->capq) {
		size_t cap = b->capq ? b->capq * 2 : 32;
		struct qkey *nq = reallocarray(b->q, cap, sizeof(*nq));

		if (!nq) {
			sched_confirm_ask(b->c, uid, NULL, 0, util_now_ms());
			return;
		}
		b->q = nq;
		b->capq = cap;
	}
	k = &b->q[b->nq];
	k->ns = strdup(ns);
	k->name = strdup(name);
	k->uid = strdup(uid);
	if (!k->ns || !k->name || !k->uid) {
		free(k->ns);
		free(k->name);
		free(k->uid);
		sched_confirm_ask(b->c, uid, NULL, 0, util_now_ms());
		return;
	}
	b->nq++;
	if (!evtimer_pending(b->flush_ev, NULL))
		evtimer_add(b->flush_ev, &now);
}

enum pods_binding bind_confirm_binding(void *ud, const char *uid)
{
	struct bind_confirm *b = ud;

	switch (b ? sched_confirm_state(b->c, uid) : SCHED_CONFIRM_NONE) {
	case SCHED_CONFIRM_PENDING:
		return PODS_BINDING_PENDING;
	case SCHED_CONFIRM_LOST:
		return PODS_BINDING_LOST;
	default:
		return PODS_BINDING_STANDS;
	}
}

int bind_confirm_metrics(void *ud, char **text)
{
	struct bind_confirm *b = ud;
	_cleanup_free_ char *lat = NULL;

	if (histo_format(&b->lat, "shoal_sched_bind_confirm_seconds",
			 "From this node's binding of a pod to its confirmation (or loss) by the "
			 "other live members.",
			 &lat) < 0)
		return -ENOMEM;
	if (asprintf(text,
		     "%s"
		     "# HELP shoal_sched_bind_confirms_total Bindings of this node settled by "
		     "confirmation, by result (timeout: some member not waited for past the "
		     "deadline).\n"
		     "# TYPE shoal_sched_bind_confirms_total counter\n"
		     "shoal_sched_bind_confirms_total{result=\"confirmed\"} %" PRIu64 "\n"
		     "shoal_sched_bind_confirms_total{result=\"lost\"} %" PRIu64 "\n"
		     "shoal_sched_bind_confirms_total{result=\"timeout\"} %" PRIu64 "\n"
		     "# HELP shoal_sched_bind_confirm_unanswered_total Confirmation questions "
		     "that got no answer (send failed, connection error, timeout).\n"
		     "# TYPE shoal_sched_bind_confirm_unanswered_total counter\n"
		     "shoal_sched_bind_confirm_unanswered_total %" PRIu64 "\n",
		     lat, b->confirmed - b->timed_out, b->lost, b->timed_out, b->unanswered) < 0)
		return -ENOMEM;
	return 0;
}
