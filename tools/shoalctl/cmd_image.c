// SPDX-License-Identifier: Apache-2.0
/*
 * shoalctl image ls | import FILE... [--name NAME] | rm REF... | pull REF [--plain-http]:
 * the image store of the node the client talks to (/apis/shoal.io/v1/images). import sends
 * an OCI layout tar or a docker-save archive as the request body; a directory (an OCI
 * layout) is packed into a tar first (libarchive).
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/shoalctl/shoalctl.h"

#define IMAGES_PATH "/apis/shoal.io/v1/images"

static void human_size(double b, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "kB", "MB", "GB", "TB" };
	int u = 0;

	while (b >= 1000 && u < 4) {
		b /= 1000;
		u++;
	}
	snprintf(buf, len, u ? "%.1f%s" : "%.0f%s", b, unit[u]);
}

static int image_ls(struct ctl *c)
{
	_cleanup_json_ cJSON *l = NULL;
	struct err e = {};
	const cJSON *it;
	int r;

	r = ctl_request(c, "GET", IMAGES_PATH, NULL, NULL, NULL, &l, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	if (c->o.output == CTL_OUT_JSON) {
		ctl_print_json(l, stdout);
		return 0;
	}
	if (c->o.output == CTL_OUT_YAML)
		return ctl_print_yaml(l, stdout) < 0;
	printf("%-60s %-19s %s\n", "IMAGE", "DIGEST", "SIZE");
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(l, "items"))
	{
		const char *d = ctl_json_str(it, "digest");
		char sz[32];

		human_size(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "size")), sz, sizeof(sz));
		printf("%-60s %-19.19s %s\n", ctl_json_str(it, "name") ?: "",
		       d && !strncmp(d, "sha256:", 7) ? d : "", sz);
	}
	return 0;
}

/* Pack an OCI layout directory into an anonymous temporary tar. */
static int pack_dir(const char *dir, FILE **ret, struct err *e)
{
	struct archive *disk = archive_read_disk_new(), *w = archive_write_new();
	struct archive_entry *ent;
	FILE *f = tmpfile();
	int r = 0, ar;

	if (!disk || !w || !f) {
		r = -ENOMEM;
		goto out;
	}
	archive_read_disk_set_standard_lookup(disk);
	archive_write_set_format_pax_restricted(w);
	if (archive_write_open_FILE(w, f) != ARCHIVE_OK ||
	    archive_read_disk_open(disk, ".") != ARCHIVE_OK) {
		r = err_set(e, EIO, 0, "", "cannot pack %s: %s", dir, archive_error_string(w));
		goto out;
	}
	for (;;) {
		ent = archive_entry_new();
		ar = archive_read_next_header2(disk, ent);
		if (ar == ARCHIVE_EOF) {
			archive_entry_free(ent);
			break;
		}
		if (ar != ARCHIVE_OK) {
			r = err_set(e, EIO, 0, "", "cannot read %s: %s", dir,
				    archive_error_string(disk));
			archive_entry_free(ent);
			goto out;
		}
		archive_read_disk_descend(disk);
		if (archive_write_header(w, ent) != ARCHIVE_OK) {
			r = err_set(e, EIO, 0, "", "cannot pack %s: %s", dir,
				    archive_error_string(w));
			archive_entry_free(ent);
			goto out;
		}
		if (archive_entry_filetype(ent) == AE_IFREG) {
			int fd = open(archive_entry_sourcepath(ent), O_RDONLY | O_CLOEXEC);
			char buf[65536];
			ssize_t n;

			if (fd < 0) {
				r = err_set(e, errno, 0, "", "%s: %m", archive_entry_sourcepath(ent));
				archive_entry_free(ent);
				goto out;
			}
			while ((n = read(fd, buf, sizeof(buf))) > 0)
				archive_write_data(w, buf, (size_t)n);
			close(fd);
		}
		archive_entry_free(ent);
	}
	archive_write_close(w);
	fflush(f);
	rewind(f);
	*ret = f;
	f = NULL;
out:
	if (disk)
		archive_read_free(disk);
	if (w)
		archive_write_free(w);
	if (f)
		fclose(f);
	return r;
}

static int image_import(struct ctl *c, int argc, char **argv)
{
	_cleanup_free_ char *path = NULL, *nameq = NULL;
	struct ctl_http *h;
	struct err e = {};
	int r, failed = 0;

	if (argc < 1)
		return ctl_fail(&(struct err){ .message = "image import FILE..." }, -EINVAL);
	if (c->o.image_name && !(nameq = ctl_http_escape(c->o.image_name)))
		return 1;
	if (asprintf(&path, "%s%s%s", IMAGES_PATH, nameq ? "?name=" : "", nameq ? nameq : "") < 0)
		return 1;
	r = ctl_http(c, &h, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	for (int i = 0; i < argc; i++) {
		_cleanup_json_ cJSON *res = NULL;
		struct ctl_response resp = {};
		struct stat st;
		FILE *f = NULL;
		const cJSON *it;

		memset(&e, 0, sizeof(e));
		if (stat(argv[i], &st) < 0) {
			err_set(&e, errno, 0, "", "%s: %m", argv[i]);
			failed = ctl_fail(&e, -errno);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			r = chdir(argv[i]) < 0 ? -errno : pack_dir(argv[i], &f, &e);
			if (cwd >= 0) {
				(void)!fchdir(cwd);
				close(cwd);
			}
		} else {
			f = fopen(argv[i], "rb");
			r = f ? 0 : -errno;
			if (!f)
				err_set(&e, errno, 0, "", "%s: %m", argv[i]);
		}
		if (r < 0) {
			failed = ctl_fail(&e, r);
			continue;
		}
		fseeko(f, 0, SEEK_END);
		off_t size = ftello(f);
		rewind(f);
		r = ctl_http_upload(h, "POST", path, "application/x-tar", f, size, &resp, &e);
		fclose(f);
		if (r < 0) {
			failed = ctl_fail(&e, r);
			continue;
		}
		if (resp.status < 200 || resp.status >= 300) {
			r = ctl_status_to_err(resp.status, resp.body, &e);
			ctl_response_done(&resp);
			failed = ctl_fail(&e, r);
			continue;
		}
		res = cJSON_ParseWithLength(resp.body, resp.len);
		ctl_response_done(&resp);
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(res, "items"))
			printf("imported %s\n", ctl_json_str(it, "name") ?: "?");
	}
	return failed;
}

static int image_rm(struct ctl *c, int argc, char **argv)
{
	int failed = 0;

	if (argc < 1)
		return ctl_fail(&(struct err){ .message = "image rm REF..." }, -EINVAL);
	for (int i = 0; i < argc; i++) {
		_cleanup_free_ char *path = NULL, *q = ctl_http_escape(argv[i]);
		_cleanup_json_ cJSON *st = NULL;
		struct err e = {};
		int r;

		if (!q || asprintf(&path, "%s/%s", IMAGES_PATH, q) < 0)
			return 1;
		r = ctl_request(c, "DELETE", path, NULL, NULL, NULL, &st, &e);
		if (r < 0) {
			failed = ctl_fail(&e, r);
			continue;
		}
		printf("deleted %s\n", ctl_json_str(st, "details.name") ?: argv[i]);
	}
	return failed;
}

static int image_pull(struct ctl *c, int argc, char **argv)
{
	_cleanup_json_ cJSON *body = cJSON_CreateObject(), *res = NULL;
	struct err e = {};
	int r;

	if (argc != 1)
		return ctl_fail(&(struct err){ .message = "image pull REF" }, -EINVAL);
	if (!body || !cJSON_AddStringToObject(body, "image", argv[0]) ||
	    (c->o.plain_http && !cJSON_AddTrueToObject(body, "plainHTTP")))
		return 1;
	r = ctl_request(c, "POST", IMAGES_PATH, NULL, "application/json", body, &res, &e);
	if (r < 0)
		return ctl_fail(&e, r);
	printf("pulled %s %s\n", ctl_json_str(res, "name") ?: argv[0],
	       ctl_json_str(res, "digest") ?: "");
	return 0;
}

int cmd_image(struct ctl *c, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "";

	if (streq(sub, "ls") || streq(sub, "list"))
		return argc == 1 ? image_ls(c)
				 : ctl_fail(&(struct err){ .message = "image ls takes no "
								      "arguments" },
					    -EINVAL);
	if (streq(sub, "import"))
		return image_import(c, argc - 1, argv + 1);
	if (streq(sub, "rm") || streq(sub, "remove"))
		return image_rm(c, argc - 1, argv + 1);
	if (streq(sub, "pull"))
		return image_pull(c, argc - 1, argv + 1);
	return ctl_fail(&(struct err){ .message = "usage: shoalctl image ls | import FILE... | rm "
						  "REF... | pull REF" },
			-EINVAL);
}
