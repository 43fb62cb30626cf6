/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crun driver: runs the `crun` binary with a node-specific --root. Every container gets a small
 * supervisor, shoal-shim (daemon/crun_shim.c), that runs `crun create`, becomes the container's
 * subreaper, copies its stdout/stderr into a CRI-format log file and records the exit status in
 * <state_dir>/<id>/exit.json. Shims are detached from the daemon, so containers (and their
 * logs) outlive shoald and a restarted daemon re-adopts them from `crun state` and those files.
 *
 * cgroups: on a hybrid host crun refuses to work ("cgroups in hybrid mode not supported"), so
 * every crun invocation runs in a private mount namespace with the cgroup2 mount detached and
 * --cgroup-manager=cgroupfs (crun then uses the v1 controllers). A pure v2 or pure v1 host runs
 * crun as is.
 */
#ifndef SHOAL_DAEMON_CRUN_H
#define SHOAL_DAEMON_CRUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <cJSON.h>
#include "lib/err.h"

enum crun_cgroup_mode {
	CRUN_CGROUP_V1 = 1,
	CRUN_CGROUP_HYBRID = 2, /* v1 controllers + a cgroup2 mount (hidden from crun) */
	CRUN_CGROUP_V2 = 3,
};

/* Look at /sys/fs/cgroup. ret_unified (optional, malloc'd): the cgroup2 mount in hybrid mode. */
int crun_cgroup_detect(enum crun_cgroup_mode *ret, char **ret_unified);
/* Remove the (empty) cgroup directory `path` ("/shoal-n1/podX") from every cgroup hierarchy.
 * Returns 0 if it is gone everywhere, -EBUSY if some hierarchy still has it in use. */
int crun_cgroup_remove(const char *path);

struct crun_opts {
	const char *crun_path; /* default "crun" (PATH) */
	const char *root;      /* crun --root, e.g. /run/shoal/<node>/crun */
	const char *state_dir; /* shim files: <state_dir>/<id>/{exit.json,shim.pid,...} */
	const char *shim_path; /* default: shoal-shim next to /proc/self/exe */
};

struct crun_rt;

int crun_rt_new(const struct crun_opts *o, struct crun_rt **ret);
struct crun_rt *crun_rt_free(struct crun_rt *rt);
enum crun_cgroup_mode crun_rt_cgroup_mode(const struct crun_rt *rt);

/*
 * Create the container `id` from bundle (its config.json written) under a new shim; stdout and
 * stderr go to log_path in CRI format. On success the container is "created" (not started) and
 * *ret_pid (optional) is its init pid. On failure e->message carries crun's own error (e.g.
 * "executable file `x` not found in $PATH") and e->reason is RunContainerError /
 * CreateContainerError.
 */
int crun_create(struct crun_rt *rt, const char *id, const char *bundle, const char *log_path,
		pid_t *ret_pid, struct err *e);
int crun_start(struct crun_rt *rt, const char *id, struct err *e);
/* crun_create + crun_start in one: the shim runs `crun run --detach` (one crun invocation
 * instead of two). */
int crun_run(struct crun_rt *rt, const char *id, const char *bundle, const char *log_path,
	     pid_t *ret_pid, struct err *e);
int crun_kill(struct crun_rt *rt, const char *id, int sig, bool all, struct err *e);
/* crun delete (--force kills first), then the shim's state directory. */
int crun_delete(struct crun_rt *rt, const char *id, bool force, struct err *e);

enum crun_status {
	CRUN_UNKNOWN = 0, /* crun does not know it */
	CRUN_CREATED,
	CRUN_RUNNING,
	CRUN_STOPPED,
	CRUN_PAUSED,
};

struct crun_state {
	enum crun_status status;
	pid_t pid;        /* container init (0 if none) */
	pid_t shim_pid;   /* 0 if the shim is gone */
	bool exited;      /* exit.json present */
	int exit_code;    /* 128+signal if killed */
	int signal;       /* killing signal or 0 */
	int64_t created_ns, finished_ns; /* wall clock, ns since epoch (0 if unknown) */
};

/* State of one container: crun state + the shim's files. -ENOENT if neither knows it. */
int crun_state(struct crun_rt *rt, const char *id, struct crun_state *ret);
/* ids of all containers under this root (array of strings), for re-adoption. */
int crun_list(struct crun_rt *rt, cJSON **ret);
const char *crun_status_name(enum crun_status s);

/*
 * crun exec. Without tty: the process gets stdio_fds[0..2] (-1: /dev/null) and *ret_pid is
 * the `crun exec` process (its exit status is the command's). With tty: *ret_master is the
 * pty master (read output, write input), stdio_fds is ignored.
 */
int crun_exec(struct crun_rt *rt, const char *id, char *const argv[], bool tty,
	      const int stdio_fds[3], pid_t *ret_pid, int *ret_master, struct err *e);

/* The FIFO that feeds the stdin of container id (one created with spec stdin, see
 * BUNDLE_ANN_STDIN): write to it to attach. *ret malloc'd; the FIFO exists while the shim runs. */
int crun_stdin_path(struct crun_rt *rt, const char *id, char **ret);

/* The shim's entry point (tools/shoal-shim.c). */
int crun_shim_main(int argc, char **argv);

#endif
