/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the CloudFormation macro's event decoder, per-stack settings resolution (Transform
 * parameters, Mappings.KiltSettings, an environment layer), the ECS engine on the event's template
 * with those settings (no image lookups) and reply building: the whole path of one invocation
 * minus the network. */
#include <stdint.h>

#include "internal.h"
#include "kilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A small recipe of the shipped recipe's shape, loaded once. */
static const struct kilt_recipe *recipe(void)
{
	static struct kilt_recipe *r;
	static const char text[] =
		"deploy {\n"
		"  entrypoint: [ /kilt/launch, \"--\" ] ${original.entrypoint}\n"
		"  command: ${original.command}\n"
		"  mount: [ { name: agent, image: \"example.com/agent:\"${?config.tag}, volumes: [ "
		"/kilt ], entrypoint: [ /kilt/wait ] } ]\n"
		"  environment: { AGENT_NAME: ${original.name} }\n"
		"  capabilities: [ SYS_PTRACE ]\n"
		"}\n";
	if (!r) {
		struct kilt_error err = { 0 };
		if (kilt_recipe_load_string(text, sizeof(text) - 1, "fuzz", &r, &err) < 0) {
			fprintf(stderr, "fuzz recipe: %s\n", err.msg);
			abort();
		}
	}
	return r;
}

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
		struct kilt_ecs_options opts;
		kilt_ecs_options_default(&opts);
		opts.input = KILT_ECS_INPUT_CLOUDFORMATION;
		opts.mode = s.mode == KILT_MACRO_OPT_IN ? KILT_ECS_OPT_IN : KILT_ECS_OPT_OUT;
		opts.config = s.config;
		opts.parameters = ev.parameter_values;
		opts.sidecar_repository_credentials = s.image_auth_secret;
		struct kilt_report report;
		kilt_report_init(&report);
		/* A failed run must leave the template exactly as it was. */
		char *before = kilt_json_dumps(ev.template, JSON_COMPACT);
		if (kilt_ecs_inject(recipe(), ev.template, &opts, &report, &err) < 0) {
			char *after = kilt_json_dumps(ev.template, JSON_COMPACT);
			if (!before || !after || strcmp(before, after) != 0)
				abort();
			free(after);
		}
		free(before);
		kilt_report_done(&report);
		kilt_macro_settings_done(&s);
	}
	if (kilt_macro_reply(ev.request_id, kilt_macro_event_result(&ev), NULL, &reply, &len,
			     &err) == 0) {
		/* The reply must be JSON again, with the same request id (an event may hold
		 * \u0000 in a string, kilt_macro_event_parse reads it, and the reply keeps it). */
		json_t *back = kilt_json_loadb(reply, len, JSON_ALLOW_NUL, NULL);
		if (!back || strcmp(json_string_value(json_object_get(back, "requestId")),
				    ev.request_id) != 0)
			abort();
		json_decref(back);
		free(reply);
	}
	kilt_macro_event_done(&ev);
	return 0;
}
