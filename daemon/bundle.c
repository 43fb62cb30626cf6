// SPDX-License-Identifier: Apache-2.0
/* Pure OCI config generation from a pod spec. See bundle.h. */
#include <ctype.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/capability.h>
#include <sodium.h>

#include "api/quantity.h"
#include "daemon/bundle.h"
#include "lib/macro.h"

#define CFG_ERR "CreateContainerConfigError"
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const char *const bundle_default_caps[] = {
	"CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",	 "CAP_FOWNER",	       "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID",	   "CAP_SETUID",  "CAP_SETFCAP",       "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", NULL,
};

/* Syscalls the default profile refuses with EPERM unless the container holds `cap`. */
static const struct {
	const char *name;
	const char *cap; /* NULL: always refused */
} seccomp_deny[] = {
	{ "acct", "CAP_SYS_PACCT" },
	{ "add_key", NULL },
	{ "bpf", "CAP_SYS_ADMIN" },
	{ "clock_adjtime", "CAP_SYS_TIME" },
	{ "clock_settime", "CAP_SYS_TIME" },
	{ "settimeofday", "CAP_SYS_TIME" },
	{ "create_module", NULL },
	{ "delete_module", "CAP_SYS_MODULE" },
	{ "finit_module", "CAP_SYS_MODULE" },
	{ "init_module", "CAP_SYS_MODULE" },
	{ "get_kernel_syms", NULL },
	{ "query_module", NULL },
	{ "ioperm", "CAP_SYS_RAWIO" },
	{ "iopl", "CAP_SYS_RAWIO" },
	{ "kcmp", "CAP_SYS_PTRACE" },
	{ "process_vm_readv", "CAP_SYS_PTRACE" },
	{ "process_vm_writev", "CAP_SYS_PTRACE" },
	{ "kexec_file_load", "CAP_SYS_BOOT" },
	{ "kexec_load", "CAP_SYS_BOOT" },
	{ "reboot", "CAP_SYS_BOOT" },
	{ "keyctl", NULL },
	{ "request_key", NULL },
	{ "lookup_dcookie", "CAP_SYS_ADMIN" },
	{ "mount", "CAP_SYS_ADMIN" },
	{ "umount2", "CAP_SYS_ADMIN" },
	{ "fsopen", "CAP_SYS_ADMIN" },
	{ "fsconfig", "CAP_SYS_ADMIN" },
	{ "fsmount", "CAP_SYS_ADMIN" },
	{ "fspick", "CAP_SYS_ADMIN" },
	{ "move_mount", "CAP_SYS_ADMIN" },
	{ "open_tree", "CAP_SYS_ADMIN" },
	{ "pivot_root", "CAP_SYS_ADMIN" },
	{ "setns", "CAP_SYS_ADMIN" },
	{ "unshare", "CAP_SYS_ADMIN" },
	{ "quotactl", "CAP_SYS_ADMIN" },
	{ "swapon", "CAP_SYS_ADMIN" },
	{ "swapoff", "CAP_SYS_ADMIN" },
	{ "name_to_handle_at", "CAP_DAC_READ_SEARCH" },
	{ "open_by_handle_at", "CAP_DAC_READ_SEARCH" },
	{ "perf_event_open", "CAP_SYS_ADMIN" },
	{ "nfsservctl", NULL },
	{ "sysfs", NULL },
	{ "_sysctl", NULL },
	{ "uselib", NULL },
	{ "userfaultfd", NULL },
	{ "ustat", NULL },
	{ "vm86", NULL },
	{ "vm86old", NULL },
	{ "syslog", "CAP_SYSLOG" },
};

static const char *const masked_paths[] = {
	"/proc/acpi",	     "/proc/asound",	"/proc/kcore",	   "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi",	     "/sys/firmware",	"/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* ---- small JSON helpers ---- */

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jget(const cJSON *o, const char *key)
{
	return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* Tri-state boolean: -1 unset, 0 false, 1 true. */
static int jbool(const cJSON *o, const char *key)
{
	const cJSON *v = jget(o, key);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

static bool jint(const cJSON *o, const char *key, int64_t *ret)
{
	const cJSON *v = jget(o, key);

	if (!cJSON_IsNumber(v))
		return false;
	*ret = (int64_t)v->valuedouble;
	return true;
}

static int add_str_array(cJSON *parent, const char *key, const char *const *v, size_t n)
{
	cJSON *a = cJSON_AddArrayToObject(parent, key);

	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < n && v[i]; i++)
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(v[i])))
			return -ENOMEM;
	return 0;
}

/* ---- quantities (api/quantity.h), negative values refused ---- */

int bundle_quantity_milli(const char *s, int64_t *ret)
{
	int64_t v;
	int r;

	if (strempty(s))
		return -EINVAL;
	if ((r = quantity_parse_milli(s, &v)) < 0)
		return r;
	if (v < 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

int bundle_quantity_value(const char *s, int64_t *ret)
{
	int64_t v;
	int r;

	if (strempty(s))
		return -EINVAL;
	if ((r = quantity_parse_bytes(s, &v)) < 0)
		return r;
	if (v < 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* ---- environment ---- */

struct env {
	char **kv;     /* "NAME=value" */
	bool *from_pod; /* set by the pod (not the image): only these expand in $(VAR) */
	size_t n, cap;
	bool pod_phase; /* env_set() calls now come from the pod */
};

static void env_free(struct env *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->kv[i]);
	free(v->kv);
	free(v->from_pod);
}

static const char *env_get(const struct env *v, const char *name, size_t nlen, bool pod_only)
{
	for (size_t i = 0; i < v->n; i++)
		if ((!pod_only || v->from_pod[i]) && strncmp(v->kv[i], name, nlen) == 0 &&
		    v->kv[i][nlen] == '=')
			return v->kv[i] + nlen + 1;
	return NULL;
}

/* Set or replace, keeping first position (image order, then the pod's). */
static int env_set(struct env *v, const char *name, const char *value)
{
	size_t nlen = strlen(name);
	char *kv;

	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < v->n; i++)
		if (strncmp(v->kv[i], name, nlen) == 0 && v->kv[i][nlen] == '=') {
			free(v->kv[i]);
			v->kv[i] = kv;
			v->from_pod[i] = v->pod_phase;
			return 0;
		}
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		char **n = realloc(v->kv, cap * sizeof(*n));
		bool *f = n ? realloc(v->from_pod, cap * sizeof(*f)) : NULL;
		if (n)
			v->kv = n;
		if (!f) {
			free(kv);
			return -ENOMEM;
		}
		v->from_pod = f;
		v->cap = cap;
	}
	v->from_pod[v->n] = v->pod_phase;
	v->kv[v->n++] = kv;
	return 0;
}

/* Kubernetes $(VAR) expansion: defined names are replaced, $$ escapes, the rest kept as is. */
static char *env_expand(const struct env *v, const char *in)
{
	size_t cap = strlen(in) + 1, len = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
#define PUT(s, n)                                                                                  \
	do {                                                                                       \
		size_t _n = (n);                                                                   \
		if (len + _n + 1 > cap) {                                                          \
			cap = (len + _n + 1) * 2;                                                  \
			char *_o = realloc(out, cap);                                              \
			if (!_o) {                                                                 \
				free(out);                                                         \
				return NULL;                                                       \
			}                                                                          \
			out = _o;                                                                  \
		}                                                                                  \
		memcpy(out + len, (s), _n);                                                        \
		len += _n;                                                                         \
	} while (0)
	for (const char *p = in; *p;) {
		if (p[0] == '$' && p[1] == '$') {
			PUT("$", 1);
			p += 2;
		} else if (p[0] == '$' && p[1] == '(') {
			const char *close = strchr(p + 2, ')');
			const char *val = close ? env_get(v, p + 2, close - (p + 2), true) : NULL;
			if (val) {
				PUT(val, strlen(val));
				p = close + 1;
			} else {
				size_t n = close ? (size_t)(close + 1 - p) : strlen(p);
				PUT(p, n);
				p += n;
			}
		} else {
			PUT(p, 1);
			p++;
		}
	}
#undef PUT
	out[len] = 0;
	return out;
}

static bool env_name_valid(const char *s)
{
	if (strempty(s) || isdigit((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return false;
	return true;
}

static int field_ref(const struct bundle_params *p, const char *path, char **ret, struct err *e);

int bundle_object_key(const cJSON *obj, const char *kind, const char *key, char **ret,
		      size_t *ret_len)
{
	const char *v = jstr(jget(obj, "data"), key);
	bool b64 = streq(kind, "Secret");
	size_t cap, len;
	char *out;

	if (!v && b64)
		v = jstr(jget(obj, "stringData"), key), b64 = false; /* write-only, but harmless */
	if (!v && !b64 && (v = jstr(jget(obj, "binaryData"), key)))
		b64 = true;
	if (!v)
		return -ENOENT;
	if (!b64) {
		if (!(*ret = strdup(v)))
			return -ENOMEM;
		if (ret_len)
			*ret_len = strlen(v);
		return 0;
	}
	cap = strlen(v) + 1;
	if (!(out = malloc(cap)))
		return -ENOMEM;
	if (sodium_base642bin((unsigned char *)out, cap, v, strlen(v), "\r\n", &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) < 0) {
		free(out);
		return -EBADMSG;
	}
	out[len] = 0;
	*ret = out;
	if (ret_len)
		*ret_len = len;
	return 0;
}

static int object_key(const cJSON *obj, const char *kind, const char *key, char **ret)
{
	return bundle_object_key(obj, kind, key, ret, NULL);
}

int bundle_field_value(const cJSON *pod, const char *path, const char *pod_ip,
		       const char *host_ip, const char *node_name, char **ret)
{
	struct bundle_params p = { .pod = pod, .pod_ip = pod_ip, .host_ip = host_ip,
				   .node_name = node_name };
	return field_ref(&p, path, ret, NULL);
}

static int field_ref(const struct bundle_params *p, const char *path, char **ret, struct err *e)
{
	const cJSON *meta = jget(p->pod, "metadata"), *spec = jget(p->pod, "spec");
	const char *v = NULL;
	char key[256];

	if (streq(path, "metadata.name"))
		v = jstr(meta, "name");
	else if (streq(path, "metadata.namespace"))
		v = jstr(meta, "namespace");
	else if (streq(path, "metadata.uid"))
		v = jstr(meta, "uid");
	else if (streq(path, "spec.nodeName"))
		v = jstr(spec, "nodeName") ? jstr(spec, "nodeName") : p->node_name;
	else if (streq(path, "spec.serviceAccountName"))
		v = jstr(spec, "serviceAccountName");
	else if (streq(path, "status.podIP") || streq(path, "status.podIPs"))
		v = p->pod_ip;
	else if (streq(path, "status.hostIP") || streq(path, "status.hostIPs"))
		v = p->host_ip;
	else if (sscanf(path, "metadata.labels['%255[^']']", key) == 1)
		v = jstr(jget(meta, "labels"), key);
	else if (sscanf(path, "metadata.annotations['%255[^']']", key) == 1)
		v = jstr(jget(meta, "annotations"), key);
	else
		return err_set(e, EINVAL, 0, CFG_ERR, "unsupported fieldRef fieldPath \"%s\"",
			       path);
	return (*ret = strdup(v ? v : "")) ? 0 : -ENOMEM;
}

static int resource_field_ref(const cJSON *ctr, const cJSON *ref, char **ret, struct err *e)
{
	const char *res = jstr(ref, "resource"), *div = jstr(ref, "divisor");
	char which[16], name[32];
	const char *q;
	int64_t v, d = 1;
	bool cpu;

	if (!res || sscanf(res, "%15[a-z].%31s", which, name) != 2 ||
	    (!streq(which, "limits") && !streq(which, "requests")) ||
	    (!streq(name, "cpu") && !streq(name, "memory")))
		return err_set(e, EINVAL, 0, CFG_ERR, "unsupported resourceFieldRef \"%s\"",
			       res ? res : "");
	cpu = streq(name, "cpu");
	q = jstr(jget(jget(ctr, "resources"), which), name);
	if (!q && streq(which, "requests"))
		q = jstr(jget(jget(ctr, "resources"), "limits"), name);
	if (!q)
		return err_set(e, EINVAL, 0, CFG_ERR,
			       "resourceFieldRef %s: the container sets no value (node allocatable "
			       "is not exposed)", res);
	if (cpu) {
		if (bundle_quantity_milli(q, &v) < 0 || (div && bundle_quantity_milli(div, &d) < 0))
			return err_set(e, EINVAL, 0, CFG_ERR, "bad quantity in %s", res);
		if (!div)
			d = 1000;
	} else if (bundle_quantity_value(q, &v) < 0 || (div && bundle_quantity_value(div, &d) < 0))
		return err_set(e, EINVAL, 0, CFG_ERR, "bad quantity in %s", res);
	if (d <= 0)
		return err_set(e, EINVAL, 0, CFG_ERR, "bad divisor in %s", res);
	return asprintf(ret, "%lld", (long long)((v + d - 1) / d)) < 0 ? -ENOMEM : 0;
}

static int lookup_key(const struct bundle_params *p, const char *kind, const cJSON *ref,
		      char **ret, struct err *e)
{
	const char *name = jstr(ref, "name"), *key = jstr(ref, "key");
	const char *ns = jstr(jget(p->pod, "metadata"), "namespace");
	bool optional = jbool(ref, "optional") == 1;
	const cJSON *obj;
	int r;

	if (!name || !key)
		return err_set(e, EINVAL, 0, CFG_ERR, "%s key reference needs name and key", kind);
	obj = p->get_object ? p->get_object(p->object_ud, kind, ns ? ns : "default", name) : NULL;
	if (!obj) {
		if (optional)
			return 0;
		return err_set(e, ENOENT, 0, CFG_ERR, "%s \"%s\" not found",
			       streq(kind, "Secret") ? "secret" : "configmap", name);
	}
	r = object_key(obj, kind, key, ret);
	if (r == -ENOENT) {
		if (optional)
			return 0;
		return err_set(e, ENOENT, 0, CFG_ERR, "couldn't find key %s in %s %s/%s", key,
			       kind, ns ? ns : "default", name);
	}
	if (r < 0)
		return err_set(e, -r, 0, CFG_ERR, "%s %s key %s: %s", kind, name, key,
			       strerror(-r));
	return 0;
}

static int env_from(const struct bundle_params *p, const cJSON *ctr, struct env *env,
		    struct err *e)
{
	const cJSON *src;
	const char *ns = jstr(jget(p->pod, "metadata"), "namespace");

	cJSON_ArrayForEach(src, jget(ctr, "envFrom")) {
		const char *prefix = jstr(src, "prefix");
		const cJSON *ref = jget(src, "configMapRef");
		const char *kind = "ConfigMap";
		const cJSON *obj, *kv;
		const char *name;

		if (!ref) {
			ref = jget(src, "secretRef");
			kind = "Secret";
		}
		name = jstr(ref, "name");
		if (!name)
			return err_set(e, EINVAL, 0, CFG_ERR, "envFrom entry needs a name");
		obj = p->get_object ? p->get_object(p->object_ud, kind, ns ? ns : "default", name) : NULL;
		if (!obj) {
			if (jbool(ref, "optional") == 1)
				continue;
			return err_set(e, ENOENT, 0, CFG_ERR, "%s \"%s\" not found",
				       streq(kind, "Secret") ? "secret" : "configmap", name);
		}
		cJSON_ArrayForEach(kv, jget(obj, "data")) {
			_cleanup_free_ char *val = NULL, *full = NULL;
			int r;
			if (asprintf(&full, "%s%s", prefix ? prefix : "", kv->string) < 0)
				return -ENOMEM;
			if (!env_name_valid(full))
				continue; /* Kubernetes skips these with an event */
			r = object_key(obj, kind, kv->string, &val);
			if (r < 0)
				return err_set(e, -r, 0, CFG_ERR, "%s %s key %s: %s", kind, name,
					       kv->string, strerror(-r));
			r = env_set(env, full, val);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int build_env(const struct bundle_params *p, const cJSON *ctr, const char *hostname,
		     struct env *env, struct err *e)
{
	const cJSON *it;
	int r;

	cJSON_ArrayForEach(it, jget(p->image_config, "Env")) {
		const char *kv = cJSON_IsString(it) ? it->valuestring : NULL;
		const char *eq = kv ? strchr(kv, '=') : NULL;
		_cleanup_free_ char *name = NULL;
		if (!eq)
			continue;
		if (!(name = strndup(kv, eq - kv)))
			return -ENOMEM;
		if ((r = env_set(env, name, eq + 1)) < 0)
			return r;
	}
	if (!env_get(env, "PATH", 4, false) && (r = env_set(env, "PATH", DEFAULT_PATH + 5)) < 0)
		return r;
	if ((r = env_set(env, "HOSTNAME", hostname)) < 0)
		return r;
	env->pod_phase = true;

	if ((r = env_from(p, ctr, env, e)) < 0)
		return r;

	cJSON_ArrayForEach(it, jget(ctr, "env")) {
		const char *name = jstr(it, "name"), *value = jstr(it, "value");
		const cJSON *vf = jget(it, "valueFrom");
		_cleanup_free_ char *val = NULL;

		if (!env_name_valid(name))
			return err_set(e, EINVAL, 0, CFG_ERR, "invalid environment variable name "
				       "\"%s\"", name ? name : "");
		if (vf) {
			const cJSON *ref;
			if ((ref = jget(vf, "configMapKeyRef")))
				r = lookup_key(p, "ConfigMap", ref, &val, e);
			else if ((ref = jget(vf, "secretKeyRef")))
				r = lookup_key(p, "Secret", ref, &val, e);
			else if ((ref = jget(vf, "fieldRef")))
				r = field_ref(p, jstr(ref, "fieldPath") ? jstr(ref, "fieldPath") : "",
					      &val, e);
			else if ((ref = jget(vf, "resourceFieldRef")))
				r = resource_field_ref(ctr, ref, &val, e);
			else
				r = err_set(e, EINVAL, 0, CFG_ERR,
					    "env %s: unsupported valueFrom", name);
			if (r < 0)
				return r;
			if (!val)
				continue; /* optional and missing */
		} else if (!(val = env_expand(env, value ? value : ""))) {
			return -ENOMEM;
		}
		if ((r = env_set(env, name, val)) < 0)
			return r;
	}
	return 0;
}

/* ---- process args ---- */

static int build_args(const struct bundle_params *p, const cJSON *ctr, const struct env *env,
		      cJSON *process, struct err *e)
{
	const cJSON *cmd = jget(ctr, "command"), *args = jget(ctr, "args");
	const cJSON *ep = jget(p->image_config, "Entrypoint"), *icmd = jget(p->image_config, "Cmd");
	const cJSON *lists[2], *it;
	cJSON *out = cJSON_AddArrayToObject(process, "args");

	if (!out)
		return -ENOMEM;
	/* Kubernetes: command replaces Entrypoint and drops Cmd; args replaces Cmd. */
	if (cJSON_GetArraySize(cmd) > 0) {
		lists[0] = cmd;
		lists[1] = args;
	} else {
		lists[0] = ep;
		lists[1] = cJSON_GetArraySize(args) > 0 ? args : icmd;
	}
	for (int l = 0; l < 2; l++)
		cJSON_ArrayForEach(it, lists[l]) {
			bool from_pod = lists[l] == cmd || lists[l] == args;
			char *s;
			if (!cJSON_IsString(it))
				return err_set(e, EINVAL, 0, CFG_ERR, "command/args must be strings");
			s = from_pod ? env_expand(env, it->valuestring) : strdup(it->valuestring);
			if (!s || !cJSON_AddItemToArray(out, cJSON_CreateString(s))) {
				free(s);
				return -ENOMEM;
			}
			free(s);
		}
	if (cJSON_GetArraySize(out) == 0)
		return err_set(e, EINVAL, 0, CFG_ERR,
			       "no command specified: the container sets no command and the image "
			       "has no Entrypoint or Cmd");
	return 0;
}

/* ---- user ---- */

static int parse_id(const struct bundle_params *p, bool group, const char *s, uint32_t *id,
		    uint32_t *gid, struct err *e)
{
	char *end;
	unsigned long v;
	int r;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s && !*end && !errno && v <= UINT32_MAX) {
		*id = v;
		return 0;
	}
	r = p->get_id ? p->get_id(p->id_ud, group, s, id, gid) : -ENOENT;
	if (r < 0)
		return err_set(e, -r, 0, CFG_ERR, "unable to find %s %s in the image",
			       group ? "group" : "user", s);
	return 1; /* resolved by name: *gid is the primary group for users */
}

static int build_user(const struct bundle_params *p, const cJSON *psc, const cJSON *csc,
		      cJSON *process, struct err *e)
{
	const char *iuser = jstr(p->image_config, "User");
	uint32_t uid = 0, gid = 0, tmp;
	int64_t v;
	bool have_uid = false, have_gid = false;
	cJSON *user, *extra = NULL;
	const cJSON *it;
	int r;

	if (!strempty(iuser)) {
		char buf[256], *colon;
		snprintf(buf, sizeof(buf), "%s", iuser);
		colon = strchr(buf, ':');
		if (colon)
			*colon++ = 0;
		r = parse_id(p, false, buf, &uid, &tmp, e);
		if (r < 0)
			return r;
		have_uid = true;
		if (r == 1) {
			gid = tmp;
			have_gid = true;
		}
		if (colon) {
			if ((r = parse_id(p, true, colon, &gid, &tmp, e)) < 0)
				return r;
			have_gid = true;
		}
	}
	if (jint(csc, "runAsUser", &v) || jint(psc, "runAsUser", &v)) {
		if (v < 0 || v > UINT32_MAX)
			return err_set(e, EINVAL, 0, CFG_ERR, "runAsUser out of range");
		uid = v;
		have_uid = true;
	}
	if (jint(csc, "runAsGroup", &v) || jint(psc, "runAsGroup", &v)) {
		if (v < 0 || v > UINT32_MAX)
			return err_set(e, EINVAL, 0, CFG_ERR, "runAsGroup out of range");
		gid = v;
		have_gid = true;
	}
	(void)have_gid;
	if ((jbool(csc, "runAsNonRoot") == 1 ||
	     (jbool(csc, "runAsNonRoot") == -1 && jbool(psc, "runAsNonRoot") == 1))) {
		if (!have_uid && !strempty(iuser))
			return err_set(e, EPERM, 0, CFG_ERR, "container has runAsNonRoot and image "
				       "has non-numeric user (%s), cannot verify user is non-root",
				       iuser);
		if (uid == 0)
			return err_set(e, EPERM, 0, CFG_ERR,
				       "container has runAsNonRoot and image will run as root");
	}
	if (!(user = cJSON_AddObjectToObject(process, "user")))
		return -ENOMEM;
	cJSON_AddNumberToObject(user, "uid", uid);
	cJSON_AddNumberToObject(user, "gid", gid);
	if (jint(psc, "fsGroup", &v)) {
		if (!(extra = cJSON_AddArrayToObject(user, "additionalGids")))
			return -ENOMEM;
		cJSON_AddItemToArray(extra, cJSON_CreateNumber(v));
	}
	cJSON_ArrayForEach(it, jget(psc, "supplementalGroups")) {
		if (!cJSON_IsNumber(it))
			continue;
		if (!extra && !(extra = cJSON_AddArrayToObject(user, "additionalGids")))
			return -ENOMEM;
		cJSON_AddItemToArray(extra, cJSON_CreateNumber(it->valuedouble));
	}
	return 0;
}

/* ---- capabilities ---- */

/* "NET_ADMIN" / "CAP_NET_ADMIN" / "net_admin" -> cap value, validated by libcap. */
static int cap_parse(const char *name, cap_value_t *ret)
{
	char buf[64];
	size_t i, off = 0;

	if (strncasecmp(name, "CAP_", 4) != 0)
		off = snprintf(buf, sizeof(buf), "cap_");
	for (i = 0; name[i] && off + i + 1 < sizeof(buf); i++)
		buf[off + i] = tolower((unsigned char)name[i]);
	buf[off + i] = 0;
	if (cap_from_name(buf, ret) < 0 || *ret < 0 || *ret > CAP_LAST_CAP)
		return -EINVAL;
	return 0;
}

static int cap_upper_name(cap_value_t c, char *buf, size_t len)
{
	char *n = cap_to_name(c);

	if (!n)
		return -ENOMEM;
	snprintf(buf, len, "%s", n);
	cap_free(n);
	for (char *q = buf; *q; q++)
		*q = toupper((unsigned char)*q);
	return strncmp(buf, "CAP_", 4) == 0 ? 0 : -EINVAL;
}

static int build_caps(const cJSON *csc, bool privileged, bool set[CAP_LAST_CAP + 1],
		      cJSON *process, struct err *e)
{
	const cJSON *caps = jget(csc, "capabilities"), *it;
	const char *sets[] = { "bounding", "effective", "permitted" };
	cJSON *c;

	memset(set, 0, sizeof(bool) * (CAP_LAST_CAP + 1));
	if (privileged) {
		for (int i = 0; i <= CAP_LAST_CAP; i++)
			set[i] = true;
	} else {
		for (int i = 0; bundle_default_caps[i]; i++) {
			cap_value_t v;
			if (cap_parse(bundle_default_caps[i], &v) == 0)
				set[v] = true;
		}
		/* Kubernetes applies drop first, then add. */
		for (int pass = 0; pass < 2; pass++)
			cJSON_ArrayForEach(it, jget(caps, pass == 0 ? "drop" : "add")) {
				cap_value_t v;
				if (!cJSON_IsString(it))
					return err_set(e, EINVAL, 0, CFG_ERR,
						       "capability names must be strings");
				if (streq(it->valuestring, "ALL") ||
				    streq(it->valuestring, "all")) {
					for (int i = 0; i <= CAP_LAST_CAP; i++)
						set[i] = pass == 1;
					continue;
				}
				if (cap_parse(it->valuestring, &v) < 0)
					return err_set(e, EINVAL, 0, CFG_ERR,
						       "unknown capability \"%s\"",
						       it->valuestring);
				set[v] = pass == 1;
			}
	}
	if (!(c = cJSON_AddObjectToObject(process, "capabilities")))
		return -ENOMEM;
	for (size_t s = 0; s < ARRAY_SIZE(sets); s++) {
		cJSON *a = cJSON_AddArrayToObject(c, sets[s]);
		if (!a)
			return -ENOMEM;
		for (int i = 0; i <= CAP_LAST_CAP; i++) {
			char name[64];
			if (!set[i])
				continue;
			if (cap_upper_name(i, name, sizeof(name)) < 0)
				continue;
			cJSON_AddItemToArray(a, cJSON_CreateString(name));
		}
	}
	return 0;
}

static int build_seccomp(const bool caps[CAP_LAST_CAP + 1], cJSON *linux_)
{
	static const char *const arches[] = { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" };
	cJSON *sc = cJSON_AddObjectToObject(linux_, "seccomp"), *rules, *rule, *names;

	if (!sc)
		return -ENOMEM;
	cJSON_AddStringToObject(sc, "defaultAction", "SCMP_ACT_ALLOW");
	if (add_str_array(sc, "architectures", arches, ARRAY_SIZE(arches)) < 0)
		return -ENOMEM;
	rules = cJSON_AddArrayToObject(sc, "syscalls");
	rule = cJSON_CreateObject();
	if (!rules || !rule || !cJSON_AddItemToArray(rules, rule))
		return -ENOMEM;
	names = cJSON_AddArrayToObject(rule, "names");
	cJSON_AddStringToObject(rule, "action", "SCMP_ACT_ERRNO");
	cJSON_AddNumberToObject(rule, "errnoRet", EPERM);
	for (size_t i = 0; i < ARRAY_SIZE(seccomp_deny); i++) {
		cap_value_t v;
		if (seccomp_deny[i].cap && cap_parse(seccomp_deny[i].cap, &v) == 0 && caps[v])
			continue;
		/* bpf and perf_event_open are also allowed by their narrower capabilities */
		if (streq(seccomp_deny[i].name, "bpf") && caps[CAP_BPF])
			continue;
		if (streq(seccomp_deny[i].name, "perf_event_open") && caps[CAP_PERFMON])
			continue;
		cJSON_AddItemToArray(names, cJSON_CreateString(seccomp_deny[i].name));
	}
	return 0;
}

/* ---- resources ---- */

static int build_resources(const cJSON *ctr, bool privileged, cJSON *linux_, struct err *e)
{
	const cJSON *res = jget(ctr, "resources");
	const cJSON *lim = jget(res, "limits"), *req = jget(res, "requests");
	const char *cpu_lim = jstr(lim, "cpu"), *cpu_req = jstr(req, "cpu");
	const char *mem_lim = jstr(lim, "memory");
	cJSON *r = cJSON_AddObjectToObject(linux_, "resources"), *cpu, *dev, *d;
	int64_t milli;

	if (!r || !(cpu = cJSON_AddObjectToObject(r, "cpu")))
		return -ENOMEM;
	/* Kubernetes: a limit without a request means request = limit; no request: 2 shares. */
	if (!cpu_req)
		cpu_req = cpu_lim;
	if (cpu_req) {
		if (bundle_quantity_milli(cpu_req, &milli) < 0)
			return err_set(e, EINVAL, 0, CFG_ERR, "invalid cpu request \"%s\"", cpu_req);
		int64_t shares = milli * 1024 / 1000;
		cJSON_AddNumberToObject(cpu, "shares", shares < 2 ? 2 : shares > 262144 ? 262144
										      : shares);
	} else {
		cJSON_AddNumberToObject(cpu, "shares", 2);
	}
	if (cpu_lim) {
		if (bundle_quantity_milli(cpu_lim, &milli) < 0 || milli == 0)
			return err_set(e, EINVAL, 0, CFG_ERR, "invalid cpu limit \"%s\"", cpu_lim);
		int64_t quota = milli * 100000 / 1000;
		cJSON_AddNumberToObject(cpu, "quota", quota < 1000 ? 1000 : quota);
		cJSON_AddNumberToObject(cpu, "period", 100000);
	}
	if (mem_lim) {
		int64_t bytes;
		cJSON *mem;
		if (bundle_quantity_value(mem_lim, &bytes) < 0 || bytes <= 0)
			return err_set(e, EINVAL, 0, CFG_ERR, "invalid memory limit \"%s\"",
				       mem_lim);
		if (!(mem = cJSON_AddObjectToObject(r, "memory")))
			return -ENOMEM;
		cJSON_AddNumberToObject(mem, "limit", bytes);
	}
	if (!(dev = cJSON_AddArrayToObject(r, "devices")) || !(d = cJSON_CreateObject()))
		return -ENOMEM;
	cJSON_AddItemToArray(dev, d);
	/* crun adds the default devices (null, zero, tty, ...) on top of a deny-all */
	cJSON_AddBoolToObject(d, "allow", privileged);
	cJSON_AddStringToObject(d, "access", "rwm");
	return 0;
}

/* A request defaults to the limit (the API server's defaulting); true if req and lim are the
 * same quantity. Unparsable quantities count as different (build_resources refuses them). */
static bool qos_req_is_lim(const char *res, const char *req, const char *lim)
{
	int64_t a, b;

	if (!req)
		return true;
	if (streq(res, "cpu"))
		return bundle_quantity_milli(req, &a) == 0 && bundle_quantity_milli(lim, &b) == 0 &&
		       a == b;
	return bundle_quantity_value(req, &a) == 0 && bundle_quantity_value(lim, &b) == 0 && a == b;
}

/* kubelet's GetContainerOOMScoreAdjust (pkg/kubelet/qos/policy.go): Guaranteed -997,
 * BestEffort 1000, Burstable 1000 - 1000 * memory request / node memory, kept within
 * [1000 + -997, 999] so it stays above Guaranteed and below BestEffort. */
static int qos_oom_score(const cJSON *pod, const cJSON *ctr, int64_t mem_capacity)
{
	const cJSON *spec = jget(pod, "spec"), *c;
	bool any = false, guaranteed = true;
	const char *lists[] = { "initContainers", "containers" };
	const char *req;
	int64_t mem = 0, adj;

	for (int l = 0; l < 2; l++)
		cJSON_ArrayForEach(c, jget(spec, lists[l])) {
			const cJSON *res = jget(c, "resources");
			for (int k = 0; k < 2; k++) {
				const char *n = k ? "memory" : "cpu";
				const char *lim = jstr(jget(res, "limits"), n);
				const char *rq = jstr(jget(res, "requests"), n);
				if (lim || rq)
					any = true;
				if (!lim || !qos_req_is_lim(n, rq, lim))
					guaranteed = false;
			}
		}
	if (!any)
		return 1000;
	if (guaranteed)
		return -997;
	req = jstr(jget(jget(ctr, "resources"), "requests"), "memory")
		  ?: jstr(jget(jget(ctr, "resources"), "limits"), "memory");
	if (req && (bundle_quantity_value(req, &mem) < 0 || mem < 0))
		mem = 0;
	if (mem_capacity <= 0)
		return 999; /* node memory unknown: as a request of 0 */
	if (mem > mem_capacity)
		mem = mem_capacity; /* no overflow in 1000 * mem */
	adj = 1000 - (1000 * mem) / mem_capacity;
	if (adj < 1000 - 997)
		return 1000 - 997;
	return adj >= 1000 ? 999 : (int)adj;
}

/* ---- mounts ---- */

static int add_mount(cJSON *mounts, const char *dst, const char *type, const char *src,
		     const char *const *opts)
{
	cJSON *m = cJSON_CreateObject();
	size_t n = 0;

	if (!m || !cJSON_AddItemToArray(mounts, m))
		return -ENOMEM;
	cJSON_AddStringToObject(m, "destination", dst);
	cJSON_AddStringToObject(m, "type", type);
	cJSON_AddStringToObject(m, "source", src);
	while (opts && opts[n])
		n++;
	return add_str_array(m, "options", opts, n);
}

static bool subpath_valid(const char *s)
{
	if (s[0] == '/')
		return false;
	for (const char *p = s; p;) {
		if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == 0))
			return false;
		p = strchr(p, '/');
		if (p)
			p++;
	}
	return true;
}

static const cJSON *find_volume(const cJSON *pod, const char *name)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, jget(jget(pod, "spec"), "volumes")) {
		const char *n = jstr(v, "name");
		if (n && streq(n, name))
			return v;
	}
	return NULL;
}

static int build_volume_mounts(const struct bundle_params *p, const cJSON *ctr, cJSON *mounts,
			       struct err *e)
{
	const cJSON *vm;

	cJSON_ArrayForEach(vm, jget(ctr, "volumeMounts")) {
		const char *name = jstr(vm, "name"), *dst = jstr(vm, "mountPath");
		const char *sub = jstr(vm, "subPath");
		const cJSON *vol;
		_cleanup_free_ char *src = NULL;
		bool ro = jbool(vm, "readOnly") == 1;
		int r;

		if (!name || !dst || dst[0] != '/')
			return err_set(e, EINVAL, 0, CFG_ERR,
				       "volumeMount needs a name and an absolute mountPath");
		vol = find_volume(p->pod, name);
		if (!vol)
			return err_set(e, ENOENT, 0, CFG_ERR, "volumeMount %s: no volume named %s",
				       dst, name);
		if (jget(vol, "hostPath")) {
			const char *hp = jstr(jget(vol, "hostPath"), "path");
			if (!hp || hp[0] != '/')
				return err_set(e, EINVAL, 0, CFG_ERR,
					       "volume %s: hostPath.path must be absolute", name);
			src = strdup(hp);
		} else if (jget(vol, "emptyDir") || jget(vol, "configMap") || jget(vol, "secret") ||
			   jget(vol, "projected") || jget(vol, "downwardAPI")) {
			if (!jget(vol, "emptyDir"))
				ro = true; /* kubelet mounts these read-only */
			if (asprintf(&src, "%s/volumes/%s", p->pod_dir, name) < 0)
				src = NULL;
		} else {
			return err_set(e, EINVAL, 0, CFG_ERR,
				       "volume %s: unsupported volume source (supported: emptyDir, "
				       "hostPath, configMap, secret, projected, downwardAPI)", name);
		}
		if (!src)
			return -ENOMEM;
		if (!strempty(sub)) {
			char *s2;
			if (!subpath_valid(sub))
				return err_set(e, EINVAL, 0, CFG_ERR,
					       "volumeMount %s: subPath \"%s\" must be relative "
					       "and must not contain '..'", dst, sub);
			if (asprintf(&s2, "%s/%s", src, sub) < 0)
				return -ENOMEM;
			free(src);
			src = s2;
		}
		const char *opts[] = { "rbind", "rprivate", ro ? "ro" : NULL, NULL };
		if ((r = add_mount(mounts, dst, "bind", src, opts)) < 0)
			return r;
	}
	return 0;
}

static int build_mounts(const struct bundle_params *p, const cJSON *ctr, bool privileged,
			cJSON *spec, struct err *e)
{
	cJSON *m = cJSON_AddArrayToObject(spec, "mounts");
	const char *const proc_o[] = { "nosuid", "noexec", "nodev", NULL };
	const char *const dev_o[] = { "nosuid", "strictatime", "mode=755", "size=65536k", NULL };
	const char *const pts_o[] = { "nosuid", "noexec", "newinstance", "ptmxmode=0666",
				      "mode=0620", "gid=5", NULL };
	const char *const shm_o[] = { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k",
				      NULL };
	const char *const mq_o[] = { "nosuid", "noexec", "nodev", NULL };
	const char *const sys_o[] = { "nosuid", "noexec", "nodev", privileged ? "rw" : "ro", NULL };
	const char *const cg_o[] = { "nosuid", "noexec", "nodev", "relatime",
				     privileged ? "rw" : "ro", NULL };
	const char *const bind_o[] = { "rbind", "rprivate", NULL };
	const char *const bind_ro[] = { "rbind", "rprivate", "ro", NULL };
	int r;

	if (!m)
		return -ENOMEM;
	if ((r = add_mount(m, "/proc", "proc", "proc", proc_o)) < 0 ||
	    (r = add_mount(m, "/dev", "tmpfs", "tmpfs", dev_o)) < 0 ||
	    (r = add_mount(m, "/dev/pts", "devpts", "devpts", pts_o)) < 0)
		return r;
	if (p->shm_path)
		r = add_mount(m, "/dev/shm", "bind", p->shm_path, bind_o);
	else
		r = add_mount(m, "/dev/shm", "tmpfs", "shm", shm_o);
	if (r < 0 || (r = add_mount(m, "/dev/mqueue", "mqueue", "mqueue", mq_o)) < 0 ||
	    (r = add_mount(m, "/sys", "sysfs", "sysfs", sys_o)) < 0 ||
	    (r = add_mount(m, "/sys/fs/cgroup", "cgroup", "cgroup", cg_o)) < 0)
		return r < 0 ? r : -ENOMEM;
	if (p->hosts_path && (r = add_mount(m, "/etc/hosts", "bind", p->hosts_path, bind_o)) < 0)
		return r;
	if (p->hostname_path &&
	    (r = add_mount(m, "/etc/hostname", "bind", p->hostname_path, bind_o)) < 0)
		return r;
	if (p->resolv_path &&
	    (r = add_mount(m, "/etc/resolv.conf", "bind", p->resolv_path, bind_ro)) < 0)
		return r;
	if (p->termination_log_path) {
		const char *tmp = jstr(ctr, "terminationMessagePath");
		if ((r = add_mount(m, tmp ? tmp : "/dev/termination-log", "bind",
				   p->termination_log_path, bind_o)) < 0)
			return r;
	}
	return build_volume_mounts(p, ctr, m, e);
}

static int build_namespaces(const struct bundle_params *p, cJSON *linux_)
{
	const struct {
		const char *type, *path;
	} ns[] = {
		{ "pid", NULL },	     { "mount", NULL },	       { "cgroup", NULL },
		{ "network", p->netns_path }, { "ipc", p->ipcns_path }, { "uts", p->utsns_path },
	};
	cJSON *a = cJSON_AddArrayToObject(linux_, "namespaces");

	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(a, o))
			return -ENOMEM;
		cJSON_AddStringToObject(o, "type", ns[i].type);
		if (ns[i].path)
			cJSON_AddStringToObject(o, "path", ns[i].path);
	}
	return 0;
}

const cJSON *bundle_container(const cJSON *pod, bool init, int index)
{
	const cJSON *list = jget(jget(pod, "spec"), init ? "initContainers" : "containers");

	return index >= 0 ? cJSON_GetArrayItem(list, index) : NULL;
}

int bundle_cgroup_path(const char *parent, const char *pod_uid, const char *container, char *buf,
		       size_t len)
{
	int n;

	while (*parent == '/')
		parent++;
	n = snprintf(buf, len, "/%s/pod%s/%s", parent, pod_uid, container);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int bundle_config_build(const struct bundle_params *p, cJSON **ret, struct err *e)
{
	_cleanup_json_ cJSON *spec = NULL;
	_cleanup_(env_free) struct env env = { 0 };
	const cJSON *ctr = bundle_container(p->pod, p->init, p->index);
	const cJSON *meta = jget(p->pod, "metadata"), *pspec = jget(p->pod, "spec");
	const cJSON *psc = jget(pspec, "securityContext"), *csc = jget(ctr, "securityContext");
	const char *name = jstr(ctr, "name"), *podname = jstr(meta, "name");
	const char *hostname = jstr(pspec, "hostname") ? jstr(pspec, "hostname") : podname;
	const char *cwd, *sp_type;
	bool privileged = jbool(csc, "privileged") == 1;
	bool caps[CAP_LAST_CAP + 1];
	cJSON *process, *root, *linux_, *ann, *env_a;
	int r, oom;

	if (!ctr || !name || !podname)
		return err_set(e, EINVAL, 0, CFG_ERR, "pod has no %scontainer %d (or no name)",
			       p->init ? "init " : "", p->index);
	if (!p->rootfs || !p->pod_dir)
		return -EINVAL;
	if (!(spec = cJSON_CreateObject()))
		return -ENOMEM;
	cJSON_AddStringToObject(spec, "ociVersion", "1.0.2");

	if (!(process = cJSON_AddObjectToObject(spec, "process")))
		return -ENOMEM;
	cJSON_AddBoolToObject(process, "terminal", jbool(ctr, "tty") == 1);
	if ((r = build_user(p, psc, csc, process, e)) < 0)
		return r;
	if ((r = build_env(p, ctr, hostname, &env, e)) < 0)
		return r;
	if ((r = build_args(p, ctr, &env, process, e)) < 0)
		return r;
	if (!(env_a = cJSON_AddArrayToObject(process, "env")))
		return -ENOMEM;
	for (size_t i = 0; i < env.n; i++)
		cJSON_AddItemToArray(env_a, cJSON_CreateString(env.kv[i]));
	cwd = jstr(ctr, "workingDir");
	if (strempty(cwd))
		cwd = jstr(p->image_config, "WorkingDir");
	if (strempty(cwd))
		cwd = "/";
	if (cwd[0] != '/')
		return err_set(e, EINVAL, 0, CFG_ERR, "workingDir \"%s\" must be absolute", cwd);
	cJSON_AddStringToObject(process, "cwd", cwd);
	if ((r = build_caps(csc, privileged, caps, process, e)) < 0)
		return r;
	/* allowPrivilegeEscalation defaults to true in Kubernetes */
	cJSON_AddBoolToObject(process, "noNewPrivileges",
			      !privileged && jbool(csc, "allowPrivilegeEscalation") == 0);
	/* crun writes it to /proc/self/oom_score_adj before it drops capabilities (the container
	 * inherits it); going below the runtime's floor would fail with EACCES */
	oom = qos_oom_score(p->pod, ctr, p->memory_capacity);
	cJSON_AddNumberToObject(process, "oomScoreAdj",
				oom < p->oom_score_adj_floor ? p->oom_score_adj_floor : oom);

	if (!(root = cJSON_AddObjectToObject(spec, "root")))
		return -ENOMEM;
	cJSON_AddStringToObject(root, "path", p->rootfs);
	cJSON_AddBoolToObject(root, "readonly", jbool(csc, "readOnlyRootFilesystem") == 1);
	if (!p->utsns_path)
		cJSON_AddStringToObject(spec, "hostname", hostname);

	if ((r = build_mounts(p, ctr, privileged, spec, e)) < 0)
		return r;

	if (!(ann = cJSON_AddObjectToObject(spec, "annotations")))
		return -ENOMEM;
	cJSON_AddStringToObject(ann, "io.kubernetes.pod.name", podname);
	cJSON_AddStringToObject(ann, "io.kubernetes.pod.namespace",
				jstr(meta, "namespace") ? jstr(meta, "namespace") : "default");
	if (jstr(meta, "uid"))
		cJSON_AddStringToObject(ann, "io.kubernetes.pod.uid", jstr(meta, "uid"));
	cJSON_AddStringToObject(ann, "io.kubernetes.container.name", name);
	if (jbool(ctr, "stdin") == 1)
		cJSON_AddStringToObject(ann, BUNDLE_ANN_STDIN, "true");

	if (!(linux_ = cJSON_AddObjectToObject(spec, "linux")))
		return -ENOMEM;
	if ((r = build_namespaces(p, linux_)) < 0)
		return r;
	if (p->cgroup_path)
		cJSON_AddStringToObject(linux_, "cgroupsPath", p->cgroup_path);
	if ((r = build_resources(ctr, privileged, linux_, e)) < 0)
		return r;
	if (jget(psc, "sysctls")) {
		const cJSON *s;
		cJSON *o = cJSON_AddObjectToObject(linux_, "sysctl");
		if (!o)
			return -ENOMEM;
		cJSON_ArrayForEach(s, jget(psc, "sysctls")) {
			const char *n = jstr(s, "name"), *v = jstr(s, "value");
			if (n && v)
				cJSON_AddStringToObject(o, n, v);
		}
	}
	sp_type = jstr(jget(csc, "seccompProfile"), "type");
	if (!sp_type)
		sp_type = jstr(jget(psc, "seccompProfile"), "type");
	if (sp_type && streq(sp_type, "Localhost"))
		return err_set(e, EINVAL, 0, CFG_ERR,
			       "seccompProfile type Localhost is not supported");
	if (!privileged) {
		if ((!sp_type || !streq(sp_type, "Unconfined")) &&
		    (r = build_seccomp(caps, linux_)) < 0)
			return r;
		if ((r = add_str_array(linux_, "maskedPaths", masked_paths,
				       ARRAY_SIZE(masked_paths))) < 0 ||
		    (r = add_str_array(linux_, "readonlyPaths", readonly_paths,
				       ARRAY_SIZE(readonly_paths))) < 0)
			return r;
	}
	*ret = TAKE_PTR(spec);
	return 0;
}
