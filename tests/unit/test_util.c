/* SPDX-License-Identifier: Apache-2.0 */
/* The shared core helpers: errors (set, wrap, format), bounded buffers and file reading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

static void test_util__error_set_and_format(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	char buf[1024];
	assert_int_equal(kilt_error_set(&err, -EINVAL, "r.conf", 3, 7, "expected %s", "'}'"),
			 -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_string_equal(kilt_error_format(&err, buf, sizeof(buf)), "r.conf:3:7: expected '}'");

	kilt_error_set(&err, -ENOENT, "r.conf", 0, 0, "cannot open");
	assert_string_equal(kilt_error_format(&err, buf, sizeof(buf)), "r.conf: cannot open");

	kilt_error_setf(&err, -EIO, "plain %d", 42);
	assert_int_equal(err.line, 0);
	assert_string_equal(err.file, "");
	assert_string_equal(kilt_error_format(&err, buf, sizeof(buf)), "plain 42");

	/* NULL error pointers are allowed and only return the code. */
	assert_int_equal(kilt_error_set(NULL, -EPERM, NULL, 1, 1, "x"), -EPERM);
	assert_int_equal(kilt_error_setf(NULL, -EPERM, "x"), -EPERM);
}

static void test_util__error_prefix_keeps_place(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	char buf[1024];
	kilt_error_set(&err, -EINVAL, "a.conf", 2, 5, "expected a string");
	assert_int_equal(kilt_error_prefix(&err, "deploy.mount[%d].image", 1), -EINVAL);
	assert_string_equal(kilt_error_format(&err, buf, sizeof(buf)),
			    "a.conf:2:5: deploy.mount[1].image: expected a string");
}

static void test_util__error_prefix_truncates_safely(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	char long_msg[600];
	memset(long_msg, 'x', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	kilt_error_setf(&err, -EINVAL, "%s", long_msg);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
	kilt_error_prefix(&err, "context");
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
	assert_memory_equal(err.msg, "context: xxx", 12);
}

static void test_util__kbuf_bounded(void **state)
{
	(void)state;
	struct kbuf b;
	kbuf_init(&b, 10);
	assert_int_equal(kbuf_adds(&b, "hello"), 0);
	assert_int_equal(kbuf_addc(&b, ' '), 0);
	assert_int_equal(kbuf_printf(&b, "%d", 123), 0);
	assert_int_equal(b.len, 9);
	assert_string_equal(b.data, "hello 123");
	/* Two more bytes would exceed the maximum: refused, contents unchanged. */
	assert_int_equal(kbuf_adds(&b, "45"), -E2BIG);
	assert_string_equal(b.data, "hello 123");
	assert_int_equal(kbuf_addc(&b, '4'), 0);
	assert_int_equal(kbuf_addc(&b, '5'), -E2BIG);
	char *s = kbuf_steal(&b);
	assert_string_equal(s, "hello 1234");
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	free(s);
	/* An empty buffer hands out an empty string, never NULL. */
	s = kbuf_steal(&b);
	assert_string_equal(s, "");
	free(s);
	kbuf_done(&b);
}

/* Room made once: what fits is added without moving the buffer; beyond the maximum, refused. */
static void test_util__kbuf_reserve(void **state)
{
	(void)state;
	struct kbuf b;
	kbuf_init(&b, 100);
	assert_int_equal(kbuf_adds(&b, "ab"), 0);
	assert_int_equal(kbuf_reserve(&b, 90), 0);
	assert_true(b.cap >= 2 + 90 + 1);
	assert_string_equal(b.data, "ab");
	const char *at = b.data;
	for (int i = 0; i < 90; i++)
		assert_int_equal(kbuf_addc(&b, 'x'), 0);
	assert_ptr_equal(b.data, at);
	assert_int_equal(b.len, 92);
	assert_int_equal(kbuf_reserve(&b, 9), -E2BIG);
	assert_int_equal(b.len, 92);
	assert_int_equal(kbuf_reserve(&b, 8), 0);
	kbuf_done(&b);
	/* an empty buffer: room, and still a string */
	kbuf_init(&b, 1000);
	assert_int_equal(kbuf_reserve(&b, 500), 0);
	assert_string_equal(b.data, "");
	kbuf_done(&b);
}

static void test_util__kbuf_printf_long(void **state)
{
	(void)state;
	struct kbuf b;
	kbuf_init(&b, 4096);
	char word[1000];
	memset(word, 'a', sizeof(word) - 1);
	word[sizeof(word) - 1] = '\0';
	assert_int_equal(kbuf_printf(&b, "<%s>", word), 0);
	assert_int_equal(b.len, sizeof(word) + 1);
	assert_int_equal(b.data[0], '<');
	assert_int_equal(b.data[b.len - 1], '>');
	kbuf_done(&b);
}

static void test_util__read_file(void **state)
{
	(void)state;
	char path[] = "/tmp/kilt-test-util-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc\ndef", 7), 7);
	close(fd);

	char *data = NULL;
	size_t len = 0;
	assert_int_equal(kilt_read_file(path, 100, &data, &len), 0);
	assert_int_equal(len, 7);
	assert_string_equal(data, "abc\ndef");
	free(data);

	data = NULL;
	assert_int_equal(kilt_read_file(path, 6, &data, &len), -EFBIG);
	assert_null(data);
	assert_int_equal(kilt_read_file("/tmp", 100, &data, &len), -EISDIR);
	assert_int_equal(kilt_read_file("/nonexistent/kilt", 100, &data, &len), -ENOENT);
	unlink(path);
}

static void test_util__xasprintf(void **state)
{
	(void)state;
	_cleanup_free_ char *s = xasprintf("%s-%04d", "kilt", 7);
	assert_string_equal(s, "kilt-0007");
	_cleanup_free_ char *t = xstrndup("abcdef", 3);
	assert_string_equal(t, "abc");
}

static void test_util__utf8_valid_prefix(void **state)
{
	(void)state;
	const char *ok = "plain ascii and \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 more ascii text";
	assert_int_equal(kilt_utf8_valid_prefix((const unsigned char *)ok, strlen(ok)), strlen(ok));
	/* Overlong encoding, surrogate, truncated sequence, stray continuation byte. */
	assert_int_equal(kilt_utf8_valid_prefix((const unsigned char *)"ab\xc0\xaf", 4), 2);
	assert_int_equal(kilt_utf8_valid_prefix((const unsigned char *)"a\xed\xa0\x80", 4), 1);
	assert_int_equal(kilt_utf8_valid_prefix((const unsigned char *)"abc\xe2\x82", 5), 3);
	assert_int_equal(kilt_utf8_valid_prefix((const unsigned char *)"\x80", 1), 0);
	assert_int_equal(kilt_utf8_valid_prefix((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
}

static void test_util__hexval(void **state)
{
	(void)state;
	assert_int_equal(kilt_hexval('0'), 0);
	assert_int_equal(kilt_hexval('9'), 9);
	assert_int_equal(kilt_hexval('a'), 10);
	assert_int_equal(kilt_hexval('F'), 15);
	assert_int_equal(kilt_hexval('g'), -1);
	assert_int_equal(kilt_hexval(' '), -1);
}

/* A bit at a time, as RFC 4648 describes it: the reference for the encoder's tables. */
static void base64_reference(const unsigned char *in, size_t len, struct kbuf *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t bits = len * 8;
	for (size_t at = 0; at < bits; at += 6) {
		unsigned v = 0;
		for (size_t k = at; k < at + 6; k++) {
			unsigned bit = k < bits ? (in[k / 8] >> (7 - k % 8)) & 1u : 0;
			v = v << 1 | bit;
		}
		kbuf_addc(out, alphabet[v]);
	}
	while (out->len % 4)
		kbuf_addc(out, '=');
}

/* Every 12-bit group (both halves of 3 bytes) and every tail length against the reference. */
static void test_util__base64_every_group(void **state)
{
	(void)state;
	unsigned char in[3 * 4096 + 2];
	for (unsigned g = 0; g < 4096; g++) {
		/* group g first in one triple, second in the next one's place */
		unsigned other = 4095 - g;
		uint32_t v = (uint32_t)g << 12 | other;
		in[3 * g] = (unsigned char)(v >> 16);
		in[3 * g + 1] = (unsigned char)(v >> 8);
		in[3 * g + 2] = (unsigned char)v;
	}
	in[3 * 4096] = 0xfe;
	in[3 * 4096 + 1] = 0x01;
	for (size_t len = sizeof(in) - 8; len <= sizeof(in); len++) {
		_cleanup_free_ char *got = kilt_base64_encode(in, len);
		struct kbuf want;
		kbuf_init(&want, SIZE_MAX / 2);
		base64_reference(in, len, &want);
		assert_string_equal(got, want.data);
		kbuf_done(&want);
	}
	/* in place, with AVX2 where the CPU has it and without: every length to 100 (every
	 * tail after eight triples at a time), and most of the input, in a buffer of exactly the
	 * encoding's size (AddressSanitizer sees a read past it) */
	for (size_t i = 0; i <= 101; i++) {
		size_t len = i <= 100 ? i : sizeof(in) - 7;
		struct kbuf want;
		kbuf_init(&want, SIZE_MAX / 2);
		base64_reference(in + 7, len, &want);
		for (int scalar = 0; scalar < 2; scalar++) {
			size_t size = (len + 2) / 3 * 4;
			_cleanup_free_ char *buf = xmalloc(size ? size : 1);
			memcpy(buf, in + 7, len);
			size_t got = scalar ? kilt_base64_encode_in_place_scalar(buf, len)
					    : kilt_base64_encode_in_place(buf, len);
			assert_int_equal(got, want.len);
			assert_memory_equal(buf, want.data ? want.data : "", got);
		}
		kbuf_done(&want);
	}
	for (size_t len = 0; len < 8; len++) {
		_cleanup_free_ char *got = kilt_base64_encode(in + 5, len);
		struct kbuf want;
		kbuf_init(&want, SIZE_MAX / 2);
		base64_reference(in + 5, len, &want);
		assert_string_equal(got, want.data ? want.data : "");
		kbuf_done(&want);
	}
}

static void test_util__base64(void **state)
{
	(void)state;
	const char *cases[][2] = {
		{ "", "" },	   { "f", "Zg==" },	   { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" }, { "user:pa ss", "dXNlcjpwYSBzcw==" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *enc = kilt_base64_encode(cases[i][0], strlen(cases[i][0]));
		assert_string_equal(enc, cases[i][1]);
		_cleanup_free_ char *dec = NULL;
		size_t len = 0;
		assert_int_equal(kilt_base64_decode(enc, strlen(enc), &dec, &len, NULL), 0);
		assert_int_equal(len, strlen(cases[i][0]));
		assert_string_equal(dec, cases[i][0]);
	}
	/* Padding optional, whitespace ignored, URL-safe alphabet accepted. */
	_cleanup_free_ char *a = NULL;
	size_t len = 0;
	assert_int_equal(kilt_base64_decode("Zm9v\nYg", 7, &a, &len, NULL), 0);
	assert_string_equal(a, "foob");
	_cleanup_free_ char *b = NULL;
	assert_int_equal(kilt_base64_decode("-_8", 3, &b, &len, NULL), 0);
	assert_int_equal(len, 2);
	assert_int_equal((unsigned char)b[0], 0xfb);
	assert_int_equal((unsigned char)b[1], 0xff);
	/* Bad characters, data after padding and a lone trailing sextet are errors. */
	struct kilt_error err = { 0 };
	char *c = NULL;
	assert_int_equal(kilt_base64_decode("Zm9v!", 5, &c, &len, &err), -EINVAL);
	assert_string_equal(err.msg, "base64: unexpected character at offset 4");
	assert_int_equal(kilt_base64_decode("Zg==Zg", 6, &c, &len, NULL), -EINVAL);
	assert_int_equal(kilt_base64_decode("Zm9vY", 5, &c, &len, &err), -EINVAL);
	assert_string_equal(err.msg, "base64: truncated input");
	assert_null(c);
}

static void test_util__error_cut_keeps_utf8_valid(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	/* 510 ASCII bytes then a 3-byte character: only 1 byte of it fits in msg[512]. */
	char text[600];
	memset(text, 'a', 510);
	memcpy(text + 510, "\xe2\x82\xac tail", 9);
	kilt_error_setf(&err, -EINVAL, "%s", text);
	assert_int_equal(strlen(err.msg), 510);
	assert_int_equal(kilt_utf8_valid_prefix((const unsigned char *)err.msg, strlen(err.msg)),
			 strlen(err.msg));
	/* A character that fits whole is kept. */
	memset(text, 'a', 508);
	memcpy(text + 508, "\xe2\x82\xac", 4);
	kilt_error_setf(&err, -EINVAL, "%s", text);
	assert_int_equal(strlen(err.msg), 511);
	/* Wrapping pushes the tail out: still valid. */
	kilt_error_setf(&err, -EINVAL, "%s", text);
	kilt_error_prefix(&err, "ctx");
	assert_int_equal(kilt_utf8_valid_prefix((const unsigned char *)err.msg, strlen(err.msg)),
			 strlen(err.msg));
	assert_int_equal(strlen(err.msg), 508 + 5 - 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util__error_set_and_format),
		cmocka_unit_test(test_util__error_prefix_keeps_place),
		cmocka_unit_test(test_util__error_prefix_truncates_safely),
		cmocka_unit_test(test_util__kbuf_bounded),
		cmocka_unit_test(test_util__kbuf_reserve),
		cmocka_unit_test(test_util__kbuf_printf_long),
		cmocka_unit_test(test_util__read_file),
		cmocka_unit_test(test_util__xasprintf),
		cmocka_unit_test(test_util__utf8_valid_prefix),
		cmocka_unit_test(test_util__hexval),
		cmocka_unit_test(test_util__base64),
		cmocka_unit_test(test_util__base64_every_group),
		cmocka_unit_test(test_util__error_cut_keeps_utf8_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
