// SPDX-License-Identifier: Apache-2.0
/* Worker threads with a FIFO queue in, an eventfd-signalled completion list out. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>

#include "daemon/pods_work.h"
#include "lib/macro.h"

struct pods_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pods_job *head, *tail; /* queued */
	struct pods_job *done;        /* finished, LIFO (reversed when drained) */
	int pending;
	bool stop;
	int nthreads;
	pthread_t *threads;
	int efd;
	struct event *ev;
};

static void *worker(void *arg)
{
	struct pods_pool *p = arg;

	for (;;) {
		struct pods_job *j;
		uint64_t one = 1;

		pthread_mutex_lock(&p->lock);
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		j->work(j);

		pthread_mutex_lock(&p->lock);
		j->next = p->done;
		p->done = j;
		pthread_mutex_unlock(&p->lock);
		if (write(p->efd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow in practice; the next write wakes the loop */
		}
	}
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct pods_pool *p = arg;
	struct pods_job *list, *rev = NULL;
	uint64_t n;

	if (read(p->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: a spurious wakeup */
	}
	pthread_mutex_lock(&p->lock);
	list = p->done;
	p->done = NULL;
	pthread_mutex_unlock(&p->lock);
	while (list) {
		struct pods_job *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct pods_job *next = rev->next;
		pthread_mutex_lock(&p->lock);
		p->pending--;
		pthread_mutex_unlock(&p->lock);
		rev->done(rev);
		rev = next;
	}
}

int pods_pool_new(struct event_base *base, int threads, struct pods_pool **ret)
{
	struct pods_pool *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->threads = calloc(threads, sizeof(pthread_t));
	if (p->efd < 0 || !p->threads)
		goto fail;
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_done, p);
	if (!p->ev || event_add(p->ev, NULL) < 0)
		goto fail;
	pthread_attr_init(&attr);
	/* workers fork crun and parse JSON; 512 KiB of stack is plenty */
	pthread_attr_setstacksize(&attr, 512 << 10);
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], &attr, worker, p) != 0)
			break;
		p->nthreads++;
	}
	pthread_attr_destroy(&attr);
	if (p->nthreads == 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	pods_pool_free(p);
	return -ENOMEM;
}

struct pods_pool *pods_pool_free(struct pods_pool *p)
{
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* jobs never run or never applied: their owners are being freed too */
	for (struct pods_job *j = p->head, *n; j; j = n) {
		n = j->next;
		free(j);
	}
	for (struct pods_job *j = p->done, *n; j; j = n) {
		n = j->next;
		free(j);
	}
	if (p->ev)
		event_free(p->ev);
	if (p->efd >= 0)
		close(p->efd);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	return NULL;
}

void pods_pool_submit(struct pods_pool *p, struct pods_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->pending++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

int pods_pool_pending(struct pods_pool *p)
{
	int n;

	pthread_mutex_lock(&p->lock);
	n = p->pending;
	pthread_mutex_unlock(&p->lock);
	return n;
}
