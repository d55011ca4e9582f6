/* SPDX-License-Identifier: Apache-2.0 */
/* CloudFormation helpers for the ECS engine: recognising intrinsics, resolving the few facts kilt
 * needs (image, compatibilities, tags, platform) through parameter values, and carrying an image
 * written as an intrinsic into Fn::Sub text so derived strings stay correct at deploy time. */
#include <stdarg.h>

#include "ecs-internal.h"

#define MAX_RESOLVE_DEPTH 16
#define MAX_RESOLVED_LEN (64u << 10)
/* Intrinsics evaluated for one value, all nesting included: Mappings may point at each other, so
 * without it a small template could ask for billions of evaluations that produce nothing. */
#define MAX_RESOLVE_STEPS 10000u

bool kilt_cfn_is_intrinsic(const json_t *v, const char **ret_fn)
{
	if (!json_is_object(v) || json_object_size(v) != 1)
		return false;
	const char *key = json_object_iter_key(json_object_iter((json_t *)(uintptr_t)v));
	if (strcmp(key, "Ref") != 0 && strcmp(key, "Condition") != 0 &&
	    strncmp(key, "Fn::", 4) != 0)
		return false;
	if (ret_fn)
		*ret_fn = key;
	return true;
}

bool kilt_cfn_is_novalue(const json_t *v)
{
	const char *fn;
	if (!kilt_cfn_is_intrinsic(v, &fn) || strcmp(fn, "Ref") != 0)
		return false;
	const char *s = json_string_value(json_object_get(v, "Ref"));
	return s && strcmp(s, "AWS::NoValue") == 0;
}

bool kilt_cfn_if_branches(json_t *v, json_t **ret_a, json_t **ret_b)
{
	const char *fn;
	if (!kilt_cfn_is_intrinsic(v, &fn) || strcmp(fn, "Fn::If") != 0)
		return false;
	json_t *args = json_object_get(v, "Fn::If");
	if (!json_is_array(args) || json_array_size(args) != 3)
		return false;
	*ret_a = json_array_get(args, 1);
	*ret_b = json_array_get(args, 2);
	return true;
}

static const json_t *param_value(const struct cfn_ctx *ctx, const char *name)
{
	const json_t *v = ctx->params ? json_object_get(ctx->params, name) : NULL;
	if (v)
		return v;
	const json_t *p = json_object_get(json_object_get(ctx->template, "Parameters"), name);
	const json_t *dflt = json_object_get(p, "Default");
	if (dflt && ctx->defaults_used)
		json_object_set(ctx->defaults_used, name, (json_t *)(uintptr_t)dflt);
	return dflt;
}

static bool is_param(const struct cfn_ctx *ctx, const char *name)
{
	return (ctx->params && json_object_get(ctx->params, name)) ||
	       json_object_get(json_object_get(ctx->template, "Parameters"), name);
}

/* `depth` and `steps` (what is left of MAX_RESOLVE_STEPS) run through every string and list
 * resolved for one value, Fn::Select's list included, so no path starts them afresh. */
static int resolve(const struct cfn_ctx *ctx, const json_t *v, unsigned depth, unsigned *steps,
		   struct kbuf *out, char *why, size_t size);
static int resolve_list(const struct cfn_ctx *ctx, const json_t *v, unsigned depth, unsigned *steps,
			json_t **ret, char *why, size_t size);

__attribute__((format(printf, 3, 4))) static int unresolved(char *why, size_t size, const char *fmt,
							    ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return -ENOENT;
}

/* Why `name` (a Ref's or a ${} in Fn::Sub, written `pre`name`post`) has no value, and what to
 * do about it. */
static int unknown_name(const struct cfn_ctx *ctx, const char *name, const char *pre,
			const char *post, char *why, size_t size)
{
	if (is_param(ctx, name))
		return unresolved(why, size,
				  "%s%s%s is a parameter without a value or Default (give it with "
				  "--param %s=VALUE)",
				  pre, name, post, name);
	if (strncmp(name, "AWS::", 5) == 0)
		return unresolved(why, size,
				  "%s%s%s is a pseudo parameter known only at deploy time (give it "
				  "with --param %s=VALUE)",
				  pre, name, post, name);
	if (strchr(name, '.'))
		return unresolved(why, size,
				  "%s%s%s is a resource attribute, known only once the stack is "
				  "deployed",
				  pre, name, post);
	return unresolved(why, size,
			  "%s%s%s names no parameter: a resource, known only once the stack is "
			  "deployed",
			  pre, name, post);
}

/* Fn::Sub template: ${Name} from `vars`, then parameters; ${!Literal} is a literal "${Literal}". */
static int resolve_sub(const struct cfn_ctx *ctx, const char *t, const json_t *vars, unsigned depth,
		       unsigned *steps, struct kbuf *out, char *why, size_t size)
{
	for (const char *p = t; *p;) {
		const char *open = strstr(p, "${");
		if (!open)
			return kbuf_adds(out, p) < 0 ? -E2BIG : 0;
		if (kbuf_add(out, p, (size_t)(open - p)) < 0)
			return -E2BIG;
		const char *close = strchr(open, '}');
		if (!close)
			return unresolved(why, size, "unterminated ${ in Fn::Sub \"%s\"", t);
		_cleanup_free_ char *name = xstrndup(open + 2, (size_t)(close - open - 2));
		if (name[0] == '!') {
			if (kbuf_adds(out, "${") < 0 || kbuf_adds(out, name + 1) < 0 ||
			    kbuf_addc(out, '}') < 0)
				return -E2BIG;
		} else {
			const json_t *var = vars ? json_object_get(vars, name) : NULL;
			int r;
			if (var) {
				r = resolve(ctx, var, depth + 1, steps, out, why, size);
			} else {
				const json_t *pv = param_value(ctx, name);
				if (!pv || !json_is_string(pv))
					return unknown_name(ctx, name, "${", "}", why, size);
				r = kbuf_adds(out, json_string_value(pv)) < 0 ? -E2BIG : 0;
			}
			if (r < 0)
				return r;
		}
		p = close + 1;
	}
	return 0;
}

static int resolve(const struct cfn_ctx *ctx, const json_t *v, unsigned depth, unsigned *steps,
		   struct kbuf *out, char *why, size_t size)
{
	if (depth > MAX_RESOLVE_DEPTH)
		return unresolved(why, size, "%s", "intrinsics nested too deeply");
	if (*steps == 0)
		return unresolved(why, size, "%s", "too many intrinsics to evaluate");
	(*steps)--;
	if (json_is_string(v))
		return kbuf_adds(out, json_string_value(v)) < 0 ? -E2BIG : 0;
	if (json_is_integer(v))
		return kbuf_printf(out, "%lld", (long long)json_integer_value(v)) < 0 ? -E2BIG : 0;
	const char *fn;
	if (!kilt_cfn_is_intrinsic(v, &fn))
		return unresolved(why, size, "%s", "a value that is not a string");
	const json_t *arg = json_object_get(v, fn);
	if (strcmp(fn, "Ref") == 0) {
		const char *name = json_string_value(arg);
		if (!name)
			return unresolved(why, size, "%s", "Ref without a name");
		const json_t *pv = param_value(ctx, name);
		if (json_is_string(pv))
			return kbuf_adds(out, json_string_value(pv)) < 0 ? -E2BIG : 0;
		if (json_is_array(pv)) {
			/* a list parameter given as an array: its string form is comma-joined */
			size_t i;
			const json_t *e;
			json_array_foreach (pv, i, e) {
				if ((i && kbuf_addc(out, ',') < 0) ||
				    kbuf_adds(out,
					      json_string_value(e) ? json_string_value(e) : "") < 0)
					return -E2BIG;
			}
			return 0;
		}
		return unknown_name(ctx, name, "Ref ", "", why, size);
	}
	if (strcmp(fn, "Fn::Sub") == 0) {
		if (json_is_string(arg))
			return resolve_sub(ctx, json_string_value(arg), NULL, depth, steps, out,
					   why, size);
		if (json_is_array(arg) && json_array_size(arg) == 2 &&
		    json_is_string(json_array_get(arg, 0)))
			return resolve_sub(ctx, json_string_value(json_array_get(arg, 0)),
					   json_array_get(arg, 1), depth, steps, out, why, size);
		return unresolved(why, size, "%s", "a malformed Fn::Sub");
	}
	if (strcmp(fn, "Fn::Join") == 0) {
		const json_t *delim = json_array_get(arg, 0), *items = json_array_get(arg, 1);
		if (!json_is_string(delim) || !json_is_array(items))
			return unresolved(why, size, "%s", "a Fn::Join kilt cannot evaluate");
		size_t i;
		const json_t *e;
		json_array_foreach (items, i, e) {
			if (i && kbuf_adds(out, json_string_value(delim)) < 0)
				return -E2BIG;
			int r = resolve(ctx, e, depth + 1, steps, out, why, size);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (strcmp(fn, "Fn::FindInMap") == 0 && json_array_size(arg) >= 3) {
		char *keys[3] = { NULL, NULL, NULL };
		int r = 0;
		for (size_t i = 0; i < 3 && r == 0; i++) {
			struct kbuf kb;
			kbuf_init(&kb, MAX_RESOLVED_LEN);
			r = resolve(ctx, json_array_get(arg, i), depth + 1, steps, &kb, why, size);
			keys[i] = kbuf_steal(&kb);
		}
		const json_t *hit = NULL;
		if (r == 0) {
			hit = json_object_get(
				json_object_get(
					json_object_get(json_object_get(ctx->template, "Mappings"),
							keys[0]),
					keys[1]),
				keys[2]);
			if (!hit)
				r = unresolved(why, size, "Fn::FindInMap on map %s finds nothing",
					       keys[0]);
		}
		if (r == 0)
			r = resolve(ctx, hit, depth + 1, steps, out, why, size);
		for (size_t i = 0; i < 3; i++)
			free(keys[i]);
		return r;
	}
	if (strcmp(fn, "Fn::Select") == 0 && json_array_size(arg) == 2) {
		struct kbuf kb;
		kbuf_init(&kb, 32);
		int r = resolve(ctx, json_array_get(arg, 0), depth + 1, steps, &kb, why, size);
		_cleanup_free_ char *idx = kbuf_steal(&kb);
		if (r < 0)
			return r;
		char *end = NULL;
		errno = 0;
		long i = strtol(idx, &end, 10);
		if (errno || end == idx || *end || i < 0)
			return unresolved(why, size, "Fn::Select index %s is not a number", idx);
		_cleanup_json_ json_t *items = NULL;
		r = resolve_list(ctx, json_array_get(arg, 1), depth + 1, steps, &items, why, size);
		if (r < 0)
			return r;
		const json_t *pick = json_array_get(items, (size_t)i);
		if (!pick)
			return unresolved(why, size, "Fn::Select index %s is out of range", idx);
		return kbuf_adds(out, json_string_value(pick)) < 0 ? -E2BIG : 0;
	}
	return unresolved(why, size,
			  "%s is known only once the stack is deployed, and kilt works offline",
			  fn);
}

static int resolve_string(const struct cfn_ctx *ctx, const json_t *v, unsigned depth,
			  unsigned *steps, char **ret, char *why, size_t size)
{
	struct kbuf b;
	kbuf_init(&b, MAX_RESOLVED_LEN);
	int r = resolve(ctx, v, depth, steps, &b, why, size);
	if (r == -E2BIG)
		r = unresolved(why, size, "%s", "the value is too long");
	if (r < 0) {
		kbuf_done(&b);
		return r;
	}
	*ret = kbuf_steal(&b);
	return 0;
}

int kilt_cfn_resolve_string(const struct cfn_ctx *ctx, const json_t *v, char **ret, char *why,
			    size_t size)
{
	unsigned steps = MAX_RESOLVE_STEPS;
	return resolve_string(ctx, v, 0, &steps, ret, why, size);
}

static int resolve_list(const struct cfn_ctx *ctx, const json_t *v, unsigned depth, unsigned *steps,
			json_t **ret, char *why, size_t size)
{
	_cleanup_json_ json_t *list = json_array();
	if (json_is_array(v)) {
		size_t i;
		const json_t *e;
		json_array_foreach (v, i, e) {
			char *s = NULL;
			int r = resolve_string(ctx, e, depth + 1, steps, &s, why, size);
			if (r < 0)
				return r;
			json_array_append_new(list, json_string(s));
			free(s);
		}
		*ret = steal_pointer(&list);
		return 0;
	}
	const char *fn;
	if (kilt_cfn_is_intrinsic(v, &fn) && strcmp(fn, "Ref") == 0) {
		const json_t *pv =
			param_value(ctx, json_string_value(json_object_get(v, "Ref"))
						 ? json_string_value(json_object_get(v, "Ref"))
						 : "");
		if (json_is_array(pv))
			return resolve_list(ctx, pv, depth + 1, steps, ret, why, size);
	}
	if (kilt_cfn_is_intrinsic(v, &fn) && strcmp(fn, "Fn::Split") == 0) {
		const json_t *arg = json_object_get(v, fn);
		const char *delim = json_string_value(json_array_get(arg, 0));
		_cleanup_free_ char *src = NULL;
		if (!delim || !*delim || json_array_size(arg) != 2)
			return unresolved(why, size, "%s", "a malformed Fn::Split");
		int r = resolve_string(ctx, json_array_get(arg, 1), depth + 1, steps, &src, why,
				       size);
		if (r < 0)
			return r;
		size_t dl = strlen(delim);
		for (const char *p = src;;) {
			const char *hit = strstr(p, delim);
			json_array_append_new(list,
					      json_stringn(p, hit ? (size_t)(hit - p) : strlen(p)));
			if (!hit)
				break;
			p = hit + dl;
		}
		*ret = steal_pointer(&list);
		return 0;
	}
	_cleanup_free_ char *s = NULL;
	int r = resolve_string(ctx, v, depth, steps, &s, why, size);
	if (r < 0)
		return r;
	for (char *p = s;;) {
		char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		while (n && (*p == ' ')) {
			p++;
			n--;
		}
		while (n && p[n - 1] == ' ')
			n--;
		json_array_append_new(list, json_stringn(p, n));
		if (!comma)
			break;
		p = comma + 1;
	}
	*ret = steal_pointer(&list);
	return 0;
}

int kilt_cfn_resolve_list(const struct cfn_ctx *ctx, const json_t *v, json_t **ret, char *why,
			  size_t size)
{
	unsigned steps = MAX_RESOLVE_STEPS;
	return resolve_list(ctx, v, 0, &steps, ret, why, size);
}

/* "${" in literal text must not be read as a substitution once the text sits inside Fn::Sub. */
static void add_escaped(struct kbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		(void)kbuf_addc(b, s[i]);
		if (s[i] == '$' && i + 1 < n && s[i + 1] == '{') {
			(void)kbuf_adds(b, "{!");
			i++;
		}
	}
}

char *kilt_cfn_sub_text(const json_t *image, json_t **ret_vars)
{
	*ret_vars = NULL;
	const char *fn;
	if (!kilt_cfn_is_intrinsic(image, &fn))
		return NULL;
	const json_t *arg = json_object_get(image, fn);
	if (strcmp(fn, "Ref") == 0 && json_is_string(arg))
		return xasprintf("${%s}", json_string_value(arg));
	if (strcmp(fn, "Fn::Sub") == 0) {
		if (json_is_string(arg))
			return xstrdup(json_string_value(arg));
		if (json_is_array(arg) && json_is_string(json_array_get(arg, 0)) &&
		    json_is_object(json_array_get(arg, 1))) {
			*ret_vars = json_deep_copy(json_array_get(arg, 1));
			return xstrdup(json_string_value(json_array_get(arg, 0)));
		}
	}
	if (strcmp(fn, "Fn::GetAtt") == 0 && json_is_array(arg) && json_array_size(arg) == 2 &&
	    json_is_string(json_array_get(arg, 0)) && json_is_string(json_array_get(arg, 1)))
		return xasprintf("${%s.%s}", json_string_value(json_array_get(arg, 0)),
				 json_string_value(json_array_get(arg, 1)));
	*ret_vars = json_pack("{sO}", "KiltImage", image);
	return xstrdup("${KiltImage}");
}

static json_t *wrap_string(const char *s, const char *text, const json_t *vars)
{
	struct kbuf b;
	kbuf_init(&b, SIZE_MAX / 2);
	size_t tl = strlen(text);
	for (const char *p = s;;) {
		const char *hit = strstr(p, text);
		if (!hit) {
			add_escaped(&b, p, strlen(p));
			break;
		}
		add_escaped(&b, p, (size_t)(hit - p));
		(void)kbuf_add(&b, text, tl);
		p = hit + tl;
	}
	_cleanup_free_ char *t = kbuf_steal(&b);
	if (vars && json_object_size(vars))
		return json_pack("{s[sO]}", "Fn::Sub", t, vars);
	return json_pack("{ss}", "Fn::Sub", t);
}

json_t *kilt_cfn_wrap_sub(json_t *v, const char *text, const json_t *vars)
{
	if (json_is_string(v)) {
		if (!*text || !strstr(json_string_value(v), text))
			return v;
		json_t *w = wrap_string(json_string_value(v), text, vars);
		json_decref(v);
		return w;
	}
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *e = json_incref(json_array_get(v, i));
			json_array_set_new(v, i, kilt_cfn_wrap_sub(e, text, vars));
		}
	} else if (json_is_object(v) && !kilt_cfn_is_intrinsic(v, NULL)) {
		const char *k;
		json_t *e;
		void *tmp;
		json_object_foreach_safe (v, tmp, k, e) {
			json_object_set_new(v, k, kilt_cfn_wrap_sub(json_incref(e), text, vars));
		}
	}
	return v;
}

char *kilt_cfn_encode_label(const json_t *v)
{
	char *s = kilt_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return xstrdup("null");
	if (!strchr(s, '$'))
		return s;
	_cleanup_free_ char *text = s;
	struct kbuf b;
	kbuf_init(&b, SIZE_MAX / 2);
	for (const char *p = text, *d; *p; p = d + 1) {
		d = strchr(p, '$');
		(void)kbuf_add(&b, p, d ? (size_t)(d - p) : strlen(p));
		if (!d)
			break;
		(void)kbuf_adds(&b, "\\u0024");
	}
	return kbuf_steal(&b);
}
