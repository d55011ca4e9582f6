/* SPDX-License-Identifier: Apache-2.0 */
/* The CloudFormation macro's pure logic: event decoding, per-stack settings and the reply
 * (see kilt-macro.h; the Lambda loop and recipe fetching are in src/). */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "internal.h"
#include "kilt.h"

/* ---- event --------------------------------------------------------------------------------- */

static const char *opt_string(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

/* A map of resources, as Fn::Transform inside Resources sees its siblings: a non-empty object
 * whose every member is an object with a string Type. */
static bool is_resource_map(const json_t *fragment)
{
	if (!json_is_object(fragment) || json_object_size(fragment) == 0)
		return false;
	const char *key;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)fragment, key, v) {
		if (!json_is_string(json_object_get(v, "Type")))
			return false;
	}
	return true;
}

int kilt_macro_event_parse(const char *text, size_t len, struct kilt_macro_event *ret,
			   struct kilt_error *err)
{
	if (len > KILT_MACRO_MAX_EVENT)
		return kilt_error_setf(err, -E2BIG,
				       "event: %zu bytes, over the %zu-byte Lambda payload limit",
				       len, KILT_MACRO_MAX_EVENT);
	json_error_t jerr;
	/* Duplicate keys are rejected: a template where one key hides another is ambiguous. */
	json_t *root = kilt_json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!root)
		return kilt_error_set(err, -EINVAL, NULL, (unsigned)jerr.line,
				      (unsigned)jerr.column, "event: not JSON: %s", jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return kilt_error_setf(err, -EINVAL, "event: expected a JSON object");
	}
	const char *rid = json_string_value(json_object_get(root, "requestId"));
	if (!rid) {
		json_decref(root);
		return kilt_error_setf(err, -EINVAL,
				       "event: no string \"requestId\": not a CloudFormation "
				       "macro event");
	}
	json_t *params = json_object_get(root, "params");
	if (!params || json_is_null(params)) {
		params = json_object();
		json_object_set_new(root, "params", params);
	}
	json_t *values = json_object_get(root, "templateParameterValues");
	if (!values || json_is_null(values)) {
		values = json_object();
		json_object_set_new(root, "templateParameterValues", values);
	}
	json_t *fragment = json_object_get(root, "fragment");
	json_t *template = NULL;
	bool resources_only = false;
	if (json_is_object(json_object_get(fragment, "Resources"))) {
		template = json_incref(fragment);
	} else if (is_resource_map(fragment)) {
		template = json_pack("{s:O}", "Resources", fragment);
		resources_only = true;
	}
	*ret = (struct kilt_macro_event){
		.root = root,
		.template = template,
		.resources_only = resources_only,
		.request_id = rid,
		.region = opt_string(root, "region"),
		.account_id = opt_string(root, "accountId"),
		.transform_id = opt_string(root, "transformId"),
		.fragment = fragment,
		.params = params,
		.parameter_values = values,
	};
	return 0;
}

int kilt_macro_event_check(const struct kilt_macro_event *ev, struct kilt_error *err)
{
	if (!ev->fragment)
		return kilt_error_setf(err, -EINVAL,
				       "event has no \"fragment\": the macro must be listed in the "
				       "template's top-level Transform");
	if (!ev->template) {
		json_t *res = json_object_get(ev->fragment, "Resources");
		return kilt_error_setf(
			err, -EINVAL,
			"fragment: %s; list the macro in the template's Transform (or "
			"call it with Fn::Transform inside Resources)",
			!json_is_object(ev->fragment) ? "expected a template object"
			: res			      ? "Resources is not an object"
						      : "the template has no Resources");
	}
	if (!json_is_object(ev->params))
		return kilt_error_setf(err, -EINVAL,
				       "Transform parameters: expected an object of settings");
	if (!json_is_object(ev->parameter_values))
		return kilt_error_setf(err, -EINVAL, "templateParameterValues: expected an object");
	return 0;
}

json_t *kilt_macro_event_result(const struct kilt_macro_event *ev)
{
	return ev->resources_only ? json_object_get(ev->template, "Resources") : ev->template;
}

void kilt_macro_event_done(struct kilt_macro_event *ev)
{
	if (!ev)
		return;
	json_decref(ev->template);
	json_decref(ev->root);
	*ev = (struct kilt_macro_event){ 0 };
}

/* ---- settings ------------------------------------------------------------------------------ */

const char *kilt_macro_layer_name(enum kilt_macro_layer layer)
{
	switch (layer) {
	case KILT_MACRO_LAYER_PARAMS:
		return "Transform parameters";
	case KILT_MACRO_LAYER_MAPPING:
		return "Mappings." KILT_MACRO_MAPPING;
	case KILT_MACRO_LAYER_ENV:
		return "function environment";
	case KILT_MACRO_LAYER_DEFAULT:
	case KILT_MACRO_LAYER_COUNT:
		break;
	}
	return "default";
}

#define KNOWN_SETTINGS "Mode, Recipe, RecipeUrl, RecipeSha256, LogGroup, ImageAuthSecret, Config"

/* One layer, normalized: every value checked for type and flattened into a plain object. */
struct layer {
	const char *mode, *recipe, *recipe_url, *recipe_sha256, *log_group, *image_auth_secret;
	json_t *config; /* owned object */
};

static void layer_done(struct layer *l)
{
	json_decref(l->config);
	*l = (struct layer){ 0 };
}

/* Mapping values may be lists of strings; settings take only scalars. */
static int scalar_string(const json_t *v, const char *where, const char *key, const char **ret,
			 struct kilt_error *err)
{
	const char *s = json_string_value(v);
	if (!s)
		return kilt_error_setf(err, -EINVAL, "%s: %s: expected a string%s", where, key,
				       json_is_object(v) ? " (an intrinsic function that "
							   "CloudFormation did not resolve?)"
							 : "");
	if (strlen(s) != json_string_length(v))
		return kilt_error_setf(err, -EINVAL, "%s: %s: contains a NUL byte", where, key);
	*ret = s;
	return 0;
}

/* Config values are the recipe's config.*: strings, numbers and booleans are accepted. */
static int add_config(json_t *config, const char *where, const char *key, json_t *v,
		      struct kilt_error *err)
{
	if (!*key)
		return kilt_error_setf(err, -EINVAL, "%s: Config: empty key", where);
	if (!(json_is_string(v) || json_is_number(v) || json_is_boolean(v)))
		return kilt_error_setf(err, -EINVAL,
				       "%s: Config.%s: expected a string, number or boolean", where,
				       key);
	json_object_set(config, key, v);
	return 0;
}

static int config_object(json_t *config, const char *where, json_t *v, struct kilt_error *err)
{
	json_t *src = v;
	json_auto_t *parsed = NULL;
	/* Transform parameters and environments are strings: accept a JSON object spelled as one. */
	if (json_is_string(v)) {
		json_error_t jerr;
		parsed = json_loads(json_string_value(v), JSON_REJECT_DUPLICATES, &jerr);
		if (!parsed)
			return kilt_error_setf(err, -EINVAL,
					       "%s: Config: expected a JSON object: %s (column %d)",
					       where, jerr.text, jerr.column);
		src = parsed;
	}
	if (!json_is_object(src))
		return kilt_error_setf(err, -EINVAL, "%s: Config: expected an object", where);
	const char *k;
	json_t *val;
	json_object_foreach (src, k, val) {
		int r = add_config(config, where, k, val, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int layer_read(const json_t *obj, const char *where, struct layer *ret,
		      struct kilt_error *err)
{
	struct layer l = { .config = json_object() };
	int r = 0;
	if (obj && !json_is_object(obj)) {
		r = kilt_error_setf(err, -EINVAL, "%s: expected an object of settings", where);
		goto fail;
	}
	const char *key;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)obj, key, v) {
		if (strcmp(key, "Mode") == 0)
			r = scalar_string(v, where, key, &l.mode, err);
		else if (strcmp(key, "Recipe") == 0)
			r = scalar_string(v, where, key, &l.recipe, err);
		else if (strcmp(key, "RecipeUrl") == 0)
			r = scalar_string(v, where, key, &l.recipe_url, err);
		else if (strcmp(key, "RecipeSha256") == 0)
			r = scalar_string(v, where, key, &l.recipe_sha256, err);
		else if (strcmp(key, "LogGroup") == 0)
			r = scalar_string(v, where, key, &l.log_group, err);
		else if (strcmp(key, "ImageAuthSecret") == 0)
			r = scalar_string(v, where, key, &l.image_auth_secret, err);
		else if (strcmp(key, "Config") == 0)
			r = config_object(l.config, where, v, err);
		else if (strncmp(key, "Config.", 7) == 0)
			r = add_config(l.config, where, key + 7, v, err);
		else
			r = kilt_error_setf(err, -EINVAL,
					    "%s: unknown setting \"%s\" (known: " KNOWN_SETTINGS
					    ", Config.<name>)",
					    where, key);
		if (r < 0)
			goto fail;
	}
	if (l.recipe && l.recipe_url) {
		r = kilt_error_setf(err, -EINVAL,
				    "%s: both Recipe and RecipeUrl are set; give one of them",
				    where);
		goto fail;
	}
	if (l.recipe_sha256 && !l.recipe && !l.recipe_url) {
		r = kilt_error_setf(err, -EINVAL,
				    "%s: RecipeSha256 is set without Recipe or RecipeUrl in the "
				    "same place; set it beside the recipe it verifies",
				    where);
		goto fail;
	}
	*ret = l;
	return 0;
fail:
	layer_done(&l);
	return r;
}

/* The mapping layer: Mappings.KiltSettings.Settings.* (Settings.Config may hold a JSON object as a
 * string, since CloudFormation only allows alphanumeric second-level keys in a mapping) and
 * Mappings.KiltSettings.Config.* (alphanumeric config names). */
static int mapping_read(const json_t *fragment, struct layer *ret, struct kilt_error *err)
{
	const char *where = kilt_macro_layer_name(KILT_MACRO_LAYER_MAPPING);
	const json_t *map =
		json_object_get(json_object_get(fragment, "Mappings"), KILT_MACRO_MAPPING);
	if (!map)
		return layer_read(NULL, where, ret, err);
	if (!json_is_object(map))
		return kilt_error_setf(err, -EINVAL, "%s: expected a mapping", where);
	const char *key;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)map, key, v) {
		if (strcmp(key, "Settings") != 0 && strcmp(key, "Config") != 0)
			return kilt_error_setf(err, -EINVAL,
					       "%s: unknown key \"%s\" (known: Settings, Config)",
					       where, key);
	}
	const json_t *settings = json_object_get(map, "Settings");
	const json_t *config = json_object_get(map, "Config");
	if (settings && !json_is_object(settings))
		return kilt_error_setf(err, -EINVAL, "%s: Settings: expected an object", where);
	struct layer l;
	int r = layer_read(settings, where, &l, err);
	if (r < 0)
		return r;
	if (config) {
		r = config_object(l.config, where, (json_t *)(uintptr_t)config, err);
		if (r < 0) {
			layer_done(&l);
			return r;
		}
	}
	*ret = l;
	return 0;
}

static bool is_sha256_hex(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return false;
	return true;
}

/* Decodes standard or URL-safe base64, ignoring whitespace. Returns NULL when `s` is not base64
 * or decodes to something that is not text (a NUL byte). */
static char *base64_decode_text(const char *s)
{
	char *out = NULL;
	size_t len = 0;
	if (kilt_base64_decode(s, strlen(s), &out, &len, NULL) < 0)
		return NULL;
	if (memchr(out, '\0', len)) {
		free(out);
		return NULL;
	}
	return out;
}

/* Inline recipes: "base64:..." explicitly, or a value made only of base64 characters (a HOCON
 * recipe always has braces, colons or spaces, so it can never be mistaken for one). */
static int decode_inline(const char *value, const char *where, char **ret, struct kilt_error *err)
{
	const char *b64 = NULL;
	if (strncmp(value, "base64:", 7) == 0)
		b64 = value + 7;
	else if (strlen(value) >= 8 &&
		 strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
			       "vwxyz0123456789+/=-_\n\r") == strlen(value))
		b64 = value;
	if (!b64) {
		*ret = xstrdup(value);
		return 0;
	}
	char *text = base64_decode_text(b64);
	if (!text)
		return kilt_error_setf(err, -EINVAL,
				       "%s: Recipe: looks like base64 but does not decode to text; "
				       "give the recipe as HOCON text or valid base64",
				       where);
	*ret = text;
	return 0;
}

static int check_url(const char *url, const char *where, struct kilt_error *err)
{
	if (strncmp(url, "https://", 8) == 0 && url[8])
		return 0;
	if (strncmp(url, "s3://", 5) == 0) {
		const char *slash = strchr(url + 5, '/');
		if (slash && slash > url + 5 && slash[1])
			return 0;
		return kilt_error_setf(err, -EINVAL,
				       "%s: RecipeUrl \"%s\": expected s3://<bucket>/<key>", where,
				       url);
	}
	if (strncmp(url, KILT_MACRO_BUILTIN_PREFIX, strlen(KILT_MACRO_BUILTIN_PREFIX)) == 0 &&
	    url[strlen(KILT_MACRO_BUILTIN_PREFIX)])
		return 0;
	return kilt_error_setf(
		err, -EINVAL,
		"%s: RecipeUrl \"%.200s\": expected https://..., s3://<bucket>/<key> "
		"or " KILT_MACRO_BUILTIN_PREFIX "<name>",
		where, url);
}

static int set_string(char **dst, const char *value)
{
	free(*dst);
	*dst = value ? xstrdup(value) : NULL;
	return 0;
}

int kilt_macro_settings_resolve(const json_t *params, const json_t *fragment, const json_t *env,
				struct kilt_macro_settings *ret, struct kilt_error *err)
{
	struct layer layers[KILT_MACRO_LAYER_COUNT] = { 0 };
	struct kilt_macro_settings s = {
		.mode = KILT_MACRO_OPT_OUT,
		.config = json_object(),
		.mode_from = KILT_MACRO_LAYER_DEFAULT,
		.recipe_from = KILT_MACRO_LAYER_DEFAULT,
		.log_group_from = KILT_MACRO_LAYER_DEFAULT,
		.image_auth_secret_from = KILT_MACRO_LAYER_DEFAULT,
	};
	int r = layer_read(params, kilt_macro_layer_name(KILT_MACRO_LAYER_PARAMS),
			   &layers[KILT_MACRO_LAYER_PARAMS], err);
	if (r >= 0)
		r = mapping_read(fragment, &layers[KILT_MACRO_LAYER_MAPPING], err);
	if (r >= 0)
		r = layer_read(env, kilt_macro_layer_name(KILT_MACRO_LAYER_ENV),
			       &layers[KILT_MACRO_LAYER_ENV], err);
	if (r < 0)
		goto out;
	layers[KILT_MACRO_LAYER_DEFAULT] = (struct layer){
		.recipe_url = KILT_MACRO_BUILTIN_PREFIX "falco",
		.config = json_object(),
	};

	/* Walk from the lowest layer up so higher layers overwrite. */
	for (int i = KILT_MACRO_LAYER_COUNT - 1; i >= 0; i--) {
		const struct layer *l = &layers[i];
		const char *where = kilt_macro_layer_name((enum kilt_macro_layer)i);
		if (l->mode) {
			if (strcmp(l->mode, "opt-out") == 0)
				s.mode = KILT_MACRO_OPT_OUT;
			else if (strcmp(l->mode, "opt-in") == 0)
				s.mode = KILT_MACRO_OPT_IN;
			else {
				r = kilt_error_setf(err, -EINVAL,
						    "%s: Mode \"%.100s\": expected \"opt-in\" "
						    "(patch only task definitions tagged "
						    "kilt-include) or \"opt-out\" (patch all but "
						    "those tagged kilt-ignore)",
						    where, l->mode);
				goto out;
			}
			s.mode_from = (enum kilt_macro_layer)i;
		}
		if (l->recipe || l->recipe_url) {
			free(s.recipe_text);
			free(s.recipe_url);
			free(s.recipe_builtin);
			free(s.recipe_sha256);
			s.recipe_text = s.recipe_url = s.recipe_builtin = s.recipe_sha256 = NULL;
			if (l->recipe) {
				if (!*l->recipe) {
					r = kilt_error_setf(err, -EINVAL, "%s: Recipe is empty",
							    where);
					goto out;
				}
				r = decode_inline(l->recipe, where, &s.recipe_text, err);
				if (r < 0)
					goto out;
			} else {
				r = check_url(l->recipe_url, where, err);
				if (r < 0)
					goto out;
				if (strncmp(l->recipe_url, KILT_MACRO_BUILTIN_PREFIX,
					    strlen(KILT_MACRO_BUILTIN_PREFIX)) == 0)
					s.recipe_builtin = xstrdup(
						l->recipe_url + strlen(KILT_MACRO_BUILTIN_PREFIX));
				else
					s.recipe_url = xstrdup(l->recipe_url);
			}
			if (l->recipe_sha256) {
				if (!is_sha256_hex(l->recipe_sha256)) {
					r = kilt_error_setf(err, -EINVAL,
							    "%s: RecipeSha256: expected 64 hex "
							    "digits (sha256sum of the recipe file)",
							    where);
					goto out;
				}
				s.recipe_sha256 = xstrdup(l->recipe_sha256);
				for (char *p = s.recipe_sha256; *p; p++)
					*p = (char)tolower((unsigned char)*p);
			}
			s.recipe_from = (enum kilt_macro_layer)i;
		}
		if (l->log_group) {
			set_string(&s.log_group, *l->log_group ? l->log_group : NULL);
			s.log_group_from = (enum kilt_macro_layer)i;
		}
		if (l->image_auth_secret) {
			set_string(&s.image_auth_secret,
				   *l->image_auth_secret ? l->image_auth_secret : NULL);
			s.image_auth_secret_from = (enum kilt_macro_layer)i;
		}
		json_object_update(s.config, l->config);
	}
	/* An https URL is fetched from anywhere: only a pinned hash makes it safe. */
	if (s.recipe_url && strncmp(s.recipe_url, "https://", 8) == 0 && !s.recipe_sha256) {
		r = kilt_error_setf(err, -EINVAL,
				    "%s: RecipeUrl %.200s has no RecipeSha256; set RecipeSha256 "
				    "to the recipe's sha256sum so a changed file is never applied",
				    kilt_macro_layer_name(s.recipe_from), s.recipe_url);
		goto out;
	}
	*ret = s;
	s = (struct kilt_macro_settings){ 0 };
out:
	kilt_macro_settings_done(&s);
	for (size_t i = 0; i < ARRAY_SIZE(layers); i++)
		layer_done(&layers[i]);
	return r < 0 ? r : 0;
}

void kilt_macro_settings_done(struct kilt_macro_settings *s)
{
	if (!s)
		return;
	free(s->recipe_text);
	free(s->recipe_url);
	free(s->recipe_builtin);
	free(s->recipe_sha256);
	json_decref(s->config);
	free(s->log_group);
	free(s->image_auth_secret);
	*s = (struct kilt_macro_settings){ 0 };
}

void kilt_macro_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
		abort();
	for (unsigned i = 0; i < n && i < 32; i++) {
		static const char digits[] = "0123456789abcdef";
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[64] = '\0';
}

char *kilt_macro_settings_recipe_key(const struct kilt_macro_settings *s)
{
	const char *sha = s->recipe_sha256 ? s->recipe_sha256 : "";
	if (s->recipe_text) {
		char hex[65];
		kilt_macro_sha256_hex(s->recipe_text, strlen(s->recipe_text), hex);
		return xasprintf("inline:%s", hex);
	}
	if (s->recipe_url)
		return xasprintf("%s#%s", s->recipe_url, sha);
	return xasprintf(KILT_MACRO_BUILTIN_PREFIX "%s#%s",
			 s->recipe_builtin ? s->recipe_builtin : "", sha);
}

/* ---- reply --------------------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s[0..n) (shortest form, no surrogates), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t k;
	uint32_t min;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		k = 2;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		k = 3;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		k = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (k > n)
		return 0;
	uint32_t cp = s[0] & (0xffu >> (k + 1));
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0u) != 0x80u)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

int kilt_macro_reply(const char *request_id, const json_t *fragment, const char *message,
		     char **ret, size_t *ret_len, struct kilt_error *err)
{
	json_auto_t *reply = json_object();
	json_object_set_new(reply, "requestId", json_string(request_id ? request_id : ""));
	if (fragment) {
		json_object_set_new(reply, "status", json_string("success"));
		/* Serialize once (a 1 MB template is the slow part): the template's size is the
		 * reply's minus the same reply with "fragment":null (4 bytes of value). */
		json_object_set_new(reply, "fragment", json_null());
		size_t frame = json_dumpb(reply, NULL, 0, JSON_COMPACT) - 4;
		json_object_set(reply, "fragment", (json_t *)(uintptr_t)fragment);
		char *text = kilt_json_dumps(reply, JSON_COMPACT);
		if (!text)
			abort();
		size_t len = strlen(text);
		size_t size = len - frame;
		if (size > KILT_MACRO_MAX_TEMPLATE) {
			free(text);
			return kilt_error_setf(
				err, -E2BIG,
				"the processed template is %zu bytes, over CloudFormation's "
				"%zu-byte limit for processed templates; split the stack into "
				"nested stacks or patch fewer task definitions (tag some "
				"kilt-ignore, or use Mode opt-in)",
				size, KILT_MACRO_MAX_TEMPLATE);
		}
		*ret_len = len;
		*ret = text;
		return 0;
	}
	const char *m = message && *message ? message : "kilt: unknown error";
	size_t n = strnlen(m, KILT_MACRO_MAX_MESSAGE);
	json_object_set_new(reply, "status", json_string("failure"));
	/* Cut on a UTF-8 boundary so the text stays valid. */
	while (n > 0 && m[n] && ((unsigned char)m[n] & 0xc0u) == 0x80u)
		n--;
	/* Messages are cut at fixed sizes on their way up, which can split a UTF-8 sequence: each
	 * byte that is not part of a valid one becomes '?', the rest of the message stays. */
	_cleanup_free_ char *clean = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_len((const unsigned char *)m + i, n - i);
		if (k == 0) {
			clean[o++] = '?';
			i++;
		} else {
			memcpy(clean + o, m + i, k);
			o += k;
			i += k;
		}
	}
	json_t *msg = json_stringn(clean, o);
	if (!msg) /* never fail a failure reply */
		msg = json_string("kilt: error message was not valid UTF-8");
	json_object_set_new(reply, "errorMessage", msg);
	char *text = kilt_json_dumps(reply, JSON_COMPACT);
	if (!text)
		abort();
	*ret_len = strlen(text);
	*ret = text;
	return 0;
}
