/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the JSON writer (lib/json-write.c) against jansson's own dump: the first byte
 * picks the flags and how much of a 1 KiB buffer is taken before the value is written (so that
 * the compact writer's straight way runs out of room at any offset), the rest is JSON that
 * jansson reads. kilt_json_dumps, kilt_json_dump_callback and kilt_json_out_value after the
 * taken bytes must give jansson's bytes, or fail where jansson's dump fails. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json-write.h"
#include "kilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t flag_sets[] = {
	JSON_COMPACT | JSON_ENCODE_ANY,
	JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_ENCODE_ANY,
	JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(5),
	JSON_INDENT(2) | JSON_ENCODE_ANY,
	JSON_ENCODE_ANY,
	JSON_COMPACT,
	JSON_INDENT(3) | JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_ENCODE_ANY,
	JSON_COMPACT | JSON_ENCODE_ANY,
};

static void die(const char *what, size_t flags, const char *want, const char *got)
{
	fprintf(stderr, "fuzz_json_write: %s (flags %#zx)\n--- jansson\n%s\n--- kilt\n%s\n", what,
		flags, want ? want : "(null)", got ? got : "(null)");
	abort();
}

static int collect(const char *p, size_t n, void *userdata)
{
	return kbuf_add(userdata, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t flags = flag_sets[data[0] & 7];
	/* 0 to 999 bytes taken: the flags' bits and 32 times the rest */
	size_t taken = (size_t)(data[0] >> 3) * 32 + (size_t)(data[0] & 7);
	json_error_t e;
	json_t *v =
		json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!v)
		return 0;
	char *want = json_dumps(v, flags);
	char *got = kilt_json_dumps(v, flags);
	if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0))
		die("kilt_json_dumps", flags, want, got);
	free(got);

	struct kbuf cb;
	kbuf_init(&cb, SIZE_MAX / 2);
	int r = kilt_json_dump_callback(v, flags, collect, &cb);
	if (r != (want ? 0 : -1) || (want && strcmp(want, cb.data ? cb.data : "") != 0))
		die("kilt_json_dump_callback", flags, want, cb.data);
	kbuf_done(&cb);

	struct kilt_json_out o;
	kilt_json_out_init(&o, NULL, NULL);
	kilt_json_out_reserve(&o, 1023);
	char fill[1024];
	memset(fill, '.', taken);
	kilt_json_out_raw(&o, fill, taken);
	r = kilt_json_out_value(&o, v, flags, 0);
	if (want &&
	    (r != 0 || o.text.len != taken + strlen(want) ||
	     memcmp(o.text.data, fill, taken) != 0 || strcmp(o.text.data + taken, want) != 0))
		die("kilt_json_out_value after taken bytes", flags, want, o.text.data + taken);
	if (!want && r != -2)
		die("kilt_json_out_value: no error", flags, want, o.text.data + taken);
	kilt_json_out_done(&o);
	free(want);
	json_decref(v);
	return 0;
}
