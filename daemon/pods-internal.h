/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between pods.c (lifecycle), pods_status.c (status/phase/conditions) and pods_probe.c. */
#ifndef SHOAL_DAEMON_PODS_INTERNAL_H
#define SHOAL_DAEMON_PODS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <cJSON.h>
#include <event2/event.h>

#include "daemon/config.h"
#include "daemon/crun.h"
#include "daemon/events.h"
#include "daemon/image.h"
#include "daemon/pods.h"
#include "daemon/pods_work.h"
#include "netplugin/netplugin.h"

#define PODS_THREADS 4
#define BACKOFF_START_S 10
#define BACKOFF_MAX_S 300
#define BACKOFF_RESET_MS (10 * 60 * 1000)

enum ctr_phase { CTR_WAITING, CTR_RUNNING, CTR_TERMINATED };

enum probe_kind { PROBE_STARTUP, PROBE_LIVENESS, PROBE_READINESS, PROBE_KINDS };

struct pod_ctr;

struct probe {
	struct pod_ctr *c;
	enum probe_kind kind;
	cJSON *spec; /* copy of the container's probe, NULL if none */
	struct event *timer;
	int successes, failures;
	bool inflight;
	bool ok;       /* declared result after thresholds */
	bool decided;  /* ok is meaningful */
	bool running;  /* scheduled for the current container instance */
	uint64_t generation; /* bumped per container instance: stale results are dropped */
};

struct pod_ctr {
	struct pod *pod;
	bool init;
	int index;
	char name[64];
	enum ctr_phase phase;
	char reason[64];     /* waiting or terminated reason */
	char message[1024];
	char id[64];         /* current crun container ("" if none) */
	int attempt;         /* the next instance's number */
	int restart_count;
	int64_t started_ms, finished_ms;
	int exit_code, signal;
	cJSON *last_state;   /* {"terminated":{...}} of the previous instance, or NULL */
	char *image_name, *image_id;
	int backoff_s;
	uint64_t retry_at;   /* monotonic-ish wall ms when a waiting/terminated ctr may start */
	char backoff_reason[32]; /* CrashLoopBackOff / ImagePullBackOff while waiting */
	bool stopping;       /* SIGTERM sent (liveness/startup failure or deletion) */
	bool sigkilled;
	uint64_t kill_deadline;
	char stop_reason[160];
	int wd;              /* inotify watch on the shim's state dir, -1 if none */
	bool ready, started;
	bool done_init;      /* init container completed successfully */
	uint64_t generation;
	struct probe probes[PROBE_KINDS];
	bool poststart_running; /* postStart hook in flight: not started/ready, no probes yet */
	bool prestop_running;   /* preStop hook in flight: SIGTERM waits for it */
	bool prestop_done;      /* preStop ran for this instance (it runs once) */
};

enum pod_cond { COND_SCHEDULED, COND_INITIALIZED, COND_CONTAINERS_READY, COND_READY, COND_N };

struct cond_state {
	int status; /* -1 unset, 0 False, 1 True */
	char time[40];
};

enum pod_admit { ADMIT_PENDING, ADMIT_OK, ADMIT_REJECTED };

struct pod {
	struct pods *m;
	char *uid, *ns, *name;
	char short_uid[16];
	cJSON *obj;           /* latest from the store */
	struct event *timer;
	int jobs;             /* jobs in flight that point at this pod */
	bool busy;            /* a lifecycle job is in flight */
	enum pod_admit admit;
	char fail_reason[64], fail_msg[512];
	char *dir;
	bool setup_ok, net_ok;
	char ip[16], netns[256];
	uint64_t setup_retry_at;
	int setup_backoff_s;
	char setup_reason[64], setup_msg[512];
	struct pod_ctr *ctrs; /* init containers first */
	int n_init, n_ctrs;
	bool gone;            /* removed from the store */
	bool term_started, sigkill_sent, torn_down, finished;
	uint64_t grace_deadline;
	int64_t start_time;   /* s, 0 unset */
	struct cond_state conds[COND_N];
	char *last_status;    /* last status written (canonical JSON) */
	bool pulled_event_pending;
	bool deadline_exceeded; /* spec.activeDeadlineSeconds passed: the pod failed */
	bool ctr_started;	/* a container start was submitted (or adopted) */
	bool lost_counted;	/* its lost binding is counted in the metrics */
	bool freed;
};

struct pods {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct events *events;
	struct pods_pool *pool;
	struct np_node *net;
	pthread_mutex_t net_lock;
	struct image_store *images;
	pthread_mutex_t img_lock;
	/* registries that could not be reached: pulls skip them until retry_ms (workers share it) */
	pthread_mutex_t unreach_lock;
	struct pods_unreachable {
		char registry[256];
		uint64_t retry_ms, backoff_ms;
		bool probing; /* one worker is trying it again */
		bool first;   /* ... or for the first time (no failure known yet) */
		struct err err;
	} unreach[8];
	struct crun_rt *rt;
	struct store_watch *watch;
	int ifd;
	struct event *iev;
	struct pod **pods;
	size_t npods, cap;
	char dns_ip[16];
	char host_ip[16];
	char *pods_dir, *ctr_state_dir;
	int64_t alloc_cpu_m, alloc_mem, max_pods;
	int oom_floor; /* bundle_oom_score_adj_floor() */
	pods_admitted_fn admitted;
	void *admitted_ud;
	pods_binding_fn binding;
	void *binding_ud;
	uint64_t lost_before_start, lost_after_start; /* bindings lost (metrics) */
};

/* pods.c */
void pod_free(struct pod *p);
struct pod_ctr *pod_ctr_by_wd(struct pods *m, int wd);
void pod_kick(struct pod *p);
void pod_ctr_stop(struct pod_ctr *c, const char *reason, int64_t grace_s);
const cJSON *pod_ctr_spec(const struct pod_ctr *c);
int64_t pod_grace_seconds(const struct pod *p);

/* pods_status.c */
const char *pod_phase(const struct pod *p);
cJSON *pod_status_build(struct pod *p, uint64_t now_ms);
void pod_conditions_restore(struct pod *p);
const char *pod_qos_class(const cJSON *pod);
void pods_fmt_ms(int64_t ms, char *buf, size_t len);
cJSON *pods_ctr_terminated_json(const struct pod_ctr *c);

/* pods_probe.c */
void pod_probes_start(struct pod_ctr *c);
void pod_probes_stop(struct pod_ctr *c);
void pod_probes_free(struct pod_ctr *c);
/* Lifecycle hooks ("postStart" / "preStop") run through the probe handlers; the result comes
 * back to pod_hook_done() (pods.c) on the loop. Returns false if the container has no hook. */
bool pod_hook_start(struct pod_ctr *c, const char *which, int timeout_s);
void pod_hook_done(struct pod_ctr *c, const char *which, uint64_t generation, bool ok,
		   const char *msg);

#endif
