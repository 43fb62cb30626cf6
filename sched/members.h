/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The live-member set and "who owns this object": one function over the live members.
 *
 * Two layers: the gossip view (every member gossip knows, with its address, state, incarnation,
 * instance, round-trip time and metadata: members_update) and, derived from it, the live set
 * (members alive or suspect: a suspect is still a member until it is declared dead, so ownership
 * does not flap with every late ack). A lone node is a cluster of one. Owners are chosen by
 * rendezvous (highest-random-weight) hashing:
 * each (object key, member) pair gets a keyed SipHash score and the highest score wins, so when a
 * member leaves only the objects it owned move. Pure logic: no clock, no network.
 */
#ifndef SHOAL_SCHED_MEMBERS_H
#define SHOAL_SCHED_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct members;

int members_new(const char *self, struct members **ret);
struct members *members_free(struct members *m);

enum members_state {
	MEMBERS_ALIVE,
	MEMBERS_SUSPECT,
	MEMBERS_DEAD,
	MEMBERS_LEFT,
};
const char *members_state_name(enum members_state st); /* "alive", "suspect", "dead", "left" */

/* One member as gossip sees it. */
struct members_info {
	const char *name;
	const char *address; /* "IP:PORT" of its gossip endpoint ("" if unknown) */
	enum members_state state;
	uint32_t incarnation;
	uint64_t instance; /* made at the member's first start */
	uint32_t rtt_us;   /* last direct probe round trip (0: not measured) */
	const char *meta;  /* its metadata, a JSON object's text ("" if none) */
};

/*
 * Insert or replace a member's view entry (copied). The live set follows: alive/suspect members
 * are in it, dead/left ones are not. Returns 1 if the live set changed (epoch bumped, change
 * callback called), 0 if only the view did, -errno.
 */
int members_update(struct members *m, const struct members_info *info);
/* Drop a member from the view (gossip forgot it); 1 if the live set changed. Not self. */
int members_forget(struct members *m, const char *name);
/* The view, sorted by name, self included. */
size_t members_view_count(const struct members *m);
const struct members_info *members_view_get(const struct members *m, size_t i);
const struct members_info *members_view_find(const struct members *m, const char *name);

/* Add/remove a live member without view details; returns 1 if the set changed (epoch bumped),
 * 0 if not. */
int members_add(struct members *m, const char *name);
int members_remove(struct members *m, const char *name);
bool members_contains(const struct members *m, const char *name);
size_t members_count(const struct members *m);
const char *members_get(const struct members *m, size_t i);
const char *members_self(const struct members *m);
/* Bumped on every change: fences decisions taken under an older view. */
uint64_t members_epoch(const struct members *m);

/*
 * Whether the live members hold one replicated object set (default: yes). Ownership divides the
 * work on shared objects; while nodes do not replicate each other's objects, an object exists only
 * in its own node's replica, so that node owns it whatever the membership says (giving it to a
 * member that never sees it would leave it unreconciled). The daemon clears this until store
 * replication runs.
 */
void members_set_replicated(struct members *m, bool replicated);

/* The owner of an object key (e.g. "deployments.apps/default/web"); NULL if no members.
 * Self for every key while members are not replicated. */
const char *members_owner(const struct members *m, const char *key);
bool members_owns(const struct members *m, const char *key);
/* The owner among the live members other than `except`: who speaks for a member that is
 * suspect (still live, but not answering) about its own objects. NULL if none. */
const char *members_owner_except(const struct members *m, const char *key, const char *except);

/* Callback when the set changes (ownership may have moved). */
typedef void (*members_change_fn)(struct members *m, void *userdata);
void members_on_change(struct members *m, members_change_fn fn, void *userdata);

#endif
