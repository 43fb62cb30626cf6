// SPDX-License-Identifier: Apache-2.0
/* What both the crun driver (crun.c, in shoald) and the shim (crun_shim.c) use. It needs libc
 * only, so shoal-shim, started once per container, loads no other library. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "daemon/crun-internal.h"
#include "lib/macro.h"

int64_t crun_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void crun_fmt_ns(int64_t ns, char *buf, size_t len)
{
	time_t sec = ns / 1000000000LL;
	struct tm tm;
	char tmp[32];

	gmtime_r(&sec, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09lldZ", tmp, (long long)(ns % 1000000000LL));
}

/* ---- process helpers ---- */

int crun_ns_prepare(const char *unified)
{
	if (!unified)
		return 0;
	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	/* slave: later host mounts (netns files) still propagate in, nothing leaks out */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return -errno;
	if (umount2(unified, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return -errno;
	return 0;
}

/* ---- console ---- */

static int recv_fd(int sock)
{
	char dummy[256];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { dummy, sizeof(dummy) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) < 0)
		return -errno;
	c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -EBADMSG;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

int crun_console_listen(const char *dir, char **ret_path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *path;
	int fd;

	if (asprintf(&path, "%s/console-%d-%lld.sock", dir, (int)getpid(),
		     (long long)crun_now_ns()) < 0)
		return -ENOMEM;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		free(path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		free(path);
		return r;
	}
	*ret_path = path;
	return fd;
}

int crun_console_recv(int lfd, int timeout_ms)
{
	struct pollfd pfd = { lfd, POLLIN, 0 };
	int c, fd;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return -errno;
	fd = recv_fd(c);
	close(c);
	return fd;
}

/* ---- the crun binary ---- */

static int find_in_path(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH"), *p, *end;

	if (strchr(name, '/')) {
		snprintf(buf, len, "%s", name);
		return 0;
	}
	for (p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		if (end == p)
			snprintf(buf, len, "./%s", name);
		else
			snprintf(buf, len, "%.*s/%s", (int)(end - p), p, name);
		if (access(buf, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

int crun_memfd(const char *crun)
{
	char path[4096];
	struct stat st;
	off_t off = 0;
	int fd, mfd, r;

	if ((r = find_in_path(crun, path, sizeof(path))) < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	mfd = memfd_create("crun", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	while (off < st.st_size) {
		ssize_t n = sendfile(mfd, fd, &off, (size_t)(st.st_size - off));
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			close(fd);
			close(mfd);
			return r;
		}
	}
	close(fd);
	/* exactly the seals crun (and runc) look for on /proc/self/exe */
	if (fchmod(mfd, 0755) < 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
		r = -errno;
		close(mfd);
		return r;
	}
	return mfd;
}

void crun_execv(int crun_fd, const char *const argv[])
{
	extern char **environ;

	if (crun_fd >= 0)
		execveat(crun_fd, "", (char *const *)argv, environ, AT_EMPTY_PATH);
	execvp(argv[0], (char *const *)argv);
}
