/* SPDX-License-Identifier: Apache-2.0 */
/* kilt_json_parse (lib/json-read.c): its own reader builds what json_loadb builds (types,
 * members, their order) for the texts it reads, refuses what jansson refuses (and what it leaves
 * to jansson), and kilt_json_parse then gives jansson's own value or error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

/* The reader's value of `text` equals jansson's, written out byte for byte. */
static void assert_reads_as_jansson(const char *text, size_t len)
{
	json_t *fast = kilt_json_parse_fast(text, len, NULL, 0);
	if (!fast)
		fail_msg("the reader refused %.200s", text);
	json_error_t jerr;
	json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!ref)
		fail_msg("jansson refused %.200s: %s", text, jerr.text);
	_cleanup_free_ char *a = kilt_json_dumps(fast, JSON_COMPACT);
	_cleanup_free_ char *b = kilt_json_dumps(ref, JSON_COMPACT);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, b);
	assert_true(json_equal(fast, ref));
	json_t *via = kilt_json_parse(text, len, JSON_REJECT_DUPLICATES, NULL);
	_cleanup_free_ char *c = kilt_json_dumps(via, JSON_COMPACT);
	assert_string_equal(c, b);
	json_decref(via);
	json_decref(fast);
	json_decref(ref);
}

static void test_json_read__same_values(void **state)
{
	(void)state;
	static const char *const texts[] = {
		"{}",
		"[]",
		" \t\r\n{ \"a\" : 1 , \"b\" : [ ] }\n ",
		"{\"z\":1,\"a\":2,\"m\":3}", /* members in document order */
		"[0,-0,1,-1,123456789012345678,-123456789012345678,1234567890123456789,"
		"-9223372036854775808,9223372036854775807]",
		"[1.0,-0.0,0.5,1e2,1E+2,1e-2,-1.5e300,2.2250738585072014e-308,4.9e-324,"
		"0.1000000000000000055511151231257827,123456789012345678901234567890.5]",
		"[true,false,null,[true],{\"n\":null}]",
		"{\"s\":\"plain\",\"e\":\"\\\"\\\\\\/"
		"\\b\\f\\n\\r\\t\",\"u\":\"\\u0041\\u00e9\\u20AC\"}",
		"[\"\\ud83d\\ude00\",\"\\uD83D\\uDE00x\",\"a\\u007f\"]",
		"[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"\x7f\"]",
		"{\"k\\u00e9y\":1,\"k\\ney\":2,\"\":3}",
		"{\"a\":{\"b\":{\"c\":[[[[{\"d\":\"e\"}]]]]}}}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++)
		assert_reads_as_jansson(texts[i], strlen(texts[i]));
}

/* What jansson refuses, and what the reader leaves to jansson: kilt_json_parse gives jansson's
 * own result, error and position. */
static void test_json_read__refused_as_jansson(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool jansson_reads; /* the reader leaves it to jansson, which reads it */
	} cases[] = {
		{ "", false },
		{ "   ", false },
		{ "1", false }, /* not an object or an array */
		{ "\"s\"", false },
		{ "{\"a\":1,\"a\":2}", false },
		{ "{\"a\":{\"b\":1,\"b\":1}}", false },
		{ "[01]", false },
		{ "[1.]", false },
		{ "[.5]", false },
		{ "[1e]", false },
		{ "[-]", false },
		{ "[+1]", false },
		{ "[9223372036854775808]", false },
		{ "[-9223372036854775809]", false },
		{ "[1e400]", false },
		{ "[1234567890123456789012345678901234567890123456789012345678901234567890.5]",
		  true },
		{ "[\"\\u0000\"]", false },
		{ "{\"a\\u0000\":1}", false },
		{ "[\"\\ud800\"]", false },
		{ "[\"\\udc00\"]", false },
		{ "[\"\\ud800\\u0041\"]", false },
		{ "[\"\\x\"]", false },
		{ "[\"\\u12\"]", false },
		{ "[\"a\nb\"]", false },
		{ "[\"\xff\"]", false },
		{ "[\"\xc0\xaf\"]", false },
		{ "[\"\xed\xa0\x80\"]", false },
		{ "[\"\xf4\x90\x80\x80\"]", false },
		{ "[\"abc", false },
		{ "[1,]", false },
		{ "{\"a\":1,}", false },
		{ "{\"a\" 1}", false },
		{ "{1:2}", false },
		{ "[tru]", false },
		{ "[nul]", false },
		{ "[true false]", false },
		{ "{} x", false },
		{ "{}{}", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *t = cases[i].text;
		size_t len = strlen(t);
		json_t *fast = kilt_json_parse_fast(t, len, NULL, 0);
		if (fast)
			fail_msg("the reader read %s", t);
		json_error_t want, got;
		json_t *ref = json_loadb(t, len, JSON_REJECT_DUPLICATES, &want);
		json_t *v = kilt_json_parse(t, len, JSON_REJECT_DUPLICATES, &got);
		assert_int_equal(ref != NULL, cases[i].jansson_reads);
		assert_int_equal(v != NULL, ref != NULL);
		if (ref) {
			assert_true(json_equal(v, ref));
		} else {
			assert_string_equal(got.text, want.text);
			assert_int_equal(got.line, want.line);
			assert_int_equal(got.column, want.column);
			assert_int_equal(got.position, want.position);
		}
		json_decref(v);
		json_decref(ref);
	}
	/* a NUL byte in the text */
	const char nul[] = "[\"a\0b\"]";
	assert_null(kilt_json_parse_fast(nul, sizeof(nul) - 1, NULL, 0));
	/* nesting deeper than the reader goes: jansson's */
	size_t depth = 600;
	_cleanup_free_ char *deep = xmalloc(2 * depth + 1);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = '\0';
	assert_null(kilt_json_parse_fast(deep, 2 * depth, NULL, 0));
	json_t *v = kilt_json_parse(deep, 2 * depth, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(v);
	json_decref(v);
	/* other flags are jansson's */
	v = kilt_json_parse("\"any\"", 5, JSON_DECODE_ANY, NULL);
	assert_string_equal(json_string_value(v), "any");
	json_decref(v);
	/* duplicates without JSON_REJECT_DUPLICATES: jansson's rule */
	v = kilt_json_parse("{\"a\":1,\"a\":2}", 13, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(v, "a")), 2);
	json_decref(v);
}

/* The shape the webhook reads for every pod (fuzz/corpus/admission/skim-real, a Deployment's
 * pod with managedFields) is read by the reader itself, not left to jansson, with or without its
 * managedFields (a duplicate key taken for one where there is none would leave it to jansson). */
static void test_json_read__review(void **state)
{
	(void)state;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	assert_int_equal(kilt_read_file(KILT_SOURCE_DIR "/fuzz/corpus/admission/skim-real",
					(size_t)1 << 20, &text, &len),
			 0);
	assert_reads_as_jansson(text, len);
	static const char *const mf[] = { "request", "object", "metadata", "managedFields" };
	static const struct kilt_json_skip skip = { mf, ARRAY_SIZE(mf) };
	json_t *fast = kilt_json_parse_fast(text, len, &skip, 1);
	assert_non_null(fast);
	json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *meta = json_object_get(json_object_get(json_object_get(ref, "request"), "object"),
				       "metadata");
	assert_true(json_array_size(json_object_get(meta, "managedFields")) > 0);
	json_object_del(meta, "managedFields");
	assert_true(json_equal(fast, ref));
	json_decref(fast);
	json_decref(ref);
}

/* The paths a test leaves out. */
struct skip_set {
	const struct kilt_json_skip *v;
	size_t n;
};

/* a.b and c */
static const char *const path_ab[] = { "a", "b" };
static const char *const path_c[] = { "c" };
static const struct kilt_json_skip skips[] = {
	{ path_ab, ARRAY_SIZE(path_ab) },
	{ path_c, ARRAY_SIZE(path_c) },
};
static const struct skip_set ab_c = { skips, ARRAY_SIZE(skips) };

/* Through arrays (NULL: each element): p[*].x, q[*][*].y, r.s[*].t, [*].z; e[*] (a path that
 * ends at NULL) is not followed. */
static const char *const path_each_x[] = { "p", NULL, "x" };
static const char *const path_each_each_y[] = { "q", NULL, NULL, "y" };
static const char *const path_rs_each_t[] = { "r", "s", NULL, "t" };
static const char *const path_root_each_z[] = { NULL, "z" };
static const char *const path_ends_each[] = { "e", NULL };
static const struct kilt_json_skip each_skips[] = {
	{ path_each_x, ARRAY_SIZE(path_each_x) },
	{ path_each_each_y, ARRAY_SIZE(path_each_each_y) },
	{ path_rs_each_t, ARRAY_SIZE(path_rs_each_t) },
	{ path_root_each_z, ARRAY_SIZE(path_root_each_z) },
	{ path_ends_each, ARRAY_SIZE(path_ends_each) },
};
static const struct skip_set each = { each_skips, ARRAY_SIZE(each_skips) };

/* Deletes the member at keys[k..n) below `v` (NULL: in each element of an array). */
static void del_path(json_t *v, const char *const *keys, size_t k, size_t n)
{
	if (!keys[k]) {
		size_t i;
		json_t *el;
		json_array_foreach (v, i, el) {
			del_path(el, keys, k + 1, n);
		}
	} else if (k + 1 == n) {
		json_object_del(v, keys[k]);
	} else {
		del_path(json_object_get(v, keys[k]), keys, k + 1, n);
	}
}

/* json_loadb's value less the members at the set's paths (but those ending at NULL). */
static json_t *loadb_without(const struct skip_set *set, const char *text, size_t len, size_t flags,
			     json_error_t *jerr)
{
	json_t *v = json_loadb(text, len, flags, jerr);
	for (size_t i = 0; v && i < set->n; i++)
		if (set->v[i].keys[set->v[i].n_keys - 1])
			del_path(v, set->v[i].keys, 0, set->v[i].n_keys);
	return v;
}

static void assert_same_values(json_t *a, json_t *b)
{
	_cleanup_free_ char *ta = kilt_json_dumps(a, JSON_COMPACT);
	_cleanup_free_ char *tb = kilt_json_dumps(b, JSON_COMPACT);
	assert_string_equal(ta, tb);
}

/* kilt_json_parse_skip gives json_loadb's value less the set's members (a.b and c...), or
 * json_loadb's error, for the text `as` (NULL: the text itself); the reader reads it itself
 * (`fast`) or leaves it to jansson. `as` is the text with duplicate keys inside those members
 * taken out (the same length, so jansson's positions are the same): those are not refused. */
static void assert_skips_as(const struct skip_set *set, const char *text, bool fast_reads,
			    size_t flags, const char *as)
{
	size_t len = strlen(text);
	json_error_t want_err, got_err;
	if (as) {
		/* the case is one of a duplicate inside what is left out */
		assert_int_equal(strlen(as), len);
		json_t *strict = json_loadb(text, len, JSON_REJECT_DUPLICATES, &want_err);
		assert_null(strict);
		assert_int_equal(json_error_code(&want_err), json_error_duplicate_key);
	}
	json_t *want = loadb_without(set, as ? as : text, len, flags, &want_err);
	json_t *got = kilt_json_parse_skip(text, len, flags, set->v, set->n, &got_err);
	if (!got != !want)
		fail_msg("%s by jansson, %s leaving members out: %s", want ? "read" : "refused",
			 got ? "read" : "refused", text);
	if (want) {
		assert_same_values(got, want);
		/* which is json_loadb's value without the duplicate check, less the members */
		json_t *loose = loadb_without(set, text, len, 0, NULL);
		assert_non_null(loose);
		assert_same_values(got, loose);
		json_decref(loose);
	} else {
		assert_string_equal(got_err.text, want_err.text);
		assert_int_equal(got_err.line, want_err.line);
		assert_int_equal(got_err.column, want_err.column);
		assert_int_equal(got_err.position, want_err.position);
	}
	json_t *fast = kilt_json_parse_fast(text, len, set->v, set->n);
	if (!fast != !fast_reads)
		fail_msg("the reader %s %s", fast ? "read" : "refused", text);
	if (fast)
		assert_same_values(fast, want);
	json_decref(fast);
	json_decref(got);
	json_decref(want);
}

static void assert_skips_as_jansson(const struct skip_set *set, const char *text, bool fast_reads,
				    size_t flags)
{
	assert_skips_as(set, text, fast_reads, flags, NULL);
}

static void test_json_read__skip(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool fast; /* the reader reads it itself */
	} cases[] = {
		/* left out wherever it is among the members; elsewhere kept */
		{ "{\"a\":{\"b\":1}}", true },
		{ "{\"a\":{\"x\":1,\"b\":[1,{\"c\":2}],\"y\":2},\"c\":{},\"d\":3}", true },
		{ "{\"c\":[],\"a\":{\"b\":{}}}", true },
		{ "{\"x\":{\"a\":{\"b\":1},\"c\":1},\"a\":[{\"b\":1}],\"b\":{\"c\":2}}", true },
		{ "{\"a\":1,\"c\":{\"b\":1}}", true },
		{ "[{\"c\":1}]", true },
		/* the key as jansson decodes it */
		{ "{\"\\u0061\":{\"\\u0062\":1},\"\\u0063\":1}", true },
		/* whatever JSON it holds: escapes, non-ASCII, numbers, literals, nesting */
		{ "{\"c\":{\"k:{\\\"n\\\":\\\"\\u00e9\\ud83d\\ude00\\\"}\":{},\"\xc3\xa9\":"
		  "\"\xf0\x9f"
		  "\x98\x80\\n\\/\",\"n\":[0,-1,1.5e300,-0.0,123456789012345678,true,false,null]}}",
		  true },
		{ "{\"c\":[[[[{\"a\":[{}]}]]]]}", true },
		/* keys equal only once decoded, in different objects: no duplicate */
		{ "{\"c\":[{\"\\/\":1},{\"/\":1}]}", true },
		/* large objects (their keys go to a table) */
		{ "{\"c\":{\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":1,\"k8\":1,"
		  "\"k9\":1,\"k10\":{\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":"
		  "1,"
		  "\"k8\":1,\"k9\":1},\"k11\":1}}",
		  true },
		/* read by jansson: a number the reader leaves to it */
		{ "{\"c\":[1234567890123456789012345678901234567890123456789012345678901234567890."
		  "5]}",
		  false },
		/* refused as jansson refuses it: duplicates outside, of the member itself (also
		 * spelled another way), and whatever is not JSON in what is left out */
		{ "{\"c\":1,\"c\":2}", false },
		{ "{\"c\":1,\"\\u0063\":2}", false },
		{ "{\"a\":{\"b\":1,\"b\":1}}", false },
		{ "{\"a\":{\"b\":1},\"a\":{}}", false },
		{ "{\"a\":{\"x\":1,\"x\":2},\"c\":[]}", false },
		{ "{\"d\":[{\"x\":1,\"y\":{\"z\":1,\"z\":2}}],\"c\":[]}", false },
		{ "{\"c\":[1e400]}", false },
		{ "{\"c\":[9223372036854775808]}", false },
		{ "{\"c\":[01]}", false },
		{ "{\"c\":[tru]}", false },
		{ "{\"c\":[\"\\u0000\"]}", false },
		{ "{\"c\":[\"\\ud800\"]}", false },
		{ "{\"c\":[\"\\x\"]}", false },
		{ "{\"c\":[\"\xc3\"]}", false },
		{ "{\"c\":[\"a\tb\"]}", false },
		{ "{\"c\":[1,]}", false },
		{ "{\"c\":{\"a\" 1}}", false },
		{ "{\"c\":", false },
		{ "{\"c\":[", false },
		{ "{\"c\"", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_skips_as_jansson(&ab_c, cases[i].text, cases[i].fast,
					JSON_REJECT_DUPLICATES);
	/* Duplicate keys inside what is left out are not refused (read as without the duplicate
	 * check, less the members), at any depth and however spelled; one outside still is (its
	 * error where it is), and so is anything else that is not JSON (jansson's error without
	 * the duplicate check). Each text with the one `as` jansson reads the same way. */
	static const struct {
		const char *text, *as;
		bool fast;
	} dups[] = {
		{ "{\"c\":{\"x\":1,\"x\":2}}", "{\"c\":{\"x\":1,\"y\":2}}", true },
		{ "{\"a\":{\"b\":{\"x\":1,\"x\":2}}}", "{\"a\":{\"b\":{\"x\":1,\"y\":2}}}", true },
		{ "{\"c\":[{\"\\/\":1,\"/\":1}]}", "{\"c\":[{\"\\/\":1,\"|\":1}]}", true },
		{ "{\"c\":{\"\\u00e9\":1,\"\xc3\xa9\":1}}",
		  "{\"c\":{\"\\u00e9\":1,\"\xc3\xaa\":1}}", true },
		{ "{\"c\":[[{\"d\":{\"e\":[{\"k:{\\\"n\\\":1}\":{},\"k:{\\\"n\\\":1}\":{}}]}}]],"
		  "\"x\":1}",
		  "{\"c\":[[{\"d\":{\"e\":[{\"k:{\\\"n\\\":1}\":{},\"k:{\\\"n\\\":2}\":{}}]}}]],"
		  "\"x\":1}",
		  true },
		{ "{\"c\":{\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":1,\"k8\":1,"
		  "\"k9\":1,\"k10\":1,\"k3\":1}}",
		  "{\"c\":{\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":1,\"k8\":1,"
		  "\"k9\":1,\"k10\":1,\"kx\":1}}",
		  true },
		/* read by jansson (a number the reader leaves to it), duplicates inside too */
		{ "{\"c\":{\"x\":1,\"x\":"
		  "12345678901234567890123456789012345678901234567890123456789"
		  "012345678901.5}}",
		  "{\"c\":{\"x\":1,\"y\":"
		  "12345678901234567890123456789012345678901234567890123456789"
		  "012345678901.5}}",
		  false },
		/* a duplicate outside after one inside: refused where the one outside is */
		{ "{\"c\":{\"x\":1,\"x\":2},\"d\":1,\"d\":2}",
		  "{\"c\":{\"x\":1,\"y\":2},\"d\":1,\"d\":2}", false },
		{ "{\"c\":{\"x\":1,\"x\":2},\"a\":{\"b\":1,\"b\":1}}",
		  "{\"c\":{\"x\":1,\"y\":2},\"a\":{\"b\":1,\"b\":1}}", false },
		/* where, as jansson counts lines and columns of what is left out */
		{ "{\"c\":[{\"x\":1,\n\"x\":\"\xc3\xa9\xf0\x9f\x98\x80\"}],\"d\":1,\"d\":2}",
		  "{\"c\":[{\"x\":1,\n\"y\":\"\xc3\xa9\xf0\x9f\x98\x80\"}],\"d\":1,\"d\":2}",
		  false },
		{ "{\"c\":{\"x\":1,\"x\":2},\"c\":3}", "{\"c\":{\"x\":1,\"y\":2},\"c\":3}", false },
		{ "{\"a\":{\"b\":{\"x\":1,\"x\":2},\"d\":{\"z\":1,\"z\":2}}}",
		  "{\"a\":{\"b\":{\"x\":1,\"y\":2},\"d\":{\"z\":1,\"z\":2}}}", false },
		/* not JSON after a duplicate inside: jansson's error for it */
		{ "{\"c\":[{\"x\":1,\"x\":2},\"\\q\"]}", "{\"c\":[{\"x\":1,\"y\":2},\"\\q\"]}",
		  false },
		{ "{\"c\":[{\"x\":1,\"x\":2},\"\xc3\"]}", "{\"c\":[{\"x\":1,\"y\":2},\"\xc3\"]}",
		  false },
		{ "{\"c\":[{\"x\":1,\"x\":2},\"\\udc00\"]}",
		  "{\"c\":[{\"x\":1,\"y\":2},\"\\udc00\"]}", false },
		{ "{\"c\":[{\"x\":1,\"x\":2},01]}", "{\"c\":[{\"x\":1,\"y\":2},01]}", false },
		{ "{\"c\":[{\"x\":1,\"x\":2},]}", "{\"c\":[{\"x\":1,\"y\":2},]}", false },
		{ "{\"c\":[{\"x\":1,\"x\":2}", "{\"c\":[{\"x\":1,\"y\":2}", false },
		{ "{\"c\":{\"x\":1,\"x\":2},\"d\":tru}", "{\"c\":{\"x\":1,\"y\":2},\"d\":tru}",
		  false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(dups); i++)
		assert_skips_as(&ab_c, dups[i].text, dups[i].fast, JSON_REJECT_DUPLICATES,
				dups[i].as);
	/* without JSON_REJECT_DUPLICATES: jansson's rule for which value stays, then left out */
	assert_skips_as_jansson(&ab_c, "{\"c\":1,\"c\":2,\"a\":{\"x\":1,\"x\":2}}", false, 0);
	assert_skips_as_jansson(&ab_c, "{\"a\":{\"b\":1},\"a\":{\"b\":2,\"d\":3}}", false, 0);
	/* nesting: what is left out counts toward the reader's depth, then jansson's */
	for (size_t depth = 200; depth <= 1200; depth += 500) {
		struct kbuf b;
		kbuf_init(&b, SIZE_MAX / 2);
		kbuf_adds(&b, "{\"c\":");
		for (size_t i = 0; i < depth; i++)
			kbuf_adds(&b, "[{\"a\":");
		kbuf_adds(&b, "1");
		for (size_t i = 0; i < depth; i++)
			kbuf_adds(&b, "}]");
		kbuf_adds(&b, ",\"d\":1}");
		kbuf_addc(&b, '\0');
		assert_skips_as_jansson(&ab_c, b.data, depth < 250, JSON_REJECT_DUPLICATES);
		kbuf_done(&b);
	}
	/* objects nested in what is left out as fieldsV1 nests them ("key":{ then a key), up to
	 * the reader's depth and past it: a value deeper than 512 is jansson's */
	for (size_t n = 505; n <= 515; n++) {
		for (int inner = 0; inner < 2; inner++) {
			struct kbuf b;
			kbuf_init(&b, SIZE_MAX / 2);
			kbuf_adds(&b, "{\"c\":");
			for (size_t i = 0; i < n; i++)
				kbuf_adds(&b, "{\"f:a\":");
			kbuf_adds(&b, inner ? "{\"f:z\":{},\"f:y\":{}}" : "{}");
			for (size_t i = 0; i < n; i++)
				kbuf_adds(&b, i % 3 ? "}" : ",\"f:b\":{}}");
			kbuf_adds(&b, ",\"d\":\"more than forty-eight bytes after the last key\"}");
			kbuf_addc(&b, '\0');
			/* the root at depth 1, c's value at 2, the innermost {} at 2 + n (+ 1) */
			assert_skips_as_jansson(&ab_c, b.data, 2 + n + (size_t)inner <= 512,
						JSON_REJECT_DUPLICATES);
			kbuf_done(&b);
		}
	}
	/* every cut of a text is refused as jansson refuses it */
	const char *text = "{\"a\":{\"b\":{\"k:{\\\"n\\\":1}\":[1.5,\"\\u00e9\"]}},\"c\":[{}]}";
	_cleanup_free_ char *cut = xmalloc(strlen(text) + 1);
	for (size_t len = 0; len < strlen(text); len++) {
		memcpy(cut, text, len);
		cut[len] = '\0';
		assert_skips_as_jansson(&ab_c, cut, false, JSON_REJECT_DUPLICATES);
	}
}

/* Paths through arrays (a NULL key: each element): the member left out of every element that
 * is an object, at any depth of arrays; elements that are not objects, and the same keys
 * elsewhere, kept; a path ending at NULL not followed (no element is ever left out). Duplicate
 * keys inside what is left out are not refused, the member itself twice in one element is. */
static void test_json_read__skip_each(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool fast;
	} cases[] = {
		{ "{\"p\":[{\"x\":1},{\"a\":1,\"x\":{\"b\":[1]},\"c\":2},{},1,\"x\",null,[{\"x\":1}"
		  "]]}",
		  true },
		{ "{\"x\":1,\"p\":{\"x\":1},\"a\":[{\"x\":1}]}", true },
		{ "{\"p\":[]}", true },
		{ "{\"q\":[[{\"y\":1,\"z\":2}],[],[{}],{\"y\":1},[{\"y\":[{\"y\":1}]}]],\"y\":1}",
		  true },
		{ "{\"q\":[{\"y\":1}]}", true },
		{ "{\"r\":{\"s\":[{\"t\":1,\"u\":{\"t\":1}}],\"t\":1},\"s\":[{\"t\":1}]}", true },
		{ "[{\"z\":1,\"p\":[{\"x\":1}]},{\"a\":{\"z\":1}},[{\"z\":1}]]", true },
		{ "{\"z\":1,\"e\":[1,{\"z\":1}]}", true },
		{ "{\"p\":[{\"\\u0078\":1,\"y\":2}]}", true },
		/* refused as jansson refuses it: the member twice in one element, a duplicate
		 * outside, what is not JSON inside */
		{ "{\"p\":[{\"x\":1,\"x\":2}]}", false },
		{ "{\"p\":[{\"x\":1},{\"x\":1,\"\\u0078\":2}]}", false },
		{ "{\"p\":[{\"x\":1,\"a\":1,\"a\":2}]}", false },
		{ "{\"p\":[{\"x\":[1,]}]}", false },
		{ "{\"p\":[{\"x\":\"\\ud800\"}]}", false },
		{ "{\"p\":[{\"x\":1},]}", false },
		{ "{\"p\":[{\"x\":01}]}", false },
		{ "{\"p\":[{\"x\"", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_skips_as_jansson(&each, cases[i].text, cases[i].fast,
					JSON_REJECT_DUPLICATES);
	static const struct {
		const char *text, *as;
		bool fast;
	} dups[] = {
		{ "{\"p\":[{\"a\":1},{\"x\":{\"k\":1,\"k\":2}}]}",
		  "{\"p\":[{\"a\":1},{\"x\":{\"k\":1,\"j\":2}}]}", true },
		{ "{\"q\":[[{\"y\":[{\"k\":1,\"k\":2}]}]],\"r\":{\"s\":[{\"t\":{\"m\":1,\"m\":1}}]}"
		  "}",
		  "{\"q\":[[{\"y\":[{\"k\":1,\"j\":2}]}]],\"r\":{\"s\":[{\"t\":{\"m\":1,\"n\":1}}]}"
		  "}",
		  true },
		/* a duplicate outside after one inside: refused where the one outside is */
		{ "{\"p\":[{\"x\":{\"k\":1,\"k\":2},\"a\":1,\"a\":2}]}",
		  "{\"p\":[{\"x\":{\"k\":1,\"j\":2},\"a\":1,\"a\":2}]}", false },
		{ "{\"p\":[{\"x\":{\"k\":1,\"k\":2}},{\"x\":1,\"x\":1}]}",
		  "{\"p\":[{\"x\":{\"k\":1,\"j\":2}},{\"x\":1,\"x\":1}]}", false },
		/* not JSON after a duplicate inside */
		{ "{\"p\":[{\"x\":{\"k\":1,\"k\":2}},tru]}",
		  "{\"p\":[{\"x\":{\"k\":1,\"j\":2}},tru]}", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(dups); i++)
		assert_skips_as(&each, dups[i].text, dups[i].fast, JSON_REJECT_DUPLICATES,
				dups[i].as);
	/* a path ending at NULL alone: nothing left out */
	static const struct kilt_json_skip ends[] = { { path_ends_each,
							ARRAY_SIZE(path_ends_each) } };
	const char *text = "{\"e\":[1,{\"a\":2}]}";
	json_t *got =
		kilt_json_parse_skip(text, strlen(text), JSON_REJECT_DUPLICATES, ends, 1, NULL);
	json_t *want = json_loads(text, 0, NULL);
	assert_same_values(got, want);
	json_decref(got);
	json_decref(want);
	/* every cut of a text is refused as jansson refuses it */
	text = "{\"p\":[{\"a\":\"\\u00e9\",\"x\":[{\"k\":1.5}]},2],\"q\":[[{\"y\":{}}]]}";
	_cleanup_free_ char *cut = xmalloc(strlen(text) + 1);
	for (size_t len = 0; len < strlen(text); len++) {
		memcpy(cut, text, len);
		cut[len] = '\0';
		assert_skips_as_jansson(&each, cut, false, JSON_REJECT_DUPLICATES);
	}
}

/* Keys of paths compared by their lengths first: keys of the same length and bucket that differ,
 * keys that are the start of another, and keys of 254, 255 and 300 bytes (a length from 255 on is
 * not kept: those compared whole). */
static void test_json_read__skip_key_lengths(void **state)
{
	(void)state;
	char k254[255], k255[256], k300[301];
	memset(k254, 'k', sizeof(k254) - 1);
	k254[254] = '\0';
	memset(k255, 'k', sizeof(k255) - 1);
	k255[255] = '\0';
	memset(k300, 'k', sizeof(k300) - 1);
	k300[300] = '\0';
	const char *const p254[] = { "m", k254 }, *const p255[] = { "m", k255 },
			  *const p300[] = { "m", k300 }, *const pab[] = { "ab" },
			  *const pabc[] = { "m", "abc" };
	const struct kilt_json_skip v[] = {
		{ p254, 2 }, { p255, 2 }, { p300, 2 }, { pab, 1 }, { pabc, 2 },
	};
	const struct skip_set set = { v, ARRAY_SIZE(v) };
	/* each long key, one byte shorter and one longer, and short keys near "ab" and "abc" */
	static const size_t lens[] = { 253, 254, 255, 256, 299, 300, 301 };
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		struct kbuf b;
		for (int dup = 0; dup < 2; dup++) {
			kbuf_init(&b, SIZE_MAX / 2);
			kbuf_adds(&b, "{\"ab\":1,\"aB\":2,\"a\":3,\"abc\":4,\"m\":{\"");
			for (size_t k = 0; k < lens[i]; k++)
				kbuf_addc(&b, 'k');
			kbuf_adds(&b, "\":{\"x\":1},\"ab\":5,\"abc\":[6],\"abd\":7");
			/* the member left out twice (abc written \u0063): jansson's error */
			kbuf_adds(&b, dup ? ",\"ab\\u0063\":8}}" : "}}");
			kbuf_addc(&b, '\0');
			assert_skips_as_jansson(&set, b.data, !dup, JSON_REJECT_DUPLICATES);
			kbuf_done(&b);
		}
	}
}

/* Paths grouped by their first keys however they are spelled (the same string at two addresses),
 * a path that is the start of another (the shorter one leaves the member out), and paths longer
 * than the levels the reader indexes (followed path by path there). */
static void test_json_read__skip_groups(void **state)
{
	(void)state;
	static char s1[] = "s", s2[] = "s", t[] = "t", u[] = "u";
	const char *const path_st[] = { s1, t }, *const path_su[] = { s2, u };
	static const char *const path_pq[] = { "p", "q" }, *const path_pqr[] = { "p", "q", "r" };
	static const char *const path_deep_x[] = {
		"a", "a", "a", "a", "a", "a", "a", "a", "a", "x"
	};
	static const char *const path_deep_each_y[] = { "a", "a", "a", "a",  "a",
							"a", "a", "a", NULL, "y" };
	static const char *const path_deep_each_z[] = { "a", "a", "a", "a",  "a", "a",
							"a", "a", "a", NULL, "z" };
	const struct kilt_json_skip v[] = {
		{ path_st, 2 },
		{ path_pqr, ARRAY_SIZE(path_pqr) },
		{ path_su, 2 },
		{ path_pq, ARRAY_SIZE(path_pq) },
		{ path_deep_x, ARRAY_SIZE(path_deep_x) },
		{ path_deep_each_y, ARRAY_SIZE(path_deep_each_y) },
		{ path_deep_each_z, ARRAY_SIZE(path_deep_each_z) },
	};
	const struct skip_set set = { v, ARRAY_SIZE(v) };
#define DEEP(x) "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":" x "}}}}}}}}"
	static const struct {
		const char *text;
		bool fast;
	} cases[] = {
		{ "{\"s\":{\"t\":1,\"u\":2,\"v\":3},\"t\":1}", true },
		{ "{\"\\u0073\":{\"u\":[1],\"t\":{}}}", true },
		{ "{\"p\":{\"q\":{\"r\":1},\"r\":2},\"q\":1}", true },
		{ DEEP("{\"a\":{\"x\":1,\"k\":2,\"a\":{\"x\":1}},\"x\":3}"), true },
		{ DEEP("[{\"y\":1,\"z\":2},{\"a\":1}]"), true },
		{ DEEP("{\"a\":[{\"z\":1,\"y\":2},3],\"x\":[]}"), true },
		{ DEEP("[{\"y\":1,\"y\":2}]"), false },
		{ "{\"s\":{\"t\":1,\"t\":2}}", false },
		{ "{\"s\":{\"t\":1,\"u\":1,\"\\u0075\":2}}", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_skips_as_jansson(&set, cases[i].text, cases[i].fast, JSON_REJECT_DUPLICATES);
	/* a duplicate inside a member left out there: not refused */
	assert_skips_as(&set, DEEP("{\"a\":[{\"z\":{\"k\":1,\"k\":2}}]}"), true,
			JSON_REJECT_DUPLICATES, DEEP("{\"a\":[{\"z\":{\"k\":1,\"j\":2}}]}"));
#undef DEEP
	/* a duplicate inside, deep: read without the duplicate check, less the member */
	json_t *got = kilt_json_parse_skip("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{"
					   "\"a\":{\"a\":{\"x\":{\"k\":1,\"k\":"
					   "2}}}}}}}}}}}",
					   strlen("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{"
						  "\"a\":{\"a\":{\"a\":{\"x\":{\"k\":1,"
						  "\"k\":2}}}}}}}}}}}"),
					   JSON_REJECT_DUPLICATES, v, ARRAY_SIZE(v), NULL);
	assert_non_null(got);
	_cleanup_free_ char *text = kilt_json_dumps(got, JSON_COMPACT);
	assert_string_equal(
		text, "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}}");
	json_decref(got);
}

/* kilt_json_parse_skip() of `text` (len bytes, no duplicate key inside what is left out): as
 * json_loadb reads it less a.b and c, or json_loadb's error; the reader's own value, when it
 * gives one, the same. */
static void assert_skips_as_jansson_n(const struct skip_set *set, const char *whole, size_t len)
{
	/* a copy of exactly len bytes: a read past them is ASan's error */
	_cleanup_free_ char *text = xmalloc(len ? len : 1);
	memcpy(text, whole, len);
	json_error_t want_err, got_err;
	json_t *want = loadb_without(set, text, len, JSON_REJECT_DUPLICATES, &want_err);
	json_t *got =
		kilt_json_parse_skip(text, len, JSON_REJECT_DUPLICATES, set->v, set->n, &got_err);
	if (!got != !want)
		fail_msg("%s by jansson, %s leaving members out: %.*s", want ? "read" : "refused",
			 got ? "read" : "refused", (int)len, text);
	if (want) {
		assert_same_values(got, want);
	} else {
		assert_string_equal(got_err.text, want_err.text);
		assert_int_equal(got_err.position, want_err.position);
	}
	json_t *fast = kilt_json_parse_fast(text, len, set->v, set->n);
	if (fast && !want)
		fail_msg("the reader read what jansson refuses: %.*s", (int)len, text);
	if (fast)
		assert_same_values(fast, want);
	json_decref(fast);
	json_decref(got);
	json_decref(want);
}

/* Texts long enough for the reader's windows (members left out as managedFields' fieldsV1 has
 * them: "key":{} then a key, "key":{ then a key, "key":{} closing, keys with \" escapes; kept
 * strings longer than a window): each byte replaced by each of bytes that change what it is
 * (structure, escapes, control, non-ASCII, invalid UTF-8), and every cut, read as jansson
 * reads it. The keys left out differ in more than one byte: no replacement makes a duplicate
 * there. */
static void test_json_read__skip_windows(void **state)
{
	(void)state;
	static const char *const texts[] = {
		"{\"a\":{\"x\":\"0123456789abcdefghijklmnop\",\"b\":{\"f:alpha\":{},"
		"\"f:bravo\":{\".\":{},\"f:charlie\":{},\"f:delta-long-key-name\":{}},"
		"\"k:{\\\"name\\\":\\\"SETTING_0_1\\\"}\":{\".\":{},\"f:name\":{}},"
		"\"f:echo\":{}},\"y\":[1,\"zz\"]},\"c\":[{\"f:foxtrot\":{},\"f:golf\":"
		"{}}],\"d\":\"kept string longer than sixteen bytes\",\"e\":[\"0123456789abcdef\","
		"\"\"]}",
		"{\"c\":{\"f:metadata\":{\"f:labels\":{\".\":{},\"f:app.kubernetes.io/name\":{},"
		"\"f:pod-template-hash\":{}}},\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":"
		"\\\"app\\\"}\":{\".\":{},\"f:env\":{\"k:{\\\"name\\\":\\\"A_B\\\"}\":"
		"{\".\":{},\"f:value\":{}}}}}}},\"z\":\"\xc3\xa9t\xc3\xa9 \xe2\x82\xac "
		"long enough for two windows\"}",
		/* keys with escapes closing near the end of the text */
		"{\"c\":{\"f:a\":{},\"k:{\\\"name\\\":\\\"SETTING_0_1\\\"}\":{},"
		"\"k:{\\\"name\\\":\\\"OPTION_9_2\\\"}\":{}}}",
		/* "key":{}} then what follows in an array, a key of the object around, or the end
		 * of what is left out */
		"{\"c\":[{\"f:alpha\":{}},\"str\",{\"f:bravo\":{}},{\"k:{\\\"name\\\":\\\"X\\\"}\":"
		"{}},1],\"a\":{\"b\":{\"f:x\":{\"f:y\":{}},\"f:z\":{}}},\"d\":\"padding "
		"padding padding padding\"}",
		/* k:{\"name\":\"X\"} keys with X of 0, 1, 16 and 17 bytes (X's window) */
		"{\"c\":{\"k:{\\\"name\\\":\\\"\\\"}\":{},"
		"\"k:{\\\"name\\\":\\\"SIXTEEN_CHARS_AB\\\"}\":{\".\":{}},"
		"\"k:{\\\"name\\\":\\\"SEVENTEEN_CHARS_A\\\"}\":{},"
		"\"k:{\\\"name\\\":\\\"A\\\"}\":{}},\"d\":\"padding padding padding padding "
		"padding\"}",
		/* "key":"value" and "key":123 then a key (a pod's probes, ports, resources) */
		"{\"c\":{\"httpGet\":{\"path\":\"/ready\",\"port\":8080,\"scheme\":\"HTTP\"},"
		"\"timeoutSeconds\":1,\"periodSeconds\":10,\"zero\":0,\"empty\":\"\",\"s\":"
		"\"sixteen_bytes_ab\",\"t\":\"seventeen_bytes_a\",\"n\":123456789012345678,"
		"\"m\":1234567890123456789,\"last\":3},\"d\":\"padding padding padding padding\"}",
		/* members of an array's elements left out (the set `each`) */
		"{\"p\":[{\"name\":\"app\",\"x\":{\"httpGet\":{\"path\":\"/ready\",\"port\":8080}},"
		"\"image\":\"example/app:1\"},{\"x\":[1,2.5,null],\"name\":\"b\"}],\"q\":[[{\"y\":"
		"{\"k\":\"v\"},\"w\":1}]],\"r\":{\"s\":[{\"t\":\"0123456789abcdefghij\"}]}}",
	};
	static const char repl[] = {
		'\0', 0x1f, '"', '\\', '{',  '}',	 '[',	     ']',
		':',  ',',  ' ', 'u',  0x7f, (char)0x80, (char)0xc3, (char)0xff
	};
	for (size_t t = 0; t < ARRAY_SIZE(texts); t++) {
		const char *text = texts[t];
		const struct skip_set *set = t + 1 < ARRAY_SIZE(texts) ? &ab_c : &each;
		size_t len = strlen(text);
		assert_true(len > 64);
		assert_skips_as_jansson_n(set, text, len);
		_cleanup_free_ char *m = xmalloc(len + 1);
		for (size_t i = 0; i < len; i++) {
			assert_skips_as_jansson_n(set, text, i);
			for (size_t k = 0; k < ARRAY_SIZE(repl); k++) {
				if (text[i] == repl[k])
					continue;
				memcpy(m, text, len + 1);
				m[i] = repl[k];
				assert_skips_as_jansson_n(set, m, len);
			}
		}
	}
}

/* Numbers left out (short integers read by the skim itself, also as "key":123 then a key, the
 * others by the reader's number reading): each byte of a text of numbers replaced by bytes
 * numbers are made of, and every cut, read as jansson reads it. */
static void test_json_read__skip_numbers(void **state)
{
	(void)state;
	static const char text[] =
		"{\"c\":{\"n\":[0,-0,7,-12,8080,123456789012345678,-123456789012345678,"
		"1234567890123456789,-9223372036854775808,9223372036854775807,1.5,2e3,0.0,-1E-2],"
		"\"m\":420,\"p\":7,\"q\":12,\"r\":0,\"s\":-3,\"t\":123456789012345678,\"u\":1,"
		"\"v\":9223372036854775807,\"w\":1},"
		"\"d\":\"padding padding padding padding padding padding\"}";
	static const char repl[] = { '0', '9', '.', 'e', 'E', '-', '+', 'x', ' ', ',' };
	size_t len = strlen(text);
	char m[sizeof(text)];
	/* the reader reads it itself */
	assert_skips_as_jansson(&ab_c, text, true, JSON_REJECT_DUPLICATES);
	for (size_t i = 0; i < len; i++) {
		assert_skips_as_jansson_n(&ab_c, text, i);
		for (size_t k = 0; k < ARRAY_SIZE(repl); k++) {
			if (text[i] == repl[k])
				continue;
			memcpy(m, text, sizeof(text));
			m[i] = repl[k];
			assert_skips_as_jansson_n(&ab_c, m, len);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_read__same_values),
		cmocka_unit_test(test_json_read__refused_as_jansson),
		cmocka_unit_test(test_json_read__review),
		cmocka_unit_test(test_json_read__skip),
		cmocka_unit_test(test_json_read__skip_each),
		cmocka_unit_test(test_json_read__skip_groups),
		cmocka_unit_test(test_json_read__skip_key_lengths),
		cmocka_unit_test(test_json_read__skip_windows),
		cmocka_unit_test(test_json_read__skip_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
