/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4 (header form): canonical request, string to sign, signing key and the
 * Authorization header, used to call ECR's GetAuthorizationToken with the caller's credentials. */
#include <ctype.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "internal.h"
#include "kilt.h"

#define SIGV4_MAX_HEADERS 64u
#define SIGV4_MAX_PARAMS 256u
#define SIGV4_MAX_TEXT (64u << 10)

void kilt_sigv4_result_done(struct kilt_sigv4_result *r)
{
	if (!r)
		return;
	free(r->canonical_request);
	free(r->string_to_sign);
	free(r->signature);
	free(r->authorization);
	*r = (struct kilt_sigv4_result){ 0 };
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
		abort();
	to_hex(md, 32, out);
}

static void hmac(const unsigned char *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int n = 32;
	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n))
		abort();
}

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static int encode(struct kbuf *b, const char *s, size_t n, bool keep_slash)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int r = (unreserved(c) || (keep_slash && c == '/')) ? kbuf_addc(b, (char)c)
								    : kbuf_printf(b, "%%%02X", c);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Percent-decodes s[0..n) into a new string (malformed escapes are kept as written). */
static char *pct_decode(const char *s, size_t n, size_t *ret_len)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = kilt_hexval(s[i + 1])) >= 0 &&
		    (lo = kilt_hexval(s[i + 2])) >= 0) {
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	*ret_len = o;
	return out;
}

static int canonical_path(struct kbuf *b, const char *path)
{
	if (!path || !*path)
		return kbuf_addc(b, '/');
	const char *segs[256];
	size_t lens[256];
	size_t n = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - s);
		if (len == 1 && s[0] == '.')
			continue;
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			if (n)
				n--;
			continue;
		}
		if (n == ARRAY_SIZE(segs))
			return -E2BIG;
		segs[n] = s;
		lens[n++] = len;
	}
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		r = kbuf_addc(b, '/');
		if (r == 0)
			r = encode(b, segs[i], lens[i], false);
	}
	if (r < 0)
		return r;
	size_t plen = strlen(path);
	if (n == 0 || path[plen - 1] == '/')
		r = kbuf_addc(b, '/');
	return r;
}

struct param {
	char *name, *value; /* owned, canonical (encoded) */
};

static int cmp_param(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

static int canonical_query(struct kbuf *b, const char *query)
{
	if (!query || !*query)
		return 0;
	struct param params[SIGV4_MAX_PARAMS];
	size_t n = 0;
	int r = 0;
	const char *p = query;
	while (*p && r == 0) {
		size_t len = strcspn(p, "&");
		if (len > 0) {
			if (n == SIGV4_MAX_PARAMS) {
				r = -E2BIG;
				break;
			}
			const char *eq = memchr(p, '=', len);
			size_t nlen = eq ? (size_t)(eq - p) : len;
			size_t dlen;
			_cleanup_free_ char *dn = pct_decode(p, nlen, &dlen);
			struct kbuf e;
			kbuf_init(&e, SIGV4_MAX_TEXT);
			r = encode(&e, dn, dlen, false);
			params[n].name = kbuf_steal(&e);
			_cleanup_free_ char *dv =
				eq ? pct_decode(eq + 1, len - nlen - 1, &dlen) : xstrdup("");
			if (!eq)
				dlen = 0;
			if (r == 0)
				r = encode(&e, dv, dlen, false);
			params[n++].value = kbuf_steal(&e);
		}
		p += len;
		if (*p == '&')
			p++;
	}
	if (r == 0) {
		/* params[0..n) are all set above (n counts the filled ones) */
		/* cppcheck-suppress uninitvar */
		qsort(params, n, sizeof(params[0]), cmp_param);
		for (size_t i = 0; i < n && r == 0; i++)
			r = kbuf_printf(b, "%s%s=%s", i ? "&" : "", params[i].name,
					params[i].value);
	}
	for (size_t i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	return r;
}

struct header {
	char *name, *value; /* owned: lower-case name, trimmed value */
	size_t order;
};

static int cmp_header(const void *a, const void *b)
{
	const struct header *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static char *trim_value(const char *s)
{
	struct kbuf b;
	kbuf_init(&b, SIGV4_MAX_TEXT);
	while (*s == ' ' || *s == '\t')
		s++;
	bool space = false;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t') {
			space = true;
			continue;
		}
		if (space && b.len)
			kbuf_addc(&b, ' ');
		space = false;
		kbuf_addc(&b, *s);
	}
	return kbuf_steal(&b);
}

int kilt_sigv4_sign(const struct kilt_sigv4_request *req, struct kilt_sigv4_result *ret,
		    struct kilt_error *err)
{
	if (!req->method || !req->region || !req->service || !req->access_key || !req->secret_key ||
	    !req->amz_date)
		return kilt_error_setf(err, -EINVAL,
				       "sigv4: method, region, service, credentials and date are "
				       "required");
	const char *d = req->amz_date;
	if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return kilt_error_setf(err, -EINVAL, "sigv4: date '%.40s' is not YYYYMMDDTHHMMSSZ",
				       d);
	struct header hdrs[SIGV4_MAX_HEADERS + 1];
	size_t nh = 0;
	bool have_host = false, have_token = false;
	for (size_t i = 0; req->headers && req->headers[i]; i++) {
		const char *h = req->headers[i];
		const char *colon = strchr(h, ':');
		if (!colon || colon == h || nh == SIGV4_MAX_HEADERS) {
			for (size_t k = 0; k < nh; k++) {
				free(hdrs[k].name);
				free(hdrs[k].value);
			}
			return kilt_error_setf(err, -EINVAL,
					       "sigv4: bad or too many headers at '%.80s'", h);
		}
		char *name = xstrndup(h, (size_t)(colon - h));
		for (char *c = name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		have_host |= strcmp(name, "host") == 0;
		have_token |= strcmp(name, "x-amz-security-token") == 0;
		hdrs[nh] = (struct header){ name, trim_value(colon + 1), nh };
		nh++;
	}
	if (req->session_token && *req->session_token && !have_token) {
		hdrs[nh] = (struct header){ xstrdup("x-amz-security-token"),
					    trim_value(req->session_token), nh };
		nh++;
	}
	int r = 0;
	if (!have_host)
		r = kilt_error_setf(err, -EINVAL, "sigv4: the Host header is required");
	qsort(hdrs, nh, sizeof(hdrs[0]), cmp_header);

	struct kbuf creq, signed_headers;
	kbuf_init(&creq, SIGV4_MAX_TEXT);
	kbuf_init(&signed_headers, SIGV4_MAX_TEXT);
	if (r == 0)
		r = kbuf_printf(&creq, "%s\n", req->method);
	if (r == 0)
		r = canonical_path(&creq, req->path);
	if (r == 0)
		r = kbuf_addc(&creq, '\n');
	if (r == 0)
		r = canonical_query(&creq, req->query);
	if (r == 0)
		r = kbuf_addc(&creq, '\n');
	for (size_t i = 0; i < nh && r == 0; i++) {
		bool same = i > 0 && strcmp(hdrs[i].name, hdrs[i - 1].name) == 0;
		if (same) {
			/* Repeated names: values joined with ',' on one line. */
			creq.len--; /* drop the '\n' */
			r = kbuf_printf(&creq, ",%s\n", hdrs[i].value);
		} else {
			r = kbuf_printf(&creq, "%s:%s\n", hdrs[i].name, hdrs[i].value);
			if (r == 0)
				r = kbuf_printf(&signed_headers, "%s%s",
						signed_headers.len ? ";" : "", hdrs[i].name);
		}
	}
	char payload_hash[65];
	sha256_hex(req->payload ? req->payload : "", req->payload ? req->payload_len : 0,
		   payload_hash);
	if (r == 0)
		r = kbuf_printf(&creq, "\n%s\n%s", signed_headers.data ? signed_headers.data : "",
				payload_hash);
	for (size_t k = 0; k < nh; k++) {
		free(hdrs[k].name);
		free(hdrs[k].value);
	}
	if (r < 0) {
		kbuf_done(&creq);
		kbuf_done(&signed_headers);
		if (err && err->code)
			return err->code;
		return kilt_error_setf(err, r, "sigv4: request too large to sign");
	}
	_cleanup_free_ char *canonical = kbuf_steal(&creq);
	_cleanup_free_ char *sh = kbuf_steal(&signed_headers);
	char creq_hash[65];
	sha256_hex(canonical, strlen(canonical), creq_hash);
	char date8[9];
	memcpy(date8, d, 8);
	date8[8] = '\0';
	_cleanup_free_ char *scope =
		xasprintf("%s/%s/%s/aws4_request", date8, req->region, req->service);
	_cleanup_free_ char *sts = xasprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", d, scope, creq_hash);

	_cleanup_free_ char *k0 = xasprintf("AWS4%s", req->secret_key);
	unsigned char k_date[32], k_region[32], k_service[32], k_signing[32], sig[32];
	hmac((const unsigned char *)k0, strlen(k0), date8, k_date);
	hmac(k_date, 32, req->region, k_region);
	hmac(k_region, 32, req->service, k_service);
	hmac(k_service, 32, "aws4_request", k_signing);
	hmac(k_signing, 32, sts, sig);
	explicit_bzero(k0, strlen(k0));
	char sig_hex[65];
	to_hex(sig, 32, sig_hex);

	*ret = (struct kilt_sigv4_result){
		.canonical_request = steal_pointer(&canonical),
		.string_to_sign = steal_pointer(&sts),
		.signature = xstrdup(sig_hex),
		.authorization = xasprintf(
			"AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
			req->access_key, scope, sh, sig_hex),
	};
	return 0;
}
