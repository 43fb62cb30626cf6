// SPDX-License-Identifier: Apache-2.0
/* crun driver. See crun.h. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/magic.h>

#include "daemon/crun.h"
#include "daemon/crun-internal.h"
#include "daemon/image-internal.h"
#include "lib/macro.h"
#include "lib/mountinfo.h"
#include "lib/util.h"

struct crun_rt {
	char *crun, *root, *state_dir, *shim;
	int crun_fd; /* crun_memfd(crun), or -1: exec crun by name */
	enum crun_cgroup_mode mode;
	char *unified; /* hybrid: the cgroup2 mount crun must not see */
};

/* ---- cgroups ---- */

int crun_cgroup_detect(enum crun_cgroup_mode *ret, char **ret_unified)
{
	struct statfs sf;
	_cleanup_mountinfo_ struct mountinfo mi = { 0 };
	const struct mountinfo_entry *m;
	int r;

	if (ret_unified)
		*ret_unified = NULL;
	if (statfs("/sys/fs/cgroup", &sf) < 0)
		return -errno;
	if (sf.f_type == CGROUP2_SUPER_MAGIC) {
		*ret = CRUN_CGROUP_V2;
		return 0;
	}
	*ret = CRUN_CGROUP_V1;
	if ((r = mountinfo_open(&mi, NULL)) < 0)
		return r;
	while ((r = mountinfo_next(&mi, &m)) > 0) {
		if (streq(m->fstype, "cgroup2") &&
		    mountinfo_path_below(m->mount_point, "/sys/fs/cgroup") &&
		    !streq(m->mount_point, "/sys/fs/cgroup")) {
			*ret = CRUN_CGROUP_HYBRID;
			if (ret_unified && !(*ret_unified = strdup(m->mount_point)))
				return -ENOMEM;
			break;
		}
	}
	return r < 0 ? r : 0;
}

int crun_cgroup_remove(const char *path)
{
	_cleanup_mountinfo_ struct mountinfo mi = { 0 };
	const struct mountinfo_entry *m;
	int k, r = 0;

	if ((k = mountinfo_open(&mi, NULL)) < 0)
		return k;
	while ((k = mountinfo_next(&mi, &m)) > 0) {
		_cleanup_free_ char *full = NULL;
		if (!mountinfo_is_cgroup(m))
			continue;
		if (asprintf(&full, "%s/%s", m->mount_point, path[0] == '/' ? path + 1 : path) < 0)
			return -ENOMEM;
		if (rmdir(full) < 0 && errno != ENOENT)
			r = -EBUSY;
	}
	return k < 0 ? k : r;
}

/* ---- process helpers ---- */

static int read_all(int fd, char **ret, size_t max)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k;
		if (len + 1 >= cap) {
			char *n = cap < max ? realloc(buf, cap * 2) : NULL;
			if (!n)
				break; /* truncated */
			buf = n;
			cap *= 2;
		}
		k = read(fd, buf + len, cap - len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += k;
	}
	buf[len] = 0;
	*ret = buf;
	return 0;
}

static void strip(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = 0;
}

/*
 * Run crun with the global options and args; stdout into *out (optional), stderr into *errout
 * (optional). stdio fds (optional) replace stdin/stdout/stderr. Returns the exit status (>= 0)
 * or -errno.
 */
/* A child exec'ing crun (util_spawn: system calls only). */
struct crun_child {
	const struct crun_rt *rt;
	const char *const *argv;
	int stdio[3]; /* -1: /dev/null */
};

static int crun_child(void *arg)
{
	const struct crun_child *c = arg;
	static const char prep_err[] = "cannot hide the cgroup2 mount from crun\n";
	static const char exec_err[] = "cannot run crun\n";
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	for (int i = 0; i < 3; i++)
		dup2(c->stdio[i] >= 0 ? c->stdio[i] : null, i);
	if (crun_ns_prepare(c->rt->unified) < 0) {
		(void)!write(2, prep_err, sizeof(prep_err) - 1);
		return 126;
	}
	crun_execv(c->rt->crun_fd, c->argv);
	(void)!write(2, exec_err, sizeof(exec_err) - 1);
	return 127;
}

static int run_crun(struct crun_rt *rt, const char *const args[], char **out, char **errout)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, st;
	const char *argv[32];
	size_t n = 0;
	pid_t pid;
	_cleanup_free_ char *o = NULL, *er = NULL;

	argv[n++] = rt->crun;
	argv[n++] = "--root";
	argv[n++] = rt->root;
	argv[n++] = "--cgroup-manager=cgroupfs";
	for (size_t i = 0; args[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		int r = -errno;
		if (po[0] >= 0) {
			close(po[0]);
			close(po[1]);
		}
		return r;
	}
	pid = util_spawn(crun_child,
			 &(struct crun_child){ .rt = rt, .argv = argv, .stdio = { -1, po[1], pe[1] } });
	if (pid < 0) {
		close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
		return pid;
	}
	close(po[1]);
	close(pe[1]);
	/* crun's outputs are small (state JSON, error lines): read stdout then stderr */
	read_all(po[0], &o, 1 << 20);
	read_all(pe[0], &er, 1 << 16);
	close(po[0]);
	close(pe[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (out)
		*out = TAKE_PTR(o);
	if (errout) {
		if (er)
			strip(er);
		*errout = TAKE_PTR(er);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* crun's message without the "crun: " prefix / JSON log wrapper */
static const char *crun_msg(const char *s)
{
	if (!s || !*s)
		return "crun failed";
	if (strncmp(s, "crun: ", 6) == 0)
		return s + 6;
	return s;
}

/* ---- runtime object ---- */

static int shim_default(char **ret)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	self[n] = 0;
	slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	return asprintf(ret, "%s/shoal-shim", self) < 0 ? -ENOMEM : 0;
}

int crun_rt_new(const struct crun_opts *o, struct crun_rt **ret)
{
	struct crun_rt *rt = calloc(1, sizeof(*rt));
	int r;

	if (!rt)
		return -ENOMEM;
	if (!o->root || !o->state_dir) {
		free(rt);
		return -EINVAL;
	}
	rt->crun_fd = -1;
	rt->crun = strdup(o->crun_path ? o->crun_path : "crun");
	rt->root = strdup(o->root);
	rt->state_dir = strdup(o->state_dir);
	if (o->shim_path)
		rt->shim = strdup(o->shim_path);
	else if ((r = shim_default(&rt->shim)) < 0) {
		crun_rt_free(rt);
		return r;
	}
	if (!rt->crun || !rt->root || !rt->state_dir || !rt->shim) {
		crun_rt_free(rt);
		return -ENOMEM;
	}
	/* no copy (no memfd, crun not found yet): crun by name, copying itself each time */
	rt->crun_fd = crun_memfd(rt->crun);
	if ((r = crun_cgroup_detect(&rt->mode, &rt->unified)) < 0 ||
	    (r = util_mkdir_p(rt->root, 0700)) < 0 || (r = util_mkdir_p(rt->state_dir, 0700)) < 0) {
		crun_rt_free(rt);
		return r;
	}
	*ret = rt;
	return 0;
}

struct crun_rt *crun_rt_free(struct crun_rt *rt)
{
	if (!rt)
		return NULL;
	if (rt->crun_fd >= 0)
		close(rt->crun_fd);
	free(rt->crun);
	free(rt->root);
	free(rt->state_dir);
	free(rt->shim);
	free(rt->unified);
	free(rt);
	return NULL;
}

enum crun_cgroup_mode crun_rt_cgroup_mode(const struct crun_rt *rt)
{
	return rt->mode;
}

static bool id_valid(const char *id)
{
	if (strempty(id) || strlen(id) > 200 || id[0] == '.')
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("-_.", *p)))
			return false;
	return true;
}

/* ---- lifecycle ---- */

/* The shim's first process (util_spawn: system calls only); it detaches itself. */
struct shim_child {
	const char *const *argv;
	int sync_fd, crun_fd; /* >= 10: become 3 and 4 */
};

static int shim_child(void *arg)
{
	const struct shim_child *c = arg;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	setsid();
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	/* the sync pipe and the crun binary are the only other fds the shim keeps */
	dup2(c->sync_fd, 3);
	if (c->crun_fd >= 0)
		dup2(c->crun_fd, 4);
	execv(c->argv[0], (char *const *)c->argv);
	return 127;
}

static int create(struct crun_rt *rt, const char *id, const char *bundle, const char *log_path,
		  bool start, pid_t *ret_pid, struct err *e)
{
	_cleanup_free_ char *sdir = NULL;
	char msg[4096];
	int sync[2], st, r;
	pid_t mid;
	ssize_t n;
	size_t len = 0;

	if (!id_valid(id))
		return err_set(e, EINVAL, 0, "CreateContainerError", "invalid container id \"%s\"",
			       id ? id : "");
	if (asprintf(&sdir, "%s/%s", rt->state_dir, id) < 0)
		return -ENOMEM;
	if (mkdir(sdir, 0700) < 0)
		return err_set(e, errno, 0, "CreateContainerError",
			       "container %s: state directory: %m", id);
	if (pipe2(sync, O_CLOEXEC) < 0) {
		r = -errno;
		rmdir(sdir);
		return r;
	}
	/* The shim forks once more and its first process exits (--detach): the shim is not our
	 * child, so it outlives us and we never reap it. */
	{
		const char *mode = rt->unified ? rt->unified : "";
		const char *argv[24] = { rt->shim, "--detach", "--crun", rt->crun, "--root", rt->root,
					 "--id", id, "--bundle", bundle, "--log", log_path,
					 "--state", sdir, "--sync-fd", "3", "--unified", mode };
		struct shim_child c = { .argv = argv, .crun_fd = -1 };
		size_t n = 18;

		if (rt->crun_fd >= 0) {
			argv[n++] = "--crun-fd";
			argv[n++] = "4";
		}
		if (start)
			argv[n++] = "--start";
		argv[n] = NULL;

		c.sync_fd = fcntl(sync[1], F_DUPFD_CLOEXEC, 10);
		if (rt->crun_fd >= 0)
			c.crun_fd = fcntl(rt->crun_fd, F_DUPFD_CLOEXEC, 10);
		mid = c.sync_fd < 0 || (rt->crun_fd >= 0 && c.crun_fd < 0) ? -EMFILE
									    : util_spawn(shim_child, &c);
		if (c.sync_fd >= 0)
			close(c.sync_fd);
		if (c.crun_fd >= 0)
			close(c.crun_fd);
	}
	if (mid < 0) {
		r = mid;
		close(sync[0]);
		close(sync[1]);
		rmdir(sdir);
		return r;
	}
	close(sync[1]);
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	while ((n = read(sync[0], msg + len, sizeof(msg) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += n;
		if (len == sizeof(msg) - 1)
			break;
	}
	close(sync[0]);
	msg[len] = 0;
	strip(msg);
	if (strncmp(msg, "ok ", 3) == 0) {
		if (ret_pid)
			*ret_pid = atoi(msg + 3);
		return 0;
	}
	image_rm_rf(sdir);
	if (len == 0)
		return err_set(e, EIO, 0, "CreateContainerError",
			       "container %s: shim %s did not start", id, rt->shim);
	/* "err <status> <message>" */
	{
		char *m = msg + 4;
		strtol(m, &m, 10);
		while (*m == ' ')
			m++;
		return err_set(e, EIO, 0, "RunContainerError", "%s", crun_msg(m));
	}
}

int crun_create(struct crun_rt *rt, const char *id, const char *bundle, const char *log_path,
		pid_t *ret_pid, struct err *e)
{
	return create(rt, id, bundle, log_path, false, ret_pid, e);
}

int crun_run(struct crun_rt *rt, const char *id, const char *bundle, const char *log_path,
	     pid_t *ret_pid, struct err *e)
{
	return create(rt, id, bundle, log_path, true, ret_pid, e);
}

int crun_start(struct crun_rt *rt, const char *id, struct err *e)
{
	const char *args[] = { "start", id, NULL };
	_cleanup_free_ char *er = NULL;
	int r = run_crun(rt, args, NULL, &er);

	if (r < 0)
		return err_set(e, -r, 0, "RunContainerError", "crun start %s: %s", id, strerror(-r));
	if (r > 0)
		return err_set(e, EIO, 0, "RunContainerError", "%s", crun_msg(er));
	return 0;
}

int crun_kill(struct crun_rt *rt, const char *id, int sig, bool all, struct err *e)
{
	char signum[16];
	const char *args[] = { "kill", all ? "--all" : id, all ? id : signum, all ? signum : NULL,
			       NULL };
	_cleanup_free_ char *er = NULL;
	int r;

	snprintf(signum, sizeof(signum), "%d", sig);
	r = run_crun(rt, args, NULL, &er);
	if (r < 0)
		return err_set(e, -r, 0, "KillContainerError", "crun kill %s: %s", id, strerror(-r));
	if (r > 0) {
		if (er && strstr(er, "does not exist"))
			return err_set(e, ENOENT, 404, "NotFound", "%s", crun_msg(er));
		return err_set(e, EIO, 0, "KillContainerError", "%s", crun_msg(er));
	}
	return 0;
}

int crun_delete(struct crun_rt *rt, const char *id, bool force, struct err *e)
{
	const char *args[] = { "delete", force ? "--force" : id, force ? id : NULL, NULL };
	_cleanup_free_ char *er = NULL, *sdir = NULL;
	int r;

	if (!id_valid(id))
		return -EINVAL;
	r = run_crun(rt, args, NULL, &er);
	if (r < 0)
		return err_set(e, -r, 0, "DeleteContainerError", "crun delete %s: %s", id,
			       strerror(-r));
	if (r > 0 && !(er && strstr(er, "does not exist")))
		return err_set(e, EIO, 0, "DeleteContainerError", "%s", crun_msg(er));
	if (asprintf(&sdir, "%s/%s", rt->state_dir, id) < 0)
		return -ENOMEM;
	/* the shim exits right after the container; its files go with the container */
	return image_rm_rf(sdir);
}

const char *crun_status_name(enum crun_status s)
{
	switch (s) {
	case CRUN_CREATED:
		return "created";
	case CRUN_RUNNING:
		return "running";
	case CRUN_STOPPED:
		return "stopped";
	case CRUN_PAUSED:
		return "paused";
	default:
		return "unknown";
	}
}

static int64_t json_i64(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

int crun_state(struct crun_rt *rt, const char *id, struct crun_state *ret)
{
	const char *args[] = { "state", id, NULL };
	_cleanup_free_ char *out = NULL, *er = NULL, *p = NULL, *buf = NULL;
	_cleanup_json_ cJSON *st = NULL, *ex = NULL;
	bool known = false;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!id_valid(id))
		return -EINVAL;
	r = run_crun(rt, args, &out, &er);
	if (r < 0)
		return r;
	if (r == 0 && (st = cJSON_Parse(out))) {
		const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(st, "status"));
		known = true;
		ret->pid = json_i64(st, "pid");
		if (!s)
			ret->status = CRUN_UNKNOWN;
		else if (streq(s, "created"))
			ret->status = CRUN_CREATED;
		else if (streq(s, "running"))
			ret->status = CRUN_RUNNING;
		else if (streq(s, "stopped"))
			ret->status = CRUN_STOPPED;
		else if (streq(s, "paused"))
			ret->status = CRUN_PAUSED;
	}
	if (asprintf(&p, "%s/%s/shim.pid", rt->state_dir, id) < 0)
		return -ENOMEM;
	if (util_read_file(p, 64, &buf, NULL) == 0) {
		pid_t sp = atoi(buf);
		known = true;
		if (sp > 0 && kill(sp, 0) == 0)
			ret->shim_pid = sp;
	}
	free(p);
	free(buf);
	buf = NULL;
	if (asprintf(&p, "%s/%s/exit.json", rt->state_dir, id) < 0)
		return -ENOMEM;
	if (util_read_file(p, 4096, &buf, NULL) == 0 && (ex = cJSON_Parse(buf))) {
		known = true;
		ret->exited = true;
		ret->exit_code = json_i64(ex, "exitCode");
		ret->signal = json_i64(ex, "signal");
		ret->created_ns = json_i64(ex, "createdNs");
		ret->finished_ns = json_i64(ex, "finishedNs");
		if (ret->status == CRUN_UNKNOWN || ret->status == CRUN_RUNNING)
			ret->status = CRUN_STOPPED;
	}
	return known ? 0 : -ENOENT;
}

int crun_list(struct crun_rt *rt, cJSON **ret)
{
	const char *args[] = { "list", "--format", "json", NULL };
	_cleanup_free_ char *out = NULL, *er = NULL;
	_cleanup_json_ cJSON *l = NULL;
	cJSON *ids = cJSON_CreateArray(), *c;
	int r = run_crun(rt, args, &out, &er);

	if (!ids)
		return -ENOMEM;
	if (r != 0) {
		cJSON_Delete(ids);
		return r < 0 ? r : -EIO;
	}
	l = cJSON_Parse(out);
	cJSON_ArrayForEach(c, l) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(c, "id"));
		if (id)
			cJSON_AddItemToArray(ids, cJSON_CreateString(id));
	}
	*ret = ids;
	return 0;
}

/* ---- exec ---- */

int crun_exec(struct crun_rt *rt, const char *id, char *const argv[], bool tty,
	      const int stdio_fds[3], pid_t *ret_pid, int *ret_master, struct err *e)
{
	const char *args[64];
	_cleanup_free_ char *sock = NULL;
	size_t n = 0;
	int lfd = -1;
	pid_t pid;

	if (!id_valid(id))
		return -EINVAL;
	args[n++] = rt->crun;
	args[n++] = "--root";
	args[n++] = rt->root;
	args[n++] = "--cgroup-manager=cgroupfs";
	args[n++] = "exec";
	if (tty) {
		lfd = crun_console_listen(rt->state_dir, &sock);
		if (lfd < 0)
			return err_set(e, -lfd, 0, "ExecError", "console socket: %s",
				       strerror(-lfd));
		args[n++] = "--tty";
		args[n++] = "--console-socket";
		args[n++] = sock;
	}
	args[n++] = id;
	for (size_t i = 0; argv[i] && n < ARRAY_SIZE(args) - 1; i++)
		args[n++] = argv[i];
	args[n] = NULL;

	{
		struct crun_child c = { .rt = rt, .argv = args, .stdio = { -1, -1, -1 } };

		for (int i = 0; i < 3 && !tty && stdio_fds; i++)
			c.stdio[i] = stdio_fds[i];
		pid = util_spawn(crun_child, &c);
	}
	if (pid < 0) {
		if (lfd >= 0)
			close(lfd), unlink(sock);
		return pid;
	}
	*ret_pid = pid;
	if (tty) {
		int m = crun_console_recv(lfd, 10000);
		close(lfd);
		unlink(sock);
		if (m < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return err_set(e, -m, 0, "ExecError", "crun exec %s: no terminal received",
				       id);
		}
		*ret_master = m;
	}
	return 0;
}

int crun_stdin_path(struct crun_rt *rt, const char *id, char **ret)
{
	return asprintf(ret, "%s/%s/stdin", rt->state_dir, id) < 0 ? -ENOMEM : 0;
}
