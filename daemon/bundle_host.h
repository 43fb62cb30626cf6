/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The side-effecting half of bundle generation: overlay root file systems, the pod's shared
 * IPC/UTS namespaces, volume directories and files, config.json on disk. Paths only; the pod
 * manager decides where (e.g. <state_dir>/pods/<uid>/ and .../containers/<id>/).
 */
#ifndef SHOAL_DAEMON_BUNDLE_HOST_H
#define SHOAL_DAEMON_BUNDLE_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <cJSON.h>
#include "daemon/bundle.h"
#include "lib/err.h"

/* <ctr_dir>/{upper,work,rootfs}; overlay of lowerdir (image_store_lowerdir) on rootfs.
 * *ret_rootfs (optional) is the mounted path. Idempotent: an existing mount is kept. */
int bundle_rootfs_mount(const char *lowerdir, const char *ctr_dir, char **ret_rootfs);
/* Unmount <ctr_dir>/rootfs and remove ctr_dir (upper/work included). */
int bundle_rootfs_remove(const char *ctr_dir);

/*
 * Pod-level IPC and UTS namespaces that outlive any one container: a helper process unshares
 * them, sets the hostname, and bind-mounts /proc/self/ns/{ipc,uts} onto <dir>/ipc and <dir>/uts
 * (like `ip netns add`). Containers join them by path.
 */
int bundle_podns_create(const char *dir, const char *hostname);
int bundle_podns_destroy(const char *dir);

/*
 * Create every volume of the pod under <pod_dir>/volumes/<name>: emptyDir (tmpfs for medium
 * Memory), configMap/secret/projected/downwardAPI files (secret and projected on tmpfs), and
 * check or create hostPath paths by their type. e->reason is FailedMount on a bad source.
 */
struct bundle_volume_ctx {
	bundle_get_object_fn get_object;
	void *ud;
	const char *pod_ip, *host_ip, *node_name; /* downwardAPI */
};
int bundle_volumes_prepare(const cJSON *pod, const char *pod_dir,
			   const struct bundle_volume_ctx *ctx, struct err *e);
/* Unmount and remove <pod_dir>/volumes. */
int bundle_volumes_cleanup(const char *pod_dir);

/* bundle_get_id_fn over <rootfs>/etc/passwd and /etc/group (ud is the rootfs path; lookups
 * stay inside the rootfs even through symlinks). */
int bundle_rootfs_id_lookup(void *rootfs, bool group, const char *name, uint32_t *ret_id,
			    uint32_t *ret_gid);

/* Lowest oomScoreAdj crun can give a container started from this process: -1000 with
 * CAP_SYS_RESOURCE (bounding set, root, initial user namespace), else our own oom_score_adj. */
int bundle_oom_score_adj_floor(void);

/* Write <bundle_dir>/config.json. */
int bundle_config_write(const char *bundle_dir, const cJSON *cfg);

#endif
