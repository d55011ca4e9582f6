/* SPDX-License-Identifier: Apache-2.0 */
/* libkilt's small utilities, shared by the library and its front ends so neither keeps a copy:
 * allocation that aborts when memory runs out, and a growable byte buffer with a maximum size.
 * Every function is kilt_-prefixed. A file that defines KILT_SHORT_NAMES before including this
 * header also gets the short spellings lib/ and src/ write (xmalloc, kbuf_add, ...) and the
 * cleanup attributes that make ownership visible (_cleanup_free_, steal_pointer, ...). */
#ifndef KILT_UTIL_H
#define KILT_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

void *kilt_xmalloc(size_t n);
void *kilt_xcalloc(size_t nmemb, size_t size);
void *kilt_xrealloc(void *p, size_t n);
char *kilt_xstrdup(const char *s);
char *kilt_xstrndup(const char *s, size_t n);
/* Formats into a new heap string (aborts on OOM). */
char *kilt_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer with a maximum size (curl's dynbuf idea). Always NUL-terminated when
 * non-empty. */
struct kbuf {
	char *data; /* owned */
	size_t len, cap, max;
};
void kilt_kbuf_init(struct kbuf *b, size_t max);
/* Appends; returns 0 or -E2BIG when the buffer would exceed its maximum (contents unchanged). */
int kilt_kbuf_add(struct kbuf *b, const void *p, size_t n);
/* Makes room for n more bytes at once (kilt_kbuf_add grows by doubling, copying each time);
 * returns 0 or -E2BIG when they would exceed the maximum (nothing done). */
int kilt_kbuf_reserve(struct kbuf *b, size_t n);
int kilt_kbuf_addc(struct kbuf *b, char c);
int kilt_kbuf_adds(struct kbuf *b, const char *s);
int kilt_kbuf_printf(struct kbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the contents out (never NULL: "" for an empty buffer) and resets the buffer. */
char *kilt_kbuf_steal(struct kbuf *b);
void kilt_kbuf_done(struct kbuf *b);

#endif

/* Apart from the guard above: kilt.h may have brought this header in before a file asked for
 * the short names. */
#if defined(KILT_SHORT_NAMES) && !defined(KILT_UTIL_SHORT_NAMES)
#define KILT_UTIL_SHORT_NAMES
#define KILT_UNUSED __attribute__((unused))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define xmalloc kilt_xmalloc
#define xcalloc kilt_xcalloc
#define xrealloc kilt_xrealloc
#define xstrdup kilt_xstrdup
#define xstrndup kilt_xstrndup
#define xasprintf kilt_xasprintf
#define kbuf_init kilt_kbuf_init
#define kbuf_add kilt_kbuf_add
#define kbuf_reserve kilt_kbuf_reserve
#define kbuf_addc kilt_kbuf_addc
#define kbuf_adds kilt_kbuf_adds
#define kbuf_printf kilt_kbuf_printf
#define kbuf_steal kilt_kbuf_steal
#define kbuf_done kilt_kbuf_done

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
#endif /* KILT_SHORT_NAMES */
