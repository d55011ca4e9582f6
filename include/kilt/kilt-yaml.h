/* SPDX-License-Identifier: Apache-2.0 */
/* YAML <-> JSON (jansson) for CloudFormation templates (short-form tags such as `!Ref`, `!Sub`,
 * `!GetAtt a.b` become their long forms on input and come back on output) and for multi-document
 * Kubernetes manifests. Included by kilt.h. Internals: docs/yaml.md.
 *
 * Thread safety: every function is reentrant; nothing here keeps global state.
 * Comments of the input cannot survive a trip through json_t and are lost. */
#ifndef KILT_YAML_H
#define KILT_YAML_H

enum kilt_yaml_flags {
	/* Load: map CloudFormation short forms to long forms (`!Ref x` -> {"Ref": "x"}); any other
	 * local tag is an error. Dump: write every single-key intrinsic object in short form.
	 * Without it, `!Foo` tags are errors on load and "Ref"/"Fn::*" keys are plain keys on dump. */
	KILT_YAML_CFN_TAGS = 1u << 0,
	/* Load: the result is an array with one element per document of the stream (documents
	 * that are empty or null are skipped, as kubectl does). Dump: `root` must be an array; each
	 * element is written as one document, separated by `---`. */
	KILT_YAML_MULTI = 1u << 1,
	/* Load: resolve plain scalars with the YAML 1.2 core schema (`1e3` is 1000.0, `0755` is
	 * 755, `yes` is a string) instead of the default YAML 1.1 rules that CloudFormation and
	 * cfn-lint use (`yes`/`on` are booleans, `0755` is octal 493, `1e3` is a string). */
	KILT_YAML_SCHEMA_1_2 = 1u << 2,
};

/* The default input limit, and the most kilt_yaml_dump and kilt_yaml_dump_json write (so kilt
 * reads back whatever it wrote): 8 MiB. */
#define KILT_YAML_MAX_INPUT_BYTES 8388608u

/* Limits on untrusted input; each has its own error message when exceeded (code -E2BIG). */
struct kilt_yaml_limits {
	size_t max_input_bytes; /* default 8 MiB (CloudFormation macro payloads are <= 6 MB) */
	unsigned max_depth; /* nesting of mappings/sequences, default 128 */
	size_t max_alias_nodes; /* nodes created by expanding aliases, in total; default 100000 */
	size_t max_documents; /* per stream, default 10000 */
	/* bytes of string and key text copied by expanding aliases, in total per document;
	 * default 8 MiB (one large anchored scalar aliased many times is few nodes, many bytes) */
	size_t max_alias_bytes;
};

/* Fills `ret` with the defaults above. */
void kilt_yaml_limits_default(struct kilt_yaml_limits *ret);

/* The syntax of an input buffer, as far as its first significant byte tells. */
enum kilt_format {
	KILT_FORMAT_JSON = 1,
	KILT_FORMAT_YAML = 2,
};

/* JSON when the first byte after an optional UTF-8 BOM and whitespace is `{` or `[` (a YAML
 * flow collection at the root also looks like this; kilt_yaml_load copes), else YAML.
 * `buf` may be NULL when `len` is 0. */
enum kilt_format kilt_yaml_detect(const char *buf, size_t len);

/* Parses `len` bytes of YAML (or JSON: input that kilt_yaml_detect calls JSON is read with
 * jansson first, for speed and exact numbers, and with the YAML parser only if jansson rejects
 * it) into `ret` (owned). `buf` need not be NUL-terminated. `name` (may be NULL) is copied into
 * err->file. `limits` may be NULL for the defaults.
 *
 * Scalars: quoted and block scalars are strings; plain scalars are resolved as documented for
 * KILT_YAML_SCHEMA_1_2 above; `.inf` and `.nan` (which JSON cannot hold) and timestamps stay
 * strings; integers that do not fit in 64 bits stay strings too, except in a CloudFormation
 * template (KILT_YAML_CFN_TAGS without KILT_YAML_MULTI), where a number jansson cannot hold
 * exactly is kept as written (kilt_json_number_keep, kilt_json_loadb). Keys are always the
 * scalar's text. Anchors and aliases are expanded into independent copies (bounded by
 * max_alias_nodes and max_alias_bytes); a merge key `<<` is applied without KILT_YAML_CFN_TAGS
 * and is an error with it (CloudFormation rejects it).
 *
 * Errors (err has file, 1-based line and column, and a message): syntax errors from the YAML
 * parser, unknown tag, duplicate key, undefined or recursive alias, a key that is not a scalar,
 * invalid UTF-8 or a NUL in a key (-EINVAL); input, depth, alias or document limit (-E2BIG). */
int kilt_yaml_load(const char *buf, size_t len, const char *name, unsigned flags,
		   const struct kilt_yaml_limits *limits, json_t **ret, struct kilt_error *err);

/* True when the YAML text `buf` holds a comment (`# ...` outside scalars): kilt_yaml_load drops
 * comments, so a front end that rewrites the file can say so. Text the scanner cannot read counts
 * as having none (kilt_yaml_load reports the error). */
bool kilt_yaml_has_comments(const char *buf, size_t len);

/* Reads `path` (at most limits->max_input_bytes) and loads it; err->file is `path`. */
int kilt_yaml_load_file(const char *path, unsigned flags, const struct kilt_yaml_limits *limits,
			json_t **ret, struct kilt_error *err);

/* Writes `root` (borrowed) as YAML into a new NUL-terminated heap string `ret` (length in
 * `ret_len`, which may be NULL). Block style, 2-space indentation, object keys in the json_t's
 * order, sequences indented under their key, strings quoted whenever a YAML 1.1 or 1.2 reader
 * could take them for something else (`"true"`, `"123"`, `"0755"`, `"null"`, `""`, `"a: b"`,
 * leading indicators...), multi-line strings as literal blocks (`|`) where that is exact.
 * Deterministic: the same json_t always gives the same bytes. Ends with a newline.
 * Round trip: kilt_yaml_load(kilt_yaml_dump(j)) equals j with the same flags.
 * Errors: KILT_YAML_MULTI with a root that is not an array, or a real that is not finite
 * (-EINVAL); more than KILT_YAML_MAX_INPUT_BYTES of output (-E2BIG). */
int kilt_yaml_dump(const json_t *root, unsigned flags, char **ret, size_t *ret_len,
		   struct kilt_error *err);

/* Like kilt_yaml_dump, but hands the same text to `write` (with `userdata`) in pieces as it is
 * produced (a piece is at most 64 KiB and one value's text), instead of holding all of it:
 * `write` returns 0, or non-zero to stop (-EIO, "cannot write the text"). On any failure (the
 * errors of kilt_yaml_dump, found part way) some text may have been written already: a caller
 * writes into something it can discard. */
int kilt_yaml_dump_callback(const json_t *root, unsigned flags, json_dump_callback_t write,
			    void *userdata, struct kilt_error *err);

/* Writes `root` as JSON the way kilt always does: 2-space indentation, keys in the json_t's
 * order, a final newline (reals print with 17 significant digits, as jansson does). With
 * KILT_YAML_MULTI `root` must be an array and each element is written as its own JSON text (a
 * stream kubectl accepts). kilt_yaml_load reads the output back exactly when the root (or first
 * document) is an object or an array, as templates and manifests are; a bare scalar is read as
 * YAML. */
int kilt_yaml_dump_json(const json_t *root, unsigned flags, char **ret, size_t *ret_len,
			struct kilt_error *err);

/* kilt_yaml_dump or kilt_yaml_dump_json, so a caller can answer in the format it was given. */
int kilt_yaml_dump_as(const json_t *root, enum kilt_format format, unsigned flags, char **ret,
		      size_t *ret_len, struct kilt_error *err);

/* True when `name` is a CloudFormation intrinsic that has a short form ("Ref", "Condition",
 * "Fn::Sub", ...); `ret_tag` (may be NULL) receives the tag without `!` ("Sub"), borrowed. */
bool kilt_yaml_cfn_intrinsic(const char *name, const char **ret_tag);

#endif
