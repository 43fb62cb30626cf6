/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transitive replication watermarks for tombstone collection (docs/consistency.md,
 * "Tombstones"). Pure code: no clock, no network.
 *
 * Write Y(T) for what node Y's store held at time T of Y's own clock. An entry of node Y in
 * node A's table, (t, f, sd), says:
 *   - A holds Y(t): learned at the end of a completed anti-entropy round, directly from the
 *     peer's own entry (the peer's clock when it served or sent the round) or transitively from
 *     the peer's table (the peer held Z(t) when the round began, and A now holds the peer's
 *     state of then);
 *   - Y's floor at its time t was f: Y held Z(f) for every Z of its member set then, and sd is
 *     a digest of that set (Y itself and its non-removed members).
 * Entries only originate from their own node (its entry at the moment it sends a round
 * message) and travel only through completed rounds, so both halves hold together.
 *
 * A node collects its tombstones of a snapshot taken at its time T once every member m either
 * completed a round with it since T, or reported a floor f >= T over a member set equal to its
 * own (so m's set contained it, hence m holds its state of T). The set digest turns view
 * differences (a new node, a restart with an empty view, a member removed on one side only)
 * into a wait instead of a wrong claim.
 */
#ifndef SHOAL_SCHED_REPL_WM_H
#define SHOAL_SCHED_REPL_WM_H

#include <stddef.h>
#include <stdint.h>

#include "sched/repl_wire.h"

struct repl_wm_entry {
	uint64_t t;  /* this node holds the entry's node's state of t (its clock, ms) */
	uint64_t f;  /* that node's floor at its time t (0: none) */
	uint64_t sd; /* digest of the member set the floor was taken over */
};

struct repl_wm;

int repl_wm_new(struct repl_wm **ret);
struct repl_wm *repl_wm_free(struct repl_wm *w);

/* The slot of `name` (created empty, t = 0), stable for the table's life; <0: -ENOMEM. */
int repl_wm_slot(struct repl_wm *w, const char *name);
/* The entry in a slot from repl_wm_slot. */
struct repl_wm_entry *repl_wm_at(struct repl_wm *w, int slot);
/* Merge one entry: kept if its t is later than the one held. */
void repl_wm_merge(struct repl_wm *w, const char *name, const struct repl_wm_entry *e);

/* A member's contribution to a set digest (the digest is the sum over the set, wrapping). */
uint64_t repl_wm_name_hash(const char *name);

/*
 * Append the vector section to a message: the sender's own entry (t = now, its floor and set
 * digest) and the entries of `slots` (the sender's member set; empty entries are skipped).
 */
void repl_wm_put(struct repl_wm *w, struct repl_buf *b, const char *self, uint64_t now,
		 uint64_t floor, uint64_t sd, const int *slots, size_t n);
/*
 * Merge a vector section (the bytes after a message's body) into the table, except the entry
 * of `self`. A malformed section merges nothing: -EBADMSG. An empty one is a no-op (a node
 * that does not send watermarks).
 */
int repl_wm_apply(struct repl_wm *w, const char *self, const uint8_t *p, size_t len);

#endif
