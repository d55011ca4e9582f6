/* SPDX-License-Identifier: Apache-2.0 */
/* The public header of libkilt: what every front end (CLI, webhook, macro) includes.
 *
 * Conventions (STYLE.md): functions are kilt_<module>_<verb>; objects are opaque; `_free(NULL)`
 * is a no-op; `ret_` outputs come last before the error and are untouched on failure; actions
 * return 0 or a negative errno-style code and fill `struct kilt_error` once. libkilt never logs,
 * never reads the environment and never exits. Out of memory aborts. */
#ifndef KILT_H
#define KILT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define KILT_VERSION "0.1.0"

/* ---- errors -------------------------------------------------------------------------------- */

/* One error, filled once where it happens and wrapped with context on the way up
 * ("recipe deploy.mount[1]: image: expected a string"). `file` is empty and `line`/`column` are 0
 * when the error is not about a place in a file. */
struct kilt_error {
	int code; /* negative errno-style code; 0 while no error was set */
	unsigned line, column; /* 1-based */
	char file[256];
	char msg[512];
};

/* Sets every field of `err` (NULL is allowed and ignored). Returns `code` so callers can
 * `return kilt_error_set(...)`. `file` may be NULL. */
int kilt_error_set(struct kilt_error *err, int code, const char *file, unsigned line,
		   unsigned column, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Like kilt_error_set without a place. */
int kilt_error_setf(struct kilt_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prepends "<context>: " to the message, keeping the place. Returns err->code. */
int kilt_error_prefix(struct kilt_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Writes "file:line:column: msg" (or the parts that are known) into buf; returns buf. */
const char *kilt_error_format(const struct kilt_error *err, char *buf, size_t size);

/* ---- text codecs --------------------------------------------------------------------------- */

/* Length of the longest valid UTF-8 prefix of `s` (so `len` when all of it is valid). */
size_t kilt_utf8_valid_prefix(const unsigned char *s, size_t len);
/* The value of a hex digit, or -1. */
int kilt_hexval(char c);
/* Decodes standard or URL-safe base64 (padding optional, whitespace ignored) into an owned NUL-terminated
 * buffer. */
int kilt_base64_decode(const char *in, size_t len, char **ret, size_t *ret_len,
		       struct kilt_error *err);
/* Encodes into an owned string. */
char *kilt_base64_encode(const void *in, size_t len);

/* ---- files --------------------------------------------------------------------------------- */

/* Reads a whole file (at most `max` bytes, else -EFBIG) into an owned NUL-terminated buffer;
 * returns 0 or a negative errno. */
int kilt_read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* ---- JSON numbers kept as written (lib/json.c) ------------------------------------------------ */

/* True when jansson holds the JSON number text `p` exactly: an integer within 64 bits, or a real
 * of at most 15 significant digits in the normal range of a double (written back with the same
 * value). False for anything that is not a JSON number. */
bool kilt_json_number_exact(const char *p, size_t len);
/* A new value holding the number text `text` as written (a JSON number that jansson cannot hold
 * exactly). It is a string whose first byte is 0xff, so no input string is one and jansson's
 * writers refuse it; the writers below and kilt_yaml_dump write its text. */
json_t *kilt_json_raw_number(const char *text, size_t len);
/* True when `v` is such a value; its text (not NUL-terminated) in ret_text/ret_len (optional). */
bool kilt_json_is_raw_number(const json_t *v, const char **ret_text, size_t *ret_len);
/* A kept number for the JSON number text `p` when jansson cannot hold it exactly; NULL when it
 * can, or when `p` is not a JSON number. */
json_t *kilt_json_number_keep(const char *p, size_t len);
/* The YAML 1.1 spelling of the JSON number `p` (the same value): a real gets a '.' in its
 * mantissa and a sign on its exponent ("1e400" is "1.0e+400"; YAML 1.1 reads "1e400" as a
 * string); an integer is unchanged. Writes it and a NUL into `out` when `size` >= n + 4 and
 * returns its length; returns 0 (writing nothing) for a smaller `size`. */
size_t kilt_json_number_yaml11(const char *p, size_t n, char *out, size_t size);
/* json_loadb, with the numbers jansson cannot hold exactly kept as written (instead of "too big
 * integer" or a rounded real). Errors as json_loadb's, located in `buf`; `jerr` may be NULL.
 * With JSON_DISABLE_EOF_CHECK (a stream of documents), json_loadb itself. */
json_t *kilt_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *jerr);
/* json_loadb(buf, len, flags, jerr), faster (lib/json-read.c): the same values, members in the
 * same order, for every text json_loadb accepts; anything else is json_loadb's own doing, so its
 * errors are jansson's. `flags` 0 or JSON_REJECT_DUPLICATES (others: json_loadb itself). */
json_t *kilt_json_parse(const char *buf, size_t len, size_t flags, json_error_t *jerr);
/* A member kilt_json_parse_skip() leaves out: the keys from the root down to it
 * ({"request", "object", "metadata", "managedFields"} is request.object.metadata.managedFields).
 * A NULL key stands for every element of an array: {"spec", "containers", NULL, "ports"} is the
 * ports of every container of spec.containers. A path goes through objects (a key) and arrays
 * (NULL) only, and ends at a key (a path ending at NULL, which would leave out elements and so
 * move the others, is ignored, as is a path without keys). */
struct kilt_json_skip {
	const char *const *keys; /* borrowed; n_keys >= 1 */
	size_t n_keys;
};
#define KILT_JSON_MAX_SKIP 64
/* kilt_json_parse() without the members at the `n_skip` paths `skip` (at most
 * KILT_JSON_MAX_SKIP): json_loadb's value with those members removed where they are. The text is
 * still read whole and checked as json_loadb checks it (structure, strings, escapes, UTF-8,
 * numbers, literals, nesting), what is left out included, but nothing of what is left out is
 * built, and with JSON_REJECT_DUPLICATES the keys of the objects inside a member left out are
 * not checked for duplicates: such a text is read as json_loadb(flags 0) reads it, less the
 * members. That is on purpose: kilt never reads what it leaves out, so nothing it decides can
 * depend on which value of a key repeated there jansson would keep; RFC 8259 says only that
 * names SHOULD be unique, and the API server (Go's encoding/json) writes reviews without them
 * and would take the last one. A duplicate anywhere else is refused, the member left out twice
 * in one object included. Errors are jansson's: json_loadb(flags)'s, or, for a text that also
 * has a duplicate key inside a member left out, json_loadb(flags 0)'s or the one of a
 * duplicate outside those members. With flags other than JSON_REJECT_DUPLICATES and
 * JSON_DECODE_ANY, json_loadb's value less the members (duplicates refused everywhere). */
json_t *kilt_json_parse_skip(const char *buf, size_t len, size_t flags,
			     const struct kilt_json_skip *skip, size_t n_skip, json_error_t *jerr);
/* json_dump_callback and json_dumps with the same flags and bytes (JSON_INDENT, JSON_COMPACT,
 * JSON_ENCODE_ANY, JSON_REAL_PRECISION, JSON_ESCAPE_SLASH; JSON_SORT_KEYS, JSON_ENSURE_ASCII and
 * JSON_EMBED are refused), writing kept numbers as written. -1 / NULL when a string is not UTF-8.
 * The callback gets the text in runs of up to 64 KiB (jansson's: a few bytes a call), which is
 * most of what writing a large template costs (lib/json-write.c). */
int kilt_json_dump_callback(const json_t *v, size_t flags, json_dump_callback_t callback,
			    void *data);
char *kilt_json_dumps(const json_t *v, size_t flags);
/* A JSON object written member by member at the end of `b` (a log line), byte for byte as
 * kilt_json_dumps(o, JSON_COMPACT | extra) writes the object o built by json_object_set_new of
 * the same members in the same order: a member whose string is NULL or not UTF-8 is left out, as
 * json_string gives NULL for it (kilt_json_member_string then returns -2 and `b` is unchanged),
 * and kilt_json_member_value takes any value (its `flags` add JSON_REAL_PRECISION, say). */
struct kbuf;
void kilt_json_object_open(struct kbuf *b);
int kilt_json_member_string(struct kbuf *b, const char *key, const char *value);
int kilt_json_member_value(struct kbuf *b, const char *key, const json_t *value, size_t flags);
/* kilt_json_member_value(b, key, json_real(value), JSON_REAL_PRECISION(precision)) without making
 * the value: -2 and `b` unchanged for a value that is not finite (json_real gives NULL) or a
 * precision outside 0..31. */
int kilt_json_member_real(struct kbuf *b, const char *key, double value, int precision);
void kilt_json_object_close(struct kbuf *b);

#include "kilt-hocon.h"
#include "kilt-recipe.h"
#include "kilt-image.h"
#include "kilt-plan.h"
#include "kilt-yaml.h"
#include "kilt-ecs.h"
#include "kilt-k8s.h"
#include "kilt-macro.h"
#include "kilt-admission.h"
#include "kilt-terraform.h"
#include "kilt-exec.h"
#include "kilt-util.h"
#include "kilt-json-arena.h"

#endif
