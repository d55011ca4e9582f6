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
	json_t *fast = kilt_json_parse_fast(text, len);
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
		json_t *fast = kilt_json_parse_fast(t, len);
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
	assert_null(kilt_json_parse_fast(nul, sizeof(nul) - 1));
	/* nesting deeper than the reader goes: jansson's */
	size_t depth = 600;
	_cleanup_free_ char *deep = xmalloc(2 * depth + 1);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = '\0';
	assert_null(kilt_json_parse_fast(deep, 2 * depth));
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
 * pod with managedFields) is read by the reader itself, not left to jansson. */
static void test_json_read__review(void **state)
{
	(void)state;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	assert_int_equal(kilt_read_file(KILT_SOURCE_DIR "/fuzz/corpus/admission/skim-real",
					(size_t)1 << 20, &text, &len),
			 0);
	assert_reads_as_jansson(text, len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_read__same_values),
		cmocka_unit_test(test_json_read__refused_as_jansson),
		cmocka_unit_test(test_json_read__review),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
