/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes engine: applies a recipe's `deploy` section to pods, wherever a pod is written
 * (a Pod, the pod template of a Deployment, StatefulSet, DaemonSet, ReplicaSet,
 * ReplicationController, Job, CronJob or PodTemplate, and `List`s of them), on the raw JSON: a
 * field kilt does not know is never dropped or reordered. Two doors use it: `kilt inject` on
 * manifests (kilt_k8s_inject, a whole document in place) and the admission webhook
 * (kilt_k8s_mutate, one pod in, an RFC 6902 JSON Patch out). Both give the same result for the
 * same pod; docs/kubernetes.md documents every rule. Included by kilt.h.
 *
 * Thread safety: the functions keep no global state; any number of threads may run them at once
 * on distinct documents with the same (immutable) recipes. */
#ifndef KILT_K8S_H
#define KILT_K8S_H

/* Labels and annotations kilt reads (on the namespace or the pod) and writes (on the pod). */
#define KILT_K8S_PREFIX "kilt.dev/"
/* label or annotation, on the namespace or the pod: "enabled"/"true" or "disabled"/"false" */
#define KILT_K8S_INJECT KILT_K8S_PREFIX "inject"
/* pod annotation: the name of the configured recipe to apply (the first recipe when absent) */
#define KILT_K8S_RECIPE KILT_K8S_PREFIX "recipe"
/* pod annotations: comma-separated container names to patch only / never */
#define KILT_K8S_INCLUDE_CONTAINERS KILT_K8S_PREFIX "include-containers"
#define KILT_K8S_EXCLUDE_CONTAINERS KILT_K8S_PREFIX "exclude-containers"
/* pod annotation written by kilt: what was injected and how to undo it (JSON) */
#define KILT_K8S_STATUS KILT_K8S_PREFIX "status"
/* the namespace labels of Pod Security admission */
#define KILT_K8S_PSA_ENFORCE "pod-security.kubernetes.io/enforce"
#define KILT_K8S_PSA_WARN "pod-security.kubernetes.io/warn"
#define KILT_K8S_PSA_AUDIT "pod-security.kubernetes.io/audit"

/* One recipe the operator configured, chosen for a pod by the `kilt.dev/recipe` annotation. */
struct kilt_k8s_recipe {
	const char *name; /* borrowed: the name the annotation uses */
	const struct kilt_recipe *recipe; /* borrowed */
};

/* What kilt knows of the namespace a pod is created in. Every pointer borrowed; NULL: unknown.
 * The webhook fills it from its namespace cache; `kilt inject` from the Namespace objects of the
 * same input and its options. */
struct kilt_k8s_namespace {
	const char *name;
	const json_t *labels; /* object name -> string */
	const json_t *annotations; /* object name -> string */
};

enum kilt_k8s_pod_security {
	/* a namespace whose enforced Pod Security level forbids what the recipe adds (SYS_PTRACE
	 * violates baseline and restricted) is skipped with a reason: the API server would reject
	 * the injected pod (the default) */
	KILT_K8S_PSA_SKIP = 0,
	/* inject anyway (the operator knows, e.g. an exemption is configured) */
	KILT_K8S_PSA_PROCEED,
};

enum kilt_k8s_volume_source {
	/* an emptyDir filled by an init container from the mount's image with `kilt-wait --copy`
	 * (the default; any Kubernetes version) */
	KILT_K8S_VOLUME_COPY = 0,
	/* an image volume of the mount's image (Kubernetes >= 1.33 with the ImageVolume feature
	 * gate, on by default from 1.35; needs subPath support of image volumes) */
	KILT_K8S_VOLUME_IMAGE,
};

/* Looks up the facts of an image for a platform ("linux/amd64"; NULL when unknown); the same
 * contract as kilt_ecs_image_facts_fn (kilt_image_needs_facts answers from a resolved list). */
typedef int (*kilt_k8s_image_facts_fn)(void *userdata, const char *image, const char *platform,
				       json_t **ret_facts, struct kilt_error *err);

struct kilt_env_lists;
struct kilt_k8s_prepared;
struct kilt_k8s_options {
	/* borrowed array of n_recipes recipes; the first is the default. NULL with 0: only removal
	 * (kilt_k8s_remove) is possible. */
	const struct kilt_k8s_recipe *recipes;
	size_t n_recipes;
	/* opt-out (default): every pod unless its namespace or itself says disabled; opt-in: only
	 * pods whose namespace or themselves say enabled */
	enum kilt_select_mode mode;
	/* borrowed, may be NULL: operator parameters, visible to the recipe as `config.*` */
	const json_t *config;
	/* borrowed, may be NULL: kilt's own namespace, never injected (nor are kube-system,
	 * kube-public and kube-node-lease) */
	const char *own_namespace;
	enum kilt_k8s_pod_security pod_security;
	enum kilt_k8s_volume_source volume_source;
	/* borrowed, may be NULL: the path of kilt-wait inside every mount image (default
	 * "/kilt/bin/kilt-wait"); the copy init container runs `<it> --copy <path> <volume>` */
	const char *copy_helper;
	/* the user the copy init containers run as (runAsUser), with no capabilities: 0 (the
	 * default) reads the agent image's files whatever their modes when root owns them (an
	 * image built by root with owner-only modes); another uid must be able to read every
	 * file (clusters whose policies refuse root containers) */
	long long copy_user;
	/* borrowed, may be NULL: the `resources` of the copy init containers (default requests
	 * cpu 10m / memory 16Mi, limits cpu 100m / memory 64Mi) */
	const json_t *init_resources;
	/* the default namespace of objects that name none (`kilt inject`); NULL: "default" */
	const char *default_namespace;
	/* A pod that cannot be patched (what it runs is unknown, image unresolvable...) fails the
	 * whole run instead of being skipped with a warning. */
	bool strict;
	/* kilt_k8s_mutate gives the patch as JSON text (the result's patch_text) instead of jansson
	 * values (its patch NULL): for a front end that only sends it on. */
	bool patch_as_text;
	/* borrowed, may be NULL: the env lists of the pod whose entries are still to be read
	 * (kilt_admission_review.env_lists); the engine reads those it needs */
	struct kilt_env_lists *env_lists;
	/* may be NULL: no lookups (a container that needs one is skipped, or fails when strict) */
	kilt_k8s_image_facts_fn image_facts;
	void *image_facts_userdata; /* borrowed */
	/* borrowed, may be NULL: what every injection under these options adds for a recipe's
	 * mount, kept (kilt_k8s_prepared_new); the same answers as without it */
	struct kilt_k8s_prepared *prepared;
};

/* What the injection of a recipe's mount adds to a pod (the copy init container, the pod
 * volumes, the containers' mount entries) depends only on the mount and on the options
 * volume_source, copy_helper, copy_user and init_resources: a front end that injects many pods
 * under the same options (the webhook) makes them once and shares them. Every run whose
 * options point to it takes the pieces from it (made when a mount is first met, at most 32
 * mounts); a run whose options differ from those it was made under in one of those four
 * ignores it. The pieces are put into the pods as they are, never counted nor copied (jansson's
 * count (size_t)-1, as its true, false and null): a document injected so must not be changed in
 * them, nor outlive the kilt_k8s_prepared (kilt_k8s_mutate's patch and pod, kilt_k8s_inject's
 * document). Safe to share between threads; made outside any request's arena
 * (kilt-json-arena.h) whatever the thread. */
struct kilt_k8s_prepared *kilt_k8s_prepared_new(const struct kilt_k8s_options *opts);
/* NULL is a no-op. No run may be using it, nor any document it was put into be in use. */
void kilt_k8s_prepared_free(struct kilt_k8s_prepared *prepared);

/* Fills `ret` with the defaults: no recipes, opt-out, skip under Pod Security, copy, no lookups. */
void kilt_k8s_options_default(struct kilt_k8s_options *ret);

/* ---- the webhook's door: one pod ------------------------------------------------------------ */

struct kilt_k8s_result {
	/* owned: RFC 6902 operations against the pod as given (an empty array: nothing to do).
	 * Only kilt's own fields are added, replaced or removed. The operations' values are nodes
	 * of `pod` (references, not copies): change neither while the other is in use. NULL with
	 * the option patch_as_text. */
	json_t *patch;
	/* owned, with the option patch_as_text (else NULL): the patch as JSON text, the bytes
	 * kilt_json_dumps gives of `patch` with JSON_COMPACT, and their number */
	char *patch_text;
	size_t patch_len;
	/* the patch's number of operations, in either form */
	size_t patch_ops;
	/* owned: the pod after the patch */
	json_t *pod;
	/* owned array of strings: what the API server should show the user (why the pod was
	 * skipped, what Pod Security will warn about, what was evaluated offline...) */
	json_t *warnings;
	/* owned: one decision for the pod and one per container (kilt_report_to_json form) */
	struct kilt_report report;
};

void kilt_k8s_result_init(struct kilt_k8s_result *ret);
/* Releases the contents; NULL is a no-op. */
void kilt_k8s_result_done(struct kilt_k8s_result *result);

/* Decides about `pod` (borrowed, a Pod object as an AdmissionReview carries it: its
 * metadata.namespace may be empty, `ns` says where it is created) and fills `ret` (initialised
 * by the caller) with the patch, the patched pod, warnings and the report. A pod that is skipped
 * gets an empty patch and the reason in the report and, when it deserves attention, in the
 * warnings. Returns a negative code only when the run itself fails (a malformed pod, or a pod
 * that cannot be patched under opts->strict); `ret` is then untouched. */
int kilt_k8s_mutate(const json_t *pod, const struct kilt_k8s_namespace *ns,
		    const struct kilt_k8s_options *opts, struct kilt_k8s_result *ret,
		    struct kilt_error *err);

/* Like kilt_k8s_mutate, but takes `pod` (stolen, also on failure) and patches it in place into
 * ret->pod: a front end that decoded the pod for this call saves a copy of it. kilt_k8s_mutate
 * reads every entry of opts->env_lists before it copies the pod; this reads only those it needs,
 * and ret->pod may still hold entries to be read (kilt_env_lists_read_all() reads them). */
int kilt_k8s_mutate_owned(json_t *pod, const struct kilt_k8s_namespace *ns,
			  const struct kilt_k8s_options *opts, struct kilt_k8s_result *ret,
			  struct kilt_error *err);

/* Lists the (image, platform) pairs kilt_k8s_mutate or kilt_k8s_inject would look up for
 * `doc` (a pod, a workload, a List or an array of documents) into `needs` (initialised by the
 * caller), so that a front end can resolve them all at once before applying. `default_ns` (may
 * be NULL) is the namespace given to kilt_k8s_mutate or kilt_k8s_inject: its labels decide, as
 * they do there, whether a pod is selected (opt-in mode, kilt.dev/inject: enabled). */
void kilt_k8s_list_images(const json_t *doc, const struct kilt_k8s_namespace *default_ns,
			  const struct kilt_k8s_options *opts, struct kilt_image_needs *needs);

/* ---- kilt inject's door: whole documents ---------------------------------------------------- */

/* True when `doc` (an object, or an array of documents as kilt_yaml_load gives with
 * KILT_YAML_MULTI) is Kubernetes objects: every document has string `apiVersion` and `kind`. */
bool kilt_k8s_detect(const json_t *doc);

/* Applies the configured recipes to every pod of `doc` in place: an object or an array of
 * documents (in order). Objects that hold no pod are left alone. The Namespace objects of `doc`
 * give the facts (labels, annotations) of their namespace; a namespace that `doc` does not hold
 * has those of `default_ns` when its name matches or it has none (may be NULL: unknown).
 * `report` (may be NULL) receives a decision per pod and per container. `ret_patches` (may be
 * NULL) receives an owned array with one RFC 6902 patch per document (one element when `doc`
 * is an object): applied to that document as it was, it gives the document as it is now. On
 * failure `doc` is left as it was. */
int kilt_k8s_inject(json_t *doc, const struct kilt_k8s_namespace *default_ns,
		    const struct kilt_k8s_options *opts, struct kilt_report *report,
		    json_t **ret_patches, struct kilt_error *err);
/* Undoes every earlier kilt injection in `doc` (any recipe): the pods come back as they were.
 * `ret_patches` as above. */
int kilt_k8s_remove(json_t *doc, const struct kilt_k8s_options *opts, struct kilt_report *report,
		    json_t **ret_patches, struct kilt_error *err);

/* ---- the walker ----------------------------------------------------------------------------- */

/* Where a pod is written inside a document. */
struct kilt_k8s_pod_ref {
	const char *kind; /* borrowed, static: "Pod", "Deployment"... */
	size_t document; /* index of the document in an array of documents; 0 for an object */
	/* borrowed: JSON Pointer (RFC 6901), inside its document, of the object holding the pod's
	 * metadata and spec (the Pod itself or a pod template); "" for a Pod document */
	const char *pointer;
	json_t *workload; /* borrowed: the object of that kind (the Pod, the Deployment...) */
	json_t *pod; /* borrowed: the object at `pointer` */
	/* a sentence saying why this object cannot be patched (a malformed template...); the
	 * walker still reports it so that it is explained. NULL when it looks right. */
	const char *problem;
};

/* Called for each pod template, in document order; a negative return stops the walk with it. */
typedef int kilt_k8s_walk_fn(const struct kilt_k8s_pod_ref *ref, void *userdata);

/* Finds every pod of `doc` (an object, or an array of documents): Pods, pod templates of the
 * workload kinds above (known API groups only: a CRD that reuses a kind name is not a
 * workload), items of Lists (nested up to 8 deep). Returns 0, the callback's negative code, or
 * -E2BIG with `err` when lists nest deeper. */
int kilt_k8s_walk(json_t *doc, kilt_k8s_walk_fn *fn, void *userdata, struct kilt_error *err);

#endif
