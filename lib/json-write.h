/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON writer behind kilt_json_dump_callback and kilt_json_dumps, for the library's files that mix its output with text of
 * their own (cfn-stream.c writes a template's sections around the values it dumps). */
#ifndef KILT_JSON_WRITE_H
#define KILT_JSON_WRITE_H

#include "internal.h"

/* Pending output is handed to `write` once it reaches this size. */
#define KILT_JSON_OUT_FLUSH (64u << 10)

struct kilt_json_out {
	/* receives the output in pieces; returns 0, or non-zero to stop. NULL: everything stays in
	 * `text`. */
	int (*write)(const char *p, size_t n, void *userdata);
	void *userdata; /* borrowed */
	struct kbuf text; /* owned: the pending output, or all of it without `write` */
	bool write_failed;
};

void kilt_json_out_init(struct kilt_json_out *o, int (*write)(const char *p, size_t n, void *u),
			void *userdata);
/* Makes room for n more bytes of output at once (the buffer grows by doubling otherwise). */
void kilt_json_out_reserve(struct kilt_json_out *o, size_t n);
/* kilt_json_out_raw's way when the text does not fit in the buffer's room, or goes to `write`. */
int kilt_json_out_append(struct kilt_json_out *o, const char *p, size_t n);
/* Appends text as it is. Returns 0, or -1 once a write failed. Inline: the status annotation and
 * the admission answer are written in many short pieces, most of them without a call. */
static inline int kilt_json_out_raw(struct kilt_json_out *o, const char *p, size_t n)
{
	/* without `write`, no write failed */
	if (!o->write && kilt_kbuf_add_in_room(&o->text, p, n))
		return 0;
	return kilt_json_out_append(o, p, n);
}
/* Appends `v` as json_dump_callback(v, flags) writes it (kept numbers as written), with `indent`
 * more spaces after every newline (the value stands that deep in a larger text). `flags` as
 * kilt_json_dump_callback accepts them. Returns 0, -1 once a write failed, -2 when `v` cannot be
 * written as JSON (a string that is not UTF-8, a scalar without JSON_ENCODE_ANY, a refused flag,
 * a loop). */
int kilt_json_out_value(struct kilt_json_out *o, const json_t *v, size_t flags, size_t indent);
/* Appends the n bytes at p as a JSON string (escaped as jansson escapes; `/` too with
 * JSON_ESCAPE_SLASH in flags). Returns 0, -1 once a write failed, -2 when p is not UTF-8. */
int kilt_json_out_string(struct kilt_json_out *o, const char *p, size_t n, size_t flags);
/* Hands what is pending to `write`. Returns 0 or -1. */
int kilt_json_out_flush(struct kilt_json_out *o);
void kilt_json_out_done(struct kilt_json_out *o);

#endif
