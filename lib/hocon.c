/* SPDX-License-Identifier: Apache-2.0 */
/* HOCON documents: the arena they live in, their sources and line tables, the public parse/free
 * entry points and the origins map (where each resolved value was defined). */
#include <stdarg.h>
#include <stdalign.h>

#include "hocon-internal.h"

/* ---- arena ---------------------------------------------------------------------------------- */

struct arena_blk {
	struct arena_blk *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

#define ARENA_BLOCK (64u * 1024u)

void *kilt_arena_alloc(struct arena *a, size_t n)
{
	n = (n + 15u) & ~(size_t)15u;
	struct arena_blk *b = a->head;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
		struct arena_blk *nb = xmalloc(sizeof(*nb) + cap);
		nb->used = 0;
		nb->cap = cap;
		if (b && cap != ARENA_BLOCK) {
			/* a big one-off allocation: keep filling the current block afterwards */
			nb->next = b->next;
			b->next = nb;
			nb->used = n;
			return nb->data;
		}
		nb->next = b;
		a->head = b = nb;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

void *kilt_arena_calloc(struct arena *a, size_t n)
{
	void *p = kilt_arena_alloc(a, n);
	memset(p, 0, n);
	return p;
}

char *kilt_arena_memdup(struct arena *a, const void *p, size_t n)
{
	char *d = kilt_arena_alloc(a, n + 1);
	if (n)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

void kilt_arena_done(struct arena *a)
{
	struct arena_blk *b = a->head;
	while (b) {
		struct arena_blk *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
}

/* ---- objects --------------------------------------------------------------------------------- */

uint32_t kilt_hocon_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

struct hfield *kilt_hobj_find(const struct hobj *o, const char *key, size_t len, uint32_t hash)
{
	if (!o->table) {
		for (uint32_t i = 0; i < o->n; i++) {
			struct hfield *f = o->fields[i];
			if (f->hash == hash && f->klen == len && memcmp(f->key, key, len) == 0)
				return f;
		}
		return NULL;
	}
	uint32_t mask = o->tcap - 1;
	for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
		uint32_t slot = o->table[i];
		if (!slot)
			return NULL;
		struct hfield *f = o->fields[slot - 1];
		if (f->hash == hash && f->klen == len && memcmp(f->key, key, len) == 0)
			return f;
	}
}

/* ---- sources --------------------------------------------------------------------------------- */

uint16_t kilt_hocon_add_src(struct kilt_hocon *doc, const char *name, const char *text, size_t len)
{
	if (doc->nsrcs == doc->capsrcs) {
		doc->capsrcs = doc->capsrcs ? doc->capsrcs * 2 : 4;
		doc->srcs = xrealloc(doc->srcs, doc->capsrcs * sizeof(*doc->srcs));
	}
	struct hsrc *s = &doc->srcs[doc->nsrcs];
	s->name = kilt_arena_memdup(&doc->arena, name, strlen(name));
	s->text = kilt_arena_memdup(&doc->arena, text, len);
	s->len = len;
	uint32_t cap = 64, n = 0;
	uint32_t *lines = xmalloc(cap * sizeof(*lines));
	lines[n++] = 0;
	const char *p = s->text, *end = s->text + len;
	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		p++;
		if (n == cap) {
			cap *= 2;
			lines = xrealloc(lines, cap * sizeof(*lines));
		}
		lines[n++] = (uint32_t)(p - s->text);
	}
	s->lines = lines;
	s->nlines = n;
	doc->input_bytes += len;
	return (uint16_t)doc->nsrcs++;
}

void kilt_hocon_locate(const struct kilt_hocon *doc, uint16_t file, uint32_t off,
		       unsigned *ret_line, unsigned *ret_col)
{
	const struct hsrc *s = &doc->srcs[file];
	uint32_t lo = 0, hi = s->nlines;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->lines[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	unsigned col = 1;
	for (uint32_t i = s->lines[lo]; i < off && i < s->len; i++)
		if (((unsigned char)s->text[i] & 0xC0) != 0x80)
			col++;
	*ret_line = lo + 1;
	*ret_col = col;
}

int kilt_hocon_error_at(const struct kilt_hocon *doc, uint16_t file, uint32_t off,
			struct kilt_error *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	unsigned line, col;
	kilt_hocon_locate(doc, file, off, &line, &col);
	char msg[sizeof(err->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kilt_error_set(err, code, doc->srcs[file].name, line, col, "%s", msg);
}

/* ---- public API ------------------------------------------------------------------------------ */

void kilt_hocon_limits_default(struct kilt_hocon_limits *ret)
{
	*ret = (struct kilt_hocon_limits){
		.max_input_bytes = 8u << 20,
		.max_depth = 128,
		.max_include_depth = 16,
		.max_subst_depth = 64,
		.includes = KILT_HOCON_INCLUDE_FILES,
	};
}

static struct kilt_hocon *doc_new(const struct kilt_hocon_limits *limits)
{
	struct kilt_hocon *doc = xcalloc(1, sizeof(*doc));
	if (limits)
		doc->limits = *limits;
	else
		kilt_hocon_limits_default(&doc->limits);
	return doc;
}

const char *kilt_hocon_dir_of(const char *name, char *buf, size_t size)
{
	const char *slash = strrchr(name, '/');
	if (!slash)
		return ".";
	if (slash == name)
		return "/";
	snprintf(buf, size, "%.*s", (int)(slash - name), name);
	return buf;
}

int kilt_hocon_parse_string(const char *text, size_t len, const char *name,
			    const struct kilt_hocon_limits *limits, struct kilt_hocon **ret,
			    struct kilt_error *err)
{
	if (!name)
		name = "<string>";
	struct kilt_hocon *doc = doc_new(limits);
	if (len > doc->limits.max_input_bytes || len > UINT32_MAX) {
		size_t max = doc->limits.max_input_bytes;
		kilt_hocon_free(doc);
		return kilt_error_set(err, -EFBIG, name, 0, 0,
				      "input is %zu bytes, more than the limit of %zu bytes", len,
				      max);
	}
	uint16_t f = kilt_hocon_add_src(doc, name, text ? text : "", len);
	char buf[4096];
	int r = kilt_hocon_parse_root(doc, f, kilt_hocon_dir_of(name, buf, sizeof(buf)), err);
	if (r < 0) {
		kilt_hocon_free(doc);
		return r;
	}
	*ret = doc;
	return 0;
}

int kilt_hocon_parse_file(const char *path, const struct kilt_hocon_limits *limits,
			  struct kilt_hocon **ret, struct kilt_error *err)
{
	struct kilt_hocon_limits lim;
	if (limits)
		lim = *limits;
	else
		kilt_hocon_limits_default(&lim);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = kilt_read_file(path, lim.max_input_bytes, &text, &len);
	if (r == -EFBIG)
		return kilt_error_set(err, r, path, 0, 0,
				      "input is larger than the limit of %zu bytes",
				      lim.max_input_bytes);
	if (r < 0)
		return kilt_error_set(err, r, path, 0, 0, "cannot read: %s", strerror(-r));
	return kilt_hocon_parse_string(text, len, path, &lim, ret, err);
}

void kilt_hocon_free(struct kilt_hocon *doc)
{
	if (!doc)
		return;
	for (uint32_t i = 0; i < doc->nsrcs; i++)
		free(doc->srcs[i].lines);
	free(doc->srcs);
	kilt_arena_done(&doc->arena);
	free(doc);
}

int kilt_hocon_load_file(const char *path, const struct kilt_hocon_limits *limits, json_t **ret,
			 struct kilt_error *err)
{
	struct kilt_hocon *doc = NULL;
	int r = kilt_hocon_parse_file(path, limits, &doc, err);
	if (r < 0)
		return r;
	r = kilt_hocon_resolve(doc, NULL, NULL, ret, err);
	kilt_hocon_free(doc);
	return r;
}

/* ---- paths and origins ----------------------------------------------------------------------- */

static bool plain_key(const char *key, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

void kilt_hocon_path_append_key(struct kbuf *b, const char *key, size_t len)
{
	if (b->len)
		kbuf_addc(b, '.');
	if (plain_key(key, len)) {
		kbuf_add(b, key, len);
		return;
	}
	kbuf_addc(b, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c == '"' || c == '\\') {
			kbuf_addc(b, '\\');
			kbuf_addc(b, (char)c);
		} else if (c < 0x20) {
			kbuf_printf(b, "\\u%04x", c);
		} else {
			kbuf_addc(b, (char)c);
		}
	}
	kbuf_addc(b, '"');
}

void kilt_hocon_origins_add(struct kilt_hocon_origins *o, const char *path, uint16_t file,
			    uint32_t off)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 32;
		o->v = xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	o->v[o->n++] = (struct horigin){ xstrdup(path), file, off };
}

static int origin_cmp(const void *a, const void *b)
{
	return strcmp(((const struct horigin *)a)->path, ((const struct horigin *)b)->path);
}

void kilt_hocon_origins_sort(struct kilt_hocon_origins *o)
{
	if (o->n)
		qsort(o->v, o->n, sizeof(*o->v), origin_cmp);
}

bool kilt_hocon_origins_get(const struct kilt_hocon_origins *origins, const char *path,
			    const char **ret_file, unsigned *ret_line, unsigned *ret_column)
{
	if (!origins || !path || !origins->n)
		return false;
	struct horigin key = { .path = (char *)(uintptr_t)path };
	const struct horigin *h =
		bsearch(&key, origins->v, origins->n, sizeof(*origins->v), origin_cmp);
	if (!h)
		return false;
	unsigned line, col;
	kilt_hocon_locate(origins->doc, h->file, h->off, &line, &col);
	if (ret_file)
		*ret_file = origins->doc->srcs[h->file].name;
	if (ret_line)
		*ret_line = line;
	if (ret_column)
		*ret_column = col;
	return true;
}

void kilt_hocon_origins_free(struct kilt_hocon_origins *origins)
{
	if (!origins)
		return;
	for (size_t i = 0; i < origins->n; i++)
		free(origins->v[i].path);
	free(origins->v);
	free(origins);
}
