/* SPDX-License-Identifier: Apache-2.0 */
/* A client of the AWS Lambda Runtime API (the custom-runtime side): fetch the next invocation,
 * answer it, report an invocation or init error. One libcurl easy handle is reused so the
 * connection to the runtime API stays alive across invocations. */
#ifndef KILT_LAMBDA_H
#define KILT_LAMBDA_H

#include <stddef.h>
#include <stdint.h>

#include "kilt.h"

struct lambda_client;

/* One invocation. Caller-owned; release with lambda_invocation_done(). */
struct lambda_invocation {
	char *body; /* owned, NUL-terminated */
	size_t len;
	char request_id[128]; /* Lambda-Runtime-Aws-Request-Id */
	char trace_id[512]; /* Lambda-Runtime-Trace-Id, "" when absent */
	int64_t deadline_ms; /* Lambda-Runtime-Deadline-Ms (Unix ms), 0 when absent */
};
void lambda_invocation_done(struct lambda_invocation *inv);

/* `api` is host:port (AWS_LAMBDA_RUNTIME_API). */
int lambda_client_new(const char *api, struct lambda_client **ret, struct kilt_error *err);
void lambda_client_free(struct lambda_client *c);

/* Blocks until the next invocation arrives (GET /2018-06-01/runtime/invocation/next). Bodies over
 * `max` bytes fail with -E2BIG (the invocation's request id is still filled so it can be answered
 * with an error). */
int lambda_next(struct lambda_client *c, size_t max, struct lambda_invocation *ret,
		struct kilt_error *err);
/* POST .../invocation/<id>/response */
int lambda_respond(struct lambda_client *c, const char *request_id, const char *body, size_t len,
		   struct kilt_error *err);
/* POST .../invocation/<id>/error with {errorMessage, errorType}. */
int lambda_invocation_error(struct lambda_client *c, const char *request_id, const char *type,
			    const char *message, struct kilt_error *err);
/* POST /2018-06-01/runtime/init/error: the runtime cannot start. */
int lambda_init_error(struct lambda_client *c, const char *type, const char *message,
		      struct kilt_error *err);

#endif
