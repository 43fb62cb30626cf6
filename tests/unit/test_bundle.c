// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/bundle.h"
#include "lib/macro.h"

static const char *IMAGE_CFG = "{\"Entrypoint\":[\"/entry\"],\"Cmd\":[\"c1\",\"c2\"],"
			       "\"Env\":[\"PATH=/img/bin\",\"A=image\",\"B=image\"],"
			       "\"WorkingDir\":\"/img\",\"User\":\"app\"}";

static cJSON *objects; /* ConfigMaps and Secrets the lookup callback serves */

static const cJSON *get_object(void *ud, const char *kind, const char *ns, const char *name)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, objects) {
		const cJSON *m = cJSON_GetObjectItem(o, "metadata");
		if (streq(cJSON_GetObjectItem(o, "kind")->valuestring, kind) &&
		    streq(cJSON_GetObjectItem(m, "namespace")->valuestring, ns) &&
		    streq(cJSON_GetObjectItem(m, "name")->valuestring, name))
			return o;
	}
	return NULL;
}

static int get_id(void *ud, bool group, const char *name, uint32_t *id, uint32_t *gid)
{
	if (!group && streq(name, "app")) {
		*id = 1000;
		*gid = 1001;
		return 0;
	}
	if (group && streq(name, "staff")) {
		*id = 50;
		return 0;
	}
	return -ENOENT;
}

/* node memory and oomScoreAdj floor every build() uses */
static int64_t mem_capacity = 8LL << 30;
static int oom_floor = -1000;

/* Build config.json for containers[0] of the pod given as JSON text. */
static int build(const char *pod_json, const char *image_cfg, cJSON **ret, struct err *e)
{
	_cleanup_json_ cJSON *pod = cJSON_Parse(pod_json);
	_cleanup_json_ cJSON *img = image_cfg ? cJSON_Parse(image_cfg) : NULL;
	struct bundle_params p = {
		.pod = pod,
		.image_config = img,
		.rootfs = "/r/rootfs",
		.pod_dir = "/r/pod",
		.netns_path = "/run/netns/x",
		.ipcns_path = "/r/pod/ns/ipc",
		.utsns_path = "/r/pod/ns/uts",
		.hosts_path = "/r/pod/hosts",
		.resolv_path = "/r/pod/resolv.conf",
		.cgroup_path = "/shoal-n1/podU/c",
		.pod_ip = "10.244.0.5",
		.host_ip = "192.168.0.1",
		.node_name = "n1",
		.memory_capacity = mem_capacity,
		.oom_score_adj_floor = oom_floor,
		.get_object = get_object,
		.get_id = get_id,
	};

	assert_non_null(pod);
	return bundle_config_build(&p, ret, e);
}

#define POD(ctr, extra)                                                                           \
	"{\"metadata\":{\"name\":\"web\",\"namespace\":\"ns1\",\"uid\":\"U\"},"                   \
	"\"spec\":{\"nodeName\":\"n1\"" extra ",\"containers\":[{\"name\":\"c\",\"image\":\"x\"" ctr \
	"}]}}"

static char *args_str(const cJSON *cfg)
{
	static char buf[512];
	const cJSON *a;
	size_t o = 0;

	buf[0] = 0;
	cJSON_ArrayForEach(a, cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "process"), "args"))
		o += snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? " " : "", a->valuestring);
	return buf;
}

static const char *env_of(const cJSON *cfg, const char *name)
{
	const cJSON *a;
	size_t n = strlen(name);

	cJSON_ArrayForEach(a, cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "process"), "env"))
		if (strncmp(a->valuestring, name, n) == 0 && a->valuestring[n] == '=')
			return a->valuestring + n + 1;
	return NULL;
}

static bool has_string(const cJSON *arr, const char *s)
{
	const cJSON *a;

	cJSON_ArrayForEach(a, arr)
		if (cJSON_IsString(a) && streq(a->valuestring, s))
			return true;
	return false;
}

static const cJSON *mount_at(const cJSON *cfg, const char *dst)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, cJSON_GetObjectItem(cfg, "mounts"))
		if (streq(cJSON_GetObjectItem(m, "destination")->valuestring, dst))
			return m;
	return NULL;
}

static void test_args_rules(void **state)
{
	_cleanup_json_ cJSON *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	struct err e = { 0 };

	assert_int_equal(build(POD("", ""), IMAGE_CFG, &a, &e), 0);
	assert_string_equal(args_str(a), "/entry c1 c2");
	assert_int_equal(build(POD(",\"command\":[\"/bin/sh\"]", ""), IMAGE_CFG, &b, &e), 0);
	assert_string_equal(args_str(b), "/bin/sh"); /* command drops the image Cmd */
	assert_int_equal(build(POD(",\"args\":[\"x\",\"y\"]", ""), IMAGE_CFG, &c, &e), 0);
	assert_string_equal(args_str(c), "/entry x y");
	assert_int_equal(build(POD(",\"command\":[\"/bin/sh\"],\"args\":[\"-c\",\"echo $(A) $$(A) "
				   "$(NOPE)\"],\"env\":[{\"name\":\"A\",\"value\":\"v\"}]",
				   ""),
			       IMAGE_CFG, &d, &e),
			 0);
	assert_string_equal(args_str(d), "/bin/sh -c echo v $(A) $(NOPE)");
}

static void test_no_command(void **state)
{
	_cleanup_json_ cJSON *a = NULL;
	struct err e = { 0 };

	assert_int_equal(build(POD("", ""), "{\"Env\":[]}", &a, &e), -EINVAL);
	assert_string_equal(e.reason, "CreateContainerConfigError");
	assert_non_null(strstr(e.message, "no command"));
}

static void test_env(void **state)
{
	_cleanup_json_ cJSON *a = NULL;
	struct err e = { 0 };
	const char *env = ",\"command\":[\"x\"],\"env\":["
			  "{\"name\":\"B\",\"value\":\"pod\"},"
			  "{\"name\":\"C\",\"value\":\"$(B)-$(A)\"},"
			  "{\"name\":\"CM\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"cm\",\"key\":\"k\"}}},"
			  "{\"name\":\"SEC\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"pw\"}}},"
			  "{\"name\":\"OPT\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"nope\",\"key\":\"pw\",\"optional\":true}}},"
			  "{\"name\":\"PN\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}},"
			  "{\"name\":\"PNS\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.namespace\"}}},"
			  "{\"name\":\"IP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.podIP\"}}},"
			  "{\"name\":\"NODE\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"spec.nodeName\"}}},"
			  "{\"name\":\"UID\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.uid\"}}},"
			  "{\"name\":\"MEM\",\"valueFrom\":{\"resourceFieldRef\":{\"resource\":\"limits.memory\",\"divisor\":\"1Mi\"}}}],"
			  "\"envFrom\":[{\"prefix\":\"P_\",\"configMapRef\":{\"name\":\"cm\"}}],"
			  "\"resources\":{\"limits\":{\"memory\":\"64Mi\"}}";

	char pod[4096];
	snprintf(pod, sizeof(pod), POD("%s", ""), env);
	assert_int_equal(build(pod, IMAGE_CFG, &a, &e), 0);
	assert_string_equal(env_of(a, "PATH"), "/img/bin");
	assert_string_equal(env_of(a, "A"), "image");
	assert_string_equal(env_of(a, "B"), "pod");
	assert_string_equal(env_of(a, "C"), "pod-$(A)"); /* image env is not expandable */
	assert_string_equal(env_of(a, "CM"), "cmvalue");
	assert_string_equal(env_of(a, "P_k"), "cmvalue");
	assert_string_equal(env_of(a, "SEC"), "hunter2");
	assert_null(env_of(a, "OPT"));
	assert_string_equal(env_of(a, "PN"), "web");
	assert_string_equal(env_of(a, "PNS"), "ns1");
	assert_string_equal(env_of(a, "IP"), "10.244.0.5");
	assert_string_equal(env_of(a, "NODE"), "n1");
	assert_string_equal(env_of(a, "UID"), "U");
	assert_string_equal(env_of(a, "MEM"), "64");
	assert_string_equal(env_of(a, "HOSTNAME"), "web");
}

static void test_env_missing_ref(void **state)
{
	_cleanup_json_ cJSON *a = NULL;
	struct err e = { 0 };

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"env\":[{\"name\":\"X\",\"valueFrom\":"
				   "{\"configMapKeyRef\":{\"name\":\"gone\",\"key\":\"k\"}}}]",
				   ""),
			       NULL, &a, &e),
			 -ENOENT);
	assert_string_equal(e.reason, "CreateContainerConfigError");
	assert_string_equal(e.message, "configmap \"gone\" not found");
	memset(&e, 0, sizeof(e));
	assert_int_equal(build(POD(",\"command\":[\"x\"],\"env\":[{\"name\":\"X\",\"valueFrom\":"
				   "{\"configMapKeyRef\":{\"name\":\"cm\",\"key\":\"nokey\"}}}]",
				   ""),
			       NULL, &a, &e),
			 -ENOENT);
	assert_non_null(strstr(e.message, "couldn't find key nokey"));
}

static const cJSON *caps_set(const cJSON *cfg, const char *set)
{
	return cJSON_GetObjectItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "process"), "capabilities"), set);
}

static void test_caps(void **state)
{
	_cleanup_json_ cJSON *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	struct err e = { 0 };

	assert_int_equal(build(POD(",\"command\":[\"x\"]", ""), NULL, &a, &e), 0);
	assert_int_equal(cJSON_GetArraySize(caps_set(a, "bounding")), 14);
	assert_true(has_string(caps_set(a, "effective"), "CAP_NET_BIND_SERVICE"));
	assert_false(has_string(caps_set(a, "bounding"), "CAP_SYS_ADMIN"));
	assert_false(has_string(caps_set(a, "bounding"), "CAP_NET_ADMIN"));

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"securityContext\":{\"capabilities\":"
				   "{\"add\":[\"NET_ADMIN\",\"CAP_SYS_TIME\"],\"drop\":[\"NET_RAW\"]}}",
				   ""),
			       NULL, &b, &e),
			 0);
	assert_true(has_string(caps_set(b, "bounding"), "CAP_NET_ADMIN"));
	assert_true(has_string(caps_set(b, "permitted"), "CAP_SYS_TIME"));
	assert_false(has_string(caps_set(b, "bounding"), "CAP_NET_RAW"));
	assert_int_equal(cJSON_GetArraySize(caps_set(b, "bounding")), 15);

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"securityContext\":{\"capabilities\":"
				   "{\"drop\":[\"ALL\"],\"add\":[\"NET_BIND_SERVICE\"]}}",
				   ""),
			       NULL, &c, &e),
			 0);
	assert_int_equal(cJSON_GetArraySize(caps_set(c, "bounding")), 1);

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"securityContext\":{\"capabilities\":"
				   "{\"add\":[\"NET_WIZARD\"]}}",
				   ""),
			       NULL, &d, &e),
			 -EINVAL);
	assert_string_equal(e.message, "unknown capability \"NET_WIZARD\"");
}

static const cJSON *seccomp_names(const cJSON *cfg)
{
	const cJSON *sc = cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "linux"), "seccomp");
	return sc ? cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(sc, "syscalls"), 0),
					"names")
		  : NULL;
}

static void test_security(void **state)
{
	_cleanup_json_ cJSON *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	struct err e = { 0 };
	const cJSON *proc;

	assert_int_equal(build(POD(",\"command\":[\"x\"]", ""), NULL, &a, &e), 0);
	assert_true(has_string(seccomp_names(a), "kexec_load"));
	assert_true(has_string(seccomp_names(a), "init_module"));
	assert_true(has_string(seccomp_names(a), "bpf"));
	assert_true(has_string(seccomp_names(a), "mount"));
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "root"), "readonly")));
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "process"),
						      "noNewPrivileges")));
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "linux"), "maskedPaths"));

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"securityContext\":{\"capabilities\":"
				   "{\"add\":[\"SYS_ADMIN\"]},\"readOnlyRootFilesystem\":true,"
				   "\"allowPrivilegeEscalation\":false,\"runAsUser\":7}",
				   ",\"securityContext\":{\"runAsGroup\":8,\"fsGroup\":9}"),
			       IMAGE_CFG, &b, &e),
			 0);
	assert_false(has_string(seccomp_names(b), "bpf"));
	assert_false(has_string(seccomp_names(b), "mount"));
	assert_true(has_string(seccomp_names(b), "kexec_load"));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "root"), "readonly")));
	proc = cJSON_GetObjectItem(b, "process");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(proc, "noNewPrivileges")));
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(proc, "user"), "uid")->valueint, 7);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(proc, "user"), "gid")->valueint, 8);
	assert_string_equal(cJSON_GetObjectItem(proc, "cwd")->valuestring, "/img");

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"securityContext\":{\"privileged\":true}",
				   ""),
			       NULL, &c, &e),
			 0);
	assert_null(seccomp_names(c));
	assert_true(has_string(caps_set(c, "bounding"), "CAP_SYS_ADMIN"));
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "linux"), "maskedPaths"));

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"securityContext\":{\"runAsNonRoot\":true}",
				   ""),
			       NULL, &d, &e),
			 -EPERM);
	assert_non_null(strstr(e.message, "runAsNonRoot"));
}

static void test_user_from_image(void **state)
{
	_cleanup_json_ cJSON *a = NULL, *b = NULL, *c = NULL;
	struct err e = { 0 };
	const cJSON *u;

	assert_int_equal(build(POD("", ""), IMAGE_CFG, &a, &e), 0); /* User "app" -> 1000:1001 */
	u = cJSON_GetObjectItem(cJSON_GetObjectItem(a, "process"), "user");
	assert_int_equal(cJSON_GetObjectItem(u, "uid")->valueint, 1000);
	assert_int_equal(cJSON_GetObjectItem(u, "gid")->valueint, 1001);
	assert_int_equal(build(POD("", ""), "{\"Cmd\":[\"x\"],\"User\":\"12:staff\"}", &b, &e), 0);
	u = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "process"), "user");
	assert_int_equal(cJSON_GetObjectItem(u, "uid")->valueint, 12);
	assert_int_equal(cJSON_GetObjectItem(u, "gid")->valueint, 50);
	assert_int_equal(build(POD("", ""), "{\"Cmd\":[\"x\"],\"User\":\"ghost\"}", &c, &e), -ENOENT);
	assert_non_null(strstr(e.message, "unable to find user ghost"));
}

static void test_resources(void **state)
{
	_cleanup_json_ cJSON *a = NULL, *b = NULL, *c = NULL;
	struct err e = { 0 };
	const cJSON *r, *cpu;

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"resources\":{\"limits\":{\"cpu\":\"500m\","
				   "\"memory\":\"128Mi\"},\"requests\":{\"cpu\":\"250m\"}}",
				   ""),
			       NULL, &a, &e),
			 0);
	r = cJSON_GetObjectItem(cJSON_GetObjectItem(a, "linux"), "resources");
	cpu = cJSON_GetObjectItem(r, "cpu");
	assert_int_equal(cJSON_GetObjectItem(cpu, "shares")->valueint, 256);
	assert_int_equal(cJSON_GetObjectItem(cpu, "quota")->valueint, 50000);
	assert_int_equal(cJSON_GetObjectItem(cpu, "period")->valueint, 100000);
	assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "memory"), "limit")->valuedouble ==
		    134217728.0);
	/* Burstable; the memory request defaults to the limit: 1000 - 1000 * 128Mi / 8Gi */
	assert_int_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(a, "process"), "oomScoreAdj")->valueint, 985);

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"resources\":{\"limits\":{\"cpu\":\"2\","
				   "\"memory\":\"1G\"}}",
				   ""),
			       NULL, &b, &e),
			 0);
	r = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "linux"), "resources");
	cpu = cJSON_GetObjectItem(r, "cpu");
	assert_int_equal(cJSON_GetObjectItem(cpu, "shares")->valueint, 2048); /* request = limit */
	assert_int_equal(cJSON_GetObjectItem(cpu, "quota")->valueint, 200000);
	assert_int_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(b, "process"), "oomScoreAdj")->valueint, -997);

	assert_int_equal(build(POD(",\"command\":[\"x\"],\"resources\":{\"limits\":{\"memory\":"
				   "\"lots\"}}",
				   ""),
			       NULL, &c, &e),
			 -EINVAL);
	assert_string_equal(e.message, "invalid memory limit \"lots\"");
}

static int oom_adj(const char *resources)
{
	_cleanup_json_ cJSON *cfg = NULL;
	_cleanup_free_ char *pod = NULL;
	struct err e = {0};

	assert_true(asprintf(&pod, POD(",\"command\":[\"x\"]%s", ""), resources) > 0);
	assert_int_equal(build(pod, NULL, &cfg, &e), 0);
	return cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "process"), "oomScoreAdj")->valueint;
}

/* kubelet's GetContainerOOMScoreAdjust, limited by the runtime's floor */
static void test_oom_score_adj(void **state)
{
	/* BestEffort */
	assert_int_equal(oom_adj(""), 1000);
	/* Guaranteed: requests equal limits as quantities, not as strings */
	assert_int_equal(oom_adj(",\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},"
				 "\"requests\":{\"cpu\":\"1000m\",\"memory\":\"1024Mi\"}}"),
			 -997);
	/* Burstable: 1000 - 1000 * request / node memory */
	assert_int_equal(oom_adj(",\"resources\":{\"requests\":{\"memory\":\"4Gi\"}}"), 500);
	assert_int_equal(oom_adj(",\"resources\":{\"requests\":{\"memory\":\"1Gi\"},"
				 "\"limits\":{\"memory\":\"2Gi\"}}"),
			 875);
	/* at least 1000 + -997, above Guaranteed; at most 999, below BestEffort */
	assert_int_equal(oom_adj(",\"resources\":{\"requests\":{\"memory\":\"16Gi\"}}"), 3);
	assert_int_equal(oom_adj(",\"resources\":{\"requests\":{\"cpu\":\"1\"}}"), 999);
	assert_int_equal(oom_adj(",\"resources\":{\"requests\":{\"memory\":\"1\"}}"), 999);
	mem_capacity = 0; /* unknown node memory: as no request */
	assert_int_equal(oom_adj(",\"resources\":{\"requests\":{\"memory\":\"4Gi\"}}"), 999);
	mem_capacity = 8LL << 30;
	/* a runtime without CAP_SYS_RESOURCE cannot go below its own value */
	oom_floor = 0;
	assert_int_equal(oom_adj(",\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}"),
			 0);
	assert_int_equal(oom_adj(""), 1000);
	oom_floor = -1000;
}

static void test_quantity(void **state)
{
	int64_t v;

	assert_int_equal(bundle_quantity_milli("100m", &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(bundle_quantity_milli("0.5", &v), 0);
	assert_int_equal(v, 500);
	assert_int_equal(bundle_quantity_milli("1.0001", &v), 0);
	assert_int_equal(v, 1001); /* rounds up like Kubernetes' MilliValue */
	assert_int_equal(bundle_quantity_value("128Mi", &v), 0);
	assert_int_equal(v, 134217728);
	assert_int_equal(bundle_quantity_value("1e3", &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(bundle_quantity_value("2E", &v), 0);
	assert_int_equal(v, 2000000000000000000LL);
	assert_int_equal(bundle_quantity_value("1.5Gi", &v), 0);
	assert_int_equal(v, 1610612736);
	assert_int_equal(bundle_quantity_value("12Q", &v), -EINVAL);
	assert_int_equal(bundle_quantity_value("", &v), -EINVAL);
	assert_int_equal(bundle_quantity_value("-1", &v), -EINVAL);
}

static void test_mounts_and_namespaces(void **state)
{
	_cleanup_json_ cJSON *a = NULL, *b = NULL, *c = NULL;
	struct err e = { 0 };
	const cJSON *m, *ns;
	const char *vols = ",\"volumes\":[{\"name\":\"data\",\"emptyDir\":{}},"
			   "{\"name\":\"host\",\"hostPath\":{\"path\":\"/srv\"}},"
			   "{\"name\":\"cfg\",\"configMap\":{\"name\":\"cm\"}},"
			   "{\"name\":\"pvc\",\"persistentVolumeClaim\":{\"claimName\":\"x\"}}]";
	char pod[4096];

	snprintf(pod, sizeof(pod),
		 POD(",\"command\":[\"x\"],\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":"
		     "\"/data\"},{\"name\":\"host\",\"mountPath\":\"/h\",\"readOnly\":true,"
		     "\"subPath\":\"sub/dir\"},{\"name\":\"cfg\",\"mountPath\":\"/etc/cfg\"}]",
		     "%s"),
		 vols);
	assert_int_equal(build(pod, NULL, &a, &e), 0);
	m = mount_at(a, "/data");
	assert_string_equal(cJSON_GetObjectItem(m, "source")->valuestring, "/r/pod/volumes/data");
	assert_false(has_string(cJSON_GetObjectItem(m, "options"), "ro"));
	m = mount_at(a, "/h");
	assert_string_equal(cJSON_GetObjectItem(m, "source")->valuestring, "/srv/sub/dir");
	assert_true(has_string(cJSON_GetObjectItem(m, "options"), "ro"));
	m = mount_at(a, "/etc/cfg");
	assert_true(has_string(cJSON_GetObjectItem(m, "options"), "ro"));
	assert_string_equal(cJSON_GetObjectItem(mount_at(a, "/etc/hosts"), "source")->valuestring,
			    "/r/pod/hosts");
	assert_string_equal(cJSON_GetObjectItem(mount_at(a, "/proc"), "type")->valuestring, "proc");
	assert_true(has_string(cJSON_GetObjectItem(mount_at(a, "/sys"), "options"), "ro"));
	assert_non_null(mount_at(a, "/dev/pts"));
	assert_non_null(mount_at(a, "/dev/shm"));
	assert_null(mount_at(a, "/etc/hostname")); /* not given */
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "root"), "path")->valuestring,
			    "/r/rootfs");
	assert_null(cJSON_GetObjectItem(a, "hostname")); /* joins the pod's UTS namespace */
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "linux"), "cgroupsPath")
				    ->valuestring,
			    "/shoal-n1/podU/c");
	cJSON_ArrayForEach(ns, cJSON_GetObjectItem(cJSON_GetObjectItem(a, "linux"), "namespaces")) {
		const char *t = cJSON_GetObjectItem(ns, "type")->valuestring;
		const cJSON *path = cJSON_GetObjectItem(ns, "path");
		if (streq(t, "network"))
			assert_string_equal(path->valuestring, "/run/netns/x");
		else if (streq(t, "ipc"))
			assert_string_equal(path->valuestring, "/r/pod/ns/ipc");
		else if (streq(t, "uts"))
			assert_string_equal(path->valuestring, "/r/pod/ns/uts");
		else
			assert_null(path);
	}

	snprintf(pod, sizeof(pod),
		 POD(",\"command\":[\"x\"],\"volumeMounts\":[{\"name\":\"pvc\",\"mountPath\":\"/p\"}]",
		     "%s"),
		 vols);
	assert_int_equal(build(pod, NULL, &b, &e), -EINVAL);
	assert_non_null(strstr(e.message, "unsupported volume source"));
	snprintf(pod, sizeof(pod),
		 POD(",\"command\":[\"x\"],\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/p\","
		     "\"subPath\":\"../../etc\"}]",
		     "%s"),
		 vols);
	assert_int_equal(build(pod, NULL, &c, &e), -EINVAL);
	assert_non_null(strstr(e.message, "subPath"));
}

static void test_cgroup_path(void **state)
{
	char buf[128];

	assert_int_equal(bundle_cgroup_path("shoal-n1", "abc", "web", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/shoal-n1/podabc/web");
	assert_int_equal(bundle_cgroup_path("/shoal-n1", "abc", "web", buf, 8), -ENOSPC);
}

static int setup(void **state)
{
	objects = cJSON_Parse(
		"[{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm\",\"namespace\":\"ns1\"},"
		"\"data\":{\"k\":\"cmvalue\",\"bad key\":\"x\"}},"
		"{\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\",\"namespace\":\"ns1\"},"
		"\"data\":{\"pw\":\"aHVudGVyMg==\"}}]");
	return objects ? 0 : -1;
}

static int teardown(void **state)
{
	cJSON_Delete(objects);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_args_rules),
	    cmocka_unit_test(test_no_command),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_env_missing_ref),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_security),
	    cmocka_unit_test(test_user_from_image),
	    cmocka_unit_test(test_resources),
	    cmocka_unit_test(test_oom_score_adj),
	    cmocka_unit_test(test_quantity),
	    cmocka_unit_test(test_mounts_and_namespaces),
	    cmocka_unit_test(test_cgroup_path),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
