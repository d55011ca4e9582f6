/* SPDX-License-Identifier: Apache-2.0 */
/* The ECS side of the planning step (kilt-plan.h): a container definition's facts as a recipe
 * sees them (its image as text, what it really runs by Docker's rule, looking the image up when
 * it sets no EntryPoint, its environment, the task's tags and its labels as metadata), the plan
 * for it, and the operator's settings that the marker covers. */
#include "ecs-internal.h"

/* Each element of an argv list is a string or, in a CloudFormation template, an intrinsic
 * that stands for one; anything else (a number, an arbitrary object) is no argv word. */
static int argv_words_check(const struct kilt_ecs_engine *e, const json_t *list, const char *field,
			    struct kilt_error *err)
{
	size_t i;
	json_t *el;
	json_array_foreach (list, i, el) {
		if (json_is_string(el) || (e->intrinsics && kilt_cfn_is_intrinsic(el, NULL)))
			continue;
		const char *kind = json_is_number(el)	 ? "a number"
				   : json_is_boolean(el) ? "a boolean"
				   : json_is_null(el)	 ? "null"
				   : json_is_array(el)	 ? "a list"
							 : "an object";
		return kilt_error_setf(err, -EINVAL,
				       "%s[%zu] is %s, not a string (each element of %s is one "
				       "argv word; quote it)",
				       field, i, kind, field);
	}
	return 0;
}

/* What the container would really run (Docker's rule, kilt_docker_argv): fills owned entrypoint
 * and command, asking for the image's facts when the container sets no EntryPoint. While the
 * engine only lists images (e->needs), the image is listed instead and 1 returned. */
static int original_argv(struct kilt_ecs_engine *e, struct kilt_ecs_task *t, json_t *c,
			 const char *image, const char *image_why, char *summary, size_t ssize,
			 json_t **ret_ep, json_t **ret_cmd, struct kilt_error *err)
{
	const struct kilt_ecs_names *n = e->n;
	json_t *ep = json_object_get(c, n->entrypoint), *cmd = json_object_get(c, n->command);
	if (json_is_null(ep))
		ep = NULL;
	if (json_is_null(cmd))
		cmd = NULL;
	char why[256] = "";
	_cleanup_json_ json_t *rep = NULL, *rcmd = NULL;
	const char *fn;
	const char *field[2] = { n->entrypoint, n->command };
	json_t **value[2] = { &ep, &cmd }, **resolved[2] = { &rep, &rcmd };
	for (size_t i = 0; i < 2; i++) {
		json_t *v = *value[i];
		if (!v || !e->intrinsics || !kilt_cfn_is_intrinsic(v, &fn))
			continue;
		if (kilt_cfn_resolve_list(&e->cfn, v, resolved[i], why, sizeof(why)) < 0)
			return kilt_error_setf(err, -EINVAL,
					       "%s is %s, which kilt cannot evaluate offline (%s); "
					       "write it as a literal list",
					       field[i], fn, why);
		*value[i] = *resolved[i];
		kilt_ecs_append_reason(summary, ssize,
				       "%s (%s) was evaluated to its value now: run kilt again "
				       "when the parameters change",
				       field[i], fn);
		t->warn = true;
	}
	if ((ep && !json_is_array(ep)) || (cmd && !json_is_array(cmd)))
		return kilt_error_setf(err, -EINVAL, "%s and %s must be lists of strings",
				       n->entrypoint, n->command);
	/* The words move (EntryPoint's end up in the patched Command): each must be one. */
	int r = argv_words_check(e, ep, n->entrypoint, err);
	if (r == 0)
		r = argv_words_check(e, cmd, n->command, err);
	if (r < 0)
		return r;
	json_t *rule_ep = NULL, *rule_cmd = NULL;
	if (!kilt_docker_argv(ep, cmd, NULL, &rule_ep, &rule_cmd)) {
		*ret_ep = rule_ep;
		*ret_cmd = rule_cmd;
		return 0;
	}
	json_decref(rule_cmd);
	/* The image's ENTRYPOINT is needed (and its CMD unless the container sets Command). */
	if (!image)
		return kilt_error_setf(
			err, -ENOENT,
			"%s is not set and the image is an intrinsic kilt cannot "
			"evaluate offline (%s); give that value, or set %s (and %s) on "
			"the container to what the image runs",
			n->entrypoint, image_why, n->entrypoint, n->command);
	if (e->needs) {
		kilt_image_needs_add(e->needs, image, t->platform);
		return 1;
	}
	if (!e->opts.image_facts)
		return kilt_error_setf(
			err, -ENOENT,
			"%s is not set and the entrypoint of image %s cannot be "
			"looked up offline; set %s (and %s) on the container to what "
			"the image runs (see `docker inspect %s`)",
			n->entrypoint, image, n->entrypoint, n->command, image);
	_cleanup_json_ json_t *facts = NULL;
	e->lookups++;
	r = e->opts.image_facts(e->opts.image_facts_userdata, image, t->platform, &facts, err);
	if (r < 0) {
		char inner[sizeof(err->msg)];
		snprintf(inner, sizeof(inner), "%s", err->msg);
		return kilt_error_setf(
			err, r,
			"%s is not set and the entrypoint of image %s could not be "
			"looked up (%s); set %s (and %s) on the container to what the "
			"image runs",
			n->entrypoint, image, inner, n->entrypoint, n->command);
	}
	if (!facts)
		facts = json_object();
	_cleanup_json_ json_t *rep2 = NULL, *rcmd2 = NULL;
	kilt_docker_argv(ep, cmd, facts, &rep2, &rcmd2);
	if (json_array_size(rep2) == 0 && json_array_size(rcmd2) == 0)
		return kilt_error_setf(err, -ENOENT,
				       "image %s sets neither ENTRYPOINT nor CMD and the container "
				       "sets no %s; set it on the container",
				       image, n->command);
	*ret_ep = steal_pointer(&rep2);
	*ret_cmd = steal_pointer(&rcmd2);
	return 0;
}

/* The planning step for one container (kilt_plan_container): its facts as the recipe sees them
 * (the image as text, what it runs, its environment, the task's tags and its labels as
 * metadata), the plan, and for an image written as an intrinsic, every string built from it made
 * an Fn::Sub again. Returns 1 without a plan while the engine only lists images. */
int kilt_ecs_plan_container(struct kilt_ecs_engine *e, struct kilt_ecs_task *t, json_t *c,
			    const char *cname, char *summary, size_t ssize, json_t **ret_plan,
			    struct kilt_error *err)
{
	const struct kilt_ecs_names *n = e->n;
	json_t *imagev = json_object_get(c, n->image);
	if (!imagev)
		return kilt_error_setf(err, -EINVAL, "the container has no %s", n->image);
	/* The image as text: literal, or Fn::Sub text standing for the intrinsic. */
	_cleanup_free_ char *sub_text = NULL, *resolved = NULL;
	_cleanup_json_ json_t *sub_vars = NULL, *defaults = NULL;
	char image_why[256] = "";
	const char *image_fact = json_string_value(imagev);
	if (!image_fact) {
		if (!e->intrinsics || !kilt_cfn_is_intrinsic(imagev, NULL))
			return kilt_error_setf(err, -EINVAL, "%s is not a string", n->image);
		sub_text = kilt_cfn_sub_text(imagev, &sub_vars);
		defaults = json_object();
		e->cfn.defaults_used = defaults;
		if (kilt_cfn_resolve_string(&e->cfn, imagev, &resolved, image_why,
					    sizeof(image_why)) < 0)
			resolved = NULL;
		e->cfn.defaults_used = NULL;
	}
	const char *image_lookup = image_fact ? image_fact : resolved;

	_cleanup_json_ json_t *ep = NULL, *cmd = NULL;
	size_t looked_up = e->lookups;
	int r = original_argv(e, t, c, image_lookup, image_why, summary, ssize, &ep, &cmd, err);
	if (r != 0)
		return r;
	if (e->needs)
		return 1;
	if (e->lookups != looked_up && json_object_size(defaults)) {
		/* the entrypoint written now comes from an image the template only suggests */
		const char *pname;
		json_t *pdef;
		json_object_foreach (defaults, pname, pdef) {
			kilt_ecs_append_reason(
				summary, ssize,
				"the image's ENTRYPOINT/CMD were looked up for %s, parameter "
				"%s's Default: the image deployed decides; give it with --param "
				"%s=IMAGE (the macro uses the stack's value)",
				resolved, pname, pname);
			t->warn = true;
		}
	}

	_cleanup_json_ json_t *env = json_object();
	json_t *cenv = json_object_get(c, n->environment);
	size_t i;
	json_t *el;
	if (json_is_array(cenv)) {
		json_array_foreach (cenv, i, el) {
			const char *name = json_string_value(json_object_get(el, n->env_name));
			json_t *value = json_object_get(el, n->env_value);
			if (name)
				json_object_set_new(env, name,
						    value ? json_incref(value) : json_string(""));
		}
	}
	_cleanup_json_ json_t *meta = json_copy(t->metadata);
	json_t *labels = json_object_get(c, n->docker_labels);
	if (json_is_object(labels))
		json_object_update(meta, labels);

	struct kilt_target target = {
		.image = image_fact ? image_fact : sub_text,
		.name = cname,
		.group = t->id,
		.entrypoint = ep,
		.command = cmd,
		.environment = env,
		.metadata = meta,
		.platform = t->platform,
	};
	_cleanup_json_ json_t *plan = NULL;
	r = kilt_plan_container(e->planner, &target, e->opts.config, &plan, err);
	if (r < 0)
		return r;
	if (sub_text) {
		/* wrapping edits the plan in place: never touch what the recipe module may share */
		json_t *own = json_deep_copy(plan);
		json_decref(plan);
		plan = own;
		const char *keys[] = { "image", "entrypoint", "command", "environment", "mounts" };
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			json_t *v = json_object_get(plan, keys[k]);
			if (v)
				json_object_set_new(
					plan, keys[k],
					kilt_cfn_wrap_sub(json_incref(v), sub_text, sub_vars));
		}
	}
	*ret_plan = steal_pointer(&plan);
	return 0;
}

/* The operator's settings that change what a recipe produces, so that changing them is not
 * mistaken for "already injected" (the marker's settings hash). Owned. */
json_t *kilt_ecs_settings(const struct kilt_ecs_options *o)
{
	json_t *s = json_object();
	if (json_is_object(o->config) && json_object_size(o->config))
		json_object_set(s, "config", (json_t *)(uintptr_t)o->config);
	if (o->sidecar_repository_credentials)
		json_object_set_new(s, "credentials",
				    json_string(o->sidecar_repository_credentials));
	if (o->sidecar_log_configuration)
		json_object_set(s, "logs", (json_t *)(uintptr_t)o->sidecar_log_configuration);
	if (o->sidecar_logs_off)
		json_object_set_new(s, "logs_off", json_true());
	return s;
}

/* A Secrets Manager secret ARN or name goes into every sidecar as written: an empty one, or
 * one with blanks or control characters, is a typo that ECS would only reject at deploy time. */
int kilt_ecs_check_secret_ref(const char *s, struct kilt_error *err)
{
	if (!*s)
		return kilt_error_setf(err, -EINVAL,
				       "sidecar repository credentials: empty (expected the ARN "
				       "or name of a Secrets Manager secret)");
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return kilt_error_setf(
				err, -EINVAL,
				"sidecar repository credentials \"%.200s\": blank or "
				"control character at byte %zu (expected the ARN or "
				"name of a Secrets Manager secret)",
				s, i + 1);
	if (len > 2048)
		return kilt_error_setf(err, -EINVAL,
				       "sidecar repository credentials: %zu bytes, longer than an "
				       "ARN can be (2048)",
				       len);
	return 0;
}
