// SPDX-License-Identifier: Apache-2.0
/* Cluster DNS server: evdns server port + store watches + upstream relay (see dns.h). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "daemon/dns.h"
#include "daemon/dns_zone.h"
#include "lib/log.h"
#include "lib/macro.h"

#define DNS_MAX_PENDING 1024	    /* questions waiting for an upstream */
#define DNS_MAX_UPSTREAMS 3	    /* like glibc's MAXNS */
#define DNS_RESOLV_CHECK_SECONDS 10 /* how often resolv.conf is checked for changes */
#define DNS_TCP_MAX_CONNS 256	    /* client connections; more are refused (closed at once) */
#define DNS_TCP_IDLE_SECONDS 10	    /* a connection with nothing in flight is closed after */
#define DNS_TCP_MAX_INFLIGHT 16	    /* per connection: more queries wait in the socket */
#define DNS_TCP_OUT_MAX (4 * (DNS_TCP_MAX + 2)) /* reading pauses while this much is unsent */

struct dns_fwd;
struct dns_conn;

struct dns_server {
	struct event_base *base;
	struct store *store;
	struct dns_zone *zone;
	struct store_watch *watches[3];
	struct evdns_server_port *port;
	struct evconnlistener *listener;
	struct event *accept_timer; /* re-enables the listener after accept() failed */
	struct dns_conn *conns;	    /* doubly linked */
	size_t nconns;
	char *listen_str;
	struct sockaddr_storage listen;
	socklen_t listen_len;
	char *resolv_conf;
	struct timespec resolv_mtime;
	off_t resolv_size;
	struct event *resolv_timer;
	struct sockaddr_storage ups[DNS_MAX_UPSTREAMS];
	socklen_t ups_len[DNS_MAX_UPSTREAMS];
	size_t nups;
	struct timeval timeout;
	struct dns_fwd *pending; /* doubly linked */
	size_t npending;
	struct dns_server_stats stats;
};

/* A client's TCP connection: length-prefixed queries in, replies out (in any order). */
struct dns_conn {
	struct dns_conn *next, *prev;
	struct dns_server *s;
	struct bufferevent *bev;
	unsigned inflight; /* questions waiting for an upstream */
	bool eof;	   /* the client is done sending: close once all is answered */
	bool busy;	   /* in conn_read: it decides about freeing */
};

/*
 * One question relayed upstream on its own connected socket (fresh source port and id): a UDP
 * client's (req) over UDP, a TCP client's (conn) over TCP, since that client wants the whole
 * answer.
 */
struct dns_fwd {
	struct dns_fwd *next, *prev;
	struct dns_server *s;
	struct evdns_server_request *req; /* UDP client */
	struct dns_conn *conn;		  /* or TCP client, with its query */
	struct dns_query cq;
	struct bufferevent *ubev;  /* TCP to the upstream */
	char qname[DNS_NAME_MAX];  /* as the client asked it */
	char upname[DNS_NAME_MAX]; /* what we ask upstream (an ExternalName's CNAME target) */
	uint16_t qtype, qclass, id;
	bool rd;
	struct dns_answer pre; /* records that go before the upstream's (the CNAME) */
	int fd;
	struct event *ev;
	unsigned tries, max_tries, first;
};

static const char *const resources[] = {"services", "endpoints", "pods"};

/* --- the index --- */

static int zone_feed(struct dns_zone *z, const char *resource, const struct store_obj *o,
		     bool deleted)
{
	_cleanup_json_ cJSON *obj = NULL;

	/* a pod without an IP has no name to answer: skip the parse (every API create) */
	if (!deleted && streq(resource, "pods") && !strstr(o->json, "\"podIP\""))
		deleted = true;
	if (!deleted) {
		obj = store_obj_parse(o);
		if (!obj)
			return -ENOMEM;
	}
	if (streq(resource, "services"))
		return dns_zone_service_set(z, o->ns, o->name, obj);
	if (streq(resource, "endpoints"))
		return dns_zone_endpoints_set(z, o->ns, o->name, obj);
	return dns_zone_pod_set(z, o->ns, o->name, obj);
}

static void on_store_event(const struct store_event *ev, void *userdata)
{
	struct dns_server *s = userdata;
	int r = zone_feed(s->zone, ev->obj->resource, ev->obj, ev->type == STORE_DELETED);

	if (r < 0)
		log_error_errno(r, "dns: cannot index %s %s/%s", ev->obj->resource, ev->obj->ns,
				ev->obj->name);
}

struct list_ctx {
	struct dns_zone *z;
	const char *resource;
};

static int on_list(struct store_obj *o, void *userdata)
{
	struct list_ctx *c = userdata;

	return zone_feed(c->z, c->resource, o, false);
}

/* --- upstreams --- */

static bool sa_same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
	return false;
}

static uint16_t sa_port(const struct sockaddr *a)
{
	return a->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)a)->sin6_port)
					: ntohs(((const struct sockaddr_in *)a)->sin_port);
}

static void sa_format(const struct sockaddr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, sa_port(a));
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, sa_port(a));
	}
}

static bool sa_is_any(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	return a->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* Would a query to `up` reach this server? Same port, and our address, or when we listen on a
 * wildcard address any address of this host. */
static bool upstream_is_self(const struct dns_server *s, const struct sockaddr *up)
{
	const struct sockaddr *me = (const struct sockaddr *)&s->listen;
	struct ifaddrs *ifs, *i;
	bool self = false;

	if (sa_port(up) != sa_port(me))
		return false;
	if (sa_same_addr(up, me))
		return true;
	if (!sa_is_any(me) || up->sa_family != me->sa_family)
		return false;
	if (up->sa_family == AF_INET &&
	    (ntohl(((const struct sockaddr_in *)up)->sin_addr.s_addr) >> 24) == 127)
		return true; /* all of 127/8 is local */
	if (getifaddrs(&ifs) < 0)
		return false;
	for (i = ifs; i && !self; i = i->ifa_next)
		self = i->ifa_addr && sa_same_addr(up, i->ifa_addr);
	freeifaddrs(ifs);
	return self;
}

/* (Re)load the nameservers from resolv.conf, parsed by evdns itself. */
static void upstreams_load(struct dns_server *s)
{
	struct evdns_base *db;
	struct stat st;
	int r, n;

	s->nups = 0;
	if (strempty(s->resolv_conf))
		return;
	if (stat(s->resolv_conf, &st) == 0) {
		s->resolv_mtime = st.st_mtim;
		s->resolv_size = st.st_size;
	}
	db = evdns_base_new(s->base, 0);
	if (!db)
		return;
	/* only 0 means the file was read: otherwise evdns falls back to 127.0.0.1 */
	r = evdns_base_resolv_conf_parse(db, DNS_OPTION_NAMESERVERS, s->resolv_conf);
	if (r != 0) {
		log_warn("dns: no upstream nameservers from %s (evdns error %d); names outside "
			 "the cluster domain get SERVFAIL",
			 s->resolv_conf, r);
		evdns_base_free(db, 0);
		return;
	}
	n = evdns_base_count_nameservers(db);
	for (int i = 0; i < n && s->nups < DNS_MAX_UPSTREAMS; i++) {
		struct sockaddr_storage ss;
		char buf[INET6_ADDRSTRLEN + 8] = "";
		int len = evdns_base_get_nameserver_addr(db, i, (struct sockaddr *)&ss, sizeof(ss));

		if (len <= 0 || len > (int)sizeof(ss))
			continue;
		sa_format((struct sockaddr *)&ss, buf, sizeof(buf));
		if (upstream_is_self(s, (struct sockaddr *)&ss)) {
			log_warn("dns: ignoring upstream %s from %s: it is this server", buf,
				 s->resolv_conf);
			continue;
		}
		s->ups[s->nups] = ss;
		s->ups_len[s->nups] = (socklen_t)len;
		s->nups++;
		log_info("dns: upstream %s", buf);
	}
	s->stats.upstreams = s->nups;
	evdns_base_free(db, 0);
}

static void on_resolv_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns_server *s = arg;
	struct stat st;

	if (stat(s->resolv_conf, &st) < 0)
		return;
	if (st.st_mtim.tv_sec == s->resolv_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == s->resolv_mtime.tv_nsec && st.st_size == s->resolv_size)
		return;
	log_info("dns: %s changed, reloading upstreams", s->resolv_conf);
	upstreams_load(s);
}

/* --- replies --- */

static void reply(struct dns_server *s, struct evdns_server_request *req, const char *qname,
		  struct dns_answer *a)
{
	/* evdns (2.1) cuts longer replies mid-record: drop whole records instead, and say so
	 * with TC when an answer or authority record went, so the client retries over TCP */
	if (dns_answer_fit(a, qname, DNS_UDP_MAX))
		a->flags |= DNS_FLAG_TC;
	for (size_t i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rrs[i];
		if (evdns_server_request_add_reply(req, rr->section, rr->name, rr->type, rr->class,
						   (int)rr->ttl, rr->rdlen, 0,
						   (const char *)rr->rdata) < 0) {
			a->rcode = DNS_RCODE_SERVFAIL;
			break;
		}
	}
	if (a->rcode == DNS_RCODE_SERVFAIL)
		s->stats.servfail++;
	/* RA: we recurse (by relaying); set_flags keeps the client's RD and CD */
	evdns_server_request_set_flags(req, (a->flags & (DNS_FLAG_AA | DNS_FLAG_TC | DNS_FLAG_AD)) |
						DNS_FLAG_RA);
	if (evdns_server_request_respond(req, a->rcode) < 0)
		evdns_server_request_drop(req);
}

static void reply_rcode(struct dns_server *s, struct evdns_server_request *req, int rcode)
{
	struct dns_answer a = {.rcode = rcode};
	const char *qname = req->nquestions ? req->questions[0]->name : "";

	reply(s, req, qname, &a);
}

static void conn_reply(struct dns_conn *c, const struct dns_query *q, struct dns_answer *a)
{
	uint8_t buf[2 + DNS_TCP_MAX];
	int n;

	if (a->rcode == DNS_RCODE_SERVFAIL)
		c->s->stats.servfail++;
	n = dns_reply_encode(q, a, buf + 2, DNS_TCP_MAX);
	if (n < 0) {
		struct dns_answer fail = {.rcode = DNS_RCODE_SERVFAIL};
		n = dns_reply_encode(q, &fail, buf + 2, DNS_TCP_MAX);
		if (n < 0)
			return;
	}
	buf[0] = (uint8_t)(n >> 8);
	buf[1] = (uint8_t)n;
	bufferevent_write(c->bev, buf, (size_t)n + 2);
}

static void conn_reply_rcode(struct dns_conn *c, const struct dns_query *q, int rcode)
{
	struct dns_answer a = {.rcode = rcode};

	conn_reply(c, q, &a);
}

/*
 * The answer to one question, the same for UDP and TCP: 1 answered from the zone (*a), 0 relay
 * `upname` upstream with *a's records (an ExternalName's CNAME, or none) first, -errno.
 */
static int answer_question(struct dns_server *s, const char *qname, uint16_t qtype, uint16_t qclass,
			   struct dns_answer *a, char *upname, size_t uplen)
{
	int r;

	r = dns_zone_answer(s->zone, qname, qtype, qclass, a);
	if (r <= 0) {
		snprintf(upname, uplen, "%s", qname);
		return r;
	}
	s->stats.local++;
	/* an ExternalName's CNAME out of the zone: resolve the target too, as CoreDNS does, since
	 * pods' stub resolvers do not chase CNAMEs themselves */
	if (a->rcode == DNS_RCODE_NOERROR && a->n == 1 && a->rrs[0].type == DNS_T_CNAME &&
	    qtype != DNS_T_CNAME && qtype != DNS_T_ANY) {
		if (ns_name_ntop(a->rrs[0].rdata, upname, uplen) > 0 &&
		    !dns_zone_contains(s->zone, upname))
			return 0;
	}
	return 1;
}

/* --- forwarding --- */

static void conn_maybe_free(struct dns_conn *c);

static void fwd_free(struct dns_fwd *f)
{
	struct dns_server *s = f->s;

	if (f->ev)
		event_free(f->ev);
	if (f->ubev)
		bufferevent_free(f->ubev);
	if (f->fd >= 0)
		close(f->fd);
	dns_answer_clear(&f->pre);
	if (f->prev)
		f->prev->next = f->next;
	else
		s->pending = f->next;
	if (f->next)
		f->next->prev = f->prev;
	s->npending--;
	free(f);
}

static void fwd_finish(struct dns_fwd *f, struct dns_answer *up)
{
	struct dns_server *s = f->s;
	struct dns_conn *c = f->conn;
	struct dns_answer a = {0};

	if (!up) {
		a.rcode = DNS_RCODE_SERVFAIL;
		goto out;
	}
	/* the CNAME we answered for first, then what upstream said about its target */
	a.rcode = up->rcode;
	a.flags = up->flags & (DNS_FLAG_TC | DNS_FLAG_AD);
	for (size_t i = 0; i < f->pre.n && a.rcode != DNS_RCODE_SERVFAIL; i++) {
		const struct dns_rr *rr = &f->pre.rrs[i];
		if (dns_answer_add(&a, rr->section, rr->name, rr->type, rr->ttl, rr->rdata,
				   rr->rdlen) < 0)
			a.rcode = DNS_RCODE_SERVFAIL;
	}
	for (size_t i = 0; i < up->n && a.rcode != DNS_RCODE_SERVFAIL; i++) {
		const struct dns_rr *rr = &up->rrs[i];
		if (dns_answer_add(&a, rr->section, rr->name, rr->type, rr->ttl, rr->rdata,
				   rr->rdlen) < 0)
			a.rcode = DNS_RCODE_SERVFAIL;
		else
			a.rrs[a.n - 1].class = rr->class;
	}
out:
	if (c)
		conn_reply(c, &f->cq, &a);
	else
		reply(s, f->req, f->qname, &a);
	dns_answer_clear(&a);
	fwd_free(f);
	if (c) {
		c->inflight--;
		conn_maybe_free(c);
	}
}

static void on_fwd_event(evutil_socket_t fd, short what, void *arg);
static void on_fwd_tcp_read(struct bufferevent *bev, void *arg);
static void on_fwd_tcp_event(struct bufferevent *bev, short what, void *arg);

static bool fwd_attempt_tcp(struct dns_fwd *f, size_t i, const uint8_t *q, int n)
{
	struct dns_server *s = f->s;
	uint8_t len[2] = {(uint8_t)(n >> 8), (uint8_t)n};

	f->ubev = bufferevent_socket_new(s->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!f->ubev)
		return false;
	bufferevent_setcb(f->ubev, on_fwd_tcp_read, NULL, on_fwd_tcp_event, f);
	bufferevent_setwatermark(f->ubev, EV_READ, 0, 2 + DNS_TCP_MAX);
	bufferevent_set_timeouts(f->ubev, &s->timeout, &s->timeout);
	if (bufferevent_write(f->ubev, len, 2) < 0 || bufferevent_write(f->ubev, q, (size_t)n) < 0)
		return false;
	if (bufferevent_socket_connect(f->ubev, (struct sockaddr *)&s->ups[i], (int)s->ups_len[i]) <
	    0)
		return false;
	return bufferevent_enable(f->ubev, EV_READ | EV_WRITE) == 0;
}

/* Send the question to the next upstream; false when out of attempts. */
static bool fwd_attempt(struct dns_fwd *f)
{
	struct dns_server *s = f->s;
	uint8_t q[DNS_UDP_MAX];
	int n;

	for (; f->tries < f->max_tries; f->tries++) {
		size_t i = (f->first + f->tries) % s->nups;
		const struct sockaddr *up = (const struct sockaddr *)&s->ups[i];

		if (f->ev)
			event_free(f->ev);
		f->ev = NULL;
		if (f->ubev)
			bufferevent_free(f->ubev);
		f->ubev = NULL;
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		evutil_secure_rng_get_bytes(&f->id, sizeof(f->id));
		n = dns_query_build(f->id, f->rd, f->upname, f->qtype, f->qclass, q, sizeof(q));
		if (n < 0)
			return false;
		if (f->conn) {
			if (!fwd_attempt_tcp(f, i, q, n))
				continue;
			f->tries++;
			return true;
		}
		f->fd = socket(up->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (f->fd < 0)
			continue;
		if (connect(f->fd, up, s->ups_len[i]) < 0 || send(f->fd, q, (size_t)n, 0) != n)
			continue;
		f->ev = event_new(s->base, f->fd, EV_READ | EV_PERSIST, on_fwd_event, f);
		if (!f->ev || event_add(f->ev, &s->timeout) < 0)
			continue;
		f->tries++;
		return true;
	}
	return false;
}

/* An upstream's reply arrived: 1 done (f is freed), 0 ignore it and keep waiting, -1 try the
 * next upstream. */
static int fwd_reply(struct dns_fwd *f, const uint8_t *buf, size_t n)
{
	struct dns_answer up;
	int r;

	r = dns_reply_parse(buf, n, f->id, f->upname, f->qtype, f->qclass, &up);
	if (r == -ESRCH)
		return 0; /* not the answer to our question: spoofed or late */
	if (r < 0)
		return -1;
	/* another upstream may know better; the last one's word is final */
	if ((up.rcode == DNS_RCODE_SERVFAIL || up.rcode == DNS_RCODE_REFUSED) &&
	    f->tries < f->max_tries) {
		dns_answer_clear(&up);
		return -1;
	}
	fwd_finish(f, &up);
	dns_answer_clear(&up);
	return 1;
}

static void fwd_next(struct dns_fwd *f)
{
	if (!fwd_attempt(f)) {
		f->s->stats.servfail++;
		fwd_finish(f, NULL);
	}
}

static void on_fwd_event(evutil_socket_t fd, short what, void *arg)
{
	struct dns_fwd *f = arg;
	uint8_t buf[65536];
	ssize_t n;
	int r;

	if (what & EV_TIMEOUT)
		goto next;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return; /* keep waiting (a stray datagram was ignored) */
			goto next;	/* ECONNREFUSED: nothing listens there */
		}
		r = fwd_reply(f, buf, (size_t)n);
		if (r > 0)
			return;
		if (r < 0)
			goto next;
	}
next:
	fwd_next(f);
}

static void on_fwd_tcp_read(struct bufferevent *bev, void *arg)
{
	struct dns_fwd *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t *p;
	int n, r;

	for (;;) {
		size_t have = evbuffer_get_length(in);
		p = evbuffer_pullup(in, have < 2 + DNS_TCP_MAX ? (ssize_t)have : 2 + DNS_TCP_MAX);
		n = dns_tcp_frame(p, have);
		if (n == 0)
			return;
		if (n < 0) {
			fwd_next(f);
			return;
		}
		r = fwd_reply(f, p + 2, (size_t)n);
		if (r > 0)
			return;
		if (r < 0) {
			fwd_next(f);
			return;
		}
		evbuffer_drain(in, 2 + (size_t)n);
	}
}

static void on_fwd_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		fwd_next(arg);
}

/* Relay (UDP client: req; TCP client: conn and q) upstream; pre: records that go first. */
static void forward(struct dns_server *s, struct evdns_server_request *req, struct dns_conn *conn,
		    const struct dns_query *q, const char *upname, struct dns_answer *pre)
{
	struct dns_fwd *f;

	if (!s->nups || s->npending >= DNS_MAX_PENDING || !(f = calloc(1, sizeof(*f)))) {
		s->stats.servfail++;
		if (conn)
			conn_reply_rcode(conn, q, DNS_RCODE_SERVFAIL);
		else
			reply_rcode(s, req, DNS_RCODE_SERVFAIL);
		return;
	}
	f->s = s;
	f->fd = -1;
	if (conn) {
		f->conn = conn;
		f->cq = *q;
		conn->inflight++;
		snprintf(f->qname, sizeof(f->qname), "%s", q->qname);
		f->qtype = q->qtype;
		f->qclass = q->qclass;
		f->rd = q->flags & DNS_FLAG_RD;
	} else {
		const struct evdns_server_question *eq = req->questions[0];
		f->req = req;
		snprintf(f->qname, sizeof(f->qname), "%s", eq->name);
		f->qtype = (uint16_t)eq->type;
		f->qclass = (uint16_t)eq->dns_question_class;
		f->rd = req->flags & DNS_FLAG_RD;
	}
	snprintf(f->upname, sizeof(f->upname), "%s", upname);
	if (pre) {
		f->pre = *pre;
		memset(pre, 0, sizeof(*pre));
	}
	f->max_tries = s->nups > 2 ? (unsigned)s->nups : 2;
	evutil_secure_rng_get_bytes(&f->first, sizeof(f->first));
	f->first %= s->nups;
	f->next = s->pending;
	if (f->next)
		f->next->prev = f;
	s->pending = f;
	s->npending++;
	s->stats.forwarded++;
	fwd_next(f);
}

/* --- the UDP server (evdns) --- */

static void on_request(struct evdns_server_request *req, void *arg)
{
	struct dns_server *s = arg;
	struct dns_answer a = {0};
	const struct evdns_server_question *q;
	char upname[DNS_NAME_MAX];
	int r;

	s->stats.queries++;
	if (req->nquestions != 1) {
		reply_rcode(s, req, DNS_RCODE_FORMERR);
		return;
	}
	q = req->questions[0];
	r = answer_question(s, q->name, (uint16_t)q->type, (uint16_t)q->dns_question_class, &a,
			    upname, sizeof(upname));
	if (r < 0) {
		s->stats.servfail++;
		reply_rcode(s, req, DNS_RCODE_SERVFAIL);
	} else if (r == 0) {
		forward(s, req, NULL, NULL, upname, &a);
	} else {
		reply(s, req, q->name, &a);
	}
	dns_answer_clear(&a);
}

/* --- the TCP server --- */

static void conn_free(struct dns_conn *c)
{
	struct dns_server *s = c->s;

	/* questions still upstream have nobody to answer to */
	for (struct dns_fwd *f = s->pending, *next; f; f = next) {
		next = f->next;
		if (f->conn == c)
			fwd_free(f);
	}
	bufferevent_free(c->bev);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	free(c);
}

static void conn_read(struct dns_conn *c);

/* Close a connection the client has finished with once every reply is written; resume reading
 * when there is room again. */
static void conn_maybe_free(struct dns_conn *c)
{
	if (c->busy)
		return;
	if (c->eof) {
		if (!c->inflight && !evbuffer_get_length(bufferevent_get_output(c->bev)))
			conn_free(c);
		return;
	}
	conn_read(c);
}

static void conn_read_frames(struct dns_conn *c)
{
	struct dns_server *s = c->s;
	struct evbuffer *in = bufferevent_get_input(c->bev), *out = bufferevent_get_output(c->bev);

	for (;;) {
		struct dns_answer a = {0};
		struct dns_query q;
		char upname[DNS_NAME_MAX];
		size_t have = evbuffer_get_length(in);
		uint8_t *p;
		int n, r;

		/* bounded: stop reading while replies pile up or upstreams are slow; the client's
		 * queries wait in the socket (TCP flow control) */
		if (c->inflight >= DNS_TCP_MAX_INFLIGHT ||
		    evbuffer_get_length(out) > DNS_TCP_OUT_MAX) {
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		bufferevent_enable(c->bev, EV_READ);
		p = evbuffer_pullup(in, have < 2 + DNS_TCP_MAX ? (ssize_t)have : 2 + DNS_TCP_MAX);
		n = dns_tcp_frame(p, have);
		if (n == 0)
			return;
		if (n < 0) {
			c->eof = true;
			evbuffer_drain(in, have);
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		s->stats.queries++;
		r = dns_query_parse(p + 2, (size_t)n, &q);
		evbuffer_drain(in, 2 + (size_t)n);
		if (r == -EBADMSG)
			continue;
		if (r < 0) {
			conn_reply_rcode(c, &q,
					 (q.flags & 0x7800) ? DNS_RCODE_NOTIMP : DNS_RCODE_FORMERR);
			continue;
		}
		r = answer_question(s, q.qname, q.qtype, q.qclass, &a, upname, sizeof(upname));
		if (r < 0) {
			s->stats.servfail++;
			conn_reply_rcode(c, &q, DNS_RCODE_SERVFAIL);
		} else if (r == 0) {
			forward(s, NULL, c, &q, upname, &a);
		} else {
			conn_reply(c, &q, &a);
		}
		dns_answer_clear(&a);
	}
}

static void conn_read(struct dns_conn *c)
{
	if (c->busy)
		return;
	c->busy = true;
	conn_read_frames(c);
	c->busy = false;
	if (c->eof && !c->inflight && !evbuffer_get_length(bufferevent_get_output(c->bev)))
		conn_free(c);
}

static void on_conn_read(struct bufferevent *bev, void *arg)
{
	conn_read(arg);
}

static void on_conn_write(struct bufferevent *bev, void *arg)
{
	conn_maybe_free(arg); /* output drained */
}

static void on_conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct dns_conn *c = arg;

	if (what & BEV_EVENT_ERROR) {
		conn_free(c);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (c->inflight || c->eof)) {
		/* idle only counts while nothing is being answered */
		bufferevent_enable(bev, c->eof ? EV_WRITE : EV_READ | EV_WRITE);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		conn_free(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		c->eof = true;
		conn_maybe_free(c);
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct dns_server *s = arg;
	struct timeval idle = {DNS_TCP_IDLE_SECONDS, 0};
	struct dns_conn *c;

	if (s->nconns >= DNS_TCP_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
		evutil_closesocket(fd);
		return;
	}
	c->s = s;
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, on_conn_read, on_conn_write, on_conn_event, c);
	/* at most one whole message buffered in */
	bufferevent_setwatermark(c->bev, EV_READ, 0, 2 + DNS_TCP_MAX);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = s->conns;
	if (c->next)
		c->next->prev = c;
	s->conns = c;
	s->nconns++;
}

/* accept() failing (EMFILE, ENOBUFS) would fail again at once: pause for a second */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct dns_server *s = arg;
	struct timeval tv = {1, 0};
	int err = EVUTIL_SOCKET_ERROR();

	log_warn("dns: tcp accept on %s: %s; pausing for 1 s", s->listen_str, strerror(err));
	evconnlistener_disable(l);
	evtimer_add(s->accept_timer, &tv);
}

static void on_accept_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns_server *s = arg;

	evconnlistener_enable(s->listener);
}

static int listen_socket(struct dns_server *s, int type, struct err *e)
{
	_cleanup_close_ int fd = -1;
	int one = 1;

	fd = socket(s->listen.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, 0, "", "dns: socket: %s", strerror(errno));
	/* the node address may not be on an interface yet (netplugin adds it) */
	if (s->listen.ss_family == AF_INET)
		setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one));
	else
		setsockopt(fd, SOL_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&s->listen, s->listen_len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 64) < 0))
		return err_set(e, errno, 0, "", "dns: cannot listen on %s (%s): %s", s->listen_str,
			       type == SOCK_STREAM ? "tcp" : "udp", strerror(errno));
	return TAKE_FD(fd);
}

int dns_server_new(struct event_base *base, struct store *store, const struct dns_server_options *o,
		   struct dns_server **ret, struct err *e)
{
	struct dns_server *s;
	int len = sizeof(struct sockaddr_storage), r, fd;

	if (strempty(o->listen))
		return err_set(e, EINVAL, 0, "", "dns: no listen address");
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base = base;
	s->store = store;
	s->listen_str = strdup(o->listen);
	s->resolv_conf = strdup(o->resolv_conf ? o->resolv_conf : "/etc/resolv.conf");
	int ms = o->upstream_timeout_ms > 0 ? o->upstream_timeout_ms : 2000;
	s->timeout.tv_sec = ms / 1000;
	s->timeout.tv_usec = (ms % 1000) * 1000;
	if (!s->listen_str || !s->resolv_conf) {
		r = -ENOMEM;
		goto fail;
	}
	if (evutil_parse_sockaddr_port(o->listen, (struct sockaddr *)&s->listen, &len) < 0 ||
	    sa_port((struct sockaddr *)&s->listen) == 0) {
		r = err_set(e, EINVAL, 0, "", "dns: listen address %s is not host:port", o->listen);
		goto fail;
	}
	s->listen_len = (socklen_t)len;
	r = dns_zone_new(o->domain ? o->domain : "cluster.local", o->ttl, &s->zone);
	if (r < 0) {
		err_set(e, -r, 0, "", "dns: invalid cluster domain %s", o->domain);
		goto fail;
	}
	/* index what the replica holds, then follow it; nothing commits in between (one thread) */
	for (size_t i = 0; i < ARRAY_SIZE(resources); i++) {
		struct list_ctx c = {s->zone, resources[i]};
		r = store_list(store, resources[i], NULL, NULL, NULL, on_list, &c);
		r = r ?: store_watch_add(store, resources[i], 0, on_store_event, s, &s->watches[i]);
		if (r < 0) {
			err_set(e, -r, 0, "", "dns: cannot index %s: %s", resources[i],
				strerror(-r));
			goto fail;
		}
	}
	upstreams_load(s);
	if (!strempty(s->resolv_conf)) {
		struct timeval tv = {DNS_RESOLV_CHECK_SECONDS, 0};
		s->resolv_timer = event_new(base, -1, EV_PERSIST, on_resolv_timer, s);
		if (!s->resolv_timer || event_add(s->resolv_timer, &tv) < 0) {
			r = -ENOMEM;
			goto fail;
		}
	}
	fd = listen_socket(s, SOCK_DGRAM, e);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	s->port = evdns_add_server_port_with_base(base, fd, 0, on_request, s);
	if (!s->port) {
		close(fd);
		r = err_set(e, ENOMEM, 0, "", "dns: cannot start the evdns server");
		goto fail;
	}
	fd = listen_socket(s, SOCK_STREAM, e);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	s->listener = evconnlistener_new(base, on_accept, s,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!s->listener) {
		close(fd);
		r = err_set(e, ENOMEM, 0, "", "dns: cannot start the TCP listener");
		goto fail;
	}
	evconnlistener_set_error_cb(s->listener, on_accept_error);
	s->accept_timer = evtimer_new(base, on_accept_timer, s);
	if (!s->accept_timer) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	dns_server_free(s);
	return r;
}

struct dns_server *dns_server_free(struct dns_server *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(s->watches); i++)
		if (s->watches[i])
			store_watch_cancel(s->watches[i]);
	if (s->listener)
		evconnlistener_free(s->listener);
	if (s->accept_timer)
		event_free(s->accept_timer);
	while (s->conns)
		conn_free(s->conns);
	/* requests hold references on the port: drop them before closing it */
	while (s->pending) {
		evdns_server_request_drop(s->pending->req);
		fwd_free(s->pending);
	}
	if (s->port)
		evdns_close_server_port(s->port);
	if (s->resolv_timer)
		event_free(s->resolv_timer);
	dns_zone_free(s->zone);
	free(s->listen_str);
	free(s->resolv_conf);
	free(s);
	return NULL;
}

void dns_server_stats_get(const struct dns_server *s, struct dns_server_stats *ret)
{
	*ret = s->stats;
}
