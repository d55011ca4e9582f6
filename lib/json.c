/* SPDX-License-Identifier: Apache-2.0 */
/* JSON numbers kept as written. jansson holds integers in 64 bits and reals in doubles, so it
 * refuses 123456789012345678901234567890 and rounds 0.12345678901234567890, which a template
 * may hold in a field kilt never touches (CloudFormation accepts both). kilt_json_loadb reads
 * such a number into a value that keeps its text, and kilt's writers (json-write.c) put that text back. */
#include <float.h>
#include <stdint.h>
#include <math.h>

#include "internal.h"
#include "kilt.h"

/* The value is a string whose first byte, 0xff, never starts a UTF-8 text: jansson's parser and
 * kilt's YAML reader accept UTF-8 only, so no input string can pass for one, and jansson's own
 * writers refuse it rather than write something else. */
#define RAW_MARK '\xff'

json_t *kilt_json_raw_number(const char *text, size_t len)
{
	char *b = xmalloc(len + 1);
	b[0] = RAW_MARK;
	memcpy(b + 1, text, len);
	json_t *v = json_stringn_nocheck(b, len + 1);
	free(b);
	if (!v)
		abort();
	return v;
}

bool kilt_json_is_raw_number(const json_t *v, const char **ret_text, size_t *ret_len)
{
	if (!json_is_string(v) || json_string_length(v) < 2 || json_string_value(v)[0] != RAW_MARK)
		return false;
	if (ret_text)
		*ret_text = json_string_value(v) + 1;
	if (ret_len)
		*ret_len = json_string_length(v) - 1;
	return true;
}

/* Length of the JSON number at p (grammar of RFC 8259), or 0. */
static size_t number_len(const char *p, size_t n)
{
	size_t i = 0;
	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0')
		i++;
	else if (i < n && p[i] >= '1' && p[i] <= '9')
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
	else
		return 0;
	if (i < n && p[i] == '.') {
		size_t d = ++i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == d)
			return 0;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		size_t d = i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == d)
			return 0;
	}
	return i;
}

bool kilt_json_number_exact(const char *p, size_t n)
{
	if (n == 0 || number_len(p, n) != n)
		return false;
	bool neg = p[0] == '-';
	const char *d = p + neg;
	size_t dn = n - neg;
	if (!memchr(d, '.', dn) && !memchr(d, 'e', dn) && !memchr(d, 'E', dn)) {
		/* an integer: jansson's json_int_t is 64 bits */
		static const char max[] = "9223372036854775807", min[] = "9223372036854775808";
		const char *lim = neg ? min : max;
		return dn < 19 || (dn == 19 && memcmp(d, lim, 19) <= 0);
	}
	/* a real: up to DBL_DIG significant digits in the normal range come back as written
	 * (value for value) from a double printed with 15 digits */
	size_t sig = 0, zeros = 0;
	bool lead = true;
	for (size_t i = 0; i < dn && d[i] != 'e' && d[i] != 'E'; i++) {
		if (d[i] == '.')
			continue;
		if (lead && d[i] == '0')
			continue;
		lead = false;
		if (d[i] == '0') {
			zeros++;
		} else {
			sig += zeros + 1;
			zeros = 0;
		}
	}
	if (sig > DBL_DIG)
		return false;
	char buf[64];
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	double x = strtod(buf, NULL);
	if (errno == ERANGE || !isfinite(x))
		return false;
	return sig == 0 ? x == 0 : fpclassify(x) == FP_NORMAL;
}

json_t *kilt_json_number_keep(const char *p, size_t len)
{
	if (len == 0 || number_len(p, len) != len || kilt_json_number_exact(p, len))
		return NULL;
	return kilt_json_raw_number(p, len);
}

size_t kilt_json_number_yaml11(const char *p, size_t n, char *out, size_t size)
{
	const char *e = memchr(p, 'e', n);
	if (!e)
		e = memchr(p, 'E', n);
	size_t mant = e ? (size_t)(e - p) : n;
	bool real = e || memchr(p, '.', n);
	bool dot = memchr(p, '.', mant) != NULL;
	bool sign = e && e + 1 < p + n && (e[1] == '+' || e[1] == '-');
	size_t k = 0;
	if (size < n + 4) /* at most ".0", '+' and the NUL are added */
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (real && i == mant && !dot) {
			out[k++] = '.';
			out[k++] = '0';
		}
		out[k++] = p[i];
		if (e && p + i == e && !sign)
			out[k++] = '+';
	}
	out[k] = '\0';
	return k;
}

/* ---- reading -------------------------------------------------------------------------------- */

struct swap {
	size_t at, len; /* the number's place in the input */
	size_t new_at, new_len; /* its stand-in's place in the text jansson reads */
};

struct reader {
	struct swap *v; /* owned */
	size_t n, cap;
	json_t **numbers; /* owned: the kept numbers, by stand-in index */
	size_t found; /* stand-ins put back */
	bool stray; /* a string that reads as a stand-in kilt did not make */
};

#define STAND_IN "\\u0000kilt-number:"
#define STAND_IN_DECODED "\0kilt-number:"

/* Finds the numbers jansson cannot hold exactly, outside strings; false when there are none. */
static bool find_numbers(const char *t, size_t len, struct reader *r)
{
	for (size_t i = 0; i < len;) {
		char c = t[i];
		if (c == '"') {
			for (i++; i < len && t[i] != '"'; i++)
				if (t[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (c != '-' && !(c >= '0' && c <= '9')) {
			i++;
			continue;
		}
		size_t k = i;
		while (k < len && strchr("+-.0123456789eE", t[k]))
			k++;
		bool delimited = (i == 0 || (t[i - 1] && strchr(" \t\r\n,:[", t[i - 1]))) &&
				 (k == len || (t[k] && strchr(" \t\r\n,:]}", t[k])));
		if (delimited && number_len(t + i, k - i) == k - i &&
		    !kilt_json_number_exact(t + i, k - i)) {
			if (r->n == r->cap) {
				r->cap = r->cap ? 2 * r->cap : 8;
				r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
			}
			r->v[r->n++] = (struct swap){ .at = i, .len = k - i };
		}
		i = k;
	}
	return r->n > 0;
}

/* The kept number a stand-in string names (owned by the caller now), or NULL when `x` is no
 * stand-in; a stand-in kilt did not make (or one seen twice) marks the reading stray. */
static json_t *take(const json_t *x, struct reader *r)
{
	size_t k = sizeof(STAND_IN_DECODED) - 1;
	if (!json_is_string(x) || json_string_length(x) <= k ||
	    memcmp(json_string_value(x), STAND_IN_DECODED, k) != 0)
		return NULL;
	unsigned long idx = strtoul(json_string_value(x) + k, NULL, 10);
	json_t *num = idx < r->n ? r->numbers[idx] : NULL;
	if (!num) {
		r->stray = true;
		return NULL;
	}
	r->numbers[idx] = NULL;
	r->found++;
	return num;
}

/* Puts the kept numbers back in place of their stand-ins. */
static void put_back(json_t *v, struct reader *r, unsigned depth)
{
	if (depth > 4096)
		return;
	if (json_is_object(v)) {
		const char *k;
		json_t *x, *num;
		json_object_foreach (v, k, x) {
			if ((num = take(x, r)))
				json_object_set_new(v, k, num);
			else
				put_back(x, r, depth + 1);
		}
	}
	for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
		json_t *x = json_array_get(v, i), *num = take(x, r);
		if (num)
			json_array_set_new(v, i, num);
		else
			put_back(x, r, depth + 1);
	}
}

/* Whether a string holding NUL is left in the tree (jansson refuses one without JSON_ALLOW_NUL;
 * the stand-ins needed it). */
static bool holds_nul(const json_t *v, unsigned depth)
{
	if (depth > 4096)
		return false;
	if (json_is_string(v))
		return memchr(json_string_value(v), '\0', json_string_length(v)) != NULL;
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach ((json_t *)(uintptr_t)v, k, x)
			if (holds_nul(x, depth + 1))
				return true;
	}
	for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++)
		if (holds_nul(json_array_get(v, i), depth + 1))
			return true;
	return false;
}

/* jansson's line and column (characters) of byte `pos` of the input. */
static void locate(const char *t, size_t pos, json_error_t *jerr)
{
	int line = 1, column = 0;
	for (size_t i = 0; i < pos; i++) {
		if (t[i] == '\n') {
			line++;
			column = 0;
		} else if (((unsigned char)t[i] & 0xc0) != 0x80) {
			column++;
		}
	}
	jerr->line = line;
	jerr->column = column;
	jerr->position = (int)pos;
}

json_t *kilt_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *jerr)
{
	struct reader r = { 0 };
	/* (a stream's reader needs jansson's own end position: not a template) */
	if ((flags & JSON_DISABLE_EOF_CHECK) || !find_numbers(buf, len, &r)) {
		free(r.v);
		return kilt_json_parse(buf, len, flags, jerr);
	}
	json_error_t local;
	if (!jerr)
		jerr = &local;
	/* jansson reads a copy where each such number is a string standing in for it */
	struct kbuf t;
	kbuf_init(&t, SIZE_MAX / 2);
	size_t from = 0;
	for (size_t i = 0; i < r.n; i++) {
		(void)kbuf_add(&t, buf + from, r.v[i].at - from);
		r.v[i].new_at = t.len;
		(void)kbuf_printf(&t, "\"" STAND_IN "%zu\"", i);
		r.v[i].new_len = t.len - r.v[i].new_at;
		from = r.v[i].at + r.v[i].len;
	}
	(void)kbuf_add(&t, buf + from, len - from);
	json_t *v = json_loadb(t.data, t.len, flags | JSON_ALLOW_NUL, jerr);
	if (!v) {
		/* the error's place in the input */
		long long pos = jerr->position > 0 ? jerr->position : 0, at = pos;
		for (size_t i = 0; i < r.n && (long long)r.v[i].new_at <= pos; i++) {
			const struct swap *w = &r.v[i];
			if (pos <= (long long)(w->new_at + w->new_len)) {
				/* at a stand-in: the error is about its number, named as written
				 * (where a key must be, jansson speaks of NUL in a key) */
				at = (long long)(w->at + w->len);
				char what[100]; /* room for the number in jerr->text */
				const char *near = strstr(jerr->text, " near ");
				snprintf(what, sizeof(what), "%.*s",
					 near ? (int)(near - jerr->text) : (int)strlen(jerr->text),
					 jerr->text);
				if (strstr(what, "NUL byte in object key"))
					snprintf(what, sizeof(what), "string or '}' expected");
				snprintf(jerr->text, sizeof(jerr->text), "%s near '%.*s'", what,
					 (int)(w->len > 40 ? 40 : w->len), buf + w->at);
				break;
			}
			at = pos - (long long)(w->new_at + w->new_len) +
			     (long long)(w->at + w->len);
		}
		locate(buf, at < 0 ? 0 : (size_t)at > len ? len : (size_t)at, jerr);
	} else {
		r.numbers = xmalloc(r.n * sizeof(*r.numbers));
		for (size_t i = 0; i < r.n; i++)
			r.numbers[i] = kilt_json_raw_number(buf + r.v[i].at, r.v[i].len);
		json_t *root = take(v, &r); /* a number alone (JSON_DECODE_ANY) */
		if (root) {
			json_decref(v);
			v = root;
		} else {
			put_back(v, &r, 0);
		}
		bool nul = !(flags & JSON_ALLOW_NUL) && holds_nul(v, 0);
		if (r.stray || nul || r.found != r.n) {
			/* a string that looks like a stand-in, or NUL the caller refuses: jansson's
			 * own reading of the input says what is wrong */
			json_decref(v);
			v = json_loadb(buf, len, flags, jerr);
		}
		for (size_t i = 0; i < r.n; i++)
			json_decref(r.numbers[i]);
		free(r.numbers);
	}
	kbuf_done(&t);
	free(r.v);
	return v;
}

void kilt_json_members(const json_t *obj, const struct kilt_json_key *keys, size_t n,
		       const json_t **ret)
{
	for (size_t i = 0; i < n; i++)
		ret[i] = NULL;
	json_t *o = (json_t *)(uintptr_t)obj;
	if (!json_is_object(o))
		return;
	/* a key is in an object once: the walk ends when every key is found */
	size_t found = 0;
	for (void *it = json_object_iter(o); it && found < n; it = json_object_iter_next(o, it)) {
		const char *k = json_object_iter_key(it);
		size_t len = json_object_iter_key_len(it);
		for (size_t i = 0; i < n; i++)
			if (keys[i].len == len && keys[i].s[0] == k[0] &&
			    memcmp(keys[i].s, k, len) == 0) {
				ret[i] = json_object_iter_value(it);
				found++;
				break;
			}
	}
}

json_t *kilt_json_copy_argv(const json_t *argv)
{
	size_t n = json_array_size(argv);
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++) {
		const json_t *el = json_array_get(argv, i);
		json_array_append_new(out, json_is_string(el)
						   ? json_stringn_nocheck(json_string_value(el),
									  json_string_length(el))
						   : json_deep_copy(el));
	}
	return out;
}
