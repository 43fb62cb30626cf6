/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shoald --teardown`: remove what a node leaves behind on purpose when the daemon stops (the
 * datapath stays programmed and pods keep running across restarts): pinned BPF programs and
 * maps, tc filters, the nft table, the node's cgroup subtree. For decommissioning a node and
 * for tests. The daemon must not be running.
 */
#ifndef SHOAL_DAEMON_TEARDOWN_H
#define SHOAL_DAEMON_TEARDOWN_H

#include "daemon/config.h"
#include "lib/err.h"

int shoald_teardown(const struct config *cfg, struct err *e);

#endif
