/* SPDX-License-Identifier: Apache-2.0 */
/* The plan for one container: a partial plan (the recipe's contribution, validated) combined with
 * the target's facts. This runs once per container, so it only copies, expands markers and merges
 * the environment; every check happened when the partial plan was made. */
#include "recipe-private.h"

enum { FALLBACK = 1 };

static const char *string_fact(const struct kilt_target *t, char code)
{
	switch (code) {
	case MARK_IMAGE:
		return t->image;
	case MARK_NAME:
		return t->name;
	case MARK_GROUP:
		return t->group;
	case MARK_PLATFORM:
		return t->platform;
	default:
		return NULL;
	}
}

static int expand_string(const char *s, size_t len, const struct kilt_target *t, json_t **ret)
{
	const char *m = memchr(s, RECIPE_MARK, len);
	if (!m) {
		*ret = json_stringn_nocheck(s, len);
		return 0;
	}
	struct kbuf b;
	kbuf_init(&b, 1u << 20);
	const char *end = s + len;
	while (m) {
		if (kbuf_add(&b, s, (size_t)(m - s)) < 0 || m + 1 >= end) {
			kbuf_done(&b);
			return FALLBACK;
		}
		const char *fact = string_fact(t, m[1]);
		if (!fact || kbuf_adds(&b, fact) < 0) {
			kbuf_done(&b);
			return FALLBACK;
		}
		s = m + 2;
		m = memchr(s, RECIPE_MARK, (size_t)(end - s));
	}
	if (kbuf_add(&b, s, (size_t)(end - s)) < 0) {
		kbuf_done(&b);
		return FALLBACK;
	}
	json_t *r = json_stringn_nocheck(b.data ? b.data : "", b.len);
	kbuf_done(&b);
	*ret = r;
	return 0;
}

static int copy_value(const json_t *in, const struct kilt_target *t, bool expand, json_t **ret);

static int copy_array(const json_t *in, const struct kilt_target *t, bool expand, json_t **ret)
{
	json_t *out = json_array();
	size_t n = json_array_size(in);
	for (size_t i = 0; i < n; i++) {
		const json_t *el = json_array_get(in, i);
		if (expand && json_is_string(el) && json_string_length(el) == 2 &&
		    json_string_value(el)[0] == RECIPE_MARK) {
			char code = json_string_value(el)[1];
			const json_t *src = code == MARK_ENTRYPOINT ? t->entrypoint
					    : code == MARK_COMMAND  ? t->command
								    : NULL;
			if (code == MARK_ENTRYPOINT || code == MARK_COMMAND) {
				if (!json_is_array(src)) {
					json_decref(out);
					return FALLBACK;
				}
				size_t k;
				json_t *w;
				json_array_foreach (src, k, w) {
					json_t *c = NULL;
					copy_value(w, t, false, &c);
					json_array_append_new(out, c);
				}
				continue;
			}
		}
		json_t *c = NULL;
		if (copy_value(el, t, expand, &c) != 0) {
			json_decref(out);
			return FALLBACK;
		}
		json_array_append_new(out, c);
	}
	*ret = out;
	return 0;
}

/* A copy of the partial plan's value `in` with the target's facts in place of its markers
 * (`expand`; without, a plain copy). A target that only reads its plan (kilt_target.shared) gets
 * the partial plan's own node where it holds no marker, instead of a copy: the partial lives as
 * long as the recipe and nothing changes it, nor the plan (a kept plan's nodes are made with
 * malloc, a copy of them was most of the cost of making one). */
static int copy_value(const json_t *in, const struct kilt_target *t, bool expand, json_t **ret)
{
	if (expand && t->shared && !kilt_recipe_has_marker(in)) {
		*ret = json_incref((json_t *)(uintptr_t)in);
		return 0;
	}
	switch (json_typeof(in)) {
	case JSON_STRING:
		if (!expand) {
			*ret = json_stringn_nocheck(json_string_value(in), json_string_length(in));
			return 0;
		}
		return expand_string(json_string_value(in), json_string_length(in), t, ret);
	case JSON_ARRAY:
		return copy_array(in, t, expand, ret);
	case JSON_OBJECT: {
		json_t *out = json_object();
		const char *key;
		json_t *val;
		json_object_foreach ((json_t *)(uintptr_t)in, key, val) {
			json_t *c = NULL;
			if (copy_value(val, t, expand, &c) != 0) {
				json_decref(out);
				return FALLBACK;
			}
			json_object_set_new_nocheck(out, key, c);
		}
		*ret = out;
		return 0;
	}
	default:
		*ret = json_deep_copy(in);
		return 0;
	}
}

const char *kilt_recipe_fact_hint(const char *fact)
{
	if (strcmp(fact, "entrypoint") == 0)
		return "set the container's entrypoint (ECS EntryPoint, Kubernetes command) or let "
		       "kilt read ENTRYPOINT from a resolvable image";
	if (strcmp(fact, "command") == 0)
		return "set the container's command (ECS Command, Kubernetes args) or let kilt "
		       "read "
		       "CMD from a resolvable image";
	if (strcmp(fact, "image") == 0)
		return "the container has no image reference kilt can read";
	if (strcmp(fact, "name") == 0)
		return "give the container a name";
	if (strcmp(fact, "group") == 0)
		return "the task family / logical ID / pod name is not known here";
	if (strcmp(fact, "platform") == 0)
		return "set the platform (ECS RuntimePlatform, a Kubernetes arch node selector) or "
		       "let "
		       "kilt read it from the image";
	if (strcmp(fact, "environment") == 0)
		return "the container's environment is not known here";
	return "the fact is not known here";
}

static int unknown_fact(struct kilt_error *err, const struct kilt_target *t, const char *fact)
{
	return kilt_error_setf(err, -ENODATA,
			       "original.%s is not known for container %s: the recipe keeps the "
			       "container's %s, so kilt must know it; %s",
			       fact, t->name ? t->name : "(unnamed)", fact,
			       kilt_recipe_fact_hint(fact));
}

static json_t *env_pair(const char *name, json_t *value)
{
	json_t *pair = json_object();
	json_object_set_new_nocheck(pair, "name", json_string_nocheck(name));
	json_object_set_new_nocheck(pair, "value", value);
	return pair;
}

/* Original variables in their order (the recipe's value replacing a clash in place), then the
 * recipe's new variables in the recipe's order. */
static int merge_env(const json_t *recipe_env, const struct kilt_target *t, bool expand,
		     json_t **ret)
{
	size_t n = json_array_size(recipe_env);
	bool small[32];
	bool *used = n <= ARRAY_SIZE(small) ? small : xcalloc(n, sizeof(bool));
	memset(used, 0, n * sizeof(bool));
	json_t *out = json_array();
	int r = 0;
	if (json_is_object(t->environment)) {
		const char *key;
		json_t *val;
		json_object_foreach ((json_t *)(uintptr_t)t->environment, key, val) {
			json_t *v = NULL;
			for (size_t i = 0; i < n; i++) {
				const json_t *pair = json_array_get(recipe_env, i);
				const char *rn = json_string_value(json_object_get(pair, "name"));
				if (rn && strcmp(rn, key) == 0) {
					used[i] = true;
					r = copy_value(json_object_get(pair, "value"), t, expand,
						       &v);
					if (r)
						goto out;
				}
			}
			if (!v)
				copy_value(val, t, false, &v);
			json_array_append_new(out, env_pair(key, v));
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (used[i])
			continue;
		const json_t *pair = json_array_get(recipe_env, i);
		json_t *v = NULL;
		r = copy_value(json_object_get(pair, "value"), t, expand, &v);
		if (r)
			goto out;
		json_array_append_new(
			out, env_pair(json_string_value(json_object_get(pair, "name")), v));
	}
out:
	if (used != small)
		free(used);
	if (r) {
		json_decref(out);
		return r;
	}
	*ret = out;
	return 0;
}

static int add_copy(json_t *plan, const char *key, const json_t *in, const struct kilt_target *t,
		    bool expand)
{
	json_t *c = NULL;
	int r = copy_value(in, t, expand, &c);
	if (r)
		return r;
	json_object_set_new_nocheck(plan, key, c);
	return 0;
}

int kilt_recipe_image_check(const char *image, struct kilt_error *err)
{
	/* The last reference this thread found valid: a recipe's mount image is checked again for
	 * every container it plans, and the answer is the same. */
	static _Thread_local char last_ok[256];
	size_t len = strlen(image);
	if (len < sizeof(last_ok) && last_ok[0] && memcmp(image, last_ok, len + 1) == 0)
		return 0;
	_cleanup_free_ char *plain = NULL;
	if (strstr(image, "${")) {
		/* a target's image in a template may be Fn::Sub text: "${Repo}:1.0" */
		size_t n = strlen(image);
		plain = xmalloc(n + 1);
		size_t o = 0;
		for (size_t i = 0; i < n;) {
			const char *close = image[i] == '$' && image[i + 1] == '{'
						    ? strchr(image + i + 2, '}')
						    : NULL;
			if (close) {
				plain[o++] = 'x';
				i = (size_t)(close - image) + 1;
			} else {
				plain[o++] = image[i++];
			}
		}
		plain[o] = '\0';
	}
	struct kilt_imageref ref;
	int r = kilt_imageref_parse(plain ? plain : image, &ref, err);
	if (r == 0) {
		kilt_imageref_done(&ref);
		if (len < sizeof(last_ok))
			memcpy(last_ok, image, len + 1);
	}
	return r;
}

/* Sidecar images are checked once substitutions and the target's facts are in: a `--set` value
 * or a fact could make one that no runtime would pull. */
static int check_mount_images(const json_t *mounts, struct kilt_error *err)
{
	size_t i;
	json_t *m;
	json_array_foreach (mounts, i, m) {
		const char *image = json_string_value(json_object_get(m, "image"));
		if (!image || strchr(image, RECIPE_MARK))
			continue;
		int r = kilt_recipe_image_check(image, err);
		if (r < 0)
			return kilt_error_prefix(err, "mount %s",
						 json_string_value(json_object_get(m, "name")));
	}
	return 0;
}

/* The members of a partial plan, read in one pass. */
enum {
	P_IMAGE,
	P_ENTRYPOINT,
	P_LAUNCH,
	P_COMMAND,
	P_ENVIRONMENT,
	P_MOUNTS,
	P_CAPABILITIES,
	P_PID_MODE,
	P_UPLOADS,
	P_BACKGROUND,
	P_PLATFORMS,
	P_COUNT
};
static const struct kilt_json_key partial_keys[P_COUNT] = {
	KILT_JSON_KEY("image"),	       KILT_JSON_KEY("entrypoint"),  KILT_JSON_KEY("launch"),
	KILT_JSON_KEY("command"),      KILT_JSON_KEY("environment"), KILT_JSON_KEY("mounts"),
	KILT_JSON_KEY("capabilities"), KILT_JSON_KEY("pid_mode"),    KILT_JSON_KEY("uploads"),
	KILT_JSON_KEY("background"),   KILT_JSON_KEY("platforms"),
};

/* Whether the plan gets the member `bit` of partial value `in`: the caller reads it, or building
 * it could fail (a marker naming a fact the target lacks makes the caller resolve the whole
 * recipe, and that way's result or error must not depend on what the caller reads). */
static bool wanted(const struct kilt_target *t, unsigned bit, const json_t *in, bool expand)
{
	return !t->members || (t->members & bit) || (expand && kilt_recipe_has_marker(in));
}

int kilt_recipe_finalize(const json_t *partial, const struct kilt_target *t, const char *name,
			 const char *hash, bool expand, json_t **ret_plan, struct kilt_error *err)
{
	_cleanup_json_ json_t *plan = json_object();
	if (!t->members || (t->members & KILT_PLAN_RECIPE)) {
		json_t *rec = json_object();
		json_object_set_new_nocheck(rec, "name", json_string_nocheck(name));
		json_object_set_new_nocheck(rec, "hash", json_string_nocheck(hash));
		json_object_set_new_nocheck(plan, "recipe", rec);
	}
	const json_t *pm[P_COUNT];
	kilt_json_members(partial, partial_keys, P_COUNT, pm);

	int r;
	const json_t *j = pm[P_IMAGE];
	if (j && wanted(t, KILT_PLAN_IMAGE, j, expand) &&
	    (r = add_copy(plan, "image", j, t, expand)))
		return r;

	j = pm[P_ENTRYPOINT];
	json_t *ep = NULL;
	if (j) {
		if ((r = copy_value(j, t, expand, &ep)))
			return r;
	} else if (json_is_array(t->entrypoint)) {
		copy_value(t->entrypoint, t, false, &ep);
	} else {
		return unknown_fact(err, t, "entrypoint");
	}
	/* deploy.launch: kilt-launch's argv (counted groups, then "--") in front of the program. */
	j = pm[P_LAUNCH];
	if (j) {
		/* a new array (extended here), whatever the target takes */
		json_t *l = NULL;
		if ((r = json_is_array(j) ? copy_array(j, t, expand, &l)
					  : copy_value(j, t, expand, &l))) {
			json_decref(ep);
			return r;
		}
		json_array_extend(l, ep);
		json_decref(ep);
		ep = l;
	}
	json_object_set_new_nocheck(plan, "entrypoint", ep);
	j = pm[P_COMMAND];
	if (j) {
		if ((r = add_copy(plan, "command", j, t, expand)))
			return r;
	} else if (json_is_array(t->command)) {
		json_t *c = NULL;
		copy_value(t->command, t, false, &c);
		json_object_set_new_nocheck(plan, "command", c);
	} else {
		return unknown_fact(err, t, "command");
	}

	json_t *env = NULL;
	if ((r = merge_env(pm[P_ENVIRONMENT], t, expand, &env)))
		return r;
	json_object_set_new_nocheck(plan, "environment", env);

	/* a partial plan has mounts, capabilities, uploads, background and platforms, lists at
	 * least (kilt_recipe_normalize); the images of the mounts are checked as the plan has them */
	json_t *mounts = NULL;
	if ((r = copy_value(pm[P_MOUNTS], t, expand, &mounts)))
		return r;
	json_object_set_new_nocheck(plan, "mounts", mounts);
	if ((r = check_mount_images(mounts, err)) < 0)
		return r;
	static const struct {
		int member;
		unsigned bit;
	} rest[] = {
		{ P_CAPABILITIES, KILT_PLAN_CAPABILITIES }, { P_PID_MODE, KILT_PLAN_PID_MODE },
		{ P_UPLOADS, KILT_PLAN_UPLOADS },	    { P_BACKGROUND, KILT_PLAN_BACKGROUND },
		{ P_PLATFORMS, KILT_PLAN_PLATFORMS },
	};
	for (size_t i = 0; i < ARRAY_SIZE(rest); i++) {
		j = pm[rest[i].member];
		/* pid_mode only when the recipe says one */
		if (rest[i].member == P_PID_MODE && !j)
			continue;
		if (!wanted(t, rest[i].bit, j, expand))
			continue;
		if ((r = add_copy(plan, partial_keys[rest[i].member].s, j, t, expand)))
			return r;
	}
	*ret_plan = steal_pointer(&plan);
	return 0;
}
