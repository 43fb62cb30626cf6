// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: what a gossip node does with bytes from the network (sched/gossip_crypto.h
 * and the membership codec behind it). Random bytes almost never authenticate, so the input is
 * a script of operations on two nodes sharing a key: open raw bytes as a datagram or a stream
 * frame, seal fuzzer bytes and open them (at a fuzzer-chosen clock skew), replay an earlier
 * packet, flip or cut a byte of one, rotate keys. Whatever opens goes through the decoder.
 * Invariants: nothing crashes, a replay never opens twice, a changed packet never opens.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched/gossip_crypto.h"
#include "sched/swim.h"
#include "sched/swim_wire.h"

#define NOW 1700000000000ull
#define SAVED 8

static struct gossip_keyring *kra, *krb;
static struct gossip_crypto *ca, *cb;
static uint8_t saved[SAVED][GOSSIP_MAX_DGRAM];
static size_t saved_len[SAVED];
static bool saved_opened[SAVED];

static struct swim *sw;
static uint64_t clock_ms;

static uint64_t env_now(void *ud)
{
	return clock_ms;
}

static uint32_t env_rand(void *ud)
{
	return 4; /* chosen by fair dice roll: the run must be reproducible */
}

static int env_send(void *ud, const struct swim_addr *to, const void *buf, size_t len)
{
	return 0;
}

static int env_stream(void *ud, const struct swim_addr *to, const void *req, size_t len,
		      uint64_t token)
{
	return -ECONNREFUSED;
}

static void env_change(void *ud, const struct swim_member *m)
{
}

/* What opened goes through the codec, then into a node's state machine as a datagram and as
 * a stream request (the daemon's two paths). */
static void decode(const uint8_t *buf, size_t len)
{
	static const struct swim_addr from = {
	    .family = SWIM_AF_INET, .port = 7946, .ip = {10, 0, 0, 2}};
	static uint8_t framed[GOSSIP_MAX_FRAME > 65536 ? 65536 + 64 : GOSSIP_MAX_FRAME];
	struct swim_msg m;
	size_t off = sizeof(struct swim_wire_hdr);
	void *reply = NULL;
	size_t rlen = 0;

	/* without our header the codec stops at once: give the fuzzer the message bodies */
	if (swim_wire_check(buf, len) != 0 && len + 4 <= sizeof(framed)) {
		framed[0] = SWIM_WIRE_MAGIC;
		framed[1] = SWIM_WIRE_VERSION;
		framed[2] = framed[3] = 0;
		memcpy(framed + 4, buf, len);
		buf = framed;
		len += 4;
	}
	if (swim_wire_check(buf, len) == 0)
		for (int k = 1; k == 1 || k == -ENOMSG;) {
			size_t before = off;
			k = swim_wire_next(buf, len, &off, &m);
			if (k != 0 && (off <= before || off > len) && k != -EBADMSG)
				__builtin_trap(); /* the codec must move forward, within the packet
						   */
		}
	swim_recv_udp(sw, &from, buf, len);
	clock_ms += 100;
	swim_tick(sw);
	if (swim_handle_stream(sw, &from, buf, len, &reply, &rlen) == 0)
		free(reply);
}

static void setup(void)
{
	struct gossip_crypto_opts o = {.cluster_name = "fuzz", .max_sessions = 4};
	uint8_t k[GOSSIP_KEY_BYTES];

	gossip_crypto_free(ca);
	gossip_crypto_free(cb);
	gossip_keyring_free(kra);
	gossip_keyring_free(krb);
	memset(k, 0x42, sizeof(k));
	if (gossip_keyring_new(&kra) < 0 || gossip_keyring_new(&krb) < 0)
		__builtin_trap();
	gossip_keyring_install(kra, k);
	gossip_keyring_install(krb, k);
	o.session = 1;
	if (gossip_crypto_new(&o, kra, &ca) < 0)
		__builtin_trap();
	o.session = 2;
	if (gossip_crypto_new(&o, krb, &cb) < 0)
		__builtin_trap();
	memset(saved_len, 0, sizeof(saved_len));
	memset(saved_opened, 0, sizeof(saved_opened));

	static const struct swim_env env = {.now_ms = env_now,
					    .rand32 = env_rand,
					    .send_udp = env_send,
					    .stream = env_stream,
					    .on_change = env_change};
	struct swim_config cfg = swim_config_default();
	struct swim_addr self = {.family = SWIM_AF_INET, .port = 7946, .ip = {10, 0, 0, 1}};
	static unsigned runs;

	/* a fresh state machine now and then: making one per input would triple the cost, and
	 * one kept forever would grow with every member the fuzzer invents */
	if (sw && ++runs % 1000)
		return;
	swim_free(sw);
	clock_ms = 1000;
	cfg.max_dgram = GOSSIP_MAX_DGRAM_PAYLOAD;
	if (swim_new(&cfg, &env, "fuzz-node", 1, &self, 0, &sw) < 0)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[GOSSIP_MAX_FRAME > 65536 ? 65536 + 64 : GOSSIP_MAX_FRAME];
	size_t nsaved = 0;

	setup();
	while (size >= 3) {
		uint8_t op = data[0];
		size_t len = (size_t)data[1] | ((size_t)data[2] << 8);
		const uint8_t *arg;
		int r;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		arg = data;
		data += len;
		size -= len;
		switch (op % 7) {
		case 0: /* raw bytes as a datagram */
		case 1: /* ... or as a stream frame */
			r = gossip_open(cb, op % 7 ? GOSSIP_SEAL_STREAM : GOSSIP_SEAL_DGRAM, NOW,
					arg, len, out, sizeof(out), NULL);
			if (r >= 0)
				decode(out, (size_t)r);
			break;
		case 2: { /* seal, keep, open at a skewed clock */
			size_t slot = nsaved++ % SAVED;
			int64_t skew = len ? ((int64_t)(int8_t)arg[0]) * 1000 : 0;
			r = gossip_seal(ca, GOSSIP_SEAL_DGRAM, NOW, arg, len, saved[slot],
					sizeof(saved[slot]));
			if (r < 0) {
				saved_len[slot] = 0;
				break;
			}
			saved_len[slot] = (size_t)r;
			r = gossip_open(cb, GOSSIP_SEAL_DGRAM, (uint64_t)((int64_t)NOW + skew),
					saved[slot], saved_len[slot], out, sizeof(out), NULL);
			saved_opened[slot] = r >= 0;
			if (r >= 0) {
				if ((size_t)r != len || memcmp(out, arg, len))
					__builtin_trap();
				decode(out, (size_t)r);
			}
			break;
		}
		case 3: { /* replay a kept packet */
			size_t slot = len ? arg[0] % SAVED : 0;
			if (!saved_len[slot])
				break;
			r = gossip_open(cb, GOSSIP_SEAL_DGRAM, NOW, saved[slot], saved_len[slot],
					out, sizeof(out), NULL);
			if (r >= 0 && saved_opened[slot])
				__builtin_trap();
			if (r >= 0)
				saved_opened[slot] = true;
			break;
		}
		case 4: { /* change one byte of a kept packet, or cut it */
			uint8_t copy[GOSSIP_MAX_DGRAM];
			size_t slot, at, n;
			if (len < 3)
				break;
			slot = arg[0] % SAVED;
			n = saved_len[slot];
			if (!n)
				break;
			memcpy(copy, saved[slot], n);
			at = ((size_t)arg[1] << 8 | arg[2]) % n;
			if (len > 3 && arg[3] & 1)
				n = at; /* truncated */
			else
				copy[at] ^= (uint8_t)(len > 3 ? arg[3] | 1 : 1);
			if (gossip_open(cb, GOSSIP_SEAL_DGRAM, NOW, copy, n, out, sizeof(out),
					NULL) >= 0)
				__builtin_trap();
			break;
		}
		case 5: { /* rotation step on both sides: install/use/remove a derived key */
			uint8_t k[GOSSIP_KEY_BYTES];
			if (!len)
				break;
			memset(k, arg[0] & 3, sizeof(k));
			switch ((arg[0] >> 2) % 3) {
			case 0:
				gossip_keyring_install(kra, k);
				gossip_keyring_install(krb, k);
				break;
			case 1:
				gossip_keyring_use(kra, k);
				break;
			case 2:
				gossip_keyring_remove(kra, k);
				gossip_keyring_remove(krb, k);
				break;
			}
			break;
		}
		case 6: { /* a stream frame sealed and opened */
			r = gossip_seal(ca, GOSSIP_SEAL_STREAM, NOW, arg, len, out, sizeof(out));
			if (r >= 0) {
				static uint8_t plain[sizeof(out)];
				int m = gossip_open(cb, GOSSIP_SEAL_STREAM, NOW, out, (size_t)r,
						    plain, sizeof(plain), NULL);
				if (m >= 0)
					decode(plain, (size_t)m);
			}
			break;
		}
		}
	}
	return 0;
}
