/* SPDX-License-Identifier: Apache-2.0 */
/* Validation of a resolved recipe: both spellings (deploy/patch and the original kilt's
 * build/runtime) are checked key by key and normalized into one partial plan; every problem
 * becomes a located error ("recipe.conf:4:9: deploy.mount[0]: image is missing ..."). */
#include <ctype.h>
#include <stdarg.h>

#include "recipe-private.h"

#define PATH_MAX_LEN 512

/* ---- errors and places ---------------------------------------------------------------------- */

void kilt_recipe_vctx_done(struct recipe_vctx *v)
{
	free(v->errs);
	v->errs = NULL;
	v->nerrs = v->cap = 0;
}

/* Drops the last component of a HOCON path ("a.b[2]" -> "a.b", "a.\"x.y\"" -> "a"). */
static bool path_parent(char *p)
{
	size_t n = strlen(p);
	if (n == 0)
		return false;
	if (p[n - 1] == ']') {
		char *o = strrchr(p, '[');
		if (!o)
			return false;
		*o = '\0';
		return true;
	}
	size_t i = n;
	if (p[n - 1] == '"') {
		/* Find the opening quote, skipping escaped ones. */
		i = n - 1;
		while (i > 0) {
			i--;
			if (p[i] == '"' && (i == 0 || p[i - 1] != '\\'))
				break;
		}
	} else {
		while (i > 0 && p[i - 1] != '.' && p[i - 1] != ']')
			i--;
	}
	if (i > 0 && p[i - 1] == '.')
		i--;
	p[i] = '\0';
	return true;
}

static void locate(const struct recipe_vctx *v, const char *path, const char **file, unsigned *line,
		   unsigned *col)
{
	*file = v->file;
	*line = *col = 0;
	if (!v->origins)
		return;
	char p[PATH_MAX_LEN];
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		const char *f = NULL;
		unsigned l = 0, c = 0;
		if (p[0] && kilt_hocon_origins_get(v->origins, p, &f, &l, &c)) {
			if (f)
				*file = f;
			*line = l;
			*col = c;
			return;
		}
		if (!path_parent(p))
			return;
	}
}

static void verr(struct recipe_vctx *v, int code, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void verr(struct recipe_vctx *v, int code, const char *path, const char *fmt, ...)
{
	if (v->nerrs >= RECIPE_MAX_ERRORS)
		return;
	if (v->nerrs == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 4;
		v->errs = xrealloc(v->errs, v->cap * sizeof(*v->errs));
	}
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *file;
	unsigned line, col;
	locate(v, path, &file, &line, &col);
	struct kilt_error *e = &v->errs[v->nerrs++];
	memset(e, 0, sizeof(*e));
	if (path[0])
		kilt_error_set(e, code, file, line, col, "%s: %s", path, msg);
	else
		kilt_error_set(e, code, file, line, col, "%s", msg);
}

/* ---- paths and names ------------------------------------------------------------------------ */

static bool key_needs_quotes(const char *k)
{
	if (!*k)
		return true;
	for (const char *p = k; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return true;
	return false;
}

static void path_key(char *buf, size_t size, const char *parent, const char *key)
{
	const char *dot = parent[0] ? "." : "";
	if (!key_needs_quotes(key)) {
		snprintf(buf, size, "%s%s%s", parent, dot, key);
		return;
	}
	struct kbuf b;
	kbuf_init(&b, size > 0 ? size - 1 : 0);
	kbuf_printf(&b, "%s%s\"", parent, dot);
	for (const char *p = key; *p; p++) {
		if (*p == '"' || *p == '\\')
			kbuf_addc(&b, '\\');
		kbuf_addc(&b, *p);
	}
	kbuf_addc(&b, '"');
	snprintf(buf, size, "%s", b.data ? b.data : "");
	kbuf_done(&b);
}

static void path_index(char *buf, size_t size, const char *parent, size_t i)
{
	int n = snprintf(buf, size, "%s[%zu]", parent, i);
	if (n < 0 && size > 0)
		buf[0] = '\0'; /* cannot happen with these formats; truncation is acceptable */
}

static const char *type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "a value";
}

unsigned kilt_recipe_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 100;
	unsigned row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
			unsigned best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const char *suggest(const char *key, const char *const *names)
{
	const char *best = NULL;
	unsigned best_d = 100;
	for (size_t i = 0; names[i]; i++) {
		unsigned d = kilt_recipe_edit_distance(key, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	size_t len = strlen(key);
	unsigned limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
	return best_d <= limit ? best : NULL;
}

static bool in_list(const char *key, const char *const *names)
{
	for (size_t i = 0; names[i]; i++)
		if (strcmp(key, names[i]) == 0)
			return true;
	return false;
}

static void check_keys(struct recipe_vctx *v, const json_t *obj, const char *path,
		       const char *const *names, const char *what)
{
	const char *key;
	json_t *val;
	json_object_foreach ((json_t *)(uintptr_t)obj, key, val) {
		if (in_list(key, names))
			continue;
		char p[PATH_MAX_LEN];
		path_key(p, sizeof(p), path, key);
		if (!path[0] && (strcmp(key, "config") == 0 || strcmp(key, "original") == 0)) {
			verr(v, -EINVAL, p,
			     "a recipe does not set '%s': it reads it as ${%s.x} (the values come "
			     "from "
			     "the %s); put the recipe's own values under 'vars'",
			     key, key,
			     strcmp(key, "config") == 0 ? "operator" : "target container");
			continue;
		}
		const char *s = suggest(key, names);
		if (s)
			verr(v, -EINVAL, p, "unknown key '%s' in %s (did you mean '%s'?)", key,
			     what, s);
		else
			verr(v, -EINVAL, p, "unknown key '%s' in %s", key, what);
	}
}

/* Returns the value of `a`, or of its alias `b` (the original kilt's spelling); both is an error.
 * `ret_path` receives the path of the key used. */
static const json_t *get_alias(struct recipe_vctx *v, const json_t *obj, const char *path,
			       const char *a, const char *b, char *ret_path, size_t size)
{
	const json_t *va = json_object_get(obj, a);
	const json_t *vb = b ? json_object_get(obj, b) : NULL;
	if (va && vb) {
		char p[PATH_MAX_LEN];
		path_key(p, sizeof(p), path, b);
		verr(v, -EINVAL, p, "both '%s' and '%s' are set; they mean the same, keep one", a,
		     b);
	}
	if (ret_path)
		path_key(ret_path, size, path, va ? a : b ? b : a);
	return va ? va : vb;
}

/* True when `s` holds a marker: its content is not known yet, so checks are skipped and the
 * template that produced it cannot be used (the caller falls back to a full resolution). */
static bool opaque(struct recipe_vctx *v, const char *s)
{
	if (strchr(s, RECIPE_MARK)) {
		v->tainted = true;
		return true;
	}
	return false;
}

static bool is_abs_path(const char *s)
{
	return s[0] == '/';
}

/* An absolute path in the form used to tell paths apart: "//" and "/./" collapsed, no trailing
 * '/' (so "/x", "/x/" and "//x/." are one path). Owned. ".." is left as written. */
static char *path_canonical(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(n + 2);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		while (i < n && s[i] == '/')
			i++;
		size_t j = i;
		while (j < n && s[j] != '/')
			j++;
		if (j > i && !(j - i == 1 && s[i] == '.')) {
			out[o++] = '/';
			memcpy(out + o, s + i, j - i);
			o += j - i;
		}
		i = j;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

/* ---- values --------------------------------------------------------------------------------- */

/* A scalar as an argv word or environment value; NULL for non-scalars. */
static json_t *scalar_string(const json_t *j)
{
	char buf[64];
	switch (json_typeof(j)) {
	case JSON_STRING:
		return json_stringn_nocheck(json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		return json_string(buf);
	case JSON_REAL: {
		char *s = kilt_json_dumps(j, JSON_ENCODE_ANY);
		json_t *r = json_string(s ? s : "0");
		free(s);
		return r;
	}
	case JSON_TRUE:
		return json_string("true");
	case JSON_FALSE:
		return json_string("false");
	default:
		return NULL;
	}
}

/* exec would cut an argv word or an environment value at a NUL byte. */
static bool has_nul(const json_t *s)
{
	return json_is_string(s) && memchr(json_string_value(s), '\0', json_string_length(s));
}

/* An argv: a list of scalars (exact), or a string split into words like a shell would. */
static json_t *norm_argv(struct recipe_vctx *v, const json_t *val, const char *path)
{
	if (json_is_array(val)) {
		json_t *out = json_array();
		size_t i;
		json_t *el;
		json_array_foreach (val, i, el) {
			json_t *s = scalar_string(el);
			if (!s || has_nul(s)) {
				char p[PATH_MAX_LEN];
				path_index(p, sizeof(p), path, i);
				if (s)
					verr(v, -EINVAL, p, "an argv word cannot hold a NUL byte");
				else
					verr(v, -EINVAL, p,
					     "expected a string (an argv word), got %s",
					     type_name(el));
				json_decref(s);
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, s);
		}
		return out;
	}
	if (json_is_string(val)) {
		const char *s = json_string_value(val);
		if (opaque(v, s)) {
			json_t *out = json_array();
			json_array_append_new(out, json_string_nocheck(s));
			return out;
		}
		struct kilt_error e = { 0 };
		json_t *out = NULL;
		if (kilt_shellwords_split(s, json_string_length(val), &out, &e) < 0) {
			verr(v, e.code, path, "cannot split the command line: %s", e.msg);
			return NULL;
		}
		return out;
	}
	verr(v, -EINVAL, path, "expected a list of strings or a command line string, got %s",
	     type_name(val));
	return NULL;
}

/* A name, path, image reference, URL...: every one of them would be cut at a NUL byte (the
 * plan, the ECS JSON and the OS all read C strings), so a NUL is an error here. */
static const char *want_string(struct recipe_vctx *v, const json_t *val, const char *path)
{
	if (has_nul(val)) {
		verr(v, -EINVAL, path, "cannot hold a NUL byte (\\u0000)");
		return NULL;
	}
	if (json_is_string(val))
		return json_string_value(val);
	verr(v, -EINVAL, path, "expected a string, got %s", type_name(val));
	return NULL;
}

static bool env_name_ok(const char *n, size_t len)
{
	return n[0] && !strchr(n, '=') && strlen(n) == len;
}

/* Environment: an object NAME -> value, in the recipe's order, as [{name, value}]. */
static json_t *norm_env(struct recipe_vctx *v, const json_t *val, const char *path)
{
	if (!json_is_object(val)) {
		verr(v, -EINVAL, path, "expected an object NAME: value, got %s", type_name(val));
		return NULL;
	}
	json_t *out = json_array();
	const char *key;
	size_t key_len;
	json_t *el;
	json_object_keylen_foreach((json_t *)(uintptr_t)val, key, key_len, el)
	{
		char p[PATH_MAX_LEN];
		path_key(p, sizeof(p), path, key);
		if (!env_name_ok(key, key_len)) {
			verr(v, -EINVAL, p, "'%s' is not a valid environment variable name%s", key,
			     strlen(key) != key_len ? " (it holds a NUL byte)" : "");
			continue;
		}
		json_t *s;
		if (json_is_object(el))
			s = json_deep_copy(el); /* an intrinsic (Ref, Fn::Sub...) kept as it is */
		else
			s = scalar_string(el);
		if (!s) {
			verr(v, -EINVAL, p, "expected a string, got %s", type_name(el));
			continue;
		}
		if (has_nul(s)) {
			verr(v, -EINVAL, p, "an environment value cannot hold a NUL byte");
			json_decref(s);
			continue;
		}
		json_t *pair = json_object();
		json_object_set_new_nocheck(pair, "name", json_string(key));
		json_object_set_new_nocheck(pair, "value", s);
		json_array_append_new(out, pair);
	}
	return out;
}

static bool valid_name(const char *s)
{
	if (!*s || strlen(s) > 255)
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return false;
	return true;
}

/* ---- deploy / build ------------------------------------------------------------------------- */

/* The entrypoint, command and environment of a container (deploy) or a mount's sidecar. */
static void norm_process(struct recipe_vctx *v, const json_t *obj, const char *path, json_t *out)
{
	char p[PATH_MAX_LEN];
	const json_t *ep = get_alias(v, obj, path, "entrypoint", "entry_point", p, sizeof(p));
	if (ep) {
		json_t *a = norm_argv(v, ep, p);
		if (a)
			json_object_set_new_nocheck(out, "entrypoint", a);
	}
	const json_t *cmd = json_object_get(obj, "command");
	if (cmd) {
		path_key(p, sizeof(p), path, "command");
		json_t *a = norm_argv(v, cmd, p);
		if (a)
			json_object_set_new_nocheck(out, "command", a);
	}
	const json_t *env =
		get_alias(v, obj, path, "environment", "environment_variables", p, sizeof(p));
	if (env) {
		json_t *e = norm_env(v, env, p);
		if (e)
			json_object_set_new_nocheck(out, "environment", e);
	}
}

static const char *const mount_keys[] = {
	"name",	   "image",	  "volume",
	"volumes", "entrypoint",  "entry_point",
	"command", "environment", "environment_variables",
	NULL,
};

static json_t *norm_mount(struct recipe_vctx *v, const json_t *m, const char *path, size_t index,
			  json_t *seen_names, json_t *seen_volumes)
{
	if (!json_is_object(m)) {
		verr(v, -EINVAL, path, "expected a mount object { image, volume(s), ... }, got %s",
		     type_name(m));
		return NULL;
	}
	check_keys(v, m, path, mount_keys, "a mount");
	json_t *out = json_object();
	char p[PATH_MAX_LEN];
	size_t before = v->nerrs;

	const json_t *name = json_object_get(m, "name");
	path_key(p, sizeof(p), path, "name");
	if (name) {
		const char *s = want_string(v, name, p);
		if (s && !opaque(v, s) && !valid_name(s))
			verr(v, -EINVAL, p,
			     "'%s' is not a valid container name (letters, digits, '-' and '_', at "
			     "most 255)",
			     s);
		if (s)
			json_object_set_new_nocheck(out, "name", json_string(s));
	} else {
		char def[64];
		snprintf(def, sizeof(def), "kilt-mount-%zu", index);
		json_object_set_new_nocheck(out, "name", json_string(def));
	}
	const char *nm = json_string_value(json_object_get(out, "name"));
	if (nm && !strchr(nm, RECIPE_MARK)) {
		if (json_object_get(seen_names, nm))
			verr(v, -EINVAL, p, "mount name '%s' is used twice", nm);
		json_object_set_new(seen_names, nm, json_true());
	}

	const json_t *image = json_object_get(m, "image");
	path_key(p, sizeof(p), path, "image");
	if (!image) {
		verr(v, -EINVAL, path,
		     "image is missing: a mount needs the image that holds the files it shares");
	} else {
		const char *s = want_string(v, image, p);
		struct kilt_error e = { 0 };
		if (s && !opaque(v, s) && !s[0])
			verr(v, -EINVAL, p, "the image reference is empty");
		else if (s && v->values_final && !opaque(v, s) &&
			 kilt_recipe_image_check(s, &e) < 0)
			verr(v, -EINVAL, p, "%s", e.msg);
		if (s)
			json_object_set_new_nocheck(out, "image", json_string(s));
	}

	const json_t *volume = json_object_get(m, "volume");
	const json_t *volumes = json_object_get(m, "volumes");
	json_t *vols = json_array();
	if (volume && volumes) {
		path_key(p, sizeof(p), path, "volumes");
		verr(v, -EINVAL, p, "both 'volume' and 'volumes' are set; keep one");
	} else if (!volume && !volumes) {
		verr(v, -EINVAL, path,
		     "volume is missing: say which path of the image the container gets "
		     "(volume: /path or volumes: [ ... ])");
	} else {
		const json_t *src = volume ? volume : volumes;
		path_key(p, sizeof(p), path, volume ? "volume" : "volumes");
		json_t *list = NULL;
		if (json_is_string(src)) {
			list = json_array();
			json_array_append(list, (json_t *)(uintptr_t)src);
		} else if (json_is_array(src)) {
			list = json_incref((json_t *)(uintptr_t)src);
		} else {
			verr(v, -EINVAL, p, "expected a path or a list of paths, got %s",
			     type_name(src));
		}
		if (list && json_array_size(list) == 0)
			verr(v, -EINVAL, p, "the list of volumes is empty");
		size_t i;
		json_t *el;
		json_array_foreach (list, i, el) {
			char pi[PATH_MAX_LEN];
			if (json_is_string(src))
				snprintf(pi, sizeof(pi), "%s", p);
			else
				path_index(pi, sizeof(pi), p, i);
			const char *s = want_string(v, el, pi);
			if (!s)
				continue;
			if (!opaque(v, s)) {
				if (!is_abs_path(s)) {
					verr(v, -EINVAL, pi, "'%s' is not an absolute path", s);
					continue;
				}
				_cleanup_free_ char *c = path_canonical(s);
				const json_t *seen = json_object_get(seen_volumes, c);
				if (seen && json_integer_value(seen) == (json_int_t)index)
					verr(v, -EINVAL, pi, "volume '%s' is listed twice%s%s%s", s,
					     strcmp(s, c) ? " (as '" : "", strcmp(s, c) ? c : "",
					     strcmp(s, c) ? "')" : "");
				else if (seen)
					verr(v, -EINVAL, pi,
					     "volume '%s' is provided by two mounts%s%s%s", s,
					     strcmp(s, c) ? " (as '" : "", strcmp(s, c) ? c : "",
					     strcmp(s, c) ? "')" : "");
				else
					json_object_set_new(seen_volumes, c,
							    json_integer((json_int_t)index));
			}
			json_array_append_new(vols, json_string(s));
		}
		json_decref(list);
	}
	json_object_set_new_nocheck(out, "volumes", vols);

	norm_process(v, m, path, out);
	if (v->nerrs != before) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static const char *const capability_names[] = {
	"AUDIT_CONTROL",   "AUDIT_READ",   "AUDIT_WRITE",
	"BLOCK_SUSPEND",   "BPF",	   "CHECKPOINT_RESTORE",
	"CHOWN",	   "DAC_OVERRIDE", "DAC_READ_SEARCH",
	"FOWNER",	   "FSETID",	   "IPC_LOCK",
	"IPC_OWNER",	   "KILL",	   "LEASE",
	"LINUX_IMMUTABLE", "MAC_ADMIN",	   "MAC_OVERRIDE",
	"MKNOD",	   "NET_ADMIN",	   "NET_BIND_SERVICE",
	"NET_BROADCAST",   "NET_RAW",	   "PERFMON",
	"SETFCAP",	   "SETGID",	   "SETPCAP",
	"SETUID",	   "SYSLOG",	   "SYS_ADMIN",
	"SYS_BOOT",	   "SYS_CHROOT",   "SYS_MODULE",
	"SYS_NICE",	   "SYS_PACCT",	   "SYS_PTRACE",
	"SYS_RAWIO",	   "SYS_RESOURCE", "SYS_TIME",
	"SYS_TTY_CONFIG",  "WAKE_ALARM",   NULL,
};

static int cmp_json_strings(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
		      json_string_value(*(json_t *const *)b));
}

/* Sorts an array of strings and drops duplicates. */
static json_t *sorted_unique(json_t *arr)
{
	size_t n = json_array_size(arr);
	json_t **v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), cmp_json_strings);
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(json_string_value(v[i]), json_string_value(v[i - 1])) != 0)
			json_array_append(out, v[i]);
	free(v);
	json_decref(arr);
	return out;
}

/* A string or a list of strings: each word goes to `one` with its own path, which appends what
 * it makes of it to `out`; the result is sorted and unique. */
static json_t *
norm_word_list(struct recipe_vctx *v, const json_t *val, const char *path, const char *expected,
	       void (*one)(struct recipe_vctx *v, const char *s, const char *p, json_t *out))
{
	if (!json_is_string(val) && !json_is_array(val)) {
		verr(v, -EINVAL, path, "expected %s, got %s", expected, type_name(val));
		return NULL;
	}
	bool single = json_is_string(val);
	size_t n = single ? 1 : json_array_size(val);
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++) {
		char p[PATH_MAX_LEN];
		if (single)
			snprintf(p, sizeof(p), "%s", path);
		else
			path_index(p, sizeof(p), path, i);
		const char *s = want_string(v, single ? val : json_array_get(val, i), p);
		if (s)
			one(v, s, p, out);
	}
	return sorted_unique(out);
}

static void norm_capability(struct recipe_vctx *v, const char *s, const char *p, json_t *out)
{
	if (opaque(v, s)) {
		json_array_append_new(out, json_string(s));
		return;
	}
	char up[64];
	const char *t = strncasecmp(s, "CAP_", 4) == 0 ? s + 4 : s;
	size_t k = 0;
	for (; t[k] && k + 1 < sizeof(up); k++)
		up[k] = (char)toupper((unsigned char)t[k]);
	up[k] = '\0';
	if (!in_list(up, capability_names)) {
		const char *sug = suggest(up, capability_names);
		if (sug)
			verr(v, -EINVAL, p, "unknown capability '%s' (did you mean '%s'?)", s, sug);
		else
			verr(v, -EINVAL, p, "unknown capability '%s'", s);
		return;
	}
	json_array_append_new(out, json_string(up));
}

static json_t *norm_capabilities(struct recipe_vctx *v, const json_t *val, const char *path)
{
	return norm_word_list(v, val, path, "a list of capability names", norm_capability);
}

/* ---- kilt-launch ---------------------------------------------------------------------------- */

/* kilt-launch's own limits (runtime/kilt-launch.c: MAX_AGENTS, WAIT_MAX_S). */
#define LAUNCH_MAX_AGENTS 16
#define LAUNCH_MAX_WAIT_S 86400
#define LAUNCH_DEFAULT_PATH "/kilt/bin/kilt-launch"

static const char *const launch_keys[] = {
	"launcher", "agents", "tracer", "policy", "wait_for", "wait_timeout", "on_timeout", NULL,
};

static bool one_of(const char *s, const char *const *names)
{
	return in_list(s, names);
}

static const char *const policy_names[] = { "restart", "ignore", "stop", NULL };
static const char *const on_timeout_names[] = { "run", "exit", NULL };

/* A word of an agent or tracer argv that holds a marker: fine for kilt-launch (one word is one
 * word), but ${original.entrypoint} would splice a list of unknown length, so such a recipe
 * takes the full way, where the words are real. */
static void taint_markers(struct recipe_vctx *v, const json_t *argv)
{
	size_t i;
	json_t *w;
	json_array_foreach (argv, i, w)
		if (json_is_string(w))
			(void)opaque(v, json_string_value(w));
}

static json_t *norm_program(struct recipe_vctx *v, const json_t *e, const char *path);

static void add_group(json_t *out, const char *opt, const json_t *argv)
{
	char n[24];
	snprintf(n, sizeof(n), "%zu", json_array_size(argv));
	json_array_append_new(out, json_string(opt));
	json_array_append_new(out, json_string(n));
	json_array_extend(out, (json_t *)(uintptr_t)argv);
}

/* deploy.launch: agents and the tracer as lists; kilt writes kilt-launch's argv (with the counts)
 * up to and including its "--". */
static json_t *norm_launch(struct recipe_vctx *v, const json_t *l, const char *path)
{
	if (!json_is_object(l)) {
		verr(v, -EINVAL, path, "expected an object { agents, tracer, ... }, got %s",
		     type_name(l));
		return NULL;
	}
	check_keys(v, l, path, launch_keys, "launch");
	size_t before = v->nerrs;
	char p[PATH_MAX_LEN];
	json_t *out = json_array();
	const char *launcher = LAUNCH_DEFAULT_PATH;
	const json_t *j = json_object_get(l, "launcher");
	if (j) {
		path_key(p, sizeof(p), path, "launcher");
		const char *s = want_string(v, j, p);
		if (s && !opaque(v, s) && !is_abs_path(s))
			verr(v, -EINVAL, p, "'%s' is not an absolute path", s);
		if (s)
			launcher = s;
	}
	json_array_append_new(out, json_string(launcher));

	if ((j = json_object_get(l, "policy"))) {
		path_key(p, sizeof(p), path, "policy");
		const char *s = want_string(v, j, p);
		if (s && !opaque(v, s) && !one_of(s, policy_names))
			verr(v, -EINVAL, p, "policy must be restart, ignore or stop, not '%s'", s);
		if (s) {
			json_array_append_new(out, json_string("--policy"));
			json_array_append_new(out, json_string(s));
		}
	}

	size_t nagents = 0;
	const json_t *agents = json_object_get(l, "agents");
	if (agents) {
		path_key(p, sizeof(p), path, "agents");
		if (!json_is_array(agents)) {
			verr(v, -EINVAL, p,
			     "expected a list of programs [ [ program, args... ], ... ], got %s",
			     type_name(agents));
		} else if (json_array_size(agents) > LAUNCH_MAX_AGENTS) {
			verr(v, -EINVAL, p, "%zu agents; kilt-launch starts at most %d",
			     json_array_size(agents), LAUNCH_MAX_AGENTS);
		} else {
			size_t i;
			json_t *el;
			json_array_foreach (agents, i, el) {
				char pi[PATH_MAX_LEN];
				path_index(pi, sizeof(pi), p, i);
				json_t *argv = norm_program(v, el, pi);
				if (!argv)
					continue;
				const char *a0 = json_string_value(json_array_get(argv, 0));
				if (a0 && a0[0] == '-') {
					verr(v, -EINVAL, pi,
					     "'%s' is not a program: agents is a list of programs, "
					     "each a list of words: agents: [ [ /path/agent, %s, "
					     "... ] ]",
					     a0, a0);
					json_decref(argv);
					continue;
				}
				taint_markers(v, argv);
				add_group(out, "-a", argv);
				json_decref(argv);
				nagents++;
			}
		}
	}
	const json_t *tracer = json_object_get(l, "tracer");
	if (tracer) {
		path_key(p, sizeof(p), path, "tracer");
		json_t *argv = json_is_array(tracer) || json_is_string(tracer)
				       ? norm_program(v, tracer, p)
				       : NULL;
		if (!json_is_array(tracer) && !json_is_string(tracer))
			verr(v, -EINVAL, p, "expected a program [ /path/tracer, args... ], got %s",
			     type_name(tracer));
		if (argv) {
			taint_markers(v, argv);
			add_group(out, "-t", argv);
			json_decref(argv);
		}
	}
	if (!agents && !tracer)
		verr(v, -EINVAL, path,
		     "launch has neither agents nor a tracer: list what kilt-launch runs beside "
		     "the program (agents: [ [ ... ] ], tracer: [ ... ])");
	(void)nagents;

	const json_t *wf = json_object_get(l, "wait_for");
	if (wf) {
		path_key(p, sizeof(p), path, "wait_for");
		const char *s = want_string(v, wf, p);
		if (s && !opaque(v, s) && !is_abs_path(s))
			verr(v, -EINVAL, p, "'%s' is not an absolute path", s);
		if (s) {
			json_array_append_new(out, json_string("--wait-for"));
			json_array_append_new(out, json_string(s));
		}
	}
	if ((j = json_object_get(l, "wait_timeout"))) {
		path_key(p, sizeof(p), path, "wait_timeout");
		if (!wf)
			verr(v, -EINVAL, p, "wait_timeout needs wait_for (the path to wait for)");
		/* A number, or its digits as a string (operator config often comes as text). */
		json_int_t secs = json_is_integer(j) ? json_integer_value(j) : -1;
		const char *ds = json_string_value(j);
		if (ds && opaque(v, ds)) {
			secs = 1; /* not known yet: checked when the container is evaluated */
		} else if (ds && ds[0] && strspn(ds, "0123456789") == strlen(ds) &&
			   strlen(ds) < 7) {
			char *end;
			secs = (json_int_t)strtol(ds, &end, 10);
		}
		if (secs < 1 || secs > LAUNCH_MAX_WAIT_S) {
			verr(v, -EINVAL, p, "expected a whole number of seconds, 1 to %d",
			     LAUNCH_MAX_WAIT_S);
		} else {
			char n[24];
			snprintf(n, sizeof(n), "%" JSON_INTEGER_FORMAT, secs);
			json_array_append_new(out, json_string("--wait-timeout"));
			json_array_append_new(out, ds && strchr(ds, RECIPE_MARK) ? json_string(ds)
										 : json_string(n));
		}
	}
	if ((j = json_object_get(l, "on_timeout"))) {
		path_key(p, sizeof(p), path, "on_timeout");
		if (!wf)
			verr(v, -EINVAL, p, "on_timeout needs wait_for (the path to wait for)");
		const char *s = want_string(v, j, p);
		if (s && !opaque(v, s) && !one_of(s, on_timeout_names))
			verr(v, -EINVAL, p, "on_timeout must be run or exit, not '%s'", s);
		if (s) {
			json_array_append_new(out, json_string("--on-timeout"));
			json_array_append_new(out, json_string(s));
		}
	}
	json_array_append_new(out, json_string("--"));
	if (v->nerrs != before) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static bool is_kilt_launch(const char *w)
{
	const char *b = strrchr(w, '/');
	b = b ? b + 1 : w;
	return strcmp(b, "kilt-launch") == 0;
}

static bool is_splice(const json_t *w)
{
	const char *s = json_string_value(w);
	return s && json_string_length(w) == 2 && s[0] == RECIPE_MARK &&
	       (s[1] == MARK_ENTRYPOINT || s[1] == MARK_COMMAND);
}

/* The words of entrypoint + command, with their paths, for the kilt-launch argv check. */
struct argv_view {
	const json_t *ep, *cmd; /* borrowed; cmd NULL when the recipe keeps the container's */
	const char *ep_path, *cmd_path;
	size_t n;
};

static const json_t *view_word(const struct argv_view *a, size_t i, char *path, size_t size)
{
	size_t nep = json_array_size(a->ep);
	if (i < nep) {
		path_index(path, size, a->ep_path, i);
		return json_array_get(a->ep, i);
	}
	path_index(path, size, a->cmd_path, i - nep);
	return json_array_get(a->cmd, i - nep);
}

/* A literal kilt-launch argv in deploy.entrypoint (+ command) is read the way kilt-launch reads
 * it, so a miscounted group fails `kilt recipe check` instead of the container (exit 2 at start,
 * a crash loop). */
static void check_launch_argv(struct recipe_vctx *v, const json_t *ep, const char *ep_path,
			      const json_t *cmd, const char *cmd_path)
{
	const char *a0 = json_string_value(json_array_get(ep, 0));
	if (!a0 || strchr(a0, RECIPE_MARK) || !is_kilt_launch(a0))
		return;
	struct argv_view a = { ep, json_is_array(cmd) ? cmd : NULL, ep_path, cmd_path, 0 };
	a.n = json_array_size(ep) + json_array_size(a.cmd);
	char p[PATH_MAX_LEN], gp[PATH_MAX_LEN] = "";
	const char *gopt = NULL; /* the last counted group: its option, count and path */
	long gcount = 0;
	size_t agents = 0;
	bool tracer = false, wait_for = false, wait_opts = false;
	size_t i = 1;
	for (;;) {
		if (i >= a.n) {
			char last[PATH_MAX_LEN];
			view_word(&a, a.n - 1, last, sizeof(last));
			verr(v, -EINVAL, last,
			     "kilt-launch would stop with a usage error (exit 2): its argv ends "
			     "without '--' and the program%s",
			     a.cmd ? "" : " (the container's command comes after the entrypoint)");
			return;
		}
		const json_t *w = view_word(&a, i, p, sizeof(p));
		if (is_splice(w)) {
			verr(v, -EINVAL, p,
			     "kilt-launch would read the container's own %s as its options: end "
			     "its "
			     "options with '--' before ${original.%s}",
			     json_string_value(w)[1] == MARK_ENTRYPOINT ? "entrypoint" : "command",
			     json_string_value(w)[1] == MARK_ENTRYPOINT ? "entrypoint" : "command");
			return;
		}
		const char *s = json_string_value(w);
		if (!s || strchr(s, RECIPE_MARK))
			return; /* not known before evaluation; checked then */
		if (strcmp(s, "--") == 0)
			break;
		bool agent = strcmp(s, "-a") == 0 || strcmp(s, "--agent") == 0;
		bool trc = strcmp(s, "-t") == 0 || strcmp(s, "--tracer") == 0;
		bool valued = strcmp(s, "--policy") == 0 || strcmp(s, "--wait-for") == 0 ||
			      strcmp(s, "--wait-timeout") == 0 || strcmp(s, "--on-timeout") == 0;
		if (!agent && !trc && !valued) {
			if (gopt)
				verr(v, -EINVAL, p,
				     "kilt-launch would stop with a usage error (exit 2): '%s' is "
				     "not "
				     "one of its options. If it belongs to the %s group at %s, "
				     "that "
				     "group's count (%ld) is too small; better, list the agents "
				     "and the "
				     "tracer under deploy.launch and let kilt count",
				     s, gopt, gp, gcount);
			else
				verr(v, -EINVAL, p,
				     "kilt-launch would stop with a usage error (exit 2): '%s' is "
				     "not "
				     "one of its options (-a N, -t N, --policy, --wait-for, "
				     "--wait-timeout, --on-timeout, then --)",
				     s);
			return;
		}
		char vp[PATH_MAX_LEN];
		const json_t *val = i + 1 < a.n ? view_word(&a, i + 1, vp, sizeof(vp)) : NULL;
		const char *vs = val && !is_splice(val) ? json_string_value(val) : NULL;
		if (!vs) {
			verr(v, -EINVAL, p,
			     "kilt-launch would stop with a usage error (exit 2): %s "
			     "needs a value",
			     s);
			return;
		}
		if (strchr(vs, RECIPE_MARK))
			return;
		if (valued) {
			const char *bad = NULL;
			if (strcmp(s, "--policy") == 0 && !one_of(vs, policy_names))
				bad = "restart, ignore or stop";
			else if (strcmp(s, "--on-timeout") == 0 && !one_of(vs, on_timeout_names))
				bad = "run or exit";
			else if (strcmp(s, "--wait-for") == 0 && !vs[0])
				bad = "a path";
			if (strcmp(s, "--wait-timeout") == 0) {
				char *end;
				errno = 0;
				long n = strtol(vs, &end, 10);
				if (errno || end == vs || *end || n < 1 || n > LAUNCH_MAX_WAIT_S)
					bad = "a whole number of seconds, 1 to 86400";
			}
			if (bad) {
				verr(v, -EINVAL, vp,
				     "kilt-launch would stop with a usage error (exit 2): %s takes "
				     "%s, "
				     "not '%s'",
				     s, bad, vs);
				return;
			}
			if (strcmp(s, "--wait-for") == 0)
				wait_for = true;
			else if (strcmp(s, "--wait-timeout") == 0 || strcmp(s, "--on-timeout") == 0)
				wait_opts = true;
			i += 2;
			continue;
		}
		char *end;
		errno = 0;
		long n = strtol(vs, &end, 10);
		if (errno || end == vs || *end || n < 1) {
			verr(v, -EINVAL, vp,
			     "kilt-launch would stop with a usage error (exit 2): the count after "
			     "%s "
			     "must be a positive number, not '%s'",
			     s, vs);
			return;
		}
		/* Every word of the group must be there, and not the container's own argv. */
		for (long k = 0; k < n; k++) {
			char wp[PATH_MAX_LEN];
			const json_t *gw =
				i + 2 + (size_t)k < a.n
					? view_word(&a, i + 2 + (size_t)k, wp, sizeof(wp))
					: NULL;
			if (!gw || is_splice(gw)) {
				verr(v, -EINVAL, vp,
				     "kilt-launch would stop with a usage error (exit 2): the %s "
				     "group "
				     "counts %ld words but only %ld follow%s; list the agents and "
				     "the "
				     "tracer under deploy.launch and let kilt count",
				     s, n, k, gw ? " before the container's own argv" : "");
				return;
			}
		}
		if (agent && ++agents > LAUNCH_MAX_AGENTS) {
			verr(v, -EINVAL, p, "kilt-launch starts at most %d agents",
			     LAUNCH_MAX_AGENTS);
			return;
		}
		if (trc && tracer) {
			verr(v, -EINVAL, p,
			     "kilt-launch would stop with a usage error (exit 2): only one tracer");
			return;
		}
		tracer = tracer || trc;
		gopt = s;
		gcount = n;
		snprintf(gp, sizeof(gp), "%s", p);
		i += 2 + (size_t)n;
	}
	if (wait_opts && !wait_for)
		verr(v, -EINVAL, p,
		     "kilt-launch would stop with a usage error (exit 2): --wait-timeout and "
		     "--on-timeout need --wait-for");
}

static const char *const deploy_keys[] = {
	"image", "entrypoint", "entry_point",  "command",  "environment", "environment_variables",
	"mount", "mounts",     "capabilities", "pid_mode", "launch",	  NULL,
};

static void norm_deploy(struct recipe_vctx *v, const json_t *d, const char *path, json_t *out)
{
	if (!json_is_object(d)) {
		verr(v, -EINVAL, path, "expected an object, got %s", type_name(d));
		return;
	}
	check_keys(v, d, path, deploy_keys, path);
	char p[PATH_MAX_LEN];

	const json_t *image = json_object_get(d, "image");
	if (image) {
		path_key(p, sizeof(p), path, "image");
		const char *s = want_string(v, image, p);
		if (s && !opaque(v, s) && !s[0])
			verr(v, -EINVAL, p, "the image reference is empty");
		if (s)
			json_object_set_new_nocheck(out, "image", json_string(s));
	}
	norm_process(v, d, path, out);
	const json_t *launch = json_object_get(d, "launch");
	if (launch) {
		path_key(p, sizeof(p), path, "launch");
		json_t *l = norm_launch(v, launch, p);
		if (l)
			json_object_set_new_nocheck(out, "launch", l);
	} else if (json_object_get(out, "entrypoint")) {
		char ep[PATH_MAX_LEN], cmd[PATH_MAX_LEN];
		path_key(ep, sizeof(ep), path,
			 json_object_get(d, "entrypoint") ? "entrypoint" : "entry_point");
		path_key(cmd, sizeof(cmd), path, "command");
		check_launch_argv(v, json_object_get(out, "entrypoint"), ep,
				  json_object_get(out, "command"), cmd);
	}
	const json_t *mounts = get_alias(v, d, path, "mount", "mounts", p, sizeof(p));
	if (mounts) {
		json_t *list = json_object_get(out, "mounts");
		_cleanup_json_ json_t *names = json_object();
		_cleanup_json_ json_t *vols = json_object();
		if (json_is_object(mounts)) {
			json_t *m = norm_mount(v, mounts, p, 0, names, vols);
			if (m)
				json_array_append_new(list, m);
		} else if (json_is_array(mounts)) {
			size_t i;
			json_t *el;
			json_array_foreach (mounts, i, el) {
				char pi[PATH_MAX_LEN];
				path_index(pi, sizeof(pi), p, i);
				json_t *m = norm_mount(v, el, pi, i, names, vols);
				if (m)
					json_array_append_new(list, m);
			}
		} else {
			verr(v, -EINVAL, p, "expected a list of mounts, got %s", type_name(mounts));
		}
	}
	const json_t *caps = json_object_get(d, "capabilities");
	if (caps) {
		path_key(p, sizeof(p), path, "capabilities");
		json_t *c = norm_capabilities(v, caps, p);
		if (c)
			json_object_set_new_nocheck(out, "capabilities", c);
	}
	const json_t *pid = json_object_get(d, "pid_mode");
	if (pid) {
		path_key(p, sizeof(p), path, "pid_mode");
		const char *s = want_string(v, pid, p);
		if (s && !opaque(v, s)) {
			if (strcasecmp(s, "task") == 0)
				json_object_set_new_nocheck(out, "pid_mode", json_string("task"));
			else if (strcasecmp(s, "host") == 0)
				json_object_set_new_nocheck(out, "pid_mode", json_string("host"));
			else
				verr(v, -EINVAL, p, "pid_mode must be 'task' or 'host', not '%s'",
				     s);
		} else if (s) {
			json_object_set_new_nocheck(out, "pid_mode", json_string(s));
		}
	}
}

/* ---- patch / runtime ------------------------------------------------------------------------ */

static const char *const upload_keys[] = {
	"url", "file", "payload", "text", "as", "mode", "uid", "gid", "sha256", NULL,
};

static bool is_base64(const char *s)
{
	size_t n = strlen(s), pad = 0;
	if (n == 0 || n % 4 != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad || !(isalnum((unsigned char)c) || c == '+' || c == '/'))
			return false;
	}
	return pad <= 2;
}

static bool id_value(struct recipe_vctx *v, const json_t *val, const char *path, long long max,
		     bool octal_strings, json_int_t *ret)
{
	if (json_is_integer(val)) {
		json_int_t n = json_integer_value(val);
		if (n < 0 || n > max) {
			verr(v, -ERANGE, path, "%" JSON_INTEGER_FORMAT " is out of range (0..%lld)",
			     n, max);
			return false;
		}
		*ret = n;
		return true;
	}
	if (octal_strings && json_is_string(val)) {
		const char *s = json_string_value(val);
		if (opaque(v, s))
			return false;
		char *end = NULL;
		errno = 0;
		long long n = strtoll(s, &end, 8);
		if (!s[0] || errno || *end || n < 0 || n > max) {
			verr(v, -EINVAL, path, "'%s' is not an octal mode such as \"0755\"", s);
			return false;
		}
		*ret = (json_int_t)n;
		return true;
	}
	verr(v, -EINVAL, path, "expected %s, got %s",
	     octal_strings ? "a mode (493 or \"0755\")" : "a number", type_name(val));
	return false;
}

static json_t *norm_upload(struct recipe_vctx *v, const json_t *u, const char *path)
{
	if (!json_is_object(u)) {
		verr(v, -EINVAL, path, "expected an upload object { url|file|payload, as }, got %s",
		     type_name(u));
		return NULL;
	}
	check_keys(v, u, path, upload_keys, "an upload");
	size_t before = v->nerrs;
	json_t *out = json_object();
	char p[PATH_MAX_LEN];
	/* text: the seed's "or directly text"; it becomes a base64 payload in the plan. */
	static const char *const sources[] = { "url", "file", "payload", "text" };
	const char *src_key = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(sources); i++) {
		const json_t *s = json_object_get(u, sources[i]);
		if (!s)
			continue;
		path_key(p, sizeof(p), path, sources[i]);
		if (src_key) {
			verr(v, -EINVAL, p, "both '%s' and '%s' are set; an upload has one source",
			     src_key, sources[i]);
			continue;
		}
		src_key = sources[i];
		const char *str = want_string(v, s, p);
		if (!str)
			continue;
		if (!opaque(v, str)) {
			if (strcmp(src_key, "url") == 0 && strncmp(str, "http://", 7) != 0 &&
			    strncmp(str, "https://", 8) != 0)
				verr(v, -EINVAL, p, "'%s' is not an http:// or https:// URL", str);
			else if (strcmp(src_key, "file") == 0 && !str[0])
				verr(v, -EINVAL, p, "the file name is empty");
			else if (strcmp(src_key, "payload") == 0 && !is_base64(str))
				verr(v, -EINVAL, p,
				     "the payload is not valid base64 (for the file's content as "
				     "literal text, write text: \"...\" instead of payload)");
		}
		if (strcmp(src_key, "text") == 0 && !opaque(v, str)) {
			_cleanup_free_ char *b64 = kilt_base64_encode(str, json_string_length(s));
			json_object_set_new_nocheck(out, "payload", json_string(b64));
		} else {
			json_object_set_new_nocheck(
				out, strcmp(src_key, "text") == 0 ? "payload" : src_key,
				json_string(str));
		}
	}
	if (!src_key)
		verr(v, -EINVAL, path,
		     "the upload has no source: set one of url (with sha256), file, payload "
		     "(base64) or text");

	const json_t *as = json_object_get(u, "as");
	if (!as) {
		verr(v, -EINVAL, path, "the upload has no target: set as: /path/in/the/container");
	} else {
		path_key(p, sizeof(p), path, "as");
		const char *s = want_string(v, as, p);
		if (s && !opaque(v, s) && !is_abs_path(s))
			verr(v, -EINVAL, p, "'%s' is not an absolute path", s);
		if (s)
			json_object_set_new_nocheck(out, "as", json_string(s));
	}

	json_int_t mode = 0755, uid = 0, gid = 0;
	const json_t *j;
	if ((j = json_object_get(u, "mode"))) {
		path_key(p, sizeof(p), path, "mode");
		id_value(v, j, p, 07777, true, &mode);
	}
	if ((j = json_object_get(u, "uid"))) {
		path_key(p, sizeof(p), path, "uid");
		id_value(v, j, p, 2147483647, false, &uid);
	}
	if ((j = json_object_get(u, "gid"))) {
		path_key(p, sizeof(p), path, "gid");
		id_value(v, j, p, 2147483647, false, &gid);
	}
	json_object_set_new_nocheck(out, "mode", json_integer(mode));
	json_object_set_new_nocheck(out, "uid", json_integer(uid));
	json_object_set_new_nocheck(out, "gid", json_integer(gid));

	const json_t *sha = json_object_get(u, "sha256");
	if (sha) {
		path_key(p, sizeof(p), path, "sha256");
		const char *s = want_string(v, sha, p);
		if (s && !opaque(v, s)) {
			char low[65];
			size_t n = strlen(s);
			bool ok = n == 64;
			for (size_t i = 0; ok && i < n; i++) {
				if (!isxdigit((unsigned char)s[i]))
					ok = false;
				else
					low[i] = (char)tolower((unsigned char)s[i]);
			}
			if (!ok) {
				verr(v, -EINVAL, p, "expected 64 hexadecimal digits (a SHA-256)");
			} else {
				low[64] = '\0';
				json_object_set_new_nocheck(out, "sha256", json_string(low));
			}
		} else if (s) {
			json_object_set_new_nocheck(out, "sha256", json_string(s));
		}
	} else if (src_key && strcmp(src_key, "url") == 0) {
		verr(v, -EINVAL, path,
		     "a URL upload needs sha256: kilt never installs a download it cannot verify");
	}
	if (v->nerrs != before) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *norm_program(struct recipe_vctx *v, const json_t *e, const char *path)
{
	const json_t *val = e;
	char p[PATH_MAX_LEN];
	snprintf(p, sizeof(p), "%s", path);
	if (json_is_object(e)) {
		static const char *const run_keys[] = { "run", NULL };
		check_keys(v, e, path, run_keys, "a program");
		val = json_object_get(e, "run");
		if (!val) {
			verr(v, -EINVAL, path,
			     "the program has no 'run' (a command line or a list)");
			return NULL;
		}
		path_key(p, sizeof(p), path, "run");
	}
	json_t *argv = norm_argv(v, val, p);
	if (!argv)
		return NULL;
	if (json_array_size(argv) == 0) {
		verr(v, -EINVAL, p, "the program is empty");
		json_decref(argv);
		return NULL;
	}
	const char *a0 = json_string_value(json_array_get(argv, 0));
	if (a0 && !a0[0]) {
		verr(v, -EINVAL, p, "the program name (argv[0]) is empty");
		json_decref(argv);
		return NULL;
	}
	return argv;
}

static const char *const patch_keys[] = {
	"upload", "uploads", "background_exec", "exec", NULL,
};

static void norm_patch(struct recipe_vctx *v, const json_t *d, const char *path, json_t *out)
{
	if (!json_is_object(d)) {
		verr(v, -EINVAL, path, "expected an object, got %s", type_name(d));
		return;
	}
	check_keys(v, d, path, patch_keys, path);
	char p[PATH_MAX_LEN];
	const json_t *ups = get_alias(v, d, path, "upload", "uploads", p, sizeof(p));
	if (ups) {
		json_t *list = json_object_get(out, "uploads");
		_cleanup_json_ json_t *targets = json_object();
		if (!json_is_array(ups)) {
			verr(v, -EINVAL, p, "expected a list of uploads, got %s", type_name(ups));
		} else {
			size_t i;
			json_t *el;
			json_array_foreach (ups, i, el) {
				char pi[PATH_MAX_LEN];
				path_index(pi, sizeof(pi), p, i);
				json_t *u = norm_upload(v, el, pi);
				if (!u)
					continue;
				const char *as = json_string_value(json_object_get(u, "as"));
				if (as && !strchr(as, RECIPE_MARK)) {
					_cleanup_free_ char *c = path_canonical(as);
					if (json_object_get(targets, c))
						verr(v, -EINVAL, pi, "'%s' is uploaded twice", as);
					json_object_set_new(targets, c, json_true());
				}
				json_array_append_new(list, u);
			}
		}
	}
	const json_t *bg = get_alias(v, d, path, "background_exec", "exec", p, sizeof(p));
	if (bg) {
		json_t *list = json_object_get(out, "background");
		if (json_is_string(bg) || json_is_object(bg)) {
			json_t *a = norm_program(v, bg, p);
			if (a)
				json_array_append_new(list, a);
		} else if (json_is_array(bg)) {
			size_t i;
			json_t *el;
			json_array_foreach (bg, i, el) {
				char pi[PATH_MAX_LEN];
				path_index(pi, sizeof(pi), p, i);
				json_t *a = norm_program(v, el, pi);
				if (a)
					json_array_append_new(list, a);
			}
		} else {
			verr(v, -EINVAL, p, "expected a list of programs, got %s", type_name(bg));
		}
	}
}

/* ---- platforms ------------------------------------------------------------------------------ */

bool kilt_recipe_platform_normalize(const char *in, char *buf, size_t size)
{
	static const char *const oses[] = { "linux", "windows", NULL };
	static const char *const arches[] = { "amd64", "arm64",	  "arm",      "386",	 "ppc64le",
					      "s390x", "riscv64", "mips64le", "loong64", NULL };
	char tmp[64];
	if (strlen(in) >= sizeof(tmp))
		return false;
	snprintf(tmp, sizeof(tmp), "%s", in);
	for (char *c = tmp; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	char *parts[4] = { 0 };
	size_t n = 0;
	for (char *s = tmp, *slash; n < 4; s = slash + 1) {
		parts[n++] = s;
		slash = strchr(s, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	const char *os = "linux", *arch, *variant = NULL;
	if (n == 1) {
		arch = parts[0];
	} else if (n == 2 || n == 3) {
		os = parts[0];
		arch = parts[1];
		variant = n == 3 ? parts[2] : NULL;
	} else {
		return false;
	}
	if (strcmp(arch, "x86_64") == 0 || strcmp(arch, "x86-64") == 0)
		arch = "amd64";
	else if (strcmp(arch, "aarch64") == 0)
		arch = "arm64";
	if (!in_list(os, oses) || !in_list(arch, arches))
		return false;
	if (variant && !variant[0])
		return false;
	/* v8 is what arm64 means unless said otherwise. */
	if (variant && strcmp(arch, "arm64") == 0 && strcmp(variant, "v8") == 0)
		variant = NULL;
	if (variant)
		snprintf(buf, size, "%s/%s/%s", os, arch, variant);
	else
		snprintf(buf, size, "%s/%s", os, arch);
	return true;
}

static void norm_platform(struct recipe_vctx *v, const char *s, const char *p, json_t *out)
{
	if (opaque(v, s))
		return;
	char norm[64];
	if (!kilt_recipe_platform_normalize(s, norm, sizeof(norm))) {
		verr(v, -EINVAL, p,
		     "'%s' is not a platform kilt knows (os/arch[/variant], such as "
		     "linux/amd64 or linux/arm64)",
		     s);
		return;
	}
	json_array_append_new(out, json_string(norm));
}

static json_t *norm_platforms(struct recipe_vctx *v, const json_t *val, const char *path)
{
	return norm_word_list(v, val, path, "a list of platforms such as [ linux/amd64 ]",
			      norm_platform);
}

bool kilt_recipe_has_marker(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_STRING:
		return memchr(json_string_value(j), RECIPE_MARK, json_string_length(j)) != NULL;
	case JSON_ARRAY: {
		size_t i;
		json_t *el;
		json_array_foreach (j, i, el)
			if (kilt_recipe_has_marker(el))
				return true;
		return false;
	}
	case JSON_OBJECT: {
		const char *k;
		json_t *el;
		json_object_foreach ((json_t *)(uintptr_t)j, k, el)
			if (strchr(k, RECIPE_MARK) || kilt_recipe_has_marker(el))
				return true;
		return false;
	}
	default:
		return false;
	}
}

/* ---- parameters ----------------------------------------------------------------------------- */

static const char *const param_keys[] = { "default", "description", "required", NULL };

/* parameters { name { default, description, required } }: the config keys the recipe reads. */
static json_t *norm_parameters(struct recipe_vctx *v, const json_t *val, const char *path)
{
	if (!json_is_object(val)) {
		verr(v, -EINVAL, path,
		     "expected an object { name { default, description, required } }, got %s",
		     type_name(val));
		return NULL;
	}
	json_t *out = json_object();
	const char *name;
	json_t *el;
	json_object_foreach ((json_t *)(uintptr_t)val, name, el) {
		char p[PATH_MAX_LEN], pk[PATH_MAX_LEN];
		path_key(p, sizeof(p), path, name);
		if (!name[0] || strchr(name, '.') || strchr(name, RECIPE_MARK)) {
			verr(v, -EINVAL, p, "'%s' is not a parameter name (config.<name>)", name);
			continue;
		}
		if (!json_is_object(el)) {
			verr(v, -EINVAL, p,
			     "expected { default: ..., description: \"...\" } or { required: true, "
			     "description: \"...\" }, got %s",
			     type_name(el));
			continue;
		}
		check_keys(v, el, p, param_keys, "a parameter");
		json_t *o = json_object();
		const json_t *def = json_object_get(el, "default");
		const json_t *desc = json_object_get(el, "description");
		const json_t *req = json_object_get(el, "required");
		if (desc) {
			path_key(pk, sizeof(pk), p, "description");
			const char *d = want_string(v, desc, pk);
			if (d)
				json_object_set_new_nocheck(o, "description", json_string(d));
		}
		bool required = false;
		if (req) {
			path_key(pk, sizeof(pk), p, "required");
			if (!json_is_boolean(req))
				verr(v, -EINVAL, pk, "expected true or false, got %s",
				     type_name(req));
			required = json_is_true(req);
			if (required && def)
				verr(v, -EINVAL, pk,
				     "a parameter with a default is never missing: drop required "
				     "or "
				     "the default");
		}
		if (def) {
			if (kilt_recipe_has_marker(def)) {
				path_key(pk, sizeof(pk), p, "default");
				verr(v, -EINVAL, pk,
				     "a default cannot depend on the container or on other config");
			} else {
				json_object_set_new_nocheck(o, "default", json_deep_copy(def));
			}
		}
		json_object_set_new_nocheck(o, "required", json_boolean(required));
		json_object_set_new(out, name, o);
	}
	return out;
}

/* ---- the document --------------------------------------------------------------------------- */

static const char *const top_keys[] = {
	"deploy", "build",	 "patch",      "runtime", "platforms",
	"vars",	  "description", "parameters", NULL,
};

int kilt_recipe_normalize(struct recipe_vctx *v, const json_t *root, json_t **ret_partial)
{
	size_t before = v->nerrs;
	if (!json_is_object(root)) {
		verr(v, -EINVAL, "", "a recipe is an object, not %s", type_name(root));
		return v->errs[before].code;
	}
	_cleanup_json_ json_t *out = json_object();
	json_object_set_new_nocheck(out, "environment", json_array());
	json_object_set_new_nocheck(out, "mounts", json_array());
	json_object_set_new_nocheck(out, "capabilities", json_array());
	json_object_set_new_nocheck(out, "uploads", json_array());
	json_object_set_new_nocheck(out, "background", json_array());
	json_object_set_new_nocheck(out, "platforms", json_array());

	check_keys(v, root, "", top_keys, "a recipe");
	char p[PATH_MAX_LEN];
	const json_t *deploy = get_alias(v, root, "", "deploy", "build", p, sizeof(p));
	if (v->values_final && json_is_object(deploy) && !json_object_size(deploy))
		verr(v, -EINVAL, p,
		     "an empty section changes nothing: say what changes in the container "
		     "(entrypoint, "
		     "environment, mount...) or remove it");
	else if (deploy)
		norm_deploy(v, deploy, p, out);
	const json_t *patch = get_alias(v, root, "", "patch", "runtime", p, sizeof(p));
	if (v->values_final && json_is_object(patch) && !json_object_size(patch))
		verr(v, -EINVAL, p,
		     "an empty section changes nothing: say what to upload or run, or remove it");
	else if (patch)
		norm_patch(v, patch, p, out);
	if (!deploy && !patch)
		verr(v, -EINVAL, "",
		     "the recipe has neither 'deploy' nor 'patch' (original kilt: 'build', "
		     "'runtime'), so it changes nothing");
	const json_t *plat = json_object_get(root, "platforms");
	if (plat) {
		json_t *pl = norm_platforms(v, plat, "platforms");
		if (pl)
			json_object_set_new_nocheck(out, "platforms", pl);
	}
	const json_t *desc = json_object_get(root, "description");
	if (desc)
		want_string(v, desc, "description");
	const json_t *params = json_object_get(root, "parameters");
	if (params) {
		json_t *pa = norm_parameters(v, params, "parameters");
		if (pa)
			json_object_set_new_nocheck(out, "parameters", pa);
	}
	if (v->nerrs != before)
		return v->errs[before].code;
	*ret_partial = steal_pointer(&out);
	return 0;
}
