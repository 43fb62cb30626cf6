/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gossip membership over the API (api/gossip.c), node-local like the image store:
 *   GET    /apis/shoal.io/v1/members            MemberList {"items":[{name,address,state,...}]}
 *   POST   /apis/shoal.io/v1/members/leave      leave the cluster gracefully
 *   GET    /apis/shoal.io/v1/gossip/keys        the keyring of every live member, per key
 *   POST   /apis/shoal.io/v1/gossip/keys        {"op":"install|use|remove","key":K}
 *   DELETE /apis/shoal.io/v1/gossip/keys/KEY    remove (KEY percent-encoded)
 * Keyring operations run here and on every live member, then answer. The daemon hands its
 * gossip handle over with api_server_set_gossip(); without one these routes answer 503.
 */
#ifndef SHOAL_API_GOSSIP_H
#define SHOAL_API_GOSSIP_H

#include <cJSON.h>
#include "lib/err.h"

struct api_server;

/* Completion of an asynchronous operation: r < 0 with e (may be NULL) or a result. */
typedef void (*api_gossip_done_fn)(void *ctx, int r, cJSON *result, const struct err *e);

struct api_gossip {
	void *ud;
	int (*members)(void *ud, cJSON **ret);
	int (*leave)(void *ud, api_gossip_done_fn done, void *ctx);
	/* op: "list", "install", "use", "remove"; a synchronous failure sets e and returns < 0
	 * (done is then not called) */
	int (*keys)(void *ud, const char *op, const char *key, api_gossip_done_fn done, void *ctx,
		    struct err *e);
};

/* Copy g. The gossip side must complete (or cancel) every pending operation before
 * api_server_free(). */
int api_server_set_gossip(struct api_server *srv, const struct api_gossip *g);

#endif
