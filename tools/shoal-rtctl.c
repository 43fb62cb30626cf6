// SPDX-License-Identifier: Apache-2.0
/*
 * shoal-rtctl: drive the runtime libraries (image store, bundles, crun driver) by hand and from
 * the integration tests, without a daemon. The daemon's pod manager calls the same functions.
 *
 *   shoal-rtctl --state DIR --run DIR COMMAND ...
 *     image import PATH [NAME] | image pull REF [--plain-http] [--ca-file F] [--user U:P]
 *     image list | image inspect REF | image rm REF
 *     prepare --pod POD.json --image REF --ctr-dir DIR --pod-dir DIR [--init] [--index N]
 *             [--netns PATH] [--podns DIR] [--cgroup-parent NAME] [--objects OBJS.json]
 *             [--pod-ip IP] [--node NAME] [--hosts F] [--resolv F] [--hostname-file F]
 *     unprepare --ctr-dir DIR | volumes-cleanup --pod-dir DIR
 *     podns-create DIR HOSTNAME | podns-destroy DIR | cgroup-rm PATH | cgroup-mode
 *     create ID BUNDLE LOG | start ID | state ID | kill ID [SIG] | delete [--force] ID
 *     exec [--tty] ID CMD... | list
 */
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <poll.h>

#include "daemon/bundle.h"
#include "daemon/bundle_host.h"
#include "daemon/crun.h"
#include "daemon/image.h"
#include "lib/macro.h"
#include "lib/util.h"

static const char *state_dir, *run_dir;

static int fail(int r, const struct err *e, const char *what)
{
	fprintf(stderr, "shoal-rtctl: %s: %s%s%s\n", what, e && e->message[0] ? e->message : strerror(-r),
		e && e->reason[0] ? " reason=" : "", e && e->reason[0] ? e->reason : "");
	return 1;
}

static void print_json(const cJSON *j)
{
	_cleanup_free_ char *s = cJSON_Print(j);

	if (s)
		printf("%s\n", s);
}

static int open_store(struct image_store **s)
{
	int r = image_store_open(state_dir, s);

	if (r < 0)
		fprintf(stderr, "shoal-rtctl: image store %s: %s\n", state_dir, strerror(-r));
	return r;
}

static int open_rt(struct crun_rt **rt)
{
	_cleanup_free_ char *root = NULL, *sd = NULL;
	struct crun_opts o = { 0 };
	int r;

	if (asprintf(&root, "%s/crun", run_dir) < 0 || asprintf(&sd, "%s/containers", run_dir) < 0)
		return -ENOMEM;
	o.root = root;
	o.state_dir = sd;
	o.crun_path = getenv("SHOAL_CRUN");
	r = crun_rt_new(&o, rt);
	if (r < 0)
		fprintf(stderr, "shoal-rtctl: runtime: %s\n", strerror(-r));
	return r;
}

static int cmd_image(int argc, char **argv)
{
	struct image_store *s = NULL;
	struct err e = { 0 };
	int r = 1;

	if (argc < 1 || open_store(&s) < 0)
		return 2;
	if (streq(argv[0], "import") && argc >= 2) {
		_cleanup_json_ cJSON *names = NULL;
		int k = image_store_import(s, argv[1], argc > 2 ? argv[2] : NULL, &names, &e);
		r = k < 0 ? fail(k, &e, "import") : (print_json(names), 0);
	} else if (streq(argv[0], "pull") && argc >= 2) {
		struct image_pull_opts o = { 0 };
		_cleanup_free_ char *name = NULL, *user = NULL;
		for (int i = 2; i < argc; i++) {
			if (streq(argv[i], "--plain-http"))
				o.plain_http = true;
			else if (streq(argv[i], "--ca-file") && i + 1 < argc)
				o.ca_file = argv[++i];
			else if (streq(argv[i], "--insecure"))
				o.insecure_skip_verify = true;
			else if (streq(argv[i], "--user") && i + 1 < argc) {
				char *c;
				user = strdup(argv[++i]);
				if (user && (c = strchr(user, ':'))) {
					*c = 0;
					o.password = c + 1;
				}
				o.username = user;
			}
		}
		int k = image_store_pull(s, argv[1], &o, &name, &e);
		r = k < 0 ? fail(k, &e, "pull") : (printf("%s\n", name), 0);
	} else if (streq(argv[0], "list")) {
		_cleanup_json_ cJSON *l = NULL;
		int k = image_store_list(s, &l);
		r = k < 0 ? fail(k, NULL, "list") : (print_json(l), 0);
	} else if (streq(argv[0], "inspect") && argc >= 2) {
		_cleanup_json_ cJSON *img = NULL;
		int k = image_store_get(s, argv[1], &img, &e);
		r = k < 0 ? fail(k, &e, "inspect") : (print_json(img), 0);
	} else if (streq(argv[0], "rm") && argc >= 2) {
		int k = image_store_remove(s, argv[1], &e);
		r = k < 0 ? fail(k, &e, "rm") : 0;
	} else {
		r = 2;
	}
	image_store_free(s);
	return r;
}

/* ConfigMaps/Secrets for valueFrom and volumes, from a JSON array file. */
static const cJSON *objects_get(void *ud, const char *kind, const char *ns, const char *name)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, (const cJSON *)ud) {
		const cJSON *m = cJSON_GetObjectItem(o, "metadata");
		const char *k = cJSON_GetStringValue(cJSON_GetObjectItem(o, "kind"));
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(m, "name"));
		const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(m, "namespace"));
		if (k && n && streq(k, kind) && streq(n, name) && streq(s ? s : "default", ns))
			return o;
	}
	return NULL;
}

static cJSON *read_json_file(const char *path)
{
	_cleanup_free_ char *buf = NULL;

	if (util_read_file(path, 16 << 20, &buf, NULL) < 0)
		return NULL;
	return cJSON_Parse(buf);
}

static int cmd_prepare(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pod", 1, NULL, 'p' },	{ "image", 1, NULL, 'i' },     { "ctr-dir", 1, NULL, 'c' },
		{ "pod-dir", 1, NULL, 'd' },	{ "init", 0, NULL, 'I' },      { "index", 1, NULL, 'n' },
		{ "netns", 1, NULL, 'N' },	{ "podns", 1, NULL, 'P' },     { "cgroup-parent", 1, NULL, 'g' },
		{ "objects", 1, NULL, 'o' },	{ "pod-ip", 1, NULL, 'a' },    { "node", 1, NULL, 'x' },
		{ "hosts", 1, NULL, 'h' },	{ "resolv", 1, NULL, 'r' },    { "hostname-file", 1, NULL, 'H' },
		{},
	};
	const char *pod_path = NULL, *image = NULL, *ctr_dir = NULL, *cg_parent = NULL, *objs = NULL;
	_cleanup_free_ char *lower = NULL, *rootfs = NULL, *ipc = NULL, *uts = NULL;
	_cleanup_json_ cJSON *pod = NULL, *img = NULL, *cfg = NULL, *objects = NULL;
	struct bundle_params p = { 0 };
	struct image_store *s = NULL;
	struct err e = { 0 };
	char cgpath[512];
	int o, r;

	optind = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'p': pod_path = optarg; break;
		case 'i': image = optarg; break;
		case 'c': ctr_dir = optarg; break;
		case 'd': p.pod_dir = optarg; break;
		case 'I': p.init = true; break;
		case 'n': p.index = atoi(optarg); break;
		case 'N': p.netns_path = optarg; break;
		case 'P':
			if (asprintf(&ipc, "%s/ipc", optarg) < 0 || asprintf(&uts, "%s/uts", optarg) < 0)
				return 1;
			p.ipcns_path = ipc;
			p.utsns_path = uts;
			break;
		case 'g': cg_parent = optarg; break;
		case 'o': objs = optarg; break;
		case 'a': p.pod_ip = optarg; break;
		case 'x': p.node_name = optarg; break;
		case 'h': p.hosts_path = optarg; break;
		case 'r': p.resolv_path = optarg; break;
		case 'H': p.hostname_path = optarg; break;
		default: return 2;
		}
	}
	if (!pod_path || !image || !ctr_dir || !p.pod_dir)
		return 2;
	if (!(pod = read_json_file(pod_path)))
		return fail(-EINVAL, NULL, "pod file");
	if (objs && !(objects = read_json_file(objs)))
		return fail(-EINVAL, NULL, "objects file");
	if (open_store(&s) < 0)
		return 1;
	r = image_store_get(s, image, &img, &e);
	if (r >= 0)
		r = image_store_lowerdir(s, img, &lower);
	image_store_free(s);
	if (r < 0)
		return fail(r, &e, "image");
	if ((r = bundle_rootfs_mount(lower, ctr_dir, &rootfs)) < 0)
		return fail(r, NULL, "rootfs");
	struct bundle_volume_ctx vctx = { .get_object = objects_get, .ud = objects,
					  .pod_ip = p.pod_ip, .node_name = p.node_name };
	if ((r = bundle_volumes_prepare(pod, p.pod_dir, &vctx, &e)) < 0)
		return fail(r, &e, "volumes");
	const cJSON *ctr = bundle_container(pod, p.init, p.index);
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "uid"));
	if (cg_parent && ctr) {
		if (bundle_cgroup_path(cg_parent, uid ? uid : "none",
				       cJSON_GetStringValue(cJSON_GetObjectItem(ctr, "name")), cgpath,
				       sizeof(cgpath)) < 0)
			return fail(-ENOSPC, NULL, "cgroup path");
		p.cgroup_path = cgpath;
	}
	p.pod = pod;
	p.image_config = cJSON_GetObjectItem(cJSON_GetObjectItem(img, "config"), "config");
	p.rootfs = rootfs;
	p.get_object = objects_get;
	p.object_ud = objects;
	p.memory_capacity = util_mem_total_bytes();
	p.oom_score_adj_floor = bundle_oom_score_adj_floor();
	/* names in the image's User resolve against the image's own /etc/passwd */
	p.get_id = bundle_rootfs_id_lookup;
	p.id_ud = rootfs;
	r = bundle_config_build(&p, &cfg, &e);
	if (r < 0)
		return fail(r, &e, "bundle");
	if ((r = bundle_config_write(ctr_dir, cfg)) < 0)
		return fail(r, NULL, "config.json");
	printf("%s\n", ctr_dir);
	return 0;
}

static void print_state(const char *id, const struct crun_state *st)
{
	printf("{\"id\":\"%s\",\"status\":\"%s\",\"pid\":%d,\"shimPid\":%d,\"exited\":%s,"
	       "\"exitCode\":%d,\"signal\":%d,\"finishedNs\":%lld}\n",
	       id, crun_status_name(st->status), (int)st->pid, (int)st->shim_pid,
	       st->exited ? "true" : "false", st->exit_code, st->signal,
	       (long long)st->finished_ns);
}

static int cmd_runtime(int argc, char **argv)
{
	struct crun_rt *rt = NULL;
	struct err e = { 0 };
	const char *c = argv[0];
	int r = 2;

	if (open_rt(&rt) < 0)
		return 1;
	if (streq(c, "create") && argc == 4) {
		pid_t pid;
		int k = crun_create(rt, argv[1], argv[2], argv[3], &pid, &e);
		r = k < 0 ? fail(k, &e, "create") : (printf("%d\n", (int)pid), 0);
	} else if (streq(c, "start") && argc == 2) {
		int k = crun_start(rt, argv[1], &e);
		r = k < 0 ? fail(k, &e, "start") : 0;
	} else if (streq(c, "state") && argc == 2) {
		struct crun_state st;
		int k = crun_state(rt, argv[1], &st);
		r = k < 0 ? fail(k, NULL, "state") : (print_state(argv[1], &st), 0);
	} else if (streq(c, "kill") && argc >= 2) {
		int k = crun_kill(rt, argv[1], argc > 2 ? atoi(argv[2]) : SIGTERM, false, &e);
		r = k < 0 ? fail(k, &e, "kill") : 0;
	} else if (streq(c, "delete") && argc >= 2) {
		bool force = streq(argv[1], "--force");
		int k = crun_delete(rt, argv[force ? 2 : 1], force, &e);
		r = k < 0 ? fail(k, &e, "delete") : 0;
	} else if (streq(c, "list")) {
		_cleanup_json_ cJSON *l = NULL;
		int k = crun_list(rt, &l);
		r = k < 0 ? fail(k, NULL, "list") : (print_json(l), 0);
	} else if (streq(c, "exec") && argc >= 3) {
		bool tty = streq(argv[1], "--tty");
		int fds[3] = { 0, 1, 2 }, master = -1, st, k;
		pid_t pid;
		k = crun_exec(rt, argv[tty ? 2 : 1], argv + (tty ? 3 : 2), tty, fds, &pid, &master,
			      &e);
		if (k < 0) {
			r = fail(k, &e, "exec");
		} else {
			if (tty) {
				/* copy the terminal's output to stdout until it closes */
				char buf[4096];
				ssize_t n;
				while ((n = read(master, buf, sizeof(buf))) > 0)
					fwrite(buf, 1, n, stdout);
				close(master);
			}
			waitpid(pid, &st, 0);
			r = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
	}
	crun_rt_free(rt);
	return r;
}

int main(int argc, char **argv)
{
	int i = 1;
	struct err e = { 0 };

	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (streq(argv[i], "--state"))
			state_dir = argv[i + 1];
		else if (streq(argv[i], "--run"))
			run_dir = argv[i + 1];
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: shoal-rtctl --state DIR --run DIR COMMAND ...\n");
		return 2;
	}
	argc -= i;
	argv += i;
	if (streq(argv[0], "cgroup-mode")) {
		enum crun_cgroup_mode m;
		int r = crun_cgroup_detect(&m, NULL);
		if (r < 0)
			return fail(r, NULL, "cgroup-mode");
		printf("%s\n", m == CRUN_CGROUP_V2 ? "v2" : m == CRUN_CGROUP_HYBRID ? "hybrid" : "v1");
		return 0;
	}
	if (streq(argv[0], "podns-create") && argc == 3) {
		int r = bundle_podns_create(argv[1], argv[2]);
		return r < 0 ? fail(r, NULL, "podns-create") : 0;
	}
	if (streq(argv[0], "podns-destroy") && argc == 2) {
		int r = bundle_podns_destroy(argv[1]);
		return r < 0 ? fail(r, NULL, "podns-destroy") : 0;
	}
	if (streq(argv[0], "cgroup-rm") && argc == 2) {
		int r = crun_cgroup_remove(argv[1]);
		return r < 0 ? fail(r, NULL, "cgroup-rm") : 0;
	}
	if (streq(argv[0], "unprepare") && argc == 3 && streq(argv[1], "--ctr-dir")) {
		int r = bundle_rootfs_remove(argv[2]);
		return r < 0 ? fail(r, NULL, "unprepare") : 0;
	}
	if (streq(argv[0], "volumes-cleanup") && argc == 3 && streq(argv[1], "--pod-dir")) {
		int r = bundle_volumes_cleanup(argv[2]);
		return r < 0 ? fail(r, NULL, "volumes-cleanup") : 0;
	}
	if (!state_dir || !run_dir) {
		fprintf(stderr, "shoal-rtctl: --state and --run are required\n");
		return 2;
	}
	(void)e;
	if (streq(argv[0], "image"))
		return cmd_image(argc - 1, argv + 1);
	if (streq(argv[0], "prepare"))
		return cmd_prepare(argc, argv);
	return cmd_runtime(argc, argv);
}
