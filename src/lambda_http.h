/* SPDX-License-Identifier: Apache-2.0 */
/* The transports under the Lambda Runtime API client (lambda.c): a small HTTP/1.1 client over a
 * plain socket (lambda_http.c, the default: it needs nothing but libc, so the runtime's cold start
 * does not load libcurl) and one over libcurl (lambda.c, selected with
 * KILT_RUNTIME_API_CLIENT=curl). Both keep one connection alive across requests. */
#ifndef KILT_LAMBDA_HTTP_H
#define KILT_LAMBDA_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "kilt.h"
#include "util.h"

/* What one request got back. The caller sets `body` up with kbuf_init (its maximum bounds the
 * body) and `on_header`, which sees every response header line without its line end. */
struct lambda_response {
	long status;
	struct kbuf body;
	bool too_big; /* the body went over body.max; what was read is discarded */
	void (*on_header)(void *userdata, const char *line, size_t len);
	void *userdata;
};

struct lambda_http;

/* `api` is host:port (or [v6]:port). Connects lazily, on the first request. */
int lambda_http_new(const char *api, struct lambda_http **ret, struct kilt_error *err);
void lambda_http_free(struct lambda_http *h);

/* Sends one request and reads its response into `resp`. `body` may be NULL (no body). `headers`
 * are extra header lines, each ending in "\r\n" (may be NULL). timeout_ms 0 waits for ever (the
 * runtime API holds invocation/next open until an event arrives). A connection the server closed
 * while idle is reopened and the request sent again, once. */
int lambda_http_request(struct lambda_http *h, const char *method, const char *path,
			const char *headers, const char *body, size_t len, int timeout_ms,
			struct lambda_response *resp, struct kilt_error *err);

#endif
