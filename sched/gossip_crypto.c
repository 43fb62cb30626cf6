// SPDX-License-Identifier: Apache-2.0
#include <string.h>
#include <sodium.h>

#include "lib/macro.h"
#include "sched/gossip_crypto.h"

#define GC_MAX_CLUSTER_NAME 253

const char *gossip_drop_name(enum gossip_drop d)
{
	static const char *const names[GOSSIP_DROP__MAX] = {
	    [GOSSIP_DROP_TRUNCATED] = "truncated", [GOSSIP_DROP_OVERSIZED] = "oversized",
	    [GOSSIP_DROP_VERSION] = "version",	   [GOSSIP_DROP_AUTH] = "auth",
	    [GOSSIP_DROP_REPLAY] = "replay",	   [GOSSIP_DROP_STALE] = "stale",
	    [GOSSIP_DROP_DECODE] = "decode",
	};
	return (unsigned)d < GOSSIP_DROP__MAX ? names[d] : "unknown";
}

/* ---------- keys ---------- */

int gossip_key_generate(uint8_t key[GOSSIP_KEY_BYTES])
{
	if (sodium_init() < 0)
		return -EIO;
	crypto_aead_xchacha20poly1305_ietf_keygen(key);
	return 0;
}

int gossip_key_parse(const char *text, uint8_t key[GOSSIP_KEY_BYTES])
{
	size_t n = 0;
	const char *end;

	if (!text)
		return -EINVAL;
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	end = text + strlen(text);
	while (end > text &&
	       (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if (end - text != GOSSIP_KEY_B64_LEN)
		return -EINVAL;
	if (sodium_base642bin(key, GOSSIP_KEY_BYTES, text, (size_t)(end - text), NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n != GOSSIP_KEY_BYTES)
		return -EINVAL;
	return 0;
}

void gossip_key_format(const uint8_t key[GOSSIP_KEY_BYTES], char out[GOSSIP_KEY_B64_LEN + 1])
{
	sodium_bin2base64(out, GOSSIP_KEY_B64_LEN + 1, key, GOSSIP_KEY_BYTES,
			  sodium_base64_VARIANT_ORIGINAL);
}

struct gc_key {
	uint8_t key[GOSSIP_KEY_BYTES];
	uint8_t hint[4];
};

struct gossip_keyring {
	struct gc_key keys[GOSSIP_KEYRING_MAX]; /* [0] is the primary */
	size_t n;
	uint64_t generation;
};

static void gc_key_set(struct gc_key *k, const uint8_t key[GOSSIP_KEY_BYTES])
{
	static const uint8_t ctx[] = "shoal-gossip-key-hint";
	uint8_t h[crypto_generichash_BYTES_MIN];

	memcpy(k->key, key, GOSSIP_KEY_BYTES);
	crypto_generichash(h, sizeof(h), ctx, sizeof(ctx) - 1, key, GOSSIP_KEY_BYTES);
	memcpy(k->hint, h, sizeof(k->hint));
}

int gossip_keyring_new(struct gossip_keyring **ret)
{
	struct gossip_keyring *kr;

	if (sodium_init() < 0)
		return -EIO;
	kr = calloc(1, sizeof(*kr));
	if (!kr)
		return -ENOMEM;
	kr->generation = 1;
	*ret = kr;
	return 0;
}

struct gossip_keyring *gossip_keyring_free(struct gossip_keyring *kr)
{
	if (!kr)
		return NULL;
	sodium_memzero(kr, sizeof(*kr));
	free(kr);
	return NULL;
}

static ssize_t keyring_find(const struct gossip_keyring *kr, const uint8_t key[GOSSIP_KEY_BYTES])
{
	for (size_t i = 0; i < kr->n; i++)
		if (sodium_memcmp(kr->keys[i].key, key, GOSSIP_KEY_BYTES) == 0)
			return (ssize_t)i;
	return -1;
}

int gossip_keyring_install(struct gossip_keyring *kr, const uint8_t key[GOSSIP_KEY_BYTES])
{
	if (keyring_find(kr, key) >= 0)
		return 0;
	if (kr->n == GOSSIP_KEYRING_MAX)
		return -ENOSPC;
	gc_key_set(&kr->keys[kr->n++], key);
	kr->generation++;
	return 1;
}

int gossip_keyring_use(struct gossip_keyring *kr, const uint8_t key[GOSSIP_KEY_BYTES])
{
	ssize_t i = keyring_find(kr, key);
	struct gc_key k;

	if (i < 0)
		return -ENOENT;
	if (i == 0)
		return 0;
	/* the old primary stays installed, right behind the new one */
	k = kr->keys[i];
	memmove(&kr->keys[1], &kr->keys[0], (size_t)i * sizeof(k));
	kr->keys[0] = k;
	sodium_memzero(&k, sizeof(k));
	kr->generation++;
	return 1;
}

int gossip_keyring_remove(struct gossip_keyring *kr, const uint8_t key[GOSSIP_KEY_BYTES])
{
	ssize_t i = keyring_find(kr, key);

	if (i < 0)
		return 0;
	if (i == 0)
		return -EBUSY;
	memmove(&kr->keys[i], &kr->keys[i + 1], (kr->n - (size_t)i - 1) * sizeof(kr->keys[0]));
	kr->n--;
	sodium_memzero(&kr->keys[kr->n], sizeof(kr->keys[0]));
	kr->generation++;
	return 1;
}

size_t gossip_keyring_count(const struct gossip_keyring *kr)
{
	return kr->n;
}

const uint8_t *gossip_keyring_key(const struct gossip_keyring *kr, size_t i)
{
	return i < kr->n ? kr->keys[i].key : NULL;
}

uint64_t gossip_keyring_generation(const struct gossip_keyring *kr)
{
	return kr->generation;
}

int gossip_keyring_format(const struct gossip_keyring *kr, char **ret)
{
	size_t cap = 2 + kr->n * (GOSSIP_KEY_B64_LEN + 8) + 2, off = 0;
	char *s = malloc(cap);

	if (!s)
		return -ENOMEM;
	s[off++] = '[';
	for (size_t i = 0; i < kr->n; i++) {
		char b64[GOSSIP_KEY_B64_LEN + 1];

		gossip_key_format(kr->keys[i].key, b64);
		off += (size_t)snprintf(s + off, cap - off, "%s\n  \"%s\"", i ? "," : "", b64);
		sodium_memzero(b64, sizeof(b64));
	}
	off += (size_t)snprintf(s + off, cap - off, "%s]\n", kr->n ? "\n" : "");
	*ret = s;
	return 0;
}

int gossip_keyring_parse(struct gossip_keyring *kr, const char *text, size_t len)
{
	_cleanup_json_ cJSON *doc = cJSON_ParseWithLength(text, len);
	struct gossip_keyring next = {0};
	const cJSON *it;
	int r = 0;

	if (!cJSON_IsArray(doc) || cJSON_GetArraySize(doc) == 0)
		return -EINVAL;
	cJSON_ArrayForEach(it, doc)
	{
		uint8_t key[GOSSIP_KEY_BYTES];

		if (!cJSON_IsString(it) || gossip_key_parse(it->valuestring, key) < 0) {
			r = -EINVAL;
			break;
		}
		r = gossip_keyring_install(&next, key);
		sodium_memzero(key, sizeof(key));
		if (r < 0)
			break;
	}
	if (r >= 0) {
		next.generation = kr->generation + 1;
		*kr = next;
		r = 0;
	}
	sodium_memzero(&next, sizeof(next));
	return r;
}

/* ---------- sealing ---------- */

struct gc_session {
	uint64_t session;
	uint64_t top;				/* highest counter accepted */
	uint64_t seen_ms;			/* last accepted, for eviction */
	uint64_t bits[GOSSIP_REPLAY_BITS / 64]; /* counter % BITS, for (top - BITS, top] */
};

struct gossip_crypto {
	struct gossip_keyring *kr;
	char cluster[GC_MAX_CLUSTER_NAME + 1];
	size_t cluster_len;
	uint64_t session, counter;
	uint64_t window_ms;
	struct gc_session *sessions; /* sorted by session */
	size_t nsessions, max_sessions;
	struct gossip_crypto_stats st;
};

int gossip_crypto_new(const struct gossip_crypto_opts *o, struct gossip_keyring *kr,
		      struct gossip_crypto **ret)
{
	struct gossip_crypto *c;
	size_t cl;

	if (!o->cluster_name || !kr)
		return -EINVAL;
	cl = strlen(o->cluster_name);
	if (cl == 0 || cl > GC_MAX_CLUSTER_NAME)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->kr = kr;
	memcpy(c->cluster, o->cluster_name, cl);
	c->cluster_len = cl;
	c->session = o->session;
	while (!c->session)
		randombytes_buf(&c->session, sizeof(c->session));
	c->window_ms = o->time_window_ms ?: 60000;
	c->max_sessions = o->max_sessions ?: 4096;
	c->sessions = calloc(c->max_sessions, sizeof(*c->sessions));
	if (!c->sessions) {
		free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

struct gossip_crypto *gossip_crypto_free(struct gossip_crypto *c)
{
	if (!c)
		return NULL;
	free(c->sessions);
	free(c);
	return NULL;
}

static size_t max_sealed(enum gossip_seal_kind kind)
{
	return kind == GOSSIP_SEAL_DGRAM ? GOSSIP_MAX_DGRAM : GOSSIP_MAX_FRAME;
}

static void le64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* associated data: the clear header, then the cluster name */
static size_t seal_ad(const struct gossip_crypto *c, const struct gossip_seal_hdr *h,
		      uint8_t ad[sizeof(*h) + GC_MAX_CLUSTER_NAME])
{
	memcpy(ad, h, sizeof(*h));
	memcpy(ad + sizeof(*h), c->cluster, c->cluster_len);
	return sizeof(*h) + c->cluster_len;
}

int gossip_seal(struct gossip_crypto *c, enum gossip_seal_kind kind, uint64_t now_ms,
		const void *in, size_t len, void *out, size_t out_cap)
{
	const size_t inner = sizeof(struct gossip_seal_inner), hl = sizeof(struct gossip_seal_hdr);
	uint8_t ad[hl + GC_MAX_CLUSTER_NAME], *o = out;
	struct gossip_seal_hdr h = {.version = GOSSIP_SEAL_VERSION, .kind = (uint8_t)kind};
	unsigned long long clen;
	size_t adlen, total = len + GOSSIP_SEAL_OVERHEAD;

	if (kind != GOSSIP_SEAL_DGRAM && kind != GOSSIP_SEAL_STREAM)
		return -EINVAL;
	if (total > max_sealed(kind) || total > out_cap)
		return -EMSGSIZE;
	if (c->kr->n == 0)
		return -ENOKEY;
	memcpy(h.key_hint, c->kr->keys[0].hint, sizeof(h.key_hint));
	randombytes_buf(h.nonce, sizeof(h.nonce));
	adlen = seal_ad(c, &h, ad);
	memcpy(o, &h, hl);
	le64_put(o + hl, c->session);
	le64_put(o + hl + 8, ++c->counter);
	le64_put(o + hl + 16, now_ms);
	if (o + hl + inner != (const uint8_t *)in)
		memmove(o + hl + inner, in, len);
	/* in place: libsodium allows the ciphertext over the message */
	crypto_aead_xchacha20poly1305_ietf_encrypt(o + hl, &clen, o + hl, inner + len, ad, adlen,
						   NULL, h.nonce, c->kr->keys[0].key);
	c->st.sealed++;
	c->st.bytes_sealed += total;
	return (int)total;
}

static struct gc_session *session_get(struct gossip_crypto *c, uint64_t id, bool create,
				      uint64_t now_ms)
{
	size_t lo = 0, hi = c->nsessions;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->sessions[mid].session == id)
			return &c->sessions[mid];
		if (c->sessions[mid].session < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!create)
		return NULL;
	if (c->nsessions == c->max_sessions) {
		/* forget the sender heard from least recently; the time window still bounds
		 * what can be replayed to us from it */
		size_t old = 0;
		for (size_t i = 1; i < c->nsessions; i++)
			if (c->sessions[i].seen_ms < c->sessions[old].seen_ms)
				old = i;
		memmove(&c->sessions[old], &c->sessions[old + 1],
			(c->nsessions - old - 1) * sizeof(*c->sessions));
		c->nsessions--;
		if (old < lo)
			lo--;
	}
	memmove(&c->sessions[lo + 1], &c->sessions[lo], (c->nsessions - lo) * sizeof(*c->sessions));
	c->nsessions++;
	memset(&c->sessions[lo], 0, sizeof(*c->sessions));
	c->sessions[lo].session = id;
	c->sessions[lo].seen_ms = now_ms;
	return &c->sessions[lo];
}

static bool bit_test(const struct gc_session *s, uint64_t ctr)
{
	uint64_t b = ctr % GOSSIP_REPLAY_BITS;
	return s->bits[b / 64] & (1ull << (b % 64));
}

static void bit_set(struct gc_session *s, uint64_t ctr)
{
	uint64_t b = ctr % GOSSIP_REPLAY_BITS;
	s->bits[b / 64] |= 1ull << (b % 64);
}

/* Would the counter be accepted? (no state change) */
static bool replay_ok(const struct gc_session *s, uint64_t ctr)
{
	if (!s)
		return true;
	if (ctr > s->top)
		return true;
	if (s->top - ctr >= GOSSIP_REPLAY_BITS)
		return false;
	return !bit_test(s, ctr);
}

static void replay_accept(struct gc_session *s, uint64_t ctr, uint64_t now_ms)
{
	if (ctr > s->top) {
		if (ctr - s->top >= GOSSIP_REPLAY_BITS)
			memset(s->bits, 0, sizeof(s->bits));
		else
			for (uint64_t k = s->top + 1; k < ctr; k++) {
				uint64_t b = k % GOSSIP_REPLAY_BITS;
				s->bits[b / 64] &= ~(1ull << (b % 64));
			}
		s->top = ctr;
	}
	bit_set(s, ctr);
	s->seen_ms = now_ms;
}

static int drop(struct gossip_crypto *c, enum gossip_drop why, enum gossip_drop *ret, int r)
{
	c->st.dropped[why]++;
	if (ret)
		*ret = why;
	return r;
}

int gossip_open(struct gossip_crypto *c, enum gossip_seal_kind kind, uint64_t now_ms,
		const void *in, size_t len, void *out, size_t out_cap, enum gossip_drop *why)
{
	const size_t inner = sizeof(struct gossip_seal_inner), hl = sizeof(struct gossip_seal_hdr);
	uint8_t ad[hl + GC_MAX_CLUSTER_NAME], *o = out;
	const uint8_t *p = in;
	struct gossip_seal_hdr h;
	unsigned long long mlen = 0;
	size_t adlen, first = SIZE_MAX, used = SIZE_MAX;
	uint64_t session, ctr, stamp;

	if (len < GOSSIP_SEAL_OVERHEAD)
		return drop(c, GOSSIP_DROP_TRUNCATED, why, -EBADMSG);
	if (len > max_sealed(kind) || out_cap < len - hl - GOSSIP_SEAL_TAG)
		return drop(c, GOSSIP_DROP_OVERSIZED, why, -EMSGSIZE);
	memcpy(&h, p, hl);
	if (h.version != GOSSIP_SEAL_VERSION || h.kind != kind || h.reserved[0] || h.reserved[1])
		return drop(c, GOSSIP_DROP_VERSION, why, -EBADMSG);
	adlen = seal_ad(c, &h, ad);
	/* the key the hint names first; then every other (hints can collide) */
	for (size_t i = 0; i < c->kr->n; i++)
		if (!memcmp(c->kr->keys[i].hint, h.key_hint, sizeof(h.key_hint))) {
			first = i;
			break;
		}
	for (size_t t = 0; t <= c->kr->n && used == SIZE_MAX; t++) {
		size_t i = t == 0 ? first : t - 1;
		if (i == SIZE_MAX || (t > 0 && i == first))
			continue;
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(o, &mlen, NULL, p + hl, len - hl, ad,
							       adlen, h.nonce,
							       c->kr->keys[i].key) == 0)
			used = i;
	}
	if (used == SIZE_MAX)
		return drop(c, GOSSIP_DROP_AUTH, why, -EBADMSG);
	session = le64_get(o);
	ctr = le64_get(o + 8);
	stamp = le64_get(o + 16);
	if ((stamp > now_ms ? stamp - now_ms : now_ms - stamp) > c->window_ms) {
		sodium_memzero(o, (size_t)mlen);
		return drop(c, GOSSIP_DROP_STALE, why, -ETIME);
	}
	struct gc_session *s = session_get(c, session, false, now_ms);
	if (ctr == 0 || !replay_ok(s, ctr)) {
		sodium_memzero(o, (size_t)mlen);
		return drop(c, GOSSIP_DROP_REPLAY, why, -EALREADY);
	}
	if (!s)
		s = session_get(c, session, true, now_ms);
	replay_accept(s, ctr, now_ms);
	memmove(o, o + inner, (size_t)mlen - inner);
	c->st.opened++;
	c->st.bytes_opened += len;
	if (used != 0)
		c->st.opened_secondary++;
	return (int)((size_t)mlen - inner);
}

void gossip_crypto_count_drop(struct gossip_crypto *c, enum gossip_drop why)
{
	if ((unsigned)why < GOSSIP_DROP__MAX)
		c->st.dropped[why]++;
}

void gossip_crypto_stats(const struct gossip_crypto *c, struct gossip_crypto_stats *ret)
{
	*ret = c->st;
}

uint64_t gossip_crypto_session(const struct gossip_crypto *c)
{
	return c->session;
}
