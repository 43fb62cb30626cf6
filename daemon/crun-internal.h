/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the crun driver (crun.c) and the shim (crun_shim.c). */
#ifndef SHOAL_DAEMON_CRUN_INTERNAL_H
#define SHOAL_DAEMON_CRUN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* In a child about to exec crun: on a hybrid host (unified != NULL) enter a private mount
 * namespace and detach the cgroup2 mount. Returns -errno. */
int crun_ns_prepare(const char *unified);
/* A sealed in-memory copy of the crun binary (found by PATH when crun has no '/'): exec'd from
 * it, crun sees itself already "cloned" and skips copying and re-executing itself, which it
 * otherwise does on every invocation (CVE-2019-5736: the container cannot overwrite a sealed
 * memfd). Returns the fd (close-on-exec) or -errno. */
int crun_memfd(const char *crun);
/* In a child: exec crun from crun_fd if >= 0, else argv[0] by PATH; returns only on failure. */
void crun_execv(int crun_fd, const char *const argv[]);
/* Wall clock in ns and as RFC 3339 with nanoseconds ("2024-01-01T00:00:00.000000000Z"). */
int64_t crun_now_ns(void);
void crun_fmt_ns(int64_t ns, char *buf, size_t len);

/* Listen on a fresh unix socket in dir for crun's --console-socket; *ret_path its name (the
 * caller unlinks it). Returns the listening fd. */
int crun_console_listen(const char *dir, char **ret_path);
/* Accept one connection within timeout_ms and receive the pty master crun sends. */
int crun_console_recv(int lfd, int timeout_ms);

#endif
