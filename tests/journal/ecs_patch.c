/* SPDX-License-Identifier: Apache-2.0 */
/* Test driver: runs the ECS engine on a CloudFormation template and prints what it did as one
 * JSON object {"original", "result", "patch"}, the patch being the run's journal as RFC 6902
 * (kilt_journal_patch). check.py applies the patch with the Python jsonpatch library.
 * Usage: ecs_patch RECIPE TEMPLATE.json [PRE_RECIPE]   (PRE_RECIPE applied first, without a
 * patch, so the run under test undoes an earlier injection). Exit 3 when the engine refuses the
 * template (a case that expects an error). */
#include <stdio.h>

#include "ecs-internal.h"

static struct kilt_recipe *load(const char *path)
{
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	if (kilt_recipe_load_file(path, &r, &err) < 0) {
		fprintf(stderr, "ecs_patch: %s: %s\n", path, err.msg);
		exit(1);
	}
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: ecs_patch RECIPE TEMPLATE.json [PRE_RECIPE]\n");
		return 2;
	}
	json_error_t jerr;
	char *text = NULL;
	size_t len = 0;
	if (kilt_read_file(argv[2], 64u << 20, &text, &len) < 0) {
		fprintf(stderr, "ecs_patch: %s: cannot read\n", argv[2]);
		return 1;
	}
	/* as kilt inject reads it: numbers jansson cannot hold are kept as written */
	json_t *doc = kilt_json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!doc) {
		fprintf(stderr, "ecs_patch: %s: %s\n", argv[2], jerr.text);
		return 1;
	}
	struct kilt_error err = { 0 };
	if (argc == 4) {
		struct kilt_recipe *pre = load(argv[3]);
		int r = kilt_ecs_inject(pre, doc, NULL, NULL, &err);
		kilt_recipe_free(pre);
		if (r < 0) {
			fprintf(stderr, "ecs_patch: pre-recipe: %s\n", err.msg);
			json_decref(doc);
			return 3;
		}
	}
	json_t *original = json_deep_copy(doc);
	struct kilt_recipe *recipe = load(argv[1]);
	json_t *patch = NULL;
	int r = kilt_ecs_inject_patch(recipe, doc, NULL, &patch, &err);
	kilt_recipe_free(recipe);
	if (r < 0) {
		fprintf(stderr, "ecs_patch: %s\n", err.msg);
		json_decref(original);
		json_decref(doc);
		return 3;
	}
	json_t *out = json_pack("{soso so}", "original", original, "result", doc, "patch", patch);
	char *s = kilt_json_dumps(out, JSON_COMPACT);
	json_decref(out);
	int w = s && fputs(s, stdout) != EOF && fputc('\n', stdout) != EOF ? 0 : 1;
	free(s);
	return w;
}
