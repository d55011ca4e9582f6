/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the `external` data source's query decoder (lib/terraform.c), then the ECS engine
 * on the decoded container list (no image lookups) and the result encoder: a whole run of
 * `kilt inject --format terraform-external` minus the file reads. */
#include <stdint.h>

#include "internal.h"
#include "kilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct kilt_recipe *recipe(void)
{
	static struct kilt_recipe *r;
	static const char text[] =
		"deploy {\n"
		"  entrypoint: [ /kilt/launch, \"--\" ] ${original.entrypoint}\n"
		"  command: ${original.command}\n"
		"  mount: [ { name: agent, image: \"example.com/agent:\"${?config.tag}, volumes: [ "
		"/kilt ], entrypoint: [ /kilt/wait ] } ]\n"
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
	struct kilt_tf_query q = { 0 };
	struct kilt_error err = { 0 };
	if (kilt_tf_query_parse((const char *)data, size, &q, &err) < 0) {
		if (!err.msg[0])
			abort(); /* every refusal says why */
		return 0;
	}
	if (!json_is_array(q.container_definitions))
		abort();
	struct kilt_ecs_options opts;
	kilt_ecs_options_default(&opts);
	opts.input = KILT_ECS_INPUT_CONTAINER_DEFINITIONS;
	opts.mode = q.has_mode && q.opt_in ? KILT_ECS_OPT_IN : KILT_ECS_OPT_OUT;
	opts.config = q.config;
	struct kilt_report rep;
	kilt_report_init(&rep);
	if (kilt_ecs_inject(recipe(), q.container_definitions, &opts, &rep, &err) == 0) {
		char *text = NULL;
		size_t len = 0;
		if (kilt_tf_result(q.container_definitions, &rep, &text, &len, &err) < 0)
			abort(); /* a decoded list always encodes */
		json_t *back = json_loadb(text, len, 0, NULL);
		if (!json_is_string(json_object_get(back, "container_definitions")) ||
		    !json_is_string(json_object_get(back, "decisions")))
			abort();
		json_decref(back);
		free(text);
	}
	kilt_report_done(&rep);
	kilt_tf_query_done(&q);
	return 0;
}
