/* SPDX-License-Identifier: Apache-2.0 */
/* The undo journal: records an engine's changes to a document so they can be undone exactly or
 * handed out as an RFC 6902 JSON Patch (journal.h). */
#include <stdint.h>

#include "journal.h"

static struct kilt_journal_entry *push(struct kilt_journal *j, json_t *target,
				       enum kilt_journal_kind kind)
{
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 64;
		j->v = xrealloc(j->v, j->cap * sizeof(*j->v));
	}
	struct kilt_journal_entry *je = &j->v[j->n++];
	*je = (struct kilt_journal_entry){ .target = json_incref(target), .kind = kind };
	return je;
}

void kilt_journal_init(struct kilt_journal *j)
{
	*j = (struct kilt_journal){ 0 };
	kbuf_init(&j->keys, SIZE_MAX / 2);
}

void kilt_journal_set(struct kilt_journal *j, json_t *target, const char *key, json_t *value)
{
	struct kilt_journal_entry *je = push(j, target, KILT_J_SET);
	je->old = json_incref(json_object_get(target, key));
	je->size = j->keys.len;
	if (kbuf_add(&j->keys, key, strlen(key) + 1) < 0)
		abort(); /* the buffer's maximum is SIZE_MAX / 2 */
	json_object_set_new(target, key, value);
}

void kilt_journal_del(struct kilt_journal *j, json_t *target, const char *key)
{
	if (!json_object_get(target, key))
		return;
	push(j, target, KILT_J_OBJECT)->old = json_copy(target);
	json_object_del(target, key);
}

void kilt_journal_will_append(struct kilt_journal *j, json_t *list)
{
	push(j, list, KILT_J_APPEND)->size = json_array_size(list);
}

void kilt_journal_removed(struct kilt_journal *j, json_t *list, json_t *before)
{
	push(j, list, KILT_J_ARRAY)->old = before;
}

/* Undoes one entry on `node` (the entry's target, or a shallow copy standing for it). */
static void undo_entry(const struct kilt_journal *j, const struct kilt_journal_entry *je,
		       json_t *node)
{
	switch (je->kind) {
	case KILT_J_SET: {
		const char *key = j->keys.data + je->size;
		if (je->old)
			json_object_set(node, key, je->old);
		else
			json_object_del(node, key);
		break;
	}
	case KILT_J_OBJECT:
		json_object_clear(node);
		json_object_update(node, je->old);
		break;
	case KILT_J_ARRAY:
		json_array_clear(node);
		json_array_extend(node, je->old);
		break;
	case KILT_J_APPEND:
		while (json_array_size(node) > je->size)
			json_array_remove(node, json_array_size(node) - 1);
		break;
	}
}

void kilt_journal_rollback(struct kilt_journal *j, size_t mark)
{
	while (j->n > mark) {
		struct kilt_journal_entry *je = &j->v[--j->n];
		undo_entry(j, je, je->target);
		if (je->kind == KILT_J_SET)
			j->keys.len = je->size;
		json_decref(je->old);
		json_decref(je->target);
	}
}

void kilt_journal_forget(struct kilt_journal *j)
{
	for (size_t i = 0; i < j->n; i++) {
		json_decref(j->v[i].old);
		json_decref(j->v[i].target);
	}
	j->n = 0;
	j->keys.len = 0;
	j->n_via = 0;
}

void kilt_journal_via(struct kilt_journal *j, const json_t *node)
{
	if (!json_is_object(node) && !json_is_array(node))
		return;
	if (j->n_via && j->via[j->n_via - 1] == node)
		return;
	if (j->n_via == j->cap_via) {
		j->cap_via = j->cap_via ? j->cap_via * 2 : 32;
		j->via = xrealloc(j->via, j->cap_via * sizeof(*j->via));
	}
	j->via[j->n_via++] = node;
}

void kilt_journal_done(struct kilt_journal *j)
{
	kilt_journal_forget(j);
	free(j->v);
	free(j->via);
	kbuf_done(&j->keys);
	*j = (struct kilt_journal){ 0 };
}

/* ---- JSON Patch -------------------------------------------------------------------------------- */

/* A node the journal changed and a shallow copy of it as it was before. */
struct changed {
	const json_t *node; /* borrowed */
	json_t *before; /* owned */
	bool seen; /* its operations were emitted */
};

struct patcher {
	struct changed *v; /* owned, sorted by node */
	size_t n;
	json_t *ops; /* owned */
	struct kbuf path; /* the current node's JSON Pointer */
	const json_t **via; /* owned, sorted: the nodes declared on the way to changes */
	size_t n_via;
	bool pruned; /* walking only into changed and declared nodes */
	json_t *covered; /* owned array: values that went whole into an operation or left the document
			  * (changes inside them need no operation of their own) */
	size_t walked;
	bool share; /* values are the document's nodes, not copies */
};

static int by_node(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct changed *)a)->node;
	uintptr_t y = (uintptr_t)((const struct changed *)b)->node;
	return x < y ? -1 : x > y;
}

static struct changed *find_changed(const struct patcher *p, const json_t *node)
{
	struct changed key = { .node = node };
	return bsearch(&key, p->v, p->n, sizeof(*p->v), by_node);
}

static int by_address(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (const json_t *const *)a;
	uintptr_t y = (uintptr_t) * (const json_t *const *)b;
	return x < y ? -1 : x > y;
}

/* Whether the walk goes into `node`: an object or array that changed or leads to a change (every
 * one of them when the walk is not pruned). */
static bool worth_entering(const struct patcher *p, const json_t *node)
{
	if (!json_is_object(node) && !json_is_array(node))
		return false;
	if (!p->pruned)
		return true;
	return bsearch(&node, p->via, p->n_via, sizeof(*p->via), by_address) ||
	       find_changed(p, node);
}

/* Appends "/" and the RFC 6901 escape of `seg` to the path. */
static void path_push(struct kbuf *path, const char *seg)
{
	kbuf_addc(path, '/');
	for (const char *s = seg; *s; s++) {
		if (*s == '~')
			kbuf_adds(path, "~0");
		else if (*s == '/')
			kbuf_adds(path, "~1");
		else
			kbuf_addc(path, *s);
	}
}

static void path_push_index(struct kbuf *path, size_t i)
{
	kbuf_printf(path, "/%zu", i);
}

static void add_op(struct patcher *p, const char *op, const json_t *value)
{
	json_t *o = json_object();
	json_object_set_new(o, "op", json_string(op));
	json_object_set_new(o, "path", json_stringn(p->path.data ? p->path.data : "", p->path.len));
	if (value)
		json_object_set_new(o, "value",
				    p->share ? json_incref((json_t *)(uintptr_t)value)
					     : json_deep_copy(value));
	json_array_append_new(p->ops, o);
}

static void walk(struct patcher *p, const json_t *node);

/* Notes a value that went whole into an operation, or left the document (removed or replaced),
 * for the pruned walk's final check. */
static void cover(struct patcher *p, const json_t *v)
{
	if (p->pruned && (json_is_object(v) || json_is_array(v)))
		json_array_append(p->covered, (json_t *)(uintptr_t)v);
}

/* True when `old` as it was before the run (its changed nodes seen through their copies from
 * before) equals `now`: a value replaced by an equal one needs no operation, but a value the run
 * changed in place and then replaced by one equal to its new content does. */
static bool same_as_before(const struct patcher *p, const json_t *old, const json_t *now)
{
	const struct changed *c = find_changed(p, old);
	const json_t *o = c ? c->before : old;
	if (json_typeof(o) != json_typeof(now))
		return false;
	if (json_is_object(o)) {
		if (json_object_size(o) != json_object_size(now))
			return false;
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)(uintptr_t)o, k, v) {
			const json_t *n = json_object_get(now, k);
			if (!n || !same_as_before(p, v, n))
				return false;
		}
		return true;
	}
	if (json_is_array(o)) {
		size_t n = json_array_size(o);
		if (n != json_array_size(now))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!same_as_before(p, json_array_get(o, i), json_array_get(now, i)))
				return false;
		return true;
	}
	return json_equal(o, now);
}

/* Operations for an object whose keys changed; `done` receives the keys whose whole new value
 * went into an operation (not to be walked into). */
static void object_ops(struct patcher *p, const json_t *before, const json_t *now, json_t *done)
{
	size_t len = p->path.len;
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)before, k, v) {
		if (json_object_get(now, k))
			continue;
		path_push(&p->path, k);
		add_op(p, "remove", NULL);
		cover(p, v);
		p->path.len = len;
	}
	json_object_foreach ((json_t *)(uintptr_t)now, k, v) {
		const json_t *old = json_object_get(before, k);
		if (old == v)
			continue;
		cover(p, old);
		if (old && same_as_before(p, old, v))
			continue;
		path_push(&p->path, k);
		add_op(p, old ? "replace" : "add", v);
		cover(p, v);
		p->path.len = len;
		json_object_set_new(done, k, json_true());
	}
}

/* Operations for an array whose kept elements are still in their order: removals of the elements
 * that went (highest index first), then additions of the new ones at their indices (lowest
 * first), so that a patch touches only the elements that changed (an element added before
 * others is an `add` at its index, not a new array). Returns an owned array saying which
 * elements of `now` were added whole (not to be walked into), or NULL when the elements were
 * reordered and the whole array went into one operation. */
static bool *array_ops(struct patcher *p, const json_t *before, const json_t *now)
{
	size_t nb = json_array_size(before), nn = json_array_size(now);
	bool *kept = xcalloc(nb + 1, sizeof(bool));
	bool *added = xcalloc(nn + 1, sizeof(bool));
	bool ordered = true;
	size_t i = 0;
	for (size_t t = 0; t < nn && ordered; t++) {
		const json_t *el = json_array_get(now, t);
		size_t k = i;
		while (k < nb && json_array_get(before, k) != el)
			k++;
		if (k < nb) {
			kept[k] = true;
			i = k + 1;
			continue;
		}
		/* not after the last kept element: new, or moved before it */
		for (k = 0; k < i && ordered; k++)
			ordered = json_array_get(before, k) != el;
		added[t] = true;
	}
	size_t len = p->path.len;
	if (!ordered) {
		free(kept);
		free(added);
		add_op(p, "replace", now);
		cover(p, now);
		cover(p, before);
		return NULL;
	}
	for (size_t k = nb; k-- > 0;) {
		if (kept[k])
			continue;
		path_push_index(&p->path, k);
		add_op(p, "remove", NULL);
		cover(p, json_array_get(before, k));
		p->path.len = len;
	}
	for (size_t t = 0; t < nn; t++) {
		if (!added[t])
			continue;
		path_push_index(&p->path, t);
		add_op(p, "add", json_array_get(now, t));
		cover(p, json_array_get(now, t));
		p->path.len = len;
	}
	free(kept);
	return added;
}

static void walk(struct patcher *p, const json_t *node)
{
	p->walked++;
	struct changed *c = find_changed(p, node);
	_cleanup_json_ json_t *done = NULL;
	_cleanup_free_ bool *added = NULL;
	if (c) {
		if (c->seen)
			return;
		c->seen = true;
		if (json_is_object(node)) {
			done = json_object();
			object_ops(p, c->before, node, done);
		} else {
			added = array_ops(p, c->before, node);
			if (!added)
				return;
		}
	}
	size_t len = p->path.len;
	if (json_is_object(node)) {
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)(uintptr_t)node, k, v) {
			if (!worth_entering(p, v) || (done && json_object_get(done, k)))
				continue;
			path_push(&p->path, k);
			walk(p, v);
			p->path.len = len;
		}
		return;
	}
	size_t n = json_array_size(node);
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(node, i);
		if (!worth_entering(p, v) || (added && added[i]))
			continue;
		path_push_index(&p->path, i);
		walk(p, v);
		p->path.len = len;
	}
}

/* Marks the changed nodes inside `v` (a covered value) as seen. */
static void mark_inside(struct patcher *p, const json_t *v)
{
	struct changed *c = find_changed(p, v);
	if (c)
		c->seen = true;
	if (json_is_object(v)) {
		const char *k;
		json_t *el;
		json_object_foreach ((json_t *)(uintptr_t)v, k, el) {
			if (json_is_object(el) || json_is_array(el))
				mark_inside(p, el);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *el;
		json_array_foreach (v, i, el) {
			if (json_is_object(el) || json_is_array(el))
				mark_inside(p, el);
		}
	}
}

/* Whether the pruned walk accounted for every change a walk of the whole document would: each
 * changed node was walked into, or lies in a value that went whole into an operation or left the
 * document. A change it could not reach otherwise (no declared way to it) makes the whole walk
 * run instead. */
static bool pruned_walk_complete(struct patcher *p)
{
	bool all = true;
	for (size_t i = 0; i < p->n && all; i++)
		all = p->v[i].seen;
	if (all)
		return true;
	size_t i;
	json_t *v;
	json_array_foreach (p->covered, i, v) {
		mark_inside(p, v);
	}
	for (size_t k = 0; k < p->n; k++)
		if (!p->v[k].seen)
			return false;
	return true;
}

struct entry_ref {
	const json_t *node;
	size_t index;
};

/* By node, then newest first. */
static int by_node_newest(const void *a, const void *b)
{
	const struct entry_ref *x = a, *y = b;
	if (x->node != y->node)
		return (uintptr_t)x->node < (uintptr_t)y->node ? -1 : 1;
	return x->index < y->index ? 1 : x->index > y->index ? -1 : 0;
}

json_t *kilt_journal_patch(struct kilt_journal *j, const json_t *root)
{
	struct patcher p = { .v = xcalloc(j->n + 1, sizeof(*p.v)),
			     .ops = json_array(),
			     .share = j->share_values };
	kbuf_init(&p.path, SIZE_MAX / 2);
	/* Each changed node once, with its state before the first change: a shallow copy of it now
	 * with the node's own changes undone, newest first. */
	struct entry_ref *refs = xcalloc(j->n + 1, sizeof(*refs));
	for (size_t i = 0; i < j->n; i++)
		refs[i] = (struct entry_ref){ .node = j->v[i].target, .index = i };
	qsort(refs, j->n, sizeof(*refs), by_node_newest);
	for (size_t i = 0; i < j->n; i++) {
		const struct kilt_journal_entry *je = &j->v[refs[i].index];
		if (i == 0 || refs[i - 1].node != refs[i].node)
			p.v[p.n++] = (struct changed){ .node = je->target,
						       .before = json_copy(je->target) };
		undo_entry(j, je, p.v[p.n - 1].before);
	}
	free(refs);
	if (p.n && j->n_via && (json_is_object(root) || json_is_array(root))) {
		p.via = xmalloc(j->n_via * sizeof(*p.via));
		memcpy(p.via, j->via, j->n_via * sizeof(*p.via));
		qsort(p.via, j->n_via, sizeof(*p.via), by_address);
		p.n_via = j->n_via;
		p.pruned = true;
		p.covered = json_array();
		walk(&p, root);
		if (!pruned_walk_complete(&p)) {
			/* the whole walk again, from scratch */
			json_array_clear(p.ops);
			for (size_t i = 0; i < p.n; i++)
				p.v[i].seen = false;
			p.pruned = false;
			p.path.len = 0;
		}
	}
	if (!p.pruned && (json_is_object(root) || json_is_array(root)))
		walk(&p, root);
	j->walked = p.walked;
	for (size_t i = 0; i < p.n; i++)
		json_decref(p.v[i].before);
	free(p.v);
	free(p.via);
	json_decref(p.covered);
	kbuf_done(&p.path);
	return p.ops;
}
