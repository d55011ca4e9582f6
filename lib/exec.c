/* SPDX-License-Identifier: Apache-2.0 */
/* kilt exec, the pure part: what kubectl says about pods and nodes, the plan of one container,
 * the pod annotation, and reading back what the script and kubectl said (kilt-exec.h). The
 * script and the tar stream are in exec-script.c. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "kilt-exec.h"
#include "kilt-macro.h"

#define MAX_NAME 253

/* ---- kubectl's JSON ------------------------------------------------------------------------ */

static int bad(struct kilt_error *err, size_t i, const char *what)
{
	return kilt_error_setf(err, -EINVAL, "kubectl output: items[%zu]: %s", i, what);
}

/* A string field no longer than MAX_NAME, or NULL when absent; *ok false when of the wrong type or
 * too long. */
static const char *name_field(const json_t *obj, const char *key, bool *ok)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v) || json_string_length(v) > MAX_NAME ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		*ok = false;
		return NULL;
	}
	return json_string_value(v);
}

static bool string_array(const json_t *v)
{
	size_t i;
	const json_t *e;
	if (!json_is_array(v))
		return false;
	json_array_foreach (v, i, e) {
		if (!json_is_string(e))
			return false;
	}
	return true;
}

static json_t *container_status(const json_t *statuses, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach (statuses, i, s) {
		if (json_is_object(s) && json_is_string(json_object_get(s, "name")) &&
		    strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
			return s;
	}
	return NULL;
}

/* Printable ASCII without spaces, not empty: one word of the annotation's value. */
static bool plain_word(const char *s)
{
	if (!s[0])
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static int pod_containers(const json_t *list, const json_t *statuses, bool ephemeral,
			  json_int_t pod_user, size_t idx, json_t *out, struct kilt_error *err)
{
	size_t i;
	const json_t *c;
	if (!list)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > KILT_EXEC_MAX_CONTAINERS)
		return bad(err, idx, "containers: expected a list of at most 64");
	json_array_foreach (list, i, c) {
		bool ok = true;
		const char *name = name_field(c, "name", &ok);
		const char *image = name_field(c, "image", &ok);
		if (!json_is_object(c) || !ok || !name || !name[0])
			return bad(err, idx, "a container without a valid name or image");
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "image", image ? json_string(image) : json_null());
		const json_t *st = container_status(statuses, name);
		const json_t *state = json_object_get(st, "state");
		json_object_set_new(
			o, "running",
			json_boolean(json_is_object(json_object_get(state, "running"))));
		/* which instance of the container runs: a restarted one has a new id (and its
		 * files are gone); an id kilt could not write back into its annotation is none */
		bool id_ok = true;
		const char *id = name_field(st, "containerID", &id_ok);
		const json_t *restarts = json_object_get(st, "restartCount");
		if (id_ok && id && plain_word(id))
			json_object_set_new(o, "id", json_string(id));
		if (json_is_integer(restarts) && json_integer_value(restarts) >= 0)
			json_object_set_new(o, "restarts",
					    json_integer(json_integer_value(restarts)));
		if (ephemeral) {
			json_object_set_new(
				o, "ended",
				json_boolean(json_is_object(json_object_get(state, "terminated"))));
		} else {
			const json_t *cmd = json_object_get(c, "command");
			const json_t *args = json_object_get(c, "args");
			if (cmd && string_array(cmd))
				json_object_set(o, "command", (json_t *)(uintptr_t)cmd);
			if (args && string_array(args))
				json_object_set(o, "args", (json_t *)(uintptr_t)args);
			const json_t *user =
				json_object_get(json_object_get(c, "securityContext"), "runAsUser");
			if (json_is_integer(user))
				json_object_set_new(o, "user",
						    json_integer(json_integer_value(user)));
			else if (pod_user >= 0)
				json_object_set_new(o, "user", json_integer(pod_user));
		}
		json_array_append_new(out, o);
	}
	return 0;
}

static int read_pod(const json_t *item, size_t idx, json_t *pods, struct kilt_error *err)
{
	const json_t *meta = json_object_get(item, "metadata");
	const json_t *spec = json_object_get(item, "spec");
	const json_t *status = json_object_get(item, "status");
	if (!json_is_object(meta) || (spec && !json_is_object(spec)) ||
	    (status && !json_is_object(status)))
		return bad(err, idx,
			   "a Pod without metadata, or with a spec or status that is not "
			   "an object");
	bool ok = true;
	const char *name = name_field(meta, "name", &ok);
	const char *ns = name_field(meta, "namespace", &ok);
	const char *node = name_field(spec, "nodeName", &ok);
	const char *phase = name_field(status, "phase", &ok);
	if (!ok || !name || !name[0])
		return bad(err, idx, "a Pod without a valid name");
	if (json_array_size(pods) >= KILT_EXEC_MAX_PODS)
		return kilt_error_setf(err, -EINVAL, "kubectl output: more than %d pods",
				       KILT_EXEC_MAX_PODS);
	json_auto_t *p = json_object();
	json_object_set_new(p, "namespace", json_string(ns ? ns : "default"));
	json_object_set_new(p, "name", json_string(name));
	bool uid_ok = true;
	const char *uid = name_field(meta, "uid", &uid_ok);
	if (uid_ok && uid && plain_word(uid))
		json_object_set_new(p, "uid", json_string(uid));
	json_object_set_new(p, "node", node ? json_string(node) : json_null());
	json_object_set_new(p, "phase", json_string(phase ? phase : "Unknown"));
	json_object_set_new(p, "deleting",
			    json_boolean(json_object_get(meta, "deletionTimestamp") != NULL));
	json_object_set_new(
		p, "share_pids",
		json_boolean(json_is_true(json_object_get(spec, "shareProcessNamespace"))));
	json_t *ann = json_object();
	const json_t *a = json_object_get(meta, "annotations");
	const char *k;
	const json_t *v;
	if (json_is_object(a))
		json_object_foreach ((json_t *)(uintptr_t)a, k, v) {
			if (json_is_string(v))
				json_object_set(ann, k, (json_t *)(uintptr_t)v);
		}
	json_object_set_new(p, "annotations", ann);
	json_int_t pod_user = -1;
	const json_t *u = json_object_get(json_object_get(spec, "securityContext"), "runAsUser");
	if (json_is_integer(u))
		pod_user = json_integer_value(u);
	json_t *cs = json_array(), *es = json_array();
	json_object_set_new(p, "containers", cs);
	json_object_set_new(p, "ephemeral", es);
	int r = pod_containers(json_object_get(spec, "containers"),
			       json_object_get(status, "containerStatuses"), false, pod_user, idx,
			       cs, err);
	if (r == 0)
		r = pod_containers(json_object_get(spec, "ephemeralContainers"),
				   json_object_get(status, "ephemeralContainerStatuses"), true, -1,
				   idx, es, err);
	if (r < 0)
		return r;
	json_array_append(pods, p);
	return 0;
}

static int read_node(const json_t *item, size_t idx, json_t *nodes, struct kilt_error *err)
{
	bool ok = true;
	const char *name = name_field(json_object_get(item, "metadata"), "name", &ok);
	const json_t *info = json_object_get(json_object_get(item, "status"), "nodeInfo");
	const char *arch = name_field(info, "architecture", &ok);
	if (!ok || !name)
		return bad(err, idx, "a Node without a valid name or architecture");
	if (arch)
		json_object_set_new(nodes, name, json_string(arch));
	return 0;
}

int kilt_exec_pods_parse(const char *text, size_t len, json_t **ret_pods, json_t **ret_nodes,
			 struct kilt_error *err)
{
	json_error_t je;
	json_auto_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return kilt_error_set(err, -EINVAL, NULL, (unsigned)je.line, (unsigned)je.column,
				      "kubectl output is not JSON: %s", je.text);
	if (!json_is_object(root))
		return kilt_error_setf(err, -EINVAL, "kubectl output: expected an object");
	json_auto_t *pods = json_array();
	json_auto_t *nodes = json_object();
	const json_t *items = json_object_get(root, "items");
	const char *kind = json_string_value(json_object_get(root, "kind"));
	if (!items && kind && (strcmp(kind, "Pod") == 0 || strcmp(kind, "Node") == 0)) {
		int r = strcmp(kind, "Pod") == 0 ? read_pod(root, 0, pods, err)
						 : read_node(root, 0, nodes, err);
		if (r < 0)
			return r;
	} else {
		if (!json_is_array(items))
			return kilt_error_setf(err, -EINVAL,
					       "kubectl output: neither a List nor a Pod or Node");
		size_t i;
		const json_t *it;
		json_array_foreach (items, i, it) {
			if (!json_is_object(it))
				return bad(err, i, "expected an object");
			const char *k = json_string_value(json_object_get(it, "kind"));
			int r = 0;
			/* `kubectl get pods -o json` names each item's kind; a bare list does not */
			if (!k || strcmp(k, "Pod") == 0)
				r = read_pod(it, i, pods, err);
			else if (strcmp(k, "Node") == 0)
				r = read_node(it, i, nodes, err);
			if (r < 0)
				return r;
		}
	}
	if (ret_pods)
		*ret_pods = steal_pointer(&pods);
	if (ret_nodes)
		*ret_nodes = steal_pointer(&nodes);
	return 0;
}

/* ---- the plan -------------------------------------------------------------------------------- */

static const json_t *find_named(const json_t *list, const char *name)
{
	size_t i;
	const json_t *c;
	json_array_foreach (list, i, c) {
		if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
			return c;
	}
	return NULL;
}

/* A path the script can use: absolute, no "..", no control characters. */
static bool plain_path(const char *s)
{
	if (!s || s[0] != '/' || strlen(s) > 1024)
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	for (const char *p = s; (p = strstr(p, "..")); p += 2)
		if ((p == s || p[-1] == '/') && (p[2] == '/' || !p[2]))
			return false;
	return true;
}

static int evaluate(const struct kilt_recipe *recipe, const json_t *pod, const json_t *c,
		    const char *platform, const json_t *config, json_t **ret,
		    struct kilt_error *err)
{
	json_auto_t *ep = NULL, *cmd = NULL;
	kilt_docker_argv(json_object_get(c, "command"), json_object_get(c, "args"), NULL, &ep,
			 &cmd);
	json_auto_t *meta = json_deep_copy(json_object_get(pod, "annotations"));
	struct kilt_target t = {
		.image = json_string_value(json_object_get(c, "image")),
		.name = json_string_value(json_object_get(c, "name")),
		.group = json_string_value(json_object_get(pod, "name")),
		.entrypoint = ep,
		.command = cmd,
		.metadata = meta,
		.platform = platform,
	};
	struct kilt_error e1 = { 0 };
	int r = kilt_recipe_evaluate(recipe, &t, config, ret, &e1);
	if (r != -ENODATA) {
		if (r < 0 && err)
			*err = e1;
		return r;
	}
	/* A fact of the container that a running pod does not tell (what the image runs) is
	 * needed by the recipe. `deploy` may need it, and kilt exec applies only `patch`: evaluate
	 * with two different stand-ins and use the result when the patch is the same with both. */
	json_auto_t *a = json_pack("[s]", "/kilt-exec-unknown-1");
	json_auto_t *b = json_pack("[s]", "/kilt-exec-unknown-2");
	json_auto_t *env = json_object();
	struct kilt_target ta = t, tb = t;
	ta.entrypoint = ta.entrypoint ? ta.entrypoint : a;
	ta.command = ta.command ? ta.command : a;
	ta.environment = env;
	tb.entrypoint = tb.entrypoint ? tb.entrypoint : b;
	tb.command = tb.command ? tb.command : b;
	tb.environment = env;
	json_auto_t *pa = NULL, *pb = NULL;
	if (kilt_recipe_evaluate(recipe, &ta, config, &pa, NULL) < 0 ||
	    kilt_recipe_evaluate(recipe, &tb, config, &pb, NULL) < 0 ||
	    !json_equal(json_object_get(pa, "uploads"), json_object_get(pb, "uploads")) ||
	    !json_equal(json_object_get(pa, "background"), json_object_get(pb, "background"))) {
		if (err)
			*err = e1;
		return -ENODATA;
	}
	*ret = steal_pointer(&pa);
	return 0;
}

int kilt_exec_plan(const struct kilt_recipe *recipe, const json_t *pod, const json_t *nodes,
		   const char *container, const struct kilt_exec_options *o, json_t **ret_plan,
		   struct kilt_error *err)
{
	const char *ns = json_string_value(json_object_get(pod, "namespace"));
	const char *name = json_string_value(json_object_get(pod, "name"));
	const json_t *c = find_named(json_object_get(pod, "containers"), container);
	if (!c) {
		char list[512] = "";
		size_t i;
		const json_t *x;
		json_array_foreach (json_object_get(pod, "containers"), i, x) {
			size_t n = strlen(list);
			snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "",
				 json_string_value(json_object_get(x, "name")));
		}
		return kilt_error_setf(err, -ENOENT, "pod %s/%s has no container '%s' (it has: %s)",
				       ns, name, container, list);
	}
	if (json_is_true(json_object_get(pod, "deleting")))
		return kilt_error_setf(err, -ENOENT, "pod %s/%s is being deleted", ns, name);
	const char *phase = json_string_value(json_object_get(pod, "phase"));
	if (strcmp(phase, "Running") != 0)
		return kilt_error_setf(err, -ENOENT, "pod %s/%s is %s, not Running", ns, name,
				       phase);
	if (!json_is_true(json_object_get(c, "running")))
		return kilt_error_setf(err, -ENOENT, "container %s of pod %s/%s is not running",
				       container, ns, name);
	const char *dir = o->dir ? o->dir : "/kilt";
	if (!plain_path(dir) || strcmp(dir, "/") == 0)
		return kilt_error_setf(err, -EINVAL,
				       "--dir '%s': expected an absolute path other than / "
				       "without '..' or control characters",
				       dir);

	const char *arch = o->arch;
	const char *node = json_string_value(json_object_get(pod, "node"));
	if (!arch && node)
		arch = json_string_value(json_object_get(nodes, node));
	char platform[64] = "";
	if (arch)
		snprintf(platform, sizeof(platform), "linux/%s", arch);

	json_auto_t *full = NULL;
	struct kilt_error e = { 0 };
	int r = evaluate(recipe, pod, c, arch ? platform : NULL, o->config, &full, &e);
	if (r < 0) {
		if (err)
			*err = e;
		return kilt_error_prefix(err, "%s/%s container %s", ns, name, container);
	}
	const json_t *uploads = json_object_get(full, "uploads");
	const json_t *programs = json_object_get(full, "background");
	if (!json_array_size(uploads) && !json_array_size(programs))
		return kilt_error_setf(
			err, -EINVAL,
			"recipe %s has no patch section (nothing to upload or run): "
			"kilt exec applies only patch; deploy is for kilt inject and "
			"the webhook",
			kilt_recipe_name(recipe));
	size_t i;
	const json_t *u;
	json_array_foreach (uploads, i, u) {
		const char *as = json_string_value(json_object_get(u, "as"));
		if (!plain_path(as))
			return kilt_error_setf(err, -EINVAL,
					       "recipe %s: patch.upload[%zu]: '%s' is a path kilt "
					       "exec does not write (absolute, no '..', no control "
					       "characters)",
					       kilt_recipe_name(recipe), i, as ? as : "");
		size_t dl = strlen(dir);
		if (strncmp(as, dir, dl) == 0 && (as[dl] == '/' || !as[dl]))
			return kilt_error_setf(err, -EINVAL,
					       "recipe %s: patch.upload[%zu]: '%s' is inside %s, "
					       "which kilt exec keeps for its own files (choose "
					       "another --dir)",
					       kilt_recipe_name(recipe), i, as, dir);
	}

	json_auto_t *plan = json_object();
	json_object_set_new(plan, "namespace", json_string(ns));
	json_object_set_new(plan, "pod", json_string(name));
	json_object_set_new(plan, "container", json_string(container));
	json_object_set_new(plan, "strategy",
			    json_string(o->strategy == KILT_EXEC_DEBUG ? "debug" : "exec"));
	json_object_set_new(plan, "recipe",
			    json_pack("{s:s, s:s}", "name", kilt_recipe_name(recipe), "hash",
				      kilt_recipe_hash(recipe)));
	json_object_set_new(plan, "dir", json_string(dir));
	json_object_set_new(plan, "root",
			    json_string(o->strategy == KILT_EXEC_DEBUG ? "/proc/1/root" : ""));
	json_object_set_new(plan, "arch", arch ? json_string(arch) : json_null());
	json_object_set(plan, "uploads", (json_t *)(uintptr_t)uploads);
	json_object_set(plan, "programs", (json_t *)(uintptr_t)programs);
	char launch[1100];
	snprintf(launch, sizeof(launch), "%s/bin/kilt-launch", dir);
	json_object_set_new(plan, "launcher", json_null());
	json_object_set_new(plan, "debug", json_null());
	if (o->strategy == KILT_EXEC_DEBUG) {
		if (!o->debug_image || !o->debug_image[0])
			return kilt_error_setf(err, -EINVAL,
					       "the debug strategy needs --debug-image: an image "
					       "with sh, tar and /kilt/bin/kilt-launch, kilt-wait "
					       "(docs/exec.md)");
		if (json_is_true(json_object_get(pod, "share_pids")))
			return kilt_error_setf(
				err, -ENOTSUP,
				"pod %s/%s shares one process namespace between its containers "
				"(shareProcessNamespace): the debug strategy cannot tell which "
				"process is container %s; use --strategy exec",
				ns, name, container);
		char dname[32];
		snprintf(dname, sizeof(dname), "kilt-%.10s", kilt_recipe_hash(recipe));
		json_object_set_new(
			plan, "debug",
			json_pack("{s:s, s:s}", "name", dname, "image", o->debug_image));
		/* the helper image's own launcher, run chrooted into the target's files */
		json_object_set_new(plan, "launch", json_string("/kilt/bin/kilt-launch"));
	} else {
		json_object_set_new(plan, "launch", json_string(launch));
		if (json_array_size(programs)) {
			if (!arch)
				return kilt_error_setf(
					err, -ENODATA,
					"the architecture of pod %s/%s is not known (node %s is "
					"not readable or does not say): give --arch",
					ns, name, node ? node : "unassigned");
			const char *file = json_string_value(json_object_get(o->launchers, arch));
			if (!file)
				return kilt_error_setf(
					err, -ENOENT,
					"pod %s/%s runs on %s: the recipe starts programs through "
					"kilt-launch, and no --launcher for %s was given (a static "
					"kilt-launch built for it; docs/exec.md)",
					ns, name, arch, arch);
			json_object_set_new(plan, "launcher",
					    json_pack("{s:s, s:s}", "file", file, "as", launch));
		}
	}
	json_object_set_new(plan, "force", json_boolean(o->force));
	json_object_set_new(plan, "annotation", json_string("kilt.dev/exec"));
	const json_t *id = json_object_get(c, "id");
	const json_t *restarts = json_object_get(c, "restarts");
	json_object_set_new(plan, "instance",
			    json_is_string(id) && json_is_integer(restarts)
				    ? json_pack("{s:O, s:O}", "id", id, "restarts", restarts)
				    : json_null());
	*ret_plan = steal_pointer(&plan);
	return 0;
}

/* ---- the annotation -------------------------------------------------------------------------- */

char *kilt_exec_annotation_value(const json_t *plan)
{
	const json_t *recipe = json_object_get(plan, "recipe");
	return xasprintf("%s %s", json_string_value(json_object_get(recipe, "name")),
			 json_string_value(json_object_get(recipe, "hash")));
}

char *kilt_exec_annotation(const char *old, const char *container, const char *value)
{
	json_auto_t *o = old ? json_loads(old, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	json_object_set_new(o, container, json_string(value));
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		abort();
	return s;
}

bool kilt_exec_instance_digest(const json_t *pod, const json_t *plan, char ret[17])
{
	const json_t *inst = json_object_get(plan, "instance");
	if (!json_is_object(inst))
		return false;
	const char *uid = json_string_value(json_object_get(pod, "uid"));
	char *text = xasprintf(
		"%s\n%s\n%s\n%lld\n%s\n%s", uid ? uid : "",
		json_string_value(json_object_get(plan, "container")),
		json_string_value(json_object_get(inst, "id")),
		(long long)json_integer_value(json_object_get(inst, "restarts")),
		json_string_value(json_object_get(json_object_get(plan, "recipe"), "hash")),
		json_string_value(json_object_get(plan, "dir")));
	char hex[65];
	kilt_macro_sha256_hex(text, strlen(text), hex);
	free(text);
	memcpy(ret, hex, 16);
	ret[16] = '\0';
	return true;
}

bool kilt_exec_instances_has(const char *list, const char *digest)
{
	size_t n = strlen(digest);
	for (const char *p = list; p && *p;) {
		while (*p == ' ')
			p++;
		size_t w = strcspn(p, " ");
		if (w == n && n && memcmp(p, digest, n) == 0)
			return true;
		p += w;
	}
	return false;
}

bool kilt_exec_annotated(const json_t *pod, const json_t *plan)
{
	char digest[17];
	if (!kilt_exec_instance_digest(pod, plan, digest))
		return false;
	const json_t *ann = json_object_get(pod, "annotations");
	const char *container = json_string_value(json_object_get(plan, "container"));
	const char *value = json_string_value(json_object_get(ann, "kilt.dev/exec"));
	const char *list = json_string_value(json_object_get(ann, KILT_EXEC_INSTANCES));
	if (!container || !value || !list || !kilt_exec_instances_has(list, digest))
		return false;
	_cleanup_free_ char *have = kilt_exec_annotation_get(value, container);
	_cleanup_free_ char *want = kilt_exec_annotation_value(plan);
	if (!have || strcmp(have, want) != 0)
		return false;
	/* programs started from the recipe's debug container live in it; Kubernetes never
	 * restarts an ephemeral container, so once it ended they are gone */
	const char *hash =
		json_string_value(json_object_get(json_object_get(plan, "recipe"), "hash"));
	char dname[32];
	snprintf(dname, sizeof(dname), "kilt-%.10s", hash);
	const json_t *dbg = find_named(json_object_get(pod, "ephemeral"), dname);
	if (dbg && !json_is_true(json_object_get(dbg, "running")))
		return false;
	if (json_is_object(json_object_get(plan, "debug")) && !dbg)
		return false;
	return true;
}

char *kilt_exec_annotation_get(const char *value, const char *container)
{
	if (!value)
		return NULL;
	json_auto_t *o = json_loads(value, JSON_REJECT_DUPLICATES, NULL);
	const char *s = json_string_value(json_object_get(o, container));
	return s ? xstrdup(s) : NULL;
}

/* ---- reading back ---------------------------------------------------------------------------- */

static void add_pids(json_t *arr, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && json_array_size(arr) < 64) {
		while (i < len && s[i] == ' ')
			i++;
		long long v = 0;
		size_t digits = 0;
		while (i < len && isdigit((unsigned char)s[i]) && digits < 10) {
			v = v * 10 + (s[i] - '0');
			i++;
			digits++;
		}
		if (digits && v > 0 && v < 4194305)
			json_array_append_new(arr, json_integer(v));
		while (i < len && s[i] != ' ')
			i++;
	}
}

/* The text of a field, cut to 300 bytes of valid UTF-8. */
static json_t *text_value(const char *s, size_t len)
{
	if (len > 300)
		len = 300;
	len = kilt_utf8_valid_prefix((const unsigned char *)s, len);
	return json_stringn(s, len);
}

int kilt_exec_result_parse(const char *text, size_t len, json_t **ret, struct kilt_error *err)
{
	(void)err;
	static const char prefix[] = "kilt-exec: ";
	json_auto_t *o = json_pack("{s:s, s:[], s:[], s:b}", "state", "unknown", "pids", "stopped",
				   "stale", 0);
	size_t pos = 0;
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos;
		pos += ll + (nl ? 1 : 0);
		if (ll < sizeof(prefix) - 1 || memcmp(line, prefix, sizeof(prefix) - 1) != 0)
			continue;
		const char *w = line + sizeof(prefix) - 1;
		size_t wl = ll - (sizeof(prefix) - 1);
		const char *sp = memchr(w, ' ', wl);
		size_t kl = sp ? (size_t)(sp - w) : wl;
		const char *rest = sp ? sp + 1 : w + wl;
		size_t rl = wl - kl - (sp ? 1 : 0);
#define IS(word) (kl == sizeof(word) - 1 && memcmp(w, word, kl) == 0)
		if (IS("done")) {
			json_object_set_new(o, "state", json_string("done"));
			add_pids(json_object_get(o, "pids"), rest, rl);
		} else if (IS("unchanged") || IS("other")) {
			json_object_set_new(o, "state",
					    json_string(IS("other") ? "other" : "unchanged"));
			/* "<recipe name> <hash>" */
			const char *s2 = memchr(rest, ' ', rl);
			size_t nl1 = s2 ? (size_t)(s2 - rest) : rl;
			json_object_set_new(o, "recipe", text_value(rest, nl1));
			if (s2)
				json_object_set_new(o, "hash", text_value(s2 + 1, rl - nl1 - 1));
		} else if (IS("stale")) {
			json_object_set_new(o, "stale", json_true());
		} else if (IS("stopped")) {
			add_pids(json_object_get(o, "stopped"), rest, rl);
		} else if (IS("failed")) {
			json_object_set_new(o, "state", json_string("failed"));
			const char *s2 = memchr(rest, ' ', rl);
			size_t sl = s2 ? (size_t)(s2 - rest) : rl;
			json_object_set_new(o, "step", text_value(rest, sl));
			json_object_set_new(o, "detail",
					    s2 ? text_value(s2 + 1, rl - sl - 1) : json_string(""));
		} else if (IS("ready")) {
			json_object_set_new(o, "started", json_true());
		} else if (IS("rolledback")) {
			json_object_set_new(o, "rolled_back", json_true());
		}
#undef IS
	}
	*ret = steal_pointer(&o);
	return 0;
}

static bool has(const char *s, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(s + i, needle, n) == 0)
			return true;
	return false;
}

/* The last non-empty line of s, cut to fit. */
static void last_line(const char *s, size_t len, char *buf, size_t size)
{
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
		len--;
	size_t start = len;
	while (start && s[start - 1] != '\n')
		start--;
	size_t n = len - start;
	if (n >= size)
		n = size - 1;
	n = kilt_utf8_valid_prefix((const unsigned char *)s + start, n);
	memcpy(buf, s + start, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20)
			buf[i] = ' ';
}

enum kilt_exec_failure kilt_exec_failure_explain(const char *s, size_t len, const char *strategy,
						 char *buf, size_t size)
{
	char last[300];
	last_line(s, len, last, sizeof(last));
	const char *other = strategy && strcmp(strategy, "debug") == 0 ? "exec" : "debug";
	if (has(s, len, "forbidden")) {
		snprintf(buf, size, "not allowed (RBAC): %s", last);
		return KILT_EXEC_FAIL_FORBIDDEN;
	}
	if (has(s, len, "NotFound") || has(s, len, "not found") ||
	    has(s, len, "container not found") || has(s, len, "is terminated") ||
	    has(s, len, "does not have a host assigned")) {
		if (has(s, len, "executable file not found") || has(s, len, "\"sh\""))
			goto no_shell;
		snprintf(buf, size, "the pod or container is gone: %s", last);
		return KILT_EXEC_FAIL_GONE;
	}
	if (has(s, len, "no space left on device") || has(s, len, "disk quota")) {
		snprintf(buf, size, "the container's disk is full: %s", last);
		return KILT_EXEC_FAIL_NO_SPACE;
	}
	if (has(s, len, "executable file not found") || has(s, len, "exec: \"sh\"") ||
	    has(s, len, "no such file or directory: unknown")) {
	no_shell:
		snprintf(buf, size,
			 "no shell (sh) in the container, which the %s strategy needs: use "
			 "--strategy %s (%s)",
			 strategy ? strategy : "exec", other, last);
		return KILT_EXEC_FAIL_NO_SHELL;
	}
	snprintf(buf, size, "%s", last[0] ? last : "kubectl failed without a message");
	return KILT_EXEC_FAIL_OTHER;
}

/* ---- the steps, as the operator reads them ---------------------------------------------------- */

json_t *kilt_exec_steps(const json_t *plan)
{
	json_t *steps = json_array();
	const char *dir = json_string_value(json_object_get(plan, "dir"));
	const char *root = json_string_value(json_object_get(plan, "root"));
	const json_t *recipe = json_object_get(plan, "recipe");
	const char *hash = json_string_value(json_object_get(recipe, "hash"));
	const json_t *debug = json_object_get(plan, "debug");
	const char *in = root && root[0] ? " (through /proc/1/root)" : "";
	char *s;
#define ADD(...)                                                                                   \
	do {                                                                                       \
		s = xasprintf(__VA_ARGS__);                                                        \
		json_array_append_new(steps, json_string(s));                                      \
		free(s);                                                                           \
	} while (0)
	if (json_is_object(debug))
		ADD("add the ephemeral container %s (image %s, sharing the process namespace of "
		    "%s; Kubernetes cannot remove it afterwards), unless it already runs",
		    json_string_value(json_object_get(debug, "name")),
		    json_string_value(json_object_get(debug, "image")),
		    json_string_value(json_object_get(plan, "container")));
	ADD("read the marker %s/marker%s: recipe %s (%.12s) already there and its programs "
	    "running: nothing to do; another recipe: stop%s",
	    dir, in, json_string_value(json_object_get(recipe, "name")), hash,
	    json_is_true(json_object_get(plan, "force"))
		    ? " (--force: stop its programs, replace it)"
		    : " (--force replaces it)");
	size_t i;
	const json_t *u;
	json_array_foreach (json_object_get(plan, "uploads"), i, u) {
		const char *as = json_string_value(json_object_get(u, "as"));
		const char *url = json_string_value(json_object_get(u, "url"));
		const char *file = json_string_value(json_object_get(u, "file"));
		const char *sha = json_string_value(json_object_get(u, "sha256"));
		char from[1200];
		if (url)
			snprintf(from, sizeof(from),
				 "%s (fetched once here, sha256 %.12s… checked "
				 "before anything is sent)",
				 url, sha ? sha : "");
		else if (file)
			snprintf(from, sizeof(from), "the local file %s", file);
		else
			snprintf(from, sizeof(from),
				 "the recipe's inline content (%zu bytes of base64)",
				 json_string_length(json_object_get(u, "payload")));
		ADD("upload %s%s from %s, mode %04llo, owner %lld:%lld", as, in, from,
		    (unsigned long long)json_integer_value(json_object_get(u, "mode")),
		    (long long)json_integer_value(json_object_get(u, "uid")),
		    (long long)json_integer_value(json_object_get(u, "gid")));
	}
	const json_t *l = json_object_get(plan, "launcher");
	if (json_is_object(l))
		ADD("upload kilt-launch for %s from %s to %s, mode 0755",
		    json_string_value(json_object_get(plan, "arch")),
		    json_string_value(json_object_get(l, "file")),
		    json_string_value(json_object_get(l, "as")));
	const json_t *argv;
	json_array_foreach (json_object_get(plan, "programs"), i, argv) {
		struct kbuf b;
		kbuf_init(&b, 4096);
		size_t j;
		const json_t *w;
		json_array_foreach (argv, j, w) {
			if (j)
				kbuf_addc(&b, ' ');
			kbuf_adds(&b, json_string_value(w));
		}
		char *words = kbuf_steal(&b);
		ADD("start %s detached through %s%s, output in %s/%.10s.%zu.log", words,
		    json_string_value(json_object_get(plan, "launch")),
		    root && root[0] ? " --root /proc/1/root (in the debug container)" : "", dir,
		    hash, i);
		free(words);
	}
	if (json_array_size(json_object_get(plan, "programs")))
		ADD("check that every program runs; on any failure remove what was uploaded and "
		    "stop "
		    "what was started");
	ADD("write the marker %s/marker%s, then the pod annotation %s", dir, in,
	    json_string_value(json_object_get(plan, "annotation")));
#undef ADD
	return steps;
}
