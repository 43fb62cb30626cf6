// SPDX-License-Identifier: Apache-2.0
/*
 * svc-load: new TCP connection per request (connect, 1-byte request, 1-byte answer, RST close)
 * against ip:port for a number of seconds; prints {"conns","secs","rate","p50_us","p99_us",
 * "errors"} as JSON. The RST close keeps TIME_WAIT out of the way of a long run.
 *
 * svc-load echo <port>: the server side (accept, read 1 byte, answer it, close).
 */
#include <arpa/inet.h>
#include <errno.h>
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
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
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

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	uint32_t *lat;
	size_t n = 0, cap = 1 << 20, errors = 0;
	uint64_t t0, end, dur;
	double secs;

	if (argc == 3 && !strcmp(argv[1], "echo"))
		return echo(atoi(argv[2]));
	if (argc < 4) {
		fprintf(stderr, "usage: svc-load <ip> <port> <seconds> | echo <port>\n");
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
