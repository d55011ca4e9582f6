/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of kilt exec's pure part: kubectl's pod and node JSON, the plan of one container,
 * the steps, the script's quoting, the tar stream, reading back the script's report and
 * kubectl's errors, and the pod annotation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt-exec.h"

#define POD(name, extra_spec, phase, running)                                                      \
	"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\",\"namespace\":\"shop\","            \
	"\"annotations\":{\"a\":\"b\",\"n\":1}},\"spec\":{\"nodeName\":\"n1\"," extra_spec         \
	"\"containers\":[{\"name\":\"app\",\"image\":\"busybox:1\",\"command\":[\"sleep\","        \
	"\"3600\"],\"securityContext\":{\"runAsUser\":1000}},{\"name\":\"side\",\"image\":"        \
	"\"nginx\"}]},\"status\":{\"phase\":\"" phase "\",\"containerStatuses\":[{\"name\":"       \
	"\"app\",\"state\":{" running "}},{\"name\":\"side\",\"state\":{\"waiting\":{}}}]}}"

static const char list[] = "{\"kind\":\"List\",\"items\":[" POD(
	"web-1", "", "Running",
	"\"running\":{}") ","
			  "{\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"},\"status\":{"
			  "\"nodeInfo\":{"
			  "\"architecture\":\"arm64\"}}}," POD("web-2",
							       "\"shareProcessNamespace\":true,",
							       "Pending", "\"waiting\":{}") "]}";

static json_t *parse_pods(const char *text, json_t **nodes)
{
	json_t *pods = NULL;
	struct kilt_error err = { 0 };
	if (kilt_exec_pods_parse(text, strlen(text), &pods, nodes, &err) < 0)
		fail_msg("parse: %s", err.msg);
	return pods;
}

static void test_exec__pods_parse(void **state)
{
	(void)state;
	json_t *nodes = NULL;
	json_t *pods = parse_pods(list, &nodes);
	assert_int_equal(json_array_size(pods), 2);
	const json_t *p = json_array_get(pods, 0);
	assert_string_equal(json_string_value(json_object_get(p, "namespace")), "shop");
	assert_string_equal(json_string_value(json_object_get(p, "node")), "n1");
	/* annotations: strings only */
	assert_int_equal(json_object_size(json_object_get(p, "annotations")), 1);
	const json_t *c = json_array_get(json_object_get(p, "containers"), 0);
	assert_true(json_is_true(json_object_get(c, "running")));
	assert_int_equal(json_integer_value(json_object_get(c, "user")), 1000);
	assert_int_equal(json_array_size(json_object_get(c, "command")), 2);
	c = json_array_get(json_object_get(p, "containers"), 1);
	assert_false(json_is_true(json_object_get(c, "running")));
	assert_true(json_is_true(json_object_get(json_array_get(pods, 1), "share_pids")));
	assert_string_equal(json_string_value(json_object_get(nodes, "n1")), "arm64");
	json_decref(pods);
	json_decref(nodes);

	/* a single Pod, as `kubectl get pod NAME -o json` prints it */
	pods = parse_pods(POD("solo", "", "Running", "\"running\":{}"), NULL);
	assert_int_equal(json_array_size(pods), 1);
	json_decref(pods);

	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "nope", "not JSON" },
		{ "[]", "expected an object" },
		{ "{\"kind\":\"List\"}", "neither a List" },
		{ "{\"items\":[{\"metadata\":{}}]}", "items[0]: a Pod without a valid name" },
		{ "{\"items\":[{\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"},\"spec\":{"
		  "\"containers\":[{\"image\":\"i\"}]}}]}",
		  "without a valid name" },
		{ "{\"items\":[{\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"},\"spec\":{"
		  "\"containers\":{}}}]}",
		  "expected a list" },
		{ "{\"items\":[1]}", "items[0]: expected an object" },
		{ "{\"items\":[{\"kind\":\"Pod\",\"metadata\":{\"name\":7}}]}", "valid name" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct kilt_error err = { 0 };
		json_t *out = (json_t *)(uintptr_t)0x1;
		int r = kilt_exec_pods_parse(bad[i].text, strlen(bad[i].text), &out, NULL, &err);
		if (r != -EINVAL || !strstr(err.msg, bad[i].msg))
			fail_msg("%s: %d '%s', want '%s'", bad[i].text, r, err.msg, bad[i].msg);
		assert_ptr_equal(out, (json_t *)(uintptr_t)0x1); /* untouched on failure */
	}
}

static struct kilt_recipe *recipe(const char *text)
{
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	if (kilt_recipe_load_string(text, strlen(text), "t", &r, &err) < 0)
		fail_msg("recipe: %s", err.msg);
	return r;
}

static const char seed_like[] =
	"deploy { entrypoint: [ /falco/pdig ] ${original.entrypoint} }\n"
	"patch {\n"
	"  upload: [ { url: \"http://127.0.0.1:9/falco\", sha256: "
	"\"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\", as: /falco/falco }\n"
	"            { text: \"it's\", as: \"/etc/it's here\", mode: \"0644\", uid: 1000, gid: 7 } "
	"]\n"
	"  background_exec: [ \"/falco/pdig -p 1\" ]\n"
	"}\n";

static void test_exec__plan(void **state)
{
	(void)state;
	json_t *nodes = NULL;
	json_t *pods = parse_pods(list, &nodes);
	struct kilt_recipe *r = recipe(seed_like);
	json_t *launchers = json_pack("{s:s}", "arm64", "/build/kilt-launch-arm64");
	struct kilt_exec_options o = { .strategy = KILT_EXEC_EXEC, .launchers = launchers };
	json_t *plan = NULL;
	struct kilt_error err = { 0 };
	/* the seed's deploy needs original.entrypoint; the running pod does not say what the image
	 * runs (no command here would be fine too): the patch does not depend on it */
	int rc = kilt_exec_plan(r, json_array_get(pods, 0), nodes, "app", &o, &plan, &err);
	if (rc < 0)
		fail_msg("plan: %s", err.msg);
	assert_string_equal(json_string_value(json_object_get(plan, "arch")), "arm64");
	assert_string_equal(json_string_value(json_object_get(plan, "strategy")), "exec");
	assert_string_equal(json_string_value(json_object_get(plan, "dir")), "/kilt");
	assert_int_equal(json_array_size(json_object_get(plan, "uploads")), 2);
	const json_t *l = json_object_get(plan, "launcher");
	assert_string_equal(json_string_value(json_object_get(l, "file")),
			    "/build/kilt-launch-arm64");
	assert_string_equal(json_string_value(json_object_get(l, "as")), "/kilt/bin/kilt-launch");
	json_t *steps = kilt_exec_steps(plan);
	assert_int_equal(json_array_size(steps), 7);
	assert_non_null(strstr(json_string_value(json_array_get(steps, 1)),
			       "sha256 9f86d081884c… checked before anything is sent"));
	json_decref(steps);

	/* the script: every value single-quoted, so the quote in the path cannot end it */
	char *script = kilt_exec_script(plan);
	assert_non_null(strstr(script, "place 1 '/etc/it'\\''s here' 0644 1000 7\n"));
	assert_non_null(strstr(script, "start '/kilt/"));
	assert_non_null(strstr(script, "' '/falco/pdig' '-p' '1'\n"));
	assert_non_null(strstr(script, "OTHER='debug'"));
	free(script);
	json_decref(plan);

	/* debug strategy: no upload of the launcher; through /proc/1/root */
	o.strategy = KILT_EXEC_DEBUG;
	o.debug_image = "kilt.test/helpers:1";
	rc = kilt_exec_plan(r, json_array_get(pods, 0), nodes, "app", &o, &plan, &err);
	if (rc < 0)
		fail_msg("plan: %s", err.msg);
	assert_true(json_is_null(json_object_get(plan, "launcher")));
	assert_string_equal(json_string_value(json_object_get(plan, "root")), "/proc/1/root");
	assert_non_null(json_object_get(json_object_get(plan, "debug"), "name"));
	script = kilt_exec_script(plan);
	assert_non_null(strstr(script, "ROOTOPT=\"--root $R\""));
	assert_non_null(strstr(script, "OTHER='exec'"));
	free(script);
	json_decref(plan);

	static const struct {
		const char *pod, *container, *msg;
		enum kilt_exec_strategy strategy;
		const char *arch, *dir, *image;
	} bad[] = {
		{ "web-1", "nope", "has no container 'nope' (it has: app, side)", KILT_EXEC_EXEC,
		  NULL, NULL, NULL },
		{ "web-1", "side", "container side of pod shop/web-1 is not running",
		  KILT_EXEC_EXEC, NULL, NULL, NULL },
		{ "web-2", "app", "is Pending, not Running", KILT_EXEC_EXEC, NULL, NULL, NULL },
		{ "web-1", "app", "no --launcher for amd64", KILT_EXEC_EXEC, "amd64", NULL, NULL },
		{ "web-1", "app", "--dir '/': expected", KILT_EXEC_EXEC, NULL, "/", NULL },
		{ "web-1", "app", "--dir 'rel'", KILT_EXEC_EXEC, NULL, "rel", NULL },
		{ "web-1", "app", "inside /falco, which kilt exec keeps", KILT_EXEC_EXEC, NULL,
		  "/falco", NULL },
		{ "web-1", "app", "needs --debug-image", KILT_EXEC_DEBUG, NULL, NULL, NULL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const json_t *pod = json_array_get(pods, strcmp(bad[i].pod, "web-1") == 0 ? 0 : 1);
		struct kilt_exec_options b = { .strategy = bad[i].strategy,
					       .launchers = launchers,
					       .arch = bad[i].arch,
					       .dir = bad[i].dir,
					       .debug_image = bad[i].image };
		json_t *out = NULL;
		rc = kilt_exec_plan(r, pod, nodes, bad[i].container, &b, &out, &err);
		if (rc >= 0 || !strstr(err.msg, bad[i].msg))
			fail_msg("case %zu: %d '%s', want '%s'", i, rc, err.msg, bad[i].msg);
		assert_null(out);
	}
	kilt_recipe_free(r);

	/* a patch that needs what the image runs: known when the pod sets command, else refused */
	r = recipe("patch { background_exec: [ ${original.entrypoint} ] }");
	rc = kilt_exec_plan(r, json_array_get(pods, 0), nodes, "app", &o, &plan, &err);
	if (rc < 0)
		fail_msg("plan: %s", err.msg);
	assert_string_equal(json_string_value(json_array_get(
				    json_array_get(json_object_get(plan, "programs"), 0), 0)),
			    "sleep");
	json_decref(plan);
	json_t *bare = json_deep_copy(json_array_get(pods, 0));
	json_object_del(json_array_get(json_object_get(bare, "containers"), 0), "command");
	rc = kilt_exec_plan(r, bare, nodes, "app", &o, &plan, &err);
	assert_int_equal(rc, -ENODATA);
	assert_non_null(strstr(err.msg, "original.entrypoint"));
	json_decref(bare);
	kilt_recipe_free(r);
	r = recipe("deploy { entrypoint: [ /x ] }");
	rc = kilt_exec_plan(r, json_array_get(pods, 0), nodes, "app", &o, &plan, &err);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err.msg, "has no patch section"));
	kilt_recipe_free(r);
	json_decref(launchers);
	json_decref(pods);
	json_decref(nodes);
}

static unsigned oct(const char *p, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; i++)
		v = v * 8 + (unsigned)(p[i] - '0');
	return v;
}

static void test_exec__tar(void **state)
{
	(void)state;
	char big[700];
	memset(big, 'x', sizeof(big));
	const struct kilt_tar_file files[] = {
		{ .name = "0", .mode = 0600, .data = "hi\n", .len = 3 },
		{ .name = "L", .mode = 0700, .data = big, .len = sizeof(big) },
	};
	char *tar = NULL;
	size_t len = 0;
	assert_int_equal(kilt_tar_build(files, 2, &tar, &len, NULL), 0);
	assert_int_equal(len, 512 + 512 + 512 + 1024 + 1024);
	assert_string_equal(tar, "0");
	assert_int_equal(oct(tar + 124, 12), 3);
	assert_int_equal(oct(tar + 100, 8), 0600);
	assert_memory_equal(tar + 257,
			    "ustar\0"
			    "00",
			    8);
	unsigned sum = 0;
	for (size_t i = 0; i < 512; i++)
		sum += (i >= 148 && i < 156) ? ' ' : (unsigned char)tar[i];
	assert_int_equal(oct(tar + 148, 8), sum);
	assert_memory_equal(tar + 512, "hi\n", 3);
	assert_string_equal(tar + 1024, "L");
	assert_int_equal(oct(tar + 1024 + 124, 12), 700);
	for (size_t i = len - 1024; i < len; i++)
		assert_int_equal(tar[i], 0);
	free(tar);
	const struct kilt_tar_file abs[] = { { .name = "/etc/x" } };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_tar_build(abs, 1, &tar, &len, &err), -EINVAL);
}

static void test_exec__result(void **state)
{
	(void)state;
	static const char out[] = "noise\nkilt-exec: stale\nkilt-exec: stopped 12 x 13\n"
				  "kilt-exec: done 41 42\n";
	json_t *r = NULL;
	assert_int_equal(kilt_exec_result_parse(out, strlen(out), &r, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(r, "state")), "done");
	assert_int_equal(json_array_size(json_object_get(r, "pids")), 2);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(r, "pids"), 1)), 42);
	assert_int_equal(json_array_size(json_object_get(r, "stopped")), 2);
	assert_true(json_is_true(json_object_get(r, "stale")));
	json_decref(r);
	static const char cut[] = "kilt-exec: ready\n";
	assert_int_equal(kilt_exec_result_parse(cut, strlen(cut), &r, NULL), 0);
	assert_true(json_is_true(json_object_get(r, "started")));
	assert_string_equal(json_string_value(json_object_get(r, "state")), "unknown");
	json_decref(r);
	static const char fail[] = "kilt-exec: failed upload tar: write error: No space left on "
				   "device\nkilt-exec: rolledback\n";
	assert_int_equal(kilt_exec_result_parse(fail, strlen(fail), &r, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(r, "state")), "failed");
	assert_string_equal(json_string_value(json_object_get(r, "step")), "upload");
	assert_true(json_is_true(json_object_get(r, "rolled_back")));
	char why[300];
	const char *d = json_string_value(json_object_get(r, "detail"));
	assert_int_equal(kilt_exec_failure_explain(d, strlen(d), "exec", why, sizeof(why)),
			 KILT_EXEC_FAIL_NO_SPACE);
	json_decref(r);
	static const char other[] = "kilt-exec: other falco abc\n";
	assert_int_equal(kilt_exec_result_parse(other, strlen(other), &r, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(r, "recipe")), "falco");
	assert_string_equal(json_string_value(json_object_get(r, "hash")), "abc");
	json_decref(r);
	assert_int_equal(kilt_exec_result_parse("", 0, &r, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(r, "state")), "unknown");
	json_decref(r);
}

static void test_exec__failures(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		enum kilt_exec_failure kind;
		const char *msg;
	} cases[] = {
		{ "Error from server (NotFound): pods \"web-3\" not found\n", KILT_EXEC_FAIL_GONE,
		  "the pod or container is gone: Error from server (NotFound)" },
		{ "Error from server (Forbidden): pods \"web-1\" is forbidden: User \"eve\" cannot "
		  "create resource \"pods/exec\"\n",
		  KILT_EXEC_FAIL_FORBIDDEN, "not allowed (RBAC)" },
		{ "error: Internal error occurred: error executing command in container: failed to "
		  "exec in container: failed to start exec \"x\": OCI runtime exec failed: exec "
		  "failed: unable to start container process: exec: \"sh\": executable file not "
		  "found in $PATH: unknown\n",
		  KILT_EXEC_FAIL_NO_SHELL, "use --strategy debug" },
		{ "something odd\n\n", KILT_EXEC_FAIL_OTHER, "something odd" },
		{ "", KILT_EXEC_FAIL_OTHER, "kubectl failed without a message" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char buf[400];
		enum kilt_exec_failure k = kilt_exec_failure_explain(
			cases[i].text, strlen(cases[i].text), "exec", buf, sizeof(buf));
		if (k != cases[i].kind || !strstr(buf, cases[i].msg))
			fail_msg("case %zu: %d '%s'", i, k, buf);
	}
}

static void test_exec__annotation(void **state)
{
	(void)state;
	char *v = kilt_exec_annotation(NULL, "app", "falco abc");
	assert_string_equal(v, "{\"app\":\"falco abc\"}");
	char *w = kilt_exec_annotation(v, "side", "falco abc");
	assert_string_equal(w, "{\"app\":\"falco abc\",\"side\":\"falco abc\"}");
	char *x = kilt_exec_annotation(w, "app", "other def containerd://1 0 /kilt");
	assert_string_equal(x, "{\"app\":\"other def containerd://1 0 /kilt\",\"side\":\"falco "
			       "abc\"}");
	char *g = kilt_exec_annotation_get(x, "side");
	assert_string_equal(g, "falco abc");
	free(g);
	assert_null(kilt_exec_annotation_get(x, "none"));
	assert_null(kilt_exec_annotation_get("not json", "app"));
	char *y = kilt_exec_annotation("not json", "app", "r h");
	assert_string_equal(y, "{\"app\":\"r h\"}");
	free(v);
	free(w);
	free(x);
	free(y);
}

/* A running pod (uid `uid`) whose container "app" is instance `id` (NULL: the status names none)
 * after `restarts` restarts, with annotations kilt.dev/exec `ann` and kilt.dev/exec-instances
 * `digests` (NULL: none), and an ephemeral container `eph_name` (NULL: none) in `eph_state` */
static json_t *instance_pod(const char *uid, const char *id, int restarts, const char *ann,
			    const char *digests, const char *eph_name, const char *eph_state)
{
	json_auto_t *p = json_pack(
		"{s:s, s:{s:s, s:s, s:s, s:{}}, s:{s:s, s:[{s:s, s:s}], s:[]}, s:{s:s, s:[{s:s, "
		"s:i, s:{s:{}}}], s:[]}}",
		"kind", "Pod", "metadata", "name", "web-1", "namespace", "shop", "uid", uid,
		"annotations", "spec", "nodeName", "n1", "containers", "name", "app", "image",
		"busybox", "ephemeralContainers", "status", "phase", "Running", "containerStatuses",
		"name", "app", "restartCount", restarts, "state", "running",
		"ephemeralContainerStatuses");
	if (!p)
		fail_msg("json_pack");
	json_t *st = json_array_get(
		json_object_get(json_object_get(p, "status"), "containerStatuses"), 0);
	if (id)
		json_object_set_new(st, "containerID", json_string(id));
	json_t *a = json_object_get(json_object_get(p, "metadata"), "annotations");
	if (ann)
		json_object_set_new(a, "kilt.dev/exec", json_string(ann));
	if (digests)
		json_object_set_new(a, KILT_EXEC_INSTANCES, json_string(digests));
	if (eph_name) {
		json_array_append_new(
			json_object_get(json_object_get(p, "spec"), "ephemeralContainers"),
			json_pack("{s:s, s:s}", "name", eph_name, "image", "h"));
		json_array_append_new(
			json_object_get(json_object_get(p, "status"), "ephemeralContainerStatuses"),
			json_pack("{s:s, s:{s:{}}}", "name", eph_name, "state", eph_state));
	}
	char *text = json_dumps(p, JSON_COMPACT);
	json_t *pods = parse_pods(text, NULL);
	free(text);
	json_t *pod = json_incref(json_array_get(pods, 0));
	json_decref(pods);
	return pod;
}

static json_t *plan_of(const struct kilt_recipe *r, const json_t *pod,
		       const struct kilt_exec_options *o)
{
	json_t *plan = NULL;
	struct kilt_error err = { 0 };
	if (kilt_exec_plan(r, pod, NULL, "app", o, &plan, &err) < 0)
		fail_msg("plan: %s", err.msg);
	return plan;
}

/* Whether a pod made by instance_pod is proven to carry `r` for the options `o`. */
static bool annotated(const struct kilt_recipe *r, const struct kilt_exec_options *o,
		      const char *uid, const char *id, int restarts, const char *ann,
		      const char *digests, const char *eph_state)
{
	char dname[32];
	snprintf(dname, sizeof(dname), "kilt-%.10s", kilt_recipe_hash(r));
	json_t *pod =
		instance_pod(uid, id, restarts, ann, digests, eph_state ? dname : NULL, eph_state);
	json_t *plan = plan_of(r, pod, o);
	bool b = kilt_exec_annotated(pod, plan);
	json_decref(plan);
	json_decref(pod);
	return b;
}

static void test_exec__annotated(void **state)
{
	(void)state;
	struct kilt_recipe *r = recipe("patch { upload: [ { text: \"x\", as: /etc/x } ] }\n");
	struct kilt_recipe *r2 = recipe("patch { upload: [ { text: \"y\", as: /etc/x } ] }\n");
	const char *id = "containerd://0123456789abcdef", *uid = "4f1c-uid";
	struct kilt_exec_options o = { .strategy = KILT_EXEC_EXEC };
	struct kilt_exec_options dir2 = { .strategy = KILT_EXEC_EXEC, .dir = "/tmp/kilt" };
	struct kilt_exec_options dbg = { .strategy = KILT_EXEC_DEBUG, .debug_image = "h" };

	/* what a run that applied r to this instance writes */
	json_t *pod = instance_pod(uid, id, 0, NULL, NULL, NULL, NULL);
	json_t *plan = plan_of(r, pod, &o);
	const json_t *inst = json_object_get(plan, "instance");
	assert_string_equal(json_string_value(json_object_get(inst, "id")), id);
	assert_int_equal(json_integer_value(json_object_get(inst, "restarts")), 0);
	assert_false(kilt_exec_annotated(pod, plan)); /* no annotation: enter */
	char *v = kilt_exec_annotation_value(plan);
	char *want = xasprintf("t %s", kilt_recipe_hash(r));
	assert_string_equal(v, want);
	free(want);
	char *ann = kilt_exec_annotation(NULL, "app", v);
	free(v);
	char d[17] = "", d2[17] = "";
	assert_true(kilt_exec_instance_digest(pod, plan, d));
	assert_int_equal(strlen(d), 16);
	json_decref(plan);
	json_decref(pod);
	/* the digest binds the pod, the container instance, the recipe and the dir */
	pod = instance_pod("other-uid", id, 0, NULL, NULL, NULL, NULL);
	plan = plan_of(r, pod, &o);
	assert_true(kilt_exec_instance_digest(pod, plan, d2));
	assert_string_not_equal(d, d2);
	json_decref(plan);
	json_decref(pod);
	char *digests =
		xasprintf("0123456789abcdef %s fedcba9876543210", d); /* a batch's digests */

	/* the same instance with what the run wrote: done, no need to enter */
	assert_true(annotated(r, &o, uid, id, 0, ann, digests, NULL));
	/* without the instances (what an older kilt wrote): enter */
	assert_false(annotated(r, &o, uid, id, 0, ann, NULL, NULL));
	assert_false(annotated(r, &o, uid, id, 0, ann, "0123456789abcdef", NULL));
	/* another --dir (its marker is elsewhere), another recipe */
	assert_false(annotated(r, &dir2, uid, id, 0, ann, digests, NULL));
	assert_false(annotated(r2, &o, uid, id, 0, ann, digests, NULL));
	/* the container restarted: a new instance, its files are gone */
	assert_false(annotated(r, &o, uid, "containerd://fedcba9876543210", 1, ann, digests, NULL));
	assert_false(annotated(r, &o, uid, id, 1, ann, digests, NULL));
	/* another pod of the same name (recreated): another uid */
	assert_false(annotated(r, &o, "other-uid", id, 0, ann, digests, NULL));
	/* kilt.dev/exec names another recipe for the container */
	char *ann2 = kilt_exec_annotation(NULL, "app", "t 0000");
	assert_false(annotated(r, &o, uid, id, 0, ann2, digests, NULL));
	free(ann2);
	/* a status without a container id (or one kilt could not write back): never */
	assert_false(annotated(r, &o, uid, NULL, 0, ann, digests, NULL));
	pod = instance_pod(uid, "containerd://a b", 0, NULL, NULL, NULL, NULL);
	assert_null(json_object_get(json_array_get(json_object_get(pod, "containers"), 0), "id"));
	plan = plan_of(r, pod, &o);
	assert_true(json_is_null(json_object_get(plan, "instance")));
	assert_false(kilt_exec_instance_digest(pod, plan, d2));
	json_decref(plan);
	json_decref(pod);

	/* programs started from the recipe's debug container live in it */
	assert_false(annotated(r, &dbg, uid, id, 0, ann, digests, NULL)); /* not there */
	assert_true(annotated(r, &dbg, uid, id, 0, ann, digests, "running"));
	assert_true(annotated(r, &o, uid, id, 0, ann, digests, "running"));
	assert_false(annotated(r, &dbg, uid, id, 0, ann, digests, "terminated"));
	assert_false(annotated(r, &o, uid, id, 0, ann, digests, "terminated"));

	assert_true(kilt_exec_instances_has("a bb  ccc", "bb"));
	assert_false(kilt_exec_instances_has("a bbb ccc", "bb"));
	assert_false(kilt_exec_instances_has(NULL, "bb"));
	assert_false(kilt_exec_instances_has("", ""));
	free(digests);
	free(ann);
	kilt_recipe_free(r);
	kilt_recipe_free(r2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec__pods_parse), cmocka_unit_test(test_exec__plan),
		cmocka_unit_test(test_exec__tar),	 cmocka_unit_test(test_exec__result),
		cmocka_unit_test(test_exec__failures),	 cmocka_unit_test(test_exec__annotation),
		cmocka_unit_test(test_exec__annotated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
