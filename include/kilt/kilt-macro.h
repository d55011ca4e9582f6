/* SPDX-License-Identifier: Apache-2.0 */
/* The CloudFormation macro's pure logic: decoding the macro event, resolving the per-stack
 * settings from their layers (Transform parameters, the template's KiltSettings mapping, the
 * function's environment, defaults) and building the reply. The Lambda runtime loop, recipe
 * fetching and logging live in src/. Included by kilt.h. */
#ifndef KILT_MACRO_H
#define KILT_MACRO_H

/* CloudFormation's limits: a Lambda payload is at most 6 MB; a processed template at most 1 MB. */
#define KILT_MACRO_MAX_EVENT ((size_t)6 * 1024 * 1024)
#define KILT_MACRO_MAX_TEMPLATE ((size_t)1024 * 1024)
/* The longest errorMessage sent back: CloudFormation shows it in the stack's events. */
#define KILT_MACRO_MAX_MESSAGE ((size_t)4000)
/* The template mapping that carries per-stack settings (see docs/cloudformation.md). */
#define KILT_MACRO_MAPPING "KiltSettings"
/* The recipe compiled into the binary, and the spelling that selects it. */
#define KILT_MACRO_BUILTIN_PREFIX "builtin:"

/* A decoded macro event. Caller-owned; release with kilt_macro_event_done(). Every pointer but
 * `root` is borrowed from `root`. */
struct kilt_macro_event {
	json_t *root; /* owned: the whole event */
	const char *request_id; /* never NULL */
	const char *region; /* "" when absent */
	const char *account_id; /* "" when absent */
	const char *transform_id; /* "" when absent */
	json_t *fragment; /* the template; NULL when absent (reported by kilt_macro_event_check) */
	/* What to patch: `fragment` itself for a template-level Transform, or, when the macro is
	 * called through Fn::Transform inside a template's Resources (the only way to pass it
	 * Parameters), a template {"Resources": fragment} made around that map of resources.
	 * NULL when the fragment is neither. Reply with kilt_macro_event_result(). */
	json_t *template; /* owned reference */
	bool resources_only; /* `template` wraps a map of resources */
	const json_t *params; /* Transform parameters: an object, possibly empty */
	const json_t *parameter_values; /* templateParameterValues: an object, possibly empty */
};

/* Decodes an event. Fails (-EINVAL, with line/column for bad JSON) only when the event cannot be
 * answered at all: not JSON, not an object, or no string requestId. Everything else that is wrong
 * is found by kilt_macro_event_check() so it can be answered with status "failure". `len` is at
 * most KILT_MACRO_MAX_EVENT (else -E2BIG). `ret` is untouched on failure. */
int kilt_macro_event_parse(const char *text, size_t len, struct kilt_macro_event *ret,
			   struct kilt_error *err);
/* Checks the parts the macro relies on: the fragment is a template (an object whose Resources is
 * an object) or a map of resources (Fn::Transform inside Resources), params and
 * templateParameterValues are objects when present. */
int kilt_macro_event_check(const struct kilt_macro_event *ev, struct kilt_error *err);
/* The fragment to send back after `ev->template` was patched (the Resources map again when the
 * event carried only that); borrowed. */
json_t *kilt_macro_event_result(const struct kilt_macro_event *ev);
/* Releases the event's contents; NULL and a zeroed struct are fine. */
void kilt_macro_event_done(struct kilt_macro_event *ev);

/* Where a setting came from, highest precedence first. */
enum kilt_macro_layer {
	KILT_MACRO_LAYER_PARAMS = 0, /* the Transform's Parameters */
	KILT_MACRO_LAYER_MAPPING, /* the template's Mappings.KiltSettings */
	KILT_MACRO_LAYER_ENV, /* the function's environment (built by the front end) */
	KILT_MACRO_LAYER_DEFAULT,
	KILT_MACRO_LAYER_COUNT,
};
/* "Transform parameters", "Mappings.KiltSettings", "function environment", "default". */
const char *kilt_macro_layer_name(enum kilt_macro_layer layer);

enum kilt_macro_mode {
	KILT_MACRO_OPT_OUT = 0, /* patch every task definition unless tagged kilt-ignore */
	KILT_MACRO_OPT_IN, /* patch only task definitions tagged kilt-include */
};

/* The settings in force for one stack. Caller-owned; release with kilt_macro_settings_done(). */
struct kilt_macro_settings {
	enum kilt_macro_mode mode;
	/* The recipe, exactly one of: inline text (decoded from base64 when it was), a location
	 * ("https://...", "s3://bucket/key") or a builtin name ("falco" for "builtin:falco"). */
	char *recipe_text; /* owned or NULL */
	char *recipe_url; /* owned or NULL */
	char *recipe_builtin; /* owned or NULL */
	char *recipe_sha256; /* owned, lower-case hex, or NULL: verified against the fetched text */
	json_t *config; /* owned object: the recipe's config.* values, merged key by key */
	char *log_group; /* owned or NULL: awslogs group for added containers */
	char *image_auth_secret; /* owned or NULL: Secrets Manager ARN for private agent images */
	enum kilt_macro_layer mode_from, recipe_from, log_group_from, image_auth_secret_from;
};

/* Resolves the settings for one stack. Each layer is an object of setting names (Mode, Recipe,
 * RecipeUrl, RecipeSha256, LogGroup, ImageAuthSecret, Config, and "Config.<key>" shortcuts);
 * `params` is the Transform's Parameters, `env` what the front end read from the function's
 * environment (either may be NULL). The mapping layer is read from `fragment`'s
 * Mappings.KiltSettings: its "Settings" key holds setting names, its "Config" key recipe config.
 * The highest layer that sets a value wins; Recipe/RecipeUrl are one setting (the recipe's
 * location) and RecipeSha256 goes with the layer that chose it. Unknown names and bad values fail
 * with an error naming the layer, the name and what is accepted. */
int kilt_macro_settings_resolve(const json_t *params, const json_t *fragment, const json_t *env,
				struct kilt_macro_settings *ret, struct kilt_error *err);
void kilt_macro_settings_done(struct kilt_macro_settings *s);
/* A stable text naming the recipe's location ("builtin:falco", the URL, or "inline:<sha256 of
 * the text>"): the key under which a front end caches the loaded recipe. Owned. */
char *kilt_macro_settings_recipe_key(const struct kilt_macro_settings *s);

/* Lower-case hex SHA-256 of `len` bytes into `hex` (65 bytes). */
void kilt_macro_sha256_hex(const void *data, size_t len, char hex[65]);

/* Builds the reply. With `fragment` (status "success") the processed template must serialize to
 * at most KILT_MACRO_MAX_TEMPLATE bytes, else -E2BIG with a message a user can act on. With
 * `fragment` NULL the reply is status "failure" with `message` (cut to KILT_MACRO_MAX_MESSAGE);
 * that form never fails. `ret` receives an owned NUL-terminated JSON text. */
int kilt_macro_reply(const char *request_id, const json_t *fragment, const char *message,
		     char **ret, size_t *ret_len, struct kilt_error *err);

#endif
