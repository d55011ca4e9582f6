/* SPDX-License-Identifier: Apache-2.0 */
/* Private to libkilt (and its own tests, fuzzers and benchmarks): allocation that aborts on OOM,
 * cleanup attributes that make ownership visible, and a bounded growable buffer. Front ends in
 * src/ have their own (src/util.h) and see only the public headers in include/kilt/. */
#ifndef KILT_INTERNAL_H
#define KILT_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#define KILT_UNUSED __attribute__((unused))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Every symbol libkilt exports starts with kilt_ (the lib/exports test runs nm on the library);
 * inside lib/ these functions keep their short names. */
#define xmalloc kilt_xmalloc
#define xcalloc kilt_xcalloc
#define xrealloc kilt_xrealloc
#define xstrdup kilt_xstrdup
#define xstrndup kilt_xstrndup
#define xasprintf kilt_xasprintf
#define kbuf_init kilt_kbuf_init
#define kbuf_add kilt_kbuf_add
#define kbuf_addc kilt_kbuf_addc
#define kbuf_adds kilt_kbuf_adds
#define kbuf_printf kilt_kbuf_printf
#define kbuf_steal kilt_kbuf_steal
#define kbuf_done kilt_kbuf_done

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Formats into a new heap string (aborts on OOM). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void freep(void *p)
{
	free(*(void **)p);
}
static inline void closep(const int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
/* jansson provides json_decrefp (and json_auto_t). */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Returns *pp and sets it to NULL: hands ownership out of a _cleanup_ variable. */
#define steal_pointer(pp)                                                                          \
	__extension__({                                                                            \
		__typeof__(*(pp)) _p = *(pp);                                                      \
		*(pp) = NULL;                                                                      \
		_p;                                                                                \
	})

/* A growable byte buffer with a maximum size (curl's dynbuf idea). Always NUL-terminated when
 * non-empty. */
struct kbuf {
	char *data; /* owned */
	size_t len, cap, max;
};
void kbuf_init(struct kbuf *b, size_t max);
/* Appends; returns 0 or -E2BIG when the buffer would exceed its maximum (contents unchanged). */
int kbuf_add(struct kbuf *b, const void *p, size_t n);
int kbuf_addc(struct kbuf *b, char c);
int kbuf_adds(struct kbuf *b, const char *s);
int kbuf_printf(struct kbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the contents out (never NULL: "" for an empty buffer) and resets the buffer. */
char *kbuf_steal(struct kbuf *b);
void kbuf_done(struct kbuf *b);

/* ---- admission-skim.c ---------------------------------------------------------------------- */
struct kilt_admission_review;
struct kilt_error;
/* A span of a review's text the decoder leaves out. */
struct kilt_admission_span {
	const char *start, *end; /* borrowed */
};
#define KILT_ADMISSION_MAX_SPANS 4
/* Finds the members metadata.managedFields of request.object and request.oldObject in an
 * AdmissionReview's text (each with the comma that separates it from its neighbour), in order, at
 * most KILT_ADMISSION_MAX_SPANS. The text without them is valid JSON, without duplicate keys,
 * exactly when the whole text is, and then decodes to the same values less those members.
 * Returns 0 when there are none or anything is unexpected (the whole text is then parsed). */
size_t kilt_admission_skim(const char *text, size_t len, struct kilt_admission_span *spans);
/* kilt_admission_review_parse() without the skim: every member decoded. */
int kilt_admission_review_parse_whole(const char *text, size_t len,
				      struct kilt_admission_review *ret, struct kilt_error *err);

#endif
