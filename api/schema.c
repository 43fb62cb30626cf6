// SPDX-License-Identifier: Apache-2.0
/*
 * Field tables of the served kinds (api/schema-k8s.inc) and the unknown/duplicate field check
 * behind fieldValidation=Strict|Warn|Ignore.
 */
#include <string.h>

#include "api/schema.h"
#include "lib/macro.h"
#include "lib/util.h"

#define CHECK_MAX_DEPTH 64
#define CHECK_MAX_MSGS 64

/* Messages with their own JSON form have no field table. */
#define SCHEMA_SPECIAL(id, nm, sp) static const struct schema_msg id _unused_ = { nm, sp, 0, NULL }
SCHEMA_SPECIAL(pb_special_time, "Time", PB_SPECIAL_TIME);
SCHEMA_SPECIAL(pb_special_microtime, "MicroTime", PB_SPECIAL_MICROTIME);
SCHEMA_SPECIAL(pb_special_duration, "Duration", PB_SPECIAL_DURATION);
SCHEMA_SPECIAL(pb_special_intorstring, "IntOrString", PB_SPECIAL_INTORSTRING);
SCHEMA_SPECIAL(pb_special_quantity, "Quantity", PB_SPECIAL_QUANTITY);
SCHEMA_SPECIAL(pb_special_rawjson, "RawJSON", PB_SPECIAL_RAWJSON);

#define SCHEMA_MSG(id, nm)                                                                         \
	static const struct schema_msg id = { nm, PB_SPECIAL_NONE, ARRAY_SIZE(id##_fields),         \
					      id##_fields }

#include "api/schema-k8s.inc"

static const struct {
	const char *gv, *kind;
	const struct schema_msg *msg;
} kinds[] = {
	{ "v1", "Namespace", &pb_core_v1_Namespace },
	{ "v1", "Pod", &pb_core_v1_Pod },
	{ "v1", "Service", &pb_core_v1_Service },
	{ "v1", "ConfigMap", &pb_core_v1_ConfigMap },
	{ "v1", "Secret", &pb_core_v1_Secret },
	{ "v1", "Node", &pb_core_v1_Node },
	{ "v1", "Event", &pb_core_v1_Event },
	{ "v1", "Endpoints", &pb_core_v1_Endpoints },
	{ "apps/v1", "Deployment", &pb_apps_v1_Deployment },
	{ "apps/v1", "ReplicaSet", &pb_apps_v1_ReplicaSet },
	{ "apps/v1", "DaemonSet", &pb_apps_v1_DaemonSet },
	{ "apps/v1", "ControllerRevision", &pb_apps_v1_ControllerRevision },
	{ "batch/v1", "Job", &pb_batch_v1_Job },
	{ "autoscaling/v1", "Scale", &pb_autoscaling_v1_Scale },
	{ NULL, "DeleteOptions", &pb_meta_v1_DeleteOptions }, /* sent with any group-version */
};

const struct schema_msg *schema_find(const char *group_version, const char *kind)
{
	if (!kind)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (streq(kinds[i].kind, kind) &&
		    (!kinds[i].gv || (group_version && streq(kinds[i].gv, group_version))))
			return kinds[i].msg;
	return NULL;
}

const struct schema_field *schema_field_by_num(const struct schema_msg *m, uint32_t num)
{
	for (size_t i = 0; i < m->nfields; i++)
		if (m->fields[i].num == num)
			return &m->fields[i];
	return NULL;
}

const struct schema_field *schema_field_by_json(const struct schema_msg *m, const char *name)
{
	for (size_t i = 0; i < m->nfields; i++) {
		const struct schema_field *f = &m->fields[i];

		if (f->flags & PB_F_INLINE) {
			const struct schema_field *in = schema_field_by_json(f->msg, name);
			if (in)
				return in;
		} else if (streq(f->json, name))
			return f;
	}
	return NULL;
}

/* ---------- unknown and duplicate fields ---------- */

struct check {
	char **msgs;
	size_t n;
	int problems;
	bool oom;
};

static void check_add(struct check *c, const char *what, const char *path, const char *key)
{
	char *s;

	c->problems++;
	if (c->oom || c->n == CHECK_MAX_MSGS)
		return;
	if (asprintf(&s, "%s field \"%s%s%s\"", what, path, *path ? "." : "", key) < 0) {
		c->oom = true;
		return;
	}
	c->msgs[c->n++] = s;
}

static void check_msg(struct check *c, const struct schema_msg *m, cJSON *obj, const char *path,
		      int depth);

static void check_value(struct check *c, const struct schema_field *f, cJSON *v, const char *path,
			int depth)
{
	cJSON *it;
	size_t i = 0;

	if (f->kind != PB_MSG || !f->msg || f->msg->special != PB_SPECIAL_NONE)
		return;
	if (f->flags & PB_F_MAP) {
		cJSON_ArrayForEach(it, v)
		{
			_cleanup_free_ char *p = NULL;
			if (cJSON_IsObject(it) && asprintf(&p, "%s.%s", path, it->string) >= 0)
				check_msg(c, f->msg, it, p, depth + 1);
		}
	} else if (f->flags & PB_F_REPEATED) {
		cJSON_ArrayForEach(it, v)
		{
			_cleanup_free_ char *p = NULL;
			if (cJSON_IsObject(it) && asprintf(&p, "%s[%zu]", path, i) >= 0)
				check_msg(c, f->msg, it, p, depth + 1);
			i++;
		}
	} else if (cJSON_IsObject(v))
		check_msg(c, f->msg, v, path, depth + 1);
}

static void check_msg(struct check *c, const struct schema_msg *m, cJSON *obj, const char *path,
		      int depth)
{
	cJSON *it, *next;

	if (depth > CHECK_MAX_DEPTH || m->special != PB_SPECIAL_NONE)
		return;
	for (it = obj->child; it; it = next) {
		const struct schema_field *f;
		cJSON *dup;

		next = it->next;
		if (!it->string)
			continue;
		/* JSON decoding keeps the last of duplicate keys: drop the earlier one */
		for (dup = next; dup; dup = dup->next)
			if (dup->string && streq(dup->string, it->string))
				break;
		if (dup) {
			check_add(c, "duplicate", path, it->string);
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, it));
			continue;
		}
		if (depth == 0 && (streq(it->string, "apiVersion") || streq(it->string, "kind")))
			continue;
		f = schema_field_by_json(m, it->string);
		if (!f) {
			check_add(c, "unknown", path, it->string);
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, it));
			continue;
		}
		_cleanup_free_ char *p = NULL;
		if (asprintf(&p, "%s%s%s", path, *path ? "." : "", it->string) < 0) {
			c->oom = true;
			return;
		}
		check_value(c, f, it, p, depth);
	}
}

int schema_fields_check(const struct schema_msg *m, cJSON *obj, char ***ret_msgs)
{
	struct check c = { 0 };

	c.msgs = calloc(CHECK_MAX_MSGS + 1, sizeof(char *));
	if (!c.msgs)
		return -ENOMEM;
	if (cJSON_IsObject(obj))
		check_msg(&c, m, obj, "", 0);
	if (c.oom) {
		schema_msgs_free(c.msgs);
		return -ENOMEM;
	}
	if (ret_msgs)
		*ret_msgs = c.msgs;
	else
		schema_msgs_free(c.msgs);
	return c.problems;
}

char **schema_msgs_free(char **msgs)
{
	if (msgs)
		for (char **p = msgs; *p; p++)
			free(*p);
	free(msgs);
	return NULL;
}
