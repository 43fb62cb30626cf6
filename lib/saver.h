/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A file written in the background (util_write_file: tmp + fsync + rename on a thread of its
 * own), so that an event loop never waits on the disk: on ext4 mounted with discard under load
 * the fsync and the rename that replaces the old file can take hundreds of milliseconds.
 *
 * One write in flight per saver. saver_put() copies the content; a content put while a write
 * runs is queued, and a newer put replaces a queued one (coalesced), so the last content put
 * always ends on disk once the writes finish. saver_free() writes what is queued and joins.
 * A secret saver wipes its copies (sodium_memzero) before freeing them.
 *
 * A caller that must know when its content is durable (an operation that answers only then)
 * takes a ticket with saver_put_ticket() and asks saver_written() when saver_fd() is readable.
 */
#ifndef SHOAL_LIB_SAVER_H
#define SHOAL_LIB_SAVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct saver;

/* A saver of path (copied) with the file mode; the thread starts here. */
int saver_new(const char *path, mode_t mode, bool secret, struct saver **ret);
/* Queue len bytes of data (copied) to be written; -ENOMEM. Never waits for the disk. */
int saver_put(struct saver *s, const void *data, size_t len);
/* The same, with the put's ticket (increasing from 1) for saver_written(). */
int saver_put_ticket(struct saver *s, const void *data, size_t len, uint64_t *ret_ticket);
/* Whether the content put with ticket is on disk: 0 once it or a later content was written,
 * -EINPROGRESS while the write holding it has not ended, else the errno (negative) of that
 * write, which failed, with no later one done yet. Never waits. */
int saver_written(struct saver *s, uint64_t ticket);
/* An eventfd (non-blocking) that becomes readable each time a write ends: an event loop's cue to
 * call saver_poll() and saver_written(). Read it (8 bytes) to reset it. */
int saver_fd(struct saver *s);
/* The result of the writes that ended since the last call: 0 if none failed, else the errno of
 * the latest failure (negative). Never waits. */
int saver_poll(struct saver *s);
/* Whether a content is queued or being written. */
bool saver_busy(struct saver *s);
/* Wait until everything put is written; the result of the last write (0 if none ran). */
int saver_flush(struct saver *s);
/* Writes what is queued, joins the thread; NULL. */
struct saver *saver_free(struct saver *s);

#endif
