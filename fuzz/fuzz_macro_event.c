/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the CloudFormation macro's event decoder, per-stack settings resolution (Transform
 * parameters, Mappings.KiltSettings, an environment layer) and reply building (lib/macro.c). */
#include <stdint.h>

#include "internal.h"
#include "kilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kilt_macro_event ev = { 0 };
	struct kilt_error err = { 0 };
	if (kilt_macro_event_parse((const char *)data, size, &ev, &err) < 0)
		return 0;
	char *reply = NULL;
	size_t len = 0;
	if (kilt_macro_event_check(&ev, &err) < 0) {
		kilt_macro_reply(ev.request_id, NULL, err.msg, &reply, &len, &err);
		free(reply);
		kilt_macro_event_done(&ev);
		return 0;
	}
	/* The event's own "env" member (if any) stands for the function's environment layer. */
	const json_t *env = json_object_get(ev.root, "env");
	struct kilt_macro_settings s = { 0 };
	if (kilt_macro_settings_resolve(ev.params, ev.template, env, &s, &err) == 0) {
		char *key = kilt_macro_settings_recipe_key(&s);
		if (!key || (!s.recipe_text && !s.recipe_url && !s.recipe_builtin))
			abort(); /* exactly one recipe location is always chosen */
		free(key);
		kilt_macro_settings_done(&s);
	}
	if (kilt_macro_reply(ev.request_id, kilt_macro_event_result(&ev), NULL, &reply, &len,
			     &err) == 0) {
		/* The reply must be JSON again, with the same request id. */
		json_t *back = json_loadb(reply, len, 0, NULL);
		if (!back || strcmp(json_string_value(json_object_get(back, "requestId")),
				    ev.request_id) != 0)
			abort();
		json_decref(back);
		free(reply);
	}
	kilt_macro_event_done(&ev);
	return 0;
}
