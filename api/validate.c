// SPDX-License-Identifier: Apache-2.0
/*
 * Defaulting and validation after k8s.io/kubernetes/pkg/apis/{core,apps,batch}/validation and
 * the v1 defaulters. The input is untrusted JSON: every accessor checks the type it reads and
 * reports a wrong one as a cause instead of assuming it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>

#include "api/quantity.h"
#include "api/selector.h"
#include "api/validate.h"
#include "lib/util.h"

/* ================= defaulting ================= */

static cJSON *obj_child(cJSON *o, const char *k)
{
	cJSON *c = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;

	return cJSON_IsNull(c) ? NULL : c;
}

/* The child object k of o, created when absent (NULL when o is no object or k is no object). */
static cJSON *obj_ensure(cJSON *o, const char *k)
{
	cJSON *c;

	if (!cJSON_IsObject(o))
		return NULL;
	c = cJSON_GetObjectItemCaseSensitive(o, k);
	if (c && cJSON_IsNull(c)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, k);
		c = NULL;
	}
	if (!c)
		return cJSON_AddObjectToObject(o, k);
	return cJSON_IsObject(c) ? c : NULL;
}

static bool absent(cJSON *o, const char *k)
{
	cJSON *c = cJSON_GetObjectItemCaseSensitive(o, k);

	if (c && cJSON_IsNull(c)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, k);
		return true;
	}
	return cJSON_IsObject(o) && !c;
}

static void def_str(cJSON *o, const char *k, const char *v)
{
	if (absent(o, k))
		cJSON_AddStringToObject(o, k, v);
	else if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, k)) &&
		 !*cJSON_GetObjectItemCaseSensitive(o, k)->valuestring)
		cJSON_ReplaceItemInObjectCaseSensitive(o, k, cJSON_CreateString(v));
}

static void def_num(cJSON *o, const char *k, double v)
{
	if (absent(o, k))
		cJSON_AddNumberToObject(o, k, v);
}

static void def_bool(cJSON *o, const char *k, bool v)
{
	if (absent(o, k))
		cJSON_AddBoolToObject(o, k, v);
}

static void def_ports_protocol(cJSON *ports)
{
	cJSON *p;

	cJSON_ArrayForEach(p, (cJSON_IsArray(ports) ? ports : NULL))
	if (cJSON_IsObject(p))
		def_str(p, "protocol", "TCP");
}

/* imagePullPolicy: Always for ":latest" or no tag (a digest counts as a tag), else IfNotPresent */
static const char *pull_policy_for(const char *image)
{
	const char *slash = strrchr(image, '/');
	const char *last = slash ? slash + 1 : image;
	const char *colon = strchr(last, ':');

	if (strchr(image, '@'))
		return "IfNotPresent";
	if (!colon || streq(colon + 1, "latest"))
		return "Always";
	return "IfNotPresent";
}

static void def_probe(cJSON *p)
{
	cJSON *h;

	if (!cJSON_IsObject(p))
		return;
	def_num(p, "timeoutSeconds", 1);
	def_num(p, "periodSeconds", 10);
	def_num(p, "successThreshold", 1);
	def_num(p, "failureThreshold", 3);
	h = obj_child(p, "httpGet");
	if (cJSON_IsObject(h)) {
		def_str(h, "path", "/");
		def_str(h, "scheme", "HTTP");
	}
}

static void def_container(cJSON *c, bool pod)
{
	cJSON *img, *res, *env, *e;

	if (!cJSON_IsObject(c))
		return;
	def_str(c, "terminationMessagePath", "/dev/termination-log");
	def_str(c, "terminationMessagePolicy", "File");
	img = obj_child(c, "image");
	if (cJSON_IsString(img))
		def_str(c, "imagePullPolicy", pull_policy_for(img->valuestring));
	def_ports_protocol(obj_child(c, "ports"));
	def_probe(obj_child(c, "livenessProbe"));
	def_probe(obj_child(c, "readinessProbe"));
	def_probe(obj_child(c, "startupProbe"));
	env = obj_child(c, "env");
	cJSON_ArrayForEach(e, (cJSON_IsArray(env) ? env : NULL))
	{
		cJSON *fr = obj_child(obj_child(e, "valueFrom"), "fieldRef");
		if (cJSON_IsObject(fr))
			def_str(fr, "apiVersion", "v1");
	}
	res = obj_ensure(c, "resources");
	/* pods (not templates): requests default to limits */
	if (pod && res) {
		cJSON *lim = obj_child(res, "limits"), *req, *l;
		if (cJSON_IsObject(lim) && cJSON_GetArraySize(lim) > 0) {
			req = obj_ensure(res, "requests");
			cJSON_ArrayForEach(l, (req ? lim : NULL))
			if (!cJSON_GetObjectItemCaseSensitive(req, l->string))
				cJSON_AddItemToObject(req, l->string, cJSON_Duplicate(l, true));
		}
	}
}

static void def_podspec(cJSON *spec, bool pod)
{
	cJSON *c, *v;

	if (!cJSON_IsObject(spec))
		return;
	def_str(spec, "restartPolicy", "Always");
	def_str(spec, "dnsPolicy", "ClusterFirst");
	def_num(spec, "terminationGracePeriodSeconds", 30);
	def_str(spec, "schedulerName", "default-scheduler");
	def_bool(spec, "enableServiceLinks", true);
	obj_ensure(spec, "securityContext");
	cJSON_ArrayForEach(c, (cJSON_IsArray(obj_child(spec, "containers")) ? obj_child(spec, "containers") : NULL))
	def_container(c, pod);
	cJSON_ArrayForEach(c, (cJSON_IsArray(obj_child(spec, "initContainers")) ? obj_child(spec, "initContainers") : NULL))
	def_container(c, pod);
	cJSON_ArrayForEach(v, (cJSON_IsArray(obj_child(spec, "volumes")) ? obj_child(spec, "volumes") : NULL))
	{
		cJSON *s = obj_child(v, "secret"), *cm = obj_child(v, "configMap");
		if (cJSON_IsObject(s))
			def_num(s, "defaultMode", 420);
		if (cJSON_IsObject(cm))
			def_num(cm, "defaultMode", 420);
	}
}

static void def_template(cJSON *spec)
{
	cJSON *t = obj_child(spec, "template");

	if (cJSON_IsObject(t))
		def_podspec(obj_child(t, "spec"), false);
}

static void def_job_selector(cJSON *obj, cJSON *spec)
{
	cJSON *meta = obj_child(obj, "metadata"), *uid = obj_child(meta, "uid");
	cJSON *name = obj_child(meta, "name"), *manual = obj_child(spec, "manualSelector");
	cJSON *tmeta, *labels;

	if (cJSON_IsTrue(manual) || obj_child(spec, "selector"))
		return;
	tmeta = obj_ensure(obj_child(spec, "template"), "metadata");
	labels = obj_ensure(tmeta, "labels");
	/* the job controller's labels (batch/v1 strategy PrepareForCreate) */
	if (labels && cJSON_IsString(name)) {
		def_str(labels, "batch.kubernetes.io/job-name", name->valuestring);
		def_str(labels, "job-name", name->valuestring);
	}
	if (labels && cJSON_IsString(uid) && *uid->valuestring) {
		cJSON *sel, *ml;
		def_str(labels, "batch.kubernetes.io/controller-uid", uid->valuestring);
		def_str(labels, "controller-uid", uid->valuestring);
		sel = obj_ensure(spec, "selector");
		ml = obj_ensure(sel, "matchLabels");
		if (ml)
			def_str(ml, "batch.kubernetes.io/controller-uid", uid->valuestring);
	}
}

static void def_secret(cJSON *obj)
{
	cJSON *sd = obj_child(obj, "stringData"), *data, *it;

	def_str(obj, "type", "Opaque");
	if (!cJSON_IsObject(sd))
		return;
	/* stringData is write-only: merged into data (base64), overriding */
	data = obj_ensure(obj, "data");
	if (!data)
		return;
	cJSON_ArrayForEach(it, sd)
	{
		size_t n;
		char *b;
		if (!cJSON_IsString(it))
			continue;
		n = strlen(it->valuestring);
		b = malloc(4 * ((n + 2) / 3) + 1);
		if (!b)
			continue;
		EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)it->valuestring, (int)n);
		if (cJSON_GetObjectItemCaseSensitive(data, it->string))
			cJSON_ReplaceItemInObjectCaseSensitive(data, it->string, cJSON_CreateString(b));
		else
			cJSON_AddStringToObject(data, it->string, b);
		free(b);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "stringData");
}

void validate_default(const char *kind, cJSON *obj)
{
	cJSON *spec, *meta;

	if (!kind || !cJSON_IsObject(obj))
		return;
	meta = obj_child(obj, "metadata");
	spec = obj_child(obj, "spec");
	if (streq(kind, "Pod")) {
		def_podspec(spec, true);
		if (cJSON_IsObject(spec)) {
			cJSON *st = obj_ensure(obj, "status");
			if (st)
				def_str(st, "phase", "Pending");
		}
	} else if (streq(kind, "Service")) {
		cJSON *p;
		if (!cJSON_IsObject(spec))
			return;
		def_str(spec, "type", "ClusterIP");
		def_str(spec, "sessionAffinity", "None");
		cJSON *type = obj_child(spec, "type");
		if (cJSON_IsString(type) && !streq(type->valuestring, "ExternalName")) {
			def_str(spec, "internalTrafficPolicy", "Cluster");
			if (streq(type->valuestring, "NodePort") ||
			    streq(type->valuestring, "LoadBalancer") ||
			    (streq(type->valuestring, "ClusterIP") &&
			     cJSON_GetArraySize(obj_child(spec, "externalIPs")) > 0))
				def_str(spec, "externalTrafficPolicy", "Cluster");
		}
		cJSON *aff = obj_child(spec, "sessionAffinity");
		if (cJSON_IsString(aff) && streq(aff->valuestring, "ClientIP")) {
			cJSON *cip = obj_ensure(obj_ensure(spec, "sessionAffinityConfig"), "clientIP");
			if (cip)
				def_num(cip, "timeoutSeconds", 10800);
		} else if (cJSON_IsString(aff) && streq(aff->valuestring, "None")) {
			/* as Kubernetes' v1 defaults do: a merge patch turning affinity off leaves
			 * the old config behind, and it goes with it rather than being refused */
			cJSON_DeleteItemFromObjectCaseSensitive(spec, "sessionAffinityConfig");
		}
		cJSON_ArrayForEach(p, (cJSON_IsArray(obj_child(spec, "ports")) ? obj_child(spec, "ports") : NULL))
		{
			cJSON *port = obj_child(p, "port");
			if (!cJSON_IsObject(p))
				continue;
			def_str(p, "protocol", "TCP");
			if (cJSON_IsNumber(port)) {
				cJSON *tp = obj_child(p, "targetPort");
				if (!tp || (cJSON_IsNumber(tp) && tp->valuedouble == 0) ||
				    (cJSON_IsString(tp) && !*tp->valuestring)) {
					if (tp)
						cJSON_DeleteItemFromObjectCaseSensitive(p, "targetPort");
					cJSON_AddNumberToObject(p, "targetPort", port->valuedouble);
				}
			}
		}
	} else if (streq(kind, "Deployment")) {
		if (!cJSON_IsObject(spec))
			return;
		def_num(spec, "replicas", 1);
		cJSON *st = obj_ensure(spec, "strategy");
		if (st) {
			def_str(st, "type", "RollingUpdate");
			cJSON *t = obj_child(st, "type");
			if (cJSON_IsString(t) && streq(t->valuestring, "RollingUpdate")) {
				cJSON *ru = obj_ensure(st, "rollingUpdate");
				if (ru) {
					def_str(ru, "maxUnavailable", "25%");
					def_str(ru, "maxSurge", "25%");
				}
			}
		}
		def_num(spec, "revisionHistoryLimit", 10);
		def_num(spec, "progressDeadlineSeconds", 600);
		def_template(spec);
	} else if (streq(kind, "ReplicaSet")) {
		if (!cJSON_IsObject(spec))
			return;
		def_num(spec, "replicas", 1);
		def_template(spec);
	} else if (streq(kind, "DaemonSet")) {
		if (!cJSON_IsObject(spec))
			return;
		cJSON *us = obj_ensure(spec, "updateStrategy");
		if (us) {
			def_str(us, "type", "RollingUpdate");
			cJSON *t = obj_child(us, "type");
			if (cJSON_IsString(t) && streq(t->valuestring, "RollingUpdate")) {
				cJSON *ru = obj_ensure(us, "rollingUpdate");
				if (ru) {
					def_num(ru, "maxUnavailable", 1);
					def_num(ru, "maxSurge", 0);
				}
			}
		}
		def_num(spec, "revisionHistoryLimit", 10);
		def_template(spec);
	} else if (streq(kind, "Job")) {
		if (!cJSON_IsObject(spec))
			return;
		if (!obj_child(spec, "completions") && !obj_child(spec, "parallelism")) {
			def_num(spec, "completions", 1);
			def_num(spec, "parallelism", 1);
		}
		def_num(spec, "parallelism", 1);
		def_num(spec, "backoffLimit", 6);
		def_str(spec, "completionMode", "NonIndexed");
		def_bool(spec, "suspend", false);
		def_job_selector(obj, spec);
		def_template(spec);
		cJSON *tl = obj_child(obj_child(obj_child(spec, "template"), "metadata"), "labels");
		cJSON *ml = obj_child(meta, "labels");
		if (cJSON_IsObject(meta) && cJSON_IsObject(tl) && cJSON_GetArraySize(tl) > 0 &&
		    (!ml || (cJSON_IsObject(ml) && cJSON_GetArraySize(ml) == 0))) {
			cJSON_DeleteItemFromObjectCaseSensitive(meta, "labels");
			cJSON_AddItemToObject(meta, "labels", cJSON_Duplicate(tl, true));
		}
	} else if (streq(kind, "Secret")) {
		def_secret(obj);
	} else if (streq(kind, "Namespace")) {
		cJSON *s = obj_ensure(obj, "spec"), *st = obj_ensure(obj, "status");
		if (s && absent(s, "finalizers")) {
			cJSON *f = cJSON_AddArrayToObject(s, "finalizers");
			cJSON_AddItemToArray(f, cJSON_CreateString("kubernetes"));
		}
		if (st)
			def_str(st, "phase", "Active");
	} else if (streq(kind, "Endpoints")) {
		cJSON *ss;
		cJSON_ArrayForEach(ss, (cJSON_IsArray(obj_child(obj, "subsets")) ? obj_child(obj, "subsets") : NULL))
		def_ports_protocol(obj_child(ss, "ports"));
	}
	/* cluster-scoped kinds carry no namespace (the REST layer clears it) */
	if ((streq(kind, "Node") || streq(kind, "Namespace")) && cJSON_IsObject(meta))
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
}

/* ================= validation ================= */

struct vctx {
	struct err *e;
	int n;
};

_printf_(4, 5) static void vc(struct vctx *v, const char *type, const char *field, const char *fmt,
			      ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	v->n++;
	err_cause(v->e, type, field, "%s", buf);
}

/* Path helpers: compound literals live until the end of the enclosing block. Built with
 * plain copies, not snprintf: every field of every write goes through here. */
static char *pcat(char *buf, size_t *o, const char *s)
{
	size_t n = strlen(s);

	if (n > 127 - *o)
		n = 127 - *o;
	memcpy(buf + *o, s, n);
	*o += n;
	buf[*o] = 0;
	return buf;
}
static const char *pj(char *buf, const char *base, const char *key)
{
	size_t o = 0;

	pcat(buf, &o, base);
	if (*base)
		pcat(buf, &o, ".");
	return pcat(buf, &o, key);
}
static const char *pi(char *buf, const char *base, int i)
{
	char num[16], *p = num + sizeof(num) - 1;
	unsigned u = i < 0 ? 0u - (unsigned)i : (unsigned)i;
	size_t o = 0;

	*p = 0;
	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (i < 0)
		*--p = '-';
	pcat(buf, &o, base);
	pcat(buf, &o, "[");
	pcat(buf, &o, p);
	return pcat(buf, &o, "]");
}
static const char *pk(char *buf, const char *base, const char *key)
{
	size_t o = 0;

	pcat(buf, &o, base);
	pcat(buf, &o, "[");
	pcat(buf, &o, key);
	return pcat(buf, &o, "]");
}
#define J(base, key) pj((char[128]){ 0 }, base, key)
#define I(base, i) pi((char[128]){ 0 }, base, i)
#define K(base, key) pk((char[128]){ 0 }, base, key)

/* d holds an integer that int64_t can represent (the range test first: the cast is UB beyond) */
static bool dbl_is_int64(double d)
{
	return d >= -9.2e18 && d <= 9.2e18 && d == (double)(int64_t)d;
}

/* A value as Kubernetes prints it in "Invalid value: ..." */
static const char *fmtv(const cJSON *v, char *buf, size_t len)
{
	if (cJSON_IsString(v)) {
		snprintf(buf, len, "\"%.*s\"", (int)(len > 8 ? len - 8 : 0), v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		if (dbl_is_int64(v->valuedouble))
			snprintf(buf, len, "%lld", (long long)v->valuedouble);
		else
			snprintf(buf, len, "%g", v->valuedouble);
	} else {
		_cleanup_free_ char *s = v ? cJSON_PrintUnformatted(v) : NULL;
		snprintf(buf, len, "%s", s ? s : "null");
	}
	return buf;
}
#define FV(v) fmtv(v, (char[96]){ 0 }, 96)

static void v_required(struct vctx *v, const char *f, const char *detail)
{
	if (detail && *detail)
		vc(v, "FieldValueRequired", f, "Required value: %s", detail);
	else
		vc(v, "FieldValueRequired", f, "Required value");
}
#define v_invalid(v, f, val, ...)                                                                  \
	do {                                                                                       \
		char _d[224];                                                                      \
		snprintf(_d, sizeof(_d), __VA_ARGS__);                                             \
		vc(v, "FieldValueInvalid", f, "Invalid value: %s: %s", FV(val), _d);               \
	} while (0)
static void v_invalid_s(struct vctx *v, const char *f, const char *val, const char *detail)
{
	vc(v, "FieldValueInvalid", f, "Invalid value: \"%.64s\": %s", val, detail);
}
static void v_forbidden(struct vctx *v, const char *f, const char *detail)
{
	vc(v, "FieldValueForbidden", f, "Forbidden: %s", detail);
}
static void v_duplicate(struct vctx *v, const char *f, const cJSON *val)
{
	vc(v, "FieldValueDuplicate", f, "Duplicate value: %s", FV(val));
}
static void v_notfound(struct vctx *v, const char *f, const cJSON *val)
{
	vc(v, "FieldValueNotFound", f, "Not found: %s", FV(val));
}
static void v_toolong(struct vctx *v, const char *f, long max)
{
	vc(v, "FieldValueTooLong", f, "Too long: must have at most %ld bytes", max);
}
static void v_type(struct vctx *v, const char *f, const cJSON *val, const char *want)
{
	vc(v, "FieldValueTypeInvalid", f, "Invalid value: %s: must be %s", FV(val), want);
}
/* NotSupported if s is not one of the NULL-terminated list. Returns true when fine. */
static bool v_enum(struct vctx *v, const char *f, const cJSON *val, const char *const *ok)
{
	char list[200] = "";
	size_t o = 0;

	if (cJSON_IsString(val))
		for (const char *const *s = ok; *s; s++)
			if (streq(*s, val->valuestring))
				return true;
	for (const char *const *s = ok; *s && o < sizeof(list); s++)
		o += snprintf(list + o, sizeof(list) - o, "%s\"%s\"", s == ok ? "" : ", ", *s);
	vc(v, "FieldValueNotSupported", f, "Unsupported value: %s: supported values: %s", FV(val),
	   list);
	return false;
}
#define ENUM(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* --- typed accessors: NULL/false when absent (JSON null counts as absent) or mistyped --- */

static const cJSON *get(const cJSON *o, const char *k)
{
	const cJSON *c = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;

	return cJSON_IsNull(c) ? NULL : c;
}

static const cJSON *get_obj(struct vctx *v, const cJSON *o, const char *k, const char *path)
{
	const cJSON *c = get(o, k);

	if (c && !cJSON_IsObject(c)) {
		v_type(v, path, c, "an object");
		return NULL;
	}
	return c;
}

static const cJSON *get_arr(struct vctx *v, const cJSON *o, const char *k, const char *path)
{
	const cJSON *c = get(o, k);

	if (c && !cJSON_IsArray(c)) {
		v_type(v, path, c, "a list");
		return NULL;
	}
	return c;
}

static const char *get_str(struct vctx *v, const cJSON *o, const char *k, const char *path)
{
	const cJSON *c = get(o, k);

	if (c && !cJSON_IsString(c)) {
		v_type(v, path, c, "a string");
		return NULL;
	}
	return c ? c->valuestring : NULL;
}

static bool get_int(struct vctx *v, const cJSON *o, const char *k, const char *path, int64_t *ret)
{
	const cJSON *c = get(o, k);

	if (!c)
		return false;
	if (!cJSON_IsNumber(c) || !dbl_is_int64(c->valuedouble)) {
		v_type(v, path, c, "an integer");
		return false;
	}
	*ret = (int64_t)c->valuedouble;
	return true;
}

static void chk_bool(struct vctx *v, const cJSON *o, const char *k, const char *path)
{
	const cJSON *c = get(o, k);

	if (c && !cJSON_IsBool(c))
		v_type(v, path, c, "a boolean");
}

static void chk_str(struct vctx *v, const cJSON *o, const char *k, const char *path)
{
	(void)get_str(v, o, k, path);
}

static void chk_strlist(struct vctx *v, const cJSON *o, const char *k, const char *path)
{
	const cJSON *a = get_arr(v, o, k, path), *it;
	int i = 0;

	cJSON_ArrayForEach(it, a)
	{
		if (!cJSON_IsString(it))
			v_type(v, I(path, i), it, "a string");
		i++;
	}
}

static void chk_int_min(struct vctx *v, const cJSON *o, const char *k, const char *path,
			int64_t min)
{
	int64_t x;

	if (get_int(v, o, k, path, &x) && x < min)
		v_invalid(v, path, get(o, k), "must be greater than or equal to %lld", (long long)min);
}

/* --- names --- */

static const char MSG_SUBDOMAIN[] =
	"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
	"or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
	"used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
static const char MSG_LABEL[] =
	"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
	"must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
	"used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
static const char MSG_1035[] =
	"a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
	"alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
	"'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

static bool dns1035_label(const char *s)
{
	return util_dns1123_label(s) && s[0] >= 'a' && s[0] <= 'z';
}

enum name_rule { NAME_SUBDOMAIN, NAME_LABEL, NAME_1035 };

static void chk_dns(struct vctx *v, const char *path, const char *s, enum name_rule rule)
{
	size_t n = strlen(s);

	switch (rule) {
	case NAME_SUBDOMAIN:
		if (n > 253)
			vc(v, "FieldValueInvalid", path, "Invalid value: \"%.40s...\": must be no more "
			   "than 253 characters", s);
		else if (!util_dns1123_subdomain(s))
			v_invalid_s(v, path, s, MSG_SUBDOMAIN);
		break;
	case NAME_LABEL:
		if (n > 63)
			vc(v, "FieldValueInvalid", path, "Invalid value: \"%.40s...\": must be no more "
			   "than 63 characters", s);
		else if (!util_dns1123_label(s))
			v_invalid_s(v, path, s, MSG_LABEL);
		break;
	case NAME_1035:
		if (n > 63)
			vc(v, "FieldValueInvalid", path, "Invalid value: \"%.40s...\": must be no more "
			   "than 63 characters", s);
		else if (!dns1035_label(s))
			v_invalid_s(v, path, s, MSG_1035);
		break;
	}
}

/* IANA_SVC_NAME: <= 15, [a-z0-9-], a letter, no "--", no leading/trailing '-' */
static const char *iana_svc_name_error(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;

	if (n == 0 || n > 15)
		return "must be no more than 15 characters";
	for (size_t i = 0; i < n; i++) {
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return "a valid port name must contain only lowercase alphanumeric "
			       "characters or '-'";
		if (islower((unsigned char)s[i]))
			letter = true;
	}
	if (!letter)
		return "a valid port name must contain at least one letter (a-z)";
	if (strstr(s, "--"))
		return "a valid port name must not contain consecutive hyphens";
	if (s[0] == '-' || s[n - 1] == '-')
		return "a valid port name must not begin or end with a hyphen";
	return NULL;
}

static bool valid_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* validateNonSpecialIP: addresses a Service may not claim as external */
static const char *special_ip_error(const char *s)
{
	static const unsigned char zero[16], one[16] = { [15] = 1 };
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1) {
		if (!a[0] && !a[1] && !a[2] && !a[3])
			return "may not be unspecified (0.0.0.0)";
		if (a[0] == 127)
			return "may not be in the loopback range (127.0.0.0/8, ::1/128)";
		if (a[0] == 169 && a[1] == 254)
			return "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
		if (a[0] == 224 && a[1] == 0 && a[2] == 0)
			return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)";
		return NULL;
	}
	if (inet_pton(AF_INET6, s, a) != 1)
		return NULL;
	if (!memcmp(a, zero, 16))
		return "may not be unspecified (::)";
	if (!memcmp(a, one, 16))
		return "may not be in the loopback range (127.0.0.0/8, ::1/128)";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
	if (a[0] == 0xff && (a[1] & 0x0f) == 0x02)
		return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)";
	return NULL;
}

static bool valid_cidr(const char *s)
{
	char ip[64];
	const char *slash = strchr(s, '/');
	char *end;
	long bits;
	bool v6;

	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return false;
	memcpy(ip, s, slash - s);
	ip[slash - s] = 0;
	if (!valid_ip(ip) || !slash[1])
		return false;
	v6 = strchr(ip, ':') != NULL;
	bits = strtol(slash + 1, &end, 10);
	return !*end && bits >= 0 && bits <= (v6 ? 128 : 32);
}

/* How a port number field treats absence and 0, as Kubernetes does field by field */
enum port_rule {
	PORT_OPTIONAL, /* 0 or absent: unset (hostPort) */
	PORT_REQUIRED, /* absent: Required; 0: Invalid (IsValidPortNum: service port, probes) */
	PORT_NONZERO,  /* absent or 0: Required (containerPort) */
};

static void chk_port_num(struct vctx *v, const cJSON *o, const char *k, const char *path,
			 enum port_rule rule)
{
	int64_t x = 0;
	bool have = get_int(v, o, k, path, &x);

	if (!have) {
		if (rule != PORT_OPTIONAL && !get(o, k))
			v_required(v, path, NULL);
		return;
	}
	if (x == 0 && rule == PORT_OPTIONAL)
		return;
	if (x == 0 && rule == PORT_NONZERO)
		v_required(v, path, NULL);
	else if (x < 1 || x > 65535)
		v_invalid(v, path, get(o, k), "must be between 1 and 65535, inclusive");
}

/* int or IANA name (targetPort, probe ports) */
static void chk_int_or_name(struct vctx *v, const cJSON *o, const char *k, const char *path,
			    bool required)
{
	const cJSON *c = get(o, k);

	if (!c) {
		if (required)
			v_required(v, path, NULL);
		return;
	}
	if (cJSON_IsNumber(c)) {
		chk_port_num(v, o, k, path, required ? PORT_REQUIRED : PORT_OPTIONAL);
	} else if (cJSON_IsString(c)) {
		const char *why = iana_svc_name_error(c->valuestring);
		if (why)
			v_invalid_s(v, path, c->valuestring, why);
	} else {
		v_type(v, path, c, "an integer or a string");
	}
}

static const char *const PROTOCOLS[] = { "SCTP", "TCP", "UDP", NULL };

/* appProtocol: a qualified name (ValidateQualifiedName) */
static void chk_app_protocol(struct vctx *v, const cJSON *o, const char *path)
{
	const char *s = get_str(v, o, "appProtocol", path), *why;

	if (s && (why = selector_qualified_name_error(s)))
		v_invalid_s(v, path, s, why);
}

/* --- metadata, labels --- */

static void chk_labels(struct vctx *v, const cJSON *o, const char *k, const char *path)
{
	const cJSON *m = get_obj(v, o, k, path), *it;

	cJSON_ArrayForEach(it, m)
	{
		const char *why = selector_qualified_name_error(it->string);
		if (why)
			v_invalid_s(v, path, it->string, why);
		if (!cJSON_IsString(it)) {
			v_type(v, K(path, it->string), it, "a string");
			continue;
		}
		why = selector_label_value_error(it->valuestring);
		if (why)
			v_invalid_s(v, path, it->valuestring, why);
	}
}

static void chk_annotations(struct vctx *v, const cJSON *o, const char *path)
{
	const cJSON *m = get_obj(v, o, "annotations", path), *it;
	size_t total = 0;

	cJSON_ArrayForEach(it, m)
	{
		char low[320];
		const char *why;
		size_t n = strlen(it->string);

		for (size_t i = 0; i < n && i < sizeof(low) - 1; i++)
			low[i] = tolower((unsigned char)it->string[i]);
		low[n < sizeof(low) - 1 ? n : sizeof(low) - 1] = 0;
		why = n >= sizeof(low) - 1 ? "name part must be no more than 63 characters"
					  : selector_qualified_name_error(low);
		if (why)
			v_invalid_s(v, path, it->string, why);
		if (!cJSON_IsString(it)) {
			v_type(v, K(path, it->string), it, "a string");
			continue;
		}
		total += n + strlen(it->valuestring);
	}
	if (total > 256 * 1024)
		v_toolong(v, path, 256 * 1024);
}

enum scope { NAMESPACED, CLUSTER };

static void chk_meta(struct vctx *v, const cJSON *obj, enum scope scope, enum name_rule rule)
{
	const cJSON *meta = get(obj, "metadata"), *refs, *it;
	const char *name, *ns;
	int i = 0;

	if (!meta) {
		v_required(v, "metadata.name", "name or generateName is required");
		return;
	}
	if (!cJSON_IsObject(meta)) {
		v_type(v, "metadata", meta, "an object");
		return;
	}
	name = get_str(v, meta, "name", "metadata.name");
	chk_str(v, meta, "generateName", "metadata.generateName");
	if (!name || !*name)
		v_required(v, "metadata.name", "name or generateName is required");
	else
		chk_dns(v, "metadata.name", name, rule);
	ns = get_str(v, meta, "namespace", "metadata.namespace");
	if (scope == NAMESPACED) {
		if (!ns || !*ns)
			v_required(v, "metadata.namespace", NULL);
		else
			chk_dns(v, "metadata.namespace", ns, NAME_LABEL);
	}
	chk_labels(v, meta, "labels", "metadata.labels");
	chk_annotations(v, meta, "metadata.annotations");
	chk_str(v, meta, "uid", "metadata.uid");
	chk_str(v, meta, "resourceVersion", "metadata.resourceVersion");
	chk_str(v, meta, "creationTimestamp", "metadata.creationTimestamp");
	chk_int_min(v, meta, "generation", "metadata.generation", 0);
	refs = get_arr(v, meta, "ownerReferences", "metadata.ownerReferences");
	cJSON_ArrayForEach(it, refs)
	{
		const char *p = I("metadata.ownerReferences", i++);
		static const char *const req[] = { "apiVersion", "kind", "name", "uid" };

		if (!cJSON_IsObject(it)) {
			v_type(v, p, it, "an object");
			continue;
		}
		for (size_t r = 0; r < ARRAY_SIZE(req); r++) {
			const char *s = get_str(v, it, req[r], J(p, req[r]));
			if (!s || !*s)
				v_invalid(v, J(p, req[r]), get(it, req[r]), "%s must not be empty",
					  req[r]);
		}
		chk_bool(v, it, "controller", J(p, "controller"));
		chk_bool(v, it, "blockOwnerDeletion", J(p, "blockOwnerDeletion"));
	}
	const cJSON *fin = get_arr(v, meta, "finalizers", "metadata.finalizers");
	i = 0;
	cJSON_ArrayForEach(it, fin)
	{
		const char *p = I("metadata.finalizers", i++);
		const char *why;
		if (!cJSON_IsString(it)) {
			v_type(v, p, it, "a string");
			continue;
		}
		why = selector_qualified_name_error(it->valuestring);
		if (why)
			v_invalid_s(v, p, it->valuestring, why);
	}
}

/* --- resources --- */

static bool std_resource_name(const char *s)
{
	return streq(s, "cpu") || streq(s, "memory") || streq(s, "ephemeral-storage") ||
	       strncmp(s, "hugepages-", 10) == 0 || streq(s, "pods") || strchr(s, '/');
}

static void chk_resource_list(struct vctx *v, const cJSON *o, const char *k, const char *path)
{
	const cJSON *m = get_obj(v, o, k, path), *it;

	cJSON_ArrayForEach(it, m)
	{
		const char *p = K(path, it->string);
		const char *why = selector_qualified_name_error(it->string);
		int64_t x;

		if (why)
			v_invalid_s(v, p, it->string, why);
		else if (!std_resource_name(it->string))
			v_invalid_s(v, p, it->string, "must be a standard resource type or fully "
						       "qualified");
		if (cJSON_IsNumber(it)) {
			if (it->valuedouble < 0)
				v_invalid(v, p, it, "must be greater than or equal to 0");
			continue;
		}
		if (!cJSON_IsString(it)) {
			v_type(v, p, it, "a quantity");
			continue;
		}
		int r = quantity_parse_milli(it->valuestring, &x);
		if (r == -EINVAL)
			v_invalid(v, p, it, "quantities must match the regular expression "
					    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
		else if (r == 0 && x < 0)
			v_invalid(v, p, it, "must be greater than or equal to 0");
	}
}

static bool res_milli(const cJSON *m, const char *k, int64_t *x)
{
	const cJSON *c = get(m, k);

	if (cJSON_IsNumber(c)) {
		if (!(c->valuedouble * 1000 >= -9.2e18 && c->valuedouble * 1000 <= 9.2e18))
			return false;
		*x = (int64_t)(c->valuedouble * 1000);
		return true;
	}
	return cJSON_IsString(c) && quantity_parse_milli(c->valuestring, x) == 0;
}

static void chk_resources(struct vctx *v, const cJSON *c, const char *path)
{
	const cJSON *res = get_obj(v, c, "resources", path), *lim, *req, *it;

	if (!res)
		return;
	chk_resource_list(v, res, "limits", J(path, "limits"));
	chk_resource_list(v, res, "requests", J(path, "requests"));
	lim = get(res, "limits");
	req = get(res, "requests");
	cJSON_ArrayForEach(it, (cJSON_IsObject(req) ? req : NULL))
	{
		int64_t rq, lm;
		if (res_milli(req, it->string, &rq) && res_milli(lim, it->string, &lm) && rq > lm)
			v_invalid(v, K(J(path, "requests"), it->string), it,
				  "must be less than or equal to %s limit of %s", it->string,
				  FV(get(lim, it->string)));
	}
}

/* --- containers, volumes, pod spec --- */

#define MAX_NAMES 64
struct nameset {
	const char *names[MAX_NAMES];
	int n;
};

static bool nameset_add(struct nameset *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (streq(s->names[i], name))
			return false;
	if (s->n < MAX_NAMES)
		s->names[s->n++] = name;
	return true;
}

static bool nameset_has(const struct nameset *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (streq(s->names[i], name))
			return true;
	return false;
}

static bool env_name_ok(const char *s)
{
	if (!*s || isdigit((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return false;
	return true;
}

static void chk_probe(struct vctx *v, const cJSON *c, const char *k, const char *path)
{
	const cJSON *p = get_obj(v, c, k, path), *h;
	static const char *const handlers[] = { "exec", "httpGet", "tcpSocket", "grpc" };
	int n = 0;

	if (!p)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(handlers); i++)
		if (get(p, handlers[i])) {
			if (++n > 1)
				v_forbidden(v, J(path, handlers[i]),
					    "may not specify more than 1 handler type");
		}
	if (n == 0)
		v_required(v, path, "must specify a handler type");
	if ((h = get_obj(v, p, "httpGet", J(path, "httpGet")))) {
		chk_int_or_name(v, h, "port", J(J(path, "httpGet"), "port"), true);
		chk_str(v, h, "path", J(J(path, "httpGet"), "path"));
		const cJSON *sch = get(h, "scheme");
		if (sch)
			v_enum(v, J(J(path, "httpGet"), "scheme"), sch, ENUM("HTTP", "HTTPS"));
	}
	if ((h = get_obj(v, p, "tcpSocket", J(path, "tcpSocket"))))
		chk_int_or_name(v, h, "port", J(J(path, "tcpSocket"), "port"), true);
	if ((h = get_obj(v, p, "exec", J(path, "exec"))))
		chk_strlist(v, h, "command", J(J(path, "exec"), "command"));
	if ((h = get_obj(v, p, "grpc", J(path, "grpc"))))
		chk_port_num(v, h, "port", J(J(path, "grpc"), "port"), PORT_REQUIRED);
	chk_int_min(v, p, "initialDelaySeconds", J(path, "initialDelaySeconds"), 0);
	chk_int_min(v, p, "timeoutSeconds", J(path, "timeoutSeconds"), 0);
	chk_int_min(v, p, "periodSeconds", J(path, "periodSeconds"), 0);
	chk_int_min(v, p, "successThreshold", J(path, "successThreshold"), 0);
	chk_int_min(v, p, "failureThreshold", J(path, "failureThreshold"), 0);
}

static void chk_container(struct vctx *v, const cJSON *c, const char *path, struct nameset *names,
			  const struct nameset *vols)
{
	const cJSON *ports, *env, *mounts, *it;
	struct nameset mpaths = { 0 }, pnames = { 0 };
	const char *name, *image;
	int i;

	if (!cJSON_IsObject(c)) {
		v_type(v, path, c, "an object");
		return;
	}
	name = get_str(v, c, "name", J(path, "name"));
	if (!name || !*name)
		v_required(v, J(path, "name"), NULL);
	else {
		chk_dns(v, J(path, "name"), name, NAME_LABEL);
		if (!nameset_add(names, name))
			v_duplicate(v, J(path, "name"), get(c, "name"));
	}
	image = get_str(v, c, "image", J(path, "image"));
	if (!image || !*image)
		v_required(v, J(path, "image"), NULL);
	else if (image[0] == ' ' || image[strlen(image) - 1] == ' ')
		v_invalid_s(v, J(path, "image"), image,
			    "must not have leading or trailing whitespace");
	chk_strlist(v, c, "command", J(path, "command"));
	chk_strlist(v, c, "args", J(path, "args"));
	chk_str(v, c, "workingDir", J(path, "workingDir"));
	chk_str(v, c, "terminationMessagePath", J(path, "terminationMessagePath"));
	chk_bool(v, c, "stdin", J(path, "stdin"));
	chk_bool(v, c, "tty", J(path, "tty"));
	if (get(c, "imagePullPolicy"))
		v_enum(v, J(path, "imagePullPolicy"), get(c, "imagePullPolicy"),
		       ENUM("Always", "IfNotPresent", "Never"));
	if (get(c, "terminationMessagePolicy"))
		v_enum(v, J(path, "terminationMessagePolicy"), get(c, "terminationMessagePolicy"),
		       ENUM("File", "FallbackToLogsOnError"));

	ports = get_arr(v, c, "ports", J(path, "ports"));
	i = 0;
	cJSON_ArrayForEach(it, ports)
	{
		const char *p = I(J(path, "ports"), i++);
		const char *pn;

		if (!cJSON_IsObject(it)) {
			v_type(v, p, it, "an object");
			continue;
		}
		chk_port_num(v, it, "containerPort", J(p, "containerPort"), PORT_NONZERO);
		chk_port_num(v, it, "hostPort", J(p, "hostPort"), PORT_OPTIONAL);
		if (get(it, "protocol"))
			v_enum(v, J(p, "protocol"), get(it, "protocol"), PROTOCOLS);
		else
			v_required(v, J(p, "protocol"), NULL);
		pn = get_str(v, it, "name", J(p, "name"));
		if (pn && *pn) {
			const char *why = iana_svc_name_error(pn);
			if (why)
				v_invalid_s(v, J(p, "name"), pn, why);
			else if (!nameset_add(&pnames, pn))
				v_duplicate(v, J(p, "name"), get(it, "name"));
		}
		chk_str(v, it, "hostIP", J(p, "hostIP"));
	}

	env = get_arr(v, c, "env", J(path, "env"));
	i = 0;
	cJSON_ArrayForEach(it, env)
	{
		const char *p = I(J(path, "env"), i++);
		const char *en, *val;
		const cJSON *vf;

		if (!cJSON_IsObject(it)) {
			v_type(v, p, it, "an object");
			continue;
		}
		en = get_str(v, it, "name", J(p, "name"));
		if (!en || !*en)
			v_required(v, J(p, "name"), NULL);
		else if (!env_name_ok(en))
			v_invalid_s(v, J(p, "name"), en,
				    "a valid environment variable name must consist of alphabetic "
				    "characters, digits, '_', '-', or '.', and must not start with a "
				    "digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', "
				    "regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')");
		val = get_str(v, it, "value", J(p, "value"));
		vf = get_obj(v, it, "valueFrom", J(p, "valueFrom"));
		if (vf) {
			static const char *const src[] = { "fieldRef", "resourceFieldRef",
							   "configMapKeyRef", "secretKeyRef" };
			int n = 0;
			for (size_t s = 0; s < ARRAY_SIZE(src); s++) {
				const cJSON *r = get_obj(v, vf, src[s], J(J(p, "valueFrom"), src[s]));
				if (!r)
					continue;
				n++;
				if (streq(src[s], "fieldRef")) {
					const char *fp = get_str(v, r, "fieldPath",
								 J(J(J(p, "valueFrom"), src[s]),
								   "fieldPath"));
					if (!fp || !*fp)
						v_required(v, J(J(J(p, "valueFrom"), src[s]),
								"fieldPath"), NULL);
				} else if (streq(src[s], "resourceFieldRef")) {
					const char *rs = get_str(v, r, "resource",
								 J(J(J(p, "valueFrom"), src[s]),
								   "resource"));
					if (!rs || !*rs)
						v_required(v, J(J(J(p, "valueFrom"), src[s]),
								"resource"), NULL);
				} else {
					const char *key = get_str(v, r, "key",
								  J(J(J(p, "valueFrom"), src[s]),
								    "key"));
					if (!key || !*key)
						v_required(v, J(J(J(p, "valueFrom"), src[s]), "key"),
							   NULL);
				}
			}
			if (n == 0)
				v_invalid(v, J(p, "valueFrom"), vf,
					  "must specify one of: `fieldRef`, `resourceFieldRef`, "
					  "`configMapKeyRef` or `secretKeyRef`");
			else if (n > 1)
				v_invalid(v, J(p, "valueFrom"), vf,
					  "may not have more than one field specified at a time");
			if (val && *val)
				v_invalid(v, J(p, "valueFrom"), vf,
					  "may not be specified when `value` is not empty");
		}
	}
	const cJSON *envfrom = get_arr(v, c, "envFrom", J(path, "envFrom"));
	i = 0;
	cJSON_ArrayForEach(it, envfrom)
	{
		const char *p = I(J(path, "envFrom"), i++);
		const cJSON *cm = get_obj(v, it, "configMapRef", J(p, "configMapRef"));
		const cJSON *sr = get_obj(v, it, "secretRef", J(p, "secretRef"));
		if (!cJSON_IsObject(it))
			v_type(v, p, it, "an object");
		else if (!cm && !sr)
			v_invalid(v, p, it, "must specify one of: `configMapRef` or `secretRef`");
		else if (cm && sr)
			v_invalid(v, p, it, "may not have more than one field specified at a time");
		chk_str(v, it, "prefix", J(p, "prefix"));
	}

	mounts = get_arr(v, c, "volumeMounts", J(path, "volumeMounts"));
	i = 0;
	cJSON_ArrayForEach(it, mounts)
	{
		const char *p = I(J(path, "volumeMounts"), i++);
		const char *mn, *mp;

		if (!cJSON_IsObject(it)) {
			v_type(v, p, it, "an object");
			continue;
		}
		mn = get_str(v, it, "name", J(p, "name"));
		if (!mn || !*mn)
			v_required(v, J(p, "name"), NULL);
		else if (!nameset_has(vols, mn))
			v_notfound(v, J(p, "name"), get(it, "name"));
		mp = get_str(v, it, "mountPath", J(p, "mountPath"));
		if (!mp || !*mp)
			v_required(v, J(p, "mountPath"), NULL);
		else if (!nameset_add(&mpaths, mp))
			v_invalid_s(v, J(p, "mountPath"), mp, "must be unique");
		chk_bool(v, it, "readOnly", J(p, "readOnly"));
		chk_str(v, it, "subPath", J(p, "subPath"));
	}
	chk_resources(v, c, J(path, "resources"));
	chk_probe(v, c, "livenessProbe", J(path, "livenessProbe"));
	chk_probe(v, c, "readinessProbe", J(path, "readinessProbe"));
	chk_probe(v, c, "startupProbe", J(path, "startupProbe"));
	(void)get_obj(v, c, "securityContext", J(path, "securityContext"));
	(void)get_obj(v, c, "lifecycle", J(path, "lifecycle"));
}

static const char *const VOLUME_SOURCES[] = {
	"hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
	"nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
	"cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
	"quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
	"storageos", "csi", "ephemeral", "image", NULL,
};

static void chk_volume(struct vctx *v, const cJSON *vol, const char *path, struct nameset *vols)
{
	const char *name;
	const cJSON *src;
	int n = 0;

	if (!cJSON_IsObject(vol)) {
		v_type(v, path, vol, "an object");
		return;
	}
	name = get_str(v, vol, "name", J(path, "name"));
	if (!name || !*name)
		v_required(v, J(path, "name"), NULL);
	else {
		chk_dns(v, J(path, "name"), name, NAME_LABEL);
		if (!nameset_add(vols, name))
			v_duplicate(v, J(path, "name"), get(vol, "name"));
	}
	for (const char *const *s = VOLUME_SOURCES; *s; s++) {
		if (!get(vol, *s))
			continue;
		if (++n > 1) {
			v_forbidden(v, J(path, *s), "may not specify more than 1 volume type");
			continue;
		}
		src = get_obj(v, vol, *s, J(path, *s));
		if (!src)
			continue;
		const char *sp = J(path, *s);
		if (streq(*s, "hostPath")) {
			const char *hp = get_str(v, src, "path", J(sp, "path"));
			if (!hp || !*hp)
				v_required(v, J(sp, "path"), NULL);
			if (get(src, "type"))
				v_enum(v, J(sp, "type"), get(src, "type"),
				       ENUM("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File",
					    "Socket", "CharDevice", "BlockDevice"));
		} else if (streq(*s, "emptyDir")) {
			if (get(src, "medium"))
				v_enum(v, J(sp, "medium"), get(src, "medium"),
				       ENUM("", "Memory", "HugePages"));
			const cJSON *sl = get(src, "sizeLimit");
			if (sl && !(cJSON_IsString(sl) && quantity_valid(sl->valuestring)) &&
			    !cJSON_IsNumber(sl))
				v_invalid(v, J(sp, "sizeLimit"), sl, "must be a quantity");
		} else if (streq(*s, "secret")) {
			const char *sn = get_str(v, src, "secretName", J(sp, "secretName"));
			if (!sn || !*sn)
				v_required(v, J(sp, "secretName"), NULL);
			chk_int_min(v, src, "defaultMode", J(sp, "defaultMode"), 0);
		} else if (streq(*s, "configMap")) {
			const char *cn = get_str(v, src, "name", J(sp, "name"));
			if (!cn || !*cn)
				v_required(v, J(sp, "name"), NULL);
			chk_int_min(v, src, "defaultMode", J(sp, "defaultMode"), 0);
		} else if (streq(*s, "persistentVolumeClaim")) {
			const char *cn = get_str(v, src, "claimName", J(sp, "claimName"));
			if (!cn || !*cn)
				v_required(v, J(sp, "claimName"), NULL);
		}
	}
	if (n == 0)
		v_required(v, path, "must specify a volume type");
}

static void chk_podspec(struct vctx *v, const cJSON *spec, const char *path)
{
	struct nameset names = { 0 }, vols = { 0 };
	const cJSON *arr, *it;
	const char *s;
	int i;

	if (!spec) {
		v_required(v, J(path, "containers"), NULL);
		return;
	}
	if (!cJSON_IsObject(spec)) {
		v_type(v, path, spec, "an object");
		return;
	}
	arr = get_arr(v, spec, "volumes", J(path, "volumes"));
	i = 0;
	cJSON_ArrayForEach(it, arr)
	chk_volume(v, it, I(J(path, "volumes"), i++), &vols);

	arr = get_arr(v, spec, "containers", J(path, "containers"));
	if (!arr || cJSON_GetArraySize(arr) == 0) {
		if (!get(spec, "containers") || arr)
			v_required(v, J(path, "containers"), NULL);
	}
	i = 0;
	cJSON_ArrayForEach(it, arr)
	chk_container(v, it, I(J(path, "containers"), i++), &names, &vols);
	arr = get_arr(v, spec, "initContainers", J(path, "initContainers"));
	i = 0;
	cJSON_ArrayForEach(it, arr)
	chk_container(v, it, I(J(path, "initContainers"), i++), &names, &vols);

	if (get(spec, "restartPolicy"))
		v_enum(v, J(path, "restartPolicy"), get(spec, "restartPolicy"),
		       ENUM("Always", "OnFailure", "Never"));
	else
		v_required(v, J(path, "restartPolicy"), NULL);
	if (get(spec, "dnsPolicy"))
		v_enum(v, J(path, "dnsPolicy"), get(spec, "dnsPolicy"),
		       ENUM("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"));
	chk_int_min(v, spec, "terminationGracePeriodSeconds", J(path, "terminationGracePeriodSeconds"),
		    0);
	chk_int_min(v, spec, "activeDeadlineSeconds", J(path, "activeDeadlineSeconds"), 1);
	chk_labels(v, spec, "nodeSelector", J(path, "nodeSelector"));
	s = get_str(v, spec, "nodeName", J(path, "nodeName"));
	if (s && *s)
		chk_dns(v, J(path, "nodeName"), s, NAME_SUBDOMAIN);
	s = get_str(v, spec, "serviceAccountName", J(path, "serviceAccountName"));
	if (s && *s)
		chk_dns(v, J(path, "serviceAccountName"), s, NAME_SUBDOMAIN);
	s = get_str(v, spec, "hostname", J(path, "hostname"));
	if (s && *s)
		chk_dns(v, J(path, "hostname"), s, NAME_LABEL);
	s = get_str(v, spec, "subdomain", J(path, "subdomain"));
	if (s && *s)
		chk_dns(v, J(path, "subdomain"), s, NAME_LABEL);
	chk_str(v, spec, "schedulerName", J(path, "schedulerName"));
	chk_str(v, spec, "priorityClassName", J(path, "priorityClassName"));
	chk_bool(v, spec, "hostNetwork", J(path, "hostNetwork"));
	chk_bool(v, spec, "hostPID", J(path, "hostPID"));
	chk_bool(v, spec, "hostIPC", J(path, "hostIPC"));
	chk_bool(v, spec, "enableServiceLinks", J(path, "enableServiceLinks"));
	chk_bool(v, spec, "automountServiceAccountToken", J(path, "automountServiceAccountToken"));
	(void)get_obj(v, spec, "securityContext", J(path, "securityContext"));
	(void)get_obj(v, spec, "affinity", J(path, "affinity"));
	int64_t prio;
	(void)get_int(v, spec, "priority", J(path, "priority"), &prio);

	arr = get_arr(v, spec, "tolerations", J(path, "tolerations"));
	i = 0;
	cJSON_ArrayForEach(it, arr)
	{
		const char *p = I(J(path, "tolerations"), i++);
		const char *key, *op, *val;
		if (!cJSON_IsObject(it)) {
			v_type(v, p, it, "an object");
			continue;
		}
		key = get_str(v, it, "key", J(p, "key"));
		op = get_str(v, it, "operator", J(p, "operator"));
		val = get_str(v, it, "value", J(p, "value"));
		if (key && *key) {
			const char *why = selector_qualified_name_error(key);
			if (why)
				v_invalid_s(v, J(p, "key"), key, why);
		}
		if (get(it, "operator") &&
		    v_enum(v, J(p, "operator"), get(it, "operator"), ENUM("Equal", "Exists")) &&
		    streq(op, "Exists") && val && *val)
			v_invalid_s(v, J(p, "operator"), val,
				    "value must be empty when `operator` is 'Exists'");
		if ((!key || !*key) && (!op || !streq(op, "Exists")))
			v_invalid_s(v, J(p, "operator"), op ? op : "",
				    "operator must be Exists when `key` is empty, which means "
				    "\"match all values and all keys\"");
		if (get(it, "effect") && !(cJSON_IsString(get(it, "effect")) &&
					   !*get(it, "effect")->valuestring))
			v_enum(v, J(p, "effect"), get(it, "effect"),
			       ENUM("NoSchedule", "PreferNoSchedule", "NoExecute"));
		int64_t ts;
		(void)get_int(v, it, "tolerationSeconds", J(p, "tolerationSeconds"), &ts);
	}
	arr = get_arr(v, spec, "imagePullSecrets", J(path, "imagePullSecrets"));
	i = 0;
	cJSON_ArrayForEach(it, arr)
	{
		const char *p = I(J(path, "imagePullSecrets"), i++);
		if (!cJSON_IsObject(it))
			v_type(v, p, it, "an object");
		else
			chk_str(v, it, "name", J(p, "name"));
	}
	arr = get_arr(v, spec, "hostAliases", J(path, "hostAliases"));
	i = 0;
	cJSON_ArrayForEach(it, arr)
	{
		const char *p = I(J(path, "hostAliases"), i++);
		const char *ip = get_str(v, it, "ip", J(p, "ip"));
		if (!cJSON_IsObject(it))
			v_type(v, p, it, "an object");
		else if (!ip || !valid_ip(ip))
			v_invalid(v, J(p, "ip"), get(it, "ip"), "must be a valid IP address");
		chk_strlist(v, it, "hostnames", J(p, "hostnames"));
	}
}

/* template (metadata.labels + spec) of a workload; returns the template labels */
static const cJSON *chk_template(struct vctx *v, const cJSON *spec, const char *path)
{
	const cJSON *t = get_obj(v, spec, "template", J(path, "template"));
	const char *tp = J(path, "template");
	const cJSON *tm;

	if (!t) {
		if (!get(spec, "template"))
			v_required(v, tp, NULL);
		return NULL;
	}
	tm = get_obj(v, t, "metadata", J(tp, "metadata"));
	chk_labels(v, tm, "labels", J(J(tp, "metadata"), "labels"));
	chk_annotations(v, tm, J(J(tp, "metadata"), "annotations"));
	chk_podspec(v, get(t, "spec"), J(tp, "spec"));
	return get(tm, "labels");
}

/* selector required, non-empty, valid, and matching the template labels */
static void chk_selector_matches(struct vctx *v, const cJSON *spec, const char *path,
				 const cJSON *tlabels, bool required)
{
	const char *sp = J(path, "selector");
	const cJSON *sel = get(spec, "selector");
	struct label_selector *ls = NULL;
	struct err se = { 0 };

	if (!sel) {
		if (required)
			v_required(v, sp, NULL);
		return;
	}
	if (label_selector_from_json(sel, sp, &ls, &se) < 0) {
		for (int i = 0; i < se.ncauses; i++)
			vc(v, se.causes[i].type, se.causes[i].field, "%s", se.causes[i].message);
		if (se.ncauses == 0)
			v_invalid(v, sp, sel, "invalid label selector");
		return;
	}
	if (label_selector_is_empty(ls))
		v_invalid(v, sp, sel, "empty selector is invalid for deployment");
	else if (tlabels && !label_selector_matches(ls, tlabels))
		v_invalid(v, J(J(J(path, "template"), "metadata"), "labels"), tlabels,
			  "`selector` does not match template `labels`");
	label_selector_free(ls);
}

static void chk_pod(struct vctx *v, const cJSON *obj)
{
	chk_podspec(v, get(obj, "spec"), "spec");
}

/* maxSurge/maxUnavailable: int >= 0 or "N%" */
static bool chk_int_or_percent(struct vctx *v, const cJSON *o, const char *k, const char *path,
			       int *pct, int64_t *num)
{
	const cJSON *c = get(o, k);

	*pct = -1;
	*num = -1;
	if (!c)
		return false;
	if (cJSON_IsNumber(c)) {
		if (get_int(v, o, k, path, num) && *num < 0) {
			v_invalid(v, path, c, "must be greater than or equal to 0");
			return false;
		}
		return true;
	}
	if (cJSON_IsString(c)) {
		char *end;
		long x = strtol(c->valuestring, &end, 10);
		if (end == c->valuestring || streq(end, "%") == false) {
			v_invalid(v, path, c, "a valid percent string must be a numeric string "
					      "followed by an ending '%%' (e.g. '1%%',  or '93%%', regex "
					      "used for validation is '[0-9]+%%')");
			return false;
		}
		if (x < 0) {
			v_invalid(v, path, c, "must be greater than or equal to 0");
			return false;
		}
		*pct = (int)(x > 1000 ? 1000 : x);
		return true;
	}
	v_type(v, path, c, "an integer or a percentage string");
	return false;
}

static void chk_deployment(struct vctx *v, const cJSON *obj, bool is_rs)
{
	const cJSON *spec = get(obj, "spec"), *tl, *st;

	if (!spec) {
		v_required(v, "spec.selector", NULL);
		v_required(v, "spec.template", NULL);
		return;
	}
	if (!cJSON_IsObject(spec)) {
		v_type(v, "spec", spec, "an object");
		return;
	}
	chk_int_min(v, spec, "replicas", "spec.replicas", 0);
	chk_int_min(v, spec, "minReadySeconds", "spec.minReadySeconds", 0);
	tl = chk_template(v, spec, "spec");
	chk_selector_matches(v, spec, "spec", tl, true);
	const cJSON *tspec = get(get(spec, "template"), "spec");
	const cJSON *pol = get(tspec, "restartPolicy");
	if (pol && cJSON_IsString(pol) && !streq(pol->valuestring, "Always"))
		v_enum(v, "spec.template.spec.restartPolicy", pol, ENUM("Always"));
	if (get(tspec, "activeDeadlineSeconds"))
		v_forbidden(v, "spec.template.spec.activeDeadlineSeconds",
			    "activeDeadlineSeconds in ReplicaSet is not Supported");
	if (is_rs)
		return;
	chk_int_min(v, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", 0);
	int64_t pds, mrs = 0;
	if (get_int(v, spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds", &pds)) {
		(void)get_int(v, spec, "minReadySeconds", "spec.minReadySeconds", &mrs);
		if (pds <= mrs)
			v_invalid(v, "spec.progressDeadlineSeconds", get(spec, "progressDeadlineSeconds"),
				  "must be greater than minReadySeconds");
	}
	chk_bool(v, spec, "paused", "spec.paused");
	st = get_obj(v, spec, "strategy", "spec.strategy");
	if (st) {
		const cJSON *type = get(st, "type"), *ru = get(st, "rollingUpdate");
		if (!type)
			v_required(v, "spec.strategy.type", NULL);
		else if (v_enum(v, "spec.strategy.type", type, ENUM("Recreate", "RollingUpdate"))) {
			if (streq(type->valuestring, "Recreate") && ru)
				v_forbidden(v, "spec.strategy.rollingUpdate",
					    "may not be specified when strategy `type` is 'Recreate'");
		}
		if (ru && !cJSON_IsObject(ru)) {
			v_type(v, "spec.strategy.rollingUpdate", ru, "an object");
		} else if (ru) {
			int pu, ps;
			int64_t nu, ns;
			bool hu = chk_int_or_percent(v, ru, "maxUnavailable",
						     "spec.strategy.rollingUpdate.maxUnavailable", &pu,
						     &nu);
			bool hs = chk_int_or_percent(v, ru, "maxSurge",
						     "spec.strategy.rollingUpdate.maxSurge", &ps, &ns);
			if (hu && pu > 100)
				v_invalid(v, "spec.strategy.rollingUpdate.maxUnavailable",
					  get(ru, "maxUnavailable"),
					  "must not be greater than 100%%");
			if (hu && hs && (pu == 0 || nu == 0) && (ps == 0 || ns == 0))
				v_invalid(v, "spec.strategy.rollingUpdate.maxUnavailable",
					  get(ru, "maxUnavailable"),
					  "may not be 0 when `maxSurge` is 0");
		}
	}
}

static void chk_daemonset(struct vctx *v, const cJSON *obj)
{
	const cJSON *spec = get(obj, "spec"), *tl, *us;

	if (!spec) {
		v_required(v, "spec.selector", NULL);
		v_required(v, "spec.template", NULL);
		return;
	}
	if (!cJSON_IsObject(spec)) {
		v_type(v, "spec", spec, "an object");
		return;
	}
	chk_int_min(v, spec, "minReadySeconds", "spec.minReadySeconds", 0);
	chk_int_min(v, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", 0);
	tl = chk_template(v, spec, "spec");
	chk_selector_matches(v, spec, "spec", tl, true);
	const cJSON *tspec = get(get(spec, "template"), "spec");
	const cJSON *pol = get(tspec, "restartPolicy");
	if (pol && cJSON_IsString(pol) && !streq(pol->valuestring, "Always"))
		v_enum(v, "spec.template.spec.restartPolicy", pol, ENUM("Always"));
	if (get(tspec, "activeDeadlineSeconds"))
		v_forbidden(v, "spec.template.spec.activeDeadlineSeconds",
			    "activeDeadlineSeconds in DaemonSet is not Supported");
	us = get_obj(v, spec, "updateStrategy", "spec.updateStrategy");
	if (!us)
		return;
	const cJSON *type = get(us, "type"), *ru = get(us, "rollingUpdate");
	if (!type)
		v_required(v, "spec.updateStrategy.type", NULL);
	else
		v_enum(v, "spec.updateStrategy.type", type, ENUM("OnDelete", "RollingUpdate"));
	if (ru && !cJSON_IsObject(ru)) {
		v_type(v, "spec.updateStrategy.rollingUpdate", ru, "an object");
	} else if (ru) {
		int pu, ps;
		int64_t nu, ns;
		bool hu = chk_int_or_percent(v, ru, "maxUnavailable",
					     "spec.updateStrategy.rollingUpdate.maxUnavailable", &pu,
					     &nu);
		bool hs = chk_int_or_percent(v, ru, "maxSurge",
					     "spec.updateStrategy.rollingUpdate.maxSurge", &ps, &ns);
		if (hu && pu > 100)
			v_invalid(v, "spec.updateStrategy.rollingUpdate.maxUnavailable",
				  get(ru, "maxUnavailable"), "must not be greater than 100%%");
		if (hs && ps > 100)
			v_invalid(v, "spec.updateStrategy.rollingUpdate.maxSurge", get(ru, "maxSurge"),
				  "must not be greater than 100%%");
		if ((!hu || pu == 0 || nu == 0) && (!hs || ps == 0 || ns == 0))
			v_invalid(v, "spec.updateStrategy.rollingUpdate.maxUnavailable",
				  get(ru, "maxUnavailable"), "may not be 0 when `maxSurge` is 0");
	}
}

static void chk_controllerrevision(struct vctx *v, const cJSON *obj)
{
	if (!get(obj, "data"))
		v_required(v, "data", "data is mandatory");
	chk_int_min(v, obj, "revision", "revision", 0);
}

static void chk_pdb(struct vctx *v, const cJSON *obj)
{
	const cJSON *spec = get(obj, "spec");

	if (get(spec, "minAvailable") && get(spec, "maxUnavailable"))
		v_invalid_s(v, "spec", "", "minAvailable and maxUnavailable cannot be both set");
}

static void chk_job(struct vctx *v, const cJSON *obj)
{
	const cJSON *spec = get(obj, "spec"), *tl, *pol;
	bool manual;

	if (!spec) {
		v_required(v, "spec.template", NULL);
		return;
	}
	if (!cJSON_IsObject(spec)) {
		v_type(v, "spec", spec, "an object");
		return;
	}
	chk_int_min(v, spec, "parallelism", "spec.parallelism", 0);
	chk_int_min(v, spec, "completions", "spec.completions", 0);
	chk_int_min(v, spec, "activeDeadlineSeconds", "spec.activeDeadlineSeconds", 1);
	chk_int_min(v, spec, "backoffLimit", "spec.backoffLimit", 0);
	chk_int_min(v, spec, "ttlSecondsAfterFinished", "spec.ttlSecondsAfterFinished", 0);
	chk_bool(v, spec, "suspend", "spec.suspend");
	chk_bool(v, spec, "manualSelector", "spec.manualSelector");
	if (get(spec, "completionMode"))
		v_enum(v, "spec.completionMode", get(spec, "completionMode"),
		       ENUM("NonIndexed", "Indexed"));
	if (cJSON_IsString(get(spec, "completionMode")) &&
	    streq(get(spec, "completionMode")->valuestring, "Indexed") && !get(spec, "completions"))
		v_required(v, "spec.completions",
			   "when completion mode is Indexed");
	manual = cJSON_IsTrue(get(spec, "manualSelector"));
	tl = chk_template(v, spec, "spec");
	/* without manualSelector the selector is generated (validate_default, given a uid) */
	chk_selector_matches(v, spec, "spec", tl, manual);
	pol = get(get(get(spec, "template"), "spec"), "restartPolicy");
	if (pol)
		v_enum(v, "spec.template.spec.restartPolicy", pol, ENUM("OnFailure", "Never"));
}

static void chk_service(struct vctx *v, const cJSON *obj)
{
	const cJSON *spec = get(obj, "spec"), *ports, *it;
	const char *type = "ClusterIP", *cip;
	bool headless, extname;
	struct nameset pnames = { 0 };
	int i = 0, nports;

	if (!spec) {
		v_required(v, "spec.ports", NULL);
		return;
	}
	if (!cJSON_IsObject(spec)) {
		v_type(v, "spec", spec, "an object");
		return;
	}
	if (get(spec, "type") && v_enum(v, "spec.type", get(spec, "type"),
					ENUM("ClusterIP", "ExternalName", "LoadBalancer",
					     "NodePort")))
		type = get(spec, "type")->valuestring;
	cip = get_str(v, spec, "clusterIP", "spec.clusterIP");
	headless = cip && streq(cip, "None");
	extname = streq(type, "ExternalName");
	if (cip && *cip && !headless && !valid_ip(cip))
		v_invalid_s(v, "spec.clusterIP", cip,
			    "must be empty, 'None', or a valid IP address");
	if (headless && !streq(type, "ClusterIP"))
		v_invalid_s(v, "spec.clusterIP", cip,
			    streq(type, "NodePort") ? "may not be set to 'None' for NodePort services"
			    : streq(type, "LoadBalancer")
				    ? "may not be set to 'None' for LoadBalancer services"
				    : "may not be set for ExternalName services");
	if (extname) {
		const char *en = get_str(v, spec, "externalName", "spec.externalName");
		size_t enl = en ? strlen(en) : 0;
		/* the CNAME may end in a dot to mark it fully qualified */
		if (enl && en[enl - 1] == '.')
			enl--;
		if (!enl) {
			v_required(v, "spec.externalName", NULL);
		} else {
			char buf[256];
			if (enl >= sizeof(buf))
				enl = sizeof(buf) - 1;
			memcpy(buf, en, enl);
			buf[enl] = 0;
			chk_dns(v, "spec.externalName", buf, NAME_SUBDOMAIN);
		}
		if (cip && *cip)
			v_forbidden(v, "spec.clusterIP", "may not be set for ExternalName services");
	}
	ports = get_arr(v, spec, "ports", "spec.ports");
	nports = ports ? cJSON_GetArraySize(ports) : 0;
	if (nports == 0 && !headless && !extname && !get(spec, "ports"))
		v_required(v, "spec.ports", NULL);
	else if (nports == 0 && !headless && !extname && ports)
		v_required(v, "spec.ports", NULL);
	cJSON_ArrayForEach(it, ports)
	{
		const char *p = I("spec.ports", i);
		const char *pn;
		const cJSON *other;
		int j = 0;

		i++;
		if (!cJSON_IsObject(it)) {
			v_type(v, p, it, "an object");
			continue;
		}
		pn = get_str(v, it, "name", J(p, "name"));
		if (nports > 1 && (!pn || !*pn))
			v_required(v, J(p, "name"), NULL);
		else if (pn && *pn) {
			/* a DNS-1123 label, unlike container port names: kubectl's generators
			 * name ports "80-80" */
			chk_dns(v, J(p, "name"), pn, NAME_LABEL);
			if (!nameset_add(&pnames, pn))
				v_duplicate(v, J(p, "name"), get(it, "name"));
		}
		chk_port_num(v, it, "port", J(p, "port"), PORT_REQUIRED);
		chk_app_protocol(v, it, J(p, "appProtocol"));
		if (streq(type, "LoadBalancer") && cJSON_IsNumber(get(it, "port")) &&
		    get(it, "port")->valuedouble == 10250)
			v_invalid(v, p, get(it, "port"),
				  "may not expose port 10250 externally since it is used by kubelet");
		if (get(it, "protocol"))
			v_enum(v, J(p, "protocol"), get(it, "protocol"), PROTOCOLS);
		else
			v_required(v, J(p, "protocol"), NULL);
		chk_int_or_name(v, it, "targetPort", J(p, "targetPort"), false);
		int64_t np;
		if (get_int(v, it, "nodePort", J(p, "nodePort"), &np) && np != 0) {
			if (streq(type, "ClusterIP") || extname)
				vc(v, "FieldValueForbidden", J(p, "nodePort"),
				   "Forbidden: may not be used when `type` is '%s'", type);
			else if (np < 1 || np > 65535)
				v_invalid(v, J(p, "nodePort"), get(it, "nodePort"),
					  "must be between 1 and 65535, inclusive");
		}
		/* nodePort+protocol unique */
		j = 0;
		cJSON_ArrayForEach(other, (i <= 1024 && cJSON_IsNumber(get(it, "nodePort")) &&
						   get(it, "nodePort")->valuedouble != 0
					   ? ports
					   : NULL))
		{
			if (j++ >= i - 1)
				break;
			if (cJSON_Compare(get(other, "nodePort"), get(it, "nodePort"), true) &&
			    cJSON_Compare(get(other, "protocol"), get(it, "protocol"), true)) {
				v_duplicate(v, J(p, "nodePort"), get(it, "nodePort"));
				break;
			}
		}
		j = 0;
		/* port+protocol unique (bounded: quadratic) */
		cJSON_ArrayForEach(other, (i <= 1024 ? ports : NULL))
		{
			if (j++ >= i - 1)
				break;
			if (cJSON_Compare(get(other, "port"), get(it, "port"), true) &&
			    cJSON_Compare(get(other, "protocol"), get(it, "protocol"), true) &&
			    get(it, "port")) {
				char d[96];
				snprintf(d, sizeof(d), "{\"port\":%s,\"protocol\":%s}",
					 FV(get(it, "port")), FV(get(it, "protocol")));
				vc(v, "FieldValueDuplicate", p, "Duplicate value: %s", d);
				break;
			}
		}
	}
	chk_labels(v, spec, "selector", "spec.selector");
	if (get(spec, "sessionAffinity"))
		v_enum(v, "spec.sessionAffinity", get(spec, "sessionAffinity"),
		       ENUM("ClientIP", "None"));
	/* apiservice.ExternallyAccessible */
	bool external = streq(type, "NodePort") || streq(type, "LoadBalancer") ||
			(streq(type, "ClusterIP") && cJSON_GetArraySize(get(spec, "externalIPs")) > 0);
	const cJSON *etp = get(spec, "externalTrafficPolicy");
	if (etp && cJSON_IsString(etp) && !*etp->valuestring)
		etp = NULL;
	if (external && !etp)
		v_required(v, "spec.externalTrafficPolicy", NULL);
	else if (external)
		v_enum(v, "spec.externalTrafficPolicy", etp, ENUM("Cluster", "Local"));
	else if (etp)
		v_invalid(v, "spec.externalTrafficPolicy", etp,
			  "may only be set for externally-accessible services");
	const cJSON *sac = get(spec, "sessionAffinityConfig");
	const char *aff = cJSON_IsString(get(spec, "sessionAffinity"))
				  ? get(spec, "sessionAffinity")->valuestring
				  : "";
	if (streq(aff, "ClientIP")) {
		const cJSON *cip_cfg = get(get_obj(v, spec, "sessionAffinityConfig",
						   "spec.sessionAffinityConfig"),
					   "clientIP");
		int64_t t;
		if (!sac)
			v_required(v, "spec.sessionAffinityConfig",
				   "when session affinity type is ClientIP");
		else if (!cip_cfg)
			v_required(v, "spec.sessionAffinityConfig.clientIP",
				   "when session affinity type is ClientIP");
		else if (get_int(v, cip_cfg, "timeoutSeconds",
				 "spec.sessionAffinityConfig.clientIP.timeoutSeconds", &t) &&
			 (t <= 0 || t > 86400))
			v_invalid(v, "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
				  get(cip_cfg, "timeoutSeconds"),
				  "must be greater than 0 and less than 86400");
	} else if (streq(aff, "None") && sac) {
		v_forbidden(v, "spec.sessionAffinityConfig",
			    "must not be set when session affinity is None");
	}
	if (get(spec, "internalTrafficPolicy") && !extname)
		v_enum(v, "spec.internalTrafficPolicy", get(spec, "internalTrafficPolicy"),
		       ENUM("Cluster", "Local"));
	if (get(spec, "ipFamilyPolicy"))
		v_enum(v, "spec.ipFamilyPolicy", get(spec, "ipFamilyPolicy"),
		       ENUM("SingleStack", "PreferDualStack", "RequireDualStack"));
	const cJSON *eips = get_arr(v, spec, "externalIPs", "spec.externalIPs");
	i = 0;
	cJSON_ArrayForEach(it, eips)
	{
		const char *p = I("spec.externalIPs", i++);
		const char *why;
		if (!cJSON_IsString(it) || !valid_ip(it->valuestring))
			v_invalid(v, p, it, "must be a valid IP address");
		else if ((why = special_ip_error(it->valuestring)))
			v_invalid(v, p, it, "%s", why);
	}
	const cJSON *cips = get_arr(v, spec, "clusterIPs", "spec.clusterIPs");
	i = 0;
	cJSON_ArrayForEach(it, cips)
	{
		const char *p = I("spec.clusterIPs", i++);
		if (!cJSON_IsString(it) || (!valid_ip(it->valuestring) &&
					    !streq(it->valuestring, "None")))
			v_invalid(v, p, it, "must be a valid IP address");
	}
	if (cip && *cip && cJSON_IsString(cJSON_GetArrayItem(cips, 0)) &&
	    !streq(cJSON_GetArrayItem(cips, 0)->valuestring, cip))
		v_invalid(v, "spec.clusterIPs[0]", cJSON_GetArrayItem(cips, 0),
			  "must be same as clusterIP");
}

/* a valid config key: [-._a-zA-Z0-9]+, not "." "..", not starting with "..", <= 253 */
static const char *config_key_error(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > 253)
		return "must be no more than 253 characters";
	for (const char *c = k; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
			return "a valid config key must consist of alphanumeric characters, '-', '_' "
			       "or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex "
			       "used for validation is '[-._a-zA-Z0-9]+')";
	if (streq(k, "."))
		return "must not be '.'";
	if (streq(k, ".."))
		return "must not be '..'";
	if (strncmp(k, "..", 2) == 0)
		return "must not start with '..'";
	return NULL;
}

/* strict base64 (standard alphabet, padded); decoded length or -1 */
static long base64_len(const char *s)
{
	size_t n = strlen(s), pad = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '=') {
			if (i < n - 2 || (i == n - 2 && s[n - 1] != '='))
				return -1;
			pad++;
		} else if (!isalnum((unsigned char)c) && c != '+' && c != '/') {
			return -1;
		}
	}
	return (long)(n / 4 * 3 - pad);
}

#define MAX_CONFIG_BYTES (1024 * 1024)

static void chk_data_keys(struct vctx *v, const cJSON *m, const char *path, bool b64, long *total)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, m)
	{
		const char *why = config_key_error(it->string);
		if (why)
			v_invalid_s(v, path, it->string, why);
		if (!cJSON_IsString(it)) {
			v_type(v, K(path, it->string), it, "a string");
			continue;
		}
		if (b64) {
			long n = base64_len(it->valuestring);
			if (n < 0)
				vc(v, "FieldValueInvalid", K(path, it->string),
				   "Invalid value: <secret contents redacted>: illegal base64 data");
			else
				*total += n;
		} else {
			*total += strlen(it->valuestring);
		}
	}
}

static void chk_configmap(struct vctx *v, const cJSON *obj)
{
	const cJSON *data = get_obj(v, obj, "data", "data");
	const cJSON *bin = get_obj(v, obj, "binaryData", "binaryData"), *it;
	long total = 0;

	chk_data_keys(v, data, "data", false, &total);
	chk_data_keys(v, bin, "binaryData", true, &total);
	cJSON_ArrayForEach(it, bin)
	if (get(data, it->string))
		v_invalid_s(v, "data", it->string, "duplicate of key present in binaryData");
	chk_bool(v, obj, "immutable", "immutable");
	if (total > MAX_CONFIG_BYTES)
		v_toolong(v, "", MAX_CONFIG_BYTES);
}

static void chk_secret(struct vctx *v, const cJSON *obj)
{
	const cJSON *data = get_obj(v, obj, "data", "data");
	const char *type = get_str(v, obj, "type", "type");
	long total = 0;

	chk_data_keys(v, data, "data", true, &total);
	if (get(obj, "stringData")) {
		const cJSON *sd = get_obj(v, obj, "stringData", "stringData");
		long t2 = 0;
		chk_data_keys(v, sd, "stringData", false, &t2);
		total += t2;
	}
	chk_bool(v, obj, "immutable", "immutable");
	if (total > MAX_CONFIG_BYTES)
		v_toolong(v, "data", MAX_CONFIG_BYTES);
	if (!type)
		return;
	if (streq(type, "kubernetes.io/service-account-token")) {
		const cJSON *ann = get(get(obj, "metadata"), "annotations");
		const cJSON *sa = get(ann, "kubernetes.io/service-account.name");
		if (!cJSON_IsString(sa) || !*sa->valuestring)
			v_required(v, "metadata.annotations[kubernetes.io/service-account.name]",
				   NULL);
	} else if (streq(type, "kubernetes.io/dockercfg")) {
		if (!get(data, ".dockercfg"))
			v_required(v, "data[.dockercfg]", NULL);
	} else if (streq(type, "kubernetes.io/dockerconfigjson")) {
		if (!get(data, ".dockerconfigjson"))
			v_required(v, "data[.dockerconfigjson]", NULL);
	} else if (streq(type, "kubernetes.io/basic-auth")) {
		if (!get(data, "username") && !get(data, "password"))
			v_required(v, "data[username]", NULL);
	} else if (streq(type, "kubernetes.io/ssh-auth")) {
		if (!get(data, "ssh-privatekey"))
			v_required(v, "data[ssh-privatekey]", NULL);
	} else if (streq(type, "kubernetes.io/tls")) {
		if (!get(data, "tls.crt"))
			v_required(v, "data[tls.crt]", NULL);
		if (!get(data, "tls.key"))
			v_required(v, "data[tls.key]", NULL);
	}
}

static void chk_namespace(struct vctx *v, const cJSON *obj)
{
	const cJSON *spec = get_obj(v, obj, "spec", "spec"), *st, *it;
	const cJSON *fin = get_arr(v, spec, "finalizers", "spec.finalizers");
	int i = 0;

	cJSON_ArrayForEach(it, fin)
	{
		const char *p = I("spec.finalizers", i++);
		const char *why;
		if (!cJSON_IsString(it)) {
			v_type(v, p, it, "a string");
			continue;
		}
		why = selector_qualified_name_error(it->valuestring);
		if (why)
			v_invalid_s(v, p, it->valuestring, why);
	}
	st = get_obj(v, obj, "status", "status");
	if (get(st, "phase"))
		v_enum(v, "status.phase", get(st, "phase"), ENUM("Active", "Terminating"));
}

static void chk_node(struct vctx *v, const cJSON *obj)
{
	const cJSON *spec = get_obj(v, obj, "spec", "spec"), *it, *taints, *st;
	const char *cidr = get_str(v, spec, "podCIDR", "spec.podCIDR");
	int i = 0;

	if (cidr && *cidr && !valid_cidr(cidr))
		v_invalid_s(v, "spec.podCIDR", cidr, "must be a valid CIDR");
	cJSON_ArrayForEach(it, get_arr(v, spec, "podCIDRs", "spec.podCIDRs"))
	{
		const char *p = I("spec.podCIDRs", i++);
		if (!cJSON_IsString(it) || !valid_cidr(it->valuestring))
			v_invalid(v, p, it, "must be a valid CIDR");
	}
	chk_bool(v, spec, "unschedulable", "spec.unschedulable");
	chk_str(v, spec, "providerID", "spec.providerID");
	taints = get_arr(v, spec, "taints", "spec.taints");
	i = 0;
	cJSON_ArrayForEach(it, taints)
	{
		const char *p = I("spec.taints", i++);
		const char *key, *why;
		if (!cJSON_IsObject(it)) {
			v_type(v, p, it, "an object");
			continue;
		}
		key = get_str(v, it, "key", J(p, "key"));
		if (!key || !*key)
			v_required(v, J(p, "key"), NULL);
		else if ((why = selector_qualified_name_error(key)))
			v_invalid_s(v, J(p, "key"), key, why);
		const char *val = get_str(v, it, "value", J(p, "value"));
		if (val && (why = selector_label_value_error(val)))
			v_invalid_s(v, J(p, "value"), val, why);
		if (!get(it, "effect"))
			v_required(v, J(p, "effect"), NULL);
		else
			v_enum(v, J(p, "effect"), get(it, "effect"),
			       ENUM("NoSchedule", "PreferNoSchedule", "NoExecute"));
	}
	st = get_obj(v, obj, "status", "status");
	chk_resource_list(v, st, "capacity", "status.capacity");
	chk_resource_list(v, st, "allocatable", "status.allocatable");
	i = 0;
	cJSON_ArrayForEach(it, get_arr(v, st, "addresses", "status.addresses"))
	{
		const char *p = I("status.addresses", i++);
		if (!cJSON_IsObject(it)) {
			v_type(v, p, it, "an object");
			continue;
		}
		chk_str(v, it, "type", J(p, "type"));
		chk_str(v, it, "address", J(p, "address"));
	}
}

static void chk_event(struct vctx *v, const cJSON *obj)
{
	const cJSON *io = get_obj(v, obj, "involvedObject", "involvedObject");
	const char *ns = get_str(v, get(obj, "metadata"), "namespace", "metadata.namespace");
	const char *ions = get_str(v, io, "namespace", "involvedObject.namespace");
	const char *type = get_str(v, obj, "type", "type");
	const char *reason = get_str(v, obj, "reason", "reason");
	int64_t c;

	if (!get(obj, "involvedObject"))
		v_required(v, "involvedObject", NULL);
	chk_str(v, io, "kind", "involvedObject.kind");
	chk_str(v, io, "name", "involvedObject.name");
	if (ions && *ions && ns && !streq(ions, ns))
		v_invalid_s(v, "involvedObject.namespace", ions, "does not match event.namespace");
	if (type && *type)
		v_enum(v, "type", get(obj, "type"), ENUM("Normal", "Warning"));
	if (reason && strlen(reason) > 128)
		v_toolong(v, "reason", 128);
	chk_str(v, obj, "message", "message");
	(void)get_int(v, obj, "count", "count", &c);
	(void)get_obj(v, obj, "source", "source");
}

static void chk_endpoints(struct vctx *v, const cJSON *obj)
{
	const cJSON *ss = get_arr(v, obj, "subsets", "subsets"), *s;
	int i = 0;

	cJSON_ArrayForEach(s, ss)
	{
		const char *sp = I("subsets", i++);
		static const char *const lists[] = { "addresses", "notReadyAddresses" };
		const cJSON *ports, *it;
		int j, np;

		if (!cJSON_IsObject(s)) {
			v_type(v, sp, s, "an object");
			continue;
		}
		for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
			j = 0;
			cJSON_ArrayForEach(it, get_arr(v, s, lists[l], J(sp, lists[l])))
			{
				const char *p = I(J(sp, lists[l]), j++);
				const char *ip = get_str(v, it, "ip", J(p, "ip"));
				if (!cJSON_IsObject(it))
					v_type(v, p, it, "an object");
				else if (!ip || !valid_ip(ip))
					v_invalid(v, J(p, "ip"), get(it, "ip"),
						  "must be a valid IP address");
				const char *nn = get_str(v, it, "nodeName", J(p, "nodeName"));
				if (nn && *nn)
					chk_dns(v, J(p, "nodeName"), nn, NAME_SUBDOMAIN);
			}
		}
		ports = get_arr(v, s, "ports", J(sp, "ports"));
		np = ports ? cJSON_GetArraySize(ports) : 0;
		j = 0;
		cJSON_ArrayForEach(it, ports)
		{
			const char *p = I(J(sp, "ports"), j++);
			const char *pn;
			if (!cJSON_IsObject(it)) {
				v_type(v, p, it, "an object");
				continue;
			}
			pn = get_str(v, it, "name", J(p, "name"));
			if (np > 1 && (!pn || !*pn))
				v_required(v, J(p, "name"), NULL);
			else if (pn && *pn)
				chk_dns(v, J(p, "name"), pn, NAME_LABEL);
			chk_port_num(v, it, "port", J(p, "port"), PORT_REQUIRED);
			if (get(it, "protocol"))
				v_enum(v, J(p, "protocol"), get(it, "protocol"), PROTOCOLS);
			else
				v_required(v, J(p, "protocol"), NULL);
			chk_app_protocol(v, it, J(p, "appProtocol"));
		}
	}
}

/* ---------- update rules ---------- */

static bool same(const cJSON *a, const cJSON *b)
{
	if (!a || !b)
		return !a && !b;
	return cJSON_Compare(a, b, true);
}

static void immutable(struct vctx *v, const char *path, const cJSON *now, const cJSON *was)
{
	if (!same(now, was))
		v_invalid(v, path, now, "field is immutable");
}

static void chk_pod_update(struct vctx *v, const cJSON *obj, const cJSON *old)
{
	_cleanup_json_ cJSON *a = cJSON_Duplicate(get(obj, "spec"), true);
	_cleanup_json_ cJSON *b = cJSON_Duplicate(get(old, "spec"), true);
	static const char *const lists[] = { "containers", "initContainers" };
	const cJSON *ot, *it;

	if (!cJSON_IsObject(a) || !cJSON_IsObject(b))
		return;
	/* mutable: container images, activeDeadlineSeconds (set or decreased), tolerations
	 * (additions), nodeName once (shoal binds by update, not through a binding subresource) */
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		cJSON *ca = obj_child(a, lists[l]), *cb = obj_child(b, lists[l]), *x;
		int i = 0;
		if (!cJSON_IsArray(ca) || !cJSON_IsArray(cb) ||
		    cJSON_GetArraySize(ca) != cJSON_GetArraySize(cb))
			continue;
		cJSON_ArrayForEach(x, cb)
		{
			cJSON *y = cJSON_GetArrayItem(ca, i++);
			cJSON *img = obj_child(y, "image");
			if (cJSON_IsObject(x) && img) {
				cJSON_DeleteItemFromObjectCaseSensitive(x, "image");
				cJSON_AddItemToObject(x, "image", cJSON_Duplicate(img, true));
			}
		}
	}
	int64_t nad, oad;
	bool hn = get_int(v, a, "activeDeadlineSeconds", "spec.activeDeadlineSeconds", &nad);
	bool ho = get_int(v, b, "activeDeadlineSeconds", "spec.activeDeadlineSeconds", &oad);
	if (hn && ho && nad > oad)
		v_invalid(v, "spec.activeDeadlineSeconds", get(a, "activeDeadlineSeconds"),
			  "must be less than or equal to previous value");
	else if (!hn && ho)
		v_invalid(v, "spec.activeDeadlineSeconds", get(a, "activeDeadlineSeconds"),
			  "must not update from a positive integer to nil value");
	cJSON_DeleteItemFromObjectCaseSensitive(a, "activeDeadlineSeconds");
	cJSON_DeleteItemFromObjectCaseSensitive(b, "activeDeadlineSeconds");
	ot = get(b, "tolerations");
	cJSON_ArrayForEach(it, (cJSON_IsArray(ot) ? ot : NULL))
	{
		const cJSON *nt = get(a, "tolerations"), *y;
		bool found = false;
		cJSON_ArrayForEach(y, (cJSON_IsArray(nt) ? nt : NULL))
		if (cJSON_Compare(it, y, true))
			found = true;
		if (!found) {
			v_forbidden(v, "spec.tolerations", "existing toleration can not be modified "
							   "except its tolerationSeconds");
			break;
		}
	}
	cJSON_DeleteItemFromObjectCaseSensitive(a, "tolerations");
	cJSON_DeleteItemFromObjectCaseSensitive(b, "tolerations");
	const char *onode = get_str(v, b, "nodeName", "spec.nodeName");
	if (!onode || !*onode) {
		cJSON_DeleteItemFromObjectCaseSensitive(a, "nodeName");
		cJSON_DeleteItemFromObjectCaseSensitive(b, "nodeName");
	}
	if (!cJSON_Compare(a, b, true))
		v_forbidden(v, "spec",
			    "pod updates may not change fields other than `spec.containers[*].image`,"
			    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
			    "`spec.tolerations` (only additions to existing tolerations)");
}

static void chk_update(struct vctx *v, const char *kind, const cJSON *obj, const cJSON *old)
{
	const cJSON *m = get(obj, "metadata"), *om = get(old, "metadata");
	const cJSON *spec = get(obj, "spec"), *ospec = get(old, "spec");

	immutable(v, "metadata.name", get(m, "name"), get(om, "name"));
	if (get(om, "namespace") && get(m, "namespace"))
		immutable(v, "metadata.namespace", get(m, "namespace"), get(om, "namespace"));
	if (get(om, "uid") && get(m, "uid"))
		immutable(v, "metadata.uid", get(m, "uid"), get(om, "uid"));
	if (get(om, "creationTimestamp") && get(m, "creationTimestamp"))
		immutable(v, "metadata.creationTimestamp", get(m, "creationTimestamp"),
			  get(om, "creationTimestamp"));

	if (streq(kind, "Pod")) {
		chk_pod_update(v, obj, old);
	} else if (streq(kind, "Deployment") || streq(kind, "ReplicaSet")) {
		immutable(v, "spec.selector", get(spec, "selector"), get(ospec, "selector"));
	} else if (streq(kind, "DaemonSet")) {
		immutable(v, "spec.selector", get(spec, "selector"), get(ospec, "selector"));
	} else if (streq(kind, "ControllerRevision")) {
		immutable(v, "data", get(obj, "data"), get(old, "data"));
	} else if (streq(kind, "Job")) {
		if (get(ospec, "selector"))
			immutable(v, "spec.selector", get(spec, "selector"), get(ospec, "selector"));
		immutable(v, "spec.template", get(spec, "template"), get(ospec, "template"));
		immutable(v, "spec.completions", get(spec, "completions"), get(ospec, "completions"));
		if (get(ospec, "completionMode"))
			immutable(v, "spec.completionMode", get(spec, "completionMode"),
				  get(ospec, "completionMode"));
	} else if (streq(kind, "Service")) {
		const cJSON *ocip = get(ospec, "clusterIP"), *ncip = get(spec, "clusterIP");
		const cJSON *type = get(spec, "type");
		bool ext = cJSON_IsString(type) && streq(type->valuestring, "ExternalName");
		if (cJSON_IsString(ocip) && *ocip->valuestring && !ext && ncip &&
		    !(cJSON_IsString(ncip) && !*ncip->valuestring))
			immutable(v, "spec.clusterIP", ncip, ocip);
	} else if (streq(kind, "ConfigMap") || streq(kind, "Secret")) {
		if (cJSON_IsTrue(get(old, "immutable"))) {
			if (!cJSON_IsTrue(get(obj, "immutable")))
				v_forbidden(v, "immutable",
					    "field is immutable when `immutable` is set");
			if (!same(get(obj, "data"), get(old, "data")))
				v_forbidden(v, "data", "field is immutable when `immutable` is set");
			if (!same(get(obj, "binaryData"), get(old, "binaryData")))
				v_forbidden(v, "binaryData",
					    "field is immutable when `immutable` is set");
		}
		if (streq(kind, "Secret") && get(old, "type"))
			immutable(v, "type", get(obj, "type"), get(old, "type"));
	} else if (streq(kind, "Node")) {
		const cJSON *oc = get(ospec, "podCIDR");
		if (cJSON_IsString(oc) && *oc->valuestring && !same(get(spec, "podCIDR"), oc))
			v_forbidden(v, "spec.podCIDR",
				    "node updates may not change podCIDR except from \"\" to valid");
	}
}

/* ---------- entry ---------- */

int validate_object(const char *kind, const cJSON *obj, const cJSON *old, struct err *e)
{
	struct err tmp = { 0 };
	struct vctx v = { .e = e ? e : &tmp };
	const char *name = "";
	enum scope scope = NAMESPACED;
	enum name_rule rule = NAME_SUBDOMAIN;

	if (v.e)
		v.e->ncauses = 0;
	if (!kind)
		kind = "";
	if (!cJSON_IsObject(obj)) {
		vc(&v, "FieldValueTypeInvalid", "", "Invalid value: the object must be a JSON "
						   "object");
		goto out;
	}
	if (streq(kind, "Namespace")) {
		scope = CLUSTER;
		rule = NAME_LABEL;
	} else if (streq(kind, "Node")) {
		scope = CLUSTER;
	} else if (streq(kind, "Service")) {
		rule = NAME_1035;
	}
	chk_meta(&v, obj, scope, rule);

	if (streq(kind, "Pod"))
		chk_pod(&v, obj);
	else if (streq(kind, "Deployment"))
		chk_deployment(&v, obj, false);
	else if (streq(kind, "ReplicaSet"))
		chk_deployment(&v, obj, true);
	else if (streq(kind, "Job"))
		chk_job(&v, obj);
	else if (streq(kind, "DaemonSet"))
		chk_daemonset(&v, obj);
	else if (streq(kind, "ControllerRevision"))
		chk_controllerrevision(&v, obj);
	else if (streq(kind, "PodDisruptionBudget"))
		chk_pdb(&v, obj);
	else if (streq(kind, "Service"))
		chk_service(&v, obj);
	else if (streq(kind, "ConfigMap"))
		chk_configmap(&v, obj);
	else if (streq(kind, "Secret"))
		chk_secret(&v, obj);
	else if (streq(kind, "Namespace"))
		chk_namespace(&v, obj);
	else if (streq(kind, "Node"))
		chk_node(&v, obj);
	else if (streq(kind, "Event"))
		chk_event(&v, obj);
	else if (streq(kind, "Endpoints"))
		chk_endpoints(&v, obj);
	if (old && cJSON_IsObject(old))
		chk_update(&v, kind, obj, old);
out:
	if (v.n == 0)
		return 0;
	{
		const cJSON *n = get(get(obj, "metadata"), "name");
		char msg[sizeof(v.e->message)];
		size_t o;
		int shown = v.e->ncauses;

		if (cJSON_IsString(n))
			name = n->valuestring;
		o = snprintf(msg, sizeof(msg), "%s \"%.64s\" is invalid: %s", kind, name,
			     v.n > 1 ? "[" : "");
		for (int i = 0; i < shown && o < sizeof(msg); i++)
			o += snprintf(msg + o, sizeof(msg) - o, "%s%s%s%s", i ? ", " : "",
				      v.e->causes[i].field, *v.e->causes[i].field ? ": " : "",
				      v.e->causes[i].message);
		if (v.n > shown && o < sizeof(msg))
			o += snprintf(msg + o, sizeof(msg) - o, ", and %d more", v.n - shown);
		if (v.n > 1 && o < sizeof(msg))
			snprintf(msg + o, sizeof(msg) - o, "]");
		return err_set(v.e, EINVAL, 422, "Invalid", "%s", msg);
	}
}
