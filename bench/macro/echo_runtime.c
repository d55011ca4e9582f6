/* SPDX-License-Identifier: Apache-2.0 */
/* The floor for bench/macro: a Lambda custom runtime that answers every CloudFormation macro event
 * by echoing its fragment unchanged ({requestId, status: success, fragment}). It uses the same
 * runtime API client as `kilt cfn-macro` (src/lambda.c: one libcurl handle, keep-alive) and the
 * same JSON library, so the difference to the macro is the macro's own work. */
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "lambda.h"

int main(void)
{
	const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
	struct lambda_client *c = NULL;
	struct kilt_error err = { 0 };
	if (!api || lambda_client_new(api, &c, &err) < 0) {
		fprintf(stderr, "echo-runtime: %s\n",
			api ? err.msg : "AWS_LAMBDA_RUNTIME_API unset");
		return 1;
	}
	for (;;) {
		struct lambda_invocation inv = { 0 };
		if (lambda_next(c, KILT_MACRO_MAX_EVENT + 65536, &inv, &err) < 0) {
			fprintf(stderr, "echo-runtime: %s\n", err.msg);
			break;
		}
		json_t *ev = json_loadb(inv.body, inv.len, 0, NULL);
		json_t *reply = json_pack("{s:O?, s:s, s:O?}", "requestId",
					  json_object_get(ev, "requestId"), "status", "success",
					  "fragment", json_object_get(ev, "fragment"));
		char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
		if (!text || lambda_respond(c, inv.request_id, text, strlen(text), &err) < 0)
			fprintf(stderr, "echo-runtime: %s\n", text ? err.msg : "bad event");
		free(text);
		json_decref(reply);
		json_decref(ev);
		lambda_invocation_done(&inv);
	}
	lambda_client_free(c);
	return 1;
}
