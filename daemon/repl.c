// SPDX-License-Identifier: Apache-2.0
/* Store replication on the event loop (daemon/repl.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "daemon/events.h"
#include "daemon/repl.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/saver.h"
#include "lib/util.h"

/* how often the members view is compared with what repl knows (it changes rarely) */
#define MEMBERS_POLL_MS 200
/* repl.last is rewritten at most this often */
#define LAST_SAVE_MS 10000

/* what a pending request's callback holds: outlives the replication if gossip answers late */
struct rlink {
	int refs;
	struct replication *d;
};

struct req_ctx {
	struct rlink *link;
	uint64_t token;
};

struct replication {
	struct event_base *base;
	struct store *store;
	struct gossip *gossip;
	struct members *members;
	struct repl *r;
	struct events *events;
	struct rlink *link;
	uint64_t (*clock)(void *ud);
	void *clock_data;
	void (*on_members)(void *ud);
	void *on_members_data;
	char *self, *last_path, *state_path;
	char *state_saved; /* what repl.state holds */
	uint64_t state_saved_at;
	struct event *timer;
	uint64_t armed_at; /* wall ms the timer fires at; 0: not armed */
	uint64_t members_epoch, next_members_poll;
	char **known; /* names told to repl */
	size_t nknown;
	uint64_t clock_refused_logged;
	uint64_t last_saved;
	/* repl.last and repl.state, written off the loop (lib/saver.h): on the loop the fsync, and
	 * the discard of the replaced file's blocks on a filesystem mounted with discard, block
	 * every event for as long as the disk takes (profiled: the loop thread's only I/O waits) */
	struct saver *last_sv, *state_sv;
	bool was_pull_only;
};

static void link_unref(struct rlink *l)
{
	if (l && --l->refs == 0)
		free(l);
}

static uint64_t env_now(void *ud)
{
	struct replication *d = ud;

	return d->clock ? d->clock(d->clock_data) : util_now_ms();
}

static uint64_t env_cpu_ns(void *ud)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t env_rand(void *ud)
{
	return randombytes_random();
}

static void arm(struct replication *d, uint64_t at)
{
	uint64_t now = env_now(d);
	struct timeval tv;

	if (d->armed_at && d->armed_at <= at && evtimer_pending(d->timer, NULL))
		return;
	if (at < now)
		at = now;
	tv.tv_sec = (time_t)((at - now) / 1000);
	tv.tv_usec = (suseconds_t)((at - now) % 1000) * 1000;
	d->armed_at = at;
	evtimer_add(d->timer, &tv);
}

static void env_wake(void *ud, uint64_t at)
{
	arm(ud, at);
}

static void on_reply(void *ctx, const uint8_t *reply, ssize_t len)
{
	struct req_ctx *c = ctx;
	struct replication *d = c->link->d;

	if (d) {
		uint64_t refused = 0;
		struct store_stats st;

		store_stats_get(d->store, &st);
		refused = st.clock_refused;
		repl_reply(d->r, c->token, reply, len);
		store_stats_get(d->store, &st);
		if (st.clock_refused > refused && !d->clock_refused_logged++)
			log_warn("replication: refused %" PRIu64
				 " register versions whose clock is "
				 "more than 500 ms ahead of ours (counted in /metrics)",
				 st.clock_refused - refused);
	}
	link_unref(c->link);
	free(c);
}

static int env_send(void *ud, const char *node, const uint8_t *req, size_t len, uint64_t token)
{
	struct replication *d = ud;
	struct req_ctx *c = malloc(sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->link = d->link;
	c->token = token;
	d->link->refs++;
	r = gossip_request(d->gossip, node, GOSSIP_CH_REPL, req, len, on_reply, c);
	if (r < 0) {
		d->link->refs--;
		free(c);
	}
	return r;
}

static void env_send_many(void *ud, const char *const *nodes, size_t n, const uint8_t *req,
			  size_t len, const uint64_t *tokens, int *err)
{
	struct replication *d = ud;
	_cleanup_free_ struct req_ctx **c = calloc(n, sizeof(*c));
	size_t k = 0;

	if (c)
		for (; k < n; k++) {
			if (!(c[k] = malloc(sizeof(**c))))
				break;
			c[k]->link = d->link;
			c[k]->token = tokens[k];
		}
	if (k < n) {
		for (size_t i = 0; i < n; i++)
			err[i] = -ENOMEM;
	} else {
		gossip_request_many(d->gossip, nodes, n, GOSSIP_CH_REPL, req, len, on_reply,
				    (void *const *)c, err);
	}
	for (size_t i = 0; i < k; i++) {
		if (err[i] < 0)
			free(c[i]);
		else
			d->link->refs++;
	}
}

struct confirm_ctx {
	struct rlink *link;
	replication_confirm_fn fn;
	void *ud;
	char *node;
	char **uids; /* asked about; an entry is freed (NULL) once answered */
	size_t n;
};

static void confirm_ctx_free(struct confirm_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->uids[i]);
	free(c->uids);
	free(c->node);
	free(c);
}

static void on_confirm_answer(void *ud, const char *uid, const char *bound)
{
	struct confirm_ctx *c = ud;

	for (size_t i = 0; i < c->n; i++)
		if (c->uids[i] && streq(c->uids[i], uid)) {
			c->fn(c->ud, c->node, uid, bound, 0);
			free(c->uids[i]);
			c->uids[i] = NULL;
			return;
		}
}

static void on_confirm_reply(void *ctx, const uint8_t *reply, ssize_t len)
{
	struct confirm_ctx *c = ctx;
	struct replication *d = c->link->d;

	if (d) {
		int r = len < 0
			    ? (int)len
			    : repl_confirm_reply(d->r, reply, (size_t)len, on_confirm_answer, c);

		/* not named in the answer (deleted or replaced there), or no answer */
		for (size_t i = 0; i < c->n; i++)
			if (c->uids[i])
				c->fn(c->ud, c->node, c->uids[i], NULL, r < 0 ? r : 0);
	}
	link_unref(c->link);
	confirm_ctx_free(c);
}

int replication_confirm(struct replication *d, const char *node, const char *const *ns,
			const char *const *names, const char *const *uids, size_t n,
			replication_confirm_fn fn, void *ud)
{
	_cleanup_free_ uint8_t *req = NULL;
	struct confirm_ctx *c;
	size_t len;
	int r;

	r = repl_confirm_request(d->r, "pods", ns, names, n, &req, &len);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->link = d->link;
	c->fn = fn;
	c->ud = ud;
	c->node = strdup(node);
	c->uids = calloc(n, sizeof(*c->uids));
	r = c->node && c->uids ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++, c->n++)
		if (!(c->uids[i] = strdup(uids[i])))
			r = -ENOMEM;
	if (r == 0)
		r = gossip_request(d->gossip, node, GOSSIP_CH_REPL, req, len, on_confirm_reply, c);
	if (r < 0) {
		confirm_ctx_free(c);
		return r;
	}
	d->link->refs++;
	return 0;
}

static void env_create_lost(void *ud, const char *resource, const char *ns, const char *name,
			    const char *loser, const char *winner, const char *winner_node)
{
	struct replication *d = ud;
	struct store_obj *o = NULL;
	_cleanup_json_ cJSON *obj = NULL;

	if (!d->events || store_get(d->store, resource, ns, name, &o) < 0)
		return;
	obj = store_obj_parse(o);
	store_obj_unref(o);
	if (!obj)
		return;
	log_info("replication: %s %s%s%s created here (uid %s) lost to the create on %s (uid %s)",
		 resource, ns, *ns ? "/" : "", name, loser, winner_node, winner);
	events_record(d->events, obj, NULL, "Warning", "CreateConflict",
		      "%s was also created on node %s; that create (uid %s) won and this node's "
		      "(uid %s) was discarded",
		      name, winner_node, winner, loser);
}

static int serve(void *ud, const char *from, const uint8_t *req, size_t len, uint8_t **reply,
		 size_t *reply_len)
{
	struct replication *d = ud;
	struct store_stats st;
	uint64_t refused;
	int r;

	store_stats_get(d->store, &st);
	refused = st.clock_refused;
	r = repl_serve(d->r, from, req, len, reply, reply_len);
	store_stats_get(d->store, &st);
	if (st.clock_refused > refused && !d->clock_refused_logged++)
		log_warn("replication: refused %" PRIu64 " register versions from %s: its clock is "
			 "more than 500 ms ahead of ours (counted in /metrics)",
			 st.clock_refused - refused, from);
	return r;
}

/* ---------- members ---------- */

static enum repl_member_state state_of(enum members_state s)
{
	switch (s) {
	case MEMBERS_ALIVE:
		return REPL_MEMBER_ALIVE;
	case MEMBERS_SUSPECT:
		return REPL_MEMBER_SUSPECT;
	case MEMBERS_DEAD:
		return REPL_MEMBER_DEAD;
	default:
		return REPL_MEMBER_LEFT;
	}
}

static void members_sync(struct replication *d)
{
	size_t n = members_view_count(d->members);
	uint64_t epoch = members_epoch(d->members);

	for (size_t i = 0; i < n; i++) {
		const struct members_info *m = members_view_get(d->members, i);
		bool known = false;

		if (streq(m->name, d->self))
			continue;
		repl_member_set(d->r, m->name, state_of(m->state));
		for (size_t k = 0; k < d->nknown && !known; k++)
			known = streq(d->known[k], m->name);
		if (!known) {
			char **nv = reallocarray(d->known, d->nknown + 1, sizeof(*nv));

			if (nv) {
				d->known = nv;
				d->known[d->nknown] = strdup(m->name);
				if (d->known[d->nknown])
					d->nknown++;
			}
		}
	}
	/* forgotten by gossip: removed */
	for (size_t k = 0; k < d->nknown;) {
		if (members_view_find(d->members, d->known[k])) {
			k++;
			continue;
		}
		repl_member_set(d->r, d->known[k], REPL_MEMBER_LEFT);
		free(d->known[k]);
		d->known[k] = d->known[--d->nknown];
	}
	if (epoch != d->members_epoch) {
		d->members_epoch = epoch;
		if (d->on_members)
			d->on_members(d->on_members_data);
	}
}

/* ---------- the last completed round, for pull-only resync ---------- */

static uint64_t last_load(struct replication *d)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;

	if (util_read_file(d->last_path, 64, &buf, &len) < 0)
		return 0;
	return strtoull(buf, NULL, 10);
}

static void last_save(struct replication *d, uint64_t now)
{
	uint64_t newest = 0;
	char buf[32];

	for (size_t k = 0; k < d->nknown; k++) {
		uint64_t t = repl_last_round(d->r, d->known[k]);

		if (t > newest)
			newest = t;
	}
	if (!newest || newest <= d->last_saved || now < d->last_saved + LAST_SAVE_MS)
		return;
	/* a failed write leaves an older time: at worst a restart resyncs pull-only */
	saver_poll(d->last_sv);
	snprintf(buf, sizeof(buf), "%" PRIu64 "\n", newest);
	if (saver_put(d->last_sv, buf, strlen(buf)) == 0)
		d->last_saved = newest;
}

/* repl.state: the tombstone floor and each member's last round (repl_state_save), rewritten
 * when it changed, at most every LAST_SAVE_MS */
static void state_save(struct replication *d, uint64_t now)
{
	char *text = NULL;
	size_t len;
	int r;

	/* a write failed: what the file holds is unknown, write it again */
	if (saver_poll(d->state_sv) < 0) {
		free(d->state_saved);
		d->state_saved = NULL;
	}
	if (d->state_saved && now < d->state_saved_at + LAST_SAVE_MS)
		return;
	if (repl_state_save(d->r, &text, &len) < 0)
		return;
	if (d->state_saved && streq(d->state_saved, text)) {
		free(text);
		return;
	}
	/* a newer text replaces one not yet written; replication_free's saver_free writes the
	 * last one before returning */
	r = saver_put(d->state_sv, text, len);
	if (r < 0) {
		free(text);
		return;
	}
	free(d->state_saved);
	d->state_saved = text;
	d->state_saved_at = now;
}

static void state_load(struct replication *d)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;

	if (util_read_file(d->state_path, 1 << 20, &buf, &len) < 0)
		return;
	repl_state_load(d->r, buf, len);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct replication *d = arg;
	uint64_t now = env_now(d), next;

	d->armed_at = 0;
	if (now >= d->next_members_poll) {
		members_sync(d);
		d->next_members_poll = now + MEMBERS_POLL_MS;
	}
	repl_tick(d->r);
	if (d->was_pull_only && !repl_pull_only(d->r)) {
		d->was_pull_only = false;
		log_info("replication: pull-only resync complete");
	}
	last_save(d, now);
	state_save(d, now);
	next = repl_next_tick(d->r);
	if (next > d->next_members_poll)
		next = d->next_members_poll;
	arm(d, next);
}

/* ---------- setup ---------- */

int replication_new(struct event_base *base, const struct replication_opts *o,
		    struct replication **ret)
{
	struct replication *d = calloc(1, sizeof(*d));
	struct repl_config cfg = {
	    .ae_interval_ms = o->ae_interval_ms,
	    .tombstone_horizon_ms = o->tombstone_horizon_ms,
	};
	struct repl_env env = {
	    .ud = d,
	    .now_ms = env_now,
	    .rand32 = env_rand,
	    .send = env_send,
	    .send_many = env_send_many,
	    .wake = env_wake,
	    .on_create_lost = env_create_lost,
	    .cpu_ns = env_cpu_ns,
	};
	uint64_t last, now, horizon = o->tombstone_horizon_ms ?: 3600000ull;
	int r;

	if (!d)
		return -ENOMEM;
	/* collection is considered a few times per horizon, at most every minute */
	cfg.gc_interval_ms = (uint32_t)(horizon / 4 < 1000    ? 1000
					: horizon / 4 > 60000 ? 60000
							      : horizon / 4);
	d->base = base;
	d->store = o->store;
	d->gossip = o->gossip;
	d->members = o->members;
	d->clock = o->clock;
	d->clock_data = o->clock_data;
	d->on_members = o->on_members;
	d->on_members_data = o->on_members_data;
	d->self = strdup(o->node_name);
	d->link = calloc(1, sizeof(*d->link));
	d->timer = evtimer_new(base, on_timer, d);
	if (!d->self || !d->link || !d->timer ||
	    asprintf(&d->last_path, "%s/repl.last", o->state_dir) < 0 ||
	    asprintf(&d->state_path, "%s/repl.state", o->state_dir) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	r = saver_new(d->last_path, 0600, false, &d->last_sv);
	if (r >= 0)
		r = saver_new(d->state_path, 0600, false, &d->state_sv);
	if (r < 0)
		goto fail;
	d->link->refs = 1;
	d->link->d = d;
	r = events_new(o->store, "shoal-replication", o->node_name, &d->events);
	if (r < 0)
		goto fail;
	/* away longer than the horizon: our copy may hold objects deleted and collected since */
	now = env_now(d);
	last = last_load(d);
	d->last_saved = last;
	if (last && now > last + horizon) {
		cfg.pull_only = true;
		d->was_pull_only = true;
		log_info("replication: last in touch %" PRIu64 " s ago, longer than the tombstone "
			 "horizon: resyncing pull-only",
			 (now - last) / 1000);
	}
	r = repl_new(&cfg, &env, o->store, o->node_name, &d->r);
	if (r < 0)
		goto fail;
	state_load(d);
	r = gossip_channel_register(o->gossip, GOSSIP_CH_REPL, serve, d);
	if (r < 0)
		goto fail;
	members_sync(d);
	arm(d, now);
	*ret = d;
	return 0;
fail:
	replication_free(d);
	return r;
}

struct replication *replication_free(struct replication *d)
{
	if (!d)
		return NULL;
	if (d->gossip && d->r)
		gossip_channel_register(d->gossip, GOSSIP_CH_REPL, NULL, NULL);
	d->last_sv = saver_free(d->last_sv);
	if (d->r && d->state_sv)
		state_save(d, UINT64_MAX);     /* the latest, whatever the last write's age */
	d->state_sv = saver_free(d->state_sv); /* writes it, joins */
	if (d->link) {
		d->link->d = NULL;
		link_unref(d->link);
	}
	if (d->timer)
		event_free(d->timer);
	d->r = repl_free(d->r);
	d->events = events_free(d->events);
	for (size_t k = 0; k < d->nknown; k++)
		free(d->known[k]);
	free(d->known);
	free(d->self);
	free(d->last_path);
	free(d->state_path);
	free(d->state_saved);
	free(d);
	return NULL;
}

struct repl *replication_repl(struct replication *d)
{
	return d ? d->r : NULL;
}

int replication_metrics(void *ud, char **text)
{
	struct replication *d = ud;
	struct repl_stats s;
	struct store_stats ss;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	repl_stats_get(d->r, &s);
	store_stats_get(d->store, &ss);
#define C(name, help, v)                                                                           \
	fprintf(f,                                                                                 \
		"# HELP shoal_repl_" name " " help "\n# TYPE shoal_repl_" name " counter\n"        \
		"shoal_repl_" name " %" PRIu64 "\n",                                               \
		(uint64_t)(v))
#define G(name, help, v)                                                                           \
	fprintf(f,                                                                                 \
		"# HELP shoal_repl_" name " " help "\n# TYPE shoal_repl_" name " gauge\n"          \
		"shoal_repl_" name " %" PRIu64 "\n",                                               \
		(uint64_t)(v))
	C("pushes_sent_total", "Push requests sent to members.", s.pushes_sent);
	C("pushes_received_total", "Push requests received.", s.pushes_received);
	C("push_failures_total", "Push requests that failed (anti-entropy repairs them).",
	  s.push_failures);
	C("push_registers_sent_total", "Registers sent in pushes (per member).", s.push_regs_sent);
	C("rounds_started_total", "Anti-entropy rounds this node started.", s.rounds_started);
	C("rounds_completed_total", "Anti-entropy rounds this node started that completed.",
	  s.rounds_completed);
	C("rounds_failed_total", "Anti-entropy rounds this node started that failed.",
	  s.rounds_failed);
	C("rounds_served_total", "Anti-entropy rounds other nodes started with this node.",
	  s.rounds_served);
	C("rounds_busy_total",
	  "Rounds this node started that the peer declined: it was catching up.", s.rounds_busy);
	C("rounds_declined_total",
	  "Rounds others started that this node declined while catching up.",
	  s.rounds_refused_busy);
	fprintf(f, "# HELP shoal_repl_bytes_total Replication bytes by direction and kind.\n"
		   "# TYPE shoal_repl_bytes_total counter\n");
	fprintf(f, "shoal_repl_bytes_total{direction=\"sent\",kind=\"push\"} %" PRIu64 "\n",
		s.push_bytes_sent);
	fprintf(f, "shoal_repl_bytes_total{direction=\"received\",kind=\"push\"} %" PRIu64 "\n",
		s.push_bytes_received);
	fprintf(f, "shoal_repl_bytes_total{direction=\"sent\",kind=\"antientropy\"} %" PRIu64 "\n",
		s.ae_bytes_sent);
	fprintf(f,
		"shoal_repl_bytes_total{direction=\"received\",kind=\"antientropy\"} %" PRIu64 "\n",
		s.ae_bytes_received);
	C("digest_mismatches_total", "Digest buckets found differing in anti-entropy rounds.",
	  s.digest_mismatches);
	C("repairs_total", "Registers applied by anti-entropy (missed by pushes).", s.repairs);
	C("antientropy_cpu_microseconds_total",
	  "CPU time spent on anti-entropy rounds (both sides; not sealing or sockets).",
	  s.ae_cpu_ns / 1000);
	C("applied_total", "Remote register versions applied.", s.applied);
	C("stale_total", "Remote register versions not newer than ours.", s.stale);
	C("bulk_commits_total", "Bulk merge transactions committed (catch-up queue).",
	  s.bulk_commits);
	C("refused_total", "Remote register versions refused (malformed or clock ahead).",
	  s.refused);
	C("clock_refused_total", "Remote versions refused: more than 500 ms ahead of our clock.",
	  ss.clock_refused);
	C("tombstones_collected_total", "Tombstones collected past the horizon.",
	  s.tombstones_collected);
	G("tombstone_hold_lag_milliseconds",
	  "Now minus the latest time whose state of this node every member is known to hold.",
	  s.hold_lag_ms);
	G("tombstone_snapshots", "Sets of tombstones past the horizon waiting for the members.",
	  s.tombstone_snapshots);
	G("lag_milliseconds", "Wall time from a remote write to its apply here (last applied).",
	  s.lag_ms);
	G("lag_max_milliseconds", "The largest replication lag seen.", s.lag_max_ms);
	G("dirty_keys", "Local writes waiting to be pushed.", s.dirty);
	G("pull_only", "1 while resyncing pull-only after an absence past the horizon.",
	  repl_pull_only(d->r));
#undef C
#undef G
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*text = buf;
	return 0;
}
