/* SPDX-License-Identifier: Apache-2.0 */
/* The planning step every target shares (lib/plan.c, lib/report.c): a container's facts, Docker's
 * ENTRYPOINT/CMD rule, a checked plan, the idempotency marker, the selection decision and the
 * report. A target engine (ECS today, a Kubernetes pod engine next) reads its own document
 * shapes, fills these types from them and writes the plan back; the rules themselves live here
 * once. Included by kilt.h; docs/internals.md shows how an engine plugs in. */
#ifndef KILT_PLAN_H
#define KILT_PLAN_H

/* ---- the planner ----------------------------------------------------------------------------- */

/* Where plans come from: a recipe (kilt_planner_from_recipe), or anything else that produces
 * the plan schema of kilt_recipe_evaluate (tests, front ends with plans of their own). `name` and
 * `hash` identify it in markers. `supports_platform` may be NULL (every platform supported). */
struct kilt_planner {
	const char *name; /* borrowed */
	const char *hash; /* borrowed */
	int (*evaluate)(void *userdata, const struct kilt_target *target, const json_t *config,
			json_t **ret_plan, struct kilt_error *err);
	bool (*supports_platform)(void *userdata, const char *platform);
	void *userdata; /* borrowed */
};

/* Fills `ret` with a planner that evaluates `recipe` (borrowed: it must outlive the planner). */
void kilt_planner_from_recipe(const struct kilt_recipe *recipe, struct kilt_planner *ret);

/* True when `planner` declares support for `platform` (NULL: unknown, supported). */
bool kilt_planner_supports(const struct kilt_planner *planner, const char *platform);

/* ---- Docker's rule (DESIGN §3) ---------------------------------------------------------------- */

/* What a container really runs: its runtime starts ENTRYPOINT + CMD. `entrypoint`/`command` are
 * the workload's own (ECS EntryPoint/Command, Kubernetes command/args); NULL, JSON null or an
 * empty list means "not set". `image` is the image config as kilt_image_config_parse gives it
 * ({"entrypoint": [..], "command": [..], ...}), or NULL when it was not looked up.
 *   - The workload sets an entrypoint: that entrypoint, and the workload's command or none ([]);
 *     the image's CMD is dropped.
 *   - It sets none: the image's ENTRYPOINT, and the workload's command if set, else the image's
 *     CMD.
 * `ret_entrypoint`/`ret_command` receive owned arrays (deep copies), or NULL for a part that is
 * not known because the image is needed and `image` is NULL. Returns true when the image's config
 * is needed to know what runs (the workload sets no entrypoint), which is when an engine lists the
 * image for a lookup. Either output pointer may be NULL to only ask that question. */
bool kilt_docker_argv(const json_t *entrypoint, const json_t *command, const json_t *image,
		      json_t **ret_entrypoint, json_t **ret_command);
/* The same, with references to the arrays given (or the image's) instead of copies where it can:
 * for a caller that only reads them. */
bool kilt_docker_argv_shared(const json_t *entrypoint, const json_t *command, const json_t *image,
			     json_t **ret_entrypoint, json_t **ret_command);

/* ---- the planning step ------------------------------------------------------------------------ */

/* Evaluates the plan of one container with `planner` and checks that it has the shape an engine
 * applies (an entrypoint list; command, environment, mounts and capabilities lists when present;
 * pid_mode a string). Errors are prefixed with "recipe <name>: " (planner errors) and keep the
 * planner's code (-ENODATA unknown fact, -ENOTSUP platform, -EINVAL). */
int kilt_plan_container(const struct kilt_planner *planner, const struct kilt_target *target,
			const json_t *config, json_t **ret_plan, struct kilt_error *err);
/* The shape check alone. */
int kilt_plan_check(const json_t *plan, struct kilt_error *err);

/* ---- the idempotency marker ------------------------------------------------------------------- */

/* What a patched object carries so that re-applying is a no-op and a changed recipe or setting
 * replaces the injection: the recipe's name and hash and a digest of the operator's settings
 * that change the result (NULL when there are none). Each target stores the three strings in
 * its own labels or annotations. */
struct kilt_marker {
	char *recipe; /* owned */
	char *hash; /* owned */
	char *settings; /* owned; NULL: no settings */
};
/* Fills `ret` for `planner` and `settings` (an object of whatever the target's settings are; NULL
 * or empty: none): "sha256:" and the first 16 hex digits of the SHA-256 of its compact,
 * key-sorted JSON text. */
void kilt_marker_init(struct kilt_marker *ret, const struct kilt_planner *planner,
		      const json_t *settings);
void kilt_marker_done(struct kilt_marker *marker);
/* True when an object's stored marker (any of them NULL: absent) is `m`. */
bool kilt_marker_is(const struct kilt_marker *m, const char *recipe, const char *hash,
		    const char *settings);

/* ---- selection -------------------------------------------------------------------------------- */

enum kilt_select_mode {
	/* every eligible workload is patched unless it says ignore (the default) */
	KILT_SELECT_OPT_OUT = 0,
	/* only workloads that say include are patched */
	KILT_SELECT_OPT_IN,
};

/* Which of a workload's containers to patch, as the workload's own tags, labels or annotations
 * say (ECS `kilt-include`, `kilt-ignore`, `kilt-include-containers`, `kilt-ignore-containers`).
 * Each target fills it from its own metadata; the decisions below are the same for all. */
struct kilt_selection {
	enum kilt_select_mode mode;
	/* how reasons name where the selection was read: "tag" and "tagged" (the defaults, for
	 * NULL), "annotation" and "annotated"... Static or borrowed. */
	const char *noun, *verb;
	/* the names of the container lists in reasons: "kilt-include-containers" and
	 * "kilt-ignore-containers" (the defaults, for NULL), "kilt.dev/include-containers"...
	 * Static or borrowed. */
	const char *include_key, *ignore_key;
	bool include; /* the workload says include */
	bool ignore; /* the workload says ignore */
	json_t *include_containers; /* owned array of names, or NULL: not given */
	json_t *ignore_containers; /* owned array of names, or NULL: not given */
};

void kilt_selection_init(struct kilt_selection *ret, enum kilt_select_mode mode);
void kilt_selection_done(struct kilt_selection *s);
/* Sets the include (or ignore) list from colon-separated names ("app:worker"; blanks around a
 * name and empty names are dropped); a later call replaces an earlier one. */
void kilt_selection_set_list(struct kilt_selection *s, bool include, const char *names);
/* Whether the workload is patched at all. When not, `why` (size bytes) says why. A list of
 * containers to include counts as saying include. */
bool kilt_selection_workload(const struct kilt_selection *s, char *why, size_t size);
/* Whether the container `name` is patched. NULL: its name is not known (`name_why`, may be NULL,
 * says why); it is then patched when the workload has no include or ignore list, and skipped
 * with a warning when it has one (whether the list names it cannot be told). When not patched,
 * `why` (size bytes) says why and `*ret_warn` (may be NULL) whether that deserves the operator's
 * attention. `*ret_listed` (may be NULL) tells that the include list names it, which wins over a
 * target's own "not the application" rules. The lists apply in both modes (docs/ecs.md says
 * where this differs from the original kilt). */
bool kilt_selection_container(const struct kilt_selection *s, const char *name,
			      const char *name_why, char *why, size_t size, bool *ret_warn,
			      bool *ret_listed);

/* ---- the report ------------------------------------------------------------------------------- */

enum kilt_verdict {
	KILT_PATCHED, /* injected by this run */
	KILT_UNCHANGED, /* already carries this recipe's injection: left byte for byte */
	KILT_SKIPPED, /* left alone; the reason says why */
	KILT_REMOVED, /* an earlier injection was undone (workload or container now excluded) */
};

/* One decision about a workload (container == NULL) or one of its containers. */
struct kilt_decision {
	char *task; /* owned: the workload (CloudFormation logical ID, task family, pod...) */
	char *container; /* owned: container name; NULL for the workload itself */
	enum kilt_verdict verdict;
	bool warning; /* the reason deserves the operator's attention */
	char *reason; /* owned: one sentence a user can act on */
};

/* What a run decided, in document order. Caller-owned; release with kilt_report_done. */
struct kilt_report {
	const char *input; /* static: the kind of document processed ("cloudformation"...) */
	struct kilt_decision *decisions; /* owned */
	size_t n_decisions;
	size_t cap; /* decisions allocated */
	size_t n_patched, n_unchanged, n_skipped, n_removed, n_warnings;
};

void kilt_report_init(struct kilt_report *report);
/* Releases the contents; NULL is a no-op. */
void kilt_report_done(struct kilt_report *report);
/* Appends a decision (strings copied; a reason's broken UTF-8 bytes are dropped, so a reason
 * holding text cut to a buffer still goes into JSON) and returns its index. */
size_t kilt_report_add(struct kilt_report *report, const char *task, const char *container,
		       enum kilt_verdict verdict, bool warning, const char *reason);
/* Replaces the reason of decision `i`. */
void kilt_report_set_reason(struct kilt_report *report, size_t i, const char *reason);
/* Moves every decision of `src` to the end of `dst`; `src` is left empty. */
void kilt_report_move(struct kilt_report *dst, struct kilt_report *src);
/* Recounts the totals from the decisions (containers only; warnings of every decision). */
void kilt_report_tally(struct kilt_report *report);
/* "patched", "unchanged", "skipped", "removed"; static. */
const char *kilt_verdict_name(enum kilt_verdict verdict);
/* The report as JSON (owned): {"input": "...", "decisions": [{"task", "container"?, "decision",
 * "reason", "warning"?}], "patched": n, "unchanged": n, "skipped": n, "removed": n,
 * "warnings": n}. */
json_t *kilt_report_to_json(const struct kilt_report *report);

/* ---- image facts, in two phases --------------------------------------------------------------- */

/* An engine first lists the (image, platform) pairs a document needs (kilt_ecs_list_images); the
 * front end resolves them however it likes (concurrently, within its time budget) and stores
 * each result in its entry; the engine then applies, reading the facts through
 * kilt_image_needs_facts. */
struct kilt_image_need {
	char *image; /* owned: the reference as the registry is asked (kilt_imageref_normalize) */
	char *platform; /* owned; NULL: unknown */
	/* filled by the front end: */
	bool resolved; /* false: not looked up (yet) */
	int rc; /* 0, or the lookup's negative error code (`err` says why) */
	json_t *facts; /* owned, when rc == 0: as kilt_image_config_parse gives */
	struct kilt_error err;
};

struct kilt_image_needs {
	struct kilt_image_need *v; /* owned */
	size_t n, cap;
	json_t *index; /* owned: "platform image" -> position in v */
};

void kilt_image_needs_init(struct kilt_image_needs *ret);
void kilt_image_needs_done(struct kilt_image_needs *needs);
/* Adds (image, platform) unless it is already listed, whatever the image's spelling ("nginx" and
 * "docker.io/library/nginx:latest" are one entry, kilt_imageref_normalize); returns the entry
 * (borrowed, valid until the next add). */
struct kilt_image_need *kilt_image_needs_add(struct kilt_image_needs *needs, const char *image,
					     const char *platform);
/* The entry for (image, platform) in any spelling of the image, or NULL. */
struct kilt_image_need *kilt_image_needs_find(const struct kilt_image_needs *needs,
					      const char *image, const char *platform);
/* An image-facts hook (kilt_ecs_image_facts_fn) answering from `userdata`, a struct
 * kilt_image_needs: the resolved facts (a new reference), the stored failure, or -ENOENT "was not
 * looked up" for a pair that was not listed or not resolved. */
int kilt_image_needs_facts(void *userdata, const char *image, const char *platform,
			   json_t **ret_facts, struct kilt_error *err);

#endif
