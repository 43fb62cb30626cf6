/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The replication wire format, version 1 (docs/consistency.md): an 8-byte header (frozen with
 * static_assert), then the message body. Integers in bodies are LEB128 varints, except digests
 * and key hashes (8 bytes, little-endian); strings and bodies are a varint length counting a
 * terminating NUL that is on the wire too, so a decoded string points into the message and is
 * a C string (no copy). Pure code.
 *
 * Messages (request -> reply):
 *   PUSH      round (varint, 0 outside a round), then `count` keys        -> PUSH_ACK
 *   PUSH_ACK  applied, stale, later, refused (varints)
 *   DIGESTS   round, then `count` x (resource, digest of buckets [0, 1024)) -> DIGESTS_REPLY
 *   DIGESTS_REPLY `count` x (resource, 1,024 bucket digests) for resources that differ
 *   DIGESTS and DIGESTS_REPLY end with the sender's watermark section (sched/repl_wm.h);
 *   a receiver that does not know it ignores the trailing bytes, and an empty one is none
 *   KEYS      round, then `count` buckets x (resource, bucket, nkeys, nkeys x (ns, name, hash))
 *                                                                         -> KEYS_REPLY
 *   KEYS_REPLY buckets covered (varint: the requester resends the rest), then `count` keys
 *             (registers the requester lacks or holds differently), then nwant x (resource,
 *             ns, name, flags) the replier lacks (REPL_WANT_LACKED) or holds differently
 *   CONFIRM   `count` keys: the sender's registers of them (its bindings)     -> CONFIRM_REPLY
 *   CONFIRM_REPLY `count` keys: the replier's registers of those keys after merging the request's
 *             (docs/scheduling.md, "Confirming a binding")
 * A key: resource, ns, name, uid, born, flags (REPL_KEY_*), spec hlc, spec node, spec body
 * (not for tombstones), sticky (REPL_KEY_STICKY), status hlc + node + body (REPL_KEY_STATUS;
 * body only with REPL_KEY_STATUS_BODY) + ownership term (REPL_KEY_STATUS_TERM, absent: 0).
 */
#ifndef SHOAL_SCHED_REPL_WIRE_H
#define SHOAL_SCHED_REPL_WIRE_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/store.h"

#define REPL_WIRE_MAGIC 0x5e
#define REPL_WIRE_VERSION 1

enum repl_msg_type {
	REPL_MSG_PUSH = 1,
	REPL_MSG_PUSH_ACK = 2,
	REPL_MSG_DIGESTS = 3,
	REPL_MSG_DIGESTS_REPLY = 4,
	REPL_MSG_KEYS = 5,
	REPL_MSG_KEYS_REPLY = 6,
	REPL_MSG_REFUSE = 7, /* reply: this node does not serve rounds now (pull-only resync) */
	/* reply to DIGESTS or KEYS: this node is catching up on a large difference itself; a
	 * round with it now would only send it what it is pulling already: try later */
	REPL_MSG_BUSY = 8,
	REPL_MSG_CONFIRM = 9,
	REPL_MSG_CONFIRM_REPLY = 10,
};

/* header flags */
#define REPL_F_FINAL 0x01 /* PUSH: the last message of an anti-entropy round */
#define REPL_F_PULL 0x02  /* PUSH FINAL: the sender is resyncing pull-only (sent nothing) */

/* KEYS_REPLY want flags */
#define REPL_WANT_LACKED 0x01 /* the replier has no register of the key at all */

/* key flags */
#define REPL_KEY_TOMBSTONE 0x01
#define REPL_KEY_STICKY 0x02
#define REPL_KEY_STATUS 0x04
#define REPL_KEY_STATUS_BODY 0x08
#define REPL_KEY_STATUS_TERM 0x10

struct repl_wire_hdr {
	uint8_t magic;
	uint8_t version;
	uint8_t type;
	uint8_t flags;
	uint8_t count[4]; /* big-endian: items in the body (see above) */
};
static_assert(sizeof(struct repl_wire_hdr) == 8, "repl_wire_hdr is frozen");

/* --- writing: a growable buffer; an allocation failure sticks (checked at the end) --- */
struct repl_buf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

void rbuf_init(struct repl_buf *b, enum repl_msg_type type, uint8_t flags);
void rbuf_free(struct repl_buf *b);
void rbuf_u8(struct repl_buf *b, uint8_t v);
void rbuf_varint(struct repl_buf *b, uint64_t v);
void rbuf_u64(struct repl_buf *b, uint64_t v);
void rbuf_str(struct repl_buf *b, const char *s);	      /* NULL as "" */
void rbuf_bytes(struct repl_buf *b, const char *p, size_t n); /* + NUL on the wire */
void rbuf_raw(struct repl_buf *b, const void *p, size_t n);   /* bytes as they are */
/* Set the header's count / flags. */
void rbuf_set_count(struct repl_buf *b, uint32_t count);
void rbuf_set_flags(struct repl_buf *b, uint8_t flags);
/* A key's registers (spec, and status or NULL). */
void rbuf_key(struct repl_buf *b, const struct store_reg *spec, const struct store_reg *status);
/* Hand the buffer to the caller (*ret malloc'ed); -ENOMEM if any write failed. */
int rbuf_take(struct repl_buf *b, uint8_t **ret, size_t *ret_len);

/* --- reading --- */
struct repl_rd {
	const uint8_t *p, *end;
	bool bad;
};

/* Check the header; *type, *flags, *count out. -EBADMSG / -EPROTONOSUPPORT. */
int rrd_init(struct repl_rd *r, const uint8_t *msg, size_t len, enum repl_msg_type *type,
	     uint8_t *flags, uint32_t *count);
uint8_t rrd_u8(struct repl_rd *r);
uint64_t rrd_varint(struct repl_rd *r);
uint64_t rrd_u64(struct repl_rd *r);
const char *rrd_str(struct repl_rd *r);		       /* "" after an error */
const char *rrd_bytes(struct repl_rd *r, size_t *len); /* NUL-terminated in place */
/* A key: spec and status (status->kind 0 when absent). Pointers into the message. */
int rrd_key(struct repl_rd *r, struct store_reg *spec, struct store_reg *status);

/* A cluster-constant hash of a key's registers (everything store_digest covers). */
uint64_t repl_key_hash(const struct store_reg *spec, const struct store_reg *status);

#endif
