/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation, bounded buffers, file reading and error formatting shared by all of libkilt. */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "internal.h"
#include "kilt.h"

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

/* Room for n more bytes and the NUL; the caller checked the maximum. */
static void grow(struct kbuf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
}

int kbuf_reserve(struct kbuf *b, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return -E2BIG;
	grow(b, n);
	b->data[b->len] = '\0';
	return 0;
}

int kbuf_add(struct kbuf *b, const void *p, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return -E2BIG;
	grow(b, n);
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

int kilt_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	struct kbuf b;
	kbuf_init(&b, max);
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			kbuf_done(&b);
			return r;
		}
		if (n == 0)
			break;
		if (kbuf_add(&b, chunk, (size_t)n) < 0) {
			kbuf_done(&b);
			return -EFBIG;
		}
	}
	if (ret_len)
		*ret_len = b.len;
	*ret = kbuf_steal(&b);
	return 0;
}

/* Messages are cut at a fixed size; drop a UTF-8 sequence the cut left incomplete so the text
 * stays valid wherever it goes (JSON logs, replies). */
static void trim_partial_utf8(char *s)
{
	size_t n = strlen(s), i = n, back = 0;
	while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0u) == 0x80u)
		i--, back++;
	if (i == 0)
		return;
	unsigned char lead = (unsigned char)s[i - 1];
	size_t want = (lead & 0xE0u) == 0xC0u	? 2
		      : (lead & 0xF0u) == 0xE0u ? 3
		      : (lead & 0xF8u) == 0xF0u ? 4
						: 0;
	if (want && back + 1 < want)
		s[i - 1] = '\0';
}

static void set_msg(struct kilt_error *err, const char *fmt, va_list ap)
{
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	trim_partial_utf8(err->msg);
}

int kilt_error_set(struct kilt_error *err, int code, const char *file, unsigned line,
		   unsigned column, const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	err->line = line;
	err->column = column;
	snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	va_list ap;
	va_start(ap, fmt);
	set_msg(err, fmt, ap);
	va_end(ap);
	return code;
}

int kilt_error_setf(struct kilt_error *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	err->line = err->column = 0;
	err->file[0] = '\0';
	va_list ap;
	va_start(ap, fmt);
	set_msg(err, fmt, ap);
	va_end(ap);
	return code;
}

int kilt_error_prefix(struct kilt_error *err, const char *fmt, ...)
{
	if (!err)
		return -EINVAL;
	char ctx[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	char joined[sizeof(ctx) + sizeof(err->msg) + 2];
	snprintf(joined, sizeof(joined), "%s: %s", ctx, err->msg);
	size_t n = strnlen(joined, sizeof(err->msg) - 1);
	memcpy(err->msg, joined, n);
	err->msg[n] = '\0';
	trim_partial_utf8(err->msg);
	return err->code;
}

const char *kilt_error_format(const struct kilt_error *err, char *buf, size_t size)
{
	if (err->file[0] && err->line)
		snprintf(buf, size, "%s:%u:%u: %s", err->file, err->line, err->column, err->msg);
	else if (err->file[0])
		snprintf(buf, size, "%s: %s", err->file, err->msg);
	else
		snprintf(buf, size, "%s", err->msg);
	return buf;
}
