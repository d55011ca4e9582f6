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
	/* array of strings: what would really run (Docker's rule applied) */
	const json_t *entrypoint;
	const json_t *command; /* array of strings */
	const json_t *environment; /* object name -> value (a string, or an intrinsic kept as is) */
	const json_t *metadata; /* object: tags / labels / annotations */
	const char *platform; /* "linux/amd64", "linux/arm64/v8"...; NULL when unknown */
	/* the members of the plan the caller reads (KILT_PLAN_* bits); 0: every one. Another
	 * member may be left out of the plan when nothing in it depends on the target */
	unsigned members;
	/* the caller only reads the plan and puts none of its nodes anywhere (it copies them): the
	 * plan may then be one the recipe keeps for the targets of the same facts, shared with
	 * other callers and threads, which no one may change */
	bool shared;
};

/* Members of a plan, for kilt_target.members. */
enum {
	KILT_PLAN_RECIPE = 1u << 0,
	KILT_PLAN_IMAGE = 1u << 1,
	KILT_PLAN_ENTRYPOINT = 1u << 2,
	KILT_PLAN_COMMAND = 1u << 3,
	KILT_PLAN_ENVIRONMENT = 1u << 4,
	KILT_PLAN_MOUNTS = 1u << 5,
	KILT_PLAN_CAPABILITIES = 1u << 6,
	KILT_PLAN_PID_MODE = 1u << 7,
	KILT_PLAN_UPLOADS = 1u << 8,
	KILT_PLAN_BACKGROUND = 1u << 9,
	KILT_PLAN_PLATFORMS = 1u << 10,
};

/* A parsed, validated recipe. Immutable: evaluate it from any number of threads. */
struct kilt_recipe;

/* Loads a recipe in either spelling (kilt's `deploy`/`patch` or the original kilt's
 * `build`/`runtime`; docs/recipe.md). Validation errors carry file:line:column. Loading resolves
 * the recipe once with placeholder facts of the right types, so a recipe that loads can fail at
 * evaluation only because of the real facts or config (an unknown fact, a config value of the
 * wrong type). `kilt_recipe_load_string` takes `name` for messages (NULL: "inline").
 *
 * Trust: where the text comes from decides which files it may include (never the environment:
 * there is no environment fallback at all). A recipe read by kilt_recipe_load_file is the
 * operator's (a file they installed: `-r FILE`, a file shipped beside the function or mounted
 * into the webhook): it may include files in its own directory or below it, never outside
 * (-EPERM). Text given to kilt_recipe_load_string (a stack's Transform parameters, a URL, S3, an
 * annotation, the built-in recipe) may include no file at all (-EPERM): front ends load every
 * recipe whose text someone else supplies through it. */
int kilt_recipe_load_file(const char *path, struct kilt_recipe **ret, struct kilt_error *err);
int kilt_recipe_load_string(const char *text, size_t len, const char *name,
			    struct kilt_recipe **ret, struct kilt_error *err);
void kilt_recipe_free(struct kilt_recipe *recipe);

/* Called once per validation error by kilt_recipe_check_file, in order of appearance. */
typedef void kilt_recipe_error_fn(const struct kilt_error *err, void *userdata);
/* Validates like kilt_recipe_load_file but reports every error it finds (up to 100) through `fn`
 * instead of stopping at the first. Returns 0 when the recipe is valid, else the code of the first
 * error. */
int kilt_recipe_check_file(const char *path, kilt_recipe_error_fn *fn, void *userdata);

/* The recipe's name (file name without directory and extension, or "inline"); borrowed. */
const char *kilt_recipe_name(const struct kilt_recipe *recipe);
/* Lower-case hex SHA-256 of the recipe's source text (the idempotency marker); borrowed. Files
 * the recipe includes are not part of it. */
const char *kilt_recipe_hash(const struct kilt_recipe *recipe);
/* True when the recipe declares support for `platform` ("linux/amd64", "linux/arm64/v8"...).
 * A recipe that declares no platforms supports all; NULL (unknown) is supported. */
bool kilt_recipe_supports_platform(const struct kilt_recipe *recipe, const char *platform);
/* False when the recipe's text never reads original.environment (nor original whole, nor through
 * an include, nor through a substitution path with an escape): evaluating it then gives the
 * same plan whether the target's environment is known or not, except that a known one's
 * variables head the plan's environment. True when it reads it, or may. */
bool kilt_recipe_reads_environment(const struct kilt_recipe *recipe);
/* False when the recipe's text never reads original.metadata (nor original whole, nor through an
 * include, nor through a substitution path with an escape): evaluating it then gives the same
 * plan whether the target's metadata is known or not. True when it reads it, or may. */
bool kilt_recipe_reads_metadata(const struct kilt_recipe *recipe);

/* Checks operator config against the recipe's parameters: a key the recipe does not read (the
 * `parameters` it declares, or else the `config.*` names its own text reads; any key when an
 * undeclared recipe uses include) is an error with a suggestion and the list of keys, and so is a
 * parameter declared `required` that is missing (the message carries its description). `config`
 * is borrowed and may be NULL. kilt_recipe_evaluate calls it first. */
int kilt_recipe_check_config(const struct kilt_recipe *recipe, const json_t *config,
			     struct kilt_error *err);

/* The declared parameters, borrowed: { name: { "default"?: value, "description"?: "...",
 * "required": bool } }, or NULL when the recipe declares none. */
const json_t *kilt_recipe_parameters(const struct kilt_recipe *recipe);

/* Evaluates the recipe for one container. `config` (borrowed, may be NULL) is an object of
 * operator parameters visible as `config.*`. Non-array entrypoint/command and non-object
 * environment/metadata count as unknown. On success `ret_plan` receives an owned object:
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
 * Rules (docs/recipe.md): a field the recipe does not set keeps the container's value, so
 * "entrypoint" is the recipe's entrypoint or else target->entrypoint, and likewise "command"
 * (never the image's CMD silently: Docker's rule is applied by whoever fills the target).
 * Environment values are strings, except values taken over from the target as they are
 * (intrinsics). Output is deterministic: evaluating twice gives equal plans.
 *
 * The config the recipe sees is its declared defaults overlaid with `config`.
 *
 * Errors name the recipe field and, where known, file:line:column. Codes:
 *   -ENODATA  a fact the recipe needs is unknown (target field NULL); the message names it
 *             ("original.entrypoint is not known for container web: ...") and how to supply it
 *   -ENOTSUP  target->platform is known and the recipe does not support it
 *   -EINVAL   a value has the wrong type or form (usually from config)
 *
 * Thread safety: any number of threads may evaluate one recipe at once. Evaluation of the same
 * config for containers whose known facts are alike is served from a template compiled on first
 * use (see docs/recipe.md "Performance"); the result is identical to a full resolution. */
int kilt_recipe_evaluate(const struct kilt_recipe *recipe, const struct kilt_target *target,
			 const json_t *config, json_t **ret_plan, struct kilt_error *err);

/* Splits `len` bytes of `s` into words like a POSIX shell's tokenizer: blanks separate words,
 * single quotes keep everything literal, double quotes keep everything but `\$`, `\``, `\"`,
 * `\\` and backslash-newline, a backslash outside quotes escapes the next character, `#` at the
 * start of a word begins a comment. Nothing is expanded (`$HOME`, `*`, `~` stay as written) and
 * unquoted operators (`| & ; < > ( )`) are an error, since no shell runs the result. On success
 * `ret` receives an owned array of strings (maybe empty). */
int kilt_shellwords_split(const char *s, size_t len, json_t **ret, struct kilt_error *err);

#endif
