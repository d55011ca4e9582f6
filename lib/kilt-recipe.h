/* SPDX-License-Identifier: Apache-2.0 */
/* Recipes: parsed and validated once into a model, evaluated per target container into a plan.
 * Included by kilt.h. */
#ifndef KILT_RECIPE_H
#define KILT_RECIPE_H

/* The facts of one target container. Every pointer is borrowed; NULL means "not known" (the
 * matching `original.*` substitution is then absent, so a recipe that needs it fails with an error
 * naming it instead of patching blindly). */
struct kilt_target {
	const char *image; /* image reference as written (parameters already resolved) */
	const char *name; /* container name */
	const char *group; /* task family / logical ID / pod name */
	const json_t *entrypoint; /* array of strings: what would really run (Docker's rule applied) */
	const json_t *command; /* array of strings */
	const json_t *environment; /* object name -> value (a string, or an intrinsic kept as is) */
	const json_t *metadata; /* object: tags / labels / annotations */
	const char *platform; /* "linux/amd64", "linux/arm64/v8"...; NULL when unknown */
};

/* A parsed, validated recipe. Immutable: evaluate it from any number of threads. */
struct kilt_recipe;

/* Loads a recipe in either spelling (kilt's `deploy`/`patch` or the original kilt's
 * `build`/`runtime`). Validation errors carry file:line:column. */
int kilt_recipe_load_file(const char *path, struct kilt_recipe **ret, struct kilt_error *err);
int kilt_recipe_load_string(const char *text, size_t len, const char *name,
			    struct kilt_recipe **ret, struct kilt_error *err);
void kilt_recipe_free(struct kilt_recipe *recipe);

/* The recipe's name (file name without directory and extension, or "inline"); borrowed. */
const char *kilt_recipe_name(const struct kilt_recipe *recipe);
/* Lower-case hex SHA-256 of the recipe's source text (the idempotency marker); borrowed. */
const char *kilt_recipe_hash(const struct kilt_recipe *recipe);
/* True when the recipe declares support for `platform` ("linux/amd64", "linux/arm64/v8"...).
 * A recipe that declares no platforms supports all; NULL (unknown) is supported. */
bool kilt_recipe_supports_platform(const struct kilt_recipe *recipe, const char *platform);

/* Evaluates the recipe for one container. `config` (borrowed, may be NULL) is an object of
 * operator parameters visible as `config.*`. On success `ret_plan` receives an owned object:
 *
 *   { "recipe":       { "name": "falco", "hash": "<sha256 hex>" },
 *     "image":        "<replacement image>"            (only when the recipe replaces it)
 *     "entrypoint":   [ "..." ],                        (always: final entrypoint)
 *     "command":      [ "..." ],                        (always: final command, maybe empty)
 *     "environment":  [ { "name": "N", "value": V } ],  (final: original order, then the
 *                                                        recipe's new names in recipe order;
 *                                                        the recipe's value wins on a clash)
 *     "mounts":       [ { "name": "...", "image": "...", "volumes": [ "/path" ],
 *                         "entrypoint": [ ... ]  (optional), "command": [ ... ] (optional),
 *                         "environment": [ { "name", "value" } ] (optional) } ],
 *     "capabilities": [ "SYS_PTRACE" ],                 (to add; sorted, unique)
 *     "pid_mode":     "task"                            (only when the recipe asks)
 *     "uploads":      [ { "url"|"file"|"payload": "...", "as": "/path", "mode": 493,
 *                         "uid": 0, "gid": 0, "sha256": "..." (optional) } ],
 *     "background":   [ [ "argv0", "arg1" ] ],          (exact argv of each program)
 *     "platforms":    [ "linux/amd64" ]                 (supported; empty = all) }
 *
 * Errors name the recipe field and, where known, file:line:column. */
int kilt_recipe_evaluate(const struct kilt_recipe *recipe, const struct kilt_target *target,
			 const json_t *config, json_t **ret_plan, struct kilt_error *err);

#endif
