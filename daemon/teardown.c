// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <curl/curl.h>

#include "bpf/lb.h"
#include "daemon/crun.h"
#include "daemon/routes.h"
#include "bpf/nodeport.h"
#include "daemon/teardown.h"
#include "lib/log.h"
#include "lib/mountinfo.h"
#include "lib/util.h"
#include "netplugin/netplugin.h"

/* Remove a cgroup directory and its (empty) children, deepest first. */
static int cgroup_rmdir_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char sub[PATH_MAX];
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		cgroup_rmdir_tree(sub);
	}
	closedir(d);
	return rmdir(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* A pidfd for the shim `pid` if it is still the shim of this runtime root (not a reused pid). */
static int shim_pidfd(pid_t pid, const char *root)
{
	_cleanup_free_ char *path = NULL, *argv = NULL;
	size_t len = 0;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return -errno;
	/* checked after opening: the pidfd holds on to the process we looked at */
	if (asprintf(&path, "/proc/%d/cmdline", (int)pid) < 0 ||
	    util_read_file(path, 65536, &argv, &len) < 0)
		goto not_ours;
	for (size_t i = 0; i < len; i += strlen(argv + i) + 1)
		if (streq(argv + i, root))
			return fd;
not_ours:
	close(fd);
	return -ESRCH;
}

/* Wait for the processes behind `fds` to exit; SIGKILL whatever is left at the deadline. */
static void pidfds_wait(int *fds, size_t n, int timeout_ms)
{
	uint64_t deadline = util_mono_ms() + (uint64_t)timeout_ms;
	bool killed = false;

	for (size_t i = 0; i < n; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		for (;;) {
			uint64_t now = util_mono_ms();
			int left = now < deadline ? (int)(deadline - now) : 0;
			int r = poll(&p, 1, left);
			if (r > 0 || (r < 0 && errno != EINTR))
				break;
			if (r == 0) {
				if (killed)
					break;
				/* force delete killed the container, yet its shim lingers */
				for (size_t k = i; k < n; k++)
					syscall(SYS_pidfd_send_signal, fds[k], SIGKILL, NULL, 0);
				killed = true;
				deadline = util_mono_ms() + 5000;
			}
		}
	}
}

/* Force-delete every container of the node, those crun knows and those only a shim's state
 * directory remembers, and wait for their shims: a shim stays in the node's cgroup until it
 * has reaped its container, and the cgroup cannot go before it. */
static int containers_remove(const struct config *cfg)
{
	_cleanup_free_ char *root = NULL, *state = NULL;
	_cleanup_json_ cJSON *ids = NULL;
	_cleanup_free_ int *fds = NULL;
	struct crun_rt *rt = NULL;
	size_t nfds = 0;
	DIR *d;
	cJSON *c;
	int r, ret = 0;

	if (asprintf(&root, "%s/crun", cfg->run_dir) < 0 ||
	    asprintf(&state, "%s/containers", cfg->run_dir) < 0)
		return -ENOMEM;
	if (access(root, F_OK) < 0 && access(state, F_OK) < 0)
		return 0; /* no container ever ran here */
	struct crun_opts o = { .root = root, .state_dir = state };
	if ((r = crun_rt_new(&o, &rt)) < 0)
		return log_warn_errno(r, "node %s: cannot set up the runtime", cfg->node_name);
	if (access(root, F_OK) < 0)
		ids = cJSON_CreateArray();
	else if ((r = crun_list(rt, &ids)) < 0) {
		ret = log_warn_errno(r, "node %s: cannot list containers", cfg->node_name);
		ids = cJSON_CreateArray();
	}
	if (!ids) {
		crun_rt_free(rt);
		return -ENOMEM;
	}
	/* shims whose container crun never created or already forgot */
	if ((d = opendir(state))) {
		struct dirent *de;
		while ((de = readdir(d))) {
			bool seen = de->d_name[0] == '.';
			cJSON_ArrayForEach(c, ids)
			{
				const char *id = cJSON_GetStringValue(c);
				seen = seen || (id && streq(id, de->d_name));
			}
			if (!seen)
				cJSON_AddItemToArray(ids, cJSON_CreateString(de->d_name));
		}
		closedir(d);
	}
	fds = calloc((size_t)cJSON_GetArraySize(ids) + 1, sizeof(*fds));
	if (!fds) {
		crun_rt_free(rt);
		return -ENOMEM;
	}
	cJSON_ArrayForEach(c, ids)
	{
		const char *id = cJSON_GetStringValue(c);
		struct crun_state st;
		struct err e = { 0 };

		if (!id)
			continue;
		if (crun_state(rt, id, &st) == 0 && st.shim_pid > 0 &&
		    (r = shim_pidfd(st.shim_pid, root)) >= 0)
			fds[nfds++] = r;
		if ((r = crun_delete(rt, id, true, &e)) < 0)
			ret = log_warn_errno(r, "node %s: container %s: cannot delete: %s",
					     cfg->node_name, id, e.message);
	}
	pidfds_wait(fds, nfds, 10000);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	crun_rt_free(rt);
	return ret;
}

/* Unmount everything below the node's directories (overlay roots, volumes, namespace
 * bind mounts), deepest first, and the node's pod network namespaces. */
static void mounts_remove(const struct config *cfg)
{
	_cleanup_mountinfo_ struct mountinfo mi = { 0 };
	const struct mountinfo_entry *m;
	char netns_prefix[PATH_MAX];
	char **mps = NULL;
	size_t n = 0;
	int r = mountinfo_open(&mi, NULL);

	if (r < 0)
		log_warn_errno(r, "node %s: cannot read mountinfo", cfg->node_name);
	snprintf(netns_prefix, sizeof(netns_prefix), "/run/netns/shoal-%s-", cfg->node_name);
	while (mi.f && mountinfo_next(&mi, &m) > 0) {
		const char *mp = m->mount_point;
		bool ours = !strncmp(mp, netns_prefix, strlen(netns_prefix)) ||
			    mountinfo_path_below(mp, cfg->state_dir) ||
			    mountinfo_path_below(mp, cfg->run_dir);
		if (!ours)
			continue;
		char **nm = realloc(mps, (n + 1) * sizeof(*mps));
		if (!nm)
			break;
		mps = nm;
		mps[n++] = strdup(mp);
	}
	/* deepest first: longer paths below shorter ones */
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			if (mps[k] && mps[i] && strlen(mps[k]) > strlen(mps[i])) {
				char *t = mps[i];
				mps[i] = mps[k];
				mps[k] = t;
			}
	for (size_t i = 0; i < n; i++) {
		if (mps[i]) {
			umount2(mps[i], MNT_DETACH);
			if (!strncmp(mps[i], netns_prefix, strlen(netns_prefix)))
				unlink(mps[i]);
		}
		free(mps[i]);
	}
	free(mps);
	/* netns files whose mounts are already gone */
	DIR *d = opendir("/run/netns");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
		if (!strncmp(path, netns_prefix, strlen(netns_prefix)))
			unlink(path);
	}
	if (d)
		closedir(d);
}

/* The node's cgroup directory in every mounted hierarchy (v1 controllers and cgroup2). */
static int cgroups_remove(const struct config *cfg)
{
	_cleanup_mountinfo_ struct mountinfo mi = { 0 };
	const struct mountinfo_entry *m;
	int r, ret = 0;

	if ((r = mountinfo_open(&mi, NULL)) < 0)
		return log_warn_errno(r, "node %s: cannot read mountinfo", cfg->node_name);
	while (mountinfo_next(&mi, &m) > 0) {
		_cleanup_free_ char *cg = NULL;
		if (!mountinfo_is_cgroup(m))
			continue;
		if (asprintf(&cg, "%s/%s", m->mount_point, cfg->cgroup_name) < 0)
			return -ENOMEM;
		r = cgroup_rmdir_tree(cg);
		if (r < 0)
			ret = log_warn_errno(r, "node %s: cannot remove cgroup %s", cfg->node_name, cg);
	}
	return ret;
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
	return size * n;
}

/* A decommission: if the daemon still runs, it leaves the gossip cluster gracefully first, so
 * the others see "left" at once rather than suspecting it. */
static void gossip_leave_via_api(const struct config *cfg)
{
	CURL *h;
	long code = 0;
	CURLcode rc;

	if (strempty(cfg->api_socket) || access(cfg->api_socket, F_OK) < 0)
		return;
	h = curl_easy_init();
	if (!h)
		return;
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, cfg->api_socket);
	curl_easy_setopt(h, CURLOPT_URL, "http://localhost/apis/shoal.io/v1/members/leave");
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 15L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (code == 200)
		log_info("node %s: left the gossip cluster", cfg->node_name);
	else if (rc == CURLE_OK)
		log_warn("node %s: the daemon refused to leave the gossip cluster (HTTP %ld)",
			 cfg->node_name, code);
	curl_easy_cleanup(h);
}

/*
 * The daemon still serving the node's API socket, as a pidfd: the socket's peer credentials name
 * the process that listens on it, checked to live in this node's cgroup (not a reused pid or
 * another node's daemon). -ESRCH if none runs.
 */
static int daemon_pidfd(const struct config *cfg)
{
	_cleanup_close_ int sock = -1;
	_cleanup_free_ char *path = NULL, *cg = NULL, *want = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	size_t len = 0;
	int fd;

	if (strempty(cfg->api_socket) || strlen(cfg->api_socket) >= sizeof(sa.sun_path))
		return -ESRCH;
	memcpy(sa.sun_path, cfg->api_socket, strlen(cfg->api_socket));
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.pid <= 0 ||
	    cred.pid == getpid())
		return -ESRCH;
	fd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
	if (fd < 0)
		return -errno;
	/* checked after opening: the pidfd holds on to the process we looked at */
	if (asprintf(&path, "/proc/%d/cgroup", (int)cred.pid) < 0 ||
	    asprintf(&want, "/%s/", cfg->cgroup_name) < 0 ||
	    util_read_file(path, 65536, &cg, &len) < 0 || !strstr(cg, want)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

/*
 * A running daemon keeps its own cgroup (and pods) busy: once it has left the cluster, stop it
 * (SIGTERM, SIGKILL after 30 s) before anything is removed under it.
 */
static void daemon_stop(const struct config *cfg)
{
	int fd = daemon_pidfd(cfg);

	if (fd < 0)
		return;
	log_info("node %s: stopping the running daemon", cfg->node_name);
	if (syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0) == 0)
		pidfds_wait(&fd, 1, 30000);
	close(fd);
}

int shoald_teardown(const struct config *cfg, struct err *e)
{
	char pin_root[PATH_MAX];
	struct np_node *np = NULL;
	int r, ret = 0;
	char *slash;

	snprintf(pin_root, sizeof(pin_root), "%s", cfg->bpf_pin_dir);
	slash = strrchr(pin_root, '/');
	if (slash && slash != pin_root)
		*slash = 0;

	gossip_leave_via_api(cfg);
	daemon_stop(cfg);
	/* pods first: containers, then what they had mounted, then their namespaces */
	r = containers_remove(cfg);
	if (r < 0)
		ret = r;
	mounts_remove(cfg);

	r = np_teardown(pin_root, cfg->node_name, cfg->uplink);
	if (r < 0 && r != -ENOENT)
		ret = log_warn_errno(r, "node %s: cannot remove NodePort datapath", cfg->node_name);
	r = lb_teardown(pin_root, cfg->node_name);
	if (r < 0 && r != -ENOENT)
		ret = log_warn_errno(r, "node %s: cannot remove socket LB pins", cfg->node_name);
	rmdir(cfg->bpf_pin_dir);
	r = routes_teardown(e);
	if (r < 0)
		ret = log_warn_errno(r, "node %s: cannot remove pod network routes: %s",
				     cfg->node_name, e->message);

	struct np_node_opts no = {
		.node_name = cfg->node_name,
		.state_dir = cfg->state_dir,
		.pod_cidr = cfg->pod_cidr,
		.nft_table = cfg->nft_table,
	};
	r = np_node_open(&no, &np, e);
	if (r >= 0) {
		/* a pod's veth goes with its netns only once nothing holds the netns any more */
		r = np_node_veths_remove(np, e);
		if (r < 0)
			ret = log_warn_errno(r, "node %s: cannot remove pod veths: %s",
					     cfg->node_name, e->message);
		r = np_node_teardown(np, e);
		if (r < 0)
			ret = log_warn_errno(r, "node %s: cannot remove nft table %s: %s",
					     cfg->node_name, cfg->nft_table, e->message);
		np_node_close(np);
	}

	r = cgroups_remove(cfg);
	return r < 0 ? r : ret;
}
