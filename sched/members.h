/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The live-member set and "who owns this object": one function over the live members.
 *
 * Until gossip membership lands, the set holds this node alone; membership will add and remove
 * members and bump the epoch. Owners are chosen by rendezvous (highest-random-weight) hashing:
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

/* Add/remove a live member; returns 1 if the set changed (epoch bumped), 0 if not. */
int members_add(struct members *m, const char *name);
int members_remove(struct members *m, const char *name);
bool members_contains(const struct members *m, const char *name);
size_t members_count(const struct members *m);
const char *members_get(const struct members *m, size_t i);
const char *members_self(const struct members *m);
/* Bumped on every change: fences decisions taken under an older view. */
uint64_t members_epoch(const struct members *m);

/* The owner of an object key (e.g. "deployments.apps/default/web"); NULL if no members. */
const char *members_owner(const struct members *m, const char *key);
bool members_owns(const struct members *m, const char *key);

/* Callback when the set changes (ownership may have moved). */
typedef void (*members_change_fn)(struct members *m, void *userdata);
void members_on_change(struct members *m, members_change_fn fn, void *userdata);

#endif
