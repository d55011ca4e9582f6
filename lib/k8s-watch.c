/* SPDX-License-Identifier: Apache-2.0 */
/* The API server's list and watch answers, decoded into a cache of objects' metadata (the
 * webhook keeps the labels and annotations of every namespace this way): what each event means
 * for the cache and where the watch resumes. Pure; the HTTP side is src/webhook_kube.c. */
#include <string.h>

#include "internal.h"
#include "kilt.h"

/* {"labels": {..}, "annotations": {..}} of an object, only string values kept. NULL when the
 * object has no metadata.name. */
static json_t *meta_entry(const json_t *obj, const char **ret_name)
{
	const json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	if (!name || !*name || strlen(name) > KILT_K8S_MAX_NAME)
		return NULL;
	json_t *e = json_object();
	static const char *const maps[] = { "labels", "annotations" };
	for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
		json_t *out = json_object();
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)(uintptr_t)json_object_get(meta, maps[i]), k, v) {
			if (json_is_string(v))
				json_object_set(out, k, v);
		}
		json_object_set_new(e, maps[i], out);
	}
	*ret_name = name;
	return e;
}

static char *resource_version(const json_t *obj)
{
	const char *rv = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	return rv && *rv && strlen(rv) <= KILT_K8S_MAX_NAME ? xstrdup(rv) : NULL;
}

int kilt_k8s_list_decode(const char *text, size_t len, json_t *cache, char **ret_rv,
			 char **ret_continue, struct kilt_error *err)
{
	json_error_t jerr;
	_cleanup_json_ json_t *list = json_loadb(text, len, 0, &jerr);
	if (!list)
		return kilt_error_set(err, -EINVAL, NULL, (unsigned)jerr.line,
				      (unsigned)jerr.column, "list: %s", jerr.text);
	json_t *items = json_object_get(list, "items");
	if (!json_is_object(list) || !json_is_array(items))
		return kilt_error_setf(err, -EINVAL, "list: expected an object with items");
	_cleanup_free_ char *rv = resource_version(list);
	if (!rv)
		return kilt_error_setf(err, -EINVAL, "list: no metadata.resourceVersion");
	const char *cont =
		json_string_value(json_object_get(json_object_get(list, "metadata"), "continue"));
	size_t i;
	json_t *item;
	json_array_foreach (items, i, item) {
		const char *name = NULL;
		json_t *e = meta_entry(item, &name);
		if (!e)
			return kilt_error_setf(err, -EINVAL, "list: items[%zu]: no metadata.name",
					       i);
		json_object_set_new(cache, name, e);
	}
	*ret_rv = steal_pointer(&rv);
	*ret_continue = cont && *cont ? xstrdup(cont) : NULL;
	return 0;
}

int kilt_k8s_watch_event_apply(const char *text, size_t len, json_t *cache, char **ret_rv,
			       struct kilt_error *err)
{
	json_error_t jerr;
	_cleanup_json_ json_t *ev = json_loadb(text, len, 0, &jerr);
	if (!ev)
		return kilt_error_set(err, -EINVAL, NULL, (unsigned)jerr.line,
				      (unsigned)jerr.column, "watch event: %s", jerr.text);
	const char *type = json_string_value(json_object_get(ev, "type"));
	const json_t *obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj))
		return kilt_error_setf(err, -EINVAL, "watch event: expected {type, object}");
	if (strcmp(type, "ERROR") == 0) {
		/* a Status: 410 Gone means the resource version is too old, list again */
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		const char *msg = json_string_value(json_object_get(obj, "message"));
		if (code == 410)
			return KILT_K8S_WATCH_GONE;
		return kilt_error_setf(err, -EPROTO, "watch error %lld: %.300s", (long long)code,
				       msg ? msg : "(no message)");
	}
	_cleanup_free_ char *rv = resource_version(obj);
	if (!rv)
		return kilt_error_setf(err, -EINVAL, "watch event %.40s: no resourceVersion", type);
	if (strcmp(type, "BOOKMARK") == 0) {
		free(*ret_rv);
		*ret_rv = steal_pointer(&rv);
		return KILT_K8S_WATCH_APPLIED;
	}
	const char *name = NULL;
	json_t *e = meta_entry(obj, &name);
	if (!e)
		return kilt_error_setf(err, -EINVAL, "watch event %.40s: no metadata.name", type);
	if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
		json_object_set_new(cache, name, e);
	} else if (strcmp(type, "DELETED") == 0) {
		json_object_del(cache, name);
		json_decref(e);
	} else {
		json_decref(e);
		return kilt_error_setf(err, -EINVAL, "watch event: unknown type %.40s", type);
	}
	free(*ret_rv);
	*ret_rv = steal_pointer(&rv);
	return KILT_K8S_WATCH_APPLIED;
}

int kilt_k8s_pull_secret_names(const json_t *pod, const json_t *service_account, json_t **ret,
			       struct kilt_error *err)
{
	_cleanup_json_ json_t *names = json_array();
	const json_t *lists[2] = { json_object_get(json_object_get(pod, "spec"),
						   "imagePullSecrets"),
				   json_object_get(service_account, "imagePullSecrets") };
	for (size_t l = 0; l < 2; l++) {
		if (lists[l] && !json_is_array(lists[l]))
			return kilt_error_setf(err, -EINVAL, "%s: imagePullSecrets is not a list",
					       l == 0 ? "pod" : "service account");
		size_t i;
		json_t *ref;
		json_array_foreach (lists[l], i, ref) {
			const char *n = json_string_value(json_object_get(ref, "name"));
			if (!n || !*n || strlen(n) > KILT_K8S_MAX_NAME || strchr(n, '/'))
				continue; /* the kubelet ignores them too */
			bool seen = false;
			size_t k;
			json_t *s;
			json_array_foreach (names, k, s) {
				seen = seen || strcmp(json_string_value(s), n) == 0;
			}
			if (!seen && json_array_size(names) < KILT_K8S_MAX_PULL_SECRETS)
				json_array_append_new(names, json_string(n));
		}
	}
	*ret = steal_pointer(&names);
	return 0;
}
