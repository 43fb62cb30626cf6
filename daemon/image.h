/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's image store under <state_dir>/images:
 *   index.json            name -> {digest (manifest), config (OCI image config), layers}
 *   blobs/sha256/<hex>    manifests and configs
 *   layers/<hex>/         each layer unpacked once (whiteouts converted for overlayfs),
 *                         <hex> is the layer blob's digest; shared by every image using it
 * Imports OCI image layouts (directory or tar) and docker-save archives, pulls from OCI
 * distribution registries. Digests are verified before anything is unpacked. Several
 * processes may use one store: every change holds an exclusive flock on images/.lock.
 */
#ifndef SHOAL_DAEMON_IMAGE_H
#define SHOAL_DAEMON_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <cJSON.h>
#include "lib/err.h"

struct image_store;

struct image_pull_opts {
	bool plain_http;          /* http:// instead of https:// */
	const char *ca_file;      /* extra CA bundle for https */
	bool insecure_skip_verify;
	const char *username;     /* optional credentials (Basic, or for the token service) */
	const char *password;
	long timeout_sec;         /* whole transfer, per request; 0: 300 */
	long connect_timeout_ms;  /* name resolution and connect, per request; 0: 15 s */
};

int image_store_open(const char *state_dir, struct image_store **ret);
struct image_store *image_store_free(struct image_store *s);

/*
 * Import from path: an OCI layout directory, a tar of one (optionally compressed), or a
 * docker-save archive. name (optional) names images the archive does not name itself, or
 * gives the repository for a bare tag ("latest"). *ret_names (optional): array of the
 * canonical names imported.
 */
int image_store_import(struct image_store *s, const char *path, const char *name,
		       cJSON **ret_names, struct err *e);
/* Pull ref from its registry; *ret_name (optional) the canonical name stored. */
int image_store_pull(struct image_store *s, const char *ref, const struct image_pull_opts *o,
		     char **ret_name, struct err *e);

/*
 * Look up an image by reference ("busybox" finds docker.io/library/busybox:latest; name@digest
 * matches the manifest digest). *ret is a copy of the record:
 *   {"name","digest","config":{OCI image config},"layers":["sha256:.."],"size":N}
 * -ENOENT (reason ErrImageNeverPull... left to the caller) if absent.
 */
int image_store_get(struct image_store *s, const char *ref, cJSON **ret, struct err *e);
/* Array of records (without "config"). */
int image_store_list(struct image_store *s, cJSON **ret);
/*
 * The list again only if the index changed since *stamp (0 at first): 1 and *ret set (and
 * *stamp updated), 0 and *ret NULL when unchanged, -EAGAIN when a change holds the store's lock
 * now (never waits for it: callers on an event loop try again later).
 */
int image_store_list_changed(struct image_store *s, uint64_t *stamp, cJSON **ret);
/* Remove a name; layers no other image uses are deleted. The caller makes sure no container
 * still uses the image. */
int image_store_remove(struct image_store *s, const char *ref, struct err *e);

/* overlayfs lowerdir= value for an image record (topmost layer first). */
int image_store_lowerdir(struct image_store *s, const cJSON *image, char **ret);
/* Directory of one unpacked layer. */
int image_store_layer_path(struct image_store *s, const char *digest, char **ret);

#endif
