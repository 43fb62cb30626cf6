/* SPDX-License-Identifier: Apache-2.0 */
/*
 * resource.Quantity strings as Kubernetes writes them: a signed decimal number followed by a
 * binary SI suffix (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m "" k M G T P E) or a decimal
 * exponent (e3, E-2). "100m", "1.5", "128Mi", "1G", "1e3". Pure logic.
 */
#ifndef SHOAL_API_QUANTITY_H
#define SHOAL_API_QUANTITY_H

#include <stdbool.h>
#include <stdint.h>

/* Value in thousandths, rounded up like Quantity.MilliValue() ("100m" -> 100, "2" -> 2000).
 * -EINVAL on syntax errors, -ERANGE when it does not fit in int64. */
int quantity_parse_milli(const char *s, int64_t *ret);
/* Value in units, rounded up like Quantity.Value() ("128Mi" -> 134217728, "100m" -> 1). */
int quantity_parse_bytes(const char *s, int64_t *ret);
/* Syntax check only (any magnitude). */
bool quantity_valid(const char *s);

#endif
