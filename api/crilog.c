// SPDX-License-Identifier: Apache-2.0
/* CRI log records -> plain text. See crilog.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/crilog.h"

static bool digits(const char *s, size_t n, int *ret)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return true;
}

int crilog_time_parse(const char *s, size_t len, int64_t *ret)
{
	int Y, M, D, h, m, sec, oh = 0, om = 0;
	int64_t frac = 0, off = 0;
	size_t i = 19, nd = 0;
	struct tm tm = { 0 };

	if (len < 20 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
	    !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
	    s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return -EINVAL;
	if (s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++)
			if (nd < 9)
				frac = frac * 10 + (s[i] - '0');
		if (!nd)
			return -EINVAL;
		for (; nd < 9; nd++)
			frac *= 10;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
		off = 0;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2, &oh) &&
		   s[i + 3] == ':' && digits(s + i + 4, 2, &om)) {
		off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
	} else {
		return -EINVAL;
	}
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*ret = ((int64_t)timegm(&tm) - off) * 1000000000LL + frac;
	return 0;
}

int crilog_parse(const char *line, size_t len, struct crilog_rec *ret)
{
	const char *end = line + len, *p, *q;

	memset(ret, 0, sizeof(*ret));
	p = memchr(line, ' ', len);
	if (!p || crilog_time_parse(line, p - line, &ret->ts_ns) < 0)
		return -EBADMSG;
	ret->ts = line;
	ret->ts_len = p - line;
	p++;
	q = memchr(p, ' ', end - p);
	if (!q)
		return -EBADMSG;
	if (q - p == 6 && !memcmp(p, "stdout", 6))
		ret->is_stderr = false;
	else if (q - p == 6 && !memcmp(p, "stderr", 6))
		ret->is_stderr = true;
	else
		return -EBADMSG;
	p = q + 1;
	/* tag: F or P, possibly with ':'-separated extensions; content may be empty */
	q = memchr(p, ' ', end - p);
	if (!q)
		q = end;
	if (q == p || (*p != 'F' && *p != 'P') || (q - p > 1 && p[1] != ':'))
		return -EBADMSG;
	ret->partial = *p == 'P';
	ret->msg = q < end ? q + 1 : end;
	ret->msg_len = end - ret->msg;
	return 0;
}

static void emit_limited(struct crilog_dec *d, const char *buf, size_t len, crilog_emit_fn emit,
			 void *ud)
{
	if (d->full || !len)
		return;
	if (d->limit_bytes > 0 && d->out + (int64_t)len >= d->limit_bytes) {
		len = (size_t)(d->limit_bytes - d->out);
		d->full = true;
	}
	if (len)
		emit(buf, len, ud);
	d->out += len;
}

static void dec_line(struct crilog_dec *d, const char *line, size_t len, crilog_emit_fn emit,
		     void *ud)
{
	struct crilog_rec rec;

	if (crilog_parse(line, len, &rec) < 0) {
		/* not ours (hand-written file?): show it rather than hide it */
		emit_limited(d, line, len, emit, ud);
		emit_limited(d, "\n", 1, emit, ud);
		d->mid_line = false;
		return;
	}
	if (d->since_ns && rec.ts_ns < d->since_ns && !d->mid_line)
		return;
	if (d->timestamps && !d->mid_line) {
		emit_limited(d, rec.ts, rec.ts_len, emit, ud);
		emit_limited(d, " ", 1, emit, ud);
	}
	emit_limited(d, rec.msg, rec.msg_len, emit, ud);
	if (!rec.partial)
		emit_limited(d, "\n", 1, emit, ud);
	d->mid_line = rec.partial;
}

static int pend_add(struct crilog_dec *d, const char *buf, size_t len)
{
	if (d->npend + len > d->cap) {
		size_t cap = d->cap ? d->cap : 256;
		char *p;

		while (cap < d->npend + len)
			cap *= 2;
		p = realloc(d->pend, cap);
		if (!p)
			return -ENOMEM;
		d->pend = p;
		d->cap = cap;
	}
	memcpy(d->pend + d->npend, buf, len);
	d->npend += len;
	return 0;
}

int crilog_dec_feed(struct crilog_dec *d, const char *buf, size_t len, crilog_emit_fn emit,
		    void *userdata)
{
	const char *p = buf, *end = buf + len, *nl;

	while (p < end && !d->full) {
		nl = memchr(p, '\n', end - p);
		if (!nl)
			return pend_add(d, p, end - p);
		if (d->npend) {
			if (pend_add(d, p, nl - p) < 0)
				return -ENOMEM;
			dec_line(d, d->pend, d->npend, emit, userdata);
			d->npend = 0;
		} else {
			dec_line(d, p, nl - p, emit, userdata);
		}
		p = nl + 1;
	}
	return 0;
}

void crilog_dec_done(struct crilog_dec *d)
{
	free(d->pend);
	d->pend = NULL;
	d->npend = d->cap = 0;
}

/* Is the record [s, e) a P record? Unparsable lines count as complete lines. */
static bool rec_partial(const char *s, const char *e)
{
	struct crilog_rec rec;

	return crilog_parse(s, e - s, &rec) == 0 && rec.partial;
}

long crilog_tail_offset(const char *buf, size_t len, long n, bool at_start)
{
	const char *end = buf + len, *s, *e, *ps;
	long lines = 0;

	/* an unterminated last record is still being written: leave it out */
	while (end > buf && end[-1] != '\n')
		end--;
	if (n <= 0)
		return end - buf;
	/* walk records backwards; a record starts a line when the one before it is not P */
	for (e = end; e > buf; e = s) {
		s = e - 1;
		while (s > buf && s[-1] != '\n')
			s--;
		if (s == buf)
			return at_start ? 0 : -1;
		ps = s - 1;
		while (ps > buf && ps[-1] != '\n')
			ps--;
		if (ps == buf && !at_start)
			return -1; /* the previous record may be cut: need more of the file */
		if (!rec_partial(ps, s - 1) && ++lines == n)
			return s - buf;
	}
	return 0;
}
