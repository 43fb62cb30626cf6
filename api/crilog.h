/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRI container logs (what shoal-shim writes and kubelet reads), one record per line:
 *   2024-01-01T00:00:00.123456789Z stdout F hello
 * F closes a line, P is a piece of a longer one. This module turns records back into the plain
 * text `kubectl logs` shows (optionally with timestamps, a since filter and a byte limit) and
 * finds where the last N lines start. Pure: bytes in, bytes out through a callback.
 */
#ifndef SHOAL_API_CRILOG_H
#define SHOAL_API_CRILOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crilog_rec {
	const char *ts;     /* timestamp text as written */
	size_t ts_len;
	int64_t ts_ns;      /* ns since the epoch */
	bool is_stderr;
	bool partial;       /* P */
	const char *msg;    /* content, without the newline */
	size_t msg_len;
};

/* Parse one record (without its '\n'). -EBADMSG if it is not a CRI record. */
int crilog_parse(const char *line, size_t len, struct crilog_rec *ret);
/* RFC 3339 with optional fraction, 'Z' or +hh:mm offset -> ns since the epoch. */
int crilog_time_parse(const char *s, size_t len, int64_t *ret);

typedef void (*crilog_emit_fn)(const char *buf, size_t len, void *userdata);

struct crilog_dec {
	/* options */
	bool timestamps;     /* prefix each line with its record's timestamp */
	int64_t since_ns;    /* drop records older than this (0: keep all) */
	int64_t limit_bytes; /* stop after this much output (0: no limit) */
	/* state */
	char *pend;          /* an incomplete record carried to the next feed */
	size_t npend, cap;
	bool mid_line;       /* the last record emitted was P: the next continues its line */
	int64_t out;         /* bytes emitted */
	bool full;           /* limit_bytes reached */
};

/* Decode a chunk of a log file (records may straddle chunks). -ENOMEM only. Lines that are
 * not CRI records are passed through as they are. */
int crilog_dec_feed(struct crilog_dec *d, const char *buf, size_t len, crilog_emit_fn emit,
		    void *userdata);
void crilog_dec_done(struct crilog_dec *d);

/*
 * buf holds the end of a log file (it may begin in the middle of a record when !at_start).
 * Returns the offset of the first record of the last n lines (a line is the run of P records
 * ended by an F), or -1 when buf does not hold n complete lines and more of the file exists
 * before it (!at_start): read more and ask again.
 */
long crilog_tail_offset(const char *buf, size_t len, long n, bool at_start);

#endif
