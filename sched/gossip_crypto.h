/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gossip security: a keyring of cluster keys and the seal/open of every datagram and stream
 * frame with XChaCha20-Poly1305 (IETF, libsodium).
 *
 * A sealed packet is a clear header (version, kind, key hint, 24-byte random nonce), then the
 * ciphertext of an inner header (sender session, counter, timestamp) and the payload, then the
 * 16-byte tag. The clear header and the cluster name are the associated data, so a packet of
 * another cluster, of another kind (a datagram replayed into a stream) or with an edited
 * header fails authentication. Replays: every sender numbers its packets within a random
 * session (one per process start); a receiver keeps, per session, the highest counter and a
 * bitmap of the GOSSIP_REPLAY_BITS before it, and refuses packets older than the window or
 * stamped outside +/- the time window (which bounds what a receiver must remember about
 * sessions it has forgotten or never seen).
 *
 * Opening tries the key the hint names first, then every other installed key, so a rotation
 * (install the new key everywhere, use it, remove the old one) never loses a packet.
 *
 * Pure logic: the clock comes in as a parameter; nonces come from libsodium's CSPRNG.
 * Not thread-safe; one gossip_crypto per daemon.
 */
#ifndef SHOAL_SCHED_GOSSIP_CRYPTO_H
#define SHOAL_SCHED_GOSSIP_CRYPTO_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GOSSIP_KEY_BYTES 32
#define GOSSIP_KEY_B64_LEN 44 /* standard base64 with padding, without the NUL */
#define GOSSIP_KEYRING_MAX 16
#define GOSSIP_SEAL_VERSION 1
#define GOSSIP_REPLAY_BITS 1024
/* largest datagram on the wire (sealed) and what is left for the plaintext */
#define GOSSIP_MAX_DGRAM 1400
/* largest stream frame on the wire (sealed) */
#define GOSSIP_MAX_FRAME (8u << 20)

enum gossip_seal_kind {
	GOSSIP_SEAL_DGRAM = 1,	/* UDP */
	GOSSIP_SEAL_STREAM = 2, /* one frame on a TCP connection */
};

/* Clear header of a sealed packet (authenticated, not encrypted). Frozen: version 1. */
struct gossip_seal_hdr {
	uint8_t version;
	uint8_t kind; /* enum gossip_seal_kind */
	uint8_t reserved[2];
	uint8_t key_hint[4]; /* the first bytes of a hash of the sealing key */
	uint8_t nonce[24];
};
static_assert(sizeof(struct gossip_seal_hdr) == 32, "gossip_seal_hdr is frozen");

/* Encrypted inner header, little-endian. Frozen: version 1. */
struct gossip_seal_inner {
	uint64_t session;  /* random per sender process */
	uint64_t counter;  /* per session, from 1 */
	uint64_t stamp_ms; /* sender's wall clock */
};
static_assert(sizeof(struct gossip_seal_inner) == 24, "gossip_seal_inner is frozen");

#define GOSSIP_SEAL_TAG 16
#define GOSSIP_SEAL_OVERHEAD                                                                       \
	(sizeof(struct gossip_seal_hdr) + sizeof(struct gossip_seal_inner) + GOSSIP_SEAL_TAG)
/* where the plaintext sits in a sealed packet: gossip_seal() seals in place, without copying,
 * when `in` is out + GOSSIP_SEAL_PLAIN_AT */
#define GOSSIP_SEAL_PLAIN_AT (sizeof(struct gossip_seal_hdr) + sizeof(struct gossip_seal_inner))
/* the largest datagram payload the membership protocol may build */
#define GOSSIP_MAX_DGRAM_PAYLOAD (GOSSIP_MAX_DGRAM - GOSSIP_SEAL_OVERHEAD)

/* Why a packet was dropped (counted, exported in /metrics). */
enum gossip_drop {
	GOSSIP_DROP_TRUNCATED, /* shorter than a sealed packet */
	GOSSIP_DROP_OVERSIZED, /* longer than the kind allows */
	GOSSIP_DROP_VERSION,   /* unknown seal version or kind */
	GOSSIP_DROP_AUTH,      /* no installed key opens it (wrong key, cluster, tampering) */
	GOSSIP_DROP_REPLAY,    /* counter already seen or older than the window */
	GOSSIP_DROP_STALE,     /* timestamp outside the time window */
	GOSSIP_DROP_DECODE,    /* opened, but the protocol could not decode it (set by callers) */
	GOSSIP_DROP__MAX,
};
const char *gossip_drop_name(enum gossip_drop d);

/* ---- keys ---- */

int gossip_key_generate(uint8_t key[GOSSIP_KEY_BYTES]);
/* Base64 (standard, padded) of exactly 32 bytes; surrounding whitespace is ignored. */
int gossip_key_parse(const char *text, uint8_t key[GOSSIP_KEY_BYTES]);
void gossip_key_format(const uint8_t key[GOSSIP_KEY_BYTES], char out[GOSSIP_KEY_B64_LEN + 1]);

struct gossip_keyring;

int gossip_keyring_new(struct gossip_keyring **ret);
struct gossip_keyring *gossip_keyring_free(struct gossip_keyring *kr);
/* 1 if added, 0 if already installed; the first key installed becomes the primary.
 * -ENOSPC past GOSSIP_KEYRING_MAX. */
int gossip_keyring_install(struct gossip_keyring *kr, const uint8_t key[GOSSIP_KEY_BYTES]);
/* Make an installed key the primary (the one that seals): 1 if changed, 0 if it already was,
 * -ENOENT if not installed. */
int gossip_keyring_use(struct gossip_keyring *kr, const uint8_t key[GOSSIP_KEY_BYTES]);
/* 1 if removed, 0 if not installed, -EBUSY for the primary. */
int gossip_keyring_remove(struct gossip_keyring *kr, const uint8_t key[GOSSIP_KEY_BYTES]);
size_t gossip_keyring_count(const struct gossip_keyring *kr);
/* Key i; 0 is the primary. NULL past the end. */
const uint8_t *gossip_keyring_key(const struct gossip_keyring *kr, size_t i);
/* Bumped on every change. */
uint64_t gossip_keyring_generation(const struct gossip_keyring *kr);
/* Serialized form (the keyring file): a JSON array of base64 keys, primary first. */
int gossip_keyring_format(const struct gossip_keyring *kr, char **ret);
/* Replace the keys with the parsed ones; -EINVAL (keyring unchanged) if malformed or empty. */
int gossip_keyring_parse(struct gossip_keyring *kr, const char *text, size_t len);

/* ---- sealing ---- */

struct gossip_crypto_opts {
	const char *cluster_name; /* associated data; required */
	uint64_t session;	  /* this sender's session (random per start; 0: drawn) */
	uint64_t time_window_ms;  /* accepted |now - stamp|; 0: 60000 */
	size_t max_sessions;	  /* remembered senders; 0: 4096 */
};

struct gossip_crypto_stats {
	uint64_t sealed, opened;
	uint64_t bytes_sealed, bytes_opened; /* on the wire */
	uint64_t opened_secondary;	     /* opened with a key other than the primary */
	uint64_t dropped[GOSSIP_DROP__MAX];
};

struct gossip_crypto;

/* kr is borrowed: the caller keeps it alive and may change it between calls. */
int gossip_crypto_new(const struct gossip_crypto_opts *o, struct gossip_keyring *kr,
		      struct gossip_crypto **ret);
struct gossip_crypto *gossip_crypto_free(struct gossip_crypto *c);

/* Seal len bytes into out (out_cap >= len + GOSSIP_SEAL_OVERHEAD); returns the sealed length,
 * -EMSGSIZE if it would exceed the kind's maximum or out_cap, -ENOKEY with no key. `in` is
 * either apart from out or exactly out + GOSSIP_SEAL_PLAIN_AT (sealed in place, no copy). */
int gossip_seal(struct gossip_crypto *c, enum gossip_seal_kind kind, uint64_t now_ms,
		const void *in, size_t len, void *out, size_t out_cap);
/*
 * Open a sealed packet of the given kind into out (out_cap >= len - GOSSIP_SEAL_OVERHEAD);
 * returns the plaintext length. On failure the packet is counted as dropped, *why (optional)
 * says why, and the return is -EBADMSG (version, truncated, auth), -EMSGSIZE (oversized),
 * -EALREADY (replay) or -ETIME (stale). Never reads past in + len.
 */
int gossip_open(struct gossip_crypto *c, enum gossip_seal_kind kind, uint64_t now_ms,
		const void *in, size_t len, void *out, size_t out_cap, enum gossip_drop *why);
/* Count a drop decided by the caller (GOSSIP_DROP_DECODE, or an oversized read). */
void gossip_crypto_count_drop(struct gossip_crypto *c, enum gossip_drop why);
void gossip_crypto_stats(const struct gossip_crypto *c, struct gossip_crypto_stats *ret);
uint64_t gossip_crypto_session(const struct gossip_crypto *c);

#endif
