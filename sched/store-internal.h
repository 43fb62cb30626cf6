/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's parts (sched/store.h is the contract): snapshots and register printing
 * (store_obj.c), the in-memory index (store_index.c), the watch window (store_watch.c), SQLite
 * (store_db.c) and the writes (store.c). Internal to sched/store*.c.
 */
#ifndef SHOAL_SCHED_STORE_INTERNAL_H
#define SHOAL_SCHED_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>
#include <sodium.h>
#include <sqlite3.h>

#include "lib/err.h"
#include "sched/hlc.h"
#include "sched/store.h"

#define STORE_WATCH_WINDOW_DEFAULT 100000
#define STORE_WATCH_BYTES_DEFAULT (8u << 20)
#define STORE_HASH_MIN 1024
/* a bulk merge sorts its new keys in once this many wait (res_remove scans them) */
#define STORE_UNSORTED_MAX 4096

#define STORE_OBJECT_MAX (64u << 20)
#define STORE_MARKER_LEN 32
#define STATUS_KEY ",\"status\":"
#define STATUS_KEY_LEN (sizeof(STATUS_KEY) - 1)

/*
 * The composed text is laid out as  A R B [C] "}"  where A + B + "}" is the spec register,
 * R the metadata.resourceVersion member (with its leading comma unless metadata is otherwise
 * empty) and C is ,"status":<status register>. Writes splice new versions from these pieces.
 */
struct obj_priv {
	struct store_obj pub;
	uint32_t ring_refs; /* events in the watch window pointing here */
	bool live;          /* the current version of its key */
	size_t a_len, r_len, b_end;
	char buf[]; /* strings and json */
};

struct scratch {
	char *buf;
	size_t cap;
};

struct res;

/* A deleted uid: the spec register's tombstone, versioned like any write. */
struct tomb {
	uint64_t rv, born, hlc;
	const char *uid, *node; /* point into buf */
	char buf[];
};

struct entry {
	struct entry *hnext;
	struct entry *bnext, *bprev; /* the resource's keys in the same digest bucket */
	uint64_t hash;
	struct res *res;
	struct obj_priv *obj; /* NULL: tombstone */
	struct tomb *tomb;    /* set when obj is NULL */
	uint64_t dig;         /* this key's share of its digest bucket */
	uint32_t bucket;      /* store_key_bucket(), set by entry_new() */
	int64_t row;          /* its row's rowid in SQLite (store_db.c) */
	const char *name;     /* points into ns[] */
	char ns[];
};

struct res {
	char *name;
	struct entry **v; /* live entries sorted by (ns, name) */
	size_t n, cap;
	/* the last `unsorted` of v were added during a merge batch, not sorted in yet:
	 * res_settle() sorts them in (store_merge does at the batch's end, a bulk past
	 * STORE_UNSORTED_MAX and at its commit, readers before they read v) */
	size_t unsorted;
	uint64_t mod; /* bumped when v changes shape, so iterators re-seek */
	uint64_t dig[STORE_DIGEST_BUCKETS]; /* xor of the keys' digests, per bucket */
	/* every entry of the resource per digest bucket (unsorted), so listing a bucket costs
	 * that bucket, not the store */
	struct entry *bhead[STORE_DIGEST_BUCKETS];
};

struct ev_slot {
	enum store_event_type type;
	bool merged; /* applied by a merge (store_event.merged) */
	uint64_t rv;
	struct obj_priv *obj, *old;
};

struct store_watch {
	struct store *s;
	struct store_watch *next;
	char *resource; /* NULL: all */
	uint64_t last_rv;
	store_watch_fn fn;
	void *userdata;
	bool cancelled;
	bool pinned; /* store_watch_add still holds it */
};

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PUT,    /* the whole row (an UPDATE by rowid, an INSERT for a new key) */
	ST_INSERT, /* used by ST_PUT */
	ST_STATUS,
	ST_DROP,
	ST_META,
	ST_FLOOR,
	ST_MAX,
};


struct store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_MAX];
	int nparams[ST_MAX]; /* sqlite3_bind_parameter_count() of each */
	/* the next rowid a new key's row gets: above every row's, never handed out twice (a
	 * rolled-back insert leaves its entry holding one) */
	int64_t next_row;
	char *node_name;
	store_clock_fn clock;
	void *clock_data;
	int (*fault)(void *userdata, const char *resource, const char *ns, const char *name);
	void *fault_data;
	struct hlc hlc;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
	char marker[STORE_MARKER_LEN + 1];
	struct scratch print, spec, status;

	uint64_t rv;
	uint64_t commits;
	size_t live, tombstones;

	struct res **res;
	size_t nres;
	struct entry **htab;
	size_t hsize, hcount;

	/* events with rv in (oldest_rv, rv], oldest first */
	struct ev_slot *ring;
	size_t ring_cap, ring_head, ring_len;
	uint64_t oldest_rv;
	size_t window, window_bytes, pinned_bytes;

	struct store_watch *watch_head, *watch_tail;
	size_t nwatchers;
	bool dispatching;
	bool batch; /* store_merge: one transaction, dispatch at its end */
	/*
	 * store_merge_hold: a bulk transaction left open across calls. Its events (rv above
	 * bulk_rv0) are held until it commits; bulk_lease was made durable before it began and
	 * bounds every rv it hands out, so a crash before the commit reuses none of them.
	 */
	bool bulk;
	uint64_t bulk_rv0, bulk_lease;

	uint64_t seq_base, max_ahead_ms;
	uint64_t merged, merge_stale, clock_refused;
	uint64_t merged_as_received, merged_unparsed;
	bool merge_fast; /* remote spec bodies kept as received when canonical */
};

/* A register write, as it goes to SQLite. */
struct row {
	int64_t rowid; /* the key's entry's */
	bool fresh;    /* a key not in the index before: no row yet */
	const char *resource, *ns, *name, *uid;
	uint64_t rv;
	const char *spec;
	size_t spec_len;
	uint64_t spec_hlc;
	const char *spec_node;
	const char *status;
	size_t status_len;
	uint64_t status_hlc;
	const char *status_node;
	uint64_t status_term;
	bool deleted;
	uint64_t born;
	const char *sticky;
};

struct layout {
	const char *a, *b;
	size_t a_len, b_len;
	const char *status; /* NULL: no status register */
	size_t status_len;
};

struct obj_fields {
	const char *resource, *ns, *name, *uid;
	uint64_t rv, spec_hlc, status_hlc, status_term, born;
	const char *spec_node, *status_node, *sticky;
	struct layout l;
	/* indexed fields */
	const cJSON *labels;
	cJSON **labels_take; /* set: obj_new takes *labels_take (an object) instead of a copy of
				labels, and sets it NULL */
	const char *node_name, *phase;
};

struct spec_out {
	cJSON *view;  /* owns the view nodes; the fields below point into it */
	struct layout l; /* a and b, in s->print */
	const char *uid;
	const cJSON *labels;
	const char *node_name;
	char uidbuf[37];
};

/*
 * The new state of a key, as every write path hands it to key_commit(): a live object (the
 * layout's spec pieces and status) or a tombstone of uid.
 */
struct kstate {
	const char *uid;
	uint64_t born;
	bool deleted;
	uint64_t spec_hlc;
	const char *spec_node;
	const char *sticky;
	struct layout l;
	uint64_t status_hlc;
	const char *status_node;
	uint64_t status_term;
	bool touch; /* a visible change even if the text is the same (a status claim) */
	const cJSON *labels;
	cJSON **labels_take; /* see struct obj_fields */
	const char *node_name, *phase;
};

/* store_write.c: the one register-write path, register order and sticky fields */
int key_commit(struct store *s, struct res *r, struct entry *ent, const char *ns,
	       const char *name, uint64_t h, const struct kstate *k, struct store_obj **ret,
	       struct err *e);
/* Status register order: (term, hlc, node). */
int status_order(uint64_t a_term, uint64_t a_hlc, const char *a_node, uint64_t b_term,
		 uint64_t b_hlc, const char *b_node);
int spec_order(const char *a_uid, uint64_t a_born, bool a_del, uint64_t a_hlc,
	       const char *a_node, const char *b_uid, uint64_t b_born, bool b_del, uint64_t b_hlc,
	       const char *b_node);
int err_internal(struct err *e, int r);
struct tomb *tomb_new(uint64_t rv, uint64_t born, uint64_t hlc, const char *uid, const char *node);
cJSON *sticky_parse(const char *text);
void sticky_join(cJSON *into, const cJSON *other);
int sticky_own(cJSON *st, const cJSON *obj, uint64_t hlc, const char *node,
	       const cJSON *cur_obj);
bool sticky_overlay(cJSON *obj, const cJSON *st);
char *sticky_print(const cJSON *st);
bool streq_null(const char *a, const char *b);

/* store_merge.c: a received spec text's layout, when it is what spec_print() makes of it */
bool store_spec_layout_as_received(const char *text, size_t len, struct layout *l);

/* store_digest.c */
/* Recompute e's share of its bucket digest from its current obj/tomb. */
void key_digest_update(struct entry *e);

/* store_obj.c: snapshots and printing the registers */
struct obj_priv *obj_priv(struct store_obj *o);
size_t obj_size(const struct obj_priv *o);
struct layout obj_layout(const struct obj_priv *o);
struct obj_priv *obj_new(const struct obj_fields *f);
void view_deletep(cJSON **v);
int print_into(const cJSON *item, struct scratch *sc, size_t *ret_len);
int spec_print(struct store *s, const cJSON *obj, const char *uid_default, struct spec_out *out);
int spec_text(struct store *s, const struct layout *l, const char **ret, size_t *ret_len);
const cJSON *status_of(const cJSON *obj);
const char *phase_of(const cJSON *status);

/* store_index.c: hash table and per-resource sorted arrays */
int key_cmp(const char *ns1, const char *name1, const char *ns2, const char *name2);
uint64_t key_hash(const struct store *s, const char *res, const char *ns, const char *name);
struct res *res_find(struct store *s, const char *resource);
struct res *res_get(struct store *s, const char *resource);
size_t res_bound(const struct res *r, const char *ns, const char *name, bool strict);
size_t res_ns_bound(const struct res *r, const char *ns, bool strict);
int res_reserve(struct res *r);
void res_insert(struct res *r, struct entry *e); /* needs res_reserve() first */
void res_remove(struct res *r, struct entry *e);
void res_append(struct res *r, struct entry *e); /* needs res_reserve() first */
void res_settle(struct res *r);
struct entry *entry_find(struct store *s, struct res *r, const char *ns, const char *name,
			 uint64_t h);
struct entry *entry_lookup(struct store *s, const char *resource, const char *ns,
			   const char *name);
struct entry *entry_new(struct res *r, const char *ns, const char *name, uint64_t h);
void htab_add(struct store *s, struct entry *e);
void htab_del(struct store *s, struct entry *e);

/* store_watch.c: the watch window and dispatch */
void ring_release(struct store *s, struct obj_priv *o);
void obj_retire(struct store *s, struct obj_priv *o);
int ring_reserve(struct store *s);
void ring_push(struct store *s, enum store_event_type type, uint64_t rv, struct obj_priv *obj,
	       struct obj_priv *old);
uint64_t ring_deliverable(const struct store *s);
void ring_evict(struct store *s);
void watch_free(struct store_watch *w);
void store_dispatch(struct store *s);

/* store_db.c: SQLite */
int db_open(struct store *s, const char *path);
void db_close(struct store *s);
int db_write(struct store *s, int op, const struct row *w, struct err *e);
int db_begin(struct store *s); /* commits an open bulk transaction first (db_bulk_end) */
int db_commit(struct store *s); /* rolls back on failure */
/* Commit the bulk transaction, if open; its events are then deliverable (store_dispatch). */
int db_bulk_end(struct store *s);
void db_rollback(struct store *s);
int db_drop(struct store *s, int64_t rowid);
int db_floor(struct store *s, uint64_t seq);
int store_load(struct store *s);
uint64_t store_wall(struct store *s);

#endif
