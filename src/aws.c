/* SPDX-License-Identifier: Apache-2.0 */
/* AWS credentials from the environment and SigV4-signed requests (aws.h): the one place that
 * turns a request into the headers AWS expects. */
#include <time.h>

#include "aws.h"
#include "util.h"

int aws_credentials_from_env(struct aws_credentials *ret)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID");
	const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *st = getenv("AWS_SESSION_TOKEN");
	if (!ak || !*ak || !sk || !*sk)
		return -ENOENT;
	*ret = (struct aws_credentials){
		.access_key = ak,
		.secret_key = sk,
		.session_token = st && *st ? st : NULL,
	};
	return 0;
}

const char *aws_region_from_env(void)
{
	const char *r = getenv("AWS_REGION");
	if (!r || !*r)
		r = getenv("AWS_DEFAULT_REGION");
	return r && *r ? r : NULL;
}

int aws_sign(const struct aws_credentials *creds, const struct aws_request *req,
	     char ***ret_headers, struct kilt_error *err)
{
	char amz_date[17];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
	size_t n_extra = 0;
	while (req->headers && req->headers[n_extra])
		n_extra++;
	_cleanup_free_ char *digest =
		req->content_sha256
			? kilt_digest_sha256(req->payload ? req->payload : "", req->payload_len)
			: NULL;
	const char *payload_sha = digest ? digest + 7 : NULL; /* past "sha256:" */

	/* what is signed: Host, X-Amz-Date, the request's headers, the payload hash */
	const char **sign = xcalloc(n_extra + 4, sizeof(*sign));
	size_t ns = 0;
	_cleanup_free_ char *h_host = xasprintf("Host:%s", req->host);
	_cleanup_free_ char *h_date = xasprintf("X-Amz-Date:%s", amz_date);
	_cleanup_free_ char *h_sha =
		payload_sha ? xasprintf("X-Amz-Content-Sha256:%s", payload_sha) : NULL;
	sign[ns++] = h_host;
	sign[ns++] = h_date;
	for (size_t i = 0; i < n_extra; i++)
		sign[ns++] = req->headers[i];
	if (h_sha)
		sign[ns++] = h_sha;
	struct kilt_sigv4_request sr = {
		.method = req->method,
		.path = req->path,
		.headers = sign,
		.payload = req->payload ? req->payload : "",
		.payload_len = req->payload_len,
		.region = req->region,
		.service = req->service,
		.amz_date = amz_date,
		.access_key = creds->access_key,
		.secret_key = creds->secret_key,
		.session_token = creds->session_token,
	};
	struct kilt_sigv4_result sig = { 0 };
	int r = kilt_sigv4_sign(&sr, &sig, err);
	free(sign);
	if (r < 0)
		return r;

	char **out = xcalloc(n_extra + 5, sizeof(*out));
	size_t no = 0;
	out[no++] = xasprintf("X-Amz-Date: %s", amz_date);
	for (size_t i = 0; i < n_extra; i++)
		out[no++] = xstrdup(req->headers[i]);
	if (payload_sha)
		out[no++] = xasprintf("X-Amz-Content-Sha256: %s", payload_sha);
	if (creds->session_token)
		out[no++] = xasprintf("X-Amz-Security-Token: %s", creds->session_token);
	out[no++] = xasprintf("Authorization: %s", sig.authorization);
	kilt_sigv4_result_done(&sig);
	*ret_headers = out;
	return 0;
}

void aws_headers_free(char **headers)
{
	if (!headers)
		return;
	for (char **h = headers; *h; h++) {
		if (strncmp(*h, "Authorization:", 14) == 0)
			explicit_bzero(*h, strlen(*h));
		free(*h);
	}
	free(headers);
}
