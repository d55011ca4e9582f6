/* SPDX-License-Identifier: Apache-2.0 */
/* The ECS engine: applies a recipe to ECS container definitions wherever they are written
 * (CloudFormation templates, register/describe-task-definition JSON, Terraform
 * `container_definitions`), patching the raw document in place. Included by kilt.h.
 *
 * Every front end (kilt inject, the CloudFormation macro) parses its input into a json_t (YAML
 * through kilt-yaml.h), calls kilt_ecs_inject, and prints the report. The engine keeps every field
 * it does not know, passes CloudFormation intrinsics through untouched wherever they stand, and
 * gives the same bytes for the same input (see docs/ecs.md for every rule). Not thread-safe on the
 * same document; distinct documents may be processed in parallel. */
#ifndef KILT_ECS_H
#define KILT_ECS_H

/* What the document is. AUTO looks at the shape: an array is Terraform `container_definitions`;
 * an object with `Resources` or `AWSTemplateFormatVersion` is a CloudFormation template; an
 * object with `containerDefinitions`/`ContainerDefinitions` (or `taskDefinition`, the
 * describe-task-definition output) is an ECS task definition. */
enum kilt_ecs_input {
	KILT_ECS_INPUT_AUTO = 0,
	KILT_ECS_INPUT_CLOUDFORMATION,
	/* register-task-definition input (camelCase or PascalCase) or describe-task-definition output;
	 * the latter is rewritten into register-task-definition input (read-only fields dropped). */
	KILT_ECS_INPUT_TASK_DEFINITION,
	/* a JSON array of container definitions in camelCase (Terraform); the output carries no nulls
	 * and no empty arrays. */
	KILT_ECS_INPUT_CONTAINER_DEFINITIONS,
};

enum kilt_ecs_mode {
	/* every eligible task is patched unless tagged `kilt-ignore` (the default) */
	KILT_ECS_OPT_OUT = KILT_SELECT_OPT_OUT,
	/* only tasks tagged `kilt-include` are patched */
	KILT_ECS_OPT_IN = KILT_SELECT_OPT_IN,
};

/* Looks up the facts of an image for a platform ("linux/amd64"; NULL when unknown). On success
 * `ret_facts` receives an owned object shaped like kilt_image_config_parse's result:
 * { "entrypoint": [..], "command": [..], "os": "linux", "architecture": "amd64", ... }.
 * Called only when a container does not say what it runs. Return a negative errno-style code
 * with `err` filled when the image cannot be resolved. kilt_image_needs_facts (kilt-plan.h)
 * answers from a table resolved beforehand (see kilt_ecs_list_images). */
typedef int (*kilt_ecs_image_facts_fn)(void *userdata, const char *image, const char *platform,
				       json_t **ret_facts, struct kilt_error *err);

struct kilt_ecs_options {
	enum kilt_ecs_input input;
	enum kilt_ecs_mode mode;
	/* borrowed, may be NULL: operator parameters, visible to the recipe as `config.*` */
	const json_t *config;
	/* borrowed, may be NULL: template parameter values, name -> string (or array of strings for
	 * list parameters); may also hold pseudo-parameters ("AWS::Region", "AWS::AccountId",
	 * "AWS::URLSuffix"...). A parameter missing here falls back to the template's Default. */
	const json_t *parameters;
	/* borrowed, may be NULL: the secret ARN (or name) sidecars pull their image with
	 * (RepositoryCredentials.CredentialsParameter); empty, blanks or control characters are
	 * an error (-EINVAL). */
	const char *sidecar_repository_credentials;
	/* borrowed, may be NULL: the LogConfiguration every sidecar gets. NULL inherits the app
	 * container's LogConfiguration when its driver is awslogs (stream prefix kept). */
	const json_t *sidecar_log_configuration;
	/* sidecars get no LogConfiguration at all (wins over the two above) */
	bool sidecar_logs_off;
	/* borrowed, may be NULL: an array of container names that are not the application (like
	 * the FireLens log router and the ProxyConfiguration proxy, which are skipped anyway):
	 * skipped with a reason unless a task's kilt-include-containers tag names them. */
	const json_t *skip_containers;
	/* A container that cannot be patched (entrypoint unknown, image unresolvable...) is skipped
	 * with a warning instead of failing the whole document. */
	bool fail_open;
	/* The caller drops `doc` when the run fails (kilt inject does): the engine keeps the values
	 * it replaced only until each task is done instead of until the end, which saves memory on
	 * large templates. On failure `doc` is then left partly patched (still valid JSON). */
	bool discard_on_failure;
	/* may be NULL: no lookups (a container that needs one fails, or is skipped under fail_open) */
	kilt_ecs_image_facts_fn image_facts;
	void *image_facts_userdata; /* borrowed, passed to image_facts */
};

/* Fills `ret` with the defaults: AUTO, opt-out, nothing configured, no lookups. */
void kilt_ecs_options_default(struct kilt_ecs_options *ret);

/* Decides what `doc` is (see enum kilt_ecs_input). -EINVAL with a message when it is none. */
int kilt_ecs_detect(const json_t *doc, enum kilt_ecs_input *ret, struct kilt_error *err);
/* "cloudformation", "task-definition", "container-definitions", "auto"; static. */
const char *kilt_ecs_input_name(enum kilt_ecs_input input);

/* The first of two phases (kilt-plan.h, "image facts"): adds to `needs` every (image,
 * platform) pair whose facts kilt_ecs_inject with the same `recipe` and `opts` will ask
 * opts->image_facts for: the containers it will patch that set no EntryPoint, with their image
 * (parameters resolved) and their task's platform. The document is left as it was (the engine
 * runs and undoes its run). A container or task that would fail is left to the apply phase. */
void kilt_ecs_list_images(const struct kilt_recipe *recipe, json_t *doc,
			  const struct kilt_ecs_options *opts, struct kilt_image_needs *needs);

/* Applies `recipe` to every eligible task definition and container of `doc`, in place.
 * `opts` may be NULL for the defaults; `report` (may be NULL) must have been initialised and
 * receives one decision per task and per container. On failure `doc` is left as it was, key
 * order included (the engine journals its changes and undoes them), unless
 * opts->discard_on_failure, and `err` names the resource, the container and the fix.
 * The engine never modifies a value in place: it replaces fields and edits shallow copies, and
 * values it writes may be shared between containers (the same VolumesFrom in every one) and with
 * the plans. A caller that edits the result should likewise replace values, not modify them. */
int kilt_ecs_inject(const struct kilt_recipe *recipe, json_t *doc,
		    const struct kilt_ecs_options *opts, struct kilt_report *report,
		    struct kilt_error *err);

/* Undoes every earlier kilt injection in `doc` (any recipe): original entrypoint, command,
 * environment, image, linux parameters, volumes and dependencies come back and sidecars go. */
int kilt_ecs_remove(json_t *doc, const struct kilt_ecs_options *opts, struct kilt_report *report,
		    struct kilt_error *err);

/* The engine's core, for tests and front ends that produce plans another way: like
 * kilt_ecs_inject, but each container's plan (the schema of kilt_recipe_evaluate) comes from
 * `planner` (kilt-plan.h). */
int kilt_ecs_inject_planner(const struct kilt_planner *planner, json_t *doc,
			    const struct kilt_ecs_options *opts, struct kilt_report *report,
			    struct kilt_error *err);

/* A CloudFormation template in JSON, injected resource by resource (lib/cfn-stream.c): the text
 * is split without building a tree, each resource is parsed, patched, written and freed in turn,
 * so the memory held is the text plus one resource (plus a batch for `resolve`) instead of a
 * tree of the whole template (about five times the text). The output is the bytes
 * json_dump_callback(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) gives for the document
 * kilt_ecs_inject leaves, without a final newline. */
struct kilt_cfn_stream {
	/* receives the output in pieces; returns 0, or -1 to stop (the run fails with -EIO) */
	int (*write)(const char *p, size_t n, void *userdata);
	void *write_userdata; /* borrowed */
	/* may be NULL (no image lookups ahead): the run's table of image facts. Resources are then
	 * parsed a batch at a time, the (image, platform) pairs the batch needs are added to it
	 * (kilt_ecs_list_images) and `resolve` is called before the engine applies to any of
	 * them, so that the lookups run together; pairs of earlier batches stay, with their
	 * results. The front end's opts->image_facts reads the table (kilt_image_needs_facts). */
	struct kilt_image_needs *needs; /* borrowed */
	void (*resolve)(void *userdata, struct kilt_image_needs *needs);
	void *resolve_userdata; /* borrowed */
};

/* Applies `recipe` (NULL: kilt_ecs_remove) to the JSON text of a template, giving what parsing
 * it (JSON_REJECT_DUPLICATES), kilt_ecs_inject and the dump above would give: the same bytes,
 * decisions and errors. Returns 0; KILT_CFN_STREAM_WHOLE when the text needs the whole-document
 * path: not an object with a Resources object, a syntax error or duplicate key anywhere (even
 * after a failing resource, since a parse error comes first there), nesting deeper than the
 * splitter follows, an input kind other than AUTO or CLOUDFORMATION; then nothing is reported
 * (ignore `err`). Else a negative code as kilt_ecs_inject. After anything but 0, what
 * was written must be discarded. */
#define KILT_CFN_STREAM_WHOLE 1
int kilt_cfn_stream_inject(const struct kilt_recipe *recipe, const char *text, size_t len,
			   const struct kilt_ecs_options *opts, const struct kilt_cfn_stream *io,
			   struct kilt_report *report, struct kilt_error *err);

/* Terraform and ECS APIs compare container definitions after dropping nulls and empty arrays:
 * removes them recursively from `value` (in place) so a plan shows no perpetual diff. */
void kilt_ecs_prune_empty(json_t *value);

#endif
