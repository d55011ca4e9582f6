/* SPDX-License-Identifier: Apache-2.0 */
/* The webhook's access to the Kubernetes API server (webhook_kube.c): in-cluster (the service
 * account's token and CA) or a kubeconfig file; a watched cache of the namespaces' labels and
 * annotations (list, then watch from the list's resourceVersion; list again on 410 Gone;
 * reconnect with backoff); and the pull secrets of a pod and its service account, read only
 * when asked. */
#ifndef KILT_WEBHOOK_KUBE_H
#define KILT_WEBHOOK_KUBE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"
#include "kilt.h"

struct webhook_kube;

/* `kubeconfig` (may be NULL): its current context. NULL: in-cluster when
 * KUBERNETES_SERVICE_HOST and the service account's token are there; otherwise *ret is NULL
 * (no API access) and 0 is returned. Starts the namespace watch and waits briefly for the
 * first list. Fails only for a kubeconfig that cannot be used. */
int webhook_kube_new(const char *kubeconfig, struct webhook_kube **ret, struct kilt_error *err);
/* Stops the watch; NULL is a no-op. */
void webhook_kube_free(struct webhook_kube *k);

/* The namespace `name` as {"metadata": {"labels", "annotations"}} (owned) from the cache; a
 * name the cache does not hold (created an instant ago) is read from the API server once.
 * -EAGAIN (cache not synced yet) or -ENOENT with a sentence in `why`. Thread-safe. */
int webhook_kube_namespace(struct webhook_kube *k, const char *name, json_t **ret, char *why,
			   size_t why_size);

/* The credentials of the pull secrets of `pod` (namespace `ns`) and of its service account, read
 * from the API server within `budget_ms`: *ret is {"auths": {..}} (owned) or NULL when there are
 * none. Negative with a sentence in `why` when one cannot be read. Thread-safe. */
int webhook_kube_pull_secrets(struct webhook_kube *k, const char *ns, const json_t *pod,
			      long budget_ms, json_t **ret, char *why, size_t why_size);

/* Prometheus text of the API access (watch state, lists, events, reconnects, reads). */
void webhook_kube_metrics(struct webhook_kube *k, struct kbuf *b);
/* Where the access comes from ("in-cluster", "kubeconfig FILE"), for logs. */
const char *webhook_kube_source(const struct webhook_kube *k);

#endif
