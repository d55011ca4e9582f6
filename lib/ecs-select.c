/* SPDX-License-Identifier: Apache-2.0 */
/* Task and container selection of the ECS engine: the kilt-* tags (read into the shared
 * selection type, kilt-plan.h), the launch type, the platform and the containers that are not
 * the application decide what is patched, each skip with a reason a user can act on
 * (docs/ecs.md, "Which tasks and containers are patched"). */
#include <stdarg.h>
#include <strings.h>

#include "ecs-internal.h"

static bool str_in_array(const json_t *arr, const char *s)
{
	size_t i;
	const json_t *e;
	json_array_foreach (arr, i, e) {
		if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
			return true;
	}
	return false;
}

void kilt_ecs_skip_task(struct kilt_ecs_task *t, bool warn, const char *fmt, ...)
{
	t->selected = false;
	t->warn = t->warn || warn;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
	va_end(ap);
}

/* Reads the kilt-* tags. Returns false (with the task skipped) when they cannot be read. */
static bool read_tags(struct kilt_ecs_engine *e, struct kilt_ecs_task *t)
{
	const struct kilt_ecs_names *n = e->n;
	json_t *tags = json_object_get(t->props, n->tags);
	const char *fn;
	if (!tags)
		return true;
	if (e->intrinsics && kilt_cfn_is_intrinsic(tags, &fn)) {
		kilt_ecs_skip_task(
			t, true,
			"Tags is %s, so kilt cannot read the kilt-* tags; write Tags as a list",
			fn);
		return false;
	}
	if (!json_is_array(tags))
		return true;
	size_t i;
	json_t *tag;
	json_array_foreach (tags, i, tag) {
		json_t *a, *b;
		if (e->intrinsics && kilt_cfn_if_branches(tag, &a, &b)) {
			const char *ka = json_string_value(json_object_get(a, n->key));
			const char *kb = json_string_value(json_object_get(b, n->key));
			if ((ka && strncmp(ka, "kilt-", 5) == 0) ||
			    (kb && strncmp(kb, "kilt-", 5) == 0)) {
				kilt_ecs_skip_task(
					t, true,
					"a %s tag stands inside Fn::If, so whether it applies is "
					"known only at deploy time; move it out of the condition",
					ka ? ka : kb);
				return false;
			}
			continue;
		}
		const char *key = json_string_value(json_object_get(tag, n->key));
		const json_t *value = json_object_get(tag, n->value);
		if (!key)
			continue;
		if (value)
			json_object_set_new(t->metadata, key, json_deep_copy(value));
		bool inc = strcmp(key, "kilt-include-containers") == 0;
		bool ign = strcmp(key, "kilt-ignore-containers") == 0;
		if (strcmp(key, "kilt-include") == 0)
			t->sel.include = true;
		else if (strcmp(key, "kilt-ignore") == 0)
			t->sel.ignore = true;
		else if (inc || ign) {
			char why[256] = "";
			_cleanup_free_ char *s = NULL;
			if (kilt_cfn_resolve_string(&e->cfn, value, &s, why, sizeof(why)) < 0) {
				char msg[400];
				snprintf(msg, sizeof(msg),
					 "the value of tag %s cannot be evaluated offline (%s); "
					 "write "
					 "the container names as a literal",
					 key, why);
				kilt_ecs_skip_task(t, true, "%s", msg);
				return false;
			}
			kilt_selection_set_list(&t->sel, inc, s);
		}
	}
	return true;
}

static void decide_platform(struct kilt_ecs_engine *e, struct kilt_ecs_task *t)
{
	const struct kilt_ecs_names *n = e->n;
	json_t *rp = json_object_get(t->props, n->runtime_platform);
	char why[256] = "";
	const char *fn;
	if (rp && e->intrinsics && kilt_cfn_is_intrinsic(rp, &fn)) {
		kilt_ecs_append_reason(
			t->reason, sizeof(t->reason),
			"RuntimePlatform is %s: platform unknown, treated as supported", fn);
		t->warn = true;
		return;
	}
	json_t *osv = json_object_get(rp, n->os_family);
	if (osv) {
		_cleanup_free_ char *os = NULL;
		if (kilt_cfn_resolve_string(&e->cfn, osv, &os, why, sizeof(why)) < 0) {
			kilt_ecs_append_reason(
				t->reason, sizeof(t->reason),
				"OperatingSystemFamily cannot be evaluated (%s): treated as "
				"LINUX",
				why);
			t->warn = true;
		} else if (strncmp(os, "WINDOWS", 7) == 0) {
			kilt_ecs_skip_task(
				t, false,
				"Windows task definition (%s): kilt injects into Linux containers "
				"only",
				os);
			return;
		}
	}
	json_t *archv = json_object_get(rp, n->cpu_architecture);
	if (!archv) {
		t->platform = xstrdup("linux/amd64"); /* ECS's default */
	} else {
		_cleanup_free_ char *arch = NULL;
		if (kilt_cfn_resolve_string(&e->cfn, archv, &arch, why, sizeof(why)) < 0) {
			kilt_ecs_append_reason(
				t->reason, sizeof(t->reason),
				"CpuArchitecture cannot be evaluated (%s): platform unknown", why);
			t->warn = true;
		} else if (strcasecmp(arch, "ARM64") == 0) {
			t->platform = xstrdup("linux/arm64");
		} else if (strcasecmp(arch, "X86_64") == 0) {
			t->platform = xstrdup("linux/amd64");
		}
	}
	if (t->platform && e->planner && !kilt_planner_supports(e->planner, t->platform)) {
		char msg[300];
		snprintf(msg, sizeof(msg), "recipe %s does not support %s", e->planner->name,
			 t->platform);
		kilt_ecs_skip_task(t, false, "%s", msg);
	}
}

/* The Services and TaskSets of the template by the task they run (Ref TaskDefinition): task id ->
 * [resource ids] in document order, made on first use so that each task does not walk every
 * resource of the template again. */
static const json_t *task_users(const struct kilt_ecs_engine *e)
{
	struct kilt_ecs_engine *m = (struct kilt_ecs_engine *)(uintptr_t)e;
	if (m->task_users)
		return m->task_users;
	m->task_users = json_object();
	const json_t *resources = json_object_get(e->cfn.template, "Resources");
	const char *id;
	const json_t *res;
	json_object_foreach ((json_t *)(uintptr_t)resources, id, res) {
		const char *type = json_string_value(json_object_get(res, "Type"));
		if (!type || (strcmp(type, "AWS::ECS::Service") != 0 &&
			      strcmp(type, "AWS::ECS::TaskSet") != 0))
			continue;
		const json_t *props = json_object_get(res, "Properties");
		const json_t *td = json_object_get(props, "TaskDefinition");
		const char *fn;
		const char *ref = json_string_value(json_object_get(td, "Ref"));
		if (!kilt_cfn_is_intrinsic(td, &fn) || strcmp(fn, "Ref") != 0 || !ref)
			continue;
		json_t *list = json_object_get(m->task_users, ref);
		if (!list) {
			list = json_array();
			json_object_set_new(m->task_users, ref, list);
		}
		json_array_append_new(list, json_string(id));
	}
	return m->task_users;
}

/* Whether the task's Services and TaskSets (CloudFormation) run it on Fargate: false with
 * `why` when at least one references the task and none can (LaunchType EC2 or EXTERNAL, a
 * capacity provider strategy without FARGATE or FARGATE_SPOT). A service that leaves the choice
 * to the cluster's default strategy, or writes it as an intrinsic kilt cannot evaluate, might. */
static bool launched_on_fargate(const struct kilt_ecs_engine *e, const struct kilt_ecs_task *t,
				char *why, size_t size)
{
	if (!e->intrinsics)
		return true;
	const json_t *resources = json_object_get(e->cfn.template, "Resources");
	const char *first = NULL;
	char how[200] = "";
	size_t users = 0;
	size_t k;
	const json_t *idv;
	json_array_foreach (json_object_get(task_users(e), t->id), k, idv) {
		const char *id = json_string_value(idv);
		const json_t *props = json_object_get(json_object_get(resources, id), "Properties");
		users++;
		char w[128] = "";
		_cleanup_free_ char *lt = NULL;
		const json_t *ltv = json_object_get(props, "LaunchType");
		const json_t *cps = json_object_get(props, "CapacityProviderStrategy");
		if (ltv) {
			if (kilt_cfn_resolve_string(&e->cfn, ltv, &lt, w, sizeof(w)) < 0 ||
			    strcmp(lt, "FARGATE") == 0)
				return true;
			snprintf(w, sizeof(w), "LaunchType %s", lt);
		} else if (json_is_array(cps) && json_array_size(cps)) {
			size_t i;
			const json_t *el;
			json_array_foreach (cps, i, el) {
				_cleanup_free_ char *cp = NULL;
				char ignored[128];
				if (kilt_cfn_resolve_string(&e->cfn,
							    json_object_get(el, "CapacityProvider"),
							    &cp, ignored, sizeof(ignored)) < 0 ||
				    strncmp(cp, "FARGATE", 7) == 0)
					return true;
			}
			snprintf(w, sizeof(w), "a CapacityProviderStrategy without FARGATE");
		} else {
			return true; /* the cluster's default capacity provider strategy decides */
		}
		if (!first) {
			first = id;
			snprintf(how, sizeof(how), "%s", w);
		}
	}
	if (!users)
		return true;
	if (users > 1)
		snprintf(why, size, "%s runs it with %s (and the %zu others that use it, likewise)",
			 first, how, users - 1);
	else
		snprintf(why, size, "%s runs it with %s", first, how);
	return false;
}

static void decide_compat(struct kilt_ecs_engine *e, struct kilt_ecs_task *t)
{
	const struct kilt_ecs_names *n = e->n;
	json_t *rc = json_object_get(t->props, n->requires_compatibilities);
	if (!rc)
		rc = json_object_get(t->props, "compatibilities"); /* describe output */
	char why[256] = "";
	if (!rc) {
		/* ECS makes a task Fargate-compatible only with awsvpc networking; without
		 * NetworkMode an EC2 task uses bridge */
		json_t *nm = json_object_get(t->props, n->network_mode);
		_cleanup_free_ char *mode = NULL;
		if (!nm) {
			kilt_ecs_skip_task(
				t, false,
				"cannot run on Fargate: RequiresCompatibilities and NetworkMode "
				"are "
				"absent, so ECS registers it for EC2 with bridge networking "
				"(Fargate "
				"needs awsvpc)%s",
				"");
			return;
		}
		if (kilt_cfn_resolve_string(&e->cfn, nm, &mode, why, sizeof(why)) == 0 &&
		    strcmp(mode, "awsvpc") != 0) {
			char msg[300];
			snprintf(msg, sizeof(msg),
				 "cannot run on Fargate: NetworkMode %s (Fargate needs awsvpc) and "
				 "RequiresCompatibilities is absent",
				 mode);
			kilt_ecs_skip_task(t, false, "%s", msg);
			return;
		}
		if (!launched_on_fargate(e, t, why, sizeof(why))) {
			kilt_ecs_skip_task(t, false, "not run on Fargate: %s", why);
			return;
		}
		kilt_ecs_append_reason(
			t->reason, sizeof(t->reason), "%s",
			"RequiresCompatibilities is absent: treated as a Fargate task (set "
			"it to [FARGATE] to be explicit, or tag kilt-ignore)");
		t->warn = true;
		return;
	}
	_cleanup_json_ json_t *list = NULL;
	if (kilt_cfn_resolve_list(&e->cfn, rc, &list, why, sizeof(why)) < 0) {
		char msg[400];
		snprintf(msg, sizeof(msg),
			 "RequiresCompatibilities cannot be evaluated offline (%s): treated as a "
			 "Fargate task",
			 why);
		kilt_ecs_append_reason(t->reason, sizeof(t->reason), "%s", msg);
		t->warn = true;
		return;
	}
	if (!str_in_array(list, "FARGATE")) {
		_cleanup_free_ char *s = kilt_json_dumps(list, JSON_COMPACT);
		kilt_ecs_skip_task(t, false,
				   "not a Fargate task definition (RequiresCompatibilities %s)",
				   s ? s : "?");
		return;
	}
	if (!launched_on_fargate(e, t, why, sizeof(why))) {
		kilt_ecs_skip_task(t, false, "not run on Fargate: %s", why);
		return;
	}
	kilt_ecs_append_reason(t->reason, sizeof(t->reason), "%s", "Fargate task definition");
}

/* The container ProxyConfiguration names (App Mesh's Envoy): a proxy, not the application. */
static void find_proxy(struct kilt_ecs_engine *e, struct kilt_ecs_task *t)
{
	json_t *pc = json_object_get(t->props, e->n->proxy_configuration);
	json_t *cn = json_object_get(pc, e->n->container_name);
	char why[256];
	if (cn && kilt_cfn_resolve_string(&e->cfn, cn, &t->proxy, why, sizeof(why)) < 0)
		t->proxy = NULL;
}

void kilt_ecs_decide_task(struct kilt_ecs_engine *e, struct kilt_ecs_task *t)
{
	t->selected = true;
	t->metadata = json_object();
	kilt_selection_init(&t->sel, e->opts.mode == KILT_ECS_OPT_IN ? KILT_SELECT_OPT_IN
								     : KILT_SELECT_OPT_OUT);
	if (!t->props) {
		if (t->sel.mode == KILT_SELECT_OPT_IN) {
			kilt_ecs_skip_task(t, false,
					   "opt-in mode, and a bare container list has no "
					   "kilt-include tag");
			return;
		}
		kilt_ecs_append_reason(t->reason, sizeof(t->reason), "%s",
				       "container definitions without a task (opt-out mode)");
		return;
	}
	if (!read_tags(e, t))
		return;
	char why[256];
	if (!kilt_selection_workload(&t->sel, why, sizeof(why))) {
		kilt_ecs_skip_task(t, false, "%s", why);
		return;
	}
	decide_compat(e, t);
	if (!t->selected)
		return;
	find_proxy(e, t);
	decide_platform(e, t);
	if (!t->selected)
		return;
	if (t->sel.include || t->sel.include_containers)
		kilt_ecs_append_reason(t->reason, sizeof(t->reason), "%s", "tagged kilt-include");
}

bool kilt_ecs_container_selected(const struct kilt_ecs_engine *e, const struct kilt_ecs_task *t,
				 const json_t *obj, const char *name, const char *name_why,
				 char *why, size_t size, bool *ret_warn)
{
	bool listed = false;
	if (!kilt_selection_container(&t->sel, name, name_why, why, size, ret_warn, &listed)) {
		if (!name)
			kilt_ecs_append_reason(why, size, "give the value with --param NAME=VALUE");
		return false;
	}
	if (listed)
		return true;
	/* Containers that are not the application: an agent there would trace a log router or a
	 * proxy (a Falco and a pdig each) for nothing. */
	const json_t *fl = json_object_get(obj, e->n->firelens_configuration);
	const char *what = NULL;
	if (fl && !json_is_null(fl) && !(e->intrinsics && kilt_cfn_is_novalue(fl)))
		what = "the FireLens log router (FirelensConfiguration)";
	else if (name && t->proxy && strcmp(name, t->proxy) == 0)
		what = "the proxy ProxyConfiguration names (App Mesh Envoy)";
	else if (name && e->opts.skip_containers && str_in_array(e->opts.skip_containers, name))
		what = "listed by the operator as not the application";
	if (what) {
		snprintf(why, size,
			 "%s, not the application: skipped by default; name it in the task's "
			 "kilt-include-containers tag to patch it",
			 what);
		return false;
	}
	return true;
}
