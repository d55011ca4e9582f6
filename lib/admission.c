/* SPDX-License-Identifier: Apache-2.0 */
/* AdmissionReview v1: decoding the API server's review and encoding the webhook's answer. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "json-write.h"
#include "kilt.h"

#define API_VERSION "admission.k8s.io/v1"
#define KIND "AdmissionReview"
/* status.message is shown to the user who created the object; keep it readable. */
#define MAX_MESSAGE 1024

static const char *const operations[] = { "CREATE", "UPDATE", "DELETE", "CONNECT" };

/* A member that must be a string, or may be absent/null when `optional` (then ""). */
static int get_string(const json_t *obj, const char *key, const char *where, bool optional,
		      bool nonempty, const char **ret, struct kilt_error *err)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (!optional)
			return kilt_error_setf(err, -EINVAL, "%s%s: missing", where, key);
		*ret = "";
		return 0;
	}
	if (!json_is_string(v) || (nonempty && json_string_length(v) == 0))
		return kilt_error_setf(err, -EINVAL, "%s%s: expected a %sstring", where, key,
				       nonempty ? "non-empty " : "");
	*ret = json_string_value(v);
	return 0;
}

/* What kilt never reads of a review is left out of its tree (read and checked as strictly as
 * the rest, but for duplicate keys inside it: kilt_json_parse_skip()). parse() reads apiVersion,
 * kind and request's uid, kind, subResource, namespace, name, operation, object and dryRun; the
 * webhook gives the Pod engine request.object alone (src/webhook_engine.c: the engine, image
 * lookups with spec.serviceAccountName and spec.imagePullSecrets), and its answer is the JSON
 * Patch of what the engine changed in that object. Left out:
 * - the members of request that describe the call rather than the object: resource,
 *   requestKind, requestResource, requestSubResource, userInfo and options; and oldObject
 *   (an UPDATE's object before it, which kilt admits unchanged);
 * - metadata.managedFields of request.object: about half of a review's bytes and JSON nodes;
 * - members of the pod that the Pod engine (lib/k8s.c, lib/k8s-walk.c, the plan and the
 *   recipe's facts) neither reads nor writes, and that no patch can hold: it looks up in a
 *   pod's spec containers, initContainers, volumes (by name), nodeSelector, affinity (the platform),
 *   serviceAccountName and imagePullSecrets; in a container its name, image, command, args,
 *   env, securityContext, volumeMounts and restartPolicy (a native sidecar), and it writes
 *   only those and metadata.annotations. It never goes through a pod's spec or a container of
 *   spec.containers member by member, never counts their members, never copies, replaces or
 *   moves them whole (a change inside one is a change of a member it reads; the JSON Patch
 *   compares a changed object's members before and after the change, and a member left out
 *   is in neither), and a recipe sees a container's image, name, command and environment, the
 *   pod's labels and annotations and its platform only. Left out: the spec's scheduling and lifecycle members below, status,
 *   the source of each volume (it finds, removes and adds volumes by name, never moves one)
 *   and the members of each container below. Not those of initContainers: on re-invocation
 *   the engine moves its own copy init container ahead of a native sidecar, and the patch then
 *   adds it whole (golden case reinvocation-sidecar-before-copier).
 * A member kilt comes to read is taken off this list; unknown members (fields of later
 * Kubernetes versions) are always kept. */
#define REQ "request"
#define OBJ REQ, "object"
#define SPEC OBJ, "spec"
#define PATH(name, ...) static const char *const name[] = { __VA_ARGS__ }
PATH(resource, REQ, "resource");
PATH(request_kind, REQ, "requestKind");
PATH(request_resource, REQ, "requestResource");
PATH(request_sub_resource, REQ, "requestSubResource");
PATH(user_info, REQ, "userInfo");
PATH(options, REQ, "options");
PATH(old_object, REQ, "oldObject");
PATH(object_mf, OBJ, "metadata", "managedFields");
PATH(status, OBJ, "status");
PATH(tolerations, SPEC, "tolerations");
PATH(dns_policy, SPEC, "dnsPolicy");
PATH(dns_config, SPEC, "dnsConfig");
PATH(scheduler_name, SPEC, "schedulerName");
PATH(priority, SPEC, "priority");
PATH(priority_class_name, SPEC, "priorityClassName");
PATH(preemption_policy, SPEC, "preemptionPolicy");
PATH(enable_service_links, SPEC, "enableServiceLinks");
PATH(termination_grace, SPEC, "terminationGracePeriodSeconds");
PATH(topology_spread, SPEC, "topologySpreadConstraints");
PATH(restart_policy, SPEC, "restartPolicy");
PATH(service_account, SPEC, "serviceAccount"); /* serviceAccountName is read */
/* the source of each volume (its name is read), but for hostPath and the rarer kinds */
#define VOLUME SPEC, "volumes", NULL
PATH(config_map, VOLUME, "configMap");
PATH(secret, VOLUME, "secret");
PATH(projected, VOLUME, "projected");
PATH(downward_api, VOLUME, "downwardAPI");
PATH(empty_dir, VOLUME, "emptyDir");
PATH(claim, VOLUME, "persistentVolumeClaim");
/* the members of each container (NULL: every element of the list) */
#define CONTAINER SPEC, "containers", NULL
PATH(resources, CONTAINER, "resources");
PATH(readiness_probe, CONTAINER, "readinessProbe");
PATH(liveness_probe, CONTAINER, "livenessProbe");
PATH(startup_probe, CONTAINER, "startupProbe");
PATH(ports, CONTAINER, "ports");
PATH(message_path, CONTAINER, "terminationMessagePath");
PATH(message_policy, CONTAINER, "terminationMessagePolicy");
PATH(pull_policy, CONTAINER, "imagePullPolicy");
PATH(lifecycle, CONTAINER, "lifecycle");
PATH(resize_policy, CONTAINER, "resizePolicy");
/* not left out: the env lists of spec.containers, whose plain entries are read when first needed
 * (kilt_json_parse_env_lists(); the last path of `paths`) */
PATH(container_env, CONTAINER, "env");
#define SKIP(path)                                                                                 \
	{                                                                                          \
		path, ARRAY_SIZE(path)                                                             \
	}
static const struct kilt_json_skip paths[] = {
	SKIP(resource),
	SKIP(request_kind),
	SKIP(request_resource),
	SKIP(request_sub_resource),
	SKIP(user_info),
	SKIP(options),
	SKIP(old_object),
	SKIP(object_mf),
	SKIP(status),
	SKIP(tolerations),
	SKIP(dns_policy),
	SKIP(dns_config),
	SKIP(scheduler_name),
	SKIP(priority),
	SKIP(priority_class_name),
	SKIP(preemption_policy),
	SKIP(enable_service_links),
	SKIP(termination_grace),
	SKIP(topology_spread),
	SKIP(restart_policy),
	SKIP(service_account),
	SKIP(config_map),
	SKIP(secret),
	SKIP(projected),
	SKIP(downward_api),
	SKIP(empty_dir),
	SKIP(claim),
	SKIP(resources),
	SKIP(readiness_probe),
	SKIP(liveness_probe),
	SKIP(startup_probe),
	SKIP(ports),
	SKIP(message_path),
	SKIP(message_policy),
	SKIP(pull_policy),
	SKIP(lifecycle),
	SKIP(resize_policy),
	SKIP(container_env),
};
_Static_assert(ARRAY_SIZE(paths) <= KILT_JSON_MAX_SKIP, "too many paths");

/* The review's JSON; with `skim`, without what kilt never reads (the text is still read whole:
 * refused as jansson refuses it). */
static struct kilt_json_skip_index paths_index; /* made once */
static pthread_once_t paths_once = PTHREAD_ONCE_INIT;

static void paths_index_init(void)
{
	kilt_json_skip_index_init(&paths_index, paths, ARRAY_SIZE(paths));
	kilt_json_skip_index_env_list(&paths_index, ARRAY_SIZE(paths) - 1);
}

static json_t *load(const char *text, size_t len, bool skim, struct kilt_env_lists *lists,
		    json_error_t *jerr)
{
	if (skim) {
		pthread_once(&paths_once, paths_index_init);
		return kilt_json_parse_env_lists(text, len, JSON_REJECT_DUPLICATES, &paths_index,
						 lists, jerr);
	}
	return kilt_json_parse(text, len, JSON_REJECT_DUPLICATES, jerr);
}

static void env_lists_freep(struct kilt_env_lists **lists)
{
	kilt_env_lists_free(*lists);
}

static int parse(const char *text, size_t len, bool skim, struct kilt_admission_review *ret,
		 struct kilt_error *err)
{
	if (len > KILT_ADMISSION_MAX_REVIEW)
		return kilt_error_setf(err, -E2BIG,
				       "review of %zu bytes is over the %zu-byte limit", len,
				       KILT_ADMISSION_MAX_REVIEW);
	json_error_t jerr;
	_cleanup_(env_lists_freep) struct kilt_env_lists *lists =
		skim ? xcalloc(1, sizeof(*lists)) : NULL;
	_cleanup_json_ json_t *root = load(text, len, skim, lists, &jerr);
	if (!root)
		return kilt_error_set(err, -EINVAL, NULL, jerr.line > 0 ? (unsigned)jerr.line : 0,
				      jerr.column > 0 ? (unsigned)jerr.column : 0, "not JSON: %s",
				      jerr.text);
	if (!json_is_object(root))
		return kilt_error_setf(err, -EINVAL, "expected an AdmissionReview object");
	struct kilt_admission_review rv = { 0 };
	const char *api_version, *kind;
	int r;
	if ((r = get_string(root, "apiVersion", "", false, true, &api_version, err)) < 0 ||
	    (r = get_string(root, "kind", "", false, true, &kind, err)) < 0)
		return r;
	if (strcmp(api_version, API_VERSION) != 0)
		return kilt_error_setf(err, -EINVAL, "apiVersion: expected %s", API_VERSION);
	if (strcmp(kind, KIND) != 0)
		return kilt_error_setf(err, -EINVAL, "kind: expected %s", KIND);
	const json_t *req = json_object_get(root, "request");
	if (!json_is_object(req))
		return kilt_error_setf(err, -EINVAL, "request: expected an object");
	if ((r = get_string(req, "uid", "request.", false, true, &rv.uid, err)) < 0)
		return r;
	if (strlen(rv.uid) > KILT_ADMISSION_MAX_UID)
		return kilt_error_setf(err, -EINVAL, "request.uid: longer than %d bytes",
				       KILT_ADMISSION_MAX_UID);
	const json_t *k = json_object_get(req, "kind");
	if (!json_is_object(k))
		return kilt_error_setf(err, -EINVAL, "request.kind: expected an object");
	if ((r = get_string(k, "group", "request.kind.", true, false, &rv.group, err)) < 0 ||
	    (r = get_string(k, "version", "request.kind.", false, true, &rv.version, err)) < 0 ||
	    (r = get_string(k, "kind", "request.kind.", false, true, &rv.kind, err)) < 0)
		return r;
	if ((r = get_string(req, "subResource", "request.", true, false, &rv.sub_resource, err)) <
		    0 ||
	    (r = get_string(req, "namespace", "request.", true, false, &rv.namespace, err)) < 0 ||
	    (r = get_string(req, "name", "request.", true, false, &rv.name, err)) < 0 ||
	    (r = get_string(req, "operation", "request.", false, true, &rv.operation, err)) < 0)
		return r;
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(operations); i++)
		known = known || strcmp(rv.operation, operations[i]) == 0;
	if (!known)
		return kilt_error_setf(
			err, -EINVAL,
			"request.operation: expected CREATE, UPDATE, DELETE or CONNECT");
	const json_t *obj = json_object_get(req, "object");
	if (obj && !json_is_null(obj) && !json_is_object(obj))
		return kilt_error_setf(err, -EINVAL, "request.object: expected an object");
	rv.object = json_is_object(obj) ? obj : NULL;
	if (!rv.object &&
	    (strcmp(rv.operation, "CREATE") == 0 || strcmp(rv.operation, "UPDATE") == 0))
		return kilt_error_setf(err, -EINVAL, "request.object: missing for %s",
				       rv.operation);
	const json_t *dry = json_object_get(req, "dryRun");
	if (dry && !json_is_null(dry) && !json_is_boolean(dry))
		return kilt_error_setf(err, -EINVAL, "request.dryRun: expected true or false");
	rv.dry_run = json_is_true(dry);
	rv.root = steal_pointer(&root);
	if (lists && lists->n)
		rv.env_lists = steal_pointer(&lists);
	*ret = rv;
	return 0;
}

int kilt_admission_review_parse(const char *text, size_t len, struct kilt_admission_review *ret,
				struct kilt_error *err)
{
	return parse(text, len, true, ret, err);
}

int kilt_admission_review_parse_whole(const char *text, size_t len,
				      struct kilt_admission_review *ret, struct kilt_error *err)
{
	return parse(text, len, false, ret, err);
}

void kilt_admission_review_done(struct kilt_admission_review *rv)
{
	if (!rv)
		return;
	/* the review is the largest tree of a request: inside an arena, let go with the arena
	 * (nothing from outside is put in it) */
	kilt_json_arena_release(rv->root);
	kilt_env_lists_free(rv->env_lists);
	memset(rv, 0, sizeof(*rv));
}

bool kilt_admission_uid_salvage(const char *text, size_t len, char *buf, size_t size)
{
	if (size == 0)
		return false;
	buf[0] = '\0';
	if (size < KILT_ADMISSION_MAX_UID + 1 || len > KILT_ADMISSION_MAX_REVIEW)
		return false;
	_cleanup_json_ json_t *root = json_loadb(text, len, 0, NULL);
	const json_t *uid = json_object_get(json_object_get(root, "request"), "uid");
	if (!json_is_string(uid) || json_string_length(uid) > KILT_ADMISSION_MAX_UID ||
	    strlen(json_string_value(uid)) != json_string_length(uid))
		return false;
	memcpy(buf, json_string_value(uid), json_string_length(uid) + 1);
	return true;
}

enum kilt_admission_scope kilt_admission_scope(const struct kilt_admission_review *rv)
{
	if (strcmp(rv->group, "") != 0 || strcmp(rv->version, "v1") != 0 ||
	    strcmp(rv->kind, "Pod") != 0 || rv->sub_resource[0] != '\0')
		return KILT_ADMISSION_NOT_A_POD;
	if (strcmp(rv->operation, "CREATE") != 0)
		return KILT_ADMISSION_NOT_CREATE;
	return KILT_ADMISSION_IN_SCOPE;
}

const char *kilt_admission_scope_name(enum kilt_admission_scope s)
{
	switch (s) {
	case KILT_ADMISSION_IN_SCOPE:
		return "in_scope";
	case KILT_ADMISSION_NOT_A_POD:
		return "not_a_pod";
	case KILT_ADMISSION_NOT_CREATE:
		return "not_create";
	case KILT_ADMISSION_SCOPE_COUNT:
		break;
	}
	return "unknown";
}

/* s made valid UTF-8 without control characters (each offending byte becomes '?'), cut to at most
 * `max` bytes on a character boundary, into out (max + 1 bytes); returns its length. */
static size_t readable(const char *s, size_t max, char *out)
{
	size_t len = strlen(s);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		if (len - i >= 8 && max - o >= 8) {
			/* eight printable ASCII bytes (most of a warning) at once: no high bit, none
			 * below 0x20 (a borrow past one only marks more), none 0x7f */
			uint64_t w;
			memcpy(&w, s + i, 8);
			const uint64_t ones = 0x0101010101010101ull;
			if (!((w | (w - ones * 0x20) | ((w ^ (ones * 0x7f)) - ones)) &
			      (ones * 0x80))) {
				memcpy(out + o, &w, 8);
				o += 8;
				i += 8;
				continue;
			}
		}
		unsigned char c = (unsigned char)s[i];
		size_t n = 1;
		if (c >= 0x80) {
			n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			if (n > len - i ||
			    kilt_utf8_valid_prefix((const unsigned char *)s + i, n) != n)
				n = 0; /* replaced by '?' */
		} else if (c < 0x20 || c == 0x7f) {
			n = 0;
		}
		if (o + (n ? n : 1) > max)
			break;
		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		} else {
			out[o++] = '?';
			i++;
		}
	}
	out[o] = '\0';
	return o;
}

/* Room made at once for an answer: most fit without growing. */
#define ANSWER_ROOM ((size_t)16 << 10)

/* Text written as it is: a string literal. */
#define RAW(o, lit) kilt_json_out_raw(o, lit, sizeof(lit) - 1)

/* A JSON string member value (the answer's strings are UTF-8: readable() made them so, or they
 * come from the review's decoded text). */
static void out_text(struct kilt_json_out *o, const char *s, size_t n)
{
	if (kilt_json_out_string(o, s, n, 0) == -2)
		RAW(o, "\"\"");
}

static void out_string(struct kilt_json_out *o, const char *s)
{
	out_text(o, s, strlen(s));
}

/* Written directly, as jansson would dump the object {apiVersion, kind, response: {uid, allowed,
 * patchType, patch, status: {code, message}, warnings}} compactly (unit/test_admission holds the
 * bytes to that): the answer is built for every review. */
char *kilt_admission_answer_encode(const struct kilt_admission_answer *a, size_t *ret_len)
{
	struct kilt_json_out o;
	kilt_json_out_init(&o, NULL, NULL);
	kilt_json_out_reserve(&o, ANSWER_ROOM);
	RAW(&o, "{\"apiVersion\":\"" API_VERSION "\",\"kind\":\"" KIND "\",\"response\":{\"uid\":");
	out_string(&o, a->uid ? a->uid : "");
	if (a->allowed)
		RAW(&o, ",\"allowed\":true");
	else
		RAW(&o, ",\"allowed\":false");
	bool text = a->patch_text &&
		    !(a->patch_len == 2 && a->patch_text[0] == '[' && a->patch_text[1] == ']');
	if (text || (!a->patch_text && json_is_array(a->patch) && json_array_size(a->patch) > 0)) {
		RAW(&o, ",\"patchType\":\"JSONPatch\",\"patch\":\"");
		/* the patch's text where its base64 goes, then replaced by it (no copy) */
		struct kbuf *t = &o.text;
		size_t at = t->len;
		if (text)
			kilt_json_out_raw(&o, a->patch_text, a->patch_len);
		else if (kilt_json_out_value(&o, a->patch, JSON_COMPACT, 0) < 0)
			abort();
		size_t n = t->len - at, b64 = (n + 2) / 3 * 4;
		if (kbuf_reserve(t, b64 - n) < 0)
			abort();
		t->len = at + kilt_base64_encode_in_place(t->data + at, n);
		t->data[t->len] = '\0';
		RAW(&o, "\"");
	}
	if (a->code || a->message) {
		RAW(&o, ",\"status\":{");
		if (a->code) {
			char num[32];
			int n = snprintf(num, sizeof(num), "\"code\":%d", a->code);
			kilt_json_out_raw(&o, num, (size_t)n);
		}
		if (a->message) {
			char m[MAX_MESSAGE + 1];
			size_t n = readable(a->message, MAX_MESSAGE, m);
			if (a->code)
				RAW(&o, ",");
			RAW(&o, "\"message\":");
			out_text(&o, m, n);
		}
		RAW(&o, "}");
	}
	if (a->n_warnings > 0) {
		RAW(&o, ",\"warnings\":[");
		for (size_t i = 0; i < a->n_warnings; i++) {
			if (i)
				RAW(&o, ",");
			if (i == KILT_ADMISSION_MAX_WARNINGS - 1 &&
			    a->n_warnings > KILT_ADMISSION_MAX_WARNINGS) {
				char more[96];
				snprintf(more, sizeof(more), "kilt: %zu more warnings not shown",
					 a->n_warnings - i);
				out_string(&o, more);
				break;
			}
			char w[KILT_ADMISSION_MAX_WARNING + 1];
			out_text(&o, w, readable(a->warnings[i], KILT_ADMISSION_MAX_WARNING, w));
		}
		RAW(&o, "]");
	}
	RAW(&o, "}}");
	*ret_len = o.text.len;
	return kbuf_steal(&o.text);
}
