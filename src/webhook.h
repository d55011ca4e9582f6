/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt webhook serve`: the Kubernetes mutating admission webhook's HTTPS server (libmicrohttpd +
 * GnuTLS), and the one boundary it has with the Pod engine (webhook_engine.c). */
#ifndef KILT_WEBHOOK_H
#define KILT_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "kilt.h"

struct webhook_options {
	const char *listen; /* "HOST:PORT" or "[V6]:PORT"; port 0 picks a free one */
	const char *cert_file, *key_file; /* PEM; reloaded when either changes */
	const char *const *recipe_files; /* borrowed */
	size_t n_recipes;
	json_t *config; /* borrowed: config.* values for the recipes */
	const char *own_namespace; /* never injected; NULL or "" when unknown */
	bool strict; /* deny on errors instead of admitting unpatched */
	size_t max_body; /* largest review read, at most KILT_ADMISSION_MAX_REVIEW */
	unsigned threads; /* 0: one per CPU available */
	unsigned shutdown_delay_ms; /* SIGTERM: keep serving (not ready) this long first */
	unsigned drain_timeout_ms; /* then the longest wait for reviews in flight */
	unsigned reload_interval_ms; /* how often the certificate files are checked */
};

/* Runs the server until SIGTERM or SIGINT, then drains. Returns an exit code. */
int webhook_serve(const struct webhook_options *o);

/* ---- the Pod engine boundary (webhook_engine.c) ------------------------------------------- */

struct webhook_engine;

/* What the engine decided for one pod. */
struct webhook_mutation {
	json_t *patch; /* owned JSON Patch (array); NULL or empty when nothing changes */
	const char *skip_reason; /* static metric label when the pod was left alone, else NULL */
	char *notes[8]; /* owned warnings for the answer (why skipped, what was injected) */
	size_t n_notes;
};
void webhook_mutation_done(struct webhook_mutation *m);

/* Loads the recipes. */
int webhook_engine_new(const struct webhook_options *o, struct webhook_engine **ret,
		       struct kilt_error *err);
void webhook_engine_free(struct webhook_engine *e);
/* The patch for a pod under review (kilt_admission_scope() said it is in scope). Thread-safe.
 * Fails with `err` when kilt cannot decide; the server then admits unpatched (or denies in strict
 * mode). */
int webhook_engine_mutate(const struct webhook_engine *e, const struct kilt_admission_review *rv,
			  struct webhook_mutation *ret, struct kilt_error *err);

#endif
