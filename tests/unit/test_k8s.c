/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the Kubernetes engine's webhook door (kilt_k8s_mutate) and of the image facts it
 * lists; the whole-document door is covered by the golden cases (tests/k8s-inject/). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

static const char RECIPE[] =
	"platforms: [ linux/amd64, linux/arm64 ]\n"
	"deploy {\n"
	"  entrypoint: [ /kilt/bin/kilt-launch, \"--\" ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: kilt-agent, image: \"example/agent:1\", volumes: "
	"[ /kilt ] } ]\n"
	"  capabilities: [ SYS_PTRACE ]\n"
	"}\n";

static struct kilt_recipe *recipe;
static struct kilt_k8s_recipe kr;

static int setup(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	assert_int_equal(
		kilt_recipe_load_string(RECIPE, sizeof(RECIPE) - 1, "agent", &recipe, &err), 0);
	kr = (struct kilt_k8s_recipe){ .name = "agent", .recipe = recipe };
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kilt_recipe_free(recipe);
	return 0;
}

static void opts_init(struct kilt_k8s_options *o)
{
	kilt_k8s_options_default(o);
	o->recipes = &kr;
	o->n_recipes = 1;
}

static json_t *pod(const char *containers_json)
{
	json_error_t jerr;
	_cleanup_free_ char *text = xasprintf(
		"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"generateName\":\"web-\"},"
		"\"spec\":{\"containers\":%s}}",
		containers_json);
	json_t *p = json_loads(text, 0, &jerr);
	assert_non_null(p);
	return p;
}

static bool has_op(const json_t *patch, const char *op, const char *path)
{
	size_t i;
	json_t *o;
	json_array_foreach (patch, i, o) {
		if (strcmp(json_string_value(json_object_get(o, "op")), op) == 0 &&
		    strcmp(json_string_value(json_object_get(o, "path")), path) == 0)
			return true;
	}
	return false;
}

/* A pod as an AdmissionReview carries it: the patch adds kilt's fields, the patched pod carries
 * them, a second review of the patched pod gives an empty patch. */
static void test_k8s__mutate_then_again(void **state)
{
	(void)state;
	struct kilt_k8s_options o;
	opts_init(&o);
	_cleanup_json_ json_t *p =
		pod("[{\"name\":\"web\",\"image\":\"nginx\",\"command\":[\"/web\"]}]");
	_cleanup_json_ json_t *before = json_deep_copy(p);
	struct kilt_k8s_namespace ns = { .name = "shop" };
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_k8s_mutate(p, &ns, &o, &res, &err), 0);
	assert_true(json_equal(p, before)); /* the input is borrowed, never changed */
	assert_true(has_op(res.patch, "replace", "/spec/containers/0/command"));
	assert_true(has_op(res.patch, "add", "/spec/containers/0/args"));
	assert_true(has_op(res.patch, "add", "/spec/initContainers"));
	assert_true(has_op(res.patch, "add", "/spec/volumes"));
	assert_true(has_op(res.patch, "add", "/metadata/annotations"));
	assert_int_equal(res.report.n_patched, 1);
	assert_int_equal(json_array_size(res.warnings), 0);
	assert_string_equal(
		json_string_value(json_array_get(
			json_object_get(
				json_array_get(json_object_get(json_object_get(res.pod, "spec"),
							       "containers"),
					       0),
				"command"),
			0)),
		"/kilt/bin/kilt-launch");

	struct kilt_k8s_result again;
	kilt_k8s_result_init(&again);
	assert_int_equal(kilt_k8s_mutate(res.pod, &ns, &o, &again, &err), 0);
	assert_int_equal(json_array_size(again.patch), 0);
	assert_int_equal(again.report.n_unchanged, 1);
	kilt_k8s_result_done(&again);
	kilt_k8s_result_done(&res);
}

/* A recipe that reads the pod's labels and annotations (original.metadata) gets them; one that
 * does not is planned without them (kilt_recipe_reads_metadata), to the same pod. */
static void test_k8s__recipe_reads_metadata(void **state)
{
	(void)state;
	static const char text[] =
		"deploy {\n"
		"  entrypoint: [ /kilt/bin/kilt-launch, \"--\" ] ${original.entrypoint}\n"
		"  command: ${original.command}\n"
		"  environment { TEAM: \"team=\"${?original.metadata.team}, WHO: ${original.name} "
		"}\n"
		"}\n";
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_string(text, sizeof(text) - 1, "meta", &r, &err), 0);
	assert_true(kilt_recipe_reads_metadata(r));
	struct kilt_k8s_recipe meta = { .name = "meta", .recipe = r };
	struct kilt_k8s_options o;
	opts_init(&o);
	o.recipes = &meta;
	json_error_t jerr;
	_cleanup_json_ json_t *p = json_loads(
		"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-1\","
		"\"labels\":{\"team\":\"shop\"},\"annotations\":{\"team\":\"ignored\"}},"
		"\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"nginx\","
		"\"command\":[\"/web\"]}]}}",
		0, &jerr);
	assert_non_null(p);
	struct kilt_k8s_namespace ns = { .name = "shop" };
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	assert_int_equal(kilt_k8s_mutate(p, &ns, &o, &res, &err), 0);
	const json_t *env = json_object_get(
		json_array_get(json_object_get(json_object_get(res.pod, "spec"), "containers"), 0),
		"env");
	_cleanup_json_ json_t *want = json_pack("[{ssss}{ssss}]", "name", "TEAM", "value",
						"team=shop", "name", "WHO", "value", "web");
	assert_true(json_equal(env, want));
	kilt_k8s_result_done(&res);
	kilt_recipe_free(r);
}

/* A container's decision says what was injected: "injected recipe R: command [...]", then
 * "; capabilities [...]", cut to 511 bytes as snprintf cut it, the capabilities only when the
 * command leaves room for them (the text kilt wrote before, computed here the way it did). */
static void test_k8s__injected_summary_cut(void **state)
{
	(void)state;
	struct kilt_k8s_options o;
	opts_init(&o);
	struct kilt_k8s_namespace ns = { .name = "shop" };
	for (size_t len = 380; len < 520; len++) {
		char *arg = xmalloc(len + 1);
		memset(arg, 'a', len);
		arg[len] = '\0';
		_cleanup_free_ char *containers = xasprintf(
			"[{\"name\":\"web\",\"image\":\"nginx\",\"command\":[\"/web\",\"%s\"]}]",
			arg);
		free(arg);
		_cleanup_json_ json_t *p = pod(containers);
		struct kilt_k8s_result res;
		kilt_k8s_result_init(&res);
		struct kilt_error err = { 0 };
		assert_int_equal(kilt_k8s_mutate(p, &ns, &o, &res, &err), 0);
		const char *reason = NULL;
		for (size_t i = 0; i < res.report.n_decisions; i++)
			if (res.report.decisions[i].container)
				reason = res.report.decisions[i].reason;
		assert_non_null(reason);
		/* the text as snprintf and append_reason made it */
		json_t *ep = json_object_get(
			json_array_get(
				json_object_get(json_object_get(res.pod, "spec"), "containers"), 0),
			"command");
		char *eps = json_dumps(ep, JSON_COMPACT);
		char want[512];
		snprintf(want, sizeof(want), "injected recipe %s: command %s", "agent", eps);
		size_t n = strlen(want);
		if (n + 3 < sizeof(want))
			snprintf(want + n, sizeof(want) - n, "; capabilities %s",
				 "[\"SYS_PTRACE\"]");
		free(eps);
		assert_string_equal(reason, want);
		kilt_k8s_result_done(&res);
	}
}

/* Namespaces kilt never touches, and Pod Security: skipped with a warning, empty patch. */
static void test_k8s__skips_with_warnings(void **state)
{
	(void)state;
	struct kilt_k8s_options o;
	opts_init(&o);
	o.own_namespace = "kilt";
	_cleanup_json_ json_t *p = pod("[{\"name\":\"a\",\"image\":\"x\",\"command\":[\"/a\"]}]");
	struct kilt_error err = { 0 };
	const char *names[] = { "kilt", "kube-system" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct kilt_k8s_namespace ns = { .name = names[i] };
		struct kilt_k8s_result res;
		kilt_k8s_result_init(&res);
		assert_int_equal(kilt_k8s_mutate(p, &ns, &o, &res, &err), 0);
		assert_int_equal(json_array_size(res.patch), 0);
		assert_int_equal(res.report.n_patched, 0);
		kilt_k8s_result_done(&res);
	}
	_cleanup_json_ json_t *labels =
		json_pack("{ss}", "pod-security.kubernetes.io/enforce", "baseline");
	struct kilt_k8s_namespace ns = { .name = "apps", .labels = labels };
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	assert_int_equal(kilt_k8s_mutate(p, &ns, &o, &res, &err), 0);
	assert_int_equal(json_array_size(res.patch), 0);
	assert_int_equal(json_array_size(res.warnings), 1);
	assert_non_null(
		strstr(json_string_value(json_array_get(res.warnings, 0)),
		       "enforces Pod Security level baseline, which forbids adding SYS_PTRACE"));
	kilt_k8s_result_done(&res);
	/* told to proceed: injected, with the warning */
	o.pod_security = KILT_K8S_PSA_PROCEED;
	kilt_k8s_result_init(&res);
	assert_int_equal(kilt_k8s_mutate(p, &ns, &o, &res, &err), 0);
	assert_true(json_array_size(res.patch) > 0);
	assert_int_equal(json_array_size(res.warnings), 1);
	assert_non_null(strstr(json_string_value(json_array_get(res.warnings, 0)),
			       "injected because kilt was told to proceed"));
	kilt_k8s_result_done(&res);
}

/* Two phases: the images to look up are listed for the pod's platform, then the answer table
 * decides what runs (the image's ENTRYPOINT with the pod's args). */
static void test_k8s__two_phase_facts(void **state)
{
	(void)state;
	struct kilt_k8s_options o;
	opts_init(&o);
	_cleanup_json_ json_t *p =
		pod("[{\"name\":\"a\",\"image\":\"example/a:1\",\"args\":[\"-v\"]},"
		    "{\"name\":\"b\",\"image\":\"example/b:1\",\"command\":[\"/b\"]}]");
	json_object_set_new(json_object_get(p, "spec"), "nodeSelector",
			    json_pack("{ss}", "kubernetes.io/arch", "arm64"));
	struct kilt_image_needs needs;
	kilt_image_needs_init(&needs);
	kilt_k8s_list_images(p, NULL, &o, &needs);
	assert_int_equal(needs.n, 1); /* b says what it runs */
	assert_string_equal(needs.v[0].image, "docker.io/example/a:1"); /* normalized */
	assert_string_equal(needs.v[0].platform, "linux/arm64");

	/* not resolved: skipped with the reason (fail-open is the webhook's default) */
	o.image_facts = kilt_image_needs_facts;
	o.image_facts_userdata = &needs;
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_k8s_mutate(p, NULL, &o, &res, &err), 0);
	assert_int_equal(res.report.n_patched, 1);
	assert_int_equal(res.report.n_skipped, 1);
	kilt_k8s_result_done(&res);
	/* strict: the run fails naming the container */
	o.strict = true;
	kilt_k8s_result_init(&res);
	assert_true(kilt_k8s_mutate(p, NULL, &o, &res, &err) < 0);
	assert_non_null(strstr(err.msg, "/ a: command is not set"));
	o.strict = false;

	needs.v[0].resolved = true;
	needs.v[0].rc = 0;
	needs.v[0].facts =
		json_pack("{s[ss]s[s]}", "entrypoint", "/init", "/a", "command", "--default");
	kilt_k8s_result_init(&res);
	assert_int_equal(kilt_k8s_mutate(p, NULL, &o, &res, &err), 0);
	assert_int_equal(res.report.n_patched, 2);
	json_t *a =
		json_array_get(json_object_get(json_object_get(res.pod, "spec"), "containers"), 0);
	_cleanup_json_ json_t *want_cmd =
		json_pack("[ssss]", "/kilt/bin/kilt-launch", "--", "/init", "/a");
	_cleanup_json_ json_t *want_args = json_pack("[s]", "-v");
	assert_true(json_equal(json_object_get(a, "command"), want_cmd));
	assert_true(json_equal(json_object_get(a, "args"), want_args));
	kilt_k8s_result_done(&res);
	kilt_image_needs_done(&needs);
}

/* In opt-in mode, a pod selected by its namespace's label (kilt.dev/inject: enabled, the
 * namespace handed to the engine) has its images listed as kilt_k8s_mutate will need them: the
 * list was made as though the namespace had no label, so such a pod never had its image looked
 * up and was skipped as "not looked up". */
static void test_k8s__list_images_namespace_opt_in(void **state)
{
	(void)state;
	struct kilt_k8s_options o;
	opts_init(&o);
	o.mode = KILT_SELECT_OPT_IN;
	_cleanup_json_ json_t *p = pod("[{\"name\":\"a\",\"image\":\"example/a:1\"}]");
	_cleanup_json_ json_t *labels = json_pack("{ss}", KILT_K8S_INJECT, "enabled");
	struct kilt_k8s_namespace ns = { .name = "shop", .labels = labels };

	struct kilt_image_needs needs;
	kilt_image_needs_init(&needs);
	kilt_k8s_list_images(p, NULL, &o, &needs);
	assert_int_equal(needs.n, 0); /* no namespace: not selected, nothing to look up */
	kilt_image_needs_done(&needs);

	kilt_image_needs_init(&needs);
	kilt_k8s_list_images(p, &ns, &o, &needs);
	assert_int_equal(needs.n, 1);
	assert_string_equal(needs.v[0].image, "docker.io/example/a:1");
	needs.v[0].resolved = true;
	needs.v[0].rc = 0;
	needs.v[0].facts = json_pack("{s[s]}", "entrypoint", "/a");
	o.image_facts = kilt_image_needs_facts;
	o.image_facts_userdata = &needs;
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_k8s_mutate(p, &ns, &o, &res, &err), 0);
	assert_int_equal(res.report.n_patched, 1);
	json_t *a =
		json_array_get(json_object_get(json_object_get(res.pod, "spec"), "containers"), 0);
	_cleanup_json_ json_t *want_cmd = json_pack("[sss]", "/kilt/bin/kilt-launch", "--", "/a");
	assert_true(json_equal(json_object_get(a, "command"), want_cmd));
	kilt_k8s_result_done(&res);
	kilt_image_needs_done(&needs);
}

/* The environment of the container `c` of a mutated pod (NULL when it has none). */
static json_t *env_of(const json_t *pod_after, size_t c)
{
	return json_object_get(
		json_array_get(json_object_get(json_object_get(pod_after, "spec"), "containers"),
			       c),
		"env");
}

/* A random env entry: names that the recipes below set and names they do not, repeated, with
 * a NUL, or missing; values that are strings (with a NUL too), null, absent, a number, a
 * valueFrom, both; keys that hold a NUL; now and then an entry that is no object. */
static json_t *random_entry(unsigned *seed)
{
	static const char *const names[] = { "A", "B", "V1", "V4", "OWN", "X", "Y" };
	unsigned r = (unsigned)rand_r(seed);
	if (r % 29 == 0)
		return json_string("not an entry");
	json_t *e = json_object();
	switch ((r >> 5) % 9) {
	case 0:
		json_object_set_new(e, "name", json_stringn("A\0B", 3));
		break;
	case 1:
		break; /* no name */
	default:
		json_object_set_new(
			e, "name", json_string(names[(r >> 9) % (sizeof(names) / sizeof(*names))]));
	}
	switch ((r >> 13) % 10) {
	case 0:
		json_object_set_new(e, "value", json_null());
		break;
	case 1:
		break; /* no value */
	case 2:
		json_object_set_new(e, "value", json_integer(5));
		break;
	case 3:
		json_object_set_new(e, "value", json_stringn("v\0w", 3));
		break;
	case 4:
		json_object_set_new(e, "valueFrom",
				    json_pack("{s{ss}}", "fieldRef", "fieldPath", "status.podIP"));
		break;
	case 5:
		json_object_set_new(e, "value", json_string("both"));
		json_object_set_new(e, "valueFrom",
				    json_pack("{s{ss}}", "secretKeyRef", "key", "k"));
		break;
	case 6:
		json_object_set_new(e, "value", json_string("same"));
		break;
	default:
		json_object_set_new(e, "value", json_sprintf("value-%u", (r >> 17) % 4));
	}
	if (r % 31 == 1)
		json_object_set_new(e, "other", json_true());
	if (r % 7 == 2) /* keys that are "value" or "name" up to a NUL */
		json_object_setn_new(e, r % 2 ? "value\0x" : "name\0y", 7, json_string("hidden"));
	return e;
}

/* A pod of one or two containers with random environments; *ret_n: how many containers. */
static json_t *random_pod(unsigned *seed, size_t *ret_n)
{
	json_t *containers = json_array();
	size_t nc = 1 + (size_t)rand_r(seed) % 2;
	for (size_t c = 0; c < nc; c++) {
		json_t *env = json_array();
		size_t n = (size_t)rand_r(seed) % 9;
		for (size_t i = 0; i < n; i++)
			json_array_append_new(env, random_entry(seed));
		json_t *ct = json_pack("{sssss[s]}", "name", c ? "side" : "web", "image", "nginx",
				       "command", "/web");
		if (rand_r(seed) % 13)
			json_object_set_new(ct, "env", env);
		else
			json_decref(env);
		json_array_append_new(containers, ct);
	}
	*ret_n = nc;
	return json_pack("{sssss{ss}s{so}}", "apiVersion", "v1", "kind", "Pod", "metadata", "name",
			 "web-1", "spec", "containers", containers);
}

/* A recipe that does not read the environment gets a plan without the container's variables and
 * the engine merges them in (on its own when the plan has a few names and every entry says what
 * the recipe sees, through a table of names otherwise); the same recipe reading the
 * environment gets them in its plan. Both give the container the same env, whatever it held. */
static void test_k8s__env_merge_parity(void **state)
{
	(void)state;
	static const char *const envs[] = {
		/* a few names: the merge without a table */
		"environment { X: \"x-\"${original.name}, OWN: same }",
		/* more names than that: the table of names */
		"environment { V1: \"1\", V2: \"2\", V3: \"3\", V4: \"4\", A: \"a\", X: \"x\" }",
	};
	struct kilt_k8s_namespace ns = { .name = "shop" };
	for (size_t k = 0; k < sizeof(envs) / sizeof(*envs); k++) {
		struct kilt_recipe *r[2] = { NULL, NULL };
		struct kilt_k8s_recipe kr2[2];
		for (int reads = 0; reads < 2; reads++) {
			_cleanup_free_ char *text =
				xasprintf("deploy {\n"
					  "  entrypoint: [ /l, \"--\" ] ${original.entrypoint}\n"
					  "  command: ${original.command}\n"
					  "  %s\n"
					  "  %s\n"
					  "}\n",
					  envs[k],
					  reads ? "environment { UNSET: "
						  "${?original.environment.KILT_NOT_SET} }"
						: "");
			struct kilt_error err = { 0 };
			if (kilt_recipe_load_string(text, strlen(text), "env", &r[reads], &err) < 0)
				fail_msg("%s", err.msg);
			assert_true(kilt_recipe_reads_environment(r[reads]) == (reads == 1));
			kr2[reads] = (struct kilt_k8s_recipe){ .name = "env", .recipe = r[reads] };
		}
		unsigned seed = 7u + (unsigned)k;
		for (int round = 0; round < 400; round++) {
			/* the pod made twice from the same seed: json_deep_copy would not keep the
			 * keys that hold a NUL (kilt_k8s_mutate copies the pod so) */
			unsigned at = seed;
			size_t nc = 0;
			struct kilt_k8s_result res[2];
			for (int reads = 0; reads < 2; reads++) {
				seed = at;
				json_t *p = random_pod(&seed, &nc);
				struct kilt_k8s_options o;
				opts_init(&o);
				o.recipes = &kr2[reads];
				kilt_k8s_result_init(&res[reads]);
				struct kilt_error err = { 0 };
				assert_int_equal(
					kilt_k8s_mutate_owned(p, &ns, &o, &res[reads], &err), 0);
			}
			seed = at;
			_cleanup_json_ json_t *p = random_pod(&seed, &nc);
			for (size_t c = 0; c < nc; c++) {
				/* compared as text: json_equal reads keys as C strings */
				_cleanup_free_ char *a = json_dumps(env_of(res[0].pod, c),
								    JSON_COMPACT | JSON_ENCODE_ANY);
				_cleanup_free_ char *b = json_dumps(env_of(res[1].pod, c),
								    JSON_COMPACT | JSON_ENCODE_ANY);
				if ((a || b) && (!a || !b || strcmp(a, b) != 0)) {
					_cleanup_free_ char *in = json_dumps(p, JSON_COMPACT);
					fprintf(stderr,
						"recipe %zu, round %d, container %zu of %s:\n"
						"merged by the engine: %s\nin the plan: %s\n",
						k, round, c, in, a ? a : "(none)",
						b ? b : "(none)");
					fail();
				}
			}
			kilt_k8s_result_done(&res[0]);
			kilt_k8s_result_done(&res[1]);
		}
		kilt_recipe_free(r[0]);
		kilt_recipe_free(r[1]);
	}
}

/* The status annotation of a pod (NULL when it has none). */
static const char *status_of(const json_t *pod_after)
{
	return json_string_value(json_object_get(
		json_object_get(json_object_get(pod_after, "metadata"), "annotations"),
		KILT_K8S_STATUS));
}

/* The status annotation is written as text as the pod is injected: it is the text jansson's dump
 * gives of the object it holds (JSON_COMPACT, members in their order), for containers whose
 * fields, environment and capabilities make every member of a record (values that need escapes
 * among them; no NUL, which a status cannot be read back with), on a first injection and on a
 * re-invocation that adds containers to it. */
static void test_k8s__status_text(void **state)
{
	(void)state;
	struct kilt_k8s_namespace ns = { .name = "shop" };
	static const char *const odd[] = { "plain", "quote\\\"back\\\\slash", "tab\\there",
					   "\\u00e9t\\u00e9 \\u2603", "</script>" };
	unsigned seed = 11;
	size_t checked = 0;
	for (int round = 0; round < 300; round++) {
		json_t *containers = json_array();
		size_t nc = 1 + (size_t)rand_r(&seed) % 3;
		for (size_t c = 0; c < nc; c++) {
			const char *o = odd[(size_t)rand_r(&seed) % ARRAY_SIZE(odd)];
			_cleanup_free_ char *text =
				xasprintf("{\"name\":\"c%zu\",\"image\":\"nginx\",\"command\":[\"/"
					  "web\",\"%s\"]}",
					  c, o);
			json_error_t jerr;
			json_t *ct = json_loads(text, JSON_ALLOW_NUL, &jerr);
			assert_non_null(ct);
			unsigned r = (unsigned)rand_r(&seed);
			if (r % 3 == 0)
				json_object_set_new(ct, "args", json_null());
			else if (r % 3 == 1)
				json_object_set_new(ct, "args", json_pack("[s]", o));
			if (r % 5 == 0)
				json_object_set_new(ct, "env", json_null());
			else if (r % 5 == 1)
				json_object_set_new(ct, "env",
						    json_pack("[{sssi}{ssss}]", "name", "X",
							      "value", 5, "name", "Y", "value", o));
			if (r % 7 == 0)
				json_object_set_new(ct, "securityContext", json_null());
			else if (r % 7 == 1)
				json_object_set_new(
					ct, "securityContext",
					json_pack("{s{s[s]}}", "capabilities", "drop", "NET_RAW"));
			else if (r % 7 == 2)
				json_object_set_new(ct, "securityContext",
						    json_pack("{s{}}", "capabilities"));
			if (r % 11 == 0)
				json_object_set_new(ct, "volumeMounts", json_null());
			json_array_append_new(containers, ct);
		}
		json_t *meta = json_pack("{ss}", "name", "web-1");
		if (rand_r(&seed) % 4 == 0)
			json_object_set_new(meta, "annotations", json_null());
		_cleanup_json_ json_t *p =
			json_pack("{sssssos{so}}", "apiVersion", "v1", "kind", "Pod", "metadata",
				  meta, "spec", "containers", containers);
		/* a first injection of some containers (the others excluded), then all of them */
		size_t first = 1 + (size_t)rand_r(&seed) % nc;
		_cleanup_free_ char *only = xstrdup("c0");
		for (size_t c = 1; c < first; c++) {
			char *more = xasprintf("%s,c%zu", only, c);
			free(only);
			only = more;
		}
		json_object_set_new(json_object_get(p, "metadata"), "annotations",
				    json_pack("{ss}", KILT_K8S_INCLUDE_CONTAINERS, only));
		struct kilt_k8s_options o;
		opts_init(&o);
		struct kilt_k8s_result res, again;
		kilt_k8s_result_init(&res);
		kilt_k8s_result_init(&again);
		struct kilt_error err = { 0 };
		assert_int_equal(kilt_k8s_mutate(p, &ns, &o, &res, &err), 0);
		json_object_del(
			json_object_get(json_object_get(res.pod, "metadata"), "annotations"),
			KILT_K8S_INCLUDE_CONTAINERS);
		assert_int_equal(kilt_k8s_mutate(res.pod, &ns, &o, &again, &err), 0);
		const char *texts[2] = { status_of(res.pod), status_of(again.pod) };
		json_t *parsed[2] = { NULL, NULL };
		for (int i = 0; i < 2; i++) {
			assert_non_null(texts[i]);
			json_error_t jerr;
			json_t *v = json_loads(texts[i], JSON_ALLOW_NUL, &jerr);
			assert_non_null(v);
			char *dump = json_dumps(v, JSON_COMPACT);
			assert_string_equal(dump, texts[i]);
			free(dump);
			assert_int_equal(json_array_size(json_object_get(v, "containers")),
					 i == 0 ? first : nc);
			parsed[i] = v;
			checked++;
		}
		/* the re-invocation's status is the first one with records added to its list: its
		 * members in the same order, the first records as they were */
		const char *k;
		json_t *m;
		void *it = json_object_iter(parsed[1]);
		json_object_foreach (parsed[0], k, m) {
			assert_non_null(it);
			assert_string_equal(json_object_iter_key(it), k);
			it = json_object_iter_next(parsed[1], it);
		}
		assert_null(it);
		const json_t *recs[2] = { json_object_get(parsed[0], "containers"),
					  json_object_get(parsed[1], "containers") };
		for (size_t c = 0; c < first; c++)
			assert_true(
				json_equal(json_array_get(recs[0], c), json_array_get(recs[1], c)));
		json_decref(parsed[0]);
		json_decref(parsed[1]);
		kilt_k8s_result_done(&res);
		kilt_k8s_result_done(&again);
	}
	assert_int_equal(checked, 600);
}

/* Not a Kubernetes object: an error, not a crash or an empty answer. */
static void test_k8s__not_an_object(void **state)
{
	(void)state;
	struct kilt_k8s_options o;
	opts_init(&o);
	_cleanup_json_ json_t *bad = json_pack("{ss}", "kind", "Pod");
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_k8s_mutate(bad, NULL, &o, &res, &err), -EINVAL);
	assert_null(res.patch);
	struct kilt_k8s_options none;
	kilt_k8s_options_default(&none);
	_cleanup_json_ json_t *p = pod("[]");
	assert_int_equal(kilt_k8s_mutate(p, NULL, &none, &res, &err), -EINVAL);
	assert_string_equal(err.msg, "no recipe");
}

/* ---- the pieces kept for the options (kilt_k8s_prepared) ------------------------------------ */

static const char RECIPE_B[] =
	"deploy {\n"
	"  entrypoint: [ /b/launch ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: b, image: \"example/b:2\", volumes: [ /b, /opt/c ] }"
	" ]\n"
	"  capabilities: [ SYS_PTRACE, cap_sys_ptrace, NET_ADMIN ]\n"
	"}\n";

/* What the webhook's door answers: the patch text, the warnings and the pod after it. */
static char *answer(const json_t *p, const struct kilt_k8s_namespace *ns,
		    const struct kilt_k8s_options *o, struct kilt_k8s_prepared *pp)
{
	struct kilt_k8s_options ol = *o;
	ol.patch_as_text = true;
	ol.prepared = pp;
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	struct kilt_error err = { 0 };
	int r = kilt_k8s_mutate(p, ns, &ol, &res, &err);
	if (r < 0)
		return xasprintf("error %d %s", r, err.msg);
	_cleanup_free_ char *w = kilt_json_dumps(res.warnings, JSON_COMPACT);
	_cleanup_free_ char *after = kilt_json_dumps(res.pod, JSON_COMPACT | JSON_SORT_KEYS);
	char *text = xasprintf("%s\n%s\n%s", res.patch_text, w, after);
	kilt_k8s_result_done(&res);
	return text;
}

/* The pods of the tests below: one or two containers, recipe B by annotation (capabilities
 * named twice), a container that mounts at kilt's path already, a pod with a volume of kilt's
 * name (both refused), containers whose securityContext is null or drops ALL, under namespaces
 * that take it or that enforce baseline (the injection rolled back). */
static json_t *prepared_pods(void)
{
	static const char text[] =
		"[{\"name\":\"web\",\"image\":\"nginx\",\"command\":[\"/web\"]}]\n"
		"[{\"name\":\"web\",\"image\":\"nginx\",\"command\":[\"/web\"]},"
		"{\"name\":\"side\",\"image\":\"envoy\",\"args\":[\"-c\"],\"command\":[\"/e\"],"
		"\"volumeMounts\":[{\"name\":\"cfg\",\"mountPath\":\"/etc/e\"}]}]\n"
		"[{\"name\":\"web\",\"image\":\"nginx\",\"command\":[\"/web\"],"
		"\"volumeMounts\":[{\"name\":\"mine\",\"mountPath\":\"/kilt\"}]}]\n"
		"[{\"name\":\"web\",\"image\":\"nginx\",\"command\":[\"/web\"],"
		"\"securityContext\":null},{\"name\":\"two\",\"image\":\"nginx\","
		"\"command\":[\"/"
		"t\"],\"securityContext\":{\"capabilities\":{\"drop\":[\"ALL\"]}}}]\n";
	json_t *pods = json_array();
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		_cleanup_free_ char *one = xstrndup(line, (size_t)(end - line));
		json_array_append_new(pods, pod(one));
		line = end + 1;
	}
	json_t *b = pod("[{\"name\":\"web\",\"image\":\"nginx\",\"command\":[\"/web\"]}]");
	json_object_set_new(json_object_get(b, "metadata"), "annotations",
			    json_pack("{ss}", KILT_K8S_RECIPE, "b"));
	json_array_append_new(pods, b);
	json_t *taken = pod("[{\"name\":\"web\",\"image\":\"nginx\",\"command\":[\"/web\"]}]");
	json_object_set_new(json_object_get(taken, "spec"), "volumes",
			    json_pack("[{ss}]", "name", "kilt-agent-0"));
	json_array_append_new(pods, taken);
	return pods;
}

/* The options under which the pieces differ. */
static void prepared_options(struct kilt_k8s_options o[4], const struct kilt_k8s_recipe kr2[2],
			     const json_t *resources)
{
	for (int i = 0; i < 4; i++) {
		opts_init(&o[i]);
		o[i].recipes = kr2;
		o[i].n_recipes = 2;
	}
	o[1].copy_user = 1000;
	o[1].copy_helper = "/opt/kilt/kilt-wait";
	o[2].volume_source = KILT_K8S_VOLUME_IMAGE;
	o[3].init_resources = resources;
}

/* The same answers with the kept pieces as without, for two recipes (two mounts in one table),
 * under four sets of options each with its own table; a table made under other options is
 * ignored (the answers are those of the options given); the pieces are kept (the same nodes in
 * two answers) only with a table. */
static void test_k8s__prepared_same_answers(void **state)
{
	(void)state;
	struct kilt_recipe *rb = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_string(RECIPE_B, sizeof(RECIPE_B) - 1, "b", &rb, &err),
			 0);
	const struct kilt_k8s_recipe kr2[2] = { kr, { .name = "b", .recipe = rb } };
	_cleanup_json_ json_t *resources = json_pack("{s{ss}}", "limits", "cpu", "1");
	struct kilt_k8s_options o[4];
	prepared_options(o, kr2, resources);
	struct kilt_k8s_prepared *pp[4];
	for (int i = 0; i < 4; i++)
		pp[i] = kilt_k8s_prepared_new(&o[i]);
	_cleanup_json_ json_t *pods = prepared_pods();
	_cleanup_json_ json_t *baseline =
		json_pack("{ss}", "pod-security.kubernetes.io/enforce", "baseline");
	const struct kilt_k8s_namespace nss[2] = { { .name = "shop" },
						   { .name = "apps", .labels = baseline } };
	size_t compared = 0;
	for (int round = 0; round < 2; round++) /* the second with every piece made already */
		for (int i = 0; i < 4; i++)
			for (size_t k = 0; k < json_array_size(pods); k++)
				for (size_t n = 0; n < 2; n++) {
					const json_t *p = json_array_get(pods, k);
					_cleanup_free_ char *want = answer(p, &nss[n], &o[i], NULL);
					/* its own table, and one made under other options */
					_cleanup_free_ char *got = answer(p, &nss[n], &o[i], pp[i]);
					_cleanup_free_ char *other =
						answer(p, &nss[n], &o[i], pp[(i + 1) % 4]);
					assert_string_equal(got, want);
					assert_string_equal(other, want);
					compared += 2;
				}
	assert_int_equal(compared, 2 * 4 * 6 * 2 * 2);
	/* the options' differences show: runAsUser, the helper, image volumes, resources */
	const json_t *p = json_array_get(pods, 0);
	_cleanup_free_ char *a0 = answer(p, &nss[0], &o[0], pp[0]);
	_cleanup_free_ char *a1 = answer(p, &nss[0], &o[1], pp[1]);
	_cleanup_free_ char *a2 = answer(p, &nss[0], &o[2], pp[2]);
	_cleanup_free_ char *a3 = answer(p, &nss[0], &o[3], pp[3]);
	assert_non_null(strstr(a0, "\"runAsUser\":0"));
	assert_non_null(strstr(a1, "\"runAsUser\":1000"));
	assert_non_null(strstr(a1, "/opt/kilt/kilt-wait"));
	assert_non_null(strstr(a2, "\"reference\":\"example/agent:1\""));
	assert_null(strstr(a2, "kilt-copy-agent"));
	assert_non_null(strstr(a0, "kilt-copy-agent"));
	assert_non_null(strstr(a3, "\"resources\":{\"limits\":{\"cpu\":\"1\"}}"));
	/* kept: two pods injected with the table hold the same copy init container */
	for (int with = 0; with < 2; with++) {
		struct kilt_k8s_options ol = o[0];
		ol.prepared = with ? pp[0] : NULL;
		struct kilt_k8s_result r1, r2;
		kilt_k8s_result_init(&r1);
		kilt_k8s_result_init(&r2);
		assert_int_equal(kilt_k8s_mutate(p, &nss[0], &ol, &r1, &err), 0);
		assert_int_equal(kilt_k8s_mutate(p, &nss[0], &ol, &r2, &err), 0);
		const json_t *i1 = json_array_get(
			json_object_get(json_object_get(r1.pod, "spec"), "initContainers"), 0);
		const json_t *i2 = json_array_get(
			json_object_get(json_object_get(r2.pod, "spec"), "initContainers"), 0);
		assert_non_null(i1);
		assert_true(json_equal(i1, i2));
		assert_int_equal(i1 == i2, with);
		kilt_k8s_result_done(&r1);
		kilt_k8s_result_done(&r2);
	}
	for (int i = 0; i < 4; i++)
		kilt_k8s_prepared_free(pp[i]);
	kilt_recipe_free(rb);
}

/* A document that holds the kept pieces, changed by every door in place (injected again with
 * another recipe, which undoes the first injection; removed; injected and rolled back under
 * baseline): the pieces stay as they were made, and the answers that follow are those of a new
 * table and of none. */
static void test_k8s__prepared_never_changed(void **state)
{
	(void)state;
	struct kilt_recipe *rb = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_string(RECIPE_B, sizeof(RECIPE_B) - 1, "b", &rb, &err),
			 0);
	const struct kilt_k8s_recipe kr2[2] = { kr, { .name = "b", .recipe = rb } };
	_cleanup_json_ json_t *resources = json_pack("{s{ss}}", "limits", "cpu", "1");
	struct kilt_k8s_options o[4];
	prepared_options(o, kr2, resources);
	_cleanup_json_ json_t *pods = prepared_pods();
	_cleanup_json_ json_t *baseline =
		json_pack("{ss}", "pod-security.kubernetes.io/enforce", "baseline");
	struct kilt_k8s_namespace shop = { .name = "shop" };
	struct kilt_k8s_namespace strict = { .name = "shop", .labels = baseline };
	for (int i = 0; i < 4; i++) {
		struct kilt_k8s_prepared *pp = kilt_k8s_prepared_new(&o[i]);
		struct kilt_k8s_options ol = o[i];
		ol.prepared = pp;
		_cleanup_json_ json_t *docs = json_array();
		for (size_t k = 0; k < json_array_size(pods); k++) {
			struct kilt_k8s_result res;
			kilt_k8s_result_init(&res);
			assert_int_equal(
				kilt_k8s_mutate(json_array_get(pods, k), &shop, &ol, &res, &err),
				0);
			json_array_append(docs, res.pod);
			kilt_k8s_result_done(&res);
		}
		/* every pod with recipe b now: the first injection undone, b's added */
		size_t d;
		json_t *doc;
		json_array_foreach (docs, d, doc) {
			json_t *meta = json_object_get(doc, "metadata");
			if (!json_is_object(json_object_get(meta, "annotations")))
				json_object_set_new(meta, "annotations", json_object());
			json_object_set_new(json_object_get(meta, "annotations"), KILT_K8S_RECIPE,
					    json_string("b"));
		}
		struct kilt_report rep;
		kilt_report_init(&rep);
		assert_int_equal(kilt_k8s_inject(docs, &shop, &ol, &rep, NULL, &err), 0);
		assert_int_equal(kilt_k8s_inject(docs, &strict, &ol, &rep, NULL, &err), 0);
		assert_int_equal(kilt_k8s_remove(docs, &ol, &rep, NULL, &err), 0);
		json_array_foreach (docs, d, doc)
			json_object_del(
				json_object_get(json_object_get(doc, "metadata"), "annotations"),
				KILT_K8S_RECIPE);
		assert_int_equal(kilt_k8s_inject(docs, &strict, &ol, &rep, NULL, &err), 0);
		assert_int_equal(kilt_k8s_inject(docs, &shop, &ol, &rep, NULL, &err), 0);
		assert_int_equal(kilt_k8s_remove(docs, &ol, &rep, NULL, &err), 0);
		kilt_report_done(&rep);
		struct kilt_k8s_prepared *fresh = kilt_k8s_prepared_new(&o[i]);
		for (size_t k = 0; k < json_array_size(pods); k++) {
			const json_t *p = json_array_get(pods, k);
			_cleanup_free_ char *want = answer(p, &shop, &o[i], NULL);
			_cleanup_free_ char *kept = answer(p, &shop, &o[i], pp);
			_cleanup_free_ char *made = answer(p, &shop, &o[i], fresh);
			assert_string_equal(kept, want);
			assert_string_equal(made, want);
		}
		kilt_k8s_prepared_free(fresh);
		/* the documents let go before the table (kilt_k8s_prepared_free's contract) */
		json_decref(steal_pointer(&docs));
		kilt_k8s_prepared_free(pp);
	}
	kilt_recipe_free(rb);
}

struct prepared_thread {
	const struct kilt_k8s_options *o;
	struct kilt_k8s_prepared *pp;
	const json_t *pods; /* read only */
	const char *const *want;
	size_t mismatches;
};

static void *prepared_thread_run(void *arg)
{
	struct prepared_thread *t = arg;
	struct kilt_k8s_namespace ns = { .name = "shop" };
	for (int round = 0; round < 20; round++)
		for (size_t k = 0; k < json_array_size(t->pods); k++) {
			char *got = answer(json_array_get(t->pods, k), &ns, t->o, t->pp);
			if (strcmp(got, t->want[k]) != 0)
				t->mismatches++;
			free(got);
		}
	return NULL;
}

/* Threads that share one table, starting while it is empty, all answer as without it. */
static void test_k8s__prepared_threads(void **state)
{
	(void)state;
	struct kilt_recipe *rb = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_string(RECIPE_B, sizeof(RECIPE_B) - 1, "b", &rb, &err),
			 0);
	const struct kilt_k8s_recipe kr2[2] = { kr, { .name = "b", .recipe = rb } };
	struct kilt_k8s_options o[4];
	prepared_options(o, kr2, NULL);
	_cleanup_json_ json_t *pods = prepared_pods();
	/* each thread its own copy of the pods (jansson's values are not to be shared) */
	struct kilt_k8s_namespace ns = { .name = "shop" };
	char *want[8] = { 0 };
	assert_true(json_array_size(pods) <= ARRAY_SIZE(want));
	for (size_t k = 0; k < json_array_size(pods); k++)
		want[k] = answer(json_array_get(pods, k), &ns, &o[0], NULL);
	struct kilt_k8s_prepared *pp = kilt_k8s_prepared_new(&o[0]);
	pthread_t th[4];
	struct prepared_thread t[4];
	json_t *copies[4];
	for (int i = 0; i < 4; i++) {
		copies[i] = json_deep_copy(pods);
		t[i] = (struct prepared_thread){
			.o = &o[0], .pp = pp, .pods = copies[i], .want = (const char *const *)want
		};
		assert_int_equal(pthread_create(&th[i], NULL, prepared_thread_run, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(t[i].mismatches, 0);
		json_decref(copies[i]);
	}
	for (size_t k = 0; k < ARRAY_SIZE(want); k++)
		free(want[k]);
	kilt_k8s_prepared_free(pp);
	kilt_recipe_free(rb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_k8s__mutate_then_again),
		cmocka_unit_test(test_k8s__list_images_namespace_opt_in),
		cmocka_unit_test(test_k8s__recipe_reads_metadata),
		cmocka_unit_test(test_k8s__injected_summary_cut),
		cmocka_unit_test(test_k8s__skips_with_warnings),
		cmocka_unit_test(test_k8s__two_phase_facts),
		cmocka_unit_test(test_k8s__env_merge_parity),
		cmocka_unit_test(test_k8s__status_text),
		cmocka_unit_test(test_k8s__not_an_object),
		cmocka_unit_test(test_k8s__prepared_same_answers),
		cmocka_unit_test(test_k8s__prepared_never_changed),
		cmocka_unit_test(test_k8s__prepared_threads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
