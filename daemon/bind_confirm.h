/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confirmation of this node's bindings in the daemon (docs/scheduling.md, "Confirming a
 * binding"): sched/confirm.h on the event loop. The scheduler calls bind_confirm_begin before
 * its binding's write and bind_confirm_ask after it; the question goes to every other alive
 * member over the replication channel (daemon/repl.h), suspects and dead members are not
 * waited for, and the pod manager asks bind_confirm_binding before starting containers.
 */
#ifndef SHOAL_DAEMON_BIND_CONFIRM_H
#define SHOAL_DAEMON_BIND_CONFIRM_H

#include <event2/event.h>

#include "daemon/pods.h"
#include "daemon/repl.h"
#include "sched/members.h"

struct bind_confirm;

/* notify(ud, uid): a binding settled (confirmed or lost). */
int bind_confirm_new(struct event_base *base, struct replication *repl, struct members *members,
		     const char *self, void (*notify)(void *ud, const char *uid), void *notify_ud,
		     struct bind_confirm **ret);
/* After replication_free (pending answers are dropped there). */
struct bind_confirm *bind_confirm_free(struct bind_confirm *b);

/* Before the binding's write: the pod waits from now. <0: not tracked (the binding stands). */
int bind_confirm_begin(struct bind_confirm *b, const char *uid);
/* The write failed. */
void bind_confirm_cancel(struct bind_confirm *b, const char *uid);
/* The write committed: ask the other alive members. */
void bind_confirm_ask(struct bind_confirm *b, const char *ns, const char *name, const char *uid);

/* pods_binding_fn */
enum pods_binding bind_confirm_binding(void *b, const char *uid);
/* /metrics: confirmations, their wait, losses found by them. */
int bind_confirm_metrics(void *b, char **text);

#endif
