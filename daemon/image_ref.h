/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references as users write them ("busybox", "ghcr.io/a/b:v1", "x@sha256:..."), normalised
 * the way docker does: docker.io and library/ defaults, "latest" when neither tag nor digest.
 * Pure string logic.
 */
#ifndef SHOAL_DAEMON_IMAGE_REF_H
#define SHOAL_DAEMON_IMAGE_REF_H

#include <stdbool.h>
#include <stddef.h>
#include "lib/err.h"

#define IMAGE_DIGEST_LEN 71 /* "sha256:" + 64 hex */

struct image_ref {
	char registry[256];   /* docker.io, localhost:5000 */
	char repository[256]; /* library/busybox */
	char tag[129];        /* "" when only a digest was given */
	char digest[IMAGE_DIGEST_LEN + 1]; /* "" or sha256:<64 hex> */
};

/* Parse and normalise. -EINVAL with reason InvalidImageName on bad input. */
int image_ref_parse(const char *s, struct image_ref *ret, struct err *e);
/* Canonical name: registry/repository[:tag][@digest]. -ENOSPC if buf is too small. */
int image_ref_format(const struct image_ref *r, char *buf, size_t len);
/* Host to talk to for the registry API (docker.io -> registry-1.docker.io). */
const char *image_ref_api_host(const struct image_ref *r);
/* "sha256:<64 lowercase hex>" */
bool image_digest_valid(const char *d);

#endif
