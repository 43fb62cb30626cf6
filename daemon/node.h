/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node agent: every gossip member a Node on every node, written on change, never as a
 * heartbeat (docs/consistency.md, "Nodes").
 *
 * - This node's own Node: labels (kubernetes.io/hostname, os, arch, --node-labels; labels and
 *   taints set with kubectl are kept), spec.podCIDR(s), capacity, allocatable, addresses
 *   (InternalIP: the gossip advertise address; Hostname), nodeInfo, Ready=True. Written when
 *   it differs from what is stored (at start, when an address changes, when someone marked it
 *   Unknown or deleted it), by this node alone.
 * - Other members' Nodes arrive by replication. When a member is suspect, dead or left in the
 *   gossip view, the owner of its Node's key among the other live members
 *   (members_owner_except) sets Ready=Unknown once per incarnation; a member left for
 *   --node-left-grace seconds, or dead or gone from the view for --node-dead-grace, has its
 *   Node (and its pod CIDR claim) deleted by that owner. Nodes not made by a node agent (no
 *   shoal.io/member annotation, e.g. created with kubectl) are left alone.
 */
#ifndef SHOAL_DAEMON_NODE_H
#define SHOAL_DAEMON_NODE_H

#include <event2/event.h>
#include "daemon/config.h"
#include "sched/members.h"
#include "sched/store.h"

#define NODE_MEMBER_ANNOTATION "shoal.io/member"

struct node_agent;

/* members: the live set and gossip view (a lone node's when gossip is off). cfg->pod_cidr is
 * the node's settled pod CIDR. */
int node_agent_new(struct event_base *base, struct store *store, const struct config *cfg,
		   struct members *members, struct node_agent **ret);
struct node_agent *node_agent_free(struct node_agent *n);

/* Parse "k=v,k2=v2" into a JSON object of labels; -EINVAL (message in e) on a malformed item. */
int node_labels_parse(const char *text, cJSON **ret, struct err *e);

/* status.images from the image store's records (image_store_list): one entry per manifest
 * digest, names "<repo>@<digest>" first then the tags (at most 5), the largest max images. */
int node_images_status(const cJSON *records, size_t max, cJSON **ret);

#endif
