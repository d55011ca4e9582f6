/* SPDX-License-Identifier: Apache-2.0 */
/* The undo journal (lib/journal.c): rollback gives the document back byte for byte, and the
 * RFC 6902 JSON Patch it emits turns the original into the result: exact operations for each
 * kind of change, RFC 6901 escapes in paths, and a randomized check with an applier written
 * here from the RFC (the Python jsonpatch library checks the same on the ECS engine's real
 * changes: tests/journal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "journal.h"
#include "kilt.h"

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!j)
		fail_msg("bad test JSON: %s", jerr.text);
	return j;
}

static char *dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void assert_json_text(const json_t *j, const char *want)
{
	_cleanup_free_ char *have = dump(j);
	_cleanup_json_ json_t *w = load(want);
	_cleanup_free_ char *wt = dump(w);
	if (strcmp(have, wt) != 0)
		fail_msg("got  %s\nwant %s", have, wt);
}

/* kilt_journal_patch_text gives the bytes jansson's json_dumps gives of kilt_journal_patch's
 * array (JSON_COMPACT), and its number of operations. */
static void assert_text_same(struct kilt_journal *j, const json_t *doc, const json_t *patch)
{
	size_t len = 0, n_ops = 0;
	_cleanup_free_ char *text = kilt_journal_patch_text(j, doc, &len, &n_ops);
	_cleanup_free_ char *want = json_dumps(patch, JSON_COMPACT);
	assert_non_null(text);
	assert_non_null(want);
	if (strcmp(text, want) != 0)
		fail_msg("patch text %s\njansson's %s", text, want);
	assert_int_equal(len, strlen(want));
	assert_int_equal(n_ops, json_array_size(patch));
}

/* ---- an RFC 6902 applier (add, replace, remove), for checking ---------------------------- */

/* Decodes one RFC 6901 segment [p, end) into buf. */
static bool segment(const char *p, const char *end, char *buf, size_t size)
{
	size_t o = 0;
	for (; p < end; p++) {
		char c = *p;
		if (c == '~') {
			if (p + 1 >= end || (p[1] != '0' && p[1] != '1'))
				return false;
			c = p[1] == '0' ? '~' : '/';
			p++;
		}
		if (o + 1 >= size)
			return false;
		buf[o++] = c;
	}
	buf[o] = '\0';
	return true;
}

/* Applies one operation to *doc (which may be replaced for path ""). */
static bool apply_op(json_t **doc, const json_t *op)
{
	const char *kind = json_string_value(json_object_get(op, "op"));
	const char *path = json_string_value(json_object_get(op, "path"));
	json_t *value = json_object_get(op, "value");
	if (!kind || !path)
		return false;
	if (!*path) {
		if (strcmp(kind, "remove") == 0 || !value)
			return false;
		json_decref(*doc);
		*doc = json_deep_copy(value);
		return true;
	}
	if (path[0] != '/')
		return false;
	json_t *parent = *doc;
	const char *p = path + 1;
	char seg[256];
	for (;;) {
		const char *slash = strchr(p, '/');
		const char *end = slash ? slash : p + strlen(p);
		if (!segment(p, end, seg, sizeof(seg)))
			return false;
		if (!slash)
			break;
		parent = json_is_object(parent)	 ? json_object_get(parent, seg)
			 : json_is_array(parent) ? json_array_get(parent, strtoul(seg, NULL, 10))
						 : NULL;
		if (!parent)
			return false;
		p = slash + 1;
	}
	if (json_is_object(parent)) {
		bool has = json_object_get(parent, seg) != NULL;
		if (strcmp(kind, "remove") == 0)
			return has && json_object_del(parent, seg) == 0;
		if (strcmp(kind, "replace") == 0 && !has)
			return false;
		return value && json_object_set_new(parent, seg, json_deep_copy(value)) == 0;
	}
	if (!json_is_array(parent))
		return false;
	size_t n = json_array_size(parent);
	size_t i = strcmp(seg, "-") == 0 ? n : strtoul(seg, NULL, 10);
	if (strcmp(kind, "add") == 0)
		return value && i <= n &&
		       json_array_insert_new(parent, i, json_deep_copy(value)) == 0;
	if (i >= n)
		return false;
	if (strcmp(kind, "remove") == 0)
		return json_array_remove(parent, i) == 0;
	return value && json_array_set_new(parent, i, json_deep_copy(value)) == 0;
}

static json_t *apply_patch(const json_t *original, const json_t *patch)
{
	json_t *doc = json_deep_copy(original);
	size_t i;
	const json_t *op;
	json_array_foreach (patch, i, op) {
		if (!apply_op(&doc, op)) {
			_cleanup_free_ char *t = dump(op);
			fail_msg("operation %zu does not apply: %s", i, t);
		}
	}
	return doc;
}

/* ---- exact operations ------------------------------------------------------------------- */

static void test_journal__object_ops_and_escapes(void **state)
{
	(void)state;
	_cleanup_json_ json_t *doc =
		load("{\"a\": 1, \"b/c\": {\"x~y\": 1, \"keep\": true}, \"list\": [1, 2]}");
	_cleanup_json_ json_t *orig = json_deep_copy(doc);
	struct kilt_journal j;
	kilt_journal_init(&j);
	json_t *bc = json_object_get(doc, "b/c");
	kilt_journal_set(&j, bc, "x~y", json_integer(2));
	kilt_journal_set(&j, bc, "n", json_string("new"));
	kilt_journal_del(&j, doc, "a");
	json_t *list = json_object_get(doc, "list");
	kilt_journal_will_append(&j, list);
	json_array_append_new(list, json_integer(3));
	_cleanup_json_ json_t *patch = kilt_journal_patch(&j, doc);
	assert_text_same(&j, doc, patch);
	assert_json_text(patch, "["
				"{\"op\": \"remove\", \"path\": \"/a\"},"
				"{\"op\": \"replace\", \"path\": \"/b~1c/x~0y\", \"value\": 2},"
				"{\"op\": \"add\", \"path\": \"/b~1c/n\", \"value\": \"new\"},"
				"{\"op\": \"add\", \"path\": \"/list/2\", \"value\": 3}]");
	_cleanup_json_ json_t *applied = apply_patch(orig, patch);
	assert_true(json_equal(applied, doc));

	/* rollback: byte for byte, key order included */
	kilt_journal_rollback(&j, 0);
	_cleanup_free_ char *a = dump(doc), *b = dump(orig);
	assert_string_equal(a, b);
	kilt_journal_done(&j);
}

/* Keys of 1 to 24 bytes with a byte to escape at every position, as the key of a member set and
 * of an object walked through, and a plain key set after them: each path's segments escaped as
 * RFC 6901 says ('~' and '/'), the text as jansson writes the patch (the path is written as it
 * is unless a segment has a byte the JSON writer escapes or checks: '"', '\\', a control
 * character, UTF-8); a key that is not UTF-8 makes no text. */
static void test_journal__path_escapes_at_every_position(void **state)
{
	(void)state;
	static const char *const specials[] = { "~", "/", "\"", "\\", "\x01", "\xc3\xa9", "\xff" };
	for (size_t s = 0; s < ARRAY_SIZE(specials); s++) {
		size_t sl = strlen(specials[s]);
		for (size_t len = 1; len <= 24; len++) {
			for (size_t at = 0; at < len; at++) {
				char key[40], esc[80];
				memset(key, 'k', sizeof(key));
				memcpy(key + at, specials[s], sl);
				size_t kl = len - 1 + sl;
				key[kl] = '\0';
				size_t e = 0;
				for (size_t i = 0; i < kl; i++) {
					if (key[i] == '~' || key[i] == '/') {
						esc[e++] = '~';
						esc[e++] = key[i] == '~' ? '0' : '1';
					} else {
						esc[e++] = key[i];
					}
				}
				esc[e] = '\0';
				_cleanup_json_ json_t *doc = json_object();
				json_t *inner = json_object();
				json_object_setn_new_nocheck(inner, key, kl, json_integer(1));
				json_object_setn_new_nocheck(doc, key, kl, inner);
				json_t *after = json_pack("{si}", "y", 1);
				json_object_set_new(doc, "zz-after", after);
				struct kilt_journal j;
				kilt_journal_init(&j);
				kilt_journal_via(&j, doc);
				kilt_journal_via(&j, inner);
				kilt_journal_via(&j, after);
				kilt_journal_set(&j, inner, key, json_integer(2));
				kilt_journal_set(&j, after, "y", json_integer(3));
				_cleanup_json_ json_t *patch = kilt_journal_patch(&j, doc);
				assert_int_equal(json_array_size(patch), 2);
				char want[256];
				snprintf(want, sizeof(want), "/%s/%s", esc, esc);
				const json_t *path =
					json_object_get(json_array_get(patch, 0), "path");
				assert_int_equal(json_string_length(path), strlen(want));
				assert_memory_equal(json_string_value(path), want, strlen(want));
				assert_string_equal(json_string_value(json_object_get(
							    json_array_get(patch, 1), "path")),
						    "/zz-after/y");
				if (specials[s][0] == '\xff') {
					size_t tl = 0, n_ops = 0;
					assert_null(kilt_journal_patch_text(&j, doc, &tl, &n_ops));
				} else {
					assert_text_same(&j, doc, patch);
				}
				kilt_journal_done(&j);
			}
		}
	}
}

/* An array that lost elements and gained one at its end (an earlier injection's sidecars
 * removed, a new one appended): removals from the highest index, then the addition. */
static void test_journal__array_removed_then_appended(void **state)
{
	(void)state;
	_cleanup_json_ json_t *doc = load("{\"l\": [\"s0\", \"a\", \"s1\", \"b\"]}");
	_cleanup_json_ json_t *orig = json_deep_copy(doc);
	struct kilt_journal j;
	kilt_journal_init(&j);
	json_t *l = json_object_get(doc, "l");
	json_t *before = json_copy(l);
	json_array_remove(l, 2);
	json_array_remove(l, 0);
	kilt_journal_removed(&j, l, before);
	kilt_journal_will_append(&j, l);
	json_array_append_new(l, json_string("c"));
	_cleanup_json_ json_t *patch = kilt_journal_patch(&j, doc);
	assert_text_same(&j, doc, patch);
	assert_json_text(patch, "["
				"{\"op\": \"remove\", \"path\": \"/l/2\"},"
				"{\"op\": \"remove\", \"path\": \"/l/0\"},"
				"{\"op\": \"add\", \"path\": \"/l/2\", \"value\": \"c\"}]");
	_cleanup_json_ json_t *applied = apply_patch(orig, patch);
	assert_true(json_equal(applied, doc));
	kilt_journal_done(&j);
}

/* Elements inserted before others (a copier init container placed before a native sidecar)
 * are additions at their indices, not a new array; a change inside an element after them is
 * addressed by its index in the result. */
static void test_journal__array_inserted_in_the_middle(void **state)
{
	(void)state;
	_cleanup_json_ json_t *doc = load("{\"l\": [{\"n\": \"a\"}, {\"n\": \"b\"}, \"gone\"]}");
	_cleanup_json_ json_t *orig = json_deep_copy(doc);
	struct kilt_journal j;
	kilt_journal_init(&j);
	json_t *l = json_object_get(doc, "l");
	json_t *before = json_copy(l);
	json_array_remove(l, 2);
	json_array_insert_new(l, 1, json_string("x"));
	json_array_insert_new(l, 0, json_string("y"));
	kilt_journal_removed(&j, l, before);
	kilt_journal_set(&j, json_array_get(l, 3), "k", json_true());
	_cleanup_json_ json_t *patch = kilt_journal_patch(&j, doc);
	assert_text_same(&j, doc, patch);
	assert_json_text(patch, "["
				"{\"op\": \"remove\", \"path\": \"/l/2\"},"
				"{\"op\": \"add\", \"path\": \"/l/0\", \"value\": \"y\"},"
				"{\"op\": \"add\", \"path\": \"/l/2\", \"value\": \"x\"},"
				"{\"op\": \"add\", \"path\": \"/l/3/k\", \"value\": true}]");
	_cleanup_json_ json_t *applied = apply_patch(orig, patch);
	assert_true(json_equal(applied, doc));
	kilt_journal_done(&j);
}

/* A value set by the run and changed again later is one operation with its final value; an
 * array reordered is replaced whole; the root itself can change. */
static void test_journal__nested_and_replaced(void **state)
{
	(void)state;
	_cleanup_json_ json_t *doc = load("{\"c\": {\"k\": 1}, \"l\": [1, 2, 3]}");
	_cleanup_json_ json_t *orig = json_deep_copy(doc);
	struct kilt_journal j;
	kilt_journal_init(&j);
	json_t *c = json_object_get(doc, "c");
	json_t *nv = json_object();
	kilt_journal_set(&j, c, "k", nv);
	kilt_journal_set(&j, nv, "z", json_true());
	json_t *l = json_object_get(doc, "l");
	json_t *before = json_copy(l);
	json_t *first = json_incref(json_array_get(l, 0));
	json_array_remove(l, 0);
	json_array_append_new(l, first);
	kilt_journal_removed(&j, l, before);
	_cleanup_json_ json_t *patch = kilt_journal_patch(&j, doc);
	assert_text_same(&j, doc, patch);
	assert_json_text(patch,
			 "["
			 "{\"op\": \"replace\", \"path\": \"/c/k\", \"value\": {\"z\": true}},"
			 "{\"op\": \"replace\", \"path\": \"/l\", \"value\": [2, 3, 1]}]");
	_cleanup_json_ json_t *applied = apply_patch(orig, patch);
	assert_true(json_equal(applied, doc));
	/* nothing recorded: an empty patch */
	kilt_journal_forget(&j);
	_cleanup_json_ json_t *none = kilt_journal_patch(&j, doc);
	assert_int_equal(json_array_size(none), 0);
	assert_text_same(&j, doc, none);
	kilt_journal_done(&j);
}

/* ---- the walk told where the changes are (kilt_journal_via) --------------------------------- */

static json_t *pod_like(void)
{
	_cleanup_json_ json_t *doc =
		load("{\"metadata\": {\"name\": \"p\", \"labels\": {\"a\": \"b\"}},"
		     " \"spec\": {\"containers\": [{\"name\": \"app\", \"env\": []},"
		     "                            {\"name\": \"other\", \"env\": []}],"
		     "          \"volumes\": [{\"name\": \"v\", \"emptyDir\": {}}]},"
		     " \"status\": {}}");
	json_t *cs = json_object_get(json_object_get(doc, "spec"), "containers");
	for (size_t c = 0; c < 2; c++) {
		json_t *env = json_object_get(json_array_get(cs, c), "env");
		for (int i = 0; i < 50; i++) {
			char n[32];
			snprintf(n, sizeof(n), "V%d", i);
			json_array_append_new(env, json_pack("{ssss}", "name", n, "value", "x"));
		}
	}
	return json_incref(doc);
}

/* Changes in the first container: a field set, an env entry changed, one appended. */
static void change_first_container(struct kilt_journal *j, json_t *doc, bool declare)
{
	json_t *spec = json_object_get(doc, "spec");
	json_t *cs = json_object_get(spec, "containers");
	json_t *c = json_array_get(cs, 0);
	json_t *env = json_object_get(c, "env");
	json_t *e = json_array_get(env, 7);
	if (declare) {
		kilt_journal_via(j, spec);
		kilt_journal_via(j, cs);
		kilt_journal_via(j, c);
		kilt_journal_via(j, env);
		kilt_journal_via(j, e);
	}
	kilt_journal_set(j, c, "image", json_string("new"));
	kilt_journal_set(j, e, "value", json_string("y"));
	kilt_journal_will_append(j, env);
	json_array_append_new(env, json_pack("{ssss}", "name", "NEW", "value", "z"));
	/* a node created by the run, inside a value that goes whole into an operation */
	json_t *sc = json_object();
	kilt_journal_set(j, c, "securityContext", sc);
	kilt_journal_set(j, sc, "runAsUser", json_integer(0));
}

static void test_journal__walk_into_declared_nodes_only(void **state)
{
	(void)state;
	_cleanup_json_ json_t *a = pod_like(), *b = pod_like();
	_cleanup_json_ json_t *orig = json_deep_copy(a);
	struct kilt_journal whole, told;
	kilt_journal_init(&whole);
	kilt_journal_init(&told);
	change_first_container(&whole, a, false);
	change_first_container(&told, b, true);
	_cleanup_json_ json_t *pw = kilt_journal_patch(&whole, a);
	_cleanup_json_ json_t *pt = kilt_journal_patch(&told, b);
	assert_text_same(&whole, a, pw);
	assert_text_same(&told, b, pt);
	_cleanup_free_ char *tw = dump(pw), *tt = dump(pt);
	assert_string_equal(tt, tw);
	/* the container's own operations, then those inside it, in document order */
	assert_json_text(
		pt, "["
		    "{\"op\": \"add\", \"path\": \"/spec/containers/0/image\", \"value\": \"new\"},"
		    "{\"op\": \"add\", \"path\": \"/spec/containers/0/securityContext\","
		    " \"value\": {\"runAsUser\": 0}},"
		    "{\"op\": \"add\", \"path\": \"/spec/containers/0/env/50\","
		    " \"value\": {\"name\": \"NEW\", \"value\": \"z\"}},"
		    "{\"op\": \"replace\", \"path\": \"/spec/containers/0/env/7/value\","
		    " \"value\": \"y\"}]");
	_cleanup_json_ json_t *applied = apply_patch(orig, pt);
	assert_true(json_equal(applied, b));
	/* the whole walk enters every object and array (over a hundred here); the told one the
	 * root, spec, the list, the container, its env and the one entry */
	assert_true(whole.walked > 100);
	assert_int_equal(told.walked, 6);
	kilt_journal_done(&whole);
	kilt_journal_done(&told);
}

static void test_journal__undeclared_change_walks_the_whole_document(void **state)
{
	(void)state;
	_cleanup_json_ json_t *a = pod_like(), *b = pod_like();
	struct kilt_journal whole, told;
	kilt_journal_init(&whole);
	kilt_journal_init(&told);
	change_first_container(&whole, a, false);
	change_first_container(&told, b, true);
	/* a change in an env entry of the second container, which nobody declared */
	json_t *docs[2] = { a, b };
	struct kilt_journal *js[2] = { &whole, &told };
	for (size_t d = 0; d < 2; d++) {
		json_t *cs = json_object_get(json_object_get(docs[d], "spec"), "containers");
		json_t *env = json_object_get(json_array_get(cs, 1), "env");
		kilt_journal_set(js[d], json_array_get(env, 3), "value", json_string("w"));
	}
	_cleanup_json_ json_t *pw = kilt_journal_patch(&whole, a);
	_cleanup_json_ json_t *pt = kilt_journal_patch(&told, b);
	assert_text_same(&whole, a, pw);
	assert_text_same(&told, b, pt);
	_cleanup_free_ char *tw = dump(pw), *tt = dump(pt);
	assert_string_equal(tt, tw);
	assert_non_null(strstr(tt, "/spec/containers/1/env/3/value"));
	/* the pruned walk, then the whole one */
	assert_int_equal(told.walked, whole.walked + 6);
	kilt_journal_done(&whole);
	kilt_journal_done(&told);
}

/* ---- randomized: the engine's kinds of change on random documents ------------------------ */

static unsigned long rng_state = 12345;
static unsigned rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005ul + 1442695040888963407ul;
	return (unsigned)((rng_state >> 33) % n);
}

/* with characters a JSON string escapes (in keys, paths and values) and some that it does not */
static const char *const KEYS[] = { "a",   "b",	     "~",	   "/",		 "a/b",
				    "~1",  "x~0y",   "",	   "Name",	 "k",
				    "q\"", "back\\", "t\tn\n\x01", "\xc3\xa9/~", "\x7f</>" };

static json_t *random_value(unsigned depth)
{
	unsigned k = depth > 3 ? rnd(3) : rnd(6);
	switch (k) {
	case 0:
		switch (rnd(4)) {
		case 0:
			return json_real((double)rnd(100000) / 7.0 - 5000);
		case 1:
			return json_integer(-(json_int_t)rnd(100) * 1000000007ll);
		default:
			return json_integer(rnd(100));
		}
	case 1:
		return json_string(KEYS[rnd(ARRAY_SIZE(KEYS))]);
	case 2:
		return rnd(2) ? json_true() : json_null();
	case 3:
	case 4: {
		json_t *o = json_object();
		for (unsigned i = rnd(4); i > 0; i--)
			json_object_set_new(o, KEYS[rnd(ARRAY_SIZE(KEYS))],
					    random_value(depth + 1));
		return o;
	}
	default: {
		json_t *a = json_array();
		for (unsigned i = rnd(4); i > 0; i--)
			json_array_append_new(a, random_value(depth + 1));
		return a;
	}
	}
}

/* Collects every object and array of the document. */
static void containers(json_t *v, json_t *out)
{
	if (!json_is_object(v) && !json_is_array(v))
		return;
	json_array_append(out, v);
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach (v, k, c)
			containers(c, out);
	} else {
		size_t i;
		json_t *c;
		json_array_foreach (v, i, c)
			containers(c, out);
	}
}

/* Declares (kilt_journal_via) the nodes from `v` down to `target`, each with a chance of 9 in 10
 * (a missing one makes the patch walk the whole document). True when `target` is under `v`. */
static bool declare_way(struct kilt_journal *j, const json_t *v, const json_t *target)
{
	if (v == target) {
		if (rnd(10))
			kilt_journal_via(j, v);
		return true;
	}
	bool found = false;
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach ((json_t *)(uintptr_t)v, k, c)
			found = found || declare_way(j, c, target);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach (v, i, c)
			found = found || declare_way(j, c, target);
	}
	if (found && rnd(10))
		kilt_journal_via(j, v);
	return found;
}

/* One change of the kinds the engine makes, on a random node of `doc`; the node is appended to
 * `touched`. */
static void random_change(struct kilt_journal *j, json_t *doc, json_t *touched)
{
	_cleanup_json_ json_t *all = json_array();
	containers(doc, all);
	json_t *node = json_array_get(all, rnd((unsigned)json_array_size(all)));
	json_array_append(touched, node);
	if (json_is_object(node)) {
		const char *key = KEYS[rnd(ARRAY_SIZE(KEYS))];
		if (rnd(3) == 0)
			kilt_journal_del(j, node, key);
		else
			kilt_journal_set(j, node, key, random_value(2));
		return;
	}
	if (rnd(2) == 0 || json_array_size(node) == 0) {
		kilt_journal_will_append(j, node);
		for (unsigned i = 1 + rnd(2); i > 0; i--)
			json_array_append_new(node, random_value(2));
		return;
	}
	json_t *before = json_copy(node);
	if (rnd(3) == 0) { /* an insertion anywhere */
		json_array_insert_new(node, rnd((unsigned)json_array_size(node) + 1),
				      random_value(2));
		kilt_journal_removed(j, node, before);
		return;
	}
	json_array_remove(node, rnd((unsigned)json_array_size(node)));
	if (rnd(4) == 0 && json_array_size(node) > 1) { /* a reorder: replaced whole */
		json_t *first = json_incref(json_array_get(node, 0));
		json_array_remove(node, 0);
		json_array_append_new(node, first);
	}
	kilt_journal_removed(j, node, before);
}

static void test_journal__random_patches_apply(void **state)
{
	(void)state;
	for (unsigned round = 0; round < 3000; round++) {
		json_t *doc = json_object();
		for (unsigned i = 1 + rnd(4); i > 0; i--)
			json_object_set_new(doc, KEYS[rnd(ARRAY_SIZE(KEYS))], random_value(0));
		json_t *orig = json_deep_copy(doc);
		_cleanup_free_ char *orig_text = dump(doc);
		struct kilt_journal j;
		kilt_journal_init(&j);
		_cleanup_json_ json_t *touched = json_array();
		for (unsigned i = 1 + rnd(6); i > 0; i--)
			random_change(&j, doc, touched);
		json_t *patch = kilt_journal_patch(&j, doc);
		assert_text_same(&j, doc, patch);
		/* the same patch when the walk is told (mostly) where the changes are */
		size_t k;
		json_t *t;
		json_array_foreach (touched, k, t)
			declare_way(&j, doc, t);
		_cleanup_json_ json_t *told = kilt_journal_patch(&j, doc);
		assert_text_same(&j, doc, told);
		_cleanup_free_ char *pt = dump(patch), *tt = dump(told);
		if (strcmp(pt, tt) != 0)
			fail_msg("round %u: the patch %s\nwith declared nodes %s", round, pt, tt);
		json_t *applied = apply_patch(orig, patch);
		if (!json_equal(applied, doc)) {
			_cleanup_free_ char *p = dump(patch), *d = dump(doc), *a = dump(applied);
			fail_msg("round %u: original %s\npatch %s\nresult %s\napplied %s", round,
				 orig_text, p, d, a);
		}
		kilt_journal_rollback(&j, 0);
		_cleanup_free_ char *back = dump(doc);
		assert_string_equal(back, orig_text);
		kilt_journal_done(&j);
		json_decref(applied);
		json_decref(patch);
		json_decref(orig);
		json_decref(doc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal__object_ops_and_escapes),
		cmocka_unit_test(test_journal__path_escapes_at_every_position),
		cmocka_unit_test(test_journal__array_removed_then_appended),
		cmocka_unit_test(test_journal__nested_and_replaced),
		cmocka_unit_test(test_journal__array_inserted_in_the_middle),
		cmocka_unit_test(test_journal__random_patches_apply),
		cmocka_unit_test(test_journal__walk_into_declared_nodes_only),
		cmocka_unit_test(test_journal__undeclared_change_walks_the_whole_document),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
