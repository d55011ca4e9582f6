/* SPDX-License-Identifier: Apache-2.0 */
/* Finds the pods written in Kubernetes documents: Pods, the pod templates of the workload kinds
 * of the core, apps, extensions and batch API groups, and the items of Lists. Each is handed to
 * the engine (k8s.c) with the JSON Pointer of its place, so a patch can be built against the
 * document as it came. */
#include "internal.h"
#include "kilt.h"

#define MAX_LIST_DEPTH 8

/* Where a kind keeps its pod, and which API groups define the kind. */
struct workload {
	const char *kind;
	const char *groups[3]; /* "" is the core group */
	const char *path[4]; /* keys from the object down to the pod template */
};

static const struct workload WORKLOADS[] = {
	{ "Pod", { "" }, { NULL } },
	{ "PodTemplate", { "" }, { "template" } },
	{ "ReplicationController", { "" }, { "spec", "template" } },
	{ "Deployment", { "apps", "extensions" }, { "spec", "template" } },
	{ "StatefulSet", { "apps" }, { "spec", "template" } },
	{ "DaemonSet", { "apps", "extensions" }, { "spec", "template" } },
	{ "ReplicaSet", { "apps", "extensions" }, { "spec", "template" } },
	{ "Job", { "batch" }, { "spec", "template" } },
	{ "CronJob", { "batch" }, { "spec", "jobTemplate", "spec", "template" } },
};

struct walk {
	kilt_k8s_walk_fn *fn;
	void *userdata;
	struct kbuf ptr; /* the JSON Pointer of the current object in its document */
	size_t document;
	struct kilt_error *err;
};

/* The group of an apiVersion: "apps/v1" -> "apps", "v1" -> "". Writes into buf. */
static const char *api_group(const char *api_version, char *buf, size_t size)
{
	const char *slash = strchr(api_version, '/');
	if (!slash)
		return "";
	size_t n = (size_t)(slash - api_version);
	if (n >= size)
		n = size - 1;
	memcpy(buf, api_version, n);
	buf[n] = '\0';
	return buf;
}

static const struct workload *find_workload(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(WORKLOADS); i++)
		if (strcmp(WORKLOADS[i].kind, kind) == 0)
			return &WORKLOADS[i];
	return NULL;
}

static bool group_ok(const struct workload *w, const char *group)
{
	for (size_t i = 0; i < ARRAY_SIZE(w->groups) && w->groups[i]; i++)
		if (strcmp(w->groups[i], group) == 0)
			return true;
	return false;
}

static int visit(struct walk *wk, json_t *obj, unsigned depth);

static int visit_list(struct walk *wk, json_t *items, unsigned depth)
{
	if (depth >= MAX_LIST_DEPTH)
		return kilt_error_setf(wk->err, -E2BIG, "%s: Lists nest deeper than %d",
				       wk->ptr.len ? wk->ptr.data : "the document", MAX_LIST_DEPTH);
	size_t mark = wk->ptr.len;
	size_t i;
	json_t *item;
	json_array_foreach (items, i, item) {
		wk->ptr.len = mark;
		if (kbuf_printf(&wk->ptr, "/items/%zu", i) < 0)
			abort(); /* no maximum */
		int r = visit(wk, item, depth + 1);
		if (r < 0)
			return r;
	}
	wk->ptr.len = mark;
	if (wk->ptr.data)
		wk->ptr.data[mark] = '\0';
	return 0;
}

static int visit(struct walk *wk, json_t *obj, unsigned depth)
{
	if (!json_is_object(obj))
		return 0;
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *api = json_string_value(json_object_get(obj, "apiVersion"));
	if (!kind || !api)
		return 0;
	json_t *items = json_object_get(obj, "items");
	size_t klen = strlen(kind);
	if (klen >= 4 && strcmp(kind + klen - 4, "List") == 0 && json_is_array(items))
		return visit_list(wk, items, depth);
	const struct workload *w = find_workload(kind);
	if (!w)
		return 0;
	struct kilt_k8s_pod_ref ref = { .kind = w->kind,
					.workload = obj,
					.document = wk->document };
	char gbuf[256];
	const char *group = api_group(api, gbuf, sizeof(gbuf));
	char problem[512] = "";
	json_t *pod = obj;
	size_t mark = wk->ptr.len;
	if (!group_ok(w, group)) {
		snprintf(problem, sizeof(problem),
			 "%s of apiVersion %s is not the Kubernetes workload kind kilt knows", kind,
			 api);
		pod = NULL;
	}
	for (size_t i = 0; pod && i < ARRAY_SIZE(w->path) && w->path[i]; i++) {
		json_t *next = json_object_get(pod, w->path[i]);
		if (kbuf_printf(&wk->ptr, "/%s", w->path[i]) < 0)
			abort();
		if (!json_is_object(next)) {
			snprintf(problem, sizeof(problem), "the %s has no %s object at %s", kind,
				 w->path[i], wk->ptr.data);
			pod = NULL;
		} else {
			pod = next;
		}
	}
	if (pod && !json_is_object(json_object_get(pod, "spec"))) {
		snprintf(problem, sizeof(problem), "the %s has no pod spec object at %s/spec", kind,
			 wk->ptr.len ? wk->ptr.data : "");
		pod = NULL;
	}
	if (pod && !json_is_array(json_object_get(json_object_get(pod, "spec"), "containers"))) {
		snprintf(problem, sizeof(problem),
			 "the %s has no containers list at %s/spec/containers", kind,
			 wk->ptr.len ? wk->ptr.data : "");
		pod = NULL;
	}
	if (!pod) {
		wk->ptr.len = mark;
		if (wk->ptr.data)
			wk->ptr.data[mark] = '\0';
	}
	ref.pod = pod;
	ref.pointer = wk->ptr.len ? wk->ptr.data : "";
	ref.problem = problem[0] ? problem : NULL;
	int r = wk->fn(&ref, wk->userdata);
	wk->ptr.len = mark;
	if (wk->ptr.data)
		wk->ptr.data[mark] = '\0';
	return r;
}

int kilt_k8s_walk(json_t *doc, kilt_k8s_walk_fn *fn, void *userdata, struct kilt_error *err)
{
	struct walk wk = { .fn = fn, .userdata = userdata, .err = err };
	kbuf_init(&wk.ptr, SIZE_MAX / 2);
	int r = 0;
	if (json_is_array(doc)) {
		size_t i;
		json_t *d;
		json_array_foreach (doc, i, d) {
			wk.ptr.len = 0;
			wk.document = i;
			r = visit(&wk, d, 0);
			if (r < 0)
				break;
		}
	} else {
		r = visit(&wk, doc, 0);
	}
	kbuf_done(&wk.ptr);
	return r;
}

bool kilt_k8s_detect(const json_t *doc)
{
	if (json_is_object(doc))
		return json_is_string(json_object_get(doc, "apiVersion")) &&
		       json_is_string(json_object_get(doc, "kind"));
	if (!json_is_array(doc) || json_array_size(doc) == 0)
		return false;
	size_t i;
	json_t *d;
	json_array_foreach (doc, i, d) {
		if (!json_is_object(d) || !kilt_k8s_detect(d))
			return false;
	}
	return true;
}
