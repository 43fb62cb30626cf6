// SPDX-License-Identifier: Apache-2.0
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/macro.h"
#include "lib/util.h"

int util_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *n = realloc(buf, cap);
			if (!n)
				return -ENOMEM;
			buf = n;
		}
		ssize_t k = read(fd, buf + len, cap - len - 1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		len += k;
		if (len > max)
			return -EFBIG;
	}
	if (!buf && !(buf = calloc(1, 1)))
		return -ENOMEM;
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

static int write_file(const char *path, const void *buf, size_t len, mode_t mode, bool sync)
{
	_cleanup_free_ char *tmp = NULL;
	int fd;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	for (size_t o = 0; o < len;) {
		ssize_t k = write(fd, (const char *)buf + o, len - o);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			close(fd);
			unlink(tmp);
			return r;
		}
		o += k;
	}
	if ((sync && fsync(fd) < 0) || close(fd) < 0) {
		int r = -errno;
		unlink(tmp);
		return r;
	}
	if (rename(tmp, path) < 0) {
		int r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

int util_write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	return write_file(path, buf, len, mode, true);
}

int util_write_file_volatile(const char *path, const void *buf, size_t len, mode_t mode)
{
	return write_file(path, buf, len, mode, false);
}

int util_mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

bool util_dns1123_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

bool util_dns1123_subdomain(const char *s)
{
	char buf[254];
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	memcpy(buf, s, n + 1);
	for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok;
	     tok = strtok_r(NULL, ".", &save))
		if (!util_dns1123_label(tok))
			return false;
	return s[0] != '.' && s[n - 1] != '.' && !strstr(s, "..");
}

void util_rfc3339(int64_t unix_sec, char *buf, size_t len)
{
	time_t t = (time_t)unix_sec;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int util_rfc3339_parse(const char *s, int64_t *ret)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (!end)
		return -EINVAL;
	if (*end == '.')
		for (end++; *end >= '0' && *end <= '9'; end++)
			;
	if (*end != 'Z' || end[1])
		return -EINVAL;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

void util_uuid4(char *buf)
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
		/* getrandom on a booted kernel does not fail for 16 bytes; keep going anyway */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)(ts.tv_nsec >> (i % 8)) ^ (uint8_t)i;
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

long long util_mem_total_bytes(void)
{
	_cleanup_free_ char *buf = NULL;
	long long kib = 0;
	char *p;

	if (util_read_file("/proc/meminfo", 1 << 16, &buf, NULL) < 0)
		return 0;
	p = strstr(buf, "MemTotal:");
	if (p)
		sscanf(p, "MemTotal: %lld kB", &kib);
	return kib * 1024;
}

static uint64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t util_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

uint64_t util_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

uint64_t util_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct spawn_ctx {
	int (*fn)(void *arg);
	void *arg;
	sigset_t mask;
};

static int spawn_child(void *a)
{
	struct spawn_ctx *c = a;

	/* handlers belong to the parent (and run on its memory): back to the defaults */
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;

		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
			continue;
		if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
			continue;
		sa = (struct sigaction){ .sa_handler = SIG_DFL };
		sigaction(sig, &sa, NULL);
	}
	sigprocmask(SIG_SETMASK, &c->mask, NULL);
	_exit(c->fn(c->arg));
}

pid_t util_spawn(int (*fn)(void *arg), void *arg)
{
	const size_t size = 256 << 10;
	struct spawn_ctx c = { .fn = fn, .arg = arg };
	sigset_t all;
	void *stack;
	pid_t pid;
	int r = 0;

	stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		     -1, 0);
	if (stack == MAP_FAILED)
		return -errno;
	/* no signal may run a handler in the child before it has reset them */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &c.mask);
	pid = clone(spawn_child, (char *)stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
	if (pid < 0)
		r = -errno;
	pthread_sigmask(SIG_SETMASK, &c.mask, NULL);
	munmap(stack, size);
	return pid < 0 ? r : pid;
}
