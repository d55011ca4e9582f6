/* SPDX-License-Identifier: Apache-2.0 */
/* The webhook's one boundary with the Kubernetes Pod engine (lib/k8s.c): the recipes and options
 * it was started with, the facts of the pod's namespace (the API server's watched cache, a file,
 * or unknown), the image facts of containers that say neither command nor args (a file, then the
 * registries with the pod's pull secrets, within the review's budget), and the call that turns
 * the pod of a review into a JSON Patch with warnings saying what was done and why. Everything
 * else in the webhook (TLS, HTTP, reviews, logs) is independent of what the engine decides. */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "inject_k8s.h"
#include "util.h"
#include "webhook.h"
#include "webhook_kube.h"

#define MAX_RECIPES 16
#define MAX_NAMESPACES_BYTES (16u << 20)

enum lookup_result {
	LOOKUP_RESOLVED, /* from a registry */
	LOOKUP_FILE, /* answered by --image-facts */
	LOOKUP_FAILED, /* not found, unauthorized, unreachable... */
	LOOKUP_TIMED_OUT, /* the review's budget ran out */
	LOOKUP_OFF, /* needed, but lookups are off */
	LOOKUP_COUNT,
};
static const char *const lookup_names[LOOKUP_COUNT] = { "resolved", "file", "failed", "timed_out",
							"off" };

enum ns_source {
	NS_API, /* the API server's watched cache */
	NS_FILE, /* --namespaces */
	NS_UNKNOWN,
	NS_COUNT,
};
static const char *const ns_names[NS_COUNT] = { "api", "file", "unknown" };

struct webhook_engine {
	struct kilt_recipe *recipes[MAX_RECIPES]; /* owned */
	struct kilt_k8s_recipe kr[MAX_RECIPES];
	size_t n_recipes;
	json_t *config; /* owned reference */
	char *own_namespace; /* owned, may be NULL */
	char *copy_helper; /* owned, may be NULL */
	struct kilt_k8s_options k8s; /* the options every review starts from */
	json_t *facts_table; /* owned, may be NULL: --image-facts */
	json_t *namespaces; /* owned, may be NULL: --namespaces, name -> Namespace */
	char *namespaces_file; /* owned */
	struct registry_client *registry; /* owned, NULL: no lookups */
	struct registry_options ropts; /* for the clients made for pull secrets */
	long budget_ms;
	struct webhook_kube *kube; /* owned, NULL: no API access */
	atomic_ulong lookups[LOOKUP_COUNT];
	atomic_ulong ns_facts[NS_COUNT];
};

void webhook_mutation_done(struct webhook_mutation *m)
{
	if (!m)
		return;
	free(m->patch_text);
	for (size_t i = 0; i < m->n_notes; i++)
		free(m->notes[i]);
	memset(m, 0, sizeof(*m));
}

/* Namespace objects from a file: YAML or JSON, documents that are Namespaces or Lists of them
 * (`kubectl get namespaces -o yaml`). */
static int load_namespaces(const char *path, json_t **ret, struct kilt_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = kilt_read_file(path, MAX_NAMESPACES_BYTES, &text, &len);
	if (r < 0)
		return kilt_error_setf(err, r, "--namespaces %s: %s", path, strerror(-r));
	_cleanup_json_ json_t *docs = NULL;
	r = kilt_yaml_load(text, len, path, KILT_YAML_MULTI, NULL, &docs, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *table = json_object();
	size_t i;
	json_t *doc;
	json_array_foreach (docs, i, doc) {
		json_t *items = json_object_get(doc, "items");
		json_t *one = json_pack("[O]", doc);
		json_t *list = json_is_array(items) ? json_incref(items) : one;
		if (list != one)
			json_decref(one);
		size_t k;
		json_t *ns;
		json_array_foreach (list, k, ns) {
			const char *kind = json_string_value(json_object_get(ns, "kind"));
			const char *name = json_string_value(
				json_object_get(json_object_get(ns, "metadata"), "name"));
			if (kind && strcmp(kind, "Namespace") == 0 && name && *name)
				json_object_set(table, name, ns);
			else if (!json_is_array(items)) {
				json_decref(list);
				return kilt_error_setf(err, -EINVAL,
						       "--namespaces %s: document %zu is not a "
						       "Namespace or a List of them",
						       path, i + 1);
			}
		}
		json_decref(list);
	}
	*ret = steal_pointer(&table);
	return 0;
}

static int load_recipes(struct webhook_engine *e, const struct webhook_options *o,
			struct kilt_error *err)
{
	if (o->n_recipes > MAX_RECIPES)
		return kilt_error_setf(err, -E2BIG, "at most %d recipes", MAX_RECIPES);
	for (size_t i = 0; i < o->n_recipes; i++) {
		int r = kilt_recipe_load_file(o->recipe_files[i], &e->recipes[i], err);
		if (r < 0)
			return r;
		e->n_recipes++;
		e->kr[i] = (struct kilt_k8s_recipe){ .name = kilt_recipe_name(e->recipes[i]),
						     .recipe = e->recipes[i] };
		for (size_t k = 0; k < i; k++)
			if (strcmp(e->kr[k].name, e->kr[i].name) == 0)
				return kilt_error_setf(err, -EINVAL,
						       "two recipes are named %s (the name is the "
						       "file name without its extension)",
						       e->kr[i].name);
	}
	return 0;
}

int webhook_engine_new(const struct webhook_options *o, struct webhook_engine **ret,
		       struct kilt_error *err)
{
	struct webhook_engine *e = xcalloc(1, sizeof(*e));
	int r = load_recipes(e, o, err);
	e->config = json_incref(o->config);
	e->own_namespace = o->own_namespace && *o->own_namespace ? xstrdup(o->own_namespace) : NULL;
	e->copy_helper = o->copy_helper ? xstrdup(o->copy_helper) : NULL;
	kilt_k8s_options_default(&e->k8s);
	e->k8s.recipes = e->kr;
	e->k8s.n_recipes = e->n_recipes;
	e->k8s.mode = o->mode;
	e->k8s.config = e->config;
	e->k8s.own_namespace = e->own_namespace;
	e->k8s.pod_security = o->pod_security;
	e->k8s.volume_source = o->volume_source;
	e->k8s.copy_helper = e->copy_helper;
	e->k8s.copy_user = o->copy_user;
	e->k8s.strict = o->strict;
	e->k8s.patch_as_text = true; /* only sent on: never built as jansson values */
	/* what every review adds for a recipe's mount, made once (the answers are the same) */
	e->k8s.prepared = kilt_k8s_prepared_new(&e->k8s);
	e->budget_ms = o->image_budget_ms;
	if (r == 0 && o->image_facts_file) {
		r = image_facts_file_load(o->image_facts_file, &e->facts_table, err);
		if (r < 0)
			kilt_error_prefix(err, "--image-facts");
	}
	if (r == 0 && o->namespaces_file) {
		r = load_namespaces(o->namespaces_file, &e->namespaces, err);
		e->namespaces_file = xstrdup(o->namespaces_file);
	}
	if (r == 0 && o->image_lookup) {
		if (o->ropts)
			e->ropts = *o->ropts;
		else
			registry_options_default(&e->ropts);
		r = registry_client_new(&e->ropts, &e->registry, err);
		/* the clients made for a pod's pull secrets share the cache on disk only */
		e->ropts.auth_file = NULL;
	}
	if (r == 0 && !o->no_api) {
		r = webhook_kube_new(o->kubeconfig, &e->kube, err);
		if (r < 0)
			kilt_error_prefix(err, "API server access");
	}
	if (r < 0) {
		webhook_engine_free(e);
		return r;
	}
	*ret = e;
	return 0;
}

void webhook_engine_free(struct webhook_engine *e)
{
	if (!e)
		return;
	webhook_kube_free(e->kube);
	kilt_k8s_prepared_free(e->k8s.prepared);
	for (size_t i = 0; i < e->n_recipes; i++)
		kilt_recipe_free(e->recipes[i]);
	json_decref(e->config);
	json_decref(e->facts_table);
	json_decref(e->namespaces);
	free(e->namespaces_file);
	registry_client_free(e->registry);
	free(e->own_namespace);
	free(e->copy_helper);
	free(e);
}

/* The metric label of why a pod was left alone, from the engine's pod decision (and, when no
 * container was injected, the containers' decisions). */
static const char *skip_label(const struct kilt_report *rep)
{
	static const struct {
		const char *text, *label;
	} pod_reasons[] = {
		{ "kilt never injects into namespace", "system_namespace" },
		{ "is kilt's own", "own_namespace" },
		{ ": disabled", "opted_out" },
		{ "opt-in mode and neither", "not_opted_in" },
		{ "use enabled or disabled", "bad_setting" },
		{ "enforces Pod Security level", "pod_security" },
		{ "does not support platform", "platform" },
		{ "injects Linux pods only", "platform" },
		{ "already injected", "already_injected" },
		{ "no recipe is configured", "no_recipe" },
		{ "which is not configured", "no_recipe" },
	};
	const struct kilt_decision *pod = NULL;
	for (size_t i = 0; i < rep->n_decisions && !pod; i++)
		if (!rep->decisions[i].container)
			pod = &rep->decisions[i];
	if (!pod || !pod->reason)
		return "other";
	for (size_t i = 0; i < ARRAY_SIZE(pod_reasons); i++)
		if (strstr(pod->reason, pod_reasons[i].text))
			return pod_reasons[i].label;
	for (size_t i = 0; i < rep->n_decisions; i++) {
		const struct kilt_decision *d = &rep->decisions[i];
		if (d->container && d->verdict == KILT_SKIPPED && d->reason &&
		    strstr(d->reason, "could not be looked up"))
			return "image_facts";
	}
	if (strstr(pod->reason, "no container of the pod is injected"))
		return "no_container";
	return "other";
}

/* a, b, c and d one after the other in a new string (a note is made for most reviews: without printf). */
static char *concat(const char *a, const char *b, const char *c, const char *d)
{
	size_t na = strlen(a), nb = strlen(b), nc = strlen(c), nd = strlen(d);
	char *s = xmalloc(na + nb + nc + nd + 1);
	memcpy(s, a, na);
	memcpy(s + na, b, nb);
	memcpy(s + na + nb, c, nc);
	memcpy(s + na + nb + nc, d, nd + 1);
	return s;
}

static void note(struct webhook_mutation *m, char *text)
{
	if (m->n_notes < ARRAY_SIZE(m->notes))
		m->notes[m->n_notes++] = text;
	else
		free(text);
}

/* The facts of namespace `name`: the API server's cache, else the --namespaces file, else
 * unknown (with a sentence saying why in `why`). Returns an owned Namespace or NULL. */
static json_t *namespace_of(struct webhook_engine *e, const char *name, char *why, size_t size,
			    enum ns_source *ret_source)
{
	if (e->kube) {
		json_t *ns = NULL;
		if (webhook_kube_namespace(e->kube, name, &ns, why, size) == 0) {
			*ret_source = NS_API;
			return ns;
		}
	} else {
		snprintf(why, size, "kilt has no access to the API server");
	}
	json_t *ns = e->namespaces ? json_object_get(e->namespaces, name) : NULL;
	if (ns) {
		*ret_source = NS_FILE;
		return json_incref(ns);
	}
	if (e->namespaces) {
		size_t n = strlen(why);
		snprintf(why + n, size - n, " and %s does not list it", e->namespaces_file);
	}
	*ret_source = NS_UNKNOWN;
	return NULL;
}

/* Does any container of the pod leave what it runs to its image (no command)? Only then are
 * image facts listed (which runs the engine once more). */
static bool may_need_facts(const json_t *pod)
{
	const json_t *spec = json_object_get(pod, "spec");
	static const char *const lists[] = { "containers", "initContainers" };
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		/* looked up once (json_array_foreach evaluates its array at every step) */
		const json_t *list = json_object_get(spec, lists[l]);
		size_t n = json_array_size(list);
		for (size_t i = 0; i < n; i++) {
			if (!json_is_array(json_object_get(json_array_get(list, i), "command")))
				return true;
		}
	}
	return false;
}

/* Resolves the image facts the pod needs: the --image-facts file first, then the registries
 * (with the pull secrets of the pod and its service account when the API server gives them),
 * every lookup of the review within the budget. */
static void resolve_facts(struct webhook_engine *e, const struct kilt_admission_review *rv,
			  struct kilt_image_needs *needs, struct webhook_mutation *m)
{
	if (e->facts_table)
		image_facts_table_apply(e->facts_table, needs);
	size_t unresolved = 0;
	for (size_t i = 0; i < needs->n; i++)
		if (needs->v[i].resolved)
			atomic_fetch_add(&e->lookups[LOOKUP_FILE], 1);
		else
			unresolved++;
	if (!unresolved)
		return;
	if (!e->registry) {
		atomic_fetch_add(&e->lookups[LOOKUP_OFF], unresolved);
		return;
	}
	struct registry_client *client = e->registry, *own = NULL;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (e->kube) {
		_cleanup_json_ json_t *auths = NULL;
		char why[512] = "";
		long budget = e->budget_ms > 0 ? e->budget_ms / 2 : 1500;
		int r = webhook_kube_pull_secrets(e->kube, rv->namespace, rv->object, budget,
						  &auths, why, sizeof(why));
		if (r < 0)
			note(m,
			     xasprintf("kilt: the pod's pull secrets could not all be read (%s); "
				       "images are looked up with those that were",
				       why));
		if (auths) {
			struct registry_options ro = e->ropts;
			ro.auth_config = auths;
			struct kilt_error err = { 0 };
			if (registry_client_new(&ro, &own, &err) == 0)
				client = own;
		}
	}
	/* the pull secrets' reads came out of the review's budget */
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long spent = (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	long budget = e->budget_ms > 0 ? e->budget_ms - spent : 0;
	if (e->budget_ms > 0 && budget < 1)
		budget = 1;
	struct registry_table run = { .client = client,
				      .needs = needs,
				      .budget_ms = budget,
				      .budget_source = "--image-budget" };
	registry_table_resolve(&run);
	for (size_t i = 0; i < needs->n; i++) {
		const struct kilt_image_need *n = &needs->v[i];
		if (!n->resolved || n->facts == NULL) {
			if (n->rc == -ETIMEDOUT)
				atomic_fetch_add(&e->lookups[LOOKUP_TIMED_OUT], 1);
			else if (n->rc < 0 || !n->resolved)
				atomic_fetch_add(&e->lookups[LOOKUP_FAILED], 1);
		} else if (n->rc == 0) {
			atomic_fetch_add(&e->lookups[LOOKUP_RESOLVED], 1);
		}
	}
	registry_client_free(own);
}

int webhook_engine_mutate(struct webhook_engine *e, const struct kilt_admission_review *rv,
			  struct webhook_mutation *ret, struct kilt_error *err)
{
	struct webhook_mutation m = { 0 };
	char why[512] = "";
	enum ns_source source = NS_UNKNOWN;
	/* Namespace and image facts may go into caches that outlive the review: malloc's, not the
	 * review's arena (kilt-json-arena.h). */
	bool arena = kilt_json_arena_suspend();
	_cleanup_json_ json_t *nsobj = namespace_of(e, rv->namespace, why, sizeof(why), &source);
	kilt_json_arena_resume(arena);
	atomic_fetch_add(&e->ns_facts[source], 1);
	const json_t *nsmeta = json_object_get(nsobj, "metadata");
	struct kilt_k8s_namespace ns = { .name = rv->namespace };
	if (nsobj) {
		ns.labels = json_object_get(nsmeta, "labels");
		ns.annotations = json_object_get(nsmeta, "annotations");
	}
	/* a namespace known to have no labels */
	_cleanup_json_ json_t *empty = NULL;
	if (nsobj && !json_is_object(ns.labels))
		ns.labels = empty = json_object();
	if (!nsobj)
		note(&m, xasprintf("kilt: the labels of namespace %s are unknown (%s): its "
				   "kilt.dev/inject and Pod Security levels were not taken into "
				   "account",
				   rv->namespace, why));

	struct kilt_k8s_options o = e->k8s;
	o.env_lists = rv->env_lists;
	_cleanup_(kilt_image_needs_done) struct kilt_image_needs needs = { 0 };
	kilt_image_needs_init(&needs);
	if (may_need_facts(rv->object)) {
		kilt_k8s_list_images(rv->object, &ns, &o, &needs);
		if (needs.n) {
			arena = kilt_json_arena_suspend();
			resolve_facts(e, rv, &needs, &m);
			kilt_json_arena_resume(arena);
		}
	}
	o.image_facts = kilt_image_needs_facts;
	o.image_facts_userdata = &needs;

	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	/* The review's own pod, patched in place: nothing reads it afterwards (the log line takes
	 * the request's name and namespace), and a copy of it was a fifth of a review's CPU time in
	 * bench/webhook. */
	int r = kilt_k8s_mutate_owned(json_incref((json_t *)(uintptr_t)rv->object), &ns, &o, &res,
				      err);
	if (r < 0) {
		webhook_mutation_done(&m);
		return r;
	}
	/* What happened to the pod, then the engine's warnings not already said by it. */
	const struct kilt_decision *pod = NULL;
	for (size_t i = 0; i < res.report.n_decisions && !pod; i++)
		if (!res.report.decisions[i].container)
			pod = &res.report.decisions[i];
	bool patched = res.patch_ops > 0;
	if (pod && pod->reason && pod->reason[0])
		note(&m, concat("kilt: ", patched ? "injected" : kilt_verdict_name(pod->verdict),
				": ", pod->reason));
	size_t i;
	json_t *w;
	json_array_foreach (res.warnings, i, w) {
		const char *text = json_string_value(w);
		if (!text || (pod && pod->reason && pod->reason[0] && strstr(text, pod->reason)))
			continue;
		note(&m, concat("kilt: ", text, "", ""));
	}
	if (patched) {
		m.patch_text = steal_pointer(&res.patch_text);
		m.patch_len = res.patch_len;
	} else
		m.skip_reason = skip_label(&res.report);
	kilt_k8s_result_done(&res);
	*ret = m;
	return 0;
}

void webhook_engine_metrics(struct webhook_engine *e, struct kbuf *b)
{
	kbuf_adds(b, "# HELP kilt_webhook_image_lookups_total Image facts a review needed (a "
		     "container without command), by result.\n"
		     "# TYPE kilt_webhook_image_lookups_total counter\n");
	for (int i = 0; i < LOOKUP_COUNT; i++)
		kbuf_printf(b, "kilt_webhook_image_lookups_total{result=\"%s\"} %lu\n",
			    lookup_names[i], atomic_load(&e->lookups[i]));
	kbuf_adds(b, "# HELP kilt_webhook_namespace_facts_total Where the labels of a reviewed "
		     "pod's namespace came from.\n"
		     "# TYPE kilt_webhook_namespace_facts_total counter\n");
	for (int i = 0; i < NS_COUNT; i++)
		kbuf_printf(b, "kilt_webhook_namespace_facts_total{source=\"%s\"} %lu\n",
			    ns_names[i], atomic_load(&e->ns_facts[i]));
	if (e->kube)
		webhook_kube_metrics(e->kube, b);
}

json_t *webhook_engine_describe(const struct webhook_engine *e)
{
	json_t *names = json_array();
	for (size_t i = 0; i < e->n_recipes; i++)
		json_array_append_new(names, json_string(e->kr[i].name));
	return json_pack("{s:o, s:s, s:b, s:s, s:s*}", "recipes", names, "mode",
			 e->k8s.mode == KILT_SELECT_OPT_IN ? "opt-in" : "opt-out", "imageLookup",
			 e->registry != NULL, "apiServer",
			 e->kube ? webhook_kube_source(e->kube) : "none", "ownNamespace",
			 e->own_namespace);
}
