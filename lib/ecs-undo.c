/* SPDX-License-Identifier: Apache-2.0 */
/* Undo in the ECS engine: a container's kilt.undo label read and checked (only the fields kilt
 * changes, with values of their expected types), the containers of a list gathered with their
 * names, the sidecars an injection proves it added, and an earlier injection taken back. */
#include "ecs-internal.h"

static bool is_sidecar(const struct kilt_ecs_engine *e, json_t *c)
{
	const char *role = kilt_ecs_get_label(e, c, LABEL_ROLE);
	return role && strcmp(role, "sidecar") == 0;
}

/* `undo` is the caller's private object (parsed from a label and checked by read_undo): its
 * values move into `obj`. */
static void restore_fields(const struct kilt_ecs_engine *e, json_t *obj, const json_t *undo)
{
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)undo, k, v) {
		if (strcmp(k, UNDO_TASK) == 0)
			continue;
		if (json_is_null(v))
			kilt_journal_del(e->journal, obj, k);
		else
			kilt_journal_set(e->journal, obj, k, json_incref(v));
	}
}

/* The value a list field of the container had before kilt: absent (null), a list, or (in
 * CloudFormation) an intrinsic that stood there. */
static bool undo_list_value(const struct kilt_ecs_engine *e, const json_t *v)
{
	return json_is_null(v) || json_is_array(v) ||
	       (e->intrinsics && kilt_cfn_is_intrinsic(v, NULL));
}

/* Checks a kilt.undo record: it may hold only the fields kilt itself changes, each with a value
 * of the type that field had before kilt, so a forged label cannot make `--remove` write
 * anything else (Privileged, another role, NetworkMode...). */
static int check_undo(const struct kilt_ecs_engine *e, const json_t *undo, struct kilt_error *err)
{
	const struct kilt_ecs_names *n = e->n;
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
			ok = json_is_string(v) || (e->intrinsics && kilt_cfn_is_intrinsic(v, NULL));
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
static int read_undo(const struct kilt_ecs_engine *e, json_t *c, json_t **ret,
		     struct kilt_error *err)
{
	*ret = NULL;
	const char *text = kilt_ecs_get_label(e, c, LABEL_UNDO);
	if (!text) {
		if (!kilt_ecs_get_label(e, c, LABEL_RECIPE))
			return 0;
		return kilt_error_setf(err, -EINVAL,
				       "carries the %s label but no %s label, so kilt cannot undo "
				       "the earlier injection; restore the container by hand",
				       LABEL_RECIPE, LABEL_UNDO);
	}
	json_error_t jerr;
	json_t *undo = kilt_json_loadb(text, strlen(text), JSON_ALLOW_NUL, &jerr);
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
static void undo_container(const struct kilt_ecs_engine *e, json_t *c, const json_t *undo,
			   json_t *props)
{
	json_t *task_undo = json_object_get(undo, UNDO_TASK);
	if (props && json_is_object(task_undo))
		restore_fields(e, props, task_undo);
	restore_fields(e, c, undo);
}

/* Adds to `out` the SourceContainer of every VolumesFrom entry in `v`, looking through Fn::If. */
void kilt_ecs_source_containers(const struct kilt_ecs_engine *e, const json_t *v, json_t *out,
				unsigned depth)
{
	if (depth > MAX_EDIT_DEPTH)
		return;
	json_t *a, *b;
	if (e->intrinsics && kilt_cfn_if_branches((json_t *)(uintptr_t)v, &a, &b)) {
		kilt_ecs_source_containers(e, a, out, depth + 1);
		kilt_ecs_source_containers(e, b, out, depth + 1);
		return;
	}
	size_t i;
	const json_t *el;
	json_array_foreach (v, i, el) {
		const char *src = json_string_value(json_object_get(el, e->n->source_container));
		if (src)
			json_object_set_new(out, src, json_true());
		else
			kilt_ecs_source_containers(e, el, out, depth + 1);
	}
}

/* A container's name: literal, or evaluated through the parameter values when it is an
 * intrinsic (`Name: !Ref WorkloadName`, as AWS's samples and Copilot write it). NULL with `why`
 * filled when it cannot be known offline. */
static char *container_name(const struct kilt_ecs_engine *e, const json_t *c, char *why,
			    size_t size)
{
	const json_t *v = json_object_get(c, e->n->name);
	const char *fn;
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (!v || json_is_null(v)) {
		snprintf(why, size, "the container has no %s", e->n->name);
		return NULL;
	}
	if (e->intrinsics && kilt_cfn_is_intrinsic(v, &fn)) {
		char inner[200] = "";
		char *s = NULL;
		if (kilt_cfn_resolve_string(&e->cfn, v, &s, inner, sizeof(inner)) == 0)
			return s;
		snprintf(why, size, "its %s is %s, which kilt cannot evaluate offline: %s",
			 e->n->name, fn, inner);
		return NULL;
	}
	snprintf(why, size, "its %s is not a string", e->n->name);
	return NULL;
}

void kilt_ecs_items_free(struct kilt_ecs_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].name);
		free(items[i].label);
	}
	free(items);
}

/* Collects the container objects of a list, looking into Fn::If elements. Release with
 * items_free. */
void kilt_ecs_gather(const struct kilt_ecs_engine *e, json_t *list, struct kilt_ecs_item **ret,
		     size_t *ret_n)
{
	size_t n = 0, cap = json_array_size(list) * 2 + 1;
	struct kilt_ecs_item *items = xcalloc(cap, sizeof(*items));
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *el = json_array_get(list, i);
		json_t *objs[2] = { el, NULL };
		json_t *a, *b;
		if (e->intrinsics && kilt_cfn_if_branches(el, &a, &b)) {
			objs[0] = a;
			objs[1] = b;
		}
		for (size_t k = 0; k < 2; k++) {
			json_t *c = objs[k];
			if (!json_is_object(c) || (e->intrinsics && kilt_cfn_is_intrinsic(c, NULL)))
				continue;
			struct kilt_ecs_item *it = &items[n++];
			*it = (struct kilt_ecs_item){
				.obj = c,
				.index = i,
				.sidecar = is_sidecar(e, c),
				.marked = kilt_ecs_get_label(e, c, LABEL_RECIPE) != NULL,
			};
			it->name = container_name(e, c, it->why, sizeof(it->why));
			it->label = it->name ? xstrdup(it->name) : xasprintf("#%zu", i + 1);
		}
	}
	*ret = items;
	*ret_n = n;
}

/* Labels that contradict each other: kilt never writes them so. */
int kilt_ecs_check_labels(const struct kilt_ecs_engine *e, const struct kilt_ecs_item *it,
			  struct kilt_error *err)
{
	if (!it->sidecar)
		return 0;
	if (!it->marked)
		return kilt_error_setf(err, -EINVAL,
				       "container %s: its labels contradict each other (%s sidecar "
				       "without %s): kilt did not write them; remove the %s label",
				       it->label, LABEL_ROLE, LABEL_RECIPE, LABEL_ROLE);
	if (kilt_ecs_get_label(e, it->obj, LABEL_UNDO))
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
static bool sidecar_proven(const struct kilt_ecs_engine *e, json_t *el,
			   const struct kilt_ecs_item *items, const json_t *added)
{
	const char *name = json_string_value(json_object_get(el, e->n->name));
	const json_t *owner = name ? json_object_get(added, name) : NULL;
	if (!owner)
		return false;
	json_t *app = items[json_integer_value(owner)].obj;
	const char *rn = kilt_ecs_get_label(e, el, LABEL_RECIPE),
		   *rh = kilt_ecs_get_label(e, el, LABEL_HASH);
	const char *an = kilt_ecs_get_label(e, app, LABEL_RECIPE),
		   *ah = kilt_ecs_get_label(e, app, LABEL_HASH);
	return rn && rh && an && ah && strcmp(rn, an) == 0 && strcmp(rh, ah) == 0;
}

/* Reads and checks the kilt.undo record of every injected container of the list (`ret_undos`:
 * n owned entries, NULL where there is none) and proves that kilt added every sidecar of the
 * list; anything else is an error naming the container. */
int kilt_ecs_read_records(const struct kilt_ecs_engine *e, json_t *list,
			  const struct kilt_ecs_item *items, size_t n, json_t ***ret_undos,
			  json_t **ret_added, struct kilt_error *err)
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
		kilt_ecs_source_containers(e, json_object_get(items[i].obj, e->n->volumes_from),
					   now, 0);
		kilt_ecs_source_containers(e, json_object_get(undos[i], e->n->volumes_from), before,
					   0);
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

void kilt_ecs_undos_free(json_t **undos, size_t n)
{
	for (size_t i = 0; undos && i < n; i++)
		json_decref(undos[i]);
	free(undos);
}

/* Removes every trace of an earlier injection from a list (and its task-level fields): the
 * sidecars kilt can prove it added (read_records), reported one by one, and each injected
 * container's fields as its record holds them. */
int kilt_ecs_undo_list(struct kilt_ecs_engine *e, const struct kilt_ecs_task *t, json_t *list,
		       json_t *props, struct kilt_error *err)
{
	struct kilt_ecs_item *items = NULL;
	size_t n;
	kilt_ecs_gather(e, list, &items, &n);
	json_t **undos = NULL;
	_cleanup_json_ json_t *added = NULL;
	int r = kilt_ecs_read_records(e, list, items, n, &undos, &added, err);
	if (r < 0) {
		kilt_ecs_items_free(items, n);
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
						kilt_ecs_get_label(e, el, LABEL_RECIPE)));
		json_array_remove(list, i);
	}
	if (json_array_size(gone))
		kilt_journal_removed(e->journal, list, copy);
	else
		json_decref(copy);
	for (size_t i = 0; i < n; i++)
		if (undos[i])
			undo_container(e, items[i].obj, undos[i], props);
	kilt_ecs_undos_free(undos, n);
	kilt_ecs_items_free(items, n);
	size_t i;
	json_t *g;
	json_array_foreach (gone, i, g) {
		char msg[300];
		snprintf(msg, sizeof(msg), "sidecar of an earlier injection (recipe %s) removed",
			 json_string_value(json_array_get(g, 1)));
		kilt_report_add(e->report, t->id, json_string_value(json_array_get(g, 0)),
				KILT_REMOVED, false, msg);
	}
	return 0;
}
