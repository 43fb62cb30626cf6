// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <sodium.h>

#include "daemon/gossip.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/saver.h"
#include "lib/util.h"
#include "sched/gossip_crypto.h"
#include "sched/swim.h"

#define GOSSIP_CH_SWIM 1
#define GOSSIP_CH_KEYS 2
#define GOSSIP_CH_MAX 16
#define GOSSIP_MAX_INBOUND 64
#define GOSSIP_IDLE_PER_PEER 4	     /* parked outbound connections per peer address */
#define GOSSIP_IDLE_MAX 128	     /* parked outbound connections in all */
#define GOSSIP_IDLE_MS 20000	     /* a parked connection unused this long is closed */
#define GOSSIP_INBOUND_IDLE_MS 60000 /* longer than GOSSIP_IDLE_MS: the client closes first */
#define GOSSIP_KEYOP_TIMEOUT_MS 5000
#define GOSSIP_LEAVE_TIMEOUT_MS 5000

struct gconn;
struct keyop;

struct gossip {
	struct event_base *base;
	struct members *members;
	char *node_name, *cluster, *keyring_path, *identity_path, *key_path;
	struct gossip_keyring *kr;
	/* the keyring and identity files, written off the loop (lib/saver.h) once it runs: an
	 * fsync or rename under load stalled the loop for ~0.8 s, long enough to be suspected */
	struct saver *keyring_sv, *identity_sv;
	struct event *keyring_ev; /* a keyring write ended: answer the operations waiting on it */
	uint64_t keyring_ticket;  /* of the newest keyring put to the saver (0: none since start) */
	uint64_t keyring_retry_at; /* a background keyring write failed: write it again then */
	struct gossip_crypto *crypto;
	struct swim *swim;
	struct swim_config cfg;
	struct swim_addr self_addr;
	int family; /* of the sockets */
	uint64_t instance;
	int udp_fd;
	struct event *udp_ev, *timer;
	struct evconnlistener *tcp;
	struct gconn *conns;
	struct gconn *idle; /* parked outbound connections, most recently parked first */
	size_t ninbound, nidle;
	struct keyop *keyops;
	struct {
		gossip_serve_fn fn;
		void *ud;
	} chans[GOSSIP_CH_MAX];
	void (*heard)(void *ud, const char *node); /* a member's request arrived */
	void *heard_ud;
	/* leave */
	struct event *leave_ev;
	gossip_done_fn leave_done;
	void *leave_ctx;
	uint64_t leave_deadline;
	/* wire counters below the state machine */
	uint64_t udp_bytes_out, udp_bytes_in, tcp_bytes_out, tcp_bytes_in;
	uint64_t udp_send_errors, stream_errors, inbound_refused;
	uint64_t stream_connects, stream_requests, stream_reused, stream_retries;
	uint64_t frames_at_once, frames_queued; /* frames written: all at once, or (partly) queued */
	uint64_t inbound_accepted, inbound_requests, inbound_evicted;
	uint8_t dgram[65536], plain[65536];
};

/* A refcounted byte buffer: a request's plaintext, kept by the connections it was sent on to
 * send it again once, or a sealed frame, referenced by the output buffers it is written from */
struct gbuf {
	int refs;
	size_t len;
	uint8_t p[];
};

struct gconn {
	struct gconn *next, *prev;
	struct gossip *g;
	struct bufferevent *bev;
	bool inbound;
	bool up; /* established: accepted, or connected */
	bool rx_started; /* a byte of the current reply (outbound) or request arrived */
	bool rd_idle;	 /* inbound: between requests (the long read timeout is set) */
	struct swim_addr peer;
	uint32_t need;	  /* frame length once its header was read */
	uint64_t last_ms; /* inbound: accepted or last request served (monotonic) */
	/* outbound, parked for reuse (registered channels) */
	struct gconn *inext, *iprev;
	bool idle, reused, retried;
	struct gbuf *req; /* the request's plaintext (channel byte first), to send it again once */
	/* outbound */
	uint8_t channel;
	uint64_t token;	   /* GOSSIP_CH_SWIM */
	struct keyop *kop; /* GOSSIP_CH_KEYS */
	char *node;
	/* inbound GOSSIP_CH_KEYS: the reply, held until the keyring write it waits on ends */
	uint8_t *kreply;
	size_t kreply_len;
	uint64_t save_ticket;
	bool save_wait;
	gossip_reply_fn reply_fn; /* registered channels */
	void *reply_ctx;
};

struct keyop {
	struct keyop *next, *prev;
	struct gossip *g;
	enum gossip_key_op op;
	gossip_done_fn done;
	void *ctx;
	uint8_t key[GOSSIP_KEY_BYTES];
	cJSON *keys;   /* {node: [key, ...]} primary first */
	cJSON *errors; /* {node: message} */
	int nodes, responded, pending;
	struct event *timeout;
	/* this node's own keyring write: the answer waits for it (one of `pending`) */
	uint64_t save_ticket;
	bool save_wait;
};

/* What a keyring operation waits on before it answers: the write of the keyring it left. */
struct keys_save {
	uint64_t ticket; /* 0: nothing to wait for */
	int err;	 /* < 0: the write could not even be queued */
};

static const char *const keyop_names[] = {"list", "install", "use", "remove"};

/* ---------- addresses ---------- */

static socklen_t addr_to_sa(const struct gossip *g, const struct swim_addr *a,
			    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (g->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(a->port);
		if (a->family == SWIM_AF_INET) {
			s6->sin6_addr.s6_addr[10] = 0xff;
			s6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&s6->sin6_addr.s6_addr[12], a->ip, 4);
		} else
			memcpy(&s6->sin6_addr, a->ip, 16);
		return sizeof(*s6);
	}
	if (a->family != SWIM_AF_INET)
		return 0;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(a->port);
	memcpy(&s4->sin_addr, a->ip, 4);
	return sizeof(*s4);
}

static int sa_to_addr(const struct sockaddr *sa, struct swim_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		a->family = SWIM_AF_INET;
		a->port = ntohs(s4->sin_port);
		memcpy(a->ip, &s4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		a->port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			a->family = SWIM_AF_INET;
			memcpy(a->ip, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			a->family = SWIM_AF_INET6;
			memcpy(a->ip, &s6->sin6_addr, 16);
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* "host:port", "[v6]:port", "host" (default port); names resolved once, at start */
static int addr_resolve(const char *text, uint16_t def_port, struct swim_addr *ret)
{
	_cleanup_free_ char *host = NULL;
	const char *port = NULL;
	char portbuf[8];
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
	int r;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end)
			return -EINVAL;
		host = strndup(text + 1, (size_t)(end - text - 1));
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return -EINVAL;
	} else {
		const char *colon = strrchr(text, ':');
		if (colon && strchr(text, ':') == colon) {
			host = strndup(text, (size_t)(colon - text));
			port = colon + 1;
		} else
			host = strdup(text);
	}
	if (!host)
		return -ENOMEM;
	if (!port || !*port) {
		snprintf(portbuf, sizeof(portbuf), "%u", def_port);
		port = portbuf;
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		return -EADDRNOTAVAIL;
	r = sa_to_addr(res->ai_addr, ret);
	freeaddrinfo(res);
	return r;
}

/* The first IPv4 of the default-route interface, else the first non-loopback IPv4. */
static int addr_detect(struct in_addr *ret)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/route", "re");
	char line[512], ifname[IF_NAMESIZE + 1] = "";
	struct ifaddrs *ifa, *i;
	int found = -ENOENT;

	while (f && fgets(line, sizeof(line), f)) {
		char name[64];
		unsigned dest, mask;
		if (sscanf(line, "%63s %x %*x %*x %*d %*d %*d %x", name, &dest, &mask) == 3 &&
		    dest == 0 && mask == 0 && strlen(name) <= IF_NAMESIZE) {
			snprintf(ifname, sizeof(ifname), "%s", name);
			break;
		}
	}
	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (int pass = *ifname ? 0 : 1; pass < 2 && found < 0; pass++)
		for (i = ifa; i; i = i->ifa_next) {
			struct in_addr a = {0};
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
			    (i->ifa_flags & IFF_LOOPBACK))
				continue;
			if (pass == 0 && strcmp(i->ifa_name, ifname))
				continue;
			a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			*ret = a;
			found = 0;
			break;
		}
	freeifaddrs(ifa);
	return found;
}

/* ---------- files ---------- */

/* Written here at start (a failure fails it), queued to the saver once the loop runs (its ticket
 * in *ret_ticket): an operation that changed the keyring answers once that write ended, with
 * its error if it failed (keys_saved); a failure is also logged by saves_poll and the write
 * redone every 10 s, since the keyring in memory, the one in use, is not on disk. */
static int keyring_save(struct gossip *g, uint64_t *ret_ticket)
{
	_cleanup_free_ char *text = NULL;
	int r = gossip_keyring_format(g->kr, &text);

	if (r >= 0 && g->keyring_sv) {
		r = saver_put_ticket(g->keyring_sv, text, strlen(text), &g->keyring_ticket);
		if (r >= 0 && ret_ticket)
			*ret_ticket = g->keyring_ticket;
	} else if (r >= 0)
		r = util_write_file(g->keyring_path, text, strlen(text), 0600);
	if (text)
		sodium_memzero(text, strlen(text));
	if (r < 0)
		log_warn_errno(r, "gossip: cannot save the keyring %s", g->keyring_path);
	return r;
}

/* 0 once the keyring the operation left is on disk, -EINPROGRESS while its write runs, else
 * why it is not (the write failed, or could not be queued) */
static int keys_saved(struct gossip *g, const struct keys_save *ks)
{
	if (ks->err < 0)
		return ks->err;
	return ks->ticket ? saver_written(g->keyring_sv, ks->ticket) : 0;
}

static void keys_save_error(cJSON *errors, const char *node, int err)
{
	char msg[256];

	snprintf(msg, sizeof(msg),
		 "the keyring could not be saved (%s): the change is in use, but a restart of the "
		 "node would undo it; the write is retried every 10 s",
		 strerror(err > 0 ? err : -err));
	cJSON_AddStringToObject(errors, node, msg);
}

static int keyring_load(struct gossip *g, const char *key_file, const char *advertise,
			struct err *e)
{
	_cleanup_free_ char *text = NULL;
	uint8_t key[GOSSIP_KEY_BYTES];
	size_t len;
	int r;

	r = util_read_file(g->keyring_path, 1 << 16, &text, &len);
	if (r >= 0) {
		r = gossip_keyring_parse(g->kr, text, len);
		sodium_memzero(text, len);
		if (r < 0)
			return err_set(e, EINVAL, 0, "", "gossip keyring %s is malformed",
				       g->keyring_path);
		if (key_file)
			log_info(
			    "gossip: keyring %s exists; --gossip-key-file only seeds a new one",
			    g->keyring_path);
		return 0;
	}
	if (r != -ENOENT)
		return err_set(e, -r, 0, "", "cannot read %s: %s", g->keyring_path, strerror(-r));
	if (key_file) {
		r = util_read_file(key_file, 4096, &text, &len);
		if (r < 0)
			return err_set(e, -r, 0, "", "cannot read the gossip key file %s: %s",
				       key_file, strerror(-r));
		r = gossip_key_parse(text, key);
		sodium_memzero(text, len);
		if (r < 0)
			return err_set(e, EINVAL, 0, "",
				       "gossip key file %s: not a base64 32-byte key", key_file);
	} else {
		char b64[GOSSIP_KEY_B64_LEN + 2];

		r = gossip_key_generate(key);
		if (r < 0)
			return err_set(e, -r, 0, "", "cannot generate a gossip key");
		gossip_key_format(key, b64);
		strcat(b64, "\n");
		r = util_write_file(g->key_path, b64, strlen(b64), 0600);
		sodium_memzero(b64, sizeof(b64));
		if (r < 0)
			return err_set(e, -r, 0, "", "cannot write %s: %s", g->key_path,
				       strerror(-r));
		log_info(
		    "gossip: new cluster \"%s\" with a generated key in %s; other nodes join "
		    "it with: shoald --join %s --cluster-name %s --gossip-key-file <a copy of %s>",
		    g->cluster, g->key_path, advertise, g->cluster, g->key_path);
	}
	gossip_keyring_install(g->kr, key);
	sodium_memzero(key, sizeof(key));
	return keyring_save(g, NULL);
}

static uint32_t identity_load(struct gossip *g)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ cJSON *j = NULL;
	const char *inst;
	size_t len;
	uint32_t inc = 0;

	if (util_read_file(g->identity_path, 4096, &text, &len) >= 0 &&
	    (j = cJSON_ParseWithLength(text, len)) && (inst = json_str(j, "instance", NULL))) {
		g->instance = strtoull(inst, NULL, 16);
		inc = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "incarnation"));
	}
	while (!g->instance)
		randombytes_buf(&g->instance, sizeof(g->instance));
	return inc;
}

/*
 * In the background when async (a refutation, new metadata: on the loop), else now (start,
 * stop). Not durable before the new incarnation is sent, and it was not before either: swim
 * broadcasts the refutation before SWIM_EV_REFUTED reaches us. A crash before the write ends
 * restarts at an older incarnation than peers saw; peers then accuse the node at the newer one
 * and swim refutes above the accused incarnation (refute: max(own, accused) + 1).
 */
static void identity_save(struct gossip *g, uint32_t incarnation, bool async)
{
	char buf[128];
	int r;

	snprintf(buf, sizeof(buf), "{\"instance\":\"%016llx\",\"incarnation\":%u}\n",
		 (unsigned long long)g->instance, incarnation);
	r = async && g->identity_sv ? saver_put(g->identity_sv, buf, strlen(buf))
				    : util_write_file(g->identity_path, buf, strlen(buf), 0600);
	if (r < 0)
		log_warn_errno(r, "gossip: cannot save %s", g->identity_path);
}

/* ---------- the state machine's environment ---------- */

static void gossip_arm(struct gossip *g)
{
	uint64_t next = swim_next_timer_ms(g->swim), now = util_mono_ms();
	uint64_t d = next > now ? next - now : 0;
	struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};

	evtimer_add(g->timer, &tv);
}

static uint64_t env_now(void *ud)
{
	return util_mono_ms();
}

static uint32_t env_rand(void *ud)
{
	return randombytes_random();
}

static int env_send_udp(void *ud, const struct swim_addr *to, const void *buf, size_t len)
{
	struct gossip *g = ud;
	struct sockaddr_storage ss;
	socklen_t sl = addr_to_sa(g, to, &ss);
	uint8_t out[GOSSIP_MAX_DGRAM];
	int n;

	if (!sl)
		return -EAFNOSUPPORT;
	n = gossip_seal(g->crypto, GOSSIP_SEAL_DGRAM, util_now_ms(), buf, len, out, sizeof(out));
	if (n < 0)
		return n;
	if (sendto(g->udp_fd, out, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) < 0) {
		g->udp_send_errors++;
		return -errno;
	}
	g->udp_bytes_out += (uint64_t)n;
	return 0;
}

static enum members_state state_of(enum swim_state s)
{
	switch (s) {
	case SWIM_ALIVE:
		return MEMBERS_ALIVE;
	case SWIM_SUSPECT:
		return MEMBERS_SUSPECT;
	case SWIM_DEAD:
		return MEMBERS_DEAD;
	case SWIM_LEFT:
		return MEMBERS_LEFT;
	}
	return MEMBERS_DEAD;
}

static void idle_close_addr(struct gossip *g, const struct swim_addr *to);

static void member_sync(struct gossip *g, const struct swim_member *m)
{
	_cleanup_free_ char *meta = NULL;
	_cleanup_json_ cJSON *mj = NULL;
	char addr[64] = "";

	swim_addr_format(&m->addr, addr, sizeof(addr));
	/* metadata is whatever a member sent: keep it only if it is a JSON object */
	if (m->meta_len) {
		mj = cJSON_ParseWithLength((const char *)m->meta, m->meta_len);
		if (cJSON_IsObject(mj))
			meta = cJSON_PrintUnformatted(mj);
	}
	struct members_info i = {
	    .name = m->name,
	    .address = addr,
	    .state = state_of(m->state),
	    .incarnation = m->incarnation,
	    .instance = m->instance,
	    .rtt_us = m->rtt_us,
	    .meta = meta,
	};
	const struct members_info *old = members_view_find(g->members, m->name);
	if (old && old->state != i.state && !m->self)
		log_info("gossip: member %s (%s) is %s, incarnation %u", m->name, addr,
			 members_state_name(i.state), m->incarnation);
	else if (!old && !m->self)
		log_info("gossip: member %s (%s) joined, %s", m->name, addr,
			 members_state_name(i.state));
	members_update(g->members, &i);
	if (!m->self && (i.state == MEMBERS_DEAD || i.state == MEMBERS_LEFT))
		idle_close_addr(g, &m->addr);
}

static void env_on_change(void *ud, const struct swim_member *m)
{
	member_sync(ud, m);
}

static void env_on_event(void *ud, const struct swim_event *ev)
{
	struct gossip *g = ud;
	char addr[64] = "";

	if (ev->addr)
		swim_addr_format(ev->addr, addr, sizeof(addr));
	switch (ev->type) {
	case SWIM_EV_JOINED:
		log_info("gossip: joined the cluster through %s", addr);
		break;
	case SWIM_EV_JOIN_RETRY:
		log_warn("gossip: no seed answered (%s); retrying in %u ms",
			 strerror(ev->err > 0 ? ev->err : -ev->err), ev->delay_ms);
		break;
	case SWIM_EV_JOIN_REFUSED:
		log_error("gossip: join refused by %s: node name %s is a live member with another "
			  "instance (%016llx); pick another --node-name or stop the other daemon",
			  addr, g->node_name, (unsigned long long)ev->instance);
		break;
	case SWIM_EV_CONFLICT:
		log_error("gossip: member %s: instance %016llx%s%s claims the name of instance "
			  "%016llx; refused",
			  ev->name ? ev->name : "?", (unsigned long long)ev->other_instance,
			  *addr ? " at " : "", addr, (unsigned long long)ev->instance);
		break;
	case SWIM_EV_REANNOUNCE:
		log_info("gossip: isolated; announcing this node to the seeds again");
		break;
	case SWIM_EV_REFUTED:
		log_info("gossip: refuted an accusation of this node, incarnation %u",
			 ev->incarnation);
		identity_save(g, ev->incarnation, true);
		break;
	case SWIM_EV_REAPED:
		if (ev->name && !streq(ev->name, g->node_name))
			members_forget(g->members, ev->name);
		break;
	}
}

/* ---------- streams ---------- */

/*
 * Connections. An outbound stream carries one request at a time. SWIM's stream probes and
 * keyring operations open a connection each and close it after the reply (a probe must reach
 * the process as it is now, not a connection that outlived it). A registered channel's
 * connection is parked after its reply (idle, at most GOSSIP_IDLE_PER_PEER per peer address,
 * GOSSIP_IDLE_MAX in all, closed after GOSSIP_IDLE_MS unused, when the peer closes it or when
 * the member is dead or left) and the next request to the same address takes it. A request
 * whose reused connection dies before any byte of its reply (the peer closed it meanwhile, or
 * restarted) is sent again once on a new connection; registered channels' handlers must
 * therefore be idempotent. An inbound connection answers requests one after another until the
 * peer closes it, or it stays unused for GOSSIP_INBOUND_IDLE_MS, or a new connection needs its
 * place under GOSSIP_MAX_INBOUND.
 */

static struct gbuf *gbuf_new(size_t len)
{
	struct gbuf *b = malloc(sizeof(*b) + len);

	if (b) {
		b->refs = 1;
		b->len = len;
	}
	return b;
}

static void gbuf_unref(struct gbuf *b)
{
	if (b && --b->refs == 0)
		free(b);
}

static void gbuf_unref_cb(const void *data, size_t len, void *arg)
{
	gbuf_unref(arg);
}

DEFINE_CLEANUP_FUNC(struct gbuf, gbuf_unref)

static void idle_unlink(struct gconn *c)
{
	struct gossip *g = c->g;

	if (!c->idle)
		return;
	if (c->iprev)
		c->iprev->inext = c->inext;
	else
		g->idle = c->inext;
	if (c->inext)
		c->inext->iprev = c->iprev;
	c->inext = c->iprev = NULL;
	c->idle = false;
	g->nidle--;
}

static void gconn_free(struct gconn *c)
{
	struct gossip *g = c->g;

	idle_unlink(c);
	if (c->prev)
		c->prev->next = c->next;
	else if (g->conns == c)
		g->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->inbound)
		g->ninbound--;
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->kreply)
		sodium_memzero(c->kreply, c->kreply_len + 1);
	free(c->kreply);
	free(c->node);
	gbuf_unref(c->req);
	free(c);
}

static void gconn_timeouts(struct gconn *c, uint32_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static uint32_t stream_timeout(const struct gossip *g)
{
	return g->cfg.stream_timeout_ms ?: 10000;
}

static void keyop_reply(struct keyop *k, const char *node, const uint8_t *buf, ssize_t len);
static int frame_write(struct gconn *c, uint8_t channel, const void *buf, size_t len);
static int frame_seal(struct gossip *g, const struct gbuf *plain, struct gbuf **ret);
static int frame_send(struct gconn *c, struct gbuf *f);
static struct gconn *stream_connect(struct gossip *g, const struct swim_addr *to);

/* Park an outbound connection whose request was answered; false: close it instead. */
static bool idle_park(struct gconn *c)
{
	struct gossip *g = c->g;
	unsigned same = 0;

	if (c->inbound || c->channel < GOSSIP_CH_REPL ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)))
		return false;
	for (struct gconn *i = g->idle; i; i = i->inext)
		if (swim_addr_equal(&i->peer, &c->peer) && ++same >= GOSSIP_IDLE_PER_PEER)
			return false;
	if (g->nidle >= GOSSIP_IDLE_MAX) {
		/* the least recently parked goes */
		struct gconn *old = g->idle;
		while (old->inext)
			old = old->inext;
		gconn_free(old);
	}
	gbuf_unref(TAKE_PTR(c->req));
	c->reply_fn = NULL;
	c->reply_ctx = NULL;
	c->need = 0;
	c->rx_started = c->reused = c->retried = false;
	c->idle = true;
	c->iprev = NULL;
	c->inext = g->idle;
	if (c->inext)
		c->inext->iprev = c;
	g->idle = c;
	g->nidle++;
	gconn_timeouts(c, GOSSIP_IDLE_MS);
	return true;
}

/* The most recently parked connection to `to`, taken out of the idle list, or NULL. */
static struct gconn *idle_take(struct gossip *g, const struct swim_addr *to)
{
	for (struct gconn *c = g->idle; c; c = c->inext)
		if (swim_addr_equal(&c->peer, to)) {
			idle_unlink(c);
			gconn_timeouts(c, stream_timeout(g));
			return c;
		}
	return NULL;
}

/* The member at `to` is dead or left: its parked connections go. */
static void idle_close_addr(struct gossip *g, const struct swim_addr *to)
{
	for (struct gconn *c = g->idle, *next; c; c = next) {
		next = c->inext;
		if (swim_addr_equal(&c->peer, to))
			gconn_free(c);
	}
}

/*
 * A reused connection failed before any byte of its reply: send the request again on a new
 * one. Returns true if it was (c is gone then).
 */
static bool gconn_retry(struct gconn *c, int err)
{
	struct gossip *g = c->g;
	_cleanup_(gbuf_unrefp) struct gbuf *f = NULL;
	struct gconn *n;

	if (!c->reused || c->retried || c->rx_started || !c->req || err == -ETIMEDOUT)
		return false;
	if (frame_seal(g, c->req, &f) < 0)
		return false;
	n = stream_connect(g, &c->peer);
	if (!n)
		return false;
	n->channel = c->channel;
	n->retried = true;
	if (frame_send(n, f) < 0) {
		gconn_free(n);
		return false;
	}
	n->req = TAKE_PTR(c->req);
	n->reply_fn = c->reply_fn;
	n->reply_ctx = c->reply_ctx;
	g->stream_retries++;
	gconn_free(c);
	return true;
}

/* An outbound request ends: its reply (len >= 0) or an error (len < 0). */
static void gconn_finish(struct gconn *c, const uint8_t *reply, ssize_t len)
{
	struct gossip *g = c->g;
	uint8_t ch = c->channel;
	uint64_t token = c->token;
	struct keyop *k = c->kop;
	gossip_reply_fn fn = c->reply_fn;
	void *ctx = c->reply_ctx;
	_cleanup_free_ char *node = TAKE_PTR(c->node);

	if (c->idle) {
		/* a parked connection closed or timed out: nobody waits on it */
		gconn_free(c);
		return;
	}
	if (len < 0 && gconn_retry(c, (int)len))
		return;
	if (len < 0)
		g->stream_errors++;
	if (len < 0 || !fn || !idle_park(c))
		gconn_free(c);
	if (ch == GOSSIP_CH_SWIM) {
		swim_stream_done(g->swim, token, reply, len);
		gossip_arm(g);
	} else if (k)
		keyop_reply(k, node, reply, len);
	else if (fn)
		fn(ctx, reply, len);
}

/* A frame on the wire: the sealed length (4 bytes, big-endian), then the sealed packet. */
#define FRAME_PLAIN_AT (4 + GOSSIP_SEAL_PLAIN_AT)

static struct gbuf *frame_new(size_t plain_len)
{
	return gbuf_new(4 + plain_len + GOSSIP_SEAL_OVERHEAD);
}

/* Seal the plaintext at f->p + FRAME_PLAIN_AT (plain_len bytes) where it lies. */
static int frame_close(struct gossip *g, struct gbuf *f, size_t plain_len)
{
	int n = gossip_seal(g->crypto, GOSSIP_SEAL_STREAM, util_now_ms(), f->p + FRAME_PLAIN_AT,
			    plain_len, f->p + 4, f->len - 4);

	if (n < 0)
		return n;
	f->p[0] = (uint8_t)(n >> 24);
	f->p[1] = (uint8_t)(n >> 16);
	f->p[2] = (uint8_t)(n >> 8);
	f->p[3] = (uint8_t)n;
	f->len = (size_t)n + 4;
	return 0;
}

/* A frame of a request's plaintext (kept: the plaintext is sent again if need be). */
static int frame_seal(struct gossip *g, const struct gbuf *plain, struct gbuf **ret)
{
	struct gbuf *f = frame_new(plain->len);
	int r;

	if (!f)
		return -ENOMEM;
	memcpy(f->p + FRAME_PLAIN_AT, plain->p, plain->len);
	r = frame_close(g, f, plain->len);
	if (r < 0) {
		gbuf_unref(f);
		return r;
	}
	*ret = f;
	return 0;
}

/*
 * Write frame f on c, shared, not copied (the same frame may go to several members: it names
 * no recipient). On an established connection with nothing waiting before it, it is sent at
 * once; what the socket does not take (or all of it, on a connection still connecting) waits
 * in the bufferevent's output, whose write errors and timeouts then apply as for any write.
 */
static int frame_send(struct gconn *c, struct gbuf *f)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t at = 0;

	c->g->tcp_bytes_out += f->len;
	if (c->up && !evbuffer_get_length(out)) {
		ssize_t w = send(bufferevent_getfd(c->bev), f->p, f->len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w > 0)
			at = (size_t)w;
		if (at == f->len) {
			c->g->frames_at_once++;
			return 0;
		}
	}
	c->g->frames_queued++;
	f->refs++;
	if (evbuffer_add_reference(out, f->p + at, f->len - at, gbuf_unref_cb, f) < 0) {
		f->refs--;
		return -ENOMEM;
	}
	return 0;
}

static int frame_write(struct gconn *c, uint8_t channel, const void *buf, size_t len)
{
	_cleanup_(gbuf_unrefp) struct gbuf *f = frame_new(len + 1);
	int r;

	if (!f)
		return -ENOMEM;
	f->p[FRAME_PLAIN_AT] = channel;
	if (len)
		memcpy(f->p + FRAME_PLAIN_AT + 1, buf, len);
	r = frame_close(c->g, f, len + 1);
	return r < 0 ? r : frame_send(c, f);
}

static void keys_serve(struct gossip *g, const uint8_t *req, size_t len, uint8_t **reply,
		       size_t *reply_len, struct keys_save *ks);

static void gconn_fail(struct gconn *c, int err)
{
	if (c->inbound)
		gconn_free(c);
	else
		gconn_finish(c, NULL, err);
}

/*
 * The held reply to a keyring request, now that the write it waited on ended (save: 0 or why
 * the keyring is not on disk); the connection reads again. Keyring requests come one per
 * connection, so nothing waits behind it in the buffer.
 */
static int keys_reply_send(struct gconn *c, int save)
{
	size_t len = c->kreply_len;
	int r;

	c->save_wait = false;
	if (save < 0)
		c->kreply[len++] = (uint8_t)(-save > 255 ? EIO : -save);
	r = frame_write(c, GOSSIP_CH_KEYS, c->kreply, len);
	sodium_memzero(c->kreply, c->kreply_len + 1);
	free(c->kreply);
	c->kreply = NULL;
	if (r < 0)
		return r;
	c->last_ms = util_mono_ms();
	bufferevent_enable(c->bev, EV_READ);
	return 0;
}

/* Serve one request that arrived on inbound connection c; <0: close it; 1: the reply comes
 * later (a keyring request waiting for its write), read nothing more until then. */
static int serve_request(struct gconn *c, uint8_t *plain, int n)
{
	struct gossip *g = c->g;
	void *reply = NULL;
	uint8_t *kreply = NULL;
	size_t rlen = 0;
	int r = 0;

	g->inbound_requests++;
	if (plain[0] == GOSSIP_CH_SWIM) {
		r = swim_handle_stream(g->swim, &c->peer, plain + 1, (size_t)n - 1, &reply, &rlen);
		gossip_arm(g);
	} else if (plain[0] == GOSSIP_CH_KEYS) {
		struct keys_save ks;

		keys_serve(g, plain + 1, (size_t)n - 1, &kreply, &rlen, &ks);
		if (!kreply)
			return -ENOMEM;
		c->kreply = kreply;
		c->kreply_len = rlen;
		r = keys_saved(g, &ks);
		if (r == -EINPROGRESS) {
			/* answered when the write ends (on_keyring_written) */
			c->save_ticket = ks.ticket;
			c->save_wait = true;
			return 1;
		}
		return keys_reply_send(c, r);
	} else if (plain[0] < GOSSIP_CH_MAX && g->chans[plain[0]].fn && n >= 2 &&
		   (size_t)n >= 2 + (size_t)plain[1]) {
		/* a registered channel: the sender's name, then its request */
		char from[256];
		size_t nl = plain[1];

		memcpy(from, plain + 2, nl);
		from[nl] = 0;
		if (g->heard)
			g->heard(g->heard_ud, from);
		r = g->chans[plain[0]].fn(g->chans[plain[0]].ud, from, plain + 2 + nl,
					  (size_t)n - 2 - nl, &kreply, &rlen);
		reply = kreply;
		if (r >= 0 && !reply) {
			/* an empty reply */
			reply = malloc(1);
			rlen = 0;
			r = reply ? 0 : -ENOMEM;
		}
	} else {
		gossip_crypto_count_drop(g->crypto, GOSSIP_DROP_DECODE);
		r = -EBADMSG;
	}
	if (r < 0 || !reply) {
		free(reply);
		return r < 0 ? r : -ENOMEM;
	}
	r = frame_write(c, plain[0], reply, rlen);
	free(reply);
	return r;
}

static void on_conn_read(struct bufferevent *bev, void *arg)
{
	struct gconn *c = arg;
	struct gossip *g = c->g;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->idle) {
		/* nothing is owed on a parked connection */
		gossip_crypto_count_drop(g->crypto, GOSSIP_DROP_DECODE);
		return gconn_free(c);
	}
	/* inbound: every complete request in the buffer, in order; outbound: the one reply */
	for (;;) {
		_cleanup_free_ uint8_t *plain = NULL;
		uint8_t *frame;
		int n;

		if (evbuffer_get_length(in))
			c->rx_started = true;
		if (!c->need) {
			uint8_t h[4];
			if (evbuffer_get_length(in) < 4)
				break;
			evbuffer_remove(in, h, 4);
			c->need = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
				  (uint32_t)h[2] << 8 | h[3];
			if (c->need < GOSSIP_SEAL_OVERHEAD + 1) {
				gossip_crypto_count_drop(g->crypto, GOSSIP_DROP_TRUNCATED);
				return gconn_fail(c, -EBADMSG);
			}
			if (c->need > GOSSIP_MAX_FRAME) {
				gossip_crypto_count_drop(g->crypto, GOSSIP_DROP_OVERSIZED);
				return gconn_fail(c, -EMSGSIZE);
			}
		}
		if (evbuffer_get_length(in) < c->need)
			break;
		g->tcp_bytes_in += c->need + 4;
		frame = evbuffer_pullup(in, c->need);
		plain = malloc(c->need);
		if (!frame || !plain)
			return gconn_fail(c, -ENOMEM);
		n = gossip_open(g->crypto, GOSSIP_SEAL_STREAM, util_now_ms(), frame, c->need, plain,
				c->need, NULL);
		evbuffer_drain(in, c->need);
		c->need = 0;
		if (n < 1) {
			if (n == 0)
				gossip_crypto_count_drop(g->crypto, GOSSIP_DROP_DECODE);
			return gconn_fail(c, -EBADMSG);
		}
		if (!c->inbound) {
			if (plain[0] != c->channel) {
				gossip_crypto_count_drop(g->crypto, GOSSIP_DROP_DECODE);
				return gconn_fail(c, -EBADMSG);
			}
			return gconn_finish(c, plain + 1, n - 1);
		}
		int sr = serve_request(c, plain, n);
		if (sr < 0)
			return gconn_free(c);
		c->last_ms = util_mono_ms();
		if (sr > 0) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
	}
	if (!c->inbound)
		return;
	/* between requests an inbound connection may wait long; within one, a stream's time */
	if (c->need && c->rd_idle) {
		c->rd_idle = false;
		gconn_timeouts(c, stream_timeout(g));
	} else if (!c->need && !evbuffer_get_length(in) && !c->rd_idle) {
		c->rd_idle = true;
		struct timeval rd = {GOSSIP_INBOUND_IDLE_MS / 1000, 0};
		uint32_t ms = stream_timeout(g);
		struct timeval wr = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
		bufferevent_set_timeouts(bev, &rd, &wr);
	}
}

static void on_conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct gconn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		c->up = true;
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		int err = (what & BEV_EVENT_TIMEOUT) ? -ETIMEDOUT
			  : (what & BEV_EVENT_EOF)   ? -ECONNRESET
						     : -(EVUTIL_SOCKET_ERROR() ?: ECONNREFUSED);
		gconn_fail(c, err);
	}
}

static struct gconn *gconn_new(struct gossip *g, evutil_socket_t fd, bool inbound)
{
	struct gconn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->g = g;
	c->inbound = inbound;
	c->up = inbound;
	c->bev = bufferevent_socket_new(g->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		free(c);
		return NULL;
	}
	bufferevent_setcb(c->bev, on_conn_read, NULL, on_conn_event, c);
	gconn_timeouts(c, stream_timeout(g));
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = g->conns;
	if (c->next)
		c->next->prev = c;
	g->conns = c;
	if (inbound) {
		g->ninbound++;
		c->last_ms = util_mono_ms();
	}
	return c;
}

/* A new outbound connection to `to` (connecting; writes queue until it is up). */
static struct gconn *stream_connect(struct gossip *g, const struct swim_addr *to)
{
	struct sockaddr_storage ss;
	socklen_t sl = addr_to_sa(g, to, &ss);
	struct gconn *c;

	if (!sl)
		return NULL;
	c = gconn_new(g, -1, false);
	if (!c)
		return NULL;
	c->peer = *to;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)sl) < 0) {
		gconn_free(c);
		return NULL;
	}
	g->stream_connects++;
	return c;
}

/* A one-shot stream (SWIM, keyring operations): a new connection, closed after the reply. */
static int stream_start(struct gossip *g, const struct swim_addr *to, uint8_t channel,
			const void *req, size_t len, struct gconn **ret)
{
	struct gconn *c;
	int r;

	if (!addr_to_sa(g, to, &(struct sockaddr_storage){0}))
		return -EAFNOSUPPORT;
	c = stream_connect(g, to);
	if (!c)
		return -ECONNREFUSED;
	c->channel = channel;
	r = frame_write(c, channel, req, len);
	if (r < 0) {
		gconn_free(c);
		return r;
	}
	g->stream_requests++;
	*ret = c;
	return 0;
}

static int env_stream(void *ud, const struct swim_addr *to, const void *req, size_t len,
		      uint64_t token)
{
	struct gconn *c;
	int r = stream_start(ud, to, GOSSIP_CH_SWIM, req, len, &c);

	if (r >= 0)
		c->token = token;
	return r;
}

/* At GOSSIP_MAX_INBOUND: close the inbound connection unused the longest, if one is idle. */
static bool inbound_evict(struct gossip *g)
{
	struct gconn *old = NULL;

	for (struct gconn *c = g->conns; c; c = c->next)
		if (c->inbound && !c->need && !evbuffer_get_length(bufferevent_get_input(c->bev)) &&
		    !evbuffer_get_length(bufferevent_get_output(c->bev)) &&
		    (!old || c->last_ms < old->last_ms))
			old = c;
	if (!old)
		return false;
	gconn_free(old);
	g->inbound_evicted++;
	return true;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sl,
		      void *arg)
{
	struct gossip *g = arg;
	struct gconn *c;

	if (g->ninbound >= GOSSIP_MAX_INBOUND && !inbound_evict(g)) {
		g->inbound_refused++;
		evutil_closesocket(fd);
		return;
	}
	c = gconn_new(g, fd, true);
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	g->inbound_accepted++;
	sa_to_addr(sa, &c->peer);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	log_warn("gossip: accept failed: %s", strerror(EVUTIL_SOCKET_ERROR()));
}

/* ---------- datagrams and the timer ---------- */

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct gossip *g = arg;

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct swim_addr from;
		ssize_t n = recvfrom(fd, g->dgram, sizeof(g->dgram), MSG_DONTWAIT,
				     (struct sockaddr *)&ss, &sl);
		int m;

		if (n < 0)
			break;
		g->udp_bytes_in += (uint64_t)n;
		if (sa_to_addr((struct sockaddr *)&ss, &from) < 0)
			continue;
		m = gossip_open(g->crypto, GOSSIP_SEAL_DGRAM, util_now_ms(), g->dgram, (size_t)n,
				g->plain, sizeof(g->plain), NULL);
		if (m < 0)
			continue;
		swim_recv_udp(g->swim, &from, g->plain, (size_t)m);
	}
	gossip_arm(g);
}

/* the background writes' failures: logged; the keyring is written again every 10 s until it is */
static void saves_poll(struct gossip *g)
{
	uint64_t now = env_now(g);
	int r;

	r = saver_poll(g->identity_sv);
	if (r < 0)
		log_warn_errno(r, "gossip: cannot save %s", g->identity_path);
	r = saver_poll(g->keyring_sv);
	if (r < 0) {
		log_warn_errno(r, "gossip: cannot save the keyring %s (in use in memory; retrying)",
			       g->keyring_path);
		if (!g->keyring_retry_at)
			g->keyring_retry_at = now + 10000;
	}
	if (g->keyring_retry_at && now >= g->keyring_retry_at) {
		g->keyring_retry_at = 0;
		keyring_save(g, NULL);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct gossip *g = arg;

	saves_poll(g);
	swim_tick(g->swim);
	gossip_arm(g);
}

/* ---------- keyring operations ---------- */

static void keyop_complete(struct keyop *k, int r);
static int keys_reply_send(struct gconn *c, int save);

/* A keyring write ended: the operations and the requests of other nodes waiting on it answer. */
static void on_keyring_written(evutil_socket_t fd, short what, void *arg)
{
	struct gossip *g = arg;
	struct keyop *k, *knext;
	struct gconn *c, *cnext;
	uint64_t v;
	int r;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already read */
	}
	saves_poll(g);
	for (k = g->keyops; k; k = knext) {
		knext = k->next;
		if (!k->save_wait)
			continue;
		r = saver_written(g->keyring_sv, k->save_ticket);
		if (r == -EINPROGRESS)
			continue;
		k->save_wait = false;
		if (r < 0)
			keys_save_error(k->errors, g->node_name, r);
		if (--k->pending == 0)
			keyop_complete(k, 0);
	}
	for (c = g->conns; c; c = cnext) {
		cnext = c->next;
		if (!c->save_wait)
			continue;
		r = saver_written(g->keyring_sv, c->save_ticket);
		if (r != -EINPROGRESS && keys_reply_send(c, r) < 0)
			gconn_free(c);
	}
}

/* Applies op to the keyring in memory; *ks: the keyring write to wait for before answering. An
 * operation that changes nothing still waits for (or redoes) a write not yet done, so that
 * running it again after an error answers only once the keyring is on disk. */
static int keys_apply(struct gossip *g, enum gossip_key_op op, const uint8_t *key, struct err *e,
		      struct keys_save *ks)
{
	int r = 0, w;

	*ks = (struct keys_save){};
	switch (op) {
	case GOSSIP_KEYS_LIST:
		return 0;
	case GOSSIP_KEYS_INSTALL:
		r = gossip_keyring_install(g->kr, key);
		if (r == -ENOSPC)
			return err_set(e, ENOSPC, 409, "Conflict", "the keyring is full (%d keys)",
				       GOSSIP_KEYRING_MAX);
		break;
	case GOSSIP_KEYS_USE:
		r = gossip_keyring_use(g->kr, key);
		if (r == -ENOENT)
			return err_set(e, ENOENT, 404, "NotFound",
				       "the key is not installed: install it first");
		break;
	case GOSSIP_KEYS_REMOVE:
		r = gossip_keyring_remove(g->kr, key);
		if (r == -EBUSY)
			return err_set(e, EBUSY, 409, "Conflict",
				       "the key is the primary key: use another one first");
		break;
	}
	if (r < 0)
		return err_set(e, -r, 0, "", "%s", strerror(-r));
	if (r > 0)
		log_info("gossip: keyring %s: %zu key(s)", keyop_names[op],
			 gossip_keyring_count(g->kr));
	w = g->keyring_ticket ? saver_written(g->keyring_sv, g->keyring_ticket) : 0;
	if (r > 0 || (w < 0 && w != -EINPROGRESS))
		ks->err = keyring_save(g, &ks->ticket);
	else
		ks->ticket = g->keyring_ticket; /* written, or being written */
	return 0;
}

/*
 * request: op, key; reply: status (0 or an errno), n, n keys (primary first), and when the
 * keyring could not be saved one more byte, that errno (a reply one byte longer: older nodes
 * call it malformed, still an error). Sent once the keyring write ended (keys_reply_send).
 */
static void keys_serve(struct gossip *g, const uint8_t *req, size_t len, uint8_t **reply,
		       size_t *reply_len, struct keys_save *ks)
{
	size_t n = gossip_keyring_count(g->kr);
	struct err e = {};
	uint8_t *out;
	int r;

	*ks = (struct keys_save){};
	if (len != 1 + GOSSIP_KEY_BYTES || req[0] > GOSSIP_KEYS_REMOVE)
		r = -EINVAL;
	else
		r = keys_apply(g, req[0], req + 1, &e, ks);
	n = gossip_keyring_count(g->kr);
	out = malloc(2 + n * GOSSIP_KEY_BYTES + 1);
	if (!out)
		return;
	out[0] = (uint8_t)(r < 0 ? (-r > 255 ? 255 : -r) : 0);
	out[1] = (uint8_t)n;
	for (size_t i = 0; i < n; i++)
		memcpy(out + 2 + i * GOSSIP_KEY_BYTES, gossip_keyring_key(g->kr, i),
		       GOSSIP_KEY_BYTES);
	*reply = out;
	*reply_len = 2 + n * GOSSIP_KEY_BYTES;
}

static void keyop_free(struct keyop *k)
{
	struct gossip *g = k->g;

	if (k->prev)
		k->prev->next = k->next;
	else if (g->keyops == k)
		g->keyops = k->next;
	if (k->next)
		k->next->prev = k->prev;
	if (k->timeout)
		event_free(k->timeout);
	cJSON_Delete(k->keys);
	cJSON_Delete(k->errors);
	sodium_memzero(k->key, sizeof(k->key));
	free(k);
}

static void keys_add_node(struct keyop *k, const char *node, const uint8_t *keys, size_t n)
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; i < n; i++) {
		char b64[GOSSIP_KEY_B64_LEN + 1];
		gossip_key_format(keys + i * GOSSIP_KEY_BYTES, b64);
		cJSON_AddItemToArray(arr, cJSON_CreateString(b64));
	}
	cJSON_AddItemToObject(k->keys, node, arr);
}

static void keyop_complete(struct keyop *k, int r)
{
	_cleanup_json_ cJSON *res = cJSON_CreateObject();
	cJSON *keys, *node, *key;

	/* per key: on how many nodes it is installed, on how many it is the primary */
	cJSON_AddStringToObject(res, "kind", "GossipKeys");
	cJSON_AddStringToObject(res, "apiVersion", "shoal.io/v1");
	cJSON_AddStringToObject(res, "op", keyop_names[k->op]);
	cJSON_AddNumberToObject(res, "nodes", k->nodes);
	cJSON_AddNumberToObject(res, "responded", k->responded);
	cJSON_AddItemReferenceToObject(res, "errors", k->errors);
	keys = cJSON_AddArrayToObject(res, "keys");
	cJSON_ArrayForEach(node, k->keys)
	{
		int i = 0;
		cJSON_ArrayForEach(key, node)
		{
			cJSON *it = NULL, *c;
			cJSON_ArrayForEach(
			    c, keys) if (streq(json_str(c, "key", ""), key->valuestring)) it = c;
			if (!it) {
				it = cJSON_CreateObject();
				cJSON_AddStringToObject(it, "key", key->valuestring);
				cJSON_AddNumberToObject(it, "installed", 0);
				cJSON_AddNumberToObject(it, "primary", 0);
				cJSON_AddItemToArray(keys, it);
			}
			cJSON_SetNumberValue(cJSON_GetObjectItem(it, "installed"),
					     (double)json_int(it, "installed", 0) + 1);
			if (i++ == 0)
				cJSON_SetNumberValue(cJSON_GetObjectItem(it, "primary"),
						     (double)json_int(it, "primary", 0) + 1);
		}
	}
	k->done(k->ctx, r, res, NULL);
	keyop_free(k);
}

static void keyop_reply(struct keyop *k, const char *node, const uint8_t *buf, ssize_t len)
{
	size_t keys_len = len >= 2 ? 2 + (size_t)buf[1] * GOSSIP_KEY_BYTES : 0;

	if (len < 0)
		cJSON_AddStringToObject(k->errors, node, strerror((int)-len));
	else if (len < 2 || buf[1] > GOSSIP_KEYRING_MAX ||
		 ((size_t)len != keys_len && (size_t)len != keys_len + 1))
		cJSON_AddStringToObject(k->errors, node, "malformed reply");
	else {
		k->responded++;
		if (buf[0])
			cJSON_AddStringToObject(k->errors, node, strerror(buf[0]));
		else if ((size_t)len == keys_len + 1)
			keys_save_error(k->errors, node, buf[keys_len] ? buf[keys_len] : EIO);
		keys_add_node(k, node, buf + 2, buf[1]);
	}
	if (--k->pending == 0)
		keyop_complete(k, 0);
}

static void on_keyop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct keyop *k = arg;
	struct gconn *c, *next;

	/* members that did not answer in time are reported as errors, and so is this node's own
	 * keyring write when it has not ended */
	if (k->save_wait)
		cJSON_AddStringToObject(
		    k->errors, k->g->node_name,
		    "the keyring is not saved yet (a slow disk): a restart of the node now would "
		    "undo the change");
	for (c = k->g->conns; c; c = next) {
		next = c->next;
		if (c->kop == k) {
			cJSON_AddStringToObject(k->errors, c->node, "timed out");
			gconn_free(c);
		}
	}
	keyop_complete(k, 0);
}

int gossip_keys_op(struct gossip *g, enum gossip_key_op op, const char *key_b64,
		   gossip_done_fn done, void *ctx, struct err *e)
{
	struct keyop *k;
	uint8_t req[1 + GOSSIP_KEY_BYTES] = {(uint8_t)op};
	struct keys_save ks;
	int r;

	if (op > GOSSIP_KEYS_REMOVE)
		return err_set(e, EINVAL, 400, "BadRequest", "unknown keyring operation");
	if (op != GOSSIP_KEYS_LIST && (!key_b64 || gossip_key_parse(key_b64, req + 1) < 0))
		return err_set(e, EINVAL, 400, "BadRequest",
			       "the key must be 32 bytes in standard base64 (44 characters)");
	r = keys_apply(g, op, req + 1, e, &ks);
	if (r < 0)
		return r;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->g = g;
	k->op = op;
	k->done = done;
	k->ctx = ctx;
	memcpy(k->key, req + 1, GOSSIP_KEY_BYTES);
	k->keys = cJSON_CreateObject();
	k->errors = cJSON_CreateObject();
	k->timeout = evtimer_new(g->base, on_keyop_timeout, k);
	k->next = g->keyops;
	if (k->next)
		k->next->prev = k;
	g->keyops = k;
	if (!k->keys || !k->errors || !k->timeout) {
		keyop_free(k);
		return -ENOMEM;
	}
	/* this node counts as one that responded */
	k->nodes = 1;
	k->responded = 1;
	{
		size_t n = gossip_keyring_count(g->kr);
		uint8_t buf[GOSSIP_KEYRING_MAX * GOSSIP_KEY_BYTES];
		for (size_t i = 0; i < n; i++)
			memcpy(buf + i * GOSSIP_KEY_BYTES, gossip_keyring_key(g->kr, i),
			       GOSSIP_KEY_BYTES);
		keys_add_node(k, g->node_name, buf, n);
		sodium_memzero(buf, sizeof(buf));
	}
	k->pending = 1; /* held until every stream started */
	r = keys_saved(g, &ks);
	if (r == -EINPROGRESS) {
		/* answered once this node's keyring is on disk too (on_keyring_written) */
		k->save_ticket = ks.ticket;
		k->save_wait = true;
		k->pending++;
	} else if (r < 0)
		keys_save_error(k->errors, g->node_name, r);
	for (size_t i = 0; i < swim_member_count(g->swim); i++) {
		const struct swim_member *m = swim_member_get(g->swim, i);
		struct gconn *c;

		if (m->self || (m->state != SWIM_ALIVE && m->state != SWIM_SUSPECT))
			continue;
		k->nodes++;
		r = stream_start(g, &m->addr, GOSSIP_CH_KEYS, req, sizeof(req), &c);
		if (r < 0) {
			cJSON_AddStringToObject(k->errors, m->name, strerror(-r));
			continue;
		}
		c->kop = k;
		c->node = strdup(m->name);
		k->pending++;
	}
	sodium_memzero(req, sizeof(req));
	struct timeval tv = {GOSSIP_KEYOP_TIMEOUT_MS / 1000, 0};
	evtimer_add(k->timeout, &tv);
	if (--k->pending == 0)
		keyop_complete(k, 0);
	return 0;
}

/* ---------- registered channels ---------- */

void gossip_set_heard(struct gossip *g, void (*fn)(void *ud, const char *node), void *ud)
{
	g->heard = fn;
	g->heard_ud = ud;
}

int gossip_channel_register(struct gossip *g, uint8_t ch, gossip_serve_fn fn, void *ud)
{
	if (ch < GOSSIP_CH_REPL || ch >= GOSSIP_CH_MAX)
		return -EINVAL;
	if (fn && g->chans[ch].fn)
		return -EBUSY;
	g->chans[ch].fn = fn;
	g->chans[ch].ud = ud;
	return 0;
}

/* A connection for a request to member m: a parked one, or a new one connecting. */
static int request_conn(struct gossip *g, const struct swim_member *m, struct gconn **ret)
{
	struct gconn *c = idle_take(g, &m->addr);

	if (c)
		c->reused = true;
	else if (!addr_to_sa(g, &m->addr, &(struct sockaddr_storage){0}))
		return -EAFNOSUPPORT;
	else if (!(c = stream_connect(g, &m->addr)))
		return -ECONNREFUSED;
	*ret = c;
	return 0;
}

int gossip_request_many(struct gossip *g, const char *const *nodes, size_t n, uint8_t ch,
			const void *req, size_t len, gossip_reply_fn fn, void *const *ctx, int *err)
{
	size_t nl = strlen(g->node_name), sent = 0, nto = 0;
	_cleanup_(gbuf_unrefp) struct gbuf *plain = NULL, *f = NULL;
	_cleanup_free_ struct swim_addr *to = NULL; /* where f went */
	int r = 0;

	if (ch < GOSSIP_CH_REPL || ch >= GOSSIP_CH_MAX || !fn)
		r = -EINVAL;
	else if (nl > 255 || len > GOSSIP_MAX_FRAME - GOSSIP_SEAL_OVERHEAD - 2 - nl)
		r = -EMSGSIZE;
	else if (!(plain = gbuf_new(2 + nl + len)) || !(to = calloc(n, sizeof(*to))))
		r = -ENOMEM;
	if (r == 0) {
		plain->p[0] = ch;
		plain->p[1] = (uint8_t)nl;
		memcpy(plain->p + 2, g->node_name, nl);
		if (len)
			memcpy(plain->p + 2 + nl, req, len);
	}
	for (size_t i = 0; i < n; i++) {
		const struct swim_member *m = swim_member_find(g->swim, nodes[i]);
		_cleanup_(gbuf_unrefp) struct gbuf *own = NULL;
		struct gbuf *frame = f;
		struct gconn *c;

		err[i] = r;
		if (r < 0)
			continue;
		if (!m || m->self || !m->addr.family) {
			err[i] = -EHOSTUNREACH;
			continue;
		}
		/* sealed once, when the first member is known to be reachable; but a process
		 * reached under two names (a node back with a new name at its old address) would
		 * refuse the same frame's second copy as a replay: that one is sealed again */
		for (size_t k = 0; frame && k < nto; k++)
			if (swim_addr_equal(&to[k], &m->addr))
				frame = NULL;
		if (!frame && (err[i] = frame_seal(g, plain, f ? &own : &f)) < 0)
			continue;
		if (!frame)
			frame = own ?: f;
		if (frame == f)
			to[nto++] = m->addr;
		err[i] = request_conn(g, m, &c);
		if (err[i] < 0)
			continue;
		c->channel = ch;
		err[i] = frame_send(c, frame);
		if (err[i] < 0) {
			gconn_free(c);
			continue;
		}
		g->stream_requests++;
		if (c->reused)
			g->stream_reused++;
		plain->refs++;
		c->req = plain;
		c->reply_fn = fn;
		c->reply_ctx = ctx[i];
		sent++;
	}
	return (int)sent;
}

int gossip_request(struct gossip *g, const char *node, uint8_t ch, const void *req, size_t len,
		   gossip_reply_fn fn, void *ctx)
{
	int err;

	gossip_request_many(g, &node, 1, ch, req, len, fn, &ctx, &err);
	return err;
}

/* ---------- leave ---------- */

static void on_leave_poll(evutil_socket_t fd, short what, void *arg)
{
	struct gossip *g = arg;
	struct timeval tv = {0, 50 * 1000};

	if (!swim_leave_done(g->swim) && util_mono_ms() < g->leave_deadline) {
		evtimer_add(g->leave_ev, &tv);
		return;
	}
	log_info("gossip: left the cluster");
	if (g->leave_done) {
		_cleanup_json_ cJSON *res = cJSON_CreateObject();
		cJSON_AddStringToObject(res, "kind", "Status");
		cJSON_AddStringToObject(res, "apiVersion", "v1");
		cJSON_AddStringToObject(res, "status", "Success");
		cJSON_AddStringToObject(res, "message", "left the cluster");
		g->leave_done(g->leave_ctx, 0, res, NULL);
		g->leave_done = NULL;
	}
}

int gossip_leave(struct gossip *g, gossip_done_fn done, void *ctx)
{
	struct timeval tv = {0, 50 * 1000};
	int r;

	if (g->leave_done)
		return -EBUSY;
	r = swim_leave(g->swim);
	if (r < 0 && r != -EALREADY)
		return r;
	gossip_arm(g);
	log_info("gossip: leaving the cluster");
	g->leave_done = done;
	g->leave_ctx = ctx;
	g->leave_deadline = util_mono_ms() + GOSSIP_LEAVE_TIMEOUT_MS;
	evtimer_add(g->leave_ev, &tv);
	return 0;
}

/* ---------- views ---------- */

static void sync_all(struct gossip *g)
{
	for (size_t i = 0; i < swim_member_count(g->swim); i++)
		member_sync(g, swim_member_get(g->swim, i));
}

int gossip_members_json(struct gossip *g, cJSON **ret)
{
	_cleanup_json_ cJSON *l = cJSON_CreateObject();
	cJSON *items;

	sync_all(g);
	if (!l)
		return -ENOMEM;
	cJSON_AddStringToObject(l, "kind", "MemberList");
	cJSON_AddStringToObject(l, "apiVersion", "shoal.io/v1");
	items = cJSON_AddArrayToObject(l, "items");
	for (size_t i = 0; i < members_view_count(g->members); i++) {
		const struct members_info *m = members_view_get(g->members, i);
		cJSON *it = cJSON_CreateObject(), *meta = NULL;
		char inst[17];

		snprintf(inst, sizeof(inst), "%016llx", (unsigned long long)m->instance);
		cJSON_AddStringToObject(it, "name", m->name);
		cJSON_AddStringToObject(it, "address", m->address);
		cJSON_AddStringToObject(it, "state", members_state_name(m->state));
		cJSON_AddNumberToObject(it, "incarnation", m->incarnation);
		cJSON_AddNumberToObject(it, "rttMicros", m->rtt_us);
		cJSON_AddStringToObject(it, "instance", inst);
		if (*m->meta)
			meta = cJSON_Parse(m->meta);
		cJSON_AddItemToObject(it, "meta", meta ?: cJSON_CreateObject());
		if (streq(m->name, g->node_name))
			cJSON_AddTrueToObject(it, "self");
		cJSON_AddItemToArray(items, it);
	}
	*ret = TAKE_PTR(l);
	return 0;
}

int gossip_metrics(void *ud, char **text)
{
	struct gossip *g = ud;
	struct swim_stats s;
	struct gossip_crypto_stats c;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	swim_get_stats(g->swim, &s);
	gossip_crypto_stats(g->crypto, &c);
#define COUNTER(name, help, v)                                                                     \
	fprintf(f,                                                                                 \
		"# HELP shoal_gossip_" name " " help "\n# TYPE shoal_gossip_" name                 \
		" counter\nshoal_gossip_" name " %llu\n",                                          \
		(unsigned long long)(v))
#define GAUGE(name, help, v)                                                                       \
	fprintf(f,                                                                                 \
		"# HELP shoal_gossip_" name " " help "\n# TYPE shoal_gossip_" name                 \
		" gauge\nshoal_gossip_" name " %llu\n",                                            \
		(unsigned long long)(v))
	fprintf(f, "# HELP shoal_gossip_members Members of the gossip view by state.\n"
		   "# TYPE shoal_gossip_members gauge\n");
	fprintf(f, "shoal_gossip_members{state=\"alive\"} %u\n", s.alive);
	fprintf(f, "shoal_gossip_members{state=\"suspect\"} %u\n", s.suspect);
	fprintf(f, "shoal_gossip_members{state=\"dead\"} %u\n", s.dead);
	fprintf(f, "shoal_gossip_members{state=\"left\"} %u\n", s.left);
	COUNTER("probes_total", "Direct probes started.", s.probes);
	COUNTER("probe_failures_total", "Probes with no ack at all.", s.probe_failures);
	COUNTER("indirect_probes_total", "Indirect probe requests sent.", s.indirect_probes);
	COUNTER("tcp_probes_total", "TCP fallback probes started.", s.tcp_probes);
	COUNTER("acks_total", "Acks received for our probes.", s.acks_received);
	COUNTER("nacks_total", "Nacks received.", s.nacks_received);
	COUNTER("suspicions_total", "Suspicions raised by this node's failed probes.",
		s.suspicions_raised);
	COUNTER("suspicions_deferred_total", "Suspicions not raised (rate limit, own trouble).",
		s.suspicions_deferred);
	COUNTER("suspicions_received_total", "Suspicion messages received.", s.suspicions_received);
	COUNTER("refutations_total", "Accusations of this node refuted.", s.refutations);
	COUNTER("deaths_total", "Members declared dead by this node.", s.deaths_declared);
	COUNTER("pushpulls_total", "State exchanges started.", s.pushpulls);
	COUNTER("conflicts_total", "Names claimed by another instance.", s.conflicts);
	GAUGE("health_score", "Lifeguard local health (0 is healthy).", s.health_score);
	GAUGE("incarnation", "This node's incarnation.", s.incarnation);
	GAUGE("keys", "Keys installed in the keyring.", gossip_keyring_count(g->kr));
	COUNTER("secondary_key_total", "Packets opened with a key other than the primary.",
		c.opened_secondary);
	fprintf(f,
		"# HELP shoal_gossip_bytes_sent_total Bytes sent on the wire.\n"
		"# TYPE shoal_gossip_bytes_sent_total counter\n"
		"shoal_gossip_bytes_sent_total{transport=\"udp\"} %llu\n"
		"shoal_gossip_bytes_sent_total{transport=\"tcp\"} %llu\n",
		(unsigned long long)g->udp_bytes_out, (unsigned long long)g->tcp_bytes_out);
	fprintf(f,
		"# HELP shoal_gossip_bytes_received_total Bytes received on the wire.\n"
		"# TYPE shoal_gossip_bytes_received_total counter\n"
		"shoal_gossip_bytes_received_total{transport=\"udp\"} %llu\n"
		"shoal_gossip_bytes_received_total{transport=\"tcp\"} %llu\n",
		(unsigned long long)g->udp_bytes_in, (unsigned long long)g->tcp_bytes_in);
	fprintf(f, "# HELP shoal_gossip_dropped_packets_total Packets and frames dropped, by "
		   "layer and reason.\n# TYPE shoal_gossip_dropped_packets_total counter\n");
	for (int i = 0; i < GOSSIP_DROP__MAX; i++)
		fprintf(f,
			"shoal_gossip_dropped_packets_total{layer=\"seal\",reason=\"%s\"} %llu\n",
			gossip_drop_name(i), (unsigned long long)c.dropped[i]);
	for (int i = 0; i < SWIM_DROP__MAX; i++)
		fprintf(f,
			"shoal_gossip_dropped_packets_total{layer=\"swim\",reason=\"%s\"} %llu\n",
			swim_drop_name(i), (unsigned long long)s.dropped[i]);
	COUNTER("send_errors_total", "Datagrams the kernel refused to send.", g->udp_send_errors);
	COUNTER("stream_errors_total", "Outbound streams that failed.", g->stream_errors);
	COUNTER("inbound_refused_total", "Inbound streams refused (too many open).",
		g->inbound_refused);
	COUNTER("stream_connects_total", "Outbound TCP connections opened.", g->stream_connects);
	COUNTER("stream_requests_total", "Outbound stream requests sent (first tries).",
		g->stream_requests);
	COUNTER("stream_reused_total", "Outbound requests sent on a reused connection.",
		g->stream_reused);
	COUNTER("stream_retries_total",
		"Requests sent again on a new connection after a reused one failed.",
		g->stream_retries);
	GAUGE("stream_idle", "Outbound connections parked for reuse.", g->nidle);
	fprintf(f, "# HELP shoal_gossip_stream_frames_total Stream frames written, by whether the "
		   "socket took all of a frame at once or some waited in the output buffer.\n"
		   "# TYPE shoal_gossip_stream_frames_total counter\n"
		   "shoal_gossip_stream_frames_total{written=\"at_once\"} %llu\n"
		   "shoal_gossip_stream_frames_total{written=\"queued\"} %llu\n",
		(unsigned long long)g->frames_at_once, (unsigned long long)g->frames_queued);
	COUNTER("inbound_accepted_total", "Inbound TCP connections accepted.", g->inbound_accepted);
	COUNTER("inbound_requests_total", "Requests served on inbound connections.",
		g->inbound_requests);
	COUNTER("inbound_evicted_total",
		"Idle inbound connections closed to make room for a new one.", g->inbound_evicted);
	GAUGE("inbound_open", "Inbound connections open.", g->ninbound);
#undef COUNTER
#undef GAUGE
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*text = buf;
	return 0;
}

/* ---------- set-up ---------- */

static int sockets_open(struct gossip *g, const struct swim_addr *listen, struct err *e)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;
	char text[64];

	g->family = listen->family == SWIM_AF_INET6 ? AF_INET6 : AF_INET;
	sl = addr_to_sa(g, listen, &ss);
	swim_addr_format(listen, text, sizeof(text));
	g->udp_fd = socket(g->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g->udp_fd < 0)
		return err_set(e, errno, 0, "", "gossip: cannot create a UDP socket: %m");
	setsockopt(g->udp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(g->udp_fd, (struct sockaddr *)&ss, sl) < 0)
		return err_set(e, errno, 0, "", "gossip: cannot bind UDP %s: %m", text);
	g->udp_ev = event_new(g->base, g->udp_fd, EV_READ | EV_PERSIST, on_udp, g);
	if (!g->udp_ev || event_add(g->udp_ev, NULL) < 0)
		return -ENOMEM;
	g->tcp = evconnlistener_new_bind(g->base, on_accept, g,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
					     LEV_OPT_CLOSE_ON_EXEC,
					 128, (struct sockaddr *)&ss, (int)sl);
	if (!g->tcp)
		return err_set(e, errno ?: EADDRINUSE, 0, "", "gossip: cannot listen on TCP %s: %m",
			       text);
	evconnlistener_set_error_cb(g->tcp, on_accept_error);
	return 0;
}

static int seeds_parse(struct gossip *g, const char *join, struct swim_addr **ret, size_t *n,
		       struct err *e)
{
	_cleanup_free_ char *copy = strdup(join);
	struct swim_addr *seeds = NULL;
	char *save = NULL, *tok;

	*n = 0;
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct swim_addr a, *grown;
		while (*tok == ' ')
			tok++;
		if (!*tok)
			continue;
		if (addr_resolve(tok, GOSSIP_DEFAULT_PORT, &a) < 0) {
			free(seeds);
			return err_set(e, EINVAL, 0, "", "--join: cannot resolve %s", tok);
		}
		if (swim_addr_equal(&a, &g->self_addr))
			continue;
		grown = realloc(seeds, (*n + 1) * sizeof(*seeds));
		if (!grown) {
			free(seeds);
			return -ENOMEM;
		}
		seeds = grown;
		seeds[(*n)++] = a;
	}
	*ret = seeds;
	return 0;
}

int gossip_new(struct event_base *base, const struct gossip_opts *o, struct gossip **ret,
	       struct err *e)
{
	struct gossip *g = calloc(1, sizeof(*g));
	struct swim_addr listen;
	_cleanup_free_ struct swim_addr *seeds = NULL;
	size_t nseeds = 0;
	char adv[64];
	uint32_t inc;
	int r;

	if (!g)
		return -ENOMEM;
	g->udp_fd = -1;
	g->base = base;
	g->members = o->members;
	if (strlen(o->node_name) > SWIM_NAME_MAX) {
		r = err_set(e, EINVAL, 0, "", "gossip: node name longer than %d bytes",
			    SWIM_NAME_MAX);
		goto fail;
	}
	g->node_name = strdup(o->node_name);
	g->cluster = strdup(o->cluster_name);
	if (!g->node_name || !g->cluster ||
	    asprintf(&g->keyring_path, "%s/gossip.keyring", o->state_dir) < 0 ||
	    asprintf(&g->identity_path, "%s/gossip.identity", o->state_dir) < 0 ||
	    asprintf(&g->key_path, "%s/gossip.key", o->state_dir) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	r = addr_resolve(o->listen, GOSSIP_DEFAULT_PORT, &listen);
	if (r < 0) {
		r = err_set(e, EINVAL, 0, "", "--gossip-listen: invalid address %s", o->listen);
		goto fail;
	}
	/* advertise: as given; else the listen IP unless it is a wildcard; else detected */
	if (!strempty(o->advertise)) {
		r = addr_resolve(o->advertise, listen.port, &g->self_addr);
		if (r < 0) {
			r = err_set(e, EINVAL, 0, "", "--gossip-advertise: invalid address %s",
				    o->advertise);
			goto fail;
		}
	} else {
		static const uint8_t zero[16];
		g->self_addr = listen;
		if (!memcmp(listen.ip, zero, listen.family == SWIM_AF_INET ? 4 : 16)) {
			struct in_addr a = {0};
			g->self_addr.family = SWIM_AF_INET;
			memset(g->self_addr.ip, 0, sizeof(g->self_addr.ip));
			if (addr_detect(&a) < 0)
				a.s_addr = htonl(INADDR_LOOPBACK);
			memcpy(g->self_addr.ip, &a, 4);
		}
	}
	swim_addr_format(&g->self_addr, adv, sizeof(adv));

	r = gossip_keyring_new(&g->kr);
	if (r < 0)
		goto fail;
	r = keyring_load(g, o->key_file, adv, e);
	if (r < 0)
		goto fail;
	struct gossip_crypto_opts co = {.cluster_name = g->cluster};
	r = gossip_crypto_new(&co, g->kr, &g->crypto);
	if (r < 0) {
		r = err_set(e, -r, 0, "", "gossip: invalid cluster name %s", g->cluster);
		goto fail;
	}
	inc = identity_load(g);
	identity_save(g, inc, false);
	r = saver_new(g->keyring_path, 0600, true, &g->keyring_sv);
	if (r >= 0)
		r = saver_new(g->identity_path, 0600, false, &g->identity_sv);
	if (r < 0) {
		r = err_set(e, -r, 0, "", "gossip: cannot start the file writer: %s", strerror(-r));
		goto fail;
	}
	g->keyring_ev =
	    event_new(base, saver_fd(g->keyring_sv), EV_READ | EV_PERSIST, on_keyring_written, g);
	if (!g->keyring_ev || event_add(g->keyring_ev, NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}

	r = sockets_open(g, &listen, e);
	if (r < 0)
		goto fail;
	g->timer = evtimer_new(base, on_timer, g);
	g->leave_ev = evtimer_new(base, on_leave_poll, g);
	if (!g->timer || !g->leave_ev) {
		r = -ENOMEM;
		goto fail;
	}

	g->cfg = swim_config_default();
	g->cfg.max_dgram = GOSSIP_MAX_DGRAM_PAYLOAD;
	g->cfg.packet_overhead = GOSSIP_SEAL_OVERHEAD;
	struct swim_env env = {
	    .ud = g,
	    .now_ms = env_now,
	    .rand32 = env_rand,
	    .send_udp = env_send_udp,
	    .stream = env_stream,
	    .on_change = env_on_change,
	    .on_event = env_on_event,
	};
	r = swim_new(&g->cfg, &env, g->node_name, g->instance, &g->self_addr, inc, &g->swim);
	if (r < 0) {
		r = err_set(e, -r, 0, "", "gossip: cannot start membership: %s", strerror(-r));
		goto fail;
	}
	if (!strempty(o->meta_json)) {
		r = swim_set_meta(g->swim, o->meta_json, strlen(o->meta_json));
		if (r < 0) {
			r = err_set(e, -r, 0, "", "gossip: metadata too large");
			goto fail;
		}
	}
	sync_all(g);
	if (!strempty(o->join)) {
		r = seeds_parse(g, o->join, &seeds, &nseeds, e);
		if (r < 0)
			goto fail;
		if (nseeds) {
			r = swim_join(g->swim, seeds, nseeds);
			if (r < 0) {
				r = err_set(e, -r, 0, "", "gossip: cannot join: %s", strerror(-r));
				goto fail;
			}
		}
	}
	gossip_arm(g);
	log_info("gossip: %s listening on %s, advertising %s, cluster \"%s\", %zu key(s)%s%s",
		 g->node_name, o->listen, adv, g->cluster, gossip_keyring_count(g->kr),
		 nseeds ? ", joining " : "", nseeds ? o->join : "");
	*ret = g;
	return 0;
fail:
	gossip_free(g);
	return r;
}

struct gossip *gossip_free(struct gossip *g)
{
	struct swim_stats s;

	if (!g)
		return NULL;
	/* the queued writes end first: the last identity written below is the newest */
	if (g->keyring_ev)
		event_free(g->keyring_ev); /* before its fd closes */
	g->identity_sv = saver_free(g->identity_sv);
	g->keyring_sv = saver_free(g->keyring_sv);
	if (g->swim) {
		swim_get_stats(g->swim, &s);
		identity_save(g, s.incarnation, false);
	}
	while (g->keyops) {
		struct keyop *k = g->keyops;
		k->done(k->ctx, -ECANCELED, NULL, NULL);
		for (struct gconn *c = g->conns, *next; c; c = next) {
			next = c->next;
			if (c->kop == k)
				gconn_free(c);
		}
		keyop_free(k);
	}
	if (g->leave_done)
		g->leave_done(g->leave_ctx, -ECANCELED, NULL, NULL);
	/* pending requests of registered channels hear -ECANCELED */
	for (struct gconn *c = g->conns; c;) {
		if (c->inbound || !c->reply_fn) {
			c = c->next;
			continue;
		}
		gossip_reply_fn fn = c->reply_fn;
		void *ctx = c->reply_ctx;

		gconn_free(c);
		fn(ctx, NULL, -ECANCELED);
		c = g->conns; /* the callback may have changed the list */
	}
	while (g->conns)
		gconn_free(g->conns);
	if (g->tcp)
		evconnlistener_free(g->tcp);
	if (g->udp_ev)
		event_free(g->udp_ev);
	if (g->udp_fd >= 0)
		close(g->udp_fd);
	if (g->timer)
		event_free(g->timer);
	if (g->leave_ev)
		event_free(g->leave_ev);
	swim_free(g->swim);
	gossip_crypto_free(g->crypto);
	gossip_keyring_free(g->kr);
	free(g->node_name);
	free(g->cluster);
	free(g->keyring_path);
	free(g->identity_path);
	free(g->key_path);
	free(g);
	return NULL;
}

int gossip_set_meta(struct gossip *g, const char *json)
{
	int r;

	if (!g)
		return 0;
	r = swim_set_meta(g->swim, json, json ? strlen(json) : 0);
	if (r < 0)
		return r;
	/* the new metadata went out with a higher incarnation: a restart must start above it */
	identity_save(g, swim_self(g->swim)->incarnation, true);
	return 0;
}

const struct gossip_keyring *gossip_get_keyring(struct gossip *g)
{
	return g ? g->kr : NULL;
}
