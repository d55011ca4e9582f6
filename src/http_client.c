/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP client over libcurl (http_client.h): policy, CA discovery, budgets, bounded bodies,
 * redirects hop by hop and libcurl's codes as errno values. */
#include <ctype.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "http_client.h"

#define MAX_HEADER_BYTES (64u << 10)

struct http_client {
	CURL *curl; /* owned */
	char **insecure; /* owned */
	size_t n_insecure;
	char *ca_file; /* owned, may be NULL */
	struct curl_slist *resolve; /* owned */
	char *user_agent; /* owned */
	bool registry_hints;
	bool local_peer;
	char *ca_pem, *cert_pem, *key_pem; /* owned, may be NULL */
};

const char *http_ca_bundle(void)
{
	const char *env = getenv("SSL_CERT_FILE");
	if (env && *env)
		return env;
	static const char *const paths[] = {
		"/etc/pki/tls/certs/ca-bundle.crt", /* Amazon Linux, Fedora, RHEL */
		"/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine */
	};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (access(paths[i], R_OK) == 0)
			return paths[i];
	return NULL;
}

void http_url_host(const char *url, char *buf, size_t size)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t n = strcspn(p, "/?#");
	const char *at = memchr(p, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	snprintf(buf, size, "%.*s", (int)n, p);
	for (char *q = buf; *q; q++)
		*q = (char)tolower((unsigned char)*q);
}

int http_client_new(const struct http_options *opts, struct http_client **ret,
		    struct kilt_error *err)
{
	CURL *h = curl_easy_init();
	if (!h)
		return kilt_error_setf(err, -ELIBACC, "libcurl: cannot create a handle");
	struct http_client *c = xcalloc(1, sizeof(*c));
	c->curl = h;
	c->insecure = xcalloc(opts->n_insecure + 1, sizeof(*c->insecure));
	for (size_t i = 0; i < opts->n_insecure; i++)
		c->insecure[c->n_insecure++] = xstrdup(opts->insecure[i]);
	const char *ca = opts->ca_file ? opts->ca_file : http_ca_bundle();
	c->ca_file = ca ? xstrdup(ca) : NULL;
	for (const char *const *r = opts->resolve; r && *r; r++)
		c->resolve = curl_slist_append(c->resolve, *r);
	c->user_agent = xstrdup(opts->user_agent ? opts->user_agent : "kilt/" KILT_VERSION);
	c->registry_hints = opts->registry_hints;
	c->local_peer = opts->local_peer;
	c->ca_pem = opts->ca_pem ? xstrdup(opts->ca_pem) : NULL;
	c->cert_pem = opts->client_cert_pem ? xstrdup(opts->client_cert_pem) : NULL;
	c->key_pem = opts->client_key_pem ? xstrdup(opts->client_key_pem) : NULL;
	*ret = c;
	return 0;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	for (size_t i = 0; i < c->n_insecure; i++)
		free(c->insecure[i]);
	free(c->insecure);
	free(c->ca_file);
	curl_slist_free_all(c->resolve);
	free(c->user_agent);
	free(c->ca_pem);
	free(c->cert_pem);
	if (c->key_pem)
		explicit_bzero(c->key_pem, strlen(c->key_pem));
	free(c->key_pem);
	free(c);
}

static bool is_insecure(const struct http_client *c, const char *host)
{
	for (size_t i = 0; i < c->n_insecure; i++)
		if (strcasecmp(c->insecure[i], host) == 0)
			return true;
	return false;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- one request --------------------------------------------------------------------------- */

struct sink {
	struct http_response *resp;
	bool body_overflow;
	bool drop; /* drop_large_body */
	const struct http_request *req;
	CURL *h;
	bool stopped; /* on_data or cancel stopped the transfer */
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;
	if (s->req->on_data) {
		long status = 0;
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			if (s->req->on_data(s->req->on_data_userdata, p, n) != n) {
				s->stopped = true;
				return 0;
			}
			return n;
		}
	}
	if (s->resp->body_dropped)
		return n;
	if (kbuf_add(&s->resp->body, p, n) < 0) {
		s->body_overflow = true;
		if (!s->drop)
			return 0;
		kbuf_done(&s->resp->body);
		s->resp->body_dropped = true;
	}
	return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	struct sink *s = userdata;
	if (s->req->cancel && atomic_load(s->req->cancel)) {
		s->stopped = true;
		return 1;
	}
	return 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* a new response (after a 100 or a redirect): forget the previous headers */
		kbuf_done(&s->resp->headers);
		return n;
	}
	(void)kbuf_add(&s->resp->headers, p, n); /* beyond the maximum, later headers are lost */
	return n;
}

bool http_response_header(const struct http_response *resp, const char *name, char *buf,
			  size_t size)
{
	size_t nl = strlen(name);
	const char *p = resp->headers.data, *end = p ? p + resp->headers.len : NULL;
	while (p && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		if (n > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl + 1;
			size_t vn = n - nl - 1;
			while (vn && (*v == ' ' || *v == '\t')) {
				v++;
				vn--;
			}
			while (vn && (v[vn - 1] == '\r' || v[vn - 1] == ' ' || v[vn - 1] == '\t'))
				vn--;
			snprintf(buf, size, "%.*s", (int)vn, v);
			return true;
		}
		p = eol ? eol + 1 : end;
	}
	return false;
}

void http_response_each_header(const struct http_response *resp,
			       void (*fn)(void *userdata, const char *line, size_t len),
			       void *userdata)
{
	const char *p = resp->headers.data, *end = p ? p + resp->headers.len : NULL;
	while (p && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		size_t l = n;
		while (l && (p[l - 1] == '\r' || p[l - 1] == '\n'))
			l--;
		if (l)
			fn(userdata, p, l);
		p = eol ? eol + 1 : end;
	}
}

void http_response_done(struct http_response *resp)
{
	kbuf_done(&resp->body);
	kbuf_done(&resp->headers);
}

/* One request, redirects not followed; `*ret_location` receives where a 3xx points (owned). */
static int send_once(struct http_client *c, const struct http_request *req, const char *url,
		     const struct curl_slist *headers, long timeout_ms, struct http_response *resp,
		     char **ret_location, struct kilt_error *err)
{
	const char *method = req->method ? req->method : "GET";
	long budget = req->budget_ms ? req->budget_ms : req->timeout_ms;
	char host[300];
	http_url_host(url, host, sizeof(host));
	bool insecure = is_insecure(c, host);
	bool plain = strncmp(url, "http://", 7) == 0;
	bool plain_ok = insecure || c->local_peer;
	if (!plain && strncmp(url, "https://", 8) != 0)
		return kilt_error_setf(err, -EINVAL, "%s %.300s: not an http(s) URL", method, url);
	if (plain && !plain_ok)
		return kilt_error_setf(err, -EPERM,
				       "refusing plain HTTP to %s (add --insecure-registry %s to "
				       "allow it)",
				       host, host);
	CURL *h = c->curl;
	curl_easy_reset(h); /* keeps the connection cache */
	*resp = (struct http_response){ 0 };
	kbuf_init(&resp->body, req->max_body);
	kbuf_init(&resp->headers, MAX_HEADER_BYTES);
	struct sink sink = { .resp = resp, .drop = req->drop_large_body, .req = req, .h = c->curl };
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (timeout_ms > 0) {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
	/* http_send follows redirects itself: each hop is held to the policy above */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, plain_ok ? "http,https" : "https");
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	if (c->local_peer)
		curl_easy_setopt(h, CURLOPT_PROXY, "");
	/* One request at a time per handle: HTTP/2 buys nothing here and measured slower. */
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	if (c->ca_pem) {
		struct curl_blob b = { c->ca_pem, strlen(c->ca_pem), CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	} else if (c->ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	}
	if (c->cert_pem && c->key_pem) {
		struct curl_blob cb = { c->cert_pem, strlen(c->cert_pem), CURL_BLOB_COPY };
		struct curl_blob kb = { c->key_pem, strlen(c->key_pem), CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
	}
	if (req->cancel) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, &sink);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (c->resolve)
		curl_easy_setopt(h, CURLOPT_RESOLVE, c->resolve);
	if (insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	CURLcode cr = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	if (cr != CURLE_OK) {
		http_response_done(resp);
		const char *what = errbuf[0] ? errbuf : curl_easy_strerror(cr);
		if (sink.stopped)
			return kilt_error_setf(err, -ECANCELED, "%s %s: stopped", method, url);
		if (cr == CURLE_OPERATION_TIMEDOUT)
			return kilt_error_setf(err, -ETIMEDOUT,
					       "%s %s: timed out (time budget %ld ms): %s", method,
					       url, budget, what);
		if (cr == CURLE_WRITE_ERROR && sink.body_overflow)
			return kilt_error_setf(err, -EFBIG, "%s %s: response larger than %zu bytes",
					       method, url, req->max_body);
		if (cr == CURLE_PEER_FAILED_VERIFICATION || cr == CURLE_SSL_CACERT_BADFILE ||
		    cr == CURLE_SSL_CONNECT_ERROR || cr == CURLE_SSL_CERTPROBLEM) {
			if (c->registry_hints)
				return kilt_error_setf(
					err, -EPROTO,
					"%s %s: TLS: %s (use --ca-file for a private CA, or "
					"--insecure-registry %s to skip verification)",
					method, url, what, host);
			return kilt_error_setf(err, -EPROTO, "%s %s: TLS: %s", method, url, what);
		}
		return kilt_error_setf(err,
				       cr == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EHOSTUNREACH,
				       "%s %s: %s", method, url, what);
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	char *loc = NULL;
	*ret_location = NULL;
	if (resp->status >= 300 && resp->status < 400 &&
	    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
		*ret_location = xstrdup(loc);
	return 0;
}

int http_send(struct http_client *c, const struct http_request *req, struct http_response *ret,
	      struct kilt_error *err)
{
	const char *method = req->method ? req->method : "GET";
	int64_t deadline = req->timeout_ms > 0 ? now_ms() + req->timeout_ms : 0;
	char first_host[300];
	http_url_host(req->url, first_host, sizeof(first_host));
	struct curl_slist *all = NULL,
			  *kept = NULL; /* owned: the headers, and without Authorization */
	for (const char *const *h = req->headers; h && *h; h++) {
		all = curl_slist_append(all, *h);
		if (strncasecmp(*h, "Authorization:", 14) != 0)
			kept = curl_slist_append(kept, *h);
	}
	if (strcmp(method, "POST") == 0) { /* no 100-continue round trip */
		all = curl_slist_append(all, "Expect:");
		kept = curl_slist_append(kept, "Expect:");
	}
	const struct curl_slist *headers = all;
	_cleanup_free_ char *url = xstrdup(req->url);
	int r;
	for (int hop = 0;; hop++) {
		long left = req->timeout_ms;
		if (deadline) {
			int64_t l = deadline - now_ms();
			left = l < 1 ? 1 : (long)l;
		}
		char *location = NULL;
		r = send_once(c, req, url, headers, left, ret, &location, err);
		if (r < 0) {
			if (hop > 0)
				kilt_error_prefix(err, "redirected from %s", req->url);
			break;
		}
		if (!location || strcmp(method, "GET") != 0 || req->max_redirects <= 0) {
			free(location);
			break;
		}
		if (hop == req->max_redirects) {
			free(location);
			http_response_done(ret);
			r = kilt_error_setf(err, -ELOOP, "GET %s: more than %d redirects", req->url,
					    req->max_redirects);
			break;
		}
		http_response_done(ret);
		free(url);
		url = location;
		char host[300];
		http_url_host(url, host, sizeof(host));
		if (strcmp(host, first_host) != 0)
			headers = kept; /* credentials stay with the host they were meant for */
	}
	for (struct curl_slist *e = all; e; e = e->next)
		explicit_bzero(e->data, strlen(e->data)); /* secrets among them */
	curl_slist_free_all(all);
	curl_slist_free_all(kept);
	return r;
}
