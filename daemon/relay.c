// SPDX-License-Identifier: Apache-2.0
/* Relaying pod I/O between nodes: endpoints from gossip metadata, credentials from the keyring. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "api/relay.h"
#include "daemon/gossip.h"
#include "daemon/relay.h"
#include "lib/json.h"
#include "lib/util.h"
#include "sched/gossip_crypto.h"
#include "sched/members.h"

#define CRED_CONTEXT "shoal relay credential v1"
#define MAC_B64_LEN 43 /* base64url of 32 bytes, no padding */

static_assert(RELAY_PIN_BYTES == API_RELAY_PIN_BYTES, "one pin size");

static void cred_mac(const uint8_t key[32], const char *from, const char *to, uint8_t mac[32])
{
	uint8_t k[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;

	/* never use the gossip encryption key itself: derive one for this purpose */
	crypto_auth_hmacsha256(k, (const uint8_t *)CRED_CONTEXT, strlen(CRED_CONTEXT), key);
	crypto_auth_hmacsha256_init(&st, k, sizeof(k));
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)from, strlen(from) + 1);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)to, strlen(to));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(k, sizeof(k));
}

int relay_cred_make(const uint8_t key[32], const char *from, const char *to, char *out, size_t len)
{
	uint8_t mac[32];
	char b64[MAC_B64_LEN + 1];
	int n;

	if (sodium_init() < 0)
		return -EIO;
	cred_mac(key, from, to, mac);
	sodium_bin2base64(b64, sizeof(b64), mac, sizeof(mac),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	n = snprintf(out, len, RELAY_CRED_PREFIX "%s.%s", b64, from);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int relay_cred_check(const uint8_t (*keys)[32], size_t nkeys, const char *self, const char *token,
		     char *node, size_t len)
{
	const char *p, *from;
	uint8_t want[32], got[32];
	size_t got_len = 0;

	if (!token || strncmp(token, RELAY_CRED_PREFIX, strlen(RELAY_CRED_PREFIX)))
		return -EACCES;
	p = token + strlen(RELAY_CRED_PREFIX);
	from = strchr(p, '.');
	if (!from || from - p != MAC_B64_LEN || !from[1] || strlen(from + 1) >= len)
		return -EACCES;
	from++;
	if (sodium_init() < 0 ||
	    sodium_base642bin(got, sizeof(got), p, MAC_B64_LEN, NULL, &got_len, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) < 0 ||
	    got_len != sizeof(got))
		return -EACCES;
	for (size_t i = 0; i < nkeys; i++) {
		cred_mac(keys[i], from, self, want);
		if (sodium_memcmp(want, got, sizeof(got)) == 0) {
			strcpy(node, from);
			return 0;
		}
	}
	return -EACCES;
}

/* "IP:PORT" / "[IP6]:PORT" -> host without brackets */
static int addr_host(const char *addr, char *host, size_t len)
{
	const char *end;

	if (addr[0] == '[') {
		end = strchr(addr, ']');
		addr++;
	} else {
		end = strrchr(addr, ':');
	}
	if (!end || (size_t)(end - addr) >= len || end == addr)
		return -EINVAL;
	memcpy(host, addr, end - addr);
	host[end - addr] = 0;
	return 0;
}

int relay_member_endpoint(const char *meta_json, const char *gossip_addr, char *addr, size_t len,
			  uint8_t pin[RELAY_PIN_BYTES])
{
	_cleanup_json_ cJSON *m = NULL;
	const char *api, *pin_b64, *port;
	char host[256];
	struct in6_addr a6;
	size_t pin_len = 0;
	int n;

	if (strempty(meta_json))
		return -ENOENT;
	m = cJSON_Parse(meta_json);
	if (!cJSON_IsObject(m))
		return -EINVAL;
	api = json_str(m, "api", NULL);
	pin_b64 = json_str(m, "apiPin", NULL);
	if (!api)
		return -ENOENT;
	if (!pin_b64 ||
	    sodium_base642bin(pin, RELAY_PIN_BYTES, pin_b64, strlen(pin_b64), NULL, &pin_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) < 0 ||
	    pin_len != RELAY_PIN_BYTES)
		return -EINVAL;
	if (api[0] != ':') {
		/* a full address: as published */
		if (addr_host(api, host, sizeof(host)) < 0)
			return -EINVAL;
		n = snprintf(addr, len, "%s", api);
		return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
	}
	/* ":port": the API listens on every address; use the one gossip reaches */
	port = api + 1;
	if (!*port || strspn(port, "0123456789") != strlen(port) || strempty(gossip_addr) ||
	    addr_host(gossip_addr, host, sizeof(host)) < 0)
		return -EINVAL;
	n = inet_pton(AF_INET6, host, &a6) == 1 ? snprintf(addr, len, "[%s]:%s", host, port)
						: snprintf(addr, len, "%s:%s", host, port);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int relay_meta_add(cJSON *meta, const char *listen, const uint8_t pin[RELAY_PIN_BYTES])
{
	char host[256],
	    b64[sodium_base64_ENCODED_LEN(RELAY_PIN_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	const char *api = listen;

	if (sodium_init() < 0)
		return -EIO;
	if (addr_host(listen, host, sizeof(host)) < 0)
		return -EINVAL;
	/* a wildcard listener is reached at the gossip address: publish only the port */
	if (streq(host, "0.0.0.0") || streq(host, "::"))
		api = strrchr(listen, ':');
	sodium_bin2base64(b64, sizeof(b64), pin, RELAY_PIN_BYTES, sodium_base64_VARIANT_ORIGINAL);
	if (!cJSON_AddStringToObject(meta, "api", api) ||
	    !cJSON_AddStringToObject(meta, "apiPin", b64))
		return -ENOMEM;
	return 0;
}

/* ---------- the daemon's glue ---------- */

struct relay {
	struct api_server *api;
	struct members *members;
	struct gossip *gossip;
};

static int relay_resolve(void *ud, const char *node, struct api_relay_target *t, struct err *e)
{
	struct relay *rl = ud;
	const struct gossip_keyring *kr = gossip_get_keyring(rl->gossip);
	const struct members_info *mi = members_view_find(rl->members, node);
	int r;

	if (!mi)
		return err_set(e, EHOSTUNREACH, 503, "ServiceUnavailable",
			       "node %s is not a member of this cluster", node);
	if (mi->state == MEMBERS_DEAD || mi->state == MEMBERS_LEFT)
		return err_set(e, EHOSTUNREACH, 503, "ServiceUnavailable",
			       "node %s is unreachable: gossip reports it %s", node,
			       members_state_name(mi->state));
	r = relay_member_endpoint(mi->meta, mi->address, t->addr, sizeof(t->addr), t->pin);
	if (r == -ENOENT)
		return err_set(e, EHOSTUNREACH, 503, "ServiceUnavailable",
			       "node %s accepts no relayed requests: its API listens on loopback "
			       "only (start it with a routable --api-listen)",
			       node);
	if (r < 0)
		return err_set(e, -r, 503, "ServiceUnavailable",
			       "node %s published a malformed API endpoint in gossip", node);
	if (!kr || gossip_keyring_count(kr) == 0)
		return err_set(e, ENOKEY, 503, "ServiceUnavailable",
			       "no cluster key to relay with");
	r = relay_cred_make(gossip_keyring_key(kr, 0), members_self(rl->members), node, t->token,
			    sizeof(t->token));
	if (r < 0)
		return err_set(e, -r, 500, "InternalError", "cannot make a node credential");
	return 0;
}

static int relay_authenticate(void *ud, const char *token, char *node, size_t len)
{
	struct relay *rl = ud;
	const struct gossip_keyring *kr = gossip_get_keyring(rl->gossip);
	uint8_t keys[GOSSIP_KEYRING_MAX][32];
	size_t n = kr ? gossip_keyring_count(kr) : 0;
	int r;

	if (n > GOSSIP_KEYRING_MAX)
		n = GOSSIP_KEYRING_MAX;
	for (size_t i = 0; i < n; i++)
		memcpy(keys[i], gossip_keyring_key(kr, i), 32);
	r = relay_cred_check((const uint8_t(*)[32])keys, n, members_self(rl->members), token, node,
			     len);
	sodium_memzero(keys, sizeof(keys));
	return r;
}

int relay_new(struct api_server *api, struct members *m, struct gossip *g, struct relay **ret)
{
	struct relay *rl = calloc(1, sizeof(*rl));
	struct api_relay_ops ops = {
	    .resolve = relay_resolve,
	    .authenticate = relay_authenticate,
	};
	int r;

	if (!rl)
		return -ENOMEM;
	rl->api = api;
	rl->members = m;
	rl->gossip = g;
	ops.ud = rl;
	r = api_server_set_relay(api, &ops);
	if (r < 0) {
		free(rl);
		return r;
	}
	*ret = rl;
	return 0;
}

struct relay *relay_free(struct relay *rl)
{
	if (!rl)
		return NULL;
	api_server_set_relay(rl->api, NULL);
	free(rl);
	return NULL;
}
