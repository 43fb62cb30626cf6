/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shoald --teardown`: remove what a node leaves behind on purpose when the daemon stops (pods
 * keep running and the datapath stays programmed across restarts): its containers, the mounts
 * under its state and run directories, its pod network namespaces, pinned BPF programs and
 * maps, tc filters, the nft table, and its cgroup in every hierarchy. For decommissioning a
 * node and for tests. The daemon must not be running; the store is kept.
 */
#ifndef SHOAL_DAEMON_TEARDOWN_H
#define SHOAL_DAEMON_TEARDOWN_H

#include "daemon/config.h"
#include "lib/err.h"

int shoald_teardown(const struct config *cfg, struct err *e);

#endif
