/* SPDX-License-Identifier: Apache-2.0 */
/* kilt_json_dump_callback / kilt_json_dumps (lib/json-write.c) against jansson's own dump, byte
 * for byte: hand-picked values (escapes, UTF-8, reals, empty and nested containers) and random
 * documents under every flag accepted; NULL and -1 where jansson gives them; output in runs.
 * (Kept numbers are unit/test_json's.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

static const size_t flag_sets[] = {
	0,
	JSON_COMPACT,
	JSON_INDENT(2),
	JSON_INDENT(4) | JSON_COMPACT,
	JSON_INDENT(31),
	JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15),
	JSON_COMPACT | JSON_ENCODE_ANY,
	JSON_COMPACT | JSON_REAL_PRECISION(6),
	JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY,
	JSON_ENCODE_ANY,
	JSON_INDENT(2) | JSON_ESCAPE_SLASH,
	JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_ENCODE_ANY,
};

struct collect {
	struct kbuf b;
	size_t calls, fail_at; /* fail_at: the call that fails (0: none) */
};

static int collect(const char *p, size_t n, void *userdata)
{
	struct collect *c = userdata;
	if (++c->calls == c->fail_at)
		return -1;
	return kbuf_add(&c->b, p, n);
}

/* Both forms give jansson's bytes (or its NULL / -1) for every flag set. */
static void check_same(const json_t *v)
{
	for (size_t i = 0; i < ARRAY_SIZE(flag_sets); i++) {
		size_t f = flag_sets[i];
		_cleanup_free_ char *want = json_dumps(v, f);
		_cleanup_free_ char *got = kilt_json_dumps(v, f);
		if (!want) {
			assert_null(got);
		} else {
			assert_non_null(got);
			if (strcmp(want, got) != 0)
				fail_msg("flags %#zx:\nwant %s\ngot  %s", f, want, got);
		}
		struct collect c = { .fail_at = 0 };
		kbuf_init(&c.b, SIZE_MAX / 2);
		int r = kilt_json_dump_callback(v, f, collect, &c);
		assert_int_equal(r, want ? 0 : -1);
		if (want)
			assert_string_equal(c.b.data ? c.b.data : "", want);
		kbuf_done(&c.b);
	}
}

static void test_json_write__values(void **state)
{
	(void)state;
	static const char *const texts[] = {
		"{}",
		"[]",
		"{\"a\": {}, \"b\": [], \"c\": [{}], \"d\": [[[]]]}",
		"[1, -2, 0, 9223372036854775807, -9223372036854775808]",
		"[0.1, 1.5, -0.0, 1e300, 2.5e-8, 3.0, 123456789.123456789, 1e-320]",
		"{\"esc\": \"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001 \\u001f \\u007f\"}",
		"{\"nul\": \"a\\u0000b\", \"k\\u0000\": 1}",
		"{\"utf8\": \"\\u00e9 \\u20ac \\ud83d\\ude00 \\u2028\", \"\\u00e9\": \"x\"}",
		"{\"Fn::Sub\": \"${AWS::Region}\", \"$\": \"$$\"}",
		"[true, false, null, \"\", {\"\": \"\"}]",
		"{\"deep\": [[[[[[[[[[{\"x\": [1, {\"y\": null}]}]]]]]]]]]]}",
		"{\"z\": 1, \"a\": 2, \"m\": {\"b\": 1, \"a\": [3, 2, 1]}}",
		"\"a scalar\"",
		"42",
		"4.25",
		"null",
	};
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		json_error_t e;
		json_t *v = json_loads(texts[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
		if (!v) /* jansson refuses NUL in keys: the case without that key */
			continue;
		check_same(v);
		json_decref(v);
	}
	/* a string that is not UTF-8 (jansson's json_stringn_nocheck lets one in; a first byte
	 * 0xff would make it a kept number) */
	json_t *bad = json_pack("{so}", "k", json_stringn_nocheck("a\xfe\xff", 3));
	check_same(bad);
	json_decref(bad);
	assert_null(kilt_json_dumps(NULL, JSON_COMPACT));
	/* flags whose bytes are not written here are refused, not written otherwise */
	json_t *o = json_pack("{si}", "a", 1);
	assert_null(kilt_json_dumps(o, JSON_SORT_KEYS));
	assert_null(kilt_json_dumps(o, JSON_ENSURE_ASCII));
	json_decref(o);
}

/* A random value: objects, arrays, every scalar, strings with escapes and UTF-8. */
static json_t *random_value(unsigned *seed, int depth)
{
	static const char *const words[] = { "a",
					     "Name",
					     "\"q\"",
					     "back\\slash",
					     "tab\t",
					     "a/b",
					     "\xc3\xa9t\xc3\xa9",
					     "\xf0\x9f\x98\x80",
					     "",
					     "ctl\x01\x1f",
					     "${X}" };
	int kind = depth > 5 ? rand_r(seed) % 6 + 2 : rand_r(seed) % 8;
	switch (kind) {
	case 0: {
		json_t *o = json_object();
		int n = rand_r(seed) % 6;
		for (int i = 0; i < n; i++) {
			char key[64];
			snprintf(key, sizeof(key), "%s%d",
				 words[(size_t)rand_r(seed) % ARRAY_SIZE(words)], i);
			json_object_set_new(o, key, random_value(seed, depth + 1));
		}
		return o;
	}
	case 1: {
		json_t *a = json_array();
		int n = rand_r(seed) % 6;
		for (int i = 0; i < n; i++)
			json_array_append_new(a, random_value(seed, depth + 1));
		return a;
	}
	case 2:
		return json_string(words[(size_t)rand_r(seed) % ARRAY_SIZE(words)]);
	case 3:
		return json_integer((json_int_t)rand_r(seed) - RAND_MAX / 2);
	case 4:
		return json_real((double)rand_r(seed) / 7.0 - 1000.0);
	case 5:
		return json_true();
	case 6:
		return json_false();
	default:
		return json_null();
	}
}

static void test_json_write__random_documents(void **state)
{
	(void)state;
	unsigned seed = 12;
	for (int i = 0; i < 2000; i++) {
		json_t *v = random_value(&seed, 0);
		check_same(v);
		json_decref(v);
	}
}

/* A large value goes out in runs of up to 64 KiB (jansson: a few bytes a call); a failing
 * write stops it with -1, as jansson's. */
static void test_json_write__runs_and_write_failure(void **state)
{
	(void)state;
	json_t *a = json_array();
	for (int i = 0; i < 20000; i++)
		json_array_append_new(a, json_pack("{siss}", "i", i, "s", "some text"));
	_cleanup_free_ char *want = json_dumps(a, JSON_INDENT(2));
	struct collect c = { .fail_at = 0 };
	kbuf_init(&c.b, SIZE_MAX / 2);
	assert_int_equal(kilt_json_dump_callback(a, JSON_INDENT(2), collect, &c), 0);
	assert_string_equal(c.b.data, want);
	size_t len = strlen(want);
	assert_true(c.calls >= len / (64u << 10) && c.calls <= len / (64u << 10) + 1);
	kbuf_done(&c.b);

	struct collect f = { .fail_at = 2 };
	kbuf_init(&f.b, SIZE_MAX / 2);
	assert_int_equal(kilt_json_dump_callback(a, JSON_INDENT(2), collect, &f), -1);
	assert_int_equal(f.calls, 2);
	kbuf_done(&f.b);
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_write__values),
		cmocka_unit_test(test_json_write__random_documents),
		cmocka_unit_test(test_json_write__runs_and_write_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
