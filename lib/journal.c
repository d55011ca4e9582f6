/* SPDX-License-Identifier: Apache-2.0 */
/* The undo journal: records an engine's changes to a document so they can be undone exactly or
 * handed out as an RFC 6902 JSON Patch (journal.h). */
#include <stdalign.h>
#include <stdint.h>

#include "journal.h"
#include "json-write.h"

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
	size_t n = strlen(key);
	/* a key already there is replaced where the look-up found it (one look-up, not two) */
	void *it = json_object_iter_at(target, key);
	je->old = it ? json_incref(json_object_iter_value(it)) : NULL;
	je->size = j->keys.len;
	if (!kilt_kbuf_add_in_room(&j->keys, key, n + 1) && kbuf_add(&j->keys, key, n + 1) < 0)
		abort(); /* the buffer's maximum is SIZE_MAX / 2 */
	if (it && target != value)
		json_object_iter_set_new(target, it, value);
	else /* keys are the engines' own or those of the document's members: UTF-8 already */
		json_object_setn_new_nocheck(target, key, n, value);
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

/* A node the journal changed, with what the patch needs of its state before the first change. */
struct changed {
	const json_t *node; /* borrowed */
	json_t *before; /* owned: a shallow copy of the node as it was, made when first needed */
	size_t first, n; /* its entries in the patcher's refs: newest first */
	bool seen; /* its operations were emitted */
	/* an object only set keys (KILT_J_SET), an array only had elements appended
	 * (KILT_J_APPEND): the patch reads the state before from the entries themselves */
	bool sets_only, appends_only;
};

struct entry_ref {
	const json_t *node;
	size_t index;
};

/* A node the walk looks up: changed (an index into the changed nodes) or declared. */
struct slot {
	const json_t *node; /* NULL: the slot is empty */
	size_t changed; /* index + 1 into the changed nodes, 0 when only declared */
};

struct patcher {
	const struct kilt_journal *j;
	struct changed *v; /* owned, sorted by node */
	size_t n;
	struct entry_ref *refs; /* owned: every entry, by node, newest first */
	struct slot *table; /* owned: the changed and declared nodes by address */
	size_t mask;
	size_t unseen; /* changed nodes not seen yet */
	json_t *ops; /* owned; NULL when the operations are written as text to `out` */
	json_t *op_names[3]; /* owned: "add", "replace", "remove" (with `ops`) */
	struct kilt_json_out *out; /* borrowed: where the operations are written as text, or NULL */
	size_t n_ops;
	int failed; /* the writer's first error (a value that cannot be written as JSON) */
	struct kbuf path; /* the current node's JSON Pointer */
	/* where the first of its segments starts that has a byte the JSON writer escapes or
	 * checks ('"', '\\', a control character, a byte of a multibyte character); SIZE_MAX
	 * when none has: the path is then written as it is */
	size_t path_looked_at;
	bool pruned; /* walking only into changed and declared nodes */
	json_t *covered; /* owned array: values that went whole into an operation or left the document
			  * (changes inside them need no operation of their own) */
	size_t walked;
	bool share; /* values are the document's nodes, not copies */
};

enum { OP_ADD, OP_REPLACE, OP_REMOVE };

/* An array's elements are flagged in a buffer on the stack up to this many (most arrays). */
#define FEW_ELEMENTS 128

static size_t node_hash(const json_t *node)
{
	uint64_t x = (uint64_t)(uintptr_t)node;
	return (size_t)((x >> 4) * 0x9e3779b97f4a7c15ull >> 17);
}

static struct slot *table_slot(const struct patcher *p, const json_t *node)
{
	for (size_t h = node_hash(node) & p->mask;; h = (h + 1) & p->mask)
		if (p->table[h].node == node || !p->table[h].node)
			return &p->table[h];
}

static struct changed *find_changed(const struct patcher *p, const json_t *node)
{
	const struct slot *s = table_slot(p, node);
	return s->node && s->changed ? &p->v[s->changed - 1] : NULL;
}

static void mark_seen(struct patcher *p, struct changed *c)
{
	if (!c->seen) {
		c->seen = true;
		p->unseen--;
	}
}

/* The changed node `c` as it was before the run: a shallow copy of it now with its own changes
 * undone, newest first. */
static const json_t *before_of(struct patcher *p, struct changed *c)
{
	if (!c->before) {
		c->before = json_copy((json_t *)(uintptr_t)c->node);
		for (size_t i = c->first; i < c->first + c->n; i++)
			undo_entry(p->j, &p->j->v[p->refs[i].index], c->before);
	}
	return c->before;
}

/* Whether the walk goes into `node`: an object or array that changed or leads to a change (every
 * one of them when the walk is not pruned). */
static bool worth_entering(const struct patcher *p, const json_t *node)
{
	if (!json_is_object(node) && !json_is_array(node))
		return false;
	if (!p->pruned)
		return true;
	return table_slot(p, node)->node != NULL;
}

/* Where n more bytes of the path go (and its NUL): a path is pushed for every member the walk
 * enters, written here without a call per piece. */
static char *path_room(struct kbuf *path, size_t n)
{
	if (path->cap - path->len <= n && kbuf_reserve(path, n) < 0)
		abort(); /* the path's maximum is SIZE_MAX / 2 */
	return path->data + path->len;
}

/* A high bit in the bytes of w that need a look in path_push (at least the first of them; none
 * when all 8 are plain ASCII other than '~', '/', '"' and '\\'): (x - ONES) has one exactly
 * when some byte of x is 0 (w without a high bit), (w - ONES * 0x20) when some byte is below
 * 0x20. */
static inline uint64_t segment_look8(uint64_t w)
{
	uint64_t t = w | (w - ONES * 0x20) | ((w ^ (ONES * '~')) - ONES) |
		     ((w ^ (ONES * '/')) - ONES) | ((w ^ (ONES * '"')) - ONES) |
		     ((w ^ (ONES * '\\')) - ONES);
	return t & HIGHS;
}

/* Appends "/" and the RFC 6901 escape of seg[0..n) ('~' as "~0", '/' as "~1") to the path,
 * noting whether the segment has a byte the JSON writer escapes or checks. */
static void path_push(struct patcher *p, const char *seg, size_t n)
{
	struct kbuf *path = &p->path;
	char *d = path_room(path, 2 * n + 1);
	*d++ = '/';
	size_t i = 0;
	/* eight bytes at a time while none of them needs a look (most keys) */
	for (; n - i >= 8; i += 8) {
		uint64_t w;
		memcpy(&w, seg + i, 8);
		if (segment_look8(w))
			break;
		memcpy(d, &w, 8);
		d += 8;
	}
	bool plain = true;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)seg[i];
		if (c == '~' || c == '/') {
			*d++ = '~';
			*d++ = c == '~' ? '0' : '1';
		} else {
			plain = plain && c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
			*d++ = (char)c;
		}
	}
	*d = '\0';
	if (!plain && p->path_looked_at == SIZE_MAX)
		p->path_looked_at = path->len;
	path->len = (size_t)(d - path->data);
}

/* Takes the path back to its first `len` bytes. */
static void path_pop(struct patcher *p, size_t len)
{
	p->path.len = len;
	if (p->path_looked_at >= len)
		p->path_looked_at = SIZE_MAX;
}

static void path_push_index(struct kbuf *path, size_t i)
{
	char buf[KILT_DIGITS_MAX + 1];
	char *s = kilt_digits(buf + sizeof(buf), i);
	*--s = '/';
	size_t n = (size_t)(buf + sizeof(buf) - s);
	memcpy(path_room(path, n), s, n);
	path->len += n;
	path->data[path->len] = '\0';
}

/* The operation as kilt_json_dumps writes the object add_op makes (JSON_COMPACT): "op", "path"
 * and "value" in that order, the value by the same writer. The object's "}" is written with
 * the next operation's head (or at the end). */
static void write_op(struct patcher *p, int op, const json_t *value)
{
	static const char *const heads[] = {
		[OP_ADD] = "},{\"op\":\"add\",\"path\":\"",
		[OP_REPLACE] = "},{\"op\":\"replace\",\"path\":\"",
		[OP_REMOVE] = "},{\"op\":\"remove\",\"path\":\"",
	};
	static const size_t head_len[] = { [OP_ADD] = 22, [OP_REPLACE] = 26, [OP_REMOVE] = 25 };
	struct kilt_json_out *o = p->out;
	if (p->failed)
		return;
	/* the first operation without the "}," */
	size_t skip = p->n_ops == 1 ? 2 : 0;
	const char *path = p->path.data ? p->path.data : "";
	int r;
	if (p->path_looked_at == SIZE_MAX) {
		/* nothing in the path to escape or check: its bytes between the quotes */
		r = kilt_json_out_raw(o, heads[op] + skip, head_len[op] - skip);
		if (r == 0)
			r = kilt_json_out_raw(o, path, p->path.len);
		if (r == 0)
			r = value ? kilt_json_out_raw(o, "\",\"value\":", 10)
				  : kilt_json_out_raw(o, "\"", 1);
	} else {
		r = kilt_json_out_raw(o, heads[op] + skip, head_len[op] - skip - 1);
		if (r == 0)
			r = kilt_json_out_string(o, path, p->path.len, 0);
		if (r == 0 && value)
			r = kilt_json_out_raw(o, ",\"value\":", 9);
	}
	if (r == 0 && value)
		r = kilt_json_out_value(o, value, JSON_COMPACT | JSON_ENCODE_ANY, 0);
	if (r < 0)
		p->failed = r;
}

static void add_op(struct patcher *p, int op, const json_t *value)
{
	p->n_ops++;
	if (p->out) {
		write_op(p, op, value);
		return;
	}
	json_t *o = json_object();
	json_object_set_new_nocheck(o, "op", json_incref(p->op_names[op]));
	/* keys of jansson objects (valid UTF-8, cut at a NUL by path_push) and digits */
	json_object_set_new_nocheck(
		o, "path", json_stringn_nocheck(p->path.data ? p->path.data : "", p->path.len));
	if (value)
		json_object_set_new_nocheck(o, "value",
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
static bool same_as_before(struct patcher *p, const json_t *old, const json_t *now)
{
	struct changed *c = find_changed(p, old);
	const json_t *o = c ? before_of(p, c) : old;
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

/* The keys whose whole new value went into an operation (not to be walked into): the key
 * pointers of the object's own members. */
struct done_keys {
	const char **v; /* `few`, or owned */
	size_t n, cap;
	const char *few[8]; /* most objects' keys done */
};

static void done_init(struct done_keys *d)
{
	d->v = d->few;
	d->n = 0;
	d->cap = ARRAY_SIZE(d->few);
}

static void done_add(struct done_keys *d, const char *key)
{
	if (d->n == d->cap) {
		d->cap *= 2;
		if (d->v == d->few) {
			d->v = xmalloc(d->cap * sizeof(*d->v));
			memcpy(d->v, d->few, sizeof(d->few));
		} else {
			d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
		}
	}
	d->v[d->n++] = key;
}

static void done_free(struct done_keys *d)
{
	if (d->v != d->few)
		free(d->v);
}

static bool done_has(const struct done_keys *d, const char *key)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i] == key)
			return true;
	return false;
}

/* The operation for key `k` of an object, now `v`, before `old` (NULL: absent). */
static void key_op(struct patcher *p, const char *k, size_t klen, const json_t *v,
		   const json_t *old, struct done_keys *done)
{
	size_t len = p->path.len;
	if (old == v)
		return;
	cover(p, old);
	if (old && same_as_before(p, old, v))
		return;
	path_push(p, k, klen);
	add_op(p, old ? OP_REPLACE : OP_ADD, v);
	cover(p, v);
	path_pop(p, len);
	done_add(done, k);
}

/* Operations for an object whose keys changed. */
static void object_ops(struct patcher *p, struct changed *c, const json_t *now,
		       struct done_keys *done)
{
	size_t len = p->path.len;
	const char *k;
	json_t *v;
	if (c->sets_only) {
		/* no key went; each key set has its value from before the first set of it */
		const struct kilt_journal *j = p->j;
		json_t *o = (json_t *)(uintptr_t)now;
		for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
			k = json_object_iter_key(it);
			const struct kilt_journal_entry *oldest = NULL;
			for (size_t i = c->first; i < c->first + c->n; i++) {
				const struct kilt_journal_entry *je = &j->v[p->refs[i].index];
				const char *set = j->keys.data + je->size;
				if (set[0] == k[0] && strcmp(set, k) == 0)
					oldest = je;
			}
			if (oldest)
				key_op(p, k, json_object_iter_key_len(it),
				       json_object_iter_value(it), oldest->old, done);
		}
		return;
	}
	const json_t *before = before_of(p, c);
	json_object_foreach ((json_t *)(uintptr_t)before, k, v) {
		if (json_object_get(now, k))
			continue;
		path_push(p, k, strlen(k));
		add_op(p, OP_REMOVE, NULL);
		cover(p, v);
		path_pop(p, len);
	}
	json_object_foreach ((json_t *)(uintptr_t)now, k, v) {
		key_op(p, k, strlen(k), v, json_object_get(before, k), done);
	}
}

/* Operations for an array whose kept elements are still in their order: removals of the elements
 * that went (highest index first), then additions of the new ones at their indices (lowest
 * first), so that a patch touches only the elements that changed (an element added before
 * others is an `add` at its index, not a new array). Flags in `added` (all false, as many as
 * `now` has elements) the elements of `now` added whole (not to be walked into) and returns
 * true, or returns false when the elements were reordered and the whole array went into one
 * operation. */
static bool array_ops(struct patcher *p, struct changed *c, const json_t *now, bool *added)
{
	size_t nn = json_array_size(now);
	size_t len = p->path.len;
	/* an array that only grew was its first elements before (the oldest entry's size) */
	size_t nb = c->appends_only ? p->j->v[p->refs[c->first + c->n - 1].index].size : 0;
	if (c->appends_only && nb <= nn) {
		/* its first elements are the ones it had, kept in place (what the search below
		 * finds), and the others new unless one of them is also an earlier element */
		bool ordered = true;
		for (size_t t = nb; t < nn && ordered; t++) {
			const json_t *el = json_array_get(now, t);
			/* a node held once (this array's own reference) is no other element */
			for (size_t k = 0; k < nb && ordered && el->refcount != 1; k++)
				ordered = json_array_get(now, k) != el;
			added[t] = true;
		}
		if (!ordered) {
			add_op(p, OP_REPLACE, now);
			cover(p, now);
			cover(p, before_of(p, c));
			return false;
		}
		for (size_t t = nb; t < nn; t++) {
			path_push_index(&p->path, t);
			add_op(p, OP_ADD, json_array_get(now, t));
			cover(p, json_array_get(now, t));
			path_pop(p, len);
		}
		return true;
	}
	const json_t *before = before_of(p, c);
	nb = json_array_size(before);
	bool few_kept[FEW_ELEMENTS];
	bool *kept = nb < FEW_ELEMENTS ? few_kept : xmalloc(nb + 1);
	memset(kept, 0, nb + 1);
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
	if (!ordered) {
		if (kept != few_kept)
			free(kept);
		add_op(p, OP_REPLACE, now);
		cover(p, now);
		cover(p, before);
		return false;
	}
	for (size_t k = nb; k-- > 0;) {
		if (kept[k])
			continue;
		path_push_index(&p->path, k);
		add_op(p, OP_REMOVE, NULL);
		cover(p, json_array_get(before, k));
		path_pop(p, len);
	}
	for (size_t t = 0; t < nn; t++) {
		if (!added[t])
			continue;
		path_push_index(&p->path, t);
		add_op(p, OP_ADD, json_array_get(now, t));
		cover(p, json_array_get(now, t));
		path_pop(p, len);
	}
	if (kept != few_kept)
		free(kept);
	return true;
}

static void walk(struct patcher *p, const json_t *node)
{
	p->walked++;
	struct changed *c = find_changed(p, node);
	if (c) {
		if (c->seen)
			return;
		mark_seen(p, c);
	}
	size_t len = p->path.len;
	if (json_is_object(node)) {
		struct done_keys done;
		done_init(&done);
		if (c)
			object_ops(p, c, node, &done);
		json_t *o = (json_t *)(uintptr_t)node;
		for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
			const json_t *v = json_object_iter_value(it);
			if (!worth_entering(p, v))
				continue;
			const char *k = json_object_iter_key(it);
			if (done_has(&done, k))
				continue;
			path_push(p, k, json_object_iter_key_len(it));
			walk(p, v);
			path_pop(p, len);
		}
		done_free(&done);
		return;
	}
	size_t n = json_array_size(node);
	bool few_added[FEW_ELEMENTS];
	bool *added = NULL;
	if (c) {
		added = n < FEW_ELEMENTS ? few_added : xmalloc(n + 1);
		memset(added, 0, n + 1);
		if (!array_ops(p, c, node, added)) {
			if (added != few_added)
				free(added);
			return;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(node, i);
		if ((added && added[i]) || !worth_entering(p, v))
			continue;
		path_push_index(&p->path, i);
		walk(p, v);
		path_pop(p, len);
	}
	if (added != few_added)
		free(added);
}

/* Marks the changed nodes inside `v` (a covered value) as seen. */
static void mark_inside(struct patcher *p, const json_t *v)
{
	struct changed *c = find_changed(p, v);
	if (c)
		mark_seen(p, c);
	if (json_is_object(v)) {
		const char *k;
		json_t *el;
		json_object_foreach ((json_t *)(uintptr_t)v, k, el) {
			if (!p->unseen)
				return;
			if (json_is_object(el) || json_is_array(el))
				mark_inside(p, el);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *el;
		json_array_foreach (v, i, el) {
			if (!p->unseen)
				return;
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
	size_t i;
	json_t *v;
	json_array_foreach (p->covered, i, v) {
		if (!p->unseen)
			break;
		mark_inside(p, v);
	}
	return p->unseen == 0;
}

/* By node, then newest first. */
static int by_node_newest(const void *a, const void *b)
{
	const struct entry_ref *x = a, *y = b;
	if (x->node != y->node)
		return (uintptr_t)x->node < (uintptr_t)y->node ? -1 : 1;
	return x->index < y->index ? 1 : x->index > y->index ? -1 : 0;
}

/* The refs in by_node_newest's order: an insertion sort for the few changes of a pod (no call
 * per comparison), qsort for many. */
static void sort_refs(struct entry_ref *refs, size_t n)
{
	if (n > 64) {
		qsort(refs, n, sizeof(*refs), by_node_newest);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct entry_ref r = refs[i];
		size_t k = i;
		for (; k > 0 && by_node_newest(&refs[k - 1], &r) > 0; k--)
			refs[k] = refs[k - 1];
		refs[k] = r;
	}
}

/* Puts `node` in the look-up table (declared, or changed: index + 1). */
static void table_add(struct patcher *p, const json_t *node, size_t changed)
{
	struct slot *s = table_slot(p, node);
	s->node = node;
	if (changed)
		s->changed = changed;
}

/* Forgets the operations so far (the pruned walk gives way to the whole one). */
static void clear_ops(struct patcher *p, size_t text_start)
{
	p->n_ops = 0;
	p->failed = 0;
	if (p->ops) {
		json_array_clear(p->ops);
	} else {
		p->out->text.len = text_start;
		p->out->text.data[text_start] = '\0';
	}
}

/* Finds the operations of the journal's changes to `root`: into p->ops, or written to p->out. */
static void run(struct patcher *p, const json_t *root)
{
	const struct kilt_journal *j = p->j;
	size_t text_start = p->out ? p->out->text.len : 0;
	/* the changed nodes, the entries by node and the look-up table in one allocation, the
	 * table for as many nodes as there are entries (at most that many changed) */
	size_t cap = 16;
	while (cap < 2 * (j->n + j->n_via))
		cap *= 2;
	size_t v_size = (j->n + 1) * sizeof(*p->v), refs_size = (j->n + 1) * sizeof(*p->refs);
	size_t size = v_size + refs_size + cap * sizeof(*p->table);
	/* on the stack for the few changes of a pod; only the table needs zeros (the rest is
	 * written before it is read) */
	alignas(max_align_t) unsigned char few[4096];
	unsigned char *block = size <= sizeof(few) ? few : xmalloc(size);
	memset(block + v_size + refs_size, 0, cap * sizeof(*p->table));
	p->v = (struct changed *)(void *)block;
	p->refs = (struct entry_ref *)(void *)(block + v_size);
	p->table = (struct slot *)(void *)(block + v_size + refs_size);
	p->mask = cap - 1;
	p->share = j->share_values;
	kbuf_init(&p->path, SIZE_MAX / 2);
	p->path_looked_at = SIZE_MAX;
	path_room(&p->path, 256); /* most paths: no growing */
	/* Each changed node once, with its entries newest first. */
	for (size_t i = 0; i < j->n; i++)
		p->refs[i] = (struct entry_ref){ .node = j->v[i].target, .index = i };
	sort_refs(p->refs, j->n);
	for (size_t i = 0; i < j->n; i++) {
		const struct kilt_journal_entry *je = &j->v[p->refs[i].index];
		if (i == 0 || p->refs[i - 1].node != p->refs[i].node)
			p->v[p->n++] =
				(struct changed){ .node = je->target,
						  .first = i,
						  .sets_only = json_is_object(je->target),
						  .appends_only = json_is_array(je->target) };
		struct changed *c = &p->v[p->n - 1];
		c->n++;
		c->sets_only = c->sets_only && je->kind == KILT_J_SET;
		c->appends_only = c->appends_only && je->kind == KILT_J_APPEND;
	}
	p->unseen = p->n;
	for (size_t i = 0; i < p->n; i++)
		table_add(p, p->v[i].node, i + 1);
	if (p->n && j->n_via && (json_is_object(root) || json_is_array(root))) {
		for (size_t i = 0; i < j->n_via; i++)
			table_add(p, j->via[i], 0);
		p->pruned = true;
		p->covered = json_array();
		walk(p, root);
		if (!pruned_walk_complete(p)) {
			/* the whole walk again, from scratch */
			clear_ops(p, text_start);
			for (size_t i = 0; i < p->n; i++)
				p->v[i].seen = false;
			p->unseen = p->n;
			p->pruned = false;
			path_pop(p, 0);
		}
	}
	if (!p->pruned && (json_is_object(root) || json_is_array(root)))
		walk(p, root);
	for (size_t i = 0; i < p->n; i++)
		json_decref(p->v[i].before);
	if (block != few)
		free(block);
	json_decref(p->covered);
	kbuf_done(&p->path);
}

json_t *kilt_journal_patch(struct kilt_journal *j, const json_t *root)
{
	struct patcher p = { .j = j,
			     .ops = json_array(),
			     .op_names = { json_string_nocheck("add"),
					   json_string_nocheck("replace"),
					   json_string_nocheck("remove") } };
	run(&p, root);
	j->walked = p.walked;
	for (size_t i = 0; i < ARRAY_SIZE(p.op_names); i++)
		json_decref(p.op_names[i]);
	return p.ops;
}

/* Room made at once for a patch's text: a pod's injection fits. */
#define PATCH_ROOM ((size_t)4 << 10)

char *kilt_journal_patch_text(struct kilt_journal *j, const json_t *root, size_t *ret_len,
			      size_t *ret_n_ops)
{
	struct kilt_json_out out;
	kilt_json_out_init(&out, NULL, NULL);
	kilt_json_out_reserve(&out, PATCH_ROOM);
	kilt_json_out_raw(&out, "[", 1);
	struct patcher p = { .j = j, .out = &out };
	run(&p, root);
	j->walked = p.walked;
	int r = p.failed;
	if (r == 0)
		r = p.n_ops ? kilt_json_out_raw(&out, "}]", 2) : kilt_json_out_raw(&out, "]", 1);
	if (r < 0) {
		kilt_json_out_done(&out);
		return NULL;
	}
	*ret_len = out.text.len;
	*ret_n_ops = p.n_ops;
	return kbuf_steal(&out.text);
}
