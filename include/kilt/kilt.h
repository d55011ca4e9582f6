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

#endif
