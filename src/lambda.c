/* SPDX-License-Identifier: Apache-2.0 */
/* The Lambda Runtime API client (see lambda.h): plain HTTP/1.1 to the local runtime endpoint over
 * one keep-alive connection. The transport is lambda_http.c (libc sockets) unless
 * KILT_RUNTIME_API_CLIENT=curl selects libcurl, which was the only transport until the cold-start
 * work measured libcurl's loading at about 3 ms of every start (docs/cloudformation.md); it stays
 * as a fallback, loaded only when chosen (libcurl_loader.c). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_client.h"
#include "util.h"
#include "lambda.h"
#include "lambda_http.h"

#define API_PREFIX "/2018-06-01/runtime"
/* Answers to the runtime API are local; anything slower means the API is gone. */
#define POST_TIMEOUT_MS 30000

struct lambda_client {
	struct lambda_http *http; /* owned; NULL when libcurl is the transport */
	struct http_client *curl; /* owned; NULL unless libcurl is the transport */
	char *base; /* owned: "http://host:port" (libcurl) */
};

void lambda_invocation_done(struct lambda_invocation *inv)
{
	if (!inv)
		return;
	free(inv->body);
	*inv = (struct lambda_invocation){ 0 };
}

int lambda_client_new(const char *api, struct lambda_client **ret, struct kilt_error *err)
{
	if (!api || !*api || strlen(api) > 256 || strpbrk(api, "/ \t\r\n"))
		return kilt_error_setf(err, -EINVAL,
				       "AWS_LAMBDA_RUNTIME_API: expected host:port, got \"%.64s\"",
				       api ? api : "");
	const char *transport = getenv("KILT_RUNTIME_API_CLIENT");
	if (!transport || !*transport)
		transport = "socket";
	struct lambda_client *c = xcalloc(1, sizeof(*c));
	if (strcmp(transport, "socket") == 0) {
		int r = lambda_http_new(api, &c->http, err);
		if (r < 0) {
			free(c);
			return r;
		}
	} else if (strcmp(transport, "curl") == 0) {
		const struct http_options o = { .local_peer = true };
		int r = http_client_new(&o, &c->curl, err);
		if (r < 0) {
			free(c);
			return r;
		}
		c->base = xasprintf("http://%s", api);
	} else {
		free(c);
		return kilt_error_setf(err, -EINVAL,
				       "KILT_RUNTIME_API_CLIENT: expected socket or curl, got "
				       "\"%.32s\"",
				       transport);
	}
	*ret = c;
	return 0;
}

void lambda_client_free(struct lambda_client *c)
{
	if (!c)
		return;
	lambda_http_free(c->http);
	http_client_free(c->curl);
	free(c->base);
	free(c);
}

/* Copies the value of header `name` from `line` into dst when it matches. */
static void header_value(const char *line, size_t len, const char *name, char *dst, size_t size)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	const char *v = line + nl + 1;
	const char *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	size_t n = (size_t)(end - v);
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* The response headers of invocation/next that describe the invocation. */
static void invocation_header(void *userdata, const char *line, size_t len)
{
	struct lambda_invocation *inv = userdata;
	char deadline[32] = "";
	header_value(line, len, "Lambda-Runtime-Aws-Request-Id", inv->request_id,
		     sizeof(inv->request_id));
	header_value(line, len, "Lambda-Runtime-Trace-Id", inv->trace_id, sizeof(inv->trace_id));
	header_value(line, len, "Lambda-Runtime-Deadline-Ms", deadline, sizeof(deadline));
	if (*deadline) {
		char *endp;
		errno = 0;
		long long v = strtoll(deadline, &endp, 10);
		if (!errno && !*endp && v > 0)
			inv->deadline_ms = v;
	}
}

/* ---- the libcurl transport ----------------------------------------------------------------- */

static int curl_request(struct lambda_client *c, const char *path, const char *headers,
			const char *body, size_t len, int timeout_ms, struct lambda_response *resp,
			struct kilt_error *err)
{
	_cleanup_free_ char *url = xasprintf("%s%s", c->base, path);
	/* "Name: value\r\n" lines, as lambda_http_request takes them */
	_cleanup_free_ char *extra = headers ? xstrdup(headers) : NULL;
	const char *list[8] = { NULL };
	size_t n = 0;
	if (body)
		list[n++] = "Content-Type: application/json";
	for (char *line = extra, *next; line && *line && n + 1 < ARRAY_SIZE(list); line = next) {
		next = strstr(line, "\r\n");
		if (next) {
			*next = '\0';
			next += 2;
		}
		list[n++] = line;
	}
	const struct http_request req = {
		.method = body ? "POST" : "GET",
		.url = url,
		.headers = list,
		.body = body,
		.body_len = len,
		.max_body = resp->body.max,
		.timeout_ms = timeout_ms,
		.drop_large_body = true, /* as lambda_http.c does: read, dropped, reported */
	};
	struct http_response hr;
	int r = http_send(c->curl, &req, &hr, err);
	if (r < 0)
		return r;
	resp->status = hr.status;
	kbuf_done(&resp->body);
	resp->body = hr.body;
	resp->too_big = hr.body_dropped;
	if (resp->on_header)
		http_response_each_header(&hr, resp->on_header, resp->userdata);
	kbuf_done(&hr.headers);
	return 0;
}

/* One request to API_PREFIX/<path>: GET without a body, POST with one. */
static int exchange(struct lambda_client *c, const char *path, const char *body, size_t len,
		    const char *error_type, int timeout_ms, struct lambda_response *resp,
		    struct kilt_error *err)
{
	_cleanup_free_ char *full = xasprintf(API_PREFIX "/%s", path);
	_cleanup_free_ char *headers =
		error_type ? xasprintf("Lambda-Runtime-Function-Error-Type: %s\r\n", error_type)
			   : NULL;
	int r = c->http ? lambda_http_request(c->http, body ? "POST" : "GET", full, headers, body,
					      len, timeout_ms, resp, err)
			: curl_request(c, full, headers, body, len, timeout_ms, resp, err);
	return r < 0 ? kilt_error_prefix(err, "runtime API") : 0;
}

int lambda_next(struct lambda_client *c, size_t max, struct lambda_invocation *ret,
		struct kilt_error *err)
{
	struct lambda_invocation inv = { 0 };
	struct lambda_response resp = { .on_header = invocation_header, .userdata = &inv };
	kbuf_init(&resp.body, max);
	/* No timeout: the API answers when an event arrives (the process is frozen meanwhile). */
	int r = exchange(c, "invocation/next", NULL, 0, NULL, 0, &resp, err);
	if (r >= 0 && resp.too_big)
		r = kilt_error_setf(err, -E2BIG,
				    "runtime API: invocation/next: body over %zu bytes", max);
	else if (r >= 0 && resp.status != 200)
		r = kilt_error_setf(err, -EPROTO, "runtime API: invocation/next: HTTP %ld",
				    resp.status);
	/* The id goes into URL paths: accept only what Lambda uses (UUIDs). */
	if (r >= 0 && (!inv.request_id[0] ||
		       strspn(inv.request_id, "0123456789abcdefABCDEF-") != strlen(inv.request_id)))
		r = kilt_error_setf(err, -EPROTO,
				    "runtime API: invocation/next: missing or malformed "
				    "Lambda-Runtime-Aws-Request-Id");
	if (r < 0) {
		kbuf_done(&resp.body);
		/* An oversized event still gets answered: hand out its request id. */
		if (r == -E2BIG && inv.request_id[0]) {
			*ret = inv;
			ret->body = xstrdup("");
		}
		return r;
	}
	inv.len = resp.body.len;
	inv.body = kbuf_steal(&resp.body);
	*ret = inv;
	return 0;
}

static int post(struct lambda_client *c, const char *path, const char *body, size_t len,
		const char *error_type, struct kilt_error *err)
{
	struct lambda_response resp = { 0 };
	kbuf_init(&resp.body, 64 * 1024);
	int r = exchange(c, path, body, len, error_type, POST_TIMEOUT_MS, &resp, err);
	if (r >= 0 && resp.status != 202)
		r = kilt_error_setf(err, resp.status == 413 ? -E2BIG : -EPROTO,
				    "runtime API: %s: HTTP %ld: %.300s", path, resp.status,
				    resp.body.data ? resp.body.data : "");
	kbuf_done(&resp.body);
	return r;
}

int lambda_respond(struct lambda_client *c, const char *request_id, const char *body, size_t len,
		   struct kilt_error *err)
{
	_cleanup_free_ char *path = xasprintf("invocation/%s/response", request_id);
	return post(c, path, body, len, NULL, err);
}

static char *error_body(const char *type, const char *message)
{
	json_auto_t *o = json_object();
	json_object_set_new(o, "errorMessage", json_string(message ? message : ""));
	json_object_set_new(o, "errorType", json_string(type));
	char *s = json_dumps(o, JSON_COMPACT);
	if (!s)
		abort();
	return s;
}

int lambda_invocation_error(struct lambda_client *c, const char *request_id, const char *type,
			    const char *message, struct kilt_error *err)
{
	_cleanup_free_ char *path = xasprintf("invocation/%s/error", request_id);
	_cleanup_free_ char *body = error_body(type, message);
	return post(c, path, body, strlen(body), type, err);
}

int lambda_init_error(struct lambda_client *c, const char *type, const char *message,
		      struct kilt_error *err)
{
	_cleanup_free_ char *body = error_body(type, message);
	return post(c, "init/error", body, strlen(body), type, err);
}
