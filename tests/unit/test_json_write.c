/* SPDX-License-Identifier: Apache-2.0 */
/* kilt_json_dump_callback / kilt_json_dumps (lib/json-write.c) against jansson's own dump, byte
 * for byte: hand-picked values (escapes, UTF-8, reals, empty and nested containers) and random
 * documents under every flag accepted; NULL and -1 where jansson gives them; output in runs.
 * (Kept numbers are unit/test_json's.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "json-write.h"
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
		"[9, 10, -10, 99, 100, 1000000000000000000, -999999999999999999, -1]",
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

/* Strings of every length to 40 with one byte that needs a look at every position (the writer
 * reads eight bytes at a time), as values and as keys: the bytes of jansson for a valid one; for
 * one that is not UTF-8, -2 with nothing of it left in the output. */
static void test_json_write__strings_every_position(void **state)
{
	(void)state;
	/* long strings (over 4 KiB: room made as they go) with every kind of byte, one of them
	 * not UTF-8 at its very end */
	static const char piece[] =
		"plain text \"quoted\" back\\slash a/b \n\t\x01 \xc3\xa9\xe2\x82\xac ";
	for (int bad = 0; bad < 2; bad++) {
		struct kbuf t;
		kbuf_init(&t, SIZE_MAX / 2);
		while (t.len < 9000)
			kbuf_add(&t, piece, sizeof(piece) - 1);
		if (bad)
			kbuf_add(&t, "\xe2\x82", 2);
		json_t *v = json_stringn_nocheck(t.data, t.len);
		json_t *doc = json_pack("[O]", v);
		check_same(doc);
		struct kilt_json_out o;
		kilt_json_out_init(&o, NULL, NULL);
		kilt_json_out_raw(&o, "[", 1);
		assert_int_equal(kilt_json_out_string(&o, t.data, t.len, 0), bad ? -2 : 0);
		if (bad)
			assert_string_equal(o.text.data, "[");
		kilt_json_out_done(&o);
		json_decref(doc);
		json_decref(v);
		kbuf_done(&t);
	}
	static const char *const specials[] = { "\"",
						"\\",
						"/",
						"\n",
						"\x01",
						"\x1f",
						"\x7f",
						"\xc3\xa9",
						"\xe2\x82\xac",
						"\xf0\x9f\x98\x80",
						"\xc3",
						"\xff",
						"\xed\xa0\x80",
						"\xc0\xaf" };
	for (size_t s = 0; s < ARRAY_SIZE(specials); s++) {
		size_t sl = strlen(specials[s]);
		for (size_t len = 0; len <= 40; len++) {
			for (size_t at = 0; at <= len; at++) {
				if (at == 0 && specials[s][0] == '\xff')
					continue; /* a kept number's mark (unit/test_json) */
				char text[64];
				memset(text, 'x', len);
				memcpy(text + at, specials[s], sl);
				memset(text + at + sl, 'y', len - at);
				size_t n = len + sl;
				json_t *v = json_stringn_nocheck(text, n);
				json_t *doc = json_pack("[sO]", "before", v);
				check_same(doc);
				/* as a key, first and after another member (a key that is not
				 * UTF-8: jansson writes a broken text, kilt none) */
				json_t *keyed = json_object();
				json_object_setn_new_nocheck(keyed, text, n, json_integer(1));
				json_t *two = json_pack("{s:s}", "", "x");
				json_object_setn_new_nocheck(two, text, n, json_string("z"));
				if (kilt_utf8_valid_prefix((const unsigned char *)text, n) == n) {
					check_same(keyed);
					check_same(two);
				} else {
					assert_null(kilt_json_dumps(keyed, JSON_COMPACT));
					assert_null(kilt_json_dumps(two, JSON_COMPACT));
				}
				json_decref(keyed);
				json_decref(two);
				/* by itself: -2 leaves the output as it was */
				struct kilt_json_out o;
				kilt_json_out_init(&o, NULL, NULL);
				kilt_json_out_raw(&o, "[", 1);
				int r = kilt_json_out_string(&o, text, n, 0);
				_cleanup_free_ char *want =
					json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
				if (want) {
					assert_int_equal(r, 0);
					assert_int_equal(o.text.len, 1 + strlen(want));
					assert_memory_equal(o.text.data + 1, want, strlen(want));
				} else {
					assert_int_equal(r, -2);
					assert_int_equal(o.text.len, 1);
					assert_string_equal(o.text.data, "[");
				}
				kilt_json_out_done(&o);
				json_decref(doc);
				json_decref(v);
			}
		}
	}
}

/* Strings dense with bytes to escape (JSON text in a string, as the status annotation is): random
 * runs of plain text, quotes, backslashes, slashes, control characters, DEL and UTF-8 (valid,
 * and now and then not) of every length to 200, and a whole document as a string. */
static void test_json_write__dense_escapes(void **state)
{
	(void)state;
	static const char *const pieces[] = { "a",
					      "bc",
					      "defghijk",
					      "\"",
					      "\\",
					      "/",
					      "\n",
					      "\t",
					      "\x01",
					      "\x1f",
					      "\x7f",
					      "\xc3\xa9",
					      "\xe2\x82\xac",
					      "\xf0\x9f\x98\x80",
					      "{\"k\":[\"v\"]}" };
	unsigned seed = 21;
	for (int round = 0; round < 3000; round++) {
		char text[256];
		size_t want_len = (size_t)rand_r(&seed) % 200, n = 0;
		while (n < want_len) {
			const char *pc = pieces[(size_t)rand_r(&seed) % ARRAY_SIZE(pieces)];
			size_t pl = strlen(pc);
			if (n + pl > want_len)
				break;
			memcpy(text + n, pc, pl);
			n += pl;
		}
		if (n && round % 10 == 9)
			text[(size_t)rand_r(&seed) % n] = (char)0xc3; /* maybe not UTF-8 any more */
		if (n && (unsigned char)text[0] == 0xff)
			text[0] = 'x';
		json_t *v = json_stringn_nocheck(text, n);
		json_t *doc = json_pack("[sO]", "before", v);
		check_same(doc);
		json_decref(doc);
		json_decref(v);
	}
	json_t *inner = json_pack("{s:s, s:[{s:s, s:{s:[s, s, s]}}], s:b, s:i}", "recipe", "falco",
				  "containers", "name", "app", "original", "command", "/app",
				  "--config", "/etc/app/a b.yaml", "created", 1, "version", 1);
	_cleanup_free_ char *text = kilt_json_dumps(inner, JSON_COMPACT);
	json_t *doc = json_pack("{s:s}", "kilt.dev/status", text);
	check_same(doc);
	json_decref(doc);
	json_decref(inner);
}

/* The real `v` written with JSON_REAL_PRECISION(prec): jansson's bytes. */
static void assert_real_as_jansson(const json_t *v, int prec)
{
	size_t f = JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(prec);
	_cleanup_free_ char *want = json_dumps(v, f);
	_cleanup_free_ char *got = kilt_json_dumps(v, f);
	assert_non_null(want);
	assert_non_null(got);
	if (strcmp(want, got) != 0)
		fail_msg("%.17g precision %d: want %s got %s", json_real_value(v), prec, want, got);
}

/* Reals of every magnitude (random bits, and the edges: zeros, integers, powers of ten about
 * where %g takes an exponent, the smallest and largest) at every precision: jansson's bytes,
 * as a value and through kilt_json_member_real; a value that is not finite, or a precision
 * jansson has no flag for, is refused. */
static void test_json_write__reals(void **state)
{
	(void)state;
	static const double edges[] = { 0.0,
					-0.0,
					1.0,
					-2.0,
					10.0,
					100000.0,
					1e5,
					1e-5,
					1e-4,
					1e15,
					1e16,
					1e17,
					1e21,
					1e22,
					0.1,
					0.25,
					123456.5,
					999999.5,
					1.5e-300,
					1e300,
					4.9e-324,
					2.2250738585072014e-308,
					1.7976931348623157e308,
					0.0001234,
					3.14159265358979 };
	unsigned seed = 5;
	for (size_t i = 0; i < ARRAY_SIZE(edges) + 3000; i++) {
		double d;
		if (i < ARRAY_SIZE(edges)) {
			d = edges[i];
		} else {
			uint64_t bits = (uint64_t)rand_r(&seed) << 33 ^
					(uint64_t)rand_r(&seed) << 11 ^ (uint64_t)rand_r(&seed);
			memcpy(&d, &bits, sizeof(d));
			if (!isfinite(d))
				continue;
		}
		json_t *v = json_real(d);
		assert_non_null(v);
		for (int prec = 0; prec <= 31; prec += i < ARRAY_SIZE(edges) ? 1 : 5) {
			assert_real_as_jansson(v, prec);
			struct kbuf a, b;
			kbuf_init(&a, SIZE_MAX / 2);
			kbuf_init(&b, SIZE_MAX / 2);
			kilt_json_object_open(&a);
			kilt_json_object_open(&b);
			assert_int_equal(kilt_json_member_string(&a, "k", "v"), 0);
			assert_int_equal(kilt_json_member_string(&b, "k", "v"), 0);
			assert_int_equal(kilt_json_member_value(&a, "durationMs", v,
								JSON_REAL_PRECISION(prec)),
					 0);
			assert_int_equal(kilt_json_member_real(&b, "durationMs", d, prec), 0);
			assert_string_equal(a.data, b.data);
			kbuf_done(&a);
			kbuf_done(&b);
		}
		json_decref(v);
	}
	struct kbuf b;
	kbuf_init(&b, SIZE_MAX / 2);
	kilt_json_object_open(&b);
	assert_int_equal(kilt_json_member_real(&b, "a", NAN, 6), -2);
	assert_int_equal(kilt_json_member_real(&b, "a", INFINITY, 6), -2);
	assert_int_equal(kilt_json_member_real(&b, "a", 1.5, 32), -2);
	assert_int_equal(kilt_json_member_real(&b, "a", 1.5, -1), -2);
	assert_string_equal(b.data, "{");
	kbuf_done(&b);
}

/* One real at precisions 1 to 9 (those the writer works out without printf when the text has
 * no exponent): jansson's bytes. */
static void check_short_real(double d)
{
	json_t *v = json_real(d);
	assert_non_null(v);
	for (int prec = 1; prec <= 9; prec++)
		assert_real_as_jansson(v, prec);
	json_decref(v);
}

/* 10^j (the nearest double or about), and the next double after a positive x up or down:
 * without libm. */
static double p10(int j)
{
	double x = 1;
	for (; j > 0; j--)
		x *= 10;
	for (; j < 0; j++)
		x /= 10;
	return x;
}

static double next_double(double x, bool up)
{
	uint64_t bits;
	memcpy(&bits, &x, sizeof(x));
	bits = up ? bits + 1 : bits - 1;
	memcpy(&x, &bits, sizeof(x));
	return x;
}

/* Reals about the range written without printf (1e-4 up to 10^precision): durations in
 * milliseconds as the log line makes them from nanoseconds, random magnitudes, halves and
 * other exact ties at every digit with their neighbours, powers of ten and the values about
 * them that round up to the next (or to an exponent). */
static void test_json_write__reals_without_printf(void **state)
{
	(void)state;
	unsigned seed = 11;
	for (int i = 0; i < 20000; i++) {
		uint64_t ns = ((uint64_t)rand_r(&seed) << 20 ^ (uint64_t)rand_r(&seed)) %
			      (i % 2 ? 5000000ull : 20000000000ull);
		double took = (double)ns / 1e9;
		check_short_real(took * 1000);
		double mag =
			p10(rand_r(&seed) % 16 - 6) * (1 + (double)rand_r(&seed) / RAND_MAX * 9);
		check_short_real(rand_r(&seed) % 2 ? mag : -mag);
	}
	for (int j = -5; j <= 9; j++) {
		for (int m = 0; m < 400; m++) {
			/* m + 0.5, m + 0.25... scaled by 10^j: ties where they are exact */
			double t = ((double)(m * 37 % 1000) + 0.5) * p10(j);
			double q = ((double)(m * 53 % 100000) + 0.25) * p10(j);
			double base[] = {
				t,   q, p10(j), 9.5 * p10(j), 9.9999995 * p10(j), 99999.95 * p10(j),
				1e-4
			};
			for (size_t b = 0; b < ARRAY_SIZE(base); b++) {
				double x = base[b];
				for (int step = 0; step < 3; step++) {
					check_short_real(x);
					check_short_real(-x);
					x = next_double(x, true);
				}
				x = base[b];
				for (int step = 0; step < 2; step++) {
					x = next_double(x, false);
					check_short_real(x);
				}
			}
		}
	}
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

/* An object written member by member: the bytes of jansson's object built with the same
 * members (a string member that json_string refuses left out of both), after text already in
 * the buffer. */
static void test_json_write__members(void **state)
{
	(void)state;
	static const char *const strings[] = {
		"plain",   "q\"uote", "a/b", "\xc3\xa9t\xc3\xa9",     "ctl\x01", "",
		"bad\xff", "\xc3",    NULL,  "12345678901234567890\\"
	};
	static const char *const keys[] = { "uid", "k/ey", "\xc3\xa9", "q\"", "durationMs" };
	unsigned seed = 7;
	for (int round = 0; round < 500; round++) {
		json_t *want = json_object();
		struct kbuf b;
		kbuf_init(&b, SIZE_MAX / 2);
		kbuf_adds(&b, "before ");
		kilt_json_object_open(&b);
		int n = rand_r(&seed) % 7;
		for (int i = 0; i < n; i++) {
			char key[32];
			snprintf(key, sizeof(key), "%s%d",
				 keys[(size_t)rand_r(&seed) % ARRAY_SIZE(keys)], i);
			if (rand_r(&seed) % 3) {
				const char *v =
					strings[(size_t)rand_r(&seed) % ARRAY_SIZE(strings)];
				json_t *js = v ? json_string(v) : NULL;
				int r = kilt_json_member_string(&b, key, v);
				assert_int_equal(r, js ? 0 : -2);
				json_object_set_new(want, key, js);
			} else {
				json_t *v = random_value(&seed, 3);
				assert_int_equal(
					kilt_json_member_value(&b, key, v, JSON_REAL_PRECISION(6)),
					0);
				json_object_set_new(want, key, v);
			}
		}
		kilt_json_object_close(&b);
		_cleanup_free_ char *text = json_dumps(want, JSON_COMPACT | JSON_REAL_PRECISION(6));
		assert_non_null(text);
		assert_true(strncmp(b.data, "before ", 7) == 0);
		if (strcmp(b.data + 7, text) != 0)
			fail_msg("want %s\ngot  %s", text, b.data + 7);
		kbuf_done(&b);
		json_decref(want);
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

/* `v` written by kilt_json_out_value with `flags` after k bytes already in a buffer of 1 KiB, for
 * every k to its end (the compact writer writes straight into the buffer while the value fits,
 * the general way otherwise: the room ends at every offset of the text): the k bytes, then
 * `want` (NULL: -2 and the k bytes alone); and in a buffer whose maximum is the text's end, or
 * one byte short of it (-1, nothing past the maximum). */
static void check_every_room(const json_t *v, size_t flags, const char *want)
{
	size_t wl = want ? strlen(want) : 0;
	char fill[1024];
	memset(fill, '.', sizeof(fill));
	for (size_t k = 0; k < sizeof(fill); k++) {
		struct kilt_json_out o;
		kilt_json_out_init(&o, NULL, NULL);
		kilt_json_out_reserve(&o, sizeof(fill) - 1);
		assert_int_equal(o.text.cap, sizeof(fill));
		assert_int_equal(kilt_json_out_raw(&o, fill, k), 0);
		int r = kilt_json_out_value(&o, v, flags, 0);
		if (!want) {
			assert_int_equal(r, -2);
		} else {
			if (r != 0 || o.text.len != k + wl ||
			    memcmp(o.text.data + k, want, wl) != 0)
				fail_msg("after %zu bytes: %d\nwant %s\ngot  %.*s", k, r, want,
					 (int)(o.text.len - k), o.text.data + k);
			assert_memory_equal(o.text.data, fill, k);
			assert_int_equal(o.text.data[k + wl], '\0');
		}
		kilt_json_out_done(&o);
	}
	for (size_t short_by = 0; want && short_by < 2; short_by++) {
		struct kilt_json_out o;
		kilt_json_out_init(&o, NULL, NULL);
		kilt_json_out_reserve(&o, 8 * wl + 1024);
		o.text.max = 16 + wl - short_by;
		kilt_json_out_raw(&o, fill, 16);
		int r = kilt_json_out_value(&o, v, flags, 0);
		assert_int_equal(r, short_by ? -1 : 0);
		assert_true(o.text.len <= o.text.max);
		if (!short_by)
			assert_memory_equal(o.text.data + 16, want, wl);
		kilt_json_out_done(&o);
	}
}

/* The compact forms at every room: hand-picked values, strings of 1 to 70 bytes with a byte to
 * look at in every position (the writer checks sixteen, eight and four bytes at a time), kept
 * numbers, strings dense with escapes, random documents; strings that are not UTF-8. */
static void test_json_write__room_at_every_offset(void **state)
{
	(void)state;
	static const size_t compact_flags[] = {
		JSON_COMPACT | JSON_ENCODE_ANY,
		JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_ENCODE_ANY,
		JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6),
	};
	static const char *const texts[] = {
		"{}",
		"[]",
		"{\"a\": {}, \"b\": [], \"c\": [{}], \"d\": [[[]]]}",
		"[1, -2, 0, 9223372036854775807, -9223372036854775808]",
		"[0.1, 1.5, -0.0, 1e300, 2.5e-8, 3.0, 123456789.123456789, 1e-320]",
		"{\"esc\": \"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001 \\u001f \\u007f\"}",
		"{\"utf8\": \"\\u00e9 \\u20ac \\ud83d\\ude00 \\u2028\", \"\\u00e9\": \"x\"}",
		"[true, false, null, \"\", {\"\": \"\"}]",
		"{\"deep\": [[[[[[[[[[{\"x\": [1, {\"y\": null}]}]]]]]]]]]]}",
		"{\"name\": \"kilt-copy-falco\", \"image\": "
		"\"registry.example.com/kilt/falco-agent:0.32.2\", "
		"\"command\": [\"/kilt/bin/kilt-wait\", \"--copy\", \"/kilt\", "
		"\"/kilt-volume/0\"], "
		"\"resources\": {\"requests\": {\"cpu\": \"10m\", \"memory\": \"16Mi\"}}, "
		"\"securityContext\": {\"allowPrivilegeEscalation\": false, \"runAsUser\": 0}}",
		"\"{\\\"recipe\\\":\\\"falco\\\",\\\"containers\\\":[{\\\"name\\\":\\\"app\\\","
		"\\\"args\\\":null}],"
		"\\\"path\\\":\\\"a\\\\\\\\b\\\\n/c\\\",\\\"version\\\":1}\"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		json_error_t e;
		json_t *v = json_loads(texts[i], JSON_DECODE_ANY, &e);
		if (!v)
			fail_msg("%s: %s", texts[i], e.text);
		for (size_t f = 0; f < ARRAY_SIZE(compact_flags); f++) {
			_cleanup_free_ char *want = json_dumps(v, compact_flags[f]);
			check_every_room(v, compact_flags[f], want);
		}
		json_decref(v);
	}
	/* a byte to look at in every position of strings of every length to 70 */
	static const char *const specials[] = { "\"",	    "\\",	    "/",
						"\n",	    "\x01",	    "\x7f",
						"\xc3\xa9", "\xe2\x82\xac", "\xc3" };
	for (size_t s = 0; s < ARRAY_SIZE(specials); s++) {
		size_t sl = strlen(specials[s]);
		for (size_t len = 0; len <= 70; len++) {
			for (size_t at = 0; at <= len; at += len < 20 ? 1 : 7) {
				char text[80];
				memset(text, 'x', len);
				memcpy(text + at, specials[s], sl);
				memset(text + at + sl, 'y', len - at);
				json_t *str = json_stringn_nocheck(text, len + sl);
				json_t *doc = json_pack("{sOso}", "k", str, "l", json_array());
				json_array_append(json_object_get(doc, "l"), str);
				json_object_setn_new_nocheck(doc, text, len + sl, json_true());
				for (size_t f = 0; f < 2; f++) {
					_cleanup_free_ char *want =
						json_dumps(doc, compact_flags[f]);
					if (kilt_utf8_valid_prefix((const unsigned char *)text,
								   len + sl) != len + sl)
						want = (free(want), NULL); /* jansson writes it */
					check_every_room(doc, compact_flags[f], want);
				}
				json_decref(doc);
				json_decref(str);
			}
		}
	}
	/* kept numbers as written */
	json_t *kept = json_pack("[o, s, {so}]", kilt_json_raw_number("1e400", 5), "x", "n",
				 kilt_json_raw_number("123456789012345678901234567890", 30));
	check_every_room(kept, JSON_COMPACT,
			 "[1e400,\"x\",{\"n\":123456789012345678901234567890}]");
	json_decref(kept);
	json_t *one = kilt_json_raw_number("-0.10000000000000000000001", 26);
	check_every_room(one, JSON_COMPACT | JSON_ENCODE_ANY, "-0.10000000000000000000001");
	json_decref(one);
	/* random documents */
	unsigned seed = 33;
	for (int i = 0; i < 60; i++) {
		json_t *v = random_value(&seed, 0);
		_cleanup_free_ char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		check_every_room(v, JSON_COMPACT | JSON_ENCODE_ANY, want);
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
		cmocka_unit_test(test_json_write__strings_every_position),
		cmocka_unit_test(test_json_write__dense_escapes),
		cmocka_unit_test(test_json_write__reals),
		cmocka_unit_test(test_json_write__reals_without_printf),
		cmocka_unit_test(test_json_write__random_documents),
		cmocka_unit_test(test_json_write__members),
		cmocka_unit_test(test_json_write__runs_and_write_failure),
		cmocka_unit_test(test_json_write__room_at_every_offset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
