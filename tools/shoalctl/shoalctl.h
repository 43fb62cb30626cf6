/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoalctl internals, shared by the subcommand files. Pure parts (kubeconfig parsing, resource
 * resolution, the apply patch, table and describe rendering, manifest decoding) take their
 * inputs as cJSON/strings and are unit-tested; the HTTP client (libcurl) and the commands are
 * the impure edge.
 */
#ifndef SHOAL_TOOLS_SHOALCTL_H
#define SHOAL_TOOLS_SHOALCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cJSON.h>

#include "lib/err.h"
#include "lib/macro.h"

#define SHOALCTL_VERSION "v0.1.0"
#define CTL_DEFAULT_SERVER "http://127.0.0.1:6443"
#define CTL_LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"
#define CTL_ACCEPT_TABLE                                                                          \
	"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"      \
	"g=meta.k8s.io,application/json"

/* ---- connection settings (kubeconfig.c) ---- */

struct ctl_config {
	char *server; /* http(s)://host[:port][/prefix] or unix:/path */
	char *ca_file;
	char *ca_data; /* PEM, decoded from certificate-authority-data */
	char *cert_file, *key_file;
	char *cert_data, *key_data; /* PEM, decoded from client-*-data */
	char *token;
	char *namespace; /* the context's namespace, NULL if none */
	bool insecure;
};

void ctl_config_done(struct ctl_config *c);
/*
 * Parse a kubeconfig document (YAML or JSON). `dir` resolves relative file paths (the
 * kubeconfig's directory); `context` overrides current-context (NULL: use current-context).
 * Fills what the selected context names; leaves *ret zeroed when the file has no contexts.
 */
int ctl_kubeconfig_parse(const char *text, size_t len, const char *dir, const char *context,
			 struct ctl_config *ret, struct err *e);
/* Read and parse; -ENOENT (without a message) when the file does not exist. */
int ctl_kubeconfig_load(const char *path, const char *context, struct ctl_config *ret,
			struct err *e);

/* ---- HTTP (http.c, libcurl) ---- */

struct ctl_http;
struct ctl_response {
	long status;
	char *body;
	size_t len;
};
/* Called per newline-delimited chunk of a streamed response; return <0 to stop. */
typedef int (*ctl_line_fn)(const char *line, size_t len, void *userdata);

int ctl_http_new(const struct ctl_config *cfg, struct ctl_http **ret, struct err *e);
struct ctl_http *ctl_http_free(struct ctl_http *h);
/* The server as given (for messages). */
const char *ctl_http_server(const struct ctl_http *h);
/* -EHOSTUNREACH etc. with a message in e on transport errors; HTTP errors are in ret->status. */
int ctl_http_do(struct ctl_http *h, const char *method, const char *path, const char *accept,
		const char *content_type, const char *body, struct ctl_response *ret, struct err *e);
/*
 * GET a streaming response, handing each line to fn. A non-2xx answer is returned in ret
 * (status and body) without calling fn.
 */
int ctl_http_stream(struct ctl_http *h, const char *path, const char *accept, ctl_line_fn fn,
		    void *userdata, struct ctl_response *ret, struct err *e);
void ctl_response_done(struct ctl_response *r);
/* GET a streaming response, handing every chunk as it arrives to fn (no line splitting). */
typedef int (*ctl_chunk_fn)(const char *buf, size_t len, void *userdata);
int ctl_http_stream_raw(struct ctl_http *h, const char *path, ctl_chunk_fn fn, void *userdata,
			struct ctl_response *ret, struct err *e);
/* POST/PUT a file as the body (streamed from disk). */
int ctl_http_upload(struct ctl_http *h, const char *method, const char *path,
		    const char *content_type, FILE *body, long long size, struct ctl_response *ret,
		    struct err *e);
/*
 * A raw connection for a protocol upgrade: connect like any request, send the request
 * head (request line and extra headers; Host and Authorization are added), read the
 * response head. *ret_status is its status code, *ret_head the head's text (caller frees).
 * Then ctl_raw_send/recv/fd talk on the connection (TLS included).
 */
struct ctl_raw;
int ctl_http_upgrade(struct ctl_http *h, const char *path, const char *headers,
		     struct ctl_raw **ret, long *ret_status, char **ret_head, struct err *e);
/* bytes sent, or -EAGAIN / -errno */
ssize_t ctl_raw_send(struct ctl_raw *r, const void *buf, size_t len);
/* bytes received (0: closed), or -EAGAIN / -errno */
ssize_t ctl_raw_recv(struct ctl_raw *r, void *buf, size_t len);
int ctl_raw_fd(struct ctl_raw *r);
struct ctl_raw *ctl_raw_free(struct ctl_raw *r);
/* r came from the transport (no answer from the server): retrying other objects is pointless. */
bool ctl_transport_failed(int r);
/* Percent-encode a query parameter value (caller frees). */
char *ctl_http_escape(const char *s);

/* ---- resources and discovery (resource.c) ---- */

struct ctl_resource {
	char group[128]; /* "" for core */
	char version[32];
	char name[128]; /* plural: pods, deployments */
	char singular[128];
	char kind[128];
	bool namespaced;
};

/*
 * Resolve what a user typed (pods, pod, po, Pod, deployments.apps, deploy.v1.apps) against
 * `lists`, an array of APIResourceList documents in priority order (core first).
 * -ENOENT with kubectl's message when nothing matches.
 */
int ctl_resource_resolve(const cJSON *lists, const char *arg, struct ctl_resource *ret,
			 struct err *e);
/* Find by apiVersion ("v1", "apps/v1") and kind, as manifests name things. */
int ctl_resource_by_kind(const cJSON *lists, const char *api_version, const char *kind,
			 struct ctl_resource *ret, struct err *e);
/* "/api/v1/namespaces/ns/pods/name"; ns NULL (or cluster-scoped) and name NULL are left out. */
int ctl_resource_path(const struct ctl_resource *r, const char *ns, const char *name, char **ret);
/* What kubectl prints before "/name": "pod", "deployment.apps". */
void ctl_resource_ref(const struct ctl_resource *r, char *buf, size_t len);

/* ---- apply: 3-way JSON merge patch (patch3.c) ---- */

/*
 * kubectl's client-side apply: the patch that takes `current` to `modified` (additions and
 * changes from modified vs current) plus deletions of fields that were in `original` (the
 * last-applied configuration, may be NULL) and are gone from modified (set to null).
 * Lists are replaced whole, as in RFC 7386. An empty object means "unchanged".
 */
int ctl_patch_3way(const cJSON *original, const cJSON *modified, const cJSON *current,
		   cJSON **ret);
/* Copy of manifest with the last-applied annotation set to the manifest itself. */
int ctl_apply_modified(const cJSON *manifest, cJSON **ret);
/* The last-applied configuration stored on a live object, NULL if none or unparsable. */
cJSON *ctl_apply_original(const cJSON *live);

/* ---- tables (table.c) ---- */

struct ctl_tab_opts {
	bool wide;	     /* show priority > 0 columns */
	bool show_namespace; /* NAMESPACE first, from each row's object metadata */
	bool show_kind;	     /* prefix names with "pod/" (several kinds in one get) */
	bool show_labels;    /* LABELS last, from each row's object metadata */
	const char *kind_ref;
};

struct ctl_tab {
	struct ctl_tab_opts opts;
	size_t ncols;
	char **header;
	size_t *width;
	int *src; /* table column index per output column (-1: namespace) */
	char ***rows;
	size_t nrows, printed;
};

/* Take the columns from a meta.k8s.io Table (first call) and append its rows. */
int ctl_tab_add(struct ctl_tab *t, const cJSON *table);
/* Print rows not yet printed, aligned with everything printed before (header optional). */
void ctl_tab_print(struct ctl_tab *t, bool header, FILE *out);
void ctl_tab_done(struct ctl_tab *t);
/* A cell as kubectl shows it: strings as is, integers without decimals, null "<none>". */
char *ctl_cell_string(const cJSON *cell);
/* Build a Table (NAME, AGE) from a plain object or list, for servers that don't send one. */
cJSON *ctl_table_fallback(const cJSON *obj_or_list, int64_t now);
/* "5s", "3m20s", "2d3h" as kubectl prints ages. */
void ctl_age(int64_t seconds, char *buf, size_t len);

/* ---- manifests (manifest.c) ---- */

/* Append every object in a YAML/JSON stream to `out`, expanding kind: List. */
int ctl_manifest_parse(const char *buf, size_t len, const char *source, cJSON *out,
		       struct err *e);
/* FILE, DIR (*.yaml, *.yml, *.json sorted; recursive if asked) or "-" for stdin. */
int ctl_manifest_read(const char *path, bool recursive, cJSON *out, struct err *e);

/* ---- describe rendering (describe.c) ---- */

int ctl_describe_render(const cJSON *obj, const cJSON *events, int64_t now, FILE *out);

/* ---- output helpers (output.c) ---- */

/* JSON indented like kubectl (4 spaces), with a trailing newline. */
void ctl_print_json(const cJSON *j, FILE *out);
int ctl_print_yaml(const cJSON *j, FILE *out);
/* Turn a non-2xx response into kubectl's "Error from server (Reason): message" in e. */
int ctl_status_to_err(long status, const char *body, struct err *e);
const char *ctl_json_str(const cJSON *j, const char *path); /* "metadata.name" */

/* ---- the per-run context (ctl.c) ---- */

enum ctl_output { CTL_OUT_TABLE, CTL_OUT_WIDE, CTL_OUT_JSON, CTL_OUT_YAML, CTL_OUT_NAME };

struct ctl_opts {
	const char *server, *kubeconfig, *context, *token, *namespace;
	bool all_namespaces, insecure;
	enum ctl_output output;
	const char *selector, *field_selector;
	bool watch, watch_only, no_headers, show_labels;
	const char **files;
	size_t nfiles;
	bool recursive;
	int grace_period; /* -1: server default */
	bool wait, now, force, all, ignore_not_found;
	int timeout_s;
	bool client_only;
	/* logs, exec, image */
	bool follow, previous, timestamps, want_stdin, tty, plain_http;
	const char *container, *image_name;
	long tail; /* -1: all */
	int since_s;
	long long limit_bytes;
	char **exec_argv; /* after "--" */
	int exec_argc;
	int replicas;    /* scale --replicas; -1 unset */
	int to_revision; /* rollout undo --to-revision; 0: previous */
};

struct ctl {
	struct ctl_opts o;
	struct ctl_config cfg;
	struct ctl_http *http;
	char *namespace; /* effective: -n, the context's, or "default" */
	cJSON *lists;	 /* discovery cache: APIResourceList documents */
	bool discovered_all;
};

/* Connect lazily: the first request builds the HTTP client. */
int ctl_http(struct ctl *c, struct ctl_http **ret, struct err *e);
/*
 * Request returning parsed JSON (NULL for an empty body). Non-2xx → -EIO-ish with the server's
 * Status in e (e->code is the HTTP status).
 */
int ctl_request(struct ctl *c, const char *method, const char *path, const char *accept,
		const char *content_type, const cJSON *body, cJSON **ret, struct err *e);
/* Fetch every group's preferred version into c->lists (core first, then /apis order). */
int ctl_discover_all(struct ctl *c, struct err *e);
int ctl_resolve(struct ctl *c, const char *arg, struct ctl_resource *ret, struct err *e);
int ctl_resolve_kind(struct ctl *c, const char *api_version, const char *kind,
		     struct ctl_resource *ret, struct err *e);
/* Namespace for an object: its own metadata.namespace, checked against an explicit -n. */
int ctl_object_namespace(struct ctl *c, const struct ctl_resource *r, const cJSON *obj,
			 const char **ret, struct err *e);
/* Every object in the -f files (Lists expanded), in file order. */
int ctl_read_files(struct ctl *c, cJSON **ret, struct err *e);
/* Where a manifest object lives: its resource, namespace (NULL if cluster-scoped), name. */
int ctl_object_target(struct ctl *c, const cJSON *obj, struct ctl_resource *ret_res,
		      const char **ret_ns, const char **ret_name, struct err *e);
/* Print e as an error line (kubectl style) and return 1. */
int ctl_fail(const struct err *e, int r);
void ctl_done(struct ctl *c);

/* ---- subcommands (cmd_*.c) ---- */

int cmd_apply(struct ctl *c, int argc, char **argv);
int cmd_create(struct ctl *c, int argc, char **argv);
int cmd_get(struct ctl *c, int argc, char **argv);
int cmd_describe(struct ctl *c, int argc, char **argv);
int cmd_delete(struct ctl *c, int argc, char **argv);
int cmd_version(struct ctl *c, int argc, char **argv);
int cmd_api_resources(struct ctl *c, int argc, char **argv);
int cmd_logs(struct ctl *c, int argc, char **argv);
int cmd_exec(struct ctl *c, int argc, char **argv);
int cmd_image(struct ctl *c, int argc, char **argv);
int cmd_scale(struct ctl *c, int argc, char **argv);
int cmd_rollout(struct ctl *c, int argc, char **argv);
/* KIND/NAME or KIND NAME (consumes 1 or 2 args); returns args used or <0. */
int ctl_target_arg(struct ctl *c, int argc, char **argv, struct ctl_resource *ret_res,
		   const char **ret_name, struct err *e);
int cmd_bpf(struct ctl *c, int argc, char **argv);
int cmd_debug(struct ctl *c, int argc, char **argv);
int cmd_members(struct ctl *c, int argc, char **argv);
int cmd_gossip(struct ctl *c, int argc, char **argv);

#endif
