/* SPDX-License-Identifier: Apache-2.0 */
/* What the ECS engine's files share: the engine's state and field spellings (ecs.c), task
 * selection from tags (ecs-select.c), field edits through Fn::If (ecs-edit.c), and the
 * CloudFormation helpers (cfn.c): recognising intrinsics, resolving the few facts kilt needs
 * through parameter values, and turning an image written as an intrinsic into Fn::Sub text.
 * Internal to libkilt. */
#ifndef KILT_ECS_INTERNAL_H
#define KILT_ECS_INTERNAL_H

#include "internal.h"
#include "journal.h"
#include "kilt.h"

/* Where facts come from: the template (Parameters' Defaults, Mappings) and the operator's
 * parameter values. Both borrowed, both may be NULL. */
struct cfn_ctx {
	const json_t *template;
	const json_t *params;
	/* borrowed, may be NULL: receives name -> Default for every parameter a resolution took
	 * its Default from (no value was given), so the caller can say the result is a guess */
	json_t *defaults_used;
};

/* The template sections cfn.c reads through cfn_ctx.template (besides Resources): the
 * streaming path (cfn-stream.c) hands the engine these alone, so keep this list in step. */
/* clang-format off */
#define CFN_CONTEXT_SECTIONS { "Parameters", "Mappings" }
/* clang-format on */

/* True when `v` is an intrinsic: an object with exactly one key that is "Ref", "Condition" or
 * starts with "Fn::". `ret_fn` (may be NULL) receives the key (borrowed). */
bool kilt_cfn_is_intrinsic(const json_t *v, const char **ret_fn);
/* True for {"Ref": "AWS::NoValue"}. */
bool kilt_cfn_is_novalue(const json_t *v);
/* For {"Fn::If": [cond, a, b]}: the addresses of the two branch slots (so a branch can be
 * replaced) and true; else false. */
bool kilt_cfn_if_branches(json_t *v, json_t **ret_a, json_t **ret_b);

/* Resolves `v` to a plain string through parameter values, Defaults, Fn::Sub, Fn::Join and
 * Fn::FindInMap. Returns 0 with an owned string, or -ENOENT with `why` (size bytes) saying what
 * could not be resolved. */
int kilt_cfn_resolve_string(const struct cfn_ctx *ctx, const json_t *v, char **ret, char *why,
			    size_t size);
/* Resolves `v` to an owned array of strings: a literal array (each element resolved), or a Ref to
 * a list parameter (comma-separated). -ENOENT with `why` when it cannot. */
int kilt_cfn_resolve_list(const struct cfn_ctx *ctx, const json_t *v, json_t **ret, char *why,
			  size_t size);

/* Fn::Sub text that stands for the intrinsic `image` inside a larger string: Ref X -> "${X}",
 * Fn::Sub "t" -> "t" (its variable map, if any, in *ret_vars), GetAtt a.b -> "${a.b}", anything
 * else -> "${KiltImage}" with {"KiltImage": image} in *ret_vars. Owned; *ret_vars owned or NULL. */
char *kilt_cfn_sub_text(const json_t *image, json_t **ret_vars);
/* Replaces, recursively inside `v`, every string that contains `text` with
 * {"Fn::Sub": s} (or [s, vars]), escaping any other "${" in s as "${!". Returns the new value
 * (owned; `v` is consumed). */
json_t *kilt_cfn_wrap_sub(json_t *v, const char *text, const json_t *vars);

/* Encodes a JSON value as compact text without any '$' (written as \u0024), so cfn-lint and
 * CloudFormation never take a stored value for a substitution. Owned. */
char *kilt_cfn_encode_label(const json_t *v);

/* ---- the engine (ecs.c) ---------------------------------------------------------------------- */

#define KILT_ECS_LABEL_RECIPE "kilt.recipe"
#define KILT_ECS_LABEL_HASH "kilt.recipe-hash"
#define KILT_ECS_LABEL_CONFIG "kilt.config-hash"
#define KILT_ECS_LABEL_UNDO "kilt.undo"
#define KILT_ECS_LABEL_ROLE "kilt.role"
/* the key of a container's undo record that holds the task-level fields */
#define KILT_ECS_UNDO_TASK "kilt:task"
/* How deep editing, undoing or walking a definition goes before the input is refused (ecs.c,
 * ecs-edit.c, ecs-undo.c). */
#define KILT_ECS_MAX_EDIT_DEPTH 32
/* The short spellings the engine's files use. */
#define LABEL_RECIPE KILT_ECS_LABEL_RECIPE
#define LABEL_HASH KILT_ECS_LABEL_HASH
#define LABEL_CONFIG KILT_ECS_LABEL_CONFIG
#define LABEL_UNDO KILT_ECS_LABEL_UNDO
#define LABEL_ROLE KILT_ECS_LABEL_ROLE
#define UNDO_TASK KILT_ECS_UNDO_TASK
#define MAX_EDIT_DEPTH KILT_ECS_MAX_EDIT_DEPTH

/* Field names of one spelling: CloudFormation / PascalCase ECS JSON, or the ECS API's camelCase
 * (register-task-definition input, Terraform). */
struct kilt_ecs_names {
	const char *container_definitions, *name, *image, *essential, *entrypoint, *command,
		*environment, *env_name, *env_value, *volumes_from, *source_container, *read_only,
		*depends_on, *container_name, *condition, *linux_parameters, *capabilities, *add,
		*docker_labels, *log_configuration, *log_driver, *repository_credentials,
		*credentials_parameter, *requires_compatibilities, *pid_mode, *runtime_platform,
		*cpu_architecture, *os_family, *tags, *key, *value, *family, *network_mode,
		*proxy_configuration, *firelens_configuration;
};

struct kilt_ecs_engine {
	const struct kilt_planner *planner; /* borrowed; NULL when only removing */
	struct kilt_journal *journal; /* borrowed: the run's changes to the document */
	struct kilt_ecs_options opts;
	struct cfn_ctx cfn;
	struct kilt_report *report; /* borrowed */
	const struct kilt_ecs_names *n;
	bool intrinsics; /* CloudFormation: intrinsics may stand anywhere */
	/* listing the images the run will need (kilt_ecs_list_images): nothing is changed */
	struct kilt_image_needs *needs; /* borrowed, or NULL */
	struct kilt_marker marker; /* the recipe's marker (planner only) */
	/* owned: compact text -> value, for the small values written into container after
	 * container (the same VolumesFrom, DependsOn, LinuxParameters...), so each is held once */
	json_t *shared;
	json_t *labels; /* owned: the recipe's marker labels, values shared by every container */
	json_t *sidecar_logs; /* owned copy of opts.sidecar_log_configuration, or NULL */
	size_t lookups; /* image facts asked for so far */
	bool want_patch; /* hand the run's changes out as a JSON Patch (CloudFormation only) */
	json_t *patch; /* owned: that patch, once the run succeeded */
	json_t *task_users; /* owned, made on first use: task id -> its Services and TaskSets */
	json_t *caps_said; /* owned: the capabilities the last summary named, and its text */
	char *caps_text; /* owned */
};

/* Task-level facts and the decision taken for them. */
struct kilt_ecs_task {
	const char *id; /* borrowed */
	json_t *props; /* borrowed: holds PidMode, tags...; NULL for a bare container list */
	bool selected;
	bool warn;
	char reason[512];
	char *platform; /* owned; NULL when unknown */
	struct kilt_selection sel; /* from the kilt-* tags */
	json_t *metadata; /* owned object: the task's tags */
	char *proxy; /* owned: the container ProxyConfiguration names (App Mesh Envoy), or NULL */
	json_t *seen; /* owned: name -> true for every container of the task kilt can name */
	bool unnamed; /* some container's name is not known */
	size_t decision; /* index of the task's decision in the report */
	bool any_patched, any_unchanged, any_removed;
};

/* kilt_ecs_inject on a CloudFormation template that also hands out its changes as an RFC 6902
 * JSON Patch against the template as it was (kilt_journal_patch; -ENOTSUP for other kinds). */
int kilt_ecs_inject_patch(const struct kilt_recipe *recipe, json_t *doc,
			  const struct kilt_ecs_options *opts, json_t **ret_patch,
			  struct kilt_error *err);

/* A label of a container, looking through an Fn::If around DockerLabels. */
const char *kilt_ecs_get_label(const struct kilt_ecs_engine *e, json_t *c, const char *key);
/* Appends "; " and the text to the reason in `buf` (nothing when it is full). */
void kilt_ecs_append_reason(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One container object inside a list: a plain element or a branch of an Fn::If element. */
struct kilt_ecs_item {
	json_t *obj; /* borrowed */
	size_t index; /* element index in the list */
	/* owned: the Name, as written or evaluated through the parameters; NULL when unknown */
	char *name;
	/* owned: what the report calls the container: its name, or "#N" (its position in the
	 * list, from 1) when the name is unknown */
	char *label;
	char why[256]; /* why the name is unknown ("" when known) */
	bool sidecar, marked;
};

/* ---- undo (ecs-undo.c) ------------------------------------------------------------------------ */

/* Collects the container objects of a list (looking into Fn::If elements) with their names;
 * release with kilt_ecs_items_free. */
void kilt_ecs_gather(const struct kilt_ecs_engine *e, json_t *list, struct kilt_ecs_item **ret,
		     size_t *ret_n);
void kilt_ecs_items_free(struct kilt_ecs_item *items, size_t n);
/* A container carrying kilt's labels in a combination kilt never writes is an error. */
int kilt_ecs_check_labels(const struct kilt_ecs_engine *e, const struct kilt_ecs_item *it,
			  struct kilt_error *err);
/* Reads and checks every injected container's undo record (ret_undos: one per item, NULL where
 * none) and the sidecars they prove added (ret_added). */
int kilt_ecs_read_records(const struct kilt_ecs_engine *e, json_t *list,
			  const struct kilt_ecs_item *items, size_t n, json_t ***ret_undos,
			  json_t **ret_added, struct kilt_error *err);
void kilt_ecs_undos_free(json_t **undos, size_t n);
/* Adds to `out` every SourceContainer named in the VolumesFrom value `v`. */
void kilt_ecs_source_containers(const struct kilt_ecs_engine *e, const json_t *v, json_t *out,
				unsigned depth);
/* Removes every trace of an earlier injection from a list (and its task-level fields). */
int kilt_ecs_undo_list(struct kilt_ecs_engine *e, const struct kilt_ecs_task *t, json_t *list,
		       json_t *props, struct kilt_error *err);

/* ---- the planning step for one container (ecs-plan.c) ---------------------------------------- */

/* The plan for the container `c` named `cname` (NULL: unknown): its facts, Docker's rule (an
 * image lookup when it sets no EntryPoint), kilt_plan_container, and for an image written as an
 * intrinsic every string built from it made an Fn::Sub again. Notes for the report go to
 * `summary`. Returns 1 without a plan while the engine only lists images (e->needs). */
int kilt_ecs_plan_container(struct kilt_ecs_engine *e, struct kilt_ecs_task *t, json_t *c,
			    const char *cname, char *summary, size_t ssize, json_t **ret_plan,
			    struct kilt_error *err);
/* The operator's settings that change what a recipe produces (config, sidecar options), for
 * the marker's settings hash. Owned. */
json_t *kilt_ecs_settings(const struct kilt_ecs_options *o);
/* The sidecars' RepositoryCredentials secret: -EINVAL when empty, blank or too long. */
int kilt_ecs_check_secret_ref(const char *s, struct kilt_error *err);

/* ---- task selection (ecs-select.c) ------------------------------------------------------------ */

/* Decides whether the task is patched (tags, launch type, platform), filling t->selected,
 * t->reason, t->warn, t->platform, t->sel and t->metadata. */
void kilt_ecs_decide_task(struct kilt_ecs_engine *e, struct kilt_ecs_task *t);
/* Whether a container of a selected task is patched: `obj`, its `name` (NULL when unknown,
 * `name_why` saying why). When not, `why` says why and `ret_warn` whether that deserves a
 * warning. */
bool kilt_ecs_container_selected(const struct kilt_ecs_engine *e, const struct kilt_ecs_task *t,
				 const json_t *obj, const char *name, const char *name_why,
				 char *why, size_t size, bool *ret_warn);
/* The task is not patched, for the reason given. */
void kilt_ecs_skip_task(struct kilt_ecs_task *t, bool warn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- field edits (ecs-edit.c) ----------------------------------------------------------------- */

/* Each replaces a field of the container `c` with its edited value, merging into both branches
 * of an Fn::If, and the first time records the field's original in `undo`. */
/* The environment merge rule (docs/ecs.md) with the plan's [{name, value}]. */
int kilt_ecs_merge_env(const struct kilt_ecs_engine *e, json_t *c, const json_t *plan_env,
		       json_t *undo, struct kilt_error *err);
/* Capabilities merged into LinuxParameters.Capabilities.Add. */
int kilt_ecs_add_caps(const struct kilt_ecs_engine *e, json_t *c, const json_t *caps, json_t *undo,
		      struct kilt_error *err);
/* Appends `entry` to the list c[key] unless an element with the same first field is there. */
int kilt_ecs_append_unique(const struct kilt_ecs_engine *e, json_t *c, const char *key,
			   const json_t *entry, json_t *undo, struct kilt_error *err);
/* Sets c[key] = value (stolen) unless equal. */
void kilt_ecs_set_field(const struct kilt_ecs_engine *e, json_t *c, const char *key, json_t *value,
			json_t *undo);
/* Merges `labels` into DockerLabels (through Fn::If), recorded in the journal only. */
int kilt_ecs_merge_labels(const struct kilt_ecs_engine *e, json_t *c, const json_t *labels,
			  struct kilt_error *err);
/* Returns `v` (owned), or an equal value written earlier in this run in its place. */
json_t *kilt_ecs_share(const struct kilt_ecs_engine *e, json_t *v);

#endif
