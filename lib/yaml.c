/* SPDX-License-Identifier: Apache-2.0 */
/* YAML <-> JSON for libkilt: libfyaml's event parser drives a builder of jansson values
 * (CloudFormation short forms, bounded anchors, duplicate keys, located errors) and a small
 * block-style emitter writes jansson values back as YAML. Internals: docs/yaml.md. */
#include <inttypes.h>
#include <limits.h>
#include <math.h>

#include <libfyaml.h>

#include "internal.h"
#include "kilt.h"

#define YAML_CORE_TAG "tag:yaml.org,2002:"
/* Largest text kilt_yaml_dump and kilt_yaml_dump_json produce: what kilt_yaml_load reads by
 * default, so that kilt can always read back (and re-apply a recipe to) what it wrote. */
#define DUMP_MAX_BYTES KILT_YAML_MAX_INPUT_BYTES
/* Deepest json_t kilt_yaml_dump accepts (values built by kilt are far shallower). */
#define DUMP_MAX_DEPTH 1024u
/* Implicit keys longer than this are written in explicit `? key` form (YAML caps them at 1024). */
#define IMPLICIT_KEY_MAX 512u

void kilt_yaml_limits_default(struct kilt_yaml_limits *ret)
{
	*ret = (struct kilt_yaml_limits){
		.max_input_bytes = KILT_YAML_MAX_INPUT_BYTES,
		.max_depth = 128,
		.max_alias_nodes = 100000,
		.max_documents = 10000,
		.max_alias_bytes = 8u << 20,
	};
}

/* ---- CloudFormation intrinsics ------------------------------------------------------------- */

struct intrinsic {
	const char *tag; /* short form without `!` */
	const char *key; /* long form */
};

static const struct intrinsic intrinsics[] = {
	{ "Ref", "Ref" },
	{ "Condition", "Condition" },
	{ "And", "Fn::And" },
	{ "Base64", "Fn::Base64" },
	{ "Cidr", "Fn::Cidr" },
	{ "Contains", "Fn::Contains" },
	{ "EachMemberEquals", "Fn::EachMemberEquals" },
	{ "EachMemberIn", "Fn::EachMemberIn" },
	{ "Equals", "Fn::Equals" },
	{ "FindInMap", "Fn::FindInMap" },
	{ "ForEach", "Fn::ForEach" },
	{ "GetAZs", "Fn::GetAZs" },
	{ "GetAtt", "Fn::GetAtt" },
	{ "If", "Fn::If" },
	{ "Implies", "Fn::Implies" },
	{ "ImportValue", "Fn::ImportValue" },
	{ "Join", "Fn::Join" },
	{ "Length", "Fn::Length" },
	{ "Not", "Fn::Not" },
	{ "Or", "Fn::Or" },
	{ "RefAll", "Fn::RefAll" },
	{ "Select", "Fn::Select" },
	{ "Split", "Fn::Split" },
	{ "Sub", "Fn::Sub" },
	{ "ToJsonString", "Fn::ToJsonString" },
	{ "Transform", "Fn::Transform" },
	{ "ValueOf", "Fn::ValueOf" },
	{ "ValueOfAll", "Fn::ValueOfAll" },
};

static const struct intrinsic *intrinsic_by_tag(const char *tag, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(intrinsics); i++)
		if (strlen(intrinsics[i].tag) == len && memcmp(intrinsics[i].tag, tag, len) == 0)
			return &intrinsics[i];
	return NULL;
}

static const struct intrinsic *intrinsic_by_key(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(intrinsics); i++)
		if (strcmp(intrinsics[i].key, key) == 0)
			return &intrinsics[i];
	return NULL;
}

bool kilt_yaml_cfn_intrinsic(const char *name, const char **ret_tag)
{
	const struct intrinsic *in = name ? intrinsic_by_key(name) : NULL;
	if (in && ret_tag)
		*ret_tag = in->tag;
	return in != NULL;
}

/* ---- scalar resolution --------------------------------------------------------------------- */

static bool word_in(const char *s, size_t len, const char *const *words)
{
	if (len == 0) /* no word is empty */
		return false;
	for (; *words; words++)
		if ((*words)[0] == s[0] && strlen(*words) == len && memcmp(*words, s, len) == 0)
			return true;
	return false;
}

static const char *const null_words[] = { "~", "null", "Null", "NULL", NULL };
static const char *const true_words12[] = { "true", "True", "TRUE", NULL };
static const char *const false_words12[] = { "false", "False", "FALSE", NULL };
static const char *const true_words11[] = { "true", "True", "TRUE", "yes", "Yes",
					    "YES",  "on",   "On",   "ON",  NULL };
static const char *const false_words11[] = { "false", "False", "FALSE", "no",  "No",
					     "NO",    "off",   "Off",	"OFF", NULL };

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/* Parses digits of `base` (with '_' separators when `underscores`) into a signed 64-bit value.
 * Returns 1 for a number, 0 for "not an integer", -ERANGE when it does not fit. */
static int parse_digits(const char *s, size_t len, int base, bool neg, bool underscores,
			json_int_t *ret)
{
	unsigned long long v = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	size_t ndigits = 0;
	bool range = false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '_' && underscores)
			continue;
		int d = digit_value(s[i]);
		if (d >= base)
			return 0;
		ndigits++;
		if (v > (lim - (unsigned)d) / (unsigned)base)
			range = true;
		else
			v = v * (unsigned)base + (unsigned)d;
	}
	if (ndigits == 0)
		return 0;
	if (range)
		return -ERANGE;
	*ret = neg ? (json_int_t)(0 - v) : (json_int_t)v;
	return 1;
}

/* YAML 1.1 int (decimal, 0-octal, 0x, 0b, '_' separators) or YAML 1.2 core int. */
static int parse_int(const char *s, size_t len, bool v12, json_int_t *ret)
{
	size_t i = 0;
	bool neg = false;
	if (len && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i++;
	}
	if (i == len)
		return 0;
	const char *p = s + i;
	size_t n = len - i;
	if (v12) {
		if (i == 0 && n > 2 && p[0] == '0' && p[1] == 'o')
			return parse_digits(p + 2, n - 2, 8, false, false, ret);
		if (i == 0 && n > 2 && p[0] == '0' && p[1] == 'x')
			return parse_digits(p + 2, n - 2, 16, false, false, ret);
		return parse_digits(p, n, 10, neg, false, ret);
	}
	if (n > 2 && p[0] == '0' && p[1] == 'x')
		return parse_digits(p + 2, n - 2, 16, neg, true, ret);
	if (n > 2 && p[0] == '0' && p[1] == 'b')
		return parse_digits(p + 2, n - 2, 2, neg, true, ret);
	if (n > 1 && p[0] == '0')
		return parse_digits(p + 1, n - 1, 8, neg, true, ret);
	if (p[0] == '_')
		return 0;
	return parse_digits(p, n, 10, neg, true, ret);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Matches the float syntax of YAML 1.1 (a '.' is required, the exponent needs a sign, '_'
 * separators) or of the YAML 1.2 core schema, and converts finite values. */
static bool parse_float(const char *s, size_t len, bool v12, double *ret)
{
	char buf[80];
	size_t n = 0, i = 0, mant_digits = 0;
	bool dot = false;
	if (len >= sizeof(buf))
		return false;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		buf[n++] = s[i++];
	for (; i < len; i++) {
		if (is_digit(s[i])) {
			mant_digits++;
			buf[n++] = s[i];
		} else if (s[i] == '_' && !v12 && mant_digits > 0) {
			continue;
		} else if (s[i] == '.' && !dot) {
			dot = true;
			buf[n++] = '.';
		} else {
			break;
		}
	}
	if (mant_digits == 0 || (!v12 && !dot))
		return false;
	if (i < len) {
		if (s[i] != 'e' && s[i] != 'E')
			return false;
		buf[n++] = s[i++];
		if (i < len && (s[i] == '-' || s[i] == '+'))
			buf[n++] = s[i++];
		else if (!v12)
			return false;
		size_t exp_digits = 0;
		for (; i < len && is_digit(s[i]); i++, exp_digits++)
			buf[n++] = s[i];
		if (exp_digits == 0 || i < len)
			return false;
	}
	buf[n] = '\0';
	errno = 0;
	char *end = NULL;
	double d = strtod(buf, &end);
	/* beyond a double (overflow, or an underflow to 0) the scalar stays a string, as written */
	if (end != buf + n || !isfinite(d) || (errno == ERANGE && d == 0))
		return false;
	*ret = d;
	return true;
}

/* A number kept as written for a plain scalar that is a number in JSON's syntax, and an integer
 * or float by the schema's rules, that jansson cannot hold exactly (beyond 64 bits, more digits
 * than a double keeps); NULL otherwise. YAML 1.1 floats have a '.' and a signed exponent. */
static json_t *keep_number(const char *s, size_t len, bool v12)
{
	const char *e = memchr(s, 'e', len);
	if (!e)
		e = memchr(s, 'E', len);
	bool real = e || memchr(s, '.', len);
	if (real && !v12 &&
	    (!memchr(s, '.', len) || (e && e + 1 < s + len && e[1] != '-' && e[1] != '+')))
		return NULL;
	if (!real || len > 256)
		return kilt_json_number_keep(s, len);
	/* a float in YAML's spelling that JSON lacks (`.5`, `1.`, `+1.5`, `007.5`, `1_0.5`) is
	 * kept in JSON's (`0.5`, `1.0`, `1.5`, `7.5`, `10.5`): the same digits, the same value */
	char buf[272];
	size_t n = 0, i = 0;
	if (s[i] == '+' || s[i] == '-')
		if (s[i++] == '-')
			buf[n++] = '-';
	size_t int_start = n;
	for (; i < len && (is_digit(s[i]) || (s[i] == '_' && !v12)); i++) {
		if (s[i] == '_' || (s[i] == '0' && n == int_start))
			continue; /* separators and leading zeros */
		buf[n++] = s[i];
	}
	if (n == int_start)
		buf[n++] = '0';
	if (i < len && s[i] == '.') {
		buf[n++] = s[i++];
		size_t frac_start = n;
		for (; i < len && (is_digit(s[i]) || (s[i] == '_' && !v12)); i++)
			if (s[i] != '_')
				buf[n++] = s[i];
		if (n == frac_start)
			buf[n++] = '0';
	}
	for (; i < len; i++)
		buf[n++] = s[i]; /* the exponent, as it is (JSON's syntax is checked next) */
	return kilt_json_number_keep(buf, n);
}

/* The JSON value of a plain scalar. With `keep` (a CloudFormation template: one document), a number jansson
 * cannot hold exactly is kept as written (keep_number), as kilt_json_loadb keeps it in a JSON
 * template. */
static json_t *resolve_plain(const char *s, size_t len, bool v12, bool keep)
{
	if (len == 0)
		return json_null();
	if (len <= 5) { /* the longest of these words */
		if (word_in(s, len, null_words))
			return json_null();
		if (word_in(s, len, v12 ? true_words12 : true_words11))
			return json_true();
		if (word_in(s, len, v12 ? false_words12 : false_words11))
			return json_false();
	}
	json_t *kept = keep ? keep_number(s, len, v12) : NULL;
	if (kept)
		return kept;
	if (len < 80 && (is_digit(s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.')) {
		json_int_t iv;
		int r = parse_int(s, len, v12, &iv);
		if (r > 0)
			return json_integer(iv);
		double d;
		if (r == 0 && parse_float(s, len, v12, &d))
			return json_real(d);
	}
	return NULL; /* a string */
}

/* ---- loader --------------------------------------------------------------------------------- */

struct anchor {
	char *name; /* owned */
	json_t *value; /* owned reference */
	size_t nodes; /* nodes in the value */
	unsigned height; /* nesting levels in the value */
	size_t bytes; /* string and key text in the value; SIZE_MAX until an alias needs it */
};

struct frame {
	json_t *node; /* owned: the collection being built */
	const struct intrinsic *wrap; /* short form to wrap the node into, or NULL */
	char *anchor; /* owned, or NULL */
	/* the key waiting for its value, or NULL: borrowed from the input or an anchor's value
	 * (both outlive the frame), or key_owned */
	const char *key;
	size_t key_len;
	char *key_owned; /* owned, or NULL */
	bool key_checked; /* key is valid UTF-8 (taken from the checked input or a json string) */
	bool merge; /* the waiting key is a merge key `<<` */
	json_t *merged; /* owned: keys that came from merges and may be overridden, or NULL */
	unsigned key_line, key_column;
	size_t nodes;
	unsigned height;
	struct fy_mark start;
	int column; /* 0-based column of the collection's event (`-` or first key; -1 unknown) */
};

struct loader {
	const char *name; /* borrowed */
	const char *buf; /* borrowed: the input */
	size_t len;
	unsigned flags;
	struct kilt_yaml_limits lim;
	struct frame *stack; /* owned */
	size_t depth, stack_cap;
	struct anchor *anchors; /* owned */
	size_t n_anchors, anchors_cap;
	size_t alias_nodes;
	size_t alias_bytes; /* text copied by aliases in the current document */
	json_t *docs; /* owned: documents finished so far */
	json_t *root; /* owned: the current document's value */
	size_t n_documents;
	char diag_msg[256]; /* first diagnostic printed (not collected) by libfyaml */
	struct fy_mark root_mark; /* where the current document's root starts */
	bool tagged_empty; /* the last scalar was an empty plain scalar with a tag (`!Base64 !Sub`) */
	struct kilt_error *err; /* borrowed */
	struct fy_token_iter *iter; /* owned: reads scalar text (see scalar_text) */
};

static unsigned mark_line(const struct fy_mark *m)
{
	return m && m->line >= 0 ? (unsigned)m->line + 1 : 0;
}

static unsigned mark_column(const struct fy_mark *m)
{
	return m && m->column >= 0 ? (unsigned)m->column + 1 : 0;
}

/* Where a node starts: its anchor or tag if it has one, else its content. */
static const struct fy_mark *node_mark(struct fy_event *e, struct fy_token *anchor,
				       struct fy_token *tag)
{
	const struct fy_mark *m = fy_event_start_mark(e);
	const struct fy_mark *a = anchor ? fy_token_start_mark(anchor) : NULL;
	const struct fy_mark *t = tag ? fy_token_start_mark(tag) : NULL;
	if (t && (!m || t->input_pos < m->input_pos))
		m = t;
	if (a && (!m || a->input_pos < m->input_pos))
		m = a;
	return m;
}

static int fail(struct loader *l, int code, const struct fy_mark *m, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct loader *l, int code, const struct fy_mark *m, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kilt_error_set(l->err, code, l->name, mark_line(m), mark_column(m), "%s", msg);
}

static void frame_done(struct frame *f)
{
	json_decref(f->node);
	json_decref(f->merged);
	free(f->anchor);
	free(f->key_owned);
}

static void loader_clear_anchors(struct loader *l)
{
	for (size_t i = 0; i < l->n_anchors; i++) {
		free(l->anchors[i].name);
		json_decref(l->anchors[i].value);
	}
	l->n_anchors = 0;
}

static void loader_done(struct loader *l)
{
	for (size_t i = 0; i < l->depth; i++)
		frame_done(&l->stack[i]);
	free(l->stack);
	loader_clear_anchors(l);
	free(l->anchors);
	json_decref(l->docs);
	json_decref(l->root);
}

static struct anchor *find_anchor(const struct loader *l, const char *name, size_t len)
{
	for (size_t i = l->n_anchors; i-- > 0;)
		if (strlen(l->anchors[i].name) == len && memcmp(l->anchors[i].name, name, len) == 0)
			return &l->anchors[i];
	return NULL;
}

static void add_anchor(struct loader *l, char *name, json_t *value, size_t nodes, unsigned height)
{
	if (l->n_anchors == l->anchors_cap) {
		l->anchors_cap = l->anchors_cap ? 2 * l->anchors_cap : 16;
		l->anchors = xrealloc(l->anchors, l->anchors_cap * sizeof(*l->anchors));
	}
	l->anchors[l->n_anchors++] =
		(struct anchor){ name, json_incref(value), nodes, height, SIZE_MAX };
}

static char *token_dup(struct fy_token *t)
{
	size_t len = 0;
	const char *s = t ? fy_token_get_text(t, &len) : NULL;
	return s ? xstrndup(s, len) : NULL;
}

/* Takes a finished value (owned) into the collection on top of the stack, or makes it the
 * document's root. `anchor` (owned, may be NULL) names it for later aliases. */
static int add_value(struct loader *l, json_t *v, size_t nodes, unsigned height, char *anchor,
		     const struct fy_mark *m)
{
	if (!v) {
		free(anchor);
		return fail(l, -EINVAL, m, "invalid value (a string that is not valid UTF-8?)");
	}
	if (anchor)
		add_anchor(l, anchor, v, nodes, height);
	if (l->depth == 0) {
		if (m)
			l->root_mark = *m;
		json_decref(l->root);
		l->root = v;
		return 0;
	}
	struct frame *f = &l->stack[l->depth - 1];
	f->nodes += nodes;
	if (height + 1 > f->height)
		f->height = height + 1;
	if (json_is_array(f->node)) {
		json_array_append_new(f->node, v);
		return 0;
	}
	const char *key = f->key;
	size_t key_len = f->key_len;
	_cleanup_free_ char *key_owned = steal_pointer(&f->key_owned);
	f->key = NULL;
	if (f->merge) {
		f->merge = false;
		json_t *sources = v;
		if (json_is_object(v)) {
			sources = json_pack("[O]", v);
			json_decref(v);
		} else if (!json_is_array(v)) {
			json_decref(v);
			return kilt_error_set(l->err, -EINVAL, l->name, f->key_line, f->key_column,
					      "merge key <<: expected a mapping or a sequence of "
					      "mappings");
		}
		if (!f->merged)
			f->merged = json_object();
		size_t i;
		json_t *src;
		json_array_foreach (sources, i, src) {
			if (!json_is_object(src)) {
				json_decref(sources);
				return kilt_error_set(
					l->err, -EINVAL, l->name, f->key_line, f->key_column,
					"merge key <<: element %zu is not a mapping", i);
			}
			const char *k;
			json_t *val;
			json_object_foreach (src, k, val) {
				if (json_object_get(f->node, k))
					continue;
				json_object_set(f->node, k, val);
				json_object_set_new(f->merged, k, json_true());
			}
		}
		json_decref(sources);
		return 0;
	}
	if (f->merged)
		json_object_deln(f->merged, key, key_len);
	if ((f->key_checked ? json_object_setn_new_nocheck(f->node, key, key_len, v)
			    : json_object_setn_new(f->node, key, key_len, v)) < 0)
		return kilt_error_set(l->err, -EINVAL, l->name, f->key_line, f->key_column,
				      "mapping key is not valid UTF-8");
	return 0;
}

/* A scalar in key position: `s` is borrowed from the input or an anchor's value, or is *owned
 * (taken). `checked`: `s` is known to be valid UTF-8. */
static int add_key(struct loader *l, const char *s, size_t len, char **owned, bool checked,
		   bool plain, const struct fy_mark *m)
{
	struct frame *f = &l->stack[l->depth - 1];
	if (memchr(s, '\0', len))
		return fail(l, -EINVAL, m, "mapping key contains a NUL character");
	if (plain && len == 2 && memcmp(s, "<<", 2) == 0) {
		if (l->flags & KILT_YAML_CFN_TAGS)
			return fail(
				l, -EINVAL, m,
				"merge keys (<<) are not supported in CloudFormation templates");
		f->merge = true;
	} else if (json_object_getn(f->node, s, len) &&
		   !(f->merged && json_object_getn(f->merged, s, len))) {
		return fail(l, -EINVAL, m, "duplicate key \"%.*s\"", (int)(len > 200 ? 200 : len),
			    s);
	}
	if (f->merge) {
		/* the value says what to merge; the key itself is never stored */
		f->key = NULL;
	} else if (owned && *owned == s) {
		f->key = f->key_owned = steal_pointer(owned);
	} else {
		f->key = s;
	}
	f->key_len = len;
	f->key_checked = checked;
	f->key_line = mark_line(m);
	f->key_column = mark_column(m);
	return 0;
}

static bool expecting_key(const struct loader *l)
{
	if (l->depth == 0)
		return false;
	const struct frame *f = &l->stack[l->depth - 1];
	return json_is_object(f->node) && !f->key && !f->merge;
}

enum tag_kind {
	TAG_NONE, /* no tag, or the non-specific `!` */
	TAG_STR,
	TAG_INT,
	TAG_FLOAT,
	TAG_BOOL,
	TAG_NULL,
	TAG_MAP,
	TAG_SEQ,
	TAG_INTRINSIC,
};

/* Classifies a node's tag; unknown tags are errors that name the tag and where it stands. */
static int classify_tag(struct loader *l, struct fy_token *tag, const struct fy_mark *m,
			enum tag_kind *ret, const struct intrinsic **ret_in)
{
	*ret = TAG_NONE;
	*ret_in = NULL;
	if (!tag)
		return 0;
	size_t len = 0;
	const char *t = fy_token_get_text(tag, &len);
	if (!t)
		return fail(l, -EINVAL, m, "unreadable tag");
	const size_t core = strlen(YAML_CORE_TAG);
	if (len == 1 && t[0] == '!')
		return 0;
	if (len > core && memcmp(t, YAML_CORE_TAG, core) == 0) {
		static const struct {
			const char *name;
			enum tag_kind kind;
		} cores[] = { { "str", TAG_STR },   { "int", TAG_INT },	  { "float", TAG_FLOAT },
			      { "bool", TAG_BOOL }, { "null", TAG_NULL }, { "map", TAG_MAP },
			      { "seq", TAG_SEQ } };
		for (size_t i = 0; i < ARRAY_SIZE(cores); i++)
			if (strlen(cores[i].name) == len - core &&
			    memcmp(cores[i].name, t + core, len - core) == 0) {
				*ret = cores[i].kind;
				return 0;
			}
		return fail(l, -EINVAL, m, "unsupported tag !!%.*s", (int)(len - core), t + core);
	}
	if (t[0] == '!' && (l->flags & KILT_YAML_CFN_TAGS)) {
		const struct intrinsic *in = intrinsic_by_tag(t + 1, len - 1);
		if (in) {
			*ret = TAG_INTRINSIC;
			*ret_in = in;
			return 0;
		}
		return fail(l, -EINVAL, m,
			    "unknown tag %.*s (CloudFormation short forms are !Ref, !Condition, "
			    "!GetAtt, !Sub, !Join, !If, !Select, !Split, !FindInMap, !GetAZs, "
			    "!ImportValue, !Base64, !Cidr, !Equals, !And, !Or, !Not, !Transform, "
			    "!Length, !ToJsonString, !ForEach...)",
			    (int)(len > 100 ? 100 : len), t);
	}
	return fail(l, -EINVAL, m, "unknown tag %.*s%s", (int)(len > 100 ? 100 : len), t,
		    (l->flags & KILT_YAML_CFN_TAGS)
			    ? ""
			    : " (tags are only allowed in CloudFormation templates)");
}

static json_t *wrap_intrinsic(const struct intrinsic *in, json_t *v)
{
	json_t *o = json_object();
	json_object_set_new(o, in->key, v);
	return o;
}

/* The text of a scalar. libfyaml 0.7.12 misreads consecutive escaped quotes in single-quoted
 * scalars ('a'''' b' gives "a''' ") and leaks a buffer doing so, so single-line single-quoted
 * scalars are decoded here from the input ('' is their only escape); a multi-line one with such
 * a run is refused. Most scalars are one line without escapes: their text is the input between
 * the token's marks (inside the quotes), borrowed as it is. `*ret_owned` receives a buffer to
 * free, or NULL; `*ret_checked` is true when the text comes from the input, which load_yaml
 * has checked (valid UTF-8, no control characters but tab and line breaks). */
static int scalar_text(struct loader *l, struct fy_token *tok, const struct fy_mark *m,
		       const char **ret, size_t *ret_len, char **ret_owned, bool *ret_checked)
{
	*ret_owned = NULL;
	*ret_checked = true;
	enum fy_scalar_style style = fy_token_scalar_style(tok);
	const struct fy_mark *a = fy_token_start_mark(tok), *b = fy_token_end_mark(tok);
	bool span = a && b && a->input_pos <= b->input_pos && b->input_pos <= l->len;
	if (span &&
	    (style == FYSS_PLAIN || style == FYSS_DOUBLE_QUOTED || style == FYSS_SINGLE_QUOTED)) {
		/* a line break folds; a backslash escapes in double quotes, a quote in single */
		const char *raw = l->buf + a->input_pos;
		size_t n = b->input_pos - a->input_pos;
		char special = style == FYSS_DOUBLE_QUOTED   ? '\\'
			       : style == FYSS_SINGLE_QUOTED ? '\''
							     : '\n';
		size_t i = 0;
		while (i < n && raw[i] != '\n' && raw[i] != special)
			i++;
		if (i == n) {
			*ret = raw;
			*ret_len = n;
			return 0;
		}
	}
	if (style == FYSS_SINGLE_QUOTED && span) {
		const char *raw = l->buf + a->input_pos;
		size_t n = b->input_pos - a->input_pos;
		bool multiline = memchr(raw, '\n', n) || memchr(raw, '\r', n);
		if (!multiline) {
			char *out = xmalloc(n + 1);
			size_t k = 0;
			for (size_t i = 0; i < n; i++) {
				out[k++] = raw[i];
				if (raw[i] == '\'' && i + 1 < n && raw[i + 1] == '\'')
					i++;
			}
			out[k] = '\0';
			*ret = *ret_owned = out;
			*ret_len = k;
			return 0;
		}
		if (memmem(raw, n, "''''", 4))
			return fail(l, -EINVAL, m,
				    "consecutive escaped quotes ('''') in a multi-line "
				    "single-quoted scalar are not supported; use double "
				    "quotes");
	}
	/* libfyaml 0.7.12's fy_token_get_text leaks its text buffer and returns a wrong text for
	 * some block scalars (a literal block holding lines of blanks: 4 bytes for 12) and runs of
	 * CR line breaks; its chunk iterator gives the right text and leaks nothing. */
	*ret_checked = false;
	struct kbuf tb;
	kbuf_init(&tb, 2 * l->len + 16); /* escapes such as \L grow 2 bytes into 3 */
	fy_token_iter_start(tok, l->iter);
	const struct fy_iter_chunk *c = NULL;
	int ierr = 0;
	int r = 0;
	while (r == 0 && (c = fy_token_iter_chunk_next(l->iter, c, &ierr)))
		r = kbuf_add(&tb, c->str, c->len);
	fy_token_iter_finish(l->iter);
	if (r < 0 || ierr < 0) {
		kbuf_done(&tb);
		return fail(l, -EINVAL, m, "unreadable scalar");
	}
	*ret_len = tb.len;
	*ret = *ret_owned = kbuf_steal(&tb);
	return 0;
}

/* libfyaml 0.7.12 accepts a block scalar whose lines are not indented more than its parent
 * (`- - |` then `  x`) and then hands out uninitialised text for it; such input is not YAML, so
 * it is refused here before the text is read. */
static int check_block_indent(struct loader *l, struct fy_token *tok, const struct fy_mark *m)
{
	enum fy_scalar_style style = fy_token_scalar_style(tok);
	if ((style != FYSS_LITERAL && style != FYSS_FOLDED) || l->depth == 0)
		return 0;
	const struct frame *f = &l->stack[l->depth - 1];
	long parent = f->column;
	const struct fy_mark *a = fy_token_start_mark(tok), *b = fy_token_end_mark(tok);
	if (!a || !b || a->input_pos > b->input_pos || b->input_pos > l->len || parent < 0)
		return 0;
	const char *p = l->buf + a->input_pos, *end = l->buf + b->input_pos;
	while (p < end) {
		long indent = 0;
		while (p < end && *p == ' ') {
			p++;
			indent++;
		}
		if (p < end && *p != '\n' && *p != '\r') {
			if (indent <= parent)
				return fail(l, -EINVAL, m,
					    "block scalar lines must be indented more than their "
					    "parent (column %ld)",
					    parent + 1);
			return 0;
		}
		while (p < end && *p != '\n')
			p++;
		if (p < end)
			p++;
	}
	return 0;
}

/* A string value; `checked`: `s` is known to be valid UTF-8 (jansson checks it otherwise and
 * gives NULL when it is not). */
static json_t *string_value(const char *s, size_t len, bool checked)
{
	return checked ? json_stringn_nocheck(s, len) : json_stringn(s, len);
}

static int on_scalar(struct loader *l, struct fy_event *e)
{
	struct fy_token *tok = e->scalar.value;
	const struct fy_mark *m = node_mark(e, e->scalar.anchor, e->scalar.tag);
	size_t len = 0;
	const char *s = NULL;
	_cleanup_free_ char *owned = NULL;
	bool checked = false;
	int r = check_block_indent(l, tok, m);
	if (r < 0)
		return r;
	r = scalar_text(l, tok, m, &s, &len, &owned, &checked);
	if (r < 0)
		return r;

	bool plain = fy_token_scalar_style(tok) == FYSS_PLAIN;
	enum tag_kind kind;
	const struct intrinsic *in;
	r = classify_tag(l, e->scalar.tag, m, &kind, &in);
	if (r < 0)
		return r;
	l->tagged_empty = e->scalar.tag && plain && len == 0;
	if (expecting_key(l)) {
		if (kind != TAG_NONE && kind != TAG_STR)
			return fail(l, -EINVAL, m, "mapping keys cannot carry tags here");
		if (e->scalar.anchor) {
			json_t *ks = string_value(s, len, checked);
			add_anchor(l, token_dup(e->scalar.anchor), ks, 1, 0);
			json_decref(ks);
		}
		return add_key(l, s, len, &owned, checked, plain && !e->scalar.tag, m);
	}
	bool v12 = l->flags & KILT_YAML_SCHEMA_1_2;
	/* a CloudFormation template (one document) keeps numbers jansson cannot hold */
	bool keep = (l->flags & KILT_YAML_CFN_TAGS) && !(l->flags & KILT_YAML_MULTI);
	json_t *v = NULL;
	size_t nodes = 1;
	switch (kind) {
	case TAG_NONE:
		if (plain && !e->scalar.tag)
			v = resolve_plain(s, len, v12, keep);
		break;
	case TAG_STR:
		break;
	case TAG_INT:
	case TAG_FLOAT: {
		json_int_t iv;
		double d;
		if (kind == TAG_FLOAT && keep && len < 250) {
			/* a float with more digits than a double keeps is kept as written, as an
			 * untagged one is (`!!float 12345678901234567` is 12345678901234567.0) */
			char t[256];
			memcpy(t, s, len);
			size_t n = len;
			if (!memchr(s, '.', len) && !memchr(s, 'e', len) && !memchr(s, 'E', len)) {
				t[n++] = '.';
				t[n++] = '0';
			}
			v = keep_number(t, n, true);
			if (v)
				break;
		}
		if (parse_int(s, len, v12, &iv) > 0 || parse_int(s, len, !v12, &iv) > 0)
			v = kind == TAG_INT ? json_integer(iv) : json_real((double)iv);
		else if (kind == TAG_FLOAT &&
			 (parse_float(s, len, v12, &d) || parse_float(s, len, !v12, &d)))
			v = json_real(d);
		else
			return fail(l, -EINVAL, m, "!!%s: \"%.*s\" is not a %s",
				    kind == TAG_INT ? "int" : "float", (int)(len > 60 ? 60 : len),
				    s, kind == TAG_INT ? "64-bit integer" : "finite number");
		break;
	}
	case TAG_BOOL:
		if (word_in(s, len, true_words11))
			v = json_true();
		else if (word_in(s, len, false_words11))
			v = json_false();
		else
			return fail(l, -EINVAL, m, "!!bool: \"%.*s\" is not a boolean",
				    (int)(len > 60 ? 60 : len), s);
		break;
	case TAG_NULL:
		v = json_null();
		break;
	case TAG_MAP:
	case TAG_SEQ:
		return fail(l, -EINVAL, m, "!!%s on a scalar", kind == TAG_MAP ? "map" : "seq");
	case TAG_INTRINSIC:
		if (strcmp(in->tag, "GetAtt") == 0) {
			const char *dot = memchr(s, '.', len);
			if (!dot)
				return fail(l, -EINVAL, m,
					    "!GetAtt \"%.*s\": expected LogicalName.AttributeName",
					    (int)(len > 100 ? 100 : len), s);
			json_t *pair = json_array();
			json_array_append_new(pair, string_value(s, (size_t)(dot - s), checked));
			json_array_append_new(
				pair, string_value(dot + 1, len - (size_t)(dot - s) - 1, checked));
			if (json_array_size(pair) != 2) {
				json_decref(pair);
				return fail(l, -EINVAL, m, "!GetAtt: not valid UTF-8");
			}
			v = wrap_intrinsic(in, pair);
			nodes = 4;
		} else {
			json_t *str = string_value(s, len, checked);
			if (!str)
				return fail(l, -EINVAL, m, "string is not valid UTF-8");
			v = wrap_intrinsic(in, str);
			nodes = 2;
		}
		break;
	}
	if (!v)
		v = string_value(s, len, checked);
	return add_value(l, v, nodes, kind == TAG_INTRINSIC ? 1 : 0, token_dup(e->scalar.anchor),
			 m);
}

/* Bytes of string and key text in `v`, counted up to `cap` (then `cap` + 1). The depth is
 * bounded by max_depth: values are built by the loader. */
static size_t text_bytes(const json_t *v, size_t cap)
{
	size_t n = 0;
	if (json_is_string(v))
		return json_string_length(v);
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v) && n <= cap; i++)
			n += text_bytes(json_array_get(v, i), cap - n);
	} else if (json_is_object(v)) {
		for (void *it = json_object_iter((json_t *)(uintptr_t)v); it && n <= cap;
		     it = json_object_iter_next((json_t *)(uintptr_t)v, it))
			n += json_object_iter_key_len(it) +
			     text_bytes(json_object_iter_value(it), cap - n);
	}
	return n > cap ? (cap == SIZE_MAX ? cap : cap + 1) : n;
}

static int on_alias(struct loader *l, struct fy_event *e)
{
	/* the event starts at the name; the node starts at the '*' before it */
	struct fy_mark star = { 0 };
	const struct fy_mark *m = fy_event_start_mark(e);
	if (m) {
		star = *m;
		if (star.column > 0)
			star.column--;
		m = &star;
	}
	size_t len = 0;
	const char *name = fy_token_get_text(e->alias.anchor, &len);
	if (!name)
		return fail(l, -EINVAL, m, "unreadable alias");
	struct anchor *a = find_anchor(l, name, len);
	if (!a) {
		for (size_t i = 0; i < l->depth; i++) {
			const char *fa = l->stack[i].anchor;
			if (fa && strlen(fa) == len && memcmp(fa, name, len) == 0)
				return fail(l, -EINVAL, m,
					    "alias *%.*s refers to a node that contains it",
					    (int)(len > 100 ? 100 : len), name);
		}
		return fail(l, -EINVAL, m, "undefined alias *%.*s", (int)(len > 100 ? 100 : len),
			    name);
	}
	l->tagged_empty = false;
	if (a->bytes == SIZE_MAX)
		a->bytes = text_bytes(a->value, l->lim.max_alias_bytes);
	if (a->bytes > l->lim.max_alias_bytes - l->alias_bytes)
		return fail(l, -E2BIG, m,
			    "alias *%.*s: expanding aliases would copy more than %zu bytes of text "
			    "(limit on alias expansion; this one copies %zu)",
			    (int)(len > 100 ? 100 : len), name, l->lim.max_alias_bytes, a->bytes);
	l->alias_bytes += a->bytes;
	if (expecting_key(l)) {
		if (!json_is_string(a->value))
			return fail(l, -EINVAL, m, "alias *%.*s used as a key is not a string",
				    (int)(len > 100 ? 100 : len), name);
		return add_key(l, json_string_value(a->value), json_string_length(a->value), NULL,
			       true, false, m);
	}
	if (a->nodes > l->lim.max_alias_nodes - l->alias_nodes)
		return fail(l, -E2BIG, m,
			    "alias *%.*s: expanding aliases would create more than %zu nodes "
			    "(limit on alias expansion)",
			    (int)(len > 100 ? 100 : len), name, l->lim.max_alias_nodes);
	if (l->depth + a->height > l->lim.max_depth)
		return fail(l, -E2BIG, m, "alias *%.*s: nesting deeper than %u levels",
			    (int)(len > 100 ? 100 : len), name, l->lim.max_depth);
	l->alias_nodes += a->nodes;
	return add_value(l, json_deep_copy(a->value), a->nodes, a->height, NULL, m);
}

static int on_collection_start(struct loader *l, struct fy_event *e, bool map)
{
	struct fy_token *tag = map ? e->mapping_start.tag : e->sequence_start.tag;
	struct fy_token *anchor = map ? e->mapping_start.anchor : e->sequence_start.anchor;
	const struct fy_mark *m = node_mark(e, anchor, tag);
	l->tagged_empty = false;
	if (expecting_key(l))
		return fail(l, -EINVAL, m,
			    "a %s cannot be a mapping key (only scalar keys are supported)",
			    map ? "mapping" : "sequence");
	enum tag_kind kind;
	const struct intrinsic *in;
	int r = classify_tag(l, tag, m, &kind, &in);
	if (r < 0)
		return r;
	if (kind != TAG_NONE && kind != TAG_INTRINSIC && kind != (map ? TAG_MAP : TAG_SEQ))
		return fail(l, -EINVAL, m, "tag does not apply to a %s",
			    map ? "mapping" : "sequence");
	if (l->depth >= l->lim.max_depth)
		return fail(l, -E2BIG, m, "nesting deeper than %u levels", l->lim.max_depth);
	if (l->depth == l->stack_cap) {
		l->stack_cap = l->stack_cap ? 2 * l->stack_cap : 16;
		l->stack = xrealloc(l->stack, l->stack_cap * sizeof(*l->stack));
	}
	l->stack[l->depth++] = (struct frame){
		.node = map ? json_object() : json_array(),
		.wrap = in,
		.anchor = token_dup(anchor),
		.nodes = 1,
		.start = m ? *m : (struct fy_mark){ 0 },
		.column = fy_event_start_mark(e) ? fy_event_start_mark(e)->column : -1,
	};
	return 0;
}

static int on_collection_end(struct loader *l)
{
	struct frame f = l->stack[--l->depth];
	json_t *v = steal_pointer(&f.node);
	size_t nodes = f.nodes;
	unsigned height = f.height;
	if (f.wrap) {
		v = wrap_intrinsic(f.wrap, v);
		nodes++;
		height++;
	}
	char *anchor = steal_pointer(&f.anchor);
	frame_done(&f);
	l->tagged_empty = false;
	return add_value(l, v, nodes, height, anchor, &f.start);
}

static int on_document_end(struct loader *l)
{
	loader_clear_anchors(l);
	l->alias_nodes = 0;
	l->alias_bytes = 0;
	if (!(l->flags & KILT_YAML_MULTI))
		return 0;
	json_t *doc = steal_pointer(&l->root);
	if (!doc || json_is_null(doc)) {
		json_decref(doc);
		return 0;
	}
	if (json_array_size(l->docs) >= l->lim.max_documents) {
		json_decref(doc);
		return fail(l, -E2BIG, &l->root_mark, "more than %zu documents",
			    l->lim.max_documents);
	}
	json_array_append_new(l->docs, doc);
	return 0;
}

/* libfyaml reports some errors (an unsupported %YAML version...) only as text: keep the first
 * one for the error message instead of letting it reach stderr. */
static void capture_diag(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	struct loader *l = user;
	(void)diag;
	if (l->diag_msg[0] || !buf)
		return;
	if (len > 7 && memcmp(buf, "[ERR]: ", 7) == 0) {
		buf += 7;
		len -= 7;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	if (len >= sizeof(l->diag_msg))
		len = sizeof(l->diag_msg) - 1;
	memcpy(l->diag_msg, buf, len);
	l->diag_msg[len] = '\0';
}

/* Turns the parser's first collected diagnostic into err. */
static int parser_error(struct loader *l, struct fy_diag *diag)
{
	void *it = NULL;
	struct fy_diag_error *de = fy_diag_errors_iterate(diag, &it);
	const char *hint =
		l->tagged_empty
			? " (two tags on one node, like `!Base64 !Sub`, are not valid YAML: "
			  "write the inner function in long form, e.g. `!Base64 {\"Fn::Sub\": "
			  "...}`)"
			: "";
	if (!de)
		return kilt_error_set(l->err, -EINVAL, l->name, 0, 0, "%s%s",
				      l->diag_msg[0] ? l->diag_msg : "invalid YAML", hint);
	return kilt_error_set(l->err, -EINVAL, l->name, de->line > 0 ? (unsigned)de->line : 0,
			      de->column > 0 ? (unsigned)de->column : 0, "%s%s",
			      de->msg ? de->msg : "invalid YAML", hint);
}

static int parse_events(struct loader *l, struct fy_parser *p, struct fy_diag *diag)
{
	for (;;) {
		struct fy_event *e = fy_parser_parse(p);
		if (!e)
			return fy_parser_get_stream_error(p) ? parser_error(l, diag) : 0;
		int r = 0;
		switch (e->type) {
		case FYET_DOCUMENT_START:
			if (++l->n_documents > 1 && !(l->flags & KILT_YAML_MULTI))
				r = fail(l, -EINVAL, fy_event_start_mark(e),
					 "more than one YAML document (this input takes one)");
			json_decref(l->root);
			l->root = NULL;
			break;
		case FYET_DOCUMENT_END:
			r = on_document_end(l);
			break;
		case FYET_MAPPING_START:
		case FYET_SEQUENCE_START:
			r = on_collection_start(l, e, e->type == FYET_MAPPING_START);
			break;
		case FYET_MAPPING_END:
		case FYET_SEQUENCE_END:
			r = on_collection_end(l);
			break;
		case FYET_SCALAR:
			r = on_scalar(l, e);
			break;
		case FYET_ALIAS:
			r = on_alias(l, e);
			break;
		default:
			break;
		}
		fy_parser_event_free(p, e);
		if (r < 0)
			return r;
	}
}

/* Returns the offset of the first byte that is not part of valid UTF-8 (no overlong forms,
 * surrogates or code points above U+10FFFF) or is an ASCII control character YAML does not allow
 * raw (all but tab, LF, CR), or `len`. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	size_t i = 0;
	while (i < len) {
		if (len - i >= 8) {
			/* eight bytes at a time while none is a control character, DEL or non-ASCII
			 * (tab and line breaks take the byte path below) */
			uint64_t w, del;
			memcpy(&w, s + i, 8);
			del = w ^ (ones * 0x7f);
			if (!((w | ((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs)) {
				i += 8;
				continue;
			}
		}
		unsigned char c = s[i];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return i;
			i++;
			continue;
		}
		/* one multi-byte sequence: its length from the lead byte (0 when the lead byte
		 * cannot start one), then checked whole */
		size_t n = (c & 0xe0) == 0xc0	? 2
			   : (c & 0xf0) == 0xe0 ? 3
			   : (c & 0xf8) == 0xf0 ? 4
						: 0;
		if (n == 0 || n > len - i || kilt_utf8_valid_prefix(s + i, n) != n)
			return i;
		i += n;
	}
	return len;
}

static int load_yaml(const char *buf, size_t len, const char *name, unsigned flags,
		     const struct kilt_yaml_limits *lim, json_t **ret, struct kilt_error *err)
{
	/* YAML is printable Unicode; libfyaml 0.7.12 loops forever on some invalid UTF-8 (`%\xe0`)
	 * and hands out uninitialised text for block scalars with a raw NUL, so such bytes are
	 * refused before it sees them */
	size_t bad = utf8_invalid_at((const unsigned char *)buf, len);
	if (bad < len) {
		unsigned line = 1, column = 1;
		for (size_t i = 0; i < bad; i++) {
			if (buf[i] == '\n') {
				line++;
				column = 1;
			} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
				column++;
			}
		}
		unsigned char c = (unsigned char)buf[bad];
		if (c < 0x80)
			return kilt_error_set(
				err, -EINVAL, name, line, column,
				"control character 0x%02X is not allowed in YAML (write "
				"it as an escape in a double-quoted string)",
				c);
		return kilt_error_set(err, -EINVAL, name, line, column,
				      "invalid UTF-8 (byte 0x%02X); YAML input must be UTF-8", c);
	}
	/* libfyaml 0.7.12 leaks a buffer on some runs of CR line breaks in a double-quoted scalar
	 * ("l\r\r\n\r\r\n\n\n\r"). YAML reads CR LF and a lone CR as one LF (never as content),
	 * so the parser gets LF only: same values, lines and columns. */
	_cleanup_free_ char *lf = NULL;
	if (memchr(buf, '\r', len)) {
		lf = xmalloc(len);
		size_t n = 0;
		for (size_t i = 0; i < len; i++) {
			if (buf[i] != '\r') {
				lf[n++] = buf[i];
				continue;
			}
			lf[n++] = '\n';
			if (i + 1 < len && buf[i + 1] == '\n')
				i++;
		}
		buf = lf;
		len = n;
	}
	struct loader l = {
		.name = name, .buf = buf, .len = len, .flags = flags, .lim = *lim, .err = err
	};
	if (flags & KILT_YAML_MULTI)
		l.docs = json_array();

	struct fy_diag_cfg dcfg;
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = capture_diag;
	dcfg.user = &l;
	dcfg.colorize = false;
	dcfg.level = FYET_ERROR;
	struct fy_diag *diag = fy_diag_create(&dcfg);
	if (!diag)
		abort();
	fy_diag_set_collect_errors(diag, true);
	struct fy_parse_cfg pcfg = {
		.flags = FYPCF_QUIET | FYPCF_JSON_NONE | FYPCF_DISABLE_MMAP_OPT,
		.diag = diag,
	};
	struct fy_parser *p = fy_parser_create(&pcfg);
	l.iter = fy_token_iter_create(NULL);
	if (!p || !l.iter)
		abort();
	int r = fy_parser_set_string(p, len ? buf : "", len) < 0
			? kilt_error_set(err, -EINVAL, name, 0, 0, "cannot read the input")
			: parse_events(&l, p, diag);
	fy_parser_destroy(p);
	fy_token_iter_destroy(l.iter);
	fy_diag_destroy(diag);
	if (r == 0) {
		if (flags & KILT_YAML_MULTI)
			*ret = steal_pointer(&l.docs);
		else
			*ret = l.root ? steal_pointer(&l.root) : json_null();
	}
	loader_done(&l);
	return r;
}

bool kilt_yaml_has_comments(const char *buf, size_t len)
{
	/* Comments are the only text between tokens besides blanks and line breaks (block
	 * scalars, quoted scalars and indicators are all inside tokens). */
	struct fy_parse_cfg pcfg = {
		.flags = FYPCF_QUIET | FYPCF_JSON_NONE | FYPCF_DISABLE_MMAP_OPT,
	};
	struct fy_parser *p = fy_parser_create(&pcfg);
	if (!p)
		abort();
	bool found = false;
	size_t gap = 0;
	if (fy_parser_set_string(p, len ? buf : "", len) == 0) {
		struct fy_token *t;
		while (!found && (t = fy_scan(p)) != NULL) {
			const struct fy_mark *start = fy_token_start_mark(t);
			const struct fy_mark *end = fy_token_end_mark(t);
			size_t to = start && start->input_pos <= len ? start->input_pos : gap;
			for (size_t i = gap; i < to && !found; i++)
				found = buf[i] == '#';
			if (end && end->input_pos >= gap && end->input_pos <= len)
				gap = end->input_pos;
			fy_scan_token_free(p, t);
		}
		/* after the last token (the scanner stops at the end of the stream) */
		for (size_t i = gap; i < len && !found && !fy_parser_get_stream_error(p); i++)
			found = buf[i] == '#';
	}
	fy_parser_destroy(p);
	return found;
}

static unsigned json_depth(const json_t *v, unsigned limit)
{
	unsigned max = 0;
	if (limit == 0)
		return 1;
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach ((json_t *)(uintptr_t)v, k, c) {
			unsigned d = json_depth(c, limit - 1);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach (v, i, c) {
			unsigned d = json_depth(c, limit - 1);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	return 0;
}

static size_t skip_space(const char *buf, size_t len, size_t i)
{
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	return i;
}

enum kilt_format kilt_yaml_detect(const char *buf, size_t len)
{
	size_t i = 0;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	i = skip_space(buf, len, i);
	return i < len && (buf[i] == '{' || buf[i] == '[') ? KILT_FORMAT_JSON : KILT_FORMAT_YAML;
}

/* jansson for JSON input: exact numbers and speed. Fills `jerr` on failure. A string value may
 * hold \u0000, as a YAML one may ("\0"): a stream of JSON documents has no YAML fallback, and
 * kilt_yaml_dump_json writes such strings. */
static json_t *load_json(const char *buf, size_t len, unsigned flags, json_error_t *jerr)
{
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
		buf += 3;
		len -= 3;
	}
	if (!(flags & KILT_YAML_MULTI))
		/* a CloudFormation template keeps the numbers jansson cannot hold exactly */
		return (flags & KILT_YAML_CFN_TAGS)
			       ? kilt_json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
						 jerr)
			       : json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
					    jerr);
	json_t *docs = json_array();
	size_t off = skip_space(buf, len, 0);
	while (off < len) {
		json_t *doc = json_loadb(buf + off, len - off,
					 JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK |
						 JSON_DECODE_ANY | JSON_ALLOW_NUL,
					 jerr);
		if (!doc || jerr->position <= 0) {
			json_decref(doc);
			json_decref(docs);
			return NULL;
		}
		/* like YAML streams: null documents are skipped */
		if (json_is_null(doc))
			json_decref(doc);
		else
			json_array_append_new(docs, doc);
		off = skip_space(buf, len, off + (size_t)jerr->position);
	}
	return docs;
}

int kilt_yaml_load(const char *buf, size_t len, const char *name, unsigned flags,
		   const struct kilt_yaml_limits *limits, json_t **ret, struct kilt_error *err)
{
	struct kilt_yaml_limits lim;
	if (limits)
		lim = *limits;
	else
		kilt_yaml_limits_default(&lim);
	if (len > lim.max_input_bytes)
		return kilt_error_set(err, -E2BIG, name, 0, 0,
				      "input is %zu bytes, more than the limit of %zu", len,
				      lim.max_input_bytes);
	if (len && !buf)
		return kilt_error_setf(err, -EINVAL, "no input buffer");
	json_t *v = NULL;
	if (kilt_yaml_detect(buf, len) == KILT_FORMAT_JSON) {
		json_error_t jerr;
		v = load_json(buf, len, flags, &jerr);
		if (!v) {
			struct kilt_error yerr = { 0 };
			if (load_yaml(buf, len, name, flags, &lim, &v, &yerr) == -E2BIG) {
				if (err)
					*err = yerr;
				return -E2BIG;
			}
			if (!v)
				return kilt_error_set(err, -EINVAL, name,
						      jerr.line > 0 ? (unsigned)jerr.line : 0,
						      jerr.column > 0 ? (unsigned)jerr.column : 0,
						      "invalid JSON: %s", jerr.text);
		} else if (json_depth(v, lim.max_depth + 1) > lim.max_depth) {
			json_decref(v);
			return kilt_error_set(err, -E2BIG, name, 0, 0,
					      "nesting deeper than %u levels", lim.max_depth);
		} else if ((flags & KILT_YAML_MULTI) && json_array_size(v) > lim.max_documents) {
			json_decref(v);
			return kilt_error_set(err, -E2BIG, name, 0, 0, "more than %zu documents",
					      lim.max_documents);
		}
	} else {
		int r = load_yaml(buf, len, name, flags, &lim, &v, err);
		if (r < 0)
			return r;
	}
	*ret = v;
	return 0;
}

int kilt_yaml_load_file(const char *path, unsigned flags, const struct kilt_yaml_limits *limits,
			json_t **ret, struct kilt_error *err)
{
	struct kilt_yaml_limits lim;
	if (limits)
		lim = *limits;
	else
		kilt_yaml_limits_default(&lim);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = kilt_read_file(path, lim.max_input_bytes, &buf, &len);
	if (r == -EFBIG)
		return kilt_error_set(err, -E2BIG, path, 0, 0, "file is larger than %zu bytes",
				      lim.max_input_bytes);
	if (r < 0)
		return kilt_error_set(err, r, path, 0, 0, "cannot read: %s", strerror(-r));
	return kilt_yaml_load(buf, len, path, flags, &lim, ret, err);
}

/* ---- emitter -------------------------------------------------------------------------------- */

struct emitter {
	struct kbuf b; /* the text not handed to `write` yet (all of it without `write`) */
	unsigned flags;
	int rc;
	const char *what; /* first problem, for the error message */
	json_dump_callback_t write; /* NULL: the whole text is built in b */
	void *write_data; /* borrowed */
	size_t written; /* bytes handed to `write` so far */
};

/* Above this much text, the emitter hands it to its callback between two values. */
#define EMIT_CHUNK 65536u

/* Called only between values (never while a key is being written: put_key may take its text
 * back), so that the buffer never holds more than a chunk and one value's text. */
static void flush_some(struct emitter *e)
{
	if (!e->write || e->rc || e->b.len < EMIT_CHUNK)
		return;
	if (e->write(e->b.data, e->b.len, e->write_data) != 0) {
		e->rc = -EIO;
		e->what = "the text (the output refused it)";
		return;
	}
	e->written += e->b.len;
	e->b.len = 0;
	e->b.data[0] = '\0';
	e->b.max = DUMP_MAX_BYTES - e->written; /* the limit holds for the whole text */
}

static void put(struct emitter *e, const char *s, size_t n)
{
	struct kbuf *b = &e->b;
	/* most pieces are a few bytes and fit: copied without a call, kbuf_add grows the buffer */
	if (e->rc == 0 && !kilt_kbuf_add_in_room(b, s, n) && kbuf_add(b, s, n) < 0) {
		e->rc = -E2BIG;
		e->what = "output larger than the limit";
	}
}

static void puts_(struct emitter *e, const char *s)
{
	put(e, s, strlen(s));
}

static void indent(struct emitter *e, unsigned n)
{
	static const char spaces[] = "                                ";
	while (n > 0) {
		unsigned k = n < sizeof(spaces) - 1 ? n : (unsigned)sizeof(spaces) - 1;
		put(e, spaces, k);
		n -= k;
	}
}

/* Decodes one UTF-8 sequence (jansson strings are valid UTF-8). Returns its length. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	if (s[0] < 0x80 || len < 2) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		*cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0 && len >= 3) {
		*cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) |
		      (s[2] & 0x3f);
		return 3;
	}
	if (len >= 4) {
		*cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
		      ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
		return 4;
	}
	*cp = s[0];
	return 1;
}

/* Code points YAML cannot carry unescaped outside double quotes (besides '\n'). */
static bool cp_needs_escape(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 ||
	       cp == 0x2029 || cp == 0xfeff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe ||
	       cp == 0xffff;
}

struct str_facts {
	bool escapes; /* has a character that needs a double-quoted escape (not '\n') */
	bool newline;
	bool tab;
	bool indicator; /* has ": " or " #", which end or break a plain scalar */
};

static struct str_facts string_facts(const char *s, size_t len)
{
	struct str_facts f = { 0 };
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f) { /* printable ASCII */
			if (i + 1 < len &&
			    ((c == ':' && s[i + 1] == ' ') || (c == ' ' && s[i + 1] == '#')))
				f.indicator = true;
			i++;
			continue;
		}
		uint32_t cp;
		i += utf8_decode((const unsigned char *)s + i, len - i, &cp);
		if (cp == '\n')
			f.newline = true;
		else if (cp == '\t')
			f.tab = true;
		else if (cp_needs_escape(cp))
			f.escapes = true;
	}
	return f;
}

/* True when some YAML 1.1 or 1.2 reader (or a cautious human) could read the plain scalar as
 * something other than this string. Deliberately wider than either schema. */
static bool plain_is_ambiguous(const char *s, size_t len)
{
	static const char *const words[] = { "y",     "n",     "yes",  "no", "on",   "off",
					     "true",  "false", "null", "~",  ".inf", "-.inf",
					     "+.inf", ".nan",  "<<",   "=",  NULL };
	if (len == 0)
		return true;
	if (len <= 5) {
		char low[8];
		for (size_t i = 0; i < len; i++)
			low[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
		if (word_in(low, len, words))
			return true;
	}
	if (is_digit(s[0]))
		return true;
	if ((s[0] == '-' || s[0] == '+' || s[0] == '.') && len > 1 &&
	    (is_digit(s[1]) || s[1] == '.'))
		return true;
	return false;
}

static bool plain_ok(const char *s, size_t len, struct str_facts f)
{
	if (f.escapes || f.newline || f.tab || plain_is_ambiguous(s, len))
		return false;
	if (strchr("?:,[]{}#&*!|>'\"%@`", s[0]))
		return false;
	if (s[0] == '-' && (len == 1 || s[1] == ' '))
		return false;
	if ((len >= 3 && (memcmp(s, "...", 3) == 0 || memcmp(s, "---", 3) == 0)) || s[0] == ' ' ||
	    s[len - 1] == ' ' || s[len - 1] == ':')
		return false;
	return !f.indicator;
}

static void put_single_quoted(struct emitter *e, const char *s, size_t len)
{
	put(e, "'", 1);
	size_t run = 0; /* start of the text not written yet */
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\'') {
			put(e, s + run, i + 1 - run); /* up to and with the quote, then one more */
			put(e, "'", 1);
			run = i + 1;
		}
	}
	put(e, s + run, len - run);
	put(e, "'", 1);
}

static void put_double_quoted(struct emitter *e, const char *s, size_t len)
{
	put(e, "\"", 1);
	for (size_t i = 0; i < len;) {
		size_t run = i; /* printable ASCII but the quote and the backslash, as it is */
		while (run < len && (unsigned char)s[run] >= 0x20 && (unsigned char)s[run] < 0x7f &&
		       s[run] != '"' && s[run] != '\\')
			run++;
		if (run > i) {
			put(e, s + i, run - i);
			i = run;
			continue;
		}
		uint32_t cp;
		size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
		char esc[16];
		switch (cp) {
		case '"':
			puts_(e, "\\\"");
			break;
		case '\\':
			puts_(e, "\\\\");
			break;
		case '\n':
			puts_(e, "\\n");
			break;
		case '\t':
			puts_(e, "\\t");
			break;
		case '\r':
			puts_(e, "\\r");
			break;
		case 0:
			puts_(e, "\\0");
			break;
		default:
			if (cp_needs_escape(cp)) {
				snprintf(esc, sizeof(esc), cp < 0x100 ? "\\x%02X" : "\\u%04X",
					 (unsigned)cp);
				puts_(e, esc);
			} else {
				put(e, s + i, n);
			}
		}
		i += n;
	}
	put(e, "\"", 1);
}

/* A literal block keeps multi-line text readable (scripts in `!Sub |`); it is used only where
 * it reads back exactly. */
static bool literal_ok(const char *s, size_t len, struct str_facts f)
{
	if (f.escapes || !f.newline)
		return false;
	size_t body = len;
	while (body > 0 && s[body - 1] == '\n')
		body--;
	if (body == 0)
		return false;
	/* whitespace-only lines and trailing blanks are where readers disagree */
	size_t start = 0;
	for (size_t i = 0; i <= body; i++) {
		if (i == body || s[i] == '\n') {
			if (i > start && (s[i - 1] == ' ' || s[i - 1] == '\t'))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* Writes the lines of a literal block (after the `|` header) at column `col`. */
static void put_literal(struct emitter *e, const char *s, size_t len, unsigned col)
{
	size_t body = len, trailing = 0;
	while (body > 0 && s[body - 1] == '\n') {
		body--;
		trailing++;
	}
	put(e, "|", 1);
	if (s[0] == ' ' || s[0] == '\n')
		put(e, "2", 1);
	if (trailing != 1)
		put(e, trailing == 0 ? "-" : "+", 1);
	put(e, "\n", 1);
	size_t start = 0;
	for (size_t i = 0; i <= body; i++) {
		if (i == body || s[i] == '\n') {
			if (i > start) {
				indent(e, col);
				put(e, s + start, i - start);
			}
			put(e, "\n", 1);
			start = i + 1;
		}
	}
	for (size_t i = 1; i < trailing; i++)
		put(e, "\n", 1);
}

/* Writes a string scalar. `block_col` is the column for literal block content, or 0 where a
 * block is not allowed (keys, the document root). Returns true when a newline was written. */
static bool put_string(struct emitter *e, const char *s, size_t len, unsigned block_col)
{
	struct str_facts f = string_facts(s, len);
	if (plain_ok(s, len, f))
		put(e, s, len);
	else if (block_col && literal_ok(s, len, f)) {
		put_literal(e, s, len, block_col);
		return true;
	} else if (f.escapes || f.newline || f.tab || memmem(s, len, "''", 2))
		/* libfyaml 0.7.12 misreads '''' (two escaped quotes in a row) in single quotes */
		put_double_quoted(e, s, len);
	else
		put_single_quoted(e, s, len);
	return false;
}

static void put_real(struct emitter *e, double d)
{
	char buf[64];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	/* YAML 1.1 floats need a '.', so 1e+300 becomes 1.0e+300 and 5 becomes 5.0 */
	if (!strchr(buf, '.')) {
		char *exp = strchr(buf, 'e');
		char out[72];
		if (exp)
			snprintf(out, sizeof(out), "%.*s.0%s", (int)(exp - buf), buf, exp);
		else
			snprintf(out, sizeof(out), "%s.0", buf);
		puts_(e, out);
		return;
	}
	puts_(e, buf);
}

/* Writes a non-collection value (or an empty collection) inline. */
static bool put_scalar(struct emitter *e, const json_t *v, unsigned block_col)
{
	char buf[32];
	switch (json_typeof(v)) {
	case JSON_STRING: {
		const char *raw;
		size_t rawlen;
		if (kilt_json_is_raw_number(v, &raw, &rawlen)) {
			/* kept as written: a plain scalar reads back the same (a real from JSON in
			 * YAML 1.1's spelling, or it would read back as a string) */
			if (e->flags & KILT_YAML_SCHEMA_1_2) {
				put(e, raw, rawlen);
			} else {
				char *t = xmalloc(rawlen + 5);
				put(e, t, kilt_json_number_yaml11(raw, rawlen, t, rawlen + 5));
				free(t);
			}
			break;
		}
		return put_string(e, json_string_value(v), json_string_length(v), block_col);
	}
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		puts_(e, buf);
		break;
	case JSON_REAL:
		if (!isfinite(json_real_value(v))) {
			if (!e->rc) {
				e->rc = -EINVAL;
				e->what = "a number that is not finite";
			}
			break;
		}
		put_real(e, json_real_value(v));
		break;
	case JSON_TRUE:
		puts_(e, "true");
		break;
	case JSON_FALSE:
		puts_(e, "false");
		break;
	case JSON_NULL:
		puts_(e, "null");
		break;
	case JSON_OBJECT:
		puts_(e, "{}");
		break;
	case JSON_ARRAY:
		puts_(e, "[]");
		break;
	}
	return false;
}

enum pos {
	POS_ROOT, /* nothing written on the line yet */
	POS_MAPVAL, /* "key:" written */
	POS_SEQITEM, /* "- " written */
};

static void put_value(struct emitter *e, const json_t *v, unsigned col, enum pos pos,
		      unsigned depth);

static void put_key(struct emitter *e, const char *key)
{
	size_t len = strlen(key);
	size_t before = e->b.len;
	put_string(e, key, len, 0);
	if (e->b.len - before > IMPLICIT_KEY_MAX) {
		/* too long for an implicit key: rewrite as `? key` then `:` on the next line */
		e->b.len = before;
		e->b.data[before] = '\0';
		put(e, "? ", 2);
		put_string(e, key, len, 0);
		put(e, "\n", 1);
	}
}

static void put_pairs(struct emitter *e, const json_t *obj, unsigned col, bool first_inline,
		      unsigned depth)
{
	const char *key;
	json_t *val;
	bool first = true;
	json_object_foreach ((json_t *)(uintptr_t)obj, key, val) {
		flush_some(e);
		if (!(first && first_inline))
			indent(e, col);
		first = false;
		size_t before = e->b.len;
		put_key(e, key);
		if (e->b.len > before && e->b.data[e->b.len - 1] == '\n')
			indent(e, col);
		put(e, ":", 1);
		put_value(e, val, col, POS_MAPVAL, depth + 1);
	}
}

static void put_items(struct emitter *e, const json_t *arr, unsigned col, bool first_inline,
		      unsigned depth)
{
	size_t i;
	json_t *item;
	json_array_foreach (arr, i, item) {
		flush_some(e);
		if (!(i == 0 && first_inline))
			indent(e, col);
		put(e, "- ", 2);
		put_value(e, item, col, POS_SEQITEM, depth + 1);
	}
}

/* The short form of a one-key intrinsic object: its tag and the value to write after it, or
 * false. `ret_getatt` receives "a.b" for the two-string Fn::GetAtt. */
static bool short_form(const struct emitter *e, const json_t *v, const char **ret_tag,
		       const json_t **ret_inner, char **ret_getatt)
{
	if (!(e->flags & KILT_YAML_CFN_TAGS) || !json_is_object(v) || json_object_size(v) != 1)
		return false;
	void *it = json_object_iter((json_t *)(uintptr_t)v);
	const struct intrinsic *in = intrinsic_by_key(json_object_iter_key(it));
	if (!in)
		return false;
	const json_t *inner = json_object_iter_value(it);
	/* a tagged scalar always reads back as a string: `!Ref null` is {"Ref": "null"} */
	if (!json_is_string(inner) && !json_is_object(inner) && !json_is_array(inner))
		return false;
	*ret_getatt = NULL;
	if (strcmp(in->tag, "GetAtt") == 0) {
		/* a string value has no short form: `!GetAtt a.b` reads back as an array */
		if (json_is_string(inner))
			return false;
		const json_t *a = json_array_get(inner, 0), *b = json_array_get(inner, 1);
		if (json_array_size(inner) == 2 && json_is_string(a) && json_is_string(b) &&
		    !memchr(json_string_value(a), '.', json_string_length(a)) &&
		    !memchr(json_string_value(a), '\0', json_string_length(a)))
			*ret_getatt =
				xasprintf("%s.%s", json_string_value(a), json_string_value(b));
		if (*ret_getatt &&
		    strlen(*ret_getatt) != json_string_length(a) + json_string_length(b) + 1) {
			/* a NUL inside the attribute name: keep the sequence form */
			free(*ret_getatt);
			*ret_getatt = NULL;
		}
	}
	*ret_tag = in->tag;
	*ret_inner = inner;
	return true;
}

static void put_value(struct emitter *e, const json_t *v, unsigned col, enum pos pos,
		      unsigned depth)
{
	if (depth > DUMP_MAX_DEPTH) {
		if (!e->rc) {
			e->rc = -EINVAL;
			e->what = "nesting too deep";
		}
		return;
	}
	const char *tag = NULL;
	const json_t *inner = v;
	_cleanup_free_ char *getatt = NULL;
	if (short_form(e, v, &tag, &inner, &getatt))
		v = inner;
	bool collection = (json_is_object(v) && json_object_size(v) > 0) ||
			  (json_is_array(v) && json_array_size(v) > 0);
	if (pos == POS_MAPVAL && (tag || !collection))
		put(e, " ", 1);
	if (tag) {
		put(e, "!", 1);
		puts_(e, tag);
		put(e, collection && !getatt ? "\n" : " ", 1);
	}
	if (getatt) {
		if (!put_string(e, getatt, strlen(getatt), 0))
			put(e, "\n", 1);
		return;
	}
	if (!collection) {
		if (!put_scalar(e, v, pos == POS_ROOT ? 0 : col + 2))
			put(e, "\n", 1);
		return;
	}
	if (pos == POS_MAPVAL && !tag)
		put(e, "\n", 1);
	unsigned child_col = pos == POS_ROOT ? col : col + 2;
	bool inline_first = pos == POS_SEQITEM && !tag;
	if (json_is_object(v))
		put_pairs(e, v, child_col, inline_first, depth);
	else
		put_items(e, v, child_col, inline_first, depth);
}

/* Writes `root` into e (initialised by the caller); on failure e->b is released and `err` set. */
static int emit(struct emitter *e, const json_t *root, struct kilt_error *err)
{
	unsigned flags = e->flags;
	if (!root)
		return kilt_error_setf(err, -EINVAL, "yaml: nothing to write");
	if ((flags & KILT_YAML_MULTI) && !json_is_array(root))
		return kilt_error_setf(
			err, -EINVAL,
			"yaml: a multi-document stream must be an array of documents");
	kbuf_init(&e->b, DUMP_MAX_BYTES);
	if (flags & KILT_YAML_MULTI) {
		size_t i;
		json_t *doc;
		json_array_foreach (root, i, doc) {
			flush_some(e);
			if (i > 0)
				puts_(e, "---\n");
			put_value(e, doc, 0, POS_ROOT, 0);
		}
	} else {
		put_value(e, root, 0, POS_ROOT, 0);
	}
	if (e->rc == -E2BIG) {
		kbuf_done(&e->b);
		return kilt_error_setf(
			err, e->rc,
			"yaml: cannot write more than %zu bytes, the most kilt reads "
			"back",
			(size_t)DUMP_MAX_BYTES);
	}
	if (e->rc < 0) {
		kbuf_done(&e->b);
		return kilt_error_setf(err, e->rc, "yaml: cannot write %s", e->what);
	}
	return 0;
}

int kilt_yaml_dump(const json_t *root, unsigned flags, char **ret, size_t *ret_len,
		   struct kilt_error *err)
{
	struct emitter e = { .flags = flags };
	int r = emit(&e, root, err);
	if (r < 0)
		return r;
	if (ret_len)
		*ret_len = e.b.len;
	*ret = kbuf_steal(&e.b);
	return 0;
}

int kilt_yaml_dump_callback(const json_t *root, unsigned flags, json_dump_callback_t write,
			    void *userdata, struct kilt_error *err)
{
	struct emitter e = { .flags = flags, .write = write, .write_data = userdata };
	int r = emit(&e, root, err);
	if (r < 0)
		return r;
	r = e.b.len && write(e.b.data, e.b.len, userdata) != 0
		    ? kilt_error_setf(err, -EIO,
				      "yaml: cannot write the text (the output refused it)")
		    : 0;
	kbuf_done(&e.b);
	return r;
}

int kilt_yaml_dump_json(const json_t *root, unsigned flags, char **ret, size_t *ret_len,
			struct kilt_error *err)
{
	if (!root)
		return kilt_error_setf(err, -EINVAL, "json: nothing to write");
	if ((flags & KILT_YAML_MULTI) && !json_is_array(root))
		return kilt_error_setf(
			err, -EINVAL,
			"json: a multi-document stream must be an array of documents");
	struct kbuf b;
	kbuf_init(&b, DUMP_MAX_BYTES);
	size_t n = (flags & KILT_YAML_MULTI) ? json_array_size(root) : 1;
	for (size_t i = 0; i < n; i++) {
		const json_t *doc = (flags & KILT_YAML_MULTI) ? json_array_get(root, i) : root;
		_cleanup_free_ char *s = kilt_json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
								      JSON_ENCODE_ANY);
		if (!s) {
			kbuf_done(&b);
			return kilt_error_setf(err, -EINVAL,
					       "json: cannot write the document (not finite "
					       "number?)");
		}
		if (kbuf_adds(&b, s) < 0 || kbuf_addc(&b, '\n') < 0) {
			kbuf_done(&b);
			return kilt_error_setf(
				err, -E2BIG,
				"json: cannot write more than %zu bytes, the most kilt "
				"reads back",
				(size_t)DUMP_MAX_BYTES);
		}
	}
	if (ret_len)
		*ret_len = b.len;
	*ret = kbuf_steal(&b);
	return 0;
}

int kilt_yaml_dump_as(const json_t *root, enum kilt_format format, unsigned flags, char **ret,
		      size_t *ret_len, struct kilt_error *err)
{
	return format == KILT_FORMAT_JSON ? kilt_yaml_dump_json(root, flags, ret, ret_len, err)
					  : kilt_yaml_dump(root, flags, ret, ret_len, err);
}
