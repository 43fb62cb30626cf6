// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl: the command-line client. One file per subcommand (cmd_*.c), the command table and
 * the flag parsing here. Flags may come before or after the subcommand, as with kubectl; each
 * command lists the flags it accepts so a misplaced one is an error, not silently ignored.
 */
#include <getopt.h>
#include <string.h>

#include "tools/shoalctl/shoalctl.h"

enum {
	/* flags every command takes */
	F_GLOBAL = 0,
	F_FILE = 1u << 0,
	F_RECURSIVE = 1u << 1,
	F_OUTPUT = 1u << 2,
	F_SELECTOR = 1u << 3,
	F_FIELD_SELECTOR = 1u << 4,
	F_WATCH = 1u << 5,
	F_NO_HEADERS = 1u << 6,
	F_SHOW_LABELS = 1u << 7,
	F_GRACE = 1u << 8,
	F_WAIT = 1u << 9,
	F_ALL = 1u << 10,
	F_IGNORE_NOT_FOUND = 1u << 11,
	F_TIMEOUT = 1u << 12,
	F_CLIENT = 1u << 13,
	F_ALL_NAMESPACES = 1u << 14,
	/* logs, exec, image */
	F_FOLLOW = 1u << 17,
	F_PREVIOUS = 1u << 18,
	F_CONTAINER = 1u << 19,
	F_TAIL = 1u << 20,
	F_TIMESTAMPS = 1u << 21,
	F_SINCE = 1u << 22,
	F_LIMIT_BYTES = 1u << 23,
	F_STDIN = 1u << 24,
	F_TTY = 1u << 25,
	F_IMAGE = 1u << 26,
	F_REPLICAS = 1u << 15,
	F_TO_REVISION = 1u << 16,
};

struct ctl_command {
	const char *name;
	int (*handler)(struct ctl *c, int argc, char **argv);
	unsigned flags;
	const char *usage;
	const char *summary;
};

/*
 * Later issues add: logs, exec (pod runtime), scale, rollout, set image (controllers),
 * bpf (datapath inspection), members / gossip keys. Each is one cmd_*.c plus a row here.
 */
static const struct ctl_command commands[] = {
	{ "apply", cmd_apply, F_FILE | F_RECURSIVE | F_OUTPUT, "-f FILENAME",
	  "Create or update objects from files (client-side apply)" },
	{ "create", cmd_create, F_FILE | F_RECURSIVE | F_OUTPUT, "-f FILENAME",
	  "Create objects from files" },
	{ "get", cmd_get,
	  F_OUTPUT | F_SELECTOR | F_FIELD_SELECTOR | F_WATCH | F_NO_HEADERS | F_SHOW_LABELS |
		  F_ALL_NAMESPACES | F_IGNORE_NOT_FOUND | F_FILE | F_RECURSIVE,
	  "KIND[,KIND...] [NAME...] | KIND/NAME...", "Display one or many objects" },
	{ "describe", cmd_describe, F_SELECTOR | F_ALL_NAMESPACES | F_FILE | F_RECURSIVE,
	  "KIND [NAME...]", "Show details of objects, with their events" },
	{ "delete", cmd_delete,
	  F_FILE | F_RECURSIVE | F_SELECTOR | F_FIELD_SELECTOR | F_GRACE | F_WAIT | F_ALL |
		  F_IGNORE_NOT_FOUND | F_TIMEOUT | F_ALL_NAMESPACES | F_OUTPUT,
	  "KIND NAME... | -f FILENAME", "Delete objects by name, selector or file" },
	{ "api-resources", cmd_api_resources, F_OUTPUT | F_NO_HEADERS, "",
	  "List the resource types the server serves" },
	{ "version", cmd_version, F_OUTPUT | F_CLIENT, "", "Print client and server versions" },
	{ "logs", cmd_logs,
	  F_FOLLOW | F_PREVIOUS | F_CONTAINER | F_TAIL | F_TIMESTAMPS | F_SINCE | F_LIMIT_BYTES,
	  "[-f] [-p] [-c CONTAINER] [--tail N] [--since 5m] [--timestamps] POD",
	  "Print the logs of a container in a pod" },
	{ "exec", cmd_exec, F_STDIN | F_TTY | F_CONTAINER,
	  "[-i] [-t] [-c CONTAINER] POD -- COMMAND [ARGS...]", "Run a command in a container" },
	{ "image", cmd_image, F_IMAGE | F_OUTPUT,
	  "ls | import FILE... [--name NAME] | rm REF... | pull REF [--plain-http]",
	  "Manage the images of the node shoalctl talks to" },
	{ "scale", cmd_scale, F_REPLICAS | F_FILE, "KIND/NAME --replicas=N",
	  "Set the replicas of a Deployment or ReplicaSet" },
	{ "rollout", cmd_rollout, F_TIMEOUT | F_TO_REVISION,
	  "status|history|undo|pause|resume|restart KIND/NAME", "Manage a Deployment's rollout" },
	{ "bpf", cmd_bpf, F_OUTPUT | F_CLIENT, "services|conntrack [NODE]",
	  "Show this machine's service datapath maps (frontends, NodePort conntrack)" },
	{ "debug", cmd_debug, 0, "registers [RESOURCE]",
	  "Print the node's replicated registers in a stable order (compare nodes with diff)" },
	{ "members", cmd_members, F_OUTPUT | F_NO_HEADERS, "[-o json] | leave",
	  "Show the cluster members as this node sees them, or leave the cluster" },
	{ "gossip", cmd_gossip, F_OUTPUT, "keys generate|list|install KEY|use KEY|remove KEY",
	  "Manage the cluster's gossip encryption keys" },
};

enum {
	O_SERVER = 0x100,
	O_KUBECONFIG,
	O_CONTEXT,
	O_TOKEN,
	O_INSECURE,
	O_FIELD_SELECTOR,
	O_WATCH_ONLY,
	O_NO_HEADERS,
	O_SHOW_LABELS,
	O_GRACE,
	O_WAIT,
	O_NOW,
	O_FORCE,
	O_ALL,
	O_IGNORE_NOT_FOUND,
	O_TIMEOUT,
	O_CLIENT,
	O_TAIL,
	O_TIMESTAMPS,
	O_SINCE,
	O_LIMIT_BYTES,
	O_NAME,
	O_PLAIN_HTTP,
	O_REPLICAS,
	O_TO_REVISION,
};

static const struct option long_opts[] = {
	{ "server", required_argument, NULL, 's' },
	{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
	{ "context", required_argument, NULL, O_CONTEXT },
	{ "token", required_argument, NULL, O_TOKEN },
	{ "insecure-skip-tls-verify", optional_argument, NULL, O_INSECURE },
	{ "namespace", required_argument, NULL, 'n' },
	{ "all-namespaces", no_argument, NULL, 'A' },
	{ "filename", required_argument, NULL, 'f' },
	{ "recursive", no_argument, NULL, 'R' },
	{ "output", required_argument, NULL, 'o' },
	{ "selector", required_argument, NULL, 'l' },
	{ "field-selector", required_argument, NULL, O_FIELD_SELECTOR },
	{ "watch", no_argument, NULL, 'w' },
	{ "watch-only", no_argument, NULL, O_WATCH_ONLY },
	{ "no-headers", no_argument, NULL, O_NO_HEADERS },
	{ "show-labels", no_argument, NULL, O_SHOW_LABELS },
	{ "grace-period", required_argument, NULL, O_GRACE },
	{ "wait", optional_argument, NULL, O_WAIT },
	{ "now", no_argument, NULL, O_NOW },
	{ "force", no_argument, NULL, O_FORCE },
	{ "all", no_argument, NULL, O_ALL },
	{ "ignore-not-found", no_argument, NULL, O_IGNORE_NOT_FOUND },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "client", no_argument, NULL, O_CLIENT },
	{ "follow", no_argument, NULL, 'F' },
	{ "previous", no_argument, NULL, 'p' },
	{ "container", required_argument, NULL, 'c' },
	{ "tail", required_argument, NULL, O_TAIL },
	{ "timestamps", no_argument, NULL, O_TIMESTAMPS },
	{ "since", required_argument, NULL, O_SINCE },
	{ "limit-bytes", required_argument, NULL, O_LIMIT_BYTES },
	{ "stdin", no_argument, NULL, 'i' },
	{ "tty", no_argument, NULL, 't' },
	{ "name", required_argument, NULL, O_NAME },
	{ "plain-http", no_argument, NULL, O_PLAIN_HTTP },
	{ "replicas", required_argument, NULL, O_REPLICAS },
	{ "to-revision", required_argument, NULL, O_TO_REVISION },
	{ "help", no_argument, NULL, 'h' },
	{},
};

static void usage(FILE *out)
{
	fprintf(out, "shoalctl controls a Shoal cluster (Kubernetes API).\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\nGlobal flags:\n"
		"  -s, --server URL            API server (http[s]://host:port or unix:/path);\n"
		"                              also SHOAL_SERVER (default " CTL_DEFAULT_SERVER ")\n"
		"      --kubeconfig PATH       kubeconfig (KUBECONFIG, default ~/.kube/config)\n"
		"      --context NAME          kubeconfig context (default current-context)\n"
		"      --token TOKEN           bearer token\n"
		"      --insecure-skip-tls-verify\n"
		"  -n, --namespace NS          namespace (default: the context's, or default)\n"
		"  -A, --all-namespaces        list across all namespaces\n"
		"\nUsage: shoalctl COMMAND [flags] [args]\n");
}

static void command_usage(const struct ctl_command *cmd, FILE *out)
{
	fprintf(out, "%s\n\nUsage: shoalctl %s %s [flags]\n", cmd->summary, cmd->name, cmd->usage);
}

static int parse_bool(const char *s, bool *ret)
{
	if (!s || streq(s, "true") || streq(s, "1")) {
		*ret = true;
		return 0;
	}
	if (streq(s, "false") || streq(s, "0")) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

/* 30, 30s, 2m, 1h; 0 means no limit */
static int parse_duration(const char *s, int *ret)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || v < 0)
		return -EINVAL;
	if (streq(end, "") || streq(end, "s"))
		*ret = (int)v;
	else if (streq(end, "m"))
		*ret = (int)v * 60;
	else if (streq(end, "h"))
		*ret = (int)v * 3600;
	else
		return -EINVAL;
	return 0;
}

static int parse_output(const char *s, enum ctl_output *ret)
{
	static const struct {
		const char *name;
		enum ctl_output v;
	} outs[] = {
		{ "json", CTL_OUT_JSON }, { "yaml", CTL_OUT_YAML }, { "wide", CTL_OUT_WIDE },
		{ "name", CTL_OUT_NAME },
	};

	for (size_t i = 0; i < ARRAY_SIZE(outs); i++)
		if (streq(s, outs[i].name)) {
			*ret = outs[i].v;
			return 0;
		}
	return -EINVAL;
}

/* Connection settings: flags, then SHOAL_SERVER, then the kubeconfig, then the default. */
static int ctl_setup(struct ctl *c, struct err *e)
{
	const char *path = c->o.kubeconfig;
	_cleanup_free_ char *buf = NULL;
	const char *env;
	int r;

	if (!path && (env = getenv("KUBECONFIG")) && *env) {
		/* a list like kubectl's; the first file that exists wins (no merging); none
		 * existing means no kubeconfig, not ~/.kube/config */
		_cleanup_free_ char *list = strdup(env);
		char *save = NULL;

		if (!list)
			return -ENOMEM;
		for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save))
			if (access(p, F_OK) == 0) {
				buf = strdup(p);
				break;
			}
		path = buf;
	} else if (!path && (env = getenv("HOME")) && *env) {
		if (asprintf(&buf, "%s/.kube/config", env) < 0)
			return -ENOMEM;
		path = buf;
	}
	if (path) {
		r = ctl_kubeconfig_load(path, c->o.context, &c->cfg, e);
		if (r == -ENOENT && (c->o.kubeconfig || c->o.context) && !e->message[0])
			return err_set(e, ENOENT, 0, "", "kubeconfig %s does not exist", path);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == -ENOENT && e->message[0])
			return r;
	} else if (c->o.context) {
		return err_set(e, ENOENT, 0, "", "--context given but no kubeconfig found");
	}

	env = getenv("SHOAL_SERVER");
	if (c->o.server || (env && *env)) {
		free(c->cfg.server);
		c->cfg.server = strdup(c->o.server ? c->o.server : env);
		if (!c->cfg.server)
			return -ENOMEM;
	}
	if (c->o.token) {
		free(c->cfg.token);
		c->cfg.token = strdup(c->o.token);
		if (!c->cfg.token)
			return -ENOMEM;
	}
	if (c->o.insecure)
		c->cfg.insecure = true;
	c->namespace = strdup(c->o.namespace	? c->o.namespace
			      : c->cfg.namespace ? c->cfg.namespace
						 : "default");
	return c->namespace ? 0 : -ENOMEM;
}

static const struct ctl_command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (streq(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static const char *flag_name(unsigned f)
{
	switch (f) {
	case F_FILE:
		return "--filename";
	case F_RECURSIVE:
		return "--recursive";
	case F_OUTPUT:
		return "--output";
	case F_SELECTOR:
		return "--selector";
	case F_FIELD_SELECTOR:
		return "--field-selector";
	case F_WATCH:
		return "--watch";
	case F_NO_HEADERS:
		return "--no-headers";
	case F_SHOW_LABELS:
		return "--show-labels";
	case F_GRACE:
		return "--grace-period/--now/--force";
	case F_WAIT:
		return "--wait";
	case F_ALL:
		return "--all";
	case F_IGNORE_NOT_FOUND:
		return "--ignore-not-found";
	case F_TIMEOUT:
		return "--timeout";
	case F_CLIENT:
		return "--client";
	case F_ALL_NAMESPACES:
		return "--all-namespaces";
	case F_FOLLOW:
		return "--follow";
	case F_PREVIOUS:
		return "--previous";
	case F_CONTAINER:
		return "--container";
	case F_TAIL:
		return "--tail";
	case F_TIMESTAMPS:
		return "--timestamps";
	case F_SINCE:
		return "--since";
	case F_LIMIT_BYTES:
		return "--limit-bytes";
	case F_STDIN:
		return "--stdin";
	case F_TTY:
		return "--tty";
	case F_IMAGE:
		return "--name/--plain-http";
	case F_REPLICAS:
		return "--replicas";
	case F_TO_REVISION:
		return "--to-revision";
	default:
		return "?";
	}
}

/* Index of the subcommand word in argv (0 if none), skipping flags and their values, so
 * flags whose meaning depends on the command (logs -f) can be told apart before parsing. */
static int prescan_command(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (streq(a, "--"))
			return 0;
		if (!strncmp(a, "--", 2)) {
			const char *eq = strchr(a, '=');
			size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			for (const struct option *o = long_opts; o->name && !eq; o++)
				if (strlen(o->name) == n && !strncmp(o->name, a + 2, n) &&
				    o->has_arg == required_argument)
					i++;
			continue;
		}
		if (a[0] == '-' && a[1]) {
			for (const char *p = a + 1; *p; p++)
				if (strchr("snfolc", *p)) {
					if (!p[1])
						i++;
					break;
				}
			continue;
		}
		return i;
	}
	return 0;
}

int main(int argc, char **argv)
{
	_cleanup_free_ const char **files = NULL;
	const struct ctl_command *cmd;
	struct ctl c = { .o = { .grace_period = -1, .wait = true, .tail = -1, .replicas = -1 } };
	struct err e = {};
	unsigned used = 0;
	bool help = false;
	int opt, r;

	int ci = prescan_command(argc, argv), gargc = argc;
	bool logs = ci && streq(argv[ci], "logs");

	/* exec: everything after "--" is the command, never flags */
	if (ci && streq(argv[ci], "exec"))
		for (int i = ci + 1; i < argc; i++)
			if (streq(argv[i], "--")) {
				gargc = i;
				c.o.exec_argv = argv + i + 1;
				c.o.exec_argc = argc - i - 1;
				break;
			}
	opterr = 0;
	while ((opt = getopt_long(gargc, argv, logs ? ":s:n:AfRo:l:whpc:it" : ":s:n:Af:Ro:l:whpc:it",
				  long_opts, NULL)) != -1) {
		if (opt == 'f' && logs)
			opt = 'F';
		switch (opt) {
		case 's':
			c.o.server = optarg;
			break;
		case O_KUBECONFIG:
			c.o.kubeconfig = optarg;
			break;
		case O_CONTEXT:
			c.o.context = optarg;
			break;
		case O_TOKEN:
			c.o.token = optarg;
			break;
		case O_INSECURE:
			if (parse_bool(optarg, &c.o.insecure) < 0)
				goto bad_value;
			break;
		case 'n':
			c.o.namespace = optarg;
			break;
		case 'A':
			c.o.all_namespaces = true;
			used |= F_ALL_NAMESPACES;
			break;
		case 'f': {
			const char **n = realloc(files, (c.o.nfiles + 1) * sizeof(*files));

			if (!n)
				return 1;
			files = n;
			files[c.o.nfiles++] = optarg;
			used |= F_FILE;
			break;
		}
		case 'R':
			c.o.recursive = true;
			used |= F_RECURSIVE;
			break;
		case 'o':
			if (parse_output(optarg, &c.o.output) < 0) {
				fprintf(stderr,
					"error: unable to match a printer suitable for the output "
					"format \"%s\", allowed formats are: json,name,wide,yaml\n",
					optarg);
				return 1;
			}
			used |= F_OUTPUT;
			break;
		case 'l':
			c.o.selector = optarg;
			used |= F_SELECTOR;
			break;
		case O_FIELD_SELECTOR:
			c.o.field_selector = optarg;
			used |= F_FIELD_SELECTOR;
			break;
		case 'w':
			c.o.watch = true;
			used |= F_WATCH;
			break;
		case O_WATCH_ONLY:
			c.o.watch = c.o.watch_only = true;
			used |= F_WATCH;
			break;
		case O_NO_HEADERS:
			c.o.no_headers = true;
			used |= F_NO_HEADERS;
			break;
		case O_SHOW_LABELS:
			c.o.show_labels = true;
			used |= F_SHOW_LABELS;
			break;
		case O_GRACE: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || end == optarg || v < -1 || v > 1L << 30)
				goto bad_value;
			c.o.grace_period = (int)v;
			used |= F_GRACE;
			break;
		}
		case O_NOW:
			c.o.now = true;
			used |= F_GRACE;
			break;
		case O_FORCE:
			c.o.force = true;
			used |= F_GRACE;
			break;
		case O_WAIT:
			if (parse_bool(optarg, &c.o.wait) < 0)
				goto bad_value;
			used |= F_WAIT;
			break;
		case O_ALL:
			c.o.all = true;
			used |= F_ALL;
			break;
		case O_IGNORE_NOT_FOUND:
			c.o.ignore_not_found = true;
			used |= F_IGNORE_NOT_FOUND;
			break;
		case O_TIMEOUT:
			if (parse_duration(optarg, &c.o.timeout_s) < 0)
				goto bad_value;
			used |= F_TIMEOUT;
			break;
		case O_CLIENT:
			c.o.client_only = true;
			used |= F_CLIENT;
			break;
		case 'F':
			c.o.follow = true;
			used |= F_FOLLOW;
			break;
		case 'p':
			c.o.previous = true;
			used |= F_PREVIOUS;
			break;
		case 'c':
			c.o.container = optarg;
			used |= F_CONTAINER;
			break;
		case O_TAIL: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || end == optarg || v < -1)
				goto bad_value;
			c.o.tail = v;
			used |= F_TAIL;
			break;
		}
		case O_TIMESTAMPS:
			c.o.timestamps = true;
			used |= F_TIMESTAMPS;
			break;
		case O_SINCE:
			if (parse_duration(optarg, &c.o.since_s) < 0 || c.o.since_s <= 0)
				goto bad_value;
			used |= F_SINCE;
			break;
		case O_LIMIT_BYTES: {
			char *end;
			long long v = strtoll(optarg, &end, 10);

			if (*end || end == optarg || v <= 0)
				goto bad_value;
			c.o.limit_bytes = v;
			used |= F_LIMIT_BYTES;
			break;
		}
		case 'i':
			c.o.want_stdin = true;
			used |= F_STDIN;
			break;
		case 't':
			c.o.tty = true;
			used |= F_TTY;
			break;
		case O_NAME:
			c.o.image_name = optarg;
			used |= F_IMAGE;
			break;
		case O_PLAIN_HTTP:
			c.o.plain_http = true;
			used |= F_IMAGE;
			break;
		case O_REPLICAS: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0 || v > 1000000)
				goto bad_value;
			c.o.replicas = (int)v;
			used |= F_REPLICAS;
			break;
		}
		case O_TO_REVISION: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0)
				goto bad_value;
			c.o.to_revision = (int)v;
			used |= F_TO_REVISION;
			break;
		}
		case 'h':
			help = true;
			break;
		case ':':
			fprintf(stderr, "error: flag needs an argument: %s\n", argv[optind - 1]);
			return 1;
		default:
			fprintf(stderr, "error: unknown flag: %s\nSee 'shoalctl --help' for usage.\n",
				argv[optind - 1]);
			return 1;
		}
		continue;
bad_value:
		fprintf(stderr, "error: invalid value \"%s\" for flag %s\n", optarg ? optarg : "",
			argv[optind - 1]);
		return 1;
	}
	c.o.files = files;

	if (optind >= gargc) {
		usage(help ? stdout : stderr);
		return help ? 0 : 1;
	}
	cmd = find_command(argv[optind]);
	if (!cmd) {
		fprintf(stderr, "error: unknown command \"%s\" for \"shoalctl\"\n"
				"See 'shoalctl --help' for usage.\n", argv[optind]);
		return 1;
	}
	if (help) {
		command_usage(cmd, stdout);
		return 0;
	}
	for (unsigned f = 1; f && f <= used; f <<= 1)
		if ((used & f) && !(cmd->flags & f)) {
			fprintf(stderr, "error: %s does not take %s\n", cmd->name, flag_name(f));
			return 1;
		}

	r = ctl_setup(&c, &e);
	if (r < 0) {
		ctl_done(&c);
		return ctl_fail(&e, r);
	}
	r = cmd->handler(&c, gargc - optind - 1, argv + optind + 1);
	ctl_done(&c);
	return r;
}
