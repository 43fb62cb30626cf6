/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The field tables of the served kinds: one table per Kubernetes message (k8s.io/api core/v1,
 * apps/v1, batch/v1, autoscaling/v1 and apimachinery meta/v1), each field with its protobuf
 * number, JSON name, value kind and nested table. The protobuf decoder (api/protobuf.h) and
 * the unknown-field check of fieldValidation (schema_fields_check) read the same tables.
 */
#ifndef SHOAL_API_SCHEMA_H
#define SHOAL_API_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

enum schema_kind {
	PB_STRING,
	PB_BOOL,
	PB_INT32,
	PB_INT64,
	PB_DOUBLE,
	PB_BYTES, /* JSON: base64 */
	PB_MSG,   /* nested table (msg) */
};

enum schema_flags {
	PB_F_REPEATED = 1 << 0, /* JSON array */
	PB_F_MAP = 1 << 1,      /* JSON object string -> value of `kind` */
	PB_F_OMITZERO = 1 << 2, /* Go `json:",omitempty"` non-pointer scalar: zero is not emitted */
	PB_F_INLINE = 1 << 3,   /* Go embedded `json:",inline"`: fields flattened into the parent */
};

/* Messages whose JSON form is not an object of their fields. */
enum schema_special {
	PB_SPECIAL_NONE,
	PB_SPECIAL_TIME,        /* meta/v1 Time {seconds, nanos} -> "2006-01-02T15:04:05Z" */
	PB_SPECIAL_MICROTIME,   /* -> "2006-01-02T15:04:05.000000Z" */
	PB_SPECIAL_DURATION,    /* meta/v1 Duration {duration ns} -> "1h2m3s" */
	PB_SPECIAL_INTORSTRING, /* {type, intVal, strVal} -> number or string */
	PB_SPECIAL_QUANTITY,    /* {string} -> string */
	PB_SPECIAL_RAWJSON,     /* FieldsV1 / RawExtension {raw bytes} -> the embedded JSON */
};

struct schema_msg;

struct schema_field {
	uint32_t num;
	const char *json;
	uint8_t kind;  /* enum schema_kind (value kind for maps) */
	uint8_t flags; /* enum schema_flags */
	const struct schema_msg *msg; /* PB_MSG */
};

struct schema_msg {
	const char *name;
	uint8_t special; /* enum schema_special */
	size_t nfields;
	const struct schema_field *fields;
};

/* The table of a kind ("v1", "Pod"; "apps/v1", "Deployment"; "autoscaling/v1", "Scale";
 * "meta.k8s.io/v1" or "v1", "DeleteOptions"), NULL if none. */
const struct schema_msg *schema_find(const char *group_version, const char *kind);
/* Field by protobuf number / JSON name (inline members are searched too). */
const struct schema_field *schema_field_by_num(const struct schema_msg *m, uint32_t num);
const struct schema_field *schema_field_by_json(const struct schema_msg *m, const char *name);

enum schema_check_mode { SCHEMA_IGNORE, SCHEMA_WARN, SCHEMA_STRICT };

/*
 * Walk obj against m (top-level apiVersion/kind allowed): unknown fields are removed from obj
 * and, like duplicate fields, reported as Kubernetes words them ("unknown field \"spec.foo\"",
 * "duplicate field \"metadata.name\""), each a NUL-terminated string in *ret_msgs
 * (NULL-terminated array; caller frees with schema_msgs_free). Maps and free-form fields
 * accept any key. Returns the number of problems found, or -ENOMEM.
 */
int schema_fields_check(const struct schema_msg *m, cJSON *obj, char ***ret_msgs);
char **schema_msgs_free(char **msgs);

#endif
