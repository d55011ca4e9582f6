/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the per-thread arenas behind jansson's allocator (kilt-json-arena.h): values of
 * a request come from the arena and go with it, values made outside or while suspended are
 * malloc's and survive it, a released arena is poisoned under AddressSanitizer, and the Pod
 * engine run inside an arena keeps nothing in it (the recipe's template cache outlives the
 * request). */
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

static int setup(void **state)
{
	(void)state;
	kilt_json_arena_install();
	return 0;
}

static void test_json_arena__values_come_and_go(void **state)
{
	(void)state;
	json_t *outside = json_pack("{s:[i,s]}", "a", 1, "b");
	assert_false(kilt_json_arena_holds(outside));
	kilt_json_arena_begin();
	json_t *inside = json_pack("{s:s, s:o}", "key", "value", "outside", json_incref(outside));
	assert_true(kilt_json_arena_holds(inside));
	assert_true(kilt_json_arena_holds(json_object_get(inside, "key")));
	assert_true(kilt_json_arena_used() > 0);
	/* a malloc'ed value released inside goes back to malloc (LeakSanitizer sees it otherwise) */
	json_t *gone = json_string("made outside, freed inside");
	json_decref(inside);
	json_decref(outside);
	json_decref(gone);
	/* a large value that needs a chunk of its own */
	size_t n = (size_t)1 << 20;
	_cleanup_free_ char *big = xmalloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\0';
	json_t *large = json_string(big);
	assert_true(kilt_json_arena_holds(large));
	assert_int_equal(json_string_length(large), n);
	json_decref(large);
	kilt_json_arena_end();
	assert_int_equal(kilt_json_arena_used(), 0);
	/* outside a request: malloc again */
	json_t *after = json_string("after");
	assert_false(kilt_json_arena_holds(after));
	json_decref(after);
}

static void test_json_arena__suspended_values_survive(void **state)
{
	(void)state;
	kilt_json_arena_begin();
	json_t *request = json_string("request");
	bool was = kilt_json_arena_suspend();
	assert_true(was);
	json_t *kept = json_pack("{s:s}", "kept", "past the request");
	kilt_json_arena_resume(was);
	assert_false(kilt_json_arena_holds(kept));
	assert_true(kilt_json_arena_holds(request));
	kilt_json_arena_end();
	/* the next request reuses the memory: the kept value is not in it */
	kilt_json_arena_begin();
	for (int i = 0; i < 1000; i++)
		json_decref(json_string("overwrite the arena's memory"));
	kilt_json_arena_end();
	assert_string_equal(json_string_value(json_object_get(kept, "kept")), "past the request");
	json_decref(kept);
	/* suspend outside a request says so */
	assert_false(kilt_json_arena_suspend());
	kilt_json_arena_resume(false);
	json_t *plain = json_string("plain");
	assert_false(kilt_json_arena_holds(plain));
	json_decref(plain);
}

/* What the arena has handed out since the request began, counted across a suspension and into
 * new chunks; values made while suspended are not in it. */
static void test_json_arena__used_across_chunks(void **state)
{
	(void)state;
	kilt_json_arena_begin();
	size_t before = kilt_json_arena_used();
	json_t *first = json_string("first");
	size_t one = kilt_json_arena_used();
	assert_true(one > before);
	bool was = kilt_json_arena_suspend();
	json_t *outside = json_string("outside");
	assert_int_equal(kilt_json_arena_used(), one);
	kilt_json_arena_resume(was);
	assert_false(kilt_json_arena_holds(outside));
	json_t *second = json_string("second");
	assert_true(kilt_json_arena_holds(second));
	assert_true(kilt_json_arena_used() > one);
	/* past the first chunk (256 KiB) and the second: the older chunks' values stay */
	char text[1024];
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	size_t last = kilt_json_arena_used();
	for (int i = 0; i < 1000; i++) {
		json_decref(json_string(text));
		size_t now = kilt_json_arena_used();
		assert_true(now > last);
		last = now;
	}
	assert_true(last >= (size_t)1000 * sizeof(text));
	assert_true(kilt_json_arena_holds(first));
	assert_string_equal(json_string_value(first), "first");
	assert_string_equal(json_string_value(second), "second");
	kilt_json_arena_end();
	assert_int_equal(kilt_json_arena_used(), 0);
	json_decref(outside);
}

static void test_json_arena__released_is_poisoned(void **state)
{
	(void)state;
	kilt_json_arena_begin();
	json_t *v = json_string("kept past its request by mistake");
	kilt_json_arena_end();
#ifdef TEST_ASAN
	/* reading v now is reported by AddressSanitizer */
	assert_true(__asan_address_is_poisoned(v));
#else
	/* without ASan, the memory is kept for the thread's next request */
	assert_true(kilt_json_arena_holds(v));
#endif
}

static void *other_thread(void *arg)
{
	(void)arg;
	/* another thread without an arena allocates from malloc while this one has one */
	json_t *v = json_string("other thread");
	bool holds = kilt_json_arena_holds(v);
	json_decref(v);
	kilt_json_arena_begin();
	json_t *w = json_string("its own arena");
	bool own = kilt_json_arena_holds(w);
	kilt_json_arena_end();
	return (void *)(uintptr_t)(!holds && own);
}

static void test_json_arena__per_thread(void **state)
{
	(void)state;
	kilt_json_arena_begin();
	json_t *mine = json_string("mine");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	void *ok = NULL;
	pthread_join(t, &ok);
	assert_true((uintptr_t)ok);
	assert_true(kilt_json_arena_holds(mine));
	kilt_json_arena_end();
}

/* A tree of the arena is let go with it: kilt_json_arena_release() leaves the counts as they
 * are. A value from outside put anywhere in such a tree (a leaf of an object, an array's
 * element, a container from outside holding more) is found by kilt_json_arena_find_outside();
 * jansson's constants are nobody's. */
static void test_json_arena__release_and_find_outside(void **state)
{
	(void)state;
	json_t *outside = json_string("outside");
	json_t *shared_outside = json_pack("{s:[s]}", "held", "inside it");
	json_t *inner = json_object_get(shared_outside, "held");
	kilt_json_arena_begin();
	json_t *tree = json_pack("{s:[s, i, b, n], s:{s:f}}", "a", "x", 1, 1, "d", "r", 0.5);
	json_t *kept = json_incref(json_object_get(tree, "d"));
	assert_null(kilt_json_arena_find_outside(tree));
	kilt_json_arena_release(tree);
	assert_int_equal(tree->refcount, 1); /* not taken apart: the arena goes at once */
	assert_int_equal(kept->refcount, 2);

	json_t *leaf = json_pack("{s:{s:O}}", "m", "k", outside);
	json_t *element = json_pack("[s, [i, O]]", "x", 2, outside);
	json_t *container = json_pack("{s:[O]}", "c", shared_outside);
	json_t *nested = json_pack("{s:O}", "i", inner);
	assert_ptr_equal(kilt_json_arena_find_outside(leaf), outside);
	assert_ptr_equal(kilt_json_arena_find_outside(element), outside);
	assert_ptr_equal(kilt_json_arena_find_outside(container), shared_outside);
	assert_ptr_equal(kilt_json_arena_find_outside(nested), inner);
	assert_null(kilt_json_arena_find_outside(outside)); /* not the arena's */
	assert_null(kilt_json_arena_find_outside(NULL));
	assert_int_equal(outside->refcount, 3);
	assert_int_equal(shared_outside->refcount, 2);
	assert_int_equal(inner->refcount, 2);
	/* such trees are let go by jansson's walk, which gives the references back */
	json_decref(leaf);
	json_decref(element);
	json_decref(container);
	json_decref(nested);
	assert_int_equal(outside->refcount, 1);
	assert_int_equal(shared_outside->refcount, 1);
	assert_int_equal(inner->refcount, 1);
	kilt_json_arena_end();
	/* outside an arena: json_decref (LeakSanitizer sees a value left behind) */
	json_t *plain = json_pack("{s:o}", "o", outside);
	kilt_json_arena_release(plain);
	kilt_json_arena_release(shared_outside);
	kilt_json_arena_release(NULL);
	kilt_json_arena_release(json_true());
}

/* Builds without NDEBUG refuse to let go of a tree of the arena that holds a value from outside
 * (its reference would be lost): the process aborts, so that a test run finds the code that put
 * it there. */
static void test_json_arena__release_checks_for_outside(void **state)
{
	(void)state;
	json_t *outside = json_string("outside");
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		kilt_json_arena_begin();
		json_t *tree = json_pack("{s:[O]}", "a", outside);
		kilt_json_arena_release(tree);
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
#ifdef NDEBUG
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#else
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#endif
	json_decref(outside);
}

/* A review let go with kilt_admission_review_done: all of it is the arena's, nothing is taken
 * apart; a value from outside put in it would be found. */
static void test_json_arena__review_is_the_arenas(void **state)
{
	(void)state;
	static const char REVIEW[] =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":"
		"{\"uid\":\"u1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
		"\"operation\":\"CREATE\",\"namespace\":\"shop\",\"dryRun\":false,\"object\":{"
		"\"metadata\":{\"name\":\"p\",\"managedFields\":[{\"manager\":\"m\"}]},\"spec\":{"
		"\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"args\":[\"a\",1.5,null]}]}}}}";
	json_t *leaf = json_string("outside leaf");
	kilt_json_arena_begin();
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_admission_review_parse(REVIEW, strlen(REVIEW), &rv, &err), 0);
	json_t *pod = (json_t *)(uintptr_t)rv.object;
	assert_true(kilt_json_arena_holds(pod));
	assert_null(kilt_json_arena_find_outside(rv.root));
	json_t *args = json_object_get(
		json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0),
		"args");
	json_array_append(args, leaf);
	assert_ptr_equal(kilt_json_arena_find_outside(rv.root), leaf);
	json_array_remove(args, json_array_size(args) - 1);
	assert_int_equal(leaf->refcount, 1);
	assert_null(kilt_json_arena_find_outside(rv.root));
	json_t *root = rv.root;
	kilt_admission_review_done(&rv);
	assert_null(rv.root);
	assert_int_equal(root->refcount, 1); /* let go with the arena */
	kilt_json_arena_end();
	json_decref(leaf);
}

/* ---- the Pod engine inside an arena -------------------------------------------------------- */

static const char RECIPE[] =
	"platforms: [ linux/amd64 ]\n"
	"deploy {\n"
	"  entrypoint: [ /kilt/bin/kilt-launch, \"--\" ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: kilt-agent, image: \"example/agent:1\", volumes: [ /kilt ] } ]\n"
	"  environment: { META: \"image=\"${original.image}\",name=\"${original.name}, RATIO: "
	"0.25, COUNT: 3 }\n"
	"  capabilities: [ SYS_PTRACE ]\n"
	"}\n";

static const char POD[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"generateName\":\"web-\","
	"\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":"
	"\"nginx:1\",\"command\":[\"/web\"],\"env\":[{\"name\":\"A\",\"value\":\"1\"}]},{\"name\":"
	"\"side\",\"image\":\"busybox\",\"command\":[\"sleep\"],\"args\":[\"1d\"]}]}}";

/* The patch and warnings of POD as text (malloc's). */
static char *mutate(const struct kilt_recipe *recipe)
{
	struct kilt_k8s_recipe kr = { .name = "agent", .recipe = recipe };
	struct kilt_k8s_options o;
	kilt_k8s_options_default(&o);
	o.recipes = &kr;
	o.n_recipes = 1;
	json_t *pod = json_loads(POD, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(pod);
	struct kilt_k8s_namespace ns = { .name = "shop" };
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_k8s_mutate_owned(pod, &ns, &o, &res, &err), 0);
	json_t *both = json_pack("{s:O, s:O}", "patch", res.patch, "warnings", res.warnings);
	char *text = kilt_json_dumps(both, JSON_COMPACT);
	json_decref(both);
	kilt_k8s_result_done(&res);
	assert_non_null(text);
	return text;
}

static struct kilt_recipe *load(void)
{
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_string(RECIPE, sizeof(RECIPE) - 1, "agent", &r, &err), 0);
	return r;
}

static void test_json_arena__engine_keeps_nothing_in_it(void **state)
{
	(void)state;
	struct kilt_recipe *plain = load();
	_cleanup_free_ char *want = mutate(plain);
	kilt_recipe_free(plain);
	assert_non_null(strstr(want, "\"op\":\"add\""));

	/* The first review fills the recipe's template cache from inside an arena; the second
	 * reads it after that arena was released and its memory reused. */
	struct kilt_recipe *recipe = load();
	kilt_json_arena_begin();
	_cleanup_free_ char *first = mutate(recipe);
	kilt_json_arena_end();
	kilt_json_arena_begin();
	for (int i = 0; i < 4000; i++)
		json_decref(json_pack("{s:s}", "overwrite", "the arena's memory"));
	_cleanup_free_ char *second = mutate(recipe);
	kilt_json_arena_end();
	_cleanup_free_ char *third = mutate(recipe);
	kilt_recipe_free(recipe);
	assert_string_equal(first, want);
	assert_string_equal(second, want);
	assert_string_equal(third, want);
}

/* Everything the Pod engine reads from outside the review's arena (the recipe and its template
 * cache, the settings, image facts, the namespace's labels and annotations) goes into the pod and
 * its patch as arena copies: the webhook lets both go with the arena (kilt_json_arena_release)
 * and keeps every count of what it read as it was. */
static const char CONFIG_RECIPE[] =
	"platforms: [ linux/amd64 ]\n"
	"deploy {\n"
	"  entrypoint: [ /kilt/bin/kilt-launch, \"--\" ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: kilt-agent, image: ${config.image}, volumes: [ /kilt ] } ]\n"
	"  environment: { LEVEL: ${config.level}, META: \"image=\"${original.image}, N: 2 }\n"
	"  capabilities: [ SYS_PTRACE ]\n"
	"}\n";

static const char FACTS_POD[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\",\"labels\":{"
	"\"app\":\"web\"},\"annotations\":{\"note\":\"n\"}},\"spec\":{\"containers\":[{\"name\":"
	"\"web\",\"image\":\"example/web:1\",\"args\":[\"-v\"],\"env\":[{\"name\":\"LEVEL\","
	"\"value\":\"x\"},{\"name\":\"P\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":"
	"\"metadata.name\"}}}]},{\"name\":\"side\",\"image\":\"busybox\",\"command\":[\"sleep\"],"
	"\"args\":[\"1d\"]}],\"initContainers\":[{\"name\":\"setup\",\"image\":\"busybox\","
	"\"command\":[\"true\"]}]}}";

static void test_json_arena__engine_puts_nothing_from_outside(void **state)
{
	(void)state;
	struct kilt_recipe *recipe = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_string(CONFIG_RECIPE, sizeof(CONFIG_RECIPE) - 1, "agent",
						 &recipe, &err),
			 0);
	json_t *config = json_pack("{s:s, s:s}", "level", "debug", "image", "example/agent:2");
	json_t *labels = json_pack("{s:s, s:s}", "kilt.dev/inject", "enabled",
				   "pod-security.kubernetes.io/warn", "baseline");
	json_t *annotations = json_pack("{s:s}", "kilt.dev/recipe", "agent");
	json_t *facts = json_pack("{s:[s, s], s:[s]}", "entrypoint", "/init", "/web", "command",
				  "--default");
	json_t *outside[] = { config, labels, annotations, facts };
	struct kilt_k8s_recipe kr = { .name = "agent", .recipe = recipe };
	struct kilt_k8s_options o;
	kilt_k8s_options_default(&o);
	o.recipes = &kr;
	o.n_recipes = 1;
	o.config = config;
	o.pod_security = KILT_K8S_PSA_PROCEED;
	struct kilt_image_needs needs;
	kilt_image_needs_init(&needs);
	struct kilt_k8s_namespace ns = { .name = "shop",
					 .labels = labels,
					 .annotations = annotations };
	/* the image facts as the webhook has them: looked up, kept outside the arena */
	json_t *listed = json_loads(FACTS_POD, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(listed);
	kilt_k8s_list_images(listed, NULL, &o, &needs);
	json_decref(listed);
	assert_int_equal(needs.n, 1);
	needs.v[0].resolved = true;
	needs.v[0].facts = json_incref(facts);
	o.image_facts = kilt_image_needs_facts;
	o.image_facts_userdata = &needs;
	/* twice: the first run fills the recipe's template cache, the second reads it */
	for (int run = 0; run < 2; run++) {
		kilt_json_arena_begin();
		json_t *pod = json_loads(FACTS_POD, JSON_REJECT_DUPLICATES, NULL);
		assert_non_null(pod);
		struct kilt_k8s_result res;
		kilt_k8s_result_init(&res);
		assert_int_equal(kilt_k8s_mutate_owned(json_incref(pod), &ns, &o, &res, &err), 0);
		assert_int_equal(res.report.n_patched, 2);
		assert_true(json_array_size(res.patch) > 0);
		assert_int_equal(json_array_size(res.warnings), 1); /* the warn level */
		_cleanup_free_ char *text = kilt_json_dumps(res.patch, JSON_COMPACT);
		assert_non_null(strstr(text, "example/agent:2"));
		assert_non_null(strstr(text, "\"LEVEL\",\"value\":\"debug\""));
		assert_non_null(strstr(text, "\"/init\",\"/web\""));
		assert_null(kilt_json_arena_find_outside(pod));
		assert_null(kilt_json_arena_find_outside(res.patch));
		json_t *patch = json_incref(res.patch);
		kilt_k8s_result_done(&res);
		kilt_json_arena_release(patch);
		kilt_json_arena_release(pod);
		/* what the engine read from outside keeps its count: nothing of it is held */
		assert_int_equal(config->refcount, 1);
		assert_int_equal(labels->refcount, 1);
		assert_int_equal(annotations->refcount, 1);
		assert_int_equal(facts->refcount, 2); /* this test's and the needs' */
		kilt_json_arena_end();
	}
	kilt_image_needs_done(&needs);
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++)
		json_decref(outside[i]);
	kilt_recipe_free(recipe);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_arena__values_come_and_go),
		cmocka_unit_test(test_json_arena__suspended_values_survive),
		cmocka_unit_test(test_json_arena__used_across_chunks),
		cmocka_unit_test(test_json_arena__released_is_poisoned),
		cmocka_unit_test(test_json_arena__per_thread),
		cmocka_unit_test(test_json_arena__release_and_find_outside),
		cmocka_unit_test(test_json_arena__release_checks_for_outside),
		cmocka_unit_test(test_json_arena__review_is_the_arenas),
		cmocka_unit_test(test_json_arena__engine_keeps_nothing_in_it),
		cmocka_unit_test(test_json_arena__engine_puts_nothing_from_outside),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
