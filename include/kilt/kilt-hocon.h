/* SPDX-License-Identifier: Apache-2.0 */
/* HOCON: parse once into an unresolved document, resolve (possibly many times, with a different
 * substitution context each time) into a jansson value. Included by kilt.h. */
#ifndef KILT_HOCON_H
#define KILT_HOCON_H

/* Which files `include` may read. A trust decision the caller makes from where the text came
 * from; the document has no say in it. */
enum kilt_hocon_includes {
	/* any file, relative to the including file (the HOCON specification) */
	KILT_HOCON_INCLUDE_FILES = 0,
	/* only files in the root document's own directory or below it: a relative name without
	 * a ".." segment, whose real path (links followed) stays inside that directory. A
	 * document given as text with no file name includes nothing. */
	KILT_HOCON_INCLUDE_BESIDE,
	/* no include at all (text from someone who may not read this machine's files) */
	KILT_HOCON_INCLUDE_NONE,
};

/* Limits on untrusted input; each has its own error message when exceeded. Resolution is also
 * bounded: when substitutions would copy more than 4 Mi + 32 x (input bytes) values and string
 * bytes (exponential self-copies), it fails with -E2BIG instead of exhausting memory. */
struct kilt_hocon_limits {
	size_t max_input_bytes; /* per file, including included files (default 8 MiB) */
	unsigned max_depth; /* nesting of objects/arrays (default 128) */
	unsigned max_include_depth; /* default 16 */
	unsigned max_subst_depth; /* chained substitutions during resolution (default 64) */
	/* default KILT_HOCON_INCLUDE_FILES; a refused include fails with -EPERM */
	enum kilt_hocon_includes includes;
};

/* Fills `ret` with the defaults above. */
void kilt_hocon_limits_default(struct kilt_hocon_limits *ret);

/* A parsed, unresolved HOCON document with every include already read and merged. Immutable
 * after parsing: kilt_hocon_resolve may run on it from several threads at once. */
struct kilt_hocon;

/* Parses `path` (includes are resolved relative to its directory). `limits` may be NULL for the
 * defaults. On a syntax or include error, `err` carries file:line:column.
 *
 * Includes: `include "x"`, `include file("x")` and `include required(...)` read regular files
 * only, relative to the including file; a name without an extension merges x.properties, x.json
 * and x.conf (in that order, the later ones winning). `url()`, `classpath()` and URL names fail
 * with -EOPNOTSUPP. A missing non-required include is nothing; an include cycle is an error. */
int kilt_hocon_parse_file(const char *path, const struct kilt_hocon_limits *limits,
			  struct kilt_hocon **ret, struct kilt_error *err);

/* Parses `len` bytes of `text`. `name` is used in error messages; when `name` is a path, includes
 * are resolved relative to its directory, otherwise relative to the current directory. */
int kilt_hocon_parse_string(const char *text, size_t len, const char *name,
			    const struct kilt_hocon_limits *limits, struct kilt_hocon **ret,
			    struct kilt_error *err);

void kilt_hocon_free(struct kilt_hocon *doc);

/* Where each value of a resolved document was defined. Paths use HOCON path syntax with array
 * indexes in brackets: `deploy.mount[0].image`; a key that needs quoting is quoted: `a."b.c"`. */
struct kilt_hocon_origins;

/* Looks up the definition site of the value at `path`. Returns false when unknown. `ret_file` is
 * borrowed from the document that produced the origins (valid while it lives). */
bool kilt_hocon_origins_get(const struct kilt_hocon_origins *origins, const char *path,
			    const char **ret_file, unsigned *ret_line, unsigned *ret_column);
void kilt_hocon_origins_free(struct kilt_hocon_origins *origins);

/* Resolves substitutions and returns the root object (owned) in `ret`.
 *
 * `context` (borrowed, may be NULL) is an object consulted by substitutions whose path the
 * document itself does not set: `${original.image}` finds context.original.image. Context values
 * never appear in the result unless the document copies them through a substitution. There is no
 * environment-variable fallback: an unresolved `${x}` is an error naming the path; an unresolved
 * `${?x}` makes a field absent and contributes nothing to an array or object concatenation.
 *
 * When `ret_origins` is not NULL it receives the definition site of every value in the result
 * (costs time: ask only when errors need locating). */
int kilt_hocon_resolve(const struct kilt_hocon *doc, const json_t *context,
		       struct kilt_hocon_origins **ret_origins, json_t **ret,
		       struct kilt_error *err);

/* Parse + resolve in one call (no context); for `kilt hocon` and tests. */
int kilt_hocon_load_file(const char *path, const struct kilt_hocon_limits *limits, json_t **ret,
			 struct kilt_error *err);

#endif
