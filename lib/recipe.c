/* SPDX-License-Identifier: Apache-2.0 */
/* Recipes: load (parse, hash, validate once against placeholder facts) and evaluate per container.
 *
 * Evaluation has two ways that give the same plan. The full way resolves the HOCON document with
 * the container's facts and validates the result. The fast way resolves the document once per
 * (config, which facts are known) with markers standing in for the facts, validates that once, and
 * then only copies the partial plan per container, replacing markers by facts. A recipe whose
 * markers could be interpreted rather than copied (split into words, checked as a path...), or
 * that reads facts markers cannot stand for (metadata, environment), always goes the full way. */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "recipe-private.h"

#define MAX_TEMPLATES 16u
/* plans kept for targets that take shared plans (kilt_target.shared); at most 255 (plan_hint
 * holds a slot + 1 in a byte) */
#define PLAN_CACHE 64u

enum {
	HAS_IMAGE = 1u << 0,
	HAS_NAME = 1u << 1,
	HAS_GROUP = 1u << 2,
	HAS_ENTRYPOINT = 1u << 3,
	HAS_COMMAND = 1u << 4,
	HAS_PLATFORM = 1u << 5,
	HAS_ALL = (1u << 6) - 1,
};

struct template
{
	unsigned mask; /* which facts were known */
	json_t *config; /* owned; the config it was made for (an empty object for none) */
	json_t *partial; /* owned; NULL when this key must take the full way */
};

/* A plan made from a template, kept for the targets of the same facts. */
struct cached_plan {
	uint64_t hash; /* of everything below but the plan */
	const json_t *partial; /* borrowed: the template's partial plan */
	unsigned members;
	char *image, *name, *group, *platform; /* owned, may be NULL */
	json_t *entrypoint, *command; /* owned copies, may be NULL */
	json_t *plan; /* owned; NULL: the slot is free */
};

struct kilt_recipe {
	char *name; /* owned */
	char *hash; /* owned */
	char *file; /* owned; names the recipe in errors that have no place */
	struct kilt_hocon *doc; /* owned */
	char **platforms; /* owned; normalized, sorted */
	size_t nplatforms;
	bool fast_ok; /* markers can stand for the facts this recipe reads */
	bool reads_env; /* may read original.environment (kilt_recipe_reads_environment) */
	bool reads_meta; /* may read original.metadata (kilt_recipe_reads_metadata) */
	bool marks_in_text; /* the source holds the marker byte (or its \u escape) */
	json_t *params; /* owned; the `parameters` block normalized, NULL when there is none */
	json_t *defaults; /* owned; object: config defaults from `parameters` (maybe empty) */
	json_t *accepted; /* owned; object name -> true: config keys the recipe reads; NULL: any */
	pthread_mutex_t lock; /* guards templates/ntemplates and plans/next_plan */
	struct template templates[MAX_TEMPLATES];
	size_t ntemplates;
	struct cached_plan plans[PLAN_CACHE];
	uint64_t plan_hash[PLAN_CACHE]; /* plans[i].hash, side by side for find_plan's scan */
	/* the slot + 1 where a plan of hash h was last kept, by h's low byte: where find_plan
	 * looks first (the slot may hold another plan since; 0: none) */
	unsigned char plan_hint[256];
	size_t next_plan; /* the slot the next plan kept goes to (the oldest) */
};

/* ---- small helpers -------------------------------------------------------------------------- */

static char *recipe_name_from(const char *name)
{
	if (!name)
		return xstrdup("inline");
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	size_t n = strcspn(base, ".");
	if (n == 0)
		return xstrdup(base[0] ? base : "inline");
	return xstrndup(base, n);
}

static char *sha256_hex(const char *text, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL))
		abort(); /* only fails when libcrypto cannot allocate */
	char *hex = xmalloc(mdlen * 2 + 1);
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[mdlen * 2] = '\0';
	return hex;
}

static bool in_names(const char *s, const char *const *names)
{
	for (size_t i = 0; names[i]; i++)
		if (strcmp(s, names[i]) == 0)
			return true;
	return false;
}

static bool contains_ci(const char *text, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(text + i, needle, n) == 0)
			return true;
	return false;
}

/* ---- what the source reads ------------------------------------------------------------------ */

/* Calls `fn` for each substitution `${path}` / `${?path}` in the source with its path split into
 * segments (whole, however long or many: a placeholder for a cut key would not match it).
 * Over-approximates (also sees `${...}` inside quoted strings), which only costs a placeholder or
 * the fast way. */
typedef void scan_fn(const char *const *segs, size_t nsegs, bool optional, size_t offset,
		     void *userdata);

static void scan_substitutions(const char *text, size_t len, scan_fn *fn, void *userdata)
{
	struct kbuf b; /* the segments, each NUL-terminated */
	kbuf_init(&b, len + 1);
	size_t *starts = NULL, cap = 0;
	for (size_t i = 0; i + 1 < len; i++) {
		if (text[i] != '$' || text[i + 1] != '{')
			continue;
		size_t j = i + 2;
		bool optional = j < len && text[j] == '?';
		if (optional)
			j++;
		size_t nsegs = 0;
		b.len = 0;
		for (;;) {
			if (nsegs == cap) {
				cap = cap ? cap * 2 : 8;
				starts = xrealloc(starts, cap * sizeof(*starts));
			}
			starts[nsegs++] = b.len;
			while (j < len && text[j] != '}' && text[j] != '\n' && text[j] != '.') {
				if (text[j] == '"') {
					size_t q = ++j;
					while (j < len && text[j] != '"' && text[j] != '\n')
						j++;
					kbuf_add(&b, text + q, j - q);
					if (j < len && text[j] == '"')
						j++;
				} else {
					if (text[j] != ' ' && text[j] != '\t')
						kbuf_addc(&b, text[j]);
					j++;
				}
			}
			kbuf_addc(&b, '\0');
			if (j >= len || text[j] != '.')
				break;
			j++;
		}
		if (j >= len || text[j] != '}')
			continue;
		_cleanup_free_ const char **segs = xmalloc(nsegs * sizeof(*segs));
		for (size_t k = 0; k < nsegs; k++)
			segs[k] = b.data + starts[k];
		fn(segs, nsegs, optional, i, userdata);
		i = j;
	}
	free(starts);
	kbuf_done(&b);
}

struct scan_state {
	json_t *placeholders; /* context additions for load-time validation */
	bool reads_objects; /* reads original.metadata / original.environment */
	bool reads_env; /* reads original.environment, or may (an escape in a path) */
	bool reads_meta; /* reads original.metadata, or may (an escape in a path) */
	bool optional; /* some substitution is optional: `${?x}` */
};

static void scan_one(const char *const *segs, size_t nsegs, bool optional, size_t offset,
		     void *userdata)
{
	(void)offset;
	struct scan_state *st = userdata;
	for (size_t k = 0; k < nsegs; k++) {
		if (strstr(segs[k], "metadata") || strstr(segs[k], "environment"))
			st->reads_objects = true;
		/* a quoted segment is not unescaped here: "envi\u0072onment" could name it */
		if (strstr(segs[k], "environment") || strchr(segs[k], '\\'))
			st->reads_env = true;
		if (strstr(segs[k], "metadata") || strchr(segs[k], '\\'))
			st->reads_meta = true;
	}
	/* `${original}` (or `${?original}`) reads them too, whole */
	if (nsegs == 1 && strcmp(segs[0], "original") == 0)
		st->reads_objects = st->reads_env = st->reads_meta = true;
	if (optional)
		st->optional = true;
	bool wanted = false;
	if (nsegs >= 2 && strcmp(segs[0], "config") == 0)
		wanted = true;
	if (nsegs >= 3 && strcmp(segs[0], "original") == 0 &&
	    (strcmp(segs[1], "metadata") == 0 || strcmp(segs[1], "environment") == 0 ||
	     strcmp(segs[1], "environment_variables") == 0))
		wanted = true;
	if (!wanted || optional)
		return;
	/* A required value only known later: a placeholder lets the load-time resolution pass. */
	json_t *cur = st->placeholders;
	for (size_t k = 0; k + 1 < nsegs; k++) {
		json_t *next = json_object_get(cur, segs[k]);
		if (!json_is_object(next)) {
			next = json_object();
			/* on failure jansson has freed `next` */
			if (json_object_set_new(cur, segs[k], next) < 0)
				return;
		}
		cur = next;
	}
	if (!json_object_get(cur, segs[nsegs - 1])) {
		const char mark[] = { RECIPE_MARK, MARK_PLACEHOLDER, '\0' };
		json_object_set_new(cur, segs[nsegs - 1], json_string(mark));
	}
}

/* ---- what the substitutions name ------------------------------------------------------------ */

/* A copy of the source where comments and quoted strings are blanks (newlines kept, so offsets
 * and line numbers stay), for checks that must not see `${...}` written in prose. */
static char *code_only(const char *text, size_t len)
{
	char *c = xmalloc(len + 1);
	memcpy(c, text, len);
	c[len] = '\0';
	size_t i = 0;
	while (i < len) {
		if (c[i] == '$' && i + 1 < len && c[i + 1] == '{') {
			while (i < len && c[i] != '}' && c[i] != '\n')
				i++;
			continue;
		}
		if (c[i] == '#' || (c[i] == '/' && i + 1 < len && c[i + 1] == '/')) {
			while (i < len && c[i] != '\n')
				c[i++] = ' ';
			continue;
		}
		if (c[i] == '"' && i + 2 < len && c[i + 1] == '"' && c[i + 2] == '"') {
			i += 3;
			while (i < len && !(c[i] == '"' && i + 2 < len && c[i + 1] == '"' &&
					    c[i + 2] == '"')) {
				if (c[i] != '\n')
					c[i] = ' ';
				i++;
			}
			i += 3;
			continue;
		}
		if (c[i] == '"') {
			i++;
			while (i < len && c[i] != '"' && c[i] != '\n') {
				if (c[i] == '\\' && i + 1 < len && c[i + 1] != '\n')
					c[i++] = ' ';
				c[i++] = ' ';
			}
			i++;
			continue;
		}
		i++;
	}
	return c;
}

/* What a recipe may name: its own top-level keys, and the two objects it reads. */
static const char *const subst_roots[] = {
	"original", "config",	 "vars",	"deploy",     "build", "patch",
	"runtime",  "platforms", "description", "parameters", NULL,
};
static const char *const original_facts[] = {
	"image",
	"name",
	"container_name",
	"group",
	"container_group_name",
	"entrypoint",
	"entry_point",
	"command",
	"environment",
	"environment_variables",
	"metadata",
	"platform",
	NULL,
};

struct name_check {
	const char *text, *file;
	const json_t *params; /* borrowed; declared parameters, NULL: not checked */
	json_t *reads; /* config names read (object name -> true) */
	struct kilt_error *errs; /* owned */
	size_t nerrs;
};

static void name_error(struct name_check *nc, size_t offset, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void name_error(struct name_check *nc, size_t offset, const char *fmt, ...)
{
	if (nc->nerrs >= RECIPE_MAX_ERRORS)
		return;
	unsigned line = 1, col = 1;
	for (size_t i = 0; i < offset; i++) {
		if (nc->text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	char msg[sizeof(nc->errs->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nc->errs = xrealloc(nc->errs, (nc->nerrs + 1) * sizeof(*nc->errs));
	struct kilt_error *e = &nc->errs[nc->nerrs++];
	memset(e, 0, sizeof(*e));
	kilt_error_set(e, -EINVAL, nc->file, line, col, "%s", msg);
}

static const char *closest(const char *word, const char *const *names, unsigned limit)
{
	const char *best = NULL;
	unsigned best_d = limit + 1;
	for (size_t i = 0; names[i]; i++) {
		unsigned d = kilt_recipe_edit_distance(word, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	return best;
}

static unsigned suggest_limit(const char *word)
{
	size_t n = strlen(word);
	return n <= 4 ? 1 : n <= 8 ? 2 : 3;
}

/* The names of an object's keys, sorted, as a NULL-terminated array (borrowed strings). */
static const char **key_names(const json_t *obj)
{
	size_t n = json_object_size(obj), k = 0;
	const char **names = xcalloc(n + 1, sizeof(*names));
	const char *key;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)obj, key, v)
		names[k++] = key;
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	return names;
}

static void list_names(struct kbuf *b, const char *const *names)
{
	for (size_t i = 0; names[i]; i++)
		kbuf_printf(b, "%s%s", i ? ", " : "", names[i]);
}

static void check_one_name(const char *const *segs, size_t nsegs, bool optional, size_t offset,
			   void *userdata)
{
	struct name_check *nc = userdata;
	struct kbuf ref; /* the substitution as written, for messages */
	kbuf_init(&ref, 256);
	kbuf_adds(&ref, optional ? "${?" : "${");
	for (size_t k = 0; k < nsegs; k++)
		kbuf_printf(&ref, "%s%s", k ? "." : "", segs[k]);
	kbuf_addc(&ref, '}');
	const char *r = ref.data ? ref.data : "${}";
	if (!in_names(segs[0], subst_roots)) {
		const char *s = closest(segs[0], subst_roots, suggest_limit(segs[0]));
		if (s)
			name_error(nc, offset, "%s: a recipe has no '%s' (did you mean '%s'?)", r,
				   segs[0], s);
		else
			name_error(nc, offset,
				   "%s: a recipe has no '%s'; it reads original.* (the container), "
				   "config.* (the operator) and its own keys (vars.*)",
				   r, segs[0]);
	} else if (nsegs >= 2 && strcmp(segs[0], "original") == 0 &&
		   !in_names(segs[1], original_facts)) {
		const char *s = closest(segs[1], original_facts, suggest_limit(segs[1]));
		name_error(nc, offset,
			   "%s: original has no '%s'%s%s%s (it has: image, name, group, "
			   "entrypoint, command, environment, metadata, platform)",
			   r, segs[1], s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
	} else if (nsegs >= 2 && strcmp(segs[0], "config") == 0) {
		json_object_set_new(nc->reads, segs[1], json_true());
		if (nc->params && !json_object_get(nc->params, segs[1])) {
			_cleanup_free_ const char **names = key_names(nc->params);
			const char *s = closest(segs[1], names, suggest_limit(segs[1]));
			struct kbuf b;
			kbuf_init(&b, 2048);
			list_names(&b, names);
			name_error(nc, offset,
				   "%s: '%s' is not declared in parameters%s%s%s (declared: %s)", r,
				   segs[1], s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "",
				   b.data ? b.data : "none");
			kbuf_done(&b);
		}
	}
	kbuf_done(&ref);
}

/* Checks every substitution's name; returns the errors (owned) and the config names read. */
static size_t check_names(const char *text, size_t len, const char *file, const json_t *params,
			  struct kilt_error **ret_errs, json_t **ret_reads)
{
	_cleanup_free_ char *code = code_only(text, len);
	struct name_check nc = {
		.text = text, .file = file, .params = params, .reads = json_object()
	};
	scan_substitutions(code, len, check_one_name, &nc);
	*ret_errs = nc.errs;
	if (ret_reads)
		*ret_reads = nc.reads;
	else
		json_decref(nc.reads);
	return nc.nerrs;
}

/* ---- contexts ------------------------------------------------------------------------------- */

static json_t *mark_string(char code)
{
	const char s[] = { RECIPE_MARK, code, '\0' };
	return json_string(s);
}

static json_t *mark_array(char code)
{
	json_t *a = json_array();
	json_array_append_new(a, mark_string(code));
	return a;
}

/* Markers for the facts in `mask`. */
static json_t *marker_original(unsigned mask)
{
	json_t *o = json_object();
	if (mask & HAS_IMAGE)
		json_object_set_new(o, "image", mark_string(MARK_IMAGE));
	if (mask & HAS_NAME) {
		json_object_set_new(o, "name", mark_string(MARK_NAME));
		json_object_set_new(o, "container_name", mark_string(MARK_NAME));
	}
	if (mask & HAS_GROUP) {
		json_object_set_new(o, "group", mark_string(MARK_GROUP));
		json_object_set_new(o, "container_group_name", mark_string(MARK_GROUP));
	}
	if (mask & HAS_ENTRYPOINT) {
		json_object_set_new(o, "entrypoint", mark_array(MARK_ENTRYPOINT));
		json_object_set_new(o, "entry_point", mark_array(MARK_ENTRYPOINT));
	}
	if (mask & HAS_COMMAND)
		json_object_set_new(o, "command", mark_array(MARK_COMMAND));
	if (mask & HAS_PLATFORM)
		json_object_set_new(o, "platform", mark_string(MARK_PLATFORM));
	return o;
}

static unsigned fact_mask(const struct kilt_target *t)
{
	unsigned m = 0;
	if (t->image)
		m |= HAS_IMAGE;
	if (t->name)
		m |= HAS_NAME;
	if (t->group)
		m |= HAS_GROUP;
	if (json_is_array(t->entrypoint))
		m |= HAS_ENTRYPOINT;
	if (json_is_array(t->command))
		m |= HAS_COMMAND;
	if (t->platform)
		m |= HAS_PLATFORM;
	return m;
}

static void set_copy(json_t *o, const char *key, const json_t *v)
{
	json_object_set_new(o, key, json_deep_copy(v));
}

/* The context of a full resolution: the facts that are known, under both spellings. */
static json_t *real_context(const struct kilt_target *t, const json_t *config)
{
	json_t *o = json_object();
	if (t->image)
		json_object_set_new(o, "image", json_string(t->image));
	if (t->name) {
		json_object_set_new(o, "name", json_string(t->name));
		json_object_set_new(o, "container_name", json_string(t->name));
	}
	if (t->group) {
		json_object_set_new(o, "group", json_string(t->group));
		json_object_set_new(o, "container_group_name", json_string(t->group));
	}
	if (json_is_array(t->entrypoint)) {
		set_copy(o, "entrypoint", t->entrypoint);
		set_copy(o, "entry_point", t->entrypoint);
	}
	if (json_is_array(t->command))
		set_copy(o, "command", t->command);
	if (json_is_object(t->environment)) {
		set_copy(o, "environment", t->environment);
		set_copy(o, "environment_variables", t->environment);
	}
	if (json_is_object(t->metadata))
		set_copy(o, "metadata", t->metadata);
	if (t->platform)
		json_object_set_new(o, "platform", json_string(t->platform));
	json_t *ctx = json_object();
	json_object_set_new(ctx, "original", o);
	if (config)
		set_copy(ctx, "config", config);
	return ctx;
}

/* ---- errors about unknown facts ------------------------------------------------------------- */

static bool mentions(const char *msg, const char *path)
{
	size_t n = strlen(path);
	for (const char *p = strstr(msg, path); p; p = strstr(p + 1, path)) {
		char next = p[n];
		if (!isalnum((unsigned char)next) && next != '_')
			return true;
	}
	return false;
}

/* A resolution failed; when it is because the target lacks a fact, say so and how to fix it. */
static void explain_unknown_fact(struct kilt_error *err, const struct kilt_target *t)
{
	static const struct {
		const char *fact, *alias;
		size_t offset;
	} facts[] = {
		{ "entrypoint", "entry_point", offsetof(struct kilt_target, entrypoint) },
		{ "command", NULL, offsetof(struct kilt_target, command) },
		{ "image", NULL, offsetof(struct kilt_target, image) },
		{ "name", "container_name", offsetof(struct kilt_target, name) },
		{ "group", "container_group_name", offsetof(struct kilt_target, group) },
		{ "platform", NULL, offsetof(struct kilt_target, platform) },
		{ "environment", "environment_variables",
		  offsetof(struct kilt_target, environment) },
		{ "metadata", NULL, offsetof(struct kilt_target, metadata) },
	};
	if (!err)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(facts); i++) {
		const void *val = *(const void *const *)((const char *)t + facts[i].offset);
		if (facts[i].offset == offsetof(struct kilt_target, entrypoint))
			val = json_is_array(t->entrypoint) ? val : NULL;
		if (facts[i].offset == offsetof(struct kilt_target, command))
			val = json_is_array(t->command) ? val : NULL;
		if (val)
			continue;
		char path[64], alias[64] = "";
		snprintf(path, sizeof(path), "original.%s", facts[i].fact);
		if (facts[i].alias)
			snprintf(alias, sizeof(alias), "original.%s", facts[i].alias);
		const char *used = mentions(err->msg, path)		   ? path
				   : alias[0] && mentions(err->msg, alias) ? alias
									   : NULL;
		if (!used)
			continue;
		char old[sizeof(err->msg)];
		snprintf(old, sizeof(old), "%s", err->msg);
		int n = snprintf(
			err->msg, sizeof(err->msg),
			"%s is not known for container %s: %s; or write ${?%s} if the recipe can "
			"do without it (%s)",
			used, t->name ? t->name : "(unnamed)", kilt_recipe_fact_hint(facts[i].fact),
			used, old);
		if (n < 0)
			snprintf(err->msg, sizeof(err->msg), "%s is not known", used);
		err->code = -ENODATA;
		return;
	}
}

/* ---- load ----------------------------------------------------------------------------------- */

/* ---- plans kept for targets of the same facts ---------------------------------------------- */

static void cached_plan_done(struct cached_plan *cp)
{
	free(cp->image);
	free(cp->name);
	free(cp->group);
	free(cp->platform);
	json_decref(cp->entrypoint);
	json_decref(cp->command);
	json_decref(cp->plan);
	*cp = (struct cached_plan){ 0 };
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	/* eight bytes a step, then the rest, each step mixed in by a multiplication (the key is
	 * compared whole on a match: this only tells keys apart quickly) */
	for (; n >= 8; b += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	uint64_t w = n;
	for (size_t i = 0; i < n; i++)
		w = w << 8 | b[i];
	h = (h ^ w) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

#define PLAN_KEY_MAX 4096u /* bytes of facts: a plan of bigger ones is not kept */

static uint64_t hash_str(uint64_t h, const char *s, size_t *size)
{
	if (!s)
		return hash_bytes(h, "\xff", 1);
	size_t n = strlen(s) + 1;
	*size += n;
	return hash_bytes(h, s, n);
}

/* An argv of strings only (what a key can hold); false for anything else but NULL. */
static bool hash_argv(uint64_t *h, const json_t *argv, size_t *size)
{
	if (!argv) {
		*h = hash_bytes(*h, "\xfe", 1);
		return true;
	}
	if (!json_is_array(argv))
		return false;
	size_t n = json_array_size(argv);
	*h = hash_bytes(*h, &n, sizeof(n));
	for (size_t i = 0; i < n; i++) {
		const json_t *s = json_array_get(argv, i);
		if (!json_is_string(s))
			return false;
		size_t len = json_string_length(s);
		*size += len + 1;
		if (*size > PLAN_KEY_MAX)
			return false;
		*h = hash_bytes(hash_bytes(*h, &len, sizeof(len)), json_string_value(s), len);
	}
	return true;
}

/* The key of the plan of `t` from `partial`; false when it cannot be kept: the target gives facts
 * a shared plan does not stand for (its environment, argv elements that are no strings), or more
 * than PLAN_KEY_MAX bytes of them (what the recipe keeps stays small whatever the input). */
static bool plan_key(const json_t *partial, const struct kilt_target *t, uint64_t *ret)
{
	if (t->environment)
		return false;
	uint64_t h = 14695981039346656037ull;
	h = hash_bytes(h, &partial, sizeof(partial));
	h = hash_bytes(h, &t->members, sizeof(t->members));
	size_t size = 0;
	h = hash_str(h, t->image, &size);
	h = hash_str(h, t->name, &size);
	h = hash_str(h, t->group, &size);
	h = hash_str(h, t->platform, &size);
	if (size > PLAN_KEY_MAX || !hash_argv(&h, t->entrypoint, &size) ||
	    !hash_argv(&h, t->command, &size))
		return false;
	*ret = h;
	return true;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_argv(const json_t *a, const json_t *b)
{
	return a == b || (a && b && json_equal(a, b));
}

/* Whether `cp` is the plan of `t` from `partial` (of key `hash`). Called with the lock held. */
static bool plan_is(const struct cached_plan *cp, uint64_t hash, const json_t *partial,
		    const struct kilt_target *t)
{
	return cp->plan && cp->hash == hash && cp->partial == partial &&
	       cp->members == t->members && same_str(cp->image, t->image) &&
	       same_str(cp->name, t->name) && same_str(cp->group, t->group) &&
	       same_str(cp->platform, t->platform) && same_argv(cp->entrypoint, t->entrypoint) &&
	       same_argv(cp->command, t->command);
}

/* Called with the lock held. */
static const struct cached_plan *find_plan(const struct kilt_recipe *recipe, uint64_t hash,
					   const json_t *partial, const struct kilt_target *t)
{
	unsigned hint = recipe->plan_hint[hash & 0xff];
	if (hint && plan_is(&recipe->plans[hint - 1], hash, partial, t))
		return &recipe->plans[hint - 1];
	for (size_t i = 0; i < PLAN_CACHE; i++)
		if (recipe->plan_hash[i] == hash && plan_is(&recipe->plans[i], hash, partial, t))
			return &recipe->plans[i];
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* The plan of `t` from the template `partial`, kept by the recipe for the targets of the same
 * facts: a shared reference (kilt_target.shared). Returns what kilt_recipe_finalize returns. */
static int shared_plan(struct kilt_recipe *recipe, const json_t *partial,
		       const struct kilt_target *t, json_t **ret_plan, struct kilt_error *err)
{
	uint64_t hash;
	if (!plan_key(partial, t, &hash))
		return kilt_recipe_finalize(partial, t, recipe->name, recipe->hash, true, ret_plan,
					    err);
	pthread_mutex_lock(&recipe->lock);
	const struct cached_plan *have = find_plan(recipe, hash, partial, t);
	if (have) {
		*ret_plan = json_incref(have->plan);
		pthread_mutex_unlock(&recipe->lock);
		return 0;
	}
	pthread_mutex_unlock(&recipe->lock);
	/* Kept past the request that makes it: malloc's, not the request's arena
	 * (kilt-json-arena.h). */
	bool arena = kilt_json_arena_suspend();
	json_t *plan = NULL;
	int r = kilt_recipe_finalize(partial, t, recipe->name, recipe->hash, true, &plan, err);
	if (r != 0) {
		kilt_json_arena_resume(arena);
		return r;
	}
	struct cached_plan cp = {
		.hash = hash,
		.partial = partial,
		.members = t->members,
		.image = dup_or_null(t->image),
		.name = dup_or_null(t->name),
		.group = dup_or_null(t->group),
		.platform = dup_or_null(t->platform),
		/* arrays of strings (plan_key) */
		.entrypoint = t->entrypoint ? kilt_json_copy_argv(t->entrypoint) : NULL,
		.command = t->command ? kilt_json_copy_argv(t->command) : NULL,
		.plan = json_incref(plan),
	};
	pthread_mutex_lock(&recipe->lock);
	if (find_plan(recipe, hash, partial, t)) {
		/* another thread kept the same meanwhile */
		cached_plan_done(&cp);
	} else {
		struct cached_plan *slot = &recipe->plans[recipe->next_plan];
		recipe->plan_hash[recipe->next_plan] = cp.hash;
		recipe->plan_hint[cp.hash & 0xff] = (unsigned char)(recipe->next_plan + 1);
		recipe->next_plan = (recipe->next_plan + 1) % PLAN_CACHE;
		cached_plan_done(slot);
		*slot = cp;
	}
	pthread_mutex_unlock(&recipe->lock);
	kilt_json_arena_resume(arena);
	*ret_plan = plan;
	return 0;
}

void kilt_recipe_free(struct kilt_recipe *recipe)
{
	if (!recipe)
		return;
	for (size_t i = 0; i < recipe->ntemplates; i++) {
		json_decref(recipe->templates[i].config);
		json_decref(recipe->templates[i].partial);
	}
	for (size_t i = 0; i < PLAN_CACHE; i++)
		cached_plan_done(&recipe->plans[i]);
	for (size_t i = 0; i < recipe->nplatforms; i++)
		free(recipe->platforms[i]);
	free(recipe->platforms);
	kilt_hocon_free(recipe->doc);
	json_decref(recipe->params);
	json_decref(recipe->defaults);
	json_decref(recipe->accepted);
	pthread_mutex_destroy(&recipe->lock);
	free(recipe->name);
	free(recipe->hash);
	free(recipe->file);
	free(recipe);
}

static void report_all(const struct recipe_vctx *v, kilt_recipe_error_fn *fn, void *userdata)
{
	if (!fn)
		return;
	for (size_t i = 0; i < v->nerrs; i++)
		fn(&v->errs[i], userdata);
}

static int report_errors(struct kilt_error *errs, size_t n, kilt_recipe_error_fn *fn,
			 void *userdata, struct kilt_error *err)
{
	for (size_t i = 0; fn && i < n; i++)
		fn(&errs[i], userdata);
	if (err)
		*err = errs[0];
	int r = errs[0].code;
	free(errs);
	return r;
}

/* Resolves the document with `ctx` and validates it into a partial plan. On failure the errors
 * have been reported and the first is in `err`. */
static int validate(const struct kilt_hocon *doc, const json_t *ctx, const char *display,
		    bool values_final, kilt_recipe_error_fn *fn, void *userdata,
		    json_t **ret_partial, bool *ret_tainted, struct kilt_error *err)
{
	struct kilt_error e = { 0 };
	struct kilt_hocon_origins *origins = NULL;
	_cleanup_json_ json_t *root = NULL;
	int r = kilt_hocon_resolve(doc, ctx, &origins, &root, &e);
	if (r < 0) {
		if (fn)
			fn(&e, userdata);
		if (err)
			*err = e;
		return r;
	}
	struct recipe_vctx v = { .origins = origins,
				 .file = display,
				 .values_final = values_final };
	r = kilt_recipe_normalize(&v, root, ret_partial);
	if (r < 0) {
		report_all(&v, fn, userdata);
		if (err)
			*err = v.errs[0];
	}
	*ret_tainted = v.tainted;
	kilt_recipe_vctx_done(&v);
	kilt_hocon_origins_free(origins);
	return r;
}

/* `includes`: a recipe read from a file (the operator's) may include files beside it; text from
 * anywhere else (a stack's parameters, a URL, S3, an annotation, the binary) includes nothing,
 * so whoever supplies it cannot make kilt read this machine's files into its output. */
static int load(const char *text, size_t len, const char *display, const char *name_src,
		enum kilt_hocon_includes includes, kilt_recipe_error_fn *fn, void *userdata,
		struct kilt_recipe **ret, struct kilt_error *err)
{
	struct kilt_error e = { 0 };
	struct kilt_hocon *doc = NULL;
	_cleanup_json_ json_t *ctx = NULL;
	_cleanup_json_ json_t *partial = NULL;
	_cleanup_json_ json_t *reads = NULL;
	struct kilt_hocon_limits lim;
	kilt_hocon_limits_default(&lim);
	lim.includes = includes;
	int r = kilt_hocon_parse_string(text, len, display, &lim, &doc, &e);
	if (r < 0) {
		if (fn)
			fn(&e, userdata);
		if (err)
			*err = e;
		return r;
	}
	/* Misspelled substitutions first: ${orignal.x} would otherwise fail as "not set", and
	 * ${?orignal.x} would silently be nothing. */
	struct kilt_error *errs = NULL;
	size_t nerrs = check_names(text, len, display, NULL, &errs, &reads);
	if (nerrs) {
		kilt_hocon_free(doc);
		return report_errors(errs, nerrs, fn, userdata, err);
	}
	free(errs);

	struct kilt_recipe *rec = xcalloc(1, sizeof(*rec));
	rec->doc = doc;
	rec->name = recipe_name_from(name_src);
	rec->hash = sha256_hex(text, len);
	rec->file = xstrdup(display);
	pthread_mutex_init(&rec->lock, NULL);

	struct scan_state st = { .placeholders = json_object() };
	scan_substitutions(text, len, scan_one, &st);
	bool has_include = contains_ci(text, len, "include");
	rec->marks_in_text = memchr(text, RECIPE_MARK, len) || contains_ci(text, len, "u0001");
	rec->fast_ok = !st.reads_objects && !rec->marks_in_text && !has_include;
	rec->reads_env = st.reads_env || has_include;
	rec->reads_meta = st.reads_meta || has_include;

	/* Validation context: every fact present (markers), metadata and environment empty,
	 * placeholders for required values only known later. */
	ctx = json_object();
	json_t *orig = marker_original(HAS_ALL);
	json_object_set_new(orig, "environment", json_object());
	json_object_set_new(orig, "environment_variables", json_object());
	json_object_set_new(orig, "metadata", json_object());
	json_object_set_new(ctx, "original", orig);
	bool placeholders = json_object_size(st.placeholders) > 0;
	json_object_update_recursive(ctx, st.placeholders);
	json_decref(st.placeholders);
	if (!json_object_get(ctx, "config"))
		json_object_set_new(ctx, "config", json_object());

	bool tainted = false;
	r = validate(doc, ctx, display, !st.optional, fn, userdata, &partial, &tainted, err);
	if (r < 0)
		goto fail;

	/* Declared parameters: every config key read must be one, and defaults are validated as
	 * the values they are. */
	rec->defaults = json_object();
	rec->params = json_incref(json_object_get(partial, "parameters"));
	json_object_del(partial, "parameters");
	if (rec->params) {
		nerrs = check_names(text, len, display, rec->params, &errs, NULL);
		if (nerrs) {
			r = report_errors(errs, nerrs, fn, userdata, err);
			goto fail;
		}
		free(errs);
		rec->accepted = json_object();
		const char *key;
		json_t *p;
		json_object_foreach (rec->params, key, p) {
			json_object_set_new(rec->accepted, key, json_true());
			const json_t *def = json_object_get(p, "default");
			if (def)
				json_object_set_new(rec->defaults, key, json_deep_copy(def));
		}
		if (json_object_size(rec->defaults)) {
			json_object_update(json_object_get(ctx, "config"), rec->defaults);
			json_decref(partial);
			partial = NULL;
			r = validate(doc, ctx, display, !st.optional, fn, userdata, &partial,
				     &tainted, err);
			if (r < 0)
				goto fail;
			json_object_del(partial, "parameters");
		}
	} else if (!has_include) {
		/* Undeclared: the keys the recipe's own text reads (an include could read more). */
		rec->accepted = json_incref(reads);
	}

	json_t *plats = json_object_get(partial, "platforms");
	rec->platforms = xcalloc(json_array_size(plats) + 1, sizeof(char *));
	size_t i;
	json_t *el;
	json_array_foreach (plats, i, el)
		if (!strchr(json_string_value(el), RECIPE_MARK))
			rec->platforms[rec->nplatforms++] = xstrdup(json_string_value(el));

	/* Without placeholders the validation resolution is exactly the template for "every fact
	 * known, no config": keep it. */
	if (rec->fast_ok && !placeholders && json_object_size(rec->defaults) == 0) {
		struct template *tp = &rec->templates[rec->ntemplates++];
		tp->mask = HAS_ALL;
		tp->config = json_object();
		tp->partial = tainted ? NULL : json_incref(partial);
	}
	*ret = rec;
	return 0;
fail:
	kilt_recipe_free(rec);
	return r;
}

int kilt_recipe_load_string(const char *text, size_t len, const char *name,
			    struct kilt_recipe **ret, struct kilt_error *err)
{
	return load(text, len, name ? name : "inline", name, KILT_HOCON_INCLUDE_NONE, NULL, NULL,
		    ret, err);
}

static int read_recipe(const char *path, char **ret, size_t *ret_len, struct kilt_error *err)
{
	struct kilt_hocon_limits lim;
	kilt_hocon_limits_default(&lim);
	int r = kilt_read_file(path, lim.max_input_bytes, ret, ret_len);
	if (r == -EFBIG)
		return kilt_error_set(err, r, path, 0, 0, "larger than %zu bytes",
				      lim.max_input_bytes);
	if (r < 0)
		return kilt_error_set(err, r, path, 0, 0, "cannot read: %s", strerror(-r));
	return 0;
}

int kilt_recipe_load_file(const char *path, struct kilt_recipe **ret, struct kilt_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_recipe(path, &text, &len, err);
	if (r < 0)
		return r;
	return load(text, len, path, path, KILT_HOCON_INCLUDE_BESIDE, NULL, NULL, ret, err);
}

int kilt_recipe_check_file(const char *path, kilt_recipe_error_fn *fn, void *userdata)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct kilt_error e = { 0 };
	int r = read_recipe(path, &text, &len, &e);
	if (r < 0) {
		if (fn)
			fn(&e, userdata);
		return r;
	}
	struct kilt_recipe *rec = NULL;
	r = load(text, len, path, path, KILT_HOCON_INCLUDE_BESIDE, fn, userdata, &rec, NULL);
	kilt_recipe_free(rec);
	return r;
}

const char *kilt_recipe_name(const struct kilt_recipe *recipe)
{
	return recipe->name;
}

const char *kilt_recipe_hash(const struct kilt_recipe *recipe)
{
	return recipe->hash;
}

bool kilt_recipe_reads_environment(const struct kilt_recipe *recipe)
{
	return recipe->reads_env;
}

bool kilt_recipe_reads_metadata(const struct kilt_recipe *recipe)
{
	return recipe->reads_meta;
}

bool kilt_recipe_supports_platform(const struct kilt_recipe *recipe, const char *platform)
{
	if (!platform || recipe->nplatforms == 0)
		return true;
	char norm[64];
	if (!kilt_recipe_platform_normalize(platform, norm, sizeof(norm)))
		return false;
	for (size_t i = 0; i < recipe->nplatforms; i++) {
		const char *p = recipe->platforms[i];
		size_t n = strlen(p);
		if (strcmp(p, norm) == 0)
			return true;
		/* A recipe platform without a variant covers every variant. */
		if (strncmp(p, norm, n) == 0 && norm[n] == '/' && strchr(p, '/') == strrchr(p, '/'))
			return true;
	}
	return false;
}

/* ---- evaluate ------------------------------------------------------------------------------- */

int kilt_recipe_check_config(const struct kilt_recipe *recipe, const json_t *config,
			     struct kilt_error *err)
{
	if (config && !json_is_object(config))
		return kilt_error_setf(err, -EINVAL, "recipe %s: config must be an object",
				       recipe->name);
	const char *key;
	json_t *val;
	if (recipe->accepted) {
		json_object_foreach ((json_t *)(uintptr_t)config, key, val) {
			if (json_object_get(recipe->accepted, key))
				continue;
			_cleanup_free_ const char **names = key_names(recipe->accepted);
			const char *s = closest(key, names, suggest_limit(key));
			struct kbuf b;
			kbuf_init(&b, 2048);
			list_names(&b, names);
			if (names[0])
				kilt_error_setf(
					err, -EINVAL,
					"config.%s is not a parameter of recipe %s%s%s%s; its "
					"parameters are: %s",
					key, recipe->name, s ? " (did you mean '" : "", s ? s : "",
					s ? "'?)" : "", b.data);
			else
				kilt_error_setf(
					err, -EINVAL,
					"config.%s is not a parameter of recipe %s: it reads "
					"no config.* keys",
					key, recipe->name);
			kbuf_done(&b);
			return -EINVAL;
		}
	}
	json_object_foreach (recipe->params, key, val) {
		if (!json_is_true(json_object_get(val, "required")) || json_object_get(config, key))
			continue;
		const char *d = json_string_value(json_object_get(val, "description"));
		return kilt_error_setf(err, -EINVAL,
				       "recipe %s needs config.%s, which was not given%s%s",
				       recipe->name, key, d ? ": " : "", d ? d : "");
	}
	return 0;
}

const json_t *kilt_recipe_parameters(const struct kilt_recipe *recipe)
{
	return recipe->params;
}

/* What both ways check first: the config (known keys, required ones given) and a supported
 * platform. `ret_config` receives the config the recipe sees: defaults, then what was given. */
static int precheck(const struct kilt_recipe *recipe, const struct kilt_target *target,
		    const json_t *config, json_t **ret_config, struct kilt_error *err)
{
	int r = kilt_recipe_check_config(recipe, config, err);
	if (r < 0)
		return r;
	if (target->platform && !kilt_recipe_supports_platform(recipe, target->platform)) {
		struct kbuf b;
		kbuf_init(&b, 1024);
		for (size_t i = 0; i < recipe->nplatforms; i++)
			kbuf_printf(&b, "%s%s", i ? ", " : "", recipe->platforms[i]);
		kilt_error_setf(err, -ENOTSUP,
				"recipe %s does not support platform %s of container %s (it "
				"supports %s)",
				recipe->name, target->platform,
				target->name ? target->name : "(unnamed)", b.data ? b.data : "");
		kbuf_done(&b);
		return -ENOTSUP;
	}
	if (json_object_size(recipe->defaults) == 0) {
		*ret_config = config ? json_incref((json_t *)(uintptr_t)config) : NULL;
		return 0;
	}
	json_t *eff = json_deep_copy(recipe->defaults);
	if (config)
		json_object_update(eff, (json_t *)(uintptr_t)config);
	*ret_config = eff;
	return 0;
}

static int resolve_full(const struct kilt_recipe *recipe, const struct kilt_target *target,
			const json_t *config, bool *ret_tainted, json_t **ret_plan,
			struct kilt_error *err)
{
	int r;
	_cleanup_json_ json_t *ctx = real_context(target, config);
	_cleanup_json_ json_t *root = NULL;
	r = kilt_hocon_resolve(recipe->doc, ctx, NULL, &root, err);
	if (r < 0) {
		explain_unknown_fact(err, target);
		return err ? err->code : r;
	}
	struct recipe_vctx v = { .file = recipe->file };
	_cleanup_json_ json_t *partial = NULL;
	r = kilt_recipe_normalize(&v, root, &partial);
	*ret_tainted = v.tainted;
	kilt_recipe_vctx_done(&v);
	if (r < 0) {
		/* Resolve again, this time recording where values come from, to locate the error. */
		struct kilt_hocon_origins *origins = NULL;
		_cleanup_json_ json_t *again = NULL;
		struct recipe_vctx lv = { .file = recipe->file };
		if (kilt_hocon_resolve(recipe->doc, ctx, &origins, &again, NULL) == 0)
			lv.origins = origins;
		json_t *ignored = NULL;
		if (kilt_recipe_normalize(&lv, again ? again : root, &ignored) < 0 && err)
			*err = lv.errs[0];
		json_decref(ignored);
		kilt_recipe_vctx_done(&lv);
		kilt_hocon_origins_free(origins);
		return r;
	}
	return kilt_recipe_finalize(partial, target, recipe->name, recipe->hash, false, ret_plan,
				    err);
}

/* ---- argv elements that are no words ------------------------------------------------------ */

/* A container's entrypoint or command may hold elements that are not strings: an intrinsic that
 * stands for a word (ECS Command ["-c", {"Ref": "P"}]). The fast way splices the target's argv
 * into the plan as it is; so does the full way: such elements stand in the resolution as marker
 * words (RECIPE_MARK, MARK_WORD, their index) and are put back in the plan. When a marker ends up
 * anywhere but as a whole word (the recipe interpreted it), the element is resolved as it is,
 * which fails the way the fast way's fallback does. */
static bool has_odd_words(const json_t *argv)
{
	size_t i;
	json_t *el;
	json_array_foreach (argv, i, el)
		if (!json_is_string(el))
			return true;
	return false;
}

static json_t *stand_in_words(const json_t *argv, json_t *words)
{
	if (!json_is_array(argv))
		return NULL;
	json_t *out = json_array();
	size_t i;
	json_t *el;
	json_array_foreach (argv, i, el) {
		if (json_is_string(el)) {
			json_array_append(out, el);
			continue;
		}
		char mark[32];
		snprintf(mark, sizeof(mark), "%c%c%zu", RECIPE_MARK, MARK_WORD,
			 json_array_size(words));
		json_array_append(words, el);
		json_array_append_new(out, json_string(mark));
	}
	return out;
}

/* Replaces every whole marker word in `v` by its element; false when a marker stands anywhere
 * else (inside a longer string, or as a key). */
static bool put_back_words(json_t *v, const json_t *words)
{
	if (json_is_array(v) || json_is_object(v)) {
		size_t i;
		json_t *el;
		if (json_is_array(v)) {
			json_array_foreach (v, i, el) {
				const char *s = json_string_value(el);
				if (s && s[0] == RECIPE_MARK && s[1] == MARK_WORD) {
					char *end = NULL;
					unsigned long k = strtoul(s + 2, &end, 10);
					if (!end || *end || k >= json_array_size(words))
						return false;
					json_array_set(v, i, json_array_get(words, k));
				} else if (!put_back_words(el, words)) {
					return false;
				}
			}
			return true;
		}
		const char *k;
		json_object_foreach (v, k, el)
			if (strchr(k, RECIPE_MARK) || !put_back_words(el, words))
				return false;
		return true;
	}
	return !json_is_string(v) ||
	       !memchr(json_string_value(v), RECIPE_MARK, json_string_length(v));
}

static int evaluate_full(const struct kilt_recipe *recipe, const struct kilt_target *target,
			 const json_t *config, json_t **ret_plan, struct kilt_error *err)
{
	bool tainted = false;
	if (!recipe->marks_in_text &&
	    (has_odd_words(target->entrypoint) || has_odd_words(target->command))) {
		_cleanup_json_ json_t *words = json_array();
		_cleanup_json_ json_t *ep = stand_in_words(target->entrypoint, words);
		_cleanup_json_ json_t *cmd = stand_in_words(target->command, words);
		struct kilt_target t = *target;
		t.entrypoint = ep;
		t.command = cmd;
		_cleanup_json_ json_t *plan = NULL;
		struct kilt_error ignored = { 0 };
		if (resolve_full(recipe, &t, config, &tainted, &plan, &ignored) == 0 && !tainted &&
		    put_back_words(plan, words)) {
			*ret_plan = steal_pointer(&plan);
			return 0;
		}
	}
	return resolve_full(recipe, target, config, &tainted, ret_plan, err);
}

int kilt_recipe_evaluate_full(const struct kilt_recipe *recipe, const struct kilt_target *target,
			      const json_t *config, json_t **ret_plan, struct kilt_error *err)
{
	_cleanup_json_ json_t *eff = NULL;
	int r = precheck(recipe, target, config, &eff, err);
	if (r < 0)
		return r;
	return evaluate_full(recipe, target, eff, ret_plan, err);
}

/* Resolves the document with markers for the facts in `mask` and the real config. Returns the
 * partial plan, or NULL when this combination must take the full way. */
static json_t *compile_template(const struct kilt_recipe *recipe, unsigned mask,
				const json_t *config)
{
	if (config && kilt_recipe_has_marker(config))
		return NULL;
	_cleanup_json_ json_t *ctx = json_object();
	json_object_set_new(ctx, "original", marker_original(mask));
	if (config)
		set_copy(ctx, "config", config);
	_cleanup_json_ json_t *root = NULL;
	if (kilt_hocon_resolve(recipe->doc, ctx, NULL, &root, NULL) < 0)
		return NULL;
	struct recipe_vctx v = { .file = recipe->file };
	json_t *partial = NULL;
	int r = kilt_recipe_normalize(&v, root, &partial);
	bool tainted = v.tainted;
	kilt_recipe_vctx_done(&v);
	if (r < 0 || tainted) {
		json_decref(partial);
		return NULL;
	}
	return partial;
}

static bool same_config(const json_t *a, const json_t *b)
{
	if (!b)
		return json_object_size(a) == 0;
	return json_equal(a, b);
}

/* Finds or makes the template for (mask, config). Returns false when there is none to use. */
static bool get_template(struct kilt_recipe *recipe, unsigned mask, const json_t *config,
			 const json_t **ret_partial)
{
	pthread_mutex_lock(&recipe->lock);
	for (size_t i = 0; i < recipe->ntemplates; i++) {
		const struct template *tp = &recipe->templates[i];
		if (tp->mask == mask && same_config(tp->config, config)) {
			*ret_partial = tp->partial;
			pthread_mutex_unlock(&recipe->lock);
			return tp->partial != NULL;
		}
	}
	bool full = recipe->ntemplates >= MAX_TEMPLATES;
	pthread_mutex_unlock(&recipe->lock);
	if (full)
		return false;

	/* The template outlives the request that makes it: malloc's, not the request's arena
	 * (kilt-json-arena.h). */
	bool arena = kilt_json_arena_suspend();
	json_t *partial = compile_template(recipe, mask, config);
	pthread_mutex_lock(&recipe->lock);
	/* Another thread may have made it meanwhile; its copy is as good as ours. */
	for (size_t i = 0; i < recipe->ntemplates; i++) {
		const struct template *tp = &recipe->templates[i];
		if (tp->mask == mask && same_config(tp->config, config)) {
			json_decref(partial);
			kilt_json_arena_resume(arena);
			*ret_partial = tp->partial;
			pthread_mutex_unlock(&recipe->lock);
			return tp->partial != NULL;
		}
	}
	if (recipe->ntemplates < MAX_TEMPLATES) {
		struct template *tp = &recipe->templates[recipe->ntemplates++];
		tp->mask = mask;
		tp->config = config ? json_deep_copy(config) : json_object();
		tp->partial = partial;
		partial = NULL;
		*ret_partial = tp->partial;
	}
	pthread_mutex_unlock(&recipe->lock);
	json_decref(partial);
	kilt_json_arena_resume(arena);
	return *ret_partial != NULL;
}

int kilt_recipe_evaluate(const struct kilt_recipe *recipe, const struct kilt_target *target,
			 const json_t *config, json_t **ret_plan, struct kilt_error *err)
{
	_cleanup_json_ json_t *eff = NULL;
	int r = precheck(recipe, target, config, &eff, err);
	if (r < 0)
		return r;
	config = eff;
	if (recipe->fast_ok) {
		/* The cache is the only mutable part of a recipe; it has its own lock. */
		struct kilt_recipe *mut = (struct kilt_recipe *)(uintptr_t)recipe;
		const json_t *partial = NULL;
		if (get_template(mut, fact_mask(target), config, &partial)) {
			r = target->shared
				    ? shared_plan(mut, partial, target, ret_plan, err)
				    : kilt_recipe_finalize(partial, target, recipe->name,
							   recipe->hash, true, ret_plan, err);
			if (r <= 0)
				return r;
		}
	}
	return evaluate_full(recipe, target, config, ret_plan, err);
}
