/* SPDX-License-Identifier: Apache-2.0 */
/* The ECS engine: finds task definitions and container definitions in CloudFormation templates,
 * ECS task-definition JSON and Terraform container lists, decides for each whether to patch it,
 * and applies one recipe plan per container on the raw document (sidecars, VolumesFrom,
 * DependsOn, capabilities, PidMode, environment), leaving a marker that makes re-runs no-ops and
 * undo exact. The rules are documented in docs/ecs.md. */
#include <stdarg.h>
#include <strings.h>

#include "ecs-internal.h"

#define LABEL_RECIPE "kilt.recipe"
#define LABEL_HASH "kilt.recipe-hash"
#define LABEL_CONFIG "kilt.config-hash"
#define LABEL_UNDO "kilt.undo"
#define LABEL_ROLE "kilt.role"
#define UNDO_TASK "kilt:task"
#define MAX_EDIT_DEPTH 32
#define MAX_SIDECARS_PER_LIST 64

/* Field names of one spelling: CloudFormation / PascalCase ECS JSON, or the ECS API's camelCase
 * (register-task-definition input, Terraform). */
struct names {
	const char *container_definitions, *name, *image, *essential, *entrypoint, *command,
		*environment, *env_name, *env_value, *volumes_from, *source_container, *read_only,
		*depends_on, *container_name, *condition, *linux_parameters, *capabilities, *add,
		*docker_labels, *log_configuration, *log_driver, *repository_credentials,
		*credentials_parameter, *requires_compatibilities, *pid_mode, *runtime_platform,
		*cpu_architecture, *os_family, *tags, *key, *value, *family, *network_mode,
		*proxy_configuration, *firelens_configuration;
};

static const struct names PASCAL = {
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

static const struct names CAMEL = {
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

/* Every change the engine makes to nodes of the document, in order, so that a failed run (or a
 * container that fails under fail-open) is undone exactly: same values, same key order. Replaced
 * values are kept (moved, not copied) until the run ends; nothing else is copied. */
enum jkind {
	J_SET, /* target[key] was set: `old` is the value it replaced, NULL when the key was new */
	J_OBJECT, /* a key of target is about to go: `old` is a shallow copy of the object */
	J_ARRAY, /* elements of the array target went: `old` is a shallow copy from before */
	J_APPEND, /* elements were appended to the array target: it had `size` before */
};

struct jentry {
	json_t *target; /* owned reference */
	json_t *old; /* owned, or NULL */
	size_t size; /* J_SET: offset of the key in journal.keys; J_APPEND: the former size */
	enum jkind kind;
};

struct journal {
	struct jentry *v; /* owned */
	size_t n, cap;
	struct kbuf keys; /* the keys of J_SET entries, NUL-separated */
};

struct engine {
	const struct kilt_ecs_planner *planner; /* borrowed; NULL when only removing */
	struct journal *journal; /* borrowed: the run's changes to the document */
	struct kilt_ecs_options opts;
	struct cfn_ctx cfn;
	struct kilt_ecs_report *report; /* borrowed */
	const struct names *n;
	bool intrinsics; /* CloudFormation: intrinsics may stand anywhere */
	/* owned: digest of the operator's settings (config, sidecar options); NULL for none */
	char *config_hash;
	/* owned: compact text -> value, for the small values written into container after
	 * container (the same VolumesFrom, DependsOn, LinuxParameters...), so each is held once */
	json_t *shared;
	json_t *labels; /* owned: the recipe's marker labels, values shared by every container */
	json_t *sidecar_logs; /* owned copy of opts.sidecar_log_configuration, or NULL */
	size_t lookups; /* image facts asked for so far */
};

/* Task-level facts and the decision taken for them. */
struct task {
	const char *id; /* borrowed */
	json_t *props; /* borrowed: holds PidMode, tags...; NULL for a bare container list */
	bool selected;
	bool warn;
	char reason[512];
	char *platform; /* owned; NULL when unknown */
	json_t *include_containers; /* owned array of names, or NULL */
	json_t *ignore_containers; /* owned array of names, or NULL */
	json_t *metadata; /* owned object: the task's tags */
	char *proxy; /* owned: the container ProxyConfiguration names (App Mesh Envoy), or NULL */
	json_t *seen; /* owned: name -> true for every container of the task kilt can name */
	bool unnamed; /* some container's name is not known */
	size_t decision; /* index of the task's decision in the report */
	bool any_patched, any_unchanged, any_removed;
};

/* One container object inside a list: a plain element or a branch of an Fn::If element. */
struct item {
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

/* The state of one container list while it is being patched. */
struct list_state {
	json_t *list; /* borrowed */
	json_t *sidecars; /* owned: new sidecar objects, appended at the end */
	json_t *sidecar_keys; /* owned: mount key -> sidecar name */
	json_t *names; /* owned: every container name in use -> true */
};

/* ---- journal ------------------------------------------------------------------------------- */

static struct jentry *journal_push(const struct engine *e, json_t *target, enum jkind kind)
{
	struct journal *j = e->journal;
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 64;
		j->v = xrealloc(j->v, j->cap * sizeof(*j->v));
	}
	struct jentry *je = &j->v[j->n++];
	*je = (struct jentry){ .target = json_incref(target), .kind = kind };
	return je;
}

/* target[key] = value (stolen), recorded. */
static void doc_set(const struct engine *e, json_t *target, const char *key, json_t *value)
{
	struct journal *j = e->journal;
	struct jentry *je = journal_push(e, target, J_SET);
	je->old = json_incref(json_object_get(target, key));
	je->size = j->keys.len;
	if (kbuf_add(&j->keys, key, strlen(key) + 1) < 0)
		abort(); /* the buffer's maximum is SIZE_MAX / 2 */
	json_object_set_new(target, key, value);
}

/* Deletes target[key], recorded (with the key order, which a later set could not restore). */
static void doc_del(const struct engine *e, json_t *target, const char *key)
{
	if (!json_object_get(target, key))
		return;
	journal_push(e, target, J_OBJECT)->old = json_copy(target);
	json_object_del(target, key);
}

/* Records that elements are about to be appended to `list`. */
static void doc_will_append(const struct engine *e, json_t *list)
{
	journal_push(e, list, J_APPEND)->size = json_array_size(list);
}

/* Undoes every change recorded after the first `mark`, newest first. */
static void journal_rollback(struct journal *j, size_t mark)
{
	while (j->n > mark) {
		struct jentry *je = &j->v[--j->n];
		switch (je->kind) {
		case J_SET: {
			const char *key = j->keys.data + je->size;
			if (je->old)
				json_object_set(je->target, key, je->old);
			else
				json_object_del(je->target, key);
			j->keys.len = je->size;
			break;
		}
		case J_OBJECT:
			json_object_clear(je->target);
			json_object_update(je->target, je->old);
			break;
		case J_ARRAY:
			json_array_clear(je->target);
			json_array_extend(je->target, je->old);
			break;
		case J_APPEND:
			while (json_array_size(je->target) > je->size)
				json_array_remove(je->target, json_array_size(je->target) - 1);
			break;
		}
		json_decref(je->old);
		json_decref(je->target);
	}
}

static void journal_init(struct journal *j)
{
	*j = (struct journal){ 0 };
	kbuf_init(&j->keys, SIZE_MAX / 2);
}

/* Keeps the changes so far and lets go of what they replaced. */
static void journal_forget(struct journal *j)
{
	for (size_t i = 0; i < j->n; i++) {
		json_decref(j->v[i].old);
		json_decref(j->v[i].target);
	}
	j->n = 0;
	j->keys.len = 0;
}

static void journal_done(struct journal *j)
{
	journal_forget(j);
	free(j->v);
	kbuf_done(&j->keys);
	*j = (struct journal){ 0 };
}

/* ---- shared values ------------------------------------------------------------------------- */

#define MAX_SHARED_TEXT 512
#define MAX_SHARED_VALUES 1024

/* Returns `v` (owned), or an equal value written earlier in this run in its place. The engine
 * never modifies a value in place (it replaces fields and edits shallow copies), so values can
 * be shared between containers; the document owns them like any other. */
static json_t *share(const struct engine *e, json_t *v)
{
	if (json_object_size(e->shared) >= MAX_SHARED_VALUES ||
	    !(json_is_object(v) || json_is_array(v)))
		return v;
	char key[MAX_SHARED_TEXT];
	size_t n = json_dumpb(v, key, sizeof(key) - 1, JSON_COMPACT);
	if (n == 0 || n >= sizeof(key) - 1)
		return v;
	key[n] = '\0';
	json_t *have = json_object_get(e->shared, key);
	if (have) {
		json_decref(v);
		return json_incref(have);
	}
	json_object_set(e->shared, key, v);
	return v;
}

/* ---- report -------------------------------------------------------------------------------- */

void kilt_ecs_options_default(struct kilt_ecs_options *ret)
{
	*ret = (struct kilt_ecs_options){ .input = KILT_ECS_INPUT_AUTO, .mode = KILT_ECS_OPT_OUT };
}

void kilt_ecs_report_init(struct kilt_ecs_report *report)
{
	*report = (struct kilt_ecs_report){ 0 };
}

void kilt_ecs_report_done(struct kilt_ecs_report *report)
{
	if (!report)
		return;
	for (size_t i = 0; i < report->n_decisions; i++) {
		free(report->decisions[i].task);
		free(report->decisions[i].container);
		free(report->decisions[i].reason);
	}
	free(report->decisions);
	kilt_ecs_report_init(report);
}

const char *kilt_ecs_verdict_name(enum kilt_ecs_verdict verdict)
{
	switch (verdict) {
	case KILT_ECS_PATCHED:
		return "patched";
	case KILT_ECS_UNCHANGED:
		return "unchanged";
	case KILT_ECS_SKIPPED:
		return "skipped";
	case KILT_ECS_REMOVED:
		return "removed";
	}
	return "unknown";
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

json_t *kilt_ecs_report_to_json(const struct kilt_ecs_report *report)
{
	json_t *list = json_array();
	for (size_t i = 0; i < report->n_decisions; i++) {
		const struct kilt_ecs_decision *d = &report->decisions[i];
		json_t *o = json_pack("{ss}", "task", d->task);
		if (d->container)
			json_object_set_new(o, "container", json_string(d->container));
		json_object_set_new(o, "decision", json_string(kilt_ecs_verdict_name(d->verdict)));
		json_object_set_new(o, "reason", json_string(d->reason));
		if (d->warning)
			json_object_set_new(o, "warning", json_true());
		json_array_append_new(list, o);
	}
	return json_pack("{sssosIsIsIsIsI}", "input", kilt_ecs_input_name(report->input),
			 "decisions", list, "patched", (json_int_t)report->n_patched, "unchanged",
			 (json_int_t)report->n_unchanged, "skipped", (json_int_t)report->n_skipped,
			 "removed", (json_int_t)report->n_removed, "warnings",
			 (json_int_t)report->n_warnings);
}

/* Text cut to a buffer (a name or value inside a reason) may end inside a UTF-8 character: such
 * bytes are dropped, or the reason could not go into JSON. Owned. */
static char *reason_dup(const char *s)
{
	size_t len = strlen(s), o = 0;
	char *out = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		size_t n = kilt_utf8_valid_prefix((const unsigned char *)s + i, len - i);
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

static size_t add_decision(struct engine *e, const char *task, const char *container,
			   enum kilt_ecs_verdict verdict, bool warning, const char *reason)
{
	struct kilt_ecs_report *r = e->report;
	r->decisions = xrealloc(r->decisions, (r->n_decisions + 1) * sizeof(*r->decisions));
	r->decisions[r->n_decisions] = (struct kilt_ecs_decision){
		.task = xstrdup(task),
		.container = container ? xstrdup(container) : NULL,
		.verdict = verdict,
		.warning = warning,
		.reason = reason_dup(reason),
	};
	return r->n_decisions++;
}

void ecs_report_tally(struct kilt_ecs_report *r)
{
	r->n_patched = r->n_unchanged = r->n_skipped = r->n_removed = r->n_warnings = 0;
	for (size_t i = 0; i < r->n_decisions; i++) {
		const struct kilt_ecs_decision *d = &r->decisions[i];
		if (d->warning)
			r->n_warnings++;
		if (!d->container)
			continue;
		switch (d->verdict) {
		case KILT_ECS_PATCHED:
			r->n_patched++;
			break;
		case KILT_ECS_UNCHANGED:
			r->n_unchanged++;
			break;
		case KILT_ECS_SKIPPED:
			r->n_skipped++;
			break;
		case KILT_ECS_REMOVED:
			r->n_removed++;
			break;
		}
	}
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

static const char *label_in(const json_t *labels, const char *key)
{
	return json_string_value(json_object_get(labels, key));
}

/* A label of a container, looking through an Fn::If around DockerLabels. */
static const char *get_label(const struct engine *e, json_t *c, const char *key)
{
	json_t *labels = json_object_get(c, e->n->docker_labels);
	json_t *a, *b;
	if (cfn_if_branches(labels, &a, &b)) {
		const char *v = label_in(a, key);
		return v ? v : label_in(b, key);
	}
	return label_in(labels, key);
}

__attribute__((format(printf, 3, 4))) static void append_reason(char *buf, size_t size,
								const char *fmt, ...)
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

/* ---- editing through Fn::If ---------------------------------------------------------------- */

/* An edit turns a plain value (NULL when absent) into its new value (owned). */
typedef json_t *(*edit_fn)(const struct engine *e, const json_t *v, const void *arg,
			   struct kilt_error *err);

/* Applies `fn` to `v`, or to both branches of an Fn::If (an AWS::NoValue branch counts as
 * absent). Returns the new value (owned) or NULL with `err` set. */
static json_t *edit_value(const struct engine *e, const json_t *v, edit_fn fn, const void *arg,
			  unsigned depth, struct kilt_error *err)
{
	if (depth > MAX_EDIT_DEPTH) {
		kilt_error_setf(err, -ELOOP, "Fn::If nested too deeply");
		return NULL;
	}
	const char *ifn;
	if (v && e->intrinsics && cfn_is_intrinsic(v, &ifn)) {
		json_t *a, *b;
		if (cfn_is_novalue(v))
			return fn(e, NULL, arg, err);
		if (!cfn_if_branches((json_t *)(uintptr_t)v, &a, &b)) {
			kilt_error_setf(err, -EINVAL,
					"the value is %s, which kilt cannot merge into; write it "
					"as a literal (Fn::If is fine)",
					ifn);
			return NULL;
		}
		json_t *na = edit_value(e, a, fn, arg, depth + 1, err);
		if (!na)
			return NULL;
		json_t *nb = edit_value(e, b, fn, arg, depth + 1, err);
		if (!nb) {
			json_decref(na);
			return NULL;
		}
		/* values are never modified in place: copy the two levels that change */
		json_t *copy = json_copy((json_t *)(uintptr_t)v);
		json_t *args = json_copy(json_object_get(copy, "Fn::If"));
		json_array_set_new(args, 1, na);
		json_array_set_new(args, 2, nb);
		json_object_set_new(copy, "Fn::If", args);
		return copy;
	}
	return fn(e, v, arg, err);
}

/* A shallow copy of `v` to edit (its members stay shared, never modified), or `dflt`. */
static json_t *copy_or(const json_t *v, json_t *dflt)
{
	if (!v)
		return dflt;
	json_decref(dflt);
	return json_copy((json_t *)(uintptr_t)v);
}

static json_t *edit_cap_add(const struct engine *e, const json_t *v, const void *arg,
			    struct kilt_error *err)
{
	(void)e;
	if (v && !json_is_array(v)) {
		kilt_error_setf(err, -EINVAL, "Capabilities Add is not a list");
		return NULL;
	}
	json_t *add = copy_or(v, json_array());
	size_t i;
	const json_t *cap;
	json_array_foreach ((const json_t *)arg, i, cap) {
		if (json_is_string(cap) && !str_in_array(add, json_string_value(cap)))
			json_array_append(add, (json_t *)(uintptr_t)cap);
	}
	return add;
}

static json_t *edit_caps(const struct engine *e, const json_t *v, const void *arg,
			 struct kilt_error *err)
{
	if (v && !json_is_object(v)) {
		kilt_error_setf(err, -EINVAL, "Capabilities is not an object");
		return NULL;
	}
	json_t *caps = copy_or(v, json_object());
	json_t *add = edit_value(e, json_object_get(caps, e->n->add), edit_cap_add, arg, 0, err);
	if (!add) {
		json_decref(caps);
		return NULL;
	}
	json_object_set_new(caps, e->n->add, add);
	return caps;
}

static json_t *edit_linux(const struct engine *e, const json_t *v, const void *arg,
			  struct kilt_error *err)
{
	if (v && !json_is_object(v)) {
		kilt_error_setf(err, -EINVAL, "LinuxParameters is not an object");
		return NULL;
	}
	json_t *lp = copy_or(v, json_object());
	json_t *caps =
		edit_value(e, json_object_get(lp, e->n->capabilities), edit_caps, arg, 0, err);
	if (!caps) {
		json_decref(lp);
		return NULL;
	}
	json_object_set_new(lp, e->n->capabilities, caps);
	return lp;
}

/* Appends `arg` (an object whose first field identifies it) unless an element with the same
 * identifying field is already there. */
static json_t *edit_append_unique(const struct engine *e, const json_t *v, const void *arg,
				  struct kilt_error *err)
{
	(void)e;
	if (v && !json_is_array(v)) {
		kilt_error_setf(err, -EINVAL, "expected a list");
		return NULL;
	}
	const json_t *entry = arg;
	void *it = json_object_iter((json_t *)(uintptr_t)entry);
	const char *key = json_object_iter_key(it);
	const json_t *id = json_object_iter_value(it);
	json_t *arr = copy_or(v, json_array());
	size_t i;
	const json_t *el;
	json_array_foreach (arr, i, el) {
		if (json_equal(json_object_get(el, key), id))
			return arr;
	}
	json_array_append(arr, (json_t *)(uintptr_t)entry);
	return arr;
}

static json_t *edit_labels(const struct engine *e, const json_t *v, const void *arg,
			   struct kilt_error *err)
{
	(void)e;
	if (v && !json_is_object(v)) {
		kilt_error_setf(err, -EINVAL, "DockerLabels is not an object");
		return NULL;
	}
	json_t *labels = copy_or(v, json_object());
	json_object_update(labels, (json_t *)(uintptr_t)arg);
	return labels;
}

struct env_edit {
	const json_t *plan_env; /* [{name, value}] from the plan */
};

/* The merge rule (docs/ecs.md): entries keep their place; a plain entry whose name the plan
 * sets takes the plan's value; names new to the container follow in the plan's order; entries
 * that are intrinsics stay as they are. */
static json_t *edit_env(const struct engine *e, const json_t *v, const void *arg,
			struct kilt_error *err)
{
	const struct env_edit *ee = arg;
	if (v && !json_is_array(v)) {
		kilt_error_setf(err, -EINVAL, "Environment is not a list");
		return NULL;
	}
	json_t *env = copy_or(v, json_array());
	_cleanup_json_ json_t *seen = json_object();
	size_t i;
	json_t *el;
	json_array_foreach (env, i, el) {
		const char *name = json_string_value(json_object_get(el, e->n->env_name));
		if (!name)
			continue;
		json_object_set_new(seen, name, json_true());
		size_t j;
		const json_t *pe;
		json_array_foreach (ee->plan_env, j, pe) {
			const char *pn = json_string_value(json_object_get(pe, "name"));
			if (pn && strcmp(pn, name) == 0) {
				const json_t *pv = json_object_get(pe, "value");
				if (pv && !json_equal(pv, json_object_get(el, e->n->env_value))) {
					/* the entry is shared with the original list: replace it */
					el = json_copy(el);
					json_object_set(el, e->n->env_value,
							(json_t *)(uintptr_t)pv);
					json_array_set_new(env, i, el);
				}
			}
		}
	}
	const json_t *pe;
	json_array_foreach (ee->plan_env, i, pe) {
		const char *pn = json_string_value(json_object_get(pe, "name"));
		if (!pn || json_object_get(seen, pn))
			continue;
		json_object_set_new(seen, pn, json_true());
		const json_t *pv = json_object_get(pe, "value");
		json_array_append_new(env, json_pack("{ssso}", e->n->env_name, pn, e->n->env_value,
						     pv ? json_incref((json_t *)(uintptr_t)pv)
							: json_string("")));
	}
	return env;
}

/* Replaces c[key] by the edited value and, the first time, remembers the original in `undo`.
 * `shareable`: the result is often the same in many containers (see share()). */
static int edit_field(const struct engine *e, json_t *c, const char *key, edit_fn fn,
		      const void *arg, bool shareable, json_t *undo, struct kilt_error *err)
{
	json_t *old = json_object_get(c, key);
	if (json_is_null(old))
		old = NULL;
	json_t *nv = edit_value(e, old, fn, arg, 0, err);
	if (!nv)
		return kilt_error_prefix(err, "%s", key);
	if ((old && json_equal(old, nv)) || (!old && json_is_array(nv) && !json_array_size(nv))) {
		json_decref(nv);
		return 0;
	}
	if (!json_object_get(undo, key)) /* shared: the container lets go of it just below */
		json_object_set_new(undo, key, old ? json_incref(old) : json_null());
	doc_set(e, c, key, shareable ? share(e, nv) : nv);
	return 0;
}

static void set_field(const struct engine *e, json_t *c, const char *key, json_t *value,
		      json_t *undo)
{
	json_t *old = json_object_get(c, key);
	if (old && json_equal(old, value)) {
		json_decref(value);
		return;
	}
	if (!json_object_get(undo, key))
		json_object_set_new(undo, key, old ? json_incref(old) : json_null());
	doc_set(e, c, key, value);
}

/* ---- undo ---------------------------------------------------------------------------------- */

static bool is_sidecar(const struct engine *e, json_t *c)
{
	const char *role = get_label(e, c, LABEL_ROLE);
	return role && strcmp(role, "sidecar") == 0;
}

/* `undo` is the caller's private object (parsed from a label and checked by read_undo): its
 * values move into `obj`. */
static void restore_fields(const struct engine *e, json_t *obj, const json_t *undo)
{
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)undo, k, v) {
		if (strcmp(k, UNDO_TASK) == 0)
			continue;
		if (json_is_null(v))
			doc_del(e, obj, k);
		else
			doc_set(e, obj, k, json_incref(v));
	}
}

/* The value a list field of the container had before kilt: absent (null), a list, or (in
 * CloudFormation) an intrinsic that stood there. */
static bool undo_list_value(const struct engine *e, const json_t *v)
{
	return json_is_null(v) || json_is_array(v) || (e->intrinsics && cfn_is_intrinsic(v, NULL));
}

/* Checks a kilt.undo record: it may hold only the fields kilt itself changes, each with a value
 * of the type that field had before kilt, so a forged label cannot make `--remove` write
 * anything else (Privileged, another role, NetworkMode...). */
static int check_undo(const struct engine *e, const json_t *undo, struct kilt_error *err)
{
	const struct names *n = e->n;
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)undo, k, v) {
		bool ok;
		if (strcmp(k, UNDO_TASK) == 0) {
			/* kilt sets PidMode only where the task had none */
			ok = json_is_object(v) && json_object_size(v) == 1 &&
			     json_is_null(json_object_get(v, n->pid_mode));
		} else if (strcmp(k, n->entrypoint) == 0 || strcmp(k, n->command) == 0 ||
			   strcmp(k, n->environment) == 0 || strcmp(k, n->volumes_from) == 0 ||
			   strcmp(k, n->depends_on) == 0) {
			ok = undo_list_value(e, v);
		} else if (strcmp(k, n->image) == 0) {
			ok = json_is_string(v) || (e->intrinsics && cfn_is_intrinsic(v, NULL));
		} else if (strcmp(k, n->linux_parameters) == 0) {
			ok = json_is_null(v) || json_is_object(v);
		} else if (strcmp(k, n->docker_labels) == 0) {
			ok = json_is_null(v) || json_is_object(v);
		} else {
			return kilt_error_setf(err, -EINVAL,
					       "the %s label holds %s, a field kilt never changes: "
					       "the label was not written by kilt; remove it and "
					       "restore the container by hand",
					       LABEL_UNDO, k);
		}
		if (!ok)
			return kilt_error_setf(
				err, -EINVAL,
				"the %s label holds a value for %s that kilt cannot "
				"have recorded: the label was not written by kilt; remove "
				"it and restore the container by hand",
				LABEL_UNDO, k);
	}
	return 0;
}

/* Reads and checks a container's kilt.undo label: 0 with an owned object, 0 with NULL when the
 * container carries no injection, or an error. */
static int read_undo(const struct engine *e, json_t *c, json_t **ret, struct kilt_error *err)
{
	*ret = NULL;
	const char *text = get_label(e, c, LABEL_UNDO);
	if (!text) {
		if (!get_label(e, c, LABEL_RECIPE))
			return 0;
		return kilt_error_setf(err, -EINVAL,
				       "carries the %s label but no %s label, so kilt cannot undo "
				       "the earlier injection; restore the container by hand",
				       LABEL_RECIPE, LABEL_UNDO);
	}
	json_error_t jerr;
	json_t *undo = json_loads(text, JSON_ALLOW_NUL, &jerr);
	if (!json_is_object(undo)) {
		json_decref(undo);
		return kilt_error_setf(err, -EINVAL, "the %s label is not valid: %s", LABEL_UNDO,
				       jerr.text);
	}
	int r = check_undo(e, undo, err);
	if (r < 0) {
		json_decref(undo);
		return r;
	}
	*ret = undo;
	return 0;
}

/* Restores one app container from its checked record; task-level fields go into `props`. */
static void undo_container(const struct engine *e, json_t *c, const json_t *undo, json_t *props)
{
	json_t *task_undo = json_object_get(undo, UNDO_TASK);
	if (props && json_is_object(task_undo))
		restore_fields(e, props, task_undo);
	restore_fields(e, c, undo);
}

/* Adds to `out` the SourceContainer of every VolumesFrom entry in `v`, looking through Fn::If. */
static void source_containers(const struct engine *e, const json_t *v, json_t *out, unsigned depth)
{
	if (depth > MAX_EDIT_DEPTH)
		return;
	json_t *a, *b;
	if (e->intrinsics && cfn_if_branches((json_t *)(uintptr_t)v, &a, &b)) {
		source_containers(e, a, out, depth + 1);
		source_containers(e, b, out, depth + 1);
		return;
	}
	size_t i;
	const json_t *el;
	json_array_foreach (v, i, el) {
		const char *src = json_string_value(json_object_get(el, e->n->source_container));
		if (src)
			json_object_set_new(out, src, json_true());
		else
			source_containers(e, el, out, depth + 1);
	}
}

/* A container's name: literal, or evaluated through the parameter values when it is an
 * intrinsic (`Name: !Ref WorkloadName`, as AWS's samples and Copilot write it). NULL with `why`
 * filled when it cannot be known offline. */
static char *container_name(const struct engine *e, const json_t *c, char *why, size_t size)
{
	const json_t *v = json_object_get(c, e->n->name);
	const char *fn;
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (!v || json_is_null(v)) {
		snprintf(why, size, "the container has no %s", e->n->name);
		return NULL;
	}
	if (e->intrinsics && cfn_is_intrinsic(v, &fn)) {
		char inner[200] = "";
		char *s = NULL;
		if (cfn_resolve_string(&e->cfn, v, &s, inner, sizeof(inner)) == 0)
			return s;
		snprintf(why, size, "its %s is %s, which kilt cannot evaluate offline: %s",
			 e->n->name, fn, inner);
		return NULL;
	}
	snprintf(why, size, "its %s is not a string", e->n->name);
	return NULL;
}

static void items_free(struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].name);
		free(items[i].label);
	}
	free(items);
}

/* Collects the container objects of a list, looking into Fn::If elements. Release with
 * items_free. */
static void gather(const struct engine *e, json_t *list, struct item **ret, size_t *ret_n)
{
	size_t n = 0, cap = json_array_size(list) * 2 + 1;
	struct item *items = xcalloc(cap, sizeof(*items));
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *el = json_array_get(list, i);
		json_t *objs[2] = { el, NULL };
		json_t *a, *b;
		if (e->intrinsics && cfn_if_branches(el, &a, &b)) {
			objs[0] = a;
			objs[1] = b;
		}
		for (size_t k = 0; k < 2; k++) {
			json_t *c = objs[k];
			if (!json_is_object(c) || (e->intrinsics && cfn_is_intrinsic(c, NULL)))
				continue;
			struct item *it = &items[n++];
			*it = (struct item){
				.obj = c,
				.index = i,
				.sidecar = is_sidecar(e, c),
				.marked = get_label(e, c, LABEL_RECIPE) != NULL,
			};
			it->name = container_name(e, c, it->why, sizeof(it->why));
			it->label = it->name ? xstrdup(it->name) : xasprintf("#%zu", i + 1);
		}
	}
	*ret = items;
	*ret_n = n;
}

/* Labels that contradict each other: kilt never writes them so. */
static int check_labels(const struct engine *e, const struct item *it, struct kilt_error *err)
{
	if (!it->sidecar)
		return 0;
	if (!it->marked)
		return kilt_error_setf(err, -EINVAL,
				       "container %s: its labels contradict each other (%s sidecar "
				       "without %s): kilt did not write them; remove the %s label",
				       it->label, LABEL_ROLE, LABEL_RECIPE, LABEL_ROLE);
	if (get_label(e, it->obj, LABEL_UNDO))
		return kilt_error_setf(
			err, -EINVAL,
			"container %s: its labels contradict each other (%s sidecar "
			"with %s): kilt did not write them; remove the kilt.* labels "
			"that do not belong to the container",
			it->label, LABEL_ROLE, LABEL_UNDO);
	return 0;
}

/* Whether `el`, a sidecar element of the list, was added by kilt: an injected container of the
 * list records (its VolumesFrom against the value in its kilt.undo label) that the injection
 * added that name, and carries the same recipe labels. */
static bool sidecar_proven(const struct engine *e, json_t *el, const struct item *items,
			   const json_t *added)
{
	const char *name = json_string_value(json_object_get(el, e->n->name));
	const json_t *owner = name ? json_object_get(added, name) : NULL;
	if (!owner)
		return false;
	json_t *app = items[json_integer_value(owner)].obj;
	const char *rn = get_label(e, el, LABEL_RECIPE), *rh = get_label(e, el, LABEL_HASH);
	const char *an = get_label(e, app, LABEL_RECIPE), *ah = get_label(e, app, LABEL_HASH);
	return rn && rh && an && ah && strcmp(rn, an) == 0 && strcmp(rh, ah) == 0;
}

/* Reads and checks the kilt.undo record of every injected container of the list (`ret_undos`:
 * n owned entries, NULL where there is none) and proves that kilt added every sidecar of the
 * list; anything else is an error naming the container. */
static int read_records(const struct engine *e, json_t *list, const struct item *items, size_t n,
			json_t ***ret_undos, json_t **ret_added, struct kilt_error *err)
{
	json_t **undos = xcalloc(n + 1, sizeof(*undos));
	/* sidecar name -> index of the injected container that references it */
	json_t *added = json_object();
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!items[i].marked || items[i].sidecar)
			continue;
		r = read_undo(e, items[i].obj, &undos[i], err);
		if (r < 0) {
			kilt_error_prefix(err, "container %s", items[i].label);
			break;
		}
		if (!undos[i] || !json_object_get(undos[i], e->n->volumes_from))
			continue;
		_cleanup_json_ json_t *now = json_object(), *before = json_object();
		source_containers(e, json_object_get(items[i].obj, e->n->volumes_from), now, 0);
		source_containers(e, json_object_get(undos[i], e->n->volumes_from), before, 0);
		const char *k;
		json_t *v;
		json_object_foreach (now, k, v) {
			if (!json_object_get(before, k))
				json_object_set_new(added, k, json_integer((json_int_t)i));
		}
	}
	for (size_t i = 0; i < json_array_size(list) && r == 0; i++) {
		json_t *el = json_array_get(list, i);
		if (!json_is_object(el) || !is_sidecar(e, el) ||
		    sidecar_proven(e, el, items, added))
			continue;
		const char *name = json_string_value(json_object_get(el, e->n->name));
		r = kilt_error_setf(
			err, -EINVAL,
			"container %s carries kilt's sidecar labels, but no container "
			"injected by kilt in this task records adding it with that "
			"recipe: kilt removes only what it can prove it added; remove the "
			"container or its kilt.* labels by hand",
			name ? name : "(unnamed)");
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			json_decref(undos[i]);
		free(undos);
		json_decref(added);
		return r;
	}
	*ret_undos = undos;
	*ret_added = added;
	return 0;
}

static void undos_free(json_t **undos, size_t n)
{
	for (size_t i = 0; undos && i < n; i++)
		json_decref(undos[i]);
	free(undos);
}

/* Removes every trace of an earlier injection from a list (and its task-level fields): the
 * sidecars kilt can prove it added (read_records), reported one by one, and each injected
 * container's fields as its record holds them. */
static int undo_list(struct engine *e, const struct task *t, json_t *list, json_t *props,
		     struct kilt_error *err)
{
	struct item *items = NULL;
	size_t n;
	gather(e, list, &items, &n);
	json_t **undos = NULL;
	_cleanup_json_ json_t *added = NULL;
	int r = read_records(e, list, items, n, &undos, &added, err);
	if (r < 0) {
		items_free(items, n);
		return r;
	}
	/* recorded as a shallow copy of the list, the way back for any removal */
	json_t *copy = json_copy(list);
	_cleanup_json_ json_t *gone = json_array();
	for (size_t i = json_array_size(list); i-- > 0;) {
		json_t *el = json_array_get(list, i);
		if (!json_is_object(el) || !is_sidecar(e, el))
			continue;
		json_array_insert_new(gone, 0,
				      json_pack("[ss]",
						json_string_value(json_object_get(el, e->n->name)),
						get_label(e, el, LABEL_RECIPE)));
		json_array_remove(list, i);
	}
	if (json_array_size(gone))
		journal_push(e, list, J_ARRAY)->old = copy;
	else
		json_decref(copy);
	for (size_t i = 0; i < n; i++)
		if (undos[i])
			undo_container(e, items[i].obj, undos[i], props);
	undos_free(undos, n);
	items_free(items, n);
	size_t i;
	json_t *g;
	json_array_foreach (gone, i, g) {
		char msg[300];
		snprintf(msg, sizeof(msg), "sidecar of an earlier injection (recipe %s) removed",
			 json_string_value(json_array_get(g, 1)));
		add_decision(e, t->id, json_string_value(json_array_get(g, 0)), KILT_ECS_REMOVED,
			     false, msg);
	}
	return 0;
}

/* ---- task selection ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static void skip_task(struct task *t, bool warn,
							    const char *fmt, ...)
{
	t->selected = false;
	t->warn = t->warn || warn;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
	va_end(ap);
}

/* Reads the kilt-* tags. Returns false (with the task skipped) when they cannot be read. */
static bool read_tags(struct engine *e, struct task *t, bool *ret_include, bool *ret_ignore)
{
	const struct names *n = e->n;
	json_t *tags = json_object_get(t->props, n->tags);
	const char *fn;
	*ret_include = *ret_ignore = false;
	if (!tags)
		return true;
	if (e->intrinsics && cfn_is_intrinsic(tags, &fn)) {
		skip_task(t, true,
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
		if (e->intrinsics && cfn_if_branches(tag, &a, &b)) {
			const char *ka = json_string_value(json_object_get(a, n->key));
			const char *kb = json_string_value(json_object_get(b, n->key));
			if ((ka && strncmp(ka, "kilt-", 5) == 0) ||
			    (kb && strncmp(kb, "kilt-", 5) == 0)) {
				skip_task(t, true,
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
			*ret_include = true;
		else if (strcmp(key, "kilt-ignore") == 0)
			*ret_ignore = true;
		else if (inc || ign) {
			char why[256] = "";
			_cleanup_free_ char *s = NULL;
			if (cfn_resolve_string(&e->cfn, value, &s, why, sizeof(why)) < 0) {
				char msg[400];
				snprintf(msg, sizeof(msg),
					 "the value of tag %s cannot be evaluated offline (%s); "
					 "write "
					 "the container names as a literal",
					 key, why);
				skip_task(t, true, "%s", msg);
				return false;
			}
			json_t **slot = inc ? &t->include_containers : &t->ignore_containers;
			json_decref(*slot);
			*slot = split_colons(s);
		}
	}
	if (t->include_containers)
		*ret_include = true;
	return true;
}

static void decide_platform(struct engine *e, struct task *t)
{
	const struct names *n = e->n;
	json_t *rp = json_object_get(t->props, n->runtime_platform);
	char why[256] = "";
	const char *fn;
	if (rp && e->intrinsics && cfn_is_intrinsic(rp, &fn)) {
		append_reason(t->reason, sizeof(t->reason),
			      "RuntimePlatform is %s: platform unknown, treated as supported", fn);
		t->warn = true;
		return;
	}
	json_t *osv = json_object_get(rp, n->os_family);
	if (osv) {
		_cleanup_free_ char *os = NULL;
		if (cfn_resolve_string(&e->cfn, osv, &os, why, sizeof(why)) < 0) {
			append_reason(t->reason, sizeof(t->reason),
				      "OperatingSystemFamily cannot be evaluated (%s): treated as "
				      "LINUX",
				      why);
			t->warn = true;
		} else if (strncmp(os, "WINDOWS", 7) == 0) {
			skip_task(
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
		if (cfn_resolve_string(&e->cfn, archv, &arch, why, sizeof(why)) < 0) {
			append_reason(t->reason, sizeof(t->reason),
				      "CpuArchitecture cannot be evaluated (%s): platform unknown",
				      why);
			t->warn = true;
		} else if (strcasecmp(arch, "ARM64") == 0) {
			t->platform = xstrdup("linux/arm64");
		} else if (strcasecmp(arch, "X86_64") == 0) {
			t->platform = xstrdup("linux/amd64");
		}
	}
	if (t->platform && e->planner && e->planner->supports_platform &&
	    !e->planner->supports_platform(e->planner->userdata, t->platform)) {
		char msg[300];
		snprintf(msg, sizeof(msg), "recipe %s does not support %s", e->planner->name,
			 t->platform);
		skip_task(t, false, "%s", msg);
	}
}

/* Whether the task's Services and TaskSets (CloudFormation) run it on Fargate: false with
 * `why` when at least one references the task and none can (LaunchType EC2 or EXTERNAL, a
 * capacity provider strategy without FARGATE or FARGATE_SPOT). A service that leaves the choice
 * to the cluster's default strategy, or writes it as an intrinsic kilt cannot evaluate, might. */
static bool launched_on_fargate(const struct engine *e, const struct task *t, char *why,
				size_t size)
{
	if (!e->intrinsics)
		return true;
	const json_t *resources = json_object_get(e->cfn.template, "Resources");
	const char *id, *first = NULL;
	const json_t *res;
	char how[200] = "";
	size_t users = 0;
	json_object_foreach ((json_t *)(uintptr_t)resources, id, res) {
		const char *type = json_string_value(json_object_get(res, "Type"));
		if (!type || (strcmp(type, "AWS::ECS::Service") != 0 &&
			      strcmp(type, "AWS::ECS::TaskSet") != 0))
			continue;
		const json_t *props = json_object_get(res, "Properties");
		const json_t *td = json_object_get(props, "TaskDefinition");
		const char *fn;
		if (!cfn_is_intrinsic(td, &fn) || strcmp(fn, "Ref") != 0 ||
		    !json_is_string(json_object_get(td, "Ref")) ||
		    strcmp(json_string_value(json_object_get(td, "Ref")), t->id) != 0)
			continue;
		users++;
		char w[128] = "";
		_cleanup_free_ char *lt = NULL;
		const json_t *ltv = json_object_get(props, "LaunchType");
		const json_t *cps = json_object_get(props, "CapacityProviderStrategy");
		if (ltv) {
			if (cfn_resolve_string(&e->cfn, ltv, &lt, w, sizeof(w)) < 0 ||
			    strcmp(lt, "FARGATE") == 0)
				return true;
			snprintf(w, sizeof(w), "LaunchType %s", lt);
		} else if (json_is_array(cps) && json_array_size(cps)) {
			size_t i;
			const json_t *el;
			json_array_foreach (cps, i, el) {
				_cleanup_free_ char *cp = NULL;
				char ignored[128];
				if (cfn_resolve_string(&e->cfn,
						       json_object_get(el, "CapacityProvider"), &cp,
						       ignored, sizeof(ignored)) < 0 ||
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

static void decide_compat(struct engine *e, struct task *t)
{
	const struct names *n = e->n;
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
			skip_task(t, false,
				  "cannot run on Fargate: RequiresCompatibilities and NetworkMode "
				  "are "
				  "absent, so ECS registers it for EC2 with bridge networking "
				  "(Fargate "
				  "needs awsvpc)%s",
				  "");
			return;
		}
		if (cfn_resolve_string(&e->cfn, nm, &mode, why, sizeof(why)) == 0 &&
		    strcmp(mode, "awsvpc") != 0) {
			char msg[300];
			snprintf(msg, sizeof(msg),
				 "cannot run on Fargate: NetworkMode %s (Fargate needs awsvpc) and "
				 "RequiresCompatibilities is absent",
				 mode);
			skip_task(t, false, "%s", msg);
			return;
		}
		if (!launched_on_fargate(e, t, why, sizeof(why))) {
			skip_task(t, false, "not run on Fargate: %s", why);
			return;
		}
		append_reason(t->reason, sizeof(t->reason), "%s",
			      "RequiresCompatibilities is absent: treated as a Fargate task (set "
			      "it to [FARGATE] to be explicit, or tag kilt-ignore)");
		t->warn = true;
		return;
	}
	_cleanup_json_ json_t *list = NULL;
	if (cfn_resolve_list(&e->cfn, rc, &list, why, sizeof(why)) < 0) {
		char msg[400];
		snprintf(msg, sizeof(msg),
			 "RequiresCompatibilities cannot be evaluated offline (%s): treated as a "
			 "Fargate task",
			 why);
		append_reason(t->reason, sizeof(t->reason), "%s", msg);
		t->warn = true;
		return;
	}
	if (!str_in_array(list, "FARGATE")) {
		_cleanup_free_ char *s = json_dumps(list, JSON_COMPACT);
		skip_task(t, false, "not a Fargate task definition (RequiresCompatibilities %s)",
			  s ? s : "?");
		return;
	}
	if (!launched_on_fargate(e, t, why, sizeof(why))) {
		skip_task(t, false, "not run on Fargate: %s", why);
		return;
	}
	append_reason(t->reason, sizeof(t->reason), "%s", "Fargate task definition");
}

/* The container ProxyConfiguration names (App Mesh's Envoy): a proxy, not the application. */
static void find_proxy(struct engine *e, struct task *t)
{
	json_t *pc = json_object_get(t->props, e->n->proxy_configuration);
	json_t *cn = json_object_get(pc, e->n->container_name);
	char why[256];
	if (cn && cfn_resolve_string(&e->cfn, cn, &t->proxy, why, sizeof(why)) < 0)
		t->proxy = NULL;
}

static void decide_task(struct engine *e, struct task *t)
{
	t->selected = true;
	t->metadata = json_object();
	bool include = false, ignore = false;
	if (!t->props) {
		if (e->opts.mode == KILT_ECS_OPT_IN) {
			skip_task(t, false,
				  "opt-in mode, and a bare container list has no kilt-include "
				  "tag%s",
				  "");
			return;
		}
		append_reason(t->reason, sizeof(t->reason), "%s",
			      "container definitions without a task (opt-out mode)");
		return;
	}
	if (!read_tags(e, t, &include, &ignore))
		return;
	if (ignore) {
		skip_task(t, false, "tagged kilt-ignore%s", "");
		return;
	}
	if (e->opts.mode == KILT_ECS_OPT_IN && !include) {
		skip_task(t, false, "opt-in mode and no kilt-include tag%s", "");
		return;
	}
	decide_compat(e, t);
	if (!t->selected)
		return;
	find_proxy(e, t);
	decide_platform(e, t);
	if (!t->selected)
		return;
	if (include)
		append_reason(t->reason, sizeof(t->reason), "%s", "tagged kilt-include");
}

/* Whether a container of a selected task is patched; `why` (and `ret_warn`) say why not. */
static bool container_selected(const struct engine *e, const struct task *t, const struct item *it,
			       char *why, size_t size, bool *ret_warn)
{
	const char *name = it->name;
	*ret_warn = false;
	if (!name && (t->include_containers || t->ignore_containers)) {
		snprintf(why, size,
			 "%s, so kilt cannot tell whether the kilt-%s-containers tag names it; "
			 "give the value with --param NAME=VALUE",
			 it->why, t->include_containers ? "include" : "ignore");
		*ret_warn = true;
		return false;
	}
	if (t->ignore_containers && str_in_array(t->ignore_containers, name)) {
		snprintf(why, size, "listed in the kilt-ignore-containers tag");
		return false;
	}
	bool listed = t->include_containers && str_in_array(t->include_containers, name);
	if (t->include_containers && !listed) {
		snprintf(why, size, "not listed in the kilt-include-containers tag");
		return false;
	}
	if (listed)
		return true;
	/* Containers that are not the application: an agent there would trace a log router or a
	 * proxy (a Falco and a pdig each) for nothing. */
	const json_t *fl = json_object_get(it->obj, e->n->firelens_configuration);
	const char *what = NULL;
	if (fl && !json_is_null(fl) && !(e->intrinsics && cfn_is_novalue(fl)))
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

/* ---- patching ------------------------------------------------------------------------------ */

static void sanitize_name(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			*s = '-';
}

static json_t *env_to_names(const struct names *n, const json_t *plan_env)
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

static json_t *recipe_labels(const struct engine *e)
{
	return json_copy(e->labels);
}

/* Returns the name of the sidecar for `mount` in this list, creating it on first use. */
static const char *sidecar_for(struct engine *e, struct list_state *ls, const json_t *mount,
			       const json_t *app, struct kilt_error *err)
{
	const struct names *n = e->n;
	_cleanup_free_ char *key = json_dumps(mount, JSON_COMPACT | JSON_SORT_KEYS);
	const char *have = json_string_value(json_object_get(ls->sidecar_keys, key));
	if (have)
		return have;
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
				    share(e, json_incref((json_t *)(uintptr_t)ep)));
	const json_t *cmd = json_object_get(mount, "command");
	if (json_array_size(cmd))
		json_object_set_new(sc, n->command,
				    share(e, json_incref((json_t *)(uintptr_t)cmd)));
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
			    (e->intrinsics && cfn_is_intrinsic(app_logs, NULL)))
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
	json_object_set_new(ls->sidecar_keys, key, json_string(name));
	return json_string_value(json_object_get(ls->sidecar_keys, key));
}

static bool nonempty_array(const json_t *v)
{
	return json_is_array(v) && json_array_size(v) > 0;
}

/* Each element of an argv list is a string or, in a CloudFormation template, an intrinsic
 * that stands for one; anything else (a number, an arbitrary object) is no argv word. */
static int argv_words_check(const struct engine *e, const json_t *list, const char *field,
			    struct kilt_error *err)
{
	size_t i;
	json_t *el;
	json_array_foreach (list, i, el) {
		if (json_is_string(el) || (e->intrinsics && cfn_is_intrinsic(el, NULL)))
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

/* What the container would really run (DESIGN §3): fills owned entrypoint and command. */

static int original_argv(struct engine *e, struct task *t, json_t *c, const char *image,
			 const char *image_why, char *summary, size_t ssize, json_t **ret_ep,
			 json_t **ret_cmd, struct kilt_error *err)
{
	const struct names *n = e->n;
	json_t *ep = json_object_get(c, n->entrypoint), *cmd = json_object_get(c, n->command);
	if (json_is_null(ep))
		ep = NULL;
	if (json_is_null(cmd))
		cmd = NULL;
	char why[256] = "";
	_cleanup_json_ json_t *rep = NULL, *rcmd = NULL;
	const char *fn;
	if (ep && e->intrinsics && cfn_is_intrinsic(ep, &fn)) {
		if (cfn_resolve_list(&e->cfn, ep, &rep, why, sizeof(why)) < 0)
			return kilt_error_setf(err, -EINVAL,
					       "%s is %s, which kilt cannot evaluate offline (%s); "
					       "write it as a literal list",
					       n->entrypoint, fn, why);
		ep = rep;
		append_reason(summary, ssize,
			      "%s (%s) was evaluated to its value now: run kilt again when the "
			      "parameters change",
			      n->entrypoint, fn);
		t->warn = true;
	}
	if (cmd && e->intrinsics && cfn_is_intrinsic(cmd, &fn)) {
		if (cfn_resolve_list(&e->cfn, cmd, &rcmd, why, sizeof(why)) < 0)
			return kilt_error_setf(err, -EINVAL,
					       "%s is %s, which kilt cannot evaluate offline (%s); "
					       "write it as a literal list",
					       n->command, fn, why);
		cmd = rcmd;
		append_reason(summary, ssize,
			      "%s (%s) was evaluated to its value now: run kilt again when the "
			      "parameters change",
			      n->command, fn);
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
	if (nonempty_array(ep)) {
		*ret_ep = json_deep_copy(ep);
		*ret_cmd = nonempty_array(cmd) ? json_deep_copy(cmd) : json_array();
		return 0;
	}
	/* The image's ENTRYPOINT is needed (and its CMD unless the container sets Command). */
	if (!image)
		return kilt_error_setf(
			err, -ENOENT,
			"%s is not set and the image is an intrinsic kilt cannot "
			"evaluate offline (%s); give that value, or set %s (and %s) on "
			"the container to what the image runs",
			n->entrypoint, image_why, n->entrypoint, n->command);
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
	json_t *iep = json_object_get(facts, "entrypoint");
	json_t *icmd = json_object_get(facts, "command");
	*ret_ep = json_is_array(iep) ? json_deep_copy(iep) : json_array();
	if (nonempty_array(cmd))
		*ret_cmd = json_deep_copy(cmd);
	else
		*ret_cmd = json_is_array(icmd) ? json_deep_copy(icmd) : json_array();
	if (json_array_size(*ret_ep) == 0 && json_array_size(*ret_cmd) == 0) {
		/* Outputs stay untouched on failure: the caller owns nothing here. */
		json_decref(steal_pointer(ret_ep));
		json_decref(steal_pointer(ret_cmd));
		return kilt_error_setf(err, -ENOENT,
				       "image %s sets neither ENTRYPOINT nor CMD and the container "
				       "sets no %s; set it on the container",
				       image, n->command);
	}
	return 0;
}

static int check_plan(const json_t *plan, struct kilt_error *err)
{
	if (!json_is_object(plan) || !json_is_array(json_object_get(plan, "entrypoint")))
		return kilt_error_setf(err, -EINVAL, "the recipe's plan has no entrypoint list");
	const char *keys[] = { "command", "environment", "mounts", "capabilities" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(plan, keys[i]);
		if (v && !json_is_array(v))
			return kilt_error_setf(err, -EINVAL, "the recipe's plan: %s is not a list",
					       keys[i]);
	}
	json_t *pm = json_object_get(plan, "pid_mode");
	if (pm && !json_is_string(pm))
		return kilt_error_setf(err, -EINVAL, "the recipe's plan: pid_mode is not a string");
	return 0;
}

static int patch_container(struct engine *e, struct task *t, struct list_state *ls, json_t *c,
			   const char *cname, char *summary, size_t ssize, struct kilt_error *err)
{
	const struct names *n = e->n;
	json_t *imagev = json_object_get(c, n->image);
	if (!imagev)
		return kilt_error_setf(err, -EINVAL, "the container has no %s", n->image);
	/* The image as text: literal, or Fn::Sub text standing for the intrinsic. */
	_cleanup_free_ char *sub_text = NULL, *resolved = NULL;
	_cleanup_json_ json_t *sub_vars = NULL, *defaults = NULL;
	char image_why[256] = "";
	const char *image_fact = json_string_value(imagev);
	if (!image_fact) {
		if (!e->intrinsics || !cfn_is_intrinsic(imagev, NULL))
			return kilt_error_setf(err, -EINVAL, "%s is not a string", n->image);
		sub_text = cfn_sub_text(imagev, &sub_vars);
		defaults = json_object();
		e->cfn.defaults_used = defaults;
		if (cfn_resolve_string(&e->cfn, imagev, &resolved, image_why, sizeof(image_why)) <
		    0)
			resolved = NULL;
		e->cfn.defaults_used = NULL;
	}
	const char *image_lookup = image_fact ? image_fact : resolved;

	_cleanup_json_ json_t *ep = NULL, *cmd = NULL;
	size_t looked_up = e->lookups;
	int r = original_argv(e, t, c, image_lookup, image_why, summary, ssize, &ep, &cmd, err);
	if (r < 0)
		return r;
	if (e->lookups != looked_up && json_object_size(defaults)) {
		/* the entrypoint written now comes from an image the template only suggests */
		const char *pname;
		json_t *pdef;
		json_object_foreach (defaults, pname, pdef) {
			append_reason(
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
	r = e->planner->evaluate(e->planner->userdata, &target, e->opts.config, &plan, err);
	if (r < 0)
		return kilt_error_prefix(err, "recipe %s", e->planner->name);
	r = check_plan(plan, err);
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
					cfn_wrap_sub(json_incref(v), sub_text, sub_vars));
		}
	}

	_cleanup_json_ json_t *undo = json_object();
	json_t *pimage = json_object_get(plan, "image");
	/* the plan's values go in as they are: nothing modifies them afterwards */
	if (pimage)
		set_field(e, c, n->image, json_incref(pimage), undo);
	set_field(e, c, n->entrypoint, share(e, json_incref(json_object_get(plan, "entrypoint"))),
		  undo);
	json_t *pcmd = json_object_get(plan, "command");
	if (json_array_size(pcmd) || json_object_get(c, n->command))
		set_field(e, c, n->command, pcmd ? share(e, json_incref(pcmd)) : json_array(),
			  undo);
	json_t *penv = json_object_get(plan, "environment");
	if (penv) {
		struct env_edit ee = { .plan_env = penv };
		r = edit_field(e, c, n->environment, edit_env, &ee, false, undo, err);
		if (r < 0)
			return r;
	}
	json_t *caps = json_object_get(plan, "capabilities");
	if (json_array_size(caps)) {
		r = edit_field(e, c, n->linux_parameters, edit_linux, caps, true, undo, err);
		if (r < 0)
			return r;
	}
	json_t *mounts = json_object_get(plan, "mounts");
	json_t *mount;
	json_array_foreach (mounts, i, mount) {
		const char *sname = sidecar_for(e, ls, mount, c, err);
		if (!sname)
			return kilt_error_prefix(err, "recipe mount %zu", i);
		_cleanup_json_ json_t *vf =
			json_pack("{sssb}", n->source_container, sname, n->read_only, 1);
		_cleanup_json_ json_t *dep =
			json_pack("{ssss}", n->container_name, sname, n->condition, "START");
		r = edit_field(e, c, n->volumes_from, edit_append_unique, vf, true, undo, err);
		if (r < 0)
			return r;
		r = edit_field(e, c, n->depends_on, edit_append_unique, dep, true, undo, err);
		if (r < 0)
			return r;
		append_reason(summary, ssize, "sidecar %s", sname);
	}
	const char *pid = json_string_value(json_object_get(plan, "pid_mode"));
	if (pid) {
		json_t *cur = t->props ? json_object_get(t->props, n->pid_mode) : NULL;
		if (!t->props) {
			append_reason(summary, ssize,
				      "the recipe asks for PidMode %s: set it on the task "
				      "definition (pid_mode in Terraform)",
				      pid);
			t->warn = true;
		} else if (!cur) {
			json_object_set_new(undo, UNDO_TASK, json_pack("{sn}", n->pid_mode));
			doc_set(e, t->props, n->pid_mode, json_string(pid));
		} else if (!json_is_string(cur) || strcmp(json_string_value(cur), pid) != 0) {
			append_reason(summary, ssize,
				      "the task's PidMode is kept although the recipe asks for %s",
				      pid);
			t->warn = true;
		}
	}
	if (json_array_size(caps)) {
		_cleanup_free_ char *s = json_dumps(caps, JSON_COMPACT);
		append_reason(summary, ssize, "capabilities %s", s ? s : "");
	}
	/* The marker goes last: it records the original of every field changed above. */
	json_t *old_labels = json_object_get(c, n->docker_labels);
	if (!json_object_get(undo, n->docker_labels))
		json_object_set_new(undo, n->docker_labels,
				    old_labels ? json_incref(old_labels) : json_null());
	_cleanup_json_ json_t *marker = recipe_labels(e);
	_cleanup_free_ char *undo_text = cfn_encode_label(undo);
	json_object_set_new(marker, LABEL_UNDO, json_string(undo_text));
	json_t *nl = edit_value(e, old_labels, edit_labels, marker, 0, err);
	if (!nl)
		return kilt_error_prefix(err, "%s", n->docker_labels);
	doc_set(e, c, n->docker_labels, nl);
	return 0;
}

/* ---- lists and tasks ----------------------------------------------------------------------- */

static void list_state_done(struct list_state *ls)
{
	json_decref(ls->sidecars);
	json_decref(ls->sidecar_keys);
	json_decref(ls->names);
}

static bool all_current(const struct engine *e, struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!items[i].marked)
			continue;
		const char *rn = get_label(e, items[i].obj, LABEL_RECIPE);
		const char *rh = get_label(e, items[i].obj, LABEL_HASH);
		const char *rc = get_label(e, items[i].obj, LABEL_CONFIG);
		if (!rn || !rh || strcmp(rn, e->planner->name) != 0 ||
		    strcmp(rh, e->planner->hash) != 0)
			return false;
		if ((rc == NULL) != (e->config_hash == NULL) ||
		    (rc && strcmp(rc, e->config_hash) != 0))
			return false;
	}
	return true;
}

/* Appends to a filled `err` what kilt knows about a container whose name is unknown, when the
 * recipe needed original.name. */
static void explain_unknown_name(const struct item *it, struct kilt_error *err)
{
	if (it->name || !strstr(err->msg, "original.name"))
		return;
	size_t len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, " (%s)", it->why);
}

static int process_list(struct engine *e, struct task *t, json_t *list, struct kilt_error *err)
{
	struct item *items = NULL;
	size_t n = 0;
	gather(e, list, &items, &n);
	bool marked = false;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		marked = marked || items[i].marked;
		rc = check_labels(e, &items[i], err);
		if (items[i].name && !items[i].sidecar)
			json_object_set_new(t->seen, items[i].name, json_true());
		else if (!items[i].sidecar)
			t->unnamed = true;
	}
	if (rc < 0) {
		items_free(items, n);
		return kilt_error_prefix(err, "%s", t->id);
	}

	char why[400];
	bool warn;
	if (marked) {
		/* the records and sidecars are checked even when nothing is to change */
		json_t **undos = NULL, *added = NULL;
		rc = read_records(e, list, items, n, &undos, &added, err);
		undos_free(undos, n);
		json_decref(added);
		if (rc < 0) {
			items_free(items, n);
			return kilt_error_prefix(err, "%s", t->id);
		}
	}
	if (marked && e->planner && t->selected && all_current(e, items, n)) {
		bool same = true;
		for (size_t i = 0; i < n && same; i++)
			if (!items[i].sidecar)
				same = items[i].marked ==
				       container_selected(e, t, &items[i], why, sizeof(why), &warn);
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
					container_selected(e, t, &items[i], msg, sizeof(msg),
							   &warn);
				add_decision(e, t->id, items[i].label,
					     items[i].marked ? KILT_ECS_UNCHANGED
							     : KILT_ECS_SKIPPED,
					     warn, msg);
				t->any_unchanged = t->any_unchanged || items[i].marked;
			}
			items_free(items, n);
			return 0;
		}
	}
	/* Remember which containers carried an injection, then undo it all. */
	_cleanup_json_ json_t *was_marked = json_object();
	if (marked) {
		for (size_t i = 0; i < n; i++)
			if (items[i].marked && !items[i].sidecar)
				json_object_set_new(was_marked, items[i].label, json_true());
		int r = undo_list(e, t, list, t->props, err);
		if (r < 0) {
			items_free(items, n);
			return kilt_error_prefix(err, "%s", t->id);
		}
		items_free(items, n);
		items = NULL;
		gather(e, list, &items, &n);
	}

	if (!e->planner || !t->selected) {
		for (size_t i = 0; i < n; i++) {
			bool removed = json_object_get(was_marked, items[i].label) != NULL;
			char msg[700];
			snprintf(msg, sizeof(msg), "%s%s",
				 removed ? "earlier injection removed: " : "",
				 e->planner ? t->reason : "kilt remove");
			add_decision(e, t->id, items[i].label,
				     removed ? KILT_ECS_REMOVED : KILT_ECS_SKIPPED, false, msg);
			t->any_removed = t->any_removed || removed;
		}
		items_free(items, n);
		return 0;
	}

	struct list_state ls = {
		.list = list,
		.sidecars = json_array(),
		.sidecar_keys = json_object(),
		.names = json_object(),
	};
	for (size_t i = 0; i < n; i++) {
		if (items[i].name)
			json_object_set_new(ls.names, items[i].name, json_true());
		/* a name the containers already point at is taken too: a sidecar by that name would
		 * answer a reference kilt did not write, and kilt could not prove it added it */
		source_containers(e, json_object_get(items[i].obj, e->n->volumes_from), ls.names,
				  0);
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
		if (!container_selected(e, t, &items[i], why, sizeof(why), &warn)) {
			char msg[500];
			snprintf(msg, sizeof(msg), "%s%s",
				 removed ? "earlier injection removed: " : "", why);
			add_decision(e, t->id, label, removed ? KILT_ECS_REMOVED : KILT_ECS_SKIPPED,
				     warn, msg);
			t->any_removed = t->any_removed || removed;
			continue;
		}
		char summary[512] = "";
		bool warn_before = t->warn;
		t->warn = false;
		if (!items[i].name) {
			append_reason(summary, sizeof(summary),
				      "%s: reported by its position, original.name unknown",
				      items[i].why);
			t->warn = true;
		}
		/* fail-open needs a way back when a container cannot be patched: the journal for
		 * the document, copies for the list's own state */
		bool fo = e->opts.fail_open;
		size_t mark = e->journal->n;
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
			journal_rollback(e->journal, mark);
			json_decref(ls.sidecars);
			ls.sidecars = json_incref(sidecars_backup);
			json_decref(ls.sidecar_keys);
			ls.sidecar_keys = json_incref(keys_backup);
			json_decref(ls.names);
			ls.names = json_incref(names_backup);
			char msg[700];
			snprintf(msg, sizeof(msg), "not patched (fail-open): %s", err->msg);
			add_decision(e, t->id, label, KILT_ECS_SKIPPED, true, msg);
			*err = (struct kilt_error){ 0 };
			continue;
		}
		char msg[700];
		snprintf(msg, sizeof(msg), "injected recipe %s%s%s", e->planner->name,
			 summary[0] ? ": " : "", summary);
		add_decision(e, t->id, label, KILT_ECS_PATCHED, warn, msg);
		t->any_patched = true;
	}
	if (rc == 0 && json_array_size(ls.sidecars)) {
		doc_will_append(e, list);
		json_array_extend(list, ls.sidecars);
	}
	list_state_done(&ls);
	items_free(items, n);
	return rc;
}

/* A kilt-include-containers or kilt-ignore-containers tag naming no container of the task (a
 * typo, or a container renamed since) would otherwise change nothing in silence. */
static void check_listed(struct task *t, const json_t *list, const char *tag)
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
		append_reason(t->reason, sizeof(t->reason), "%s", msg);
		t->warn = true;
	}
}

static int process_task(struct engine *e, const char *id, json_t *props, json_t *containers,
			struct kilt_error *err)
{
	struct task t = { .id = id, .props = props, .seen = json_object() };
	if (e->planner)
		decide_task(e, &t);
	else
		t.metadata = json_object();
	t.decision = add_decision(e, id, NULL, KILT_ECS_SKIPPED, false, "");
	int r = 0;
	const char *fn;
	if (!containers) {
		skip_task(&t, false, "no container definitions%s", "");
	} else if (json_is_array(containers)) {
		r = process_list(e, &t, containers, err);
	} else if (e->intrinsics && cfn_is_intrinsic(containers, &fn)) {
		json_t *a, *b;
		if (cfn_if_branches(containers, &a, &b)) {
			if (json_is_array(a))
				r = process_list(e, &t, a, err);
			if (r == 0 && json_is_array(b))
				r = process_list(e, &t, b, err);
		} else {
			skip_task(&t, true,
				  "ContainerDefinitions is %s, which kilt cannot see into; write "
				  "the containers as a list",
				  fn);
		}
	} else {
		r = kilt_error_setf(err, -EINVAL, "%s: %s is not a list", id,
				    e->n->container_definitions);
	}
	if (r == 0 && e->planner && t.selected && containers) {
		check_listed(&t, t.include_containers, "kilt-include-containers");
		check_listed(&t, t.ignore_containers, "kilt-ignore-containers");
	}
	struct kilt_ecs_decision *d = &e->report->decisions[t.decision];
	d->warning = t.warn;
	if (t.any_patched)
		d->verdict = KILT_ECS_PATCHED;
	else if (t.any_unchanged)
		d->verdict = KILT_ECS_UNCHANGED;
	else if (t.any_removed)
		d->verdict = KILT_ECS_REMOVED;
	else if (t.selected && e->planner && containers && t.reason[0])
		append_reason(t.reason, sizeof(t.reason), "%s", "but no container was selected");
	free(d->reason);
	d->reason = reason_dup(e->planner ? t.reason : "kilt remove");
	free(t.platform);
	free(t.proxy);
	json_decref(t.seen);
	json_decref(t.include_containers);
	json_decref(t.ignore_containers);
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

static int run(struct engine *e, json_t *doc, struct kilt_error *err)
{
	enum kilt_ecs_input kind = e->opts.input;
	if (kind == KILT_ECS_INPUT_AUTO) {
		int r = kilt_ecs_detect(doc, &kind, err);
		if (r < 0)
			return r;
	}
	e->report->input = kind;
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
					journal_rollback(e->journal, 0);
				return r;
			}
			const char *type = json_string_value(json_object_get(res, "Type"));
			if (!type || strcmp(type, "AWS::ECS::TaskDefinition") != 0)
				continue;
			json_t *props = json_object_get(res, "Properties");
			if (!json_is_object(props)) {
				add_decision(e, id, NULL, KILT_ECS_SKIPPED, true,
					     "the task definition has no Properties");
				continue;
			}
			r = process_task(e, id, props,
					 json_object_get(props, "ContainerDefinitions"), err);
			if (r < 0) {
				if (!e->opts.discard_on_failure)
					journal_rollback(e->journal, 0);
				return r;
			}
			if (e->opts.discard_on_failure)
				journal_forget(e->journal);
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
	if (json_is_array(doc)) {
		json_array_clear(doc);
		json_array_extend(doc, work);
	} else {
		json_object_clear(doc);
		json_object_update(doc, work);
	}
	return 0;
}

static int run_with_report(struct engine *e, json_t *doc, struct kilt_ecs_report *report,
			   struct kilt_error *err)
{
	struct kilt_ecs_report local;
	kilt_ecs_report_init(&local);
	e->report = &local;
	struct journal journal;
	journal_init(&journal);
	e->journal = &journal;
	e->shared = json_object();
	int r = run(e, doc, err);
	journal_done(&journal);
	e->journal = NULL;
	json_decref(e->shared);
	e->shared = NULL;
	ecs_report_tally(&local);
	if (report && r == 0) {
		kilt_ecs_report_done(report);
		*report = local;
	} else {
		kilt_ecs_report_done(&local);
	}
	return r;
}

/* The operator's settings that change what a recipe produces, so that changing them is not
 * mistaken for "already injected". */
static char *settings_hash(const struct kilt_ecs_options *o)
{
	_cleanup_json_ json_t *s = json_object();
	if (json_is_object(o->config) && json_object_size(o->config))
		json_object_set(s, "config", (json_t *)(uintptr_t)o->config);
	if (o->sidecar_repository_credentials)
		json_object_set_new(s, "credentials",
				    json_string(o->sidecar_repository_credentials));
	if (o->sidecar_log_configuration)
		json_object_set(s, "logs", (json_t *)(uintptr_t)o->sidecar_log_configuration);
	if (o->sidecar_logs_off)
		json_object_set_new(s, "logs_off", json_true());
	if (!json_object_size(s))
		return NULL;
	_cleanup_free_ char *text = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return NULL;
	char *digest = kilt_digest_sha256(text, strlen(text));
	/* "sha256:" + the first 16 hex digits: enough to tell settings apart */
	if (strlen(digest) > 23)
		digest[23] = '\0';
	return digest;
}

/* A Secrets Manager secret ARN or name goes into every sidecar as written: an empty one, or
 * one with blanks or control characters, is a typo that ECS would only reject at deploy time. */
static int check_secret_ref(const char *s, struct kilt_error *err)
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

int kilt_ecs_inject_planner(const struct kilt_ecs_planner *planner, json_t *doc,
			    const struct kilt_ecs_options *opts, struct kilt_ecs_report *report,
			    struct kilt_error *err)
{
	struct engine e = { .planner = planner };
	if (opts)
		e.opts = *opts;
	else
		kilt_ecs_options_default(&e.opts);
	e.cfn.params = e.opts.parameters;
	if (!planner || !planner->evaluate || !planner->name || !planner->hash)
		return kilt_error_setf(err, -EINVAL, "no recipe");
	if (e.opts.sidecar_repository_credentials) {
		int r = check_secret_ref(e.opts.sidecar_repository_credentials, err);
		if (r < 0)
			return r;
	}
	e.config_hash = settings_hash(&e.opts);
	e.labels = json_pack("{ssss}", LABEL_RECIPE, planner->name, LABEL_HASH, planner->hash);
	if (e.config_hash)
		json_object_set_new(e.labels, LABEL_CONFIG, json_string(e.config_hash));
	if (e.opts.sidecar_log_configuration)
		e.sidecar_logs = json_deep_copy(e.opts.sidecar_log_configuration);
	int r = run_with_report(&e, doc, report, err);
	free(e.config_hash);
	json_decref(e.labels);
	json_decref(e.sidecar_logs);
	return r;
}

int kilt_ecs_remove(json_t *doc, const struct kilt_ecs_options *opts,
		    struct kilt_ecs_report *report, struct kilt_error *err)
{
	struct engine e = { .planner = NULL };
	if (opts)
		e.opts = *opts;
	else
		kilt_ecs_options_default(&e.opts);
	e.cfn.params = e.opts.parameters;
	return run_with_report(&e, doc, report, err);
}

/* ---- the recipe as a planner --------------------------------------------------------------- */

static int recipe_evaluate(void *userdata, const struct kilt_target *target, const json_t *config,
			   json_t **ret_plan, struct kilt_error *err)
{
	return kilt_recipe_evaluate(userdata, target, config, ret_plan, err);
}

static bool recipe_supports(void *userdata, const char *platform)
{
	return kilt_recipe_supports_platform(userdata, platform);
}

int kilt_ecs_inject(const struct kilt_recipe *recipe, json_t *doc,
		    const struct kilt_ecs_options *opts, struct kilt_ecs_report *report,
		    struct kilt_error *err)
{
	if (!recipe)
		return kilt_error_setf(err, -EINVAL, "no recipe");
	struct kilt_ecs_planner p = {
		.name = kilt_recipe_name(recipe),
		.hash = kilt_recipe_hash(recipe),
		.evaluate = recipe_evaluate,
		.supports_platform = recipe_supports,
		.userdata = (void *)(uintptr_t)recipe,
	};
	return kilt_ecs_inject_planner(&p, doc, opts, report, err);
}
