// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <string.h>
#include <event2/event.h>

#include "api/svcalloc.h"

#include "daemon/claims.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/claims.h"

#define CLAIM_KIND_PODCIDR "podCIDR"
#define CLAIM_NAME_KIND_PODCIDR "podcidr"
#define PODCIDR_SUB_PREFIX 24
#define PODCIDR_STEP_MS 100
/* catching up must not hold a node's start forever: past this, claim on what is known */
#define PODCIDR_SYNC_MAX_MS 60000

struct claim_seen {
	char *name, *kind, *value, *holder;
	uint64_t born;
};

struct claim_list {
	struct claim_seen *v;
	size_t n, cap;
};

static void claim_list_done(struct claim_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].kind);
		free(l->v[i].value);
		free(l->v[i].holder);
	}
	free(l->v);
	*l = (struct claim_list){0};
}

static int claim_collect(struct store_obj *o, void *ud)
{
	struct claim_list *l = ud;
	_cleanup_json_ cJSON *j = store_obj_parse(o);
	struct claim_seen *c;

	if (!j)
		return -ENOMEM;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct claim_seen *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	c = &l->v[l->n];
	*c = (struct claim_seen){
	    .name = strdup(o->name),
	    .kind = strdup(json_str(j, "spec.kind", "")),
	    .value = strdup(json_str(j, "spec.value", "")),
	    .holder = strdup(json_str(j, "spec.holder", "")),
	    .born = o->born,
	};
	l->n++;
	if (!c->name || !c->kind || !c->value || !c->holder)
		return -ENOMEM;
	return 0;
}

static int claims_load(struct store *s, struct claim_list *l)
{
	int r = store_list(s, NODE_CLAIMS_RESOURCE, NULL, NULL, NULL, claim_collect, l);

	if (r < 0)
		claim_list_done(l);
	return r;
}

static int claim_create(struct store *s, const char *kind, const char *name_kind, const char *value,
			const char *holder, struct err *e)
{
	_cleanup_json_ cJSON *o = cJSON_CreateObject();
	char name[256], uid[40], ts[32];
	cJSON *md, *spec;
	int r;

	r = claims_name(name_kind, value, holder, name, sizeof(name));
	if (r < 0)
		return r;
	if (!o)
		return -ENOMEM;
	util_uuid4(uid);
	util_rfc3339((int64_t)(util_now_ms() / 1000), ts, sizeof(ts));
	cJSON_AddStringToObject(o, "apiVersion", "shoal.io/v1");
	cJSON_AddStringToObject(o, "kind", "Claim");
	md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "uid", uid);
	cJSON_AddStringToObject(md, "creationTimestamp", ts);
	spec = cJSON_AddObjectToObject(o, "spec");
	cJSON_AddStringToObject(spec, "kind", kind);
	cJSON_AddStringToObject(spec, "value", value);
	cJSON_AddStringToObject(spec, "holder", holder);
	r = store_create(s, NODE_CLAIMS_RESOURCE, "", name, o, NULL, e);
	return r == -EEXIST ? 0 : r;
}

static int claim_delete(struct store *s, const char *name)
{
	struct err e = {0};
	int r = store_delete(s, NODE_CLAIMS_RESOURCE, "", name, 0, NULL, NULL, &e);

	return r == -ENOENT ? 0 : r;
}

int node_claims_release(struct store *s, const char *holder)
{
	struct claim_list l = {0};
	int r, n = 0;

	r = claims_load(s, &l);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n && r >= 0; i++)
		if (streq(l.v[i].holder, holder)) {
			r = claim_delete(s, l.v[i].name);
			n += r >= 0;
		}
	claim_list_done(&l);
	return r < 0 ? r : n;
}

int node_podcidr_record(struct store *s, const char *node_name, const char *cluster_cidr,
			const char *cidr)
{
	struct claims_cidr range;
	uint32_t block;
	struct err e = {0};

	/* a CIDR that is not one /24 of the cluster CIDR cannot collide with a claimed one */
	if (claims_cidr_init(&range, cluster_cidr, PODCIDR_SUB_PREFIX) < 0 ||
	    claims_cidr_find(&range, cidr, &block) < 0)
		return 0;
	return claim_create(s, CLAIM_KIND_PODCIDR, CLAIM_NAME_KIND_PODCIDR, cidr, node_name, &e);
}

enum pc_phase { PC_JOIN, PC_SYNC, PC_PICK, PC_VERIFY, PC_DONE };

struct podcidr {
	const struct node_podcidr_opts *o;
	struct claims_cidr range;
	enum pc_phase phase;
	uint64_t t0, sync_from, made_ms, synced_ms;
	char value[32];
	unsigned tries;
	int result;
	struct err *e;
	struct claim_list seen; /* during a pick */
};

/* Whether other members could race this node for a value: they are here and share objects. */
static bool others_live(const struct podcidr *pc)
{
	return pc->o->replicated && members_count(pc->o->members) > 1;
}

/* Whether this node caught up with the cluster after `since`. */
static bool pc_synced(struct podcidr *pc, uint64_t since, uint64_t now)
{
	const struct node_podcidr_opts *o = pc->o;

	if (!others_live(pc))
		return true; /* alone: whoever joins later catches up with us before claiming */
	if (now >= since + PODCIDR_SYNC_MAX_MS) {
		log_warn(
		    "pod CIDR: not caught up with any member after %d s; claiming on what this "
		    "replica holds",
		    PODCIDR_SYNC_MAX_MS / 1000);
		return true;
	}
	if (!o->caught_up)
		return now >= since + o->settle_ms;
	for (size_t i = 0; i < members_count(o->members); i++) {
		const char *m = members_get(o->members, i);
		if (!streq(m, o->node_name) && o->caught_up(o->caught_up_ud, m, since))
			return true;
	}
	return false;
}

static bool pc_taken(uint32_t block, void *ud)
{
	struct podcidr *pc = ud;
	char cidr[32];

	if (claims_cidr_block(&pc->range, block, cidr, sizeof(cidr)) < 0)
		return true;
	for (size_t i = 0; i < pc->seen.n; i++)
		if (streq(pc->seen.v[i].kind, CLAIM_KIND_PODCIDR) &&
		    streq(pc->seen.v[i].value, cidr) &&
		    !streq(pc->seen.v[i].holder, pc->o->node_name))
			return true;
	return false;
}

struct node_cidrs {
	struct podcidr *pc;
	uint8_t *used;
};

static int node_cidr_collect(struct store_obj *o, void *ud)
{
	struct node_cidrs *nc = ud;
	_cleanup_json_ cJSON *j = NULL;
	uint32_t block;

	if (streq(o->name, nc->pc->o->node_name))
		return 0;
	j = store_obj_parse(o);
	if (j && claims_cidr_find(&nc->pc->range, json_str(j, "spec.podCIDR", ""), &block) == 0)
		nc->used[block] = 1;
	return 0;
}

static bool pc_taken_or_node(uint32_t block, void *ud)
{
	struct node_cidrs *nc = ud;

	return nc->used[block] || pc_taken(block, nc->pc);
}

static int pc_pick(struct podcidr *pc, uint64_t now)
{
	const struct node_podcidr_opts *o = pc->o;
	struct node_cidrs nc = {pc, calloc(pc->range.count, 1)};
	uint32_t block, start;
	int r;

	if (!nc.used)
		return -ENOMEM;
	r = claims_load(o->store, &pc->seen);
	if (r >= 0)
		r = store_list(o->store, "nodes", NULL, NULL, NULL, node_cidr_collect, &nc);
	if (r < 0)
		goto out;
	/* a restart keeps its CIDR if nobody else holds it; a first try takes the lowest free
	 * /24 (a new lone node gets 10.244.0.0/24); a retry after a lost race starts at a hashed
	 * offset, so racing claimants spread */
	if (o->prefer && claims_cidr_find(&pc->range, o->prefer, &block) == 0 &&
	    !pc_taken_or_node(block, &nc) && pc->tries == 0)
		r = 0;
	else {
		start = pc->tries ? claims_start(o->node_name, pc->range.count) : 0;
		r = claims_pick(pc->range.count, start, pc_taken_or_node, &nc, &block);
	}
	if (r < 0) {
		err_set(pc->e, ENOSPC, 0, "", "pod CIDR: no free /%d left in %s",
			PODCIDR_SUB_PREFIX, o->cluster_cidr);
		goto out;
	}
	claims_cidr_block(&pc->range, block, pc->value, sizeof(pc->value));
	r = claim_create(o->store, CLAIM_KIND_PODCIDR, CLAIM_NAME_KIND_PODCIDR, pc->value,
			 o->node_name, pc->e);
	if (r < 0)
		goto out;
	pc->made_ms = now;
	pc->synced_ms = 0;
	log_info("pod CIDR: claimed %s%s", pc->value, pc->tries ? " (retry)" : "");
out:
	claim_list_done(&pc->seen);
	free(nc.used);
	return r;
}

/* The claims of pc->value as entries for claims_verify; returns -errno or the state. */
static int pc_verify(struct podcidr *pc, uint64_t now)
{
	const struct node_podcidr_opts *o = pc->o;
	struct claims_entry *e;
	size_t n = 0;
	int r;

	r = claims_load(o->store, &pc->seen);
	if (r < 0)
		return r;
	e = calloc(pc->seen.n + 1, sizeof(*e));
	if (!e) {
		claim_list_done(&pc->seen);
		return -ENOMEM;
	}
	for (size_t i = 0; i < pc->seen.n; i++)
		if (streq(pc->seen.v[i].kind, CLAIM_KIND_PODCIDR) &&
		    streq(pc->seen.v[i].value, pc->value))
			e[n++] = (struct claims_entry){pc->seen.v[i].holder, pc->seen.v[i].born};
	if (!pc->synced_ms && pc_synced(pc, pc->made_ms, now))
		pc->synced_ms = now;
	/* racing claimants can only be members that are here: alone, there is nothing to wait
	 * for (a node joining later catches up with this claim before it claims) */
	r = claims_verify(e, n, o->node_name, pc->synced_ms, now,
			  others_live(pc) ? o->settle_ms : 0);
	if (r == CLAIMS_LOST && n)
		log_info("pod CIDR: %s is %s's (an earlier claim)%s; claiming another", pc->value,
			 e[claims_winner(e, n)].holder,
			 pc->made_ms == 1 ? ", outranking the one this node used before" : "");
	free(e);
	claim_list_done(&pc->seen);
	return r;
}

static void pc_step(struct podcidr *pc)
{
	const struct node_podcidr_opts *o = pc->o;
	uint64_t now = util_now_ms();
	char name[256];
	int r;

	switch (pc->phase) {
	case PC_JOIN:
		if (o->replicated && o->joining && !others_live(pc) &&
		    now < pc->t0 + o->join_wait_ms)
			return;
		pc->phase = PC_SYNC;
		pc->sync_from = now;
		/* fall through */
	case PC_SYNC:
		if (!pc_synced(pc, pc->sync_from, now))
			return;
		pc->phase = PC_PICK;
		/* fall through */
	case PC_PICK:
		r = pc_pick(pc, now);
		if (r < 0) {
			pc->result = r;
			pc->phase = PC_DONE;
			return;
		}
		pc->phase = PC_VERIFY;
		/* fall through */
	case PC_VERIFY:
		r = pc_verify(pc, now);
		if (r < 0) {
			pc->result = r;
			pc->phase = PC_DONE;
		} else if (r == CLAIMS_SETTLED) {
			pc->result = 0;
			pc->phase = PC_DONE;
		} else if (r == CLAIMS_LOST) {
			if (claims_name(CLAIM_NAME_KIND_PODCIDR, pc->value, o->node_name, name,
					sizeof(name)) == 0)
				claim_delete(o->store, name);
			pc->tries++;
			pc->phase = PC_PICK;
		}
		return;
	case PC_DONE:
		return;
	}
}

static void on_pc_timer(evutil_socket_t fd, short what, void *arg)
{
	pc_step(arg);
}

int node_podcidr_claim(struct event_base *base, const struct node_podcidr_opts *o, char **ret,
		       struct err *e)
{
	struct podcidr pc = {.o = o, .e = e, .t0 = util_now_ms()};
	struct timeval tv = {0, PODCIDR_STEP_MS * 1000};
	struct event *timer = NULL;
	char path[4096];
	int r;

	if (claims_cidr_init(&pc.range, o->cluster_cidr, PODCIDR_SUB_PREFIX) < 0)
		return err_set(e, EINVAL, 0, "",
			       "cannot claim a pod CIDR: cluster CIDR %s is not an IPv4 CIDR of "
			       "prefix /%d or shorter",
			       o->cluster_cidr, PODCIDR_SUB_PREFIX);
	/* a restart whose claim still stands uses it at once: it settled before */
	if (o->prefer) {
		snprintf(pc.value, sizeof(pc.value), "%s", o->prefer);
		pc.synced_ms = 1;
		pc.made_ms = 1;
		r = pc_verify(&pc, pc.t0 + o->settle_ms + 1);
		if (r == CLAIMS_SETTLED)
			goto done;
		pc.value[0] = 0;
		pc.synced_ms = 0;
	}
	pc_step(&pc);
	if (pc.phase != PC_DONE) {
		timer = event_new(base, -1, EV_PERSIST, on_pc_timer, &pc);
		if (!timer || event_add(timer, &tv) < 0) {
			if (timer)
				event_free(timer);
			return -ENOMEM;
		}
		while (pc.phase != PC_DONE)
			if (event_base_loop(base, EVLOOP_ONCE) < 0)
				break;
		event_free(timer);
	}
	if (pc.phase != PC_DONE)
		return -EINTR;
	if (pc.result < 0) {
		if (!e->message[0])
			err_set(e, -pc.result, 0, "", "pod CIDR claim: %s", strerror(-pc.result));
		return pc.result;
	}
done:
	log_info("pod CIDR: %s settled", pc.value);
	snprintf(path, sizeof(path), "%s/pod-cidr", o->state_dir);
	r = util_write_file(path, pc.value, strlen(pc.value), 0644);
	if (r < 0)
		log_warn_errno(r, "pod CIDR: cannot save %s", path);
	*ret = strdup(pc.value);
	return *ret ? 0 : -ENOMEM;
}

/* ---------- duplicate ClusterIPs and nodePorts ---------- */

#define SVC_VALUE_IP (1ull << 40)
#define SVC_VALUE_PORT (2ull << 40)

struct svc_repair {
	struct store *store;
	struct members *members;
	const char *node_name;
	struct events *events;
	struct store_watch *watch;
	struct event *kick;
};

struct svc_scan {
	struct store_obj **objs;
	size_t n, cap;
	struct claims_holder *h;
	size_t nh, caph;
};

static int holder_add(struct svc_scan *sc, uint64_t value, const struct store_obj *o)
{
	if (sc->nh == sc->caph) {
		size_t cap = sc->caph ? sc->caph * 2 : 64;
		struct claims_holder *h = realloc(sc->h, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		sc->h = h;
		sc->caph = cap;
	}
	sc->h[sc->nh++] = (struct claims_holder){.value = value, .born = o->born, .uid = o->uid};
	return 0;
}

static int svc_collect(struct store_obj *o, void *ud)
{
	struct svc_scan *sc = ud;
	_cleanup_json_ cJSON *j = store_obj_parse(o);
	struct in_addr a;
	cJSON *p;
	int r;

	if (!j)
		return -ENOMEM;
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		struct store_obj **v = realloc(sc->objs, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		sc->objs = v;
		sc->cap = cap;
	}
	sc->objs[sc->n++] = store_obj_ref(o);
	if (inet_pton(AF_INET, json_str(j, "spec.clusterIP", ""), &a) == 1 &&
	    (r = holder_add(sc, SVC_VALUE_IP | ntohl(a.s_addr), o)) < 0)
		return r;
	cJSON_ArrayForEach(p, json_path(j, "spec.ports"))
	{
		int64_t np = json_int(p, "nodePort", 0);
		if (np > 0 && np <= 65535 &&
		    (r = holder_add(sc, SVC_VALUE_PORT | (uint64_t)np, o)) < 0)
			return r;
	}
	return 0;
}

static struct store_obj *scan_find(const struct svc_scan *sc, const char *uid)
{
	for (size_t i = 0; i < sc->n; i++)
		if (streq(sc->objs[i]->uid, uid))
			return sc->objs[i];
	return NULL;
}

static void value_text(uint64_t v, char *buf, size_t len)
{
	struct in_addr a;

	if (v & SVC_VALUE_IP) {
		a.s_addr = htonl((uint32_t)v);
		inet_ntop(AF_INET, &a, buf, (socklen_t)len);
	} else
		snprintf(buf, len, "%u", (unsigned)(v & 0xffff));
}

/* Re-address one losing Service: its lost values are h[from..to) entries with its uid. */
static void svc_readdress(struct svc_repair *sr, const struct svc_scan *sc, struct store_obj *o)
{
	_cleanup_json_ cJSON *j = store_obj_parse(o);
	int64_t ports[64];
	size_t nports = 0;
	bool lose_ip = false;
	const struct claims_holder *won[65];
	size_t nwon = 0;
	char key[600], was[64] = "", now[64] = "";
	struct err e = {0};
	int r;

	snprintf(key, sizeof(key), "services/%s/%s", o->ns, o->name);
	if (!j || !members_owns(sr->members, key))
		return;
	for (size_t i = 0; i < sc->nh; i++) {
		const struct claims_holder *h = &sc->h[i];
		if (!h->loser || !streq(h->uid, o->uid))
			continue;
		/* the winner is the first holder of the value (claims_duplicates sorted them) */
		size_t w = i;
		while (w > 0 && sc->h[w - 1].value == h->value)
			w--;
		if (nwon < ARRAY_SIZE(won))
			won[nwon++] = &sc->h[w];
		if (h->value & SVC_VALUE_IP)
			lose_ip = true;
		else if (nports < ARRAY_SIZE(ports))
			ports[nports++] = (int64_t)(h->value & 0xffff);
	}
	if (!lose_ip && !nports)
		return;
	snprintf(was, sizeof(was), "%s", json_str(j, "spec.clusterIP", ""));
	cJSON_DeleteItemFromObjectCaseSensitive(j, "status");
	r = svcalloc_readdress(j, lose_ip, ports, nports, &e);
	/* clusterIP is immutable to clients: this write goes to the store itself, conditional on
	 * the version the duplicate was found in */
	r = r ?: store_update(sr->store, "services", o->ns, o->name, j, o->rv, NULL, &e);
	if (r < 0) {
		if (r != -ECANCELED && r != -ENOENT)
			log_warn_errno(r, "service %s/%s: cannot re-address a duplicate: %s", o->ns,
				       o->name, e.message);
		return;
	}
	for (size_t i = 0; i < nwon; i++) {
		struct store_obj *w = scan_find(sc, won[i]->uid);
		char v[64];

		value_text(won[i]->value, v, sizeof(v));
		if (won[i]->value & SVC_VALUE_IP) {
			snprintf(now, sizeof(now), "%s", json_str(j, "spec.clusterIP", ""));
			log_warn("service %s/%s: ClusterIP %s is also %s/%s's (created first): "
				 "re-addressed to %s",
				 o->ns, o->name, was, w ? w->ns : "?", w ? w->name : "?", now);
			events_record(sr->events, j, NULL, "Warning", "ClusterIPAlreadyAllocated",
				      "Cluster IP %s was assigned to multiple services (%s/%s, "
				      "created first, keeps it); re-addressed to %s",
				      was, w ? w->ns : "?", w ? w->name : "?", now);
		} else {
			log_warn("service %s/%s: nodePort %s is also %s/%s's (created first): "
				 "re-addressed",
				 o->ns, o->name, v, w ? w->ns : "?", w ? w->name : "?");
			events_record(sr->events, j, NULL, "Warning", "PortAlreadyAllocated",
				      "Port %s was assigned to multiple services (%s/%s, created "
				      "first, keeps it); this service got another nodePort",
				      v, w ? w->ns : "?", w ? w->name : "?");
		}
	}
}

static void svc_repair_pass(struct svc_repair *sr)
{
	struct svc_scan sc = {0};
	int r;

	r = store_list(sr->store, "services", NULL, NULL, NULL, svc_collect, &sc);
	if (r >= 0 && sc.nh > 1 && claims_duplicates(sc.h, sc.nh) > 0) {
		/* each losing Service once, whatever it lost */
		for (size_t i = 0; i < sc.n; i++) {
			bool lost = false;
			for (size_t k = 0; k < sc.nh && !lost; k++)
				lost = sc.h[k].loser && streq(sc.h[k].uid, sc.objs[i]->uid);
			if (lost)
				svc_readdress(sr, &sc, sc.objs[i]);
		}
	}
	for (size_t i = 0; i < sc.n; i++)
		store_obj_unref(sc.objs[i]);
	free(sc.objs);
	free(sc.h);
}

static void on_svc_kick(evutil_socket_t fd, short what, void *arg)
{
	svc_repair_pass(arg);
}

static void on_svc_event(const struct store_event *ev, void *ud)
{
	struct svc_repair *sr = ud;

	if (ev->type != STORE_DELETED)
		event_active(sr->kick, 0, 0);
}

int svc_repair_new(struct event_base *base, struct store *s, struct members *m,
		   const char *node_name, struct svc_repair **ret)
{
	struct svc_repair *sr = calloc(1, sizeof(*sr));
	int r;

	if (!sr)
		return -ENOMEM;
	sr->store = s;
	sr->members = m;
	sr->node_name = node_name;
	r = events_new(s, "ipallocator-repair-controller", node_name, &sr->events);
	if (r < 0)
		goto fail;
	sr->kick = event_new(base, -1, 0, on_svc_kick, sr);
	if (!sr->kick) {
		r = -ENOMEM;
		goto fail;
	}
	r = store_watch_add(s, "services", 0, on_svc_event, sr, &sr->watch);
	if (r < 0)
		goto fail;
	event_active(sr->kick, 0, 0);
	*ret = sr;
	return 0;
fail:
	svc_repair_free(sr);
	return r;
}

struct svc_repair *svc_repair_free(struct svc_repair *sr)
{
	if (!sr)
		return NULL;
	if (sr->watch)
		store_watch_cancel(sr->watch);
	if (sr->kick)
		event_free(sr->kick);
	sr->events = events_free(sr->events);
	free(sr);
	return NULL;
}
