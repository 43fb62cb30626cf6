/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between image.c (store, import) and image_pull.c (registry client). */
#ifndef SHOAL_DAEMON_IMAGE_INTERNAL_H
#define SHOAL_DAEMON_IMAGE_INTERNAL_H

#include <stddef.h>
#include <cJSON.h>
#include "daemon/image.h"
#include "daemon/image_ref.h"

struct image_store {
	char *dir;   /* <state_dir>/images */
	int lock_fd; /* images/.lock */
};

/* flock the store: LOCK_EX or LOCK_SH; unlock with image_unlock. */
int image_lock(struct image_store *s, int how);
void image_unlock(struct image_store *s);

/* "sha256:<hex>" of a file or a buffer. */
int image_sha256_file(const char *path, char out[IMAGE_DIGEST_LEN + 1]);
void image_sha256_buf(const void *buf, size_t len, char out[IMAGE_DIGEST_LEN + 1]);

/* Unpack a layer blob (tar, gzip/zstd/... detected) into layers/<hex> unless already there.
 * The blob's digest must already be verified. */
int image_layer_unpack(struct image_store *s, const char *blob, const char *digest,
		       struct err *e);
/* Store a small blob (manifest/config) under blobs/sha256/. */
int image_blob_put(struct image_store *s, const char *digest, const void *buf, size_t len);
/* Record name -> image (lock held). config is the full OCI image config; layers an array of
 * digests, bottom first. Takes no ownership. */
int image_index_add(struct image_store *s, const char *name, const char *manifest_digest,
		    const cJSON *config, const cJSON *layers, double size);
/* Private scratch directory under images/tmp (caller removes it with image_rm_rf). */
int image_tmpdir(struct image_store *s, char **ret);
int image_rm_rf(const char *path);
/* Pick the linux/amd64 manifest descriptor from an index / manifest list. */
const cJSON *image_index_pick_platform(const cJSON *index);

#define IMAGE_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define IMAGE_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define IMAGE_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMAGE_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

#endif
