/* SPDX-License-Identifier: Apache-2.0 */
/* The Lambda Runtime API client (see lambda.h): plain HTTP/1.1 to the local runtime endpoint,
 * with one libcurl easy handle so the keep-alive connection is reused. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "internal.h"
#include "lambda.h"

#define API_PREFIX "/2018-06-01/runtime"

struct lambda_client {
	CURL *curl; /* owned */
	char *base; /* owned: "http://host:port/2018-06-01/runtime" */
	char curl_err[CURL_ERROR_SIZE];
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
	static bool initialized;
	if (!initialized) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return kilt_error_setf(err, -EIO, "libcurl: global init failed");
		initialized = true;
	}
	CURL *curl = curl_easy_init();
	if (!curl)
		return kilt_error_setf(err, -ENOMEM, "libcurl: cannot create a handle");
	struct lambda_client *c = xcalloc(1, sizeof(*c));
	c->curl = curl;
	c->base = xasprintf("http://%s" API_PREFIX, api);
	*ret = c;
	return 0;
}

void lambda_client_free(struct lambda_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c->base);
	free(c);
}

struct exchange {
	struct kbuf body;
	bool too_big;
	struct lambda_invocation *inv; /* borrowed, may be NULL: headers land here */
};

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	struct exchange *x = userdata;
	size_t len = size * n;
	if (kbuf_add(&x->body, p, len) < 0) {
		x->too_big = true;
		return 0; /* aborts the transfer */
	}
	return len;
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

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	struct exchange *x = userdata;
	size_t len = size * n;
	if (x->inv) {
		char deadline[32] = "";
		header_value(p, len, "Lambda-Runtime-Aws-Request-Id", x->inv->request_id,
			     sizeof(x->inv->request_id));
		header_value(p, len, "Lambda-Runtime-Trace-Id", x->inv->trace_id,
			     sizeof(x->inv->trace_id));
		header_value(p, len, "Lambda-Runtime-Deadline-Ms", deadline, sizeof(deadline));
		if (*deadline) {
			char *endp;
			errno = 0;
			long long v = strtoll(deadline, &endp, 10);
			if (!errno && !*endp && v > 0)
				x->inv->deadline_ms = v;
		}
	}
	return len;
}

/* One request on the shared handle; fills ret_status. */
static int perform(struct lambda_client *c, const char *url, const char *body, size_t len,
		   const char *error_type, struct exchange *x, long *ret_status,
		   struct kilt_error *err)
{
	CURL *h = c->curl;
	/* curl_easy_reset keeps the connection cache: the keep-alive connection survives. */
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* the runtime API is local: never a proxy */
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	struct curl_slist *headers = NULL;
	_cleanup_free_ char *type_header = NULL;
	if (body) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
		headers = curl_slist_append(headers, "Content-Type: application/json");
		/* No 100-continue round trip for large replies. */
		headers = curl_slist_append(headers, "Expect:");
		if (error_type) {
			type_header =
				xasprintf("Lambda-Runtime-Function-Error-Type: %s", error_type);
			headers = curl_slist_append(headers, type_header);
		}
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	}
	c->curl_err[0] = '\0';
	CURLcode rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	if (x->too_big)
		return kilt_error_setf(err, -E2BIG, "runtime API: %s: body over %zu bytes", url,
				       x->body.max);
	if (rc != CURLE_OK)
		return kilt_error_setf(err, -EIO, "runtime API: %s: %s", url,
				       c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
	return 0;
}

int lambda_next(struct lambda_client *c, size_t max, struct lambda_invocation *ret,
		struct kilt_error *err)
{
	struct lambda_invocation inv = { 0 };
	struct exchange x = { .inv = &inv };
	kbuf_init(&x.body, max);
	_cleanup_free_ char *url = xasprintf("%s/invocation/next", c->base);
	long status = 0;
	int r = perform(c, url, NULL, 0, NULL, &x, &status, err);
	if (r >= 0 && status != 200)
		r = kilt_error_setf(err, -EPROTO, "runtime API: invocation/next: HTTP %ld", status);
	/* The id goes into URL paths: accept only what Lambda uses (UUIDs). */
	if (r >= 0 && (!inv.request_id[0] ||
		       strspn(inv.request_id, "0123456789abcdefABCDEF-") != strlen(inv.request_id)))
		r = kilt_error_setf(err, -EPROTO,
				    "runtime API: invocation/next: missing or malformed "
				    "Lambda-Runtime-Aws-Request-Id");
	if (r < 0) {
		kbuf_done(&x.body);
		/* An oversized event still gets answered: hand out its request id. */
		if (r == -E2BIG && inv.request_id[0]) {
			*ret = inv;
			ret->body = xstrdup("");
		}
		return r;
	}
	inv.len = x.body.len;
	inv.body = kbuf_steal(&x.body);
	*ret = inv;
	return 0;
}

static int post(struct lambda_client *c, const char *path, const char *body, size_t len,
		const char *error_type, struct kilt_error *err)
{
	struct exchange x = { 0 };
	kbuf_init(&x.body, 64 * 1024);
	_cleanup_free_ char *url = xasprintf("%s/%s", c->base, path);
	long status = 0;
	int r = perform(c, url, body, len, error_type, &x, &status, err);
	if (r >= 0 && status != 202)
		r = kilt_error_setf(err, status == 413 ? -E2BIG : -EPROTO,
				    "runtime API: %s: HTTP %ld: %.300s", path, status,
				    x.body.data ? x.body.data : "");
	kbuf_done(&x.body);
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
