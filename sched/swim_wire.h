/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gossip wire format, version 1 (docs/gossip.md): a 4-byte header, then messages, each a
 * 4-byte message header (type, flags, body length) and a body made of a fixed part (the
 * structs below, frozen with static_assert) and variable fields in a fixed order. Integers are
 * big-endian byte arrays, so the structs have no padding and no alignment. The same framing is
 * used for datagrams and for streams. Pure code: no allocation while decoding.
 */
#ifndef SHOAL_SCHED_SWIM_WIRE_H
#define SHOAL_SCHED_SWIM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/swim.h"

#define SWIM_WIRE_MAGIC 0xa7
#define SWIM_WIRE_VERSION 1

enum swim_msg_type {
	SWIM_MSG_PING = 1,     /* seq, target, from: "are you there" (UDP or stream) */
	SWIM_MSG_ACK = 2,      /* seq */
	SWIM_MSG_NACK = 3,     /* seq: an indirect probe got no answer in time */
	SWIM_MSG_PING_REQ = 4, /* seq, target + its address, from: probe target for me */
	SWIM_MSG_ALIVE = 5,    /* incarnation, instance, address, name, meta */
	SWIM_MSG_SUSPECT = 6,  /* incarnation, name, from */
	SWIM_MSG_DEAD = 7,     /* incarnation, name, from (from == name: left) */
	SWIM_MSG_PUSHPULL = 8, /* stream: sender name + instance, entry count, join flag */
	SWIM_MSG_STATE = 9,    /* stream: one member's full state */
	SWIM_MSG_REFUSE = 10,  /* stream reply to a join: name held by a live instance */
	SWIM_MSG_DIGEST = 11,  /* stream: one member's name hash, incarnation and state */
};

/* message flags */
#define SWIM_WIRE_F_NACK 0x01  /* PING_REQ: send a NACK if the target does not answer */
#define SWIM_WIRE_F_JOIN 0x01  /* PUSHPULL: this exchange is a join (check the identity) */
#define SWIM_WIRE_F_REPLY 0x02 /* PUSHPULL: the answer to one */
/* PUSHPULL: a digest exchange: the request lists DIGESTs, the reply the STATEs the requester
 * lacks and DIGESTs of what the replier wants */
#define SWIM_WIRE_F_DIGEST 0x04
#define SWIM_WIRE_F_PUSH 0x08 /* PUSHPULL: the STATEs a digest reply asked for (empty reply) */

#define SWIM_REFUSE_NAME_TAKEN 1

struct swim_wire_hdr {
	uint8_t magic;
	uint8_t version;
	uint8_t flags; /* none defined: sent 0, ignored */
	uint8_t reserved;
};
struct swim_wire_msg_hdr {
	uint8_t type;
	uint8_t flags;
	uint8_t len[2]; /* body bytes after this header */
};
struct swim_wire_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t reserved;
	uint8_t port[2];
	uint8_t ip[16]; /* IPv4 in the first 4 bytes, the rest zero */
};
struct swim_wire_ping { /* + target, from */
	uint8_t seq[4];
	uint8_t target_len;
	uint8_t from_len;
	uint8_t reserved[2];
};
struct swim_wire_ack { /* ACK and NACK */
	uint8_t seq[4];
};
struct swim_wire_ping_req { /* + target, from */
	uint8_t seq[4];
	struct swim_wire_addr target_addr;
	uint8_t target_len;
	uint8_t from_len;
	uint8_t reserved[2];
};
struct swim_wire_alive { /* + name, meta */
	uint8_t incarnation[4];
	uint8_t instance[8];
	struct swim_wire_addr addr;
	uint8_t name_len;
	uint8_t reserved;
	uint8_t meta_len[2];
};
struct swim_wire_suspect { /* SUSPECT and DEAD; + name, from */
	uint8_t incarnation[4];
	uint8_t name_len;
	uint8_t from_len;
	uint8_t reserved[2];
};
struct swim_wire_pushpull { /* + name */
	uint8_t instance[8];
	uint8_t count[4]; /* STATE messages that follow */
	uint8_t name_len;
	uint8_t reserved[3];
};
struct swim_wire_state { /* + name, meta */
	uint8_t incarnation[4];
	uint8_t instance[8];
	struct swim_wire_addr addr;
	uint8_t name_len;
	uint8_t state; /* enum swim_state */
	uint8_t meta_len[2];
};
struct swim_wire_refuse {    /* + name */
	uint8_t instance[8]; /* the live instance holding the name */
	uint8_t reason;
	uint8_t name_len;
	uint8_t reserved[2];
};

struct swim_wire_digest {
	uint8_t hash[8]; /* FNV-1a 64 of the member's name */
	uint8_t incarnation[4];
	uint8_t state; /* enum swim_state */
	uint8_t reserved[3];
};

_Static_assert(sizeof(struct swim_wire_hdr) == 4, "wire header frozen");
_Static_assert(sizeof(struct swim_wire_digest) == 16, "digest frozen");
_Static_assert(sizeof(struct swim_wire_msg_hdr) == 4, "wire message header frozen");
_Static_assert(sizeof(struct swim_wire_addr) == 20, "wire address frozen");
_Static_assert(sizeof(struct swim_wire_ping) == 8, "ping frozen");
_Static_assert(sizeof(struct swim_wire_ack) == 4, "ack frozen");
_Static_assert(sizeof(struct swim_wire_ping_req) == 28, "ping-req frozen");
_Static_assert(sizeof(struct swim_wire_alive) == 36, "alive frozen");
_Static_assert(sizeof(struct swim_wire_suspect) == 8, "suspect frozen");
_Static_assert(sizeof(struct swim_wire_pushpull) == 16, "push-pull frozen");
_Static_assert(sizeof(struct swim_wire_state) == 36, "state frozen");
_Static_assert(sizeof(struct swim_wire_refuse) == 12, "refuse frozen");
_Static_assert(__builtin_offsetof(struct swim_wire_alive, addr) == 12, "alive layout");
_Static_assert(__builtin_offsetof(struct swim_wire_state, name_len) == 32, "state layout");
_Static_assert(__builtin_offsetof(struct swim_wire_ping_req, target_len) == 24, "ping-req layout");

/* One decoded message; names are NUL-terminated copies, meta points into the buffer. */
struct swim_msg {
	uint8_t type;
	uint8_t flags;
	uint8_t state;	/* STATE */
	uint8_t reason; /* REFUSE */
	uint32_t seq;
	uint32_t incarnation;
	uint32_t count; /* PUSHPULL */
	uint64_t instance;
	uint64_t hash; /* DIGEST */
	struct swim_addr addr;
	char name[SWIM_NAME_MAX + 1]; /* subject: target of a ping, member of alive/suspect/... */
	char from[SWIM_NAME_MAX + 1];
	const uint8_t *meta;
	size_t meta_len;
};

/* An output buffer: fixed capacity (datagrams) or growing (streams, up to SWIM_STREAM_MAX). */
struct swim_wbuf {
	uint8_t *buf;
	size_t len, cap;
	bool grow;
};

/* Bytes the message takes on the wire, header included. */
size_t swim_wire_msg_size(const struct swim_msg *m);
/* Start a packet: writes the header. */
int swim_wire_begin(struct swim_wbuf *w);
/* Append one message; -ENOSPC if it does not fit (buffer unchanged), -EINVAL if unencodable. */
int swim_wire_put(struct swim_wbuf *w, const struct swim_msg *m);
/* Append raw, already encoded messages (a queued broadcast). */
int swim_wire_put_raw(struct swim_wbuf *w, const void *msg, size_t len);

/* 0 if the header is ours, -EPROTONOSUPPORT for another version/magic, -EBADMSG if short. */
int swim_wire_check(const void *buf, size_t len);
/*
 * Decode the message at *off (start at sizeof(struct swim_wire_hdr)). Returns 1 with *m filled,
 * 0 at the end, -ENOMSG for an unknown type (skipped: *off advanced), -EBADMSG when malformed
 * (stop: the rest cannot be framed).
 */
int swim_wire_next(const void *buf, size_t len, size_t *off, struct swim_msg *m);

#endif
