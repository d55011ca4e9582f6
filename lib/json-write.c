/* SPDX-License-Identifier: Apache-2.0 */
/* JSON text written as jansson writes it, byte for byte, kept numbers (lib/json.c) as written,
 * and whole runs at a time: jansson's dump hands its text to a callback a few bytes at a time,
 * which is most of what writing a large template costs (the output of kilt inject, the macro's
 * reply, the undo labels of every container). unit/test_json_write and unit/test_json hold the
 * bytes to jansson's for every flag accepted here. */
#include <inttypes.h>

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

static inline int emit(struct kilt_json_out *o, const char *p, size_t n)
{
	struct kbuf *b = &o->text;
	if (b->cap - b->len > n && b->max - b->len >= n) {
		/* kbuf_add's work without its call: most pieces are a few bytes */
		memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
	} else if (kbuf_add(b, p, n) < 0) {
		return -1;
	}
	if (o->write && o->text.len >= KILT_JSON_OUT_FLUSH)
		return kilt_json_out_flush(o);
	return 0;
}

int kilt_json_out_raw(struct kilt_json_out *o, const char *p, size_t n)
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

/* As jansson escapes: `"`, `\`, control characters, and `/` with JSON_ESCAPE_SLASH. */
static int put_string(struct kilt_json_out *o, const char *p, size_t n, bool slash)
{
	if (kilt_utf8_valid_prefix((const unsigned char *)p, n) != n)
		return -2;
	if (emit(o, "\"", 1) < 0)
		return -1;
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c != '"' && c != '\\' && !(c == '/' && slash))
			continue;
		if (i > start && emit(o, p + start, i - start) < 0)
			return -1;
		char esc[8];
		size_t k = 2;
		esc[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
		case '/':
			esc[1] = (char)c;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)c);
			k = 6;
		}
		if (emit(o, esc, k) < 0)
			return -1;
		start = i + 1;
	}
	if (n > start && emit(o, p + start, n - start) < 0)
		return -1;
	return emit(o, "\"", 1);
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
	case JSON_STRING:
		if (kilt_json_is_raw_number(v, &raw, &rawlen))
			return emit(o, raw, rawlen);
		return put_string(o, json_string_value(v), json_string_length(v), slash);
	case JSON_INTEGER:
		r = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return emit(o, num, (size_t)r);
	case JSON_REAL: {
		/* jansson's own formatting of reals (precision, ".0", the exponent) */
		size_t k = json_dumpb(v, num, sizeof(num),
				      JSON_ENCODE_ANY | (flags & JSON_REAL_PRECISION(31)));
		if (k == 0 || k >= sizeof(num))
			return -2;
		return emit(o, num, k);
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

int kilt_json_out_value(struct kilt_json_out *o, const json_t *v, size_t flags, size_t indent)
{
	if (o->write_failed)
		return -1;
	if (!v || (flags & REFUSED_FLAGS) ||
	    (!(flags & JSON_ENCODE_ANY) && !json_is_object(v) && !json_is_array(v)))
		return -2;
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

char *kilt_json_dumps(const json_t *v, size_t flags)
{
	struct kilt_json_out o;
	kilt_json_out_init(&o, NULL, NULL);
	if (kilt_json_out_value(&o, v, flags, 0) < 0) {
		kilt_json_out_done(&o);
		return NULL;
	}
	return kbuf_steal(&o.text);
}
