/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for recipes: load the input as a recipe and evaluate it for a fixed container,
 * with and without config; the cached-template way must equal a full resolution and evaluating
 * twice must give the same plan. The input also goes through the shell-word splitter. */
#include <stdint.h>
#include <stdio.h>

#include "internal.h"
#include "kilt.h"
#include "recipe-private.h"

static void check_same(const struct kilt_recipe *r, const struct kilt_target *t,
		       const json_t *config)
{
	json_t *a = NULL, *b = NULL, *c = NULL;
	struct kilt_error ea = { 0 }, eb = { 0 }, ec = { 0 };
	int ra = kilt_recipe_evaluate(r, t, config, &a, &ea);
	int rb = kilt_recipe_evaluate(r, t, config, &b, &eb);
	int rc = kilt_recipe_evaluate_full(r, t, config, &c, &ec);
	if (ra != rb || ra != rc)
		abort();
	if (ra == 0 && (!json_equal(a, b) || !json_equal(a, c)))
		abort();
	if (ra < 0 && (strcmp(ea.msg, eb.msg) != 0 || ea.code != ec.code))
		abort();
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	json_t *words = NULL;
	if (kilt_shellwords_split((const char *)data, size, &words, NULL) == 0)
		json_decref(words);

	struct kilt_recipe *r = NULL;
	if (kilt_recipe_load_string((const char *)data, size, "fuzz.conf", &r, NULL) < 0)
		return 0;
	json_t *ep = json_pack("[s]", "/docker-entrypoint.sh");
	json_t *cmd = json_pack("[sss]", "nginx", "-g", "daemon off;");
	json_t *env = json_pack("{ss}", "A", "1");
	json_t *meta = json_pack("{ss}", "team", "web");
	json_t *config = json_pack("{ss}", "version", "1.2");
	struct kilt_target t = {
		.image = "nginx:1.27",
		.name = "web",
		.group = "shop",
		.entrypoint = ep,
		.command = cmd,
		.environment = env,
		.metadata = meta,
		.platform = "linux/amd64",
	};
	check_same(r, &t, NULL);
	check_same(r, &t, config);
	struct kilt_target bare = { .image = "nginx" };
	check_same(r, &bare, NULL);
	(void)kilt_recipe_supports_platform(r, "linux/arm64");
	json_decref(ep);
	json_decref(cmd);
	json_decref(env);
	json_decref(meta);
	json_decref(config);
	kilt_recipe_free(r);
	return 0;
}
