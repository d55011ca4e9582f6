/* SPDX-License-Identifier: Apache-2.0 */
/* The ECS engine: finds task definitions and container definitions in CloudFormation templates,
 * ECS task-definition JSON and Terraform container lists, decides for each whether to patch it
 * (ecs-select.c), and applies one plan per container (the planning step, plan.c) on the raw
 * document: sidecars, VolumesFrom, DependsOn, capabilities, PidMode, environment (ecs-edit.c),
 * leaving a marker that makes re-runs no-ops and undo exact. The rules are documented in
 * docs/ecs.md. */
#include <stdarg.h>
#include <strings.h>

#include "ecs-internal.h"

#define MAX_SIDECARS_PER_LIST 64

static const struct kilt_ecs_names PASCAL = {
	"ContainerDefinitions",
	"Name",
	"Image",
	"Essential",
	"EntryPoint",
	"Command",
	"Environment",
	"Name",
	"Value",
	"VolumesFrom",
	"SourceContainer",
	"ReadOnly",
	"DependsOn",
	"ContainerName",
	"Condition",
	"LinuxParameters",
	"Capabilities",
	"Add",
	"DockerLabels",
	"LogConfiguration",
	"LogDriver",
	"RepositoryCredentials",
	"CredentialsParameter",
	"RequiresCompatibilities",
	"PidMode",
	"RuntimePlatform",
	"CpuArchitecture",
	"OperatingSystemFamily",
	"Tags",
	"Key",
	"Value",
	"Family",
	"NetworkMode",
	"ProxyConfiguration",
	"FirelensConfiguration",
};

static const struct kilt_ecs_names CAMEL = {
	"containerDefinitions",
	"name",
	"image",
	"essential",
	"entryPoint",
	"command",
	"environment",
	"name",
	"value",
	"volumesFrom",
	"sourceContainer",
	"readOnly",
	"dependsOn",
	"containerName",
	"condition",
	"linuxParameters",
	"capabilities",
	"add",
	"dockerLabels",
	"logConfiguration",
	"logDriver",
	"repositoryCredentials",
	"credentialsParameter",
	"requiresCompatibilities",
	"pidMode",
	"runtimePlatform",
	"cpuArchitecture",
	"operatingSystemFamily",
	"tags",
	"key",
	"value",
	"family",
	"networkMode",
	"proxyConfiguration",
	"firelensConfiguration",
};

/* The state of one container list while it is being patched. */
struct list_state {
	json_t *list; /* borrowed */
	json_t *sidecars; /* owned: new sidecar objects, appended at the end */
	/* owned: one [mount, sidecar name, VolumesFrom entry, DependsOn entry] per sidecar */
	json_t *sidecar_keys;
	json_t *names; /* owned: every container name in use -> true */
};

void kilt_ecs_options_default(struct kilt_ecs_options *ret)
{
	*ret = (struct kilt_ecs_options){ .input = KILT_ECS_INPUT_AUTO, .mode = KILT_ECS_OPT_OUT };
}

const char *kilt_ecs_input_name(enum kilt_ecs_input input)
{
	switch (input) {
	case KILT_ECS_INPUT_AUTO:
		return "auto";
	case KILT_ECS_INPUT_CLOUDFORMATION:
		return "cloudformation";
	case KILT_ECS_INPUT_TASK_DEFINITION:
		return "task-definition";
	case KILT_ECS_INPUT_CONTAINER_DEFINITIONS:
		return "container-definitions";
	}
	return "unknown";
}

/* ---- detection ----------------------------------------------------------------------------- */

int kilt_ecs_detect(const json_t *doc, enum kilt_ecs_input *ret, struct kilt_error *err)
{
	if (json_is_array(doc)) {
		*ret = KILT_ECS_INPUT_CONTAINER_DEFINITIONS;
		return 0;
	}
	if (json_is_object(doc)) {
		if (json_object_get(doc, "Resources") ||
		    json_object_get(doc, "AWSTemplateFormatVersion")) {
			*ret = KILT_ECS_INPUT_CLOUDFORMATION;
			return 0;
		}
		const json_t *td = json_object_get(doc, "taskDefinition");
		if (json_object_get(doc, "containerDefinitions") ||
		    json_object_get(doc, "ContainerDefinitions") ||
		    (json_is_object(td) && (json_object_get(td, "containerDefinitions") ||
					    json_object_get(td, "ContainerDefinitions")))) {
			*ret = KILT_ECS_INPUT_TASK_DEFINITION;
			return 0;
		}
	}
	return kilt_error_setf(
		err, -EINVAL,
		"not an ECS input: expected a CloudFormation template (Resources), a "
		"task definition (containerDefinitions) or a container_definitions "
		"array");
}

/* ---- small helpers ------------------------------------------------------------------------- */

static const char *label_in(const json_t *labels, const char *key)
{
	return json_string_value(json_object_get(labels, key));
}

/* A label of a container, looking through an Fn::If around DockerLabels. */
const char *kilt_ecs_get_label(const struct kilt_ecs_engine *e, json_t *c, const char *key)
{
	json_t *labels = json_object_get(c, e->n->docker_labels);
	json_t *a, *b;
	if (kilt_cfn_if_branches(labels, &a, &b)) {
		const char *v = label_in(a, key);
		return v ? v : label_in(b, key);
	}
	return label_in(labels, key);
}

void kilt_ecs_append_reason(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	if (len + 3 >= size)
		return;
	if (len)
		snprintf(buf + len, size - len, "; ");
	len = strlen(buf);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* ---- patching ------------------------------------------------------------------------------ */

static void sanitize_name(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			*s = '-';
}

static json_t *env_to_names(const struct kilt_ecs_names *n, const json_t *plan_env)
{
	json_t *out = json_array();
	size_t i;
	const json_t *pe;
	json_array_foreach (plan_env, i, pe) {
		const json_t *name = json_object_get(pe, "name");
		const json_t *value = json_object_get(pe, "value");
		if (json_is_string(name))
			json_array_append_new(
				out, json_pack("{sOso}", n->env_name, name, n->env_value,
					       value ? json_incref((json_t *)(uintptr_t)value)
						     : json_string("")));
	}
	return out;
}

static json_t *recipe_labels(const struct kilt_ecs_engine *e)
{
	return json_copy(e->labels);
}

/* Returns the sidecar for `mount` in this list, [mount, name, VolumesFrom entry, DependsOn
 * entry] (borrowed), creating it on first use. */
static const json_t *sidecar_for(struct kilt_ecs_engine *e, struct list_state *ls,
				 const json_t *mount, const json_t *app, struct kilt_error *err)
{
	const struct kilt_ecs_names *n = e->n;
	size_t i;
	const json_t *have;
	json_array_foreach (ls->sidecar_keys, i, have) {
		if (json_equal(json_array_get(have, 0), mount))
			return have;
	}
	if (json_array_size(ls->sidecars) >= MAX_SIDECARS_PER_LIST) {
		kilt_error_setf(err, -E2BIG, "more than %d sidecars in one task",
				MAX_SIDECARS_PER_LIST);
		return NULL;
	}
	const json_t *image = json_object_get(mount, "image");
	if (!json_is_string(image) && !json_is_object(image)) {
		kilt_error_setf(err, -EINVAL, "recipe mount has no image");
		return NULL;
	}
	const char *mname = json_string_value(json_object_get(mount, "name"));
	_cleanup_free_ char *base = NULL;
	if (mname && strncmp(mname, "kilt", 4) == 0)
		base = xstrdup(mname);
	else
		base = xasprintf("kilt-%s", mname && *mname ? mname : "mount");
	sanitize_name(base);
	_cleanup_free_ char *name = xstrdup(base);
	for (unsigned k = 2; json_object_get(ls->names, name); k++) {
		free(name);
		name = xasprintf("%s-%u", base, k);
	}
	json_t *sc = json_object();
	json_object_set_new(sc, n->name, json_string(name));
	json_object_set(sc, n->image, (json_t *)(uintptr_t)image);
	json_object_set_new(sc, n->essential, json_false());
	const json_t *ep = json_object_get(mount, "entrypoint");
	if (json_array_size(ep))
		json_object_set_new(sc, n->entrypoint,
				    kilt_ecs_share(e, json_incref((json_t *)(uintptr_t)ep)));
	const json_t *cmd = json_object_get(mount, "command");
	if (json_array_size(cmd))
		json_object_set_new(sc, n->command,
				    kilt_ecs_share(e, json_incref((json_t *)(uintptr_t)cmd)));
	const json_t *env = json_object_get(mount, "environment");
	if (json_array_size(env))
		json_object_set_new(sc, n->environment, env_to_names(n, env));
	if (e->opts.sidecar_repository_credentials)
		json_object_set_new(sc, n->repository_credentials,
				    json_pack("{ss}", n->credentials_parameter,
					      e->opts.sidecar_repository_credentials));
	if (!e->opts.sidecar_logs_off) {
		const json_t *logs = e->sidecar_logs;
		if (!logs) {
			const json_t *app_logs = json_object_get(app, n->log_configuration);
			const char *drv =
				json_string_value(json_object_get(app_logs, n->log_driver));
			if ((drv && strcmp(drv, "awslogs") == 0) ||
			    (e->intrinsics && kilt_cfn_is_intrinsic(app_logs, NULL)))
				logs = app_logs;
		}
		if (logs)
			json_object_set(sc, n->log_configuration, (json_t *)(uintptr_t)logs);
	}
	json_t *labels = recipe_labels(e);
	json_object_set_new(labels, LABEL_ROLE, json_string("sidecar"));
	json_object_set_new(sc, n->docker_labels, labels);
	json_array_append_new(ls->sidecars, sc);
	json_object_set_new(ls->names, name, json_true());
	/* the entries every container of the list gets, made once */
	json_array_append_new(ls->sidecar_keys,
			      json_pack("[Os{sssb}{ssss}]", mount, name, n->source_container, name,
					n->read_only, 1, n->container_name, name, n->condition,
					"START"));
	return json_array_get(ls->sidecar_keys, json_array_size(ls->sidecar_keys) - 1);
}

/* Writes `plan` into the container `c`: fields, sidecars, PidMode, and last the marker labels
 * with the undo record of every field changed. */
static int apply_plan(struct kilt_ecs_engine *e, struct kilt_ecs_task *t, struct list_state *ls,
		      json_t *c, const json_t *plan, char *summary, size_t ssize,
		      struct kilt_error *err)
{
	const struct kilt_ecs_names *n = e->n;
	int r;
	_cleanup_json_ json_t *undo = json_object();
	json_t *pimage = json_object_get(plan, "image");
	/* the plan's values go in as they are: nothing modifies them afterwards */
	if (pimage)
		kilt_ecs_set_field(e, c, n->image, json_incref(pimage), undo);
	kilt_ecs_set_field(e, c, n->entrypoint,
			   kilt_ecs_share(e, json_incref(json_object_get(plan, "entrypoint"))),
			   undo);
	json_t *pcmd = json_object_get(plan, "command");
	if (json_array_size(pcmd) || json_object_get(c, n->command))
		kilt_ecs_set_field(e, c, n->command,
				   pcmd ? kilt_ecs_share(e, json_incref(pcmd)) : json_array(),
				   undo);
	json_t *penv = json_object_get(plan, "environment");
	if (penv && (r = kilt_ecs_merge_env(e, c, penv, undo, err)) < 0)
		return r;
	json_t *caps = json_object_get(plan, "capabilities");
	if (json_array_size(caps) && (r = kilt_ecs_add_caps(e, c, caps, undo, err)) < 0)
		return r;
	json_t *mounts = json_object_get(plan, "mounts");
	size_t i;
	json_t *mount;
	json_array_foreach (mounts, i, mount) {
		const json_t *sc = sidecar_for(e, ls, mount, c, err);
		if (!sc)
			return kilt_error_prefix(err, "recipe mount %zu", i);
		const char *sname = json_string_value(json_array_get(sc, 1));
		r = kilt_ecs_append_unique(e, c, n->volumes_from, json_array_get(sc, 2), undo, err);
		if (r < 0)
			return r;
		r = kilt_ecs_append_unique(e, c, n->depends_on, json_array_get(sc, 3), undo, err);
		if (r < 0)
			return r;
		kilt_ecs_append_reason(summary, ssize, "sidecar %s", sname);
	}
	const char *pid = json_string_value(json_object_get(plan, "pid_mode"));
	if (pid) {
		json_t *cur = t->props ? json_object_get(t->props, n->pid_mode) : NULL;
		if (!t->props) {
			kilt_ecs_append_reason(summary, ssize,
					       "the recipe asks for PidMode %s: set it on the task "
					       "definition (pid_mode in Terraform)",
					       pid);
			t->warn = true;
		} else if (!cur) {
			json_object_set_new(undo, UNDO_TASK, json_pack("{sn}", n->pid_mode));
			kilt_journal_set(e->journal, t->props, n->pid_mode, json_string(pid));
		} else if (!json_is_string(cur) || strcmp(json_string_value(cur), pid) != 0) {
			kilt_ecs_append_reason(
				summary, ssize,
				"the task's PidMode is kept although the recipe asks "
				"for %s",
				pid);
			t->warn = true;
		}
	}
	if (json_array_size(caps)) {
		/* the same list container after container: its text is made once */
		if (!json_equal(caps, e->caps_said)) {
			json_decref(e->caps_said);
			e->caps_said = json_incref(caps);
			free(e->caps_text);
			e->caps_text = kilt_json_dumps(caps, JSON_COMPACT);
		}
		kilt_ecs_append_reason(summary, ssize, "capabilities %s",
				       e->caps_text ? e->caps_text : "");
	}
	/* The marker goes last: it records the original of every field changed above. */
	json_t *old_labels = json_object_get(c, n->docker_labels);
	if (!json_object_get(undo, n->docker_labels))
		json_object_set_new(undo, n->docker_labels,
				    old_labels ? json_incref(old_labels) : json_null());
	_cleanup_json_ json_t *marker = recipe_labels(e);
	_cleanup_free_ char *undo_text = kilt_cfn_encode_label(undo);
	json_object_set_new(marker, LABEL_UNDO, json_string(undo_text));
	return kilt_ecs_merge_labels(e, c, marker, err);
}

static int patch_container(struct kilt_ecs_engine *e, struct kilt_ecs_task *t,
			   struct list_state *ls, json_t *c, const char *cname, char *summary,
			   size_t ssize, struct kilt_error *err)
{
	_cleanup_json_ json_t *plan = NULL;
	int r = kilt_ecs_plan_container(e, t, c, cname, summary, ssize, &plan, err);
	if (r != 0)
		return r;
	return apply_plan(e, t, ls, c, plan, summary, ssize, err);
}

/* ---- lists and tasks ----------------------------------------------------------------------- */

static void list_state_done(struct list_state *ls)
{
	json_decref(ls->sidecars);
	json_decref(ls->sidecar_keys);
	json_decref(ls->names);
}

static bool all_current(const struct kilt_ecs_engine *e, struct kilt_ecs_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!items[i].marked)
			continue;
		if (!kilt_marker_is(&e->marker, kilt_ecs_get_label(e, items[i].obj, LABEL_RECIPE),
				    kilt_ecs_get_label(e, items[i].obj, LABEL_HASH),
				    kilt_ecs_get_label(e, items[i].obj, LABEL_CONFIG)))
			return false;
	}
	return true;
}

/* Appends to a filled `err` what kilt knows about a container whose name is unknown, when the
 * recipe needed original.name. */
static void explain_unknown_name(const struct kilt_ecs_item *it, struct kilt_error *err)
{
	if (it->name || !strstr(err->msg, "original.name"))
		return;
	size_t len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, " (%s)", it->why);
}

static int process_list(struct kilt_ecs_engine *e, struct kilt_ecs_task *t, json_t *list,
			struct kilt_error *err)
{
	struct kilt_ecs_item *items = NULL;
	size_t n = 0;
	kilt_ecs_gather(e, list, &items, &n);
	bool marked = false;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		marked = marked || items[i].marked;
		rc = kilt_ecs_check_labels(e, &items[i], err);
		if (items[i].name && !items[i].sidecar)
			json_object_set_new(t->seen, items[i].name, json_true());
		else if (!items[i].sidecar)
			t->unnamed = true;
	}
	if (rc < 0) {
		kilt_ecs_items_free(items, n);
		return kilt_error_prefix(err, "%s", t->id);
	}

	char why[400];
	bool warn;
	if (marked) {
		/* the records and sidecars are checked even when nothing is to change */
		json_t **undos = NULL, *added = NULL;
		rc = kilt_ecs_read_records(e, list, items, n, &undos, &added, err);
		kilt_ecs_undos_free(undos, n);
		json_decref(added);
		if (rc < 0) {
			kilt_ecs_items_free(items, n);
			return kilt_error_prefix(err, "%s", t->id);
		}
	}
	if (marked && e->planner && t->selected && all_current(e, items, n)) {
		bool same = true;
		for (size_t i = 0; i < n && same; i++)
			if (!items[i].sidecar)
				same = items[i].marked ==
				       kilt_ecs_container_selected(e, t, items[i].obj,
								   items[i].name, items[i].why, why,
								   sizeof(why), &warn);
		if (same) {
			for (size_t i = 0; i < n; i++) {
				if (items[i].sidecar)
					continue;
				char msg[400];
				warn = false;
				if (items[i].marked)
					snprintf(msg, sizeof(msg),
						 "already injected with recipe %s (sha256 %.12s)",
						 e->planner->name, e->planner->hash);
				else
					kilt_ecs_container_selected(e, t, items[i].obj,
								    items[i].name, items[i].why,
								    msg, sizeof(msg), &warn);
				kilt_report_add(e->report, t->id, items[i].label,
						items[i].marked ? KILT_UNCHANGED : KILT_SKIPPED,
						warn, msg);
				t->any_unchanged = t->any_unchanged || items[i].marked;
			}
			kilt_ecs_items_free(items, n);
			return 0;
		}
	}
	/* Remember which containers carried an injection, then undo it all. */
	_cleanup_json_ json_t *was_marked = json_object();
	if (marked) {
		for (size_t i = 0; i < n; i++)
			if (items[i].marked && !items[i].sidecar)
				json_object_set_new(was_marked, items[i].label, json_true());
		int r = kilt_ecs_undo_list(e, t, list, t->props, err);
		if (r < 0) {
			kilt_ecs_items_free(items, n);
			return kilt_error_prefix(err, "%s", t->id);
		}
		kilt_ecs_items_free(items, n);
		items = NULL;
		kilt_ecs_gather(e, list, &items, &n);
	}

	if (!e->planner || !t->selected) {
		for (size_t i = 0; i < n; i++) {
			bool removed = json_object_get(was_marked, items[i].label) != NULL;
			char msg[700];
			snprintf(msg, sizeof(msg), "%s%s",
				 removed ? "earlier injection removed: " : "",
				 e->planner ? t->reason : "kilt remove");
			kilt_report_add(e->report, t->id, items[i].label,
					removed ? KILT_REMOVED : KILT_SKIPPED, false, msg);
			t->any_removed = t->any_removed || removed;
		}
		kilt_ecs_items_free(items, n);
		return 0;
	}

	struct list_state ls = {
		.list = list,
		.sidecars = json_array(),
		.sidecar_keys = json_array(),
		.names = json_object(),
	};
	for (size_t i = 0; i < n; i++) {
		if (items[i].name)
			json_object_set_new(ls.names, items[i].name, json_true());
		/* a name the containers already point at is taken too: a sidecar by that name would
		 * answer a reference kilt did not write, and kilt could not prove it added it */
		kilt_ecs_source_containers(e, json_object_get(items[i].obj, e->n->volumes_from),
					   ls.names, 0);
		json_t *deps = json_object_get(items[i].obj, e->n->depends_on);
		size_t k;
		json_t *dep;
		json_array_foreach (deps, k, dep) {
			const char *dn =
				json_string_value(json_object_get(dep, e->n->container_name));
			if (dn)
				json_object_set_new(ls.names, dn, json_true());
		}
	}
	for (size_t i = 0; i < n; i++) {
		/* a copy: a failed patch under fail-open rebuilds the object that holds the name */
		_cleanup_free_ char *label = xstrdup(items[i].label);
		bool removed = json_object_get(was_marked, label) != NULL;
		if (!kilt_ecs_container_selected(e, t, items[i].obj, items[i].name, items[i].why,
						 why, sizeof(why), &warn)) {
			char msg[500];
			snprintf(msg, sizeof(msg), "%s%s",
				 removed ? "earlier injection removed: " : "", why);
			kilt_report_add(e->report, t->id, label,
					removed ? KILT_REMOVED : KILT_SKIPPED, warn, msg);
			t->any_removed = t->any_removed || removed;
			continue;
		}
		char summary[512] = "";
		bool warn_before = t->warn;
		t->warn = false;
		if (!items[i].name) {
			kilt_ecs_append_reason(
				summary, sizeof(summary),
				"%s: reported by its position, original.name unknown",
				items[i].why);
			t->warn = true;
		}
		/* fail-open needs a way back when a container cannot be patched: the journal for
		 * the document, copies for the list's own state */
		bool fo = e->opts.fail_open;
		size_t mark = kilt_journal_mark(e->journal);
		_cleanup_json_ json_t *sidecars_backup = fo ? json_deep_copy(ls.sidecars) : NULL;
		_cleanup_json_ json_t *keys_backup = fo ? json_deep_copy(ls.sidecar_keys) : NULL;
		_cleanup_json_ json_t *names_backup = fo ? json_deep_copy(ls.names) : NULL;
		int r = patch_container(e, t, &ls, items[i].obj, items[i].name, summary,
					sizeof(summary), err);
		warn = t->warn; /* the container's own warnings, reported with it */
		t->warn = warn_before;
		if (r < 0) {
			explain_unknown_name(&items[i], err);
			kilt_error_prefix(err, "%s: container %s", t->id, label);
			if (!e->opts.fail_open) {
				rc = r;
				break;
			}
			/* fail-open: put everything back the way it was and say why */
			kilt_journal_rollback(e->journal, mark);
			json_decref(ls.sidecars);
			ls.sidecars = json_incref(sidecars_backup);
			json_decref(ls.sidecar_keys);
			ls.sidecar_keys = json_incref(keys_backup);
			json_decref(ls.names);
			ls.names = json_incref(names_backup);
			char msg[700];
			snprintf(msg, sizeof(msg), "not patched (fail-open): %s", err->msg);
			kilt_report_add(e->report, t->id, label, KILT_SKIPPED, true, msg);
			*err = (struct kilt_error){ 0 };
			continue;
		}
		char msg[700];
		snprintf(msg, sizeof(msg), "injected recipe %s%s%s", e->planner->name,
			 summary[0] ? ": " : "", summary);
		kilt_report_add(e->report, t->id, label, KILT_PATCHED, warn, msg);
		t->any_patched = true;
	}
	if (rc == 0 && json_array_size(ls.sidecars)) {
		kilt_journal_will_append(e->journal, list);
		json_array_extend(list, ls.sidecars);
	}
	list_state_done(&ls);
	kilt_ecs_items_free(items, n);
	return rc;
}

/* A kilt-include-containers or kilt-ignore-containers tag naming no container of the task (a
 * typo, or a container renamed since) would otherwise change nothing in silence. */
static void check_listed(struct kilt_ecs_task *t, const json_t *list, const char *tag)
{
	size_t i;
	const json_t *v;
	json_array_foreach (list, i, v) {
		const char *name = json_string_value(v);
		if (!name || json_object_get(t->seen, name))
			continue;
		char msg[300];
		snprintf(msg, sizeof(msg),
			 "the %s tag names %s, which is no container of the task%s", tag, name,
			 t->unnamed ? " kilt can name (give unknown names with --param)"
				    : " (a typo?)");
		kilt_ecs_append_reason(t->reason, sizeof(t->reason), "%s", msg);
		t->warn = true;
	}
}

static int process_task(struct kilt_ecs_engine *e, const char *id, json_t *props,
			json_t *containers, struct kilt_error *err)
{
	struct kilt_ecs_task t = { .id = id, .props = props, .seen = json_object() };
	if (e->planner)
		kilt_ecs_decide_task(e, &t);
	else
		t.metadata = json_object();
	t.decision = kilt_report_add(e->report, id, NULL, KILT_SKIPPED, false, "");
	int r = 0;
	const char *fn;
	if (!containers) {
		kilt_ecs_skip_task(&t, false, "no container definitions");
	} else if (json_is_array(containers)) {
		r = process_list(e, &t, containers, err);
	} else if (e->intrinsics && kilt_cfn_is_intrinsic(containers, &fn)) {
		json_t *a, *b;
		if (kilt_cfn_if_branches(containers, &a, &b)) {
			if (json_is_array(a))
				r = process_list(e, &t, a, err);
			if (r == 0 && json_is_array(b))
				r = process_list(e, &t, b, err);
		} else {
			kilt_ecs_skip_task(
				&t, true,
				"ContainerDefinitions is %s, which kilt cannot see into; write "
				"the containers as a list",
				fn);
		}
	} else {
		r = kilt_error_setf(err, -EINVAL, "%s: %s is not a list", id,
				    e->n->container_definitions);
	}
	if (r == 0 && e->planner && t.selected && containers) {
		check_listed(&t, t.sel.include_containers, "kilt-include-containers");
		check_listed(&t, t.sel.ignore_containers, "kilt-ignore-containers");
	}
	struct kilt_decision *d = &e->report->decisions[t.decision];
	d->warning = t.warn;
	if (t.any_patched)
		d->verdict = KILT_PATCHED;
	else if (t.any_unchanged)
		d->verdict = KILT_UNCHANGED;
	else if (t.any_removed)
		d->verdict = KILT_REMOVED;
	else if (t.selected && e->planner && containers && t.reason[0])
		kilt_ecs_append_reason(t.reason, sizeof(t.reason), "%s",
				       "but no container was selected");
	kilt_report_set_reason(e->report, t.decision, e->planner ? t.reason : "kilt remove");
	free(t.platform);
	free(t.proxy);
	json_decref(t.seen);
	kilt_selection_done(&t.sel);
	json_decref(t.metadata);
	return r;
}

/* describe-task-definition output -> register-task-definition input. */
static json_t *from_describe(json_t *doc)
{
	static const char *const readonly[] = {
		"taskDefinitionArn", "revision",     "status",	     "requiresAttributes",
		"compatibilities",   "registeredAt", "registeredBy", "deregisteredAt",
	};
	json_t *td = json_deep_copy(json_object_get(doc, "taskDefinition"));
	for (size_t i = 0; i < ARRAY_SIZE(readonly); i++)
		if (strcmp(readonly[i], "compatibilities") != 0 ||
		    json_object_get(td, "requiresCompatibilities"))
			json_object_del(td, readonly[i]);
	/* --include TAGS puts the tags beside taskDefinition; some tools copy them inside too:
	 * both count (a kilt-ignore in either is honoured), each key once, inside first */
	json_t *tags = json_object_get(doc, "tags");
	json_t *inner = json_object_get(td, "tags");
	if (json_array_size(tags) && !inner) {
		json_object_set(td, "tags", tags);
	} else if (json_array_size(tags) && json_is_array(inner)) {
		json_t *merged = json_copy(inner);
		size_t i, j;
		json_t *tag, *have;
		json_array_foreach (tags, i, tag) {
			bool dup = false;
			json_array_foreach (inner, j, have) {
				dup = dup || json_equal(json_object_get(tag, "key"),
							json_object_get(have, "key"));
			}
			if (!dup)
				json_array_append(merged, tag);
		}
		json_object_set_new(td, "tags", merged);
	}
	return td;
}

void kilt_ecs_prune_empty(json_t *value)
{
	if (json_is_array(value)) {
		for (size_t i = json_array_size(value); i-- > 0;) {
			json_t *e = json_array_get(value, i);
			kilt_ecs_prune_empty(e);
			if (json_is_null(e))
				json_array_remove(value, i);
		}
	} else if (json_is_object(value)) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe (value, tmp, k, v) {
			kilt_ecs_prune_empty(v);
			if (json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
				json_object_del(value, k);
		}
	}
}

/* Whether a Fn::ForEach value (its output template, nested loops included) defines a task. */
static bool holds_task(const json_t *v, unsigned depth)
{
	if (depth > MAX_EDIT_DEPTH)
		return false;
	const char *type = json_string_value(json_object_get(v, "Type"));
	if (type && strcmp(type, "AWS::ECS::TaskDefinition") == 0)
		return true;
	if (json_is_array(v)) {
		size_t i;
		const json_t *el;
		json_array_foreach (v, i, el) {
			if (holds_task(el, depth + 1))
				return true;
		}
	} else if (json_is_object(v)) {
		const char *k;
		const json_t *el;
		json_object_foreach ((json_t *)(uintptr_t)v, k, el) {
			if (holds_task(el, depth + 1))
				return true;
		}
	}
	return false;
}

static int run(struct kilt_ecs_engine *e, json_t *doc, struct kilt_error *err)
{
	enum kilt_ecs_input kind = e->opts.input;
	if (kind == KILT_ECS_INPUT_AUTO) {
		int r = kilt_ecs_detect(doc, &kind, err);
		if (r < 0)
			return r;
	}
	e->report->input = kilt_ecs_input_name(kind);
	_cleanup_json_ json_t *work = NULL;
	int r = 0;
	switch (kind) {
	case KILT_ECS_INPUT_CLOUDFORMATION: {
		json_t *resources = json_object_get(doc, "Resources");
		if (!json_is_object(doc) || !json_is_object(resources))
			return kilt_error_setf(
				err, -EINVAL, "a CloudFormation template needs a Resources object");
		/* Templates are patched in place (a second tree would double the memory); the
		 * journal brings the document back if any task fails. */
		e->n = &PASCAL;
		e->intrinsics = true;
		e->cfn.template = doc;
		const char *id;
		json_t *res;
		json_object_foreach (resources, id, res) {
			if (strncmp(id, "Fn::ForEach::", 13) == 0 && holds_task(res, 0)) {
				r = kilt_error_setf(
					err, -EINVAL,
					"%s holds an AWS::ECS::TaskDefinition, which kilt cannot "
					"patch before CloudFormation expands the loop: with the "
					"macro, "
					"list AWS::LanguageExtensions before it in Transform; with "
					"kilt inject, write the task definitions out",
					id);
				if (!e->opts.discard_on_failure)
					kilt_journal_rollback(e->journal, 0);
				return r;
			}
			const char *type = json_string_value(json_object_get(res, "Type"));
			if (!type || strcmp(type, "AWS::ECS::TaskDefinition") != 0)
				continue;
			json_t *props = json_object_get(res, "Properties");
			if (!json_is_object(props)) {
				kilt_report_add(e->report, id, NULL, KILT_SKIPPED, true,
						"the task definition has no Properties");
				continue;
			}
			r = process_task(e, id, props,
					 json_object_get(props, "ContainerDefinitions"), err);
			if (r < 0) {
				if (!e->opts.discard_on_failure)
					kilt_journal_rollback(e->journal, 0);
				return r;
			}
			if (e->opts.discard_on_failure)
				kilt_journal_forget(e->journal);
		}
		return 0;
	}
	case KILT_ECS_INPUT_TASK_DEFINITION: {
		if (!json_is_object(doc))
			return kilt_error_setf(err, -EINVAL, "a task definition must be an object");
		/* describe output (taskDefinition) unless the object is a task definition itself */
		bool describe = json_is_object(json_object_get(doc, "taskDefinition")) &&
				!json_object_get(doc, "containerDefinitions") &&
				!json_object_get(doc, "ContainerDefinitions");
		work = describe ? from_describe(doc) : json_deep_copy(doc);
		e->n = json_object_get(work, "ContainerDefinitions") ? &PASCAL : &CAMEL;
		e->intrinsics = false;
		const char *family = json_string_value(json_object_get(work, e->n->family));
		r = process_task(e, family ? family : "task-definition", work,
				 json_object_get(work, e->n->container_definitions), err);
		if (r < 0)
			return r;
		break;
	}
	case KILT_ECS_INPUT_CONTAINER_DEFINITIONS:
		if (!json_is_array(doc))
			return kilt_error_setf(err, -EINVAL,
					       "container definitions must be a JSON array");
		work = json_deep_copy(doc);
		e->n = &CAMEL;
		e->intrinsics = false;
		/* Terraform compares without nulls and empty lists: so does kilt, from the start */
		kilt_ecs_prune_empty(work);
		r = process_task(e, "container_definitions", NULL, work, err);
		if (r < 0)
			return r;
		/* pruning works in place, and values may be shared (with the recipe's plans too):
		 * prune a copy of its own */
		json_t *own = json_deep_copy(work);
		json_decref(work);
		work = own;
		kilt_ecs_prune_empty(work);
		break;
	default:
		return kilt_error_setf(err, -EINVAL, "unknown input kind");
	}
	if (e->needs)
		return 0;
	if (json_is_array(doc)) {
		json_array_clear(doc);
		json_array_extend(doc, work);
	} else {
		json_object_clear(doc);
		json_object_update(doc, work);
	}
	return 0;
}

static int run_with_report(struct kilt_ecs_engine *e, json_t *doc, struct kilt_report *report,
			   struct kilt_error *err)
{
	/* run() reaches the report and the journal through the engine; both pointers are
	 * cleared before this returns */
	struct kilt_report local;
	kilt_report_init(&local);
	/* cppcheck-suppress autoVariables */
	e->report = &local;
	struct kilt_journal journal;
	kilt_journal_init(&journal);
	/* cppcheck-suppress autoVariables */
	e->journal = &journal;
	e->shared = json_object();
	int r = run(e, doc, err);
	if (e->needs) /* only listing: the document goes back as it was */
		kilt_journal_rollback(&journal, 0);
	else if (r == 0 && e->want_patch && !e->opts.discard_on_failure && e->cfn.template == doc)
		e->patch = kilt_journal_patch(&journal, doc);
	kilt_journal_done(&journal);
	e->journal = NULL;
	json_decref(e->shared);
	e->shared = NULL;
	json_decref(e->task_users);
	e->task_users = NULL;
	json_decref(e->caps_said);
	e->caps_said = NULL;
	free(e->caps_text);
	e->caps_text = NULL;
	kilt_report_tally(&local);
	e->report = NULL;
	if (report && r == 0) {
		kilt_report_done(report);
		*report = local;
	} else {
		kilt_report_done(&local);
	}
	return r;
}

static int with_planner(const struct kilt_planner *planner, json_t *doc,
			const struct kilt_ecs_options *opts, struct kilt_image_needs *needs,
			struct kilt_report *report, json_t **ret_patch, struct kilt_error *err)
{
	struct kilt_ecs_engine e = { .planner = planner,
				     .needs = needs,
				     .want_patch = ret_patch != NULL };
	if (opts)
		e.opts = *opts;
	else
		kilt_ecs_options_default(&e.opts);
	if (needs) {
		/* a container that cannot be patched is the apply phase's business */
		e.opts.fail_open = true;
		e.opts.discard_on_failure = false;
	}
	e.cfn.params = e.opts.parameters;
	if (!planner || !planner->evaluate || !planner->name || !planner->hash)
		return kilt_error_setf(err, -EINVAL, "no recipe");
	if (e.opts.sidecar_repository_credentials) {
		int r = kilt_ecs_check_secret_ref(e.opts.sidecar_repository_credentials, err);
		if (r < 0)
			return r;
	}
	_cleanup_json_ json_t *s = kilt_ecs_settings(&e.opts);
	kilt_marker_init(&e.marker, planner, s);
	e.labels = json_pack("{ssss}", LABEL_RECIPE, planner->name, LABEL_HASH, planner->hash);
	if (e.marker.settings)
		json_object_set_new(e.labels, LABEL_CONFIG, json_string(e.marker.settings));
	if (e.opts.sidecar_log_configuration)
		e.sidecar_logs = json_deep_copy(e.opts.sidecar_log_configuration);
	int r = run_with_report(&e, doc, report, err);
	if (ret_patch && r == 0 && !e.patch)
		r = kilt_error_setf(err, -ENOTSUP, "a JSON Patch is made for CloudFormation only");
	if (ret_patch && r == 0)
		*ret_patch = steal_pointer(&e.patch);
	json_decref(e.patch);
	kilt_marker_done(&e.marker);
	json_decref(e.labels);
	json_decref(e.sidecar_logs);
	return r;
}

int kilt_ecs_inject_planner(const struct kilt_planner *planner, json_t *doc,
			    const struct kilt_ecs_options *opts, struct kilt_report *report,
			    struct kilt_error *err)
{
	return with_planner(planner, doc, opts, NULL, report, NULL, err);
}

int kilt_ecs_remove(json_t *doc, const struct kilt_ecs_options *opts, struct kilt_report *report,
		    struct kilt_error *err)
{
	struct kilt_ecs_engine e = { .planner = NULL };
	if (opts)
		e.opts = *opts;
	else
		kilt_ecs_options_default(&e.opts);
	e.cfn.params = e.opts.parameters;
	return run_with_report(&e, doc, report, err);
}

int kilt_ecs_inject(const struct kilt_recipe *recipe, json_t *doc,
		    const struct kilt_ecs_options *opts, struct kilt_report *report,
		    struct kilt_error *err)
{
	if (!recipe)
		return kilt_error_setf(err, -EINVAL, "no recipe");
	struct kilt_planner p;
	kilt_planner_from_recipe(recipe, &p);
	return kilt_ecs_inject_planner(&p, doc, opts, report, err);
}

void kilt_ecs_list_images(const struct kilt_recipe *recipe, json_t *doc,
			  const struct kilt_ecs_options *opts, struct kilt_image_needs *needs)
{
	if (!recipe)
		return;
	struct kilt_planner p;
	kilt_planner_from_recipe(recipe, &p);
	struct kilt_error err = { 0 };
	(void)with_planner(&p, doc, opts, needs, NULL, NULL, &err);
}

int kilt_ecs_inject_patch(const struct kilt_recipe *recipe, json_t *doc,
			  const struct kilt_ecs_options *opts, json_t **ret_patch,
			  struct kilt_error *err)
{
	struct kilt_planner p;
	kilt_planner_from_recipe(recipe, &p);
	struct kilt_ecs_options o;
	if (opts)
		o = *opts;
	else
		kilt_ecs_options_default(&o);
	o.discard_on_failure = false;
	return with_planner(&p, doc, &o, NULL, NULL, ret_patch, err);
}
