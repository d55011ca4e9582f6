/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation that aborts on OOM and the bounded growable buffer of the front ends (src/util.h). */
#include <stdarg.h>

#include "util.h"

static void oom(void)
{
	fputs("kilt: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	char *p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void kbuf_init(struct kbuf *b, size_t max)
{
	*b = (struct kbuf){ .max = max };
}

int kbuf_add(struct kbuf *b, const void *p, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return -E2BIG;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int kbuf_addc(struct kbuf *b, char c)
{
	return kbuf_add(b, &c, 1);
}

int kbuf_adds(struct kbuf *b, const char *s)
{
	return kbuf_add(b, s, strlen(s));
}

int kbuf_printf(struct kbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return kbuf_add(b, small, (size_t)n);
	_cleanup_free_ char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return kbuf_add(b, big, (size_t)n);
}

char *kbuf_steal(struct kbuf *b)
{
	char *p = b->data ? b->data : xstrdup("");
	size_t max = b->max;
	kbuf_init(b, max);
	return p;
}

void kbuf_done(struct kbuf *b)
{
	free(b->data);
	kbuf_init(b, b->max);
}
