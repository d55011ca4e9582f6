/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the ECS engine's template input: the bytes are read as JSON or YAML (with
 * CloudFormation short forms), then injected with a Falco-like recipe in opt-out and opt-in
 * (fail-open) modes, removed again, and checked: applying the recipe twice must equal applying it
 * once; a JSON template the streaming path (kilt_cfn_stream_inject) accepts must give the bytes
 * and report of the whole-document path. Must never crash, leak or break these invariants. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char RECIPE[] =
	"platforms: [ linux/amd64 ]\n"
	"deploy {\n"
	"  entrypoint: [ /falco/launch, \"--\" ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: falco, image: \"falco:1\", volumes: [ /falco ],\n"
	"             entrypoint: [ /falco/wait ] } ]\n"
	"  environment: { META: \"image=\"${original.image}\",name=\"${original.name} }\n"
	"  capabilities: [ SYS_PTRACE ]\n"
	"  pid_mode: task\n"
	"}\n";

static int fake_facts(void *userdata, const char *image, const char *platform, json_t **ret,
		      struct kilt_error *err)
{
	(void)userdata, (void)platform;
	if (strlen(image) % 3 == 0)
		return kilt_error_setf(err, -ENOENT, "no such image");
	*ret = json_pack("{s[s]s[s]}", "entrypoint", "/init", "command", image);
	return 0;
}

static void check_twice(const struct kilt_recipe *recipe, json_t *doc,
			const struct kilt_ecs_options *o)
{
	struct kilt_error err = { 0 };
	struct kilt_report rep;
	kilt_report_init(&rep);
	if (kilt_ecs_inject(recipe, doc, o, &rep, &err) < 0) {
		kilt_report_done(&rep);
		return;
	}
	json_t *j = kilt_report_to_json(&rep);
	json_decref(j);
	kilt_report_done(&rep);
	char *once = kilt_json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
	if (kilt_ecs_inject(recipe, doc, o, NULL, &err) < 0) {
		fprintf(stderr, "second application failed: %s\n", err.msg);
		abort();
	}
	char *twice = kilt_json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!once || !twice || strcmp(once, twice) != 0) {
		fprintf(stderr, "twice != once\nonce:  %s\ntwice: %s\n", once, twice);
		abort();
	}
	free(once);
	free(twice);
	(void)kilt_ecs_remove(doc, o, NULL, &err);
}

static int to_kbuf(const char *p, size_t n, void *data)
{
	return kbuf_add(data, p, n) < 0 ? -1 : 0;
}

/* What kilt inject does with JSON: streamed when the splitter follows the text, whole otherwise;
 * both must agree byte for byte. */
static void check_stream(const struct kilt_recipe *recipe, const char *text, size_t len,
			 const struct kilt_ecs_options *o)
{
	struct kbuf out;
	kbuf_init(&out, 16u << 20);
	struct kilt_cfn_stream io = { .write = to_kbuf, .write_userdata = &out };
	struct kilt_report srep, wrep;
	kilt_report_init(&srep);
	kilt_report_init(&wrep);
	struct kilt_error serr = { 0 }, werr = { 0 };
	int r = kilt_cfn_stream_inject(recipe, text, len, o, &io, &srep, &serr);
	if (r == KILT_CFN_STREAM_WHOLE) {
		kbuf_done(&out);
		return;
	}
	json_t *doc = kilt_json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (!doc) {
		fprintf(stderr, "streamed a template the whole path cannot parse\n");
		abort();
	}
	int w = kilt_ecs_inject(recipe, doc, o, &wrep, &werr);
	char *whole = w == 0 ? kilt_json_dumps(doc, JSON_INDENT(2) | JSON_ENCODE_ANY |
							    JSON_REAL_PRECISION(15))
			     : NULL;
	if ((r == 0) != (w == 0) || (r < 0 && strcmp(serr.msg, werr.msg) != 0)) {
		fprintf(stderr, "stream %d (%s) != whole %d (%s)\n", r, serr.msg, w, werr.msg);
		abort();
	}
	if (r == 0 &&
	    (!whole || strlen(whole) != out.len || memcmp(whole, out.data, out.len) != 0 ||
	     srep.n_decisions != wrep.n_decisions || srep.n_patched != wrep.n_patched ||
	     srep.n_warnings != wrep.n_warnings)) {
		fprintf(stderr, "stream != whole\nstream: %.*s\nwhole:  %s\n", (int)out.len,
			out.data ? out.data : "", whole ? whole : "");
		abort();
	}
	free(whole);
	json_decref(doc);
	kilt_report_done(&srep);
	kilt_report_done(&wrep);
	kbuf_done(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kilt_recipe *recipe;
	if (!recipe) {
		struct kilt_error err = { 0 };
		if (kilt_recipe_load_string(RECIPE, sizeof(RECIPE) - 1, "fuzz", &recipe, &err) <
		    0) {
			fprintf(stderr, "fuzz_ecs: recipe: %s\n", err.msg);
			abort();
		}
	}
	if (size > 256 * 1024)
		return 0;
	struct kilt_yaml_limits lim;
	kilt_yaml_limits_default(&lim);
	lim.max_input_bytes = 256 * 1024;
	lim.max_depth = 48;
	lim.max_alias_nodes = 10000;
	json_t *doc = NULL;
	struct kilt_error err = { 0 };
	if (kilt_yaml_load((const char *)data, size, "fuzz", KILT_YAML_CFN_TAGS, &lim, &doc, &err) <
	    0)
		return 0;
	json_t *copy = json_deep_copy(doc);
	json_t *params = json_pack("{ss}", "Image", "nginx:1");

	struct kilt_ecs_options o;
	kilt_ecs_options_default(&o);
	o.parameters = params;
	check_stream(recipe, (const char *)data, size, &o);
	check_twice(recipe, doc, &o);

	kilt_ecs_options_default(&o);
	o.mode = KILT_ECS_OPT_IN;
	o.fail_open = true;
	o.image_facts = fake_facts;
	o.sidecar_repository_credentials = "arn:x";
	check_twice(recipe, copy, &o);

	json_decref(params);
	json_decref(copy);
	json_decref(doc);
	return 0;
}
