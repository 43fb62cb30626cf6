// SPDX-License-Identifier: Apache-2.0
/* Host side of bundles: overlay rootfs, pod namespaces, volumes. See bundle_host.h. */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/securebits.h>

#include "daemon/bundle_host.h"
#include "daemon/image-internal.h"
#include "lib/macro.h"
#include "lib/mountinfo.h"
#include "lib/util.h"

#define VOL_ERR "FailedMount"

static bool is_mountpoint(const char *path)
{
	_cleanup_mountinfo_ struct mountinfo mi = { 0 };
	const struct mountinfo_entry *m;

	if (mountinfo_open(&mi, NULL) < 0)
		return false;
	while (mountinfo_next(&mi, &m) > 0)
		if (streq(m->mount_point, path))
			return true;
	return false;
}

int bundle_rootfs_mount(const char *lowerdir, const char *ctr_dir, char **ret_rootfs)
{
	_cleanup_free_ char *upper = NULL, *work = NULL, *rootfs = NULL, *opts = NULL;
	int r;

	if (asprintf(&upper, "%s/upper", ctr_dir) < 0 || asprintf(&work, "%s/work", ctr_dir) < 0 ||
	    asprintf(&rootfs, "%s/rootfs", ctr_dir) < 0)
		return -ENOMEM;
	if ((r = util_mkdir_p(upper, 0755)) < 0 || (r = util_mkdir_p(work, 0700)) < 0 ||
	    (r = util_mkdir_p(rootfs, 0755)) < 0)
		return r;
	if (!is_mountpoint(rootfs)) {
		if (asprintf(&opts, "lowerdir=%s,upperdir=%s,workdir=%s", lowerdir, upper, work) < 0)
			return -ENOMEM;
		if (strlen(opts) >= 4096)
			return -E2BIG; /* mount options are limited to a page */
		if (mount("overlay", rootfs, "overlay", MS_NODEV, opts) < 0)
			return -errno;
	}
	if (ret_rootfs)
		*ret_rootfs = TAKE_PTR(rootfs);
	return 0;
}

int bundle_rootfs_remove(const char *ctr_dir)
{
	_cleanup_free_ char *rootfs = NULL;

	if (asprintf(&rootfs, "%s/rootfs", ctr_dir) < 0)
		return -ENOMEM;
	if (umount2(rootfs, 0) < 0 && errno != EINVAL && errno != ENOENT) {
		if (errno != EBUSY || umount2(rootfs, MNT_DETACH) < 0)
			return -errno;
	}
	return image_rm_rf(ctr_dir);
}

/* ---- pod namespaces ---- */

/* The helper (util_spawn: system calls only): new IPC and UTS namespaces, bind-mounted. */
struct podns_child {
	const char *hostname;
	char paths[2][4096]; /* ipc, uts */
};

static int podns_child(void *arg)
{
	const struct podns_child *c = arg;
	static const char *const src[] = { "/proc/self/ns/ipc", "/proc/self/ns/uts" };

	if (unshare(CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return 10;
	if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
		return 11;
	for (size_t i = 0; i < ARRAY_SIZE(src); i++)
		if (mount(src[i], c->paths[i], NULL, MS_BIND, NULL) < 0)
			return 12;
	return 0;
}

int bundle_podns_create(const char *dir, const char *hostname)
{
	const char *names[] = { "ipc", "uts" };
	_cleanup_free_ struct podns_child *c = calloc(1, sizeof(*c));
	int st, r;
	pid_t pid;

	if (!c)
		return -ENOMEM;
	if ((r = util_mkdir_p(dir, 0700)) < 0)
		return r;
	c->hostname = hostname;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int fd;
		if ((size_t)snprintf(c->paths[i], sizeof(c->paths[i]), "%s/%s", dir, names[i]) >=
		    sizeof(c->paths[i]))
			return -ENAMETOOLONG;
		fd = open(c->paths[i], O_RDONLY | O_CREAT | O_CLOEXEC, 0400);
		if (fd < 0)
			return -errno;
		close(fd);
	}
	pid = util_spawn(podns_child, c);
	if (pid < 0)
		return pid;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		bundle_podns_destroy(dir);
		return WIFEXITED(st) && WEXITSTATUS(st) == 11 ? -EINVAL : -EPERM;
	}
	return 0;
}

int bundle_podns_destroy(const char *dir)
{
	const char *names[] = { "ipc", "uts" };
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *p = NULL;
		if (asprintf(&p, "%s/%s", dir, names[i]) < 0)
			return -ENOMEM;
		if (umount2(p, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			r = -errno;
		if (unlink(p) < 0 && errno != ENOENT)
			r = -errno;
	}
	if (rmdir(dir) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

/* ---- volumes ---- */

static const char *jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static bool rel_path_ok(const char *s)
{
	if (strempty(s) || s[0] == '/')
		return false;
	for (const char *p = s; p;) {
		if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || !p[2]))
			return false;
		if ((p = strchr(p, '/')))
			p++;
	}
	return true;
}

static int write_key_file(const char *dir, const char *rel, const char *data, size_t len,
			  mode_t mode, struct err *e)
{
	_cleanup_free_ char *p = NULL, *parent = NULL;
	char *slash;
	int r;

	if (!rel_path_ok(rel))
		return err_set(e, EINVAL, 0, VOL_ERR, "volume file path \"%s\" is not a relative "
			       "path without '..'", rel);
	if (asprintf(&p, "%s/%s", dir, rel) < 0 || !(parent = strdup(p)))
		return -ENOMEM;
	if ((slash = strrchr(parent, '/')))
		*slash = 0;
	if ((r = util_mkdir_p(parent, 0755)) < 0 ||
	    (r = util_write_file_volatile(p, data, len, mode)) < 0)
		return err_set(e, -r, 0, VOL_ERR, "cannot write %s: %s", p, strerror(-r));
	chmod(p, mode);
	return 0;
}

static mode_t jmode(const cJSON *o, const char *k, mode_t def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? ((mode_t)v->valuedouble & 07777) : def;
}

/* Files of a ConfigMap or Secret source ({name, items, defaultMode, optional}). */
static int write_object_files(const cJSON *pod, const char *dir, const char *kind,
			      const cJSON *src, const char *obj_name, mode_t defmode,
			      const struct bundle_volume_ctx *ctx, struct err *e)
{
	const char *ns = jstr(cJSON_GetObjectItem(pod, "metadata"), "namespace");
	bool optional = cJSON_IsTrue(cJSON_GetObjectItem(src, "optional"));
	const cJSON *obj, *items = cJSON_GetObjectItem(src, "items"), *it;
	int r;

	obj = ctx && ctx->get_object ? ctx->get_object(ctx->ud, kind, ns ? ns : "default", obj_name)
				     : NULL;
	if (!obj) {
		if (optional)
			return 0;
		return err_set(e, ENOENT, 0, VOL_ERR, "%s \"%s\" not found",
			       streq(kind, "Secret") ? "secret" : "configmap", obj_name);
	}
	if (cJSON_GetArraySize(items) > 0) {
		cJSON_ArrayForEach(it, items) {
			const char *key = jstr(it, "key"), *path = jstr(it, "path");
			_cleanup_free_ char *val = NULL;
			size_t len;
			if (!key || !path)
				return err_set(e, EINVAL, 0, VOL_ERR, "volume item needs key and path");
			r = bundle_object_key(obj, kind, key, &val, &len);
			if (r == -ENOENT && optional)
				continue;
			if (r < 0)
				return err_set(e, -r, 0, VOL_ERR, "%s %s: key %s: %s", kind,
					       obj_name, key, strerror(-r));
			if ((r = write_key_file(dir, path, val, len, jmode(it, "mode", defmode), e)) < 0)
				return r;
		}
		return 0;
	}
	{
		const char *maps[] = { "data", "binaryData", "stringData" };
		for (size_t m = 0; m < ARRAY_SIZE(maps); m++)
			cJSON_ArrayForEach(it, cJSON_GetObjectItem(obj, maps[m])) {
				_cleanup_free_ char *val = NULL;
				size_t len;
				if ((r = bundle_object_key(obj, kind, it->string, &val, &len)) < 0)
					return err_set(e, -r, 0, VOL_ERR, "%s %s: key %s: %s", kind,
						       obj_name, it->string, strerror(-r));
				if ((r = write_key_file(dir, it->string, val, len, defmode, e)) < 0)
					return r;
			}
	}
	return 0;
}

static int write_downward(const cJSON *pod, const char *dir, const cJSON *items, mode_t defmode,
			  const struct bundle_volume_ctx *ctx, struct err *e)
{
	const cJSON *it;
	int r;

	cJSON_ArrayForEach(it, items) {
		const char *path = jstr(it, "path");
		const char *fp = jstr(cJSON_GetObjectItem(it, "fieldRef"), "fieldPath");
		_cleanup_free_ char *val = NULL;
		if (!path || !fp)
			return err_set(e, EINVAL, 0, VOL_ERR,
				       "downwardAPI items need a path and a fieldRef");
		if (bundle_field_value(pod, fp, ctx ? ctx->pod_ip : NULL, ctx ? ctx->host_ip : NULL,
				       ctx ? ctx->node_name : NULL, &val) < 0)
			return err_set(e, EINVAL, 0, VOL_ERR, "downwardAPI: unsupported fieldPath %s",
				       fp);
		if ((r = write_key_file(dir, path, val, strlen(val), jmode(it, "mode", defmode), e)) < 0)
			return r;
	}
	return 0;
}

static int mount_tmpfs(const char *dir, const char *size, struct err *e)
{
	char opts[128] = "mode=0755";

	if (is_mountpoint(dir))
		return 0;
	if (size) {
		int64_t bytes;
		if (bundle_quantity_value(size, &bytes) < 0 || bytes <= 0)
			return err_set(e, EINVAL, 0, VOL_ERR, "bad emptyDir sizeLimit \"%s\"", size);
		snprintf(opts, sizeof(opts), "mode=0777,size=%lld", (long long)bytes);
	}
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return err_set(e, errno, 0, VOL_ERR, "tmpfs on %s: %m", dir);
	return 0;
}

static int host_path(const char *name, const cJSON *hp, struct err *e)
{
	const char *path = jstr(hp, "path"), *type = jstr(hp, "type");
	struct stat st;
	int r;

	if (!path || path[0] != '/')
		return err_set(e, EINVAL, 0, VOL_ERR, "volume %s: hostPath.path must be absolute",
			       name);
	if (strempty(type))
		return 0;
	if (streq(type, "DirectoryOrCreate")) {
		if ((r = util_mkdir_p(path, 0755)) < 0)
			return err_set(e, -r, 0, VOL_ERR, "hostPath %s: %s", path, strerror(-r));
		return 0;
	}
	if (streq(type, "FileOrCreate")) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return err_set(e, errno, 0, VOL_ERR, "hostPath %s: %m", path);
		close(fd);
		return 0;
	}
	if (stat(path, &st) < 0)
		return err_set(e, errno, 0, VOL_ERR, "hostPath type check failed: %s is not a %s",
			       path, type);
	if ((streq(type, "Directory") && !S_ISDIR(st.st_mode)) ||
	    (streq(type, "File") && !S_ISREG(st.st_mode)) ||
	    (streq(type, "Socket") && !S_ISSOCK(st.st_mode)) ||
	    (streq(type, "CharDevice") && !S_ISCHR(st.st_mode)) ||
	    (streq(type, "BlockDevice") && !S_ISBLK(st.st_mode)))
		return err_set(e, EINVAL, 0, VOL_ERR, "hostPath type check failed: %s is not a %s",
			       path, type);
	return 0;
}

int bundle_volumes_prepare(const cJSON *pod, const char *pod_dir,
			   const struct bundle_volume_ctx *ctx, struct err *e)
{
	const cJSON *vol;
	int r;

	cJSON_ArrayForEach(vol, cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "volumes")) {
		const char *name = jstr(vol, "name");
		const cJSON *src;
		_cleanup_free_ char *dir = NULL;

		if (!name || !util_dns1123_label(name))
			return err_set(e, EINVAL, 0, VOL_ERR, "invalid volume name \"%s\"",
				       name ? name : "");
		if ((src = cJSON_GetObjectItem(vol, "hostPath"))) {
			if ((r = host_path(name, src, e)) < 0)
				return r;
			continue;
		}
		if (asprintf(&dir, "%s/volumes/%s", pod_dir, name) < 0)
			return -ENOMEM;
		if ((r = util_mkdir_p(dir, 0755)) < 0)
			return err_set(e, -r, 0, VOL_ERR, "volume %s: %s", name, strerror(-r));
		if ((src = cJSON_GetObjectItem(vol, "emptyDir"))) {
			const char *medium = jstr(src, "medium");
			chmod(dir, 0777);
			if (medium && streq(medium, "Memory") &&
			    (r = mount_tmpfs(dir, jstr(src, "sizeLimit"), e)) < 0)
				return r;
			if (medium && streq(medium, "Memory"))
				chmod(dir, 0777);
		} else if ((src = cJSON_GetObjectItem(vol, "configMap"))) {
			if ((r = write_object_files(pod, dir, "ConfigMap", src, jstr(src, "name"),
						    jmode(src, "defaultMode", 0644), ctx, e)) < 0)
				return r;
		} else if ((src = cJSON_GetObjectItem(vol, "secret"))) {
			if ((r = mount_tmpfs(dir, NULL, e)) < 0 ||
			    (r = write_object_files(pod, dir, "Secret", src, jstr(src, "secretName"),
						    jmode(src, "defaultMode", 0644), ctx, e)) < 0)
				return r;
		} else if ((src = cJSON_GetObjectItem(vol, "downwardAPI"))) {
			if ((r = write_downward(pod, dir, cJSON_GetObjectItem(src, "items"),
						jmode(src, "defaultMode", 0644), ctx, e)) < 0)
				return r;
		} else if ((src = cJSON_GetObjectItem(vol, "projected"))) {
			const cJSON *s;
			mode_t def = jmode(src, "defaultMode", 0644);
			if ((r = mount_tmpfs(dir, NULL, e)) < 0)
				return r;
			cJSON_ArrayForEach(s, cJSON_GetObjectItem(src, "sources")) {
				const cJSON *x;
				if ((x = cJSON_GetObjectItem(s, "configMap")))
					r = write_object_files(pod, dir, "ConfigMap", x,
							       jstr(x, "name"), def, ctx, e);
				else if ((x = cJSON_GetObjectItem(s, "secret")))
					r = write_object_files(pod, dir, "Secret", x,
							       jstr(x, "name"), def, ctx, e);
				else if ((x = cJSON_GetObjectItem(s, "downwardAPI")))
					r = write_downward(pod, dir, cJSON_GetObjectItem(x, "items"),
							   def, ctx, e);
				else
					r = 0; /* serviceAccountToken: no token issuer yet */
				if (r < 0)
					return r;
			}
		} else {
			return err_set(e, EINVAL, 0, VOL_ERR, "volume %s: unsupported volume source",
				       name);
		}
	}
	return 0;
}

int bundle_volumes_cleanup(const char *pod_dir)
{
	_cleanup_free_ char *vdir = NULL;
	DIR *d;
	struct dirent *de;

	if (asprintf(&vdir, "%s/volumes", pod_dir) < 0)
		return -ENOMEM;
	if ((d = opendir(vdir))) {
		while ((de = readdir(d))) {
			_cleanup_free_ char *p = NULL;
			if (de->d_name[0] == '.')
				continue;
			if (asprintf(&p, "%s/%s", vdir, de->d_name) < 0)
				break;
			if (umount2(p, 0) < 0 && errno == EBUSY)
				umount2(p, MNT_DETACH);
		}
		closedir(d);
	}
	return image_rm_rf(vdir);
}

/* ---- users ---- */

int bundle_rootfs_id_lookup(void *rootfs, bool group, const char *name, uint32_t *ret_id,
			    uint32_t *ret_gid)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	_cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_fclose_ FILE *f = NULL;
	char line[1024];
	int fd;

	if (root < 0)
		return -errno;
	fd = syscall(SYS_openat2, root, group ? "etc/group" : "etc/passwd", &how, sizeof(how));
	if (fd < 0)
		return -ENOENT;
	if (!(f = fdopen(fd, "re"))) {
		close(fd);
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *n = strtok_r(line, ":", &save);
		char *pw = n ? strtok_r(NULL, ":", &save) : NULL;
		char *id = pw ? strtok_r(NULL, ":", &save) : NULL;
		char *gid = id && !group ? strtok_r(NULL, ":", &save) : NULL;
		if (!n || !id || !streq(n, name))
			continue;
		*ret_id = strtoul(id, NULL, 10);
		if (ret_gid)
			*ret_gid = gid ? strtoul(gid, NULL, 10) : 0;
		return 0;
	}
	return -ENOENT;
}

int bundle_config_write(const char *bundle_dir, const cJSON *cfg)
{
	_cleanup_free_ char *p = NULL, *txt = cJSON_Print(cfg);
	int r;

	if (!txt || asprintf(&p, "%s/config.json", bundle_dir) < 0)
		return -ENOMEM;
	if ((r = util_mkdir_p(bundle_dir, 0700)) < 0)
		return r;
	return util_write_file_volatile(p, txt, strlen(txt), 0600);
}

/* The kernel refuses (EACCES) an oom_score_adj below the writer's oom_score_adj_min unless the
 * writer has CAP_SYS_RESOURCE in the initial user namespace. crun writes it as root before
 * dropping capabilities, exec'd (through the shim) from this process, so it holds the capability
 * iff it is in our bounding set, root keeps its capabilities across exec and we are not in a
 * user namespace. Otherwise our own oom_score_adj, which crun inherits, is the lowest safe value
 * (what containerd's restrictOOMScoreAdj and podman do). */
int bundle_oom_score_adj_floor(void)
{
	_cleanup_free_ char *map = NULL, *own = NULL;
	unsigned long a, b, n;
	int sb = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);

	if (geteuid() == 0 && prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) == 1 && sb >= 0 &&
	    !(sb & SECBIT_NOROOT) && util_read_file("/proc/self/uid_map", 4096, &map, NULL) >= 0 &&
	    sscanf(map, "%lu %lu %lu", &a, &b, &n) == 3 && a == 0 && b == 0 && n == 4294967295UL)
		return -1000;
	if (util_read_file("/proc/self/oom_score_adj", 64, &own, NULL) < 0)
		return 0;
	return atoi(own);
}
