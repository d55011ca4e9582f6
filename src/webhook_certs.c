/* SPDX-License-Identifier: Apache-2.0 */
/* The certificates `kilt webhook manifests` puts in the webhook's Secret: a CA of its own (its
 * certificate goes into the MutatingWebhookConfiguration's caBundle) and the serving certificate
 * it signs for the Service's DNS names. OpenSSL's libcrypto, which libkilt already links. */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "util.h"
#include "webhook_manifests.h"

/* Clocks of the API server and the nodes may lag the machine that makes the certificate. */
#define BACKDATE_SECONDS 300L

static int ssl_error(struct kilt_error *err, const char *what)
{
	char buf[256] = "unknown error";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return kilt_error_setf(err, -EIO, "cannot make the webhook's certificates: %s: %s", what,
			       buf);
}

static bool add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (!ext)
		return false;
	bool ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* A certificate for `key` named `cn`, signed by `issuer_key` (with `issuer` as its issuer, or
 * itself when `issuer` is NULL), with the extensions of a CA or of a TLS server. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, unsigned days, X509 *issuer,
		       EVP_PKEY *issuer_key, const char *san)
{
	X509 *x = X509_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	bool ok = x && X509_set_version(x, 2) == 1 && RAND_bytes(serial, sizeof(serial)) == 1;
	if (ok) {
		serial[0] &= 0x7f; /* positive, at most 20 octets (RFC 5280) */
		serial[0] |= 0x40; /* never shortened by leading zeros */
		bn = BN_bin2bn(serial, sizeof(serial), NULL);
		ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	}
	BN_free(bn);
	ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400L) &&
	     X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
					(const unsigned char *)cn, -1, -1, 0) == 1 &&
	     X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)) == 1 &&
	     X509_set_pubkey(x, key) == 1;
	if (ok) {
		X509V3_CTX ctx;
		X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
		if (!issuer)
			ok = add_ext(x, &ctx, NID_basic_constraints,
				     "critical,CA:TRUE,pathlen:0") &&
			     add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") &&
			     add_ext(x, &ctx, NID_subject_key_identifier, "hash");
		else
			ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
			     add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") &&
			     add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") &&
			     add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
			     add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") &&
			     add_ext(x, &ctx, NID_subject_alt_name, san);
	}
	ok = ok && X509_sign(x, issuer_key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static char *bio_text(BIO *b)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	char *s = xmalloc((size_t)n + 1);
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static char *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = b && PEM_write_bio_X509(b, x) == 1 ? bio_text(b) : NULL;
	BIO_free(b);
	return s;
}

static char *key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1 ? bio_text(b)
										      : NULL;
	BIO_free(b);
	return s;
}

int webhook_certs_make(const char *ca_name, unsigned ca_days, const char *const *dns_names,
		       unsigned days, struct webhook_certs *ret, struct kilt_error *err)
{
	struct kbuf san;
	kbuf_init(&san, 4096);
	for (size_t i = 0; dns_names[i]; i++)
		if (kbuf_printf(&san, "%sDNS:%s", i ? "," : "", dns_names[i]) < 0) {
			kbuf_done(&san);
			return kilt_error_setf(err, -E2BIG, "the webhook's DNS names are too long");
		}
	_cleanup_free_ char *san_text = kbuf_steal(&san);
	EVP_PKEY *ca_key = EVP_EC_gen("P-256");
	EVP_PKEY *key = ca_key ? EVP_EC_gen("P-256") : NULL;
	X509 *ca = key ? make_cert(ca_key, ca_name, ca_days, NULL, ca_key, NULL) : NULL;
	X509 *leaf = ca ? make_cert(key, dns_names[0], days, ca, ca_key, san_text) : NULL;
	struct webhook_certs c = { 0 };
	int r = 0;
	if (!leaf) {
		r = ssl_error(err, !key ? "key generation" : "certificate");
	} else {
		c.ca_cert = cert_pem(ca);
		c.cert = cert_pem(leaf);
		c.key = key_pem(key);
		if (!c.ca_cert || !c.cert || !c.key) {
			webhook_certs_done(&c);
			r = ssl_error(err, "PEM encoding");
		}
	}
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	if (r == 0)
		*ret = c;
	return r;
}

void webhook_certs_done(struct webhook_certs *c)
{
	if (!c)
		return;
	free(c->ca_cert);
	if (c->key)
		OPENSSL_cleanse(c->key, strlen(c->key));
	free(c->key);
	free(c->cert);
	*c = (struct webhook_certs){ 0 };
}

char *webhook_sha256_hex(const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1)
		abort(); /* SHA-256 is always there */
	char *hex = xmalloc(2 * (size_t)n + 1);
	for (unsigned i = 0; i < n; i++) {
		hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
	}
	hex[2 * n] = '\0';
	return hex;
}
