/* SPDX-License-Identifier: Apache-2.0 */
/* JSON text into jansson values as json_loadb builds them, faster: jansson's reader takes a
 * document a byte at a time through a stream, a UTF-8 check and a growing token buffer, which was
 * a third of the webhook's CPU time per review. This reader scans runs of plain string bytes at
 * once and makes strings from the input where they hold no escape. It builds the same values
 * (same types, same members in the same order) for every text it accepts, and it accepts only
 * what json_loadb accepts; anything else (an error, a duplicate key, a number jansson cannot
 * hold, very deep nesting) is handed to json_loadb, so errors and their positions are jansson's.
 * fuzz/fuzz_admission holds the two equal on every input. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "kilt.h"

/* Deeper documents go to jansson (its own limit is 2048). */
#define MAX_DEPTH 512

struct reader {
	const unsigned char *p, *end;
	struct kbuf scratch; /* a string with escapes, decoded */
};

static inline void ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
		r->p++;
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

static void put_utf8(struct kbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	kbuf_add(b, u, n);
}

/* A run of bytes that stand for themselves in a string: none below 0x20, no '"' or '\\'. */
static inline const unsigned char *plain_run(const unsigned char *p, const unsigned char *end,
					     bool *ret_high)
{
	bool high = false;
	/* eight bytes at a time while none of them ends the run (a byte below 0x20, '"' or '\\'
	 * flags its lane; a byte of 0x80 or more never does) */
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	while (end - p >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
		uint64_t stop =
			((w - ones * 0x20) | (quote - ones) | (backslash - ones)) & ~w & highs;
		if (stop)
			break;
		high |= (w & highs) != 0;
		p += 8;
	}
	while (p < end) {
		unsigned char c = *p;
		if (c < 0x20 || c == '"' || c == '\\')
			break;
		high |= c >= 0x80;
		p++;
	}
	*ret_high = high;
	return p;
}

/* A string, at its opening quote. Its decoded bytes in *ret (borrowed: the input or the scratch
 * buffer, valid until the next string). False on anything jansson would refuse, and on a NUL
 * (refused by jansson without JSON_ALLOW_NUL, never asked for here). */
static bool string(struct reader *r, const char **ret, size_t *ret_len)
{
	const unsigned char *start = ++r->p;
	bool high;
	const unsigned char *q = plain_run(start, r->end, &high);
	if (high && kilt_utf8_valid_prefix(start, (size_t)(q - start)) != (size_t)(q - start))
		return false;
	if (q < r->end && *q == '"') {
		*ret = (const char *)start;
		*ret_len = (size_t)(q - start);
		r->p = q + 1;
		return true;
	}
	struct kbuf *b = &r->scratch;
	b->len = 0;
	kbuf_add(b, start, (size_t)(q - start));
	for (;;) {
		if (q >= r->end || *q != '\\')
			return false; /* the end, or a control character */
		if (r->end - q < 2)
			return false;
		unsigned char e = q[1];
		q += 2;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			kbuf_addc(b, (char)e);
			break;
		case 'b':
			kbuf_addc(b, '\b');
			break;
		case 'f':
			kbuf_addc(b, '\f');
			break;
		case 'n':
			kbuf_addc(b, '\n');
			break;
		case 'r':
			kbuf_addc(b, '\r');
			break;
		case 't':
			kbuf_addc(b, '\t');
			break;
		case 'u': {
			if (r->end - q < 4)
				return false;
			int v = hex4(q);
			q += 4;
			if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
				return false; /* NUL, a lone low surrogate */
			uint32_t cp = (uint32_t)v;
			if (v >= 0xD800 && v <= 0xDBFF) {
				if (r->end - q < 6 || q[0] != '\\' || q[1] != 'u')
					return false;
				int lo = hex4(q + 2);
				if (lo < 0xDC00 || lo > 0xDFFF)
					return false;
				q += 6;
				cp = 0x10000 + (((uint32_t)v - 0xD800) << 10) +
				     ((uint32_t)lo - 0xDC00);
			}
			put_utf8(b, cp);
			break;
		}
		default:
			return false;
		}
		const unsigned char *run = q;
		q = plain_run(run, r->end, &high);
		if (high && kilt_utf8_valid_prefix(run, (size_t)(q - run)) != (size_t)(q - run))
			return false;
		kbuf_add(b, run, (size_t)(q - run));
		if (q < r->end && *q == '"') {
			r->p = q + 1;
			*ret = b->data ? b->data : "";
			*ret_len = b->len;
			return true;
		}
	}
}

static inline bool digit(const unsigned char *p, const unsigned char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* A number as jansson's lexer reads it: an integer within json_int_t, or a real that does not
 * overflow a double. */
static json_t *number(struct reader *r)
{
	const unsigned char *p = r->p, *end = r->end, *start = p;
	bool neg = p < end && *p == '-';
	if (neg)
		p++;
	if (!digit(p, end))
		return NULL;
	if (*p == '0') {
		p++;
		if (digit(p, end))
			return NULL;
	} else {
		while (digit(p, end))
			p++;
	}
	bool real = false;
	if (p < end && *p == '.') {
		p++;
		if (!digit(p, end))
			return NULL;
		while (digit(p, end))
			p++;
		real = true;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!digit(p, end))
			return NULL;
		while (digit(p, end))
			p++;
		real = true;
	}
	r->p = p;
	if (!real) {
		/* at most 18 digits cannot overflow; longer ones as jansson converts them */
		size_t digits = (size_t)(p - start) - neg;
		if (digits <= 18) {
			json_int_t v = 0;
			for (const unsigned char *d = start + neg; d < p; d++)
				v = v * 10 + (*d - '0');
			return json_integer(neg ? -v : v);
		}
	}
	char buf[64];
	size_t n = (size_t)(p - start);
	if (n >= sizeof(buf))
		return NULL; /* jansson's reading of long numbers is its own */
	memcpy(buf, start, n);
	buf[n] = '\0';
	char *stop;
	errno = 0;
	if (!real) {
		long long v = strtoll(buf, &stop, 10);
		if (errno == ERANGE || *stop)
			return NULL; /* too big: jansson's error */
		return json_integer(v);
	}
	/* jansson reads reals with strtod in the C locale's spelling, as here (kilt never sets
	 * another locale) */
	double d = strtod(buf, &stop);
	if (*stop || ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE))
		return NULL;
	return json_real(d);
}

static bool word(struct reader *r, const char *w, size_t n)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
		return false;
	r->p += n;
	return true;
}

static json_t *value(struct reader *r, unsigned depth);

static json_t *object(struct reader *r, unsigned depth)
{
	r->p++;
	json_t *o = json_object();
	ws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return o;
	}
	for (;;) {
		const char *k;
		size_t klen;
		if (r->p >= r->end || *r->p != '"' || !string(r, &k, &klen))
			goto fail;
		/* A key decoded into the scratch buffer is copied (the value may reuse it); string()
		 * refuses NUL, which jansson refuses in a key. */
		char small[128];
		char *key = (char *)(uintptr_t)k;
		if (klen && k == r->scratch.data) {
			key = klen < sizeof(small) ? small : xmalloc(klen);
			memcpy(key, k, klen);
		}
		ws(r);
		if (r->p >= r->end || *r->p != ':') {
			if (key != k && key != small)
				free(key);
			goto fail;
		}
		r->p++;
		ws(r);
		json_t *v = value(r, depth + 1);
		size_t before = json_object_size(o);
		/* a duplicate key leaves the size as it was: jansson's own error, or (without
		 * JSON_REJECT_DUPLICATES) its own rule for which value stays */
		bool ok = v && json_object_setn_new_nocheck(o, key, klen, v) == 0 &&
			  json_object_size(o) == before + 1;
		if (key != k && key != small)
			free(key);
		if (!ok)
			goto fail;
		ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			ws(r);
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return o;
		}
		goto fail;
	}
fail:
	json_decref(o);
	return NULL;
}

static json_t *array(struct reader *r, unsigned depth)
{
	r->p++;
	json_t *a = json_array();
	ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return a;
	}
	for (;;) {
		json_t *v = value(r, depth + 1);
		if (!v || json_array_append_new(a, v) != 0)
			break;
		ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			ws(r);
			continue;
		}
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return a;
		}
		break;
	}
	json_decref(a);
	return NULL;
}

static json_t *value(struct reader *r, unsigned depth)
{
	if (r->p >= r->end || depth > MAX_DEPTH)
		return NULL;
	switch (*r->p) {
	case '{':
		return object(r, depth);
	case '[':
		return array(r, depth);
	case '"': {
		const char *s;
		size_t len;
		if (!string(r, &s, &len))
			return NULL;
		return json_stringn_nocheck(s, len);
	}
	case 't':
		return word(r, "true", 4) ? json_true() : NULL;
	case 'f':
		return word(r, "false", 5) ? json_false() : NULL;
	case 'n':
		return word(r, "null", 4) ? json_null() : NULL;
	default:
		return number(r);
	}
}

json_t *kilt_json_parse_fast(const char *text, size_t len)
{
	struct reader r = { .p = (const unsigned char *)text,
			    .end = (const unsigned char *)text + len };
	kbuf_init(&r.scratch, SIZE_MAX / 2);
	ws(&r);
	json_t *root = NULL;
	if (r.p < r.end && (*r.p == '{' || *r.p == '[')) {
		root = value(&r, 1);
		ws(&r);
		if (root && r.p != r.end) {
			json_decref(root);
			root = NULL;
		}
	}
	kbuf_done(&r.scratch);
	return root;
}

json_t *kilt_json_parse(const char *text, size_t len, size_t flags, json_error_t *jerr)
{
	json_t *root = NULL;
	/* JSON_DECODE_ANY changes nothing for an object or an array, the only roots read here */
	if (!(flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)))
		root = kilt_json_parse_fast(text, len);
	return root ? root : json_loadb(text, len, flags, jerr);
}
