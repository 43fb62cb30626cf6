/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SWIM membership with the Lifeguard extensions, as HashiCorp memberlist implements them:
 * round-robin probes over a shuffled list, indirect probes through k members with nacks, a TCP
 * fallback probe, suspicion whose timeout shrinks as independent confirmations arrive,
 * refutation by incarnation, local health awareness, piggybacked broadcasts with a retransmit
 * limit and periodic push-pull state exchange. Shoal adds a cap on how many accusations one node
 * keeps open (more means the trouble is probably its own), identity by name + instance id with a
 * refused duplicate join, seeds retried with back-off and re-announced to when isolated, and a
 * cheap reconnect probe to recently dead members so views merge again after a partition heals.
 *
 * Pure logic: the clock, randomness and network are callbacks in struct swim_env, so unit tests,
 * the simulator (tests/sim) and the daemon glue drive the same code. Messages in and out are
 * plaintext; the glue encrypts and authenticates around them (declare its per-datagram overhead
 * in swim_config.max_dgram). Not thread-safe: one caller at a time.
 *
 * Re-entrancy: callbacks run from inside swim_* calls. send_udp and stream must not call back
 * into swim (queue the result; deliver it with swim_recv_udp / swim_stream_done later).
 * on_change and on_event may read the view (swim_member_*) but not change it.
 * A struct swim_member pointer stays valid until the next call that can change the view
 * (swim_tick, swim_recv_udp, swim_handle_stream, swim_stream_done, swim_join, swim_leave,
 * swim_set_meta).
 */
#ifndef SHOAL_SCHED_SWIM_H
#define SHOAL_SCHED_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SWIM_NAME_MAX 63	   /* bytes of a node name, without the NUL */
#define SWIM_META_MAX 512	   /* bytes of opaque metadata spread with alive messages */
#define SWIM_DGRAM_MAX 1400	   /* datagram budget before the glue's crypto overhead */
#define SWIM_STREAM_MAX (8u << 20) /* largest stream request or reply accepted */

#define SWIM_AF_INET 4
#define SWIM_AF_INET6 6

struct swim_addr {
	uint8_t family; /* SWIM_AF_INET or SWIM_AF_INET6 */
	uint8_t reserved;
	uint16_t port;	/* host byte order */
	uint8_t ip[16]; /* network byte order; IPv4 in the first 4 bytes */
};

enum swim_state {
	SWIM_ALIVE,
	SWIM_SUSPECT,
	SWIM_DEAD,
	SWIM_LEFT,
};

struct swim_member {
	const char *name;
	uint64_t instance; /* made at the node's first start and persisted by the glue */
	struct swim_addr addr;
	enum swim_state state;
	uint32_t incarnation;
	uint32_t rtt_us;	 /* last direct probe round trip (0: never measured) */
	uint64_t state_since_ms; /* env clock when the state last changed */
	const uint8_t *meta;
	size_t meta_len;
	bool self;
};

enum swim_drop {
	SWIM_DROP_MALFORMED,   /* truncated or inconsistent lengths */
	SWIM_DROP_VERSION,     /* unknown wire version (or not our magic) */
	SWIM_DROP_UNKNOWN_MSG, /* a message type this version does not know, skipped */
	SWIM_DROP_WRONG_NODE,  /* a ping for another node name (stale address) */
	SWIM_DROP_CONFLICT,    /* alive for a live name with another instance id */
	SWIM_DROP_OVERSIZE,    /* larger than the datagram or stream limit */
	SWIM_DROP_NOT_RUNNING, /* received after leave */
	SWIM_DROP__MAX,
};

struct swim_stats {
	uint64_t probes;	  /* direct probes started */
	uint64_t probe_failures;  /* probes with no ack at all (direct, indirect, TCP) */
	uint64_t acks_received;	  /* acks for our probes (direct or relayed) */
	uint64_t indirect_probes; /* ping-req sent */
	uint64_t nacks_received;
	uint64_t nacks_sent;
	uint64_t tcp_probes;	      /* TCP fallback probes started */
	uint64_t tcp_probe_acks;      /* ... that reached the member when UDP did not */
	uint64_t suspicions_raised;   /* accusations from our own failed probes */
	uint64_t suspicions_deferred; /* not raised: rate limit or too many open (own trouble) */
	uint64_t suspicions_received;
	uint64_t refutations;	  /* times we refuted an accusation of ourselves */
	uint64_t deaths_declared; /* suspicion timeouts that expired here */
	uint64_t pushpulls;	  /* state exchanges started (includes joins) */
	uint64_t conflicts;	  /* name claimed by another instance id */
	uint64_t msgs_sent, msgs_received;
	uint64_t udp_sent, udp_received;     /* datagrams */
	uint64_t bytes_sent, bytes_received; /* plaintext payload, UDP and streams */
	uint64_t stream_bytes_sent, stream_bytes_received;
	uint64_t dropped[SWIM_DROP__MAX];
	uint32_t health_score; /* Lifeguard awareness: 0 healthy .. awareness_max - 1 */
	uint32_t incarnation;  /* our own */
	uint32_t alive, suspect, dead, left; /* members by state, self included */
};

enum swim_event_type {
	SWIM_EV_JOINED,	      /* a seed answered; addr = the seed */
	SWIM_EV_JOIN_RETRY,   /* no seed answered; retrying after back-off (err, delay_ms) */
	SWIM_EV_JOIN_REFUSED, /* a seed refused us: name is a live member with another instance */
	SWIM_EV_CONFLICT,     /* another instance claims name (refused or ignored here) */
	SWIM_EV_REANNOUNCE,   /* isolated: announcing ourselves to the seeds again */
	SWIM_EV_REFUTED,      /* we were accused (suspect/dead) and refuted; incarnation = new */
	SWIM_EV_REAPED,	      /* a dead/left member was forgotten after dead_reclaim_ms */
};

struct swim_event {
	enum swim_event_type type;
	const char *name;  /* the member it is about (NULL for JOINED/JOIN_RETRY/REANNOUNCE) */
	uint64_t instance; /* CONFLICT/JOIN_REFUSED: the instance that holds the name */
	uint64_t other_instance;      /* CONFLICT: the instance that was refused */
	const struct swim_addr *addr; /* the seed or the peer involved, may be NULL */
	uint32_t incarnation;
	uint32_t delay_ms;
	int err;
};

struct swim_env {
	void *ud;
	uint64_t (*now_ms)(void *ud); /* monotonic milliseconds */
	uint32_t (*rand32)(void *ud);
	/* Send one datagram (<= max_dgram). Errors are counted, never retried. */
	int (*send_udp)(void *ud, const struct swim_addr *to, const void *buf, size_t len);
	/*
	 * Open a stream (TCP) to `to`, send req, read one reply, close; later call
	 * swim_stream_done(s, token, reply, len) or with a negative errno (connect error, timeout:
	 * the glue enforces stream_timeout_ms). Returns <0 if it cannot even start.
	 */
	int (*stream)(void *ud, const struct swim_addr *to, const void *req, size_t len,
		      uint64_t token);
	void (*on_change)(void *ud, const struct swim_member *m); /* new, state, meta, address */
	void (*on_event)(void *ud, const struct swim_event *ev);  /* may be NULL */
};

struct swim_config {
	uint32_t probe_interval_ms;	    /* one probe per interval (stretched by awareness) */
	uint32_t probe_timeout_ms;	    /* direct ack wait before indirect probes */
	uint32_t indirect_checks;	    /* k members asked to ping-req */
	bool tcp_fallback;		    /* TCP ping alongside indirect probes */
	uint32_t suspicion_mult;	    /* min timeout = mult * log10(n) * probe interval */
	uint32_t suspicion_max_mult;	    /* max timeout = max_mult * min timeout */
	uint32_t suspicion_min_ms;	    /* floor of the min timeout (survive a stalled node) */
	uint32_t retransmit_mult;	    /* broadcast sent mult * ceil(log10(n + 1)) times */
	uint32_t gossip_interval_ms;	    /* piggyback-only gossip rounds */
	uint32_t gossip_nodes;		    /* fan-out per gossip round */
	uint32_t gossip_to_dead_ms;	    /* keep gossiping to members dead for less than this */
	uint32_t pushpull_interval_ms;	    /* base; see pushpull_per_node_ms */
	uint32_t pushpull_per_node_ms;	    /* interval >= n * this, so bytes/s stay flat with n */
	uint32_t pushpull_scale_memberlist; /* 1: memberlist's log2 scale above 32 nodes instead */
	uint32_t awareness_max;		    /* Lifeguard: timeouts stretched up to this multiple */
	uint32_t max_own_suspicions; /* open accusations before we blame ourselves (0: no cap) */
	uint32_t suspect_burst;	     /* token bucket for new accusations (0: no limit) */
	uint32_t suspect_refill_ms;
	uint32_t join_retry_min_ms; /* join back-off, doubling up to max */
	uint32_t join_retry_max_ms;
	uint32_t reannounce_ms;		/* isolated this long: push-pull with the seeds again */
	uint32_t reconnect_interval_ms; /* ping one recently dead member (0: off) */
	uint32_t dead_reclaim_ms;	/* forget dead/left members after this */
	uint32_t stream_timeout_ms;	/* what the glue should enforce on a stream */
	uint32_t max_dgram;		/* datagram limit: SWIM_DGRAM_MAX minus crypto overhead */
	uint32_t packet_overhead;	/* bytes/s accounting: per-datagram bytes added below us */
	bool direct_retry; /* ping the target again alongside the indirect probes (Shoal) */
	/* before a suspicion turns into death, ask the suspect directly and wait this long (0: off)
	 */
	uint32_t final_probe_ms;
	/*
	 * Many dead members coming back at once (a partition healed): push-pull with one of them
	 * at most this often, so whole views cross instead of a refutation per member (0: off).
	 */
	uint32_t heal_pushpull_ms;
	/*
	 * Many members learned through gossip (a mass join): gossip reaches almost every node,
	 * and the few pairs it misses wait for a periodic push-pull. After catchup_members new
	 * members heard since our last push-pull, push-pull again, at most every catchup_ms
	 * (0: off).
	 */
	uint32_t catchup_members;
	uint32_t catchup_ms;
	/*
	 * Periodic and catch-up push-pulls send a digest (16 bytes a member) and get back only
	 * the members that differ, so their bytes grow by 16 rather than ~130 per member (Shoal).
	 * Joins, heals and reconnects still exchange whole states.
	 */
	bool pushpull_digest;
};

struct swim;

/* Shoal's tuning (docs/gossip.md): crash known everywhere in ~3 s, no false deaths. */
struct swim_config swim_config_default(void);
/* memberlist's DefaultLANConfig as a parameter set of this code (for the bench). */
struct swim_config swim_config_memberlist_lan(void);

/*
 * A node `name` (<= SWIM_NAME_MAX bytes, no NUL) with its persisted instance id, its advertised
 * address and the incarnation it last used (0 at first start). -EINVAL on bad arguments.
 */
int swim_new(const struct swim_config *cfg, const struct swim_env *env, const char *name,
	     uint64_t instance, const struct swim_addr *addr, uint32_t incarnation,
	     struct swim **ret);
struct swim *swim_free(struct swim *s);

/* Replace our metadata (<= SWIM_META_MAX) and announce it with a new incarnation. */
int swim_set_meta(struct swim *s, const void *buf, size_t len);

/*
 * Join through seeds (any members' addresses): push-pull with each; retried with back-off until
 * one answers. Returns 0 when started; the outcome comes as on_event and swim_join_status().
 * The seeds are remembered for re-announcing when isolated.
 */
int swim_join(struct swim *s, const struct swim_addr *seeds, size_t n);
/* 0 joined (or no join asked), -EINPROGRESS still trying, -EEXIST refused: name taken. */
int swim_join_status(const struct swim *s);

/*
 * Graceful leave: mark ourselves left, send the news to a few members at once and queue it for
 * gossip. Afterwards we stop probing; the glue may keep ticking until swim_leave_done() or quit.
 */
int swim_leave(struct swim *s);
bool swim_leave_done(const struct swim *s);

/* Absolute env-clock time the next swim_tick is due; swim_tick runs everything due by now. */
uint64_t swim_next_timer_ms(const struct swim *s);
void swim_tick(struct swim *s);

/* A datagram from `from` (plaintext). Returns 0, or <0 when it was dropped (also counted). */
int swim_recv_udp(struct swim *s, const struct swim_addr *from, const void *buf, size_t len);

/*
 * Server side of a stream: push-pull, join, TCP ping. *reply is malloc'd (caller frees) or NULL
 * when there is nothing to answer. Returns 0 or <0 (dropped and counted).
 */
int swim_handle_stream(struct swim *s, const struct swim_addr *from, const void *req, size_t len,
		       void **reply, size_t *reply_len);
/* Client side completion of env->stream: reply bytes, or len < 0 = -errno. Stale tokens ignored. */
void swim_stream_done(struct swim *s, uint64_t token, const void *reply, ssize_t len);

/* The view, self included (dead and left members until dead_reclaim_ms). */
size_t swim_member_count(const struct swim *s);
const struct swim_member *swim_member_get(const struct swim *s, size_t i);
const struct swim_member *swim_member_find(const struct swim *s, const char *name);
const struct swim_member *swim_self(const struct swim *s);
void swim_get_stats(const struct swim *s, struct swim_stats *st);

const char *swim_state_name(enum swim_state st);
const char *swim_drop_name(enum swim_drop d);
/* "10.0.0.1:7946" / "[fd00::1]:7946"; returns the length like snprintf, or -EINVAL. */
int swim_addr_format(const struct swim_addr *a, char *buf, size_t len);
/* Parse "IP:PORT" / "[IP6]:PORT" (no name resolution). */
int swim_addr_parse(const char *s, struct swim_addr *a);
bool swim_addr_equal(const struct swim_addr *a, const struct swim_addr *b);

#endif
