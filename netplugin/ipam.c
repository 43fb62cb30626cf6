// SPDX-License-Identifier: Apache-2.0
/*
 * IPAM: pure range logic plus a SQLite lease store.
 *
 * Why SQLite rather than one file per lease (host-local): allocation is a read-modify-write
 * (find a free address, advance the round-robin cursor, record the lease) that several
 * shoal-cni processes and the daemon may run at once. One `BEGIN IMMEDIATE` transaction makes
 * that atomic and crash-safe without a hand-made lock file, the UNIQUE constraints make a
 * double lease impossible even if the logic had a bug, and lookup by owner is an index probe
 * instead of a directory scan.
 */
#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

#include "lib/util.h"
#include "netplugin/ipam.h"

#define IPAM_BUSY_MS 10000

int ipam_addr_parse(const char *s, uint32_t *ret)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ret = ntohl(a.s_addr);
	return 0;
}

void ipam_addr_format(uint32_t ip, char buf[static 16])
{
	struct in_addr a = {.s_addr = htonl(ip)};

	inet_ntop(AF_INET, &a, buf, 16);
}

int ipam_range_parse(const char *cidr, const char *range_start, const char *range_end,
		     struct ipam_range *ret, struct err *e)
{
	char buf[32];
	char *slash, *end;
	uint32_t addr, mask, bcast;
	long prefix;

	if (strempty(cidr) || strlen(cidr) >= sizeof(buf))
		return err_set(e, EINVAL, 400, "Invalid", "subnet: missing or too long");
	snprintf(buf, sizeof(buf), "%s", cidr);
	slash = strchr(buf, '/');
	if (!slash)
		return err_set(e, EINVAL, 400, "Invalid", "subnet %s: expected ADDRESS/PREFIX",
			       cidr);
	*slash = 0;
	errno = 0;
	prefix = strtol(slash + 1, &end, 10);
	if (errno || *end || end == slash + 1)
		return err_set(e, EINVAL, 400, "Invalid", "subnet %s: bad prefix length", cidr);
	if (prefix < 8 || prefix > 30)
		return err_set(e, EINVAL, 400, "Invalid",
			       "subnet %s: prefix length must be between 8 and 30", cidr);
	if (ipam_addr_parse(buf, &addr) < 0)
		return err_set(e, EINVAL, 400, "Invalid", "subnet %s: bad IPv4 address", cidr);
	mask = ~0u << (32 - prefix);
	if (addr & ~mask)
		return err_set(e, EINVAL, 400, "Invalid",
			       "subnet %s: host bits set (network address is not aligned)", cidr);
	bcast = addr | ~mask;

	*ret = (struct ipam_range){
	    .network = addr,
	    .prefix = (int)prefix,
	    .gateway = addr + 1,
	    .first = addr + 2,
	    .last = bcast - 1,
	};
	if (!strempty(range_start)) {
		uint32_t s;
		if (ipam_addr_parse(range_start, &s) < 0)
			return err_set(e, EINVAL, 400, "Invalid", "rangeStart %s: bad address",
				       range_start);
		if (s < ret->first || s > ret->last)
			return err_set(e, EINVAL, 400, "Invalid",
				       "rangeStart %s: outside the allocatable part of %s",
				       range_start, cidr);
		ret->first = s;
	}
	if (!strempty(range_end)) {
		uint32_t s;
		if (ipam_addr_parse(range_end, &s) < 0)
			return err_set(e, EINVAL, 400, "Invalid", "rangeEnd %s: bad address",
				       range_end);
		if (s < ret->first || s > ret->last)
			return err_set(e, EINVAL, 400, "Invalid",
				       "rangeEnd %s: outside the allocatable part of %s or before "
				       "rangeStart",
				       range_end, cidr);
		ret->last = s;
	}
	return 0;
}

bool ipam_range_contains(const struct ipam_range *r, uint32_t ip)
{
	return ip >= r->first && ip <= r->last;
}

uint32_t ipam_range_size(const struct ipam_range *r)
{
	return r->last - r->first + 1;
}

int ipam_range_next(const struct ipam_range *r, uint32_t last,
		    bool (*used)(uint32_t ip, void *userdata), void *userdata, uint32_t *ret)
{
	uint32_t n = ipam_range_size(r);
	uint32_t ip = ipam_range_contains(r, last) ? last : r->last;

	for (uint32_t i = 0; i < n; i++) {
		ip = ip >= r->last ? r->first : ip + 1;
		if (!used(ip, userdata)) {
			*ret = ip;
			return 0;
		}
	}
	return -ENOSPC;
}

/* --- SQLite lease store --- */

struct ipam {
	sqlite3 *db;
	struct ipam_range range;
	char range_key[64]; /* cursor key: changes when the range changes */
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS leases ("
    " ip INTEGER PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " ifname TEXT NOT NULL,"
    " netns TEXT NOT NULL DEFAULT '',"
    " host_veth TEXT NOT NULL DEFAULT '',"
    " netns_owned INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(owner, ifname));"
    "CREATE TABLE IF NOT EXISTS cursor (range TEXT PRIMARY KEY, last INTEGER NOT NULL);";

static int db_err(struct ipam *ipam, struct err *e, int rc, const char *what)
{
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return err_set(e, EBUSY, 503, "ServiceUnavailable",
			       "IPAM database busy during %s; try again", what);
	return err_set(e, EIO, 500, "InternalError", "IPAM database error during %s: %s", what,
		       ipam->db ? sqlite3_errmsg(ipam->db) : sqlite3_errstr(rc));
}

int ipam_open(const char *dir, const struct ipam_range *r, struct ipam **ret, struct err *e)
{
	_cleanup_free_ char *path = NULL;
	struct ipam *ipam;
	char a[16];
	int rc;

	rc = util_mkdir_p(dir, 0700);
	if (rc < 0)
		return err_set(e, -rc, 500, "InternalError", "IPAM: cannot create %s: %s", dir,
			       strerror(-rc));
	if (asprintf(&path, "%s/ipam.db", dir) < 0)
		return -ENOMEM;
	ipam = calloc(1, sizeof(*ipam));
	if (!ipam)
		return -ENOMEM;
	ipam->range = *r;
	ipam_addr_format(r->network, a);
	snprintf(ipam->range_key, sizeof(ipam->range_key), "%s/%d:%u-%u", a, r->prefix, r->first,
		 r->last);
	rc = sqlite3_open_v2(path, &ipam->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			     NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(ipam->db, IPAM_BUSY_MS);
		/*
		 * Several CNI ADDs can open a new database at once. Switching it to WAL and
		 * creating the tables need locks SQLite will not wait for through the busy
		 * handler (it would risk a deadlock), so SQLITE_BUSY comes back at once: retry
		 * for as long as the busy timeout, with a little jitter.
		 */
		for (int tries = 0; tries < IPAM_BUSY_MS / 20; tries++) {
			rc = sqlite3_exec(ipam->db, schema, NULL, NULL, NULL);
			if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
				break;
			usleep(10000 + (unsigned)(tries * 7919) % 10000);
		}
	}
	if (rc != SQLITE_OK) {
		int ret_err = db_err(ipam, e, rc, "open");
		ipam_close(ipam);
		return ret_err;
	}
	*ret = ipam;
	return 0;
}

struct ipam *ipam_close(struct ipam *ipam)
{
	if (!ipam)
		return NULL;
	sqlite3_close(ipam->db);
	free(ipam);
	return NULL;
}

static void stmt_finalizep(sqlite3_stmt **s)
{
	if (*s)
		sqlite3_finalize(*s);
}
#define _cleanup_stmt_ _cleanup_(stmt_finalizep)

static void copy_text(char *dst, size_t len, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(dst, len, "%s", t ? (const char *)t : "");
}

#define LEASE_COLS "ip, owner, ifname, netns, host_veth, netns_owned, created"

static void lease_from_row(sqlite3_stmt *s, struct ipam_lease *l)
{
	memset(l, 0, sizeof(*l));
	l->ip = (uint32_t)sqlite3_column_int64(s, 0);
	copy_text(l->owner, sizeof(l->owner), s, 1);
	copy_text(l->ifname, sizeof(l->ifname), s, 2);
	copy_text(l->netns, sizeof(l->netns), s, 3);
	copy_text(l->host_veth, sizeof(l->host_veth), s, 4);
	l->netns_owned = sqlite3_column_int(s, 5) != 0;
	l->created = sqlite3_column_int64(s, 6);
}

static int lookup_locked(struct ipam *ipam, const char *owner, const char *ifname,
			 struct ipam_lease *ret, struct err *e)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc;

	rc = sqlite3_prepare_v2(ipam->db,
				"SELECT " LEASE_COLS " FROM leases WHERE owner = ? AND ifname = ?",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_err(ipam, e, rc, "lookup");
	sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, ifname, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_err(ipam, e, rc, "lookup");
	if (ret)
		lease_from_row(s, ret);
	return 0;
}

int ipam_lookup(struct ipam *ipam, const char *owner, const char *ifname, struct ipam_lease *ret,
		struct err *e)
{
	int r = lookup_locked(ipam, owner, ifname, ret, e);

	if (r == -ENOENT)
		return err_set(e, ENOENT, 404, "NotFound", "no IP lease for %s/%s", owner, ifname);
	return r;
}

struct used_ctx {
	sqlite3_stmt *s;
	int rc;
};

static bool ip_used(uint32_t ip, void *userdata)
{
	struct used_ctx *u = userdata;
	int rc;

	sqlite3_reset(u->s);
	sqlite3_bind_int64(u->s, 1, ip);
	rc = sqlite3_step(u->s);
	if (rc == SQLITE_ROW)
		return true;
	if (rc != SQLITE_DONE) {
		u->rc = rc;
		return true; /* treat as used so we never hand out an unverified address */
	}
	return false;
}

static int exec(struct ipam *ipam, const char *sql)
{
	return sqlite3_exec(ipam->db, sql, NULL, NULL, NULL);
}

static int allocate_locked(struct ipam *ipam, struct ipam_lease *lease, int64_t now, struct err *e)
{
	_cleanup_stmt_ sqlite3_stmt *cur = NULL, *used = NULL, *ins = NULL, *upd = NULL;
	struct used_ctx u = {0};
	uint32_t last = 0, ip;
	int rc, r;

	r = lookup_locked(ipam, lease->owner, lease->ifname, lease, e);
	if (r == 0)
		return 1;
	if (r != -ENOENT)
		return r;

	rc =
	    sqlite3_prepare_v2(ipam->db, "SELECT last FROM cursor WHERE range = ?", -1, &cur, NULL);
	if (rc != SQLITE_OK)
		return db_err(ipam, e, rc, "allocate");
	sqlite3_bind_text(cur, 1, ipam->range_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(cur);
	if (rc == SQLITE_ROW)
		last = (uint32_t)sqlite3_column_int64(cur, 0);
	else if (rc != SQLITE_DONE)
		return db_err(ipam, e, rc, "allocate");

	rc = sqlite3_prepare_v2(ipam->db, "SELECT 1 FROM leases WHERE ip = ?", -1, &used, NULL);
	if (rc != SQLITE_OK)
		return db_err(ipam, e, rc, "allocate");
	u.s = used;
	r = ipam_range_next(&ipam->range, last, ip_used, &u, &ip);
	if (u.rc)
		return db_err(ipam, e, u.rc, "allocate");
	if (r == -ENOSPC) {
		char a[16];
		ipam_addr_format(ipam->range.network, a);
		return err_set(e, ENOSPC, 503, "ServiceUnavailable",
			       "no free address left in %s/%d (%u in use)", a, ipam->range.prefix,
			       ipam_range_size(&ipam->range));
	}

	rc = sqlite3_prepare_v2(ipam->db,
				"INSERT INTO leases (" LEASE_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)",
				-1, &ins, NULL);
	if (rc != SQLITE_OK)
		return db_err(ipam, e, rc, "allocate");
	sqlite3_bind_int64(ins, 1, ip);
	sqlite3_bind_text(ins, 2, lease->owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 3, lease->ifname, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 4, lease->netns, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 5, lease->host_veth, -1, SQLITE_STATIC);
	sqlite3_bind_int(ins, 6, lease->netns_owned);
	sqlite3_bind_int64(ins, 7, now);
	rc = sqlite3_step(ins);
	if (rc != SQLITE_DONE)
		return db_err(ipam, e, rc, "allocate");

	rc = sqlite3_prepare_v2(
	    ipam->db, "INSERT OR REPLACE INTO cursor (range, last) VALUES (?, ?)", -1, &upd, NULL);
	if (rc != SQLITE_OK)
		return db_err(ipam, e, rc, "allocate");
	sqlite3_bind_text(upd, 1, ipam->range_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(upd, 2, ip);
	rc = sqlite3_step(upd);
	if (rc != SQLITE_DONE)
		return db_err(ipam, e, rc, "allocate");
	lease->ip = ip;
	lease->created = now;
	return 0;
}

int ipam_allocate(struct ipam *ipam, struct ipam_lease *lease, int64_t now, struct err *e)
{
	int rc, r;

	if (strempty(lease->owner) || strempty(lease->ifname))
		return err_set(e, EINVAL, 400, "Invalid", "IPAM: owner and ifname are required");
	/* IMMEDIATE takes the write lock up front: two allocators never read the same cursor. */
	rc = exec(ipam, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return db_err(ipam, e, rc, "allocate");
	r = allocate_locked(ipam, lease, now, e);
	if (r < 0) {
		exec(ipam, "ROLLBACK");
		return r;
	}
	rc = exec(ipam, "COMMIT");
	if (rc != SQLITE_OK) {
		exec(ipam, "ROLLBACK");
		return db_err(ipam, e, rc, "allocate commit");
	}
	return r;
}

int ipam_release(struct ipam *ipam, const char *owner, const char *ifname, struct err *e)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc;

	rc = sqlite3_prepare_v2(ipam->db, "DELETE FROM leases WHERE owner = ? AND ifname = ?", -1,
				&s, NULL);
	if (rc != SQLITE_OK)
		return db_err(ipam, e, rc, "release");
	sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, ifname, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		return db_err(ipam, e, rc, "release");
	return sqlite3_changes(ipam->db) > 0 ? 0 : -ENOENT;
}

int ipam_list(struct ipam *ipam, struct ipam_lease **ret, size_t *n, struct err *e)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	_cleanup_free_ struct ipam_lease *v = NULL;
	size_t len = 0, cap = 0;
	int rc;

	rc = sqlite3_prepare_v2(ipam->db, "SELECT " LEASE_COLS " FROM leases ORDER BY ip", -1, &s,
				NULL);
	if (rc != SQLITE_OK)
		return db_err(ipam, e, rc, "list");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			struct ipam_lease *nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				return -ENOMEM;
			v = nv;
		}
		lease_from_row(s, &v[len++]);
	}
	if (rc != SQLITE_DONE)
		return db_err(ipam, e, rc, "list");
	*ret = TAKE_PTR(v);
	*n = len;
	return 0;
}
