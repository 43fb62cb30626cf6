// SPDX-License-Identifier: Apache-2.0
/*
 * Security for non-loopback listeners: TLS material (a CA and a serving certificate made at
 * first start under <state_dir>/tls when none is given) and static bearer tokens from a CSV
 * file in kube-apiserver's format: token,user,uid[,"group1,group2"].
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "api/server-internal.h"
#include "lib/log.h"
#include "lib/util.h"

#define TOKENS_MAX_BYTES (1 << 20)

/* ---------- tokens ---------- */

/* One CSV field (optionally double-quoted, "" escapes a quote). Advances *p past the comma. */
static char *csv_field(const char **p)
{
	const char *s = *p;
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '"') {
		s++;
		while (*s) {
			if (*s == '"' && s[1] == '"') {
				*o++ = '"';
				s += 2;
			} else if (*s == '"') {
				s++;
				break;
			} else
				*o++ = *s++;
		}
		while (*s && *s != ',')
			s++;
	} else {
		while (*s && *s != ',')
			*o++ = *s++;
		while (o > out && (o[-1] == ' ' || o[-1] == '\t' || o[-1] == '\r'))
			o--;
	}
	*o = 0;
	*p = *s == ',' ? s + 1 : s;
	return out;
}

int api_tokens_load(struct api_server *srv, const char *path, struct err *e)
{
	_cleanup_free_ char *buf = NULL;
	char *line, *save = NULL;
	int r;

	r = util_read_file(path, TOKENS_MAX_BYTES, &buf, NULL);
	if (r < 0)
		return err_set(e, -r, 0, "", "cannot read tokens file %s: %s", path, strerror(-r));
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *p = line;
		struct api_token t = { 0 };

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#' || *p == '\r')
			continue;
		t.token = csv_field(&p);
		t.user = csv_field(&p);
		t.uid = csv_field(&p);
		t.groups = csv_field(&p);
		if (!t.token || !t.user || !t.uid || !t.groups || !*t.token || !*t.user) {
			free(t.token);
			free(t.user);
			free(t.uid);
			free(t.groups);
			return err_set(e, EINVAL, 0, "",
				       "tokens file %s: each line needs token,user,uid[,groups]",
				       path);
		}
		struct api_token *n = realloc(srv->tokens, (srv->ntokens + 1) * sizeof(*n));
		if (!n) {
			free(t.token);
			free(t.user);
			free(t.uid);
			free(t.groups);
			return -ENOMEM;
		}
		srv->tokens = n;
		srv->tokens[srv->ntokens++] = t;
	}
	if (!srv->ntokens)
		return err_set(e, EINVAL, 0, "", "tokens file %s has no tokens", path);
	return 0;
}

const char *api_auth_user(struct api_server *srv, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	const char *tok;
	size_t len;

	if (!h || strncasecmp(h, "Bearer ", 7))
		return NULL;
	tok = h + 7;
	while (*tok == ' ')
		tok++;
	len = strlen(tok);
	while (len && tok[len - 1] == ' ')
		len--;
	if (!len)
		return NULL;
	for (size_t i = 0; i < srv->ntokens; i++) {
		const struct api_token *t = &srv->tokens[i];
		if (strlen(t->token) == len && CRYPTO_memcmp(t->token, tok, len) == 0)
			return t->user;
	}
	return NULL;
}

/* ---------- TLS material ---------- */

DEFINE_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
DEFINE_CLEANUP_FUNC(X509, X509_free)
DEFINE_CLEANUP_FUNC(BIO, BIO_free)

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return -EINVAL;
	X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return 0;
}

static X509 *cert_new(EVP_PKEY *key, const char *cn, long days)
{
	X509 *c = X509_new();
	unsigned char serial[16];
	BIGNUM *bn;

	if (!c)
		return NULL;
	X509_set_version(c, 2);
	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), days * 24 * 3600);
	X509_set_pubkey(c, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	return c;
}

static int write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	_cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;

	if (!b)
		return -ENOMEM;
	if (cert ? !PEM_write_bio_X509(b, cert)
		 : !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		return -EIO;
	len = BIO_get_mem_data(b, &data);
	return util_write_file(path, data, (size_t)len, cert ? 0644 : 0600);
}

static int tls_generate(const char *dir, const char *node, const char *host, const char *ca_path,
			const char *cert_path, const char *key_path, struct err *e)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = EVP_EC_gen("P-256");
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
	_cleanup_(X509_freep) X509 *ca = NULL, *crt = NULL;
	char cn[128], san[512], ca_key_path[4096];
	struct in_addr a4;
	struct in6_addr a6;
	int r = 0;

	if (!ca_key || !key)
		return err_set(e, ENOMEM, 0, "", "cannot generate TLS keys");
	snprintf(cn, sizeof(cn), "shoal-ca@%s", node);
	ca = cert_new(ca_key, cn, 3650);
	if (!ca)
		return -ENOMEM;
	X509_set_issuer_name(ca, X509_get_subject_name(ca));
	r |= add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
	r |= add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
	r |= add_ext(ca, ca, NID_subject_key_identifier, "hash");
	if (r || !X509_sign(ca, ca_key, EVP_sha256()))
		return err_set(e, EIO, 0, "", "cannot sign the CA certificate");

	crt = cert_new(key, node, 825);
	if (!crt)
		return -ENOMEM;
	X509_set_issuer_name(crt, X509_get_subject_name(ca));
	snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1", node);
	bool is_ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
	if (is_ip && !streq(host, "0.0.0.0") && !streq(host, "::") && !streq(host, "127.0.0.1"))
		snprintf(san + strlen(san), sizeof(san) - strlen(san), ",IP:%s", host);
	else if (!is_ip && !streq(host, "localhost") && !streq(host, node))
		snprintf(san + strlen(san), sizeof(san) - strlen(san), ",DNS:%s", host);
	r |= add_ext(crt, ca, NID_basic_constraints, "critical,CA:FALSE");
	r |= add_ext(crt, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment");
	r |= add_ext(crt, ca, NID_ext_key_usage, "serverAuth");
	r |= add_ext(crt, ca, NID_subject_alt_name, san);
	r |= add_ext(crt, ca, NID_authority_key_identifier, "keyid:always");
	if (r || !X509_sign(crt, ca_key, EVP_sha256()))
		return err_set(e, EIO, 0, "", "cannot sign the serving certificate");

	snprintf(ca_key_path, sizeof(ca_key_path), "%s/ca.key", dir);
	r = write_pem(ca_path, ca, NULL);
	r = r ?: write_pem(ca_key_path, NULL, ca_key);
	r = r ?: write_pem(key_path, NULL, key);
	r = r ?: write_pem(cert_path, crt, NULL);
	if (r < 0)
		return err_set(e, -r, 0, "", "cannot write TLS material under %s: %s", dir,
			       strerror(-r));
	log_info("api: generated a CA (%s) and a serving certificate for %s", ca_path, san);
	return 0;
}

int api_tls_setup(struct api_server *srv, const struct api_server_options *o, const char *host,
		  struct err *e)
{
	_cleanup_free_ char *dir = NULL, *cert = NULL, *key = NULL, *ca = NULL;
	struct stat st;
	int r;

	if (asprintf(&dir, "%s/tls", o->state_dir ? o->state_dir : ".") < 0)
		return -ENOMEM;
	cert = o->tls_cert ? strdup(o->tls_cert) : NULL;
	key = o->tls_key ? strdup(o->tls_key) : NULL;
	ca = o->tls_ca ? strdup(o->tls_ca) : NULL;
	if ((!cert && asprintf(&cert, "%s/server.crt", dir) < 0) ||
	    (!key && asprintf(&key, "%s/server.key", dir) < 0) ||
	    (!ca && asprintf(&ca, "%s/ca.crt", dir) < 0))
		return -ENOMEM;
	if (stat(cert, &st) < 0 || stat(key, &st) < 0) {
		if (o->tls_cert || o->tls_key)
			return err_set(e, ENOENT, 0, "", "TLS certificate %s or key %s missing",
				       cert, key);
		r = util_mkdir_p(dir, 0700);
		if (r < 0)
			return err_set(e, -r, 0, "", "cannot create %s: %s", dir, strerror(-r));
		r = tls_generate(dir, srv->node_name, host, ca, cert, key, e);
		if (r < 0)
			return r;
	}
	srv->ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (!srv->ssl_ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(srv->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(srv->ssl_ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(srv->ssl_ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(srv->ssl_ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(srv->ssl_ctx) != 1) {
		char buf[256];
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		return err_set(e, EINVAL, 0, "", "cannot load TLS certificate %s / key %s: %s",
			       cert, key, buf);
	}
	return 0;
}
