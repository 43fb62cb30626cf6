// SPDX-License-Identifier: Apache-2.0
/*
 * Liveness, readiness and startup probes. Timers live on the event loop; each probe attempt
 * runs on a pool worker (crun exec, an HTTP GET with libcurl, a TCP connect) with its own
 * timeout, and the result comes back to the loop where thresholds are applied:
 * startup success marks the container started, liveness/startup failure restarts it,
 * readiness drives the Ready condition. Results from an older container instance are dropped.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <curl/curl.h>

#include "daemon/pods-internal.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

static const char *const probe_keys[PROBE_KINDS] = { "startupProbe", "livenessProbe",
						     "readinessProbe" };
static const char *const probe_names[PROBE_KINDS] = { "Startup", "Liveness", "Readiness" };

struct probe_job {
	struct pods_job base;
	struct pods *m;
	struct probe *pr;     /* NULL for a lifecycle hook */
	struct pod_ctr *c;    /* hooks: the container */
	const char *hook;     /* hooks: "postStart" / "preStop" */
	struct pod *pod;
	uint64_t generation;
	cJSON *spec;
	char id[64], ip[16];
	int port;
	int timeout_s;
	bool ok;
	char msg[512];
};

/* ---------- worker side ---------- */

static int wait_pid_timeout(pid_t pid, int timeout_ms, int *status)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd pfd = { fd, POLLIN, 0 };

	if (fd >= 0) {
		int r = poll(&pfd, 1, timeout_ms);
		close(fd);
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return -ETIMEDOUT;
		}
	}
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static void probe_exec(struct probe_job *j)
{
	const cJSON *cmd = json_path(j->spec, "exec.command"), *a;
	char *argv[64];
	int n = 0, pfd[2], fds[3], st = 0, r;
	pid_t pid;
	struct err e = { 0 };
	char out[256] = "";
	ssize_t got = 0;

	cJSON_ArrayForEach(a, cmd)
	if (cJSON_IsString(a) && n < 63)
		argv[n++] = a->valuestring;
	argv[n] = NULL;
	if (n == 0) {
		snprintf(j->msg, sizeof(j->msg), "exec probe has no command");
		return;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(j->msg, sizeof(j->msg), "pipe: %m");
		return;
	}
	fds[0] = -1;
	fds[1] = pfd[1];
	fds[2] = pfd[1];
	r = crun_exec(j->m->rt, j->id, argv, false, fds, &pid, NULL, &e);
	close(pfd[1]);
	if (r < 0) {
		close(pfd[0]);
		snprintf(j->msg, sizeof(j->msg), "%s", e.message[0] ? e.message : strerror(-r));
		return;
	}
	r = wait_pid_timeout(pid, j->timeout_s * 1000, &st);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	got = read(pfd[0], out, sizeof(out) - 1);
	close(pfd[0]);
	if (got > 0) {
		out[got] = 0;
		for (char *q = out; *q; q++)
			if (*q == '\n')
				*q = ' ';
	} else {
		out[0] = 0;
	}
	if (r == -ETIMEDOUT) {
		snprintf(j->msg, sizeof(j->msg), "command timed out after %ds", j->timeout_s);
		return;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		j->ok = true;
		return;
	}
	snprintf(j->msg, sizeof(j->msg), "command exited with %d: %s",
		 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	return size * nmemb;
}

static void probe_http(struct probe_job *j)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	const cJSON *h;
	const char *path = json_str(j->spec, "httpGet.path", "/");
	const char *scheme = json_str(j->spec, "httpGet.scheme", "HTTP");
	const char *host = json_str(j->spec, "httpGet.host", NULL);
	char url[400], line[600];
	long code = 0;
	CURLcode rc;

	if (!c) {
		snprintf(j->msg, sizeof(j->msg), "out of memory");
		return;
	}
	snprintf(url, sizeof(url), "%s://%s:%d%s%s", streq(scheme, "HTTPS") ? "https" : "http",
		 strempty(host) ? j->ip : host, j->port, path[0] == '/' ? "" : "/", path);
	hdrs = curl_slist_append(hdrs, "User-Agent: kube-probe/1.33");
	hdrs = curl_slist_append(hdrs, "Accept: */*");
	cJSON_ArrayForEach(h, json_path(j->spec, "httpGet.httpHeaders"))
	{
		snprintf(line, sizeof(line), "%s: %s", json_str(h, "name", "X"),
			 json_str(h, "value", ""));
		hdrs = curl_slist_append(hdrs, line);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)j->timeout_s * 1000);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(j->msg, sizeof(j->msg), "Get \"%s\": %s", url, curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code < 400)
			j->ok = true;
		else
			snprintf(j->msg, sizeof(j->msg), "HTTP probe failed with statuscode: %ld",
				 code);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
}

static void probe_tcp(struct probe_job *j)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(j->port) };
	const char *host = json_str(j->spec, "tcpSocket.host", NULL);
	int fd, r, err = 0;
	socklen_t el = sizeof(err);
	struct pollfd pfd;

	if (inet_pton(AF_INET, strempty(host) ? j->ip : host, &sa.sin_addr) != 1) {
		snprintf(j->msg, sizeof(j->msg), "bad address %s", strempty(host) ? j->ip : host);
		return;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(j->msg, sizeof(j->msg), "socket: %m");
		return;
	}
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r < 0 && errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		r = poll(&pfd, 1, j->timeout_s * 1000);
		if (r == 0) {
			snprintf(j->msg, sizeof(j->msg), "dial tcp %s:%d: i/o timeout", j->ip,
				 j->port);
			close(fd);
			return;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		r = err ? -1 : 0;
		errno = err;
	}
	if (r < 0)
		snprintf(j->msg, sizeof(j->msg), "dial tcp %s:%d: connect: %m", j->ip, j->port);
	else
		j->ok = true;
	close(fd);
}

static void probe_work(struct pods_job *base)
{
	struct probe_job *j = (struct probe_job *)base;

	if (j->hook && json_path(j->spec, "sleep")) {
		/* LifecycleHandler.sleep (1.30+): a pause, bounded by the hook's timeout */
		int64_t s = json_int(j->spec, "sleep.seconds", 0);
		if (s > j->timeout_s)
			s = j->timeout_s;
		struct timespec ts = { (time_t)(s > 0 ? s : 0), 0 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		j->ok = true;
	} else if (json_path(j->spec, "exec"))
		probe_exec(j);
	else if (json_path(j->spec, "httpGet"))
		probe_http(j);
	else if (json_path(j->spec, "tcpSocket"))
		probe_tcp(j);
	else if (json_path(j->spec, "grpc"))
		snprintf(j->msg, sizeof(j->msg), "grpc probes are not supported");
	else
		snprintf(j->msg, sizeof(j->msg), "probe has no handler");
}

/* ---------- loop side ---------- */

static void hook_done(struct pods_job *base)
{
	struct probe_job *j = (struct probe_job *)base;
	struct pod *p = j->pod;

	p->jobs--;
	if (p->freed) {
		if (p->jobs == 0)
			pod_free(p);
	} else {
		pod_hook_done(j->c, j->hook, j->generation, j->ok, j->msg);
	}
	cJSON_Delete(j->spec);
	free(j);
}

static void probe_arm(struct probe *pr, int64_t seconds)
{
	struct timeval tv = { (time_t)(seconds > 0 ? seconds : 0), 0 };

	if (pr->timer)
		evtimer_add(pr->timer, &tv);
}

/* Named or numeric port of the probe handler. */
static int probe_port(const struct pod_ctr *c, const cJSON *port)
{
	const cJSON *pt;

	if (cJSON_IsNumber(port))
		return (int)port->valuedouble;
	if (!cJSON_IsString(port))
		return -1;
	if (port->valuestring[0] >= '0' && port->valuestring[0] <= '9')
		return atoi(port->valuestring);
	cJSON_ArrayForEach(pt, json_path(pod_ctr_spec(c), "ports"))
	{
		if (streq(json_str(pt, "name", ""), port->valuestring))
			return (int)json_int(pt, "containerPort", -1);
	}
	return -1;
}

static void probe_done(struct pods_job *base)
{
	struct probe_job *j = (struct probe_job *)base;
	struct pod *p = j->pod;
	struct probe *pr = j->pr;
	struct pod_ctr *c = pr->c;
	char fp[128];

	p->jobs--;
	if (p->freed) {
		if (p->jobs == 0)
			pod_free(p);
		goto out;
	}
	pr->inflight = false;
	if (!pr->running || j->generation != c->generation || c->phase != CTR_RUNNING ||
	    c->stopping)
		goto out;
	snprintf(fp, sizeof(fp), "spec.containers{%s}", c->name);
	if (j->ok) {
		pr->failures = 0;
		pr->successes++;
		if (pr->successes >= json_int(pr->spec, "successThreshold", 1) || pr->kind != PROBE_READINESS) {
			if (!pr->decided || !pr->ok) {
				pr->ok = pr->decided = true;
				if (pr->kind == PROBE_STARTUP) {
					c->started = true;
					pr->running = false; /* a startup probe stops once it passed */
				} else if (pr->kind == PROBE_READINESS) {
					c->ready = true;
				}
				pod_kick(p);
			}
		}
	} else {
		pr->successes = 0;
		pr->failures++;
		events_record(p->m->events, p->obj, fp, "Warning", "Unhealthy", "%s probe failed: %s",
			      probe_names[pr->kind], j->msg);
		if (pr->failures >= json_int(pr->spec, "failureThreshold", 3)) {
			if (!pr->decided || pr->ok) {
				pr->decided = true;
				pr->ok = false;
				if (pr->kind == PROBE_READINESS) {
					c->ready = false;
					pod_kick(p);
				}
			}
			if (pr->kind != PROBE_READINESS) {
				char why[200];
				log_info("pod %s/%s: container %s failed its %s probe, restarting",
					 p->ns, p->name, c->name, probe_names[pr->kind]);
				snprintf(why, sizeof(why),
					 "Container %s failed %s probe, will be restarted", c->name,
					 pr->kind == PROBE_STARTUP ? "startup" : "liveness");
				pr->running = false;
				pod_ctr_stop(c, why, pod_grace_seconds(p));
				goto out;
			}
		}
	}
	if (pr->running)
		probe_arm(pr, json_int(pr->spec, "periodSeconds", 10));
out:
	cJSON_Delete(j->spec);
	free(j);
}

static void on_probe_timer(evutil_socket_t fd, short what, void *arg)
{
	struct probe *pr = arg;
	struct pod_ctr *c = pr->c;
	struct pod *p = c->pod;
	struct probe_job *j;
	const cJSON *port;

	if (!pr->running || c->phase != CTR_RUNNING || c->stopping)
		return;
	if (pr->inflight) {
		probe_arm(pr, 1);
		return;
	}
	/* liveness and readiness wait for the startup probe */
	if (pr->kind != PROBE_STARTUP && c->probes[PROBE_STARTUP].spec && !c->started) {
		probe_arm(pr, 1);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->base.work = probe_work;
	j->base.done = probe_done;
	j->m = p->m;
	j->pr = pr;
	j->pod = p;
	j->generation = c->generation;
	j->spec = cJSON_Duplicate(pr->spec, true);
	snprintf(j->id, sizeof(j->id), "%s", c->id);
	snprintf(j->ip, sizeof(j->ip), "%s", p->ip);
	port = json_path(pr->spec, "httpGet.port");
	if (!port)
		port = json_path(pr->spec, "tcpSocket.port");
	j->port = probe_port(c, port);
	j->timeout_s = (int)json_int(pr->spec, "timeoutSeconds", 1);
	if (j->timeout_s < 1)
		j->timeout_s = 1;
	pr->inflight = true;
	p->jobs++;
	pods_pool_submit(p->m->pool, &j->base);
}

bool pod_hook_start(struct pod_ctr *c, const char *which, int timeout_s)
{
	char key[64];
	const cJSON *spec, *port;
	struct probe_job *j;
	struct pod *p = c->pod;

	snprintf(key, sizeof(key), "lifecycle.%s", which);
	spec = json_path(pod_ctr_spec(c), key);
	if (!cJSON_IsObject(spec) || c->init || !c->id[0])
		return false;
	j = calloc(1, sizeof(*j));
	if (!j)
		return false;
	j->base.work = probe_work;
	j->base.done = hook_done;
	j->m = p->m;
	j->c = c;
	j->hook = streq(which, "postStart") ? "postStart" : "preStop";
	j->pod = p;
	j->generation = c->generation;
	j->spec = cJSON_Duplicate(spec, true);
	snprintf(j->id, sizeof(j->id), "%s", c->id);
	snprintf(j->ip, sizeof(j->ip), "%s", p->ip);
	port = json_path(spec, "httpGet.port");
	if (!port)
		port = json_path(spec, "tcpSocket.port");
	j->port = probe_port(c, port);
	j->timeout_s = timeout_s > 0 ? timeout_s : 1;
	if (!j->spec) {
		free(j);
		return false;
	}
	p->jobs++;
	pods_pool_submit(p->m->pool, &j->base);
	return true;
}

void pod_probes_start(struct pod_ctr *c)
{
	const cJSON *spec = pod_ctr_spec(c);

	if (c->init)
		return; /* init containers are not probed */
	for (int k = 0; k < PROBE_KINDS; k++) {
		struct probe *pr = &c->probes[k];
		const cJSON *ps = json_path(spec, probe_keys[k]);
		pr->c = c;
		pr->kind = k;
		if (!cJSON_IsObject(ps))
			continue;
		if (!pr->spec)
			pr->spec = cJSON_Duplicate(ps, true);
		if (!pr->timer)
			pr->timer = evtimer_new(c->pod->m->base, on_probe_timer, pr);
		pr->successes = pr->failures = 0;
		pr->decided = false;
		pr->ok = false;
		pr->running = true;
		probe_arm(pr, json_int(ps, "initialDelaySeconds", 0));
	}
}

void pod_probes_stop(struct pod_ctr *c)
{
	for (int k = 0; k < PROBE_KINDS; k++) {
		c->probes[k].running = false;
		if (c->probes[k].timer)
			evtimer_del(c->probes[k].timer);
	}
}

void pod_probes_free(struct pod_ctr *c)
{
	for (int k = 0; k < PROBE_KINDS; k++) {
		if (c->probes[k].timer)
			event_free(c->probes[k].timer);
		c->probes[k].timer = NULL;
		cJSON_Delete(c->probes[k].spec);
		c->probes[k].spec = NULL;
	}
}
