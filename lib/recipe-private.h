/* SPDX-License-Identifier: Apache-2.0 */
/* What the recipe module's files share: validation of a resolved recipe into a partial plan
 * (recipe-model.c), building the final plan for one container (recipe-plan.c) and the markers
 * that let one resolution serve many containers (recipe.c). Not part of the public API. */
#ifndef KILT_RECIPE_PRIVATE_H
#define KILT_RECIPE_PRIVATE_H

#include "internal.h"
#include "kilt.h"

/* A marker is RECIPE_MARK followed by one code byte. Templates are resolved with markers in place
 * of the target's facts; recipe-plan.c expands them per container. */
#define RECIPE_MARK '\x01'
enum {
	MARK_IMAGE = 'i',
	MARK_NAME = 'n',
	MARK_GROUP = 'g',
	MARK_PLATFORM = 'p',
	MARK_ENTRYPOINT = 'E', /* a whole array element: splice target->entrypoint */
	MARK_COMMAND = 'C', /* a whole array element: splice target->command */
	MARK_WORD = 'w', /* followed by an index: an argv element that is no string (recipe.c) */
	MARK_PLACEHOLDER =
		'c', /* load-time stand-in for a value only known later; never expanded */
};

#define RECIPE_MAX_ERRORS 100u

/* Validation state: where errors are located and where they are collected. */
struct recipe_vctx {
	const struct kilt_hocon_origins *origins; /* borrowed; NULL: errors are not located */
	const char *file; /* borrowed; file named by errors that cannot be located */
	struct kilt_error *errs; /* owned */
	size_t nerrs, cap;
	bool tainted; /* a marker reached a value whose content is checked or interpreted */
	/* set at load time when no optional substitution (`${?config.x}`) can change a value
	 * when the recipe is evaluated: an empty deploy or patch section and an invalid mount
	 * image are then errors here (kilt_recipe_finalize checks images in every case) */
	bool values_final;
};

void kilt_recipe_vctx_done(struct recipe_vctx *v);

/* Validates the resolved recipe `root` and normalizes it into a partial plan (the recipe's own
 * contribution: image, entrypoint and command only when set, environment as a list, mounts,
 * capabilities, pid_mode, uploads, background, platforms). Errors are appended to `v`; returns 0
 * when there were none, else the first error's code. */
int kilt_recipe_normalize(struct recipe_vctx *v, const json_t *root, json_t **ret_partial);

/* Checks that `image` is an image reference Docker would take (a mount's sidecar image, after
 * substitution). CloudFormation Fn::Sub text is allowed: each ${Name} counts as a plain word. */
int kilt_recipe_image_check(const char *image, struct kilt_error *err);

/* Builds the plan for `t` from a partial plan. With `expand`, markers are replaced by the
 * target's facts; returns 1 (and no plan) when a marker names a fact the target lacks, so the
 * caller falls back to a full resolution. Returns 0 or a negative error. */
int kilt_recipe_finalize(const json_t *partial, const struct kilt_target *t, const char *name,
			 const char *hash, bool expand, json_t **ret_plan, struct kilt_error *err);

/* How to make `fact` ("entrypoint", "command"...) known, for "original.X is not known" errors. */
const char *kilt_recipe_fact_hint(const char *fact);

/* Normalizes a platform ("linux/amd64", "amd64", "linux/arm64/v8"...) into `buf`
 * ("linux/arm64"). Returns false when it is not a platform kilt knows. */
bool kilt_recipe_platform_normalize(const char *in, char *buf, size_t size);

/* Whether a marker stands anywhere in `j`: a string, an object member's name, or within arrays
 * and objects at any depth. */
bool kilt_recipe_has_marker(const json_t *j);

/* Levenshtein distance, capped at 100 (for "did you mean" suggestions). */
unsigned kilt_recipe_edit_distance(const char *a, const char *b);

/* Evaluates with a full resolution, never a cached template (tests compare both). */
int kilt_recipe_evaluate_full(const struct kilt_recipe *recipe, const struct kilt_target *target,
			      const json_t *config, json_t **ret_plan, struct kilt_error *err);

#endif
