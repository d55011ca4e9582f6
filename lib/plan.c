/* SPDX-License-Identifier: Apache-2.0 */
/* The planning step every target shares (kilt-plan.h): planners, Docker's ENTRYPOINT/CMD rule,
 * the plan's shape check, the idempotency marker, selection by include/ignore lists and the
 * table of image facts an engine asks for. Nothing here knows a document shape. */
#include "internal.h"
#include "kilt.h"

/* ---- planners ---------------------------------------------------------------------------------- */

static int recipe_evaluate(void *userdata, const struct kilt_target *target, const json_t *config,
			   json_t **ret_plan, struct kilt_error *err)
{
	return kilt_recipe_evaluate(userdata, target, config, ret_plan, err);
}

static bool recipe_supports(void *userdata, const char *platform)
{
	return kilt_recipe_supports_platform(userdata, platform);
}

void kilt_planner_from_recipe(const struct kilt_recipe *recipe, struct kilt_planner *ret)
{
	*ret = (struct kilt_planner){
		.name = kilt_recipe_name(recipe),
		.hash = kilt_recipe_hash(recipe),
		.evaluate = recipe_evaluate,
		.supports_platform = recipe_supports,
		.userdata = (void *)(uintptr_t)recipe,
	};
}

bool kilt_planner_supports(const struct kilt_planner *planner, const char *platform)
{
	return !platform || !planner->supports_platform ||
	       planner->supports_platform(planner->userdata, platform);
}

/* ---- Docker's rule ----------------------------------------------------------------------------- */

static bool is_set(const json_t *argv)
{
	return json_is_array(argv) && json_array_size(argv) > 0;
}

/* `v` itself (a reference) or a deep copy of it. */
static json_t *take(const json_t *v, bool copy)
{
	return copy ? json_deep_copy(v) : json_incref((json_t *)(uintptr_t)v);
}

static json_t *array_or_empty(const json_t *v, bool copy)
{
	return json_is_array(v) ? take(v, copy) : json_array();
}

static bool docker_argv(const json_t *entrypoint, const json_t *command, const json_t *image,
			bool copy, json_t **ret_entrypoint, json_t **ret_command)
{
	bool needs_image = !is_set(entrypoint);
	/* only what is asked for is built */
	if (ret_entrypoint) {
		json_t *ep = NULL;
		if (!needs_image)
			ep = take(entrypoint, copy);
		else if (image)
			ep = array_or_empty(json_object_get(image, "entrypoint"), copy);
		*ret_entrypoint = ep;
	}
	if (ret_command) {
		json_t *cmd = NULL;
		if (!needs_image)
			cmd = array_or_empty(is_set(command) ? command : NULL, copy);
		else if (is_set(command))
			cmd = take(command, copy);
		else if (image)
			cmd = array_or_empty(json_object_get(image, "command"), copy);
		*ret_command = cmd;
	}
	return needs_image;
}

bool kilt_docker_argv(const json_t *entrypoint, const json_t *command, const json_t *image,
		      json_t **ret_entrypoint, json_t **ret_command)
{
	return docker_argv(entrypoint, command, image, true, ret_entrypoint, ret_command);
}

bool kilt_docker_argv_shared(const json_t *entrypoint, const json_t *command, const json_t *image,
			     json_t **ret_entrypoint, json_t **ret_command)
{
	return docker_argv(entrypoint, command, image, false, ret_entrypoint, ret_command);
}

/* ---- the planning step ------------------------------------------------------------------------- */

int kilt_plan_check(const json_t *plan, struct kilt_error *err)
{
	enum { ENTRYPOINT, COMMAND, ENVIRONMENT, MOUNTS, CAPABILITIES, PID_MODE, COUNT };
	static const struct kilt_json_key keys[COUNT] = {
		KILT_JSON_KEY("entrypoint"),   KILT_JSON_KEY("command"),
		KILT_JSON_KEY("environment"),  KILT_JSON_KEY("mounts"),
		KILT_JSON_KEY("capabilities"), KILT_JSON_KEY("pid_mode"),
	};
	const json_t *v[COUNT];
	kilt_json_members(plan, keys, COUNT, v);
	if (!json_is_object(plan) || !json_is_array(v[ENTRYPOINT]))
		return kilt_error_setf(err, -EINVAL, "the recipe's plan has no entrypoint list");
	for (size_t i = COMMAND; i <= CAPABILITIES; i++)
		if (v[i] && !json_is_array(v[i]))
			return kilt_error_setf(err, -EINVAL, "the recipe's plan: %s is not a list",
					       keys[i].s);
	if (v[PID_MODE] && !json_is_string(v[PID_MODE]))
		return kilt_error_setf(err, -EINVAL, "the recipe's plan: pid_mode is not a string");
	return 0;
}

int kilt_plan_container(const struct kilt_planner *planner, const struct kilt_target *target,
			const json_t *config, json_t **ret_plan, struct kilt_error *err)
{
	_cleanup_json_ json_t *plan = NULL;
	int r = planner->evaluate(planner->userdata, target, config, &plan, err);
	if (r < 0)
		return kilt_error_prefix(err, "recipe %s", planner->name);
	r = kilt_plan_check(plan, err);
	if (r < 0)
		return r;
	*ret_plan = steal_pointer(&plan);
	return 0;
}

/* ---- the marker -------------------------------------------------------------------------------- */

void kilt_marker_init(struct kilt_marker *ret, const struct kilt_planner *planner,
		      const json_t *settings)
{
	*ret = (struct kilt_marker){ .recipe = xstrdup(planner->name),
				     .hash = xstrdup(planner->hash) };
	if (!json_object_size(settings))
		return;
	/* json_dumpb into a buffer of kilt's: json_dumps's text would come from jansson's allocator,
	 * a request's arena in the webhook (kilt-json-arena.h) */
	const size_t flags = JSON_COMPACT | JSON_SORT_KEYS;
	size_t len = json_dumpb(settings, NULL, 0, flags);
	if (len == 0)
		return;
	_cleanup_free_ char *text = xmalloc(len + 1);
	if (json_dumpb(settings, text, len, flags) != len)
		return;
	text[len] = '\0';
	char *digest = kilt_digest_sha256(text, strlen(text));
	/* "sha256:" + the first 16 hex digits: enough to tell settings apart */
	if (strlen(digest) > 23)
		digest[23] = '\0';
	ret->settings = digest;
}

void kilt_marker_done(struct kilt_marker *m)
{
	if (!m)
		return;
	free(m->recipe);
	free(m->hash);
	free(m->settings);
	*m = (struct kilt_marker){ 0 };
}

bool kilt_marker_is(const struct kilt_marker *m, const char *recipe, const char *hash,
		    const char *settings)
{
	if (!recipe || !hash || strcmp(recipe, m->recipe) != 0 || strcmp(hash, m->hash) != 0)
		return false;
	if ((settings == NULL) != (m->settings == NULL))
		return false;
	return !settings || strcmp(settings, m->settings) == 0;
}

/* ---- selection --------------------------------------------------------------------------------- */

void kilt_selection_init(struct kilt_selection *ret, enum kilt_select_mode mode)
{
	*ret = (struct kilt_selection){ .mode = mode };
}

void kilt_selection_done(struct kilt_selection *s)
{
	if (!s)
		return;
	json_decref(s->include_containers);
	json_decref(s->ignore_containers);
	s->include_containers = s->ignore_containers = NULL;
}

static json_t *split_colons(const char *s)
{
	json_t *arr = json_array();
	for (const char *p = s;;) {
		const char *c = strchr(p, ':');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		while (n && *p == ' ') {
			p++;
			n--;
		}
		while (n && p[n - 1] == ' ')
			n--;
		if (n)
			json_array_append_new(arr, json_stringn(p, n));
		if (!c)
			break;
		p = c + 1;
	}
	return arr;
}

void kilt_selection_set_list(struct kilt_selection *s, bool include, const char *names)
{
	json_t **slot = include ? &s->include_containers : &s->ignore_containers;
	json_decref(*slot);
	*slot = split_colons(names);
}

static bool is_listed(const json_t *list, const char *name)
{
	size_t i;
	const json_t *e;
	json_array_foreach (list, i, e) {
		if (json_is_string(e) && strcmp(json_string_value(e), name) == 0)
			return true;
	}
	return false;
}

bool kilt_selection_workload(const struct kilt_selection *s, char *why, size_t size)
{
	const char *noun = s->noun ? s->noun : "tag";
	const char *verb = s->verb ? s->verb : "tagged";
	if (s->ignore) {
		snprintf(why, size, "%s kilt-ignore", verb);
		return false;
	}
	if (s->mode == KILT_SELECT_OPT_IN && !s->include && !s->include_containers) {
		snprintf(why, size, "opt-in mode and no kilt-include %s", noun);
		return false;
	}
	return true;
}

bool kilt_selection_container(const struct kilt_selection *s, const char *name,
			      const char *name_why, char *why, size_t size, bool *ret_warn,
			      bool *ret_listed)
{
	const char *noun = s->noun ? s->noun : "tag";
	const char *inc = s->include_key ? s->include_key : "kilt-include-containers";
	const char *ign = s->ignore_key ? s->ignore_key : "kilt-ignore-containers";
	bool warn_ignored = false, listed_ignored = false;
	bool *warn = ret_warn ? ret_warn : &warn_ignored;
	bool *listed = ret_listed ? ret_listed : &listed_ignored;
	*warn = *listed = false;
	if (!name) {
		if (!s->include_containers && !s->ignore_containers)
			return true;
		snprintf(why, size, "%s, so kilt cannot tell whether the %s %s names it",
			 name_why ? name_why : "the container's name is not known",
			 s->include_containers ? inc : ign, noun);
		*warn = true;
		return false;
	}
	if (s->ignore_containers && is_listed(s->ignore_containers, name)) {
		snprintf(why, size, "listed in the %s %s", ign, noun);
		return false;
	}
	if (s->include_containers) {
		if (!is_listed(s->include_containers, name)) {
			snprintf(why, size, "not listed in the %s %s", inc, noun);
			return false;
		}
		*listed = true;
	}
	return true;
}

/* ---- image facts ------------------------------------------------------------------------------- */

void kilt_image_needs_init(struct kilt_image_needs *ret)
{
	*ret = (struct kilt_image_needs){ 0 };
}

void kilt_image_needs_done(struct kilt_image_needs *needs)
{
	if (!needs)
		return;
	for (size_t i = 0; i < needs->n; i++) {
		free(needs->v[i].image);
		free(needs->v[i].platform);
		json_decref(needs->v[i].facts);
	}
	free(needs->v);
	json_decref(needs->index);
	kilt_image_needs_init(needs);
}

/* Entries are keyed by what the registry is asked (kilt_imageref_normalize), so every spelling of
 * one image is one entry and one lookup; a reference that does not parse keeps its text (its
 * lookup fails with the parser's reason). */
static char *need_image(const char *image)
{
	char *norm = NULL;
	if (kilt_imageref_normalize(image, &norm, NULL) < 0)
		return xstrdup(image);
	return norm;
}

static char *need_key(const char *image, const char *platform)
{
	_cleanup_free_ char *norm = need_image(image);
	return xasprintf("%s %s", platform ? platform : "-", norm);
}

struct kilt_image_need *kilt_image_needs_find(const struct kilt_image_needs *needs,
					      const char *image, const char *platform)
{
	if (!needs->index)
		return NULL;
	_cleanup_free_ char *key = need_key(image, platform);
	json_t *at = json_object_get(needs->index, key);
	return at ? &needs->v[json_integer_value(at)] : NULL;
}

struct kilt_image_need *kilt_image_needs_add(struct kilt_image_needs *needs, const char *image,
					     const char *platform)
{
	struct kilt_image_need *have = kilt_image_needs_find(needs, image, platform);
	if (have)
		return have;
	if (needs->n == needs->cap) {
		needs->cap = needs->cap ? needs->cap * 2 : 16;
		needs->v = xrealloc(needs->v, needs->cap * sizeof(*needs->v));
	}
	if (!needs->index)
		needs->index = json_object();
	_cleanup_free_ char *key = need_key(image, platform);
	json_object_set_new(needs->index, key, json_integer((json_int_t)needs->n));
	struct kilt_image_need *n = &needs->v[needs->n++];
	*n = (struct kilt_image_need){ .image = need_image(image),
				       .platform = platform ? xstrdup(platform) : NULL };
	return n;
}

int kilt_image_needs_facts(void *userdata, const char *image, const char *platform,
			   json_t **ret_facts, struct kilt_error *err)
{
	const struct kilt_image_need *n = kilt_image_needs_find(userdata, image, platform);
	if (!n || !n->resolved)
		return kilt_error_setf(err, -ENOENT, "image %s (%s) was not looked up", image,
				       platform ? platform : "platform unknown");
	if (n->rc < 0) {
		if (err)
			*err = n->err;
		return n->rc;
	}
	*ret_facts = json_incref(n->facts);
	return 0;
}
