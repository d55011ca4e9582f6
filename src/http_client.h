/* SPDX-License-Identifier: Apache-2.0 */
/* The one HTTP client of the kilt binary, over libcurl: image registries (registry.c), recipe
 * downloads and S3 (cmd_cfn_macro.c) go through it. It owns what every outbound request must get
 * right: the TLS policy (verified HTTPS; plain HTTP or an unverified certificate only for hosts
 * named insecure), CA discovery (SSL_CERT_FILE, then the Amazon Linux and Debian bundles), time
 * budgets, bounded bodies, redirects followed hop by hop under the same policy (Authorization
 * dropped on another host), and libcurl's codes turned into negative errno values with a
 * message. No other file of src/ calls libcurl for these. */
#ifndef KILT_HTTP_CLIENT_H
#define KILT_HTTP_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"
#include "kilt.h"

struct http_options {
	/* "host[:port]" (lower case) allowed plain HTTP and an unverified certificate; borrowed */
	const char *const *insecure;
	size_t n_insecure;
	const char *ca_file; /* PEM bundle; NULL: http_ca_bundle() */
	/* "HOST:PORT:ADDRESS" name pins (curl's --resolve), NULL-terminated; may be NULL */
	const char *const *resolve;
	const char *user_agent; /* NULL: "kilt/<version>" */
	/* errors name the registry options that fix them (--insecure-registry, --ca-file) */
	bool registry_hints;
	/* a local peer (the Lambda runtime API on its loopback address): plain HTTP to any host,
	 * never through a proxy */
	bool local_peer;
	/* PEM text, copied, may be NULL: CAs trusted instead of ca_file (a kubeconfig's
	 * certificate-authority-data); a client certificate and its key for TLS client auth */
	const char *ca_pem, *client_cert_pem, *client_key_pem;
};

/* One client: one connection cache, one request at a time (give each thread its own). */
struct http_client;

/* -ELIBACC when libcurl cannot be loaded (libcurl_loader.c has said why on stderr). The options'
 * strings are copied. */
int http_client_new(const struct http_options *opts, struct http_client **ret,
		    struct kilt_error *err);
/* NULL is a no-op. */
void http_client_free(struct http_client *c);

struct http_request {
	const char *method; /* "GET" (NULL) or "POST" */
	const char *url; /* http:// or https:// */
	const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
	const char *body; /* POST body, may be NULL when body_len is 0 */
	size_t body_len;
	size_t max_body; /* a larger response body fails with -EFBIG */
	long timeout_ms; /* for the whole request, redirects included; 0: none */
	long budget_ms; /* the budget named when it runs out (0: timeout_ms) */
	int max_redirects; /* GET only; 0: a 3xx is returned as it is */
	/* a body over max_body is read and dropped (resp->body_dropped) instead of failing */
	bool drop_large_body;
	/* may be NULL: a 2xx body is handed to it as it arrives instead of being kept (a watch's
	 * stream); a return other than `n` stops the transfer (-ECANCELED) */
	size_t (*on_data)(void *userdata, const char *p, size_t n);
	void *on_data_userdata;
	/* may be NULL: the transfer stops (-ECANCELED) within a second of it becoming true */
	const atomic_bool *cancel;
};

struct http_response {
	long status;
	struct kbuf body;
	struct kbuf headers; /* the final response's header lines, "Name: value\r\n" */
	bool body_dropped; /* drop_large_body: the body was over max_body and is empty */
};

/* Sends `req`. Returns 0 with `ret` filled (any HTTP status), or a negative errno with `err`
 * filled: -EPERM plain HTTP to a host not named insecure, -ETIMEDOUT, -EFBIG, -EPROTO TLS,
 * -ECONNREFUSED, -ELOOP too many redirects, -EHOSTUNREACH any other transport failure. */
int http_send(struct http_client *c, const struct http_request *req, struct http_response *ret,
	      struct kilt_error *err);
/* The value of header `name` (any case) of the final response, trimmed, cut to `size`; false
 * when absent. */
bool http_response_header(const struct http_response *resp, const char *name, char *buf,
			  size_t size);
/* Calls `fn` with each header line of the final response (without its line end). */
void http_response_each_header(const struct http_response *resp,
			       void (*fn)(void *userdata, const char *line, size_t len),
			       void *userdata);
void http_response_done(struct http_response *resp);

/* The CA bundle to use when none is given: SSL_CERT_FILE, else the first readable of Amazon
 * Linux's /etc/pki/tls/certs/ca-bundle.crt and Debian's /etc/ssl/certs/ca-certificates.crt (the
 * bundled libcurl of the Lambda zip was built for Debian's path); NULL: libcurl's default. */
const char *http_ca_bundle(void);

/* "host[:port]" of an http(s) URL, lower case, without user info. */
void http_url_host(const char *url, char *buf, size_t size);

#endif
