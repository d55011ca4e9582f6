/* SPDX-License-Identifier: Apache-2.0 */
/* What the ECS engine (ecs.c) shares with its CloudFormation helpers (cfn.c): recognising
 * intrinsics, resolving the few facts kilt needs through parameter values, and turning an image
 * written as an intrinsic into Fn::Sub text. Internal to libkilt. */
#ifndef KILT_ECS_INTERNAL_H
#define KILT_ECS_INTERNAL_H

#include "internal.h"
#include "kilt.h"

/* Where facts come from: the template (Parameters' Defaults, Mappings) and the operator's
 * parameter values. Both borrowed, both may be NULL. */
struct cfn_ctx {
	const json_t *template;
	const json_t *params;
	/* borrowed, may be NULL: receives name -> Default for every parameter a resolution took
	 * its Default from (no value was given), so the caller can say the result is a guess */
	json_t *defaults_used;
};

/* The template sections cfn.c reads through cfn_ctx.template (besides Resources): the
 * streaming path (cfn-stream.c) hands the engine these alone, so keep this list in step. */
/* clang-format off */
#define CFN_CONTEXT_SECTIONS { "Parameters", "Mappings" }
/* clang-format on */

/* Recounts a report's totals from its decisions (ecs.c). */
void ecs_report_tally(struct kilt_ecs_report *r);

/* True when `v` is an intrinsic: an object with exactly one key that is "Ref", "Condition" or
 * starts with "Fn::". `ret_fn` (may be NULL) receives the key (borrowed). */
bool cfn_is_intrinsic(const json_t *v, const char **ret_fn);
/* True for {"Ref": "AWS::NoValue"}. */
bool cfn_is_novalue(const json_t *v);
/* For {"Fn::If": [cond, a, b]}: the addresses of the two branch slots (so a branch can be
 * replaced) and true; else false. */
bool cfn_if_branches(json_t *v, json_t **ret_a, json_t **ret_b);

/* Resolves `v` to a plain string through parameter values, Defaults, Fn::Sub, Fn::Join and
 * Fn::FindInMap. Returns 0 with an owned string, or -ENOENT with `why` (size bytes) saying what
 * could not be resolved. */
int cfn_resolve_string(const struct cfn_ctx *ctx, const json_t *v, char **ret, char *why,
		       size_t size);
/* Resolves `v` to an owned array of strings: a literal array (each element resolved), or a Ref to
 * a list parameter (comma-separated). -ENOENT with `why` when it cannot. */
int cfn_resolve_list(const struct cfn_ctx *ctx, const json_t *v, json_t **ret, char *why,
		     size_t size);

/* Fn::Sub text that stands for the intrinsic `image` inside a larger string: Ref X -> "${X}",
 * Fn::Sub "t" -> "t" (its variable map, if any, in *ret_vars), GetAtt a.b -> "${a.b}", anything
 * else -> "${KiltImage}" with {"KiltImage": image} in *ret_vars. Owned; *ret_vars owned or NULL. */
char *cfn_sub_text(const json_t *image, json_t **ret_vars);
/* Replaces, recursively inside `v`, every string that contains `text` with
 * {"Fn::Sub": s} (or [s, vars]), escaping any other "${" in s as "${!". Returns the new value
 * (owned; `v` is consumed). */
json_t *cfn_wrap_sub(json_t *v, const char *text, const json_t *vars);

/* Encodes a JSON value as compact text without any '$' (written as \u0024), so cfn-lint and
 * CloudFormation never take a stored value for a substitution. Owned. */
char *cfn_encode_label(const json_t *v);

#endif
