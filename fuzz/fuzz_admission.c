/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the webhook's AdmissionReview decoder and everything the server does with a body
 * before the Pod engine: decode, scope, uid salvage of a refused review, and the answer, which
 * must always be JSON that echoes the uid. */
#include <stdint.h>

#include "internal.h"
#include "kilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_answer(const char *uid, bool allowed, const char *warning)
{
	const char *warnings[1] = { warning };
	struct kilt_admission_answer a = {
		.uid = uid,
		.allowed = allowed,
		.code = allowed ? 0 : 400,
		.message = allowed ? NULL : warning,
		.warnings = warnings,
		.n_warnings = allowed ? 1 : 0,
	};
	size_t len = 0;
	char *out = kilt_admission_answer_encode(&a, &len);
	json_t *j = json_loadb(out, len, 0, NULL);
	const json_t *resp = json_object_get(j, "response");
	if (!j || strcmp(json_string_value(json_object_get(resp, "uid")), uid) != 0 ||
	    json_is_true(json_object_get(resp, "allowed")) != allowed)
		abort(); /* every answer is a valid review echoing the uid */
	json_decref(j);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 };
	if (kilt_admission_review_parse(text, size, &rv, &err) < 0) {
		char uid[KILT_ADMISSION_MAX_UID + 1];
		kilt_admission_uid_salvage(text, size, uid, sizeof(uid));
		check_answer(uid, true, err.msg);
		check_answer(uid, false, err.msg);
		return 0;
	}
	enum kilt_admission_scope scope = kilt_admission_scope(&rv);
	if (scope == KILT_ADMISSION_IN_SCOPE && !rv.object)
		abort(); /* a pod being created always has its object */
	check_answer(rv.uid, true, kilt_admission_scope_name(scope));
	kilt_admission_review_done(&rv);
	return 0;
}
