/* SPDX-License-Identifier: Apache-2.0 */
/* Requests to AWS APIs: credentials from the environment (what Lambda, ECS and most tools
 * provide) and a Signature Version 4 signed request (lib/sigv4.c computes the signature). Used
 * by ECR's GetAuthorizationToken (registry.c) and S3 recipes (cmd_cfn_macro.c). */
#ifndef KILT_AWS_H
#define KILT_AWS_H

#include <stdbool.h>
#include <stddef.h>

#include "kilt.h"

struct aws_credentials {
	const char *access_key; /* borrowed from the environment */
	const char *secret_key; /* borrowed from the environment */
	const char *session_token; /* borrowed, NULL when there is none */
};

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. -ENOENT when the key or the
 * secret is unset or empty (nothing else is looked at: no files, no instance metadata). */
int aws_credentials_from_env(struct aws_credentials *ret);
/* AWS_REGION, else AWS_DEFAULT_REGION; NULL when neither is set. */
const char *aws_region_from_env(void);

struct aws_request {
	const char *method; /* "GET", "POST" */
	const char *host; /* host[:port] the request goes to (signed as Host) */
	const char *path; /* as sent, absolute */
	const char *region, *service;
	/* further "Name:value" headers to sign and send, NULL-terminated; may be NULL */
	const char *const *headers;
	const char *payload; /* may be NULL when payload_len is 0 */
	size_t payload_len;
	bool content_sha256; /* also sign and send X-Amz-Content-Sha256 (S3) */
};

/* Signs `req` with `creds` at the current time. `ret_headers` receives an owned, NULL-terminated
 * array of the header lines to send with it ("Name: value": X-Amz-Date, the request's headers,
 * X-Amz-Content-Sha256 and X-Amz-Security-Token when they apply, Authorization); Host is left to
 * the HTTP client. Free with aws_headers_free. */
int aws_sign(const struct aws_credentials *creds, const struct aws_request *req,
	     char ***ret_headers, struct kilt_error *err);
/* Frees what aws_sign returned, wiping the Authorization line; NULL is a no-op. */
void aws_headers_free(char **headers);

#endif
