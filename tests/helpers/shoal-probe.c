// SPDX-License-Identifier: Apache-2.0
/*
 * shoal-probe: a tiny static TCP/UDP server and client for the services end-to-end test. It
 * runs inside pods of the image `shoal-probe:latest` (busybox plus this binary), because
 * busybox's nc has no UDP and its clients cannot keep a connected UDP socket or a TCP
 * connection open across a test step.
 *
 *   shoal-probe serve PORT...            TCP and UDP on each PORT. TCP: greets with
 *                                        "NAME CLIENT-IP\n", then answers each line L with
 *                                        "NAME L\n". UDP: answers each datagram D with
 *                                        "NAME CLIENT-IP D". NAME = hostname (the pod name).
 *   shoal-probe tcp HOST PORT [N]        N times (default 1): connect, read the greeting:
 *                                        "ok NAME from=CLIENT-IP peer=IP:PORT ms=T" |
 *                                        "err ERRNO ms=T"
 *   shoal-probe udp HOST PORT [N]        N unconnected datagrams, each on a new socket:
 *                                        "ok NAME from=CLIENT-IP src=IP:PORT" | "err ERRNO"
 *   shoal-probe udp-loop HOST PORT MS    a connected UDP socket, one datagram every MS ms:
 *                                        "reply NAME SEQ" | "timeout SEQ" | "error ERRNO SEQ";
 *                                        after an error it reconnects ("reconnect"), as DNS
 *                                        clients do; a timeout alone does not.
 *   shoal-probe tcp-hold HOST PORT MS    one TCP connection, one line every MS ms:
 *                                        "connected NAME", "reply NAME SEQ"; exits on error.
 * Output is line-buffered (container logs). Exit status: 0 ok, 1 a network error, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char name[256];

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int addr_parse(const char *host, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void timeouts(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* one line from fd (byte at a time: tiny messages), without the newline; -errno or length */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		char c;
		ssize_t k = read(fd, &c, 1);
		if (k < 0)
			return -errno;
		if (k == 0)
			return n ? (int)n : -ECONNRESET;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = 0;
	return (int)n;
}

static void serve_conn(int c, const struct sockaddr_in *peer)
{
	char line[512], out[800], ip[INET_ADDRSTRLEN];
	int n;

	inet_ntop(AF_INET, &peer->sin_addr, ip, sizeof(ip));
	n = snprintf(out, sizeof(out), "%s %s\n", name, ip);
	if (write(c, out, n) != n)
		_exit(0);
	while (read_line(c, line, sizeof(line)) >= 0) {
		n = snprintf(out, sizeof(out), "%s %s\n", name, line);
		if (write(c, out, n) != n)
			break;
	}
	_exit(0);
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static int serve(int nports, char **ports)
{
	struct pollfd pfd[64];
	int n = 0, one = 1;

	signal(SIGTERM, on_term); /* PID 1 of a container: no default action */
	signal(SIGCHLD, SIG_IGN); /* connection children reap themselves */
	for (int i = 0; i < nports && n + 2 <= 64; i++) {
		struct sockaddr_in sa;
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (addr_parse("0.0.0.0", ports[i], &sa) < 0 || t < 0 || u < 0)
			return 2;
		setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(t, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(t, 128) < 0 ||
		    bind(u, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("bind");
			return 1;
		}
		pfd[n++] = (struct pollfd){ .fd = t, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = u, .events = POLLIN };
	}
	printf("serving %s\n", name);
	for (;;) {
		if (poll(pfd, n, -1) < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			struct sockaddr_in peer;
			socklen_t pl = sizeof(peer);
			char buf[512], out[800], ip[INET_ADDRSTRLEN];

			if (!(pfd[i].revents & POLLIN))
				continue;
			if (i % 2 == 0) {
				int c = accept4(pfd[i].fd, (struct sockaddr *)&peer, &pl,
						SOCK_CLOEXEC);
				if (c < 0)
					continue;
				if (fork() == 0)
					serve_conn(c, &peer);
				close(c);
			} else {
				ssize_t k = recvfrom(pfd[i].fd, buf, sizeof(buf) - 1, 0,
						     (struct sockaddr *)&peer, &pl);
				if (k < 0)
					continue;
				buf[k] = 0;
				inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
				int m = snprintf(out, sizeof(out), "%s %s %s", name, ip, buf);
				sendto(pfd[i].fd, out, m, 0, (struct sockaddr *)&peer, pl);
			}
		}
	}
}

static const char *fmt_addr(const struct sockaddr_in *sa, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, ntohs(sa->sin_port));
	return buf;
}

static int tcp_once(const struct sockaddr_in *sa)
{
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	char line[512], pb[64];
	double t0 = now_ms();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	timeouts(fd, 3000);
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		printf("err %d ms=%.1f\n", errno, now_ms() - t0);
		close(fd);
		return 1;
	}
	getpeername(fd, (struct sockaddr *)&peer, &pl);
	r = read_line(fd, line, sizeof(line));
	close(fd);
	if (r < 0) {
		printf("err %d ms=%.1f\n", -r, now_ms() - t0);
		return 1;
	}
	*strchrnul(line, ' ') = '\0';
	printf("ok %s from=%s peer=%s ms=%.1f\n", line, line + strlen(line) + 1,
	       fmt_addr(&peer, pb, sizeof(pb)), now_ms() - t0);
	return 0;
}

static int udp_once(const struct sockaddr_in *sa)
{
	struct sockaddr_in src;
	socklen_t sl = sizeof(src);
	char buf[512], sb[64];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t k;

	timeouts(fd, 2000);
	if (sendto(fd, "hi", 2, 0, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    (k = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&src, &sl)) < 0) {
		printf("err %d\n", errno);
		close(fd);
		return 1;
	}
	close(fd);
	buf[k] = 0;
	char *from = strchrnul(buf, ' ');
	if (*from)
		*from++ = '\0';
	*strchrnul(from, ' ') = '\0';
	printf("ok %s from=%s src=%s\n", buf, from, fmt_addr(&src, sb, sizeof(sb)));
	return 0;
}

static int udp_connect(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	timeouts(fd, 500);
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		printf("error %d connect\n", errno);
		close(fd);
		return -1;
	}
	return fd;
}

static int udp_loop(const struct sockaddr_in *sa, int ms)
{
	int fd = udp_connect(sa);

	for (unsigned long seq = 1; seq; seq++) {
		char buf[512], msg[32];
		ssize_t k;
		int m = snprintf(msg, sizeof(msg), "%lu", seq);

		if (fd < 0) {
			usleep(ms * 1000);
			fd = udp_connect(sa);
			continue;
		}
		if (send(fd, msg, m, 0) < 0 || (k = recv(fd, buf, sizeof(buf) - 1, 0)) < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				printf("timeout %lu\n", seq);
			} else {
				printf("error %d %lu\n", errno, seq);
				close(fd);
				fd = udp_connect(sa);
				printf("reconnect\n");
			}
		} else {
			buf[k] = 0;
			printf("reply %s\n", buf);
		}
		usleep(ms * 1000);
	}
	return 0;
}

static int tcp_hold(const struct sockaddr_in *sa, int ms)
{
	char line[512], msg[32];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	timeouts(fd, 3000);
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		printf("error %d connect\n", errno);
		return 1;
	}
	if ((r = read_line(fd, line, sizeof(line))) < 0) {
		printf("error %d greeting\n", -r);
		return 1;
	}
	printf("connected %s\n", line);
	for (unsigned long seq = 1;; seq++) {
		int m = snprintf(msg, sizeof(msg), "%lu\n", seq);

		if (write(fd, msg, m) != m) {
			printf("error %d %lu\n", errno, seq);
			return 1;
		}
		if ((r = read_line(fd, line, sizeof(line))) < 0) {
			printf("error %d %lu\n", -r, seq);
			return 1;
		}
		printf("reply %s\n", line);
		usleep(ms * 1000);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_term);
	if (gethostname(name, sizeof(name)) < 0)
		strcpy(name, "?");
	if (argc >= 3 && !strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2);
	if (argc < 4 || addr_parse(argv[2], argv[3], &sa) < 0)
		goto usage;
	if (!strcmp(argv[1], "tcp") || !strcmp(argv[1], "udp")) {
		int n = argc > 4 ? atoi(argv[4]) : 1, bad = 0;
		for (int i = 0; i < n; i++)
			bad |= argv[1][0] == 't' ? tcp_once(&sa) : udp_once(&sa);
		return bad;
	}
	if (argc == 5 && !strcmp(argv[1], "udp-loop"))
		return udp_loop(&sa, atoi(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "tcp-hold"))
		return tcp_hold(&sa, atoi(argv[4]));
usage:
	fprintf(stderr, "usage: shoal-probe serve PORT... | tcp|udp HOST PORT [N] | "
			"udp-loop|tcp-hold HOST PORT MS\n");
	return 2;
}
