/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt webhook serve`: the Kubernetes mutating admission webhook's HTTPS server (libmicrohttpd +
 * GnuTLS), and the one boundary it has with the Pod engine (webhook_engine.c). */
#ifndef KILT_WEBHOOK_H
#define KILT_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "kilt.h"
#include "registry.h"

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
	/* the Pod engine's options (kilt_k8s_options) */
	enum kilt_select_mode mode;
	enum kilt_k8s_pod_security pod_security;
	enum kilt_k8s_volume_source volume_source;
	const char *copy_helper; /* borrowed, may be NULL */
	long long copy_user; /* runAsUser of the copy init containers */
	/* image facts: a file answering some images, then (when image_lookup) the registries,
	 * all of one review's lookups within image_budget_ms */
	const char *image_facts_file; /* borrowed, may be NULL */
	bool image_lookup;
	const struct registry_options *ropts; /* borrowed */
	long image_budget_ms;
	/* namespace facts when there is no API access: Namespace objects (a file as `kubectl get
	 * namespaces -o yaml` writes it); borrowed, may be NULL */
	const char *namespaces_file;
	/* API server access: a kubeconfig file, or (NULL) in-cluster when the service account's
	 * token and KUBERNETES_SERVICE_HOST are there; none otherwise */
	const char *kubeconfig; /* borrowed, may be NULL */
	bool no_api; /* never use the API server, even in-cluster */
	/* --fixed-response: every review read whole and answered with the same constant "allowed"
	 * AdmissionReview (no parsing, engine, log line or metrics of reviews): the floor that
	 * bench/webhook compares the server with. Its uid matches no review, so an API server
	 * would refuse it: never for a cluster. */
	bool fixed_response;
};

/* Writes one JSON log line {"time", "level", "msg", fields...} to stderr; takes `fields` (may
 * be NULL). Thread-safe. */
void webhook_log(const char *level, const char *msg, json_t *fields);

/* Runs the server until SIGTERM or SIGINT, then drains. Returns an exit code. */
int webhook_serve(const struct webhook_options *o);

/* ---- the Pod engine boundary (webhook_engine.c) ------------------------------------------- */

struct webhook_engine;

/* What the engine decided for one pod. */
struct webhook_mutation {
	/* owned JSON Patch as JSON text (kilt_k8s_result's patch_text); NULL when nothing changes */
	char *patch_text;
	size_t patch_len;
	const char *skip_reason; /* static metric label when the pod was left alone, else NULL */
	char *notes[8]; /* owned warnings for the answer (why skipped, what was injected) */
	size_t n_notes;
};
void webhook_mutation_done(struct webhook_mutation *m);

/* Loads the recipes (and the files of image and namespace facts), connects to the API server
 * when there is access to one. */
int webhook_engine_new(const struct webhook_options *o, struct webhook_engine **ret,
		       struct kilt_error *err);
void webhook_engine_free(struct webhook_engine *e);
/* The patch for a pod under review (kilt_admission_scope() said it is in scope). Thread-safe. Nothing
 * outside the answer changes (so a dryRun review is answered like any other).
 * Fails with `err` when kilt cannot decide; the server then admits unpatched (or denies in strict
 * mode). */
int webhook_engine_mutate(struct webhook_engine *e, const struct kilt_admission_review *rv,
			  struct webhook_mutation *ret, struct kilt_error *err);

/* Appends the engine's metrics (image lookups, namespace facts) in Prometheus text. */
void webhook_engine_metrics(struct webhook_engine *e, struct kbuf *b);
/* One line of what the engine works with, for the "listening" log line (owned object). */
json_t *webhook_engine_describe(const struct webhook_engine *e);

#endif
