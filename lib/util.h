/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers: files, directories, names, time formatting, uuids. */
#ifndef SHOAL_LIB_UTIL_H
#define SHOAL_LIB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read a whole file (at most max bytes, -EFBIG beyond); *ret NUL-terminated. */
int util_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* Write atomically (tmp + fsync + rename). */
int util_write_file(const char *path, const void *buf, size_t len, mode_t mode);
/* The same without the fsync: readers still never see a partial file, but a machine crash may
 * lose it. For what does not outlive the machine anyway (a pod's runtime files), where the
 * fsync only made pod starts wait on the disk. */
int util_write_file_volatile(const char *path, const void *buf, size_t len, mode_t mode);
/* mkdir -p */
int util_mkdir_p(const char *path, mode_t mode);

/* DNS-1123 label (<=63, [a-z0-9-], alnum at both ends) and subdomain (<=253, dot-separated). */
bool util_dns1123_label(const char *s);
bool util_dns1123_subdomain(const char *s);

/* RFC 3339 UTC timestamp with second precision into buf (>= 21 bytes). */
void util_rfc3339(int64_t unix_sec, char *buf, size_t len);
int util_rfc3339_parse(const char *s, int64_t *ret);
/* Random UUID v4 into buf (>= 37 bytes). */
void util_uuid4(char *buf);
/* MemTotal from /proc/meminfo, bytes (0 if unreadable). */
long long util_mem_total_bytes(void);
/* Monotonic and wall clocks in ms. */
uint64_t util_now_ms(void);
uint64_t util_mono_ms(void);
uint64_t util_mono_us(void);

/* Run fn(arg) in a child process that shares our memory until it execs or exits, as
 * posix_spawn does (clone with CLONE_VM | CLONE_VFORK; the calling thread waits meanwhile):
 * unlike fork, nothing of a large, busy parent is copied, and the parent takes no copy-on-write
 * faults afterwards. The child starts with every signal handler reset to the default and the
 * caller's signal mask. fn may only make system calls (dup2, unshare, mount, setsid, exec...):
 * no malloc, locks or stdio, since it runs on the parent's heap; it must end in an exec or
 * return its exit status. Returns the child's pid (reap it with waitpid) or -errno. */
pid_t util_spawn(int (*fn)(void *arg), void *arg);

#endif
