// SPDX-License-Identifier: Apache-2.0
/*
 * svc-load: new TCP connection per request (connect, 1-byte request, 1-byte answer, RST close)
 * against ip:port for a number of seconds; prints {"conns","secs","rate","p50_us","p99_us",
 * "errors"} as JSON. The RST close keeps TIME_WAIT out of the way of a long run.
 *
 * svc-load echo <port>: the server side (accept, read 1 byte, answer it, close).
 *
 * svc-load multi <seconds> <block_ms> <name>=<netns path>,<cgroup.procs>,<ip>,<port> ...: one
 * process measures every mode given, in blocks of block_ms each, the modes taking turns (the
 * order rotating every turn) for the given seconds; before each block it enters the mode's
 * network namespace (setns) and cgroup (writes itself to the cgroup.procs given; "-" leaves it
 * where it is), which is all that decides which socket programs see its connect(). Only the
 * blocks' connections are timed, not the switches. Prints {"<name>": {"conns","secs","rate",
 * "p50_us","p99_us","errors"}, ...}: whatever the machine does during the run (other CPUs'
 * work, frequency, the hypervisor) falls on every mode alike.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int echo(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1024) < 0) {
		perror("listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		char c;
		int fd = accept(s, NULL, NULL);

		if (fd < 0)
			continue;
		if (read(fd, &c, 1) == 1 && write(fd, &c, 1) != 1)
			perror("write");
		close(fd);
	}
}

/* One connection: connect, 1-byte request, 1-byte answer, RST close. 0 or -1. */
static int one_conn(const struct sockaddr_in *a)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	char c = 'x';
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) < 0 || write(fd, &c, 1) != 1 ||
	    read(fd, &c, 1) != 1) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return 0;
}

struct mode {
	const char *name;
	int netns;
	char cgprocs[512];
	struct sockaddr_in a[8]; /* one, or a random pick per connection (ip+ip+...) */
	int na;
	uint64_t rnd;
	uint32_t *lat;
	size_t n, cap, errors;
	uint64_t ns;
};

static int mode_enter(struct mode *m)
{
	char pid[32];
	int fd, len, r;

	if (setns(m->netns, CLONE_NEWNET) < 0) {
		perror("setns");
		return -1;
	}
	if (!strcmp(m->cgprocs, "-"))
		return 0;
	fd = open(m->cgprocs, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(m->cgprocs);
		return -1;
	}
	len = snprintf(pid, sizeof(pid), "%d\n", getpid());
	r = write(fd, pid, (size_t)len) == len ? 0 : -1;
	if (r < 0)
		perror(m->cgprocs);
	close(fd);
	return r;
}

static int multi(int argc, char **argv)
{
	double secs = atof(argv[2]);
	uint64_t block = (uint64_t)(atof(argv[3]) * 1e6), end;
	int nm = argc - 4, turn = 0;
	struct mode *ms = calloc((size_t)nm, sizeof(*ms));

	if (!ms || nm < 1)
		return 2;
	for (int i = 0; i < nm; i++) {
		struct mode *m = &ms[i];
		char *eq = strchr(argv[4 + i], '='), *f[4];
		char *p = eq ? eq + 1 : NULL;

		for (int k = 0; k < 4; k++) {
			f[k] = p ? strsep(&p, ",") : NULL;
			if (!f[k]) {
				fprintf(stderr, "mode %s: name=netns,cgroup.procs,ip[+ip...],port\n",
					argv[4 + i]);
				return 2;
			}
		}
		*eq = 0;
		m->name = argv[4 + i];
		m->netns = open(f[0], O_RDONLY | O_CLOEXEC);
		if (m->netns < 0) {
			perror(f[0]);
			return 1;
		}
		snprintf(m->cgprocs, sizeof(m->cgprocs), "%s", f[1]);
		for (char *ip; (ip = strsep(&f[2], "+"));) {
			struct sockaddr_in *a = &m->a[m->na];

			if (m->na == (int)(sizeof(m->a) / sizeof(m->a[0])))
				return 2;
			a->sin_family = AF_INET;
			if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
				return 2;
			a->sin_port = htons((uint16_t)atoi(f[3]));
			m->na++;
		}
		m->rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)i;
		m->cap = 1 << 20;
		m->lat = malloc(m->cap * sizeof(*m->lat));
		if (!m->lat)
			return 1;
	}
	end = now_ns() + (uint64_t)(secs * 1e9);
	while (now_ns() < end) {
		for (int i = 0; i < nm; i++) {
			struct mode *m = &ms[(i + turn) % nm];
			uint64_t t0, t1, s0;

			if (mode_enter(m) < 0)
				return 1;
			t0 = now_ns();
			t1 = t0 + block;
			for (s0 = t0; s0 < t1;) {
				const struct sockaddr_in *a = m->a;
				uint64_t s1;

				if (m->na > 1) {
					/* the client picks a pod itself (xorshift64, multiply-shift) */
					m->rnd ^= m->rnd << 13;
					m->rnd ^= m->rnd >> 7;
					m->rnd ^= m->rnd << 17;
					a += ((m->rnd >> 32) * (uint64_t)m->na) >> 32;
				}
				if (one_conn(a) < 0) {
					if (++m->errors > 1000)
						return 1;
					s0 = now_ns();
					continue;
				}
				s1 = now_ns();
				if (m->n < m->cap)
					m->lat[m->n++] = (uint32_t)((s1 - s0) / 1000);
				s0 = s1;
			}
			m->ns += s0 - t0;
		}
		turn++;
	}
	printf("{");
	for (int i = 0; i < nm; i++) {
		struct mode *m = &ms[i];

		qsort(m->lat, m->n, sizeof(*m->lat), cmp_u32);
		printf("%s\"%s\":{\"conns\":%zu,\"secs\":%.3f,\"rate\":%.1f,\"p50_us\":%u,"
		       "\"p99_us\":%u,\"errors\":%zu,\"turns\":%d}",
		       i ? "," : "", m->name, m->n, m->ns / 1e9, m->n / (m->ns / 1e9),
		       m->n ? m->lat[m->n / 2] : 0, m->n ? m->lat[m->n * 99 / 100] : 0, m->errors,
		       turn);
	}
	printf("}\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	uint32_t *lat;
	size_t n = 0, cap = 1 << 20, errors = 0;
	uint64_t t0, end, dur;
	double secs;

	if (argc == 3 && !strcmp(argv[1], "echo"))
		return echo(atoi(argv[2]));
	if (argc >= 5 && !strcmp(argv[1], "multi"))
		return multi(argc, argv);
	if (argc < 4) {
		fprintf(stderr,
			"usage: svc-load <ip> <port> <seconds> | echo <port> | multi <seconds> "
			"<block_ms> <name>=<netns>,<cgroup.procs>,<ip>,<port> ...\n");
		return 2;
	}
	inet_pton(AF_INET, argv[1], &a.sin_addr);
	a.sin_port = htons((uint16_t)atoi(argv[2]));
	secs = atof(argv[3]);
	lat = malloc(cap * sizeof(*lat));
	if (!lat)
		return 1;
	t0 = now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	for (;;) {
		uint64_t s0 = now_ns();
		char c = 'x';
		int fd;

		if (s0 >= end)
			break;
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
			errors++;
			if (fd >= 0)
				close(fd);
			if (errors > 1000)
				break;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		if (n < cap)
			lat[n++] = (uint32_t)((now_ns() - s0) / 1000);
	}
	dur = now_ns() - t0;
	qsort(lat, n, sizeof(*lat), cmp_u32);
	printf("{\"conns\":%zu,\"secs\":%.3f,\"rate\":%.1f,\"p50_us\":%u,\"p99_us\":%u,"
	       "\"errors\":%zu}\n",
	       n, dur / 1e9, n / (dur / 1e9), n ? lat[n / 2] : 0, n ? lat[n * 99 / 100] : 0,
	       errors);
	free(lat);
	return 0;
}
