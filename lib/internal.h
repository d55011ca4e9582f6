/* SPDX-License-Identifier: Apache-2.0 */
/* Private to libkilt (and its own tests, fuzzers and benchmarks): what the library's files share
 * beside the public headers. Front ends in src/ see only include/kilt/ (through src/util.h). */
#ifndef KILT_INTERNAL_H
#define KILT_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

/* Allocation, kbuf and the cleanup attributes (include/kilt/kilt-util.h), with their short
 * names: every symbol libkilt exports starts with kilt_ (the lib/exports test runs nm on it). */
#define KILT_SHORT_NAMES
#include "kilt-util.h"

/* ---- admission-skim.c ---------------------------------------------------------------------- */
struct kilt_admission_review;
struct kilt_error;
/* A span of a review's text the decoder leaves out. */
struct kilt_admission_span {
	const char *start, *end; /* borrowed */
};
#define KILT_ADMISSION_MAX_SPANS 4
/* Finds the members metadata.managedFields of request.object and request.oldObject in an
 * AdmissionReview's text (each with the comma that separates it from its neighbour), in order, at
 * most KILT_ADMISSION_MAX_SPANS. The text without them is valid JSON, without duplicate keys,
 * exactly when the whole text is, and then decodes to the same values less those members.
 * Returns 0 when there are none or anything is unexpected (the whole text is then parsed). */
size_t kilt_admission_skim(const char *text, size_t len, struct kilt_admission_span *spans);
/* kilt_json_parse's own reader, without handing what it refuses to json_loadb: NULL for
 * anything it does not read as json_loadb(text, len, JSON_REJECT_DUPLICATES) would (an error, a
 * duplicate key, a number jansson cannot hold, nesting over 512). For tests and fuzzing. */
json_t *kilt_json_parse_fast(const char *text, size_t len);
/* kilt_admission_review_parse() without the skim: every member decoded. */
int kilt_admission_review_parse_whole(const char *text, size_t len,
				      struct kilt_admission_review *ret, struct kilt_error *err);

#endif
