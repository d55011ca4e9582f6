/* SPDX-License-Identifier: Apache-2.0 */
/* JSON text into jansson values as json_loadb builds them, faster: jansson's reader takes a
 * document a byte at a time through a stream, a UTF-8 check and a growing token buffer, which was
 * a third of the webhook's CPU time per review. This reader scans runs of plain string bytes at
 * once and makes strings from the input where they hold no escape. It builds the same values
 * (same types, same members in the same order) for every text it accepts, and it accepts only
 * what json_loadb accepts; anything else (an error, a duplicate key, a number jansson cannot
 * hold, very deep nesting) is handed to json_loadb, so errors and their positions are jansson's.
 * fuzz/fuzz_admission holds the two equal on every input.
 *
 * It can also leave members out (kilt_json_parse_skip): a member at one of the caller's paths is
 * read and checked as strictly as the rest (its strings, escapes, UTF-8, numbers, literals,
 * nesting) but nothing of it is built, and the keys of the objects inside it are not compared
 * for duplicates (kilt_json_parse_skip() says why). The webhook's reviews are half
 * metadata.managedFields, which kilt never reads. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "internal.h"
#include "kilt.h"

/* Deeper documents go to jansson (its own limit is 2048). */
#define MAX_DEPTH 512
struct reader {
	const unsigned char *end;
	/* a string with escapes, decoded (never longer than the text: it cannot grow without
	 * bound) */
	char *scratch; /* owned */
	size_t scratch_size;
	const struct kilt_json_skip_index *ix; /* borrowed: the paths left out, or NULL */
	struct kilt_env_lists *lists; /* borrowed: where env lists are gathered, or NULL */
};

/* The bucket in kilt_json_skip_index.filter of a key of klen bytes (0 stands for a byte past
 * its end). */
static inline unsigned bucket(const char *key, size_t klen)
{
	unsigned a = klen ? (unsigned char)key[0] : 0u, b = klen > 1 ? (unsigned char)key[1] : 0u;
	return (a + 3 * b) & (KILT_JSON_SKIP_BUCKETS - 1);
}

/* bucket() of a NUL-terminated key. */
static inline unsigned bucket_of(const char *key)
{
	return bucket(key, key[0] ? 1 + (key[1] != '\0') : 0);
}

_Static_assert(KILT_JSON_MAX_SKIP == 64, "a path is a bit of a uint64_t");

static bool same_key(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

void kilt_json_skip_index_init(struct kilt_json_skip_index *ix, const struct kilt_json_skip *skip,
			       size_t n_skip)
{
	*ix = (struct kilt_json_skip_index){ .skip = skip, .n_skip = n_skip };
	if (n_skip > KILT_JSON_MAX_SKIP) {
		ix->too_many = true;
		return;
	}
	/* the first path of each path's group at the level before, and at this one */
	uint8_t above[KILT_JSON_MAX_SKIP] = { 0 }, here[KILT_JSON_MAX_SKIP] = { 0 };
	for (size_t i = 0; i < n_skip; i++) {
		const struct kilt_json_skip *s = &skip[i];
		/* every element of an array is never left out: the indices of the others would
		 * change */
		if (s->n_keys > 0 && s->keys[s->n_keys - 1])
			ix->paths |= (uint64_t)1 << i;
	}
	for (size_t l = 0; l < KILT_JSON_SKIP_LEVELS; l++) {
		for (size_t i = 0; i < n_skip; i++) {
			const struct kilt_json_skip *s = &skip[i];
			uint64_t bit = (uint64_t)1 << i;
			if (!(ix->paths & bit) || s->n_keys <= l)
				continue;
			if (!s->keys[l])
				ix->each[l] |= bit;
			if (s->n_keys == l + 1)
				ix->ends[l] |= bit;
			size_t j = 0;
			for (; j < i; j++) {
				const struct kilt_json_skip *o = &skip[j];
				if ((ix->paths & ((uint64_t)1 << j)) && o->n_keys > l &&
				    here[j] == j && (l == 0 || above[j] == above[i]) &&
				    same_key(o->keys[l], s->keys[l]))
					break;
			}
			here[i] = (uint8_t)j;
			ix->group[l][j] |= bit;
			if (j == i && s->keys[l]) {
				ix->filter[l][bucket_of(s->keys[l])] |= bit;
				size_t len = strlen(s->keys[l]);
				ix->key_len[l][i] = (uint8_t)(len < UINT8_MAX ? len : UINT8_MAX);
			}
		}
		memcpy(above, here, sizeof(above));
	}
}

/* An index without paths: the whole text read. */
static const struct kilt_json_skip_index no_paths = { 0 };

/* Whether path `i` of `ix` is an env list's (kept), not a member left out. */
static inline bool env_list_path(const struct kilt_json_skip_index *ix, size_t i)
{
	return ix->env_lists & ((uint64_t)1 << i);
}

void kilt_json_skip_index_env_list(struct kilt_json_skip_index *ix, size_t i)
{
	if (i < ix->n_skip && !ix->too_many && (ix->paths & ((uint64_t)1 << i)))
		ix->env_lists |= (uint64_t)1 << i;
}

/* Which of the paths through an array at `depth` go on into each of its elements: those whose
 * key at the array's level is NULL. */
static uint64_t each_paths(const struct reader *r, unsigned depth, uint64_t paths)
{
	size_t level = depth - 1;
	if (level < KILT_JSON_SKIP_LEVELS)
		return paths & r->ix->each[level];
	uint64_t on = 0;
	for (uint64_t rest = paths; rest; rest &= rest - 1) {
		int i = __builtin_ctzll(rest);
		if (!r->ix->skip[i].keys[level])
			on |= (uint64_t)1 << i;
	}
	return on;
}

/* Past whitespace at p. */
static inline const unsigned char *ws(const unsigned char *p, const unsigned char *end)
{
	/* every byte JSON goes on with is above ' ', whitespace excepted */
	while (p < end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* *pp moved past whitespace; the byte there, or -1 at the end. What the API server sends has
 * no whitespace: one test then. */
static inline int next(const unsigned char **pp, const unsigned char *end)
{
	const unsigned char *p = *pp;
	if (p<end && * p> ' ')
		return *p;
	*pp = p = ws(p, end);
	return p < end ? *p : -1;
}

/* Past the byte c at *pp (after whitespace); false when another byte is there. */
static inline bool eat(const unsigned char **pp, const unsigned char *end, unsigned char c)
{
	const unsigned char *p = *pp;
	if (p < end && *p == c) {
		*pp = p + 1;
		return true;
	}
	p = ws(p, end);
	if (p < end && *p == c) {
		*pp = p + 1;
		return true;
	}
	return false;
}

static int hex4(const unsigned char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int d = kilt_hexval((char)p[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* The UTF-8 bytes of a code point into u; their count returned. */
static size_t utf8(unsigned char u[4], uint32_t cp)
{
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	u[0] = (unsigned char)(0xF0 | (cp >> 18));
	u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	u[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* The lanes of eight bytes that end a run of plain string bytes (below 0x20, '"' or '\\') have
 * their high bit set. A lane above a flagged one may be flagged wrongly (a borrow), one below
 * never: the lowest flag is the first byte that ends the run. */
static inline uint64_t run_stops(uint64_t w)
{
	uint64_t quote = w ^ (ONES * '"'), backslash = w ^ (ONES * '\\');
	return ((w - ONES * 0x20) | (quote - ONES) | (backslash - ONES)) & ~w & HIGHS;
}

#if defined(__SSE2__)
/* The mask of the sixteen bytes of v that end a run of plain string bytes: below 0x20, '"' or
 * '\\' (bit i for byte i). */
static inline unsigned window_stops(__m128i v)
{
	const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
		      control = _mm_set1_epi8(0x1f);
	return (unsigned)_mm_movemask_epi8(
		_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
			     _mm_cmpeq_epi8(_mm_min_epu8(v, control), v)));
}

/* The mask of the sixteen bytes of v that end a run of printable ASCII string bytes: below
 * 0x20 or 0x80 and more (below 0x20 as signed bytes), '"' or '\\'. */
static inline unsigned ascii_stops(__m128i v)
{
	const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
		      space = _mm_set1_epi8(0x20);
	return (unsigned)_mm_movemask_epi8(
		_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
			     _mm_cmplt_epi8(v, space)));
}
#endif

#if defined(__SSE2__)
/* The first byte from p that ends a run of printable ASCII string bytes (ascii_stops()), when it
 * is found in whole windows of sixteen before `end`; else NULL. */
static inline const unsigned char *ascii_run(const unsigned char *p, const unsigned char *end)
{
	for (; end - p >= 16; p += 16) {
		unsigned stop = ascii_stops(_mm_loadu_si128((const __m128i *)(const void *)p));
		if (stop)
			return p + __builtin_ctz(stop);
	}
	return NULL;
}
#endif

/* Bytes a to e as the low five bytes of a little-endian load of eight read them (the three
 * others masked off before the comparison; fewer bytes are given as 0 and masked off too). */
#define FIVE(a, b, c, d, e)                                                                        \
	((uint64_t)(a) | (uint64_t)(b) << 8 | (uint64_t)(c) << 16 | (uint64_t)(d) << 24 |          \
	 (uint64_t)(e) << 32)

/* A run of bytes that stand for themselves in a string: none below 0x20, no '"' or '\\'.
 * *ret_high says whether one of them is 0x80 or more (UTF-8 to check). */
static inline const unsigned char *plain_run(const unsigned char *p, const unsigned char *end,
					     bool *ret_high)
{
	uint64_t high = 0;
#if defined(__SSE2__)
	/* sixteen bytes at a time: a mask of the bytes that end the run, one of the high bytes */
	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned stop = window_stops(v);
		unsigned highs = (unsigned)_mm_movemask_epi8(v);
		if (stop) {
			high |= highs & ((stop & (0 - stop)) - 1);
			*ret_high = high != 0;
			return p + __builtin_ctz(stop);
		}
		high |= highs;
		p += 16;
	}
#endif
	while (end - p >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		uint64_t stop = run_stops(w);
		if (stop) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			/* the first byte in memory is the lowest lane */
			high |= w & HIGHS & ((stop & (0 - stop)) - 1);
			*ret_high = high != 0;
			return p + (__builtin_ctzll(stop) >> 3);
#else
			break;
#endif
		}
		high |= w & HIGHS;
		p += 8;
	}
	while (p < end) {
		unsigned char c = *p;
		if (c < 0x20 || c == '"' || c == '\\')
			break;
		high |= c & 0x80;
		p++;
	}
	*ret_high = high != 0;
	return p;
}

static void scratch_grow(struct reader *r, size_t need)
{
	size_t size = r->scratch_size ? r->scratch_size : 256;
	while (size < need)
		size *= 2;
	r->scratch = xrealloc(r->scratch, size);
	r->scratch_size = size;
}

/* Appends n bytes of the text at `from` to the scratch buffer holding *len bytes. */
static inline void scratch_add(struct reader *r, size_t *len, const unsigned char *from, size_t n)
{
	/* 16 bytes when that much is there to read: two fixed moves instead of a call */
	if (n <= 16 && r->end - from >= 16 && *len + 16 <= r->scratch_size) {
		memcpy(r->scratch + *len, from, 8);
		memcpy(r->scratch + *len + 8, from + 8, 8);
	} else {
		if (*len + n > r->scratch_size)
			scratch_grow(r, *len + n);
		memcpy(r->scratch + *len, from, n);
	}
	*len += n;
}

static inline void scratch_addc(struct reader *r, size_t *len, char c)
{
	if (*len + 1 > r->scratch_size)
		scratch_grow(r, *len + 1);
	r->scratch[(*len)++] = c;
}

/* The rest of a string from its first escape or control character at q (start..q is plain and
 * valid UTF-8): see string(). */
static __attribute__((noinline)) const unsigned char *string_rest(struct reader *r,
								  const unsigned char *start,
								  const unsigned char *q,
								  const char **ret, size_t *ret_len)
{
	const unsigned char *end = r->end;
	size_t len = 0;
	if (!r->scratch)
		scratch_grow(r, 1);
	scratch_add(r, &len, start, (size_t)(q - start));
	for (;;) {
		if (q >= end || *q != '\\')
			return NULL; /* the end, or a control character */
		if (end - q < 2)
			return NULL;
		unsigned char e = q[1];
		char c;
		q += 2;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			c = (char)e;
			break;
		case 'b':
			c = '\b';
			break;
		case 'f':
			c = '\f';
			break;
		case 'n':
			c = '\n';
			break;
		case 'r':
			c = '\r';
			break;
		case 't':
			c = '\t';
			break;
		case 'u': {
			if (end - q < 4)
				return NULL;
			int v = hex4(q);
			q += 4;
			if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
				return NULL; /* NUL, a lone low surrogate */
			uint32_t cp = (uint32_t)v;
			if (v >= 0xD800 && v <= 0xDBFF) {
				if (end - q < 6 || q[0] != '\\' || q[1] != 'u')
					return NULL;
				int lo = hex4(q + 2);
				if (lo < 0xDC00 || lo > 0xDFFF)
					return NULL;
				q += 6;
				cp = 0x10000 + (((uint32_t)v - 0xD800) << 10) +
				     ((uint32_t)lo - 0xDC00);
			}
			unsigned char u[4];
			size_t n = utf8(u, cp);
			for (size_t i = 0; i < n; i++)
				scratch_addc(r, &len, (char)u[i]);
			c = 0;
			break;
		}
		default:
			return NULL;
		}
		if (c)
			scratch_addc(r, &len, c);
		bool high;
		const unsigned char *run = q;
		q = plain_run(run, end, &high);
		if (high && kilt_utf8_valid_prefix(run, (size_t)(q - run)) != (size_t)(q - run))
			return NULL;
		scratch_add(r, &len, run, (size_t)(q - run));
		if (q < end && *q == '"') {
			*ret = r->scratch;
			*ret_len = len;
			return q + 1;
		}
	}
}

/* string() for a string that is not printable ASCII without an escape, from its first byte. */
static __attribute__((noinline)) const unsigned char *
string_slow(struct reader *r, const unsigned char *start, const char **ret, size_t *ret_len)
{
	bool high;
	const unsigned char *q = plain_run(start, r->end, &high);
	if (high && kilt_utf8_valid_prefix(start, (size_t)(q - start)) != (size_t)(q - start))
		return NULL;
	if (q < r->end && *q == '"') {
		*ret = (const char *)start;
		*ret_len = (size_t)(q - start);
		return q + 1;
	}
	return string_rest(r, start, q, ret, ret_len);
}

/* A string at its opening quote p: where it ends (after its closing quote), and its decoded
 * bytes in *ret (borrowed: the text or the scratch buffer, valid until the next string). NULL on
 * anything jansson would refuse, and on a NUL (refused by jansson without JSON_ALLOW_NUL, never
 * asked for here). */
static inline __attribute__((always_inline)) const unsigned char *
string(struct reader *r, const unsigned char *end, const unsigned char *p, const char **ret,
       size_t *ret_len)
{
	const unsigned char *start = p + 1;
#if defined(__SSE2__)
	/* most strings are printable ASCII without an escape: their closing quote is the first
	 * stop of a window (end: r->end, in the caller's register) */
	for (const unsigned char *w = start; end - w >= 16; w += 16) {
		unsigned stop = ascii_stops(_mm_loadu_si128((const __m128i *)(const void *)w));
		if (stop) {
			w += __builtin_ctz(stop);
			if (*w != '"')
				break;
			*ret = (const char *)start;
			*ret_len = (size_t)(w - start);
			return w + 1;
		}
	}
#else
	(void)end;
#endif
	return string_slow(r, start, ret, ret_len);
}

static inline bool digit(const unsigned char *p, const unsigned char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

enum number { NOT_READ, INTEGER, REAL };

/* A number at p as jansson's lexer reads it: an integer within json_int_t, or a real that does
 * not overflow a double; where it ends in *ret_end. NOT_READ for anything else (jansson's error,
 * or a number it reads its own way). */
static enum number number(const unsigned char *p, const unsigned char *end,
			  const unsigned char **ret_end, json_int_t *ret_int, double *ret_real)
{
	const unsigned char *start = p;
	bool neg = p < end && *p == '-';
	if (neg)
		p++;
	if (!digit(p, end))
		return NOT_READ;
	if (*p == '0') {
		p++;
		if (digit(p, end))
			return NOT_READ;
	} else {
		while (digit(p, end))
			p++;
	}
	bool real = false;
	if (p < end && *p == '.') {
		p++;
		if (!digit(p, end))
			return NOT_READ;
		while (digit(p, end))
			p++;
		real = true;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!digit(p, end))
			return NOT_READ;
		while (digit(p, end))
			p++;
		real = true;
	}
	*ret_end = p;
	if (!real) {
		/* at most 18 digits cannot overflow; longer ones as jansson converts them */
		size_t digits = (size_t)(p - start) - neg;
		if (digits <= 18) {
			json_int_t v = 0;
			for (const unsigned char *d = start + neg; d < p; d++)
				v = v * 10 + (*d - '0');
			*ret_int = neg ? -v : v;
			return INTEGER;
		}
	}
	char buf[64];
	size_t n = (size_t)(p - start);
	if (n >= sizeof(buf))
		return NOT_READ; /* jansson's reading of long numbers is its own */
	memcpy(buf, start, n);
	buf[n] = '\0';
	char *stop;
	errno = 0;
	if (!real) {
		long long v = strtoll(buf, &stop, 10);
		if (errno == ERANGE || *stop)
			return NOT_READ; /* too big: jansson's error */
		*ret_int = v;
		return INTEGER;
	}
	/* jansson reads reals with strtod in the C locale's spelling, as here (kilt never sets
	 * another locale) */
	double d = strtod(buf, &stop);
	if (*stop || ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE))
		return NOT_READ;
	*ret_real = d;
	return REAL;
}

/* The literal w (n bytes) at p: where it ends, or NULL. */
static inline const unsigned char *word(const unsigned char *p, const unsigned char *end,
					const char *w, size_t n)
{
	if ((size_t)(end - p) < n || memcmp(p, w, n) != 0)
		return NULL;
	return p + n;
}

/* ---- members left out: read, checked, not built ----------------------------------------- */

/* An escape at its backslash q in a string left out: where it ends, or NULL when jansson
 * refuses it. */
static const unsigned char *skip_escape(const unsigned char *q, const unsigned char *end)
{
	if (end - q < 2)
		return NULL;
	switch (q[1]) {
	case '"':
	case '\\':
	case '/':
	case 'b':
	case 'f':
	case 'n':
	case 'r':
	case 't':
		return q + 2;
	case 'u': {
		q += 2;
		if (end - q < 4)
			return NULL;
		int v = hex4(q);
		q += 4;
		if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
			return NULL; /* NUL, a lone low surrogate */
		if (v >= 0xD800 && v <= 0xDBFF) {
			if (end - q < 6 || q[0] != '\\' || q[1] != 'u')
				return NULL;
			int lo = hex4(q + 2);
			if (lo < 0xDC00 || lo > 0xDFFF)
				return NULL;
			q += 6;
		}
		return q;
	}
	default:
		return NULL;
	}
}

/* A string left out, at its opening quote: where it ends, or NULL when string() would refuse
 * it. Nothing is decoded. The bytes of 0x80 and more are checked as UTF-8 at once, escapes
 * included: those are ASCII, which no UTF-8 sequence holds, so that is the check of each run
 * between them. */
static __attribute__((noinline)) const unsigned char *skip_string(const unsigned char *p,
								  const unsigned char *end)
{
	const unsigned char *start = p + 1, *q = start;
	unsigned high = 0;
#if defined(__SSE2__)
	while (end - q >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
		unsigned stop = window_stops(v);
		unsigned highs = (unsigned)_mm_movemask_epi8(v);
		unsigned done = 16; /* bytes of the window read */
		while (stop) {
			unsigned i = (unsigned)__builtin_ctz(stop);
			if (q[i] == '"') {
				high |= highs & ((1u << i) - 1);
				q += i;
				goto closed;
			}
			if (q[i] != '\\')
				return NULL; /* a control character */
			unsigned char e = i < 15 ? q[i + 1] : 0;
			if (e == '"' || e == '\\' || e == 'n' || e == 't' || e == 'r' || e == 'b' ||
			    e == 'f' || e == '/') {
				/* a two-byte escape within the window */
				stop &= ~(3u << i);
				continue;
			}
			/* \u, or an escape across the window's end */
			const unsigned char *after = skip_escape(q + i, end);
			if (!after)
				return NULL;
			high |= highs & ((1u << i) - 1);
			done = (unsigned)(after - q);
			highs = 0;
			break;
		}
		high |= highs;
		q += done;
	}
#endif
	while (q < end) {
		unsigned char c = *q;
		if (c == '"')
			goto closed;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (!(q = skip_escape(q, end)))
				return NULL;
			continue;
		}
		high |= c & 0x80;
		q++;
	}
	return NULL;
closed:
	if (high && kilt_utf8_valid_prefix(start, (size_t)(q - start)) != (size_t)(q - start))
		return NULL;
	return q + 1;
}

#if defined(__SSE2__)
/* The bytes of v that may follow a backslash in a two-byte escape: " / b f n r t (and \\,
 * left out: see skip_short_string()). */
static inline unsigned simple_escapes(__m128i v)
{
	return (unsigned)_mm_movemask_epi8(
		_mm_or_si128(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
						       _mm_cmpeq_epi8(v, _mm_set1_epi8('/'))),
					  _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('b')),
						       _mm_cmpeq_epi8(v, _mm_set1_epi8('f')))),
			     _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('n')),
						       _mm_cmpeq_epi8(v, _mm_set1_epi8('r'))),
					  _mm_cmpeq_epi8(v, _mm_set1_epi8('t')))));
}
#endif

/* A string left out at its opening quote p that closes within 32 bytes, its only escapes two
 * bytes long (\" \/ \b \f \n \r \t, no \\ or \u), without a control character or a byte of
 * 0x80 or more (most of the keys left out): where it ends; NULL for any other (skip_string()
 * reads it then). */
static inline __attribute__((always_inline)) const unsigned char *
skip_short_string(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
	if (end - p < 33)
		return NULL;
	const unsigned char *q = p + 1;
	/* the 32 bytes after the opening quote: a bit for each */
	__m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)q);
	__m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(q + 16));
	const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
		      space = _mm_set1_epi8(0x20);
	uint32_t quotes = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v0, quote)) |
			  (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v1, quote)) << 16;
	uint32_t bs = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v0, backslash)) |
		      (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v1, backslash)) << 16;
	/* below 0x20 or 0x80 and more: below 0x20 as signed bytes */
	uint32_t other = (uint32_t)_mm_movemask_epi8(_mm_cmplt_epi8(v0, space)) |
			 (uint32_t)_mm_movemask_epi8(_mm_cmplt_epi8(v1, space)) << 16;
	if (bs) {
		/* each backslash alone, before a byte within the 32 of a two-byte escape other
		 * than \\: that byte is not a quote that ends the string */
		if ((bs & (bs << 1)) || (bs & 0x80000000u))
			return NULL;
		uint32_t escaped = bs << 1;
		/* most are \" (managedFields' k:{\"name\":...} keys): the others compared only
		 * when there are others */
		if ((escaped & ~quotes) &&
		    (escaped & ~(simple_escapes(v0) | (uint32_t)simple_escapes(v1) << 16)))
			return NULL;
		quotes &= ~escaped;
	}
	/* the bytes before the first quote (all of them without one) */
	uint32_t before = (quotes & (0u - quotes)) - 1;
	if (!quotes || (other & before))
		return NULL;
	return q + __builtin_ctz(quotes) + 1;
#else
	(void)p;
	(void)end;
	return NULL;
#endif
}

/* p past whitespace (what the API server sends has none: one test then). */
static inline const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
	if (p<end && * p> ' ')
		return p;
	return ws(p, end);
}

/* A value left out at p, at `depth`: where it ends when value() would have built one, else
 * NULL. It is checked as value() checks what it builds (structure, strings and their escapes
 * and UTF-8, numbers, literals, nesting), in one loop without a call per nested value, except
 * for one thing: the keys of its objects are read as strings but not compared with each other,
 * so a duplicate key inside it is not refused (kilt_json_parse_skip() says why that is right). */
static __attribute__((noinline)) const unsigned char *
skip_value(const unsigned char *p, const unsigned char *end, unsigned depth)
{
	/* the byte that closes each container open, by the depth of the container */
	unsigned char closer[MAX_DEPTH + 1];
	const unsigned top = depth;
	const unsigned char *q;
#if defined(__SSE2__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* the last key's quote the loop at key_quote reads from (end - 64; end is an address
	 * inside or just past the text, far above 64) */
	const uintptr_t fast_end = (uintptr_t)end - 64;
	const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
		      space = _mm_set1_epi8(0x20);
#endif
value: /* p at a value, at depth */
	if (p >= end || depth > MAX_DEPTH)
		return NULL;
	switch (*p) {
	case '{':
		p = skip_ws(p + 1, end);
		if (p < end && *p == '}') {
			p++;
			goto after;
		}
		closer[depth++] = '}';
		goto key;
	case '[':
		p = skip_ws(p + 1, end);
		if (p < end && *p == ']') {
			p++;
			goto after;
		}
		closer[depth++] = ']';
		goto value;
	case '"':
		if (!(q = skip_short_string(p, end)) && !(q = skip_string(p, end)))
			return NULL;
		p = q;
		goto after;
	case 't':
		if (!(p = word(p, end, "true", 4)))
			return NULL;
		goto after;
	case 'f':
		if (!(p = word(p, end, "false", 5)))
			return NULL;
		goto after;
	case 'n':
		if (!(p = word(p, end, "null", 4)))
			return NULL;
		goto after;
	default: {
		/* most numbers left out are short integers (ports, seconds, modes): their digits
		 * read here, any other number by number() */
		const unsigned char *d = p + (*p == '-'), *e = d;
		while (e < end && *e >= '0' && *e <= '9')
			e++;
		if (e > d && e - d <= 18 && (*d != '0' || e - d == 1) &&
		    (e == end || (*e != '.' && *e != 'e' && *e != 'E'))) {
			p = e;
			goto after;
		}
		json_int_t i;
		double r;
		const unsigned char *n_end; /* not q: its address taken, q would live in memory */
		if (number(p, end, &n_end, &i, &r) == NOT_READ)
			return NULL;
		p = n_end;
		goto after;
	}
	}
key: /* p past whitespace where a key must be, in an object at depth - 1 */
	if (p >= end || *p != '"')
		return NULL;
key_quote: /* p at the key's opening quote */
#if defined(__SSE2__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* Most keys left out (managedFields' fieldsV1) are printable ASCII without an escape, at
	 * most sixteen bytes: the first stop of their window is their closing quote (or the byte
	 * after the window is, when it has none). Most members are "key":{} then a key, "key":{
	 * then a key, "key":{}} then a key of the object around, or "key":{} closing the object:
	 * the bytes after the key compared at once. Members of the other objects left out (a
	 * pod's probes, ports, resources) are mostly "key":"value" or "key":123 then a key: a
	 * value printable ASCII without an escape closing within its window, a short integer.
	 * Anything else is read below, from the key again. The loop runs while 64 bytes are left
	 * from the key's quote (the key's window or skip_short_string()'s 32 bytes, then the 8
	 * after the key, or the value's window or 18 digits and the 2 bytes after them) and the
	 * key's value is within MAX_DEPTH (checked where the depth grows). */
	if ((uintptr_t)p <= fast_end && depth <= MAX_DEPTH) {
		for (;;) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 1));
			unsigned stop = (unsigned)_mm_movemask_epi8(
				_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
							  _mm_cmpeq_epi8(v, backslash)),
					     _mm_cmplt_epi8(v, space)));
			q = p + 1 + __builtin_ctz(stop | 0x10000);
			/* a longer key, or one with escapes: most are managedFields' k:{\"name\":\"X\"}
			 * with X printable ASCII without an escape, compared as they are (X's
			 * window ends at most 35 bytes on), the others read by
			 * skip_short_string() */
			if (*q != '"') {
				static const char kname[14] = "k:{\\\"name\\\":\\\"";
				const unsigned char *x = p + 1 + sizeof(kname);
				if (memcmp(p + 1, kname, sizeof(kname)) == 0) {
					unsigned xs = ascii_stops(
						_mm_loadu_si128((const __m128i *)(const void *)x));
					x += __builtin_ctz(xs | 0x10000);
				}
				if (x > p + 1 + sizeof(kname) && memcmp(x, "\\\"}\"", 4) == 0) {
					q = x + 3;
				} else if ((q = skip_short_string(p, end))) {
					q--;
				} else {
					break;
				}
			}
			uint64_t w;
			memcpy(&w, q + 1, 8);
			if ((w & 0xFFFFFFFFFFull) == FIVE(':', '{', '}', ',', '"')) {
				p = q + 5;
			} else if ((w & 0xFFFFFFull) == FIVE(':', '{', '"', 0, 0)) {
				closer[depth++] = '}';
				p = q + 3;
				if (depth > MAX_DEPTH)
					goto key_quote;
			} else if ((w & 0xFFFFFFFFull) == FIVE(':', '{', '}', '}', 0)) {
				/* the object closed: the member after it, a key when that is an
				 * object's */
				p = q + 5;
				if (--depth == top)
					return p;
				if (p[0] != ',' || p[1] != '"' || closer[depth - 1] != '}')
					goto member_done;
				p++;
			} else if ((w & 0xFFFFull) == FIVE(':', '"', 0, 0, 0)) {
				const unsigned char *s = q + 3;
				unsigned sstop = ascii_stops(
					_mm_loadu_si128((const __m128i *)(const void *)s));
				s += __builtin_ctz(sstop | 0x10000);
				if (*s != '"' || s[1] != ',' || s[2] != '"') {
					p = q + 1;
					goto colon;
				}
				p = s + 2;
			} else if ((w & 0xFFull) == ':' && (unsigned char)((w >> 8) - '0') <= 9) {
				const unsigned char *d = q + 2, *e = d;
				while (e < end && *e >= '0' && *e <= '9')
					e++;
				/* not 0 then a digit, nor a fraction or an exponent (number()'s) */
				if (e - d > 18 || (*d == '0' && e - d > 1) || e[0] != ',' ||
				    e[1] != '"') {
					p = q + 1;
					goto colon;
				}
				p = e + 1;
			} else {
				p = q + 1;
				goto colon;
			}
			if ((uintptr_t)p > fast_end)
				goto key_quote;
		}
	}
#endif
	if (!(q = skip_short_string(p, end)) && !(q = skip_string(p, end)))
		return NULL;
	p = q;
colon: /* p past the key */
	if (end - p >= 3 && p[0] == ':') {
		if (p[1] == '{' && p[2] == '}' && depth <= MAX_DEPTH) {
			if (end - p >= 5 && p[3] == ',' && p[4] == '"') {
				p += 4;
				goto key_quote;
			}
			p += 3;
			goto member_done;
		}
		p++;
	} else {
		p = skip_ws(p, end);
		if (p >= end || *p != ':')
			return NULL;
		p++;
	}
	p = skip_ws(p, end);
	goto value;
after: /* a value at depth ended at p */
	if (depth == top)
		return p;
member_done: /* the same, inside a container */
	p = skip_ws(p, end);
	if (p >= end)
		return NULL;
	if (*p == ',') {
		p = skip_ws(p + 1, end);
		if (closer[depth - 1] == '}')
			goto key;
		goto value;
	}
	if (*p != closer[depth - 1])
		return NULL;
	p++;
	depth--;
	goto after;
}

/* ---- values built ------------------------------------------------------------------------ */

static const unsigned char *object(struct reader *r, const unsigned char *p, unsigned depth,
				   uint64_t paths, json_t **ret);
static const unsigned char *array(struct reader *r, const unsigned char *p, unsigned depth,
				  uint64_t paths, json_t **ret);

/* A number or a literal at p (value()): the value in *ret, where it ends returned. */
static __attribute__((noinline)) const unsigned char *scalar(const unsigned char *p,
							     const unsigned char *end, json_t **ret)
{
	switch (*p) {
	case 't':
		*ret = json_true();
		return word(p, end, "true", 4);
	case 'f':
		*ret = json_false();
		return word(p, end, "false", 5);
	case 'n':
		*ret = json_null();
		return word(p, end, "null", 4);
	default: {
		json_int_t i;
		double d;
		switch (number(p, end, &p, &i, &d)) {
		case INTEGER:
			*ret = json_integer(i);
			return p;
		case REAL:
			*ret = json_real(d);
			return p;
		case NOT_READ:
			break;
		}
		return NULL;
	}
	}
}

/* The value at p, at `depth`. `paths`: a bit for each path left out that goes through this
 * value (an object whose member's key is the path's key at depth - 1, or an array whose
 * elements are all on the path, its key there NULL). The value in *ret; where it ends returned
 * (NULL when refused). Inlined into each container's loop: most values are strings. */
static inline __attribute__((always_inline)) const unsigned char *
value(struct reader *r, const unsigned char *end, const unsigned char *p, unsigned depth,
      uint64_t paths, json_t **ret)
{
	if (p >= end || depth > MAX_DEPTH)
		return NULL;
	if (*p == '"') {
		const char *s;
		size_t len;
		if (!(p = string(r, end, p, &s, &len)))
			return NULL;
		*ret = json_stringn_nocheck(s, len);
		return p;
	}
	switch (*p) {
	case '{':
		return object(r, p, depth, paths, ret);
	case '[':
		return array(r, p, depth, paths, ret);
	default:
		return scalar(p, end, ret);
	}
}

/* Which paths the member `key` of an object at `depth` with `paths` is on: the one that ends at
 * it (the member is left out) in *ret_end (-1 when none), those that go on through it returned.
 * (A key holds no NUL: string() refuses it.) */
static inline __attribute__((always_inline)) uint64_t member_paths(const struct reader *r,
								   unsigned depth, uint64_t paths,
								   const char *key, size_t klen,
								   int *ret_end)
{
	const struct kilt_json_skip_index *ix = r->ix;
	*ret_end = -1;
	size_t level = depth - 1;
	uint64_t on = 0;
	if (level < KILT_JSON_SKIP_LEVELS) {
		/* the first path of each group of the same keys down to here that may be on it:
		 * one comparison tells the whole group */
		for (uint64_t first = paths & ix->filter[level][bucket(key, klen)]; first;
		     first &= first - 1) {
			int i = __builtin_ctzll(first);
			const char *want = ix->skip[i].keys[level];
			/* the lengths first: most keys of a bucket are not the path's */
			size_t want_len = ix->key_len[level][i];
			if (want_len < UINT8_MAX
				    ? want_len != klen || memcmp(want, key, klen) != 0
				    : strncmp(want, key, klen) != 0 || want[klen] != '\0')
				continue;
			on = ix->group[level][i] & paths;
			break;
		}
		uint64_t end = on & ix->ends[level];
		if (end) {
			*ret_end = __builtin_ctzll(end);
			return 0;
		}
		return on;
	}
	for (; paths; paths &= paths - 1) {
		int i = __builtin_ctzll(paths);
		const struct kilt_json_skip *s = &ix->skip[i];
		const char *want = s->keys[level];
		/* NULL: an array's elements, not an object's member */
		if (!want || strncmp(want, key, klen) != 0 || want[klen] != '\0')
			continue;
		if (level + 1 == s->n_keys) {
			*ret_end = i;
			return 0;
		}
		on |= (uint64_t)1 << i;
	}
	return on;
}

/* Past what follows an element of an array at *pp: ',' with the whitespace after it (the next
 * element at *pp), or ']' (*pp past it); -1 for anything else. */
static inline int element_end(const unsigned char **pp, const unsigned char *end)
{
	int c = next(pp, end);
	if (c == ',') {
		(*pp)++;
		next(pp, end);
	} else if (c == ']') {
		(*pp)++;
	} else {
		c = -1;
	}
	return c;
}

/* The names of an env list's entries while it is read, each NUL-terminated: on the stack up to
 * NAMES_ON_STACK bytes, then owned. */
#define NAMES_ON_STACK 2048
struct env_names {
	char *v; /* `stack`, or owned */
	size_t n, cap;
	char *stack;
};

/* Appends the name s of len bytes and its NUL; `readable`: how many bytes can be read at s (a
 * short name is copied as 16 bytes when that many can). */
static inline void names_add(struct env_names *nm, const char *s, size_t len, size_t readable)
{
	if (nm->cap - nm->n < len + 17) {
		size_t cap = 2 * nm->cap + len + 17;
		nm->v = nm->v == nm->stack ? memcpy(xmalloc(cap), nm->stack, nm->n)
					   : xrealloc(nm->v, cap);
		nm->cap = cap;
	}
	char *d = nm->v + nm->n;
	if (len <= 16 && readable >= 16)
		memcpy(d, s, 16);
	else
		memcpy(d, s, len);
	d[len] = '\0';
	nm->n += len + 1;
}

/* An env entry at p written as the API server writes one (kilt_json_parse_env_lists()): an
 * object of a string "name" and a string or null "value", nothing else. Where it ends, its name
 * added to `nm` (decoded); NULL when it is not so (what it added to `nm` then left there). */
static const unsigned char *plain_env_entry(struct reader *r, const unsigned char *end,
					    const unsigned char *p, struct env_names *nm)
{
#if defined(__SSE2__)
	/* most entries are {"name":"N","value":"V"}, N and V printable ASCII without an escape */
	static const char name_key[9] = "{\"name\":\"", value_key[11] = "\",\"value\":\"";
	const unsigned char *n = p + sizeof(name_key), *q, *v;
	if (end - p > (ptrdiff_t)sizeof(name_key) && memcmp(p, name_key, sizeof(name_key)) == 0 &&
	    (q = ascii_run(n, end)) && *q == '"' && end - q > (ptrdiff_t)sizeof(value_key) &&
	    memcmp(q, value_key, sizeof(value_key)) == 0 &&
	    (v = ascii_run(q + sizeof(value_key), end)) && *v == '"' && end - v >= 2 &&
	    v[1] == '}') {
		names_add(nm, (const char *)n, (size_t)(q - n), (size_t)(end - n));
		return v + 2;
	}
#endif
	unsigned seen = 0;
	if (*p != '{')
		return NULL;
	p++;
	for (;;) {
		const char *k, *s;
		size_t klen, len;
		if (next(&p, end) != '"' || !(p = string(r, end, p, &k, &klen)))
			return NULL;
		unsigned bit = klen == 4 && memcmp(k, "name", 4) == 0	 ? 1u
			       : klen == 5 && memcmp(k, "value", 5) == 0 ? 2u
									 : 0u;
		if (!bit || (seen & bit) || !eat(&p, end, ':'))
			return NULL;
		seen |= bit;
		if (next(&p, end) == '"') {
			/* string() refuses a NUL, escaped or not */
			if (!(p = string(r, end, p, &s, &len)))
				return NULL;
			if (bit == 1) /* copied before the next string() (the scratch buffer's) */
				names_add(nm, s, len, 0);
		} else if (bit == 1 || !(p = word(p, end, "null", 4))) {
			return NULL;
		}
		if (eat(&p, end, ','))
			continue;
		return seen & 1 && eat(&p, end, '}') ? p : NULL;
	}
}

/* How many entries of an env list are gathered on the stack while it is read. */
#define ENV_ON_STACK 128

/* An env list at p (the value of a member at an env-list path, at `depth`): value()'s, but its
 * plain entries (plain_env_entry()) left as json_null() to be read when first needed, the list
 * added to r->lists when it has one: its entries, its text and their names in one block. */
static const unsigned char *env_list(struct reader *r, const unsigned char *end,
				     const unsigned char *p, unsigned depth, json_t **ret)
{
	if (!r->lists || p >= end || *p != '[' || depth + 2 > MAX_DEPTH)
		return value(r, end, p, depth, 0, ret);
	const unsigned char *start = p;
	json_t *a = json_array();
	/* each entry's text (`at`, and `len` 0 for an entry decoded at once) and its name in `nm`
	 * (`name`, made the offset in the list's text at the end) */
	struct kilt_env_entry stack[ENV_ON_STACK], *e = stack;
	char names[NAMES_ON_STACK];
	struct env_names nm = { .v = names, .cap = sizeof(names), .stack = names };
	size_t n = 0, cap = ENV_ON_STACK, unread = 0;
	json_t *null = json_null(); /* jansson's one null: no reference to take */
	p++;
	if (next(&p, end) == ']') {
		*ret = a;
		return p + 1;
	}
	for (;;) {
		const unsigned char *from = p;
		size_t name = nm.n;
		const unsigned char *to = plain_env_entry(r, end, p, &nm);
		json_t *v = null;
		bool plain = to != NULL;
		if (!plain) {
			nm.n = name;
			if (!(to = value(r, end, from, depth + 1, 0, &v)))
				goto fail;
		}
		if (json_array_append_new(a, v) != 0)
			goto fail;
		if (n == cap) {
			cap *= 2;
			e = e == stack ? memcpy(xmalloc(cap * sizeof(*e)), stack, sizeof(stack))
				       : xrealloc(e, cap * sizeof(*e));
		}
		e[n++] = (struct kilt_env_entry){ .at = (size_t)(from - start),
						  .len = plain ? (size_t)(to - from) : 0,
						  .name = name };
		unread += plain;
		p = to;
		int c = element_end(&p, end);
		if (c == ',')
			continue;
		if (c == ']')
			break;
		goto fail;
	}
	if (unread) {
		struct kilt_env_lists *ls = r->lists;
		if (ls->n == ls->cap) {
			ls->cap = ls->cap ? 2 * ls->cap : 4;
			ls->v = xrealloc(ls->v, ls->cap * sizeof(*ls->v));
		}
		size_t span = (size_t)(p - start);
		struct kilt_env_entry *out = xmalloc(n * sizeof(*out) + span + nm.n);
		char *text = (char *)(out + n);
		memcpy(out, e, n * sizeof(*out));
		memcpy(text, start, span);
		memcpy(text + span, nm.v, nm.n);
		for (size_t i = 0; i < n; i++)
			out[i].name += span;
		ls->v[ls->n++] = (struct kilt_env_list){
			.list = a, .e = out, .n = n, .unread = unread, .text = text
		};
	}
	if (e != stack)
		free(e);
	if (nm.v != names)
		free(nm.v);
	*ret = a;
	return p;
fail:
	if (e != stack)
		free(e);
	if (nm.v != names)
		free(nm.v);
	json_decref(a);
	return NULL;
}

static const unsigned char *object(struct reader *r, const unsigned char *p, unsigned depth,
				   uint64_t paths, json_t **ret)
{
	const unsigned char *end = r->end;
	json_t *o = json_object();
	p++;
	if (next(&p, end) == '}') {
		*ret = o;
		return p + 1;
	}
	size_t size = 0;
	uint64_t left_out = 0; /* the paths whose member this object had */
	for (;;) {
		const char *k;
		size_t klen;
		if (next(&p, end) != '"' || !(p = string(r, end, p, &k, &klen)))
			goto fail;
		uint64_t child = 0;
		bool env = false; /* the member is an env list (kilt_json_parse_env_lists()) */
		if (paths) {
			int at;
			child = member_paths(r, depth, paths, k, klen, &at);
			if (at >= 0 && env_list_path(r->ix, (size_t)at)) {
				env = true;
			} else if (at >= 0) {
				/* a second one is a duplicate key: jansson's error */
				if (left_out & ((uint64_t)1 << at))
					goto fail;
				left_out |= (uint64_t)1 << at;
				if (!eat(&p, end, ':'))
					goto fail;
				next(&p, end);
				if (!(p = skip_value(p, end, depth + 1)))
					goto fail;
				goto next;
			}
		}
		/* A key decoded into the scratch buffer (string() refuses NUL, which jansson refuses
		 * in a key) is kept there and the value gets a new buffer: the value may hold a
		 * string with escapes too. */
		char *owned = NULL;
		if (k == r->scratch) {
			owned = r->scratch;
			r->scratch = NULL;
			r->scratch_size = 0;
		}
		json_t *v;
		if (!eat(&p, end, ':')) {
			p = NULL;
		} else {
			next(&p, end);
			p = env ? env_list(r, end, p, depth + 1, &v)
				: value(r, end, p, depth + 1, child, &v);
		}
		bool ok = p && json_object_setn_new_nocheck(o, k, klen, v) == 0;
		size++;
		if (owned)
			free(owned);
		if (!ok)
			goto fail;
	next:;
		if (eat(&p, end, ','))
			continue;
		/* a duplicate key left the size as it was: jansson's own error, or (without
		 * JSON_REJECT_DUPLICATES) its own rule for which value stays */
		if (eat(&p, end, '}') && json_object_size(o) == size) {
			*ret = o;
			return p;
		}
		goto fail;
	}
fail:
	json_decref(o);
	return NULL;
}

static const unsigned char *array(struct reader *r, const unsigned char *p, unsigned depth,
				  uint64_t paths, json_t **ret)
{
	const unsigned char *end = r->end;
	uint64_t each = paths ? each_paths(r, depth, paths) : 0;
	json_t *a = json_array();
	p++;
	if (next(&p, end) == ']') {
		*ret = a;
		return p + 1;
	}
	for (;;) {
		json_t *v;
		if (!(p = value(r, end, p, depth + 1, each, &v)) ||
		    json_array_append_new(a, v) != 0)
			break;
		int c = element_end(&p, end);
		if (c == ',')
			continue;
		if (c == ']') {
			*ret = a;
			return p;
		}
		break;
	}
	json_decref(a);
	return NULL;
}

/* kilt_json_parse_fast() with the paths' index. */
static json_t *parse_fast(const char *text, size_t len, const struct kilt_json_skip_index *ix,
			  struct kilt_env_lists *lists)
{
	if (ix->too_many)
		return NULL;
	struct reader r = { .end = (const unsigned char *)text + len, .ix = ix, .lists = lists };
	uint64_t paths = ix->paths;
	const unsigned char *p = ws((const unsigned char *)text, r.end);
	json_t *root = NULL;
	if (p < r.end && (*p == '{' || *p == '[')) {
		p = value(&r, r.end, p, 1, paths, &root);
		if (p && ws(p, r.end) != r.end) {
			json_decref(root);
			p = NULL;
		}
	}
	free(r.scratch);
	return p ? root : NULL;
}

json_t *kilt_json_parse_fast(const char *text, size_t len, const struct kilt_json_skip *skip,
			     size_t n_skip)
{
	struct kilt_json_skip_index ix;
	kilt_json_skip_index_init(&ix, skip, n_skip);
	return parse_fast(text, len, &ix, NULL);
}

/* Removes the member at path `s` from `v`, the value at its key `k`. */
static void leave_out_at(json_t *v, const struct kilt_json_skip *s, size_t k)
{
	const char *key = s->keys[k];
	if (!key) {
		size_t i;
		json_t *el;
		json_array_foreach (v, i, el) {
			leave_out_at(el, s, k + 1);
		}
	} else if (k + 1 == s->n_keys) {
		json_object_del(v, key);
	} else {
		leave_out_at(json_object_get(v, key), s, k + 1);
	}
}

/* Removes the members at the paths of `ix` from a value jansson read (not the env lists). */
static void leave_out(json_t *root, const struct kilt_json_skip_index *ix)
{
	for (size_t i = 0; i < ix->n_skip; i++)
		if (ix->skip[i].n_keys > 0 && ix->skip[i].keys[ix->skip[i].n_keys - 1] &&
		    !env_list_path(ix, i))
			leave_out_at(root, &ix->skip[i], 0);
}

/* Past a value of a text json_loadb read (flags 0), at p: strings through skip_string(),
 * containers by their brackets; NULL if it is not as jansson read it (it never should be). */
static const unsigned char *pass_value(const unsigned char *p, const unsigned char *end)
{
	size_t open = 0;
	do {
		p = ws(p, end);
		if (p >= end)
			return NULL;
		switch (*p) {
		case '"':
			if (!(p = skip_string(p, end)))
				return NULL;
			break;
		case '{':
		case '[':
			open++;
			p++;
			break;
		case '}':
		case ']':
			if (!open--)
				return NULL;
			p++;
			break;
		case ',':
		case ':':
			if (!open)
				return NULL;
			p++;
			break;
		default: { /* a number or a literal */
			const unsigned char *from = p;
			while (p<end && * p> ' ' && *p != ',' && *p != '}' && *p != ']')
				p++;
			if (p == from)
				return NULL; /* a byte jansson refused */
			/* jansson reads a NUL byte right after a number or a literal as nothing */
			if (p < end && *p == '\0')
				p++;
		}
		}
	} while (open);
	return p;
}

/* In `copy` (of `text`, which jansson read without an error up to r->end), the value of each
 * member at the reader's paths inside the object at p (at `depth`, on `paths`) replaced by a 0
 * and spaces: the same length, so jansson's positions stay (a value cut at r->end, blanked up
 * to there). Where the object ends; NULL where the text stops being as jansson read it (at
 * r->end, or in the error there), what was found before blanked. */
static const unsigned char *blank_value(struct reader *r, const unsigned char *p, unsigned depth,
					uint64_t paths, const unsigned char *text, char *copy);

static const unsigned char *blank_left_out(struct reader *r, const unsigned char *p, unsigned depth,
					   uint64_t paths, const unsigned char *text, char *copy)
{
	const unsigned char *end = r->end;
	p++;
	if (next(&p, end) == '}')
		return p + 1;
	for (;;) {
		const char *k;
		size_t klen;
		int at;
		if (next(&p, end) != '"' || !(p = string(r, end, p, &k, &klen)))
			return NULL;
		uint64_t child = member_paths(r, depth, paths, k, klen, &at);
		if (!eat(&p, end, ':'))
			return NULL;
		next(&p, end);
		const unsigned char *v = p;
		p = blank_value(r, p, depth + 1, child, text, copy);
		if (at >= 0 && !env_list_path(r->ix, (size_t)at) && v < end) {
			memset(copy + (v - text), ' ', (size_t)((p ? p : end) - v));
			copy[v - text] = '0';
		}
		if (!p)
			return NULL;
		if (eat(&p, end, ','))
			continue;
		return eat(&p, end, '}') ? p : NULL;
	}
}

/* blank_left_out() for the elements of an array at p, at `depth`, each on the paths `each`. */
static const unsigned char *blank_elements(struct reader *r, const unsigned char *p, unsigned depth,
					   uint64_t each, const unsigned char *text, char *copy)
{
	const unsigned char *end = r->end;
	p++;
	if (next(&p, end) == ']')
		return p + 1;
	for (;;) {
		next(&p, end);
		if (!(p = blank_value(r, p, depth + 1, each, text, copy)))
			return NULL;
		if (eat(&p, end, ','))
			continue;
		return eat(&p, end, ']') ? p : NULL;
	}
}

/* Past the value at p, at `depth`, on `paths`: blank_left_out() inside it when it is an object
 * or an array the paths go through. */
static const unsigned char *blank_value(struct reader *r, const unsigned char *p, unsigned depth,
					uint64_t paths, const unsigned char *text, char *copy)
{
	const unsigned char *end = r->end;
	if (paths && p < end && *p == '{')
		return blank_left_out(r, p, depth, paths, text, copy);
	uint64_t each;
	if (paths && p < end && *p == '[' && (each = each_paths(r, depth, paths)))
		return blank_elements(r, p, depth, each, text, copy);
	return pass_value(p, end);
}

/* A text json_loadb refused for a duplicate key (`jerr` holding that error): its value when
 * every duplicate is inside a member left out, else NULL with the error jansson gives first
 * when those are not taken for errors. The text is read without the duplicate check (its first
 * other error, if it has one, at `cut`), then with it once the values of the members left out
 * (before the cut) are blanked: a duplicate found there before the cut is the first error, put
 * where it is in the text itself. */
static json_t *parse_duplicates_left_out(const char *text, size_t len, size_t flags,
					 const struct kilt_json_skip_index *ix, json_error_t *jerr)
{
	json_error_t loose_err;
	json_t *root = json_loadb(text, len, flags & ~(size_t)JSON_REJECT_DUPLICATES, &loose_err);
	json_decref(root);
	size_t cut = len;
	if (!root && loose_err.position >= 0 && (size_t)loose_err.position < len)
		cut = (size_t)loose_err.position;
	struct reader r = { .end = (const unsigned char *)text + cut, .ix = ix };
	uint64_t paths = ix->paths;
	_cleanup_free_ char *copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	const unsigned char *p = ws((const unsigned char *)text, r.end);
	if (p < r.end)
		blank_value(&r, p, 1, paths, (const unsigned char *)text, copy);
	free(r.scratch);
	json_error_t strict;
	json_t *blanked = json_loadb(copy, len, flags, &strict);
	if (root && blanked)
		return blanked; /* json_loadb(text, flags 0)'s value, less what was blanked */
	json_decref(blanked);
	if (!blanked && json_error_code(&strict) == json_error_duplicate_key &&
	    strict.position >= 0 && (size_t)strict.position <= cut) {
		/* A duplicate outside what is left out, first. Its line and column as jansson
		 * counts them in the text itself (what was blanked may have held newlines and
		 * non-ASCII): a line per newline, a column per byte that is not a UTF-8
		 * continuation byte. */
		int line = 1, column = 0;
		for (size_t i = 0; i < (size_t)strict.position; i++) {
			unsigned char c = (unsigned char)text[i];
			if (c == '\n') {
				line++;
				column = 0;
			} else if (c < 0x80 || c >= 0xC0) {
				column++;
			}
		}
		strict.line = line;
		strict.column = column;
		*jerr = strict;
	} else if (!root) {
		*jerr = loose_err;
	} /* else an error of the blanked text that is not a duplicate key: never (jerr kept) */
	return NULL;
}

/* Duplicate keys inside a member left out are not refused: kilt never reads what it leaves out,
 * so no decision taken on the rest can depend on which of two values of a key there would have
 * been kept; RFC 8259 says only that names SHOULD be unique; the API server (Go's encoding/json)
 * writes reviews without duplicate keys and would itself take the last one. Everything else in
 * those members is checked, and duplicates everywhere else are refused (the member left out
 * twice in one object too). */
json_t *kilt_json_parse_skip_index(const char *text, size_t len, size_t flags,
				   const struct kilt_json_skip_index *ix, json_error_t *jerr)
{
	return kilt_json_parse_env_lists(text, len, flags, ix, NULL, jerr);
}

static void env_list_done(struct kilt_env_list *l)
{
	free(l->e); /* its text and names with it */
}

json_t *kilt_json_parse_env_lists(const char *text, size_t len, size_t flags,
				  const struct kilt_json_skip_index *ix,
				  struct kilt_env_lists *lists, json_error_t *jerr)
{
	json_t *root = NULL;
	/* JSON_DECODE_ANY changes nothing for an object or an array, the only roots read here */
	bool ours = !(flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY));
	size_t had = lists ? lists->n : 0;
	if (ours)
		root = parse_fast(text, len, ix, lists);
	if (root)
		return root;
	/* the lists gathered before the reader gave up are of a tree that is gone */
	while (lists && lists->n > had)
		env_list_done(&lists->v[--lists->n]);
	json_error_t local;
	if (!jerr)
		jerr = &local;
	root = json_loadb(text, len, flags, jerr);
	if (!root && ours && ix->n_skip && !ix->too_many && (flags & JSON_REJECT_DUPLICATES) &&
	    json_error_code(jerr) == json_error_duplicate_key)
		root = parse_duplicates_left_out(text, len, flags, ix, jerr);
	if (root && ix->n_skip)
		leave_out(root, ix);
	return root;
}

json_t *kilt_json_parse_skip(const char *text, size_t len, size_t flags,
			     const struct kilt_json_skip *skip, size_t n_skip, json_error_t *jerr)
{
	struct kilt_json_skip_index ix;
	kilt_json_skip_index_init(&ix, skip, n_skip);
	return kilt_json_parse_skip_index(text, len, flags, &ix, jerr);
}

json_t *kilt_json_parse(const char *text, size_t len, size_t flags, json_error_t *jerr)
{
	return kilt_json_parse_skip_index(text, len, flags, &no_paths, jerr);
}

/* ---- env lists read when first needed -------------------------------------------------- */

struct kilt_env_list *kilt_env_list_find(const struct kilt_env_lists *lists, const json_t *list)
{
	for (size_t i = 0; lists && i < lists->n; i++)
		if (lists->v[i].list == list)
			return lists->v[i].unread ? &lists->v[i] : NULL;
	return NULL;
}

const char *kilt_env_list_unread_name(const struct kilt_env_list *l, size_t i)
{
	return i < l->n && l->e[i].len ? l->text + l->e[i].name : NULL;
}

json_t *kilt_env_list_read(struct kilt_env_list *l, size_t i)
{
	if (i >= l->n || !l->e[i].len)
		return json_array_get(l->list, i);
	/* the text this reader took for a plain entry: it reads it again, the same way */
	json_t *entry = parse_fast(l->text + l->e[i].at, l->e[i].len, &no_paths, NULL);
	if (!entry || json_array_set_new(l->list, i, entry) != 0)
		abort();
	l->e[i].len = 0;
	l->unread--;
	return entry;
}

void kilt_env_list_read_all(struct kilt_env_list *l)
{
	for (size_t i = 0; l->unread && i < l->n; i++)
		kilt_env_list_read(l, i);
}

void kilt_env_lists_read_all(struct kilt_env_lists *lists)
{
	for (size_t i = 0; lists && i < lists->n; i++)
		kilt_env_list_read_all(&lists->v[i]);
}

void kilt_env_lists_free(struct kilt_env_lists *lists)
{
	if (!lists)
		return;
	for (size_t i = 0; i < lists->n; i++)
		env_list_done(&lists->v[i]);
	free(lists->v);
	free(lists);
}
