// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: what a gossip node does with bytes from the network (sched/gossip_crypto.h
 * and the membership codec behind it). Random bytes almost never authenticate, so the input is
 * a script of operations on two nodes sharing a key: open raw bytes as a datagram or a stream
 * frame, seal fuzzer bytes and open them (at a fuzzer-chosen clock skew), replay an earlier
 * packet, flip or cut a byte of one, rotate keys. Whatever opens goes through the decoder.
 * Invariants: nothing crashes, a replay never opens twice, a changed packet never opens.
 */
#include <stdint.h>
#include <string.h>

#include "sched/gossip_crypto.h"

#define NOW 1700000000000ull
#define SAVED 8

static struct gossip_keyring *kra, *krb;
static struct gossip_crypto *ca, *cb;
static uint8_t saved[SAVED][GOSSIP_MAX_DGRAM];
static size_t saved_len[SAVED];
static bool saved_opened[SAVED];

static void decode(const uint8_t *buf, size_t len)
{
	/* the membership codec's decoder runs here once it exists on this branch */
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < len; i++)
		sink ^= buf[i];
	(void)sink;
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
