// SPDX-License-Identifier: Apache-2.0
/* Image store: index, layer unpacking, imports. See image.h. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <openssl/evp.h>

#include "daemon/image-internal.h"
#include "lib/macro.h"
#include "lib/util.h"

#define INDEX_MAX (64u << 20)
#define SMALL_BLOB_MAX (8u << 20)

static void archive_readp(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
static void archive_writep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

int image_store_open(const char *state_dir, struct image_store **ret)
{
	_cleanup_free_ struct image_store *s = calloc(1, sizeof(*s));
	_cleanup_free_ char *p = NULL;
	const char *sub[] = { "blobs/sha256", "layers", "tmp" };
	int r;

	if (!s)
		return -ENOMEM;
	s->lock_fd = -1;
	if (asprintf(&s->dir, "%s/images", state_dir) < 0) {
		s->dir = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
		free(p);
		if (asprintf(&p, "%s/%s", s->dir, sub[i]) < 0) {
			p = NULL;
			free(s->dir);
			return -ENOMEM;
		}
		if ((r = util_mkdir_p(p, 0700)) < 0) {
			free(s->dir);
			return r;
		}
	}
	free(p);
	if (asprintf(&p, "%s/.lock", s->dir) < 0) {
		p = NULL;
		free(s->dir);
		return -ENOMEM;
	}
	s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		r = -errno;
		free(s->dir);
		return r;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

struct image_store *image_store_free(struct image_store *s)
{
	if (!s)
		return NULL;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->dir);
	free(s);
	return NULL;
}

int image_lock(struct image_store *s, int how)
{
	while (flock(s->lock_fd, how) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

void image_unlock(struct image_store *s)
{
	flock(s->lock_fd, LOCK_UN);
}

/* ---- hashing ---- */

static void hex_digest(const unsigned char *md, char out[IMAGE_DIGEST_LEN + 1])
{
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

void image_sha256_buf(const void *buf, size_t len, char out[IMAGE_DIGEST_LEN + 1])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL);
	hex_digest(md, out);
}

int image_sha256_file(const char *path, char out[IMAGE_DIGEST_LEN + 1])
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	EVP_MD_CTX *ctx;
	unsigned char md[32], buf[65536];
	unsigned int n = 0;
	int r = 0;

	if (fd < 0)
		return -errno;
	if (!(ctx = EVP_MD_CTX_new()))
		return -ENOMEM;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (k == 0)
			break;
		EVP_DigestUpdate(ctx, buf, k);
	}
	EVP_DigestFinal_ex(ctx, md, &n);
	EVP_MD_CTX_free(ctx);
	if (r == 0)
		hex_digest(md, out);
	return r;
}

/* ---- files ---- */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return (flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT ? -1 : 0;
}

int image_rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 ? -errno : 0;
}

int image_tmpdir(struct image_store *s, char **ret)
{
	char *p;

	if (asprintf(&p, "%s/tmp/work-XXXXXX", s->dir) < 0)
		return -ENOMEM;
	if (!mkdtemp(p)) {
		int r = -errno;
		free(p);
		return r;
	}
	*ret = p;
	return 0;
}

int image_blob_put(struct image_store *s, const char *digest, const void *buf, size_t len)
{
	_cleanup_free_ char *p = NULL;

	if (!image_digest_valid(digest))
		return -EINVAL;
	if (asprintf(&p, "%s/blobs/sha256/%s", s->dir, digest + 7) < 0)
		return -ENOMEM;
	return util_write_file(p, buf, len, 0600);
}

int image_store_layer_path(struct image_store *s, const char *digest, char **ret)
{
	if (!image_digest_valid(digest))
		return -EINVAL;
	return asprintf(ret, "%s/layers/%s", s->dir, digest + 7) < 0 ? -ENOMEM : 0;
}

/* ---- layers ---- */

/* Entry names are relative to the layer root: strip "./" and "/". */
static const char *entry_rel(const char *name)
{
	while (name[0] == '/' || (name[0] == '.' && name[1] == '/'))
		name += name[0] == '/' ? 1 : 2;
	return name;
}

/*
 * Convert OCI whiteouts for overlayfs: ".wh.NAME" becomes a 0:0 character device NAME and
 * ".wh..wh..opq" marks its directory opaque (trusted.overlay.opaque=y).
 */
static int whiteout(const char *root, const char *rel, struct err *e)
{
	_cleanup_free_ char *dir = NULL, *target = NULL;
	const char *base = strrchr(rel, '/');
	size_t dlen = base ? (size_t)(base - rel) : 0;

	base = base ? base + 1 : rel;
	if (asprintf(&dir, "%s/%.*s", root, (int)dlen, rel) < 0)
		return -ENOMEM;
	if (util_mkdir_p(dir, 0755) < 0)
		return err_set(e, errno, 0, "ErrImagePull", "layer: cannot create %s", dir);
	if (streq(base, ".wh..wh..opq")) {
		if (setxattr(dir, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return err_set(e, errno, 0, "ErrImagePull",
				       "layer: cannot mark %s opaque: %m", dir);
		return 0;
	}
	if (asprintf(&target, "%s/%s", dir, base + 4) < 0)
		return -ENOMEM;
	image_rm_rf(target);
	if (mknod(target, S_IFCHR | 0000, makedev(0, 0)) < 0)
		return err_set(e, errno, 0, "ErrImagePull", "layer: whiteout %s: %m", target);
	return 0;
}

static int unpack_into(const char *blob, const char *root, struct err *e)
{
	_cleanup_(archive_readp) struct archive *in = archive_read_new();
	_cleanup_(archive_writep) struct archive *out = archive_write_disk_new();
	struct archive_entry *ent;
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
		    ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_UNLINK;
	int r;

	if (!in || !out)
		return -ENOMEM;
	archive_read_support_filter_all(in);
	archive_read_support_format_tar(in);
	archive_write_disk_set_options(out, flags);
	archive_write_disk_set_standard_lookup(out);
	if (archive_read_open_filename(in, blob, 65536) != ARCHIVE_OK)
		return err_set(e, EIO, 0, "ErrImagePull", "layer %s: %s", blob,
			       archive_error_string(in));
	while ((r = archive_read_next_header(in, &ent)) == ARCHIVE_OK) {
		const char *rel = entry_rel(archive_entry_pathname(ent));
		const char *base = strrchr(rel, '/');
		const char *hl = archive_entry_hardlink(ent);
		_cleanup_free_ char *full = NULL, *hfull = NULL;

		base = base ? base + 1 : rel;
		if (!*rel)
			continue; /* the root itself */
		if (strncmp(base, ".wh.", 4) == 0) {
			if ((r = whiteout(root, rel, e)) < 0)
				return r;
			continue;
		}
		if (asprintf(&full, "%s/%s", root, rel) < 0)
			return -ENOMEM;
		archive_entry_set_pathname(ent, full);
		if (hl) {
			if (asprintf(&hfull, "%s/%s", root, entry_rel(hl)) < 0)
				return -ENOMEM;
			archive_entry_set_hardlink(ent, hfull);
		}
		if (archive_write_header(out, ent) < ARCHIVE_WARN)
			return err_set(e, EIO, 0, "ErrImagePull", "layer: %s: %s", rel,
				       archive_error_string(out));
		if (archive_entry_size(ent) > 0) {
			const void *buf;
			size_t len;
			la_int64_t off;
			while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK)
				if (archive_write_data_block(out, buf, len, off) < ARCHIVE_WARN)
					return err_set(e, EIO, 0, "ErrImagePull", "layer: %s: %s",
						       rel, archive_error_string(out));
			if (r != ARCHIVE_EOF)
				return err_set(e, EIO, 0, "ErrImagePull", "layer: %s: %s", rel,
					       archive_error_string(in));
		}
		if (archive_write_finish_entry(out) < ARCHIVE_WARN)
			return err_set(e, EIO, 0, "ErrImagePull", "layer: %s: %s", rel,
				       archive_error_string(out));
	}
	if (r != ARCHIVE_EOF)
		return err_set(e, EIO, 0, "ErrImagePull", "layer %s: %s", blob,
			       archive_error_string(in));
	if (archive_write_close(out) != ARCHIVE_OK)
		return err_set(e, EIO, 0, "ErrImagePull", "layer: %s", archive_error_string(out));
	return 0;
}

int image_layer_unpack(struct image_store *s, const char *blob, const char *digest,
		       struct err *e)
{
	_cleanup_free_ char *dst = NULL, *tmp = NULL, *real = NULL;
	struct stat st;
	int r;

	if ((r = image_store_layer_path(s, digest, &dst)) < 0)
		return r;
	if (stat(dst, &st) == 0)
		return 0; /* unpacked once, shared */
	if (asprintf(&tmp, "%s/tmp/layer-%s-XXXXXX", s->dir, digest + 7) < 0)
		return -ENOMEM;
	if (!mkdtemp(tmp))
		return -errno;
	chmod(tmp, 0755);
	/* libarchive's symlink checks walk every component: give it a path without symlinks */
	if (!(real = realpath(tmp, NULL))) {
		r = -errno;
		goto fail;
	}
	if ((r = unpack_into(blob, real, e)) < 0)
		goto fail;
	if (rename(tmp, dst) < 0) {
		r = -errno;
		goto fail;
	}
	return 0;
fail:
	image_rm_rf(tmp);
	return r;
}

/* ---- index ---- */

static int index_load(struct image_store *s, cJSON **ret)
{
	_cleanup_free_ char *p = NULL, *buf = NULL;
	cJSON *idx;
	int r;

	if (asprintf(&p, "%s/index.json", s->dir) < 0)
		return -ENOMEM;
	r = util_read_file(p, INDEX_MAX, &buf, NULL);
	if (r == -ENOENT)
		idx = cJSON_Parse("{\"images\":[]}");
	else if (r < 0)
		return r;
	else
		idx = cJSON_Parse(buf);
	if (!idx || !cJSON_IsArray(cJSON_GetObjectItem(idx, "images"))) {
		cJSON_Delete(idx);
		return -EBADMSG;
	}
	*ret = idx;
	return 0;
}

static int index_save(struct image_store *s, const cJSON *idx)
{
	_cleanup_free_ char *p = NULL, *txt = cJSON_Print(idx);

	if (!txt || asprintf(&p, "%s/index.json", s->dir) < 0)
		return -ENOMEM;
	return util_write_file(p, txt, strlen(txt), 0600);
}

static cJSON *index_find(cJSON *idx, const char *name, int *ret_pos)
{
	cJSON *img;
	int i = 0;

	cJSON_ArrayForEach(img, cJSON_GetObjectItem(idx, "images")) {
		const cJSON *n = cJSON_GetObjectItem(img, "name");
		if (cJSON_IsString(n) && streq(n->valuestring, name)) {
			if (ret_pos)
				*ret_pos = i;
			return img;
		}
		i++;
	}
	return NULL;
}

int image_index_add(struct image_store *s, const char *name, const char *manifest_digest,
		    const cJSON *config, const cJSON *layers, double size)
{
	_cleanup_json_ cJSON *idx = NULL;
	cJSON *rec, *images;
	int r, pos;

	if ((r = index_load(s, &idx)) < 0)
		return r;
	images = cJSON_GetObjectItem(idx, "images");
	if (index_find(idx, name, &pos))
		cJSON_DeleteItemFromArray(images, pos);
	if (!(rec = cJSON_CreateObject()) || !cJSON_AddItemToArray(images, rec))
		return -ENOMEM;
	cJSON_AddStringToObject(rec, "name", name);
	cJSON_AddStringToObject(rec, "digest", manifest_digest);
	cJSON_AddItemToObject(rec, "config", cJSON_Duplicate(config, true));
	cJSON_AddItemToObject(rec, "layers", cJSON_Duplicate(layers, true));
	cJSON_AddNumberToObject(rec, "size", size);
	return index_save(s, idx);
}

/* The canonical name for ref, or "" and -EINVAL. */
static int canonical(const char *ref, char *buf, size_t len, struct image_ref *r, struct err *e)
{
	int k = image_ref_parse(ref, r, e);

	if (k < 0)
		return k;
	return image_ref_format(r, buf, len);
}

static cJSON *index_lookup(cJSON *idx, const char *ref, int *pos, struct err *e)
{
	struct image_ref r;
	char name[700];
	cJSON *img;
	int i = 0;

	if (canonical(ref, name, sizeof(name), &r, e) < 0)
		return NULL;
	if (!r.digest[0])
		return index_find(idx, name, pos);
	/* by digest: any record of that repository with that manifest digest */
	cJSON_ArrayForEach(img, cJSON_GetObjectItem(idx, "images")) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(img, "name"));
		const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(img, "digest"));
		struct image_ref ir;
		if (n && d && streq(d, r.digest) && image_ref_parse(n, &ir, NULL) == 0 &&
		    streq(ir.registry, r.registry) && streq(ir.repository, r.repository)) {
			if (pos)
				*pos = i;
			return img;
		}
		i++;
	}
	return NULL;
}

int image_store_get(struct image_store *s, const char *ref, cJSON **ret, struct err *e)
{
	_cleanup_json_ cJSON *idx = NULL;
	const cJSON *img;
	int r;

	if ((r = image_lock(s, LOCK_SH)) < 0)
		return r;
	r = index_load(s, &idx);
	image_unlock(s);
	if (r < 0)
		return err_set(e, -r, 500, "InternalError", "image index: %s", strerror(-r));
	img = index_lookup(idx, ref, NULL, e);
	if (!img) {
		if (e && e->reason[0])
			return -EINVAL;
		return err_set(e, ENOENT, 404, "NotFound", "image \"%s\" not present", ref);
	}
	return (*ret = cJSON_Duplicate(img, true)) ? 0 : -ENOMEM;
}

/* The index's images without their configs, read under a shared lock taken `how`. */
static int index_images(struct image_store *s, int how, cJSON **ret)
{
	_cleanup_json_ cJSON *idx = NULL;
	cJSON *img, *list;
	int r;

	if ((r = image_lock(s, how)) < 0)
		return r;
	r = index_load(s, &idx);
	image_unlock(s);
	if (r < 0)
		return r;
	list = cJSON_DetachItemFromObject(idx, "images");
	cJSON_ArrayForEach(img, list)
		cJSON_DeleteItemFromObject(img, "config");
	*ret = list;
	return 0;
}

int image_store_list(struct image_store *s, cJSON **ret)
{
	return index_images(s, LOCK_SH, ret);
}

int image_store_list_changed(struct image_store *s, uint64_t *stamp, cJSON **ret)
{
	_cleanup_free_ char *p = NULL;
	struct stat st;
	uint64_t now;
	int r;

	*ret = NULL;
	if (asprintf(&p, "%s/index.json", s->dir) < 0)
		return -ENOMEM;
	if (stat(p, &st) < 0) {
		if (errno != ENOENT)
			return -errno;
		now = 1;
	} else {
		/* index.json is replaced by rename on every change: a new inode, a new mtime */
		now = ((uint64_t)st.st_ino * 0x9e3779b97f4a7c15ULL) ^
		      ((uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec) ^
		      ((uint64_t)st.st_size << 40) ^ 2;
	}
	if (now == *stamp)
		return 0;
	if ((r = index_images(s, LOCK_SH | LOCK_NB, ret)) < 0)
		return r == -EWOULDBLOCK ? -EAGAIN : r;
	*stamp = now;
	return 1;
}

int image_store_remove(struct image_store *s, const char *ref, struct err *e)
{
	_cleanup_json_ cJSON *idx = NULL, *gone = NULL;
	const cJSON *layer, *img;
	int r, pos = -1;

	if ((r = image_lock(s, LOCK_EX)) < 0)
		return r;
	if ((r = index_load(s, &idx)) < 0)
		goto out;
	if (!index_lookup(idx, ref, &pos, e)) {
		r = e && e->reason[0] ? -EINVAL
				      : err_set(e, ENOENT, 404, "NotFound", "image \"%s\" not present",
						ref);
		goto out;
	}
	gone = cJSON_DetachItemFromArray(cJSON_GetObjectItem(idx, "images"), pos);
	if ((r = index_save(s, idx)) < 0)
		goto out;
	/* layer reference counts are the number of remaining records naming them */
	cJSON_ArrayForEach(layer, cJSON_GetObjectItem(gone, "layers")) {
		bool used = false;
		cJSON_ArrayForEach(img, cJSON_GetObjectItem(idx, "images")) {
			const cJSON *l;
			cJSON_ArrayForEach(l, cJSON_GetObjectItem(img, "layers"))
				if (cJSON_IsString(l) && streq(l->valuestring, layer->valuestring))
					used = true;
		}
		if (!used) {
			_cleanup_free_ char *p = NULL;
			if (image_store_layer_path(s, layer->valuestring, &p) == 0)
				image_rm_rf(p);
		}
	}
	/* manifest and config blobs of a digest no record uses any more */
	{
		const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(gone, "digest"));
		bool used = false;
		cJSON_ArrayForEach(img, cJSON_GetObjectItem(idx, "images"))
			if (d && streq(cJSON_GetStringValue(cJSON_GetObjectItem(img, "digest")), d))
				used = true;
		if (!used && d && image_digest_valid(d)) {
			_cleanup_free_ char *p = NULL;
			if (asprintf(&p, "%s/blobs/sha256/%s", s->dir, d + 7) >= 0)
				unlink(p);
		}
	}
	r = 0;
out:
	image_unlock(s);
	return r;
}

int image_store_lowerdir(struct image_store *s, const cJSON *image, char **ret)
{
	const cJSON *layers = cJSON_GetObjectItem(image, "layers");
	size_t cap = 1, len = 0;
	char *out;

	for (int i = 0; i < cJSON_GetArraySize(layers); i++)
		cap += strlen(s->dir) + 80;
	if (cJSON_GetArraySize(layers) == 0)
		return -EINVAL;
	if (!(out = calloc(1, cap)))
		return -ENOMEM;
	for (int i = cJSON_GetArraySize(layers) - 1; i >= 0; i--) {
		const char *d = cJSON_GetStringValue(cJSON_GetArrayItem(layers, i));
		if (!image_digest_valid(d)) {
			free(out);
			return -EINVAL;
		}
		len += snprintf(out + len, cap - len, "%s%s/layers/%s", len ? ":" : "", s->dir,
				d + 7);
	}
	*ret = out;
	return 0;
}

/* ---- import ---- */

static int read_json(const char *path, cJSON **ret)
{
	_cleanup_free_ char *buf = NULL;
	int r = util_read_file(path, SMALL_BLOB_MAX, &buf, NULL);

	if (r < 0)
		return r;
	*ret = cJSON_Parse(buf);
	return *ret ? 0 : -EBADMSG;
}

/* Read an OCI layout blob and check it against its descriptor digest. */
static int layout_blob(const char *dir, const char *digest, char **ret_path, char **ret_buf,
		       size_t *ret_len, struct err *e)
{
	_cleanup_free_ char *p = NULL;
	char got[IMAGE_DIGEST_LEN + 1];
	int r;

	if (!image_digest_valid(digest))
		return err_set(e, EINVAL, 0, "ErrImagePull", "unsupported or invalid digest \"%s\"",
			       digest ? digest : "");
	if (asprintf(&p, "%s/blobs/sha256/%s", dir, digest + 7) < 0)
		return -ENOMEM;
	if ((r = image_sha256_file(p, got)) < 0)
		return err_set(e, -r, 0, "ErrImagePull", "blob %s: %s", digest, strerror(-r));
	if (!streq(got, digest))
		return err_set(e, EBADMSG, 0, "ErrImagePull",
			       "blob %s: digest mismatch (content is %s)", digest, got);
	if (ret_buf && (r = util_read_file(p, SMALL_BLOB_MAX, ret_buf, ret_len)) < 0)
		return err_set(e, -r, 0, "ErrImagePull", "blob %s: %s", digest, strerror(-r));
	if (ret_path)
		*ret_path = TAKE_PTR(p);
	return 0;
}

const cJSON *image_index_pick_platform(const cJSON *index)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, cJSON_GetObjectItem(index, "manifests")) {
		const cJSON *pf = cJSON_GetObjectItem(m, "platform");
		const char *os = cJSON_GetStringValue(cJSON_GetObjectItem(pf, "os"));
		const char *arch = cJSON_GetStringValue(cJSON_GetObjectItem(pf, "architecture"));
		if (!pf || (os && arch && streq(os, "linux") && streq(arch, "amd64")))
			return m;
	}
	return NULL;
}

/* Import one manifest (by descriptor) from an OCI layout as `name`. Store lock held. */
static int import_oci_manifest(struct image_store *s, const char *dir, const char *digest,
			       const char *name, struct err *e)
{
	_cleanup_free_ char *mbuf = NULL, *cbuf = NULL;
	_cleanup_json_ cJSON *man = NULL, *cfg = NULL, *layers = cJSON_CreateArray();
	size_t mlen, clen;
	const char *mt, *cdig;
	const cJSON *l;
	double size = 0;
	int r;

	if (!layers)
		return -ENOMEM;
	if ((r = layout_blob(dir, digest, NULL, &mbuf, &mlen, e)) < 0)
		return r;
	if (!(man = cJSON_Parse(mbuf)))
		return err_set(e, EBADMSG, 0, "ErrImagePull", "manifest %s is not JSON", digest);
	mt = cJSON_GetStringValue(cJSON_GetObjectItem(man, "mediaType"));
	if (mt && (streq(mt, IMAGE_MT_OCI_INDEX) || streq(mt, IMAGE_MT_DOCKER_LIST))) {
		const cJSON *pick = image_index_pick_platform(man);
		if (!pick)
			return err_set(e, ENOENT, 0, "ErrImagePull",
				       "image index %s has no linux/amd64 manifest", digest);
		return import_oci_manifest(s, dir,
					   cJSON_GetStringValue(cJSON_GetObjectItem(pick, "digest")),
					   name, e);
	}
	cdig = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(man, "config"),
							"digest"));
	if ((r = layout_blob(dir, cdig, NULL, &cbuf, &clen, e)) < 0)
		return r;
	if (!(cfg = cJSON_Parse(cbuf)))
		return err_set(e, EBADMSG, 0, "ErrImagePull", "config %s is not JSON", cdig);
	cJSON_ArrayForEach(l, cJSON_GetObjectItem(man, "layers")) {
		const char *ld = cJSON_GetStringValue(cJSON_GetObjectItem(l, "digest"));
		_cleanup_free_ char *lp = NULL, *have = NULL;
		struct stat st;
		if (image_store_layer_path(s, ld, &have) == 0 && stat(have, &st) == 0) {
			/* already unpacked: the blob may even be absent from this layout */
		} else {
			if ((r = layout_blob(dir, ld, &lp, NULL, NULL, e)) < 0)
				return r;
			if ((r = image_layer_unpack(s, lp, ld, e)) < 0)
				return r;
		}
		size += cJSON_GetNumberValue(cJSON_GetObjectItem(l, "size"));
		cJSON_AddItemToArray(layers, cJSON_CreateString(ld));
	}
	if ((r = image_blob_put(s, digest, mbuf, mlen)) < 0 ||
	    (r = image_blob_put(s, cdig, cbuf, clen)) < 0)
		return r;
	return image_index_add(s, name, digest, cfg, layers, size);
}

/* Name for a layout entry: io.containerd.image.name, or name + ref.name tag, or name. */
static int layout_entry_name(const cJSON *desc, const char *name, char *buf, size_t len,
			     struct err *e)
{
	const cJSON *ann = cJSON_GetObjectItem(desc, "annotations");
	const char *full = cJSON_GetStringValue(cJSON_GetObjectItem(ann, "io.containerd.image.name"));
	const char *tag = cJSON_GetStringValue(
		cJSON_GetObjectItem(ann, "org.opencontainers.image.ref.name"));
	char tmp[700];
	struct image_ref r;

	if (name) {
		/* the caller's name wins; a bare tag in the layout completes it */
		bool has_tag = strrchr(name, ':') > strrchr(name, '/') ? true : false;
		if (!has_tag && tag && !strchr(tag, '/') && !strchr(tag, ':'))
			snprintf(tmp, sizeof(tmp), "%s:%s", name, tag);
		else
			snprintf(tmp, sizeof(tmp), "%s", name);
	} else if (full) {
		snprintf(tmp, sizeof(tmp), "%s", full);
	} else if (tag && (strchr(tag, '/') || strchr(tag, ':'))) {
		snprintf(tmp, sizeof(tmp), "%s", tag); /* some tools store a full reference */
	} else {
		return err_set(e, EINVAL, 422, "Invalid",
			       "the archive does not name its image%s%s: give a name",
			       tag ? " (tag " : "", tag ? ")" : "");
	}
	return canonical(tmp, buf, len, &r, e);
}

static int import_oci_layout(struct image_store *s, const char *dir, const char *name,
			     cJSON *names, struct err *e)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_json_ cJSON *index = NULL;
	const cJSON *desc;
	int r, n = 0;

	if (asprintf(&p, "%s/index.json", dir) < 0)
		return -ENOMEM;
	if ((r = read_json(p, &index)) < 0)
		return err_set(e, -r, 422, "Invalid", "OCI layout: cannot read index.json: %s",
			       strerror(-r));
	cJSON_ArrayForEach(desc, cJSON_GetObjectItem(index, "manifests")) {
		char full[700];
		const cJSON *pf = cJSON_GetObjectItem(desc, "platform");
		const char *os = cJSON_GetStringValue(cJSON_GetObjectItem(pf, "os"));
		const char *arch = cJSON_GetStringValue(cJSON_GetObjectItem(pf, "architecture"));
		if (pf && os && arch && (!streq(os, "linux") || !streq(arch, "amd64")))
			continue;
		if ((r = layout_entry_name(desc, name, full, sizeof(full), e)) < 0)
			return r;
		if ((r = import_oci_manifest(s, dir,
					     cJSON_GetStringValue(cJSON_GetObjectItem(desc, "digest")),
					     full, e)) < 0)
			return r;
		cJSON_AddItemToArray(names, cJSON_CreateString(full));
		n++;
	}
	if (n == 0)
		return err_set(e, ENOENT, 422, "Invalid", "OCI layout has no linux/amd64 image");
	return 0;
}

/* docker save: manifest.json [{Config, RepoTags, Layers}] with uncompressed layer tars. */
static int import_docker_save(struct image_store *s, const char *dir, const char *name,
			      cJSON *names, struct err *e)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_json_ cJSON *list = NULL;
	const cJSON *ent;
	int r;

	if (asprintf(&p, "%s/manifest.json", dir) < 0)
		return -ENOMEM;
	if ((r = read_json(p, &list)) < 0 || !cJSON_IsArray(list))
		return err_set(e, r < 0 ? -r : EBADMSG, 422, "Invalid",
			       "docker archive: bad manifest.json");
	cJSON_ArrayForEach(ent, list) {
		_cleanup_free_ char *cpath = NULL, *cbuf = NULL, *mtxt = NULL;
		_cleanup_json_ cJSON *cfg = NULL, *layers = cJSON_CreateArray(), *man = NULL;
		const char *cfile = cJSON_GetStringValue(cJSON_GetObjectItem(ent, "Config"));
		const cJSON *diff_ids, *l, *tags = cJSON_GetObjectItem(ent, "RepoTags");
		char cdig[IMAGE_DIGEST_LEN + 1], mdig[IMAGE_DIGEST_LEN + 1];
		cJSON *mlayers, *c;
		size_t clen;
		double size = 0;
		int i = 0;

		if (!cfile || strstr(cfile, "..") || !layers)
			return err_set(e, EINVAL, 422, "Invalid", "docker archive: bad entry");
		if (asprintf(&cpath, "%s/%s", dir, cfile) < 0)
			return -ENOMEM;
		if ((r = util_read_file(cpath, SMALL_BLOB_MAX, &cbuf, &clen)) < 0 ||
		    !(cfg = cJSON_Parse(cbuf)))
			return err_set(e, EBADMSG, 422, "Invalid", "docker archive: config %s",
				       cfile);
		image_sha256_buf(cbuf, clen, cdig);
		diff_ids = cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "rootfs"), "diff_ids");
		man = cJSON_CreateObject();
		cJSON_AddNumberToObject(man, "schemaVersion", 2);
		cJSON_AddStringToObject(man, "mediaType", IMAGE_MT_OCI_MANIFEST);
		c = cJSON_AddObjectToObject(man, "config");
		cJSON_AddStringToObject(c, "mediaType", "application/vnd.oci.image.config.v1+json");
		cJSON_AddStringToObject(c, "digest", cdig);
		cJSON_AddNumberToObject(c, "size", clen);
		mlayers = cJSON_AddArrayToObject(man, "layers");
		cJSON_ArrayForEach(l, cJSON_GetObjectItem(ent, "Layers")) {
			_cleanup_free_ char *lp = NULL;
			char ld[IMAGE_DIGEST_LEN + 1];
			const char *want = cJSON_GetStringValue(cJSON_GetArrayItem(diff_ids, i++));
			struct stat st;
			cJSON *d;
			if (!cJSON_IsString(l) || strstr(l->valuestring, ".."))
				return err_set(e, EINVAL, 422, "Invalid", "docker archive: bad layer");
			if (asprintf(&lp, "%s/%s", dir, l->valuestring) < 0)
				return -ENOMEM;
			if ((r = image_sha256_file(lp, ld)) < 0)
				return err_set(e, -r, 422, "Invalid", "docker archive: layer %s: %s",
					       l->valuestring, strerror(-r));
			if (!want || !streq(want, ld))
				return err_set(e, EBADMSG, 422, "Invalid",
					       "docker archive: layer %s digest %s does not match "
					       "the config's diff_id %s", l->valuestring, ld,
					       want ? want : "(none)");
			if ((r = image_layer_unpack(s, lp, ld, e)) < 0)
				return r;
			stat(lp, &st);
			size += st.st_size;
			cJSON_AddItemToArray(layers, cJSON_CreateString(ld));
			d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "mediaType",
						"application/vnd.oci.image.layer.v1.tar");
			cJSON_AddStringToObject(d, "digest", ld);
			cJSON_AddNumberToObject(d, "size", st.st_size);
			cJSON_AddItemToArray(mlayers, d);
		}
		if (!(mtxt = cJSON_PrintUnformatted(man)))
			return -ENOMEM;
		image_sha256_buf(mtxt, strlen(mtxt), mdig);
		if ((r = image_blob_put(s, mdig, mtxt, strlen(mtxt))) < 0 ||
		    (r = image_blob_put(s, cdig, cbuf, clen)) < 0)
			return r;
		if (cJSON_GetArraySize(tags) == 0 && !name)
			return err_set(e, EINVAL, 422, "Invalid",
				       "the archive does not name its image: give a name");
		for (int t = 0; t < (name ? 1 : cJSON_GetArraySize(tags)); t++) {
			const char *n = name ? name : cJSON_GetStringValue(cJSON_GetArrayItem(tags, t));
			struct image_ref ref;
			char full[700];
			if (!n || (r = canonical(n, full, sizeof(full), &ref, e)) < 0)
				return r < 0 ? r : -EINVAL;
			if ((r = image_index_add(s, full, mdig, cfg, layers, size)) < 0)
				return r;
			cJSON_AddItemToArray(names, cJSON_CreateString(full));
		}
	}
	return 0;
}

static int extract_archive(const char *path, const char *dst, struct err *e)
{
	_cleanup_(archive_readp) struct archive *in = archive_read_new();
	_cleanup_(archive_writep) struct archive *out = archive_write_disk_new();
	struct archive_entry *ent;
	int r;

	if (!in || !out)
		return -ENOMEM;
	archive_read_support_filter_all(in);
	archive_read_support_format_tar(in);
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						    ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	if (archive_read_open_filename(in, path, 65536) != ARCHIVE_OK)
		return err_set(e, EINVAL, 422, "Invalid", "%s: %s", path,
			       archive_error_string(in));
	while ((r = archive_read_next_header(in, &ent)) == ARCHIVE_OK) {
		_cleanup_free_ char *full = NULL;
		const char *rel = entry_rel(archive_entry_pathname(ent));
		mode_t t = archive_entry_filetype(ent);
		if (!*rel)
			continue;
		if (t != AE_IFREG && t != AE_IFDIR)
			continue; /* image archives hold only files and directories */
		if (asprintf(&full, "%s/%s", dst, rel) < 0)
			return -ENOMEM;
		archive_entry_set_pathname(ent, full);
		archive_entry_set_perm(ent, t == AE_IFDIR ? 0700 : 0600);
		if (archive_read_extract2(in, ent, out) < ARCHIVE_WARN)
			return err_set(e, EIO, 422, "Invalid", "%s: %s", path,
				       archive_error_string(in));
	}
	if (r != ARCHIVE_EOF)
		return err_set(e, EIO, 422, "Invalid", "%s: %s", path, archive_error_string(in));
	return 0;
}

int image_store_import(struct image_store *s, const char *path, const char *name,
		       cJSON **ret_names, struct err *e)
{
	_cleanup_free_ char *tmp = NULL, *real = NULL, *probe = NULL;
	_cleanup_json_ cJSON *names = cJSON_CreateArray();
	const char *dir = path;
	struct stat st;
	int r;

	if (!names)
		return -ENOMEM;
	if (stat(path, &st) < 0)
		return err_set(e, errno, 404, "NotFound", "%s: %m", path);
	if ((r = image_lock(s, LOCK_EX)) < 0)
		return r;
	if (!S_ISDIR(st.st_mode)) {
		if ((r = image_tmpdir(s, &tmp)) < 0)
			goto out;
		if (!(real = realpath(tmp, NULL))) {
			r = -errno;
			goto out;
		}
		if ((r = extract_archive(path, real, e)) < 0)
			goto out;
		dir = real;
	}
	if (asprintf(&probe, "%s/index.json", dir) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (access(probe, F_OK) == 0) {
		r = import_oci_layout(s, dir, name, names, e);
	} else {
		free(probe);
		if (asprintf(&probe, "%s/manifest.json", dir) < 0) {
			r = -ENOMEM;
			goto out;
		}
		if (access(probe, F_OK) == 0)
			r = import_docker_save(s, dir, name, names, e);
		else
			r = err_set(e, EINVAL, 422, "Invalid",
				    "%s is neither an OCI image layout nor a docker-save archive",
				    path);
	}
out:
	if (tmp)
		image_rm_rf(tmp);
	image_unlock(s);
	if (r >= 0 && ret_names)
		*ret_names = TAKE_PTR(names);
	return r;
}
