/* SPDX-License-Identifier: Apache-2.0 */
/* Terraform's and OpenTofu's `external` data source protocol: the program reads one JSON object
 * whose values are all strings on standard input and writes one such object on standard output.
 * kilt reads `container_definitions` (the JSON text of a container definitions array) and a few
 * optional settings, and answers the patched array and the decisions, each as JSON text. */
#ifndef KILT_TERRAFORM_H
#define KILT_TERRAFORM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct kilt_error;
struct kilt_report;

/* The query, decoded. Caller-owned; release with kilt_tf_query_done. */
struct kilt_tf_query {
	json_t *container_definitions; /* owned: the array */
	char *recipe; /* owned, NULL when not given: a recipe file path */
	bool has_mode;
	bool opt_in; /* with has_mode: "opt-in" (true) or "opt-out" */
	json_t *config; /* owned, NULL when not given: an object of recipe parameters */
};

/* Decodes the query `text` (at most 64 MiB). Keys: container_definitions (required; JSON text of
 * an array), recipe (a path), mode ("opt-in" or "opt-out"), config (JSON text of an object).
 * Every value must be a string, as the protocol says; an unknown key is an error naming the known
 * ones. Errors (-EINVAL) say which key and what was expected; JSON inside a value is located
 * as "query.container_definitions:line:column". `ret` is untouched on failure. */
int kilt_tf_query_parse(const char *text, size_t len, struct kilt_tf_query *ret,
			struct kilt_error *err);
/* Releases the contents; NULL is a no-op. */
void kilt_tf_query_done(struct kilt_tf_query *q);

/* The result object as owned text with a final newline:
 *   {"container_definitions": "<doc as compact JSON>", "decisions": "<report as compact JSON>"}
 * (the report as kilt_report_to_json gives it). Deterministic. */
int kilt_tf_result(const json_t *doc, const struct kilt_report *report, char **ret, size_t *ret_len,
		   struct kilt_error *err);

#endif
