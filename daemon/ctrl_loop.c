// SPDX-License-Identifier: Apache-2.0
/* Drives the controller manager from the daemon's event loop: run soon after work is queued,
 * and again when the earliest delayed key is due. */
#include <event2/event.h>

#include "daemon/ctrl_loop.h"
#include "daemon/events.h"
#include "lib/log.h"
#include "lib/util.h"

#define CTRL_EVENT_SOURCES 8

struct ctrl_loop {
	struct event_base *base;
	struct ctrl_mgr *mgr;
	struct members *members;
	struct store *store;
	struct event *ev;
	bool scheduled;
	/* an Event recorder per controller component, made when it first records */
	struct {
		char *component;
		struct events *ev;
	} sources[CTRL_EVENT_SOURCES];
};

static void on_event(void *userdata, const char *component, const cJSON *obj, const char *type,
		     const char *reason, const char *message)
{
	struct ctrl_loop *l = userdata;
	size_t i;

	for (i = 0; i < CTRL_EVENT_SOURCES && l->sources[i].component; i++)
		if (streq(l->sources[i].component, component))
			break;
	if (i == CTRL_EVENT_SOURCES)
		return;
	if (!l->sources[i].component) {
		const char *self = l->members ? members_self(l->members) : NULL;
		if (events_new(l->store, component, self ? self : "", &l->sources[i].ev) < 0)
			return;
		l->sources[i].component = strdup(component);
		if (!l->sources[i].component) {
			l->sources[i].ev = events_free(l->sources[i].ev);
			return;
		}
	}
	events_record(l->sources[i].ev, obj, NULL, type, reason, "%s", message);
}

static void ctrl_loop_arm(struct ctrl_loop *l, uint64_t delay_ms)
{
	struct timeval tv = { (time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000 };
	evtimer_add(l->ev, &tv);
}

static void on_run(evutil_socket_t fd, short what, void *arg)
{
	struct ctrl_loop *l = arg;
	uint64_t next = 0, now;

	l->scheduled = false;
	ctrl_mgr_run(l->mgr, &next);
	if (next && !l->scheduled) {
		now = util_now_ms();
		ctrl_loop_arm(l, next > now ? next - now : 0);
	}
}

static void on_kick(void *userdata)
{
	struct ctrl_loop *l = userdata;

	if (l->scheduled)
		return;
	l->scheduled = true;
	/* a zero timeout runs after the current callback (e.g. the API write) returns */
	ctrl_loop_arm(l, 0);
}

/* Ownership may have moved: queue everything again; each key is reconciled only where it is
 * now owned (members_owns), so what changed owner is picked up by its new owner. */
static void on_members_change(struct members *m, void *userdata)
{
	struct ctrl_loop *l = userdata;

	log_info("members: %zu live (epoch %llu); resyncing controllers", members_count(m),
		 (unsigned long long)members_epoch(m));
	ctrl_mgr_members_changed(l->mgr);
	ctrl_mgr_resync(l->mgr);
	on_kick(l);
}

void ctrl_loop_hold_until_synced(struct ctrl_loop *l)
{
	ctrl_mgr_hold_until_synced(l->mgr);
}

void ctrl_loop_set_replication(struct ctrl_loop *l,
			       bool (*caught_up)(void *userdata, const char *node,
						 uint64_t since_ms),
			       void *userdata, uint64_t tombstone_horizon_ms)
{
	ctrl_mgr_set_caught_up(l->mgr, caught_up, userdata);
	ctrl_mgr_set_tombstone_horizon(l->mgr, tombstone_horizon_ms);
}

int ctrl_loop_new(struct event_base *base, struct store *store, struct members *members,
		  struct ctrl_loop **ret)
{
	struct ctrl_loop *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->base = base;
	l->store = store;
	l->ev = evtimer_new(base, on_run, l);
	if (!l->ev) {
		free(l);
		return -ENOMEM;
	}
	struct ctrl_options o = {
		.store = store,
		.members = members,
		.kick = on_kick,
		.kick_data = l,
		.event = on_event,
		.event_data = l,
	};
	r = ctrl_mgr_new(&o, &l->mgr);
	if (r < 0) {
		event_free(l->ev);
		free(l);
		return r;
	}
	if (members)
		members_on_change(members, on_members_change, l);
	on_kick(l);
	l->members = members;
	*ret = l;
	return 0;
}

int ctrl_loop_metrics(void *userdata, char **text)
{
	struct ctrl_loop *l = userdata;
	struct ctrl_stats st;

	ctrl_mgr_stats_get(l->mgr, &st);
	if (asprintf(text,
		     "# HELP shoal_controller_reconciles_total Controller reconciles run.\n"
		     "# TYPE shoal_controller_reconciles_total counter\n"
		     "shoal_controller_reconciles_total %llu\n"
		     "# HELP shoal_controller_retries_total Failed reconciles queued again with "
		     "back-off.\n"
		     "# TYPE shoal_controller_retries_total counter\n"
		     "shoal_controller_retries_total %llu\n"
		     "# HELP shoal_controller_failing_keys Keys whose last reconcile failed.\n"
		     "# TYPE shoal_controller_failing_keys gauge\n"
		     "shoal_controller_failing_keys %zu\n"
		     "# HELP shoal_controller_handover_waits_total Reconciles put off until this "
		     "node caught up with a key's previous owner.\n"
		     "# TYPE shoal_controller_handover_waits_total counter\n"
		     "shoal_controller_handover_waits_total %llu\n"
		     "# HELP shoal_controller_status_stale_total Status writes held back: another "
		     "node wrote the key's status at a higher ownership term.\n"
		     "# TYPE shoal_controller_status_stale_total counter\n"
		     "shoal_controller_status_stale_total %llu\n",
		     (unsigned long long)st.reconciles, (unsigned long long)st.retries,
		     st.failing, (unsigned long long)st.handover_waits,
		     (unsigned long long)st.status_stale) < 0)
		return -ENOMEM;
	return 0;
}

struct ctrl_loop *ctrl_loop_free(struct ctrl_loop *l)
{
	if (!l)
		return NULL;
	if (l->members)
		members_on_change(l->members, NULL, NULL);
	ctrl_mgr_free(l->mgr);
	event_free(l->ev);
	for (size_t i = 0; i < CTRL_EVENT_SOURCES; i++) {
		events_free(l->sources[i].ev);
		free(l->sources[i].component);
	}
	free(l);
	return NULL;
}
