/* SPDX-License-Identifier: Apache-2.0 */
/* Terraform's and OpenTofu's `external` data source protocol (kilt-terraform.h): decoding the
 * query object and encoding the result object. */
#include <string.h>

#include "internal.h"
#include "kilt.h"

#define MAX_QUERY_BYTES ((size_t)64 << 20)

static const char *const known_keys[] = { "container_definitions", "recipe", "mode", "config" };

static int bad(struct kilt_error *err, const char *key, const char *what)
{
	return kilt_error_set(err, -EINVAL, "query", 0, 0, "%s: %s", key, what);
}

/* Decodes the JSON text held in the string value of `key`. */
static int decode_value(const json_t *v, const char *key, json_t **ret, struct kilt_error *err)
{
	json_error_t jerr;
	json_t *j = kilt_json_loadb(json_string_value(v), json_string_length(v),
				    JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		char file[64];
		snprintf(file, sizeof(file), "query.%s", key);
		return kilt_error_set(err, -EINVAL, file, (unsigned)jerr.line,
				      (unsigned)jerr.column, "%s", jerr.text);
	}
	*ret = j;
	return 0;
}

int kilt_tf_query_parse(const char *text, size_t len, struct kilt_tf_query *ret,
			struct kilt_error *err)
{
	if (len > MAX_QUERY_BYTES)
		return kilt_error_set(err, -E2BIG, "query", 0, 0, "larger than %zu MiB",
				      MAX_QUERY_BYTES >> 20);
	json_error_t jerr;
	json_auto_t *q = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!q)
		return kilt_error_set(err, -EINVAL, "query", (unsigned)jerr.line,
				      (unsigned)jerr.column, "%s", jerr.text);
	if (!json_is_object(q))
		return kilt_error_set(err, -EINVAL, "query", 0, 0,
				      "expected a JSON object of strings (the external data "
				      "source's query)");
	struct kilt_tf_query out = { 0 };
	const char *key;
	json_t *v;
	int r = 0;
	json_object_foreach (q, key, v) {
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(known_keys); i++)
			known = known || strcmp(key, known_keys[i]) == 0;
		if (!known) {
			r = kilt_error_set(err, -EINVAL, "query", 0, 0,
					   "unknown key '%s' (known: container_definitions, "
					   "recipe, mode, config)",
					   key);
			break;
		}
		if (!json_is_string(v)) {
			r = bad(err, key,
				"expected a string (the external data source passes strings only; "
				"use jsonencode() for lists and objects)");
			break;
		}
		const char *s = json_string_value(v);
		if (strcmp(key, "container_definitions") == 0) {
			r = decode_value(v, key, &out.container_definitions, err);
			if (r == 0 && !json_is_array(out.container_definitions))
				r = bad(err, key,
					"expected the JSON text of an array of container "
					"definitions (jsonencode([...]))");
		} else if (strcmp(key, "recipe") == 0) {
			if (!*s || strlen(s) != json_string_length(v))
				r = bad(err, key, "expected the path of a recipe file");
			else
				out.recipe = xstrdup(s);
		} else if (strcmp(key, "mode") == 0) {
			out.has_mode = true;
			if (strcmp(s, "opt-in") == 0)
				out.opt_in = true;
			else if (strcmp(s, "opt-out") != 0)
				r = bad(err, key, "expected opt-in or opt-out");
		} else {
			r = decode_value(v, key, &out.config, err);
			if (r == 0 && !json_is_object(out.config))
				r = bad(err, key,
					"expected the JSON text of an object of recipe parameters "
					"(jsonencode({...}))");
		}
		if (r < 0)
			break;
	}
	if (r == 0 && !out.container_definitions)
		r = bad(err, "container_definitions",
			"missing (the query needs container_definitions = jsonencode([...]))");
	if (r < 0) {
		kilt_tf_query_done(&out);
		return r;
	}
	*ret = out;
	return 0;
}

void kilt_tf_query_done(struct kilt_tf_query *q)
{
	if (!q)
		return;
	json_decref(q->container_definitions);
	json_decref(q->config);
	free(q->recipe);
	*q = (struct kilt_tf_query){ 0 };
}

int kilt_tf_result(const json_t *doc, const struct kilt_report *report, char **ret, size_t *ret_len,
		   struct kilt_error *err)
{
	_cleanup_free_ char *defs = kilt_json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_auto_t *rep = kilt_report_to_json(report);
	_cleanup_free_ char *decisions = json_dumps(rep, JSON_COMPACT);
	if (!defs || !decisions)
		return kilt_error_setf(err, -EINVAL, "cannot encode the result as JSON");
	json_auto_t *out =
		json_pack("{s:s, s:s}", "container_definitions", defs, "decisions", decisions);
	char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
	if (!text)
		return kilt_error_setf(err, -EINVAL, "cannot encode the result as JSON");
	size_t n = strlen(text);
	text = xrealloc(text, n + 2);
	text[n] = '\n';
	text[n + 1] = '\0';
	*ret = text;
	if (ret_len)
		*ret_len = n + 1;
	return 0;
}
