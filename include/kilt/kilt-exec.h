/* SPDX-License-Identifier: Apache-2.0 */
/* kilt exec, the pure part (lib/exec.c, lib/exec-script.c): reading what kubectl prints about
 * pods and nodes, planning what a recipe's `patch` does to one running container, the shell
 * script and tar stream that carry it out inside the container, and reading back what the script
 * and kubectl said. src/cmd_exec.c runs kubectl; nothing here starts a process. docs/exec.md. */
#ifndef KILT_EXEC_H
#define KILT_EXEC_H

#include "kilt.h"

/* Limits on what kubectl hands back (its output is untrusted input). */
#define KILT_EXEC_MAX_PODS 10000
#define KILT_EXEC_MAX_CONTAINERS 64

/* Reads `kubectl get pods -o json` (a List), a single Pod, `kubectl get nodes -o json` or a List
 * holding both kinds. On success `ret_pods` receives an owned array of pods in input order:
 *
 *   { "namespace": "default", "name": "web-1", "uid": "…" (when given), "node": "n1" | null,
 *     "phase": "Running",
 *     "deleting": false, "share_pids": false, "annotations": { ... },
 *     "containers": [ { "name": "app", "image": "nginx:1", "running": true,
 *                       "command": [..] (when set), "args": [..] (when set),
 *                       "user": 1000 (securityContext.runAsUser, pod's or container's),
 *                       "id": "containerd://…", "restarts": 0 (the status's containerID,
 *                       when one printable word, and restartCount, when given) } ],
 *     "ephemeral":  [ { "name": "kilt-…", "image": "…", "running": true, "ended": false } ] }
 *
 * and `ret_nodes` an owned object node name -> "amd64" | "arm64" | … (status.nodeInfo.architecture).
 * Either output may be NULL. Items of other kinds are ignored; a pod without a name, a field of
 * the wrong type that kilt needs, more than KILT_EXEC_MAX_PODS pods or KILT_EXEC_MAX_CONTAINERS
 * containers in a pod is -EINVAL with the item's index in the message. */
int kilt_exec_pods_parse(const char *text, size_t len, json_t **ret_pods, json_t **ret_nodes,
			 struct kilt_error *err);

enum kilt_exec_strategy {
	KILT_EXEC_EXEC, /* kubectl exec into the container: it needs a shell and tar */
	KILT_EXEC_DEBUG, /* an ephemeral container from the helper image, through /proc/1/root */
};

/* What the operator chose for a run; every pointer borrowed. */
struct kilt_exec_options {
	enum kilt_exec_strategy strategy;
	const char *dir; /* kilt's own files in the container (launcher, marker, logs); "/kilt" */
	const char *arch; /* --arch: overrides the node's architecture; NULL: the node's */
	const char *debug_image; /* the helper image of the debug strategy */
	const json_t *launchers; /* object arch -> local file of kilt-launch; NULL: none given */
	const json_t *config; /* operator parameters (config.*); may be NULL */
	bool force; /* replace another recipe's injection */
};

/* Plans the patch of container `container` of `pod` (one element of kilt_exec_pods_parse's
 * array) for `recipe`. `nodes` (may be NULL) maps node names to architectures. On success
 * `ret_plan` receives an owned object:
 *
 *   { "namespace", "pod", "container", "strategy": "exec" | "debug",
 *     "recipe": { "name", "hash" }, "dir": "/kilt", "root": "" | "/proc/1/root",
 *     "arch": "amd64" | null,
 *     "uploads": [ { "url"|"file"|"payload": "...", "sha256"?, "as", "mode", "uid", "gid" } ],
 *     "programs": [ [ "argv0", ... ] ],
 *     "launcher": { "file": "<local path>", "as": "/kilt/bin/kilt-launch" }   (exec strategy
 *                                                                 with programs; else null)
 *     "launch": "/kilt/bin/kilt-launch" (the launcher's path where the script runs it),
 *     "debug": { "name": "kilt-<10 hex>", "image": "..." } | null,
 *     "annotation": "kilt.dev/exec",
 *     "instance": { "id": "containerd://…", "restarts": 0 } | null (the container that runs
 *                                                   now, when the pod status says) }
 *
 * Errors (-EINVAL, -ENOENT, -ENOTSUP) say what to change: the container is not in the pod or not
 * running, the recipe has no `patch`, a path kilt exec cannot handle, no launcher for the
 * container's architecture, no debug image. */
int kilt_exec_plan(const struct kilt_recipe *recipe, const json_t *pod, const json_t *nodes,
		   const char *container, const struct kilt_exec_options *opts, json_t **ret_plan,
		   struct kilt_error *err);

/* The steps of `plan` in words, one string each (--dry-run prints them); owned array. */
json_t *kilt_exec_steps(const json_t *plan);

/* The POSIX shell script (run as `sh -c SCRIPT`) that applies `plan` inside the container (or the
 * debug container), reading a tar stream (kilt_tar_build) with the plan's uploads as members
 * "0", "1"… and the launcher as "L" on standard input. Every value is single-quoted. It checks
 * the marker, stages the files, moves them into place with mode and owner, starts each program
 * through the launcher, checks that each runs, then writes the marker; any failure undoes what it
 * did. It reports on standard output in lines "kilt-exec: WORD ..." (kilt_exec_result_parse).
 * Owned. */
char *kilt_exec_script(const json_t *plan);

/* One file of a tar stream: `name` relative, `data` borrowed. */
struct kilt_tar_file {
	const char *name;
	unsigned mode, uid, gid;
	const void *data;
	size_t len;
};
/* Builds a POSIX ustar archive (names up to 100 bytes, sizes under 8 GiB) of `n` files. */
int kilt_tar_build(const struct kilt_tar_file *files, size_t n, char **ret, size_t *ret_len,
		   struct kilt_error *err);

/* Reads what the script printed (untrusted: it came out of the container). `ret` receives an
 * owned object { "state": "done" | "unchanged" | "other" | "failed" | "unknown",
 * "pids": [ n ], "recipe": "...", "hash": "...", "step": "...", "detail": "...",
 * "stopped": [ n ], "stale": bool, "started": true (it began reading the files),
 * "rolled_back": true }. Lines not starting with "kilt-exec: " are ignored. */
int kilt_exec_result_parse(const char *text, size_t len, json_t **ret, struct kilt_error *err);

/* What went wrong, from kubectl's exit status and standard error (untrusted), for the per-pod
 * error line: "the pod is gone", "not allowed: ...", "no shell in the container: ...". Writes
 * one sentence into buf (size bytes) and returns the kind. */
enum kilt_exec_failure {
	KILT_EXEC_FAIL_OTHER,
	KILT_EXEC_FAIL_GONE, /* the pod or container vanished */
	KILT_EXEC_FAIL_FORBIDDEN, /* RBAC refused the request */
	KILT_EXEC_FAIL_NO_SHELL, /* the container has no sh (exec strategy) */
	KILT_EXEC_FAIL_NO_SPACE, /* the container's disk is full */
};
enum kilt_exec_failure kilt_exec_failure_explain(const char *stderr_text, size_t len,
						 const char *strategy, char *buf, size_t size);

/* What the pod's kilt.dev/exec annotation records for the plan's container once it carries the
 * plan's recipe: "<recipe name> <sha256>". Owned. */
char *kilt_exec_annotation_value(const json_t *plan);

/* The new value of the pod's kilt.dev/exec annotation: `old` (the annotation's current value,
 * may be NULL or not JSON) with the entry of `container` set to `value`. Compact, key-sorted
 * JSON; owned. */
char *kilt_exec_annotation(const char *old, const char *container, const char *value);

/* The annotation beside kilt.dev/exec that names the container instances a run applied the
 * recipe to (or found it in): words of 16 hex digits separated by spaces, each the start of the
 * sha256 of the pod's uid, the container's name, its container id and restart count (from the
 * pod status the plan was made from), the recipe's hash and the plan's dir. One value serves
 * every pod of a batch (one `kubectl annotate` for them all), so it names the instances of the
 * other pods of that batch too: digests, not ids. */
#define KILT_EXEC_INSTANCES "kilt.dev/exec-instances"

/* The digest (16 hex digits and a NUL into `ret`) of the plan's container instance; false, `ret`
 * untouched, when the pod status the plan was made from names no instance. */
bool kilt_exec_instance_digest(const json_t *pod, const json_t *plan, char ret[17]);

/* Whether the space-separated `list` (may be NULL) holds the word `digest`. */
bool kilt_exec_instances_has(const char *list, const char *digest);

/* Whether the pod's annotations prove that the plan's recipe was applied, with the plan's dir, to
 * the very instance of the container that runs now: kilt.dev/exec names the recipe for the
 * container and kilt.dev/exec-instances holds the digest of this instance (the same pod uid,
 * container id and restart count, recipe hash and dir). Then kilt exec need not enter the
 * container. A restarted container has a new id and has lost its files: false then, and when
 * the pod status names no instance, when an older kilt wrote the annotation (no instances), and
 * when the recipe's debug container (kilt-<10 hex>) has ended or, for the debug strategy, is not
 * there (programs started from it end with it; Kubernetes never restarts an ephemeral
 * container). What the annotations cannot show is whether the programs still run: --verify
 * enters to check. */
bool kilt_exec_annotated(const json_t *pod, const json_t *plan);

/* What the annotation value `value` records for `container` (owned), or NULL. */
char *kilt_exec_annotation_get(const char *value, const char *container);

#endif
