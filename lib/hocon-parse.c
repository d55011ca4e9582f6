/* SPDX-License-Identifier: Apache-2.0 */
/* HOCON parser: a cursor over each source text that builds the merged tree of hocon-internal.h
 * directly (no token list, strings stay views into the source unless they need unescaping), and
 * reads included .conf/.json/.properties files on the way. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "hocon-internal.h"

/* ---- character classes ----------------------------------------------------------------------- */

enum {
	C_WS = 1, /* ASCII whitespace other than newline */
	C_NL = 2, /* '\n' */
	C_FORBID = 4, /* may not appear in an unquoted string */
	C_DIGIT = 8,
	C_HIGH = 16, /* may start a multi-byte whitespace character */
};

static const uint8_t cls[256] = {
	['\t'] = C_WS,	   ['\n'] = C_NL,    ['\v'] = C_WS,    ['\f'] = C_WS,	  ['\r'] = C_WS,
	[0x1C] = C_WS,	   [0x1D] = C_WS,    [0x1E] = C_WS,    [0x1F] = C_WS,	  [' '] = C_WS,
	[0x00] = C_FORBID, /* a NUL would cut the key or value for every C consumer */
	['$'] = C_FORBID,  ['"'] = C_FORBID, ['{'] = C_FORBID, ['}'] = C_FORBID,  ['['] = C_FORBID,
	[']'] = C_FORBID,  [':'] = C_FORBID, ['='] = C_FORBID, [','] = C_FORBID,  ['+'] = C_FORBID,
	['#'] = C_FORBID,  ['`'] = C_FORBID, ['^'] = C_FORBID, ['?'] = C_FORBID,  ['!'] = C_FORBID,
	['@'] = C_FORBID,  ['*'] = C_FORBID, ['&'] = C_FORBID, ['\\'] = C_FORBID, ['0'] = C_DIGIT,
	['1'] = C_DIGIT,   ['2'] = C_DIGIT,  ['3'] = C_DIGIT,  ['4'] = C_DIGIT,	  ['5'] = C_DIGIT,
	['6'] = C_DIGIT,   ['7'] = C_DIGIT,  ['8'] = C_DIGIT,  ['9'] = C_DIGIT,	  [0xC2] = C_HIGH,
	[0xE1] = C_HIGH,   [0xE2] = C_HIGH,  [0xE3] = C_HIGH,  [0xEF] = C_HIGH,
};

/* Length of the Unicode whitespace character (Zs, Zl, Zp or BOM) at p, or 0. */
static size_t uws_len(const char *p, const char *end)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t left = (size_t)(end - p);
	if (left >= 2 && u[0] == 0xC2 && u[1] == 0xA0)
		return 2;
	if (left < 3)
		return 0;
	switch (u[0]) {
	case 0xE1:
		return u[1] == 0x9A && u[2] == 0x80 ? 3 : 0;
	case 0xE2:
		if (u[1] == 0x80 && ((u[2] >= 0x80 && u[2] <= 0x8A) || u[2] == 0xA8 ||
				     u[2] == 0xA9 || u[2] == 0xAF))
			return 3;
		return u[1] == 0x81 && u[2] == 0x9F ? 3 : 0;
	case 0xE3:
		return u[1] == 0x80 && u[2] == 0x80 ? 3 : 0;
	case 0xEF:
		return u[1] == 0xBB && u[2] == 0xBF ? 3 : 0;
	default:
		return 0;
	}
}

/* ---- parser state ---------------------------------------------------------------------------- */

struct pctx {
	struct kilt_hocon *doc;
	struct kilt_error *err;
	/* absolute key path of the object being filled (for `+=` and include fix-ups) */
	struct hseg *path; /* heap, owned */
	uint32_t npath, cappath;
	bool path_valid; /* false inside arrays */
	unsigned include_depth;
	char *incstack[64]; /* owned: real paths of the files being parsed */
	uint16_t incfile[64]; /* their sources in the document (names for messages) */
	unsigned nincstack;
	/* owned: with KILT_HOCON_INCLUDE_BESIDE, the real directory of the root document ending
	 * in '/' (NULL: it has none, so nothing may be included) */
	char *root_dir;
	struct kbuf scratch;
};

struct parser {
	struct pctx *c;
	const char *base, *p, *end;
	uint16_t file;
	const char *dir;
	unsigned depth;
	struct hpath prefix;
};

struct vlist {
	struct hval **v;
	uint32_t n, cap;
	struct hval *inl[8];
};

static void vlist_init(struct vlist *l)
{
	l->v = l->inl;
	l->n = 0;
	l->cap = ARRAY_SIZE(l->inl);
}

static void vlist_add(struct vlist *l, struct hval *v)
{
	if (l->n == l->cap) {
		l->cap *= 2;
		if (l->v == l->inl) {
			l->v = xmalloc(l->cap * sizeof(*l->v));
			memcpy(l->v, l->inl, sizeof(l->inl));
		} else {
			l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
		}
	}
	l->v[l->n++] = v;
}

static void vlist_done(struct vlist *l)
{
	if (l->v != l->inl)
		free(l->v);
}

static struct hval **vlist_to_arena(struct parser *ps, const struct vlist *l)
{
	struct hval **a = kilt_arena_alloc(&ps->c->doc->arena, (l->n ? l->n : 1) * sizeof(*a));
	if (l->n)
		memcpy(a, l->v, l->n * sizeof(*a));
	return a;
}

static struct arena *A(struct parser *ps)
{
	return &ps->c->doc->arena;
}

static uint32_t off_of(const struct parser *ps, const char *at)
{
	return (uint32_t)(at - ps->base);
}

static struct hval *new_val(struct parser *ps, uint8_t type, const char *at)
{
	struct hval *v = kilt_arena_alloc(A(ps), sizeof(*v));
	memset(v, 0, sizeof(*v));
	v->type = type;
	v->file = ps->file;
	v->off = off_of(ps, at);
	return v;
}

static struct hval *new_obj_val(struct parser *ps, const char *at)
{
	struct hval *v = new_val(ps, HV_OBJ, at);
	v->obj = kilt_arena_calloc(A(ps), sizeof(struct hobj));
	return v;
}

/* Describes what stands at `at` for "expected X, found Y" messages. */
static const char *found(const struct parser *ps, const char *at, char *buf, size_t size)
{
	if (at >= ps->end)
		return "end of input";
	unsigned char c = (unsigned char)*at;
	if (c == '\n')
		return "a newline";
	if (c == '#' || (c == '/' && at + 1 < ps->end && at[1] == '/'))
		return "a comment";
	if (c == 0)
		return "a NUL byte (only a quoted string can hold one, as \\u0000)";
	if (c < 0x20 || c == 0x7F) {
		snprintf(buf, size, "control character 0x%02x", c);
		return buf;
	}
	if (c >= 0x80) {
		size_t n = 1;
		while (at + n < ps->end && n < 4 && ((unsigned char)at[n] & 0xC0) == 0x80)
			n++;
		snprintf(buf, size, "'%.*s'", (int)n, at);
		return buf;
	}
	if (c == '\'') {
		snprintf(buf, size, "\"'\"");
		return buf;
	}
	snprintf(buf, size, "'%c'", c);
	return buf;
}

static int perr(struct parser *ps, const char *at, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int perr(struct parser *ps, const char *at, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at > ps->end)
		at = ps->end;
	return kilt_hocon_error_at(ps->c->doc, ps->file, off_of(ps, at), ps->c->err, code, "%s",
				   msg);
}

static int expected(struct parser *ps, const char *what)
{
	char buf[32];
	return perr(ps, ps->p, -EINVAL, "expected %s, found %s", what,
		    found(ps, ps->p, buf, sizeof(buf)));
}

/* ---- whitespace and comments ----------------------------------------------------------------- */

/* Skips non-newline whitespace; returns true when any was skipped. */
static bool skip_ws(struct parser *ps)
{
	const char *start = ps->p;
	while (ps->p < ps->end) {
		uint8_t k = cls[(unsigned char)*ps->p];
		if (k & C_WS) {
			ps->p++;
		} else if (k & C_HIGH) {
			size_t n = uws_len(ps->p, ps->end);
			if (!n)
				break;
			ps->p += n;
		} else {
			break;
		}
	}
	return ps->p != start;
}

static bool at_comment(const struct parser *ps)
{
	return ps->p < ps->end &&
	       (*ps->p == '#' || (*ps->p == '/' && ps->p + 1 < ps->end && ps->p[1] == '/'));
}

static void skip_to_eol(struct parser *ps)
{
	const char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
	ps->p = nl ? nl : ps->end;
}

/* Skips whitespace and comments, not newlines. */
static void skip_inline(struct parser *ps)
{
	skip_ws(ps);
	if (at_comment(ps))
		skip_to_eol(ps);
}

/* Skips whitespace, newlines and comments. */
static void skip_all(struct parser *ps)
{
	for (;;) {
		skip_ws(ps);
		if (ps->p >= ps->end)
			return;
		if (*ps->p == '\n')
			ps->p++;
		else if (at_comment(ps))
			skip_to_eol(ps);
		else
			return;
	}
}

/* End of the unquoted run starting at p. */
static const char *scan_unquoted(const char *p, const char *end)
{
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		uint8_t k = cls[c];
		if (k & (C_WS | C_NL | C_FORBID))
			break;
		if (c == '/' && p + 1 < end && p[1] == '/')
			break;
		if ((k & C_HIGH) && uws_len(p, end))
			break;
		p++;
	}
	return p;
}

static bool unquoted_start(const char *p, const char *end)
{
	return p < end && scan_unquoted(p, end) != p;
}

/* ---- strings --------------------------------------------------------------------------------- */

static int read_hex4(struct parser *ps, const char *q, uint32_t *ret)
{
	if (ps->end - q < 4)
		return perr(ps, q, -EINVAL, "expected 4 hex digits after \\u");
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		int h = kilt_hexval(q[i]);
		if (h < 0)
			return perr(ps, q + i, -EINVAL, "expected 4 hex digits after \\u");
		v = (v << 4) | (uint32_t)h;
	}
	*ret = v;
	return 0;
}

static void put_utf8(struct kbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
	}
	kbuf_add(b, u, n);
}

/* Parses a JSON quoted string or a triple-quoted string at ps->p. */
static int parse_quoted(struct parser *ps, const char **ret_s, size_t *ret_len)
{
	const char *start = ps->p;
	if (ps->end - start >= 3 && start[1] == '"' && start[2] == '"') {
		const char *body = start + 3, *q = body;
		for (;;) {
			q = memchr(q, '"', (size_t)(ps->end - q));
			if (!q || ps->end - q < 3)
				return perr(
					ps, start, -EINVAL,
					"unterminated triple-quoted string (no closing \"\"\")");
			if (q[1] == '"' && q[2] == '"')
				break;
			q++;
		}
		const char *close = q + 3;
		while (close < ps->end && *close == '"')
			close++;
		*ret_s = body;
		*ret_len = (size_t)(close - 3 - body);
		ps->p = close;
		return 0;
	}
	const char *q = start + 1;
	while (q < ps->end) {
		unsigned char c = (unsigned char)*q;
		if (c == '"' || c == '\\' || c < 0x20)
			break;
		q++;
	}
	if (q < ps->end && *q == '"') {
		*ret_s = start + 1;
		*ret_len = (size_t)(q - start - 1);
		ps->p = q + 1;
		return 0;
	}
	struct kbuf *b = &ps->c->scratch;
	b->len = 0;
	kbuf_add(b, start + 1, (size_t)(q - start - 1));
	for (;;) {
		if (q >= ps->end)
			return perr(ps, start, -EINVAL, "unterminated quoted string");
		unsigned char c = (unsigned char)*q;
		if (c == '"')
			break;
		if (c == '\n')
			return perr(
				ps, q, -EINVAL,
				"newline inside a quoted string (use \\n or a \"\"\"triple-quoted "
				"string\"\"\")");
		if (c < 0x20)
			return perr(
				ps, q, -EINVAL,
				"control character 0x%02x inside a quoted string (use an escape)",
				c);
		if (c != '\\') {
			const char *run = q;
			while (q < ps->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
				q++;
			kbuf_add(b, run, (size_t)(q - run));
			continue;
		}
		if (q + 1 >= ps->end)
			return perr(ps, start, -EINVAL, "unterminated quoted string");
		char e = q[1];
		char out;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			out = e;
			break;
		case 'b':
			out = '\b';
			break;
		case 'f':
			out = '\f';
			break;
		case 'n':
			out = '\n';
			break;
		case 'r':
			out = '\r';
			break;
		case 't':
			out = '\t';
			break;
		case 'u': {
			uint32_t cp;
			int r = read_hex4(ps, q + 2, &cp);
			if (r < 0)
				return r;
			q += 6;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				uint32_t lo = 0;
				if (ps->end - q < 6 || q[0] != '\\' || q[1] != 'u' ||
				    read_hex4(ps, q + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
					return perr(
						ps, q - 6, -EINVAL,
						"invalid \\u escape: high surrogate without a low "
						"surrogate");
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				q += 6;
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				return perr(ps, q - 6, -EINVAL,
					    "invalid \\u escape: low surrogate without a high "
					    "surrogate");
			}
			put_utf8(b, cp);
			continue;
		}
		default: {
			char buf[32];
			return perr(
				ps, q, -EINVAL,
				"invalid escape in quoted string: expected one of \\\" \\\\ \\/ "
				"\\b \\f \\n \\r \\t \\uXXXX after a backslash, found %s",
				found(ps, q + 1, buf, sizeof(buf)));
		}
		}
		kbuf_addc(b, out);
		q += 2;
	}
	*ret_s = kilt_arena_memdup(A(ps), b->data ? b->data : "", b->len);
	*ret_len = b->len;
	ps->p = q + 1;
	return 0;
}

/* ---- paths ----------------------------------------------------------------------------------- */

struct seglist {
	struct hseg *v;
	uint32_t n, cap;
	struct hseg inl[8];
};

static void seglist_init(struct seglist *l)
{
	l->v = l->inl;
	l->n = 0;
	l->cap = ARRAY_SIZE(l->inl);
}

static void seglist_add(struct seglist *l, const char *s, size_t len)
{
	if (l->n == l->cap) {
		l->cap *= 2;
		if (l->v == l->inl) {
			l->v = xmalloc(l->cap * sizeof(*l->v));
			memcpy(l->v, l->inl, sizeof(l->inl));
		} else {
			l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
		}
	}
	l->v[l->n++] = (struct hseg){ s, (uint32_t)len, kilt_hocon_hash(s, len) };
}

static void seglist_done(struct seglist *l)
{
	if (l->v != l->inl)
		free(l->v);
}

/* A segment under construction: a view while it has one piece, the scratch buffer after. */
struct segbuild {
	const char *s;
	size_t len;
	bool started, copied;
};

static void seg_piece(struct parser *ps, struct segbuild *sb, const char *s, size_t len)
{
	if (!sb->started) {
		sb->s = s;
		sb->len = len;
		sb->started = true;
		return;
	}
	struct kbuf *b = &ps->c->scratch;
	if (!sb->copied) {
		b->len = 0;
		kbuf_add(b, sb->s, sb->len);
		sb->copied = true;
	}
	kbuf_add(b, s, len);
}

static void seg_finish(struct parser *ps, struct segbuild *sb, struct seglist *out)
{
	if (sb->copied) {
		struct kbuf *b = &ps->c->scratch;
		seglist_add(out, kilt_arena_memdup(A(ps), b->data, b->len), b->len);
	} else {
		seglist_add(out, sb->s, sb->len);
	}
	*sb = (struct segbuild){ 0 };
}

/* Parses a path expression (a key, or the inside of ${}) into `out`. Stops at the first
 * character that cannot continue it; `what` names it for errors. */
static int parse_path(struct parser *ps, struct seglist *out, const char *what)
{
	struct segbuild sb = { 0 };
	const char *start = ps->p;
	bool any = false;
	for (;;) {
		if (ps->p >= ps->end)
			break;
		char c = *ps->p;
		if (c == '"') {
			const char *s;
			size_t len;
			const char *at = ps->p;
			if (sb.copied) {
				/* parse_quoted may use the scratch buffer: keep what we have */
				struct kbuf *b = &ps->c->scratch;
				sb.s = kilt_arena_memdup(A(ps), b->data, b->len);
				sb.len = b->len;
				sb.copied = false;
			}
			int r = parse_quoted(ps, &s, &len);
			if (r < 0)
				return r;
			(void)at;
			seg_piece(ps, &sb, s, len);
			sb.started = true;
			any = true;
			continue;
		}
		const char *run_end = scan_unquoted(ps->p, ps->end);
		if (run_end != ps->p) {
			const char *q = ps->p;
			while (q < run_end) {
				const char *dot = memchr(q, '.', (size_t)(run_end - q));
				const char *piece_end = dot ? dot : run_end;
				if (piece_end > q)
					seg_piece(ps, &sb, q, (size_t)(piece_end - q));
				if (!dot)
					break;
				if (!sb.started)
					return perr(ps, dot, -EINVAL,
						    "invalid path in %s: empty element before '.' "
						    "(quote it as \"\" to mean an empty key)",
						    what);
				seg_finish(ps, &sb, out);
				q = dot + 1;
				if (q == run_end && !(q < ps->end && *q == '"'))
					return perr(ps, dot, -EINVAL,
						    "invalid path in %s: it ends with '.'", what);
			}
			ps->p = run_end;
			any = true;
			continue;
		}
		/* whitespace inside a path is kept when more of the path follows */
		const char *ws = ps->p;
		if (any && skip_ws(ps)) {
			if (ps->p < ps->end && (*ps->p == '"' || unquoted_start(ps->p, ps->end))) {
				seg_piece(ps, &sb, ws, (size_t)(ps->p - ws));
				continue;
			}
			ps->p = ws;
		}
		break;
	}
	if (!any) {
		char buf[32];
		return perr(ps, start, -EINVAL, "expected %s, found %s", what,
			    found(ps, start, buf, sizeof(buf)));
	}
	if (!sb.started)
		return perr(ps, ps->p, -EINVAL, "invalid path in %s: it ends with '.'", what);
	seg_finish(ps, &sb, out);
	return 0;
}

static struct hpath path_to_arena(struct parser *ps, const struct hseg *segs, uint32_t n)
{
	struct hseg *a = kilt_arena_alloc(A(ps), (n ? n : 1) * sizeof(*a));
	if (n)
		memcpy(a, segs, n * sizeof(*a));
	return (struct hpath){ a, n };
}

static void cpath_push(struct pctx *c, const struct hseg *segs, uint32_t n)
{
	if (c->npath + n > c->cappath) {
		c->cappath = (c->npath + n) * 2;
		c->path = xrealloc(c->path, c->cappath * sizeof(*c->path));
	}
	memcpy(c->path + c->npath, segs, n * sizeof(*segs));
	c->npath += n;
}

/* ---- merged objects -------------------------------------------------------------------------- */

static void table_insert(struct hobj *o, uint32_t idx)
{
	uint32_t mask = o->tcap - 1;
	uint32_t i = o->fields[idx]->hash & mask;
	while (o->table[i])
		i = (i + 1) & mask;
	o->table[i] = idx + 1;
}

static struct hfield *obj_field(struct parser *ps, struct hobj *o, const struct hseg *s)
{
	struct hfield *f = kilt_hobj_find(o, s->s, s->len, s->hash);
	if (f)
		return f;
	f = kilt_arena_alloc(A(ps), sizeof(*f));
	*f = (struct hfield){ .key = s->s, .klen = s->len, .hash = s->hash };
	if (o->n == o->cap) {
		uint32_t cap = o->cap ? o->cap * 2 : 4;
		struct hfield **nf = kilt_arena_alloc(A(ps), cap * sizeof(*nf));
		if (o->n)
			memcpy(nf, o->fields, o->n * sizeof(*nf));
		o->fields = nf;
		o->cap = cap;
	}
	o->fields[o->n++] = f;
	if (o->n > 8) {
		if (!o->table || o->n * 2 > o->tcap) {
			uint32_t tcap = 32;
			while (tcap < o->n * 4)
				tcap *= 2;
			o->table = kilt_arena_calloc(A(ps), tcap * sizeof(*o->table));
			o->tcap = tcap;
			for (uint32_t i = 0; i < o->n; i++)
				table_insert(o, i);
		} else {
			table_insert(o, o->n - 1);
		}
	}
	return f;
}

static void field_append(struct parser *ps, struct hfield *f, struct hval *v)
{
	if (f->n == f->cap) {
		uint32_t cap = f->cap ? f->cap * 2 : 1;
		struct hval **nd = kilt_arena_alloc(A(ps), cap * sizeof(*nd));
		if (f->n)
			memcpy(nd, f->defs, f->n * sizeof(*nd));
		f->defs = nd;
		f->cap = cap;
	}
	f->defs[f->n++] = v;
}

static void obj_merge(struct parser *ps, struct hobj *dst, const struct hobj *src);

/* Adds a definition: an object right after an object merges into it (HOCON's duplicate keys). */
static void field_push(struct parser *ps, struct hfield *f, struct hval *v)
{
	if (v->type == HV_OBJ && f->n && f->defs[f->n - 1]->type == HV_OBJ) {
		obj_merge(ps, f->defs[f->n - 1]->obj, v->obj);
		return;
	}
	field_append(ps, f, v);
}

static void obj_merge(struct parser *ps, struct hobj *dst, const struct hobj *src)
{
	for (uint32_t i = 0; i < src->n; i++) {
		const struct hfield *sf = src->fields[i];
		struct hseg s = { sf->key, sf->klen, sf->hash };
		struct hfield *df = obj_field(ps, dst, &s);
		for (uint32_t k = 0; k < sf->n; k++)
			field_push(ps, df, sf->defs[k]);
	}
}

/* Sets `segs` (a path) to `v` in `o`. In properties mode an object wins over a string. */
static void obj_set_path(struct parser *ps, struct hobj *o, const struct hseg *segs, uint32_t n,
			 struct hval *v, bool props)
{
	for (uint32_t i = 0;; i++) {
		struct hfield *f = obj_field(ps, o, &segs[i]);
		struct hval *last = f->n ? f->defs[f->n - 1] : NULL;
		if (i == n - 1) {
			if (props && last && last->type == HV_OBJ && v->type != HV_OBJ)
				return;
			field_push(ps, f, v);
			return;
		}
		if (!last || last->type != HV_OBJ) {
			last = new_val(ps, HV_OBJ, ps->base + v->off);
			last->file = v->file;
			last->obj = kilt_arena_calloc(A(ps), sizeof(struct hobj));
			field_append(ps, f, last);
		}
		o = last->obj;
	}
}

/* ---- values ---------------------------------------------------------------------------------- */

static int parse_value(struct parser *ps, struct hval **ret);
static int parse_fields(struct parser *ps, struct hobj *o, bool braced, const char *open);

static int enter(struct parser *ps, const char *at, unsigned levels)
{
	ps->depth += levels;
	if (ps->depth > ps->c->doc->limits.max_depth)
		return perr(ps, at, -E2BIG, "objects and arrays nested deeper than the limit of %u",
			    ps->c->doc->limits.max_depth);
	return 0;
}

static int parse_array(struct parser *ps, struct hval **ret)
{
	const char *open = ps->p;
	int r = enter(ps, open, 1);
	if (r < 0)
		return r;
	ps->p++;
	bool saved_valid = ps->c->path_valid;
	ps->c->path_valid = false;
	struct vlist items;
	vlist_init(&items);
	for (;;) {
		skip_all(ps);
		if (ps->p >= ps->end) {
			unsigned line, col;
			kilt_hocon_locate(ps->c->doc, ps->file, off_of(ps, open), &line, &col);
			char what[64];
			snprintf(what, sizeof(what), "']' to close the array opened at %u:%u", line,
				 col);
			r = expected(ps, what);
			goto out;
		}
		if (*ps->p == ']') {
			ps->p++;
			break;
		}
		if (*ps->p == ',') {
			r = expected(ps, "an array element or ']'");
			goto out;
		}
		struct hval *v = NULL;
		r = parse_value(ps, &v);
		if (r < 0)
			goto out;
		if (!v) {
			r = expected(ps, "an array element or ']'");
			goto out;
		}
		vlist_add(&items, v);
		skip_inline(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			skip_all(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				r = expected(ps, "an array element or ']' after ','");
				goto out;
			}
			continue;
		}
		if (ps->p < ps->end && (*ps->p == '\n' || *ps->p == ']'))
			continue;
		if (ps->p < ps->end) {
			r = expected(ps, "',', a newline or ']' after an array element");
			goto out;
		}
	}
	struct hval *v = new_val(ps, HV_ARR, open);
	v->arr.items = vlist_to_arena(ps, &items);
	v->arr.n = items.n;
	*ret = v;
	r = 0;
out:
	vlist_done(&items);
	ps->c->path_valid = saved_valid;
	ps->depth--;
	return r;
}

static int parse_object(struct parser *ps, struct hval **ret)
{
	const char *open = ps->p;
	int r = enter(ps, open, 1);
	if (r < 0)
		return r;
	ps->p++;
	struct hval *v = new_obj_val(ps, open);
	r = parse_fields(ps, v->obj, true, open);
	ps->depth--;
	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

static int parse_subst(struct parser *ps, struct hval **ret)
{
	const char *start = ps->p;
	ps->p += 2;
	bool optional = false;
	if (ps->p < ps->end && *ps->p == '?') {
		optional = true;
		ps->p++;
	}
	skip_ws(ps);
	struct seglist segs;
	seglist_init(&segs);
	int r = parse_path(ps, &segs, "a path after '${'");
	if (r < 0)
		goto out;
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != '}') {
		r = expected(ps, "'}' to close the substitution");
		goto out;
	}
	ps->p++;
	struct hval *v = new_val(ps, HV_SUBST, start);
	v->flags = optional ? HV_F_OPTIONAL : 0;
	v->sub.path = path_to_arena(ps, segs.v, segs.n);
	v->sub.prefix = ps->prefix;
	*ret = v;
out:
	seglist_done(&segs);
	return r;
}

/* A number, keyword or unquoted string starting at ps->p. */
static int parse_word(struct parser *ps, struct hval **ret)
{
	const char *start = ps->p, *q = start, *end = ps->end;
	bool isreal = false, isnum = false;
	if (q < end && (*q == '-' || (cls[(unsigned char)*q] & C_DIGIT))) {
		const char *n = q;
		if (*n == '-')
			n++;
		if (n < end && *n == '0') {
			n++;
			isnum = true;
		} else if (n < end && (cls[(unsigned char)*n] & C_DIGIT)) {
			while (n < end && (cls[(unsigned char)*n] & C_DIGIT))
				n++;
			isnum = true;
		}
		if (isnum) {
			if (n + 1 < end && *n == '.' && (cls[(unsigned char)n[1]] & C_DIGIT)) {
				n += 2;
				while (n < end && (cls[(unsigned char)*n] & C_DIGIT))
					n++;
				isreal = true;
			}
			if (n < end && (*n == 'e' || *n == 'E')) {
				const char *e = n + 1;
				if (e < end && (*e == '+' || *e == '-'))
					e++;
				if (e < end && (cls[(unsigned char)*e] & C_DIGIT)) {
					while (e < end && (cls[(unsigned char)*e] & C_DIGIT))
						e++;
					n = e;
					isreal = true;
				}
			}
			q = n;
		}
	}
	if (isnum && (q >= end || !unquoted_start(q, end))) {
		struct hval *v = new_val(ps, isreal ? HV_REAL : HV_INT, start);
		v->lit.s = start;
		v->lit.len = (size_t)(q - start);
		ps->p = q;
		if (!isreal) {
			/* fast path for integers; overflow falls back to a real */
			const char *d = start;
			bool neg = *d == '-';
			if (neg)
				d++;
			uint64_t acc = 0;
			bool over = false;
			for (; d < q; d++) {
				uint64_t digit = (uint64_t)(*d - '0');
				if (acc > (UINT64_MAX - digit) / 10) {
					over = true;
					break;
				}
				acc = acc * 10 + digit;
			}
			if (!over && (neg ? acc <= (uint64_t)INT64_MAX + 1 : acc <= INT64_MAX)) {
				v->lit.num.i = neg ? (json_int_t)(0 - acc) : (json_int_t)acc;
				*ret = v;
				return 0;
			}
			v->type = HV_REAL;
		}
		char *endp;
		errno = 0;
		double d = strtod(start, &endp);
		if (endp != q)
			return perr(ps, start, -EINVAL, "invalid number");
		/* ERANGE with 0 is an underflow: 1e-999999 is not zero */
		if (!isfinite(d) || (errno == ERANGE && d == 0))
			return perr(ps, start, -ERANGE, "number %.*s is out of range",
				    (int)(q - start), start);
		v->lit.num.d = d;
		*ret = v;
		return 0;
	}
	const char *run_end = scan_unquoted(q, end);
	if (run_end == start)
		return expected(ps, "a value");
	size_t len = (size_t)(run_end - start);
	struct hval *v;
	if (len == 4 && memcmp(start, "true", 4) == 0)
		v = new_val(ps, HV_TRUE, start);
	else if (len == 5 && memcmp(start, "false", 5) == 0)
		v = new_val(ps, HV_FALSE, start);
	else if (len == 4 && memcmp(start, "null", 4) == 0)
		v = new_val(ps, HV_NULL, start);
	else
		v = new_val(ps, HV_STR, start);
	v->lit.s = start;
	v->lit.len = len;
	ps->p = run_end;
	*ret = v;
	return 0;
}

static int parse_element(struct parser *ps, struct hval **ret)
{
	char c = *ps->p;
	switch (c) {
	case '{':
		return parse_object(ps, ret);
	case '[':
		return parse_array(ps, ret);
	case '"': {
		const char *start = ps->p, *s;
		size_t len;
		int r = parse_quoted(ps, &s, &len);
		if (r < 0)
			return r;
		struct hval *v = new_val(ps, HV_STR, start);
		v->lit.s = s;
		v->lit.len = len;
		*ret = v;
		return 0;
	}
	case '$':
		if (ps->p + 1 < ps->end && ps->p[1] == '{')
			return parse_subst(ps, ret);
		return perr(
			ps, ps->p, -EINVAL,
			"expected a value, found '$' (a substitution is written ${path}; quote a "
			"literal '$')");
	default:
		return parse_word(ps, ret);
	}
}

static bool value_start(const struct parser *ps)
{
	if (ps->p >= ps->end)
		return false;
	char c = *ps->p;
	if (c == '{' || c == '[' || c == '"' || c == '$')
		return true;
	return unquoted_start(ps->p, ps->end);
}

static const char *kind_name(const struct hval *v)
{
	switch (v->type) {
	case HV_OBJ:
		return "an object";
	case HV_ARR:
		return "an array";
	default:
		return "a string";
	}
}

/* Combines the parts of a concatenation that has no top-level substitution. The first part is
 * a value (whitespace only stands between values). */
static int fold_static(struct parser *ps, const struct vlist *parts, struct hval **ret)
{
	struct hval *first = parts->v[0];
	for (uint32_t i = 1; i < parts->n; i++) {
		struct hval *v = parts->v[i];
		if (v->flags & HV_F_WS)
			continue;
		bool vc = v->type == HV_OBJ || v->type == HV_ARR;
		bool fc = first->type == HV_OBJ || first->type == HV_ARR;
		if (vc != fc || (vc && v->type != first->type))
			return kilt_hocon_error_at(ps->c->doc, v->file, v->off, ps->c->err, -EINVAL,
						   "cannot concatenate %s with %s",
						   kind_name(first), kind_name(v));
	}
	if (first->type == HV_OBJ) {
		struct hval *o = new_obj_val(ps, ps->base + first->off);
		for (uint32_t i = 0; i < parts->n; i++)
			if (!(parts->v[i]->flags & HV_F_WS))
				obj_merge(ps, o->obj, parts->v[i]->obj);
		*ret = o;
		return 0;
	}
	if (first->type == HV_ARR) {
		uint32_t n = 0;
		for (uint32_t i = 0; i < parts->n; i++)
			if (!(parts->v[i]->flags & HV_F_WS))
				n += parts->v[i]->arr.n;
		struct hval *a = new_val(ps, HV_ARR, ps->base + first->off);
		a->arr.items = kilt_arena_alloc(A(ps), (n ? n : 1) * sizeof(struct hval *));
		a->arr.n = n;
		n = 0;
		for (uint32_t i = 0; i < parts->n; i++) {
			const struct hval *p = parts->v[i];
			if (p->flags & HV_F_WS)
				continue;
			if (p->arr.n)
				memcpy(a->arr.items + n, p->arr.items,
				       p->arr.n * sizeof(struct hval *));
			n += p->arr.n;
		}
		*ret = a;
		return 0;
	}
	size_t len = 0;
	for (uint32_t i = 0; i < parts->n; i++)
		len += parts->v[i]->lit.len;
	char *s = kilt_arena_alloc(A(ps), len + 1), *w = s;
	for (uint32_t i = 0; i < parts->n; i++) {
		if (parts->v[i]->lit.len)
			memcpy(w, parts->v[i]->lit.s, parts->v[i]->lit.len);
		w += parts->v[i]->lit.len;
	}
	*w = '\0';
	struct hval *v = new_val(ps, HV_STR, ps->base + first->off);
	v->lit.s = s;
	v->lit.len = len;
	*ret = v;
	return 0;
}

/* A field value or array element: one value or a concatenation of several on one line. Sets
 * *ret to NULL when no value starts here. */
static int parse_value(struct parser *ps, struct hval **ret)
{
	*ret = NULL;
	if (!value_start(ps))
		return 0;
	struct vlist parts;
	vlist_init(&parts);
	bool dynamic = false;
	int r = 0;
	for (;;) {
		struct hval *v = NULL;
		r = parse_element(ps, &v);
		if (r < 0)
			goto out;
		if (v->type == HV_SUBST)
			dynamic = true;
		vlist_add(&parts, v);
		const char *ws = ps->p;
		bool had = skip_ws(ps);
		if (!value_start(ps)) {
			ps->p = ws;
			break;
		}
		if (had) {
			struct hval *w = new_val(ps, HV_STR, ws);
			w->flags = HV_F_WS;
			w->lit.s = ws;
			w->lit.len = (size_t)(ps->p - ws);
			vlist_add(&parts, w);
		}
	}
	if (parts.n == 1) {
		*ret = parts.v[0];
		goto out;
	}
	if (!dynamic) {
		r = fold_static(ps, &parts, ret);
		goto out;
	}
	struct hval *c = new_val(ps, HV_CONCAT, ps->base + parts.v[0]->off);
	c->cat.parts = vlist_to_arena(ps, &parts);
	c->cat.n = parts.n;
	*ret = c;
out:
	vlist_done(&parts);
	return r;
}

/* ---- includes -------------------------------------------------------------------------------- */

static int parse_source_root(struct parser *ps, struct hobj *into, bool included);
static int parse_properties(struct parser *ps, struct hobj *o);

enum { FMT_CONF, FMT_JSON, FMT_PROPS };

static int fmt_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');
	if (!dot)
		return -1;
	if (strcmp(dot, ".properties") == 0)
		return FMT_PROPS;
	if (strcmp(dot, ".json") == 0)
		return FMT_JSON;
	return FMT_CONF;
}

/* Reads and merges one file into `o`. Returns 1 when included, 0 when it does not exist and
 * that is allowed, or a negative error. */
static int include_one(struct parser *ps, struct hobj *o, const char *at, const char *name,
		       const char *path, int fmt, bool required)
{
	struct pctx *c = ps->c;
	struct kilt_hocon *doc = c->doc;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	/* only regular files: a FIFO or a device (/dev/stdin) would block or never end */
	struct stat st;
	int r = stat(path, &st) < 0 ? -errno : 0;
	if (r == 0 && S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (r == 0 && !S_ISREG(st.st_mode))
		return perr(ps, at, -EINVAL, "cannot include \"%s\": %s is not a regular file",
			    name, path);
	if (r == 0 && doc->limits.includes == KILT_HOCON_INCLUDE_BESIDE) {
		_cleanup_free_ char *rp = realpath(path, NULL);
		if (!rp || !c->root_dir || strncmp(rp, c->root_dir, strlen(c->root_dir)) != 0)
			return perr(ps, at, -EPERM,
				    "cannot include \"%s\": %s is outside the directory of %s "
				    "(only files beside it may be included)",
				    name, path, doc->srcs[c->incfile[0]].name);
	}
	if (r == 0)
		r = kilt_read_file(path, doc->limits.max_input_bytes, &text, &len);
	if (r == -ENOENT && !required)
		return 0;
	if (r == -EFBIG)
		return perr(ps, at, r,
			    "cannot include \"%s\": %s is larger than the limit of %zu bytes", name,
			    path, doc->limits.max_input_bytes);
	if (r < 0)
		return perr(ps, at, r, "cannot include \"%s\": %s: %s", name, path, strerror(-r));
	char *real = realpath(path, NULL);
	if (real) {
		for (unsigned i = 0; i < c->nincstack; i++) {
			if (c->incstack[i] && strcmp(c->incstack[i], real) == 0) {
				free(real);
				if (i + 1 == c->nincstack)
					return perr(ps, at, -ELOOP,
						    "include cycle: \"%s\" (%s) includes itself",
						    name, path);
				/* name every file of the loop, from the one included again */
				char chain[400] = "";
				size_t off = 0;
				for (unsigned k = i; k < c->nincstack && off < sizeof(chain); k++) {
					int n = snprintf(chain + off, sizeof(chain) - off, "%s%s",
							 k == i ? "" : ", which includes ",
							 doc->srcs[c->incfile[k]].name);
					off += n > 0 ? (size_t)n : 0;
				}
				return perr(ps, at, -ELOOP,
					    "include cycle: %s, which includes \"%s\" (%s) again",
					    chain, name, path);
			}
		}
	}
	/* the stack of open files (the root among them) caps the limit */
	unsigned max_inc = doc->limits.max_include_depth;
	if (max_inc > ARRAY_SIZE(c->incstack) - 1)
		max_inc = ARRAY_SIZE(c->incstack) - 1;
	if (c->include_depth + 1 > max_inc) {
		free(real);
		return perr(ps, at, -E2BIG, "includes nested deeper than the limit of %u", max_inc);
	}
	/* the same files may be included many times: bound the whole document too */
	size_t max = doc->limits.max_input_bytes;
	size_t total_max = max > UINT32_MAX / 16 ? UINT32_MAX : max * 16;
	if (doc->nsrcs >= HOCON_MAX_SRCS || len > total_max || doc->input_bytes > total_max - len) {
		free(real);
		return perr(
			ps, at, -E2BIG,
			"cannot include \"%s\": the document would exceed %u files or %zu bytes "
			"with its includes",
			name, HOCON_MAX_SRCS, total_max);
	}
	uint16_t f = kilt_hocon_add_src(doc, path, text, len);
	char buf[4096];
	struct parser sub = {
		.c = c,
		.base = doc->srcs[f].text,
		.p = doc->srcs[f].text,
		.end = doc->srcs[f].text + len,
		.file = f,
		.dir = kilt_hocon_dir_of(doc->srcs[f].name, buf, sizeof(buf)),
		.depth = ps->depth,
	};
	if (c->path_valid && c->npath)
		sub.prefix = path_to_arena(ps, c->path, c->npath);
	c->include_depth++;
	c->incfile[c->nincstack] = f;
	c->incstack[c->nincstack++] = real;
	if (fmt == FMT_PROPS)
		r = parse_properties(&sub, o);
	else
		r = parse_source_root(&sub, o, true);
	free(c->incstack[--c->nincstack]);
	c->include_depth--;
	return r < 0 ? r : 1;
}

/* True when `name` has a ".." segment. */
static bool has_dotdot(const char *name)
{
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += n;
		p += strspn(p, "/");
	}
	return false;
}

static int do_include(struct parser *ps, struct hobj *o, const char *at, const char *name,
		      bool required)
{
	if (!*name)
		return perr(ps, at, -EINVAL, "cannot include an empty file name");
	const struct kilt_hocon *doc = ps->c->doc;
	if (doc->limits.includes == KILT_HOCON_INCLUDE_NONE)
		return perr(ps, at, -EPERM,
			    "cannot include \"%s\": this document may not include files", name);
	if (doc->limits.includes == KILT_HOCON_INCLUDE_BESIDE &&
	    (name[0] == '/' || has_dotdot(name) || !ps->c->root_dir))
		return perr(ps, at, -EPERM,
			    "cannot include \"%s\": only files beside %s may be included (a "
			    "relative name without '..')",
			    name, doc->srcs[ps->c->incfile[0]].name);
	_cleanup_free_ char *full = NULL;
	if (name[0] == '/' || strcmp(ps->dir, ".") == 0)
		full = xstrdup(name);
	else
		full = xasprintf("%s/%s", ps->dir, name);
	int fmt = fmt_of(full);
	if (fmt >= 0) {
		int r = include_one(ps, o, at, name, full, fmt, required);
		return r < 0 ? r : 0;
	}
	static const char *const exts[] = { ".properties", ".json", ".conf" };
	static const int fmts[] = { FMT_PROPS, FMT_JSON, FMT_CONF };
	int any = 0;
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
		_cleanup_free_ char *p = xasprintf("%s%s", full, exts[i]);
		int r = include_one(ps, o, at, name, p, fmts[i], false);
		if (r < 0)
			return r;
		any |= r;
	}
	if (required && !any)
		return perr(ps, at, -ENOENT,
			    "cannot include \"%s\": none of %s.conf, %s.json, %s.properties exists",
			    name, full, full, full);
	return 0;
}

static bool at_word(const struct parser *ps, const char *w)
{
	size_t n = strlen(w);
	return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0;
}

static bool at_include(const struct parser *ps)
{
	if (!at_word(ps, "include"))
		return false;
	const char *q = ps->p + 7;
	if (q >= ps->end)
		return false;
	return *q == '"' || (cls[(unsigned char)*q] & (C_WS | C_NL)) || uws_len(q, ps->end);
}

static int parse_include(struct parser *ps, struct hobj *o)
{
	const char *at = ps->p;
	ps->p += 7;
	skip_all(ps);
	bool required = false;
	int paren = 0;
	const char *kind = NULL;
	if (at_word(ps, "required(")) {
		required = true;
		ps->p += 9;
		paren++;
		skip_all(ps);
	}
	static const char *const kinds[] = { "file(", "url(", "classpath(" };
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (at_word(ps, kinds[i])) {
			kind = kinds[i];
			ps->p += strlen(kinds[i]);
			paren++;
			skip_all(ps);
			break;
		}
	}
	if (ps->p >= ps->end || *ps->p != '"')
		return expected(ps, kind || required
					    ? "a quoted file name"
					    : "a quoted file name, file(), required(), url() or "
					      "classpath() after include");
	const char *s;
	size_t len;
	int r = parse_quoted(ps, &s, &len);
	if (r < 0)
		return r;
	_cleanup_free_ char *name = xstrndup(s, len);
	if (memchr(s, '\0', len))
		return perr(ps, at, -EINVAL, "cannot include a file name containing NUL");
	while (paren--) {
		skip_all(ps);
		if (ps->p >= ps->end || *ps->p != ')')
			return expected(ps, "')'");
		ps->p++;
	}
	if (kind && strcmp(kind, "file(") != 0)
		return perr(ps, at, -EOPNOTSUPP,
			    "include %s\"%s\") is not supported: only files can be included", kind,
			    name);
	if (!kind && (strstr(name, "://") || strncmp(name, "file:", 5) == 0))
		return perr(ps, at, -EOPNOTSUPP,
			    "include of URL \"%s\" is not supported: only files can be included",
			    name);
	return do_include(ps, o, at, name, required);
}

/* ---- objects --------------------------------------------------------------------------------- */

static struct hval *make_append(struct parser *ps, const struct hseg *segs, uint32_t n,
				struct hval *v, const char *at)
{
	struct pctx *c = ps->c;
	struct hval *sub = new_val(ps, HV_SUBST, at);
	sub->flags = HV_F_OPTIONAL;
	uint32_t base = c->path_valid ? c->npath : 0;
	struct hseg *abs = kilt_arena_alloc(A(ps), (base + n) * sizeof(*abs));
	if (base)
		memcpy(abs, c->path, base * sizeof(*abs));
	memcpy(abs + base, segs, n * sizeof(*abs));
	sub->sub.path = (struct hpath){ abs, base + n };
	struct hval *arr = new_val(ps, HV_ARR, ps->base + v->off);
	arr->arr.items = kilt_arena_alloc(A(ps), sizeof(struct hval *));
	arr->arr.items[0] = v;
	arr->arr.n = 1;
	struct hval *cat = new_val(ps, HV_CONCAT, at);
	cat->cat.parts = kilt_arena_alloc(A(ps), 2 * sizeof(struct hval *));
	cat->cat.parts[0] = sub;
	cat->cat.parts[1] = arr;
	cat->cat.n = 2;
	if (c->path_valid)
		cat->flags |= HV_F_APPEND;
	return cat;
}

static int parse_field(struct parser *ps, struct hobj *o)
{
	struct pctx *c = ps->c;
	const char *key_at = ps->p;
	struct seglist segs;
	seglist_init(&segs);
	int r = parse_path(ps, &segs, "a key");
	if (r < 0)
		goto out;
	skip_all(ps);
	bool append = false;
	if (ps->p < ps->end && (*ps->p == ':' || *ps->p == '=')) {
		ps->p++;
	} else if (ps->end - ps->p >= 2 && ps->p[0] == '+' && ps->p[1] == '=') {
		ps->p += 2;
		append = true;
	} else if (!(ps->p < ps->end && *ps->p == '{')) {
		r = expected(ps, "':', '=', '+=' or '{' after a key");
		goto out;
	}
	skip_all(ps);
	unsigned saved_depth = ps->depth;
	r = enter(ps, key_at, segs.n - 1);
	if (r < 0)
		goto out;
	uint32_t saved_npath = c->npath;
	cpath_push(c, segs.v, segs.n);
	struct hval *v = NULL;
	r = parse_value(ps, &v);
	c->npath = saved_npath;
	ps->depth = saved_depth;
	if (r < 0)
		goto out;
	if (!v) {
		r = expected(ps, "a value");
		goto out;
	}
	struct hpath key = path_to_arena(ps, segs.v, segs.n);
	if (append)
		v = make_append(ps, key.segs, key.n, v, key_at);
	obj_set_path(ps, o, key.segs, key.n, v, false);
out:
	seglist_done(&segs);
	return r;
}

static int parse_fields(struct parser *ps, struct hobj *o, bool braced, const char *open)
{
	for (;;) {
		skip_all(ps);
		if (ps->p >= ps->end) {
			if (!braced)
				return 0;
			unsigned line, col;
			kilt_hocon_locate(ps->c->doc, ps->file, off_of(ps, open), &line, &col);
			char what[64];
			snprintf(what, sizeof(what), "'}' to close the object opened at %u:%u",
				 line, col);
			return expected(ps, what);
		}
		char ch = *ps->p;
		if (ch == '}') {
			if (!braced)
				return perr(
					ps, ps->p, -EINVAL,
					"found '}' without a matching '{' (the root braces were "
					"omitted)");
			ps->p++;
			return 0;
		}
		if (ch == ',')
			return expected(ps, braced ? "a key or '}'" : "a key");
		int r = at_include(ps) ? parse_include(ps, o) : parse_field(ps, o);
		if (r < 0)
			return r;
		skip_inline(ps);
		if (ps->p >= ps->end)
			continue;
		ch = *ps->p;
		if (ch == ',') {
			ps->p++;
			skip_all(ps);
			if (ps->p < ps->end && *ps->p == ',')
				return expected(ps, "a key after ','");
			continue;
		}
		if (ch == '\n' || ch == '}')
			continue;
		return expected(ps, "',' or a newline after a field");
	}
}

/* Parses a whole source into `into` (an included file: must be an object) or as the root. */
static int parse_source_root(struct parser *ps, struct hobj *into, bool included)
{
	size_t bad = kilt_utf8_valid_prefix((const unsigned char *)ps->base,
					    (size_t)(ps->end - ps->base));
	if (bad < (size_t)(ps->end - ps->base))
		return perr(ps, ps->base + bad, -EILSEQ, "invalid UTF-8 (byte 0x%02x)",
			    (unsigned char)ps->base[bad]);
	skip_all(ps);
	if (ps->p < ps->end && *ps->p == '[') {
		if (included)
			return perr(ps, ps->p, -EINVAL,
				    "an included file must contain an object, found an array");
		return -EAGAIN; /* the caller parses a root array */
	}
	if (ps->p < ps->end && *ps->p == '{') {
		const char *open = ps->p;
		int r = enter(ps, open, 1);
		if (r < 0)
			return r;
		ps->p++;
		r = parse_fields(ps, into, true, open);
		ps->depth--;
		if (r < 0)
			return r;
		skip_all(ps);
		if (ps->p < ps->end)
			return expected(ps, "end of input after the root object");
		return 0;
	}
	int r = enter(ps, ps->p, 1);
	if (r < 0)
		return r;
	r = parse_fields(ps, into, false, ps->p);
	ps->depth--;
	return r;
}

/* ---- Java properties ------------------------------------------------------------------------- */

/* Reads a properties key or value (with escapes and line continuations) into the scratch
 * buffer, stopping at the end of the logical line or, for keys, at '=', ':' or whitespace. */
static int props_token(struct parser *ps, bool key)
{
	struct kbuf *b = &ps->c->scratch;
	b->len = 0;
	while (ps->p < ps->end) {
		char ch = *ps->p;
		if (ch == '\n' || ch == '\r')
			break;
		if (key && (ch == '=' || ch == ':' || ch == ' ' || ch == '\t' || ch == '\f'))
			break;
		if (ch != '\\') {
			kbuf_addc(b, ch);
			ps->p++;
			continue;
		}
		ps->p++;
		if (ps->p >= ps->end)
			break;
		ch = *ps->p;
		if (ch == '\n' || ch == '\r') {
			/* continuation: skip the line end and the next line's leading blanks */
			if (ch == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n')
				ps->p++;
			ps->p++;
			while (ps->p < ps->end &&
			       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\f'))
				ps->p++;
			continue;
		}
		ps->p++;
		switch (ch) {
		case 't':
			kbuf_addc(b, '\t');
			break;
		case 'n':
			kbuf_addc(b, '\n');
			break;
		case 'r':
			kbuf_addc(b, '\r');
			break;
		case 'f':
			kbuf_addc(b, '\f');
			break;
		case 'u': {
			uint32_t cp;
			int r = read_hex4(ps, ps->p, &cp);
			if (r < 0)
				return r;
			if (cp >= 0xD800 && cp <= 0xDFFF)
				cp = 0xFFFD;
			put_utf8(b, cp);
			ps->p += 4;
			break;
		}
		default:
			kbuf_addc(b, ch);
		}
	}
	return 0;
}

static int parse_properties(struct parser *ps, struct hobj *o)
{
	size_t bad = kilt_utf8_valid_prefix((const unsigned char *)ps->base,
					    (size_t)(ps->end - ps->base));
	if (bad < (size_t)(ps->end - ps->base))
		return perr(ps, ps->base + bad, -EILSEQ, "invalid UTF-8 (byte 0x%02x)",
			    (unsigned char)ps->base[bad]);
	struct seglist segs;
	seglist_init(&segs);
	int r = 0;
	while (ps->p < ps->end) {
		while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\f'))
			ps->p++;
		if (ps->p >= ps->end)
			break;
		char ch = *ps->p;
		if (ch == '\n' || ch == '\r') {
			ps->p++;
			continue;
		}
		if (ch == '#' || ch == '!') {
			skip_to_eol(ps);
			continue;
		}
		const char *at = ps->p;
		r = props_token(ps, true);
		if (r < 0)
			break;
		struct kbuf *b = &ps->c->scratch;
		char *key = kilt_arena_memdup(A(ps), b->data ? b->data : "", b->len);
		size_t klen = b->len;
		while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\f'))
			ps->p++;
		if (ps->p < ps->end && (*ps->p == '=' || *ps->p == ':'))
			ps->p++;
		while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\f'))
			ps->p++;
		r = props_token(ps, false);
		if (r < 0)
			break;
		struct hval *v = new_val(ps, HV_STR, at);
		v->lit.s = kilt_arena_memdup(A(ps), b->data ? b->data : "", b->len);
		v->lit.len = b->len;
		segs.n = 0;
		const char *q = key, *kend = key + klen;
		for (;;) {
			const char *dot = memchr(q, '.', (size_t)(kend - q));
			const char *e = dot ? dot : kend;
			seglist_add(&segs, q, (size_t)(e - q));
			if (!dot)
				break;
			q = dot + 1;
		}
		if (ps->depth + segs.n > ps->c->doc->limits.max_depth) {
			r = perr(ps, at, -E2BIG,
				 "objects and arrays nested deeper than the limit of %u",
				 ps->c->doc->limits.max_depth);
			break;
		}
		struct hpath path = path_to_arena(ps, segs.v, segs.n);
		obj_set_path(ps, o, path.segs, path.n, v, true);
	}
	seglist_done(&segs);
	return r;
}

/* ---- finishing ------------------------------------------------------------------------------- */

/* Marks values that need resolution and gives each a memo slot. */
static bool finalize(struct kilt_hocon *doc, struct hval *v)
{
	bool dyn = false;
	switch (v->type) {
	case HV_SUBST:
		dyn = true;
		break;
	case HV_CONCAT:
		for (uint32_t i = 0; i < v->cat.n; i++)
			finalize(doc, v->cat.parts[i]);
		dyn = true;
		break;
	case HV_OBJ:
		for (uint32_t i = 0; i < v->obj->n; i++) {
			const struct hfield *f = v->obj->fields[i];
			for (uint32_t k = 0; k < f->n; k++)
				dyn |= finalize(doc, f->defs[k]);
		}
		break;
	case HV_ARR:
		for (uint32_t i = 0; i < v->arr.n; i++)
			dyn |= finalize(doc, v->arr.items[i]);
		break;
	default:
		return false;
	}
	if (dyn && !(v->flags & HV_F_DYNAMIC)) {
		v->flags |= HV_F_DYNAMIC;
		v->id = doc->nids++;
	}
	return dyn;
}

int kilt_hocon_parse_root(struct kilt_hocon *doc, uint16_t file, const char *dir,
			  struct kilt_error *err)
{
	struct pctx c = { .doc = doc, .err = err, .path_valid = true };
	kbuf_init(&c.scratch, SIZE_MAX);
	const struct hsrc *src = &doc->srcs[file];
	struct parser ps = {
		.c = &c,
		.base = src->text,
		.p = src->text,
		.end = src->text + src->len,
		.file = file,
		.dir = dir,
	};
	c.incfile[c.nincstack] = file;
	c.incstack[c.nincstack++] = realpath(src->name, NULL);
	if (doc->limits.includes == KILT_HOCON_INCLUDE_BESIDE && c.incstack[0]) {
		char buf[4096];
		const char *d = kilt_hocon_dir_of(c.incstack[0], buf, sizeof(buf));
		c.root_dir = strcmp(d, "/") == 0 ? xstrdup("/") : xasprintf("%s/", d);
	}
	struct hval *root = new_obj_val(&ps, src->text);
	int r = parse_source_root(&ps, root->obj, false);
	if (r == -EAGAIN) {
		r = parse_array(&ps, &root);
		if (r == 0) {
			skip_all(&ps);
			if (ps.p < ps.end)
				r = expected(&ps, "end of input after the root array");
		}
	}
	for (unsigned i = 0; i < c.nincstack; i++)
		free(c.incstack[i]);
	free(c.root_dir);
	free(c.path);
	kbuf_done(&c.scratch);
	if (r < 0)
		return r;
	finalize(doc, root);
	doc->root = root;
	return 0;
}
