/* SPDX-License-Identifier: Apache-2.0 */
/* HOCON resolver: turns a parsed document's merged tree into jansson values, resolving
 * substitutions lazily with memoization (one slot per dynamic value), HOCON's "look back" rule for
 * self-references, cycle detection, and the caller's context for paths the document does not set.
 * A resolution never changes the document, so several may run at once. */
#include <math.h>
#include <stdarg.h>

#include "hocon-internal.h"

enum { ST_NONE, ST_BUSY, ST_DONE };

struct slot {
	json_t *v; /* owned; NULL when the value is undefined (an unresolved ${?x}) */
	uint8_t st;
};

/* One definition of a path, latest first in a list: a value of the tree, or a member of a value
 * that a substitution already resolved. */
struct item {
	const struct hval *v;
	json_t *j; /* borrowed (kept alive by a memo slot) */
	const struct hval *origin; /* for j: the value that produced it */
};

struct items {
	struct item *v;
	uint32_t n, cap;
	struct item inl[8];
};

struct rstate {
	const struct kilt_hocon *doc;
	const json_t *ctx;
	struct slot *slots;
	const struct hval *top; /* innermost field definition (substitution/concatenation) */
	unsigned depth;
	unsigned nest; /* objects and arrays being resolved around the current value */
	size_t work, budget;
	size_t visits; /* nesting checks of reused values, bounded by budget too */
	bool shared; /* an object or array may have several parents: unshare() before returning */
	struct kilt_error *err;
};

static void items_init(struct items *l)
{
	l->v = l->inl;
	l->n = 0;
	l->cap = ARRAY_SIZE(l->inl);
}

static void items_add(struct items *l, struct item it)
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
	l->v[l->n++] = it;
}

static void items_done(struct items *l)
{
	if (l->v != l->inl)
		free(l->v);
}

static char *path_str(const struct hseg *segs, uint32_t n)
{
	struct kbuf b;
	kbuf_init(&b, 4096);
	for (uint32_t i = 0; i < n; i++)
		kilt_hocon_path_append_key(&b, segs[i].s, segs[i].len);
	return kbuf_steal(&b);
}

static int verr(struct rstate *rs, const struct hval *at, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int verr(struct rstate *rs, const struct hval *at, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!at)
		return kilt_error_setf(rs->err, code, "%s", msg);
	return kilt_hocon_error_at(rs->doc, at->file, at->off, rs->err, code, "%s", msg);
}

static int budget_error(struct rstate *rs, const struct hval *at)
{
	return verr(rs, at, -E2BIG,
		    "the resolved document grows beyond %zu values and bytes (substitutions copy "
		    "too much)",
		    rs->budget);
}

static const char *json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* ---- nesting ---------------------------------------------------------------------------------- */

/* 1 when `j` nests objects and arrays more than `left` deep, -1 when the checks exceed the budget
 * (a shared value may be reached many times). Recursion is bounded by `left`. */
static int nest_over(struct rstate *rs, const json_t *j, unsigned left)
{
	if (!json_is_object(j) && !json_is_array(j))
		return 0;
	if (left == 0)
		return 1;
	if (++rs->visits > rs->budget)
		return -1;
	int r = 0;
	if (json_is_object(j)) {
		const char *k;
		json_t *x;
		json_object_foreach ((json_t *)(uintptr_t)j, k, x)
			if ((r = nest_over(rs, x, left - 1)) != 0)
				return r;
	} else {
		size_t i;
		json_t *x;
		json_array_foreach (j, i, x)
			if ((r = nest_over(rs, x, left - 1)) != 0)
				return r;
	}
	return 0;
}

static int nest_error(struct rstate *rs, const struct hval *at)
{
	return verr(rs, at, -E2BIG,
		    "objects and arrays nested deeper than the limit of %u once substitutions are "
		    "resolved",
		    rs->doc->limits.max_depth);
}

/* A value resolved earlier is placed here: the result must stay within max_depth, or walks over
 * it (and freeing it) could recurse without bound. */
static int check_reuse(struct rstate *rs, const struct hval *at, const json_t *j)
{
	unsigned max = rs->doc->limits.max_depth;
	if (rs->nest == 0)
		return 0; /* outside the root (origins): every value is within max_depth by itself */
	int r = nest_over(rs, j, rs->nest < max ? max - rs->nest : 0);
	if (r < 0)
		return budget_error(rs, at);
	return r > 0 ? nest_error(rs, at) : 0;
}

/* ---- values ---------------------------------------------------------------------------------- */

static int resolve_ex(struct rstate *rs, const struct hval *v, bool part, json_t **out);

static int resolve_val(struct rstate *rs, const struct hval *v, json_t **out)
{
	return resolve_ex(rs, v, false, out);
}

/* Object merge: `hi` wins, objects in both merge. Returns a new object with the keys of `lo`
 * first (earlier definitions keep their place), then the new keys of `hi`. */
static json_t *merge_objects(struct rstate *rs, json_t *hi, json_t *lo)
{
	json_t *m = json_object();
	rs->shared = true;
	void *it = json_object_iter(lo);
	while (it) {
		json_object_setn_nocheck(m, json_object_iter_key(it), json_object_iter_key_len(it),
					 json_object_iter_value(it));
		it = json_object_iter_next(lo, it);
	}
	it = json_object_iter(hi);
	while (it) {
		const char *key = json_object_iter_key(it);
		size_t klen = json_object_iter_key_len(it);
		json_t *hv = json_object_iter_value(it);
		json_t *lv = json_object_getn(m, key, klen);
		if (lv && json_is_object(hv) && json_is_object(lv))
			json_object_setn_new_nocheck(m, key, klen, merge_objects(rs, hv, lv));
		else
			json_object_setn_nocheck(m, key, klen, hv);
		it = json_object_iter_next(hi, it);
	}
	rs->work += json_object_size(m);
	return m;
}

/* Folds the definitions of one path, latest first: the latest wins unless it and the ones
 * before it are objects, which merge; an undefined one (${?x}) is skipped. */
static int fold(struct rstate *rs, const struct item *it, uint32_t n, json_t **out)
{
	json_t *acc = NULL;
	for (uint32_t i = 0; i < n; i++) {
		json_t *x = NULL;
		if (it[i].j) {
			int r = check_reuse(rs, it[i].origin, it[i].j);
			if (r < 0) {
				json_decref(acc);
				return r;
			}
			x = json_incref(it[i].j);
			if (json_is_object(x) || json_is_array(x))
				rs->shared = true;
		} else {
			int r = resolve_val(rs, it[i].v, &x);
			if (r < 0) {
				json_decref(acc);
				return r;
			}
		}
		if (!x)
			continue;
		if (!acc) {
			acc = x;
			if (!json_is_object(acc))
				break;
			continue;
		}
		if (!json_is_object(x)) {
			json_decref(x);
			break;
		}
		json_t *m = merge_objects(rs, acc, x);
		json_decref(acc);
		json_decref(x);
		acc = m;
		if (rs->work > rs->budget) {
			json_decref(acc);
			return budget_error(rs, it[i].v ? it[i].v : it[i].origin);
		}
	}
	*out = acc;
	return 0;
}

static int fold_field(struct rstate *rs, const struct hfield *f, json_t **out)
{
	if (f->n == 1)
		return resolve_val(rs, f->defs[0], out);
	struct items l;
	items_init(&l);
	for (uint32_t i = f->n; i-- > 0;)
		items_add(&l, (struct item){ .v = f->defs[i] });
	int r = fold(rs, l.v, l.n, out);
	items_done(&l);
	return r;
}

static int resolve_obj(struct rstate *rs, const struct hobj *o, json_t **out)
{
	json_t *res = json_object();
	for (uint32_t i = 0; i < o->n; i++) {
		const struct hfield *f = o->fields[i];
		json_t *x = NULL;
		int r = fold_field(rs, f, &x);
		if (r < 0) {
			json_decref(res);
			return r;
		}
		if (x)
			json_object_setn_new_nocheck(res, f->key, f->klen, x);
	}
	*out = res;
	return 0;
}

static int resolve_arr(struct rstate *rs, const struct hval *v, json_t **out)
{
	json_t *res = json_array();
	for (uint32_t i = 0; i < v->arr.n; i++) {
		json_t *x = NULL;
		int r = resolve_val(rs, v->arr.items[i], &x);
		if (r < 0) {
			json_decref(res);
			return r;
		}
		if (x)
			json_array_append_new(res, x);
	}
	*out = res;
	return 0;
}

static json_t *lit_json(const struct hval *v)
{
	switch (v->type) {
	case HV_NULL:
		return json_null();
	case HV_TRUE:
		return json_true();
	case HV_FALSE:
		return json_false();
	case HV_INT:
		return json_integer(v->lit.num.i);
	case HV_REAL:
		return json_real(v->lit.num.d);
	default:
		return json_stringn_nocheck(v->lit.s, v->lit.len);
	}
}

/* ---- lookups --------------------------------------------------------------------------------- */

/* Adds the definitions of `f`, latest first. A definition being resolved right now, and every one
 * after it, is left out: a self-reference looks back at what came before. */
static int add_field_defs(struct rstate *rs, const struct hfield *f, struct items *next,
			  const struct hval **excluded)
{
	uint32_t k = f->n;
	for (uint32_t i = 0; i < f->n; i++) {
		const struct hval *d = f->defs[i];
		if ((d->type == HV_SUBST || d->type == HV_CONCAT) &&
		    rs->slots[d->id].st == ST_BUSY) {
			k = i;
			*excluded = d;
			break;
		}
	}
	/* `a += x` lines before the one being resolved: the caller resolves defs[k - 1], which
	 * reads defs[k - 2], and so on. Resolved here from the oldest, each finds the one before
	 * it done, so the appends do not add up as nested substitutions (33 lines passed the
	 * limit of 64) nor as stack depth. Same results: each reads only older definitions. */
	if (k < f->n) {
		uint32_t s = k;
		while (s > 0 && (f->defs[s - 1]->flags & HV_F_APPEND) &&
		       rs->slots[f->defs[s - 1]->id].st == ST_NONE)
			s--;
		for (uint32_t j = s; j + 1 < k; j++) {
			json_t *x = NULL;
			int r = resolve_val(rs, f->defs[j], &x);
			json_decref(x);
			if (r < 0)
				return r;
		}
	}
	while (k-- > 0)
		items_add(next, (struct item){ .v = f->defs[k] });
	return 0;
}

/* The definitions of member `seg` of the value whose definitions are `cur`. */
static int descend(struct rstate *rs, const struct items *cur, const struct hseg *seg,
		   struct items *next, const struct hval **excluded)
{
	for (uint32_t i = 0; i < cur->n; i++) {
		const struct item *it = &cur->v[i];
		json_t *j = it->j, *owned = NULL;
		const struct hval *origin = it->origin;
		if (!j) {
			const struct hval *v = it->v;
			if (v->type == HV_OBJ) {
				const struct hfield *f =
					kilt_hobj_find(v->obj, seg->s, seg->len, seg->hash);
				if (f) {
					int r = add_field_defs(rs, f, next, excluded);
					if (r < 0)
						return r;
				}
				continue;
			}
			if (v->type != HV_SUBST && v->type != HV_CONCAT)
				return 0; /* not an object: hides what came before */
			const struct slot *sl = &rs->slots[v->id];
			if (sl->st == ST_DONE) {
				/* only a member is used, and checked where it is placed */
				j = sl->v;
			} else {
				int r = resolve_val(rs, v, &owned);
				if (r < 0)
					return r;
				j = owned;
			}
			if (!j)
				continue;
			origin = v;
		}
		if (!json_is_object(j)) {
			json_decref(owned);
			return 0;
		}
		json_t *m = json_object_getn(j, seg->s, seg->len);
		if (m)
			items_add(next, (struct item){ .j = m, .origin = origin });
		/* the memo slot keeps `owned` (and so `m`) alive */
		json_decref(owned);
	}
	return 0;
}

static int lookup(struct rstate *rs, const struct hseg *segs, uint32_t n, json_t **out,
		  const struct hval **excluded)
{
	*out = NULL;
	if (rs->doc->root->type != HV_OBJ)
		return 0;
	struct items a, b, *cur = &a, *next = &b;
	items_init(&a);
	items_init(&b);
	items_add(cur, (struct item){ .v = rs->doc->root });
	int r = 0;
	for (uint32_t i = 0; i < n && cur->n; i++) {
		next->n = 0;
		r = descend(rs, cur, &segs[i], next, excluded);
		if (r < 0)
			goto out;
		struct items *t = cur;
		cur = next;
		next = t;
	}
	if (cur->n)
		r = fold(rs, cur->v, cur->n, out);
out:
	items_done(&a);
	items_done(&b);
	return r;
}

static json_t *ctx_lookup(const json_t *ctx, const struct hseg *segs, uint32_t n)
{
	const json_t *j = ctx;
	for (uint32_t i = 0; i < n; i++) {
		if (!json_is_object(j))
			return NULL;
		j = json_object_getn(j, segs[i].s, segs[i].len);
		if (!j)
			return NULL;
	}
	return json_deep_copy(j);
}

static int resolve_subst(struct rstate *rs, const struct hval *v, json_t **out)
{
	const struct hpath *p = &v->sub.path, *pre = &v->sub.prefix;
	const struct hval *excluded = NULL;
	json_t *x = NULL;
	int r;
	if (pre->n) {
		uint32_t n = pre->n + p->n;
		struct hseg *segs = xmalloc(n * sizeof(*segs));
		memcpy(segs, pre->segs, pre->n * sizeof(*segs));
		memcpy(segs + pre->n, p->segs, p->n * sizeof(*segs));
		r = lookup(rs, segs, n, &x, &excluded);
		free(segs);
		if (r < 0)
			return r;
	}
	if (!x) {
		r = lookup(rs, p->segs, p->n, &x, &excluded);
		if (r < 0)
			return r;
	}
	if (!x && rs->ctx) {
		x = ctx_lookup(rs->ctx, p->segs, p->n);
		if (x && (r = check_reuse(rs, v, x)) < 0) {
			json_decref(x);
			return r;
		}
	}
	if (!x && !(v->flags & HV_F_OPTIONAL)) {
		_cleanup_free_ char *name = path_str(p->segs, p->n);
		if (excluded && excluded == rs->top)
			return verr(rs, v, -ENOENT,
				    "unresolved substitution ${%s}: it refers to the field being "
				    "defined, which has no earlier value",
				    name);
		if (excluded)
			return verr(rs, v, -ELOOP, "substitution cycle: ${%s} depends on itself",
				    name);
		return verr(rs, v, -ENOENT,
			    "unresolved substitution ${%s}: %s is not set in the document%s", name,
			    name, rs->ctx ? " or the context" : "");
	}
	*out = x;
	return 0;
}

/* ---- concatenation --------------------------------------------------------------------------- */

static int real_text(struct kbuf *b, double d)
{
	char buf[64];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	return kbuf_adds(b, buf);
}

/* Appends a scalar as concatenation renders it; -E2BIG when the buffer is full. */
static int scalar_text(struct kbuf *b, const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_STRING:
		return kbuf_add(b, json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		return kbuf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
	case JSON_REAL:
		return real_text(b, json_real_value(j));
	case JSON_TRUE:
		return kbuf_adds(b, "true");
	case JSON_FALSE:
		return kbuf_adds(b, "false");
	default:
		return kbuf_adds(b, "null");
	}
}

enum { K_NONE, K_STR, K_ARR, K_OBJ };

static int resolve_concat(struct rstate *rs, const struct hval *v, json_t **out)
{
	uint32_t n = v->cat.n;
	json_t *small[16];
	json_t **vals = n <= ARRAY_SIZE(small) ? small : xmalloc(n * sizeof(*vals));
	memset(vals, 0, n * sizeof(*vals));
	int kind = K_NONE, r = 0;
	const char *first_kind = NULL;
	int64_t first_def = -1, last_def = -1;
	for (uint32_t i = 0; i < n; i++) {
		const struct hval *p = v->cat.parts[i];
		if (p->flags & HV_F_WS)
			continue;
		int k;
		const char *kname;
		if (!(p->flags & HV_F_DYNAMIC) && p->type != HV_OBJ && p->type != HV_ARR) {
			k = K_STR;
			kname = "a string";
		} else {
			r = resolve_ex(rs, p, true, &vals[i]);
			if (r < 0)
				goto out;
			if (!vals[i])
				continue;
			k = json_is_object(vals[i])  ? K_OBJ
			    : json_is_array(vals[i]) ? K_ARR
						     : K_STR;
			kname = json_kind(vals[i]);
		}
		if (kind != K_NONE && k != kind) {
			r = verr(rs, p, -EINVAL, "cannot concatenate %s with %s", first_kind,
				 kname);
			goto out;
		}
		if (kind == K_NONE)
			first_kind = kname;
		kind = k;
		if (first_def < 0)
			first_def = i;
		last_def = i;
	}
	if (kind == K_STR) {
		struct kbuf b;
		size_t left = rs->budget > rs->work ? rs->budget - rs->work : 0;
		kbuf_init(&b, left);
		int full = 0;
		for (int64_t i = first_def; i <= last_def && !full; i++) {
			const struct hval *p = v->cat.parts[i];
			if (vals[i])
				full = scalar_text(&b, vals[i]);
			else if (!(p->flags & HV_F_DYNAMIC))
				full = kbuf_add(&b, p->lit.s, p->lit.len);
		}
		if (full < 0 || b.len >= left) {
			kbuf_done(&b);
			r = budget_error(rs, v);
			goto out;
		}
		rs->work += b.len + 1;
		*out = json_stringn_nocheck(b.data ? b.data : "", b.len);
		kbuf_done(&b);
	} else if (kind == K_ARR) {
		json_t *a = json_array();
		for (uint32_t i = 0; i < n; i++) {
			if (vals[i]) {
				size_t na = json_array_size(vals[i]);
				rs->work += na;
				for (size_t k = 0; k < na && !rs->shared; k++) {
					json_t *e = json_array_get(vals[i], k);
					rs->shared = json_is_object(e) || json_is_array(e);
				}
				json_array_extend(a, vals[i]);
			}
		}
		if (rs->work > rs->budget) {
			json_decref(a);
			r = budget_error(rs, v);
			goto out;
		}
		*out = a;
	} else if (kind == K_OBJ) {
		json_t *acc = NULL;
		for (uint32_t i = 0; i < n; i++) {
			if (!vals[i])
				continue;
			if (!acc) {
				acc = json_incref(vals[i]);
				rs->shared = true;
				continue;
			}
			json_t *m = merge_objects(rs, vals[i], acc);
			json_decref(acc);
			acc = m;
		}
		if (rs->work > rs->budget) {
			json_decref(acc);
			r = budget_error(rs, v);
			goto out;
		}
		*out = acc;
	}
out:
	for (uint32_t i = 0; i < n; i++)
		json_decref(vals[i]);
	if (vals != small)
		free(vals);
	return r;
}

/* ---- memoized resolution --------------------------------------------------------------------- */

static int resolve_container(struct rstate *rs, const struct hval *v, json_t **out)
{
	if (rs->nest >= rs->doc->limits.max_depth)
		return nest_error(rs, v);
	rs->nest++;
	int r = v->type == HV_OBJ ? resolve_obj(rs, v->obj, out) : resolve_arr(rs, v, out);
	rs->nest--;
	return r;
}

static int cycle_error(struct rstate *rs, const struct hval *v)
{
	const struct hval *at = rs->top ? rs->top : v;
	if (at->type == HV_SUBST) {
		_cleanup_free_ char *name = path_str(at->sub.path.segs, at->sub.path.n);
		return verr(rs, at, -ELOOP,
			    "substitution cycle: ${%s} refers to a value that contains it", name);
	}
	return verr(rs, at, -ELOOP, "substitution cycle: this value refers to itself");
}

static int resolve_ex(struct rstate *rs, const struct hval *v, bool part, json_t **out)
{
	*out = NULL;
	if (!(v->flags & HV_F_DYNAMIC)) {
		if (v->type == HV_OBJ || v->type == HV_ARR)
			return resolve_container(rs, v, out);
		*out = lit_json(v);
		return 0;
	}
	struct slot *s = &rs->slots[v->id];
	if (s->st == ST_DONE) {
		int r = check_reuse(rs, v, s->v);
		if (r < 0)
			return r;
		*out = json_incref(s->v);
		if (json_is_object(s->v) || json_is_array(s->v))
			rs->shared = true;
		return 0;
	}
	if (s->st == ST_BUSY)
		return cycle_error(rs, v);
	bool subst = v->type == HV_SUBST || v->type == HV_CONCAT;
	const struct hval *saved_top = rs->top;
	if (subst) {
		if (rs->depth >= rs->doc->limits.max_subst_depth) {
			const struct hval *at = v;
			if (v->type == HV_SUBST) {
				_cleanup_free_ char *name =
					path_str(v->sub.path.segs, v->sub.path.n);
				return verr(
					rs, at, -E2BIG,
					"substitutions nested deeper than the limit of %u while "
					"resolving ${%s}",
					rs->doc->limits.max_subst_depth, name);
			}
			return verr(rs, at, -E2BIG,
				    "substitutions nested deeper than the limit of %u",
				    rs->doc->limits.max_subst_depth);
		}
		rs->depth++;
		if (!part)
			rs->top = v;
	}
	s->st = ST_BUSY;
	json_t *res = NULL;
	int r;
	switch (v->type) {
	case HV_OBJ:
	case HV_ARR:
		r = resolve_container(rs, v, &res);
		break;
	case HV_SUBST:
		r = resolve_subst(rs, v, &res);
		if (r == -ELOOP && (v->flags & HV_F_OPTIONAL)) {
			/* a cycle through ${?x} counts as undefined */
			if (rs->err)
				*rs->err = (struct kilt_error){ 0 };
			r = 0;
			res = NULL;
		}
		break;
	default:
		r = resolve_concat(rs, v, &res);
		break;
	}
	if (subst) {
		rs->depth--;
		rs->top = saved_top;
	}
	if (r < 0) {
		s->st = ST_NONE;
		return r;
	}
	s->st = ST_DONE;
	s->v = res;
	*out = json_incref(res);
	return 0;
}

/* ---- output ---------------------------------------------------------------------------------- */

static json_t *copy_counted(struct rstate *rs, json_t *j)
{
	if (++rs->work > rs->budget)
		return NULL;
	if (json_is_object(j)) {
		json_t *c = json_object();
		void *it = json_object_iter(j);
		while (it) {
			json_t *x = copy_counted(rs, json_object_iter_value(it));
			if (!x) {
				json_decref(c);
				return NULL;
			}
			json_object_setn_new_nocheck(c, json_object_iter_key(it),
						     json_object_iter_key_len(it), x);
			it = json_object_iter_next(j, it);
		}
		return c;
	}
	if (json_is_array(j)) {
		json_t *c = json_array();
		for (size_t i = 0; i < json_array_size(j); i++) {
			json_t *x = copy_counted(rs, json_array_get(j, i));
			if (!x) {
				json_decref(c);
				return NULL;
			}
			json_array_append_new(c, x);
		}
		return c;
	}
	return json_incref(j);
}

static bool is_container(const json_t *j)
{
	return json_is_object(j) || json_is_array(j);
}

/* Gives every object and array of the result a single parent, so the caller owns a plain tree
 * (substitutions share values while resolving). */
static int unshare(struct rstate *rs, json_t *j)
{
	if (++rs->work > rs->budget)
		return budget_error(rs, NULL);
	if (json_is_object(j)) {
		void *it = json_object_iter(j);
		while (it) {
			json_t *x = json_object_iter_value(it);
			if (is_container(x)) {
				if (x->refcount > 1) {
					json_t *c = copy_counted(rs, x);
					if (!c)
						return budget_error(rs, NULL);
					json_object_iter_set_new(j, it, c);
				} else {
					int r = unshare(rs, x);
					if (r < 0)
						return r;
				}
			}
			it = json_object_iter_next(j, it);
		}
	} else if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++) {
			json_t *x = json_array_get(j, i);
			if (!is_container(x))
				continue;
			if (x->refcount > 1) {
				json_t *c = copy_counted(rs, x);
				if (!c)
					return budget_error(rs, NULL);
				json_array_set_new(j, i, c);
			} else {
				int r = unshare(rs, x);
				if (r < 0)
					return r;
			}
		}
	}
	return 0;
}

/* ---- origins --------------------------------------------------------------------------------- */

static bool item_defined(const struct rstate *rs, const struct item *it)
{
	if (it->j)
		return true;
	const struct hval *v = it->v;
	if ((v->flags & HV_F_DYNAMIC) && (v->type == HV_SUBST || v->type == HV_CONCAT))
		return rs->slots[v->id].st == ST_DONE && rs->slots[v->id].v;
	return true;
}

static void origins_walk(struct rstate *rs, struct kilt_hocon_origins *o, struct kbuf *path,
			 const struct items *items, const struct hval *fallback, json_t *j)
{
	const struct hval *org = fallback;
	const struct item *src = NULL;
	for (uint32_t i = 0; i < items->n; i++) {
		if (item_defined(rs, &items->v[i])) {
			src = &items->v[i];
			org = src->j ? src->origin : src->v;
			break;
		}
	}
	if (org)
		kilt_hocon_origins_add(o, path->data ? path->data : "", org->file, org->off);
	size_t saved = path->len;
	if (json_is_object(j)) {
		void *it = json_object_iter(j);
		while (it) {
			const char *key = json_object_iter_key(it);
			size_t klen = json_object_iter_key_len(it);
			struct items next;
			items_init(&next);
			struct hseg seg = { key, (uint32_t)klen, kilt_hocon_hash(key, klen) };
			const struct hval *excluded = NULL;
			if (descend(rs, items, &seg, &next, &excluded) < 0)
				next.n = 0;
			kilt_hocon_path_append_key(path, key, klen);
			origins_walk(rs, o, path, &next, org, json_object_iter_value(it));
			path->len = saved;
			if (path->data)
				path->data[saved] = '\0';
			items_done(&next);
			it = json_object_iter_next(j, it);
		}
	} else if (json_is_array(j)) {
		const struct hval *lit = src && !src->j && src->v->type == HV_ARR ? src->v : NULL;
		uint32_t li = 0;
		for (size_t i = 0; i < json_array_size(j); i++) {
			struct items next;
			items_init(&next);
			const struct hval *eorg = org;
			if (lit) {
				while (li < lit->arr.n &&
				       !item_defined(rs, &(struct item){ .v = lit->arr.items[li] }))
					li++;
				if (li < lit->arr.n) {
					items_add(&next, (struct item){ .v = lit->arr.items[li] });
					eorg = lit->arr.items[li];
					li++;
				}
			}
			kbuf_printf(path, "[%zu]", i);
			origins_walk(rs, o, path, &next, eorg, json_array_get(j, i));
			path->len = saved;
			path->data[saved] = '\0';
			items_done(&next);
		}
	}
}

/* ---- entry point ----------------------------------------------------------------------------- */

int kilt_hocon_resolve(const struct kilt_hocon *doc, const json_t *context,
		       struct kilt_hocon_origins **ret_origins, json_t **ret,
		       struct kilt_error *err)
{
	if (!doc || !ret)
		return kilt_error_setf(err, -EINVAL, "kilt_hocon_resolve: no document");
	if (context && !json_is_object(context))
		return kilt_error_setf(err, -EINVAL,
				       "kilt_hocon_resolve: context is not an object");
	struct slot small[64];
	struct rstate rs = {
		.doc = doc,
		.ctx = context,
		.slots = doc->nids <= ARRAY_SIZE(small) ? small
							: xmalloc(doc->nids * sizeof(struct slot)),
		.budget = (4u << 20) + 32 * doc->input_bytes,
		.err = err,
	};
	memset(rs.slots, 0, doc->nids * sizeof(struct slot));
	json_t *root = NULL;
	int r = resolve_val(&rs, doc->root, &root);
	struct kilt_hocon_origins *origins = NULL;
	if (r == 0 && ret_origins) {
		origins = xcalloc(1, sizeof(*origins));
		origins->doc = doc;
		struct kbuf path;
		kbuf_init(&path, SIZE_MAX);
		struct items top;
		items_init(&top);
		items_add(&top, (struct item){ .v = doc->root });
		origins_walk(&rs, origins, &path, &top, doc->root, root);
		items_done(&top);
		kbuf_done(&path);
		kilt_hocon_origins_sort(origins);
	}
	for (uint32_t i = 0; i < doc->nids; i++)
		json_decref(rs.slots[i].v);
	if (rs.slots != small)
		free(rs.slots);
	if (r == 0 && rs.shared)
		r = unshare(&rs, root);
	if (r < 0) {
		json_decref(root);
		kilt_hocon_origins_free(origins);
		return r;
	}
	if (ret_origins)
		*ret_origins = origins;
	*ret = root;
	return 0;
}
