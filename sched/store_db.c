// SPDX-License-Identifier: Apache-2.0
/*
 * SQLite, the durable copy: one row per key with both registers, their versions, the commit
 * sequence and a tombstone flag; one transaction per commit. Loading rebuilds the index.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/util.h"
#include "sched/store-internal.h"

#define OBJ_COLS                                                                               \
	"resource, ns, name, uid, rv, spec, spec_hlc, spec_node, status, status_hlc, "          \
	"status_node, deleted, born, sticky, status_term"
/* the key's row by rowid (the entry's); the key's columns must match it too */
#define OBJ_ROW "WHERE rowid = ?16 AND resource = ?1 AND ns = ?2 AND name = ?3"

/*
 * Every statement binds the row's columns as ?1..?15 in OBJ_COLS order and the rowid as ?16.
 * The in-memory index is the only index: each key's entry keeps its row's rowid, so a write is
 * one B-tree operation (no (resource, ns, name) index to keep); new rows get rowids from
 * s->next_row, above every row's (store_load).
 */
static const char *const store_sql[ST_MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_PUT] = "UPDATE objects SET uid = ?4, rv = ?5, spec = ?6, spec_hlc = ?7, "
		   "spec_node = ?8, status = ?9, status_hlc = ?10, status_node = ?11, "
		   "deleted = ?12, born = ?13, sticky = ?14, status_term = ?15 " OBJ_ROW,
	[ST_INSERT] = "INSERT INTO objects(rowid, " OBJ_COLS ") "
		      "VALUES(?16, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	[ST_STATUS] = "UPDATE objects SET rv = ?5, status = ?9, status_hlc = ?10, "
		      "status_node = ?11, status_term = ?15 " OBJ_ROW,
	[ST_DROP] = "DELETE FROM objects WHERE rowid = ?16 AND deleted = 1",
	[ST_META] = "UPDATE meta SET seq = ?1, hlc = ?2 WHERE id = 1",
	[ST_FLOOR] = "UPDATE meta SET seq = max(seq, ?1) WHERE id = 1",
};

#define OBJ_TABLE                                                                              \
	" (resource TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"                       \
	" uid TEXT NOT NULL, rv INTEGER NOT NULL,"                                              \
	" spec TEXT NOT NULL, spec_hlc INTEGER NOT NULL, spec_node TEXT NOT NULL,"              \
	" status TEXT, status_hlc INTEGER NOT NULL DEFAULT 0, status_node TEXT,"                \
	" deleted INTEGER NOT NULL DEFAULT 0,"                                                  \
	" born INTEGER NOT NULL DEFAULT 0, sticky TEXT,"                                        \
	" status_term INTEGER NOT NULL DEFAULT 0)"

/* born and sticky came with replication; older files get the columns on open, and lose the
 * PRIMARY KEY (resource, ns, name) index they were made with (db_migrate) */
static const char store_schema[] =
	"CREATE TABLE IF NOT EXISTS objects" OBJ_TABLE ";"
	"CREATE TABLE IF NOT EXISTS meta ("
	" id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hlc INTEGER NOT NULL);";

/* --- SQLite --- */

static int db_err(struct store *s, struct err *e)
{
	return err_set(e, EIO, 500, "InternalError", "store: %s", sqlite3_errmsg(s->db));
}

static int db_step_done(sqlite3_stmt *st)
{
	int r = sqlite3_step(st);

	sqlite3_reset(st);
	return r == SQLITE_DONE ? 0 : -EIO;
}

static void bind_text(struct store *s, int op, int i, const char *t, size_t len)
{
	sqlite3_stmt *st = s->st[op];

	if (i > s->nparams[op])
		return;
	if (t)
		sqlite3_bind_text(st, i, t, (int)len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_int(struct store *s, int op, int i, uint64_t v)
{
	if (i <= s->nparams[op])
		sqlite3_bind_int64(s->st[op], i, (sqlite3_int64)v);
}

static void bind_row(struct store *s, int op, const struct row *w)
{
	bind_text(s, op, 1, w->resource, strlen(w->resource));
	bind_text(s, op, 2, w->ns, strlen(w->ns));
	bind_text(s, op, 3, w->name, strlen(w->name));
	bind_text(s, op, 4, w->uid, w->uid ? strlen(w->uid) : 0);
	bind_int(s, op, 5, w->rv);
	bind_text(s, op, 6, w->spec, w->spec_len);
	bind_int(s, op, 7, w->spec_hlc);
	bind_text(s, op, 8, w->spec_node, w->spec_node ? strlen(w->spec_node) : 0);
	bind_text(s, op, 9, w->status, w->status_len);
	bind_int(s, op, 10, w->status_hlc);
	bind_text(s, op, 11, w->status_node, w->status_node ? strlen(w->status_node) : 0);
	bind_int(s, op, 12, w->deleted);
	bind_int(s, op, 13, w->born);
	bind_text(s, op, 14, w->sticky, w->sticky ? strlen(w->sticky) : 0);
	bind_int(s, op, 15, w->status_term);
	bind_int(s, op, 16, (uint64_t)w->rowid);
}

int db_begin(struct store *s)
{
	/* another write commits the merges held so far first: they are older, and the bulk's
	 * failure (rolled back, see store_merge_hold) is no reason to refuse this one */
	db_bulk_end(s);
	return db_step_done(s->st[ST_BEGIN]);
}

int db_bulk_end(struct store *s)
{
	if (!s->bulk)
		return 0;
	s->bulk = false;
	return db_commit(s);
}

int db_commit(struct store *s)
{
	int r = db_step_done(s->st[ST_COMMIT]);

	if (r < 0)
		db_step_done(s->st[ST_ROLLBACK]);
	return r;
}

/*
 * One commit, one transaction (or a statement inside store_merge's). The row carries the
 * commit's rv and HLC, so the sequence and the clock are recovered as the maxima over rows
 * (plus the meta row); whoever deletes rows (tombstone collection) raises meta first.
 */
/*
 * ST_PUT writes the whole row: an UPDATE of the entry's row, an INSERT for a fresh key, or an
 * INSERT with the entry's rowid when its row is not there (its insert was in a merge
 * transaction that rolled back while the index kept the key).
 */
int db_write(struct store *s, int op, const struct row *w, struct err *e)
{
	int r;

	if (s->fault && (r = s->fault(s->fault_data, w->resource, w->ns, w->name)) < 0)
		return err_set(e, r, 500, "InternalError", "store: %s", strerror(-r));
	if (op == ST_PUT && w->fresh)
		op = ST_INSERT;
	bind_row(s, op, w);

	if (!s->batch && db_begin(s) < 0)
		return db_err(s, e);
	r = db_step_done(s->st[op]);
	if (r == 0 && op == ST_PUT && sqlite3_changes(s->db) == 0) {
		op = ST_INSERT;
		bind_row(s, op, w);
		r = db_step_done(s->st[op]);
	}
	if (r == 0 && sqlite3_changes(s->db) != 1)
		r = -EIO;
	if (r < 0) {
		r = db_err(s, e);
		if (!s->batch)
			db_step_done(s->st[ST_ROLLBACK]);
		return r;
	}
	if (!s->batch && db_commit(s) < 0)
		return db_err(s, e);
	return 0;
}

void db_rollback(struct store *s)
{
	db_step_done(s->st[ST_ROLLBACK]);
}

int db_drop(struct store *s, int64_t rowid)
{
	bind_int(s, ST_DROP, 16, (uint64_t)rowid);
	return db_step_done(s->st[ST_DROP]);
}

int db_floor(struct store *s, uint64_t seq)
{
	bind_int(s, ST_FLOOR, 1, seq);
	return db_step_done(s->st[ST_FLOOR]);
}

/* --- open / close / load --- */

uint64_t store_wall(struct store *s)
{
	return s->clock ? s->clock(s->clock_data) : util_now_ms();
}

/*
 * A key's second row (only a bug could leave one: the index is the only thing keeping keys
 * unique): the later insert, the higher rowid, is the key's state; the earlier entry goes and
 * its row is deleted after the scan.
 */
struct load_dups {
	int64_t *v;
	size_t n;
};

static int load_forget(struct store *s, struct entry *e, struct load_dups *d)
{
	int64_t *v = reallocarray(d->v, d->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	d->v = v;
	d->v[d->n++] = e->row;
	e->res->dig[e->bucket] ^= e->dig;
	htab_del(s, e);
	if (e->obj) {
		res_remove(e->res, e);
		store_obj_unref(&e->obj->pub);
		s->live--;
	} else {
		free(e->tomb);
		s->tombstones--;
	}
	free(e);
	return 0;
}

static int store_load_row(struct store *s, sqlite3_stmt *q, struct load_dups *dups)
{
	const char *resource = (const char *)sqlite3_column_text(q, 0);
	const char *ns = (const char *)sqlite3_column_text(q, 1);
	const char *name = (const char *)sqlite3_column_text(q, 2);
	const char *uid = (const char *)sqlite3_column_text(q, 3);
	uint64_t rv = (uint64_t)sqlite3_column_int64(q, 4);
	const char *spec = (const char *)sqlite3_column_text(q, 5);
	size_t spec_len = (size_t)sqlite3_column_bytes(q, 5);
	uint64_t spec_hlc = (uint64_t)sqlite3_column_int64(q, 6);
	const char *spec_node = (const char *)sqlite3_column_text(q, 7);
	const char *status = (const char *)sqlite3_column_text(q, 8);
	size_t status_len = (size_t)sqlite3_column_bytes(q, 8);
	uint64_t status_hlc = (uint64_t)sqlite3_column_int64(q, 9);
	const char *status_node = (const char *)sqlite3_column_text(q, 10);
	bool deleted = sqlite3_column_int(q, 11) != 0;
	uint64_t born = (uint64_t)sqlite3_column_int64(q, 12);
	const char *sticky = (const char *)sqlite3_column_text(q, 13);
	uint64_t status_term = (uint64_t)sqlite3_column_int64(q, 14);
	int64_t rowid = sqlite3_column_int64(q, 15);
	_cleanup_json_ cJSON *spec_tree = NULL, *status_tree = NULL;
	_cleanup_(view_deletep) cJSON *view = NULL;
	struct spec_out sp = { 0 };
	struct obj_priv *o = NULL;
	struct tomb *t = NULL;
	struct entry *e;
	struct res *r;
	uint64_t h;
	int ret;

	if (!resource || !ns || !name || !uid || !spec)
		return -EBADMSG;
	if (rv > s->rv)
		s->rv = rv;
	if (spec_hlc > s->hlc.last)
		s->hlc.last = spec_hlc;
	if (status_hlc > s->hlc.last)
		s->hlc.last = status_hlc;
	r = res_get(s, resource);
	if (!r)
		return -ENOMEM;
	if (!deleted) {
		spec_tree = cJSON_ParseWithLength(spec, spec_len);
		if (status)
			status_tree = cJSON_ParseWithLength(status, status_len);
		if (!spec_tree || (status && !status_tree))
			return -EBADMSG;
		ret = spec_print(s, spec_tree, uid, &sp);
		view = sp.view;
		if (ret < 0)
			return ret;
		sp.l.status = status;
		sp.l.status_len = status_len;
		o = obj_new(&(struct obj_fields){
			.resource = resource,
			.ns = ns,
			.name = name,
			.uid = uid,
			.rv = rv,
			.spec_hlc = spec_hlc,
			.spec_node = spec_node,
			.status_hlc = status_hlc,
			.status_node = status_node,
			.status_term = status_term,
			.born = born,
			.sticky = sticky,
			.l = sp.l,
			.labels = sp.labels,
			.node_name = sp.node_name,
			.phase = phase_of(status_tree),
		});
		if (!o)
			return -ENOMEM;
		if (res_reserve(r) < 0) {
			store_obj_unref(&o->pub);
			return -ENOMEM;
		}
	} else {
		t = tomb_new(rv, born, spec_hlc, uid, spec_node);
		if (!t)
			return -ENOMEM;
	}
	h = key_hash(s, resource, ns, name);
	e = entry_find(s, r, ns, name, h);
	ret = e ? load_forget(s, e, dups) : 0;
	e = ret == 0 ? entry_new(r, ns, name, h) : NULL;
	if (!e) {
		if (o)
			store_obj_unref(&o->pub);
		free(t);
		return -ENOMEM;
	}
	e->obj = o;
	e->tomb = t;
	e->row = rowid;
	if (rowid >= s->next_row)
		s->next_row = rowid + 1;
	key_digest_update(e);
	htab_add(s, e);
	if (o) {
		res_append(r, e); /* sorted at the end of the load */
		s->live++;
	} else {
		s->tombstones++;
	}
	return 0;
}

/* Delete the rows load_forget() left, above the sequence they may hold the maximum of. */
static int load_drop_dups(struct store *s, const struct load_dups *d)
{
	sqlite3_stmt *q = NULL;
	int r = 0;

	if (!d->n)
		return 0;
	if (db_begin(s) < 0 || db_floor(s, s->rv) < 0 ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM objects WHERE rowid = ?1", -1, &q, NULL) !=
		    SQLITE_OK) {
		db_rollback(s);
		return -EIO;
	}
	for (size_t i = 0; r == 0 && i < d->n; i++) {
		sqlite3_bind_int64(q, 1, d->v[i]);
		r = db_step_done(q);
	}
	sqlite3_finalize(q);
	if (r < 0) {
		db_rollback(s);
		return r;
	}
	return db_commit(s);
}

int store_load(struct store *s)
{
	struct load_dups dups = { 0 };
	sqlite3_stmt *q = NULL;
	int r;

	s->next_row = 1;
	r = sqlite3_prepare_v2(s->db, "SELECT seq, hlc FROM meta WHERE id = 1", -1, &q, NULL);
	if (r != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(q) == SQLITE_ROW) {
		s->rv = (uint64_t)sqlite3_column_int64(q, 0);
		s->hlc.last = (uint64_t)sqlite3_column_int64(q, 1);
	}
	sqlite3_finalize(q);

	/* in rowid order (a table scan); each resource's keys are sorted once at the end */
	r = sqlite3_prepare_v2(s->db, "SELECT " OBJ_COLS ", rowid FROM objects ORDER BY rowid", -1,
			       &q, NULL);
	if (r != SQLITE_OK)
		return -EIO;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		r = store_load_row(s, q, &dups);
		if (r < 0)
			break;
	}
	sqlite3_finalize(q);
	for (size_t i = 0; i < s->nres; i++)
		res_settle(s->res[i]);
	if (r == SQLITE_DONE)
		r = load_drop_dups(s, &dups);
	else if (r >= 0)
		r = -EIO;
	free(dups.v);
	return r;
}

static bool db_has_column(struct store *s, const char *table, const char *col)
{
	sqlite3_stmt *q = NULL;
	bool found = false;

	if (sqlite3_prepare_v2(s->db, "SELECT name FROM pragma_table_info(?1)", -1, &q, NULL) !=
	    SQLITE_OK)
		return false;
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	while (!found && sqlite3_step(q) == SQLITE_ROW)
		found = streq((const char *)sqlite3_column_text(q, 0), col);
	sqlite3_finalize(q);
	return found;
}

/*
 * Files from before 2026-12-03 have PRIMARY KEY (resource, ns, name), an index every write
 * had to keep as well as the table: the rows move to a table without it, in one transaction
 * (a kill before its commit leaves the old table as it was). Rowids are kept.
 */
static int db_unkey(struct store *s)
{
	sqlite3_stmt *q = NULL;
	bool keyed = false;

	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM pragma_index_list('objects')", -1, &q,
			       NULL) != SQLITE_OK)
		return -EIO;
	keyed = sqlite3_step(q) == SQLITE_ROW;
	sqlite3_finalize(q);
	if (!keyed)
		return 0;
	if (sqlite3_exec(s->db,
			 "BEGIN IMMEDIATE;"
			 "CREATE TABLE objects_unkeyed" OBJ_TABLE ";"
			 "INSERT INTO objects_unkeyed(rowid, " OBJ_COLS ")"
			 " SELECT rowid, " OBJ_COLS " FROM objects;"
			 "DROP TABLE objects;"
			 "ALTER TABLE objects_unkeyed RENAME TO objects;"
			 "COMMIT;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -EIO;
	}
	/* The copy leaves the old table's pages free, as many as the table has again, and only
	 * growth would reuse them: the file would stay twice its size. One VACUUM gives them back
	 * (100,000 pods: ~1.1 s after the ~1.8 s copy, docs/benchmarks.md), the WAL it fills is
	 * truncated after. Failing (no room for its copy) leaves the file as it is, migrated.
	 * VACUUM may renumber the rows (no INTEGER PRIMARY KEY), in their order: nothing has
	 * loaded a rowid yet. */
	(void)sqlite3_exec(s->db, "VACUUM; PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL);
	return 0;
}

/* Files from before replication lack born/sticky; a new file's sequence starts at its base. */
static int db_migrate(struct store *s)
{
	sqlite3_stmt *q = NULL;
	int r;

	if (!db_has_column(s, "objects", "born") &&
	    sqlite3_exec(s->db,
			 "ALTER TABLE objects ADD COLUMN born INTEGER NOT NULL DEFAULT 0;"
			 "ALTER TABLE objects ADD COLUMN sticky TEXT;",
			 NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	/* the status register's ownership term came with controller hand-over */
	if (!db_has_column(s, "objects", "status_term") &&
	    sqlite3_exec(s->db,
			 "ALTER TABLE objects ADD COLUMN status_term INTEGER NOT NULL DEFAULT 0;",
			 NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	r = db_unkey(s);
	if (r < 0)
		return r;
	if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO meta(id, seq, hlc) VALUES (1, ?1, 0)",
			       -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)s->seq_base);
	r = db_step_done(q);
	sqlite3_finalize(q);
	return r;
}

int db_open(struct store *s, const char *path)
{
	int r;

	r = sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (r != SQLITE_OK) {
		r = r == SQLITE_CANTOPEN ? -ENOENT : -EIO;
		return r;
	}
	/* WAL + synchronous=NORMAL: a commit survives a process kill; a power cut may lose the
	 * last commits but never corrupts the file. Exclusive locking: one daemon per state dir,
	 * and no lock syscalls per transaction. Checkpoints (each with fsyncs) every 32 MiB of
	 * WAL rather than every 4 MiB. The 8 MiB page cache was sized for the (resource, ns,
	 * name) index of 100,000 keys that files had until 2026-12-03 (db_unkey); a write now
	 * reads the table's B-tree pages of its rowid only. */
	r = sqlite3_exec(s->db,
			 "PRAGMA locking_mode = EXCLUSIVE; PRAGMA busy_timeout = 200;"
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
			 "PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 8192;",
			 NULL, NULL, NULL);
	if (r == SQLITE_OK)
		r = sqlite3_exec(s->db, store_schema, NULL, NULL, NULL);
	if (r != SQLITE_OK) {
		/* BUSY: another process has this state dir open */
		r = r == SQLITE_BUSY ? -EBUSY : -EIO;
		return r;
	}
	r = db_migrate(s);
	if (r < 0)
		return r;
	for (int i = 0; i < ST_MAX; i++) {
		r = sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL);
		if (r != SQLITE_OK) {
			r = -EIO;
			return r;
		}
		s->nparams[i] = sqlite3_bind_parameter_count(s->st[i]);
	}
	return 0;
}

/* The meta row keeps the sequence and the clock even when no row carries them. */
void db_close(struct store *s)
{
	db_bulk_end(s);
	if (s->st[ST_META]) {
		bind_int(s, ST_META, 1, s->rv);
		bind_int(s, ST_META, 2, s->hlc.last);
		db_step_done(s->st[ST_META]);
	}
	for (int i = 0; i < ST_MAX; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
}
