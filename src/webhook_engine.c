/* SPDX-License-Identifier: Apache-2.0 */
/* The webhook's one boundary with the Kubernetes Pod engine: the recipes it was started with,
 * and the call that turns the pod of a review into a JSON Patch. Everything else in the webhook
 * (TLS, HTTP, reviews, metrics, logs) is independent of what the engine decides. */
#include <string.h>

#include "internal.h"
#include "webhook.h"

struct webhook_engine {
	struct kilt_recipe **recipes; /* owned */
	size_t n_recipes;
	json_t *config; /* owned reference */
	char *own_namespace; /* owned, may be NULL */
	bool strict;
};

void webhook_mutation_done(struct webhook_mutation *m)
{
	if (!m)
		return;
	json_decref(m->patch);
	for (size_t i = 0; i < m->n_notes; i++)
		free(m->notes[i]);
	memset(m, 0, sizeof(*m));
}

int webhook_engine_new(const struct webhook_options *o, struct webhook_engine **ret,
		       struct kilt_error *err)
{
	struct webhook_engine *e = xcalloc(1, sizeof(*e));
	e->recipes = xcalloc(o->n_recipes ? o->n_recipes : 1, sizeof(*e->recipes));
	for (size_t i = 0; i < o->n_recipes; i++) {
		int r = kilt_recipe_load_file(o->recipe_files[i], &e->recipes[i], err);
		if (r < 0) {
			webhook_engine_free(e);
			return r;
		}
		e->n_recipes++;
	}
	e->config = json_incref(o->config);
	e->own_namespace = o->own_namespace && *o->own_namespace ? xstrdup(o->own_namespace) : NULL;
	e->strict = o->strict;
	*ret = e;
	return 0;
}

void webhook_engine_free(struct webhook_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_recipes; i++)
		kilt_recipe_free(e->recipes[i]);
	free(e->recipes);
	json_decref(e->config);
	free(e->own_namespace);
	free(e);
}

int webhook_engine_mutate(const struct webhook_engine *e, const struct kilt_admission_review *rv,
			  struct webhook_mutation *ret, struct kilt_error *err)
{
	(void)e;
	(void)rv;
	(void)ret;
	/* The Pod engine (kilt_k8s_mutate: the pod, its namespace's facts and the options above in,
	 * a JSON Patch and warnings out) is not part of this build yet: every pod is an error, which
	 * the server answers by its failure policy (admitted unpatched with a warning, or denied in
	 * strict mode). */
	return kilt_error_setf(err, -ENOSYS,
			       "the Kubernetes Pod engine is not part of this kilt build");
}
