/* SPDX-License-Identifier: Apache-2.0 */
/* Finding metadata.managedFields of an AdmissionReview's request.object and request.oldObject in
 * the review's text, so the decoder parses the review without them (they are about half of a
 * review's bytes and JSON nodes, and kilt never reads them). This is not a JSON parser: it walks
 * the document's structure (objects, arrays, where strings end) and leaves the validation of
 * everything it keeps to jansson; what it cuts out it checks itself against a strict subset of
 * JSON (objects, arrays and ASCII strings with simple escapes, no duplicate keys), so the text
 * without the cut members is valid exactly when the whole text is. Anything else (a number,
 * literal, \u escape or non-ASCII byte in managedFields, an escaped key beside it, deep nesting,
 * too many keys) finds nothing and the whole review is parsed. */
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* Deeper documents are not skimmed (jansson's own limit is 2048). */
#define MAX_DEPTH 64
/* Keys of the open objects inside a cut value remembered for the duplicate check. */
#define MAX_KEYS 512

struct key {
	const char *raw; /* borrowed: the key between its quotes, escapes as written */
	size_t len;
	uint64_t hash; /* of the key's decoded bytes */
};

struct skim {
	const char *p, *end;
	struct kilt_admission_span *spans;
	size_t n_spans;
	struct key keys[MAX_KEYS];
	size_t n_keys;
};

/* Where a walk is in the review: the path to the members cut. */
enum level { L_OTHER, L_ROOT, L_REQUEST, L_OBJECT, L_METADATA };

static int peek(const struct skim *s)
{
	return s->p < s->end ? (unsigned char)*s->p : -1;
}

static void ws(struct skim *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool eat(struct skim *s, char c)
{
	ws(s);
	if (peek(s) != (unsigned char)c)
		return false;
	s->p++;
	return true;
}

/* A string kept: only where it ends matters (jansson checks its contents). At the opening quote;
 * the content between the quotes and whether it has a backslash out. */
static bool string_loose(struct skim *s, const char **ret, size_t *ret_len, bool *ret_escaped)
{
	const char *start = ++s->p;
	bool escaped = false;
	for (;;) {
		const char *q = memchr(s->p, '"', (size_t)(s->end - s->p));
		if (!q)
			return false;
		const char *b = memchr(s->p, '\\', (size_t)(q - s->p));
		if (!b) {
			s->p = q + 1;
			break;
		}
		escaped = true;
		if (b + 1 >= s->end)
			return false;
		s->p = b + 2;
	}
	*ret = start;
	*ret_len = (size_t)(s->p - 1 - start);
	*ret_escaped = escaped;
	return true;
}

static char unescape(char c)
{
	switch (c) {
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	default:
		return c; /* " \ / */
	}
}

/* A string cut out: printable ASCII and the escapes \" \\ \/ \b \f \n \r \t only. At the opening
 * quote; the hash of its decoded bytes (FNV-1a) out. */
static bool string_strict(struct skim *s, uint64_t *ret_hash)
{
	uint64_t h = 14695981039346656037ull;
	const unsigned char *p = (const unsigned char *)s->p + 1;
	const unsigned char *end = (const unsigned char *)s->end;
	for (;;) {
		if (p >= end)
			return false;
		unsigned char c = *p++;
		if (c == '"')
			break;
		if (c < 0x20 || c >= 0x7f)
			return false; /* control character, non-ASCII */
		if (c == '\\') {
			if (p >= end || !*p || !strchr("\"\\/bfnrt", *p))
				return false;
			c = (unsigned char)unescape((char)*p++);
		}
		h = (h ^ (uint64_t)c) * 1099511628211ull;
	}
	s->p = (const char *)p;
	*ret_hash = h;
	return true;
}

/* Two keys of string_strict(), decoded, are equal. */
static bool same_key(const struct key *a, const struct key *b)
{
	const char *p = a->raw, *pe = a->raw + a->len, *q = b->raw, *qe = b->raw + b->len;
	while (p < pe && q < qe) {
		char x = *p++, y = *q++;
		if (x == '\\')
			x = unescape(*p++);
		if (y == '\\')
			y = unescape(*q++);
		if (x != y)
			return false;
	}
	return p == pe && q == qe;
}

/* A value cut out, at its first byte: an object (keys unique), an array or a string. */
static bool value_strict(struct skim *s, unsigned depth)
{
	if (depth > MAX_DEPTH)
		return false;
	uint64_t h;
	switch (peek(s)) {
	case '"':
		return string_strict(s, &h);
	case '[':
		s->p++;
		if (eat(s, ']'))
			return true;
		do {
			ws(s);
			if (!value_strict(s, depth + 1))
				return false;
		} while (eat(s, ','));
		return eat(s, ']');
	case '{': {
		s->p++;
		if (eat(s, '}'))
			return true;
		size_t first = s->n_keys;
		do {
			ws(s);
			if (peek(s) != '"' || s->n_keys == MAX_KEYS)
				return false;
			struct key k = { .raw = s->p + 1 };
			if (!string_strict(s, &k.hash))
				return false;
			k.len = (size_t)(s->p - 1 - k.raw);
			for (size_t i = first; i < s->n_keys; i++)
				if (s->keys[i].hash == k.hash && same_key(&s->keys[i], &k))
					return false; /* jansson refuses duplicates */
			s->keys[s->n_keys++] = k;
			if (!eat(s, ':'))
				return false;
			ws(s);
			if (!value_strict(s, depth + 1))
				return false;
		} while (eat(s, ','));
		s->n_keys = first;
		return eat(s, '}');
	}
	default:
		return false; /* numbers and literals are not expected there */
	}
}

static bool value(struct skim *s, enum level lv, unsigned depth);

static bool is(const char *k, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(k, name, len) == 0;
}

/* An object kept, at its '{'; at L_METADATA its managedFields member is cut. */
static bool object(struct skim *s, enum level lv, unsigned depth)
{
	s->p++;
	if (eat(s, '}'))
		return true;
	const char *comma = NULL; /* before the current member */
	bool cut_here = false;
	for (;;) {
		ws(s);
		if (peek(s) != '"')
			return false;
		const char *member = s->p, *k;
		size_t klen;
		bool escaped;
		if (!string_loose(s, &k, &klen, &escaped) || !eat(s, ':'))
			return false;
		ws(s);
		enum level child = L_OTHER;
		bool cut = false;
		if (escaped) {
			/* An escaped spelling of managedFields beside a plain one would be a duplicate
			 * jansson must see. */
			if (lv == L_METADATA)
				return false;
		} else if (lv == L_ROOT && is(k, klen, "request")) {
			child = L_REQUEST;
		} else if (lv == L_REQUEST && (is(k, klen, "object") || is(k, klen, "oldObject"))) {
			child = L_OBJECT;
		} else if (lv == L_OBJECT && is(k, klen, "metadata")) {
			child = L_METADATA;
		} else if (lv == L_METADATA && is(k, klen, "managedFields")) {
			if (cut_here || s->n_spans == KILT_ADMISSION_MAX_SPANS)
				return false;
			cut = cut_here = true;
		}
		if (!(cut ? value_strict(s, depth + 1) : value(s, child, depth + 1)))
			return false;
		const char *value_end = s->p;
		if (eat(s, ',')) {
			if (cut) /* the member and the comma after it */
				s->spans[s->n_spans++] =
					(struct kilt_admission_span){ member, s->p };
			comma = s->p - 1;
			continue;
		}
		if (!eat(s, '}'))
			return false;
		if (cut) /* the last member, and the comma before it */
			s->spans[s->n_spans++] =
				(struct kilt_admission_span){ comma ? comma : member, value_end };
		return true;
	}
}

/* A value kept, at its first byte: only containers are walked. */
static bool value(struct skim *s, enum level lv, unsigned depth)
{
	if (depth > MAX_DEPTH)
		return false;
	int c = peek(s);
	if (c == '{')
		return object(s, lv, depth);
	if (c == '[') {
		s->p++;
		if (eat(s, ']'))
			return true;
		do {
			ws(s);
			if (!value(s, L_OTHER, depth + 1))
				return false;
		} while (eat(s, ','));
		return eat(s, ']');
	}
	if (c == '"') {
		const char *k;
		size_t len;
		bool escaped;
		return string_loose(s, &k, &len, &escaped);
	}
	/* A number or literal: jansson reads it; here it only ends. */
	const char *start = s->p;
	while (s->p < s->end &&
	       (*s->p == '+' || *s->p == '-' || *s->p == '.' || (*s->p >= '0' && *s->p <= '9') ||
		(*s->p >= 'a' && *s->p <= 'z') || (*s->p >= 'A' && *s->p <= 'Z')))
		s->p++;
	return s->p > start;
}

size_t kilt_admission_skim(const char *text, size_t len, struct kilt_admission_span *spans)
{
	/* not zeroed: keys[] (12 KiB) is written before it is read */
	struct skim *s = xmalloc(sizeof(*s));
	s->p = text;
	s->end = text + len;
	s->spans = spans;
	s->n_spans = 0;
	s->n_keys = 0;
	ws(s);
	size_t n = 0;
	if (peek(s) == '{' && object(s, L_ROOT, 1))
		n = s->n_spans;
	free(s);
	return n;
}
