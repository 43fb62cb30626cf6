// SPDX-License-Identifier: Apache-2.0
/*
 * OCI distribution client (libcurl): manifests (index/list -> linux/amd64), Bearer token auth
 * from WWW-Authenticate challenges, blobs streamed to disk with their SHA-256 checked before
 * they are unpacked into the store.
 */
#include <ctype.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "daemon/image-internal.h"
#include "lib/macro.h"
#include "lib/util.h"

#define PULL_ERR "ErrImagePull"
#define MANIFEST_MAX (4u << 20)
#define ACCEPT_MANIFESTS                                                                           \
	"Accept: " IMAGE_MT_OCI_INDEX ", " IMAGE_MT_DOCKER_LIST ", " IMAGE_MT_OCI_MANIFEST         \
	", " IMAGE_MT_DOCKER_MANIFEST

struct puller {
	struct image_store *s;
	const struct image_pull_opts *o;
	struct image_ref ref;
	char base[600];  /* scheme://host/v2/<repo> */
	char *token;     /* Bearer token once obtained */
	char *basic;     /* user:password */
};

struct resp {
	long status;
	char *body;
	size_t len, max;
	FILE *file; /* blob download target instead of body */
	EVP_MD_CTX *md;
	char *www_auth;
	char *content_type;
	bool too_big;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = sz * n;
	char *nb;

	if (r->file && r->status >= 200 && r->status < 300) {
		if (fwrite(p, 1, len, r->file) != len)
			return 0;
		EVP_DigestUpdate(r->md, p, len);
		return len;
	}
	if (r->file && r->len + len > 65536)
		return len; /* an error body of a blob request: keep only the start */
	if (r->len + len > r->max) {
		r->too_big = true;
		return 0;
	}
	if (!(nb = realloc(r->body, r->len + len + 1)))
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, len);
	r->len += len;
	r->body[r->len] = 0;
	return len;
}

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	char *v;

	if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	line += n + 1;
	len -= n + 1;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	v = strndup(line, len);
	return v;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = sz * n;
	char *v;

	if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* a new response (redirect, 401 then retry): reset */
		r->status = 0;
		const char *sp = memchr(p, ' ', len);
		if (sp)
			r->status = strtol(sp + 1, NULL, 10);
		return len;
	}
	if ((v = header_value(p, len, "WWW-Authenticate"))) {
		free(r->www_auth);
		r->www_auth = v;
	} else if ((v = header_value(p, len, "Content-Type"))) {
		free(r->content_type);
		r->content_type = v;
	}
	return len;
}

static void resp_done(struct resp *r)
{
	free(r->body);
	free(r->www_auth);
	free(r->content_type);
	memset(r, 0, sizeof(*r));
}

static int http_get(struct puller *pl, const char *url, const char *accept, bool auth,
		    struct resp *r, struct err *e)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	_cleanup_free_ char *authz = NULL;
	curl_off_t connected = 0;
	CURLcode rc;

	if (!c)
		return -ENOMEM;
	if (!r->max)
		r->max = MANIFEST_MAX;
	if (accept)
		h = curl_slist_append(h, accept);
	if (auth && pl->token) {
		if (asprintf(&authz, "Authorization: Bearer %s", pl->token) < 0)
			authz = NULL;
		if (authz)
			h = curl_slist_append(h, authz);
	} else if (auth && pl->basic) {
		curl_easy_setopt(c, CURLOPT_USERPWD, pl->basic);
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "shoal/0.1");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 pl->o && pl->o->connect_timeout_ms ? pl->o->connect_timeout_ms : 15000L);
	/* a short connect timeout is worth nothing if cleanup then waits for the resolver thread
	 * (glibc's own timeouts, 5 s a try): leave it to finish on its own */
	if (pl->o && pl->o->connect_timeout_ms)
		curl_easy_setopt(c, CURLOPT_QUICK_EXIT, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, pl->o && pl->o->timeout_sec ? pl->o->timeout_sec : 300L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (pl->o && pl->o->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, pl->o->ca_file);
	if (pl->o && pl->o->insecure_skip_verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (r->too_big)
		return err_set(e, EFBIG, 0, PULL_ERR, "%s: response too large", url);
	/* the registry could not be reached at all: callers may back off per registry */
	if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
	    rc == CURLE_COULDNT_CONNECT || (rc == CURLE_OPERATION_TIMEDOUT && !connected))
		return err_set(e, EHOSTUNREACH, 0, PULL_ERR, "%s: %s", url,
			       curl_easy_strerror(rc));
	if (rc != CURLE_OK)
		return err_set(e, EIO, 0, PULL_ERR, "%s: %s", url, curl_easy_strerror(rc));
	return 0;
}

/* Parse `Bearer realm="..",service="..",scope=".."` into the token URL. */
static int token_url(const char *chal, const struct image_ref *ref, char **ret)
{
	char realm[1024] = "", service[1024] = "", scope[1024] = "";
	const char *p = chal;
	CURL *c;
	char *es, *esc;

	if (strncasecmp(p, "Bearer ", 7) != 0)
		return -ENOTSUP;
	p += 7;
	while (*p) {
		char key[32], val[1000];
		size_t k = 0, v = 0;
		while (*p == ' ' || *p == ',')
			p++;
		while (*p && *p != '=' && k < sizeof(key) - 1)
			key[k++] = *p++;
		key[k] = 0;
		if (*p++ != '=')
			break;
		if (*p == '"') {
			p++;
			while (*p && *p != '"' && v < sizeof(val) - 1)
				val[v++] = *p++;
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',' && v < sizeof(val) - 1)
				val[v++] = *p++;
		}
		val[v] = 0;
		if (strcasecmp(key, "realm") == 0)
			snprintf(realm, sizeof(realm), "%s", val);
		else if (strcasecmp(key, "service") == 0)
			snprintf(service, sizeof(service), "%s", val);
		else if (strcasecmp(key, "scope") == 0)
			snprintf(scope, sizeof(scope), "%s", val);
	}
	if (!realm[0])
		return -EBADMSG;
	if (!scope[0])
		snprintf(scope, sizeof(scope), "repository:%s:pull", ref->repository);
	if (!(c = curl_easy_init()))
		return -ENOMEM;
	es = curl_easy_escape(c, service, 0);
	esc = curl_easy_escape(c, scope, 0);
	int n = asprintf(ret, "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?",
			 es ? es : "", esc ? esc : "");
	curl_free(es);
	curl_free(esc);
	curl_easy_cleanup(c);
	return n < 0 ? -ENOMEM : 0;
}

static int fetch_token(struct puller *pl, const char *chal, struct err *e)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_json_ cJSON *j = NULL;
	struct resp r = { 0 };
	const char *t;
	int k;

	if ((k = token_url(chal, &pl->ref, &url)) < 0)
		return err_set(e, -k, 0, PULL_ERR, "registry %s: unsupported authentication "
			       "challenge \"%s\"", pl->ref.registry, chal);
	/* credentials, if any, go to the token service as Basic auth */
	if ((k = http_get(pl, url, NULL, pl->basic != NULL && !pl->token, &r, e)) < 0) {
		resp_done(&r);
		return k;
	}
	if (r.status != 200 || !(j = cJSON_Parse(r.body ? r.body : ""))) {
		k = err_set(e, EACCES, 0, PULL_ERR, "token service %s: HTTP %ld", url, r.status);
		resp_done(&r);
		return k;
	}
	resp_done(&r);
	t = cJSON_GetStringValue(cJSON_GetObjectItem(j, "token"));
	if (!t)
		t = cJSON_GetStringValue(cJSON_GetObjectItem(j, "access_token"));
	if (!t)
		return err_set(e, EACCES, 0, PULL_ERR, "token service %s: no token", url);
	free(pl->token);
	pl->token = strdup(t);
	return pl->token ? 0 : -ENOMEM;
}

/* GET with the auth dance: on 401 with a Bearer challenge get a token and retry once. */
static int get_authed(struct puller *pl, const char *url, const char *accept, struct resp *r,
		      struct err *e)
{
	FILE *file = r->file;
	EVP_MD_CTX *md = r->md;
	int k;

	for (int attempt = 0; attempt < 2; attempt++) {
		if ((k = http_get(pl, url, accept, true, r, e)) < 0)
			return k;
		if (r->status != 401 || attempt == 1)
			break;
		if (!r->www_auth || strncasecmp(r->www_auth, "Bearer ", 7) != 0) {
			if (!pl->basic)
				return err_set(e, EACCES, 401, PULL_ERR,
					       "registry %s requires authentication",
					       pl->ref.registry);
			break;
		}
		_cleanup_free_ char *chal = strdup(r->www_auth);
		resp_done(r);
		r->file = file;
		r->md = md;
		if (file) {
			rewind(file);
			if (ftruncate(fileno(file), 0) < 0)
				return -errno;
			EVP_DigestInit_ex(md, EVP_sha256(), NULL);
		}
		if (!chal)
			return -ENOMEM;
		if ((k = fetch_token(pl, chal, e)) < 0)
			return k;
	}
	if (r->status == 401 || r->status == 403)
		return err_set(e, EACCES, 0, PULL_ERR, "%s: access denied (HTTP %ld)", url,
			       r->status);
	if (r->status == 404)
		return err_set(e, ENOENT, 0, PULL_ERR, "%s: not found", url);
	if (r->status != 200)
		return err_set(e, EIO, 0, PULL_ERR, "%s: HTTP %ld", url, r->status);
	return 0;
}

static int get_manifest(struct puller *pl, const char *reference, const char *want_digest,
			cJSON **ret_json, char **ret_body, size_t *ret_len,
			char digest[IMAGE_DIGEST_LEN + 1], struct err *e)
{
	_cleanup_free_ char *url = NULL;
	struct resp r = { 0 };
	int k;

	if (asprintf(&url, "%s/manifests/%s", pl->base, reference) < 0)
		return -ENOMEM;
	if ((k = get_authed(pl, url, ACCEPT_MANIFESTS, &r, e)) < 0) {
		resp_done(&r);
		return k;
	}
	image_sha256_buf(r.body ? r.body : "", r.len, digest);
	if (want_digest && !streq(digest, want_digest)) {
		resp_done(&r);
		return err_set(e, EBADMSG, 0, PULL_ERR,
			       "manifest %s: digest mismatch (registry sent %s)", want_digest, digest);
	}
	if (!(*ret_json = cJSON_Parse(r.body ? r.body : ""))) {
		resp_done(&r);
		return err_set(e, EBADMSG, 0, PULL_ERR, "manifest %s is not JSON", reference);
	}
	/* schema 1 manifests have no mediaType and no config */
	if (cJSON_GetObjectItem(*ret_json, "schemaVersion") &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(*ret_json, "schemaVersion")) != 2) {
		cJSON_Delete(*ret_json);
		resp_done(&r);
		return err_set(e, ENOTSUP, 0, PULL_ERR,
			       "manifest %s: only schema 2 / OCI manifests are supported", reference);
	}
	if (!cJSON_GetObjectItem(*ret_json, "mediaType") && r.content_type) {
		char *semi = strchr(r.content_type, ';');
		if (semi)
			*semi = 0;
		cJSON_AddStringToObject(*ret_json, "mediaType", r.content_type);
	}
	*ret_body = TAKE_PTR(r.body);
	*ret_len = r.len;
	resp_done(&r);
	return 0;
}

/* Download a blob to a file in tmpdir, verifying its digest. */
static int get_blob(struct puller *pl, const char *digest, const char *tmpdir, char **ret_path,
		    struct err *e)
{
	_cleanup_free_ char *url = NULL, *path = NULL;
	struct resp r = { 0 };
	unsigned char md[32];
	unsigned int mdlen = 0;
	char got[IMAGE_DIGEST_LEN + 1];
	int k;

	if (!image_digest_valid(digest))
		return err_set(e, EINVAL, 0, PULL_ERR, "unsupported digest \"%s\"",
			       digest ? digest : "");
	if (asprintf(&url, "%s/blobs/%s", pl->base, digest) < 0 ||
	    asprintf(&path, "%s/%s", tmpdir, digest + 7) < 0)
		return -ENOMEM;
	if (!(r.file = fopen(path, "w+e")))
		return -errno;
	if (!(r.md = EVP_MD_CTX_new())) {
		fclose(r.file);
		return -ENOMEM;
	}
	EVP_DigestInit_ex(r.md, EVP_sha256(), NULL);
	k = get_authed(pl, url, NULL, &r, e);
	if (fclose(r.file) != 0 && k >= 0)
		k = -errno;
	EVP_DigestFinal_ex(r.md, md, &mdlen);
	EVP_MD_CTX_free(r.md);
	r.file = NULL;
	r.md = NULL;
	resp_done(&r);
	if (k < 0)
		return k;
	memcpy(got, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		sprintf(got + 7 + 2 * i, "%02x", md[i]);
	if (!streq(got, digest))
		return err_set(e, EBADMSG, 0, PULL_ERR, "blob %s: digest mismatch (got %s)", digest,
			       got);
	*ret_path = TAKE_PTR(path);
	return 0;
}

/*
 * The image's manifest (an index resolved to the linux/amd64 one). Network only, no store
 * access: it runs before the store lock is taken, so an unreachable registry (DNS timeouts
 * can take seconds) does not hold up every other job that reads or writes the store.
 */
static int resolve_manifest(struct puller *pl, const char *name, cJSON **ret_man, char **ret_body,
			    size_t *ret_len, char digest[IMAGE_DIGEST_LEN + 1], struct err *e)
{
	_cleanup_json_ cJSON *man = NULL;
	_cleanup_free_ char *body = NULL;
	const char *mt;
	size_t len;
	int k;

	k = get_manifest(pl, pl->ref.digest[0] ? pl->ref.digest : pl->ref.tag,
			 pl->ref.digest[0] ? pl->ref.digest : NULL, &man, &body, &len, digest, e);
	if (k < 0)
		return k;
	mt = cJSON_GetStringValue(cJSON_GetObjectItem(man, "mediaType"));
	if ((mt && (streq(mt, IMAGE_MT_OCI_INDEX) || streq(mt, IMAGE_MT_DOCKER_LIST))) ||
	    (!cJSON_GetObjectItem(man, "config") && cJSON_GetObjectItem(man, "manifests"))) {
		const cJSON *pick = image_index_pick_platform(man);
		const char *d = pick ? cJSON_GetStringValue(cJSON_GetObjectItem(pick, "digest")) : NULL;
		_cleanup_free_ char *dd = d ? strdup(d) : NULL;
		if (!d)
			return err_set(e, ENOENT, 0, PULL_ERR,
				       "image %s has no linux/amd64 manifest", name);
		if (!dd)
			return -ENOMEM;
		cJSON_Delete(man);
		man = NULL;
		free(body);
		body = NULL;
		if ((k = get_manifest(pl, dd, dd, &man, &body, &len, digest, e)) < 0)
			return k;
	}
	*ret_man = TAKE_PTR(man);
	*ret_body = TAKE_PTR(body);
	*ret_len = len;
	return 0;
}

static int pull_locked(struct puller *pl, const char *name, const cJSON *man, const char *body,
		       size_t len, const char *digest, char *tmpdir, struct err *e)
{
	_cleanup_json_ cJSON *cfg = NULL, *layers = cJSON_CreateArray();
	_cleanup_free_ char *cpath = NULL, *cbuf = NULL;
	const char *cdig;
	const cJSON *l;
	size_t clen;
	double size = 0;
	int k;

	if (!layers)
		return -ENOMEM;
	cdig = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(man, "config"), "digest"));
	if ((k = get_blob(pl, cdig, tmpdir, &cpath, e)) < 0)
		return k;
	if ((k = util_read_file(cpath, MANIFEST_MAX, &cbuf, &clen)) < 0)
		return k;
	if (!(cfg = cJSON_Parse(cbuf)))
		return err_set(e, EBADMSG, 0, PULL_ERR, "image config %s is not JSON", cdig);
	cJSON_ArrayForEach(l, cJSON_GetObjectItem(man, "layers")) {
		const char *ld = cJSON_GetStringValue(cJSON_GetObjectItem(l, "digest"));
		_cleanup_free_ char *have = NULL, *lp = NULL;
		struct stat st;
		if (!image_digest_valid(ld))
			return err_set(e, EINVAL, 0, PULL_ERR, "layer with unsupported digest");
		if (image_store_layer_path(pl->s, ld, &have) == 0 && stat(have, &st) < 0) {
			if ((k = get_blob(pl, ld, tmpdir, &lp, e)) < 0)
				return k;
			if ((k = image_layer_unpack(pl->s, lp, ld, e)) < 0)
				return k;
			unlink(lp);
		}
		size += cJSON_GetNumberValue(cJSON_GetObjectItem(l, "size"));
		cJSON_AddItemToArray(layers, cJSON_CreateString(ld));
	}
	if ((k = image_blob_put(pl->s, digest, body, len)) < 0 ||
	    (k = image_blob_put(pl->s, cdig, cbuf, clen)) < 0)
		return k;
	if ((k = image_index_add(pl->s, name, digest, cfg, layers, size)) < 0)
		return k;
	return 0;
}

int image_store_pull(struct image_store *s, const char *ref, const struct image_pull_opts *o,
		     char **ret_name, struct err *e)
{
	struct puller pl = { .s = s, .o = o };
	_cleanup_json_ cJSON *man = NULL;
	_cleanup_free_ char *tmp = NULL, *body = NULL;
	char name[700], digest[IMAGE_DIGEST_LEN + 1];
	size_t len = 0;
	int k;

	if ((k = image_ref_parse(ref, &pl.ref, e)) < 0)
		return k;
	if ((k = image_ref_format(&pl.ref, name, sizeof(name))) < 0)
		return k;
	snprintf(pl.base, sizeof(pl.base), "%s://%s/v2/%s", o && o->plain_http ? "http" : "https",
		 image_ref_api_host(&pl.ref), pl.ref.repository);
	if (o && o->username && asprintf(&pl.basic, "%s:%s", o->username,
					 o->password ? o->password : "") < 0)
		return -ENOMEM;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((k = resolve_manifest(&pl, name, &man, &body, &len, digest, e)) < 0)
		goto out;
	if ((k = image_lock(s, LOCK_EX)) < 0)
		goto out;
	if ((k = image_tmpdir(s, &tmp)) >= 0) {
		k = pull_locked(&pl, name, man, body, len, digest, tmp, e);
		image_rm_rf(tmp);
	}
	image_unlock(s);
	if (k >= 0 && ret_name)
		*ret_name = strdup(name);
out:
	free(pl.token);
	free(pl.basic);
	return k;
}
