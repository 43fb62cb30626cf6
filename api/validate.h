/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-kind defaulting and validation, as the API server applies them on create and update.
 * Errors are 422 Invalid with one cause per bad field (FieldValueRequired, FieldValueInvalid,
 * FieldValueNotSupported, FieldValueDuplicate, FieldValueForbidden, FieldValueTooLong), the
 * field path in Kubernetes notation (spec.containers[0].image).
 */
#ifndef SHOAL_API_VALIDATE_H
#define SHOAL_API_VALIDATE_H

#include <cJSON.h>
#include "lib/err.h"

/* Fill defaults in place (pod restartPolicy/dnsPolicy/terminationGracePeriodSeconds,
 * container terminationMessagePath/imagePullPolicy, service type/sessionAffinity,
 * deployment strategy/replicas/revisionHistoryLimit/progressDeadlineSeconds, job
 * completions/parallelism/backoffLimit, protocol TCP on ports, ...). */
void validate_default(const char *kind, cJSON *obj);
/* Validate a complete object on create. old == NULL on create, else the stored object on
 * update (immutable fields: e.g. pod spec mostly immutable, selector of apps/v1 workloads,
 * job template, service clusterIP). Returns 0 or -EINVAL with e filled (422). */
int validate_object(const char *kind, const cJSON *obj, const cJSON *old, struct err *e);

#endif
