/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI runtime bundle generation: pod JSON + container index + image config + host paths ->
 * config.json (cJSON), following the Kubernetes rules for command/args, env, security context,
 * resources and volumes. Pure: no syscalls, no clock; objects the pod refers to (ConfigMaps,
 * Secrets) and users named in the image come through callbacks.
 *
 * The side-effecting half (overlay rootfs, pod IPC/UTS namespaces, volume directories and
 * files) is in bundle_host.h.
 */
#ifndef SHOAL_DAEMON_BUNDLE_H
#define SHOAL_DAEMON_BUNDLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <cJSON.h>
#include "lib/err.h"

/* Return the object (borrowed, must stay valid during the call) or NULL if it does not exist.
 * kind is "ConfigMap" or "Secret". */
typedef const cJSON *(*bundle_get_object_fn)(void *ud, const char *kind, const char *ns,
					     const char *name);
/* Resolve a user or group name from the image (its /etc/passwd, /etc/group). 0 or -ENOENT.
 * For a user, *ret_gid is the user's primary group. */
typedef int (*bundle_get_id_fn)(void *ud, bool group, const char *name, uint32_t *ret_id,
				uint32_t *ret_gid);

enum bundle_cgroup_mode {
	BUNDLE_CGROUP_V1 = 1,     /* legacy or hybrid: crun uses the v1 controllers */
	BUNDLE_CGROUP_V2 = 2,     /* unified */
};

struct bundle_params {
	const cJSON *pod;          /* the Pod object */
	bool init;                 /* spec.initContainers instead of spec.containers */
	int index;                 /* position in that list */
	const cJSON *image_config; /* OCI image config's "config" object (may be NULL) */

	const char *rootfs;        /* mounted rootfs (overlay) the bundle's root.path points at */
	const char *pod_dir;       /* volumes live in <pod_dir>/volumes/<name> */
	const char *netns_path;    /* NULL: a new network namespace */
	const char *ipcns_path;    /* NULL: new */
	const char *utsns_path;    /* NULL: new, hostname set by crun */
	const char *hosts_path;    /* files bind-mounted into the container (NULL: none) */
	const char *resolv_path;
	const char *hostname_path;
	const char *shm_path;      /* pod-wide /dev/shm (a tmpfs dir); NULL: private tmpfs */
	const char *termination_log_path; /* bound at the container's terminationMessagePath */
	const char *cgroup_path;   /* linux.cgroupsPath, see bundle_cgroup_path() */
	enum bundle_cgroup_mode cgroup_mode;
	const char *pod_ip;
	const char *host_ip;
	const char *node_name;
	int64_t memory_capacity; /* node memory in bytes, for Burstable oomScoreAdj (0: unknown) */
	int oom_score_adj_floor; /* lowest oomScoreAdj crun can set (bundle_oom_score_adj_floor) */

	bundle_get_object_fn get_object;
	void *object_ud;
	bundle_get_id_fn get_id;  /* e.g. bundle_rootfs_id_lookup with id_ud = rootfs path */
	void *id_ud;
};

/* Build config.json. On a pod/image problem -EINVAL and e->reason is what a container status
 * reports (CreateContainerConfigError, ...), e->message says what exactly. */
int bundle_config_build(const struct bundle_params *p, cJSON **ret, struct err *e);

/* "/<parent>/pod<uid>/<container>" (cgroupfs layout, same string on v1 and v2). */
int bundle_cgroup_path(const char *parent, const char *pod_uid, const char *container, char *buf,
		       size_t len);

/* The container object (spec.containers[i] or spec.initContainers[i]) or NULL. */
const cJSON *bundle_container(const cJSON *pod, bool init, int index);

/* Kubernetes quantities (api/quantity.h): CPU in millicores (rounded up), memory in bytes.
 * -EINVAL if bad or negative. */
int bundle_quantity_milli(const char *s, int64_t *ret);
int bundle_quantity_value(const char *s, int64_t *ret);

/* Value of key in a ConfigMap (data, binaryData) or Secret (data, base64-decoded); *ret is
 * malloc'd and NUL-terminated, *ret_len (optional) its length. -ENOENT if absent. */
int bundle_object_key(const cJSON *obj, const char *kind, const char *key, char **ret,
		      size_t *ret_len);
/* Downward API fieldRef value (metadata.name, status.podIP, ...). -EINVAL if unsupported. */
int bundle_field_value(const cJSON *pod, const char *path, const char *pod_ip,
		       const char *host_ip, const char *node_name, char **ret);

/* Annotation ("true") of a container with spec stdin: its shim gives it a stdin that `attach`
 * writes to (crun_stdin_path). */
#define BUNDLE_ANN_STDIN "io.shoal.stdin"

/* Default capability set (containerd's), NULL-terminated, CAP_ names. */
extern const char *const bundle_default_caps[];

#endif
