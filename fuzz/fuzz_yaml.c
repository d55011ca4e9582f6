/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the YAML layer: any input either fails with a located message or loads, and
 * what loads must survive dump -> load (YAML and JSON) unchanged, key order included. The first
 * byte picks the flags (its low 3 bits: 1 = CloudFormation tags, 2 = multi-document, 4 = YAML
 * 1.2 schema), so corpus files can start with an ASCII digit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *input, size_t len, const char *a, const char *b)
{
	fprintf(stderr, "fuzz_yaml: %s\n--- input (%zu bytes)\n%.*s\n--- a\n%s\n--- b\n%s\n", what,
		len, (int)len, input, a ? a : "", b ? b : "");
	abort();
}

static char *canon(const json_t *v)
{
	return kilt_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Numbers kept as written in YAML 1.1's spelling, as the YAML writer puts them (a JSON input's
 * 1e400 comes back from YAML as 1.0e+400: the same number). */
static json_t *yaml11_numbers(json_t *v)
{
	const char *raw;
	size_t n;
	if (kilt_json_is_raw_number(v, &raw, &n)) {
		char *t = xmalloc(n + 5);
		json_t *r = kilt_json_raw_number(t, kilt_json_number_yaml11(raw, n, t, n + 5));
		free(t);
		json_decref(v);
		return r;
	}
	const char *k;
	json_t *x;
	void *tmp;
	json_object_foreach_safe (v, tmp, k, x)
		json_object_set_new(v, k, yaml11_numbers(json_incref(x)));
	for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++)
		json_array_set_new(v, i, yaml11_numbers(json_incref(json_array_get(v, i))));
	return v;
}

/* The JSON writer's output loads back to the same value. */
static void check_json(const json_t *a, const char *ca, unsigned flags, const char *text,
		       size_t len)
{
	/* JSON whose (first) document is a scalar is read as YAML, where `1e+34` may be a string
	 * (documented); templates and manifests are objects */
	const json_t *first = (flags & KILT_YAML_MULTI) ? json_array_get(a, 0) : a;
	if (first && !json_is_object(first) && !json_is_array(first))
		return;
	struct kilt_yaml_limits lim;
	kilt_yaml_limits_default(&lim);
	struct kilt_error err = { 0 };
	char *json = NULL;
	size_t jlen = 0;
	if (kilt_yaml_dump_json(a, flags, &json, &jlen, &err) < 0)
		die("json dump failed", text, len, ca, err.msg);
	lim.max_input_bytes = jlen + 1;
	json_t *c = NULL;
	if (kilt_yaml_load(json, jlen, "json", flags, &lim, &c, &err) < 0)
		die("json dump does not load", text, len, json, err.msg);
	_cleanup_free_ char *cc = canon(c);
	if (strcmp(ca, cc) != 0)
		die("json round trip changed the value", text, len, ca, cc);
	json_decref(c);
	free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned flags = data[0] & 7u;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	struct kilt_yaml_limits lim;
	kilt_yaml_limits_default(&lim);
	lim.max_alias_nodes = 20000;
	struct kilt_error err = { 0 };
	json_t *a = NULL;
	if (kilt_yaml_load(text, len, "fuzz", flags, &lim, &a, &err) < 0) {
		if (err.code >= 0 || !err.msg[0] || strcmp(err.file, "fuzz") != 0)
			die("error without code, message or file", text, len, err.msg, NULL);
		return 0;
	}
	_cleanup_free_ char *ca = canon(a);
	char *yaml = NULL;
	size_t ylen = 0;
	if (kilt_yaml_dump(a, flags, &yaml, &ylen, &err) < 0)
		die("dump failed", text, len, ca, err.msg);
	/* the dump has no aliases and is at most as deep as the input */
	lim.max_input_bytes = ylen + 1;
	json_t *b = NULL;
	if (kilt_yaml_load(yaml, ylen, "dump", flags, &lim, &b, &err) < 0)
		die("dump does not load", text, len, yaml, err.msg);
	_cleanup_free_ char *cb = canon(b);
	json_t *a11 =
		(flags & KILT_YAML_SCHEMA_1_2) ? json_incref(a) : yaml11_numbers(json_deep_copy(a));
	_cleanup_free_ char *ca11 = canon(a11);
	if (strcmp(ca11, cb) != 0 || !json_equal(a11, b))
		die("yaml round trip changed the value", text, len, ca11, cb);
	json_decref(a11);
	char *yaml2 = NULL;
	if (kilt_yaml_dump(b, flags, &yaml2, NULL, &err) < 0 || strcmp(yaml, yaml2) != 0)
		die("dump is not a fixed point", text, len, yaml, yaml2);
	check_json(a, ca, flags, text, len);
	json_decref(a);
	json_decref(b);
	free(yaml);
	free(yaml2);
	return 0;
}
