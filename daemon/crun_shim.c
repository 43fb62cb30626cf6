// SPDX-License-Identifier: Apache-2.0
/*
 * shoal-shim: one per container, conmon-like. Runs `crun create` with the container's stdout
 * and stderr on pipes (or a pty), reports "ok <pid>" / "err <status> <message>" on the sync fd,
 * then stays the container's subreaper: copies output into the log file in the Kubernetes CRI
 * format ("<RFC3339Nano> stdout F <line>") and writes exit.json when the container exits.
 * It holds no daemon state, so containers and logging survive shoald restarts.
 */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <limits.h>

#include "daemon/bundle.h"
#include "daemon/crun.h"
#include "daemon/crun-internal.h"
#include "lib/macro.h"
#include "lib/util.h"

#define LINE_MAX_BYTES (16 * 1024) /* longer lines are split into P(artial) records */

struct stream {
	const char *name; /* stdout / stderr */
	int fd;
	char buf[LINE_MAX_BYTES];
	size_t len;
};

struct shim {
	const char *crun, *root, *id, *bundle, *log, *state, *unified;
	int sync_fd, log_fd, crun_fd; /* crun_fd: crun_memfd() passed by the driver, or -1 */
	bool start;			/* --start: the container runs, not only created */
};

static void log_record(struct shim *s, const char *stream, bool partial, const char *p, size_t n)
{
	char ts[48], head[96];
	struct iovec iov[3];
	int hl;

	crun_fmt_ns(crun_now_ns(), ts, sizeof(ts));
	hl = snprintf(head, sizeof(head), "%s %s %c ", ts, stream, partial ? 'P' : 'F');
	iov[0] = (struct iovec){ head, hl };
	iov[1] = (struct iovec){ (void *)p, n };
	iov[2] = (struct iovec){ "\n", 1 };
	/* one writev per record keeps records whole for concurrent readers */
	if (writev(s->log_fd, iov, 3) < 0) {
		/* nothing sensible to do: the container keeps running */
	}
}

static void stream_feed(struct shim *s, struct stream *st, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = data[i];
		if (c == '\n') {
			size_t len = st->len;
			if (len && st->buf[len - 1] == '\r')
				len--; /* ptys turn \n into \r\n */
			log_record(s, st->name, false, st->buf, len);
			st->len = 0;
			continue;
		}
		st->buf[st->len++] = c;
		if (st->len == sizeof(st->buf)) {
			log_record(s, st->name, true, st->buf, st->len);
			st->len = 0;
		}
	}
}

static void stream_flush(struct shim *s, struct stream *st)
{
	if (st->len)
		log_record(s, st->name, false, st->buf, st->len);
	st->len = 0;
}

/* true while the fd is open */
static bool stream_read(struct shim *s, struct stream *st)
{
	char buf[65536];
	ssize_t n = read(st->fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) { /* EOF, or EIO on a pty whose slave side is gone */
		close(st->fd);
		st->fd = -1;
		return false;
	}
	stream_feed(s, st, buf, n);
	return true;
}

static void sync_send(struct shim *s, const char *fmt, ...) _printf_(2, 3);
static void sync_send(struct shim *s, const char *fmt, ...)
{
	va_list ap;

	if (s->sync_fd < 0)
		return;
	va_start(ap, fmt);
	vdprintf(s->sync_fd, fmt, ap);
	va_end(ap);
	close(s->sync_fd);
	s->sync_fd = -1;
}

/* Last non-empty line of crun's log (its error), without the JSON wrapper if any. */
static void crun_error(struct shim *s, char *out, size_t len)
{
	_cleanup_free_ char *p = NULL, *buf = NULL;
	char *line = NULL, *save = NULL;

	snprintf(out, len, "crun create failed");
	if (asprintf(&p, "%s/crun.log", s->state) < 0 || util_read_file(p, 1 << 20, &buf, NULL) < 0)
		return;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (*l)
			line = l;
	if (line)
		snprintf(out, len, "%s", line);
}

/* process.terminal and the stdin annotation */
static bool bundle_settings(const char *bundle, bool *want_stdin)
{
	_cleanup_free_ char *p = NULL, *buf = NULL;
	_cleanup_json_ cJSON *cfg = NULL;

	*want_stdin = false;
	if (asprintf(&p, "%s/config.json", bundle) < 0 || util_read_file(p, 1 << 22, &buf, NULL) < 0)
		return false;
	cfg = cJSON_Parse(buf);
	*want_stdin = streq(cJSON_GetStringValue(cJSON_GetObjectItem(
				    cJSON_GetObjectItem(cfg, "annotations"), BUNDLE_ANN_STDIN)) ?: "",
			    "true");
	return cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "process"), "terminal"));
}

static int write_exit(struct shim *s, int status, int64_t created)
{
	_cleanup_free_ char *p = NULL, *txt = NULL;
	_cleanup_json_ cJSON *j = cJSON_CreateObject();
	int64_t now = crun_now_ns();
	char ts[48];

	if (!j || asprintf(&p, "%s/exit.json", s->state) < 0)
		return -ENOMEM;
	if (WIFSIGNALED(status)) {
		cJSON_AddNumberToObject(j, "exitCode", 128 + WTERMSIG(status));
		cJSON_AddNumberToObject(j, "signal", WTERMSIG(status));
	} else {
		cJSON_AddNumberToObject(j, "exitCode", WEXITSTATUS(status));
		cJSON_AddNumberToObject(j, "signal", 0);
	}
	cJSON_AddNumberToObject(j, "createdNs", created);
	cJSON_AddNumberToObject(j, "finishedNs", now);
	crun_fmt_ns(now, ts, sizeof(ts));
	cJSON_AddStringToObject(j, "finishedAt", ts);
	if (!(txt = cJSON_PrintUnformatted(j)))
		return -ENOMEM;
	return util_write_file_volatile(p, txt, strlen(txt), 0600);
}

static int shim_run(struct shim *s)
{
	struct stream out = { .name = "stdout", .fd = -1 }, err = { .name = "stderr", .fd = -1 };
	_cleanup_free_ char *pidfile = NULL, *crunlog = NULL, *sock = NULL, *pidbuf = NULL;
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, lfd = -1, sfd, st = 0, cstatus = 0;
	int in_fd = -1;
	bool want_stdin, tty = bundle_settings(s->bundle, &want_stdin), exited = false;
	int64_t created, exited_at = 0;
	sigset_t mask;
	pid_t c, cpid;
	char msg[2048], buf[32];

	if (asprintf(&pidfile, "%s/pid", s->state) < 0 ||
	    asprintf(&crunlog, "file:%s/crun.log", s->state) < 0)
		return -ENOMEM;
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	{
		_cleanup_free_ char *sp = NULL;
		if (asprintf(&sp, "%s/shim.pid", s->state) < 0)
			return -ENOMEM;
		util_write_file_volatile(sp, buf, strlen(buf), 0600);
	}

	if (tty) {
		lfd = crun_console_listen(s->state, &sock);
		if (lfd < 0) {
			sync_send(s, "err 1 console socket: %s\n", strerror(-lfd));
			return lfd;
		}
	} else if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		sync_send(s, "err 1 pipe: %m\n");
		return -errno;
	}

	if (want_stdin) {
		/* attach writes the container's stdin into a FIFO; the shim keeps it open for
		 * reading and writing, so writers come and go without the container seeing EOF */
		_cleanup_free_ char *fifo = NULL;

		if (asprintf(&fifo, "%s/stdin", s->state) < 0)
			return -ENOMEM;
		(void)unlink(fifo);
		if (mkfifo(fifo, 0600) < 0 || (in_fd = open(fifo, O_RDWR | O_CLOEXEC)) < 0) {
			int r = -errno;

			sync_send(s, "err 1 stdin fifo %s: %s\n", fifo, strerror(-r));
			return r;
		}
	}

	c = fork();
	if (c < 0) {
		sync_send(s, "err 1 fork: %m\n");
		return -errno;
	}
	if (c == 0) {
		const char *argv[20];
		int n = 0, null = open("/dev/null", O_RDWR);
		sigprocmask(SIG_SETMASK, &(sigset_t){ 0 }, NULL);
		dup2(in_fd >= 0 && !tty ? in_fd : null, 0);
		dup2(tty ? null : po[1], 1);
		dup2(tty ? null : pe[1], 2);
		if (crun_ns_prepare(*s->unified ? s->unified : NULL) < 0)
			_exit(126);
		argv[n++] = s->crun;
		argv[n++] = "--root";
		argv[n++] = s->root;
		argv[n++] = "--cgroup-manager=cgroupfs";
		argv[n++] = "--log";
		argv[n++] = crunlog;
		/* one crun invocation: crun itself applies process.oomScoreAdj */
		if (s->start) {
			argv[n++] = "run";
			argv[n++] = "--detach";
		} else {
			argv[n++] = "create";
		}
		argv[n++] = "--bundle";
		argv[n++] = s->bundle;
		argv[n++] = "--pid-file";
		argv[n++] = pidfile;
		if (tty) {
			argv[n++] = "--console-socket";
			argv[n++] = sock;
		}
		argv[n++] = s->id;
		argv[n] = NULL;
		crun_execv(s->crun_fd, argv);
		_exit(127);
	}
	if (!tty) {
		close(po[1]);
		close(pe[1]);
		out.fd = po[0];
		err.fd = pe[0];
	}
	while (waitpid(c, &st, 0) < 0)
		if (errno != EINTR)
			break;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		crun_error(s, msg, sizeof(msg));
		sync_send(s, "err %d %s\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
			  msg);
		if (sock)
			unlink(sock);
		return -EIO;
	}
	if (tty) {
		int m = crun_console_recv(lfd, 5000);
		close(lfd);
		unlink(sock);
		if (m < 0) {
			sync_send(s, "err 1 no terminal from crun: %s\n", strerror(-m));
			return m;
		}
		out.fd = m;
	}
	if (util_read_file(pidfile, 64, &pidbuf, NULL) < 0 || (cpid = atoi(pidbuf)) <= 0) {
		sync_send(s, "err 1 crun wrote no pid file\n");
		return -EIO;
	}
	created = crun_now_ns();
	sync_send(s, "ok %d\n", (int)cpid);

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return -errno;

	for (;;) {
		struct pollfd p[4] = { { sfd, POLLIN, 0 },
				       { out.fd, POLLIN, 0 },
				       { err.fd, POLLIN, 0 },
				       { tty && !exited ? in_fd : -1, POLLIN, 0 } };
		int timeout = -1, k;

		if (exited) {
			/* background processes may keep the pipes open: give output 200 ms */
			int64_t left = 200 - (crun_now_ns() - exited_at) / 1000000;
			if ((out.fd < 0 && err.fd < 0) || left <= 0)
				break;
			timeout = (int)left;
		}
		k = poll(p, 4, timeout);
		if (k < 0 && errno != EINTR)
			break;
		if (p[1].revents && out.fd >= 0)
			stream_read(s, &out);
		if (p[2].revents && err.fd >= 0)
			stream_read(s, &err);
		if (p[3].revents & POLLIN) {
			/* a terminal's input goes through its master, which the shim holds */
			char in[4096];
			ssize_t n = read(in_fd, in, sizeof(in));

			if (n > 0 && out.fd >= 0) /* fails only once the container is exiting */
				(void)!write(out.fd, in, (size_t)n);
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			for (;;) {
				int ws;
				pid_t w = waitpid(-1, &ws, WNOHANG);
				if (w <= 0)
					break;
				if (w == cpid) {
					cstatus = ws;
					exited = true;
					exited_at = crun_now_ns();
				}
			}
		}
	}
	stream_flush(s, &out);
	stream_flush(s, &err);
	return write_exit(s, cstatus, created);
}

int crun_shim_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "crun", required_argument, NULL, 'c' },   { "root", required_argument, NULL, 'r' },
		{ "id", required_argument, NULL, 'i' },	    { "bundle", required_argument, NULL, 'b' },
		{ "log", required_argument, NULL, 'l' },    { "state", required_argument, NULL, 's' },
		{ "sync-fd", required_argument, NULL, 'f' }, { "unified", required_argument, NULL, 'u' },
		{ "crun-fd", required_argument, NULL, 'C' }, { "detach", no_argument, NULL, 'd' },
		{ "start", no_argument, NULL, 'S' },
		{},
	};
	struct shim s = { .crun = "crun", .sync_fd = -1, .crun_fd = -1, .unified = "" };
	bool detach = false;
	sigset_t mask;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c': s.crun = optarg; break;
		case 'r': s.root = optarg; break;
		case 'i': s.id = optarg; break;
		case 'b': s.bundle = optarg; break;
		case 'l': s.log = optarg; break;
		case 's': s.state = optarg; break;
		case 'f': s.sync_fd = atoi(optarg); break;
		case 'u': s.unified = optarg; break;
		case 'C': s.crun_fd = atoi(optarg); break;
		case 'd': detach = true; break;
		case 'S': s.start = true; break;
		default: return 2;
		}
	}
	if (s.sync_fd >= 0)
		fcntl(s.sync_fd, F_SETFD, FD_CLOEXEC);
	if (s.crun_fd >= 0 && fcntl(s.crun_fd, F_SETFD, FD_CLOEXEC) < 0)
		s.crun_fd = -1;
	if (detach) {
		/* the driver waits for this process only: the shim goes on as its child, which
		 * init (or the nearest subreaper) adopts */
		pid_t pid = fork();

		if (pid < 0) {
			sync_send(&s, "err 1 shim: fork: %m\n");
			return 1;
		}
		if (pid > 0)
			_exit(0);
	}
	if (!s.root || !s.id || !s.bundle || !s.log || !s.state) {
		sync_send(&s, "err 2 shim: missing arguments\n");
		return 2;
	}
	if (chdir("/") < 0) {
		/* keep going: only matters for unmounting */
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	/* SIGCHLD is read from a signalfd */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* the container's init is re-parented to us when `crun create` exits */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		sync_send(&s, "err 1 shim: subreaper: %m\n");
		return 1;
	}
	{
		_cleanup_free_ char *dir = strdup(s.log);
		char *slash = dir ? strrchr(dir, '/') : NULL;
		if (slash && slash != dir) {
			*slash = 0;
			util_mkdir_p(dir, 0755);
		}
	}
	s.log_fd = open(s.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (s.log_fd < 0) {
		sync_send(&s, "err 1 shim: log file %s: %m\n", s.log);
		return 1;
	}
	return shim_run(&s) < 0 ? 1 : 0;
}
