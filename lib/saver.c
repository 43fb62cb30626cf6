// SPDX-License-Identifier: Apache-2.0
/* Background file writes (lib/saver.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/saver.h"
#include "lib/util.h"

struct saver {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a content queued, a write ended, or stop */
	char *path;
	mode_t mode;
	bool secret;
	int efd; /* written each time a write ends */
	/* under lock */
	char *queued; /* the next content to write, NULL if none */
	size_t queued_len;
	bool writing, stop;
	int failed;	 /* the latest failure since saver_poll, 0 if none */
	int last_result; /* of the last write that ended */
	/* tickets: every put numbered; a write holds the newest put so far, so it covers all
	 * tickets up to its own */
	uint64_t put_seq, queued_seq, writing_seq;
	uint64_t done_seq; /* of the last write that ended */
	uint64_t ok_seq;   /* of the last write that succeeded */
};

static void buf_free(struct saver *s, char *buf, size_t len)
{
	if (buf && s->secret)
		sodium_memzero(buf, len);
	free(buf);
}

static void *saver_main(void *arg)
{
	struct saver *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->queued && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		if (!s->queued)
			break; /* stop, nothing left */
		char *buf = s->queued;
		size_t len = s->queued_len;
		uint64_t one = 1;

		s->queued = NULL;
		s->writing = true;
		s->writing_seq = s->queued_seq;
		pthread_mutex_unlock(&s->lock);
		int r = util_write_file(s->path, buf, len, s->mode);
		buf_free(s, buf, len);
		pthread_mutex_lock(&s->lock);
		s->writing = false;
		s->last_result = r;
		s->done_seq = s->writing_seq;
		if (r < 0)
			s->failed = r;
		else
			s->ok_seq = s->writing_seq;
		pthread_cond_broadcast(&s->cond);
		if (write(s->efd, &one, sizeof(one)) < 0) {
			/* only EAGAIN (the counter is full): it is readable anyway */
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int saver_new(const char *path, mode_t mode, bool secret, struct saver **ret)
{
	struct saver *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}
	s->mode = mode;
	s->secret = secret;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		r = -errno;
		free(s->path);
		free(s);
		return r;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	r = pthread_create(&s->th, NULL, saver_main, s);
	if (r) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		close(s->efd);
		free(s->path);
		free(s);
		return -r;
	}
	*ret = s;
	return 0;
}

int saver_put(struct saver *s, const void *data, size_t len)
{
	return saver_put_ticket(s, data, len, NULL);
}

int saver_put_ticket(struct saver *s, const void *data, size_t len, uint64_t *ret_ticket)
{
	char *buf = malloc(len ? len : 1);
	char *old;
	size_t old_len;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, data, len);
	pthread_mutex_lock(&s->lock);
	old = s->queued; /* never written: this one is newer */
	old_len = s->queued_len;
	s->queued = buf;
	s->queued_len = len;
	s->queued_seq = ++s->put_seq;
	if (ret_ticket)
		*ret_ticket = s->queued_seq;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	buf_free(s, old, old_len);
	return 0;
}

int saver_poll(struct saver *s)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = s->failed;
	s->failed = 0;
	pthread_mutex_unlock(&s->lock);
	return r;
}

int saver_written(struct saver *s, uint64_t ticket)
{
	int r;

	pthread_mutex_lock(&s->lock);
	if (s->ok_seq >= ticket)
		r = 0;
	else if (s->done_seq >= ticket)
		r = s->last_result; /* the write holding it, or a later one, failed; none succeeded
				     */
	else
		r = -EINPROGRESS;
	pthread_mutex_unlock(&s->lock);
	return r;
}

int saver_fd(struct saver *s)
{
	return s->efd;
}

bool saver_busy(struct saver *s)
{
	bool busy;

	pthread_mutex_lock(&s->lock);
	busy = s->queued || s->writing;
	pthread_mutex_unlock(&s->lock);
	return busy;
}

int saver_flush(struct saver *s)
{
	int r;

	pthread_mutex_lock(&s->lock);
	while (s->queued || s->writing)
		pthread_cond_wait(&s->cond, &s->lock);
	r = s->last_result;
	pthread_mutex_unlock(&s->lock);
	return r;
}

struct saver *saver_free(struct saver *s)
{
	if (!s)
		return NULL;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->th, NULL); /* the thread writes what is queued before it ends */
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	close(s->efd);
	free(s->path);
	free(s);
	return NULL;
}
