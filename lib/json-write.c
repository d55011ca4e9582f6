/* SPDX-License-Identifier: Apache-2.0 */
/* JSON text written as jansson writes it, byte for byte, kept numbers (lib/json.c) as written,
 * and whole runs at a time: jansson's dump hands its text to a callback a few bytes at a time,
 * which is most of what writing a large template costs (the output of kilt inject, the macro's
 * reply, the undo labels of every container). unit/test_json_write and unit/test_json hold the
 * bytes to jansson's for every flag accepted here. */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "json-write.h"
#include "kilt.h"

/* Deeper than any parser gives (jansson stops at 2048): only a value that contains itself. */
#define MAX_DEPTH 10000
#define REFUSED_FLAGS (JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_EMBED)

void kilt_json_out_init(struct kilt_json_out *o, int (*write)(const char *p, size_t n, void *u),
			void *userdata)
{
	*o = (struct kilt_json_out){ .write = write, .userdata = userdata };
	kbuf_init(&o->text, SIZE_MAX / 2);
}

void kilt_json_out_reserve(struct kilt_json_out *o, size_t n)
{
	kbuf_reserve(&o->text, n);
}

int kilt_json_out_flush(struct kilt_json_out *o)
{
	if (o->write_failed)
		return -1;
	if (o->write && o->text.len) {
		if (o->write(o->text.data, o->text.len, o->userdata) != 0) {
			o->write_failed = true;
			return -1;
		}
		o->text.len = 0;
	}
	return 0;
}

/* Appends without handing anything to `write` (a string is written whole before that). */
static inline int append(struct kilt_json_out *o, const char *p, size_t n)
{
	struct kbuf *b = &o->text;
	if (kilt_kbuf_add_in_room(b, p, n))
		return 0;
	return kbuf_add(b, p, n) < 0 ? -1 : 0;
}

static inline int maybe_flush(struct kilt_json_out *o)
{
	if (o->write && o->text.len >= KILT_JSON_OUT_FLUSH)
		return kilt_json_out_flush(o);
	return 0;
}

static inline int emit(struct kilt_json_out *o, const char *p, size_t n)
{
	if (append(o, p, n) < 0)
		return -1;
	return maybe_flush(o);
}

int kilt_json_out_append(struct kilt_json_out *o, const char *p, size_t n)
{
	if (o->write_failed)
		return -1;
	return emit(o, p, n);
}

void kilt_json_out_done(struct kilt_json_out *o)
{
	kbuf_done(&o->text);
}

/* A newline and `n` spaces (jansson's dump_indent with an indentation width). */
static int newline(struct kilt_json_out *o, size_t n)
{
	static const char spaces[] = "\n                                ";
	size_t k = n < sizeof(spaces) - 2 ? n : sizeof(spaces) - 2;
	if (emit(o, spaces, k + 1) < 0)
		return -1;
	for (n -= k; n; n -= k) {
		k = n < sizeof(spaces) - 2 ? n : sizeof(spaces) - 2;
		if (emit(o, spaces + 1, k) < 0)
			return -1;
	}
	return 0;
}

/* A high bit set in the bytes of w that are not written as they are (at least the first of
 * them; none when all 8 are): a control character, '"', '\\', the byte of `slashes` (ONES * '/'
 * with JSON_ESCAPE_SLASH, else 0: a NUL, already a control character) or a byte of a multibyte
 * character. Without a high bit in w, (x - ONES) has one exactly when some byte of x is 0, and
 * (w - ONES * 0x20) when some byte is below 0x20. */
static inline uint64_t special8(uint64_t w, uint64_t slashes)
{
	uint64_t t =
		w | (w - ONES * 0x20) | ((w ^ (ONES * '"')) - ONES) | ((w ^ (ONES * '\\')) - ONES);
	if (slashes) /* without, the term would mark a NUL: below 0x20, marked already */
		t |= (w ^ slashes) - ONES;
	return t & HIGHS;
}

static inline bool plain8(uint64_t w, uint64_t slashes)
{
	return !special8(w, slashes);
}

/* The index (in memory order) of the first byte special8 marked: on a little-endian machine one
 * that needs a look (a borrow only marks bytes above one that does); the caller looks at it
 * anyway. */
static inline size_t first_special(uint64_t t)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (size_t)__builtin_ctzll(t) / 8;
#else
	return (size_t)__builtin_clzll(t) / 8;
#endif
}

/* plain8 for 4 bytes. */
static inline bool plain4(uint32_t w, uint32_t slashes)
{
	const uint32_t ones = (uint32_t)ONES, highs = (uint32_t)HIGHS;
	uint32_t t =
		w | (w - ones * 0x20) | ((w ^ (ones * '"')) - ones) | ((w ^ (ones * '\\')) - ones);
	if (slashes)
		t |= (w ^ slashes) - ones;
	return !(t & highs);
}

/* What put_string does with a byte: 0 copies it; 1 escapes it, 2 checks it as UTF-8, 4 escapes
 * it with JSON_ESCAPE_SLASH ('/'). */
/* clang-format off */
static const unsigned char byte_class[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, /* 0x20 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x80 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x90 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xa0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xb0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xc0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xd0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xe0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xf0 */
};
/* clang-format on */

/* How many bytes at the start of p[0..n) are written as they are. */
static inline size_t plain_run(const char *p, size_t n, bool slash)
{
	uint64_t slashes = slash ? ONES * '/' : 0;
	unsigned stop = slash ? 7 : 3; /* the classes of bytes that end a plain run */
	size_t i = 0;
	for (; n - i >= 8; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (!plain8(w, slashes))
			break;
	}
	if (n - i >= 4) {
		/* the same test on four bytes (most keys and short values end here) */
		uint32_t w;
		memcpy(&w, p + i, 4);
		if (plain4(w, (uint32_t)slashes))
			i += 4;
	}
	while (i < n && !(byte_class[(unsigned char)p[i]] & stop))
		i++;
	return i;
}

static int put_escaped(struct kilt_json_out *o, const char *p, size_t n, size_t i, bool slash)
	__attribute__((noinline));

/* Copies p[0..n) to d[0..n) as long as it has nothing to escape (eight bytes checked at a time,
 * the tail without a loop): n when it has none, else an i such that p[0..i) are plain and
 * copied. */
static inline __attribute__((always_inline)) size_t copy_plain(char *d, const char *p, size_t n,
							       bool slash)
{
	uint64_t slashes = slash ? ONES * '/' : 0;
	size_t i = 0;
	for (; n - i >= 8; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (!plain8(w, slashes))
			return i;
		memcpy(d + i, &w, 8);
	}
	if (i == n)
		return n; /* a multiple of eight bytes: all checked */
	if (n >= 8) {
		/* the last eight bytes (some of them checked already) */
		uint64_t w;
		memcpy(&w, p + n - 8, 8);
		if (!plain8(w, slashes))
			return i;
		memcpy(d + n - 8, &w, 8);
		return n;
	}
	if (n >= 4) {
		/* the first four bytes and the last four, which may overlap */
		uint32_t a, z;
		memcpy(&a, p, 4);
		memcpy(&z, p + n - 4, 4);
		if (!plain4(a, (uint32_t)slashes) || !plain4(z, (uint32_t)slashes))
			return 0;
		memcpy(d, &a, 4);
		memcpy(d + n - 4, &z, 4);
		return n;
	}
	unsigned stop = slash ? 7 : 3;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (byte_class[c] & stop)
			return i;
		d[i] = (char)c;
	}
	return n;
}

/* put_string_between()'s way when p[i] needs a look (or the buffer must grow), p[0..i) being
 * plain ASCII. */
static __attribute__((noinline)) int put_escaped_between(struct kilt_json_out *o, const char *p,
							 size_t n, size_t i, bool slash, char lead,
							 char trail)
{
	int r = lead ? append(o, &lead, 1) : 0;
	if (r == 0)
		r = put_escaped(o, p, n, i, slash);
	if (r == 0 && trail)
		r = append(o, &trail, 1);
	return r;
}

/* put_string() with a byte written before it and one after (0: none), for `,"key":` and `,"s"`
 * in one step. */
static inline __attribute__((always_inline)) int put_string_between(struct kilt_json_out *o,
								    const char *p, size_t n,
								    bool slash, char lead,
								    char trail)
{
	struct kbuf *b = &o->text;
	if (b->cap - b->len <= n + 12 || b->max - b->len < n + 4)
		return put_escaped_between(o, p, n, plain_run(p, n, slash), slash, lead, trail);
	char *d = b->data + b->len + 1 + (lead != 0);
	size_t i = copy_plain(d, p, n, slash);
	if (i != n)
		return put_escaped_between(o, p, n, i, slash, lead, trail);
	if (lead)
		d[-2] = lead;
	d[-1] = '"';
	d[n] = '"';
	d[n + 1] = trail;
	d[n + 1 + (trail != 0)] = '\0';
	b->len += n + 2 + (lead != 0) + (trail != 0);
	return maybe_flush(o);
}

/* As jansson escapes: `"`, `\`, control characters, and `/` with JSON_ESCAPE_SLASH. Most strings
 * have nothing to escape: copied eight bytes at a time as they are checked, straight into the
 * buffer (with 8 bytes to spare past them). */
static inline __attribute__((always_inline)) int put_string(struct kilt_json_out *o, const char *p,
							    size_t n, bool slash)
{
	return put_string_between(o, p, n, slash, 0, 0);
}

/* Room for n more bytes (and the NUL) within the buffer's maximum, or -1. */
static inline int room(struct kilt_json_out *o, size_t n)
{
	struct kbuf *b = &o->text;
	if (b->cap - b->len > n && b->max - b->len >= n)
		return 0;
	kilt_json_out_reserve(o, n);
	return b->cap - b->len > n && b->max - b->len >= n ? 0 : -1;
}

/* The letter after '\' of a character escaped with two (0: written \u00XX). */
static const char short_escape[128] = {
	['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['\b'] = 'b',
	['\f'] = 'f', ['\n'] = 'n',  ['\r'] = 'r', ['\t'] = 't',
};

/* Strings up to this long get room for their worst case at once (6 bytes each). */
#define ESCAPE_ROOM_ONCE ((size_t)4 << 10)

#if defined(__SSE2__)
/* The bytes of x that are not written as they are, one bit each: a control character, '"', '\\',
 * '/' with `slash`, or a byte of a multibyte character (below 0x20 as a signed byte). In
 * `simple`, those of them that are written after a backslash as they are ('"', '\\', '/'). */
static inline unsigned look16(__m128i x, bool slash, unsigned *simple)
{
	__m128i q = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
				 _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
	if (slash)
		q = _mm_or_si128(q, _mm_cmpeq_epi8(x, _mm_set1_epi8('/')));
	*simple = (unsigned)_mm_movemask_epi8(q);
	return (unsigned)_mm_movemask_epi8(_mm_or_si128(q, _mm_cmplt_epi8(x, _mm_set1_epi8(0x20))));
}
#endif

/* The rest of a string from p[i] (p[0..i) plain ASCII, already written before d), escaped, and
 * its closing quote, in one pass with room for the worst case: 6 bytes each and 24 more (runs
 * are written sixteen or eight bytes at a time, what follows one written again). Returns the end
 * of what it wrote, or NULL when the text is not UTF-8. */
static char *escape_into(char *d, const char *p, size_t n, size_t i, bool slash)
{
	static const char hex[] = "0123456789ABCDEF";
	bool utf8_checked = false;
	uint64_t slashes = slash ? ONES * '/' : 0;
	unsigned stop = slash ? 7 : 3;
#if defined(__SSE2__)
	/* sixteen bytes, then the bytes to look at among them one after the other from one mask
	 * (a status annotation, JSON in a string, has one every few bytes); the runs between them
	 * copied from `blk` sixteen bytes at a time, what follows a run written again */
	unsigned char blk[32] = { 0 };
	while (n - i >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		unsigned simple, m = look16(x, slash, &simple);
		if (!m) {
			_mm_storeu_si128((__m128i *)(void *)d, x);
			d += 16;
			i += 16;
			continue;
		}
		_mm_storeu_si128((__m128i *)(void *)blk, x);
		if (m == simple) {
			/* only bytes written after a backslash as they are (most in JSON text):
			 * each run written with the byte that ends it */
			unsigned j = 0;
			for (; m; m &= m - 1) {
				unsigned k = (unsigned)__builtin_ctz(m);
				memcpy(d, blk + j, 16);
				d += k - j;
				*d++ = '\\';
				j = k;
			}
			memcpy(d, blk + j, 16);
			d += 16 - j;
			i += 16;
			continue;
		}
		_mm_storeu_si128((__m128i *)(void *)blk, x);
		unsigned j = 0;
		for (; m; m &= m - 1) {
			unsigned k = (unsigned)__builtin_ctz(m);
			memcpy(d, blk + j, 16);
			d += k - j;
			unsigned char c = blk[k];
			if (c >= 0x80) {
				if (!utf8_checked &&
				    kilt_utf8_valid_prefix((const unsigned char *)p + i + k,
							   n - i - k) != n - i - k)
					return NULL;
				utf8_checked = true;
				*d++ = (char)c;
			} else if (short_escape[c]) {
				d[0] = '\\';
				d[1] = short_escape[c];
				d += 2;
			} else {
				memcpy(d, "\\u00", 4);
				d[4] = hex[c >> 4];
				d[5] = hex[c & 15];
				d += 6;
			}
			j = k + 1;
		}
		memcpy(d, blk + j, 16);
		d += 16 - j;
		i += 16;
	}
#endif
	while (i < n) {
		if (n - i >= 8) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			memcpy(d, &w,
			       8); /* what follows the first byte to look at is written again */
			uint64_t t = special8(w, slashes);
			if (!t) {
				d += 8;
				i += 8;
				continue;
			}
			size_t k = first_special(t);
			d += k;
			i += k;
		}
		unsigned char c = (unsigned char)p[i];
		unsigned cls = byte_class[c] & stop;
		if (cls == 2) {
			/* everything before is ASCII: the rest decides whether it is UTF-8 */
			if (!utf8_checked &&
			    kilt_utf8_valid_prefix((const unsigned char *)p + i, n - i) != n - i)
				return NULL;
			utf8_checked = true;
			*d++ = (char)c;
		} else if (cls) {
			*d++ = '\\';
			if (short_escape[c]) {
				*d++ = short_escape[c];
			} else {
				memcpy(d, "u00", 3);
				d[3] = hex[c >> 4];
				d[4] = hex[c & 15];
				d += 5;
			}
		} else {
			*d++ = (char)c;
		}
		i++;
	}
	*d++ = '"';
	return d;
}

/* put_string's way when p[i] needs a look (or the buffer must grow), p[0..i) being plain ASCII.
 * The string goes out whole (nothing of it handed to `write` before its end), so text that is
 * not UTF-8 leaves nothing behind. */
static int put_escaped(struct kilt_json_out *o, const char *p, size_t n, size_t i, bool slash)
{
	static const char hex[] = "0123456789ABCDEF";
	struct kbuf *b = &o->text;
	size_t mark = b->len, start = 0;
	bool utf8_checked = false;
	if (n - i <= ESCAPE_ROOM_ONCE && room(o, i + 6 * (n - i) + 2 + 24) == 0) {
		/* room for the worst case and 24 bytes more (most strings): one pass */
		char *d = b->data + b->len;
		*d++ = '"';
		memcpy(d, p, i);
		d = escape_into(d + i, p, n, i, slash);
		if (!d) {
			b->data[mark] = '\0';
			return -2;
		}
		*d = '\0';
		b->len = (size_t)(d - b->data);
		return maybe_flush(o);
	}
	/* a long string: room made as it goes */
	if (room(o, 1) < 0)
		return -1;
	b->data[b->len++] = '"';
	for (;;) {
		i += plain_run(p + i, n - i, slash);
		if (i == n)
			break;
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x80) {
			if (!utf8_checked &&
			    kilt_utf8_valid_prefix((const unsigned char *)p + i, n - i) != n - i) {
				b->len = mark;
				b->data[mark] = '\0';
				return -2;
			}
			utf8_checked = true;
			while (i < n && (unsigned char)p[i] >= 0x80)
				i++;
			continue;
		}
		if (room(o, i - start + (short_escape[c] ? 2 : 6)) < 0)
			return -1;
		char *d = b->data + b->len;
		memcpy(d, p + start, i - start);
		d += i - start;
		d[0] = '\\';
		if (short_escape[c]) {
			d[1] = short_escape[c];
			b->len += i - start + 2;
		} else {
			d[1] = 'u';
			d[2] = '0';
			d[3] = '0';
			d[4] = hex[c >> 4];
			d[5] = hex[c & 15];
			b->len += i - start + 6;
		}
		start = ++i;
	}
	if (room(o, n - start + 1) < 0)
		return -1;
	memcpy(b->data + b->len, p + start, n - start);
	b->len += n - start;
	b->data[b->len++] = '"';
	b->data[b->len] = '\0';
	return maybe_flush(o);
}

/* Between two members or elements: "," then the next line, or ", " without indentation. */
static int separator(struct kilt_json_out *o, size_t width, bool compact, size_t indent)
{
	if (emit(o, ",", 1) < 0)
		return -1;
	if (width)
		return newline(o, indent);
	return compact ? 0 : emit(o, " ", 1);
}

/* printf's %.*g of `v` with `precision` 1 to 9 when |v| is from 1e-4 up to 10^precision (the
 * text has no exponent: a log line's duration in milliseconds), worked out without printf: the
 * digits are those of |v| times a power of ten (exact up to 10^22, so one rounding, relative
 * error below 2^-53, under 1.2e-7 in units of the last digit) rounded to an integer. A product
 * whose fraction lies within 1e-6 of a half (where that error could decide the rounding, or an
 * exact tie that printf breaks on the exact value), or that is not clear of the powers of ten
 * bounding its digits, is left to printf. Returns the length written to buf (at least 16
 * bytes), 0 to leave it to printf. */
static size_t format_g_fixed(char *buf, double v, int precision)
{
	static const double pow10[] = { 1e0, 1e1, 1e2, 1e3,  1e4,  1e5,	 1e6,
					1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13 };
	double a = v < 0 ? -v : v;
	if (precision < 1 || precision > 9 || !(a >= 1e-4) || !(a < pow10[precision]))
		return 0;
	int e = 0; /* the exponent of the first digit */
	if (a >= 1) {
		while (e + 1 < precision && a >= pow10[e + 1])
			e++;
	} else {
		e = -1;
		while (e > -4 && a * pow10[-e] < 1)
			e--;
	}
	double s = a * pow10[precision - 1 - e];
	double lo = pow10[precision - 1], hi = pow10[precision];
	if (!(s >= lo + 1e-6) || !(s < hi - 0.5 - 1e-6))
		return 0;
	uint64_t n = (uint64_t)s;
	double frac = s - (double)n; /* exact: s is below 2^53 */
	if (frac > 0.5 - 1e-6 && frac < 0.5 + 1e-6)
		return 0;
	n += frac > 0.5;
	char digits[9] = { 0 }; /* every one written below (cppcheck cannot tell) */
	for (int i = precision; i-- > 0; n /= 10)
		digits[i] = (char)('0' + n % 10);
	int last = precision - 1; /* the last digit kept: trailing zeros of the fraction go */
	while (last > e && last > 0 && digits[last] == '0')
		last--;
	size_t o = 0;
	if (v < 0)
		buf[o++] = '-';
	if (e >= 0) {
		memcpy(buf + o, digits, (size_t)e + 1);
		o += (size_t)e + 1;
		if (last > e) {
			buf[o++] = '.';
			memcpy(buf + o, digits + e + 1, (size_t)(last - e));
			o += (size_t)(last - e);
		}
	} else {
		buf[o++] = '0';
		buf[o++] = '.';
		for (int z = -1; z > e; z--)
			buf[o++] = '0';
		memcpy(buf + o, digits, (size_t)last + 1);
		o += (size_t)last + 1;
	}
	buf[o] = '\0';
	return o;
}

/* A real as jansson writes it with JSON_REAL_PRECISION(precision) (0: 17 digits): printf's %.*g
 * with '.' for the decimal point whatever the locale's, ".0" added when there is neither a point
 * nor an exponent, and the exponent without '+' or leading zeros. Returns its length, 0 when it
 * does not fit in `size` or `v` is not finite (jansson has no such real). */
static size_t format_real(char *buf, size_t size, double v, int precision)
{
	if (!isfinite(v))
		return 0;
	size_t fixed = size >= 16 ? format_g_fixed(buf, v, precision) : 0;
	int r = fixed ? (int)fixed : snprintf(buf, size, "%.*g", precision ? precision : 17, v);
	if (r < 0 || (size_t)r >= size)
		return 0;
	size_t n = (size_t)r;
	bool point = false;
	char *e = NULL;
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];
		if (c == 'e') {
			e = buf + i;
		} else if ((c < '0' || c > '9') && c != '-' && c != '+') {
			buf[i] = '.';
			point = true;
		}
	}
	if (!point && !e) {
		if (n + 3 > size)
			return 0;
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	if (e) {
		char *start = e + 1, *end = start + 1;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, n + 1 - (size_t)(end - buf));
			n -= (size_t)(end - start);
		}
	}
	return n;
}

static int put_value(struct kilt_json_out *o, const json_t *v, size_t flags, size_t indent,
		     unsigned depth)
{
	size_t width = flags & JSON_MAX_INDENT;
	bool compact = flags & JSON_COMPACT, slash = flags & JSON_ESCAPE_SLASH;
	char num[64];
	const char *raw;
	size_t rawlen;
	int r;
	if (depth > MAX_DEPTH)
		return -2;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		void *it = json_object_iter((json_t *)(uintptr_t)v);
		if (!it)
			return emit(o, "{}", 2);
		if (emit(o, "{", 1) < 0 || (width && newline(o, indent + width) < 0))
			return -1;
		while (it) {
			void *next = json_object_iter_next((json_t *)(uintptr_t)v, it);
			r = put_string(o, json_object_iter_key(it), json_object_iter_key_len(it),
				       slash);
			if (r < 0)
				return r;
			if (emit(o, compact ? ":" : ": ", compact ? 1 : 2) < 0)
				return -1;
			r = put_value(o, json_object_iter_value(it), flags, indent + width,
				      depth + 1);
			if (r < 0)
				return r;
			if (next && separator(o, width, compact, indent + width) < 0)
				return -1;
			it = next;
		}
		if (width && newline(o, indent) < 0)
			return -1;
		return emit(o, "}", 1);
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		if (n == 0)
			return emit(o, "[]", 2);
		if (emit(o, "[", 1) < 0 || (width && newline(o, indent + width) < 0))
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (i && separator(o, width, compact, indent + width) < 0)
				return -1;
			r = put_value(o, json_array_get(v, i), flags, indent + width, depth + 1);
			if (r < 0)
				return r;
		}
		if (width && newline(o, indent) < 0)
			return -1;
		return emit(o, "]", 1);
	}
	case JSON_STRING: {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		/* a kept number starts with a byte no UTF-8 text has (lib/json.c) */
		if (len && (unsigned char)s[0] == 0xff && kilt_json_is_raw_number(v, &raw, &rawlen))
			return emit(o, raw, rawlen);
		return put_string(o, s, len, slash);
	}
	case JSON_INTEGER: {
		/* printf's %lld (JSON_INTEGER_FORMAT) without printf */
		json_int_t i = json_integer_value(v);
		unsigned long long u = i < 0 ? 0ull - (unsigned long long)i : (unsigned long long)i;
		char *d = kilt_digits(num + sizeof(num), u);
		if (i < 0)
			*--d = '-';
		return emit(o, d, (size_t)(num + sizeof(num) - d));
	}
	case JSON_REAL: {
		size_t k = format_real(num, sizeof(num), json_real_value(v),
				       (int)((flags >> 11) & 31)); /* JSON_REAL_PRECISION's bits */
		return k ? emit(o, num, k) : -2;
	}
	case JSON_TRUE:
		return emit(o, "true", 4);
	case JSON_FALSE:
		return emit(o, "false", 5);
	case JSON_NULL:
		return emit(o, "null", 4);
	}
	return -2;
}

static int put_compact_plain(struct kilt_json_out *o, const json_t *v, size_t flags,
			     unsigned depth);
static int put_compact_slash(struct kilt_json_out *o, const json_t *v, size_t flags,
			     unsigned depth);

/* A member's value or an element after `lead` (0: none) in put_compact: a string written here
 * (most of them), anything else by put_compact. */
static inline __attribute__((always_inline)) int put_compact_child(struct kilt_json_out *o,
								   const json_t *v, size_t flags,
								   unsigned depth, char lead,
								   bool slash)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		/* a kept number starts with a byte no UTF-8 text has (lib/json.c) */
		if (!(len && (unsigned char)s[0] == 0xff))
			return put_string_between(o, s, len, slash, lead, 0);
	}
	if (lead && append(o, &lead, 1) < 0)
		return -1;
	return slash ? put_compact_slash(o, v, flags, depth)
		     : put_compact_plain(o, v, flags, depth);
}

/* put_value with JSON_COMPACT and no indentation (the answer's patch, a log line's values): the
 * same bytes with fewer steps per value. Written twice by the compiler, with and without
 * JSON_ESCAPE_SLASH (`slash` a constant: most strings' checks a step shorter without). */
static inline __attribute__((always_inline)) int
put_compact_as(struct kilt_json_out *o, const json_t *v, size_t flags, unsigned depth, bool slash)
{
	int r;
	if (depth > MAX_DEPTH)
		return -2;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		if (append(o, "{", 1) < 0)
			return -1;
		void *it = json_object_iter((json_t *)(uintptr_t)v);
		for (bool first = true; it;
		     it = json_object_iter_next((json_t *)(uintptr_t)v, it), first = false) {
			r = put_string_between(o, json_object_iter_key(it),
					       json_object_iter_key_len(it), slash, first ? 0 : ',',
					       ':');
			if (r < 0)
				return r;
			r = put_compact_child(o, json_object_iter_value(it), flags, depth + 1, 0,
					      slash);
			if (r < 0)
				return r;
		}
		return emit(o, "}", 1);
	}
	case JSON_ARRAY: {
		if (append(o, "[", 1) < 0)
			return -1;
		size_t n = json_array_size(v);
		for (size_t i = 0; i < n; i++) {
			r = put_compact_child(o, json_array_get(v, i), flags, depth + 1,
					      i ? ',' : 0, slash);
			if (r < 0)
				return r;
		}
		return emit(o, "]", 1);
	}
	case JSON_STRING: {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		if (!(len && (unsigned char)s[0] == 0xff))
			return put_string(o, s, len, slash);
		break; /* maybe a kept number */
	}
	default:
		break;
	}
	return put_value(o, v, flags, 0, depth);
}

static __attribute__((noinline)) int put_compact_plain(struct kilt_json_out *o, const json_t *v,
						       size_t flags, unsigned depth)
{
	return put_compact_as(o, v, flags, depth, false);
}

static __attribute__((noinline)) int put_compact_slash(struct kilt_json_out *o, const json_t *v,
						       size_t flags, unsigned depth)
{
	return put_compact_as(o, v, flags, depth, true);
}

/* ---- the compact writer's straight way ----------------------------------------------------- */

/* put_compact's bytes written straight to `d` while they fit before `end` (the buffer's room
 * less STRAIGHT_SLACK): the cursor stays in a register and each value costs one check of room,
 * where the general way keeps the buffer's length up to date, checks its room and whether to
 * hand it to `write` for every piece. A check allows the bytes of a token after it (a number
 * at most 63, a literal, a bracket, a string's quotes and the `,` or `:` after it) to go past
 * `end` into the slack; a string of n bytes needs n before `end`, one to escape 6 per byte left.
 * NULL when the room runs out or the value cannot be written (a string that is not UTF-8, a real
 * that is not finite, a loop): put_compact then writes it from the start the general way, which
 * makes room or gives the error. Reals are written with 17 digits: with JSON_REAL_PRECISION, the
 * general way. */
#define STRAIGHT_SLACK 128

static char *straight_plain(const json_t *v, char *d, const char *end, unsigned depth);
static char *straight_slash(const json_t *v, char *d, const char *end, unsigned depth);

/* The string p[0..n) quoted at d. */
static inline __attribute__((always_inline)) char *
straight_string(char *d, const char *end, const char *p, size_t n, bool slash)
{
	if (end - d < (ptrdiff_t)n)
		return NULL;
	size_t i = 0;
	*d++ = '"';
#if defined(__SSE2__)
	if (n >= 16) {
		/* sixteen bytes at a time, the last sixteen (some of them checked already)
		 * without a loop for the tail */
		unsigned simple;
		for (; n - i > 16; i += 16) {
			__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
			if (look16(x, slash, &simple))
				goto escape;
			_mm_storeu_si128((__m128i *)(void *)(d + i), x);
		}
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + n - 16));
		if (look16(x, slash, &simple))
			goto escape;
		_mm_storeu_si128((__m128i *)(void *)(d + n - 16), x);
		d[n] = '"';
		return d + n + 1;
	}
#endif
	i = copy_plain(d, p, n, slash);
	if (i != n)
		goto escape;
	d[n] = '"';
	return d + n + 1;
escape:
	/* p[0..i) are plain and written */
	if (end - (d + i) < (ptrdiff_t)(6 * (n - i)))
		return NULL;
	return escape_into(d + i, p, n, i, slash);
}

/* A member's value or an element: a string written here (most of them), anything else by
 * straight_value. */
static inline __attribute__((always_inline)) char *
straight_child(const json_t *v, char *d, const char *end, unsigned depth, bool slash)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		/* a kept number starts with a byte no UTF-8 text has (lib/json.c) */
		if (!(len && (unsigned char)s[0] == 0xff))
			return straight_string(d, end, s, len, slash);
	}
	return slash ? straight_slash(v, d, end, depth) : straight_plain(v, d, end, depth);
}

/* A value that is neither an object nor an array (d <= end). */
static __attribute__((noinline)) char *straight_scalar(const json_t *v, char *d, const char *end,
						       bool slash)
{
	switch (json_typeof(v)) {
	case JSON_STRING: {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		const char *raw;
		size_t rawlen;
		if (!(len && (unsigned char)s[0] == 0xff))
			return slash ? straight_string(d, end, s, len, true)
				     : straight_string(d, end, s, len, false);
		if (!kilt_json_is_raw_number(v, &raw, &rawlen) || end - d < (ptrdiff_t)rawlen)
			return NULL;
		memcpy(d, raw, rawlen);
		return d + rawlen;
	}
	case JSON_INTEGER: {
		/* printf's %lld (JSON_INTEGER_FORMAT) without printf */
		char num[KILT_DIGITS_MAX + 1];
		json_int_t i = json_integer_value(v);
		unsigned long long u = i < 0 ? 0ull - (unsigned long long)i : (unsigned long long)i;
		char *s = kilt_digits(num + sizeof(num), u);
		if (i < 0)
			*--s = '-';
		size_t k = (size_t)(num + sizeof(num) - s);
		memcpy(d, s, k);
		return d + k;
	}
	case JSON_TRUE:
		memcpy(d, "true", 4);
		return d + 4;
	case JSON_FALSE:
		memcpy(d, "false", 5);
		return d + 5;
	case JSON_NULL:
		memcpy(d, "null", 4);
		return d + 4;
	case JSON_REAL: {
		/* 17 digits: put_compact comes this way only without JSON_REAL_PRECISION */
		char num[64];
		size_t k = format_real(num, sizeof(num), json_real_value(v), 0);
		if (!k)
			return NULL;
		memcpy(d, num, k);
		return d + k;
	}
	default:
		return NULL;
	}
}

static inline __attribute__((always_inline)) char *
straight_value(const json_t *v, char *d, const char *end, unsigned depth, bool slash)
{
	if (depth > MAX_DEPTH || d > end)
		return NULL;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		json_t *obj = (json_t *)(uintptr_t)v;
		*d++ = '{';
		for (void *it = json_object_iter(obj); it;) {
			d = straight_string(d, end, json_object_iter_key(it),
					    json_object_iter_key_len(it), slash);
			if (!d)
				return NULL;
			*d++ = ':';
			d = straight_child(json_object_iter_value(it), d, end, depth + 1, slash);
			if (!d)
				return NULL;
			it = json_object_iter_next(obj, it);
			if (it)
				*d++ = ',';
		}
		if (d > end)
			return NULL;
		*d++ = '}';
		return d;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		*d++ = '[';
		for (size_t i = 0; i < n; i++) {
			if (i)
				*d++ = ',';
			d = straight_child(json_array_get(v, i), d, end, depth + 1, slash);
			if (!d)
				return NULL;
		}
		if (d > end)
			return NULL;
		*d++ = ']';
		return d;
	}
	default:
		return straight_scalar(v, d, end, slash);
	}
}

static __attribute__((noinline)) char *straight_plain(const json_t *v, char *d, const char *end,
						      unsigned depth)
{
	return straight_value(v, d, end, depth, false);
}

static __attribute__((noinline)) char *straight_slash(const json_t *v, char *d, const char *end,
						      unsigned depth)
{
	return straight_value(v, d, end, depth, true);
}

/* The last byte the buffer's text may reach (its NUL's place), or 0. */
static inline size_t text_limit(const struct kbuf *b)
{
	size_t limit = b->cap ? b->cap - 1 : 0;
	return limit < b->max ? limit : b->max;
}

static int put_compact(struct kilt_json_out *o, const json_t *v, size_t flags, unsigned depth)
{
	bool slash = flags & JSON_ESCAPE_SLASH;
	struct kbuf *b = &o->text;
	size_t limit = text_limit(b);
	if (!(flags & JSON_REAL_PRECISION(31)) && limit > b->len &&
	    limit - b->len > 2 * STRAIGHT_SLACK) {
		char *start = b->data + b->len, *end = b->data + limit - STRAIGHT_SLACK;
		char *d = slash ? straight_slash(v, start, end, depth)
				: straight_plain(v, start, end, depth);
		if (d) {
			*d = '\0';
			b->len = (size_t)(d - b->data);
			return maybe_flush(o);
		}
		*start = '\0';
	}
	return slash ? put_compact_slash(o, v, flags, depth)
		     : put_compact_plain(o, v, flags, depth);
}

int kilt_json_out_value(struct kilt_json_out *o, const json_t *v, size_t flags, size_t indent)
{
	if (o->write_failed)
		return -1;
	if (!v || (flags & REFUSED_FLAGS) ||
	    (!(flags & JSON_ENCODE_ANY) && !json_is_object(v) && !json_is_array(v)))
		return -2;
	if ((flags & JSON_COMPACT) && !(flags & JSON_MAX_INDENT))
		return put_compact(o, v, flags, 0);
	return put_value(o, v, flags, indent, 0);
}

int kilt_json_out_string(struct kilt_json_out *o, const char *p, size_t n, size_t flags)
{
	if (o->write_failed)
		return -1;
	return put_string(o, p, n, flags & JSON_ESCAPE_SLASH);
}

int kilt_json_dump_callback(const json_t *v, size_t flags, json_dump_callback_t callback,
			    void *data)
{
	struct kilt_json_out o;
	kilt_json_out_init(&o, callback, data);
	int r = kilt_json_out_value(&o, v, flags, 0);
	if (r == 0)
		r = kilt_json_out_flush(&o);
	kilt_json_out_done(&o);
	return r < 0 ? -1 : 0;
}

/* The room a text from kilt_json_dumps starts with (a buffer of 1 KiB with its NUL): most are
 * written straight into it (put_compact). */
#define DUMPS_ROOM 1023

char *kilt_json_dumps(const json_t *v, size_t flags)
{
	struct kilt_json_out o;
	kilt_json_out_init(&o, NULL, NULL);
	kilt_json_out_reserve(&o, DUMPS_ROOM);
	if (kilt_json_out_value(&o, v, flags, 0) < 0) {
		kilt_json_out_done(&o);
		return NULL;
	}
	return kbuf_steal(&o.text);
}

/* ---- an object written member by member (kilt.h) ------------------------------------------ */

void kilt_json_object_open(struct kbuf *b)
{
	kbuf_add(b, "{", 1);
}

/* `b` as the pending text of a writer without `write`, and back. */
static void out_of(struct kilt_json_out *o, struct kbuf *b)
{
	*o = (struct kilt_json_out){ .text = *b };
}

/* ,"key": (nothing after "{"), or -1 when `b` is full. */
static int member_key(struct kilt_json_out *o, const char *key, bool slash)
{
	const struct kbuf *b = &o->text;
	char lead = b->len && b->data[b->len - 1] != '{' ? ',' : 0;
	return put_string_between(o, key, strlen(key), slash, lead, ':');
}

/* "key":value at the end of b; b unchanged unless it returns 0. */
static int member(struct kbuf *b, const char *key, const char *s, const json_t *v, size_t flags)
{
	struct kilt_json_out o;
	out_of(&o, b);
	size_t mark = b->len;
	bool slash = flags & JSON_ESCAPE_SLASH;
	int r = member_key(&o, key, slash);
	if (r == 0)
		r = s ? put_string(&o, s, strlen(s), slash)
		      : put_compact(&o, v, (flags & ~JSON_MAX_INDENT) | JSON_COMPACT, 0);
	if (r < 0) {
		o.text.len = mark;
		if (o.text.data)
			o.text.data[mark] = '\0';
	}
	*b = o.text;
	return r;
}

int kilt_json_member_string(struct kbuf *b, const char *key, const char *value)
{
	return value ? member(b, key, value, NULL, 0) : -2;
}

int kilt_json_member_value(struct kbuf *b, const char *key, const json_t *value, size_t flags)
{
	return value && !(flags & REFUSED_FLAGS) ? member(b, key, NULL, value, flags) : -2;
}

int kilt_json_member_real(struct kbuf *b, const char *key, double value, int precision)
{
	char num[64];
	size_t k = precision >= 0 && precision <= 31
			   ? format_real(num, sizeof(num), value, precision)
			   : 0;
	if (!k)
		return -2;
	struct kilt_json_out o;
	out_of(&o, b);
	size_t mark = b->len;
	int r = member_key(&o, key, false);
	if (r == 0)
		r = append(&o, num, k);
	if (r < 0) {
		o.text.len = mark;
		if (o.text.data)
			o.text.data[mark] = '\0';
	}
	*b = o.text;
	return r;
}

void kilt_json_object_close(struct kbuf *b)
{
	kbuf_add(b, "}", 1);
}
