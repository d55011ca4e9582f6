/* SPDX-License-Identifier: Apache-2.0 */
/* Private to libkilt (and its own tests, fuzzers and benchmarks): what the library's files share
 * beside the public headers. Front ends in src/ see only include/kilt/ (through src/util.h). */
#ifndef KILT_INTERNAL_H
#define KILT_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

/* Allocation, kbuf and the cleanup attributes (include/kilt/kilt-util.h), with their short
 * names: every symbol libkilt exports starts with kilt_ (the lib/exports test runs nm on it). */
#define KILT_SHORT_NAMES
#include "kilt-util.h"

/* ---- text.c ------------------------------------------------------------------------------ */
/* Writes the standard base64 (padded) of the len bytes at `in` to `out`, which has room for
 * (len + 2) / 3 * 4 bytes; returns that many. No NUL is written. */
size_t kilt_base64_encode_into(const void *in, size_t len, char *out);
/* The same with the len bytes at buf replaced by their base64, buf having room for it (32
 * digits at a time on a CPU with AVX2). */
size_t kilt_base64_encode_in_place(char *buf, size_t len);
/* kilt_base64_encode_in_place() without AVX2, whatever the CPU (for tests). */
size_t kilt_base64_encode_in_place_scalar(char *buf, size_t len);

/* ---- json.c: an object's members read in one pass ----------------------------------------- */
/* A key and its length, for kilt_json_members. */
struct kilt_json_key {
	const char *s;
	size_t len;
};
#define KILT_JSON_KEY(lit)                                                                         \
	{                                                                                          \
		"" lit, sizeof(lit) - 1                                                            \
	}
/* ret[i] = obj[keys[i].s] (borrowed) or NULL, for n keys, in one walk over the members of obj
 * instead of a look-up (a hash of the key and a bucket's walk) per key: for objects of a few
 * members read for many keys. obj may be NULL or no object: every ret[i] is then NULL. */
void kilt_json_members(const json_t *obj, const struct kilt_json_key *keys, size_t n,
		       const json_t **ret);
/* A copy of the array `argv`: its strings copied as they are (no UTF-8 check again, and none of
 * json_deep_copy's table of the nodes it is inside of), anything else deep-copied. */
json_t *kilt_json_copy_argv(const json_t *argv);

/* kbuf_add's work without its call when the n bytes fit in the room `b` has (the writers' many
 * pieces of a few bytes): true, else false with nothing done (kbuf_add grows the buffer). */
static inline bool kilt_kbuf_add_in_room(struct kbuf *b, const void *p, size_t n)
{
	if (b->cap - b->len <= n || b->max - b->len < n)
		return false;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

/* Eight bytes in a uint64_t at once: each byte 0x01, each byte 0x80 (the readers' and writers'
 * word-at-a-time checks). */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Room for the decimal digits of any unsigned long long (kilt_digits) */
#define KILT_DIGITS_MAX 20

/* Writes the decimal digits of `u` (as %llu does) at the end of the KILT_DIGITS_MAX bytes
 * before `end`; returns where they start (no NUL). */
static inline char *kilt_digits(char *end, unsigned long long u)
{
	do {
		*--end = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	return end;
}

/* ---- admission ----------------------------------------------------------------------------- */
struct kilt_admission_review;
/* The env lists of a review read when first needed (kilt_json_parse_env_lists()): for each, the
 * array in the tree and, for each of its entries still to be read, its name and its text. */
struct kilt_env_entry {
	size_t at, len; /* its text in the list's text; len 0 once read (or never to be) */
	size_t name; /* where its name is in the list's text, NUL-terminated */
};
struct kilt_env_list {
	json_t *list; /* borrowed: the array in the tree */
	struct kilt_env_entry *e; /* owned: one for each element, then the list's text */
	size_t n, unread;
	char *text; /* borrowed from `e`: the list's text, then the names of its entries */
};
struct kilt_env_lists {
	struct kilt_env_list *v; /* owned */
	size_t n, cap;
};
struct kilt_error;
struct kilt_json_skip;
/* The paths of kilt_json_parse_skip() made ready to follow (made once for paths used for many
 * texts: a review's). Levels (a container's depth less one) from KILT_JSON_SKIP_LEVELS on are
 * followed path by path. */
#define KILT_JSON_SKIP_LEVELS 8
#define KILT_JSON_SKIP_BUCKETS 32
struct kilt_json_skip_index {
	const struct kilt_json_skip *skip; /* borrowed */
	size_t n_skip;
	bool too_many; /* over KILT_JSON_MAX_SKIP: not followed by the reader */
	uint64_t paths; /* those followed: with keys, not ending at NULL */
	/* by level: the paths that end there; the paths whose key there is NULL; the paths of
	 * each group of the same keys down to there (by its first path); the first path of each
	 * group by a bucket of its key there (the others' keys are not compared) */
	uint64_t ends[KILT_JSON_SKIP_LEVELS];
	uint64_t each[KILT_JSON_SKIP_LEVELS];
	uint64_t group[KILT_JSON_SKIP_LEVELS][64]; /* KILT_JSON_MAX_SKIP paths */
	uint64_t filter[KILT_JSON_SKIP_LEVELS][KILT_JSON_SKIP_BUCKETS];
	/* by level, the length of each group's first path's key there (UINT8_MAX: that or more) */
	uint8_t key_len[KILT_JSON_SKIP_LEVELS][64];
	uint64_t env_lists; /* the paths whose member is kept: an env list */
};
void kilt_json_skip_index_init(struct kilt_json_skip_index *ix, const struct kilt_json_skip *skip,
			       size_t n_skip);
/* Makes path `i` of `ix` (ending at a key) one whose member is kept, and whose value, when it is
 * a list, is an env list read when first needed (kilt_json_parse_env_lists()): the others are
 * left out. */
void kilt_json_skip_index_env_list(struct kilt_json_skip_index *ix, size_t i);
/* kilt_json_parse_skip_index() that gathers the env lists at the index's env-list paths into
 * `lists` (kilt-admission.h: struct kilt_env_lists): each entry written as the API server writes
 * one, an object of a string "name" and a string or null "value" and nothing else, is put in its
 * list as json_null() and read (decoded into the object it is) when first needed, by
 * kilt_env_list_read(); every other entry is decoded at once. A text read by json_loadb instead
 * (kilt_json_parse_skip_index() says when) has its lists decoded whole. Reading an entry later
 * gives the object this reader would have built for it then; its text is copied into `lists`. */
json_t *kilt_json_parse_env_lists(const char *text, size_t len, size_t flags,
				  const struct kilt_json_skip_index *ix,
				  struct kilt_env_lists *lists, json_error_t *jerr);
/* The env list of `lists` that is the array `list` of the tree, or NULL when it has no entry
 * left to read. */
struct kilt_env_list *kilt_env_list_find(const struct kilt_env_lists *lists, const json_t *list);
/* The name of entry `i` of `l` when it is still to be read (its element json_null()), else NULL:
 * the entry's "name" (a string without NUL), and its "value" is a string without NUL or null, so
 * that the entry says what a recipe sees for the name, whatever it is. */
const char *kilt_env_list_unread_name(const struct kilt_env_list *l, size_t i);
/* Entry `i` of `l`, read into the tree if it was not yet: the list's element. */
json_t *kilt_env_list_read(struct kilt_env_list *l, size_t i);
/* Every entry of `l` read into the tree. */
void kilt_env_list_read_all(struct kilt_env_list *l);
void kilt_env_lists_free(struct kilt_env_lists *lists);
/* kilt_json_parse_skip() with the paths of `ix`. */
json_t *kilt_json_parse_skip_index(const char *text, size_t len, size_t flags,
				   const struct kilt_json_skip_index *ix, json_error_t *jerr);
/* kilt_json_parse_skip's own reader, without handing what it refuses to json_loadb: NULL for
 * anything it does not read as json_loadb(text, len, JSON_REJECT_DUPLICATES) would (an error, a
 * duplicate key, a number jansson cannot hold, nesting over 512), except that duplicate keys
 * inside the members left out are not refused: what it reads is then json_loadb(text, len, 0)'s
 * value less those members. For tests and fuzzing. */
json_t *kilt_json_parse_fast(const char *text, size_t len, const struct kilt_json_skip *skip,
			     size_t n_skip);
/* kilt_admission_review_parse() without leaving anything out: every member decoded. */
int kilt_admission_review_parse_whole(const char *text, size_t len,
				      struct kilt_admission_review *ret, struct kilt_error *err);

#endif
