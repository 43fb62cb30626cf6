/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes protobuf request bodies (Content-Type: application/vnd.kubernetes.protobuf), what
 * client-go's typed clients send (kubectl create namespace|configmap|secret|deployment|job,
 * kubectl run, kubectl expose): the magic "k8s\0", then a runtime.Unknown envelope
 * {typeMeta{apiVersion, kind}, raw, contentEncoding, contentType} whose raw bytes are the
 * kind's generated.proto message. Decoded, table-driven (api/schema.h), into the JSON the same
 * object has when a JSON client sends it: Go's omitempty for non-pointer scalars, meta/v1
 * Time as RFC 3339, IntOrString as number or string, Quantity as its string, maps as objects,
 * bytes as base64, inline members flattened. Unknown fields are skipped. Pure logic.
 */
#ifndef SHOAL_API_PROTOBUF_H
#define SHOAL_API_PROTOBUF_H

#include <stddef.h>
#include <cJSON.h>

#include "api/schema.h"
#include "lib/err.h"

#define PB_MAGIC "k8s\0"
#define PB_MAGIC_LEN 4

/*
 * Decode an enveloped body into a JSON object with apiVersion/kind from the envelope (or
 * gv/kind when the envelope has none). Errors: -EBADMSG (malformed, 400), -EOPNOTSUPP (a kind
 * without a table or an unsupported contentEncoding, 415).
 */
int pb_envelope_decode(const void *data, size_t len, const char *gv, const char *kind,
		       cJSON **ret, struct err *e);
/* Decode one message (no envelope) with table m into a JSON value. */
int pb_message_decode(const struct schema_msg *m, const void *data, size_t len, cJSON **ret,
		      struct err *e);

#endif
