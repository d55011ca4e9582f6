/* SPDX-License-Identifier: Apache-2.0 */
/* The HOCON module's internal model, shared by hocon.c (document lifecycle, locations, origins),
 * hocon-parse.c (text to merged tree) and hocon-resolve.c (merged tree to jansson values).
 *
 * Parsing builds a merged tree in an arena: every object is a `struct hobj` whose fields keep
 * the ordered list of their definitions (`defs`, oldest first). Adjacent object definitions of
 * the same key are merged while parsing; anything else (a scalar, an array, a substitution, a
 * concatenation that needs resolving) is appended as a further definition, so resolution can
 * apply HOCON's "later wins, objects merge, self-references look back" rules lazily. */
#ifndef KILT_HOCON_INTERNAL_H
#define KILT_HOCON_INTERNAL_H

#include <stdint.h>

#include "internal.h"
#include "kilt.h"

/* ---- arena ---------------------------------------------------------------------------------- */

struct arena_blk;
struct arena {
	struct arena_blk *head; /* owned chain */
};
void *kilt_arena_alloc(struct arena *a, size_t n);
void *kilt_arena_calloc(struct arena *a, size_t n);
char *kilt_arena_memdup(struct arena *a, const void *p, size_t n); /* NUL-terminated copy */
void kilt_arena_done(struct arena *a);

/* ---- values ---------------------------------------------------------------------------------- */

enum hv_type {
	HV_NULL,
	HV_TRUE,
	HV_FALSE,
	HV_INT,
	HV_REAL,
	HV_STR,
	HV_OBJ,
	HV_ARR,
	HV_SUBST,
	HV_CONCAT,
};

enum {
	HV_F_DYNAMIC = 1, /* needs resolution (contains a substitution); has a memo slot `id` */
	HV_F_OPTIONAL = 2, /* ${?path} */
	HV_F_WS = 4, /* unquoted whitespace between the parts of a concatenation */
	/* `key += x`: a concatenation whose first part is ${?key}, the field's own absolute path,
	 * so each such definition of a field reads the one before it */
	HV_F_APPEND = 8,
};

struct hseg {
	const char *s; /* borrowed from a source buffer or the arena */
	uint32_t len;
	uint32_t hash;
};

struct hpath {
	const struct hseg *segs;
	uint32_t n;
};

struct hobj;

struct hval {
	uint8_t type; /* enum hv_type */
	uint8_t flags;
	uint16_t file; /* index into kilt_hocon.srcs */
	uint32_t off; /* byte offset of the value in its file */
	uint32_t id; /* memo slot when HV_F_DYNAMIC */
	union {
		struct {
			const char *s; /* string contents, or a number/keyword as written */
			size_t len;
			union {
				json_int_t i;
				double d;
			} num;
		} lit;
		struct hobj *obj;
		struct {
			struct hval **items;
			uint32_t n;
		} arr;
		struct {
			struct hpath path;
			struct hpath prefix; /* include site: looked up as prefix+path first */
		} sub;
		struct {
			struct hval **parts;
			uint32_t n;
		} cat;
	};
};

struct hfield {
	const char *key; /* borrowed */
	uint32_t klen, hash;
	struct hval **defs; /* oldest first */
	uint32_t n, cap;
};

struct hobj {
	struct hfield **fields; /* in order of first definition */
	uint32_t n, cap;
	uint32_t *table; /* open addressing over fields (index + 1), NULL while small */
	uint32_t tcap;
};

uint32_t kilt_hocon_hash(const char *s, size_t len);
/* Returns the field or NULL. */
struct hfield *kilt_hobj_find(const struct hobj *o, const char *key, size_t len, uint32_t hash);

/* ---- document -------------------------------------------------------------------------------- */

struct hsrc {
	const char *name; /* arena; as used in error messages */
	const char *text; /* owned by the document (arena) */
	size_t len;
	uint32_t *lines; /* offsets of line starts (heap, owned), built when the source is added */
	uint32_t nlines;
};

/* Most sources (the file and everything it includes) one document may have. */
#define HOCON_MAX_SRCS 4096u

struct kilt_hocon {
	struct arena arena;
	struct hval *root; /* HV_OBJ, or HV_ARR for a document whose root is an array */
	struct hsrc *srcs; /* heap, owned */
	uint32_t nsrcs, capsrcs;
	uint32_t nids; /* memo slots needed by a resolution */
	size_t input_bytes; /* all files together */
	struct kilt_hocon_limits limits;
};

/* Adds a source (copies `text` into the arena); returns its index. */
uint16_t kilt_hocon_add_src(struct kilt_hocon *doc, const char *name, const char *text, size_t len);
/* Converts a byte offset in source `file` into 1-based line and column (in characters). */
void kilt_hocon_locate(const struct kilt_hocon *doc, uint16_t file, uint32_t off,
		       unsigned *ret_line, unsigned *ret_col);
/* Sets `err` located at `off` in `file`; returns code. */
int kilt_hocon_error_at(const struct kilt_hocon *doc, uint16_t file, uint32_t off,
			struct kilt_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* The directory part of `name` ("." when it has none), for resolving relative includes; may be
 * written to `buf`. */
const char *kilt_hocon_dir_of(const char *name, char *buf, size_t size);
/* Parses a source already added to `doc` as the root document. */
int kilt_hocon_parse_root(struct kilt_hocon *doc, uint16_t file, const char *dir,
			  struct kilt_error *err);

/* Appends `path` in HOCON path syntax (quoted where needed) to `b`. */
void kilt_hocon_path_append_key(struct kbuf *b, const char *key, size_t len);

/* ---- origins --------------------------------------------------------------------------------- */

struct horigin {
	char *path; /* owned */
	uint16_t file;
	uint32_t off;
};

struct kilt_hocon_origins {
	const struct kilt_hocon *doc; /* borrowed */
	struct horigin *v; /* owned, sorted by path */
	size_t n, cap;
};

void kilt_hocon_origins_add(struct kilt_hocon_origins *o, const char *path, uint16_t file,
			    uint32_t off);
void kilt_hocon_origins_sort(struct kilt_hocon_origins *o);

#endif
