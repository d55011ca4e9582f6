/* SPDX-License-Identifier: Apache-2.0 */
/* JSON numbers kept as written (lib/json.c): what jansson cannot hold exactly is read, kept and
 * written back as it stood; everything else is read and written as jansson does, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

static json_t *load(const char *text, size_t flags)
{
	json_error_t jerr;
	json_t *v = kilt_json_loadb(text, strlen(text), flags, &jerr);
	if (!v)
		fail_msg("load of %s failed: %d:%d %s", text, jerr.line, jerr.column, jerr.text);
	return v;
}

static void test_json__exact(void **state)
{
	(void)state;
	static const char *const exact[] = {
		"0",
		"-0",
		"9223372036854775807",
		"-9223372036854775808",
		"1.5",
		"0.1",
		"1e3",
		"6.02e23",
		"-1E-217",
		"123456789012345",
		"1.00000000000000000000",
		"0.000",
		"1.79769313486231e308",
		NULL,
	};
	static const char *const kept[] = {
		"9223372036854775808",
		"-9223372036854775809",
		"123456789012345678901234567890",
		"0.1234567890123456",
		"3.141592653589793",
		"1.00000000000000000000001",
		"1e400",
		"-1e400",
		"1e-400",
		"2.2e-310",
		NULL,
	};
	for (const char *const *p = exact; *p; p++)
		if (!kilt_json_number_exact(*p, strlen(*p)) ||
		    kilt_json_number_keep(*p, strlen(*p)))
			fail_msg("%s: jansson holds it exactly", *p);
	for (const char *const *p = kept; *p; p++) {
		json_auto_t *v = kilt_json_number_keep(*p, strlen(*p));
		const char *t;
		size_t n;
		if (kilt_json_number_exact(*p, strlen(*p)) || !kilt_json_is_raw_number(v, &t, &n) ||
		    n != strlen(*p) || memcmp(t, *p, n) != 0)
			fail_msg("%s: must be kept as written", *p);
	}
	/* not JSON numbers at all */
	static const char *const not_numbers[] = {
		"",  "-", "01", "1.", ".5", "+1", "1e", "0x10", "1_000", "12345678901234567890x",
		NULL
	};
	for (const char *const *p = not_numbers; *p; p++)
		assert_null(kilt_json_number_keep(*p, strlen(*p)));
	/* YAML 1.1's spelling of the same numbers */
	static const char *const yaml11[][2] = {
		{ "1e400", "1.0e+400" },
		{ "-5E-400", "-5.0E-400" },
		{ "1.5e400", "1.5e+400" },
		{ "1.0e-400", "1.0e-400" },
		{ "0.12345678901234567890", "0.12345678901234567890" },
		{ "123456789012345678901234567890", "123456789012345678901234567890" },
	};
	for (size_t i = 0; i < sizeof(yaml11) / sizeof(yaml11[0]); i++) {
		char out[64];
		size_t n = kilt_json_number_yaml11(yaml11[i][0], strlen(yaml11[i][0]), out,
						   strlen(yaml11[i][0]) + 5);
		assert_int_equal(n, strlen(yaml11[i][1]));
		assert_string_equal(out, yaml11[i][1]);
	}
	/* a string is never a kept number */
	json_auto_t *s = json_string("123456789012345678901234567890");
	assert_false(kilt_json_is_raw_number(s, NULL, NULL));
}

/* A template's big numbers come out as they went in, wherever they stand. */
static void test_json__kept_as_written(void **state)
{
	(void)state;
	const char *text =
		"{\"Big\": 123456789012345678901234567890, \"Neg\": -99999999999999999999,"
		" \"List\": [18446744073709551615,1.00000000000000000000001, 1e400],"
		"\"Small\":1e-400, \"Int\": 7, \"Real\": 0.5, \"s\": \"12345678901234567890"
		"1234567890\"}";
	json_auto_t *v = load(text, JSON_REJECT_DUPLICATES);
	assert_true(kilt_json_is_raw_number(json_object_get(v, "Big"), NULL, NULL));
	assert_true(json_is_integer(json_object_get(v, "Int")));
	assert_true(json_is_real(json_object_get(v, "Real")));
	assert_true(json_is_string(json_object_get(v, "s")));
	assert_false(kilt_json_is_raw_number(json_object_get(v, "s"), NULL, NULL));
	_cleanup_free_ char *c = kilt_json_dumps(v, JSON_COMPACT);
	assert_string_equal(c,
			    "{\"Big\":123456789012345678901234567890,\"Neg\":-99999999999999999999,"
			    "\"List\":[18446744073709551615,1.00000000000000000000001,1e400],"
			    "\"Small\":1e-400,\"Int\":7,\"Real\":0.5,\"s\":"
			    "\"123456789012345678901234567890\"}");
	_cleanup_free_ char *i = kilt_json_dumps(v, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	assert_string_equal(i, "{\n  \"Big\": 123456789012345678901234567890,\n"
			       "  \"Neg\": -99999999999999999999,\n  \"List\": [\n"
			       "    18446744073709551615,\n    1.00000000000000000000001,\n"
			       "    1e400\n  ],\n  \"Small\": 1e-400,\n  \"Int\": 7,\n"
			       "  \"Real\": 0.5,\n  \"s\": \"123456789012345678901234567890\"\n}");
	/* jansson's writers refuse a kept number rather than write something else */
	char *j = json_dumps(v, JSON_COMPACT);
	assert_null(j);
	/* and it reads back the same */
	json_auto_t *back = load(c, 0);
	assert_true(json_equal(v, back));
	/* a number alone, and one in a DECODE_ANY text */
	json_auto_t *one = load("123456789012345678901234567890", JSON_DECODE_ANY);
	assert_true(kilt_json_is_raw_number(one, NULL, NULL));
}

/* Without kept numbers, the writers give jansson's bytes. */
static void test_json__same_bytes_as_jansson(void **state)
{
	(void)state;
	const char *text =
		"{\"a\": [], \"b\": {}, \"c\": [1, -2, 0.1, 1e300, true, false, null, \"x\"],"
		" \"d\": {\"e\": {\"f\": [[], [{}], [1, [2, [3]]]]}}, \"esc\": \"q\\\" b\\\\ "
		"\\n\\r\\t\\b\\f\\u0001\\u001f / \\u00e9 \\u2028 \\ud83d\\ude00\","
		" \"\\u00e9key\": 3.14159265358979}";
	json_auto_t *v = load(text, 0);
	static const size_t flags[] = {
		0,
		JSON_COMPACT,
		JSON_INDENT(2),
		JSON_INDENT(4) | JSON_COMPACT,
		JSON_INDENT(2) | JSON_REAL_PRECISION(15),
		JSON_COMPACT | JSON_REAL_PRECISION(6),
		JSON_ESCAPE_SLASH,
		JSON_INDENT(31),
	};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		_cleanup_free_ char *want = json_dumps(v, flags[i]);
		_cleanup_free_ char *got = kilt_json_dumps(v, flags[i]);
		if (!want || !got || strcmp(want, got) != 0)
			fail_msg("flags %zx:\nwant %s\n got %s", flags[i], want, got);
	}
	/* a scalar needs JSON_ENCODE_ANY, as with jansson */
	json_auto_t *n = json_integer(3);
	assert_null(kilt_json_dumps(n, 0));
	_cleanup_free_ char *three = kilt_json_dumps(n, JSON_ENCODE_ANY);
	assert_string_equal(three, "3");
	/* a string that is not UTF-8 is refused */
	json_auto_t *bad = json_pack("[o]", json_stringn_nocheck("\xc3", 1));
	assert_null(kilt_json_dumps(bad, 0));
}

/* Errors are where they are in the input, not in the text jansson was handed. */
static void test_json__errors_located(void **state)
{
	(void)state;
	json_error_t jerr, want;
	/* the same error with a short number standing where the big one stands */
	const char *big = "{\"a\": 123456789012345678901234567890,\n \"b\": [1,\n  tru]}";
	char same[64];
	snprintf(same, sizeof(same), "%s", big);
	memset(same + 7, ' ', 29); /* "1" and spaces where the 30 digits are */
	assert_null(kilt_json_loadb(big, strlen(big), 0, &jerr));
	assert_null(json_loadb(same, strlen(same), 0, &want));
	assert_int_equal(jerr.line, want.line);
	assert_int_equal(jerr.column, want.column);
	assert_int_equal(jerr.position, want.position);
	assert_string_equal(jerr.text, want.text);
	/* a number where a key must be: jansson's own message about the input */
	const char *key = "{\"a\": 1, 123456789012345678901234567890: 2}";
	assert_null(kilt_json_loadb(key, strlen(key), 0, &jerr));
	assert_int_equal(jerr.line, 1);
	assert_non_null(strstr(jerr.text, "string or '}' expected"));
	/* duplicate keys still refused */
	const char *dup = "{\"a\": 123456789012345678901234567890, \"a\": 1}";
	assert_null(kilt_json_loadb(dup, strlen(dup), JSON_REJECT_DUPLICATES, &jerr));
	assert_non_null(strstr(jerr.text, "duplicate object key"));
	/* the stand-ins need NUL in strings: an input string holding one is still refused
	 * without JSON_ALLOW_NUL */
	const char *nul = "[\"a\\u0000\", 123456789012345678901234567890]";
	assert_null(kilt_json_loadb(nul, strlen(nul), 0, &jerr));
	json_auto_t *ok = load(nul, JSON_ALLOW_NUL);
	assert_int_equal(json_string_length(json_array_get(ok, 0)), 2);
	/* an input string spelled like a stand-in is not taken for a number */
	const char *forged = "[\"\\u0000kilt-number:0\", 123456789012345678901234567890]";
	json_t *f = kilt_json_loadb(forged, strlen(forged), JSON_ALLOW_NUL, &jerr);
	if (f) {
		assert_true(json_is_string(json_array_get(f, 0)));
		assert_false(kilt_json_is_raw_number(json_array_get(f, 0), NULL, NULL));
		assert_true(kilt_json_is_raw_number(json_array_get(f, 1), NULL, NULL));
		json_decref(f);
	}
	/* no error wanted (cfn-stream's splitter asks so): NULL, no crash (fuzz_ecs) */
	assert_null(kilt_json_loadb(big, strlen(big), 0, NULL));
	/* a stream of documents is jansson's own reading, with its end position */
	const char *stream = "[1] [123456789012345678901234567890]";
	json_auto_t *first = kilt_json_loadb(stream, strlen(stream), JSON_DISABLE_EOF_CHECK, &jerr);
	assert_non_null(first);
	assert_int_equal(jerr.position, 3);
	/* syntax that is not a JSON number stays jansson's error */
	const char *bad = "[123456789012345678901234567890x]";
	assert_null(kilt_json_loadb(bad, strlen(bad), 0, &jerr));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json__exact),
		cmocka_unit_test(test_json__kept_as_written),
		cmocka_unit_test(test_json__same_bytes_as_jansson),
		cmocka_unit_test(test_json__errors_located),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
