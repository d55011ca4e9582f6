/* SPDX-License-Identifier: Apache-2.0 */
/* Field edits of the ECS engine: a plain value, or both branches of an Fn::If around it, turned
 * into its new value without modifying any value in place (edits work on shallow copies, so
 * values can be shared between containers), each change recorded in the run's journal and the
 * field's original kept for the container's undo label. */
#include <stdint.h>
#include <strings.h>

#include "ecs-internal.h"

#define MAX_SHARED_BYTES 512
#define MAX_SHARED_VALUES 1024
#define MAX_SHARED_DEPTH 8

/* FNV-1a over a value's content in order (keys in their order: two objects that differ only in
 * key order are different values here, as their text is). `*budget` bounds the bytes looked at;
 * false when the value is too large or deep to be worth sharing. */
static bool shape_hash(const json_t *v, uint64_t *h, size_t *budget, unsigned depth)
{
#define MIX(p, n)                                                                                  \
	do {                                                                                       \
		const unsigned char *m_ = (const unsigned char *)(p);                              \
		for (size_t k_ = 0; k_ < (n); k_++)                                                \
			*h = (*h ^ m_[k_]) * 1099511628211ull;                                     \
	} while (0)
	if (depth > MAX_SHARED_DEPTH || *budget < 8)
		return false;
	*budget -= 8;
	const unsigned char type[1] = { (unsigned char)json_typeof(v) };
	MIX(type, sizeof type);
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *m;
		json_object_foreach ((json_t *)(uintptr_t)v, k, m) {
			size_t n = strlen(k) + 1;
			if (*budget < n)
				return false;
			*budget -= n;
			MIX(k, n);
			if (!shape_hash(m, h, budget, depth + 1))
				return false;
		}
		return true;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *m;
		json_array_foreach (v, i, m)
			if (!shape_hash(m, h, budget, depth + 1))
				return false;
		return true;
	}
	case JSON_STRING: {
		size_t n = json_string_length(v);
		if (*budget < n)
			return false;
		*budget -= n;
		MIX(json_string_value(v), n);
		MIX(&n, sizeof(n));
		return true;
	}
	case JSON_INTEGER: {
		json_int_t x = json_integer_value(v);
		MIX(&x, sizeof(x));
		return true;
	}
	case JSON_REAL: {
		double x = json_real_value(v);
		MIX(&x, sizeof(x));
		return true;
	}
	default:
		return true;
	}
#undef MIX
}

/* Equal content in the same order (the text the values dump to is the same). */
static bool same_shape(const json_t *a, const json_t *b)
{
	if (a == b)
		return true;
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return false;
		void *ia = json_object_iter((json_t *)(uintptr_t)a);
		void *ib = json_object_iter((json_t *)(uintptr_t)b);
		for (; ia && ib; ia = json_object_iter_next((json_t *)(uintptr_t)a, ia),
				 ib = json_object_iter_next((json_t *)(uintptr_t)b, ib))
			if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) != 0 ||
			    !same_shape(json_object_iter_value(ia), json_object_iter_value(ib)))
				return false;
		return !ia && !ib;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(a);
		if (n != json_array_size(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!same_shape(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	}
	default:
		return json_equal(a, b);
	}
}

/* Returns `v` (owned), or an equal value written earlier in this run in its place. The engine
 * never modifies a value in place (it replaces fields and edits shallow copies), so values can
 * be shared between containers; the document owns them like any other. Values are found by a
 * hash of their content in order, then compared. */
json_t *kilt_ecs_share(const struct kilt_ecs_engine *e, json_t *v)
{
	if (!(json_is_object(v) || json_is_array(v)))
		return v;
	uint64_t h = 1469598103934665603ull;
	size_t budget = MAX_SHARED_BYTES;
	if (!shape_hash(v, &h, &budget, 0))
		return v;
	char key[17];
	snprintf(key, sizeof(key), "%016llx", (unsigned long long)h);
	json_t *bucket = json_object_get(e->shared, key);
	size_t i;
	json_t *have;
	json_array_foreach (bucket, i, have) {
		if (same_shape(have, v)) {
			json_decref(v);
			return json_incref(have);
		}
	}
	if (json_object_size(e->shared) >= MAX_SHARED_VALUES)
		return v;
	if (!bucket) {
		bucket = json_array();
		json_object_set_new(e->shared, key, bucket);
	}
	json_array_append(bucket, v);
	return v;
}

/* An edit turns a plain value (NULL when absent) into its new value (owned). */
typedef json_t *(*edit_fn)(const struct kilt_ecs_engine *e, const json_t *v, const void *arg,
			   struct kilt_error *err);

/* Applies `fn` to `v`, or to both branches of an Fn::If (an AWS::NoValue branch counts as
 * absent). Returns the new value (owned) or NULL with `err` set. */
static json_t *edit_value(const struct kilt_ecs_engine *e, const json_t *v, edit_fn fn,
			  const void *arg, unsigned depth, struct kilt_error *err)
{
	if (depth > MAX_EDIT_DEPTH) {
		kilt_error_setf(err, -ELOOP, "Fn::If nested too deeply");
		return NULL;
	}
	const char *ifn;
	if (v && e->intrinsics && kilt_cfn_is_intrinsic(v, &ifn)) {
		json_t *a, *b;
		if (kilt_cfn_is_novalue(v))
			return fn(e, NULL, arg, err);
		if (!kilt_cfn_if_branches((json_t *)(uintptr_t)v, &a, &b)) {
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

/* Capability names as Docker reads them: "CAP_SYS_PTRACE", "SYS_PTRACE" and "sys_ptrace" are one
 * capability. */
static bool same_capability(const char *a, const char *b)
{
	if (strncasecmp(a, "CAP_", 4) == 0)
		a += 4;
	if (strncasecmp(b, "CAP_", 4) == 0)
		b += 4;
	return strcasecmp(a, b) == 0;
}

static bool has_capability(const json_t *list, const char *cap)
{
	size_t i;
	const json_t *e;
	json_array_foreach (list, i, e) {
		if (json_is_string(e) && same_capability(json_string_value(e), cap))
			return true;
	}
	return false;
}

static json_t *edit_cap_add(const struct kilt_ecs_engine *e, const json_t *v, const void *arg,
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
		if (json_is_string(cap) && !has_capability(add, json_string_value(cap)))
			json_array_append(add, (json_t *)(uintptr_t)cap);
	}
	return add;
}

static json_t *edit_caps(const struct kilt_ecs_engine *e, const json_t *v, const void *arg,
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

static json_t *edit_linux(const struct kilt_ecs_engine *e, const json_t *v, const void *arg,
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
static json_t *edit_append_unique(const struct kilt_ecs_engine *e, const json_t *v, const void *arg,
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

static json_t *edit_labels(const struct kilt_ecs_engine *e, const json_t *v, const void *arg,
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
static json_t *edit_env(const struct kilt_ecs_engine *e, const json_t *v, const void *arg,
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
static int edit_field(const struct kilt_ecs_engine *e, json_t *c, const char *key, edit_fn fn,
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
	kilt_journal_set(e->journal, c, key, shareable ? kilt_ecs_share(e, nv) : nv);
	return 0;
}

void kilt_ecs_set_field(const struct kilt_ecs_engine *e, json_t *c, const char *key, json_t *value,
			json_t *undo)
{
	json_t *old = json_object_get(c, key);
	if (old && json_equal(old, value)) {
		json_decref(value);
		return;
	}
	if (!json_object_get(undo, key))
		json_object_set_new(undo, key, old ? json_incref(old) : json_null());
	kilt_journal_set(e->journal, c, key, value);
}

int kilt_ecs_merge_env(const struct kilt_ecs_engine *e, json_t *c, const json_t *plan_env,
		       json_t *undo, struct kilt_error *err)
{
	struct env_edit ee = { .plan_env = plan_env };
	return edit_field(e, c, e->n->environment, edit_env, &ee, false, undo, err);
}

int kilt_ecs_add_caps(const struct kilt_ecs_engine *e, json_t *c, const json_t *caps, json_t *undo,
		      struct kilt_error *err)
{
	return edit_field(e, c, e->n->linux_parameters, edit_linux, caps, true, undo, err);
}

int kilt_ecs_append_unique(const struct kilt_ecs_engine *e, json_t *c, const char *key,
			   const json_t *entry, json_t *undo, struct kilt_error *err)
{
	return edit_field(e, c, key, edit_append_unique, entry, true, undo, err);
}

int kilt_ecs_merge_labels(const struct kilt_ecs_engine *e, json_t *c, const json_t *labels,
			  struct kilt_error *err)
{
	json_t *nl =
		edit_value(e, json_object_get(c, e->n->docker_labels), edit_labels, labels, 0, err);
	if (!nl)
		return kilt_error_prefix(err, "%s", e->n->docker_labels);
	kilt_journal_set(e->journal, c, e->n->docker_labels, nl);
	return 0;
}
