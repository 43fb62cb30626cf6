// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "bpf/lb.h"
#include "bpf/nodeport.h"
#include "daemon/teardown.h"
#include "lib/log.h"
#include "lib/util.h"
#include "netplugin/netplugin.h"

/* Remove a cgroup directory and its (empty) children, deepest first. */
static int cgroup_rmdir_tree(const char *path)
{
	_cleanup_free_ char *cmd = NULL;
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char sub[PATH_MAX];
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		cgroup_rmdir_tree(sub);
	}
	closedir(d);
	return rmdir(path) < 0 && errno != ENOENT ? -errno : 0;
}

int shoald_teardown(const struct config *cfg, struct err *e)
{
	char pin_root[PATH_MAX], cg[PATH_MAX];
	struct np_node *np = NULL;
	int r, ret = 0;
	char *slash;

	snprintf(pin_root, sizeof(pin_root), "%s", cfg->bpf_pin_dir);
	slash = strrchr(pin_root, '/');
	if (slash && slash != pin_root)
		*slash = 0;

	r = np_teardown(pin_root, cfg->node_name, cfg->uplink);
	if (r < 0 && r != -ENOENT)
		ret = log_warn_errno(r, "node %s: cannot remove NodePort datapath", cfg->node_name);
	r = lb_teardown(pin_root, cfg->node_name);
	if (r < 0 && r != -ENOENT)
		ret = log_warn_errno(r, "node %s: cannot remove socket LB pins", cfg->node_name);
	rmdir(cfg->bpf_pin_dir);

	struct np_node_opts no = {
		.node_name = cfg->node_name,
		.state_dir = cfg->state_dir,
		.pod_cidr = cfg->pod_cidr,
		.nft_table = cfg->nft_table,
	};
	r = np_node_open(&no, &np, e);
	if (r >= 0) {
		r = np_node_teardown(np, e);
		if (r < 0)
			ret = log_warn_errno(r, "node %s: cannot remove nft table %s: %s",
					     cfg->node_name, cfg->nft_table, e->message);
		np_node_close(np);
	}

	if (lb_cgroup2_root(cg, sizeof(cg)) >= 0) {
		size_t n = strlen(cg);
		snprintf(cg + n, sizeof(cg) - n, "/%s", cfg->cgroup_name);
		r = cgroup_rmdir_tree(cg);
		if (r < 0)
			ret = log_warn_errno(r, "node %s: cannot remove cgroup %s", cfg->node_name, cg);
	}
	return ret;
}
