/* SPDX-License-Identifier: Apache-2.0 */
/* The undo journal (lib/journal.c): every change an engine makes to the nodes of a document, in
 * order, so that a failed run (or one container that fails under fail-open) is undone exactly,
 * same values and same key order, and so that the changes can be handed out as an RFC 6902 JSON
 * Patch (what a Kubernetes admission webhook answers with). Replaced values are kept (moved, not
 * copied) until the journal lets go of them. Internal to libkilt. */
#ifndef KILT_JOURNAL_H
#define KILT_JOURNAL_H

#include "internal.h"

enum kilt_journal_kind {
	KILT_J_SET, /* target[key] was set: `old` is the value it replaced, NULL when the key was new */
	KILT_J_OBJECT, /* a key of target is about to go: `old` is a shallow copy of the object */
	KILT_J_ARRAY, /* elements of the array target went: `old` is a shallow copy from before */
	KILT_J_APPEND, /* elements were appended to the array target: it had `size` before */
};

struct kilt_journal_entry {
	json_t *target; /* owned reference */
	json_t *old; /* owned, or NULL */
	size_t size; /* KILT_J_SET: offset of the key in keys; KILT_J_APPEND: the former size */
	enum kilt_journal_kind kind;
};

struct kilt_journal {
	struct kilt_journal_entry *v; /* owned */
	size_t n, cap;
	struct kbuf keys; /* the keys of KILT_J_SET entries, NUL-separated */
	const json_t *
		*via; /* owned array of borrowed nodes (compared, never read): kilt_journal_via */
	size_t n_via, cap_via;
	size_t walked; /* objects and arrays the last kilt_journal_patch walked into (tests) */
	/* kilt_journal_patch puts the document's own nodes in its operations' values instead of
	 * deep copies: for a caller that changes neither the document nor the patch afterwards */
	bool share_values;
};

void kilt_journal_init(struct kilt_journal *j);
/* Releases everything (the changes stay in the document). */
void kilt_journal_done(struct kilt_journal *j);

/* target[key] = value (stolen), recorded. */
void kilt_journal_set(struct kilt_journal *j, json_t *target, const char *key, json_t *value);
/* Deletes target[key] when present, recorded (with the key order, which a later set could not
 * restore). */
void kilt_journal_del(struct kilt_journal *j, json_t *target, const char *key);
/* Records that elements are about to be appended to the array `list`. */
void kilt_journal_will_append(struct kilt_journal *j, json_t *list);
/* Records that elements of the array `list` went or were inserted: `before` (stolen) is a
 * shallow copy of it from before. */
void kilt_journal_removed(struct kilt_journal *j, json_t *list, json_t *before);

/* Says that `node` (an object or array of the document) holds, at some depth, a node the journal
 * changes or will change: kilt_journal_patch walks into the members it was told of (and the
 * changed nodes) instead of the whole document. An engine declares each node on the way from the
 * document's root to each change; when the walk finds a change it could not reach that way (a
 * change under a node nobody declared), it walks the whole document instead, so that a missing
 * declaration costs time, never a wrong patch. Declaring a node that holds no change costs only
 * the walk into it. */
void kilt_journal_via(struct kilt_journal *j, const json_t *node);

/* A point to roll back to. */
static inline size_t kilt_journal_mark(const struct kilt_journal *j)
{
	return j->n;
}
/* Undoes every change recorded after `mark`, newest first. */
void kilt_journal_rollback(struct kilt_journal *j, size_t mark);
/* Keeps the changes so far and lets go of what they replaced (they can no longer be undone or
 * appear in a patch), and of the nodes declared with kilt_journal_via. */
void kilt_journal_forget(struct kilt_journal *j);

/* The changes recorded (since the last forget) as an RFC 6902 JSON Patch against the document
 * `root` as it was before them: an owned array of {"op": "add"|"replace"|"remove", "path", "value"}
 * operations (paths escaped per RFC 6901, values deep copies unless share_values), in document
 * order. Applying it to
 * the original document gives `root`. Changed objects give one operation per changed key; an
 * array whose remaining elements kept their order gives removals and additions at indices
 * (anywhere in it, not only at its end); an array whose elements were reordered is replaced
 * whole. Changes to nodes no longer reachable from `root` are
 * covered by the operation that replaced or removed them. */
json_t *kilt_journal_patch(struct kilt_journal *j, const json_t *root);
/* The same patch as JSON text, the bytes kilt_json_dumps(kilt_journal_patch(j, root),
 * JSON_COMPACT) gives, written without building the operations (share_values makes no
 * difference: nothing is copied). Returns an owned NUL-terminated text with its length and the
 * number of operations, or NULL when a value cannot be written as JSON (a string that is not
 * UTF-8). */
char *kilt_journal_patch_text(struct kilt_journal *j, const json_t *root, size_t *ret_len,
			      size_t *ret_n_ops);

#endif
