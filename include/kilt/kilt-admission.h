/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes admission reviews (admission.k8s.io/v1 AdmissionReview) for the webhook: decoding a
 * review with every field the webhook reads checked, deciding which reviews are the Pod engine's
 * business, and encoding the answer. Pure; the HTTPS server lives in src/webhook*.c. Included by
 * kilt.h. */
#ifndef KILT_ADMISSION_H
#define KILT_ADMISSION_H

/* The largest review decoded. The API server accepts objects up to 3 MiB and an UPDATE review
 * carries the object twice. */
#define KILT_ADMISSION_MAX_REVIEW ((size_t)8 * 1024 * 1024)
/* A uid longer than this is not a uid the API server made (they are 36-byte UUIDs). */
#define KILT_ADMISSION_MAX_UID 128
/* Longest warning sent back: the API server may cut longer ones. */
#define KILT_ADMISSION_MAX_WARNING 256
/* How many warnings one answer carries at most (the rest are dropped, the last one says so). */
#define KILT_ADMISSION_MAX_WARNINGS 16

struct kilt_env_lists;

/* A decoded review. Caller-owned; release with kilt_admission_review_done(). Every pointer but
 * `root` is borrowed from `root` and never NULL after a successful parse. */
struct kilt_admission_review {
	json_t *root; /* owned: the review, less what kilt_admission_review_parse() leaves out */
	const char *uid;
	const char *group; /* request.kind.group: "" for the core group */
	const char *version; /* request.kind.version */
	const char *kind; /* request.kind.kind */
	const char *sub_resource; /* request.subResource: "" when none */
	const char *namespace; /* request.namespace: "" for cluster-scoped objects */
	const char *name; /* request.name: "" when not known yet (generateName) */
	const char *operation; /* CREATE, UPDATE, DELETE or CONNECT */
	const json_t *object; /* request.object: an object, or NULL (DELETE, CONNECT) */
	bool dry_run; /* request.dryRun */
	/* owned, may be NULL: the env lists of request.object's containers whose entries are read
	 * when first needed. Give them to the Pod engine with the object
	 * (kilt_k8s_options.env_lists), or have them all read first (kilt_env_lists_read_all):
	 * until then, such an entry is json_null() in its list. */
	struct kilt_env_lists *env_lists;
};

/* Reads every entry of the lists still to be read into its list (each becomes the object it
 * is). NULL is fine. */
void kilt_env_lists_read_all(struct kilt_env_lists *lists);

/* Decodes an AdmissionReview v1 request. What kilt never reads is left out of `root` (but read
 * and checked as strictly as the rest, duplicate keys inside it aside): request's resource,
 * requestKind, requestResource, requestSubResource, userInfo, options and oldObject; of
 * request.object, metadata.managedFields (half of a review's bytes), status, the spec's
 * tolerations, dnsPolicy, dnsConfig, schedulerName, priority, priorityClassName,
 * preemptionPolicy, enableServiceLinks, terminationGracePeriodSeconds,
 * topologySpreadConstraints, restartPolicy and serviceAccount, the configMap, secret,
 * projected, downwardAPI, emptyDir and persistentVolumeClaim of each volume of spec.volumes
 * (its name is read), and of each container of spec.containers (not of initContainers) its
 * resources, readinessProbe, livenessProbe, startupProbe, ports, terminationMessagePath,
 * terminationMessagePolicy, imagePullPolicy, lifecycle and resizePolicy: members the Pod
 * engine never reads nor writes, so the answer is the same (lib/admission.c says why each is
 * safe). Anything else, unknown members included, is
 * decoded as written, but for the entries of each container's env (of spec.containers) written
 * as the API server writes one, {"name": string, "value": string or null}: those are read when
 * first needed (`env_lists`), the bulk of a pod's JSON nodes the engine would otherwise
 * build only to find that its recipe leaves them as they are. A duplicate key inside a member left out is not refused (the review is
 * then the text read without the duplicate check, less those members; the whole text would be
 * refused); a member left out given twice in one object, a duplicate anywhere else, and what
 * is not JSON inside a member left out are refused as for the whole text. `len` is at most
 * KILT_ADMISSION_MAX_REVIEW (else -E2BIG); anything that is not a review the API server sends
 * is -EINVAL with a message naming the field (and line/column for bad JSON). `ret` is untouched
 * on failure. */
int kilt_admission_review_parse(const char *text, size_t len, struct kilt_admission_review *ret,
				struct kilt_error *err);
/* Releases the review's contents; NULL and a zeroed struct are fine. */
void kilt_admission_review_done(struct kilt_admission_review *rv);
/* Finds request.uid in a review that kilt_admission_review_parse() refused, so the answer can still
 * echo it. Copies it into buf (NUL-terminated) and returns true when the text is a JSON object
 * whose request.uid is a valid string of at most KILT_ADMISSION_MAX_UID bytes; otherwise sets buf
 * to "" and returns false. `size` must be at least KILT_ADMISSION_MAX_UID + 1. */
bool kilt_admission_uid_salvage(const char *text, size_t len, char *buf, size_t size);

/* Which reviews are the Pod engine's business: Pods being created. Anything else is admitted
 * unchanged, with this as the reason. (Which namespaces and pods are injected is the engine's
 * decision.) */
enum kilt_admission_scope {
	KILT_ADMISSION_IN_SCOPE = 0,
	KILT_ADMISSION_NOT_A_POD, /* another kind, or a subresource (pods/exec, pods/binding...) */
	KILT_ADMISSION_NOT_CREATE, /* UPDATE, DELETE, CONNECT */
	KILT_ADMISSION_SCOPE_COUNT,
};
enum kilt_admission_scope kilt_admission_scope(const struct kilt_admission_review *rv);
/* A short stable name for metrics and logs ("in_scope", "not_a_pod", ...). */
const char *kilt_admission_scope_name(enum kilt_admission_scope s);

/* The answer to one review. */
struct kilt_admission_answer {
	const char *uid; /* echoed; "" when the review had none that could be read */
	bool allowed;
	const json_t *patch; /* a JSON Patch (array) or NULL; an empty array sends no patch */
	/* or the JSON Patch's text (used instead of `patch` when not NULL; "[]" sends no patch) */
	const char *patch_text;
	size_t patch_len;
	int code; /* status.code (HTTP semantics) when non-zero */
	const char *message; /* status.message when not NULL */
	const char *const *warnings; /* borrowed */
	size_t n_warnings;
};

/* Encodes the AdmissionReview v1 response (the patch base64-encoded, patchType JSONPatch).
 * Warnings are cut to KILT_ADMISSION_MAX_WARNING bytes on a UTF-8 boundary, control characters and
 * invalid UTF-8 become '?', and at most KILT_ADMISSION_MAX_WARNINGS are kept. Returns an owned
 * NUL-terminated string and its length; never fails (out of memory aborts). */
char *kilt_admission_answer_encode(const struct kilt_admission_answer *a, size_t *ret_len);

/* ---- the API server's lists and watches (k8s-watch.c) ----------------------------------------
 * A cache of objects' metadata kept by list + watch: a JSON object name -> {"labels": {..},
 * "annotations": {..}} (string values only). The webhook keeps its namespaces this way. */

/* Longest object name or resource version taken (names are at most 253 bytes). */
#define KILT_K8S_MAX_NAME 1024
/* Pull secrets read for one pod at most. */
#define KILT_K8S_MAX_PULL_SECRETS 16

/* Decodes one page of a list (`{"metadata": {"resourceVersion", "continue"}, "items": [..]}`)
 * into `cache`. Owned *ret_rv (where a watch resumes) and *ret_continue (the next page's token,
 * NULL on the last page). -EINVAL with `err` on anything else; `cache` may then hold part of
 * the page. */
int kilt_k8s_list_decode(const char *text, size_t len, json_t *cache, char **ret_rv,
			 char **ret_continue, struct kilt_error *err);

enum {
	KILT_K8S_WATCH_APPLIED = 0,
	/* the watch's resource version is gone (410): list again */
	KILT_K8S_WATCH_GONE = 1,
};
/* Applies one watch event (a line of the stream: {"type", "object"}) to `cache`: ADDED and
 * MODIFIED set the entry, DELETED removes it, BOOKMARK only moves the resource version, ERROR
 * with code 410 returns KILT_K8S_WATCH_GONE. *ret_rv (owned, may be NULL before) is replaced by
 * the event's resource version. Negative with `err` for a malformed event or another error. */
int kilt_k8s_watch_event_apply(const char *text, size_t len, json_t *cache, char **ret_rv,
			       struct kilt_error *err);

/* The names of the pull secrets a pod's images are pulled with: the pod's imagePullSecrets,
 * then its service account's (may be NULL), without duplicates, at most
 * KILT_K8S_MAX_PULL_SECRETS. Owned array of strings. */
int kilt_k8s_pull_secret_names(const json_t *pod, const json_t *service_account, json_t **ret,
			       struct kilt_error *err);

#endif
