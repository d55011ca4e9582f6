/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt inject` on Kubernetes manifests (inject_k8s.c): what cmd_inject.c hands over once it has
 * read the input and found Kubernetes objects in it. */
#ifndef KILT_INJECT_K8S_H
#define KILT_INJECT_K8S_H

#include <stdbool.h>
#include <stddef.h>

#include "kilt.h"
#include "registry.h"

#define INJECT_K8S_MAX_RECIPES 16

/* How kilt inject prints its report on standard error (cmd_inject.c), for every kind of input. */
enum {
	INJECT_REPORT_EXPLAIN = 1 << 0, /* every decision, not only warnings */
	INJECT_REPORT_JSON = 1 << 1, /* one JSON document (kilt_report_to_json) */
};
void inject_print_report(const struct kilt_report *rep, unsigned how);

struct inject_k8s_args {
	const char *recipe_paths[INJECT_K8S_MAX_RECIPES]; /* borrowed; none: the built-in recipe */
	size_t n_recipes;
	const char *out_path; /* borrowed; NULL: standard output */
	const json_t *config; /* borrowed: --set */
	unsigned report_how; /* INJECT_REPORT_* */
	bool remove, fail_open;
	bool json_patch; /* print the RFC 6902 patches instead of the documents */
	bool patch_yaml; /* -o yaml: the patches in YAML (JSON otherwise) */
	enum kilt_select_mode mode;
	enum kilt_k8s_pod_security pod_security;
	enum kilt_k8s_volume_source volume_source;
	const char *copy_helper; /* borrowed, may be NULL */
	long long copy_user; /* --copy-user */
	const char *namespace_name; /* borrowed: --namespace, may be NULL */
	json_t *namespace_labels; /* borrowed: --namespace-label K=V, object */
	const char *image_facts_file; /* borrowed: --image-facts, may be NULL */
	bool image_lookup;
	struct registry_options *ropts; /* borrowed */
	long image_budget_ms; /* all the run's lookups together (--image-budget) */
};

/* Parses `buf` as Kubernetes objects (multi-document YAML, a JSON object or a stream of them).
 * True with owned *ret_docs (an array of documents) when every document is one; the format and
 * whether the input was a single document are returned for writing the result back. */
bool inject_k8s_parse(const char *buf, size_t len, const char *name, json_t **ret_docs,
		      enum kilt_format *ret_fmt, bool *ret_single);

/* Adds "KEY=VALUE" to `labels` (keys are taken whole: dots and slashes are part of label
 * names). -EINVAL without '=' or with an empty key or invalid UTF-8. */
int inject_k8s_add_label(json_t *labels, const char *kv);

/* An --image-facts FILE (shared by `kilt inject` and `kilt webhook serve`):
 * {"image reference": {"entrypoint": [..], "command": [..]}, ...} answers the lookups of those
 * images for every platform. Loads it into an owned table keyed by normalized reference. */
int image_facts_file_load(const char *path, json_t **ret_table, struct kilt_error *err);
/* Resolves the entries of `needs` that `table` answers (and that are not resolved yet). */
void image_facts_table_apply(const json_t *table, struct kilt_image_needs *needs);

/* Runs the Kubernetes engine over `docs` (stolen) and writes the result in `fmt` (the input's,
 * unless -o chose); returns an exit code. */
int inject_k8s(const struct inject_k8s_args *a, json_t *docs, enum kilt_format fmt, bool single,
	       const char *name);

#endif
