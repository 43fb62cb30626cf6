/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster-wide uniqueness without a master (docs/consistency.md, "Uniqueness").
 *
 * Claim and verify: a node that wants a unique value (a pod CIDR) writes a claim object named by
 * the value and by itself (claims_name), so concurrent claims of one value are distinct objects
 * that all replicate, never one register overwriting another. Every node ranks the claims of a
 * value the same way (claims_winner: the earliest-born claim, then the smaller holder name), so
 * once the replicas agree they agree on the holder. A claimant uses its value only once the claim
 * has settled (claims_verify): it has stood unchallenged for a settle window after the node had
 * caught up with the cluster; a loser deletes its claim and claims another value.
 *
 * Detect and repair: values allocated at once, without a settle window (ClusterIPs and nodePorts:
 * an API create does not wait), are checked after the fact. claims_duplicates finds the objects
 * that hold a value another, earlier-created object holds; their owners re-address them.
 *
 * Pure logic: no clock (times are parameters), no store, no network.
 */
#ifndef SHOAL_SCHED_CLAIMS_H
#define SHOAL_SCHED_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sub-blocks of a CIDR: the /24s of a /16 cluster CIDR, for instance. */
struct claims_cidr {
	uint32_t net;	     /* host byte order */
	unsigned prefix;     /* of the whole range */
	unsigned sub_prefix; /* of each block */
	uint32_t count;	     /* blocks in the range */
};

/* -EINVAL unless cidr is an IPv4 CIDR with prefix <= sub_prefix <= 30 (and at most 2^24 blocks). */
int claims_cidr_init(struct claims_cidr *c, const char *cidr, unsigned sub_prefix);
/* "10.244.3.0/24" for block 3. -ERANGE past the end. */
int claims_cidr_block(const struct claims_cidr *c, uint32_t block, char *buf, size_t len);
/* The block a CIDR text names; -EINVAL if it is not exactly one block of the range. */
int claims_cidr_find(const struct claims_cidr *c, const char *cidr, uint32_t *ret);

/*
 * The claim object's name: "<kind>.<value>.<holder>" with every character of value that is not
 * [a-z0-9] written as '-' ("podcidr.10-244-3-0-24.n1"). claims_prefix is the part before the
 * holder ("podcidr.10-244-3-0-24."), which every claim of that value starts with. -ENAMETOOLONG
 * past 253 characters (a DNS-1123 subdomain, like every object name), -EINVAL for an empty part.
 */
int claims_name(const char *kind, const char *value, const char *holder, char *buf, size_t len);
int claims_prefix(const char *kind, const char *value, char *buf, size_t len);

/* One claim of a value as a replica sees it. */
struct claims_entry {
	const char *holder;
	uint64_t born; /* HLC of the claim object's create: equal on every replica */
};

/* Index of the winning claim: earliest born, then the smaller holder name. n > 0. */
size_t claims_winner(const struct claims_entry *e, size_t n);

/*
 * First free block at or after `start`, wrapping around; -ENOSPC when every block is taken.
 * claims_start hashes a key (the claimant's name) to a start, so claimants retrying after a lost
 * race spread instead of racing for the same next block.
 */
int claims_pick(uint32_t count, uint32_t start, bool (*taken)(uint32_t block, void *ud), void *ud,
		uint32_t *ret);
uint32_t claims_start(const char *key, uint32_t count);

enum claims_state {
	CLAIMS_PENDING, /* ours so far, not settled yet */
	CLAIMS_SETTLED, /* ours: use it */
	CLAIMS_LOST,	/* another claim of the value wins: delete ours, claim another */
};

/*
 * The state of self's claim among all claims of its value (self's included), at now_ms.
 * synced_ms: when this node had last caught up with the cluster after making the claim (an
 * anti-entropy round completed, or it is alone), 0 if it has not. Settled once synced and
 * settle_ms have passed since, with no rival winning; LOST as soon as a rival wins (the caller
 * deletes its claim and claims another value, even if the winner goes away later).
 */
enum claims_state claims_verify(const struct claims_entry *all, size_t n, const char *self,
				uint64_t synced_ms, uint64_t now_ms, uint64_t settle_ms);

/* An object holding a value (a Service holding a ClusterIP or a nodePort). */
struct claims_holder {
	uint64_t value;
	uint64_t born;	 /* HLC of the holder's create */
	const char *uid; /* tie-break: equal born on two nodes */
	bool loser;	 /* out: another holder, created earlier, keeps the value */
};

/*
 * Mark every holder of a value except the earliest (born, uid) as a loser: the later objects are
 * re-addressed. Reorders h (by value, then rank). Returns the number of losers, -ENOMEM.
 */
int claims_duplicates(struct claims_holder *h, size_t n);

#endif
